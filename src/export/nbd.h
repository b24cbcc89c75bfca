/* nbd — NBD server frontend (fixed newstyle, simple replies), per the NBD
 * protocol spec (github.com/NetworkBlockDevice/nbd, doc/proto.md).
 *
 * Listens on a unix socket and optionally TCP. Each connection has a reader
 * thread that parses requests (many per read(2)) into one of a fixed set of
 * per-connection slots (buffers grow once to the largest request seen, then
 * are reused: no per-I/O allocation). Reads the engine serves with one
 * pread (engine_read_fd) go through the connection's io_uring, submitted
 * and reaped in batches by its own thread; everything else goes to a
 * shared pool of worker threads that call the engine. Many requests are in
 * flight per connection; replies may be sent out of order, as NBD allows,
 * several in one writev.
 *
 * Locking: server->lock guards the connection list and the work queue;
 * conn->lock guards the slot free list, the reply queue and the reads
 * handed to the ring; one thread at a time writes replies (conn->sending).
 */
#ifndef DIPOLE_NBD_H
#define DIPOLE_NBD_H

#include "engine.h"

struct nbd_server;

/* Start serving `e` as export `name` on unix socket `unix_path` (required) and
 * TCP `tcp_addr` ("IP:PORT", optional). err[256] says why on failure. */
int nbd_server_start(struct nbd_server **out, struct engine *e, const char *name,
		     const char *unix_path, const char *tcp_addr, char *err);
/* Stop accepting, let in-flight requests finish and be answered, close all
 * connections, join all threads, remove the unix socket. */
void nbd_server_stop(struct nbd_server *s);
/* Reads served through io_uring since start, and those of them redone
 * through engine_read (short or failed). s may be NULL. */
void nbd_server_ring_counts(struct nbd_server *s, uint64_t *reads, uint64_t *redone);
/* Number of connected clients. */
int nbd_server_clients(struct nbd_server *s);

/* Serve one already-connected client on fd in the calling thread (the fuzzer
 * and tests use this over a socketpair). Closes fd. */
void nbd_server_serve_fd(struct nbd_server *s, int fd, const char *peer);
/* A server with workers but no listeners, for nbd_server_serve_fd. */
int nbd_server_new(struct nbd_server **out, struct engine *e, const char *name, int workers);

#endif

/* server — the owner's side of dipolefs: serves CH_FS connections from
 * client nodes (remote.c) against the local backend (a `const struct
 * fs_ops *` and its ctx), and revokes what clients cache.
 *
 * Each connection is authenticated by the replication handshake (the
 * resource's shared-secret, HMAC); without a secret only a connection
 * from the configured address of the node it claims to be is served
 * (anyone who can send from that address could still impersonate it: the
 * CLI warns). One thread per connection reads frames; its requests run on
 * the connection's pool of worker threads, which grows whenever every
 * worker is busy (up to more than the requests a client keeps in flight)
 * and shrinks when idle, so a blocking setlk, a revocation wait or a slow
 * fsync never stalls the connection. A malformed frame drops the
 * connection with a reason (server_last_drop, log).
 *
 * Per client the server tracks the node ids it looked up and the handles
 * it holds, and what its kernel may cache: the nodes and the names
 * (parent, name) its requests carried since the last revocation of each,
 * marked before the request runs. A revocation goes only to clients that
 * may cache what it revokes, drops all of it there (a node's attributes
 * and all its pages, whatever range changed) and clears the mark, so a
 * stream of changes to one node costs one round trip per client that
 * touched the node in between, not one per change. When a client goes
 * away its lookups are forgotten, its handles released (or, with
 * server_set_keep, kept for its next connection, which takes them over),
 * its blocked lock requests interrupted and the node-gone hook called
 * (the lock table drops that node's locks). A node has one connection: a
 * new one ends an older one of the same node (a reconnect the server had
 * not noticed) and waits for its cleanup before serving anything.
 *
 * Mounted nodes (docs/dipolefs.md "Locks", grace period): a client asks
 * (FSP_MOUNTED, which the owner's CH_FS HELLO offers with HF_FS_MOUNTED)
 * which nodes have the filesystem mounted — this owner, its clients, the
 * gone ones whose handles it keeps — and the answer waits on a worker
 * until the set differs from the one the client knows, so each client
 * learns every change, and a node that takes over after this owner's
 * death knows whom to expect in its grace period.
 *
 * Locking: server.lock guards the connection list and last_drop; each
 * connection's own lock guards its tables, requests in flight and
 * revocation waiters (order: server.lock, then a connection's lock);
 * a connection's send_lock keeps one frame's bytes together.
 */
#ifndef DIPOLE_SERVER_H
#define DIPOLE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "fsops.h"
#include "util.h"

struct server;
struct listener;
struct cfg_resource;
struct cfg_host;

#define SERVER_ACK_TIMEOUT_MS 5000 /* a client that does not ack a revocation by then is dropped */

/* A server for resource r on node me, serving `ops` (ctx). 0, or -errno
 * with err[256]. Serves nothing until connections come (server_listen or
 * server_accept). */
int server_open(struct server **out, const struct cfg_resource *r, const struct cfg_host *me,
		const struct fs_ops *ops, void *ctx, char *err);
/* Take CH_FS connections from the resource's listener (a channel route). */
void server_listen(struct server *s, struct listener *l);
/* A listener_fn: serve the connection fd (owned from now on); arg is the
 * server. Its HELLO has not been read yet. */
void server_accept(void *arg, int fd, const char *from);
/* Called (on the connection's thread) once a client node is gone and its
 * handles are released: the lock table drops the node's locks. */
void server_set_node_gone(struct server *s, void (*fn)(void *arg, uint32_t node_id), void *arg);
/* Called (on a worker thread) when a client says it re-sent every lock it
 * holds (FSP_RECLAIM_DONE, after a reconnect). */
void server_set_reclaim_done(struct server *s, void (*fn)(void *arg, uint32_t node_id), void *arg);
/* A gone client's open files and directories stay open for keep_ns (0,
 * the default: released at once) for its next connection to take over,
 * so the locks held through them can be reclaimed (docs/dipolefs.md
 * "Locks"). */
void server_set_keep(struct server *s, uint64_t keep_ns);
/* Workers a connection may run at once, readers included (default 160,
 * above the 128 requests a client keeps in flight; at least 2). Beyond
 * it requests wait in arrival order for a busy worker while one worker
 * keeps reading (INTERRUPTs, revocation acks). For tests of that branch;
 * a connection's pool above a new limit shrinks as its workers idle. */
void server_set_workers_max(struct server *s, unsigned n);
struct dirsplit;
/* The owner's mount caches names of a directory only while no client
 * does (dirsplit.h): each client's name marks are counted there, and a
 * request naming something under a directory settles it before it runs.
 * Before server_listen; split outlives the server. */
void server_set_split(struct server *s, struct dirsplit *split);
/* Revoke: tell every client but except_node (the change's origin; -1u:
 * none) that may cache the node (or entry) to drop it, and return once
 * each acknowledged or was dropped after SERVER_ACK_TIMEOUT_MS. A node's
 * revocation drops its attributes and all its pages at a client, whatever
 * off and len (struct fs_notify) say changed. */
void server_inval_inode(struct server *s, uint32_t except_node, uint64_t ino, int64_t off, int64_t len);
void server_inval_entry(struct server *s, uint32_t except_node, uint64_t parent, const char *name);
/* Connected clients: up to max node names (the config's strings) into
 * names; returns how many are connected. */
int server_clients(struct server *s, const char **names, int max);
/* The clients as a JSON array of node names, for the "fs" status object. */
void server_status_json(struct server *s, struct strbuf *sb);
/* Requests served for clients, revocations sent to them and requests
 * refused for a stale owner epoch, since open (status: "requests",
 * "revocations", "stale_refused"). */
void server_counters(struct server *s, uint64_t *requests, uint64_t *revocations, uint64_t *stale);
/* This owner's epoch (docs/dipolefs.md "Owner epochs"): chosen at
 * server_open, nonzero, fixed for the server's life. Any thread. */
uint32_t server_epoch(const struct server *s);
/* Why the last client was dropped ("" none), into buf[len]. */
void server_last_drop(struct server *s, char *buf, size_t len);
/* Stop listening, drop every client (releasing what they hold) and free. */
void server_close(struct server *s);

#endif

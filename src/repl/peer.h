/* peer — replication with one peer node (one struct peer per other disk
 * host; the engine fans writes out to all of them): connection, handshake
 * and authentication, the write path (protocols A/B/C), flushes, resync,
 * state. The rules for more than two disk hosts are in decide_multi().
 *
 * Threads: one connection thread per peer (dials or accepts, handshakes, then
 * receives the data channel), one meta receiver (acks, pings) while
 * connected, and a resync thread while this node is SyncSource. Frontend
 * threads call peer_write_begin/peer_write_end/peer_flush directly.
 *
 * Locking: `lock` guards connection state changes; `dsend`/`msend` serialize
 * sends per channel; `sync_lock` (rwlock) orders resync reads against
 * application writes (writes hold it shared from local write through send,
 * a resync chunk holds it exclusive from read through send); each pending
 * request has its own mutex/cond.
 */
#ifndef DIPOLE_PEER_H
#define DIPOLE_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "engine.h"
#include "util.h"

struct peer;
struct pending;


struct listener;
/* Start replicating `e` with `peer_host`; its inbound connections arrive
 * through `l` (routes are registered here, before listener_start).
 * err[256] on failure. */
int peer_start(struct peer **out, struct engine *e, const struct cfg_resource *r, const struct cfg_host *me,
	       const struct cfg_host *peer_host, struct listener *l, char *err);
/* Disconnect (failing nothing: unacknowledged writes are marked out of sync)
 * and join all threads. */
void peer_stop(struct peer *p);

/* Write path, around the local write: begin sends the write to the peer
 * when connected and returns a handle (NULL when not replicated); end waits
 * for the protocol's acknowledgement. Returns 1 when the peer has (or, for
 * protocol A/B, will be held responsible for) the write, 0 when the caller
 * must mark the range out of sync. */
/* stamp: the fan-out order number (engine.h), 0 with a single peer. */
struct pending *peer_write_begin(struct peer *p, const void *buf, size_t len, uint64_t off, unsigned dflags,
				 uint32_t stamp);
int peer_write_end(struct peer *p, struct pending *pd);
/* Make every write the peer acknowledged durable on the peer: begin sends
 * the flush (NULL when not connected: then unreplicated writes are in the
 * bitmap anyway), end waits for it. The local flush goes in between, so both
 * disks flush at the same time. */
struct pending *peer_flush_begin(struct peer *p);
int peer_flush_end(struct peer *p, struct pending *pd);

/* Read from the peer's disk (it must be UpToDate and connected): for a
 * SyncTarget's blocks not yet synced. -EIO when it cannot. */
int peer_read(struct peer *p, void *buf, size_t len, uint64_t off);
/* Connected to an UpToDate peer (reads can go there). */
int peer_can_read(struct peer *p);
int peer_is_connected(struct peer *p);
/* A write the peer did not get: must it wait instead of completing (fencing,
 * dual-primary loser, quorum rules)? 1: I/O was suspended with the reason;
 * -EIO: fail it (on-no-quorum io-error); 0: complete it. */
int peer_must_hold(struct peer *p);
/* What the quorum rules (quorum.h) need to know of the disk peer. */
struct peer_view {
	int connected;        /* connected and past the handshake */
	int usable;           /* connected and its lease fresh */
	uint64_t last_rx_ns;  /* last packet on the meta channel (now_ns), 0 never */
	uint64_t conn_seq;    /* connections established so far */
	int role, disk;       /* last known, -1 unknown */
	uint64_t uuid;        /* its current data generation, last known */
	int repl;             /* enum repl_state */
};
void peer_view(struct peer *p, struct peer_view *v);
/* `resume-io` while disconnected: stop holding writes until the peer is back. */
void peer_io_resumed(struct peer *p);
/* Invalidate (`dipole invalidate`): become Inconsistent and get a full sync
 * from the connected UpToDate peer. -EBUSY with msg[256] when impossible. */
int peer_invalidate(struct peer *p, char *msg);
/* Online verify (`dipole verify`): compare every block with the peer's using
 * verify-alg; differing blocks are marked out of sync (resynced at the next
 * connect). start: -EBUSY with msg[256] when not possible. */
int peer_verify_start(struct peer *p, char *msg);
/* "running done_percent out_of_sync_blocks compared_blocks" */
void peer_verify_status(struct peer *p, struct strbuf *sb);
/* The engine bitmap slot of this peer. */
int peer_slot(struct peer *p);
/* This node is SyncTarget and its bitmap holds the blocks it lacks. */
int peer_is_sync_target(struct peer *p);

/* `dipole disconnect`: drop the connection and stay StandAlone (writes are
 * tracked in the bitmap). `dipole connect`: connect again, also after a
 * refusal by state (split brain, unrelated data, two Primaries). */
void peer_disconnect(struct peer *p);
void peer_connect(struct peer *p, int discard_my_data);

/* This node's role or disk state changed: tell the peer, maybe start a sync. */
void peer_state_changed(struct peer *p);
/* Refuse promotion? Returns 0 or -EBUSY with msg[256] explaining. */
int peer_may_promote(struct peer *p, char *msg);

/* Fuzzer/test entry: handshake as acceptor on fd, then receive the data
 * channel until it ends. No threads, no listener. Closes fd. */
void peer_serve_fd(struct engine *e, const struct cfg_resource *r, const struct cfg_host *me,
		   const struct cfg_host *ph, int fd);

/* Status pieces for the daemon. */
void peer_status_json(struct peer *p, struct strbuf *sb);
void peer_status_text(struct peer *p, struct strbuf *sb);
void peer_state_line(struct peer *p, struct strbuf *sb);

#endif

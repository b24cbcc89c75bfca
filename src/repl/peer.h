/* peer — replication with one peer node (one struct peer per other disk
 * host; the engine fans writes out to all of them): connection, handshake
 * and authentication, the write path (protocols A/B/C), flushes, resync,
 * state. The rules for more than two disk hosts are in decide_multi().
 *
 * Threads: one connection thread per peer (dials or accepts, handshakes, then
 * receives the data channel), one meta receiver (acks, pings) while
 * connected, and a resync thread while this node is SyncSource. Frontend
 * threads reach the write path through the engine, which knows a peer only
 * as a replica (peer_replica_ops, replica.h).
 *
 * Dependencies: peer includes engine.h (and replica.h through it), never
 * quorum.h: whether a write the peer missed may complete is the write
 * policy's call (quorum.c, through the engine); the peer only reports the
 * facts (peer_view) and asks on a lost connection (engine_replica_lost).
 *
 * Locking: `lock` guards connection state changes; `dsend`/`msend` serialize
 * sends per channel; `sync_lock` (rwlock) orders resync reads against
 * application writes; each pending request has its own mutex/cond. Every
 * lock, what it guards and the order relative to the engine's and quorum's
 * locks: peer_int.h.
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
/* What the write policy and the quorum rules know of the peer (replica.h). */
void peer_view(struct peer *p, struct replica_view *v);
/* The peer as the engine's replica: ctx is the struct peer; the daemon
 * registers each peer with engine_add_replica before I/O starts. */
extern const struct replica_ops peer_replica_ops;
/* StandAlone: disconnected by the administrator or refused by state (split
 * brain, unrelated data, two Primaries); it stays so until `connect`. */
int peer_is_standalone(struct peer *p);
/* The handshake with this peer decided that this node lacks data it has:
 * SyncTarget now or about to be (the peer's P_SYNC_START is on its way). */
int peer_behind(struct peer *p);
/* The peer's host name from the configuration. */
const char *peer_name(struct peer *p);
/* `resume-io` while disconnected: stop holding writes until the peer is back. */
void peer_io_resumed(struct peer *p);
/* Run the fence-peer handler against p (docs/fencing.md, drbd.conf(5)'s
 * exit codes): 1 when it reports the peer Inconsistent (3), outdated (4),
 * down (5) or fenced (7), with why[len] saying which; 0 otherwise (any
 * other exit, or no handler: why says so). Blocks while it runs; status
 * shows fencing_in_progress meanwhile. Any thread. */
int peer_fence(struct peer *p, char *why, size_t len);
/* Invalidate (`dipole invalidate`): become Inconsistent and get a full sync
 * from the connected UpToDate peer. -EBUSY with msg[256] when impossible. */
int peer_invalidate(struct peer *p, char *msg);
/* `resize`, first half: may this peer take part (connected, no resync,
 * UpToDate)? 0, or -EBUSY with msg[256] saying why. */
int peer_resize_check(struct peer *p, char *msg);
/* Ask the peer to grow its metadata if its disk grew; *usable: its usable
 * bytes. -ETIMEDOUT (10 s), -ENOSPC (it could not grow: see its log),
 * -ENOTCONN; msg[256] says which. */
int peer_resize_ask(struct peer *p, uint64_t *usable, char *msg);
/* Tell the peer the device is `bytes` now; this node then sends it the
 * new area (marked out of sync by the caller) as a resync. */
int peer_resize_set(struct peer *p, uint64_t bytes);
/* The peer's host name (for messages). */
const char *peer_resize_name(struct peer *p);
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

/* One peer's state as numbers, read as peer_status_json reads it (atomics,
 * no lock): for the metrics thread (daemon/metrics.c). role and disk are
 * -1 while not connected (Unknown, DUnknown). */
struct peer_metrics {
	const char *name;        /* the peer's host name (the config's, lives as long as it) */
	int node_id;
	int cstate, repl;        /* enum conn_state, enum repl_state */
	int role, disk;          /* enum role, enum disk_state, or -1 */
	uint64_t oos_bytes;      /* out of sync with it, as status's out_of_sync_bytes */
	double sync_done_percent;/* as status's sync_done_percent */
	uint64_t split_brains;   /* split brains detected with it since up */
};
void peer_metrics(struct peer *p, struct peer_metrics *v);

#endif

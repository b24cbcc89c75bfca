/* remote — a client node's fs_ops backend: every call becomes one request
 * frame (fsproto.h) to the owner on a CH_FS connection and waits for its
 * reply. Many requests are in flight on the one connection, matched by id;
 * a reader thread receives the replies and the owner's cache revocations
 * (INVAL_*), which a notifier thread hands to the mount's struct fs_notify
 * and then acknowledges (so a revocation that waits on the kernel never
 * holds up the replies).
 *
 * Connection loss: every request in flight fails with -ENOTCONN, so do
 * new ones until the reader has reconnected (backoff 100 ms doubling to
 * 5 s); retrying them is the caller's choice (failover, later).
 *
 * Locks (docs/dipolefs.md "Locks"): the client keeps its own record of the
 * locks the owner granted its processes (a locks.c table: setlk granted,
 * unlocks, flush and release applied as the owner applies them), and
 * after every reconnect a reclaimer thread re-sends each as a reclaim
 * (FSP_SETLK_RECLAIM), then RECLAIM_DONE (remote_reclaim). A reclaim the
 * owner refuses is logged, and the open file it was set through gets EIO
 * from every read, write, fsync, fallocate, lseek, getlk and lock request
 * until it is released (as NFSv4's lost locks): the process learns it no
 * longer holds what it believed it held. From a reconnect to the end of
 * its pass, the processes' lock requests, flushes and releases wait, so
 * the pass neither re-takes a lock they drop nor races one they take.
 * Between passes the same thread keeps a MOUNTED question at the owner
 * (when its HELLO offers it), answered at each change of the mounted set
 * (remote_mounted).
 *
 * Locking: `lock` guards the connection fd, the request slots and their
 * replies; `send_lock` keeps one frame's bytes together on the socket.
 */
#ifndef DIPOLE_REMOTE_H
#define DIPOLE_REMOTE_H

#include "fsops.h"

struct remote;
struct cfg_resource;
struct cfg_host;

extern const struct fs_ops remote_ops; /* ctx: the struct remote */

/* Connect to `owner` (its address, the resource's shared-secret) as `me`
 * and keep the connection up. 0, or -errno with err[256] saying why (the
 * owner unreachable, refused, wrong secret). */
int remote_open(struct remote **out, const struct cfg_resource *r, const struct cfg_host *me,
		const struct cfg_host *owner, char *err);
/* Where the owner's revocations go; NULL: acknowledged without effect.
 * Returns once no call into the previous hooks is running (their owner
 * may then be freed). */
void remote_set_notify(struct remote *rm, const struct fs_notify *n);
/* Requests sent to the owner (one per call this mount's kernel did not
 * answer from its cache), revocations received and connections made to
 * the owner (the first one included), since open (status: "requests",
 * "revocations", "connections"). */
void remote_counters(struct remote *rm, uint64_t *requests, uint64_t *revocations, uint64_t *connections);
/* The owner epoch this connection's replies carry (docs/dipolefs.md
 * "Owner epochs"), 0 while not connected or not known yet. Takes lock. */
uint32_t remote_epoch(struct remote *rm);
/* Re-send every lock this node's processes hold as a reclaim, then
 * RECLAIM_DONE: what a (re)connection to an owner runs (the reclaimer does
 * after each reconnect; call it after switching to a new owner). Any
 * thread but the reader's; passes do not overlap. Returns how many locks
 * were refused (lost: their open files get EIO), or -ENOTCONN (the
 * connection went meanwhile: the next one's pass reclaims), -ENOMEM. */
int remote_reclaim(struct remote *rm);
/* Only RECLAIM_DONE, to an owner that answers MOUNTED (else nothing: an
 * older owner expects no one): after remote_reclaim_to into this remote
 * (a node following a new owner) or at a first mount (nothing held), so a
 * grace period that expects this node ends. 0, or -errno. */
int remote_reclaim_done(struct remote *rm);
/* The nodes with the filesystem mounted (bit n: node id n), as the owner
 * last said (FSP_MOUNTED: the reclaimer asks while connected, and the
 * owner answers each change); 0 before it said. For the node that takes
 * over after the owner's death: whom its grace period expects. */
uint64_t remote_mounted(struct remote *rm);
/* The same pass through another backend, without RECLAIM_DONE: ops->setlk
 * with FS_SETLK_RECLAIM for each lock (a client turning owner reclaims into
 * its own local backend, then calls locks_reclaim_done itself). The locks'
 * fh are this mount's: a backend that numbers open files differently
 * needs a translating ops. Returns as remote_reclaim. */
int remote_reclaim_to(struct remote *rm, const struct fs_ops *ops, void *ctx);
/* Locks reclaimed and lost (refused at a reclaim) since open (status:
 * "reclaims", "locks_lost"). */
void remote_reclaims(struct remote *rm, uint64_t *reclaimed, uint64_t *lost);
/* 1 while connected to the owner. */
int remote_connected(struct remote *rm);
/* The owner is known to be gone (its replication link timed out): end the
 * connection now, so requests in flight fail with -ENOTCONN instead of
 * waiting on a socket nothing answers (TCP gives up after ~15 min), and
 * reconnect as after any loss; a connection a dial makes meanwhile is
 * closed and dialed again. Takes only `lock`: a sender blocked on the
 * dead socket holds send_lock, and the shutdown is what wakes it. */
void remote_drop(struct remote *rm, const char *why);
/* Disconnect (requests in flight fail with -ENOTCONN) and free. */
void remote_close(struct remote *rm);

#endif

/* fsswitch — the backend a FUSE mount (fusefs.c) calls, switchable while
 * the mount stays: a client's forwarding backend (remote.c) is replaced by
 * the local one (local.c) when this node takes the filesystem over from a
 * dead owner, or by a connection to another owner when a node elsewhere
 * took it over (docs/dipolefs.md, "Failover").
 *
 * What survives a switch:
 * - node ids: the caller's kernel keeps them as they are. They must mean
 *   the same object to the next backend: local.c derives ids from the
 *   kernel filesystem's file handles (local.h), so every owner gives an
 *   object the same id; an id whose object is gone answers -ESTALE.
 * - open files: the kernel holds a handle (fh) that is this module's own
 *   slot, not the backend's; each slot keeps the node id and open flags,
 *   and a switch reopens every slot through the next backend (O_CREAT,
 *   O_EXCL, O_TRUNC dropped). A slot that cannot be reopened answers
 *   -ESTALE; a slot written since its last fsync answers -EIO once, at
 *   its next fsync or flush (close): those writes were on the dead owner
 *   only, like a writeback error the kernel reports (errseq). A truncate
 *   through the file (setattr of the size, open with O_TRUNC) is a write.
 * - directories' names: a directory whose names changed through this
 *   mount (create, mknod, mkdir, unlink, rmdir, rename, link, symlink)
 *   since its last fsyncdir that succeeded answers -EIO once at its next
 *   fsyncdir (any handle) after a switch from a dead owner: the changes
 *   were in its kernel's memory only (POSIX: fsync of the directory makes
 *   its entries durable). A planned handover (lost_unsynced 0) clears them.
 *
 * Requests around a switch: fsswitch_hold makes new calls wait (at most
 * hold_ms) instead of failing; fsswitch_set waits for the calls in flight
 * (the caller first makes the old backend fail them: remote_drop), then
 * switches and lets the waiting calls go. A call that failed -ENOTCONN is
 * retried after the switch (or the old backend's reconnect) if it is
 * idempotent (reads, getattr, lookup, pwrite without O_APPEND, setattr,
 * fsync, open without O_EXCL...); a call that changes names (mkdir,
 * unlink, rename, link, symlink, mknod, create with O_EXCL) or appends
 * may have been applied by the dead owner, so it fails -ENOTCONN.
 *
 * Locking: `mu` guards the backend, the hold, the in-flight count and the
 * slot table; it is never held across a call into the backend.
 */
#ifndef DIPOLE_FSSWITCH_H
#define DIPOLE_FSSWITCH_H

#include "fsops.h"

struct fsswitch;

extern const struct fs_ops fsswitch_ops; /* ctx: a struct fsswitch */

/* 1 while the backend can serve (a client: connected to its owner);
 * NULL: always. */
typedef int (*fsswitch_ready)(void *ctx);

/* Serve through ops/ctx; node_id tags the reopens a switch makes. 0 or
 * -ENOMEM. */
int fsswitch_open(struct fsswitch **out, const struct fs_ops *ops, void *ctx, fsswitch_ready ready,
		  uint32_t node_id);
/* No call may be in flight; the backend stays the caller's. */
void fsswitch_close(struct fsswitch *s);

/* The backend is lost and a switch may come: calls wait, up to hold_ms
 * from now, instead of failing -ENOTCONN. */
void fsswitch_hold(struct fsswitch *s, unsigned hold_ms);
/* No switch is coming: waiting calls go to the current backend now. */
void fsswitch_unhold(struct fsswitch *s);
/* Replace the backend: waits for calls in flight, reopens every open file
 * through ops/ctx, lets waiting calls go. lost_unsynced: the previous
 * backend died, so files written since their last fsync, and directories
 * changed since their last fsyncdir, answer -EIO once; 0: it flushed
 * everything (a planned handover). The previous backend
 * gets no call after this returns. Returns the number of open files that
 * could not be reopened (they answer -ESTALE). */
int fsswitch_set(struct fsswitch *s, const struct fs_ops *ops, void *ctx, fsswitch_ready ready, int lost_unsynced);
/* A planned handover: hold new calls (until fsswitch_set) and wait for
 * those in flight; the backend gets no call after this returns. */
void fsswitch_park(struct fsswitch *s);
/* Reclaiming the previous backend's locks after fsswitch_set (ctx: the
 * struct fsswitch): only setlk, for remote_reclaim_to, with the handle the
 * lock was set through in the previous backend; it is sent to the current
 * backend through the same open file's new handle. -ESTALE when no open
 * file had that handle (or it could not be reopened); a refused reclaim
 * marks the open file lost (-EIO at its next fsync or flush). */
extern const struct fs_ops fsswitch_reclaim_ops;
/* Open files (slots) right now, and switches made since open (status). */
void fsswitch_counters(struct fsswitch *s, unsigned *open_files, unsigned *switches);

#endif

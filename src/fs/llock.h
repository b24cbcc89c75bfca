/* llock — a single-process lock table for the local backend's getlk/setlk:
 * fcntl byte-range locks (classic and OFD, as FUSE hands them over: one
 * owner per lock owner) and flock locks, keyed by (node id, inode, owner).
 * It is the small function boundary the cluster lock table (locks.c, with
 * grace periods and lost-node cleanup) replaces; until then it is correct
 * for every mount served by one owner process.
 *
 * Invariants: a POSIX owner's ranges never overlap each other (setting a
 * range first cuts the owner's old ranges out of it); flock and POSIX locks
 * never conflict with each other (as on Linux).
 *
 * Locking: one mutex guards the whole table; blocked setters wait on one
 * condition variable, woken on every unlock and on interrupt.
 */
#ifndef DIPOLE_LLOCK_H
#define DIPOLE_LLOCK_H

#include "fsops.h"

struct llock;

/* A new empty table. 0 or -ENOMEM. */
int llock_open(struct llock **out);
/* Frees the table; no caller may be blocked in it. */
void llock_close(struct llock *t);

/* F_GETLK: *lk becomes the first lock conflicting with it, or its type
 * F_UNLCK. 0 always. */
int llock_get(struct llock *t, uint64_t ino, struct fs_lock *lk);
/* F_SETLK/F_SETLKW/flock: 0, -EAGAIN (conflict, !wait), -EINTR (waiting,
 * interrupted by llock_interrupt(node, token)), -ENOMEM. */
int llock_set(struct llock *t, uint64_t ino, const struct fs_lock *lk, int wait, uint64_t token);
/* Wakes the setter of (node, token) with -EINTR; no-op if none waits. */
void llock_interrupt(struct llock *t, uint32_t node_id, uint64_t token);
/* Drops the locks of (node, owner) on ino: POSIX ones at close (flush),
 * flock ones at the last close of the open file (flock = 1). */
void llock_drop(struct llock *t, uint64_t ino, uint32_t node_id, uint64_t owner, int flock);
/* Number of locks held (status). */
unsigned llock_count(struct llock *t);

#endif

/* locks — the cluster's one lock table, kept by the owner: every fcntl
 * (classic and OFD) and flock request from any node's dipolefs mount ends
 * here (server.c for clients, local.c for the owner's own mount).
 *
 * Two independent kinds per node id (ino), as on Linux:
 * - POSIX byte ranges (struct fs_lock with flock = 0), owned by
 *   (node_id, lock owner): a classic lock's owner is the process, an OFD
 *   lock's is its open file; the table cannot tell them apart and need not.
 *   Invariant: one owner's ranges on a file never overlap, and two of the
 *   same type are never adjacent (they are merged). A new lock replaces the
 *   owner's locks on its range (upgrade/downgrade in place, split on
 *   partial unlock), atomically: on a conflict nothing changes.
 * - flock: one whole-file shared or exclusive lock per open file, owned by
 *   (node_id, fh). Conversion is not atomic (as Linux): the old lock is
 *   dropped first, so a failed or waiting conversion holds nothing.
 * Two locks conflict when their owners differ, they overlap and one is a
 * write lock (flock: exclusive). A POSIX lock never conflicts with a flock.
 *
 * The one-node rule (LOCKS_ONE_NODE; docs/dipolefs.md "Locks"): a file
 * that is a shared-memory index mapped by its users (SQLite's DB-shm, the
 * WAL index) can be coherent only among the processes of one node, since
 * each node's page cache holds its own copy of the mapping. On such a
 * file a POSIX lock held by one node conflicts with every POSIX request of
 * any other node, whatever their ranges and types, and F_GETLK from
 * another node reports it as F_WRLCK. Within a node the usual rules hold.
 * SQLite (os_unix.c unixLockSharedMemory, 3.40) asks F_GETLK for a write
 * lock on the DMS byte before it maps the index: a write lock reported
 * means "in use elsewhere", so a second node's SQLite fails with an error
 * instead of sharing an index it cannot see, and succeeds once the first
 * node's last user closed the database (its DMS lock went). The flag
 * sticks to the file while it has locks or waiters; the caller (local.c)
 * passes it on every request for a file it recognised as such.
 * SQLite takes that refusal for a transient race and retries for about
 * 10 s before failing with SQLITE_PROTOCOL; so the rule covers the
 * database file too: a request on a database whose WAL index (shm_ino,
 * given by the caller) has a POSIX lock of another node conflicts, and
 * F_GETLK reports that lock as F_WRLCK on the whole file. SQLite's first
 * step, its SHARED lock on the database, then fails at once with
 * SQLITE_BUSY ("database is locked", after the caller's busy timeout).
 * Such a wait is not part of the EDEADLK search.
 *
 * Lifetimes: POSIX locks go at each close of any descriptor of the file by
 * the owning process (flush → locks_release_owner), OFD locks and flocks at
 * the last close of the open file (release → locks_release_file), and all
 * of a node's locks when it leaves (locks_node_gone).
 *
 * Waiting: a blocked locks_setlk(LOCKS_WAIT) sleeps on its own condition
 * variable and re-checks whenever something on its file was unlocked; no
 * FIFO order is promised (as Linux). It ends granted, or -EINTR
 * (locks_interrupt), -ENOLCK (its node was declared gone), or -EDEADLK: a
 * POSIX request that would wait for an owner which, through a chain of
 * waiting owners (up to LOCKS_DEADLK_DEPTH), waits for the requester. As
 * Linux does for classic locks; unlike Linux, OFD locks are checked too (the
 * table cannot tell them apart), so an OFD lock shared by threads may see a
 * false EDEADLK. flocks are never checked (Linux neither).
 *
 * Grace (failover, docs/dipolefs.md "Locks"): after locks_grace_begin, and
 * until the duration passes, locks_grace_end, or every node expected to
 * reclaim (locks_grace_expect) said it is done (locks_reclaim_done), only
 * reclaims (LOCKS_RECLAIM) are granted; other requests fail -EAGAIN or,
 * with LOCKS_WAIT, wait for the grace period to end. Unlocks always
 * proceed. In grace a reclaim is granted when nothing conflicts and the
 * table does not know of a conflicting lock granted since (below).
 *
 * Reclaim without grace (a client that reconnects to the same owner):
 * with locks_set_keep(t, keep), locks_node_gone keeps what the node held
 * for `keep` as stale records that conflict with nothing but are marked
 * broken by any conflicting lock granted since (to another owner, whatever
 * its node). Outside grace a reclaim is granted only when an unbroken
 * stale record of the same owner (POSIX: node and owner; flock: node and
 * fh) of the same type covers it and nothing conflicts now; one that a
 * broken record of its owner overlaps is refused, in grace too: a lock
 * someone else held meanwhile, even briefly, makes it fail (-ENOLCK), so
 * the process learns its lock was not held throughout.
 * locks_reclaim_done drops the node's stale records. The one-node rule
 * does not break stale records.
 *
 * Locking: one mutex for the whole table, held only for the table's own
 * short work (no I/O, no callbacks); waiters sleep without it. Every request
 * on every file serializes on it: fine for the lock rates of databases and
 * mail spools; contention with thousands of lockers would call for a mutex
 * per file. Each function may be called from any thread.
 */
#ifndef DIPOLE_LOCKS_H
#define DIPOLE_LOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "fsops.h"

#define LOCKS_WAIT    1u /* F_SETLKW / flock without LOCK_NB */
#define LOCKS_RECLAIM 2u /* re-taking a lock held before a failover */
#define LOCKS_ONE_NODE 4u /* the file is a shared-memory index: one node's */

#define LOCKS_DEADLK_DEPTH 8 /* waiting owners followed to find a cycle */

struct locks;

/* An empty table. 0 or -ENOMEM (or the pthread error). */
int locks_open(struct locks **out);
/* Frees the table and every lock; no request may be in flight. */
void locks_close(struct locks *t);

/* F_GETLK for lk (type, range, owner, node_id) on ino: the first
 * conflicting lock (lowest start) into *lk — type, start, end, owner,
 * node_id, pid — or lk->type = F_UNLCK. flags: LOCKS_ONE_NODE or 0 (a
 * conflict by the one-node rule reports F_WRLCK). shm_ino: the node id of
 * ino's WAL index when ino is an SQLite database with one, else 0. 0 or
 * -EINVAL (bad type or range, a flock). */
int locks_getlk(struct locks *t, uint64_t ino, struct fs_lock *lk, unsigned flags, uint64_t shm_ino);

/* Sets or clears lk on ino through open file fh (the flock owner, and the
 * open file an OFD lock dies with). F_UNLCK always succeeds. Without
 * LOCKS_WAIT a conflict is -EAGAIN (== -EWOULDBLOCK, flock's LOCK_NB);
 * with it, the call waits (see above) under `token`, unique among the
 * node's requests in flight. LOCKS_RECLAIM: granted without conflict
 * during grace, or outside it as a stale record allows (above); never
 * waits; else -ENOLCK. LOCKS_ONE_NODE: ino is a
 * shared-memory index (the one-node rule above); shm_ino as for getlk.
 * Also -EINVAL, -ENOMEM. */
int locks_setlk(struct locks *t, uint64_t ino, uint64_t fh, const struct fs_lock *lk, unsigned flags,
		uint64_t shm_ino, uint64_t token);

/* Ends node's waiting request `token` with -EINTR. 0, or -ENOENT when no
 * such request waits: done already, or not arrived yet (the interrupt can
 * overtake its request: libfuse runs the interrupt callback as soon as it
 * is registered, server.c handles a client's INTERRUPT while the request's
 * thread starts); then it is remembered (10 s, the last 64), and that
 * request with LOCKS_WAIT ends -EINTR as it arrives. */
int locks_interrupt(struct locks *t, uint32_t node_id, uint64_t token);

/* Drops every POSIX lock of (node_id, owner) on ino (flush: a close by the
 * process). Returns how many records went. */
size_t locks_release_owner(struct locks *t, uint64_t ino, uint32_t node_id, uint64_t owner);
/* Drops the flock of (node_id, fh) and every POSIX lock last set through
 * fh on ino (release: OFD locks; a classic lock set through fh is gone by
 * then, since its process's close flushed first). Returns how many went. */
size_t locks_release_file(struct locks *t, uint64_t ino, uint32_t node_id, uint64_t fh);
/* node_id left: all its locks go (kept as stale records for its reclaim
 * with locks_set_keep), its waiters end -ENOLCK, every other waiter
 * re-checks. Returns how many locks went. */
size_t locks_node_gone(struct locks *t, uint32_t node_id);

/* Lock records held (POSIX ranges + flocks), for status. */
size_t locks_count(struct locks *t);
/* Requests blocked in locks_setlk (F_SETLKW, flock without LOCK_NB) now. */
size_t locks_waiting(struct locks *t);

/* Grace for duration_ns from now (restarts it if running). */
void locks_grace_begin(struct locks *t, uint64_t duration_ns);
/* Ends grace now (every survivor reclaimed); waiters re-check. */
void locks_grace_end(struct locks *t);
/* 1 while in grace, for status ("grace"). */
int locks_in_grace(struct locks *t);
/* The nodes (bit n: node id n) to reclaim in the current grace: grace
 * ends early once every expected node called locks_reclaim_done (a call
 * before counts). Node ids from 64 up cannot be named: a grace with such
 * a node runs its duration. */
void locks_grace_expect(struct locks *t, uint64_t nodes);
/* node_id re-sent every lock it still held: its stale records go, and it
 * counts as done for the grace period. */
void locks_reclaim_done(struct locks *t, uint32_t node_id);
/* How long locks_node_gone keeps a node's locks reclaimable, ns; 0 (the
 * default): not at all. */
void locks_set_keep(struct locks *t, uint64_t keep_ns);
/* One lock record, as the table holds it: on node ino, set through open
 * file fh (a flock's owner); lk->owner is 0 for a flock. */
struct locks_held {
	uint64_t ino, fh;
	struct fs_lock lk;
};
/* Every record now (a client's list of the locks it holds, to reclaim):
 * a malloc'd array into *out (the caller frees it, NULL when none) and its
 * length. 0 or -ENOMEM. */
int locks_snapshot(struct locks *t, struct locks_held **out, size_t *count);
/* Reclaims granted and refused since open (status "reclaims"). */
void locks_reclaims(struct locks *t, uint64_t *granted, uint64_t *refused);

#endif

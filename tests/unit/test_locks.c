/* Tests of the lock table (src/fs/locks.c): table-driven sequences of
 * requests with the answer each must get, probing the table's state with
 * F_GETLK and locks_count; threads for the waiting rules (granted on unlock,
 * interrupt, node gone, deadlock, grace). Links locks.o and base. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "unit.h"
#include "locks.h"
#include "util.h"

#define MAX UINT64_MAX
#define INO 7
#define R F_RDLCK
#define W F_WRLCK
#define U F_UNLCK

enum opk { SET = 1, GET, FLK, CNT, RELO, RELF, GONE };

/* One request and its answer. SET: a POSIX lock by (node, owner) through
 * fh; want = rc. GET: F_GETLK by (node, owner) for a write on [s,e]; want
 * = the conflict's type, ws/we/wnode/wowner its range and holder. FLK: a
 * flock by (node, fh) (owner ignored), LOCK_NB; want = rc. CNT: want =
 * locks_count. RELO/RELF/GONE: release_owner(node, owner) / release_file
 * (node, fh) / node_gone(node); want = records dropped. */
struct op {
	enum opk k;
	uint64_t ino;
	uint32_t node;
	uint64_t owner, fh;
	int type;
	uint64_t s, e;
	unsigned flags;
	long want;
	uint64_t ws, we;
	uint32_t wnode;
	uint64_t wowner;
	uint64_t shm;  /* the database's WAL index (ino), or 0 */
};

#define S(n, o, t, s_, e_, w)         { SET, INO, n, o, 100 + (o), t, s_, e_, 0, w, 0, 0, 0, 0, 0 }
#define SF(n, o, fh_, t, s_, e_, w)   { SET, INO, n, o, fh_, t, s_, e_, 0, w, 0, 0, 0, 0, 0 }
#define SI(i, n, o, t, s_, e_, w)     { SET, i, n, o, 100 + (o), t, s_, e_, 0, w, 0, 0, 0, 0, 0 }
#define SR(n, o, t, s_, e_, w)        { SET, INO, n, o, 100 + (o), t, s_, e_, LOCKS_RECLAIM, w, 0, 0, 0, 0, 0 }
#define G(n, o, s_, e_, wt, a, b, wn, wo) { GET, INO, n, o, 0, W, s_, e_, 0, wt, a, b, wn, wo, 0 }
#define GI(i, n, o, s_, e_, wt, a, b, wn, wo) { GET, i, n, o, 0, W, s_, e_, 0, wt, a, b, wn, wo, 0 }
#define GR(n, o, s_, e_, wt, a, b, wn, wo) { GET, INO, n, o, 0, R, s_, e_, 0, wt, a, b, wn, wo, 0 }
/* on a shared-memory index (LOCKS_ONE_NODE) */
#define S1(n, o, t, s_, e_, w)        { SET, INO, n, o, 100 + (o), t, s_, e_, LOCKS_ONE_NODE, w, 0, 0, 0, 0, 0 }
#define G1(n, o, s_, e_, wt, a, b, wn, wo) { GET, INO, n, o, 0, W, s_, e_, LOCKS_ONE_NODE, wt, a, b, wn, wo, 0 }
#define G1NONE(n, o, s_, e_)          { GET, INO, n, o, 0, W, s_, e_, LOCKS_ONE_NODE, U, 0, 0, 0, 0, 0 }
/* on the database DB whose WAL index is INO */
#define DB 8
#define SD(n, o, t, s_, e_, w)        { SET, DB, n, o, 200 + (o), t, s_, e_, 0, w, 0, 0, 0, 0, INO }
#define GD(n, o, s_, e_, wt, a, b, wn, wo) { GET, DB, n, o, 0, W, s_, e_, 0, wt, a, b, wn, wo, INO }
#define GDNONE(n, o, s_, e_)          { GET, DB, n, o, 0, W, s_, e_, 0, U, 0, 0, 0, 0, INO }
#define GNONE(n, o, s_, e_)           { GET, INO, n, o, 0, W, s_, e_, 0, U, 0, 0, 0, 0, 0 }
#define FL(n, fh_, t, w)              { FLK, INO, n, 0, fh_, t, 0, 0, 0, w, 0, 0, 0, 0, 0 }
#define FLR(n, fh_, t, w)             { FLK, INO, n, 0, fh_, t, 0, 0, LOCKS_RECLAIM, w, 0, 0, 0, 0, 0 }
#define C(c)                          { CNT, 0, 0, 0, 0, 0, 0, 0, 0, c, 0, 0, 0, 0, 0 }
#define RO(n, o, w)                   { RELO, INO, n, o, 0, 0, 0, 0, 0, w, 0, 0, 0, 0, 0 }
#define RF(n, fh_, w)                 { RELF, INO, n, 0, fh_, 0, 0, 0, 0, w, 0, 0, 0, 0, 0 }
#define GN(n, w)                      { GONE, 0, n, 0, 0, 0, 0, 0, 0, w, 0, 0, 0, 0, 0 }

struct lcase {
	const char *what;
	struct op ops[20];
};

static void run_ops(struct locks *t, const char *what, const struct op *ops)
{
	for (int i = 0; ops[i].k; i++) {
		const struct op *o = &ops[i];
		long got = 0;
		struct fs_lock lk = { .start = o->s, .end = o->e, .type = o->type, .owner = o->owner,
				      .node_id = o->node, .pid = 1000 + (uint32_t)o->owner };
		switch (o->k) {
		case SET:
			got = locks_setlk(t, o->ino, o->fh, &lk, o->flags, o->shm, 0);
			break;
		case FLK:
			lk.flock = 1;
			lk.start = 0;
			lk.end = MAX;
			got = locks_setlk(t, o->ino, o->fh, &lk, o->flags, o->shm, 0);
			break;
		case GET: {
			int rc = locks_getlk(t, o->ino, &lk, o->flags, o->shm);
			got = lk.type;
			if (rc) {
				fprintf(stderr, "    %s: step %d: getlk %d\n", what, i, rc);
				unit_failed_now = 1;
			} else if (lk.type != U && (lk.start != o->ws || lk.end != o->we || lk.node_id != o->wnode ||
						    lk.owner != o->wowner ||
						    lk.pid != 1000 + (uint32_t)o->wowner)) {
				fprintf(stderr,
					"    %s: step %d: holder [%llu,%llu] node %u owner %llu pid %u, want "
					"[%llu,%llu] node %u owner %llu\n",
					what, i, (unsigned long long)lk.start, (unsigned long long)lk.end, lk.node_id,
					(unsigned long long)lk.owner, lk.pid, (unsigned long long)o->ws,
					(unsigned long long)o->we, o->wnode, (unsigned long long)o->wowner);
				unit_failed_now = 1;
			}
			break;
		}
		case CNT:
			got = (long)locks_count(t);
			break;
		case RELO:
			got = (long)locks_release_owner(t, o->ino, o->node, o->owner);
			break;
		case RELF:
			got = (long)locks_release_file(t, o->ino, o->node, o->fh);
			break;
		case GONE:
			got = (long)locks_node_gone(t, o->node);
			break;
		}
		if (got != o->want) {
			fprintf(stderr, "    %s: step %d (kind %d): got %ld, want %ld\n", what, i, o->k, got, o->want);
			unit_failed_now = 1;
		}
	}
}

static void run_cases(const struct lcase *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct locks *t;
		if (locks_open(&t)) {
			CHECK(!"locks_open");
			return;
		}
		run_ops(t, cases[i].what, cases[i].ops);
		locks_close(t);
	}
}

TEST(ranges)
{
	static const struct lcase cases[] = {
		{ "adjacent same type merge", { S(1, 1, R, 0, 9, 0), S(1, 1, R, 10, 19, 0), C(1),
						 G(2, 9, 5, 5, R, 0, 19, 1, 1) } },
		{ "adjacent below merges too", { S(1, 1, W, 10, 19, 0), S(1, 1, W, 0, 9, 0), C(1),
						  G(2, 9, 0, 0, W, 0, 19, 1, 1) } },
		{ "overlapping same type merge", { S(1, 1, R, 0, 9, 0), S(1, 1, R, 20, 29, 0), C(2),
						    S(1, 1, R, 5, 25, 0), C(1), G(2, 9, 29, 40, R, 0, 29, 1, 1) } },
		{ "adjacent other type stays apart", { S(1, 1, W, 0, 9, 0), S(1, 1, R, 10, 19, 0), C(2),
							G(2, 9, 0, 19, W, 0, 9, 1, 1),
							G(2, 9, 10, 19, R, 10, 19, 1, 1) } },
		{ "other owners' ranges never merge", { S(1, 1, R, 0, 9, 0), S(1, 2, R, 10, 19, 0), C(2),
							 G(2, 9, 0, 19, R, 0, 9, 1, 1) } },
		{ "unlock in the middle splits", { S(1, 1, W, 0, 99, 0), S(1, 1, U, 40, 59, 0), C(2),
						    GNONE(2, 9, 40, 59), G(2, 9, 0, 0, W, 0, 39, 1, 1),
						    G(2, 9, 99, 99, W, 60, 99, 1, 1) } },
		{ "unlock an edge trims", { S(1, 1, W, 0, 99, 0), S(1, 1, U, 0, 9, 0), S(1, 1, U, 90, 200, 0), C(1),
					     G(2, 9, 0, 200, W, 10, 89, 1, 1) } },
		{ "unlock across several", { S(1, 1, W, 0, 9, 0), S(1, 1, R, 20, 29, 0), S(1, 1, W, 40, 49, 0),
					      S(1, 1, U, 5, 44, 0), C(2), G(2, 9, 0, 100, W, 0, 4, 1, 1),
					      G(2, 9, 5, 100, W, 45, 49, 1, 1) } },
		{ "unlock of nothing is fine", { S(1, 1, U, 0, MAX, 0), C(0) } },
		{ "upgrade in the middle: three pieces", { S(1, 1, R, 0, 99, 0), S(1, 1, W, 40, 59, 0), C(3),
							    G(2, 9, 0, 99, R, 0, 39, 1, 1),
							    G(2, 9, 40, 99, W, 40, 59, 1, 1),
							    G(2, 9, 60, 99, R, 60, 99, 1, 1) } },
		{ "downgrade back merges to one", { S(1, 1, R, 0, 99, 0), S(1, 1, W, 40, 59, 0),
						     S(1, 1, R, 40, 59, 0), C(1), G(2, 9, 50, 50, R, 0, 99, 1, 1) } },
		{ "upgrade of the whole range", { S(1, 1, R, 10, 19, 0), S(1, 1, R, 30, 39, 0),
						   S(1, 1, W, 0, 50, 0), C(1), G(2, 9, 0, MAX, W, 0, 50, 1, 1) } },
		{ "upgrade blocked by a reader: nothing changes",
		  { S(1, 1, R, 0, 99, 0), S(2, 1, R, 50, 50, 0), S(1, 1, W, 0, 99, -EAGAIN), C(2),
		    G(3, 9, 0, 49, R, 0, 99, 1, 1) } },
		{ "to EOF: end = UINT64_MAX", { S(1, 1, W, 100, MAX, 0), G(2, 9, MAX, MAX, W, 100, MAX, 1, 1),
						 GNONE(2, 9, 0, 99), S(1, 1, U, 200, MAX, 0), C(1),
						 G(2, 9, 0, MAX, W, 100, 199, 1, 1), S(1, 1, W, 200, MAX, 0), C(1),
						 G(2, 9, 0, MAX, W, 100, MAX, 1, 1), S(1, 1, U, 0, MAX, 0), C(0) } },
		{ "last byte adjacency", { S(1, 1, R, MAX, MAX, 0), S(1, 1, R, 0, MAX - 1, 0), C(1),
					    G(2, 9, 7, 7, R, 0, MAX, 1, 1) } },
		{ "an EOF lock does not wrap to byte 0", { S(1, 1, R, 100, MAX, 0), S(1, 1, R, 0, 9, 0), C(2),
							    GNONE(2, 9, 10, 99) } },
		{ "split of an EOF lock", { S(1, 1, W, 0, MAX, 0), S(1, 1, U, 10, 19, 0), C(2),
					     G(2, 9, 11, MAX, W, 20, MAX, 1, 1) } },
		{ "files are independent", { SI(7, 1, 1, W, 0, MAX, 0), SI(8, 2, 1, W, 0, MAX, 0), C(2),
					      GI(8, 3, 1, 0, 0, W, 0, MAX, 2, 1) } },
	};
	run_cases(cases, ARRAY_SIZE(cases));
}

TEST(conflicts)
{
	static const struct lcase cases[] = {
		{ "nodes: same owner number, different node conflict",
		  { S(1, 5, W, 0, 9, 0), S(2, 5, R, 5, 5, -EAGAIN), G(2, 5, 5, 5, W, 0, 9, 1, 5),
		    S(2, 5, R, 10, 19, 0), C(2) } },
		{ "readers share across nodes", { S(1, 1, R, 0, 9, 0), S(2, 1, R, 0, 9, 0), S(2, 2, R, 5, 50, 0),
						   S(3, 1, W, 9, 9, -EAGAIN), S(3, 1, W, 10, 10, -EAGAIN),
						   S(3, 1, W, 51, 60, 0) } },
		{ "within a node, owners conflict", { S(1, 1, R, 0, 9, 0), S(1, 2, R, 0, 9, 0),
						       S(1, 2, W, 0, 0, -EAGAIN), S(1, 1, W, 0, 0, -EAGAIN),
						       G(1, 2, 0, 0, R, 0, 9, 1, 1) } },
		{ "own locks never conflict", { S(1, 1, W, 0, 9, 0), S(1, 1, W, 5, 20, 0), S(1, 1, R, 0, 20, 0), C(1),
						 GNONE(1, 1, 0, MAX) } },
		{ "getlk: the first conflict by start", { S(1, 3, R, 50, 59, 0), S(1, 2, R, 20, 29, 0),
							   G(2, 9, 0, MAX, R, 20, 29, 1, 2) } },
		{ "getlk: a read probe passes readers", { S(1, 1, R, 0, 9, 0), S(1, 2, W, 20, 29, 0),
							   GR(2, 9, 0, 19, U, 0, 0, 0, 0),
							   GR(2, 9, 0, 29, W, 20, 29, 1, 2) } },
		{ "OFD and classic owners of one process conflict",
		  /* OFD owner 0xF0 set through fh 5; classic owner 1 through fh 5 too */
		  { SF(1, 0xF0, 5, W, 0, 9, 0), SF(1, 1, 5, W, 5, 5, -EAGAIN), SF(1, 1, 5, W, 10, 19, 0),
		    G(1, 1, 0, 9, W, 0, 9, 1, 0xF0) } },
		{ "flock: shared with shared, not with exclusive",
		  { FL(1, 5, R, 0), FL(2, 5, R, 0), FL(1, 6, W, -EWOULDBLOCK), C(2) } },
		{ "flock: the same open file (fork) shares its lock",
		  { FL(1, 5, W, 0), FL(1, 5, W, 0), FL(1, 5, R, 0), C(1), FL(1, 6, R, 0), C(2) } },
		{ "flock: conversion drops first (non-atomic)",
		  /* A and B share; A's upgrade fails and A holds nothing,
		   * so B's upgrade then succeeds */
		  { FL(1, 5, R, 0), FL(2, 6, R, 0), FL(1, 5, W, -EWOULDBLOCK), C(1), FL(2, 6, W, 0), C(1),
		    FL(1, 5, R, -EWOULDBLOCK) } },
		{ "flock and fcntl are independent",
		  { FL(1, 5, W, 0), S(2, 1, W, 0, MAX, 0), S(1, 2, W, 0, MAX, -EAGAIN), FL(2, 6, R, -EWOULDBLOCK),
		    C(2), FL(1, 5, U, 0), FL(2, 6, W, 0), G(1, 2, 0, 0, W, 0, MAX, 2, 1), C(2) } },
	};
	run_cases(cases, ARRAY_SIZE(cases));
}

/* SQLite's WAL index (DB-shm, os_unix.c unixLockSharedMemory): F_GETLK
 * for a write lock on the DMS byte (128); none: take it, then a read lock
 * there; a read lock: share it; a write lock: SQLITE_BUSY. */
#define DMS 128
#define SHF 0x40000002ull       /* SQLite's SHARED_FIRST */
#define SHL (SHF + 509)
TEST(one_node)
{
	static const struct lcase cases[] = {
		{ "one node: processes of a node share the index as usual",
		  { G1NONE(1, 1, DMS, DMS), S1(1, 1, W, DMS, DMS, 0), S1(1, 1, R, DMS, DMS, 0),
		    G1(1, 2, DMS, DMS, R, DMS, DMS, 1, 1), S1(1, 2, R, DMS, DMS, 0),
		    S1(1, 2, W, 120, 120, 0), S1(1, 1, W, 120, 120, -EAGAIN), C(3) } },
		{ "one node: another node's read lock is reported as a write lock",
		  { S1(1, 1, R, DMS, DMS, 0), G1(2, 3, DMS, DMS, W, DMS, DMS, 1, 1),
		    G1(2, 3, 0, 7, W, DMS, DMS, 1, 1) /* any range */ } },
		{ "one node: every request of another node conflicts, any range or type",
		  { S1(1, 1, R, DMS, DMS, 0), S1(2, 3, R, DMS, DMS, -EAGAIN), S1(2, 3, R, 0, 7, -EAGAIN),
		    S1(2, 3, W, 500, 600, -EAGAIN), S1(2, 3, U, 0, MAX, 0), C(1) } },
		{ "one node: the other node gets it once the last holder closed",
		  { S1(1, 1, R, DMS, DMS, 0), S1(1, 2, R, DMS, DMS, 0), RO(1, 1, 1),
		    S1(2, 3, R, DMS, DMS, -EAGAIN), RO(1, 2, 1), G1NONE(2, 3, DMS, DMS),
		    S1(2, 3, W, DMS, DMS, 0), S1(1, 1, R, DMS, DMS, -EAGAIN),
		    G1(1, 1, DMS, DMS, W, DMS, DMS, 2, 3) } },
		{ "one node: a node gone frees the index for the others",
		  { S1(1, 1, R, DMS, DMS, 0), GN(1, 1), S1(2, 3, R, DMS, DMS, 0) } },
		{ "one node: sticks to the file while it has locks",
		  { S1(1, 1, R, DMS, DMS, 0), S(2, 3, R, 0, 7, -EAGAIN), G(2, 3, 0, 7, W, DMS, DMS, 1, 1),
		    RO(1, 1, 1), S(2, 3, R, DMS, DMS, 0), S(1, 1, R, DMS, DMS, 0) } },
		{ "without the rule, nodes share read locks on the same bytes",
		  { S(1, 1, R, DMS, DMS, 0), S(2, 3, R, DMS, DMS, 0), GR(2, 4, DMS, DMS, U, 0, 0, 0, 0),
		    G(2, 4, DMS, DMS, R, DMS, DMS, 1, 1) } },
		{ "one node: flocks keep their own rules",
		  { S1(1, 1, R, DMS, DMS, 0), FL(2, 9, R, 0), FL(1, 8, R, 0) } },
		/* SQLite's SHARED lock: a read lock on [SHARED_FIRST, +510) */
		{ "WAL rule: the database is refused to another node while its index is locked",
		  { S1(1, 1, R, DMS, DMS, 0), S1(1, 2, R, DMS, DMS, 0), SD(1, 1, R, SHF, SHL, 0),
		    SD(1, 2, R, SHF, SHL, 0), SD(2, 3, R, SHF, SHL, -EAGAIN), SD(2, 3, W, 0, 0, -EAGAIN),
		    GD(2, 3, 0, 0, W, 0, MAX, 1, 1), SD(2, 3, U, 0, MAX, 0), C(4), RO(1, 1, 1),
		    SD(2, 3, R, SHF, SHL, -EAGAIN), GD(2, 3, SHF, SHL, R, SHF, SHL, 1, 1), /* ordinary first */
		    { RELO, DB, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0 },
		    { RELO, DB, 1, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0 }, GD(2, 3, 0, 0, W, 0, MAX, 1, 2),
		    S1(1, 2, U, 0, MAX, 0), GDNONE(2, 3, SHF, SHL), SD(2, 3, R, SHF, SHL, 0) } },
		{ "WAL rule: the node holding the index keeps the ordinary rules on the database",
		  { S1(1, 1, R, DMS, DMS, 0), SD(1, 2, W, 0, 9, 0), SD(1, 1, W, 5, 5, -EAGAIN),
		    GD(1, 1, 5, 5, W, 0, 9, 1, 2) } },
		{ "WAL rule: an unlocked index guards nothing",
		  { SD(2, 3, R, SHF, SHL, 0), GDNONE(1, 1, 0, 0), SD(1, 1, R, SHF, SHL, 0), S1(1, 1, R, DMS, DMS, 0) } },
	};
	run_cases(cases, ARRAY_SIZE(cases));
}

TEST(release)
{
	static const struct lcase cases[] = {
		{ "close (flush) drops the process's locks on that file only",
		  { S(1, 1, W, 0, 9, 0), S(1, 1, R, 20, 29, 0), SI(8, 1, 1, W, 0, 9, 0), S(1, 2, W, 50, 59, 0),
		    S(2, 1, W, 60, 69, 0), RO(1, 1, 2), C(3), GNONE(3, 1, 0, 49), G(3, 1, 0, MAX, W, 50, 59, 1, 2),
		    GI(8, 3, 1, 0, 0, W, 0, 9, 1, 1) } },
		{ "close keeps flocks", { FL(1, 5, W, 0), S(1, 1, W, 0, 9, 0), RO(1, 1, 1), C(1), FL(2, 6, R, -EAGAIN) } },
		{ "release drops the file's flock and OFD locks",
		  { FL(1, 5, W, 0), SF(1, 0xF0, 5, W, 0, 9, 0), SF(1, 1, 6, W, 10, 19, 0), FL(1, 6, W, -EAGAIN),
		    RF(1, 5, 2), C(1), FL(1, 6, W, 0), GNONE(2, 1, 0, 9), G(2, 1, 0, MAX, W, 10, 19, 1, 1) } },
		{ "release of another node's fh number drops nothing",
		  { FL(1, 5, W, 0), SF(1, 0xF0, 5, W, 0, 9, 0), RF(2, 5, 0), C(2) } },
		{ "node gone: all its locks everywhere, others stay",
		  { S(1, 1, W, 0, 9, 0), S(1, 2, R, 20, 29, 0), SI(8, 1, 1, W, 0, 9, 0), FL(1, 5, R, 0),
		    S(2, 1, W, 40, 49, 0), FL(2, 6, R, 0), GN(1, 4), C(2), S(3, 1, W, 0, 39, 0),
		    GI(8, 3, 2, 0, MAX, U, 0, 0, 0, 0), FL(3, 7, W, -EAGAIN), GN(1, 0) } },
	};
	run_cases(cases, ARRAY_SIZE(cases));
}

TEST(invalid)
{
	struct locks *t;
	CHECK(locks_open(&t) == 0);
	struct fs_lock bad_range = { .start = 10, .end = 9, .type = W, .owner = 1, .node_id = 1 };
	struct fs_lock bad_type = { .start = 0, .end = 9, .type = 42, .owner = 1, .node_id = 1 };
	struct fs_lock fl = { .start = 0, .end = MAX, .type = W, .owner = 1, .node_id = 1, .flock = 1 };
	struct fs_lock unl = { .start = 0, .end = MAX, .type = U, .owner = 1, .node_id = 1 };
	CHECK(locks_setlk(t, INO, 1, &bad_range, 0, 0, 0) == -EINVAL);
	CHECK(locks_setlk(t, INO, 1, &bad_type, 0, 0, 0) == -EINVAL);
	CHECK(locks_getlk(t, INO, &bad_range, 0, 0) == -EINVAL);
	CHECK(locks_getlk(t, INO, &fl, 0, 0) == -EINVAL);
	CHECK(locks_getlk(t, INO, &unl, LOCKS_ONE_NODE, 0) == -EINVAL);
	CHECK(locks_count(t) == 0);
	CHECK(locks_interrupt(t, 1, 99) == -ENOENT);
	locks_close(t);
}

TEST(grace)
{
	struct locks *t;
	CHECK(locks_open(&t) == 0);
	static const struct op setup[] = { SR(1, 1, W, 0, 9, -ENOLCK), FLR(1, 5, R, -ENOLCK), C(0), { 0 } };
	run_ops(t, "reclaim outside grace", setup);
	CHECK(!locks_in_grace(t));
	locks_grace_begin(t, 10ull * 1000000000u);
	CHECK(locks_in_grace(t));
	static const struct op in_grace[] = {
		SR(1, 1, W, 0, 9, 0),        /* reclaims granted */
		FLR(1, 5, R, 0),
		S(2, 1, R, 100, 109, -EAGAIN), /* nothing new, even without conflict */
		FL(2, 6, R, -EAGAIN),
		SR(2, 1, W, 5, 5, -ENOLCK),  /* a conflicting reclaim is refused */
		FLR(2, 6, W, -ENOLCK),
		S(1, 1, U, 5, 5, 0),         /* unlocks proceed */
		C(3),
		G(2, 1, 0, MAX, W, 0, 4, 1, 1), /* getlk answers */
		{ 0 },
	};
	run_ops(t, "in grace", in_grace);
	locks_grace_end(t);
	CHECK(!locks_in_grace(t));
	static const struct op after[] = { SR(2, 1, W, 100, 109, -ENOLCK), S(2, 1, R, 100, 109, 0), C(4), { 0 } };
	run_ops(t, "after grace", after);
	/* grace ends by itself */
	locks_grace_begin(t, 30ull * 1000000u);
	static const struct op expiring[] = { S(3, 1, R, 200, 209, -EAGAIN), { 0 } };
	run_ops(t, "short grace", expiring);
	struct timespec ts = { 0, 60 * 1000000 };
	nanosleep(&ts, NULL);
	CHECK(!locks_in_grace(t));
	static const struct op expired[] = { S(3, 1, R, 200, 209, 0), { 0 } };
	run_ops(t, "short grace over", expired);
	locks_close(t);
}

/* ---- waiting: a request on its own thread ---- */

struct waiter {
	pthread_t th;
	struct locks *t;
	uint64_t ino, fh, token, shm;
	struct fs_lock lk;
	unsigned flags;
	atomic_int done;
	int rc;
	size_t waiting_before;  /* requests waiting in the table before this one */
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;
	w->rc = locks_setlk(w->t, w->ino, w->fh, &w->lk, w->flags, w->shm, w->token);
	atomic_store(&w->done, 1);
	return NULL;
}

static void prep_wait(struct waiter *w, struct locks *t, uint32_t node, uint64_t owner, int type, uint64_t s,
		      uint64_t e, int flock, uint64_t token)
{
	memset(w, 0, sizeof *w);
	w->t = t;
	w->ino = INO;
	w->fh = 100 + owner;
	w->token = token;
	w->flags = LOCKS_WAIT;
	w->lk = (struct fs_lock){ .start = s, .end = e, .type = type, .owner = owner, .node_id = node,
				  .pid = 1000 + (uint32_t)owner, .flock = flock };
	w->waiting_before = locks_waiting(t);
}

static void start_wait(struct waiter *w, struct locks *t, uint32_t node, uint64_t owner, int type, uint64_t s,
		       uint64_t e, int flock, uint64_t token)
{
	prep_wait(w, t, node, owner, type, s, e, flock, token);
	pthread_create(&w->th, NULL, wait_main, w);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* lets a waiter reach its wait (the table counts it waiting, or it is
 * done: a rule that granted or refused it at once); then it must still be
 * waiting. A slow machine only makes this take longer. */
static int still_waiting(struct waiter *w)
{
	size_t before = w->waiting_before;
	for (int i = 0; i < 500 && !atomic_load(&w->done) && locks_waiting(w->t) <= before; i++)
		sleep_ms(10);
	sleep_ms(20);
	return !atomic_load(&w->done);
}

/* The waiter's answer, within 5 s; one that still waits then is
 * interrupted (and the test fails: -EINTR or -ETIMEDOUT), so a broken rule
 * fails rather than hangs. */
static int finish(struct waiter *w)
{
	for (int i = 0; i < 500 && !atomic_load(&w->done); i++)
		sleep_ms(10);
	if (!atomic_load(&w->done)) {
		fprintf(stderr, "    waiter (node %u owner %llu) still waits after 5 s\n", w->lk.node_id,
			(unsigned long long)w->lk.owner);
		locks_interrupt(w->t, w->lk.node_id, w->token);
		sleep_ms(100);
		if (!atomic_load(&w->done)) {
			locks_node_gone(w->t, w->lk.node_id);
			sleep_ms(100);
		}
		if (!atomic_load(&w->done))
			return -ETIMEDOUT; /* leaks the thread; the test failed */
	}
	pthread_join(w->th, NULL);
	return w->rc;
}

/* A blocking request from this thread's point of view, bounded: its answer */
static int set_wait(struct locks *t, uint32_t node, uint64_t owner, int type, uint64_t s, uint64_t e)
{
	struct waiter w;
	start_wait(&w, t, node, owner, type, s, e, 0, 1000 + owner);
	return finish(&w);
}

static int set(struct locks *t, uint32_t node, uint64_t owner, int type, uint64_t s, uint64_t e, unsigned flags)
{
	struct fs_lock lk = { .start = s, .end = e, .type = type, .owner = owner, .node_id = node,
			      .pid = 1000 + (uint32_t)owner };
	return locks_setlk(t, INO, 100 + owner, &lk, flags, 0, 0);
}

static int holder(struct locks *t, uint64_t s, uint64_t e, uint32_t *node, uint64_t *owner)
{
	struct fs_lock lk = { .start = s, .end = e, .type = W, .owner = 999, .node_id = 99 };
	locks_getlk(t, INO, &lk, 0, 0);
	*node = lk.node_id;
	*owner = lk.owner;
	return lk.type;
}

TEST(wait_granted_on_unlock)
{
	struct locks *t;
	struct waiter w;
	uint32_t n;
	uint64_t o;
	CHECK(locks_open(&t) == 0);
	CHECK(set(t, 1, 1, W, 0, 99, 0) == 0);
	start_wait(&w, t, 2, 1, W, 50, 150, 0, 1);
	CHECK(still_waiting(&w));
	CHECK(set(t, 1, 1, U, 0, 49, 0) == 0); /* not the part it waits on */
	CHECK(still_waiting(&w));
	CHECK(set(t, 1, 1, U, 50, 99, 0) == 0);
	CHECK(finish(&w) == 0);
	CHECK(holder(t, 0, MAX, &n, &o) == W && n == 2 && o == 1);
	/* a downgrade to read wakes a reader */
	CHECK(set(t, 1, 1, W, 200, 299, 0) == 0);
	start_wait(&w, t, 3, 1, R, 250, 250, 0, 2);
	CHECK(still_waiting(&w));
	CHECK(set(t, 1, 1, R, 200, 299, 0) == 0);
	CHECK(finish(&w) == 0);
	/* close (flush) of the holder wakes a waiter */
	start_wait(&w, t, 3, 2, W, 0, MAX, 0, 3);
	CHECK(still_waiting(&w));
	CHECK(locks_release_owner(t, INO, 1, 1) == 1);
	CHECK(still_waiting(&w)); /* node 2 and node 3 owner 1 still hold */
	CHECK(locks_release_owner(t, INO, 2, 1) == 1);
	CHECK(locks_release_owner(t, INO, 3, 1) == 1);
	CHECK(finish(&w) == 0);
	CHECK(locks_count(t) == 1);
	locks_close(t);
}

TEST(wait_flock)
{
	struct locks *t;
	struct waiter w;
	CHECK(locks_open(&t) == 0);
	struct fs_lock ex = { .start = 0, .end = MAX, .type = W, .node_id = 1, .flock = 1 };
	CHECK(locks_setlk(t, INO, 5, &ex, 0, 0, 0) == 0);
	start_wait(&w, t, 2, 6, R, 0, MAX, 1, 1);
	CHECK(still_waiting(&w));
	CHECK(set(t, 1, 1, U, 0, MAX, 0) == 0); /* a POSIX unlock changes nothing */
	CHECK(still_waiting(&w));
	CHECK(locks_release_file(t, INO, 1, 5) == 1);
	CHECK(finish(&w) == 0);
	CHECK(locks_count(t) == 1);
	locks_close(t);
}

TEST(interrupt)
{
	struct locks *t;
	struct waiter w, w2;
	CHECK(locks_open(&t) == 0);
	CHECK(set(t, 1, 1, W, 0, 9, 0) == 0);
	start_wait(&w, t, 2, 1, W, 0, 9, 0, 77);
	start_wait(&w2, t, 3, 1, W, 0, 9, 0, 77); /* same token, other node */
	CHECK(still_waiting(&w) && still_waiting(&w2));
	CHECK(locks_interrupt(t, 2, 78) == -ENOENT);
	CHECK(still_waiting(&w));
	CHECK(locks_interrupt(t, 2, 77) == 0);
	CHECK(finish(&w) == -EINTR);
	CHECK(still_waiting(&w2));
	CHECK(locks_count(t) == 1);
	CHECK(locks_interrupt(t, 2, 77) == -ENOENT);
	CHECK(set(t, 1, 1, U, 0, 9, 0) == 0);
	CHECK(finish(&w2) == 0);
	/* a flock conversion interrupted holds nothing (it dropped first) */
	struct fs_lock sh = { .start = 0, .end = MAX, .type = R, .node_id = 1, .flock = 1 };
	struct fs_lock sh2 = sh;
	sh2.node_id = 2;
	CHECK(locks_setlk(t, INO, 5, &sh, 0, 0, 0) == 0);
	CHECK(locks_setlk(t, INO, 106, &sh2, 0, 0, 0) == 0); /* start_wait's fh for owner 6 */
	start_wait(&w, t, 2, 6, W, 0, MAX, 1, 9);
	CHECK(still_waiting(&w));
	CHECK(locks_interrupt(t, 2, 9) == 0);
	CHECK(finish(&w) == -EINTR);
	CHECK(locks_count(t) == 2); /* node 3's POSIX lock and node 1's flock */
	locks_close(t);
}

/* The interrupt may overtake its request: libfuse runs the interrupt
 * callback as soon as it is registered, before the request reaches the
 * table, and the owner's server handles a client's INTERRUPT on its reader
 * while the request's thread is starting. */
TEST(interrupt_before_wait)
{
	struct locks *t;
	struct waiter w;
	CHECK(locks_open(&t) == 0);
	CHECK(set(t, 1, 1, W, 0, 9, 0) == 0);
	CHECK(locks_interrupt(t, 2, 5) == -ENOENT);
	start_wait(&w, t, 2, 1, W, 0, 9, 0, 5);
	sleep_ms(80);
	CHECK(set(t, 1, 1, U, 0, 9, 0) == 0);
	CHECK(finish(&w) == -EINTR);
	/* used up: the next request with that token waits as any */
	CHECK(set(t, 1, 1, W, 0, 9, 0) == 0);
	start_wait(&w, t, 2, 1, W, 0, 9, 0, 5);
	CHECK(still_waiting(&w));
	CHECK(locks_interrupt(t, 2, 5) == 0);
	CHECK(finish(&w) == -EINTR);
	/* a node that left takes its early interrupts along */
	CHECK(locks_interrupt(t, 3, 6) == -ENOENT);
	CHECK(locks_node_gone(t, 3) == 0);
	start_wait(&w, t, 3, 1, W, 0, 9, 0, 6);
	CHECK(still_waiting(&w));
	CHECK(set(t, 1, 1, U, 0, 9, 0) == 0);
	CHECK(finish(&w) == 0);
	locks_close(t);
}

TEST(node_gone)
{
	struct locks *t;
	struct waiter w2, w3, w4;
	uint32_t n;
	uint64_t o;
	CHECK(locks_open(&t) == 0);
	CHECK(set(t, 1, 1, W, 0, 9, 0) == 0);
	start_wait(&w2, t, 2, 1, W, 0, 9, 0, 1);
	start_wait(&w3, t, 3, 1, R, 5, 5, 0, 1);
	start_wait(&w4, t, 4, 1, R, 9, 9, 0, 1);
	CHECK(still_waiting(&w2) && still_waiting(&w3) && still_waiting(&w4));
	CHECK(locks_node_gone(t, 2) == 0);
	CHECK(finish(&w2) == -ENOLCK);
	CHECK(still_waiting(&w3) && still_waiting(&w4));
	CHECK(locks_node_gone(t, 1) == 1);
	CHECK(finish(&w3) == 0);
	CHECK(finish(&w4) == 0);
	CHECK(holder(t, 0, MAX, &n, &o) == R && (n == 3 || n == 4));
	CHECK(locks_count(t) == 2);
	locks_close(t);
}

TEST(deadlock)
{
	struct locks *t;
	struct waiter wa, wb;
	CHECK(locks_open(&t) == 0);
	/* two owners on two nodes: B waits for A, then A asks for B's */
	CHECK(set(t, 1, 1, W, 0, 9, 0) == 0);
	CHECK(set(t, 2, 1, W, 10, 19, 0) == 0);
	start_wait(&wb, t, 2, 1, W, 0, 9, 0, 1);
	CHECK(still_waiting(&wb));
	CHECK(set_wait(t, 1, 1, W, 10, 19) == -EDEADLK);
	CHECK(set(t, 1, 1, W, 10, 19, 0) == -EAGAIN); /* without waiting: no EDEADLK */
	CHECK(still_waiting(&wb));
	CHECK(set(t, 1, 1, U, 0, 9, 0) == 0);
	CHECK(finish(&wb) == 0);
	CHECK(locks_node_gone(t, 1) == 0 && locks_node_gone(t, 2) == 1); /* merged */

	/* a three-owner cycle: A→B→C→A, the last request closes it */
	CHECK(set(t, 1, 1, W, 0, 9, 0) == 0);
	CHECK(set(t, 1, 2, W, 10, 19, 0) == 0);
	CHECK(set(t, 2, 3, W, 20, 29, 0) == 0);
	start_wait(&wa, t, 1, 1, W, 10, 19, 0, 1);  /* A waits for B */
	start_wait(&wb, t, 1, 2, W, 20, 29, 0, 2);  /* B waits for C */
	CHECK(still_waiting(&wa) && still_waiting(&wb));
	CHECK(set_wait(t, 2, 3, R, 0, 0) == -EDEADLK); /* C for A */
	CHECK(set(t, 2, 4, R, 0, 0, 0) == -EAGAIN);  /* D is no part of it */
	CHECK(set(t, 2, 3, U, 20, 29, 0) == 0);
	CHECK(finish(&wb) == 0);
	CHECK(still_waiting(&wa));
	CHECK(set(t, 1, 2, U, 0, MAX, 0) == 0);
	CHECK(finish(&wa) == 0);
	CHECK(locks_node_gone(t, 1) == 1 && locks_count(t) == 0); /* A: [0,19] */

	/* two readers upgrading: the second would wait for the first */
	CHECK(set(t, 1, 1, R, 0, 9, 0) == 0);
	CHECK(set(t, 2, 1, R, 0, 9, 0) == 0);
	start_wait(&wa, t, 1, 1, W, 0, 9, 0, 1);
	CHECK(still_waiting(&wa));
	CHECK(set_wait(t, 2, 1, W, 0, 9) == -EDEADLK);
	CHECK(set(t, 2, 1, U, 0, 9, 0) == 0);
	CHECK(finish(&wa) == 0);
	locks_close(t);
}

TEST(grace_waiter)
{
	struct locks *t;
	struct waiter w, w2;
	CHECK(locks_open(&t) == 0);
	locks_grace_begin(t, 10ull * 1000000000u);
	start_wait(&w, t, 2, 1, W, 0, 9, 0, 1);
	CHECK(still_waiting(&w));
	CHECK(set(t, 1, 1, W, 100, 109, LOCKS_RECLAIM) == 0);
	CHECK(still_waiting(&w));
	locks_grace_end(t);
	CHECK(finish(&w) == 0);
	/* a waiter also notices grace run out by itself */
	locks_grace_begin(t, 150ull * 1000000u);
	start_wait(&w2, t, 3, 1, R, 100, 109, 0, 1); /* conflicts with the reclaimed lock */
	start_wait(&w, t, 3, 2, R, 50, 59, 0, 2);
	CHECK(still_waiting(&w));
	CHECK(finish(&w) == 0);
	CHECK(still_waiting(&w2));
	CHECK(locks_interrupt(t, 3, 1) == 0);
	CHECK(finish(&w2) == -EINTR);
	locks_close(t);
}

TEST(wal_rule_waiter)
{
	struct locks *t;
	struct waiter w;
	CHECK(locks_open(&t) == 0);
	CHECK(set(t, 1, 1, R, DMS, DMS, LOCKS_ONE_NODE) == 0); /* on INO, the index */
	prep_wait(&w, t, 2, 3, R, SHF, SHL, 0, 1);
	w.ino = DB;
	w.shm = INO;
	pthread_create(&w.th, NULL, wait_main, &w);
	CHECK(still_waiting(&w));
	CHECK(locks_release_owner(t, INO, 1, 1) == 1); /* wakes the database's waiters */
	CHECK(finish(&w) == 0);
	locks_close(t);
}

TEST(one_node_waiter)
{
	struct locks *t;
	struct waiter w;
	CHECK(locks_open(&t) == 0);
	CHECK(set(t, 1, 1, R, DMS, DMS, LOCKS_ONE_NODE) == 0);
	CHECK(set(t, 1, 2, R, 0, 0, LOCKS_ONE_NODE) == 0);
	prep_wait(&w, t, 2, 3, R, 500, 500, 0, 1);
	w.flags |= LOCKS_ONE_NODE;
	pthread_create(&w.th, NULL, wait_main, &w);
	CHECK(still_waiting(&w));
	CHECK(locks_release_owner(t, INO, 1, 1) == 1);
	CHECK(still_waiting(&w)); /* node 1 still holds a lock, elsewhere */
	CHECK(locks_release_owner(t, INO, 1, 2) == 1);
	CHECK(finish(&w) == 0);
	locks_close(t);
}

/* Reclaim without grace (a reconnect to the same owner): only what the
 * node held when it left, and only if nothing conflicting was granted
 * meanwhile, even briefly. */
TEST(reclaim_kept)
{
	struct locks *t;
	CHECK(locks_open(&t) == 0);
	locks_set_keep(t, 10ull * 1000000000u);
	static const struct op ops[] = {
		S(1, 1, W, 0, 9, 0), S(1, 2, R, 20, 29, 0), S(1, 3, W, 40, 49, 0), FL(1, 7, W, 0),
		GN(1, 4), C(0),
		SR(1, 1, W, 0, 9, 0),          /* nothing happened meanwhile */
		SR(1, 1, W, 0, 4, 0),          /* a part of it, again */
		SR(1, 1, W, 0, 19, -ENOLCK),   /* more than it held */
		SR(1, 2, W, 20, 29, -ENOLCK),  /* not the type it held */
		S(2, 9, R, 25, 25, 0),         /* a reader shares the read lock */
		SR(1, 2, R, 20, 29, 0),
		S(2, 9, W, 45, 45, 0), RO(2, 9, 2), /* took the write range and left */
		SR(1, 3, W, 40, 49, -ENOLCK),  /* came and went: refused */
		FLR(1, 7, W, 0),
		FLR(1, 8, W, -ENOLCK),         /* a flock is its open file's */
		SR(3, 1, W, 60, 69, -ENOLCK),  /* another node held nothing */
		C(3), { 0 } };
	run_ops(t, "reclaim after a reconnect", ops);
	uint64_t ok, no;
	locks_reclaims(t, &ok, &no);
	CHECK(ok == 4 && no == 5);
	/* done: what it did not reclaim is gone for good */
	CHECK(set(t, 1, 1, U, 0, 9, 0) == 0);
	CHECK(locks_node_gone(t, 1) == 2);
	locks_reclaim_done(t, 1);
	CHECK(set(t, 1, 2, R, 20, 29, LOCKS_RECLAIM) == -ENOLCK);
	/* without keep, a node's locks are not reclaimable */
	locks_set_keep(t, 0);
	CHECK(set(t, 1, 1, W, 0, 9, 0) == 0 && locks_node_gone(t, 1) == 1);
	CHECK(set(t, 1, 1, W, 0, 9, LOCKS_RECLAIM) == -ENOLCK);
	CHECK(locks_count(t) == 0);
	locks_close(t);
}

/* Kept locks expire; a later departure replaces the earlier one's. */
TEST(reclaim_kept_expires)
{
	struct locks *t;
	CHECK(locks_open(&t) == 0);
	locks_set_keep(t, 50ull * 1000000u);
	CHECK(set(t, 1, 1, W, 0, 9, 0) == 0 && locks_node_gone(t, 1) == 1);
	sleep_ms(100);
	CHECK(set(t, 1, 1, W, 0, 9, LOCKS_RECLAIM) == -ENOLCK);
	locks_set_keep(t, 10ull * 1000000000u);
	CHECK(set(t, 1, 1, W, 0, 9, 0) == 0 && locks_node_gone(t, 1) == 1);
	CHECK(locks_node_gone(t, 1) == 0); /* gone again, holding nothing */
	CHECK(set(t, 1, 1, W, 0, 9, LOCKS_RECLAIM) == -ENOLCK);
	locks_close(t);
}

/* Grace ends early once every expected node said it is done, in any
 * order; a node not expected does not end it. */
TEST(grace_early_end)
{
	struct locks *t;
	struct waiter w;
	CHECK(locks_open(&t) == 0);
	/* in grace too, a reclaim of a lock known to have been taken since
	 * the node left is refused; one the table knows nothing of is not */
	locks_set_keep(t, 10ull * 1000000000u);
	CHECK(set(t, 3, 2, W, 20, 29, 0) == 0 && locks_node_gone(t, 3) == 1);
	CHECK(set(t, 4, 2, R, 25, 25, 0) == 0 && locks_release_owner(t, INO, 4, 2) == 1);
	locks_grace_begin(t, 60ull * 1000000000u);
	CHECK(set(t, 3, 2, W, 20, 29, LOCKS_RECLAIM) == -ENOLCK);
	CHECK(set(t, 3, 2, W, 30, 39, LOCKS_RECLAIM) == 0 && set(t, 3, 2, U, 30, 39, 0) == 0);
	locks_reclaim_done(t, 2); /* before it was expected */
	locks_grace_expect(t, 1u << 2 | 1u << 3);
	CHECK(locks_in_grace(t));
	start_wait(&w, t, 4, 1, W, 0, 9, 0, 1);
	CHECK(set(t, 3, 1, W, 0, 9, LOCKS_RECLAIM) == 0);
	locks_reclaim_done(t, 5);
	CHECK(locks_in_grace(t) && still_waiting(&w));
	locks_reclaim_done(t, 3);
	CHECK(!locks_in_grace(t));
	CHECK(set(t, 3, 1, U, 0, 9, 0) == 0);
	CHECK(finish(&w) == 0); /* the new lock waited for grace's end, then for node 3 */
	/* a new grace forgets who was done */
	locks_grace_begin(t, 60ull * 1000000000u);
	locks_grace_expect(t, 1u << 3);
	CHECK(locks_in_grace(t));
	locks_grace_end(t);
	locks_close(t);
}

int main(void) { return unit_main("locks"); }

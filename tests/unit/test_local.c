/* Tests of the owner's backend (src/fs/local.c) where it meets the lock
 * table: which open file a lock request may name, that a close drops its
 * process's locks whatever handle it comes through, and which files the
 * WAL rule (locks.h) applies to, recognised by name. Runs local_ops over a
 * temporary directory, as two nodes' callers. Links local.o, locks.o and
 * base. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "local.h"
#include "util.h"

#define MAX UINT64_MAX
#define DMS 128             /* SQLite's DMS byte in DB-shm */
#define SHF 0x40000002ull   /* SQLite's SHARED_FIRST in the database */

struct env {
	char dir[64];
	int dfd;
	struct local *l;
};

static const struct fs_caller node1 = { .pid = 100, .node_id = 1 };
static const struct fs_caller node2 = { .pid = 200, .node_id = 2 };

static int env_open(struct env *v)
{
	snprintf(v->dir, sizeof v->dir, "/tmp/dipole-test-local.XXXXXX");
	if (!mkdtemp(v->dir))
		return -1;
	v->dfd = open(v->dir, O_RDONLY | O_DIRECTORY);
	return v->dfd < 0 ? -1 : local_open(&v->l, v->dfd);
}

static void env_close(struct env *v)
{
	local_close(v->l);
	close(v->dfd);
	char cmd[96];
	snprintf(cmd, sizeof cmd, "rm -rf %s", v->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "    could not remove %s\n", v->dir);
}

static uint64_t create(struct env *v, const struct fs_caller *c, const char *name, uint64_t *fh)
{
	struct fs_entry e;
	int rc = local_ops.create(v->l, c, FS_ROOT_INO, name, 0644, O_RDWR, &e, fh);
	CHECK(rc == 0);
	return rc ? 0 : e.ino;
}

static int setlk(struct env *v, const struct fs_caller *c, uint64_t ino, uint64_t fh, uint64_t owner, int type,
		 uint64_t s, uint64_t e)
{
	struct fs_lock lk = { .start = s, .end = e, .type = type, .owner = owner, .node_id = c->node_id,
			      .pid = c->pid };
	return local_ops.setlk(v->l, c, ino, fh, &lk, 0, 0);
}

/* F_GETLK for a write lock on [s, e] by c: the conflicting type or F_UNLCK */
static int getlk(struct env *v, const struct fs_caller *c, uint64_t ino, uint64_t s, uint64_t e)
{
	struct fs_lock lk = { .start = s, .end = e, .type = F_WRLCK, .owner = 999, .node_id = c->node_id };
	CHECK(local_ops.getlk(v->l, c, ino, 0, &lk) == 0);
	return lk.type;
}

/* After a client reconnects, the owner has released the handles it held
 * (server.c), while its processes still have those files open: a lock
 * taken through such a handle could never be dropped by a release. */
TEST(lock_through_a_released_handle_refused)
{
	struct env v;
	uint64_t fh, fh2;
	CHECK(env_open(&v) == 0);
	uint64_t ino = create(&v, &node2, "f", &fh);
	CHECK(local_ops.release(v.l, ino, fh) == 0);
	CHECK(setlk(&v, &node2, ino, fh, 5, F_WRLCK, 0, 9) == -EBADF);
	struct fs_lock fl = { .end = MAX, .type = F_WRLCK, .node_id = 2, .flock = 1 };
	CHECK(local_ops.setlk(v.l, &node2, ino, fh, &fl, 0, 0) == -EBADF);
	CHECK(getlk(&v, &node1, ino, 0, MAX) == F_UNLCK);
	CHECK(local_lock_count(v.l) == 0);
	/* an unlock through it harms no one */
	CHECK(setlk(&v, &node2, ino, fh, 5, F_UNLCK, 0, MAX) == 0);
	/* another node's handle is not the caller's */
	CHECK(local_ops.open(v.l, &node2, ino, O_RDWR, &fh2) == 0);
	CHECK(setlk(&v, &node1, ino, fh2, 5, F_WRLCK, 0, 9) == -EBADF);
	CHECK(setlk(&v, &node2, ino, fh2, 5, F_WRLCK, 0, 9) == 0);
	CHECK(local_ops.release(v.l, ino, fh2) == 0);
	env_close(&v);
}

/* A close by the process drops its POSIX locks on the file, even when the
 * handle it closes through is one the owner no longer knows. */
TEST(flush_through_unknown_handle_drops_locks)
{
	struct env v;
	uint64_t fh, stale;
	CHECK(env_open(&v) == 0);
	uint64_t ino = create(&v, &node2, "f", &fh);
	CHECK(local_ops.open(v.l, &node2, ino, O_RDONLY, &stale) == 0);
	CHECK(local_ops.release(v.l, ino, stale) == 0);
	CHECK(setlk(&v, &node2, ino, fh, 7, F_WRLCK, 0, 9) == 0);
	CHECK(getlk(&v, &node1, ino, 0, MAX) == F_WRLCK);
	CHECK(local_ops.flush(v.l, &node2, ino, stale, 7) == -EBADF);
	CHECK(getlk(&v, &node1, ino, 0, MAX) == F_UNLCK);
	CHECK(local_ops.release(v.l, ino, fh) == 0);
	env_close(&v);
}

/* DB-shm is a WAL index by its name; its locks keep another node off it
 * and off DB */
TEST(wal_rule_by_name)
{
	struct env v;
	uint64_t dbfh, shmfh, otherfh, db2fh, shm2fh;
	CHECK(env_open(&v) == 0);
	uint64_t db = create(&v, &node2, "db", &dbfh);
	uint64_t shm = create(&v, &node2, "db-shm", &shmfh);
	uint64_t other = create(&v, &node2, "shm", &otherfh);
	CHECK(setlk(&v, &node2, shm, shmfh, 1, F_RDLCK, DMS, DMS) == 0);
	CHECK(setlk(&v, &node2, db, dbfh, 1, F_RDLCK, SHF, SHF + 509) == 0);
	CHECK(local_ops.open(v.l, &node1, db, O_RDWR, &db2fh) == 0);
	CHECK(local_ops.open(v.l, &node1, shm, O_RDWR, &shm2fh) == 0);
	CHECK(getlk(&v, &node1, shm, DMS, DMS) == F_WRLCK);   /* a read lock, reported as a write lock */
	CHECK(setlk(&v, &node1, shm, shm2fh, 2, F_RDLCK, DMS, DMS) == -EAGAIN);
	CHECK(setlk(&v, &node1, db, db2fh, 2, F_RDLCK, SHF, SHF + 509) == -EAGAIN);
	CHECK(getlk(&v, &node1, db, 0, 0) == F_WRLCK);
	/* a name not ending in -shm: the usual rules */
	CHECK(setlk(&v, &node2, other, otherfh, 1, F_RDLCK, DMS, DMS) == 0);
	CHECK(getlk(&v, &node1, other, DMS, DMS) == F_RDLCK);
	/* the last close on node 2: node 1 may use the database */
	CHECK(local_ops.flush(v.l, &node2, shm, shmfh, 1) == 0);
	CHECK(setlk(&v, &node1, db, db2fh, 2, F_RDLCK, SHF, SHF + 509) == 0);
	CHECK(setlk(&v, &node1, shm, shm2fh, 2, F_WRLCK, DMS, DMS) == 0);
	uint64_t fhs[][2] = { { db, dbfh }, { shm, shmfh }, { other, otherfh }, { db, db2fh }, { shm, shm2fh } };
	for (size_t i = 0; i < ARRAY_SIZE(fhs); i++)
		CHECK(local_ops.release(v.l, fhs[i][0], fhs[i][1]) == 0);
	env_close(&v);
}

/* A failover: a second backend over the same filesystem (the new owner)
 * must take the ids the first gave out as they are (derived from file
 * handles on ext4/XFS), reopen them by handle, and answer ESTALE for an
 * object that is gone. /tmp of the test machine is ext4; elsewhere the
 * ids are a counter and the case is skipped. */
TEST(ids_survive_a_second_backend)
{
	struct env v;
	uint64_t fh, fh2;
	struct fs_entry e;
	CHECK(env_open(&v) == 0);
	uint64_t ino = create(&v, &node1, "kept", &fh);
	uint64_t gone = create(&v, &node1, "gone", &fh2);
	CHECK(local_ops.write(v.l, &node1, ino, fh, "data", 4, 0) == 4);
	struct local *l2;
	int dfd2 = open(v.dir, O_RDONLY | O_DIRECTORY);
	CHECK(dfd2 >= 0 && local_open(&l2, dfd2) == 0);
	if ((uint32_t)ino == 0) { /* a counter: not ext4/XFS */
		printf("# SKIP ids_survive_a_second_backend: %s has no inode-and-generation handles\n", v.dir);
	} else {
		char buf[8] = "";
		uint64_t nfh;
		CHECK(local_ops.open(l2, &node2, ino, O_RDONLY, &nfh) == 0);
		CHECK(local_ops.read(l2, &node2, ino, nfh, buf, sizeof buf, 0) == 4 && !memcmp(buf, "data", 4));
		CHECK(local_ops.lookup(l2, &node2, FS_ROOT_INO, "kept", &e) == 0 && e.ino == ino);
		CHECK(local_ops.release(l2, ino, nfh) == 0);
		CHECK(local_ops.unlink(v.l, &node1, FS_ROOT_INO, "gone", NULL) == 0);
		CHECK(local_ops.release(v.l, gone, fh2) == 0);
		local_ops.forget(v.l, gone, 1);
		struct stat st;
		CHECK(local_ops.getattr(l2, &node2, gone, &st) == -ESTALE);
		CHECK(local_ops.getattr(l2, &node2, ino ^ (1ull << 40), &st) == -ESTALE); /* another generation */
	}
	local_close(l2);
	close(dfd2);
	CHECK(local_ops.release(v.l, ino, fh) == 0);
	env_close(&v);
}

/* READDIRPLUS on the owner: every name with its lookup, "." and ".."
 * without one; a filler that is full stops the listing there */
struct plusseen {
	int n, dots, files, stop_after;
	uint64_t ino[8];
	off_t size[8];
};

static int plus_take(void *arg, const char *name, const struct fs_entry *e, uint64_t next)
{
	struct plusseen *p = arg;
	(void)next;
	if (p->stop_after && p->n == p->stop_after)
		return 1;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		p->dots += !e->ino && S_ISDIR(e->attr.st_mode);
	else if (p->files < 8 && e->ino && e->attr_timeout > 0) {
		p->ino[p->files] = e->ino;
		p->size[p->files++] = e->attr.st_size;
	}
	p->n++;
	return 0;
}

TEST(readdirplus_looks_every_name_up)
{
	struct env v;
	uint64_t fh, dfh;
	struct fs_entry e;
	CHECK(env_open(&v) == 0);
	for (int i = 0; i < 3; i++) {
		char name[8];
		snprintf(name, sizeof name, "f%d", i);
		uint64_t ino = create(&v, &node1, name, &fh);
		CHECK(local_ops.write(v.l, &node1, ino, fh, "abcdef", (size_t)i + 1, 0) == i + 1);
		CHECK(local_ops.release(v.l, ino, fh) == 0);
	}
	CHECK(local_ops.opendir(v.l, &node1, FS_ROOT_INO, &dfh) == 0);
	struct plusseen all = { 0 };
	CHECK(local_ops.readdirplus(v.l, &node1, FS_ROOT_INO, dfh, 0, 65536, plus_take, &all) == 0);
	CHECK(all.n == 5 && all.dots == 2 && all.files == 3);
	for (int i = 0; i < all.files; i++) {
		CHECK(all.size[i] >= 1 && all.size[i] <= 3);
		char name[8];
		snprintf(name, sizeof name, "f%lld", (long long)all.size[i] - 1);
		CHECK(local_ops.lookup(v.l, &node1, FS_ROOT_INO, name, &e) == 0 && e.ino == all.ino[i]);
		local_ops.forget(v.l, e.ino, 2); /* this lookup and the listing's */
	}
	struct plusseen two = { .stop_after = 2 };
	CHECK(local_ops.readdirplus(v.l, &node1, FS_ROOT_INO, dfh, 0, 65536, plus_take, &two) == 0);
	CHECK(two.n == 2);
	CHECK(local_ops.releasedir(v.l, FS_ROOT_INO, dfh) == 0);
	env_close(&v);
}

/* which of the common extended attributes a listxattr answer lacks */
TEST(xattr_absent_bits)
{
	static const char list[] = "user.a\0security.selinux\0system.posix_acl_access_not\0";
	CHECK(fs_xattr_absent(list, sizeof list - 1) == (1u | 4u | 8u));
	CHECK(fs_xattr_absent("", 0) == 0xf);
	CHECK(fs_xattr_absent(list, -61) == 0);
	static const char cut[] = "security.capab"; /* a cut answer: not known absent */
	CHECK(!(fs_xattr_absent(cut, sizeof cut - 1) & 1u));
}

int main(void) { return unit_main("local"); }

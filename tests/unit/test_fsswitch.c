/* Tests of the switchable backend (src/fs/fsswitch.c): an open file keeps
 * working across a switch to another backend over the same filesystem
 * (a failover's new owner: a second struct local over one directory), an
 * fsync after the switch reports writes that were on the old backend only
 * (EIO, once), an fsyncdir after it reports name changes that were on
 * the old backend only (EIO, once), a held idempotent call waits and completes on the new
 * backend, and a call that changes names fails ENOTCONN rather than run
 * twice. Links fsswitch.o, local.o, locks.o and base. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"
#include "fsswitch.h"
#include "local.h"

static const struct fs_caller caller = { .pid = 100, .node_id = 1 };

/* A lost owner: every call fails ENOTCONN; counts mkdir attempts. */
static int dead_mkdirs;
static int dead_getattr(void *ctx, const struct fs_caller *c, uint64_t ino, struct stat *out)
{
	(void)ctx, (void)c, (void)ino, (void)out;
	return -ENOTCONN;
}
static int dead_mkdir(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode,
		      struct fs_entry *out)
{
	(void)ctx, (void)c, (void)parent, (void)name, (void)mode, (void)out;
	dead_mkdirs++;
	return -ENOTCONN;
}
static const struct fs_ops dead_ops = { .getattr = dead_getattr, .mkdir = dead_mkdir };

struct env {
	char dir[64];
	int dfd;
	struct local *l1, *l2;
	struct fsswitch *s;
};

static int env_open(struct env *v, const struct fs_ops *ops, void *ctx)
{
	snprintf(v->dir, sizeof v->dir, "/tmp/dipole-test-fsswitch.XXXXXX");
	if (!mkdtemp(v->dir))
		return -1;
	v->dfd = open(v->dir, O_RDONLY | O_DIRECTORY);
	if (v->dfd < 0 || local_open(&v->l1, v->dfd) || local_open(&v->l2, v->dfd))
		return -1;
	return fsswitch_open(&v->s, ops ? ops : &local_ops, ops ? ctx : v->l1, NULL, 1);
}

static void env_close(struct env *v)
{
	fsswitch_close(v->s);
	local_close(v->l1);
	local_close(v->l2);
	close(v->dfd);
	char cmd[96];
	snprintf(cmd, sizeof cmd, "rm -rf %s", v->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "    could not remove %s\n", v->dir);
}

TEST(open_file_survives_a_switch)
{
	struct env v;
	struct fs_entry e;
	uint64_t fh;
	char buf[8] = "";
	CHECK(env_open(&v, NULL, NULL) == 0);
	CHECK(fsswitch_ops.create(v.s, &caller, FS_ROOT_INO, "f", 0644, O_RDWR, &e, &fh) == 0);
	CHECK(fsswitch_ops.write(v.s, &caller, e.ino, fh, "abc", 3, 0) == 3);
	CHECK(fsswitch_ops.fsync(v.s, &caller, e.ino, fh, 0) == 0);
	CHECK(fsswitch_ops.write(v.s, &caller, e.ino, fh, "d", 1, 3) == 1); /* not synced */
	CHECK(fsswitch_set(v.s, &local_ops, v.l2, NULL, 1) == 0);
	CHECK(fsswitch_ops.fsync(v.s, &caller, e.ino, fh, 0) == -EIO);
	CHECK(fsswitch_ops.fsync(v.s, &caller, e.ino, fh, 0) == 0); /* reported once */
	CHECK(fsswitch_ops.write(v.s, &caller, e.ino, fh, "e", 1, 4) == 1);
	CHECK(fsswitch_ops.read(v.s, &caller, e.ino, fh, buf, sizeof buf, 0) == 5 && !memcmp(buf, "abcde", 5));
	CHECK(fsswitch_ops.fsync(v.s, &caller, e.ino, fh, 0) == 0);
	CHECK(fsswitch_ops.release(v.s, e.ino, fh) == 0);
	CHECK(fsswitch_ops.read(v.s, &caller, e.ino, fh, buf, sizeof buf, 0) == -EBADF); /* released */
	fsswitch_ops.forget(v.s, e.ino, 1);
	env_close(&v);
}

struct held_call {
	struct fsswitch *s;
	int rc;
};

static void *getattr_root(void *arg)
{
	struct held_call *h = arg;
	struct stat st;
	h->rc = fsswitch_ops.getattr(h->s, &caller, FS_ROOT_INO, &st);
	return NULL;
}

TEST(held_call_completes_on_the_new_backend)
{
	struct env v;
	struct held_call h = { .rc = 1 };
	pthread_t t;
	CHECK(env_open(&v, &dead_ops, NULL) == 0);
	h.s = v.s;
	fsswitch_hold(v.s, 60000);
	CHECK(pthread_create(&t, NULL, getattr_root, &h) == 0);
	usleep(100000);
	CHECK(h.rc == 1); /* waiting, not failed */
	CHECK(fsswitch_set(v.s, &local_ops, v.l1, NULL, 1) == 0);
	pthread_join(t, NULL);
	CHECK(h.rc == 0);
	env_close(&v);
}

/* An owner that took writes and died before their fsync: its fsync fails
 * ENOTCONN (the connection dropped). */
static struct local *flaky_l;
static int flaky_create(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode,
			int flags, struct fs_entry *out, uint64_t *fh)
{
	(void)ctx;
	return local_ops.create(flaky_l, c, parent, name, mode, flags, out, fh);
}
static ssize_t flaky_write(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, const void *buf,
			   size_t len, uint64_t off)
{
	(void)ctx;
	return local_ops.write(flaky_l, c, ino, fh, buf, len, off);
}
static int flaky_fsync(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int datasync)
{
	(void)ctx, (void)c, (void)ino, (void)fh, (void)datasync;
	return -ENOTCONN;
}
static int flaky_unlink(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, struct fs_removed *gone)
{
	(void)ctx;
	return local_ops.unlink(flaky_l, c, parent, name, gone);
}
static int flaky_release(void *ctx, uint64_t ino, uint64_t fh)
{
	(void)ctx;
	return local_ops.release(flaky_l, ino, fh);
}
static int flaky_opendir(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t *fh)
{
	(void)ctx;
	return local_ops.opendir(flaky_l, c, ino, fh);
}
static int flaky_fsyncdir(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int datasync)
{
	return flaky_fsync(ctx, c, ino, fh, datasync);
}
static const struct fs_ops flaky_ops = { .create = flaky_create, .write = flaky_write, .fsync = flaky_fsync,
					 .unlink = flaky_unlink, .release = flaky_release, .opendir = flaky_opendir,
					 .releasedir = flaky_release, .fsyncdir = flaky_fsyncdir };

struct held_fsync {
	struct fsswitch *s;
	uint64_t ino, fh;
	int rc;
};

/* Run fn(h) in a thread while the backend is held, the old owner dead,
 * and switch to v's second backend under it. 0, or -1. */
static int call_across_a_death(struct env *v, void *(*fn)(void *), struct held_fsync *h)
{
	pthread_t t;
	fsswitch_hold(v->s, 60000);
	if (pthread_create(&t, NULL, fn, h))
		return -1;
	usleep(100000);
	int rc = fsswitch_set(v->s, &local_ops, v->l2, NULL, 1);
	pthread_join(t, NULL);
	return rc ? -1 : 0;
}

static void *fsync_file(void *arg)
{
	struct held_fsync *h = arg;
	h->rc = fsswitch_ops.fsync(h->s, &caller, h->ino, h->fh, 0);
	return NULL;
}

/* The fsync in flight when the owner died is retried on the new owner,
 * which never had the write: it must fail EIO, not succeed (found by
 * fs_failover.sh: a record whose fsync had returned 0 read back wrong). */
TEST(fsync_in_flight_at_the_switch_reports_lost_writes)
{
	struct env v;
	struct fs_entry e;
	CHECK(env_open(&v, &flaky_ops, NULL) == 0);
	flaky_l = v.l1;
	struct held_fsync h = { .s = v.s, .rc = 1 };
	CHECK(fsswitch_ops.create(v.s, &caller, FS_ROOT_INO, "f", 0644, O_RDWR, &e, &h.fh) == 0);
	h.ino = e.ino;
	CHECK(fsswitch_ops.write(v.s, &caller, e.ino, h.fh, "abc", 3, 0) == 3);
	CHECK(call_across_a_death(&v, fsync_file, &h) == 0);
	CHECK(h.rc == -EIO);
	CHECK(fsswitch_ops.fsync(v.s, &caller, e.ino, h.fh, 0) == 0); /* reported once */
	CHECK(fsswitch_ops.release(v.s, e.ino, h.fh) == 0);
	env_close(&v);
}

static void *fsyncdir_root(void *arg)
{
	struct held_fsync *h = arg;
	h->rc = fsswitch_ops.fsyncdir(h->s, &caller, FS_ROOT_INO, h->fh, 0);
	return NULL;
}

/* fsync(2) of the root directory through a handle of its own. */
static int fsync_root(struct fsswitch *s)
{
	uint64_t fh;
	int rc = fsswitch_ops.opendir(s, &caller, FS_ROOT_INO, &fh);
	if (rc)
		return rc;
	rc = fsswitch_ops.fsyncdir(s, &caller, FS_ROOT_INO, fh, 0);
	fsswitch_ops.releasedir(s, FS_ROOT_INO, fh);
	return rc;
}

/* An unlink the owner applied in memory, then its fsyncdir in flight when
 * it died: retried on the new owner, which may still have the name, it
 * must fail EIO (found by fschecker_failover: a SQLite journal's unlink
 * lost, the next transaction rolled a committed one back). */
TEST(fsyncdir_in_flight_at_the_switch_reports_lost_names)
{
	struct env v;
	struct fs_entry e;
	uint64_t fh;
	CHECK(env_open(&v, &flaky_ops, NULL) == 0);
	flaky_l = v.l1;
	struct held_fsync h = { .s = v.s, .rc = 1 };
	CHECK(fsswitch_ops.create(v.s, &caller, FS_ROOT_INO, "j", 0644, O_RDWR, &e, &fh) == 0);
	CHECK(fsswitch_ops.release(v.s, e.ino, fh) == 0);
	CHECK(fsswitch_ops.unlink(v.s, &caller, FS_ROOT_INO, "j", NULL) == 0);
	CHECK(fsswitch_ops.opendir(v.s, &caller, FS_ROOT_INO, &h.fh) == 0);
	CHECK(call_across_a_death(&v, fsyncdir_root, &h) == 0);
	CHECK(h.rc == -EIO);
	CHECK(fsswitch_ops.fsyncdir(v.s, &caller, FS_ROOT_INO, h.fh, 0) == 0); /* reported once */
	CHECK(fsswitch_ops.releasedir(v.s, FS_ROOT_INO, h.fh) == 0);
	env_close(&v);
}

/* Names made durable before the owner died, or handed over by a planned
 * move, are no error; a truncate not yet fsync'd is a lost write. */
TEST(synced_names_and_handovers_are_not_lost)
{
	struct env v;
	struct fs_entry e;
	uint64_t fh;
	struct stat st = { .st_size = 0 };
	CHECK(env_open(&v, NULL, NULL) == 0);
	CHECK(fsswitch_ops.create(v.s, &caller, FS_ROOT_INO, "f", 0644, O_RDWR, &e, &fh) == 0);
	CHECK(fsync_root(v.s) == 0);
	CHECK(fsswitch_ops.write(v.s, &caller, e.ino, fh, "abc", 3, 0) == 3);
	CHECK(fsswitch_ops.fsync(v.s, &caller, e.ino, fh, 0) == 0);
	CHECK(fsswitch_ops.setattr(v.s, &caller, e.ino, &st, FS_SET_SIZE, fh, &st) == 0);
	CHECK(fsswitch_set(v.s, &local_ops, v.l2, NULL, 1) == 0);
	CHECK(fsync_root(v.s) == 0);
	CHECK(fsswitch_ops.fsync(v.s, &caller, e.ino, fh, 0) == -EIO); /* the truncate */
	CHECK(fsswitch_ops.rename(v.s, &caller, FS_ROOT_INO, "f", FS_ROOT_INO, "g", 0) == 0);
	CHECK(fsswitch_set(v.s, &local_ops, v.l1, NULL, 0) == 0); /* planned: flushed */
	CHECK(fsync_root(v.s) == 0);
	CHECK(fsswitch_ops.release(v.s, e.ino, fh) == 0);
	env_close(&v);
}

TEST(name_change_in_flight_is_not_retried)
{
	struct env v;
	struct fs_entry e;
	struct stat st;
	CHECK(env_open(&v, &dead_ops, NULL) == 0);
	dead_mkdirs = 0;
	CHECK(fsswitch_ops.mkdir(v.s, &caller, FS_ROOT_INO, "d", 0755, &e) == -ENOTCONN);
	CHECK(dead_mkdirs == 1);
	/* no switch comes: an idempotent call gives up too, after the hold */
	fsswitch_hold(v.s, 200);
	CHECK(fsswitch_ops.getattr(v.s, &caller, FS_ROOT_INO, &st) == -ENOTCONN);
	env_close(&v);
}

int main(void) { return unit_main("fsswitch"); }

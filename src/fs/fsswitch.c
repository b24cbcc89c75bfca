/* fsswitch — see fsswitch.h. Every call runs between begin() and again():
 * begin waits out a hold, counts the call in flight and translates the
 * kernel's file handle (a slot here) into the backend's; again ends it and
 * decides whether a -ENOTCONN is retried. A switch waits for the count to
 * reach 0 with new calls held, so no call ever sees two backends. */
#include "fsswitch.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>

/* How long a call that failed -ENOTCONN waits for the daemon to notice
 * the owner's loss and hold the mount (a killed owner's connection closes
 * at once; its replication link goes down a moment later), ms. */
#define NOTICE_MS 2000

struct slot {
	uint64_t ino;
	uint64_t bfh;      /* the backend's handle */
	uint64_t prev_bfh; /* the previous backend's, until the next switch (fsswitch_reclaim_ops) */
	int flags;         /* open(2) flags, for the reopen */
	int used, is_dir;
	int dirty;         /* written since the last fsync that succeeded */
	int lost;          /* writes lost with a dead owner: -EIO at the next fsync/flush */
	int stale;         /* could not be reopened after a switch: -ESTALE */
};

/* A directory whose names changed through this mount since its last
 * fsyncdir that succeeded: those changes may have been on a dead owner
 * only (in its kernel's memory, its journal not yet committed). */
struct dirmark {
	uint64_t ino;
	uint64_t seq; /* of its last change (fsswitch.dirseq) */
	int lost;     /* its owner died first: -EIO at the next fsyncdir */
};

struct fsswitch {
	pthread_mutex_t mu;
	pthread_cond_t cv;       /* hold ended, switch done, in-flight count reached 0 */
	const struct fs_ops *ops;
	void *ctx;
	fsswitch_ready ready;
	uint64_t gen;            /* switches made */
	unsigned inflight;
	int held;                /* new calls wait until hold_until */
	struct timespec hold_until;
	int switching;           /* fsswitch_set waits for inflight 0 */
	uint32_t node_id;
	struct slot *slots;      /* kernel fh n (FS_FH_UNCACHED masked off) is slots[n - 1] */
	size_t nslots, used;
	struct dirmark *dirs;    /* directories changed since their last fsyncdir */
	size_t ndirs, capdirs;
	uint64_t dirseq;         /* changes counted, for dirmark.seq */
};

struct attempt {
	const struct fs_ops *ops;
	void *ctx;
	uint64_t gen, bfh;
	struct timespec deadline; /* of waiting for the backend; tv_sec 0: not failed yet */
};

static void ms_from_now(struct timespec *t, unsigned ms)
{
	clock_gettime(CLOCK_REALTIME, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += (long)(ms % 1000) * 1000000;
	if (t->tv_nsec >= 1000000000) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000;
	}
}

static int passed(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* The slot behind the kernel's fh, or NULL. mu held. */
static struct slot *slot_of(struct fsswitch *s, uint64_t fh)
{
	uint64_t n = fh & ~FS_FH_UNCACHED;
	return n && n <= s->nslots && s->slots[n - 1].used ? &s->slots[n - 1] : NULL;
}

/* Wait out a hold, count the call in flight, translate fh (0: none).
 * 0, -ENOTCONN (the hold ran out), -EBADF or -ESTALE. */
static int begin(struct fsswitch *s, struct attempt *a, uint64_t fh)
{
	pthread_mutex_lock(&s->mu);
	while (s->held && !passed(&s->hold_until))
		pthread_cond_timedwait(&s->cv, &s->mu, &s->hold_until);
	if (s->held && !s->switching) {
		s->held = 0; /* ran out: no switch came */
		pthread_mutex_unlock(&s->mu);
		return -ENOTCONN;
	}
	int rc = 0;
	struct slot *sl = fh ? slot_of(s, fh) : NULL;
	if (fh && !sl)
		rc = -EBADF;
	else if (sl && sl->stale)
		rc = -ESTALE;
	if (!rc) {
		s->inflight++;
		a->ops = s->ops;
		a->ctx = s->ctx;
		a->gen = s->gen;
		a->bfh = sl ? sl->bfh : 0;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static void leave_locked(struct fsswitch *s)
{
	if (!--s->inflight && s->switching)
		pthread_cond_broadcast(&s->cv);
}

/* End the call that returned rc. 1: run it again (it failed -ENOTCONN,
 * is idempotent, and the backend was switched, reconnected or is held). */
static int again(struct fsswitch *s, struct attempt *a, int64_t rc, int idem)
{
	pthread_mutex_lock(&s->mu);
	leave_locked(s);
	int retry = 0;
	if (rc == -ENOTCONN && idem) {
		if (!a->deadline.tv_sec)
			ms_from_now(&a->deadline, NOTICE_MS);
		for (;;) {
			if (s->gen != a->gen || s->held || (s->ready && s->ready(s->ctx))) {
				retry = 1;
				break;
			}
			if (passed(&a->deadline))
				break;
			struct timespec t;
			ms_from_now(&t, 50);
			pthread_cond_timedwait(&s->cv, &s->mu, &t);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return retry;
}

/* Run expr (which may use ops, bctx and a_.bfh) until it needs no retry. */
#define CALL(s, fh, idem, expr)                                                                                    \
	do {                                                                                                       \
		struct attempt a_ = { 0 };                                                                         \
		while (!(rc = begin((s), &a_, (fh)))) {                                                           \
			const struct fs_ops *ops = a_.ops;                                                         \
			void *bctx = a_.ctx;                                                                       \
			(void)ops;                                                                                 \
			(void)bctx;                                                                                \
			rc = (expr);                                                                               \
			if (!again((s), &a_, rc, (idem)))                                                          \
				break;                                                                             \
		}                                                                                                  \
	} while (0)

/* ---- slots ------------------------------------------------------------ */

/* A slot for the backend's handle bfh of ino; the kernel's fh (with bfh's
 * FS_FH_UNCACHED), or 0: out of memory. mu held. */
static uint64_t slot_add(struct fsswitch *s, uint64_t ino, uint64_t bfh, int flags, int is_dir)
{
	size_t i = 0;
	while (i < s->nslots && s->slots[i].used)
		i++;
	if (i == s->nslots) {
		size_t n = s->nslots ? s->nslots * 2 : 64;
		struct slot *sl = realloc(s->slots, n * sizeof *sl);
		if (!sl)
			return 0;
		memset(sl + s->nslots, 0, (n - s->nslots) * sizeof *sl);
		s->slots = sl;
		s->nslots = n;
	}
	s->slots[i] = (struct slot){ .ino = ino, .bfh = bfh, .flags = flags, .used = 1, .is_dir = is_dir };
	s->used++;
	return (uint64_t)(i + 1) | (bfh & FS_FH_UNCACHED);
}

static void slot_free(struct fsswitch *s, uint64_t fh)
{
	pthread_mutex_lock(&s->mu);
	struct slot *sl = slot_of(s, fh);
	if (sl) {
		sl->used = 0;
		s->used--;
	}
	pthread_mutex_unlock(&s->mu);
}

/* Record the handle a backend's open returned (in flight: no switch in
 * between). 0, or -ENOMEM after releasing it. */
static int slot_enter(struct fsswitch *s, const struct attempt *a, uint64_t ino, int flags, int is_dir,
		      uint64_t *fh)
{
	pthread_mutex_lock(&s->mu);
	uint64_t k = slot_add(s, ino, *fh, flags, is_dir);
	pthread_mutex_unlock(&s->mu);
	if (!k) {
		(is_dir ? a->ops->releasedir : a->ops->release)(a->ctx, ino, *fh);
		return -ENOMEM;
	}
	*fh = k;
	return 0;
}

/* Set or clear a slot's dirty mark; take its lost mark (1 if it had one). */
static int slot_mark(struct fsswitch *s, uint64_t fh, int dirty, int take_lost)
{
	int lost = 0;
	pthread_mutex_lock(&s->mu);
	struct slot *sl = slot_of(s, fh);
	if (sl && dirty >= 0)
		sl->dirty = dirty;
	if (sl && take_lost) {
		lost = sl->lost;
		sl->lost = 0;
	}
	pthread_mutex_unlock(&s->mu);
	return lost;
}

/* ---- directories changed since their last fsyncdir -------------------- */

/* The mark of directory ino, or NULL. mu held. */
static struct dirmark *dir_find(struct fsswitch *s, uint64_t ino)
{
	for (size_t i = 0; i < s->ndirs; i++)
		if (s->dirs[i].ino == ino)
			return &s->dirs[i];
	return NULL;
}

/* A call that changes names in directory ino returned rc: mark it, unless
 * the call surely changed nothing (an error other than -ENOTCONN, after
 * which the dead owner may have applied it). Without memory the mark is
 * not kept (the change is not reported if its owner dies). */
static void dir_changed(struct fsswitch *s, uint64_t ino, int64_t rc)
{
	if (rc < 0 && rc != -ENOTCONN)
		return;
	pthread_mutex_lock(&s->mu);
	struct dirmark *d = dir_find(s, ino);
	if (!d && s->ndirs == s->capdirs) {
		size_t n = s->capdirs ? s->capdirs * 2 : 16;
		struct dirmark *g = realloc(s->dirs, n * sizeof *g);
		if (g) {
			s->dirs = g;
			s->capdirs = n;
		}
	}
	if (!d && s->ndirs < s->capdirs) {
		d = &s->dirs[s->ndirs++];
		d->ino = ino;
		d->lost = 0;
	}
	if (d)
		d->seq = ++s->dirseq;
	pthread_mutex_unlock(&s->mu);
}

/* Before an fsyncdir of ino: 1 if its changes were lost with a dead owner
 * (the mark goes: reported once); *seq: the changes it will cover. */
static int dir_take_lost(struct fsswitch *s, uint64_t ino, uint64_t *seq)
{
	pthread_mutex_lock(&s->mu);
	struct dirmark *d = dir_find(s, ino);
	int lost = d && d->lost;
	if (lost)
		*d = s->dirs[--s->ndirs];
	*seq = s->dirseq;
	pthread_mutex_unlock(&s->mu);
	return lost;
}

/* An fsyncdir of ino succeeded: changes up to seq are durable. */
static void dir_synced(struct fsswitch *s, uint64_t ino, uint64_t seq)
{
	pthread_mutex_lock(&s->mu);
	struct dirmark *d = dir_find(s, ino);
	if (d && !d->lost && d->seq <= seq)
		*d = s->dirs[--s->ndirs];
	pthread_mutex_unlock(&s->mu);
}

/* At a switch (nothing in flight): the previous backend died (lost 1:
 * every mark becomes lost) or flushed everything (0: unreported marks go). */
static void dirs_switched(struct fsswitch *s, int lost)
{
	size_t i = 0;
	while (i < s->ndirs) {
		if (lost)
			s->dirs[i++].lost = 1;
		else if (!s->dirs[i].lost)
			s->dirs[i] = s->dirs[--s->ndirs];
		else
			i++;
	}
}

/* ---- operations ------------------------------------------------------- */

static int sw_lookup(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, struct fs_entry *out)
{
	int64_t rc;
	CALL(ctx, 0, 1, ops->lookup(bctx, c, parent, name, out));
	return (int)rc;
}

static void sw_forget(void *ctx, uint64_t ino, uint64_t nlookup)
{
	int64_t rc;
	/* never retried: a backend that lost it has no count to drop */
	CALL(ctx, 0, 0, (ops->forget(bctx, ino, nlookup), 0));
	(void)rc;
}

static int sw_getattr(void *ctx, const struct fs_caller *c, uint64_t ino, struct stat *out)
{
	int64_t rc;
	CALL(ctx, 0, 1, ops->getattr(bctx, c, ino, out));
	return (int)rc;
}

static int sw_setattr(void *ctx, const struct fs_caller *c, uint64_t ino, const struct stat *attr, int mask,
		      uint64_t fh, struct stat *out)
{
	int64_t rc;
	CALL(ctx, fh, 1, ops->setattr(bctx, c, ino, attr, mask, a_.bfh, out));
	if (!rc && fh && (mask & FS_SET_SIZE))
		slot_mark(ctx, fh, 1, 0); /* a truncate is a write: lost with a dead owner until fsync */
	return (int)rc;
}

static int sw_readlink(void *ctx, const struct fs_caller *c, uint64_t ino, char *buf, size_t len)
{
	int64_t rc;
	CALL(ctx, 0, 1, ops->readlink(bctx, c, ino, buf, len));
	return (int)rc;
}

/* Calls that change names are not retried: the dead owner may have
 * applied them (a second mkdir would say EEXIST of the caller's own). */
static int sw_mknod(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
		    struct fs_entry *out)
{
	int64_t rc;
	CALL(ctx, 0, 0, ops->mknod(bctx, c, parent, name, mode, rdev, out));
	dir_changed(ctx, parent, rc);
	return (int)rc;
}

static int sw_mkdir(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode,
		    struct fs_entry *out)
{
	int64_t rc;
	CALL(ctx, 0, 0, ops->mkdir(bctx, c, parent, name, mode, out));
	dir_changed(ctx, parent, rc);
	return (int)rc;
}

static int sw_unlink(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, struct fs_removed *gone)
{
	int64_t rc;
	CALL(ctx, 0, 0, ops->unlink(bctx, c, parent, name, gone));
	dir_changed(ctx, parent, rc);
	return (int)rc;
}

static int sw_rmdir(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, struct fs_removed *gone)
{
	int64_t rc;
	CALL(ctx, 0, 0, ops->rmdir(bctx, c, parent, name, gone));
	dir_changed(ctx, parent, rc);
	return (int)rc;
}

static int sw_symlink(void *ctx, const struct fs_caller *c, const char *target, uint64_t parent, const char *name,
		      struct fs_entry *out)
{
	int64_t rc;
	CALL(ctx, 0, 0, ops->symlink(bctx, c, target, parent, name, out));
	dir_changed(ctx, parent, rc);
	return (int)rc;
}

static int sw_rename(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, uint64_t newparent,
		     const char *newname, unsigned flags)
{
	int64_t rc;
	CALL(ctx, 0, 0, ops->rename(bctx, c, parent, name, newparent, newname, flags));
	dir_changed(ctx, parent, rc);
	dir_changed(ctx, newparent, rc);
	return (int)rc;
}

static int sw_link(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t newparent, const char *newname,
		   struct fs_entry *out)
{
	int64_t rc;
	CALL(ctx, 0, 0, ops->link(bctx, c, ino, newparent, newname, out));
	dir_changed(ctx, newparent, rc);
	return (int)rc;
}

static int open_call(struct fsswitch *s, const struct attempt *a, const struct fs_caller *c, uint64_t ino, int flags,
		     uint64_t *fh)
{
	int rc = a->ops->open(a->ctx, c, ino, flags, fh);
	rc = rc ? rc : slot_enter(s, a, ino, flags, 0, fh);
	if (!rc && (flags & O_TRUNC))
		slot_mark(s, *fh, 1, 0); /* truncated: a write */
	return rc;
}

static int sw_open(void *ctx, const struct fs_caller *c, uint64_t ino, int flags, uint64_t *fh)
{
	int64_t rc;
	CALL(ctx, 0, 1, open_call(ctx, &a_, c, ino, flags, fh));
	return (int)rc;
}

static int create_call(struct fsswitch *s, const struct attempt *a, const struct fs_caller *c, uint64_t parent,
		       const char *name, mode_t mode, int flags, struct fs_entry *out, uint64_t *fh)
{
	int rc = a->ops->create(a->ctx, c, parent, name, mode, flags, out, fh);
	if (rc)
		return rc;
	rc = slot_enter(s, a, out->ino, flags, 0, fh);
	if (rc)
		a->ops->forget(a->ctx, out->ino, 1);
	return rc;
}

static int sw_create(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode, int flags,
		     struct fs_entry *out, uint64_t *fh)
{
	int64_t rc;
	CALL(ctx, 0, !(flags & O_EXCL), create_call(ctx, &a_, c, parent, name, mode, flags, out, fh));
	dir_changed(ctx, parent, rc);
	return (int)rc;
}

static ssize_t sw_read(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, void *buf, size_t len,
		       uint64_t off)
{
	int64_t rc;
	CALL(ctx, fh, 1, ops->read(bctx, c, ino, a_.bfh, buf, len, off));
	return (ssize_t)rc;
}

static int slot_flags(struct fsswitch *s, uint64_t fh)
{
	pthread_mutex_lock(&s->mu);
	struct slot *sl = slot_of(s, fh);
	int flags = sl ? sl->flags : 0;
	pthread_mutex_unlock(&s->mu);
	return flags;
}

static ssize_t sw_write(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, const void *buf, size_t len,
			uint64_t off)
{
	int64_t rc;
	/* a write at an offset lands the same twice; an append would not */
	int idem = !(slot_flags(ctx, fh) & O_APPEND);
	CALL(ctx, fh, idem, ops->write(bctx, c, ino, a_.bfh, buf, len, off));
	if (rc > 0)
		slot_mark(ctx, fh, 1, 0);
	return (ssize_t)rc;
}

/* flush and fsync report writes lost with a dead owner (-EIO, once):
 * checked on every attempt, so a call that was in flight at the switch
 * and is retried on the new backend reports them too. */
static int flush_call(struct fsswitch *s, const struct attempt *a, const struct fs_caller *c, uint64_t ino,
		      uint64_t fh, uint64_t lock_owner)
{
	int rc = a->ops->flush(a->ctx, c, ino, a->bfh, lock_owner);
	return slot_mark(s, fh, -1, 1) ? -EIO : rc;
}

static int sw_flush(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, uint64_t lock_owner)
{
	int64_t rc;
	CALL(ctx, fh, 1, flush_call(ctx, &a_, c, ino, fh, lock_owner));
	return (int)rc;
}

static int release_call(struct fsswitch *s, uint64_t ino, uint64_t fh, int is_dir)
{
	int64_t rc;
	/* a backend that lost the handle has nothing to release */
	CALL(s, fh, 0, (is_dir ? ops->releasedir : ops->release)(bctx, ino, a_.bfh));
	slot_free(s, fh);
	return rc == -ENOTCONN ? 0 : (int)rc;
}

static int sw_release(void *ctx, uint64_t ino, uint64_t fh)
{
	return release_call(ctx, ino, fh, 0);
}

static int fsync_call(struct fsswitch *s, const struct attempt *a, const struct fs_caller *c, uint64_t ino,
		      uint64_t fh, int datasync)
{
	if (slot_mark(s, fh, -1, 1))
		return -EIO; /* written to a dead owner only: reported once, as the kernel does */
	int rc = a->ops->fsync(a->ctx, c, ino, a->bfh, datasync);
	if (!rc)
		slot_mark(s, fh, 0, 0);
	return rc;
}

static int sw_fsync(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int datasync)
{
	int64_t rc;
	CALL(ctx, fh, 1, fsync_call(ctx, &a_, c, ino, fh, datasync));
	return (int)rc;
}

static int opendir_call(struct fsswitch *s, const struct attempt *a, const struct fs_caller *c, uint64_t ino,
			uint64_t *fh)
{
	int rc = a->ops->opendir(a->ctx, c, ino, fh);
	return rc ? rc : slot_enter(s, a, ino, O_RDONLY | O_DIRECTORY, 1, fh);
}

static int sw_opendir(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t *fh)
{
	int64_t rc;
	CALL(ctx, 0, 1, opendir_call(ctx, &a_, c, ino, fh));
	return (int)rc;
}

static int sw_readdir(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, uint64_t off, fs_dirfill fill,
		      void *arg)
{
	int64_t rc;
	CALL(ctx, fh, 1, ops->readdir(bctx, c, ino, a_.bfh, off, fill, arg));
	return (int)rc;
}

static int sw_readdirplus(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, uint64_t off,
			  size_t room, fs_dirfill_plus fill, void *arg)
{
	int64_t rc;
	CALL(ctx, fh, 1, ops->readdirplus ? ops->readdirplus(bctx, c, ino, a_.bfh, off, room, fill, arg) : -ENOSYS);
	return (int)rc;
}

static int sw_releasedir(void *ctx, uint64_t ino, uint64_t fh)
{
	return release_call(ctx, ino, fh, 1);
}

/* As fsync_call for a directory's names: changes made through a dead
 * owner that no fsyncdir had made durable answer -EIO once, also to an
 * fsyncdir in flight at the switch and retried on the new backend. */
static int fsyncdir_call(struct fsswitch *s, const struct attempt *a, const struct fs_caller *c, uint64_t ino,
			 int datasync)
{
	uint64_t seq;
	if (dir_take_lost(s, ino, &seq))
		return -EIO;
	int rc = a->ops->fsyncdir(a->ctx, c, ino, a->bfh, datasync);
	if (!rc)
		dir_synced(s, ino, seq);
	return rc;
}

static int sw_fsyncdir(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int datasync)
{
	int64_t rc;
	CALL(ctx, fh, 1, fsyncdir_call(ctx, &a_, c, ino, datasync));
	return (int)rc;
}

static int sw_statfs(void *ctx, const struct fs_caller *c, uint64_t ino, struct statvfs *out)
{
	int64_t rc;
	CALL(ctx, 0, 1, ops->statfs(bctx, c, ino, out));
	return (int)rc;
}

static int sw_setxattr(void *ctx, const struct fs_caller *c, uint64_t ino, const char *name, const void *value,
		       size_t len, int flags)
{
	int64_t rc;
	CALL(ctx, 0, !(flags & (XATTR_CREATE | XATTR_REPLACE)), ops->setxattr(bctx, c, ino, name, value, len, flags));
	return (int)rc;
}

static ssize_t sw_getxattr(void *ctx, const struct fs_caller *c, uint64_t ino, const char *name, void *buf,
			   size_t len)
{
	int64_t rc;
	CALL(ctx, 0, 1, ops->getxattr(bctx, c, ino, name, buf, len));
	return (ssize_t)rc;
}

static ssize_t sw_listxattr(void *ctx, const struct fs_caller *c, uint64_t ino, char *buf, size_t len)
{
	int64_t rc;
	CALL(ctx, 0, 1, ops->listxattr(bctx, c, ino, buf, len));
	return (ssize_t)rc;
}

static int sw_removexattr(void *ctx, const struct fs_caller *c, uint64_t ino, const char *name)
{
	int64_t rc;
	CALL(ctx, 0, 0, ops->removexattr(bctx, c, ino, name));
	return (int)rc;
}

static int sw_fallocate(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int mode, uint64_t off,
			uint64_t len)
{
	int64_t rc;
	/* collapsing or inserting a range twice moves data twice */
	int idem = !(mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE));
	CALL(ctx, fh, idem, ops->fallocate(bctx, c, ino, a_.bfh, mode, off, len));
	return (int)rc;
}

static int sw_getlk(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, struct fs_lock *lk)
{
	int64_t rc;
	CALL(ctx, fh, 1, ops->getlk(bctx, c, ino, a_.bfh, lk));
	return (int)rc;
}

static int sw_setlk(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, const struct fs_lock *lk,
		    int wait, uint64_t token)
{
	int64_t rc;
	CALL(ctx, fh, 1, ops->setlk(bctx, c, ino, a_.bfh, lk, wait, token));
	return (int)rc;
}

static void sw_interrupt(void *ctx, const struct fs_caller *c, uint64_t token)
{
	int64_t rc;
	CALL(ctx, 0, 0, (ops->interrupt(bctx, c, token), 0));
	(void)rc;
}

static int64_t sw_lseek(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int64_t off, int whence)
{
	int64_t rc;
	CALL(ctx, fh, 1, ops->lseek(bctx, c, ino, a_.bfh, off, whence));
	return rc;
}

const struct fs_ops fsswitch_ops = {
	.lookup = sw_lookup, .forget = sw_forget, .getattr = sw_getattr, .setattr = sw_setattr,
	.readlink = sw_readlink, .mknod = sw_mknod, .mkdir = sw_mkdir, .unlink = sw_unlink, .rmdir = sw_rmdir,
	.symlink = sw_symlink, .rename = sw_rename, .link = sw_link, .open = sw_open, .create = sw_create,
	.read = sw_read, .write = sw_write, .flush = sw_flush, .release = sw_release, .fsync = sw_fsync,
	.opendir = sw_opendir, .readdir = sw_readdir, .readdirplus = sw_readdirplus,
	.releasedir = sw_releasedir, .fsyncdir = sw_fsyncdir,
	.statfs = sw_statfs, .setxattr = sw_setxattr, .getxattr = sw_getxattr, .listxattr = sw_listxattr,
	.removexattr = sw_removexattr, .fallocate = sw_fallocate, .getlk = sw_getlk, .setlk = sw_setlk,
	.interrupt = sw_interrupt, .lseek = sw_lseek,
};

/* ---- switching -------------------------------------------------------- */

int fsswitch_open(struct fsswitch **out, const struct fs_ops *ops, void *ctx, fsswitch_ready ready,
		  uint32_t node_id)
{
	struct fsswitch *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->ops = ops;
	s->ctx = ctx;
	s->ready = ready;
	s->node_id = node_id;
	*out = s;
	return 0;
}

void fsswitch_close(struct fsswitch *s)
{
	if (!s)
		return;
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->slots);
	free(s->dirs);
	free(s);
}

void fsswitch_hold(struct fsswitch *s, unsigned hold_ms)
{
	pthread_mutex_lock(&s->mu);
	s->held = 1;
	ms_from_now(&s->hold_until, hold_ms);
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

void fsswitch_unhold(struct fsswitch *s)
{
	pthread_mutex_lock(&s->mu);
	if (!s->switching)
		s->held = 0;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Reopen one slot's file through the new backend: its new handle, or
 * -errno. As root: the opener's kernel checked its permissions. */
static int reopen(struct fsswitch *s, const struct slot *sl, uint64_t *bfh)
{
	struct fs_caller root = { .node_id = s->node_id };
	if (sl->is_dir)
		return s->ops->opendir(s->ctx, &root, sl->ino, bfh);
	return s->ops->open(s->ctx, &root, sl->ino, sl->flags & ~(O_CREAT | O_EXCL | O_TRUNC), bfh);
}

/* Hold new calls until the switch is done and wait for those in flight.
 * mu held. */
static void drain_locked(struct fsswitch *s)
{
	s->held = s->switching = 1;
	ms_from_now(&s->hold_until, 3600 * 1000); /* until done */
	while (s->inflight)
		pthread_cond_wait(&s->cv, &s->mu);
}

void fsswitch_park(struct fsswitch *s)
{
	pthread_mutex_lock(&s->mu);
	drain_locked(s);
	pthread_mutex_unlock(&s->mu);
}

int fsswitch_set(struct fsswitch *s, const struct fs_ops *ops, void *ctx, fsswitch_ready ready, int lost_unsynced)
{
	pthread_mutex_lock(&s->mu);
	drain_locked(s);
	s->ops = ops;
	s->ctx = ctx;
	s->ready = ready;
	pthread_mutex_unlock(&s->mu);
	/* nothing else runs now: calls wait in begin(), none is in flight,
	 * so the slots change only here */
	int failed = 0;
	for (size_t i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];
		if (!sl->used || sl->stale)
			continue;
		uint64_t bfh;
		sl->prev_bfh = sl->bfh;
		int rc = reopen(s, sl, &bfh);
		sl->stale = rc != 0;
		sl->bfh = rc ? 0 : bfh;
		sl->lost |= sl->dirty && lost_unsynced;
		sl->dirty &= !lost_unsynced;
		failed += rc != 0;
	}
	dirs_switched(s, lost_unsynced);
	pthread_mutex_lock(&s->mu);
	s->gen++;
	s->held = s->switching = 0;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return failed;
}

/* ---- the previous backend's locks, into the current one */

/* The slot that had handle prev in the previous backend, -1 if none (or it
 * could not be reopened). mu held. */
static long slot_by_prev(struct fsswitch *s, uint64_t ino, uint64_t prev)
{
	for (size_t i = 0; i < s->nslots; i++) {
		const struct slot *sl = &s->slots[i];
		if (sl->used && !sl->stale && sl->ino == ino && sl->prev_bfh == prev)
			return (long)i;
	}
	return -1;
}

static int reclaim_setlk(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, const struct fs_lock *lk,
			 int wait, uint64_t token)
{
	struct fsswitch *s = ctx;
	pthread_mutex_lock(&s->mu);
	long i = slot_by_prev(s, ino, fh);
	uint64_t bfh = i >= 0 ? s->slots[i].bfh : 0;
	pthread_mutex_unlock(&s->mu);
	if (i < 0)
		return -ESTALE;
	int rc = s->ops->setlk(s->ctx, c, ino, bfh, lk, wait, token);
	if (rc && rc != -ENOTCONN) {
		/* the process no longer holds what it believes it holds: its
		 * next fsync or close says so (EIO), as for lost writes */
		pthread_mutex_lock(&s->mu);
		if ((size_t)i < s->nslots && s->slots[i].used && s->slots[i].ino == ino)
			s->slots[i].lost = 1;
		pthread_mutex_unlock(&s->mu);
	}
	return rc;
}

const struct fs_ops fsswitch_reclaim_ops = { .setlk = reclaim_setlk };

void fsswitch_counters(struct fsswitch *s, unsigned *open_files, unsigned *switches)
{
	pthread_mutex_lock(&s->mu);
	*open_files = (unsigned)s->used;
	*switches = (unsigned)s->gen;
	pthread_mutex_unlock(&s->mu);
}

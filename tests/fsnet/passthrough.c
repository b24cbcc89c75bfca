/* A minimal fs_ops backend over a directory, for the fsnet self-test only:
 * node ids are st_ino (the directory itself is FS_ROOT_INO), remembered
 * with the path they were found at; handles are fds (+1) and DIR
 * pointers. One byte-range lock per file at most, enough to show that a
 * conflicting setlk fails or blocks until interrupted. Not a model for the
 * real local backend (local.c), which uses file handles and *at() on fds. */
#include "passthrough.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAXN 4096

static struct { uint64_t ino; char path[1024]; uint64_t nlookup; } tab[MAXN];
static int ntab;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int rootfd = -1;
static char rootpath[512];
static uint64_t interrupted_token;
static struct { uint64_t ino; struct fs_lock lk; int held; } lock1;
struct pt_stats pt_stats;

static int path_of(uint64_t ino, char *out)
{
	if (ino == FS_ROOT_INO) {
		strcpy(out, ".");
		return 0;
	}
	pthread_mutex_lock(&mu);
	for (int i = 0; i < ntab; i++)
		if (tab[i].ino == ino) {
			strcpy(out, tab[i].path);
			pthread_mutex_unlock(&mu);
			return 0;
		}
	pthread_mutex_unlock(&mu);
	return -ESTALE;
}

static int child(uint64_t parent, const char *name, char *out)
{
	char p[1024];
	int rc = path_of(parent, p);
	if (rc)
		return rc;
	snprintf(out, 1024, "%s/%s", p, name);
	return 0;
}

static int entry_of(const char *path, struct fs_entry *e)
{
	if (fstatat(rootfd, path, &e->attr, AT_SYMLINK_NOFOLLOW))
		return -errno;
	e->ino = e->attr.st_ino;
	e->generation = 1;
	e->attr_timeout = e->entry_timeout = 1.0;
	pthread_mutex_lock(&mu);
	int i;
	for (i = 0; i < ntab && tab[i].ino != e->ino; i++)
		;
	if (i == ntab && ntab < MAXN)
		tab[ntab++].ino = e->ino;
	if (i < MAXN) {
		snprintf(tab[i].path, sizeof tab[i].path, "%s", path);
		tab[i].nlookup++;
	}
	pthread_mutex_unlock(&mu);
	return 0;
}

#define PATH(ino) char path[1024]; int prc = path_of((ino), path); if (prc) return prc
#define CHILD(par, nm) char path[1024]; int prc = child((par), (nm), path); if (prc) return prc
#define ERR(x) ((x) < 0 ? -errno : 0)

static int pt_lookup(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, struct fs_entry *out)
{
	(void)ctx, (void)c;
	CHILD(parent, name);
	return entry_of(path, out);
}

static void pt_forget(void *ctx, uint64_t ino, uint64_t n)
{
	(void)ctx;
	pthread_mutex_lock(&mu);
	pt_stats.forgets += n;
	for (int i = 0; i < ntab; i++)
		if (tab[i].ino == ino)
			tab[i].nlookup -= n < tab[i].nlookup ? n : tab[i].nlookup;
	pthread_mutex_unlock(&mu);
}

static int pt_getattr(void *ctx, const struct fs_caller *c, uint64_t ino, struct stat *out)
{
	(void)ctx, (void)c;
	PATH(ino);
	return ERR(fstatat(rootfd, path, out, AT_SYMLINK_NOFOLLOW));
}

static int pt_setattr(void *ctx, const struct fs_caller *c, uint64_t ino, const struct stat *a, int mask, uint64_t fh,
		      struct stat *out)
{
	(void)ctx, (void)c, (void)fh;
	PATH(ino);
	if ((mask & FS_SET_MODE) && fchmodat(rootfd, path, a->st_mode & 07777, 0))
		return -errno;
	if ((mask & FS_SET_SIZE)) {
		int fd = openat(rootfd, path, O_WRONLY);
		int rc = fd < 0 ? -errno : ERR(ftruncate(fd, a->st_size));
		if (fd >= 0)
			close(fd);
		if (rc)
			return rc;
	}
	if (mask & (FS_SET_MTIME | FS_SET_ATIME)) {
		struct timespec ts[2] = { a->st_atim, a->st_mtim };
		if (!(mask & FS_SET_ATIME))
			ts[0].tv_nsec = UTIME_OMIT;
		if (!(mask & FS_SET_MTIME))
			ts[1].tv_nsec = UTIME_OMIT;
		if (utimensat(rootfd, path, ts, AT_SYMLINK_NOFOLLOW))
			return -errno;
	}
	return ERR(fstatat(rootfd, path, out, AT_SYMLINK_NOFOLLOW));
}

static int pt_readlink(void *ctx, const struct fs_caller *c, uint64_t ino, char *buf, size_t len)
{
	(void)ctx, (void)c;
	PATH(ino);
	ssize_t n = readlinkat(rootfd, path, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

static int pt_mknod(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
		    struct fs_entry *out)
{
	(void)ctx, (void)c;
	CHILD(parent, name);
	return mknodat(rootfd, path, mode & ~c->umask, rdev) ? -errno : entry_of(path, out);
}

static int pt_mkdir(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode,
		    struct fs_entry *out)
{
	(void)ctx, (void)c;
	CHILD(parent, name);
	return mkdirat(rootfd, path, mode & ~c->umask) ? -errno : entry_of(path, out);
}

static int pt_unlink(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, struct fs_removed *gone)
{
	(void)ctx, (void)c, (void)gone;
	CHILD(parent, name);
	return ERR(unlinkat(rootfd, path, 0));
}

static int pt_rmdir(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, struct fs_removed *gone)
{
	(void)ctx, (void)c, (void)gone;
	CHILD(parent, name);
	return ERR(unlinkat(rootfd, path, AT_REMOVEDIR));
}

static int pt_symlink(void *ctx, const struct fs_caller *c, const char *target, uint64_t parent, const char *name,
		      struct fs_entry *out)
{
	(void)ctx, (void)c;
	CHILD(parent, name);
	return symlinkat(target, rootfd, path) ? -errno : entry_of(path, out);
}

static int pt_rename(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, uint64_t newparent,
		     const char *newname, unsigned flags)
{
	(void)ctx, (void)c;
	CHILD(parent, name);
	char to[1024];
	int rc = child(newparent, newname, to);
	return rc ? rc : ERR(renameat2(rootfd, path, rootfd, to, flags));
}

static int pt_link(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t newparent, const char *newname,
		   struct fs_entry *out)
{
	(void)ctx, (void)c;
	PATH(ino);
	char to[1024];
	int rc = child(newparent, newname, to);
	if (rc)
		return rc;
	if (linkat(rootfd, path, rootfd, to, 0))
		return -errno;
	return entry_of(to, out);
}

static int pt_open(void *ctx, const struct fs_caller *c, uint64_t ino, int flags, uint64_t *fh)
{
	(void)ctx, (void)c;
	PATH(ino);
	int fd = openat(rootfd, path, flags & ~O_CREAT);
	if (fd < 0)
		return -errno;
	*fh = (uint64_t)fd + 1;
	return 0;
}

static int pt_create(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode, int flags,
		     struct fs_entry *out, uint64_t *fh)
{
	(void)ctx, (void)c;
	CHILD(parent, name);
	int fd = openat(rootfd, path, flags | O_CREAT, mode & ~c->umask); /* the umask is the backend's (fsops.h) */
	if (fd < 0)
		return -errno;
	*fh = (uint64_t)fd + 1;
	return entry_of(path, out);
}

static ssize_t pt_read(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, void *buf, size_t len,
		       uint64_t off)
{
	(void)ctx, (void)c, (void)ino;
	ssize_t n = pread((int)fh - 1, buf, len, (off_t)off);
	return n < 0 ? -errno : n;
}

static ssize_t pt_write(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, const void *buf, size_t len,
			uint64_t off)
{
	(void)ctx, (void)c, (void)ino;
	ssize_t n = pwrite((int)fh - 1, buf, len, (off_t)off);
	return n < 0 ? -errno : n;
}

static int pt_flush(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, uint64_t owner)
{
	(void)ctx, (void)c, (void)ino, (void)fh, (void)owner;
	return 0;
}

static int pt_release(void *ctx, uint64_t ino, uint64_t fh)
{
	(void)ctx, (void)ino;
	__atomic_add_fetch(&pt_stats.releases, 1, __ATOMIC_SEQ_CST);
	return ERR(close((int)fh - 1));
}

static int pt_fsync(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int datasync)
{
	(void)ctx, (void)c, (void)ino;
	if (pt_stats.slow_fsync_ms)
		usleep((useconds_t)pt_stats.slow_fsync_ms * 1000);
	return ERR(datasync ? fdatasync((int)fh - 1) : fsync((int)fh - 1));
}

static int pt_opendir(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t *fh)
{
	(void)ctx, (void)c;
	PATH(ino);
	int fd = openat(rootfd, path, O_RDONLY | O_DIRECTORY);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		int e = -errno;
		if (fd >= 0)
			close(fd);
		return e;
	}
	*fh = (uint64_t)(uintptr_t)d;
	return 0;
}

static int pt_readdir(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, uint64_t off, fs_dirfill fill,
		      void *arg)
{
	(void)ctx, (void)c, (void)ino;
	DIR *d = (DIR *)(uintptr_t)fh;
	if (off)
		seekdir(d, (long)off);
	else
		rewinddir(d);
	for (;;) {
		long here = telldir(d);
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de)
			return -errno;
		if (fill(arg, de->d_name, de->d_ino, DTTOIF(de->d_type), (uint64_t)telldir(d))) {
			seekdir(d, here);
			return 0;
		}
	}
}

static int pt_releasedir(void *ctx, uint64_t ino, uint64_t fh)
{
	(void)ctx, (void)ino;
	__atomic_add_fetch(&pt_stats.releases, 1, __ATOMIC_SEQ_CST);
	return ERR(closedir((DIR *)(uintptr_t)fh));
}

static int pt_fsyncdir(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int datasync)
{
	(void)ctx, (void)c, (void)ino, (void)fh, (void)datasync;
	return 0;
}

static int pt_statfs(void *ctx, const struct fs_caller *c, uint64_t ino, struct statvfs *out)
{
	(void)ctx, (void)c, (void)ino;
	return ERR(fstatvfs(rootfd, out));
}

static void full(const char *path, char *out)
{
	snprintf(out, 1600, "%s/%s", rootpath, path);
}

static int pt_setxattr(void *ctx, const struct fs_caller *c, uint64_t ino, const char *name, const void *value,
		       size_t len, int flags)
{
	(void)ctx, (void)c;
	PATH(ino);
	char f[1600];
	full(path, f);
	return ERR(lsetxattr(f, name, value, len, flags));
}

static ssize_t pt_getxattr(void *ctx, const struct fs_caller *c, uint64_t ino, const char *name, void *buf, size_t len)
{
	(void)ctx, (void)c;
	PATH(ino);
	char f[1600];
	full(path, f);
	ssize_t n = lgetxattr(f, name, buf, len);
	return n < 0 ? -errno : n;
}

static ssize_t pt_listxattr(void *ctx, const struct fs_caller *c, uint64_t ino, char *buf, size_t len)
{
	(void)ctx, (void)c;
	PATH(ino);
	char f[1600];
	full(path, f);
	ssize_t n = llistxattr(f, buf, len);
	return n < 0 ? -errno : n;
}

static int pt_removexattr(void *ctx, const struct fs_caller *c, uint64_t ino, const char *name)
{
	(void)ctx, (void)c;
	PATH(ino);
	char f[1600];
	full(path, f);
	return ERR(lremovexattr(f, name));
}

static int pt_fallocate(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int mode, uint64_t off,
			uint64_t len)
{
	(void)ctx, (void)c, (void)ino;
	return ERR(fallocate((int)fh - 1, mode, (off_t)off, (off_t)len));
}

static int conflicts(uint64_t ino, const struct fs_lock *lk)
{
	return lock1.held && lock1.ino == ino &&
	       (lock1.lk.owner != lk->owner || lock1.lk.node_id != lk->node_id) &&
	       (lock1.lk.type == F_WRLCK || lk->type == F_WRLCK) && lk->start <= lock1.lk.end &&
	       lock1.lk.start <= lk->end;
}

static int pt_getlk(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, struct fs_lock *lk)
{
	(void)ctx, (void)c, (void)fh;
	pthread_mutex_lock(&mu);
	if (conflicts(ino, lk))
		*lk = lock1.lk;
	else
		lk->type = F_UNLCK;
	pthread_mutex_unlock(&mu);
	return 0;
}

static int pt_setlk(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, const struct fs_lock *lk,
		    int wait, uint64_t token)
{
	(void)ctx, (void)c, (void)fh;
	int rc = 0;
	pthread_mutex_lock(&mu);
	if (lk->type == F_UNLCK) {
		if (lock1.held && lock1.ino == ino && lock1.lk.owner == lk->owner && lock1.lk.node_id == lk->node_id)
			lock1.held = 0;
		pthread_cond_broadcast(&cv);
	} else {
		while (conflicts(ino, lk) && wait && interrupted_token != token)
			pthread_cond_wait(&cv, &mu);
		if (conflicts(ino, lk))
			rc = wait ? -EINTR : -EAGAIN;
		else {
			lock1.ino = ino;
			lock1.lk = *lk;
			lock1.held = 1;
		}
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

static void pt_interrupt(void *ctx, const struct fs_caller *c, uint64_t token)
{
	(void)ctx, (void)c;
	pthread_mutex_lock(&mu);
	interrupted_token = token;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* The test's lock table "node gone" */
void pt_node_gone(void *arg, uint32_t node)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	if (lock1.held && lock1.lk.node_id == node)
		lock1.held = 0;
	pt_stats.gone_node = (int)node;
	pt_stats.gone++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static int64_t pt_lseek(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int64_t off, int whence)
{
	(void)ctx, (void)c, (void)ino;
	off_t r = lseek((int)fh - 1, (off_t)off, whence);
	return r < 0 ? -errno : r;
}

const struct fs_ops pt_ops = {
	.lookup = pt_lookup, .forget = pt_forget, .getattr = pt_getattr, .setattr = pt_setattr,
	.readlink = pt_readlink, .mknod = pt_mknod, .mkdir = pt_mkdir, .unlink = pt_unlink, .rmdir = pt_rmdir,
	.symlink = pt_symlink, .rename = pt_rename, .link = pt_link, .open = pt_open, .create = pt_create,
	.read = pt_read, .write = pt_write, .flush = pt_flush, .release = pt_release, .fsync = pt_fsync,
	.opendir = pt_opendir, .readdir = pt_readdir, .releasedir = pt_releasedir, .fsyncdir = pt_fsyncdir,
	.statfs = pt_statfs, .setxattr = pt_setxattr, .getxattr = pt_getxattr, .listxattr = pt_listxattr,
	.removexattr = pt_removexattr, .fallocate = pt_fallocate, .getlk = pt_getlk, .setlk = pt_setlk,
	.interrupt = pt_interrupt, .lseek = pt_lseek,
};

int pt_init(const char *dir)
{
	snprintf(rootpath, sizeof rootpath, "%s", dir);
	rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return rootfd < 0 ? -errno : 0;
}

void pt_fini(void)
{
	if (rootfd >= 0)
		close(rootfd);
	rootfd = -1;
}

/* fusedev — see fusedev.h. */
#define FUSE_USE_VERSION 35
#include "fusedev.h"
#include "fusemount.h"
#include "log.h"

#include <errno.h>
#include <fuse.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

struct fusedev {
	struct engine *e;
	struct fuse *fuse;
	struct fusemount *fm;
	char mnt[512];
	char name[64];
	char path[600];
	pid_t watchdog; /* the process that aborts the mount if this one dies; 0 none */
	/* shared with the watchdog (one page, MAP_SHARED): the loop device
	 * over the file ("/dev/loopN", "" none), fusedev_set_loop */
	char *loop;
};
#define LOOP_NAME_MAX 64

static struct fusedev *ctx(void)
{
	return fuse_get_context()->private_data;
}

static int is_file(struct fusedev *f, const char *path)
{
	return path[0] == '/' && !strcmp(path + 1, f->name);
}

static void *fd_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	cfg->direct_io = 1;
	cfg->kernel_cache = 0;
	cfg->attr_timeout = 3600;
	cfg->entry_timeout = 3600;
	cfg->use_ino = 0;
	return fuse_get_context()->private_data;
}

static int fd_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct fusedev *f = ctx();
	(void)fi;
	memset(st, 0, sizeof *st);
	if (!strcmp(path, "/")) {
		st->st_mode = S_IFDIR | 0700;
		st->st_nlink = 2;
		return 0;
	}
	if (!is_file(f, path))
		return -ENOENT;
	st->st_mode = S_IFREG | (atomic_load(&f->e->role) == ROLE_PRIMARY ? 0600 : 0400);
	st->st_nlink = 1;
	st->st_size = (off_t)f->e->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)(f->e->size / 512);
	return 0;
}

static int fd_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags fl)
{
	struct fusedev *f = ctx();
	(void)off; (void)fi; (void)fl;
	if (strcmp(path, "/"))
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, f->name, NULL, 0, 0);
	return 0;
}

static int fd_open(const char *path, struct fuse_file_info *fi)
{
	struct fusedev *f = ctx();
	if (!is_file(f, path))
		return -ENOENT;
	/* opening for write is always allowed (the loop device holds one such fd
	 * across role changes); writes themselves are refused unless Primary */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	return 0;
}

static int fd_read(const char *path, char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	struct fusedev *f = ctx();
	(void)path; (void)fi;
	if (off < 0)
		return -EINVAL;
	if ((uint64_t)off >= f->e->size)
		return 0;
	if (len > f->e->size - (uint64_t)off)
		len = (size_t)(f->e->size - (uint64_t)off);
	int rc = engine_read(f->e, buf, len, (uint64_t)off);
	return rc ? rc : (int)len;
}

static int fd_write(const char *path, const char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	struct fusedev *f = ctx();
	(void)path; (void)fi;
	if (off < 0)
		return -EINVAL;
	if ((uint64_t)off >= f->e->size || len > f->e->size - (uint64_t)off)
		return -ENOSPC; /* the device does not grow */
	int rc = engine_write(f->e, buf, len, (uint64_t)off, 0);
	return rc == -EPERM ? -EROFS : rc ? rc : (int)len;
}

static int fd_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path; (void)datasync; (void)fi;
	return engine_flush(ctx()->e);
}

static int fd_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path; (void)fi;
	return 0; /* close() is not a durability point; fsync is */
}

static int fd_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct fusedev *f = ctx();
	(void)path; (void)fi;
	return (uint64_t)size == f->e->size ? 0 : -EPERM;
}

static int fd_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	struct fusedev *f = ctx();
	(void)path; (void)fi;
	if (off < 0 || len <= 0)
		return -EINVAL;
	if (!(mode & FALLOC_FL_KEEP_SIZE) && !(mode & FALLOC_FL_ZERO_RANGE))
		return (uint64_t)off + (uint64_t)len <= f->e->size ? 0 : -ENOSPC;
	int rc;
	if (mode & FALLOC_FL_PUNCH_HOLE)
		rc = engine_zero(f->e, (uint64_t)off, (uint64_t)len, 0, 0);
	else if (mode & FALLOC_FL_ZERO_RANGE)
		rc = engine_zero(f->e, (uint64_t)off, (uint64_t)len, 1, 0);
	else
		rc = -EOPNOTSUPP;
	return rc == -EPERM ? -EROFS : rc;
}

static const struct fuse_operations ops = {
	.init = fd_init,
	.getattr = fd_getattr,
	.readdir = fd_readdir,
	.open = fd_open,
	.read = fd_read,
	.write = fd_write,
	.fsync = fd_fsync,
	.flush = fd_flush,
	.truncate = fd_truncate,
	.fallocate = fd_fallocate,
};

int fusedev_clean_stale(const char *mountpoint)
{
	char line[4096];
	int found = 0;
	FILE *mi = fopen("/proc/self/mounts", "r");

	if (!mi)
		return -errno;
	while (fgets(line, sizeof line, mi)) {
		char dev[1024], dir[2048];
		if (sscanf(line, "%1023s %2047s", dev, dir) == 2 && !strcmp(dir, mountpoint))
			found = 1;
	}
	fclose(mi);
	if (!found)
		return 0;
	if (umount2(mountpoint, MNT_DETACH) < 0)
		return -errno;
	return 1;
}

/* dst = a + b, within dst[cap]; system calls' safety (no stdio) */
static void cat2(char *dst, size_t cap, const char *a, const char *b)
{
	size_t n = 0;
	for (const char *s = a; *s && n + 1 < cap; s++)
		dst[n++] = *s;
	for (const char *s = b; *s && n + 1 < cap; s++)
		dst[n++] = *s;
	dst[n] = 0;
}

/* The loop device over the dead daemon's file (dev "/dev/loopN") may be
 * marked read-only (BLKROSET: a Secondary's), and that mark belongs to
 * /dev/loopN, not to the binding: the device goes free when the dead
 * process's last descriptor closes (LO_FLAGS_AUTOCLEAR), and whoever takes
 * it next (a losetup, mkfs) would get EPERM for every write. Clear it,
 * unless the device already serves someone else's file. System calls
 * only, as the watchdog. */
static void loop_writable_again(const char *dev, const char *file)
{
	char sys[128], back[700];
	const char *base = strrchr(dev, '/');
	cat2(sys, sizeof sys, "/sys/block/", base ? base + 1 : dev);
	cat2(sys, sizeof sys, sys, "/loop/backing_file");
	int fd = open(sys, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) { /* still bound: to our file (the kernel ends it soon), or someone else's */
		ssize_t n = read(fd, back, sizeof back - 1);
		close(fd);
		size_t fl = strlen(file);
		if (n < (ssize_t)fl || memcmp(back, file, fl))
			return;
	}
	int d = open(dev, O_RDONLY | O_CLOEXEC);
	if (d < 0)
		return;
	int ro = 0;
	ioctl(d, BLKROSET, &ro);
	close(d);
}

/* The watchdog's body, in a child forked from a multithreaded process:
 * system calls only (no stdio, no malloc: another thread may have held
 * their locks at the fork). It holds none of the daemon's descriptors,
 * so it keeps no FUSE connection, lock or socket alive. */
static _Noreturn void watchdog_main(const struct fusedev *f, pid_t daemon, const sigset_t *death)
{
	const char *mnt = f->mnt;
	syscall(SYS_close_range, 0u, ~0u, 0u);
	prctl(PR_SET_NAME, "dipole-watchdog");
	if (prctl(PR_SET_PDEATHSIG, SIGUSR1) == 0 && getppid() == daemon) {
		siginfo_t si;
		while (sigwaitinfo(death, &si) < 0 && errno == EINTR)
			;
	}
	/* the daemon's main thread is gone. A clean exit stopped this
	 * process before unmounting; here the daemon died: abort the FUSE
	 * connection (MNT_FORCE), which fails the requests a thread of the
	 * dead process may wait for in D state, so it can end. Its mount
	 * point cannot be anyone else's yet: a new daemon waits for the pid
	 * file's lock, which the dead one holds until it has ended. */
	if (f->loop && f->loop[0]) { /* first: once detached, the file's path reads differently */
		char dev[LOOP_NAME_MAX];
		cat2(dev, sizeof dev, f->loop, "");
		loop_writable_again(dev, f->path);
	}
	umount2(mnt, MNT_FORCE | MNT_DETACH | UMOUNT_NOFOLLOW);
	_exit(0);
}

/* A SIGKILLed daemon whose kernel filesystem (dipolefs's owner) was
 * inside an fsync leaves a thread in D state waiting for journal writes
 * the loop device sent here as FUSE requests: nobody serves them, the
 * thread keeps the process's /dev/fuse descriptor alive, so the kernel
 * never ends the connection (docs/dipolefs.md "A killed owner's last
 * thread"). A child process aborts it when this process's main thread
 * dies (PR_SET_PDEATHSIG: call from the main thread, which lives as long
 * as the process). Without it (fork failed: logged) the device works, and
 * the log says how to end what a killed daemon leaves. */
static void watchdog_start(struct fusedev *f)
{
	sigset_t death, old;
	sigemptyset(&death);
	sigaddset(&death, SIGUSR1);
	void *page = mmap(NULL, LOOP_NAME_MAX, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	f->loop = page == MAP_FAILED ? NULL : page; /* zeroed: no loop device yet */
	pthread_sigmask(SIG_BLOCK, &death, &old);
	pid_t daemon = getpid();
	pid_t pid = fork();
	if (pid == 0)
		watchdog_main(f, daemon, &death);
	int rc = pid < 0 ? -errno : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		log_warn("no watchdog for %s (fork: %s): if this daemon is killed while a kernel filesystem on its "
			 "device flushes, `umount -f %s` ends what is left of it", f->mnt, strerror(-rc), f->mnt);
	else
		f->watchdog = pid;
}

static void watchdog_stop(struct fusedev *f)
{
	if (!f->watchdog)
		return;
	kill(f->watchdog, SIGKILL);
	while (waitpid(f->watchdog, NULL, 0) < 0 && errno == EINTR)
		;
	f->watchdog = 0;
	if (f->loop)
		munmap(f->loop, LOOP_NAME_MAX);
	f->loop = NULL;
}

void fusedev_set_loop(struct fusedev *f, const char *dev)
{
	if (!f || !f->loop)
		return;
	snprintf(f->loop, LOOP_NAME_MAX, "%s", dev); /* the watchdog reads it once this process is dead */
}

int fusedev_start(struct fusedev **out, struct engine *e, const char *mountpoint, const char *name, char *err)
{
	char *argv[] = { "dipole", "-o", "fsname=dipole,subtype=dipole", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	struct fusedev *f = calloc(1, sizeof *f);

	if (!f)
		return -ENOMEM;
	f->e = e;
	snprintf(f->mnt, sizeof f->mnt, "%s", mountpoint);
	snprintf(f->name, sizeof f->name, "%s", name);
	snprintf(f->path, sizeof f->path, "%s/%s", mountpoint, name);
	if (mkdir(mountpoint, 0700) < 0 && errno != EEXIST) {
		snprintf(err, 256, "cannot create mount point %s: %s", mountpoint, strerror(errno));
		free(f);
		return -EIO;
	}
	f->fuse = fuse_new(&args, &ops, sizeof ops, f);
	fuse_opt_free_args(&args);
	if (!f->fuse) {
		snprintf(err, 256, "cannot initialise FUSE (is /dev/fuse present and the fuse module loaded?)");
		free(f);
		return -EIO;
	}
	/* served by the session's loop: no `remember`, so fuse_loop_mt's
	 * cleanup thread has nothing to do */
	int rc = fusemount_start(&f->fm, fuse_get_session(f->fuse), mountpoint, 0, err);
	if (rc) {
		fuse_destroy(f->fuse);
		free(f);
		return rc;
	}
	watchdog_start(f);
	*out = f;
	return 0;
}

void fusedev_stop(struct fusedev *f)
{
	if (!f)
		return;
	watchdog_stop(f);
	fusemount_stop(f->fm, 0);
	fuse_destroy(f->fuse);
	rmdir(f->mnt);
	free(f);
}

const char *fusedev_file(const struct fusedev *f)
{
	return f->path;
}

void fusedev_resized(struct fusedev *f)
{
	char p[80];
	if (!f || !f->fuse)
		return;
	snprintf(p, sizeof p, "/%s", f->name);
	fuse_invalidate_path(f->fuse, p);
}

/* fusemount — see fusemount.h. */
#define FUSE_USE_VERSION 35
#include "fusemount.h"

#include "util.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

struct fusemount {
	struct fuse_session *se;
	pthread_t loop;
	dev_t dev;               /* the mount's device, 0 if unknown */
	int adopted;             /* mounted by someone else (fuse_fd): libfuse does not unmount it */
	int gone;                /* known to be unmounted (fusemount_gone) */
	atomic_int ended;        /* the loop returned: the kernel ended the connection (or we did) */
	char mnt[4096];
};

static void *loop_main(void *arg)
{
	struct fusemount *m = arg;
	struct fuse_loop_config lc = { .clone_fd = 0, .max_idle_threads = 16 };
	fuse_session_loop_mt(m->se, &lc);
	/* not fuse_session_exited: the loop resets it on its way out */
	atomic_store(&m->ended, 1);
	return NULL;
}

/* The device of the topmost FUSE mount at `path`, from mountinfo (no
 * lookup of the path itself), 0 if none. */
static dev_t mountinfo_dev(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	dev_t dev = 0;
	if (!f)
		return 0;
	while (getline(&line, &cap, f) > 0) {
		unsigned maj, min;
		char mnt[4096], *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*d %*d %u:%u %*s %4095s", &maj, &min, mnt) != 3)
			continue;
		str_unescape_octal(mnt);
		if (!strcmp(mnt, path) && !strncmp(sep + 3, "fuse", 4))
			dev = makedev(maj, min); /* later lines are mounted on top */
	}
	free(line);
	fclose(f);
	return dev;
}

int fusemount_start(struct fusemount **out, struct fuse_session *se, const char *mountpoint, int fuse_fd,
		    char *err)
{
	struct stat st;
	char fdpath[32];
	struct fusemount *m = calloc(1, sizeof *m);
	if (!m)
		return -ENOMEM;
	if (strlen(mountpoint) >= sizeof m->mnt) {
		free(m);
		snprintf(err, 256, "mount point too long");
		return -ENAMETOOLONG;
	}
	m->se = se;
	snprintf(m->mnt, sizeof m->mnt, "%s", mountpoint);
	if (fuse_fd > 0) {
		/* libfuse then closes its copy (fuse_session_destroy) */
		int fd = fcntl(fuse_fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			snprintf(err, 256, "cannot take the FUSE descriptor: %s", strerror(errno));
			free(m);
			return -EBADF;
		}
		m->adopted = 1;
		snprintf(fdpath, sizeof fdpath, "/dev/fd/%d", fd);
		if (fuse_session_mount(se, fdpath)) {
			close(fd);
			snprintf(err, 256, "cannot serve the FUSE mount made at %s (libfuse logs why)", mountpoint);
			free(m);
			return -EIO;
		}
	} else if (fuse_session_mount(se, mountpoint)) {
		snprintf(err, 256, "cannot mount FUSE at %s (busy, or not permitted; libfuse logs why)", mountpoint);
		free(m);
		return -EIO;
	}
	if (pthread_create(&m->loop, NULL, loop_main, m)) {
		snprintf(err, 256, "cannot start the FUSE threads");
		fuse_session_unmount(se);
		free(m);
		return -EAGAIN;
	}
	/* only now: a stat of the mount is a request the threads must serve */
	if (m->adopted)
		m->dev = mountinfo_dev(mountpoint);
	else if (stat(mountpoint, &st) == 0)
		m->dev = st.st_dev;
	*out = m;
	return 0;
}

/* The mount point still holds this mount: the connection is alive (so
 * its device number is still ours) and mountinfo has it there. Never a
 * lookup of the path: after a plain umount(8) what is there may be
 * systemd's automount point (autofs), which must not be triggered, and
 * which, with a request pending (mount.dipole mounting there again),
 * would make the lookup wait for that mount. */
static int still_mounted(const struct fusemount *m)
{
	return m->dev && !m->gone && !atomic_load(&m->ended) && mountinfo_dev(m->mnt) == m->dev;
}

int fusemount_set_readahead(const struct fusemount *m, unsigned kib)
{
	char path[64], val[16];
	if (!m->dev)
		return -ENODEV;
	/* a FUSE mount's backing device info is named by its anonymous
	 * device number, as in /sys/class/bdi/0:52 */
	snprintf(path, sizeof path, "/sys/class/bdi/%u:%u/read_ahead_kb", major(m->dev), minor(m->dev));
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int n = snprintf(val, sizeof val, "%u", kib);
	int rc = write(fd, val, (size_t)n) == n ? 0 : -errno;
	close(fd);
	return rc;
}

void fusemount_gone(struct fusemount *m)
{
	if (m)
		m->gone = 1;
}

/* End the kernel's side of the connection, so the serving threads return
 * from read() even while processes hold files open. MNT_FORCE only on
 * this mount: on a foreign one it would abort that. Where the mount was
 * already taken away (umount(8) lazily) fusectl's abort file does it, if
 * someone mounted fusectl: never mounted from here. */
static void abort_connection(struct fusemount *m, int mounted)
{
	/* Known unmounted: the kernel ended the connection with the mount,
	 * and the threads see that at once; its device number may be a new
	 * mount's already (mount.dipole's), whose connection the fusectl
	 * abort below would end. Only a connection still alive after a
	 * second (lazily unmounted, files open: its device is still its
	 * own) is ended there. */
	for (int i = 0; m->gone && i < 100 && !atomic_load(&m->ended); i++)
		usleep(10000);
	if (m->gone && atomic_load(&m->ended))
		return;
	if (mounted) {
		(void)umount2(m->mnt, MNT_FORCE | MNT_DETACH | UMOUNT_NOFOLLOW);
		return;
	}
	char p[96];
	snprintf(p, sizeof p, "/sys/fs/fuse/connections/%u/abort", minor(m->dev));
	FILE *a = m->dev ? fopen(p, "we") : NULL;
	if (a) {
		fputs("1", a);
		fclose(a);
	}
}

void fusemount_stop(struct fusemount *m, int abort)
{
	if (!m)
		return;
	int mounted = still_mounted(m); /* before fuse_session_exit */
	if (abort)
		abort_connection(m, mounted);
	fuse_session_exit(m->se);
	if (!abort && m->adopted) { /* libfuse did not mount it, and will not unmount it */
		if (mounted)
			(void)umount2(m->mnt, MNT_DETACH | UMOUNT_NOFOLLOW);
	} else if (!abort) /* unmounting makes the kernel end the session, which ends the loop */
		fuse_session_unmount(m->se);
	pthread_join(m->loop, NULL);
	fuse_session_unmount(m->se);
	free(m);
}

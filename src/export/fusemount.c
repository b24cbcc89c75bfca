/* fusemount — see fusemount.h. */
#define FUSE_USE_VERSION 35
#include "fusemount.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
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
	char mnt[4096];
};

static void *loop_main(void *arg)
{
	struct fusemount *m = arg;
	struct fuse_loop_config lc = { .clone_fd = 0, .max_idle_threads = 16 };
	fuse_session_loop_mt(m->se, &lc);
	return NULL;
}

int fusemount_start(struct fusemount **out, struct fuse_session *se, const char *mountpoint, char *err)
{
	struct stat st;
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
	if (fuse_session_mount(se, mountpoint)) {
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
	if (stat(mountpoint, &st) == 0)
		m->dev = st.st_dev;
	*out = m;
	return 0;
}

/* The mount point is still this mount (cached attributes only: no
 * request to the threads being stopped). After a plain umount(8) took
 * ours off, what is there is not ours: under systemd's automount
 * (x-systemd.automount) the autofs mount, which must stay, and not be
 * triggered by the look (AT_NO_AUTOMOUNT: statx, unlike stat, would). */
static int still_mounted(const struct fusemount *m)
{
	struct statx sx;
	if (!m->dev || statx(AT_FDCWD, m->mnt, AT_STATX_DONT_SYNC | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, 0, &sx))
		return 0;
	return makedev(sx.stx_dev_major, sx.stx_dev_minor) == m->dev;
}

/* End the kernel's side of the connection, so the serving threads return
 * from read() even while processes hold files open. MNT_FORCE only on
 * this mount: on a foreign one it would abort that. Where the mount was
 * already taken away (umount(8) lazily) fusectl's abort file does it, if
 * someone mounted fusectl: never mounted from here. */
static void abort_connection(struct fusemount *m)
{
	if (still_mounted(m)) {
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
	if (abort)
		abort_connection(m);
	fuse_session_exit(m->se);
	if (!abort) /* unmounting makes the kernel end the session, which ends the loop */
		fuse_session_unmount(m->se);
	pthread_join(m->loop, NULL);
	fuse_session_unmount(m->se);
	free(m);
}

/* loopdev — see loopdev.h. */
#include "loopdev.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int loopdev_attach(const char *file, int rdonly, char *dev, size_t devlen, int *fd_out, char *err)
{
	int ctl, n, dfd = -1, ffd;
	struct loop_config lc;

	ffd = open(file, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (ffd < 0) {
		snprintf(err, 256, "cannot open %s for the loop device: %s", file, strerror(errno));
		return -errno;
	}
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		int e = errno;
		snprintf(err, 256, "cannot open /dev/loop-control: %s (is the loop module loaded?)", strerror(e));
		close(ffd);
		return -e;
	}
	for (int tries = 0; tries < 16; tries++) {
		n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0)
			break;
		snprintf(dev, devlen, "/dev/loop%d", n);
		dfd = open(dev, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (dfd < 0)
			continue;
		memset(&lc, 0, sizeof lc);
		lc.fd = (unsigned)ffd;
		lc.block_size = 4096;
		lc.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO | (rdonly ? LO_FLAGS_READ_ONLY : 0);
		snprintf((char *)lc.info.lo_file_name, sizeof lc.info.lo_file_name, "%s", file);
		if (ioctl(dfd, LOOP_CONFIGURE, &lc) == 0)
			break;
		if (errno == EINVAL) {
			/* direct I/O refused: fall back to buffered */
			lc.info.lo_flags &= ~(unsigned)LO_FLAGS_DIRECT_IO;
			if (ioctl(dfd, LOOP_CONFIGURE, &lc) == 0)
				break;
		}
		close(dfd); /* raced with another user of that device: try the next */
		dfd = -1;
		if (errno != EBUSY)
			break;
	}
	int e = errno;
	close(ctl);
	close(ffd);
	if (dfd < 0) {
		snprintf(err, 256, "cannot attach a loop device to %s: %s", file, strerror(e));
		return -e;
	}
	/* a read-only mark (BLKROSET) belongs to /dev/loopN and outlives a
	 * binding: one a killed user left must not make ours read-only */
	if (!rdonly)
		loopdev_set_ro(dfd, 0);
	*fd_out = dfd;
	return 0;
}

int loopdev_detach(int fd)
{
	int rc = ioctl(fd, LOOP_CLR_FD) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

int loopdev_busy(const char *dev)
{
	int fd = open(dev, O_RDONLY | O_EXCL | O_CLOEXEC);
	if (fd < 0)
		return errno == EBUSY;
	close(fd);
	return 0;
}

int loopdev_set_ro(int fd, int ro)
{
	return ioctl(fd, BLKROSET, &ro) < 0 ? -errno : 0;
}

int loopdev_clean_stale(const char *file, char *msg, size_t msglen)
{
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	int cleaned = 0;

	msg[0] = 0;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char p[300], back[4096], dev[300];
		if (strncmp(de->d_name, "loop", 4))
			continue;
		snprintf(p, sizeof p, "/sys/block/%s/loop/backing_file", de->d_name);
		FILE *f = fopen(p, "r");
		if (!f)
			continue;
		back[0] = 0;
		if (!fgets(back, sizeof back, f))
			back[0] = 0;
		fclose(f);
		back[strcspn(back, "\n")] = 0;
		/* a dead FUSE file shows as "PATH (deleted)" on some kernels */
		size_t fl = strlen(file);
		if (strncmp(back, file, fl) || (back[fl] && strcmp(back + fl, " (deleted)")))
			continue;
		snprintf(dev, sizeof dev, "/dev/%s", de->d_name);
		if (loopdev_busy(dev)) {
			snprintf(msg, msglen, "stale loop device %s (backed by %s) is still in use, probably "
				 "mounted; unmount it, it will then go away", dev, file);
			continue;
		}
		int fd = open(dev, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		loopdev_set_ro(fd, 0); /* the mark outlives the binding (daemon.c) */
		if (loopdev_detach(fd) == 0)
			cleaned++;
	}
	closedir(d);
	return cleaned;
}

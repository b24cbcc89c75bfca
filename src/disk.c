/* disk — see disk.h. */
#include "disk.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

int disk_open(struct disk **out, const char *path, int rdonly)
{
	struct stat st;
	struct disk *d;
	int fd = open(path, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	d = calloc(1, sizeof *d);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	d->fd = fd;
	snprintf(d->path, sizeof d->path, "%s", path);
	if (S_ISBLK(st.st_mode)) {
		d->is_blockdev = 1;
		int ro = 0;
		if (ioctl(fd, BLKGETSIZE64, &d->size) < 0) {
			int e = -errno;
			disk_close(d);
			return e;
		}
		/* a read-only block device still opens O_RDWR; its writes fail later */
		if (!rdonly && ioctl(fd, BLKROGET, &ro) == 0 && ro) {
			disk_close(d);
			return -EROFS;
		}
	} else if (S_ISREG(st.st_mode)) {
		d->size = (uint64_t)st.st_size;
	} else {
		disk_close(d);
		return -EINVAL;
	}
	*out = d;
	return 0;
}

void disk_close(struct disk *d)
{
	if (!d)
		return;
	close(d->fd);
	free(d);
}

int disk_pread(struct disk *d, void *buf, size_t len, uint64_t off)
{
	return pread_full(d->fd, buf, len, (off_t)off);
}

int disk_pwrite(struct disk *d, const void *buf, size_t len, uint64_t off)
{
	return pwrite_full(d->fd, buf, len, (off_t)off);
}

int disk_flush(struct disk *d)
{
	return fdatasync(d->fd) < 0 ? -errno : 0;
}

int disk_trim(struct disk *d, uint64_t off, uint64_t len)
{
	if (d->is_blockdev) {
		uint64_t r[2] = { off, len };
		/* discard is advisory: a device without it still did nothing wrong */
		if (ioctl(d->fd, BLKDISCARD, r) < 0 && errno != EOPNOTSUPP)
			return -errno;
		return 0;
	}
	if (fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0 &&
	    errno != EOPNOTSUPP)
		return -errno;
	return 0;
}

static int zero_by_writing(struct disk *d, uint64_t off, uint64_t len)
{
	static const char zeroes[65536];
	while (len) {
		size_t n = len < sizeof zeroes ? (size_t)len : sizeof zeroes;
		int rc = disk_pwrite(d, zeroes, n, off);
		if (rc)
			return rc;
		off += n;
		len -= n;
	}
	return 0;
}

int disk_zero(struct disk *d, uint64_t off, uint64_t len, int no_hole)
{
	if (d->is_blockdev) {
		uint64_t r[2] = { off, len };
		if (ioctl(d->fd, BLKZEROOUT, r) == 0)
			return 0;
		return zero_by_writing(d, off, len);
	}
	int mode = no_hole ? FALLOC_FL_ZERO_RANGE : (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
	if (fallocate(d->fd, mode, (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	return zero_by_writing(d, off, len);
}

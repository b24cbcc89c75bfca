/* disk — the local backing store: a regular file or a block device.
 *
 * Thin, allocation-free wrappers over pread/pwrite/fdatasync/fallocate (or the
 * block-device ioctls), returning 0 or -errno. Safe to call from many threads
 * at once (positional I/O only; no shared file offset).
 */
#ifndef DIPOLE_DISK_H
#define DIPOLE_DISK_H

#include <stdint.h>
#include <stddef.h>

struct disk {
	int fd;
	int is_blockdev;
	uint64_t size;    /* bytes, as reported by the kernel */
	char path[4096];
};

/* Open read-write (or read-only when `rdonly`). Errors: -ENOENT, -EACCES,
 * -EROFS, -EPERM, -EINVAL (not a file or block device), ... */
int disk_open(struct disk **out, const char *path, int rdonly);
void disk_close(struct disk *d);

int disk_pread(struct disk *d, void *buf, size_t len, uint64_t off);
int disk_pwrite(struct disk *d, const void *buf, size_t len, uint64_t off);
int disk_flush(struct disk *d);
/* Deallocate (may read back as zeroes afterwards, or not). */
int disk_trim(struct disk *d, uint64_t off, uint64_t len);
/* Make the range read back as zeroes; may deallocate unless `no_hole`. */
int disk_zero(struct disk *d, uint64_t off, uint64_t len, int no_hole);

#endif

/* disk — the local backing store: a regular file or a block device.
 *
 * Thin wrappers over pread/pwrite/fdatasync/fallocate (or the block-device
 * ioctls), returning 0 or -errno. Safe to call from many threads at once
 * (positional I/O only; no shared file offset).
 *
 * Like DRBD, dipole sits below the page cache: I/O whose offset and length
 * are multiples of DISK_ALIGN goes through an O_DIRECT descriptor (a buffer
 * that is not aligned is bounced through a per-thread aligned buffer, grown
 * once); anything else uses a buffered descriptor on the same file. The
 * kernel keeps the two coherent (direct I/O writes back and invalidates the
 * cached range). Where O_DIRECT is refused (tmpfs, memfd) both are buffered.
 *
 * Locking: none on the I/O path. The fault rules (armed by tests through a
 * rules file) have one mutex, a leaf, taken only when faults are armed.
 */
#ifndef DIPOLE_DISK_H
#define DIPOLE_DISK_H

#include <stdint.h>
#include <stddef.h>

#define DISK_ALIGN 4096u

struct disk {
	int fd;           /* O_DIRECT when possible */
	int bfd;          /* buffered: unaligned I/O, flushes */
	int is_blockdev;
	uint64_t size;    /* bytes, as reported by the kernel */
	char path[4096];
	struct disk_faults *faults; /* test fault injection (DIPOLE_FAULTS), else NULL */
};

/* Fault injection for tests: when the environment variable DIPOLE_FAULTS
 * names a file at disk_open, every I/O first consults it (re-read whenever
 * it changes). Lines:
 *   eio read|write|flush|any OFFSET LEN   I/O touching [OFFSET, OFFSET+LEN) fails with EIO
 *   eio async-read OFFSET LEN             only asynchronous reads (disk_read_fd) there
 *                                         fail with EIO (disk_read_result says so)
 *   eio-after N                           every I/O after the next N fails
 *   short read OFFSET LEN                 asynchronous reads (disk_read_fd) touching
 *                                         the range come back with half their bytes,
 *                                         as a short read would (disk_read_fd gives no
 *                                         descriptor while a rule stands but these
 *                                         two and "stall write")
 *   volatile                              a write cache in this process's memory:
 *                                         writes reach the file only at a flush, a
 *                                         FUA write or past 64 MiB, so SIGKILL acts
 *                                         as a power cut (stays on once set)
 * An empty or missing file injects nothing. */

/* Open read-write (or read-only when `rdonly`). Errors: -ENOENT, -EACCES,
 * -EROFS, -EPERM, -EINVAL (not a file or block device), ... */
int disk_open(struct disk **out, const char *path, int rdonly);
void disk_close(struct disk *d);

int disk_pread(struct disk *d, void *buf, size_t len, uint64_t off);
/* For a caller that reads asynchronously (io_uring): the O_DIRECT
 * descriptor from which [off, off+len) may be read straight into buf, or
 * -1 when that read must go through disk_pread (unaligned offset, length
 * or buffer; no O_DIRECT here; fault rules other than "short read" armed).
 * Lock-free unless faults are armed. */
int disk_read_fd(struct disk *d, const void *buf, size_t len, uint64_t off);
/* What such a read into buf returned (bytes, or -errno), as fault
 * injection lets it through: a "short read" rule over the range halves a
 * byte count and overwrites the bytes past it, "eio async-read" makes it
 * -EIO. */
long disk_read_result(struct disk *d, void *buf, uint64_t off, size_t len, long res);
int disk_pwrite(struct disk *d, const void *buf, size_t len, uint64_t off);
/* Write and make that write durable (FUA): one RWF_DSYNC write where the
 * kernel supports it, which devices with FUA do without a full cache flush. */
int disk_pwrite_fua(struct disk *d, const void *buf, size_t len, uint64_t off);
int disk_flush(struct disk *d);
/* Deallocate (may read back as zeroes afterwards, or not). */
int disk_trim(struct disk *d, uint64_t off, uint64_t len);
/* Make the range read back as zeroes; may deallocate unless `no_hole`. */
int disk_zero(struct disk *d, uint64_t off, uint64_t len, int no_hole);
/* Ask the kernel for the size again (after lvextend or truncate); updates
 * d->size. Not thread-safe against a concurrent reader of d->size that
 * cares: only resize calls it. 0 or -errno. */
int disk_refresh_size(struct disk *d, uint64_t *bytes);

#endif

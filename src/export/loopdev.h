/* loopdev — attach a file to a kernel loop device and find stale ones.
 * Uses /dev/loop-control and LOOP_CONFIGURE directly (no losetup).
 */
#ifndef DIPOLE_LOOPDEV_H
#define DIPOLE_LOOPDEV_H

#include <stddef.h>

/* Attach `file` to a free loop device with 4 KiB logical blocks and
 * autoclear. On success *fd holds an open fd of the device (keep it: closing
 * the last fd of an unused autoclear device detaches it) and dev its path. */
int loopdev_attach(const char *file, int rdonly, char *dev, size_t devlen, int *fd, char *err);
/* Detach (LOOP_CLR_FD) and close. */
int loopdev_detach(int fd);
/* Is the device opened by someone else (mounted, or held exclusively)? */
int loopdev_busy(const char *dev);
/* Make the block device read-only or read-write (BLKROSET). */
int loopdev_set_ro(int fd, int ro);
/* Detach every loop device whose backing file is `file`. Returns the number
 * cleaned; busy ones are reported in msg (size msglen) and left alone. */
int loopdev_clean_stale(const char *file, char *msg, size_t msglen);

#endif

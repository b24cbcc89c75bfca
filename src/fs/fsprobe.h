/* fsprobe — what a block device holds and whether a directory is a mount
 * point: the checks `dipole mkfs` and `dipole mount` make before they touch
 * anything (docs/dipolefs.md "Using it").
 *
 * The device is probed by util-linux's `blkid -p` (low-level probing, no
 * cache: what is on the device now, not what the blkid cache remembers).
 * No state; safe from any thread (the probe runs in a child process).
 */
#ifndef DIPOLE_FSPROBE_H
#define DIPOLE_FSPROBE_H

#include <stddef.h>

/* What `dev` holds into type[len]: a filesystem type as blkid names it
 * ("ext4", "xfs", "swap", ...), "partition table (dos)" for a partition
 * table, or "" for nothing blkid recognizes. 0, or -errno with err[256]
 * saying why the probe failed (blkid missing, device unreadable). */
int fsprobe_type(const char *dev, char *type, size_t len, char *err);

/* Whether a type from fsprobe_type is one dipolefs serves (ext4, xfs). */
int fsprobe_supported(const char *type);

/* 1 if `path` (absolute, canonical) is the mount point of a mount in this
 * process's mount namespace, 0 if not, -errno if the mount table cannot be
 * read. Reads /proc/self/mountinfo: never touches the filesystem itself, so
 * a hung FUSE mount cannot block the caller. */
int fsprobe_is_mountpoint(const char *path);

#endif

/* fusemount — one FUSE session mounted at a directory and served by
 * threads of its own (libfuse's multi-threaded loop). The block device's
 * file (fusedev.c, libfuse's high-level API) and dipolefs's mounts
 * (fs/fusefs.c, the low-level API) both make a session their way and
 * hand it here to be mounted, served and stopped.
 *
 * Stopping never mounts anything (no fusectl): a connection is ended with
 * umount2(MNT_FORCE), which makes the kernel abort it (FUSE's
 * umount_begin), so the serving threads return even while processes keep
 * files open (they get ENOTCONN).
 *
 * Threads: start and stop from one thread; the struct is immutable in
 * between.
 */
#ifndef DIPOLE_FUSEMOUNT_H
#define DIPOLE_FUSEMOUNT_H

struct fuse_session;
struct fusemount;

/* Mount se (from fuse_session_new, or fuse_get_session of fuse_new's) at
 * mountpoint, an existing directory, and serve it on a new thread. 0, or
 * -errno with err[256] saying why; on failure se is not mounted and stays
 * the caller's to destroy.
 *
 * fuse_fd > 0: the mount is made already, by someone else (mount.dipole
 * under systemd's automount, docs/dipolefs.md "At boot"): serve that open
 * /dev/fuse descriptor (a copy of it: fuse_fd stays the caller's), which
 * libfuse adopts as mountpoint "/dev/fd/N". The mount point's path is then
 * never looked up before the threads serve (an automount point would make
 * the lookup wait for the very mount): the mount is found in mountinfo. */
int fusemount_start(struct fusemount **out, struct fuse_session *se, const char *mountpoint, int fuse_fd,
		    char *err);
/* The kernel's readahead for the mount, KiB (sysfs read_ahead_kb of its
 * backing device info; FUSE starts it at 128 KiB, so a sequential read
 * is a request per 128 KiB whatever max_pages allows). 0 or -errno (no
 * sysfs, not root, device unknown). */
int fusemount_set_readahead(const struct fusemount *m, unsigned kib);
/* The mount is known to be gone from its mount point (mount.dipole saw
 * what is there now): stopping then never looks there, not even in
 * mountinfo, where a new mount may have taken its device number. */
void fusemount_gone(struct fusemount *m);
/* Stop serving and unmount. abort 0: a plain unmount (the kernel ends the
 * session once nothing uses the mount). abort 1: end the connection now
 * and detach the mount lazily. Returns once the threads are joined; the
 * session is then the caller's to destroy. NULL: nothing. */
void fusemount_stop(struct fusemount *m, int abort);

#endif

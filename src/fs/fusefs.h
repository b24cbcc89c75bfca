/* fusefs — the FUSE frontend of dipolefs: a low-level FUSE session at the
 * user's mount point whose requests become calls on one fs_ops backend
 * (local.c on the owner, remote.c on a client).
 *
 * The mount uses default_permissions (the kernel checks mode bits against
 * the caller) and allow_other; no attribute, entry or data cache outlives a
 * request (timeouts 0, no keep_cache) until cache revocation covers them,
 * but page-cache I/O stays on (no direct_io) so shared mmap works (SQLite).
 * fcntl and flock locks go to the backend (FUSE_CAP_POSIX_LOCKS,
 * FUSE_CAP_FLOCK_LOCKS); a blocked F_SETLKW/flock is interrupted through
 * ops->interrupt with the request's token.
 *
 * Threads: the session runs its own worker threads (fuse_session_loop_mt),
 * never the engine's. The struct is immutable between start and stop.
 */
#ifndef DIPOLE_FUSEFS_H
#define DIPOLE_FUSEFS_H

#include "fsops.h"

struct fusefs;

/* Mount at mountpoint (an existing directory) with fsname (e.g.
 * "dipole:r0", no commas) and serve it from ops/ctx; callers are tagged
 * node_id. 0, or -errno with err[256] saying why. */
int fusefs_start(struct fusefs **out, const char *mountpoint, const char *fsname, const struct fs_ops *ops,
		 void *ctx, uint32_t node_id, char *err);
/* Unmount (lazily: processes with files open get ENOTCONN), stop the
 * threads, free. Returns once no request is being served. */
void fusefs_stop(struct fusefs *f);
/* The cache revocation hooks of this mount (valid until fusefs_stop). */
const struct fs_notify *fusefs_notify(struct fusefs *f);

#endif

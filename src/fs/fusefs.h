/* fusefs — the FUSE frontend of dipolefs: a low-level FUSE session at the
 * user's mount point whose requests become calls on one fs_ops backend
 * (local.c on the owner, remote.c on a client).
 *
 * The mount uses default_permissions (the kernel checks mode bits against
 * the caller) and allow_other. The kernel caches names (positive and
 * negative entries), attributes and file pages across opens (keep_cache)
 * for as long as struct fusefs_cache allows — long by default, because
 * coherence comes from revocation (fusefs_notify: whoever serves changes
 * calls it before a change returns), not from expiry. Attributes that
 * come with an entry (lookup, create...) and setattr's are not cached:
 * the kernel cannot tell that a revocation overtook them (fusefs.c says
 * why); getattr's are. No direct_io, so shared mmap works (SQLite).
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
struct dirsplit;

/* What the kernel may cache. Timeouts in seconds; 0: not at all. */
struct fusefs_cache {
	double entry_timeout; /* names, and names found absent (negative entries) */
	double attr_timeout;  /* attributes from getattr */
	int keep_cache;       /* 1: a file's pages survive its open (else dropped at each open) */
	int track;            /* 1: remember each node and name handed to the kernel, so that
			       * notify->inval_all can drop them (a client: a reconnect loses
			       * revocations); names beyond FUSEFS_TRACK_NAMES are not cached */
	struct dirsplit *split; /* the owner's mount: a name is cached only where this says
				 * the clients cache none of its directory (dirsplit.h);
				 * NULL: wherever entry_timeout allows */
};
#define FUSEFS_TRACK_NAMES 262144u
#define FUSEFS_CACHE_TIMEOUT 3600.0 /* the default timeouts, s (mount option cache=S) */
extern const struct fusefs_cache fusefs_cache_default; /* both timeouts 3600 s, keep_cache */

/* Mount at mountpoint (an existing directory) with fsname (e.g.
 * "dipole:r0", no commas) and serve it from ops/ctx; callers are tagged
 * node_id; cache NULL: fusefs_cache_default. fuse_fd > 0: the FUSE mount
 * is made there already, on that /dev/fuse descriptor (mount.dipole's;
 * fusemount_start): serve it, without looking the mount point up. 0, or
 * -errno with err[256] saying why. */
int fusefs_start(struct fusefs **out, const char *mountpoint, const char *fsname, const struct fs_ops *ops,
		 void *ctx, uint32_t node_id, const struct fusefs_cache *cache, int fuse_fd, char *err);
/* Fail the mount (a cut-off owner, docs/dipolefs.md "A cut-off owner"):
 * from now on every request is answered err (EIO if err <= 0) without
 * reaching the backend; forgets are dropped. The mount stays until
 * fusefs_stop. Any thread. */
void fusefs_fail(struct fusefs *f, int err);
/* 1 once no request is inside the backend (after fusefs_fail: the
 * backend may be closed while the mount stays). NULL: 1. */
int fusefs_drained(struct fusefs *f);
/* The mount is known to be gone (fusemount_gone). */
void fusefs_gone(struct fusefs *f);
/* Unmount (lazily and aborted: processes with files open get ENOTCONN;
 * never mounts fusectl), stop the threads, free. Returns once no request
 * is being served. */
void fusefs_stop(struct fusefs *f);
/* Requests the kernel sent this mount so far (status; NULL: 0). Any thread. */
uint64_t fusefs_requests(struct fusefs *f);
/* The cache revocation hooks of this mount (valid until fusefs_stop). */
const struct fs_notify *fusefs_notify(struct fusefs *f);

#endif

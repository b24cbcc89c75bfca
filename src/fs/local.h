/* local — the owner's backend: struct fs_ops over a directory fd (the root
 * of the detached kernel mount in production, any directory in tests).
 *
 * Node ids: an inode table maps each object the kernel filesystem knows
 * (keyed by its file handle, name_to_handle_at; by (st_dev, st_ino) on a
 * filesystem without handles) to a node id, FS_ROOT_INO for the root.
 * Where handles are an inode number and a generation of 32 bits each
 * (ext4, XFS) the id is derived from them, so every struct local over the
 * same filesystem (a new owner after a failover) gives an object the same
 * id, and an id it has not met is reopened by handle (open_by_handle_at)
 * at its first use: -ESTALE if the object is gone. Other objects get the
 * next unused number (above bit 32 where ids are derived). An entry holds
 * an O_PATH fd and the handle. It lives from the first lookup until forget
 * drops its lookup count to 0 and no call is using it; an id never names
 * two objects (generation is 0).
 * File handles: open/create/opendir return an id into a table of open fds;
 * an unlinked file stays readable through them until release.
 *
 * Every operation is an *at() call relative to those fds (or a reopen of
 * /proc/self/fd/N), never a path from the root, so a rename elsewhere
 * cannot redirect it. Creating calls (mknod, mkdir, symlink, create) run
 * with the caller's fsuid/fsgid and supplementary groups, set on the
 * calling thread only; the first such call on a thread gives the thread
 * its own umask of 0 (unshare(CLONE_FS)), because the mode a FUSE request
 * carries is already masked by the caller's umask.
 *
 * Locking: `nodes_mu` guards the inode table (both hash chains, lookup
 * counts, in-flight references); `files_mu` guards the handle table;
 * neither is held across a system call on the filesystem, and they are
 * never held together. Each directory handle has its own mutex for its
 * seek offset. The lock table (locks.h) has its own. Notify targets are
 * set before serving (not guarded).
 */
#ifndef DIPOLE_LOCAL_H
#define DIPOLE_LOCAL_H

#include "fsops.h"

struct local;

extern const struct fs_ops local_ops; /* ctx: a struct local */

/* Serve the tree under root_fd (dup'ed; the caller keeps its own). 0 or
 * -errno (root_fd not a directory, out of memory). */
int local_open(struct local **out, int root_fd);
/* Closes every fd; no call may be in flight. */
void local_close(struct local *l);

/* Register a mount to revoke caches on (at most 8): after each change
 * made by a caller of another node than node_id, the matching inval_* is
 * called before the change's call returns (a NULL hook: that kind is not
 * revoked there). What each change
 * revokes: docs/dipolefs.md, "What a node caches". 0 or -ENOSPC. */
int local_add_notify(struct local *l, uint32_t node_id, const struct fs_notify *n);

/* The revocation of other nodes' caches (the owner's server): called after
 * every change, before its call returns, with the caller's node id, which
 * the target skips (its kernel may hold the pages the change is about: a
 * revocation it had to ack would wait for the change itself). */
struct local_fanout {
	void (*inval_inode)(void *arg, uint32_t origin, uint64_t ino, int64_t off, int64_t len);
	void (*inval_entry)(void *arg, uint32_t origin, uint64_t parent, const char *name);
	void *arg;
};
/* Set (or, zeroed, clear) the fan-out; before serving, like the notify
 * targets. */
void local_set_fanout(struct local *l, const struct local_fanout *f);

struct locks;
/* The lock table behind getlk/setlk (the server drops a gone node's). */
struct locks *local_locks(struct local *l);
/* Locks held in the lock table (status). */
unsigned local_lock_count(struct local *l);

#endif

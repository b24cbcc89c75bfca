/* fsops — the one interface every part of dipolefs speaks: the FUSE
 * frontend (fusefs.c) calls it, the owner's backend over the kernel
 * filesystem (local.c) and a client's backend that forwards to the owner
 * (remote.c) implement it, and the owner's server (server.c) turns a
 * client's requests back into calls on the local backend. docs/dipolefs.md.
 *
 * Semantics follow the FUSE low-level API (libfuse's fuse_lowlevel.h, which
 * follows POSIX): objects are named by a node id (`ino`, FS_ROOT_INO is the
 * root), valid from the lookup that returned it until the matching forget;
 * open files and directories by a file handle `fh` from open/opendir/create
 * until release. Node ids and handles are the owner's: the same numbers on
 * every node, so a client can hand them to the owner as they are.
 *
 * Every call carries the caller (struct fs_caller): permission checks are
 * the kernel's (default_permissions on every mount), but what a call
 * creates belongs to the caller's uid/gid, and locks belong to
 * (node, lock owner).
 *
 * Errors: 0 or a negative errno, as the kernel filesystem returned it (a
 * client gets exactly the owner's errno). -ENOTCONN: no owner reachable
 * (the request may be retried); -ESTALE: the node id or handle is unknown
 * to the owner.
 *
 * Threads: every function may be called from many threads at once; an
 * implementation documents its own locks.
 */
#ifndef DIPOLE_FSOPS_H
#define DIPOLE_FSOPS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#define FS_ROOT_INO 1u
#define FS_NAME_MAX 255u     /* bytes of one name (NAME_MAX) */
#define FS_PATH_MAX 4096u    /* bytes of a symlink target (PATH_MAX) */
#define FS_IO_MAX   (1u << 20) /* largest read or write in one call, bytes */
#define FS_XATTR_MAX 65536u  /* largest xattr value or list, bytes */
#define FS_GROUPS_MAX 32

/* Who asks: the process on some node. */
struct fs_caller {
	uint32_t uid, gid;
	uint32_t pid;          /* on its own node */
	uint32_t node_id;      /* the node the process runs on */
	uint32_t ngroups;
	uint32_t groups[FS_GROUPS_MAX];
	/* mknod, mkdir, create: the caller's umask, applied by the backend's
	 * kernel filesystem where the parent has no default ACL (acl(5)); the
	 * caller's kernel leaves the mode unmasked (FUSE_CAP_DONT_MASK). 0:
	 * the mode came masked already. */
	uint32_t umask;
};

/* Set in the fh that open/create return for an open for writing while
 * another node has the file open: that opener must not keep the file's
 * pages (FUSE direct_io). Two nodes writing one page through their page
 * caches would each wait, in the revocation of the other's write, on the
 * page their own write keeps locked until the owner answers; this way at
 * most one node writes a file through its page cache while others have it
 * open, and no such cycle can form (readers lock pages only for a read,
 * which waits on nothing). The owner's backend (local.c) decides; the bit
 * is part of the handle, as is. */
#define FS_FH_UNCACHED (1ull << 63)

/* What lookup, mknod, mkdir, symlink, link and create return. */
struct fs_entry {
	uint64_t ino;
	uint64_t generation;   /* with ino: unique for the filesystem's lifetime */
	struct stat attr;
	/* attr_timeout > 0 (FS_ATTR_REVOCABLE): `attr` was read when every
	 * later change of the node revokes it where the reply goes, so it may
	 * be cached until revoked (fusefs.c, the attribute cache); 0: it may
	 * be older than a change that returned. The FUSE mount applies its
	 * own timeouts (fusefs.h); entry_timeout is advisory. */
	double attr_timeout, entry_timeout;
	/* the parent's attributes once the name was made (link: the new
	 * parent's), st_ino 0 if not known; as revocable as `attr` when
	 * attr_timeout > 0. A backend may leave them unknown. */
	struct stat parent_attr;
	/* readdirplus: bit i set if the node had no fs_xattr_common[i] when
	 * its attributes were read (as revocable as `attr`); 0: not known */
	unsigned xattr_absent;
	/* mkdir: 1 if the new directory held no name once every later change
	 * of it revokes it where the reply goes (as attr_timeout > 0 says of
	 * `attr`), so the caller knows every name in it until then; 0: not
	 * known. A backend may leave it 0. */
	int dir_empty;
};
#define FS_ATTR_REVOCABLE 1.0

/* The extended attributes the kernel asks of nearly every file and that
 * nearly every file lacks: security.capability before each write (to drop
 * it), the SELinux label and the ACLs for each entry `ls -l` shows */
static const char *const fs_xattr_common[] = { "security.capability", "security.selinux",
					       "system.posix_acl_access", "system.posix_acl_default" };
#define FS_XATTR_COMMON 4u

/* The bits of fs_xattr_common missing from a listxattr answer of len
 * bytes (NUL-separated names); len < 0 (an error): 0, nothing known */
static inline unsigned fs_xattr_absent(const char *list, long len)
{
	unsigned absent = len < 0 ? 0 : (1u << FS_XATTR_COMMON) - 1;
	for (long at = 0; at < len; at += (long)strnlen(list + at, (size_t)(len - at)) + 1)
		for (unsigned i = 0; i < FS_XATTR_COMMON; i++)
			if (!strncmp(list + at, fs_xattr_common[i], (size_t)(len - at)))
				absent &= ~(1u << i);
	return absent;
}

/* What unlink and rmdir may tell of their change, for the caller's caches */
struct fs_removed {
	/* the parent's attributes once the name was gone, st_ino 0 if not
	 * known; as revocable as fs_entry's parent_attr */
	struct stat dir_attr;
	/* the node the name named, if someone may cache it (it changed:
	 * nlink, ctime); 0 if not known, or if no node caches it */
	uint64_t ino;
};

/* setattr: which fields of `attr` to apply (FUSE_SET_ATTR_* meaning). */
enum fs_setattr_mask {
	FS_SET_MODE = 1 << 0, FS_SET_UID = 1 << 1, FS_SET_GID = 1 << 2, FS_SET_SIZE = 1 << 3,
	FS_SET_ATIME = 1 << 4, FS_SET_MTIME = 1 << 5, FS_SET_ATIME_NOW = 1 << 7, FS_SET_MTIME_NOW = 1 << 8,
	FS_SET_CTIME = 1 << 10,
};

#define FS_SETLK_WAIT    1 /* setlk: F_SETLKW, blocking flock */
#define FS_SETLK_RECLAIM 2 /* setlk: a reclaim (docs/dipolefs.md "Locks") */

/* A byte-range lock (fcntl F_GETLK/F_SETLK/F_SETLKW and OFD locks, as FUSE
 * passes them: the lock owner is the kernel's, an OFD lock's owner is its
 * open file) or a whole-file flock (FS_LOCK_FLOCK). */
struct fs_lock {
	uint64_t start, end;   /* bytes, end inclusive; end = UINT64_MAX: to EOF */
	int type;              /* F_RDLCK, F_WRLCK, F_UNLCK */
	uint64_t owner;        /* lock owner on its node */
	uint32_t node_id;      /* the node of the process */
	uint32_t pid;          /* reported by getlk */
	int flock;             /* 1: flock(2) semantics (whole file, per open file) */
};

/* readdir: one entry per call of the filler; it returns 1 when the buffer
 * is full (stop; the entry was not taken), else 0. `next` is the offset of
 * the entry after this one. */
typedef int (*fs_dirfill)(void *arg, const char *name, uint64_t ino, mode_t type, uint64_t next);

/* readdirplus: one entry with its lookup done, as lookup returns it
 * (FUSE's READDIRPLUS). An entry with e->ino != 0 counts as one lookup of
 * that node once the filler took it (returned 0); the callee forgets one
 * the filler refused (1: full). "." and "..", and a name whose lookup
 * failed other than with ENOENT, come with e->ino 0 and only e->attr's
 * st_ino and st_mode's type set: no lookup. */
typedef int (*fs_dirfill_plus)(void *arg, const char *name, const struct fs_entry *e, uint64_t next);
/* The room an entry of a name of len bytes takes in a FUSE READDIRPLUS
 * reply (fuse_kernel.h: struct fuse_direntplus and the name, 8-aligned) */
#define FS_DIRENTPLUS_ROOM(len) ((152u + (len) + 7u) & ~7u)

struct fs_ops {
	int (*lookup)(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, struct fs_entry *out);
	void (*forget)(void *ctx, uint64_t ino, uint64_t nlookup);
	int (*getattr)(void *ctx, const struct fs_caller *c, uint64_t ino, struct stat *out);
	int (*setattr)(void *ctx, const struct fs_caller *c, uint64_t ino, const struct stat *attr, int mask,
		       uint64_t fh /* 0: none */, struct stat *out);
	/* readlink: 0 and a NUL-terminated target in buf[len], -ENAMETOOLONG
	 * when it does not fit (len FS_PATH_MAX + 1 always does) */
	int (*readlink)(void *ctx, const struct fs_caller *c, uint64_t ino, char *buf, size_t len);
	int (*mknod)(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
		     struct fs_entry *out);
	int (*mkdir)(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode,
		     struct fs_entry *out);
	/* unlink/rmdir: `gone` (NULL: not wanted), zeroed by the caller, may
	 * be filled (struct fs_removed) */
	int (*unlink)(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, struct fs_removed *gone);
	int (*rmdir)(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, struct fs_removed *gone);
	int (*symlink)(void *ctx, const struct fs_caller *c, const char *target, uint64_t parent, const char *name,
		       struct fs_entry *out);
	int (*rename)(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, uint64_t newparent,
		      const char *newname, unsigned flags /* RENAME_NOREPLACE, RENAME_EXCHANGE */);
	int (*link)(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t newparent, const char *newname,
		    struct fs_entry *out);
	/* open/create: flags as open(2); *fh out */
	int (*open)(void *ctx, const struct fs_caller *c, uint64_t ino, int flags, uint64_t *fh);
	int (*create)(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode, int flags,
		      struct fs_entry *out, uint64_t *fh);
	/* read: bytes read (0 at EOF) or -errno; write: bytes written or -errno */
	ssize_t (*read)(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, void *buf, size_t len,
			uint64_t off);
	/* write: reads none of the file's attributes after it (nobody asked:
	 * on Linux >= 6.13 a read ctime makes ext4's and XFS's next write
	 * take a fine-grained time, so every fsync commits the journal) */
	ssize_t (*write)(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, const void *buf,
			 size_t len, uint64_t off);
	/* flush: at each close(2) of a descriptor (drops the owner's POSIX locks) */
	int (*flush)(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, uint64_t lock_owner);
	int (*release)(void *ctx, uint64_t ino, uint64_t fh);
	/* fsync: returns once data (and, unless datasync, metadata) is on every
	 * UpToDate replica's disk */
	int (*fsync)(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int datasync);
	int (*opendir)(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t *fh);
	/* readdir from offset `off` (0: start; else a `next` given before) */
	int (*readdir)(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, uint64_t off, fs_dirfill fill,
		       void *arg);
	/* readdirplus: as readdir, each name with its lookup (fs_dirfill_plus);
	 * a name gone before its lookup is left out. `room`: the bytes the
	 * filler takes, as FUSE counts these entries (FS_DIRENTPLUS_ROOM), so
	 * a backend that looks up remotely looks up no more. NULL, or -ENOSYS
	 * (an owner that does not offer it): the caller lists names with readdir */
	int (*readdirplus)(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, uint64_t off,
			   size_t room, fs_dirfill_plus fill, void *arg);
	int (*releasedir)(void *ctx, uint64_t ino, uint64_t fh);
	int (*fsyncdir)(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int datasync);
	int (*statfs)(void *ctx, const struct fs_caller *c, uint64_t ino, struct statvfs *out);
	int (*setxattr)(void *ctx, const struct fs_caller *c, uint64_t ino, const char *name, const void *value,
			size_t len, int flags);
	/* getxattr/listxattr: size (len 0: the size needed) or -errno */
	ssize_t (*getxattr)(void *ctx, const struct fs_caller *c, uint64_t ino, const char *name, void *buf,
			    size_t len);
	ssize_t (*listxattr)(void *ctx, const struct fs_caller *c, uint64_t ino, char *buf, size_t len);
	int (*removexattr)(void *ctx, const struct fs_caller *c, uint64_t ino, const char *name);
	int (*fallocate)(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int mode, uint64_t off,
			 uint64_t len);
	/* locks: getlk fills *lk with a conflicting lock (type F_UNLCK: none);
	 * setlk's `wait` is 0 or one FS_SETLK_* flag: with FS_SETLK_WAIT it
	 * blocks until granted or until interrupt(token) (-EINTR); token is
	 * unique among the caller's requests in flight. FS_SETLK_RECLAIM
	 * re-takes a lock held before a reconnect or an owner change (locks.h
	 * says when it is granted; else -ENOLCK) */
	int (*getlk)(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, struct fs_lock *lk);
	int (*setlk)(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, const struct fs_lock *lk,
		     int wait, uint64_t token);
	/* interrupt: the caller's node_id and token name the blocked setlk */
	void (*interrupt)(void *ctx, const struct fs_caller *c, uint64_t token);
	/* lseek SEEK_DATA/SEEK_HOLE: the offset, or -errno */
	int64_t (*lseek)(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int64_t off, int whence);
};

/* Cache revocation: whoever serves changes (the owner) calls these on every
 * mount that may cache what a change affects, other than the one that made
 * it, and completes the change only after they returned (coherence, docs/
 * dipolefs.md). A FUSE mount implements them with fuse_lowlevel_notify_*;
 * a client's connection forwards them. */
struct fs_notify {
	void (*inval_inode)(void *arg, uint64_t ino, int64_t off, int64_t len); /* len 0: attributes only */
	void (*inval_entry)(void *arg, uint64_t parent, const char *name);
	void *arg;
	/* Everything the kernel may cache: every node's attributes and pages,
	 * every name (a client reconnecting: revocations were lost), and what
	 * the mount answers from its own tables; a mount that does not track
	 * what it handed out (fusefs.h cache.track) drops only its tables and
	 * the root's attributes. Takes directory locks: never from a thread a
	 * request waits on. */
	void (*inval_all)(void *arg);
};

#endif

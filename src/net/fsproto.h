/* fsproto — the dipolefs protocol between a client node and the owner
 * (docs/dipolefs.md): one request per fs_ops call (src/fs/fsops.h), one
 * reply per request, and the owner's cache revocations (INVAL_*), on a
 * connection that began with the replication handshake on channel CH_FS
 * (wire.h, hs.c). The net layer cannot see fs headers, so the limits and
 * structs below mirror fsops.h; src/fs converts (and checks they agree).
 *
 * Every frame starts with a 24-byte header, all fields big-endian:
 *
 *   0 magic u32 "DPFS"  4 version u8  5 flags u8 (FSPF_*)  6 op u16
 *   8 length u32 (payload bytes)  12 epoch u32 (0 before version 4)
 *   16 id u64
 *
 * A request carries an id of its sender's choosing; the reply echoes the
 * op and id with FSPF_REPLY set. Client -> owner: every FSP_* op but the
 * INVAL ones; FORGET and INTERRUPT get no reply. Owner -> client:
 * INVAL_INODE and INVAL_ENTRY, which the client acknowledges (an empty
 * reply, result 0) once its kernel dropped what it cached.
 *
 * Payloads are a sequence of fields, the same order for every op of a
 * kind (table in fsproto.c): u32/u64 numbers, names (u16 length, then the
 * bytes, no NUL), struct stat (FSP_ATTR_BYTES), entries, locks, statvfs,
 * and at most one byte string (u32 length, then the bytes) which is always
 * last, so a write's or a read's data is sent and received without a copy
 * of the frame. A reply starts with result i64: < 0 a negative errno
 * (-1..-4095) and nothing else follows; >= 0 success (bytes for read,
 * write, readlink, getxattr, listxattr; the offset for lseek; else 0) and
 * the op's reply fields follow.
 *
 * The decoders accept a frame only if its payload is exactly its fields,
 * and every name, length and enum is within the limits below: what they
 * accept can be handed to the local backend as it is. A refusal returns
 * -EPROTO with a reason naming the op and the field; the receiver drops
 * the connection with it. Decoded names and data point into the caller's
 * receive buffer (names are not NUL-terminated: name_len). No state, no
 * locking, no output.
 *
 * Version history (a node sends each frame with the lowest version that
 * has what the frame uses, and accepts FSP_VERSION_MIN..FSP_VERSION: a
 * node speaks to an older one until it needs something new, which the
 * older one then refuses as an unknown version):
 *   1 (2026-11): first version.
 *   2 (2026-11): lock reclaim (docs/dipolefs.md "Locks"): SETLK flag
 *     FSP_SETLK_RECLAIM, op RECLAIM_DONE. A version 1 frame with either is
 *     refused.
 *   3 (2026-11): op MOUNTED (docs/dipolefs.md "Locks", grace period): the
 *     client asks which nodes have the filesystem mounted, the owner
 *     answers once the set differs from the one the client knows. A
 *     client sends it only to an owner whose CH_FS HELLO carried
 *     HF_FS_MOUNTED (wire.h), so a version 2 owner never sees it.
 *   4 (2026-11): the owner epoch (docs/dipolefs.md "Owner epochs") in
 *     the header's former reserved field: an owner stamps its replies
 *     with the epoch it serves under (chosen when it began serving), a
 *     client stamps its requests with the epoch it learned from the
 *     replies on its connection (0 until the first one), and the owner
 *     refuses a request stamped with any other epoch with ESTALE before
 *     running it. A frame with a nonzero epoch is version 4; each side
 *     sends one only to a peer whose CH_FS HELLO carried HF_FS_EPOCH.
 *   5 (2026-12): a successful WRITE reply carries the file's attributes
 *     after the write (`attr`, has_attr), read once the node was marked
 *     as cached by the client, so the client may keep them until revoked
 *     (docs/dipolefs.md, "dipolefs's own attribute cache"); a version 5
 *     WRITE reply always has them. The owner sends one only to a client
 *     whose CH_FS HELLO carried HF_FS_WRITE_ATTR (wire.h). Since
 *     2026-12-03 clients do not ask and owners do not send them: reading
 *     a file's ctime after each write made its next write take a
 *     fine-grained time (Linux >= 6.13), so every fsync committed the
 *     journal. The codec still reads and writes them.
 *   6 (2026-12): a successful MKNOD, MKDIR, SYMLINK, LINK, CREATE, UNLINK
 *     or RMDIR reply carries the parent directory's attributes after the
 *     change (`pattr`, has_pattr; LINK: the new parent's), read after the
 *     change with the parent marked as cached by the client, so the
 *     client may keep them until revoked instead of asking getattr for
 *     the next path walk's permission check; a version 6 reply of these
 *     ops always has them. An UNLINK or RMDIR reply then also carries the
 *     node id the name named (`removed_ino`, 0: unknown), whose nlink and
 *     ctime changed. The owner sends one only to a client whose
 *     CH_FS HELLO carried HF_FS_PARENT_ATTR (wire.h).
 *   7 (2026-12): op READDIRPLUS: READDIR's request, whose reply's batch
 *     holds each name with its lookup done (an entry, as LOOKUP's reply;
 *     node id 0: none, for "." and ".." and a name that could not be
 *     looked up), and which of four extended attributes the kernel
 *     asks of every file the node lacks (xattr_absent). The owner marks
 *     every name as cached by the client
 *     before looking it up, and counts each entry as a lookup the client
 *     forgets (FUSE's READDIRPLUS). The request's length is the room in
 *     the client's buffer as FUSE counts these entries
 *     (FSP_DIRENTPLUS_ROOM); the batch is never longer. A client sends
 *     one only to an owner whose CH_FS HELLO carried HF_FS_READDIRPLUS.
 *   8 (2026-12): a successful MKDIR reply carries, after the parent's
 *     attributes, u32 `new_empty`: 1 if the new directory held no name
 *     once it was marked as cached by the client, so every name made in
 *     it later by another node revokes it there (INVAL_INODE of the new
 *     directory) and the client may answer a lookup of a name it did not
 *     make there itself as absent until then (docs/dipolefs.md, "What a
 *     node caches"); 0: not known. A version 8 MKDIR reply always has
 *     it (and the parent's attributes). The owner sends one only to a
 *     client whose CH_FS HELLO carried HF_FS_DIR_EMPTY (wire.h).
 *   9 (2026-12): a MKNOD, MKDIR or CREATE request may carry the caller's
 *     umask in its mode field: FSP_MODE_UMASK set, the umask in bits
 *     16..24, the file mode in bits 0..15 (no other bit). The owner
 *     applies it as the caller's own kernel would have: not where the
 *     parent directory has a default ACL (acl(5)); the client's kernel
 *     leaves the mode unmasked (FUSE_CAP_DONT_MASK). A client sends one
 *     only to an owner whose CH_FS HELLO carried HF_FS_UMASK, and masks
 *     the mode itself for an older one.
 */
#ifndef DIPOLE_FSPROTO_H
#define DIPOLE_FSPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define FSP_MAGIC       0x44504653u /* "DPFS" */
#define FSP_VERSION     9u
#define FSP_VERSION_MIN 1u
#define FSP_MODE_UMASK  (1u << 31) /* version 9: a umask in bits 16..24 of a MKNOD/MKDIR/CREATE mode */
#define FSP_HDR         24u

/* Limits, as in fsops.h (FS_*) */
#define FSP_NAME_MAX    255u       /* one name, bytes */
#define FSP_PATH_MAX    4096u      /* a symlink target, bytes (with its NUL in a buffer) */
#define FSP_IO_MAX      (1u << 20) /* read or write, bytes */
#define FSP_XATTR_MAX   65536u     /* xattr value or list, bytes */
#define FSP_GROUPS_MAX  32u
#define FSP_DIRBATCH_MAX 65536u    /* one readdir reply's entries, bytes */
#define FSP_ERRNO_MAX   4095
/* everything of a frame but its trailing byte string fits in this */
#define FSP_HEAD_MAX    8192u
#define FSP_PAYLOAD_MAX (FSP_HEAD_MAX + FSP_IO_MAX)

#define FSPF_REPLY      1u

/* setlk flags (struct fsp_req.flags); one at most */
#define FSP_SETLK_WAIT    1u /* F_SETLKW, blocking flock */
#define FSP_SETLK_RECLAIM 2u /* re-taking a lock held before a reconnect (version 2) */

enum fsp_op {
	FSP_LOOKUP = 1, FSP_FORGET, FSP_GETATTR, FSP_SETATTR, FSP_READLINK, FSP_MKNOD, FSP_MKDIR, FSP_UNLINK,
	FSP_RMDIR, FSP_SYMLINK, FSP_RENAME, FSP_LINK, FSP_OPEN, FSP_CREATE, FSP_READ, FSP_WRITE, FSP_FLUSH,
	FSP_RELEASE, FSP_FSYNC, FSP_OPENDIR, FSP_READDIR, FSP_RELEASEDIR, FSP_FSYNCDIR, FSP_STATFS, FSP_SETXATTR,
	FSP_GETXATTR, FSP_LISTXATTR, FSP_REMOVEXATTR, FSP_FALLOCATE, FSP_GETLK, FSP_SETLK, FSP_INTERRUPT,
	FSP_LSEEK,
	FSP_RECLAIM_DONE, /* the client re-sent every lock it holds (no fields but the caller) */
	FSP_MOUNTED,      /* u64: the node set the client knows (0: none); the reply's
			   * result: the set (bit n: node id n mounted, ids 0..62 so
			   * the result stays >= 0), once it differs */
	FSP_READDIRPLUS,  /* version 7 */
	/* owner -> client */
	FSP_INVAL_INODE = 64, FSP_INVAL_ENTRY = 65,
};
#define FSP_OP_LAST FSP_READDIRPLUS /* client ops are 1..FSP_OP_LAST */

/* Lock types on the wire (the host's F_RDLCK.. values are not portable) */
enum fsp_lock_type { FSP_RDLCK = 0, FSP_WRLCK = 1, FSP_UNLCK = 2 };
/* setattr mask bits (fsops.h FS_SET_*, FUSE_SET_ATTR_*) */
#define FSP_SETATTR_MASK 0x5bfu
/* rename flags: RENAME_NOREPLACE | RENAME_EXCHANGE */
#define FSP_RENAME_FLAGS 3u

#define FSP_CALLER_MIN  20u  /* uid, gid, pid, node_id, ngroups; then ngroups u32 */
#define FSP_ATTR_BYTES  92u  /* ino, mode, nlink, uid, gid, rdev, size, blksize, blocks, a/m/ctime */
#define FSP_ENTRY_BYTES (16u + FSP_ATTR_BYTES + 16u)
#define FSP_LOCK_BYTES  34u  /* start, end, type u8, flock u8, owner, node_id, pid */
#define FSP_STATVFS_BYTES 88u
#define FSP_DIRENT_MIN  22u  /* ino u64, next u64, type u32, name u16, then the name */
/* and after the name: the entry, and u32 xattr_absent */
#define FSP_DIRENTPLUS_MIN (FSP_DIRENT_MIN + FSP_ENTRY_BYTES + 4u)
#define FSP_XATTR_ABSENT_MASK 0xfu /* fsops.h fs_xattr_common: 4 names */
/* The room a READDIRPLUS entry of a name of len bytes takes in a FUSE
 * buffer (fuse_kernel.h: struct fuse_direntplus with the name, 8-byte
 * aligned): what READDIRPLUS's length counts. Always more than its bytes
 * in a batch. */
#define FSP_DIRENTPLUS_ROOM(len) ((152u + (len) + 7u) & ~7u)

struct fsp_hdr {
	uint8_t version, flags;
	uint16_t op;
	uint32_t len;   /* payload bytes */
	uint32_t epoch; /* owner epoch, 0: none (version 4) */
	uint64_t id;
};

struct fsp_caller {   /* struct fs_caller */
	uint32_t uid, gid, pid, node_id, ngroups;
	uint32_t groups[FSP_GROUPS_MAX];
};
struct fsp_entry {    /* struct fs_entry; timeouts in ns */
	uint64_t ino, generation;
	struct stat attr;
	uint64_t attr_timeout_ns, entry_timeout_ns;
	uint32_t xattr_absent; /* READDIRPLUS entries only: bit i, the node has no
				* security.capability, security.selinux,
				* system.posix_acl_access, system.posix_acl_default */
};
struct fsp_lock {     /* struct fs_lock */
	uint64_t start, end;  /* end inclusive; start <= end */
	uint8_t type;         /* enum fsp_lock_type */
	uint8_t flock;
	uint64_t owner;
	uint32_t node_id, pid;
};
struct fsp_dirent {
	uint64_t ino, next;
	uint32_t type;        /* S_IFMT bits */
	uint16_t name_len;
	const char *name;     /* into the batch, not terminated */
	struct fsp_entry entry; /* READDIRPLUS: the name's lookup (ino 0: none) */
};

/* A request: the fields its op uses (fsproto.c's table; the others are
 * ignored by the encoder and zero after decoding). */
struct fsp_req {
	uint16_t op;
	uint32_t epoch;       /* the owner epoch the client knows, 0: none (header) */
	struct fsp_caller caller;
	uint64_t ino;         /* the object, or the parent for name ops */
	uint64_t newparent;   /* rename, link */
	uint64_t fh;
	uint64_t off;         /* read, write, readdir, fallocate; lseek's offset (as int64) */
	uint64_t len;         /* read, fallocate, readdir batch bytes, readlink/xattr buffer,
			       * forget's nlookup */
	uint64_t u64;         /* mknod rdev, flush lock owner, setlk/interrupt token,
			       * mounted's known node set */
	uint32_t mode;        /* mknod, mkdir, create; fallocate's mode */
	int has_umask;        /* mknod, mkdir, create: umask follows (version 9) */
	uint32_t umask;       /* the caller's, 0..0777 */
	uint32_t flags;       /* open/create flags, rename, setxattr flags, fsync datasync,
			       * setlk FSP_SETLK_*, lseek whence, setattr mask */
	const char *name;     /* FSP_NAME_MAX, no '/' or NUL (an xattr name may hold '/') */
	uint16_t name_len;
	const char *name2;    /* rename's new name, link's new name */
	uint16_t name2_len;
	const uint8_t *data;  /* trailing bytes: write data, xattr value, symlink target */
	uint32_t dlen;
	struct stat attr;     /* setattr */
	struct fsp_lock lock; /* getlk, setlk */
	/* owner -> client */
	int64_t inval_off, inval_len;
};

/* A reply: result, then the fields of its op when result >= 0. */
struct fsp_reply {
	uint16_t op;
	uint32_t epoch;       /* the owner's epoch, 0: none (header) */
	int64_t result;       /* >= 0, or -errno (-1..-FSP_ERRNO_MAX) */
	struct fsp_entry entry; /* lookup, mknod, mkdir, symlink, link, create */
	struct stat attr;     /* getattr, setattr; write when has_attr */
	int has_attr;         /* write: the file's attributes after it follow (version 5) */
	struct stat pattr;    /* mknod, mkdir, symlink, link, create, unlink, rmdir when has_pattr */
	int has_pattr;        /* the parent's attributes after the change follow (version 6) */
	uint64_t removed_ino; /* unlink, rmdir when has_pattr: the node the name named, 0: unknown */
	int has_empty;        /* mkdir with has_pattr: new_empty follows (version 8) */
	uint32_t new_empty;   /* 1: the new directory was empty once revocable, 0: not known */
	uint64_t fh;          /* open, create, opendir */
	struct fsp_lock lock; /* getlk */
	struct statvfs st;    /* statfs */
	const uint8_t *data;  /* trailing bytes: read data, readlink target, xattr value or
			       * list, readdir entries (fsp_dirent_next) */
	uint32_t dlen;
	uint32_t ndirents;    /* readdir: entries in data */
};

/* The op's name for messages ("LOOKUP"); "?" for an unknown op. */
/* 1: op's successful reply may carry the parent's attributes (pattr,
 * version 6): MKNOD, MKDIR, SYMLINK, LINK, CREATE, UNLINK, RMDIR. */
int fsp_op_parent_attr(uint16_t op);
const char *fsp_op_name(uint16_t op);
/* 1: a client -> owner op without a reply (FORGET, INTERRUPT). */
int fsp_op_oneway(uint16_t op);

/* Header: encode into b[FSP_HDR]; decode checks magic, version, epoch
 * (0 below version 4), flags and length <= FSP_PAYLOAD_MAX (-EPROTO, why
 * set). */
void fsp_encode_hdr(uint8_t *b, const struct fsp_hdr *h);
int fsp_decode_hdr(const uint8_t *b, struct fsp_hdr *h, char *why, size_t whylen);

/* Encode a whole frame but the trailing bytes (q->data, q->dlen, sent
 * after it as they are) into b[cap]: the bytes written (header included),
 * or -EMSGSIZE (does not fit, or a name or length beyond the limits: the
 * encoder refuses what the decoder would), -EINVAL (unknown op). */
int fsp_encode_req(uint8_t *b, size_t cap, uint64_t id, const struct fsp_req *q);
int fsp_encode_reply(uint8_t *b, size_t cap, uint64_t id, const struct fsp_reply *r);

/* Decode a payload of h->len bytes whose header was decoded: 0, or -EPROTO
 * with why[whylen] naming the op and the field. Pointers in *out point
 * into payload. fsp_decode_req accepts requests (flags without
 * FSPF_REPLY), client ops and the INVAL ones; fsp_decode_reply replies. */
int fsp_decode_req(const struct fsp_hdr *h, const uint8_t *payload, struct fsp_req *out, char *why, size_t whylen);
int fsp_decode_reply(const struct fsp_hdr *h, const uint8_t *payload, struct fsp_reply *out, char *why,
		     size_t whylen);

/* readdir batches: append one entry to b[cap] at *used: 0, or 1 when it
 * does not fit (nothing written), -EINVAL for a bad name. */
int fsp_dirent_put(uint8_t *b, size_t cap, size_t *used, uint64_t ino, uint64_t next, uint32_t type,
		   const char *name, size_t name_len);
/* READDIRPLUS batches: the same, with the name's lookup e (e->ino 0: none;
 * the entry's ino is e->attr.st_ino) */
int fsp_direntplus_put(uint8_t *b, size_t cap, size_t *used, uint64_t next, uint32_t type, const char *name,
		       size_t name_len, const struct fsp_entry *e);
/* The next entry of a decoded batch at *pos (start 0): 1 and *out, or 0 at
 * the end (READDIRPLUS's: with out->entry). Only on batches
 * fsp_decode_reply accepted. */
int fsp_dirent_next(const struct fsp_reply *r, size_t *pos, struct fsp_dirent *out);

#endif

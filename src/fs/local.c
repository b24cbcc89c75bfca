/* local — see local.h. The shape of libfuse's passthrough_ll (O_PATH fds,
 * lookup counts, *at() calls), keyed by file handles like nfs-ganesha's
 * FSAL_VFS so a node id can outlive the fd that backs it. */
#include "local.h"
#include "locks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#define HANDLE_MAX 128 /* MAX_HANDLE_SZ */
#define NOTIFY_MAX 8

struct lnode {
	struct lnode *next_id, *next_key; /* hash chains, under nodes_mu */
	uint64_t id;
	uint64_t nlookup;   /* lookups not yet forgotten, under nodes_mu */
	unsigned ref;       /* calls using fd right now, under nodes_mu */
	int one_node;       /* seen named *-shm: a shared-memory index (locks.h), under nodes_mu */
	uint64_t shm_ino;   /* an SQLite database: its WAL index (DB-shm), or 0; under nodes_mu */
	int fd;             /* O_PATH, immutable while the node is known */
	int htype;          /* handle type; hlen 0: keyed by (dev, ino) */
	unsigned hlen;
	uint64_t dev, ino;
	unsigned char handle[HANDLE_MAX];
};

struct lfile {
	struct lfile *next; /* hash chain, under files_mu */
	uint64_t id, ino;
	uint32_t node_id;   /* of the opener: a flock's and OFD lock's owner is (node, fh) */
	unsigned ref;       /* calls using fd, under files_mu */
	int released;       /* release came: close at ref 0 */
	int fd;
	int is_dir;
	int append;         /* O_APPEND: a write lands at the end, wherever off says */
	pthread_mutex_t dir_mu; /* directory handles: lseek + getdents as one */
};

struct notify_target {
	uint32_t node_id;
	struct fs_notify n;
};

struct local {
	pthread_mutex_t nodes_mu;
	struct lnode **by_id, **by_key;
	size_t nbuckets, nnodes;
	uint64_t next_id;
	int id_format;      /* ID_* of the filesystem's handles (the root's): how ids are made */
	int mount_fd;       /* the root, opened for open_by_handle_at; -1: ids not adopted */

	pthread_mutex_t files_mu;
	struct lfile **files;
	size_t nfbuckets, nfiles;
	uint64_t next_fh;

	struct locks *locks;     /* the cluster lock table (own mutex) */
	struct notify_target notify[NOTIFY_MAX];
	unsigned nnotify;
	struct local_fanout fanout; /* other nodes' caches (the server) */

	/* the supplementary groups of the process, restored after a creating
	 * call ran with the caller's */
	gid_t groups[64];
	int ngroups;
};

/* ---- hashing ---------------------------------------------------------- */

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static uint64_t key_hash(const struct lnode *n)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)n->htype;
	if (!n->hlen)
		return mix(n->dev * 31 + n->ino);
	for (unsigned i = 0; i < n->hlen; i++)
		h = (h ^ n->handle[i]) * 1099511628211ull;
	return mix(h);
}

static int key_eq(const struct lnode *a, const struct lnode *b)
{
	if (a->hlen != b->hlen)
		return 0;
	if (!a->hlen)
		return a->dev == b->dev && a->ino == b->ino;
	return a->htype == b->htype && !memcmp(a->handle, b->handle, a->hlen);
}

/* Double the buckets once the table is as full as it is wide. nodes_mu held. */
static void nodes_grow(struct local *l)
{
	size_t nb = l->nbuckets * 2;
	struct lnode **bi = calloc(nb, sizeof *bi), **bk = calloc(nb, sizeof *bk);
	if (!bi || !bk) {
		free(bi);
		free(bk);
		return; /* longer chains, still correct */
	}
	for (size_t i = 0; i < l->nbuckets; i++) {
		for (struct lnode *n = l->by_id[i], *nx; n; n = nx) {
			nx = n->next_id;
			size_t b = mix(n->id) & (nb - 1);
			n->next_id = bi[b];
			bi[b] = n;
		}
		for (struct lnode *n = l->by_key[i], *nx; n; n = nx) {
			nx = n->next_key;
			size_t b = key_hash(n) & (nb - 1);
			n->next_key = bk[b];
			bk[b] = n;
		}
	}
	free(l->by_id);
	free(l->by_key);
	l->by_id = bi;
	l->by_key = bk;
	l->nbuckets = nb;
}

static void node_insert(struct local *l, struct lnode *n)
{
	if (l->nnodes >= l->nbuckets)
		nodes_grow(l);
	size_t b = mix(n->id) & (l->nbuckets - 1);
	n->next_id = l->by_id[b];
	l->by_id[b] = n;
	b = key_hash(n) & (l->nbuckets - 1);
	n->next_key = l->by_key[b];
	l->by_key[b] = n;
	l->nnodes++;
}

static void node_remove(struct local *l, struct lnode *n)
{
	struct lnode **pp = &l->by_id[mix(n->id) & (l->nbuckets - 1)];
	while (*pp != n)
		pp = &(*pp)->next_id;
	*pp = n->next_id;
	pp = &l->by_key[key_hash(n) & (l->nbuckets - 1)];
	while (*pp != n)
		pp = &(*pp)->next_key;
	*pp = n->next_key;
	l->nnodes--;
}

/* ---- node ids from file handles ---------------------------------------- */

/* Every owner must give an object the same node id, or a failover would
 * change the ids the kernels of the surviving mounts hold (docs/
 * dipolefs.md, "Failover"). Where the filesystem's handles carry a 32-bit
 * inode number and a 32-bit generation, the id is those two (generation
 * high, inode number low): the same on every node, since the replicas are
 * byte-identical, and never reused (a reused inode gets a new
 * generation). An id is turned back into the handle when a call names an
 * object this backend has not met (node_adopt). The root is always
 * FS_ROOT_INO. Objects whose handle does not fit (an XFS inode number
 * above 2^32), and every object of a filesystem with other handles, get
 * the next number shifted up 32 bits (inode number 0 never exists), and
 * do not survive a failover (-ESTALE). */
enum { ID_COUNTER, ID_INO32 /* FILEID_INO32_GEN: u32 ino, u32 gen */, ID_INO64 /* XFS: u64 ino, u32 gen */ };
#define FILEID_INO32_GEN 1
#define XFS_FILEID_INO64_GEN 0x81

static int id_format(const struct lnode *root)
{
	if (root->htype == FILEID_INO32_GEN && root->hlen == 8)
		return ID_INO32;
	if (root->htype == XFS_FILEID_INO64_GEN && root->hlen == 12)
		return ID_INO64;
	return ID_COUNTER;
}

/* The id derived from n's handle, 0 if it has none. */
static uint64_t derived_id(const struct local *l, const struct lnode *n)
{
	uint32_t ino32, gen;
	uint64_t ino64;
	if (l->id_format == ID_INO32 && n->htype == FILEID_INO32_GEN && n->hlen == 8) {
		memcpy(&ino32, n->handle, 4);
		memcpy(&gen, n->handle + 4, 4);
	} else if (l->id_format == ID_INO64 && n->htype == XFS_FILEID_INO64_GEN && n->hlen == 12) {
		memcpy(&ino64, n->handle, 8);
		memcpy(&gen, n->handle + 8, 4);
		if (ino64 >> 32)
			return 0;
		ino32 = (uint32_t)ino64;
	} else {
		return 0;
	}
	return ino32 ? (uint64_t)gen << 32 | ino32 : 0;
}

/* The next id for an object without a derived one. nodes_mu held. */
static uint64_t counter_id(struct local *l)
{
	uint64_t n = l->next_id++;
	return l->id_format == ID_COUNTER ? n : n << 32;
}

/* The handle id was derived from, into n. 0, or -ESTALE: not a derived id. */
static int id_handle(const struct local *l, uint64_t id, struct lnode *n)
{
	uint32_t ino32 = (uint32_t)id, gen = (uint32_t)(id >> 32);
	uint64_t ino64 = ino32;
	if (!ino32 || id == FS_ROOT_INO || l->id_format == ID_COUNTER)
		return -ESTALE;
	if (l->id_format == ID_INO32) {
		n->htype = FILEID_INO32_GEN;
		n->hlen = 8;
		memcpy(n->handle, &ino32, 4);
		memcpy(n->handle + 4, &gen, 4);
	} else {
		n->htype = XFS_FILEID_INO64_GEN;
		n->hlen = 12;
		memcpy(n->handle, &ino64, 8);
		memcpy(n->handle + 8, &gen, 4);
	}
	return 0;
}

/* ---- inode table ------------------------------------------------------ */

static struct lnode *node_adopt(struct local *l, uint64_t id);

/* The node for id with a reference taken (node_put), or NULL: unknown, or
 * (a derived id this backend has not met) its object is gone. */
static struct lnode *node_get(struct local *l, uint64_t id)
{
	pthread_mutex_lock(&l->nodes_mu);
	struct lnode *n = l->by_id[mix(id) & (l->nbuckets - 1)];
	while (n && n->id != id)
		n = n->next_id;
	if (n)
		n->ref++;
	pthread_mutex_unlock(&l->nodes_mu);
	return n ? n : node_adopt(l, id);
}

/* Free n once nothing refers to it. nodes_mu held; returns the fd to close
 * after unlocking, or -1. */
static int node_maybe_free(struct local *l, struct lnode *n)
{
	if (n->ref || n->nlookup || n->id == FS_ROOT_INO)
		return -1;
	node_remove(l, n);
	int fd = n->fd;
	free(n);
	return fd;
}

static void node_put(struct local *l, struct lnode *n)
{
	pthread_mutex_lock(&l->nodes_mu);
	n->ref--;
	int fd = node_maybe_free(l, n);
	pthread_mutex_unlock(&l->nodes_mu);
	if (fd >= 0)
		close(fd);
}

/* Fill n's key from its O_PATH fd: the file handle, or (dev, ino) where
 * the filesystem has none. 0 or -errno. */
static int node_key(struct lnode *n, const struct stat *st)
{
	union {
		struct file_handle fh;
		unsigned char raw[sizeof(struct file_handle) + HANDLE_MAX];
	} h;
	int mnt;
	h.fh.handle_bytes = HANDLE_MAX;
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	if (name_to_handle_at(n->fd, "", &h.fh, &mnt, AT_EMPTY_PATH) == 0) {
		n->htype = h.fh.handle_type;
		n->hlen = h.fh.handle_bytes;
		memcpy(n->handle, h.fh.f_handle, n->hlen);
		return 0;
	}
	if (errno == EOPNOTSUPP || errno == ENOTSUP) {
		n->hlen = 0;
		return 0;
	}
	return -errno;
}

/* A name SQLite gives its WAL index (DB-shm, os_unix.c): locks on it
 * follow the one-node rule (locks.h). */
static int is_shm_index(const char *name)
{
	size_t len = strlen(name);
	return len > 4 && !strcmp(name + len - 4, "-shm");
}

/* Enter the object behind fd (an O_PATH fd, consumed), named `name`, into
 * the table with one more lookup, and fill e. 0 or -errno. */
static int node_enter(struct local *l, int fd, const char *name, struct fs_entry *e)
{
	struct lnode *n = calloc(1, sizeof *n);
	if (!n) {
		close(fd);
		return -ENOMEM;
	}
	n->fd = fd;
	memset(e, 0, sizeof *e);
	int rc = fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) ? -errno : 0;
	if (!rc)
		rc = node_key(n, &e->attr);
	if (rc) {
		close(fd);
		free(n);
		return rc;
	}
	pthread_mutex_lock(&l->nodes_mu);
	struct lnode *old = l->by_key[key_hash(n) & (l->nbuckets - 1)];
	while (old && !key_eq(old, n))
		old = old->next_key;
	if (old) {
		old->nlookup++;
		old->one_node |= is_shm_index(name); /* sticky: a hard link keeps it */
		e->ino = old->id;
	} else {
		n->id = derived_id(l, n);
		if (!n->id)
			n->id = counter_id(l);
		n->nlookup = 1;
		n->one_node = is_shm_index(name);
		node_insert(l, n);
		e->ino = n->id;
	}
	pthread_mutex_unlock(&l->nodes_mu);
	/* the owner's own mount is revoked of every change other nodes make
	 * (local_add_notify); the server marks for its clients (server.c) */
	e->attr_timeout = FS_ATTR_REVOCABLE;
	if (old) {
		close(fd);
		free(n);
	}
	return 0;
}

/* An id a previous owner gave out (derived from the handle): reopen its
 * object by handle and enter it with one lookup, held by the kernel that
 * presents the id (its forget then drops it). The node with a reference
 * taken, or NULL: not a derived id, or the object is gone. */
static struct lnode *node_adopt(struct local *l, uint64_t id)
{
	union {
		struct file_handle fh;
		unsigned char raw[sizeof(struct file_handle) + HANDLE_MAX];
	} h;
	struct lnode *n = calloc(1, sizeof *n);
	if (!n || l->mount_fd < 0 || id_handle(l, id, n)) {
		free(n);
		return NULL;
	}
	h.fh.handle_type = n->htype;
	h.fh.handle_bytes = n->hlen;
	memcpy(h.fh.f_handle, n->handle, n->hlen);
	struct stat st;
	n->fd = open_by_handle_at(l->mount_fd, &h.fh, O_PATH | O_CLOEXEC);
	if (n->fd < 0 || fstatat(n->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) || node_key(n, &st) ||
	    derived_id(l, n) != id) {
		if (n->fd >= 0)
			close(n->fd);
		free(n);
		return NULL;
	}
	pthread_mutex_lock(&l->nodes_mu);
	struct lnode *old = l->by_id[mix(id) & (l->nbuckets - 1)];
	while (old && old->id != id)
		old = old->next_id;
	if (old) { /* another call adopted it meanwhile */
		old->ref++;
	} else {
		n->id = id;
		n->nlookup = 1;
		n->ref = 1;
		node_insert(l, n);
	}
	pthread_mutex_unlock(&l->nodes_mu);
	if (old) {
		close(n->fd);
		free(n);
	}
	return old ? old : n;
}

/* name (in the directory dfd) is DB-shm, node shm_ino: tell DB's node, if
 * known, that this is its WAL index, for the WAL rule (locks.h). */
static void note_wal_index(struct local *l, int dfd, const char *name, uint64_t shm_ino)
{
	char db[FS_NAME_MAX + 1];
	size_t len = strlen(name) - 4;
	memcpy(db, name, len);
	db[len] = 0;
	struct lnode key = { .fd = openat(dfd, db, O_PATH | O_NOFOLLOW | O_CLOEXEC) };
	struct stat st;
	if (key.fd < 0)
		return;
	if (!fstatat(key.fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) && S_ISREG(st.st_mode) &&
	    !node_key(&key, &st)) {
		pthread_mutex_lock(&l->nodes_mu);
		struct lnode *n = l->by_key[key_hash(&key) & (l->nbuckets - 1)];
		while (n && !key_eq(n, &key))
			n = n->next_key;
		if (n)
			n->shm_ino = shm_ino;
		pthread_mutex_unlock(&l->nodes_mu);
	}
	close(key.fd);
}

/* Look name up under the directory dfd and enter it. 0 or -errno. */
static int enter_name(struct local *l, int dfd, const char *name, struct fs_entry *e)
{
	int fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = node_enter(l, fd, name, e);
	if (!rc && is_shm_index(name))
		note_wal_index(l, dfd, name, e->ino);
	return rc;
}

/* The node id of the object behind fd if the table knows it (someone may
 * cache it), else 0. Consumes fd (-1: none). */
static uint64_t known_id(struct local *l, int fd)
{
	struct lnode key = { .fd = fd };
	struct stat st;
	uint64_t id = 0;
	if (fd < 0)
		return 0;
	if (!fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) && !node_key(&key, &st)) {
		pthread_mutex_lock(&l->nodes_mu);
		struct lnode *n = l->by_key[key_hash(&key) & (l->nbuckets - 1)];
		while (n && !key_eq(n, &key))
			n = n->next_key;
		id = n ? n->id : 0;
		pthread_mutex_unlock(&l->nodes_mu);
	}
	close(fd);
	return id;
}

/* An O_PATH fd on name in dfd, to learn after a change which object the
 * name named (known_id); -1 if there is none. */
static int name_fd(int dfd, const char *name)
{
	return openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
}

/* Open what an O_PATH fd refers to for real I/O. fd or -errno. */
static int reopen(int opath, int flags)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", opath);
	int fd = open(p, (flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW)) | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void proc_path(char *p, size_t len, int fd)
{
	snprintf(p, len, "/proc/self/fd/%d", fd);
}

/* ---- handle table ----------------------------------------------------- */

/* Whether a node other than `node_id` has file ino open, under files_mu: a
 * walk of every open file, paid at an open for writing only. */
static int opened_elsewhere(const struct local *l, uint64_t ino, uint32_t node_id)
{
	for (size_t i = 0; i < l->nfbuckets; i++)
		for (const struct lfile *x = l->files[i]; x; x = x->next)
			if (x->ino == ino && !x->is_dir && !x->released && x->node_id != node_id)
				return 1;
	return 0;
}

static int file_add(struct local *l, const struct fs_caller *c, uint64_t ino, int fd, int is_dir, uint64_t *fh)
{
	struct lfile *f = calloc(1, sizeof *f);
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	int fl = fcntl(fd, F_GETFL);
	f->append = fl >= 0 && (fl & O_APPEND);
	f->fd = fd;
	f->ino = ino;
	f->is_dir = is_dir;
	f->node_id = c->node_id;
	pthread_mutex_init(&f->dir_mu, NULL);
	pthread_mutex_lock(&l->files_mu);
	if (l->nfiles >= l->nfbuckets) {
		size_t nb = l->nfbuckets * 2;
		struct lfile **b = calloc(nb, sizeof *b);
		if (b) {
			for (size_t i = 0; i < l->nfbuckets; i++)
				for (struct lfile *x = l->files[i], *nx; x; x = nx) {
					nx = x->next;
					x->next = b[mix(x->id) & (nb - 1)];
					b[mix(x->id) & (nb - 1)] = x;
				}
			free(l->files);
			l->files = b;
			l->nfbuckets = nb;
		}
	}
	f->id = l->next_fh++;
	if (!is_dir && fl >= 0 && (fl & O_ACCMODE) != O_RDONLY && opened_elsewhere(l, ino, c->node_id))
		f->id |= FS_FH_UNCACHED;
	size_t b = mix(f->id) & (l->nfbuckets - 1);
	f->next = l->files[b];
	l->files[b] = f;
	l->nfiles++;
	*fh = f->id;
	pthread_mutex_unlock(&l->files_mu);
	return 0;
}

/* The open file fh of node ino, with a reference (file_put), or NULL. */
static struct lfile *file_get(struct local *l, uint64_t ino, uint64_t fh)
{
	pthread_mutex_lock(&l->files_mu);
	struct lfile *f = l->files[mix(fh) & (l->nfbuckets - 1)];
	while (f && f->id != fh)
		f = f->next;
	if (f && (f->released || f->ino != ino))
		f = NULL;
	if (f)
		f->ref++;
	pthread_mutex_unlock(&l->files_mu);
	return f;
}

static void file_free(struct lfile *f)
{
	close(f->fd);
	pthread_mutex_destroy(&f->dir_mu);
	free(f);
}

/* Drop a reference; with `release`, also the table's own. */
static void file_put(struct local *l, struct lfile *f, int release)
{
	pthread_mutex_lock(&l->files_mu);
	if (release)
		f->released = 1;
	int last = --f->ref == 0 && f->released;
	if (last) {
		struct lfile **pp = &l->files[mix(f->id) & (l->nfbuckets - 1)];
		while (*pp != f)
			pp = &(*pp)->next;
		*pp = f->next;
		l->nfiles--;
	}
	pthread_mutex_unlock(&l->files_mu);
	if (last)
		file_free(f);
}

/* ---- callers' credentials --------------------------------------------- */

static __thread int thread_fs_private;
static __thread mode_t thread_umask;

/* Run the next calls as the caller: fsuid, fsgid, groups, and its umask on
 * this thread (its own fs_struct: the process's stays). 0 or -errno (then
 * nothing changed). */
static int as_caller(const struct fs_caller *c)
{
	if (!thread_fs_private) {
		if (unshare(CLONE_FS))
			return -errno;
		umask(0);
		thread_fs_private = 1;
	}
	if (thread_umask != (c->umask & 0777)) {
		thread_umask = c->umask & 0777;
		umask(thread_umask);
	}
	gid_t g[FS_GROUPS_MAX];
	unsigned ng = c->ngroups > FS_GROUPS_MAX ? FS_GROUPS_MAX : c->ngroups;
	for (unsigned i = 0; i < ng; i++)
		g[i] = c->groups[i];
	/* the raw system call: glibc's setgroups changes every thread */
	if (syscall(SYS_setgroups, (size_t)ng, g))
		return -errno;
	setfsgid(c->gid);
	setfsuid(c->uid);
	return 0;
}

static void as_self(struct local *l)
{
	setfsuid(geteuid());
	setfsgid(getegid());
	(void)syscall(SYS_setgroups, (size_t)l->ngroups, l->groups);
}

/* ---- notification ----------------------------------------------------- */

static void notify_inode(struct local *l, const struct fs_caller *c, uint64_t ino, int64_t off, int64_t len)
{
	for (unsigned i = 0; i < l->nnotify; i++)
		if (l->notify[i].node_id != c->node_id && l->notify[i].n.inval_inode)
			l->notify[i].n.inval_inode(l->notify[i].n.arg, ino, off, len);
	if (l->fanout.inval_inode)
		l->fanout.inval_inode(l->fanout.arg, c->node_id, ino, off, len);
}

static void notify_entry(struct local *l, const struct fs_caller *c, uint64_t parent, const char *name)
{
	for (unsigned i = 0; i < l->nnotify; i++)
		if (l->notify[i].node_id != c->node_id && l->notify[i].n.inval_entry)
			l->notify[i].n.inval_entry(l->notify[i].n.arg, parent, name);
	if (l->fanout.inval_entry)
		l->fanout.inval_entry(l->fanout.arg, c->node_id, parent, name);
}

int local_add_notify(struct local *l, uint32_t node_id, const struct fs_notify *n)
{
	if (l->nnotify >= NOTIFY_MAX)
		return -ENOSPC;
	l->notify[l->nnotify].node_id = node_id;
	l->notify[l->nnotify].n = *n;
	l->nnotify++;
	return 0;
}

void local_set_fanout(struct local *l, const struct local_fanout *f)
{
	l->fanout = *f;
}

struct locks *local_locks(struct local *l)
{
	return l->locks;
}

unsigned local_lock_count(struct local *l)
{
	return (unsigned)locks_count(l->locks);
}

/* ---- life ------------------------------------------------------------- */

int local_open(struct local **out, int root_fd)
{
	struct local *l = calloc(1, sizeof *l);
	if (!l)
		return -ENOMEM;
	l->nbuckets = 1024;
	l->nfbuckets = 256;
	l->by_id = calloc(l->nbuckets, sizeof *l->by_id);
	l->by_key = calloc(l->nbuckets, sizeof *l->by_key);
	l->files = calloc(l->nfbuckets, sizeof *l->files);
	struct lnode *root = calloc(1, sizeof *root);
	int rc = -ENOMEM;
	if (!l->by_id || !l->by_key || !l->files || !root || locks_open(&l->locks))
		goto fail;
	l->ngroups = getgroups((int)(sizeof l->groups / sizeof l->groups[0]), l->groups);
	if (l->ngroups < 0)
		l->ngroups = 0;
	root->fd = openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root->fd < 0) {
		rc = -errno;
		goto fail;
	}
	struct stat st;
	if (fstat(root->fd, &st) || (rc = node_key(root, &st))) {
		rc = rc ? rc : -errno;
		close(root->fd);
		goto fail;
	}
	root->id = FS_ROOT_INO;
	root->nlookup = 1;
	node_insert(l, root);
	l->id_format = id_format(root);
	/* open_by_handle_at takes no O_PATH fd for its mount (EBADF) */
	l->mount_fd = openat(root->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	l->next_id = FS_ROOT_INO + 1;
	l->next_fh = 1;
	pthread_mutex_init(&l->nodes_mu, NULL);
	pthread_mutex_init(&l->files_mu, NULL);
	*out = l;
	return 0;
fail:
	free(root);
	locks_close(l->locks);
	free(l->by_id);
	free(l->by_key);
	free(l->files);
	free(l);
	return rc;
}

void local_close(struct local *l)
{
	if (!l)
		return;
	if (l->mount_fd >= 0)
		close(l->mount_fd);
	for (size_t i = 0; i < l->nbuckets; i++)
		for (struct lnode *n = l->by_id[i], *nx; n; n = nx) {
			nx = n->next_id;
			close(n->fd);
			free(n);
		}
	for (size_t i = 0; i < l->nfbuckets; i++)
		for (struct lfile *f = l->files[i], *nx; f; f = nx) {
			nx = f->next;
			file_free(f);
		}
	locks_close(l->locks);
	pthread_mutex_destroy(&l->nodes_mu);
	pthread_mutex_destroy(&l->files_mu);
	free(l->by_id);
	free(l->by_key);
	free(l->files);
	free(l);
}

/* The attributes of the directory behind p once a call changed it (the
 * caller's fs_entry parent_attr, fs_removed's dir_attr): st_ino 0 if
 * unknown. */
static void dir_attr_after(const struct lnode *p, struct stat *out)
{
	if (out && fstatat(p->fd, "", out, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
		out->st_ino = 0;
}

/* ---- operations ------------------------------------------------------- */

#define NODE(var, id)                                  \
	struct lnode *var = node_get(l, (id));         \
	if (!var)                                      \
		return -ESTALE

static int lo_lookup(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, struct fs_entry *out)
{
	struct local *l = ctx;
	(void)c;
	if (strlen(name) > FS_NAME_MAX)
		return -ENAMETOOLONG;
	NODE(p, parent);
	int rc = enter_name(l, p->fd, name, out);
	node_put(l, p);
	return rc;
}

static void lo_forget(void *ctx, uint64_t ino, uint64_t nlookup)
{
	struct local *l = ctx;
	pthread_mutex_lock(&l->nodes_mu);
	struct lnode *n = l->by_id[mix(ino) & (l->nbuckets - 1)];
	while (n && n->id != ino)
		n = n->next_id;
	int fd = -1;
	if (n && n->id != FS_ROOT_INO) {
		n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
		fd = node_maybe_free(l, n);
	}
	pthread_mutex_unlock(&l->nodes_mu);
	if (fd >= 0)
		close(fd);
}

static int lo_getattr(void *ctx, const struct fs_caller *c, uint64_t ino, struct stat *out)
{
	struct local *l = ctx;
	(void)c;
	NODE(n, ino);
	int rc = fstatat(n->fd, "", out, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) ? -errno : 0;
	node_put(l, n);
	return rc;
}

static int lo_setattr(void *ctx, const struct fs_caller *c, uint64_t ino, const struct stat *attr, int mask,
		      uint64_t fh, struct stat *out)
{
	struct local *l = ctx;
	char p[64];
	NODE(n, ino);
	struct lfile *f = fh ? file_get(l, ino, fh) : NULL;
	int rc = 0;
	proc_path(p, sizeof p, n->fd);
	if (mask & FS_SET_MODE) {
		if ((f ? fchmod(f->fd, attr->st_mode & 07777) : chmod(p, attr->st_mode & 07777)))
			rc = -errno;
	}
	if (!rc && (mask & (FS_SET_UID | FS_SET_GID))) {
		uid_t u = (mask & FS_SET_UID) ? attr->st_uid : (uid_t)-1;
		gid_t g = (mask & FS_SET_GID) ? attr->st_gid : (gid_t)-1;
		if (fchownat(n->fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
			rc = -errno;
	}
	if (!rc && (mask & FS_SET_SIZE)) {
		if ((f ? ftruncate(f->fd, attr->st_size) : truncate(p, attr->st_size)))
			rc = -errno;
	}
	if (!rc && (mask & (FS_SET_ATIME | FS_SET_MTIME | FS_SET_ATIME_NOW | FS_SET_MTIME_NOW))) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
		if (mask & FS_SET_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (mask & FS_SET_ATIME)
			ts[0] = attr->st_atim;
		if (mask & FS_SET_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (mask & FS_SET_MTIME)
			ts[1] = attr->st_mtim;
		if (f ? futimens(f->fd, ts) : utimensat(n->fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
			rc = -errno;
	}
	/* FS_SET_CTIME: the kernel filesystem sets ctime itself on any change */
	if (!rc && fstatat(n->fd, "", out, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
		rc = -errno;
	if (f)
		file_put(l, f, 0);
	node_put(l, n);
	if (!rc)
		notify_inode(l, c, ino, 0, (mask & FS_SET_SIZE) ? INT64_MAX : 0);
	return rc;
}

/* readlink: 0 and a NUL-terminated target in buf, -ENAMETOOLONG if it does
 * not fit in len - 1 bytes */
static int lo_readlink(void *ctx, const struct fs_caller *c, uint64_t ino, char *buf, size_t len)
{
	struct local *l = ctx;
	(void)c;
	if (!len)
		return -EINVAL;
	NODE(n, ino);
	ssize_t r = readlinkat(n->fd, "", buf, len);
	int rc = r < 0 ? -errno : (size_t)r >= len ? -ENAMETOOLONG : 0;
	if (!rc)
		buf[r] = 0;
	node_put(l, n);
	return rc;
}

/* The creating calls: run `op` in parent as the caller, then enter name. */
enum mk { MK_NOD, MK_DIR, MK_SYMLINK };

static int make(struct local *l, const struct fs_caller *c, uint64_t parent, const char *name, enum mk kind,
		mode_t mode, dev_t rdev, const char *target, struct fs_entry *out)
{
	if (strlen(name) > FS_NAME_MAX)
		return -ENAMETOOLONG;
	NODE(p, parent);
	int rc = as_caller(c);
	if (!rc) {
		int r = kind == MK_DIR ? mkdirat(p->fd, name, mode)
			: kind == MK_NOD ? mknodat(p->fd, name, mode, rdev)
			: symlinkat(target, p->fd, name);
		rc = r ? -errno : 0;
		as_self(l);
	}
	if (!rc)
		rc = enter_name(l, p->fd, name, out);
	if (!rc)
		dir_attr_after(p, &out->parent_attr);
	node_put(l, p);
	if (!rc) {
		notify_entry(l, c, parent, name);
		notify_inode(l, c, parent, 0, 0);
	}
	return rc;
}

static int lo_mknod(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode,
		    dev_t rdev, struct fs_entry *out)
{
	return make(ctx, c, parent, name, MK_NOD, mode, rdev, NULL, out);
}

static int lo_mkdir(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode,
		    struct fs_entry *out)
{
	return make(ctx, c, parent, name, MK_DIR, mode, 0, NULL, out);
}

static int lo_symlink(void *ctx, const struct fs_caller *c, const char *target, uint64_t parent,
		      const char *name, struct fs_entry *out)
{
	if (strlen(target) >= FS_PATH_MAX)
		return -ENAMETOOLONG;
	return make(ctx, c, parent, name, MK_SYMLINK, 0, 0, target, out);
}

/* unlink/rmdir: the name, the parent's attributes (mtime, nlink) and the
 * removed object's (nlink, ctime: it may live on under another name or
 * an open file) */
static int remove_name(struct local *l, const struct fs_caller *c, uint64_t parent, const char *name, int flags,
		       struct fs_removed *out)
{
	NODE(p, parent);
	int victim = name_fd(p->fd, name);
	int rc = unlinkat(p->fd, name, flags) ? -errno : 0;
	if (!rc && out)
		dir_attr_after(p, &out->dir_attr);
	node_put(l, p);
	if (rc) {
		if (victim >= 0)
			close(victim);
		return rc;
	}
	uint64_t gone = known_id(l, victim);
	if (out)
		out->ino = gone;
	notify_entry(l, c, parent, name);
	notify_inode(l, c, parent, 0, 0);
	if (gone)
		notify_inode(l, c, gone, 0, 0);
	return 0;
}

static int lo_unlink(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, struct fs_removed *gone)
{
	return remove_name(ctx, c, parent, name, 0, gone);
}

static int lo_rmdir(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, struct fs_removed *gone)
{
	return remove_name(ctx, c, parent, name, AT_REMOVEDIR, gone);
}

static int lo_rename(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, uint64_t newparent,
		     const char *newname, unsigned flags)
{
	struct local *l = ctx;
	if (strlen(newname) > FS_NAME_MAX)
		return -ENAMETOOLONG;
	NODE(p, parent);
	struct lnode *np = node_get(l, newparent);
	if (!np) {
		node_put(l, p);
		return -ESTALE;
	}
	/* besides both names and both parents: the moved object's ctime (and
	 * a moved directory's "..") and the replaced one's nlink and ctime,
	 * or with RENAME_EXCHANGE the other moved object's */
	int moved_fd = name_fd(p->fd, name), over_fd = name_fd(np->fd, newname);
	int rc = renameat2(p->fd, name, np->fd, newname, flags) ? -errno : 0;
	node_put(l, np);
	node_put(l, p);
	if (rc) {
		if (moved_fd >= 0)
			close(moved_fd);
		if (over_fd >= 0)
			close(over_fd);
		return rc;
	}
	uint64_t moved = known_id(l, moved_fd), over = known_id(l, over_fd);
	notify_entry(l, c, parent, name);
	notify_entry(l, c, newparent, newname);
	notify_inode(l, c, parent, 0, 0);
	if (newparent != parent)
		notify_inode(l, c, newparent, 0, 0);
	if (moved)
		notify_inode(l, c, moved, 0, 0);
	if (over && over != moved)
		notify_inode(l, c, over, 0, 0);
	return 0;
}

static int lo_link(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t newparent, const char *newname,
		   struct fs_entry *out)
{
	struct local *l = ctx;
	char p[64];
	if (strlen(newname) > FS_NAME_MAX)
		return -ENAMETOOLONG;
	NODE(n, ino);
	struct lnode *np = node_get(l, newparent);
	if (!np) {
		node_put(l, n);
		return -ESTALE;
	}
	/* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the /proc link does not */
	int rc = linkat(n->fd, "", np->fd, newname, AT_EMPTY_PATH) ? -errno : 0;
	if (rc == -ENOENT || rc == -EPERM) {
		proc_path(p, sizeof p, n->fd);
		rc = linkat(AT_FDCWD, p, np->fd, newname, AT_SYMLINK_FOLLOW) ? -errno : 0;
	}
	if (!rc)
		rc = enter_name(l, np->fd, newname, out);
	if (!rc)
		dir_attr_after(np, &out->parent_attr);
	node_put(l, np);
	node_put(l, n);
	if (!rc) { /* the new name, the new parent's mtime, the node's nlink and ctime */
		notify_entry(l, c, newparent, newname);
		notify_inode(l, c, newparent, 0, 0);
		notify_inode(l, c, ino, 0, 0);
	}
	return rc;
}

static int lo_open(void *ctx, const struct fs_caller *c, uint64_t ino, int flags, uint64_t *fh)
{
	struct local *l = ctx;
	(void)c;
	NODE(n, ino);
	int fd = reopen(n->fd, flags);
	node_put(l, n);
	if (fd < 0)
		return fd;
	if (flags & O_TRUNC)
		notify_inode(l, c, ino, 0, INT64_MAX);
	return file_add(l, c, ino, fd, 0, fh);
}

static int lo_create(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode,
		     int flags, struct fs_entry *out, uint64_t *fh)
{
	struct local *l = ctx;
	if (strlen(name) > FS_NAME_MAX)
		return -ENAMETOOLONG;
	NODE(p, parent);
	int fd = as_caller(c);
	if (!fd) {
		fd = openat(p->fd, name, (flags | O_CREAT | O_CLOEXEC) & ~O_NOCTTY, mode);
		if (fd < 0)
			fd = -errno;
		as_self(l);
	}
	if (fd < 0) {
		node_put(l, p);
		return fd;
	}
	/* the node from the open file, not the name: it may be renamed already */
	int opath = reopen(fd, O_PATH);
	int rc = opath < 0 ? opath : node_enter(l, opath, name, out);
	if (!rc && is_shm_index(name))
		note_wal_index(l, p->fd, name, out->ino);
	if (!rc)
		dir_attr_after(p, &out->parent_attr);
	node_put(l, p);
	if (rc) {
		close(fd);
		return rc;
	}
	rc = file_add(l, c, out->ino, fd, 0, fh);
	if (rc) {
		lo_forget(l, out->ino, 1);
		return rc;
	}
	notify_entry(l, c, parent, name);
	notify_inode(l, c, parent, 0, 0);
	/* a create that found the name taken (another node made it meanwhile)
	 * opened that file, and O_TRUNC emptied it */
	if (flags & O_TRUNC)
		notify_inode(l, c, out->ino, 0, INT64_MAX);
	return 0;
}

#define FILE(var, ino, fh)                             \
	struct lfile *var = file_get(l, (ino), (fh)); \
	if (!var)                                      \
		return -EBADF

static ssize_t lo_read(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, void *buf, size_t len,
		       uint64_t off)
{
	struct local *l = ctx;
	(void)c;
	if (len > FS_IO_MAX)
		len = FS_IO_MAX;
	FILE(f, ino, fh);
	ssize_t r = pread(f->fd, buf, len, (off_t)off);
	if (r < 0)
		r = -errno;
	file_put(l, f, 0);
	return r;
}

static ssize_t lo_write(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, const void *buf,
			size_t len, uint64_t off)
{
	struct local *l = ctx;
	if (len > FS_IO_MAX)
		return -EINVAL;
	FILE(f, ino, fh);
	/* an O_APPEND fd appends at the real end whatever off says: the
	 * caller's idea of the size may be stale */
	ssize_t r = pwrite(f->fd, buf, len, (off_t)off);
	if (r < 0)
		r = -errno;
	int append = f->append;
	file_put(l, f, 0);
	if (r > 0 && append) /* where it landed is not known: all pages */
		notify_inode(l, c, ino, 0, INT64_MAX);
	else if (r > 0)
		notify_inode(l, c, ino, (int64_t)off, r);
	return r;
}

static int lo_flush(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, uint64_t lock_owner)
{
	struct local *l = ctx;
	/* first: any close by the process drops its locks, even through a
	 * handle released under it (a client that reconnected) */
	(void)locks_release_owner(l->locks, ino, c->node_id, lock_owner);
	FILE(f, ino, fh);
	/* a close of a dup reports what close(2) would (NFS-style errors) */
	int d = dup(f->fd);
	int rc = d < 0 ? -errno : close(d) ? -errno : 0;
	file_put(l, f, 0);
	return rc;
}

static int lo_release(void *ctx, uint64_t ino, uint64_t fh)
{
	struct local *l = ctx;
	FILE(f, ino, fh);
	if (!f->is_dir) /* its flock and OFD locks die with it */
		(void)locks_release_file(l->locks, ino, f->node_id, fh);
	file_put(l, f, 1);
	return 0;
}

static int lo_fsync(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int datasync)
{
	struct local *l = ctx;
	(void)c;
	FILE(f, ino, fh);
	int rc = (datasync ? fdatasync(f->fd) : fsync(f->fd)) ? -errno : 0;
	file_put(l, f, 0);
	return rc;
}

static int lo_opendir(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t *fh)
{
	struct local *l = ctx;
	(void)c;
	NODE(n, ino);
	int fd = reopen(n->fd, O_RDONLY | O_DIRECTORY);
	node_put(l, n);
	if (fd < 0)
		return fd;
	return file_add(l, c, ino, fd, 1, fh);
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static int lo_readdir(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, uint64_t off,
		      fs_dirfill fill, void *arg)
{
	struct local *l = ctx;
	(void)c;
	FILE(f, ino, fh);
	if (!f->is_dir) {
		file_put(l, f, 0);
		return -ENOTDIR;
	}
	char buf[16384] __attribute__((aligned(8)));
	int rc = 0, full = 0;
	pthread_mutex_lock(&f->dir_mu);
	/* offsets are the kernel filesystem's own (d_off: a hash on ext4) */
	if (lseek(f->fd, (off_t)off, SEEK_SET) < 0)
		rc = -errno;
	while (!rc && !full) {
		long n = syscall(SYS_getdents64, f->fd, buf, sizeof buf);
		if (n < 0)
			rc = -errno;
		if (n <= 0)
			break;
		for (long pos = 0; pos < n;) {
			struct linux_dirent64 *d = (void *)(buf + pos);
			if (fill(arg, d->d_name, d->d_ino, (mode_t)DTTOIF(d->d_type), (uint64_t)d->d_off)) {
				full = 1;
				break;
			}
			pos += d->d_reclen;
		}
	}
	pthread_mutex_unlock(&f->dir_mu);
	file_put(l, f, 0);
	return rc;
}

static int lo_releasedir(void *ctx, uint64_t ino, uint64_t fh)
{
	return lo_release(ctx, ino, fh);
}

static int lo_fsyncdir(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int datasync)
{
	return lo_fsync(ctx, c, ino, fh, datasync);
}

static int lo_statfs(void *ctx, const struct fs_caller *c, uint64_t ino, struct statvfs *out)
{
	struct local *l = ctx;
	(void)c;
	NODE(n, ino);
	int rc = fstatvfs(n->fd, out) ? -errno : 0;
	node_put(l, n);
	return rc;
}

/* xattrs through /proc/self/fd/N: the f*xattr calls refuse O_PATH fds */
static int lo_setxattr(void *ctx, const struct fs_caller *c, uint64_t ino, const char *name, const void *value,
		       size_t len, int flags)
{
	struct local *l = ctx;
	char p[64];
	NODE(n, ino);
	proc_path(p, sizeof p, n->fd);
	int rc = setxattr(p, name, value, len, flags) ? -errno : 0;
	node_put(l, n);
	if (!rc)
		notify_inode(l, c, ino, 0, 0);
	return rc;
}

static ssize_t lo_getxattr(void *ctx, const struct fs_caller *c, uint64_t ino, const char *name, void *buf,
			   size_t len)
{
	struct local *l = ctx;
	char p[64];
	(void)c;
	NODE(n, ino);
	proc_path(p, sizeof p, n->fd);
	ssize_t r = getxattr(p, name, buf, len);
	if (r < 0)
		r = -errno;
	node_put(l, n);
	return r;
}

static ssize_t lo_listxattr(void *ctx, const struct fs_caller *c, uint64_t ino, char *buf, size_t len)
{
	struct local *l = ctx;
	char p[64];
	(void)c;
	NODE(n, ino);
	proc_path(p, sizeof p, n->fd);
	ssize_t r = listxattr(p, buf, len);
	if (r < 0)
		r = -errno;
	node_put(l, n);
	return r;
}

/* readdirplus: readdir, and a lookup of each name as the filler gets it
 * (the directory's lock is held: lookups take the node table's), with
 * which of fs_xattr_common it lacks */
struct plus {
	void *ctx;
	const struct fs_caller *c;
	uint64_t dir;
	fs_dirfill_plus fill;
	void *arg;
};

static int plus_fill(void *arg, const char *name, uint64_t ino, mode_t type, uint64_t next)
{
	struct plus *p = arg;
	struct fs_entry e = { 0 };
	int rc = -EINVAL;
	if (strcmp(name, ".") && strcmp(name, ".."))
		rc = lo_lookup(p->ctx, p->c, p->dir, name, &e);
	if (rc == -ENOENT) /* gone since the listing was read */
		return 0;
	if (rc) {
		e = (struct fs_entry){ .attr = { .st_ino = ino, .st_mode = type } };
		return p->fill(p->arg, name, &e, next);
	}
	char list[4096];
	e.xattr_absent = fs_xattr_absent(list, lo_listxattr(p->ctx, p->c, e.ino, list, sizeof list));
	if (!p->fill(p->arg, name, &e, next))
		return 0;
	lo_forget(p->ctx, e.ino, 1);
	return 1;
}

static int lo_readdirplus(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, uint64_t off,
			  size_t room, fs_dirfill_plus fill, void *arg)
{
	(void)room; /* the filler says when it is full: a lookup here is cheap */
	struct plus p = { .ctx = ctx, .c = c, .dir = ino, .fill = fill, .arg = arg };
	return lo_readdir(ctx, c, ino, fh, off, plus_fill, &p);
}

static int lo_removexattr(void *ctx, const struct fs_caller *c, uint64_t ino, const char *name)
{
	struct local *l = ctx;
	char p[64];
	NODE(n, ino);
	proc_path(p, sizeof p, n->fd);
	int rc = removexattr(p, name) ? -errno : 0;
	node_put(l, n);
	if (!rc)
		notify_inode(l, c, ino, 0, 0);
	return rc;
}

static int lo_fallocate(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int mode, uint64_t off,
			uint64_t len)
{
	struct local *l = ctx;
	FILE(f, ino, fh);
	int rc = fallocate(f->fd, mode, (off_t)off, (off_t)len) ? -errno : 0;
	file_put(l, f, 0);
	/* collapse and insert move everything after off */
	if (!rc && (mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)))
		notify_inode(l, c, ino, (int64_t)off, INT64_MAX);
	else if (!rc)
		notify_inode(l, c, ino, (int64_t)off, (int64_t)len);
	return rc;
}

/* What the lock table must know of ino (locks.h): LOCKS_ONE_NODE for a
 * shared-memory index, else 0; *shm_ino for an SQLite database. */
static unsigned lock_flags(struct local *l, uint64_t ino, uint64_t *shm_ino)
{
	pthread_mutex_lock(&l->nodes_mu);
	struct lnode *n = l->by_id[mix(ino) & (l->nbuckets - 1)];
	while (n && n->id != ino)
		n = n->next_id;
	unsigned flags = n && n->one_node ? LOCKS_ONE_NODE : 0;
	*shm_ino = n ? n->shm_ino : 0;
	pthread_mutex_unlock(&l->nodes_mu);
	return flags;
}

static int lo_getlk(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, struct fs_lock *lk)
{
	struct local *l = ctx;
	uint64_t shm_ino;
	(void)c;
	(void)fh;
	unsigned flags = lock_flags(l, ino, &shm_ino);
	return locks_getlk(l->locks, ino, lk, flags, shm_ino);
}

static int lo_setlk(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, const struct fs_lock *lk,
		    int wait, uint64_t token)
{
	struct local *l = ctx;
	uint64_t shm_ino;
	(void)c;
	if (lk->type != F_UNLCK) {
		/* only a release can drop a flock or OFD lock: it must come
		 * through an open file of the caller's node the owner knows */
		FILE(f, ino, fh);
		int mine = f->node_id == lk->node_id;
		file_put(l, f, 0);
		if (!mine)
			return -EBADF;
	}
	unsigned flags = lock_flags(l, ino, &shm_ino) | (wait & FS_SETLK_WAIT ? LOCKS_WAIT : 0) |
			 (wait & FS_SETLK_RECLAIM ? LOCKS_RECLAIM : 0);
	return locks_setlk(l->locks, ino, fh, lk, flags, shm_ino, token);
}

static void lo_interrupt(void *ctx, const struct fs_caller *c, uint64_t token)
{
	struct local *l = ctx;
	(void)locks_interrupt(l->locks, c->node_id, token);
}

static int64_t lo_lseek(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int64_t off, int whence)
{
	struct local *l = ctx;
	(void)c;
	FILE(f, ino, fh);
	/* only SEEK_DATA/SEEK_HOLE reach a FUSE filesystem; the fd's own
	 * position is never used for I/O (pread/pwrite) */
	off_t r = lseek(f->fd, (off_t)off, whence);
	int64_t rc = r < 0 ? -errno : (int64_t)r;
	file_put(l, f, 0);
	return rc;
}

const struct fs_ops local_ops = {
	.lookup = lo_lookup,
	.forget = lo_forget,
	.getattr = lo_getattr,
	.setattr = lo_setattr,
	.readlink = lo_readlink,
	.mknod = lo_mknod,
	.mkdir = lo_mkdir,
	.unlink = lo_unlink,
	.rmdir = lo_rmdir,
	.symlink = lo_symlink,
	.rename = lo_rename,
	.link = lo_link,
	.open = lo_open,
	.create = lo_create,
	.read = lo_read,
	.write = lo_write,
	.flush = lo_flush,
	.release = lo_release,
	.fsync = lo_fsync,
	.opendir = lo_opendir,
	.readdir = lo_readdir,
	.readdirplus = lo_readdirplus,
	.releasedir = lo_releasedir,
	.fsyncdir = lo_fsyncdir,
	.statfs = lo_statfs,
	.setxattr = lo_setxattr,
	.getxattr = lo_getxattr,
	.listxattr = lo_listxattr,
	.removexattr = lo_removexattr,
	.fallocate = lo_fallocate,
	.getlk = lo_getlk,
	.setlk = lo_setlk,
	.interrupt = lo_interrupt,
	.lseek = lo_lseek,
};

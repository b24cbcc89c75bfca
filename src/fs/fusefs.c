/* fusefs — see fusefs.h. Each fuse_lowlevel_ops handler fills a
 * struct fs_caller from the request and makes one fs_ops call. */
#define FUSE_USE_VERSION 35
#include "fusefs.h"
#include "dirsplit.h"
#include "fusemount.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* What the kernel was handed (cache.track): each node id with the lookups
 * it holds (entry replies minus forgets), each (parent, name) it may
 * cache, positive or absent. A superset is harmless (revoking what the
 * kernel does not hold is a no-op); a name leaves the set before its
 * revocation reaches the kernel, so a lookup that races it is either
 * added again or dropped by it. Both tables hash into chains. */
struct tnode {
	struct tnode *next;
	uint64_t ino, nlookup;
};
struct tname {
	struct tname *next;
	uint64_t parent;
	uint64_t ino; /* the node it was handed out naming, 0: absent or not known */
	size_t len;
	char name[];
};
#define TNODE_BUCKETS 16384u
#define TNAME_BUCKETS 65536u
struct track {
	pthread_mutex_t lock; /* guards the tables; never held across a call into the kernel */
	struct tnode *nodes[TNODE_BUCKETS];
	struct tname *names[TNAME_BUCKETS];
	size_t nnodes, nnames;
};

/* Extended attributes known to be absent, for the few names asked of
 * nearly every file (cache.attr_timeout > 0): the kernel asks for
 * security.capability before every write (to drop it, as it drops setuid
 * bits: file_remove_privs), `ls -l` for security.selinux and
 * system.posix_acl_access of each entry, `cp -a` and friends for the
 * default ACL too; each a round trip to the owner on a client. "None" is
 * kept until the node is revoked, changed through this mount, forgotten
 * or everything is dropped; a READDIRPLUS entry may tell it too
 * (fs_entry's xattr_absent). A slot holds one node id (0: empty) and a
 * bit per name of fs_xattr_common (fsops.h); two nodes on one slot cost a
 * request, never a wrong answer. An answer is kept only if no revocation
 * ran while it was fetched (`seq`), so a setxattr on another node that
 * returned cannot be undone by an older answer. */
#define XNEG_SLOTS 32768u
struct xneg_slot {
	uint64_t ino;
	unsigned absent; /* bit i: fs_xattr_common[i] */
};
struct xneg {
	pthread_mutex_t lock; /* guards all of it */
	uint64_t seq;         /* revocations so far */
	struct xneg_slot slot[XNEG_SLOTS];
};

/* Attributes this daemon answers getattr with (cache.attr_timeout > 0),
 * for attr_timeout: the kernel asks again after every change it made
 * itself and after every entry reply (whose attributes it must not cache:
 * entry_param), each a round trip to the owner on a client. A slot holds
 * what a getattr reply or an entry reply the backend calls revocable
 * (FS_ATTR_REVOCABLE) said of one node; it goes when the node is revoked
 * (nt_inode), changed through this mount (acache_after), forgotten, or
 * everything is dropped. An answer is stored only if nothing was dropped
 * while it was fetched (`seq`), so it cannot be older than a change whose
 * revocation already ran. */
#define ACACHE_SLOTS 4096u
#define ACACHE_ALL UINT64_MAX /* acache_after: drop every node */
struct acache_slot {
	uint64_t ino;      /* 0: empty */
	uint64_t until_ns; /* CLOCK_MONOTONIC */
	struct stat st;
};
struct acache {
	pthread_mutex_t lock; /* guards all of it */
	uint64_t seq;         /* drops so far */
	struct acache_slot slot[ACACHE_SLOTS];
};

/* Names this mount itself removed (unlink, rmdir, renamed away), known
 * absent until that name is revoked (a client's mount): the kernel
 * expires the negative entry its own removal leaves and asks again at the
 * next use (SQLite's hot-journal check after every transaction), but the
 * owner holds the name marked as this client's since the removal carried
 * it, so a create of it on another node revokes it here first. A slot per
 * hash of (parent, name), the name kept to compare; a removal is learned
 * only if no name was revoked while it was at the owner (`seq`). */
#define GONE_SLOTS 256u
struct gone_slot {
	uint64_t parent; /* 0: empty */
	size_t len;
	char name[FS_NAME_MAX + 1];
};
struct gone {
	pthread_mutex_t lock; /* guards all of it */
	uint64_t seq;         /* name revocations so far */
	struct gone_slot slot[GONE_SLOTS];
};

/* Directories this mount made itself while the owner said they were
 * empty once revocable (mkdir's dir_empty): it knows every name there, so
 * a lookup of a name it did not make there is answered "absent" without
 * asking the owner (a create's LOOKUP; Ceph's "complete" directory), until
 * the owner revokes the directory (nt_inode: a name made or moved there
 * on another node revokes the directory before that call returns), the
 * kernel forgets it, or everything is dropped. The names made here are
 * bits of a hash, set before the call that makes the name: a set bit only
 * sends the lookup to the owner. The answer is not cached by the kernel
 * (no negative entry: the owner marked no such name as this client's). A
 * directory is learned only if no directory was revoked while its mkdir
 * was at the owner (`seq`); a 17th one takes the oldest's slot. */
#define KNOWN_DIRS 16u
#define KNOWN_BITS 65536u
struct known_dir {
	uint64_t ino; /* 0: empty */
	uint64_t bits[KNOWN_BITS / 64];
};
struct known {
	pthread_mutex_t lock; /* guards all of it */
	uint64_t seq;         /* revocations so far */
	unsigned next;        /* the slot the next directory takes */
	struct known_dir dir[KNOWN_DIRS];
};

struct fusefs {
	struct fuse_session *se;
	const struct fs_ops *ops;
	void *ctx;
	uint32_t node_id;
	atomic_uint_fast64_t next_token; /* tokens of lock requests */
	struct fs_notify notify;
	struct fusefs_cache cache;
	struct fusemount *fm;
	struct track *track;             /* NULL unless cache.track */
	/* the fence (fusefs_fail): from then on every request is answered
	 * fail_errno before it reaches the backend; `busy` counts requests
	 * inside the backend, so fusefs_drained tells when it may go */
	atomic_int fail_errno;
	atomic_int busy;
	atomic_uint_fast64_t requests; /* from the kernel, every kind (status) */
	struct xneg *xneg;     /* NULL: attr_timeout 0, or no memory */
	struct acache *acache; /* NULL: attr_timeout 0, or no memory */
	struct gone *gone;     /* NULL: not a client's mount, or no memory */
	struct known *known;   /* NULL: not a client's mount, or no memory */
	/* where the last READDIRPLUS batch that needed its lookups ended
	 * (directory, offset of its next entry): the batch asked there goes
	 * to readdirplus at once, without the names first (a cold listing's
	 * second round trip per batch). A hint: a torn pair only picks the
	 * other way, and both answer alike */
	_Atomic uint64_t plus_dir, plus_next;
};

/* ---- what the kernel holds (cache.track) ------------------------------- */

static uint64_t name_hash(uint64_t parent, const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ull ^ parent * 0x9e3779b97f4a7c15ull; /* FNV-1a, seeded */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 1099511628211ull;
	return h;
}

/* Note an entry reply for ino; 0 when ino is 0 (an absent name). */
static void track_node(struct fusefs *f, uint64_t ino)
{
	struct track *t = f->track;
	if (!t || !ino)
		return;
	pthread_mutex_lock(&t->lock);
	struct tnode **b = &t->nodes[ino % TNODE_BUCKETS], *n = *b;
	while (n && n->ino != ino)
		n = n->next;
	if (!n && (n = malloc(sizeof *n))) {
		*n = (struct tnode){ .next = *b, .ino = ino };
		*b = n;
		t->nnodes++;
	}
	if (n)
		n->nlookup++; /* without memory the node goes untracked: inval_all misses it */
	pthread_mutex_unlock(&t->lock);
}

static void track_forget(struct fusefs *f, uint64_t ino, uint64_t nlookup)
{
	struct track *t = f->track;
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	for (struct tnode **p = &t->nodes[ino % TNODE_BUCKETS]; *p; p = &(*p)->next) {
		struct tnode *n = *p;
		if (n->ino != ino)
			continue;
		if (n->nlookup > nlookup) {
			n->nlookup -= nlookup;
		} else {
			*p = n->next;
			free(n);
			t->nnodes--;
		}
		break;
	}
	pthread_mutex_unlock(&t->lock);
}

static struct tname *tname_find(struct track *t, uint64_t parent, const char *name, size_t len)
{
	struct tname *n = t->names[name_hash(parent, name, len) % TNAME_BUCKETS];
	while (n && !(n->parent == parent && n->len == len && !memcmp(n->name, name, len)))
		n = n->next;
	return n;
}

/* Note that the kernel may cache (parent, name): 1, or 0 when it must not
 * (the set is full or out of memory: the reply carries entry timeout 0). */
static int track_name(struct fusefs *f, uint64_t parent, const char *name)
{
	struct track *t = f->track;
	if (!t)
		return 1;
	size_t len = strlen(name);
	pthread_mutex_lock(&t->lock);
	struct tname **b = &t->names[name_hash(parent, name, len) % TNAME_BUCKETS], *n = tname_find(t, parent, name, len);
	if (!n && t->nnames < FUSEFS_TRACK_NAMES && (n = malloc(sizeof *n + len + 1))) {
		*n = (struct tname){ .next = *b, .parent = parent, .len = len };
		memcpy(n->name, name, len + 1);
		*b = n;
		t->nnames++;
	}
	pthread_mutex_unlock(&t->lock);
	return n != NULL;
}

/* (parent, name) was handed out naming ino (entry_param) */
static void track_name_ino(struct fusefs *f, uint64_t parent, const char *name, uint64_t ino)
{
	struct track *t = f->track;
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	struct tname *n = tname_find(t, parent, name, strlen(name));
	if (n)
		n->ino = ino;
	pthread_mutex_unlock(&t->lock);
}

/* 1 if the kernel likely holds (parent, name) with its node: handed out
 * naming a node and not revoked since, and that node not forgotten (the
 * kernel drops a name silently, but forgets the node of a name it drops
 * under memory pressure, as `drop_caches` does) */
static int held_name(struct fusefs *f, uint64_t parent, const char *name)
{
	struct track *t = f->track;
	pthread_mutex_lock(&t->lock);
	struct tname *n = tname_find(t, parent, name, strlen(name));
	struct tnode *x = n && n->ino ? t->nodes[n->ino % TNODE_BUCKETS] : NULL;
	while (x && x->ino != n->ino)
		x = x->next;
	pthread_mutex_unlock(&t->lock);
	return x != NULL;
}

static void untrack_name(struct fusefs *f, uint64_t parent, const char *name)
{
	struct track *t = f->track;
	if (!t)
		return;
	size_t len = strlen(name);
	pthread_mutex_lock(&t->lock);
	for (struct tname **p = &t->names[name_hash(parent, name, len) % TNAME_BUCKETS]; *p; p = &(*p)->next) {
		struct tname *n = *p;
		if (n->parent == parent && n->len == len && !memcmp(n->name, name, len)) {
			*p = n->next;
			free(n);
			t->nnames--;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
}

static void track_free(struct track *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < TNODE_BUCKETS; i++)
		for (struct tnode *n = t->nodes[i], *next; n; n = next) {
			next = n->next;
			free(n);
		}
	for (unsigned i = 0; i < TNAME_BUCKETS; i++)
		for (struct tname *n = t->names[i], *next; n; n = next) {
			next = n->next;
			free(n);
		}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* A node id's slot in a table of n (a power of two): ids may carry their
 * information in either half (local.c: generation << 32 | inode, or a
 * counter << 32), so they are mixed first */
static unsigned slot_of(uint64_t ino, unsigned n)
{
	return (unsigned)((ino * 0x9e3779b97f4a7c15ull) >> 40) & (n - 1);
}

/* A table's drop count, read under its lock */
static uint64_t seq_read(pthread_mutex_t *lock, const uint64_t *seq)
{
	pthread_mutex_lock(lock);
	uint64_t s = *seq;
	pthread_mutex_unlock(lock);
	return s;
}

static struct gone_slot *gone_slot(struct gone *g, uint64_t parent, const char *name, size_t len)
{
	return &g->slot[name_hash(parent, name, len) % GONE_SLOTS];
}

/* Taken before a removal whose success may be learned (gone_learn) */
static uint64_t gone_seq(struct fusefs *f)
{
	return f->gone ? seq_read(&f->gone->lock, &f->gone->seq) : 0;
}

/* This mount removed (parent, name) by a call that began at seq */
static void gone_learn(struct fusefs *f, uint64_t parent, const char *name, uint64_t seq)
{
	struct gone *g = f->gone;
	size_t len = strlen(name);
	if (!g || !parent || len > FS_NAME_MAX)
		return;
	pthread_mutex_lock(&g->lock);
	if (g->seq == seq) {
		struct gone_slot *sl = gone_slot(g, parent, name, len);
		sl->parent = parent;
		sl->len = len;
		memcpy(sl->name, name, len + 1);
	}
	pthread_mutex_unlock(&g->lock);
}

/* Whether (parent, name) is known absent; if so, forget it (the kernel
 * is about to hold it as a negative entry, tracked and revocable). */
static int gone_take(struct fusefs *f, uint64_t parent, const char *name)
{
	struct gone *g = f->gone;
	size_t len = strlen(name);
	if (!g || len > FS_NAME_MAX)
		return 0;
	pthread_mutex_lock(&g->lock);
	struct gone_slot *sl = gone_slot(g, parent, name, len);
	int known = sl->parent == parent && sl->len == len && !memcmp(sl->name, name, len);
	if (known)
		sl->parent = 0;
	pthread_mutex_unlock(&g->lock);
	return known;
}

/* (parent, name) may exist now: revoked (a change elsewhere), or made
 * here; name NULL: every name under parent (the kernel forgot it: a
 * client tracking names by directory is revoked under it no more), or
 * under every directory (parent 0: everything is dropped). */
static void gone_drop(struct fusefs *f, uint64_t parent, const char *name, int revoked)
{
	struct gone *g = f->gone;
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->seq += !!revoked;
	if (!name) {
		for (unsigned i = 0; i < GONE_SLOTS; i++)
			if (!parent || g->slot[i].parent == parent)
				g->slot[i].parent = 0;
	} else {
		size_t len = strlen(name);
		struct gone_slot *sl = gone_slot(g, parent, name, len);
		if (sl->parent == parent && sl->len == len && !memcmp(sl->name, name, len))
			sl->parent = 0;
	}
	pthread_mutex_unlock(&g->lock);
}

static struct known_dir *known_find(struct known *k, uint64_t ino)
{
	for (unsigned i = 0; ino && i < KNOWN_DIRS; i++)
		if (k->dir[i].ino == ino)
			return &k->dir[i];
	return NULL;
}

/* Taken before a mkdir whose answer may be learned (known_learn) */
static uint64_t known_seq(struct fusefs *f)
{
	return f->known ? seq_read(&f->known->lock, &f->known->seq) : 0;
}

/* This mount made directory ino, empty when it became revocable, by a
 * call that began at seq */
static void known_learn(struct fusefs *f, uint64_t ino, uint64_t seq)
{
	struct known *k = f->known;
	if (!k || !ino)
		return;
	pthread_mutex_lock(&k->lock);
	if (k->seq == seq && !known_find(k, ino)) {
		struct known_dir *d = &k->dir[k->next++ % KNOWN_DIRS];
		memset(d->bits, 0, sizeof d->bits);
		d->ino = ino;
	}
	pthread_mutex_unlock(&k->lock);
}

static unsigned known_bit(uint64_t parent, const char *name)
{
	return (unsigned)(name_hash(parent, name, strlen(name)) % KNOWN_BITS);
}

/* (parent, name) may exist from now on: this mount is making it */
static void known_made(struct fusefs *f, uint64_t parent, const char *name)
{
	struct known *k = f->known;
	if (!k)
		return;
	unsigned b = known_bit(parent, name);
	pthread_mutex_lock(&k->lock);
	struct known_dir *d = known_find(k, parent);
	if (d)
		d->bits[b / 64] |= 1ull << (b % 64);
	pthread_mutex_unlock(&k->lock);
}

/* 1: parent is known whole here and name was never made in it */
static int known_absent(struct fusefs *f, uint64_t parent, const char *name)
{
	struct known *k = f->known;
	if (!k || !strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	unsigned b = known_bit(parent, name);
	pthread_mutex_lock(&k->lock);
	struct known_dir *d = known_find(k, parent);
	int absent = d && !(d->bits[b / 64] & (1ull << (b % 64)));
	pthread_mutex_unlock(&k->lock);
	return absent;
}

/* Directory ino may hold names made elsewhere (revoked), or the kernel
 * forgot it; ino 0: every directory */
static void known_drop(struct fusefs *f, uint64_t ino, int revoked)
{
	struct known *k = f->known;
	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	k->seq += !!revoked;
	for (unsigned i = 0; i < KNOWN_DIRS; i++)
		if (!ino || k->dir[i].ino == ino)
			k->dir[i].ino = 0;
	pthread_mutex_unlock(&k->lock);
}

/* The bit of fs_xattr_common for name; 0: not one of them */
static unsigned xneg_bit(const char *name)
{
	for (unsigned i = 0; i < FS_XATTR_COMMON; i++)
		if (!strcmp(name, fs_xattr_common[i]))
			return 1u << i;
	return 0;
}

/* 1: ino is known to have no attribute `bit`; else 0 and *seq for xneg_learn */
static int xneg_known(struct fusefs *f, uint64_t ino, unsigned bit, uint64_t *seq)
{
	struct xneg *x = f->xneg;
	if (!x || !bit)
		return 0;
	pthread_mutex_lock(&x->lock);
	const struct xneg_slot *sl = &x->slot[slot_of(ino, XNEG_SLOTS)];
	int known = sl->ino == ino && (sl->absent & bit);
	*seq = x->seq;
	pthread_mutex_unlock(&x->lock);
	return known;
}

/* ino has none of the attributes `bit` (a mask), as read by a call that
 * began at seq */
static void xneg_learn(struct fusefs *f, uint64_t ino, unsigned bit, uint64_t seq)
{
	struct xneg *x = f->xneg;
	if (!x || !bit || !ino)
		return;
	pthread_mutex_lock(&x->lock);
	struct xneg_slot *sl = &x->slot[slot_of(ino, XNEG_SLOTS)];
	if (x->seq == seq) {
		if (sl->ino != ino)
			*sl = (struct xneg_slot){ .ino = ino };
		sl->absent |= bit;
	}
	pthread_mutex_unlock(&x->lock);
}

/* Taken before a call whose answer may be learned (xneg_learn) */
static uint64_t xneg_seq(struct fusefs *f)
{
	return f->xneg ? seq_read(&f->xneg->lock, &f->xneg->seq) : 0;
}

/* ino's attributes may have changed (a revocation, a setxattr here); ino
 * 0: every node's. A forget (the kernel let ino go, and a node id may be
 * reused) needs no new seq: the kernel asks nothing of a node it drops. */
static void xneg_drop(struct fusefs *f, uint64_t ino, int revoked)
{
	struct xneg *x = f->xneg;
	if (!x)
		return;
	pthread_mutex_lock(&x->lock);
	x->seq += !!revoked;
	if (!ino)
		memset(x->slot, 0, sizeof x->slot);
	else if (x->slot[slot_of(ino, XNEG_SLOTS)].ino == ino)
		x->slot[slot_of(ino, XNEG_SLOTS)].ino = 0;
	pthread_mutex_unlock(&x->lock);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* 1 and *st if ino's attributes are cached */
static int acache_get(struct fusefs *f, uint64_t ino, struct stat *st)
{
	struct acache *a = f->acache;
	if (!a)
		return 0;
	uint64_t now = mono_ns();
	struct acache_slot *sl = &a->slot[slot_of(ino, ACACHE_SLOTS)];
	pthread_mutex_lock(&a->lock);
	int hit = sl->ino == ino && now < sl->until_ns;
	if (hit)
		*st = sl->st;
	pthread_mutex_unlock(&a->lock);
	return hit;
}

/* Taken before a call whose answer may be stored (acache_after) */
static uint64_t acache_seq(struct fusefs *f)
{
	return f->acache ? seq_read(&f->acache->lock, &f->acache->seq) : 0;
}

static void acache_clear_locked(struct acache *a, uint64_t ino)
{
	if (ino == ACACHE_ALL) {
		for (unsigned i = 0; i < ACACHE_SLOTS; i++)
			a->slot[i].ino = 0;
	} else if (ino && a->slot[slot_of(ino, ACACHE_SLOTS)].ino == ino) {
		a->slot[slot_of(ino, ACACHE_SLOTS)].ino = 0;
	}
}

/* Attributes a call learned of one node (ino 0: nothing) */
struct acache_put {
	uint64_t ino;
	const struct stat *st;
};

/* After a call that began at seq: drop d1 and d2 (0: none, ACACHE_ALL:
 * every node; a drop counts in seq, so answers fetched meanwhile are not
 * stored), then store put[0..n) unless some other drop came since seq.
 * All at once, so a call's own change cannot keep its own fresh answer
 * out. Returns the seq after the call's own drops if no other drop came
 * (the call's answers are current as of it), else ACACHE_STALE. */
#define ACACHE_STALE UINT64_MAX
static uint64_t acache_after_n(struct fusefs *f, uint64_t seq, const struct acache_put *put, int n, uint64_t d1,
			       uint64_t d2)
{
	struct acache *a = f->acache;
	if (!a)
		return ACACHE_STALE;
	uint64_t until = mono_ns() + (uint64_t)(f->cache.attr_timeout * 1e9);
	pthread_mutex_lock(&a->lock);
	int fresh = a->seq == seq;
	if (d1 || d2) {
		a->seq++;
		acache_clear_locked(a, d1);
		acache_clear_locked(a, d2);
	}
	for (int i = 0; fresh && i < n; i++)
		if (put[i].ino)
			a->slot[slot_of(put[i].ino, ACACHE_SLOTS)] =
				(struct acache_slot){ .ino = put[i].ino, .until_ns = until, .st = *put[i].st };
	uint64_t now = fresh ? a->seq : ACACHE_STALE;
	pthread_mutex_unlock(&a->lock);
	return now;
}

/* acache_after_n with one node's attributes: st as ino's (ino 0: none) */
static void acache_after(struct fusefs *f, uint64_t seq, uint64_t ino, const struct stat *st, uint64_t d1,
			 uint64_t d2)
{
	(void)acache_after_n(f, seq, &(struct acache_put){ ino, st }, 1, d1, d2);
}

/* ino's attributes may have changed (ACACHE_ALL: anyone's) */
static void acache_drop(struct fusefs *f, uint64_t ino)
{
	acache_after(f, 0, 0, NULL, ino, 0);
}

/* The kernel let ino go: its slot may go without a new seq (the kernel
 * asks nothing of a node it drops, and a node id may be reused) */
static void acache_forget(struct fusefs *f, uint64_t ino)
{
	struct acache *a = f->acache;
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	acache_clear_locked(a, ino);
	pthread_mutex_unlock(&a->lock);
}

/* The caller; supplementary groups only where the backend creates as the
 * caller (reading them costs a /proc read). */
static void caller(fuse_req_t req, struct fs_caller *c, int with_groups)
{
	struct fusefs *f = fuse_req_userdata(req);
	const struct fuse_ctx *x = fuse_req_ctx(req);
	memset(c, 0, sizeof *c);
	c->uid = x->uid;
	c->gid = x->gid;
	c->pid = (uint32_t)x->pid;
	c->node_id = f->node_id;
	c->umask = x->umask & 0777; /* FUSE_CAP_DONT_MASK: mknod, mkdir, create */
	/* the groups (a read of /proc/PID/task/TID/status, ~20 µs a create)
	 * only matter to the backend's checks as that caller: root's fsuid
	 * keeps the capabilities that override them, and the caller's kernel
	 * has already stripped a setgid bit it may not set (vfs_prepare_mode) */
	if (with_groups && x->uid != 0) {
		gid_t g[FS_GROUPS_MAX];
		int n = fuse_req_getgroups(req, FS_GROUPS_MAX, g);
		if (n > FS_GROUPS_MAX)
			n = FS_GROUPS_MAX; /* the first ones: as NFS's AUTH_SYS does */
		for (int i = 0; i < n; i++)
			c->groups[i] = g[i];
		c->ngroups = n > 0 ? (uint32_t)n : 0;
	}
}

/* A request enters the backend: f, or NULL when the mount is failed
 * (fusefs_fail). The count rises before the check and the fence is set
 * before the count is read (both sequentially consistent), so
 * fusefs_drained never misses a request that got in. */
static struct fusefs *enter(struct fusefs *f)
{
	atomic_fetch_add_explicit(&f->requests, 1, memory_order_relaxed);
	atomic_fetch_add(&f->busy, 1);
	if (!atomic_load(&f->fail_errno))
		return f;
	atomic_fetch_sub(&f->busy, 1);
	return NULL;
}

/* cleanup of the variable enter() set: on every way out of a handler */
static void leave(struct fusefs **in)
{
	if (*in)
		atomic_fetch_sub(&(*in)->busy, 1);
}

/* Every handler's start: f, the caller c, and the fence's answer (the
 * handler returns at once, the backend untouched) while the mount is
 * failed. */
#define SETUP(groups)                                                            \
	struct fusefs *f = fuse_req_userdata(req);                               \
	struct fs_caller c;                                                      \
	struct fusefs *in_backend __attribute__((cleanup(leave))) = enter(f);    \
	if (!in_backend) {                                                       \
		fuse_reply_err(req, atomic_load(&f->fail_errno));                \
		return;                                                          \
	}                                                                        \
	caller(req, &c, groups)

/* May the kernel cache (parent, name), positive or absent? Tracked first
 * (a superset, for inval_all), then asked of the owner's split. */
static int may_cache_name(struct fusefs *f, uint64_t parent, const char *name)
{
	if (f->cache.entry_timeout <= 0 || !track_name(f, parent, name))
		return 0;
	return !f->cache.split || dirsplit_owner_may_cache(f->cache.split, parent, name);
}

/* An entry reply: the name is cached for entry_timeout, and so are its
 * attributes (attr_timeout) where this mount tracks the nodes it handed
 * out and the backend calls them revocable. A revocation of the name
 * waits for the kernel's lock of the parent, which a lookup holds until
 * the entry is in place, so the name cannot miss it. A revocation of the
 * node finds no inode in the kernel while the reply that creates it is on
 * its way: one that ran before the node was tracked here shows in the
 * attribute cache's seq (the call began at seq), and the reply's
 * attributes are not cached (seq: entry_cache's answer); one after it is
 * retried until the kernel holds the inode or forgot it (inval_node). */
static void entry_param(struct fusefs *f, uint64_t parent, const char *name, const struct fs_entry *e,
			uint64_t seq, struct fuse_entry_param *p)
{
	*p = (struct fuse_entry_param){ .ino = e->ino, .generation = e->generation, .attr = e->attr,
					.attr_timeout = 0, .entry_timeout = f->cache.entry_timeout };
	/* tracked before the reply: the sets stay a superset of the kernel's */
	track_node(f, e->ino);
	if (f->track && e->attr_timeout > 0 && seq != ACACHE_STALE && acache_seq(f) == seq)
		p->attr_timeout = f->cache.attr_timeout;
	if (!may_cache_name(f, parent, name))
		p->entry_timeout = 0;
	track_name_ino(f, parent, name, e->ino);
}

/* The attribute cache after an entry call that began at seq and changed
 * d1 and d2 (acache_after_n); a call that made a name in d1 may tell the
 * directory's attributes after it (parent_attr), which the next path walk
 * through d1 asks for (the kernel dropped its own copy: it changed) */
static uint64_t entry_cache(struct fusefs *f, int rc, const struct fs_entry *e, uint64_t seq, uint64_t d1,
			    uint64_t d2)
{
	int keep = !rc && e->attr_timeout > 0;
	int dir = keep && d1 && d1 != ACACHE_ALL && e->parent_attr.st_ino;
	struct acache_put put[2] = { { keep ? e->ino : 0, &e->attr }, { dir ? d1 : 0, &e->parent_attr } };
	return acache_after_n(f, seq, put, 2, d1, d2);
}

static void reply_entry(fuse_req_t req, int rc, uint64_t parent, const char *name, const struct fs_entry *e,
			uint64_t seq, uint64_t d1, uint64_t d2)
{
	struct fusefs *f = fuse_req_userdata(req);
	seq = entry_cache(f, rc, e, seq, d1, d2);
	if (!rc) /* made here (or found) */
		gone_drop(f, parent, name, 0);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct fuse_entry_param p;
	entry_param(f, parent, name, e, seq, &p);
	if (fuse_reply_entry(req, &p) == -ENOENT)
		track_forget(f, e->ino, 1); /* interrupted: the kernel took no lookup */
}

static void ff_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	SETUP(0);
	if (known_absent(f, parent, name)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct fs_entry e = { 0 };
	uint64_t seq = acache_seq(f);
	int rc = gone_take(f, parent, name) ? -ENOENT : f->ops->lookup(f->ctx, &c, parent, name, &e);
	if (rc == -ENOENT && f->cache.entry_timeout > 0) {
		/* a negative entry: node id 0, kept until revoked by a create */
		struct fuse_entry_param p = { .ino = 0, .entry_timeout = f->cache.entry_timeout };
		if (!may_cache_name(f, parent, name))
			p.entry_timeout = 0;
		track_name_ino(f, parent, name, 0);
		fuse_reply_entry(req, &p);
		return;
	}
	reply_entry(req, rc, parent, name, &e, seq, 0, 0);
}

/* (failed: the backend, and the lookups it counted, may be gone) */
static void ff_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fusefs *f = fuse_req_userdata(req);
	struct fusefs *in_backend __attribute__((cleanup(leave))) = enter(f);
	track_forget(f, ino, nlookup);
	gone_drop(f, ino, NULL, 0);
	known_drop(f, ino, 0);
	xneg_drop(f, ino, 0);
	acache_forget(f, ino);
	if (in_backend)
		f->ops->forget(f->ctx, ino, nlookup);
	fuse_reply_none(req);
}

static void ff_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *fl)
{
	struct fusefs *f = fuse_req_userdata(req);
	struct fusefs *in_backend __attribute__((cleanup(leave))) = enter(f);
	for (size_t i = 0; i < count; i++) {
		track_forget(f, fl[i].ino, fl[i].nlookup);
		gone_drop(f, fl[i].ino, NULL, 0);
		known_drop(f, fl[i].ino, 0);
		xneg_drop(f, fl[i].ino, 0);
		acache_forget(f, fl[i].ino);
		if (in_backend)
			f->ops->forget(f->ctx, fl[i].ino, fl[i].nlookup);
	}
	fuse_reply_none(req);
}

static void ff_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	SETUP(0);
	(void)fi;
	struct stat st;
	if (acache_get(f, ino, &st)) {
		fuse_reply_attr(req, &st, f->cache.attr_timeout);
		return;
	}
	uint64_t seq = acache_seq(f);
	int rc = f->ops->getattr(f->ctx, &c, ino, &st);
	acache_after(f, seq, rc ? 0 : ino, &st, 0, 0);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, f->cache.attr_timeout);
}

static void ff_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	SETUP(0);
	struct stat st;
	uint64_t seq = acache_seq(f);
	/* FUSE_SET_ATTR_* and FS_SET_* share their values (fsops.h) */
	int rc = f->ops->setattr(f->ctx, &c, ino, attr, to_set, fi ? fi->fh : 0, &st);
	acache_after(f, seq, rc ? 0 : ino, &st, ino, 0);
	/* not cached: the kernel takes a setattr reply without checking
	 * whether a revocation overtook it (no attr_version) */
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, 0.0);
}

static void ff_readlink(fuse_req_t req, fuse_ino_t ino)
{
	SETUP(0);
	char buf[FS_PATH_MAX + 1];
	int rc = f->ops->readlink(f->ctx, &c, ino, buf, sizeof buf);
	acache_drop(f, ino); /* its atime */
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, buf);
}

static void ff_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	SETUP(1);
	struct fs_entry e = { 0 };
	uint64_t seq = acache_seq(f);
	known_made(f, parent, name);
	reply_entry(req, f->ops->mknod(f->ctx, &c, parent, name, mode, rdev, &e), parent, name, &e, seq, parent, 0);
}

static void ff_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	SETUP(1);
	struct fs_entry e = { 0 };
	uint64_t seq = acache_seq(f), kseq = known_seq(f);
	known_made(f, parent, name);
	int rc = f->ops->mkdir(f->ctx, &c, parent, name, mode, &e);
	if (!rc && e.dir_empty)
		known_learn(f, e.ino, kseq);
	reply_entry(req, rc, parent, name, &e, seq, parent, 0);
}

/* unlink, rmdir: the parent and the node behind the name changed; when
 * the backend does not tell which node that was, every slot goes. The
 * parent's attributes after it, if told, answer the next path walk's
 * getattr of the directory. */
static void ff_remove(fuse_req_t req, fuse_ino_t parent, const char *name, int dir)
{
	SETUP(0);
	struct fs_removed gone = { 0 };
	uint64_t seq = acache_seq(f), gseq = gone_seq(f);
	int rc = dir ? f->ops->rmdir(f->ctx, &c, parent, name, &gone)
		     : f->ops->unlink(f->ctx, &c, parent, name, &gone);
	if (!rc)
		gone_learn(f, parent, name, gseq);
	int told = !rc && gone.dir_attr.st_ino;
	uint64_t d1 = ACACHE_ALL, d2 = 0;
	if (told && gone.ino) {
		d1 = parent;
		d2 = gone.ino;
	}
	acache_after(f, seq, told ? parent : 0, &gone.dir_attr, d1, d2);
	if (!rc && f->cache.split) /* the kernel expires the entry itself */
		dirsplit_owner_dropped(f->cache.split, parent, name);
	fuse_reply_err(req, -rc);
}

static void ff_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	ff_remove(req, parent, name, 0);
}

static void ff_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	ff_remove(req, parent, name, 1);
}

static void ff_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	SETUP(1);
	struct fs_entry e = { 0 };
	uint64_t seq = acache_seq(f);
	known_made(f, parent, name);
	reply_entry(req, f->ops->symlink(f->ctx, &c, link, parent, name, &e), parent, name, &e, seq, parent, 0);
}

/* A rename that began at gseq (gone_seq) succeeded. The kernel moves the
 * name's entry with its timeout to the new name (both ways for
 * RENAME_EXCHANGE): what it may cache now, and what is gone. The names
 * that landed where clients cache names (strays) are in stray[], for
 * ff_rename to revoke once the rename is answered. */
static int renamed(struct fusefs *f, uint64_t parent, const char *name, uint64_t newparent, const char *newname,
		   unsigned flags, uint64_t gseq, int stray[2])
{
	int both = !!(flags & RENAME_EXCHANGE);
	stray[0] = stray[1] = 0;
	gone_drop(f, newparent, newname, 0);
	if (!both)
		gone_learn(f, parent, name, gseq);
	(void)track_name(f, newparent, newname);
	if (both)
		(void)track_name(f, parent, name);
	if (!f->cache.split)
		return 0;
	stray[0] = dirsplit_owner_moved(f->cache.split, newparent, newname);
	if (both)
		stray[1] = dirsplit_owner_moved(f->cache.split, parent, name);
	else
		dirsplit_owner_dropped(f->cache.split, parent, name);
	return stray[0] || stray[1];
}

static void ff_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	SETUP(0);
	uint64_t gseq = gone_seq(f);
	known_made(f, newparent, newname);
	int rc = f->ops->rename(f->ctx, &c, parent, name, newparent, newname, flags);
	acache_drop(f, ACACHE_ALL); /* both parents, the moved and the replaced node */
	int stray[2];
	if (rc || !renamed(f, parent, name, newparent, newname, flags, gseq, stray)) {
		fuse_reply_err(req, -rc);
		return;
	}
	/* the names are the request's: copied before the reply frees them */
	char n0[FS_NAME_MAX + 1], n1[FS_NAME_MAX + 1];
	snprintf(n0, sizeof n0, "%s", newname);
	snprintf(n1, sizeof n1, "%s", name);
	fuse_reply_err(req, 0);
	/* the kernel lets the directories go once answered: revoke now */
	if (stray[0])
		dirsplit_revoke_name(f->cache.split, newparent, n0);
	if (stray[1])
		dirsplit_revoke_name(f->cache.split, parent, n1);
}

static void ff_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	SETUP(0);
	struct fs_entry e = { 0 };
	uint64_t seq = acache_seq(f);
	known_made(f, newparent, newname);
	reply_entry(req, f->ops->link(f->ctx, &c, ino, newparent, newname, &e), newparent, newname, &e, seq, newparent,
		    ino);
}

/* How an open file uses the page cache: pages another node's write made
 * stale were revoked before that write returned, so what the cache holds
 * is current and survives the open (keep_cache); shared mmap needs the
 * cache. Not for a file another node has open (FS_FH_UNCACHED, fsops.h). */
static void set_open_cache(const struct fusefs *f, struct fuse_file_info *fi, uint64_t fh)
{
	fi->fh = fh;
	fi->direct_io = !!(fh & FS_FH_UNCACHED);
	fi->keep_cache = fi->direct_io ? 0 : f->cache.keep_cache;
}

static void ff_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	SETUP(0);
	uint64_t fh;
	int rc = f->ops->open(f->ctx, &c, ino, fi->flags, &fh);
	if (fi->flags & O_TRUNC)
		acache_drop(f, ino);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	set_open_cache(f, fi, fh);
	if (fuse_reply_open(req, fi) == -ENOENT) /* the opener was interrupted */
		f->ops->release(f->ctx, ino, fh);
}

static void ff_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	SETUP(1);
	struct fs_entry e = { 0 };
	uint64_t fh;
	uint64_t seq = acache_seq(f), xseq = xneg_seq(f);
	known_made(f, parent, name);
	int rc = f->ops->create(f->ctx, &c, parent, name, mode, fi->flags, &e, &fh);
	seq = entry_cache(f, rc, &e, seq, parent, 0);
	/* A file made now has no capability, and the kernel asks before the
	 * first write. (A create that found another node's new file may open
	 * one that got a capability meanwhile: the owner's own kernel drops it
	 * at the first write anyway, as for every write: "What a node caches".) */
	if (!rc)
		xneg_learn(f, e.ino, xneg_bit("security.capability"), xseq);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	set_open_cache(f, fi, fh);
	struct fuse_entry_param p;
	entry_param(f, parent, name, &e, seq, &p);
	if (fuse_reply_create(req, &p, fi) == -ENOENT) {
		track_forget(f, e.ino, 1);
		f->ops->release(f->ctx, e.ino, fh);
		f->ops->forget(f->ctx, e.ino, 1);
	}
}

static void ff_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	SETUP(0);
	if (size > FS_IO_MAX)
		size = FS_IO_MAX;
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t r = f->ops->read(f->ctx, &c, ino, fi->fh, buf, size, (uint64_t)off);
	acache_drop(f, ino); /* its atime */
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_buf(req, buf, (size_t)r);
	free(buf);
}

static void ff_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	SETUP(0);
	ssize_t r = f->ops->write(f->ctx, &c, ino, fi->fh, buf, size, (uint64_t)off);
	/* its size and times changed; the kernel asks getattr when someone
	 * wants them, not before (fsops.h: why the backend does not read them) */
	acache_drop(f, ino);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_write(req, (size_t)r);
}

static void ff_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	SETUP(0);
	fuse_reply_err(req, -f->ops->flush(f->ctx, &c, ino, fi->fh, fi->lock_owner));
}

static void ff_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	SETUP(0);
	if (fi->flock_release) {
		/* the last close of an open file drops its flock (flock(2)) */
		struct fs_lock lk = { .start = 0, .end = UINT64_MAX, .type = F_UNLCK, .owner = fi->lock_owner,
				      .node_id = f->node_id, .pid = c.pid, .flock = 1 };
		(void)f->ops->setlk(f->ctx, &c, ino, fi->fh, &lk, 0, 0);
	}
	fuse_reply_err(req, -f->ops->release(f->ctx, ino, fi->fh));
}

static void ff_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	SETUP(0);
	fuse_reply_err(req, -f->ops->fsync(f->ctx, &c, ino, fi->fh, datasync));
}

static void ff_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	SETUP(0);
	uint64_t fh;
	int rc = f->ops->opendir(f->ctx, &c, ino, &fh);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = fh;
	if (fuse_reply_open(req, fi) == -ENOENT)
		f->ops->releasedir(f->ctx, ino, fh);
}

struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
};

static int dir_fill(void *arg, const char *name, uint64_t ino, mode_t type, uint64_t next)
{
	struct dirbuf *d = arg;
	struct stat st = { .st_ino = ino, .st_mode = type };
	size_t need = fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used, name, &st, (off_t)next);
	if (need > d->size - d->used)
		return 1;
	d->used += need;
	return 0;
}

static void ff_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	SETUP(0);
	struct dirbuf d = { .req = req, .buf = malloc(size ? size : 1), .size = size };
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int rc = f->ops->readdir(f->ctx, &c, ino, fi->fh, (uint64_t)off, dir_fill, &d);
	acache_drop(f, ino); /* its atime */
	/* entries already taken are returned; the error shows on the next call */
	if (rc && !d.used)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

/* READDIRPLUS: each entry is an entry reply (entry_param: tracked, its
 * name and attributes cached as a lookup's would be); the kernel counts a
 * lookup of every entry with a node id it takes, and forgets those it
 * cannot link. `taken` holds them, to forget if the reply goes nowhere.
 * A batch whose names the kernel all holds with their nodes (held_name: a
 * listing read again, `ls -l` twice) is answered with names only: looking
 * them up again would cost the backend a lookup each for what the kernel
 * has. */
struct dirplus {
	fuse_req_t req;
	struct fusefs *f;
	uint64_t parent;
	uint64_t seq, xseq; /* the attribute cache's and xneg's, when the call began */
	char *buf;
	size_t size, used;
	uint64_t *taken;
	size_t ntaken;
	size_t unheld; /* names listed that the kernel may not hold (held_name) */
	uint64_t next; /* the offset after the last entry added */
};

static int dir_fill_plus(void *arg, const char *name, const struct fs_entry *e, uint64_t next)
{
	struct dirplus *d = arg;
	struct fusefs *f = d->f;
	size_t need = fuse_add_direntry_plus(d->req, NULL, 0, name, NULL, 0);
	if (need > d->size - d->used)
		return 1;
	struct fuse_entry_param p = { .attr = e->attr };
	if (e->ino) {
		struct acache_put put = { e->attr_timeout > 0 ? e->ino : 0, &e->attr };
		entry_param(f, d->parent, name, e, acache_after_n(f, d->seq, &put, 1, 0, 0), &p);
		gone_drop(f, d->parent, name, 0);
		xneg_learn(f, e->ino, e->xattr_absent & ((1u << FS_XATTR_COMMON) - 1), d->xseq);
		d->taken[d->ntaken++] = e->ino;
	}
	fuse_add_direntry_plus(d->req, d->buf + d->used, d->size - d->used, name, &p, (off_t)next);
	d->used += need;
	d->next = next;
	return 0;
}

/* names only (node id 0: no lookup), counting those the kernel may not
 * hold (for an owner that offers no READDIRPLUS: all there is) */
static int dir_fill_names(void *arg, const char *name, uint64_t ino, mode_t type, uint64_t next)
{
	struct dirplus *d = arg;
	struct fs_entry e = { .attr = { .st_ino = ino, .st_mode = type } };
	int rc = dir_fill_plus(arg, name, &e, next);
	if (!rc && strcmp(name, ".") && strcmp(name, "..") && !held_name(d->f, d->parent, name))
		d->unheld++;
	return rc;
}

static void ff_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	SETUP(0);
	size_t least = fuse_add_direntry_plus(req, NULL, 0, "", NULL, 0);
	struct dirplus d = { .req = req, .f = f, .parent = ino, .seq = acache_seq(f), .xseq = xneg_seq(f), .size = size,
			     .buf = malloc(size ? size : 1), .taken = malloc((size / least + 1) * sizeof *d.taken) };
	int rc = -ENOMEM;
	/* the names first: a batch the kernel holds every name of (a listing
	 * again) goes without lookups, as a READDIR would; not after a batch
	 * that needed them (plus_dir) */
	if (d.buf && d.taken && off && atomic_load(&f->plus_dir) == ino && atomic_load(&f->plus_next) == (uint64_t)off)
		rc = 0, d.unheld = 1;
	else if (d.buf && d.taken)
		rc = f->ops->readdir(f->ctx, &c, ino, fi->fh, (uint64_t)off, dir_fill_names, &d);
	if (!rc && d.unheld) {
		d.used = 0;
		rc = f->ops->readdirplus(f->ctx, &c, ino, fi->fh, (uint64_t)off, size, dir_fill_plus, &d);
		if (!rc && d.used) {
			atomic_store(&f->plus_dir, ino);
			atomic_store(&f->plus_next, d.next);
		}
		if (rc == -ENOSYS && !d.used)
			rc = f->ops->readdir(f->ctx, &c, ino, fi->fh, (uint64_t)off, dir_fill_names, &d);
	}
	acache_drop(f, ino); /* its atime */
	/* entries already taken are returned; the error shows on the next call */
	if (rc && !d.used) {
		fuse_reply_err(req, -rc);
	} else if (fuse_reply_buf(req, d.buf, d.used) == -ENOENT) {
		for (size_t i = 0; i < d.ntaken; i++) { /* interrupted: the kernel took no lookup */
			track_forget(f, d.taken[i], 1);
			f->ops->forget(f->ctx, d.taken[i], 1);
		}
	}
	free(d.buf);
	free(d.taken);
}

static void ff_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	SETUP(0);
	(void)c;
	fuse_reply_err(req, -f->ops->releasedir(f->ctx, ino, fi->fh));
}

static void ff_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	SETUP(0);
	fuse_reply_err(req, -f->ops->fsyncdir(f->ctx, &c, ino, fi->fh, datasync));
}

static void ff_statfs(fuse_req_t req, fuse_ino_t ino)
{
	SETUP(0);
	struct statvfs sv;
	int rc = f->ops->statfs(f->ctx, &c, ino, &sv);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_statfs(req, &sv);
}

static void ff_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
			int flags)
{
	SETUP(0);
	int rc = f->ops->setxattr(f->ctx, &c, ino, name, value, size, flags);
	xneg_drop(f, ino, 1); /* this mount's own change: no revocation comes */
	acache_drop(f, ino);
	fuse_reply_err(req, -rc);
}

/* getxattr/listxattr share the size-probe protocol: size 0 asks for the
 * size needed (fuse_reply_xattr), else the value (fuse_reply_buf). */
static void reply_xattr(fuse_req_t req, ssize_t r, const char *buf, size_t size)
{
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else if (!size)
		fuse_reply_xattr(req, (size_t)r);
	else
		fuse_reply_buf(req, buf, (size_t)r);
}

static void ff_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	SETUP(0);
	unsigned bit = xneg_bit(name);
	uint64_t seq = 0;
	if (xneg_known(f, ino, bit, &seq)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (size > FS_XATTR_MAX)
		size = FS_XATTR_MAX;
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t r = f->ops->getxattr(f->ctx, &c, ino, name, buf, size);
	if (r == -ENODATA)
		xneg_learn(f, ino, bit, seq);
	reply_xattr(req, r, buf, size);
	free(buf);
}

static void ff_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	SETUP(0);
	if (size > FS_XATTR_MAX)
		size = FS_XATTR_MAX;
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_xattr(req, f->ops->listxattr(f->ctx, &c, ino, buf, size), buf, size);
	free(buf);
}

static void ff_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	SETUP(0);
	int rc = f->ops->removexattr(f->ctx, &c, ino, name);
	xneg_drop(f, ino, 1);
	acache_drop(f, ino);
	fuse_reply_err(req, -rc);
}

static void ff_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	SETUP(0);
	int rc = f->ops->fallocate(f->ctx, &c, ino, fi->fh, mode, (uint64_t)off, (uint64_t)len);
	acache_drop(f, ino);
	fuse_reply_err(req, -rc);
}

static void ff_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	SETUP(0);
	int64_t r = f->ops->lseek(f->ctx, &c, ino, fi->fh, off, whence);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_lseek(req, r);
}

/* ---- locks ------------------------------------------------------------ */

static void to_fs_lock(const struct fusefs *f, const struct fs_caller *c, const struct flock *fl, uint64_t owner,
		       struct fs_lock *lk)
{
	memset(lk, 0, sizeof *lk);
	lk->start = (uint64_t)fl->l_start;
	lk->end = fl->l_len ? (uint64_t)(fl->l_start + fl->l_len - 1) : UINT64_MAX;
	lk->type = fl->l_type;
	lk->owner = owner;
	lk->node_id = f->node_id;
	lk->pid = fl->l_pid ? (uint32_t)fl->l_pid : c->pid;
}

static void ff_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *fl)
{
	SETUP(0);
	struct fs_lock lk;
	to_fs_lock(f, &c, fl, fi->lock_owner, &lk);
	int rc = f->ops->getlk(f->ctx, &c, ino, fi->fh, &lk);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fl->l_type = (short)lk.type;
	if (lk.type != F_UNLCK) {
		fl->l_start = (off_t)lk.start;
		fl->l_len = lk.end == UINT64_MAX ? 0 : (off_t)(lk.end - lk.start + 1);
		fl->l_pid = (pid_t)lk.pid;
	}
	fuse_reply_lock(req, fl);
}

struct waiting {
	struct fusefs *f;
	struct fs_caller c;
	uint64_t token;
};

/* runs on another worker when the kernel sends INTERRUPT for the request */
static void lock_interrupted(fuse_req_t req, void *arg)
{
	struct waiting *w = arg;
	(void)req;
	w->f->ops->interrupt(w->f->ctx, &w->c, w->token);
}

static void set_lock(fuse_req_t req, struct fusefs *f, const struct fs_caller *c, fuse_ino_t ino,
		     struct fuse_file_info *fi, const struct fs_lock *lk, int wait)
{
	struct waiting w = { .f = f, .c = *c, .token = atomic_fetch_add(&f->next_token, 1) };
	if (wait)
		fuse_req_interrupt_func(req, lock_interrupted, &w);
	int rc = f->ops->setlk(f->ctx, c, ino, fi->fh, lk, wait, w.token);
	/* after this, the callback cannot run any more: w may go */
	if (wait)
		fuse_req_interrupt_func(req, NULL, NULL);
	fuse_reply_err(req, -rc);
}

static void ff_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *fl, int sleep)
{
	SETUP(0);
	struct fs_lock lk;
	to_fs_lock(f, &c, fl, fi->lock_owner, &lk);
	set_lock(req, f, &c, ino, fi, &lk, sleep);
}

static void ff_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	SETUP(0);
	struct fs_lock lk = { .start = 0, .end = UINT64_MAX, .owner = fi->lock_owner, .node_id = f->node_id,
			      .pid = c.pid, .flock = 1 };
	lk.type = (op & LOCK_SH) ? F_RDLCK : (op & LOCK_EX) ? F_WRLCK : F_UNLCK;
	set_lock(req, f, &c, ino, fi, &lk, !(op & LOCK_NB));
}

static void ff_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fusefs *f = userdata;
	conn->max_write = FS_IO_MAX;
	conn->want |= conn->capable & (FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS | FUSE_CAP_ATOMIC_O_TRUNC);
	/* POSIX ACLs as the kernel filesystem has them (acl(5)): the kernel
	 * checks permissions with the ACL it fetched (GETXATTR, kept until
	 * the node is revoked or changed here), and leaves the umask to the
	 * backend, whose filesystem ignores it under a default ACL. Both or
	 * neither: the kernel masks by itself without DONT_MASK. */
	if ((conn->capable & (FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK)) == (FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK))
		conn->want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
	/* the kernel must clear setuid bits on write: the backend writes as
	 * root, which keeps them */
	conn->want &= ~(FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_EXPORT_SUPPORT);
	/* Pages are revoked by whoever changes them ("What a node caches"),
	 * so the kernel need not drop a file's pages whenever a getattr shows
	 * a new mtime: that mtime is mostly this node's own write, and SQLite
	 * would read back every page it had just written. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* READDIRPLUS for every listing (not only the first batch, as the
	 * kernel's auto mode would): where the backend offers it, and the
	 * mount tracks what it hands out and caches names */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	if (!f->ops->readdirplus || !f->track || f->cache.entry_timeout <= 0)
		conn->want &= ~FUSE_CAP_READDIRPLUS;
}

static const struct fuse_lowlevel_ops ll_ops = {
	.init = ff_init,
	.lookup = ff_lookup,
	.forget = ff_forget,
	.forget_multi = ff_forget_multi,
	.getattr = ff_getattr,
	.setattr = ff_setattr,
	.readlink = ff_readlink,
	.mknod = ff_mknod,
	.mkdir = ff_mkdir,
	.unlink = ff_unlink,
	.rmdir = ff_rmdir,
	.symlink = ff_symlink,
	.rename = ff_rename,
	.link = ff_link,
	.open = ff_open,
	.create = ff_create,
	.read = ff_read,
	.write = ff_write,
	.flush = ff_flush,
	.release = ff_release,
	.fsync = ff_fsync,
	.opendir = ff_opendir,
	.readdir = ff_readdir,
	.readdirplus = ff_readdirplus,
	.releasedir = ff_releasedir,
	.fsyncdir = ff_fsyncdir,
	.statfs = ff_statfs,
	.setxattr = ff_setxattr,
	.getxattr = ff_getxattr,
	.listxattr = ff_listxattr,
	.removexattr = ff_removexattr,
	.fallocate = ff_fallocate,
	.lseek = ff_lseek,
	.getlk = ff_getlk,
	.setlk = ff_setlk,
	.flock = ff_flock,
};

/* ---- notify ----------------------------------------------------------- */

/* The lookups the kernel holds of ino, by this mount's count (cache.track) */
static uint64_t track_lookups(struct fusefs *f, uint64_t ino)
{
	struct track *t = f->track;
	uint64_t n = 0;
	pthread_mutex_lock(&t->lock);
	for (struct tnode *x = t->nodes[ino % TNODE_BUCKETS]; x; x = x->next)
		if (x->ino == ino)
			n = x->nlookup;
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* Revoke ino's attributes (off < 0) or pages (libfuse's meaning). An
 * entry reply whose attributes the kernel caches (entry_param) may have
 * been handed out with the inode not made yet: the kernel makes it as soon
 * as the requester runs again, or sends a forget if it cannot. So while
 * this mount counts lookups of ino and the kernel finds no inode, the
 * revocation is retried; FUSEFS_INVAL_WAIT_NS bounds it (a forget stuck
 * behind a request that waits on this caller would otherwise hang it). */
#define FUSEFS_INVAL_WAIT_NS 1000000000ull
static void inval_node(struct fusefs *f, uint64_t ino, int64_t off, int64_t len)
{
	int rc = fuse_lowlevel_notify_inval_inode(f->se, ino, off, len);
	if (rc != -ENOENT || !f->track || f->cache.attr_timeout <= 0)
		return;
	uint64_t t0 = mono_ns();
	long pause_ns = 1000;
	while (rc == -ENOENT && track_lookups(f, ino)) {
		if (mono_ns() - t0 > FUSEFS_INVAL_WAIT_NS) {
			log_warn("dipolefs: node %#llx: the kernel neither made nor forgot it within %.1f s of a "
				 "revocation; its attributes may be stale until it asks again",
				 (unsigned long long)ino, FUSEFS_INVAL_WAIT_NS / 1e9);
			return;
		}
		nanosleep(&(struct timespec){ 0, pause_ns }, NULL);
		pause_ns = pause_ns < 1000000 ? pause_ns * 2 : pause_ns;
		rc = fuse_lowlevel_notify_inval_inode(f->se, ino, off, len);
	}
}

static void nt_inode(void *arg, uint64_t ino, int64_t off, int64_t len)
{
	struct fusefs *f = arg;
	/* fsops: len 0 = attributes only; libfuse: off < 0 = attributes only,
	 * len 0 = to the end */
	if (!len)
		off = -1;
	else if (len == INT64_MAX)
		len = 0;
	known_drop(f, ino, 1); /* first: a name may be made there once this returns */
	xneg_drop(f, ino, 1);
	acache_drop(f, ino);
	inval_node(f, ino, off, len);
}

static void nt_entry(void *arg, uint64_t parent, const char *name)
{
	struct fusefs *f = arg;
	gone_drop(f, parent, name, 1);
	untrack_name(f, parent, name); /* first: a lookup after this is tracked again */
	(void)fuse_lowlevel_notify_inval_entry(f->se, parent, name, strlen(name));
}

/* Drop every tracked name and every tracked node's attributes and pages.
 * The names are taken out of the set first (as nt_entry does); the nodes
 * stay tracked (the kernel keeps its lookups). The caller makes sure no
 * reply it must not cache arrives meanwhile (remote.c: none is answered
 * through a new connection before this returns). */
static void nt_all(void *arg)
{
	struct fusefs *f = arg;
	struct track *t = f->track;
	struct tname *names = NULL;
	gone_drop(f, 0, NULL, 1);
	known_drop(f, 0, 1);
	xneg_drop(f, 0, 1);
	acache_drop(f, ACACHE_ALL);
	if (!t) { /* names are not cached (the owner's own mount): its root's attributes */
		(void)fuse_lowlevel_notify_inval_inode(f->se, FUSE_ROOT_ID, 0, 0);
		return;
	}
	pthread_mutex_lock(&t->lock);
	size_t nn = 0, cap = t->nnodes + 1;
	uint64_t *inos = malloc(cap * sizeof *inos);
	if (inos) {
		inos[nn++] = FUSE_ROOT_ID;
		for (unsigned i = 0; i < TNODE_BUCKETS; i++)
			for (struct tnode *n = t->nodes[i]; n && nn < cap; n = n->next)
				if (n->ino != FUSE_ROOT_ID)
					inos[nn++] = n->ino;
	}
	for (unsigned i = 0; i < TNAME_BUCKETS; i++) {
		while (t->names[i]) {
			struct tname *n = t->names[i];
			t->names[i] = n->next;
			n->next = names;
			names = n;
		}
	}
	t->nnames = 0;
	pthread_mutex_unlock(&t->lock);
	for (struct tname *n = names, *next; n; n = next) {
		next = n->next;
		(void)fuse_lowlevel_notify_inval_entry(f->se, n->parent, n->name, n->len);
		free(n);
	}
	for (size_t i = 0; i < nn; i++)
		inval_node(f, inos[i], 0, 0); /* attributes and all pages */
	if (!inos) /* out of memory: at least the kernel's view of the root */
		(void)fuse_lowlevel_notify_inval_inode(f->se, FUSE_ROOT_ID, 0, 0);
	free(inos);
}

uint64_t fusefs_requests(struct fusefs *f)
{
	return f ? atomic_load_explicit(&f->requests, memory_order_relaxed) : 0;
}

const struct fs_notify *fusefs_notify(struct fusefs *f)
{
	return &f->notify;
}

const struct fusefs_cache fusefs_cache_default = {
	.entry_timeout = FUSEFS_CACHE_TIMEOUT, .attr_timeout = FUSEFS_CACHE_TIMEOUT, .keep_cache = 1,
};

/* ---- life ------------------------------------------------------------- */

static void fusefs_free(struct fusefs *f)
{
	track_free(f->track);
	if (f->acache) {
		pthread_mutex_destroy(&f->acache->lock);
		free(f->acache);
	}
	if (f->xneg) {
		pthread_mutex_destroy(&f->xneg->lock);
		free(f->xneg);
	}
	if (f->gone) {
		pthread_mutex_destroy(&f->gone->lock);
		free(f->gone);
	}
	if (f->known) {
		pthread_mutex_destroy(&f->known->lock);
		free(f->known);
	}
	free(f);
}

int fusefs_start(struct fusefs **out, const char *mountpoint, const char *fsname, const struct fs_ops *ops,
		 void *ctx, uint32_t node_id, const struct fusefs_cache *cache, int fuse_fd, char *err)
{
	char opts[512];
	struct stat st;
	if (strchr(fsname, ',') || strlen(mountpoint) >= FS_PATH_MAX) {
		snprintf(err, 256, "bad file system name or mount point");
		return -EINVAL;
	}
	/* an adopted mount: mount.dipole checked, and a lookup could wait
	 * for the automount this mount is for */
	if (fuse_fd <= 0 && (stat(mountpoint, &st) || !S_ISDIR(st.st_mode))) {
		snprintf(err, 256, "mount point %s is not a directory", mountpoint);
		return -ENOTDIR;
	}
	struct fusefs *f = calloc(1, sizeof *f);
	if (!f)
		return -ENOMEM;
	f->ops = ops;
	f->ctx = ctx;
	f->node_id = node_id;
	f->next_token = 1;
	f->cache = cache ? *cache : fusefs_cache_default;
	if (f->cache.attr_timeout > 0 && (f->xneg = calloc(1, sizeof *f->xneg)))
		pthread_mutex_init(&f->xneg->lock, NULL);
	if (f->cache.attr_timeout > 0 && (f->acache = calloc(1, sizeof *f->acache)))
		pthread_mutex_init(&f->acache->lock, NULL);
	/* a client's mount: names are tracked and revoked by the owner (the
	 * owner's own lookups are local) */
	if (f->cache.track && !f->cache.split && f->cache.entry_timeout > 0 && (f->gone = calloc(1, sizeof *f->gone)))
		pthread_mutex_init(&f->gone->lock, NULL);
	if (f->cache.track && !f->cache.split && (f->known = calloc(1, sizeof *f->known)))
		pthread_mutex_init(&f->known->lock, NULL);
	f->notify = (struct fs_notify){
		.inval_inode = nt_inode, .inval_entry = nt_entry, .inval_all = nt_all, .arg = f
	};
	if (f->cache.track) {
		if (!(f->track = calloc(1, sizeof *f->track))) {
			snprintf(err, 256, "out of memory");
			fusefs_free(f);
			return -ENOMEM;
		}
		pthread_mutex_init(&f->track->lock, NULL);
	}
	snprintf(opts, sizeof opts, "default_permissions,allow_other,fsname=%s,subtype=dipole", fsname);
	char *argv[] = { "dipole", "-o", opts, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	f->se = fuse_session_new(&args, &ll_ops, sizeof ll_ops, f);
	fuse_opt_free_args(&args);
	if (!f->se) {
		snprintf(err, 256, "cannot initialise FUSE (is /dev/fuse present and the fuse module loaded?)");
		fusefs_free(f);
		return -EIO;
	}
	int rc = fusemount_start(&f->fm, f->se, mountpoint, fuse_fd, err);
	if (rc) {
		fuse_session_destroy(f->se);
		fusefs_free(f);
		return rc;
	}
	/* a sequential read in requests as large as a write's (max_pages
	 * follows max_write, ff_init): one round trip per MiB on a client,
	 * not eight; without sysfs the kernel's 128 KiB stay */
	(void)fusemount_set_readahead(f->fm, FS_IO_MAX / 1024);
	*out = f;
	return 0;
}

void fusefs_fail(struct fusefs *f, int err)
{
	if (f)
		atomic_store(&f->fail_errno, err > 0 ? err : EIO);
}

int fusefs_drained(struct fusefs *f)
{
	return !f || atomic_load(&f->busy) == 0;
}

void fusefs_gone(struct fusefs *f)
{
	if (f)
		fusemount_gone(f->fm);
}

void fusefs_stop(struct fusefs *f)
{
	if (!f)
		return;
	/* lazy, and aborted: processes with files open get ENOTCONN */
	fusemount_stop(f->fm, 1);
	fuse_session_destroy(f->se);
	fusefs_free(f);
}

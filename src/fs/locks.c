/* locks — the cluster's lock table (locks.h says the rules). One mutex
 * (t->mu) protects everything below it; a waiter's cond is waited on with
 * t->mu. */
#include "locks.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define LOCKS_BUCKETS 256
/* bounds the deadlock search: the graph is walked without a visited set,
 * so a pathological fan-out must not stall every locker under t->mu */
#define LOCKS_DEADLK_STEPS 4096
/* interrupts that came before their request (locks_interrupt): kept this
 * long, at most this many; a request reaches the table within
 * milliseconds of its interrupt, and a stale one costs one spurious EINTR */
#define LOCKS_EARLY_NS (10ull * 1000000000u)
#define LOCKS_EARLY_MAX 64

struct lk_range {              /* one POSIX lock */
	struct lk_range *next;     /* in lk_inode.posix, sorted by start */
	uint64_t start, end;       /* inclusive */
	uint64_t owner, fh;        /* fh: the open file it was last set through */
	uint32_t node, pid;
	int type;                  /* F_RDLCK or F_WRLCK */
};

struct lk_flock {
	struct lk_flock *next;
	uint64_t fh;               /* the owner, with node */
	uint32_t node, pid;
	int type;
};

/* A lock of a node that left, kept for its reclaim (locks_set_keep) until
 * its node says it is done, or it expires; broken once a conflicting lock
 * was granted to someone else. */
struct lk_stale {
	struct lk_stale *next;
	uint64_t start, end;       /* POSIX range; a flock: 0..UINT64_MAX */
	uint64_t owner, fh;        /* the POSIX owner; the flock's open file */
	uint64_t until;            /* now_ns() it expires at */
	uint32_t node;
	int type, flock;
	int broken;                /* a conflicting lock was granted since */
};

struct lk_inode {
	struct lk_inode *next;     /* in the hash bucket */
	uint64_t ino;
	struct lk_range *posix;
	struct lk_flock *flocks;
	struct lk_stale *stale;
	unsigned nwaiters;         /* waiters pointing here: keeps it allocated */
	int one_node;              /* LOCKS_ONE_NODE: a shared-memory index */
};

struct lk_waiter {             /* lives on the waiting thread's stack */
	struct lk_waiter *next;    /* t->waiters */
	struct lk_inode *in;
	struct fs_lock req;
	uint64_t fh, token;
	uint64_t shm_ino;          /* the request's WAL index, or 0 */
	int cancel;                /* 0, or the errno the wait ends with */
	pthread_cond_t cv;
};

struct locks {
	pthread_mutex_t mu;
	pthread_condattr_t cattr;  /* CLOCK_MONOTONIC, for grace deadlines */
	struct lk_inode *bucket[LOCKS_BUCKETS];
	struct lk_waiter *waiters;
	size_t count;              /* lk_range + lk_flock records */
	int grace;
	uint64_t grace_until;      /* now_ns() */
	uint64_t expect, done;     /* bit n: node n is to reclaim / said it is done */
	uint64_t keep_ns;          /* how long a gone node's locks stay reclaimable */
	uint64_t reclaimed, refused; /* reclaims granted and refused, since open */
	struct lk_early {          /* interrupts ahead of their request */
		uint32_t node;
		uint64_t token, at;    /* at: now_ns() */
	} early[LOCKS_EARLY_MAX];
	unsigned nearly;
};

int locks_open(struct locks **out)
{
	struct locks *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	int rc = pthread_mutex_init(&t->mu, NULL);
	if (rc) {
		free(t);
		return -rc;
	}
	pthread_condattr_init(&t->cattr);
	pthread_condattr_setclock(&t->cattr, CLOCK_MONOTONIC);
	*out = t;
	return 0;
}

void locks_close(struct locks *t)
{
	if (!t)
		return;
	for (size_t b = 0; b < LOCKS_BUCKETS; b++) {
		struct lk_inode *in = t->bucket[b];
		while (in) {
			struct lk_inode *n = in->next;
			for (struct lk_range *r = in->posix, *rn; r; r = rn) {
				rn = r->next;
				free(r);
			}
			for (struct lk_flock *f = in->flocks, *fn; f; f = fn) {
				fn = f->next;
				free(f);
			}
			for (struct lk_stale *x = in->stale, *xn; x; x = xn) {
				xn = x->next;
				free(x);
			}
			free(in);
			in = n;
		}
	}
	pthread_condattr_destroy(&t->cattr);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

/* ---- inodes ---- */

static size_t bucket_of(uint64_t ino) { return (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 56) % LOCKS_BUCKETS; }

static struct lk_inode *inode_find(struct locks *t, uint64_t ino)
{
	for (struct lk_inode *in = t->bucket[bucket_of(ino)]; in; in = in->next)
		if (in->ino == ino)
			return in;
	return NULL;
}

static struct lk_inode *inode_get(struct locks *t, uint64_t ino)
{
	struct lk_inode *in = inode_find(t, ino);
	if (in)
		return in;
	in = calloc(1, sizeof *in);
	if (!in)
		return NULL;
	in->ino = ino;
	in->next = t->bucket[bucket_of(ino)];
	t->bucket[bucket_of(ino)] = in;
	return in;
}

/* frees in once nothing refers to it, so the table's size follows the
 * files locked now, not every file ever locked */
static void inode_put(struct locks *t, struct lk_inode *in)
{
	if (in->posix || in->flocks || in->stale || in->nwaiters)
		return;
	struct lk_inode **pp = &t->bucket[bucket_of(in->ino)];
	while (*pp != in)
		pp = &(*pp)->next;
	*pp = in->next;
	free(in);
}

/* Something on `in` was unlocked or downgraded (in == NULL: anywhere):
 * every waiter there, or on the database `in` is the WAL index of,
 * re-checks. */
static void wake(struct locks *t, struct lk_inode *in)
{
	for (struct lk_waiter *w = t->waiters; w; w = w->next)
		if (!in || w->in == in || (w->shm_ino && w->shm_ino == in->ino))
			pthread_cond_signal(&w->cv);
}

static int grace_now(struct locks *t)
{
	if (t->grace && now_ns() >= t->grace_until)
		t->grace = 0;
	return t->grace;
}

/* ---- interrupts ahead of their request ---- */

static void early_del(struct locks *t, unsigned i)
{
	t->early[i] = t->early[--t->nearly];
}

static void early_add(struct locks *t, uint32_t node, uint64_t token)
{
	uint64_t now = now_ns();
	for (unsigned i = t->nearly; i-- > 0;)
		if (now - t->early[i].at > LOCKS_EARLY_NS)
			early_del(t, i);
	if (t->nearly == LOCKS_EARLY_MAX) { /* the oldest goes */
		unsigned old = 0;
		for (unsigned i = 1; i < t->nearly; i++)
			if (t->early[i].at < t->early[old].at)
				old = i;
		early_del(t, old);
	}
	t->early[t->nearly++] = (struct lk_early){ .node = node, .token = token, .at = now };
}

/* 1 (and forgets it) when (node, token) was interrupted before it came */
static int early_take(struct locks *t, uint32_t node, uint64_t token)
{
	for (unsigned i = 0; i < t->nearly; i++)
		if (t->early[i].node == node && t->early[i].token == token) {
			int live = now_ns() - t->early[i].at <= LOCKS_EARLY_NS;
			early_del(t, i);
			return live;
		}
	return 0;
}

/* ---- POSIX ranges ---- */

static int overlaps(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2) { return s1 <= e2 && s2 <= e1; }

/* adjacent without overlap; end = UINT64_MAX has nothing after it */
static int adjacent(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return (e1 != UINT64_MAX && e1 + 1 == s2) || (e2 != UINT64_MAX && e2 + 1 == s1);
}

static int posix_same_owner(const struct lk_range *r, uint32_t node, uint64_t owner)
{
	return r->node == node && r->owner == owner;
}

/* The one-node rule (locks.h): on a shared-memory index, any lock of
 * another node conflicts, whatever its range and type. */
static int posix_conflicts(const struct lk_range *r, const struct fs_lock *lk, int one_node)
{
	if (posix_same_owner(r, lk->node_id, lk->owner))
		return 0;
	if (one_node && r->node != lk->node_id)
		return 1;
	return overlaps(r->start, r->end, lk->start, lk->end) && (r->type == F_WRLCK || lk->type == F_WRLCK);
}

static const struct lk_range *posix_first_conflict(const struct lk_inode *in, const struct fs_lock *lk,
						   int one_node)
{
	for (const struct lk_range *r = in ? in->posix : NULL; r; r = r->next)
		if (posix_conflicts(r, lk, one_node))
			return r;
	return NULL;
}

/* The WAL rule for the database itself (locks.h): a lock another node
 * holds on its WAL index, or NULL. */
static const struct lk_range *wal_foreign(struct locks *t, uint64_t shm_ino, uint32_t node)
{
	const struct lk_inode *shm = shm_ino ? inode_find(t, shm_ino) : NULL;
	for (const struct lk_range *r = shm ? shm->posix : NULL; r; r = r->next)
		if (r->node != node)
			return r;
	return NULL;
}

static void posix_insert(struct lk_inode *in, struct lk_range *n)
{
	struct lk_range **pp = &in->posix;
	while (*pp && (*pp)->start <= n->start)
		pp = &(*pp)->next;
	n->next = *pp;
	*pp = n;
}

/* Does a lock held against `lk` (on in) belong to (tnode, towner), directly
 * or through owners that wait themselves? *steps bounds the walk. */
static int posix_waits_for(struct locks *t, const struct lk_inode *in, const struct fs_lock *lk, uint32_t tnode,
			   uint64_t towner, int depth, int *steps)
{
	if (depth > LOCKS_DEADLK_DEPTH)
		return 0;
	for (const struct lk_range *r = in->posix; r; r = r->next) {
		if (--*steps < 0)
			return 0;
		if (!posix_conflicts(r, lk, in->one_node))
			continue;
		if (posix_same_owner(r, tnode, towner))
			return 1;
		for (const struct lk_waiter *w = t->waiters; w; w = w->next)
			if (!w->req.flock && w->req.node_id == r->node && w->req.owner == r->owner &&
			    posix_waits_for(t, w->in, &w->req, tnode, towner, depth + 1, steps))
				return 1;
	}
	return 0;
}

/* Sets or clears lk for its owner on in, which the caller checked has no
 * conflict: the owner's overlapping locks of another type (all, for an
 * unlock) are cut back to what lies outside lk's range, and those of the
 * same type overlapping or adjacent are absorbed. spare: two preallocated
 * records (at most one existing lock is split, plus the new one); taken
 * ones are set to NULL. */
static void posix_apply(struct locks *t, struct lk_inode *in, const struct fs_lock *lk, uint64_t fh,
			struct lk_range *spare[2])
{
	uint64_t s = lk->start, e = lk->end, ns = s, ne = e;
	struct lk_range *cut = NULL; /* trimmed pieces, re-inserted at the end */
	struct lk_range **pp = &in->posix, *r;
	while ((r = *pp)) {
		int ov = overlaps(r->start, r->end, s, e);
		int merge = lk->type != F_UNLCK && r->type == lk->type && (ov || adjacent(r->start, r->end, s, e));
		if (!posix_same_owner(r, lk->node_id, lk->owner) || !(ov || merge)) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		t->count--;
		if (merge) {
			ns = r->start < ns ? r->start : ns;
			ne = r->end > ne ? r->end : ne;
			free(r);
			continue;
		}
		if (r->start < s && r->end > e) {
			struct lk_range *right = spare[0] ? spare[0] : spare[1];
			if (spare[0])
				spare[0] = NULL;
			else
				spare[1] = NULL;
			*right = *r;
			right->start = e + 1;
			right->next = cut;
			cut = right;
			r->end = s - 1;
		} else if (r->start < s) {
			r->end = s - 1;
		} else if (r->end > e) {
			r->start = e + 1;
		} else {
			free(r);
			continue;
		}
		r->next = cut;
		cut = r;
	}
	if (lk->type != F_UNLCK) {
		struct lk_range *n = spare[1] ? spare[1] : spare[0];
		if (spare[1])
			spare[1] = NULL;
		else
			spare[0] = NULL;
		*n = (struct lk_range){ .start = ns, .end = ne, .owner = lk->owner, .fh = fh,
					.node = lk->node_id, .pid = lk->pid, .type = lk->type };
		n->next = cut;
		cut = n;
	}
	while (cut) {
		r = cut;
		cut = r->next;
		posix_insert(in, r);
		t->count++;
	}
}

/* ---- flock ---- */

static struct lk_flock **flock_find(struct lk_inode *in, uint32_t node, uint64_t fh)
{
	struct lk_flock **pp = &in->flocks;
	while (*pp && !((*pp)->node == node && (*pp)->fh == fh))
		pp = &(*pp)->next;
	return pp;
}

static int flock_conflict(const struct lk_inode *in, uint32_t node, uint64_t fh, int type)
{
	for (const struct lk_flock *f = in->flocks; f; f = f->next)
		if (!(f->node == node && f->fh == fh) && (f->type == F_WRLCK || type == F_WRLCK))
			return 1;
	return 0;
}

/* ---- a gone node's locks, kept for its reclaim ---- */

static int stale_add(struct lk_inode *in, const struct lk_stale *x)
{
	struct lk_stale *n = malloc(sizeof *n);
	if (!n)
		return -ENOMEM;
	*n = *x;
	n->next = in->stale;
	in->stale = n;
	return 0;
}

/* node's locks on in, about to be dropped, stay reclaimable until `until`
 * (a record that cannot be kept only makes its reclaim fail: EIO later) */
static void stale_keep(struct lk_inode *in, uint32_t node, uint64_t until)
{
	for (const struct lk_range *r = in->posix; r; r = r->next)
		if (r->node == node)
			(void)stale_add(in, &(struct lk_stale){ .start = r->start, .end = r->end, .owner = r->owner,
								 .until = until, .node = node, .type = r->type });
	for (const struct lk_flock *f = in->flocks; f; f = f->next)
		if (f->node == node)
			(void)stale_add(in, &(struct lk_stale){ .end = UINT64_MAX, .fh = f->fh, .until = until,
								 .node = node, .type = f->type, .flock = 1 });
}

static int stale_same_owner(const struct lk_stale *x, const struct fs_lock *lk, uint64_t fh)
{
	return x->node == lk->node_id && (x->flock ? x->fh == fh : x->owner == lk->owner);
}

/* Would granting lk (through fh) to its owner break x's claim? */
static int stale_conflicts(const struct lk_stale *x, const struct fs_lock *lk, uint64_t fh)
{
	if (x->flock != lk->flock || stale_same_owner(x, lk, fh))
		return 0;
	return overlaps(x->start, x->end, lk->start, lk->end) && (x->type == F_WRLCK || lk->type == F_WRLCK);
}

/* Drops in's stale records that expired, or those of `node`; marks those
 * lk (just granted, through fh; NULL: none) conflicts with as broken. */
static void stale_drop(struct lk_inode *in, const struct fs_lock *lk, uint64_t fh, uint32_t node)
{
	uint64_t now = now_ns();
	for (struct lk_stale **pp = &in->stale, *x; (x = *pp);) {
		if (lk && stale_conflicts(x, lk, fh))
			x->broken = 1;
		if (x->until <= now || x->node == node) {
			*pp = x->next;
			free(x);
		} else {
			pp = &x->next;
		}
	}
}

/* 1 when lk (through fh) re-takes a lock its owner held when its node
 * left (broken: a conflicting lock was granted since; else: it was not) */
static int stale_covers(struct lk_inode *in, const struct fs_lock *lk, uint64_t fh, int broken)
{
	uint64_t now = now_ns();
	for (const struct lk_stale *x = in->stale; x; x = x->next)
		if (x->until > now && x->broken == broken && x->flock == lk->flock && stale_same_owner(x, lk, fh) &&
		    (broken ? overlaps(x->start, x->end, lk->start, lk->end)
			    : x->type == lk->type && (lk->flock || (x->start <= lk->start && lk->end <= x->end))))
			return 1;
	return 0;
}

/* ---- requests ---- */

static int lock_valid(const struct fs_lock *lk)
{
	if (lk->type != F_RDLCK && lk->type != F_WRLCK && lk->type != F_UNLCK)
		return 0;
	return lk->flock || lk->start <= lk->end;
}

/* lk on in, under t->mu, once grace allowed it. 0: done; -EAGAIN: in
 * conflict; -ENOLCK: a reclaim in conflict; -ENOMEM. */
static int try_apply(struct locks *t, struct lk_inode *in, uint64_t fh, const struct fs_lock *lk, int reclaim,
		     uint64_t shm_ino)
{
	if (lk->flock) {
		struct lk_flock **pp = flock_find(in, lk->node_id, fh), *f = *pp;
		if (f && f->type == lk->type)
			return 0;
		if (f) { /* unlock, or conversion: the old lock goes first, as on Linux */
			*pp = f->next;
			free(f);
			t->count--;
			wake(t, in);
		}
		if (lk->type == F_UNLCK)
			return 0;
		if (flock_conflict(in, lk->node_id, fh, lk->type))
			return reclaim ? -ENOLCK : -EAGAIN;
		f = malloc(sizeof *f);
		if (!f)
			return -ENOMEM;
		*f = (struct lk_flock){ .next = in->flocks, .fh = fh, .node = lk->node_id, .pid = lk->pid,
					.type = lk->type };
		in->flocks = f;
		t->count++;
		return 0;
	}
	if (lk->type != F_UNLCK &&
	    (posix_first_conflict(in, lk, in->one_node) || wal_foreign(t, shm_ino, lk->node_id)))
		return reclaim ? -ENOLCK : -EAGAIN;
	struct lk_range *spare[2] = { malloc(sizeof(struct lk_range)), malloc(sizeof(struct lk_range)) };
	if (!spare[0] || !spare[1]) {
		free(spare[0]);
		free(spare[1]);
		return -ENOMEM;
	}
	posix_apply(t, in, lk, fh, spare);
	free(spare[0]);
	free(spare[1]);
	/* an unlock, a downgrade or a shrunk range may unblock others */
	wake(t, in);
	return 0;
}

/* One attempt at lk on in, under t->mu. 0: done; -EAGAIN: in conflict or
 * held off by grace (the caller may wait); -ENOLCK: a reclaim refused;
 * -ENOMEM. */
static int try_lock(struct locks *t, struct lk_inode *in, uint64_t fh, const struct fs_lock *lk, unsigned flags,
		    uint64_t shm_ino)
{
	int grace = grace_now(t);
	int reclaim = flags & LOCKS_RECLAIM;
	if (lk->type != F_UNLCK) {
		/* checked before any change, so a held-off flock conversion
		 * keeps its old lock. Outside grace, a reclaim needs the
		 * node's kept lock: a conflicting one may have come and gone;
		 * in grace too, one known to have come is refused */
		if (reclaim && (grace ? stale_covers(in, lk, fh, 1) : !stale_covers(in, lk, fh, 0)))
			return -ENOLCK;
		if (!reclaim && grace)
			return -EAGAIN;
	}
	int rc = try_apply(t, in, fh, lk, reclaim, shm_ino);
	if (!rc && lk->type != F_UNLCK && in->stale)
		stale_drop(in, lk, fh, UINT32_MAX);
	return rc;
}

int locks_getlk(struct locks *t, uint64_t ino, struct fs_lock *lk, unsigned flags, uint64_t shm_ino)
{
	if (lk->flock || lk->type == F_UNLCK || !lock_valid(lk))
		return -EINVAL;
	pthread_mutex_lock(&t->mu);
	const struct lk_inode *in = inode_find(t, ino);
	int one_node = (flags & LOCKS_ONE_NODE) || (in && in->one_node);
	const struct lk_range *r = posix_first_conflict(in, lk, one_node);
	const struct lk_range *wal = r ? NULL : wal_foreign(t, shm_ino, lk->node_id);
	if (r) {
		/* SQLite reads a foreign write lock on its DMS byte as "in use
		 * elsewhere" (SQLITE_BUSY) */
		lk->type = one_node && r->node != lk->node_id ? F_WRLCK : r->type;
		lk->start = r->start;
		lk->end = r->end;
	} else if (wal) {
		r = wal; /* the database is in use elsewhere: all of it */
		lk->type = F_WRLCK;
		lk->start = 0;
		lk->end = UINT64_MAX;
	} else {
		lk->type = F_UNLCK;
	}
	if (r) {
		lk->owner = r->owner;
		lk->node_id = r->node;
		lk->pid = r->pid;
	}
	pthread_mutex_unlock(&t->mu);
	return 0;
}

int locks_setlk(struct locks *t, uint64_t ino, uint64_t fh, const struct fs_lock *lk, unsigned flags,
		uint64_t shm_ino, uint64_t token)
{
	if (!lock_valid(lk))
		return -EINVAL;
	pthread_mutex_lock(&t->mu);
	struct lk_inode *in = inode_get(t, ino);
	if (!in) {
		pthread_mutex_unlock(&t->mu);
		return -ENOMEM;
	}
	if (flags & LOCKS_ONE_NODE)
		in->one_node = 1;
	if ((flags & LOCKS_WAIT) && early_take(t, lk->node_id, token)) {
		inode_put(t, in);
		pthread_mutex_unlock(&t->mu);
		return -EINTR;
	}
	int rc = try_lock(t, in, fh, lk, flags, shm_ino);
	if ((flags & LOCKS_RECLAIM) && lk->type != F_UNLCK)
		*(rc ? &t->refused : &t->reclaimed) += 1;
	if (rc != -EAGAIN || !(flags & LOCKS_WAIT) || (flags & LOCKS_RECLAIM)) {
		inode_put(t, in);
		pthread_mutex_unlock(&t->mu);
		return rc;
	}
	struct lk_waiter w = { .in = in, .req = *lk, .fh = fh, .token = token, .shm_ino = shm_ino };
	pthread_cond_init(&w.cv, &t->cattr);
	w.next = t->waiters;
	t->waiters = &w;
	in->nwaiters++;
	for (;;) {
		int grace = grace_now(t);
		if (!grace && !lk->flock) {
			int steps = LOCKS_DEADLK_STEPS;
			if (posix_waits_for(t, in, lk, lk->node_id, lk->owner, 0, &steps)) {
				rc = -EDEADLK;
				break;
			}
		}
		if (grace) {
			struct timespec ts = { .tv_sec = (time_t)(t->grace_until / 1000000000u),
					       .tv_nsec = (long)(t->grace_until % 1000000000u) };
			pthread_cond_timedwait(&w.cv, &t->mu, &ts);
		} else {
			pthread_cond_wait(&w.cv, &t->mu);
		}
		if (w.cancel) {
			rc = -w.cancel;
			break;
		}
		rc = try_lock(t, in, fh, lk, flags, shm_ino);
		if (rc != -EAGAIN)
			break;
	}
	struct lk_waiter **pp = &t->waiters;
	while (*pp != &w)
		pp = &(*pp)->next;
	*pp = w.next;
	in->nwaiters--;
	pthread_cond_destroy(&w.cv);
	inode_put(t, in);
	pthread_mutex_unlock(&t->mu);
	return rc;
}

int locks_interrupt(struct locks *t, uint32_t node_id, uint64_t token)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&t->mu);
	for (struct lk_waiter *w = t->waiters; w; w = w->next)
		if (w->req.node_id == node_id && w->token == token) {
			w->cancel = EINTR;
			pthread_cond_signal(&w->cv);
			rc = 0;
		}
	if (rc)
		early_add(t, node_id, token);
	pthread_mutex_unlock(&t->mu);
	return rc;
}

/* Drops the records of in that `match` selects; returns how many. */
static size_t drop(struct locks *t, struct lk_inode *in, uint32_t node, int by_owner, uint64_t owner, int by_fh,
		   uint64_t fh)
{
	size_t n = 0;
	for (struct lk_range **pp = &in->posix, *r; (r = *pp);) {
		if (r->node == node && (!by_owner || r->owner == owner) && (!by_fh || r->fh == fh)) {
			*pp = r->next;
			free(r);
			n++;
		} else {
			pp = &r->next;
		}
	}
	if (!by_owner)
		for (struct lk_flock **pp = &in->flocks, *f; (f = *pp);) {
			if (f->node == node && (!by_fh || f->fh == fh)) {
				*pp = f->next;
				free(f);
				n++;
			} else {
				pp = &f->next;
			}
		}
	t->count -= n;
	if (n)
		wake(t, in);
	return n;
}

size_t locks_release_owner(struct locks *t, uint64_t ino, uint32_t node_id, uint64_t owner)
{
	size_t n = 0;
	pthread_mutex_lock(&t->mu);
	struct lk_inode *in = inode_find(t, ino);
	if (in) {
		n = drop(t, in, node_id, 1, owner, 0, 0);
		inode_put(t, in);
	}
	pthread_mutex_unlock(&t->mu);
	return n;
}

size_t locks_release_file(struct locks *t, uint64_t ino, uint32_t node_id, uint64_t fh)
{
	size_t n = 0;
	pthread_mutex_lock(&t->mu);
	struct lk_inode *in = inode_find(t, ino);
	if (in) {
		n = drop(t, in, node_id, 0, 0, 1, fh);
		inode_put(t, in);
	}
	pthread_mutex_unlock(&t->mu);
	return n;
}

size_t locks_node_gone(struct locks *t, uint32_t node_id)
{
	size_t n = 0;
	pthread_mutex_lock(&t->mu);
	for (struct lk_waiter *w = t->waiters; w; w = w->next)
		if (w->req.node_id == node_id) {
			w->cancel = ENOLCK;
			pthread_cond_signal(&w->cv);
		}
	for (unsigned i = t->nearly; i-- > 0;)
		if (t->early[i].node == node_id)
			early_del(t, i);
	uint64_t until = now_ns() + t->keep_ns;
	for (size_t b = 0; b < LOCKS_BUCKETS; b++)
		for (struct lk_inode *in = t->bucket[b], *next; in; in = next) {
			next = in->next;
			stale_drop(in, NULL, 0, node_id); /* an older departure's */
			if (t->keep_ns)
				stale_keep(in, node_id, until);
			n += drop(t, in, node_id, 0, 0, 0, 0);
			inode_put(t, in);
		}
	pthread_mutex_unlock(&t->mu);
	return n;
}

size_t locks_count(struct locks *t)
{
	pthread_mutex_lock(&t->mu);
	size_t n = t->count;
	pthread_mutex_unlock(&t->mu);
	return n;
}

size_t locks_waiting(struct locks *t)
{
	size_t n = 0;
	pthread_mutex_lock(&t->mu);
	for (const struct lk_waiter *w = t->waiters; w; w = w->next)
		n++;
	pthread_mutex_unlock(&t->mu);
	return n;
}

void locks_grace_begin(struct locks *t, uint64_t duration_ns)
{
	pthread_mutex_lock(&t->mu);
	t->grace = 1;
	t->grace_until = now_ns() + duration_ns;
	t->expect = t->done = 0;
	/* waiters asleep without a deadline must learn the new one */
	wake(t, NULL);
	pthread_mutex_unlock(&t->mu);
}

void locks_grace_end(struct locks *t)
{
	pthread_mutex_lock(&t->mu);
	t->grace = 0;
	wake(t, NULL);
	pthread_mutex_unlock(&t->mu);
}

int locks_in_grace(struct locks *t)
{
	pthread_mutex_lock(&t->mu);
	int g = grace_now(t);
	pthread_mutex_unlock(&t->mu);
	return g;
}

void locks_set_keep(struct locks *t, uint64_t keep_ns)
{
	pthread_mutex_lock(&t->mu);
	t->keep_ns = keep_ns;
	pthread_mutex_unlock(&t->mu);
}

static uint64_t node_bit(uint32_t node_id) { return node_id < 64 ? 1ull << node_id : 0; }

/* Under t->mu: every expected node is done, so grace ends now. */
static void grace_check_done(struct locks *t)
{
	if (grace_now(t) && t->expect && !(t->expect & ~t->done)) {
		t->grace = 0;
		wake(t, NULL);
	}
}

void locks_grace_expect(struct locks *t, uint64_t nodes)
{
	pthread_mutex_lock(&t->mu);
	t->expect |= nodes;
	grace_check_done(t);
	pthread_mutex_unlock(&t->mu);
}

void locks_reclaim_done(struct locks *t, uint32_t node_id)
{
	pthread_mutex_lock(&t->mu);
	for (size_t b = 0; b < LOCKS_BUCKETS; b++)
		for (struct lk_inode *in = t->bucket[b], *next; in; in = next) {
			next = in->next;
			stale_drop(in, NULL, 0, node_id);
			inode_put(t, in);
		}
	t->done |= node_bit(node_id);
	grace_check_done(t);
	pthread_mutex_unlock(&t->mu);
}

void locks_reclaims(struct locks *t, uint64_t *granted, uint64_t *refused)
{
	pthread_mutex_lock(&t->mu);
	*granted = t->reclaimed;
	*refused = t->refused;
	pthread_mutex_unlock(&t->mu);
}

/* Appends one record to the snapshot being built; 0 or -ENOMEM. */
static int held_add(struct locks_held **v, size_t *n, size_t *cap, const struct locks_held *h)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct locks_held *g = realloc(*v, nc * sizeof *g);
		if (!g)
			return -ENOMEM;
		*v = g;
		*cap = nc;
	}
	(*v)[(*n)++] = *h;
	return 0;
}

int locks_snapshot(struct locks *t, struct locks_held **out, size_t *count)
{
	struct locks_held *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	pthread_mutex_lock(&t->mu);
	for (size_t b = 0; b < LOCKS_BUCKETS && !rc; b++)
		for (const struct lk_inode *in = t->bucket[b]; in && !rc; in = in->next) {
			for (const struct lk_range *r = in->posix; r && !rc; r = r->next)
				rc = held_add(&v, &n, &cap, &(struct locks_held){ .ino = in->ino, .fh = r->fh,
					.lk = { .start = r->start, .end = r->end, .type = r->type, .owner = r->owner,
						.node_id = r->node, .pid = r->pid } });
			for (const struct lk_flock *f = in->flocks; f && !rc; f = f->next)
				rc = held_add(&v, &n, &cap, &(struct locks_held){ .ino = in->ino, .fh = f->fh,
					.lk = { .end = UINT64_MAX, .type = f->type, .node_id = f->node, .pid = f->pid,
						.flock = 1 } });
		}
	pthread_mutex_unlock(&t->mu);
	if (rc) {
		free(v);
		return rc;
	}
	*out = v;
	*count = n;
	return 0;
}

/* al — see al.h. */
#include "al.h"
#include "meta.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NO_SLOT UINT32_MAX
/* Cold extents one record logs at most for writers that queued together
 * (DRBD's AL_UPDATES_PER_TRANSACTION is 64 as well). */
#define AL_BATCH 64u

struct al {
	struct disk *d;
	const struct md_super *sb;
	uint64_t next;              /* extents of the device */
	_Atomic uint32_t *map;      /* extent -> slot, NO_SLOT when not logged */
	unsigned nslots;
	uint32_t *ext;              /* slot -> extent, NO_SLOT when free (guarded by lock) */
	_Atomic int *refs;          /* writes in flight per slot */
	unsigned hand;              /* clock hand for eviction */
	pthread_mutex_t lock;
	uint64_t seq;
	uint8_t *buf;
	uint32_t *rec;
	atomic_uint_fast64_t updates;
	int (*evict)(void *arg, const uint32_t *ext, unsigned n);
	void *arg;
	pthread_cond_t cond;        /* a record was written (or failed) */
	struct al_wait *waiting;    /* writers whose extents the next record logs */
	int writing;                /* a leader writes a record, the lock dropped */
};

/* A writer waiting for its cold extent to be logged: its thread's own,
 * linked into a->waiting under the lock; a leader sets rc and done and
 * unlinks it. */
struct al_wait {
	uint32_t ext;
	int rc, done;
	struct al_wait *next;
};

int al_new(struct al **out, struct disk *d, const struct md_super *sb, uint64_t size, unsigned nslots,
	   uint64_t seq, int (*evict)(void *arg, const uint32_t *ext, unsigned n), void *arg)
{
	struct al *a = calloc(1, sizeof *a);
	if (!a)
		return -ENOMEM;
	if (nslots > MD_AL_MAX)
		nslots = MD_AL_MAX;
	if (nslots < 1)
		nslots = 1;
	a->d = d;
	a->sb = sb;
	a->next = (size + MD_AL_EXTENT - 1) / MD_AL_EXTENT;
	a->nslots = nslots;
	a->seq = seq;
	a->evict = evict;
	a->arg = arg;
	a->map = malloc(a->next * sizeof *a->map);
	a->ext = malloc(nslots * sizeof *a->ext);
	a->refs = calloc(nslots, sizeof *a->refs);
	a->rec = malloc(nslots * sizeof *a->rec);
	if (!a->map || !a->ext || !a->refs || !a->rec || posix_memalign((void **)&a->buf, MD_BLOCK, MD_BLOCK)) {
		al_free(a);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < a->next; i++)
		atomic_init(&a->map[i], NO_SLOT);
	for (unsigned i = 0; i < nslots; i++)
		a->ext[i] = NO_SLOT;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	*out = a;
	return 0;
}

void al_free(struct al *a)
{
	if (!a)
		return;
	free(a->map);
	free(a->ext);
	free(a->refs);
	free(a->rec);
	free(a->buf);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* The record naming every logged slot, into a->rec: its extent count. */
static uint32_t fill_record(struct al *a)
{
	uint32_t n = 0;
	for (unsigned i = 0; i < a->nslots; i++)
		if (a->ext[i] != NO_SLOT)
			a->rec[n++] = a->ext[i];
	return n;
}

static int write_log(struct al *a)
{
	int rc = md_write_al(a->d, a->sb, a->buf, ++a->seq, a->rec, fill_record(a));
	atomic_fetch_add_explicit(&a->updates, 1, memory_order_relaxed);
	return rc;
}

/* A sequential writer that reaches a cold extent will reach the next ones
 * too: one record logs AL_AHEAD extents (32 MiB), so a stream pays one log
 * update (and, with the log full, one flush) per 32 MiB instead of per
 * 4 MiB. Logging an extent early only widens what a crash marks; small logs
 * (tests, tiny al-extents) keep the one-extent behaviour. */
#define AL_AHEAD           8u
#define AL_AHEAD_MIN_SLOTS (4 * AL_AHEAD)

struct take {
	unsigned slot;
	uint32_t ext, old;  /* old: the extent evicted from the slot, or NO_SLOT */
};

/* A slot for a new extent by the clock hand (under lock): a free one, or
 * one no write holds, unpublished (its extent in t->old). 0, or -EBUSY
 * when every slot is busy. Slots already taken in this round are skipped. */
static int take_slot(struct al *a, struct take *t, const struct take *taken, unsigned ntaken)
{
	for (unsigned tries = 0; tries < 2 * a->nslots; tries++) {
		unsigned i = a->hand++ % a->nslots, dup = 0;
		for (unsigned k = 0; k < ntaken; k++)
			dup |= taken[k].slot == i;
		if (dup)
			continue;
		uint32_t old = a->ext[i];
		if (old != NO_SLOT) {
			/* unpublish, then check nobody took a reference meanwhile */
			atomic_store(&a->map[old], NO_SLOT);
			if (atomic_load(&a->refs[i])) {
				atomic_store(&a->map[old], i);
				continue;
			}
		}
		t->slot = i;
		t->old = old;
		return 0;
	}
	return -EBUSY;
}

static int batch_has(const struct take *t, unsigned n, uint32_t x)
{
	for (unsigned k = 0; k < n; k++)
		if (t[k].ext == x)
			return 1;
	return 0;
}

/* Slots for the waiting writers' cold extents (under lock), at most
 * AL_BATCH, and after a lone sequential writer the extents that follow
 * its own. The number taken into t[]. */
static unsigned take_batch(struct al *a, struct take *t)
{
	unsigned n = 0;
	for (struct al_wait *w = a->waiting; w && n < AL_BATCH; w = w->next) {
		if (atomic_load(&a->map[w->ext]) != NO_SLOT || batch_has(t, n, w->ext))
			continue;
		if (take_slot(a, &t[n], t, n))
			break;
		t[n++].ext = w->ext;
	}
	uint32_t x = n == 1 ? t[0].ext : 0;
	int seq = n == 1 && a->nslots >= AL_AHEAD_MIN_SLOTS && x > 0 && atomic_load(&a->map[x - 1]) != NO_SLOT;
	for (uint32_t y = x + 1; seq && n < AL_AHEAD && y < a->next; y++) {
		if (atomic_load(&a->map[y]) != NO_SLOT || take_slot(a, &t[n], t, n))
			break;
		t[n++].ext = y;
	}
	return n;
}

/* Writes the record that logs t[0..n) (the lock dropped meanwhile): the
 * evicted extents' bitmap bits and data made durable by one evict call,
 * then one record naming the new set. On failure the slots are as before
 * (an evicted extent stays evicted once its evict call succeeded). */
static int write_batch(struct al *a, struct take *t, unsigned n)
{
	uint32_t victims[AL_BATCH];
	unsigned nv = 0;
	for (unsigned k = 0; k < n; k++) {
		if (t[k].old != NO_SLOT)
			victims[nv++] = t[k].old;
		a->ext[t[k].slot] = t[k].ext;
	}
	uint32_t nrec = fill_record(a);
	uint64_t seq = ++a->seq;
	pthread_mutex_unlock(&a->lock);
	/* what the evicted extents' writes marked must be on disk before the
	 * log forgets them */
	int rc = nv && a->evict ? a->evict(a->arg, victims, nv) : 0;
	int evicted = !rc;
	if (!rc)
		rc = md_write_al(a->d, a->sb, a->buf, seq, a->rec, nrec);
	pthread_mutex_lock(&a->lock);
	if (evicted)
		atomic_fetch_add_explicit(&a->updates, 1, memory_order_relaxed);
	else
		a->seq--; /* no record went out under that number */
	for (unsigned k = 0; rc && k < n; k++) {
		a->ext[t[k].slot] = evicted ? NO_SLOT : t[k].old;
		if (!evicted && t[k].old != NO_SLOT)
			atomic_store(&a->map[t[k].old], t[k].slot);
	}
	return rc;
}

/* Under lock, as the only leader: logs what the waiting writers need in
 * one record and completes them. A writer whose extent is logged already
 * gets its reference; one left out (batch full, slots busy) stays queued. */
static void lead(struct al *a)
{
	struct take t[AL_BATCH];
	a->writing = 1;
	unsigned n = take_batch(a, t);
	int rc = n ? write_batch(a, t, n) : 0;
	/* only now may writes in them proceed: the log names them on disk */
	for (unsigned k = 0; !rc && k < n; k++)
		atomic_store(&a->map[t[k].ext], t[k].slot);
	struct al_wait **pp = &a->waiting;
	while (*pp) {
		struct al_wait *w = *pp;
		uint32_t s = atomic_load(&a->map[w->ext]);
		if (s == NO_SLOT && !(rc && batch_has(t, n, w->ext))) {
			pp = &w->next;
			continue;
		}
		w->rc = s == NO_SLOT ? rc : 0;
		if (s != NO_SLOT)
			atomic_fetch_add(&a->refs[s], 1);
		w->done = 1;
		*pp = w->next;
	}
	a->writing = 0;
	pthread_cond_broadcast(&a->cond);
	if (!n && a->waiting) {
		/* every slot busy: wait for writes to drain */
		pthread_mutex_unlock(&a->lock);
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&a->lock);
	}
}

/* Slow path: extent x is not logged. The writer queues; whoever finds no
 * record being written leads, logging every queued extent in one record
 * (group commit), so writers reaching cold extents together pay one flush
 * and one FUA write, not one each in turn. */
static int log_extent(struct al *a, uint32_t x)
{
	/* a thread waits for one extent at a time: its queue entry is its own */
	static _Thread_local struct al_wait me;
	me = (struct al_wait){ .ext = x, .next = a->waiting };
	a->waiting = &me;
	while (!me.done) {
		if (!a->writing)
			lead(a);
		else
			pthread_cond_wait(&a->cond, &a->lock);
	}
	return me.rc;
}

static int ref_extent(struct al *a, uint32_t x)
{
	uint32_t s = atomic_load(&a->map[x]);
	if (s != NO_SLOT) {
		atomic_fetch_add(&a->refs[s], 1);
		if (atomic_load(&a->map[x]) == s)
			return 0;
		atomic_fetch_sub(&a->refs[s], 1);
	}
	pthread_mutex_lock(&a->lock);
	int rc = log_extent(a, x);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

void al_end(struct al *a, uint64_t off, uint64_t len)
{
	if (!a || !len)
		return;
	for (uint64_t x = off / MD_AL_EXTENT; x <= (off + len - 1) / MD_AL_EXTENT && x < a->next; x++) {
		uint32_t s = atomic_load(&a->map[x]);
		if (s != NO_SLOT)
			atomic_fetch_sub(&a->refs[s], 1);
	}
}

int al_begin(struct al *a, uint64_t off, uint64_t len)
{
	if (!a || !len)
		return 0;
	uint64_t first = off / MD_AL_EXTENT, last = (off + len - 1) / MD_AL_EXTENT;
	for (uint64_t x = first; x <= last && x < a->next; x++) {
		int rc = ref_extent(a, (uint32_t)x);
		if (rc) {
			for (uint64_t y = first; y < x; y++)
				atomic_fetch_sub(&a->refs[atomic_load(&a->map[y])], 1);
			return rc;
		}
	}
	return 0;
}

int al_clear(struct al *a)
{
	if (!a)
		return 0;
	pthread_mutex_lock(&a->lock);
	while (a->writing)
		pthread_cond_wait(&a->cond, &a->lock);
	for (unsigned i = 0; i < a->nslots; i++) {
		if (a->ext[i] != NO_SLOT)
			atomic_store(&a->map[a->ext[i]], NO_SLOT);
		a->ext[i] = NO_SLOT;
	}
	int rc = write_log(a);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

unsigned al_active(struct al *a)
{
	unsigned n = 0;
	if (!a)
		return 0;
	pthread_mutex_lock(&a->lock);
	for (unsigned i = 0; i < a->nslots; i++)
		n += a->ext[i] != NO_SLOT;
	pthread_mutex_unlock(&a->lock);
	return n;
}

uint64_t al_updates(struct al *a)
{
	return a ? atomic_load(&a->updates) : 0;
}

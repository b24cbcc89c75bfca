/* al — see al.h. */
#include "al.h"
#include "meta.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NO_SLOT UINT32_MAX

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
	free(a);
}

static int write_log(struct al *a)
{
	uint32_t n = 0;
	for (unsigned i = 0; i < a->nslots; i++)
		if (a->ext[i] != NO_SLOT)
			a->rec[n++] = a->ext[i];
	int rc = md_write_al(a->d, a->sb, a->buf, ++a->seq, a->rec, n);
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

/* Slow path: log extent x (under lock), and the next ones after a
 * sequential writer. Evicts slots no write holds: their bitmap bits (and
 * the data written in them) are made durable by one evict call for all of
 * them, then one record names the new set. */
static int log_extent(struct al *a, uint32_t x)
{
	for (;;) {
		uint32_t s = atomic_load(&a->map[x]);
		if (s != NO_SLOT) {
			atomic_fetch_add(&a->refs[s], 1);
			return 0;
		}
		struct take t[AL_AHEAD];
		unsigned n = 0;
		if (take_slot(a, &t[0], t, 0) == 0) {
			t[n++].ext = x;
			int seq = a->nslots >= AL_AHEAD_MIN_SLOTS && x > 0 && atomic_load(&a->map[x - 1]) != NO_SLOT;
			for (uint32_t y = x + 1; seq && n < AL_AHEAD && y < a->next; y++) {
				if (atomic_load(&a->map[y]) != NO_SLOT || take_slot(a, &t[n], t, n))
					break;
				t[n++].ext = y;
			}
		}
		if (!n) {
			/* every slot busy: wait for writes to drain */
			pthread_mutex_unlock(&a->lock);
			struct timespec ts = { 0, 200000 };
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&a->lock);
			continue;
		}
		/* what the evicted extents' writes marked must be on disk before
		 * the log forgets them */
		uint32_t victims[AL_AHEAD];
		unsigned nv = 0;
		for (unsigned k = 0; k < n; k++)
			if (t[k].old != NO_SLOT)
				victims[nv++] = t[k].old;
		int rc = nv && a->evict ? a->evict(a->arg, victims, nv) : 0;
		if (rc) {
			for (unsigned k = 0; k < n; k++)
				if (t[k].old != NO_SLOT)
					atomic_store(&a->map[t[k].old], t[k].slot);
			return rc;
		}
		for (unsigned k = 0; k < n; k++) {
			a->ext[t[k].slot] = t[k].ext;
			atomic_store(&a->refs[t[k].slot], k == 0 ? 1 : 0);
		}
		rc = write_log(a);
		if (rc) {
			for (unsigned k = 0; k < n; k++) {
				a->ext[t[k].slot] = NO_SLOT;
				atomic_store(&a->refs[t[k].slot], 0);
			}
			return rc;
		}
		/* only now may writes in them proceed: the log names them on disk */
		for (unsigned k = 0; k < n; k++)
			atomic_store(&a->map[t[k].ext], t[k].slot);
		return 0;
	}
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

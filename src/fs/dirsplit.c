/* dirsplit — who may cache a directory's names on the owner (dirsplit.h).
 *
 * Two tables under one mutex: directories (parent node id -> the clients'
 * marks under it, the owner's recorded names, revocations running) and
 * the recorded names themselves, hashed by (parent, name) so that a
 * repeated lookup records nothing twice and a single name is found at
 * once. Each name is also on its directory's list, for a settle. */
#include "dirsplit.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct dsname {
	struct dsname *hnext, **hpprev; /* hash chain of (parent, name) */
	struct dsname *dnext, **dpprev; /* its directory's names */
	uint64_t parent;
	size_t len;
	int stray;                      /* moved into a directory clients hold */
	char name[];
};

struct dsdir {
	struct dsdir *next;
	uint64_t parent;
	uint64_t marks;       /* names under it a client caches (until it acked their revocation),
			       * and settles running */
	struct dsname *names; /* the owner's kernel may cache these */
	size_t owned;         /* of them, not strays */
	unsigned draining;    /* settles revoking its owned names now */
	unsigned revoking;    /* and dirsplit_revoke_name calls */
};

#define DIR_BUCKETS 4096u
#define NAME_BUCKETS 65536u

struct dirsplit {
	pthread_mutex_t lock; /* guards all below */
	pthread_cond_t cv;    /* a revocation ended */
	struct dsdir *dirs[DIR_BUCKETS];
	struct dsname *names[NAME_BUCKETS];
	size_t nnames;
	unsigned draining;    /* settles revoking, all directories */
	unsigned revoking;    /* revocations running, all directories */
	unsigned every;       /* clients that count as caching under every directory */
	int broken;           /* a mark could not be counted (no memory): as if every */
	int disabled;         /* not the owner's mount any more: every name, no records */
	dirsplit_revoke_fn revoke;
	void *arg;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	return x ^ (x >> 33);
}

static unsigned name_bucket(uint64_t parent, const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ull ^ mix(parent); /* FNV-1a, seeded */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 1099511628211ull;
	return (unsigned)(h % NAME_BUCKETS);
}

static struct dsdir *dir_find(struct dirsplit *d, uint64_t parent, int create)
{
	struct dsdir **b = &d->dirs[mix(parent) % DIR_BUCKETS], *x = *b;
	while (x && x->parent != parent)
		x = x->next;
	if (!x && create && (x = calloc(1, sizeof *x))) {
		x->parent = parent;
		x->next = *b;
		*b = x;
	}
	return x;
}

/* x goes once nothing is left of it */
static void dir_tidy(struct dirsplit *d, struct dsdir *x)
{
	if (x->marks || x->names || x->draining || x->revoking)
		return;
	for (struct dsdir **p = &d->dirs[mix(x->parent) % DIR_BUCKETS]; *p; p = &(*p)->next)
		if (*p == x) {
			*p = x->next;
			free(x);
			return;
		}
}

static struct dsname *name_find(struct dirsplit *d, uint64_t parent, const char *name, size_t len)
{
	struct dsname *n = d->names[name_bucket(parent, name, len)];
	while (n && !(n->parent == parent && n->len == len && !memcmp(n->name, name, len)))
		n = n->hnext;
	return n;
}

/* Record name under x (moved: past the limit, as a stray if so): the
 * record, or NULL when it cannot be (full, no memory). */
static struct dsname *record(struct dirsplit *d, struct dsdir *x, const char *name, int moved, int stray)
{
	size_t len = strlen(name);
	struct dsname *n = name_find(d, x->parent, name, len);
	if (n)
		return n;
	if (!(n = d->nnames < DIRSPLIT_NAMES || moved ? malloc(sizeof *n + len + 1) : NULL))
		return NULL;
	n->parent = x->parent;
	n->len = len;
	n->stray = stray;
	x->owned += !stray;
	memcpy(n->name, name, len + 1);
	struct dsname **b = &d->names[name_bucket(x->parent, name, len)];
	if ((n->hnext = *b))
		(*b)->hpprev = &n->hnext;
	n->hpprev = b;
	*b = n;
	if ((n->dnext = x->names))
		x->names->dpprev = &n->dnext;
	n->dpprev = &x->names;
	x->names = n;
	d->nnames++;
	return n;
}

static void unrecord(struct dirsplit *d, struct dsdir *x, struct dsname *n)
{
	x->owned -= !n->stray;
	if ((*n->hpprev = n->hnext))
		n->hnext->hpprev = n->hpprev;
	if ((*n->dpprev = n->dnext))
		n->dnext->dpprev = n->dpprev;
	d->nnames--;
}

int dirsplit_open(struct dirsplit **out, dirsplit_revoke_fn revoke, void *arg)
{
	struct dirsplit *d = calloc(1, sizeof *d);
	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cv, NULL);
	d->revoke = revoke;
	d->arg = arg;
	*out = d;
	return 0;
}

static void free_all(struct dirsplit *d)
{
	for (unsigned i = 0; i < DIR_BUCKETS; i++) {
		for (struct dsdir *x = d->dirs[i], *next; x; x = next) {
			next = x->next;
			for (struct dsname *n = x->names, *nn; n; n = nn) {
				nn = n->dnext;
				free(n);
			}
			free(x);
		}
		d->dirs[i] = NULL;
	}
	memset(d->names, 0, sizeof d->names);
	d->nnames = 0;
}

void dirsplit_disable(struct dirsplit *d)
{
	pthread_mutex_lock(&d->lock);
	while (d->revoking || d->draining)
		pthread_cond_wait(&d->cv, &d->lock);
	d->disabled = 1;
	free_all(d);
	pthread_mutex_unlock(&d->lock);
}

void dirsplit_close(struct dirsplit *d)
{
	if (!d)
		return;
	free_all(d);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cv);
	free(d);
}

int dirsplit_owner_may_cache(struct dirsplit *d, uint64_t parent, const char *name)
{
	pthread_mutex_lock(&d->lock);
	int yes = d->disabled;
	struct dsdir *x = yes || d->every || d->broken ? NULL : dir_find(d, parent, 1);
	if (x) {
		yes = !x->marks && !x->draining && record(d, x, name, 0, 0);
		dir_tidy(d, x);
	}
	pthread_mutex_unlock(&d->lock);
	return yes;
}

int dirsplit_owner_moved(struct dirsplit *d, uint64_t parent, const char *name)
{
	pthread_mutex_lock(&d->lock);
	struct dsdir *x = d->disabled ? NULL : dir_find(d, parent, 1);
	int stray = x && (x->marks || x->draining || d->every || d->broken);
	/* without memory the name goes unrecorded: its revocation is missed
	 * if a client changes it before the kernel's entry expires */
	struct dsname *n = x ? record(d, x, name, 1, stray) : NULL;
	if (x && !n)
		dir_tidy(d, x);
	stray = n && n->stray;
	pthread_mutex_unlock(&d->lock);
	return stray;
}

/* (parent, name)'s record goes; revoked on the owner's kernel first if
 * revoke (the mutex dropped meanwhile). */
static void take_name(struct dirsplit *d, uint64_t parent, const char *name, int revoke)
{
	pthread_mutex_lock(&d->lock);
	struct dsname *n = name_find(d, parent, name, strlen(name));
	struct dsdir *x = n ? dir_find(d, parent, 0) : NULL;
	if (x) {
		unrecord(d, x, n);
		if (revoke) {
			x->revoking++;
			d->revoking++;
			pthread_mutex_unlock(&d->lock);
			d->revoke(d->arg, parent, n->name);
			pthread_mutex_lock(&d->lock);
			x->revoking--;
			d->revoking--;
			pthread_cond_broadcast(&d->cv);
		}
		free(n);
		dir_tidy(d, x);
	}
	pthread_mutex_unlock(&d->lock);
}

void dirsplit_owner_dropped(struct dirsplit *d, uint64_t parent, const char *name)
{
	take_name(d, parent, name, 0);
}

/* A client caches (or is about to) a name under parent. Under d->lock. */
static void hold(struct dirsplit *d, uint64_t parent)
{
	struct dsdir *x = d->disabled ? NULL : dir_find(d, parent, 1);
	if (x)
		x->marks++;
	else if (!d->disabled)
		d->broken = 1; /* from now on the owner caches no name, and settles all */
}

void dirsplit_client_mark(struct dirsplit *d, uint64_t parent)
{
	pthread_mutex_lock(&d->lock);
	hold(d, parent);
	pthread_mutex_unlock(&d->lock);
}

void dirsplit_client_unmark(struct dirsplit *d, uint64_t parent)
{
	pthread_mutex_lock(&d->lock);
	struct dsdir *x = dir_find(d, parent, 0);
	if (x && x->marks) {
		x->marks--;
		dir_tidy(d, x);
	}
	pthread_mutex_unlock(&d->lock);
}

void dirsplit_client_every(struct dirsplit *d, int delta)
{
	pthread_mutex_lock(&d->lock);
	if (delta > 0 || d->every)
		d->every += (unsigned)delta;
	pthread_mutex_unlock(&d->lock);
}

/* Revoke the names the owner's kernel cached under x while no client did
 * (not the strays: the rename that moved each revokes it), the mutex
 * dropped meanwhile (x stays: dir_tidy spares a directory being drained). */
static void drain(struct dirsplit *d, struct dsdir *x)
{
	struct dsname *list = NULL;
	for (struct dsname *n = x->names, *next; n; n = next) {
		next = n->dnext;
		if (n->stray)
			continue;
		unrecord(d, x, n);
		n->dnext = list;
		list = n;
	}
	x->draining++;
	d->draining++;
	pthread_mutex_unlock(&d->lock);
	for (struct dsname *n = list, *next; n; n = next) {
		next = n->dnext;
		d->revoke(d->arg, x->parent, n->name);
		free(n);
	}
	pthread_mutex_lock(&d->lock);
	x->draining--;
	d->draining--;
	pthread_cond_broadcast(&d->cv);
	dir_tidy(d, x);
}

/* The directory to settle next for parent: parent's own, or while a
 * client caches everywhere any, with owned names or a drain running */
static struct dsdir *unsettled(struct dirsplit *d, uint64_t parent)
{
	if (!d->every && !d->broken) {
		struct dsdir *x = dir_find(d, parent, 0);
		return x && (x->owned || x->draining) ? x : NULL;
	}
	if (!d->nnames && !d->draining)
		return NULL;
	for (unsigned i = 0; i < DIR_BUCKETS; i++)
		for (struct dsdir *x = d->dirs[i]; x; x = x->next)
			if (x->owned || x->draining)
				return x;
	return NULL;
}

void dirsplit_settle(struct dirsplit *d, uint64_t parent)
{
	pthread_mutex_lock(&d->lock);
	hold(d, parent); /* until dirsplit_settled */
	struct dsdir *x;
	while ((x = unsettled(d, parent))) {
		if (x->owned)
			drain(d, x);
		else
			pthread_cond_wait(&d->cv, &d->lock);
	}
	pthread_mutex_unlock(&d->lock);
}

void dirsplit_settled(struct dirsplit *d, uint64_t parent)
{
	dirsplit_client_unmark(d, parent);
}

void dirsplit_revoke_name(struct dirsplit *d, uint64_t parent, const char *name)
{
	take_name(d, parent, name, 1);
}

size_t dirsplit_names(struct dirsplit *d)
{
	pthread_mutex_lock(&d->lock);
	size_t n = d->nnames;
	pthread_mutex_unlock(&d->lock);
	return n;
}

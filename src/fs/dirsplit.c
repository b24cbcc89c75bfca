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
	char name[];
};

struct dsdir {
	struct dsdir *next;
	uint64_t parent;
	uint64_t marks;       /* names under it marked as cached by a client */
	struct dsname *names; /* the owner's kernel may cache these */
	unsigned revoking;    /* threads revoking names of it now */
};

#define DIR_BUCKETS 4096u
#define NAME_BUCKETS 65536u

struct dirsplit {
	pthread_mutex_t lock; /* guards all below */
	pthread_cond_t cv;    /* a revocation ended */
	struct dsdir *dirs[DIR_BUCKETS];
	struct dsname *names[NAME_BUCKETS];
	size_t nnames;
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
	if (x->marks || x->names || x->revoking)
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

/* Record name under x: 1, or 0 when it cannot be (full, no memory; unless
 * past the limit is allowed). */
static int record(struct dirsplit *d, struct dsdir *x, const char *name, int past_limit)
{
	size_t len = strlen(name);
	if (name_find(d, x->parent, name, len))
		return 1;
	struct dsname *n = d->nnames < DIRSPLIT_NAMES || past_limit ? malloc(sizeof *n + len + 1) : NULL;
	if (!n)
		return 0;
	n->parent = x->parent;
	n->len = len;
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
	return 1;
}

static void unrecord(struct dirsplit *d, struct dsname *n)
{
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
	while (d->revoking)
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
		yes = !x->marks && !x->revoking && record(d, x, name, 0);
		dir_tidy(d, x);
	}
	pthread_mutex_unlock(&d->lock);
	return yes;
}

void dirsplit_owner_moved(struct dirsplit *d, uint64_t parent, const char *name)
{
	pthread_mutex_lock(&d->lock);
	struct dsdir *x = d->disabled ? NULL : dir_find(d, parent, 1);
	/* without memory the name goes unrecorded: its revocation is missed
	 * if a client changes it before the kernel's entry expires */
	if (x && !record(d, x, name, 1))
		dir_tidy(d, x);
	pthread_mutex_unlock(&d->lock);
}

void dirsplit_owner_dropped(struct dirsplit *d, uint64_t parent, const char *name)
{
	pthread_mutex_lock(&d->lock);
	struct dsname *n = name_find(d, parent, name, strlen(name));
	if (n) {
		unrecord(d, n);
		free(n);
		dir_tidy(d, dir_find(d, parent, 0));
	}
	pthread_mutex_unlock(&d->lock);
}

void dirsplit_client_mark(struct dirsplit *d, uint64_t parent)
{
	pthread_mutex_lock(&d->lock);
	struct dsdir *x = d->disabled ? NULL : dir_find(d, parent, 1);
	if (x)
		x->marks++;
	else if (!d->disabled)
		d->broken = 1; /* from now on the owner caches no name, and settles all */
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

/* Revoke every name recorded under x, the mutex dropped meanwhile (x
 * stays: dir_tidy spares a directory being revoked). */
static void drain(struct dirsplit *d, struct dsdir *x)
{
	struct dsname *list = x->names;
	for (struct dsname *n = list; n; n = n->dnext) {
		if ((*n->hpprev = n->hnext))
			n->hnext->hpprev = n->hpprev;
		d->nnames--;
	}
	x->names = NULL;
	x->revoking++;
	d->revoking++;
	pthread_mutex_unlock(&d->lock);
	for (struct dsname *n = list, *next; n; n = next) {
		next = n->dnext;
		d->revoke(d->arg, x->parent, n->name);
		free(n);
	}
	pthread_mutex_lock(&d->lock);
	x->revoking--;
	d->revoking--;
	pthread_cond_broadcast(&d->cv);
	dir_tidy(d, x);
}

/* The directory to settle next for parent: parent's own, or while a
 * client caches everywhere any with names or a revocation running */
static struct dsdir *unsettled(struct dirsplit *d, uint64_t parent)
{
	if (!d->every && !d->broken) {
		struct dsdir *x = dir_find(d, parent, 0);
		return x && (x->names || x->revoking) ? x : NULL;
	}
	if (!d->nnames && !d->revoking)
		return NULL;
	for (unsigned i = 0; i < DIR_BUCKETS; i++)
		for (struct dsdir *x = d->dirs[i]; x; x = x->next)
			if (x->names || x->revoking)
				return x;
	return NULL;
}

void dirsplit_settle(struct dirsplit *d, uint64_t parent)
{
	pthread_mutex_lock(&d->lock);
	struct dsdir *x;
	while ((x = unsettled(d, parent))) {
		if (x->names)
			drain(d, x);
		else
			pthread_cond_wait(&d->cv, &d->lock);
	}
	pthread_mutex_unlock(&d->lock);
}

void dirsplit_revoke_name(struct dirsplit *d, uint64_t parent, const char *name)
{
	pthread_mutex_lock(&d->lock);
	struct dsname *n = name_find(d, parent, name, strlen(name));
	struct dsdir *x = n ? dir_find(d, parent, 0) : NULL;
	if (x) {
		unrecord(d, n);
		x->revoking++;
		d->revoking++;
		pthread_mutex_unlock(&d->lock);
		d->revoke(d->arg, parent, n->name);
		free(n);
		pthread_mutex_lock(&d->lock);
		x->revoking--;
		d->revoking--;
		pthread_cond_broadcast(&d->cv);
		dir_tidy(d, x);
	}
	pthread_mutex_unlock(&d->lock);
}

size_t dirsplit_names(struct dirsplit *d)
{
	pthread_mutex_lock(&d->lock);
	size_t n = d->nnames;
	pthread_mutex_unlock(&d->lock);
	return n;
}

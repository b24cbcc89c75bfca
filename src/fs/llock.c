/* llock — see llock.h. A list per table: the locks one owner process holds
 * at once are few, and this table is replaced by the cluster's. */
#include "llock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>

struct held {
	struct held *next;
	uint64_t ino, start, end, owner;
	uint32_t node_id, pid;
	int type, flock;
};

/* a blocked setter, so llock_interrupt can find it */
struct waiter {
	struct waiter *next;
	uint32_t node_id;
	uint64_t token;
	int interrupted;
};

struct llock {
	pthread_mutex_t mu;   /* guards everything below */
	pthread_cond_t changed; /* a lock went away or a waiter was interrupted */
	struct held *locks;
	struct waiter *waiters;
	unsigned n;
};

int llock_open(struct llock **out)
{
	struct llock *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->changed, NULL);
	*out = t;
	return 0;
}

void llock_close(struct llock *t)
{
	if (!t)
		return;
	while (t->locks) {
		struct held *h = t->locks;
		t->locks = h->next;
		free(h);
	}
	pthread_cond_destroy(&t->changed);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static int same_owner(const struct held *h, const struct fs_lock *lk)
{
	return h->node_id == lk->node_id && h->owner == lk->owner;
}

/* the held lock that keeps lk from being granted, or NULL */
static struct held *conflict(struct llock *t, uint64_t ino, const struct fs_lock *lk)
{
	for (struct held *h = t->locks; h; h = h->next) {
		if (h->ino != ino || h->flock != lk->flock || same_owner(h, lk))
			continue;
		if (h->type != F_WRLCK && lk->type != F_WRLCK)
			continue;
		if (lk->flock || (h->start <= lk->end && lk->start <= h->end))
			return h;
	}
	return NULL;
}

int llock_get(struct llock *t, uint64_t ino, struct fs_lock *lk)
{
	pthread_mutex_lock(&t->mu);
	struct held *h = conflict(t, ino, lk);
	if (h) {
		lk->type = h->type;
		lk->start = h->start;
		lk->end = h->end;
		lk->owner = h->owner;
		lk->node_id = h->node_id;
		lk->pid = h->pid;
	} else {
		lk->type = F_UNLCK;
	}
	pthread_mutex_unlock(&t->mu);
	return 0;
}

/* Cut [start,end] out of the owner's locks on ino (splitting one that
 * spans it). -ENOMEM leaves the table unchanged. */
static int cut(struct llock *t, uint64_t ino, const struct fs_lock *lk)
{
	for (struct held **pp = &t->locks; *pp;) {
		struct held *h = *pp;
		if (h->ino != ino || h->flock != lk->flock || !same_owner(h, lk) ||
		    (!lk->flock && (h->end < lk->start || lk->end < h->start))) {
			pp = &h->next;
			continue;
		}
		if (!lk->flock && h->start < lk->start && h->end > lk->end) {
			struct held *tail = malloc(sizeof *tail);
			if (!tail)
				return -ENOMEM;
			*tail = *h;
			tail->start = lk->end + 1;
			h->end = lk->start - 1;
			tail->next = h->next;
			h->next = tail;
			t->n++;
			return 0; /* a spanning range means no other overlaps */
		}
		if (!lk->flock && h->start < lk->start) {
			h->end = lk->start - 1;
			pp = &h->next;
		} else if (!lk->flock && h->end > lk->end) {
			h->start = lk->end + 1;
			pp = &h->next;
		} else {
			*pp = h->next;
			free(h);
			t->n--;
		}
	}
	return 0;
}

int llock_set(struct llock *t, uint64_t ino, const struct fs_lock *lk, int wait, uint64_t token)
{
	int rc = 0;
	pthread_mutex_lock(&t->mu);
	if (lk->type == F_UNLCK) {
		rc = cut(t, ino, lk);
		pthread_cond_broadcast(&t->changed);
		pthread_mutex_unlock(&t->mu);
		return rc;
	}
	struct waiter w = { .node_id = lk->node_id, .token = token };
	int waiting = 0;
	while (conflict(t, ino, lk)) {
		if (!wait || w.interrupted) {
			rc = wait ? -EINTR : -EAGAIN;
			goto out;
		}
		if (!waiting) {
			w.next = t->waiters;
			t->waiters = &w;
			waiting = 1;
		}
		pthread_cond_wait(&t->changed, &t->mu);
	}
	struct held *h = malloc(sizeof *h);
	if (!h) {
		rc = -ENOMEM;
		goto out;
	}
	/* a lock replaces the owner's own over the same range (an upgrade or
	 * downgrade is atomic: no one can slip in between) */
	rc = cut(t, ino, lk);
	if (rc) {
		free(h);
		goto out;
	}
	*h = (struct held){ .next = t->locks, .ino = ino, .start = lk->start, .end = lk->end, .owner = lk->owner,
			    .node_id = lk->node_id, .pid = lk->pid, .type = lk->type, .flock = lk->flock };
	t->locks = h;
	t->n++;
	/* a downgrade may let readers in */
	pthread_cond_broadcast(&t->changed);
out:
	if (waiting) {
		for (struct waiter **pp = &t->waiters; *pp; pp = &(*pp)->next)
			if (*pp == &w) {
				*pp = w.next;
				break;
			}
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void llock_interrupt(struct llock *t, uint32_t node_id, uint64_t token)
{
	pthread_mutex_lock(&t->mu);
	for (struct waiter *w = t->waiters; w; w = w->next)
		if (w->node_id == node_id && w->token == token)
			w->interrupted = 1;
	pthread_cond_broadcast(&t->changed);
	pthread_mutex_unlock(&t->mu);
}

void llock_drop(struct llock *t, uint64_t ino, uint32_t node_id, uint64_t owner, int flock)
{
	struct fs_lock all = { .start = 0, .end = UINT64_MAX, .type = F_UNLCK, .owner = owner, .node_id = node_id,
			       .flock = flock };
	pthread_mutex_lock(&t->mu);
	(void)cut(t, ino, &all); /* a whole-range cut never splits: cannot fail */
	pthread_cond_broadcast(&t->changed);
	pthread_mutex_unlock(&t->mu);
}

unsigned llock_count(struct llock *t)
{
	pthread_mutex_lock(&t->mu);
	unsigned n = t->n;
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* Tests of dirsplit (src/fs/dirsplit.c): the owner's mount caches a
 * directory's names only while no client marks one there; a settle
 * revokes exactly the recorded names of the directory (all of them while
 * a client caches everywhere), once; a second settle waits for a first
 * one's revocations; moved, dropped, the limit, disable. */
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>

#include "unit.h"
#include "dirsplit.h"

#define P 10
#define Q 11

struct revoked {
	int n;
	uint64_t parent[16];
	char name[16][32];
};

static void note(void *arg, uint64_t parent, const char *name)
{
	struct revoked *r = arg;
	if (r->n < 16) {
		r->parent[r->n] = parent;
		snprintf(r->name[r->n], sizeof r->name[0], "%s", name);
	}
	r->n++;
}

static int was_revoked(const struct revoked *r, uint64_t parent, const char *name)
{
	for (int i = 0; i < r->n && i < 16; i++)
		if (r->parent[i] == parent && !strcmp(r->name[i], name))
			return 1;
	return 0;
}

TEST(owner_caches_where_no_client_does)
{
	struct revoked r = { 0 };
	struct dirsplit *d;
	CHECK(dirsplit_open(&d, note, &r) == 0);
	CHECK(dirsplit_owner_may_cache(d, P, "a") == 1);
	CHECK(dirsplit_owner_may_cache(d, P, "a") == 1);
	CHECK(dirsplit_owner_may_cache(d, P, "b") == 1);
	CHECK(dirsplit_owner_may_cache(d, Q, "a") == 1);
	CHECK(dirsplit_names(d) == 3); /* a repeated lookup records nothing twice */

	dirsplit_settle(d, P); /* P's names only, each once */
	CHECK(r.n == 2);
	CHECK(was_revoked(&r, P, "a") && was_revoked(&r, P, "b"));
	CHECK(dirsplit_names(d) == 1);
	CHECK(dirsplit_owner_may_cache(d, P, "c") == 0); /* held */
	CHECK(dirsplit_owner_may_cache(d, Q, "b") == 1);
	dirsplit_client_mark(d, P); /* the request's name, marked */
	dirsplit_settled(d, P);
	CHECK(dirsplit_owner_may_cache(d, P, "c") == 0);
	dirsplit_settle(d, P);
	dirsplit_settled(d, P);
	CHECK(r.n == 2);

	dirsplit_client_mark(d, P); /* two names of P marked */
	dirsplit_client_unmark(d, P);
	CHECK(dirsplit_owner_may_cache(d, P, "c") == 0);
	dirsplit_client_unmark(d, P);
	CHECK(dirsplit_owner_may_cache(d, P, "c") == 1);
	dirsplit_client_unmark(d, P); /* more unmarks than marks: no underflow */
	dirsplit_client_mark(d, P);
	CHECK(dirsplit_owner_may_cache(d, P, "d") == 0);
	dirsplit_close(d);
}

TEST(a_client_caching_everywhere_settles_every_directory)
{
	struct revoked r = { 0 };
	struct dirsplit *d;
	CHECK(dirsplit_open(&d, note, &r) == 0);
	CHECK(dirsplit_owner_may_cache(d, P, "a") == 1);
	CHECK(dirsplit_owner_may_cache(d, Q, "b") == 1);
	dirsplit_client_every(d, 1);
	CHECK(dirsplit_owner_may_cache(d, 12, "c") == 0);
	dirsplit_settle(d, 12);
	dirsplit_settled(d, 12);
	CHECK(r.n == 2 && was_revoked(&r, P, "a") && was_revoked(&r, Q, "b"));
	CHECK(dirsplit_names(d) == 0);
	dirsplit_client_every(d, -1);
	CHECK(dirsplit_owner_may_cache(d, 12, "c") == 1);
	dirsplit_client_every(d, -1); /* more than were: stays 0 */
	CHECK(dirsplit_owner_may_cache(d, 12, "d") == 1);
	dirsplit_close(d);
}

TEST(moved_dropped_and_revoke_name)
{
	struct revoked r = { 0 };
	struct dirsplit *d;
	CHECK(dirsplit_open(&d, note, &r) == 0);
	dirsplit_client_mark(d, Q);
	/* a rename moves the owner's entry into a directory a client caches:
	 * a stray, which a settle does not wait for */
	CHECK(dirsplit_owner_moved(d, Q, "m") == 1);
	CHECK(dirsplit_names(d) == 1);
	dirsplit_settle(d, Q);
	dirsplit_settled(d, Q);
	CHECK(r.n == 0);
	dirsplit_revoke_name(d, Q, "other");
	CHECK(r.n == 0);
	dirsplit_revoke_name(d, Q, "m");
	CHECK(r.n == 1 && was_revoked(&r, Q, "m"));
	dirsplit_revoke_name(d, Q, "m");
	CHECK(r.n == 1);
	/* moved into a directory only the owner caches: an owned name */
	CHECK(dirsplit_owner_moved(d, 12, "o") == 0);
	dirsplit_settle(d, 12);
	dirsplit_settled(d, 12);
	CHECK(r.n == 2 && was_revoked(&r, 12, "o"));
	/* the owner's own unlink: the record goes, nothing revoked */
	CHECK(dirsplit_owner_may_cache(d, P, "u") == 1);
	dirsplit_owner_dropped(d, P, "u");
	CHECK(dirsplit_names(d) == 0);
	dirsplit_settle(d, P);
	dirsplit_settled(d, P);
	CHECK(r.n == 2);
	dirsplit_close(d);
}

TEST(limit_and_disable)
{
	struct revoked r = { 0 };
	struct dirsplit *d;
	CHECK(dirsplit_open(&d, note, &r) == 0);
	char name[32];
	int refused = 0;
	for (unsigned i = 0; i <= DIRSPLIT_NAMES; i++) {
		snprintf(name, sizeof name, "f%u", i);
		refused += !dirsplit_owner_may_cache(d, 100 + i % 7, name);
	}
	CHECK(refused == 1);
	CHECK(dirsplit_names(d) == DIRSPLIT_NAMES);
	CHECK(dirsplit_owner_moved(d, P, "past") == 0); /* a moved name is recorded past it */
	CHECK(dirsplit_names(d) == DIRSPLIT_NAMES + 1);
	dirsplit_disable(d);
	CHECK(dirsplit_names(d) == 0);
	dirsplit_client_mark(d, P);
	CHECK(dirsplit_owner_may_cache(d, P, "x") == 1);
	dirsplit_settle(d, P);
	dirsplit_settled(d, P);
	CHECK(r.n == 0 && dirsplit_names(d) == 0);
	dirsplit_close(d);
}

/* A revocation that blocks (the owner's kernel holds the directory): a
 * second settle of the directory returns only after it finished. */
static sem_t in_revoke, go_on;
static atomic_int revokes_done;

static void slow(void *arg, uint64_t parent, const char *name)
{
	(void)arg;
	(void)parent;
	(void)name;
	sem_post(&in_revoke);
	sem_wait(&go_on);
	atomic_fetch_add(&revokes_done, 1);
}

static void *settler(void *arg)
{
	dirsplit_settle(arg, P);
	dirsplit_settled(arg, P);
	return NULL;
}

TEST(a_settle_waits_for_one_running)
{
	struct dirsplit *d;
	sem_init(&in_revoke, 0, 0);
	sem_init(&go_on, 0, 0);
	CHECK(dirsplit_open(&d, slow, NULL) == 0);
	CHECK(dirsplit_owner_may_cache(d, P, "a") == 1);
	pthread_t a, b;
	pthread_create(&a, NULL, settler, d);
	sem_wait(&in_revoke); /* a revokes, the record already gone */
	CHECK(dirsplit_owner_may_cache(d, P, "b") == 0);
	pthread_create(&b, NULL, settler, d);
	struct timespec ms = { 0, 50 * 1000 * 1000 };
	nanosleep(&ms, NULL);
	CHECK(pthread_tryjoin_np(b, NULL) != 0); /* still waiting for a */
	sem_post(&go_on);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	CHECK(atomic_load(&revokes_done) == 1);
	dirsplit_close(d);
}

int main(void)
{
	return unit_main("dirsplit");
}

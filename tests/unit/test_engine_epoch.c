/* Tests of dipolefs's write epoch in the engine (engine.h: engine_fs_arm,
 * engine_fs_fence, engine_fs_stale; docs/dipolefs.md "A cut-off owner"):
 * once fenced, frontend writes, reads and flushes fail with EIO, held
 * ones included, until the epoch is disarmed or armed anew; an unarmed
 * engine keeps DRBD's behaviour (a held write completes once resumed).
 * A Primary without peers on a temporary backing file. Links engine.o and
 * what it needs (state, event log, activity log, bitmap, metadata, disk). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "engine_env.h"

static int env_open(struct env *v)
{
	char msg[256];
	if (env_open_peer(v, -1))
		return -1;
	return engine_set_role(v->e, ROLE_PRIMARY, 1, msg);
}

struct held {
	struct engine *e;
	int rc;
};

static void *write_held(void *arg)
{
	struct held *h = arg;
	char buf[4096] = { 1 };
	h->rc = engine_write(h->e, buf, sizeof buf, 0, 0);
	return NULL;
}

/* a write waiting for suspended I/O, started and given time to wait */
static pthread_t start_held(struct held *h)
{
	pthread_t t;
	h->rc = 1;
	pthread_create(&t, NULL, write_held, h);
	usleep(100000);
	return t;
}

TEST(fenced_epoch_refuses_io_until_armed_anew)
{
	struct env v;
	char buf[4096] = { 7 }, why[200];
	CHECK(env_open(&v) == 0);
	CHECK(engine_write(v.e, buf, sizeof buf, 0, 0) == 0);
	uint64_t ep = engine_fs_arm(v.e);
	CHECK(ep != 0);
	CHECK(!engine_fs_stale(v.e, why) && why[0] == 0);
	CHECK(engine_write(v.e, buf, sizeof buf, 0, 0) == 0);
	CHECK(engine_fs_fence(v.e, "cut off") == 1);
	CHECK(engine_fs_fence(v.e, "again") == 0); /* fenced already */
	CHECK(engine_fs_stale(v.e, why));
	CHECK_STR_HAS(why, "cut off");
	CHECK(engine_write(v.e, buf, sizeof buf, 0, 0) == -EIO);
	CHECK(engine_read(v.e, buf, sizeof buf, 0) == -EIO);
	CHECK(engine_flush(v.e) == -EIO);
	CHECK(engine_trim(v.e, 0, 4096, 0) == -EIO);
	CHECK(engine_fs_arm(v.e) > ep); /* a new mount: a new epoch */
	CHECK(!engine_fs_stale(v.e, NULL));
	CHECK(engine_write(v.e, buf, sizeof buf, 0, 0) == 0);
	engine_fs_disarm(v.e);
	CHECK(engine_fs_fence(v.e, "not armed") == 0);
	CHECK(engine_write(v.e, buf, sizeof buf, 0, 0) == 0);
	env_close(&v);
}

/* A write held by suspended I/O (armed or not), ended by a fence or by
 * resuming: its result. */
static int held_write_ends(int armed, int fence)
{
	struct env v;
	struct held h;
	CHECK(env_open(&v) == 0);
	h.e = v.e;
	if (armed)
		engine_fs_arm(v.e);
	engine_suspend(v.e, "test: no quorum");
	pthread_t t = start_held(&h);
	CHECK(h.rc == 1); /* held */
	if (fence)
		engine_fs_fence(v.e, "cut off");
	else
		engine_resume(v.e, "test");
	pthread_join(t, NULL);
	engine_resume(v.e, "test"); /* (a fenced write does not come back) */
	env_close(&v);
	return h.rc;
}

TEST(fence_fails_a_held_write)
{
	CHECK(held_write_ends(1, 1) == -EIO);
}

TEST(unarmed_held_write_completes_when_resumed)
{
	CHECK(held_write_ends(0, 0) == 0);
}

int main(void)
{
	return unit_main("engine_epoch");
}

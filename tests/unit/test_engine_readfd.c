/* Tests of the engine's asynchronous-read contract (engine.h:
 * engine_read_fd, engine_read_fd_done), which the NBD server's io_uring
 * relies on: a descriptor only where engine_read would do nothing but one
 * aligned pread, and a completion that is short or failed sends the read
 * back to engine_read. On a temporary backing file: as a solo Primary,
 * and Inconsistent without a peer. Links engine.o and what it needs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "engine_env.h"

static void *aligned(size_t n)
{
	void *p = NULL;
	return posix_memalign(&p, DISK_ALIGN, n) ? NULL : p;
}

/* A solo Primary on a fresh backing file: 0 or -1. */
static int solo_primary(struct env *v)
{
	char msg[256];
	return env_open_peer(v, -1) || engine_set_role(v->e, ROLE_PRIMARY, 1, msg) ? -1 : 0;
}

TEST(read_fd_only_where_engine_read_is_one_pread)
{
	struct env v;
	uint8_t *buf = aligned(8192);
	CHECK(buf != NULL && solo_primary(&v) == 0);
	CHECK(engine_read_fd(v.e, buf, 4096, 0) >= 0);
	CHECK(engine_read_fd(v.e, buf, 4096, 512) == -1);          /* unaligned offset */
	CHECK(engine_read_fd(v.e, buf, 1000, 0) == -1);            /* unaligned length */
	CHECK(engine_read_fd(v.e, buf + 512, 4096, 0) == -1);      /* unaligned buffer */
	CHECK(engine_read_fd(v.e, buf, 4096, v.e->size) == -1);    /* past the end */
	engine_suspend(v.e, "test");
	CHECK(engine_read_fd(v.e, buf, 4096, 0) == -1);            /* engine_read waits: not here */
	engine_resume(v.e, "test");
	CHECK(engine_read_fd(v.e, buf, 4096, 0) >= 0);
	CHECK(engine_fs_arm(v.e) != 0);
	CHECK(engine_fs_fence(v.e, "cut off") == 1);
	CHECK(engine_read_fd(v.e, buf, 4096, 0) == -1);            /* refused: engine_read says EIO */
	engine_fs_disarm(v.e);
	CHECK(engine_read_fd(v.e, buf, 4096, 0) >= 0);
	env_close(&v);
	/* Inconsistent with no replica registered: engine_read has nothing
	 * better than its own disk, and neither has this. (With a peer it
	 * reads through the peer: sync_target.sh reads during a resync.) */
	CHECK(env_open_peer(&v, 1) == 0);
	CHECK(atomic_load(&v.e->dstate) == DS_INCONSISTENT && v.e->npeers == 0);
	CHECK(engine_read_fd(v.e, buf, 4096, 0) >= 0);
	env_close(&v);
	free(buf);
}

TEST(read_fd_done_counts_full_reads_and_sends_the_rest_back)
{
	struct env v;
	uint8_t *buf = aligned(4096);
	CHECK(buf != NULL && solo_primary(&v) == 0);
	uint64_t reads = atomic_load(&v.e->st.reads), errs = atomic_load(&v.e->st.io_errors);
	CHECK(engine_read_fd_done(v.e, buf, 0, 4096, 4096) == 0);
	CHECK(atomic_load(&v.e->st.reads) == reads + 1);
	CHECK(engine_read_fd_done(v.e, buf, 0, 4096, 2048) == -EAGAIN); /* short: redo */
	CHECK(engine_read_fd_done(v.e, buf, 0, 4096, -EINTR) == -EAGAIN);
	CHECK(atomic_load(&v.e->st.reads) == reads + 1 && atomic_load(&v.e->st.io_errors) == errs);
	/* a disk error is one: counted, and on-io-error (detach) applied */
	CHECK(engine_read_fd_done(v.e, buf, 0, 4096, -EIO) == -EAGAIN);
	CHECK(atomic_load(&v.e->st.io_errors) == errs + 1);
	CHECK(atomic_load(&v.e->dstate) == DS_DISKLESS);
	CHECK(engine_read_fd(v.e, buf, 4096, 0) == -1);
	env_close(&v);
	free(buf);
}

int main(void)
{
	return unit_main("engine_readfd");
}

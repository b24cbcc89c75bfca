/* Tests of resync data on a SyncTarget (engine.h: engine_apply_resync,
 * docs/failures.md "Three disks, a replica that differs"): data for a block
 * the target's bitmap does not mark is applied too, as the source may mark
 * a block after it sent its bitmap (a write that began before the
 * connection was up) and then sends it unannounced. A node with one peer
 * slot on a temporary backing file, made SyncTarget of a stand-in source. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "engine_env.h"
#include "replica.h"

static int env_open(struct env *v)
{
	return env_open_peer(v, 1);
}

/* the first byte of block b on the backing file (the data area starts at 0) */
static int block_byte(struct env *v, uint64_t b)
{
	unsigned char c = 0;
	int fd = open(v->path, O_RDONLY);
	if (fd < 0 || pread(fd, &c, 1, (off_t)(b * MD_BLOCK)) != 1)
		c = 0xff;
	if (fd >= 0)
		close(fd);
	return c;
}

TEST(resync_data_for_an_unmarked_block_is_applied)
{
	struct env v;
	static char src; /* the stand-in source replica */
	unsigned char buf[MD_BLOCK];
	CHECK(env_open(&v) == 0);
	if (!v.e)
		return;
	CHECK(engine_sync_target_begin(v.e, &src, 0, 0, 0) == 0);
	CHECK(engine_oos(v.e, 0) == 0); /* the merged bitmap marks nothing */
	memset(buf, 0x5a, sizeof buf);
	CHECK(engine_apply_resync(v.e, buf, sizeof buf, 7 * MD_BLOCK) == 0);
	CHECK(block_byte(&v, 7) == 0x5a);
	env_close(&v);
}

TEST(resync_data_for_a_marked_block_is_applied_and_clears_it)
{
	struct env v;
	static char src;
	unsigned char buf[MD_BLOCK];
	CHECK(env_open(&v) == 0);
	if (!v.e)
		return;
	CHECK(engine_sync_target_begin(v.e, &src, 0, 0, 0) == 0);
	engine_mark_oos(v.e, 0, 3 * MD_BLOCK, MD_BLOCK);
	CHECK(engine_oos(v.e, 0) == 1);
	memset(buf, 0x33, sizeof buf);
	CHECK(engine_apply_resync(v.e, buf, sizeof buf, 3 * MD_BLOCK) == 0);
	CHECK(block_byte(&v, 3) == 0x33);
	CHECK(engine_oos(v.e, 0) == 0);
	env_close(&v);
}

/* A stand-in source: has every write, reads zeros, connected, UpToDate. */
static struct pending *fake_write_begin(void *ctx, const void *buf, size_t len, uint64_t off, unsigned df,
					uint32_t stamp)
{
	(void)buf, (void)len, (void)off, (void)df, (void)stamp;
	return (struct pending *)ctx;
}
static int fake_write_end(void *ctx, struct pending *pd) { (void)ctx; return pd != NULL; }
static struct pending *fake_flush_begin(void *ctx) { return (struct pending *)ctx; }
static int fake_flush_end(void *ctx, struct pending *pd) { (void)ctx, (void)pd; return 1; }
static int fake_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	(void)ctx, (void)off;
	memset(buf, 0, len);
	return 0;
}
static int fake_yes(void *ctx) { (void)ctx; return 1; }
static void fake_changed(void *ctx) { (void)ctx; }
static int fake_may_promote(void *ctx, char *msg) { (void)ctx, (void)msg; return 0; }
static void fake_view(void *ctx, struct replica_view *v)
{
	(void)ctx;
	memset(v, 0, sizeof *v);
	v->connected = v->usable = 1;
	v->role = ROLE_SECONDARY;
	v->disk = DS_UPTODATE;
}
static const struct replica_ops fake_ops = { fake_write_begin, fake_write_end, fake_flush_begin, fake_flush_end,
					     fake_read, fake_yes, fake_yes, fake_yes, fake_changed,
					     fake_may_promote, fake_view };

/* A Primary SyncTarget writes block 5 itself; then resync data (older)
 * arrives for blocks 4..7 in one chunk: blocks 4, 6 and 7 take it, block 5
 * keeps the write. */
TEST(resync_data_skips_only_the_blocks_the_target_wrote)
{
	struct env v;
	static char src;
	char msg[256];
	unsigned char w[MD_BLOCK], rs[4 * MD_BLOCK];
	CHECK(env_open(&v) == 0);
	if (!v.e)
		return;
	CHECK(engine_add_replica(v.e, &fake_ops, &src, 0) == 0);
	CHECK(engine_sync_target_begin(v.e, &src, 0, 1, 0) == 0);
	CHECK(engine_set_role(v.e, ROLE_PRIMARY, 0, msg) == 0);
	memset(w, 0xaa, sizeof w);
	CHECK(engine_write(v.e, w, sizeof w, 5 * MD_BLOCK, 0) == 0);
	memset(rs, 0x11, sizeof rs);
	CHECK(engine_apply_resync(v.e, rs, sizeof rs, 4 * MD_BLOCK) == 0);
	CHECK(block_byte(&v, 4) == 0x11);
	CHECK(block_byte(&v, 5) == 0xaa);
	CHECK(block_byte(&v, 6) == 0x11 && block_byte(&v, 7) == 0x11);
	env_close(&v);
}

int main(void)
{
	return unit_main("engine_resync");
}

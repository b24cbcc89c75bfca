/* Unit tests for on-disk metadata (src/meta.c) on temporary files. */
#include "unit.h"
#include "meta.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static char path[64];

static struct disk *mkdisk(uint64_t size)
{
	struct disk *d = NULL;
	snprintf(path, sizeof path, "/tmp/dipole-mdtest-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		return NULL;
	close(fd);
	if (disk_open(&d, path, 0))
		return NULL;
	return d;
}

static void rmdisk(struct disk *d)
{
	disk_close(d);
	unlink(path);
}

TEST(crc32c_known_vector)
{
	CHECK(crc32c("123456789", 9) == 0xE3069283u);
}

TEST(layout_leaves_room_and_aligns)
{
	struct md_layout l;
	CHECK(md_layout(256ull << 20, 1, &l) == 0);
	CHECK(l.data_size % MD_BLOCK == 0);
	CHECK(l.data_size + l.al_bytes + l.bm_bytes + 2 * MD_SB_BYTES == l.disk_size);
	CHECK(l.bm_bytes * 8 * MD_BLOCK >= l.data_size);
	/* 1 TiB: bitmap 32 MiB */
	CHECK(md_layout(1ull << 40, 1, &l) == 0 && l.bm_bytes == 32ull << 20);
	/* odd sizes round down to 4 KiB */
	CHECK(md_layout((64ull << 20) + 1000, 1, &l) == 0 && l.disk_size == 64ull << 20);
	CHECK(md_layout(512 * 1024, 1, &l) == -ENOSPC);
}

TEST(create_then_read_roundtrip)
{
	struct disk *d = mkdisk(64ull << 20);
	struct md_super sb, rd;
	char err[MD_MSG_MAX], warn[MD_MSG_MAX];
	CHECK(d != NULL);
	if (!d)
		return;
	CHECK(md_read(d, &rd, err, warn) == -ENOENT);
	CHECK(md_create(d, 5, "swarm", 1, NULL, &sb) == 0);
	CHECK(md_read(d, &rd, err, warn) == 0);
	CHECK(rd.node_id == 5 && !strcmp(rd.resource, "swarm") && rd.seq == 1 && rd.slot == 0);
	CHECK(rd.lay.data_size == sb.lay.data_size && warn[0] == 0);
	CHECK((rd.flags & MDF_CONSISTENT) == 0);
	/* updates alternate slots and the newest wins */
	rd.flags |= MDF_CONSISTENT;
	CHECK(md_write(d, &rd) == 0 && rd.slot == 1 && rd.seq == 2);
	rd.uuid[UUID_CURRENT] = 0x1234;
	CHECK(md_write(d, &rd) == 0 && rd.slot == 0 && rd.seq == 3);
	struct md_super again;
	CHECK(md_read(d, &again, err, warn) == 0);
	CHECK(again.seq == 3 && again.uuid[UUID_CURRENT] == 0x1234 && (again.flags & MDF_CONSISTENT));
	rmdisk(d);
}

static void corrupt(struct disk *d, uint64_t off, uint8_t x)
{
	uint8_t b;
	CHECK(pread(d->bfd, &b, 1, (off_t)off) == 1);
	b ^= x;
	CHECK(pwrite(d->bfd, &b, 1, (off_t)off) == 1);
}

TEST(bad_crc_is_refused_with_offset)
{
	struct disk *d = mkdisk(64ull << 20);
	struct md_super sb, rd;
	char err[MD_MSG_MAX], warn[MD_MSG_MAX];
	CHECK(d && md_create(d, 0, "r", 1, NULL, &sb) == 0);
	corrupt(d, sb.lay.super_offset + 40, 0xff); /* data_size field, slot 0 */
	CHECK(md_read(d, &rd, err, warn) == -EBADMSG);
	CHECK_STR_HAS(err, "slot 0");
	CHECK_STR_HAS(err, "checksum mismatch");
	rmdisk(d);
}

TEST(bad_version_and_impossible_sizes_refused)
{
	struct disk *d = mkdisk(64ull << 20);
	struct md_super sb, rd;
	char err[MD_MSG_MAX], warn[MD_MSG_MAX];
	uint8_t blk[MD_SB_BYTES];
	CHECK(d && md_create(d, 0, "r", 1, NULL, &sb) == 0);
	/* re-encode slot 0 with an impossible data size but a valid crc */
	CHECK(pread(d->bfd, blk, sizeof blk, (off_t)sb.lay.super_offset) == (ssize_t)sizeof blk);
	put_le64(blk + 40, sb.lay.disk_size * 2);
	put_le32(blk + 508, crc32c(blk, 508));
	CHECK(pwrite(d->bfd, blk, sizeof blk, (off_t)sb.lay.super_offset) == (ssize_t)sizeof blk);
	CHECK(md_read(d, &rd, err, warn) == -EBADMSG);
	CHECK_STR_HAS(err, "impossible layout");
	/* a future format version */
	put_le64(blk + 40, sb.lay.data_size);
	put_le32(blk + 8, 99);
	put_le32(blk + 508, crc32c(blk, 508));
	CHECK(pwrite(d->bfd, blk, sizeof blk, (off_t)sb.lay.super_offset) == (ssize_t)sizeof blk);
	CHECK(md_read(d, &rd, err, warn) == -EBADMSG);
	CHECK_STR_HAS(err, "unsupported format version 99");
	rmdisk(d);
}

TEST(peer_slots_layout_and_roundtrip)
{
	struct md_layout l1, l3;
	CHECK(md_layout(256ull << 20, 1, &l1) == 0 && md_layout(256ull << 20, 3, &l3) == 0);
	CHECK(l3.bm_bytes == 3 * l1.bm_bytes && l3.bm_slot_bytes == l1.bm_bytes && l3.nslots == 3);
	CHECK(l3.data_size == l1.data_size - 2 * l1.bm_bytes);
	CHECK(md_layout(256ull << 20, 0, &l1) == -EINVAL && md_layout(256ull << 20, MD_MAX_PEERS + 1, &l1) == -EINVAL);

	struct disk *d = mkdisk(64ull << 20);
	struct md_super sb, rd;
	char err[MD_MSG_MAX], warn[MD_MSG_MAX];
	int ids[3] = { 2, 5, -1 };
	CHECK(d && md_create(d, 1, "r", 3, ids, &sb) == 0);
	CHECK(md_read(d, &rd, err, warn) == 0);
	CHECK(rd.lay.nslots == 3 && rd.peer[0].node_id == 2 && rd.peer[1].node_id == 5 && rd.peer[2].node_id == -1);
	rd.peer[1].bitmap_uuid = 0xabcdef00;
	rd.peer[2].flags = MDP_UNSURE;
	CHECK(md_write(d, &rd) == 0);
	struct md_super again;
	CHECK(md_read(d, &again, err, warn) == 0);
	CHECK(again.peer[1].bitmap_uuid == 0xabcdef00 && again.peer[2].flags == MDP_UNSURE && again.uuid[UUID_BITMAP] == 0);
	/* each slot's bitmap is its own */
	uint8_t *a = calloc(1, rd.lay.bm_slot_bytes), *b = calloc(1, rd.lay.bm_slot_bytes);
	a[0] = 0x5a;
	CHECK(md_write_bitmap(d, &rd, 1, a) == 0);
	CHECK(md_read_bitmap(d, &rd, 0, b) == 0 && b[0] == 0);
	CHECK(md_read_bitmap(d, &rd, 1, b) == 0 && b[0] == 0x5a);
	CHECK(md_bitmap_offset(&rd, 2) == rd.lay.bm_offset + 2 * rd.lay.bm_slot_bytes);
	free(a);
	free(b);
	/* an impossible slot count is corruption, not a crash */
	uint8_t blk[MD_SB_BYTES];
	CHECK(pread(d->bfd, blk, sizeof blk, (off_t)(rd.lay.super_offset + (uint64_t)again.slot * MD_SB_BYTES)) ==
	      (ssize_t)sizeof blk);
	put_le32(blk + 212, 9);
	put_le32(blk + 508, crc32c(blk, 508));
	CHECK(pwrite(d->bfd, blk, sizeof blk, (off_t)(rd.lay.super_offset + (uint64_t)again.slot * MD_SB_BYTES)) ==
	      (ssize_t)sizeof blk);
	CHECK(md_read(d, &rd, err, warn) == 0); /* the older slot is used */
	CHECK_STR_HAS(warn, "impossible number of peer slots 9");
	rmdisk(d);
}

/* The history past its first two entries lives in bytes 336.. that older
 * dipoles wrote as 0 (and ignore): it round-trips, and metadata without it
 * reads as a history of two. */
TEST(deep_history_roundtrip)
{
	struct disk *d = mkdisk(64ull << 20);
	struct md_super sb, rd;
	char err[MD_MSG_MAX], warn[MD_MSG_MAX];
	int ids[2] = { 1, 2 };
	CHECK(d && md_create(d, 0, "r", 2, ids, &sb) == 0);
	for (int i = UUID_HISTORY0; i < UUID_COUNT; i++)
		sb.uuid[i] = 0x1000u + (uint64_t)i;
	CHECK(md_write(d, &sb) == 0 && md_read(d, &rd, err, warn) == 0);
	for (int i = UUID_HISTORY0; i < UUID_COUNT; i++)
		CHECK(rd.uuid[i] == 0x1000u + (uint64_t)i);
	/* an older dipole's superblock: zeros there, a history of two */
	uint8_t blk[MD_SB_BYTES];
	off_t at = (off_t)(rd.lay.super_offset + (uint64_t)rd.slot * MD_SB_BYTES);
	CHECK(pread(d->bfd, blk, sizeof blk, at) == (ssize_t)sizeof blk);
	CHECK(get_le64(blk + 96 + 8 * UUID_HISTORY1) == 0x1000u + UUID_HISTORY1 && get_le64(blk + 336) == 0x1004u);
	memset(blk + 336, 0, 8 * (UUID_COUNT - UUID_SHORT));
	put_le32(blk + 508, crc32c(blk, 508));
	CHECK(pwrite(d->bfd, blk, sizeof blk, at) == (ssize_t)sizeof blk);
	CHECK(md_read(d, &rd, err, warn) == 0);
	CHECK(rd.uuid[UUID_HISTORY0] == 0x1002u && rd.uuid[UUID_HISTORY1] == 0x1003u && rd.uuid[UUID_SHORT] == 0);
	rmdisk(d);
}

TEST(history_push_and_append)
{
	uint64_t u[UUID_COUNT] = { [UUID_CURRENT] = 50 };
	md_history_push(u, 40);
	md_history_push(u, 30);
	CHECK(u[UUID_HISTORY0] == 30 && u[UUID_HISTORY1] == 40 && u[UUID_HISTORY1 + 1] == 0);
	md_history_push(u, 40); /* there already: moves to the front, no duplicate */
	CHECK(u[UUID_HISTORY0] == 40 && u[UUID_HISTORY1] == 30 && u[UUID_HISTORY1 + 1] == 0);
	md_history_push(u, 0);
	md_history_push(u, 50); /* the current generation is no history */
	CHECK(u[UUID_HISTORY0] == 40);
	for (uint64_t g = 1; g <= MD_HISTORY; g++)
		md_history_push(u, 100 + g);
	CHECK(u[UUID_HISTORY0] == 100 + MD_HISTORY && u[UUID_COUNT - 1] == 101); /* the oldest dropped off */
	uint64_t v[UUID_COUNT] = { [UUID_CURRENT] = 9, [UUID_HISTORY0] = 8 };
	md_history_append(v, 7);
	md_history_append(v, 8);
	md_history_append(v, 9);
	CHECK(v[UUID_HISTORY0] == 8 && v[UUID_HISTORY1] == 7 && v[UUID_HISTORY1 + 1] == 0);
	for (uint64_t g = 1; g <= MD_HISTORY; g++)
		md_history_append(v, 200 + g);
	CHECK(v[UUID_COUNT - 1] == 200 + MD_HISTORY - 2); /* full: the rest is not kept */
}

/* Metadata written by the first format (one peer) is read as one unbound
 * slot holding the old bitmap generation. */
TEST(version1_superblock_is_read)
{
	struct disk *d = mkdisk(64ull << 20);
	struct md_super sb, rd;
	char err[MD_MSG_MAX], warn[MD_MSG_MAX];
	uint8_t blk[MD_SB_BYTES];
	CHECK(d && md_create(d, 3, "r", 1, NULL, &sb) == 0);
	CHECK(pread(d->bfd, blk, sizeof blk, (off_t)sb.lay.super_offset) == (ssize_t)sizeof blk);
	/* a v1 slot: version 1, bitmap generation in uuid[1], crc at 252 */
	put_le32(blk + 8, 1);
	put_le32(blk + 12, 256);
	put_le64(blk + 96 + 8, 0x7777);
	memset(blk + 212, 0, MD_SB_BYTES - 212);
	put_le32(blk + 252, crc32c(blk, 252));
	CHECK(pwrite(d->bfd, blk, sizeof blk, (off_t)sb.lay.super_offset) == (ssize_t)sizeof blk);
	CHECK(md_read(d, &rd, err, warn) == 0);
	CHECK(rd.lay.nslots == 1 && rd.peer[0].node_id == -1 && rd.peer[0].bitmap_uuid == 0x7777);
	CHECK(rd.uuid[UUID_BITMAP] == 0 && rd.node_id == 3 && rd.lay.bm_slot_bytes == rd.lay.bm_bytes);
	/* written back as v2 */
	CHECK(md_write(d, &rd) == 0);
	CHECK(pread(d->bfd, blk, sizeof blk, (off_t)(sb.lay.super_offset + MD_SB_BYTES)) == (ssize_t)sizeof blk);
	CHECK(get_le32(blk + 8) == 2);
	rmdisk(d);
}

TEST(torn_newer_slot_falls_back_with_warning)
{
	struct disk *d = mkdisk(64ull << 20);
	struct md_super sb, rd;
	char err[MD_MSG_MAX], warn[MD_MSG_MAX];
	CHECK(d && md_create(d, 0, "r", 1, NULL, &sb) == 0);
	sb.uuid[UUID_CURRENT] = 77;
	CHECK(md_write(d, &sb) == 0 && sb.slot == 1); /* seq 2 in slot 1 */
	corrupt(d, sb.lay.super_offset + MD_SB_BYTES + 100, 0x55); /* tear slot 1 */
	CHECK(md_read(d, &rd, err, warn) == 0);
	CHECK(rd.seq == 1 && rd.slot == 0 && rd.uuid[UUID_CURRENT] == 4);
	CHECK_STR_HAS(warn, "slot 1 is damaged");
	rmdisk(d);
}

TEST(resized_disk_detected)
{
	struct disk *d = mkdisk(64ull << 20);
	struct md_super sb, rd;
	char err[MD_MSG_MAX], warn[MD_MSG_MAX];
	CHECK(d && md_create(d, 0, "r", 1, NULL, &sb) == 0);
	/* grow by moving the superblock region forward as a careless copy would */
	uint8_t blk[2 * MD_SB_BYTES];
	CHECK(pread(d->bfd, blk, sizeof blk, (off_t)sb.lay.super_offset) == (ssize_t)sizeof blk);
	CHECK(ftruncate(d->bfd, (off_t)(128ull << 20)) == 0);
	CHECK(pwrite(d->bfd, blk, sizeof blk, (off_t)((128ull << 20) - sizeof blk)) == (ssize_t)sizeof blk);
	d->size = 128ull << 20;
	CHECK(md_read(d, &rd, err, warn) == -EBADMSG);
	CHECK_STR_HAS(err, "resized?");
	rmdisk(d);
}

TEST(foreign_data_is_not_metadata)
{
	struct disk *d = mkdisk(8ull << 20);
	struct md_super rd;
	char err[MD_MSG_MAX], warn[MD_MSG_MAX];
	uint8_t junk[2 * MD_SB_BYTES];
	struct md_layout l;
	CHECK(d && md_layout(d->size, 1, &l) == 0);
	memset(junk, 0xA5, sizeof junk);
	CHECK(pwrite(d->bfd, junk, sizeof junk, (off_t)l.super_offset) == (ssize_t)sizeof junk);
	CHECK(md_read(d, &rd, err, warn) == -ENOENT);
	rmdisk(d);
}

TEST(filesystem_signatures)
{
	struct disk *d = mkdisk(8ull << 20);
	uint8_t m[2] = { 0x53, 0xEF };
	CHECK(d && md_probe_signature(d) == NULL);
	CHECK(pwrite(d->bfd, m, 2, 1080) == 2);
	CHECK_STR_HAS(md_probe_signature(d), "ext2/ext3/ext4");
	CHECK(pwrite(d->bfd, "\0\0", 2, 1080) == 2);
	CHECK(pwrite(d->bfd, "XFSB", 4, 0) == 4);
	CHECK_STR_HAS(md_probe_signature(d), "XFS");
	rmdisk(d);
}

/* grow the file behind d to `size` bytes, as lvextend/truncate would */
static void grow(struct disk *d, uint64_t size)
{
	CHECK(ftruncate(d->bfd, (off_t)size) == 0);
	d->size = size;
}

TEST(la_size_roundtrip)
{
	struct disk *d = mkdisk(64ull << 20);
	struct md_super sb, rd;
	char err[MD_MSG_MAX], warn[MD_MSG_MAX];
	CHECK(d && md_create(d, 0, "r", 1, NULL, &sb) == 0);
	CHECK(sb.la_size == 0);
	sb.la_size = 40ull << 20;
	CHECK(md_write(d, &sb) == 0);
	CHECK(md_read(d, &rd, err, warn) == 0 && rd.la_size == 40ull << 20);
	rmdisk(d);
}

TEST(grown_disk_finds_metadata_at_old_end)
{
	struct disk *d = mkdisk(64ull << 20);
	struct md_super sb, rd;
	char err[MD_MSG_MAX], warn[MD_MSG_MAX];
	CHECK(d && md_create(d, 3, "r", 2, NULL, &sb) == 0);
	sb.uuid[UUID_CURRENT] = 1234;
	CHECK(md_write(d, &sb) == 0);
	grow(d, 96ull << 20);
	CHECK(md_read(d, &rd, err, warn) == 0);
	CHECK(rd.lay.disk_size == 64ull << 20 && rd.uuid[UUID_CURRENT] == 1234 && rd.node_id == 3);
	CHECK(rd.lay.nslots == 2);
	CHECK_STR_HAS(warn, "grew from 64.0 MiB");
	/* an unaligned growth too */
	grow(d, (96ull << 20) + 12345);
	CHECK(md_read(d, &rd, err, warn) == 0 && rd.lay.disk_size == 64ull << 20);
	rmdisk(d);
}

static void fill_bitmap(struct disk *d, const struct md_super *sb, uint32_t slot, uint8_t v)
{
	uint8_t *bm = malloc(sb->lay.bm_slot_bytes);
	memset(bm, v, sb->lay.bm_slot_bytes);
	CHECK(md_write_bitmap(d, sb, slot, bm) == 0);
	free(bm);
}

/* slot's bitmap: the first `ones` bytes are v, the rest zero */
static int bitmap_is(struct disk *d, const struct md_super *sb, uint32_t slot, uint64_t ones, uint8_t v)
{
	uint8_t *bm = malloc(sb->lay.bm_slot_bytes);
	int ok = md_read_bitmap(d, sb, slot, bm) == 0;
	for (uint64_t i = 0; ok && i < sb->lay.bm_slot_bytes; i++)
		ok = bm[i] == (i < ones ? v : 0);
	free(bm);
	return ok;
}

TEST(move_grows_layout_and_keeps_bitmaps)
{
	struct disk *d = mkdisk(64ull << 20);
	struct md_super sb, rd, old;
	char err[MD_MSG_MAX], warn[MD_MSG_MAX];
	CHECK(d && md_create(d, 0, "r", 2, NULL, &sb) == 0);
	fill_bitmap(d, &sb, 0, 0x11);
	fill_bitmap(d, &sb, 1, 0x22);
	sb.la_size = sb.lay.data_size;
	CHECK(md_write(d, &sb) == 0);
	old = sb;
	grow(d, 200ull << 20);
	CHECK(md_move(d, &sb, d->size, MD_MOVE_ALL) == 0);
	CHECK(sb.lay.disk_size == 200ull << 20 && sb.seq == old.seq + 1 && sb.la_size == old.la_size);
	CHECK(md_read(d, &rd, err, warn) == 0 && rd.seq == sb.seq && warn[0] == 0);
	CHECK(rd.lay.bm_slot_bytes > old.lay.bm_slot_bytes);
	CHECK(bitmap_is(d, &rd, 0, old.lay.bm_slot_bytes, 0x11));
	CHECK(bitmap_is(d, &rd, 1, old.lay.bm_slot_bytes, 0x22));
	/* the old pair is gone: nothing at the old end is metadata any more */
	uint8_t z[2 * MD_SB_BYTES], zero[2 * MD_SB_BYTES] = { 0 };
	CHECK(pread(d->bfd, z, sizeof z, (off_t)old.lay.super_offset) == (ssize_t)sizeof z);
	CHECK(!memcmp(z, zero, sizeof z));
	rmdisk(d);
}

TEST(move_refuses_shrink_and_overlap)
{
	struct disk *d = mkdisk(64ull << 20);
	struct md_super sb, keep;
	CHECK(d && md_create(d, 0, "r", 1, NULL, &sb) == 0);
	keep = sb;
	CHECK(md_move(d, &sb, 64ull << 20, MD_MOVE_ALL) == -EINVAL);
	grow(d, (64ull << 20) + 8192);
	CHECK(md_move(d, &sb, d->size, MD_MOVE_ALL) == -ENOSPC);
	CHECK(md_move(d, &sb, 1ull << 40, MD_MOVE_ALL) == -EINVAL);
	CHECK(!memcmp(&sb, &keep, sizeof sb));
	rmdisk(d);
}

TEST(move_interrupted_recovers_either_copy)
{
	char err[MD_MSG_MAX], warn[MD_MSG_MAX];
	for (int steps = 1; steps <= 2; steps++) {
		struct disk *d = mkdisk(64ull << 20);
		struct md_super sb, rd, old;
		CHECK(d && md_create(d, 0, "r", 1, NULL, &sb) == 0);
		fill_bitmap(d, &sb, 0, 0x5a);
		old = sb;
		grow(d, 128ull << 20);
		CHECK(md_move(d, &sb, d->size, steps) == 0);
		CHECK(md_read(d, &rd, err, warn) == 0);
		if (steps == 1) { /* crash before the new superblock: the old metadata */
			CHECK(rd.lay.disk_size == 64ull << 20 && rd.seq == old.seq);
			CHECK_STR_HAS(warn, "old end");
			/* and the move can be done again from there */
			CHECK(md_move(d, &rd, d->size, MD_MOVE_ALL) == 0);
			CHECK(md_read(d, &rd, err, warn) == 0 && rd.lay.disk_size == 128ull << 20);
		} else { /* crash before the old pair was cleared: the new one wins */
			CHECK(rd.lay.disk_size == 128ull << 20 && rd.seq == old.seq + 1);
		}
		CHECK(bitmap_is(d, &rd, 0, old.lay.bm_slot_bytes, 0x5a));
		rmdisk(d);
	}
}

int main(void)
{
	return unit_main("meta");
}

/* Unit tests for the out-of-sync bitmaps (src/store/bitmap.c) on temporary
 * sparse files with fresh metadata: ranges across byte, word and page
 * boundaries, the ends of the device, refusals, counts, iteration, the
 * on-disk form (docs/metadata.md) and a power cut before a flush. */
#include "unit.h"
#include "bitmap.h"
#include "meta.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BPP (MD_BLOCK * 8ull) /* blocks per bitmap page */

static char path[64], fault_path[64];

/* A disk of `size` bytes with metadata of `nslots` peer slots. */
static struct disk *mkdisk(uint64_t size, uint32_t nslots, struct md_super *sb)
{
	struct disk *d = NULL;
	snprintf(path, sizeof path, "/tmp/dipole-bmtest-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		return NULL;
	close(fd);
	if (disk_open(&d, path, 0) || md_create(d, 1, "r", nslots, NULL, sb)) {
		disk_close(d);
		return NULL;
	}
	return d;
}

static void rmdisk(struct disk *d)
{
	disk_close(d);
	unlink(path);
}

/* 256 MiB: two bitmap pages per slot, so page boundaries can be crossed. */
static struct bitmap *mkbitmap(uint32_t nslots, struct disk **d, struct md_super *sb)
{
	struct bitmap *b = NULL;
	*d = mkdisk(256ull << 20, nslots, sb);
	if (!*d || bitmap_open(&b, *d, sb)) {
		if (*d)
			rmdisk(*d);
		*d = NULL;
		return NULL;
	}
	return b;
}

/* Exactly blocks [first, first+n) of the window [lo, hi) are set. */
static int only_set(struct bitmap *b, int slot, uint64_t first, uint64_t n, uint64_t lo, uint64_t hi)
{
	for (uint64_t k = lo; k < hi; k++)
		if (bitmap_test(b, slot, k) != (k >= first && k < first + n))
			return 0;
	return 1;
}

TEST(geometry_follows_the_layout)
{
	struct disk *d;
	struct md_super sb;
	struct bitmap *b = mkbitmap(3, &d, &sb);
	CHECK(b != NULL);
	if (!b)
		return;
	CHECK(bitmap_bits(b) == sb.lay.data_size / MD_BLOCK);
	CHECK(bitmap_bits(b) > 2 * BPP - BPP / 2 && bitmap_bits(b) < 2 * BPP); /* into the second page */
	CHECK(bitmap_nslots(b) == 3);
	for (int s = 0; s < 3; s++)
		CHECK(bitmap_oos(b, s) == 0 && bitmap_next(b, s, 0) == UINT64_MAX);
	bitmap_close(b);
	rmdisk(d);
}

TEST(ranges_across_byte_word_and_page_boundaries)
{
	struct disk *d;
	struct md_super sb;
	struct bitmap *b = mkbitmap(1, &d, &sb);
	uint64_t ch = 0;
	CHECK(b != NULL);
	if (!b)
		return;
	static const uint64_t cases[][2] = {
		{ 6, 4 },              /* byte 0 into byte 1 */
		{ 60, 10 },            /* word 0 into word 1 */
		{ 100, 200 },          /* several whole words */
		{ BPP - 5, 12 },       /* page 0 into page 1 */
		{ 64, 64 },            /* exactly one word */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t f = cases[i][0], n = cases[i][1];
		uint64_t lo = f > 70 ? f - 70 : 0, hi = f + n + 70;
		CHECK(bitmap_set(b, 0, f, n, &ch) == 0 && ch == n);
		CHECK(bitmap_oos(b, 0) == n);
		CHECK(only_set(b, 0, f, n, lo, hi));
		CHECK(bitmap_next(b, 0, 0) == f && bitmap_next(b, 0, f + 1) == (n > 1 ? f + 1 : UINT64_MAX));
		CHECK(bitmap_next(b, 0, f + n) == UINT64_MAX);
		CHECK(bitmap_clear(b, 0, f, n, &ch) == 0 && ch == n);
		CHECK(bitmap_oos(b, 0) == 0 && only_set(b, 0, 0, 0, lo, hi));
	}
	bitmap_close(b);
	rmdisk(d);
}

TEST(byte_ranges_mark_every_block_they_touch)
{
	struct disk *d;
	struct md_super sb;
	struct bitmap *b = mkbitmap(1, &d, &sb);
	uint64_t ch = 0;
	CHECK(b != NULL);
	if (!b)
		return;
	CHECK(bitmap_set_bytes(b, 0, 1, 1, &ch) == 0 && ch == 1 && only_set(b, 0, 0, 1, 0, 8));
	CHECK(bitmap_clear(b, 0, 0, 1, NULL) == 0);
	/* two bytes straddling blocks 0 and 1 */
	CHECK(bitmap_set_bytes(b, 0, MD_BLOCK - 1, 2, &ch) == 0 && ch == 2 && only_set(b, 0, 0, 2, 0, 8));
	CHECK(bitmap_clear(b, 0, 0, 2, NULL) == 0);
	/* one whole aligned block is that block only */
	CHECK(bitmap_set_bytes(b, 0, 3 * MD_BLOCK, MD_BLOCK, &ch) == 0 && ch == 1 && only_set(b, 0, 3, 1, 0, 8));
	/* overlapping: only blocks not yet set count */
	CHECK(bitmap_set_bytes(b, 0, 2 * MD_BLOCK + 10, 2 * MD_BLOCK, &ch) == 0 && ch == 2);
	CHECK(only_set(b, 0, 2, 3, 0, 8) && bitmap_oos(b, 0) == 3);
	bitmap_close(b);
	rmdisk(d);
}

TEST(first_and_last_block)
{
	struct disk *d;
	struct md_super sb;
	struct bitmap *b = mkbitmap(1, &d, &sb);
	CHECK(b != NULL);
	if (!b)
		return;
	uint64_t last = bitmap_bits(b) - 1, size = sb.lay.data_size;
	CHECK(bitmap_set(b, 0, 0, 1, NULL) == 0 && bitmap_test(b, 0, 0) == 1 && bitmap_test(b, 0, 1) == 0);
	CHECK(bitmap_set_bytes(b, 0, size - 1, 1, NULL) == 0 && bitmap_test(b, 0, last) == 1);
	CHECK(bitmap_test(b, 0, last - 1) == 0 && bitmap_oos(b, 0) == 2);
	CHECK(bitmap_next(b, 0, 1) == last && bitmap_next(b, 0, last) == last);
	CHECK(bitmap_clear(b, 0, last, 1, NULL) == 0 && bitmap_next(b, 0, 1) == UINT64_MAX);
	/* the whole device at once */
	uint64_t ch = 0;
	CHECK(bitmap_set_bytes(b, 0, 0, size, &ch) == 0 && ch == last && bitmap_oos(b, 0) == last + 1);
	CHECK(bitmap_clear(b, 0, 0, last + 1, &ch) == 0 && ch == last + 1 && bitmap_oos(b, 0) == 0);
	bitmap_close(b);
	rmdisk(d);
}

TEST(empty_and_out_of_range_are_refused)
{
	struct disk *d;
	struct md_super sb;
	struct bitmap *b = mkbitmap(2, &d, &sb);
	uint8_t w[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	CHECK(b != NULL);
	if (!b)
		return;
	uint64_t bits = bitmap_bits(b), size = sb.lay.data_size, nw = (bits + 63) / 64;
	CHECK(bitmap_set(b, 0, 5, 0, NULL) == -EINVAL);
	CHECK(bitmap_set_bytes(b, 0, 5, 0, NULL) == -EINVAL);
	CHECK(bitmap_clear(b, 0, 5, 0, NULL) == -EINVAL);
	CHECK(bitmap_merge_le(b, 0, 0, w, 0) == -EINVAL);
	/* slots that do not exist */
	CHECK(bitmap_set(b, -1, 0, 1, NULL) == -EINVAL && bitmap_set(b, 2, 0, 1, NULL) == -EINVAL);
	CHECK(bitmap_set(b, MD_MAX_PEERS, 0, 1, NULL) == -EINVAL);
	CHECK(bitmap_test(b, -1, 0) == -EINVAL && bitmap_clear(b, 2, 0, 1, NULL) == -EINVAL);
	CHECK(bitmap_next(b, 2, 0) == UINT64_MAX && bitmap_oos(b, -1) == 0 && bitmap_words(b, 2) == NULL);
	/* past the end, partly or wholly, and wrapping around */
	CHECK(bitmap_set(b, 0, bits, 1, NULL) == -ERANGE);
	CHECK(bitmap_set(b, 0, bits - 1, 2, NULL) == -ERANGE);
	CHECK(bitmap_set(b, 0, 0, bits + 1, NULL) == -ERANGE);
	CHECK(bitmap_set(b, 0, 10, UINT64_MAX, NULL) == -ERANGE);
	CHECK(bitmap_set_bytes(b, 0, size - MD_BLOCK, MD_BLOCK + 1, NULL) == -ERANGE);
	CHECK(bitmap_set_bytes(b, 0, size, 1, NULL) == -ERANGE);
	CHECK(bitmap_set_bytes(b, 0, UINT64_MAX - 10, 100, NULL) == -ERANGE);
	CHECK(bitmap_clear(b, 0, bits - 1, 2, NULL) == -ERANGE);
	CHECK(bitmap_test(b, 0, bits) == -ERANGE);
	CHECK(bitmap_merge_le(b, 0, nw - 1, w, 2) == -ERANGE && bitmap_merge_le(b, 0, nw, w, 1) == -ERANGE);
	CHECK(bitmap_next(b, 0, bits) == UINT64_MAX && bitmap_next(b, 0, UINT64_MAX) == UINT64_MAX);
	/* a refused range changed nothing, not even its part on the device */
	CHECK(bitmap_oos(b, 0) == 0 && bitmap_oos(b, 1) == 0 && bitmap_test(b, 0, bits - 1) == 0);
	CHECK(bitmap_next(b, 0, 0) == UINT64_MAX);
	bitmap_close(b);
	rmdisk(d);
}

TEST(counts_are_exact)
{
	struct disk *d;
	struct md_super sb;
	struct bitmap *b = mkbitmap(1, &d, &sb);
	uint64_t ch = 0;
	CHECK(b != NULL);
	if (!b)
		return;
	CHECK(bitmap_set(b, 0, 10, 100, &ch) == 0 && ch == 100);
	CHECK(bitmap_set(b, 0, 50, 100, &ch) == 0 && ch == 40);   /* 50..109 were set */
	CHECK(bitmap_oos(b, 0) == 140);
	CHECK(bitmap_clear(b, 0, 0, 30, &ch) == 0 && ch == 20);   /* 10..29 */
	CHECK(bitmap_clear(b, 0, 0, 30, &ch) == 0 && ch == 0);
	CHECK(bitmap_oos(b, 0) == 120);
	uint64_t n = 0;
	for (uint64_t k = 0; k < 300; k++)
		n += bitmap_test(b, 0, k) == 1;
	CHECK(n == 120);
	bitmap_close(b);
	rmdisk(d);
}

TEST(next_set_bit_iteration)
{
	struct disk *d;
	struct md_super sb;
	struct bitmap *b = mkbitmap(1, &d, &sb);
	CHECK(b != NULL);
	if (!b)
		return;
	uint64_t last = bitmap_bits(b) - 1;
	const uint64_t want[] = { 0, 1, 63, 64, 127, 4095, BPP - 1, BPP, BPP + 64, last };
	const size_t nwant = sizeof want / sizeof want[0];
	for (size_t i = 0; i < nwant; i++)
		CHECK(bitmap_set(b, 0, want[i], 1, NULL) == 0);
	size_t i = 0;
	for (uint64_t k = bitmap_next(b, 0, 0); k != UINT64_MAX; k = bitmap_next(b, 0, k + 1), i++)
		CHECK(i < nwant && k == want[i]);
	CHECK(i == nwant);
	/* from inside a word, past its set bits */
	CHECK(bitmap_next(b, 0, 2) == 63 && bitmap_next(b, 0, 65) == 127 && bitmap_next(b, 0, 128) == 4095);
	bitmap_close(b);
	rmdisk(d);
}

/* Words from the wire: ORed in, counted once, nothing past the device. */
TEST(merge_words_little_endian)
{
	struct disk *d;
	struct md_super sb;
	struct bitmap *b = mkbitmap(1, &d, &sb);
	uint8_t w[16];
	uint64_t ch = 0;
	CHECK(b != NULL);
	if (!b)
		return;
	uint64_t bits = bitmap_bits(b), nw = (bits + 63) / 64;
	put_le64(w, 0x8000000000000001ull);     /* blocks 64 and 127 */
	put_le64(w + 8, 0x0000000000000100ull); /* block 136 */
	CHECK(bitmap_set(b, 0, 64, 1, NULL) == 0);
	CHECK(bitmap_merge_le(b, 0, 1, w, 2) == 0);
	CHECK(bitmap_oos(b, 0) == 3 && bitmap_test(b, 0, 127) == 1 && bitmap_test(b, 0, 136) == 1);
	CHECK(bitmap_test(b, 0, 128) == 0 && bitmap_test(b, 0, 63) == 0);
	/* an all-ones last word: only the blocks on the device */
	memset(w, 0xff, 8);
	CHECK(bitmap_merge_le(b, 0, nw - 1, w, 1) == 0);
	uint64_t tail = bits % 64 ? bits % 64 : 64;
	CHECK(bitmap_oos(b, 0) == 3 + tail);
	CHECK(bitmap_clear(b, 0, (nw - 1) * 64, tail, &ch) == 0 && ch == tail && bitmap_oos(b, 0) == 3);
	bitmap_close(b);
	rmdisk(d);
}

TEST(slots_are_independent)
{
	struct disk *d;
	struct md_super sb;
	struct bitmap *b = mkbitmap(3, &d, &sb);
	CHECK(b != NULL);
	if (!b)
		return;
	CHECK(bitmap_set(b, 1, 100, 10, NULL) == 0);
	CHECK(bitmap_oos(b, 0) == 0 && bitmap_oos(b, 1) == 10 && bitmap_oos(b, 2) == 0);
	CHECK(bitmap_next(b, 0, 0) == UINT64_MAX && bitmap_next(b, 2, 0) == UINT64_MAX);
	CHECK(bitmap_set(b, 2, 105, 10, NULL) == 0);
	CHECK(bitmap_clear(b, 1, 0, 200, NULL) == 0);
	CHECK(bitmap_oos(b, 1) == 0 && bitmap_oos(b, 2) == 10 && bitmap_test(b, 2, 105) == 1);
	CHECK(bitmap_words(b, 0) != bitmap_words(b, 2));
	bitmap_close(b);
	rmdisk(d);
}

/* bitmap_any (what the activity log's eviction asks before it writes an
 * extent's page): any slot, range edges inside and across words, the last
 * block, refusals. */
TEST(any_set_in_a_range)
{
	struct disk *d;
	struct md_super sb;
	struct bitmap *b = mkbitmap(3, &d, &sb);
	CHECK(b != NULL);
	if (!b)
		return;
	uint64_t bits = bitmap_bits(b);
	CHECK(bitmap_any(b, 0, bits) == 0);
	CHECK(bitmap_set(b, 2, 1000, 1, NULL) == 0); /* only in the third slot */
	CHECK(bitmap_any(b, 0, bits) == 1 && bitmap_any(b, 1000, 1) == 1);
	CHECK(bitmap_any(b, 0, 1000) == 0 && bitmap_any(b, 1001, 63) == 0);
	CHECK(bitmap_any(b, 999, 2) == 1 && bitmap_any(b, 936, 64) == 0 && bitmap_any(b, 937, 64) == 1);
	CHECK(bitmap_any(b, 1024, 1024) == 0);
	CHECK(bitmap_set(b, 0, bits - 1, 1, NULL) == 0);
	CHECK(bitmap_any(b, bits - 1, 1) == 1 && bitmap_any(b, bits - 65, 64) == 0);
	CHECK(bitmap_any(b, 0, 0) == -EINVAL && bitmap_any(b, bits, 1) == -ERANGE && bitmap_any(b, 1, bits) == -ERANGE);
	CHECK(bitmap_clear(b, 2, 1000, 1, NULL) == 0 && bitmap_any(b, 0, bits - 1) == 0);
	bitmap_close(b);
	rmdisk(d);
}

/* A pattern in three slots, saved and read by a second bitmap: the same
 * bits, and on disk the little-endian words of docs/metadata.md. */
TEST(persistence_round_trip_and_disk_format)
{
	struct disk *d;
	struct md_super sb;
	struct bitmap *b = mkbitmap(3, &d, &sb), *r = NULL;
	uint32_t crc = 0, crc2 = 1;
	CHECK(b != NULL);
	if (!b)
		return;
	uint64_t last = bitmap_bits(b) - 1;
	CHECK(bitmap_set(b, 0, 9, 1, NULL) == 0);    /* byte 1, bit 1 */
	CHECK(bitmap_set(b, 0, 70, 1, NULL) == 0);   /* word 1: byte 8, bit 6 */
	CHECK(bitmap_set(b, 1, BPP + 3, 1, NULL) == 0); /* page 1, byte 0, bit 3 */
	CHECK(bitmap_set(b, 2, last, 1, NULL) == 0);
	CHECK(bitmap_save(b, &crc) == 0 && disk_flush(d) == 0);

	uint8_t *area = malloc(sb.lay.bm_bytes);
	CHECK(area && pread(d->bfd, area, sb.lay.bm_bytes, (off_t)sb.lay.bm_offset) == (ssize_t)sb.lay.bm_bytes);
	if (area) {
		const uint8_t *s0 = area, *s1 = area + sb.lay.bm_slot_bytes, *s2 = area + 2 * sb.lay.bm_slot_bytes;
		CHECK(crc == crc32c(area, sb.lay.bm_bytes));
		CHECK(s0[1] == 0x02 && s0[8] == 0x40 && s0[0] == 0 && s0[9] == 0);
		CHECK(s1[MD_BLOCK] == 0x08 && s1[0] == 0);
		CHECK(s2[last / 8] == 1u << (last % 8));
		uint64_t nz = 0;
		for (uint64_t i = 0; i < sb.lay.bm_bytes; i++)
			nz += area[i] != 0;
		CHECK(nz == 4);
	}
	free(area);

	CHECK(bitmap_open(&r, d, &sb) == 0 && bitmap_read(r, &crc2) == 0 && crc2 == crc);
	if (r) {
		CHECK(bitmap_oos(r, 0) == 2 && bitmap_oos(r, 1) == 1 && bitmap_oos(r, 2) == 1);
		CHECK(bitmap_test(r, 0, 9) == 1 && bitmap_test(r, 0, 70) == 1);
		CHECK(bitmap_next(r, 1, 0) == BPP + 3 && bitmap_next(r, 2, 0) == last);
		bitmap_close(r);
	}
	bitmap_close(b);
	rmdisk(d);
}

/* Saving the blocks of one extent writes that page of every slot only. */
TEST(save_blocks_writes_only_their_pages)
{
	struct disk *d;
	struct md_super sb;
	struct bitmap *b = mkbitmap(2, &d, &sb), *r = NULL;
	uint32_t crc;
	CHECK(b != NULL);
	if (!b)
		return;
	CHECK(bitmap_set(b, 0, 5, 1, NULL) == 0 && bitmap_set(b, 1, 6, 1, NULL) == 0);       /* page 0 */
	CHECK(bitmap_set(b, 0, BPP + 1, 1, NULL) == 0 && bitmap_set(b, 1, BPP + 2, 1, NULL) == 0); /* page 1 */
	CHECK(bitmap_save_blocks(b, BPP, 1024) == 0);
	CHECK(bitmap_save_blocks(b, 0, 0) == -EINVAL && bitmap_save_blocks(b, bitmap_bits(b), 1) == -ERANGE);
	CHECK(bitmap_open(&r, d, &sb) == 0 && bitmap_read(r, &crc) == 0);
	if (r) {
		CHECK(bitmap_test(r, 0, BPP + 1) == 1 && bitmap_test(r, 1, BPP + 2) == 1);
		CHECK(bitmap_test(r, 0, 5) == 0 && bitmap_test(r, 1, 6) == 0);
		CHECK(bitmap_oos(r, 0) == 1 && bitmap_oos(r, 1) == 1);
		bitmap_close(r);
	}
	/* a range over the page boundary writes both */
	CHECK(bitmap_save_blocks(b, BPP - 1, 2) == 0);
	CHECK(bitmap_open(&r, d, &sb) == 0 && bitmap_read(r, &crc) == 0);
	if (r) {
		CHECK(bitmap_oos(r, 0) == 2 && bitmap_oos(r, 1) == 2 && bitmap_test(r, 1, 6) == 1);
		bitmap_close(r);
	}
	bitmap_close(b);
	rmdisk(d);
}

/* Bits past the device in a damaged area are not loaded. */
TEST(read_drops_bits_past_the_device)
{
	struct disk *d;
	struct md_super sb;
	struct bitmap *b = mkbitmap(1, &d, &sb);
	uint32_t crc;
	CHECK(b != NULL);
	if (!b)
		return;
	uint64_t bits = bitmap_bits(b);
	uint8_t ones[MD_BLOCK];
	memset(ones, 0xff, sizeof ones);
	/* from the byte holding the last block to the end of the slot's area
	 * (the superblocks follow it) */
	uint64_t from = (bits - 1) / 8, n = sb.lay.bm_slot_bytes - from;
	CHECK(n >= 1 && n <= sizeof ones);
	CHECK(pwrite(d->bfd, ones, n, (off_t)(sb.lay.bm_offset + from)) == (ssize_t)n);
	CHECK(bitmap_read(b, &crc) == 0);
	CHECK(bitmap_oos(b, 0) == 1 + (bits - 1) % 8 && bitmap_test(b, 0, bits - 1) == 1);
	CHECK(bitmap_next(b, 0, bits - 1) == bits - 1);
	bitmap_close(b);
	rmdisk(d);
}

/* bitmap_save does not flush: a power cut before the caller's flush loses
 * it, one after keeps it (the disk's volatile cache is the fault hook). */
TEST(save_is_durable_only_after_a_flush)
{
	struct md_super sb;
	struct disk *d = mkdisk(256ull << 20, 1, &sb);
	struct bitmap *b = NULL, *r = NULL;
	uint32_t crc;
	CHECK(d != NULL);
	if (!d)
		return;
	disk_close(d);
	snprintf(fault_path, sizeof fault_path, "/tmp/dipole-bmfaults-XXXXXX");
	int fd = mkstemp(fault_path);
	CHECK(fd >= 0 && write(fd, "volatile\n", 9) == 9);
	close(fd);
	setenv("DIPOLE_FAULTS", fault_path, 1);
	d = NULL;
	CHECK(disk_open(&d, path, 0) == 0 && d && bitmap_open(&b, d, &sb) == 0);
	unsetenv("DIPOLE_FAULTS");
	if (!b) {
		disk_close(d);
		unlink(path);
		unlink(fault_path);
		return;
	}
	CHECK(bitmap_set(b, 0, 42, 1, NULL) == 0 && bitmap_save(b, NULL) == 0);
	bitmap_close(b);
	disk_close(d); /* the power cut: unflushed writes are gone */
	d = NULL;
	CHECK(disk_open(&d, path, 0) == 0 && bitmap_open(&r, d, &sb) == 0 && bitmap_read(r, &crc) == 0);
	CHECK(r && bitmap_oos(r, 0) == 0);
	bitmap_close(r);
	disk_close(d);

	setenv("DIPOLE_FAULTS", fault_path, 1);
	d = NULL, b = NULL, r = NULL;
	CHECK(disk_open(&d, path, 0) == 0 && bitmap_open(&b, d, &sb) == 0);
	unsetenv("DIPOLE_FAULTS");
	CHECK(b && bitmap_set(b, 0, 42, 1, NULL) == 0 && bitmap_save(b, NULL) == 0 && disk_flush(d) == 0);
	bitmap_close(b);
	disk_close(d);
	d = NULL;
	CHECK(disk_open(&d, path, 0) == 0 && bitmap_open(&r, d, &sb) == 0 && bitmap_read(r, &crc) == 0);
	CHECK(r && bitmap_oos(r, 0) == 1 && bitmap_test(r, 0, 42) == 1);
	bitmap_close(r);
	rmdisk(d);
	unlink(fault_path);
}

struct racer { struct bitmap *b; uint64_t first; };

static void *race_set(void *arg)
{
	struct racer *r = arg;
	for (int round = 0; round < 50; round++) {
		bitmap_set(r->b, 0, r->first, 3000, NULL);
		bitmap_clear(r->b, 0, r->first, 3000, NULL);
	}
	bitmap_set(r->b, 0, r->first, 3000, NULL);
	return NULL;
}

/* Overlapping sets and clears from four threads: the count matches the bits. */
TEST(concurrent_updates_keep_the_count)
{
	struct disk *d;
	struct md_super sb;
	struct bitmap *b = mkbitmap(1, &d, &sb);
	CHECK(b != NULL);
	if (!b)
		return;
	pthread_t t[4];
	struct racer r[4];
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){ b, (uint64_t)i * 1000 };
		CHECK(pthread_create(&t[i], NULL, race_set, &r[i]) == 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	uint64_t n = 0;
	for (uint64_t k = 0; k < 7000; k++)
		n += bitmap_test(b, 0, k) == 1;
	/* every thread set its range last, but another's clear may have
	 * come after: whatever the bits are, the count agrees with them */
	CHECK(bitmap_oos(b, 0) == n);
	CHECK(n >= 3000 && n <= 6000);
	bitmap_close(b);
	rmdisk(d);
}

int main(void)
{
	return unit_main("bitmap");
}

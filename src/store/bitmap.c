/* bitmap — see bitmap.h. */
#include "bitmap.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct bitmap_slot {
	_Atomic uint64_t *bm;
	atomic_uint_fast64_t oos;      /* bits set */
};

struct bitmap {
	struct disk *d;
	struct md_super sb;            /* a copy: only its layout is used, fixed while attached */
	uint64_t bm_bits;
	uint32_t nslots;
	struct bitmap_slot slot[MD_MAX_PEERS];
};

int bitmap_open(struct bitmap **out, struct disk *d, const struct md_super *sb)
{
	struct bitmap *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	b->d = d;
	b->sb = *sb;
	b->bm_bits = (sb->lay.data_size + MD_BLOCK - 1) / MD_BLOCK;
	b->nslots = sb->lay.nslots;
	for (uint32_t s = 0; s < b->nslots; s++) {
		b->slot[s].bm = calloc((b->bm_bits + 63) / 64 + 1, sizeof(uint64_t));
		if (!b->slot[s].bm) {
			bitmap_close(b);
			return -ENOMEM;
		}
	}
	*out = b;
	return 0;
}

void bitmap_close(struct bitmap *b)
{
	if (!b)
		return;
	for (uint32_t s = 0; s < MD_MAX_PEERS; s++)
		free(b->slot[s].bm);
	free(b);
}

uint64_t bitmap_bits(const struct bitmap *b)
{
	return b->bm_bits;
}

uint32_t bitmap_nslots(const struct bitmap *b)
{
	return b->nslots;
}

_Atomic uint64_t *bitmap_words(struct bitmap *b, int slot)
{
	return b->slot[slot].bm;
}

void bitmap_set_bytes(struct bitmap *b, int slot, uint64_t off, uint64_t len)
{
	struct bitmap_slot *sl = &b->slot[slot];
	if (!len)
		return;
	uint64_t first = off / MD_BLOCK, last = (off + len - 1) / MD_BLOCK;
	for (uint64_t blk = first; blk <= last && blk < b->bm_bits; blk++) {
		uint64_t bit = 1ULL << (blk & 63);
		/* a cheap load first: re-marking hot blocks must not bounce cache lines */
		if (atomic_load_explicit(&sl->bm[blk >> 6], memory_order_relaxed) & bit)
			continue;
		if (!(atomic_fetch_or(&sl->bm[blk >> 6], bit) & bit))
			atomic_fetch_add(&sl->oos, 1);
	}
}

uint64_t bitmap_oos(struct bitmap *b, int slot)
{
	return slot >= 0 && (uint32_t)slot < b->nslots ? atomic_load(&b->slot[slot].oos) : 0;
}

uint64_t bitmap_clear(struct bitmap *b, int slot, uint64_t first, uint64_t n)
{
	struct bitmap_slot *sl = &b->slot[slot];
	uint64_t cleared = 0;
	for (uint64_t blk = first; blk < first + n && blk < b->bm_bits; blk++) {
		uint64_t bit = 1ULL << (blk & 63);
		if (atomic_fetch_and(&sl->bm[blk >> 6], ~bit) & bit)
			cleared++;
	}
	atomic_fetch_sub(&sl->oos, cleared);
	return cleared;
}

int bitmap_test(struct bitmap *b, int slot, uint64_t blk)
{
	return slot >= 0 && blk < b->bm_bits &&
	       (atomic_load_explicit(&b->slot[slot].bm[blk >> 6], memory_order_relaxed) >> (blk & 63)) & 1;
}

void bitmap_merge_le(struct bitmap *b, int slot, uint64_t first_word, const uint8_t *words_le, uint64_t n)
{
	struct bitmap_slot *sl = &b->slot[slot];
	uint64_t nw = (b->bm_bits + 63) / 64;
	for (uint64_t i = 0; i < n && first_word + i < nw; i++) {
		uint64_t v = get_le64(words_le + 8 * i);
		if (first_word + i == b->bm_bits / 64)
			v &= (b->bm_bits % 64) ? ((1ULL << (b->bm_bits % 64)) - 1) : 0;
		uint64_t old = atomic_fetch_or(&sl->bm[first_word + i], v);
		atomic_fetch_add(&sl->oos, (uint64_t)__builtin_popcountll(v & ~old));
	}
}

uint64_t bitmap_next(struct bitmap *b, int slot, uint64_t from)
{
	struct bitmap_slot *sl = &b->slot[slot];
	for (uint64_t w = from >> 6; w < (b->bm_bits + 63) / 64; w++) {
		uint64_t v = atomic_load_explicit(&sl->bm[w], memory_order_relaxed);
		if (w == from >> 6)
			v &= ~0ULL << (from & 63);
		if (v) {
			uint64_t blk = w * 64 + (uint64_t)__builtin_ctzll(v);
			return blk < b->bm_bits ? blk : UINT64_MAX;
		}
	}
	return UINT64_MAX;
}

static void bm_load(struct bitmap *b, int slot, const uint8_t *raw)
{
	struct bitmap_slot *sl = &b->slot[slot];
	uint64_t n = 0;
	for (uint64_t w = 0; w < (b->bm_bits + 63) / 64; w++) {
		uint64_t v = get_le64(raw + 8 * w);
		if (w == b->bm_bits / 64)
			v &= (b->bm_bits % 64) ? ((1ULL << (b->bm_bits % 64)) - 1) : 0;
		atomic_store(&sl->bm[w], v);
		n += (uint64_t)__builtin_popcountll(v);
	}
	atomic_store(&sl->oos, n);
}

int bitmap_read(struct bitmap *b, uint32_t *crc)
{
	uint8_t *raw = calloc(1, b->sb.lay.bm_bytes);
	int rc = 0;
	if (!raw)
		return -ENOMEM;
	for (uint32_t s = 0; !rc && s < b->nslots; s++)
		rc = md_read_bitmap(b->d, &b->sb, s, raw + s * b->sb.lay.bm_slot_bytes);
	if (!rc) {
		*crc = crc32c(raw, b->sb.lay.bm_bytes);
		for (uint32_t s = 0; s < b->nslots; s++)
			bm_load(b, (int)s, raw + s * b->sb.lay.bm_slot_bytes);
	}
	free(raw);
	return rc;
}

int bitmap_save_page(struct bitmap *b, uint64_t page)
{
	uint8_t *raw = NULL;
	uint64_t nw = (b->bm_bits + 63) / 64, w0 = page * (MD_BLOCK / 8);
	int rc = 0;
	if (page * MD_BLOCK >= b->sb.lay.bm_slot_bytes)
		return 0;
	if (posix_memalign((void **)&raw, MD_BLOCK, MD_BLOCK))
		return -ENOMEM;
	for (uint32_t s = 0; !rc && s < b->nslots; s++) {
		memset(raw, 0, MD_BLOCK);
		for (uint64_t i = 0; i < MD_BLOCK / 8 && w0 + i < nw; i++)
			put_le64(raw + 8 * i, atomic_load(&b->slot[s].bm[w0 + i]));
		rc = disk_pwrite(b->d, raw, MD_BLOCK, md_bitmap_offset(&b->sb, s) + page * MD_BLOCK);
	}
	free(raw);
	return rc;
}

int bitmap_save(struct bitmap *b, uint32_t *crc)
{
	uint8_t *raw = calloc(1, b->sb.lay.bm_bytes);
	if (!raw)
		return -ENOMEM;
	for (uint32_t s = 0; s < b->nslots; s++)
		for (uint64_t w = 0; w < (b->bm_bits + 63) / 64; w++)
			put_le64(raw + s * b->sb.lay.bm_slot_bytes + 8 * w, atomic_load(&b->slot[s].bm[w]));
	if (crc)
		*crc = crc32c(raw, b->sb.lay.bm_bytes);
	int rc = 0;
	for (uint32_t s = 0; !rc && s < b->nslots; s++)
		rc = md_write_bitmap(b->d, &b->sb, s, raw + s * b->sb.lay.bm_slot_bytes);
	free(raw);
	return rc;
}

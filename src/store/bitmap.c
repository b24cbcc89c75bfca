/* bitmap — see bitmap.h. */
#include "bitmap.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* blocks one 4 KiB page of a slot's area holds */
#define BITS_PER_PAGE ((uint64_t)MD_BLOCK * 8)

struct bitmap_slot {
	/* nwords + 1 (a spare, never set). Replaced by bitmap_grow before
	 * nwords/bits grow, so a reader that loads nwords first always indexes
	 * an array at least that long; replaced arrays are kept (retired) until
	 * close, as a lock-free reader may still hold one. */
	_Atomic uint64_t *_Atomic words;
	_Atomic uint64_t *retired[4];  /* bitmap_grow's predecessors (freed at close) */
	atomic_uint_fast64_t oos;      /* bits set */
};

struct bitmap {
	struct disk *d;
	struct md_super sb;            /* a copy: only its layout is used; changed by bitmap_grow under io */
	_Atomic uint64_t bits;         /* blocks of the data area; only grows */
	_Atomic uint64_t nwords;
	uint32_t nslots;
	pthread_mutex_t io;            /* one save at a time: snapshot and write together */
	struct bitmap_slot slot[MD_MAX_PEERS];
};

int bitmap_open(struct bitmap **out, struct disk *d, const struct md_super *sb)
{
	struct bitmap *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	b->d = d;
	b->sb = *sb;
	b->bits = (sb->lay.data_size + MD_BLOCK - 1) / MD_BLOCK;
	b->nwords = (b->bits + 63) / 64;
	b->nslots = sb->lay.nslots;
	pthread_mutex_init(&b->io, NULL);
	for (uint32_t s = 0; s < b->nslots; s++) {
		b->slot[s].words = calloc(b->nwords + 1, sizeof(uint64_t));
		if (!b->slot[s].words) {
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
	for (uint32_t s = 0; s < MD_MAX_PEERS; s++) {
		free(b->slot[s].words);
		for (int i = 0; i < 4; i++)
			free(b->slot[s].retired[i]);
	}
	pthread_mutex_destroy(&b->io);
	free(b);
}

uint64_t bitmap_bits(const struct bitmap *b)
{
	return b->bits;
}

uint32_t bitmap_nslots(const struct bitmap *b)
{
	return b->nslots;
}

static int slot_ok(const struct bitmap *b, int slot)
{
	return slot >= 0 && (uint32_t)slot < b->nslots;
}

static int range_check(const struct bitmap *b, int slot, uint64_t first, uint64_t n)
{
	if (!slot_ok(b, slot) || !n)
		return -EINVAL;
	return first < b->bits && n <= b->bits - first ? 0 : -ERANGE;
}

/* The bits of word w that stand for blocks of the device. */
static uint64_t word_mask(const struct bitmap *b, uint64_t w)
{
	if (w < b->bits / 64)
		return ~0ULL;
	return w == b->bits / 64 && b->bits % 64 ? (1ULL << (b->bits % 64)) - 1 : 0;
}

_Atomic uint64_t *bitmap_words(struct bitmap *b, int slot)
{
	return slot_ok(b, slot) ? b->slot[slot].words : NULL;
}

int bitmap_set(struct bitmap *b, int slot, uint64_t first, uint64_t n, uint64_t *changed)
{
	int rc = range_check(b, slot, first, n);
	if (rc)
		return rc;
	struct bitmap_slot *sl = &b->slot[slot];
	uint64_t set = 0;
	for (uint64_t blk = first; blk < first + n; blk++) {
		uint64_t bit = 1ULL << (blk & 63);
		/* a cheap load first: re-marking hot blocks must not bounce cache lines */
		if (atomic_load_explicit(&sl->words[blk >> 6], memory_order_relaxed) & bit)
			continue;
		if (!(atomic_fetch_or(&sl->words[blk >> 6], bit) & bit))
			set++;
	}
	atomic_fetch_add(&sl->oos, set);
	if (changed)
		*changed = set;
	return 0;
}

int bitmap_set_bytes(struct bitmap *b, int slot, uint64_t off, uint64_t len, uint64_t *changed)
{
	if (!len)
		return -EINVAL;
	if (off + len < off)
		return -ERANGE;
	uint64_t first = off / MD_BLOCK, last = (off + len - 1) / MD_BLOCK;
	return bitmap_set(b, slot, first, last - first + 1, changed);
}

int bitmap_clear(struct bitmap *b, int slot, uint64_t first, uint64_t n, uint64_t *changed)
{
	int rc = range_check(b, slot, first, n);
	if (rc)
		return rc;
	struct bitmap_slot *sl = &b->slot[slot];
	uint64_t cleared = 0;
	for (uint64_t blk = first; blk < first + n; blk++) {
		uint64_t bit = 1ULL << (blk & 63);
		if (atomic_fetch_and(&sl->words[blk >> 6], ~bit) & bit)
			cleared++;
	}
	atomic_fetch_sub(&sl->oos, cleared);
	if (changed)
		*changed = cleared;
	return 0;
}

int bitmap_test(struct bitmap *b, int slot, uint64_t blk)
{
	int rc = range_check(b, slot, blk, 1);
	if (rc)
		return rc;
	return (atomic_load_explicit(&b->slot[slot].words[blk >> 6], memory_order_relaxed) >> (blk & 63)) & 1;
}

int bitmap_merge_le(struct bitmap *b, int slot, uint64_t first_word, const uint8_t *words_le, uint64_t n)
{
	if (!slot_ok(b, slot) || !n)
		return -EINVAL;
	if (first_word >= b->nwords || n > b->nwords - first_word)
		return -ERANGE;
	struct bitmap_slot *sl = &b->slot[slot];
	for (uint64_t i = 0; i < n; i++) {
		uint64_t v = get_le64(words_le + 8 * i) & word_mask(b, first_word + i);
		uint64_t old = atomic_fetch_or(&sl->words[first_word + i], v);
		atomic_fetch_add(&sl->oos, (uint64_t)__builtin_popcountll(v & ~old));
	}
	return 0;
}

uint64_t bitmap_next(struct bitmap *b, int slot, uint64_t from)
{
	if (!slot_ok(b, slot) || from >= b->bits)
		return UINT64_MAX;
	struct bitmap_slot *sl = &b->slot[slot];
	for (uint64_t w = from >> 6; w < b->nwords; w++) {
		uint64_t v = atomic_load_explicit(&sl->words[w], memory_order_relaxed);
		if (w == from >> 6)
			v &= ~0ULL << (from & 63);
		if (v) {
			uint64_t blk = w * 64 + (uint64_t)__builtin_ctzll(v);
			return blk < b->bits ? blk : UINT64_MAX;
		}
	}
	return UINT64_MAX;
}

int bitmap_any(struct bitmap *b, uint64_t first, uint64_t n)
{
	int rc = range_check(b, 0, first, n);
	if (rc)
		return rc;
	uint64_t last = first + n - 1, w0 = first >> 6, w1 = last >> 6;
	for (uint32_t s = 0; s < b->nslots; s++) {
		for (uint64_t w = w0; w <= w1; w++) {
			uint64_t v = atomic_load_explicit(&b->slot[s].words[w], memory_order_relaxed);
			if (w == w0)
				v &= ~0ULL << (first & 63);
			if (w == w1 && (last & 63) != 63)
				v &= (1ULL << ((last & 63) + 1)) - 1;
			if (v)
				return 1;
		}
	}
	return 0;
}

uint64_t bitmap_oos(struct bitmap *b, int slot)
{
	return slot_ok(b, slot) ? atomic_load(&b->slot[slot].oos) : 0;
}

/* A slot's words from its on-disk image; bits past the device are dropped
 * (bitmap_save never writes them; a damaged area may hold them). */
static void load_slot(struct bitmap *b, uint32_t slot, const uint8_t *raw)
{
	struct bitmap_slot *sl = &b->slot[slot];
	uint64_t n = 0;
	for (uint64_t w = 0; w < b->nwords; w++) {
		uint64_t v = get_le64(raw + 8 * w) & word_mask(b, w);
		atomic_store(&sl->words[w], v);
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
			load_slot(b, s, raw + s * b->sb.lay.bm_slot_bytes);
	}
	free(raw);
	return rc;
}

int bitmap_save(struct bitmap *b, uint32_t *crc)
{
	uint8_t *raw = calloc(1, b->sb.lay.bm_bytes);
	int rc = 0;
	if (!raw)
		return -ENOMEM;
	pthread_mutex_lock(&b->io);
	for (uint32_t s = 0; s < b->nslots; s++)
		for (uint64_t w = 0; w < b->nwords; w++)
			put_le64(raw + s * b->sb.lay.bm_slot_bytes + 8 * w, atomic_load(&b->slot[s].words[w]));
	if (crc)
		*crc = crc32c(raw, b->sb.lay.bm_bytes);
	for (uint32_t s = 0; !rc && s < b->nslots; s++)
		rc = md_write_bitmap(b->d, &b->sb, s, raw + s * b->sb.lay.bm_slot_bytes);
	pthread_mutex_unlock(&b->io);
	free(raw);
	return rc;
}

int bitmap_save_blocks(struct bitmap *b, uint64_t first, uint64_t n)
{
	/* any slot: the range is checked, every slot's pages are written */
	int rc = range_check(b, 0, first, n);
	uint8_t *raw = NULL;
	if (rc)
		return rc;
	/* an aligned page at an aligned offset goes O_DIRECT without a bounce */
	if (posix_memalign((void **)&raw, MD_BLOCK, MD_BLOCK))
		return -ENOMEM;
	pthread_mutex_lock(&b->io);
	for (uint64_t page = first / BITS_PER_PAGE; !rc && page <= (first + n - 1) / BITS_PER_PAGE; page++) {
		uint64_t w0 = page * (MD_BLOCK / 8);
		for (uint32_t s = 0; !rc && s < b->nslots; s++) {
			memset(raw, 0, MD_BLOCK);
			for (uint64_t i = 0; i < MD_BLOCK / 8 && w0 + i < b->nwords; i++)
				put_le64(raw + 8 * i, atomic_load(&b->slot[s].words[w0 + i]));
			rc = disk_pwrite(b->d, raw, MD_BLOCK, md_bitmap_offset(&b->sb, s) + page * MD_BLOCK);
		}
	}
	pthread_mutex_unlock(&b->io);
	free(raw);
	return rc;
}

int bitmap_grow(struct bitmap *b, const struct md_super *sb)
{
	uint64_t bits = (sb->lay.data_size + MD_BLOCK - 1) / MD_BLOCK, nwords = (bits + 63) / 64;
	_Atomic uint64_t *nw[MD_MAX_PEERS] = { 0 };
	int r = -1;

	if (sb->lay.nslots != b->nslots || bits < b->bits)
		return -EINVAL;
	pthread_mutex_lock(&b->io);
	for (int i = 0; i < 4 && r < 0; i++)
		if (!b->slot[0].retired[i])
			r = i;
	if (r < 0) {
		pthread_mutex_unlock(&b->io);
		return -ENOSPC;
	}
	for (uint32_t s = 0; s < b->nslots; s++) {
		nw[s] = calloc(nwords + 1, sizeof(uint64_t));
		if (!nw[s]) {
			for (uint32_t t = 0; t <= s; t++)
				free(nw[t]);
			pthread_mutex_unlock(&b->io);
			return -ENOMEM;
		}
	}
	uint64_t old = b->nwords;
	for (uint32_t s = 0; s < b->nslots; s++) {
		_Atomic uint64_t *ow = b->slot[s].words;
		for (uint64_t w = 0; w < old; w++)
			atomic_store(&nw[s][w], atomic_load(&ow[w]));
		b->slot[s].words = nw[s];
		/* a bit set in the old array while it was copied: or it in again */
		for (uint64_t w = 0; w < old; w++)
			atomic_fetch_or(&nw[s][w], atomic_load(&ow[w]));
		b->slot[s].retired[r] = ow;
	}
	b->sb = *sb;
	b->nwords = nwords;
	b->bits = bits;
	pthread_mutex_unlock(&b->io);
	return 0;
}

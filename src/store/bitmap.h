/* bitmap — the out-of-sync bitmaps, one per peer slot: 1 bit per MD_BLOCK
 * (4 KiB) block of the data area, set for every block that may differ from
 * the peer of that slot (or, in the slot of this node's sync source while
 * SyncTarget, for every block this node lacks). In memory as 64-bit words,
 * word w holding blocks 64w..64w+63 (bit i = block 64w+i); on disk each
 * slot's area (md_bitmap_offset) holds the same words little-endian, the
 * rest of the area zero (docs/metadata.md).
 *
 * Locking: none of its own. Bits and the per-slot count of set bits (oos)
 * are word-wise atomics, so setting, clearing, testing and scanning are
 * lock-free from any thread; bits beyond the last block are never set.
 * Saving reads the words one by one: a consistent snapshot is the caller's
 * business (the engine saves under its lock, or under the activity log's
 * lock when an extent is evicted).
 */
#ifndef DIPOLE_BITMAP_H
#define DIPOLE_BITMAP_H

#include <stdatomic.h>
#include <stdint.h>

#include "disk.h"
#include "meta.h"

struct bitmap;

/* An all-clear bitmap for the layout of sb (lay.data_size, lay.nslots),
 * saved to and read from disk d. -ENOMEM. */
int bitmap_open(struct bitmap **out, struct disk *d, const struct md_super *sb);
void bitmap_close(struct bitmap *b);

/* Blocks per slot, and how many slots. */
uint64_t bitmap_bits(const struct bitmap *b);
uint32_t bitmap_nslots(const struct bitmap *b);

/* Set the bits of the blocks touching bytes [off, off+len); blocks beyond
 * the device are ignored. */
void bitmap_set_bytes(struct bitmap *b, int slot, uint64_t off, uint64_t len);
/* Clear blocks [first, first+n) and return how many were set. */
uint64_t bitmap_clear(struct bitmap *b, int slot, uint64_t first, uint64_t n);
/* 1 when block `blk` is set, else 0 (also for no slot, slot < 0). */
int bitmap_test(struct bitmap *b, int slot, uint64_t blk);
/* OR n little-endian words (8 bytes each) into a slot from word first_word. */
void bitmap_merge_le(struct bitmap *b, int slot, uint64_t first_word, const uint8_t *words_le, uint64_t n);
/* Next set block at or after `from`, or UINT64_MAX. */
uint64_t bitmap_next(struct bitmap *b, int slot, uint64_t from);
/* Set blocks in a slot (0 for a slot that does not exist). */
uint64_t bitmap_oos(struct bitmap *b, int slot);
/* A slot's words, for code that still reads them directly. */
_Atomic uint64_t *bitmap_words(struct bitmap *b, int slot);

/* Read every slot from disk; crc: crc32c of the whole bitmap area as read. */
int bitmap_read(struct bitmap *b, uint32_t *crc);
/* Every slot to disk; crc (may be NULL): over the area written, slot order. */
int bitmap_save(struct bitmap *b, uint32_t *crc);
/* One 4 KiB page of every slot's area (page 0 = blocks 0..32767). */
int bitmap_save_page(struct bitmap *b, uint64_t page);

#endif

/* bitmap — the out-of-sync bitmaps, one per peer slot.
 *
 * One bit per MD_BLOCK (4 KiB) block of the data area; a set bit in slot i
 * means "this block may differ from the peer of slot i" (or, in the slot of
 * this node's sync source while SyncTarget, "this node lacks this block").
 * In memory each slot is an array of 64-bit words, word w holding blocks
 * 64w..64w+63 (bit j = block 64w+j). On disk each slot's area
 * (md_bitmap_offset, lay.bm_slot_bytes long) holds the same words
 * little-endian, the rest of the area zero (docs/metadata.md).
 *
 * Invariants: bits beyond the last block are never set; oos(slot) is the
 * number of set bits once concurrent updates are done (each update changes
 * the bits first, then the count).
 *
 * Locking: the bits and counts are word-wise atomics, so set, clear, test,
 * merge and scan take no lock and may run from any thread. What a set or
 * clear races with is the caller's business (the engine: a peer's resync
 * lock orders merges against SyncTarget writes). Saving takes the bitmap's
 * own I/O lock, so of two saves of a page the later write carries the later
 * snapshot; it is a leaf lock (callers hold the engine lock or the activity
 * log's lock around a save, never the other way round).
 *
 * Functions return 0 or a negative errno unless said otherwise: -EINVAL for
 * a slot that does not exist or an empty range, -ERANGE for a range that
 * reaches past the last block (nothing is changed then).
 */
#ifndef DIPOLE_BITMAP_H
#define DIPOLE_BITMAP_H

#include <stdatomic.h>
#include <stdint.h>

#include "disk.h"
#include "meta.h"

struct bitmap;

/* An all-clear bitmap for the layout of sb (lay.data_size, lay.nslots),
 * saved to and read from d, which must outlive it. -ENOMEM. */
int bitmap_open(struct bitmap **out, struct disk *d, const struct md_super *sb);
void bitmap_close(struct bitmap *b);

/* Blocks per slot (data_size / MD_BLOCK, rounded up), and how many slots. */
uint64_t bitmap_bits(const struct bitmap *b);
uint32_t bitmap_nslots(const struct bitmap *b);

/* Set blocks [first, first+n). changed (may be NULL): how many were clear. */
int bitmap_set(struct bitmap *b, int slot, uint64_t first, uint64_t n, uint64_t *changed);
/* Set every block touching bytes [off, off+len). changed: as above. */
int bitmap_set_bytes(struct bitmap *b, int slot, uint64_t off, uint64_t len, uint64_t *changed);
/* Clear blocks [first, first+n). changed (may be NULL): how many were set. */
int bitmap_clear(struct bitmap *b, int slot, uint64_t first, uint64_t n, uint64_t *changed);
/* Block `blk`: 1 set, 0 clear, or -EINVAL / -ERANGE. */
int bitmap_test(struct bitmap *b, int slot, uint64_t blk);
/* OR n words, 8 little-endian bytes each (the wire's P_BITMAP form), into a
 * slot from word first_word on. Bits past the last block are dropped. */
int bitmap_merge_le(struct bitmap *b, int slot, uint64_t first_word, const uint8_t *words_le, uint64_t n);
/* The first set block at or after block `from`; UINT64_MAX when there is
 * none (also for a slot that does not exist). */
uint64_t bitmap_next(struct bitmap *b, int slot, uint64_t from);
/* Whether any block of [first, first+n) is set in any slot: 1 or 0, or
 * -EINVAL / -ERANGE. Reads only the words of the range. */
int bitmap_any(struct bitmap *b, uint64_t first, uint64_t n);
/* How many blocks are set in a slot (0 for a slot that does not exist). */
uint64_t bitmap_oos(struct bitmap *b, int slot);
/* A slot's words ((bits + 63) / 64 of them), NULL for no such slot: a
 * read-only view for the wire encoder; load them atomically. */
_Atomic uint64_t *bitmap_words(struct bitmap *b, int slot);

/* Read every slot from disk, replacing what is in memory. crc: crc32c of
 * the whole bitmap area as read (to compare with sb.bm_crc). -errno of the
 * read, -ENOMEM. */
int bitmap_read(struct bitmap *b, uint32_t *crc);
/* Write every slot's whole area. crc (may be NULL): crc32c of the area as
 * written, slots in order. Not flushed: the caller flushes the disk. */
int bitmap_save(struct bitmap *b, uint32_t *crc);
/* Write the 4 KiB pages, in every slot's area, holding blocks
 * [first, first+n) (one page holds 32768 blocks). Not flushed. */
int bitmap_save_blocks(struct bitmap *b, uint64_t first, uint64_t n);

/* Grow to the layout of sb (a moved, larger metadata area: md_move), same
 * slots: the new blocks are clear, bits set meanwhile are kept (the old
 * words are or-ed in again after the switch; a clear may be lost, which
 * costs a resync of that block, never data). Up to 4 times per open.
 * -EINVAL fewer blocks or other slots, -ENOSPC grown too often, -ENOMEM. */
int bitmap_grow(struct bitmap *b, const struct md_super *sb);

#endif

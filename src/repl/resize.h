/* resize — the size of the replicated device, as DRBD sizes it.
 *
 * Three sizes, all in bytes and multiples of 4 KiB:
 *   usable  the most this node can export: its data area (metadata at the
 *           end of the backing disk), or less with `disk { size }` (the cap);
 *   size    what the device exports now, the same on every connected node;
 *   la_size the last agreed size, kept in the metadata (md_super.la_size) so
 *           a restart neither grows nor shrinks the device silently.
 * At attach the device takes la_size (usable when never agreed). At connect
 * both nodes take the smaller of their two sizes; the larger one may shrink
 * only if it holds no data (Inconsistent), else both refuse the connection.
 * Growing is `dipole resize`: every node moves its metadata to the end of
 * its grown disk (md_move), the size becomes the smallest usable size, and
 * only the new area is marked out of sync and resynced (docs/metadata.md,
 * "Sizes and resize").
 *
 * Locking: size changes and metadata writes under e->lock; the size hook
 * runs after it is released.
 */
#ifndef DIPOLE_RESIZE_H
#define DIPOLE_RESIZE_H

#include <stdint.h>

struct engine;

/* At attach: cap (bytes, 0 none; rounded down to 4 KiB) from `disk { size }`
 * named `where` ("file:line:col") in messages. Sets usable and size.
 * -EINVAL: the cap is larger than the data area; -EFBIG: the usable size is
 * below the agreed size of a disk with data (shrinking below the data);
 * err[MD_MSG_MAX] says what and where; nothing was changed. */
int resize_attach(struct engine *e, uint64_t cap, const char *where, char *err);

/* The same cap check before attaching, reading the metadata only, so a
 * refusal writes nothing (not even the in-use mark). 0, -EINVAL (larger
 * than the disk) or -EFBIG (below the agreed size of a disk with data). */
int resize_check_cap(const char *disk_path, uint64_t cap, const char *where, char *err);

/* The connect rule, pure so both sides reach the same verdict from the two
 * HELLOs: sizes in bytes, disks enum disk_state. 0 with *agreed set, or
 * -EXDEV with why[256] when the larger side holds data and would shrink. */
int resize_agree(uint64_t mine, int my_disk, uint64_t theirs, int their_disk, uint64_t *agreed, char *why);

/* Take an agreed size (connect, or a peer's resize): shrink (no data: the
 * connect rule allowed it) or grow to `bytes`, record la_size. Growing
 * beyond usable is -ERANGE. A growth marks [old size, bytes) out of sync
 * in the slots in `oos_mask` (the node that sends the new area). */
int resize_set(struct engine *e, uint64_t bytes, uint32_t oos_mask);

/* The local half of `resize`: look at the backing disk's size again; if it
 * grew, move the metadata to its end and grow the bitmap. *usable is the
 * new usable size. err[MD_MSG_MAX] on failure (-errno). */
int resize_prepare(struct engine *e, uint64_t *usable, char *err);

#endif

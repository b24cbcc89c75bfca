/* al — the activity log: which extents of the device may have writes in
 * flight. Before a write touches an extent that is not in the log, the log
 * is updated on disk (one 4 KiB FUA write); extents leave it only when no
 * write is in flight in them, after their bitmap bits and data are flushed. After a crash every block of every logged
 * extent is marked out of sync, so whatever was in flight — written here
 * but not on the peer, or the other way round — is resynced when the nodes
 * meet again (docs/failures.md).
 *
 * Locking: the data path takes no lock when the extent is already logged:
 * a slot reference count (atomic) and a lookup table from extent to slot.
 * The log's own mutex guards the slot table, the clock hand and the queue
 * of writers waiting for cold extents. Those writers are logged together
 * (group commit): one of them leads, takes slots for every queued extent
 * (at most 64 per record), drops the mutex across the evict callback and
 * the record's FUA write, and completes the others; one leader at a time.
 * The callback is thus called by one thread at a time, without the log's
 * mutex held; it may take the bitmap's save lock but never the engine lock,
 * and nothing may call al_begin while holding a lock the callback takes.
 */
#ifndef DIPOLE_AL_H
#define DIPOLE_AL_H

#include <stdint.h>

struct disk;
struct md_super;
struct al;

/* nslots: how many extents may be logged at once (al-extents), capped to
 * what one record holds. */
/* seq: of the newest record on disk. evict(arg, ext, n) is called before
 * extents leave the log, once for all the extents one record drops (at most
 * 64): make their bitmap bits and the data written in them durable. A
 * nonzero return keeps them logged and fails the writes waiting for that
 * record.
 * A writer reaching a cold extent right after a logged one (sequential)
 * has the next extents logged by the same record when the log has at
 * least 32 slots. */
int al_new(struct al **out, struct disk *d, const struct md_super *sb, uint64_t size, unsigned nslots,
	   uint64_t seq, int (*evict)(void *arg, const uint32_t *ext, unsigned n), void *arg);
void al_free(struct al *a);
/* Around a write of [off, off+len). begin returns 0 or -errno (log update
 * failed: the write must not happen). */
int al_begin(struct al *a, uint64_t off, uint64_t len);
void al_end(struct al *a, uint64_t off, uint64_t len);
/* Clean detach: no write in flight, log emptied on disk. */
int al_clear(struct al *a);
/* How many extents are logged now, and how many log updates were written. */
unsigned al_active(struct al *a);
uint64_t al_updates(struct al *a);

#endif

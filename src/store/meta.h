/* meta — dipole's internal metadata at the end of the backing disk.
 *
 * Layout (all offsets from the start of the disk, sizes multiples of 4 KiB):
 *
 *   [ data: data_size ][ activity log: al_bytes ][ bitmaps: bm_bytes ][ sb0 ][ sb1 ]
 *
 * The two 4 KiB superblock slots are written alternately with an increasing
 * sequence number (double buffering), so a crash in the middle of an update
 * leaves the previous slot intact. A slot that is all zeroes is empty; a slot
 * that is not empty must carry the magic, format version and a valid crc32c,
 * or it is corrupt. There is one bitmap per peer slot (`nslots` of them, each
 * bm_slot_bytes long, one bit per 4 KiB block of the data area): slot i
 * counts the blocks peer slot i lacks (or, while this node is its SyncTarget,
 * the blocks this node lacks). All integers are little-endian. Format history:
 *   v1 (2026-11): first version, one peer (read as v2 with one slot).
 *   v2 (2026-11-29): peer slots: node-id, flags and bitmap generation per peer.
 */
#ifndef DIPOLE_META_H
#define DIPOLE_META_H

#include <stdint.h>
#include "disk.h"

#define MD_MAGIC        "DIPOLEMD" /* first 8 bytes of a superblock slot */
#define MD_VERSION      2
#define MD_MAX_PEERS    7         /* peer slots: up to 8 nodes with disks */
#define MD_BLOCK        4096u     /* bitmap granularity and metadata alignment */
#define MD_SB_BYTES     4096u
#define MD_AL_BYTES     (32u * 1024)
#define MD_MSG_MAX      512
#define MD_MIN_DATA     (1u << 20) /* refuse disks that would hold less */

enum md_flags {
	MDF_CONSISTENT     = 1 << 0, /* data is a consistent image (not mid-sync) */
	MDF_WAS_UP_TO_DATE = 1 << 1, /* was UpToDate when last attached */
	MDF_PRIMARY_IND    = 1 << 2, /* node was Primary */
	MDF_CRASHED        = 1 << 3, /* attached and not cleanly detached */
	MDF_FULL_SYNC      = 1 << 4, /* next connect needs a full sync */
	MDF_PEER_OUTDATED  = 1 << 5, /* the peer was outdated (fence-peer exit 4) while this node went on */
	MDF_BM_CRC         = 1 << 6, /* bm_crc holds the bitmap's crc32c (clean detach) */
	/* a disk peer was connected; clear: this node was alone (degraded),
	 * which picks startup's degr-wfc-timeout (docs/startup.md) */
	MDF_CONNECTED_IND  = 1 << 7,
};

/* Generations: the current one, the (unused since v2) bitmap one, and the
 * history, newest first: generations this node's data went through, so
 * the handshake sees one node's data is an older state of the other's
 * (decide.c). Several peers need more than two: each promotion without a
 * peer and each peer lost starts one, and a node that was away through
 * three of them looked like a split brain (checker3d, seed 760031304).
 * DRBD 9 keeps a deep history for the same reason. The first two history
 * entries are where they always were; the rest are in bytes older
 * dipoles wrote as 0 (meta.c). */
#define MD_HISTORY 8
enum md_uuid { UUID_CURRENT, UUID_BITMAP, UUID_HISTORY0, UUID_HISTORY1, UUID_COUNT = UUID_HISTORY0 + MD_HISTORY };
/* the first UUID_SHORT of them: what a HELLO and P_SYNC_DONE carry */
#define UUID_SHORT 4

/* Put u at the front of the history of uuid[UUID_COUNT]: the entries
 * before it move one older and the oldest drops off; if u is there
 * already it moves to the front (no duplicate), and nothing else drops.
 * 0 or a generation equal to the current one is not history. */
void md_history_push(uint64_t *uuid, uint64_t u);
/* Put u at the oldest free place of that history unless it is there
 * already, is 0 or the current generation, or the history is full. */
void md_history_append(uint64_t *uuid, uint64_t u);
/* The current generation of metadata just created (DRBD's "just created"):
 * no data generation yet; real ones are random and larger. */
#define MD_UUID_JUST_CREATED 4u

struct md_layout {
	uint64_t disk_size;  /* usable disk size (rounded down to 4 KiB) */
	uint64_t data_size;  /* what the device exposes */
	uint64_t al_offset, al_bytes;
	uint64_t bm_offset, bm_bytes; /* all slots' bitmaps */
	uint64_t super_offset;  /* slot 0; slot 1 follows */
	uint64_t bm_slot_bytes;       /* one peer slot's bitmap */
	uint32_t nslots;              /* peer slots, 1..MD_MAX_PEERS */
};

/* Per peer slot: which node (-1: not bound yet), and the generation its
 * bitmap counts changes from (0: none kept, the peer had everything). */
enum md_peer_flags {
	MDP_UNSURE = 1 << 0, /* this node applied writes from a third node that the
			      * peer may lack (or have more of): which blocks is
			      * unknown, so meeting it with the same data
			      * generation needs a full compare */
	MDP_SYNC_TARGET = 1 << 1, /* this node is (or was, when the resync was
			      * interrupted) SyncTarget of the slot's peer: the
			      * slot's bitmap holds the blocks it lacks and
			      * bitmap_uuid the source's generation they count
			      * from, so the next connection resumes instead of
			      * starting over. Cleared when the resync ends. */
};
struct md_peer {
	int32_t node_id;
	uint32_t flags;      /* enum md_peer_flags */
	uint64_t bitmap_uuid;
};

struct md_super {
	uint64_t seq;
	uint32_t flags;
	int32_t node_id;
	uint64_t uuid[UUID_COUNT];
	uint64_t created;    /* unix seconds */
	uint64_t gen_time;   /* unix ns when uuid[UUID_CURRENT] began */
	uint32_t bm_crc;     /* crc32c of the bitmap area, valid with MDF_BM_CRC */
	char resource[64];
	/* last agreed device size in bytes (DRBD's la-size): what the device
	 * exported when it was last sized; kept so a restart neither grows nor
	 * shrinks it silently. 0: never agreed (fresh metadata, or written by a
	 * dipole before this field existed): the usable size applies. */
	uint64_t la_size;
	struct md_layout lay;
	struct md_peer peer[MD_MAX_PEERS]; /* lay.nslots used */
	int slot;            /* slot this superblock was read from / last written to */
};

/* Compute the layout for a disk of `disk_size` bytes with `nslots` peer
 * slots. -ENOSPC if the disk cannot hold metadata plus MD_MIN_DATA. */
int md_layout(uint64_t disk_size, uint32_t nslots, struct md_layout *out);

/* How far below the end of a disk md_read looks for the metadata of a disk
 * that grew while down (bytes): reading that much costs seconds on a real
 * disk; a larger growth is reported as "no metadata" with a hint. */
#define MD_GROW_SCAN   (4ull << 30)

/* Read the newest valid superblock. Returns 0; -ENOENT when no dipole
 * metadata is present; -EBADMSG when metadata is present but corrupt or
 * inconsistent with the disk (details in err[MD_MSG_MAX]); -errno on I/O error.
 * A torn newer slot next to a valid older one is reported in warn[MD_MSG_MAX] (else
 * warn[0] == 0) and the older one is used.
 * A disk that grew (lvextend, truncate) while its metadata stayed at the old
 * end: nothing valid at the current end, so the last MD_GROW_SCAN bytes are
 * searched for a superblock pair whose recorded disk size puts it exactly
 * there. Found: 0, out->lay is the old layout (lay.disk_size < d->size) and
 * warn says so; the metadata stays there until md_move. */
int md_read(struct disk *d, struct md_super *out, char *err, char *warn);

/* Move the metadata of a grown disk from sb->lay (its old end) to the end
 * of a disk of new_disk_size bytes (<= d->size), crash-safely, in this
 * order, each step flushed before the next:
 *   1. activity log and bitmaps copied to their new places (each peer
 *      slot's bitmap grows with zero bits for the new blocks);
 *   2. the new superblock (sequence + 1) into new slot 0, new slot 1 cleared;
 *   3. both old superblock slots zeroed.
 * A crash before 2 leaves only the old metadata valid (md_read finds it at
 * the old end); after 2, md_read finds the new one at the current end
 * first, and the stale old pair (if 3 did not happen) lies in the data area
 * where nothing reads it as metadata. -EINVAL: not a growth (new data size
 * not larger); -ENOSPC: the new metadata area would overlap the old one
 * (grow by at least the metadata size); -errno on I/O (sb unchanged).
 * On success *sb is the new superblock, MDF_BM_CRC cleared (the bitmap area
 * changed shape). steps: MD_MOVE_ALL; 1 or 2 stop after that step, as a
 * crash there would (for tests). */
#define MD_MOVE_ALL 3
int md_move(struct disk *d, struct md_super *sb, uint64_t new_disk_size, int steps);

/* Write sb to the other slot with seq+1 and make it durable. */
int md_write(struct disk *d, struct md_super *sb);

/* Fresh metadata: zero the bitmaps and activity log, write slot 0 (seq 1),
 * clear slot 1. peer_ids[nslots]: the node-id bound to each peer slot (-1:
 * bound at first contact). Disk state afterwards: Inconsistent. */
int md_create(struct disk *d, int node_id, const char *resource, uint32_t nslots, const int *peer_ids,
	      struct md_super *out);

/* Look at the first blocks for a known filesystem or partition table.
 * Returns a static description or NULL. */
const char *md_probe_signature(struct disk *d);

/* Bitmap I/O: one peer slot's whole bitmap, `bm_slot_bytes` long. */
int md_read_bitmap(struct disk *d, const struct md_super *sb, uint32_t slot, uint8_t *bm);
int md_write_bitmap(struct disk *d, const struct md_super *sb, uint32_t slot, const uint8_t *bm);
/* Byte offset of a slot's bitmap. */
uint64_t md_bitmap_offset(const struct md_super *sb, uint32_t slot);

/* Activity log: a record of the extents (MD_AL_EXTENT bytes each) that may
 * have writes in flight, in two MD_BLOCK slots written alternately with FUA.
 * Record: magic "DIPOLEAL" u64, seq u64, count u32, crc32c u32 (over the
 * record with this field zero), then count extent numbers u32. */
#define MD_AL_EXTENT   (4u << 20)
#define MD_AL_MAX      ((MD_BLOCK - 24) / 4)
/* Newest valid record: fills ext[MD_AL_MAX], returns the count (0 when the
 * log is empty or blank) or -EBADMSG when both slots are corrupt. */
int md_read_al(struct disk *d, const struct md_super *sb, uint32_t *ext, uint64_t *seq);
/* buf: MD_BLOCK bytes, MD_BLOCK-aligned scratch. */
int md_write_al(struct disk *d, const struct md_super *sb, uint8_t *buf, uint64_t seq, const uint32_t *ext,
		uint32_t n);

/* A fresh random generation identifier (never 0). */
uint64_t md_new_uuid(void);

#endif

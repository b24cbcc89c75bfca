/* meta — see meta.h.
 *
 * Superblock slot encoding (byte offsets, little-endian):
 *   0 magic[8] "DIPOLEMD"   8 version u32   12 header bytes u32 (=256)
 *  16 seq u64              24 flags u32    28 node_id i32
 *  32 disk_size u64        40 data_size    48 al_offset   56 al_bytes
 *  64 bm_offset            72 bm_bytes     80 super_offset   88 block size u32
 *  96 uuid[4] u64 (current, bitmap, history 0 and 1)  128 created u64
 * 136 resource[64]
 * 200 gen_time u64 (unix ns when uuid[current] began)  208 bm_crc u32
 * v1: 252 crc32c u32 over bytes 0..251; one bitmap, its generation in uuid[1].
 * v2: 212 nslots u32; 216 + 16*i for each peer slot i < 7: node_id i32,
 *     flags u32, bitmap_uuid u64 (uuid[1] is 0); 328 la_size u64 (last agreed
 *     device size in bytes; 0 in metadata written before it existed, which
 *     reads as "never agreed", so no version change was needed);
 *     336 history 2..7 u64 x6 (the older history: 0, none, in metadata
 *     written before it existed; older dipoles ignore it);
 *     508 crc32c over 0..507.
 * The rest of the 4 KiB slot is zero. bm_crc covers all slots' bitmaps.
 */
#include "meta.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define SB_HDR_V1 256
#define SB_HDR 512

int md_layout(uint64_t disk_size, uint32_t nslots, struct md_layout *l)
{
	uint64_t sz = disk_size / MD_BLOCK * MD_BLOCK;
	uint64_t blocks = sz / MD_BLOCK;
	/* each bitmap covers the whole disk: slightly more than the data needs */
	uint64_t bms = ROUND_UP((blocks + 7) / 8, MD_BLOCK);
	uint64_t bm = bms * nslots;
	uint64_t md = 2 * MD_SB_BYTES + bm + MD_AL_BYTES;

	memset(l, 0, sizeof *l);
	if (nslots < 1 || nslots > MD_MAX_PEERS)
		return -EINVAL;
	if (sz < md + MD_MIN_DATA)
		return -ENOSPC;
	l->nslots = nslots;
	l->bm_slot_bytes = bms;
	l->disk_size = sz;
	l->super_offset = sz - 2 * MD_SB_BYTES;
	l->bm_bytes = bm;
	l->bm_offset = l->super_offset - bm;
	l->al_bytes = MD_AL_BYTES;
	l->al_offset = l->bm_offset - MD_AL_BYTES;
	l->data_size = l->al_offset;
	return 0;
}

static void super_encode(const struct md_super *sb, uint8_t *p)
{
	memset(p, 0, MD_SB_BYTES);
	memcpy(p, MD_MAGIC, 8);
	put_le32(p + 8, MD_VERSION);
	put_le32(p + 12, SB_HDR);
	put_le64(p + 16, sb->seq);
	put_le32(p + 24, sb->flags);
	put_le32(p + 28, (uint32_t)sb->node_id);
	put_le64(p + 32, sb->lay.disk_size);
	put_le64(p + 40, sb->lay.data_size);
	put_le64(p + 48, sb->lay.al_offset);
	put_le64(p + 56, sb->lay.al_bytes);
	put_le64(p + 64, sb->lay.bm_offset);
	put_le64(p + 72, sb->lay.bm_bytes);
	put_le64(p + 80, sb->lay.super_offset);
	put_le32(p + 88, MD_BLOCK);
	for (int i = 0; i < UUID_COUNT; i++)
		put_le64(p + (i < UUID_SHORT ? 96 + 8 * i : 336 + 8 * (i - UUID_SHORT)), sb->uuid[i]);
	put_le64(p + 128, sb->created);
	put_le64(p + 200, sb->gen_time);
	put_le32(p + 208, sb->bm_crc);
	memcpy(p + 136, sb->resource, 63);
	put_le32(p + 212, sb->lay.nslots);
	for (uint32_t i = 0; i < sb->lay.nslots && i < MD_MAX_PEERS; i++) {
		put_le32(p + 216 + 16 * i, (uint32_t)sb->peer[i].node_id);
		put_le32(p + 220 + 16 * i, sb->peer[i].flags);
		put_le64(p + 224 + 16 * i, sb->peer[i].bitmap_uuid);
	}
	put_le64(p + 328, sb->la_size);
	put_le32(p + SB_HDR - 4, crc32c(p, SB_HDR - 4));
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* 0 ok, 1 empty, -1 corrupt (reason in why) */
static int super_decode(const uint8_t *p, struct md_super *sb, char *why, size_t wlen)
{
	if (all_zero(p, MD_SB_BYTES))
		return 1;
	if (memcmp(p, MD_MAGIC, 8)) {
		snprintf(why, wlen, "bad magic");
		return -1;
	}
	uint32_t ver = get_le32(p + 8);
	if (ver != 1 && ver != MD_VERSION) {
		snprintf(why, wlen, "unsupported format version %u (this dipole reads versions 1 to %u)", ver,
			 MD_VERSION);
		return -1;
	}
	size_t hdr = ver == 1 ? SB_HDR_V1 : SB_HDR;
	uint32_t want = get_le32(p + hdr - 4), got = crc32c(p, hdr - 4);
	if (want != got) {
		snprintf(why, wlen, "checksum mismatch (stored crc32c %08x, computed %08x)", want, got);
		return -1;
	}
	memset(sb, 0, sizeof *sb);
	sb->seq = get_le64(p + 16);
	sb->flags = get_le32(p + 24);
	sb->node_id = (int32_t)get_le32(p + 28);
	sb->lay.disk_size = get_le64(p + 32);
	sb->lay.data_size = get_le64(p + 40);
	sb->lay.al_offset = get_le64(p + 48);
	sb->lay.al_bytes = get_le64(p + 56);
	sb->lay.bm_offset = get_le64(p + 64);
	sb->lay.bm_bytes = get_le64(p + 72);
	sb->lay.super_offset = get_le64(p + 80);
	for (int i = 0; i < UUID_SHORT; i++)
		sb->uuid[i] = get_le64(p + 96 + 8 * i);
	sb->created = get_le64(p + 128);
	sb->gen_time = get_le64(p + 200);
	sb->bm_crc = get_le32(p + 208);
	memcpy(sb->resource, p + 136, 63);
	sb->resource[63] = 0;
	if (ver == 1) {
		/* one peer, not bound to a node-id yet */
		sb->lay.nslots = 1;
		sb->peer[0].node_id = -1;
		sb->peer[0].bitmap_uuid = sb->uuid[UUID_BITMAP];
		sb->uuid[UUID_BITMAP] = 0;
	} else {
		sb->lay.nslots = get_le32(p + 212);
		if (sb->lay.nslots < 1 || sb->lay.nslots > MD_MAX_PEERS) {
			snprintf(why, wlen, "impossible number of peer slots %u (1 to %d)", sb->lay.nslots,
				 MD_MAX_PEERS);
			return -1;
		}
		for (uint32_t i = 0; i < sb->lay.nslots; i++) {
			sb->peer[i].node_id = (int32_t)get_le32(p + 216 + 16 * i);
			sb->peer[i].flags = get_le32(p + 220 + 16 * i);
			sb->peer[i].bitmap_uuid = get_le64(p + 224 + 16 * i);
			if (sb->peer[i].node_id < -1 || sb->peer[i].node_id > 31) {
				snprintf(why, wlen, "impossible node id %d in peer slot %u", sb->peer[i].node_id, i);
				return -1;
			}
		}
		sb->la_size = get_le64(p + 328);
		for (int i = UUID_SHORT; i < UUID_COUNT; i++)
			sb->uuid[i] = get_le64(p + 336 + 8 * (i - UUID_SHORT));
	}
	sb->lay.bm_slot_bytes = sb->lay.bm_bytes / sb->lay.nslots;
	if (get_le32(p + 88) != MD_BLOCK) {
		snprintf(why, wlen, "unsupported block size %u", get_le32(p + 88));
		return -1;
	}
	return 0;
}

/* The recorded layout must be exactly what this disk size implies. */
static int layout_check(const struct md_super *sb, uint64_t disk_size, char *why, size_t wlen)
{
	struct md_layout l;
	char a[32], b[32];

	if (md_layout(disk_size, sb->lay.nslots, &l)) {
		snprintf(why, wlen, "disk of %s is too small to hold its recorded metadata",
			 fmt_size(disk_size, a, sizeof a));
		return -1;
	}
	if (sb->lay.disk_size != l.disk_size) {
		snprintf(why, wlen, "metadata was written for a disk of %s but the disk now has %s (resized?)",
			 fmt_size(sb->lay.disk_size, a, sizeof a), fmt_size(l.disk_size, b, sizeof b));
		return -1;
	}
	if (memcmp(&sb->lay, &l, sizeof l)) {
		snprintf(why, wlen, "impossible layout (data %llu, bitmap at %llu+%llu, al at %llu+%llu)",
			 (unsigned long long)sb->lay.data_size, (unsigned long long)sb->lay.bm_offset,
			 (unsigned long long)sb->lay.bm_bytes, (unsigned long long)sb->lay.al_offset,
			 (unsigned long long)sb->lay.al_bytes);
		return -1;
	}
	if (sb->node_id < 0 || sb->node_id > 31) {
		snprintf(why, wlen, "impossible node id %d", sb->node_id);
		return -1;
	}
	return 0;
}

/* The superblock pair of a disk whose end is at `end` bytes: same returns
 * as md_read. */
static int read_pair(struct disk *d, uint64_t end, struct md_super *out, char *err, char *warn)
{
	struct md_layout l;
	struct md_super s[2];
	int st[2];
	char why[2][200];
	uint8_t *buf;
	int rc;

	err[0] = warn[0] = 0;
	if (md_layout(end, 1, &l))
		return -ENOENT; /* too small to hold metadata at all */
	buf = malloc(2 * MD_SB_BYTES);
	if (!buf)
		return -ENOMEM;
	rc = disk_pread(d, buf, 2 * MD_SB_BYTES, l.super_offset);
	if (rc) {
		free(buf);
		return rc;
	}
	for (int i = 0; i < 2; i++) {
		why[i][0] = 0;
		st[i] = super_decode(buf + i * MD_SB_BYTES, &s[i], why[i], sizeof why[i]);
		if (st[i] == 0 && layout_check(&s[i], end, why[i], sizeof why[i]))
			st[i] = -1;
		s[i].slot = i;
	}
	free(buf);
	if (st[0] == 1 && st[1] == 1)
		return -ENOENT;
	/* a bad magic in every non-empty slot: not dipole metadata at all */
	if ((st[0] != 0 && st[1] != 0) && (st[0] == 1 || !strcmp(why[0], "bad magic")) &&
	    (st[1] == 1 || !strcmp(why[1], "bad magic")))
		return -ENOENT;
	if (st[0] != 0 && st[1] != 0) {
		int i = st[0] == -1 ? 0 : 1;
		snprintf(err, MD_MSG_MAX, "corrupt metadata superblock (slot %d at byte offset %llu): %s", i,
			 (unsigned long long)(l.super_offset + (uint64_t)i * MD_SB_BYTES), why[i]);
		return -EBADMSG;
	}
	int pick = st[0] == 0 && (st[1] != 0 || s[0].seq > s[1].seq) ? 0 : 1;
	int other = 1 - pick;
	if (st[other] == -1) {
		snprintf(warn, MD_MSG_MAX,
			 "superblock slot %d is damaged (%s); using slot %d (sequence %llu), "
			 "which is what an interrupted metadata update leaves behind",
			 other, why[other], pick, (unsigned long long)s[pick].seq);
	}
	*out = s[pick];
	return 0;
}

/* A grown disk: the highest end below d->size, within MD_GROW_SCAN, where a
 * valid superblock sits that records exactly that end as its disk size.
 * Reads backwards in 1 MiB chunks, so a sparse or thin growth is cheap.
 * Returns the end, 0 if none. */
static uint64_t find_old_end(struct disk *d)
{
	const uint64_t chunk = 1u << 20;
	uint64_t top = d->size / MD_BLOCK * MD_BLOCK;
	uint64_t floor = top > MD_GROW_SCAN ? top - MD_GROW_SCAN : 0;
	uint8_t *buf = malloc(chunk);
	uint64_t found = 0;

	if (!buf)
		return 0;
	for (uint64_t hi = top; hi > floor && !found;) {
		uint64_t lo = hi - floor > chunk ? hi - chunk : floor;
		if (disk_pread(d, buf, hi - lo, lo))
			break;
		for (uint64_t o = hi - lo; o >= MD_BLOCK && !found; o -= MD_BLOCK) {
			const uint8_t *p = buf + o - MD_BLOCK;
			struct md_super sb;
			char why[200];
			if (memcmp(p, MD_MAGIC, 8) || super_decode(p, &sb, why, sizeof why))
				continue;
			/* block at lo+o-4K is slot 0 or slot 1 of the pair */
			uint64_t at = lo + o - MD_BLOCK;
			if (sb.lay.super_offset == at || sb.lay.super_offset + MD_SB_BYTES == at)
				if (sb.lay.disk_size < top && !layout_check(&sb, sb.lay.disk_size, why, sizeof why))
					found = sb.lay.disk_size;
		}
		hi = lo;
	}
	free(buf);
	return found;
}

int md_read(struct disk *d, struct md_super *out, char *err, char *warn)
{
	int rc = read_pair(d, d->size, out, err, warn);
	if (rc != -ENOENT)
		return rc;
	uint64_t old = find_old_end(d);
	if (!old)
		return -ENOENT;
	rc = read_pair(d, old, out, err, warn);
	if (rc == 0) {
		char a[32], b[32];
		size_t n = strlen(warn);
		snprintf(warn + n, MD_MSG_MAX - n,
			 "%sthe backing disk grew from %s to %s; its metadata is still at the old end (byte %llu) "
			 "and the device keeps its size until 'dipole resize'", n ? "; " : "",
			 fmt_size(old, a, sizeof a), fmt_size(d->size, b, sizeof b),
			 (unsigned long long)out->lay.super_offset);
	}
	return rc;
}

int md_write(struct disk *d, struct md_super *sb)
{
	uint8_t *buf = aligned_alloc(4096, MD_SB_BYTES);
	int slot = 1 - sb->slot;
	int rc;

	if (!buf)
		return -ENOMEM;
	sb->seq++;
	super_encode(sb, buf);
	rc = disk_pwrite(d, buf, MD_SB_BYTES, sb->lay.super_offset + (uint64_t)slot * MD_SB_BYTES);
	if (!rc)
		rc = disk_flush(d);
	free(buf);
	if (rc) {
		sb->seq--;
		return rc;
	}
	sb->slot = slot;
	return 0;
}

void md_history_push(uint64_t *uuid, uint64_t u)
{
	if (!u || u == uuid[UUID_CURRENT])
		return;
	int at = UUID_COUNT - 1; /* where u is, else the oldest (it drops off) */
	for (int i = UUID_HISTORY0; i < UUID_COUNT; i++)
		if (uuid[i] == u) {
			at = i;
			break;
		}
	memmove(uuid + UUID_HISTORY0 + 1, uuid + UUID_HISTORY0, (size_t)(at - UUID_HISTORY0) * sizeof *uuid);
	uuid[UUID_HISTORY0] = u;
}

void md_history_append(uint64_t *uuid, uint64_t u)
{
	if (!u || u == uuid[UUID_CURRENT])
		return;
	for (int i = UUID_HISTORY0; i < UUID_COUNT; i++) {
		if (uuid[i] == u)
			return;
		if (!uuid[i]) {
			uuid[i] = u;
			return;
		}
	}
}

uint64_t md_new_uuid(void)
{
	uint64_t u = 0;
	while (u <= MD_UUID_JUST_CREATED + 1) { /* (0 none, 4 reserved; the low bit is cleared below) */
		if (getrandom(&u, sizeof u, 0) != sizeof u)
			u = (uint64_t)time(NULL) * 6364136223846793005ULL + (uint64_t)clock();
	}
	return u & ~1ULL; /* low bit is kept free for a "primary" marker later */
}

int md_create(struct disk *d, int node_id, const char *resource, uint32_t nslots, const int *peer_ids,
	      struct md_super *out)
{
	struct md_super sb = { 0 };
	int rc;

	rc = md_layout(d->size, nslots, &sb.lay);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < nslots; i++)
		sb.peer[i].node_id = peer_ids ? peer_ids[i] : -1;
	/* zero AL + bitmap + both superblock slots: one contiguous range */
	rc = disk_zero(d, sb.lay.al_offset, sb.lay.disk_size - sb.lay.al_offset, 1);
	if (rc)
		return rc;
	sb.node_id = node_id;
	sb.created = (uint64_t)time(NULL);
	snprintf(sb.resource, sizeof sb.resource, "%s", resource);
	sb.uuid[UUID_CURRENT] = MD_UUID_JUST_CREATED;
	sb.slot = 1;               /* so the first write goes to slot 0 */
	rc = md_write(d, &sb);
	if (rc)
		return rc;
	*out = sb;
	return 0;
}

const char *md_probe_signature(struct disk *d)
{
	uint8_t b[70000];
	size_t n = d->size < sizeof b ? (size_t)d->size : sizeof b;

	if (n < 4096 || disk_pread(d, b, n, 0))
		return NULL;
	if (n > 1081 && b[1080] == 0x53 && b[1081] == 0xEF)
		return "an ext2/ext3/ext4 filesystem";
	if (!memcmp(b, "XFSB", 4))
		return "an XFS filesystem";
	if (n > 65608 && !memcmp(b + 65600, "_BHRfS_M", 8))
		return "a btrfs filesystem";
	if (!memcmp(b + 512, "LABELONE", 8) || !memcmp(b + 24, "LVM2", 4))
		return "an LVM physical volume";
	if (!memcmp(b + 4086, "SWAPSPACE2", 10) || !memcmp(b + 4086, "SWAP-SPACE", 10))
		return "a swap area";
	if (!memcmp(b + 512, "EFI PART", 8))
		return "a GPT partition table";
	if (n > 8192 && !memcmp(b + 8192, "OCFSV2", 6))
		return "an OCFS2 filesystem";
	if (!memcmp(b + 3, "NTFS    ", 8))
		return "an NTFS filesystem";
	if (!memcmp(b + 54, "FAT", 3) || !memcmp(b + 82, "FAT32", 5))
		return "a FAT filesystem";
	if (b[510] == 0x55 && b[511] == 0xAA && !all_zero(b + 446, 64))
		return "an MBR partition table";
	return NULL;
}

uint64_t md_bitmap_offset(const struct md_super *sb, uint32_t slot)
{
	return sb->lay.bm_offset + (uint64_t)slot * sb->lay.bm_slot_bytes;
}

int md_read_bitmap(struct disk *d, const struct md_super *sb, uint32_t slot, uint8_t *bm)
{
	return disk_pread(d, bm, sb->lay.bm_slot_bytes, md_bitmap_offset(sb, slot));
}

int md_write_bitmap(struct disk *d, const struct md_super *sb, uint32_t slot, const uint8_t *bm)
{
	return disk_pwrite(d, bm, sb->lay.bm_slot_bytes, md_bitmap_offset(sb, slot));
}

int md_read_al(struct disk *d, const struct md_super *sb, uint32_t *ext, uint64_t *seq)
{
	uint8_t *b = NULL;
	int best = -1, bad = 0;
	uint64_t bseq = 0;

	if (posix_memalign((void **)&b, MD_BLOCK, 2 * MD_BLOCK))
		return -ENOMEM;
	int rc = disk_pread(d, b, 2 * MD_BLOCK, sb->lay.al_offset);
	if (rc) {
		free(b);
		return rc;
	}
	for (int i = 0; i < 2; i++) {
		uint8_t *p = b + i * MD_BLOCK;
		if (all_zero(p, MD_BLOCK))
			continue;
		uint32_t n = get_le32(p + 16), want = get_le32(p + 20);
		put_le32(p + 20, 0);
		if (memcmp(p, "DIPOLEAL", 8) || n > MD_AL_MAX || crc32c(p, 24 + 4 * (size_t)n) != want) {
			bad++;
			continue;
		}
		if (best < 0 || get_le64(p + 8) > bseq) {
			best = i;
			bseq = get_le64(p + 8);
		}
	}
	rc = 0;
	if (best >= 0) {
		uint8_t *p = b + best * MD_BLOCK;
		rc = (int)get_le32(p + 16);
		for (int i = 0; i < rc; i++)
			ext[i] = get_le32(p + 24 + 4 * i);
	} else if (bad) {
		rc = -EBADMSG;
	}
	*seq = bseq;
	free(b);
	return rc;
}

int md_write_al(struct disk *d, const struct md_super *sb, uint8_t *b, uint64_t seq, const uint32_t *ext,
		uint32_t n)
{
	if (n > MD_AL_MAX)
		return -EINVAL;
	memset(b, 0, MD_BLOCK);
	memcpy(b, "DIPOLEAL", 8);
	put_le64(b + 8, seq);
	put_le32(b + 16, n);
	for (uint32_t i = 0; i < n; i++)
		put_le32(b + 24 + 4 * i, ext[i]);
	put_le32(b + 20, crc32c(b, 24 + 4 * (size_t)n));
	return disk_pwrite_fua(d, b, MD_BLOCK, sb->lay.al_offset + (seq & 1) * MD_BLOCK);
}

/* Copy len bytes from one place on the disk to another, in 1 MiB pieces
 * (the ranges do not overlap: md_move checks). */
static int copy_range(struct disk *d, uint64_t from, uint64_t to, uint64_t len, uint8_t *buf, uint64_t cap)
{
	for (uint64_t done = 0; done < len;) {
		uint64_t n = len - done < cap ? len - done : cap;
		int rc = disk_pread(d, buf, n, from + done);
		if (!rc)
			rc = disk_pwrite(d, buf, n, to + done);
		if (rc)
			return rc;
		done += n;
	}
	return 0;
}

int md_move(struct disk *d, struct md_super *sb, uint64_t new_disk_size, int steps)
{
	struct md_layout nl, old = sb->lay;
	const struct md_layout *ol = &old; /* (sb changes at step 2) */
	const uint64_t cap = 1u << 20;
	uint8_t *buf = NULL;
	int rc;

	if (new_disk_size > d->size)
		return -EINVAL;
	rc = md_layout(new_disk_size, ol->nslots, &nl);
	if (rc)
		return rc;
	if (nl.data_size <= ol->data_size)
		return -EINVAL;
	/* the old copy must stay intact until the new superblock is durable */
	if (nl.al_offset < ol->disk_size)
		return -ENOSPC;
	if (posix_memalign((void **)&buf, MD_BLOCK, cap))
		return -ENOMEM;
	/* 1. activity log, then each slot's bitmap, the new tail zero */
	rc = disk_zero(d, nl.al_offset, nl.super_offset - nl.al_offset, 1);
	if (!rc)
		rc = copy_range(d, ol->al_offset, nl.al_offset, ol->al_bytes, buf, cap);
	for (uint32_t i = 0; !rc && i < ol->nslots; i++)
		rc = copy_range(d, ol->bm_offset + i * ol->bm_slot_bytes, nl.bm_offset + i * nl.bm_slot_bytes,
				ol->bm_slot_bytes, buf, cap);
	if (!rc)
		rc = disk_flush(d);
	if (rc || steps < 2)
		goto out;
	/* 2. the new superblock, last: until it is durable the old one rules */
	struct md_super n = *sb;
	n.lay = nl;
	n.flags &= ~(uint32_t)MDF_BM_CRC;
	n.slot = 1; /* md_write writes the other slot: 0 */
	rc = disk_zero(d, nl.super_offset, 2 * MD_SB_BYTES, 1);
	if (!rc)
		rc = md_write(d, &n);
	if (rc)
		goto out;
	*sb = n;
	if (steps < 3)
		goto out;
	/* 3. the old pair is data area now: no longer metadata */
	rc = disk_zero(d, ol->super_offset, 2 * MD_SB_BYTES, 1);
	if (!rc)
		rc = disk_flush(d);
out:
	free(buf);
	return rc;
}

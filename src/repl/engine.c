/* engine — see engine.h. */
#include "engine.h"
#include "al.h"
#include "bitmap.h"
#include "evlog.h"
#include "log.h"
#include "util.h"
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ states */

int engine_set_disk_locked(struct engine *e, enum disk_state to, const char *why)
{
	int from = atomic_load(&e->dstate);
	if (from == (int)to)
		return 0;
	if (!state_disk_legal(from, (int)to)) {
		log_err("BUG: illegal disk transition %s -> %s refused (%s)", disk_state_name((enum disk_state)from),
			disk_state_name(to), why);
		return -EINVAL;
	}
	atomic_store(&e->dstate, (int)to);
	if ((to == DS_UPTODATE || to == DS_INCONSISTENT) && atomic_load(&e->behind) & 1)
		atomic_fetch_add(&e->behind, 1);
	snprintf(e->disk_why, sizeof e->disk_why, "%s", why);
	evlog_emit(SO_DISK, e->res, NULL, from, (int)to, why);
	return 0;
}

int engine_set_disk(struct engine *e, enum disk_state to, const char *why)
{
	pthread_mutex_lock(&e->lock);
	int rc = engine_set_disk_locked(e, to, why);
	pthread_mutex_unlock(&e->lock);
	return rc;
}

/* e->lock held. Release order: a frontend that sees the new role sees the
 * superblock written before it. */
static int role_set_locked(struct engine *e, enum role to, const char *why)
{
	int from = atomic_load(&e->role);
	if (from == (int)to)
		return 0;
	if (!state_role_legal(from, (int)to)) {
		log_err("BUG: illegal role transition %s -> %s refused (%s)", role_name((enum role)from),
			role_name(to), why);
		return -EINVAL;
	}
	atomic_store_explicit(&e->role, (int)to, memory_order_release);
	evlog_emit(SO_ROLE, e->res, NULL, from, (int)to, why);
	return 0;
}

/* The engine_*_oos calls take ranges as they come (a peer's packet, a whole
 * extent at the end of the device, slot -1 while there is no sync source):
 * the part on the device counts and the rest is ignored, as it always was;
 * struct bitmap itself refuses such ranges. */

void engine_mark_oos(struct engine *e, int slot, uint64_t off, uint64_t len)
{
	uint64_t end = e->bm_bits * MD_BLOCK;
	if (!e->bm || !len || off >= end)
		return;
	bitmap_set_bytes(e->bm, slot, off, len < end - off ? len : end - off, NULL);
}

void engine_mark_all_oos(struct engine *e, int slot)
{
	engine_mark_oos(e, slot, 0, e->size);
}

uint64_t engine_oos(struct engine *e, int slot)
{
	return e->bm ? bitmap_oos(e->bm, slot) : 0;
}

uint64_t engine_clear_oos(struct engine *e, int slot, uint64_t first, uint64_t n)
{
	uint64_t cleared = 0;
	if (e->bm && first < e->bm_bits && n)
		bitmap_clear(e->bm, slot, first, n < e->bm_bits - first ? n : e->bm_bits - first, &cleared);
	return cleared;
}

/* Blocks [first, last] were written here while SyncTarget (sync_wrote). */
static void wrote_set(struct engine *e, uint64_t first, uint64_t last)
{
	for (uint64_t b = first; e->sync_wrote && b <= last && b < e->bm_bits; b++)
		atomic_fetch_or_explicit(&e->sync_wrote[b >> 6], 1ULL << (b & 63), memory_order_relaxed);
}

static int wrote_test(struct engine *e, uint64_t b)
{
	return e->sync_wrote && (atomic_load_explicit(&e->sync_wrote[b >> 6], memory_order_relaxed) >> (b & 63)) & 1;
}

int engine_grow_sync_wrote(struct engine *e, uint64_t bits)
{
	uint64_t old = (e->bm_bits + 63) / 64, nwords = (bits + 63) / 64;
	int r = -1;
	if (!e->sync_wrote || nwords <= old)
		return 0;
	for (int i = 0; i < 4 && r < 0; i++)
		if (!e->sync_wrote_retired[i])
			r = i;
	if (r < 0)
		return -ENOSPC;
	_Atomic uint64_t *nw = calloc(nwords, sizeof *nw), *ow = e->sync_wrote;
	if (!nw)
		return -ENOMEM;
	for (uint64_t w = 0; w < old; w++)
		atomic_store(&nw[w], atomic_load(&ow[w]));
	e->sync_wrote = nw;
	/* a block marked in the old array while it was copied: or it in again */
	for (uint64_t w = 0; w < old; w++)
		atomic_fetch_or(&nw[w], atomic_load(&ow[w]));
	/* a writer may still hold the old pointer: it lives until close */
	e->sync_wrote_retired[r] = ow;
	return 0;
}

/* Block b is marked in slot (0 for no slot). */
static int bm_test(struct engine *e, int slot, uint64_t b)
{
	return e->bm && bitmap_test(e->bm, slot, b) > 0;
}

void engine_merge_oos(struct engine *e, int slot, uint64_t first_word, const uint8_t *words_le, uint64_t n)
{
	uint64_t nw = (e->bm_bits + 63) / 64;
	if (e->bm && first_word < nw && n)
		bitmap_merge_le(e->bm, slot, first_word, words_le, n < nw - first_word ? n : nw - first_word);
}

uint64_t engine_next_oos(struct engine *e, int slot, uint64_t from)
{
	return e->bm ? bitmap_next(e->bm, slot, from) : UINT64_MAX;
}

/* Mirror of the slots' MDP_UNSURE flags for lock-free reads (under lock). */
static void unsure_sync(struct engine *e)
{
	uint32_t m = 0;
	for (uint32_t i = 0; i < e->nslots; i++)
		if (e->sb.peer[i].flags & MDP_UNSURE)
			m |= 1u << i;
	atomic_store(&e->unsure_mask, m);
}

/* Persist a metadata change made under e->lock: nsb replaces e->sb on success. */
static int super_commit(struct engine *e, struct md_super *nsb)
{
	int rc = md_write(e->disk, nsb);
	if (!rc) {
		e->sb = *nsb;
		unsure_sync(e);
	}
	return rc;
}

int engine_add_replica(struct engine *e, const struct replica_ops *ops, void *ctx, int slot)
{
	if (e->npeers >= MD_MAX_PEERS)
		return -ENOSPC;
	e->rep[e->npeers] = (struct replica){ ops, ctx, slot };
	e->npeers++;
	return 0;
}

void engine_clear_replicas(struct engine *e)
{
	e->npeers = 0;
}

void engine_set_write_policy(struct engine *e, struct write_policy wp)
{
	e->policy = wp;
}

void engine_notify_replicas(struct engine *e)
{
	for (int i = 0; i < e->npeers; i++)
		e->rep[i].ops->state_changed(e->rep[i].ctx);
}

void engine_set_fs_owner(struct engine *e, int on)
{
	if (atomic_exchange(&e->fs_owner, !!on) != !!on)
		engine_notify_replicas(e);
}

void engine_peer_changed(struct engine *e)
{
	if (e->peer_hook)
		e->peer_hook(e->peer_hook_arg);
}

int engine_set_md_flag(struct engine *e, uint32_t flag, int on)
{
	int rc = 0;
	/* (a detached disk is written no more) */
	if (!e->disk || atomic_load(&e->dstate) == DS_DISKLESS)
		return 0;
	pthread_mutex_lock(&e->lock);
	if (!!(e->sb.flags & flag) != !!on) {
		struct md_super nsb = e->sb;
		if (on)
			nsb.flags |= flag;
		else
			nsb.flags &= ~flag;
		rc = super_commit(e, &nsb);
	}
	pthread_mutex_unlock(&e->lock);
	if (rc)
		log_warn("cannot update the metadata flags: %s", strerror(-rc));
	return rc;
}

int engine_bind_slot(struct engine *e, int node_id, char *err)
{
	int rc = -ENOSPC, free_slot = -1;
	pthread_mutex_lock(&e->lock);
	for (uint32_t i = 0; i < e->nslots; i++) {
		if (e->sb.peer[i].node_id == node_id) {
			rc = (int)i;
			break;
		}
		if (e->sb.peer[i].node_id == -1 && free_slot < 0)
			free_slot = (int)i;
	}
	if (rc < 0 && free_slot >= 0) {
		struct md_super nsb = e->sb;
		nsb.peer[free_slot].node_id = node_id;
		rc = super_commit(e, &nsb);
		if (!rc)
			rc = free_slot;
		else
			snprintf(err, MD_MSG_MAX, "cannot record peer node-id %d in the metadata: %s", node_id,
				 strerror(-rc));
	} else if (rc < 0) {
		snprintf(err, MD_MSG_MAX, "the metadata has %u peer slot(s), all bound to other nodes, and none for "
			 "node-id %d; run 'dipole create-md %s --force --max-peers N' (N = disk hosts - 1, or more) "
			 "and resync this node", e->nslots, node_id, e->res);
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int engine_unsure(struct engine *e, int slot)
{
	return slot >= 0 && (uint32_t)slot < e->nslots && (atomic_load(&e->unsure_mask) >> slot) & 1;
}

uint64_t engine_bitmap_uuid(struct engine *e, int slot)
{
	pthread_mutex_lock(&e->lock);
	uint64_t u = slot >= 0 && (uint32_t)slot < e->nslots ? e->sb.peer[slot].bitmap_uuid : 0;
	pthread_mutex_unlock(&e->lock);
	return u;
}

void engine_set_unsure(struct engine *e, int slot, int on)
{
	if (slot < 0 || (uint32_t)slot >= e->nslots || !e->disk)
		return;
	pthread_mutex_lock(&e->lock);
	if (!!(e->sb.peer[slot].flags & MDP_UNSURE) != !!on) {
		struct md_super nsb = e->sb;
		if (on)
			nsb.peer[slot].flags |= MDP_UNSURE;
		else
			nsb.peer[slot].flags &= ~(uint32_t)MDP_UNSURE;
		super_commit(e, &nsb);
	}
	pthread_mutex_unlock(&e->lock);
}

void engine_applied(struct engine *e, int from_slot, int from, uint32_t stamp)
{
	atomic_store_explicit(&e->applied_stamp, stamp, memory_order_relaxed);
	atomic_store_explicit(&e->applied_from, from, memory_order_relaxed);
	if (e->nslots < 2)
		return;
	/* lock-free check first: this is the data path */
	uint32_t want = ((1u << e->nslots) - 1) & ~(from_slot >= 0 ? 1u << from_slot : 0u);
	if ((atomic_load_explicit(&e->unsure_mask, memory_order_relaxed) & want) == want)
		return;
	for (uint32_t i = 0; i < e->nslots; i++)
		if (want & (1u << i))
			engine_set_unsure(e, (int)i, 1);
}

void engine_primary_demoted(struct engine *e, int from, uint32_t stamp)
{
	atomic_store_explicit(&e->applied_stamp, stamp, memory_order_relaxed);
	atomic_store_explicit(&e->applied_from, from, memory_order_relaxed);
}

/* Extents leave the activity log (at most a few, one log record): what
 * their writes marked goes to disk first, then one flush makes those pages
 * and the data written in the extents durable, so a crash after the record
 * that forgets them loses neither. An extent with no bit set in any slot
 * (every peer has all of it: the connected case) writes no page; the flush
 * is still needed for its data. One page holds 32 extents: a batch of
 * neighbours writes it once. */
static int al_evict(void *arg, const uint32_t *ext, unsigned n)
{
	struct engine *e = arg;
	const uint64_t per = MD_AL_EXTENT / MD_BLOCK, page_blocks = (uint64_t)MD_BLOCK * 8;
	uint64_t done[8];
	unsigned ndone = 0;
	int rc = 0;
	for (unsigned i = 0; !rc && i < n; i++) {
		uint64_t first = (uint64_t)ext[i] * per;
		if (first >= e->bm_bits)
			continue;
		/* the last extent may be short */
		uint64_t len = e->bm_bits - first < per ? e->bm_bits - first : per;
		if (bitmap_any(e->bm, first, len) <= 0)
			continue;
		uint64_t page = first / page_blocks, seen = 0;
		for (unsigned k = 0; k < ndone; k++)
			seen |= done[k] == page;
		if (seen)
			continue;
		uint64_t p0 = page * page_blocks;
		rc = bitmap_save_blocks(e->bm, p0, e->bm_bits - p0 < page_blocks ? e->bm_bits - p0 : page_blocks);
		if (ndone < 8)
			done[ndone++] = page;
	}
	return rc ? rc : disk_flush(e->disk);
}

int engine_al_start(struct engine *e, unsigned nslots)
{
	uint32_t *ext = malloc(MD_AL_MAX * sizeof *ext);
	uint64_t seq = 0;
	if (!ext)
		return -ENOMEM;
	int n = md_read_al(e->disk, &e->sb, ext, &seq);
	free(ext);
	if (n < 0 && n != -EBADMSG)
		return n;
	return al_new(&e->al, e->disk, &e->sb, e->size, nslots, seq, al_evict, e);
}

int engine_save_bitmap(struct engine *e)
{
	/* a node with `disk none;` has nothing to save */
	return e->bm ? bitmap_save(e->bm, NULL) : 0;
}

int engine_persist_bitmap(struct engine *e, uint64_t first, uint64_t n)
{
	if (!e->bm || first >= e->bm_bits || !n)
		return 0;
	if (n > e->bm_bits - first)
		n = e->bm_bits - first;
	int rc = disk_flush(e->disk);
	if (!rc)
		rc = bitmap_save_blocks(e->bm, first, n);
	return rc ? rc : disk_flush(e->disk);
}

static struct engine *engine_alloc(const char *res, const char *node)
{
	struct engine *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	snprintf(e->res, sizeof e->res, "%s", res);
	snprintf(e->node, sizeof e->node, "%s", node);
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->fanout, NULL);
	pthread_cond_init(&e->resume_cond, NULL);
	e->sync_slot = -1;
	e->applied_from = -1;
	return e;
}

int engine_open_diskless(struct engine **out, const char *res, const char *node)
{
	struct engine *e = engine_alloc(res, node);
	if (!e)
		return -ENOMEM;
	/* (engine_alloc left it Diskless: no transition) */
	snprintf(e->detach_reason, sizeof e->detach_reason, "diskless by configuration (disk none)");
	*out = e;
	return 0;
}

/* Opens the backing disk and reads its metadata, refusing a disk without
 * ours, with a corrupt superblock, or belonging to another resource or
 * node. 0, or -errno with err (MD_MSG_MAX bytes) saying what to do. */
static int open_md(struct engine *e, const char *res, int node_id, const char *disk_path, char *err)
{
	char warn[MD_MSG_MAX], sz[32];
	int rc = disk_open(&e->disk, disk_path, 0);
	if (rc) {
		snprintf(err, MD_MSG_MAX, "cannot open backing disk %s: %s%s", disk_path, strerror(-rc),
			 rc == -ENOENT ? " (check 'disk' in the config)" :
			 rc == -EROFS || rc == -EACCES || rc == -EPERM ? " (the disk must be writable)" :
			 rc == -EINVAL || rc == -EISDIR ? " (not a regular file or block device)" : "");
		return rc;
	}
	rc = md_read(e->disk, &e->sb, err, warn);
	if (rc == -ENOENT) {
		struct md_layout l;
		if (md_layout(e->disk->size, 1, &l))
			snprintf(err, MD_MSG_MAX, "backing disk %s (%s) is too small to hold dipole metadata and data",
				 disk_path, fmt_size(e->disk->size, sz, sizeof sz));
		else
			snprintf(err, MD_MSG_MAX, "no dipole metadata on %s; run 'dipole create-md %s' first",
				 disk_path, res);
		return rc;
	}
	if (rc == -EBADMSG) {
		char tmp[MD_MSG_MAX];
		snprintf(tmp, sizeof tmp, "%s", err);
		snprintf(err, MD_MSG_MAX, "%s: %s; refusing to attach (nothing was changed)", disk_path, tmp);
		return rc;
	}
	if (rc) {
		snprintf(err, MD_MSG_MAX, "cannot read metadata from %s: %s", disk_path, strerror(-rc));
		return rc;
	}
	if (strcmp(e->sb.resource, res)) {
		snprintf(err, MD_MSG_MAX, "%s holds metadata of resource '%s', not '%s' (wrong disk in the config?); "
			 "refusing to attach, nothing was changed", disk_path, e->sb.resource, res);
		return -EBADMSG;
	}
	if (node_id >= 0 && e->sb.node_id != node_id) {
		snprintf(err, MD_MSG_MAX, "%s holds metadata created for node-id %d, but this node is node-id %d "
			 "(the other node's disk?); refusing to attach, nothing was changed. If this disk really "
			 "belongs here now: 'dipole create-md %s --force' and a full sync from the peer",
			 disk_path, e->sb.node_id, node_id, res);
		return -EBADMSG;
	}
	if (warn[0])
		log_warn("%s: %s", disk_path, warn);
	return 0;
}

/* Reads the out-of-sync bitmap, refusing one whose checksum no longer
 * matches the one a clean detach recorded. 0, or -errno with err. */
static int open_bitmap(struct engine *e, const char *res, const char *disk_path, char *err)
{
	if (bitmap_open(&e->bm, e->disk, &e->sb)) {
		snprintf(err, MD_MSG_MAX, "out of memory for the bitmap");
		return -ENOMEM;
	}
	e->bm_bits = bitmap_bits(e->bm);
	e->sync_wrote = calloc((e->bm_bits + 63) / 64, sizeof *e->sync_wrote);
	if (!e->sync_wrote) {
		snprintf(err, MD_MSG_MAX, "out of memory for the bitmap");
		return -ENOMEM;
	}
	for (uint32_t s = 0; s < e->nslots; s++)
		e->slot[s].bm = bitmap_words(e->bm, (int)s);
	uint32_t bm_crc;
	int rc = bitmap_read(e->bm, &bm_crc);
	if (rc) {
		snprintf(err, MD_MSG_MAX, "cannot read bitmap from %s: %s", disk_path, strerror(-rc));
		return rc;
	}
	/* after a clean detach the bitmap's checksum is in the superblock */
	if (!(e->sb.flags & MDF_CRASHED) && (e->sb.flags & MDF_BM_CRC) && bm_crc != e->sb.bm_crc) {
		snprintf(err, MD_MSG_MAX, "%s: the out-of-sync bitmap (at byte %llu, %llu bytes) is corrupt: its "
			 "crc32c does not match the one recorded at the last clean detach; which blocks differ "
			 "from the peer is unknown. Refusing to attach (nothing was changed). To give up this "
			 "node's data: 'dipole create-md %s --force' here, then a full sync from the peer",
			 disk_path, (unsigned long long)e->sb.lay.bm_offset, (unsigned long long)e->sb.lay.bm_bytes, res);
		return -EBADMSG;
	}
	return 0;
}

/* After a crash, every block of every extent the activity log names may
 * differ from any peer: marked out of sync with all of them, and the marks
 * saved before anything else happens. 0, or -errno with err. */
static int replay_activity_log(struct engine *e, const char *res, const char *disk_path, char *err)
{
	uint32_t *ext = malloc(MD_AL_MAX * sizeof *ext);
	uint64_t alseq;
	int n = ext ? md_read_al(e->disk, &e->sb, ext, &alseq) : -ENOMEM;
	if (n == -EBADMSG) {
		snprintf(err, MD_MSG_MAX, "%s: the activity log (at byte %llu) is corrupt in both slots, so "
			 "the blocks that were being written when it crashed are unknown; refusing to attach "
			 "(nothing was changed). To give up this node's data: 'dipole create-md %s --force' "
			 "here, then a full sync from the peer", disk_path,
			 (unsigned long long)e->sb.lay.al_offset, res);
		free(ext);
		return -EBADMSG;
	}
	/* with every peer: which of them got those writes is unknown */
	uint64_t before = bitmap_oos(e->bm, 0);
	for (uint32_t s = 0; s < e->nslots; s++)
		for (int i = 0; i < n; i++) /* (an extent past the end marks nothing) */
			engine_mark_oos(e, (int)s, (uint64_t)ext[i] * MD_AL_EXTENT, MD_AL_EXTENT);
	free(ext);
	e->al_marked = bitmap_oos(e->bm, 0) - before;
	if (n <= 0)
		return 0;
	log_warn("activity log: %d extent(s) were active; %llu block(s) marked out of sync", n,
		 (unsigned long long)e->al_marked);
	/* the marks must survive another crash before they are resynced */
	int rc = bitmap_save(e->bm, NULL);
	if (!rc)
		rc = disk_flush(e->disk);
	if (rc)
		snprintf(err, MD_MSG_MAX, "cannot write the bitmap to %s: %s", disk_path, strerror(-rc));
	return rc;
}

int engine_open(struct engine **out, const char *res, const char *node, int node_id, const char *disk_path,
		char *err)
{
	struct engine *e = engine_alloc(res, node);
	int rc;

	err[0] = 0;
	if (!e)
		return -ENOMEM;
	engine_set_disk(e, DS_ATTACHING, disk_path);
	if ((rc = open_md(e, res, node_id, disk_path, err)))
		goto fail;
	e->size = e->sb.lay.data_size;
	e->nslots = e->sb.lay.nslots;
	unsure_sync(e);
	if ((rc = open_bitmap(e, res, disk_path, err)))
		goto fail;
	if ((e->sb.flags & MDF_CONSISTENT) && (e->sb.flags & MDF_WAS_UP_TO_DATE))
		engine_set_disk(e, DS_UPTODATE, "attached: metadata says consistent and up to date");
	else if (e->sb.flags & MDF_CONSISTENT)
		engine_set_disk(e, DS_CONSISTENT, "attached: metadata says consistent, not known up to date");
	else
		engine_set_disk(e, DS_INCONSISTENT, "attached: metadata says inconsistent");
	if (e->sb.flags & MDF_CRASHED) {
		log_warn("%s was not detached cleanly last time (daemon killed or machine crashed)", disk_path);
		e->crashed_primary = !!(e->sb.flags & MDF_PRIMARY_IND);
		if ((rc = replay_activity_log(e, res, disk_path, err)))
			goto fail;
	}
	/* (engine_alloc made it Secondary: every node starts as one) */
	e->sb.flags |= MDF_CRASHED;
	e->sb.flags &= ~(uint32_t)(MDF_PRIMARY_IND | MDF_BM_CRC);
	rc = md_write(e->disk, &e->sb);
	if (rc) {
		snprintf(err, MD_MSG_MAX, "cannot update metadata on %s: %s", disk_path, strerror(-rc));
		goto fail;
	}
	*out = e;
	return 0;
fail:
	bitmap_close(e->bm);
	free((void *)e->sync_wrote);
	disk_close(e->disk);
	pthread_mutex_destroy(&e->lock);
	free(e);
	return rc ? rc : -EINVAL;
}

static int diskless(struct engine *e)
{
	return atomic_load_explicit(&e->dstate, memory_order_relaxed) == DS_DISKLESS;
}

int engine_close(struct engine *e)
{
	int rc, rc2;

	if (!e)
		return 0;
	if (diskless(e)) {
		/* the disk failed: nothing more is written to it */
		engine_forget(e);
		return 0;
	}
	rc = disk_flush(e->disk);
	uint32_t crc = 0;
	pthread_mutex_lock(&e->lock);
	rc2 = bitmap_save(e->bm, &crc);
	if (!rc)
		rc = rc2;
	rc2 = disk_flush(e->disk);
	if (!rc)
		rc = rc2;
	/* the bitmap holds every mark now: the activity log may forget */
	rc2 = al_clear(e->al);
	if (!rc)
		rc = rc2;
	rc2 = disk_flush(e->disk);
	if (!rc)
		rc = rc2;
	if (!rc) {
		/* only a fully flushed detach may clear the crash marker */
		e->sb.flags &= ~(uint32_t)(MDF_CRASHED | MDF_PRIMARY_IND);
		e->sb.flags |= MDF_BM_CRC;
		e->sb.bm_crc = crc;
		rc = md_write(e->disk, &e->sb);
	}
	pthread_mutex_unlock(&e->lock);
	engine_forget(e);
	return rc;
}

void engine_forget(struct engine *e)
{
	if (!e)
		return;
	disk_close(e->disk);
	bitmap_close(e->bm);
	free((void *)e->sync_wrote);
	for (int i = 0; i < 4; i++)
		free((void *)e->sync_wrote_retired[i]);
	al_free(e->al);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

void engine_suspend(struct engine *e, const char *why)
{
	pthread_mutex_lock(&e->lock);
	snprintf(e->suspend_reason, sizeof e->suspend_reason, "%s", why);
	int was = atomic_exchange(&e->suspended, 1);
	pthread_mutex_unlock(&e->lock);
	if (!was)
		log_err("I/O suspended: %s", why);
}

void engine_resume(struct engine *e, const char *why)
{
	pthread_mutex_lock(&e->lock);
	int was = atomic_exchange(&e->suspended, 0);
	e->suspend_reason[0] = 0;
	pthread_cond_broadcast(&e->resume_cond);
	pthread_mutex_unlock(&e->lock);
	if (was)
		log_warn("I/O resumed: %s", why);
}

void engine_set_uptodate(struct engine *e, const char *why)
{
	pthread_mutex_lock(&e->lock);
	int was = atomic_load(&e->dstate);
	if (engine_set_disk_locked(e, DS_UPTODATE, why))
		was = DS_UPTODATE; /* refused (logged): nothing changed */
	pthread_mutex_unlock(&e->lock);
	if (was != DS_UPTODATE)
		log_info("disk %s -> UpToDate: %s", disk_state_name((enum disk_state)was), why);
}

int engine_is_suspended(struct engine *e)
{
	return atomic_load_explicit(&e->suspended, memory_order_acquire);
}

static int fs_stale(struct engine *e)
{
	uint64_t armed = atomic_load(&e->fs_armed);
	return armed && armed != atomic_load(&e->fs_epoch);
}

/* No I/O now: on-no-quorum io-error, or a fenced dipolefs epoch */
static int io_refused(struct engine *e)
{
	return atomic_load_explicit(&e->io_fail, memory_order_relaxed) || fs_stale(e);
}

/* (a fence ends the wait: what waited was submitted under the old epoch;
 * so does a demotion for a write, which its caller then fails) */
static void wait_resume_as(struct engine *e, int writer)
{
	pthread_mutex_lock(&e->lock);
	while (atomic_load(&e->suspended) && !fs_stale(e) && !(writer && atomic_load(&e->role) != ROLE_PRIMARY))
		pthread_cond_wait(&e->resume_cond, &e->lock);
	pthread_mutex_unlock(&e->lock);
}

static void wait_resume(struct engine *e)
{
	wait_resume_as(e, 0);
}

void engine_detach(struct engine *e, const char *why)
{
	pthread_mutex_lock(&e->lock);
	int was = atomic_load(&e->dstate);
	engine_set_disk_locked(e, DS_DISKLESS, why);
	if (was != DS_DISKLESS)
		snprintf(e->detach_reason, sizeof e->detach_reason, "%s", why);
	pthread_mutex_unlock(&e->lock);
	if (was == DS_DISKLESS)
		return;
	log_err("local disk failed (%s): detached, disk Diskless%s", why,
		e->npeers ? "; reads and writes now go to the peers" : "; I/O fails from now on");
	engine_notify_replicas(e);
}

/* A local I/O error, handled per on-io-error. Returns 1 when the disk was
 * detached (the caller then serves the request through the peer). */
static int io_error(struct engine *e, int rc, const char *op, uint64_t off, uint64_t len)
{
	char what[160];
	snprintf(what, sizeof what, "%s of %llu bytes at offset %llu: %s", op, (unsigned long long)len,
		 (unsigned long long)off, strerror(-rc));
	atomic_fetch_add_explicit(&e->st.io_errors, 1, memory_order_relaxed);
	switch (e->on_io_error) {
	case OIE_PASS_ON:
		log_err("local I/O error (%s): passed on (on-io-error pass_on)", what);
		return 0;
	case OIE_CALL_HANDLER:
		log_err("local I/O error (%s): calling the local-io-error handler", what);
		if (e->io_error_hook)
			e->io_error_hook(e->hook_arg, what);
		return 0;
	default:
		engine_detach(e, what);
		return 1;
	}
}

static int range_ok(struct engine *e, uint64_t off, uint64_t len)
{
	return len <= e->size && off <= e->size - len;
}

static int count_err(struct engine *e, int rc)
{
	if (rc)
		atomic_fetch_add_explicit(&e->st.io_errors, 1, memory_order_relaxed);
	return rc;
}

/* The registered replica with this ctx, or NULL. */
static const struct replica *replica_of(struct engine *e, void *ctx)
{
	for (int i = 0; ctx && i < e->npeers; i++)
		if (e->rep[i].ctx == ctx)
			return &e->rep[i];
	return NULL;
}

static int rep_can_read(const struct replica *r)
{
	return r->ops->can_read(r->ctx);
}

static int rep_read(const struct replica *r, void *buf, size_t len, uint64_t off)
{
	return r->ops->read(r->ctx, buf, len, off);
}

/* A replica whose disk can serve reads this node cannot: the sync source
 * while SyncTarget, else any connected UpToDate one. NULL when none. */
static const struct replica *read_peer(struct engine *e)
{
	void *src = atomic_load(&e->sync_src);
	if (src) {
		const struct replica *r = replica_of(e, src);
		return r && rep_can_read(r) ? r : NULL;
	}
	for (int i = 0; i < e->npeers; i++)
		if (rep_can_read(&e->rep[i]))
			return &e->rep[i];
	return NULL;
}

static int read_remote(struct engine *e, void *buf, size_t len, uint64_t off)
{
	const struct replica *r = read_peer(e);
	return r ? rep_read(r, buf, len, off) : -EIO;
}

/* Inconsistent disk: blocks this node lacks come from a peer. While
 * SyncTarget the source's slot says which; before that, everything does. */
static int read_unsynced(struct engine *e, void *buf, size_t len, uint64_t off)
{
	const struct replica *src = read_peer(e);
	int slot = atomic_load(&e->sync_slot);
	if (!src)
		return -EIO;
	if (slot < 0 || src->ctx != atomic_load(&e->sync_src) || !src->ops->is_sync_target(src->ctx))
		return rep_read(src, buf, len, off);
	uint64_t pos = off, end = off + len;
	while (pos < end) {
		uint64_t b = pos / MD_BLOCK;
		int remote = bm_test(e, slot, b);
		uint64_t run = (b + 1) * MD_BLOCK;
		while (run < end && bm_test(e, slot, run / MD_BLOCK) == remote)
			run += MD_BLOCK;
		if (run > end)
			run = end;
		uint8_t *dst = (uint8_t *)buf + (pos - off);
		int rc = remote ? rep_read(src, dst, run - pos, pos) : disk_pread(e->disk, dst, run - pos, pos);
		if (rc)
			return rc;
		pos = run;
	}
	return 0;
}

int engine_read(struct engine *e, void *buf, size_t len, uint64_t off)
{
	if (!range_ok(e, off, len))
		return -EINVAL;
	if (engine_is_suspended(e))
		wait_resume(e);
	if (io_refused(e))
		return count_err(e, -EIO);
	int rc;
	if (diskless(e))
		rc = read_remote(e, buf, len, off);
	/* (a resource without a peer has nothing better than its own disk) */
	else if (e->npeers && atomic_load_explicit(&e->dstate, memory_order_relaxed) == DS_INCONSISTENT)
		rc = read_unsynced(e, buf, len, off);
	else if ((rc = disk_pread(e->disk, buf, len, off)) && io_error(e, rc, "read", off, len))
		rc = read_remote(e, buf, len, off);
	if (!rc) {
		atomic_fetch_add_explicit(&e->st.read_bytes, len, memory_order_relaxed);
		atomic_fetch_add_explicit(&e->st.reads, 1, memory_order_relaxed);
	}
	return count_err(e, rc);
}

int engine_read_fd(struct engine *e, const void *buf, size_t len, uint64_t off)
{
	/* exactly the cases in which engine_read does nothing but disk_pread */
	if (!range_ok(e, off, len) || engine_is_suspended(e) || io_refused(e) || diskless(e) ||
	    (e->npeers && atomic_load_explicit(&e->dstate, memory_order_relaxed) == DS_INCONSISTENT))
		return -1;
	return disk_read_fd(e->disk, buf, len, off);
}

int engine_read_fd_done(struct engine *e, void *buf, uint64_t off, size_t len, long res)
{
	res = disk_read_result(e->disk, buf, off, len, res);
	if (res < 0 && res != -EAGAIN && res != -EINTR && res != -ECANCELED)
		/* the disk's error, as engine_read would meet it: counted and
		 * on-io-error applied (after a detach the redo reads a peer) */
		io_error(e, (int)res, "read", off, len);
	if (res != (long)len)
		return -EAGAIN;
	atomic_fetch_add_explicit(&e->st.read_bytes, len, memory_order_relaxed);
	atomic_fetch_add_explicit(&e->st.reads, 1, memory_order_relaxed);
	return 0;
}

static int may_write(struct engine *e)
{
	return atomic_load_explicit(&e->role, memory_order_acquire) == ROLE_PRIMARY;
}

/* Every write below is replicated around the local operation: the peer gets
 * the request first (so the network transfer overlaps the local I/O), then
 * the protocol's acknowledgement is awaited; a range the peer did not get is
 * marked out of sync. */
enum op { OP_WRITE, OP_TRIM, OP_ZERO };

static int local_op(struct engine *e, enum op k, const void *buf, uint64_t len, uint64_t off, int fua, int no_hole)
{
	switch (k) {
	case OP_WRITE:
		return fua ? disk_pwrite_fua(e->disk, buf, len, off) : disk_pwrite(e->disk, buf, len, off);
	case OP_TRIM:
		return disk_trim(e->disk, off, len);
	default:
		return disk_zero(e->disk, off, len, no_hole);
	}
}

/* Would this write have to go the SyncTarget way? Checked again under the
 * resync lock, which the bitmap merge takes exclusively. */
static int unsynced(struct engine *e)
{
	return e->npeers && atomic_load_explicit(&e->dstate, memory_order_relaxed) == DS_INCONSISTENT;
}

/* ---- fan-out: one write to every disk peer */

struct fan {
	struct pending *pd[MD_MAX_PEERS];
	int ok[MD_MAX_PEERS];
};

static void fan_begin(struct engine *e, struct fan *f, const void *buf, size_t len, uint64_t off, unsigned df)
{
	if (e->npeers == 1) {
		f->pd[0] = e->rep[0].ops->write_begin(e->rep[0].ctx, buf, len, off, df, 0);
		return;
	}
	/* every peer gets the writes in the same order: a Secondary's applied
	 * writes are then a prefix of the Primary's, and the larger stamp has all
	 * of the smaller's */
	pthread_mutex_lock(&e->fanout);
	uint32_t stamp = atomic_fetch_add(&e->wstamp, 1) + 1;
	for (int i = 0; i < e->npeers; i++)
		f->pd[i] = e->rep[i].ops->write_begin(e->rep[i].ctx, buf, len, off, df, stamp);
	pthread_mutex_unlock(&e->fanout);
}

/* Wait for every peer's acknowledgement; what a peer did not get is marked
 * in its slot. Returns how many peers have the write. */
static int fan_end(struct engine *e, struct fan *f, uint64_t off, uint64_t len)
{
	int n = 0;
	for (int i = 0; i < e->npeers; i++) {
		f->ok[i] = e->rep[i].ops->write_end(e->rep[i].ctx, f->pd[i]);
		if (f->ok[i]) {
			n++;
		} else {
			/* tests hold open the window in which the peer may
			 * connect and get a bitmap without this mark */
			test_pause("fan-mark");
			engine_mark_oos(e, e->rep[i].slot, off, len);
		}
	}
	return n;
}

struct edges {
	uint64_t blk[2];    /* head and tail block */
	int part[2];        /* the write covers it only partly */
	int have[2];        /* its current content was fetched from the peer */
	uint8_t *buf;       /* 2 blocks */
};

/* The local part of a write on a node that lacks some blocks (under the
 * resync lock, shared). A partly written block this node lacks is completed
 * with the content fetched from the peer and written whole; every block
 * written whole no longer needs resync data, so its bit is cleared (resync
 * data for it arriving later is skipped). -EAGAIN: state changed, retry. */
static int unsynced_local(struct engine *e, enum op k, const uint8_t *buf, uint64_t len, uint64_t off, int fua,
			  int no_hole, struct edges *g)
{
	uint64_t s = off, t = off + len;
	int rc;

	int slot = atomic_load(&e->sync_slot);
	if (!unsynced(e))
		return -EAGAIN;
	for (int i = 0; i < 2; i++)
		if (g->part[i] && bm_test(e, slot, g->blk[i]) && !g->have[i])
			return -EAGAIN;
	wrote_set(e, g->blk[0], g->blk[1]);
	for (int i = 0; i < 2; i++) {
		if (!g->part[i] || !bm_test(e, slot, g->blk[i]))
			continue;
		uint8_t *b = g->buf + i * MD_BLOCK;
		uint64_t bs = g->blk[i] * MD_BLOCK, cs = off > bs ? off : bs;
		uint64_t ce = off + len < bs + MD_BLOCK ? off + len : bs + MD_BLOCK;
		if (k == OP_WRITE)
			memcpy(b + (cs - bs), buf + (cs - off), ce - cs);
		else
			memset(b + (cs - bs), 0, ce - cs);
		rc = fua ? disk_pwrite_fua(e->disk, b, MD_BLOCK, bs) : disk_pwrite(e->disk, b, MD_BLOCK, bs);
		if (rc)
			return rc;
		if (slot >= 0)
			engine_clear_oos(e, slot, g->blk[i], 1);
		if (i == 0)
			s = ce;
		else
			t = cs;
	}
	if (s < t) {
		rc = local_op(e, k, k == OP_WRITE ? buf + (s - off) : NULL, t - s, s, fua, no_hole);
		if (rc)
			return rc;
		uint64_t fb = (s + MD_BLOCK - 1) / MD_BLOCK, lb = t / MD_BLOCK;
		if (t == e->size)
			lb = e->bm_bits; /* a short last block is whole when written to the end */
		if (lb > fb && slot >= 0)
			engine_clear_oos(e, slot, fb, lb - fb);
	}
	return 0;
}

/* A write on an Inconsistent node (SyncTarget made Primary). Unlike on an
 * UpToDate node, a write the peer did not get fails: this node's copy alone
 * is not a copy anyone can rely on. */
static int unsynced_write(struct engine *e, enum op k, const void *buf, size_t len, uint64_t off, int fua,
			  int no_hole, unsigned df)
{
	struct edges g = { { off / MD_BLOCK, (off + len - 1) / MD_BLOCK }, { 0, 0 }, { 0, 0 }, NULL };
	const struct replica *src = read_peer(e);
	int slot = atomic_load(&e->sync_slot);
	int rc;

	g.part[0] = off % MD_BLOCK || off + len < (g.blk[0] + 1) * MD_BLOCK;
	g.part[1] = g.blk[1] != g.blk[0] && (off + len) % MD_BLOCK && off + len != e->size;
	if (g.part[0] && off + len == e->size && off % MD_BLOCK == 0)
		g.part[0] = 0; /* the short last block, written to its end */
	for (;;) {
		for (int i = 0; i < 2; i++) {
			if (!g.part[i] || g.have[i] || !bm_test(e, slot, g.blk[i]))
				continue;
			if (!src) {
				rc = -EIO;
				goto out;
			}
			if (!g.buf && posix_memalign((void **)&g.buf, MD_BLOCK, 2 * MD_BLOCK))
				return -ENOMEM;
			uint64_t bs = g.blk[i] * MD_BLOCK, bl = e->size - bs < MD_BLOCK ? e->size - bs : MD_BLOCK;
			memset(g.buf + i * MD_BLOCK, 0, MD_BLOCK);
			if ((rc = rep_read(src, g.buf + i * MD_BLOCK, bl, bs)))
				goto out;
			g.have[i] = 1;
		}
		struct fan f;
		fan_begin(e, &f, k == OP_WRITE ? buf : NULL, len, off, df);
		rc = unsynced_local(e, k, buf, len, off, fua, no_hole, &g);
		fan_end(e, &f, off, len);
		/* the write counts when the sync source has it */
		int ok = 0;
		for (int i = 0; i < e->npeers; i++)
			ok |= f.ok[i] && (&e->rep[i] == src || e->npeers == 1);
		if (rc == -EAGAIN) {
			if (!unsynced(e))
				break; /* the sync finished meanwhile: the normal path */
			continue;
		}
		if (!rc && !ok)
			rc = -EIO;
		goto out;
	}
	rc = -EAGAIN;
out:
	free(g.buf);
	return rc;
}

/* ---- the write policy (replica.h): the one place that decides */

static enum write_verdict policy_decide(struct engine *e, struct missed_write *m)
{
	struct write_policy wp = e->policy;
	if (!wp.decide)
		return m->frozen ? WV_HOLD : WV_COMPLETE; /* no policy (tests, fuzzing) */
	return wp.decide(wp.ctx, m);
}

/* A write `acks` replicas have and the others missed: complete, hold or
 * fail. Cold path: the views are taken only here. */
static enum write_verdict missed_verdict(struct engine *e, const struct fan *f, int acks)
{
	struct missed_write m;
	memset(&m, 0, offsetof(struct missed_write, missed));
	m.primary = atomic_load(&e->role) == ROLE_PRIMARY;
	m.replicas = e->npeers;
	m.acks = acks;
	for (int i = 0; i < e->npeers; i++)
		if (!f->ok[i])
			e->rep[i].ops->view(e->rep[i].ctx, &m.missed[m.nmissed++]);
	m.by_quorum = 0;
	m.frozen = engine_is_suspended(e);
	enum write_verdict v = policy_decide(e, &m);
	if (v == WV_COMPLETE && !m.frozen && engine_is_suspended(e)) {
		/* frozen meanwhile (another write's hold): this one waits too */
		m.frozen = 1;
		v = policy_decide(e, &m);
	}
	return v;
}

enum write_verdict engine_replica_lost(struct engine *e, const struct replica_view *v, int *by_quorum)
{
	struct missed_write m;
	memset(&m, 0, offsetof(struct missed_write, missed));
	m.lost = 1;
	m.primary = atomic_load(&e->role) == ROLE_PRIMARY;
	m.replicas = e->npeers;
	m.acks = e->npeers > 0 ? e->npeers - 1 : 0;
	m.nmissed = 1;
	m.missed[0] = *v;
	m.by_quorum = 0;
	enum write_verdict wv = policy_decide(e, &m);
	if (by_quorum)
		*by_quorum = m.by_quorum;
	return wv;
}

static void regen_if_due(struct engine *e);

/* Every write-like request: replicated, and on a SyncTarget the blocks it
 * completes stop needing resync data. */
static int do_write(struct engine *e, enum op k, const void *buf, size_t len, uint64_t off, unsigned flags,
		    int no_hole)
{
	int fua = k == OP_WRITE && (flags & ENGINE_FUA);
	unsigned df = k == OP_TRIM ? DF_TRIM : k == OP_ZERO ? DF_ZERO : fua ? DF_FUA : 0;
	int rc;

	if (!len)
		return 0;
	if (engine_is_suspended(e)) {
		wait_resume_as(e, 1);
		/* demoted while held: the write was taken by a Primary that is
		 * gone, and must not go out now, after its own demotion, to
		 * peers that follow another Primary (three_disks_return.sh) */
		if (!may_write(e))
			return -EIO;
	}
	if (io_refused(e))
		return -EIO;
	if (!diskless(e) && (rc = al_begin(e->al, off, len)) && !io_error(e, rc, "activity log update", off, len))
		return rc;
	int logged = !diskless(e);
	for (;;) {
		if (atomic_load_explicit(&e->regen_due, memory_order_relaxed))
			regen_if_due(e);
		if (diskless(e)) {
			/* only the peers have a disk: the write is done when one has it */
			struct fan f;
			int n = 0;
			if (e->npeers) {
				fan_begin(e, &f, k == OP_WRITE ? buf : NULL, len, off, df);
				n = fan_end(e, &f, off, len);
			}
			rc = n ? 0 : -EIO;
			break;
		}
		if (unsynced(e) && (rc = unsynced_write(e, k, buf, len, off, fua, no_hole, df)) != -EAGAIN)
			break;
		struct fan f;
		if (e->npeers)
			fan_begin(e, &f, k == OP_WRITE ? buf : NULL, len, off, df);
		rc = unsynced(e) ? -EAGAIN : local_op(e, k, buf, len, off, fua, no_hole);
		int n = e->npeers ? fan_end(e, &f, off, len) : 0;
		int ok = e->npeers && n == e->npeers;
		uint32_t missed = 0;
		for (int i = 0; !ok && i < e->npeers; i++)
			if (!f.ok[i])
				missed |= 1u << e->rep[i].slot;
		enum write_verdict v = e->npeers && !ok && !rc ? missed_verdict(e, &f, n) : WV_COMPLETE;
		if (v == WV_FAIL) {
			rc = -EIO; /* on-no-quorum io-error: not a local disk error */
			break;
		}
		if (v != WV_COMPLETE) {
			/* I/O is frozen (a peer's fate is open): this write is not
			 * done until it can be replicated again, or I/O is resumed */
			wait_resume_as(e, 1);
			if (!may_write(e) || fs_stale(e)) {
				/* demoted or fenced meanwhile: this write must not go out late */
				rc = -EIO;
				break;
			}
			int back = 0;
			for (int i = 0; i < e->npeers; i++)
				back |= !f.ok[i] && e->rep[i].ops->is_connected(e->rep[i].ctx);
			if (back || v == WV_HOLD_RESEND)
				continue;
			if (atomic_load(&e->io_fail)) {
				rc = -EIO;
				break;
			}
		}
		/* several peers: a Primary completing a write some peer missed starts
		 * a new generation for it first (two peers: when the link drops) */
		if (missed && !rc && e->npeers > 1 && atomic_load(&e->role) == ROLE_PRIMARY)
			engine_new_generation(e, missed, "writing without some peers");
		if (rc && rc != -EAGAIN && io_error(e, rc, k == OP_WRITE ? "write" : "trim/zero", off, len))
			rc = ok ? 0 : -EIO; /* detached: done if the peer has it */
		if (rc != -EAGAIN)
			break;
	}
	if (logged)
		al_end(e->al, off, len);
	return rc;
}

int engine_write(struct engine *e, const void *buf, size_t len, uint64_t off, unsigned flags)
{
	int rc;

	if (!may_write(e))
		return -EPERM;
	if (!range_ok(e, off, len))
		return -ENOSPC;
	rc = do_write(e, OP_WRITE, buf, len, off, flags, 0);
	if (!rc) {
		atomic_fetch_add_explicit(&e->st.written_bytes, len, memory_order_relaxed);
		atomic_fetch_add_explicit(&e->st.writes, 1, memory_order_relaxed);
	}
	return count_err(e, rc);
}

int engine_flush(struct engine *e)
{
	/* a Primary's flush covers its held writes: demoted, they fail (a
	 * Secondary has none to wait for) */
	if (engine_is_suspended(e) && may_write(e)) {
		wait_resume_as(e, 1);
		if (!may_write(e))
			return count_err(e, -EIO);
	}
	if (fs_stale(e))
		return count_err(e, -EIO);
	atomic_fetch_add_explicit(&e->st.flushes, 1, memory_order_relaxed);
	/* the peer's flush covers every write it acknowledged before it; both
	 * disks flush concurrently */
	struct pending *pd[MD_MAX_PEERS];
	int any = 0, prc = 0;
	for (int i = 0; i < e->npeers; i++)
		any |= (pd[i] = e->rep[i].ops->flush_begin(e->rep[i].ctx)) != NULL;
	int rc = diskless(e) ? 0 : disk_flush(e->disk);
	for (int i = 0; i < e->npeers; i++) {
		int r = e->rep[i].ops->flush_end(e->rep[i].ctx, pd[i]);
		if (!prc)
			prc = r;
	}
	if (rc && io_error(e, rc, "flush", 0, 0))
		rc = any ? 0 : -EIO;
	if (diskless(e) && !any)
		rc = -EIO;
	return rc ? rc : prc;
}

int engine_flush_local(struct engine *e)
{
	if (diskless(e))
		return -ENODEV;
	int rc = disk_flush(e->disk);
	return rc && io_error(e, rc, "flush", 0, 0) ? -ENODEV : rc;
}

int engine_trim(struct engine *e, uint64_t off, uint64_t len, unsigned flags)
{
	if (!may_write(e))
		return -EPERM;
	if (!range_ok(e, off, len))
		return -EINVAL;
	int rc = do_write(e, OP_TRIM, NULL, len, off, 0, 0);
	if (!rc && (flags & ENGINE_FUA))
		rc = disk_flush(e->disk);
	if (!rc)
		atomic_fetch_add_explicit(&e->st.trims, 1, memory_order_relaxed);
	return count_err(e, rc);
}

int engine_zero(struct engine *e, uint64_t off, uint64_t len, int no_hole, unsigned flags)
{
	if (!may_write(e))
		return -EPERM;
	if (!range_ok(e, off, len))
		return -ENOSPC;
	/* zeroing moves no data: it is counted with trims, not in written_bytes */
	int rc = do_write(e, OP_ZERO, NULL, len, off, 0, no_hole);
	if (!rc && (flags & ENGINE_FUA))
		rc = disk_flush(e->disk);
	if (!rc)
		atomic_fetch_add_explicit(&e->st.trims, 1, memory_order_relaxed);
	return count_err(e, rc);
}

int engine_apply(struct engine *e, const void *buf, size_t len, uint64_t off, unsigned dflags)
{
	int rc;
	if (!range_ok(e, off, len))
		return -EINVAL;
	if (diskless(e))
		return -EIO;
	atomic_fetch_add_explicit(&e->wgen, 1, memory_order_relaxed);
	if (dflags & DF_TRIM)
		rc = disk_trim(e->disk, off, len);
	else if (dflags & DF_ZERO)
		rc = disk_zero(e->disk, off, len, 1);
	else if (dflags & DF_FUA)
		rc = disk_pwrite_fua(e->disk, buf, len, off);
	else
		rc = disk_pwrite(e->disk, buf, len, off);
	if (!rc && !(dflags & (DF_TRIM | DF_ZERO)))
		atomic_fetch_add_explicit(&e->st.written_bytes, len, memory_order_relaxed);
	if (rc)
		io_error(e, rc, "replicated write", off, len);
	return rc;
}

int engine_apply_resync(struct engine *e, const void *buf, size_t len, uint64_t off)
{
	int slot = atomic_load(&e->sync_slot);
	if (!range_ok(e, off, len) || off % MD_BLOCK || slot < 0)
		return -EINVAL;
	uint64_t pos = off, end = off + len;
	while (pos < end) {
		uint64_t b = pos / MD_BLOCK;
		int apply = !wrote_test(e, b);
		uint64_t run = (b + 1) * MD_BLOCK;
		while (run < end && (!wrote_test(e, run / MD_BLOCK)) == apply)
			run += MD_BLOCK;
		if (run > end)
			run = end;
		if (apply) {
			/* a resync source to another peer reading ahead must see it */
			atomic_fetch_add_explicit(&e->wgen, 1, memory_order_relaxed);
			int rc = disk_pwrite(e->disk, (const uint8_t *)buf + (pos - off), run - pos, pos);
			if (rc)
				return count_err(e, rc);
			engine_clear_oos(e, slot, b, (run - pos + MD_BLOCK - 1) / MD_BLOCK);
			atomic_fetch_add_explicit(&e->st.written_bytes, run - pos, memory_order_relaxed);
		}
		pos = run;
	}
	return 0;
}

int engine_sync_target_begin(struct engine *e, void *src, int slot, int full, uint64_t sync_uuid)
{
	pthread_mutex_lock(&e->lock);
	/* one source at a time: two resyncs may have been agreed at once */
	void *cur = atomic_load(&e->sync_src);
	if (cur && cur != src) {
		pthread_mutex_unlock(&e->lock);
		return -EBUSY;
	}
	struct md_super nsb = e->sb;
	/* from the first resync block on, the local data is a mix: not consistent */
	nsb.flags &= ~(uint32_t)(MDF_CONSISTENT | MDF_WAS_UP_TO_DATE);
	/* what an interruption resumes from: the source's generation; the
	 * slot's bitmap (made durable once merged) holds what is missing */
	if (sync_uuid) {
		nsb.peer[slot].bitmap_uuid = sync_uuid;
		nsb.peer[slot].flags |= MDP_SYNC_TARGET;
	} else {
		nsb.peer[slot].flags &= ~(uint32_t)MDP_SYNC_TARGET;
	}
	int rc = md_write(e->disk, &nsb);
	if (!rc) {
		e->sb = nsb;
		for (uint64_t w = 0; e->sync_wrote && w < (e->bm_bits + 63) / 64; w++)
			atomic_store_explicit(&e->sync_wrote[w], 0, memory_order_relaxed);
		if (full)
			engine_mark_all_oos(e, slot);
		atomic_store(&e->sync_slot, slot);
		atomic_store(&e->sync_src, src);
		engine_set_disk_locked(e, DS_INCONSISTENT, full ? "resync target: full sync started"
								: "resync target: bitmap sync started");
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int engine_sync_target_done(struct engine *e, const uint64_t *uuid, uint64_t gen_time)
{
	pthread_mutex_lock(&e->lock);
	struct md_super nsb = e->sb;
	/* the same data as the source now: the same generations */
	int slot = atomic_load(&e->sync_slot);
	nsb.uuid[UUID_CURRENT] = uuid[UUID_CURRENT];
	for (int i = UUID_HISTORY0; i < UUID_COUNT; i++)
		nsb.uuid[i] = uuid[i];
	nsb.gen_time = gen_time;
	nsb.flags |= MDF_CONSISTENT | MDF_WAS_UP_TO_DATE;
	/* what other peers lack of this (new) data is unknown here: they are
	 * unsure, and their changes count from the generation this node had
	 * (so a peer still at it is seen as behind, not as a split brain) */
	uint64_t old = e->sb.uuid[UUID_CURRENT];
	int real = old > MD_UUID_JUST_CREATED && old != uuid[UUID_CURRENT];
	for (uint32_t i = 0; i < e->nslots; i++) {
		if ((int)i == slot) {
			nsb.peer[i].bitmap_uuid = 0;
			nsb.peer[i].flags &= ~(uint32_t)(MDP_UNSURE | MDP_SYNC_TARGET);
		} else {
			/* (an older bitmap generation stays: it covers more) */
			if (!nsb.peer[i].bitmap_uuid && real)
				nsb.peer[i].bitmap_uuid = old;
			nsb.peer[i].flags |= MDP_UNSURE;
		}
	}
	/* identical to the source now: nothing is out of sync with it; what
	 * the other slots counted is moot (they are unsure now). The cleared
	 * bitmaps go to disk first, so a crash does not bring back marks that
	 * would look like changes of this node's own. */
	for (uint32_t i = 0; i < e->nslots; i++)
		engine_clear_oos(e, (int)i, 0, e->bm_bits);
	int rc = engine_save_bitmap(e);
	if (!rc)
		rc = disk_flush(e->disk);
	if (!rc)
		rc = super_commit(e, &nsb);
	if (!rc) {
		atomic_store(&e->sync_slot, -1);
		atomic_store(&e->sync_src, NULL);
		engine_set_disk_locked(e, DS_UPTODATE, "resync finished: same data as the source");
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

/* always: a new generation even where every peer in mask has its bitmap
 * generation already (it was away before) */
static int new_generation(struct engine *e, uint32_t mask, const char *why, int always)
{
	int rc = 0, need = 0;
	pthread_mutex_lock(&e->lock);
	for (uint32_t i = 0; i < e->nslots; i++)
		need |= (mask >> i & 1) && (always || !e->sb.peer[i].bitmap_uuid);
	if (need && atomic_load(&e->dstate) == DS_UPTODATE) {
		struct md_super nsb = e->sb;
		uint64_t old = nsb.uuid[UUID_CURRENT];
		for (uint32_t i = 0; i < e->nslots; i++)
			if ((mask >> i & 1) && !nsb.peer[i].bitmap_uuid)
				nsb.peer[i].bitmap_uuid = old;
		nsb.uuid[UUID_CURRENT] = md_new_uuid();
		/* several peers: the lineage goes to history too, so two nodes that
		 * followed this one at different times see which is older */
		if (e->nslots > 1)
			md_history_push(nsb.uuid, old);
		nsb.gen_time = now_realtime_ns();
		rc = super_commit(e, &nsb);
		if (!rc)
			log_info("new data generation %016llx (%s); changes since %016llx are tracked in the bitmap",
				 (unsigned long long)nsb.uuid[UUID_CURRENT], why, (unsigned long long)old);
		need = !rc;
	} else {
		need = 0;
	}
	pthread_mutex_unlock(&e->lock);
	/* several peers: those still connected follow into the new generation
	 * (P_STATE, in order with the writes that belong to it) */
	if (need && e->npeers > 1)
		engine_notify_replicas(e);
	return rc;
}

int engine_new_generation(struct engine *e, uint32_t mask, const char *why)
{
	return new_generation(e, mask, why, 0);
}

void engine_peer_back(struct engine *e)
{
	if (e->npeers > 1)
		atomic_store(&e->regen_due, 1);
}

/* A write is about to go out and a peer connected since this Primary last
 * started a generation: the peers that are away get a new one before it,
 * even those whose bitmap counts from an older generation already. The
 * peer that came back may have resynced one of them to this node's current
 * generation while this node could not write (held by quorum): the
 * write would then be in a generation that node holds without it, the two
 * Secondaries look equal and the one that lacks it could be promoted and
 * resync it away everywhere (three_disks_relay.sh). Before the write is
 * sent, so that the peers follow first (in order with it). */
static void regen_if_due(struct engine *e)
{
	uint32_t away = 0;
	if (atomic_load(&e->role) != ROLE_PRIMARY || atomic_load(&e->dstate) != DS_UPTODATE)
		return; /* (due still: for when this node writes as a current Primary) */
	for (int i = 0; i < e->npeers; i++)
		if (!e->rep[i].ops->is_connected(e->rep[i].ctx))
			away |= 1u << e->rep[i].slot;
	if (!atomic_exchange(&e->regen_due, 0) || !away)
		return;
	if (new_generation(e, away, "writing without some peers after another came back", 1))
		atomic_store(&e->regen_due, 1);
}

int engine_adopt_generation(struct engine *e, int keep, const uint64_t *uuid, uint64_t gen_time)
{
	int rc = 0;
	pthread_mutex_lock(&e->lock);
	if (e->sb.uuid[UUID_CURRENT] != uuid[UUID_CURRENT] && atomic_load(&e->dstate) >= DS_INCONSISTENT) {
		struct md_super nsb = e->sb;
		uint64_t old = nsb.uuid[UUID_CURRENT];
		for (uint32_t i = 0; i < e->nslots; i++) {
			if ((int)i == keep)
				continue;
			/* (an Inconsistent disk fresh from create-md follows from
			 * "just created", which is no generation to count from) */
			if (!nsb.peer[i].bitmap_uuid && old > MD_UUID_JUST_CREATED)
				nsb.peer[i].bitmap_uuid = old;
			nsb.peer[i].flags |= MDP_UNSURE;
		}
		nsb.uuid[UUID_CURRENT] = uuid[UUID_CURRENT];
		/* the Primary's lineage (it holds this node's old generation, when
		 * the Primary's history is not longer than two), newest first; a
		 * whole disk keeps its own after it (a copy of the Primary, its
		 * data went through both), so a deep history survives following
		 * a Primary whose P_STATE carries two. An Inconsistent one has
		 * the Primary's only: its old data is being replaced */
		if (uuid[UUID_HISTORY0]) {
			if (atomic_load(&e->dstate) == DS_INCONSISTENT)
				memset(nsb.uuid + UUID_HISTORY0, 0, MD_HISTORY * sizeof *nsb.uuid);
			else
				md_history_push(nsb.uuid, old);
			md_history_push(nsb.uuid, uuid[UUID_HISTORY1]);
			md_history_push(nsb.uuid, uuid[UUID_HISTORY0]);
		}
		nsb.gen_time = gen_time;
		rc = super_commit(e, &nsb);
		if (!rc)
			log_info("following the Primary into data generation %016llx (was %016llx)",
				 (unsigned long long)uuid[UUID_CURRENT], (unsigned long long)old);
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int engine_sync_source_done(struct engine *e, int slot)
{
	pthread_mutex_lock(&e->lock);
	int rc = 0;
	if (e->sb.peer[slot].bitmap_uuid && !engine_oos(e, slot)) {
		struct md_super nsb = e->sb;
		md_history_push(nsb.uuid, nsb.peer[slot].bitmap_uuid);
		nsb.peer[slot].bitmap_uuid = 0;
		nsb.peer[slot].flags &= ~(uint32_t)MDP_UNSURE;
		rc = super_commit(e, &nsb);
	} else if (engine_unsure(e, slot) && !engine_oos(e, slot)) {
		struct md_super nsb = e->sb;
		nsb.peer[slot].flags &= ~(uint32_t)MDP_UNSURE;
		rc = super_commit(e, &nsb);
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

void *engine_sync_source(struct engine *e)
{
	return atomic_load(&e->sync_src);
}

int engine_sync_target_abort(struct engine *e, void *src)
{
	void *want = src;
	if (!atomic_compare_exchange_strong(&e->sync_src, &want, NULL))
		return 0;
	atomic_store(&e->sync_slot, -1);
	return 1;
}

/* The refusal of a promotion without an UpToDate disk, with the reason the
 * disk left UpToDate: an Outdated disk lacks writes a peer acknowledged
 * (quorum lost, or a voter recorded that the peer went on without it), so
 * waiting for that peer beats forcing. Under e->lock; msg holds 256 bytes. */
static void refuse_not_uptodate(struct engine *e, int ds, char *msg)
{
	if (ds == DS_OUTDATED)
		snprintf(msg, 256, "refusing to become Primary: local disk is Outdated (%.90s); it lacks writes a "
			 "peer has and is UpToDate again once resynced from it ('primary --force' discards them)",
			 e->disk_why);
	else
		snprintf(msg, 256, "refusing to become Primary: local disk is %s, not UpToDate; "
			 "use 'primary --force' to declare this node's data the good copy",
			 disk_state_name((enum disk_state)ds));
}

int engine_set_role(struct engine *e, enum role r, int force, char *msg)
{
	int rc = 0, rotate = 0;

	msg[0] = 0;
	pthread_mutex_lock(&e->lock);
	if (r == ROLE_PRIMARY) {
		int ds = e->dstate;
		for (int i = 0; i < e->npeers && e->role != ROLE_PRIMARY; i++)
			if ((rc = e->rep[i].ops->may_promote(e->rep[i].ctx, msg)))
				goto out;
		/* a SyncTarget may be Primary: what it lacks is read from the peer */
		const struct replica *src = ds == DS_INCONSISTENT ? read_peer(e) : NULL;
		int through = !force && src;
		if (ds != DS_UPTODATE && !force && !through) {
			refuse_not_uptodate(e, ds, msg);
			rc = -EPERM;
			goto out;
		}
		/* ... but not while another peer is away: a SyncTarget's writes
		 * start no new generation for the peers that miss them, so the
		 * away one would later compare as equal with the source, which
		 * has them, and could overwrite them (three_disks_return.sh) */
		for (int i = 0; through && i < e->npeers; i++) {
			if (&e->rep[i] != src && !e->rep[i].ops->is_connected(e->rep[i].ctx)) {
				snprintf(msg, 256, "refusing to become Primary: local disk is Inconsistent (a resync "
					 "to it is running) and another peer is not connected; wait until "
					 "the resync is done");
				rc = -EBUSY;
				goto out;
			}
		}
		struct md_super nsb = e->sb;
		nsb.flags |= MDF_PRIMARY_IND;
		if (ds != DS_UPTODATE && !through) {
			/* forced: this data becomes a new generation */
			uint64_t was = nsb.uuid[UUID_CURRENT];
			nsb.uuid[UUID_CURRENT] = md_new_uuid();
			md_history_push(nsb.uuid, was);
			for (uint32_t i = 0; i < e->nslots; i++)
				nsb.peer[i].bitmap_uuid = 0;
			nsb.gen_time = now_realtime_ns();
			nsb.flags |= MDF_CONSISTENT | MDF_WAS_UP_TO_DATE;
		}
		rc = md_write(e->disk, &nsb);
		if (rc) {
			snprintf(msg, 256, "cannot write metadata: %s", strerror(-rc));
			goto out;
		}
		e->sb = nsb;
		if (through)
			log_info("Primary with an Inconsistent disk: blocks not yet synced are read from the peer");
		else if (ds != DS_UPTODATE)
			log_info("disk %s -> UpToDate (forced, new generation %016llx)",
				 disk_state_name((enum disk_state)ds), (unsigned long long)nsb.uuid[UUID_CURRENT]);
		if (!through)
			engine_set_disk_locked(e, DS_UPTODATE, force && ds != DS_UPTODATE
				? "primary --force: this node's data is the good copy (new generation)" : "promoted");
		if (e->role != ROLE_PRIMARY)
			log_info("role Secondary -> Primary");
		role_set_locked(e, ROLE_PRIMARY, force ? "primary --force" : "primary");
	} else {
		if (e->role == ROLE_PRIMARY) {
			role_set_locked(e, ROLE_SECONDARY, "secondary");
			/* held writes fail now: they can never complete */
			pthread_cond_broadcast(&e->resume_cond);
			/* writes admitted before the switch must be durable before we say so */
			rc = disk_flush(e->disk);
			struct md_super nsb = e->sb;
			nsb.flags &= ~(uint32_t)MDF_PRIMARY_IND;
			if (!rc)
				rc = md_write(e->disk, &nsb);
			if (!rc)
				e->sb = nsb;
			log_info("role Primary -> Secondary");
		}
	}
	for (int i = 0; r == ROLE_PRIMARY && !force && i < e->npeers; i++)
		if (!e->rep[i].ops->is_connected(e->rep[i].ctx))
			rotate |= 1u << e->rep[i].slot;
out:
	pthread_mutex_unlock(&e->lock);
	/* Primary without a peer: what it writes from now on is a new
	 * generation that peer does not have. With several peers always, as
	 * DRBD 9 does, even when that peer's bitmap counts from an older one
	 * already: keeping the generation let this Primary write under the
	 * current one of another node that went on without it, the two met as
	 * equals with marks on both sides, and the union went from the lower
	 * node-id over this node's acknowledged writes (three_disks_return.sh) */
	if (!rc && rotate)
		new_generation(e, (uint32_t)rotate, "Primary while a peer is not connected", e->npeers > 1);
	if (!rc)
		engine_notify_replicas(e);
	return rc;
}

/* ---- dipolefs's write epoch ------------------------------------------- */

uint64_t engine_fs_arm(struct engine *e)
{
	pthread_mutex_lock(&e->lock);
	uint64_t ep = atomic_load(&e->fs_epoch);
	if (!ep) /* 0 means unarmed */
		atomic_store(&e->fs_epoch, ep = 1);
	atomic_store(&e->fs_armed, ep);
	e->fs_fence_reason[0] = 0;
	pthread_mutex_unlock(&e->lock);
	return ep;
}

void engine_fs_disarm(struct engine *e)
{
	atomic_store(&e->fs_armed, 0);
}

int engine_fs_fence(struct engine *e, const char *why)
{
	pthread_mutex_lock(&e->lock);
	int now = atomic_load(&e->fs_armed) && !fs_stale(e);
	if (now) {
		atomic_fetch_add(&e->fs_epoch, 1);
		snprintf(e->fs_fence_reason, sizeof e->fs_fence_reason, "%s", why);
		/* requests held by suspended I/O wake and fail */
		pthread_cond_broadcast(&e->resume_cond);
	}
	pthread_mutex_unlock(&e->lock);
	if (now)
		log_err("fs: write epoch %llu fenced: %s; the mounted filesystem's I/O fails with EIO from now on",
			(unsigned long long)atomic_load(&e->fs_armed), why);
	return now;
}

int engine_fs_stale(struct engine *e, char *why)
{
	int stale = fs_stale(e);
	if (why) {
		pthread_mutex_lock(&e->lock);
		snprintf(why, 200, "%s", stale ? e->fs_fence_reason : "");
		pthread_mutex_unlock(&e->lock);
	}
	return stale;
}

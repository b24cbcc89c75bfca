/* resize — see resize.h. */
#include "resize.h"
#include "engine.h"
#include "bitmap.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* a disk whose blocks mean something: shrinking it would cut data off */
static int holds_data(int disk)
{
	return disk == DS_CONSISTENT || disk == DS_OUTDATED || disk == DS_UPTODATE;
}

/* Persist la_size = bytes and export it; call with e->lock held. */
static int set_locked(struct engine *e, uint64_t bytes)
{
	if (e->sb.la_size != bytes) {
		struct md_super nsb = e->sb;
		nsb.la_size = bytes;
		int rc = md_write(e->disk, &nsb);
		if (rc)
			return rc;
		e->sb = nsb;
	}
	atomic_store(&e->size, bytes);
	return 0;
}

static void size_changed(struct engine *e, uint64_t old)
{
	uint64_t now = atomic_load(&e->size);
	char a[32], b[32];
	if (now == old)
		return;
	log_info("device size %s -> %s (%llu bytes)", fmt_size(old, a, sizeof a), fmt_size(now, b, sizeof b),
		 (unsigned long long)now);
	if (e->size_hook)
		e->size_hook(e->size_arg, now);
}

int resize_attach(struct engine *e, uint64_t cap, const char *where, char *err)
{
	char a[32], b[32], c[32];
	uint64_t data = e->sb.lay.data_size, la = e->sb.la_size, usable;
	int rc = 0;

	err[0] = 0;
	if (!e->bm)
		return 0; /* diskless: no size of its own */
	cap = cap / MD_BLOCK * MD_BLOCK;
	if (cap > data) {
		snprintf(err, MD_MSG_MAX, "%s: disk { size %s } is larger than the usable size of %s, %s (the "
			 "backing disk minus dipole's metadata); refusing to attach, nothing was changed",
			 where, fmt_size(cap, a, sizeof a), e->disk->path, fmt_size(data, b, sizeof b));
		return -EINVAL;
	}
	usable = cap ? cap : data;
	pthread_mutex_lock(&e->lock);
	if (la > usable && (e->sb.flags & MDF_CONSISTENT)) {
		char capw[300] = "";
		if (cap)
			snprintf(capw, sizeof capw, " (disk { size } at %s)", where);
		snprintf(err, MD_MSG_MAX, "the usable size %s%s is smaller than the agreed size %s that holds data: "
			 "shrinking below the data is refused; refusing to attach, nothing was changed (raise or "
			 "remove disk { size }, or give the backing disk its size back)",
			 fmt_size(usable, a, sizeof a), capw, fmt_size(la, c, sizeof c));
		pthread_mutex_unlock(&e->lock);
		return -EFBIG;
	}
	e->cap = cap;
	atomic_store(&e->usable, usable);
	/* never grow or shrink silently: the agreed size stays until a peer
	 * agrees on another or `resize` */
	uint64_t size = la && la < usable ? la : usable;
	rc = set_locked(e, size);
	pthread_mutex_unlock(&e->lock);
	if (rc)
		snprintf(err, MD_MSG_MAX, "cannot write metadata of %s: %s", e->disk->path, strerror(-rc));
	if (!rc && la && la < usable)
		log_info("device size %s (agreed); %s usable: 'dipole resize %s' grows it", fmt_size(la, a, sizeof a),
			 fmt_size(usable, b, sizeof b), e->res);
	return rc;
}

int resize_agree(uint64_t mine, int my_disk, uint64_t theirs, int their_disk, uint64_t *agreed, char *why)
{
	char a[32], b[32];

	*agreed = mine < theirs ? mine : theirs;
	if (mine == theirs)
		return 0;
	int me_larger = mine > theirs;
	if (!holds_data(me_larger ? my_disk : their_disk))
		return 0;
	snprintf(why, 256, "the device is %s on %s but only %s on %s, whose disk is too small; %s holds data "
		 "(%s), so it is not shrunk. Grow the smaller backing disk and 'dipole resize', or set "
		 "disk { size } on both", fmt_size(me_larger ? mine : theirs, a, sizeof a),
		 me_larger ? "this node" : "the peer", fmt_size(me_larger ? theirs : mine, b, sizeof b),
		 me_larger ? "the peer" : "this node", me_larger ? "this node" : "the peer",
		 disk_state_name((enum disk_state)(me_larger ? my_disk : their_disk)));
	return -EXDEV;
}

int resize_set(struct engine *e, uint64_t bytes, uint32_t oos_mask)
{
	if (!e->bm)
		return 0;
	pthread_mutex_lock(&e->lock);
	uint64_t old = atomic_load(&e->size);
	if (bytes > atomic_load(&e->usable) || bytes % MD_BLOCK) {
		pthread_mutex_unlock(&e->lock);
		return -ERANGE;
	}
	int rc = set_locked(e, bytes);
	if (!rc && bytes > old)
		for (uint32_t s = 0; s < e->nslots; s++)
			if (oos_mask & (1u << s))
				engine_mark_oos(e, (int)s, old, bytes - old);
	pthread_mutex_unlock(&e->lock);
	size_changed(e, old);
	return rc;
}

int resize_prepare(struct engine *e, uint64_t *usable, char *err)
{
	char a[32], b[32], c[32];
	struct md_layout nl;
	uint64_t sz;
	int rc;

	err[0] = 0;
	if (!e->bm) {
		snprintf(err, MD_MSG_MAX, "this node has no disk");
		return -ENODEV;
	}
	pthread_mutex_lock(&e->lock);
	rc = disk_refresh_size(e->disk, &sz);
	if (rc) {
		snprintf(err, MD_MSG_MAX, "cannot get the size of %s: %s", e->disk->path, strerror(-rc));
		goto out;
	}
	if (sz / MD_BLOCK * MD_BLOCK < e->sb.lay.disk_size) {
		snprintf(err, MD_MSG_MAX, "backing disk %s shrank from %s to %s, below its metadata: shrinking below "
			 "the data is refused; give it its size back", e->disk->path,
			 fmt_size(e->sb.lay.disk_size, a, sizeof a), fmt_size(sz, b, sizeof b));
		rc = -ENOSPC;
		goto out;
	}
	if (!md_layout(sz, e->nslots, &nl) && nl.data_size > e->sb.lay.data_size) {
		struct md_super nsb = e->sb;
		/* the on-disk bitmap must be current: md_move copies it */
		rc = bitmap_save(e->bm, NULL);
		if (!rc)
			rc = disk_flush(e->disk);
		if (!rc)
			rc = md_move(e->disk, &nsb, sz, MD_MOVE_ALL);
		if (rc == -ENOSPC) {
			snprintf(err, MD_MSG_MAX, "backing disk %s grew by %s only; moving the metadata needs it to grow "
				 "by at least %s (the metadata area); nothing was changed", e->disk->path,
				 fmt_size(sz - e->sb.lay.disk_size, a, sizeof a),
				 fmt_size(nl.disk_size - nl.al_offset, b, sizeof b));
			goto out;
		}
		if (rc) {
			snprintf(err, MD_MSG_MAX, "moving the metadata of %s to its new end failed: %s (the old "
				 "metadata stays valid)", e->disk->path, strerror(-rc));
			goto out;
		}
		rc = engine_grow_sync_wrote(e, (nsb.lay.data_size + MD_BLOCK - 1) / MD_BLOCK);
		if (!rc)
			rc = bitmap_grow(e->bm, &nsb);
		if (rc) {
			/* the moved metadata is valid on disk; the next attach reads it */
			snprintf(err, MD_MSG_MAX, "metadata moved, but the bitmap cannot grow in memory (%s): "
				 "'down' and 'up' to use the new size", strerror(-rc));
			goto out;
		}
		e->sb = nsb;
		e->bm_bits = bitmap_bits(e->bm);
		for (uint32_t s = 0; s < e->nslots; s++)
			e->slot[s].bm = bitmap_words(e->bm, (int)s);
		log_info("metadata moved to the end of %s (%s); data area %s", e->disk->path,
			 fmt_size(sz, a, sizeof a), fmt_size(nl.data_size, c, sizeof c));
	}
	atomic_store(&e->usable, e->cap ? e->cap : e->sb.lay.data_size);
	*usable = atomic_load(&e->usable);
out:
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int resize_check_cap(const char *disk_path, uint64_t cap, const char *where, char *err)
{
	struct disk *d = NULL;
	struct md_super sb;
	char warn[MD_MSG_MAX], a[32], b[32];

	err[0] = 0;
	if (!cap || disk_open(&d, disk_path, 1))
		return 0; /* engine_open reports an unopenable disk */
	int rc = md_read(d, &sb, err, warn);
	disk_close(d);
	err[0] = 0;
	cap = cap / MD_BLOCK * MD_BLOCK;
	if (rc)
		return 0;
	if (cap <= sb.lay.data_size && sb.la_size > cap && (sb.flags & MDF_CONSISTENT)) {
		snprintf(err, MD_MSG_MAX, "%s: disk { size %s } is smaller than the agreed size %s that holds data: "
			 "shrinking below the data is refused; refusing to attach, nothing was changed", where,
			 fmt_size(cap, a, sizeof a), fmt_size(sb.la_size, b, sizeof b));
		return -EFBIG;
	}
	if (cap <= sb.lay.data_size)
		return 0;
	snprintf(err, MD_MSG_MAX, "%s: disk { size %s } is larger than the usable size of %s, %s (the backing disk "
		 "minus dipole's metadata); refusing to attach, nothing was changed", where,
		 fmt_size(cap, a, sizeof a), disk_path, fmt_size(sb.lay.data_size, b, sizeof b));
	return -EINVAL;
}

/* decide — see decide.h. */
#include "decide.h"
#include "engine.h"

#include <stdio.h>
#include <string.h>

/* data that may seed a node with none */
static int good(const struct side *s)
{
	return s->disk == DS_UPTODATE || s->disk == DS_CONSISTENT;
}

/* data that is whole, if maybe not the newest (Outdated: it lost quorum);
 * between two such nodes the generations decide */
static int whole(const struct side *s)
{
	return good(s) || s->disk == DS_OUTDATED;
}

/* Same current generation, something marked: only the marked blocks can
 * differ; the union of both bitmaps is resynced from the node that was
 * Primary when it crashed (its activity log marked what may have been in
 * flight), else from the one that has marks, else from the lower node-id;
 * but an UpToDate node always before one that is not. */
static int source_of_same(const struct side *me, const struct side *peer)
{
	/* an Outdated node (it lost quorum) holds at most writes nobody saw complete */
	if ((me->disk == DS_UPTODATE) != (peer->disk == DS_UPTODATE))
		return me->disk == DS_UPTODATE;
	if (me->crashed_primary != peer->crashed_primary)
		return me->crashed_primary;
	if (!me->oos != !peer->oos)
		return me->oos != 0;
	return me->node_id < peer->node_id;
}

/* An interrupted resync of `target` from `src` may go on from the bitmaps
 * (DRBD does the same): the target's bitmap holds every block it lacked at
 * the start minus those written since, and the source's bitmap every block
 * it changed since the generation the resync started from — that is still
 * its current one, or the one its bitmap for the target counts from. Any
 * other generation: the bitmaps do not cover the difference, full sync. */
static int resumes(const struct side *target, const struct side *src)
{
	uint64_t from = target->resync_from;
	return from && (from == src->uuid[G_CURRENT] || from == src->uuid[G_BITMAP]);
}

static int in_set(uint64_t u, const uint64_t *set, int n)
{
	for (int i = 0; i < n; i++)
		if (u && set[i] == u)
			return 1;
	return 0;
}

/* (the Primary it followed went on from the whole node's generation,
 * follow_primary in peer_agree.c) */
int decide_newer_partial(const struct side *partial, const struct side *whole_)
{
	return partial->disk == DS_INCONSISTENT && partial->uuid[G_CURRENT] != whole_->uuid[G_CURRENT] &&
	       in_set(whole_->uuid[G_CURRENT], partial->uuid + G_HIST0, G_HISTORY);
}

enum decision decide_sync(const struct side *me, const struct side *peer)
{
	int mw = whole(me), pw = whole(peer);

	/* a node without a disk (failed and detached, or diskless by design)
	 * takes part without data: nothing to sync either way */
	if (me->disk == DS_DISKLESS || peer->disk == DS_DISKLESS)
		return D_NO_SYNC;
	if (!mw && !pw)
		return D_WAIT;
	if (mw && !pw) {
		if (!good(me) || decide_newer_partial(peer, me))
			return D_WAIT; /* Outdated data is not a sync source */
		return resumes(peer, me) ? D_SOURCE_BITMAP : D_SOURCE_FULL;
	}
	if (!mw && pw) {
		if (!good(peer) || decide_newer_partial(me, peer))
			return D_WAIT;
		return resumes(me, peer) ? D_TARGET_BITMAP : D_TARGET_FULL;
	}

	const uint64_t *m = me->uuid, *p = peer->uuid;
	if (m[G_CURRENT] == p[G_CURRENT]) {
		if (!me->oos && !peer->oos)
			return D_NO_SYNC;
		return source_of_same(me, peer) ? D_SOURCE_BITMAP : D_TARGET_BITMAP;
	}
	/* the peer still has the generation my bitmap counts from: it did not
	 * change, I did */
	if (m[G_BITMAP] && m[G_BITMAP] == p[G_CURRENT])
		return D_SOURCE_BITMAP;
	if (p[G_BITMAP] && p[G_BITMAP] == m[G_CURRENT])
		return D_TARGET_BITMAP;
	/* the peer's data is an ancestor of mine the bitmap does not cover.
	 * Before "both moved on from the same generation", as drbd_uuid_compare
	 * orders its rules: a node whose current generation the other has left
	 * behind wrote nothing of its own since (a Primary writing without a
	 * peer starts a new generation), even when both bitmaps still count
	 * from the generation before it (checker3d.sh, seed 544721730) */
	if (in_set(p[G_CURRENT], m + G_HIST0, G_HISTORY))
		return D_SOURCE_FULL;
	if (in_set(m[G_CURRENT], p + G_HIST0, G_HISTORY))
		return D_TARGET_FULL;
	/* both moved on from the same generation */
	if (m[G_BITMAP] && m[G_BITMAP] == p[G_BITMAP])
		return D_SPLIT_BRAIN;
	/* a common ancestor somewhere, but both changed since */
	for (int i = G_BITMAP; i < G_COUNT; i++)
		if (in_set(m[i], p + G_BITMAP, G_COUNT - G_BITMAP))
			return D_SPLIT_BRAIN;
	return D_UNRELATED;
}

const char *decision_name(enum decision d)
{
	static const char *n[] = { "no-sync", "source-full", "target-full", "source-bitmap",
				   "target-bitmap", "wait", "split-brain", "unrelated" };
	return (unsigned)d < sizeof n / sizeof n[0] ? n[d] : "?";
}

static const char *const rule_names[] = {
	"disconnect", "discard-younger-primary", "discard-older-primary", "discard-zero-changes",
	"discard-least-changes", "discard-node-", "consensus", "violently-as0p", "discard-secondary",
	"call-pri-lost-after-sb",
};

const char *splitbrain_rule_name(enum splitbrain_rule r)
{
	return (unsigned)r < sizeof rule_names / sizeof rule_names[0] ? rule_names[r] : "?";
}

int splitbrain_rule_parse(int which, const char *v, enum splitbrain_rule *out, int *discard_node_id,
		  int (*node_id_of)(const char *name, void *arg), void *arg)
{
	static const unsigned allowed[3] = {
		1u << SB_DISCONNECT | 1u << SB_DISCARD_YOUNGER | 1u << SB_DISCARD_OLDER | 1u << SB_DISCARD_ZERO |
			1u << SB_DISCARD_LEAST | 1u << SB_DISCARD_NODE,
		1u << SB_DISCONNECT | 1u << SB_CONSENSUS | 1u << SB_VIOLENTLY | 1u << SB_DISCARD_SECONDARY |
			1u << SB_CALL_PRI_LOST,
		1u << SB_DISCONNECT | 1u << SB_VIOLENTLY | 1u << SB_CALL_PRI_LOST,
	};
	if (!v) {
		*out = SB_DISCONNECT;
		return 0;
	}
	for (unsigned r = 0; r < sizeof rule_names / sizeof rule_names[0]; r++) {
		if (!(allowed[which] & (1u << r)))
			continue;
		if (r == SB_DISCARD_NODE) {
			size_t l = strlen(rule_names[r]);
			if (strncmp(v, rule_names[r], l) || !v[l])
				continue;
			int id = node_id_of(v + l, arg);
			if (id < 0)
				return -1;
			*discard_node_id = id;
		} else if (strcmp(v, rule_names[r])) {
			continue;
		}
		*out = (enum splitbrain_rule)r;
		return 0;
	}
	return -1;
}

/* The after-sb-0pri rule: 1 this node is the source, -1 the target, 0 none. */
static int rule0(const struct side *me, const struct side *peer, const struct splitbrain_policy *pol, char *why)
{
	int lower = me->node_id < peer->node_id;
	switch (pol->p0) {
	case SB_DISCARD_YOUNGER:
	case SB_DISCARD_OLDER: {
		int me_younger = me->gen_time != peer->gen_time ? me->gen_time > peer->gen_time : !lower;
		int victim = pol->p0 == SB_DISCARD_YOUNGER ? me_younger : !me_younger;
		snprintf(why, 128, "%s: the %s primary is %s", splitbrain_rule_name(pol->p0),
			 pol->p0 == SB_DISCARD_YOUNGER ? "younger" : "older", victim ? "this node" : "the peer");
		return victim ? -1 : 1;
	}
	case SB_DISCARD_ZERO:
	case SB_DISCARD_LEAST:
		if (me->unsure || peer->unsure) {
			snprintf(why, 128, "%s not applied: with several disks the change counts miss writes of "
				 "a Primary", splitbrain_rule_name(pol->p0));
			return 0;
		}
		break;
	default:
		break;
	}
	switch (pol->p0) {
	case SB_DISCARD_ZERO:
		if (me->oos && peer->oos) {
			snprintf(why, 128, "discard-zero-changes: both nodes changed data (%llu and %llu blocks)",
				 (unsigned long long)me->oos, (unsigned long long)peer->oos);
			return 0;
		}
		snprintf(why, 128, "discard-zero-changes: %s no changes", !me->oos && !peer->oos ? "neither node has" :
			 !me->oos ? "this node has" : "the peer has");
		if (!me->oos && !peer->oos)
			return lower ? 1 : -1;
		return me->oos ? 1 : -1;
	case SB_DISCARD_LEAST:
		snprintf(why, 128, "discard-least-changes: %llu blocks here, %llu on the peer",
			 (unsigned long long)me->oos, (unsigned long long)peer->oos);
		if (me->oos != peer->oos)
			return me->oos > peer->oos ? 1 : -1;
		return lower ? 1 : -1;
	case SB_DISCARD_NODE:
		snprintf(why, 128, "discard-node: node-id %d's changes are dropped", pol->discard_node_id);
		if (pol->discard_node_id == me->node_id)
			return -1;
		if (pol->discard_node_id == peer->node_id)
			return 1;
		return 0;
	default:
		snprintf(why, 128, "disconnect");
		return 0;
	}
}

enum decision resolve_split_brain(const struct side *me, const struct side *peer, const struct splitbrain_policy *pol,
				  int *pri_lost, char *why)
{
	int np = !!me->primary + !!peer->primary, r = 0;
	char w0[128];

	*pri_lost = 0;
	if (me->discard_my_data != peer->discard_my_data) {
		snprintf(why, 128, "--discard-my-data on %s", me->discard_my_data ? "this node" : "the peer");
		return me->discard_my_data ? D_TARGET_BITMAP : D_SOURCE_BITMAP;
	}
	if (me->discard_my_data) {
		snprintf(why, 128, "--discard-my-data given on both nodes");
		return D_SPLIT_BRAIN;
	}
	r = rule0(me, peer, pol, w0);
	if (np == 0) {
		snprintf(why, 128, "after-sb-0pri %s", w0);
	} else {
		enum splitbrain_rule rule = np == 1 ? pol->p1 : pol->p2;
		/* which side would lose: the Primary? */
		int primary_loses = r && ((r < 0) == !!me->primary);
		switch (rule) {
		case SB_CONSENSUS:
			if (primary_loses)
				r = 0;
			snprintf(why, 128, "after-sb-1pri consensus: %s%s", w0,
				 !r ? " (would discard the Primary: no consensus)" : "");
			break;
		case SB_DISCARD_SECONDARY:
			r = me->primary ? 1 : -1;
			snprintf(why, 128, "after-sb-1pri discard-secondary");
			break;
		case SB_VIOLENTLY:
			snprintf(why, 128, "after-sb-%dpri violently-as0p: %s", np, w0);
			break;
		case SB_CALL_PRI_LOST:
			if (r < 0 && me->primary)
				*pri_lost = 1;
			snprintf(why, 128, "after-sb-%dpri call-pri-lost-after-sb: %s", np, w0);
			break;
		default:
			r = 0;
			snprintf(why, 128, "after-sb-%dpri disconnect", np);
			break;
		}
	}
	return r > 0 ? D_SOURCE_BITMAP : r < 0 ? D_TARGET_BITMAP : D_SPLIT_BRAIN;
}

enum decision decision_mirror(enum decision d)
{
	switch (d) {
	case D_SOURCE_FULL: return D_TARGET_FULL;
	case D_TARGET_FULL: return D_SOURCE_FULL;
	case D_SOURCE_BITMAP: return D_TARGET_BITMAP;
	case D_TARGET_BITMAP: return D_SOURCE_BITMAP;
	default: return d;
	}
}

int decide_in_sync_with_primary(const struct mside *me, const struct mside *peer)
{
	return !me->primary && !peer->primary && me->third_primary && peer->third_primary &&
	       me->disk == DS_UPTODATE && peer->disk == DS_UPTODATE && me->current == peer->current &&
	       !me->busy_target && !peer->busy_target;
}

int decide_multi(enum decision d, const struct mside *me, const struct mside *peer)
{
	int unsure = (me->unsure || peer->unsure) && me->disk >= DS_OUTDATED && peer->disk >= DS_OUTDATED;
	int third = me->third_primary || peer->third_primary;
	int v = (int)d;

	if (me->current == peer->current && me->primary != peer->primary) {
		const struct mside *pri = me->primary ? me : peer;
		int towards_pri = me->primary ? (v == D_TARGET_FULL || v == D_TARGET_BITMAP)
					      : (v == D_SOURCE_FULL || v == D_SOURCE_BITMAP);
		if (pri->disk >= DS_OUTDATED && towards_pri)
			v = (int)decision_mirror((enum decision)v);
	}
	if (v == D_NO_SYNC && unsure) {
		if (me->primary || peer->primary) {
			v = me->primary ? D_SOURCE_FULL : D_TARGET_FULL;
		} else if (third) {
			return D_NO_SYNC; /* the Primary is the reference; compared once it is gone */
		} else if (me->stamp_from == peer->stamp_from && me->stamp_from >= 0 && me->stamp == peer->stamp) {
			/* both applied the same Primary's writes to the same last one:
			 * each has every write the other has (a clean switchover, or
			 * nothing was in flight), so nothing moves */
			return D_NO_SYNC;
		} else {
			int win;
			if (me->disk != peer->disk)
				win = me->disk > peer->disk;
			else if (me->stamp_from == peer->stamp_from && me->stamp_from >= 0 && me->stamp != peer->stamp)
				win = (int32_t)(me->stamp - peer->stamp) > 0;
			else
				win = me->node_id < peer->node_id;
			v = win ? D_SOURCE_FULL : D_TARGET_FULL;
		}
	} else if (unsure && v == D_SOURCE_BITMAP) {
		v = D_SOURCE_FULL;
	} else if (unsure && v == D_TARGET_BITMAP) {
		v = D_TARGET_FULL;
	}
	int src_me = v == D_SOURCE_FULL || v == D_SOURCE_BITMAP, src_peer = v == D_TARGET_FULL || v == D_TARGET_BITMAP;
	if (!src_me && !src_peer)
		return v;
	const struct mside *src = src_me ? me : peer, *dst = src_me ? peer : me;
	if (decide_in_sync_with_primary(me, peer))
		return D_NO_SYNC;
	if (dst->busy_target || src->busy_source || (!src->primary && third))
		return D_DEFERRED;
	return v;
}

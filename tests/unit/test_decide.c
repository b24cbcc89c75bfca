/* Table-driven tests of decide_sync (src/decide.c): what two nodes do when
 * they meet. Every case is also checked from the other side: the decisions
 * must mirror each other. */
#include <string.h>
#include "unit.h"
#include "decide.h"
#include "engine.h"

#define mirror decision_mirror

/* shorthand: disk, primary, current, bitmap, h0, h1, oos, node-id */
#define S(d, pri, c, b, h0, h1, oos, id) { d, pri, { c, b, h0, h1 }, oos, id, 0, 0, 0, 0, 0 }
#define UP DS_UPTODATE
#define INC DS_INCONSISTENT

static void check_pair(const struct side *me, const struct side *peer, enum decision want, const char *what)
{
	enum decision d = decide_sync(me, peer);
	enum decision back = decide_sync(peer, me);
	if (d != want || back != mirror(want)) {
		fprintf(stderr, "    %s: got %s / %s, want %s / %s\n", what, decision_name(d), decision_name(back),
			decision_name(want), decision_name(mirror(want)));
		unit_failed_now = 1;
	}
}

TEST(generations)
{
	static const struct {
		struct side me, peer;
		enum decision want;
		const char *what;
	} cases[] = {
		{ S(INC, 0, 4, 0, 0, 0, 0, 0), S(INC, 0, 4, 0, 0, 0, 0, 1), D_WAIT, "fresh pair: wait for primary --force" },
		{ S(UP, 1, 100, 0, 4, 0, 500, 0), S(INC, 0, 4, 0, 0, 0, 0, 1), D_SOURCE_FULL, "forced primary meets fresh peer" },
		{ S(UP, 0, 100, 0, 0, 0, 0, 0), S(INC, 0, 100, 0, 0, 0, 0, 1), D_SOURCE_FULL, "peer was interrupted mid-sync" },
		{ S(UP, 0, 100, 0, 0, 0, 0, 0), S(UP, 0, 100, 0, 0, 0, 0, 1), D_NO_SYNC, "identical, clean" },
		{ S(UP, 1, 200, 100, 0, 0, 12, 0), S(UP, 0, 100, 0, 0, 0, 0, 1), D_SOURCE_BITMAP,
		  "primary lost its peer (new generation 200 from 100) and wrote" },
		{ S(UP, 1, 200, 100, 0, 0, 0, 0), S(UP, 0, 100, 0, 0, 0, 0, 1), D_SOURCE_BITMAP,
		  "primary lost its peer, wrote nothing: empty resync, generations converge" },
		{ S(DS_CONSISTENT, 0, 100, 0, 0, 0, 0, 0), S(UP, 1, 300, 100, 0, 0, 9, 1), D_TARGET_BITMAP,
		  "consistent secondary, primary wrote" },
		{ S(UP, 0, 100, 0, 0, 0, 40, 1), S(UP, 1, 300, 100, 0, 0, 9, 0), D_TARGET_BITMAP,
		  "failover: crashed old primary has activity-log marks, new primary wrote (union resynced)" },
		{ S(UP, 1, 200, 100, 0, 0, 3, 0), S(UP, 1, 300, 100, 0, 0, 7, 1), D_SPLIT_BRAIN,
		  "both became primary while apart" },
		{ S(UP, 0, 200, 100, 0, 0, 0, 0), S(UP, 0, 300, 100, 0, 0, 0, 1), D_SPLIT_BRAIN,
		  "both rotated, no writes: still split brain (policy decides)" },
		{ S(UP, 0, 500, 0, 200, 100, 0, 0), S(UP, 0, 300, 100, 0, 0, 4, 1), D_SPLIT_BRAIN,
		  "common ancestor only in history: diverged" },
		{ S(UP, 0, 500, 0, 300, 100, 0, 0), S(UP, 0, 300, 0, 100, 0, 0, 1), D_SOURCE_FULL,
		  "peer's data is my ancestor, not covered by a bitmap" },
		{ S(UP, 1, 500, 100, 300, 100, 38903, 0), S(DS_CONSISTENT, 0, 300, 100, 0, 0, 0, 2), D_SOURCE_FULL,
		  "three disks: the Primary went on from 300, which the peer still has; both bitmaps count from 100" },
		{ S(UP, 0, 100, 0, 0, 0, 0, 0), S(UP, 0, 200, 0, 0, 0, 0, 1), D_UNRELATED, "different generations" },
		{ S(UP, 0, 100, 0, 0, 0, 5, 0), S(UP, 0, 100, 0, 0, 0, 9, 1), D_SOURCE_BITMAP,
		  "same generation, both marked: union, lower node-id sends" },
		{ S(DS_OUTDATED, 0, 100, 0, 0, 0, 0, 0), S(INC, 0, 4, 0, 0, 0, 0, 1), D_WAIT, "outdated data is not a sync source" },
		{ S(DS_CONSISTENT, 0, 300, 0, 100, 0, 0, 1), S(INC, 0, 500, 300, 300, 100, 0, 2), D_WAIT,
		  "three disks: an Inconsistent disk followed a Primary on from 300 and holds its writes; "
		  "300 is no source for it" },
		{ S(UP, 0, 300, 0, 100, 0, 0, 1), S(INC, 0, 500, 300, 100, 300, 0, 2), D_WAIT,
		  "... nor UpToDate at 300 (the older history slot)" },
		{ S(UP, 0, 500, 0, 300, 0, 0, 0), S(INC, 0, 300, 500, 100, 0, 0, 2), D_SOURCE_FULL,
		  "an Inconsistent disk at an older generation still syncs from the newer one" },
		{ S(UP, 0, 700, 0, 200, 0, 0, 0), S(INC, 0, 500, 0, 300, 100, 0, 2), D_SOURCE_FULL,
		  "a generation unrelated to the Inconsistent disk's lineage (primary --force) is its source" },
		{ S(DS_DISKLESS, 0, 0, 0, 0, 0, 0, 0), S(UP, 0, 100, 0, 0, 0, 0, 1), D_NO_SYNC, "diskless (detached) meets good data: no sync" },
		{ S(DS_OUTDATED, 1, 100, 0, 0, 0, 3, 0), S(UP, 1, 100, 0, 0, 0, 0, 1), D_TARGET_BITMAP,
		  "quorum: the Outdated side's held writes are overwritten by the UpToDate side, whatever the node-ids" },
		{ S(DS_OUTDATED, 1, 100, 0, 0, 0, 3, 0), S(UP, 1, 200, 100, 0, 0, 5, 1), D_TARGET_BITMAP,
		  "quorum: the majority went on (new generation); the Outdated side is its target" },
		{ S(DS_OUTDATED, 1, 100, 0, 0, 0, 2, 0), S(DS_OUTDATED, 1, 100, 0, 0, 0, 4, 1), D_SOURCE_BITMAP,
		  "quorum: nobody had quorum, both held writes: union from the lower node-id" },
		{ S(DS_OUTDATED, 0, 100, 0, 0, 0, 0, 0), S(DS_CONSISTENT, 0, 100, 0, 0, 0, 0, 1), D_NO_SYNC,
		  "quorum: Outdated meets a restarted (Consistent) peer, same data" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_pair(&cases[i].me, &cases[i].peer, cases[i].want, cases[i].what);

	struct side cp = S(UP, 0, 100, 0, 0, 0, 8, 1), other = S(UP, 0, 100, 0, 0, 0, 20, 0);
	cp.crashed_primary = 1;
	check_pair(&cp, &other, D_SOURCE_BITMAP, "same generation: the crashed primary is the source");
}

static int ids(const char *name, void *arg)
{
	(void)arg;
	return !strcmp(name, "alpha") ? 0 : !strcmp(name, "beta") ? 1 : -1;
}

/* A node that was away through more generations than two history entries
 * hold (each switchover without it starts one): its current generation is
 * deep in the other's history, so it is behind, not a split brain
 * (checker3d, seed 760031304). */
TEST(deep_history)
{
	struct side a = S(DS_CONSISTENT, 0, 0x766b, 0xeb97, 0xeb97, 0, 40, 0);
	struct side c = S(UP, 1, 0x8c6a, 0xeb97, 0x37ef, 0x3181, 9, 2);
	check_pair(&c, &a, D_SPLIT_BRAIN, "a history of two does not reach a's generation");
	c.uuid[G_HIST1 + 1] = 0x766b;
	check_pair(&c, &a, D_SOURCE_FULL, "the third history entry does");
	c.uuid[G_HIST1 + 1] = 0;
	c.uuid[G_COUNT - 1] = 0x766b;
	check_pair(&c, &a, D_SOURCE_FULL, "so does the last");
	/* an Inconsistent node that followed a Primary past the whole one */
	struct side w = S(UP, 0, 0x300, 0, 0, 0, 0, 1), p = S(INC, 0, 0x500, 0, 0x401, 0x400, 0, 2);
	p.uuid[G_COUNT - 1] = 0x300;
	check_pair(&w, &p, D_WAIT, "its deep history names the whole node's generation: it waits");
}

TEST(split_brain_policies)
{
	/* a: node 0, b: node 1; gen_time: a became Primary first (older) */
	struct side a = S(UP, 0, 200, 100, 0, 0, 5, 0), b = S(UP, 0, 300, 100, 0, 0, 0, 1);
	a.gen_time = 1000;
	b.gen_time = 2000;
	static const struct {
		int apri, bpri, aoos, boos, admd, bdmd;
		struct splitbrain_policy pol;
		enum decision want; /* for a */
		int a_lost, b_lost;
		const char *what;
	} cases[] = {
		{ 0, 0, 5, 0, 0, 0, { SB_DISCONNECT, SB_DISCONNECT, SB_DISCONNECT, -1 }, D_SPLIT_BRAIN, 0, 0, "0pri disconnect" },
		{ 0, 0, 5, 0, 0, 0, { SB_DISCARD_ZERO, 0, 0, -1 }, D_SOURCE_BITMAP, 0, 0, "zero-changes: b wrote nothing" },
		{ 0, 0, 5, 3, 0, 0, { SB_DISCARD_ZERO, 0, 0, -1 }, D_SPLIT_BRAIN, 0, 0, "zero-changes: both wrote" },
		{ 0, 0, 0, 0, 0, 0, { SB_DISCARD_ZERO, 0, 0, -1 }, D_SOURCE_BITMAP, 0, 0, "zero-changes: neither wrote" },
		{ 0, 0, 5, 3, 0, 0, { SB_DISCARD_YOUNGER, 0, 0, -1 }, D_SOURCE_BITMAP, 0, 0, "younger (b) discarded" },
		{ 0, 0, 5, 3, 0, 0, { SB_DISCARD_OLDER, 0, 0, -1 }, D_TARGET_BITMAP, 0, 0, "older (a) discarded" },
		{ 0, 0, 5, 30, 0, 0, { SB_DISCARD_LEAST, 0, 0, -1 }, D_TARGET_BITMAP, 0, 0, "least changes (a) discarded" },
		{ 0, 0, 5, 30, 0, 0, { SB_DISCARD_NODE, 0, 0, 1 }, D_SOURCE_BITMAP, 0, 0, "discard-node-beta" },
		{ 1, 0, 5, 3, 0, 0, { SB_DISCONNECT, SB_DISCARD_SECONDARY, 0, -1 }, D_SOURCE_BITMAP, 0, 0, "1pri discard-secondary" },
		{ 0, 1, 5, 3, 0, 0, { SB_DISCONNECT, SB_DISCARD_SECONDARY, 0, -1 }, D_TARGET_BITMAP, 0, 0, "1pri discard-secondary (b Primary)" },
		{ 0, 1, 5, 0, 0, 0, { SB_DISCARD_ZERO, SB_CONSENSUS, 0, -1 }, D_SPLIT_BRAIN, 0, 0, "consensus: 0pri would discard the Primary" },
		{ 1, 0, 5, 0, 0, 0, { SB_DISCARD_ZERO, SB_CONSENSUS, 0, -1 }, D_SOURCE_BITMAP, 0, 0, "consensus: 0pri discards the Secondary" },
		{ 0, 1, 5, 0, 0, 0, { SB_DISCARD_ZERO, SB_VIOLENTLY, 0, -1 }, D_SOURCE_BITMAP, 0, 0, "violently-as0p discards the Primary" },
		{ 0, 1, 5, 0, 0, 0, { SB_DISCARD_ZERO, SB_CALL_PRI_LOST, 0, -1 }, D_SOURCE_BITMAP, 0, 1, "1pri call-pri-lost: b loses" },
		{ 1, 1, 5, 3, 0, 0, { SB_DISCARD_ZERO, SB_DISCONNECT, SB_DISCONNECT, -1 }, D_SPLIT_BRAIN, 0, 0, "2pri disconnect" },
		{ 1, 1, 5, 3, 0, 0, { SB_DISCARD_LEAST, 0, SB_VIOLENTLY, -1 }, D_SOURCE_BITMAP, 0, 0, "2pri violently" },
		{ 1, 1, 5, 3, 0, 0, { SB_DISCARD_LEAST, 0, SB_CALL_PRI_LOST, -1 }, D_SOURCE_BITMAP, 0, 1, "2pri call-pri-lost" },
		{ 1, 1, 5, 3, 1, 0, { SB_DISCONNECT, SB_DISCONNECT, SB_DISCONNECT, -1 }, D_TARGET_BITMAP, 0, 0, "--discard-my-data on a" },
		{ 0, 0, 5, 3, 1, 1, { SB_DISCARD_LEAST, 0, 0, -1 }, D_SPLIT_BRAIN, 0, 0, "--discard-my-data on both" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char wa[128], wb[128];
		int la, lb;
		a.primary = cases[i].apri;
		b.primary = cases[i].bpri;
		a.oos = (uint64_t)cases[i].aoos;
		b.oos = (uint64_t)cases[i].boos;
		a.discard_my_data = cases[i].admd;
		b.discard_my_data = cases[i].bdmd;
		enum decision da = resolve_split_brain(&a, &b, &cases[i].pol, &la, wa);
		enum decision db = resolve_split_brain(&b, &a, &cases[i].pol, &lb, wb);
		if (da != cases[i].want || db != mirror(cases[i].want) || la != cases[i].a_lost || lb != cases[i].b_lost) {
			fprintf(stderr, "    %s: a %s (lost %d, %s), b %s (lost %d, %s); want a %s\n", cases[i].what,
				decision_name(da), la, wa, decision_name(db), lb, wb, decision_name(cases[i].want));
			unit_failed_now = 1;
		}
	}
}

/* several disk peers: a Secondary's bitmap for another Secondary marks
 * none of the Primary's writes it applied (unsure), so a count of changes
 * must not pick the side to discard (helper's attack, 2026-12-01: b, 0
 * blocks, overwrote c's acknowledged write under discard-zero-changes) */
TEST(split_brain_counts_blind_when_unsure)
{
	struct side a = S(UP, 0, 200, 100, 0, 0, 0, 0), b = S(UP, 0, 300, 100, 0, 0, 0, 1);
	const struct splitbrain_policy zero = { SB_DISCARD_ZERO, 0, 0, -1 }, least = { SB_DISCARD_LEAST, 0, 0, -1 };
	char w[128];
	int lost;
	b.unsure = 1;
	CHECK(resolve_split_brain(&a, &b, &zero, &lost, w) == D_SPLIT_BRAIN);
	CHECK(strstr(w, "not applied") != NULL);
	CHECK(resolve_split_brain(&b, &a, &least, &lost, w) == D_SPLIT_BRAIN);
	b.unsure = 0;
	CHECK(resolve_split_brain(&a, &b, &zero, &lost, w) == D_SOURCE_BITMAP);
	const struct splitbrain_policy disc = { SB_DISCONNECT, 0, 0, -1 };
	CHECK(resolve_split_brain(&a, &b, &disc, &lost, w) == D_SPLIT_BRAIN);
	CHECK(!strcmp(w, "after-sb-0pri disconnect"));
}

TEST(policy_parse)
{
	enum splitbrain_rule r;
	int id = -1;
	CHECK(splitbrain_rule_parse(0, "discard-zero-changes", &r, &id, ids, NULL) == 0 && r == SB_DISCARD_ZERO);
	CHECK(splitbrain_rule_parse(0, "discard-node-beta", &r, &id, ids, NULL) == 0 && r == SB_DISCARD_NODE && id == 1);
	CHECK(splitbrain_rule_parse(0, "discard-node-gamma", &r, &id, ids, NULL) == -1);
	CHECK(splitbrain_rule_parse(1, "discard-secondary", &r, &id, ids, NULL) == 0 && r == SB_DISCARD_SECONDARY);
	CHECK(splitbrain_rule_parse(2, "discard-secondary", &r, &id, ids, NULL) == -1);
	CHECK(splitbrain_rule_parse(2, "violently-as0p", &r, &id, ids, NULL) == 0 && r == SB_VIOLENTLY);
	CHECK(splitbrain_rule_parse(0, NULL, &r, &id, ids, NULL) == 0 && r == SB_DISCONNECT);
}

/* decide_multi: M(disk, primary, node-id, unsure, third, busy, from, stamp) */
#define M(d, pri, id, un, third, busy, from, st) { d, pri, id, un, third, busy, from, st, busy, 7 }
#define OUT DS_OUTDATED
#define DL DS_DISKLESS

TEST(several_disk_peers)
{
	static const struct {
		struct mside me, peer;
		enum decision d;
		int want;
		const char *what;
	} cases[] = {
		{ M(UP, 0, 0, 0, 0, 0, 2, 9), M(UP, 0, 1, 0, 0, 0, 2, 5), D_NO_SYNC, D_NO_SYNC,
		  "sure and the same generation: nothing to do" },
		{ M(UP, 0, 0, 1, 1, 0, 2, 9), M(UP, 0, 1, 1, 1, 0, 2, 5), D_NO_SYNC, D_NO_SYNC,
		  "unsure while a third node is Primary: the Primary is the reference" },
		{ M(UP, 0, 0, 1, 0, 0, 2, 5), M(UP, 0, 1, 1, 0, 0, 2, 9), D_NO_SYNC, D_TARGET_FULL,
		  "Primary lost: the one with more of its writes (larger stamp) is the source" },
		{ M(UP, 0, 1, 1, 0, 0, 2, 0xfffffff0u), M(UP, 0, 0, 1, 0, 0, 2, 3), D_NO_SYNC, D_TARGET_FULL,
		  "stamps compare across the 32-bit wrap" },
		{ M(UP, 0, 1, 1, 0, 0, 2, 7), M(UP, 0, 0, 0, 0, 0, 2, 7), D_NO_SYNC, D_NO_SYNC,
		  "equal stamps of one Primary: both have the same writes (a clean switchover costs no resync)" },
		{ M(UP, 0, 1, 1, 0, 0, -1, 0), M(UP, 0, 0, 0, 0, 0, -1, 0), D_NO_SYNC, D_TARGET_FULL,
		  "no stamps (both restarted): the lower node-id" },
		{ M(UP, 0, 0, 1, 0, 0, 2, 9), M(OUT, 0, 1, 1, 0, 0, 2, 99), D_NO_SYNC, D_SOURCE_FULL,
		  "the better disk first" },
		{ M(UP, 0, 0, 1, 0, 0, 2, 9), M(UP, 0, 1, 0, 0, 0, 3, 99), D_NO_SYNC, D_SOURCE_FULL,
		  "stamps of different Primaries do not compare: the lower node-id" },
		{ M(UP, 1, 1, 1, 0, 0, -1, 0), M(UP, 0, 0, 1, 0, 0, 1, 9), D_NO_SYNC, D_SOURCE_FULL,
		  "unsure with a Primary among the two: it is the source" },
		{ M(UP, 1, 0, 1, 0, 0, -1, 0), M(UP, 0, 1, 0, 0, 0, -1, 0), D_SOURCE_BITMAP, D_SOURCE_FULL,
		  "unsure makes a bitmap resync a full one" },
		{ M(UP, 1, 0, 0, 0, 0, -1, 0), M(UP, 0, 1, 0, 0, 0, -1, 0), D_SOURCE_BITMAP, D_SOURCE_BITMAP,
		  "sure: the Primary's slot says what the peer missed" },
		{ M(UP, 0, 0, 1, 0, 0, 2, 9), M(DL, 0, 1, 1, 0, 0, 2, 5), D_NO_SYNC, D_NO_SYNC,
		  "a Diskless side is never unsure (nothing to compare)" },
		{ M(UP, 0, 0, 0, 1, 0, 2, 9), M(UP, 0, 1, 0, 0, 0, 2, 5), D_SOURCE_BITMAP, D_DEFERRED,
		  "a Secondary does not resync while a third node is Primary" },
		{ M(UP, 1, 0, 0, 0, 0, -1, 0), M(INC, 0, 1, 0, 0, 1, -1, 0), D_SOURCE_FULL, D_DEFERRED,
		  "the target is busy with another source" },
		{ M(UP, 1, 0, 0, 0, 0, -1, 0), M(UP, 0, 1, 0, 1, 0, -1, 0), D_SOURCE_BITMAP, D_SOURCE_BITMAP,
		  "the Primary resyncs whatever the target's other peers are" },
		{ M(OUT, 1, 1, 0, 0, 0, -1, 0), M(UP, 0, 0, 0, 0, 0, 1, 9), D_TARGET_BITMAP, D_SOURCE_BITMAP,
		  "same generation: an Outdated Primary still has every write, it is the source" },
		{ M(OUT, 1, 1, 1, 0, 0, -1, 0), M(UP, 0, 0, 1, 0, 0, 1, 9), D_TARGET_BITMAP, D_SOURCE_FULL,
		  "... and unsure: a full resync from the Primary" },
		{ M(INC, 1, 1, 0, 0, 0, -1, 0), M(UP, 0, 0, 0, 0, 0, 1, 9), D_TARGET_FULL, D_TARGET_FULL,
		  "an Inconsistent Primary (a SyncTarget promoted) still syncs from the peer" },
		{ M(UP, 0, 0, 0, 0, 1, 1, 9), M(UP, 0, 1, 0, 0, 0, 1, 5), D_SOURCE_BITMAP, D_DEFERRED,
		  "a SyncTarget of a third node is no source" },
		{ M(UP, 0, 0, 0, 1, 0, 1, 9), M(UP, 0, 1, 0, 1, 0, 1, 5), D_SOURCE_BITMAP, D_NO_SYNC,
		  "two in-sync Secondaries of the Primary: the marks between them are moot" },
		{ M(UP, 0, 0, 1, 1, 0, 1, 9), M(UP, 0, 1, 1, 1, 0, 1, 5), D_SOURCE_BITMAP, D_NO_SYNC,
		  "... unsure too (it stays: compared once the Primary is gone)" },
		{ M(UP, 0, 0, 0, 1, 0, 1, 9), M(OUT, 0, 1, 0, 1, 0, 1, 5), D_SOURCE_BITMAP, D_DEFERRED,
		  "... not when one is Outdated: the Primary resyncs it" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int got = decide_multi(cases[i].d, &cases[i].me, &cases[i].peer);
		int back = decide_multi(mirror(cases[i].d), &cases[i].peer, &cases[i].me);
		int want_back = cases[i].want == D_DEFERRED ? D_DEFERRED : (int)mirror((enum decision)cases[i].want);
		if (got != cases[i].want || back != want_back) {
			fprintf(stderr, "    %s: got %d / %d, want %d / %d\n", cases[i].what, got, back, cases[i].want,
				want_back);
			unit_failed_now = 1;
		}
	}
}

TEST(resume_interrupted_resync)
{
	/* beta was SyncTarget of alpha (generation 100, or alpha's bitmap
	 * generation 50 for it) when the resync stopped: it resumes from the
	 * bitmaps as long as alpha's bitmap still counts from that generation */
	struct side src = S(UP, 1, 100, 0, 0, 0, 30, 0), tgt = S(INC, 0, 50, 0, 0, 0, 70, 1);
	tgt.resync_from = 100;
	check_pair(&src, &tgt, D_SOURCE_BITMAP, "initial full sync interrupted: resumed (source still at 100)");
	struct side moved = S(UP, 1, 200, 100, 0, 0, 30, 0);
	check_pair(&moved, &tgt, D_SOURCE_BITMAP, "source wrote meanwhile (new generation 200 from 100): resumed");
	struct side src2 = S(UP, 0, 100, 50, 0, 0, 30, 0);
	tgt.resync_from = 50;
	check_pair(&src2, &tgt, D_SOURCE_BITMAP, "bitmap resync from 50 interrupted: resumed");
	struct side other = S(UP, 0, 300, 0, 100, 50, 0, 0);
	check_pair(&other, &tgt, D_SOURCE_FULL, "source moved on past the sync's generation: full");
	tgt.resync_from = 0;
	check_pair(&src2, &tgt, D_SOURCE_FULL, "no resync recorded (fresh or old metadata): full");
	tgt.resync_from = 100;
	struct side outd = S(DS_OUTDATED, 0, 100, 0, 0, 0, 0, 0);
	check_pair(&outd, &tgt, D_WAIT, "an Outdated node resumes nobody");
	struct side inc = S(INC, 0, 100, 0, 0, 0, 0, 0);
	check_pair(&inc, &tgt, D_WAIT, "two Inconsistent nodes still wait");
}

int main(void)
{
	return unit_main("decide");
}

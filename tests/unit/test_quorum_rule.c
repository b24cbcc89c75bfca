/* Table-driven tests of quorum_rule (src/repl/quorum_rule.c): the one rule
 * for a write some disk peers missed (or a disk peer's lost connection):
 * complete, hold (and how), or fail. Links only quorum_rule.o. */
#include <string.h>
#include "unit.h"
#include "quorum_rule.h"
#include "engine.h"

#define C WV_COMPLETE
#define H WV_HOLD
#define R WV_HOLD_RESEND
#define F WV_FAIL
#define UP DS_UPTODATE

static const char *vname(enum write_verdict v)
{
	static const char *const n[] = { "complete", "hold", "hold-resend", "fail" };
	return n[v];
}

/* one case: the quorum facts, then the write */
struct qcase {
	const char *what;
	/* facts */
	int enabled, multi, votes, need, hosts, io_error, disk;
	const char *held;
	int alone, peer_usable;
	/* the write: lost, frozen, primary, replicas, acks; the missed
	 * replica's hold_off, fencing, yields (all missed ones alike) */
	int lost, frozen, primary, replicas, acks;
	int hold_off, fencing, yields;
	enum write_verdict want;
	const char *why; /* expected in the reason, NULL: empty */
};

static void run(const struct qcase *c)
{
	struct quorum_facts q = { c->enabled, c->multi, c->votes, c->need, c->hosts, c->io_error, c->disk,
				  c->held, c->alone, c->peer_usable };
	struct missed_write m;
	memset(&m, 0, sizeof m);
	m.lost = c->lost;
	m.frozen = c->frozen;
	m.primary = c->primary;
	m.replicas = c->replicas;
	m.acks = c->acks;
	m.nmissed = c->lost ? 1 : c->replicas - c->acks;
	for (int i = 0; i < m.nmissed; i++) {
		m.missed[i].hold_off = c->hold_off;
		m.missed[i].fencing = c->fencing;
		m.missed[i].yields = c->yields;
		m.missed[i].hold_reason = "lost peer b while both were Primary";
	}
	char why[256];
	enum write_verdict v = quorum_rule(&q, &m, why, sizeof why);
	if (v != c->want) {
		fprintf(stderr, "    %s: got %s, want %s (why: %s)\n", c->what, vname(v), vname(c->want), why);
		unit_failed_now = 1;
	}
	if (c->why)
		CHECK_STR_HAS(why, c->why);
	else if (why[0]) {
		fprintf(stderr, "    %s: unexpected reason \"%s\"\n", c->what, why);
		unit_failed_now = 1;
	}
	if (m.by_quorum != c->enabled) {
		fprintf(stderr, "    %s: by_quorum %d, want %d\n", c->what, m.by_quorum, c->enabled);
		unit_failed_now = 1;
	}
}

TEST(without_quorum)
{
	static const struct qcase cases[] = {
		/* what                                   en mu vo ne ho ie disk held al pu  lo fr pr re ac  ho fe yi */
		{ "single primary, peer gone: completes",  0, 0, 0, 0, 2, 0, UP, "", 0, 0,  0, 0, 1, 1, 0,  0, 0, 0, C, NULL },
		{ "fencing: the write waits",              0, 0, 0, 0, 2, 0, UP, "", 0, 0,  0, 0, 1, 1, 0,  0, 1, 0, H, "fenced" },
		{ "fencing: a loss holds before writes",   0, 0, 0, 0, 2, 0, UP, "", 0, 0,  1, 0, 1, 1, 0,  0, 1, 0, H, "fencing it" },
		{ "fencing, resume-io: goes on",           0, 0, 0, 0, 2, 0, UP, "", 0, 0,  0, 0, 1, 1, 0,  1, 1, 0, C, NULL },
		{ "fencing, Secondary: never waits",       0, 0, 0, 0, 2, 0, UP, "", 0, 0,  0, 0, 0, 1, 0,  0, 1, 0, C, NULL },
		{ "dual primary, higher node-id yields",   0, 0, 0, 0, 2, 0, UP, "", 0, 0,  0, 0, 1, 1, 0,  0, 0, 1, H, "both were Primary" },
		{ "dual primary, lower node-id goes on",   0, 0, 0, 0, 2, 0, UP, "", 0, 0,  1, 0, 1, 1, 0,  0, 0, 0, C, NULL },
		{ "frozen already: waits, no new hold",    0, 0, 0, 0, 2, 0, UP, "", 0, 0,  0, 1, 1, 1, 0,  0, 0, 0, H, NULL },
		{ "three disks, no quorum: per peer",      0, 1, 0, 0, 3, 0, UP, "", 0, 0,  0, 0, 1, 2, 1,  0, 0, 0, C, NULL },
		{ "quorum off, io-error set: never fails", 0, 0, 1, 2, 3, 1, UP, "", 0, 0,  0, 0, 1, 1, 0,  0, 0, 0, C, NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run(&cases[i]);
}

TEST(one_disk_peer)
{
	static const struct qcase cases[] = {
		/* what                                   en mu vo ne ho ie disk held al pu  lo fr pr re ac  ho fe yi */
		{ "alone with quorum, UpToDate: completes", 1, 0, 2, 2, 3, 0, UP, "", 1, 0, 0, 0, 1, 1, 0,  0, 0, 0, C, NULL },
		{ "peer usable (its disk failed): completes", 1, 0, 3, 2, 3, 0, UP, "", 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, C, NULL },
		{ "not alone yet: holds",                 1, 0, 2, 2, 3, 0, UP, "", 0, 0,  0, 0, 1, 1, 0,  0, 0, 0, H, "waiting for the quorum rules" },
		{ "not alone yet, io-error: fails",       1, 0, 2, 2, 3, 1, UP, "", 0, 0,  0, 0, 1, 1, 0,  0, 0, 0, F, "quorum rules" },
		{ "no quorum, suspend-io: holds",         1, 0, 1, 2, 3, 0, UP, "", 1, 0,  0, 0, 1, 1, 0,  0, 0, 0, H, "no quorum: 1 of 3 votes, 2 needed" },
		{ "no quorum, io-error: fails",           1, 0, 1, 2, 3, 1, UP, "", 1, 1,  0, 0, 1, 1, 0,  0, 0, 0, F, "no quorum" },
		{ "rules hold I/O: their reason",         1, 0, 2, 2, 3, 0, UP, "lease not ended", 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, H, "lease not ended" },
		{ "alone but Outdated: holds",            1, 0, 2, 2, 3, 0, DS_OUTDATED, "", 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, H, "quorum rules" },
		{ "resume-io while the peer is away",     1, 0, 2, 2, 3, 0, UP, "", 0, 0,  0, 0, 1, 1, 0,  1, 0, 0, C, NULL },
		{ "a loss ignores resume-io",             1, 0, 2, 2, 3, 0, UP, "", 0, 0,  1, 0, 1, 1, 0,  1, 0, 0, H, "quorum rules" },
		{ "Secondary: completes",                 1, 0, 1, 2, 3, 0, UP, "", 0, 0,  0, 0, 0, 1, 0,  0, 0, 0, C, NULL },
		{ "fencing is ignored with quorum",       1, 0, 2, 2, 3, 0, UP, "", 1, 0,  0, 0, 1, 1, 0,  0, 1, 1, C, NULL },
		{ "frozen already: waits as before",      1, 0, 2, 2, 3, 0, UP, "", 1, 0,  0, 1, 1, 1, 0,  0, 0, 0, H, NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run(&cases[i]);
}

TEST(several_disk_peers)
{
	static const struct qcase cases[] = {
		/* what                                   en mu vo ne ho ie disk held al pu  lo fr pr re ac  ho fe yi */
		{ "3 disks majority, on 2 of 3: completes", 1, 1, 2, 2, 3, 0, UP, "", 0, 0, 0, 0, 1, 2, 1,  0, 0, 0, C, NULL },
		{ "3 disks, on 1 of 3: held, sent again",  1, 1, 3, 2, 3, 0, UP, "", 0, 0, 0, 0, 1, 2, 0,  0, 0, 0, R, "reached 1 of 3 disks and needs 2" },
		{ "3 disks, on 1 of 3, io-error: fails",   1, 1, 3, 2, 3, 1, UP, "", 0, 0, 0, 0, 1, 2, 0,  0, 0, 0, F, "needs 2" },
		{ "5 disks majority, on 3 of 5: completes", 1, 1, 3, 3, 5, 0, UP, "", 0, 0, 0, 0, 1, 4, 2, 0, 0, 0, C, NULL },
		{ "5 disks majority, on 2 of 5: held",     1, 1, 5, 3, 5, 0, UP, "", 0, 0, 0, 0, 1, 4, 1,  0, 0, 0, R, "reached 2 of 5 disks and needs 3" },
		{ "quorum all, 3 disks: needs only 1",     1, 1, 3, 3, 3, 0, UP, "", 0, 0, 0, 0, 1, 2, 0,  0, 0, 0, C, NULL },
		{ "no quorum: held whatever the acks",     1, 1, 1, 2, 3, 0, UP, "", 0, 0, 0, 0, 1, 2, 1,  0, 0, 0, R, "no quorum" },
		{ "rules hold I/O: their reason",          1, 1, 2, 2, 3, 0, UP, "waiting for a disk peer", 0, 0, 0, 0, 1, 2, 1, 0, 0, 0, R, "waiting for a disk peer" },
		{ "a loss alone holds nothing",            1, 1, 2, 2, 3, 0, UP, "", 0, 0, 1, 0, 1, 2, 1,  0, 0, 0, C, NULL },
		{ "frozen already: sent again after",      1, 1, 2, 2, 3, 0, UP, "", 0, 0, 0, 1, 1, 2, 1,  0, 0, 0, R, NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run(&cases[i]);
}

/* An Outdated disk is current again once every partition with quorum
 * includes a disk with its generation: hosts - need + 1 of them, itself
 * included — fewer than a quorum from four disks on. */
TEST(generation_current_again)
{
	static const struct { const char *what; int same, hosts, need, current; } cases[] = {
		{ "3 disks majority: 2 with it",                2, 3, 2, 1 },
		{ "3 disks majority: alone",                    1, 3, 2, 0 },
		{ "4 disks majority: 2 with it (4th Inconsistent)", 2, 4, 3, 1 },
		{ "4 disks majority: alone",                    1, 4, 3, 0 },
		{ "5 disks majority: 3 with it",                3, 5, 3, 1 },
		{ "5 disks majority: 2 with it",                2, 5, 3, 0 },
		{ "quorum all, 3 disks: alone",                 1, 3, 3, 1 },
		{ "quorum 1 of 3: needs all three",             2, 3, 1, 0 },
		{ "quorum 1 of 3: all three",                   3, 3, 1, 1 },
		{ "nothing connected, nothing needed",          0, 3, 3, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int got = quorum_gen_current(cases[i].same, cases[i].hosts, cases[i].need);
		if (got != cases[i].current)
			fprintf(stderr, "  case: %s\n", cases[i].what);
		CHECK(got == cases[i].current);
	}
}

int main(void)
{
	return unit_main("quorum_rule");
}

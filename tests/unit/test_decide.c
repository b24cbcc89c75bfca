/* Table-driven tests of decide_sync (src/decide.c): what two nodes do when
 * they meet. Every case is also checked from the other side: the decisions
 * must mirror each other. */
#include "unit.h"
#include "decide.h"
#include "engine.h"

static enum decision mirror(enum decision d)
{
	switch (d) {
	case D_SOURCE_FULL: return D_TARGET_FULL;
	case D_TARGET_FULL: return D_SOURCE_FULL;
	case D_SOURCE_BITMAP: return D_TARGET_BITMAP;
	case D_TARGET_BITMAP: return D_SOURCE_BITMAP;
	default: return d;
	}
}

TEST(table)
{
	static const struct {
		struct side me, peer;
		enum decision want;
		const char *what;
	} cases[] = {
		{ { DS_INCONSISTENT, 0, 4, 0 }, { DS_INCONSISTENT, 0, 4, 0 }, D_WAIT, "fresh pair: wait for primary --force" },
		{ { DS_UPTODATE, 1, 100, 500 }, { DS_INCONSISTENT, 0, 4, 0 }, D_SOURCE_FULL, "forced primary meets fresh peer" },
		{ { DS_UPTODATE, 0, 100, 0 }, { DS_INCONSISTENT, 0, 100, 0 }, D_SOURCE_FULL, "peer was interrupted mid-sync" },
		{ { DS_UPTODATE, 0, 100, 0 }, { DS_UPTODATE, 0, 100, 0 }, D_NO_SYNC, "identical, clean" },
		{ { DS_UPTODATE, 1, 100, 12 }, { DS_UPTODATE, 0, 100, 0 }, D_SOURCE_BITMAP, "primary wrote while apart" },
		{ { DS_CONSISTENT, 0, 100, 0 }, { DS_UPTODATE, 1, 100, 9 }, D_TARGET_BITMAP, "consistent secondary, primary wrote" },
		{ { DS_UPTODATE, 1, 100, 3 }, { DS_UPTODATE, 1, 100, 7 }, D_SPLIT_BRAIN, "both wrote while apart" },
		{ { DS_UPTODATE, 0, 100, 0 }, { DS_UPTODATE, 0, 200, 0 }, D_UNRELATED, "different generations" },
		{ { DS_OUTDATED, 0, 100, 0 }, { DS_INCONSISTENT, 0, 4, 0 }, D_WAIT, "outdated data is not a sync source" },
		{ { DS_DISKLESS, 0, 0, 0 }, { DS_UPTODATE, 0, 100, 0 }, D_TARGET_FULL, "diskless meets good data" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum decision d = decide_sync(&cases[i].me, &cases[i].peer);
		enum decision back = decide_sync(&cases[i].peer, &cases[i].me);
		if (d != cases[i].want || back != mirror(cases[i].want)) {
			fprintf(stderr, "    case %zu (%s): got %s / %s, want %s / %s\n", i, cases[i].what, decision_name(d),
				decision_name(back), decision_name(cases[i].want), decision_name(mirror(cases[i].want)));
			unit_failed_now = 1;
		}
	}
}

int main(void)
{
	return unit_main("decide");
}

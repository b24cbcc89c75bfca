/* decide — see decide.h. */
#include "decide.h"
#include "engine.h"

/* "just created" generation: no data yet */
#define UUID_NEW 4

static int good(const struct side *s)
{
	return s->disk == DS_UPTODATE || s->disk == DS_CONSISTENT;
}

enum decision decide_sync(const struct side *me, const struct side *peer)
{
	int mg = good(me), pg = good(peer);

	if (!mg && !pg)
		return D_WAIT;
	if (mg && !pg)
		return D_SOURCE_FULL;
	if (!mg && pg)
		return D_TARGET_FULL;
	/* both hold data */
	if (me->uuid != peer->uuid)
		return D_UNRELATED;
	if (me->oos && peer->oos)
		return D_SPLIT_BRAIN;
	if (me->oos)
		return D_SOURCE_BITMAP;
	if (peer->oos)
		return D_TARGET_BITMAP;
	return D_NO_SYNC;
}

const char *decision_name(enum decision d)
{
	static const char *n[] = { "no-sync", "source-full", "target-full", "source-bitmap",
				   "target-bitmap", "wait", "split-brain", "unrelated" };
	return (unsigned)d < sizeof n / sizeof n[0] ? n[d] : "?";
}

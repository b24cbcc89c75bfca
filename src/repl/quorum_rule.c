/* quorum_rule — the pure write rule (quorum_rule.h). */
#include "quorum_rule.h"
#include "engine.h"

#include <stdio.h>

/* Without quorum (docs/fencing.md): the first replica that missed the
 * write and makes it wait decides; a Secondary never waits. */
static enum write_verdict plain_rule(const struct missed_write *m, char *why, size_t wl)
{
	if (m->frozen)
		return WV_HOLD;
	for (int i = 0; i < m->nmissed; i++) {
		const struct replica_view *v = &m->missed[i];
		if (!m->primary || v->hold_off)
			continue;
		if (v->fencing) {
			snprintf(why, wl, "%s", m->lost ? "connection to the peer lost; fencing it (fence-peer handler) "
							  "before any more writes complete"
							: "a write could not be replicated; waiting for the peer to be fenced");
			return WV_HOLD;
		}
		if (v->yields) {
			snprintf(why, wl, "%s", v->hold_reason ? v->hold_reason : "lost a Primary peer");
			return WV_HOLD;
		}
	}
	return WV_COMPLETE;
}

enum write_verdict quorum_rule(const struct quorum_facts *q, struct missed_write *m, char *why, size_t wl)
{
	why[0] = 0;
	if (!q->enabled)
		return plain_rule(m, why, wl);
	m->by_quorum = 1;
	const char *held = q->held && q->held[0] ? q->held : NULL;
	int have = q->votes >= q->need;
	if (q->multi) {
		/* several disks: a write must be on more disks than any partition
		 * with quorum could leave out, else it waits and is sent again */
		if (m->frozen)
			return WV_HOLD_RESEND;
		if (m->lost)
			return WV_COMPLETE; /* (each write decides for itself) */
		int want = q->hosts - q->need;
		if (!held && have && m->acks >= want)
			return WV_COMPLETE;
		if (held)
			snprintf(why, wl, "%s", held);
		else if (!have)
			snprintf(why, wl, "no quorum: %d of %d votes, %d needed", q->votes, q->hosts, q->need);
		else
			snprintf(why, wl, "a write reached %d of %d disks and needs %d (so that no partition with "
				 "quorum can lack it); waiting for a disk peer to return", 1 + m->acks, m->replicas + 1,
				 want + 1);
		return q->io_error ? WV_FAIL : WV_HOLD_RESEND;
	}
	/* one disk peer: without it, only a Primary with quorum whose peer can
	 * no longer write goes on (`alone`, docs/quorum.md) */
	if (m->frozen)
		return WV_HOLD;
	if (!m->primary || (!m->lost && m->nmissed > 0 && m->missed[0].hold_off))
		return WV_COMPLETE;
	/* the peer there but without the write (its disk failed, or it
	 * reported an error) knows: the bitmap has the range, as without quorum */
	if (!held && have && ((q->alone && q->disk == DS_UPTODATE) || q->peer_usable))
		return WV_COMPLETE;
	if (held)
		snprintf(why, wl, "%s", held);
	else if (!have)
		snprintf(why, wl, "no quorum: %d of %d votes, %d needed", q->votes, q->hosts, q->need);
	else
		snprintf(why, wl, "a write could not be replicated to the disk peer; waiting for the quorum rules");
	return q->io_error ? WV_FAIL : WV_HOLD;
}

int quorum_gen_current(int same, int hosts, int need)
{
	return same >= 1 && same > hosts - need;
}

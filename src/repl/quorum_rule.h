/* quorum_rule — the rule for a write some replicas missed, as a pure
 * function: complete it, hold it (I/O waits) or fail it. quorum.c gathers
 * the facts, calls it, and carries out the verdict (suspending I/O with the
 * reason); the engine asks only through the write policy (replica.h).
 *
 * No state, no locks, no I/O: it links alone (tests/unit/test_quorum_rule.c).
 */
#ifndef DIPOLE_QUORUM_RULE_H
#define DIPOLE_QUORUM_RULE_H

#include <stddef.h>

#include "replica.h"

/* What quorum.c knows when it decides (one consistent snapshot). */
struct quorum_facts {
	int enabled;       /* quorum on; 0: the fencing and dual-primary rules */
	int multi;         /* more than one disk peer (docs/quorum.md, "Three or more disks") */
	int votes, need, hosts;
	int io_error;      /* on-no-quorum io-error (else suspend-io) */
	int disk;          /* this node's enum disk_state */
	const char *held;  /* why the rules hold I/O now ("" none) */
	int alone;         /* one disk peer: this node was allowed to go on without it */
	int peer_usable;   /* one disk peer: it is connected with a fresh lease */
};

/* The verdict for m under q; on a hold, why[wl] gets the reason (the one to
 * suspend I/O with). m->frozen: only how the write waits (WV_HOLD or
 * WV_HOLD_RESEND), never an action. Sets m->by_quorum when q->enabled. */
enum write_verdict quorum_rule(const struct quorum_facts *q, struct missed_write *m, char *why, size_t wl);

/* Several disks: may a disk that is Outdated (it lost quorum) or Consistent
 * (just started) be UpToDate again, now that it has quorum and `same` disks,
 * itself included, are connected with its data generation? A newer
 * generation could only come from a partition with quorum (`need` of
 * `hosts` votes) that wrote without this node; it includes one of those
 * disks — which would then not have this generation — as soon as
 * same > hosts - need (the bound a write completes on, too). */
int quorum_gen_current(int same, int hosts, int need);

#endif

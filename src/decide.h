/* decide — what two nodes do when they meet: the pure rule both sides apply
 * to the same inputs (their own and the peer's HELLO), so they always reach
 * mirror-image decisions. No I/O, no state; table-tested in tests/unit.
 */
#ifndef DIPOLE_DECIDE_H
#define DIPOLE_DECIDE_H

#include <stdint.h>

struct side {
	int disk;          /* enum disk_state */
	int primary;       /* role is Primary */
	uint64_t uuid;     /* current data generation */
	uint64_t oos;      /* blocks marked out of sync */
};

enum decision {
	D_NO_SYNC,         /* identical generations, nothing marked */
	D_SOURCE_FULL,     /* send everything: the peer has no valid data */
	D_TARGET_FULL,
	D_SOURCE_BITMAP,   /* send the blocks marked in my bitmap */
	D_TARGET_BITMAP,
	D_WAIT,            /* neither side has good data yet (both Inconsistent) */
	D_SPLIT_BRAIN,     /* both changed the same generation independently */
	D_UNRELATED,       /* different generations: refuse */
};

enum decision decide_sync(const struct side *me, const struct side *peer);
const char *decision_name(enum decision d);

#endif

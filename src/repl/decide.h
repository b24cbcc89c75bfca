/* decide — what two nodes do when they meet: the pure rules both sides apply
 * to the same inputs (their own and the peer's HELLO), so they always reach
 * mirror-image decisions. No I/O, no state; table-tested in tests/unit.
 *
 * Data generations (DRBD's scheme, docs/failures.md): `current` names the
 * data as it is now; `bitmap` is the generation the out-of-sync bitmap counts
 * changes from (0 when none is kept); `history` holds the two generations
 * before. A Primary that loses its peer starts a new current generation and
 * keeps the old one as bitmap; a finished resync moves the source's bitmap
 * generation into history, and the target adopts the source's generations.
 */
#ifndef DIPOLE_DECIDE_H
#define DIPOLE_DECIDE_H

#include <stdint.h>

/* as the store's uuid[] (meta.h: UUID_*, MD_HISTORY history entries) */
enum { G_CURRENT, G_BITMAP, G_HIST0, G_HIST1, G_COUNT = G_HIST0 + 8 };
#define G_HISTORY (G_COUNT - G_HIST0)

struct side {
	int disk;          /* enum disk_state */
	int primary;       /* role is Primary */
	uint64_t uuid[G_COUNT];
	uint64_t oos;      /* blocks marked out of sync */
	int node_id;
	int crashed_primary; /* was Primary when it last went down uncleanly */
	int discard_my_data; /* `connect --discard-my-data` */
	uint64_t gen_time; /* when `current` began (unix ns): "younger" primary */
	/* an Inconsistent side whose resync from the other was interrupted
	 * (HF_RESUMABLE): the source's generation its bitmap counts from (the
	 * source's bitmap generation for it at the start, else its current);
	 * 0 none. Its bitmap still holds every block it lacks. */
	uint64_t resync_from;
	/* several disk peers: its bitmap for the other side marks none of
	 * the writes it applied from a Primary (HF_UNSURE), so its count of
	 * changes says nothing */
	int unsure;
};

enum decision {
	D_NO_SYNC,         /* same data */
	D_SOURCE_FULL,     /* send everything: the peer has no valid data, or data the bitmap does not cover */
	D_TARGET_FULL,
	D_SOURCE_BITMAP,   /* send the blocks marked in either bitmap (also: resume an
			    * interrupted resync of an Inconsistent peer) */
	D_TARGET_BITMAP,
	D_WAIT,            /* neither side is a source for the other: both Inconsistent,
			    * Outdated data, or decide_newer_partial */
	D_SPLIT_BRAIN,     /* both changed the same generation independently */
	D_UNRELATED,       /* no common generation: refuse */
};

enum decision decide_sync(const struct side *me, const struct side *peer);
/* 1 when `partial` (Inconsistent) is at a generation that went on from
 * `whole`'s current one: it followed a Primary (several disks) and holds
 * writes of it the whole disk lacks, perhaps acknowledged ones. Neither is
 * a source for the other (DRBD: "I shall become SyncSource, but I am
 * inconsistent"); decide_sync says D_WAIT. */
int decide_newer_partial(const struct side *partial, const struct side *whole);
/* The other side's view of a decision (source <-> target). */
enum decision decision_mirror(enum decision d);

/* Several disk peers (docs/replication.md, "More than two nodes with
 * disks"): what each side's HELLO adds to the pair's decision d. */
struct mside {
	int disk, primary, node_id;
	int unsure;        /* its slot for the other side is unsure */
	int third_primary; /* a third node is Primary and connected to it */
	int busy_target;   /* it is SyncTarget of a third node */
	int stamp_from;    /* node-id of the Primary whose writes it applied last, -1 none */
	uint32_t stamp;    /* the last such write's fan-out stamp */
	int busy_source;   /* it is SyncTarget of a third node (so no source either) */
	uint64_t current;  /* its current data generation */
};
#define D_DEFERRED (-1) /* connect without a resync now (the verdict of decide_multi only) */
/*  - same generation, one side Primary with whole data (Outdated or better):
 *    the Primary is the source (it has every write of that generation);
 *  - unsure: a bitmap resync becomes a full one; "same data" becomes a full
 *    resync from a Primary among the two, else (no third Primary) from the
 *    one with more of the lost Primary's writes (larger stamp), else the
 *    better disk, else the lower node-id; with a third Primary it stays;
 *  - a resync between two in-sync Secondaries of a Primary (below) is
 *    D_NO_SYNC: the Primary resynced whichever was behind;
 *  - a resync is D_DEFERRED when its source is a Secondary while a third
 *    node is Primary, or when either side is SyncTarget of a third node.
 * Only two disks with whole data (Outdated or better) are unsure. */
int decide_multi(enum decision d, const struct mside *me, const struct mside *peer);
/* 1 when both sides are UpToDate Secondaries of a third node that is
 * Primary, at one generation, neither a SyncTarget: each is a copy of that
 * Primary, so what one's bitmap marks for the other is moot (a resync
 * between them the Primary's own resync superseded, four_disks.sh) and is
 * cleared at the handshake (peer_agree.c) instead of deferred for ever. */
int decide_in_sync_with_primary(const struct mside *me, const struct mside *peer);
const char *decision_name(enum decision d);

/* Split-brain recovery policies (drbd.conf(5) meanings). */
enum splitbrain_rule {
	SB_DISCONNECT,
	SB_DISCARD_YOUNGER,     /* 0pri */
	SB_DISCARD_OLDER,
	SB_DISCARD_ZERO,
	SB_DISCARD_LEAST,
	SB_DISCARD_NODE,
	SB_CONSENSUS,           /* 1pri */
	SB_VIOLENTLY,           /* 1pri, 2pri */
	SB_DISCARD_SECONDARY,   /* 1pri */
	SB_CALL_PRI_LOST,       /* 1pri, 2pri */
};

struct splitbrain_policy {
	enum splitbrain_rule p0, p1, p2;
	int discard_node_id;    /* SB_DISCARD_NODE: this node's changes are dropped */
};

/* Parse an after-sb-Npri value (`which` 0, 1, 2). node_id_of maps a host
 * name (discard-node-NAME) to its node-id or -1. Returns 0 or -1. */
int splitbrain_rule_parse(int which, const char *v, enum splitbrain_rule *out, int *discard_node_id,
		  int (*node_id_of)(const char *name, void *arg), void *arg);
const char *splitbrain_rule_name(enum splitbrain_rule r);

/* Resolve a split brain: D_SOURCE_BITMAP / D_TARGET_BITMAP for this node, or
 * D_SPLIT_BRAIN when the policy leaves it to the administrator. *pri_lost
 * is set when this node is Primary, loses, and the policy says to call the
 * pri-lost-after-sb handler. why[128] names the rule that decided. */
enum decision resolve_split_brain(const struct side *me, const struct side *peer, const struct splitbrain_policy *pol,
				  int *pri_lost, char *why);

#endif

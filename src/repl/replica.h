/* replica — how the engine sees a copy of its data on another node, and the
 * rule for a write some of those copies missed.
 *
 * The engine (engine.c) fans every write out to its replicas and never
 * knows what they are: each is a table of operations with a `void *`
 * context, registered by its owner (today only the disk peer, peer.c,
 * through engine_add_replica). Whether a write that some replicas missed
 * completes, waits or fails is decided by one write policy, registered by
 * the daemon and supplied by quorum.c (quorum rules when quorum is on, the
 * fencing and dual-primary rules otherwise).
 *
 * Module directions (tests/integ/include_cycles.sh checks that there is no
 * cycle): peer and quorum include engine.h (and this header); the engine
 * includes neither of them, and peer and quorum do not include each other:
 * quorum sees the disk peers only as replicas of the engine.
 *
 * Invariants: a replica's ops and ctx do not change while it is registered;
 * every op may be called from any frontend thread concurrently, and must not
 * take the engine's `lock` or `fanout` (callers may hold `fanout`).
 */
#ifndef DIPOLE_REPLICA_H
#define DIPOLE_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "meta.h"

struct pending;

/* What the write policy and the quorum rules know of one replica. */
struct replica_view {
	int connected;        /* connected and past the handshake */
	int usable;           /* connected and its lease fresh */
	uint64_t last_rx_ns;  /* last packet on the meta channel (now_ns), 0 never */
	uint64_t conn_seq;    /* connections established so far */
	int role, disk;       /* last known, -1 unknown */
	int was_primary;      /* last known role Primary, kept across a loss of the link */
	int fs_owner;         /* connected and owns the mounted dipolefs (STF_FS_OWNER) */
	uint64_t uuid;        /* its current data generation, last known */
	int established;      /* replicating, no resync in either direction */
	/* without quorum: must a write it missed wait (docs/fencing.md)? */
	int hold_off;         /* `resume-io` while it is away: go on without it */
	int fencing;          /* fencing configured: wait until it is fenced */
	int yields;           /* both were Primary, no fencing: this node is the one that waits */
	const char *hold_reason; /* why, for `yields` (owned by the replica) */
};

/* A replica as the engine calls it. A request handle (`struct pending`) is
 * opaque to the engine and only handed back to the same replica. */
struct replica_ops {
	/* Write path around the local write: begin sends the write (NULL: not
	 * replicated), end waits for the acknowledgement. end: 1 when the
	 * replica has (or is responsible for) the write, 0 when the caller must
	 * mark it out of sync. stamp: fan-out order, 0 with a single replica. */
	struct pending *(*write_begin)(void *ctx, const void *buf, size_t len, uint64_t off, unsigned dflags,
				       uint32_t stamp);
	int (*write_end)(void *ctx, struct pending *pd);
	/* Flush what it acknowledged: begin (NULL: not connected), end waits. */
	struct pending *(*flush_begin)(void *ctx);
	int (*flush_end)(void *ctx, struct pending *pd);
	/* Read from its disk (UpToDate and connected), -EIO when it cannot. */
	int (*read)(void *ctx, void *buf, size_t len, uint64_t off);
	int (*can_read)(void *ctx);        /* connected to an UpToDate disk */
	int (*is_connected)(void *ctx);
	int (*is_sync_target)(void *ctx);  /* this node is its SyncTarget, bitmap merged */
	/* This node's role or disk state changed: tell the replica. */
	void (*state_changed)(void *ctx);
	/* Promotion check: 0 or -EBUSY with msg[256]. */
	int (*may_promote)(void *ctx, char *msg);
	/* A snapshot for the write policy and the quorum rules. */
	void (*view)(void *ctx, struct replica_view *v);
};

/* One registered replica: the engine keeps these, not the owner's struct. */
struct replica {
	const struct replica_ops *ops;
	void *ctx;
	int slot;                  /* its bitmap slot (fixed: no call on the hot path) */
};

/* ---- the write policy */

enum write_verdict {
	WV_COMPLETE,      /* the write completes without the replicas that missed it */
	WV_HOLD,          /* it waits while I/O is suspended; then it completes, or
			   * is sent again when a replica that missed it is back */
	WV_HOLD_RESEND,   /* it waits; then it is always sent again (it must reach
			   * enough disks) */
	WV_FAIL,          /* it fails with EIO (on-no-quorum io-error) */
};

/* A write (or, with `lost`, a connection loss) some replicas missed. */
struct missed_write {
	int lost;         /* not a write: missed[0]'s connection was just lost, and
			   * writes may have to wait before the first one misses it */
	int frozen;       /* I/O is suspended already: the write waits whatever the
			   * rule; the policy takes no action, it only says how */
	int primary;      /* this node is Primary */
	int replicas;     /* registered replicas */
	int acks;         /* how many have the write */
	int nmissed;
	struct replica_view missed[MD_MAX_PEERS]; /* those that missed it, in engine order */
	/* out: the quorum rules decided (fencing and the dual-primary rule
	 * are not in force) */
	int by_quorum;
};

/* decide: the verdict; it may suspend I/O itself (with its reason) when it
 * holds, so that whoever resumes knows the hold is theirs. Must tolerate any
 * ctx it was registered with, from any thread. */
struct write_policy {
	enum write_verdict (*decide)(void *ctx, struct missed_write *m);
	void *ctx;
};

#endif

/* fsevents — the filesystem's events for `dipole events`: who owns and
 * serves the filesystem, which clients are connected, failovers with their
 * timings, lock grace periods and reclaims (docs/dipolefs.md "Events").
 *
 * One function per event. Each appends one line to the process's event log
 * (src/repl/evlog.h), in order with the block layer's transitions, in the
 * format of those (DRBD's `events2` style, one "key:value" word per field):
 *
 *   change fs:owner name:RES node:NODE old:STATE new:STATE why:"..."
 *   change fs:client name:RES peer:NODE old:disconnected new:connected why:"..."
 *   change fs:failover name:RES node:NEW old-owner:OLD total-ms:N
 *          [promote-ms:N] [mount-ms:N] [serve-ms:N] why:"..."
 *   change fs:grace name:RES old:off new:on duration-ms:N clients:N why:"..."
 *   change fs:grace name:RES old:on new:off reclaimed:N refused:N why:"..."
 *   change fs:reclaim name:RES peer:NODE granted:N refused:N why:"..."
 *   change fs:takeover name:RES node:NODE old-owner:OLD result:refused why:"..."
 *
 * each followed by " seq:N time-us:T" (CLOCK_MONOTONIC, the event log's).
 * The process-wide totals (fsevents_totals) feed the metrics. A daemon
 * serves one resource, so totals are not kept per resource.
 *
 * Locking: any thread, holding any lock: the functions take only a leaf
 * mutex of their own and the event log's, and never block.
 */
#ifndef DIPOLE_FSEVENTS_H
#define DIPOLE_FSEVENTS_H

#include <stdint.h>

/* A node's part in serving the filesystem, as fs:owner reports it. */
enum fsevents_owner {
	FSEV_NONE,    /* "none": it owns nothing */
	FSEV_OWNER,   /* "owner": Primary with the kernel filesystem mounted, not serving yet (a takeover) */
	FSEV_SERVING, /* "serving": owns it and serves requests (its own mount, clients, or both) */
};

/* fs:owner — `node` (this node, or the owner a client forwards to) went
 * from `from` to `to` (no event when equal); why: the reason, "" none. */
void fsevents_owner(const char *res, const char *node, enum fsevents_owner from, enum fsevents_owner to,
		    const char *why);

/* fs:client — on the owner: client node `client` connected (1) or is gone
 * (0: closed, dropped, or the server stopped); why as above. */
void fsevents_client(const char *res, const char *client, int connected, const char *why);

/* A failover's moments on this node's CLOCK_MONOTONIC, in ns (now_ns());
 * 0: not known, and the phase that needs it is left out of the event. */
struct fsevents_failover {
	const char *old_owner;  /* the owner that was lost */
	const char *new_owner;  /* the node that serves now */
	uint64_t lost_ns;       /* the old owner was declared lost (its link down: ping-timeout) */
	uint64_t promoted_ns;   /* the new owner became Primary */
	uint64_t mounted_ns;    /* its kernel filesystem was mounted (the journal replayed) */
	uint64_t served_ns;     /* the first request was served after the takeover */
};
/* fs:failover — a takeover finished: total-ms is served - lost (both must
 * be set, else the event says total-ms:unknown); promote-ms lost..promoted,
 * mount-ms promoted..mounted, serve-ms mounted..served, where known. Counts
 * one failover in the totals. */
void fsevents_failover(const char *res, const struct fsevents_failover *f, const char *why);

/* fs:grace — the lock grace period (locks.h) began on the new owner, for
 * duration_ms, waiting for `clients` survivors to reclaim; and its end,
 * with the reclaims granted and refused (why: "every node reclaimed",
 * "expired"). Start sets the totals' grace flag; end clears it and emits
 * only if it was set (1), so two who see the end report it once. */
void fsevents_grace_start(const char *res, uint64_t duration_ms, unsigned clients, const char *why);
int fsevents_grace_end(const char *res, unsigned reclaimed, unsigned refused, const char *why);

/* fs:reclaim — client `node` finished reclaiming its locks: `granted`
 * reclaims granted, `refused` refused (a conflict, or after grace: its
 * processes get EIO, docs/dipolefs.md "Locks"). Added to the totals. */
void fsevents_reclaim(const char *res, const char *node, unsigned granted, unsigned refused, const char *why);

/* fs:takeover — the owner `old_owner` is lost and this node `node` does
 * not take the filesystem over (the block layer's rules: quorum, the
 * tiebreaker still sees the owner, the disk is not UpToDate, the
 * fence-peer handler did not fence it, or promotion refused); why says
 * which and what to do. The caller emits it once per reason. */
void fsevents_takeover_refused(const char *res, const char *node, const char *old_owner, const char *why);

/* What the events counted since the process started (the metrics). */
struct fsevents_totals {
	uint64_t failovers;          /* fs:failover events */
	uint64_t last_failover_ms;   /* total-ms of the last one with both ends known, 0 none */
	uint64_t grace_periods;      /* fs:grace starts */
	int grace_active;            /* a grace period began and has not ended */
	uint64_t reclaims_granted, reclaims_refused; /* summed over fs:reclaim */
};
void fsevents_totals(struct fsevents_totals *out);

/* The names fs:owner prints ("none", "owner", "serving"); "?" out of range. */
const char *fsevents_owner_name(enum fsevents_owner s);

#endif

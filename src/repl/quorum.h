/* quorum — votes, vote links, and who may write while nodes are apart
 * (docs/quorum.md).
 *
 * Every host of a resource has one vote. A node counts its own vote, its disk
 * peers' (the engine's replicas) and one per vote link: a link to or from a diskless
 * host (`disk none;`, a tiebreaker), which carries no data, only pings and
 * each side's view of the cluster (P_VSTATE). A vote counts only while its
 * lease is fresh: the last answered ping was sent less than
 * lease = the ping interval + ping-timeout ago; with quorum on, the
 * interval is at most a second whatever ping-int says (cfg_ping_ms,
 * config.h), so the lease is 1.5 s by default. A node has quorum when its votes
 * reach the configured number (options { quorum majority|all|N; }).
 *
 * Rules, checked every 50 ms by the quorum thread and on every write the
 * disk peer did not acknowledge:
 *  - without quorum, I/O is suspended (on-no-quorum suspend-io) or fails with
 *    EIO (io-error), promotion is refused, and an UpToDate disk becomes
 *    Outdated: the majority may be writing without this node.
 *  - a Primary whose disk peer is gone (connection lost or lease expired)
 *    completes writes the peer did not get only when it has quorum, its disk
 *    is UpToDate, the peer's lease has certainly ended (by this node's and
 *    every vote link's last contact with it), and no vote link still sees the
 *    peer UpToDate with a lower node-id (then the peer is the one that goes
 *    on). Otherwise those writes wait (or fail with io-error).
 *  - I/O resumes by itself when the rules allow it again.
 *
 * Threads: one quorum thread, one thread per vote link. `lock` guards the
 * reported views and the suspend bookkeeping; `eval_lock` makes one rule
 * evaluation (and the write decision on it) atomic. Order: eval_lock ->
 * lock -> the engine's lock; both come before every peer lock (quorum.c).
 *
 * Dependencies: quorum includes engine.h and knows the disk peers only as
 * the engine's replicas (replica.h), never peer.h; the engine and the peer
 * do not include this header (only the daemon does). The rule for a write
 * some peers missed is quorum_rule() (quorum_rule.h), handed to the engine
 * as its write policy (quorum_write_policy).
 */
#ifndef DIPOLE_QUORUM_H
#define DIPOLE_QUORUM_H

#include "config.h"
#include "replica.h"
#include "util.h"

struct quorum;
struct engine;
struct listener;

/* Start vote links to/from the diskless hosts (or, on a diskless host, to
 * every host) and the quorum thread. e is NULL on a diskless host; the disk
 * peers are e's replicas, registered before this call (replica.h: quorum
 * knows them only through their ops). err[256] on failure. */
int quorum_start(struct quorum **out, struct engine *e, const struct cfg_resource *r, const struct cfg_host *me,
		 struct listener *l, char *err);
/* Stop the threads; from then on quorum rules no longer apply (shutdown).
 * quorum_free stops (if needed) and releases. */
void quorum_stop(struct quorum *q);
void quorum_free(struct quorum *q);

int quorum_enabled(const struct quorum *q);
/* This node has quorum (always 1 when quorum is off). */
int quorum_have(struct quorum *q);
/* Promotion check: 0, or -EBUSY with msg[256]. */
int quorum_may_promote(struct quorum *q, char *msg);
/* Are the quorum rules holding I/O now? 1 with msg[256] saying why (for
 * `resume-io`, which cannot override them), else 0. */
int quorum_held(struct quorum *q, char *msg);
/* The write policy for e (replica.h), the one rule for a write some disk
 * peers missed: with q (quorum configured), the quorum rules while they are
 * on (quorum_rule.h) and the fencing/dual-primary rules after quorum_stop;
 * with q NULL, the fencing/dual-primary rules. A hold suspends e's I/O. */
struct write_policy quorum_write_policy(struct quorum *q, struct engine *e);

/* What the vote link to node_id last heard of that node: 0 with *role and
 * *disk (enum role, enum disk_state) while the link is connected and has a
 * report; -ENOENT without such a link or report (a diskless node finds the
 * filesystem's owner this way: it has no disk peers). Takes the link's lock. */
int quorum_link_state(struct quorum *q, int node_id, int *role, int *disk);

/* 1 if a vote link with a fresh lease reports that its node still sees
 * node_id (connected, lease fresh there): a disk node that lost node_id
 * only on its own link is then the side that stays behind (the rules
 * above). dipolefs's take-over asks this (src/daemon/fsmount.c). Takes
 * each link's lock. */
int quorum_voter_sees(struct quorum *q, int node_id);

/* Status pieces: the quorum object, the vote-link peers (each preceded by a
 * comma when `comma`), text lines, and the events line part. */
void quorum_status_json(struct quorum *q, struct strbuf *sb);
void quorum_peers_json(struct quorum *q, struct strbuf *sb, int comma);
void quorum_status_text(struct quorum *q, struct strbuf *sb);
void quorum_state_line(struct quorum *q, struct strbuf *sb);

#endif

/* peer_agree — the handshake verdict: which side is the sync source, split brain,
 * several disk peers (decide.c decides, this file confirms and applies).
 * Part of the peer module: see peer.h and peer_int.h. */
#include "peer_int.h"
#include "resize.h"
#include "decide.h"
#include "handler.h"
#include "hs.h"
#include "listener.h"
#include "log.h"
#include "wire.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

enum { V_TWO_PRIMARIES = 100, V_SPLIT_BRAIN, V_UNRELATED, V_STALE_FOR_DISKLESS, V_DEFERRED, V_THIRD_PRIMARY };

static void mside_of_hello(struct mside *m, const struct pkt_hello *h)
{
	m->disk = h->disk;
	m->primary = h->role == ROLE_PRIMARY;
	m->node_id = (int)h->node_id;
	m->unsure = !!(h->flags & HF_UNSURE);
	m->third_primary = !!(h->flags & HF_THIRD_PRIMARY);
	m->busy_target = !!(h->flags & HF_BUSY_TARGET);
	m->stamp_from = h->stamp_from;
	m->stamp = h->stamp;
	m->busy_source = m->busy_target;
	m->current = h->uuid[UUID_CURRENT];
}

/* Several peers: decide_multi() on both HELLOs. */
static int multi_verdict(int v, const struct pkt_hello *mine, const struct pkt_hello *hello)
{
	struct mside m, t;
	mside_of_hello(&m, mine);
	mside_of_hello(&t, hello);
	int r = decide_multi((enum decision)v, &m, &t);
	return r == D_DEFERRED ? V_DEFERRED : r;
}

/* With p, every disk peer is connected (and past its handshake). */
static int all_disks_here(struct peer *p)
{
	struct engine *e = p->e;
	for (int i = 0; i < e->npeers; i++) {
		struct peer *q = sibling(e, i);
		if (q != p && (!connected(q) || atomic_load(&q->repl) == RS_OFF))
			return 0;
	}
	return 1;
}

/* A node other than p that is Primary and connected to this one, or
 * NULL; handshaking: one still in its handshake counts too (its repl is
 * Off until agree() applies the verdict). */
static struct peer *primary_besides(struct peer *p, int handshaking)
{
	struct engine *e = p->e;
	for (int i = 0; i < e->npeers; i++) {
		struct peer *q = sibling(e, i);
		if (q != p && connected(q) && (handshaking || atomic_load(&q->repl) != RS_OFF) &&
		    atomic_load(&q->peer_role) == ROLE_PRIMARY)
			return q;
	}
	return NULL;
}

int third_primary(struct peer *p)
{
	return primary_besides(p, 0) != NULL;
}

int peer_take_state(struct peer *p, int role, int disk, const char *why, struct peer **other)
{
	struct engine *e = p->e;
	int rc = 0;
	*other = NULL;
	pthread_mutex_lock(&e->lock);
	if (role == ROLE_PRIMARY && !p->allow_two && atomic_load(&p->peer_role) != ROLE_PRIMARY) {
		*other = primary_besides(p, 1);
		rc = *other || atomic_load(&e->role) == ROLE_PRIMARY ? -EALREADY : 0;
		/* (widens the window between the check and the store:
		 * three_disks_return.sh) */
		test_pause("take-primary");
	}
	if (!rc)
		peer_set_peer_state(p, role, disk, why);
	pthread_mutex_unlock(&e->lock);
	return rc;
}

/* A peer's role or link changed: each other peer whose last HELLO from
 * here said this node is connected to a Primary, and it no longer is,
 * learns so by a new handshake. `primary` there is refused while the flag
 * holds (peer_may_promote), so a stale one would refuse for ever after a
 * demotion. The other way (a Primary met after the HELLO) is not worth a
 * handshake with every peer at each promotion: a peer promoted meanwhile
 * is dropped here (rx_state). */
void third_primary_changed(struct engine *e)
{
	if (e->npeers < 2)
		return;
	for (int i = 0; i < e->npeers; i++) {
		struct peer *q = sibling(e, i);
		if (!connected(q) || atomic_load(&q->repl) != RS_ESTABLISHED || atomic_load(&q->stopping) ||
		    !atomic_load(&q->told_third_primary) || third_primary(q))
			continue;
		atomic_store(&q->told_third_primary, 0);
		log_info("peer %s: handshaking again (this node is no longer connected to a Primary)", q->addr);
		disconnect_sockets(q);
	}
}

/* The Primary p started its current generation itself, from this node's,
 * over this connection: p reported this node's generation on it (nothing
 * deferred at the handshake), then the new one while Primary, with this
 * node's as its parent. Every write of that generation crossed this link
 * (a Primary starts a new generation for the peers it writes without),
 * so another peer's report of it, overtaking p's own on another link, is
 * no sign that this node lacks writes: b promoted, c followed and told d
 * before b's report reached d (four_disks_follow.sh, CI). Not so for a
 * generation p followed as a Secondary: its writes came to p from
 * another Primary, not over this link (three_disks_behind.sh). */
static int moved_on_here(struct peer *p)
{
	uint64_t mine = p->e->sb.uuid[UUID_CURRENT];
	return !atomic_load(&p->deferred) && p->moved_as_primary && p->uuid_before == mine &&
	       atomic_load(&p->peer_history[0]) == mine;
}

void follow_primary(struct peer *p, int handshake)
{
	struct engine *e = p->e;
	int ds = atomic_load(&e->dstate), repl = atomic_load(&p->repl);
	uint64_t cur = atomic_load(&p->peer_uuid);

	if (e->npeers < 2 || atomic_load(&e->role) == ROLE_PRIMARY || atomic_load(&p->peer_role) != ROLE_PRIMARY ||
	    atomic_load(&p->peer_disk) != DS_UPTODATE || !cur || cur == e->sb.uuid[UUID_CURRENT])
		return;
	/* in sync with it; or Inconsistent and taking its writes (its
	 * SyncTarget, or deferred): those writes are of its generation. At a
	 * handshake only an Inconsistent disk: a whole one the handshake made
	 * its SyncTarget lacks writes of that generation until the resync
	 * starts (then it is Inconsistent, rx_sync_start) */
	if (ds == DS_INCONSISTENT ? repl == RS_OFF || repl == RS_SYNC_SOURCE
				  : handshake || ds < DS_OUTDATED || repl != RS_ESTABLISHED)
		return;
	/* Told a peer has writes this disk lacks (Outdated, or Consistent
	 * after a restart; often the peer
	 * just promoted, which took them in a resync from a Primary this node
	 * could not reach): being connected does not make it a copy. Following
	 * would call those writes present, the quorum rule would make the disk
	 * UpToDate, and a later resync from it would erase them everywhere
	 * (three_disks_behind.sh). A handshake with the Primary resyncs it;
	 * asked once per time this node was told it is behind */
	unsigned behind = atomic_load(&e->behind);
	if (ds != DS_INCONSISTENT && behind & 1 && !moved_on_here(p)) {
		if (atomic_exchange(&p->behind_asked, behind) != behind) {
			atomic_store(&p->recheck_ns, now_ns());
			log_info("peer %s: comparing data again (this node lacks writes of the Primary's generation)",
				 p->addr);
			disconnect_sockets(p);
		}
		return;
	}
	const uint64_t u[UUID_COUNT] = { [UUID_CURRENT] = cur, [UUID_HISTORY0] = atomic_load(&p->peer_history[0]),
					 [UUID_HISTORY1] = atomic_load(&p->peer_history[1]) };
	if (!engine_adopt_generation(e, p->slot, u, now_realtime_ns()))
		peers_state_changed(e, NULL);
}

/* This node's UpToDate disk goes Outdated (why: the event's reason), a
 * Primary's never: a peer has data it lacks. And it is behind (engine.h)
 * unless a Primary is connected here: then the peer's newer generation is
 * that Primary's, whose writes this node takes too (a handshake with a
 * Secondary that followed it a moment earlier); following it is right,
 * a resync would be for nothing (four_disks_follow.sh). Takes e->lock. */
static void outdate_behind(struct peer *p, const char *why)
{
	struct engine *e = p->e;
	int outdate = 0;
	if (atomic_load(&e->role) != ROLE_PRIMARY) {
		pthread_mutex_lock(&e->lock);
		if (!(atomic_load(&e->behind) & 1) && !third_primary(p))
			atomic_fetch_add(&e->behind, 1);
		outdate = atomic_load(&e->dstate) == DS_UPTODATE && !engine_set_disk_locked(e, DS_OUTDATED, why);
		pthread_mutex_unlock(&e->lock);
	}
	if (outdate)
		log_warn("disk UpToDate -> Outdated: peer %s has newer data", p->ph->name);
}

void behind_secondary(struct peer *p)
{
	struct engine *e = p->e;
	uint64_t cur = atomic_load(&p->peer_uuid), mine = e->sb.uuid[UUID_CURRENT];

	if (e->npeers < 2 || atomic_load(&p->peer_role) != ROLE_SECONDARY ||
	    atomic_load(&p->peer_disk) != DS_UPTODATE || atomic_load(&p->repl) != RS_ESTABLISHED || !cur ||
	    cur == mine || third_primary(p) ||
	    (atomic_load(&p->peer_history[0]) != mine && atomic_load(&p->peer_history[1]) != mine))
		return;
	outdate_behind(p, "a peer followed a Primary this node cannot reach into a newer generation");
}

/* May this node start a resync to p on its own (a peer became Inconsistent
 * while connected)? With several peers only the Primary does. */
int may_source(struct peer *p)
{
	return p->e->npeers == 1 || atomic_load(&p->e->role) == ROLE_PRIMARY;
}

/* The Primary p is being lost: `primary` waits for a comparison with each
 * peer this node is unsure of that is connected or was a lease ago. */
void mark_compare_due(struct peer *p)
{
	struct engine *e = p->e;
	uint64_t now = now_ns();
	for (int i = 0; i < e->npeers; i++) {
		struct peer *q = sibling(e, i);
		if (q != p && !atomic_load(&q->stopping) && !atomic_load(&q->admin_down) && engine_unsure(e, q->slot) &&
		    (connected(q) || now - atomic_load(&q->last_rx_ns) < q->lease_ns))
			atomic_store(&q->recheck_ns, now);
	}
}

/* Compare data again (handshake anew) with the other connected peers whose
 * last decision was deferred or "wait" (both were Inconsistent then, so
 * nothing was compared: left alone, such a pair never compares once it has
 * data — the resync that was due never starts, and its unsure flags leak
 * into a later return, which then costs a full resync), or, when the
 * Primary was lost, that this node is unsure of. */
void kick_others(struct peer *p, const char *why)
{
	struct engine *e = p->e;
	int lost_primary = strstr(why, "Primary") != NULL;
	uint64_t now = now_ns();
	for (int i = 0; i < e->npeers; i++) {
		struct peer *q = sibling(e, i);
		if (q == p || atomic_load(&q->stopping))
			continue;
		/* The Primary was lost and q's link went down just now too (q
		 * noticed first and dropped it to compare): the comparison is
		 * still due, and `primary` must wait for it here as well, or
		 * this node is promoted without the writes only q has. */
		if (!connected(q)) {
			if (lost_primary && engine_unsure(e, q->slot) && !atomic_load(&q->admin_down) &&
			    now - atomic_load(&q->last_rx_ns) < q->lease_ns) {
				atomic_store(&q->recheck_ns, now);
				log_info("peer %s: to compare data with once it is back (%s)", q->addr, why);
			}
			continue;
		}
		/* (a connected Primary this node is unsure of, after it became a
		 * copy of another peer: compared now, not when it next returns) */
		int unsure = engine_unsure(e, q->slot);
		if (!q->deferred && !q->waited && !(unsure && (lost_primary || atomic_load(&q->peer_role) == ROLE_PRIMARY)))
			continue;
		atomic_store(&q->recheck_ns, now_ns());
		log_info("peer %s: comparing data again (%s)", q->addr, why);
		disconnect_sockets(q);
	}
}

/* This node becomes SyncTarget of p: drop the links where it is SyncSource. */
void kick_sources(struct peer *p)
{
	struct engine *e = p->e;
	for (int i = 0; i < e->npeers; i++) {
		struct peer *q = sibling(e, i);
		if (q == p || !connected(q) || atomic_load(&q->repl) != RS_SYNC_SOURCE)
			continue;
		atomic_store(&q->recheck_ns, now_ns());
		log_info("peer %s: resync to it stopped: this node is SyncTarget of %s now", q->addr, p->ph->name);
		disconnect_sockets(q);
	}
}

/* Tell every connected peer but `except` this node's state. */
void peers_state_changed(struct engine *e, struct peer *except)
{
	for (int i = 0; i < e->npeers; i++) {
		struct peer *q = sibling(e, i);
		if (q != except && connected(q))
			send_state(q);
	}
}

int peer_slot(struct peer *p)
{
	return p->slot;
}

static int mirror_verdict(int v)
{
	return v >= 0 && v < V_TWO_PRIMARIES ? (int)decision_mirror((enum decision)v) : v;
}

/* Exchange verdicts (P_DECISION) on the data channel before anything is
 * done about them. -EAGAIN (handshake again, nothing changed) when the peer
 * hung up or disagrees. */
int confirm(struct peer *p, int verdict)
{
	uint8_t b[4];
	struct wire_hdr w;
	uint32_t theirs = 0;
	char why[96];
	if (p->no_confirm)
		return 0;
	codec_encode_decision(b, (uint32_t)verdict);
	int rc = send_pkt(p, CH_DATA, P_DECISION, 0, 0, b, 4, NULL, 0);
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(p->dfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (!rc)
		rc = hs_recv_hdr(p->dfd, &w);
	if (!rc && w.len > sizeof b)
		rc = -EPROTO;
	if (!rc)
		rc = read_full(p->dfd, b, w.len);
	if (!rc)
		rc = codec_decode_decision(&w, b, &theirs, why, sizeof why);
	tv.tv_sec = 0;
	setsockopt(p->dfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (!rc && (int)theirs != mirror_verdict(verdict)) {
		set_reason(p, "the peer reached another decision (%u, this node %d); connecting again", theirs, verdict);
		return -EAGAIN;
	}
	if (rc) {
		set_reason(p, "the peer did not confirm the connection decision (%s); connecting again",
			   rc == -EPROTO ? "unexpected packet" : strerror(-rc));
		return -EAGAIN;
	}
	return 0;
}

static void side_of_hello(struct side *s, const struct pkt_hello *h)
{
	uint32_t f = h->flags;
	memset(s, 0, sizeof *s);
	s->disk = h->disk;
	s->primary = h->role == ROLE_PRIMARY;
	for (int i = 0; i < G_COUNT; i++)
		s->uuid[i] = h->uuid[i];
	s->oos = h->oos;
	s->unsure = !!(f & HF_UNSURE);
	s->node_id = (int)h->node_id;
	s->crashed_primary = !!(f & HF_CRASHED_PRIMARY);
	s->discard_my_data = !!(f & HF_DISCARD_MY_DATA);
	s->gen_time = h->gen_time;
	s->resync_from = (f & HF_RESUMABLE) ? s->uuid[G_BITMAP] : 0;
}

/* One handshake's verdict and what it rests on: both HELLOs as sent. */
struct agreement {
	const struct pkt_hello *mine, *hello; /* this side's HELLO as sent, the peer's */
	struct side me, them;
	uint32_t my_flags, peer_flags;  /* HELLO_FLAGS: HF_* */
	enum decision d;                /* decide_sync's decision */
	enum decision r;                /* a split brain's resolution (D_SPLIT_BRAIN: none) */
	int verdict;                    /* what both sides confirm: a decision or a V_* refusal */
	int pri_lost;                   /* the resolution made this Primary the victim */
	const struct side *diskless;    /* the side whose disk failed, NULL none */
	char why[128];                  /* the split-brain policy that resolved it */
};

/* The HELLO may have waited a long time (the peer's side of the link was
 * down while the dialer's HELLO sat in a proxy or a socket): decide only on
 * what is still true here. (The out-of-sync count may grow meanwhile; only
 * whether it is zero changes decisions.) So for "SyncTarget of another
 * peer": a SyncTarget whose source died during the handshake deferred its
 * resync from this peer for a resync that no longer ran, and nothing asked
 * again (its "resync stopped" came while this link was not up). A told
 * Primary gone meanwhile: third_primary_changed after agree() */
static int hello_stale(struct peer *p, const struct side *me, uint32_t my_flags)
{
	struct engine *e = p->e;
	uint64_t u[UUID_COUNT];
	int stale = 0;
	void *src = engine_sync_source(e);

	hello_uuids(p, u);
	for (int i = 0; i < G_COUNT; i++)
		stale |= me->uuid[i] != u[i];
	stale |= !(my_flags & HF_BUSY_TARGET) != !(src && src != p);
	return stale || me->disk != atomic_load(&e->dstate) ||
	       me->primary != (atomic_load(&e->role) == ROLE_PRIMARY) || !me->oos != !engine_oos(e, p->slot) ||
	       me->crashed_primary != e->crashed_primary;
}

/* The verdict from both HELLOs, without side effects: both sides compute it
 * from the same two HELLOs, so they reach mirror images. */
static void agree_verdict(struct peer *p, struct agreement *a)
{
	const struct side *me = &a->me, *them = &a->them;
	int several = p->e->npeers > 1;

	a->d = a->r = D_NO_SYNC;
	/* a node whose disk failed can serve only through a peer that has its
	 * latest data: not one it moved away from while they were apart */
	a->diskless = me->disk == DS_DISKLESS ? me : them->disk == DS_DISKLESS ? them : NULL;
	const struct side *other = a->diskless == me ? them : me;
	if (a->diskless && a->diskless->uuid[G_BITMAP] && a->diskless->uuid[G_BITMAP] == other->uuid[G_CURRENT]) {
		a->verdict = V_STALE_FOR_DISKLESS;
		return;
	}
	if (me->primary && them->primary && !p->allow_two) {
		a->verdict = V_TWO_PRIMARIES;
		return;
	}
	if (!p->allow_two && ((me->primary && (a->peer_flags & HF_THIRD_PRIMARY)) ||
			      (them->primary && (a->my_flags & HF_THIRD_PRIMARY)))) {
		a->verdict = V_THIRD_PRIMARY;
		return;
	}
	a->d = decide_sync(me, them);
	if (a->d == D_SPLIT_BRAIN)
		a->r = resolve_split_brain(me, them, &p->splitbrain, &a->pri_lost, a->why);
	a->verdict = a->d == D_UNRELATED ? V_UNRELATED
		     : a->d == D_SPLIT_BRAIN && a->r == D_SPLIT_BRAIN ? V_SPLIT_BRAIN
		     : (int)(a->d == D_SPLIT_BRAIN ? a->r : a->d);
	if (several && a->verdict < V_TWO_PRIMARIES)
		a->verdict = multi_verdict(a->verdict, a->mine, a->hello);
	/* two Secondaries that cannot tell how their data relates, while a
	 * third node is Primary: that one relates to each and syncs them */
	if (several && (a->verdict == V_SPLIT_BRAIN || a->verdict == V_UNRELATED || a->d == D_SPLIT_BRAIN) &&
	    !me->primary && !them->primary && ((a->my_flags | a->peer_flags) & HF_THIRD_PRIMARY))
		a->verdict = V_DEFERRED;
}

/* A deferred resync (several disk peers): connected, no resync now; a third
 * node is Primary (it syncs the one behind), or the one behind syncs from
 * another peer first. The decision becomes "no sync". */
static void agree_defer(struct peer *p, struct agreement *a)
{
	int related = a->d != D_SPLIT_BRAIN && a->d != D_UNRELATED;
	/* (unrelated: the one apart from the Primary is the one behind) */
	int behind = a->d == D_TARGET_FULL || a->d == D_TARGET_BITMAP ||
		     (!related && !(a->my_flags & HF_THIRD_PRIMARY) && (a->peer_flags & HF_THIRD_PRIMARY));

	log_info("peer %s: connected; resync %s deferred: %s", p->addr, behind ? "to this node" : "from this node",
		 !related ? "how the two relate is not known here; the Primary resyncs the one behind"
		 : (a->my_flags | a->peer_flags) & HF_BUSY_TARGET ? "the node behind is SyncTarget of another peer"
								 : "a third node is Primary and resyncs the node behind");
	if (behind)
		outdate_behind(p, "a peer has newer data (resync deferred)");
	a->d = D_NO_SYNC;
	a->verdict = D_NO_SYNC;
}

/* A split brain: resolved by policy (then a->d is the resolution), or a
 * refusal with the reason and the split-brain handler. 0 or <0 to drop. */
static int agree_split_brain(struct peer *p, struct agreement *a)
{
	struct engine *e = p->e;
	const struct side *me = &a->me, *them = &a->them;

	if (!p->splitbrain_retrying)
		atomic_fetch_add(&p->split_brains, 1);
	p->splitbrain_retrying = 0;
	if (a->r == D_SPLIT_BRAIN) {
		set_reason(p, "split brain: both nodes changed the data since generation %016llx (%llu and "
			   "%llu blocks), not resolved automatically (%s). Pick the node whose changes to "
			   "drop: 'dipole connect %s --discard-my-data' there, 'dipole connect %s' on the other",
			   (unsigned long long)(me->uuid[G_BITMAP] ? me->uuid[G_BITMAP] : me->uuid[G_HIST0]),
			   (unsigned long long)me->oos, (unsigned long long)them->oos, a->why, e->res, e->res);
		/* several disks, two Secondaries: a Primary may yet bring both to
		 * the same data; ask again later (counted and handled once) */
		if (e->npeers > 1 && !me->primary && !them->primary) {
			if (!p->splitbrain_retried)
				handler_run(p->r, "split-brain", p->me, p->ph, 0);
			p->splitbrain_retried = p->splitbrain_retrying = 1;
			return -EALREADY;
		}
		handler_run(p->r, "split-brain", p->me, p->ph, 0);
		return -EXDEV;
	}
	log_warn("peer %s: split brain detected and resolved by %s: %s", p->addr, a->why,
		 a->r == D_SOURCE_BITMAP ? "this node's data is kept and sent to the peer"
					 : "this node's changes since the split are discarded (resync from the peer)");
	set_reason(p, "split brain resolved automatically (%s); this node %s", a->why,
		   a->r == D_SOURCE_BITMAP ? "kept its data" : "was the victim");
	if (a->pri_lost)
		handler_run(p->r, "pri-lost-after-sb", p->me, p->ph, 0);
	a->d = a->r;
	return 0;
}

/* The confirmed verdict, before anything starts: refusals (reason set,
 * <0), a deferred resync, an unsure pair, a split brain. 0: a->d is what
 * the connection does. */
static int agree_settle(struct peer *p, struct agreement *a)
{
	const struct side *me = &a->me, *them = &a->them;

	if (a->verdict == V_TWO_PRIMARIES) {
		set_reason(p, "both nodes are Primary and allow-two-primaries is not set; not connecting");
		return -EBUSY;
	}
	if (a->verdict == V_THIRD_PRIMARY) {
		set_reason(p, "%s is Primary while %s is connected to another Primary; not connecting (retrying: it "
			   "connects once one of them is Secondary)", me->primary ? "this node" : p->ph->name,
			   me->primary ? p->ph->name : "this node");
		return -EALREADY;
	}
	p->deferred = a->verdict == V_DEFERRED;
	p->waited = a->verdict == D_WAIT && p->e->npeers > 1;
	if (a->verdict == V_DEFERRED) {
		agree_defer(p, a);
	} else if (p->e->npeers > 1 && a->verdict != (int)a->d && a->verdict < V_TWO_PRIMARIES) {
		log_info("peer %s: %s becomes %s: the two may differ in writes of a lost Primary (unsure)",
			 p->addr, decision_name(a->d), decision_name((enum decision)a->verdict));
		a->d = (enum decision)a->verdict;
	}
	if (a->verdict == V_STALE_FOR_DISKLESS) {
		set_reason(p, "%s disk failed (Diskless) after writes %s never got: serving through it would return "
			   "old data; not connecting. Bring the failed disk back (down, fix, up) to resync",
			   a->diskless == me ? "this node's" : "the peer's", a->diskless == me ? "the peer" : "this node");
		return -EXDEV;
	}
	if (a->d == D_SPLIT_BRAIN)
		return agree_split_brain(p, a);
	if (a->d == D_UNRELATED) {
		set_reason(p, "unrelated data: local generation %016llx, peer %016llx, no common history; refusing "
			   "to sync (wrong disk or another resource's disk?)",
			   (unsigned long long)me->uuid[G_CURRENT], (unsigned long long)them->uuid[G_CURRENT]);
		return -EXDEV;
	}
	const struct side *part = a->d != D_WAIT ? NULL : decide_newer_partial(me, them) ? me
				 : decide_newer_partial(them, me) ? them : NULL;
	if (part) {
		char why[240];
		snprintf(why, sizeof why, "%s Inconsistent disk holds writes of generation %016llx, newer than %s "
			 "data: neither is a resync source; waiting for a node with that generation (or 'dipole "
			 "primary --force' on the node whose data to keep)", part == me ? "this node's" : "the peer's",
			 (unsigned long long)part->uuid[G_CURRENT], part == me ? "the peer's" : "this node's");
		set_reason(p, "%s", why);
		log_warn("peer %s: %s", p->addr, why);
		return 0;
	}
	set_reason(p, "%s", "");
	return 0;
}

/* This node's Outdated or Consistent disk is UpToDate again, settled by
 * the handshake with p: every connected peer is told, not p only, and a
 * peer it agreed to "wait" with (this disk was no sync source then) is
 * compared again, or an Inconsistent peer such as a SyncTarget restarted
 * mid-resync stays so for ever (docs/failures.md "Three disks, a resync
 * that never restarts"). */
static void uptodate_again(struct peer *p, const char *why)
{
	engine_set_uptodate(p->e, why);
	send_state(p);
	peers_state_changed(p->e, p);
	kick_others(p, "this node's disk is UpToDate again");
}

/* After a connection decision (agree_apply): what was unsure between the
 * two, or marked by one for the other, that the decision settles. */
static void settle_unsure(struct peer *p, const struct agreement *a)
{
	struct engine *e = p->e;
	const struct side *me = &a->me, *them = &a->them;

	/* a comparison due since a Primary was lost is done only if the two
	 * compared: not while either still counts a third node as its Primary
	 * (decide_multi leaves the data alone then), not when the resync was
	 * deferred. Cleared anyway, `primary` here was allowed at once, and
	 * as Primary this node was the source of the comparison that followed
	 * once the peer saw the Primary gone too: writes of the lost Primary
	 * that only the peer had were overwritten (three_disks_compare.sh) */
	if (!p->deferred && !((a->my_flags | a->peer_flags) & HF_THIRD_PRIMARY))
		atomic_store(&p->recheck_ns, 0);
	/* nothing to compare: whatever was unsure between the two is settled.
	 * Both UpToDate, or both whole and with the same last write of one
	 * Primary (decide_multi's equal stamps): an Outdated node about to be
	 * promoted stayed unsure of its peer for good (four_disks.sh) */
	struct mside ms, mt;
	mside_of_hello(&ms, a->mine);
	mside_of_hello(&mt, a->hello);
	int same_last = ms.stamp_from >= 0 && ms.stamp_from == mt.stamp_from && ms.stamp == mt.stamp &&
			me->disk >= DS_OUTDATED && them->disk >= DS_OUTDATED;
	if (a->d == D_NO_SYNC && !((a->my_flags | a->peer_flags) & HF_THIRD_PRIMARY) && !p->deferred &&
	    ((me->disk == DS_UPTODATE && them->disk == DS_UPTODATE) || same_last) && !me->primary && !them->primary)
		engine_set_unsure(e, p->slot, 0);
	/* two in-sync Secondaries of the Primary: what this node marked for the
	 * peer is moot (decide.h); left, it stayed "out of sync" and deferred
	 * for good, since the Primary has nothing to resync (four_disks.sh) */
	uint64_t moot = a->d == D_NO_SYNC && !p->deferred && decide_in_sync_with_primary(&ms, &mt)
				? engine_oos(e, p->slot) : 0;
	if (moot) {
		engine_clear_oos(e, p->slot, 0, e->bm_bits);
		log_info("peer %s: both are in-sync Secondaries of the Primary: %llu blocks marked out of sync for it "
			 "are moot, cleared", p->addr, (unsigned long long)moot);
	}
}

/* The connection is established with decision a->d: the bookkeeping, the
 * disk state it settles, and the resync it starts. 0 or <0 to drop. */
static int agree_apply(struct peer *p, struct agreement *a)
{
	struct engine *e = p->e;
	const struct side *me = &a->me, *them = &a->them;
	enum decision d = a->d;

	log_info("peer %s: connected; local %s %016llx, peer %s %016llx: %s", p->addr,
		 disk_state_name((enum disk_state)me->disk), (unsigned long long)me->uuid[G_CURRENT],
		 disk_state_name((enum disk_state)them->disk), (unsigned long long)them->uuid[G_CURRENT],
		 decision_name(d));
	atomic_store(&p->peer_was_primary, a->hello->role == ROLE_PRIMARY);
	/* before any held write resumes: a Primary's next write without some
	 * other peer is in a new generation (engine.h regen_due) */
	if (atomic_load(&e->role) == ROLE_PRIMARY)
		engine_peer_back(e);
	atomic_store(&p->primary_at_loss, 0);
	atomic_store(&p->hold_off, 0);
	/* a node about to be SyncTarget resumes only once the source's bitmap
	 * is merged: until then a read would return its old data */
	int target = d == D_TARGET_FULL || d == D_TARGET_BITMAP;
	atomic_store(&p->sync_pending, target);
	/* the filesystem this node mounted is about to change under it when
	 * the peer wrote without this node: a new generation, or a Primary.
	 * Fence before anything resumes: held writes of the old epoch must
	 * fail, not go out on top of the peer's (docs/dipolefs.md "A cut-off
	 * owner"). The same generation and a Secondary peer is a resync of
	 * this node's own writes in flight at the cut (and of the activity
	 * log the peer marks for a lost Primary): nobody went on, the held
	 * writes are sent again over it (fs_topo.sh) */
	if (target && (me->uuid[G_CURRENT] != them->uuid[G_CURRENT] || them->primary)) {
		char why[160];
		snprintf(why, sizeof why, "peer %s has data this node lacks (it went on without this node)",
			 p->ph->name);
		engine_fs_fence(e, why);
	}
	if (engine_is_suspended(e) && !target)
		engine_resume(e, "the peer is back");
	/* an Outdated (quorum lost) or Consistent (just started, with quorum)
	 * disk is current again once it meets a peer with the newest data, or
	 * when the two of them are every disk of the resource. Not by a
	 * deferred resync: its "no sync" says only that a third node (the
	 * Primary) syncs the one behind, not that the two agree; a node back
	 * from down took it as agreement and could be promoted without the
	 * Primary's writes (three_disks_return.sh) */
	int mine_ds = atomic_load(&e->dstate);
	if ((mine_ds == DS_OUTDATED || mine_ds == DS_CONSISTENT) && !p->deferred &&
	    (d == D_NO_SYNC || d == D_SOURCE_BITMAP || d == D_SOURCE_FULL) &&
	    (them->disk == DS_UPTODATE || all_disks_here(p))) {
		uptodate_again(p, them->disk == DS_UPTODATE ? "the peer with the newest data is back"
							    : "every disk of the resource is connected again");
	}
	/* (widens the window between the HELLO check and Established:
	 * three_disks_handshake.sh) */
	test_pause("agree-apply");
	uint64_t t0 = now_ns();
	atomic_store(&p->last_rx_ns, t0);
	atomic_store(&p->lease_until_ns, t0 + p->lease_ns);
	atomic_fetch_add(&p->conn_seq, 1);
	peer_set_repl(p, RS_ESTABLISHED, "connected and agreed");
	atomic_store(&p->expect_target, target);
	atomic_store(&p->await_peer_bm, d == D_SOURCE_BITMAP);
	p->established = 1;
	p->splitbrain_retried = p->splitbrain_retrying = 0;
	/* this node was forced UpToDate (`primary --force`) after its HELLO
	 * was checked, while the link was not yet Established: the full sync
	 * its promotion starts for Established peers skipped this one. Only
	 * then: a peer that is Inconsistent for another reason (SyncTarget
	 * of a third node, a deferred resync) has its source already */
	if ((d == D_WAIT || d == D_NO_SYNC) && !p->deferred && !me->primary && me->disk != DS_UPTODATE &&
	    atomic_load(&e->role) == ROLE_PRIMARY && atomic_load(&e->dstate) == DS_UPTODATE)
		peer_state_changed(p);
	settle_unsure(p, a);
	/* the activity log's marks are in the bitmap now, part of this decision */
	e->crashed_primary = 0;
	if (d == D_SOURCE_FULL) {
		engine_mark_all_oos(e, p->slot);
		rs_start(p);
	} else if (d == D_TARGET_BITMAP) {
		return send_bitmap(p, P_PEER_BITMAP, P_PEER_BITMAP_DONE);
	}
	return 0;
}

/* Both sides apply decide_sync() (and, for a split brain, the configured
 * policy) to the same two HELLOs — each side's own as sent, not its state
 * now — so they reach mirror-image decisions; each acts only after the
 * other confirmed (confirm). Three steps: the verdict (no side effects),
 * the confirmation over the network, then settle and apply. Returns 0 to
 * run, <0 to drop the connection (reason set). */
int agree(struct peer *p, const struct pkt_hello *hello, const struct pkt_hello *mine)
{
	struct agreement a = { .mine = mine, .hello = hello };
	int rc;

	side_of_hello(&a.me, mine);
	side_of_hello(&a.them, hello);
	a.my_flags = mine->flags;
	a.peer_flags = hello->flags;
	/* (widens the window between the HELLO and its check:
	 * three_disks_source_lost.sh) */
	test_pause("agree");
	if (hello_stale(p, &a.me, a.my_flags)) {
		set_reason(p, "local state changed during the handshake with %s; connecting again", p->ph->name);
		return -EAGAIN;
	}
	/* an older peer saw two history entries of this node's, not eight: the
	 * verdict rests on what both sides saw, or they would disagree */
	if (!(a.my_flags & a.peer_flags & HF_HISTORY))
		memset(a.me.uuid + G_HIST1 + 1, 0, (G_COUNT - G_HIST1 - 1) * sizeof *a.me.uuid);
	/* sizes: both sides compute the same verdict from the two HELLOs */
	uint64_t agreed;
	char why[256];
	if (resize_agree(mine->size, mine->disk, hello->size, hello->disk, &agreed, why)) {
		set_reason(p, "%s", why);
		return -EXDEV;
	}
	agree_verdict(p, &a);
	/* both sides must have reached mirror-image verdicts before either acts:
	 * one whose HELLO went stale has hung up instead of answering */
	if ((rc = confirm(p, a.verdict)))
		return rc;
	atomic_store(&p->discard_my_data, 0); /* used up by this handshake */
	atomic_store(&p->peer_third_primary, !!(a.peer_flags & HF_THIRD_PRIMARY));
	atomic_store(&p->told_third_primary, !!(a.my_flags & HF_THIRD_PRIMARY));
	struct peer *q;
	if (peer_take_state(p, hello->role, hello->disk, "handshake", &q) && a.verdict != V_TWO_PRIMARIES &&
	    a.verdict != V_THIRD_PRIMARY) {
		/* (promoted here, or another peer reported its promotion, after
		 * the HELLOs: the next ones say so) */
		set_reason(p, "Primary while %s became Primary during the handshake, and allow-two-primaries is "
			   "not set; connecting again", q ? q->ph->name : "this node");
		return -EAGAIN;
	}
	atomic_store(&p->peer_uuid, a.them.uuid[G_CURRENT]);
	atomic_store(&p->peer_history[0], a.them.uuid[G_HIST0]);
	atomic_store(&p->peer_history[1], a.them.uuid[G_HIST1]);
	memcpy(p->hs_uuid, a.them.uuid, sizeof p->hs_uuid);
	p->uuid_before = 0;
	p->moved_as_primary = 0;
	if ((rc = agree_settle(p, &a)))
		return rc;
	if (agreed != atomic_load(&p->e->size) || agreed != p->e->sb.la_size) {
		if ((rc = resize_set(p->e, agreed, 0))) {
			set_reason(p, "cannot take the agreed size %llu bytes: %s", (unsigned long long)agreed,
				   strerror(-rc));
			return rc;
		}
	}
	/* before the connection counts as established: whoever sees the peer
	 * connected (startup's become-primary-on) sees its ownership too */
	atomic_store(&p->peer_fs_owner, !!(hello->flags & HF_FS_OWNER));
	if (hello->flags & HF_FS_OWNER)
		log_info("peer %s: owns the mounted filesystem", p->addr);
	if ((rc = agree_apply(p, &a)))
		return rc;
	follow_primary(p, 1);
	engine_peer_changed(p->e);
	/* (a told Primary may have gone while this HELLO was on its way) */
	third_primary_changed(p->e);
	return 0;
}

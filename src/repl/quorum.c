/* quorum — see quorum.h and docs/quorum.md. */
#include "quorum.h"
#include "engine.h"
#include "codec.h"
#include "hs.h"
#include "listener.h"
#include "log.h"
#include "quorum_rule.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_NODES 32
#define TICK_MS 50
/* the quorum thread notices an expired lease within a tick; the side that
 * goes on waits this much longer than the lease */
#define MARGIN_NS (250ull * 1000000ull)
#define AGE_NEVER 0xffffffffu

/* P_VSTATE payload (vote links): this node's role u8, disk u8, quorum u8,
 * going_on_without u8 (the disk peer this node asks to be recorded as
 * outdated so it may go on alone, 0xff none), seen u32 (node ids whose vote
 * it counts now), uptime_ms u32, pad u32, current generation u64; then per
 * node id 0..31: age_ms u32 since it last heard from that node (AGE_NEVER:
 * not since it started), disk u8, role u8, quorum u8, outdated_by u8 (the
 * node this voter recorded as having gone on without it, 0xff none). */
#define VS_HDR 24
#define VS_BYTES (VS_HDR + 8 * MAX_NODES)

#define NONE 0xff
struct vnode { uint32_t age_ms; int disk, role, quorum, outdated_by; };
struct vstate {
	int role, disk, quorum, going_on_without, claim;
	uint32_t seen, uptime_ms;
	uint64_t uuid;
	struct vnode n[MAX_NODES];
};

struct vlink {
	struct quorum *q;
	const struct cfg_host *h;
	int dialer;
	pthread_t thr;
	int running;
	/* lock: in_fd, st, have_st, st_rx, reason; taken by the link's thread,
	 * the listener (vl_inbound), status readers, and the rules inside
	 * q->lock (left_behind, alone_rule): q->lock -> l->lock, a leaf.
	 * cond (with lock): the accepting side waits for an inbound channel. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int in_fd;                 /* handshaken inbound connection for the thread */
	_Atomic int connected;
	_Atomic uint64_t lease_until, last_rx;
	struct vstate st;          /* the other side's last report */
	int have_st;
	uint64_t st_rx;            /* when it arrived (now_ns) */
	char reason[200];
	int wake[2];
	struct hs_conf hs;         /* the quorum's, with this link's peer id */
};

struct quorum {
	struct engine *e;          /* NULL on a diskless host */
	const struct replica *peer; /* the disk peer when there is exactly one, else NULL */
	struct replica peers[MAX_NODES]; /* every disk peer (the engine's replicas at start) */
	const struct cfg_host *phosts[MAX_NODES];
	int npeers, nph;
	int multi;                 /* more than one disk peer (docs/quorum.md, "Three or more disks") */
	uint64_t short_seq;        /* multi: a write lacked disks at this connection count (+1); 0 none (lock) */
	char short_why[200];       /* (lock) */
	const struct cfg_resource *r;
	const struct cfg_host *me, *peer_host;
	struct hs_conf hs;
	char secret[256];
	struct vlink links[MAX_NODES];
	int nlinks;
	_Atomic int enabled;       /* cleared by quorum_stop: the plain two-node rules apply */
	int need, hosts, io_error;
	int ping_int_ms, ping_timeout_ms, connect_int_ms;
	uint64_t lease_ns, started;
	_Atomic int have, votes;
	_Atomic int stopping;
	pthread_t thr;
	int running;
	int wake[2];

	/* Lock order: eval_lock -> lock -> (a vote link's lock | the engine's
	 * lock). eval_lock: one evaluation at a time, and a write policy
	 * decision on the facts of one evaluation (quorum thread, and frontend
	 * threads in quorum_decide); held while the rules call the engine
	 * (suspend, new generation) and the replicas (view, state_changed),
	 * so it comes before every engine and peer lock. lock: the fields below
	 * and short_seq/short_why; also taken alone by status readers and
	 * vstate_build. */
	pthread_mutex_t eval_lock;
	pthread_mutex_t lock;
	char block[256];           /* why I/O is held now ("" = not) */
	int suspended_by_us;       /* engine_suspend() was ours */
	uint64_t alone_seq;        /* disk-peer connection the alone decision is for; 0 none */
	int alone;                 /* may complete writes the (lost) disk peer did not get */
	int want_alone;            /* asking the voters to record the lost peer as outdated */
	int claim;                 /* went on without the peer: told to voters until they meet again */
	uint64_t want_since;       /* when (now_ns); only reports after it count */
	/* as a voter: outdated_by[Y] = X: X went on without Y, so Y may not go
	 * on alone (it lacks X's writes) until they have met again; recorded
	 * only once this voter has seen every disk host since it started
	 * (complete), so a restarted voter cannot endorse a stale node */
	int outdated_by[MAX_NODES];
	unsigned seen_since_start; /* disk hosts this voter has been connected to */
	int complete;
};

static int opt_int(const struct cfg_resource *r, enum cfg_sect s, const char *key, int def)
{
	const char *v = cfg_get(r, s, key);
	long x;
	return v && !parse_int(v, 0, 1000000, &x) ? (int)x : def;
}

static int lease_fresh(uint64_t until, uint64_t now)
{
	return until > now;
}

/* ------------------------------------------------------- vote links */

static uint8_t my_disk(struct quorum *q)
{
	return (uint8_t)(q->e ? atomic_load(&q->e->dstate) : DS_DISKLESS);
}

static uint8_t my_role(struct quorum *q)
{
	return (uint8_t)(q->e ? atomic_load(&q->e->role) : ROLE_SECONDARY);
}

static void vstate_build(struct quorum *q, uint8_t *b)
{
	uint64_t now = now_ns();
	struct pkt_vstate v = { .role = (uint8_t)my_role(q), .disk = (uint8_t)my_disk(q),
				.quorum = (uint8_t)(atomic_load(&q->have) == 1) };
	pthread_mutex_lock(&q->lock);
	/* VSTATE_CLAIM: a claim (this node did go on alone), not just a request */
	v.going_on_without = (q->want_alone || q->claim) && q->peer_host
				     ? (uint8_t)(q->peer_host->node_id | (q->claim ? VSTATE_CLAIM : 0))
				     : NONE;
	for (int i = 0; i < MAX_NODES; i++) {
		v.n[i].age_ms = AGE_NEVER;
		v.n[i].outdated_by = q->outdated_by[i] < 0 ? NONE : (uint8_t)q->outdated_by[i];
	}
	pthread_mutex_unlock(&q->lock);
	for (int i = 0; i < q->npeers; i++) {
		struct replica_view rv;
		q->peers[i].ops->view(q->peers[i].ctx, &rv);
		int id = q->phosts[i]->node_id;
		if (rv.usable)
			v.seen |= 1u << id;
		if (rv.last_rx_ns)
			v.n[id].age_ms = (uint32_t)((now - rv.last_rx_ns) / 1000000);
		v.n[id].disk = (uint8_t)rv.disk;
		v.n[id].role = (uint8_t)rv.role;
		v.n[id].quorum = (uint8_t)rv.usable;
	}
	for (int i = 0; i < q->nlinks; i++) {
		struct vlink *l = &q->links[i];
		int id = l->h->node_id;
		uint64_t rx = atomic_load(&l->last_rx);
		if (atomic_load(&l->connected) && lease_fresh(atomic_load(&l->lease_until), now))
			v.seen |= 1u << id;
		if (rx)
			v.n[id].age_ms = (uint32_t)((now - rx) / 1000000);
		pthread_mutex_lock(&l->lock);
		v.n[id].disk = (uint8_t)(l->have_st ? l->st.disk : NONE);
		v.n[id].role = (uint8_t)(l->have_st ? l->st.role : NONE);
		v.n[id].quorum = (uint8_t)(l->have_st ? l->st.quorum : 0);
		pthread_mutex_unlock(&l->lock);
	}
	v.uptime_ms = (uint32_t)((now - q->started) / 1000000);
	v.uuid = q->e ? q->e->sb.uuid[UUID_CURRENT] : 0;
	codec_encode_vstate(b, &v);
}

_Static_assert(VS_BYTES == VSTATE_BYTES && MAX_NODES == VSTATE_NODES && NONE == VSTATE_NONE, "P_VSTATE layout");

/* A vote report the codec accepted (-EPROTO, why set, if not). */
static int vstate_parse(const struct wire_hdr *h, const uint8_t *b, struct vstate *s, char *why, size_t whylen)
{
	struct pkt_vstate v;
	int rc = codec_decode_vstate(h, b, &v, why, whylen);
	if (rc)
		return rc;
	s->role = v.role;
	s->disk = v.disk;
	s->quorum = v.quorum;
	s->going_on_without = v.going_on_without == NONE ? NONE : v.going_on_without & ~VSTATE_CLAIM;
	s->claim = v.going_on_without != NONE && (v.going_on_without & VSTATE_CLAIM);
	s->seen = v.seen;
	s->uptime_ms = v.uptime_ms;
	s->uuid = v.uuid;
	for (int i = 0; i < MAX_NODES; i++) {
		s->n[i].age_ms = v.n[i].age_ms;
		s->n[i].disk = v.n[i].disk;
		s->n[i].role = v.n[i].role;
		s->n[i].quorum = v.n[i].quorum;
		s->n[i].outdated_by = v.n[i].outdated_by < MAX_NODES ? v.n[i].outdated_by : -1;
	}
	return 0;
}

static const struct cfg_host *host_by_id(const struct quorum *q, int id)
{
	for (int i = 0; i < q->r->nhosts; i++)
		if (q->r->hosts[i].node_id == id)
			return &q->r->hosts[i];
	return NULL;
}

/* Is node id's vote link connected with a fresh lease? */
static int sees(struct quorum *q, int id)
{
	uint64_t now = now_ns();
	for (int i = 0; i < q->nlinks; i++)
		if (q->links[i].h->node_id == id)
			return atomic_load(&q->links[i].connected) && lease_fresh(atomic_load(&q->links[i].lease_until), now);
	return 0;
}

/* Could node id be asking this voter for the opposite record? While its
 * vote link is fresh and it reported itself Primary, or asking to go on
 * without a peer. A Secondary that lost its disk peer has nothing to
 * write and does not ask. q->lock held (then the link's lock). */
static int rival(struct quorum *q, int id)
{
	for (int i = 0; i < q->nlinks; i++) {
		struct vlink *l = &q->links[i];
		if (l->h->node_id != id)
			continue;
		if (!sees(q, id))
			return 0;
		pthread_mutex_lock(&l->lock);
		int r = l->have_st && (l->st.role == ROLE_PRIMARY || l->st.going_on_without != NONE);
		pthread_mutex_unlock(&l->lock);
		return r;
	}
	return 0;
}

/* As a voter, take in node x's report (q->lock held): record "x went on
 * without y" when x asks and this voter may endorse it; forget a record
 * once the two report each other connected again. */
static void vote_record(struct quorum *q, int x, const struct vstate *s)
{
	for (int y = 0; y < MAX_NODES; y++) {
		if ((q->outdated_by[y] == x && (s->seen & (1u << y))) || (y == x && q->outdated_by[x] >= 0 &&
									 (s->seen & (1u << q->outdated_by[x])))) {
			log_info("vote: %s and %s are connected again; forgetting that one went on without the other",
				 host_by_id(q, x)->name, host_by_id(q, y == x ? q->outdated_by[x] : y)->name);
			q->outdated_by[y == x ? x : y] = -1;
		}
	}
	q->seen_since_start |= 1u << x;
	if (!q->complete) {
		unsigned all = 0;
		for (int i = 0; i < q->r->nhosts; i++)
			if (!q->r->hosts[i].diskless)
				all |= 1u << q->r->hosts[i].node_id;
		q->complete = (q->seen_since_start & all) == all;
	}
	int y = s->going_on_without;
	if (y == NONE || !host_by_id(q, y) || q->outdated_by[y] == x)
		return;
	if (s->claim && q->outdated_by[x] == y)
		log_err("vote: %s and %s both went on without each other (split brain)", host_by_id(q, x)->name,
			host_by_id(q, y)->name);
	/* a claim is a fact (x wrote alone); a request is granted only by a
	 * voter that knows every disk host's claims and no conflicting record,
	 * and, while this voter still sees y Primary or asking too, only to
	 * the lower node-id (when both lost each other but reach this voter,
	 * both may ask: one goes on) */
	if (!s->claim && (!q->complete || q->outdated_by[x] >= 0 || q->outdated_by[y] >= 0 ||
			  (y < x && rival(q, y))))
		return;
	q->outdated_by[y] = x;
	log_warn("vote: %s goes on without %s; %s may not go on alone until they meet again",
		 host_by_id(q, x)->name, host_by_id(q, y)->name, host_by_id(q, y)->name);
}

static void vl_reason(struct vlink *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vl_reason(struct vlink *l, const char *fmt, ...)
{
	char buf[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&l->lock);
	int changed = strcmp(buf, l->reason);
	snprintf(l->reason, sizeof l->reason, "%s", buf);
	pthread_mutex_unlock(&l->lock);
	if (changed && buf[0])
		log_warn("vote link %s (%s): %s", l->h->name, l->h->address, buf);
}

static void vl_inbound(void *arg, int fd, const char *from)
{
	struct vlink *l = arg;
	struct pkt_hello hello, mine;
	int ch = -1;
	char why[256];
	hs_tune(fd);
	if (atomic_load(&l->q->stopping) || hs_handshake(&l->hs, fd, &ch, from, &hello, &mine, why)) {
		if (!atomic_load(&l->q->stopping))
			vl_reason(l, "%s", why);
		close(fd);
		return;
	}
	if (l->dialer) { /* (hs_handshake refused any channel but CH_VOTE) */
		hs_refuse(fd, "this node has the lower node-id and dials; do not dial it");
		close(fd);
		return;
	}
	pthread_mutex_lock(&l->lock);
	if (l->in_fd >= 0)
		close(l->in_fd);
	l->in_fd = fd;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	(void)!write(l->wake[1], "x", 1); /* a restarted peer: drop the old connection */
}

static int vl_connect(struct vlink *l)
{
	if (l->dialer) {
		int fd = hs_dial(l->h->address, l->wake[0]);
		if (fd < 0)
			return fd;
		struct pkt_hello hello, mine;
		int ch = CH_VOTE;
		char why[256];
		if (hs_handshake(&l->hs, fd, &ch, l->h->address, &hello, &mine, why)) {
			vl_reason(l, "%s", why);
			close(fd);
			return -EPROTO;
		}
		return fd;
	}
	pthread_mutex_lock(&l->lock);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 200 * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	if (l->in_fd < 0)
		pthread_cond_timedwait(&l->cond, &l->lock, &ts);
	int fd = l->in_fd;
	l->in_fd = -1;
	pthread_mutex_unlock(&l->lock);
	return fd >= 0 ? fd : -EAGAIN;
}

/* One connection: pings (lease), state reports both ways. */
static void vl_run(struct vlink *l, int fd)
{
	struct quorum *q = l->q;
	uint8_t b[VS_BYTES];
	uint64_t now = now_ns(), ping_out = 0, last_ping = 0, last_state = 0;
	char wb[64];

	while (read(l->wake[0], wb, sizeof wb) > 0)
		;
	atomic_store(&l->last_rx, now);
	atomic_store(&l->lease_until, now + q->lease_ns);
	atomic_store(&l->connected, 1);
	vl_reason(l, "%s", "");
	log_info("vote link %s (%s): connected", l->h->name, l->h->address);
	while (!atomic_load(&q->stopping)) {
		now = now_ns();
		if (ping_out && now - ping_out > (uint64_t)q->ping_timeout_ms * 1000000) {
			vl_reason(l, "no answer to ping within %d ms; dropping the vote link", q->ping_timeout_ms);
			break;
		}
		if (!ping_out && now - last_ping >= (uint64_t)q->ping_int_ms * 1000000) {
			if (hs_send(fd, P_PING, now, NULL, 0))
				break;
			ping_out = last_ping = now;
		}
		if (now - last_state >= TICK_MS * 4 * 1000000ull) {
			vstate_build(q, b);
			if (hs_send(fd, P_VSTATE, 0, b, VS_BYTES))
				break;
			last_state = now;
		}
		struct pollfd pf[2] = { { fd, POLLIN, 0 }, { l->wake[0], POLLIN, 0 } };
		int n = poll(pf, 2, TICK_MS);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && pf[1].revents) {
			pthread_mutex_lock(&l->lock);
			int replaced = l->in_fd >= 0;
			pthread_mutex_unlock(&l->lock);
			if (replaced || atomic_load(&q->stopping)) {
				if (replaced)
					vl_reason(l, "the other side connected again (it restarted); replacing the link");
				break;
			}
			while (read(l->wake[0], wb, sizeof wb) > 0)
				;
		}
		if (n <= 0 || !(pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		struct wire_hdr w;
		int rc = hs_recv_hdr(fd, &w);
		if (!rc && w.len > sizeof b)
			rc = -EMSGSIZE;
		if (!rc && w.len)
			rc = read_full(fd, b, w.len);
		if (rc) {
			vl_reason(l, "%s", rc == -EPROTO ? "bad packet magic; dropping the vote link"
				  : rc == -EMSGSIZE ? "oversized packet; dropping the vote link" : "connection lost");
			break;
		}
		now = now_ns();
		atomic_store(&l->last_rx, now);
		if (w.type == P_PING) {
			if (hs_send(fd, P_PING_ACK, w.id, NULL, 0))
				break;
		} else if (w.type == P_PING_ACK) {
			if (w.id == ping_out && ping_out) {
				atomic_store(&l->lease_until, ping_out + q->lease_ns);
				ping_out = 0;
			}
		} else if (w.type == P_VSTATE) {
			struct vstate s;
			char why[160];
			if (vstate_parse(&w, b, &s, why, sizeof why)) {
				vl_reason(l, "malformed state report (%s); dropping the vote link", why);
				break;
			}
			pthread_mutex_lock(&l->lock);
			l->st = s;
			l->have_st = 1;
			l->st_rx = now;
			pthread_mutex_unlock(&l->lock);
			pthread_mutex_lock(&q->lock);
			vote_record(q, l->h->node_id, &s);
			pthread_mutex_unlock(&q->lock);
		} else {
			vl_reason(l, "unexpected packet %s on a vote link; dropping it", codec_type_name(w.type));
			break;
		}
	}
	atomic_store(&l->connected, 0);
	close(fd);
	if (!atomic_load(&q->stopping))
		log_warn("vote link %s (%s): lost", l->h->name, l->h->address);
}

static void *vl_main(void *arg)
{
	pthread_setname_np(pthread_self(), "dp-votelink"); /* perf and top show what it is */
	struct vlink *l = arg;
	int backoff = 100;
	while (!atomic_load(&l->q->stopping)) {
		int fd = vl_connect(l);
		if (fd < 0) {
			if (l->dialer) {
				if (fd != -EPROTO)
					vl_reason(l, "cannot connect to %s: %s; retrying", l->h->address, strerror(-fd));
				struct pollfd pf = { l->wake[0], POLLIN, 0 };
				poll(&pf, 1, backoff);
				backoff = backoff * 2 > l->q->connect_int_ms ? l->q->connect_int_ms : backoff * 2;
			}
			continue;
		}
		backoff = 100;
		vl_run(l, fd);
	}
	return NULL;
}

/* ------------------------------------------------------- the rules */

static int count_votes(struct quorum *q, uint64_t now)
{
	int votes = 1;
	for (int i = 0; i < q->npeers; i++) {
		struct replica_view v;
		q->peers[i].ops->view(q->peers[i].ctx, &v);
		votes += v.usable;
	}
	for (int i = 0; i < q->nlinks; i++)
		votes += atomic_load(&q->links[i].connected) && lease_fresh(atomic_load(&q->links[i].lease_until), now);
	return votes;
}

/* Connections established with disk peers so far, plus one (never 0). */
static uint64_t conn_sum(struct quorum *q)
{
	uint64_t n = 1;
	for (int i = 0; i < q->npeers; i++) {
		struct replica_view v;
		q->peers[i].ops->view(q->peers[i].ctx, &v);
		n += v.conn_seq;
	}
	return n;
}

/* The voter that recorded this node's disk peer going on without it, or NULL. */
static const char *left_behind(struct quorum *q)
{
	for (int i = 0; i < q->nlinks; i++) {
		struct vlink *l = &q->links[i];
		pthread_mutex_lock(&l->lock);
		int od = l->have_st && atomic_load(&l->connected) && l->st.n[q->me->node_id].outdated_by >= 0;
		pthread_mutex_unlock(&l->lock);
		if (od)
			return l->h->name;
	}
	return NULL;
}

/* Why this Primary may not complete writes its lost disk peer did not get
 * ("" when it may). Called with q->lock held. */
static void alone_rule(struct quorum *q, const struct replica_view *pv, uint64_t now, char *why, size_t wl)
{
	const char *pn = q->peer_host->name;
	int me = q->me->node_id, peer = q->peer_host->node_id;
	int disk = atomic_load(&q->e->dstate);
	const char *recorder = left_behind(q);
	why[0] = 0;
	if (recorder) {
		q->want_alone = 0;
		snprintf(why, wl, "disk peer %s went on without this node (recorded by %s): this node lacks its writes "
			 "and waits until they meet again", pn, recorder);
		return;
	}
	if (disk != DS_UPTODATE) {
		snprintf(why, wl, "disk peer %s is gone and this disk is %s: the newest data may be there; I/O waits "
			 "until it is back", pn, disk_state_name((enum disk_state)disk));
		return;
	}
	if (!q->want_alone) {
		q->want_alone = 1;
		q->want_since = now;
	}
	/* the peer's lease ends at most `lease` after it last reached anyone;
	 * going on needs enough voters to have recorded the peer as outdated
	 * (after this node asked), so it cannot go on later without our writes */
	uint64_t gone = pv->last_rx_ns;
	int endorsed = 1;
	for (int i = 0; i < q->nlinks; i++) {
		struct vlink *l = &q->links[i];
		if (!atomic_load(&l->connected) || !lease_fresh(atomic_load(&l->lease_until), now))
			continue;
		pthread_mutex_lock(&l->lock);
		if (l->have_st) {
			const struct vnode *n = &l->st.n[peer];
			if (n->outdated_by == me && l->st_rx > q->want_since)
				endorsed++;
			if (!(l->st.seen & (1u << peer))) {
				uint64_t heard = n->age_ms != AGE_NEVER ? l->st_rx - (uint64_t)n->age_ms * 1000000
									 : l->st_rx - (uint64_t)l->st.uptime_ms * 1000000;
				if (heard > gone)
					gone = heard;
			}
		}
		pthread_mutex_unlock(&l->lock);
	}
	if (endorsed < q->need) {
		snprintf(why, wl, "disk peer %s is gone; writes wait until enough voters record that it must not go "
			 "on alone (%d of %d)", pn, endorsed, q->need);
		return;
	}
	if (now < gone + q->lease_ns + MARGIN_NS) {
		snprintf(why, wl, "disk peer %s is gone; writes wait until its lease has ended (%llu ms after it was "
			 "last heard) so it can no longer write", pn,
			 (unsigned long long)((q->lease_ns + MARGIN_NS) / 1000000));
		return;
	}
}

/* Apply a hold reason ("" = none) to the engine. q->lock held. */
static void apply(struct quorum *q, const char *why)
{
	struct engine *e = q->e;
	if (why[0]) {
		if (q->io_error) {
			atomic_store(&e->io_fail, 1);
			if (q->suspended_by_us) {
				engine_resume(e, "on-no-quorum io-error: waiting requests fail");
				q->suspended_by_us = 0;
			}
		} else if (!engine_is_suspended(e) || q->suspended_by_us) {
			if (engine_is_suspended(e) && strcmp(why, q->block))
				log_warn("I/O still suspended, now: %s", why);
			if (strcmp(why, q->block) || !engine_is_suspended(e))
				engine_suspend(e, why);
			q->suspended_by_us = 1;
		}
	} else {
		atomic_store(&e->io_fail, 0);
		if (q->suspended_by_us) {
			q->suspended_by_us = 0;
			if (engine_is_suspended(e))
				engine_resume(e, q->block[0] ? "quorum rules allow I/O again" : "quorum regained");
		}
	}
	snprintf(q->block, sizeof q->block, "%s", why);
}

/* With quorum: whether an Outdated or Consistent disk is current again
 * (without a handshake with a peer that has newer data). */
static void current_again(struct quorum *q)
{
	struct engine *e = q->e;

	/* with quorum, an Outdated (or just restarted) disk whose only fellow
	 * disk is Inconsistent holds the newest whole copy there is: nothing
	 * else could have been written without it. Make it a sync source. */
	if (q->peer && cfg_disk_hosts(q->r) == 2) {
		int ds = atomic_load(&e->dstate);
		struct replica_view v;
		q->peer->ops->view(q->peer->ctx, &v);
		if ((ds == DS_OUTDATED || ds == DS_CONSISTENT) && v.connected && v.disk == DS_INCONSISTENT) {
			engine_set_uptodate(e, "the only whole copy: the disk peer is Inconsistent");
			q->peer->ops->state_changed(q->peer->ctx);
		}
	}
	/* several disks: an Outdated (quorum was lost) or Consistent (just
	 * started) disk is current again when enough disks, this one included,
	 * have its generation that every partition with quorum includes one of
	 * them: a newer one could only have been written by such a partition.
	 * (That is hosts - need + 1 disks, not a quorum of them: with four
	 * disks a Primary Outdated by a moment's loss of quorum stayed so while
	 * its only other whole peer was in sync with it and the fourth was
	 * Inconsistent — which an Outdated disk may not resync, and a Secondary
	 * may not while a Primary is there: nobody resynced it, found in
	 * four_disks.sh.) An Inconsistent disk counts too: it follows every
	 * Primary whose writes it takes (follow_primary), so its generation
	 * says as much; without it a Primary Outdated by a moment's loss of
	 * quorum, next to its Inconsistent SyncTarget, stayed so for good
	 * (three_disks_outdated_primary.sh). */
	if (q->multi) {
		/* (lets a Primary's report overtake the count of a disk just
		 * told it is behind: four_disks_follow.sh) */
		if (atomic_load(&e->behind) & 1 && atomic_load(&e->dstate) == DS_OUTDATED)
			test_pause("recount-behind");
		int ds = atomic_load(&e->dstate), same = 1;
		uint64_t cur = e->sb.uuid[UUID_CURRENT];
		for (int i = 0; i < q->npeers && (ds == DS_OUTDATED || ds == DS_CONSISTENT); i++) {
			struct replica_view v;
			q->peers[i].ops->view(q->peers[i].ctx, &v);
			same += v.usable && v.disk >= DS_INCONSISTENT && v.uuid == cur && v.established;
		}
		if ((ds == DS_OUTDATED || ds == DS_CONSISTENT) && quorum_gen_current(same, q->hosts, q->need)) {
			engine_set_uptodate(e, "a quorum of disks has this node's data generation");
			for (int i = 0; i < q->npeers; i++)
				q->peers[i].ops->state_changed(q->peers[i].ctx);
		}
	}
}

/* One evaluation of the rules (quorum thread, and writes that failed to
 * replicate), under eval_lock. */
static void evaluate_locked(struct quorum *q)
{
	uint64_t now = now_ns();
	int votes = count_votes(q, now);
	int have = !quorum_enabled(q) || votes >= q->need;
	int had = atomic_exchange(&q->have, have);
	atomic_store(&q->votes, votes);
	if (had < 0 && quorum_enabled(q))
		log_info("quorum %s at start: %d of %d votes (%d needed)", have ? "present" : "not yet", votes, q->hosts,
			 q->need);
	else if (had != have && quorum_enabled(q))
	{
		if (have)
			log_warn("quorum regained: %d of %d votes (%d needed)", votes, q->hosts, q->need);
		else
			log_err("quorum LOST: %d of %d votes (%d needed)", votes, q->hosts, q->need);
	}
	if (!q->e)
		return;
	struct engine *e = q->e;
	if (!have && had == 1) {
		pthread_mutex_lock(&e->lock);
		int outdated = atomic_load(&e->dstate) == DS_UPTODATE &&
			       !engine_set_disk_locked(e, DS_OUTDATED, "quorum lost: the other partition may be writing");
		pthread_mutex_unlock(&e->lock);
		if (outdated) {
			log_warn("disk Outdated: without quorum the other partition may be writing");
			for (int i = 0; i < q->npeers; i++)
				q->peers[i].ops->state_changed(q->peers[i].ctx);
		}
	}
	if (!quorum_enabled(q))
		return;
	if (have)
		current_again(q);
	char why[256] = "";
	pthread_mutex_lock(&q->lock);
	struct replica_view pv = { 0 };
	if (q->peer)
		q->peer->ops->view(q->peer->ctx, &pv);
	if (!have) {
		q->alone = q->want_alone = 0; /* a claim stays until the peers meet again */
		snprintf(why, sizeof why, "no quorum: %d of %d votes, %d needed (on-no-quorum %s); resumes by itself "
			 "when enough nodes are reachable", votes, q->hosts, q->need, q->io_error ? "io-error" : "suspend-io");
	} else if (q->multi) {
		/* a Primary whose disk went Outdated (quorum lost) may be behind
		 * another partition: its writes wait until its disk is UpToDate
		 * again (the rule above). Taken, they started no new generation
		 * for the disks that missed them (an Outdated disk starts none):
		 * such a disk came back "at the same generation", went UpToDate
		 * and resynced them away (three_disks_outdated_primary.sh) */
		if (atomic_load(&e->role) == ROLE_PRIMARY && atomic_load(&e->dstate) == DS_OUTDATED)
			snprintf(why, sizeof why, "this Primary's disk is Outdated (quorum was lost: another partition "
				 "may have written); writes wait until enough disks show its data generation is the "
				 "newest");
		else if (q->short_seq && q->short_seq == conn_sum(q))
			snprintf(why, sizeof why, "%s", q->short_why);
		else
			q->short_seq = 0;
	} else if (q->peer && !pv.usable && atomic_load(&e->role) == ROLE_PRIMARY) {
		alone_rule(q, &pv, now, why, sizeof why);
		if (why[0]) {
			q->alone = 0;
		} else if (!(q->alone && q->alone_seq == pv.conn_seq + 1)) {
			q->alone = 1;
			q->claim = 1;
			q->alone_seq = pv.conn_seq + 1;
			pthread_mutex_unlock(&q->lock);
			log_warn("disk peer %s is gone and can no longer write; this node goes on alone with "
				 "quorum (%d of %d votes)", q->peer_host->name, votes, q->hosts);
			engine_new_generation(e, 1u << q->peer->slot, "Primary goes on without its disk peer (quorum)");
			pthread_mutex_lock(&q->lock);
		}
	} else if (pv.usable) {
		q->alone = q->want_alone = q->claim = 0;
	}
	/* a voter recorded that the disk peer went on without this node */
	const char *recorder = q->peer && !pv.usable ? left_behind(q) : NULL;
	int outdate = 0;
	if (recorder && atomic_load(&e->dstate) == DS_UPTODATE) {
		pthread_mutex_lock(&e->lock);
		outdate = atomic_load(&e->dstate) == DS_UPTODATE &&
			  !engine_set_disk_locked(e, DS_OUTDATED, "a voter recorded that the disk peer went on without this node");
		pthread_mutex_unlock(&e->lock);
	}
	if (outdate)
		log_warn("disk Outdated: %s recorded that %s went on without this node", recorder, q->peer_host->name);
	apply(q, why);
	pthread_mutex_unlock(&q->lock);
}

static void evaluate(struct quorum *q)
{
	pthread_mutex_lock(&q->eval_lock);
	evaluate_locked(q);
	pthread_mutex_unlock(&q->eval_lock);
}

static void *q_main(void *arg)
{
	pthread_setname_np(pthread_self(), "dp-quorum"); /* perf and top show what it is */
	struct quorum *q = arg;
	while (!atomic_load(&q->stopping)) {
		evaluate(q);
		struct pollfd pf = { q->wake[0], POLLIN, 0 };
		poll(&pf, 1, TICK_MS);
	}
	return NULL;
}

/* ------------------------------------------------------------ public */

int quorum_enabled(const struct quorum *q)
{
	return q && atomic_load(&q->enabled);
}

int quorum_have(struct quorum *q)
{
	return !q || atomic_load(&q->have) == 1;
}

int quorum_may_promote(struct quorum *q, char *msg)
{
	if (!quorum_enabled(q) || atomic_load(&q->have) == 1)
		return 0;
	snprintf(msg, 256, "no quorum (%d of %d votes, %d needed): a Primary here could diverge from the "
		 "partition that has it. Reconnect the nodes, or change 'quorum' in the config",
		 atomic_load(&q->votes), q->hosts, q->need);
	return -EBUSY;
}

int quorum_held(struct quorum *q, char *msg)
{
	if (!quorum_enabled(q))
		return 0;
	pthread_mutex_lock(&q->lock);
	int held = q->block[0] != 0;
	if (held)
		snprintf(msg, 256, "I/O is held by the quorum rules (%.150s); it resumes by itself when they allow it "
			 "(docs/quorum.md)", q->block);
	pthread_mutex_unlock(&q->lock);
	return held;
}

/* The write policy with quorum (replica.h): the rules are evaluated
 * afresh, then quorum_rule() decides on one consistent snapshot, under
 * eval_lock so the quorum thread cannot change it meanwhile. A hold that
 * is new suspends I/O through apply(), so that the rules resume it. */
static enum write_verdict quorum_decide(void *ctx, struct missed_write *m)
{
	struct quorum *q = ctx;
	char why[256];
	if (!quorum_enabled(q) || m->frozen || (!m->primary && (m->lost || !q->multi))) {
		struct quorum_facts f = { .enabled = quorum_enabled(q), .multi = q->multi };
		enum write_verdict v = quorum_rule(&f, m, why, sizeof why);
		if (v == WV_HOLD && !m->frozen)
			engine_suspend(q->e, why);
		return v;
	}
	pthread_mutex_lock(&q->eval_lock);
	evaluate_locked(q);
	struct replica_view pv = { 0 };
	if (q->peer)
		q->peer->ops->view(q->peer->ctx, &pv);
	pthread_mutex_lock(&q->lock);
	struct quorum_facts f = {
		.enabled = 1, .multi = q->multi, .votes = atomic_load(&q->votes), .need = q->need, .hosts = q->hosts,
		.io_error = q->io_error, .disk = atomic_load(&q->e->dstate), .held = q->block, .alone = q->alone,
		.peer_usable = pv.usable,
	};
	enum write_verdict v = quorum_rule(&f, m, why, sizeof why);
	if (v != WV_COMPLETE && v != WV_FAIL && !q->block[0]) {
		/* the peer failed between two ticks, or a write lacks disks */
		if (q->multi) {
			q->short_seq = conn_sum(q);
			snprintf(q->short_why, sizeof q->short_why, "%s", why);
		}
		apply(q, why);
	}
	pthread_mutex_unlock(&q->lock);
	pthread_mutex_unlock(&q->eval_lock);
	return v;
}

/* Without quorum (none configured): the fencing and dual-primary rules;
 * ctx is the engine. */
static enum write_verdict plain_decide(void *ctx, struct missed_write *m)
{
	struct quorum_facts f = { 0 };
	char why[256];
	enum write_verdict v = quorum_rule(&f, m, why, sizeof why);
	if (v == WV_HOLD && !m->frozen)
		engine_suspend(ctx, why);
	return v;
}

struct write_policy quorum_write_policy(struct quorum *q, struct engine *e)
{
	if (q && q->e)
		return (struct write_policy){ quorum_decide, q };
	return (struct write_policy){ plain_decide, e };
}

/* The settings: peers, options, the vote links' handshake. */
static void quorum_conf(struct quorum *q, struct engine *e, const struct cfg_resource *r, const struct cfg_host *me)
{
	int npeers = e ? e->npeers : 0;
	q->e = e;
	q->npeers = npeers;
	q->multi = npeers > 1;
	for (int i = 0; i < npeers; i++)
		q->peers[i] = e->rep[i];
	q->peer = npeers == 1 ? &q->peers[0] : NULL;
	q->r = r;
	q->me = me;
	q->enabled = r->quorum != Q_OFF;
	q->need = r->quorum_votes;
	q->hosts = r->nhosts;
	q->io_error = r->quorum_io_error;
	q->ping_int_ms = cfg_ping_ms(r, opt_int(r, SECT_NET, "ping-int", 10) * 1000);
	q->ping_timeout_ms = opt_int(r, SECT_NET, "ping-timeout", 5) * 100;
	q->connect_int_ms = opt_int(r, SECT_NET, "connect-int", 10) * 1000;
	q->lease_ns = ((uint64_t)q->ping_int_ms + (uint64_t)q->ping_timeout_ms) * 1000000;
	q->started = now_ns();
	q->have = -1; /* not evaluated yet */
	for (int i = 0; i < MAX_NODES; i++)
		q->outdated_by[i] = -1;
	q->votes = 1;
	q->wake[0] = q->wake[1] = -1;
	pthread_mutex_init(&q->lock, NULL);
	pthread_mutex_init(&q->eval_lock, NULL);
	const char *v = cfg_get(r, SECT_NET, "shared-secret");
	if (v && *v) {
		snprintf(q->secret, sizeof q->secret, "%s", v);
		const char *alg = cfg_get(r, SECT_NET, "cram-hmac-alg");
		q->hs.md = EVP_get_digestbyname(alg ? alg : "sha256");
		q->hs.has_secret = q->hs.md != NULL;
	}
	q->hs.res = r->name;
	q->hs.vote_only = 1;
	q->hs.my_id = me->node_id;
	q->hs.secret = q->secret;
	q->hs.timeout_ms = q->ping_timeout_ms > 1000 ? q->ping_timeout_ms : 1000;
}

int quorum_start(struct quorum **out, struct engine *e, const struct cfg_resource *r, const struct cfg_host *me,
		 struct listener *lsn, char *err)
{
	struct quorum *q = calloc(1, sizeof *q);
	if (!q) {
		snprintf(err, 256, "out of memory");
		return -ENOMEM;
	}
	quorum_conf(q, e, r, me);
	int npeers = q->npeers;
	for (int i = 0; i < r->nhosts; i++) {
		const struct cfg_host *h = &r->hosts[i];
		if (h == me)
			continue;
		if (!me->diskless && !h->diskless) {
			/* (in the order the daemon started the peers) */
			if (q->nph < npeers)
				q->phosts[q->nph++] = h;
			q->peer_host = h;
			continue;
		}
		struct vlink *l = &q->links[q->nlinks++];
		l->q = q;
		l->h = h;
		l->dialer = me->node_id < h->node_id;
		l->in_fd = -1;
		l->wake[0] = l->wake[1] = -1;
		pthread_mutex_init(&l->lock, NULL);
		pthread_cond_init(&l->cond, NULL);
		listener_route(lsn, h->node_id, vl_inbound, l);
	}
	if (!q->peer)
		q->peer_host = NULL;
	for (int i = 0; i < q->nlinks; i++) {
		struct vlink *l = &q->links[i];
		if (pipe2(l->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
			snprintf(err, 256, "cannot create a pipe: %s", strerror(errno));
			quorum_free(q);
			return -errno;
		}
	}
	if (pipe2(q->wake, O_CLOEXEC) < 0) {
		snprintf(err, 256, "cannot create a pipe: %s", strerror(errno));
		quorum_free(q);
		return -EIO;
	}
	for (int i = 0; i < q->nlinks; i++) {
		struct vlink *l = &q->links[i];
		l->hs = q->hs;
		l->hs.peer_id = l->h->node_id;
		l->hs.peer_name = l->h->name;
		if (pthread_create(&l->thr, NULL, vl_main, l)) {
			snprintf(err, 256, "cannot start a vote link thread");
			quorum_free(q);
			return -EAGAIN;
		}
		l->running = 1;
	}
	if (pthread_create(&q->thr, NULL, q_main, q)) {
		snprintf(err, 256, "cannot start the quorum thread");
		quorum_free(q);
		return -EAGAIN;
	}
	q->running = 1;
	*out = q;
	return 0;
}

void quorum_stop(struct quorum *q)
{
	if (!q || atomic_load(&q->stopping))
		return;
	atomic_store(&q->stopping, 1);
	if (q->wake[1] >= 0)
		(void)!write(q->wake[1], "x", 1);
	if (q->running)
		pthread_join(q->thr, NULL);
	for (int i = 0; i < q->nlinks; i++) {
		struct vlink *l = &q->links[i];
		if (l->wake[1] >= 0)
			(void)!write(l->wake[1], "x", 1);
		pthread_mutex_lock(&l->lock);
		pthread_cond_broadcast(&l->cond);
		pthread_mutex_unlock(&l->lock);
		if (l->running)
			pthread_join(l->thr, NULL);
		if (l->in_fd >= 0)
			close(l->in_fd);
		l->in_fd = -1;
	}
	for (int i = 0; i < q->nlinks; i++)
		q->links[i].running = 0;
	q->running = 0;
	atomic_store(&q->enabled, 0);
	if (q->suspended_by_us && q->e)
		engine_resume(q->e, "quorum checks stopped");
	q->suspended_by_us = 0;
	if (q->e)
		atomic_store(&q->e->io_fail, 0);
}

void quorum_free(struct quorum *q)
{
	if (!q)
		return;
	quorum_stop(q);
	for (int i = 0; i < q->nlinks; i++) {
		if (q->links[i].wake[0] >= 0) {
			close(q->links[i].wake[0]);
			close(q->links[i].wake[1]);
		}
	}
	if (q->wake[0] >= 0) {
		close(q->wake[0]);
		close(q->wake[1]);
	}
	free(q);
}

/* ------------------------------------------------------------ status */

void quorum_status_json(struct quorum *q, struct strbuf *sb)
{
	static const char *const mode[] = { "off", "majority", "all", "fixed" };
	pthread_mutex_lock(&q->lock);
	strbuf_printf(sb, "\"quorum\":{\"mode\":\"%s\",\"have\":%s,\"votes\":%d,\"needed\":%d,\"hosts\":%d,"
		  "\"on_no_quorum\":\"%s\",\"writes_held\":",
		  mode[q->r->quorum], atomic_load(&q->have) == 1 ? "true" : "false", atomic_load(&q->votes), q->need,
		  q->hosts, q->io_error ? "io-error" : "suspend-io");
	strbuf_json_str(sb, q->block);
	strbuf_printf(sb, ",\"alone\":%s,\"lease_ms\":%llu}", q->alone ? "true" : "false",
		      (unsigned long long)(q->lease_ns / 1000000));
	pthread_mutex_unlock(&q->lock);
}

int quorum_link_state(struct quorum *q, int node_id, int *role, int *disk)
{
	for (int i = 0; q && i < q->nlinks; i++) {
		struct vlink *l = &q->links[i];
		if (l->h->node_id != node_id)
			continue;
		int rc = -ENOENT;
		pthread_mutex_lock(&l->lock);
		if (atomic_load(&l->connected) && l->have_st) {
			*role = l->st.role;
			*disk = l->st.disk;
			rc = 0;
		}
		pthread_mutex_unlock(&l->lock);
		return rc;
	}
	return -ENOENT;
}

int quorum_voter_sees(struct quorum *q, int node_id)
{
	uint64_t now = now_ns();
	int seen = 0;
	for (int i = 0; q && i < q->nlinks && !seen; i++) {
		struct vlink *l = &q->links[i];
		if (!atomic_load(&l->connected) || !lease_fresh(atomic_load(&l->lease_until), now))
			continue;
		pthread_mutex_lock(&l->lock);
		seen = l->have_st && node_id >= 0 && node_id < 32 && (l->st.seen & (1u << node_id));
		pthread_mutex_unlock(&l->lock);
	}
	return seen;
}

void quorum_peers_json(struct quorum *q, struct strbuf *sb, int comma)
{
	uint64_t now = now_ns();
	for (int i = 0; i < q->nlinks; i++) {
		struct vlink *l = &q->links[i];
		int c = atomic_load(&l->connected);
		pthread_mutex_lock(&l->lock);
		strbuf_printf(sb, "%s{\"name\":", comma || i ? "," : "");
		strbuf_json_str(sb, l->h->name);
		strbuf_printf(sb, ",\"node_id\":%d,\"address\":", l->h->node_id);
		strbuf_json_str(sb, l->h->address);
		strbuf_printf(sb, ",\"link\":\"vote\",\"connection\":\"%s\",\"role\":\"%s\",\"disk\":\"%s\","
			  "\"replication\":\"Off\",\"out_of_sync_bytes\":0,\"sync_done_percent\":100.0,"
			  "\"vote\":%s,\"peer_has_quorum\":%s,\"reason\":",
			  c ? "Connected" : "Connecting", c && l->have_st ? role_name((enum role)l->st.role) : "Unknown",
			  c && l->have_st ? disk_state_name((enum disk_state)l->st.disk) : "DUnknown",
			  c && lease_fresh(atomic_load(&l->lease_until), now) ? "true" : "false",
			  c && l->have_st && l->st.quorum ? "true" : "false");
		strbuf_json_str(sb, l->reason);
		strbuf_printf(sb, "}");
		pthread_mutex_unlock(&l->lock);
	}
}

void quorum_status_text(struct quorum *q, struct strbuf *sb)
{
	for (int i = 0; i < q->nlinks; i++) {
		struct vlink *l = &q->links[i];
		int c = atomic_load(&l->connected);
		pthread_mutex_lock(&l->lock);
		strbuf_printf(sb, "  %s connection:%s role:%s (vote link)\n    peer-disk:%s\n", l->h->name,
			  c ? "Connected" : "Connecting", c && l->have_st ? role_name((enum role)l->st.role) : "Unknown",
			  c && l->have_st ? disk_state_name((enum disk_state)l->st.disk) : "DUnknown");
		if (l->reason[0])
			strbuf_printf(sb, "    last problem: %s\n", l->reason);
		pthread_mutex_unlock(&l->lock);
	}
	if (!quorum_enabled(q))
		return;
	pthread_mutex_lock(&q->lock);
	strbuf_printf(sb, "  quorum:%s votes:%d/%d needed:%d on-no-quorum:%s lease:%llums\n",
		  atomic_load(&q->have) == 1 ? "yes" : "NO", atomic_load(&q->votes), q->hosts, q->need,
		  q->io_error ? "io-error" : "suspend-io", (unsigned long long)(q->lease_ns / 1000000));
	if (q->block[0])
		strbuf_printf(sb, "  writes held: %s\n", q->block);
	pthread_mutex_unlock(&q->lock);
}

void quorum_state_line(struct quorum *q, struct strbuf *sb)
{
	if (quorum_enabled(q))
		strbuf_printf(sb, " quorum:%s votes:%d/%d", atomic_load(&q->have) == 1 ? "yes" : "no", atomic_load(&q->votes),
			  q->need);
	for (int i = 0; i < q->nlinks; i++) {
		struct vlink *l = &q->links[i];
		strbuf_printf(sb, " vote:%s:%s", l->h->name, atomic_load(&l->connected) ? "Connected" : "Connecting");
	}
}

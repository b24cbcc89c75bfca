/* peer — replication with one peer node. See peer.h and wire.h. */
#include "peer.h"
#include "decide.h"
#include "handler.h"
#include "hs.h"
#include "listener.h"
#include "quorum.h"
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

#define PEND_MAX   256          /* replicated requests in flight */
#define RS_WINDOW  16           /* resync chunks in flight */
#define RS_CHUNK_BLOCKS 256     /* 1 MiB per resync packet */
/* Own writes remembered for conflict detection. A peer write can only
 * conflict with own writes the peer had not applied when it sent it, which
 * were unacknowledged then (at most PEND_MAX) or sent while it travelled. */
#define HIST       4096
#define MAX_CONFLICTS 64

struct pending {
	pthread_mutex_t m;
	pthread_cond_t c;
	uint64_t off;
	uint32_t len;
	uint32_t gen;
	int recv_acked, write_acked, failed, status;
	int fua;                   /* wait for the write ack whatever the protocol */
	uint64_t seq;              /* P_DATA sequence number, 0 if none */
	void *rdbuf;               /* P_READ_REQ: where the reply's data goes */
	uint32_t rdlen;
	int refs;                  /* waiter + network; guarded by peer->plock */
	uint64_t sent_ns;          /* for the `timeout` check */
	struct pending *next;
};

struct rs_slot { uint64_t off; uint32_t len; int used; };

/* One of this node's recent writes, for detecting concurrent dual-primary
 * writes (docs/replication.md). */
struct hist { uint64_t seq, off; uint32_t len; int local_done; };

struct peer {
	struct engine *e;
	int slot;                  /* this peer's bitmap slot (engine_bind_slot) */
	const struct cfg_resource *r;
	const struct cfg_host *me, *ph;
	char addr[160];            /* "name (ip:port)" for log lines */
	int protocol, allow_two, dialer;
	char secret[256];
	int has_secret;
	const EVP_MD *md;
	int connect_int_ms, ping_int_ms, ping_timeout_ms;
	uint64_t rate;             /* resync bytes/s, 0 = unlimited */

	struct hs_conf hs;
	int wake[2];
	pthread_t thr;
	pthread_mutex_t inq_lock;  /* handshaken inbound channels waiting for conn_main */
	pthread_cond_t inq_cond;
	int in_dfd, in_mfd;
	uint8_t in_hello[HELLO_BYTES], in_mine[HELLO_BYTES];
	_Atomic int stopping;

	pthread_mutex_t admin_lock; /* admin_down changes; admin_cond wakes conn_main */
	pthread_cond_t admin_cond;
	_Atomic int admin_down;    /* `disconnect` or a refusal by state: stay StandAlone */

	pthread_mutex_t lock;      /* dfd/mfd changes, reason */
	int dfd, mfd;
	char reason[256];
	_Atomic int cstate, repl, peer_role, peer_disk;
	_Atomic int expect_target;     /* agree() decided this node is SyncTarget */
	_Atomic int await_peer_bm;     /* SyncSource: the target's own marks come first */
	_Atomic int discard_my_data;   /* `connect --discard-my-data`, until the next handshake */
	int no_confirm;                /* fuzzing: no P_DECISION exchange */
	int fencing;                   /* fencing resource-only|resource-and-stonith */
	_Atomic int peer_was_primary;  /* last known peer role was Primary (kept across a loss) */
	_Atomic int primary_at_loss;   /* this node was Primary when the connection was lost */
	_Atomic int hold_off;          /* `resume-io`: go on alone until the peer is back */
	int established;               /* agree() succeeded on this connection */
	struct splitbrain_policy splitbrain;
	int timeout_ms;                /* `timeout`: a request unacknowledged this long drops the link */
	_Atomic uint64_t peer_uuid;

	pthread_mutex_t dsend, msend;

	pthread_mutex_t plock;     /* pending free list */
	pthread_cond_t pcond;
	struct pending pend[PEND_MAX];
	struct pending *pfree;

	pthread_rwlock_t sync_lock;
	pthread_mutex_t rsctl;     /* serializes rs_start/rs_stop (conn thread vs. role changes) */
	pthread_t rs_thr;
	int rs_running;
	_Atomic int rs_stop;
	pthread_mutex_t rslock;
	pthread_cond_t rscond;
	struct rs_slot rs[RS_WINDOW];
	int rs_out;
	_Atomic uint64_t sync_total, sync_done, sync_start_ns;
	_Atomic int rs_go;             /* the target merged the bitmap (P_SYNC_ACK) */

	/* epochs (wire.h): sender side under dsend, receiver side in data_loop */
	_Atomic uint64_t epoch;        /* epoch the next write belongs to */
	_Atomic uint64_t epoch_acked;  /* last epoch the peer reported stable */
	_Atomic uint64_t rx_epoch;     /* last peer epoch made stable here */

	/* dual-primary conflict detection; hist guarded by hlock, my_seq by dsend */
	pthread_mutex_t hlock;
	pthread_cond_t hcond;
	struct hist hist[HIST];
	_Atomic uint64_t my_seq;       /* last seq sent */
	_Atomic uint64_t applied_seq;  /* last peer seq applied here */
	uint64_t applying_off, applying_end; /* peer write being applied (hlock) */
	int applying;
	atomic_uint_fast64_t conflicts; /* concurrent writes reconciled */
	atomic_uint_fast64_t split_brains; /* detected (resolved or not) */
	atomic_uint_fast64_t fenced;       /* fence-peer handler successes */
	_Atomic int fencing_now;           /* the fence-peer handler is running */
	char hold_reason[256];
	/* lease (quorum.h): meta_main renews it, the quorum rules read it */
	uint64_t lease_ns;             /* ping-int + ping-timeout */
	_Atomic uint64_t lease_until_ns, last_rx_ns;
	_Atomic uint64_t conn_seq;     /* connections established */
	_Atomic int sync_pending;      /* SyncTarget-to-be: the source's bitmap is not merged yet */
	/* several peers (docs/replication.md, "More than two nodes") */
	_Atomic int deferred;          /* agree(): a resync was due but deferred */
	_Atomic uint64_t recheck_ns;   /* kicked to compare data again (when), 0 none */
	int splitbrain_retrying, splitbrain_retried;   /* a split brain between two Secondaries, retried (conn thread) */

	pthread_t meta_thr;
	int meta_running;

	/* online verify */
	const EVP_MD *vmd;         /* verify-alg; NULL: crc32c */
	const EVP_MD *cmd;         /* csums-alg; NULL: crc32c (when has_csums) */
	int has_csums;
	_Atomic uint64_t *need;    /* SyncSource with csums: blocks whose checksum differed */
	atomic_uint_fast64_t csum_skipped; /* resync bytes not sent: checksums matched */
	pthread_t vf_thr;
	int vf_joinable;
	_Atomic int vf_running;
	_Atomic uint64_t vf_done, vf_oos, vf_blocks;
	uint8_t *rbuf;
	size_t rcap;
	uint8_t *scratch;          /* data_loop: answers to requests, see scratch() */
};

static void send_state(struct peer *p);
static void hello_uuids(struct peer *p, uint64_t *u);
static void peers_state_changed(struct engine *e, struct peer *except);
static void kick_others(struct peer *p, const char *why);
static void kick_sources(struct peer *p);
static int third_primary(struct peer *p);
static int all_disks_here(struct peer *p);
static int may_source(struct peer *p);

const char *conn_state_name(enum conn_state c)
{
	static const char *n[] = { "StandAlone", "Connecting", "Connected", "Disconnecting" };
	return (unsigned)c < ARRAY_SIZE(n) ? n[c] : "?";
}

const char *repl_state_name(enum repl_state r)
{
	static const char *n[] = { "Off", "Established", "SyncSource", "SyncTarget" };
	return (unsigned)r < ARRAY_SIZE(n) ? n[r] : "?";
}

static void set_reason(struct peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_reason(struct peer *p, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&p->lock);
	int changed = strcmp(buf, p->reason) != 0;
	snprintf(p->reason, sizeof p->reason, "%s", buf);
	pthread_mutex_unlock(&p->lock);
	if (changed && buf[0])
		log_warn("peer %s: %s", p->addr, buf);
}

/* ------------------------------------------------------------ sending */

static int send_pkt(struct peer *p, int ch, uint16_t type, uint16_t flags, uint64_t id,
		    const void *a, size_t alen, const void *b, size_t blen)
{
	uint8_t h[WIRE_HDR];
	struct iovec iov[3] = { { h, sizeof h }, { (void *)a, alen }, { (void *)b, blen } };
	pthread_mutex_t *l = ch == CH_DATA ? &p->dsend : &p->msend;
	int rc = -ENOTCONN;

	put_be32(h, WIRE_MAGIC);
	put_be16(h + 4, type);
	put_be16(h + 6, flags);
	put_be32(h + 8, (uint32_t)(alen + blen));
	put_be32(h + 12, 0);
	put_be64(h + 16, id);
	pthread_mutex_lock(l);
	int fd = ch == CH_DATA ? p->dfd : p->mfd;
	if (fd >= 0)
		rc = writev_full(fd, iov, blen ? 3 : alen ? 2 : 1);
	pthread_mutex_unlock(l);
	return rc;
}

static int send_ack(struct peer *p, uint16_t type, uint64_t id, int status)
{
	uint8_t b[4];
	put_be32(b, (uint32_t)status);
	return send_pkt(p, CH_META, type, 0, id, b, 4, NULL, 0);
}

/* ------------------------------------------------------------ pending */

static struct pending *pending_get(struct peer *p)
{
	struct pending *pd;
	pthread_mutex_lock(&p->plock);
	while (!p->pfree)
		pthread_cond_wait(&p->pcond, &p->plock);
	pd = p->pfree;
	p->pfree = pd->next;
	pd->refs = 2;
	pd->gen++;
	pthread_mutex_unlock(&p->plock);
	pd->recv_acked = pd->write_acked = pd->failed = pd->status = 0;
	pd->seq = 0;
	pd->rdbuf = NULL;
	pd->rdlen = 0;
	pd->sent_ns = now_ns();
	return pd;
}

static struct pending *pending_lookup(struct peer *p, uint64_t id);

static void pending_put(struct peer *p, struct pending *pd)
{
	pthread_mutex_lock(&p->plock);
	if (--pd->refs == 0) {
		pd->next = p->pfree;
		p->pfree = pd;
		pthread_cond_signal(&p->pcond);
	}
	pthread_mutex_unlock(&p->plock);
}

static uint64_t pending_id(struct peer *p, struct pending *pd)
{
	return ((uint64_t)pd->gen << 16) | (uint64_t)(pd - p->pend);
}

/* The request could not be sent: it fails now, and the network reference
 * (no ack will ever come) ends here. */
static void pending_abort(struct peer *p, struct pending *pd)
{
	pthread_mutex_lock(&pd->m);
	int final = !pd->failed && !pd->write_acked;
	pd->failed = 1;
	pthread_mutex_unlock(&pd->m);
	if (final)
		pending_put(p, pd);
}

/* The live request with this id, or NULL. */
static struct pending *pending_lookup(struct peer *p, uint64_t id)
{
	uint32_t idx = (uint32_t)(id & 0xffff);
	if (idx >= PEND_MAX)
		return NULL;
	struct pending *pd = &p->pend[idx];
	pthread_mutex_lock(&p->plock);
	int live = pd->refs > 0 && pd->gen == (uint32_t)(id >> 16);
	pthread_mutex_unlock(&p->plock);
	return live ? pd : NULL;
}

/* Network side of an acknowledgement. final: the network reference ends. */
static void pending_ack(struct peer *p, uint64_t id, int type, int status)
{
	struct pending *pd = pending_lookup(p, id);

	if (!pd)
		return;
	pthread_mutex_lock(&pd->m);
	int final = 0;
	if (type == P_RECV_ACK) {
		pd->recv_acked = 1;
	} else if (!pd->write_acked && !pd->failed) {
		pd->write_acked = 1;
		pd->status = status;
		final = 1;
	}
	pthread_cond_broadcast(&pd->c);
	pthread_mutex_unlock(&pd->m);
	if (final) {
		if (status && pd->len)
			engine_mark_oos(p->e, p->slot, pd->off, pd->len);
		pending_put(p, pd);
	}
}

static int pending_in_use(struct peer *p, struct pending *pd)
{
	pthread_mutex_lock(&p->plock);
	int live = pd->refs > 0;
	pthread_mutex_unlock(&p->plock);
	return live;
}

/* Connection lost: every request not yet written on the peer is out of sync. */
static void pending_fail_all(struct peer *p)
{
	for (int i = 0; i < PEND_MAX; i++) {
		struct pending *pd = &p->pend[i];
		if (!pending_in_use(p, pd))
			continue;
		pthread_mutex_lock(&pd->m);
		int final = !pd->write_acked && !pd->failed;
		if (final)
			pd->failed = 1;
		pthread_cond_broadcast(&pd->c);
		pthread_mutex_unlock(&pd->m);
		if (final) {
			if (pd->len)
				engine_mark_oos(p->e, p->slot, pd->off, pd->len);
			pending_put(p, pd);
		}
	}
}

/* ------------------------------------------------------- write path */

static int connected(struct peer *p)
{
	return atomic_load(&p->cstate) == CS_CONNECTED;
}

/* Send a write: its sequence number is assigned, and it is remembered in
 * hist, under the data channel's send lock, so seq order is wire order. */
static int send_data(struct peer *p, struct pending *pd, unsigned dflags, const void *buf, size_t blen,
		     uint32_t stamp)
{
	uint8_t h[WIRE_HDR + DATA_HDR];
	struct iovec iov[2] = { { h, sizeof h }, { (void *)buf, blen } };
	int rc = -ENOTCONN;

	pthread_mutex_lock(&p->dsend);
	if (p->dfd >= 0) {
		uint64_t seq = atomic_load(&p->my_seq) + 1;
		/* only two Primaries can write concurrently: single-primary writes
		 * skip the bookkeeping (and its lock) entirely */
		if (p->allow_two) {
			struct hist *e = &p->hist[seq % HIST];
			pthread_mutex_lock(&p->hlock);
			/* a peer write to this range is being applied right now: wait, so
			 * this write is either seen by that write's conflict scan or sent
			 * with a `seen` that covers it — never in between */
			while (p->applying && pd->off < p->applying_end && p->applying_off < pd->off + pd->len)
				pthread_cond_wait(&p->hcond, &p->hlock);
			*e = (struct hist){ seq, pd->off, pd->len, 0 };
			pthread_mutex_unlock(&p->hlock);
		}
		atomic_store(&p->my_seq, seq);
		pd->seq = seq;
		put_be32(h, WIRE_MAGIC);
		put_be16(h + 4, P_DATA);
		put_be16(h + 6, (uint16_t)dflags);
		put_be32(h + 8, (uint32_t)(DATA_HDR + blen));
		put_be32(h + 12, stamp);
		put_be64(h + 16, pending_id(p, pd));
		put_be64(h + WIRE_HDR, pd->off);
		put_be32(h + WIRE_HDR + 8, pd->len);
		put_be64(h + WIRE_HDR + 12, seq);
		put_be64(h + WIRE_HDR + 20, atomic_load(&p->applied_seq));
		rc = writev_full(p->dfd, iov, blen ? 2 : 1);
	}
	pthread_mutex_unlock(&p->dsend);
	return rc;
}

/* The local part of a write is on the local disk: a losing concurrent peer
 * write waiting for it may now be applied on top. */
static void hist_local_done(struct peer *p, uint64_t seq)
{
	pthread_mutex_lock(&p->hlock);
	struct hist *e = &p->hist[seq % HIST];
	if (e->seq == seq) {
		e->local_done = 1;
		pthread_cond_broadcast(&p->hcond);
	}
	pthread_mutex_unlock(&p->hlock);
}

struct pending *peer_write_begin(struct peer *p, const void *buf, size_t len, uint64_t off, unsigned dflags,
				 uint32_t stamp)
{
	struct pending *pd;

	pthread_rwlock_rdlock(&p->sync_lock);
	if (!connected(p) || atomic_load(&p->peer_disk) < DS_INCONSISTENT)
		return NULL;
	pd = pending_get(p);
	pd->off = off;
	pd->len = (uint32_t)len;
	pd->fua = !!(dflags & DF_FUA);
	int payload = !(dflags & (DF_ZERO | DF_TRIM));
	if (send_data(p, pd, dflags, payload ? buf : NULL, payload ? len : 0, stamp)) {
		pending_abort(p, pd); /* the caller marks the range */
		return pd;
	}
	if (payload)
		atomic_fetch_add_explicit(&p->e->st.sent_bytes, len, memory_order_relaxed);
	return pd;
}

int peer_write_end(struct peer *p, struct pending *pd)
{
	int ok;

	pthread_rwlock_unlock(&p->sync_lock);
	if (!pd)
		return 0;
	if (pd->seq && p->allow_two)
		hist_local_done(p, pd->seq);
	pthread_mutex_lock(&pd->m);
	/* FUA is durable on every replica before completion, whatever the protocol */
	if (p->protocol == 'C' || pd->fua)
		while (!pd->write_acked && !pd->failed)
			pthread_cond_wait(&pd->c, &pd->m);
	else if (p->protocol == 'B')
		while (!pd->recv_acked && !pd->write_acked && !pd->failed)
			pthread_cond_wait(&pd->c, &pd->m);
	ok = p->protocol == 'C' || pd->fua ? (pd->write_acked && !pd->status) : !pd->failed;
	pthread_mutex_unlock(&pd->m);
	pending_put(p, pd);
	return ok;
}

struct pending *peer_flush_begin(struct peer *p)
{
	struct pending *pd;

	/* a Diskless peer holds nothing to flush (what it misses is marked) */
	if (!connected(p) || atomic_load(&p->peer_disk) < DS_INCONSISTENT)
		return NULL;
	pd = pending_get(p);
	pd->off = 0;
	pd->len = 0;
	pd->fua = 1;
	/* the epoch number is taken and the flush sent under the data channel's
	 * send lock, so every write sent before it belongs to this epoch */
	uint8_t b[8];
	int rc = -ENOTCONN;
	pthread_mutex_lock(&p->dsend);
	if (p->dfd >= 0) {
		uint64_t ep = atomic_fetch_add(&p->epoch, 1);
		pd->seq = ep;
		put_be64(b, ep);
		uint8_t h[WIRE_HDR];
		struct iovec iov[2] = { { h, sizeof h }, { b, sizeof b } };
		put_be32(h, WIRE_MAGIC);
		put_be16(h + 4, P_FLUSH);
		put_be16(h + 6, 0);
		put_be32(h + 8, sizeof b);
		put_be32(h + 12, 0);
		put_be64(h + 16, pending_id(p, pd));
		rc = writev_full(p->dfd, iov, 2);
	}
	pthread_mutex_unlock(&p->dsend);
	if (rc)
		pending_abort(p, pd);
	return pd;
}

int peer_flush_end(struct peer *p, struct pending *pd)
{
	if (!pd)
		return 0;
	pthread_mutex_lock(&pd->m);
	while (!pd->write_acked && !pd->failed)
		pthread_cond_wait(&pd->c, &pd->m);
	int rc = pd->write_acked ? -pd->status : 0;
	/* the peer has no disk (it detached, now or before): it holds nothing
	 * to flush, what it misses is marked, this node's copy is what counts */
	if (rc == -ENODEV)
		rc = 0;
	if (pd->write_acked && !pd->status) {
		uint64_t cur = atomic_load(&p->epoch_acked);
		while (pd->seq > cur && !atomic_compare_exchange_weak(&p->epoch_acked, &cur, pd->seq))
			;
	}
	pthread_mutex_unlock(&pd->m);
	pending_put(p, pd);
	return rc;
}

int peer_read(struct peer *p, void *buf, size_t len, uint64_t off)
{
	while (len) {
		uint32_t n = len > READ_MAX ? READ_MAX : (uint32_t)len;
		if (!connected(p) || atomic_load(&p->peer_disk) != DS_UPTODATE)
			return -EIO;
		struct pending *pd = pending_get(p);
		uint8_t b[12];
		pd->off = off;
		pd->len = 0; /* nothing to mark out of sync if it fails */
		pd->rdbuf = buf;
		pd->rdlen = n;
		put_be64(b, off);
		put_be32(b + 8, n);
		if (send_pkt(p, CH_DATA, P_READ_REQ, 0, pending_id(p, pd), b, sizeof b, NULL, 0))
			pending_abort(p, pd);
		pthread_mutex_lock(&pd->m);
		while (!pd->write_acked && !pd->failed)
			pthread_cond_wait(&pd->c, &pd->m);
		int rc = pd->write_acked ? -pd->status : -EIO;
		pthread_mutex_unlock(&pd->m);
		pending_put(p, pd);
		if (rc)
			return rc;
		atomic_fetch_add_explicit(&p->e->st.received_bytes, n, memory_order_relaxed);
		buf = (uint8_t *)buf + n;
		off += n;
		len -= n;
	}
	return 0;
}

int peer_can_read(struct peer *p)
{
	return connected(p) && atomic_load(&p->peer_disk) == DS_UPTODATE;
}

int peer_is_sync_target(struct peer *p)
{
	return atomic_load(&p->repl) == RS_SYNC_TARGET;
}

/* ---------------------------------------------------------- resync */

static void rs_release(struct peer *p, uint64_t id)
{
	pthread_mutex_lock(&p->rslock);
	if (id < RS_WINDOW && p->rs[id].used) {
		atomic_fetch_add(&p->sync_done, p->rs[id].len);
		p->rs[id].used = 0;
		p->rs_out--;
		pthread_cond_broadcast(&p->rscond);
	}
	pthread_mutex_unlock(&p->rslock);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Send the non-zero chunks of this node's bitmap as `type` packets, then
 * `done`: the source's marks to the target (P_BITMAP), or the target's own
 * marks to the source (P_PEER_BITMAP). */
static int send_bitmap(struct peer *p, uint16_t type, uint16_t done)
{
	struct engine *e = p->e;
	uint64_t words = (e->bm_bits + 63) / 64;
	uint8_t *pkt = malloc(8 + 8 * (size_t)BM_WORDS_PER_PKT);
	int rc = 0;
	if (!pkt)
		return -ENOMEM;
	for (uint64_t w = 0; !rc && engine_oos(e, p->slot) && w < words; w += BM_WORDS_PER_PKT) {
		uint64_t n = words - w < BM_WORDS_PER_PKT ? words - w : BM_WORDS_PER_PKT, any = 0;
		put_be64(pkt, w);
		for (uint64_t i = 0; i < n; i++) {
			uint64_t v = atomic_load_explicit(&e->slot[p->slot].bm[w + i], memory_order_relaxed);
			any |= v;
			put_le64(pkt + 8 + 8 * i, v);
		}
		if (any)
			rc = send_pkt(p, CH_DATA, type, 0, 0, pkt, 8 + 8 * n, NULL, 0);
	}
	free(pkt);
	return rc ? rc : send_pkt(p, CH_DATA, done, 0, 0, NULL, 0, NULL, 0);
}

/* Tell the target what is coming: P_SYNC_START, the bitmap (unless all of it
 * is out of sync), P_BITMAP_DONE; then wait for its P_SYNC_ACK. The ack
 * travels on the target's data channel behind every write the target sent
 * before merging the bitmap, so by the time it arrives those writes are
 * applied here and every block read from now on includes them. Writes the
 * target makes afterwards to a block clear its bit there, and the target
 * skips resync data for blocks whose bit is clear (docs/replication.md). */
static int rs_announce(struct peer *p, uint64_t total)
{
	struct engine *e = p->e;
	int full = engine_oos(e, p->slot) >= e->bm_bits;
	uint8_t h[12];
	int rc;

	atomic_store(&p->rs_go, 0);
	put_be64(h, total);
	put_be32(h + 8, full ? SSF_FULL : 0);
	rc = send_pkt(p, CH_DATA, P_SYNC_START, 0, 0, h, 12, NULL, 0);
	if (!rc)
		rc = full ? send_pkt(p, CH_DATA, P_BITMAP_DONE, 0, 0, NULL, 0, NULL, 0)
			  : send_bitmap(p, P_BITMAP, P_BITMAP_DONE);
	pthread_mutex_lock(&p->rslock);
	while (!rc && !atomic_load(&p->rs_go) && !atomic_load(&p->rs_stop))
		pthread_cond_wait(&p->rscond, &p->rslock);
	pthread_mutex_unlock(&p->rslock);
	return rc ? rc : atomic_load(&p->rs_stop) ? -ECANCELED : 0;
}

/* ---------------------------------------------------------- verify */

static unsigned md_len(const EVP_MD *md)
{
	return md ? (unsigned)EVP_MD_get_size(md) : 4;
}

static unsigned digest_len(struct peer *p)
{
	return md_len(p->vmd);
}

/* One digest per MD_BLOCK of buf[len] into out (md NULL: crc32c). */
static void digests_md(const EVP_MD *md, const uint8_t *buf, uint32_t len, uint8_t *out)
{
	unsigned dl = md_len(md);
	for (uint32_t o = 0, i = 0; o < len; o += MD_BLOCK, i++) {
		uint32_t n = len - o < MD_BLOCK ? len - o : MD_BLOCK;
		if (md) {
			unsigned got = 0;
			EVP_Digest(buf + o, n, out + i * dl, &got, md, NULL);
		} else {
			put_be32(out + i * dl, crc32c(buf + o, n));
		}
	}
}

static void digests(struct peer *p, const uint8_t *buf, uint32_t len, uint8_t *out)
{
	digests_md(p->vmd, buf, len, out);
}

static int need_test(struct peer *p, uint64_t b)
{
	return p->need && (atomic_load_explicit(&p->need[b >> 6], memory_order_relaxed) >> (b & 63)) & 1;
}

#define VF_CHUNK (1u << 20)

static void *verify_main(void *arg)
{
	struct peer *p = arg;
	struct engine *e = p->e;
	unsigned dl = digest_len(p);
	uint8_t *buf = NULL, *mine = malloc((VF_CHUNK / MD_BLOCK) * dl), *theirs = malloc((VF_CHUNK / MD_BLOCK) * dl);
	uint64_t off = 0;
	int rc = 0;

	if (!mine || !theirs || posix_memalign((void **)&buf, 4096, VF_CHUNK))
		rc = -ENOMEM;
	log_info("peer %s: online verify started (%s)", p->addr, p->vmd ? EVP_MD_get0_name(p->vmd) : "crc32c");
	while (!rc && off < e->size && connected(p) && !atomic_load(&p->stopping)) {
		uint32_t n = e->size - off < VF_CHUNK ? (uint32_t)(e->size - off) : VF_CHUNK;
		uint32_t nb = (n + MD_BLOCK - 1) / MD_BLOCK;
		struct pending *pd = pending_get(p);
		uint8_t b[12];
		pd->off = off;
		pd->len = 0;
		pd->rdbuf = theirs;
		pd->rdlen = nb * dl;
		put_be64(b, off);
		put_be32(b + 8, n);
		if (send_pkt(p, CH_DATA, P_VERIFY_REQ, 0, pending_id(p, pd), b, sizeof b, NULL, 0))
			pending_abort(p, pd);
		/* our digests while the peer computes its own */
		rc = disk_pread(e->disk, buf, n, off);
		if (!rc)
			digests(p, buf, n, mine);
		pthread_mutex_lock(&pd->m);
		while (!pd->write_acked && !pd->failed)
			pthread_cond_wait(&pd->c, &pd->m);
		int prc = pd->write_acked ? -pd->status : -EIO;
		pthread_mutex_unlock(&pd->m);
		pending_put(p, pd);
		if (!rc)
			rc = prc;
		for (uint32_t i = 0; !rc && i < nb; i++) {
			if (memcmp(mine + i * dl, theirs + i * dl, dl)) {
				engine_mark_oos(e, p->slot, off + (uint64_t)i * MD_BLOCK, MD_BLOCK);
				atomic_fetch_add(&p->vf_oos, 1);
			}
		}
		atomic_fetch_add(&p->vf_blocks, nb);
		off += n;
		atomic_store(&p->vf_done, off);
	}
	if (rc || off < e->size)
		log_warn("peer %s: online verify stopped at %llu of %llu bytes%s%s", p->addr, (unsigned long long)off,
			 (unsigned long long)e->size, rc ? ": " : " (connection lost)", rc ? strerror(-rc) : "");
	else
		log_info("peer %s: online verify finished: %llu of %llu blocks out of sync%s", p->addr,
			 (unsigned long long)atomic_load(&p->vf_oos), (unsigned long long)atomic_load(&p->vf_blocks),
			 atomic_load(&p->vf_oos) ? "; they are resynced when the nodes connect again" : "");
	free(buf);
	free(mine);
	free(theirs);
	atomic_store(&p->vf_running, 0);
	return NULL;
}

int peer_verify_start(struct peer *p, char *msg)
{
	if (!connected(p) || atomic_load(&p->repl) != RS_ESTABLISHED || atomic_load(&p->peer_disk) != DS_UPTODATE ||
	    atomic_load(&p->e->dstate) != DS_UPTODATE) {
		snprintf(msg, 256, "refusing to verify: both disks must be UpToDate and connected with no resync "
			 "running (peer %s, %s)", conn_state_name((enum conn_state)atomic_load(&p->cstate)),
			 repl_state_name((enum repl_state)atomic_load(&p->repl)));
		return -EBUSY;
	}
	if (atomic_exchange(&p->vf_running, 1)) {
		snprintf(msg, 256, "a verify is already running");
		return -EBUSY;
	}
	if (p->vf_joinable)
		pthread_join(p->vf_thr, NULL);
	atomic_store(&p->vf_done, 0);
	atomic_store(&p->vf_oos, 0);
	atomic_store(&p->vf_blocks, 0);
	p->vf_joinable = pthread_create(&p->vf_thr, NULL, verify_main, p) == 0;
	if (!p->vf_joinable) {
		atomic_store(&p->vf_running, 0);
		snprintf(msg, 256, "cannot start the verify thread");
		return -EAGAIN;
	}
	return 0;
}

void peer_verify_status(struct peer *p, struct strbuf *sb)
{
	uint64_t done = atomic_load(&p->vf_done);
	strbuf_printf(sb, "%d %.1f %llu %llu\n", atomic_load(&p->vf_running),
		  p->e->size ? 100.0 * (double)done / (double)p->e->size : 100.0,
		  (unsigned long long)atomic_load(&p->vf_oos), (unsigned long long)atomic_load(&p->vf_blocks));
}

static void *rs_main(void *arg)
{
	struct peer *p = arg;
	struct engine *e = p->e;
	uint64_t cursor = 0;
	uint8_t *buf = NULL;
	uint8_t h[12];

	if (posix_memalign((void **)&buf, 4096, (size_t)RS_CHUNK_BLOCKS * MD_BLOCK))
		return NULL;
	if (p->need)
		for (uint64_t w = 0; w < (e->bm_bits + 63) / 64; w++)
			atomic_store(&p->need[w], 0);
	uint64_t total = engine_oos(e, p->slot) * MD_BLOCK;
	if (total > e->size)
		total = e->size;
	atomic_store(&p->sync_total, total);
	atomic_store(&p->sync_done, 0);
	atomic_store(&p->sync_start_ns, now_ns());
	if (rs_announce(p, total)) {
		free(buf);
		return NULL;
	}
	log_info("peer %s: resync started as SyncSource, %llu bytes to send", p->addr, (unsigned long long)total);

	while (!atomic_load(&p->rs_stop)) {
		uint64_t b = engine_next_oos(e, p->slot, cursor);
		if (b == UINT64_MAX) {
			/* wait for the window to drain, then look again from the start:
			 * writes that failed to replicate meanwhile are marked again */
			pthread_mutex_lock(&p->rslock);
			while (p->rs_out && !atomic_load(&p->rs_stop))
				pthread_cond_wait(&p->rscond, &p->rslock);
			pthread_mutex_unlock(&p->rslock);
			if (atomic_load(&p->rs_stop))
				break;
			if (engine_next_oos(e, p->slot, 0) == UINT64_MAX)
				break;
			cursor = 0;
			continue;
		}
		/* with csums-alg, a run is either checksums (blocks not yet
		 * compared) or data (blocks whose checksum differed) */
		int as_data = !p->has_csums || need_test(p, b);
		uint64_t n = 1;
		while (n < RS_CHUNK_BLOCKS && b + n < e->bm_bits && engine_next_oos(e, p->slot, b + n) == b + n &&
		       (!p->has_csums || need_test(p, b + n) == as_data))
			n++;
		/* throttle to the configured resync rate */
		if (p->rate) {
			uint64_t el = now_ns() - atomic_load(&p->sync_start_ns);
			uint64_t due = atomic_load(&p->sync_done) * 1000000000ULL / p->rate;
			if (due > el)
				sleep_ms((int)((due - el) / 1000000 + 1));
		}
		int slot = -1;
		pthread_mutex_lock(&p->rslock);
		while (p->rs_out >= RS_WINDOW && !atomic_load(&p->rs_stop))
			pthread_cond_wait(&p->rscond, &p->rslock);
		for (int i = 0; i < RS_WINDOW && slot < 0; i++)
			if (!p->rs[i].used)
				slot = i;
		pthread_mutex_unlock(&p->rslock);
		if (slot < 0)
			break;
		uint64_t off = b * MD_BLOCK;
		uint64_t len = n * MD_BLOCK;
		if (off + len > e->size)
			len = e->size - off;
		pthread_rwlock_wrlock(&p->sync_lock);
		engine_clear_oos(e, p->slot, b, n);
		int rc = disk_pread(e->disk, buf, len, off);
		if (!rc) {
			pthread_mutex_lock(&p->rslock);
			p->rs[slot] = (struct rs_slot){ off, (uint32_t)len, 1 };
			p->rs_out++;
			pthread_mutex_unlock(&p->rslock);
			put_be64(h, off);
			put_be32(h + 8, (uint32_t)len);
			if (as_data) {
				rc = send_pkt(p, CH_DATA, P_RS_DATA, 0, (uint64_t)slot, h, 12, buf, len);
				if (!rc)
					atomic_fetch_add_explicit(&e->st.sent_bytes, len, memory_order_relaxed);
				for (uint64_t i = 0; p->need && i < n; i++)
					atomic_fetch_and(&p->need[(b + i) >> 6], ~(1ULL << ((b + i) & 63)));
			} else {
				uint8_t dg[RS_CHUNK_BLOCKS * EVP_MAX_MD_SIZE];
				digests_md(p->cmd, buf, (uint32_t)len, dg);
				rc = send_pkt(p, CH_DATA, P_RS_CSUM, 0, (uint64_t)slot, h, 12, dg, n * md_len(p->cmd));
			}
		}
		pthread_rwlock_unlock(&p->sync_lock);
		if (rc) {
			engine_mark_oos(e, p->slot, off, len);
			break;
		}
		cursor = b + n;
	}
	free(buf);
	if (!atomic_load(&p->rs_stop) && connected(p)) {
		/* the bitmap generation becomes history; the target adopts ours */
		engine_sync_source_done(e, p->slot);
		uint8_t u[8 * UUID_COUNT + 8];
		pthread_mutex_lock(&e->lock);
		for (int i = 0; i < UUID_COUNT; i++)
			put_be64(u + 8 * i, e->sb.uuid[i]);
		put_be64(u + 8 * UUID_COUNT, e->sb.gen_time);
		pthread_mutex_unlock(&e->lock);
		send_pkt(p, CH_DATA, P_SYNC_DONE, 0, 0, u, sizeof u, NULL, 0);
		atomic_store(&p->peer_disk, DS_UPTODATE);
		atomic_store(&p->repl, RS_ESTABLISHED);
		uint64_t ms = (now_ns() - atomic_load(&p->sync_start_ns)) / 1000000;
		log_info("peer %s: resync finished: %llu bytes in %llu ms", p->addr,
			 (unsigned long long)atomic_load(&p->sync_done), (unsigned long long)ms);
	}
	return NULL;
}

static void rs_start(struct peer *p)
{
	pthread_mutex_lock(&p->rsctl);
	if (p->rs_running) {
		/* a finished run is joined before a new one starts */
		if (atomic_load(&p->repl) == RS_SYNC_SOURCE) {
			pthread_mutex_unlock(&p->rsctl);
			return;
		}
		pthread_join(p->rs_thr, NULL);
		p->rs_running = 0;
	}
	atomic_store(&p->rs_stop, 0);
	atomic_store(&p->repl, RS_SYNC_SOURCE);
	if (pthread_create(&p->rs_thr, NULL, rs_main, p) == 0)
		p->rs_running = 1;
	pthread_mutex_unlock(&p->rsctl);
}

static void rs_stop(struct peer *p)
{
	pthread_mutex_lock(&p->rsctl);
	if (!p->rs_running) {
		pthread_mutex_unlock(&p->rsctl);
		return;
	}
	atomic_store(&p->rs_stop, 1);
	pthread_mutex_lock(&p->rslock);
	pthread_cond_broadcast(&p->rscond);
	pthread_mutex_unlock(&p->rslock);
	pthread_join(p->rs_thr, NULL);
	p->rs_running = 0;
	pthread_mutex_unlock(&p->rsctl);
	/* chunks sent but not acknowledged must be sent again next time */
	pthread_mutex_lock(&p->rslock);
	for (int i = 0; i < RS_WINDOW; i++) {
		if (p->rs[i].used) {
			engine_mark_oos(p->e, p->slot, p->rs[i].off, p->rs[i].len);
			p->rs[i].used = 0;
		}
	}
	p->rs_out = 0;
	pthread_mutex_unlock(&p->rslock);
}

/* -------------------------------------------------------- receiving */

static void disconnect_sockets(struct peer *p)
{
	pthread_mutex_lock(&p->lock);
	if (p->dfd >= 0)
		shutdown(p->dfd, SHUT_RDWR);
	if (p->mfd >= 0)
		shutdown(p->mfd, SHUT_RDWR);
	pthread_mutex_unlock(&p->lock);
}

/* The oldest request still waiting for the peer's acknowledgement, in ms. */
static uint64_t oldest_unacked_ms(struct peer *p)
{
	uint64_t now = now_ns(), oldest = 0;
	for (int i = 0; i < PEND_MAX; i++) {
		struct pending *pd = &p->pend[i];
		if (!pending_in_use(p, pd))
			continue;
		pthread_mutex_lock(&pd->m);
		if (!pd->write_acked && !pd->failed && now - pd->sent_ns > oldest)
			oldest = now - pd->sent_ns;
		pthread_mutex_unlock(&pd->m);
	}
	return oldest / 1000000;
}

static void *meta_main(void *arg)
{
	struct peer *p = arg;
	uint8_t h[WIRE_HDR], body[64];
	uint64_t ping_out = 0, last_ping = now_ns(), scanned = now_ns(), last_rx = now_ns();
	int scan_ms = p->timeout_ms / 4 < 500 ? p->timeout_ms / 4 : 500;

	if (scan_ms < 10)
		scan_ms = 10;
	for (;;) {
		struct pollfd pf = { p->mfd, POLLIN, 0 };
		int wait = ping_out ? p->ping_timeout_ms : p->ping_int_ms;
		if (wait > scan_ms)
			wait = scan_ms;
		int n = poll(&pf, 1, wait);
		if (n < 0 && errno == EINTR)
			continue;
		uint64_t now = now_ns();
		if (now - scanned > (uint64_t)scan_ms * 1000000) {
			scanned = now;
			uint64_t old = oldest_unacked_ms(p);
			if (old > (uint64_t)p->timeout_ms) {
				set_reason(p, "peer did not acknowledge a request for %llu ms (timeout %d ms: 'timeout' "
					   "x 'ko-count'); dropping the connection", (unsigned long long)old, p->timeout_ms);
				break;
			}
		}
		/* any traffic proves the peer alive; only an answered ping renews
		 * the lease (quorum.h): it proves the peer heard this node after
		 * the ping was sent */
		if (ping_out && now - ping_out >= (uint64_t)p->ping_timeout_ms * 1000000 &&
		    now - last_rx >= (uint64_t)p->ping_timeout_ms * 1000000) {
			set_reason(p, "no answer to ping within %d ms; dropping the connection", p->ping_timeout_ms);
			break;
		}
		if (!ping_out && now - last_ping >= (uint64_t)p->ping_int_ms * 1000000) {
			/* a sender stuck on a full socket holds the lock: waiting for
			 * it longer than ping-timeout means the peer is not reading */
			struct timespec dl;
			clock_gettime(CLOCK_REALTIME, &dl);
			dl.tv_sec += p->ping_timeout_ms / 1000;
			dl.tv_nsec += (long)(p->ping_timeout_ms % 1000) * 1000000L;
			if (dl.tv_nsec >= 1000000000L) {
				dl.tv_sec++;
				dl.tv_nsec -= 1000000000L;
			}
			if (pthread_mutex_timedlock(&p->msend, &dl)) {
				set_reason(p, "could not send a ping within %d ms (the peer is not reading); dropping the "
					   "connection", p->ping_timeout_ms);
				break;
			}
			uint8_t ph[WIRE_HDR] = { 0 };
			put_be32(ph, WIRE_MAGIC);
			put_be16(ph + 4, P_PING);
			int src = p->mfd >= 0 ? write_full(p->mfd, ph, sizeof ph) : -ENOTCONN;
			pthread_mutex_unlock(&p->msend);
			if (src) {
				set_reason(p, "cannot send a ping: %s; dropping the connection", strerror(-src));
				break;
			}
			ping_out = last_ping = now;
		}
		if (n <= 0)
			continue;
		uint16_t type, flags;
		uint32_t len;
		uint64_t id;
		int rc = hs_recv_hdr(p->mfd, h, &type, &flags, &len, &id);
		if (rc || len > sizeof body || read_full(p->mfd, body, len)) {
			if (rc && rc != -EPIPE && rc != -ECONNRESET && !atomic_load(&p->stopping) &&
			    !atomic_load(&p->admin_down))
				set_reason(p, "meta channel: %s", rc == -EPROTO ? "bad packet magic" : strerror(-rc));
			break;
		}
		last_rx = now_ns();
		atomic_store(&p->last_rx_ns, last_rx);
		int status = len >= 4 ? (int)get_be32(body) : 0;
		switch (type) {
		case P_PING:
			send_pkt(p, CH_META, P_PING_ACK, 0, 0, NULL, 0, NULL, 0);
			break;
		case P_PING_ACK:
			if (ping_out)
				atomic_store(&p->lease_until_ns, ping_out + p->lease_ns);
			ping_out = 0;
			break;
		case P_RECV_ACK:
		case P_WRITE_ACK:
		case P_FLUSH_ACK:
			pending_ack(p, id, type == P_RECV_ACK ? P_RECV_ACK : P_WRITE_ACK, status);
			break;
		case P_RS_CSUM_REPLY: {
			/* blocks whose checksum differed: mark them again, to be sent as data */
			pthread_mutex_lock(&p->rslock);
			if (id < RS_WINDOW && p->rs[id].used && p->need) {
				uint64_t b0 = p->rs[id].off / MD_BLOCK, nb = (p->rs[id].len + MD_BLOCK - 1) / MD_BLOCK;
				uint64_t differ = 0;
				for (uint64_t i = 0; i < nb; i++) {
					int d = status || (len >= 4 + (i / 8) + 1 && (body[4 + i / 8] >> (i % 8)) & 1);
					if (!d)
						continue;
					differ++;
					atomic_fetch_or(&p->need[(b0 + i) >> 6], 1ULL << ((b0 + i) & 63));
					engine_mark_oos(p->e, p->slot, (b0 + i) * MD_BLOCK, MD_BLOCK);
				}
				atomic_fetch_add(&p->csum_skipped, (nb - differ) * MD_BLOCK);
			}
			pthread_mutex_unlock(&p->rslock);
			rs_release(p, id);
			break;
		}
		case P_RS_ACK:
			if (status) {
				pthread_mutex_lock(&p->rslock);
				if (id < RS_WINDOW && p->rs[id].used)
					engine_mark_oos(p->e, p->slot, p->rs[id].off, p->rs[id].len);
				pthread_mutex_unlock(&p->rslock);
			}
			rs_release(p, id);
			break;
		default:
			set_reason(p, "meta channel: unexpected packet type %u", type);
			goto out;
		}
	}
out:
	disconnect_sockets(p);
	return NULL;
}

static void send_state(struct peer *p)
{
	uint8_t b[32] = { 0 };
	uint64_t u[UUID_COUNT];
	hello_uuids(p, u);
	b[0] = (uint8_t)atomic_load(&p->e->role);
	b[1] = (uint8_t)atomic_load(&p->e->dstate);
	put_be64(b + 8, u[UUID_CURRENT]);
	put_be64(b + 16, u[UUID_HISTORY0]);
	put_be64(b + 24, u[UUID_HISTORY1]);
	send_pkt(p, CH_DATA, P_STATE, 0, 0, b, sizeof b, NULL, 0);
}

/* Apply a peer write, reconciling it with this node's own writes that the
 * peer had not applied when it sent this one (both were in flight at once):
 * the write of the lower node-id is the one left on both disks. The winner
 * applies only the parts outside its own conflicting writes; the loser first
 * waits until its own conflicting writes are on its disk, then applies the
 * winner's on top. Both sides see the same pairs: write W (seq s, seen σ)
 * conflicts with own write M iff they overlap and M.seq > σ. */
static int apply_peer_write(struct peer *p, const uint8_t *data, uint32_t len, uint64_t off, unsigned flags,
			    uint64_t seq, uint64_t seen)
{
	struct engine *e = p->e;
	struct { uint64_t off, end; } c[MAX_CONFLICTS];
	int nc = 0, rc = 0;
	int winner = p->me->node_id < p->ph->node_id;

	if (!p->allow_two) {
		/* the peer writes only while this node cannot: nothing to reconcile */
		rc = engine_apply(e, data, len, off, flags);
		atomic_store(&p->applied_seq, seq);
		return rc;
	}
	pthread_mutex_lock(&p->hlock);
	p->applying = 1;
	p->applying_off = off;
	p->applying_end = off + len;
	uint64_t last = atomic_load(&p->my_seq);
	uint64_t first = seen + 1;
	if (last >= HIST && first < last - HIST + 1)
		first = last - HIST + 1; /* older slots were reused */
	for (uint64_t s = first; s <= last && nc < MAX_CONFLICTS; s++) {
		struct hist *h = &p->hist[s % HIST];
		if (h->seq != s || h->off >= off + len || off >= h->off + h->len)
			continue;
		if (!winner)
			while (h->seq == s && !h->local_done)
				pthread_cond_wait(&p->hcond, &p->hlock);
		c[nc].off = h->off;
		c[nc].end = h->off + h->len;
		nc++;
	}
	pthread_mutex_unlock(&p->hlock);
	if (nc)
		atomic_fetch_add_explicit(&p->conflicts, 1, memory_order_relaxed);
	if (!nc || !winner) {
		rc = engine_apply(e, data, len, off, flags);
	} else {
		/* apply [off, end) minus the conflicting ranges, in offset order */
		uint64_t pos = off, end = off + len;
		for (int i = 1; i < nc; i++)
			for (int k = i; k > 0 && c[k - 1].off > c[k].off; k--) {
				uint64_t to = c[k].off, te = c[k].end;
				c[k] = c[k - 1];
				c[k - 1].off = to;
				c[k - 1].end = te;
			}
		for (int i = 0; i < nc && !rc; i++) {
			uint64_t cs = c[i].off > off ? c[i].off : off, ce = c[i].end < end ? c[i].end : end;
			if (ce <= pos)
				continue;
			if (cs > pos)
				rc = engine_apply(e, data ? data + (pos - off) : NULL, cs - pos, pos, flags);
			pos = ce;
		}
		if (!rc && pos < end)
			rc = engine_apply(e, data ? data + (pos - off) : NULL, end - pos, pos, flags);
	}
	pthread_mutex_lock(&p->hlock);
	atomic_store(&p->applied_seq, seq);
	p->applying = 0;
	pthread_cond_broadcast(&p->hcond);
	pthread_mutex_unlock(&p->hlock);
	return rc;
}

/* A request for [off, off+n) of the device (off u64, len u32 at the start
 * of the payload), at most max bytes: -EPROTO, reason set, when malformed. */
static int range_req(struct peer *p, uint32_t len, uint32_t max, const char *what, uint64_t *off, uint32_t *n)
{
	if (len < 12) {
		set_reason(p, "malformed %s (%u bytes)", what, len);
		return -EPROTO;
	}
	*off = get_be64(p->rbuf);
	*n = get_be32(p->rbuf + 8);
	if (*n > max || *off > p->e->size || *n > p->e->size - *off) {
		set_reason(p, "malformed %s: %u bytes at %llu", what, *n, (unsigned long long)*off);
		return -EPROTO;
	}
	return 0;
}

/* The receiver's buffer for answers (reads, digests): READ_MAX + a page,
 * data at +4096 so it is page-aligned for O_DIRECT. */
static uint8_t *scratch(struct peer *p)
{
	if (!p->scratch && posix_memalign((void **)&p->scratch, 4096, (size_t)READ_MAX + 4096)) {
		p->scratch = NULL;
		set_reason(p, "out of memory for a peer request");
	}
	return p->scratch;
}

/* Receive the data channel until it breaks. */
static void data_loop(struct peer *p)
{
	struct engine *e = p->e;
	uint8_t h[WIRE_HDR];

	for (;;) {
		uint16_t type, flags;
		uint32_t len;
		uint64_t id;
		int rc = hs_recv_hdr(p->dfd, h, &type, &flags, &len, &id);
		if (rc) {
			if (!atomic_load(&p->stopping) && !atomic_load(&p->admin_down))
				set_reason(p, "data channel: %s", rc == -EPROTO ? "bad packet magic" :
					   rc == -EMSGSIZE ? "oversized packet" : rc == -EPIPE ? "closed by peer" :
					   strerror(-rc));
			return;
		}
		if (len > p->rcap) {
			void *nb = NULL;
			size_t cap = ROUND_UP((size_t)len, 1u << 20);
			if (posix_memalign(&nb, 4096, cap)) {
				set_reason(p, "out of memory for a %u byte packet", len);
				return;
			}
			free(p->rbuf);
			p->rbuf = nb;
			p->rcap = cap;
		}
		if (len && (rc = read_full(p->dfd, p->rbuf, len))) {
			set_reason(p, "data channel: truncated packet (%s)", strerror(-rc));
			return;
		}
		switch (type) {
		case P_DATA:
		case P_RS_DATA: {
			uint32_t fixed = type == P_DATA ? DATA_HDR : RS_HDR;
			if (len < fixed) {
				set_reason(p, "malformed write packet (%u bytes)", len);
				return;
			}
			uint64_t off = get_be64(p->rbuf);
			uint32_t dlen = get_be32(p->rbuf + 8);
			int payload = !(flags & (DF_ZERO | DF_TRIM));
			if ((payload && dlen != len - fixed) || off > e->size || dlen > e->size - off) {
				set_reason(p, "malformed write packet: %u bytes at %llu (device has %llu)", dlen,
					   (unsigned long long)off, (unsigned long long)e->size);
				return;
			}
			const uint8_t *data = p->rbuf + fixed;
			if (type == P_RS_DATA) {
				/* only blocks still marked: a block the target wrote since
				 * the bitmap merge is newer than this */
				pthread_rwlock_wrlock(&p->sync_lock);
				rc = engine_apply_resync(e, data, dlen, off);
				pthread_rwlock_unlock(&p->sync_lock);
				atomic_fetch_add(&p->sync_done, dlen);
				send_ack(p, P_RS_ACK, id, -rc);
			} else {
				uint64_t seq = get_be64(p->rbuf + 12), seen = get_be64(p->rbuf + 20);
				send_ack(p, P_RECV_ACK, id, 0);
				rc = apply_peer_write(p, data, dlen, off, flags, seq, seen);
				/* from a peer without a disk: only this node has it */
				if (!rc && atomic_load(&p->peer_disk) == DS_DISKLESS)
					engine_mark_oos(e, p->slot, off, dlen);
				if (!rc && e->npeers > 1)
					engine_applied(e, p->slot, p->ph->node_id, get_be32(h + 12));
				send_ack(p, P_WRITE_ACK, id, -rc);
			}
			if (payload)
				atomic_fetch_add_explicit(&e->st.received_bytes, dlen, memory_order_relaxed);
			break;
		}

		case P_FLUSH:
			/* every write of the epoch was applied before this packet */
			rc = engine_flush_local(e);
			if (!rc && len >= 8)
				atomic_store(&p->rx_epoch, get_be64(p->rbuf));
			send_ack(p, P_FLUSH_ACK, id, -rc);
			break;
		case P_READ_REQ: {
			uint64_t off;
			uint32_t n;
			if (range_req(p, len, READ_MAX, "read request", &off, &n) || !scratch(p))
				return;
			/* data starts on a page boundary (O_DIRECT); status just before */
			uint8_t *d = p->scratch + 4096;
			rc = atomic_load(&e->dstate) == DS_UPTODATE ? engine_read(e, d, n, off) : -EIO;
			put_be32(d - 4, (uint32_t)-rc);
			if (send_pkt(p, CH_DATA, P_READ_REPLY, 0, id, d - 4, rc ? 4 : 4 + (size_t)n, NULL, 0))
				return;
			if (!rc)
				atomic_fetch_add_explicit(&e->st.sent_bytes, n, memory_order_relaxed);
			break;
		}
		case P_RS_CSUM: {
			uint64_t off;
			uint32_t n;
			if (range_req(p, len, RS_CHUNK_BLOCKS * MD_BLOCK, "checksum packet", &off, &n) || !scratch(p))
				return;
			unsigned dl = md_len(p->cmd), nb = (n + MD_BLOCK - 1) / MD_BLOCK;
			if (!p->has_csums || off % MD_BLOCK || len != 12 + nb * dl) {
				set_reason(p, "malformed checksum packet: %u bytes at %llu", n, (unsigned long long)off);
				return;
			}
			uint8_t *d = p->scratch + 4096, *mine = p->scratch + 4096 + RS_CHUNK_BLOCKS * MD_BLOCK;
			uint8_t reply[4 + RS_CHUNK_BLOCKS / 8] = { 0 };
			/* blocks that already match need no data: in sync now */
			pthread_rwlock_wrlock(&p->sync_lock);
			rc = disk_pread(e->disk, d, n, off);
			if (!rc) {
				digests_md(p->cmd, d, n, mine);
				for (unsigned i = 0; i < nb; i++) {
					uint64_t blk = off / MD_BLOCK + i;
					if (!memcmp(mine + i * dl, p->rbuf + 12 + i * dl, dl))
						engine_clear_oos(e, p->slot, blk, 1);
					else
						reply[4 + i / 8] |= (uint8_t)(1u << (i % 8));
				}
			}
			pthread_rwlock_unlock(&p->sync_lock);
			put_be32(reply, (uint32_t)-rc);
			atomic_fetch_add(&p->sync_done, n);
			send_pkt(p, CH_META, P_RS_CSUM_REPLY, 0, id, reply, 4 + (nb + 7) / 8, NULL, 0);
			break;
		}
		case P_VERIFY_REQ: {
			uint64_t off;
			uint32_t n;
			if (range_req(p, len, VF_CHUNK, "verify request", &off, &n) || !scratch(p))
				return;
			uint8_t *d = p->scratch + 4096, *dg = p->scratch + 4096 + VF_CHUNK + 4;
			unsigned nb = (n + MD_BLOCK - 1) / MD_BLOCK;
			rc = atomic_load(&e->dstate) == DS_UPTODATE ? disk_pread(e->disk, d, n, off) : -EIO;
			if (!rc)
				digests(p, d, n, dg);
			put_be32(dg - 4, (uint32_t)-rc);
			if (send_pkt(p, CH_DATA, P_READ_REPLY, 0, id, dg - 4, rc ? 4 : 4 + (size_t)nb * digest_len(p), NULL, 0))
				return;
			break;
		}
		case P_READ_REPLY: {
			if (len < 4)
				break;
			int st = (int)get_be32(p->rbuf);
			struct pending *pd = pending_lookup(p, id);
			if (pd && !st && (len - 4 != pd->rdlen || !pd->rdbuf))
				st = EPROTO;
			if (pd && !st)
				memcpy(pd->rdbuf, p->rbuf + 4, pd->rdlen);
			pending_ack(p, id, P_WRITE_ACK, st);
			break;
		}
		case P_PEER_BITMAP:
			if (!atomic_load(&p->await_peer_bm)) {
				set_reason(p, "peer sent its bitmap unasked; dropping the connection");
				return;
			}
			/* fall through */
		case P_BITMAP: {
			if (len < 8 || (len - 8) % 8) {
				set_reason(p, "malformed bitmap packet (%u bytes)", len);
				return;
			}
			uint64_t w = get_be64(p->rbuf), n = (len - 8) / 8;
			if (w > (e->bm_bits + 63) / 64 || n > (e->bm_bits + 63) / 64 - w) {
				set_reason(p, "bitmap packet beyond the device (word %llu)", (unsigned long long)w);
				return;
			}
			pthread_rwlock_wrlock(&p->sync_lock);
			engine_merge_oos(e, p->slot, w, p->rbuf + 8, n);
			pthread_rwlock_unlock(&p->sync_lock);
			break;
		}
		case P_PEER_BITMAP_DONE:
			if (atomic_exchange(&p->await_peer_bm, 0))
				rs_start(p);
			break;
		case P_BITMAP_DONE:
			atomic_store(&p->repl, RS_SYNC_TARGET);
			send_pkt(p, CH_DATA, P_SYNC_ACK, 0, 0, NULL, 0, NULL, 0);
			if (atomic_exchange(&p->sync_pending, 0) && engine_is_suspended(e))
				engine_resume(e, "the peer is back; blocks this node lacks are read from it until synced");
			break;
		case P_SYNC_ACK:
			pthread_mutex_lock(&p->rslock);
			atomic_store(&p->rs_go, 1);
			pthread_cond_broadcast(&p->rscond);
			pthread_mutex_unlock(&p->rslock);
			break;
		case P_STATE:
			if (len >= 16) {
				atomic_store(&p->peer_role, p->rbuf[0]);
				atomic_store(&p->peer_was_primary, p->rbuf[0] == ROLE_PRIMARY);
				atomic_store(&p->peer_disk, p->rbuf[1]);
				uint64_t pu = get_be64(p->rbuf + 8);
				atomic_store(&p->peer_uuid, pu);
				log_info("peer %s: now %s, disk %s", p->addr, role_name((enum role)p->rbuf[0]),
					 disk_state_name((enum disk_state)p->rbuf[1]));
				/* several peers: a Secondary in sync with its Primary follows it
				 * into the new generation it started without some other peer */
				if (e->npeers > 1 && p->rbuf[0] == ROLE_PRIMARY && p->rbuf[1] == DS_UPTODATE &&
				    atomic_load(&e->role) != ROLE_PRIMARY && atomic_load(&p->repl) == RS_ESTABLISHED &&
				    pu && pu != e->sb.uuid[UUID_CURRENT] &&
				    !engine_adopt_generation(e, p->slot, (const uint64_t[]){ pu, 0,
						len >= 32 ? get_be64(p->rbuf + 16) : 0, len >= 32 ? get_be64(p->rbuf + 24) : 0 },
						now_realtime_ns()))
					peers_state_changed(e, p);
				/* the peer's disk failed: what it writes from now on exists only
				 * here — a new generation, and the bitmap tracks it for the
				 * peer's return */
				if (p->rbuf[1] == DS_DISKLESS && atomic_load(&e->dstate) == DS_UPTODATE)
					engine_new_generation(e, 1u << p->slot, "the peer detached its disk");
				/* the peer threw its data away (invalidate): send it everything */
				if (p->rbuf[1] == DS_INCONSISTENT && atomic_load(&e->dstate) == DS_UPTODATE &&
				    atomic_load(&p->repl) == RS_ESTABLISHED && may_source(p)) {
					engine_mark_all_oos(e, p->slot);
					rs_start(p);
				}
			}
			break;
		case P_SYNC_START:
			if (atomic_load(&e->dstate) == DS_UPTODATE && !atomic_load(&p->expect_target)) {
				/* never let a peer overwrite good data we did not agree to */
				set_reason(p, "peer started a resync over this node's UpToDate data without "
					   "agreement; dropping the connection");
				return;
			}
			atomic_store(&p->expect_target, 0);
			if (atomic_load(&e->sync_peer) && atomic_load(&e->sync_peer) != p) {
				set_reason(p, "peer started a resync while this node is SyncTarget of another peer; "
					   "dropping the connection");
				return;
			}
			/* what this node sends as a source would be read from data
			 * that is being replaced: those resyncs stop and are asked for
			 * again (deferred until this one is done) */
			kick_sources(p);
			if (len >= 12) {
				atomic_store(&p->sync_total, get_be64(p->rbuf));
				atomic_store(&p->sync_done, 0);
				atomic_store(&p->sync_start_ns, now_ns());
				/* from here on the bitmap means "blocks this node lacks";
				 * writes in flight finish first */
				pthread_rwlock_wrlock(&p->sync_lock);
				rc = engine_sync_target_begin(e, p, p->slot, get_be32(p->rbuf + 8) & SSF_FULL);
				pthread_rwlock_unlock(&p->sync_lock);
				if (rc == -EBUSY) {
					set_reason(p, "peer started a resync while this node is SyncTarget of another "
						   "peer; connecting again (deferred until that one is done)");
					return;
				}
				if (rc) {
					set_reason(p, "cannot start the resync: metadata write failed: %s", strerror(-rc));
					return;
				}
				log_info("peer %s: resync started as SyncTarget, %llu bytes to receive", p->addr,
					 (unsigned long long)get_be64(p->rbuf));
			}
			break;
		case P_SYNC_DONE:
			if (len >= 8 * UUID_COUNT + 8 && atomic_load(&p->repl) == RS_SYNC_TARGET) {
				uint64_t u[UUID_COUNT];
				for (int i = 0; i < UUID_COUNT; i++)
					u[i] = get_be64(p->rbuf + 8 * i);
				disk_flush(e->disk);
				pthread_rwlock_wrlock(&p->sync_lock);
				engine_sync_target_done(e, u, get_be64(p->rbuf + 8 * UUID_COUNT));
				pthread_rwlock_unlock(&p->sync_lock);
				atomic_store(&p->repl, RS_ESTABLISHED);
				log_info("peer %s: resync finished, disk UpToDate", p->addr);
				peers_state_changed(e, NULL);
				kick_others(p, "this node finished its resync");
			}
			break;
		default:
			set_reason(p, "data channel: unknown packet type %u", type);
			return;
		}
	}
}

/* -------------------------------------------------------- handshake */

/* The generations this node shows peer p: its own, with p's slot's bitmap
 * generation in the bitmap place. */
static void hello_uuids(struct peer *p, uint64_t *u)
{
	struct engine *e = p->e;
	pthread_mutex_lock(&e->lock);
	for (int i = 0; i < UUID_COUNT; i++)
		u[i] = e->sb.uuid[i];
	u[UUID_BITMAP] = e->sb.peer[p->slot].bitmap_uuid;
	pthread_mutex_unlock(&e->lock);
}

/* This node's state in its HELLO (hs.h fills the rest). */
static void hello_fill(void *arg, uint8_t *b)
{
	struct peer *p = arg;
	struct engine *e = p->e;
	b[HELLO_ROLE] = (uint8_t)atomic_load(&e->role);
	b[HELLO_DISK] = (uint8_t)atomic_load(&e->dstate);
	struct peer *src = atomic_load(&e->sync_peer);
	put_be32(b + HELLO_FLAGS, get_be32(b + HELLO_FLAGS) | (e->crashed_primary ? HF_CRASHED_PRIMARY : 0) |
				  (atomic_load(&p->discard_my_data) ? HF_DISCARD_MY_DATA : 0) |
				  (engine_unsure(e, p->slot) ? HF_UNSURE : 0) | (third_primary(p) ? HF_THIRD_PRIMARY : 0) |
				  (src && src != p ? HF_BUSY_TARGET : 0));
	put_be64(b + HELLO_GEN_TIME, e->sb.gen_time);
	put_be64(b + HELLO_OOS, engine_oos(e, p->slot));
	uint64_t u[UUID_COUNT];
	hello_uuids(p, u);
	for (int i = 0; i < UUID_COUNT; i++)
		put_be64(b + HELLO_UUID + 8 * i, u[i]);
	put_be32(b + HELLO_STAMP, atomic_load(&e->applied_stamp));
	put_be32(b + HELLO_STAMP_FROM, (uint32_t)atomic_load(&e->applied_from));
}

static int handshake(struct peer *p, int fd, int *chp, const char *from, uint8_t *peer_hello, uint8_t *mine)
{
	char why[256];
	int rc = hs_handshake(&p->hs, fd, chp, from, peer_hello, mine, why);
	if (rc)
		set_reason(p, "%s", why);
	return rc;
}

/* --------------------------------------------------- connection setup */

static int dial(struct peer *p)
{
	return hs_dial(p->ph->address, p->wake[0]);
}

static int connected(struct peer *p);

/* Every inbound connection from the peer's node-id (and, the default route
 * of listener.h, anything unidentified) is handshaken here, on the listener
 * thread, whatever the state: a scanner or a confused client is dropped with
 * a reason naming its address; the real peer's channels are handed to
 * conn_main. If the peer dials while we think we are connected, it
 * restarted: the old connection is dropped in favour of the new one. */
static void peer_inbound(void *arg, int fd, const char *from)
{
	struct peer *p = arg;
	uint8_t hello[HELLO_BYTES], mine[HELLO_BYTES];
	int ch = -1;

	if (atomic_load(&p->stopping)) {
		close(fd);
		return;
	}
	hs_tune(fd);
	{
		if (handshake(p, fd, &ch, from, hello, mine)) {
			close(fd);
			return;
		}
		if (atomic_load(&p->admin_down)) {
			hs_refuse(fd, "disconnected by the administrator on this node");
			close(fd);
			return;
		}
		if (p->dialer) {
			hs_refuse(fd, "this node has the lower node-id and dials; do not dial it");
			set_reason(p, "%s dialed, but the node with the lower node-id dials; dropped", from);
			close(fd);
			return;
		}
		pthread_mutex_lock(&p->inq_lock);
		if (ch == CH_DATA) {
			if (p->in_dfd >= 0)
				close(p->in_dfd);
			if (p->in_mfd >= 0)
				close(p->in_mfd);
			p->in_dfd = fd;
			p->in_mfd = -1;
			memcpy(p->in_hello, hello, sizeof hello);
			memcpy(p->in_mine, mine, sizeof mine);
		} else if (p->in_dfd >= 0 && p->in_mfd < 0) {
			p->in_mfd = fd;
			pthread_cond_broadcast(&p->inq_cond);
		} else {
			close(fd);
		}
		int replace = ch == CH_DATA && connected(p);
		pthread_mutex_unlock(&p->inq_lock);
		if (replace) {
			set_reason(p, "peer dialed again: it restarted; replacing the old connection");
			disconnect_sockets(p);
		}
	}
}

static int establish(struct peer *p, uint8_t *hello, uint8_t *my_hello)
{
	uint8_t mh[HELLO_BYTES], mine[HELLO_BYTES];
	int dfd, mfd;

	if (p->dialer) {
		if (atomic_load(&p->admin_down))
			return -ECANCELED;
		dfd = dial(p);
		if (dfd < 0)
			return dfd;
		char from[96];
		snprintf(from, sizeof from, "%s", p->ph->address);
		int ch = CH_DATA;
		if (handshake(p, dfd, &ch, from, hello, my_hello)) {
			close(dfd);
			return -EPROTO;
		}
		mfd = dial(p);
		ch = CH_META;
		if (mfd < 0 || handshake(p, mfd, &ch, from, mh, mine)) {
			close(dfd);
			if (mfd >= 0)
				close(mfd);
			return -EPROTO;
		}
	} else {
		pthread_mutex_lock(&p->inq_lock);
		while ((p->in_dfd < 0 || p->in_mfd < 0) && !atomic_load(&p->stopping) && !atomic_load(&p->admin_down))
			pthread_cond_wait(&p->inq_cond, &p->inq_lock);
		dfd = p->in_dfd;
		mfd = p->in_mfd;
		p->in_dfd = p->in_mfd = -1;
		memcpy(hello, p->in_hello, HELLO_BYTES);
		memcpy(my_hello, p->in_mine, HELLO_BYTES);
		pthread_mutex_unlock(&p->inq_lock);
		if (atomic_load(&p->stopping) || atomic_load(&p->admin_down) || dfd < 0 || mfd < 0) {
			if (dfd >= 0)
				close(dfd);
			if (mfd >= 0)
				close(mfd);
			return -ECANCELED;
		}
	}
	/* both sides confirm they took this connection before deciding anything
	 * from the HELLOs: an acceptor that refused (administratively down,
	 * replaced) must not leave the dialer deciding alone */
	uint8_t rh[WIRE_HDR], why[256];
	uint16_t type, flags;
	uint32_t len;
	uint64_t id;
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(dfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	int rc = hs_send(dfd, P_READY, 0, NULL, 0);
	if (!rc)
		rc = hs_recv_hdr(dfd, rh, &type, &flags, &len, &id);
	if (!rc && type == P_REFUSE && len < sizeof why && !read_full(dfd, why, len)) {
		why[len] = 0;
		set_reason(p, "refused by %s: %s", p->ph->name, (char *)why);
		rc = -ECONNREFUSED;
	} else if (!rc && (type != P_READY || len)) {
		rc = -EPROTO;
	}
	tv.tv_sec = 0;
	setsockopt(dfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (rc) {
		close(dfd);
		close(mfd);
		return rc == -ECONNREFUSED ? -EPROTO : rc;
	}
	pthread_mutex_lock(&p->dsend);
	pthread_mutex_lock(&p->msend);
	pthread_mutex_lock(&p->lock);
	p->dfd = dfd;
	p->mfd = mfd;
	/* sequence numbers are per connection */
	pthread_mutex_lock(&p->hlock);
	memset(p->hist, 0, sizeof p->hist);
	pthread_mutex_unlock(&p->hlock);
	atomic_store(&p->my_seq, 0);
	atomic_store(&p->applied_seq, 0);
	atomic_store(&p->epoch, 1);
	atomic_store(&p->epoch_acked, 0);
	atomic_store(&p->rx_epoch, 0);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&p->msend);
	pthread_mutex_unlock(&p->dsend);
	return 0;
}

/* Must this node keep a write the peer did not get from completing? With
 * fencing: until the peer is fenced. Dual-primary without fencing or
 * quorum: the node with the higher node-id does (docs/fencing.md). */
static int peer_hold_unreplicated(struct peer *p)
{
	if (atomic_load(&p->e->role) != ROLE_PRIMARY || atomic_load(&p->hold_off) || quorum_enabled(p->e->quorum))
		return 0; /* (with quorum, quorum.c decides) */
	if (p->fencing)
		return 1;
	/* only a node that was Primary when the two lost each other: one
	 * promoted later was promoted by an operator who chose to */
	int was_primary = connected(p) || atomic_load(&p->primary_at_loss);
	return p->allow_two && !p->dialer && atomic_load(&p->peer_was_primary) && was_primary;
}

void peer_view(struct peer *p, struct peer_view *v)
{
	uint64_t now = now_ns();
	v->connected = connected(p) && atomic_load(&p->repl) != RS_OFF;
	v->usable = v->connected && atomic_load(&p->lease_until_ns) > now && !atomic_load(&p->sync_pending);
	v->last_rx_ns = atomic_load(&p->last_rx_ns);
	v->conn_seq = atomic_load(&p->conn_seq);
	v->role = atomic_load(&p->peer_role);
	v->disk = atomic_load(&p->peer_disk);
	v->uuid = atomic_load(&p->peer_uuid);
	v->repl = atomic_load(&p->repl);
}

void peer_io_resumed(struct peer *p)
{
	if (!connected(p))
		atomic_store(&p->hold_off, 1);
}

int peer_must_hold(struct peer *p)
{
	if (quorum_enabled(p->e->quorum) && !atomic_load(&p->hold_off))
		return atomic_load(&p->e->role) == ROLE_PRIMARY ? quorum_hold_write(p->e->quorum) : 0;
	if (!peer_hold_unreplicated(p))
		return 0;
	engine_suspend(p->e, p->fencing ? "a write could not be replicated; waiting for the peer to be fenced"
					: p->hold_reason);
	return 1;
}

/* fence-peer handler (DRBD exit codes): 3 peer Inconsistent, 4 peer
 * Outdated, 5 peer down, 7 peer fenced (STONITH) let I/O resume; anything
 * else leaves it frozen. */
static void fence_peer(struct peer *p)
{
	atomic_store(&p->fencing_now, 1);
	int rc = handler_run(p->r, "fence-peer", p->me, p->ph, 1);
	atomic_store(&p->fencing_now, 0);
	const char *what = rc == 3 ? "peer is Inconsistent" : rc == 4 ? "peer was outdated" : rc == 5 ? "peer is down"
			 : rc == 7 ? "peer was fenced (STONITH)" : NULL;
	if (what) {
		char why[160];
		snprintf(why, sizeof why, "fence-peer handler exited %d: %s", rc, what);
		atomic_fetch_add(&p->fenced, 1);
		engine_resume(p->e, why);
		return;
	}
	char why[256];
	snprintf(why, sizeof why, "fence-peer handler %s (exit %d); I/O stays frozen until the peer reconnects or "
		 "'dipole resume-io %s'", rc == -2 ? "is not configured" : "did not fence the peer", rc, p->e->res);
	engine_suspend(p->e, why);
	set_reason(p, "%s", why);
}

static void teardown(struct peer *p)
{
	atomic_store(&p->cstate, atomic_load(&p->stopping) ? CS_DISCONNECTING : CS_CONNECTING);
	disconnect_sockets(p);
	rs_stop(p);
	if (p->meta_running) {
		pthread_join(p->meta_thr, NULL);
		p->meta_running = 0;
	}
	if (p->established)
		atomic_store(&p->primary_at_loss, atomic_load(&p->e->role) == ROLE_PRIMARY);
	int hold = p->established && !atomic_load(&p->stopping) && peer_hold_unreplicated(p);
	if (hold)
		engine_suspend(p->e, p->fencing ? "connection to the peer lost; fencing it (fence-peer handler) before "
						  "any more writes complete" : p->hold_reason);
	pending_fail_all(p);
	if (p->established) {
		p->established = 0;
		/* what failed to replicate is marked: make the marks durable */
		engine_save_bitmap(p->e);
		disk_flush(p->e->disk);
		if (quorum_enabled(p->e->quorum)) {
			atomic_store(&p->lease_until_ns, 0);
			if (atomic_load(&p->e->role) == ROLE_PRIMARY && !atomic_load(&p->stopping))
				quorum_hold_write(p->e->quorum); /* it decides whether and when this node goes on */
		} else if (atomic_load(&p->e->role) == ROLE_PRIMARY && !atomic_load(&p->stopping)) {
			if (p->fencing)
				fence_peer(p);
			else if (hold)
				log_err("peer %s: lost while both nodes were Primary and there is neither fencing nor "
					"quorum: by the documented rule the lower node-id (%s) continues and this node's "
					"I/O stays frozen until the peer reconnects or 'dipole resume-io %s'", p->addr,
					p->ph->name, p->e->res);
			else if (p->allow_two && atomic_load(&p->peer_was_primary))
				log_err("peer %s: lost while both nodes were Primary and there is neither fencing nor "
					"quorum: by the documented rule this node (lower node-id) continues; the peer's "
					"I/O is frozen until they reconnect", p->addr);
			/* (several peers: a new generation starts when a write
			 * completes without this one, see engine.c) */
			if ((!hold || !engine_is_suspended(p->e)) && p->e->npeers == 1)
				engine_new_generation(p->e, 1u << p->slot, "Primary lost its peer");
		}
		/* a Secondary that lost its Primary compares data again with the
		 * other Secondaries, which may have more or less of its writes */
		if (atomic_load(&p->peer_was_primary) && atomic_load(&p->e->role) != ROLE_PRIMARY &&
		    !atomic_load(&p->stopping))
			kick_others(p, "the Primary was lost");
	}
	engine_sync_target_abort(p->e, p);
	atomic_store(&p->await_peer_bm, 0);
	atomic_store(&p->sync_pending, 0);
	pthread_mutex_lock(&p->dsend);
	pthread_mutex_lock(&p->msend);
	pthread_mutex_lock(&p->lock);
	if (p->dfd >= 0)
		close(p->dfd);
	if (p->mfd >= 0)
		close(p->mfd);
	p->dfd = p->mfd = -1;
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&p->msend);
	pthread_mutex_unlock(&p->dsend);
	atomic_store(&p->repl, RS_OFF);
	atomic_store(&p->peer_role, -1);
	atomic_store(&p->peer_disk, -1);
}

enum { V_TWO_PRIMARIES = 100, V_SPLIT_BRAIN, V_UNRELATED, V_STALE_FOR_DISKLESS, V_DEFERRED, V_THIRD_PRIMARY };

static void mside_of_hello(struct mside *m, const uint8_t *h)
{
	uint32_t f = get_be32(h + HELLO_FLAGS);
	m->disk = h[HELLO_DISK];
	m->primary = h[HELLO_ROLE] == ROLE_PRIMARY;
	m->node_id = (int)get_be32(h + HELLO_NODE_ID);
	m->unsure = !!(f & HF_UNSURE);
	m->third_primary = !!(f & HF_THIRD_PRIMARY);
	m->busy_target = !!(f & HF_BUSY_TARGET);
	m->stamp_from = (int32_t)get_be32(h + HELLO_STAMP_FROM);
	m->stamp = get_be32(h + HELLO_STAMP);
	m->busy_source = m->busy_target;
	m->current = get_be64(h + HELLO_UUID);
}

/* Several peers: decide_multi() on both HELLOs. */
static int multi_verdict(int v, const uint8_t *mine, const uint8_t *hello)
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
	for (int i = 0; i < e->npeers; i++)
		if (e->peers[i] != p && (!connected(e->peers[i]) || atomic_load(&e->peers[i]->repl) == RS_OFF))
			return 0;
	return 1;
}

/* A third node (not p) is Primary and connected to this one. */
static int third_primary(struct peer *p)
{
	struct engine *e = p->e;
	for (int i = 0; i < e->npeers; i++) {
		struct peer *q = e->peers[i];
		if (q != p && connected(q) && atomic_load(&q->repl) != RS_OFF && atomic_load(&q->peer_role) == ROLE_PRIMARY)
			return 1;
	}
	return 0;
}

/* May this node start a resync to p on its own (a peer became Inconsistent
 * while connected)? With several peers only the Primary does. */
static int may_source(struct peer *p)
{
	return p->e->npeers == 1 || atomic_load(&p->e->role) == ROLE_PRIMARY;
}

/* Compare data again (handshake anew) with the other connected peers whose
 * last decision was deferred, or, when the Primary was lost, that this node
 * is unsure of. */
static void kick_others(struct peer *p, const char *why)
{
	struct engine *e = p->e;
	int lost_primary = strstr(why, "Primary") != NULL;
	for (int i = 0; i < e->npeers; i++) {
		struct peer *q = e->peers[i];
		if (q == p || !connected(q) || atomic_load(&q->stopping))
			continue;
		if (!q->deferred && !(lost_primary && engine_unsure(e, q->slot)))
			continue;
		atomic_store(&q->recheck_ns, now_ns());
		log_info("peer %s: comparing data again (%s)", q->addr, why);
		disconnect_sockets(q);
	}
}

/* This node becomes SyncTarget of p: drop the links where it is SyncSource. */
static void kick_sources(struct peer *p)
{
	struct engine *e = p->e;
	for (int i = 0; i < e->npeers; i++) {
		struct peer *q = e->peers[i];
		if (q == p || !connected(q) || atomic_load(&q->repl) != RS_SYNC_SOURCE)
			continue;
		atomic_store(&q->recheck_ns, now_ns());
		log_info("peer %s: resync to it stopped: this node is SyncTarget of %s now", q->addr, p->ph->name);
		disconnect_sockets(q);
	}
}

/* Tell every connected peer but `except` this node's state. */
static void peers_state_changed(struct engine *e, struct peer *except)
{
	for (int i = 0; i < e->npeers; i++)
		if (e->peers[i] != except && connected(e->peers[i]))
			send_state(e->peers[i]);
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
static int confirm(struct peer *p, int verdict)
{
	uint8_t b[4], h[WIRE_HDR];
	uint16_t type, flags;
	uint32_t len;
	uint64_t id;
	if (p->no_confirm)
		return 0;
	put_be32(b, (uint32_t)verdict);
	int rc = send_pkt(p, CH_DATA, P_DECISION, 0, 0, b, 4, NULL, 0);
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(p->dfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (!rc)
		rc = hs_recv_hdr(p->dfd, h, &type, &flags, &len, &id);
	if (!rc && (type != P_DECISION || len != 4))
		rc = -EPROTO;
	if (!rc)
		rc = read_full(p->dfd, b, 4);
	tv.tv_sec = 0;
	setsockopt(p->dfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (!rc && (int)get_be32(b) != mirror_verdict(verdict)) {
		set_reason(p, "the peer reached another decision (%u, this node %d); connecting again", get_be32(b), verdict);
		return -EAGAIN;
	}
	if (rc) {
		set_reason(p, "the peer did not confirm the connection decision (%s); connecting again",
			   rc == -EPROTO ? "unexpected packet" : strerror(-rc));
		return -EAGAIN;
	}
	return 0;
}

static void side_of_hello(struct side *s, const uint8_t *h)
{
	uint32_t f = get_be32(h + HELLO_FLAGS);
	memset(s, 0, sizeof *s);
	s->disk = h[HELLO_DISK];
	s->primary = h[HELLO_ROLE] == ROLE_PRIMARY;
	for (int i = 0; i < G_COUNT; i++)
		s->uuid[i] = get_be64(h + HELLO_UUID + 8 * i);
	s->oos = get_be64(h + HELLO_OOS);
	s->node_id = (int)get_be32(h + HELLO_NODE_ID);
	s->crashed_primary = !!(f & HF_CRASHED_PRIMARY);
	s->discard_my_data = !!(f & HF_DISCARD_MY_DATA);
	s->gen_time = get_be64(h + HELLO_GEN_TIME);
}

/* Both sides apply decide_sync() (and, for a split brain, the configured
 * policy) to the same two HELLOs — each side's own as sent, not its state
 * now — so they reach mirror-image decisions. Returns 0 to run, <0 to drop
 * the connection (reason set). */
static int agree(struct peer *p, const uint8_t *hello, const uint8_t *mine)
{
	struct engine *e = p->e;
	struct side me, them;
	char why[128];
	int pri_lost = 0;

	side_of_hello(&me, mine);
	side_of_hello(&them, hello);
	/* The HELLO may have waited a long time (the peer's side of the link was
	 * down while the dialer's HELLO sat in a proxy or a socket): decide only
	 * on what is still true here, else handshake again. (The out-of-sync
	 * count may grow meanwhile; only whether it is zero changes decisions.) */
	uint64_t u[UUID_COUNT];
	int stale = 0;
	hello_uuids(p, u);
	for (int i = 0; i < G_COUNT; i++)
		stale |= me.uuid[i] != u[i];
	stale |= me.disk != atomic_load(&e->dstate) || me.primary != (atomic_load(&e->role) == ROLE_PRIMARY) ||
		 !me.oos != !engine_oos(e, p->slot) || me.crashed_primary != e->crashed_primary;
	if (stale) {
		set_reason(p, "local state changed during the handshake with %s; connecting again", p->ph->name);
		return -EAGAIN;
	}
	/* decide first, without side effects */
	enum decision d = D_NO_SYNC, r = D_NO_SYNC;
	int verdict;
	/* a node whose disk failed can serve only through a peer that has its
	 * latest data: not one it moved away from while they were apart */
	const struct side *dl = me.disk == DS_DISKLESS ? &me : them.disk == DS_DISKLESS ? &them : NULL;
	const struct side *other = dl == &me ? &them : &me;
	if (dl && dl->uuid[G_BITMAP] && dl->uuid[G_BITMAP] == other->uuid[G_CURRENT]) {
		verdict = V_STALE_FOR_DISKLESS;
	} else if (me.primary && them.primary && !p->allow_two) {
		verdict = V_TWO_PRIMARIES;
	} else if (!p->allow_two && ((me.primary && (get_be32(hello + HELLO_FLAGS) & HF_THIRD_PRIMARY)) ||
				     (them.primary && (get_be32(mine + HELLO_FLAGS) & HF_THIRD_PRIMARY)))) {
		verdict = V_THIRD_PRIMARY;
	} else {
		d = decide_sync(&me, &them);
		if (d == D_SPLIT_BRAIN)
			r = resolve_split_brain(&me, &them, &p->splitbrain, &pri_lost, why);
		verdict = d == D_UNRELATED ? V_UNRELATED : d == D_SPLIT_BRAIN && r == D_SPLIT_BRAIN ? V_SPLIT_BRAIN
			: (int)(d == D_SPLIT_BRAIN ? r : d);
		if (e->npeers > 1 && verdict < V_TWO_PRIMARIES)
			verdict = multi_verdict(verdict, mine, hello);
		/* two Secondaries that cannot tell how their data relates, while a
		 * third node is Primary: that one relates to each and syncs them */
		if (e->npeers > 1 && (verdict == V_SPLIT_BRAIN || verdict == V_UNRELATED || d == D_SPLIT_BRAIN) &&
		    !me.primary && !them.primary &&
		    ((get_be32(mine + HELLO_FLAGS) | get_be32(hello + HELLO_FLAGS)) & HF_THIRD_PRIMARY))
			verdict = V_DEFERRED;
	}
	/* both sides must have reached mirror-image verdicts before either acts:
	 * one whose HELLO went stale has hung up instead of answering */
	int rc = confirm(p, verdict);
	if (rc)
		return rc;
	atomic_store(&p->discard_my_data, 0); /* used up by this handshake */
	atomic_store(&p->peer_role, hello[HELLO_ROLE]);
	atomic_store(&p->peer_disk, hello[HELLO_DISK]);
	atomic_store(&p->peer_uuid, them.uuid[G_CURRENT]);
	if (verdict == V_TWO_PRIMARIES) {
		set_reason(p, "both nodes are Primary and allow-two-primaries is not set; not connecting");
		return -EBUSY;
	}
	if (verdict == V_THIRD_PRIMARY) {
		set_reason(p, "%s is Primary while %s is connected to another Primary; not connecting (retrying: it "
			   "connects once one of them is Secondary)", me.primary ? "this node" : p->ph->name,
			   me.primary ? p->ph->name : "this node");
		return -EALREADY;
	}
	p->deferred = verdict == V_DEFERRED;
	if (verdict == V_DEFERRED) {
		/* connected, no resync now: a third node is Primary (it syncs the
		 * one behind), or the one behind syncs from another peer first */
		uint32_t fm = get_be32(mine + HELLO_FLAGS), ft = get_be32(hello + HELLO_FLAGS);
		int related = d != D_SPLIT_BRAIN && d != D_UNRELATED;
		/* (unrelated: the one apart from the Primary is the one behind) */
		int behind = d == D_TARGET_FULL || d == D_TARGET_BITMAP ||
			     (!related && !(fm & HF_THIRD_PRIMARY) && (ft & HF_THIRD_PRIMARY));
		log_info("peer %s: connected; resync %s deferred: %s", p->addr, behind ? "to this node" : "from this node",
			 !related ? "how the two relate is not known here; the Primary resyncs the one behind"
			 : (fm | ft) & HF_BUSY_TARGET ? "the node behind is SyncTarget of another peer"
						   : "a third node is Primary and resyncs the node behind");
		if (behind && atomic_load(&e->dstate) == DS_UPTODATE && atomic_load(&e->role) != ROLE_PRIMARY) {
			pthread_mutex_lock(&e->lock);
			atomic_store(&e->dstate, DS_OUTDATED);
			pthread_mutex_unlock(&e->lock);
			log_warn("disk UpToDate -> Outdated: peer %s has newer data", p->ph->name);
		}
		d = D_NO_SYNC;
		verdict = D_NO_SYNC;
	} else if (e->npeers > 1 && verdict != (int)d && verdict < V_TWO_PRIMARIES) {
		log_info("peer %s: %s becomes %s: the two may differ in writes of a lost Primary (unsure)",
			 p->addr, decision_name(d), decision_name((enum decision)verdict));
		d = (enum decision)verdict;
	}
	if (verdict == V_STALE_FOR_DISKLESS) {
		set_reason(p, "%s disk failed (Diskless) after writes %s never got: serving through it would return "
			   "old data; not connecting. Bring the failed disk back (down, fix, up) to resync",
			   dl == &me ? "this node's" : "the peer's", dl == &me ? "the peer" : "this node");
		return -EXDEV;
	}
	if (d == D_SPLIT_BRAIN) {
		if (!p->splitbrain_retrying)
			atomic_fetch_add(&p->split_brains, 1);
		p->splitbrain_retrying = 0;
		if (r == D_SPLIT_BRAIN) {
			set_reason(p, "split brain: both nodes changed the data since generation %016llx (%llu and "
				   "%llu blocks), not resolved automatically (%s). Pick the node whose changes to "
				   "drop: 'dipole connect %s --discard-my-data' there, 'dipole connect %s' on the other",
				   (unsigned long long)(me.uuid[G_BITMAP] ? me.uuid[G_BITMAP] : me.uuid[G_HIST0]),
				   (unsigned long long)me.oos, (unsigned long long)them.oos, why, e->res, e->res);
			/* several disks, two Secondaries: a Primary may yet bring both to
			 * the same data; ask again later (counted and handled once) */
			if (e->npeers > 1 && !me.primary && !them.primary) {
				if (!p->splitbrain_retried)
					handler_run(p->r, "split-brain", p->me, p->ph, 0);
				p->splitbrain_retried = p->splitbrain_retrying = 1;
				return -EALREADY;
			}
			handler_run(p->r, "split-brain", p->me, p->ph, 0);
			return -EXDEV;
		}
		log_warn("peer %s: split brain detected and resolved by %s: %s", p->addr, why,
			 r == D_SOURCE_BITMAP ? "this node's data is kept and sent to the peer"
					      : "this node's changes since the split are discarded (resync from the peer)");
		set_reason(p, "split brain resolved automatically (%s); this node %s", why,
			   r == D_SOURCE_BITMAP ? "kept its data" : "was the victim");
		if (pri_lost)
			handler_run(p->r, "pri-lost-after-sb", p->me, p->ph, 0);
		d = r;
	} else if (d == D_UNRELATED) {
		set_reason(p, "unrelated data: local generation %016llx, peer %016llx, no common history; refusing "
			   "to sync (wrong disk or another resource's disk?)",
			   (unsigned long long)me.uuid[G_CURRENT], (unsigned long long)them.uuid[G_CURRENT]);
		return -EXDEV;
	} else {
		set_reason(p, "%s", "");
	}
	log_info("peer %s: connected; local %s %016llx, peer %s %016llx: %s", p->addr,
		 disk_state_name((enum disk_state)me.disk), (unsigned long long)me.uuid[G_CURRENT],
		 disk_state_name((enum disk_state)them.disk), (unsigned long long)them.uuid[G_CURRENT], decision_name(d));
	atomic_store(&p->peer_was_primary, hello[HELLO_ROLE] == ROLE_PRIMARY);
	atomic_store(&p->primary_at_loss, 0);
	atomic_store(&p->hold_off, 0);
	/* a node about to be SyncTarget resumes only once the source's bitmap
	 * is merged: until then a read would return its old data */
	int target = d == D_TARGET_FULL || d == D_TARGET_BITMAP;
	atomic_store(&p->sync_pending, target);
	if (engine_is_suspended(e) && !target)
		engine_resume(e, "the peer is back");
	/* an Outdated (quorum lost) or Consistent (just started, with quorum)
	 * disk is current again once it meets a peer with the newest data, or
	 * when the two of them are every disk of the resource */
	int mine_ds = atomic_load(&e->dstate);
	if ((mine_ds == DS_OUTDATED || mine_ds == DS_CONSISTENT) &&
	    (d == D_NO_SYNC || d == D_SOURCE_BITMAP || d == D_SOURCE_FULL) &&
	    (them.disk == DS_UPTODATE || all_disks_here(p))) {
		engine_set_uptodate(e, them.disk == DS_UPTODATE ? "the peer with the newest data is back"
								: "every disk of the resource is connected again");
		send_state(p);
	}
	uint64_t t0 = now_ns();
	atomic_store(&p->last_rx_ns, t0);
	atomic_store(&p->lease_until_ns, t0 + p->lease_ns);
	atomic_fetch_add(&p->conn_seq, 1);
	atomic_store(&p->repl, RS_ESTABLISHED);
	atomic_store(&p->expect_target, d == D_TARGET_FULL || d == D_TARGET_BITMAP);
	atomic_store(&p->await_peer_bm, d == D_SOURCE_BITMAP);
	p->established = 1;
	p->splitbrain_retried = p->splitbrain_retrying = 0;
	atomic_store(&p->recheck_ns, 0);
	/* nothing to compare: whatever was unsure between the two is settled */
	if (d == D_NO_SYNC && !((get_be32(mine + HELLO_FLAGS) | get_be32(hello + HELLO_FLAGS)) & HF_THIRD_PRIMARY) &&
	    !p->deferred && me.disk == DS_UPTODATE && them.disk == DS_UPTODATE && !me.primary && !them.primary)
		engine_set_unsure(e, p->slot, 0);
	/* the activity log's marks are in the bitmap now, part of this decision */
	e->crashed_primary = 0;
	if (d == D_SOURCE_FULL) {
		engine_mark_all_oos(e, p->slot);
		rs_start(p);
	} else if (d == D_TARGET_BITMAP) {
		rc = send_bitmap(p, P_PEER_BITMAP, P_PEER_BITMAP_DONE);
		if (rc)
			return rc;
	}
	return 0;
}

static void *conn_main(void *arg)
{
	struct peer *p = arg;
	uint8_t hello[HELLO_BYTES], mine[HELLO_BYTES];
	int backoff = 100;

	while (!atomic_load(&p->stopping)) {
		if (atomic_load(&p->admin_down)) {
			atomic_store(&p->cstate, CS_STANDALONE);
			pthread_mutex_lock(&p->admin_lock);
			while (atomic_load(&p->admin_down) && !atomic_load(&p->stopping))
				pthread_cond_wait(&p->admin_cond, &p->admin_lock);
			pthread_mutex_unlock(&p->admin_lock);
			backoff = 100;
			continue;
		}
		atomic_store(&p->cstate, CS_CONNECTING);
		int rc = establish(p, hello, mine);
		if (rc) {
			if (rc == -ECANCELED && atomic_load(&p->stopping))
				break;
			if (rc == -ECANCELED)
				continue;
			if (p->dialer && rc != -EPROTO)
				set_reason(p, "cannot connect to %s: %s; retrying", p->ph->address, strerror(-rc));
			/* back off: 0.1 s doubling up to connect-int */
			struct pollfd pf = { p->wake[0], POLLIN, 0 };
			poll(&pf, 1, backoff);
			backoff = backoff * 2 > p->connect_int_ms ? p->connect_int_ms : backoff * 2;
			continue;
		}
		backoff = 100;
		atomic_store(&p->cstate, CS_CONNECTED);
		if ((rc = agree(p, hello, mine))) {
			teardown(p);
			if (atomic_load(&p->stopping))
				break;
			if (rc == -EAGAIN)
				continue; /* stale HELLO: handshake again */
			if (rc == -EALREADY) {
				/* a third node's role keeps these two apart: try again later */
				struct pollfd pf = { p->wake[0], POLLIN, 0 };
				poll(&pf, 1, p->connect_int_ms);
				continue;
			}
			/* a refusal by state (split brain, unrelated, two primaries) does
			 * not heal by itself: StandAlone until `dipole connect` */
			atomic_store(&p->admin_down, 1);
			continue;
		}
		if (pthread_create(&p->meta_thr, NULL, meta_main, p) == 0)
			p->meta_running = 1;
		data_loop(p);
		teardown(p);
		if (!atomic_load(&p->stopping))
			log_warn("peer %s: connection lost; writes are tracked in the bitmap until it returns", p->addr);
	}
	atomic_store(&p->cstate, CS_STANDALONE);
	return NULL;
}

/* ------------------------------------------------------------ public */

static int opt_int(const struct cfg_resource *r, enum cfg_sect s, const char *key, int def)
{
	const char *v = cfg_get(r, s, key);
	long x;
	return v && !parse_int(v, 0, 1000000, &x) ? (int)x : def;
}

static int host_node_id(const char *name, void *arg)
{
	const struct cfg_resource *r = arg;
	for (int i = 0; i < r->nhosts; i++)
		if (!strcmp(r->hosts[i].name, name))
			return r->hosts[i].node_id;
	return -1;
}

static struct peer *peer_new(struct engine *e, const struct cfg_resource *r, const struct cfg_host *me,
			     const struct cfg_host *ph, char *err)
{
	struct peer *p = calloc(1, sizeof *p);
	const char *v;

	if (!p)
		return NULL;
	p->e = e;
	p->r = r;
	p->me = me;
	p->ph = ph;
	snprintf(p->addr, sizeof p->addr, "%s (%s)", ph->name, ph->address);
	v = cfg_get(r, SECT_NET, "protocol");
	p->protocol = v ? v[0] : 'C';
	p->allow_two = cfg_get_bool(r, SECT_NET, "allow-two-primaries");
	if (p->allow_two && p->protocol != 'C') {
		snprintf(err, 256, "allow-two-primaries needs protocol C (as with DRBD): with %c a write could complete "
			 "on one Primary that the other never sees", p->protocol);
		free(p);
		return NULL;
	}
	if (((v = cfg_get(r, SECT_NET, "fencing")) || (v = cfg_get(r, SECT_DISK, "fencing"))) && strcmp(v, "dont-care"))
		p->fencing = 1;
	snprintf(p->hold_reason, sizeof p->hold_reason, "lost peer %s while both were Primary (no fencing, no "
		 "quorum): the lower node-id (%s) continues; I/O here is frozen until it reconnects or 'dipole "
		 "resume-io %s'", ph->name, ph->name, e->res);
	v = cfg_get(r, SECT_NET, "shared-secret");
	if (v && *v) {
		snprintf(p->secret, sizeof p->secret, "%s", v);
		p->has_secret = 1;
		const char *alg = cfg_get(r, SECT_NET, "cram-hmac-alg");
		p->md = EVP_get_digestbyname(alg ? alg : "sha256");
		if (!p->md) {
			snprintf(err, 256, "cram-hmac-alg '%s' is not a digest this system knows (try sha256)", alg);
			free(p);
			return NULL;
		}
	} else {
		log_warn("no shared-secret for resource %s: peers are not authenticated", r->name);
	}

	/* DRBD units: connect-int and ping-int in seconds, ping-timeout in 0.1 s */
	p->connect_int_ms = opt_int(r, SECT_NET, "connect-int", 10) * 1000;
	p->ping_int_ms = opt_int(r, SECT_NET, "ping-int", 10) * 1000;
	p->ping_timeout_ms = opt_int(r, SECT_NET, "ping-timeout", 5) * 100;
	p->lease_ns = ((uint64_t)p->ping_int_ms + (uint64_t)p->ping_timeout_ms) * 1000000;
	/* DRBD: timeout in 0.1 s (default 6 s), times ko-count when set */
	p->timeout_ms = opt_int(r, SECT_NET, "timeout", 60) * 100;
	if (opt_int(r, SECT_NET, "ko-count", 0) > 0)
		p->timeout_ms *= opt_int(r, SECT_NET, "ko-count", 0);
	static const char *const sbk[3] = { "after-sb-0pri", "after-sb-1pri", "after-sb-2pri" };
	enum splitbrain_rule *sbr[3] = { &p->splitbrain.p0, &p->splitbrain.p1, &p->splitbrain.p2 };
	p->splitbrain.discard_node_id = -1;
	for (int i = 0; i < 3; i++) {
		v = cfg_get(r, SECT_NET, sbk[i]);
		if (splitbrain_rule_parse(i, v, sbr[i], &p->splitbrain.discard_node_id, host_node_id, (void *)r)) {
			snprintf(err, 256, "%s %s: not a policy dipole knows here (see docs/split-brain.md)", sbk[i], v);
			free(p);
			return NULL;
		}
	}
	uint64_t rate = 0;
	if ((v = cfg_get(r, SECT_DISK, "c-max-rate")) || (v = cfg_get(r, SECT_DISK, "resync-rate")))
		parse_size(v, &rate);
	/* DRBD rates without a unit are KiB/s */
	if (v && rate && strspn(v, "0123456789") == strlen(v))
		rate *= 1024;
	p->rate = rate;
	p->dialer = me->node_id < ph->node_id;
	p->hs = (struct hs_conf){ .res = e->res, .my_id = me->node_id, .peer_id = ph->node_id, .peer_name = ph->name,
				  .size = e->size, .protocol = p->protocol, .allow_two = p->allow_two,
				  .secret = p->secret, .has_secret = p->has_secret, .md = p->md,
				  .timeout_ms = p->timeout_ms, .fill = hello_fill, .arg = p };
	v = cfg_get(r, SECT_NET, "csums-alg");
	if (v && (p->has_csums = 1) && strcmp(v, "crc32c") && !(p->cmd = EVP_get_digestbyname(v))) {
		snprintf(err, 256, "csums-alg '%s' is not a digest this system knows (try sha256 or crc32c)", v);
		free(p);
		return NULL;
	}
	if (p->has_csums && !(p->need = calloc((e->bm_bits + 63) / 64, sizeof *p->need))) {
		snprintf(err, 256, "out of memory for the checksum bitmap");
		free(p);
		return NULL;
	}
	v = cfg_get(r, SECT_NET, "verify-alg");
	if (v && strcmp(v, "crc32c") && !(p->vmd = EVP_get_digestbyname(v))) {
		snprintf(err, 256, "verify-alg '%s' is not a digest this system knows (try sha256 or crc32c)", v);
		free(p->need);
		free(p);
		return NULL;
	}
	p->dfd = p->mfd = -1;
	p->in_dfd = p->in_mfd = -1;
	pthread_mutex_init(&p->inq_lock, NULL);
	pthread_cond_init(&p->inq_cond, NULL);
	p->peer_role = p->peer_disk = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->admin_lock, NULL);
	pthread_cond_init(&p->admin_cond, NULL);
	pthread_mutex_init(&p->dsend, NULL);
	pthread_mutex_init(&p->msend, NULL);
	pthread_mutex_init(&p->plock, NULL);
	pthread_cond_init(&p->pcond, NULL);
	/* writers first: a resync chunk must not starve behind a stream of writes */
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&p->sync_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&p->rslock, NULL);
	pthread_mutex_init(&p->rsctl, NULL);
	pthread_mutex_init(&p->hlock, NULL);
	pthread_cond_init(&p->hcond, NULL);
	pthread_cond_init(&p->rscond, NULL);
	for (int i = PEND_MAX - 1; i >= 0; i--) {
		pthread_mutex_init(&p->pend[i].m, NULL);
		pthread_cond_init(&p->pend[i].c, NULL);
		p->pend[i].next = p->pfree;
		p->pfree = &p->pend[i];
	}
	if (pipe2(p->wake, O_CLOEXEC) < 0) {
		snprintf(err, 256, "cannot create a pipe: %s", strerror(errno));
		peer_stop(p);
		return NULL;
	}
	return p;
}

int peer_start(struct peer **out, struct engine *e, const struct cfg_resource *r, const struct cfg_host *me,
	       const struct cfg_host *ph, struct listener *l, char *err)
{
	struct peer *p = peer_new(e, r, me, ph, err);
	char why[MD_MSG_MAX];

	if (!p)
		return -EINVAL;
	if ((p->slot = engine_bind_slot(e, ph->node_id, why)) < 0) {
		snprintf(err, 256, "%s", why);
		p->slot = 0;
		peer_stop(p);
		return -ENOSPC;
	}
	listener_route(l, ph->node_id, peer_inbound, p);
	listener_route(l, -1, peer_inbound, p); /* unidentified callers get this peer's refusal */
	atomic_store(&p->cstate, CS_CONNECTING);
	if (pthread_create(&p->thr, NULL, conn_main, p)) {
		snprintf(err, 256, "cannot start the peer thread");
		peer_stop(p);
		return -EAGAIN;
	}
	*out = p;
	return 0;
}

void peer_stop(struct peer *p)
{
	if (!p)
		return;
	atomic_store(&p->stopping, 1);
	if (p->wake[1] > 0)
		(void)!write(p->wake[1], "x", 1);
	disconnect_sockets(p);
	pthread_mutex_lock(&p->inq_lock);
	pthread_cond_broadcast(&p->inq_cond);
	pthread_mutex_unlock(&p->inq_lock);
	pthread_mutex_lock(&p->admin_lock);
	pthread_cond_broadcast(&p->admin_cond);
	pthread_mutex_unlock(&p->admin_lock);
	if (p->vf_joinable)
		pthread_join(p->vf_thr, NULL);
	if (p->thr)
		pthread_join(p->thr, NULL);
	if (p->in_dfd >= 0)
		close(p->in_dfd);
	if (p->in_mfd >= 0)
		close(p->in_mfd);
	if (p->wake[0] > 0) {
		close(p->wake[0]);
		close(p->wake[1]);
	}
	free(p->rbuf);
	free(p->scratch);
	free(p->need);
	free(p);
}

void peer_disconnect(struct peer *p)
{
	pthread_mutex_lock(&p->admin_lock);
	atomic_store(&p->admin_down, 1);
	pthread_mutex_unlock(&p->admin_lock);
	set_reason(p, "disconnected by the administrator");
	disconnect_sockets(p);
	pthread_mutex_lock(&p->inq_lock);
	pthread_cond_broadcast(&p->inq_cond);
	pthread_mutex_unlock(&p->inq_lock);
}

int peer_is_connected(struct peer *p)
{
	return connected(p);
}

int peer_invalidate(struct peer *p, char *msg)
{
	struct engine *e = p->e;
	if (!connected(p) || atomic_load(&p->peer_disk) != DS_UPTODATE || atomic_load(&p->repl) != RS_ESTABLISHED) {
		snprintf(msg, 256, "refusing to invalidate: it needs a connected UpToDate peer with no resync "
			 "running to sync from (peer is %s, %s)", conn_state_name((enum conn_state)atomic_load(&p->cstate)),
			 repl_state_name((enum repl_state)atomic_load(&p->repl)));
		return -EBUSY;
	}
	/* (a Primary may invalidate too: it reads from the peer during the sync) */
	atomic_store(&p->expect_target, 1);
	pthread_rwlock_wrlock(&p->sync_lock);
	int rc = engine_sync_target_begin(e, p, p->slot, 1);
	pthread_rwlock_unlock(&p->sync_lock);
	if (rc) {
		snprintf(msg, 256, rc == -EBUSY ? "refusing to invalidate: a resync to this node is running"
						: "cannot write metadata: %s", strerror(-rc));
		return rc;
	}
	log_warn("invalidated: local data is Inconsistent until the full sync from %s completes", p->ph->name);
	send_state(p);
	return 0;
}

void peer_connect(struct peer *p, int discard_my_data)
{
	if (discard_my_data)
		atomic_store(&p->discard_my_data, 1);
	pthread_mutex_lock(&p->admin_lock);
	atomic_store(&p->admin_down, 0);
	pthread_cond_broadcast(&p->admin_cond);
	pthread_mutex_unlock(&p->admin_lock);
}

void peer_state_changed(struct peer *p)
{
	if (!connected(p))
		return;
	send_state(p);
	/* forced UpToDate while connected to an Inconsistent peer: full sync */
	if (atomic_load(&p->e->dstate) == DS_UPTODATE && atomic_load(&p->peer_disk) == DS_INCONSISTENT &&
	    atomic_load(&p->repl) == RS_ESTABLISHED && may_source(p)) {
		engine_mark_all_oos(p->e, p->slot);
		rs_start(p);
	}
}

int peer_may_promote(struct peer *p, char *msg)
{
	uint64_t k = atomic_load(&p->recheck_ns);
	/* (a peer that does not come back within a lease or two is gone) */
	if (k && now_ns() - k < 2 * p->lease_ns + 2000000000ull && !atomic_load(&p->admin_down)) {
		snprintf(msg, 256, "refusing to become Primary: comparing data with %s first (the Primary was lost "
			 "and either may have more of its writes); try again in a moment", p->ph->name);
		return -EBUSY;
	}
	if (connected(p) && atomic_load(&p->peer_role) == ROLE_PRIMARY && !p->allow_two) {
		snprintf(msg, 256, "refusing to become Primary: peer %s is Primary and allow-two-primaries "
			 "is not set", p->ph->name);
		return -EBUSY;
	}
	return 0;
}

static double sync_percent(struct peer *p)
{
	int r = atomic_load(&p->repl);
	uint64_t tot = atomic_load(&p->sync_total), done = atomic_load(&p->sync_done);
	if (r == RS_SYNC_SOURCE || r == RS_SYNC_TARGET)
		return tot ? 100.0 * (double)(done > tot ? tot : done) / (double)tot : 0.0;
	if (r == RS_ESTABLISHED && atomic_load(&p->e->dstate) == DS_UPTODATE && atomic_load(&p->peer_disk) == DS_UPTODATE)
		return 100.0;
	uint64_t oos = engine_oos(p->e, p->slot) * MD_BLOCK;
	return p->e->size ? 100.0 - 100.0 * (double)(oos > p->e->size ? p->e->size : oos) / (double)p->e->size : 0;
}

static uint64_t oos_bytes(struct peer *p)
{
	if (atomic_load(&p->repl) == RS_SYNC_TARGET) {
		uint64_t tot = atomic_load(&p->sync_total), done = atomic_load(&p->sync_done);
		return done > tot ? 0 : tot - done;
	}
	uint64_t oos = engine_oos(p->e, p->slot) * MD_BLOCK;
	return oos > p->e->size ? p->e->size : oos;
}

static const char *peer_role_name(struct peer *p)
{
	int r = atomic_load(&p->peer_role);
	return connected(p) && r >= 0 ? role_name((enum role)r) : "Unknown";
}

static const char *peer_disk_name(struct peer *p)
{
	int d = atomic_load(&p->peer_disk);
	return connected(p) && d >= 0 ? disk_state_name((enum disk_state)d) : "DUnknown";
}

void peer_status_json(struct peer *p, struct strbuf *sb)
{
	char reason[256];
	pthread_mutex_lock(&p->lock);
	snprintf(reason, sizeof reason, "%s", p->reason);
	pthread_mutex_unlock(&p->lock);
	uint64_t el = (now_ns() - atomic_load(&p->sync_start_ns)) / 1000000;
	int r = atomic_load(&p->repl);
	uint64_t done = atomic_load(&p->sync_done);
	double speed = (r == RS_SYNC_SOURCE || r == RS_SYNC_TARGET) && el ? (double)done / 1048576.0 / ((double)el / 1000.0) : 0;
	strbuf_printf(sb, "{\"name\":");
	strbuf_json_str(sb, p->ph->name);
	strbuf_printf(sb, ",\"node_id\":%d,\"address\":", p->ph->node_id);
	strbuf_json_str(sb, p->ph->address);
	strbuf_printf(sb, ",\"connection\":\"%s\",\"role\":\"%s\",\"disk\":\"%s\",\"replication\":\"%s\","
		  "\"protocol\":\"%c\",\"out_of_sync_bytes\":%llu,\"sync_done_percent\":%.1f,"
		  "\"sync_speed_mib_s\":%.1f,\"sync_eta_s\":%.0f,\"write_conflicts\":%llu,"
		  "\"epoch\":%llu,\"epoch_stable\":%llu,\"peer_epoch_stable\":%llu,\"split_brains\":%llu,"
		  "\"csum_skipped_bytes\":%llu,\"fencing_in_progress\":%s,\"fenced\":%llu,"
		  "\"bitmap_slot\":%d,\"unsure\":%s,\"resync_deferred\":%s,\"reason\":",
		  conn_state_name((enum conn_state)atomic_load(&p->cstate)), peer_role_name(p), peer_disk_name(p),
		  repl_state_name((enum repl_state)r), p->protocol, (unsigned long long)oos_bytes(p), sync_percent(p),
		  speed, speed > 0 ? (double)oos_bytes(p) / 1048576.0 / speed : 0.0,
		  (unsigned long long)atomic_load(&p->conflicts), (unsigned long long)atomic_load(&p->epoch),
		  (unsigned long long)atomic_load(&p->epoch_acked), (unsigned long long)atomic_load(&p->rx_epoch),
		  (unsigned long long)atomic_load(&p->split_brains), (unsigned long long)atomic_load(&p->csum_skipped),
		  atomic_load(&p->fencing_now) ? "true" : "false", (unsigned long long)atomic_load(&p->fenced), p->slot,
		  engine_unsure(p->e, p->slot) ? "true" : "false", p->deferred && connected(p) ? "true" : "false");
	strbuf_json_str(sb, reason);
	strbuf_printf(sb, "}");
}

void peer_status_text(struct peer *p, struct strbuf *sb)
{
	char a[32];
	strbuf_printf(sb, "  %s connection:%s role:%s\n", p->ph->name, conn_state_name((enum conn_state)atomic_load(&p->cstate)),
		  peer_role_name(p));
	int r = atomic_load(&p->repl);
	strbuf_printf(sb, "    peer-disk:%s replication:%s protocol:%c out-of-sync:%s", peer_disk_name(p),
		  repl_state_name((enum repl_state)r), p->protocol, fmt_size(oos_bytes(p), a, sizeof a));
	if (r == RS_SYNC_SOURCE || r == RS_SYNC_TARGET) {
		uint64_t el = (now_ns() - atomic_load(&p->sync_start_ns)) / 1000000;
		double speed = el ? (double)atomic_load(&p->sync_done) / 1048576.0 / ((double)el / 1000.0) : 0;
		strbuf_printf(sb, " done:%.1f%% speed:%.1f MiB/s eta:%.0fs", sync_percent(p), speed,
			  speed > 0 ? (double)oos_bytes(p) / 1048576.0 / speed : 0.0);
	}
	if (atomic_load(&p->deferred) && connected(p))
		strbuf_printf(sb, " resync:deferred");
	if (engine_unsure(p->e, p->slot))
		strbuf_printf(sb, " unsure");
	strbuf_printf(sb, "\n");
	pthread_mutex_lock(&p->lock);
	if (p->reason[0])
		strbuf_printf(sb, "    last problem: %s\n", p->reason);
	pthread_mutex_unlock(&p->lock);
}

void peer_state_line(struct peer *p, struct strbuf *sb)
{
	strbuf_printf(sb, " peer:%s connection:%s peer-role:%s peer-disk:%s replication:%s%s", p->ph->name,
		  conn_state_name((enum conn_state)atomic_load(&p->cstate)), peer_role_name(p), peer_disk_name(p),
		  repl_state_name((enum repl_state)atomic_load(&p->repl)), atomic_load(&p->fencing_now) ? " fencing:running" : "");
}

void peer_serve_fd(struct engine *e, const struct cfg_resource *r, const struct cfg_host *me,
		   const struct cfg_host *ph, int fd)
{
	char err[256];
	uint8_t hello[HELLO_BYTES], mine[HELLO_BYTES];
	int ch = -1;
	struct peer *p = peer_new(e, r, me, ph, err);

	if (!p) {
		close(fd);
		return;
	}
	if (handshake(p, fd, &ch, "fuzz", hello, mine) == 0 && ch == CH_DATA) {
		p->dfd = fd;
		p->no_confirm = 1;
		atomic_store(&p->cstate, CS_CONNECTED);
		if (agree(p, hello, mine) == 0)
			data_loop(p);
		teardown(p); /* closes fd */
	} else {
		close(fd);
	}
	atomic_store(&p->stopping, 1);
	peer_stop(p);
}

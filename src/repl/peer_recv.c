/* peer_recv — the receivers: the meta channel (acks, pings, state) and the data
 * channel (peer writes applied here, requests answered).
 * Part of the peer module: see peer.h and peer_int.h. */
#include "peer_int.h"
#include "codec.h"
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

/* The codec checks packets against the limits the handlers' buffers and
 * the engine's enums assume. */
_Static_assert(VF_CHUNK == VERIFY_MAX, "verify request limit");
_Static_assert(RS_CHUNK_BLOCKS == RS_MAX_BLOCKS, "checksum packet limit");
_Static_assert(MD_BLOCK == CODEC_BLOCK, "bitmap block");
_Static_assert(ROLE_PRIMARY == WIRE_ROLE_MAX && DS_UPTODATE == WIRE_DISK_MAX, "P_STATE role/disk range");

/* The oldest request still waiting for the peer's acknowledgement, in ms. */
static uint64_t oldest_unacked_ms(struct peer *p)
{
	uint64_t now = now_ns(), oldest = 0;
	for (int i = 0; i < PEND_MAX; i++) {
		struct pending *pd = &p->pend[i];
		if (!pending_in_use(p, pd))
			continue;
		pthread_mutex_lock(&pd->m);
		/* a request sent after `now` was read is not late (and
		 * now - sent_ns would wrap) */
		if (!pd->write_acked && !pd->failed && pd->sent_ns < now && now - pd->sent_ns > oldest)
			oldest = now - pd->sent_ns;
		pthread_mutex_unlock(&pd->m);
	}
	return oldest / 1000000;
}

/* ------------------------------------------------------------ dispatch */

/* What a receive handler sees besides the packet: the peer, and on the meta
 * channel when the ping awaiting its answer was sent (0: none) and when
 * anything last arrived. */
struct rx_ctx {
	struct peer *p;
	uint64_t ping_out, last_rx;
};

/* A handler gets a packet the codec accepted: 0 to go on, <0 to drop the
 * connection (reason set). */
struct rx_op {
	uint16_t type;
	uint32_t min_len; /* a shorter payload is refused before decoding */
	int (*handle)(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k);
};

static struct codec_dev rx_dev(struct peer *p)
{
	return (struct codec_dev){ p->e->size, (p->e->bm_bits + 63) / 64, p->has_csums ? md_len(p->cmd) : 0 };
}

/* Decode one packet and hand it to its handler. A packet of a type the
 * channel does not carry, or one the codec refuses, is a protocol error:
 * nothing of it reaches the engine. */
static int rx_dispatch(struct rx_ctx *c, const char *chan, const struct rx_op *ops, size_t nops,
		       const struct wire_hdr *h, const uint8_t *payload)
{
	struct peer *p = c->p;
	const struct rx_op *op = NULL;
	for (size_t i = 0; i < nops && !op; i++)
		if (ops[i].type == h->type)
			op = &ops[i];
	if (!op) {
		set_reason(p, "%s channel: unexpected packet type %u (%s); dropping the connection", chan, h->type,
			   codec_type_name(h->type));
		return -EPROTO;
	}
	struct codec_dev dev = rx_dev(p);
	union pkt k;
	char why[200];
	int rc = h->len < op->min_len ? -EPROTO : codec_decode(h, payload, &dev, &k, why, sizeof why);
	if (rc) {
		if (h->len < op->min_len)
			snprintf(why, sizeof why, "%s: payload %u bytes: shorter than %u", codec_type_name(h->type),
				 h->len, op->min_len);
		set_reason(p, "protocol error on the %s channel: %s; dropping the connection", chan, why);
		return rc;
	}
	return op->handle(c, h, &k);
}

/* ------------------------------------------------------------ meta channel */

static int rx_ping(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	(void)h, (void)k;
	send_pkt(c->p, CH_META, P_PING_ACK, 0, 0, NULL, 0, NULL, 0);
	return 0;
}

static int rx_ping_ack(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	(void)h, (void)k;
	if (c->ping_out)
		atomic_store(&c->p->lease_until_ns, c->ping_out + c->p->lease_ns);
	c->ping_out = 0;
	return 0;
}

static int rx_ack(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	pending_ack(c->p, h->id, h->type == P_RECV_ACK ? P_RECV_ACK : P_WRITE_ACK, k->ack.status);
	return 0;
}

/* Blocks whose checksum differed: mark them again, to be sent as data. */
static int rx_csum_reply(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	struct peer *p = c->p;
	const struct pkt_reply *r = &k->reply;
	pthread_mutex_lock(&p->rslock);
	if (h->id < RS_WINDOW && p->rs[h->id].used && p->need) {
		uint64_t b0 = p->rs[h->id].off / MD_BLOCK, nb = (p->rs[h->id].len + MD_BLOCK - 1) / MD_BLOCK;
		uint64_t differ = 0;
		for (uint64_t i = 0; i < nb; i++) {
			/* a missing bit (short reply) counts as differing */
			if (!r->status && i / 8 < r->len && !((r->payload[i / 8] >> (i % 8)) & 1))
				continue;
			differ++;
			atomic_fetch_or(&p->need[(b0 + i) >> 6], 1ULL << ((b0 + i) & 63));
			engine_mark_oos(p->e, p->slot, (b0 + i) * MD_BLOCK, MD_BLOCK);
		}
		atomic_fetch_add(&p->csum_skipped, (nb - differ) * MD_BLOCK);
	}
	pthread_mutex_unlock(&p->rslock);
	rs_release(p, h->id);
	return 0;
}

static int rx_rs_ack(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	struct peer *p = c->p;
	if (k->ack.status) {
		pthread_mutex_lock(&p->rslock);
		if (h->id < RS_WINDOW && p->rs[h->id].used)
			engine_mark_oos(p->e, p->slot, p->rs[h->id].off, p->rs[h->id].len);
		pthread_mutex_unlock(&p->rslock);
	}
	rs_release(p, h->id);
	return 0;
}

static const struct rx_op meta_ops[] = {
	{ P_PING, 0, rx_ping },
	{ P_PING_ACK, 0, rx_ping_ack },
	{ P_RECV_ACK, 4, rx_ack },
	{ P_WRITE_ACK, 4, rx_ack },
	{ P_FLUSH_ACK, 4, rx_ack },
	{ P_RS_CSUM_REPLY, 4, rx_csum_reply },
	{ P_RS_ACK, 4, rx_rs_ack },
};

/* Send a ping unless a stuck sender holds the lock longer than ping-timeout
 * (the peer is not reading): 0, or <0 with the reason set. */
static int meta_ping(struct peer *p)
{
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
		return -ETIMEDOUT;
	}
	uint8_t ph[WIRE_HDR];
	codec_encode_hdr(ph, &(struct wire_hdr){ .type = P_PING });
	int src = p->mfd >= 0 ? write_full(p->mfd, ph, sizeof ph) : -ENOTCONN;
	pthread_mutex_unlock(&p->msend);
	if (src)
		set_reason(p, "cannot send a ping: %s; dropping the connection", strerror(-src));
	return src;
}

/* Read one meta packet into body[CODEC_META_MAX] and dispatch it: 0, or <0
 * when the channel must close (reason set unless it was simply closed). */
static int meta_recv(struct rx_ctx *c, uint8_t *body)
{
	struct peer *p = c->p;
	uint8_t hb[WIRE_HDR];
	struct wire_hdr h;
	char why[160];
	int rc = read_full(p->mfd, hb, sizeof hb);
	if (rc) {
		if (rc != -EPIPE && rc != -ECONNRESET && !atomic_load(&p->stopping) && !atomic_load(&p->admin_down))
			set_reason(p, "meta channel: %s", strerror(-rc));
		return rc;
	}
	rc = codec_decode_hdr(hb, &h, why, sizeof why);
	if (!rc && h.len > CODEC_META_MAX) {
		snprintf(why, sizeof why, "%s: payload %u bytes: more than %u", codec_type_name(h.type), h.len,
			 CODEC_META_MAX);
		rc = -EPROTO;
	}
	if (rc) {
		set_reason(p, "protocol error on the meta channel: %s; dropping the connection", why);
		return rc;
	}
	if (h.len && (rc = read_full(p->mfd, body, h.len))) {
		if (!atomic_load(&p->stopping) && !atomic_load(&p->admin_down))
			set_reason(p, "meta channel: truncated packet (%s)", strerror(-rc));
		return rc;
	}
	c->last_rx = now_ns();
	atomic_store(&p->last_rx_ns, c->last_rx);
	return rx_dispatch(c, "meta", meta_ops, ARRAY_SIZE(meta_ops), &h, body);
}

/* ms until the next ping is due (0: now). Waiting for it exactly, not
 * for the next 500 ms scan, sends it on time, so its answer renews the
 * lease (the ping interval + ping-timeout, quorum.h) before the lease ends:
 * a ping up to a scan late lapsed the lease of a healthy peer, and the
 * quorum rules held I/O for that moment. */
static int ping_due_ms(const struct peer *p, uint64_t last_ping, uint64_t now)
{
	uint64_t since = (now - last_ping) / 1000000; /* rounded down: never early */
	return since >= (uint64_t)p->ping_int_ms ? 0 : p->ping_int_ms - (int)since;
}

void *meta_main(void *arg)
{
	pthread_setname_np(pthread_self(), "dp-peer-meta"); /* perf and top show what it is */
	struct peer *p = arg;
	struct rx_ctx c = { p, 0, now_ns() };
	uint8_t body[CODEC_META_MAX];
	uint64_t last_ping = now_ns(), scanned = now_ns();
	int scan_ms = p->timeout_ms / 4 < 500 ? p->timeout_ms / 4 : 500;

	if (scan_ms < 10)
		scan_ms = 10;
	for (;;) {
		struct pollfd pf = { p->mfd, POLLIN, 0 };
		int wait = c.ping_out ? p->ping_timeout_ms : ping_due_ms(p, last_ping, now_ns());
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
		if (c.ping_out && now - c.ping_out >= (uint64_t)p->ping_timeout_ms * 1000000 &&
		    now - c.last_rx >= (uint64_t)p->ping_timeout_ms * 1000000) {
			set_reason(p, "no answer to ping within %d ms; dropping the connection", p->ping_timeout_ms);
			break;
		}
		if (!c.ping_out && now - last_ping >= (uint64_t)p->ping_int_ms * 1000000) {
			if (meta_ping(p))
				break;
			c.ping_out = last_ping = now;
		}
		if (n > 0 && meta_recv(&c, body))
			break;
	}
	disconnect_sockets(p);
	return NULL;
}

void send_state(struct peer *p)
{
	uint8_t b[STATE_BYTES];
	uint64_t u[UUID_COUNT];
	hello_uuids(p, u);
	codec_encode_state(b, &(struct pkt_state){
		.role = (uint8_t)atomic_load(&p->e->role), .disk = (uint8_t)atomic_load(&p->e->dstate),
		.flags = atomic_load(&p->e->fs_owner) ? STF_FS_OWNER : 0, .stamp = atomic_load(&p->e->wstamp),
		.uuid = u[UUID_CURRENT], .history = { u[UUID_HISTORY0], u[UUID_HISTORY1] } });
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
/* The receiver's buffer for answers (reads, digests): READ_MAX + a page,
 * data at +4096 so it is page-aligned for O_DIRECT. */
uint8_t *scratch(struct peer *p)
{
	if (!p->scratch && posix_memalign((void **)&p->scratch, 4096, (size_t)READ_MAX + 4096)) {
		p->scratch = NULL;
		set_reason(p, "out of memory for a peer request");
	}
	return p->scratch;
}
/* ------------------------------------------------------------ data channel */

static int rx_data(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	struct peer *p = c->p;
	struct engine *e = p->e;
	const struct pkt_data *d = &k->data;
	/* only protocol B waits for it (both sides run one protocol: the
	 * handshake refuses a difference); DRBD sends it for B alone too
	 * (receive_Data: DP_SEND_RECEIVE_ACK) */
	if (p->protocol == 'B')
		send_ack(p, P_RECV_ACK, h->id, 0);
	int rc = apply_peer_write(p, d->payload, d->len, d->off, h->flags, d->seq, d->seen);
	/* from a peer without a disk: only this node has it */
	if (!rc && atomic_load(&p->peer_disk) == DS_DISKLESS)
		engine_mark_oos(e, p->slot, d->off, d->len);
	if (!rc && e->npeers > 1)
		engine_applied(e, p->slot, p->ph->node_id, h->stamp);
	send_ack(p, P_WRITE_ACK, h->id, -rc);
	if (d->payload)
		atomic_fetch_add_explicit(&e->st.received_bytes, d->len, memory_order_relaxed);
	return 0;
}

static int rx_rs_data(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	struct peer *p = c->p;
	const struct pkt_rs_data *d = &k->rs_data;
	/* every block but those this node wrote itself since the resync began
	 * (newer than this); unmarked ones too: the source marks a block after
	 * its bitmap when a write began before the connection was up */
	pthread_rwlock_wrlock(&p->sync_lock);
	int rc = engine_apply_resync(p->e, d->payload, d->len, d->off);
	pthread_rwlock_unlock(&p->sync_lock);
	/* cleared bits go to disk every RS_PERSIST_MS, so a crash here re-sends
	 * at most that much (set bits are durable since the merge) */
	uint64_t b0 = d->off / MD_BLOCK, b1 = (d->off + d->len + MD_BLOCK - 1) / MD_BLOCK;
	if (b0 < p->rs_dirty_lo)
		p->rs_dirty_lo = b0;
	if (b1 > p->rs_dirty_hi)
		p->rs_dirty_hi = b1;
	if (now_ns() - p->rs_persist_ns >= RS_PERSIST_MS * 1000000ULL) {
		if (p->rs_dirty_hi > p->rs_dirty_lo)
			engine_persist_bitmap(p->e, p->rs_dirty_lo, p->rs_dirty_hi - p->rs_dirty_lo);
		p->rs_dirty_lo = UINT64_MAX;
		p->rs_dirty_hi = 0;
		p->rs_persist_ns = now_ns();
	}
	atomic_fetch_add(&p->sync_done, d->len);
	send_ack(p, P_RS_ACK, h->id, -rc);
	atomic_fetch_add_explicit(&p->e->st.received_bytes, d->len, memory_order_relaxed);
	return 0;
}

/* Every write of the epoch was applied before this packet. */
static int rx_flush(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	int rc = engine_flush_local(c->p->e);
	if (!rc)
		atomic_store(&c->p->rx_epoch, k->flush.epoch);
	send_ack(c->p, P_FLUSH_ACK, h->id, -rc);
	return 0;
}

static int rx_read_req(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	struct peer *p = c->p;
	struct engine *e = p->e;
	uint32_t n = k->range.len;
	if (!scratch(p))
		return -ENOMEM;
	/* data starts on a page boundary (O_DIRECT); status just before */
	uint8_t *d = p->scratch + 4096;
	int rc = atomic_load(&e->dstate) == DS_UPTODATE ? engine_read(e, d, n, k->range.off) : -EIO;
	codec_encode_status(d - 4, -rc);
	if (send_pkt(p, CH_DATA, P_READ_REPLY, 0, h->id, d - 4, rc ? 4 : 4 + (size_t)n, NULL, 0))
		return -EPIPE;
	if (!rc)
		atomic_fetch_add_explicit(&e->st.sent_bytes, n, memory_order_relaxed);
	return 0;
}

/* Blocks whose checksum matches are in sync now and need no data; the
 * reply has a bit set for each block that differs. */
static int rx_rs_csum(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	struct peer *p = c->p;
	struct engine *e = p->e;
	const struct pkt_rs_csum *s = &k->rs_csum;
	unsigned dl = md_len(p->cmd);
	if (!scratch(p))
		return -ENOMEM;
	uint8_t *d = p->scratch + 4096, *mine = p->scratch + 4096 + RS_CHUNK_BLOCKS * MD_BLOCK;
	uint8_t reply[CSUM_REPLY_MAX] = { 0 };
	pthread_rwlock_wrlock(&p->sync_lock);
	int rc = disk_pread(e->disk, d, s->len, s->off);
	if (!rc) {
		digests_md(p->cmd, d, s->len, mine);
		for (unsigned i = 0; i < s->nblocks; i++) {
			if (!memcmp(mine + i * dl, s->digests + i * dl, dl))
				engine_clear_oos(e, p->slot, s->off / MD_BLOCK + i, 1);
			else
				reply[4 + i / 8] |= (uint8_t)(1u << (i % 8));
		}
	}
	pthread_rwlock_unlock(&p->sync_lock);
	codec_encode_status(reply, -rc);
	atomic_fetch_add(&p->sync_done, s->len);
	send_pkt(p, CH_META, P_RS_CSUM_REPLY, 0, h->id, reply, 4 + (s->nblocks + 7) / 8, NULL, 0);
	return 0;
}

/* Answer with one verify-alg digest per 4 KiB block of the range. */
static int rx_verify_req(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	struct peer *p = c->p;
	struct engine *e = p->e;
	uint32_t n = k->range.len, nb = (n + MD_BLOCK - 1) / MD_BLOCK;
	if (!scratch(p))
		return -ENOMEM;
	uint8_t *d = p->scratch + 4096, *dg = p->scratch + 4096 + VF_CHUNK + 4;
	int rc = atomic_load(&e->dstate) == DS_UPTODATE ? disk_pread(e->disk, d, n, k->range.off) : -EIO;
	if (!rc)
		digests(p, d, n, dg);
	codec_encode_status(dg - 4, -rc);
	if (send_pkt(p, CH_DATA, P_READ_REPLY, 0, h->id, dg - 4, rc ? 4 : 4 + (size_t)nb * digest_len(p), NULL, 0))
		return -EPIPE;
	return 0;
}

static int rx_read_reply(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	const struct pkt_reply *r = &k->reply;
	int st = r->status;
	struct pending *pd = pending_lookup(c->p, h->id);
	if (pd && !st && (r->len != pd->rdlen || !pd->rdbuf))
		st = EPROTO;
	if (pd && !st)
		memcpy(pd->rdbuf, r->payload, pd->rdlen);
	pending_ack(c->p, h->id, P_WRITE_ACK, st);
	return 0;
}

static int rx_bitmap(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	struct peer *p = c->p;
	(void)h;
	pthread_rwlock_wrlock(&p->sync_lock);
	engine_merge_oos(p->e, p->slot, k->bitmap.first, k->bitmap.words, k->bitmap.nwords);
	pthread_rwlock_unlock(&p->sync_lock);
	return 0;
}

static int rx_peer_bitmap(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	if (!atomic_load(&c->p->await_peer_bm)) {
		set_reason(c->p, "peer sent its bitmap unasked; dropping the connection");
		return -EPROTO;
	}
	return rx_bitmap(c, h, k);
}

static int rx_peer_bitmap_done(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	(void)h, (void)k;
	if (atomic_exchange(&c->p->await_peer_bm, 0))
		rs_start(c->p);
	return 0;
}

static int rx_bitmap_done(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	struct peer *p = c->p;
	(void)h, (void)k;
	if (peer_set_repl(p, RS_SYNC_TARGET, "the source's bitmap is merged")) {
		set_reason(p, "peer ended a bitmap this node had not been told a resync for; dropping the connection");
		return -EPROTO;
	}
	/* the merged bitmap is what an interrupted resync resumes from: durable
	 * before the first resync block can clear a bit of it (the source
	 * forgets what it sent, so only this copy remembers what is missing) */
	int rc = engine_save_bitmap(p->e);
	if (!rc)
		rc = disk_flush(p->e->disk);
	if (rc) {
		set_reason(p, "cannot write the resync bitmap: %s; dropping the connection", strerror(-rc));
		return rc;
	}
	p->rs_dirty_lo = UINT64_MAX;
	p->rs_dirty_hi = 0;
	p->rs_persist_ns = now_ns();
	send_pkt(p, CH_DATA, P_SYNC_ACK, 0, 0, NULL, 0, NULL, 0);
	if (atomic_exchange(&p->sync_pending, 0) && engine_is_suspended(p->e))
		engine_resume(p->e, "the peer is back; blocks this node lacks are read from it until synced");
	return 0;
}

static int rx_sync_ack(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	struct peer *p = c->p;
	(void)h, (void)k;
	pthread_mutex_lock(&p->rslock);
	atomic_store(&p->rs_go, 1);
	pthread_cond_broadcast(&p->rscond);
	pthread_mutex_unlock(&p->rslock);
	return 0;
}

static int rx_state(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	struct peer *p = c->p;
	struct engine *e = p->e;
	const struct pkt_state *s = &k->state;
	(void)h;
	/* (holds a promotion back, so that another peer's report of it
	 * overtakes it: four_disks_follow.sh) */
	if (s->role == ROLE_PRIMARY && atomic_load(&p->peer_role) != ROLE_PRIMARY)
		test_pause("rx-promoted");
	/* its Secondaries in sync with it have the same data now: they need
	 * not compare once it is gone (a clean switchover costs no resync,
	 * three_disks_sync_switch.sh) */
	if (atomic_load(&p->peer_role) == ROLE_PRIMARY && s->role == ROLE_SECONDARY && e->npeers > 1 &&
	    atomic_load(&p->repl) == RS_ESTABLISHED && atomic_load(&e->dstate) == DS_UPTODATE)
		engine_primary_demoted(e, p->ph->node_id, s->stamp);
	/* p became Primary while another peer connected here is Primary, and
	 * two Primaries are not allowed: a partial partition (p cannot see
	 * that one) let it promote with this node's vote. Serving both would
	 * take writes of two Primaries onto this disk, and p's would complete
	 * with this node's ack: drop p before any of its writes (they follow
	 * this packet); its handshake keeps the two apart (V_THIRD_PRIMARY)
	 * until one of them is Secondary (three_disks_return.sh) */
	struct peer *q;
	if (peer_take_state(p, s->role, s->disk, "the peer reported its state", &q)) {
		/* (this node too: `primary` on both at the same moment passed
		 * both checks; connected, their writes crossed and the disks
		 * differed with nothing marked. Both drop the link: each goes on
		 * as a Primary without that peer, as after a split) */
		set_reason(p, "became Primary while %s is Primary and allow-two-primaries is not set; dropping "
			   "the connection (%s)", q ? q->ph->name : "this node",
			   q ? "retrying: it connects once one of them is Secondary"
			     : "demote one of them, then 'dipole connect' on both");
		return -EALREADY;
	}
	atomic_store(&p->peer_was_primary, s->role == ROLE_PRIMARY);
	uint64_t was = atomic_exchange(&p->peer_uuid, s->uuid);
	if (was != s->uuid) {
		p->uuid_before = was;
		p->moved_as_primary = s->role == ROLE_PRIMARY;
	}
	atomic_store(&p->peer_history[0], s->history[0]); /* (0: an older sender's 16-byte form) */
	atomic_store(&p->peer_history[1], s->history[1]);
	int was_owner = atomic_exchange(&p->peer_fs_owner, !!(s->flags & STF_FS_OWNER));
	log_info("peer %s: now %s, disk %s%s", p->addr, role_name((enum role)s->role),
		 disk_state_name((enum disk_state)s->disk),
		 s->flags & STF_FS_OWNER ? ", owns the mounted filesystem"
					 : was_owner ? ", no longer owns the filesystem" : "");
	engine_peer_changed(e);
	third_primary_changed(e);
	/* several peers: a Secondary follows its Primary into the new
	 * generation it started without some other peer, and tells every
	 * peer, the Primary too: its quorum rule counts the disks that have
	 * its generation (quorum.c), and a Primary Outdated by a moment
	 * without quorum that still saw this node at the old one stayed
	 * Outdated — and nobody resynced an Inconsistent fourth disk
	 * (four_disks_follow.sh) */
	follow_primary(p, 0);
	behind_secondary(p);
	/* the peer's disk failed: what it writes from now on exists only here —
	 * a new generation, and the bitmap tracks it for the peer's return */
	if (s->disk == DS_DISKLESS && atomic_load(&e->dstate) == DS_UPTODATE)
		engine_new_generation(e, 1u << p->slot, "the peer detached its disk");
	/* the peer threw its data away (invalidate): send it everything */
	if (s->disk == DS_INCONSISTENT && atomic_load(&e->dstate) == DS_UPTODATE &&
	    atomic_load(&p->repl) == RS_ESTABLISHED && may_source(p)) {
		engine_mark_all_oos(e, p->slot);
		rs_start(p);
	}
	return 0;
}

static int rx_sync_start(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	struct peer *p = c->p;
	struct engine *e = p->e;
	(void)h;
	if (atomic_load(&e->dstate) == DS_UPTODATE && !atomic_load(&p->expect_target)) {
		/* never let a peer overwrite good data we did not agree to */
		set_reason(p, "peer started a resync over this node's UpToDate data without agreement; dropping "
			   "the connection");
		return -EPERM;
	}
	if (engine_sync_source(e) && engine_sync_source(e) != p) {
		atomic_store(&p->expect_target, 0);
		set_reason(p, "peer started a resync while this node is SyncTarget of another peer; dropping the "
			   "connection");
		return -EBUSY;
	}
	/* what this node sends as a source would be read from data that is
	 * being replaced: those resyncs stop and are asked for again (deferred
	 * until this one is done) */
	kick_sources(p);
	atomic_store(&p->sync_total, k->sync_start.total);
	atomic_store(&p->sync_done, 0);
	atomic_store(&p->sync_start_ns, now_ns());
	/* from here on the bitmap means "blocks this node lacks"; writes in
	 * flight finish first */
	pthread_rwlock_wrlock(&p->sync_lock);
	int rc = engine_sync_target_begin(e, p, p->slot, k->sync_start.flags & SSF_FULL, k->sync_start.sync_uuid);
	pthread_rwlock_unlock(&p->sync_lock);
	/* only now: whoever asks peer_behind() sees either the expectation or
	 * the SyncTarget state, never a moment with neither */
	atomic_store(&p->expect_target, 0);
	if (rc == -EBUSY)
		set_reason(p, "peer started a resync while this node is SyncTarget of another peer; connecting "
			   "again (deferred until that one is done)");
	else if (rc)
		set_reason(p, "cannot start the resync: metadata write failed: %s", strerror(-rc));
	if (rc)
		return rc;
	peer_set_repl(p, RS_STARTING_SYNC_T, "the source started a resync; its bitmap follows");
	log_info("peer %s: resync started as SyncTarget, %llu bytes to receive", p->addr,
		 (unsigned long long)k->sync_start.total);
	/* (a Primary's writes come with its resync: of its generation) */
	follow_primary(p, 0);
	return 0;
}

static int rx_sync_done(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	struct peer *p = c->p;
	struct engine *e = p->e;
	(void)h;
	if (atomic_load(&p->repl) != RS_SYNC_TARGET)
		return 0;
	disk_flush(e->disk);
	pthread_rwlock_wrlock(&p->sync_lock);
	/* the source's history: the two P_SYNC_DONE carries, then where its
	 * data came from at the handshake (older: it may have gone on since) */
	uint64_t u[UUID_COUNT] = { 0 };
	memcpy(u, k->sync_done.uuid, sizeof k->sync_done.uuid);
	for (int i = 0; i < UUID_COUNT; i++)
		if (i != UUID_BITMAP)
			md_history_append(u, p->hs_uuid[i]);
	engine_sync_target_done(e, u, k->sync_done.gen_time);
	pthread_rwlock_unlock(&p->sync_lock);
	peer_set_repl(p, RS_ESTABLISHED, "resync finished");
	log_info("peer %s: resync finished, disk UpToDate", p->addr);
	peers_state_changed(e, NULL);
	kick_others(p, "this node finished its resync");
	return 0;
}

static int rx_sizes(struct rx_ctx *c, const struct wire_hdr *h, const union pkt *k)
{
	(void)h;
	return rx_sizes_pkt(c->p, &k->sizes);
}

static const struct rx_op data_ops[] = {
	{ P_SIZES, SIZES_BYTES, rx_sizes },
	{ P_DATA, DATA_HDR, rx_data },
	{ P_RS_DATA, RS_HDR, rx_rs_data },
	{ P_FLUSH, 8, rx_flush },
	{ P_READ_REQ, RANGE_HDR, rx_read_req },
	{ P_RS_CSUM, RANGE_HDR, rx_rs_csum },
	{ P_VERIFY_REQ, RANGE_HDR, rx_verify_req },
	{ P_READ_REPLY, 4, rx_read_reply },
	{ P_BITMAP, 8, rx_bitmap },
	{ P_PEER_BITMAP, 8, rx_peer_bitmap },
	{ P_BITMAP_DONE, 0, rx_bitmap_done },
	{ P_PEER_BITMAP_DONE, 0, rx_peer_bitmap_done },
	{ P_SYNC_ACK, 0, rx_sync_ack },
	{ P_STATE, STATE_OLD_BYTES, rx_state },
	{ P_SYNC_START, SYNC_START_OLD_BYTES, rx_sync_start },
	{ P_SYNC_DONE, SYNC_DONE_BYTES, rx_sync_done },
};

/* The receive buffer holds a whole packet: grown (page-aligned, for
 * O_DIRECT) to the largest seen, never shrunk, so no packet allocates. */
static int rbuf_reserve(struct peer *p, uint32_t len)
{
	if (len <= p->rcap)
		return 0;
	void *nb = NULL;
	size_t cap = ROUND_UP((size_t)len, 1u << 20);
	if (posix_memalign(&nb, 4096, cap)) {
		set_reason(p, "out of memory for a %u byte packet", len);
		return -ENOMEM;
	}
	free(p->rbuf);
	p->rbuf = nb;
	p->rcap = cap;
	return 0;
}

/* Receive the data channel until it breaks. */
void data_loop(struct peer *p)
{
	struct rx_ctx c = { p, 0, 0 };
	uint8_t hb[WIRE_HDR];
	char why[160];

	for (;;) {
		struct wire_hdr h;
		int rc = read_full(p->dfd, hb, sizeof hb);
		if (rc) {
			if (!atomic_load(&p->stopping) && !atomic_load(&p->admin_down))
				set_reason(p, "data channel: %s", rc == -EPIPE ? "closed by peer" : strerror(-rc));
			return;
		}
		if (codec_decode_hdr(hb, &h, why, sizeof why)) {
			set_reason(p, "protocol error on the data channel: %s; dropping the connection", why);
			return;
		}
		/* the body goes in at an offset that puts what follows the
		 * packet's fixed part (a write's data) on a page boundary: the
		 * disk writes it with O_DIRECT from there, without a bounce copy */
		uint32_t fixed = 0;
		for (size_t i = 0; i < ARRAY_SIZE(data_ops); i++)
			if (data_ops[i].type == h.type)
				fixed = data_ops[i].min_len;
		size_t pad = (DISK_ALIGN - fixed % DISK_ALIGN) % DISK_ALIGN;
		if (rbuf_reserve(p, (uint32_t)(h.len + pad)))
			return;
		uint8_t *body = p->rbuf + pad;
		if (h.len && (rc = read_full(p->dfd, body, h.len))) {
			set_reason(p, "data channel: truncated packet (%s)", strerror(-rc));
			return;
		}
		if (rx_dispatch(&c, "data", data_ops, ARRAY_SIZE(data_ops), &h, body))
			return;
	}
}

/* peer_io — the write path: sending writes, flushes and reads to the peer, the
 * pending-request table, and whether a write the peer missed must be held.
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

/* ------------------------------------------------------------ sending */

int send_pkt(struct peer *p, int ch, uint16_t type, uint16_t flags, uint64_t id,
		    const void *a, size_t alen, const void *b, size_t blen)
{
	uint8_t h[WIRE_HDR];
	struct iovec iov[3] = { { h, sizeof h }, { (void *)a, alen }, { (void *)b, blen } };
	pthread_mutex_t *l = ch == CH_DATA ? &p->dsend : &p->msend;
	int rc = -ENOTCONN;

	codec_encode_hdr(h, &(struct wire_hdr){ .type = type, .flags = flags, .len = (uint32_t)(alen + blen), .id = id });
	pthread_mutex_lock(l);
	int fd = ch == CH_DATA ? p->dfd : p->mfd;
	if (fd >= 0)
		rc = writev_full(fd, iov, blen ? 3 : alen ? 2 : 1);
	pthread_mutex_unlock(l);
	return rc;
}

int send_ack(struct peer *p, uint16_t type, uint64_t id, int status)
{
	uint8_t b[4];
	codec_encode_status(b, status);
	return send_pkt(p, CH_META, type, 0, id, b, 4, NULL, 0);
}

/* ------------------------------------------------------------ pending */

struct pending *pending_get(struct peer *p)
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


void pending_put(struct peer *p, struct pending *pd)
{
	pthread_mutex_lock(&p->plock);
	if (--pd->refs == 0) {
		pd->next = p->pfree;
		p->pfree = pd;
		pthread_cond_signal(&p->pcond);
	}
	pthread_mutex_unlock(&p->plock);
}

uint64_t pending_id(struct peer *p, struct pending *pd)
{
	return ((uint64_t)pd->gen << 16) | (uint64_t)(pd - p->pend);
}

/* The request could not be sent: it fails now, and the network reference
 * (no ack will ever come) ends here. */
void pending_abort(struct peer *p, struct pending *pd)
{
	pthread_mutex_lock(&pd->m);
	int final = !pd->failed && !pd->write_acked;
	pd->failed = 1;
	pthread_mutex_unlock(&pd->m);
	if (final)
		pending_put(p, pd);
}

/* The live request with this id, or NULL. */
struct pending *pending_lookup(struct peer *p, uint64_t id)
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
void pending_ack(struct peer *p, uint64_t id, int type, int status)
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

int pending_in_use(struct peer *p, struct pending *pd)
{
	pthread_mutex_lock(&p->plock);
	int live = pd->refs > 0;
	pthread_mutex_unlock(&p->plock);
	return live;
}

/* Connection lost: every request not yet written on the peer is out of sync. */
void pending_fail_all(struct peer *p)
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

int connected(struct peer *p)
{
	return atomic_load(&p->cstate) == CS_CONNECTED;
}

int peer_disk_now(struct peer *p)
{
	int d = atomic_load(&p->peer_disk);
	int source = atomic_load(&p->repl) == RS_SYNC_SOURCE || atomic_load(&p->await_peer_bm);
	return source && d > DS_INCONSISTENT ? DS_INCONSISTENT : d;
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
		codec_encode_hdr(h, &(struct wire_hdr){ .type = P_DATA, .flags = (uint16_t)dflags,
						     .len = (uint32_t)(DATA_HDR + blen), .stamp = stamp,
						     .id = pending_id(p, pd) });
		codec_encode_data(h + WIRE_HDR, &(struct pkt_data){ .off = pd->off, .len = pd->len, .seq = seq,
								    .seen = atomic_load(&p->applied_seq) });
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
	/* before the local write: a resync read-ahead from before is stale */
	atomic_fetch_add_explicit(&p->e->wgen, 1, memory_order_relaxed);
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
		codec_encode_flush(b, ep);
		uint8_t h[WIRE_HDR];
		struct iovec iov[2] = { { h, sizeof h }, { b, sizeof b } };
		codec_encode_hdr(h, &(struct wire_hdr){ .type = P_FLUSH, .len = sizeof b, .id = pending_id(p, pd) });
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
		if (!connected(p) || peer_disk_now(p) != DS_UPTODATE)
			return -EIO;
		struct pending *pd = pending_get(p);
		uint8_t b[RANGE_HDR];
		pd->off = off;
		pd->len = 0; /* nothing to mark out of sync if it fails */
		pd->rdbuf = buf;
		pd->rdlen = n;
		codec_encode_range(b, off, n);
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
	return connected(p) && peer_disk_now(p) == DS_UPTODATE;
}

int peer_is_sync_target(struct peer *p)
{
	return atomic_load(&p->repl) == RS_SYNC_TARGET;
}

/* Without quorum, must a write the peer did not get wait (the fact the
 * write policy reads in the view)? With fencing: until the peer is fenced.
 * Dual-primary without fencing: the node with the higher node-id does
 * (docs/fencing.md). Only a node that was Primary when the two lost each
 * other: one promoted later was promoted by an operator who chose to. */
static int yields(struct peer *p)
{
	int was_primary = connected(p) || atomic_load(&p->primary_at_loss);
	return p->allow_two && !p->dialer && atomic_load(&p->peer_was_primary) && was_primary;
}

void peer_view(struct peer *p, struct replica_view *v)
{
	uint64_t now = now_ns();
	v->connected = connected(p) && atomic_load(&p->repl) != RS_OFF;
	v->usable = v->connected && atomic_load(&p->lease_until_ns) > now && !atomic_load(&p->sync_pending);
	v->last_rx_ns = atomic_load(&p->last_rx_ns);
	v->conn_seq = atomic_load(&p->conn_seq);
	v->role = atomic_load(&p->peer_role);
	v->disk = peer_disk_now(p);
	v->was_primary = atomic_load(&p->peer_was_primary);
	v->fs_owner = v->connected && atomic_load(&p->peer_fs_owner);
	v->uuid = atomic_load(&p->peer_uuid);
	v->established = atomic_load(&p->repl) == RS_ESTABLISHED;
	v->hold_off = atomic_load(&p->hold_off);
	v->fencing = p->fencing;
	v->yields = yields(p);
	v->hold_reason = p->hold_reason;
}

void peer_io_resumed(struct peer *p)
{
	if (!connected(p))
		atomic_store(&p->hold_off, 1);
}

/* ---- the disk peer as the engine's replica (replica.h) */

static struct pending *op_write_begin(void *ctx, const void *buf, size_t len, uint64_t off, unsigned dflags,
				      uint32_t stamp)
{
	return peer_write_begin(ctx, buf, len, off, dflags, stamp);
}

static int op_write_end(void *ctx, struct pending *pd)
{
	return peer_write_end(ctx, pd);
}

static struct pending *op_flush_begin(void *ctx)
{
	return peer_flush_begin(ctx);
}

static int op_flush_end(void *ctx, struct pending *pd)
{
	return peer_flush_end(ctx, pd);
}

static int op_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	return peer_read(ctx, buf, len, off);
}

static int op_can_read(void *ctx)
{
	return peer_can_read(ctx);
}

static int op_is_connected(void *ctx)
{
	return connected(ctx);
}

static int op_is_sync_target(void *ctx)
{
	return peer_is_sync_target(ctx);
}

static void op_state_changed(void *ctx)
{
	peer_state_changed(ctx);
}

static int op_may_promote(void *ctx, char *msg)
{
	return peer_may_promote(ctx, msg);
}

static void op_view(void *ctx, struct replica_view *v)
{
	peer_view(ctx, v);
}

const struct replica_ops peer_replica_ops = {
	.write_begin = op_write_begin,
	.write_end = op_write_end,
	.flush_begin = op_flush_begin,
	.flush_end = op_flush_end,
	.read = op_read,
	.can_read = op_can_read,
	.is_connected = op_is_connected,
	.is_sync_target = op_is_sync_target,
	.state_changed = op_state_changed,
	.may_promote = op_may_promote,
	.view = op_view,
};

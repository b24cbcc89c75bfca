/* peer_recv — the receivers: the meta channel (acks, pings, state) and the data
 * channel (peer writes applied here, requests answered).
 * Part of the peer module: see peer.h and peer_int.h. */
#include "peer_int.h"
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

void *meta_main(void *arg)
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

void send_state(struct peer *p)
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
uint8_t *scratch(struct peer *p)
{
	if (!p->scratch && posix_memalign((void **)&p->scratch, 4096, (size_t)READ_MAX + 4096)) {
		p->scratch = NULL;
		set_reason(p, "out of memory for a peer request");
	}
	return p->scratch;
}

/* Receive the data channel until it breaks. */
void data_loop(struct peer *p)
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

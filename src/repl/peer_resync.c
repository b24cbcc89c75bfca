/* peer_resync — resync (SyncSource side: bitmap exchange, the resync thread) and online
 * verify, with their checksums.
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
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------- resync */

void rs_release(struct peer *p, uint64_t id)
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
int send_bitmap(struct peer *p, uint16_t type, uint16_t done)
{
	struct engine *e = p->e;
	uint64_t words = (e->bm_bits + 63) / 64;
	uint8_t *pkt = malloc(8 + 8 * (size_t)BM_WORDS_PER_PKT);
	int rc = 0;
	if (!pkt)
		return -ENOMEM;
	for (uint64_t w = 0; !rc && engine_oos(e, p->slot) && w < words; w += BM_WORDS_PER_PKT) {
		uint64_t n = words - w < BM_WORDS_PER_PKT ? words - w : BM_WORDS_PER_PKT, any = 0;
		codec_encode_bitmap(pkt, w);
		for (uint64_t i = 0; i < n; i++) {
			uint64_t v = atomic_load_explicit(&e->slot[p->slot].bm[w + i], memory_order_relaxed);
			any |= v;
			codec_encode_bitmap_word(pkt, i, v);
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
 * applied here and every block read from now on includes them. Blocks the
 * target writes itself afterwards are newer: it skips resync data for those
 * only, so a block marked here after the bitmap went is still sent and
 * applied (docs/replication.md). */
static int rs_announce(struct peer *p, uint64_t total)
{
	struct engine *e = p->e;
	int full = engine_oos(e, p->slot) >= e->bm_bits;
	uint8_t h[SYNC_START_BYTES];
	int rc;

	/* the generation the target's bitmap counts from: what an interrupted
	 * resync resumes from (decide.c, resumes()) */
	pthread_mutex_lock(&e->lock);
	uint64_t sync_uuid = e->sb.peer[p->slot].bitmap_uuid ? e->sb.peer[p->slot].bitmap_uuid
							       : e->sb.uuid[UUID_CURRENT];
	pthread_mutex_unlock(&e->lock);
	atomic_store(&p->rs_go, 0);
	codec_encode_sync_start(h, &(struct pkt_sync_start){ total, full ? SSF_FULL : 0, sync_uuid });
	rc = send_pkt(p, CH_DATA, P_SYNC_START, 0, 0, h, sizeof h, NULL, 0);
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

unsigned md_len(const EVP_MD *md)
{
	return md ? (unsigned)EVP_MD_get_size(md) : 4;
}

unsigned digest_len(struct peer *p)
{
	return md_len(p->vmd);
}

/* One digest per MD_BLOCK of buf[len] into out (md NULL: crc32c). */
void digests_md(const EVP_MD *md, const uint8_t *buf, uint32_t len, uint8_t *out)
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

void digests(struct peer *p, const uint8_t *buf, uint32_t len, uint8_t *out)
{
	digests_md(p->vmd, buf, len, out);
}

static int need_test(struct peer *p, uint64_t b)
{
	return p->need && (atomic_load_explicit(&p->need[b >> 6], memory_order_relaxed) >> (b & 63)) & 1;
}

static void *verify_main(void *arg)
{
	pthread_setname_np(pthread_self(), "dp-verify"); /* perf and top show what it is */
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
		uint8_t b[RANGE_HDR];
		pd->off = off;
		pd->len = 0;
		pd->rdbuf = theirs;
		pd->rdlen = nb * dl;
		codec_encode_range(b, off, n);
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

/* The next chunk from block `from`: its first block (UINT64_MAX: none),
 * *n blocks, and whether it goes as data or (csums-alg, blocks not yet
 * compared) as checksums: a chunk is all one or all the other. */
static uint64_t rs_pick(struct peer *p, uint64_t from, uint64_t *n, int *as_data)
{
	struct engine *e = p->e;
	uint64_t b = engine_next_oos(e, p->slot, from);
	if (b == UINT64_MAX)
		return b;
	*as_data = !p->has_csums || need_test(p, b);
	*n = 1;
	while (*n < RS_CHUNK_BLOCKS && b + *n < e->bm_bits && engine_next_oos(e, p->slot, b + *n) == b + *n &&
	       (!p->has_csums || need_test(p, b + *n) == *as_data))
		(*n)++;
	return b;
}

/* The bytes of blocks [b, b + n), the last one cut at the device's end. */
static uint64_t rs_len(struct engine *e, uint64_t b, uint64_t n)
{
	uint64_t off = b * MD_BLOCK, len = n * MD_BLOCK;
	return off + len > e->size ? e->size - off : len;
}

/* Read-ahead: while one chunk goes to the link, a helper thread reads the
 * next from the disk, so disk and link work at once instead of in turn.
 * The read runs within the same hold of sync_lock as the send before it
 * (no application write runs meanwhile), and is used in the next hold only
 * for the same range and if no write to the local disk began since the
 * read started (e->wgen); otherwise the chunk is read again. Only chunks
 * of RA_MIN_BLOCKS or more are read ahead: for a short one (the scattered
 * blocks a peer missed) the read is brief, and handing it to the helper
 * and back costs two wake-ups per chunk, more than it overlaps on a busy
 * machine (docs/performance.md). */
#define RA_MIN_BLOCKS 64

enum { RA_IDLE, RA_ASKED, RA_DONE, RA_QUIT };

struct rs_ahead {
	pthread_t thr;
	pthread_mutex_t m;         /* the fields below; a leaf */
	pthread_cond_t c;
	struct disk *disk;
	uint8_t *buf;              /* a chunk, page-aligned; swapped with the sender's when used */
	uint64_t off, len, gen;    /* the range asked for, e->wgen when asked */
	int state, rc;
};

static void *ra_main(void *arg)
{
	pthread_setname_np(pthread_self(), "dp-resync-rd");
	struct rs_ahead *ra = arg;
	pthread_mutex_lock(&ra->m);
	for (;;) {
		while (ra->state != RA_ASKED && ra->state != RA_QUIT)
			pthread_cond_wait(&ra->c, &ra->m);
		if (ra->state == RA_QUIT)
			break;
		pthread_mutex_unlock(&ra->m);
		int rc = disk_pread(ra->disk, ra->buf, ra->len, ra->off);
		pthread_mutex_lock(&ra->m);
		ra->rc = rc;
		ra->state = RA_DONE;
		pthread_cond_broadcast(&ra->c);
	}
	pthread_mutex_unlock(&ra->m);
	return NULL;
}

/* 0, or -errno: no helper (the resync then reads each chunk itself). */
static int ra_start(struct rs_ahead *ra, struct disk *disk)
{
	*ra = (struct rs_ahead){ .disk = disk, .state = RA_IDLE };
	if (posix_memalign((void **)&ra->buf, 4096, (size_t)RS_CHUNK_BLOCKS * MD_BLOCK))
		return -ENOMEM;
	pthread_mutex_init(&ra->m, NULL);
	pthread_cond_init(&ra->c, NULL);
	if (pthread_create(&ra->thr, NULL, ra_main, ra) == 0)
		return 0;
	pthread_mutex_destroy(&ra->m);
	pthread_cond_destroy(&ra->c);
	free(ra->buf);
	ra->buf = NULL;
	return -EAGAIN;
}

static void ra_stop(struct rs_ahead *ra)
{
	if (!ra->buf)
		return;
	pthread_mutex_lock(&ra->m);
	while (ra->state == RA_ASKED)
		pthread_cond_wait(&ra->c, &ra->m);
	ra->state = RA_QUIT;
	pthread_cond_broadcast(&ra->c);
	pthread_mutex_unlock(&ra->m);
	pthread_join(ra->thr, NULL);
	pthread_mutex_destroy(&ra->m);
	pthread_cond_destroy(&ra->c);
	free(ra->buf);
}

static void ra_ask(struct rs_ahead *ra, uint64_t off, uint64_t len, uint64_t gen)
{
	if (!ra->buf)
		return;
	pthread_mutex_lock(&ra->m);
	ra->off = off;
	ra->len = len;
	ra->gen = gen;
	ra->state = RA_ASKED;
	pthread_cond_signal(&ra->c);
	pthread_mutex_unlock(&ra->m);
}

/* Wait for the read asked for (so it ends within this hold of sync_lock). */
static void ra_wait(struct rs_ahead *ra)
{
	if (!ra->buf)
		return;
	pthread_mutex_lock(&ra->m);
	while (ra->state == RA_ASKED)
		pthread_cond_wait(&ra->c, &ra->m);
	pthread_mutex_unlock(&ra->m);
}

/* Chunk [off, off + len) into *buf: the read-ahead's buffer if it holds
 * exactly that and is fresh (swapped with *buf), else read now. */
static int ra_take(struct rs_ahead *ra, uint8_t **buf, uint64_t off, uint64_t len, uint64_t gen)
{
	if (ra->buf) {
		pthread_mutex_lock(&ra->m);
		int fresh = ra->state == RA_DONE && !ra->rc && ra->off == off && ra->len == len && ra->gen == gen;
		ra->state = RA_IDLE;
		pthread_mutex_unlock(&ra->m);
		if (fresh) {
			uint8_t *t = *buf;
			*buf = ra->buf;
			ra->buf = t;
			return 0;
		}
	}
	return disk_pread(ra->disk, *buf, len, off);
}

/* How often a resync thread waiting for sync_lock looks at rs_stop. */
#define RS_LOCK_POLL_MS 50

/* sync_lock exclusively, for one chunk: 0, or -ECANCELED once rs_stop is
 * set. Teardown stops (joins) this thread before it fails the writes in
 * flight to the peer, and a writer may hold sync_lock shared while it waits
 * for exactly those: for the ack of another peer being torn down (fan_end
 * waits for each peer in turn with the later ones' sync_lock still held),
 * or for a free pending. A thread asked to stop must not wait for the lock
 * behind such a writer (three_disks_teardown.sh). */
static int rs_lock(struct peer *p)
{
	while (!atomic_load(&p->rs_stop)) {
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		t.tv_nsec += RS_LOCK_POLL_MS * 1000000L;
		if (t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000L;
		}
		if (!pthread_rwlock_clockwrlock(&p->sync_lock, CLOCK_MONOTONIC, &t))
			return 0;
	}
	return -ECANCELED;
}

/* Send chunk [b, b + n) in rs slot `slot`, under sync_lock held exclusive:
 * its bits cleared, its data read (or taken from the read-ahead), the next
 * chunk's read started, then the data or its checksums sent. -ECANCELED:
 * stopping, nothing done. */
static int rs_send_chunk(struct peer *p, struct rs_ahead *ra, uint8_t **buf, int slot, uint64_t b, uint64_t n,
			 int as_data)
{
	struct engine *e = p->e;
	uint64_t off = b * MD_BLOCK, len = rs_len(e, b, n), nn;
	uint8_t h[RANGE_HDR];
	int nd;

	if (rs_lock(p))
		return -ECANCELED;
	uint64_t gen = atomic_load_explicit(&e->wgen, memory_order_relaxed);
	engine_clear_oos(e, p->slot, b, n);
	int rc = ra_take(ra, buf, off, len, gen);
	uint64_t nb = rs_pick(p, b + n, &nn, &nd);
	if (!rc && nb != UINT64_MAX && nn >= RA_MIN_BLOCKS)
		ra_ask(ra, nb * MD_BLOCK, rs_len(e, nb, nn), gen);
	if (!rc) {
		pthread_mutex_lock(&p->rslock);
		p->rs[slot] = (struct rs_slot){ off, (uint32_t)len, 1 };
		p->rs_out++;
		pthread_mutex_unlock(&p->rslock);
		codec_encode_range(h, off, (uint32_t)len);
		if (as_data) {
			rc = send_pkt(p, CH_DATA, P_RS_DATA, 0, (uint64_t)slot, h, sizeof h, *buf, len);
			if (!rc)
				atomic_fetch_add_explicit(&e->st.sent_bytes, len, memory_order_relaxed);
			for (uint64_t i = 0; p->need && i < n; i++)
				atomic_fetch_and(&p->need[(b + i) >> 6], ~(1ULL << ((b + i) & 63)));
		} else {
			uint8_t dg[RS_CHUNK_BLOCKS * EVP_MAX_MD_SIZE];
			digests_md(p->cmd, *buf, (uint32_t)len, dg);
			rc = send_pkt(p, CH_DATA, P_RS_CSUM, 0, (uint64_t)slot, h, sizeof h, dg, n * md_len(p->cmd));
		}
	}
	ra_wait(ra);
	pthread_rwlock_unlock(&p->sync_lock);
	if (rc)
		engine_mark_oos(e, p->slot, off, len);
	return rc;
}

/* Wait for a free rs slot within the window: its index, or -1 (stopping). */
static int rs_slot_get(struct peer *p, int win)
{
	int slot = -1;
	pthread_mutex_lock(&p->rslock);
	while (p->rs_out >= win && !atomic_load(&p->rs_stop))
		pthread_cond_wait(&p->rscond, &p->rslock);
	for (int i = 0; i < RS_WINDOW && slot < 0; i++)
		if (!p->rs[i].used)
			slot = i;
	pthread_mutex_unlock(&p->rslock);
	return slot;
}

/* Every chunk sent acknowledged; then 1 if blocks are marked again (writes
 * that failed to replicate meanwhile), 0 when done or stopping. */
static int rs_drain(struct peer *p)
{
	pthread_mutex_lock(&p->rslock);
	while (p->rs_out && !atomic_load(&p->rs_stop))
		pthread_cond_wait(&p->rscond, &p->rslock);
	pthread_mutex_unlock(&p->rslock);
	return !atomic_load(&p->rs_stop) && engine_next_oos(p->e, p->slot, 0) != UINT64_MAX;
}

/* The resync's window: chunks in flight. A link that dies silently loses
 * them (they are sent again), so at a limited rate keep only
 * ~RS_PERSIST_MS of it on the wire; unlimited, the whole window keeps the
 * link busy. */
static int rs_window(struct peer *p)
{
	if (!p->rate)
		return RS_WINDOW;
	uint64_t w = p->rate * RS_PERSIST_MS / 1000 / ((uint64_t)RS_CHUNK_BLOCKS * MD_BLOCK);
	return w < 1 ? 1 : w > RS_WINDOW ? RS_WINDOW : (int)w;
}

/* A chunk this node could not read (its disk failed) or send: never
 * SYNC_DONE, the target would call itself UpToDate with the rest missing;
 * it stays Inconsistent (peer_set_repl). */
static void rs_stopped(struct peer *p, int failed)
{
	log_warn("peer %s: resync stopped: %s; the peer stays Inconsistent, %llu bytes still to send", p->addr,
		 strerror(-failed), (unsigned long long)(engine_oos(p->e, p->slot) * MD_BLOCK));
	peer_set_repl(p, RS_ESTABLISHED, "resync stopped: this node could not read or send its data");
}

static void rs_finish(struct peer *p)
{
	struct engine *e = p->e;
	/* the bitmap generation becomes history; the target adopts ours */
	engine_sync_source_done(e, p->slot);
	uint8_t u[SYNC_DONE_BYTES];
	struct pkt_sync_done sd;
	pthread_mutex_lock(&e->lock);
	for (int i = 0; i < UUID_SHORT; i++)
		sd.uuid[i] = e->sb.uuid[i];
	sd.gen_time = e->sb.gen_time;
	pthread_mutex_unlock(&e->lock);
	codec_encode_sync_done(u, &sd);
	send_pkt(p, CH_DATA, P_SYNC_DONE, 0, 0, u, sizeof u, NULL, 0);
	peer_set_peer_state(p, PEER_STATE_KEEP, DS_UPTODATE, "resync finished");
	peer_set_repl(p, RS_ESTABLISHED, "resync finished");
	uint64_t ms = (now_ns() - atomic_load(&p->sync_start_ns)) / 1000000;
	log_info("peer %s: resync finished: %llu bytes in %llu ms", p->addr,
		 (unsigned long long)atomic_load(&p->sync_done), (unsigned long long)ms);
}

/* Announce the resync and set its counters: 0, or -errno (not started). */
static int rs_begin(struct peer *p)
{
	struct engine *e = p->e;
	if (p->need)
		for (uint64_t w = 0; w < (e->bm_bits + 63) / 64; w++)
			atomic_store(&p->need[w], 0);
	uint64_t total = engine_oos(e, p->slot) * MD_BLOCK;
	if (total > e->size)
		total = e->size;
	atomic_store(&p->sync_total, total);
	atomic_store(&p->sync_done, 0);
	atomic_store(&p->sync_start_ns, now_ns());
	int rc = rs_announce(p, total);
	if (!rc)
		log_info("peer %s: resync started as SyncSource, %llu bytes to send", p->addr,
			 (unsigned long long)total);
	return rc;
}

/* c-min-rate (drbd.conf(5)): while application writes go on (a write to
 * the local disk began within RS_APP_IDLE_MS, e->wgen), the resync keeps to
 * c-min-rate and leaves the rest of the disk and the link to them; when
 * they stop it goes on at full speed (or c-max-rate) at once. */
#define RS_APP_IDLE_MS 100

struct rs_yield {
	uint64_t gen, app_ns;      /* e->wgen last seen, when it last moved */
	uint64_t allow_ns;         /* with writes going on: when the next chunk may go */
};

/* Before a chunk of len bytes: wait while application writes have the
 * resync's share used up. */
static void rs_yield(struct peer *p, struct rs_yield *y, uint64_t len)
{
	if (!p->min_rate)
		return;
	for (;;) {
		uint64_t g = atomic_load_explicit(&p->e->wgen, memory_order_relaxed), now = now_ns();
		if (g != y->gen) {
			y->gen = g;
			y->app_ns = now;
		}
		if (now - y->app_ns >= RS_APP_IDLE_MS * 1000000ULL) {
			y->allow_ns = now; /* idle: no debt carried into the next busy spell */
			return;
		}
		if (now >= y->allow_ns || atomic_load(&p->rs_stop)) {
			y->allow_ns = now + len * 1000000000ULL / p->min_rate;
			return;
		}
		uint64_t ms = (y->allow_ns - now) / 1000000 + 1;
		sleep_ms(ms > 10 ? 10 : (int)ms);
	}
}

static void *rs_main(void *arg)
{
	pthread_setname_np(pthread_self(), "dp-resync"); /* perf and top show what it is */
	struct peer *p = arg;
	struct engine *e = p->e;
	uint64_t cursor = 0;
	uint8_t *buf = NULL;
	struct rs_ahead ra;
	/* c-max-rate: when the next chunk may go (paced by bytes handed to the
	 * link: acked bytes lag by the window, which let 16 chunks go at once;
	 * never earlier than now, so a pause, e.g. for application writes, is
	 * not made up for by a burst afterwards) */
	uint64_t next_ns = 0;
	int win = rs_window(p);
	/* blocks [dirty_lo, dirty_hi) were cleared since persisted_ns */
	uint64_t dirty_lo = UINT64_MAX, dirty_hi = 0, persisted_ns = now_ns();
	int failed = 0;
	struct rs_yield yield = { atomic_load(&e->wgen), 0, 0 };

	if (posix_memalign((void **)&buf, 4096, (size_t)RS_CHUNK_BLOCKS * MD_BLOCK))
		return NULL;
	if (ra_start(&ra, e->disk))
		log_warn("peer %s: resync without read-ahead (no helper thread)", p->addr);
	if (rs_begin(p)) {
		ra_stop(&ra);
		free(buf);
		return NULL;
	}
	while (!atomic_load(&p->rs_stop)) {
		uint64_t n;
		int as_data;
		uint64_t b = rs_pick(p, cursor, &n, &as_data);
		if (b == UINT64_MAX) {
			/* look again from the start once the window drained */
			if (!rs_drain(p))
				break;
			cursor = 0;
			continue;
		}
		uint64_t now = now_ns();
		if (p->rate && next_ns > now)
			sleep_ms((int)((next_ns - now) / 1000000 + 1));
		rs_yield(p, &yield, rs_len(e, b, n));
		int slot = rs_slot_get(p, win);
		if (slot < 0)
			break;
		failed = rs_send_chunk(p, &ra, &buf, slot, b, n, as_data);
		if (failed)
			break;
		now = now_ns();
		if (p->rate)
			next_ns = (next_ns > now ? next_ns : now) + rs_len(e, b, n) * 1000000000ULL / p->rate;
		cursor = b + n;
		/* cleared bits to disk now and then: after a crash here the
		 * resync resumes from them (the target's copy keeps what it
		 * still lacks, so a bit cleared for a chunk still in flight is
		 * safe) instead of re-sending everything sent so far */
		if (b < dirty_lo)
			dirty_lo = b;
		if (b + n > dirty_hi)
			dirty_hi = b + n;
		if (now_ns() - persisted_ns >= RS_PERSIST_MS * 1000000ULL) {
			engine_persist_bitmap(e, dirty_lo, dirty_hi - dirty_lo);
			dirty_lo = UINT64_MAX;
			dirty_hi = 0;
			persisted_ns = now_ns();
		}
	}
	ra_stop(&ra);
	free(buf);
	if (failed && !atomic_load(&p->rs_stop) && connected(p))
		rs_stopped(p, failed);
	else if (!atomic_load(&p->rs_stop) && connected(p))
		rs_finish(p);
	return NULL;
}

void rs_start(struct peer *p)
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
	if (peer_set_repl(p, RS_SYNC_SOURCE, "resync started")) {
		pthread_mutex_unlock(&p->rsctl); /* (logged as a bug) */
		return;
	}
	if (pthread_create(&p->rs_thr, NULL, rs_main, p) == 0)
		p->rs_running = 1;
	pthread_mutex_unlock(&p->rsctl);
}

void rs_stop(struct peer *p)
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

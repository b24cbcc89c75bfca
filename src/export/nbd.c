/* nbd — NBD server. See nbd.h and nbd_proto.h.
 *
 * Handshake (protocol-handshake phase) and transmission (protocol phase) are
 * separate functions; both run on the connection's reader thread. Workers only
 * ever see fully received, validated requests.
 */
#include "nbd.h"
#include "nbd_proto.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define CONN_SLOTS     64                /* requests in flight per connection */
#define NBD_MAX_PAYLOAD (32u << 20)      /* advertised maximum block size */
#define NBD_HARD_MAX   (64u << 20)       /* beyond this we drop the client */
#define NBD_MAX_CLIENTS 64
#define NBD_WORKERS    32
#define CONN_BUF_MAX   (128u << 20)      /* payload buffers of one connection, bytes */
#define ALONE_MAX      (256u << 10)      /* requests the reader may run itself, bytes */
#define RBUF_BYTES     (64u << 10)       /* the reader's receive buffer, bytes */

struct nbd_conn;

struct nbd_req {
	struct nbd_conn *c;
	uint16_t flags, type;
	uint64_t cookie, off;
	uint32_t len;
	uint8_t *buf;       /* grows to the largest request seen on this slot */
	size_t cap;
	int rc;             /* the answer: 0, or -errno */
	int dfd;            /* a read through the ring: the disk descriptor */
	uint8_t reply[NBD_REPLY_BYTES];
	struct nbd_req *next; /* free list, server queue or reply queue */
};

struct nbd_conn {
	struct nbd_server *s;
	int fd;
	int closed;                 /* fd closed; guarded by lock */
	int done;                   /* reader finished; guarded by server lock */
	int has_thread;
	pthread_t thr;
	char peer[96];
	pthread_mutex_t lock;       /* slots free list, inflight, closed, outq, sending */
	pthread_cond_t cond;
	struct nbd_req slots[CONN_SLOTS];
	struct nbd_req *free;
	int inflight;               /* slots taken: a request until its reply is written */
	size_t buf_bytes;           /* the slots' buffers, bytes (<= CONN_BUF_MAX but for one) */
	/* answered requests wait in outq for the one thread that writes
	 * replies (`sending`): it writes all that queued meanwhile in one
	 * writev, then frees their slots, so workers never wait in line for
	 * the socket (a lock per reply convoyed them at QD32) */
	struct nbd_req *outq, *outq_tail;
	int sending;
	int dead;                   /* a send failed; only the sending thread touches it */
	struct nbd_ring *ring;      /* reads through io_uring, or NULL (see below) */
	struct nbd_req *batch, *batch_tail; /* reads for the ring not handed over yet: reader only */
	size_t rpos, rlen;          /* received, not parsed: rbuf[rpos, rlen); reader only */
	struct nbd_conn *next;
	uint8_t rbuf[RBUF_BYTES];   /* many requests per read(2) when the client sends many */
};

/* Reads the engine can serve with one pread (engine_read_fd) go through an
 * io_uring per connection, owned by one thread ("dp-nbd-io") that submits
 * them in batches and reaps their completions (DEFER_TASKRUN: the kernel
 * completes them in that thread, when it waits) and writes the replies: no
 * worker hand-off and no blocked thread per read. The reader gathers the
 * reads of what one read(2) brought (conn->batch) and hands them over
 * before it may block, waking the thread through an eventfd only when it
 * waits with nothing to submit. Where io_uring is unavailable (an old
 * kernel, a seccomp filter) reads go to the workers as before. */
struct nbd_ring {
	struct io_uring ring;
	int efd;                    /* eventfd: the reader wakes the thread */
	uint64_t ebuf;              /* the eventfd read's target */
	pthread_t thr;
	int state;                  /* 0 starting, 1 running, -errno failed; conn lock */
	struct nbd_req *todo, *todo_tail; /* handed over, not submitted; conn lock */
	int idle;                   /* the thread sleeps with todo empty; conn lock */
	int stop;                   /* conn lock */
	unsigned inflight;          /* submitted, not reaped: the thread only */
};

struct nbd_server {
	struct engine *e;
	char name[64];
	char upath[108];
	int ufd, tfd;
	int wake[2];
	pthread_t acceptor;
	int has_acceptor;
	pthread_mutex_t lock;       /* queue, conns, stopping */
	pthread_cond_t qcond;
	struct nbd_req *qhead, *qtail;
	int stopping, workers_stop;
	pthread_t workers[NBD_WORKERS];
	int nworkers;
	struct nbd_conn *conns;
	int nconns;
	atomic_uint_fast64_t ring_reads, ring_redone; /* reads through io_uring; redone by engine_read */
	int ring_warned;            /* io_uring unavailable: said once; lock */
};

static void handoff(struct nbd_conn *c);

/* ------------------------------------------------------------ replies */

static uint32_t nbd_errno(int rc)
{
	switch (-rc) {
	case 0: return 0;
	case EPERM: case EROFS: return NBD_EPERM;
	case ENOSPC: return NBD_ENOSPC;
	case EINVAL: return NBD_EINVAL;
	case ENOMEM: return NBD_ENOMEM;
	case EOPNOTSUPP: return NBD_ENOTSUP;
	case ESHUTDOWN: return NBD_ESHUTDOWN;
	case EOVERFLOW: return NBD_EOVERFLOW;
	default: return NBD_EIO;
	}
}

/* Append r to the list head..tail (linked by next); the caller holds
 * the list's lock. */
static void list_append(struct nbd_req **head, struct nbd_req **tail, struct nbd_req *r)
{
	r->next = NULL;
	if (*tail)
		(*tail)->next = r;
	else
		*head = r;
	*tail = r;
}

#define SEND_BATCH 64 /* replies per writev (a header and a read's data each) */

/* Write the replies of the list q (linked by next) on c's socket. Only
 * the sending thread. */
static void send_batch(struct nbd_conn *c, struct nbd_req *q)
{
	struct iovec iov[2 * SEND_BATCH];
	while (q) {
		int n = 0;
		for (; q && n + 2 <= 2 * SEND_BATCH; q = q->next) {
			iov[n++] = (struct iovec){ q->reply, NBD_REPLY_BYTES };
			if (q->type == NBD_CMD_READ && q->rc == 0)
				iov[n++] = (struct iovec){ q->buf, q->len };
		}
		if (!c->dead && writev_full(c->fd, iov, n)) {
			c->dead = 1;
			shutdown(c->fd, SHUT_RDWR); /* wakes the reader */
		}
	}
}

/* Queue r's reply with rc (a read's data goes with it when rc is 0).
 * c->lock held. */
static void reply_put(struct nbd_req *r, int rc)
{
	struct nbd_conn *c = r->c;
	r->rc = rc;
	put_be32(r->reply, NBD_SIMPLE_REPLY_MAGIC);
	put_be32(r->reply + 4, nbd_errno(rc));
	put_be64(r->reply + 8, r->cookie);
	list_append(&c->outq, &c->outq_tail, r);
}

/* Write the queued replies unless another thread is writing them: the
 * first thread to answer while nobody writes becomes the writer and also
 * writes every reply queued meanwhile, until the queue is empty; the
 * others only queue theirs. A slot is free again once its reply is
 * written. Called and returns with c->lock held. */
static void replies_send(struct nbd_conn *c)
{
	if (c->sending)
		return;
	c->sending = 1;
	while (c->outq) {
		struct nbd_req *batch = c->outq, *next;
		c->outq = c->outq_tail = NULL;
		pthread_mutex_unlock(&c->lock);
		send_batch(c, batch);
		pthread_mutex_lock(&c->lock);
		for (struct nbd_req *q = batch; q; q = next) {
			next = q->next;
			q->next = c->free;
			c->free = q;
			c->inflight--;
		}
		pthread_cond_broadcast(&c->cond);
	}
	c->sending = 0;
}

/* Answer r with rc. */
static void answer(struct nbd_req *r, int rc)
{
	struct nbd_conn *c = r->c;
	pthread_mutex_lock(&c->lock);
	reply_put(r, rc);
	replies_send(c);
	pthread_mutex_unlock(&c->lock);
}

/* A slot taken but not answered (the connection ends): free again. */
static void slot_release(struct nbd_req *r)
{
	struct nbd_conn *c = r->c;
	pthread_mutex_lock(&c->lock);
	r->next = c->free;
	c->free = r;
	c->inflight--;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static struct nbd_req *slot_get(struct nbd_conn *c)
{
	struct nbd_req *r;
	pthread_mutex_lock(&c->lock);
	if (!c->free) {
		/* the slots may be held by the reads gathered here */
		pthread_mutex_unlock(&c->lock);
		handoff(c);
		pthread_mutex_lock(&c->lock);
	}
	while (!c->free)
		pthread_cond_wait(&c->cond, &c->lock);
	r = c->free;
	c->free = r->next;
	c->inflight++;
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Grow r's buffer to len bytes (reader thread). A connection's buffers
 * stay within CONN_BUF_MAX: idle slots give theirs back first, then the
 * reader waits for requests in flight to be answered, so a client that
 * sends many large requests at once is slowed down, not served out of
 * memory (64 slots of 32 MiB would be 2 GiB). 0 or -ENOMEM. */
static int slot_reserve(struct nbd_req *r, size_t len)
{
	struct nbd_conn *c = r->c;
	void *nb = NULL;

	if (r->cap >= len)
		return 0;
	handoff(c); /* (below it may wait for requests to be answered) */
	/* aligned, so the engine can hand it to O_DIRECT without bouncing */
	len = ROUND_UP(len, 65536);
	pthread_mutex_lock(&c->lock);
	c->buf_bytes -= r->cap; /* r's old buffer goes */
	while (c->buf_bytes + len > CONN_BUF_MAX) {
		for (struct nbd_req *q = c->free; q; q = q->next) {
			c->buf_bytes -= q->cap;
			free(q->buf);
			q->buf = NULL;
			q->cap = 0;
		}
		if (c->buf_bytes + len <= CONN_BUF_MAX || c->inflight <= 1)
			break; /* (r alone in flight: it gets its buffer anyway) */
		pthread_cond_wait(&c->cond, &c->lock);
	}
	c->buf_bytes += len;
	pthread_mutex_unlock(&c->lock);
	free(r->buf);
	r->buf = NULL;
	r->cap = 0;
	if (posix_memalign(&nb, 4096, len)) {
		pthread_mutex_lock(&c->lock);
		c->buf_bytes -= len;
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	r->buf = nb;
	r->cap = len;
	return 0;
}

/* ------------------------------------------------------------ workers */

static void execute(struct nbd_server *s, struct nbd_req *r)
{
	struct engine *e = s->e;
	unsigned fl = (r->flags & NBD_CMD_FLAG_FUA) ? ENGINE_FUA : 0;
	int rc;

	switch (r->type) {
	case NBD_CMD_READ:
		answer(r, engine_read(e, r->buf, r->len, r->off));
		return;
	case NBD_CMD_WRITE:
		rc = engine_write(e, r->buf, r->len, r->off, fl);
		break;
	case NBD_CMD_FLUSH:
		rc = engine_flush(e);
		break;
	case NBD_CMD_TRIM:
		rc = engine_trim(e, r->off, r->len, fl);
		break;
	case NBD_CMD_WRITE_ZEROES:
		rc = engine_zero(e, r->off, r->len, !!(r->flags & NBD_CMD_FLAG_NO_HOLE), fl);
		break;
	default:
		rc = -EINVAL;
	}
	if (rc && rc != -EPERM)
		log_warn("nbd %s: %s of %u bytes at %llu failed: %s", r->c->peer,
			 r->type == NBD_CMD_WRITE ? "write" : r->type == NBD_CMD_FLUSH ? "flush" : "request",
			 r->len, (unsigned long long)r->off, strerror(-rc));
	answer(r, rc);
}

static void *worker_main(void *arg)
{
	pthread_setname_np(pthread_self(), "dp-nbd-wk"); /* perf and top show what it is */
	struct nbd_server *s = arg;
	for (;;) {
		struct nbd_req *r;
		pthread_mutex_lock(&s->lock);
		while (!s->qhead && !s->workers_stop)
			pthread_cond_wait(&s->qcond, &s->lock);
		if (!s->qhead) {
			pthread_mutex_unlock(&s->lock);
			return NULL;
		}
		r = s->qhead;
		s->qhead = r->next;
		if (!s->qhead)
			s->qtail = NULL;
		pthread_mutex_unlock(&s->lock);
		execute(s, r); /* answers r: its slot goes back */
	}
}

static void enqueue(struct nbd_server *s, struct nbd_req *r)
{
	pthread_mutex_lock(&s->lock);
	list_append(&s->qhead, &s->qtail, r);
	pthread_cond_signal(&s->qcond);
	pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------- io_uring reads */

#define RING_ENTRIES (2 * CONN_SLOTS) /* every slot's read and the eventfd's, with room */

static void ring_arm_eventfd(struct nbd_ring *g)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&g->ring);
	io_uring_prep_read(sqe, g->efd, &g->ebuf, sizeof g->ebuf, 0);
	io_uring_sqe_set_data(sqe, g); /* (a request's data is its nbd_req) */
}

/* Set up the ring in the thread that will submit to it (SINGLE_ISSUER). */
static int ring_init(struct nbd_ring *g)
{
	struct io_uring_params p = { .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN };
	int rc = io_uring_queue_init_params(RING_ENTRIES, &g->ring, &p);
	if (rc == -EINVAL) /* a kernel before 6.1 */
		rc = io_uring_queue_init(RING_ENTRIES, &g->ring, 0);
	if (rc)
		return rc;
	/* IORING_OP_READ came with 5.6: without it every read would fail */
	struct io_uring_probe *probe = io_uring_get_probe_ring(&g->ring);
	int ok = probe && io_uring_opcode_supported(probe, IORING_OP_READ);
	io_uring_free_probe(probe);
	if (ok)
		return 0;
	io_uring_queue_exit(&g->ring);
	return -EOPNOTSUPP;
}

/* Reap what completed: answered, or redone by a worker through
 * engine_read (short or failed; engine_read_fd_done applied on-io-error
 * to a failure). The engine is asked with no lock held: on-io-error may
 * detach, or run a handler. */
static void ring_reap(struct nbd_conn *c, struct nbd_ring *g)
{
	struct nbd_server *s = c->s;
	struct io_uring_cqe *cqe;
	struct nbd_req *ok = NULL, *ok_tail = NULL, *redo = NULL, *redo_tail = NULL, *next;
	unsigned head, n = 0, done = 0;

	io_uring_for_each_cqe(&g->ring, head, cqe) {
		void *data = io_uring_cqe_get_data(cqe);
		n++;
		if (data == g) {
			ring_arm_eventfd(g);
			continue;
		}
		struct nbd_req *r = data;
		g->inflight--;
		if (engine_read_fd_done(s->e, r->buf, r->off, r->len, cqe->res) == 0) {
			list_append(&ok, &ok_tail, r);
			done++;
		} else {
			list_append(&redo, &redo_tail, r);
		}
	}
	io_uring_cq_advance(&g->ring, n);
	if (done) {
		pthread_mutex_lock(&c->lock);
		for (struct nbd_req *r = ok; r; r = next) {
			next = r->next;
			reply_put(r, 0);
		}
		replies_send(c);
		pthread_mutex_unlock(&c->lock);
		atomic_fetch_add_explicit(&s->ring_reads, done, memory_order_relaxed);
	}
	for (struct nbd_req *r = redo; r; r = next) {
		next = r->next;
		atomic_fetch_add_explicit(&s->ring_redone, 1, memory_order_relaxed);
		enqueue(s, r);
	}
}

static void *ring_main(void *arg)
{
	pthread_setname_np(pthread_self(), "dp-nbd-io"); /* perf and top show what it is */
	struct nbd_conn *c = arg;
	struct nbd_ring *g = c->ring;
	int rc = ring_init(g);

	pthread_mutex_lock(&c->lock);
	g->state = rc ? rc : 1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (rc)
		return NULL;
	ring_arm_eventfd(g);
	int warned = 0;
	for (;;) {
		pthread_mutex_lock(&c->lock);
		struct nbd_req *todo = g->todo;
		g->todo = g->todo_tail = NULL;
		int stop = g->stop && !todo && !g->inflight;
		g->idle = !todo;
		pthread_mutex_unlock(&c->lock);
		if (stop)
			break;
		for (struct nbd_req *r = todo, *next; r; r = next) {
			next = r->next;
			/* asked here, just before submitting, not when the reader
			 * took it: the engine may have suspended or refused I/O
			 * meanwhile (this thread may have been writing replies to a
			 * slow client) */
			if ((r->dfd = engine_read_fd(c->s->e, r->buf, r->len, r->off)) < 0) {
				enqueue(c->s, r);
				continue;
			}
			/* never NULL: at most CONN_SLOTS reads and one eventfd read */
			struct io_uring_sqe *sqe = io_uring_get_sqe(&g->ring);
			io_uring_prep_read(sqe, r->dfd, r->buf, r->len, r->off);
			io_uring_sqe_set_data(sqe, r);
			g->inflight++;
		}
		/* waiting needs a completion to come, or the reader to wake this
		 * thread: with todo taken (not idle) and every read of it gone to
		 * the workers, neither would */
		if (todo && !g->inflight)
			continue;
		/* what is not submitted now (EINTR, EAGAIN) stays in the queue
		 * and goes with the next call */
		rc = io_uring_submit_and_wait(&g->ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -ETIME) {
			if (rc != -EAGAIN && rc != -EBUSY && !warned++)
				log_err("nbd %s: io_uring_enter failed: %s; retrying", c->peer, strerror(-rc));
			nanosleep(&(struct timespec){ 0, 1000000L }, NULL); /* (out of kernel memory: a moment) */
		}
		ring_reap(c, g);
	}
	io_uring_queue_exit(&g->ring);
	return NULL;
}

static void ring_wake(struct nbd_ring *g)
{
	uint64_t one = 1;
	while (write(g->efd, &one, sizeof one) < 0 && errno == EINTR)
		;
}

/* Hand the reads gathered so far to the ring thread (reader; nothing to
 * do without a ring: nothing is gathered then). */
static void handoff(struct nbd_conn *c)
{
	struct nbd_ring *g = c->ring;
	if (!c->batch)
		return;
	pthread_mutex_lock(&c->lock);
	if (g->todo_tail)
		g->todo_tail->next = c->batch;
	else
		g->todo = c->batch;
	g->todo_tail = c->batch_tail;
	int wake = g->idle;
	g->idle = 0;
	pthread_mutex_unlock(&c->lock);
	c->batch = c->batch_tail = NULL;
	if (wake)
		ring_wake(g);
}

/* Start c's ring thread; without io_uring c->ring stays NULL (said once
 * per server). */
static void ring_start(struct nbd_conn *c)
{
	struct nbd_server *s = c->s;
	struct nbd_ring *g = calloc(1, sizeof *g);
	int rc = -ENOMEM;

	if (g && (g->efd = eventfd(0, EFD_CLOEXEC)) >= 0) {
		c->ring = g;
		rc = -pthread_create(&g->thr, NULL, ring_main, c);
		pthread_mutex_lock(&c->lock);
		while (!rc && g->state == 0)
			pthread_cond_wait(&c->cond, &c->lock);
		if (!rc && g->state < 0)
			rc = g->state;
		pthread_mutex_unlock(&c->lock);
		if (rc && g->state < 0)
			pthread_join(g->thr, NULL);
	} else if (g) {
		rc = -errno;
	}
	if (!rc)
		return;
	int unavailable = g && g->state < 0; /* io_uring itself, not this moment's memory or fds */
	if (g && g->efd >= 0)
		close(g->efd);
	free(g);
	c->ring = NULL;
	if (!unavailable) {
		log_warn("nbd %s: no io_uring for this connection (%s); its reads go through the worker threads",
			 c->peer, strerror(-rc));
		return;
	}
	pthread_mutex_lock(&s->lock);
	int warn = !s->ring_warned;
	s->ring_warned = 1;
	pthread_mutex_unlock(&s->lock);
	if (warn)
		log_info("nbd: io_uring is not available (%s); reads go through the worker threads", strerror(-rc));
}

/* Every read was answered (conn inflight 0): end the ring thread. */
static void ring_stop(struct nbd_conn *c)
{
	struct nbd_ring *g = c->ring;
	if (!g)
		return;
	pthread_mutex_lock(&c->lock);
	g->stop = 1;
	pthread_mutex_unlock(&c->lock);
	ring_wake(g);
	pthread_join(g->thr, NULL);
	close(g->efd);
	free(g);
	c->ring = NULL;
}

/* ---------------------------------------------------------- handshake */

static int opt_reply(struct nbd_conn *c, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
	uint8_t h[20];
	struct iovec iov[2] = { { h, sizeof h }, { (void *)data, len } };
	put_be64(h, NBD_REP_MAGIC);
	put_be32(h + 8, opt);
	put_be32(h + 12, type);
	put_be32(h + 16, len);
	return writev_full(c->fd, iov, len ? 2 : 1);
}

static uint16_t tx_flags(struct nbd_server *s)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |
		     NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN;
	/* another node owning the mounted filesystem is the one writer */
	if (atomic_load(&s->e->role) != ROLE_PRIMARY || atomic_load(&s->e->fs_other_owner))
		f |= NBD_FLAG_READ_ONLY;
	return f;
}

static int name_ok(struct nbd_server *s, const char *name)
{
	return !name[0] || !strcmp(name, s->name);
}

/* INFO / GO. Returns 1 to enter transmission, 0 to continue haggling, <0 to drop. */
static int opt_info_go(struct nbd_conn *c, uint32_t opt, const uint8_t *d, uint32_t len)
{
	struct nbd_server *s = c->s;
	char name[4097];
	uint8_t b[32];
	uint32_t nlen;
	uint16_t nreq;
	int want_name = 0, want_desc = 0, rc;

	if (len < 6 || (nlen = get_be32(d)) > len - 6 || nlen > 4096)
		return opt_reply(c, opt, NBD_REP_ERR_INVALID, NULL, 0);
	nreq = get_be16(d + 4 + nlen);
	if (len != 4 + nlen + 2 + 2u * nreq)
		return opt_reply(c, opt, NBD_REP_ERR_INVALID, NULL, 0);
	memcpy(name, d + 4, nlen);
	name[nlen] = 0;
	for (int i = 0; i < nreq; i++) {
		uint16_t t = get_be16(d + 4 + nlen + 2 + 2 * i);
		want_name |= t == NBD_INFO_NAME;
		want_desc |= t == NBD_INFO_DESCRIPTION;
	}
	if (!name_ok(s, name)) {
		char msg[160];
		int m = snprintf(msg, sizeof msg, "unknown export '%.60s'; this server exports '%s'", name, s->name);
		return opt_reply(c, opt, NBD_REP_ERR_UNKNOWN, msg, (uint32_t)m);
	}
	put_be16(b, NBD_INFO_EXPORT);
	put_be64(b + 2, s->e->size);
	put_be16(b + 10, tx_flags(s));
	if ((rc = opt_reply(c, opt, NBD_REP_INFO, b, 12)))
		return rc;
	put_be16(b, NBD_INFO_BLOCK_SIZE);
	put_be32(b + 2, 1);
	put_be32(b + 6, 4096);
	put_be32(b + 10, NBD_MAX_PAYLOAD);
	if ((rc = opt_reply(c, opt, NBD_REP_INFO, b, 14)))
		return rc;
	if (want_name) {
		uint8_t nb[66];
		size_t n = strlen(s->name);
		put_be16(nb, NBD_INFO_NAME);
		memcpy(nb + 2, s->name, n);
		if ((rc = opt_reply(c, opt, NBD_REP_INFO, nb, (uint32_t)(n + 2))))
			return rc;
	}
	if (want_desc) {
		uint8_t db[128];
		int n = snprintf((char *)db + 2, sizeof db - 2, "dipole resource %s on %s", s->name, s->e->node);
		put_be16(db, NBD_INFO_DESCRIPTION);
		if ((rc = opt_reply(c, opt, NBD_REP_INFO, db, (uint32_t)(n + 2))))
			return rc;
	}
	if ((rc = opt_reply(c, opt, NBD_REP_ACK, NULL, 0)))
		return rc;
	return opt == NBD_OPT_GO ? 1 : 0;
}

/* Returns 0 when transmission should start, <0 to drop the connection. */
static int handshake(struct nbd_conn *c)
{
	struct nbd_server *s = c->s;
	uint8_t h[18], buf[16];
	uint8_t *data = NULL;
	int rc, no_zeroes;

	put_be64(h, NBD_MAGIC);
	put_be64(h + 8, NBD_IHAVEOPT);
	put_be16(h + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	if ((rc = write_full(c->fd, h, sizeof h)))
		return rc;
	if ((rc = read_full(c->fd, buf, 4)))
		return rc;
	uint32_t cflags = get_be32(buf);
	if (cflags & ~(uint32_t)(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)) {
		log_warn("nbd %s: unknown client flags 0x%x; closing", c->peer, cflags);
		return -EPROTO;
	}
	no_zeroes = !!(cflags & NBD_FLAG_NO_ZEROES);
	data = malloc(65536);
	if (!data)
		return -ENOMEM;
	for (;;) {
		if ((rc = read_full(c->fd, buf, 16)))
			break;
		if (get_be64(buf) != NBD_IHAVEOPT) {
			log_warn("nbd %s: bad option magic in handshake; closing", c->peer);
			rc = -EPROTO;
			break;
		}
		uint32_t opt = get_be32(buf + 8), len = get_be32(buf + 12);
		if (len > 65536) {
			log_warn("nbd %s: option %u with %u bytes of data is too large; closing", c->peer, opt, len);
			rc = -EPROTO;
			break;
		}
		if ((rc = read_full(c->fd, data, len)))
			break;
		switch (opt) {
		case NBD_OPT_EXPORT_NAME: {
			char name[4097];
			uint8_t r[10 + 124] = { 0 };
			size_t n = len < 4096 ? len : 4096;
			memcpy(name, data, n);
			name[n] = 0;
			if (!name_ok(s, name)) {
				log_warn("nbd %s: unknown export '%s' requested; closing", c->peer, name);
				rc = -ENOENT;
				goto out;
			}
			put_be64(r, s->e->size);
			put_be16(r + 8, tx_flags(s));
			rc = write_full(c->fd, r, no_zeroes ? 10 : sizeof r);
			goto out;
		}
		case NBD_OPT_ABORT:
			opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
			rc = -ECONNRESET;
			goto out;
		case NBD_OPT_LIST:
			if (len) {
				rc = opt_reply(c, opt, NBD_REP_ERR_INVALID, NULL, 0);
			} else {
				uint8_t lb[68];
				size_t n = strlen(s->name);
				put_be32(lb, (uint32_t)n);
				memcpy(lb + 4, s->name, n);
				rc = opt_reply(c, opt, NBD_REP_SERVER, lb, (uint32_t)(n + 4));
				if (!rc)
					rc = opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
			}
			break;
		case NBD_OPT_INFO:
		case NBD_OPT_GO:
			rc = opt_info_go(c, opt, data, len);
			if (rc == 1) {
				rc = 0;
				goto out;
			}
			break;
		default: /* structured replies, TLS, meta contexts: not offered */
			rc = opt_reply(c, opt, NBD_REP_ERR_UNSUP, NULL, 0);
			break;
		}
		if (rc)
			break;
	}
	if (!rc)
		rc = -EPROTO;
out:
	free(data);
	return rc;
}

/* ------------------------------------------------------- transmission */

static size_t rx_have(const struct nbd_conn *c)
{
	return c->rlen - c->rpos;
}

/* Receive more of the stream into rbuf (blocks; reads gathered for the
 * ring are handed over first). 0, -EPIPE at its end, or -errno. */
static int rx_fill(struct nbd_conn *c)
{
	handoff(c);
	if (c->rpos) {
		memmove(c->rbuf, c->rbuf + c->rpos, rx_have(c));
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	if (c->rlen == sizeof c->rbuf)
		return -ENOBUFS; /* (callers take what is buffered first: not reached) */
	for (;;) {
		ssize_t n = read(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen);
		if (n > 0) {
			c->rlen += (size_t)n;
			return 0;
		}
		if (n == 0)
			return -EPIPE;
		if (errno != EINTR)
			return -errno;
	}
}

/* The next n bytes of the stream into dst: what rbuf holds, then a large
 * rest (a write's payload) straight from the socket. 0 or -errno. */
static int rx_read(struct nbd_conn *c, void *dst, size_t n)
{
	uint8_t *p = dst;
	for (;;) {
		size_t k = n < rx_have(c) ? n : rx_have(c);
		memcpy(p, c->rbuf + c->rpos, k);
		c->rpos += k;
		p += k;
		n -= k;
		if (!n)
			return 0;
		if (n >= RBUF_BYTES / 2) {
			handoff(c);
			return read_full(c->fd, p, n);
		}
		int rc = rx_fill(c);
		if (rc)
			return rc;
	}
}

static int discard_payload(struct nbd_conn *c, uint32_t len, uint8_t *scratch, size_t cap)
{
	while (len) {
		size_t n = len < cap ? len : cap;
		int rc = rx_read(c, scratch, n);
		if (rc)
			return rc;
		len -= (uint32_t)n;
	}
	return 0;
}

/* True when the request just taken is the only one of this connection in
 * flight and the client has sent nothing more yet (queue depth 1). */
static int alone(struct nbd_conn *c)
{
	int pending = 0, inflight;

	pthread_mutex_lock(&c->lock);
	inflight = c->inflight;
	pthread_mutex_unlock(&c->lock);
	if (inflight != 1 || rx_have(c))
		return 0;
	return ioctl(c->fd, FIONREAD, &pending) == 0 && pending == 0;
}

static void transmission(struct nbd_conn *c)
{
	struct nbd_server *s = c->s;
	uint8_t h[NBD_REQ_BYTES];
	int rc;

	for (;;) {
		if ((rc = rx_read(c, h, sizeof h))) {
			if (rc != -EPIPE && rc != -ECONNRESET)
				log_warn("nbd %s: receive failed: %s", c->peer, strerror(-rc));
			else if (!c->dead)
				log_info("nbd %s: client went away without NBD_CMD_DISC", c->peer);
			return;
		}
		if (get_be32(h) != NBD_REQUEST_MAGIC) {
			log_warn("nbd %s: bad request magic 0x%08x; closing connection", c->peer, get_be32(h));
			return;
		}
		uint16_t type = get_be16(h + 6);
		if (type == NBD_CMD_DISC)
			return;
		struct nbd_req *r = slot_get(c);
		r->flags = get_be16(h + 4);
		r->type = type;
		r->cookie = get_be64(h + 8);
		r->off = get_be64(h + 16);
		r->len = get_be32(h + 24);

		int err = 0;
		if (type == NBD_CMD_WRITE) {
			if (r->len > NBD_HARD_MAX) {
				log_warn("nbd %s: write of %u bytes exceeds the %u byte limit; closing", c->peer,
					 r->len, NBD_HARD_MAX);
				slot_release(r);
				return;
			}
			if (r->len > NBD_MAX_PAYLOAD) {
				/* answer EINVAL but keep the stream in step */
				if (slot_reserve(r, 1 << 20) || discard_payload(c, r->len, r->buf, r->cap)) {
					slot_release(r);
					return;
				}
				err = -EINVAL;
			} else if (slot_reserve(r, r->len ? r->len : 1)) {
				log_err("nbd %s: out of memory for a %u byte write; closing", c->peer, r->len);
				slot_release(r);
				return;
			} else if ((rc = rx_read(c, r->buf, r->len))) {
				log_warn("nbd %s: client disconnected in the middle of a %u byte write at %llu; "
					 "that write was not applied", c->peer, r->len, (unsigned long long)r->off);
				slot_release(r);
				return;
			}
		}
		if (!err) {
			switch (type) {
			case NBD_CMD_READ:
				if (r->len == 0 || r->len > NBD_MAX_PAYLOAD || slot_reserve(r, r->len))
					err = -EINVAL;
				else if (r->off > s->e->size || r->len > s->e->size - r->off)
					err = -EINVAL;
				break;
			case NBD_CMD_WRITE:
				if (r->len == 0)
					err = -EINVAL;
				break;
			case NBD_CMD_FLUSH:
				break;
			case NBD_CMD_TRIM:
			case NBD_CMD_WRITE_ZEROES:
				if (r->len == 0)
					err = -EINVAL;
				break;
			default:
				log_warn("nbd %s: unsupported command %u", c->peer, type);
				err = -EINVAL;
			}
		}
		if (err) {
			handoff(c); /* (answering may block on a slow client) */
			answer(r, err);
			continue;
		}
		if (r->len <= ALONE_MAX && alone(c)) {
			/* nothing else in flight or waiting: a hand-off to a worker would
			 * only add a wake-up to this request's latency (a large one's
			 * hand-off costs nothing next to its transfer, and this thread
			 * stays free to read what comes next) */
			execute(s, r);
			continue;
		}
		if (type == NBD_CMD_READ && c->ring) {
			/* (the ring thread asks engine_read_fd, once, just before it
			 * submits: what it refuses goes on to the workers) */
			list_append(&c->batch, &c->batch_tail, r);
			continue;
		}
		enqueue(s, r);
	}
}

static void conn_init(struct nbd_conn *c, struct nbd_server *s, int fd, const char *peer)
{
	memset(c, 0, sizeof *c);
	c->s = s;
	c->fd = fd;
	snprintf(c->peer, sizeof c->peer, "%s", peer);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	for (int i = 0; i < CONN_SLOTS; i++) {
		c->slots[i].c = c;
		c->slots[i].next = c->free;
		c->free = &c->slots[i];
	}
}

static void conn_run(struct nbd_conn *c)
{
	int rc = handshake(c);
	if (rc == 0) {
		log_info("nbd %s: client connected", c->peer);
		ring_start(c);
		transmission(c);
		handoff(c);
	}
	/* every admitted request is answered before the socket closes */
	pthread_mutex_lock(&c->lock);
	while (c->inflight)
		pthread_cond_wait(&c->cond, &c->lock);
	close(c->fd);
	c->closed = 1;
	pthread_mutex_unlock(&c->lock);
	ring_stop(c);
	if (rc == 0)
		log_info("nbd %s: client disconnected", c->peer);
}

static void conn_free(struct nbd_conn *c)
{
	for (int i = 0; i < CONN_SLOTS; i++)
		free(c->slots[i].buf);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

static void *conn_main(void *arg)
{
	pthread_setname_np(pthread_self(), "dp-nbd-rx"); /* perf and top show what it is */
	struct nbd_conn *c = arg;
	conn_run(c);
	pthread_mutex_lock(&c->s->lock);
	c->done = 1;
	pthread_mutex_unlock(&c->s->lock);
	return NULL;
}

/* Join and free finished connections. Caller holds no lock. */
static void reap(struct nbd_server *s, int all)
{
	for (;;) {
		struct nbd_conn *victim = NULL, **pp;
		pthread_mutex_lock(&s->lock);
		for (pp = &s->conns; *pp; pp = &(*pp)->next) {
			if ((*pp)->done || all) {
				victim = *pp;
				*pp = victim->next;
				s->nconns--;
				break;
			}
		}
		pthread_mutex_unlock(&s->lock);
		if (!victim)
			return;
		pthread_join(victim->thr, NULL);
		conn_free(victim);
	}
}

void nbd_server_serve_fd(struct nbd_server *s, int fd, const char *peer)
{
	struct nbd_conn *c = malloc(sizeof *c);
	if (!c) {
		close(fd);
		return;
	}
	conn_init(c, s, fd, peer);
	conn_run(c);
	conn_free(c);
}

/* ------------------------------------------------------------ accept */

static void peer_name(int fd, int is_unix, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char ip[INET6_ADDRSTRLEN];

	if (is_unix || getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(out, len, "unix:fd%d", fd);
		return;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (void *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
		snprintf(out, len, "[%s]:%u", ip, ntohs(a->sin6_port));
	} else {
		struct sockaddr_in *a = (void *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
		snprintf(out, len, "%s:%u", ip, ntohs(a->sin_port));
	}
}

static void *acceptor_main(void *arg)
{
	struct nbd_server *s = arg;
	struct pollfd p[3] = { { s->wake[0], POLLIN, 0 }, { s->ufd, POLLIN, 0 }, { s->tfd, POLLIN, 0 } };
	int np = s->tfd >= 0 ? 3 : 2;

	for (;;) {
		if (poll(p, (nfds_t)np, 1000) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		reap(s, 0);
		for (int i = 1; i < np; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			int fd = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			char peer[96];
			peer_name(fd, i == 1, peer, sizeof peer);
			if (i == 2) {
				int one = 1;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			}
			pthread_mutex_lock(&s->lock);
			int full = s->nconns >= NBD_MAX_CLIENTS;
			pthread_mutex_unlock(&s->lock);
			struct nbd_conn *c = full ? NULL : malloc(sizeof *c);
			if (!c) {
				log_warn("nbd %s: refused: %d clients already connected", peer, NBD_MAX_CLIENTS);
				close(fd);
				continue;
			}
			conn_init(c, s, fd, peer);
			pthread_mutex_lock(&s->lock);
			c->next = s->conns;
			s->conns = c;
			s->nconns++;
			pthread_mutex_unlock(&s->lock);
			if (pthread_create(&c->thr, NULL, conn_main, c)) {
				pthread_mutex_lock(&s->lock);
				s->conns = c->next;
				s->nconns--;
				pthread_mutex_unlock(&s->lock);
				close(fd);
				conn_free(c);
			}
		}
	}
	return NULL;
}

static int listen_unix(const char *path, char *err)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof a.sun_path) {
		snprintf(err, 256, "socket path %s is too long (max %zu bytes); use a shorter --run-dir", path,
			 sizeof a.sun_path - 1);
		return -ENAMETOOLONG;
	}
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0) {
		int e = errno;
		snprintf(err, 256, "cannot listen on %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	chmod(path, 0600);
	return fd;
}

static int listen_tcp(const char *addr, char *err)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1;

	if (parse_sockaddr(addr, &ss, &sl)) {
		snprintf(err, 256, "bad NBD TCP address '%s' (expected numeric IP:PORT)", addr);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 64) < 0) {
		int e = errno;
		snprintf(err, 256, "cannot listen for NBD on %s: %s", addr, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

int nbd_server_new(struct nbd_server **out, struct engine *e, const char *name, int workers)
{
	struct nbd_server *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->e = e;
	snprintf(s->name, sizeof s->name, "%s", name);
	s->ufd = s->tfd = s->wake[0] = s->wake[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->qcond, NULL);
	if (workers > NBD_WORKERS)
		workers = NBD_WORKERS;
	for (int i = 0; i < workers; i++) {
		if (pthread_create(&s->workers[i], NULL, worker_main, s))
			break;
		s->nworkers++;
	}
	if (!s->nworkers) {
		free(s);
		return -EAGAIN;
	}
	*out = s;
	return 0;
}

int nbd_server_start(struct nbd_server **out, struct engine *e, const char *name,
		     const char *unix_path, const char *tcp_addr, char *err)
{
	struct nbd_server *s;
	int rc = nbd_server_new(&s, e, name, NBD_WORKERS);

	err[0] = 0;
	if (rc) {
		snprintf(err, 256, "cannot start NBD workers: %s", strerror(-rc));
		return rc;
	}
	snprintf(s->upath, sizeof s->upath, "%s", unix_path);
	if (pipe2(s->wake, O_CLOEXEC) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = s->ufd = listen_unix(unix_path, err);
	if (rc < 0)
		goto fail;
	if (tcp_addr) {
		rc = s->tfd = listen_tcp(tcp_addr, err);
		if (rc < 0)
			goto fail;
	}
	if ((rc = -pthread_create(&s->acceptor, NULL, acceptor_main, s)))
		goto fail;
	s->has_acceptor = 1;
	*out = s;
	return 0;
fail:
	if (!err[0])
		snprintf(err, 256, "cannot start NBD server: %s", strerror(-rc));
	nbd_server_stop(s);
	return rc;
}

void nbd_server_stop(struct nbd_server *s)
{
	if (!s)
		return;
	if (s->has_acceptor) {
		(void)!write(s->wake[1], "x", 1);
		pthread_join(s->acceptor, NULL);
	}
	if (s->ufd >= 0) {
		close(s->ufd);
		unlink(s->upath);
	}
	if (s->tfd >= 0)
		close(s->tfd);
	/* ask every reader to stop; each answers what it admitted, then closes */
	pthread_mutex_lock(&s->lock);
	for (struct nbd_conn *c = s->conns; c; c = c->next) {
		pthread_mutex_lock(&c->lock);
		if (!c->closed)
			shutdown(c->fd, SHUT_RD);
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_unlock(&s->lock);
	reap(s, 1);
	pthread_mutex_lock(&s->lock);
	s->workers_stop = 1;
	pthread_cond_broadcast(&s->qcond);
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i], NULL);
	if (s->wake[0] >= 0) {
		close(s->wake[0]);
		close(s->wake[1]);
	}
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->qcond);
	free(s);
}

void nbd_server_ring_counts(struct nbd_server *s, uint64_t *reads, uint64_t *redone)
{
	*reads = s ? atomic_load(&s->ring_reads) : 0;
	*redone = s ? atomic_load(&s->ring_redone) : 0;
}

int nbd_server_clients(struct nbd_server *s)
{
	int n = 0;
	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	for (struct nbd_conn *c = s->conns; c; c = c->next)
		n += !c->done;
	pthread_mutex_unlock(&s->lock);
	return n;
}

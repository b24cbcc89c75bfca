/* remote — the client backend; see remote.h. */
#include "remote.h"
#include "config.h"
#include "fsconv.h"
#include "fsproto.h"
#include "hs.h"
#include "locks.h"
#include "log.h"
#include "util.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define NSLOTS 128u          /* requests in flight; the id's low bits name the slot */
#define NQUEUE 64u           /* revocations waiting for the notifier */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct slot {
	int busy, done;
	uint64_t id;
	void *rbuf;              /* the caller's buffer for the reply's trailing bytes */
	size_t rcap;
	struct fsp_reply rep;    /* rep.data points into rbuf */
};

struct inval {
	uint16_t op;
	uint64_t id, ino;
	int64_t off, len;
	char name[FS_NAME_MAX + 1];
	int fd;                  /* the connection it came on: acked only there */
};

struct remote {
	struct hs_conf hs;
	char res[64], secret[256], owner_addr[128], my_addr[128], owner_name[64];
	int wake[2];             /* remote_close wakes the reader's backoff */
	pthread_t reader, notifier;

	pthread_mutex_t lock;    /* guards everything below but send_lock and rx */
	pthread_cond_t cv;       /* slot free, queue changes, connection state */
	int fd;                  /* -1: not connected */
	int closing;
	uint64_t seq;
	struct slot slots[NSLOTS];
	/* slot i done: only its caller wakes (rm->cv would wake the notifier,
	 * the reclaimer's MOUNTED wait and every other caller per reply) */
	pthread_cond_t slot_cv[NSLOTS];
	unsigned nbusy;          /* slots busy: one freed at NSLOTS wakes rm->cv */
	struct inval queue[NQUEUE];
	unsigned qhead, qlen;
	int flush;               /* 1: the notifier is to drop all the kernel caches (a reconnect) */
	int notifying;           /* the notifier is inside a notify callback */
	struct fs_notify notify;
	uint64_t requests;       /* sent to the owner (status) */
	uint64_t revocations;    /* received from the owner (status) */
	uint64_t connections;    /* made to the owner, the first included (status) */
	uint64_t drops;          /* remote_drop calls: one during a dial drops what it makes */
	uint32_t epoch;          /* the owner epoch its replies on this connection carry, 0 none yet */

	uint64_t reclaim_gen;    /* connections that want a reclaim pass (reconnects) */
	int reclaiming;          /* a pass is due or running: lock changes wait (call) */
	uint64_t *lost;          /* open files whose lock was not reclaimed: EIO */
	size_t nlost, caplost;
	uint64_t reclaimed, nlocks_lost; /* locks reclaimed and lost since open (status) */
	/* the mounted nodes (docs/dipolefs.md "Locks", grace period) */
	const struct cfg_resource *r;   /* for the nodes' names */
	uint32_t owner_flags;    /* the connected owner's CH_FS HELLO flags: it answers MOUNTED
				  * (HF_FS_MOUNTED), READDIRPLUS (HF_FS_READDIRPLUS) */
	uint64_t mounted;        /* bit n: node id n has the filesystem mounted; 0 unknown */
	uint64_t mounted_failed; /* the connection (`connections`) a MOUNTED failed on */

	pthread_mutex_t send_lock;
	uint8_t *rx;             /* the reader's frame buffer (reader thread only) */
	/* the locks this node's processes hold, as the owner granted them (a
	 * table of their own, locks.c: its own mutex), to reclaim after a
	 * reconnect; `reclaimer` runs the passes, reclaim_mu keeps them apart */
	struct locks *held;
	pthread_t reclaimer;
	pthread_mutex_t reclaim_mu;
};

/* ------------------------------------------------------------ connection */

/* This node's CH_FS HELLO: it speaks owner epochs (fsproto 4). */
static void hello_fs_client(void *arg, struct pkt_hello *hello)
{
	(void)arg;
	hello->flags |= HF_FS_EPOCH | HF_FS_PARENT_ATTR | HF_FS_DIR_EMPTY;
}

/* A connected owner's HELLO flags: what it answers (MOUNTED, fsproto 3;
 * READDIRPLUS, fsproto 7). */
static int dial(struct remote *rm, uint32_t *owner_flags, char *reason)
{
	int fd = hs_dial_from(rm->owner_addr, rm->my_addr, rm->wake[0]);
	if (fd < 0) {
		snprintf(reason, 256, "cannot reach the owner %s at %s: %s", rm->owner_name, rm->owner_addr,
			 strerror(-fd));
		return fd;
	}
	int ch = CH_FS;
	struct pkt_hello peer, mine;
	int rc = hs_handshake(&rm->hs, fd, &ch, rm->owner_name, &peer, &mine, reason);
	if (rc) {
		close(fd);
		return rc;
	}
	*owner_flags = peer.flags;
	return fd;
}

/* The connection fd broke: fail every request in flight. Under send_lock
 * and lock. */
static void drop_locked(struct remote *rm, int fd)
{
	if (rm->fd != fd)
		return;
	rm->fd = -1;
	shutdown(fd, SHUT_RDWR);
	close(fd);
	for (unsigned i = 0; i < NSLOTS; i++) {
		struct slot *s = &rm->slots[i];
		if (s->busy && !s->done) {
			s->rep.result = -ENOTCONN;
			s->done = 1;
			pthread_cond_signal(&rm->slot_cv[i]);
		}
	}
	pthread_cond_broadcast(&rm->cv);
}

/* One frame from fd into rm->rx: 0, or -errno / -EPROTO with why. */
static int recv_frame(struct remote *rm, int fd, struct fsp_hdr *h, char *why)
{
	int rc = read_full(fd, rm->rx, FSP_HDR);
	if (rc) {
		snprintf(why, 256, "%s", rc == -EPIPE ? "connection closed by the owner" : strerror(-rc));
		return rc;
	}
	if ((rc = fsp_decode_hdr(rm->rx, h, why, 256)))
		return rc;
	if ((rc = read_full(fd, rm->rx + FSP_HDR, h->len)))
		snprintf(why, 256, "truncated frame: %s", strerror(-rc));
	return rc;
}

static int on_reply(struct remote *rm, int fd, const struct fsp_hdr *h, char *why)
{
	struct fsp_reply rep;
	int rc = fsp_decode_reply(h, rm->rx + FSP_HDR, &rep, why, 256);
	if (rc)
		return rc;
	pthread_mutex_lock(&rm->lock);
	struct slot *s = &rm->slots[h->id % NSLOTS];
	if (rm->fd != fd || !s->busy || s->done || s->id != h->id) {
		pthread_mutex_unlock(&rm->lock);
		snprintf(why, 256, "%s reply for request %llu, which is not in flight", fsp_op_name(h->op),
			 (unsigned long long)h->id);
		return -EPROTO;
	}
	if (rep.epoch && rm->epoch && rep.epoch != rm->epoch) {
		pthread_mutex_unlock(&rm->lock);
		snprintf(why, 256, "%s reply with owner epoch %08x on a connection to epoch %08x", fsp_op_name(h->op),
			 rep.epoch, rm->epoch);
		return -EPROTO;
	}
	if (rep.epoch)
		rm->epoch = rep.epoch; /* every later request carries it */
	if (rep.dlen > s->rcap) {
		pthread_mutex_unlock(&rm->lock);
		snprintf(why, 256, "%s reply: %u bytes for a %zu-byte buffer", fsp_op_name(h->op), rep.dlen, s->rcap);
		return -EPROTO;
	}
	if (rep.dlen)
		memcpy(s->rbuf, rep.data, rep.dlen);
	rep.data = s->rbuf;
	s->rep = rep;
	s->done = 1;
	pthread_mutex_unlock(&rm->lock);
	/* after unlocking, so the caller does not wake into a held lock; a
	 * late signal to a reused slot is a spurious wake-up, which its
	 * caller's loop absorbs */
	pthread_cond_signal(&rm->slot_cv[h->id % NSLOTS]);
	return 0;
}

static int on_inval(struct remote *rm, int fd, const struct fsp_hdr *h, char *why)
{
	struct fsp_req q;
	int rc = fsp_decode_req(h, rm->rx + FSP_HDR, &q, why, 256);
	if (rc)
		return rc;
	if (q.op != FSP_INVAL_INODE && q.op != FSP_INVAL_ENTRY) {
		snprintf(why, 256, "%s: a client request from the owner", fsp_op_name(q.op));
		return -EPROTO;
	}
	pthread_mutex_lock(&rm->lock);
	while (rm->qlen == NQUEUE && !rm->closing)
		pthread_cond_wait(&rm->cv, &rm->lock);
	struct inval *iv = &rm->queue[(rm->qhead + rm->qlen++) % NQUEUE];
	rm->revocations++;
	*iv = (struct inval){ .op = q.op, .id = h->id, .ino = q.ino, .off = q.inval_off, .len = q.inval_len, .fd = fd };
	if (q.name_len)
		memcpy(iv->name, q.name, q.name_len);
	iv->name[q.name_len] = 0;
	pthread_cond_broadcast(&rm->cv);
	pthread_mutex_unlock(&rm->lock);
	return 0;
}

/* Sleep ms unless remote_close wakes us: 1 when woken. */
static int nap(struct remote *rm, int ms)
{
	struct pollfd pf = { rm->wake[0], POLLIN, 0 };
	return poll(&pf, 1, ms) > 0;
}

static void *reader_main(void *arg)
{
	struct remote *rm = arg;
	int backoff = BACKOFF_MIN_MS;
	char why[256];
	for (;;) {
		pthread_mutex_lock(&rm->lock);
		int fd = rm->fd, closing = rm->closing;
		pthread_mutex_unlock(&rm->lock);
		if (closing)
			break;
		if (fd < 0) {
			if (nap(rm, backoff))
				break;
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
			uint32_t owner_flags = 0;
			pthread_mutex_lock(&rm->lock);
			uint64_t drops = rm->drops;
			pthread_mutex_unlock(&rm->lock);
			fd = dial(rm, &owner_flags, why);
			if (fd < 0) {
				log_warn("%s: fs: %s; retrying", rm->res, why);
				continue;
			}
			pthread_mutex_lock(&rm->lock);
			/* Revocations sent while we were away are lost: before any
			 * call is answered through this connection (calls fail with
			 * ENOTCONN until rm->fd is set), the notifier drops all
			 * the kernel caches. It, not this thread, because dropping
			 * a name takes its directory's lock; no call holding one
			 * waits for us meanwhile. The owner's revocations on the
			 * new connection wait unread in the socket. */
			if (rm->notify.inval_all) {
				rm->flush = 1;
				pthread_cond_broadcast(&rm->cv);
				while (rm->flush && !rm->closing)
					pthread_cond_wait(&rm->cv, &rm->lock);
			}
			if (rm->closing) {
				pthread_mutex_unlock(&rm->lock);
				close(fd);
				break;
			}
			/* the owner was declared lost while this dial ran (its
			 * replication link went down): this connection may be to
			 * a node that is gone, and nothing would drop it again —
			 * callers, `umount` and `primary` by hand hung on it until
			 * the owner returned (fschecker, seed 952692660). Dial
			 * again: a gone owner does not answer, a live one does */
			if (rm->drops != drops) {
				pthread_mutex_unlock(&rm->lock);
				close(fd);
				log_warn("%s: fs: a connection to the owner %s made as it was being dropped is closed; "
					 "retrying", rm->res, rm->owner_name);
				continue;
			}
			rm->fd = fd;
			rm->epoch = 0; /* learned from this connection's first reply */
			rm->owner_flags = owner_flags;
			rm->connections++;
			rm->reclaim_gen++; /* the owner dropped our locks, or never had them */
			rm->reclaiming = 1;
			pthread_cond_broadcast(&rm->cv);
			pthread_mutex_unlock(&rm->lock);
			log_info("%s: fs: connected to the owner %s", rm->res, rm->owner_name);
			backoff = BACKOFF_MIN_MS;
		}
		struct fsp_hdr h;
		int rc = recv_frame(rm, fd, &h, why);
		if (!rc)
			rc = h.flags & FSPF_REPLY ? on_reply(rm, fd, &h, why) : on_inval(rm, fd, &h, why);
		if (rc) {
			/* send_lock first: no sender is inside a write on fd when it closes */
			pthread_mutex_lock(&rm->send_lock);
			pthread_mutex_lock(&rm->lock);
			if (!rm->closing && rm->fd == fd)
				log_warn("%s: fs: connection to the owner %s lost: %s", rm->res, rm->owner_name, why);
			drop_locked(rm, fd);
			pthread_mutex_unlock(&rm->lock);
			pthread_mutex_unlock(&rm->send_lock);
		}
	}
	return NULL;
}

void remote_drop(struct remote *rm, const char *why)
{
	pthread_mutex_lock(&rm->lock);
	rm->drops++;
	if (rm->fd >= 0) {
		log_warn("%s: fs: dropping the connection to the owner %s: %s", rm->res, rm->owner_name, why);
		/* the fd stays open (closing needs send_lock): the reader sees the
		 * shutdown, fails what is in flight and closes it */
		shutdown(rm->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&rm->lock);
}

static void *notifier_main(void *arg)
{
	struct remote *rm = arg;
	uint8_t head[FSP_HDR + 16];
	pthread_mutex_lock(&rm->lock);
	for (;;) {
		while (!rm->qlen && !rm->flush && !rm->closing)
			pthread_cond_wait(&rm->cv, &rm->lock);
		if (rm->closing)
			break;
		if (rm->flush && !rm->qlen) { /* after what the old connection queued */
			struct fs_notify n = rm->notify;
			rm->notifying = 1;
			pthread_mutex_unlock(&rm->lock);
			if (n.inval_all)
				n.inval_all(n.arg);
			pthread_mutex_lock(&rm->lock);
			rm->notifying = 0;
			rm->flush = 0;
			pthread_cond_broadcast(&rm->cv);
			continue;
		}
		struct inval iv = rm->queue[rm->qhead];
		rm->qhead = (rm->qhead + 1) % NQUEUE;
		rm->qlen--;
		struct fs_notify n = rm->notify;
		rm->notifying = 1;
		pthread_cond_broadcast(&rm->cv);
		pthread_mutex_unlock(&rm->lock);
		if (iv.op == FSP_INVAL_INODE && n.inval_inode)
			n.inval_inode(n.arg, iv.ino, iv.off, iv.len);
		else if (iv.op == FSP_INVAL_ENTRY && n.inval_entry)
			n.inval_entry(n.arg, iv.ino, iv.name);
		pthread_mutex_lock(&rm->lock);
		rm->notifying = 0;
		pthread_cond_broadcast(&rm->cv);
		pthread_mutex_unlock(&rm->lock);
		int hl = fsp_encode_reply(head, sizeof head, iv.id, &(struct fsp_reply){ .op = iv.op });
		/* the fd stays open while send_lock is held and it is rm->fd */
		pthread_mutex_lock(&rm->send_lock);
		pthread_mutex_lock(&rm->lock);
		int same = rm->fd == iv.fd;
		pthread_mutex_unlock(&rm->lock);
		if (same && hl > 0 && fsconv_send(iv.fd, head, (size_t)hl))
			shutdown(iv.fd, SHUT_RDWR);
		pthread_mutex_unlock(&rm->send_lock);
		pthread_mutex_lock(&rm->lock);
	}
	pthread_mutex_unlock(&rm->lock);
	return NULL;
}

/* ------------------------------------------------------------ requests */

/* A request that changes the owner's locks (other than a reclaim): it
 * waits for a reclaim pass, which must not re-take what it drops nor race
 * what it takes. */
static int changes_locks(const struct fsp_req *q)
{
	return (q->op == FSP_SETLK && !(q->flags & FSP_SETLK_RECLAIM)) || q->op == FSP_FLUSH ||
	       q->op == FSP_RELEASE;
}

/* Send q and wait for its reply into *rep (trailing bytes into rbuf[rcap]).
 * Returns the reply's result: >= 0 or -errno, -ENOTCONN without owner. */
static int64_t call(struct remote *rm, struct fsp_req *q, void *rbuf, size_t rcap, struct fsp_reply *rep)
{
	uint8_t head[FSP_HDR + FSP_HEAD_MAX];
	pthread_mutex_lock(&rm->lock);
	struct slot *s = NULL;
	for (;;) {
		if (rm->fd < 0 || rm->closing) {
			pthread_mutex_unlock(&rm->lock);
			return -ENOTCONN;
		}
		if (rm->reclaiming && changes_locks(q)) {
			pthread_cond_wait(&rm->cv, &rm->lock);
			continue;
		}
		/* ids grow, so a slot's reuse never matches a late reply */
		for (unsigned i = 0; i < NSLOTS && !s; i++) {
			uint64_t id = ++rm->seq;
			if (!rm->slots[id % NSLOTS].busy) {
				s = &rm->slots[id % NSLOTS];
				*s = (struct slot){ .busy = 1, .id = id, .rbuf = rbuf, .rcap = rbuf ? rcap : 0 };
				rm->nbusy++;
			}
		}
		if (s)
			break;
		pthread_cond_wait(&rm->cv, &rm->lock);
	}
	int fd = rm->fd;
	uint64_t id = s->id, conn = rm->connections;
	q->epoch = rm->epoch;
	if (q->op != FSP_MOUNTED) /* the mount's calls only (status) */
		rm->requests++;
	/* sending under `lock` would stall the reader; the fd cannot be
	 * closed (and its number reused) while send_lock is held and it is
	 * still rm->fd: the reader closes it holding both. Still the same
	 * connection means the same count of connections too (a new one may
	 * get the old number) and this request not failed meanwhile: one the
	 * caller is told failed (ENOTCONN) never goes out later, on a new
	 * connection, with the old owner's epoch */
	pthread_mutex_unlock(&rm->lock);
	int hl = fsp_encode_req(head, sizeof head, id, q);
	int rc = hl < 0 ? hl : 0;
	if (!rc) {
		pthread_mutex_lock(&rm->send_lock);
		pthread_mutex_lock(&rm->lock);
		int same = rm->fd == fd && rm->connections == conn && !s->done;
		pthread_mutex_unlock(&rm->lock);
		struct iovec iov[2] = { { head, (size_t)hl }, { (void *)q->data, q->dlen } };
		size_t trailing = get_be32(head + 8) - ((size_t)hl - FSP_HDR);
		rc = same ? sendv_full(fd, iov, trailing ? 2 : 1) : -ENOTCONN;
		pthread_mutex_unlock(&rm->send_lock);
		if (rc && same)
			shutdown(fd, SHUT_RDWR); /* the reader sees it and fails what is in flight */
	}
	pthread_mutex_lock(&rm->lock);
	if (hl < 0) {
		s->rep.result = hl == -EMSGSIZE ? -ENAMETOOLONG : -EINVAL;
		s->done = 1;
	}
	while (!s->done)
		pthread_cond_wait(&rm->slot_cv[s - rm->slots], &rm->lock);
	*rep = s->rep;
	if (rep->result == -ESTALE && rep->epoch && rep->epoch != q->epoch)
		log_warn("%s: fs: the owner %s refused %s: made for owner epoch %08x, the owner's is %08x", rm->res,
			 rm->owner_name, fsp_op_name(q->op), q->epoch, rep->epoch);
	s->busy = 0;
	if (rm->nbusy-- == NSLOTS)
		pthread_cond_broadcast(&rm->cv);
	pthread_mutex_unlock(&rm->lock);
	return rep->result;
}

/* A request without a reply (FORGET, INTERRUPT): best effort. */
static void post(struct remote *rm, struct fsp_req *q)
{
	uint8_t head[FSP_HDR + 256];
	pthread_mutex_lock(&rm->send_lock);
	pthread_mutex_lock(&rm->lock);
	int fd = rm->fd;
	q->epoch = rm->epoch;
	pthread_mutex_unlock(&rm->lock);
	int hl = fsp_encode_req(head, sizeof head, 0, q);
	if (hl < 0) {
		pthread_mutex_unlock(&rm->send_lock);
		return;
	}
	if (fd >= 0 && fsconv_send(fd, head, (size_t)hl))
		shutdown(fd, SHUT_RDWR);
	pthread_mutex_unlock(&rm->send_lock);
}

/* ------------------------------------------------------------ held locks */

/* 1 when fh lost a lock at a reclaim: its next uses fail with EIO, as
 * NFSv4's do, until it is released. */
static int fh_lost(struct remote *rm, uint64_t fh)
{
	int lost = 0;
	pthread_mutex_lock(&rm->lock);
	for (size_t i = 0; i < rm->nlost && !lost; i++)
		lost = rm->lost[i] == fh;
	pthread_mutex_unlock(&rm->lock);
	return lost;
}

static void fh_set_lost(struct remote *rm, uint64_t fh)
{
	pthread_mutex_lock(&rm->lock);
	size_t i = 0;
	while (i < rm->nlost && rm->lost[i] != fh)
		i++;
	if (i == rm->nlost && rm->nlost == rm->caplost) {
		size_t nc = rm->caplost ? rm->caplost * 2 : 8;
		uint64_t *g = realloc(rm->lost, nc * sizeof *g);
		if (g) {
			rm->lost = g;
			rm->caplost = nc;
		}
	}
	if (i == rm->nlost && rm->nlost < rm->caplost) /* without memory: not reported (logged) */
		rm->lost[rm->nlost++] = fh;
	rm->nlocks_lost++;
	pthread_mutex_unlock(&rm->lock);
}

static void fh_forget_lost(struct remote *rm, uint64_t fh)
{
	pthread_mutex_lock(&rm->lock);
	for (size_t i = 0; i < rm->nlost; i++)
		if (rm->lost[i] == fh)
			rm->lost[i--] = rm->lost[--rm->nlost];
	pthread_mutex_unlock(&rm->lock);
}

/* The owner answered rc to lk through fh: keep `held` as the owner has it.
 * An unlock applies whatever the answer (without a connection the owner
 * dropped the lock already); a refused flock lost its old lock (a
 * conversion drops it first, locks.h). */
static void held_note(struct remote *rm, uint64_t ino, uint64_t fh, const struct fs_lock *lk, int rc)
{
	struct fs_lock u = *lk;
	if (rc && lk->type != F_UNLCK && !lk->flock)
		return;
	if (rc && lk->type != F_UNLCK)
		u.type = F_UNLCK;
	if (locks_setlk(rm->held, ino, fh, &u, 0, 0, 0))
		log_warn("%s: fs: cannot record a lock on inode %llu: it would not be reclaimed", rm->res,
			 (unsigned long long)ino);
}

static void reclaim_lost(struct remote *rm, const struct locks_held *h, int rc)
{
	log_warn("%s: fs: the owner %s refused to give back the %s %s lock of process %u on inode %llu "
		 "(bytes %llu-%llu) held before the reconnect: %s; its next use of that file fails with EIO",
		 rm->res, rm->owner_name, h->lk.flock ? "flock" : "byte-range", h->lk.type == F_WRLCK ? "write" : "read",
		 h->lk.pid, (unsigned long long)h->ino, (unsigned long long)h->lk.start,
		 (unsigned long long)h->lk.end, strerror(-rc));
	struct fs_lock u = h->lk;
	u.type = F_UNLCK;
	(void)locks_setlk(rm->held, h->ino, h->fh, &u, 0, 0, 0);
	fh_set_lost(rm, h->fh);
}

int remote_reclaim_to(struct remote *rm, const struct fs_ops *ops, void *ctx)
{
	struct locks_held *v = NULL;
	size_t n = 0;
	pthread_mutex_lock(&rm->reclaim_mu);
	int rc = locks_snapshot(rm->held, &v, &n), lost = 0;
	for (size_t i = 0; !rc && i < n; i++) {
		struct fs_caller c = { .pid = v[i].lk.pid, .node_id = v[i].lk.node_id };
		int r = ops->setlk(ctx, &c, v[i].ino, v[i].fh, &v[i].lk, FS_SETLK_RECLAIM, 0);
		if (r == -ENOTCONN) {
			rc = r; /* the next connection's pass tries again */
		} else if (r) {
			reclaim_lost(rm, &v[i], r);
			lost++;
		}
	}
	free(v);
	pthread_mutex_lock(&rm->lock);
	rm->reclaimed += rc ? 0 : n - (size_t)lost;
	pthread_mutex_unlock(&rm->lock);
	if (!rc && n)
		log_info("%s: fs: %zu locks reclaimed, %d lost", rm->res, n - (size_t)lost, lost);
	pthread_mutex_unlock(&rm->reclaim_mu);
	return rc ? rc : lost;
}

static int reclaim_done(struct remote *rm)
{
	struct fsp_req q = { .op = FSP_RECLAIM_DONE };
	struct fsp_reply rep;
	q.caller.node_id = rm->hs.my_id;
	return (int)call(rm, &q, NULL, 0, &rep);
}

int remote_reclaim_done(struct remote *rm)
{
	pthread_mutex_lock(&rm->lock);
	int offered = !!(rm->owner_flags & HF_FS_MOUNTED);
	pthread_mutex_unlock(&rm->lock);
	return offered ? reclaim_done(rm) : 0;
}

int remote_reclaim(struct remote *rm)
{
	pthread_mutex_lock(&rm->lock);
	rm->reclaiming = 1;
	uint64_t gen = rm->reclaim_gen;
	pthread_mutex_unlock(&rm->lock);
	int rc = remote_reclaim_to(rm, &remote_ops, rm);
	if (rc >= 0) {
		int r = reclaim_done(rm);
		if (r)
			rc = r;
	}
	pthread_mutex_lock(&rm->lock);
	if (rm->reclaim_gen == gen) /* else a reconnect since: its pass is due */
		rm->reclaiming = 0;
	pthread_cond_broadcast(&rm->cv);
	pthread_mutex_unlock(&rm->lock);
	return rc;
}

/* Log the mounted nodes by name. */
static void mounted_log(struct remote *rm, uint64_t set)
{
	char names[256];
	cfg_host_names(rm->r, set, names, sizeof names);
	log_info("%s: fs: the owner %s says the nodes with the filesystem mounted:%s", rm->res, rm->owner_name,
		 names);
}

/* Under lock: a MOUNTED question is due (the owner answers them, and none
 * failed on this connection). */
static int mounted_due(const struct remote *rm)
{
	return rm->fd >= 0 && (rm->owner_flags & HF_FS_MOUNTED) && rm->mounted_failed != rm->connections;
}

/* Ask the owner for the mounted set; it answers once the set differs from
 * ours (or the connection ends). Called with lock held; drops it meanwhile. */
static void mounted_ask_locked(struct remote *rm)
{
	struct fsp_req q = { .op = FSP_MOUNTED, .u64 = rm->mounted };
	struct fsp_reply rep;
	uint64_t on = rm->connections;
	q.caller.node_id = rm->hs.my_id;
	pthread_mutex_unlock(&rm->lock);
	int64_t set = call(rm, &q, NULL, 0, &rep);
	if (set > 0)
		mounted_log(rm, (uint64_t)set);
	pthread_mutex_lock(&rm->lock);
	if (set > 0)
		rm->mounted = (uint64_t)set;
	else /* not again on this connection: the next one asks */
		rm->mounted_failed = on;
}

/* A reclaim pass after each reconnect (reader_main asks); between them,
 * one MOUNTED question at a time, each answered when the set changes (a
 * reconnect's pass waits for the question in flight to fail). */
static void *reclaimer_main(void *arg)
{
	struct remote *rm = arg;
	pthread_mutex_lock(&rm->lock);
	uint64_t done = rm->reclaim_gen;
	for (;;) {
		while (done == rm->reclaim_gen && !rm->closing && !mounted_due(rm))
			pthread_cond_wait(&rm->cv, &rm->lock);
		if (rm->closing)
			break;
		if (done == rm->reclaim_gen) {
			mounted_ask_locked(rm);
			continue;
		}
		done = rm->reclaim_gen;
		pthread_mutex_unlock(&rm->lock);
		(void)remote_reclaim(rm);
		pthread_mutex_lock(&rm->lock);
	}
	pthread_mutex_unlock(&rm->lock);
	return NULL;
}

uint64_t remote_mounted(struct remote *rm)
{
	pthread_mutex_lock(&rm->lock);
	uint64_t set = rm->mounted;
	pthread_mutex_unlock(&rm->lock);
	return set;
}

#define RM ((struct remote *)ctx)
#define REQ(o) struct fsp_req q = { .op = (o) }; struct fsp_reply rep; fsconv_caller_out(&q.caller, c)
/* an open file that lost a lock at a reclaim (fh_lost) */
#define LOST_EIO(fh) do { if (fh_lost(RM, (fh))) return -EIO; } while (0)
#define NAME(f, s) do { q.f = (s); q.f##_len = (uint16_t)strnlen((s), FS_NAME_MAX + 1); \
	if (q.f##_len > FS_NAME_MAX) return -ENAMETOOLONG; } while (0)

/* A new node's mode, and the caller's umask for an owner that applies it
 * (fsproto 9, HF_FS_UMASK: not under a default ACL, acl(5)); an older
 * owner gets the mode masked here, as the caller's kernel used to. */
static void mode_out(struct remote *rm, struct fsp_req *q, mode_t mode, const struct fs_caller *c)
{
	q->has_umask = !!(rm->owner_flags & HF_FS_UMASK);
	q->umask = c->umask & 0777;
	q->mode = q->has_umask ? mode : mode & ~q->umask;
}

static int r_lookup(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, struct fs_entry *out)
{
	REQ(FSP_LOOKUP);
	q.ino = parent;
	NAME(name, name);
	int rc = (int)call(RM, &q, NULL, 0, &rep);
	if (!rc)
		fsconv_entry_in(out, &rep.entry);
	return rc;
}

static void r_forget(void *ctx, uint64_t ino, uint64_t nlookup)
{
	struct fsp_req q = { .op = FSP_FORGET, .ino = ino, .len = nlookup };
	post(RM, &q);
}

static int r_getattr(void *ctx, const struct fs_caller *c, uint64_t ino, struct stat *out)
{
	REQ(FSP_GETATTR);
	q.ino = ino;
	int rc = (int)call(RM, &q, NULL, 0, &rep);
	if (!rc)
		*out = rep.attr;
	return rc;
}

static int r_setattr(void *ctx, const struct fs_caller *c, uint64_t ino, const struct stat *attr, int mask,
		     uint64_t fh, struct stat *out)
{
	REQ(FSP_SETATTR);
	q.ino = ino;
	q.attr = *attr;
	q.flags = (uint32_t)mask;
	q.fh = fh;
	int rc = (int)call(RM, &q, NULL, 0, &rep);
	if (!rc)
		*out = rep.attr;
	return rc;
}

static int r_readlink(void *ctx, const struct fs_caller *c, uint64_t ino, char *buf, size_t len)
{
	REQ(FSP_READLINK);
	q.ino = ino;
	q.len = len > FS_PATH_MAX ? FS_PATH_MAX : len;
	if (!len)
		return -EINVAL;
	int64_t n = call(RM, &q, buf, len - 1, &rep);
	if (n >= 0)
		buf[n] = 0;
	return n < 0 ? (int)n : 0;
}

/* An entry reply into out, with the parent's attributes from a version 6
 * owner (HF_FS_PARENT_ATTR), and a new directory's emptiness from a
 * version 8 one */
static void entry_in(struct fs_entry *out, const struct fsp_reply *rep)
{
	fsconv_entry_in(out, &rep->entry);
	if (rep->has_pattr)
		out->parent_attr = rep->pattr;
	out->dir_empty = rep->has_empty && rep->new_empty; /* a version 8 owner (HF_FS_DIR_EMPTY) */
}

static int entry_call(void *ctx, struct fsp_req *q, struct fs_entry *out)
{
	struct fsp_reply rep;
	int rc = (int)call(RM, q, NULL, 0, &rep);
	if (!rc)
		entry_in(out, &rep);
	return rc;
}

static int r_mknod(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode, dev_t rdev,
		   struct fs_entry *out)
{
	REQ(FSP_MKNOD);
	(void)rep;
	q.ino = parent;
	NAME(name, name);
	mode_out(RM, &q, mode, c);
	q.u64 = rdev;
	return entry_call(ctx, &q, out);
}

static int r_mkdir(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode,
		   struct fs_entry *out)
{
	REQ(FSP_MKDIR);
	(void)rep;
	q.ino = parent;
	NAME(name, name);
	mode_out(RM, &q, mode, c);
	return entry_call(ctx, &q, out);
}

static int name_call(void *ctx, const struct fs_caller *c, uint16_t op, uint64_t parent, const char *name,
		     struct fs_removed *gone)
{
	if (gone)
		memset(gone, 0, sizeof *gone); /* an earlier try's (fsswitch) is not this one's */
	REQ(op);
	q.ino = parent;
	NAME(name, name);
	int rc = (int)call(RM, &q, NULL, 0, &rep);
	if (!rc && rep.has_pattr && gone) { /* a version 6 owner (HF_FS_PARENT_ATTR) */
		gone->dir_attr = rep.pattr;
		gone->ino = rep.removed_ino;
	}
	return rc;
}

static int r_unlink(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, struct fs_removed *gone)
{
	return name_call(ctx, c, FSP_UNLINK, parent, name, gone);
}

static int r_rmdir(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, struct fs_removed *gone)
{
	return name_call(ctx, c, FSP_RMDIR, parent, name, gone);
}

static int r_symlink(void *ctx, const struct fs_caller *c, const char *target, uint64_t parent, const char *name,
		     struct fs_entry *out)
{
	REQ(FSP_SYMLINK);
	(void)rep;
	q.ino = parent;
	NAME(name, name);
	q.data = (const uint8_t *)target;
	q.dlen = (uint32_t)strnlen(target, FS_PATH_MAX);
	if (q.dlen >= FS_PATH_MAX)
		return -ENAMETOOLONG;
	return entry_call(ctx, &q, out);
}

static int r_rename(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, uint64_t newparent,
		    const char *newname, unsigned flags)
{
	REQ(FSP_RENAME);
	q.ino = parent;
	NAME(name, name);
	q.newparent = newparent;
	NAME(name2, newname);
	q.flags = flags;
	return (int)call(RM, &q, NULL, 0, &rep);
}

static int r_link(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t newparent, const char *newname,
		  struct fs_entry *out)
{
	REQ(FSP_LINK);
	(void)rep;
	q.ino = ino;
	q.newparent = newparent;
	NAME(name, newname);
	return entry_call(ctx, &q, out);
}

static int r_open(void *ctx, const struct fs_caller *c, uint64_t ino, int flags, uint64_t *fh)
{
	REQ(FSP_OPEN);
	q.ino = ino;
	q.flags = (uint32_t)flags;
	int rc = (int)call(RM, &q, NULL, 0, &rep);
	if (!rc)
		*fh = rep.fh;
	return rc;
}

static int r_create(void *ctx, const struct fs_caller *c, uint64_t parent, const char *name, mode_t mode, int flags,
		    struct fs_entry *out, uint64_t *fh)
{
	REQ(FSP_CREATE);
	q.ino = parent;
	NAME(name, name);
	mode_out(RM, &q, mode, c);
	q.flags = (uint32_t)flags;
	int rc = (int)call(RM, &q, NULL, 0, &rep);
	if (!rc) {
		entry_in(out, &rep);
		*fh = rep.fh;
	}
	return rc;
}

static ssize_t r_read(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, void *buf, size_t len,
		      uint64_t off)
{
	LOST_EIO(fh);
	REQ(FSP_READ);
	q.ino = ino;
	q.fh = fh;
	q.len = len > FS_IO_MAX ? FS_IO_MAX : len;
	q.off = off;
	return (ssize_t)call(RM, &q, buf, q.len, &rep);
}

static ssize_t r_write(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, const void *buf, size_t len,
		       uint64_t off)
{
	LOST_EIO(fh);
	REQ(FSP_WRITE);
	q.ino = ino;
	q.fh = fh;
	q.off = off;
	q.data = buf;
	q.dlen = (uint32_t)(len > FS_IO_MAX ? FS_IO_MAX : len);
	int64_t n = call(RM, &q, NULL, 0, &rep);
	/* always-on: the owner cannot have written more than it was sent */
	if (n > (int64_t)q.dlen)
		return -EIO;
	return (ssize_t)n; /* attributes a version 5-8 owner sent (rep.has_attr): not kept */
}

static int r_flush(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, uint64_t lock_owner)
{
	REQ(FSP_FLUSH);
	q.ino = ino;
	q.fh = fh;
	q.u64 = lock_owner;
	/* The owner drops the process's locks at a flush, and that is all it
	 * does there but close a dup of its descriptor (what close(2) reports:
	 * always 0 on ext4 and XFS, which have no ->flush). `held` has every
	 * lock the owner granted this node: a process that holds none of
	 * ino's (most closes) costs no round trip. */
	if (!locks_release_owner(RM->held, ino, c->node_id, lock_owner))
		return 0;
	return (int)call(RM, &q, NULL, 0, &rep);
}

static int release_call(void *ctx, uint16_t op, uint64_t ino, uint64_t fh)
{
	struct fsp_req q = { .op = op, .ino = ino, .fh = fh };
	struct fsp_reply rep;
	return (int)call(RM, &q, NULL, 0, &rep);
}

static int r_release(void *ctx, uint64_t ino, uint64_t fh)
{
	(void)locks_release_file(RM->held, ino, RM->hs.my_id, fh);
	fh_forget_lost(RM, fh);
	return release_call(ctx, FSP_RELEASE, ino, fh);
}

static int r_releasedir(void *ctx, uint64_t ino, uint64_t fh)
{
	return release_call(ctx, FSP_RELEASEDIR, ino, fh);
}

static int sync_call(void *ctx, const struct fs_caller *c, uint16_t op, uint64_t ino, uint64_t fh, int datasync)
{
	REQ(op);
	q.ino = ino;
	q.fh = fh;
	q.flags = !!datasync;
	return (int)call(RM, &q, NULL, 0, &rep);
}

static int r_fsync(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int datasync)
{
	LOST_EIO(fh);
	return sync_call(ctx, c, FSP_FSYNC, ino, fh, datasync);
}

static int r_fsyncdir(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int datasync)
{
	return sync_call(ctx, c, FSP_FSYNCDIR, ino, fh, datasync);
}

static int r_opendir(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t *fh)
{
	REQ(FSP_OPENDIR);
	q.ino = ino;
	int rc = (int)call(RM, &q, NULL, 0, &rep);
	if (!rc)
		*fh = rep.fh;
	return rc;
}

/* One batch per call: entries the filler does not take are fetched again
 * by the next call, from the `next` offset of the last one taken. */
#define DIRBATCH 32768u
static int r_readdir(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, uint64_t off, fs_dirfill fill,
		     void *arg)
{
	REQ(FSP_READDIR);
	q.ino = ino;
	q.fh = fh;
	q.off = off;
	q.len = DIRBATCH;
	uint8_t *batch = malloc(DIRBATCH); /* readdir is not the data path */
	if (!batch)
		return -ENOMEM;
	int rc = (int)call(RM, &q, batch, DIRBATCH, &rep);
	size_t pos = 0;
	struct fsp_dirent de;
	char name[FS_NAME_MAX + 1];
	while (!rc && fsp_dirent_next(&rep, &pos, &de)) {
		memcpy(name, de.name, de.name_len);
		name[de.name_len] = 0;
		if (fill(arg, name, de.ino, de.type, de.next))
			break;
	}
	free(batch);
	return rc;
}

/* READDIRPLUS (fsproto 7): a batch of names with their lookups, no more
 * than the kernel's room takes; an entry the filler does not take all the
 * same (an owner that counted room differently) is forgotten at once. */
static int r_readdirplus(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, uint64_t off,
			 size_t room, fs_dirfill_plus fill, void *arg)
{
	pthread_mutex_lock(&RM->lock);
	int offered = !!(RM->owner_flags & HF_FS_READDIRPLUS);
	pthread_mutex_unlock(&RM->lock);
	if (!offered)
		return -ENOSYS;
	REQ(FSP_READDIRPLUS);
	q.ino = ino;
	q.fh = fh;
	q.off = off;
	q.len = room < FSP_DIRBATCH_MAX ? room : FSP_DIRBATCH_MAX;
	if (!q.len)
		return -EINVAL;
	uint8_t *batch = malloc(q.len);
	if (!batch)
		return -ENOMEM;
	int rc = (int)call(RM, &q, batch, q.len, &rep), full = 0;
	size_t pos = 0;
	struct fsp_dirent de;
	char name[FS_NAME_MAX + 1];
	while (!rc && fsp_dirent_next(&rep, &pos, &de)) {
		struct fs_entry e = { .attr = { .st_ino = de.ino, .st_mode = de.type } };
		if (de.entry.ino)
			fsconv_entry_in(&e, &de.entry);
		memcpy(name, de.name, de.name_len);
		name[de.name_len] = 0;
		if (!full)
			full = fill(arg, name, &e, de.next);
		if (full && e.ino)
			r_forget(ctx, e.ino, 1);
	}
	free(batch);
	return rc;
}

static int r_statfs(void *ctx, const struct fs_caller *c, uint64_t ino, struct statvfs *out)
{
	REQ(FSP_STATFS);
	q.ino = ino;
	int rc = (int)call(RM, &q, NULL, 0, &rep);
	if (!rc)
		*out = rep.st;
	return rc;
}

static int r_setxattr(void *ctx, const struct fs_caller *c, uint64_t ino, const char *name, const void *value,
		      size_t len, int flags)
{
	REQ(FSP_SETXATTR);
	q.ino = ino;
	NAME(name, name);
	if (len > FS_XATTR_MAX)
		return -E2BIG;
	q.data = value;
	q.dlen = (uint32_t)len;
	q.flags = (uint32_t)flags;
	return (int)call(RM, &q, NULL, 0, &rep);
}

static ssize_t r_getxattr(void *ctx, const struct fs_caller *c, uint64_t ino, const char *name, void *buf, size_t len)
{
	REQ(FSP_GETXATTR);
	q.ino = ino;
	NAME(name, name);
	q.len = len > FS_XATTR_MAX ? FS_XATTR_MAX : len;
	return (ssize_t)call(RM, &q, buf, q.len, &rep);
}

static ssize_t r_listxattr(void *ctx, const struct fs_caller *c, uint64_t ino, char *buf, size_t len)
{
	REQ(FSP_LISTXATTR);
	q.ino = ino;
	q.len = len > FS_XATTR_MAX ? FS_XATTR_MAX : len;
	return (ssize_t)call(RM, &q, buf, q.len, &rep);
}

static int r_removexattr(void *ctx, const struct fs_caller *c, uint64_t ino, const char *name)
{
	return name_call(ctx, c, FSP_REMOVEXATTR, ino, name, NULL);
}

static int r_fallocate(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int mode, uint64_t off,
		       uint64_t len)
{
	LOST_EIO(fh);
	REQ(FSP_FALLOCATE);
	q.ino = ino;
	q.fh = fh;
	q.mode = (uint32_t)mode;
	q.off = off;
	q.len = len;
	return (int)call(RM, &q, NULL, 0, &rep);
}

static int r_getlk(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, struct fs_lock *lk)
{
	LOST_EIO(fh);
	REQ(FSP_GETLK);
	q.ino = ino;
	q.fh = fh;
	fsconv_lock_out(&q.lock, lk);
	int rc = (int)call(RM, &q, NULL, 0, &rep);
	if (!rc)
		fsconv_lock_in(lk, &rep.lock);
	return rc;
}

static int r_setlk(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, const struct fs_lock *lk,
		   int wait, uint64_t token)
{
	REQ(FSP_SETLK);
	if (lk->type != F_UNLCK)
		LOST_EIO(fh);
	q.ino = ino;
	q.fh = fh;
	fsconv_lock_out(&q.lock, lk);
	q.flags = (uint32_t)wait & (FSP_SETLK_WAIT | FSP_SETLK_RECLAIM);
	q.u64 = token;
	int rc = (int)call(RM, &q, NULL, 0, &rep);
	held_note(RM, ino, fh, lk, rc);
	return rc;
}

static void r_interrupt(void *ctx, const struct fs_caller *c, uint64_t token)
{
	struct fsp_req q = { .op = FSP_INTERRUPT, .u64 = token };
	fsconv_caller_out(&q.caller, c);
	post(RM, &q);
}

static int64_t r_lseek(void *ctx, const struct fs_caller *c, uint64_t ino, uint64_t fh, int64_t off, int whence)
{
	LOST_EIO(fh);
	REQ(FSP_LSEEK);
	q.ino = ino;
	q.fh = fh;
	q.off = (uint64_t)off;
	q.flags = (uint32_t)whence;
	return call(RM, &q, NULL, 0, &rep);
}

const struct fs_ops remote_ops = {
	.lookup = r_lookup, .forget = r_forget, .getattr = r_getattr, .setattr = r_setattr, .readlink = r_readlink,
	.mknod = r_mknod, .mkdir = r_mkdir, .unlink = r_unlink, .rmdir = r_rmdir, .symlink = r_symlink,
	.rename = r_rename, .link = r_link, .open = r_open, .create = r_create, .read = r_read, .write = r_write,
	.flush = r_flush, .release = r_release, .fsync = r_fsync, .opendir = r_opendir, .readdir = r_readdir,
	.readdirplus = r_readdirplus,
	.releasedir = r_releasedir, .fsyncdir = r_fsyncdir, .statfs = r_statfs, .setxattr = r_setxattr,
	.getxattr = r_getxattr, .listxattr = r_listxattr, .removexattr = r_removexattr, .fallocate = r_fallocate,
	.getlk = r_getlk, .setlk = r_setlk, .interrupt = r_interrupt, .lseek = r_lseek,
};

/* ------------------------------------------------------------ open/close */

int remote_open(struct remote **out, const struct cfg_resource *r, const struct cfg_host *me,
		const struct cfg_host *owner, char *err)
{
	if (!owner->address || !me->address) {
		snprintf(err, 256, "no address for %s in resource %s", owner->address ? me->name : owner->name, r->name);
		return -EINVAL;
	}
	struct remote *rm = calloc(1, sizeof *rm);
	if (!rm || !(rm->rx = malloc(FSP_HDR + FSP_PAYLOAD_MAX))) {
		if (rm)
			free(rm);
		snprintf(err, 256, "out of memory");
		return -ENOMEM;
	}
	snprintf(rm->res, sizeof rm->res, "%s", r->name);
	snprintf(rm->owner_addr, sizeof rm->owner_addr, "%s", owner->address);
	snprintf(rm->my_addr, sizeof rm->my_addr, "%s", me->address);
	snprintf(rm->owner_name, sizeof rm->owner_name, "%s", owner->name);
	rm->hs = (struct hs_conf){ .res = rm->res, .my_id = me->node_id, .peer_id = owner->node_id,
				   .peer_name = rm->owner_name, .fs_only = 1, .timeout_ms = 30000,
				   .fill = hello_fs_client };
	const char *v = cfg_conn_get(r, me->name, owner->name, SECT_NET, "shared-secret");
	if (v && *v) {
		snprintf(rm->secret, sizeof rm->secret, "%s", v);
		const char *alg = cfg_conn_get(r, me->name, owner->name, SECT_NET, "cram-hmac-alg");
		rm->hs.md = EVP_get_digestbyname(alg ? alg : "sha256");
		if (!rm->hs.md) {
			snprintf(err, 256, "cram-hmac-alg '%s' is not a digest this system knows (try sha256)", alg);
			free(rm->rx);
			free(rm);
			return -EINVAL;
		}
		rm->hs.secret = rm->secret;
		rm->hs.has_secret = 1;
	}
	rm->fd = -1;
	pthread_mutex_init(&rm->lock, NULL);
	pthread_mutex_init(&rm->send_lock, NULL);
	pthread_mutex_init(&rm->reclaim_mu, NULL);
	pthread_cond_init(&rm->cv, NULL);
	for (unsigned i = 0; i < NSLOTS; i++)
		pthread_cond_init(&rm->slot_cv[i], NULL);
	if (locks_open(&rm->held)) {
		snprintf(err, 256, "out of memory");
		rm->wake[0] = rm->wake[1] = -1;
		remote_close(rm);
		return -ENOMEM;
	}
	if (pipe2(rm->wake, O_CLOEXEC)) {
		snprintf(err, 256, "pipe: %s", strerror(errno));
		rm->wake[0] = rm->wake[1] = -1;
		remote_close(rm);
		return -EMFILE;
	}
	/* remote_close cancels a dial and a handshake alike: an owner that
	 * accepts and says nothing (a zombie) must not hold a takeover */
	rm->hs.has_wake = 1;
	rm->hs.wake_fd = rm->wake[0];
	int fd = dial(rm, &rm->owner_flags, err);
	if (fd < 0) {
		remote_close(rm);
		return fd;
	}
	rm->r = r;
	rm->fd = fd;
	rm->connections = 1;
	if (pthread_create(&rm->reader, NULL, reader_main, rm)) {
		snprintf(err, 256, "cannot start a thread");
		remote_close(rm);
		return -EAGAIN;
	}
	if (pthread_create(&rm->notifier, NULL, notifier_main, rm) ||
	    pthread_create(&rm->reclaimer, NULL, reclaimer_main, rm)) {
		snprintf(err, 256, "cannot start a thread");
		pthread_mutex_lock(&rm->lock);
		rm->closing = 1;
		pthread_mutex_unlock(&rm->lock);
		(void)!write(rm->wake[1], "x", 1);
		shutdown(fd, SHUT_RDWR);
		pthread_join(rm->reader, NULL);
		rm->reader = 0;
		remote_close(rm);
		return -EAGAIN;
	}
	*out = rm;
	return 0;
}

void remote_set_notify(struct remote *rm, const struct fs_notify *n)
{
	pthread_mutex_lock(&rm->lock);
	rm->notify = n ? *n : (struct fs_notify){ 0 };
	/* the old hooks' owner may be freed once this returns */
	while (rm->notifying)
		pthread_cond_wait(&rm->cv, &rm->lock);
	pthread_mutex_unlock(&rm->lock);
}

uint32_t remote_epoch(struct remote *rm)
{
	pthread_mutex_lock(&rm->lock);
	uint32_t e = rm->fd >= 0 ? rm->epoch : 0;
	pthread_mutex_unlock(&rm->lock);
	return e;
}

void remote_counters(struct remote *rm, uint64_t *requests, uint64_t *revocations, uint64_t *connections)
{
	pthread_mutex_lock(&rm->lock);
	*connections = rm->connections;
	*requests = rm->requests;
	*revocations = rm->revocations;
	pthread_mutex_unlock(&rm->lock);
}

void remote_reclaims(struct remote *rm, uint64_t *reclaimed, uint64_t *lost)
{
	pthread_mutex_lock(&rm->lock);
	*reclaimed = rm->reclaimed;
	*lost = rm->nlocks_lost;
	pthread_mutex_unlock(&rm->lock);
}

int remote_connected(struct remote *rm)
{
	pthread_mutex_lock(&rm->lock);
	int c = rm->fd >= 0;
	pthread_mutex_unlock(&rm->lock);
	return c;
}

void remote_close(struct remote *rm)
{
	if (!rm)
		return;
	pthread_mutex_lock(&rm->lock);
	rm->closing = 1;
	if (rm->fd >= 0)
		shutdown(rm->fd, SHUT_RDWR); /* wakes the reader out of its read */
	pthread_cond_broadcast(&rm->cv);
	pthread_mutex_unlock(&rm->lock);
	if (rm->wake[1] >= 0)
		(void)!write(rm->wake[1], "x", 1);
	if (rm->reader)
		pthread_join(rm->reader, NULL);
	/* the reader may have stopped before it saw the connection end: what
	 * is still in flight (the reclaimer's MOUNTED question) fails now */
	pthread_mutex_lock(&rm->send_lock);
	pthread_mutex_lock(&rm->lock);
	if (rm->fd >= 0)
		drop_locked(rm, rm->fd);
	pthread_mutex_unlock(&rm->lock);
	pthread_mutex_unlock(&rm->send_lock);
	if (rm->notifier)
		pthread_join(rm->notifier, NULL);
	if (rm->reclaimer)
		pthread_join(rm->reclaimer, NULL);
	if (rm->fd >= 0) { /* threads are gone: no lock needed */
		shutdown(rm->fd, SHUT_RDWR);
		close(rm->fd);
	}
	if (rm->wake[0] >= 0) {
		close(rm->wake[0]);
		close(rm->wake[1]);
	}
	pthread_mutex_destroy(&rm->lock);
	pthread_mutex_destroy(&rm->send_lock);
	pthread_mutex_destroy(&rm->reclaim_mu);
	pthread_cond_destroy(&rm->cv);
	for (unsigned i = 0; i < NSLOTS; i++)
		pthread_cond_destroy(&rm->slot_cv[i]);
	locks_close(rm->held);
	free(rm->lost);
	free(rm->rx);
	free(rm);
}

/* server — the owner's dipolefs server; see server.h. */
#include "server.h"
#include "config.h"
#include "dirsplit.h"
#include "fsconv.h"
#include "fsevents.h"
#include "fsproto.h"
#include "hs.h"
#include "hsauth.h"
#include "listener.h"
#include "log.h"
#include "wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define NWAITERS 32u
/* The worker pool of a connection (worker_main): one worker at a time
 * reads frames and runs the request it read itself once another took
 * over reading; a worker per request at most, up to WORKERS_MAX (above
 * the 128 requests a client keeps in flight, so one blocked in F_SETLKW
 * or a revocation wait never delays another of a well-behaved client);
 * a worker that idles WORKER_IDLE_S exits while the reader and another
 * idle one are left. Job slots of up to JOB_SMALL payload bytes are kept for reuse
 * (JOBS_KEPT of them): only large writes and xattrs allocate. */
#define WORKERS_MAX 160u
#define WORKER_IDLE_S 5
#define JOB_SMALL 8192u
#define JOBS_KEPT 32u
#define NAMES_MAX (1u << 18) /* names one client may cache, tracked one by one (then: by parent) */

/* ------------------------------------------------------------ u64 map */

/* Open addressing, linear probing, backward-shift deletion; key 0 is
 * "empty" (node id 0 and file handle 0 are never handed out). */
struct imap { uint64_t *k, *v; size_t cap, n; };

static size_t imap_slot(const struct imap *m, uint64_t key)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 17) & (m->cap - 1);
}

static uint64_t *imap_find(struct imap *m, uint64_t key)
{
	if (!m->cap || !key)
		return NULL;
	for (size_t i = imap_slot(m, key);; i = (i + 1) & (m->cap - 1)) {
		if (m->k[i] == key)
			return &m->v[i];
		if (!m->k[i])
			return NULL;
	}
}

static int imap_put(struct imap *m, uint64_t key, uint64_t val)
{
	if (!key)
		return -EINVAL;
	if ((m->n + 1) * 4 > m->cap * 3) {
		struct imap g = { calloc(m->cap ? m->cap * 2 : 64, 8), calloc(m->cap ? m->cap * 2 : 64, 8),
				  m->cap ? m->cap * 2 : 64, 0 };
		if (!g.k || !g.v) {
			free(g.k);
			free(g.v);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++)
			if (m->k[i])
				imap_put(&g, m->k[i], m->v[i]);
		free(m->k);
		free(m->v);
		*m = g;
	}
	size_t i = imap_slot(m, key);
	while (m->k[i] && m->k[i] != key)
		i = (i + 1) & (m->cap - 1);
	m->n += !m->k[i];
	m->k[i] = key;
	m->v[i] = val;
	return 0;
}

static void imap_del(struct imap *m, uint64_t key)
{
	uint64_t *vp = imap_find(m, key);
	if (!vp)
		return;
	size_t i = (size_t)(vp - m->v), mask = m->cap - 1;
	m->k[i] = 0;
	m->n--;
	for (size_t j = (i + 1) & mask; m->k[j]; j = (j + 1) & mask) {
		size_t home = imap_slot(m, m->k[j]);
		/* move j back to the hole unless its home lies in (i, j] */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->k[i] = m->k[j];
			m->v[i] = m->v[j];
			m->k[j] = 0;
			i = j;
		}
	}
}

static void imap_free(struct imap *m)
{
	free(m->k);
	free(m->v);
	*m = (struct imap){ 0 };
}

/* ------------------------------------------------------------ state */

struct sconn;

struct job {                 /* one request being executed */
	struct sconn *c;
	struct fsp_hdr h;
	struct fsp_req q;
	struct job *next, *prev; /* c->jobs, under c->lock */
	struct job *qnext;       /* c->queue or c->spare, under c->lock */
	size_t cap;              /* payload bytes */
	uint8_t payload[];
};

struct waiter { uint64_t id; int busy, done; };

struct sconn {
	struct server *s;
	int fd;
	char from[96];
	const struct cfg_host *host; /* the authenticated client node */
	int epochs;              /* its HELLO had HF_FS_EPOCH: replies carry the owner epoch */
	int parent_attr;         /* its HELLO had HF_FS_PARENT_ATTR: replies of directory changes carry
				  * the parent's attributes */
	int dir_empty;           /* its HELLO had HF_FS_DIR_EMPTY: mkdir replies say if the new directory
				  * is empty */
	int stale_told;          /* a stale epoch was logged for it (once per connection) */
	int replaced;            /* under s->lock: a newer connection of its node ends it */
	int leaving;             /* under s->lock: its reader stopped; its MOUNTED waits end */
	pthread_t thr;
	int refs;                /* under s->lock: the list's and fan-outs' */
	struct sconn *next;      /* s->conns, under s->lock */

	pthread_mutex_t send_lock;
	pthread_mutex_t lock;    /* guards below */
	pthread_cond_t cv;
	int dead;                /* conn_cleanup began: no new revocations */
	int reading;             /* a worker reads the next frame (worker_main) */
	int rx_done;             /* reading ended, for good: why in rx_why */
	char rx_why[256];
	int inflight;            /* queued or running */
	struct job *jobs;        /* the same, for conn_cleanup's interrupts */
	struct job *queue, *queue_tail; /* waiting for a worker, in arrival order */
	unsigned queued, nworkers, nidle;
	pthread_cond_t work_cv;  /* a job queued, or the connection died (CLOCK_MONOTONIC) */
	struct job *spare;       /* job slots of JOB_SMALL for reuse */
	unsigned nspare;
	struct imap lookups;     /* node id -> lookup count */
	struct imap files, dirs; /* handle -> node id */
	/* what the client's kernel may cache, marked before a request runs
	 * and cleared when a revocation is sent (docs/dipolefs.md, "What a
	 * node caches, and how it is revoked"): */
	struct imap cached;      /* node id -> 1: its attributes or pages */
	struct imap names;       /* name_key(parent, name) -> parent: that entry, or its absence */
	int nodes_overflow;      /* a mark failed (no memory): every node it looked up, and the root */
	int names_overflow;      /* more than NAMES_MAX: every name under a parent it looked up */
	struct waiter waiters[NWAITERS];
	uint64_t next_wid;
};

struct server {
	const struct cfg_resource *r;
	const struct cfg_host *me;
	const struct fs_ops *ops;
	void *ctx;
	struct listener *lsn;
	void (*node_gone)(void *arg, uint32_t node_id);
	void *node_gone_arg;
	void (*reclaim_done)(void *arg, uint32_t node_id);
	void *reclaim_done_arg;
	uint64_t keep_ns;        /* a gone client's handles wait this long for it (server_set_keep) */
	atomic_uint workers_max; /* per connection (server_set_workers_max) */
	uint32_t epoch;          /* owner epoch (fsproto 4): nonzero, chosen at server_open */
	struct dirsplit *split;  /* the owner's mount caches names where no client does (or NULL) */

	pthread_mutex_t lock;    /* guards below */
	pthread_cond_t cv;       /* a connection ended */
	struct sconn *conns;     /* connected and connecting clients */
	int nconns;              /* threads running */
	int closing;
	char last_drop[256];
	struct parked *parked;   /* gone clients' handles, waiting for them */
	uint64_t requests;       /* requests served for clients (status) */
	uint64_t revocations;    /* revocations sent to clients (status) */
	uint64_t stale;          /* requests refused for a stale owner epoch (status) */
};

/* A gone client's open files and directories, kept for it to come back
 * (server_set_keep): its next connection adopts them, else they are
 * released when the time is up. */
struct parked {
	struct parked *next;     /* s->parked, under s->lock */
	uint32_t node;
	int adopted;             /* under s->lock: the maps moved to a connection */
	struct imap files, dirs;
};

static void conn_unref_locked(struct sconn *c)
{
	if (--c->refs)
		return;
	imap_free(&c->lookups);
	imap_free(&c->files);
	imap_free(&c->dirs);
	imap_free(&c->cached);
	imap_free(&c->names);
	while (c->spare) {
		struct job *j = c->spare;
		c->spare = j->qnext;
		free(j);
	}
	pthread_cond_destroy(&c->work_cv);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->send_lock);
	pthread_cond_destroy(&c->cv);
	free(c);
}

static void set_drop(struct server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_drop(struct server *s, const char *fmt, ...)
{
	va_list ap;
	char buf[256];
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&s->lock);
	snprintf(s->last_drop, sizeof s->last_drop, "%s", buf);
	pthread_mutex_unlock(&s->lock);
	log_warn("%s: fs: %s", s->r->name, buf);
}

static int send_frame(struct sconn *c, const uint8_t *head, size_t hlen, const void *data, size_t dlen)
{
	struct iovec iov[2] = { { (void *)head, hlen }, { (void *)data, dlen } };
	pthread_mutex_lock(&c->send_lock);
	int rc = c->fd < 0 ? -ENOTCONN : sendv_full(c->fd, iov, dlen ? 2 : 1);
	if (rc && c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR); /* its reader notices and cleans up */
	pthread_mutex_unlock(&c->send_lock);
	return rc;
}

/* Make the connection's reader stop (it cleans up). The fd is closed only
 * under send_lock, so it is still this connection's here. */
static void conn_kill(struct sconn *c)
{
	pthread_mutex_lock(&c->send_lock);
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&c->send_lock);
}

/* ------------------------------------------------------------ revocation */

static void conn_inval(struct sconn *c, const struct fsp_req *q)
{
	uint8_t head[FSP_HDR + FSP_NAME_MAX + 32];
	pthread_mutex_lock(&c->lock);
	struct waiter *w = NULL;
	while (!c->dead && !w) {
		for (unsigned i = 0; i < NWAITERS && !w; i++)
			if (!c->waiters[i].busy)
				w = &c->waiters[i];
		if (!w)
			pthread_cond_wait(&c->cv, &c->lock);
	}
	if (!w) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	*w = (struct waiter){ .id = ++c->next_wid * NWAITERS + (uint64_t)(w - c->waiters), .busy = 1 };
	uint64_t id = w->id;
	pthread_mutex_unlock(&c->lock);
	int hl = fsp_encode_req(head, sizeof head, id, q);
	if (hl > 0)
		send_frame(c, head, (size_t)hl, NULL, 0);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += SERVER_ACK_TIMEOUT_MS / 1000;
	pthread_mutex_lock(&c->lock);
	int rc = 0;
	while (!w->done && !c->dead && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&c->cv, &c->lock, &until);
	int late = !w->done && !c->dead;
	w->busy = 0;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->lock);
	if (late) {
		/* its kernel may still serve the old data: coherence needs it gone */
		set_drop(c->s, "client %s did not acknowledge a cache revocation within %d ms; dropped", c->host->name,
			 SERVER_ACK_TIMEOUT_MS);
		conn_kill(c);
	}
}

/* The key of a name in the client's name table: FNV-1a over the parent
 * and the name, never 0 (imap's empty key). A collision only costs a
 * revocation too many or, once one of the two is revoked, one too few:
 * 2^-64 per pair. */
static uint64_t name_key(uint64_t parent, const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < 8; i++)
		h = (h ^ ((parent >> (8 * i)) & 0xff)) * 1099511628211ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 1099511628211ull;
	return h ? h : 1;
}

/* Whether c may cache what q revokes; if so, forget that it does: the
 * revocation about to be sent drops it all (a node's attributes and every
 * page, an entry). A name mark it clears is told in *parent (else 0): the
 * owner's split counts it until the client acked (fan_out), because until
 * then the client's kernel may still hold the name. Under c->lock. */
static int takes_revocation(struct sconn *c, const struct fsp_req *q, uint64_t *parent)
{
	*parent = 0;
	if (q->op == FSP_INVAL_INODE) {
		if (c->nodes_overflow)
			return q->ino == FS_ROOT_INO || imap_find(&c->lookups, q->ino) != NULL;
		if (!imap_find(&c->cached, q->ino))
			return 0;
		imap_del(&c->cached, q->ino);
		return 1;
	}
	if (c->names_overflow)
		return q->ino == FS_ROOT_INO || imap_find(&c->lookups, q->ino) != NULL;
	uint64_t k = name_key(q->ino, q->name, q->name_len);
	uint64_t *p = imap_find(&c->names, k);
	if (!p)
		return 0;
	*parent = *p;
	imap_del(&c->names, k);
	return 1;
}

struct target {
	struct sconn *c;  /* referenced */
	uint64_t parent;  /* a name mark cleared under it (takes_revocation), or 0 */
};

/* The clients but except_node that may cache what q revokes; *n of them. */
static struct target *targets(struct server *s, uint32_t except_node, const struct fsp_req *q, int *n)
{
	pthread_mutex_lock(&s->lock);
	struct target *v = calloc((size_t)s->nconns + 1, sizeof *v);
	*n = 0;
	for (struct sconn *c = s->conns; v && c; c = c->next) {
		if (!c->host || (uint32_t)c->host->node_id == except_node)
			continue;
		uint64_t parent;
		pthread_mutex_lock(&c->lock);
		int cached = !c->dead && takes_revocation(c, q, &parent);
		pthread_mutex_unlock(&c->lock);
		if (cached) {
			c->refs++;
			v[(*n)++] = (struct target){ c, parent };
		}
	}
	s->revocations += (uint64_t)*n;
	pthread_mutex_unlock(&s->lock);
	return v;
}

static void fan_out(struct server *s, uint32_t except_node, const struct fsp_req *q)
{
	int n;
	struct target *v = targets(s, except_node, q, &n);
	for (int i = 0; i < n; i++) {
		conn_inval(v[i].c, q);
		/* acked (or the client dropped): its kernel holds the name no more */
		if (v[i].parent && s->split)
			dirsplit_client_unmark(s->split, v[i].parent);
	}
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < n; i++)
		conn_unref_locked(v[i].c);
	pthread_mutex_unlock(&s->lock);
	free(v);
}

void server_inval_inode(struct server *s, uint32_t except_node, uint64_t ino, int64_t off, int64_t len)
{
	/* all of it, whatever changed: the client is marked as caching
	 * nothing of the node afterwards (takes_revocation) */
	(void)off;
	(void)len;
	struct fsp_req q = { .op = FSP_INVAL_INODE, .ino = ino, .inval_off = 0, .inval_len = INT64_MAX };
	fan_out(s, except_node, &q);
}

void server_inval_entry(struct server *s, uint32_t except_node, uint64_t parent, const char *name)
{
	struct fsp_req q = { .op = FSP_INVAL_ENTRY, .ino = parent, .name = name,
			     .name_len = (uint16_t)strnlen(name, FS_NAME_MAX + 1) };
	if (q.name_len && q.name_len <= FS_NAME_MAX)
		fan_out(s, except_node, &q);
}

/* ------------------------------------------------------------ requests */

struct dirbuf { uint8_t *b; size_t cap, used; uint32_t n; };

static int dir_fill(void *arg, const char *name, uint64_t ino, mode_t type, uint64_t next)
{
	struct dirbuf *d = arg;
	int rc = fsp_dirent_put(d->b, d->cap, &d->used, ino, next, (uint32_t)type, name, strlen(name));
	if (rc == 0)
		d->n++;
	return rc == 1; /* a bad name from the backend is skipped */
}

static void mark_node(struct sconn *c, uint64_t ino)
{
	if (ino && !c->nodes_overflow && imap_put(&c->cached, ino, 1))
		c->nodes_overflow = 1; /* no memory: the coarse rule, still correct */
}

/* The client's name marks go (it is gone, or tracked by parent now):
 * the owner's split forgets them. Under c->lock. */
static void unmark_names(struct sconn *c)
{
	for (size_t i = 0; c->s->split && i < c->names.cap; i++)
		if (c->names.k[i])
			dirsplit_client_unmark(c->s->split, c->names.v[i]);
	imap_free(&c->names);
}

/* From now on c counts as caching every name under a parent it looked up. */
static void names_by_parent(struct sconn *c)
{
	c->names_overflow = 1;
	if (c->s->split) /* first: the owner's mount caches no name from here on */
		dirsplit_client_every(c->s->split, 1);
	unmark_names(c);
}

static void mark_name(struct sconn *c, uint64_t parent, const char *name, size_t len)
{
	if (c->names_overflow)
		return;
	uint64_t k = name_key(parent, name, len);
	if (imap_find(&c->names, k))
		return;
	/* beyond NAMES_MAX or without memory: the coarse rule, still correct */
	if (c->names.n >= NAMES_MAX || imap_put(&c->names, k, parent))
		names_by_parent(c);
	else if (c->s->split)
		dirsplit_client_mark(c->s->split, parent);
}

/* What the client's kernel may cache once q is answered, marked before q
 * runs: a change whose revocation looks after this sees the mark, and one
 * that looked before had changed the filesystem before q ran, so q's
 * answer is already current. Every node and name a request carries is
 * marked, whatever the op: the kernel caches what its own calls return
 * and what they did (its own write's pages, the negative entry an unlink
 * leaves). Nodes here, as q is queued (under c->lock); names by the
 * worker just before q runs (mark_names). */
static void mark_cached(struct sconn *c, const struct fsp_req *q)
{
	mark_node(c, q->ino);
	if (q->op == FSP_RENAME || q->op == FSP_LINK)
		mark_node(c, q->newparent);
}

struct qname { uint64_t parent; const char *name; size_t len; };

/* The (parent, name)s q carries: 0, 1 or 2 of them in v. */
static int names_of(const struct fsp_req *q, struct qname v[2])
{
	switch (q->op) {
	case FSP_LOOKUP: case FSP_MKNOD: case FSP_MKDIR: case FSP_SYMLINK: case FSP_CREATE: case FSP_UNLINK:
	case FSP_RMDIR:
		v[0] = (struct qname){ q->ino, q->name, q->name_len };
		return 1;
	case FSP_RENAME:
		v[0] = (struct qname){ q->ino, q->name, q->name_len };
		v[1] = (struct qname){ q->newparent, q->name2, q->name2_len };
		return 2;
	case FSP_LINK:
		v[0] = (struct qname){ q->newparent, q->name, q->name_len };
		return 1;
	}
	return 0;
}

/* The names q carries, marked as cached by the client just before q runs,
 * once the owner's mount caches no name under their directories
 * (dirsplit_settle, which waits for the owner's kernel there). Not
 * earlier: a change the owner's kernel is making in the directory,
 * holding its lock, would revoke the fresh mark from the client, whose
 * kernel cannot apply that while it holds the same directory for q, and
 * q would be waiting for the owner's lock: a cycle. */
static void mark_names(struct sconn *c, const struct fsp_req *q)
{
	struct qname v[2];
	int n = names_of(q, v);
	struct dirsplit *split = c->s->split;
	for (int i = 0; split && i < n; i++)
		dirsplit_settle(split, v[i].parent);
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < n; i++)
		mark_name(c, v[i].parent, v[i].name, v[i].len);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; split && i < n; i++)
		dirsplit_settled(split, v[i].parent);
}

/* One more lookup of ino the client's kernel holds (a FORGET drops it).
 * Under c->lock. */
static void count_lookup(struct sconn *c, uint64_t ino)
{
	uint64_t *cnt = imap_find(&c->lookups, ino);
	imap_put(&c->lookups, ino, (cnt ? *cnt : 0) + 1);
}

/* The client's kernel let go of n lookups of ino: at most what it holds
 * (a hostile forget cannot drop others'). Not under c->lock. */
static void forget_lookups(struct sconn *c, uint64_t ino, uint64_t n)
{
	pthread_mutex_lock(&c->lock);
	uint64_t *cnt = imap_find(&c->lookups, ino);
	if (!cnt) {
		n = 0;
	} else if (n >= *cnt) {
		n = *cnt;
		imap_del(&c->lookups, ino);
		imap_del(&c->cached, ino); /* the kernel dropped the inode */
	} else {
		*cnt -= n;
	}
	pthread_mutex_unlock(&c->lock);
	if (n)
		c->s->ops->forget(c->s->ctx, ino, n);
}

/* What a successful reply changes in the client's tables. Under c->lock. */
static void track(struct sconn *c, const struct fsp_req *q, const struct fsp_reply *r)
{
	switch (q->op) {
	case FSP_LOOKUP: case FSP_MKNOD: case FSP_MKDIR: case FSP_SYMLINK: case FSP_LINK: case FSP_CREATE:
		count_lookup(c, r->entry.ino);
		if (q->op == FSP_CREATE)
			imap_put(&c->files, r->fh, r->entry.ino);
		break;
	case FSP_OPEN: imap_put(&c->files, r->fh, q->ino); break;
	case FSP_OPENDIR: imap_put(&c->dirs, r->fh, q->ino); break;
	case FSP_RELEASE: imap_del(&c->files, q->fh); break;
	case FSP_RELEASEDIR: imap_del(&c->dirs, q->fh); break;
	}
}

/* ------------------------------------------------------------ mounted nodes */

static uint64_t node_bit(uint32_t node_id)
{
	return node_id < 63 ? 1ULL << node_id : 0; /* a set fits a reply's non-negative result */
}

/* The nodes with the filesystem mounted, as the owner knows them: itself,
 * its clients (connected, or gone with their handles kept for them).
 * Under s->lock. */
static uint64_t mounted_locked(const struct server *s)
{
	uint64_t set = node_bit((uint32_t)s->me->node_id);
	for (const struct sconn *c = s->conns; c; c = c->next)
		if (c->host)
			set |= node_bit((uint32_t)c->host->node_id);
	for (const struct parked *p = s->parked; p; p = p->next)
		if (!p->adopted)
			set |= node_bit(p->node);
	return set;
}

/* FSP_MOUNTED: the set, once it differs from `known` (every change of it
 * broadcasts s->cv); -ENOTCONN if the connection or the server ends first. */
static int64_t mounted_wait(struct sconn *c, uint64_t known)
{
	struct server *s = c->s;
	pthread_mutex_lock(&s->lock);
	uint64_t now;
	while ((now = mounted_locked(s)) == known && !c->leaving && !s->closing)
		pthread_cond_wait(&s->cv, &s->lock);
	pthread_mutex_unlock(&s->lock);
	return now == known ? -ENOTCONN : (int64_t)now;
}

/* The ops that fill a buffer of the request's length (READ, READDIR,
 * GETXATTR, LISTXATTR): *buf is allocated here, freed by the caller after
 * the reply is sent. Returns the op's result. */
static int64_t run_buffered(struct sconn *c, const struct fsp_req *q, const struct fs_caller *caller, const char *name,
			    struct fsp_reply *r, uint8_t **buf)
{
	const struct fs_ops *ops = c->s->ops;
	void *ctx = c->s->ctx;
	int64_t res;

	switch (q->op) {
	case FSP_READ:
		*buf = malloc(q->len ? q->len : 1);
		res = !*buf ? -ENOMEM : ops->read(ctx, caller, q->ino, q->fh, *buf, q->len, q->off);
		if (res > (int64_t)q->len)
			res = -EIO;
		if (res > 0) {
			r->data = *buf;
			r->dlen = (uint32_t)res;
		}
		return res;
	case FSP_READDIR: {
		struct dirbuf d = { .b = *buf = malloc(q->len), .cap = q->len };
		res = !*buf ? -ENOMEM : ops->readdir(ctx, caller, q->ino, q->fh, q->off, dir_fill, &d);
		r->data = *buf;
		r->dlen = (uint32_t)d.used;
		r->ndirents = d.n;
		return res;
	}
	default: /* FSP_GETXATTR, FSP_LISTXATTR */
		*buf = q->len ? malloc(q->len) : NULL;
		res = q->len && !*buf ? -ENOMEM
		    : q->op == FSP_GETXATTR ? ops->getxattr(ctx, caller, q->ino, name, *buf, q->len)
					    : ops->listxattr(ctx, caller, q->ino, (char *)*buf, q->len);
		if (res > FS_XATTR_MAX || (q->len && res > (int64_t)q->len))
			res = -ERANGE;
		if (res > 0 && q->len) {
			r->data = *buf;
			r->dlen = (uint32_t)res;
		}
		return res;
	}
}

/* GETLK and SETLK: the lock's node is the caller's authenticated one. */
static int64_t run_lock(struct sconn *c, const struct fsp_req *q, const struct fs_caller *caller, struct fsp_reply *r)
{
	struct fs_lock lk;
	int64_t res;

	fsconv_lock_in(&lk, &q->lock);
	lk.node_id = caller->node_id;
	if (q->op == FSP_SETLK)
		return c->s->ops->setlk(c->s->ctx, caller, q->ino, q->fh, &lk, (int)q->flags, q->u64);
	res = c->s->ops->getlk(c->s->ctx, caller, q->ino, q->fh, &lk);
	fsconv_lock_out(&r->lock, &lk);
	return res;
}

/* An entry reply's node is not known before the request runs, so
 * mark_cached could not mark it, and its attributes are not revocable as
 * the backend read them. The caller marked it (with the lookup counted,
 * so a forget of earlier lookups racing this one leaves the mark); read
 * them again, and only then tell the client it may cache them until
 * revoked (attr_timeout > 0; an older owner sends 0, and so does this one
 * when the second read fails). */
static void entry_reread(struct sconn *c, const struct fs_caller *caller, struct fsp_entry *o)
{
	struct stat st;
	o->attr_timeout_ns = 0;
	if (!c->s->ops->getattr(c->s->ctx, caller, o->ino, &st)) {
		o->attr = st;
		o->attr_timeout_ns = fsconv_sec_to_ns(FS_ATTR_REVOCABLE);
	}
}

/* READDIRPLUS (fsproto 7): one batch of names as READDIR reads them, as
 * many as the client's room takes; then, as for a LOOKUP of each
 * (mark_names), the names are marked as cached by the client in a
 * settled directory, and only then looked up, each entry counted as a
 * lookup and its node marked (entry_reread). A name gone meanwhile is left
 * out; one that cannot be looked up otherwise goes without a lookup. */
struct plusname {
	uint64_t ino, next;
	uint32_t type;
	uint16_t len;
	uint32_t at; /* in names */
};
struct pluslist {
	struct plusname *v;
	size_t n, cap;
	char *names;
	size_t nused, room, room_used;
};

static int plus_collect(void *arg, const char *name, uint64_t ino, mode_t type, uint64_t next)
{
	struct pluslist *l = arg;
	size_t len = strlen(name), room = FSP_DIRENTPLUS_ROOM(len);
	if (!len || len > FS_NAME_MAX)
		return 0; /* a bad name from the backend is skipped */
	if (l->n == l->cap || room > l->room - l->room_used)
		return 1;
	memcpy(l->names + l->nused, name, len);
	l->v[l->n++] = (struct plusname){ ino, next, (uint32_t)type, (uint16_t)len, (uint32_t)l->nused };
	l->nused += len;
	l->room_used += room;
	return 0;
}

static int is_dots(const char *name, size_t len)
{
	return (len == 1 || len == 2) && name[0] == '.' && name[len - 1] == '.';
}

static void plus_mark(struct sconn *c, uint64_t dir, const struct pluslist *l)
{
	struct dirsplit *split = c->s->split;
	if (split)
		dirsplit_settle(split, dir);
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < l->n; i++)
		if (!is_dots(l->names + l->v[i].at, l->v[i].len))
			mark_name(c, dir, l->names + l->v[i].at, l->v[i].len);
	pthread_mutex_unlock(&c->lock);
	if (split)
		dirsplit_settled(split, dir);
}

/* One name of the batch looked up into o: 0, or -ENOENT (leave it out) */
static int plus_lookup(struct sconn *c, const struct fs_caller *caller, uint64_t dir, const struct pluslist *l,
		       size_t i, struct fsp_entry *o)
{
	const struct plusname *v = &l->v[i];
	char name[FS_NAME_MAX + 1];
	struct fs_entry e = { 0 };
	memcpy(name, l->names + v->at, v->len);
	name[v->len] = 0;
	int rc = is_dots(name, v->len) ? -EINVAL : c->s->ops->lookup(c->s->ctx, caller, dir, name, &e);
	memset(o, 0, sizeof *o);
	if (rc == -ENOENT)
		return rc;
	if (rc || !e.ino) {
		o->attr.st_ino = v->ino;
		o->attr.st_mode = v->type;
		return 0;
	}
	pthread_mutex_lock(&c->lock);
	count_lookup(c, e.ino);
	mark_node(c, e.ino);
	pthread_mutex_unlock(&c->lock);
	fsconv_entry_out(o, &e);
	entry_reread(c, caller, o);
	/* read after the node was marked, as the attributes are */
	char list[4096];
	o->xattr_absent = o->attr_timeout_ns ? fs_xattr_absent(list, c->s->ops->listxattr(c->s->ctx, caller, e.ino,
											    list, sizeof list))
					     : 0;
	return 0;
}

static int64_t run_readdirplus(struct sconn *c, const struct fsp_req *q, const struct fs_caller *caller,
			       struct fsp_reply *r, uint8_t **buf)
{
	struct pluslist l = { .room = q->len, .cap = q->len / FSP_DIRENTPLUS_ROOM(1) + 1 };
	l.v = malloc(l.cap * sizeof *l.v);
	l.names = malloc(q->len);
	*buf = malloc(q->len);
	int64_t res = -ENOMEM;
	if (l.v && l.names && *buf)
		res = c->s->ops->readdir(c->s->ctx, caller, q->ino, q->fh, q->off, plus_collect, &l);
	plus_mark(c, q->ino, &l);
	size_t used = 0;
	for (size_t i = 0; i < l.n; i++) {
		struct fsp_entry o;
		const struct plusname *v = &l.v[i];
		if (plus_lookup(c, caller, q->ino, &l, i, &o))
			continue;
		/* fits: an entry's bytes are less than its room */
		if (fsp_direntplus_put(*buf, q->len, &used, v->next, v->type, l.names + v->at, v->len, &o) == 0)
			r->ndirents++;
		else if (o.ino)
			forget_lookups(c, o.ino, 1);
	}
	r->data = *buf;
	r->dlen = (uint32_t)used;
	free(l.v);
	free(l.names);
	return r->ndirents ? 0 : res;
}

static int count_name(void *arg, const char *name, uint64_t ino, mode_t type, uint64_t next)
{
	(void)ino;
	(void)type;
	(void)next;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	*(int *)arg = 1;
	return 1; /* one is enough */
}

/* 1 if directory ino holds no name: listed as the caller, after the
 * client's mark of ino (reply), so any name made there later revokes it
 * at the client; 0 if it holds one or cannot be listed. */
static uint32_t dir_is_empty(struct sconn *c, const struct fs_caller *caller, uint64_t ino)
{
	const struct fs_ops *ops = c->s->ops;
	uint64_t fh;
	int named = 0;
	if (ops->opendir(c->s->ctx, caller, ino, &fh))
		return 0;
	int rc = ops->readdir(c->s->ctx, caller, ino, fh, 0, count_name, &named);
	ops->releasedir(c->s->ctx, ino, fh);
	return !rc && !named;
}

/* Reply to j with r (result res, entry e): what the client may cache from
 * it is tracked first, so a later change revokes it. */
static void reply(struct job *j, struct fsp_reply *r, int64_t res, const struct fs_entry *e,
		  const struct fs_caller *caller)
{
	struct sconn *c = j->c;
	const struct fsp_req *q = &j->q;
	int entry = q->op == FSP_LOOKUP || q->op == FSP_MKNOD || q->op == FSP_MKDIR || q->op == FSP_SYMLINK ||
		    q->op == FSP_LINK || q->op == FSP_CREATE;

	if (res < -FSP_ERRNO_MAX)
		res = -EIO;
	r->result = res;
	if (res >= 0)
		fsconv_entry_out(&r->entry, e);
	/* the parent's attributes, read after the change: the parent was
	 * marked as cached by this client before it ran (mark_cached) */
	if (res >= 0 && c->parent_attr && fsp_op_parent_attr(q->op) && e->parent_attr.st_ino) {
		r->pattr = e->parent_attr;
		r->has_pattr = 1;
	}
	if (res >= 0 && entry && !e->ino)
		r->result = -EIO; /* a backend bug must not reach the client as node 0 */
	if (r->result >= 0) {
		pthread_mutex_lock(&c->lock);
		track(c, q, r);
		if (entry)
			mark_node(c, e->ino);
		pthread_mutex_unlock(&c->lock);
		if (entry)
			entry_reread(c, caller, &r->entry);
		if (q->op == FSP_MKDIR && r->has_pattr && c->dir_empty) {
			r->has_empty = 1;
			r->new_empty = dir_is_empty(c, caller, e->ino);
		}
	}
	uint8_t head[FSP_HDR + FSP_HEAD_MAX];
	int hl = fsp_encode_reply(head, sizeof head, j->h.id, r);
	if (hl > 0)
		send_frame(c, head, (size_t)hl, r->data, r->result >= 0 ? r->dlen : 0);
}

static void execute(struct job *j)
{
	struct sconn *c = j->c;
	const struct fs_ops *ops = c->s->ops;
	void *ctx = c->s->ctx;
	const struct fsp_req *q = &j->q;
	struct fsp_reply r = { .op = q->op, .epoch = c->epochs ? c->s->epoch : 0 };
	struct fs_caller caller;
	struct fs_entry e = { 0 };
	struct fs_removed gone = { 0 };
	char name[FS_NAME_MAX + 1], name2[FS_NAME_MAX + 1], target[FS_PATH_MAX];
	uint8_t *buf = NULL;
	int64_t res;

	fsconv_caller_in(&caller, &q->caller);
	caller.umask = q->has_umask ? q->umask : 0; /* fsproto 9: MKNOD, MKDIR, CREATE */
	/* the node is who authenticated, whatever the frame claims */
	caller.node_id = (uint32_t)c->host->node_id;
	memcpy(name, q->name ? q->name : "", q->name_len);
	name[q->name_len] = 0;
	memcpy(name2, q->name2 ? q->name2 : "", q->name2_len);
	name2[q->name2_len] = 0;
	mark_names(c, q);

	switch (q->op) {
	case FSP_LOOKUP: res = ops->lookup(ctx, &caller, q->ino, name, &e); break;
	case FSP_GETATTR: res = ops->getattr(ctx, &caller, q->ino, &r.attr); break;
	case FSP_SETATTR: res = ops->setattr(ctx, &caller, q->ino, &q->attr, (int)q->flags, q->fh, &r.attr); break;
	case FSP_READLINK:
		res = ops->readlink(ctx, &caller, q->ino, target, q->len);
		if (!res) {
			r.data = (const uint8_t *)target;
			res = r.dlen = (uint32_t)strnlen(target, q->len - 1);
		}
		break;
	case FSP_MKNOD: res = ops->mknod(ctx, &caller, q->ino, name, q->mode, (dev_t)q->u64, &e); break;
	case FSP_MKDIR: res = ops->mkdir(ctx, &caller, q->ino, name, q->mode, &e); break;
	case FSP_UNLINK: res = ops->unlink(ctx, &caller, q->ino, name, &gone); break;
	case FSP_RMDIR: res = ops->rmdir(ctx, &caller, q->ino, name, &gone); break;
	case FSP_SYMLINK:
		memcpy(target, q->data, q->dlen);
		target[q->dlen] = 0;
		res = ops->symlink(ctx, &caller, target, q->ino, name, &e);
		break;
	case FSP_RENAME: res = ops->rename(ctx, &caller, q->ino, name, q->newparent, name2, q->flags); break;
	case FSP_LINK: res = ops->link(ctx, &caller, q->ino, q->newparent, name, &e); break;
	case FSP_OPEN: res = ops->open(ctx, &caller, q->ino, (int)q->flags, &r.fh); break;
	case FSP_CREATE: res = ops->create(ctx, &caller, q->ino, name, q->mode, (int)q->flags, &e, &r.fh); break;
	case FSP_READ:
	case FSP_READDIR:
	case FSP_GETXATTR:
	case FSP_LISTXATTR: res = run_buffered(c, q, &caller, name, &r, &buf); break;
	case FSP_READDIRPLUS: res = run_readdirplus(c, q, &caller, &r, &buf); break;
	case FSP_WRITE:
		/* no attributes after it, even for a client that takes them
		 * (HF_FS_WRITE_ATTR): reading them would make every fsync a
		 * journal commit (fsops.h) */
		res = ops->write(ctx, &caller, q->ino, q->fh, q->data, q->dlen, q->off);
		if (res > (int64_t)q->dlen)
			res = -EIO;
		break;
	case FSP_FLUSH: res = ops->flush(ctx, &caller, q->ino, q->fh, q->u64); break;
	case FSP_RELEASE: res = ops->release(ctx, q->ino, q->fh); break;
	case FSP_FSYNC: res = ops->fsync(ctx, &caller, q->ino, q->fh, (int)q->flags); break;
	case FSP_OPENDIR: res = ops->opendir(ctx, &caller, q->ino, &r.fh); break;
	case FSP_RELEASEDIR: res = ops->releasedir(ctx, q->ino, q->fh); break;
	case FSP_FSYNCDIR: res = ops->fsyncdir(ctx, &caller, q->ino, q->fh, (int)q->flags); break;
	case FSP_STATFS: res = ops->statfs(ctx, &caller, q->ino, &r.st); break;
	case FSP_SETXATTR: res = ops->setxattr(ctx, &caller, q->ino, name, q->data, q->dlen, (int)q->flags); break;
	case FSP_REMOVEXATTR: res = ops->removexattr(ctx, &caller, q->ino, name); break;
	case FSP_FALLOCATE: res = ops->fallocate(ctx, &caller, q->ino, q->fh, (int)q->mode, q->off, q->len); break;
	case FSP_GETLK:
	case FSP_SETLK: res = run_lock(c, q, &caller, &r); break;
	case FSP_LSEEK: res = ops->lseek(ctx, &caller, q->ino, q->fh, (int64_t)q->off, (int)q->flags); break;
	case FSP_RECLAIM_DONE:
		if (c->s->reclaim_done)
			c->s->reclaim_done(c->s->reclaim_done_arg, caller.node_id);
		res = 0;
		break;
	case FSP_MOUNTED: res = mounted_wait(c, q->u64); break;
	default: res = -ENOSYS;
	}
	if (q->op == FSP_UNLINK || q->op == FSP_RMDIR) {
		e.parent_attr = gone.dir_attr;
		r.removed_ino = gone.ino;
	}
	reply(j, &r, res, &e, &caller);
	free(buf);
}

/* A slot for a frame of len payload bytes: a kept one, or allocated. */
static struct job *job_get(struct sconn *c, size_t len)
{
	struct job *j = NULL;
	if (len <= JOB_SMALL) {
		pthread_mutex_lock(&c->lock);
		if ((j = c->spare)) {
			c->spare = j->qnext;
			c->nspare--;
		}
		pthread_mutex_unlock(&c->lock);
		if (!j && (j = malloc(sizeof *j + JOB_SMALL)))
			j->cap = JOB_SMALL;
	} else if ((j = malloc(sizeof *j + len))) {
		j->cap = len;
	}
	return j;
}

/* Give a slot back; under c->lock. */
static void job_put_locked(struct sconn *c, struct job *j)
{
	if (j->cap == JOB_SMALL && c->nspare < JOBS_KEPT) {
		j->qnext = c->spare;
		c->spare = j;
		c->nspare++;
	} else {
		free(j);
	}
}

static void job_put(struct sconn *c, struct job *j)
{
	pthread_mutex_lock(&c->lock);
	job_put_locked(c, j);
	pthread_mutex_unlock(&c->lock);
}

/* The next queued job, or NULL; under c->lock. */
static struct job *dequeue_locked(struct sconn *c)
{
	struct job *j = c->queue;
	if (j) {
		if (!(c->queue = j->qnext))
			c->queue_tail = NULL;
		c->queued--;
	}
	return j;
}

/* j ran: under c->lock. */
static void job_done_locked(struct sconn *c, struct job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		c->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	c->inflight--;
	if (c->dead) /* conn_cleanup waits for the last; before it, nobody does */
		pthread_cond_broadcast(&c->cv);
	job_put_locked(c, j);
}

/* Queue j for whichever worker is free first; under c->lock. */
static void enqueue_locked(struct sconn *c, struct job *j)
{
	j->qnext = NULL;
	if (c->queue_tail)
		c->queue_tail->qnext = j;
	else
		c->queue = j;
	c->queue_tail = j;
	c->queued++;
}

static void *worker_main(void *arg);
static int serve_frame(struct sconn *c, struct job **run, char *why);

/* One more worker; under c->lock (dropped while the thread starts).
 * 0, or -errno when no thread could be made. */
static int spawn_locked(struct sconn *c)
{
	c->nworkers++;
	pthread_mutex_unlock(&c->lock);
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &at, worker_main, c);
	pthread_attr_destroy(&at);
	pthread_mutex_lock(&c->lock);
	if (rc) {
		c->nworkers--;
		pthread_cond_broadcast(&c->cv);
	}
	return -rc;
}

/* The reader's turn (under c->lock, dropped while reading): one frame.
 * Returns the request to run, or NULL (handled here, or reading ended:
 * rx_done, with why in rx_why, and conn_main told). */
static struct job *read_next_locked(struct sconn *c)
{
	char why[256];
	struct job *j = NULL;
	c->reading = 1;
	pthread_mutex_unlock(&c->lock);
	int rc = serve_frame(c, &j, why);
	pthread_mutex_lock(&c->lock);
	c->reading = 0;
	if (rc) {
		c->rx_done = 1;
		memcpy(c->rx_why, why, sizeof c->rx_why);
		pthread_cond_broadcast(&c->cv);
	}
	return j;
}

/* The reader read j: 1 when another worker now reads (an idle one woken,
 * or a new one) so this one may run j; 0 when it queued j for a busy
 * worker and must read on (WORKERS_MAX reached: somebody must be there
 * for an INTERRUPT of a blocked F_SETLKW). Under c->lock. */
static int hand_over_locked(struct sconn *c, struct job *j)
{
	if (c->nidle) {
		pthread_cond_signal(&c->work_cv);
		return 1;
	}
	if (c->nworkers < atomic_load_explicit(&c->s->workers_max, memory_order_relaxed) && !spawn_locked(c))
		return 1;
	if (c->nworkers == 1)
		return 1; /* no thread to be had: run it, nobody reads meanwhile */
	enqueue_locked(c, j);
	return 0;
}

/* A worker, leader/follower: the one holding `reading` reads the next
 * frame and runs the request it brought itself, once another worker took
 * over reading, so no thread hand-off lies between a request's arrival
 * and its start; the others run what is queued or idle. Exits when
 * reading ended, the connection is dead and nothing is queued, or after
 * idling WORKER_IDLE_S with a reader and another idle worker left. */
static void *worker_main(void *arg)
{
	struct sconn *c = arg;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct job *j = dequeue_locked(c);
		while (!j && !c->reading && !c->rx_done) {
			if ((j = read_next_locked(c)) && !hand_over_locked(c, j))
				j = NULL;
		}
		if (!j) {
			if (c->dead && c->rx_done)
				break;
			struct timespec until;
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += WORKER_IDLE_S;
			c->nidle++;
			int rc = pthread_cond_timedwait(&c->work_cv, &c->lock, &until);
			c->nidle--;
			if (rc == ETIMEDOUT && !c->queue && c->reading && c->nidle)
				break;
			continue;
		}
		pthread_mutex_unlock(&c->lock);
		execute(j);
		pthread_mutex_lock(&c->lock);
		job_done_locked(c, j);
	}
	c->nworkers--;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* A request stamped with another owner's epoch (docs/dipolefs.md "Owner
 * epochs"): it was made for an earlier owner, so it is not run; the reply
 * says ESTALE and carries this owner's epoch. Frees j. */
static void refuse_stale(struct sconn *c, struct job *j)
{
	struct server *s = c->s;
	pthread_mutex_lock(&s->lock);
	s->stale++;
	int tell = !c->stale_told;
	c->stale_told = 1;
	pthread_mutex_unlock(&s->lock);
	if (tell)
		log_warn("%s: fs: refused %s from %s: it carries owner epoch %08x, this owner's is %08x (it was "
			 "made for an earlier owner); nothing done, the client gets ESTALE",
			s->r->name, fsp_op_name(j->q.op), c->host->name, j->q.epoch, s->epoch);
	if (!fsp_op_oneway(j->q.op)) {
		struct fsp_reply r = { .op = j->q.op, .result = -ESTALE, .epoch = c->epochs ? s->epoch : 0 };
		uint8_t head[FSP_HDR + 16];
		int hl = fsp_encode_reply(head, sizeof head, j->h.id, &r);
		if (hl > 0)
			send_frame(c, head, (size_t)hl, NULL, 0);
	}
	job_put(c, j);
}

/* One frame from the client: 0, or -errno with why[256] (drops it). */
static int serve_frame(struct sconn *c, struct job **run, char *why)
{
	uint8_t hb[FSP_HDR];
	struct fsp_hdr h;
	int rc = read_full(c->fd, hb, FSP_HDR);
	if (rc) {
		snprintf(why, 256, "%s", rc == -EPIPE ? "disconnected" : strerror(-rc));
		return rc;
	}
	if ((rc = fsp_decode_hdr(hb, &h, why, 256)))
		return rc;
	struct job *j = job_get(c, h.len);
	if (!j) {
		snprintf(why, 256, "out of memory for a %u-byte frame", h.len);
		return -ENOMEM;
	}
	j->c = c;
	j->h = h;
	if ((rc = read_full(c->fd, j->payload, h.len))) {
		snprintf(why, 256, "truncated frame: %s", strerror(-rc));
		job_put(c, j);
		return rc;
	}
	if (h.flags & FSPF_REPLY) { /* a revocation's ack */
		struct fsp_reply r;
		rc = fsp_decode_reply(&h, j->payload, &r, why, 256);
		job_put(c, j);
		if (rc)
			return rc;
		if (r.op != FSP_INVAL_INODE && r.op != FSP_INVAL_ENTRY) {
			snprintf(why, 256, "%s reply from a client", fsp_op_name(r.op));
			return -EPROTO;
		}
		pthread_mutex_lock(&c->lock);
		struct waiter *w = &c->waiters[h.id % NWAITERS];
		int ok = w->busy && !w->done && w->id == h.id;
		if (ok)
			w->done = 1;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->lock);
		/* a late ack (after the timeout) is harmless */
		return 0;
	}
	if ((rc = fsp_decode_req(&h, j->payload, &j->q, why, 256)) || j->q.op > FSP_OP_LAST) {
		if (!rc)
			snprintf(why, 256, "%s: an owner's message from a client", fsp_op_name(j->q.op));
		job_put(c, j);
		return -EPROTO;
	}
	if (j->q.epoch && j->q.epoch != c->s->epoch) {
		refuse_stale(c, j);
		return 0;
	}
	const struct fs_ops *ops = c->s->ops;
	if (j->q.op == FSP_FORGET) {
		forget_lookups(c, j->q.ino, j->q.len);
		job_put(c, j);
		return 0;
	}
	if (j->q.op == FSP_INTERRUPT) {
		struct fs_caller caller;
		fsconv_caller_in(&caller, &j->q.caller);
		caller.node_id = (uint32_t)c->host->node_id;
		ops->interrupt(c->s->ctx, &caller, j->q.u64);
		job_put(c, j);
		return 0;
	}
	pthread_mutex_lock(&c->lock);
	mark_cached(c, &j->q);
	j->prev = NULL;
	j->next = c->jobs;
	if (c->jobs)
		c->jobs->prev = j;
	c->jobs = j;
	c->inflight++;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_lock(&c->s->lock);
	c->s->requests++;
	pthread_mutex_unlock(&c->s->lock);
	*run = j;
	return 0;
}

/* ------------------------------------------------------------ connections */

/* An owner's CH_FS HELLO says it answers MOUNTED (fsproto 3) and
 * READDIRPLUS (fsproto 7), speaks owner epochs (fsproto 4) and applies a
 * umask sent with a new node's mode (fsproto 9). */
static void hello_fs_owner(void *arg, struct pkt_hello *hello)
{
	(void)arg;
	hello->flags |= HF_FS_MOUNTED | HF_FS_EPOCH | HF_FS_READDIRPLUS | HF_FS_UMASK;
}

/* Handshake as acceptor: the host the client proved to be, or NULL with
 * why set (and the client told). */

static const struct cfg_host *authenticate(struct sconn *c, char *why)
{
	struct server *s = c->s;
	struct timeval tv = { .tv_sec = 5 }; /* hs_handshake sets its own after */
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct hs_conf hc;
	const struct cfg_host *h = hs_identify(c->fd, s->r, s->me, c->from, &hc, why);
	if (!h)
		return NULL;
	hc.fs_only = 1;
	hc.timeout_ms = 30000;
	hc.fill = hello_fs_owner;
	int ch = -1;
	struct pkt_hello peer, mine;
	char reason[256];
	if (hs_handshake(&hc, c->fd, &ch, c->from, &peer, &mine, reason)) {
		snprintf(why, 256, "%s", reason);
		return NULL;
	}
	c->epochs = !!(peer.flags & HF_FS_EPOCH);
	c->parent_attr = !!(peer.flags & HF_FS_PARENT_ATTR);
	c->dir_empty = !!(peer.flags & HF_FS_DIR_EMPTY);
	return h;
}

static void release_handles(struct server *s, struct imap *files, struct imap *dirs)
{
	for (size_t i = 0; i < files->cap; i++)
		if (files->k[i])
			s->ops->release(s->ctx, files->v[i], files->k[i]);
	for (size_t i = 0; i < dirs->cap; i++)
		if (dirs->k[i])
			s->ops->releasedir(s->ctx, dirs->v[i], dirs->k[i]);
	imap_free(files);
	imap_free(dirs);
}

/* Under s->lock, c off the list: p waits for its node's next connection
 * (adopt), the keep time or the server's close; released unless adopted.
 * Drops s->lock meanwhile. */
static void park_wait_locked(struct server *s, struct parked *p)
{
	p->next = s->parked;
	s->parked = p;
	pthread_cond_broadcast(&s->cv);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts); /* s->cv's clock */
	uint64_t until = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + s->keep_ns;
	ts = (struct timespec){ .tv_sec = (time_t)(until / 1000000000u), .tv_nsec = (long)(until % 1000000000u) };
	while (!p->adopted && !s->closing && pthread_cond_timedwait(&s->cv, &s->lock, &ts) != ETIMEDOUT)
		;
	if (!p->adopted) {
		struct parked **pp = &s->parked;
		while (*pp != p)
			pp = &(*pp)->next;
		*pp = p->next;
	}
	pthread_mutex_unlock(&s->lock);
	if (!p->adopted && (p->files.n || p->dirs.n))
		log_info("%s: fs: node %u did not come back: its %zu open files and %zu directories are closed",
			 s->r->name, p->node, p->files.n, p->dirs.n);
	release_handles(s, &p->files, &p->dirs);
	free(p);
	pthread_mutex_lock(&s->lock);
}

/* Under s->lock, c authenticated: a node has one connection, so an older
 * one of c's node (a reconnect the server has not noticed yet) is ended
 * and waited for; then c takes over the handles it left. */
static void conn_take_over_locked(struct server *s, struct sconn *c)
{
	uint32_t node = (uint32_t)c->host->node_id;
	for (;;) {
		int old = 0;
		for (struct sconn *o = s->conns; o; o = o->next)
			if (o != c && o->host && o->host->node_id == c->host->node_id) {
				if (!o->replaced)
					log_info("%s: fs: client %s connected again: its old connection from %s ends",
						 s->r->name, c->host->name, o->from);
				o->replaced = 1;
				conn_kill(o);
				old = 1;
			}
		if (!old || s->closing)
			break;
		pthread_cond_wait(&s->cv, &s->lock);
	}
	for (struct parked **pp = &s->parked, *p; (p = *pp); pp = &p->next)
		if (p->node == node && !p->adopted) {
			*pp = p->next;
			imap_free(&c->files);
			imap_free(&c->dirs);
			c->files = p->files;
			c->dirs = p->dirs;
			p->files = p->dirs = (struct imap){ 0 };
			p->adopted = 1;
			pthread_cond_broadcast(&s->cv);
			log_info("%s: fs: client %s back: %zu open files kept", s->r->name, c->host->name, c->files.n);
			break;
		}
}

/* The client is gone: interrupt its blocked requests, wait for them, give
 * back what it held (or keep its handles: the parked record returned),
 * tell the lock table. */
static struct parked *conn_cleanup(struct sconn *c)
{
	struct server *s = c->s;
	const struct fs_ops *ops = s->ops;
	pthread_mutex_lock(&s->lock);
	c->leaving = 1; /* its MOUNTED waits end */
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_lock(&c->lock);
	c->dead = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_cond_broadcast(&c->work_cv);
	for (struct job *j = c->jobs; j; j = j->next) {
		if (j->q.op == FSP_SETLK && j->q.flags) {
			struct fs_caller caller;
			fsconv_caller_in(&caller, &j->q.caller);
			caller.node_id = (uint32_t)c->host->node_id;
			ops->interrupt(s->ctx, &caller, j->q.u64);
		}
	}
	/* the workers run what is queued, then exit (dead) */
	while (c->inflight || c->nworkers)
		pthread_cond_wait(&c->cv, &c->lock);
	/* no revocation reaches it any more (dead): nor does it cache */
	unmark_names(c);
	if (c->names_overflow && s->split)
		dirsplit_client_every(s->split, -1);
	c->names_overflow = 0;
	pthread_mutex_unlock(&c->lock);
	/* no job runs now: the tables are ours alone */
	pthread_mutex_lock(&s->lock);
	uint64_t keep = s->keep_ns;
	pthread_mutex_unlock(&s->lock);
	struct parked *p = keep && (c->files.n || c->dirs.n) ? calloc(1, sizeof *p) : NULL;
	if (p) { /* conn_main hands them over once this connection is off the list */
		p->node = (uint32_t)c->host->node_id;
		p->files = c->files;
		p->dirs = c->dirs;
		c->files = c->dirs = (struct imap){ 0 };
	}
	release_handles(s, &c->files, &c->dirs);
	for (size_t i = 0; i < c->lookups.cap; i++)
		if (c->lookups.k[i])
			ops->forget(s->ctx, c->lookups.k[i], c->lookups.v[i]);
	if (s->node_gone)
		s->node_gone(s->node_gone_arg, (uint32_t)c->host->node_id);
	return p;
}

static void *conn_main(void *arg)
{
	struct sconn *c = arg;
	struct server *s = c->s;
	char why[256];
	struct parked *p = NULL;
	const struct cfg_host *h = authenticate(c, why);
	if (!h) {
		set_drop(s, "%s", why);
	} else {
		pthread_mutex_lock(&s->lock);
		c->host = h;
		conn_take_over_locked(s, c);
		pthread_cond_broadcast(&s->cv); /* the mounted set may have changed */
		pthread_mutex_unlock(&s->lock);
		log_info("%s: fs: client %s connected from %s", s->r->name, h->name, c->from);
		snprintf(why, sizeof why, "from %s", c->from);
		fsevents_client(s->r->name, h->name, 1, why);
		pthread_mutex_lock(&c->lock);
		if (spawn_locked(c)) { /* the first worker reads */
			c->rx_done = 1;
			snprintf(c->rx_why, sizeof c->rx_why, "cannot start a thread to serve it");
		}
		while (!c->rx_done)
			pthread_cond_wait(&c->cv, &c->lock);
		memcpy(why, c->rx_why, sizeof why);
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_lock(&s->lock);
		int closing = s->closing;
		pthread_mutex_unlock(&s->lock);
		if (!strcmp(why, "disconnected") || closing)
			log_info("%s: fs: client %s disconnected", s->r->name, h->name);
		else
			set_drop(s, "client %s dropped: %s", h->name, why);
		shutdown(c->fd, SHUT_RDWR);
		p = conn_cleanup(c);
		/* once its requests ended and what it held was released or parked */
		fsevents_client(s->r->name, h->name, 0, closing ? "the server stops" : why);
	}
	pthread_mutex_lock(&s->lock);
	for (struct sconn **pp = &s->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pthread_mutex_lock(&c->send_lock);
	close(c->fd);
	c->fd = -1;
	pthread_mutex_unlock(&c->send_lock);
	if (p)
		park_wait_locked(s, p);
	s->nconns--;
	pthread_cond_broadcast(&s->cv);
	conn_unref_locked(c);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

void server_accept(void *arg, int fd, const char *from)
{
	struct server *s = arg;
	struct sconn *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return;
	}
	c->s = s;
	c->fd = fd;
	hs_tune(fd); /* replies are small frames: no Nagle wait for the ACK */
	c->refs = 1;
	snprintf(c->from, sizeof c->from, "%s", from);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->send_lock, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->work_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_lock(&s->lock);
	if (s->closing) {
		pthread_mutex_unlock(&s->lock);
		close(fd);
		conn_unref_locked(c);
		return;
	}
	c->next = s->conns;
	s->conns = c;
	s->nconns++;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&c->thr, &at, conn_main, c)) {
		s->conns = c->next;
		s->nconns--;
		close(fd);
		conn_unref_locked(c);
	}
	pthread_attr_destroy(&at);
	pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------ server */

int server_open(struct server **out, const struct cfg_resource *r, const struct cfg_host *me,
		const struct fs_ops *ops, void *ctx, char *err)
{
	struct server *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, 256, "out of memory");
		return -ENOMEM;
	}
	s->r = r;
	s->me = me;
	atomic_init(&s->workers_max, WORKERS_MAX);
	s->ops = ops;
	s->ctx = ctx;
	while (!s->epoch) /* unique per owner term; 0 is "none" on the wire */
		if (getrandom(&s->epoch, sizeof s->epoch, 0) != (ssize_t)sizeof s->epoch)
			s->epoch = (uint32_t)now_ns() ^ (uint32_t)getpid();
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cv, NULL);
	*out = s;
	return 0;
}

void server_listen(struct server *s, struct listener *l)
{
	s->lsn = l;
	listener_route_channel(l, CH_FS, server_accept, s);
}

void server_set_node_gone(struct server *s, void (*fn)(void *arg, uint32_t node_id), void *arg)
{
	s->node_gone = fn;
	s->node_gone_arg = arg;
}

void server_set_reclaim_done(struct server *s, void (*fn)(void *arg, uint32_t node_id), void *arg)
{
	s->reclaim_done = fn;
	s->reclaim_done_arg = arg;
}

void server_set_split(struct server *s, struct dirsplit *split)
{
	s->split = split;
}

void server_set_keep(struct server *s, uint64_t keep_ns)
{
	pthread_mutex_lock(&s->lock);
	s->keep_ns = keep_ns;
	pthread_mutex_unlock(&s->lock);
}

void server_set_workers_max(struct server *s, unsigned n)
{
	atomic_store(&s->workers_max, n < 2 ? 2 : n);
}

int server_clients(struct server *s, const char **names, int max)
{
	int n = 0;
	pthread_mutex_lock(&s->lock);
	for (struct sconn *c = s->conns; c; c = c->next)
		if (c->host && c->fd >= 0) {
			if (n < max)
				names[n] = c->host->name;
			n++;
		}
	pthread_mutex_unlock(&s->lock);
	return n;
}

void server_status_json(struct server *s, struct strbuf *sb)
{
	const char *names[64];
	int n = server_clients(s, names, 64);
	strbuf_printf(sb, "[");
	for (int i = 0; i < n && i < 64; i++) {
		if (i)
			strbuf_printf(sb, ",");
		strbuf_json_str(sb, names[i]);
	}
	strbuf_printf(sb, "]");
}

void server_counters(struct server *s, uint64_t *requests, uint64_t *revocations, uint64_t *stale)
{
	pthread_mutex_lock(&s->lock);
	*requests = s->requests;
	*revocations = s->revocations;
	*stale = s->stale;
	pthread_mutex_unlock(&s->lock);
}

uint32_t server_epoch(const struct server *s)
{
	return s->epoch;
}

void server_last_drop(struct server *s, char *buf, size_t len)
{
	pthread_mutex_lock(&s->lock);
	snprintf(buf, len, "%s", s->last_drop);
	pthread_mutex_unlock(&s->lock);
}

void server_close(struct server *s)
{
	if (!s)
		return;
	if (s->lsn)
		listener_route_channel(s->lsn, CH_FS, NULL, NULL); /* no new ones */
	pthread_mutex_lock(&s->lock);
	s->closing = 1;
	pthread_cond_broadcast(&s->cv); /* parked handles are released now */
	for (struct sconn *c = s->conns; c; c = c->next)
		conn_kill(c);
	while (s->nconns)
		pthread_cond_wait(&s->cv, &s->lock);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cv);
	free(s);
}

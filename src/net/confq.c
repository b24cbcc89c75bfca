/* confq — see confq.h. */
#include "confq.h"
#include "codec.h"
#include "hs.h"
#include "wire.h"

#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct confq {
	const struct cfg_resource *r;
	const struct cfg_host *me;
	struct listener *lsn;
	uint8_t digest[CONFQ_DIGEST];
	pthread_mutex_t lock; /* guards running and closing */
	pthread_cond_t cv;
	int running, closing;
};

struct query {
	struct confq *q;
	int fd;
	char from[64];
};

int confq_digest(const struct cfg_resource *r, uint8_t out[CONFQ_DIGEST])
{
	char *text = cfg_dump_resource(r);
	unsigned n = 0;
	if (!text)
		return -ENOMEM;
	int ok = EVP_Digest(text, strlen(text), out, &n, EVP_sha256(), NULL);
	free(text);
	return ok && n == CONFQ_DIGEST ? 0 : -ENOMEM;
}

/* The handshake settings for the link between me and h: the pair's
 * shared secret if it has one. 0, or -EINVAL with why (an unknown
 * cram-hmac-alg). */
static int link_conf(const struct cfg_resource *r, const struct cfg_host *me, const struct cfg_host *h,
		     struct hs_conf *hc, char *why)
{
	*hc = (struct hs_conf){ .res = r->name, .my_id = me->node_id, .peer_id = h->node_id, .peer_name = h->name,
				.query_only = 1, .timeout_ms = 5000 };
	const char *v = cfg_conn_get(r, me->name, h->name, SECT_NET, "shared-secret");
	if (!v || !*v)
		return 0;
	const char *alg = cfg_conn_get(r, me->name, h->name, SECT_NET, "cram-hmac-alg");
	hc->md = EVP_get_digestbyname(alg ? alg : "sha256");
	if (!hc->md) {
		snprintf(why, 256, "cram-hmac-alg '%s' is not a digest this system knows", alg);
		return -EINVAL;
	}
	hc->secret = v;
	hc->has_secret = 1;
	return 0;
}

static int same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family == AF_INET && b->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6 && b->ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr,
			       16);
	return 0;
}

/* Which host of r the asker says it is (from its HELLO, peeked), and
 * whether it may ask: with a shared secret the handshake proves it, without
 * one it must come from that host's address. NULL with why (told to it). */
static const struct cfg_host *identify(struct query *x, struct hs_conf *hc, char *why)
{
	const struct confq *q = x->q;
	uint8_t b[WIRE_HDR + HELLO_NODE_ID + 4];
	ssize_t n = recv(x->fd, b, sizeof b, MSG_PEEK | MSG_WAITALL);
	if (n != (ssize_t)sizeof b || get_be32(b) != WIRE_MAGIC || get_be16(b + 4) != P_HELLO) {
		snprintf(why, 256, "query from %s: not a dipole node (no HELLO)", x->from);
		return NULL;
	}
	int id = (int)get_be32(b + WIRE_HDR + HELLO_NODE_ID);
	const struct cfg_host *h = NULL;
	for (int i = 0; i < q->r->nhosts; i++)
		if (q->r->hosts[i].node_id == id && &q->r->hosts[i] != q->me)
			h = &q->r->hosts[i];
	if (!h)
		snprintf(why, 256, "query from %s names node-id %d, not another host of %s", x->from, id, q->r->name);
	else if (link_conf(q->r, q->me, h, hc, why))
		h = NULL;
	else if (!hc->has_secret) {
		struct sockaddr_storage peer, want;
		socklen_t pl = sizeof peer;
		unsigned wl;
		if (!h->address || getpeername(x->fd, (struct sockaddr *)&peer, &pl) ||
		    parse_sockaddr(h->address, &want, &wl) || !same_ip(&peer, &want)) {
			snprintf(why, 256, "query from %s claims to be %s, whose address is %s; without a "
				 "shared-secret only that address is answered", x->from, h->name,
				 h->address ? h->address : "not configured");
			h = NULL;
		}
	}
	if (!h)
		hs_refuse(x->fd, why);
	return h;
}

static void answer(struct query *x)
{
	struct hs_conf hc;
	struct pkt_hello peer, mine;
	struct wire_hdr w;
	char why[256];
	int ch = -1;
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(x->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (!identify(x, &hc, why) || hs_handshake(&hc, x->fd, &ch, x->from, &peer, &mine, why))
		return;
	setsockopt(x->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (hs_recv_hdr(x->fd, &w) || w.type != P_CONF_QUERY || w.len)
		return;
	uint8_t b[CONF_INFO_BYTES];
	memcpy(b, x->q->digest, CONFQ_DIGEST);
	put_be64(b + CONFQ_DIGEST, now_realtime_ns());
	(void)hs_send(x->fd, P_CONF_INFO, 0, b, sizeof b);
}

static void *query_main(void *arg)
{
	struct query *x = arg;
	struct confq *q = x->q;
	answer(x);
	close(x->fd);
	free(x);
	pthread_mutex_lock(&q->lock);
	q->running--;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* the listener's accept thread: hand the query to a thread of its own */
static void confq_accept(void *arg, int fd, const char *from)
{
	struct confq *q = arg;
	struct query *x = calloc(1, sizeof *x);
	pthread_t t;
	pthread_attr_t at;
	pthread_mutex_lock(&q->lock);
	if (!x || q->closing || q->running >= CONFQ_MAX) {
		pthread_mutex_unlock(&q->lock);
		free(x);
		close(fd);
		return;
	}
	*x = (struct query){ .q = q, .fd = fd };
	snprintf(x->from, sizeof x->from, "%s", from);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, query_main, x)) {
		close(fd);
		free(x);
	} else {
		q->running++;
	}
	pthread_attr_destroy(&at);
	pthread_mutex_unlock(&q->lock);
}

int confq_serve(struct confq **out, struct listener *l, const struct cfg_resource *r, const struct cfg_host *me)
{
	struct confq *q = calloc(1, sizeof *q);
	if (!q)
		return -ENOMEM;
	*q = (struct confq){ .r = r, .me = me, .lsn = l };
	if (confq_digest(r, q->digest)) {
		free(q);
		return -ENOMEM;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cv, NULL);
	listener_route_channel(l, CH_QUERY, confq_accept, q);
	*out = q;
	return 0;
}

void confq_stop(struct confq *q)
{
	if (!q)
		return;
	listener_route_channel(q->lsn, CH_QUERY, NULL, NULL); /* waits for a running accept */
	pthread_mutex_lock(&q->lock);
	q->closing = 1;
	while (q->running)
		pthread_cond_wait(&q->cv, &q->lock);
	pthread_mutex_unlock(&q->lock);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cv);
	free(q);
}

static int read_info(int fd, struct confq_answer *a, char *why)
{
	struct wire_hdr w;
	uint8_t b[CONF_INFO_BYTES];
	char text[CODEC_REFUSE_MAX + 1];
	uint64_t t0 = now_realtime_ns();
	int rc = hs_send(fd, P_CONF_QUERY, 0, NULL, 0);
	if (!rc)
		rc = hs_recv_hdr(fd, &w);
	if (!rc && w.type == P_REFUSE && !hs_recv_refuse(fd, &w, text)) {
		snprintf(why, 256, "refused: %s", text);
		return -EPROTO;
	}
	if (!rc && (w.type != P_CONF_INFO || w.len != CONF_INFO_BYTES))
		rc = -EPROTO;
	if (!rc)
		rc = read_full(fd, b, sizeof b);
	uint64_t t1 = now_realtime_ns();
	if (rc) {
		snprintf(why, 256, "no answer to the query: %s", rc == -EPROTO ? "unexpected packet" : strerror(-rc));
		return rc;
	}
	memcpy(a->digest, b, CONFQ_DIGEST);
	a->clock_offset_ns = (int64_t)(get_be64(b + CONFQ_DIGEST) - (t0 / 2 + t1 / 2));
	a->clock_error_ns = (t1 - t0) / 2;
	return 0;
}

int confq_ask(const struct cfg_resource *r, const struct cfg_host *me, const struct cfg_host *peer,
	      struct confq_answer *a, char *why)
{
	struct hs_conf hc;
	struct pkt_hello ph, mine;
	int ch = CH_QUERY;
	if (!peer->address || !me->address) {
		snprintf(why, 256, "no address configured");
		return -EINVAL;
	}
	int rc = link_conf(r, me, peer, &hc, why);
	if (rc)
		return rc;
	int fd = hs_dial_from(peer->address, me->address, -1);
	if (fd < 0) {
		snprintf(why, 256, "cannot reach %s: %s", peer->address, strerror(-fd));
		return fd;
	}
	rc = hs_handshake(&hc, fd, &ch, peer->address, &ph, &mine, why);
	if (!rc) {
		struct timeval tv = { .tv_sec = 5 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		rc = read_info(fd, a, why);
	}
	close(fd);
	return rc;
}

/* confq — see confq.h. */
#include "confq.h"
#include "codec.h"
#include "hs.h"
#include "hsauth.h"
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

static void answer(struct query *x)
{
	struct hs_conf hc;
	struct pkt_hello peer, mine;
	struct wire_hdr w;
	char why[256];
	int ch = -1;
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(x->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (!hs_identify(x->fd, x->q->r, x->q->me, x->from, &hc, why))
		return;
	hc.query_only = 1;
	hc.timeout_ms = 5000;
	if (hs_handshake(&hc, x->fd, &ch, x->from, &peer, &mine, why))
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
	int rc = hs_link_conf(r, me, peer, &hc, why);
	if (rc)
		return rc;
	hc.query_only = 1;
	hc.timeout_ms = 5000;
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

/* peer_resize — a peer's part in `dipole resize` (resize.h): P_SIZES on the
 * data channel, ordered with the writes around it. The node running
 * `resize` asks every peer to grow (SZF_ASK, answered with its usable
 * size), grows itself to the smallest usable size, then tells every peer
 * (SZF_SET) and resyncs the new area to it. Growing locally before SZF_SET
 * means a write to the new area from either side reaches a node that has
 * the new size already. */
#include "peer_int.h"
#include "codec.h"
#include "engine.h"
#include "log.h"
#include "resize.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int peer_resize_check(struct peer *p, char *msg)
{
	if (!connected(p) || atomic_load(&p->repl) != RS_ESTABLISHED || atomic_load(&p->peer_disk) != DS_UPTODATE) {
		snprintf(msg, 256, "peer %s is %s, %s, disk %s: resize needs every peer connected and UpToDate with "
			 "no resync running", p->ph->name, conn_state_name((enum conn_state)atomic_load(&p->cstate)),
			 repl_state_name((enum repl_state)atomic_load(&p->repl)),
			 atomic_load(&p->peer_disk) < 0 ? "unknown"
			 : disk_state_name((enum disk_state)atomic_load(&p->peer_disk)));
		return -EBUSY;
	}
	return 0;
}

static int send_sizes(struct peer *p, uint64_t usable, uint64_t size, uint32_t flags)
{
	uint8_t b[SIZES_BYTES];
	codec_encode_sizes(b, &(struct pkt_sizes){ usable, size, flags });
	return send_pkt(p, CH_DATA, P_SIZES, 0, 0, b, sizeof b, NULL, 0);
}

int peer_resize_ask(struct peer *p, uint64_t *usable, char *msg)
{
	pthread_mutex_lock(&p->szlock);
	p->sz_have = 0;
	pthread_mutex_unlock(&p->szlock);
	int rc = send_sizes(p, 0, 0, SZF_ASK);
	if (rc) {
		snprintf(msg, 256, "cannot ask peer %s: %s", p->ph->name, strerror(-rc));
		return -ENOTCONN;
	}
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&p->szlock);
	while (!p->sz_have && connected(p) && rc == 0)
		rc = pthread_cond_timedwait(&p->szcond, &p->szlock, &until);
	int have = p->sz_have;
	*usable = p->sz_usable;
	pthread_mutex_unlock(&p->szlock);
	if (!have) {
		snprintf(msg, 256, "peer %s did not answer the size query (%s)", p->ph->name,
			 connected(p) ? "10 s" : "connection lost");
		return connected(p) ? -ETIMEDOUT : -ENOTCONN;
	}
	if (!*usable) {
		snprintf(msg, 256, "peer %s could not grow its metadata (its log says why)", p->ph->name);
		return -ENOSPC;
	}
	return 0;
}

int peer_resize_set(struct peer *p, uint64_t bytes)
{
	int rc = send_sizes(p, 0, bytes, SZF_SET);
	/* the new area, marked out of sync by the caller: only it is sent */
	if (!rc && engine_oos(p->e, p->slot))
		rs_start(p);
	return rc;
}

int rx_sizes_pkt(struct peer *p, const struct pkt_sizes *k)
{
	struct engine *e = p->e;
	char err[MD_MSG_MAX];

	if (k->flags & SZF_ASK) {
		uint64_t usable = 0;
		if (resize_prepare(e, &usable, err)) {
			log_err("peer %s asked to resize: %s", p->addr, err);
			usable = 0;
		}
		return send_sizes(p, usable, atomic_load(&e->size), 0);
	}
	if (k->flags & SZF_SET) {
		uint64_t old = atomic_load(&e->size);
		if (k->size > old)
			atomic_store(&p->expect_target, 1); /* the sender resyncs the new area here */
		int rc = resize_set(e, k->size, 0);
		if (rc) {
			atomic_store(&p->expect_target, 0);
			set_reason(p, "peer set the device size to %llu bytes, which this node cannot take: %s",
				   (unsigned long long)k->size, strerror(-rc));
			return rc;
		}
		return 0;
	}
	pthread_mutex_lock(&p->szlock);
	p->sz_usable = k->usable;
	p->sz_have = 1;
	pthread_cond_broadcast(&p->szcond);
	pthread_mutex_unlock(&p->szlock);
	return 0;
}

const char *peer_resize_name(struct peer *p)
{
	return p->ph->name;
}

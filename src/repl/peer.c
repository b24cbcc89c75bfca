/* peer — lifecycle and connection: configuration, dialing and accepting, the
 * handshake, the connection thread, teardown, fencing and the admin commands.
 * Part of the peer module: see peer.h and peer_int.h. */
#include "peer_int.h"
#include "decide.h"
#include "evlog.h"
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

/* p->lock held */
static int state_to_locked(struct peer *p, enum state_obj o, _Atomic int *field, int to, const char *why)
{
	int from = atomic_load(field);
	if (from == to)
		return 0;
	if (!state_legal(o, from, to)) {
		if (o == SO_PEER_ROLE || o == SO_PEER_DISK)
			log_warn("peer %s: reported %s %d is not a valid state; ignored (%s)", p->addr,
				 state_obj_name(o), to, why);
		else
			log_err("BUG: peer %s: illegal %s transition %s -> %s refused (%s)", p->addr, state_obj_name(o),
				state_value_name(o, from), state_value_name(o, to), why);
		return -EINVAL;
	}
	atomic_store(field, to);
	evlog_emit(o, p->e->res, p->ph->name, from, to, why);
	return 0;
}

int peer_set_cstate(struct peer *p, enum conn_state to, const char *why)
{
	pthread_mutex_lock(&p->lock);
	int rc = state_to_locked(p, SO_CONN, &p->cstate, (int)to, why);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int peer_set_repl(struct peer *p, enum repl_state to, const char *why)
{
	pthread_mutex_lock(&p->lock);
	int rc = state_to_locked(p, SO_REPL, &p->repl, (int)to, why);
	/* this node's SyncTarget lacks what the resync has still to send: it
	 * is Inconsistent until the resync finishes (rs_main says UpToDate
	 * then), also after a resync that stopped short (this node's disk
	 * failed), where it would otherwise still look UpToDate and serve
	 * reads of old data (disk_errors_resync.sh) */
	if (!rc && to == RS_SYNC_SOURCE && atomic_load(&p->peer_disk) > DS_INCONSISTENT)
		state_to_locked(p, SO_PEER_DISK, &p->peer_disk, DS_INCONSISTENT, "SyncTarget of this node");
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int peer_set_peer_state(struct peer *p, int role, int disk, const char *why)
{
	pthread_mutex_lock(&p->lock);
	int rc = role == PEER_STATE_KEEP ? 0 : state_to_locked(p, SO_PEER_ROLE, &p->peer_role, role, why);
	int rc2 = disk == PEER_STATE_KEEP ? 0 : state_to_locked(p, SO_PEER_DISK, &p->peer_disk, disk, why);
	pthread_mutex_unlock(&p->lock);
	return rc ? rc : rc2;
}

void set_reason(struct peer *p, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&p->lock);
	int changed = strcmp(buf, p->reason) != 0;
	snprintf(p->reason, sizeof p->reason, "%s", buf);
	pthread_mutex_unlock(&p->lock);
	if (changed && buf[0])
		log_warn("peer %s: %s", p->addr, buf);
}

/* -------------------------------------------------------- receiving */

void disconnect_sockets(struct peer *p)
{
	pthread_mutex_lock(&p->lock);
	if (p->dfd >= 0)
		shutdown(p->dfd, SHUT_RDWR);
	if (p->mfd >= 0)
		shutdown(p->mfd, SHUT_RDWR);
	pthread_mutex_unlock(&p->lock);
}

/* -------------------------------------------------------- handshake */

/* The generations this node shows peer p: its own, with p's slot's bitmap
 * generation in the bitmap place. */
_Static_assert((int)UUID_COUNT == HELLO_UUIDS && (int)UUID_COUNT == (int)G_COUNT, "a HELLO carries every generation kept");

void hello_uuids(struct peer *p, uint64_t *u)
{
	struct engine *e = p->e;
	pthread_mutex_lock(&e->lock);
	for (int i = 0; i < UUID_COUNT; i++)
		u[i] = e->sb.uuid[i];
	u[UUID_BITMAP] = e->sb.peer[p->slot].bitmap_uuid;
	pthread_mutex_unlock(&e->lock);
}

/* This node is an Inconsistent SyncTarget of p whose resync was interrupted:
 * its bitmap UUID for p names where the resync resumes from (HF_RESUMABLE). */
static int resumable(struct peer *p)
{
	struct engine *e = p->e;
	pthread_mutex_lock(&e->lock);
	int r = (e->sb.peer[p->slot].flags & MDP_SYNC_TARGET) && e->sb.peer[p->slot].bitmap_uuid &&
		atomic_load(&e->dstate) == DS_INCONSISTENT;
	pthread_mutex_unlock(&e->lock);
	return r;
}

/* This node's state in its HELLO (hs.h fills the rest). */
static void hello_fill(void *arg, struct pkt_hello *hl)
{
	struct peer *p = arg;
	struct engine *e = p->e;
	hl->role = (uint8_t)atomic_load(&e->role);
	hl->disk = (uint8_t)atomic_load(&e->dstate);
	void *src = engine_sync_source(e);
	hl->flags |= (e->crashed_primary ? HF_CRASHED_PRIMARY : 0) |
		     (atomic_load(&p->discard_my_data) ? HF_DISCARD_MY_DATA : 0) |
		     (engine_unsure(e, p->slot) ? HF_UNSURE : 0) | (third_primary(p) ? HF_THIRD_PRIMARY : 0) |
		     (src && src != p ? HF_BUSY_TARGET : 0) | (resumable(p) ? HF_RESUMABLE : 0) |
		     (atomic_load(&e->fs_owner) ? HF_FS_OWNER : 0);
	hl->size = atomic_load(&e->size); /* now, not at peer start */
	hl->gen_time = e->sb.gen_time;
	hl->oos = engine_oos(e, p->slot);
	hello_uuids(p, hl->uuid);
	if (hl->channel == CH_DATA)
		hl->flags |= HF_HISTORY;
	hl->stamp = atomic_load(&e->applied_stamp);
	hl->stamp_from = atomic_load(&e->applied_from);
}

int handshake(struct peer *p, int fd, int *chp, const char *from, struct pkt_hello *peer_hello, struct pkt_hello *mine)
{
	char why[256];
	int rc = hs_handshake(&p->hs, fd, chp, from, peer_hello, mine, why);
	if (rc)
		set_reason(p, "%s", why);
	return rc;
}

/* --------------------------------------------------- connection setup */

static int dial(struct peer *p)
{
	return hs_dial(p->ph->address, p->wake[0]);
}


/* Every inbound connection from the peer's node-id (and, the default route
 * of listener.h, anything unidentified) is handshaken here, on the listener
 * thread, whatever the state: a scanner or a confused client is dropped with
 * a reason naming its address; the real peer's channels are handed to
 * conn_main. If the peer dials while we think we are connected, it
 * restarted: the old connection is dropped in favour of the new one. */
static void peer_inbound(void *arg, int fd, const char *from)
{
	struct peer *p = arg;
	struct pkt_hello hello, mine;
	int ch = -1;

	if (atomic_load(&p->stopping)) {
		close(fd);
		return;
	}
	hs_tune(fd);
	{
		if (handshake(p, fd, &ch, from, &hello, &mine)) {
			close(fd);
			return;
		}
		if (atomic_load(&p->admin_down)) {
			hs_refuse(fd, "disconnected by the administrator on this node");
			close(fd);
			return;
		}
		if (p->dialer) {
			hs_refuse(fd, "this node has the lower node-id and dials; do not dial it");
			set_reason(p, "%s dialed, but the node with the lower node-id dials; dropped", from);
			close(fd);
			return;
		}
		pthread_mutex_lock(&p->inq_lock);
		if (ch == CH_DATA) {
			if (p->in_dfd >= 0)
				close(p->in_dfd);
			if (p->in_mfd >= 0)
				close(p->in_mfd);
			p->in_dfd = fd;
			p->in_mfd = -1;
			p->in_hello = hello;
			p->in_mine = mine;
		} else if (p->in_dfd >= 0 && p->in_mfd < 0) {
			p->in_mfd = fd;
			pthread_cond_broadcast(&p->inq_cond);
		} else {
			close(fd);
		}
		int replace = ch == CH_DATA && connected(p);
		pthread_mutex_unlock(&p->inq_lock);
		if (replace) {
			set_reason(p, "peer dialed again: it restarted; replacing the old connection");
			disconnect_sockets(p);
		}
	}
}

static int establish(struct peer *p, struct pkt_hello *hello, struct pkt_hello *my_hello)
{
	struct pkt_hello mh, mine;
	int dfd, mfd;

	if (p->dialer) {
		if (atomic_load(&p->admin_down))
			return -ECANCELED;
		dfd = dial(p);
		if (dfd < 0)
			return dfd;
		char from[96];
		snprintf(from, sizeof from, "%s", p->ph->address);
		int ch = CH_DATA;
		if (handshake(p, dfd, &ch, from, hello, my_hello)) {
			close(dfd);
			return -EPROTO;
		}
		mfd = dial(p);
		ch = CH_META;
		if (mfd < 0 || handshake(p, mfd, &ch, from, &mh, &mine)) {
			close(dfd);
			if (mfd >= 0)
				close(mfd);
			return -EPROTO;
		}
	} else {
		pthread_mutex_lock(&p->inq_lock);
		while ((p->in_dfd < 0 || p->in_mfd < 0) && !atomic_load(&p->stopping) && !atomic_load(&p->admin_down))
			pthread_cond_wait(&p->inq_cond, &p->inq_lock);
		dfd = p->in_dfd;
		mfd = p->in_mfd;
		p->in_dfd = p->in_mfd = -1;
		*hello = p->in_hello;
		*my_hello = p->in_mine;
		pthread_mutex_unlock(&p->inq_lock);
		if (atomic_load(&p->stopping) || atomic_load(&p->admin_down) || dfd < 0 || mfd < 0) {
			if (dfd >= 0)
				close(dfd);
			if (mfd >= 0)
				close(mfd);
			return -ECANCELED;
		}
	}
	/* both sides confirm they took this connection before deciding anything
	 * from the HELLOs: an acceptor that refused (administratively down,
	 * replaced) must not leave the dialer deciding alone */
	struct wire_hdr w;
	char text[CODEC_REFUSE_MAX + 1];
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(dfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	int rc = hs_send(dfd, P_READY, 0, NULL, 0);
	if (!rc)
		rc = hs_recv_hdr(dfd, &w);
	if (!rc && w.type == P_REFUSE && !hs_recv_refuse(dfd, &w, text)) {
		set_reason(p, "refused by %s: %s", p->ph->name, text);
		rc = -ECONNREFUSED;
	} else if (!rc && (w.type != P_READY || w.len)) {
		rc = -EPROTO;
	}
	tv.tv_sec = 0;
	setsockopt(dfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (rc) {
		close(dfd);
		close(mfd);
		return rc == -ECONNREFUSED ? -EPROTO : rc;
	}
	pthread_mutex_lock(&p->dsend);
	pthread_mutex_lock(&p->msend);
	pthread_mutex_lock(&p->lock);
	p->dfd = dfd;
	p->mfd = mfd;
	/* sequence numbers are per connection */
	pthread_mutex_lock(&p->hlock);
	memset(p->hist, 0, sizeof p->hist);
	pthread_mutex_unlock(&p->hlock);
	atomic_store(&p->my_seq, 0);
	atomic_store(&p->applied_seq, 0);
	atomic_store(&p->epoch, 1);
	atomic_store(&p->epoch_acked, 0);
	atomic_store(&p->rx_epoch, 0);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&p->msend);
	pthread_mutex_unlock(&p->dsend);
	return 0;
}

int peer_fence(struct peer *p, char *why, size_t len)
{
	atomic_store(&p->fencing_now, 1);
	int rc = handler_run(p->r, "fence-peer", p->me, p->ph, 1);
	atomic_store(&p->fencing_now, 0);
	const char *what = rc == 3 ? "peer is Inconsistent" : rc == 4 ? "peer was outdated" : rc == 5 ? "peer is down"
			 : rc == 7 ? "peer was fenced (STONITH)" : NULL;
	if (!what) {
		snprintf(why, len, "fence-peer handler %s (exit %d)", rc == -2 ? "is not configured" : "did not fence the peer",
			 rc);
		return 0;
	}
	/* an Outdated peer cannot have carried on: startup may promote this
	 * node after outdated-wfc-timeout (docs/startup.md) */
	if (rc == 4)
		engine_set_md_flag(p->e, MDF_PEER_OUTDATED, 1);
	snprintf(why, len, "fence-peer handler exited %d: %s", rc, what);
	atomic_fetch_add(&p->fenced, 1);
	return 1;
}

/* A Primary lost its peer, fencing configured: the handler decides
 * whether I/O resumes (peer_fence) or stays frozen. */
static void fence_peer(struct peer *p)
{
	char why[160], msg[256];
	if (peer_fence(p, why, sizeof why)) {
		engine_resume(p->e, why);
		return;
	}
	snprintf(msg, sizeof msg, "%s; I/O stays frozen until the peer reconnects or 'dipole resume-io %s'", why,
		 p->e->res);
	engine_suspend(p->e, msg);
	set_reason(p, "%s", msg);
}

/* An established link is down (teardown): the degraded mark, durable
 * bitmap marks, fencing or a new generation for a Primary, and the
 * comparison due with the other Secondaries when the Primary was lost. */
static void link_lost(struct peer *p, int hold, int by_quorum, int lost_primary)
{
	p->established = 0;
	/* no disk peer left: this node is alone (degraded) from now on;
	 * a shutdown keeps the mark: the peer outlives this node */
	int alone = !atomic_load(&p->stopping);
	for (int i = 0; alone && i < p->e->npeers; i++)
		if (sibling(p->e, i) != p && peer_is_connected(sibling(p->e, i)))
			alone = 0;
	if (alone)
		engine_set_md_flag(p->e, MDF_CONNECTED_IND, 0);
	/* what failed to replicate is marked: make the marks durable */
	engine_save_bitmap(p->e);
	disk_flush(p->e->disk);
	if (by_quorum) {
		/* the quorum rules decide whether and when this node goes on */
	} else if (atomic_load(&p->e->role) == ROLE_PRIMARY && !atomic_load(&p->stopping)) {
		if (p->fencing)
			fence_peer(p);
		else if (hold)
			log_err("peer %s: lost while both nodes were Primary and there is neither fencing nor "
				"quorum: by the documented rule the lower node-id (%s) continues and this node's "
				"I/O stays frozen until the peer reconnects or 'dipole resume-io %s'", p->addr,
				p->ph->name, p->e->res);
		else if (p->allow_two && atomic_load(&p->peer_was_primary))
			log_err("peer %s: lost while both nodes were Primary and there is neither fencing nor "
				"quorum: by the documented rule this node (lower node-id) continues; the peer's "
				"I/O is frozen until they reconnect", p->addr);
		/* (several peers: a new generation starts when a write
		 * completes without this one, see engine.c) */
		if ((!hold || !engine_is_suspended(p->e)) && p->e->npeers == 1)
			engine_new_generation(p->e, 1u << p->slot, "Primary lost its peer");
	}
	if (lost_primary)
		kick_others(p, "the Primary was lost");
}

static void teardown(struct peer *p)
{
	/* A Secondary that lost its Primary compares data again with the other
	 * Secondaries, which may have more or less of its writes (below). The
	 * comparison is marked due before this link counts as down: in
	 * between, `primary` saw neither a connected Primary nor a comparison
	 * due, and promoted this node before it compared (four_disks.sh logs:
	 * "role Secondary -> Primary" 1 ms after the loss). Only marked here:
	 * a handshake started now would still see this Primary connected. */
	int lost_primary = p->established && atomic_load(&p->peer_was_primary) &&
			   atomic_load(&p->e->role) != ROLE_PRIMARY && !atomic_load(&p->stopping);
	if (lost_primary)
		mark_compare_due(p);
	/* Recorded before the link counts as down, for the same reason: the
	 * write policy reads "connected, or Primary when it was lost" (yields
	 * in peer_io.c). Recorded after, a write failing in between saw
	 * neither, completed with only the local copy while the two Primaries
	 * were apart, and the resync from the lower node-id then overwrote it
	 * on this node too (dual_primary_window.sh, docs/failures.md). */
	if (p->established)
		atomic_store(&p->primary_at_loss, atomic_load(&p->e->role) == ROLE_PRIMARY);
	if (atomic_load(&p->stopping) || atomic_load(&p->admin_down))
		peer_set_cstate(p, CS_DISCONNECTING, atomic_load(&p->stopping) ? "shutting down" : "disconnect");
	else
		peer_set_cstate(p, CS_CONNECTING, "connection lost");
	disconnect_sockets(p);
	if (p->established && !atomic_load(&p->stopping))
		test_pause("teardown");
	rs_stop(p);
	if (p->meta_running) {
		pthread_join(p->meta_thr, NULL);
		p->meta_running = 0;
	}
	/* the write policy decides, before the writes in flight fail, whether
	 * writes wait from now on (it suspends I/O itself then) */
	int hold = 0, by_quorum = 0;
	if (p->established)
		atomic_store(&p->lease_until_ns, 0); /* its vote is gone with the link */
	if (p->established && !atomic_load(&p->stopping)) {
		struct replica_view v;
		peer_view(p, &v);
		hold = engine_replica_lost(p->e, &v, &by_quorum) != WV_COMPLETE;
	}
	pending_fail_all(p);
	if (p->established)
		link_lost(p, hold, by_quorum, lost_primary);
	/* This node was SyncTarget of p and that resync stopped: the peers
	 * that deferred its resync because of it ("SyncTarget of another
	 * peer") must be asked again now, not when it finishes — it never
	 * will (found in four_disks.sh: d left Inconsistent for minutes while
	 * the Primary b had deferred it). */
	if (engine_sync_target_abort(p->e, p) && !atomic_load(&p->stopping))
		kick_others(p, "this node's resync stopped");
	atomic_store(&p->await_peer_bm, 0);
	atomic_store(&p->sync_pending, 0);
	pthread_mutex_lock(&p->dsend);
	pthread_mutex_lock(&p->msend);
	pthread_mutex_lock(&p->lock);
	if (p->dfd >= 0)
		close(p->dfd);
	if (p->mfd >= 0)
		close(p->mfd);
	p->dfd = p->mfd = -1;
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&p->msend);
	pthread_mutex_unlock(&p->dsend);
	peer_set_repl(p, RS_OFF, "connection closed");
	peer_set_peer_state(p, -1, -1, "connection closed");
	atomic_store(&p->peer_fs_owner, 0);
	atomic_store(&p->peer_third_primary, 0);
	engine_peer_changed(p->e);
	if (!atomic_load(&p->stopping))
		third_primary_changed(p->e);
}

static void *conn_main(void *arg)
{
	pthread_setname_np(pthread_self(), "dp-peer-rx"); /* perf and top show what it is */
	struct peer *p = arg;
	struct pkt_hello hello, mine;
	int backoff = 100;

	while (!atomic_load(&p->stopping)) {
		if (atomic_load(&p->admin_down)) {
			peer_set_cstate(p, CS_STANDALONE, "disconnected by the administrator or refused by state");
			pthread_mutex_lock(&p->admin_lock);
			while (atomic_load(&p->admin_down) && !atomic_load(&p->stopping))
				pthread_cond_wait(&p->admin_cond, &p->admin_lock);
			pthread_mutex_unlock(&p->admin_lock);
			backoff = 100;
			continue;
		}
		peer_set_cstate(p, CS_CONNECTING, "connecting");
		int rc = establish(p, &hello, &mine);
		if (rc) {
			if (rc == -ECANCELED && atomic_load(&p->stopping))
				break;
			if (rc == -ECANCELED)
				continue;
			if (p->dialer && rc != -EPROTO)
				set_reason(p, "cannot connect to %s: %s; retrying", p->ph->address, strerror(-rc));
			/* back off: 0.1 s doubling up to connect-int */
			struct pollfd pf = { p->wake[0], POLLIN, 0 };
			poll(&pf, 1, backoff);
			backoff = backoff * 2 > p->connect_int_ms ? p->connect_int_ms : backoff * 2;
			continue;
		}
		backoff = 100;
		peer_set_cstate(p, CS_CONNECTED, "handshake done");
		if ((rc = agree(p, &hello, &mine))) {
			teardown(p);
			if (atomic_load(&p->stopping))
				break;
			if (rc == -EAGAIN)
				continue; /* stale HELLO: handshake again */
			if (rc == -EALREADY) {
				/* a third node's role keeps these two apart: try again later */
				struct pollfd pf = { p->wake[0], POLLIN, 0 };
				poll(&pf, 1, p->connect_int_ms);
				continue;
			}
			/* a refusal by state (split brain, unrelated, two primaries) does
			 * not heal by itself: StandAlone until `dipole connect` */
			atomic_store(&p->admin_down, 1);
			continue;
		}
		/* remembered for the next startup: it was not alone, so the peer
		 * may carry on after this node goes (docs/startup.md) */
		engine_set_md_flag(p->e, MDF_CONNECTED_IND, 1);
		engine_set_md_flag(p->e, MDF_PEER_OUTDATED, 0);
		if (pthread_create(&p->meta_thr, NULL, meta_main, p) == 0)
			p->meta_running = 1;
		data_loop(p);
		teardown(p);
		if (!atomic_load(&p->stopping))
			log_warn("peer %s: connection lost; writes are tracked in the bitmap until it returns", p->addr);
	}
	peer_set_cstate(p, CS_STANDALONE, "stopped");
	return NULL;
}

/* ------------------------------------------------------------ public */

static int host_node_id(const char *name, void *arg)
{
	const struct cfg_resource *r = arg;
	for (int i = 0; i < r->nhosts; i++)
		if (!strcmp(r->hosts[i].name, name))
			return r->hosts[i].node_id;
	return -1;
}

/* net options of the pair me-ph: its connection section's, else the resource's */
static int conn_int(const struct cfg_resource *r, const struct cfg_host *me, const struct cfg_host *ph,
		    const char *key, int def)
{
	const char *v = cfg_conn_get(r, me->name, ph->name, SECT_NET, key);
	long x;
	return v && !parse_int(v, 0, 1000000, &x) ? (int)x : def;
}

static int conn_bool(const struct cfg_resource *r, const struct cfg_host *me, const struct cfg_host *ph,
		     const char *key)
{
	const char *v = cfg_conn_get(r, me->name, ph->name, SECT_NET, key);
	return v && strcmp(v, "no") != 0;
}

/* A resync rate option's value in bytes/s (NULL or unparsable: 0); DRBD
 * rates without a unit are KiB/s (drbd.conf(5)). */
static uint64_t drbd_rate(const char *v)
{
	uint64_t rate = 0;
	if (!v || parse_size(v, &rate))
		return 0;
	return rate && strspn(v, "0123456789") == strlen(v) ? rate * 1024 : rate;
}

/* The connection's net section: protocol, two Primaries, fencing,
 * authentication. -1 with err set on a value dipole cannot run with. */
static int peer_conf_net(struct peer *p, char *err)
{
	const struct cfg_resource *r = p->r;
	const struct cfg_host *me = p->me, *ph = p->ph;
	const char *v;

	v = cfg_conn_get(r, me->name, ph->name, SECT_NET, "protocol");
	p->protocol = v ? v[0] : 'C';
	p->allow_two = conn_bool(r, me, ph, "allow-two-primaries");
	if (p->allow_two && p->protocol != 'C') {
		snprintf(err, 256, "allow-two-primaries needs protocol C (as with DRBD): with %c a write could complete "
			 "on one Primary that the other never sees", p->protocol);
		return -1;
	}
	if (((v = cfg_conn_get(r, me->name, ph->name, SECT_NET, "fencing")) ||
	     (v = cfg_conn_get(r, me->name, ph->name, SECT_DISK, "fencing"))) && strcmp(v, "dont-care"))
		p->fencing = 1;
	snprintf(p->hold_reason, sizeof p->hold_reason, "lost peer %s while both were Primary (no fencing, no "
		 "quorum): the lower node-id (%s) continues; I/O here is frozen until it reconnects or 'dipole "
		 "resume-io %s'", ph->name, ph->name, p->e->res);
	v = cfg_conn_get(r, me->name, ph->name, SECT_NET, "shared-secret");
	if (v && *v) {
		snprintf(p->secret, sizeof p->secret, "%s", v);
		p->has_secret = 1;
		const char *alg = cfg_conn_get(r, me->name, ph->name, SECT_NET, "cram-hmac-alg");
		p->md = EVP_get_digestbyname(alg ? alg : "sha256");
		if (!p->md) {
			snprintf(err, 256, "cram-hmac-alg '%s' is not a digest this system knows (try sha256)", alg);
			return -1;
		}
	} else {
		log_warn("no shared-secret for resource %s: peers are not authenticated", r->name);
	}

	return 0;
}

/* Timers (DRBD's units) and the split-brain policies. */
static int peer_conf_timers(struct peer *p, char *err)
{
	const struct cfg_resource *r = p->r;
	const struct cfg_host *me = p->me, *ph = p->ph;
	const char *v;

	/* DRBD units: connect-int and ping-int in seconds, ping-timeout in 0.1 s;
	 * pings every second where failover can happen (cfg_ping_ms) */
	p->connect_int_ms = conn_int(r, me, ph, "connect-int", 10) * 1000;
	p->ping_int_ms = cfg_ping_ms(r, conn_int(r, me, ph, "ping-int", 10) * 1000);
	p->ping_timeout_ms = conn_int(r, me, ph, "ping-timeout", 5) * 100;
	p->lease_ns = ((uint64_t)p->ping_int_ms + (uint64_t)p->ping_timeout_ms) * 1000000;
	if (p->ping_int_ms < conn_int(r, me, ph, "ping-int", 10) * 1000)
		log_info("peer %s: a ping every %d ms, not every ping-int: a survivor may take over here (quorum or "
			 "fencing), and waits out a lease of %llu ms", ph->name, p->ping_int_ms,
			 (unsigned long long)(p->lease_ns / 1000000));
	/* DRBD: timeout in 0.1 s (default 6 s), times ko-count when set */
	p->timeout_ms = conn_int(r, me, ph, "timeout", 60) * 100;
	if (conn_int(r, me, ph, "ko-count", 0) > 0)
		p->timeout_ms *= conn_int(r, me, ph, "ko-count", 0);
	static const char *const sbk[3] = { "after-sb-0pri", "after-sb-1pri", "after-sb-2pri" };
	enum splitbrain_rule *sbr[3] = { &p->splitbrain.p0, &p->splitbrain.p1, &p->splitbrain.p2 };
	p->splitbrain.discard_node_id = -1;
	for (int i = 0; i < 3; i++) {
		v = cfg_conn_get(r, me->name, ph->name, SECT_NET, sbk[i]);
		if (splitbrain_rule_parse(i, v, sbr[i], &p->splitbrain.discard_node_id, host_node_id, (void *)r)) {
			snprintf(err, 256, "%s %s: not a policy dipole knows here (see docs/split-brain.md)", sbk[i], v);
			return -1;
		}
	}
	return 0;
}

/* Resync and verify: rates, the handshake's settings, digests. */
static int peer_conf_sync(struct peer *p, char *err)
{
	struct engine *e = p->e;
	const struct cfg_resource *r = p->r;
	const struct cfg_host *me = p->me, *ph = p->ph;
	const char *v;

	if ((v = cfg_conn_get(r, me->name, ph->name, SECT_DISK, "c-max-rate")) ||
	    (v = cfg_conn_get(r, me->name, ph->name, SECT_DISK, "resync-rate")))
		p->rate = drbd_rate(v);
	p->min_rate = drbd_rate(cfg_conn_get(r, me->name, ph->name, SECT_DISK, "c-min-rate"));
	p->dialer = me->node_id < ph->node_id;
	p->hs = (struct hs_conf){ .res = e->res, .my_id = me->node_id, .peer_id = ph->node_id, .peer_name = ph->name,
				  .size = e->size, .protocol = p->protocol, .allow_two = p->allow_two,
				  .secret = p->secret, .has_secret = p->has_secret, .md = p->md,
				  .timeout_ms = p->timeout_ms, .fill = hello_fill, .arg = p };
	v = cfg_conn_get(r, me->name, ph->name, SECT_NET, "csums-alg");
	if (v && (p->has_csums = 1) && strcmp(v, "crc32c") && !(p->cmd = EVP_get_digestbyname(v))) {
		snprintf(err, 256, "csums-alg '%s' is not a digest this system knows (try sha256 or crc32c)", v);
		return -1;
	}
	if (p->has_csums && !(p->need = calloc((e->bm_bits + 63) / 64, sizeof *p->need))) {
		snprintf(err, 256, "out of memory for the checksum bitmap");
		return -1;
	}
	v = cfg_conn_get(r, me->name, ph->name, SECT_NET, "verify-alg");
	if (v && strcmp(v, "crc32c") && !(p->vmd = EVP_get_digestbyname(v))) {
		snprintf(err, 256, "verify-alg '%s' is not a digest this system knows (try sha256 or crc32c)", v);
		return -1;
	}
	return 0;
}

static void peer_locks_init(struct peer *p)
{
	p->dfd = p->mfd = -1;
	p->in_dfd = p->in_mfd = -1;
	pthread_mutex_init(&p->inq_lock, NULL);
	pthread_mutex_init(&p->szlock, NULL);
	pthread_cond_init(&p->szcond, NULL);
	pthread_cond_init(&p->inq_cond, NULL);
	p->peer_role = p->peer_disk = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->admin_lock, NULL);
	pthread_cond_init(&p->admin_cond, NULL);
	pthread_mutex_init(&p->dsend, NULL);
	pthread_mutex_init(&p->msend, NULL);
	pthread_mutex_init(&p->plock, NULL);
	pthread_cond_init(&p->pcond, NULL);
	/* writers first: a resync chunk must not starve behind a stream of writes */
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&p->sync_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&p->rslock, NULL);
	pthread_mutex_init(&p->rsctl, NULL);
	pthread_mutex_init(&p->hlock, NULL);
	pthread_cond_init(&p->hcond, NULL);
	pthread_cond_init(&p->rscond, NULL);
	for (int i = PEND_MAX - 1; i >= 0; i--) {
		pthread_mutex_init(&p->pend[i].m, NULL);
		pthread_cond_init(&p->pend[i].c, NULL);
		p->pend[i].next = p->pfree;
		p->pfree = &p->pend[i];
	}
}

static struct peer *peer_new(struct engine *e, const struct cfg_resource *r, const struct cfg_host *me,
			     const struct cfg_host *ph, char *err)
{
	struct peer *p = calloc(1, sizeof *p);

	if (!p)
		return NULL;
	p->e = e;
	p->r = r;
	p->me = me;
	p->ph = ph;
	snprintf(p->addr, sizeof p->addr, "%s (%s)", ph->name, ph->address);
	if (peer_conf_net(p, err) || peer_conf_timers(p, err) || peer_conf_sync(p, err)) {
		free(p->need);
		free(p);
		return NULL;
	}
	peer_locks_init(p);
	if (pipe2(p->wake, O_CLOEXEC) < 0) {
		snprintf(err, 256, "cannot create a pipe: %s", strerror(errno));
		peer_stop(p);
		return NULL;
	}
	return p;
}

int peer_start(struct peer **out, struct engine *e, const struct cfg_resource *r, const struct cfg_host *me,
	       const struct cfg_host *ph, struct listener *l, char *err)
{
	struct peer *p = peer_new(e, r, me, ph, err);
	char why[MD_MSG_MAX];

	if (!p)
		return -EINVAL;
	if ((p->slot = engine_bind_slot(e, ph->node_id, why)) < 0) {
		snprintf(err, 256, "%s", why);
		p->slot = 0;
		peer_stop(p);
		return -ENOSPC;
	}
	listener_route(l, ph->node_id, peer_inbound, p);
	listener_route(l, -1, peer_inbound, p); /* unidentified callers get this peer's refusal */
	peer_set_cstate(p, CS_CONNECTING, "started");
	if (pthread_create(&p->thr, NULL, conn_main, p)) {
		snprintf(err, 256, "cannot start the peer thread");
		peer_stop(p);
		return -EAGAIN;
	}
	*out = p;
	return 0;
}

void peer_stop(struct peer *p)
{
	if (!p)
		return;
	atomic_store(&p->stopping, 1);
	if (p->wake[1] > 0)
		(void)!write(p->wake[1], "x", 1);
	disconnect_sockets(p);
	pthread_mutex_lock(&p->inq_lock);
	pthread_cond_broadcast(&p->inq_cond);
	pthread_mutex_unlock(&p->inq_lock);
	pthread_mutex_lock(&p->admin_lock);
	pthread_cond_broadcast(&p->admin_cond);
	pthread_mutex_unlock(&p->admin_lock);
	if (p->vf_joinable)
		pthread_join(p->vf_thr, NULL);
	if (p->thr)
		pthread_join(p->thr, NULL);
	if (p->in_dfd >= 0)
		close(p->in_dfd);
	if (p->in_mfd >= 0)
		close(p->in_mfd);
	if (p->wake[0] > 0) {
		close(p->wake[0]);
		close(p->wake[1]);
	}
	free(p->rbuf);
	free(p->scratch);
	free(p->need);
	free(p);
}

void peer_disconnect(struct peer *p)
{
	pthread_mutex_lock(&p->admin_lock);
	atomic_store(&p->admin_down, 1);
	pthread_mutex_unlock(&p->admin_lock);
	set_reason(p, "disconnected by the administrator");
	disconnect_sockets(p);
	pthread_mutex_lock(&p->inq_lock);
	pthread_cond_broadcast(&p->inq_cond);
	pthread_mutex_unlock(&p->inq_lock);
}

int peer_is_connected(struct peer *p)
{
	return connected(p);
}

int peer_is_standalone(struct peer *p)
{
	return atomic_load(&p->cstate) == CS_STANDALONE;
}

int peer_behind(struct peer *p)
{
	/* expect_target first: it is cleared only after the target state is set */
	if (atomic_load(&p->expect_target))
		return 1;
	int r = atomic_load(&p->repl);
	return engine_sync_source(p->e) == p || r == RS_STARTING_SYNC_T || r == RS_SYNC_TARGET;
}

const char *peer_name(struct peer *p)
{
	return p->ph->name;
}

int peer_invalidate(struct peer *p, char *msg)
{
	struct engine *e = p->e;
	if (!connected(p) || atomic_load(&p->peer_disk) != DS_UPTODATE || atomic_load(&p->repl) != RS_ESTABLISHED) {
		snprintf(msg, 256, "refusing to invalidate: it needs a connected UpToDate peer with no resync "
			 "running to sync from (peer is %s, %s)", conn_state_name((enum conn_state)atomic_load(&p->cstate)),
			 repl_state_name((enum repl_state)atomic_load(&p->repl)));
		return -EBUSY;
	}
	/* (a Primary may invalidate too: it reads from the peer during the sync) */
	atomic_store(&p->expect_target, 1);
	pthread_rwlock_wrlock(&p->sync_lock);
	int rc = engine_sync_target_begin(e, p, p->slot, 1, 0);
	pthread_rwlock_unlock(&p->sync_lock);
	if (rc) {
		snprintf(msg, 256, rc == -EBUSY ? "refusing to invalidate: a resync to this node is running"
						: "cannot write metadata: %s", strerror(-rc));
		return rc;
	}
	log_warn("invalidated: local data is Inconsistent until the full sync from %s completes", p->ph->name);
	send_state(p);
	return 0;
}

void peer_connect(struct peer *p, int discard_my_data)
{
	if (discard_my_data)
		atomic_store(&p->discard_my_data, 1);
	pthread_mutex_lock(&p->admin_lock);
	atomic_store(&p->admin_down, 0);
	pthread_cond_broadcast(&p->admin_cond);
	pthread_mutex_unlock(&p->admin_lock);
}

void peer_state_changed(struct peer *p)
{
	if (!connected(p))
		return;
	send_state(p);
	/* forced UpToDate while connected to an Inconsistent peer: full sync */
	if (atomic_load(&p->e->dstate) == DS_UPTODATE && atomic_load(&p->peer_disk) == DS_INCONSISTENT &&
	    atomic_load(&p->repl) == RS_ESTABLISHED && may_source(p)) {
		engine_mark_all_oos(p->e, p->slot);
		rs_start(p);
	}
}

int peer_may_promote(struct peer *p, char *msg)
{
	uint64_t k = atomic_load(&p->recheck_ns);
	/* (a peer that does not come back within a lease or two is gone) */
	if (k && now_ns() - k < 2 * p->lease_ns + 2000000000ull && !atomic_load(&p->admin_down)) {
		snprintf(msg, 256, "refusing to become Primary: comparing data with %s first (the Primary was lost "
			 "and either may have more of its writes); try again in a moment", p->ph->name);
		return -EBUSY;
	}
	/* a partial partition: p still sees a Primary this node does not */
	if (connected(p) && atomic_load(&p->peer_third_primary) && !p->allow_two) {
		snprintf(msg, 256, "refusing to become Primary: peer %s is connected to another node that is "
			 "Primary, and allow-two-primaries is not set; demote that one first (if it was just "
			 "demoted, %s is being told: try again in a moment)", p->ph->name, p->ph->name);
		return -EBUSY;
	}
	if (connected(p) && atomic_load(&p->peer_role) == ROLE_PRIMARY && !p->allow_two) {
		snprintf(msg, 256, "refusing to become Primary: peer %s is Primary and allow-two-primaries "
			 "is not set", p->ph->name);
		return -EBUSY;
	}
	return 0;
}

void peer_serve_fd(struct engine *e, const struct cfg_resource *r, const struct cfg_host *me,
		   const struct cfg_host *ph, int fd)
{
	char err[256];
	struct pkt_hello hello, mine;
	int ch = -1;
	struct peer *p = peer_new(e, r, me, ph, err);

	if (!p) {
		close(fd);
		return;
	}
	if (handshake(p, fd, &ch, "fuzz", &hello, &mine) == 0 && ch == CH_DATA) {
		p->dfd = fd;
		p->no_confirm = 1;
		peer_set_cstate(p, CS_CONNECTING, "fuzzing: accepted");
		peer_set_cstate(p, CS_CONNECTED, "fuzzing: handshake done");
		if (agree(p, &hello, &mine) == 0)
			data_loop(p);
		teardown(p); /* closes fd */
	} else {
		close(fd);
	}
	atomic_store(&p->stopping, 1);
	peer_stop(p);
}

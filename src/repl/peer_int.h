/* peer_int — what the files of the peer module share (peer.c, peer_io.c,
 * peer_resync.c, peer_recv.c, peer_agree.c, peer_status.c): struct peer and
 * the functions one file calls in another. Not for use outside src/repl/peer*.
 *
 * Locking. Each lock is described at its field below. The order, outermost
 * first (a thread holding one may take only those after it):
 *
 *   e->fanout -> sync_lock -> dsend -> msend -> lock -> hlock
 *   sync_lock -> e->lock          (resync begin/done, under the write side)
 *   rsctl -> rslock, rsctl -> lock   pending.m, plock, inq_lock, admin_lock: leaves
 *
 * e->fanout (engine.h) is held by the engine around write_begin of every
 * replica; the engine calls no replica op with e->lock held except
 * may_promote, which takes no lock. The write policy and quorum.c call in
 * (view, state_changed) holding quorum's eval_lock and none of the above,
 * so eval_lock comes before all of them. Condition variables wait on their
 * own mutex only; the one exception is hcond, which a sender waits on with
 * dsend held, so the receiver must not take dsend while `applying` is set.
 */
#ifndef DIPOLE_PEER_INT_H
#define DIPOLE_PEER_INT_H

#include "peer.h"
#include "decide.h"
#include "hs.h"
#include "wire.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>

#define PEND_MAX   256          /* replicated requests in flight */
#define RS_WINDOW  16           /* resync chunks in flight */
#define RS_CHUNK_BLOCKS 256     /* 1 MiB per resync packet */
/* Own writes remembered for conflict detection. A peer write can only
 * conflict with own writes the peer had not applied when it sent it, which
 * were unacknowledged then (at most PEND_MAX) or sent while it travelled. */
#define HIST       4096
#define MAX_CONFLICTS 64
#define VF_CHUNK (1u << 20)     /* online verify: bytes compared per request */
/* During a resync both sides write the bits they cleared to disk this often:
 * a crash costs re-sending at most this long of resync (docs/replication.md) */
#define RS_PERSIST_MS 100

struct pending {
	pthread_mutex_t m;         /* the fields below but refs; a leaf: taken alone */
	pthread_cond_t c;          /* with m: the waiter (write_end, flush_end, read) sleeps
				    * until an ack, a failure (pending_fail_all) or a reply */
	uint64_t off;
	uint32_t len;
	uint32_t gen;
	int recv_acked, write_acked, failed, status;
	int fua;                   /* wait for the write ack whatever the protocol */
	uint64_t seq;              /* P_DATA sequence number, 0 if none */
	void *rdbuf;               /* P_READ_REQ: where the reply's data goes */
	uint32_t rdlen;
	int refs;                  /* waiter + network; guarded by peer->plock */
	uint64_t sent_ns;          /* for the `timeout` check */
	struct pending *next;
};

struct rs_slot { uint64_t off; uint32_t len; int used; };

/* One of this node's recent writes, for detecting concurrent dual-primary
 * writes (docs/replication.md). */
struct hist { uint64_t seq, off; uint32_t len; int local_done; };

struct peer {
	struct engine *e;
	int slot;                  /* this peer's bitmap slot (engine_bind_slot) */
	const struct cfg_resource *r;
	const struct cfg_host *me, *ph;
	char addr[160];            /* "name (ip:port)" for log lines */
	int protocol, allow_two, dialer;
	char secret[256];
	int has_secret;
	const EVP_MD *md;
	int connect_int_ms, ping_int_ms, ping_timeout_ms;
	uint64_t rate;             /* resync bytes/s, 0 = unlimited */
	uint64_t min_rate;         /* c-min-rate, bytes/s: the resync's share while
				    * application writes go on; 0 = no yielding */

	struct hs_conf hs;
	int wake[2];
	pthread_t thr;
	/* inq_lock: in_dfd/in_mfd/in_hello/in_mine, handed over by the listener
	 * thread (peer_inbound) to conn_main; a leaf. inq_cond (with inq_lock):
	 * conn_main waits for an inbound channel, peer_stop/disconnect wake it. */
	pthread_mutex_t inq_lock;
	pthread_cond_t inq_cond;
	int in_dfd, in_mfd;
	struct pkt_hello in_hello, in_mine; /* their HELLOs */
	_Atomic int stopping;

	/* admin_lock: admin_down changes (control thread: connect/disconnect;
	 * conn thread: refusals), a leaf. admin_cond (with admin_lock): conn_main
	 * waits while StandAlone; peer_connect/peer_stop wake it. */
	pthread_mutex_t admin_lock;
	pthread_cond_t admin_cond;
	_Atomic int admin_down;    /* `disconnect` or a refusal by state: stay StandAlone */

	/* dfd/mfd changes, reason, and the four states below. A leaf: taken
	 * under dsend/msend (teardown), rsctl (rs_start), never held while
	 * taking another lock except the event log's (evlog.h). */
	pthread_mutex_t lock;
	int dfd, mfd;
	char reason[256];
	/* cstate (enum conn_state), repl (enum repl_state), and what the peer
	 * last reported of itself: peer_role (enum role), peer_disk (enum
	 * disk_state), -1 unknown. Written only by peer_set_cstate/_repl/
	 * _peer_state under `lock` (checked, logged as events); read lock-free. */
	_Atomic int cstate, repl, peer_role, peer_disk;
	_Atomic int expect_target;     /* agree() decided this node is SyncTarget */
	_Atomic int await_peer_bm;     /* SyncSource: the target's own marks come first */
	_Atomic int discard_my_data;   /* `connect --discard-my-data`, until the next handshake */
	int no_confirm;                /* fuzzing: no P_DECISION exchange */
	int fencing;                   /* fencing resource-only|resource-and-stonith */
	_Atomic int peer_was_primary;  /* last known peer role was Primary (kept across a loss) */
	_Atomic int peer_third_primary; /* its last HELLO: a third node is Primary and connected to it */
	_Atomic int told_third_primary; /* this node's last HELLO to it said the same of this node */
	_Atomic unsigned behind_asked; /* engine.behind when this node last asked it (a Primary) to compare */
	/* its generations at the last handshake (HELLO and P_HISTORY): what a
	 * resync from it makes this node's history (rx_sync_done). Written by
	 * agree(), read by the data channel's receiver after it, one thread */
	uint64_t hs_uuid[UUID_COUNT];
	/* its generation before its last change of it, and whether it was
	 * Primary when it reported that change (rx_state; 0 from agree()):
	 * a Primary's own new generation, not one it followed as a Secondary
	 * (moved_on_here). The data channel's receiver only, after agree() */
	uint64_t uuid_before;
	int moved_as_primary;
	_Atomic int peer_fs_owner;     /* the peer owns the mounted dipolefs (HELLO/P_STATE), 0 when lost */
	_Atomic int primary_at_loss;   /* this node was Primary when the connection was lost */
	_Atomic int hold_off;          /* `resume-io`: go on alone until the peer is back */
	int established;               /* agree() succeeded on this connection */
	struct splitbrain_policy splitbrain;
	int timeout_ms;                /* `timeout`: a request unacknowledged this long drops the link */
	_Atomic uint64_t peer_uuid;
	_Atomic uint64_t peer_history[2]; /* its history generations, as peer_uuid (HELLO, P_STATE) */

	/* dsend: one sender at a time on the data channel, and the sender side
	 * of epochs and my_seq; frontend threads (write/flush begin, under
	 * sync_lock), the resync thread, the receiver's replies. msend: the same
	 * for the meta channel (acks, pings; meta thread and receiver). Order
	 * dsend -> msend -> lock (teardown takes all three to close the fds). */
	pthread_mutex_t dsend, msend;

	/* plock: pfree and every pending's refs; a leaf (pending_get/put/lookup,
	 * from frontend, receiver and meta threads). pcond (with plock): a
	 * frontend waits for a free pending when PEND_MAX are in flight. */
	pthread_mutex_t plock;
	pthread_cond_t pcond;
	struct pending pend[PEND_MAX];
	struct pending *pfree;

	/* sync_lock orders resync against application writes on the same
	 * blocks: a write holds it shared from write_begin to write_end (taken
	 * inside e->fanout, before dsend); a resync chunk (source: read through
	 * send; target: apply), a bitmap merge and SyncTarget begin/done hold it
	 * exclusive, the latter two taking e->lock inside it. A writer may hold
	 * it while it waits for another peer's ack (fan_end) or for a free
	 * pending, which a teardown fails only after rs_stop: the resync
	 * thread takes it with a timed wait that gives up on rs_stop (rs_lock). */
	pthread_rwlock_t sync_lock;
	pthread_mutex_t rsctl;     /* serializes rs_start/rs_stop (conn thread vs. role changes); before rslock */
	pthread_t rs_thr;
	int rs_running;
	_Atomic int rs_stop;
	/* rslock: rs[], rs_out (resync chunks in flight); resync thread, meta
	 * receiver (acks), rs_stop; inside rsctl. rscond (with rslock): the
	 * resync thread waits for a free window slot or for rs_go/rs_stop. */
	pthread_mutex_t rslock;
	pthread_cond_t rscond;
	struct rs_slot rs[RS_WINDOW];
	int rs_out;
	_Atomic uint64_t sync_total, sync_done, sync_start_ns;
	_Atomic int rs_go;             /* the target merged the bitmap (P_SYNC_ACK) */
	/* SyncTarget: blocks [rs_dirty_lo, rs_dirty_hi) hold bits cleared since
	 * rs_persist_ns; receiver thread (data_loop) only, no lock */
	uint64_t rs_dirty_lo, rs_dirty_hi, rs_persist_ns;

	/* epochs (wire.h): sender side under dsend, receiver side in data_loop */
	_Atomic uint64_t epoch;        /* epoch the next write belongs to */
	_Atomic uint64_t epoch_acked;  /* last epoch the peer reported stable */
	_Atomic uint64_t rx_epoch;     /* last peer epoch made stable here */

	/* dual-primary conflict detection; hist, applying* guarded by hlock,
	 * my_seq by dsend. hlock: taken by senders inside dsend (send_data) and
	 * by the receiver alone; innermost. hcond (with hlock): a local write
	 * overlapping the peer write being applied waits for it, and the
	 * receiver waits for an overlapping local write to finish. */
	pthread_mutex_t hlock;
	pthread_cond_t hcond;
	struct hist hist[HIST];
	_Atomic uint64_t my_seq;       /* last seq sent */
	_Atomic uint64_t applied_seq;  /* last peer seq applied here */
	uint64_t applying_off, applying_end; /* peer write being applied (hlock) */
	int applying;
	atomic_uint_fast64_t conflicts; /* concurrent writes reconciled */
	atomic_uint_fast64_t split_brains; /* detected (resolved or not) */
	atomic_uint_fast64_t fenced;       /* fence-peer handler successes */
	_Atomic int fencing_now;           /* the fence-peer handler is running */
	char hold_reason[256];
	/* lease (quorum.h): meta_main renews it, the quorum rules read it */
	uint64_t lease_ns;             /* the ping interval (cfg_ping_ms) + ping-timeout */
	_Atomic uint64_t lease_until_ns, last_rx_ns;
	_Atomic uint64_t conn_seq;     /* connections established */
	_Atomic int sync_pending;      /* SyncTarget-to-be: the source's bitmap is not merged yet */
	/* several peers (docs/replication.md, "More than two nodes") */
	_Atomic int deferred;          /* agree(): a resync was due but deferred */
	_Atomic int waited;            /* agree(): both were Inconsistent ("wait"): nothing compared */
	_Atomic uint64_t recheck_ns;   /* kicked to compare data again (when), 0 none */
	int splitbrain_retrying, splitbrain_retried;   /* a split brain between two Secondaries, retried (conn thread) */

	pthread_t meta_thr;
	int meta_running;

	/* `resize` (peer_resize.c): the peer's answer to P_SIZES SZF_ASK */
	pthread_mutex_t szlock;
	pthread_cond_t szcond;
	int sz_have;               /* an answer arrived (szlock) */
	uint64_t sz_usable;        /* its usable bytes, 0: it could not grow (szlock) */

	/* online verify */
	const EVP_MD *vmd;         /* verify-alg; NULL: crc32c */
	const EVP_MD *cmd;         /* csums-alg; NULL: crc32c (when has_csums) */
	int has_csums;
	_Atomic uint64_t *need;    /* SyncSource with csums: blocks whose checksum differed */
	atomic_uint_fast64_t csum_skipped; /* resync bytes not sent: checksums matched */
	pthread_t vf_thr;
	int vf_joinable;
	_Atomic int vf_running;
	_Atomic uint64_t vf_done, vf_oos, vf_blocks;
	uint8_t *rbuf;
	size_t rcap;
	uint8_t *scratch;          /* data_loop: answers to requests, see scratch() */
};

/* peer.c */
/* State transitions of this peer, the only way its states change: checked
 * against state.h (an illegal one is logged as a bug and refused, -EINVAL)
 * and appended to the event log with `why`. Take p->lock: the caller must
 * not hold it. A transition to the current state does nothing. */
int peer_set_cstate(struct peer *p, enum conn_state to, const char *why);
int peer_set_repl(struct peer *p, enum repl_state to, const char *why);
/* The peer's report of its role and disk (-1: unknown, not connected;
 * PEER_STATE_KEEP: unchanged); a value outside the enums is refused
 * (-EINVAL) and the old one kept. */
#define PEER_STATE_KEEP (-2)
int peer_set_peer_state(struct peer *p, int role, int disk, const char *why);
void set_reason(struct peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void disconnect_sockets(struct peer *p);
void hello_uuids(struct peer *p, uint64_t *u);
int handshake(struct peer *p, int fd, int *chp, const char *from, struct pkt_hello *peer_hello, struct pkt_hello *mine);

/* peer_io.c */
int send_pkt(struct peer *p, int ch, uint16_t type, uint16_t flags, uint64_t id,
		    const void *a, size_t alen, const void *b, size_t blen);
int send_ack(struct peer *p, uint16_t type, uint64_t id, int status);
struct pending *pending_get(struct peer *p);
void pending_put(struct peer *p, struct pending *pd);
uint64_t pending_id(struct peer *p, struct pending *pd);
void pending_abort(struct peer *p, struct pending *pd);
struct pending *pending_lookup(struct peer *p, uint64_t id);
void pending_ack(struct peer *p, uint64_t id, int type, int status);
int pending_in_use(struct peer *p, struct pending *pd);
void pending_fail_all(struct peer *p);
int connected(struct peer *p);
/* The peer's disk state as this node may rely on it: its last report,
 * except that a peer this node is SyncSource of (or is about to be: the
 * decision is made, the resync not yet started) is Inconsistent, whatever
 * it reported before — it lacks what the resync has still to send
 * (drbd.conf(5): the SyncTarget's disk is Inconsistent). -1 unknown. */
int peer_disk_now(struct peer *p);

struct pkt_sizes;
/* peer_resize.c: P_SIZES on the data channel */
int rx_sizes_pkt(struct peer *p, const struct pkt_sizes *k);

/* peer_resync.c */
void rs_release(struct peer *p, uint64_t id);
int send_bitmap(struct peer *p, uint16_t type, uint16_t done);
unsigned md_len(const EVP_MD *md);
unsigned digest_len(struct peer *p);
void digests_md(const EVP_MD *md, const uint8_t *buf, uint32_t len, uint8_t *out);
void digests(struct peer *p, const uint8_t *buf, uint32_t len, uint8_t *out);
void rs_start(struct peer *p);
void rs_stop(struct peer *p);

/* peer_recv.c */
void *meta_main(void *arg);
void send_state(struct peer *p);
uint8_t *scratch(struct peer *p);
void data_loop(struct peer *p);

/* The engine's replica i as a peer: every replica of an engine is a disk
 * peer (the daemon registers nothing else), so a peer finds its siblings
 * there. */
static inline struct peer *sibling(struct engine *e, int i)
{
	return e->rep[i].ctx;
}

/* peer_agree.c */
void third_primary_changed(struct engine *e);
/* Store p's reported role and disk (its HELLO or a P_STATE), as
 * peer_set_peer_state. A peer that becomes Primary while this node or
 * another connected peer (one in its handshake too) is Primary is refused
 * unless allow-two-primaries: -EALREADY, nothing stored, *other the peer
 * that is Primary (NULL: this node). The check and the store are one step
 * under e->lock, as engine_set_role's may_promote checks and its role
 * change are: of two promotions that race (two peers' reports on their
 * receiver threads, or one and `primary` here) the later one always sees
 * the earlier (three_disks_return.sh). 0 otherwise. Takes e->lock,
 * then p->lock. */
int peer_take_state(struct peer *p, int role, int disk, const char *why, struct peer **other);
/* This node takes Primary p's writes (several peers): it follows p into
 * p's current generation (peer_uuid, peer_history) when that differs from
 * its own; an Inconsistent disk too, so that it is not later resynced
 * from an older generation over those writes (three_disks_sync_switch.sh).
 * handshake: called at the end of agree() (only an Inconsistent disk) */
void follow_primary(struct peer *p, int handshake);
/* A Secondary peer p moved on from this node's current generation (it
 * follows a Primary this node is not connected to, which writes without
 * this node): this node's disk is behind it, Outdated, so it cannot be
 * promoted without those writes (three_disks_relay.sh). The Primary, or
 * p once it no longer follows one, resyncs it. From rx_state. */
void behind_secondary(struct peer *p);
int third_primary(struct peer *p);
int may_source(struct peer *p);
void kick_others(struct peer *p, const char *why);
void mark_compare_due(struct peer *p);
void kick_sources(struct peer *p);
void peers_state_changed(struct engine *e, struct peer *except);
int confirm(struct peer *p, int verdict);
int agree(struct peer *p, const struct pkt_hello *hello, const struct pkt_hello *mine);

#endif

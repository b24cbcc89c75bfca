/* engine — one replicated resource on this node: backing disk, metadata,
 * role and disk state, the out-of-sync bitmap and I/O counters.
 *
 * Frontends (NBD, FUSE) call engine_read/write/flush/... from any thread; the
 * engine does not know which frontend called. Data path calls take no global
 * lock: counters and bitmap bits are atomics; the state lock (`lock`) guards
 * role/disk-state changes and metadata writes only.
 *
 * Replicas: the engine knows the disk peers only as replicas (replica.h), an
 * operations table with a context each, and asks one write policy what to do
 * with a write some of them missed. engine.c includes neither peer.h nor
 * quorum.h; peer and quorum include this header.
 *
 * Lock order (outermost first; peer_int.h and quorum.c have the rest):
 *   quorum eval_lock -> quorum lock -> `lock`
 *   peer sync_lock -> `lock`                 (resync begin/done)
 *   `fanout` -> peer sync_lock -> peer dsend (every write's fan-out)
 * `lock` and `fanout` are never held together. With `lock` held the engine
 * calls no replica op but may_promote (lock-free) and no policy; the write
 * policy is called with no engine lock held, since it may suspend I/O.
 * All functions return 0 or a negative errno.
 */
#ifndef DIPOLE_ENGINE_H
#define DIPOLE_ENGINE_H

#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include <pthread.h>

#include "disk.h"
#include "meta.h"
#include "replica.h"
#include "state.h"
#include "util.h"

/* on-io-error (disk section): what a local I/O error does */
enum io_error_policy { OIE_DETACH, OIE_PASS_ON, OIE_CALL_HANDLER };

/* NBD-style request flags understood by the engine */
#define ENGINE_FUA 1u

struct engine_stats {
	atomic_uint_fast64_t read_bytes, written_bytes, sent_bytes, received_bytes;
	atomic_uint_fast64_t reads, writes, flushes, trims, io_errors;
};

struct bitmap;

/* A read-only view of one slot's bitmap words (struct bitmap owns them),
 * for code that still reads them directly: peer_resync.c's P_BITMAP
 * encoder. */
struct bmslot {
	_Atomic uint64_t *bm;
};

struct engine {
	char res[64], node[64];
	/* replicas (replica.h: the disk peers), registered by the daemon
	 * before I/O starts (engine_add_replica); replica i uses the slot
	 * engine_bind_slot gave it. npeers drops to 0 at shutdown. */
	struct replica rep[MD_MAX_PEERS];
	int npeers;
	void *_Atomic sync_src;        /* SyncTarget: ctx of the source whose slot holds what this node lacks */
	_Atomic int sync_slot;         /* its slot, -1 none */
	struct write_policy policy;    /* set by the daemon (engine_set_write_policy); decide NULL: complete */
	_Atomic int io_fail;           /* no quorum with on-no-quorum io-error: I/O fails with EIO */
	/* a peer connected (engine_peer_back): a Primary writing without some
	 * other peer starts a new generation first, even for a peer whose
	 * bitmap counts from an older one (the peer that came back may have
	 * passed this node's current generation on to it) */
	_Atomic int regen_due;
	/* this disk lacks writes a peer has (peer_agree.c outdate_behind):
	 * odd while that holds, made even again when the disk next goes
	 * UpToDate or Inconsistent (a resync); so each spell behind has its
	 * own value. A disk that is behind follows no Primary into its
	 * generation: it asks for a comparison instead (follow_primary).
	 * Changed under `lock` */
	_Atomic unsigned behind;
	struct disk *disk;
	/* the device's size in bytes (resize.h): what it exports now (the
	 * agreed size, la_size); written under `lock` by resize.c only, read
	 * lock-free. usable: the most this node could export (its data area,
	 * or less with `disk { size }`: cap, 0 none). */
	_Atomic uint64_t size;
	_Atomic uint64_t usable;
	uint64_t cap;
	/* called (without locks) after the size changed: the exports follow */
	void (*size_hook)(void *arg, uint64_t bytes);
	void *size_arg;
	struct engine_stats st;
	/* writes to the local disk begun so far (application writes, in each
	 * peer's write_begin; peer writes and resync data applied): a resync
	 * source's read-ahead is stale once it moved (peer_resync.c). Relaxed. */
	atomic_uint_fast64_t wgen;

	/* lock: role, dstate and sb writes, detach_reason, suspend_reason, the
	 * suspend/resume handshake (resume_cond). Taken by role and state
	 * changes (control thread, peer threads, quorum thread), never on the
	 * data path except to wait while suspended. Inside quorum's and the
	 * peer's sync_lock; takes no other lock but the disk's own and the
	 * event log's (evlog.h). */
	pthread_mutex_t lock;
	/* role and dstate: written only by their transition functions
	 * (engine_set_role, engine_set_disk[_locked]) under `lock`, which check
	 * the transition (state.h) and log it (evlog.h); read lock-free */
	_Atomic int role;              /* enum role; read lock-free on the data path */
	_Atomic int dstate;            /* enum disk_state */
	struct md_super sb;

	struct bitmap *bm;             /* out-of-sync bitmaps, one per peer slot; NULL when diskless */
	struct bmslot slot[MD_MAX_PEERS]; /* views of bm's words, set at open; sb.lay.nslots used */
	uint32_t nslots;
	_Atomic uint32_t unsure_mask;  /* slots with MDP_UNSURE (mirror, for lock-free reads) */
	uint64_t bm_bits;              /* bitmap_bits(bm), set at open */
	/* SyncTarget: blocks this node wrote itself (unsynced_local) since the
	 * resync began, one bit per MD_BLOCK: resync data for them is older and
	 * skipped; any other block's resync data is applied, marked here or
	 * not (the source may mark a block after it sent its bitmap: a write
	 * that began before the connection was up). Zeroed by
	 * engine_sync_target_begin; NULL when diskless */
	_Atomic uint64_t *sync_wrote;
	_Atomic uint64_t *sync_wrote_retired[4]; /* arrays a resize replaced, freed at close */
	/* more than one peer: every write goes to all of them in one order
	 * (fanout), numbered by wstamp; a Secondary remembers the last stamp it
	 * applied and whose it was, so two Secondaries can tell which of them
	 * has more of a lost Primary's writes */
	/* fanout: held by a frontend thread from the first replica's
	 * write_begin to the last one's, so all replicas get writes in one
	 * order; the replicas take their sync_lock and send lock inside it.
	 * Never together with `lock`. Not taken with a single replica. */
	pthread_mutex_t fanout;
	_Atomic uint32_t wstamp;       /* incremented under fanout; read by send_state */
	_Atomic uint32_t applied_stamp;
	_Atomic int applied_from;      /* node-id, -1 none */

	struct al *al;                 /* activity log (NULL without a peer) */
	int on_io_error;               /* enum io_error_policy */
	void (*io_error_hook)(void *arg, const char *what); /* local-io-error handler */
	void *hook_arg;
	/* dipolefs: this node owns the mounted filesystem (the daemon sets it,
	 * engine_set_fs_owner); told to the peers in HELLO (HF_FS_OWNER) and
	 * P_STATE (STF_FS_OWNER), so they keep off the device (single writer) */
	_Atomic int fs_owner;
	/* a peer owns the mounted dipolefs (the daemon sets it from the peers'
	 * flags): new NBD clients are served read-only even while this node is
	 * still Primary (its device was in use when the peer took ownership) */
	_Atomic int fs_other_owner;
	/* dipolefs's write epoch (docs/dipolefs.md "A cut-off owner"): the
	 * owner's kernel mount is armed with the epoch it was made in
	 * (engine_fs_arm); engine_fs_fence moves the epoch on when this node
	 * loses the right to write for it (cut off for io-timeout, or a peer
	 * went on without it). While armed and stale, every frontend read,
	 * write and flush fails with EIO, held ones included: a write
	 * submitted under the old ownership never goes out late. 0 unarmed. */
	_Atomic uint64_t fs_epoch, fs_armed;
	char fs_fence_reason[200];     /* why it was fenced, guarded by lock */
	/* called (on a peer's thread, no lock held) when a peer's reported role,
	 * disk or fs-owner flag changed or its connection went: the daemon
	 * wakes its main thread. Set once before the peers start. */
	void (*peer_hook)(void *arg);
	void *peer_hook_arg;
	char detach_reason[160];       /* why the disk is Diskless, guarded by lock */

	/* suspended I/O (fencing, dual-primary peer loss): new requests wait, and
	 * writes the peer did not get wait and are retried */
	_Atomic int suspended;
	pthread_cond_t resume_cond;    /* with lock */
	char suspend_reason[256];      /* guarded by lock */
	char disk_why[128];            /* why dstate last changed; guarded by lock */
	int crashed_primary;           /* was Primary when it last went down uncleanly */
	uint64_t al_marked;            /* blocks the activity log marked at attach */
};

/* Attach: open the disk, read metadata (must exist), load the bitmap, mark
 * the metadata as in use. err[MD_MSG_MAX] explains failures for the user. */
/* node_id: this node's id from the config (-1: not checked); metadata
 * written for another resource or node is refused before anything is written. */
int engine_open(struct engine **out, const char *res, const char *node, int node_id, const char *disk_path,
		char *err);
/* A node with `disk none;` (a tiebreaker): no disk, no data, size 0. */
int engine_open_diskless(struct engine **out, const char *res, const char *node);
/* Register a replica (before I/O starts): the engine fans writes out to
 * it and reads through it. -ENOSPC when MD_MAX_PEERS are registered. */
int engine_add_replica(struct engine *e, const struct replica_ops *ops, void *ctx, int slot);
/* Forget every replica (shutdown): nothing new reaches them afterwards. */
void engine_clear_replicas(struct engine *e);
/* The rule for writes some replicas missed (replica.h); replaces the last. */
void engine_set_write_policy(struct engine *e, struct write_policy wp);
/* A replica (its view v) lost its connection: the write policy says
 * whether writes must wait from now on (it suspends I/O itself then).
 * *by_quorum: the quorum rules decided, not fencing/dual-primary. */
enum write_verdict engine_replica_lost(struct engine *e, const struct replica_view *v, int *by_quorum);
/* Tell every replica this node's role or disk state changed. */
void engine_notify_replicas(struct engine *e);
/* dipolefs ownership of this node (docs/dipolefs.md "One writer"): set
 * e->fs_owner and tell every connected replica (P_STATE). Any thread. */
void engine_set_fs_owner(struct engine *e, int on);
/* A peer's reported state changed (peers call it): runs e->peer_hook. */
void engine_peer_changed(struct engine *e);
/* A disk peer's connection is established (peer_agree.c): see regen_due.
 * Lock-free; takes no lock. */
void engine_peer_back(struct engine *e);

/* Start the activity log (a resource with a peer): nslots extents of 4 MiB. */
int engine_al_start(struct engine *e, unsigned nslots);
/* Suspend I/O with a reason (logged, shown in status); resume lets waiting
 * requests continue. */
void engine_suspend(struct engine *e, const char *why);
void engine_resume(struct engine *e, const char *why);
int engine_is_suspended(struct engine *e);

/* An Outdated or Consistent disk is known current again (in memory). */
void engine_set_uptodate(struct engine *e, const char *why);

/* Disk state transition, the only way dstate changes: checked against
 * state_disk_legal() (an illegal one is logged as a bug and refused with
 * -EINVAL) and appended to the event log with `why`. The _locked variant:
 * the caller holds e->lock. Lock order: q->lock (quorum) > e->lock > evlog. */
int engine_set_disk(struct engine *e, enum disk_state to, const char *why);
int engine_set_disk_locked(struct engine *e, enum disk_state to, const char *why);
/* A resize grew the data area to bits blocks: the record of blocks this
 * node wrote while SyncTarget (sync_wrote) grows with it, keeping its
 * marks; the old array stays allocated until close, as the bitmap's do
 * (a writer may still hold it). Under e->lock. 0, -ENOMEM, or -ENOSPC
 * after four resizes in one attach ('down' and 'up' reset it). */
int engine_grow_sync_wrote(struct engine *e, uint64_t bits);

/* The local disk failed: go Diskless (I/O continues through the peer). */
void engine_detach(struct engine *e, const char *why);

/* Persist a metadata flag that startup reads the next time (MDF_CONNECTED_IND,
 * MDF_PEER_OUTDATED; docs/startup.md): set when on, else cleared. A no-op
 * when it is so already or there is no disk. 0 or -errno of the write. */
int engine_set_md_flag(struct engine *e, uint32_t flag, int on);

/* Write the whole bitmap to disk now. */
int engine_save_bitmap(struct engine *e);
/* Make the bits of blocks [first, first+n) durable during a resync: flush
 * the data first (a clear bit on disk must never claim a block whose data
 * is not), write the bitmap pages holding them, flush. -errno. */
int engine_persist_bitmap(struct engine *e, uint64_t first, uint64_t n);
/* A Primary without some peers (slots in `mask`) starts a new data
 * generation: the old one is kept as those slots' bitmap generation (where
 * none is kept yet). No-op unless UpToDate, or when every slot in the mask
 * keeps one already. */
int engine_new_generation(struct engine *e, uint32_t mask, const char *why);
/* A Secondary follows its Primary into a new generation uuid[UUID_CURRENT],
 * with the Primary's history (while connected and in sync with it, or
 * Inconsistent and taking its writes: follow_primary decides): slots other
 * than `keep` keep the old generation as bitmap generation (none when the
 * old one is MD_UUID_JUST_CREATED) and become unsure. No-op when diskless
 * or failed, or already at that generation. 0 or -errno (metadata write);
 * takes e->lock. */
int engine_adopt_generation(struct engine *e, int keep, const uint64_t *uuid, uint64_t gen_time);
/* The resync this node sent to `slot` is complete: its bitmap generation
 * goes to history. */
int engine_sync_source_done(struct engine *e, int slot);

/* dipolefs's write epoch (see fs_epoch above). Arm: the owner mounted its
 * kernel filesystem; returns the epoch it is armed with. Disarm: that
 * mount is gone, the device serves as before. Any thread. */
uint64_t engine_fs_arm(struct engine *e);
void engine_fs_disarm(struct engine *e);
/* This node lost the right to write for the armed mount: the epoch moves
 * on, requests waiting for suspended I/O wake and fail with EIO, and so
 * does every later one until disarmed. 1 when it fenced now, 0 when not
 * armed or fenced already. Any thread; takes `lock`. */
int engine_fs_fence(struct engine *e, const char *why);
/* 1 while armed with an epoch that is no longer current; why[200] (may
 * be NULL) gets the reason. Lock-free (why: takes `lock`). */
int engine_fs_stale(struct engine *e, char *why);

/* Flush, persist bitmap, mark clean, close. Returns the first error seen. */
int engine_close(struct engine *e);
/* Release memory and fds without touching the disk (the parent side of a
 * fork: the child owns the attached disk). */
void engine_forget(struct engine *e);

int engine_read(struct engine *e, void *buf, size_t len, uint64_t off);
/* Asynchronous reads (the NBD server's io_uring): the descriptor to read
 * [off, off+len) from straight into buf when engine_read would do nothing
 * but that one pread (a local disk that is UpToDate, or the only replica;
 * I/O neither suspended nor refused; offset, length and buffer aligned to
 * DISK_ALIGN), else -1 and the caller uses engine_read. Lock-free. */
int engine_read_fd(struct engine *e, const void *buf, size_t len, uint64_t off);
/* Such a read into buf completed with res (bytes read, or -errno from the kernel):
 * 0 when all len bytes came (counted as engine_read counts them), else
 * -EAGAIN and the caller redoes it with engine_read, which completes short
 * reads and reads from a peer after a detach. A disk error (res < 0) is
 * counted and on-io-error applied here, as engine_read would (it may
 * detach: takes `lock` then). */
int engine_read_fd_done(struct engine *e, void *buf, uint64_t off, size_t len, long res);
/* -EPERM unless Primary. */
int engine_write(struct engine *e, const void *buf, size_t len, uint64_t off, unsigned flags);
int engine_flush(struct engine *e);
/* Flush this node's disk only (a peer's P_FLUSH), under on-io-error:
 * -ENODEV when there is no disk (Diskless, or it detached on this error). */
int engine_flush_local(struct engine *e);
int engine_trim(struct engine *e, uint64_t off, uint64_t len, unsigned flags);
int engine_zero(struct engine *e, uint64_t off, uint64_t len, int no_hole, unsigned flags);

/* The peer slot for a disk peer's node-id: the slot bound to it, else an
 * unbound one (then bound, persisted). -ENOSPC with err[MD_MSG_MAX] when the
 * metadata has no slot left for it. */
int engine_bind_slot(struct engine *e, int node_id, char *err);
/* Mark a range out of sync with the peer of `slot` (it did not get it). */
void engine_mark_oos(struct engine *e, int slot, uint64_t off, uint64_t len);
/* Mark everything out of sync (a full sync follows). */
void engine_mark_all_oos(struct engine *e, int slot);
/* Clear bits [first, first+n) and return how many were set. For resync. */
uint64_t engine_clear_oos(struct engine *e, int slot, uint64_t first_block, uint64_t n);
/* Next set bit at or after `from`, or UINT64_MAX. */
uint64_t engine_next_oos(struct engine *e, int slot, uint64_t from);
/* Blocks marked in a slot. */
uint64_t engine_oos(struct engine *e, int slot);
/* Set or clear MDP_UNSURE on a slot (persisted when it changes). */
void engine_set_unsure(struct engine *e, int slot, int on);
int engine_unsure(struct engine *e, int slot);
/* The slot's bitmap generation (0: none). */
uint64_t engine_bitmap_uuid(struct engine *e, int slot);

/* Apply a write received from the peer (no role check). dflags: DF_* */
int engine_apply(struct engine *e, const void *buf, size_t len, uint64_t off, unsigned dflags);
/* A write from node `from` with fan-out stamp `stamp` was applied: with more
 * than one peer, the other slots become unsure (this node may now hold
 * writes they lack). from_slot: the sender's slot. */
void engine_applied(struct engine *e, int from_slot, int from, uint32_t stamp);
/* Primary `from` demoted, its last fan-out stamp `stamp`, while this
 * UpToDate node was in sync with it: this node holds every write of it up
 * to that stamp, as does every other such node (decide_multi: no resync
 * between two of them). */
void engine_primary_demoted(struct engine *e, int from, uint32_t stamp);

/* Resync target: the disk becomes Inconsistent (persisted) until done, then
 * UpToDate with the source's generation. While Inconsistent the bitmap holds
 * the blocks this node lacks (all of them when `full`); reads of those go to
 * the peer, and writes completing a block clear its bit. */
/* src: the source replica's ctx. sync_uuid: the source's generation the
 * slot's bitmap counts from (0: unknown); recorded with MDP_SYNC_TARGET so an
 * interrupted resync resumes (docs/replication.md). -EBUSY when another peer
 * is this node's sync source already, -errno of the metadata write. */
int engine_sync_target_begin(struct engine *e, void *src, int slot, int full, uint64_t sync_uuid);
/* The source replica's ctx while SyncTarget, else NULL. */
void *engine_sync_source(struct engine *e);
/* Resync data for [off, off+len): written to every block this node has not
 * written itself since engine_sync_target_begin (those are newer: skipped),
 * marked or not (a block the source marked after sending its bitmap comes
 * unannounced), and their bits are cleared. Caller holds the source peer's
 * sync_lock exclusively (the write path holds it shared). */
int engine_apply_resync(struct engine *e, const void *buf, size_t len, uint64_t off);
/* OR the source's bitmap words into a slot. */
void engine_merge_oos(struct engine *e, int slot, uint64_t first_word, const uint8_t *words_le, uint64_t n);
/* The target adopts the source's generations (uuid[UUID_COUNT]; [1] is
 * ignored); its other slots become unsure of their peers. */
int engine_sync_target_done(struct engine *e, const uint64_t *uuid, uint64_t gen_time);
/* The SyncTarget's source went away: no slot holds what this node lacks.
 * 1 when this node was SyncTarget of src (the resync stopped), else 0. */
int engine_sync_target_abort(struct engine *e, void *src);

/* Role change. primary: -EROFS-like refusals are -EPERM with msg set;
 * `force` makes an Inconsistent/Consistent disk UpToDate with a new data
 * generation. msg[256] gets a human reason on refusal. */
int engine_set_role(struct engine *e, enum role r, int force, char *msg);

#endif

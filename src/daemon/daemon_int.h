/* daemon_int — what the files of the daemon share (daemon.c, control.c,
 * status.c): struct daemon and the functions one file calls in another. Not
 * for use outside src/daemon/.
 *
 * Locking: struct daemon is owned by the daemon's main thread, which starts
 * and stops everything and serves control requests one at a time. The other
 * threads (NBD, FUSE, peers, quorum) reach the engine and their own objects,
 * each with its own locks; of struct daemon, only the local-io-error hook
 * reads r, h and other, which startup sets once.
 */
#ifndef DIPOLE_DAEMON_INT_H
#define DIPOLE_DAEMON_INT_H

#include "daemon.h"
#include "dipolefs.h"
#include "engine.h"
#include "fusedev.h"
#include "listener.h"
#include "nbd.h"
#include "peer.h"
#include "quorum.h"
#include "util.h"
#include "ctl.h"
#include "confq.h"

/* The startup wait (startup.c, docs/startup.md): for the peer, per
 * wfc-timeout / degr-wfc-timeout / outdated-wfc-timeout, and become-primary-on's
 * promotion once it is safe. The main thread runs it; `lock` guards what
 * the events thread reads too (phase, over, talked, why). */
enum startup_phase {
	SU_WAIT_PEER, /* no disk peer talked to yet (or promotion declined until one is) */
	SU_WAIT_SYNC, /* talked; this node is SyncTarget: Primary when the resync is done */
	SU_DONE,      /* nothing left to do: why says what happened */
};
struct startup {
	pthread_mutex_t lock;
	int phase;           /* enum startup_phase */
	int over;            /* the wait for the peer ended: wait-connect returns */
	int talked;          /* a disk peer's handshake completed */
	int declined;        /* promotion not done (yet): why says why */
	char why[400];       /* what it waits for or what it decided, for status */
	/* set by startup_plan, then read by the main thread only */
	int want;            /* become-primary-on names this node */
	int has_peers;       /* the resource has other disk hosts */
	int wait_after_sb;
	long timeout_s;      /* 0: forever */
	const char *timeout_opt; /* which option chose it */
	const char *timeout_why;
	int was_connected, carried_on, peer_outdated, crashed_primary, uptodate;
	int fresh;             /* the metadata is as create-md left it (never connected) */
	uint64_t start_ns, logged_ns;
	uint64_t talked_ns;  /* when startup_tick first saw a handshake done */
	char logged_key[32];
	char note[160];      /* why become-primary-on was given up at startup, "" none */
};

struct daemon {
	const char *run_dir;
	const struct cfg_resource *r;
	const struct cfg_host *h;
	struct engine *e;
	struct nbd_server *nbd;
	struct fusedev *fuse;
	struct peer *peers[MD_MAX_PEERS]; /* the disk peers */
	int npeers;
	struct peer *peer;            /* the first disk peer, NULL if none */
	const struct cfg_host *other; /* its host (handlers' peer), NULL if none */
	struct listener *lsn;         /* the replication port, NULL without peers */
	struct quorum *quorum;        /* votes and vote links, NULL with one host */
	struct confq *confq;          /* answers `dipole doctor` on lsn, NULL without it */
	int loop_fd;
	char loop_dev[64];
	char device[1024];   /* symlink we created, "" if none */
	char nbd_path[512], ctl_path[512], pid_path[512], fuse_path[512], log_path[512];
	const char *nbd_tcp;
	int ctl_fd;
	int ctl_passed_fd;        /* a descriptor the request being served came with, -1: none */
	int lock_fd;
	struct startup su;
	/* dipolefs on this node (fsmount.c): at most one mount per resource */
	struct dipolefs *fs;      /* NULL: not mounted */
	enum dipolefs_role fs_role;
	char fs_dir[4096];        /* its mount point; "" on an owner serving without one */
	char fs_owner[64];        /* the owner's host name (this node's when owner) */
	int fs_owner_lost;        /* client: the owner's link was down at the last check */
	uint64_t fs_lost_ns;      /* client: when it saw the owner's link go down (now_ns), for fs:failover */
	/* a cut-off owner (fsmount.c, docs/dipolefs.md "A cut-off owner"):
	 * since when (now_ns) it has been cut off, 0 not; fs_fence: why its
	 * mount was fenced, "" not; fs_dropped: its kernel mount is gone */
	uint64_t fs_cut_ns;
	char fs_fence[256];
	int fs_dropped;
	int fs_failover_warned;   /* a mount here was told there is no automatic failover */
	int fs_takeover;          /* a client promoting itself to take the filesystem over */
	int fs_owner_released;    /* client: the owner is connected but gave the filesystem up (fs move) */
	char fs_failover_told[512]; /* the failover state last logged (once per state; holds any why) */
	/* fencing without quorum (fsmount.c owner_unfenced): the owner's loss
	 * (its fs_lost_ns) the fence-peer handler last ran for, 0 none, and
	 * whether it fenced the owner, with the handler's word. The handler
	 * runs on a thread of its own (fence_main) so that status and control
	 * answer meanwhile: it writes ok and word, then clears running;
	 * the main thread reads them only once running is 0, and joins it. */
	uint64_t fs_fenced_loss;
	int fs_fence_ok;
	char fs_fence_word[160];
	pthread_t fs_fence_thr;
	int fs_fence_joinable;        /* main thread: fs_fence_thr is to be joined */
	_Atomic int fs_fence_running;
	int fs_fence_seen;            /* main thread: the result was acted on */
	struct peer *fs_fence_peer;
	uint64_t fs_fence_start_ns;
	/* the Prometheus endpoint (metrics.c, docs/metrics.md) */
	struct httpd *metrics;    /* NULL: off, or not serving yet */
	int metrics_fd;           /* bound by `up` before it forks, until served; -1 none */
	char metrics_addr[160];
	/* what the metrics thread reads of dipolefs (d->fs is the main
	 * thread's): the "fs" object of status as the main thread last
	 * rendered it, and the owner changes it saw. fs_view_lock guards both. */
	pthread_mutex_t fs_view_lock;
	char fs_view[2048];
	uint64_t fs_owner_changes;
	/* serving on demand: a client's CH_FS connection to this node while it
	 * serves no filesystem is queued by the listener thread (fs_qlock
	 * guards fs_q/fs_nq) and the main thread woken through fs_wake (an
	 * eventfd, also written by the engine's peer hook); fs_told: the
	 * reason last logged for not demoting under another node's ownership */
	int fs_wake;
	pthread_mutex_t fs_qlock;
	struct { int fd; char from[64]; } fs_q[8];
	int fs_nq;
	char fs_told[200];
};

/* Startup (startup.c): plan reads the configuration and what the metadata
 * says of the last shutdown (before any peer connects); tick advances the
 * wait and promotes when safe, and is called by the main thread while
 * startup_pending; the rest print it. */
void startup_plan(struct daemon *d);
void startup_tick(struct daemon *d);
int startup_pending(struct daemon *d);
/* 1 when this node may start a new data generation without a connected
 * peer: it has no disk peer, or talked to one since startup, or the
 * startup rule finds it cannot have fallen behind (docs/startup.md "The
 * rule"); else 0 with why[len] saying which peer may have carried on.
 * Main thread. */
int startup_may_promote_alone(struct daemon *d, char *why, size_t len);
void startup_json(struct daemon *d, struct strbuf *sb);
void startup_text(struct daemon *d, struct strbuf *sb);
void startup_state_line(struct daemon *d, struct strbuf *sb);
/* `wait-connect`'s answer: "waiting|connected|alone|timeout|refused WHY\n". */
void startup_wait_reply(struct daemon *d, struct strbuf *sb);

/* Make this node Primary as `dipole primary` does (quorum's say, the
 * engine's checks, the loop device writable). 0, or -EPERM/-EBUSY (refused
 * by state) or another -errno, with msg[256] saying why. */
int daemon_promote(struct daemon *d, int force, char *msg);
/* Make this node Secondary as `dipole secondary` does (the loop device
 * read-only first). 0, or -errno with msg[256]. The caller checked that the
 * device is not in use. */
int daemon_demote(struct daemon *d, char *msg);

/* dipolefs mounts (fsmount.c, docs/dipolefs.md "Using it"): the control
 * requests fs-mount and fs-umount; start (after the listener and peers:
 * serve on demand, watch the peers' fs-owner flags) and the main loop's
 * fd to poll (-1 none) and what to do when it is readable; the
 * single-writer rules `primary`, `secondary` and `down` obey (1 with
 * msg[256] saying why this node may not do it now);
 * the main loop's check for a mount the user unmounted (poll timeout in ms
 * it needs, -1 none); shutdown's unmount; the "fs" of status. */
int fsmount_start(struct daemon *d);
int fsmount_wake_fd(struct daemon *d);
void fsmount_woken(struct daemon *d);
int fsmount_request(struct daemon *d, int fd, const struct ctl_req *req);
int fsmount_umount_request(struct daemon *d, int fd, const struct ctl_req *req);
/* `fs-move --node=NODE` (dipole fs move): on the owner, hand the
 * filesystem over to NODE (a connected, UpToDate disk node that has it
 * mounted): drain, flush, unmount, demote, then NODE promotes, mounts
 * and serves; this node's mount forwards to it. Replies itself. */
int fsmount_move_request(struct daemon *d, int fd, const struct ctl_req *req);
int fsmount_refuses_primary(struct daemon *d, char *msg);
int fsmount_refuses_secondary(struct daemon *d, char *msg);
/* `down` (force: --force): an owner whose client nodes have the
 * filesystem mounted hands it over to one that can take it (fs move's
 * rules) first; 1 with msg when down must be refused: mounted here and not
 * forced, or no client can take over and not forced. */
int fsmount_refuses_down(struct daemon *d, int force, char *msg);
int fsmount_tick(struct daemon *d);
/* Release a mount that a plain umount(8) took off (the main loop does it
 * within a second; `down` does it first). */
void fsmount_check_unmounted(struct daemon *d);
void fsmount_stop(struct daemon *d);
void fsmount_status_json(struct daemon *d, struct strbuf *sb);
void fsmount_status_text(struct daemon *d, struct strbuf *sb);

/* Status of the resource for `dipole status`: human text, one JSON object
 * (../shared/design.md "Command line"), and the one-line state `events`
 * compares. Each appends to sb; caller is the main thread, and for the state
 * line also the events thread (events.h; it reads atomics and takes the
 * engine's, peers' and quorum's own locks). */
void status_text(struct daemon *d, struct strbuf *sb);
void status_json(struct daemon *d, struct strbuf *sb);
void status_state_line(struct daemon *d, struct strbuf *sb);
/* One short line for people (the service manager's STATUS=): role, disk,
 * each peer, the mount. No newline. */
void status_short_line(struct daemon *d, struct strbuf *sb);

/* Metrics (metrics.c): bind the address before the fork (0, or -errno with
 * err[256] saying what to do), serve once the peers and quorum exist, stop
 * before they go; the main thread refreshes the dipolefs view between
 * requests. All are no-ops when metrics are off. */
int metrics_bind(struct daemon *d, const char *address, char *err);
int metrics_start(struct daemon *d, char *err);
void metrics_stop(struct daemon *d);
void metrics_fs_refresh(struct daemon *d);

/* Serve one control request `line` on the accepted connection fd: replies
 * and closes fd, except for a `down` it agrees to, where it returns 1 and
 * leaves the reply to the caller (after the shutdown). Else returns 0. */
int control_handle(struct daemon *d, int fd, const char *line);

#endif

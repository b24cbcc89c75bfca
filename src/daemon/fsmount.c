/* fsmount — dipolefs mounts of a running resource: the control requests
 * `fs-mount --dir=DIR --options=OPTS` and `fs-umount --dir=DIR` that
 * `dipole mount`/`mount.dipole`/`dipole umount` send, the role this node
 * takes, serving on demand, and the single-writer rule while a filesystem
 * is mounted anywhere. See daemon_int.h and docs/dipolefs.md "Using it".
 *
 * The role: the owner is the Primary. This node mounts as owner when it is
 * Primary, no connected peer owns the filesystem already (its fs-owner
 * flag) and no connected Primary wins the tie (lower node-id: with
 * allow-two-primaries both may be Primary, and exactly one may own the
 * filesystem); as owner after promoting itself, through the path `dipole
 * primary` takes (quorum, startup, fencing rules), when no node is Primary
 * and its disk is UpToDate; else as a client of the owner or the Primary (a
 * diskless node sees the Primary through its vote links). A client is kept
 * Secondary (demoted first if it was a second Primary and its device is not
 * in use): its loop device is read-only and its NBD export refuses writes.
 *
 * Serving on demand: while this node serves no filesystem, the resource's
 * listener hands CH_FS connections (a client mounting) to this file. If
 * this node may own the filesystem (Primary, device holding ext4/xfs and
 * not in use), it mounts the kernel filesystem privately and serves it
 * without a FUSE mount here; `status` says so, and `secondary`/`down` are
 * refused while clients are connected. `dipole mount` here adds the FUSE
 * mount; unmounting here while clients are connected keeps serving.
 *
 * One writer: an owner tells its peers (engine_set_fs_owner: HELLO and
 * P_STATE flag). A Primary that learns a peer owns the filesystem demotes
 * itself at once when nothing holds its device, else logs why not, keeps
 * serving new NBD clients read-only and demotes once the device is free;
 * `primary` is refused while a peer owns the filesystem.
 *
 * Every refusal comes before anything changed; a failed mount undoes a
 * promotion it made.
 *
 * Locking: the main thread only (daemon_int.h), except the connection
 * queue and the wake eventfd (fs_qlock), which the listener thread and
 * the peers' threads reach through demand_accept and wake.
 */
#include "daemon_int.h"
#include "fsevents.h"
#include "fsprobe.h"
#include "hs.h"
#include "log.h"
#include "loopdev.h"
#include "mounttop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long a client's calls wait for a failover once its owner is lost
 * (then they fail ENOTCONN), ms: the survivor promotes within a tick of
 * the loss, the kernel filesystem's journal replay takes seconds. */
#define FAILOVER_HOLD_MS 30000

static const char *role_word(enum dipolefs_role r)
{
	return r == FSR_OWNER ? "owner" : r == FSR_CLIENT ? "client" : "none";
}

/* The connected disk peer that owns the mounted filesystem, NULL if none. */
static const struct cfg_host *owner_peer(struct daemon *d)
{
	for (int i = 0; i < d->npeers; i++) {
		struct replica_view v;
		peer_view(d->peers[i], &v);
		if (v.fs_owner)
			return cfg_find_host(d->r, peer_name(d->peers[i]));
	}
	return NULL;
}

/* A disk peer this node is not connected to and last saw as Primary (it
 * may still be, behind a cut link), NULL if none. */
static const char *lost_primary(struct daemon *d)
{
	for (int i = 0; i < d->npeers; i++) {
		struct replica_view v;
		peer_view(d->peers[i], &v);
		if (!v.connected && v.was_primary)
			return peer_name(d->peers[i]);
	}
	return NULL;
}

/* What this node knows of host h: 0 with its role and disk (a disk peer's
 * view, or on a diskless node its vote link's), -ENOENT if not connected. */
static int host_state(struct daemon *d, const struct cfg_host *h, int *role, int *disk)
{
	for (int i = 0; i < d->npeers; i++) {
		struct replica_view v;
		if (strcmp(peer_name(d->peers[i]), h->name))
			continue;
		peer_view(d->peers[i], &v);
		*role = v.role;
		*disk = v.disk;
		return v.connected ? 0 : -ENOENT;
	}
	return quorum_link_state(d->quorum, h->node_id, role, disk);
}

/* The connected Primary with the lowest node-id (the one that owns when
 * two are), NULL if none. */
static const struct cfg_host *primary_peer(struct daemon *d)
{
	const struct cfg_host *best = NULL;
	for (int i = 0; i < d->r->nhosts; i++) {
		const struct cfg_host *h = &d->r->hosts[i];
		int role, disk;
		if (h == d->h || h->diskless || host_state(d, h, &role, &disk) || role != ROLE_PRIMARY)
			continue;
		if (!best || h->node_id < best->node_id)
			best = h;
	}
	return best;
}

/* Something holds this node's device: mounted or opened exclusively, or an
 * NBD client connected. */
static int device_busy(struct daemon *d)
{
	return (d->loop_dev[0] && loopdev_busy(d->loop_dev)) || nbd_server_clients(d->nbd) > 0;
}

static int reply(int fd, int code, const char *msg)
{
	ctl_reply(fd, code, msg, NULL);
	return 0;
}

static void wake(struct daemon *d)
{
	uint64_t one = 1;
	pthread_mutex_lock(&d->fs_qlock);
	if (d->fs_wake >= 0)
		(void)!write(d->fs_wake, &one, sizeof one);
	pthread_mutex_unlock(&d->fs_qlock);
}

/* The engine's peer hook (a peer's thread). */
static void peer_changed(void *arg)
{
	wake(arg);
}

/* The listener's CH_FS route while this node serves nothing (the listener
 * thread): queue the connection for the main thread. */
static void demand_accept(void *arg, int fd, const char *from)
{
	struct daemon *d = arg;
	pthread_mutex_lock(&d->fs_qlock);
	int queued = d->fs_nq < (int)ARRAY_SIZE(d->fs_q);
	if (queued) {
		d->fs_q[d->fs_nq].fd = fd;
		snprintf(d->fs_q[d->fs_nq].from, sizeof d->fs_q[0].from, "%s", from);
		d->fs_nq++;
	}
	pthread_mutex_unlock(&d->fs_qlock);
	if (!queued) {
		log_warn("fs: a dipolefs connection from %s dropped: too many waiting to be served", from);
		close(fd);
		return;
	}
	wake(d);
}

int fsmount_refuses_primary(struct daemon *d, char *msg)
{
	const struct cfg_host *op = owner_peer(d);
	if (d->fs && d->fs_role == FSR_CLIENT && !d->fs_takeover) {
		snprintf(msg, 256, "this node mounts %s's filesystem as a client (at %.80s) of %s, which writes the "
			 "device: one writer at a time; unmount it here first", d->r->name, d->fs_dir, d->fs_owner);
		return 1;
	}
	if (op) {
		snprintf(msg, 256, "%s owns %s's mounted filesystem and writes the device: one writer at a time; "
			 "unmount it on every node first", op->name, d->r->name);
		return 1;
	}
	return 0;
}

/* The checks and the role. Returns an exit code with msg[len] set on a
 * refusal; else 0 with *role, and *promote when this node must become
 * Primary first, *demote when it must stop being one. */
static int choose_role(struct daemon *d, enum dipolefs_role *role, int *promote, int *demote, char *msg, size_t len)
{
	struct engine *e = d->e;
	const struct cfg_host *op = owner_peer(d);
	const struct cfg_host *pp = op ? op : primary_peer(d);
	int me_primary = atomic_load(&e->role) == ROLE_PRIMARY;
	int dstate = atomic_load(&e->dstate);

	*promote = *demote = 0;
	if (me_primary && !op && !(pp && pp->node_id < d->h->node_id)) {
		*role = FSR_OWNER;
		snprintf(d->fs_owner, sizeof d->fs_owner, "%s", d->h->name);
		if (pp)
			log_info("fs: peer %s is Primary too (allow-two-primaries): this node (lower node-id) owns the "
				 "filesystem, and %s is told to become Secondary", pp->name, pp->name);
		return 0;
	}
	if (pp) {
		*role = FSR_CLIENT;
		snprintf(d->fs_owner, sizeof d->fs_owner, "%s", pp->name);
		if (me_primary) {
			if (device_busy(d)) {
				snprintf(msg, len, "this node and %s are both Primary (allow-two-primaries) and this node's "
					 "device is in use (mounted, open or an NBD client): the filesystem needs one "
					 "writer, %s; stop using the device here, or make this node "
					 "Secondary, then mount again", pp->name, pp->name);
				return EXIT_STATE;
			}
			*demote = 1;
		}
		return 0;
	}
	if (d->h->diskless) {
		snprintf(msg, len, "no Primary is connected to own the filesystem, and this node has no disk "
			 "(a tiebreaker cannot own it): make a disk node Primary, or mount there");
		return EXIT_STATE;
	}
	/* `mount` promotes by itself, unlike `dipole primary` by hand: a node
	 * restarted while its peer owned the filesystem (fstab at boot, a
	 * killed daemon) must not own a stale copy before it has talked to
	 * that peer, or there are two owners and a split brain. Checked before
	 * the disk state: with quorum a restarted disk is Consistent until it
	 * meets its peer, and the Primary to be a client of may just not be
	 * connected yet. "startup: " tells mount.dipole (at boot) to wait for
	 * the peer and ask again. */
	char why[300];
	if (!startup_may_promote_alone(d, why, sizeof why)) {
		snprintf(msg, len, "startup: no Primary is connected to own the filesystem, and this node has not talked to "
			 "its peer since it started: %s; wait until it connects (dipole status %s), or make this node "
			 "Primary by hand (dipole primary) if the peer is gone for good", why, d->r->name);
		return EXIT_STATE;
	}
	/* nor past a peer it lost while that was Primary, unless quorum
	 * decides (daemon_promote): without a third vote nothing tells a dead
	 * owner from one behind a cut link */
	const char *lost = quorum_enabled(d->quorum) ? NULL : lost_primary(d);
	if (lost) {
		snprintf(msg, len, "%s was Primary when this node lost it, and without quorum (a tiebreaker) nothing "
			 "tells whether it still is: owning the filesystem here could make two owners (a split brain). "
			 "Wait until %s is back (dipole status %s); if it is gone for good, make this node Primary by "
			 "hand (dipole primary %s), then mount", lost, lost, d->r->name, d->r->name);
		return EXIT_STATE;
	}
	if (dstate != DS_UPTODATE) {
		snprintf(msg, len, "this node's disk is %s and no Primary is connected to own the filesystem: "
			 "mount on a node with UpToDate data, or wait until this one is (dipole status %s)",
			 disk_state_name((enum disk_state)dstate), d->r->name);
		return EXIT_STATE;
	}
	*role = FSR_OWNER;
	*promote = 1;
	snprintf(d->fs_owner, sizeof d->fs_owner, "%s", d->h->name);
	return 0;
}

/* The owner mounts the kernel filesystem on the loop device: it must hold
 * one dipolefs serves. */
static int check_device(struct daemon *d, char *type, size_t tlen, char *msg, size_t len)
{
	char err[256];

	if (!d->loop_dev[0]) {
		snprintf(msg, len, "this node exports no loop device (up with --device none), and the owner mounts "
			 "the filesystem on it: bring %s up without --device none", d->r->name);
		return EXIT_STATE;
	}
	if (fsprobe_type(d->loop_dev, type, tlen, err)) {
		snprintf(msg, len, "cannot tell what %s's device %s holds: %s", d->r->name, d->loop_dev, err);
		return EXIT_FAIL;
	}
	if (!type[0]) {
		snprintf(msg, len, "%s's device %s holds no filesystem: make one on the Primary with 'dipole mkfs %s'",
			 d->r->name, d->loop_dev, d->r->name);
		return EXIT_STATE;
	}
	if (!fsprobe_supported(type)) {
		snprintf(msg, len, "%s's device %s holds %s, not ext4 or xfs, the filesystems dipolefs serves: "
			 "'dipole mkfs %s --force' replaces it (destroying its data)", d->r->name, d->loop_dev, type,
			 d->r->name);
		return EXIT_STATE;
	}
	return 0;
}

/* Mount as owner: at dir, or (dir NULL) serving the other nodes only;
 * peers learn that this node owns the filesystem. 0, or -errno with
 * err[256]. */
static int start_owner(struct daemon *d, const char *dir, const char *type, const char *opts, int fuse_fd,
		       char *err)
{
	struct dipolefs_conf c = {
		.r = d->r, .me = d->h, .lsn = d->lsn, .mountpoint = dir, .device = d->loop_dev,
		.fstype = type[0] ? type : NULL, .options = opts, .fuse_fd = fuse_fd,
	};
	int rc = dipolefs_mount(&d->fs, d->e, &c, FSR_OWNER, err);
	if (rc) {
		d->fs = NULL;
		return rc;
	}
	d->fs_role = FSR_OWNER;
	snprintf(d->fs_owner, sizeof d->fs_owner, "%s", d->h->name);
	snprintf(d->fs_dir, sizeof d->fs_dir, "%s", dir ? dir : "");
	engine_set_fs_owner(d->e, 1);
	engine_fs_arm(d->e);
	char why[sizeof d->fs_dir + 64];
	if (dir)
		snprintf(why, sizeof why, "mounted at %s as owner", dir);
	else
		snprintf(why, sizeof why, "a client asked: serving without a mount here");
	fsevents_owner(d->r->name, d->h->name, FSEV_NONE, FSEV_SERVING, why);
	return 0;
}

static int start_client(struct daemon *d, const char *dir, const char *opts, int fuse_fd, char *err)
{
	struct dipolefs_conf c = {
		.r = d->r, .me = d->h, .lsn = d->lsn, .mountpoint = dir, .options = opts, .owner = d->fs_owner,
		.fuse_fd = fuse_fd,
	};
	int rc = dipolefs_mount(&d->fs, d->e, &c, FSR_CLIENT, err);
	if (rc) {
		d->fs = NULL;
		return rc;
	}
	d->fs_role = FSR_CLIENT;
	snprintf(d->fs_dir, sizeof d->fs_dir, "%s", dir);
	return 0;
}

/* The mount point's checks: an existing directory nothing is mounted on. */
static int check_dir(const char *dir, char *msg, size_t len)
{
	struct stat st;
	if (stat(dir, &st) < 0) {
		snprintf(msg, len, "mount point %.200s: %s", dir, strerror(errno));
		return EXIT_USAGE;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(msg, len, "mount point %.200s is not a directory", dir);
		return EXIT_USAGE;
	}
	if (mounttop_busy(dir) == 1) { /* an automount point (autofs) is free */
		snprintf(msg, len, "mount point %.200s is busy: something is mounted there already", dir);
		return EXIT_STATE;
	}
	return 0;
}

/* The first mount on this node since `up`, of a resource whose survivors
 * cannot take over by themselves (cfg_failover: no tiebreaker, no
 * fencing): 1 with the warning, one line ending in a newline, in buf[len],
 * for the mount's reply (the user sees it) and the log. Once per daemon: it
 * is about the configuration, which only a restart changes, and status
 * always says it ("failover"). */
static int failover_warning(struct daemon *d, char *buf, size_t len)
{
	if (d->fs_failover_warned || cfg_failover(d->r) != CFG_FO_NONE || cfg_disk_hosts(d->r) < 2)
		return 0;
	d->fs_failover_warned = 1;
	snprintf(buf, len, "warning: no automatic failover for %s: it has no third vote (a diskless tiebreaker with "
		 "quorum) and no fencing (a fence-peer handler), so if the owner %s dies no other node takes over; "
		 "the mounts stop serving until it returns, or until a surviving node is made Primary by hand "
		 "(dipole primary %s). Add a small third machine as tiebreaker (on NAME { address IP:PORT; disk "
		 "none; } and options { quorum majority; }), or net { fencing resource-only; } (or resource-and-stonith) with handlers { "
		 "fence-peer \"...\"; }: docs/dipolefs.md \"Which nodes can take over\"\n",
		 d->r->name, d->fs_owner, d->r->name);
	log_warn("fs: %.*s", (int)strcspn(buf, "\n"), buf);
	return 1;
}

/* A mount made: reply msg, with the failover warning when it is due. */
static int reply_mounted(struct daemon *d, int fd, const char *msg)
{
	char warn[800];
	log_info("fs: %s", msg);
	ctl_reply(fd, EXIT_OK, msg, failover_warning(d, warn, sizeof warn) ? warn : NULL);
	return 0;
}

/* This node serves the filesystem without a mount here: add the mount. */
static int attach_request(struct daemon *d, int fd, const char *dir, int fuse_fd)
{
	char msg[512], err[256] = "";
	int rc = dipolefs_attach(d->fs, dir, fuse_fd, err);
	if (rc) {
		snprintf(msg, sizeof msg, "mounting %s at %.200s as owner failed: %s", d->r->name, dir,
			 err[0] ? err : strerror(-rc));
		return reply(fd, EXIT_FAIL, msg);
	}
	snprintf(d->fs_dir, sizeof d->fs_dir, "%s", dir);
	snprintf(msg, sizeof msg, "mounted at %.200s as owner (already serving %d clients)", dir,
		 dipolefs_clients(d->fs));
	return reply_mounted(d, fd, msg);
}

static void unmount_here(struct daemon *d, const char *why);
static int cut_off(struct daemon *d, char *why, size_t len);
static void fence_owner(struct daemon *d, const char *why);

/* Become what choose_role said: Primary first, or Secondary first. An
 * exit code with msg on failure. */
static int prepare_role(struct daemon *d, int promote, int demote, const char *dir, char *msg, size_t len)
{
	char why[256];
	int rc;
	if (promote) {
		if ((rc = daemon_promote(d, 0, why))) {
			snprintf(msg, len, "no node is Primary and this node may not become it to own the "
				 "filesystem: %s", why);
			return rc == -EPERM || rc == -EBUSY ? EXIT_STATE : EXIT_FAIL;
		}
		log_info("fs: promoted to Primary to own the filesystem mounted at %s (no node was Primary)", dir);
	}
	if (demote) {
		if ((rc = daemon_demote(d, why))) {
			snprintf(msg, len, "cannot become Secondary to mount as a client of %s: %s", d->fs_owner, why);
			return EXIT_FAIL;
		}
		log_info("fs: demoted to Secondary: %s owns the filesystem (both were Primary, allow-two-primaries; "
			 "lower node-id owns), and the device has one writer while it is mounted", d->fs_owner);
	}
	return 0;
}

int fsmount_request(struct daemon *d, int fd, const struct ctl_req *req)
{
	char dir[sizeof d->fs_dir], opts[1024], msg[512], type[64] = "", err[256] = "";
	enum dipolefs_role role = FSR_NONE;
	int promote, demote, rc;

	if (ctl_req_value(req, "--dir=", dir, sizeof dir) || dir[0] != '/' ||
	    ctl_req_value(req, "--options=", opts, sizeof opts))
		return reply(fd, EXIT_USAGE, "fs-mount needs --dir=ABSOLUTE-PATH and --options=OPTIONS (encoded)");
	/* a plain umount(8) just before (systemd: stop the mount unit, then
	 * an automount request mounts again) that the once-a-second look has
	 * not seen yet: not "already mounted". With --fuse-fd the helper's
	 * new mount is there already, but it saw the automount point on top:
	 * ours at the same place is gone. */
	int fuse_req = ctl_req_has(req, "--fuse-fd");
	if (fuse_req && d->fs && d->fs_dir[0] && !strcmp(d->fs_dir, dir)) {
		dipolefs_mount_gone(d->fs);
		unmount_here(d, "no longer mounted (umount; mount.dipole mounts there again)");
	}
	fsmount_check_unmounted(d);
	if (d->fs && d->fs_dir[0]) {
		snprintf(msg, sizeof msg, "%s is already mounted on this node at %.200s (as %s): one mount per "
			 "resource and node; umount it first", d->r->name, d->fs_dir, role_word(d->fs_role));
		return reply(fd, EXIT_STATE, msg);
	}
	/* --fuse-fd: mount.dipole made the mount (under systemd's automount,
	 * where a lookup of dir from here would wait for this very mount) and
	 * sent its /dev/fuse descriptor along; it checked dir. Else ours. */
	int fuse_fd = 0;
	if (fuse_req) {
		if (d->ctl_passed_fd <= 0)
			return reply(fd, EXIT_USAGE, "fs-mount --fuse-fd came without a descriptor");
		fuse_fd = d->ctl_passed_fd;
	} else if ((rc = check_dir(dir, msg, sizeof msg)))
		return reply(fd, rc, msg);
	if (d->fs) /* an owner serving without a mount here */
		return attach_request(d, fd, dir, fuse_fd);
	if ((rc = choose_role(d, &role, &promote, &demote, msg, sizeof msg)))
		return reply(fd, rc, msg);
	if (role == FSR_OWNER && (rc = check_device(d, type, sizeof type, msg, sizeof msg)))
		return reply(fd, rc, msg);
	if ((rc = prepare_role(d, promote, demote, dir, msg, sizeof msg)))
		return reply(fd, rc, msg);
	rc = role == FSR_OWNER ? start_owner(d, dir, type, opts, fuse_fd, err)
				: start_client(d, dir, opts, fuse_fd, err);
	if (rc) {
		if (promote) {
			char why[256];
			if ((d->loop_dev[0] && loopdev_busy(d->loop_dev)) || daemon_demote(d, why))
				log_warn("fs: mount failed; stays Primary (promoted for it)");
			else
				log_info("fs: mount failed: back to Secondary (promoted only for it)");
		}
		snprintf(msg, sizeof msg, "mounting %s at %.200s as %s failed: %s", d->r->name, dir, role_word(role),
			 err[0] ? err : strerror(-rc));
		return reply(fd, rc == -ENOTCONN || rc == -EBUSY || rc == -EPERM ? EXIT_STATE : EXIT_FAIL, msg);
	}
	if (role == FSR_OWNER)
		snprintf(msg, sizeof msg, "mounted at %.200s as owner (%s on %s)", dir, type, d->loop_dev);
	else
		snprintf(msg, sizeof msg, "mounted at %.200s as client of %s", dir, d->fs_owner);
	return reply_mounted(d, fd, msg);
}

/* Stop serving altogether: the kernel filesystem goes, the peers learn this
 * node owns nothing, and client connections are taken on demand again. */
static void unmount_now(struct daemon *d, const char *why)
{
	log_info("fs: unmounting %s (%s): %s", d->fs_dir[0] ? d->fs_dir : "(served without a mount here)",
		 role_word(d->fs_role), why);
	int owner = d->fs_role == FSR_OWNER;
	char held[200];
	/* unmounting the kernel filesystem writes (journal, superblock): cut
	 * off, that would wait in the kernel, on this thread, for ever. What
	 * is held is given up instead (never acknowledged) */
	if (owner && !d->fs_fence[0] && cut_off(d, held, sizeof held)) {
		char r[240];
		snprintf(r, sizeof r, "unmounted while cut off (%.150s)", held);
		fence_owner(d, r);
	}
	dipolefs_unmount(d->fs);
	d->fs = NULL;
	d->fs_role = FSR_NONE;
	d->fs_dir[0] = 0;
	d->fs_owner[0] = 0;
	if (owner) {
		engine_set_fs_owner(d->e, 0);
		fsevents_owner(d->r->name, d->h->name, FSEV_SERVING, FSEV_NONE, why);
	}
	engine_fs_disarm(d->e);
	d->fs_cut_ns = 0;
	d->fs_fence[0] = 0;
	d->fs_dropped = 0;
	if (d->lsn)
		listener_route_channel(d->lsn, CH_FS, demand_accept, d);
}

static int leave_to_client(struct daemon *d, const char *cause, char *why, size_t len);

/* The user unmounted here: an owner with clients hands the filesystem over
 * to one that can take it (docs/dipolefs.md "Planned handover"), else
 * keeps serving them. */
static void unmount_here(struct daemon *d, const char *why)
{
	int n = d->fs_role == FSR_OWNER ? dipolefs_clients(d->fs) : 0;
	char no[300];
	if (!n) {
		unmount_now(d, why);
		return;
	}
	log_info("fs: unmounting %s here (%s); %d client nodes still have the filesystem mounted", d->fs_dir, why, n);
	dipolefs_detach(d->fs);
	d->fs_dir[0] = 0;
	int rc = leave_to_client(d, "umount", no, sizeof no);
	if (rc > 0)
		log_warn("fs: still serving the filesystem to %d client nodes, not mounted here: %s", n, no);
	else if (rc < 0 && d->fs) {
		log_warn("fs: %s; stops serving", no);
		unmount_now(d, "the handover failed");
	}
}

int fsmount_umount_request(struct daemon *d, int fd, const struct ctl_req *req)
{
	char dir[sizeof d->fs_dir], msg[512];

	if (ctl_req_value(req, "--dir=", dir, sizeof dir))
		return reply(fd, EXIT_USAGE, "fs-umount needs --dir=PATH (encoded)");
	if (!d->fs || !d->fs_dir[0] || strcmp(dir, d->fs_dir)) {
		snprintf(msg, sizeof msg, "%.200s is not where %s is mounted on this node (%s)", dir, d->r->name,
			 d->fs && d->fs_dir[0] ? d->fs_dir : "not mounted");
		return reply(fd, EXIT_STATE, msg);
	}
	unmount_here(d, "dipole umount");
	return reply(fd, EXIT_OK, "");
}

int fsmount_refuses_secondary(struct daemon *d, char *msg)
{
	if (!d->fs || d->fs_role != FSR_OWNER)
		return 0;
	int n = dipolefs_clients(d->fs);
	if (d->fs_dir[0]) {
		snprintf(msg, 256, "refusing to become Secondary: this node owns %s's filesystem, mounted at %.100s; "
			 "unmount it first", d->r->name, d->fs_dir);
		return 1;
	}
	if (n) {
		snprintf(msg, 256, "refusing to become Secondary: this node owns %s's filesystem and serves it to %d "
			 "client nodes (not mounted here); unmount it on them first", d->r->name, n);
		return 1;
	}
	unmount_now(d, "becoming Secondary, no client left");
	return 0;
}

int fsmount_refuses_down(struct daemon *d, int force, char *msg)
{
	char why[300];
	if (!d->fs)
		return 0;
	int n = d->fs_role == FSR_OWNER ? dipolefs_clients(d->fs) : 0;
	if (d->fs_dir[0] && !force) {
		snprintf(msg, 256, "refusing to go down: %s's filesystem is mounted at %.100s; umount it (an owner "
			 "hands it over to a client), or use 'down --force' (its users then get errors)", d->r->name,
			 d->fs_dir);
		return 1;
	}
	if (!n)
		return 0;
	if (d->fs_dir[0]) { /* forced: this node's users get errors, the clients' need not */
		dipolefs_detach(d->fs);
		d->fs_dir[0] = 0;
	}
	int rc = leave_to_client(d, "down", why, sizeof why);
	if (rc < 0)
		log_warn("fs: %s; going down anyway", why);
	if (rc <= 0 || force)
		return 0;
	snprintf(msg, 256, "refusing to go down: this node serves %s's filesystem to %d client nodes and none can "
		 "take it over (%.120s); unmount it on them, or use 'down --force' (their users then get errors)",
		 d->r->name, n, why);
	return 1;
}

/* ---- serving on demand and the peers' ownership --------------------- */

/* May this node serve the filesystem to a client that asked, without a
 * mount here? 0 with type set, or an exit code with msg. */
static int may_serve(struct daemon *d, char *type, size_t tlen, char *msg, size_t len)
{
	const struct cfg_host *op = owner_peer(d), *pp = primary_peer(d);

	if (d->fs) {
		snprintf(msg, len, "%s is mounted on %s as a client of %s, which owns it", d->r->name, d->h->name,
			 d->fs_owner);
		return EXIT_STATE;
	}
	if (atomic_load(&d->e->role) != ROLE_PRIMARY) {
		snprintf(msg, len, "%s is not Primary (the owner is the Primary)%s%s", d->h->name,
			 pp ? "; the Primary is " : "", pp ? pp->name : "");
		return EXIT_STATE;
	}
	if (op || (pp && pp->node_id < d->h->node_id)) {
		snprintf(msg, len, "%s owns the filesystem (%s)", op ? op->name : pp->name,
			 op ? "mounted there" : "both Primary: the lower node-id owns");
		return EXIT_STATE;
	}
	if (device_busy(d)) {
		snprintf(msg, len, "%s's device is in use there (mounted, open or an NBD client): it cannot mount "
			 "the filesystem privately to serve it", d->h->name);
		return EXIT_STATE;
	}
	return check_device(d, type, tlen, msg, len);
}

/* Tell a client why it is refused, after draining its HELLO (closing on
 * unread bytes would reset the connection before the reason arrives). */
static void refuse_client(int fd, const char *why)
{
	uint8_t b[WIRE_HDR + HELLO_BYTES];
	struct timeval tv = { .tv_usec = 500000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	(void)!recv(fd, b, sizeof b, MSG_WAITALL);
	hs_refuse(fd, why);
	shutdown(fd, SHUT_WR);
	close(fd);
}

static void owner_check(struct daemon *d);
static void take_over(struct daemon *d, int planned);

/* One queued client connection: serve it, starting to serve if need be. */
static void serve_one(struct daemon *d, int fd, const char *from)
{
	char msg[256], type[64] = "";
	/* the owner handing the filesystem over (fs move) connects to the node
	 * it chose: that node takes it over */
	if (d->fs && d->fs_role == FSR_CLIENT) {
		owner_check(d);
		if (d->fs_owner_released)
			take_over(d, 1);
	}
	if (d->fs && d->fs_role == FSR_OWNER) {
		dipolefs_accept(d->fs, fd, from);
		return;
	}
	int rc = may_serve(d, type, sizeof type, msg, sizeof msg);
	if (!rc && start_owner(d, NULL, type, "", 0, msg))
		rc = EXIT_FAIL;
	if (rc) {
		log_warn("fs: a client at %s asked this node to serve %s's filesystem: refused: %s", from, d->r->name,
			 msg);
		refuse_client(fd, msg);
		return;
	}
	log_info("fs: serving %s's filesystem (%s on %s) to the other nodes, not mounted here: a client at %s "
		 "asked, and this node is Primary", d->r->name, type, d->loop_dev, from);
	dipolefs_accept(d->fs, fd, from);
}

static void serve_queued(struct daemon *d)
{
	for (;;) {
		int fd;
		char from[64];
		pthread_mutex_lock(&d->fs_qlock);
		if (!d->fs_nq) {
			pthread_mutex_unlock(&d->fs_qlock);
			return;
		}
		fd = d->fs_q[0].fd;
		snprintf(from, sizeof from, "%s", d->fs_q[0].from);
		memmove(&d->fs_q[0], &d->fs_q[1], (size_t)(--d->fs_nq) * sizeof d->fs_q[0]);
		pthread_mutex_unlock(&d->fs_qlock);
		serve_one(d, fd, from);
	}
}

/* Log why once per reason (the check runs every tick). */
static void tell_once(struct daemon *d, const char *why)
{
	if (!strcmp(d->fs_told, why))
		return;
	snprintf(d->fs_told, sizeof d->fs_told, "%s", why);
	log_warn("fs: %s", why);
}

/* A peer owns the mounted filesystem: this node keeps off the device. */
static void peers_check(struct daemon *d)
{
	const struct cfg_host *op = owner_peer(d);
	char why[256];

	atomic_store(&d->e->fs_other_owner, op != NULL);
	if (!op) {
		d->fs_told[0] = 0;
		return;
	}
	if (d->fs && d->fs_role == FSR_OWNER) {
		/* a cut-off owner back after this node went on claims it until the
		 * handshake's fence reaches its daemon (a second at most) */
		snprintf(why, sizeof why, "%s claims to own the filesystem this node owns: a stale owner coming "
			 "back (fenced once it learns), else a bug; if it lasts, unmount on one of them", op->name);
		tell_once(d, why);
		return;
	}
	if (atomic_load(&d->e->role) != ROLE_PRIMARY)
		return;
	if (device_busy(d)) {
		snprintf(why, sizeof why, "%s owns the mounted filesystem, but this node stays Primary: its device is "
			 "in use (mounted, open or an NBD client); new NBD clients get it read-only, and it becomes "
			 "Secondary once the device is free", op->name);
		tell_once(d, why);
		return;
	}
	if (daemon_demote(d, why)) {
		char m[256];
		snprintf(m, sizeof m, "%s owns the mounted filesystem; cannot become Secondary: %.150s", op->name, why);
		tell_once(d, m);
		return;
	}
	d->fs_told[0] = 0;
	log_info("fs: demoted to Secondary: %s owns %s's mounted filesystem (both were Primary, "
		 "allow-two-primaries), and the device has one writer while it is mounted", op->name, d->r->name);
}

/* A client whose owner's replication link went down (ping-timeout: a
 * power cut, a cut link) drops its filesystem connection once, so its
 * callers get ENOTCONN instead of hanging on a silent socket; `umount` and
 * a promotion by hand must not wait for TCP to give up either. */
static void owner_check(struct daemon *d)
{
	const struct cfg_host *o;
	int role, disk;
	if (!d->fs || d->fs_role != FSR_CLIENT || !(o = cfg_find_host(d->r, d->fs_owner))) {
		d->fs_owner_lost = d->fs_owner_released = 0;
		return;
	}
	int lost = host_state(d, o, &role, &disk) != 0;
	/* a planned handover (fs move): the owner let go and is Secondary;
	 * calls wait for the node it hands over to */
	int released = !lost && role != ROLE_PRIMARY && !owner_peer(d);
	if (released && !d->fs_owner_released)
		dipolefs_hold(d->fs, FAILOVER_HOLD_MS);
	d->fs_owner_released = released;
	if (lost && !d->fs_owner_lost) {
		char why[160];
		snprintf(why, sizeof why, "%s is not connected to this node any more", d->fs_owner);
		d->fs_lost_ns = now_ns();
		/* calls wait for a switch rather than fail, where one may come */
		if (quorum_enabled(d->quorum) || cfg_failover(d->r) == CFG_FO_FENCING)
			dipolefs_hold(d->fs, FAILOVER_HOLD_MS);
		dipolefs_owner_lost(d->fs, why);
	}
	if (!lost && d->fs_owner_lost && !released) /* back: no switch comes */
		dipolefs_unhold(d->fs);
	d->fs_owner_lost = lost;
}

/* ---- a cut-off owner (docs/dipolefs.md "A cut-off owner") ------------ */

/* Is this owner cut off: no quorum (quorum on; also with on-no-quorum
 * io-error, where nothing is suspended), or its I/O suspended (fencing,
 * the two-Primary rule, a peer's fate open: also with quorum, when the
 * other side went on)? why[len] says which. The winning side's hold
 * while a peer's lease runs out counts too: io-timeout must exceed it. */
static int cut_off(struct daemon *d, char *why, size_t len)
{
	if (quorum_enabled(d->quorum) && !quorum_have(d->quorum)) {
		snprintf(why, len, "no quorum");
		return 1;
	}
	if (!engine_is_suspended(d->e))
		return 0;
	pthread_mutex_lock(&d->e->lock);
	snprintf(why, len, "I/O suspended: %.150s", d->e->suspend_reason);
	pthread_mutex_unlock(&d->e->lock);
	return 1;
}

/* The owner was cut off for io-timeout, or the engine fenced its epoch (a
 * peer went on without it: peer_agree.c): the mount fails with EIO, the
 * engine refuses the old epoch's I/O, the peers stop seeing an owner. */
static void fence_owner(struct daemon *d, const char *why)
{
	snprintf(d->fs_fence, sizeof d->fs_fence, "this node lost the right to write: %.200s", why);
	dipolefs_fence(d->fs, why);
	engine_fs_fence(d->e, why);
	engine_set_fs_owner(d->e, 0);
}

/* Fenced: drop the kernel mount once no call is inside it, then become
 * Secondary (a Primary that may not write is what split brains are made
 * of); the FUSE mount answers EIO until unmounted. */
static void drop_fenced(struct daemon *d)
{
	char msg[256];
	if (d->fs_dropped || dipolefs_drop_kernel(d->fs))
		return;
	if (!d->fs_dir[0]) /* served without a mount here: nothing is left to answer EIO */
		unmount_now(d, "fenced");
	else
		d->fs_dropped = 1;
	d->fs_role = FSR_NONE;
	d->fs_owner[0] = 0;
	engine_fs_disarm(d->e);
	if (atomic_load(&d->e->role) == ROLE_PRIMARY && daemon_demote(d, msg))
		log_warn("fs: a fenced owner stays Primary: %s", msg);
	else
		log_warn("fs: a fenced owner became Secondary; it rejoins as a SyncTarget when its peers are back");
}

static void cutoff_check(struct daemon *d)
{
	char why[200];
	if (!d->fs || (d->fs_role != FSR_OWNER && !d->fs_fence[0])) {
		d->fs_cut_ns = 0;
		return;
	}
	if (!d->fs_fence[0] && engine_fs_stale(d->e, why))
		fence_owner(d, why);
	if (d->fs_fence[0]) {
		drop_fenced(d);
		return;
	}
	if (!cut_off(d, why, sizeof why)) {
		d->fs_cut_ns = 0;
		return;
	}
	uint64_t now = now_ns();
	double limit = dipolefs_io_timeout(d->fs);
	if (!d->fs_cut_ns) {
		d->fs_cut_ns = now;
		log_warn("fs: this owner is cut off (%s); its I/O fails with EIO after io-timeout=%g s unless that "
			 "ends first", why, limit);
	}
	if (limit <= 0 || (double)(now - d->fs_cut_ns) < limit * 1e9)
		return;
	char r[200];
	snprintf(r, sizeof r, "cut off (%.120s) for io-timeout=%g s", why, limit);
	fence_owner(d, r);
	drop_fenced(d);
}

/* ---- failover (docs/dipolefs.md "Failover") ----------------------------- */

/* Log the failover state once per state (the check runs every tick). */
static int failover_tell(struct daemon *d, const char *why)
{
	if (!strcmp(d->fs_failover_told, why))
		return 0;
	snprintf(d->fs_failover_told, sizeof d->fs_failover_told, "%s", why);
	log_warn("fs: %s", why);
	return 1;
}

/* This node does not take the filesystem over, for why: a log line and an
 * fs:takeover event, once per reason */
static void takeover_refused_tell(struct daemon *d, const char *why)
{
	if (failover_tell(d, why))
		fsevents_takeover_refused(d->r->name, d->h->name, d->fs_owner, why);
}

/* Another node took the filesystem over: forward to it, same mount. */
static void follow(struct daemon *d, const struct cfg_host *o, int planned)
{
	char err[256] = "", m[200];
	struct dipolefs_conf c = { .r = d->r, .me = d->h, .lsn = d->lsn, .owner = o->name };
	if (dipolefs_follow(d->fs, &c, planned, err)) {
		snprintf(m, sizeof m, "the owner %s is lost and %s is Primary; not reachable yet: %.120s", d->fs_owner,
			 o->name, err);
		failover_tell(d, m);
		return;
	}
	log_info("fs: the owner %s %s; %s took the filesystem over: this mount forwards to it", d->fs_owner,
		 planned ? "handed it over" : "is lost", o->name);
	snprintf(d->fs_owner, sizeof d->fs_owner, "%s", o->name);
	d->fs_owner_lost = 0;
	d->fs_failover_told[0] = 0;
}

/* The fence-peer handler's thread: its word and verdict, then done. */
static void *fence_main(void *arg)
{
	struct daemon *d = arg;
	d->fs_fence_ok = peer_fence(d->fs_fence_peer, d->fs_fence_word, sizeof d->fs_fence_word);
	atomic_store(&d->fs_fence_running, 0);
	wake(d);
	return NULL;
}

/* The handler's thread ended: join it. Main thread. */
static void fence_join(struct daemon *d)
{
	if (d->fs_fence_joinable && !atomic_load(&d->fs_fence_running)) {
		pthread_join(d->fs_fence_thr, NULL);
		d->fs_fence_joinable = 0;
	}
}

/* 1 with why while the fence-peer handler runs, else 0. Changes nothing
 * (status asks it too). */
static int fence_running(struct daemon *d, char *why, size_t len)
{
	if (!atomic_load(&d->fs_fence_running))
		return 0;
	snprintf(why, len, "the owner %s is lost; the fence-peer handler runs against it (for %llu s): this node takes "
		 "the filesystem over once it fenced it", peer_name(d->fs_fence_peer),
		 (unsigned long long)((now_ns() - d->fs_fence_start_ns) / 1000000000ull));
	return 1;
}

/* Fencing without quorum: the lost owner may be alive behind a cut link;
 * the fence-peer handler (the block layer's, peer_fence) decides, once per
 * loss, on a thread of its own. 0 when it fenced the owner (writes then
 * stop waiting for it); 1 with why when it did not, and a refusal lets
 * the held calls fail (ENOTCONN); 2 with why while it runs (calls stay
 * held). */
static int owner_unfenced(struct daemon *d, char *why, size_t len)
{
	if (fence_running(d, why, len))
		return 2;
	fence_join(d);
	if (d->fs_fenced_loss != d->fs_lost_ns) {
		struct peer *p = NULL;
		for (int i = 0; i < d->npeers; i++)
			if (!strcmp(peer_name(d->peers[i]), d->fs_owner))
				p = d->peers[i];
		d->fs_fenced_loss = d->fs_lost_ns;
		d->fs_fence_seen = 0;
		d->fs_fence_ok = 0;
		snprintf(d->fs_fence_word, sizeof d->fs_fence_word, "%s is not a disk peer", d->fs_owner);
		if (p) {
			log_info("fs: the owner %s is lost; running the fence-peer handler before taking the filesystem "
				 "over", d->fs_owner);
			d->fs_fence_peer = p;
			d->fs_fence_start_ns = now_ns();
			atomic_store(&d->fs_fence_running, 1);
			if (!pthread_create(&d->fs_fence_thr, NULL, fence_main, d)) {
				d->fs_fence_joinable = 1;
				return owner_unfenced(d, why, len);
			}
			atomic_store(&d->fs_fence_running, 0);
			snprintf(d->fs_fence_word, sizeof d->fs_fence_word, "no thread for the fence-peer handler");
		}
	}
	if (!d->fs_fence_seen) {
		d->fs_fence_seen = 1;
		if (d->fs_fence_ok) {
			log_info("fs: %s: the old owner %s cannot be writing", d->fs_fence_word, d->fs_owner);
			peer_io_resumed(d->fs_fence_peer);
		} else
			dipolefs_unhold(d->fs);
	}
	if (d->fs_fence_ok)
		return 0;
	snprintf(why, len, "the owner %s is lost; not taking the filesystem over: %s, so %s may still be writing "
		 "behind a cut link; calls fail ENOTCONN until it returns (or `dipole primary %s` here if it is down "
		 "for good)", d->fs_owner, d->fs_fence_word, d->fs_owner, d->r->name);
	return 1;
}

/* May this client node take the filesystem over? Only by the block
 * layer's rules: quorum (a tiebreaker's vote) makes the other side freeze
 * before this one may promote (quorum_may_promote, in daemon_promote);
 * without quorum, a fence-peer handler that fenced the owner. 0, or 1 with
 * why, or 2 with why while the handler runs. */
static int takeover_refused(struct daemon *d, char *why, size_t len)
{
	int fencing = !quorum_enabled(d->quorum) && cfg_failover(d->r) == CFG_FO_FENCING;
	if (d->h->diskless) {
		snprintf(why, len, "the owner %s is lost; waiting for a disk node to take the filesystem over", d->fs_owner);
		return 1;
	}
	if (!quorum_enabled(d->quorum) && !fencing) {
		snprintf(why, len, "the owner %s is lost; not taking the filesystem over: automatic failover needs a "
			 "tiebreaker (quorum majority with a diskless third node) or fencing (a fence-peer handler), else "
			 "two nodes that lost each other could both write; `dipole primary %s` here if %s is down for good",
			 d->fs_owner, d->r->name, d->fs_owner);
		return 1;
	}
	const struct cfg_host *o = cfg_find_host(d->r, d->fs_owner);
	if (!fencing && o && quorum_voter_sees(d->quorum, o->node_id)) {
		snprintf(why, len, "the owner %s is lost to this node only: the tiebreaker still sees it, so it goes "
			 "on and this node does not take the filesystem over", d->fs_owner);
		return 1;
	}
	if (atomic_load(&d->e->dstate) != DS_UPTODATE) {
		snprintf(why, len, "the owner %s is lost; this node's disk is %s: it cannot take the filesystem over",
			 d->fs_owner, disk_state_name((enum disk_state)atomic_load(&d->e->dstate)));
		return 1;
	}
	return fencing ? owner_unfenced(d, why, len) : 0;
}

/* Become the owner: promote (quorum permitting), mount the kernel
 * filesystem (its journal replay is the recovery) and switch this node's
 * mount to serving, without remounting it. */
static void take_over(struct daemon *d, int planned)
{
	char why[256], m[300], type[64] = "";
	int promoted = 0;
	struct fsevents_failover fo = { .old_owner = d->fs_owner, .new_owner = d->h->name,
					.lost_ns = planned ? 0 : d->fs_lost_ns };
	int refused = planned ? 0 : takeover_refused(d, why, sizeof why);
	if (refused == 2) /* the fence-peer handler runs: said, not refused */
		failover_tell(d, why);
	if (refused == 1)
		takeover_refused_tell(d, why);
	if (refused)
		return;
	if (atomic_load(&d->e->role) != ROLE_PRIMARY) {
		d->fs_takeover = 1;
		int rc = daemon_promote(d, 0, why);
		d->fs_takeover = 0;
		if (rc) {
			snprintf(m, sizeof m, "the owner %s is lost; not taking over (yet): %s", d->fs_owner, why);
			takeover_refused_tell(d, m);
			return;
		}
		promoted = 1;
		fo.promoted_ns = now_ns();
	}
	int rc = check_device(d, type, sizeof type, why, sizeof why);
	struct dipolefs_conf c = { .r = d->r, .me = d->h, .lsn = d->lsn, .device = d->loop_dev, .fstype = type };
	if (!rc && (rc = dipolefs_take_over(d->fs, &c, planned, why)) == 0) {
		log_info("fs: the owner %s %s; this node took the filesystem over%s: owner of %s", d->fs_owner,
			 planned ? "handed it over" : "is lost",
			 !promoted || planned ? "" : d->fs_fenced_loss == d->fs_lost_ns && d->fs_fence_ok
			 ? " (promoted to Primary: the fence-peer handler fenced the old owner)"
			 : " (promoted to Primary, with quorum)", d->fs_dir);
		/* the switch let the held calls go: the first is served now */
		fo.served_ns = now_ns();
		fsevents_failover(d->r->name, &fo, planned ? "planned handover (fs move)" : "the owner is lost");
		d->fs_role = FSR_OWNER;
		snprintf(d->fs_owner, sizeof d->fs_owner, "%s", d->h->name);
		d->fs_owner_lost = 0;
		d->fs_failover_told[0] = 0;
		engine_set_fs_owner(d->e, 1);
		engine_fs_arm(d->e);
		return;
	}
	snprintf(m, sizeof m, "the owner %s is lost; taking the filesystem over failed: %s", d->fs_owner, why);
	failover_tell(d, m);
	if (promoted && !(d->loop_dev[0] && loopdev_busy(d->loop_dev)) && daemon_demote(d, why))
		log_warn("fs: stays Primary after the failed take-over: %s", why);
}

/* A client whose owner is lost follows a node that took over, or takes
 * over itself where the rules allow; else its calls fail (or wait, held,
 * up to FAILOVER_HOLD_MS). */
static void failover_check(struct daemon *d)
{
	if (!d->fs || d->fs_role != FSR_CLIENT || !(d->fs_owner_lost || d->fs_owner_released)) {
		d->fs_failover_told[0] = 0;
		return;
	}
	const struct cfg_host *op = owner_peer(d), *pp = op ? op : primary_peer(d);
	if (pp && strcmp(pp->name, d->fs_owner))
		follow(d, pp, d->fs_owner_released);
	else if (!pp && d->fs_owner_lost) /* a handover names its node: serve_one */
		take_over(d, 0);
}

int fsmount_start(struct daemon *d)
{
	pthread_mutex_init(&d->fs_qlock, NULL);
	d->fs_nq = 0;
	d->fs_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->fs_wake < 0)
		return -errno;
	d->e->peer_hook_arg = d;
	d->e->peer_hook = peer_changed;
	if (d->lsn)
		listener_route_channel(d->lsn, CH_FS, demand_accept, d);
	return 0;
}

int fsmount_wake_fd(struct daemon *d)
{
	return d->fs_wake;
}

void fsmount_woken(struct daemon *d)
{
	uint64_t n;
	(void)!read(d->fs_wake, &n, sizeof n);
	serve_queued(d);
	cutoff_check(d);
	peers_check(d);
	owner_check(d);
	failover_check(d);
}

/* Why the mount is not serving, "" when it is (the mount's own reason, a
 * client reconnecting, comes first: dipolefs.c). */
static void fs_reason(struct daemon *d, char *buf, size_t len)
{
	const struct cfg_host *o = cfg_find_host(d->r, d->fs_owner);
	int role = atomic_load(&d->e->role), disk = atomic_load(&d->e->dstate);
	char held[256];

	buf[0] = 0;
	if (d->fs_fence[0]) {
		snprintf(buf, len, "fenced: %s; calls fail with EIO%s", d->fs_fence,
			 d->fs_dropped ? ", the kernel mount is dropped; unmount, and mount again (as a client)" : "");
		return;
	}
	if (d->fs_role == FSR_CLIENT && (!o || host_state(d, o, &role, &disk))) {
		snprintf(buf, len, "no owner reachable: %s is not connected to this node", d->fs_owner);
		return;
	}
	/* held I/O first: losing quorum also outdates the disk, and the hold
	 * is what the user waits for */
	if (role != ROLE_PRIMARY)
		snprintf(buf, len, "the owner %s is not Primary", d->fs_owner);
	else if (d->fs_role == FSR_OWNER && quorum_held(d->quorum, held))
		snprintf(buf, len, "I/O suspended on the owner: %s", held);
	else if (d->fs_role == FSR_OWNER && engine_is_suspended(d->e))
		snprintf(buf, len, "I/O suspended on the owner (dipole resume-io %s)", d->r->name);
	else if (disk != DS_UPTODATE)
		snprintf(buf, len, "owner's disk not UpToDate: %s's disk is %s", d->fs_owner,
			 disk >= 0 ? disk_state_name((enum disk_state)disk) : "unknown");
	double limit = d->fs ? dipolefs_io_timeout(d->fs) : 0;
	if (d->fs_cut_ns && limit > 0) {
		char cut[96];
		double left = limit - (double)(now_ns() - d->fs_cut_ns) / 1e9;
		int n = snprintf(cut, sizeof cut, "; cut off: calls fail with EIO in %.0f s (io-timeout=%g s)",
				 left > 0 ? left : 0, limit);
		size_t used = strlen(buf);
		if (used + (size_t)n >= len && len > (size_t)n + 4) { /* the why of the hold gives way */
			used = len - (size_t)n - 4;
			memcpy(buf + used, "...", 4);
			used += 3;
		}
		snprintf(buf + used, len - used, "%s", used ? cut : cut + 2);
	}
}

void fsmount_check_unmounted(struct daemon *d)
{
	/* a plain umount(8) of the FUSE mount: release the kernel filesystem
	 * (what is left may be systemd's automount point, autofs) */
	if (d->fs && d->fs_dir[0] && mounttop_has_dipolefs(d->fs_dir) == 0)
		unmount_here(d, "no longer mounted (umount)");
}

/* The number after "key": in our own JSON, 0 if absent. */
static unsigned json_count(const char *j, const char *key)
{
	const char *p = j ? strstr(j, key) : NULL;
	return p ? (unsigned)strtoul(p + strlen(key), NULL, 10) : 0;
}

/* The hosts with a replication (or vote) link to this node now: bit n,
 * node id n. */
static uint64_t hosts_up(struct daemon *d)
{
	uint64_t up = 0;
	for (int i = 0; i < d->r->nhosts; i++) {
		const struct cfg_host *h = &d->r->hosts[i];
		int role, disk;
		if (h != d->h && h->node_id >= 0 && h->node_id < 64 && !host_state(d, h, &role, &disk))
			up |= 1ULL << h->node_id;
	}
	return up;
}

/* A lock grace period that ran out its duration ends without a call
 * (locks.c looks at the clock when asked): say so in the events. A node
 * it waits for that is gone at the block layer is not waited for. */
static void grace_check(struct daemon *d)
{
	struct fsevents_totals ft;
	fsevents_totals(&ft);
	if (!ft.grace_active || !d->fs || d->fs_role != FSR_OWNER)
		return;
	dipolefs_grace_reachable(d->fs, hosts_up(d));
	struct strbuf sb = { 0 };
	dipolefs_status_json(d->fs, &sb);
	if (sb.buf && strstr(sb.buf, "\"grace\":false"))
		fsevents_grace_end(d->r->name, json_count(sb.buf, "\"reclaims\":"), json_count(sb.buf, "\"locks_lost\":"),
				   "expired");
	strbuf_free(&sb);
}

int fsmount_tick(struct daemon *d)
{
	grace_check(d);
	serve_queued(d);
	cutoff_check(d);
	peers_check(d);
	fsmount_check_unmounted(d);
	owner_check(d);
	failover_check(d);
	return d->fs || d->npeers ? 1000 : -1;
}

void fsmount_stop(struct daemon *d)
{
	/* the handler ends by itself (like the block layer's, it has no
	 * timeout of its own: docs/dipolefs.md): wait for it */
	if (d->fs_fence_joinable) {
		pthread_join(d->fs_fence_thr, NULL);
		d->fs_fence_joinable = 0;
	}
	if (d->fs)
		unmount_now(d, "the resource goes down");
	if (d->lsn)
		listener_route_channel(d->lsn, CH_FS, NULL, NULL);
	pthread_mutex_lock(&d->fs_qlock);
	for (int i = 0; i < d->fs_nq; i++)
		close(d->fs_q[i].fd);
	d->fs_nq = 0;
	if (d->fs_wake >= 0)
		close(d->fs_wake);
	d->fs_wake = -1;
	pthread_mutex_unlock(&d->fs_qlock);
}

/* Which case lets a survivor take over, for status's text. */
static void failover_text(struct daemon *d, struct strbuf *sb)
{
	const struct cfg_resource *r = d->r;
	enum cfg_failover fo = cfg_failover(r);
	strbuf_printf(sb, "  fs failover: %s", cfg_failover_name(fo));
	if (fo == CFG_FO_TIEBREAKER || fo == CFG_FO_QUORUM) {
		for (int i = 0, n = 0; fo == CFG_FO_TIEBREAKER && i < r->nhosts; i++)
			if (r->hosts[i].diskless)
				strbuf_printf(sb, "%s%s", n++ ? "," : " (", r->hosts[i].name);
		strbuf_printf(sb, "%s: if a node dies, the side with %d of %d votes may take over\n",
			      fo == CFG_FO_TIEBREAKER ? ")" : "", r->quorum_votes, r->nhosts);
	} else if (fo == CFG_FO_FENCING) {
		strbuf_printf(sb, ": if the owner dies, a survivor may take over once the fence-peer handler fenced it\n");
		char why[256];
		if (fence_running(d, why, sizeof why))
			strbuf_printf(sb, "  fs failover now: %s\n", why);
	}
	else
		strbuf_printf(sb, ": no tiebreaker and no fencing; if the owner dies, no other node takes over by "
			      "itself (docs/dipolefs.md \"Which nodes can take over\")\n");
	struct fsevents_totals t;
	fsevents_totals(&t);
	if (t.failovers)
		strbuf_printf(sb, "  fs takeovers here: %llu, the last served again %llu ms after the owner was lost\n",
			      (unsigned long long)t.failovers, (unsigned long long)t.last_failover_ms);
}

void fsmount_status_json(struct daemon *d, struct strbuf *sb)
{
	char why[256];
	strbuf_printf(sb, "\"fs\":");
	if (!d->fs) {
		strbuf_printf(sb, "null");
		return;
	}
	fs_reason(d, why, sizeof why);
	dipolefs_set_reason(d->fs, why);
	dipolefs_status_json(d->fs, sb);
	/* the object is dipolefs's; the configuration's part is added here */
	if (sb->len && sb->buf[sb->len - 1] == '}') {
		sb->buf[--sb->len] = 0;
		struct fsevents_totals t;
		fsevents_totals(&t);
		strbuf_printf(sb, ",\"failover\":\"%s\",\"failovers\":%llu,\"last_failover_ms\":%llu",
			      cfg_failover_name(cfg_failover(d->r)), (unsigned long long)t.failovers,
			      (unsigned long long)t.last_failover_ms);
		/* the engine's write epoch this node's kernel mount is armed
		 * with (0: none here) and whether it was fenced */
		strbuf_printf(sb, ",\"write_epoch\":%llu,\"write_epoch_fenced\":%s}",
			      (unsigned long long)atomic_load(&d->e->fs_armed),
			      engine_fs_stale(d->e, NULL) ? "true" : "false");
	}
}

void fsmount_status_text(struct daemon *d, struct strbuf *sb)
{
	char why[256];
	if (!d->fs)
		return;
	fs_reason(d, why, sizeof why);
	dipolefs_set_reason(d->fs, why);
	dipolefs_status_text(d->fs, sb);
	failover_text(d, sb);
}

/* ---- planned handover: dipole fs move RES NODE ------------------------- */

/* Can NODE take the filesystem over from this owner? 0 with *h, or an
 * exit code with msg. */
static int move_target(struct daemon *d, const char *node, const struct cfg_host **h, char *msg, size_t len)
{
	int role, disk;
	*h = cfg_find_host(d->r, node);
	if (!*h) {
		snprintf(msg, len, "%s is not a host of resource %s", node, d->r->name);
		return EXIT_USAGE;
	}
	if (!d->fs || d->fs_role != FSR_OWNER) {
		snprintf(msg, len, "this node does not own %s's filesystem%s%s: run fs move on the owner", d->r->name,
			 d->fs ? "; the owner is " : "", d->fs ? d->fs_owner : "");
		return EXIT_STATE;
	}
	if (*h == d->h || (*h)->diskless) {
		snprintf(msg, len, "%s %s", node, *h == d->h ? "owns the filesystem already" :
			 "has no disk (a tiebreaker cannot own the filesystem)");
		return EXIT_STATE;
	}
	if (host_state(d, *h, &role, &disk)) {
		snprintf(msg, len, "%s is not connected to this node", node);
		return EXIT_STATE;
	}
	if (disk != DS_UPTODATE) {
		snprintf(msg, len, "%s's disk is %s, not UpToDate: it cannot own the filesystem", node,
			 disk >= 0 ? disk_state_name((enum disk_state)disk) : "unknown");
		return EXIT_STATE;
	}
	if (!dipolefs_has_client(d->fs, node)) {
		snprintf(msg, len, "%s has not mounted %s's filesystem (it takes over through its mount): mount it "
			 "there first", node, d->r->name);
		return EXIT_STATE;
	}
	return 0;
}

/* After the release: hand over to h, which takes the filesystem over when
 * this node connects to it (serve_one there), for up to 20 s. */
static int hand_over(struct daemon *d, const struct cfg_host *h, char *err)
{
	struct dipolefs_conf c = { .r = d->r, .me = d->h, .lsn = d->lsn, .owner = h->name };
	int rc = -ETIMEDOUT;
	for (int i = 0; i < 100 && rc; i++) {
		if (i)
			usleep(200000); /* its view of this node's demotion may lag */
		rc = dipolefs_follow(d->fs, &c, 1, err);
	}
	return rc;
}

/* Hand this owner's filesystem over to h (cause: "fs move", "umount",
 * "down"): drain, flush, unmount, demote, then h takes it over. 0; or -1
 * with msg when released but h did not take over (this node's mount, if
 * any, waits as a client). A node left without a mount here stops. */
static int move_to(struct daemon *d, const struct cfg_host *h, const char *cause, char *msg, size_t len)
{
	char why[256] = "";
	log_info("fs: handing %s's filesystem over to %s (%s): drain, flush, unmount, demote", d->r->name, h->name,
		 cause);
	if (dipolefs_release(d->fs, why)) {
		snprintf(msg, len, "%s", why);
		return -1;
	}
	engine_set_fs_owner(d->e, 0);
	engine_fs_disarm(d->e); /* the kernel mount is gone */
	if (daemon_demote(d, why))
		log_warn("fs: %s: cannot become Secondary: %s", cause, why);
	d->fs_role = FSR_CLIENT;
	snprintf(d->fs_owner, sizeof d->fs_owner, "%s", h->name);
	if (d->lsn)
		listener_route_channel(d->lsn, CH_FS, demand_accept, d);
	if (hand_over(d, h, why)) {
		snprintf(msg, len, "released, but %s did not take the filesystem over: %.150s", h->name, why);
		return -1;
	}
	if (!d->fs_dir[0]) { /* it served without a mount here: nothing left to forward */
		char done[80];
		snprintf(done, sizeof done, "handed over to another node (%s)", cause);
		unmount_now(d, done);
	}
	snprintf(msg, len, "%s now owns %s's filesystem%s", h->name, d->r->name,
		 d->fs_dir[0] ? "; mounted here as its client" : "");
	log_info("fs: %s", msg);
	return 0;
}

/* An owner leaving (umount, down) with clients: hand over to the first
 * client that fs move would accept. 0 done; 1 with why when none can take
 * it (nothing changed); -1 with why when the handover failed midway. */
static int leave_to_client(struct daemon *d, const char *cause, char *why, size_t len)
{
	const struct cfg_host *h = NULL;
	size_t used = 0;
	why[0] = 0;
	for (int i = 0; i < d->r->nhosts; i++) {
		const struct cfg_host *c = &d->r->hosts[i];
		char no[256];
		if (c == d->h || !dipolefs_has_client(d->fs, c->name))
			continue;
		if (!move_target(d, c->name, &h, no, sizeof no))
			return move_to(d, h, cause, why, len) ? -1 : 0;
		used += (size_t)snprintf(why + used, len - used, "%s%s", used ? "; " : "", no);
		if (used >= len)
			used = len - 1;
	}
	if (!why[0])
		snprintf(why, len, "no client node left");
	return 1;
}

int fsmount_move_request(struct daemon *d, int fd, const struct ctl_req *req)
{
	char node[64], msg[512];
	const struct cfg_host *h;
	int rc;
	if (ctl_req_value(req, "--node=", node, sizeof node))
		return reply(fd, EXIT_USAGE, "fs-move needs --node=NODE");
	if ((rc = move_target(d, node, &h, msg, sizeof msg)))
		return reply(fd, rc, msg);
	if (move_to(d, h, "fs move", msg, sizeof msg)) {
		if (d->fs_role == FSR_CLIENT)
			snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "; this node's mount waits (dipole status %s)",
				 d->r->name);
		log_warn("fs: %s", msg);
		return reply(fd, EXIT_FAIL, msg);
	}
	return reply(fd, EXIT_OK, msg);
}

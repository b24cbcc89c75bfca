/* fsmount — dipolefs mounts of a running resource: the control requests
 * `fs-mount --dir=DIR --options=OPTS` and `fs-umount --dir=DIR` that
 * `dipole mount`/`mount.dipole`/`dipole umount` send, the role this node
 * takes, and the single-writer rule while a mount exists. See daemon_int.h
 * and docs/dipolefs.md "Using it".
 *
 * The role: the owner is the Primary. This node mounts as owner when it is
 * Primary and no connected peer is a Primary that wins the tie (lower
 * node-id: with allow-two-primaries both may be Primary, and exactly one may
 * own the filesystem); as owner after promoting itself, through the path
 * `dipole primary` takes (quorum, startup, fencing rules), when no node is
 * Primary and its disk is UpToDate; else as a client of the Primary. A
 * client is kept Secondary (demoted first if it was a second Primary and
 * its device is not in use): its loop device is read-only and its NBD
 * export refuses writes, so the block device has one writer, the owner.
 *
 * Every refusal comes before anything changed; a failed mount undoes a
 * promotion it made.
 *
 * Locking: the main thread only (daemon_int.h).
 */
#include "daemon_int.h"
#include "fsprobe.h"
#include "log.h"
#include "loopdev.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *role_word(enum dipolefs_role r)
{
	return r == FSR_OWNER ? "owner" : r == FSR_CLIENT ? "client" : "none";
}

/* The connected peer that is Primary, NULL if none (the first: with two
 * disk hosts there is one). */
static const struct cfg_host *primary_peer(struct daemon *d)
{
	for (int i = 0; i < d->npeers; i++) {
		struct replica_view v;
		peer_view(d->peers[i], &v);
		if (v.connected && v.role == ROLE_PRIMARY)
			return cfg_find_host(d->r, peer_name(d->peers[i]));
	}
	return NULL;
}

static int reply(int fd, int code, const char *msg)
{
	ctl_reply(fd, code, msg, NULL);
	return 0;
}

int fsmount_refuses_primary(struct daemon *d, char *msg)
{
	if (!d->fs || d->fs_role != FSR_CLIENT)
		return 0;
	snprintf(msg, 256, "this node mounts %s's filesystem as a client (at %.80s) of %s, which writes the device: "
		 "one writer at a time; unmount it here first", d->r->name, d->fs_dir, d->fs_owner);
	return 1;
}

/* The checks and the role. Returns an exit code with msg[len] set on a
 * refusal; else 0 with *role, and *promote when this node must become
 * Primary first, *demote when it must stop being one. */
static int choose_role(struct daemon *d, enum dipolefs_role *role, int *promote, int *demote, char *msg, size_t len)
{
	struct engine *e = d->e;
	const struct cfg_host *pp = primary_peer(d);
	int me_primary = atomic_load(&e->role) == ROLE_PRIMARY;
	int dstate = atomic_load(&e->dstate);

	*promote = *demote = 0;
	if (me_primary && !(pp && pp->node_id < d->h->node_id)) {
		*role = FSR_OWNER;
		snprintf(d->fs_owner, sizeof d->fs_owner, "%s", d->h->name);
		if (pp)
			log_warn("fs: peer %s is Primary too (allow-two-primaries): this node (lower node-id) owns the "
				 "filesystem; %s must not write its device while it is mounted", pp->name, pp->name);
		return 0;
	}
	if (pp) {
		*role = FSR_CLIENT;
		snprintf(d->fs_owner, sizeof d->fs_owner, "%s", pp->name);
		if (me_primary) {
			if ((d->loop_dev[0] && loopdev_busy(d->loop_dev)) || nbd_server_clients(d->nbd) > 0) {
				snprintf(msg, len, "this node and %s are both Primary (allow-two-primaries) and this node's "
					 "device is in use (mounted, open or an NBD client): the filesystem needs one "
					 "writer, %s (lower node-id); stop using the device here, or make this node "
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

int fsmount_request(struct daemon *d, int fd, const struct ctl_req *req)
{
	char dir[sizeof d->fs_dir], opts[1024], msg[512], type[64] = "", err[256] = "";
	enum dipolefs_role role = FSR_NONE;
	int promote, demote, rc;
	struct stat st;

	if (ctl_req_value(req, "--dir=", dir, sizeof dir) || dir[0] != '/' ||
	    ctl_req_value(req, "--options=", opts, sizeof opts))
		return reply(fd, EXIT_USAGE, "fs-mount needs --dir=ABSOLUTE-PATH and --options=OPTIONS (encoded)");
	if (d->fs) {
		snprintf(msg, sizeof msg, "%s is already mounted on this node at %.200s (as %s): one mount per "
			 "resource and node; umount it first", d->r->name, d->fs_dir, role_word(d->fs_role));
		return reply(fd, EXIT_STATE, msg);
	}
	if (stat(dir, &st) < 0) {
		snprintf(msg, sizeof msg, "mount point %.200s: %s", dir, strerror(errno));
		return reply(fd, EXIT_USAGE, msg);
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(msg, sizeof msg, "mount point %.200s is not a directory", dir);
		return reply(fd, EXIT_USAGE, msg);
	}
	if (fsprobe_is_mountpoint(dir) == 1) {
		snprintf(msg, sizeof msg, "mount point %.200s is busy: something is mounted there already", dir);
		return reply(fd, EXIT_STATE, msg);
	}
	if ((rc = choose_role(d, &role, &promote, &demote, msg, sizeof msg)))
		return reply(fd, rc, msg);
	if (role == FSR_OWNER && (rc = check_device(d, type, sizeof type, msg, sizeof msg)))
		return reply(fd, rc, msg);
	if (promote) {
		char why[256];
		rc = daemon_promote(d, 0, why);
		if (rc) {
			snprintf(msg, sizeof msg, "no node is Primary and this node may not become it to own the "
				 "filesystem: %s", why);
			return reply(fd, rc == -EPERM || rc == -EBUSY ? EXIT_STATE : EXIT_FAIL, msg);
		}
		log_info("fs: promoted to Primary to own the filesystem mounted at %s (no node was Primary)", dir);
	}
	if (demote) {
		char why[256];
		if ((rc = daemon_demote(d, why))) {
			snprintf(msg, sizeof msg, "cannot become Secondary to mount as a client of %s: %s", d->fs_owner,
				 why);
			return reply(fd, EXIT_FAIL, msg);
		}
		log_info("fs: demoted to Secondary: %s owns the filesystem (both were Primary, allow-two-primaries; "
			 "lower node-id owns), and the device has one writer while it is mounted", d->fs_owner);
	}
	struct dipolefs_conf c = {
		.r = d->r, .me = d->h, .lsn = d->lsn, .mountpoint = dir,
		.device = role == FSR_OWNER ? d->loop_dev : NULL,
		.fstype = type[0] ? type : NULL, .options = opts,
		.owner = role == FSR_CLIENT ? d->fs_owner : NULL,
	};
	rc = dipolefs_mount(&d->fs, d->e, &c, role, err);
	if (rc) {
		d->fs = NULL;
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
	d->fs_role = role;
	snprintf(d->fs_dir, sizeof d->fs_dir, "%s", dir);
	if (role == FSR_OWNER)
		snprintf(msg, sizeof msg, "mounted at %.200s as owner (%s on %s)", dir, type, d->loop_dev);
	else
		snprintf(msg, sizeof msg, "mounted at %.200s as client of %s", dir, d->fs_owner);
	log_info("fs: %s", msg);
	return reply(fd, EXIT_OK, msg);
}

static void unmount_now(struct daemon *d, const char *why)
{
	log_info("fs: unmounting %s (%s): %s", d->fs_dir, role_word(d->fs_role), why);
	dipolefs_unmount(d->fs);
	d->fs = NULL;
	d->fs_role = FSR_NONE;
	d->fs_dir[0] = 0;
	d->fs_owner[0] = 0;
}

int fsmount_umount_request(struct daemon *d, int fd, const struct ctl_req *req)
{
	char dir[sizeof d->fs_dir], msg[512];

	if (ctl_req_value(req, "--dir=", dir, sizeof dir))
		return reply(fd, EXIT_USAGE, "fs-umount needs --dir=PATH (encoded)");
	if (!d->fs || strcmp(dir, d->fs_dir)) {
		snprintf(msg, sizeof msg, "%.200s is not where %s is mounted on this node (%s)", dir, d->r->name,
			 d->fs ? d->fs_dir : "not mounted");
		return reply(fd, EXIT_STATE, msg);
	}
	unmount_now(d, "dipole umount");
	return reply(fd, EXIT_OK, "");
}

int fsmount_tick(struct daemon *d)
{
	if (!d->fs)
		return -1;
	/* a plain umount(8) of the FUSE mount: release the kernel filesystem */
	if (fsprobe_is_mountpoint(d->fs_dir) == 0)
		unmount_now(d, "no longer mounted (umount)");
	return d->fs ? 1000 : -1;
}

void fsmount_stop(struct daemon *d)
{
	if (d->fs)
		unmount_now(d, "the resource goes down");
}

void fsmount_status_json(struct daemon *d, struct strbuf *sb)
{
	strbuf_printf(sb, "\"fs\":");
	if (d->fs)
		dipolefs_status_json(d->fs, sb);
	else
		strbuf_printf(sb, "null");
}

void fsmount_status_text(struct daemon *d, struct strbuf *sb)
{
	if (!d->fs)
		return;
	size_t before = sb->len;
	dipolefs_status_text(d->fs, sb);
	if (sb->len == before)
		strbuf_printf(sb, "  fs: mounted at %s as %s (owner %s)\n", d->fs_dir, role_word(d->fs_role),
			      d->fs_owner);
}

/* dipolefs — the replicated filesystem service of one resource on this node
 * (docs/dipolefs.md). The daemon owns one struct dipolefs per mount.
 *
 * On the owner (the resource's Primary) the kernel filesystem (ext4 or XFS)
 * is mounted detached on the resource's device (fsmount(2): visible to no
 * one) and served through the local backend (local.c); on any other node
 * every request is forwarded to the owner (remote.c). Either way the user's
 * mount point is a FUSE mount (fusefs.c) served by threads of their own,
 * never by the threads that serve the device's loop file (the deadlock of
 * a filesystem stacked on its own storage process).
 *
 * The owner also serves the other nodes (server.c on the resource's
 * listener): a change made through any node revokes what the other nodes'
 * mounts cache before it returns, and a client node that goes away loses
 * its locks. A client forwards to one owner, named by the daemon (the
 * connected Primary), and takes the owner's revocations into its FUSE mount.
 *
 * Locking: `lock` in struct dipolefs guards the role and the status fields;
 * `notify_lk` (read-held by every revocation, write-held once by unmount)
 * keeps the revocation targets alive while a change uses them. The backend
 * pointers are set before serving and cleared only after it stopped.
 */
#ifndef DIPOLE_DIPOLEFS_H
#define DIPOLE_DIPOLEFS_H

#include "util.h"

struct dipolefs;
struct engine;
struct listener;
struct cfg_resource;
struct cfg_host;

enum dipolefs_role { FSR_NONE, FSR_OWNER, FSR_CLIENT };

struct dipolefs_conf {
	const struct cfg_resource *r;  /* the resource: hosts, addresses, shared-secret */
	const struct cfg_host *me;     /* this node's host section */
	struct listener *lsn;          /* the resource's listener: the owner serves clients there */
	const char *mountpoint;  /* the user's directory; NULL (owner only): serve the other nodes
				  * without a FUSE mount on this node (dipolefs_attach adds one) */
	const char *device;      /* block device holding the kernel filesystem (the loop device), owner only */
	const char *fstype;      /* "ext4" or "xfs"; NULL: detect */
	const char *options;     /* mount options given to `dipole mount -o`, "" none */
	int fuse_fd;             /* > 0: the FUSE mount at mountpoint is made already, on this
				  * /dev/fuse descriptor (mount.dipole's, fs-mount --fuse-fd):
				  * served, not mounted, and the path never looked up; stays
				  * the caller's */
	const char *owner;       /* client: the owner's node name (the connected Primary the daemon
				  * sees in its peers' replica views); NULL: try each other disk host */
};

/* Mount: as owner (role FSR_OWNER: mounts the kernel filesystem, then the
 * FUSE mount) or as client (FSR_CLIENT: the FUSE mount, forwarding to the
 * owner). 0, or -errno with err[256] saying what and what to do. */
int dipolefs_mount(struct dipolefs **out, struct engine *e, const struct dipolefs_conf *c, enum dipolefs_role role,
		   char *err);
/* Unmount the FUSE mount (lazily if busy: processes with open files get
 * ENOTCONN), then the kernel filesystem; frees fs. */
void dipolefs_unmount(struct dipolefs *fs);
/* This node's FUSE mount is known to be gone from its mount point
 * (fusemount_gone): unmounting it then never looks there. */
void dipolefs_mount_gone(struct dipolefs *fs);
/* Owner serving without a mount here: add the FUSE mount at mountpoint
 * (fuse_fd > 0: made already, as dipolefs_conf.fuse_fd). 0, or -errno
 * with err[256]. Main thread (as mount/unmount). */
int dipolefs_attach(struct dipolefs *fs, const char *mountpoint, int fuse_fd, char *err);
/* Owner: remove this node's FUSE mount (as unmount does), keep serving the
 * other nodes. */
void dipolefs_detach(struct dipolefs *fs);
/* 1 while this node has the FUSE mount (an owner may serve without one). */
int dipolefs_mounted_here(struct dipolefs *fs);
/* 1 if node (a host name) is a client connected to this owner. */
int dipolefs_has_client(struct dipolefs *fs, const char *node);
/* Client nodes connected to this owner (0 on a client). */
int dipolefs_clients(struct dipolefs *fs);
/* Owner: serve the CH_FS connection fd (owned from now on, its HELLO
 * unread) from `from` ("ip:port"), as the listener route does. */
void dipolefs_accept(struct dipolefs *fs, int fd, const char *from);
/* Why the mount is not serving, as the daemon sees it ("" serving): shown
 * by status after the mount's own reason (a client reconnecting). */
void dipolefs_set_reason(struct dipolefs *fs, const char *why);
/* Client: the daemon saw the owner's replication link go down; requests
 * waiting for it fail with ENOTCONN now (remote_drop). No-op on an owner. */
void dipolefs_owner_lost(struct dipolefs *fs, const char *why);
/* The lock grace period's default length, seconds (mount option grace=S;
 * docs/dipolefs.md "Locks"): NFS's (Linux nfsd's grace and lease time). */
#define DIPOLEFS_GRACE_S 90
/* Owner: begin a lock grace period of grace=S seconds (after taking over
 * from another owner: the failover), during which only reclaims are
 * granted (locks.h); it ends early once every node of `expect` (bit n:
 * node id n; this node's own mount included if it reclaims) sent its
 * RECLAIM_DONE or called locks_reclaim_done. No-op on a client. */
void dipolefs_grace_begin(struct dipolefs *fs, uint64_t expect);
/* Owner in the grace period of its takeover (not one dipolefs_grace_begin
 * was asked for): stop waiting for the expected nodes not in `up` (bit n:
 * node id n has a replication or vote link to this node): a node gone at
 * the block layer cannot reclaim. The daemon's tick calls it. */
void dipolefs_grace_reachable(struct dipolefs *fs, uint64_t up);
/* A cut-off owner (docs/dipolefs.md "A cut-off owner"). io-timeout: the
 * mount option io-timeout=S, seconds an owner may be cut off before its
 * I/O fails (0: never; default DIPOLEFS_IO_TIMEOUT). fence: every call on
 * this node's mount fails with EIO at once from now on, and the kernel
 * filesystem is shut down (nothing more written); no-op on a client.
 * drop_kernel: after the fence, once no call is inside the local backend,
 * stop serving clients and unmount the kernel filesystem, keeping this
 * node's FUSE mount (answering EIO); 0, or -EBUSY while a call is still
 * inside (try again later). Main thread. */
#define DIPOLEFS_IO_TIMEOUT 30.0
double dipolefs_io_timeout(struct dipolefs *fs);
void dipolefs_fence(struct dipolefs *fs, const char *why);
int dipolefs_drop_kernel(struct dipolefs *fs);
/* Failover (docs/dipolefs.md "Failover"). A client whose owner is lost:
 * hold its calls (they wait, at most hold_ms, instead of failing
 * ENOTCONN) while a switch may come; unhold: none comes. */
void dipolefs_hold(struct dipolefs *fs, unsigned hold_ms);
void dipolefs_unhold(struct dipolefs *fs);
/* Client → owner without a remount: mount the kernel filesystem on
 * c->device (c->fstype, c->lsn as for an owner; this node must be
 * Primary), switch the FUSE mount's backend to it (open files reopened,
 * ids kept), serve the other nodes. planned: the old owner flushed and
 * released it (else it died: unsynced writes are reported lost, EIO).
 * Opens a lock grace period expecting this node and the nodes the old
 * owner last said had mounted (remote_mounted), but the old owner. 0,
 * or -errno with err[256] and the mount still a client. Main thread. */
int dipolefs_take_over(struct dipolefs *fs, const struct dipolefs_conf *c, int planned, char *err);
/* Client: forward to another owner, c->owner (a node took the filesystem
 * over), without a remount; this node's locks go to it as reclaims, then
 * RECLAIM_DONE. 0, or -errno with err[256] (unreachable yet: still the
 * old owner's client). Main thread. */
int dipolefs_follow(struct dipolefs *fs, const struct dipolefs_conf *c, int planned, char *err);
/* Owner → parked client (a planned handover, `dipole fs move`): this
 * node's calls are held, the clients disconnected, the kernel filesystem
 * flushed and unmounted; then dipolefs_follow the next owner (planned: 1,
 * nothing was lost). 0, or -EINVAL with err[256]. Main thread. */
int dipolefs_release(struct dipolefs *fs, char *err);
/* The "fs" object of `status --json` (../shared/design.md, dipolefs):
 * mountpoint null and mounted_here false on an owner serving without a
 * mount here. */
void dipolefs_status_json(struct dipolefs *fs, struct strbuf *sb);
void dipolefs_status_text(struct dipolefs *fs, struct strbuf *sb);

#endif

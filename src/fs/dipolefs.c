/* dipolefs — see dipolefs.h. The owner role: the kernel filesystem is
 * mounted detached (fsopen/fsconfig/fsmount: only this process holds it,
 * through one fd), served by local.c behind fusefs.c at the user's mount
 * point and by server.c to the other nodes. The client role: remote.c
 * behind fusefs.c, connected to the owner the daemon named.
 *
 * Revocations go through adapters here rather than straight from local.c to
 * the FUSE mount and the server: unmount stops the two one after the other,
 * and a change still in flight on the one must not call into the other
 * once it is freed (notify_lk). */
#include "dipolefs.h"
#include "dirsplit.h"
#include "fsevents.h"
#include "config.h"
#include "fsprobe.h"
#include "fsswitch.h"
#include "fusefs.h"
#include "local.h"
#include "locks.h"
#include "log.h"
#include "remote.h"
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

struct dipolefs {
	pthread_mutex_t lock;    /* guards role and the backend pointers */
	enum dipolefs_role role;
	int mnt_fd;              /* the detached kernel mount; -1 on a client */
	struct local *local;     /* owner; outlives srv (its hooks use it) */
	struct server *srv;      /* owner: serves the client nodes */
	struct remote *remote;   /* client */
	struct fusefs *fuse;
	struct fsswitch *sw;     /* the backend fuse calls: local or remote, switched by a failover */
	pthread_rwlock_t notify_lk;        /* see the header comment */
	const struct fs_notify *fuse_n;    /* this node's mount; NULL once stopping */
	struct server *fan;                /* the server while revocations may use it */
	struct fs_notify own_n;            /* local.c → fuse_n, through notify_lk */
	uint32_t node_id;        /* this node's */
	char fsname[128];        /* "dipole:RES", the FUSE mounts' source */
	struct fusefs_cache cache;         /* from the mount option cache=S */
	struct dirsplit *split;            /* a mount started as owner: whose names it caches */
	uint64_t grace_ns;                 /* from the mount option grace=S (owner) */
	uint64_t grace_waits;              /* under lock: the nodes a takeover's grace still waits for */
	double io_timeout;                 /* mount option io-timeout=S (owner: docs "A cut-off owner") */
	char kopts[512];                   /* the other options: the kernel filesystem's */
	char fstype[16];
	char owner[64];          /* node name of the owner */
	char reason[256];        /* why the mount is not serving, "" when it is */
	char mountpoint[FS_PATH_MAX]; /* "" on an owner serving without a FUSE mount here */
};

/* The kernel's own message about a failed fsconfig (read from the fs
 * context), appended to err. */
static void fs_context_msg(int fsfd, char *err, size_t len)
{
	char msg[200];
	ssize_t n = read(fsfd, msg, sizeof msg - 1);
	if (n > 2) {
		msg[n] = 0;
		size_t used = strlen(err);
		snprintf(err + used, len - used, " (kernel: %s)", msg + 2);
	}
}

/* Apply `dipole mount -o` options: "k=v" as strings, "k" as flags. */
static int apply_options(int fsfd, const char *options, char *err)
{
	char buf[512];
	snprintf(buf, sizeof buf, "%s", options ? options : "");
	for (char *save, *o = strtok_r(buf, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		char *v = strchr(o, '=');
		if (v)
			*v++ = 0;
		if (fsconfig(fsfd, v ? FSCONFIG_SET_STRING : FSCONFIG_SET_FLAG, o, v, 0)) {
			int e = errno;
			snprintf(err, 256, "mount option %s rejected: %s", o, strerror(e));
			fs_context_msg(fsfd, err, 256);
			return -e;
		}
	}
	return 0;
}

/* The seconds of option o ("name=S"), 0..max: 0, or -EINVAL with err. */
static int option_seconds(const char *o, size_t namelen, double max, double *t, char *err)
{
	char *end;
	*t = strtod(o + namelen, &end);
	if (end == o + namelen || *end || !(*t >= 0 && *t <= max)) {
		snprintf(err, 256, "mount option %s: seconds from 0 to %.0f expected", o, max);
		return -EINVAL;
	}
	return 0;
}

/* Take dipolefs's own options out of `dipole mount -o`: cache=S (seconds
 * the FUSE mount may cache names, negative names and attributes; 0: no
 * caching, pages dropped at each open), grace=S (the lock grace period,
 * and how long the owner keeps a gone client's locks reclaimable and its
 * files open; docs/dipolefs.md "Locks"), io-timeout=S (an owner cut off
 * that long fails its I/O with EIO; 0: never). The rest go to the kernel
 * filesystem (owner). 0, or -EINVAL with err. */
static int split_options(struct dipolefs *fs, const char *options, char *err)
{
	char buf[512];
	double t;
	fs->cache = fusefs_cache_default;
	fs->grace_ns = DIPOLEFS_GRACE_S * 1000000000ull;
	fs->io_timeout = DIPOLEFS_IO_TIMEOUT;
	fs->kopts[0] = 0;
	snprintf(buf, sizeof buf, "%s", options ? options : "");
	for (char *save, *o = strtok_r(buf, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (!strncmp(o, "cache=", 6)) {
			if (option_seconds(o, 6, 1e7, &t, err))
				return -EINVAL;
			fs->cache = (struct fusefs_cache){ .entry_timeout = t, .attr_timeout = t, .keep_cache = t > 0 };
		} else if (!strncmp(o, "grace=", 6)) {
			if (option_seconds(o, 6, 3600, &t, err))
				return -EINVAL;
			fs->grace_ns = (uint64_t)(t * 1e9);
		} else if (!strncmp(o, "io-timeout=", 11)) {
			if (option_seconds(o, 11, 1e7, &fs->io_timeout, err))
				return -EINVAL;
		} else {
			size_t used = strlen(fs->kopts);
			snprintf(fs->kopts + used, sizeof fs->kopts - used, "%s%s", used ? "," : "", o);
		}
	}
	return 0;
}

/* Drop the kernel's page cache of device (BLKFLSBUF: write back, then
 * invalidate). The daemon keeps its loop device open for the device's
 * life, so what the kernel cached while this node owned the filesystem
 * before outlives that unmount; since then another owner wrote the disk
 * through replication, under that cache. Mounting on it would read the
 * old blocks (fsfailover.py found it: fs_owner_cache.sh). Not a block
 * device: nothing to do. 0 or -errno with err set. */
static int drop_device_cache(const char *device, char *err)
{
	struct stat st;
	if (stat(device, &st) == 0 && !S_ISBLK(st.st_mode))
		return 0; /* an image file: the kernel's loop device is its own */
	int fd = open(device, O_RDONLY | O_CLOEXEC);
	int rc = fd < 0 || ioctl(fd, BLKFLSBUF, 0) ? -errno : 0;
	if (rc)
		snprintf(err, 256, "cannot drop the page cache of %s before mounting it: %s", device, strerror(-rc));
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Mount the kernel filesystem on device, detached. The mount's fd or
 * -errno with err set. */
static int mount_detached(const char *device, const char *fstype, const char *options, char *err)
{
	int fsfd = fsopen(fstype, FSOPEN_CLOEXEC);
	if (fsfd < 0) {
		int e = errno;
		snprintf(err, 256, "cannot mount %s: the kernel has no %s filesystem (%s)", device, fstype,
			 strerror(e));
		return -e;
	}
	int rc = 0;
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, "source", device, 0)) {
		rc = -errno;
		snprintf(err, 256, "cannot use %s as the source of %s: %s", device, fstype, strerror(-rc));
	}
	if (!rc)
		rc = apply_options(fsfd, options, err);
	if (!rc && fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0)) {
		rc = -errno;
		snprintf(err, 256, "cannot mount %s (%s) on %s: %s; run fsck on the Primary", fstype, device,
			 device, strerror(-rc));
		fs_context_msg(fsfd, err, 256);
	}
	int mfd = rc ? rc : fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
	if (mfd < 0 && !rc) {
		rc = -errno;
		snprintf(err, 256, "fsmount of %s failed: %s", device, strerror(-rc));
		mfd = rc;
	}
	close(fsfd);
	return mfd;
}

/* ---- revocation adapters (notify_lk read-held) ------------------------- */

static void own_inval_inode(void *arg, uint64_t ino, int64_t off, int64_t len)
{
	struct dipolefs *fs = arg;
	pthread_rwlock_rdlock(&fs->notify_lk);
	if (fs->fuse_n)
		fs->fuse_n->inval_inode(fs->fuse_n->arg, ino, off, len);
	pthread_rwlock_unlock(&fs->notify_lk);
}

static void own_inval_entry(void *arg, uint64_t parent, const char *name)
{
	struct dipolefs *fs = arg;
	pthread_rwlock_rdlock(&fs->notify_lk);
	if (fs->fuse_n)
		fs->fuse_n->inval_entry(fs->fuse_n->arg, parent, name);
	pthread_rwlock_unlock(&fs->notify_lk);
}

static void own_revoke_moved(void *arg, uint64_t parent, const char *name)
{
	struct dipolefs *fs = arg;
	dirsplit_revoke_name(fs->split, parent, name);
}

static void fan_inval_inode(void *arg, uint32_t origin, uint64_t ino, int64_t off, int64_t len)
{
	struct dipolefs *fs = arg;
	pthread_rwlock_rdlock(&fs->notify_lk);
	if (fs->fan)
		server_inval_inode(fs->fan, origin, ino, off, len);
	pthread_rwlock_unlock(&fs->notify_lk);
}

static void fan_inval_entry(void *arg, uint32_t origin, uint64_t parent, const char *name)
{
	struct dipolefs *fs = arg;
	pthread_rwlock_rdlock(&fs->notify_lk);
	if (fs->fan)
		server_inval_entry(fs->fan, origin, parent, name);
	pthread_rwlock_unlock(&fs->notify_lk);
}

/* server.c's node-gone hook: a client node is gone, so are its locks (its
 * processes cannot hold anything any more). */
static void node_gone(void *arg, uint32_t node_id)
{
	struct dipolefs *fs = arg;
	size_t n = locks_node_gone(local_locks(fs->local), node_id);
	log_info("dipolefs: node %u gone: %zu locks dropped", node_id, n);
}

/* The resource's name (fsname is "dipole:RES"), for events. */
static const char *fs_res(const struct dipolefs *fs)
{
	return fs->fsname + strlen("dipole:");
}

static uint64_t node_bit(uint32_t node_id)
{
	return node_id < 64 ? 1ULL << node_id : 0;
}

/* node_id is done with the grace period; `end` says why, if it ends now. */
static void grace_node_done(struct dipolefs *fs, uint32_t node_id, const char *end)
{
	struct locks *t = local_locks(fs->local);
	int was = locks_in_grace(t);
	pthread_mutex_lock(&fs->lock);
	fs->grace_waits &= ~node_bit(node_id);
	pthread_mutex_unlock(&fs->lock);
	locks_reclaim_done(t, node_id);
	if (was && !locks_in_grace(t)) {
		uint64_t granted, refused;
		log_info("dipolefs: lock grace period over: %s (the last: node %u)", end, node_id);
		locks_reclaims(t, &granted, &refused);
		fsevents_grace_end(fs_res(fs), (unsigned)granted, (unsigned)refused, end);
	}
}

/* server.c's reclaim-done hook: node_id re-sent the locks it holds. */
static void reclaim_done(void *arg, uint32_t node_id)
{
	grace_node_done(arg, node_id, "every node reclaimed");
}

void dipolefs_grace_begin(struct dipolefs *fs, uint64_t expect)
{
	pthread_mutex_lock(&fs->lock);
	struct locks *t = fs->local ? local_locks(fs->local) : NULL;
	if (t) {
		locks_grace_begin(t, fs->grace_ns);
		locks_grace_expect(t, expect);
		log_info("dipolefs: lock grace period for %.0f s: only reclaims are granted", fs->grace_ns / 1e9);
		fsevents_grace_start(fs_res(fs), fs->grace_ns / 1000000u, (unsigned)__builtin_popcountll(expect),
				     "only reclaims are granted");
	}
	pthread_mutex_unlock(&fs->lock);
}

void dipolefs_grace_reachable(struct dipolefs *fs, uint64_t up)
{
	pthread_mutex_lock(&fs->lock);
	uint64_t gone = fs->local && locks_in_grace(local_locks(fs->local)) ? fs->grace_waits & ~up : 0;
	pthread_mutex_unlock(&fs->lock);
	for (uint32_t n = 0; gone; n++)
		if (gone & node_bit(n)) {
			gone &= ~node_bit(n);
			log_info("dipolefs: lock grace period: node %u is gone (no replication link): not waited for",
				 n);
			grace_node_done(fs, n, "every node reclaimed or is gone");
		}
}

/* ---- owner ------------------------------------------------------------- */

static int attach(struct dipolefs *fs, const char *mountpoint, int fuse_fd, char *err);

/* Mount the kernel filesystem and set up its serving (local backend,
 * revocation targets, the server, not yet listening). names_cached: this
 * node's FUSE mount caches names (a client's that took over), so its
 * revocations include names. 0, or -errno with err. */
static int serve_kernel(struct dipolefs *fs, const struct dipolefs_conf *c, int names_cached, char *err)
{
	int rc = 0;
	if (!c->device) {
		snprintf(err, 256, "the owner needs a device");
		return -EINVAL;
	}
	if ((rc = drop_device_cache(c->device, err)))
		return rc;
	if (c->fstype) {
		snprintf(fs->fstype, sizeof fs->fstype, "%s", c->fstype);
	} else if ((rc = fsprobe_type(c->device, fs->fstype, sizeof fs->fstype, err))) {
		return rc;
	} else if (!fs->fstype[0]) {
		snprintf(err, 256, "%s holds no filesystem; run `dipole mkfs` on the Primary first", c->device);
		return -ENODATA;
	}
	if (!fsprobe_supported(fs->fstype)) {
		snprintf(err, 256, "%s holds a %s filesystem; dipolefs serves ext4 or xfs", c->device, fs->fstype);
		return -EMEDIUMTYPE;
	}
	fs->mnt_fd = mount_detached(c->device, fs->fstype, fs->kopts, err);
	if (fs->mnt_fd < 0)
		return fs->mnt_fd;
	if ((rc = local_open(&fs->local, fs->mnt_fd))) {
		snprintf(err, 256, "cannot serve the filesystem on %s: %s", c->device, strerror(-rc));
		return rc;
	}
	/* revocation targets are registered before anything is served */
	fs->own_n = (struct fs_notify){ .inval_inode = own_inval_inode, .arg = fs };
	if (names_cached) { /* a client's mount that took over: every name, every time */
		fs->own_n.inval_entry = own_inval_entry;
	} else {
		/* The owner's own mount caches a directory's names only while no
		 * client does: revoking a name takes its kernel's lock of the
		 * directory, which it holds while its own change there may wait
		 * for a client's ack (docs/dipolefs.md "Names on the owner's
		 * mount"); a client's change settles first, and revokes here only
		 * what a rename moved in (dirsplit_revoke_name). */
		if (!fs->split && dirsplit_open(&fs->split, own_inval_entry, fs)) {
			snprintf(err, 256, "out of memory");
			return -ENOMEM;
		}
		fs->cache.split = fs->split;
		fs->cache.track = 1; /* a handover drops what it handed out */
		fs->own_n.inval_entry = own_revoke_moved;
	}
	(void)local_add_notify(fs->local, fs->node_id, &fs->own_n);
	local_set_fanout(fs->local, &(struct local_fanout){ fan_inval_inode, fan_inval_entry, fs });
	if ((rc = server_open(&fs->srv, c->r, c->me, &local_ops, fs->local, err)))
		return rc;
	if (!names_cached)
		server_set_split(fs->srv, fs->split);
	server_set_node_gone(fs->srv, node_gone, fs);
	server_set_reclaim_done(fs->srv, reclaim_done, fs);
	/* a client that comes back within grace=S finds its files open and
	 * its locks reclaimable, unless someone took them meanwhile */
	server_set_keep(fs->srv, fs->grace_ns);
	locks_set_keep(local_locks(fs->local), fs->grace_ns);
	fs->fan = fs->srv;
	return 0;
}

static int mount_owner(struct dipolefs *fs, const struct dipolefs_conf *c, char *err)
{
	int rc = serve_kernel(fs, c, 0, err);
	if (rc)
		return rc;
	if (c->mountpoint && (rc = attach(fs, c->mountpoint, c->fuse_fd, err)))
		return rc;
	/* clients last: everything they reach is up */
	if (c->lsn)
		server_listen(fs->srv, c->lsn);
	else /* the mount serves; only other nodes could not reach it */
		log_info("dipolefs: no listener (a resource without peers): no other node can mount");
	if (c->mountpoint)
		log_info("dipolefs: %s (%s on %s) mounted at %s as owner", fs->fsname, fs->fstype, c->device,
			 c->mountpoint);
	else
		log_info("dipolefs: %s (%s on %s) served to the other nodes, not mounted on this one", fs->fsname,
			 fs->fstype, c->device);
	return 0;
}

/* The owner's FUSE mount at mountpoint, served by the local backend. */
static int attach(struct dipolefs *fs, const char *mountpoint, int fuse_fd, char *err)
{
	int rc = fsswitch_open(&fs->sw, &local_ops, fs->local, NULL, fs->node_id);
	if (!rc)
		rc = fusefs_start(&fs->fuse, mountpoint, fs->fsname, &fsswitch_ops, fs->sw, fs->node_id, &fs->cache,
				  fuse_fd, err);
	if (rc) {
		fsswitch_close(fs->sw);
		fs->sw = NULL;
		return rc;
	}
	pthread_rwlock_wrlock(&fs->notify_lk);
	fs->fuse_n = fusefs_notify(fs->fuse);
	pthread_rwlock_unlock(&fs->notify_lk);
	pthread_mutex_lock(&fs->lock);
	snprintf(fs->mountpoint, sizeof fs->mountpoint, "%s", mountpoint);
	pthread_mutex_unlock(&fs->lock);
	return 0;
}

/* ---- client ------------------------------------------------------------ */

/* Connect to the named owner, or else to the first other disk host that
 * accepts (only the owner's listener routes CH_FS). */
static int connect_owner(struct dipolefs *fs, const struct dipolefs_conf *c, char *err)
{
	const struct cfg_host *o = c->owner ? cfg_find_host(c->r, c->owner) : NULL;
	if (c->owner && !o) {
		snprintf(err, 256, "the owner %s is not a host of resource %s", c->owner, c->r->name);
		return -EINVAL;
	}
	int rc = -ENOTCONN;
	char why[256] = "";
	for (int i = 0; i < c->r->nhosts && rc; i++) {
		const struct cfg_host *h = o ? o : &c->r->hosts[i];
		if (!o && (h == c->me || h->diskless))
			continue;
		rc = remote_open(&fs->remote, c->r, c->me, h, why);
		if (!rc)
			snprintf(fs->owner, sizeof fs->owner, "%s", h->name);
		/* nothing held yet: a grace period expecting this node (its
		 * daemon restarted through a failover) need not wait for it */
		if (!rc)
			(void)remote_reclaim_done(fs->remote);
		if (o)
			break;
	}
	if (rc) {
		snprintf(err, 256, "no owner reachable%s%s", why[0] ? ": " : "", why);
		snprintf(fs->reason, sizeof fs->reason, "no owner reachable");
		if (rc != -EPERM && rc != -EINVAL && rc != -ENOMEM)
			rc = -ENOTCONN; /* a state to wait out, for the exit code */
	}
	return rc;
}

static int remote_ready(void *ctx)
{
	return remote_connected(ctx);
}

static int mount_client(struct dipolefs *fs, const struct dipolefs_conf *c, char *err)
{
	int rc = connect_owner(fs, c, err);
	if (rc)
		return rc;
	/* a reconnect loses revocations: remember what the kernel caches */
	fs->cache.track = 1;
	if ((rc = fsswitch_open(&fs->sw, &remote_ops, fs->remote, remote_ready, fs->node_id)))
		return rc;
	if ((rc = fusefs_start(&fs->fuse, c->mountpoint, fs->fsname, &fsswitch_ops, fs->sw, fs->node_id, &fs->cache,
			       c->fuse_fd, err)))
		return rc;
	/* before this the kernel had no mount to cache anything in: revocations
	 * acked without effect lose nothing */
	remote_set_notify(fs->remote, fusefs_notify(fs->fuse));
	log_info("dipolefs: %s mounted at %s as client of %s", fs->fsname, c->mountpoint, fs->owner);
	return 0;
}

/* Revocations off, then the server: no client node's request runs after. */
static void serving_off(struct dipolefs *fs)
{
	pthread_rwlock_wrlock(&fs->notify_lk);
	fs->fuse_n = NULL;
	fs->fan = NULL;
	pthread_rwlock_unlock(&fs->notify_lk);
	pthread_mutex_lock(&fs->lock); /* status reads it under the lock */
	struct server *srv = fs->srv;
	fs->srv = NULL;
	pthread_mutex_unlock(&fs->lock);
	server_close(srv);
}

/* The local backend, then the kernel filesystem: the last reference to a
 * detached mount unmounts it. No call may be in flight. */
static void kernel_off(struct dipolefs *fs)
{
	pthread_mutex_lock(&fs->lock); /* status reads it under the lock */
	struct local *l = fs->local;
	fs->local = NULL;
	pthread_mutex_unlock(&fs->lock);
	local_close(l);
	if (fs->mnt_fd >= 0)
		close(fs->mnt_fd);
	fs->mnt_fd = -1;
}

/* This node's FUSE mount goes (unmounted, its threads stopped). */
static void mount_off(struct dipolefs *fs)
{
	pthread_mutex_lock(&fs->lock); /* status reads it under the lock */
	struct fusefs *fuse = fs->fuse;
	fs->fuse = NULL;
	pthread_mutex_unlock(&fs->lock);
	if (fuse)
		fusefs_stop(fuse);
}

/* Stop serving, in the order that keeps every target of a call in flight
 * alive: revocations off, then the server (client nodes' requests), the
 * FUSE mount (this node's), and last the backends they called. */
static void teardown(struct dipolefs *fs)
{
	serving_off(fs);
	if (fs->remote) /* the notifier out of the mount before it goes */
		remote_set_notify(fs->remote, NULL);
	mount_off(fs);
	fsswitch_close(fs->sw);
	fs->sw = NULL;
	if (fs->remote)
		remote_close(fs->remote);
	fs->remote = NULL;
	kernel_off(fs);
	dirsplit_close(fs->split);
	fs->split = NULL;
}

int dipolefs_mount(struct dipolefs **out, struct engine *e, const struct dipolefs_conf *c, enum dipolefs_role role,
		   char *err)
{
	(void)e;
	if ((role != FSR_OWNER && role != FSR_CLIENT) || (!c->mountpoint && role == FSR_CLIENT) || !c->r || !c->me) {
		snprintf(err, 256, "a mount needs a role, a resource, this node and a mount point");
		return -EINVAL;
	}
	struct dipolefs *fs = calloc(1, sizeof *fs);
	if (!fs)
		return -ENOMEM;
	pthread_mutex_init(&fs->lock, NULL);
	pthread_rwlock_init(&fs->notify_lk, NULL);
	fs->mnt_fd = -1;
	fs->role = role;
	fs->node_id = (uint32_t)c->me->node_id;
	snprintf(fs->fsname, sizeof fs->fsname, "dipole:%s", c->r->name ? c->r->name : "fs");
	if (c->mountpoint)
		snprintf(fs->mountpoint, sizeof fs->mountpoint, "%s", c->mountpoint);
	if (role == FSR_OWNER)
		snprintf(fs->owner, sizeof fs->owner, "%s", c->me->name ? c->me->name : "");
	int rc = split_options(fs, c->options, err);
	if (!rc)
		rc = role == FSR_OWNER ? mount_owner(fs, c, err) : mount_client(fs, c, err);
	if (rc) {
		teardown(fs);
		pthread_rwlock_destroy(&fs->notify_lk);
		pthread_mutex_destroy(&fs->lock);
		free(fs);
		return rc;
	}
	*out = fs;
	return 0;
}

void dipolefs_unmount(struct dipolefs *fs)
{
	if (!fs)
		return;
	pthread_mutex_lock(&fs->lock);
	fs->role = FSR_NONE;
	pthread_mutex_unlock(&fs->lock);
	teardown(fs);
	log_info("dipolefs: %s unmounted", fs->mountpoint);
	pthread_rwlock_destroy(&fs->notify_lk);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
}

void dipolefs_mount_gone(struct dipolefs *fs)
{
	fusefs_gone(fs->fuse);
}

int dipolefs_attach(struct dipolefs *fs, const char *mountpoint, int fuse_fd, char *err)
{
	if (fs->role != FSR_OWNER || fs->fuse) {
		snprintf(err, 256, "only an owner serving without a mount here can add one");
		return -EINVAL;
	}
	int rc = attach(fs, mountpoint, fuse_fd, err);
	if (!rc)
		log_info("dipolefs: %s (%s) mounted at %s as owner", fs->fsname, fs->fstype, mountpoint);
	return rc;
}

void dipolefs_detach(struct dipolefs *fs)
{
	if (fs->role != FSR_OWNER || !fs->fuse)
		return;
	/* this node's revocations stop before its mount goes */
	pthread_rwlock_wrlock(&fs->notify_lk);
	fs->fuse_n = NULL;
	pthread_rwlock_unlock(&fs->notify_lk);
	mount_off(fs);
	fsswitch_close(fs->sw);
	fs->sw = NULL;
	log_info("dipolefs: %s unmounted on this node; still served to %d clients", fs->mountpoint,
		 dipolefs_clients(fs));
	pthread_mutex_lock(&fs->lock);
	fs->mountpoint[0] = 0;
	pthread_mutex_unlock(&fs->lock);
}

int dipolefs_mounted_here(struct dipolefs *fs)
{
	return fs->fuse != NULL;
}

int dipolefs_has_client(struct dipolefs *fs, const char *node)
{
	const char *names[64];
	int n = fs->srv ? server_clients(fs->srv, names, 64) : 0;
	for (int i = 0; i < n && i < 64; i++)
		if (!strcmp(names[i], node))
			return 1;
	return 0;
}

int dipolefs_clients(struct dipolefs *fs)
{
	const char *names[1];
	return fs->srv ? server_clients(fs->srv, names, 0) : 0;
}

void dipolefs_accept(struct dipolefs *fs, int fd, const char *from)
{
	if (fs->srv)
		server_accept(fs->srv, fd, from);
	else
		close(fd);
}

void dipolefs_set_reason(struct dipolefs *fs, const char *why)
{
	pthread_mutex_lock(&fs->lock);
	snprintf(fs->reason, sizeof fs->reason, "%s", why);
	pthread_mutex_unlock(&fs->lock);
}

void dipolefs_owner_lost(struct dipolefs *fs, const char *why)
{
	if (fs->remote)
		remote_drop(fs->remote, why);
}

static const char *role_name(enum dipolefs_role r)
{
	return r == FSR_OWNER ? "owner" : r == FSR_CLIENT ? "client" : "none";
}

/* Why the mount is not serving, "" when it is; under fs->lock. */
static const char *reason(struct dipolefs *fs, char *buf, size_t len)
{
	if (fs->remote && !remote_connected(fs->remote)) {
		snprintf(buf, len, "no owner reachable: reconnecting to %s", fs->owner);
		return buf;
	}
	return fs->reason;
}

/* "reclaims" and "locks_lost": on the owner, reclaims its table granted
 * and refused; on a client, its locks reclaimed and lost. Under lock. */
static void status_reclaims_json(struct dipolefs *fs, struct strbuf *sb)
{
	uint64_t ok = 0, lost = 0;
	if (fs->local)
		locks_reclaims(local_locks(fs->local), &ok, &lost);
	else if (fs->remote)
		remote_reclaims(fs->remote, &ok, &lost);
	strbuf_printf(sb, ",\"reclaims\":%llu,\"locks_lost\":%llu", (unsigned long long)ok,
		      (unsigned long long)lost);
}

void dipolefs_status_json(struct dipolefs *fs, struct strbuf *sb)
{
	char why[256];
	pthread_mutex_lock(&fs->lock);
	strbuf_printf(sb, "{\"mountpoint\":");
	if (fs->mountpoint[0])
		strbuf_json_str(sb, fs->mountpoint);
	else
		strbuf_printf(sb, "null");
	strbuf_printf(sb, ",\"mounted_here\":%s", fs->mountpoint[0] ? "true" : "false");
	strbuf_printf(sb, ",\"owner\":");
	strbuf_json_str(sb, fs->owner);
	strbuf_printf(sb, ",\"role\":\"%s\",\"clients\":", role_name(fs->role));
	if (fs->srv)
		server_status_json(fs->srv, sb);
	else
		strbuf_printf(sb, "[]");
	strbuf_printf(sb, ",\"locks\":%u,\"grace\":%s,\"reason\":", fs->local ? local_lock_count(fs->local) : 0,
		      fs->local && locks_in_grace(local_locks(fs->local)) ? "true" : "false");
	strbuf_json_str(sb, reason(fs, why, sizeof why));
	/* owner: served for clients and revocations sent; client: sent to the
	 * owner and revocations received */
	uint64_t req = 0, rev = 0, conns = 0, stale = 0;
	uint32_t epoch = 0;
	if (fs->srv) {
		server_counters(fs->srv, &req, &rev, &stale);
		epoch = server_epoch(fs->srv);
	} else if (fs->remote) {
		remote_counters(fs->remote, &req, &rev, &conns);
		epoch = remote_epoch(fs->remote);
	}
	strbuf_printf(sb, ",\"requests\":%llu,\"revocations\":%llu,\"connections\":%llu", (unsigned long long)req,
		      (unsigned long long)rev, (unsigned long long)conns);
	/* owner: its epoch and the requests refused for another; client: the
	 * owner's epoch as its connection learned it (0: none) */
	strbuf_printf(sb, ",\"owner_epoch\":\"%08x\",\"stale_refused\":%llu", epoch, (unsigned long long)stale);
	/* this node's own mount: what its kernel asked, and (owner) the names
	 * it may cache (dirsplit.h) */
	strbuf_printf(sb, ",\"mount_requests\":%llu,\"owner_names\":%zu", (unsigned long long)fusefs_requests(fs->fuse),
		      fs->split && fs->srv ? dirsplit_names(fs->split) : (size_t)0);
	status_reclaims_json(fs, sb);
	strbuf_printf(sb, "}");
	pthread_mutex_unlock(&fs->lock);
}

void dipolefs_status_text(struct dipolefs *fs, struct strbuf *sb)
{
	char why[256];
	const char *names[16];
	pthread_mutex_lock(&fs->lock);
	int n = fs->srv ? server_clients(fs->srv, names, 16) : 0;
	const char *r = reason(fs, why, sizeof why);
	if (fs->mountpoint[0])
		strbuf_printf(sb, "  fs: %s at %s, owner %s, %d clients", role_name(fs->role), fs->mountpoint, fs->owner,
			      n);
	else
		strbuf_printf(sb, "  fs: owner serving without a local mount, owner %s, %d clients", fs->owner, n);
	for (int i = 0; i < n && i < 16; i++)
		strbuf_printf(sb, "%s%s", i ? "," : " (", names[i]);
	int grace = fs->local && locks_in_grace(local_locks(fs->local));
	strbuf_printf(sb, "%s, %u locks%s%s%s\n", n ? ")" : "", fs->local ? local_lock_count(fs->local) : 0,
		      grace ? " (grace period: only reclaims granted)" : "", r[0] ? ", " : "", r);
	pthread_mutex_unlock(&fs->lock);
}

/* ---- a cut-off owner (docs/dipolefs.md "A cut-off owner") -------------- */

double dipolefs_io_timeout(struct dipolefs *fs)
{
	return fs->io_timeout;
}

/* The kernel filesystem shut down without writing anything more
 * (FS_IOC_SHUTDOWN, NOLOGFLUSH: ext4's and XFS's "going down"): its calls
 * fail with EIO at once, and its error handling (errors=panic) no longer
 * runs on the I/O errors that follow. On a thread of its own: the journal
 * abort writes the journal's superblock, which waits for held I/O until
 * the engine's fence fails it. */
#ifndef FS_IOC_SHUTDOWN
#define FS_IOC_SHUTDOWN _IOR('X', 125, uint32_t)
#endif
#define FS_SHUTDOWN_NOLOGFLUSH 2u

static void *shutdown_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint32_t how = FS_SHUTDOWN_NOLOGFLUSH;
	if (ioctl(fd, FS_IOC_SHUTDOWN, &how))
		log_warn("dipolefs: cannot shut the kernel filesystem down: %s", strerror(errno));
	close(fd);
	return NULL;
}

/* A readable descriptor of the detached kernel mount's root: fsmount(2)
 * gives an O_PATH one, which ioctl and syncfs refuse (EBADF). */
static int open_mount_root(int mnt_fd)
{
	return openat(mnt_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void shutdown_kernel_fs(int mnt_fd)
{
	pthread_t t;
	pthread_attr_t a;
	int fd = open_mount_root(mnt_fd);
	if (fd < 0) {
		log_warn("dipolefs: cannot open the kernel filesystem to shut it down: %s", strerror(errno));
		return;
	}
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, shutdown_main, (void *)(intptr_t)fd))
		close(fd);
	pthread_attr_destroy(&a);
}

void dipolefs_fence(struct dipolefs *fs, const char *why)
{
	if (fs->role != FSR_OWNER)
		return;
	fusefs_fail(fs->fuse, EIO);
	if (fs->mnt_fd >= 0)
		shutdown_kernel_fs(fs->mnt_fd);
	log_err("dipolefs: %s fenced: %s; its calls fail with EIO", fs->fsname, why);
}

int dipolefs_drop_kernel(struct dipolefs *fs)
{
	if (fs->role != FSR_OWNER)
		return 0;
	if (!fusefs_drained(fs->fuse))
		return -EBUSY;
	/* the server before the backend, as at unmount: closing a client's
	 * connection releases its handles and drops its locks (node_gone) in
	 * fs->local; the mount here answers EIO without calling either */
	serving_off(fs);
	kernel_off(fs); /* the last reference: the kernel filesystem is unmounted */
	pthread_mutex_lock(&fs->lock);
	fs->role = FSR_NONE;
	fs->owner[0] = 0;
	pthread_mutex_unlock(&fs->lock);
	log_warn("dipolefs: %s: the kernel filesystem is unmounted here; the mount at %s answers EIO until "
		 "unmounted", fs->fsname, fs->mountpoint[0] ? fs->mountpoint : "(none)");
	return 0;
}

/* ---- failover (docs/dipolefs.md "Failover") ----------------------------- */

void dipolefs_hold(struct dipolefs *fs, unsigned hold_ms)
{
	if (fs->sw && fs->role == FSR_CLIENT)
		fsswitch_hold(fs->sw, hold_ms);
}

void dipolefs_unhold(struct dipolefs *fs)
{
	if (fs->sw)
		fsswitch_unhold(fs->sw);
}

/* After a switch: what this node's kernel caches may be older than what
 * the new backend serves (the dead owner's unsynced changes are gone,
 * revocations were lost), so it all goes. Not while calls are held: a
 * held call may hold a directory lock or a page this would wait for. */
static void drop_caches(struct dipolefs *fs)
{
	const struct fs_notify *n = fs->fuse ? fusefs_notify(fs->fuse) : NULL;
	if (n && n->inval_all)
		n->inval_all(n->arg);
}

/* Swap the client's remote (none: a former owner, parked) for the next
 * backend; the old one is closed. lost: the old owner died (fsswitch_set). */
static void switch_from_remote(struct dipolefs *fs, const struct fs_ops *ops, void *ctx, int (*ready)(void *),
			       struct remote *next, const char *owner, int lost)
{
	struct remote *old = fs->remote;
	int stale = fs->sw ? fsswitch_set(fs->sw, ops, ctx, ready, lost) : 0;
	if (old)
		remote_set_notify(old, NULL);
	/* the locks this node's processes held through the old owner, into
	 * the next backend (as reclaims: granted in its grace period) */
	int locks_lost = old && fs->sw ? remote_reclaim_to(old, &fsswitch_reclaim_ops, fs->sw) : 0;
	if (locks_lost > 0)
		log_warn("dipolefs: %d locks could not be taken to the new owner %s: their open files fail with EIO",
			 locks_lost, owner);
	pthread_mutex_lock(&fs->lock);
	fs->remote = next;
	fs->role = next ? FSR_CLIENT : FSR_OWNER;
	snprintf(fs->owner, sizeof fs->owner, "%s", owner);
	pthread_mutex_unlock(&fs->lock);
	if (old)
		remote_close(old);
	if (stale)
		log_warn("dipolefs: %d open files could not be reopened after the owner changed: they answer ESTALE",
			 stale);
	drop_caches(fs);
}

/* The nodes a grace period after this node takes over waits for: those
 * the old owner last said had mounted, but this node and the old owner
 * (dead, or in a planned handover holding no client locks). */
static uint64_t followers(struct dipolefs *fs, const struct dipolefs_conf *c, int planned)
{
	const struct cfg_host *old = cfg_find_host(c->r, fs->owner);
	uint64_t set = remote_mounted(fs->remote) & ~node_bit((uint32_t)c->me->node_id);
	if (old)
		set &= ~node_bit((uint32_t)old->node_id);
	char names[256];
	cfg_host_names(c->r, set, names, sizeof names);
	if (set)
		log_info("dipolefs: the lock grace period waits for the nodes that %s said had mounted:%s",
			 planned ? "the old owner" : "the lost owner", names);
	return set;
}

int dipolefs_take_over(struct dipolefs *fs, const struct dipolefs_conf *c, int planned, char *err)
{
	if (fs->role != FSR_CLIENT || !fs->fuse || !fs->remote) {
		snprintf(err, 256, "only a client's mount takes over");
		return -EINVAL;
	}
	struct fusefs_cache kept = fs->cache;
	int rc = serve_kernel(fs, c, 1, err);
	fs->cache = kept; /* the mount keeps the cache it was made with */
	if (rc) { /* undo: the server and backend go, the client mount stays */
		serving_off(fs);
		kernel_off(fs);
		return rc;
	}
	pthread_rwlock_wrlock(&fs->notify_lk);
	fs->fuse_n = fusefs_notify(fs->fuse);
	pthread_rwlock_unlock(&fs->notify_lk);
	/* the locks of this node and of every other node the old owner said
	 * had mounted are reclaimed in a grace period, so no new lock request
	 * (this node's processes' included) can take one first; it ends when
	 * each of them is done (docs/dipolefs.md "Locks across a failover") */
	uint64_t others = followers(fs, c, planned);
	dipolefs_grace_begin(fs, node_bit(c->me->node_id) | others);
	pthread_mutex_lock(&fs->lock);
	fs->grace_waits = others; /* dipolefs_grace_reachable may give up on them */
	pthread_mutex_unlock(&fs->lock);
	switch_from_remote(fs, &local_ops, fs->local, NULL, NULL, c->me->name, !planned);
	locks_reclaim_done(local_locks(fs->local), (uint32_t)c->me->node_id);
	if (c->lsn)
		server_listen(fs->srv, c->lsn);
	log_info("dipolefs: %s (%s on %s) taken over at %s: now owner, serving", fs->fsname, fs->fstype, c->device,
		 fs->mountpoint);
	return 0;
}

int dipolefs_follow(struct dipolefs *fs, const struct dipolefs_conf *c, int planned, char *err)
{
	const struct cfg_host *o = c->owner ? cfg_find_host(c->r, c->owner) : NULL;
	struct remote *next;
	if (fs->role != FSR_CLIENT || !o) {
		snprintf(err, 256, "only a client's mount follows a named owner");
		return -EINVAL;
	}
	int rc = remote_open(&next, c->r, c->me, o, err);
	if (rc)
		return rc;
	/* revocations from the new owner reach the mount from the first call on */
	if (fs->fuse)
		remote_set_notify(next, fusefs_notify(fs->fuse));
	switch_from_remote(fs, &remote_ops, next, remote_ready, next, o->name, !planned);
	/* the locks went to the new owner as reclaims: its grace may wait for us */
	if ((rc = remote_reclaim_done(next)))
		log_warn("dipolefs: telling the new owner %s this node reclaimed its locks failed: %s", o->name,
			 strerror(-rc));
	log_info("dipolefs: %s at %s now forwards to the new owner %s", fs->fsname, fs->mountpoint, o->name);
	return 0;
}

/* syncfs(2) of the detached kernel mount: 0 or -errno. */
static int sync_kernel_fs(int mnt_fd)
{
	int fd = open_mount_root(mnt_fd);
	if (fd < 0)
		return -errno;
	int rc = syncfs(fd) ? -errno : 0;
	close(fd);
	return rc;
}

int dipolefs_release(struct dipolefs *fs, char *err)
{
	if (fs->role != FSR_OWNER) {
		snprintf(err, 256, "only the owner hands the filesystem over");
		return -EINVAL;
	}
	if (fs->sw) /* this node's calls wait for the next owner */
		fsswitch_park(fs->sw);
	/* the clients' calls in flight fail ENOTCONN there, and are retried
	 * once they follow the next owner (their daemons hold them) */
	serving_off(fs);
	/* a client from now on: its mount caches every name (the follow drops
	 * what it cached as owner) */
	if (fs->split)
		dirsplit_disable(fs->split);
	int rc = sync_kernel_fs(fs->mnt_fd);
	kernel_off(fs);
	pthread_mutex_lock(&fs->lock);
	fs->role = FSR_CLIENT;
	pthread_mutex_unlock(&fs->lock);
	if (rc)
		log_warn("dipolefs: %s: flushing before the handover failed: %s", fs->fsname, strerror(-rc));
	log_info("dipolefs: %s released: the kernel filesystem is unmounted here; this node's calls wait for the "
		 "next owner", fs->fsname);
	return 0;
}

/* dipolefs — see dipolefs.h. The owner role: the kernel filesystem is
 * mounted detached (fsopen/fsconfig/fsmount: only this process holds it,
 * through one fd), served by local.c behind fusefs.c at the user's mount
 * point. The client role needs remote.c (not yet here): -ENOTSUP. */
#include "dipolefs.h"
#include "config.h"
#include "fsprobe.h"
#include "fusefs.h"
#include "local.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

struct dipolefs {
	pthread_mutex_t lock;    /* guards role and the backend pointers */
	enum dipolefs_role role;
	int mnt_fd;              /* the detached kernel mount; -1 on a client */
	struct local *local;
	struct fusefs *fuse;
	char fstype[16];
	char owner[64];          /* node name of the owner */
	char reason[256];        /* why the mount is not serving, "" when it is */
	char mountpoint[FS_PATH_MAX];
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

int dipolefs_mount(struct dipolefs **out, struct engine *e, const struct dipolefs_conf *c, enum dipolefs_role role,
		   char *err)
{
	(void)e;
	if (role != FSR_OWNER) {
		snprintf(err, 256, "mounting as a client is not supported yet (this node is not the owner)");
		return -ENOTSUP;
	}
	if (!c->device || !c->mountpoint) {
		snprintf(err, 256, "the owner needs a device and a mount point");
		return -EINVAL;
	}
	struct dipolefs *fs = calloc(1, sizeof *fs);
	if (!fs)
		return -ENOMEM;
	pthread_mutex_init(&fs->lock, NULL);
	fs->mnt_fd = -1;
	fs->role = role;
	snprintf(fs->mountpoint, sizeof fs->mountpoint, "%s", c->mountpoint);
	snprintf(fs->owner, sizeof fs->owner, "%s", c->me && c->me->name ? c->me->name : "");
	int rc = 0;
	if (c->fstype) {
		snprintf(fs->fstype, sizeof fs->fstype, "%s", c->fstype);
	} else if ((rc = fsprobe_type(c->device, fs->fstype, sizeof fs->fstype, err))) {
		goto fail;
	} else if (!fs->fstype[0]) {
		snprintf(err, 256, "%s holds no filesystem; run `dipole mkfs` on the Primary first", c->device);
		rc = -ENODATA;
		goto fail;
	}
	if (!fsprobe_supported(fs->fstype)) {
		snprintf(err, 256, "%s holds a %s filesystem; dipolefs serves ext4 or xfs", c->device, fs->fstype);
		rc = -EMEDIUMTYPE;
		goto fail;
	}
	fs->mnt_fd = mount_detached(c->device, fs->fstype, c->options, err);
	if (fs->mnt_fd < 0) {
		rc = fs->mnt_fd;
		goto fail;
	}
	rc = local_open(&fs->local, fs->mnt_fd);
	if (rc) {
		snprintf(err, 256, "cannot serve the filesystem on %s: %s", c->device, strerror(-rc));
		goto fail;
	}
	char fsname[128];
	snprintf(fsname, sizeof fsname, "dipole:%s", c->r && c->r->name ? c->r->name : "fs");
	uint32_t node_id = c->me ? (uint32_t)c->me->node_id : 0;
	rc = fusefs_start(&fs->fuse, c->mountpoint, fsname, &local_ops, fs->local, node_id, err);
	if (rc)
		goto fail;
	/* requests of other nodes revoke what this node's mount caches */
	(void)local_add_notify(fs->local, node_id, fusefs_notify(fs->fuse));
	log_info("dipolefs: %s (%s on %s) mounted at %s as owner", fsname, fs->fstype, c->device, c->mountpoint);
	*out = fs;
	return 0;
fail:
	local_close(fs->local);
	if (fs->mnt_fd >= 0)
		close(fs->mnt_fd);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
	return rc;
}

void dipolefs_unmount(struct dipolefs *fs)
{
	if (!fs)
		return;
	pthread_mutex_lock(&fs->lock);
	fs->role = FSR_NONE;
	pthread_mutex_unlock(&fs->lock);
	/* FUSE first: once its threads are gone nothing uses the backend */
	fusefs_stop(fs->fuse);
	local_close(fs->local);
	/* the last reference to a detached mount unmounts it */
	if (fs->mnt_fd >= 0)
		close(fs->mnt_fd);
	log_info("dipolefs: %s unmounted", fs->mountpoint);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
}

static const char *role_name(enum dipolefs_role r)
{
	return r == FSR_OWNER ? "owner" : r == FSR_CLIENT ? "client" : "none";
}

void dipolefs_status_json(struct dipolefs *fs, struct strbuf *sb)
{
	pthread_mutex_lock(&fs->lock);
	strbuf_printf(sb, "{\"mountpoint\":");
	strbuf_json_str(sb, fs->mountpoint);
	strbuf_printf(sb, ",\"owner\":");
	strbuf_json_str(sb, fs->owner);
	strbuf_printf(sb, ",\"role\":\"%s\",\"clients\":[],\"locks\":%u,\"grace\":false,\"reason\":",
		      role_name(fs->role), fs->local ? local_lock_count(fs->local) : 0);
	strbuf_json_str(sb, fs->reason);
	strbuf_printf(sb, "}");
	pthread_mutex_unlock(&fs->lock);
}

void dipolefs_status_text(struct dipolefs *fs, struct strbuf *sb)
{
	pthread_mutex_lock(&fs->lock);
	strbuf_printf(sb, "  fs: %s at %s, owner %s, %u locks%s%s\n", role_name(fs->role), fs->mountpoint,
		      fs->owner, fs->local ? local_lock_count(fs->local) : 0, fs->reason[0] ? ", " : "",
		      fs->reason);
	pthread_mutex_unlock(&fs->lock);
}

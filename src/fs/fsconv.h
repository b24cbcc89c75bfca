/* fsconv — struct conversions between fsops.h (what fs code speaks) and
 * fsproto.h (what goes on the wire; net cannot see fs headers), shared by
 * remote.c and server.c. The limits of the two must agree: checked here at
 * compile time. */
#ifndef DIPOLE_FSCONV_H
#define DIPOLE_FSCONV_H

#include "fsops.h"
#include "fsproto.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

_Static_assert(FS_NAME_MAX == FSP_NAME_MAX && FS_PATH_MAX == FSP_PATH_MAX && FS_IO_MAX == FSP_IO_MAX &&
		       FS_XATTR_MAX == FSP_XATTR_MAX && FS_GROUPS_MAX == FSP_GROUPS_MAX,
	       "fsproto.h limits mirror fsops.h");
_Static_assert((FS_SET_MODE | FS_SET_UID | FS_SET_GID | FS_SET_SIZE | FS_SET_ATIME | FS_SET_MTIME |
			       FS_SET_ATIME_NOW | FS_SET_MTIME_NOW | FS_SET_CTIME) == FSP_SETATTR_MASK,
	       "setattr mask bits");
_Static_assert(FS_SETLK_WAIT == FSP_SETLK_WAIT && FS_SETLK_RECLAIM == FSP_SETLK_RECLAIM, "setlk flags");
_Static_assert(FS_DIRENTPLUS_ROOM(1) == FSP_DIRENTPLUS_ROOM(1) && FS_DIRENTPLUS_ROOM(255) == FSP_DIRENTPLUS_ROOM(255),
	       "READDIRPLUS room");
_Static_assert(FS_XATTR_COMMON == 4 && FSP_XATTR_ABSENT_MASK == 0xf, "xattr_absent bits");

static inline void fsconv_caller_out(struct fsp_caller *o, const struct fs_caller *c)
{
	o->uid = c->uid;
	o->gid = c->gid;
	o->pid = c->pid;
	o->node_id = c->node_id;
	o->ngroups = c->ngroups > FS_GROUPS_MAX ? FS_GROUPS_MAX : c->ngroups;
	memcpy(o->groups, c->groups, o->ngroups * sizeof o->groups[0]);
}

static inline void fsconv_caller_in(struct fs_caller *o, const struct fsp_caller *c)
{
	memset(o, 0, sizeof *o);
	o->uid = c->uid;
	o->gid = c->gid;
	o->pid = c->pid;
	o->node_id = c->node_id;
	o->ngroups = c->ngroups;
	memcpy(o->groups, c->groups, c->ngroups * sizeof o->groups[0]);
}

static inline uint64_t fsconv_sec_to_ns(double s)
{
	return s <= 0 ? 0 : s >= 3e7 ? 30000000ull * 1000000000ull : (uint64_t)(s * 1e9);
}

static inline void fsconv_entry_out(struct fsp_entry *o, const struct fs_entry *e)
{
	o->ino = e->ino;
	o->generation = e->generation;
	o->attr = e->attr;
	o->attr_timeout_ns = fsconv_sec_to_ns(e->attr_timeout);
	o->entry_timeout_ns = fsconv_sec_to_ns(e->entry_timeout);
	o->xattr_absent = e->xattr_absent & FSP_XATTR_ABSENT_MASK;
}

static inline void fsconv_entry_in(struct fs_entry *o, const struct fsp_entry *e)
{
	o->ino = e->ino;
	o->generation = e->generation;
	o->attr = e->attr;
	o->attr_timeout = (double)e->attr_timeout_ns / 1e9;
	o->entry_timeout = (double)e->entry_timeout_ns / 1e9;
	memset(&o->parent_attr, 0, sizeof o->parent_attr); /* not on the wire's entry (fsp_reply's pattr) */
	o->xattr_absent = e->xattr_absent;
}

static inline void fsconv_lock_out(struct fsp_lock *o, const struct fs_lock *l)
{
	o->start = l->start;
	o->end = l->end;
	o->type = l->type == F_RDLCK ? FSP_RDLCK : l->type == F_WRLCK ? FSP_WRLCK : FSP_UNLCK;
	o->flock = !!l->flock;
	o->owner = l->owner;
	o->node_id = l->node_id;
	o->pid = l->pid;
}

static inline void fsconv_lock_in(struct fs_lock *o, const struct fsp_lock *l)
{
	o->start = l->start;
	o->end = l->end;
	o->type = l->type == FSP_RDLCK ? F_RDLCK : l->type == FSP_WRLCK ? F_WRLCK : F_UNLCK;
	o->flock = l->flock;
	o->owner = l->owner;
	o->node_id = l->node_id;
	o->pid = l->pid;
}

/* Send buf on a socket without SIGPIPE (sendv_full, util.h). 0 or -errno. */
static inline int fsconv_send(int fd, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };
	return sendv_full(fd, &iov, 1);
}

#endif

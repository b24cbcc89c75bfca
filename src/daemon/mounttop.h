/* mounttop — what is mounted on top at a path, from /proc/self/mountinfo.
 *
 * A mount point under systemd's automount (fstab's x-systemd.automount)
 * holds an autofs mount before the filesystem is mounted over it, and
 * again after it is unmounted: "something is mounted there" is then the
 * wrong question. The mount checks ask for the topmost mount and its type
 * instead: autofs is a free mount point, fuse.dipole is our mount.
 */
#ifndef DIPOLE_MOUNTTOP_H
#define DIPOLE_MOUNTTOP_H

#include <stddef.h>

/* The type of the topmost mount at absolute, canonical `path` (e.g.
 * "autofs", "fuse.dipole") into type[len]: 1 if something is mounted there,
 * 0 if nothing is (type ""), or -errno if mountinfo cannot be read. */
int mounttop_type(const char *path, char *type, size_t len);

/* 1 when a new mount at `path` would hide something: a mount other than
 * an automount point (autofs) is on top; else 0 (or -errno). */
int mounttop_busy(const char *path);

/* 1 when a dipolefs mount (fuse.dipole) is at `path`, on top or under
 * another, else 0 (or -errno). */
int mounttop_has_dipolefs(const char *path);

/* When the topmost mount at `path` is an automount point (autofs): the
 * process group of its automount daemon (its pgrp= option; systemd: 1),
 * whose processes the kernel never makes wait for it. Else -1. */
long mounttop_autofs_pgrp(const char *path);

#endif

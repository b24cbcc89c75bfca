/* doctor_host — the doctor's checks of this machine: addresses and ports,
 * the backing disk, /dev/fuse and loop devices. See doctor.h. */
#include "doctor.h"
#include "daemon.h"
#include "disk.h"
#include "meta.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

pid_t dr_daemon_pid(struct cli *cli, const char *res)
{
	char path[512], buf[32] = "";
	cli_path(cli, res, "pid", path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/* the daemon holds it locked for as long as it runs (daemon.c) */
	pid_t pid = 0;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK && pread(fd, buf, sizeof buf - 1, 0) > 0)
		pid = (pid_t)atoi(buf);
	close(fd);
	return pid;
}

/* ------------------------------------------------ who holds what */

/* A process (not this one, not `skip`) with an open fd for which match()
 * says yes; its name into comm[64]. 0: none found. */
static pid_t fd_holder(int (*match)(const char *link, const char *fdpath, void *arg), void *arg, pid_t skip,
		       char *comm)
{
	DIR *proc = opendir("/proc");
	struct dirent *p;
	pid_t found = 0;
	while (proc && !found && (p = readdir(proc))) {
		pid_t pid = (pid_t)atoi(p->d_name);
		char dir[64], fdpath[384], link[256];
		if (pid <= 0 || pid == getpid() || pid == skip)
			continue;
		snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
		DIR *fds = opendir(dir);
		struct dirent *f;
		while (fds && !found && (f = readdir(fds))) {
			snprintf(fdpath, sizeof fdpath, "%s/%s", dir, f->d_name);
			ssize_t n = readlink(fdpath, link, sizeof link - 1);
			if (n <= 0)
				continue;
			link[n] = 0;
			if (match(link, fdpath, arg))
				found = pid;
		}
		if (fds)
			closedir(fds);
	}
	if (proc)
		closedir(proc);
	comm[0] = 0;
	if (found) {
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/comm", (int)found);
		FILE *c = fopen(path, "r");
		if (c && fgets(comm, 64, c))
			comm[strcspn(comm, "\n")] = 0;
		if (c)
			fclose(c);
	}
	return found;
}

static int match_socket(const char *link, const char *fdpath, void *arg)
{
	(void)fdpath;
	char want[48];
	snprintf(want, sizeof want, "socket:[%lu]", *(unsigned long *)arg);
	return !strcmp(link, want);
}

/* The inode of a listening TCP socket on `port` in this network
 * namespace (/proc/net/tcp, tcp6), 0 none. */
static unsigned long listen_inode(unsigned port)
{
	static const char *const tabs[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	unsigned long ino = 0;
	for (size_t t = 0; t < 2 && !ino; t++) {
		FILE *f = fopen(tabs[t], "r");
		char line[512], local[64];
		unsigned st;
		unsigned long inode;
		while (f && !ino && fgets(line, sizeof line, f)) {
			if (sscanf(line, " %*d: %63s %*s %x %*s %*s %*s %*s %*s %lu", local, &st, &inode) != 3)
				continue;
			char *colon = strrchr(local, ':');
			if (st == 0x0A && colon && strtoul(colon + 1, NULL, 16) == port)
				ino = inode;
		}
		if (f)
			fclose(f);
	}
	return ino;
}

/* ------------------------------------------------- addresses, ports */

static void check_port(struct doctor *dr, const struct cfg_resource *r, const char *what, const char *addr,
		       const struct cfg_loc *loc)
{
	struct sockaddr_storage ss;
	unsigned sl;
	if (parse_sockaddr(addr, &ss, &sl))
		return; /* the parser checked it; a hostname never gets here */
	unsigned port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						     : ((struct sockaddr_in *)&ss)->sin_port);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, e = 0;
	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
		e = errno;
	close(fd);
	if (e == EADDRNOTAVAIL) {
		dr_add(dr, DR_ERROR, "address-not-local", r->name, loc,
		       "give this host the address (ip addr add ... dev ...), or correct the address to one of "
		       "this host's (ip -br addr)",
		       "%s %s is not an address of this host: nothing can listen there", what, addr);
		return;
	}
	if (e != EADDRINUSE) {
		if (e)
			dr_add(dr, DR_WARNING, "address-unusable", r->name, loc, "see the error; run doctor as root",
			       "%s %s: cannot bind: %s", what, addr, strerror(e));
		else
			dr_add(dr, DR_INFO, "port-free", r->name, loc, NULL, "%s %s is local and free", what, addr);
		return;
	}
	char comm[64];
	unsigned long ino = listen_inode(port);
	pid_t pid = ino ? fd_holder(match_socket, &ino, 0, comm) : 0;
	if (dr->daemon_pid && (pid == dr->daemon_pid || !pid)) {
		dr_add(dr, DR_INFO, "port-ours", r->name, loc, NULL, "%s %s is in use by this resource's own daemon "
		       "(pid %d): the resource is up", what, addr, (int)dr->daemon_pid);
		return;
	}
	char who[128] = "another process";
	if (pid)
		snprintf(who, sizeof who, "another process (%s, pid %d)", comm, (int)pid);
	dr_add(dr, DR_ERROR, "port-in-use", r->name, loc,
	       "stop that process, or give this host another port in the configuration (on every node)",
	       "%s %s is in use by %s", what, addr, who);
}

void dr_check_addresses(struct doctor *dr, const struct cfg_resource *r, const struct cfg_host *h)
{
	if (!h->address)
		dr_add(dr, DR_ERROR, "address-missing", r->name, &h->loc, "add 'address IP:PORT;' to this host's on section",
		       "this host has no address: its peers cannot reach it");
	else
		check_port(dr, r, "replication address", h->address, &h->loc);
	if (h->nbd_address)
		check_port(dr, r, "nbd-address", h->nbd_address, &h->loc);
	if (h->metrics_address)
		check_port(dr, r, "metrics-address", h->metrics_address, &h->loc);
}

/* ------------------------------------------------------------- disk */

struct disk_id {
	struct stat st;
};

static int match_disk(const char *link, const char *fdpath, void *arg)
{
	const struct disk_id *d = arg;
	struct stat st;
	(void)link;
	if (stat(fdpath, &st) < 0)
		return 0;
	if (S_ISBLK(d->st.st_mode))
		return S_ISBLK(st.st_mode) && st.st_rdev == d->st.st_rdev;
	return st.st_dev == d->st.st_dev && st.st_ino == d->st.st_ino;
}

/* Where block device `rdev` is mounted, into mnt[len]: 1, else 0. */
static int mounted_at(dev_t rdev, char *mnt, size_t len)
{
	FILE *f = fopen("/proc/mounts", "r");
	char src[1024], dir[1024];
	int found = 0;
	struct stat st;
	while (f && !found && fscanf(f, "%1023s %1023s %*[^\n]", src, dir) == 2)
		if (src[0] == '/' && stat(src, &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == rdev) {
			snprintf(mnt, len, "%s", dir);
			found = 1;
		}
	if (f)
		fclose(f);
	return found;
}

/* A loop device backed by the file `path` (its name into loop[32]): 1, else 0. */
static int loop_backed_by(const char *path, char *loop, size_t len)
{
	char real[4096], line[4096];
	if (!realpath(path, real))
		return 0;
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	int found = 0;
	while (d && !found && (e = readdir(d))) {
		if (strncmp(e->d_name, "loop", 4))
			continue;
		char bf[300];
		snprintf(bf, sizeof bf, "/sys/block/%s/loop/backing_file", e->d_name);
		FILE *f = fopen(bf, "r");
		if (f && fgets(line, sizeof line, f)) {
			line[strcspn(line, "\n")] = 0;
			if (!strcmp(line, real)) {
				snprintf(loop, len, "/dev/%s", e->d_name);
				found = 1;
			}
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

/* Kernel users of a block device: a mount, a holder (device-mapper, md),
 * an exclusive opener. 1 if it found one (and said so). */
static int check_block_users(struct doctor *dr, const struct cfg_resource *r, const struct cfg_host *h,
			     const struct stat *st)
{
	char mnt[1024], holders[128];
	if (mounted_at(st->st_rdev, mnt, sizeof mnt)) {
		dr_add(dr, DR_ERROR, "disk-mounted", r->name, &h->disk_loc,
		       "unmount it (umount); use the resource's device or dipolefs instead, never the backing disk",
		       "backing disk %s is mounted at %s: writes there bypass replication and corrupt it", h->disk, mnt);
		return 1;
	}
	snprintf(holders, sizeof holders, "/sys/dev/block/%u:%u/holders", major(st->st_rdev), minor(st->st_rdev));
	DIR *d = opendir(holders);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			dr_add(dr, DR_ERROR, "disk-in-use", r->name, &h->disk_loc,
			       "remove what sits on it (dmsetup remove, mdadm --stop) or name another disk",
			       "backing disk %s is held by %s (device-mapper, md or another stacked device)", h->disk,
			       e->d_name);
			closedir(d);
			return 1;
		}
	if (d)
		closedir(d);
	int fd = open(h->disk, O_RDONLY | O_EXCL | O_CLOEXEC);
	if (fd < 0 && errno == EBUSY && !dr->daemon_pid) {
		dr_add(dr, DR_ERROR, "disk-in-use", r->name, &h->disk_loc,
		       "find and stop its user (fuser -vm, lsblk), or name another disk",
		       "backing disk %s is claimed exclusively by the kernel or another program", h->disk);
		return 1;
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

/* A file used as a disk: mounted or attached through a loop device of its own? */
static int check_file_users(struct doctor *dr, const struct cfg_resource *r, const struct cfg_host *h)
{
	char loop[64], mnt[1024];
	struct stat ls;
	if (!loop_backed_by(h->disk, loop, sizeof loop))
		return 0;
	if (stat(loop, &ls) == 0 && mounted_at(ls.st_rdev, mnt, sizeof mnt))
		dr_add(dr, DR_ERROR, "disk-mounted", r->name, &h->disk_loc,
		       "unmount it and detach the loop device (umount, losetup -d); use the resource's device or "
		       "dipolefs instead", "backing file %s is mounted through %s at %s: writes there bypass "
		       "replication and corrupt it", h->disk, loop, mnt);
	else
		dr_add(dr, DR_ERROR, "disk-in-use", r->name, &h->disk_loc, "detach it (losetup -d) first",
		       "backing file %s is attached to %s", h->disk, loop);
	return 1;
}

static uint64_t disk_bytes(const char *path, const struct stat *st)
{
	uint64_t n = (uint64_t)st->st_size;
	if (S_ISBLK(st->st_mode)) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || ioctl(fd, BLKGETSIZE64, &n) < 0)
			n = 0;
		if (fd >= 0)
			close(fd);
	}
	return n;
}

/* Does the metadata fit, and what does it say (when the daemon is not up)? */
static void check_metadata(struct doctor *dr, const struct cfg_resource *r, const struct cfg_host *h, uint64_t bytes)
{
	char a[32], b[32];
	struct md_layout lay;
	int slots = cfg_disk_hosts(r) - 1;
	if (md_layout(bytes, (uint32_t)(slots < 1 ? 1 : slots), &lay)) {
		dr_add(dr, DR_ERROR, "disk-too-small", r->name, &h->disk_loc, "give it more space (lvextend) or name a larger disk",
		       "backing disk %s holds %s: too small for dipole's metadata plus 1 MiB of data", h->disk,
		       fmt_size(bytes, a, sizeof a));
		return;
	}
	dr_add(dr, DR_INFO, "disk-size", r->name, &h->disk_loc, NULL, "backing disk %s: %s, %s for data after the metadata",
	       h->disk, fmt_size(bytes, a, sizeof a), fmt_size(lay.data_size, b, sizeof b));
	if (dr->daemon_pid)
		return; /* attached: the daemon's status says the rest */
	struct disk *d;
	struct md_super sb;
	char err[MD_MSG_MAX] = "", warn[MD_MSG_MAX] = "";
	if (disk_open(&d, h->disk, 1))
		return;
	int rc = md_read(d, &sb, err, warn);
	disk_close(d);
	char fix[128];
	snprintf(fix, sizeof fix, "dipole create-md %s on this node (once)", r->name);
	if (rc == -ENOENT)
		dr_add(dr, DR_WARNING, "no-metadata", r->name, &h->disk_loc, fix,
		       "backing disk %s has no dipole metadata yet: 'up' will refuse it", h->disk);
	else if (rc)
		dr_add(dr, DR_ERROR, "metadata-bad", r->name, &h->disk_loc, "see dipole dump-md; create-md --force starts over "
		       "(this node's data is then resynced from a peer)", "metadata on %s: %s", h->disk, err[0] ? err : strerror(-rc));
	else if (strcmp(sb.resource, r->name) || sb.node_id != h->node_id)
		dr_add(dr, DR_ERROR, "metadata-other", r->name, &h->disk_loc, "name the right disk, or create-md --force if "
		       "this disk is meant for this resource", "metadata on %s belongs to resource '%s' node-id %d, not '%s' "
		       "node-id %d", h->disk, sb.resource, sb.node_id, r->name, h->node_id);
}

void dr_check_disk(struct doctor *dr, const struct cfg_resource *r, const struct cfg_host *h)
{
	struct disk_id id;
	char comm[64];
	if (h->diskless) {
		dr_add(dr, DR_INFO, "diskless", r->name, &h->loc, NULL, "this host is diskless (disk none): a tiebreaker");
		return;
	}
	if (stat(h->disk, &id.st) < 0) {
		dr_add(dr, DR_ERROR, "disk-missing", r->name, &h->disk_loc,
		       "create it (for an LVM volume: lvcreate -L SIZE -n LV VG) or correct the disk path",
		       "backing disk %s does not exist: %s", h->disk, strerror(errno));
		return;
	}
	if (!S_ISBLK(id.st.st_mode) && !S_ISREG(id.st.st_mode)) {
		dr_add(dr, DR_ERROR, "disk-type", r->name, &h->disk_loc, "name a block device (an LVM volume) or a file",
		       "backing disk %s is neither a block device nor a file", h->disk);
		return;
	}
	check_metadata(dr, r, h, disk_bytes(h->disk, &id.st));
	if (S_ISBLK(id.st.st_mode) ? check_block_users(dr, r, h, &id.st) : check_file_users(dr, r, h))
		return;
	pid_t pid = fd_holder(match_disk, &id, dr->daemon_pid, comm);
	if (pid)
		dr_add(dr, DR_WARNING, "disk-open", r->name, &h->disk_loc,
		       "stop it before 'up': dipole must be the disk's only user",
		       "backing disk %s is open in another process (%s, pid %d)", h->disk, comm, (int)pid);
	else if (!dr->daemon_pid)
		dr_add(dr, DR_INFO, "disk-free", r->name, &h->disk_loc, NULL, "backing disk %s is not mounted or in use", h->disk);
}

/* ----------------------------------------------- /dev/fuse, loop */

void dr_check_kernel(struct doctor *dr, const struct cfg_resource *r, const struct cfg_host *h)
{
	if (h->diskless)
		return;
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		dr_add(dr, DR_ERROR, "fuse-missing", r->name, NULL,
		       "modprobe fuse (in a container: pass --device /dev/fuse); apt-get install fuse3",
		       "/dev/fuse cannot be opened (%s): the loop device and dipolefs need FUSE", strerror(errno));
	else
		close(fd);
	fd = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	int free_loop = fd >= 0 ? ioctl(fd, LOOP_CTL_GET_FREE) : -1;
	if (fd >= 0)
		close(fd);
	if (free_loop < 0)
		dr_add(dr, h->device ? DR_ERROR : DR_WARNING, "loop-missing", r->name, NULL,
		       "modprobe loop (in a container: pass --device /dev/loop-control and /dev/loopN)",
		       "no free loop device (/dev/loop-control: %s): 'up' cannot attach the device%s", strerror(errno),
		       h->device ? "" : " (only NBD with --device none)");
	else
		dr_add(dr, DR_INFO, "kernel", r->name, NULL, NULL, "/dev/fuse and a free loop device (/dev/loop%d) are there",
		       free_loop);
}

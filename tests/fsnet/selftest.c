/* fsnet self-test: the dipolefs client (remote.c) against the owner's
 * server (server.c) over loopback TCP, through the resource's listener and
 * the real handshake, with a passthrough backend over a temporary
 * directory. No FUSE, no daemon. Prints "ok - fsnet: ..." lines.
 *
 *   build/fsnet-selftest [-v]
 */
#include "config.h"
#include "fsproto.h"
#include "hs.h"
#include "listener.h"
#include "log.h"
#include "passthrough.h"
#include "remote.h"
#include "server.h"
#include "util.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int failed;
#define T(cond, ...) do { int ok_ = !!(cond); printf("%s - fsnet: ", ok_ ? "ok" : "not ok"); \
	printf(__VA_ARGS__); printf("\n"); if (!ok_) { failed = 1; printf("#   at line %d: %s\n", __LINE__, #cond); } \
	fflush(stdout); } while (0)

static struct fs_caller caller = { .uid = 0, .gid = 0, .pid = 1, .node_id = 1 };
#define C (&caller)

static const struct cfg_resource *parse(struct cfg **cfg, int port, const char *net)
{
	char text[1024], err[CFG_ERR_MAX];
	snprintf(text, sizeof text,
		 "resource r0 {\n net { %s }\n"
		 " on a { address 127.0.0.1:%d; disk /dev/null; node-id 0; }\n"
		 " on b { address 127.0.0.1:%d; disk /dev/null; node-id 1; }\n"
		 " on c { address 127.0.0.3:%d; disk /dev/null; node-id 2; }\n}\n",
		 net, port, port + 1, port + 2);
	if (cfg_parse_buffer("fsnet.res", text, strlen(text), 0, cfg, err)) {
		fprintf(stderr, "config: %s\n", err);
		exit(2);
	}
	return cfg_find_res(*cfg, "r0");
}

struct seen { int inodes, entries; uint64_t ino; int64_t off, len; char name[256]; };
static void n_inode(void *arg, uint64_t ino, int64_t off, int64_t len)
{
	struct seen *s = arg;
	s->inodes++;
	s->ino = ino;
	s->off = off;
	s->len = len;
}
static void n_entry(void *arg, uint64_t parent, const char *name)
{
	struct seen *s = arg;
	s->entries++;
	s->ino = parent;
	snprintf(s->name, sizeof s->name, "%s", name);
}

struct dirlist { char names[64][64]; int n; int stop_after; };
static int collect(void *arg, const char *name, uint64_t ino, mode_t type, uint64_t next)
{
	struct dirlist *d = arg;
	(void)ino, (void)type, (void)next;
	if (d->stop_after && d->n >= d->stop_after)
		return 1;
	if (d->n < 64)
		snprintf(d->names[d->n++], 64, "%s", name);
	return 0;
}
static int has(const struct dirlist *d, const char *name)
{
	for (int i = 0; i < d->n; i++)
		if (!strcmp(d->names[i], name))
			return 1;
	return 0;
}

struct lockarg { void *rm; uint64_t ino, fh; int rc; uint64_t owner, token; };
static void *blocked_setlk(void *arg)
{
	struct lockarg *a = arg;
	struct fs_lock lk = { .start = 0, .end = 99, .type = F_WRLCK, .owner = a->owner ? a->owner : 2, .node_id = 1 };
	a->rc = remote_ops.setlk(a->rm, C, a->ino, a->fh, &lk, 1, a->token ? a->token : 4242);
	return NULL;
}
static void *slow_fsync(void *arg)
{
	struct lockarg *a = arg;
	a->rc = remote_ops.fsync(a->rm, C, a->ino, a->fh, 0);
	return NULL;
}

static void *getattr_thr(void *arg)
{
	struct lockarg *a = arg;
	struct stat st;
	a->rc = remote_ops.getattr(a->rm, C, a->ino, &st);
	return NULL;
}

/* many calls in flight at once: each reply must wake its own caller */
static void *getattr_many(void *arg)
{
	struct lockarg *a = arg;
	struct stat st;
	a->rc = 0;
	for (int i = 0; i < 500 && !a->rc; i++)
		a->rc = remote_ops.getattr(a->rm, C, a->ino, &st);
	return NULL;
}

static void wait_until(int (*cond)(void *), void *arg, int ms)
{
	for (int i = 0; i < ms / 10 && !cond(arg); i++)
		usleep(10000);
}
static int gone_seen(void *arg) { (void)arg; return pt_stats.gone > 0; }
static int connected(void *arg) { return remote_connected(arg); }
/* the client may finish its handshake a moment before the owner has it listed */
static int listed(void *arg) { const char *n[4]; return server_clients(arg, n, 4) > 0; }
static const char *drop_wanted;
static int dropped(void *arg)
{
	char buf[256];
	server_last_drop(arg, buf, sizeof buf);
	return strstr(buf, drop_wanted) != NULL;
}

/* A hand-made client: handshake as `id` from `src`, then raw frames. */
static int raw_client(const struct cfg_resource *r, int port, int id, const char *src)
{
	char addr[64], reason[256];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	int fd = hs_dial_from(addr, src, -1);
	if (fd < 0)
		return fd;
	struct hs_conf hc = { .res = r->name, .my_id = id, .peer_id = 0, .peer_name = "a", .fs_only = 1,
			      .timeout_ms = 5000 };
	int ch = CH_FS;
	struct pkt_hello peer, mine;
	if (hs_handshake(&hc, fd, &ch, "a", &peer, &mine, reason)) {
		close(fd);
		return -ECONNREFUSED;
	}
	return fd;
}

/* A MKDIR of `name` under the root stamped with owner epoch `epoch`, sent
 * on a raw client's fd; its reply's result (-errno), and *rep_epoch the
 * epoch the reply carries. -1000 when no reply came. */
static int64_t raw_mkdir(int fd, const char *name, uint32_t epoch, uint32_t *rep_epoch)
{
	static uint64_t id;
	uint8_t b[FSP_HDR + 512];
	struct fsp_req q = { .op = FSP_MKDIR, .epoch = epoch, .ino = FS_ROOT_INO, .name = name,
			     .name_len = (uint16_t)strlen(name), .mode = 0755, .caller = { .pid = 1, .node_id = 2 } };
	int n = fsp_encode_req(b, sizeof b, ++id, &q);
	struct fsp_hdr h;
	struct fsp_reply r;
	char why[256];
	if (n < 0 || write_full(fd, b, (size_t)n) || read_full(fd, b, FSP_HDR) || fsp_decode_hdr(b, &h, why, sizeof why) ||
	    h.len > sizeof b - FSP_HDR || read_full(fd, b + FSP_HDR, h.len) ||
	    fsp_decode_reply(&h, b + FSP_HDR, &r, why, sizeof why) || h.id != id)
		return -1000;
	*rep_epoch = r.epoch;
	return r.result;
}

static uint64_t stale_refused(struct server *s)
{
	uint64_t req, rev, stale;
	server_counters(s, &req, &rev, &stale);
	return stale;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/fsnet.XXXXXX", err[256], why[256];
	signal(SIGPIPE, SIG_IGN); /* as the daemon does: a closed peer is an error return */
	if (argc < 2 || strcmp(argv[1], "-v"))
		log_set_level(LOG_ERR);
	if (!mkdtemp(dir) || pt_init(dir)) {
		perror("setup");
		return 2;
	}
	int port = 20000 + (getpid() % 20000);
	struct cfg *cfg, *cfg_s1, *cfg_s2;
	const struct cfg_resource *r = parse(&cfg, port, "");
	const struct cfg_host *a = cfg_find_host(r, "a"), *b = cfg_find_host(r, "b");

	struct listener *lsn;
	if (listener_open(&lsn, a->address, "a", err) || listener_start(lsn)) {
		fprintf(stderr, "listener: %s\n", err);
		return 2;
	}
	struct server *srv;
	T(server_open(&srv, r, a, &pt_ops, NULL, err) == 0, "server opens");
	server_set_node_gone(srv, pt_node_gone, NULL);
	server_listen(srv, lsn);
	struct remote *rm;
	int rc = remote_open(&rm, r, b, a, err);
	T(rc == 0, "client b connects to owner a through the listener's CH_FS route (%s)", rc ? err : "");
	if (rc)
		return 1;
	struct seen seen = { 0 };
	remote_set_notify(rm, &(struct fs_notify){ .inval_inode = n_inode, .inval_entry = n_entry, .arg = &seen });
	const struct fs_ops *o = &remote_ops;
	void *x = rm;
	const char *names[4];
	wait_until(listed, srv, 2000);
	T(server_clients(srv, names, 4) == 1 && !strcmp(names[0], "b"), "the owner lists client b");
	struct strbuf sb = { 0 };
	server_status_json(srv, &sb);
	T(sb.buf && !strcmp(sb.buf, "[\"b\"]"), "status json lists the clients: %s", sb.buf ? sb.buf : "");
	strbuf_free(&sb);

	/* ---- names */
	struct fs_entry e, e2, ed;
	struct stat st;
	T(o->lookup(x, C, FS_ROOT_INO, "nothing", &e) == -ENOENT, "lookup of a missing name: ENOENT");
	T(o->mkdir(x, C, FS_ROOT_INO, "d", 0755, &ed) == 0 && S_ISDIR(ed.attr.st_mode) && ed.ino > 1 &&
	  (ed.attr.st_mode & 07777) == 0755, "mkdir returns the directory's entry");
	T(o->mkdir(x, C, FS_ROOT_INO, "d", 0755, &e) == -EEXIST, "mkdir of an existing name: EEXIST");
	T(o->lookup(x, C, FS_ROOT_INO, "d", &e) == 0 && e.ino == ed.ino && e.attr_timeout > 0.99 &&
	  e.attr_timeout < 1.01, "lookup finds it, with its timeouts");
	uint64_t fh, fh2;
	T(o->create(x, C, ed.ino, "f", 0640, O_RDWR, &e, &fh) == 0 && S_ISREG(e.attr.st_mode), "create a file");
	T(o->create(x, C, ed.ino, "f", 0640, O_RDWR | O_EXCL, &e2, &fh2) == -EEXIST, "O_EXCL create: EEXIST");
	uint64_t fino = e.ino;
	char name256[300];
	memset(name256, 'n', 256);
	name256[256] = 0;
	T(o->lookup(x, C, FS_ROOT_INO, name256, &e2) == -ENAMETOOLONG, "a 256-byte name: ENAMETOOLONG");

	/* ---- data */
	static uint8_t big[FS_IO_MAX], back[FS_IO_MAX];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 7 + 3);
	T(o->write(x, C, fino, fh, big, sizeof big, 4096) == (ssize_t)sizeof big, "write 1 MiB at 4096");
	T(o->read(x, C, fino, fh, back, sizeof back, 4096) == (ssize_t)sizeof back && !memcmp(big, back, sizeof big),
	  "read it back, same bytes");
	T(o->read(x, C, fino, fh, back, 100, (1u << 20) + 4096) == 0, "read at EOF: 0");
	T(o->getattr(x, C, fino, &st) == 0 && st.st_size == (off_t)sizeof big + 4096, "getattr: size %lld",
	  (long long)st.st_size);
	struct stat want = { .st_size = 10, .st_mode = 0600 };
	T(o->setattr(x, C, fino, &want, FS_SET_SIZE | FS_SET_MODE, fh, &st) == 0 && st.st_size == 10 &&
	  (st.st_mode & 07777) == 0600, "setattr: truncate and chmod");
	T(o->fallocate(x, C, fino, fh, 0, 0, 65536) == 0 && o->getattr(x, C, fino, &st) == 0 && st.st_size == 65536,
	  "fallocate extends to 64 KiB");
	int64_t hole = o->lseek(x, C, fino, fh, 0, SEEK_HOLE);
	T(hole >= 0 && hole <= 65536, "lseek SEEK_HOLE: %lld", (long long)hole);
	T(o->lseek(x, C, fino, fh, 1 << 20, SEEK_DATA) == -ENXIO, "lseek SEEK_DATA past EOF: ENXIO");
	T(o->fsync(x, C, fino, fh, 0) == 0 && o->fsync(x, C, fino, fh, 1) == 0, "fsync and fdatasync");
	T(o->flush(x, C, fino, fh, 77) == 0, "flush");
	T(o->read(x, C, fino, 9999, back, 10, 0) == -EBADF, "read on a bad handle: EBADF");

	/* ---- links, rename, readdir */
	char buf[FS_PATH_MAX];
	T(o->symlink(x, C, "f", ed.ino, "s", &e2) == 0 && S_ISLNK(e2.attr.st_mode), "symlink");
	T(o->readlink(x, C, e2.ino, buf, sizeof buf) == 0 && !strcmp(buf, "f"), "readlink: \"%s\"", buf);
	T(o->readlink(x, C, fino, buf, sizeof buf) == -EINVAL, "readlink of a file: EINVAL");
	T(o->link(x, C, fino, FS_ROOT_INO, "hard", &e2) == 0 && e2.ino == fino && e2.attr.st_nlink == 2,
	  "link: same node, nlink 2");
	T(o->rename(x, C, FS_ROOT_INO, "hard", ed.ino, "moved", 0) == 0, "rename across directories");
	T(o->rename(x, C, ed.ino, "moved", ed.ino, "f", 1 /* RENAME_NOREPLACE */) == -EEXIST,
	  "rename NOREPLACE over a name: EEXIST");
	T(o->mknod(x, C, ed.ino, "fifo", S_IFIFO | 0600, 0, &e2) == 0 && S_ISFIFO(e2.attr.st_mode), "mknod a fifo");
	T(o->rmdir(x, C, FS_ROOT_INO, "d", NULL) == -ENOTEMPTY, "rmdir of a full directory: ENOTEMPTY");
	T(o->unlink(x, C, FS_ROOT_INO, "d", NULL) == -EISDIR, "unlink of a directory: EISDIR");
	/* the test backend knows a node by the path it was last found at */
	T(o->lookup(x, C, ed.ino, "f", &e2) == 0 && e2.ino == fino && e2.attr.st_nlink == 2, "lookup after rename");
	T(o->lookup(x, C, fino, "x", &e2) == -ENOTDIR, "lookup under a file: ENOTDIR");
	uint64_t dfh;
	struct dirlist dl = { .n = 0 };
	T(o->opendir(x, C, ed.ino, &dfh) == 0, "opendir");
	T(o->readdir(x, C, ed.ino, dfh, 0, collect, &dl) == 0 && dl.n == 6 && has(&dl, "f") && has(&dl, "s") &&
	  has(&dl, "moved") && has(&dl, "fifo") && has(&dl, "."), "readdir lists the 6 entries (%d)", dl.n);
	struct dirlist d2 = { .stop_after = 2 };
	T(o->readdir(x, C, ed.ino, dfh, 0, collect, &d2) == 0 && d2.n == 2, "readdir stops when the filler is full");
	T(o->fsyncdir(x, C, ed.ino, dfh, 0) == 0 && o->releasedir(x, ed.ino, dfh) == 0, "fsyncdir, releasedir");
	struct statvfs sv;
	T(o->statfs(x, C, FS_ROOT_INO, &sv) == 0 && sv.f_bsize > 0 && sv.f_blocks > 0, "statfs");

	/* ---- xattrs */
	rc = o->setxattr(x, C, fino, "user.dipole", "value", 5, 0);
	if (rc == -ENOTSUP) {
		T(1, "xattrs: skipped, the test directory's filesystem has none");
	} else {
		T(rc == 0, "setxattr");
		T(o->getxattr(x, C, fino, "user.dipole", NULL, 0) == 5, "getxattr size query: 5");
		T(o->getxattr(x, C, fino, "user.dipole", buf, sizeof buf) == 5 && !memcmp(buf, "value", 5), "getxattr");
		T(o->getxattr(x, C, fino, "user.dipole", buf, 2) == -ERANGE, "getxattr into a short buffer: ERANGE");
		ssize_t n = o->listxattr(x, C, fino, buf, sizeof buf);
		T(n >= 12 && memmem(buf, (size_t)n, "user.dipole", 12), "listxattr");
		T(o->setxattr(x, C, fino, "user.dipole", "v", 1, 1 /* XATTR_CREATE */) == -EEXIST,
		  "setxattr XATTR_CREATE on an existing one: EEXIST");
		T(o->removexattr(x, C, fino, "user.dipole") == 0 &&
		  o->getxattr(x, C, fino, "user.dipole", buf, sizeof buf) == -ENODATA, "removexattr, then ENODATA");
	}

	enum { NCONC = 8 };
	struct lockarg conc[NCONC];
	pthread_t ct[NCONC];
	for (int i = 0; i < NCONC; i++) {
		conc[i] = (struct lockarg){ rm, fino, 0, 1, 0, 0 };
		pthread_create(&ct[i], NULL, getattr_many, &conc[i]);
	}
	int conc_ok = 0;
	for (int i = 0; i < NCONC; i++) {
		pthread_join(ct[i], NULL);
		conc_ok += conc[i].rc == 0;
	}
	T(conc_ok == NCONC, "%d threads x 500 getattrs at once: every reply reached its caller (%d ok)", NCONC,
	  conc_ok);

	/* ---- locks */
	struct fs_lock lk = { .start = 0, .end = 99, .type = F_WRLCK, .owner = 1, .node_id = 1, .pid = 5 };
	T(o->setlk(x, C, fino, fh, &lk, 0, 1) == 0, "setlk a write lock");
	struct fs_lock q = { .start = 50, .end = 60, .type = F_RDLCK, .owner = 2, .node_id = 1 };
	T(o->getlk(x, C, fino, fh, &q) == 0 && q.type == F_WRLCK && q.pid == 5 && q.end == 99,
	  "getlk reports the holder");
	q = (struct fs_lock){ .start = 50, .end = 60, .type = F_WRLCK, .owner = 2, .node_id = 1 };
	T(o->setlk(x, C, fino, fh, &q, 0, 2) == -EAGAIN, "conflicting setlk: EAGAIN");
	struct lockarg la = { rm, fino, fh, 1, 0, 0 };
	pthread_t t;
	pthread_create(&t, NULL, blocked_setlk, &la);
	usleep(200000);
	T(o->getattr(x, C, fino, &st) == 0, "a blocked setlk does not stall the connection");
	o->interrupt(x, C, 4242);
	pthread_join(t, NULL);
	T(la.rc == -EINTR, "interrupt ends the blocked setlk: EINTR (%d)", la.rc);
	/* the owner's worker pool grows past every blocked request */
	enum { NBLOCKED = 40 };
	struct lockarg many[NBLOCKED];
	pthread_t mt[NBLOCKED];
	for (int i = 0; i < NBLOCKED; i++) {
		many[i] = (struct lockarg){ rm, fino, fh, 1, 100 + (uint64_t)i, 5000 + (uint64_t)i };
		pthread_create(&mt[i], NULL, blocked_setlk, &many[i]);
	}
	usleep(300000);
	T(o->getattr(x, C, fino, &st) == 0, "%d blocked setlks do not stall the connection", NBLOCKED);
	int eintr = 0;
	for (int i = 0; i < NBLOCKED; i++) { /* one at a time: the test backend keeps one interrupt */
		o->interrupt(x, C, 5000 + (uint64_t)i);
		pthread_join(mt[i], NULL);
		eintr += many[i].rc == -EINTR;
	}
	T(eintr == NBLOCKED, "interrupts end them all: %d of %d EINTR", eintr, NBLOCKED);
	T(o->getattr(x, C, fino, &st) == 0, "the connection serves after them");

	/* ---- revocation */
	T(o->lookup(x, C, ed.ino, "f", &e2) == 0, "lookup (so the client caches the node)");
	server_inval_inode(srv, (uint32_t)-1, fino, 100, 10);
	T(seen.inodes == 1 && seen.ino == fino, "inval_inode reaches the client's notify and is acked");
	T(seen.off == 0 && seen.len == INT64_MAX, "... dropping all the node's pages, not just the range");
	server_inval_inode(srv, (uint32_t)-1, fino, 0, 0);
	T(seen.inodes == 1, "no second revocation before the client asks about the node again");
	T(o->getattr(x, C, fino, &st) == 0, "getattr (the client may cache the node again)");
	server_inval_inode(srv, 1, fino, 0, 0);
	T(seen.inodes == 1, "no revocation to the change's origin");
	server_inval_inode(srv, (uint32_t)-1, fino, 0, 0);
	T(seen.inodes == 2, "after the getattr, the next change revokes again");
	server_inval_inode(srv, (uint32_t)-1, 999999999, 0, 0);
	T(seen.inodes == 2, "no revocation to a client that never looked the node up");
	server_inval_entry(srv, (uint32_t)-1, FS_ROOT_INO, "d");
	T(seen.entries == 1 && seen.ino == FS_ROOT_INO && !strcmp(seen.name, "d"), "inval_entry on the root");
	server_inval_entry(srv, (uint32_t)-1, FS_ROOT_INO, "d");
	T(seen.entries == 1, "no second revocation of a name before the client looks it up again");
	server_inval_entry(srv, (uint32_t)-1, FS_ROOT_INO, "never-asked");
	T(seen.entries == 1, "no revocation of a name the client never asked about");
	T(o->lookup(x, C, FS_ROOT_INO, "absent", &e2) == -ENOENT, "a lookup that finds nothing");
	server_inval_entry(srv, (uint32_t)-1, FS_ROOT_INO, "absent");
	T(seen.entries == 2 && !strcmp(seen.name, "absent"), "... its absence is revoked when the name is made");

	/* ---- a malformed frame drops that client only */
	int raw = raw_client(r, port, 2, "127.0.0.3:1");
	T(raw >= 0, "a second client (c) connects");
	uint8_t frame[FSP_HDR + 8] = { 0 };
	fsp_encode_hdr(frame, &(struct fsp_hdr){ .version = FSP_VERSION, .op = 999, .len = 8, .id = 1 });
	T(raw >= 0 && write_full(raw, frame, sizeof frame) == 0, "it sends a frame with an unknown op");
	uint8_t one;
	T(raw >= 0 && read(raw, &one, 1) == 0, "the owner drops it");
	drop_wanted = "client c dropped";
	wait_until(dropped, srv, 2000);
	server_last_drop(srv, why, sizeof why);
	T(strstr(why, "client c dropped") && strstr(why, "op 999: no such op"), "with the reason: %s", why);
	if (raw >= 0)
		close(raw);
	T(o->getattr(x, C, fino, &st) == 0, "the other client goes on");

	/* ---- without a secret, only the configured address */
	raw = raw_client(r, port, 2, "127.0.0.1:1"); /* claims c, from a's address */
	T(raw == -ECONNREFUSED, "without a shared-secret, a node-id from another address is refused");
	drop_wanted = "only that address is served";
	wait_until(dropped, srv, 2000);
	server_last_drop(srv, why, sizeof why);
	T(strstr(why, "only that address is served") != NULL, "with the reason: %s", why);
	if (raw >= 0)
		close(raw);

	/* ---- owner epochs (docs/dipolefs.md "Owner epochs") */
	uint32_t e1 = server_epoch(srv), got = 0;
	T(e1 != 0 && remote_epoch(rm) == e1, "the client learned the owner's epoch %08x from its replies", e1);
	raw = raw_client(r, port, 2, "127.0.0.3:1");
	T(raw >= 0 && raw_mkdir(raw, "stale1", e1 ^ 1, &got) == -ESTALE, "a request with another epoch: ESTALE");
	T(o->lookup(x, C, FS_ROOT_INO, "stale1", &e2) == -ENOENT, "... and nothing was done");
	T(stale_refused(srv) == 1, "the owner counts it (status: stale_refused)");
	T(raw >= 0 && raw_mkdir(raw, "fresh1", e1, &got) == 0 && o->lookup(x, C, FS_ROOT_INO, "fresh1", &e2) == 0,
	  "the same request with the owner's epoch is done");
	T(raw >= 0 && raw_mkdir(raw, "fresh2", 0, &got) == 0, "and one with none (a client that knows none yet)");
	T(got == 0, "a client whose HELLO lacks HF_FS_EPOCH gets replies without one (fsproto 3)");
	if (raw >= 0)
		close(raw);

	/* ---- connection loss: in flight fails with ENOTCONN, then reconnects */
	pt_stats.slow_fsync_ms = 800;
	struct lockarg fa = { rm, fino, fh, 1, 0, 0 };
	pthread_create(&t, NULL, slow_fsync, &fa);
	usleep(200000);
	uint64_t rel0 = pt_stats.releases;
	int gone0 = pt_stats.gone;
	server_close(srv);
	pthread_join(t, NULL);
	pt_stats.slow_fsync_ms = 0;
	T(fa.rc == -ENOTCONN, "a request in flight when the owner goes away: ENOTCONN (%d)", fa.rc);
	T(o->getattr(x, C, fino, &st) == -ENOTCONN, "new requests without an owner: ENOTCONN");
	T(pt_stats.releases == rel0 + 1 && pt_stats.forgets > 0, "the owner released the client's handle and lookups");
	T(pt_stats.gone == gone0 + 1 && pt_stats.gone_node == 1, "and called node-gone for node 1");
	T(server_open(&srv, r, a, &pt_ops, NULL, err) == 0, "the owner serves again");
	server_set_node_gone(srv, pt_node_gone, NULL);
	server_set_workers_max(srv, 3); /* the limit case below */
	server_listen(srv, lsn);
	wait_until(connected, rm, 8000);
	T(remote_connected(rm) && o->getattr(x, C, FS_ROOT_INO, &st) == 0, "the client reconnected by itself");
	uint32_t e2nd = server_epoch(srv);
	T(e2nd != e1 && remote_epoch(rm) == e2nd, "the new owner's epoch %08x differs, and the client learned it",
	  e2nd);
	raw = raw_client(r, port, 2, "127.0.0.3:1");
	T(raw >= 0 && raw_mkdir(raw, "replayed", e1, &got) == -ESTALE,
	  "a request made for the earlier owner, replayed to the new one: ESTALE");
	T(o->lookup(x, C, FS_ROOT_INO, "replayed", &e2) == -ENOENT, "... and nothing was written");
	if (raw >= 0)
		close(raw);
	T(o->open(x, C, fino, O_RDONLY, &fh2) == 0 && o->read(x, C, fino, fh2, back, 5, 0) == 5 &&
	  !memcmp(back, big + 4096 - 4096, 0) && o->release(x, fino, fh2) == 0, "open, read, release after it");
	/* at its worker limit (3 here: the client's MOUNTED question, which
	 * waits for a change, one blocked setlk, one reading) the
	 * connection queues a request and reads on, so an INTERRUPT still
	 * gets through; the queued request runs once a worker is free */
	lk = (struct fs_lock){ .start = 0, .end = 99, .type = F_WRLCK, .owner = 1, .node_id = 1, .pid = 5 };
	T(o->open(x, C, fino, O_RDWR, &fh2) == 0 && o->setlk(x, C, fino, fh2, &lk, 0, 1) == 0,
	  "limit case: a lock held");
	struct lockarg lb = { rm, fino, fh2, 1, 0, 7777 }, ga = { rm, fino, 0, 1, 0, 0 };
	pthread_t tb, tg;
	pthread_create(&tb, NULL, blocked_setlk, &lb);
	usleep(200000);
	pthread_create(&tg, NULL, getattr_thr, &ga);
	usleep(200000);
	T(ga.rc == 1, "... a getattr behind the blocked setlk waits for a worker");
	o->interrupt(x, C, 7777);
	pthread_join(tb, NULL);
	pthread_join(tg, NULL);
	T(lb.rc == -EINTR && ga.rc == 0, "... the interrupt was read: setlk EINTR (%d), then the getattr ran (%d)",
	  lb.rc, ga.rc);
	lk.type = F_UNLCK;
	T(o->setlk(x, C, fino, fh2, &lk, 0, 1) == 0 && o->release(x, fino, fh2) == 0, "... unlock, release");

	remote_close(rm);
	wait_until(gone_seen, NULL, 0);
	server_close(srv);
	listener_close(lsn);
	cfg_free(cfg);

	/* ---- shared secret: right and wrong */
	port += 10;
	const struct cfg_resource *r1 = parse(&cfg_s1, port, "shared-secret \"right\"; cram-hmac-alg sha256;");
	const struct cfg_resource *r2 = parse(&cfg_s2, port, "shared-secret \"wrong\"; cram-hmac-alg sha256;");
	a = cfg_find_host(r1, "a");
	if (listener_open(&lsn, a->address, "a", err) || listener_start(lsn)) {
		fprintf(stderr, "listener: %s\n", err);
		return 2;
	}
	server_open(&srv, r1, a, &pt_ops, NULL, err);
	server_listen(srv, lsn);
	rc = remote_open(&rm, r2, cfg_find_host(r2, "b"), cfg_find_host(r2, "a"), err);
	T(rc == -EACCES || rc == -ECONNREFUSED, "a client with the wrong shared-secret is refused: %s", err);
	drop_wanted = "authentication";
	wait_until(dropped, srv, 2000);
	server_last_drop(srv, why, sizeof why);
	T(strstr(why, "authentication") != NULL, "the owner says why: %s", why);
	if (!rc)
		remote_close(rm);
	rc = remote_open(&rm, r1, cfg_find_host(r1, "b"), a, err);
	T(rc == 0, "the right shared-secret is served %s", rc ? err : "");
	T(rc == 0 && remote_ops.getattr(rm, C, FS_ROOT_INO, &st) == 0 && S_ISDIR(st.st_mode), "and works");
	if (!rc)
		remote_close(rm);
	server_close(srv);
	listener_close(lsn);
	cfg_free(cfg_s1);
	cfg_free(cfg_s2);

	pt_fini();
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd)) {
	}
	return failed;
}

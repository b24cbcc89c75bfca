/* cmd_fs — the dipolefs commands: `mkfs` (format the replicated device on
 * the Primary), `mount` and `umount` (ask the resource's daemon to mount or
 * unmount dipolefs, fsmount.c), and `mount.dipole`, the helper mount(8)
 * runs for `mount -t dipole` and fstab lines. docs/dipolefs.md "Using it".
 *
 * Every check that can be made here is made before anything changes, and a
 * refusal names what and where, and what to do: exit 2 for bad arguments,
 * 3 when the state refuses it, 1 when the operation failed.
 */
#include "cli.h"
#include "fsprobe.h"
#include "mounttop.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long a mount waits for the peer at boot (s); systemd's mount timeout
 * (x-systemd.mount-timeout, 90 s by default) is longer. */
#define MOUNT_PEER_WAIT_S 60

/* The value of the first "key":"value" in a status JSON object (our own
 * output: no escapes in what we look up but \" and \\), into out[len].
 * 0, or -ENOENT if absent or null. */
static int json_str(const char *json, const char *key, char *out, size_t len)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":\"", key);
	const char *p = json ? strstr(json, pat) : NULL;
	size_t o = 0;
	if (!p)
		return -ENOENT;
	for (p += strlen(pat); *p && *p != '"'; p++) {
		if (*p == '\\' && p[1])
			p++;
		if (o + 1 < len)
			out[o++] = *p;
	}
	out[o] = 0;
	return 0;
}

/* The status of `res` as JSON into *sb: an exit code (not up: 3, said). */
static int get_status(struct cli *cli, const char *res, struct strbuf *sb)
{
	return cli_request(cli, res, "status-json", EXIT_STATE, sb);
}

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
	fprintf(stderr, "dipole %s: ", cmd);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n  usage: dipole %s\n", cli_find(cmd)->usage);
	return EXIT_USAGE;
}

/* ---------------------------------------------------------------- mkfs */

#define XFS_MIN_BYTES (300ull << 20)

/* What `dipole mkfs` reads from the daemon's status before it writes. */
struct mkfs_target {
	char loop[256];          /* the loop device to format */
	unsigned long long size; /* its size, bytes (0: unknown) */
};

/* The refusals that need the daemon's view: not Primary, mounted, no loop
 * device, too small for XFS.  0 with t filled, or an exit code (said). */
static int mkfs_target(struct cli *cli, const char *res, const char *type, struct mkfs_target *t)
{
	struct strbuf st = { 0 };
	char role[32] = "", mnt[4096] = "";
	int rc = get_status(cli, res, &st);
	if (rc) {
		strbuf_free(&st);
		return rc;
	}
	json_str(st.buf, "role", role, sizeof role);
	json_str(st.buf, "loop", t->loop, sizeof t->loop);
	json_str(st.buf, "mountpoint", mnt, sizeof mnt);
	const char *sz = st.buf ? strstr(st.buf, "\"size_bytes\":") : NULL;
	t->size = sz ? strtoull(sz + 13, NULL, 10) : 0;
	int mounted = st.buf && !strstr(st.buf, "\"fs\":null") && strstr(st.buf, "\"fs\":");
	strbuf_free(&st);
	if (strcmp(role, "Primary")) {
		fprintf(stderr, "dipole mkfs: refused: this node is %s for '%s'; the filesystem is made on the Primary\n"
				"  hint: run it on the Primary, or make this node Primary first: dipole primary %s\n",
			role[0] ? role : "not Primary", res, res);
		return EXIT_STATE;
	}
	if (mounted) {
		fprintf(stderr, "dipole mkfs: refused: '%s' is mounted (dipolefs) at %s\n  hint: umount it first\n", res,
			mnt[0] ? mnt : "?");
		return EXIT_STATE;
	}
	if (!t->loop[0]) {
		fprintf(stderr, "dipole mkfs: refused: '%s' has no loop device on this node (up with --device none)\n"
				"  hint: dipole down %s && dipole up %s\n", res, res, res);
		return EXIT_STATE;
	}
	/* mkfs.xfs (xfsprogs >= 5.19) refuses below 300 MiB: say it before */
	if (!strcmp(type, "xfs") && t->size && t->size < XFS_MIN_BYTES) {
		fprintf(stderr, "dipole mkfs: refused: XFS needs a device of at least 300 MiB; '%s' has %llu MiB; "
				"nothing was written\n  hint: dipole mkfs %s --type ext4\n", res, t->size >> 20, res);
		return EXIT_STATE;
	}
	return EXIT_OK;
}

/* Runs mkfs.TYPE on loop, labelled with the resource's name when it fits.
 * An exit code, said. */
static int mkfs_run(const char *res, const char *type, const char *loop)
{
	/* no discard: on the loop device it is a hole punched on every node,
	 * slow and useless on a fresh device; -F/-f: the checks were ours */
	char prog[32];
	snprintf(prog, sizeof prog, "mkfs.%s", type);
	char *ext4[] = { prog, "-F", "-E", "nodiscard", "-L", (char *)res, (char *)loop, NULL };
	char *xfs[] = { prog, "-f", "-K", "-L", (char *)res, (char *)loop, NULL };
	int is_xfs = !strcmp(type, "xfs");
	char **args = is_xfs ? xfs : ext4;
	char label[16] = "";
	/* XFS labels hold 12 bytes, ext4's 16: a longer name goes unlabelled */
	if (strlen(res) > (is_xfs ? 12u : 16u))
		args[is_xfs ? 4 : 5] = label;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("dipole mkfs: fork");
		return EXIT_FAIL;
	}
	if (pid == 0) {
		execvp(prog, args);
		fprintf(stderr, "dipole mkfs: cannot run %s: %s\n  hint: install %s\n", prog, strerror(errno),
			is_xfs ? "xfsprogs" : "e2fsprogs");
		_exit(127);
	}
	int ws;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(ws) || WEXITSTATUS(ws)) {
		if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 127)
			fprintf(stderr, "dipole mkfs: %s failed (%s %d); the device may hold a partial filesystem\n", prog,
				WIFEXITED(ws) ? "exit" : "signal", WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int cmd_mkfs(struct cli *cli, int argc, char **argv)
{
	const char *res = NULL, *type = "ext4";
	int force = 0, rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--force"))
			force = 1;
		else if (!strcmp(argv[i], "--type") && i + 1 < argc)
			type = argv[++i];
		else if (!strncmp(argv[i], "--type=", 7))
			type = argv[i] + 7;
		else if (!strcmp(argv[i], "--type"))
			return cli_option_error("mkfs", "--type", "a value (ext4 or xfs)", NULL); /* given last */
		else if (argv[i][0] == '-' || res)
			return usage_error("mkfs", "unexpected argument '%s'", argv[i]);
		else
			res = argv[i];
	}
	if (!res)
		return usage_error("mkfs", "%smissing resource name", "");
	if (strcmp(type, "ext4") && strcmp(type, "xfs"))
		return usage_error("mkfs", "unknown filesystem type '%s' (--type ext4 or --type xfs)", type);
	const struct cfg_resource *r;
	struct mkfs_target t = { 0 };
	char found[128], err[256];
	if ((rc = cli_load(cli, 0)) || (rc = cli_resolve(cli, res, &r, NULL)) || (rc = mkfs_target(cli, res, type, &t)))
		return rc;
	if (fsprobe_type(t.loop, found, sizeof found, err)) {
		fprintf(stderr, "dipole mkfs: %s\n", err);
		return EXIT_FAIL;
	}
	if (found[0] && !force) {
		fprintf(stderr, "dipole mkfs: refused: the device of '%s' (%s) already holds %s%s (blkid -p); nothing "
				"was written\n  hint: dipole mkfs %s --force destroys it\n", res, t.loop,
			strncmp(found, "partition", 9) ? "a filesystem: " : "a ", found, res);
		return EXIT_STATE;
	}
	fprintf(stderr, "dipole mkfs: making %s on %s (%s%s)\n", type, t.loop, res, found[0] ? ", replacing " : "");
	if (found[0])
		fprintf(stderr, "  (it held %s)\n", found);
	if ((rc = mkfs_run(res, type, t.loop)))
		return rc;
	fprintf(stderr, "dipole mkfs: %s: %s made on %s, replicated to the peers; mount it with: dipole mount %s DIR\n",
		res, type, t.loop, res);
	return EXIT_OK;
}

/* --------------------------------------------------------- mount options */

/* What -o holds once parsed. */
struct mount_opts {
	struct strbuf pass; /* what goes on to dipolefs (dipolefs_conf.options) */
	int sloppy;         /* mount -s: unknown options are ignored with a warning */
};

/* Passed on to dipolefs: the FUSE mount's VFS flags. */
static const char *const pass_opts[] = { "noatime", "relatime", "nosuid", "nodev", "noexec", NULL };
/* What fstab lines and systemd carry for mount(8)/systemd, not for us. */
static const char *const ignored_opts[] = { "rw", "defaults", "auto", "noauto", "nofail", "_netdev", "user",
					    "nouser", "users", "owner", "group", NULL };

static int in(const char *const *list, const char *w)
{
	for (; *list; list++)
		if (!strcmp(*list, w))
			return 1;
	return 0;
}

/* Parse one -o list into cli (config=, node=, run-dir=) and mo. Keeps
 * pointers into `list`, which must outlive cli. Returns an exit code. */
static int parse_mount_opts(struct cli *cli, char *list, struct mount_opts *mo, const char *who)
{
	char *save = NULL;
	for (char *w = strtok_r(list, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		if (!strncmp(w, "config=", 7) && w[7])
			cli->config_path = w + 7;
		else if (!strncmp(w, "node=", 5) && w[5])
			cli->node = w + 5;
		else if (!strncmp(w, "run-dir=", 8) && w[8])
			cli->run_dir = w + 8;
		else if (in(pass_opts, w))
			strbuf_printf(&mo->pass, "%s%s", mo->pass.len ? "," : "", w);
		else if (!strncmp(w, "cache=", 6) || !strncmp(w, "grace=", 6) || !strncmp(w, "io-timeout=", 11)) {
			char *end, *v = strchr(w, '=') + 1;
			double t = strtod(v, &end), max = w[0] == 'g' ? 3600 : 1e7;
			if (end == v || *end || !(t >= 0 && t <= max)) {
				fprintf(stderr, "%s: mount option '%s': seconds from 0 to %.0f expected\n", who, w, max);
				return EXIT_USAGE;
			}
			strbuf_printf(&mo->pass, "%s%s", mo->pass.len ? "," : "", w);
		}
		else if (in(ignored_opts, w) || !strncmp(w, "x-", 2) || !strncmp(w, "comment=", 8))
			continue;
		else if (!strcmp(w, "config=") || !strcmp(w, "node=") || !strcmp(w, "run-dir=")) {
			fprintf(stderr, "%s: mount option '%s' needs a value (%s)\n", who, w,
				w[0] == 'c' ? "FILE" : w[0] == 'n' ? "NAME" : "DIR");
			return EXIT_USAGE;
		}
		else if (!strcmp(w, "ro")) {
			fprintf(stderr, "%s: option 'ro' refused: dipolefs mounts are read-write on every node for "
					"now (read-only mounts are not implemented)\n", who);
			return EXIT_USAGE;
		} else if (mo->sloppy) {
			fprintf(stderr, "%s: ignoring unknown option '%s' (-s)\n", who, w);
		} else {
			fprintf(stderr, "%s: unknown mount option '%s'\n  known: config=FILE, node=NAME, run-dir=DIR, "
					"noatime, relatime, nosuid, nodev, noexec, cache=SECONDS, grace=SECONDS, io-timeout=SECONDS; "
					"ignored: rw, defaults, _netdev, nofail, auto, noauto, user, nouser, users, "
					"owner, group, comment=, x-*\n", who, w);
			return EXIT_USAGE;
		}
	}
	return EXIT_OK;
}

/* DIR made absolute and canonical into out[PATH_MAX]; checks that it is a
 * directory and not a mount point already. *self: the mount must be made
 * here, not by the daemon (an automount point waiting for this mount).
 * Returns an exit code. */
static int check_mount_point(const char *dir, char *out, const char *who, int *self)
{
	struct stat st;
	*self = 0;
	if (!realpath(dir, out)) {
		if (errno == ENOENT)
			fprintf(stderr, "%s: mount point %s does not exist\n  hint: mkdir -p %s\n", who, dir, dir);
		else
			fprintf(stderr, "%s: mount point %s: %s\n", who, dir, strerror(errno));
		return EXIT_USAGE;
	}
	if (stat(out, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s: mount point %s is not a directory\n", who, dir);
		return EXIT_USAGE;
	}
	/* systemd's automount point (autofs, fstab's x-systemd.automount) is
	 * where the mount goes: only another filesystem makes it busy */
	int mp = mounttop_busy(out);
	if (mp == 1) {
		fprintf(stderr, "%s: mount point %s is busy: something is mounted there already\n"
				"  hint: umount %s, or pick another directory\n", who, out, out);
		return EXIT_STATE;
	}
	/* Run by systemd for an automount's pending request (fstab's
	 * x-systemd.automount): systemd runs mount units in its own process
	 * group, which the automount point lets through, but the daemon is
	 * not in it: mounting there, it would wait for the very mount it is
	 * making (until systemd's mount timeout). So this process mounts. */
	*self = mp == 0 && mounttop_autofs_pgrp(out) == (long)getpgrp();
	return EXIT_OK;
}

/* The FUSE mount at path made here, as libfuse makes it for the daemon
 * (lib/mount.c: fd=, rootmode= of the mount point, the mounter's ids,
 * the kernel options dipolefs asks for, nosuid,nodev, source fsname,
 * type fuse.SUBTYPE; fusefs_start): the open /dev/fuse descriptor, which
 * the daemon then serves, or -1 with the reason said. */
static int self_mount(const char *res, const char *path, const char *who)
{
	char data[256], src[256];
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: cannot open /dev/fuse: %s\n  hint: modprobe fuse\n", who, strerror(errno));
		return -1;
	}
	snprintf(data, sizeof data, "fd=%d,rootmode=%o,user_id=%u,group_id=%u,default_permissions,allow_other", fd,
		 (unsigned)S_IFDIR, (unsigned)getuid(), (unsigned)getgid());
	snprintf(src, sizeof src, "dipole:%s", res);
	if (mount(src, path, "fuse.dipole", MS_NOSUID | MS_NODEV, data)) {
		fprintf(stderr, "%s: cannot mount FUSE at %s: %s\n", who, path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The mount itself, for `dipole mount` and mount.dipole (cli's options set). */
static int do_mount(struct cli *cli, const char *res, const char *dir, struct mount_opts *mo, const char *who,
		    int fake, int verbose)
{
	const struct cfg_resource *r;
	char path[PATH_MAX];
	int rc, self;

	if ((rc = cli_load(cli, 0)) || (rc = cli_resolve(cli, res, &r, NULL)))
		return rc;
	if ((rc = check_mount_point(dir, path, who, &self)))
		return rc;
	if (!cfg_get(r, SECT_NET, "shared-secret"))
		fprintf(stderr, "%s: warning: resource '%s' has no shared-secret (%s:%d): anyone on the replication "
				"link could impersonate a node and read or change the filesystem\n"
				"  hint: net { shared-secret \"...\"; } in the resource file\n", who, res, r->loc.file,
			r->loc.line);
	if (fake)
		return EXIT_OK;
	struct strbuf req = { 0 };
	strbuf_printf(&req, "fs-mount --dir=");
	ctl_arg_encode(&req, path);
	strbuf_printf(&req, " --options=");
	ctl_arg_encode(&req, mo->pass.buf ? mo->pass.buf : "");
	if (self)
		strbuf_printf(&req, " --fuse-fd");
	if (req.len >= CTL_REQ_MAX) {
		strbuf_free(&req);
		fprintf(stderr, "%s: mount point path %s is too long for the control request\n", who, path);
		return EXIT_USAGE;
	}
	char sock[512], msg[512];
	struct strbuf body = { 0 };
	cli_path(cli, res, "ctl", sock, sizeof sock);
	/* the daemon serves the mount made here (fs-mount --fuse-fd) */
	int fuse_fd = self ? self_mount(r->name, path, who) : -1;
	if (self && fuse_fd < 0) {
		strbuf_free(&req);
		return EXIT_FAIL;
	}
	if (self && verbose)
		fprintf(stderr, "%s: %s is an automount point waiting for this mount: mounted FUSE there, for the "
				"daemon to serve\n", who, path);
	/* At boot the mount may come before the peer connected: a node that
	 * has not talked to its peer since it started may not promote itself
	 * to own the filesystem (the daemon's reply starts "startup: "). Wait
	 * for the peer, asking again each second, for MOUNT_PEER_WAIT_S: by
	 * then the handshake has settled who is current and who is Primary. */
	for (int waited = 0;; waited++) {
		rc = ctl_request_fd(sock, req.buf, fuse_fd, msg, &body);
		if (rc != EXIT_STATE || strncmp(msg, "startup: ", 9) || waited >= MOUNT_PEER_WAIT_S ||
		    strcmp(who, "mount.dipole")) /* `dipole mount` by hand: refused at once */
			break;
		if (!waited)
			fprintf(stderr, "%s: %s: waiting up to %d s for the peer: %s\n", who, res, MOUNT_PEER_WAIT_S,
				msg + 9);
		strbuf_free(&body);
		sleep(1);
	}
	strbuf_free(&req);
	/* a mount made may carry a warning for the user (no automatic
	 * failover): shown after the result, whether or not -v */
	char warning[1024] = "";
	if (!rc && body.len)
		snprintf(warning, sizeof warning, "%s", body.buf);
	strbuf_free(&body);
	if (fuse_fd >= 0) {
		/* not served: take the mount away, or it hangs its users */
		if (rc)
			(void)umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
		close(fuse_fd);
	}
	if (rc == -ENOENT || rc == -ECONNREFUSED) {
		cli_not_up(who, res, sock);
		return EXIT_STATE;
	}
	if (rc < 0) {
		fprintf(stderr, "%s: cannot reach the daemon of '%s' at %s: %s\n", who, res, sock, strerror(-rc));
		return EXIT_FAIL;
	}
	if (rc)
		fprintf(stderr, "%s: %s: %s\n", who, res, msg);
	else if (verbose)
		fprintf(stderr, "%s: %s: %s\n", who, res, msg);
	if (warning[0])
		fprintf(stderr, "%s: %s: %s", who, res, warning);
	return rc;
}

int cmd_mount(struct cli *cli, int argc, char **argv)
{
	const char *res = NULL, *dir = NULL;
	struct mount_opts mo = { 0 };
	int rc = EXIT_OK;

	for (int i = 1; i < argc && !rc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			rc = parse_mount_opts(cli, argv[++i], &mo, "dipole mount");
		else if (!strncmp(argv[i], "-o", 2) && argv[i][2])
			rc = parse_mount_opts(cli, argv[i] + 2, &mo, "dipole mount");
		else if (!strcmp(argv[i], "-o"))
			rc = cli_option_error("mount", "-o", "a value (OPTIONS, comma-separated)", NULL); /* given last */
		else if (argv[i][0] == '-' || (res && dir))
			rc = usage_error("mount", "unexpected argument '%s'", argv[i]);
		else if (!res)
			res = argv[i];
		else
			dir = argv[i];
	}
	if (!rc && (!res || !dir))
		rc = usage_error("mount", "missing %s", !res ? "resource name and mount point" : "mount point");
	if (!rc)
		rc = do_mount(cli, res, dir, &mo, "dipole mount", 0, 1);
	strbuf_free(&mo.pass);
	return rc;
}

int mount_helper_main(int argc, char **argv)
{
	static const char who[] = "mount.dipole";
	struct cli cli = { .run_dir = "/run/dipole" };
	struct mount_opts mo = { 0 };
	const char *res = NULL, *dir = NULL;
	char *lists[16];
	int nlists = 0, fake = 0, verbose = 0, o, rc = EXIT_OK;

	/* mount(8): mount.TYPE SPEC DIR [-sfnv] [-N NS] [-o OPTIONS] [-t TYPE];
	 * "-" first: the operands come in order, wherever they are */
	static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	while ((o = getopt_long(argc, argv, "-sfnvho:t:N:", longopts, NULL)) != -1) {
		if (o == 1) {
			if (!res)
				res = optarg;
			else if (!dir)
				dir = optarg;
			else {
				fprintf(stderr, "%s: unexpected argument '%s'\n", who, optarg);
				return EXIT_USAGE;
			}
			continue;
		}
		switch (o) {
		case 's': mo.sloppy = 1; break;
		case 'f': fake = 1; break;
		case 'n': break; /* no /etc/mtab to write */
		case 'v': verbose = 1; break;
		case 't': break; /* dipole, or dipole.SUBTYPE: we are its helper */
		case 'o':
			if (nlists < (int)ARRAY_SIZE(lists))
				lists[nlists++] = optarg;
			break;
		case 'h':
			printf("usage: mount.dipole RES DIR [-sfnv] [-o OPTIONS]\n\n"
			       "The mount(8) helper for 'mount -t dipole RES DIR' and fstab lines\n"
			       "('RES DIR dipole _netdev,nofail 0 0'): mounts dipolefs as\n"
			       "'dipole mount RES DIR' does. Options: config=FILE, node=NAME,\n"
			       "run-dir=DIR (dipole's global options), noatime, relatime, nosuid,\n"
			       "nodev, noexec, cache=SECONDS (how long the kernel may cache names\n"
			       "and attributes, 3600 by default; 0: no caching), grace=SECONDS\n"
			       "(how long the owner keeps a lost client's open files and locks,\n"
			       "0 to 3600, 90 by default), io-timeout=SECONDS (an owner cut off\n"
			       "that long fails its calls with EIO, 30 by default; 0: never); rw,\n"
			       "defaults, _netdev, nofail, auto, noauto, user, nouser, users, owner,\n"
			       "group, comment= and x-* are ignored (they are mount(8)'s and\n"
			       "systemd's). -f checks without mounting; -s ignores unknown options;\n"
			       "-v says what was mounted; -n is accepted (no mtab).\n");
			return EXIT_OK;
		case 'N':
			fprintf(stderr, "%s: -N (another mount namespace) is not supported\n", who);
			return EXIT_USAGE;
		default:
			fprintf(stderr, "%s: usage: mount.dipole RES DIR [-sfnv] [-o OPTIONS]\n", who);
			return EXIT_USAGE;
		}
	}
	if (!res || !dir) {
		fprintf(stderr, "%s: missing %s\n  usage: mount.dipole RES DIR [-sfnv] [-o OPTIONS]\n", who,
			!res ? "resource name and mount point" : "mount point");
		return EXIT_USAGE;
	}
	/* -s applies to every list, wherever it came */
	for (int i = 0; i < nlists && !rc; i++)
		rc = parse_mount_opts(&cli, lists[i], &mo, who);
	if (!rc)
		rc = do_mount(&cli, res, dir, &mo, who, fake, verbose);
	strbuf_free(&mo.pass);
	cfg_free(cli.cfg);
	return rc;
}

/* ---------------------------------------------------------------- umount */

int cmd_umount(struct cli *cli, int argc, char **argv)
{
	const char *dir = NULL;
	char path[PATH_MAX];
	int rc;

	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-' || dir)
			return usage_error("umount", "unexpected argument '%s'", argv[i]);
		dir = argv[i];
	}
	if (!dir)
		return usage_error("umount", "%smissing mount point", "");
	/* a dead FUSE mount cannot be resolved: take the path as given */
	if (!realpath(dir, path)) {
		if (dir[0] == '/')
			snprintf(path, sizeof path, "%s", dir);
		else {
			char cwd[PATH_MAX / 2];
			snprintf(path, sizeof path, "%s/%s", getcwd(cwd, sizeof cwd) ? cwd : ".", dir);
		}
	}
	if ((rc = cli_load(cli, 0)))
		return rc;
	for (int i = 0; i < cli->cfg->nres; i++) {
		const char *res = cli->cfg->res[i].name;
		struct strbuf st = { 0 };
		char mnt[PATH_MAX];
		rc = cli_request(cli, res, "status-json", -1, &st);
		int mine = !rc && !json_str(st.buf, "mountpoint", mnt, sizeof mnt) && !strcmp(mnt, path);
		strbuf_free(&st);
		if (!mine)
			continue;
		struct strbuf req = { 0 };
		strbuf_printf(&req, "fs-umount --dir=");
		ctl_arg_encode(&req, path);
		rc = cli_request(cli, res, req.buf, EXIT_STATE, NULL);
		strbuf_free(&req);
		return rc;
	}
	fprintf(stderr, "dipole umount: %s is not where a resource up on this node is mounted (dipole status shows "
			"the mounts)\n  hint: plain 'umount %s' unmounts any mount\n", path, dir);
	return EXIT_STATE;
}

/* dipole fs move RES NODE: the planned handover (the owner's daemon does
 * it, docs/dipolefs.md "Planned handover"). */
int cmd_fs(struct cli *cli, int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-')
			return cli_unexpected("fs", argv[i]);
	if (argc != 4 || strcmp(argv[1], "move"))
		return usage_error("fs", "%sexpected: fs move RES NODE", "");
	int rc = cli_load(cli, 0);
	if (rc)
		return rc;
	struct strbuf req = { 0 };
	strbuf_printf(&req, "fs-move --node=");
	ctl_arg_encode(&req, argv[3]);
	struct strbuf out = { 0 };
	rc = cli_request(cli, argv[2], req.buf, EXIT_STATE, &out);
	if (out.buf && out.buf[0])
		printf("%s\n", out.buf);
	strbuf_free(&out);
	strbuf_free(&req);
	return rc;
}

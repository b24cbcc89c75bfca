/* fsmount-dir — serve a plain directory through dipolefs's owner path
 * (local.c behind fusefs.c) in the foreground, until SIGTERM or SIGINT:
 * so tests and the POSIX suite can run through dipolefs without the daemon.
 *
 *   fsmount-dir SRC_DIR MOUNTPOINT
 *   fsmount-dir --device DEV [--type ext4|xfs] MOUNTPOINT
 *
 * The second form is the owner's whole path (dipolefs_mount): the kernel
 * filesystem on DEV mounted detached, then served.
 *
 * Prints "ready" on stdout once mounted; exits 0 after a clean unmount,
 * 1 on a usage or mount error (the reason on stderr). */
#include "config.h"
#include "dipolefs.h"
#include "fusefs.h"
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void wait_signal(void)
{
	sigset_t set;
	int sig;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigwait(&set, &sig);
}

static void block_signals(void)
{
	/* before the FUSE threads exist, so they inherit the mask */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static int serve_device(int argc, char **argv)
{
	char err[256] = "";
	struct cfg_resource r = { .name = "fsmount" };
	struct cfg_host me = { .name = "a", .node_id = 1 };
	struct dipolefs_conf c = { .r = &r, .me = &me, .device = argv[2], .options = "" };
	if (argc == 6 && !strcmp(argv[3], "--type"))
		c.fstype = argv[4];
	else if (argc != 4)
		return -1;
	c.mountpoint = argv[argc - 1];
	struct dipolefs *fs;
	block_signals();
	int rc = dipolefs_mount(&fs, NULL, &c, FSR_OWNER, err);
	if (rc) {
		fprintf(stderr, "fsmount-dir: %s\n", err);
		return 1;
	}
	struct strbuf sb = { 0 };
	dipolefs_status_json(fs, &sb);
	printf("ready %s\n", sb.buf);
	fflush(stdout);
	strbuf_free(&sb);
	wait_signal();
	dipolefs_unmount(fs);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "--device")) {
		int rc = serve_device(argc, argv);
		if (rc >= 0)
			return rc;
	}
	char err[256] = "";
	struct local *l;
	struct fusefs *f;

	if (argc != 3) {
		fprintf(stderr, "usage: fsmount-dir SRC_DIR MOUNTPOINT\n"
				"       fsmount-dir --device DEV [--type ext4|xfs] MOUNTPOINT\n");
		return 1;
	}
	int root = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		fprintf(stderr, "fsmount-dir: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	int rc = local_open(&l, root);
	close(root);
	if (rc) {
		fprintf(stderr, "fsmount-dir: %s: %s\n", argv[1], strerror(-rc));
		return 1;
	}
	block_signals();
	rc = fusefs_start(&f, argv[2], "dipole:dir", &local_ops, l, 1, NULL, 0, err);
	if (rc) {
		fprintf(stderr, "fsmount-dir: %s\n", err);
		local_close(l);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	wait_signal();
	fusefs_stop(f);
	local_close(l);
	return 0;
}

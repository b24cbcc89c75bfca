/* fsmount-dir — serve a plain directory through dipolefs's owner path
 * (local.c behind fusefs.c) in the foreground, until SIGTERM or SIGINT:
 * so tests and the POSIX suite can run through dipolefs without the daemon.
 *
 *   fsmount-dir SRC_DIR MOUNTPOINT
 *
 * Prints "ready" on stdout once mounted; exits 0 after a clean unmount,
 * 1 on a usage or mount error (the reason on stderr). */
#include "fusefs.h"
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char err[256] = "";
	struct local *l;
	struct fusefs *f;
	sigset_t set;
	int sig;

	if (argc != 3) {
		fprintf(stderr, "usage: fsmount-dir SRC_DIR MOUNTPOINT\n");
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
	/* block the signals before the FUSE threads exist, so they inherit the mask */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	rc = fusefs_start(&f, argv[2], "dipole:dir", &local_ops, l, 1, err);
	if (rc) {
		fprintf(stderr, "fsmount-dir: %s\n", err);
		local_close(l);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	sigwait(&set, &sig);
	fusefs_stop(f);
	local_close(l);
	return 0;
}

/* fsprobe — see fsprobe.h. */
#include "fsprobe.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* blkid's exit codes (blkid(8)): 0 found something, 2 nothing recognized */
#define BLKID_FOUND   0
#define BLKID_NOTHING 2

int fsprobe_type(const char *dev, char *type, size_t len, char *err)
{
	int pfd[2];
	char out[4096];
	size_t n = 0;

	type[0] = 0;
	err[0] = 0;
	if (access(dev, R_OK) < 0) {
		int e = errno;
		snprintf(err, 256, "cannot read %s: %s", dev, strerror(e));
		return -e;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		int e = errno;
		snprintf(err, 256, "pipe: %s", strerror(e));
		return -e;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(pfd[0]);
		close(pfd[1]);
		snprintf(err, 256, "fork: %s", strerror(e));
		return -e;
	}
	if (pid == 0) {
		dup2(pfd[1], 1);
		int nul = open("/dev/null", O_WRONLY);
		if (nul >= 0)
			dup2(nul, 2);
		signal(SIGPIPE, SIG_DFL);
		execlp("blkid", "blkid", "-p", "-o", "export", "--", dev, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		ssize_t r = read(pfd[0], out + n, sizeof out - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == sizeof out - 1)
			break;
	}
	out[n] = 0;
	close(pfd[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
	if (code == BLKID_NOTHING)
		return 0;
	if (code == 127) {
		snprintf(err, 256, "cannot run blkid to probe %s (util-linux not installed?)", dev);
		return -ENOENT;
	}
	if (code != BLKID_FOUND) {
		snprintf(err, 256, "blkid -p %s failed (exit %d): cannot tell what the device holds", dev, code);
		return -EIO;
	}
	/* KEY=value lines: a filesystem's TYPE wins over a partition table */
	const char *t = NULL, *pt = NULL;
	for (char *line = out, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		if (!strncmp(line, "TYPE=", 5))
			t = line + 5;
		else if (!strncmp(line, "PTTYPE=", 7))
			pt = line + 7;
	}
	if (t)
		snprintf(type, len, "%s", t);
	else if (pt)
		snprintf(type, len, "partition table (%s)", pt);
	else
		snprintf(type, len, "something blkid recognizes but cannot name");
	return 0;
}

int fsprobe_supported(const char *type)
{
	return !strcmp(type, "ext4") || !strcmp(type, "xfs");
}

int fsprobe_is_mountpoint(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	if (!f)
		return -errno;
	while (!found && getline(&line, &cap, f) > 0) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... */
		char *save = NULL, *w = strtok_r(line, " ", &save);
		for (int i = 0; w && i < 4; i++)
			w = strtok_r(NULL, " ", &save);
		if (!w)
			continue;
		str_unescape_octal(w);
		found = !strcmp(w, path);
	}
	free(line);
	fclose(f);
	return found;
}

/* handler — see handler.h. */
#include "handler.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

struct job {
	pid_t pid;
	char name[64];
	char res[64];
};

static int reap(const struct job *j)
{
	int st = 0;
	while (waitpid(j->pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (code)
		log_warn("handler %s for %s exited with %d", j->name, j->res, code);
	else
		log_info("handler %s for %s finished (exit 0)", j->name, j->res);
	return code;
}

static void *reaper(void *arg)
{
	struct job *j = arg;
	reap(j);
	free(j);
	return NULL;
}

static const char *host_part(const char *addr, char *out, size_t len)
{
	/* "IP:PORT" or "[IPv6]:PORT" -> IP */
	const char *c = addr ? strrchr(addr, ':') : NULL;
	size_t n = c ? (size_t)(c - addr) : addr ? strlen(addr) : 0;
	if (addr && addr[0] == '[' && n >= 2) {
		addr++;
		n -= 2;
	}
	snprintf(out, len, "%.*s", (int)n, addr ? addr : "");
	return out;
}

int handler_run(const struct cfg_resource *r, const char *name, const struct cfg_host *me,
		const struct cfg_host *peer, int wait)
{
	const char *cmd = cfg_get(r, SECT_HANDLERS, name);
	if (!cmd || !*cmd)
		return -2;
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 12, sizeof *env);
	char vars[10][320], ip[256];
	if (!env)
		return -1;
	memcpy(env, environ, n * sizeof *env);
	int k = 0;
	snprintf(vars[k++], sizeof vars[0], "DRBD_RESOURCE=%s", r->name);
	snprintf(vars[k++], sizeof vars[0], "DRBD_MINOR=0");
	snprintf(vars[k++], sizeof vars[0], "DIPOLE_HANDLER=%s", name);
	snprintf(vars[k++], sizeof vars[0], "DRBD_MY_ADDRESS=%s", host_part(me->address, ip, sizeof ip));
	snprintf(vars[k++], sizeof vars[0], "DRBD_MY_AF=%s", me->af ? me->af : "ipv4");
	snprintf(vars[k++], sizeof vars[0], "DRBD_MY_NODE_ID=%d", me->node_id);
	if (peer) {
		snprintf(vars[k++], sizeof vars[0], "DRBD_PEERS=%s", peer->name);
		snprintf(vars[k++], sizeof vars[0], "DRBD_PEER_ADDRESS=%s", host_part(peer->address, ip, sizeof ip));
		snprintf(vars[k++], sizeof vars[0], "DRBD_PEER_AF=%s", peer->af ? peer->af : "ipv4");
		snprintf(vars[k++], sizeof vars[0], "DRBD_PEER_NODE_ID=%d", peer->node_id);
	}
	for (int i = 0; i < k; i++)
		env[n + i] = vars[i];
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	struct job j = { 0 };
	snprintf(j.name, sizeof j.name, "%s", name);
	snprintf(j.res, sizeof j.res, "%s", r->name);
	int rc = posix_spawn(&j.pid, "/bin/sh", NULL, NULL, argv, env);
	free(env);
	if (rc) {
		log_err("handler %s for %s ('%s') could not start: %s", name, r->name, cmd, strerror(rc));
		return -1;
	}
	log_info("handler %s for %s started: %s", name, r->name, cmd);
	if (wait)
		return reap(&j);
	struct job *bj = malloc(sizeof *bj);
	pthread_t t;
	if (bj) {
		*bj = j;
		if (pthread_create(&t, NULL, reaper, bj) == 0) {
			pthread_detach(t);
			return 0;
		}
		free(bj);
	}
	reap(&j);
	return 0;
}

/* cmd_ctl — commands that talk to a running daemon: down, primary,
 * secondary, status (events: cmd_events.c). */
#include "cli.h"
#include "ctl.h"
#include "daemon.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Send `req` for resource `res`; prints the body to stdout and any message
 * to stderr. not_up_code: exit code when no daemon runs (-1: print nothing). */
static int request(struct cli *cli, const char *res, const char *req, int not_up_code, struct strbuf *out)
{
	char sock[512], msg[512];
	struct strbuf body = { 0 };

	cli_path(cli, res, "ctl", sock, sizeof sock);
	int rc = ctl_request(sock, req, msg, &body);
	if (rc == -ENOENT || rc == -ECONNREFUSED) {
		if (not_up_code >= 0)
			cli_not_up("dipole", res, sock);
		return not_up_code >= 0 ? not_up_code : EXIT_STATE;
	}
	if (rc < 0) {
		fprintf(stderr, "dipole: cannot reach the daemon of '%s' at %s: %s\n", res, sock, strerror(-rc));
		return EXIT_FAIL;
	}
	if (msg[0])
		fprintf(stderr, "dipole: %s: %s\n", res, msg);
	if (body.buf) {
		if (out)
			strbuf_printf(out, "%s", body.buf);
		else
			fputs(body.buf, stdout);
	}
	strbuf_free(&body);
	return rc;
}

int cli_request(struct cli *cli, const char *res, const char *req, int not_up_code, struct strbuf *out)
{
	return request(cli, res, req, not_up_code, out);
}

static int one_res_cmd(struct cli *cli, int argc, char **argv, const char *allowed_flag, const char **res,
		       int *flag)
{
	*res = NULL;
	*flag = 0;
	for (int i = 1; i < argc; i++) {
		if (allowed_flag && !strcmp(argv[i], allowed_flag))
			*flag = 1;
		else if (argv[i][0] == '-' || *res)
			return cli_unexpected(argv[0], argv[i]);
		else
			*res = argv[i];
	}
	if (!*res) {
		fprintf(stderr, "dipole %s: missing resource name\n  usage: dipole %s\n", argv[0], cli_find(argv[0])->usage);
		return EXIT_USAGE;
	}
	const struct cfg_resource *r;
	int rc = cli_load(cli, 0);
	return rc ? rc : cli_resolve(cli, *res, &r, NULL);
}

/* A command taking only RES whose daemon request has the command's name. */
static int plain_request(struct cli *cli, int argc, char **argv, const char *req)
{
	const char *res;
	int flag, rc;
	if ((rc = one_res_cmd(cli, argc, argv, NULL, &res, &flag)))
		return rc;
	return request(cli, res, req, EXIT_STATE, NULL);
}

int cmd_down(struct cli *cli, int argc, char **argv)
{
	const char *res;
	int force, rc;

	if ((rc = one_res_cmd(cli, argc, argv, "--force", &res, &force)))
		return rc;
	rc = request(cli, res, force ? "down --force" : "down", -1, NULL);
	if (rc == EXIT_STATE && access("/dev/null", F_OK) == 0) {
		char sock[512];
		cli_path(cli, res, "ctl", sock, sizeof sock);
		struct strbuf b = { 0 };
		char msg[512];
		int again = ctl_request(sock, "state", msg, &b);
		strbuf_free(&b);
		if (again == -ENOENT || again == -ECONNREFUSED) {
			/* not running: down is idempotent, but sweep a killed daemon's leftovers */
			daemon_clean_stale(cli->run_dir, res, 0);
			fprintf(stderr, "dipole: resource '%s' is not up\n", res);
			return EXIT_OK;
		}
	}
	return rc;
}

int cmd_primary(struct cli *cli, int argc, char **argv)
{
	const char *res;
	int force, rc;
	if ((rc = one_res_cmd(cli, argc, argv, "--force", &res, &force)))
		return rc;
	return request(cli, res, force ? "primary --force" : "primary", EXIT_STATE, NULL);
}

int cmd_secondary(struct cli *cli, int argc, char **argv)
{
	return plain_request(cli, argc, argv, "secondary");
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
	const char *res = NULL;
	int json = 0, rc, worst = 0, shown = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (argv[i][0] == '-' || res) {
			fprintf(stderr, "dipole status: unexpected argument '%s'\n  usage: dipole status [RES] [--json]\n",
				argv[i]);
			return EXIT_USAGE;
		} else
			res = argv[i];
	}
	if ((rc = cli_load(cli, 0)))
		return rc;
	if (res) {
		const struct cfg_resource *r;
		if ((rc = cli_resolve(cli, res, &r, NULL)))
			return rc;
		return request(cli, res, json ? "status-json" : "status", EXIT_STATE, NULL);
	}
	for (int i = 0; i < cli->cfg->nres; i++) {
		rc = request(cli, cli->cfg->res[i].name, json ? "status-json" : "status", -1, NULL);
		if (rc == EXIT_STATE) {
			if (!json)
				printf("%s: not up\n", cli->cfg->res[i].name);
			continue;
		}
		shown++;
		if (rc > worst)
			worst = rc;
	}
	(void)shown;
	return worst;
}

int cmd_connect(struct cli *cli, int argc, char **argv)
{
	const char *res;
	int discard, rc;
	if ((rc = one_res_cmd(cli, argc, argv, "--discard-my-data", &res, &discard)))
		return rc;
	return request(cli, res, discard ? "connect --discard-my-data" : "connect", EXIT_STATE, NULL);
}

int cmd_verify(struct cli *cli, int argc, char **argv)
{
	const char *res;
	int flag, rc;
	if ((rc = one_res_cmd(cli, argc, argv, NULL, &res, &flag)))
		return rc;
	if ((rc = request(cli, res, "verify", EXIT_STATE, NULL)))
		return rc;
	for (int tick = 0;; tick++) {
		struct strbuf sb = { 0 };
		int running = 0;
		double pct = 0;
		unsigned long long oos = 0, blocks = 0;
		usleep(200 * 1000);
		rc = request(cli, res, "verify-status", EXIT_STATE, &sb);
		if (rc || !sb.buf || sscanf(sb.buf, "%d %lf %llu %llu", &running, &pct, &oos, &blocks) != 4) {
			strbuf_free(&sb);
			fprintf(stderr, "dipole verify: lost the daemon of '%s'\n", res);
			return rc ? rc : EXIT_FAIL;
		}
		strbuf_free(&sb);
		if (running) {
			if (tick % 5 == 0)
				fprintf(stderr, "verify %s: %.1f%% done, %llu block(s) out of sync so far\n", res, pct, oos);
			continue;
		}
		if (pct < 100.0) {
			fprintf(stderr, "verify %s: stopped at %.1f%% (connection lost?); %llu block(s) out of sync so far\n",
				res, pct, oos);
			return EXIT_FAIL;
		}
		printf("verify %s: %llu of %llu blocks out of sync (%llu bytes)\n", res, oos, blocks, oos * 4096ULL);
		if (oos)
			printf("  they are marked; resync them with: dipole disconnect %s && dipole connect %s\n", res, res);
		return EXIT_OK;
	}
}

int cmd_resume_io(struct cli *cli, int argc, char **argv)
{
	return plain_request(cli, argc, argv, "resume-io");
}

int cmd_invalidate(struct cli *cli, int argc, char **argv)
{
	return plain_request(cli, argc, argv, "invalidate");
}

int cmd_resize(struct cli *cli, int argc, char **argv)
{
	return plain_request(cli, argc, argv, "resize");
}

int cmd_disconnect(struct cli *cli, int argc, char **argv)
{
	return plain_request(cli, argc, argv, "disconnect");
}

/* Progress lines at most this often while the wait goes on (s). */
#define WAIT_PROGRESS_S 5

int cmd_wait_connect(struct cli *cli, int argc, char **argv)
{
	const char *res = NULL;
	long limit = -1; /* --timeout S; -1: as long as the daemon waits */
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--timeout")) {
			if (i + 1 == argc || parse_int(argv[i + 1], 0, 1000000, &limit))
				return cli_option_error(argv[0], "--timeout", "seconds from 0 to 1000000",
							i + 1 < argc ? argv[i + 1] : NULL);
			i++;
		} else if (argv[i][0] == '-' || res) {
			fprintf(stderr, "dipole wait-connect: unexpected argument '%s'\n  usage: dipole %s\n", argv[i],
				cli_find(argv[0])->usage);
			return EXIT_USAGE;
		} else {
			res = argv[i];
		}
	}
	if (!res) {
		fprintf(stderr, "dipole wait-connect: missing resource name\n  usage: dipole %s\n",
			cli_find(argv[0])->usage);
		return EXIT_USAGE;
	}
	const struct cfg_resource *r;
	if ((rc = cli_load(cli, 0)) || (rc = cli_resolve(cli, res, &r, NULL)))
		return rc;
	uint64_t t0 = now_ns(), shown = 0;
	char last[512] = "";
	for (;;) {
		struct strbuf b = { 0 };
		rc = request(cli, res, "wait-connect", EXIT_STATE, &b);
		if (rc) {
			strbuf_free(&b);
			return rc;
		}
		char line[512];
		snprintf(line, sizeof line, "%s", b.buf ? b.buf : "");
		strbuf_free(&b);
		line[strcspn(line, "\n")] = 0;
		char *why = strchr(line, ' ');
		why = why ? why + 1 : line;
		if (!strncmp(line, "connected", 9) || !strncmp(line, "alone", 5)) {
			fprintf(stderr, "dipole: %s: %s\n", res, why);
			return EXIT_OK;
		}
		if (strncmp(line, "waiting", 7)) {
			fprintf(stderr, "dipole: %s: %s\n", res, why);
			return EXIT_FAIL;
		}
		uint64_t now = now_ns();
		double waited = (double)(now - t0) / 1e9;
		if (limit >= 0 && waited >= (double)limit) {
			fprintf(stderr, "dipole: %s: gave up after %ld s (--timeout): %s\n", res, limit, why);
			return EXIT_FAIL;
		}
		/* a line when something changed besides the countdown, else every few seconds */
		char kind[512];
		snprintf(kind, sizeof kind, "%.*s", (int)strcspn(why, "0123456789"), why);
		if (strcmp(kind, last) || now - shown >= WAIT_PROGRESS_S * 1000000000ull) {
			fprintf(stderr, "dipole: %s: %s\n", res, why);
			snprintf(last, sizeof last, "%s", kind);
			shown = now;
		}
		struct timespec ts = { 0, 200 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

/* cmd_events — `dipole events [RES] [--once]`: one line per state change.
 *
 * --once asks each daemon for its state line ("state" request) and exits.
 * Otherwise each resource's daemon streams (src/daemon/events.h): its state
 * line when it changes and one "change ..." line per transition, however
 * short-lived, in order; nothing is polled. A resource that is not up prints
 * "down" and is connected to again every 200 ms.
 */
#include "cli.h"
#include "ctl.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_RES 64
#define RETRY_MS 200

struct stream {
	const char *res;
	int fd;                    /* -1: not connected */
	int replied;               /* the reply line was read */
	struct strbuf in;          /* a partial line */
	char *last;                /* last state line printed ("down" too) */
};

static void print_line(const char *res, const char *line)
{
	char ts[40];
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t.tv_sec));
	printf("%s %s %s\n", ts, res, line);
}

/* A state line (or "down"): printed when it differs from the last one. */
static void print_state(struct stream *s, const char *line)
{
	if (s->last && !strcmp(s->last, line))
		return;
	free(s->last);
	s->last = xstrdup(line);
	print_line(s->res, line);
}

static void stream_close(struct stream *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->replied = 0;
	strbuf_free(&s->in);
	print_state(s, "down");
}

/* One line from the daemon. Returns 0, or an exit code to stop with. */
static int stream_line(struct stream *s, char *line)
{
	if (!s->replied) {
		s->replied = 1;
		int code = atoi(line);
		const char *sp = strchr(line, ' ');
		if (code) {
			fprintf(stderr, "dipole: %s: %s\n", s->res, sp ? sp + 1 : "events refused");
			return code;
		}
		return 0;
	}
	if (!strncmp(line, "state ", 6))
		print_state(s, line + 6);
	else if (line[0])
		print_line(s->res, line);
	return 0;
}

static int stream_read(struct stream *s)
{
	char buf[4096];
	ssize_t n = read(s->fd, buf, sizeof buf - 1);
	if (n < 0 && errno == EINTR)
		return 0;
	if (n <= 0) {
		stream_close(s);
		return 0;
	}
	buf[n] = 0;
	strbuf_printf(&s->in, "%s", buf);
	char *start = s->in.buf, *nl;
	int rc = 0;
	while (!rc && (nl = strchr(start, '\n'))) {
		*nl = 0;
		rc = stream_line(s, start);
		start = nl + 1;
	}
	struct strbuf rest = { 0 };
	if (*start)
		strbuf_printf(&rest, "%s", start);
	strbuf_free(&s->in);
	s->in = rest;
	return rc;
}

static int once(struct cli *cli, const char *res)
{
	for (int i = 0; i < cli->cfg->nres; i++) {
		const char *n = cli->cfg->res[i].name;
		char sock[512], msg[512];
		struct strbuf b = { 0 };
		if (res && strcmp(res, n))
			continue;
		cli_path(cli, n, "ctl", sock, sizeof sock);
		int rc = ctl_request(sock, "state", msg, &b);
		if (rc < 0 || rc == EXIT_STATE) {
			strbuf_free(&b);
			strbuf_printf(&b, "down\n");
		} else if (msg[0])
			fprintf(stderr, "dipole: %s: %s\n", n, msg);
		if (b.buf) {
			b.buf[strcspn(b.buf, "\n")] = 0;
			print_line(n, b.buf);
		}
		strbuf_free(&b);
	}
	return EXIT_OK;
}

int cmd_events(struct cli *cli, int argc, char **argv)
{
	const char *res = NULL;
	int only_once = 0, rc;
	struct stream st[MAX_RES];
	unsigned n = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--once"))
			only_once = 1;
		else if (argv[i][0] == '-' || res)
			return cli_unexpected("events", argv[i]);
		else
			res = argv[i];
	}
	const struct cfg_resource *r;
	if ((rc = cli_load(cli, 0)) || (res && (rc = cli_resolve(cli, res, &r, NULL))))
		return rc;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (only_once)
		return once(cli, res);
	for (int i = 0; i < cli->cfg->nres && n < MAX_RES; i++)
		if (!res || !strcmp(res, cli->cfg->res[i].name))
			st[n++] = (struct stream){ .res = cli->cfg->res[i].name, .fd = -1 };
	for (rc = 0; !rc;) {
		struct pollfd pf[MAX_RES];
		int down = 0;
		for (unsigned i = 0; i < n; i++) {
			if (st[i].fd < 0) {
				char sock[512];
				cli_path(cli, st[i].res, "ctl", sock, sizeof sock);
				int fd = ctl_open(sock, "events");
				if (fd < 0)
					print_state(&st[i], "down");
				st[i].fd = fd < 0 ? -1 : fd;
			}
			down |= st[i].fd < 0;
			pf[i] = (struct pollfd){ st[i].fd, POLLIN, 0 };
		}
		if (n == 0)
			break;
		if (poll(pf, n, down ? RETRY_MS : -1) < 0 && errno != EINTR)
			break;
		for (unsigned i = 0; i < n && !rc; i++)
			if (st[i].fd >= 0 && pf[i].revents)
				rc = stream_read(&st[i]);
	}
	for (unsigned i = 0; i < n; i++) {
		if (st[i].fd >= 0)
			close(st[i].fd);
		strbuf_free(&st[i].in);
		free(st[i].last);
	}
	return rc;
}

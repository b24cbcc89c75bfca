/* doctor — `dipole doctor [RES] [--json]`: the checks and their report.
 * See doctor.h and docs/doctor.md. */
#include "doctor.h"
#include "confq.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

/* clocks further apart than this get a warning */
#define CLOCK_SKEW_NS (1000ull * 1000 * 1000)

static const char *const sev_names[] = { "info", "warning", "error" };

void dr_add(struct doctor *dr, enum dr_sev sev, const char *check, const char *res, const struct cfg_loc *loc,
	    const char *fix, const char *fmt, ...)
{
	dr->f = xrealloc(dr->f, sizeof *dr->f * (size_t)(dr->n + 1));
	struct dr_finding *f = &dr->f[dr->n++];
	memset(f, 0, sizeof *f);
	f->sev = sev;
	snprintf(f->check, sizeof f->check, "%s", check);
	snprintf(f->res, sizeof f->res, "%s", res ? res : "");
	if (loc && loc->file)
		snprintf(f->where, sizeof f->where, "%s:%d:%d", loc->file, loc->line, loc->col);
	snprintf(f->fix, sizeof f->fix, "%s", fix ? fix : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof f->msg, fmt, ap);
	va_end(ap);
	dr->nerr += sev == DR_ERROR;
	dr->nwarn += sev == DR_WARNING;
}

/* ----------------------------------------------------------- checks */

/* This host's on-section, or NULL after saying which names there are:
 * an error when the resource was named (or no resource has this host),
 * else the resource is another nodes' and only noted. */
static const struct cfg_host *check_host(struct doctor *dr, const struct cfg_resource *r, int must)
{
	const struct cfg_host *h = cfg_find_host(r, dr->cli->node);
	if (!h && !must) {
		dr_add(dr, DR_INFO, "not-this-host", r->name, &r->loc, NULL,
		       "resource '%s' has no 'on %s' section: it runs on other nodes, not checked here", r->name,
		       dr->cli->node);
		return NULL;
	}
	if (h) {
		dr_add(dr, DR_INFO, "host", r->name, &h->loc, NULL, "this host '%s' is 'on %s' (node-id %d)", dr->cli->node,
		       h->name, h->node_id);
		return h;
	}
	char names[512] = "", fix[700];
	for (int i = 0; i < r->nhosts; i++) {
		size_t n = strlen(names);
		snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", r->hosts[i].name);
	}
	snprintf(fix, sizeof fix, "name this host like its on-section (hostnamectl set-hostname NAME), or pass "
		 "--node NAME (one of: %s)", names);
	dr_add(dr, DR_ERROR, "host-unknown", r->name, &r->loc, fix,
	       "this host's name '%s' matches no 'on' section of resource '%s' (hosts: %s); nothing else about "
	       "this node was checked", dr->cli->node, r->name, names);
	return NULL;
}

/* Two disks and nothing else to decide who goes on when they lose each other. */
static void check_split_brain_risk(struct doctor *dr, const struct cfg_resource *r)
{
	const char *fen = cfg_get(r, SECT_NET, "fencing");
	int fencing = fen && strcmp(fen, "dont-care") && cfg_get(r, SECT_HANDLERS, "fence-peer");
	if (cfg_disk_hosts(r) != 2 || r->nhosts > 2 || r->quorum != Q_OFF || fencing) {
		if (fen && strcmp(fen, "dont-care") && !cfg_get(r, SECT_HANDLERS, "fence-peer") && r->quorum == Q_OFF)
			dr_add(dr, DR_WARNING, "fencing-no-handler", r->name, &r->loc,
			       "add handlers { fence-peer \"/path/to/fence-script\"; }",
			       "fencing %s is set but no fence-peer handler: a Primary that loses its peer freezes its "
			       "I/O until 'dipole resume-io'", fen);
		return;
	}
	int two = cfg_get_bool(r, SECT_NET, "allow-two-primaries");
	dr_add(dr, DR_WARNING, "split-brain-risk", r->name, &r->loc,
	       "add a third node as a diskless tiebreaker (on NODE { address IP:PORT; disk none; } and options { "
	       "quorum majority; }), or set net { fencing resource-only; } (or resource-and-stonith) with a fence-peer handler "
	       "(docs/quorum.md, docs/fencing.md)",
	       "two nodes with no tiebreaker (quorum) and no fencing: when the link between them fails while both "
	       "run, each goes on alone%s, and after it heals the after-sb policies discard one side's writes "
	       "(split brain)", two ? " and, with allow-two-primaries, both keep writing" : "");
}

static void hex8(const uint8_t *d, char *out)
{
	for (int i = 0; i < 8; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void check_clock(struct doctor *dr, const struct cfg_resource *r, const struct cfg_host *o,
			const struct confq_answer *a)
{
	uint64_t off = a->clock_offset_ns < 0 ? (uint64_t)-a->clock_offset_ns : (uint64_t)a->clock_offset_ns;
	double s = (double)off / 1e9, err = (double)a->clock_error_ns / 1e9;
	const char *dir = a->clock_offset_ns < 0 ? "behind" : "ahead of";
	if (off > CLOCK_SKEW_NS + a->clock_error_ns)
		dr_add(dr, DR_WARNING, "clock-skew", r->name, &o->loc,
		       "run a time service on every node (apt-get install systemd-timesyncd, or chrony)",
		       "%s's clock is %.3f s %s this node's (within %.3f s): logs disagree and generation times "
		       "mislead", o->name, s, dir, err);
	else
		dr_add(dr, DR_INFO, "clock", r->name, &o->loc, NULL, "%s's clock is within %.3f s of this node's",
		       o->name, s + err);
}

static void check_peer(struct doctor *dr, const struct cfg_resource *r, const struct cfg_host *h,
		       const struct cfg_host *o, const uint8_t *mine)
{
	struct confq_answer a;
	char why[256], hm[20], ho[20];
	int rc = confq_ask(r, h, o, &a, why);
	if (rc == -EACCES) {
		dr_add(dr, DR_ERROR, "config-differs", r->name, &o->loc,
		       "copy the same resource file to every node and restart the daemons",
		       "%s refused this node's authentication: the shared-secret differs (%s)", o->name, why);
		return;
	}
	if (rc == -EPROTO && !strstr(why, "channel")) {
		dr_add(dr, DR_ERROR, "peer-refused", r->name, &o->loc,
		       "compare 'dipole dump' on both nodes: resource names and node-ids must agree",
		       "%s's daemon refused the query: %s", o->name, why);
		return;
	}
	if (rc == -ETIMEDOUT || rc == -EHOSTUNREACH || rc == -ENETUNREACH) {
		dr_add(dr, DR_WARNING, "peer-unreachable", r->name, &o->loc,
		       "check the network path between the nodes (ip route, ping, a firewall dropping the port)",
		       "%s cannot be reached (%s): the nodes cannot replicate; its configuration and clock were not "
		       "checked", o->name, why);
		return;
	}
	if (rc) {
		dr_add(dr, DR_INFO, "peer-not-checked", r->name, &o->loc, NULL,
		       "%s's daemon does not answer (%s): its configuration and clock were not checked", o->name, why);
		return;
	}
	hex8(mine, hm);
	hex8(a.digest, ho);
	if (memcmp(mine, a.digest, CONFQ_DIGEST))
		dr_add(dr, DR_ERROR, "config-differs", r->name, &o->loc,
		       "copy the same resource file to every node ('dipole dump RES' on each shows the difference), "
		       "then restart the daemon that runs the old one",
		       "%s runs a different configuration of '%s' (digest %s, this node's %s)", o->name, r->name, ho, hm);
	else
		dr_add(dr, DR_INFO, "config-same", r->name, &o->loc, NULL,
		       "%s runs the same configuration of '%s' (digest %s)", o->name, r->name, hm);
	check_clock(dr, r, o, &a);
}

static void check_resource(struct doctor *dr, const struct cfg_resource *r, int must)
{
	const struct cfg_host *h = check_host(dr, r, must);
	if (!h)
		return;
	dr->daemon_pid = dr_daemon_pid(dr->cli, r->name);
	if (dr->daemon_pid)
		dr_add(dr, DR_INFO, "daemon", r->name, NULL, NULL, "the resource is up on this node (daemon pid %d)",
		       (int)dr->daemon_pid);
	dr_check_addresses(dr, r, h);
	dr_check_disk(dr, r, h);
	dr_check_kernel(dr, r, h);
	check_split_brain_risk(dr, r);
	uint8_t mine[CONFQ_DIGEST];
	if (confq_digest(r, mine))
		return;
	for (int i = 0; i < r->nhosts; i++)
		if (&r->hosts[i] != h)
			check_peer(dr, r, h, &r->hosts[i], mine);
}

/* The parser's message: warnings, then the error and its hint lines. */
static void config_error(struct doctor *dr, char *err)
{
	char *last = err, *hint = NULL;
	for (char *l = err; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (*l != ' ')
			last = l;
		else if (!hint && l > last)
			hint = l;
	char msg[600], fix[600] = "correct the configuration at the place named";
	snprintf(msg, sizeof msg, "%.*s", (int)strcspn(last, "\n"), last);
	if (hint && hint > last) {
		hint += strspn(hint, " ");
		if (!strncmp(hint, "hint: ", 6))
			hint += 6;
		snprintf(fix, sizeof fix, "%.*s", (int)strcspn(hint, "\n"), hint);
	}
	dr_add(dr, DR_ERROR, "config-parse", "", NULL, fix, "the configuration does not parse: %s", msg);
}

/* ----------------------------------------------------------- report */

static void print_text(const struct doctor *dr)
{
	for (int sev = DR_ERROR; sev >= DR_INFO; sev--)
		for (int i = 0; i < dr->n; i++) {
			const struct dr_finding *f = &dr->f[i];
			if ((int)f->sev != sev)
				continue;
			printf("%-7s %s%s%s: %s", sev_names[sev], f->res, f->res[0] ? " " : "", f->check, f->msg);
			if (f->where[0])
				printf(" (%s)", f->where);
			printf("\n");
			if (f->fix[0])
				printf("        fix: %s\n", f->fix);
		}
	printf("doctor: %d error%s, %d warning%s on node %s\n", dr->nerr, dr->nerr == 1 ? "" : "s", dr->nwarn,
	       dr->nwarn == 1 ? "" : "s", dr->cli->node ? dr->cli->node : "?");
}

static void print_json(const struct doctor *dr, int code)
{
	struct strbuf sb = { 0 };
	strbuf_printf(&sb, "{\"node\":");
	strbuf_json_str(&sb, dr->cli->node ? dr->cli->node : "");
	strbuf_printf(&sb, ",\"errors\":%d,\"warnings\":%d,\"exit\":%d,\"findings\":[", dr->nerr, dr->nwarn, code);
	for (int i = 0; i < dr->n; i++) {
		const struct dr_finding *f = &dr->f[i];
		strbuf_printf(&sb, "%s{\"severity\":\"%s\",\"check\":", i ? "," : "", sev_names[f->sev]);
		strbuf_json_str(&sb, f->check);
		strbuf_printf(&sb, ",\"resource\":");
		strbuf_json_str(&sb, f->res);
		strbuf_printf(&sb, ",\"where\":");
		strbuf_json_str(&sb, f->where);
		strbuf_printf(&sb, ",\"message\":");
		strbuf_json_str(&sb, f->msg);
		strbuf_printf(&sb, ",\"fix\":");
		strbuf_json_str(&sb, f->fix);
		strbuf_printf(&sb, "}");
	}
	strbuf_printf(&sb, "]}\n");
	fputs(sb.buf, stdout);
	strbuf_free(&sb);
}

/* ---------------------------------------------------------- command */

/* Parse and check the configuration as a whole: 0, or EXIT_USAGE when the
 * resources cannot be checked at all. */
static int check_config(struct doctor *dr, const char *res)
{
	char err[CFG_ERR_MAX];
	struct cli *cli = dr->cli;
	if (!cli->node) { /* as cli_load: the host name (named even when the
			   * configuration does not parse) */
		struct utsname u;
		uname(&u);
		snprintf(cli->node_buf, sizeof cli->node_buf, "%s", u.nodename);
		cli->node = cli->node_buf;
	}
	if (cli_parse(cli, err)) {
		config_error(dr, err);
		return EXIT_USAGE;
	}
	for (int i = 0; i < cli->cfg->nwarnings; i++)
		dr_add(dr, DR_WARNING, "config-warning", "", NULL, "see docs/config.md; remove or correct the option",
		       "%s", cli->cfg->warnings[i]);
	if (res && !cfg_find_res(cli->cfg, res)) {
		dr_add(dr, DR_ERROR, "resource-unknown", res, NULL, "name one of the configuration's resources",
		       "no resource '%s' in the configuration (%s)", res, cli->cfg->nfiles ? cli->cfg->files[0] : "?");
		return EXIT_USAGE;
	}
	dr_add(dr, DR_INFO, "config", "", NULL, NULL, "the configuration parses (%s, %d resource%s)",
	       cli->cfg->nfiles ? cli->cfg->files[0] : "?", cli->cfg->nres, cli->cfg->nres == 1 ? "" : "s");
	return EXIT_OK;
}

int cmd_doctor(struct cli *cli, int argc, char **argv)
{
	struct doctor dr = { .cli = cli };
	const char *res = NULL;
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (argv[i][0] == '-' || res) {
			fprintf(stderr, "dipole doctor: unexpected argument '%s'\n  usage: dipole %s\n", argv[i],
				cli_find("doctor")->usage);
			return EXIT_USAGE;
		} else
			res = argv[i];
	}
	signal(SIGPIPE, SIG_IGN); /* a peer that refuses a query closes on us */
	int code = check_config(&dr, res);
	/* without RES: the resources this host is in, or an error if none */
	int here = 0;
	for (int i = 0; !code && i < cli->cfg->nres; i++)
		here += cfg_find_host(&cli->cfg->res[i], cli->node) != NULL;
	for (int i = 0; !code && i < cli->cfg->nres; i++)
		if (!res || !strcmp(res, cli->cfg->res[i].name))
			check_resource(&dr, &cli->cfg->res[i], res || !here);
	if (!code && dr.nerr)
		code = EXIT_FAIL;
	if (json)
		print_json(&dr, code);
	else
		print_text(&dr);
	free(dr.f);
	return code;
}

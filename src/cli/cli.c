/* cli — see cli.h. */
#include "cli.h"
#include "daemon.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

void cli_cmd_usage(const struct cli_cmd *cmd, int to_stderr)
{
	FILE *f = to_stderr ? stderr : stdout;
	fprintf(f, "usage: dipole [global options] %s\n\n%s\n", cmd->usage, cmd->help);
}

int cli_unexpected(const char *cmd, const char *arg)
{
	fprintf(stderr, "dipole %s: unexpected argument '%s'\n  usage: dipole %s\n", cmd, arg, cli_find(cmd)->usage);
	return EXIT_USAGE;
}

int cli_option_error(const char *cmd, const char *opt, const char *what, const char *got)
{
	fprintf(stderr, "dipole %s: %s needs %s", cmd, opt, what);
	if (got)
		fprintf(stderr, " (got '%s')", got);
	fprintf(stderr, "\n  usage: dipole %s\n", cli_find(cmd)->usage);
	return EXIT_USAGE;
}

int cli_want_help(const struct cli_cmd *cmd, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			cli_cmd_usage(cmd, 0);
			return 1;
		}
	}
	return 0;
}

int cli_parse(struct cli *cli, char *err)
{
	if (cli->config_path)
		return cfg_parse_file(cli->config_path, &cli->cfg, err);
	if (access("/etc/dipole/dipole.conf", F_OK) == 0)
		return cfg_parse_file("/etc/dipole/dipole.conf", &cli->cfg, err);
	static const char inc[] = "include \"/etc/drbd.d/*.res\";\n";
	int rc = cfg_parse_buffer("(default: /etc/drbd.d/*.res)", inc, sizeof inc - 1, 1, &cli->cfg, err);
	if (!rc && cli->cfg->nres == 0) {
		snprintf(err, CFG_ERR_MAX, "no configuration: neither /etc/dipole/dipole.conf nor "
			 "/etc/drbd.d/*.res exists\n  hint: pass one with -c FILE");
		cfg_free(cli->cfg);
		cli->cfg = NULL;
		return -ENOENT;
	}
	return rc;
}

int cli_load(struct cli *cli, int warn)
{
	char err[CFG_ERR_MAX];

	if (cli->cfg)
		return EXIT_OK;
	if (cli_parse(cli, err)) {
		/* err holds the warnings collected before the error, then the
		 * error; hint lines are indented and printed as they are */
		for (char *line = err, *nl; line && *line; line = nl ? nl + 1 : NULL) {
			nl = strchr(line, '\n');
			fprintf(stderr, "%s%.*s\n", line[0] == ' ' ? "" : "dipole: ",
				nl ? (int)(nl - line) : (int)strlen(line), line);
		}
		return EXIT_USAGE;
	}
	if (warn)
		for (int i = 0; i < cli->cfg->nwarnings; i++)
			fprintf(stderr, "dipole: %s\n", cli->cfg->warnings[i]);
	if (!cli->node) {
		struct utsname u;
		uname(&u);
		snprintf(cli->node_buf, sizeof cli->node_buf, "%s", u.nodename);
		cli->node = cli->node_buf;
	}
	return EXIT_OK;
}

int cli_resolve(struct cli *cli, const char *name, const struct cfg_resource **res, const struct cfg_host **host)
{
	const struct cfg_resource *r = cfg_find_res(cli->cfg, name);
	if (!r) {
		struct strbuf sb = { 0 };
		strbuf_printf(&sb, "%s", "");
		for (int i = 0; i < cli->cfg->nres; i++)
			strbuf_printf(&sb, "%s%s", i ? ", " : "", cli->cfg->res[i].name);
		fprintf(stderr, "dipole: no resource '%s' in the configuration (%s)\n  resources known: %s\n",
			name, cli->cfg->nfiles ? cli->cfg->files[0] : "?", sb.buf[0] ? sb.buf : "(none)");
		strbuf_free(&sb);
		return EXIT_USAGE;
	}
	*res = r;
	if (!host)
		return EXIT_OK;
	*host = cfg_find_host(r, cli->node);
	if (!*host) {
		struct strbuf sb = { 0 };
		strbuf_printf(&sb, "%s", "");
		for (int i = 0; i < r->nhosts; i++)
			strbuf_printf(&sb, "%s%s", i ? ", " : "", r->hosts[i].name);
		fprintf(stderr, "dipole: this node '%s' has no 'on %s' section in resource '%s' (%s:%d)\n"
				"  hosts known: %s\n  hint: pass --node NAME, or fix the host name\n",
			cli->node, cli->node, r->name, r->loc.file, r->loc.line, sb.buf);
		strbuf_free(&sb);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

void cli_not_up(const char *who, const char *res, const char *sock)
{
	fprintf(stderr, "%s: resource '%s' is not up on this node (no daemon at %s)\n  hint: dipole up %s\n"
			"  hint: a daemon started with --run-dir DIR is reached with the same --run-dir DIR\n",
		who, res, sock, res);
}

void cli_path(const struct cli *cli, const char *res, const char *suffix, char *out, size_t len)
{
	daemon_path(cli->run_dir, res, suffix, out, len);
}


/* cli — shared context of the `dipole` subcommands: global options, the
 * loaded configuration, and helpers that print a user-facing error and return
 * an exit code. Exit codes (contract): 0 ok, 1 operation failed, 2 usage or
 * configuration error, 3 refused by state.
 */
#ifndef DIPOLE_CLI_H
#define DIPOLE_CLI_H

#include "config.h"
#include "ctl.h"

struct cli {
	const char *config_path; /* NULL: default search */
	const char *node;        /* NULL: hostname */
	const char *run_dir;
	struct cfg *cfg;
	char node_buf[256];
};

struct cli_cmd {
	const char *name;
	int (*fn)(struct cli *cli, int argc, char **argv);
	const char *usage;
	const char *help;
};

/* Parse the configuration (-c FILE, else /etc/dipole/dipole.conf, else
 * the .res files of /etc/drbd.d) into cli->cfg without printing: 0, or <0 with the
 * message (warnings, error, hint) in err[CFG_ERR_MAX]. */
int cli_parse(struct cli *cli, char *err);
/* Load the configuration (printing warnings if `warn`). Returns exit code. */
int cli_load(struct cli *cli, int warn);
/* Resolve resource `name` and this node's host section. Returns exit code. */
int cli_resolve(struct cli *cli, const char *name, const struct cfg_resource **res, const struct cfg_host **host);
/* Standard handling of "-h/--help" for a subcommand: returns 1 if help was printed. */
/* An argument cmd does not take: says "dipole CMD: unexpected argument
 * 'ARG'" and CMD's usage on stderr. Returns EXIT_USAGE. */
int cli_unexpected(const char *cmd, const char *arg);
/* An option without its value, or with a bad one (got, or NULL): says
 * "dipole CMD: OPT needs WHAT (got 'GOT')" and CMD's usage on stderr.
 * Returns EXIT_USAGE. */
int cli_option_error(const char *cmd, const char *opt, const char *what, const char *got);
int cli_want_help(const struct cli_cmd *cmd, int argc, char **argv);
const struct cli_cmd *cli_find(const char *name);
void cli_cmd_usage(const struct cli_cmd *cmd, int to_stderr);

/* Send control request `req` to the daemon of `res`: prints the daemon's
 * message to stderr and its body to stdout (or appends it to out). Returns
 * the daemon's exit code; when no daemon runs, prints so (with the hint to
 * `up` it) and returns not_up_code, or if that is -1 returns EXIT_STATE
 * quietly. */
int cli_request(struct cli *cli, const char *res, const char *req, int not_up_code, struct strbuf *out);

/* "WHO: resource 'RES' is not up on this node (no daemon at SOCK)" and the
 * hints (`up` it; a daemon started with another --run-dir is found with
 * that one) on stderr. */
void cli_not_up(const char *who, const char *res, const char *sock);

/* Paths of a resource's runtime files. */
void cli_path(const struct cli *cli, const char *res, const char *suffix, char *out, size_t len);

/* subcommands */
int cmd_create_md(struct cli *cli, int argc, char **argv);
int cmd_dump_md(struct cli *cli, int argc, char **argv);
int cmd_dump(struct cli *cli, int argc, char **argv);
int cmd_up(struct cli *cli, int argc, char **argv);
int cmd_down(struct cli *cli, int argc, char **argv);
int cmd_primary(struct cli *cli, int argc, char **argv);
int cmd_secondary(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_events(struct cli *cli, int argc, char **argv);
int cmd_connect(struct cli *cli, int argc, char **argv);
int cmd_invalidate(struct cli *cli, int argc, char **argv);
int cmd_resize(struct cli *cli, int argc, char **argv);
int cmd_verify(struct cli *cli, int argc, char **argv);
int cmd_resume_io(struct cli *cli, int argc, char **argv);
int cmd_disconnect(struct cli *cli, int argc, char **argv);
int cmd_wait_connect(struct cli *cli, int argc, char **argv);
int cmd_mkfs(struct cli *cli, int argc, char **argv);
int cmd_mount(struct cli *cli, int argc, char **argv);
int cmd_umount(struct cli *cli, int argc, char **argv);
int cmd_fs(struct cli *cli, int argc, char **argv);
int cmd_doctor(struct cli *cli, int argc, char **argv);
/* `mount.dipole RES DIR [-sfnv] [-o OPTIONS]`: the same binary called by
 * mount(8) as its helper for type dipole (argv[0] named mount.dipole). */
int mount_helper_main(int argc, char **argv);
/* `dipole-fstab-generator DIR [EARLY LATE]`: the systemd generator that
 * orders fstab's dipole mounts after dipole@RES.service (the same binary,
 * argv[0] named dipole-fstab-generator). Returns an exit code. */
int fstab_generator_main(int argc, char **argv);
/* The .mount unit name of absolute path `path` into out[len], as
 * `systemd-escape --path --suffix=mount`. 0, or -EINVAL, -ENAMETOOLONG. */
int generator_mount_unit(const char *path, char *out, size_t len);

#endif

/* Tests of the control request parser (src/daemon/ctl.c): a request names a
 * command of the table and only options that command lists; anything else is
 * refused with a message naming it. */
#include <errno.h>
#include "unit.h"
#include "ctl.h"

static int served(void *ctx, int fd, const struct ctl_req *req)
{
	(void)ctx, (void)fd, (void)req;
	return 0;
}

static const char *const force_opts[] = { "--force", NULL };
static const char *const mount_opts[] = { "--dir=", "--options=", NULL };
static const struct ctl_cmd table[] = {
	{ "status", NULL, served },
	{ "status-json", NULL, served },
	{ "primary", force_opts, served },
	{ "fs-mount", mount_opts, served },
};
#define N (sizeof table / sizeof table[0])

TEST(known_command_without_options)
{
	struct ctl_req r;
	const struct ctl_cmd *c;
	char msg[256];
	CHECK(ctl_parse("status", table, N, &r, &c, msg, sizeof msg) == 0);
	CHECK(c == &table[0]);
	CHECK(r.nopts == 0 && !strcmp(r.cmd, "status"));
	/* a whole word, not a prefix */
	CHECK(ctl_parse("status-json", table, N, &r, &c, msg, sizeof msg) == 0);
	CHECK(c == &table[1]);
}

TEST(allowed_option)
{
	struct ctl_req r;
	const struct ctl_cmd *c;
	char msg[256];
	CHECK(ctl_parse("primary --force", table, N, &r, &c, msg, sizeof msg) == 0);
	CHECK(c == &table[2]);
	CHECK(ctl_req_has(&r, "--force"));
	CHECK(!ctl_req_has(&r, "--discard-my-data"));
	CHECK(ctl_parse("primary", table, N, &r, &c, msg, sizeof msg) == 0);
	CHECK(!ctl_req_has(&r, "--force"));
}

TEST(unknown_command_refused)
{
	struct ctl_req r;
	const struct ctl_cmd *c = table;
	char msg[256];
	CHECK(ctl_parse("promote --force", table, N, &r, &c, msg, sizeof msg) == -EINVAL);
	CHECK(c == NULL);
	CHECK_STR_HAS(msg, "unknown control request 'promote --force'");
	/* the old prefix match is gone: "primaryx" is not "primary" */
	CHECK(ctl_parse("primaryx", table, N, &r, &c, msg, sizeof msg) == -EINVAL);
	CHECK(ctl_parse("", table, N, &r, &c, msg, sizeof msg) == -EINVAL);
	CHECK_STR_HAS(msg, "unknown control request ''");
}

TEST(unknown_option_refused_by_name)
{
	struct ctl_req r;
	const struct ctl_cmd *c;
	char msg[256];
	CHECK(ctl_parse("status --force", table, N, &r, &c, msg, sizeof msg) == -EINVAL);
	CHECK(c == NULL);
	CHECK_STR_HAS(msg, "unknown option '--force' for control request 'status'");
	CHECK(ctl_parse("primary --force --forcex", table, N, &r, &c, msg, sizeof msg) == -EINVAL);
	CHECK_STR_HAS(msg, "'--forcex'");
	/* an option is never found inside another word */
	CHECK(ctl_parse("primary x--force", table, N, &r, &c, msg, sizeof msg) == -EINVAL);
	CHECK_STR_HAS(msg, "unexpected argument 'x--force'");
}

TEST(too_many_options)
{
	struct ctl_req r;
	const struct ctl_cmd *c;
	char msg[256], line[200] = "primary";
	for (int i = 0; i <= CTL_OPTS_MAX; i++)
		strcat(line, " --force");
	CHECK(ctl_parse(line, table, N, &r, &c, msg, sizeof msg) == -E2BIG);
	CHECK(c == NULL);
}

TEST(value_options_round_trip_encoded)
{
	struct ctl_req r;
	const struct ctl_cmd *c;
	char msg[256], out[64];
	struct strbuf sb = { 0 };
	strbuf_printf(&sb, "fs-mount --dir=");
	ctl_arg_encode(&sb, "/mnt/my swarm%\t\xc3\xa9");
	strbuf_printf(&sb, " --options=");
	ctl_arg_encode(&sb, "");
	CHECK(strchr(sb.buf + 9, ' ') == strstr(sb.buf, " --options="));
	CHECK(ctl_parse(sb.buf, table, N, &r, &c, msg, sizeof msg) == 0);
	CHECK(c == &table[3]);
	CHECK(ctl_req_value(&r, "--dir=", out, sizeof out) == 0);
	CHECK(!strcmp(out, "/mnt/my swarm%\t\xc3\xa9"));
	CHECK(ctl_req_value(&r, "--options=", out, sizeof out) == 0 && out[0] == 0);
	CHECK(ctl_req_value(&r, "--device=", out, sizeof out) == -ENOENT);
	CHECK(ctl_req_value(&r, "--dir=", out, 4) == -ENAMETOOLONG);
	strbuf_free(&sb);
	/* a value option is no prefix of a word the command does not list */
	CHECK(ctl_parse("fs-mount --dirx=/a", table, N, &r, &c, msg, sizeof msg) == -EINVAL);
	CHECK(ctl_parse("fs-mount --dir=%2", table, N, &r, &c, msg, sizeof msg) == 0);
	CHECK(ctl_req_value(&r, "--dir=", out, sizeof out) == -EINVAL);
	CHECK(ctl_parse("fs-mount --dir=%00", table, N, &r, &c, msg, sizeof msg) == 0);
	CHECK(ctl_req_value(&r, "--dir=", out, sizeof out) == -EINVAL);
	/* a value option takes nothing without its '=' */
	CHECK(ctl_parse("primary --force=1", table, N, &r, &c, msg, sizeof msg) == -EINVAL);
}

int main(void)
{
	return unit_main("ctl");
}

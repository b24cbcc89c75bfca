/* Unit tests for the DRBD-syntax configuration parser (src/config.c). */
#include "unit.h"
#include "config.h"

#include <unistd.h>
#include <sys/stat.h>

static char err[CFG_ERR_MAX];

static struct cfg *parse(const char *text)
{
	struct cfg *c = NULL;
	if (cfg_parse_buffer("t.res", text, strlen(text), 0, &c, err))
		return NULL;
	return c;
}

static int has_warning(const struct cfg *c, const char *sub)
{
	for (int i = 0; i < c->nwarnings; i++)
		if (strstr(c->warnings[i], sub))
			return 1;
	return 0;
}

TEST(swarm_res_from_guide_parses_unchanged)
{
	struct cfg *c = NULL;
	int rc = cfg_parse_file(FIXTURES "/swarm.res", &c, err);
	CHECK(rc == 0);
	if (rc) {
		fprintf(stderr, "    %s\n", err);
		return;
	}
	const struct cfg_resource *r = cfg_find_res(c, "swarm");
	CHECK(r && r->nhosts == 2);
	const struct cfg_host *h1 = cfg_find_host(r, "docker1"), *h2 = cfg_find_host(r, "docker2");
	CHECK(h1 && h2);
	CHECK(!strcmp(h1->address, "192.168.1.1:7790"));
	CHECK(!strcmp(h2->address, "192.168.1.2:7790"));
	CHECK(!strcmp(h1->disk, "/dev/docker/swarm"));
	CHECK(!strcmp(h1->device, "/dev/drbd0")); /* inherited from the resource */
	CHECK(!strcmp(h2->meta_disk, "internal"));
	CHECK(h1->node_id == 0 && h2->node_id == 1);
	CHECK(!strcmp(cfg_get(r, SECT_NET, "protocol"), "C"));
	CHECK(cfg_get_bool(r, SECT_NET, "allow-two-primaries"));
	CHECK(!strcmp(cfg_get(r, SECT_NET, "after-sb-0pri"), "discard-zero-changes"));
	CHECK(!strcmp(cfg_get(r, SECT_STARTUP, "become-primary-on"), "both"));
	/* implemented options are not warned about: the guide's file is all implemented */
	CHECK(!has_warning(c, "'protocol'") && !has_warning(c, "'allow-two-primaries'") &&
	      !has_warning(c, "'after-sb-0pri'"));
	cfg_free(c);
}

TEST(whitespace_comments_and_line_endings_never_matter)
{
	const char *a = "resource r{on a{address 10.0.0.1:1;disk /d;}on b{address 10.0.0.2:1;disk /d;}net{protocol A;}}";
	const char *b = "# comment\r\n\r\nresource   r   {   # trailing comment \r\n"
			"\ton a {\r\n address\t10.0.0.1:1 ;   \r\n disk /d;  }\r\n"
			"  on b { address 10.0.0.2:1; disk   /d; }   \n"
			" net {\n\n protocol A;    # the protocol\n }\n}   \n   ";
	struct cfg *ca = parse(a), *cb = parse(b);
	CHECK(ca && cb);
	if (!ca || !cb) {
		fprintf(stderr, "    %s\n", err);
		cfg_free(ca);
		cfg_free(cb);
		return;
	}
	char *da = cfg_dump(ca, NULL), *db = cfg_dump(cb, NULL);
	/* the dumps differ only in the recorded line numbers of the resource */
	CHECK_STR_HAS(da, "protocol A;");
	CHECK(!strcmp(strchr(da, '\n'), strchr(db, '\n')));
	free(da);
	free(db);
	cfg_free(ca);
	cfg_free(cb);
}

TEST(missing_semicolon_names_line_and_column)
{
	CHECK(parse("resource r {\n  net {\n    protocol C\n    allow-two-primaries;\n  }\n}\n") == NULL);
	CHECK_STR_HAS(err, "t.res:4:5: expected ';' after 'protocol C', found 'allow-two-primaries'");
	CHECK_STR_HAS(err, "hint:");
}

TEST(unclosed_brace_reports_opening_line)
{
	CHECK(parse("resource r {\n on a { address 1.2.3.4:5; disk /x;\n") == NULL);
	CHECK_STR_HAS(err, "expected '}' to close 'on' opened at line 2, found end of file");
}

TEST(stray_closing_brace)
{
	CHECK(parse("resource r { on a { address 1.2.3.4:5; disk /x; } }\n}\n") == NULL);
	CHECK_STR_HAS(err, "t.res:2:1: expected a section (global, common, resource) or include, found '}'");
}

TEST(bad_enum_value_lists_choices)
{
	CHECK(parse("resource r { net { protocol D; } on a { address 1.2.3.4:5; disk /x; } }") == NULL);
	CHECK_STR_HAS(err, "t.res:1:29: expected a valid value for 'protocol', found 'D'");
	CHECK_STR_HAS(err, "valid values: A B C");
}

TEST(bad_numbers_sizes_and_addresses)
{
	CHECK(parse("resource r { net { timeout ten; } on a { address 1.2.3.4:5; disk /x; } }") == NULL);
	CHECK_STR_HAS(err, "expected a number for 'timeout', found 'ten'");
	CHECK(parse("resource r { disk { resync-rate fast; } on a { address 1.2.3.4:5; disk /x; } }") == NULL);
	CHECK_STR_HAS(err, "expected a size for 'resync-rate'");
	CHECK(parse("resource r { on a { address 1.2.3.4; disk /x; } }") == NULL);
	CHECK_STR_HAS(err, "expected IP:PORT");
	CHECK(parse("resource r { on a { address 1.2.3.4:70000; disk /x; } }") == NULL);
	CHECK_STR_HAS(err, "port 1-65535");
	CHECK(parse("resource r { on a { address host.example:7788; disk /x; } }") == NULL);
	CHECK_STR_HAS(err, "expected an ipv4 address, found 'host.example'");
	struct cfg *c = parse("resource r { on a { address ipv6 [fd00::1]:7788; disk /x; } }");
	CHECK(c && !strcmp(c->res[0].hosts[0].af, "ipv6"));
	cfg_free(c);
}

TEST(unknown_options_warn_with_location)
{
	struct cfg *c = parse("resource r {\n net { frobnicate 3; }\n on a { address 1.2.3.4:5; disk /x; }\n}");
	CHECK(c != NULL);
	if (c) {
		CHECK(has_warning(c, "t.res:2:8: warning: unknown option 'frobnicate' in net section ignored"));
		cfg_free(c);
	}
	/* options dipole knows but does not act on yet are reported with their location */
	c = parse("resource r {\n net {\n  data-integrity-alg sha1; }\n on a { address 1.2.3.4:5; disk /x; }\n}");
	CHECK(c != NULL);
	if (c) {
		CHECK(has_warning(c, "t.res:3:3: warning: option 'data-integrity-alg'"));
		cfg_free(c);
	}
}

TEST(common_is_inherited_and_overridden)
{
	struct cfg *c = parse("common { net { protocol A; timeout 60; } disk { on-io-error detach; } }\n"
			      "resource r { net { protocol C; } on a { address 1.2.3.4:5; disk /x; } }\n"
			      "resource s { on a { address 1.2.3.4:6; disk /y; } }\n");
	CHECK(c != NULL);
	if (!c) {
		fprintf(stderr, "    %s\n", err);
		return;
	}
	const struct cfg_resource *r = cfg_find_res(c, "r"), *s = cfg_find_res(c, "s");
	CHECK(!strcmp(cfg_get(r, SECT_NET, "protocol"), "C"));
	CHECK(!strcmp(cfg_get(r, SECT_NET, "timeout"), "60"));
	CHECK(!strcmp(cfg_get(s, SECT_NET, "protocol"), "A"));
	CHECK(!strcmp(cfg_get(s, SECT_DISK, "on-io-error"), "detach"));
	cfg_free(c);
}

TEST(node_ids_explicit_and_colliding)
{
	struct cfg *c = parse("resource r { on a { address 1.2.3.4:5; disk /x; node-id 7; }"
			      " on b { address 1.2.3.5:5; disk /x; node-id 3; } }");
	CHECK(c && c->res[0].hosts[0].node_id == 7 && c->res[0].hosts[1].node_id == 3);
	cfg_free(c);
	CHECK(parse("resource r { on a { address 1.2.3.4:5; disk /x; node-id 1; }\n"
		    " on b { address 1.2.3.5:5; disk /x; node-id 1; } }") == NULL);
	CHECK_STR_HAS(err, "t.res:2:2: node-id 1 of 'b' collides with host 'a'");
}

TEST(quorum_mesh_and_tiebreaker)
{
	const char *three = " on a { address 1.2.3.4:5; disk /x; } on b { address 1.2.3.5:5; disk /y; }"
			    " on c { address 1.2.3.6:5; disk none; }";
	char buf[512];
	snprintf(buf, sizeof buf, "resource r { options { quorum majority; on-no-quorum io-error; }%s"
		 " connection-mesh { hosts a b c; } }", three);
	struct cfg *c = parse(buf);
	CHECK(c != NULL);
	if (c) {
		const struct cfg_resource *r = &c->res[0];
		CHECK(r->quorum == Q_MAJORITY && r->quorum_votes == 2 && r->quorum_io_error && r->has_mesh);
		CHECK(r->hosts[2].diskless && !r->hosts[0].diskless && cfg_disk_hosts(r) == 2);
		cfg_free(c);
	}
	snprintf(buf, sizeof buf, "resource r { options { quorum all; }%s }", three);
	c = parse(buf);
	CHECK(c && c->res[0].quorum_votes == 3 && !c->res[0].quorum_io_error && !c->res[0].has_mesh);
	cfg_free(c);
	snprintf(buf, sizeof buf, "resource r { options { quorum 4; }%s }", three);
	CHECK(parse(buf) == NULL);
	CHECK_STR_HAS(err, "t.res:1:24: quorum 4 can never be met");
	snprintf(buf, sizeof buf, "resource r {%s\n connection-mesh { hosts a b x; } }", three);
	CHECK(parse(buf) == NULL);
	CHECK_STR_HAS(err, "t.res:2:30: connection-mesh names unknown host 'x'");
	snprintf(buf, sizeof buf, "resource r {%s\n connection-mesh { hosts a c; } }", three);
	CHECK(parse(buf) == NULL);
	CHECK_STR_HAS(err, "connection-mesh leaves out host 'b'");
}

TEST(missing_disk_and_address)
{
	CHECK(parse("resource r { on a { address 1.2.3.4:5; } }") == NULL);
	CHECK_STR_HAS(err, "'on a' has no backing disk");
	CHECK(parse("resource r { on a { disk /x; } }") == NULL);
	CHECK_STR_HAS(err, "'on a' has no address");
	CHECK(parse("resource r { }") == NULL);
	CHECK_STR_HAS(err, "has no 'on HOST' section");
}

TEST(external_meta_disk_refused)
{
	CHECK(parse("resource r { meta-disk /dev/sdb1; on a { address 1.2.3.4:5; disk /x; } }") == NULL);
	CHECK_STR_HAS(err, "external metadata is not supported");
}

TEST(strings_and_device_forms)
{
	struct cfg *c = parse("resource r { device minor 3; handlers { split-brain \"/usr/lib/notify.sh root\"; }\n"
			      " on a { address 1.2.3.4:5; disk \"/dev/my disk\"; } }");
	CHECK(c != NULL);
	if (!c)
		return;
	CHECK(!strcmp(c->res[0].hosts[0].device, "/dev/drbd3"));
	CHECK(!strcmp(c->res[0].hosts[0].disk, "/dev/my disk"));
	CHECK(!strcmp(cfg_get(&c->res[0], SECT_HANDLERS, "split-brain"), "/usr/lib/notify.sh root"));
	char *d = cfg_dump(c, "r");
	CHECK_STR_HAS(d, "split-brain \"/usr/lib/notify.sh root\";");
	CHECK_STR_HAS(d, "disk \"/dev/my disk\";");
	/* the dump parses back to the same dump */
	struct cfg *c2 = parse(d);
	CHECK(c2 != NULL);
	if (c2) {
		char *d2 = cfg_dump(c2, "r");
		CHECK(!strcmp(strchr(d, '\n'), strchr(d2, '\n')));
		free(d2);
		cfg_free(c2);
	}
	free(d);
	cfg_free(c);
	CHECK(parse("resource r { on a { address 1.2.3.4:5; disk \"/x; } }") == NULL);
	CHECK_STR_HAS(err, "expected '\"' to end the string");
}

TEST(include_glob_relative_to_file)
{
	char dir[] = "/tmp/dipole-cfgtest-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char p[256];
	snprintf(p, sizeof p, "%s/drbd.d", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/drbd.d/a.res", dir);
	FILE *f = fopen(p, "w");
	fputs("resource a { on n { address 1.2.3.4:5; disk /x; } }\n", f);
	fclose(f);
	snprintf(p, sizeof p, "%s/drbd.d/b.res", dir);
	f = fopen(p, "w");
	fputs("resource b { on n { address 1.2.3.4:6; disk /y; } }\n", f);
	fclose(f);
	snprintf(p, sizeof p, "%s/drbd.conf", dir);
	f = fopen(p, "w");
	fputs("global { usage-count no; }\ninclude \"drbd.d/*.res\";\n", f);
	fclose(f);
	struct cfg *c = NULL;
	CHECK(cfg_parse_file(p, &c, err) == 0);
	CHECK(c && c->nres == 2 && cfg_find_res(c, "a") && cfg_find_res(c, "b"));
	cfg_free(c);
	/* an error inside an included file names that file */
	snprintf(p, sizeof p, "%s/drbd.d/b.res", dir);
	f = fopen(p, "w");
	fputs("resource b {\n on n { address 1.2.3.4:6 disk /y; } }\n", f);
	fclose(f);
	snprintf(p, sizeof p, "%s/drbd.conf", dir);
	CHECK(cfg_parse_file(p, &c, err) != 0);
	CHECK_STR_HAS(err, "drbd.d/b.res:2:");
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

TEST(include_refused_in_buffers)
{
	CHECK(parse("include \"/etc/*\";") == NULL);
	CHECK_STR_HAS(err, "include is not allowed");
}

TEST(duplicate_resources_and_hosts)
{
	CHECK(parse("resource r { on a { address 1.2.3.4:5; disk /x; } }\nresource r { on a { address 1.2.3.4:5; disk /x; } }") == NULL);
	CHECK_STR_HAS(err, "resource 'r' defined twice");
	CHECK(parse("resource r { on a { address 1.2.3.4:5; disk /x; } on a { address 1.2.3.4:6; disk /x; } }") == NULL);
	CHECK_STR_HAS(err, "host 'a' appears twice");
}

TEST(binary_garbage_is_an_error_not_a_crash)
{
	static const char junk[] = "resource \0\1\2 { }";
	struct cfg *c = NULL;
	CHECK(cfg_parse_buffer("j", junk, sizeof junk - 1, 0, &c, err) != 0);
	CHECK_STR_HAS(err, "NUL byte");
}

TEST(dump_roundtrip_quotes_what_needs_it)
{
	/* found by the fuzzer: an empty disk path was accepted and dumped unquoted */
	CHECK(parse("resource r { on a { address 1.2.3.4:5; disk \"\"; } }") == NULL);
	CHECK_STR_HAS(err, "expected a disk path, found an empty string");
	struct cfg *c = parse("resource r { net { shared-secret \"two words\"; } startup { become-primary-on a b; }\n"
			      " on a { address 1.2.3.4:5; disk /x; } }");
	CHECK(c != NULL);
	if (!c)
		return;
	char *d = cfg_dump(c, NULL);
	CHECK_STR_HAS(d, "shared-secret \"two words\";");
	CHECK_STR_HAS(d, "become-primary-on a b;");
	struct cfg *c2 = parse(d);
	CHECK(c2 && !strcmp(cfg_get(&c2->res[0], SECT_NET, "shared-secret"), "two words"));
	cfg_free(c2);
	free(d);
	cfg_free(c);
	/* found by the fuzzer: an empty handler string dumped as "split-brain ;" */
	c = parse("resource r { handlers { split-brain \"\"; } net { allow-two-primaries; }\n"
		  " on a { address 1.2.3.4:5; disk /x; } }");
	CHECK(c != NULL);
	if (!c)
		return;
	d = cfg_dump(c, NULL);
	CHECK_STR_HAS(d, "split-brain \"\";");
	CHECK_STR_HAS(d, "allow-two-primaries;");
	free(d);
	cfg_free(c);
	/* found by the fuzzer: "\n" in a string dumped as a raw newline */
	c = parse("resource r { handlers { split-brain \"a\\nb\\tc\"; }\n on a { address 1.2.3.4:5; disk /x; } }");
	CHECK(c && !strcmp(cfg_get(&c->res[0], SECT_HANDLERS, "split-brain"), "a\nb\tc"));
	if (!c)
		return;
	d = cfg_dump(c, NULL);
	CHECK_STR_HAS(d, "split-brain \"a\\nb\\tc\";");
	c2 = parse(d);
	CHECK(c2 && !strcmp(cfg_get(&c2->res[0], SECT_HANDLERS, "split-brain"), "a\nb\tc"));
	cfg_free(c2);
	free(d);
	cfg_free(c);
}

int main(void)
{
	return unit_main("config");
}

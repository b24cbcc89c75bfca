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

TEST(resource_dump_is_the_same_for_the_same_meaning)
{
	/* what peers compare (docs/doctor.md): layout and comments do not
	 * count, an option does */
	const char *a = "resource r{on a{address 10.0.0.1:1;disk /d;}on b{address 10.0.0.2:1;disk /d;}}";
	const char *b = "# the same\nresource r {\n  on a { address 10.0.0.1:1; disk /d; }\n"
			"  on b { address 10.0.0.2:1; disk /d; } # b\n}\n";
	const char *c = "resource r{net{protocol A;}on a{address 10.0.0.1:1;disk /d;}on b{address 10.0.0.2:1;disk /d;}}";
	struct cfg *ca = parse(a), *cb = parse(b), *cc = parse(c);
	CHECK(ca && cb && cc);
	if (!ca || !cb || !cc)
		return;
	char *da = cfg_dump_resource(&ca->res[0]), *db = cfg_dump_resource(&cb->res[0]), *dc = cfg_dump_resource(&cc->res[0]);
	CHECK(!strcmp(da, db));
	CHECK(strcmp(da, dc) != 0);
	CHECK(strstr(da, "t.res") == NULL); /* no location in it */
	free(da);
	free(db);
	free(dc);
	cfg_free(ca);
	cfg_free(cb);
	cfg_free(cc);
}

TEST(metrics_address_in_the_on_section)
{
	struct cfg *c = parse("resource r {\n  on a { address 10.0.0.1:1; disk /d; metrics-address 127.0.0.1:9942; }\n"
			      "  on b { address 10.0.0.2:1; disk /d; metrics-address [::1]:9942; }\n}\n");
	CHECK(c != NULL);
	if (!c) {
		fprintf(stderr, "    %s\n", err);
		return;
	}
	const struct cfg_resource *r = cfg_find_res(c, "r");
	CHECK(!strcmp(cfg_find_host(r, "a")->metrics_address, "127.0.0.1:9942"));
	CHECK(!strcmp(cfg_find_host(r, "b")->metrics_address, "[::1]:9942"));
	CHECK(!has_warning(c, "metrics-address"));
	char *d = cfg_dump(c, NULL);
	CHECK_STR_HAS(d, "metrics-address 127.0.0.1:9942;");
	free(d);
	cfg_free(c);
	CHECK(parse("resource r {\n  on a { address 10.0.0.1:1; disk /d;\n    metrics-address 127.0.0.1; }\n}\n") == NULL);
	CHECK_STR_HAS(err, "t.res:3:21: expected IP:PORT, found '127.0.0.1'");
	CHECK(parse("resource r {\n  on a { address 10.0.0.1:1; disk /d; metrics-address 127.0.0.1:0; }\n}\n") == NULL);
	CHECK_STR_HAS(err, "t.res:2:");
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

/* names of a node set, as dipolefs logs the mounted nodes */
TEST(host_names_of_a_node_set)
{
	struct cfg *c = parse("resource r { on a { address 1.2.3.4:5; disk /x; node-id 7; }"
			      " on b { address 1.2.3.5:5; disk /x; node-id 3; } }");
	char buf[16];
	CHECK(c);
	cfg_host_names(&c->res[0], (1ULL << 7) | (1ULL << 3) | (1ULL << 5), buf, sizeof buf);
	CHECK(!strcmp(buf, " a b"));
	cfg_host_names(&c->res[0], 0, buf, sizeof buf);
	CHECK(!strcmp(buf, ""));
	cfg_host_names(&c->res[0], 1ULL << 3, buf, 3); /* cut to fit */
	CHECK(!strcmp(buf, " b"));
	cfg_host_names(&c->res[0], (1ULL << 7) | (1ULL << 3), buf, 3);
	CHECK(!strcmp(buf, " a"));
	cfg_free(c);
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

/* Every shape DRBD 8.4 and 9 accept: parsed, and the normalized dump shows
 * what it became. Each dump must also parse back to the same dump. */
#define H2 "on a { address 10.0.0.1:7790; disk /a; } on b { address 10.0.0.2:7790; disk /b; }"
static const struct {
	const char *what, *text, *dump_has, *warn_has; /* warn_has NULL: no check */
} shapes[] = {
	{ "volume inside on", "resource r { on a { volume 0 { device minor 1; disk /a; meta-disk internal; } "
	  "address 10.0.0.1:1; } on b { volume 0 { disk /b; } address 10.0.0.2:1; } }",
	  "        volume 0 {\n            disk /a;\n            device /dev/drbd1;", NULL },
	{ "volume at resource level", "resource r { volume 3 { device /dev/drbd3; disk /d; } "
	  "on a { address 10.0.0.1:1; } on b { address 10.0.0.2:1; } }", "volume 3 {\n            disk /d;", NULL },
	{ "volume with disk options", "resource r { on a { volume 0 { disk /a; disk { resync-rate 10M; } } "
	  "address 10.0.0.1:1; } on b { address 10.0.0.2:1; disk /b; } }", "resync-rate 10M;", NULL },
	{ "connection with addresses and net", "resource r { on a { disk /a; } on b { disk /b; } connection { "
	  "host a address 10.0.0.1:7000; host b address ipv4 10.0.0.2:7000; net { protocol A; } } }",
	  "address ipv4 10.0.0.2:7000;", NULL },
	{ "named connection with port only", "resource r { " H2 " connection c1 { host a port 7001; host b port 7002; } }",
	  "connection c1 {\n        host a address ipv4 10.0.0.1:7001;", NULL },
	{ "connection paths", "resource r { on a { disk /a; } on b { disk /b; } connection { path { "
	  "host a address 10.0.0.1:7003; host b address 10.0.0.2:7003; } } }", "address ipv4 10.0.0.2:7003;", NULL },
	{ "connection-mesh with net", "resource r { " H2 " connection-mesh { hosts a b; net { protocol B; } } }",
	  "connection-mesh {\n        hosts a b;\n        net {\n            protocol B;", NULL },
	{ "floating", "resource r { floating 10.0.0.1:7790 { disk /a; } floating ipv6 [fd00::2]:7790 { disk /b; } }",
	  "floating ipv6 [fd00::2]:7790 {", NULL },
	{ "skip anywhere", "skip { garbage here; } resource r { skip net { protocol A; } " H2 " net { skip { x; } "
	  "protocol B; } }", "protocol B;", NULL },
	{ "protocol at resource level", "resource r { protocol A; " H2 " }", "protocol A;", "DRBD 8.3 spelling" },
	{ "protocol in common", "common { protocol B; } resource r { " H2 " }", "protocol B;", "deprecated" },
	{ "syncer", "common { syncer { rate 33M; verify-alg sha1; al-extents 257; csums-alg md5; } } resource r { " H2 " }",
	  "resync-rate 33M;", "'syncer { rate }'" },
	{ "syncer verify-alg", "resource r { syncer { verify-alg sha1; } " H2 " }", "verify-alg sha1;", NULL },
	{ "flexible-meta-disk", "resource r { flexible-meta-disk internal; " H2 " }", "meta-disk internal;",
	  "flexible-meta-disk" },
	{ "8.3 negated flags", "resource r { disk { no-disk-flushes; no-md-flushes; } " H2 " }", "disk-flushes no;",
	  "DRBD 8.3 spelling of 'disk-flushes no'" },
	{ "8.3 outdate-peer", "resource r { handlers { outdate-peer \"/bin/true\"; } " H2 " }", "fence-peer /bin/true;",
	  NULL },
	{ "rate without unit is KiB", "resource r { disk { resync-rate 4096; } " H2 " }", "resync-rate 4M;", NULL },
	{ "rate in sectors", "resource r { disk { c-max-rate 2048s; } " H2 " }", "c-max-rate 1M;", NULL },
	{ "size without unit is sectors", "resource r { disk { size 3s; } " H2 " }", "size 3s;", NULL },
	{ "size with unit", "resource r { disk { size 2G; } " H2 " }", "size 2G;", NULL },
	{ "buffer without unit is bytes", "resource r { net { sndbuf-size 1000; } " H2 " }", "sndbuf-size 1000;", NULL },
	{ "lower-case units", "resource r { disk { c-fill-target 1m; } " H2 " }", "c-fill-target 1M;", NULL },
	{ "kernel digest rmd160", "resource r { net { csums-alg rmd160; } " H2 " }", "csums-alg ripemd160;", NULL },
	{ "kernel digest crc32", "resource r { net { verify-alg crc32; } " H2 " }", "verify-alg crc32c;", NULL },
	{ "hmac sha512", "resource r { net { cram-hmac-alg sha512; shared-secret s; } " H2 " }", "cram-hmac-alg sha512;",
	  NULL },
	{ "digest case", "resource r { net { verify-alg SHA256; } " H2 " }", "verify-alg sha256;", NULL },
};

TEST(every_drbd_shape_parses_and_dumps_normalized)
{
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		struct cfg *c = parse(shapes[i].text);
		if (!c) {
			fprintf(stderr, "    %s: %s\n", shapes[i].what, err);
			CHECK(!"shape refused");
			continue;
		}
		char *d = cfg_dump(c, NULL);
		if (!strstr(d, shapes[i].dump_has))
			fprintf(stderr, "    %s: dump lacks \"%s\":\n%s", shapes[i].what, shapes[i].dump_has, d);
		CHECK_STR_HAS(d, shapes[i].dump_has);
		if (shapes[i].warn_has && !has_warning(c, shapes[i].warn_has)) {
			fprintf(stderr, "    %s: no warning \"%s\"\n", shapes[i].what, shapes[i].warn_has);
			CHECK(!"deprecation note missing");
		}
		struct cfg *c2 = parse(d);
		CHECK(c2 != NULL);
		if (c2) {
			char *d2 = cfg_dump(c2, NULL);
			CHECK(!strcmp(strchr(d, '\n'), strchr(d2, '\n')));
			free(d2);
		}
		cfg_free(c2);
		free(d);
		cfg_free(c);
	}
}

/* Refused shapes and values: the error names file:line:col and a phrase. */
static const struct {
	const char *what, *text, *where, *phrase;
} refused[] = {
	{ "two volumes", "resource r {\n on a { volume 0 { disk /a; }\n volume 1 { disk /c; } address 10.0.0.1:1; }\n"
	  " on b { address 10.0.0.2:1; disk /b; } }", "t.res:3:2:", "more than one volume" },
	{ "volumes differ per host", "resource r {\n on a { volume 0 { disk /a; } address 10.0.0.1:1; }\n"
	  " on b { volume 1 { disk /b; } address 10.0.0.2:1; } }", "t.res:3:2:", "more than one volume" },
	{ "two volumes one disk", "resource r {\n on a { volume 0 { disk /a; }\n volume 1 {\n disk /a; } "
	  "address 10.0.0.1:1; }\n on b { address 10.0.0.2:1; disk /b; } }", "t.res:4:2:", "claims disk '/a'" },
	{ "two resources one disk", "resource r { " H2 " }\nresource s {\n on a { address 10.0.0.1:2;\n disk /a; }"
	  " on b { address 10.0.0.2:2; disk /c; } }", "t.res:4:2:", "already claimed by resource 'r'" },
	{ "bad volume number", "resource r {\n volume x { disk /a; } " H2 " }", "t.res:2:9:", "volume N" },
	{ "connection unknown host", "resource r { " H2 "\n connection {\n host a;\n host zed; } }", "t.res:4:7:",
	  "unknown host 'zed'" },
	{ "connection one host", "resource r { " H2 "\n connection { host a; } }", "t.res:2:2:", "two hosts" },
	{ "connection same host twice", "resource r { " H2 "\n connection { host a; host a; } }", "t.res:2:28:",
	  "host 'a' twice" },
	{ "two connections one pair", "resource r { " H2 "\n connection { host a; host b; }\n connection { host b; host a; } }",
	  "t.res:3:2:", "second connection" },
	{ "connection via proxy", "resource r { " H2 "\n connection { host a via proxy; host b; } }", "t.res:2:22:",
	  "DRBD Proxy" },
	{ "connection bad address", "resource r { " H2 "\n connection { host a address 10.0.0.999:1; host b; } }",
	  "t.res:2:30:", "expected an ipv4 address" },
	{ "mesh unknown host", "resource r { " H2 "\n connection-mesh { hosts a b\n c; } }", "t.res:3:2:",
	  "unknown host 'c'" },
	{ "unknown digest", "resource r {\n net { verify-alg xxhash64; } " H2 " }", "t.res:2:19:", "accepted: md5 sha1" },
	{ "checksum as hmac", "resource r {\n net { cram-hmac-alg crc32c; } " H2 " }", "t.res:2:22:",
	  "cannot key an HMAC" },
	{ "bad size unit", "resource r {\n disk { resync-rate 10X; } " H2 " }", "t.res:2:21:", "a bare number is in KiB" },
	{ "bad syncer value", "resource r {\n syncer { rate fast; } " H2 " }", "t.res:2:16:", "expected a size" },
	{ "floating with address", "resource r { floating 10.0.0.1:1 {\n address 10.0.0.1:1; disk /a; } "
	  "floating 10.0.0.2:1 { disk /b; } }", "t.res:2:2:", "no 'address' in a floating" },
	{ "external flexible-meta-disk", "resource r {\n flexible-meta-disk /dev/sdb1; " H2 " }", "t.res:2:21:",
	  "external metadata" },
	{ "meta-disk without ';' before a section", "resource r {\n meta-disk internal\n " H2 " }", "t.res:3:2:",
	  "found extra value 'on'" },
};

TEST(refused_shapes_name_the_place_and_the_cause)
{
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		struct cfg *c = parse(refused[i].text);
		CHECK(c == NULL);
		cfg_free(c);
		if (!strstr(err, refused[i].where) || !strstr(err, refused[i].phrase))
			fprintf(stderr, "    %s: want \"%s\" and \"%s\" in: %s\n", refused[i].what, refused[i].where,
				refused[i].phrase, err);
		CHECK_STR_HAS(err, refused[i].where);
		CHECK_STR_HAS(err, refused[i].phrase);
	}
}

TEST(warnings_are_printed_before_the_error_that_follows)
{
	/* a statement dipole ignores, then an error it causes */
	CHECK(parse("resource r {\n wibble 1;\n on a { address 10.0.0.1:1; }\n on b { address 10.0.0.2:1; disk /b; } }")
	      == NULL);
	CHECK_STR_HAS(err, "t.res:2:2: warning: unknown option 'wibble'");
	CHECK_STR_HAS(err, "has no backing disk");
	CHECK(strstr(err, "wibble") < strstr(err, "has no backing disk"));
}

TEST(connection_options_override_the_resource_for_that_pair)
{
	struct cfg *c = parse("resource r { net { protocol C; ping-int 3; } on a { address 10.0.0.1:1; disk /a; }"
			      " on b { address 10.0.0.2:1; disk /b; } on t { address 10.0.0.3:1; disk none; }"
			      " connection { host a; host b address 10.0.0.2:1; net { protocol A; shared-secret s; } }"
			      " connection-mesh { hosts a b t; net { ping-int 7; } } }");
	CHECK(c != NULL);
	if (!c) {
		fprintf(stderr, "    %s\n", err);
		return;
	}
	const struct cfg_resource *r = &c->res[0];
	CHECK(!strcmp(cfg_conn_get(r, "a", "b", SECT_NET, "protocol"), "A"));
	CHECK(!strcmp(cfg_conn_get(r, "b", "a", SECT_NET, "shared-secret"), "s"));
	CHECK(!strcmp(cfg_conn_get(r, "a", "t", SECT_NET, "protocol"), "C"));  /* the resource's */
	CHECK(!strcmp(cfg_conn_get(r, "a", "b", SECT_NET, "ping-int"), "7"));  /* the mesh's */
	CHECK(!strcmp(cfg_conn_get(r, "b", "t", SECT_NET, "ping-int"), "7"));
	CHECK(cfg_conn_get(r, "a", "t", SECT_NET, "shared-secret") == NULL);
	CHECK(!strcmp(cfg_get(r, SECT_NET, "protocol"), "C"));
	const struct cfg_conn *ab = cfg_find_conn(r, "b", "a");
	CHECK(ab && !ab->from_mesh && ab->address[0] == NULL && !strcmp(ab->address[1], "10.0.0.2:1"));
	CHECK(cfg_find_conn(r, "a", "zed") == NULL);
	cfg_free(c);

	/* more than two hosts: a per-pair address dipole cannot listen on is kept and warned about */
	c = parse("resource r { on a { address 10.0.0.1:1; disk /a; } on b { address 10.0.0.2:1; disk /b; }"
		  " on t { address 10.0.0.3:1; disk none; } connection { host a address 10.0.0.1:9; host t; } }");
	CHECK(c && !strcmp(cfg_find_host(&c->res[0], "a")->address, "10.0.0.1:1"));
	CHECK(c && has_warning(c, "one address per host"));
	cfg_free(c);
}

/* Which case lets a survivor take over (cfg_failover): status's
 * "failover"; with ping_ms, also the ping interval for ping-int
 * ping_int_ms there (cfg_ping_ms; -1 on a parse error). */
static const char *failover_of(const char *text, int ping_int_ms, int *ping_ms)
{
	struct cfg *c = parse(text);
	if (ping_ms)
		*ping_ms = -1;
	if (!c) {
		fprintf(stderr, "    %s\n", err);
		return "(parse error)";
	}
	const char *n = cfg_failover_name(cfg_failover(&c->res[0]));
	if (ping_ms)
		*ping_ms = cfg_ping_ms(&c->res[0], ping_int_ms);
	cfg_free(c);
	return n;
}

TEST(failover_case_from_the_configuration)
{
	const char *two = " on a { address 1.2.3.4:5; disk /x; } on b { address 1.2.3.5:5; disk /y; }";
	const char *tb = " on c { address 1.2.3.6:5; disk none; }";
	const char *third = " on c { address 1.2.3.6:5; disk /z; }";
	const char *fp = " handlers { fence-peer \"/bin/true\"; }";
	char buf[512];
#define FO(want, ...) do { snprintf(buf, sizeof buf, __VA_ARGS__); CHECK_STR_HAS(failover_of(buf, 0, NULL), want); } while (0)
	FO("none", "resource r {%s }", two);
	FO("none", "resource r { net { allow-two-primaries; } %s }", two);
	FO("tiebreaker", "resource r { options { quorum majority; }%s%s }", two, tb);
	FO("tiebreaker", "resource r { options { quorum 2; }%s%s }", two, tb);
	/* every vote needed: losing any node stops the rest */
	FO("none", "resource r { options { quorum all; }%s%s }", two, tb);
	/* a tiebreaker without quorum is no vote */
	FO("none", "resource r {%s%s }", two, tb);
	/* quorum with two nodes: both votes needed */
	FO("none", "resource r { options { quorum majority; }%s }", two);
	FO("quorum", "resource r { options { quorum majority; }%s%s }", two, third);
	FO("fencing", "resource r { net { fencing resource-only; }%s%s }", fp, two);
	FO("fencing", "resource r { disk { fencing resource-and-stonith; }%s%s }", fp, two);
	/* fencing without a handler freezes; dont-care is no fencing */
	FO("none", "resource r { net { fencing resource-only; }%s }", two);
	FO("none", "resource r { net { fencing dont-care; }%s%s }", fp, two);
	/* with quorum on, fencing is ignored: quorum decides */
	FO("none", "resource r { options { quorum majority; } net { fencing resource-only; }%s%s }", fp, two);
	FO("tiebreaker", "resource r { options { quorum majority; } net { fencing resource-only; }%s%s%s }", fp,
	   two, tb);
	/* one disk: nothing to fail over to */
	FO("none", "resource r { options { quorum majority; } on a { address 1.2.3.4:5; disk /x; }"
	   " on b { address 1.2.3.5:5; disk none; }%s }", tb);
#undef FO
}

/* The ping interval (cfg_ping_ms): a second at most where a survivor may
 * take over (the lease it waits out), DRBD's ping-int elsewhere. */
TEST(ping_interval_short_where_failover_can_happen)
{
	const char *two = " on a { address 1.2.3.4:5; disk /x; } on b { address 1.2.3.5:5; disk /y; }";
	const char *tb = " on c { address 1.2.3.6:5; disk none; }";
	const char *fp = " handlers { fence-peer \"/bin/true\"; }";
	char buf[512];
	int ms;
#define PING(want, ping_int_ms, ...) do { snprintf(buf, sizeof buf, __VA_ARGS__); \
		failover_of(buf, ping_int_ms, &ms); CHECK(ms == (want)); } while (0)
	PING(CFG_FAILOVER_PING_MS, 10000, "resource r { options { quorum majority; }%s%s }", two, tb);
	/* any quorum: the lease decides when a cut-off Primary stops writing */
	PING(CFG_FAILOVER_PING_MS, 10000, "resource r { options { quorum all; }%s }", two);
	PING(CFG_FAILOVER_PING_MS, 10000, "resource r { net { fencing resource-only; }%s%s }", fp, two);
	/* ping-int below the cap stays */
	PING(1000, 1000, "resource r { options { quorum majority; }%s%s }", two, tb);
	/* no quorum, no fencing: DRBD's ping-int, idle connections stay quiet */
	PING(10000, 10000, "resource r {%s }", two);
	PING(10000, 10000, "resource r { net { fencing resource-only; }%s }", two);
	PING(7000, 7000, "resource r {%s%s }", two, tb);
#undef PING
}

int main(void)
{
	return unit_main("config");
}

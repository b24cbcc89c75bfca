/* config — DRBD resource-file parser. See config.h.
 *
 * Two stages: a lexer + recursive-descent parser that turns the text into a
 * generic tree of statements ("key args... ;" or "key args... { ... }") with
 * locations, then an interpreter that walks the tree against tables of known
 * sections and options, validates values and builds struct cfg.
 */
#include "config.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- lexer */

enum tok_type { T_EOF, T_WORD, T_STRING, T_LBRACE, T_RBRACE, T_SEMI };

struct tok {
	enum tok_type type;
	char *text; /* WORD/STRING: malloc'd; else NULL */
	struct cfg_loc loc;
};

struct lexer {
	const char *p, *end;
	struct cfg_loc loc;
};

struct node {
	char *key;
	struct tok *args;
	int nargs;
	int block;          /* 1 if "{ ... }" followed */
	struct node *kids;
	int nkids;
	struct cfg_loc loc;
};

struct parser {
	struct cfg *cfg;
	char *err;          /* CFG_ERR_MAX */
	int failed;
	int allow_include;
	int depth;          /* include nesting */
	int skipping;       /* inside a `skip { }` block: dropped, includes not followed */
};

static void perr(struct parser *ps, struct cfg_loc loc, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void perr(struct parser *ps, struct cfg_loc loc, const char *hint, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ps->failed)
		return; /* keep the first error: later ones are usually fallout */
	ps->failed = 1;
	n = snprintf(ps->err, CFG_ERR_MAX, "%s:%d:%d: ", loc.file, loc.line, loc.col);
	if (n < 0 || n >= CFG_ERR_MAX)
		return;
	va_start(ap, fmt);
	n += vsnprintf(ps->err + n, (size_t)(CFG_ERR_MAX - n), fmt, ap);
	va_end(ap);
	if (hint && n < CFG_ERR_MAX)
		snprintf(ps->err + n, (size_t)(CFG_ERR_MAX - n), "\n  hint: %s", hint);
}

static void pwarn(struct parser *ps, struct cfg_loc loc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void pwarn(struct parser *ps, struct cfg_loc loc, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n = snprintf(buf, sizeof buf, "%s:%d:%d: warning: ", loc.file, loc.line, loc.col);

	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	va_end(ap);
	ps->cfg->warnings = xrealloc(ps->cfg->warnings, sizeof(char *) * (size_t)(ps->cfg->nwarnings + 1));
	ps->cfg->warnings[ps->cfg->nwarnings++] = xstrdup(buf);
}

static void lex_advance(struct lexer *lx)
{
	if (*lx->p == '\n') {
		lx->loc.line++;
		lx->loc.col = 1;
	} else {
		lx->loc.col++;
	}
	lx->p++;
}

static int is_word_char(char c)
{
	return c && !isspace((unsigned char)c) && c != '{' && c != '}' && c != ';' && c != '"';
}

static const char *tok_desc(const struct tok *t, char *buf, size_t len)
{
	switch (t->type) {
	case T_EOF: return "end of file";
	case T_LBRACE: return "'{'";
	case T_RBRACE: return "'}'";
	case T_SEMI: return "';'";
	case T_STRING: snprintf(buf, len, "string \"%.40s\"", t->text); return buf;
	case T_WORD: snprintf(buf, len, "'%.40s'", t->text); return buf;
	}
	return "?";
}

/* Returns 0 and fills *t, or -1 after reporting an error. */
static int lex_next(struct parser *ps, struct lexer *lx, struct tok *t)
{
	memset(t, 0, sizeof *t);
	for (;;) {
		while (lx->p < lx->end && isspace((unsigned char)*lx->p))
			lex_advance(lx);
		if (lx->p < lx->end && *lx->p == '#') {
			while (lx->p < lx->end && *lx->p != '\n')
				lex_advance(lx);
			continue;
		}
		break;
	}
	t->loc = lx->loc;
	if (lx->p >= lx->end) {
		t->type = T_EOF;
		return 0;
	}
	if (*lx->p == '\0') {
		perr(ps, t->loc, "the file looks binary or corrupt", "expected a statement, found a NUL byte");
		return -1;
	}
	switch (*lx->p) {
	case '{': t->type = T_LBRACE; lex_advance(lx); return 0;
	case '}': t->type = T_RBRACE; lex_advance(lx); return 0;
	case ';': t->type = T_SEMI; lex_advance(lx); return 0;
	case '"': {
		struct strbuf sb = { 0 };
		lex_advance(lx);
		strbuf_printf(&sb, "%s", "");
		while (lx->p < lx->end && *lx->p != '"') {
			char c = *lx->p;
			if (c == '\\' && lx->p + 1 < lx->end) {
				lex_advance(lx);
				c = *lx->p == 'n' ? '\n' : *lx->p == 't' ? '\t' : *lx->p;
			} else if (c == '\n' || c == '\0') {
				break;
			}
			strbuf_printf(&sb, "%c", c);
			lex_advance(lx);
		}
		if (lx->p >= lx->end || *lx->p != '"') {
			strbuf_free(&sb);
			perr(ps, t->loc, "close the string with '\"' on the same line",
			     "expected '\"' to end the string, found %s",
			     lx->p >= lx->end ? "end of file" : "end of line");
			return -1;
		}
		lex_advance(lx);
		t->type = T_STRING;
		t->text = sb.buf;
		return 0;
	}
	default: {
		const char *s = lx->p;
		while (lx->p < lx->end && is_word_char(*lx->p))
			lex_advance(lx);
		size_t n = (size_t)(lx->p - s);
		t->type = T_WORD;
		t->text = xcalloc(1, n + 1);
		memcpy(t->text, s, n);
		return 0;
	}
	}
}

static void node_free(struct node *n)
{
	free(n->key);
	for (int i = 0; i < n->nargs; i++)
		free(n->args[i].text);
	free(n->args);
	for (int i = 0; i < n->nkids; i++)
		node_free(&n->kids[i]);
	free(n->kids);
}

static void nodes_free(struct node *v, int n)
{
	for (int i = 0; i < n; i++)
		node_free(&v[i]);
	free(v);
}

static void nodes_push(struct node **v, int *n, struct node *x)
{
	*v = xrealloc(*v, sizeof(struct node) * (size_t)(*n + 1));
	(*v)[(*n)++] = *x;
}

static int parse_file_nodes(struct parser *ps, const char *path, struct node **out, int *nout,
			    struct cfg_loc from);
static char *join_args(const struct node *n);

/* Parse statements until '}' (inner) or EOF (top). `open` is the location of
 * the statement that opened this block, for error messages. */
static int parse_block(struct parser *ps, struct lexer *lx, int top, const struct node *open,
		       const char *dir, struct node **out, int *nout);

/* The rest of a statement whose key n holds: its arguments, then ';' or a
 * '{ ... }' block.  0, or -1 reported (n is then freed). */
static int parse_stmt(struct parser *ps, struct lexer *lx, struct node *n, const char *dir)
{
	char d2[64];
	struct tok t;

	for (;;) {
		if (lex_next(ps, lx, &t)) {
			node_free(n);
			return -1;
		}
		if (t.type == T_WORD || t.type == T_STRING) {
			n->args = xrealloc(n->args, sizeof(struct tok) * (size_t)(n->nargs + 1));
			n->args[n->nargs++] = t;
			continue;
		}
		break;
	}
	if (t.type == T_LBRACE) {
		int skip = !strcmp(n->key, "skip");
		n->block = 1;
		ps->skipping += skip;
		int rc = parse_block(ps, lx, 0, n, dir, &n->kids, &n->nkids);
		ps->skipping -= skip;
		if (rc) {
			node_free(n);
			return -1;
		}
	} else if (t.type != T_SEMI) {
		char *what = join_args(n);
		perr(ps, t.loc, "end every option with ';'", "expected ';' after '%s%s%.60s', found %s",
		     n->key, *what ? " " : "", what, tok_desc(&t, d2, sizeof d2));
		free(what);
		node_free(n);
		return -1;
	}
	return 0;
}

/* `include "GLOB";` at the top level: each matching file's statements are
 * appended to out, as drbd.conf(5) says.  0, or -1 reported. */
static int parse_include(struct parser *ps, const struct node *n, int top, const char *dir, struct node **out,
			 int *nout)
{
	if (!top || n->block || n->nargs != 1) {
		perr(ps, n->loc, "write: include \"/etc/drbd.d/*.res\"; at the top level",
		     "expected include \"GLOB\"; at the top level of a file");
		return -1;
	}
	if (!ps->allow_include) {
		perr(ps, n->loc, NULL, "include is not allowed in this input");
		return -1;
	}
	char pattern[4096];
	const char *g = n->args[0].text;
	glob_t gl;
	if (g[0] == '/')
		snprintf(pattern, sizeof pattern, "%s", g);
	else
		snprintf(pattern, sizeof pattern, "%s/%s", dir, g);
	int rc = glob(pattern, 0, NULL, &gl);
	if (rc == 0) {
		for (size_t i = 0; i < gl.gl_pathc && !ps->failed; i++)
			parse_file_nodes(ps, gl.gl_pathv[i], out, nout, n->loc);
		globfree(&gl);
	} else if (rc != GLOB_NOMATCH) {
		perr(ps, n->loc, NULL, "cannot expand include pattern '%s'", pattern);
	}
	return ps->failed ? -1 : 0;
}

static int parse_block(struct parser *ps, struct lexer *lx, int top, const struct node *open,
		       const char *dir, struct node **out, int *nout)
{
	char d1[64];
	struct tok t;

	for (;;) {
		struct node n = { 0 };

		if (lex_next(ps, lx, &t))
			return -1;
		if (t.type == T_EOF) {
			if (top)
				return 0;
			perr(ps, t.loc, "a '}' is missing; check that every '{' has its '}'",
			     "expected '}' to close '%s' opened at line %d, found end of file",
			     open->key, open->loc.line);
			return -1;
		}
		if (t.type == T_RBRACE) {
			if (!top)
				return 0;
			perr(ps, t.loc, "there is one '}' too many, or a '{' is missing before it",
			     "expected a section (global, common, resource) or include, found '}'");
			return -1;
		}
		if (t.type == T_SEMI)
			continue; /* stray ';' (e.g. "};") is harmless */
		if (t.type != T_WORD) {
			perr(ps, t.loc, "an option name must not be quoted",
			     "expected an option or section name, found %s", tok_desc(&t, d1, sizeof d1));
			free(t.text);
			return -1;
		}
		n.key = t.text;
		n.loc = t.loc;
		if (parse_stmt(ps, lx, &n, dir))
			return -1;
		/* drbd.conf(5): `skip` comments out what follows it, anywhere */
		if (!strcmp(n.key, "skip") || ps->skipping) {
			node_free(&n);
			continue;
		}
		if (!strcmp(n.key, "include")) {
			int rc = parse_include(ps, &n, top, dir, out, nout);
			node_free(&n);
			if (rc)
				return -1;
			continue;
		}
		nodes_push(out, nout, &n);
	}
}

static const char *intern_file(struct cfg *cfg, const char *path)
{
	for (int i = 0; i < cfg->nfiles; i++)
		if (!strcmp(cfg->files[i], path))
			return cfg->files[i];
	cfg->files = xrealloc(cfg->files, sizeof(char *) * (size_t)(cfg->nfiles + 1));
	cfg->files[cfg->nfiles] = xstrdup(path);
	return cfg->files[cfg->nfiles++];
}

static int parse_text(struct parser *ps, const char *name, const char *buf, size_t len,
		      const char *dir, struct node **out, int *nout)
{
	struct lexer lx = { .p = buf, .end = buf + len };
	lx.loc.file = intern_file(ps->cfg, name);
	lx.loc.line = 1;
	lx.loc.col = 1;
	return parse_block(ps, &lx, 1, NULL, dir, out, nout);
}

static int parse_file_nodes(struct parser *ps, const char *path, struct node **out, int *nout,
			    struct cfg_loc from)
{
	char *buf = NULL, *dcopy;
	size_t len = 0, cap = 0;
	FILE *f;
	int rc;

	if (++ps->depth > 8) {
		perr(ps, from, "an included file includes itself, directly or not",
		     "includes nested deeper than 8 levels at '%s'", path);
		return -1;
	}
	f = fopen(path, "r");
	if (!f) {
		if (from.file)
			perr(ps, from, NULL, "cannot read included file %s: %s", path, strerror(errno));
		else
			snprintf(ps->err, CFG_ERR_MAX, "%s: cannot read configuration: %s%s", path,
				 strerror(errno),
				 errno == ENOENT ? "\n  hint: check the path (without -c, dipole reads "
						  "/etc/dipole/dipole.conf, else /etc/drbd.d/*.res)" : ""),
				ps->failed = 1;
		ps->depth--;
		return -errno;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 8192;
			if (cap > (16u << 20)) {
				fclose(f);
				free(buf);
				snprintf(ps->err, CFG_ERR_MAX, "%s: configuration file larger than 16 MiB", path);
				ps->failed = 1;
				ps->depth--;
				return -EFBIG;
			}
			buf = xrealloc(buf, cap);
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	dcopy = xstrdup(path);
	rc = parse_text(ps, path, buf, len, dirname(dcopy), out, nout);
	free(dcopy);
	free(buf);
	ps->depth--;
	return rc;
}

/* ------------------------------------------------------- option tables */

/* K_SIZE: a number with drbdsetup's unit suffixes (s = 512-byte sectors, k,
 * M, G, T; either case), normalized to an explicit unit; enums names the unit
 * of a bare number as drbdsetup has it ("k" KiB, "s" sectors, "1" bytes).
 * K_ALG: a digest name as DRBD users write it (the kernel crypto API's),
 * normalized to the name dipole computes (digest_names). */
enum opt_kind { K_FLAG, K_ENUM, K_INT, K_SIZE, K_STR, K_ANY, K_ALG };
enum opt_impl { NOT_YET, IMPL, NO_EFFECT };

struct optspec {
	const char *key;
	enum opt_kind kind;
	const char *enums; /* K_ENUM: space-separated choices; K_INT: "min max"; K_SIZE: unit */
	enum opt_impl impl;
};

static const struct optspec net_opts[] = {
	{ "protocol", K_ENUM, "A B C", IMPL },
	{ "allow-two-primaries", K_FLAG, NULL, IMPL },
	{ "after-sb-0pri", K_ENUM, "disconnect discard-younger-primary discard-older-primary discard-zero-changes discard-least-changes discard-local discard-remote discard-node-*", IMPL },
	{ "after-sb-1pri", K_ENUM, "disconnect consensus violently-as0p discard-secondary call-pri-lost-after-sb", IMPL },
	{ "after-sb-2pri", K_ENUM, "disconnect violently-as0p call-pri-lost-after-sb", IMPL },
	{ "always-asbp", K_FLAG, NULL, NOT_YET },
	{ "rr-conflict", K_ENUM, "disconnect call-pri-lost violently retry-connect", NOT_YET },
	{ "shared-secret", K_STR, NULL, IMPL },
	{ "cram-hmac-alg", K_ALG, "hmac", IMPL },
	{ "timeout", K_INT, "1 600", IMPL },
	{ "ping-int", K_INT, "1 120", IMPL },
	{ "ping-timeout", K_INT, "1 300", IMPL },
	{ "connect-int", K_INT, "1 120", IMPL },
	{ "ko-count", K_INT, "0 200", IMPL },
	{ "max-buffers", K_INT, "32 131072", NO_EFFECT },
	{ "max-epoch-size", K_INT, "1 20000", NO_EFFECT },
	{ "sndbuf-size", K_SIZE, "1", NOT_YET },
	{ "rcvbuf-size", K_SIZE, "1", NOT_YET },
	{ "unplug-watermark", K_INT, "1 131072", NO_EFFECT },
	{ "verify-alg", K_ALG, NULL, IMPL },
	{ "csums-alg", K_ALG, NULL, IMPL },
	{ "data-integrity-alg", K_ALG, NULL, NOT_YET },
	{ "tcp-cork", K_FLAG, NULL, NO_EFFECT },
	{ "use-rle", K_FLAG, NULL, NO_EFFECT },
	{ "fencing", K_ENUM, "dont-care resource-only resource-and-stonith", IMPL },
	{ "transport", K_ENUM, "tcp", NO_EFFECT },
	{ "on-congestion", K_ENUM, "block pull-ahead disconnect", NOT_YET },
	{ NULL, 0, NULL, 0 }
};

static const struct optspec disk_opts[] = {
	{ "on-io-error", K_ENUM, "pass_on call-local-io-error detach", IMPL },
	{ "fencing", K_ENUM, "dont-care resource-only resource-and-stonith", IMPL },
	{ "resync-rate", K_SIZE, "k", IMPL },
	{ "c-max-rate", K_SIZE, "k", IMPL },
	{ "c-min-rate", K_SIZE, "k", IMPL },
	{ "c-plan-ahead", K_INT, "0 300", NOT_YET },
	{ "c-fill-target", K_SIZE, "s", NOT_YET },
	{ "c-delay-target", K_INT, "1 100", NOT_YET },
	{ "al-extents", K_INT, "67 65534", IMPL },
	{ "al-updates", K_FLAG, NULL, NOT_YET },
	{ "disk-flushes", K_FLAG, NULL, NOT_YET },
	{ "md-flushes", K_FLAG, NULL, NOT_YET },
	{ "disk-barrier", K_FLAG, NULL, NO_EFFECT },
	{ "disk-drain", K_FLAG, NULL, NO_EFFECT },
	{ "disk-timeout", K_INT, "0 6000", NOT_YET },
	{ "read-balancing", K_STR, NULL, NOT_YET },
	{ "discard-zeroes-if-aligned", K_FLAG, NULL, NO_EFFECT },
	{ "rs-discard-granularity", K_SIZE, "1", NO_EFFECT },
	{ "size", K_SIZE, "s", IMPL },
	{ "resync-after", K_STR, NULL, NOT_YET },
	{ NULL, 0, NULL, 0 }
};

static const struct optspec startup_opts[] = {
	{ "become-primary-on", K_ANY, NULL, IMPL },
	/* seconds, 0 = for ever (docs/startup.md) */
	{ "wfc-timeout", K_INT, "0 1000000", IMPL },
	{ "degr-wfc-timeout", K_INT, "0 1000000", IMPL },
	{ "outdated-wfc-timeout", K_INT, "0 1000000", IMPL },
	{ "wait-after-sb", K_FLAG, NULL, IMPL },
	{ NULL, 0, NULL, 0 }
};

static const struct optspec handlers_opts[] = {
	{ "split-brain", K_STR, NULL, IMPL },
	{ "fence-peer", K_STR, NULL, IMPL },
	{ "unfence-peer", K_STR, NULL, NOT_YET },
	{ "pri-lost-after-sb", K_STR, NULL, IMPL },
	{ "pri-lost", K_STR, NULL, NOT_YET },
	{ "pri-on-incon-degr", K_STR, NULL, NOT_YET },
	{ "local-io-error", K_STR, NULL, IMPL },
	{ "before-resync-target", K_STR, NULL, NOT_YET },
	{ "after-resync-target", K_STR, NULL, NOT_YET },
	{ "before-resync-source", K_STR, NULL, NOT_YET },
	{ "out-of-sync", K_STR, NULL, NOT_YET },
	{ "initial-split-brain", K_STR, NULL, NOT_YET },
	{ "quorum-lost", K_STR, NULL, NOT_YET },
	{ NULL, 0, NULL, 0 }
};

static const struct optspec options_opts[] = {
	{ "quorum", K_ANY, NULL, IMPL },
	{ "on-no-quorum", K_ENUM, "suspend-io io-error", IMPL },
	{ "quorum-minimum-redundancy", K_ANY, NULL, NOT_YET },
	{ "auto-promote", K_FLAG, NULL, NOT_YET },
	{ "on-no-data-accessible", K_ENUM, "suspend-io io-error", NOT_YET },
	{ "cpu-mask", K_STR, NULL, NO_EFFECT },
	{ "peer-ack-window", K_SIZE, "s", NO_EFFECT },
	{ "peer-ack-delay", K_INT, "1 10000", NO_EFFECT },
	{ "twopc-timeout", K_INT, "50 600", NO_EFFECT },
	{ "twopc-retry-timeout", K_INT, "1 50", NO_EFFECT },
	{ NULL, 0, NULL, 0 }
};

static const struct optspec global_opts[] = {
	{ "usage-count", K_ENUM, "yes no ask", NO_EFFECT },
	{ "minor-count", K_INT, "1 1048576", NO_EFFECT },
	{ "dialog-refresh", K_INT, "0 600", NO_EFFECT },
	{ "disable-ip-verification", K_FLAG, NULL, NO_EFFECT },
	{ "udev-always-use-vnr", K_FLAG, NULL, NO_EFFECT },
	{ NULL, 0, NULL, 0 }
};

static const struct optspec *const sect_tables[SECT_COUNT] = {
	net_opts, disk_opts, startup_opts, handlers_opts, options_opts
};
static const char *const sect_names[SECT_COUNT] = { "net", "disk", "startup", "handlers", "options" };

const char *cfg_sect_name(enum cfg_sect s) { return sect_names[s]; }

static int sect_from_name(const char *name)
{
	for (int i = 0; i < SECT_COUNT; i++)
		if (!strcmp(sect_names[i], name))
			return i;
	return -1;
}

static int enum_has(const char *choices, const char *v)
{
	const char *p = choices;
	size_t vl = strlen(v);
	while (*p) {
		const char *e = strchr(p, ' ');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n >= 1 && p[n - 1] == '*' && vl >= n - 1 && !strncmp(p, v, n - 1) && vl > n - 1)
			return 1; /* prefix choice, e.g. discard-node-NAME */
		if (n == vl && !strncmp(p, v, n))
			return 1;
		p += n;
		while (*p == ' ')
			p++;
	}
	return 0;
}

static char *join_args(const struct node *n)
{
	struct strbuf sb = { 0 };
	strbuf_printf(&sb, "%s", "");
	for (int i = 0; i < n->nargs; i++)
		strbuf_printf(&sb, "%s%s", i ? " " : "", n->args[i].text);
	return sb.buf;
}

static void sect_set(struct cfg_section *s, const char *key, char *val, struct cfg_loc loc)
{
	for (int i = 0; i < s->n; i++) {
		if (!strcmp(s->opts[i].key, key)) {
			free(s->opts[i].val);
			s->opts[i].val = val;
			s->opts[i].loc = loc;
			return;
		}
	}
	s->opts = xrealloc(s->opts, sizeof(struct cfg_opt) * (size_t)(s->n + 1));
	s->opts[s->n].key = xstrdup(key);
	s->opts[s->n].val = val;
	s->opts[s->n].loc = loc;
	s->n++;
}

static const char *sect_get(const struct cfg_section *s, const char *key)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->opts[i].key, key))
			return s->opts[i].val;
	return NULL;
}

/* Digest names as DRBD users write them (the kernel crypto API's), and the
 * digest dipole computes for each: OpenSSL's name, or dipole's own crc32c.
 * A checksum (crc32c, crc32) is no key for an HMAC: refused for
 * cram-hmac-alg. crc32 is computed as crc32c: both ends run dipole, so they
 * agree. md4, wp512, tgr192, xxhash64 and crct10dif are refused: OpenSSL 3
 * does not compute them by default. */
static const struct {
	const char *name, *as;
	int checksum;
} digest_names[] = {
	{ "md5", "md5", 0 },         { "sha1", "sha1", 0 },       { "sha224", "sha224", 0 },
	{ "sha256", "sha256", 0 },   { "sha384", "sha384", 0 },   { "sha512", "sha512", 0 },
	{ "sha3-224", "sha3-224", 0 }, { "sha3-256", "sha3-256", 0 }, { "sha3-384", "sha3-384", 0 },
	{ "sha3-512", "sha3-512", 0 }, { "rmd160", "ripemd160", 0 }, { "ripemd160", "ripemd160", 0 },
	{ "sm3", "sm3", 0 },         { "blake2b-512", "blake2b512", 0 }, { "blake2b512", "blake2b512", 0 },
	{ "blake2s-256", "blake2s256", 0 }, { "blake2s256", "blake2s256", 0 },
	{ "crc32c", "crc32c", 1 },   { "crc32", "crc32c", 1 },
};

static const char *digest_as(const char *v, int hmac)
{
	for (size_t i = 0; i < sizeof digest_names / sizeof digest_names[0]; i++)
		if (!strcasecmp(v, digest_names[i].name) && !(hmac && digest_names[i].checksum))
			return digest_names[i].as;
	return NULL;
}

static void digest_list(char *buf, size_t len, int hmac)
{
	size_t n = 0;
	buf[0] = 0;
	for (size_t i = 0; i < sizeof digest_names / sizeof digest_names[0] && n < len; i++)
		if (!(hmac && digest_names[i].checksum))
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? " " : "", digest_names[i].name);
}

/* A size in bytes with the largest unit that divides it, so a bare number
 * never reaches the daemon (its unit depends on the option). */
static char *size_norm(uint64_t bytes, const char *unit)
{
	static const struct { char c; int shift; } u[] = { { 'T', 40 }, { 'G', 30 }, { 'M', 20 }, { 'k', 10 } };
	char buf[32];
	if (bytes == 0) {
		snprintf(buf, sizeof buf, "0");
		return xstrdup(buf);
	}
	for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
		if (bytes % (1ULL << u[i].shift) == 0) {
			snprintf(buf, sizeof buf, "%llu%c", (unsigned long long)(bytes >> u[i].shift), u[i].c);
			return xstrdup(buf);
		}
	}
	if (bytes % 512 == 0 && strcmp(unit, "1"))
		snprintf(buf, sizeof buf, "%llus", (unsigned long long)(bytes / 512));
	else
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)bytes); /* unit "1": bytes */
	return xstrdup(buf);
}

/* drbdsetup's sizes: a bare number is in the option's unit, a suffix
 * (s, k, M, G, T) overrides it. */
static int size_parse(const char *v, const char *unit, uint64_t *out)
{
	uint64_t x, mul = !strcmp(unit, "k") ? 1024 : !strcmp(unit, "s") ? 512 : 1;
	if (parse_size(v, &x))
		return -EINVAL;
	if (*v && strspn(v, "0123456789") == strlen(v)) {
		if (x > UINT64_MAX / mul)
			return -ERANGE;
		x *= mul;
	}
	*out = x;
	return 0;
}

/* DRBD 8.3 spellings inside today's sections, mapped to today's option
 * (with value `val` when the old one was a negated flag). */
static const struct {
	const char *sect, *old, *now, *val;
} old_spellings[] = {
	{ "disk", "no-disk-flushes", "disk-flushes", "no" },
	{ "disk", "no-md-flushes", "md-flushes", "no" },
	{ "disk", "no-disk-barrier", "disk-barrier", "no" },
	{ "disk", "no-disk-drain", "disk-drain", "no" },
	{ "handlers", "outdate-peer", "fence-peer", NULL },
};

/* Check one option statement against its table and store it. */
static void interp_option(struct parser *ps, const char *where, const struct optspec *tab,
			  const struct node *n, struct cfg_section *dst);

/* An option spelled as DRBD 8.3 did is taken in today's spelling, with a
 * deprecation note.  Returns 1 if n was such an option (handled). */
static int option_old_spelling(struct parser *ps, const char *where, const struct optspec *tab,
			       const struct node *n, struct cfg_section *dst)
{
	for (size_t i = 0; i < sizeof old_spellings / sizeof old_spellings[0]; i++) {
		if (strcmp(where, old_spellings[i].sect) || strcmp(n->key, old_spellings[i].old))
			continue;
		struct node now = *n;
		struct tok no = { .type = T_WORD, .text = (char *)old_spellings[i].val, .loc = n->loc };
		if (old_spellings[i].val && (n->nargs || n->block)) {
			perr(ps, n->nargs ? n->args[0].loc : n->loc, NULL, "expected '%s;', found a value", n->key);
			return 1;
		}
		now.key = (char *)old_spellings[i].now;
		if (old_spellings[i].val) {
			now.args = &no;
			now.nargs = 1;
		}
		pwarn(ps, n->loc, "'%s' is the DRBD 8.3 spelling of '%s%s%s'; taken as such (deprecated)", n->key,
		      now.key, old_spellings[i].val ? " " : "", old_spellings[i].val ? old_spellings[i].val : "");
		interp_option(ps, where, tab, &now, dst);
		return 1;
	}
	return 0;
}

/* The number of values o's kind takes.  0, or -1 with the error reported. */
static int option_arity(struct parser *ps, const struct optspec *o, const struct node *n)
{
	switch (o->kind) {
	case K_FLAG:
		if (n->nargs > 1 || (n->nargs == 1 && strcmp(n->args[0].text, "yes") && strcmp(n->args[0].text, "no"))) {
			perr(ps, n->nargs ? n->args[n->nargs > 1 ? 1 : 0].loc : n->loc,
			     "is a ';' missing after the previous option?",
			     "expected '%s;' or '%s yes|no;', found '%s'", n->key, n->key,
			     n->args[n->nargs > 1 ? 1 : 0].text);
			return -1;
		}
		break;
	case K_ANY:
		if (n->nargs < 1) {
			perr(ps, n->loc, NULL, "expected a value after '%s', found ';'", n->key);
			return -1;
		}
		break;
	default:
		if (n->nargs != 1) {
			if (n->nargs == 0)
				perr(ps, n->loc, NULL, "expected a value after '%s', found ';'", n->key);
			else
				perr(ps, n->args[1].loc, "is a ';' missing after the value?",
				     "expected ';' after '%s %s', found '%s'", n->key, n->args[0].text,
				     n->args[1].text);
			return -1;
		}
		break;
	}
	return 0;
}

/* Checks value v against o's kind; sizes and digests are normalized into
 * *val (allocated), other kinds leave it NULL.  0, or -1 reported. */
static int option_value(struct parser *ps, const struct optspec *o, const struct node *n, const char *v, char **val)
{
	char hint[512];

	if (o->kind == K_ENUM && !enum_has(o->enums, v)) {
		snprintf(hint, sizeof hint, "valid values: %s", o->enums);
		perr(ps, n->args[0].loc, hint, "expected a valid value for '%s', found '%s'", n->key, v);
		return -1;
	}
	if (o->kind == K_INT) {
		long lo, hi, x;
		sscanf(o->enums, "%ld %ld", &lo, &hi);
		if (parse_int(v, lo, hi, &x)) {
			snprintf(hint, sizeof hint, "'%s' takes a whole number from %ld to %ld", n->key, lo, hi);
			perr(ps, n->args[0].loc, hint, "expected a number for '%s', found '%s'", n->key, v);
			return -1;
		}
	}
	if (o->kind == K_SIZE) {
		uint64_t x;
		if (size_parse(v, o->enums, &x)) {
			snprintf(hint, sizeof hint, "sizes are numbers with an optional unit: s (512-byte sectors), "
				 "k, M, G; a bare number is in %s, as with drbdsetup",
				 !strcmp(o->enums, "k") ? "KiB" : !strcmp(o->enums, "s") ? "sectors" : "bytes");
			perr(ps, n->args[0].loc, hint, "expected a size for '%s', found '%s'", n->key, v);
			return -1;
		}
		*val = size_norm(x, o->enums);
	}
	if (o->kind == K_ALG) {
		int hmac = o->enums && !strcmp(o->enums, "hmac");
		const char *as = digest_as(v, hmac);
		if (!as) {
			char list[256];
			digest_list(list, sizeof list, hmac);
			snprintf(hint, sizeof hint, "accepted: %s%s", list,
				 hmac ? " (a checksum such as crc32c cannot key an HMAC)" : "");
			perr(ps, n->args[0].loc, hint, "expected a digest dipole can compute for '%s', found '%s'",
			     n->key, v);
			return -1;
		}
		*val = xstrdup(as);
	}
	return 0;
}

static void interp_option(struct parser *ps, const char *where, const struct optspec *tab,
			  const struct node *n, struct cfg_section *dst)
{
	const struct optspec *o;
	char *val = NULL;

	if (option_old_spelling(ps, where, tab, n, dst))
		return;
	for (o = tab; o->key; o++)
		if (!strcmp(o->key, n->key))
			break;
	if (!o->key) {
		pwarn(ps, n->loc, "unknown option '%s' in %s section ignored", n->key, where);
		return;
	}
	if (n->block) {
		perr(ps, n->loc, NULL, "expected '%s VALUE;', found a '{' section", n->key);
		return;
	}
	if (option_arity(ps, o, n))
		return;
	const char *v = n->nargs ? n->args[0].text : "";
	if (option_value(ps, o, n, v, &val))
		return;
	if (sect_get(dst, n->key))
		pwarn(ps, n->loc, "'%s' set again in the same %s section; this value wins", n->key, where);
	if (o->impl == NOT_YET)
		pwarn(ps, n->loc, "option '%s' (%s) is not implemented by dipole yet; it is kept but has no effect",
		      n->key, where);
	sect_set(dst, n->key, val ? val : join_args(n), n->loc);
}

/* DRBD 8.3 statements outside today's sections: `protocol X;` at resource
 * or common level, and `syncer { }`. Each is mapped into today's section
 * with a deprecation note, never dropped. Returns 1 if consumed. */
static const struct {
	const char *old, *now;
	enum cfg_sect sect;
} syncer_map[] = {
	{ "rate", "resync-rate", SECT_DISK },     { "resync-rate", "resync-rate", SECT_DISK },
	{ "after", "resync-after", SECT_DISK },   { "al-extents", "al-extents", SECT_DISK },
	{ "verify-alg", "verify-alg", SECT_NET }, { "csums-alg", "csums-alg", SECT_NET },
	{ "c-plan-ahead", "c-plan-ahead", SECT_DISK }, { "c-fill-target", "c-fill-target", SECT_DISK },
	{ "c-delay-target", "c-delay-target", SECT_DISK }, { "c-max-rate", "c-max-rate", SECT_DISK },
	{ "c-min-rate", "c-min-rate", SECT_DISK }, { "cpu-mask", "cpu-mask", SECT_OPTIONS },
	{ "use-rle", "use-rle", SECT_NET },       { "on-no-data-accessible", "on-no-data-accessible", SECT_OPTIONS },
};

static void interp_section(struct parser *ps, const struct node *n, enum cfg_sect s, struct cfg_section *dst);

static int interp_legacy(struct parser *ps, const struct node *n, struct cfg_section *sect)
{
	if (!strcmp(n->key, "protocol") && !n->block) {
		pwarn(ps, n->loc, "'protocol' outside 'net' is the DRBD 8.3 spelling; taken as 'net { protocol %s; }' "
				  "(deprecated)", n->nargs ? n->args[0].text : "");
		interp_option(ps, "net", net_opts, n, &sect[SECT_NET]);
		return 1;
	}
	if (strcmp(n->key, "syncer"))
		return 0;
	if (!n->block || n->nargs) {
		perr(ps, n->loc, "write: syncer { rate 33M; }", "expected 'syncer {'");
		return 1;
	}
	for (int i = 0; i < n->nkids && !ps->failed; i++) {
		const struct node *k = &n->kids[i];
		size_t m;
		for (m = 0; m < sizeof syncer_map / sizeof syncer_map[0]; m++)
			if (!strcmp(k->key, syncer_map[m].old))
				break;
		if (m == sizeof syncer_map / sizeof syncer_map[0]) {
			pwarn(ps, k->loc, "option '%s' of DRBD 8.3's 'syncer' section has no equivalent in DRBD 8.4 or "
					  "dipole; ignored", k->key);
			continue;
		}
		struct node now = *k;
		enum cfg_sect s = syncer_map[m].sect;
		now.key = (char *)syncer_map[m].now;
		pwarn(ps, k->loc, "'syncer { %s }' is the DRBD 8.3 spelling of '%s { %s }'; taken as such (deprecated)",
		      k->key, sect_names[s], now.key);
		interp_option(ps, sect_names[s], sect_tables[s], &now, &sect[s]);
	}
	return 1;
}

static void interp_section(struct parser *ps, const struct node *n, enum cfg_sect s, struct cfg_section *dst)
{
	if (n->nargs) {
		perr(ps, n->args[0].loc, NULL, "expected '{' after '%s', found '%s'", n->key, n->args[0].text);
		return;
	}
	for (int i = 0; i < n->nkids && !ps->failed; i++)
		interp_option(ps, sect_names[s], sect_tables[s], &n->kids[i], dst);
}

static int need_args(struct parser *ps, const struct node *n, int want, const char *usage)
{
	if (n->nargs == want)
		return 0;
	if (n->nargs < want)
		perr(ps, n->loc, NULL, "expected '%s', found too few values", usage);
	else
		perr(ps, n->args[want].loc, "is a ';' missing?", "expected '%s', found extra value '%s'",
		     usage, n->args[want].text);
	return -1;
}

/* [ipv4|ipv6] IP:PORT from tokens fam (may be NULL) and a; on success
 * replaces *addr and *af. Returns 0 or -1 after reporting. */
static int check_address(struct parser *ps, const struct tok *ft, const struct tok *a, char **addr, char **af)
{
	const char *fam = "ipv4";
	char ip[128];
	const char *colon;
	long port;
	unsigned char bin[16];

	if (ft) {
		fam = ft->text;
		if (strcmp(fam, "ipv4") && strcmp(fam, "ipv6")) {
			perr(ps, ft->loc, "supported families: ipv4, ipv6 (not ssocks, sdp, sci)",
			     "expected an address family, found '%s'", fam);
			return -1;
		}
	} else if (a->text[0] == '[') {
		fam = "ipv6";
	}
	colon = strrchr(a->text, ':');
	if (!colon || colon == a->text) {
		perr(ps, a->loc, "write the port after a colon: 192.168.1.1:7790",
		     "expected IP:PORT, found '%s'", a->text);
		return -1;
	}
	size_t iplen = (size_t)(colon - a->text);
	if (iplen >= sizeof ip) {
		perr(ps, a->loc, NULL, "expected IP:PORT, found an address too long");
		return -1;
	}
	memcpy(ip, a->text, iplen);
	ip[iplen] = 0;
	if (!strcmp(fam, "ipv6")) {
		if (ip[0] != '[' || ip[iplen - 1] != ']') {
			perr(ps, a->loc, "IPv6 addresses go in brackets: ipv6 [fd00::1]:7790",
			     "expected [IPv6]:PORT, found '%s'", a->text);
			return -1;
		}
		memmove(ip, ip + 1, iplen - 2);
		ip[iplen - 2] = 0;
	}
	if (inet_pton(!strcmp(fam, "ipv6") ? AF_INET6 : AF_INET, ip, bin) != 1) {
		perr(ps, a->loc, "use a numeric address; host names are not resolved",
		     "expected an %s address, found '%s'", fam, ip);
		return -1;
	}
	if (parse_int(colon + 1, 1, 65535, &port)) {
		perr(ps, a->loc, NULL, "expected a port 1-65535 after ':', found '%s'", colon + 1);
		return -1;
	}
	free(*addr);
	free(*af);
	*addr = xstrdup(a->text);
	*af = xstrdup(fam);
	return 0;
}

/* address [ipv4|ipv6] IP:PORT */
static void interp_address(struct parser *ps, const struct node *n, char **addr, char **af)
{
	if (n->nargs == 2)
		check_address(ps, &n->args[0], &n->args[1], addr, af);
	else if (n->nargs == 1)
		check_address(ps, NULL, &n->args[0], addr, af);
	else
		perr(ps, n->loc, "write: address 192.168.1.1:7790;", "expected 'address [ipv4|ipv6] IP:PORT;'");
}

struct dev_disk { char *disk, *device, *meta_disk; struct cfg_loc disk_loc; };

/* disk / device / meta-disk statements shared by resource and on-sections.
 * Returns 1 if consumed. */
static int interp_dev_disk(struct parser *ps, const struct node *n, struct dev_disk *dd)
{
	if (!strcmp(n->key, "disk") && !n->block) {
		if (need_args(ps, n, 1, "disk PATH;"))
			return 1;
		if (!n->args[0].text[0]) {
			perr(ps, n->args[0].loc, NULL, "expected a disk path, found an empty string");
			return 1;
		}
		free(dd->disk);
		dd->disk = xstrdup(n->args[0].text);
		dd->disk_loc = n->loc;
		return 1;
	}
	if (!strcmp(n->key, "device")) {
		char buf[64];
		const char *path = NULL;
		long minor = -1;
		if (n->block) {
			perr(ps, n->loc, NULL, "expected 'device PATH;', found '{'");
			return 1;
		}
		/* device PATH | device PATH minor N | device minor N */
		for (int i = 0; i < n->nargs; i++) {
			if (!strcmp(n->args[i].text, "minor") && i + 1 < n->nargs) {
				if (parse_int(n->args[i + 1].text, 0, 1048575, &minor)) {
					perr(ps, n->args[i + 1].loc, NULL, "expected a minor number, found '%s'",
					     n->args[i + 1].text);
					return 1;
				}
				i++;
			} else if (!path && n->args[i].text[0] == '/') {
				path = n->args[i].text;
			} else {
				perr(ps, n->args[i].loc, "write: device /dev/drbd0; or device minor 0;",
				     "expected a device path or 'minor N', found '%s'", n->args[i].text);
				return 1;
			}
		}
		if (!path && minor < 0) {
			perr(ps, n->loc, "write: device /dev/drbd0;", "expected a device path after 'device'");
			return 1;
		}
		if (!path) {
			snprintf(buf, sizeof buf, "/dev/drbd%ld", minor);
			path = buf;
		}
		free(dd->device);
		dd->device = xstrdup(path);
		return 1;
	}
	if (!strcmp(n->key, "meta-disk") || !strcmp(n->key, "flexible-meta-disk")) {
		if (n->key[0] == 'f')
			pwarn(ps, n->loc, "'flexible-meta-disk' is the DRBD 8.3 spelling of 'meta-disk'; taken as such "
					  "(deprecated)");
		if (n->nargs < 1 || (n->block && n->nargs == 1))
			perr(ps, n->loc, "end every option with ';'", "expected 'meta-disk internal;'%s",
			     n->nargs ? ", found '{'" : "");
		else if (strcmp(n->args[0].text, "internal"))
			perr(ps, n->args[0].loc,
			     "dipole keeps its metadata at the end of the backing disk: use meta-disk internal;",
			     "expected 'internal', found '%s' (external metadata is not supported)", n->args[0].text);
		else if (!need_args(ps, n, 1, "meta-disk internal;")) {
			free(dd->meta_disk);
			dd->meta_disk = xstrdup("internal");
		}
		return 1;
	}
	return 0;
}

/* `volume N { device; disk; meta-disk; disk { options } }`, in an `on`
 * section or at resource level. Flat disk/device/meta-disk statements are
 * volume 0, as in drbd.conf(5). */
struct vol {
	long vnr;
	struct dev_disk dd;
	struct cfg_loc loc;
};

struct vols {
	struct vol *v;
	int n;
};

static void vols_free(struct vols *vs)
{
	for (int i = 0; i < vs->n; i++) {
		free(vs->v[i].dd.disk);
		free(vs->v[i].dd.device);
		free(vs->v[i].dd.meta_disk);
	}
	free(vs->v);
	vs->v = NULL;
	vs->n = 0;
}

static const struct vol *vols_find(const struct vols *vs, long vnr)
{
	for (int i = 0; i < vs->n; i++)
		if (vs->v[i].vnr == vnr)
			return &vs->v[i];
	return NULL;
}

static void interp_volume(struct parser *ps, const struct node *n, struct vols *vs, struct cfg_section *disk_sect)
{
	long vnr;
	const struct vol *seen;
	struct vol *v;

	if (!n->block || n->nargs != 1 || parse_int(n->args[0].text, 0, 65535, &vnr)) {
		perr(ps, n->nargs ? n->args[0].loc : n->loc, "write: volume 0 { device minor 0; disk PATH; meta-disk internal; }",
		     "expected 'volume N {' with N from 0 to 65535, found %s%s%s", n->nargs ? "'" : "",
		     n->nargs ? n->args[0].text : "no number", n->nargs ? "'" : "");
		return;
	}
	if ((seen = vols_find(vs, vnr))) {
		char hint[160];
		snprintf(hint, sizeof hint, "first defined at %s:%d:%d", seen->loc.file, seen->loc.line, seen->loc.col);
		perr(ps, n->loc, hint, "volume %ld defined twice in the same section", vnr);
		return;
	}
	vs->v = xrealloc(vs->v, sizeof(struct vol) * (size_t)(vs->n + 1));
	v = &vs->v[vs->n++];
	memset(v, 0, sizeof *v);
	v->vnr = vnr;
	v->loc = n->loc;
	for (int i = 0; i < n->nkids && !ps->failed; i++) {
		const struct node *k = &n->kids[i];
		if (interp_dev_disk(ps, k, &v->dd))
			continue;
		if (!strcmp(k->key, "disk") && k->block)
			interp_section(ps, k, SECT_DISK, disk_sect); /* one volume: the resource's disk options */
		else
			pwarn(ps, k->loc, "unknown option '%s' in volume %ld ignored", k->key, vnr);
	}
}

static void interp_host(struct parser *ps, const struct node *n, struct cfg_resource *r, struct vols *vs,
			struct cfg_section *disk_sect, int floating)
{
	struct cfg_host *h;
	struct dev_disk dd = { 0 };
	char *addr = NULL, *af = NULL;
	const char *what = floating ? "floating" : "on";

	if (!n->block) {
		perr(ps, n->loc, NULL, "expected '{' after '%s %s', found ';'", what, n->nargs ? n->args[0].text : "HOST");
		return;
	}
	if (floating) {
		/* floating [ipv4|ipv6] IP:PORT: the host owning that address; named by its IP */
		if (n->nargs < 1 || n->nargs > 2) {
			perr(ps, n->nargs ? n->args[2].loc : n->loc, "write: floating ipv4 10.0.0.1:7790 { ... }",
			     "expected 'floating [ipv4|ipv6] IP:PORT {'");
			return;
		}
		if (check_address(ps, n->nargs == 2 ? &n->args[0] : NULL, &n->args[n->nargs - 1], &addr, &af))
			return;
	} else if (n->nargs != 1) {
		perr(ps, n->nargs ? n->args[1].loc : n->loc, "write: on docker1 { ... }",
		     "expected one host name after 'on'");
		return;
	}
	r->hosts = xrealloc(r->hosts, sizeof(struct cfg_host) * (size_t)(r->nhosts + 1));
	h = &r->hosts[r->nhosts++];
	memset(h, 0, sizeof *h);
	if (floating) {
		const char *a = addr[0] == '[' ? addr + 1 : addr;
		size_t l = (size_t)(strrchr(a, ':') - a);
		if (addr[0] == '[')
			l--; /* the ']' */
		h->name = xcalloc(1, l + 1);
		memcpy(h->name, a, l);
		h->address = addr;
		h->af = af;
		h->floating = 1;
	} else {
		h->name = xstrdup(n->args[0].text);
	}
	h->loc = n->loc;
	h->node_id = -1;
	for (int i = 0; i < n->nkids && !ps->failed; i++) {
		const struct node *k = &n->kids[i];
		long id;
		if (interp_dev_disk(ps, k, &dd))
			continue;
		if (!strcmp(k->key, "address") && !floating) {
			interp_address(ps, k, &h->address, &h->af);
		} else if (!strcmp(k->key, "nbd-address")) {
			char *naf = NULL;
			interp_address(ps, k, &h->nbd_address, &naf);
			free(naf);
		} else if (!strcmp(k->key, "metrics-address")) {
			char *maf = NULL;
			free(h->metrics_address);
			h->metrics_address = NULL;
			interp_address(ps, k, &h->metrics_address, &maf);
			free(maf);
		} else if (!strcmp(k->key, "node-id")) {
			if (need_args(ps, k, 1, "node-id N;"))
				break;
			if (parse_int(k->args[0].text, 0, 31, &id)) {
				perr(ps, k->args[0].loc, "node ids are 0 to 31, unique within a resource",
				     "expected a node id, found '%s'", k->args[0].text);
				break;
			}
			h->node_id = (int)id;
		} else if (!strcmp(k->key, "volume")) {
			interp_volume(ps, k, vs, disk_sect);
		} else if (!strcmp(k->key, "address")) {
			perr(ps, k->loc, "a floating section is named by its address: floating 10.0.0.1:7790 { ... }",
			     "expected no 'address' in a floating section, found one");
		} else {
			pwarn(ps, k->loc, "unknown option '%s' in '%s %s' ignored", k->key, what, h->name);
		}
	}
	h->disk = dd.disk;
	h->disk_loc = dd.disk_loc;
	h->device = dd.device;
	h->meta_disk = dd.meta_disk;
}

static void copy_section(struct cfg_section *dst, const struct cfg_section *src)
{
	for (int i = 0; i < src->n; i++)
		sect_set(dst, src->opts[i].key, xstrdup(src->opts[i].val), src->opts[i].loc);
}

static void free_section(struct cfg_section *s)
{
	for (int i = 0; i < s->n; i++) {
		free(s->opts[i].key);
		free(s->opts[i].val);
	}
	free(s->opts);
	s->opts = NULL;
	s->n = 0;
}

static int host_index(const struct cfg_resource *r, const char *name)
{
	for (int i = 0; i < r->nhosts; i++)
		if (!strcmp(r->hosts[i].name, name))
			return i;
	return -1;
}

static char *host_list(const struct cfg_resource *r)
{
	struct strbuf sb = { 0 };
	strbuf_printf(&sb, "%s", "");
	for (int i = 0; i < r->nhosts; i++)
		strbuf_printf(&sb, "%s%s", i ? ", " : "", r->hosts[i].name);
	return sb.buf;
}

/* The host's disk, device and meta-disk from (most specific first) its own
 * volume N, its flat statements (volume 0), the resource's volume N, the
 * resource's flat statements. Refuses two volumes claiming one disk, and a
 * second volume (one per resource for now). */
static int resolve_volumes(struct parser *ps, struct cfg_resource *r, struct cfg_host *h, const struct vols *hv,
			   const struct vols *rv, const struct dev_disk *rflat)
{
	struct {
		long vnr;
		int explicit;
		struct cfg_loc loc;
		const char *disk, *device, *meta_disk;
		struct cfg_loc disk_loc;
	} v[8];
	int n = 0;
	const struct vols *lv[2] = { hv, rv };

	for (int l = 0; l < 2; l++) {
		for (int i = 0; i < lv[l]->n; i++) {
			int j;
			for (j = 0; j < n && v[j].vnr != lv[l]->v[i].vnr; j++)
				;
			if (j == n && n < 8) {
				v[n].vnr = lv[l]->v[i].vnr;
				v[n].explicit = 1;
				v[n++].loc = lv[l]->v[i].loc;
			}
		}
	}
	int flat = h->disk || h->device || h->meta_disk || rflat->disk || rflat->device || rflat->meta_disk;
	int j;
	for (j = 0; j < n && v[j].vnr != 0; j++)
		;
	if (j == n && (flat || n == 0) && n < 8) {
		v[n].vnr = 0;
		v[n].explicit = 0;
		v[n++].loc = h->disk ? h->disk_loc : rflat->disk ? rflat->disk_loc : h->loc;
	}
	for (int i = 0; i < n; i++) {
		const struct vol *hvol = vols_find(hv, v[i].vnr), *rvol = vols_find(rv, v[i].vnr);
		const struct dev_disk *src[4] = { hvol ? &hvol->dd : NULL, NULL, rvol ? &rvol->dd : NULL,
						  v[i].vnr == 0 ? rflat : NULL };
		struct dev_disk hflat = { h->disk, h->device, h->meta_disk, h->disk_loc };
		if (v[i].vnr == 0)
			src[1] = &hflat;
		v[i].disk = v[i].device = v[i].meta_disk = NULL;
		for (int s = 0; s < 4; s++) {
			if (!src[s])
				continue;
			if (!v[i].disk && src[s]->disk) {
				v[i].disk = src[s]->disk;
				v[i].disk_loc = src[s]->disk_loc;
			}
			if (!v[i].device)
				v[i].device = src[s]->device;
			if (!v[i].meta_disk)
				v[i].meta_disk = src[s]->meta_disk;
		}
		for (int k = 0; k < i; k++) {
			if (v[i].disk && v[k].disk && strcmp(v[i].disk, "none") && !strcmp(v[i].disk, v[k].disk)) {
				char hint[256];
				snprintf(hint, sizeof hint, "volume %ld claims it at %s:%d:%d; each volume needs a disk of its own",
					 v[k].vnr, v[k].disk_loc.file, v[k].disk_loc.line, v[k].disk_loc.col);
				perr(ps, v[i].disk_loc, hint, "volume %ld of '%s %s' claims disk '%s', already claimed by "
				     "volume %ld", v[i].vnr, h->floating ? "floating" : "on", h->name, v[i].disk, v[k].vnr);
				return -1;
			}
		}
	}
	if (n > 1) {
		char hint[256];
		snprintf(hint, sizeof hint, "volume %ld is at %s:%d:%d; give each volume a resource of its own",
			 v[0].vnr, v[0].loc.file, v[0].loc.line, v[0].loc.col);
		perr(ps, v[1].loc, hint, "resource '%s' has more than one volume (volume %ld here); dipole supports one "
		     "volume per resource for now", r->name, v[1].vnr);
		return -1;
	}
	char *disk = v[0].disk ? xstrdup(v[0].disk) : NULL, *device = v[0].device ? xstrdup(v[0].device) : NULL;
	char *md = v[0].meta_disk ? xstrdup(v[0].meta_disk) : NULL;
	free(h->disk);
	free(h->device);
	free(h->meta_disk);
	h->disk = disk;
	h->device = device;
	h->meta_disk = md;
	if (disk)
		h->disk_loc = v[0].disk_loc;
	h->volume = v[0].explicit ? (int)v[0].vnr : -1;
	return 0;
}

/* One side of a connection: host NAME [address [af] IP:PORT] [port N]; */
struct conn_side {
	const struct tok *host, *fam, *addr, *port;
};

static int conn_side_parse(struct parser *ps, const struct node *k, struct conn_side *sd)
{
	static const char usage[] = "write: host NAME address [ipv4|ipv6] IP:PORT; (address and port are optional)";
	memset(sd, 0, sizeof *sd);
	if (k->block || k->nargs < 1) {
		perr(ps, k->loc, usage, "expected 'host NAME [address [ipv4|ipv6] IP:PORT] [port N];'");
		return -1;
	}
	sd->host = &k->args[0];
	for (int i = 1; i < k->nargs;) {
		const char *t = k->args[i].text;
		if (!strcmp(t, "address") && i + 1 < k->nargs) {
			const char *f = k->args[i + 1].text;
			if (i + 2 < k->nargs && (!strcmp(f, "ipv4") || !strcmp(f, "ipv6") || !strcmp(f, "ssocks") ||
						 !strcmp(f, "sdp") || !strcmp(f, "sci"))) {
				sd->fam = &k->args[i + 1];
				sd->addr = &k->args[i + 2];
				i += 3;
			} else {
				sd->addr = &k->args[i + 1];
				i += 2;
			}
		} else if (!strcmp(t, "port") && i + 1 < k->nargs) {
			sd->port = &k->args[i + 1];
			i += 2;
		} else if (!strcmp(t, "via")) {
			perr(ps, k->args[i].loc, "connect the hosts directly: dipole has no DRBD Proxy",
			     "expected 'address' or 'port', found 'via' (DRBD Proxy is not supported)");
			return -1;
		} else {
			perr(ps, k->args[i].loc, usage, "expected 'address' or 'port' after 'host %s', found '%s'",
			     sd->host->text, t);
			return -1;
		}
	}
	return 0;
}

/* connection [NAME] { host A ..; host B ..; [path { host A ..; host B ..; }]
 * net { } disk { } volume N { disk { } } }: runs once the hosts are known. */
/* What a connection block names, before its hosts are resolved: the
 * sides given by 'host' lines and those of its first 'path'. */
struct conn_parts {
	struct conn_side sd[2], pd[2];
	int nsd, npd, npaths;
};

static void conn_path(struct parser *ps, const struct node *k, struct conn_parts *p)
{
	if (p->npaths++) {
		pwarn(ps, k->loc, "a second path of a connection is not supported by dipole yet; ignored "
				  "(the first path is used)");
		return;
	}
	for (int j = 0; j < k->nkids && !ps->failed; j++) {
		const struct node *pk = &k->kids[j];
		if (strcmp(pk->key, "host"))
			pwarn(ps, pk->loc, "unknown option '%s' in path ignored", pk->key);
		else if (p->npd == 2)
			perr(ps, pk->loc, NULL, "expected two hosts in a path, found a third");
		else if (!conn_side_parse(ps, pk, &p->pd[p->npd]))
			p->npd++;
	}
}

/* One line of a connection block; errors are left in ps->failed. */
static void conn_kid(struct parser *ps, const struct node *k, struct conn_parts *p, struct cfg_conn *c)
{
	int s = sect_from_name(k->key);
	if (!strcmp(k->key, "host")) {
		if (p->nsd == 2)
			perr(ps, k->loc, "dipole connects every pair: write one connection per pair of hosts",
			     "expected two hosts in a connection, found a third ('%s')", k->nargs ? k->args[0].text : "?");
		else if (!conn_side_parse(ps, k, &p->sd[p->nsd]))
			p->nsd++;
	} else if (!strcmp(k->key, "path") && k->block) {
		conn_path(ps, k, p);
	} else if ((s == SECT_NET || s == SECT_DISK) && k->block) {
		interp_section(ps, k, (enum cfg_sect)s, &c->sect[s]);
	} else if (!strcmp(k->key, "volume") && k->block) {
		/* peer-device options of a volume: with one volume, the pair's */
		for (int j = 0; j < k->nkids && !ps->failed; j++) {
			if (!strcmp(k->kids[j].key, "disk") && k->kids[j].block)
				interp_section(ps, &k->kids[j], SECT_DISK, &c->sect[SECT_DISK]);
			else
				pwarn(ps, k->kids[j].loc, "unknown option '%s' in a connection's volume ignored",
				      k->kids[j].key);
		}
	} else {
		pwarn(ps, k->loc, "unknown option '%s' in connection ignored", k->key);
	}
}

/* The connection's two sides: its host lines, completed by (or taken
 * from) its path's.  0, or -1 with the error reported. */
static int conn_sides(struct parser *ps, const struct node *n, struct conn_parts *p)
{
	if (p->nsd == 0 && p->npd == 2) {
		p->sd[0] = p->pd[0];
		p->sd[1] = p->pd[1];
		p->nsd = 2;
	} else if (p->npd == 2 && p->nsd == 2) {
		/* the path's addresses, for the hosts the connection names */
		for (int i = 0; i < 2; i++)
			for (int j = 0; j < 2; j++)
				if (!strcmp(p->sd[i].host->text, p->pd[j].host->text) && !p->sd[i].addr && !p->sd[i].port) {
					p->sd[i].addr = p->pd[j].addr;
					p->sd[i].fam = p->pd[j].fam;
					p->sd[i].port = p->pd[j].port;
				}
	}
	if (p->nsd != 2) {
		perr(ps, n->loc, "write: connection { host a address 10.0.0.1:7790; host b address 10.0.0.2:7790; }",
		     "expected two hosts in connection, found %d", p->nsd);
		return -1;
	}
	return 0;
}

/* Resolves the sides' host names into c->host[], refusing an unknown
 * host, one named twice, and a second connection of the same pair. */
static int conn_hosts(struct parser *ps, const struct node *n, struct cfg_resource *r, const struct conn_side *sd,
		      struct cfg_conn *c)
{
	for (int i = 0; i < 2; i++) {
		c->host[i] = host_index(r, sd[i].host->text);
		if (c->host[i] < 0) {
			char hint[512], *hl = host_list(r);
			snprintf(hint, sizeof hint, "a connection joins hosts that have an 'on HOST { }' section in "
				 "resource '%s' (%s)", r->name, hl);
			free(hl);
			perr(ps, sd[i].host->loc, hint, "connection names unknown host '%s'", sd[i].host->text);
			return -1;
		}
	}
	if (c->host[0] == c->host[1]) {
		perr(ps, sd[1].host->loc, NULL, "connection names host '%s' twice", sd[1].host->text);
		return -1;
	}
	for (int i = 0; i < r->nconns; i++) {
		const struct cfg_conn *o = &r->conns[i];
		if ((o->host[0] == c->host[0] && o->host[1] == c->host[1]) ||
		    (o->host[0] == c->host[1] && o->host[1] == c->host[0])) {
			char hint[160];
			snprintf(hint, sizeof hint, "the first is at %s:%d:%d", o->loc.file, o->loc.line, o->loc.col);
			perr(ps, n->loc, hint, "a second connection between '%s' and '%s'", sd[0].host->text,
			     sd[1].host->text);
			return -1;
		}
	}
	return 0;
}

/* A side's address for this connection: its own 'address', or its
 * 'port' on the host's address.  Neither leaves i's address unset. */
static int conn_side_address(struct parser *ps, const struct cfg_resource *r, const struct conn_side *sd,
			     struct cfg_conn *c, int i)
{
	if (sd->addr)
		return check_address(ps, sd->fam, sd->addr, &c->address[i], &c->af[i]);
	if (!sd->port)
		return 0;
	const struct cfg_host *h = &r->hosts[c->host[i]];
	long port;
	if (parse_int(sd->port->text, 1, 65535, &port)) {
		perr(ps, sd->port->loc, NULL, "expected a port 1-65535, found '%s'", sd->port->text);
		return -1;
	}
	if (!h->address) {
		perr(ps, sd->port->loc, "give the address: host NAME address IP:PORT;",
		     "'port' needs the address of 'on %s', which has none", h->name);
		return -1;
	}
	char buf[160];
	snprintf(buf, sizeof buf, "%.*s:%ld", (int)(strrchr(h->address, ':') - h->address), h->address, port);
	c->address[i] = xstrdup(buf);
	c->af[i] = xstrdup(h->af);
	return 0;
}

static void interp_conn(struct parser *ps, const struct node *n, struct cfg_resource *r)
{
	struct conn_parts p;
	struct cfg_conn c;

	memset(&p, 0, sizeof p);
	memset(&c, 0, sizeof c);
	c.loc = n->loc;
	if (!n->block || n->nargs > 1) {
		perr(ps, n->block ? n->args[1].loc : n->loc, "write: connection { host a address 10.0.0.1:7790; host b "
		     "address 10.0.0.2:7790; }", "expected 'connection [NAME] {'");
		return;
	}
	for (int i = 0; i < n->nkids && !ps->failed; i++)
		conn_kid(ps, &n->kids[i], &p, &c);
	if (ps->failed || conn_sides(ps, n, &p) || conn_hosts(ps, n, r, p.sd, &c) ||
	    conn_side_address(ps, r, &p.sd[0], &c, 0) || conn_side_address(ps, r, &p.sd[1], &c, 1))
		goto fail;
	if (n->nargs)
		c.name = xstrdup(n->args[0].text);
	r->conns = xrealloc(r->conns, sizeof(struct cfg_conn) * (size_t)(r->nconns + 1));
	r->conns[r->nconns++] = c;
	return;
fail:
	for (int s = 0; s < SECT_COUNT; s++)
		free_section(&c.sect[s]);
	for (int i = 0; i < 2; i++) {
		free(c.address[i]);
		free(c.af[i]);
	}
}

/* Addresses from connections fill the hosts' addresses: dipole listens on
 * one address per host, so with more than two hosts a different address
 * for one pair is kept in the model and warned about. */
static void conn_addresses(struct parser *ps, struct cfg_resource *r)
{
	for (int i = 0; i < r->nconns; i++) {
		const struct cfg_conn *c = &r->conns[i];
		for (int s = 0; s < 2; s++) {
			struct cfg_host *h = &r->hosts[c->host[s]];
			if (!c->address[s] || (h->address && !strcmp(h->address, c->address[s])))
				continue;
			if (!h->address || r->nhosts == 2) {
				free(h->address);
				free(h->af);
				h->address = xstrdup(c->address[s]);
				h->af = xstrdup(c->af[s]);
			} else {
				pwarn(ps, c->loc, "host '%s' has address %s in this connection but %s elsewhere; dipole "
						  "listens on one address per host for now and uses %s with every peer",
				      h->name, c->address[s], h->address, h->address);
			}
		}
	}
}

/* connection-mesh { hosts A B C; net { } }: dipole connects every pair of
 * hosts, so the mesh must name exactly the resource's hosts. Its net options
 * apply to every pair, under a pair's own connection section. */
static int interp_mesh(struct parser *ps, const struct node *m, struct cfg_resource *r)
{
	const struct node *hosts = NULL;
	if (!m->block) {
		perr(ps, m->loc, "write: connection-mesh { hosts a b c; }", "expected '{' after 'connection-mesh'");
		return -1;
	}
	for (int i = 0; i < m->nkids && !ps->failed; i++) {
		const struct node *k = &m->kids[i];
		if (!strcmp(k->key, "hosts") && !k->block)
			hosts = k;
		else if (!strcmp(k->key, "net") && k->block)
			interp_section(ps, k, SECT_NET, &r->mesh_net);
		else
			pwarn(ps, k->loc, "unknown option '%s' in connection-mesh ignored", k->key);
	}
	if (ps->failed)
		return -1;
	if (!hosts || hosts->nargs < 2) {
		perr(ps, hosts ? hosts->loc : m->loc, "write: connection-mesh { hosts a b c; }",
		     "connection-mesh needs 'hosts' naming at least two hosts");
		return -1;
	}
	unsigned seen = 0;
	for (int i = 0; i < hosts->nargs; i++) {
		const struct tok *t = &hosts->args[i];
		int h = host_index(r, t->text);
		if (h < 0) {
			char hint[256];
			snprintf(hint, sizeof hint, "every host in the mesh needs an 'on %s { ... }' section in resource '%s'",
				 t->text, r->name);
			perr(ps, t->loc, hint, "connection-mesh names unknown host '%s'", t->text);
			return -1;
		}
		if (seen & (1u << h)) {
			perr(ps, t->loc, NULL, "connection-mesh names host '%s' twice", t->text);
			return -1;
		}
		seen |= 1u << h;
	}
	for (int h = 0; h < r->nhosts; h++) {
		if (!(seen & (1u << h))) {
			char hint[256];
			snprintf(hint, sizeof hint, "dipole connects every pair of hosts: add '%s' to 'hosts', or remove "
				 "its 'on' section", r->hosts[h].name);
			perr(ps, hosts->loc, hint, "connection-mesh leaves out host '%s'", r->hosts[h].name);
			return -1;
		}
	}
	r->has_mesh = 1;
	r->mesh_loc = m->loc;
	for (int a = 0; a < r->nhosts; a++) {
		for (int b = a + 1; b < r->nhosts; b++) {
			struct cfg_conn *c = (struct cfg_conn *)cfg_find_conn(r, r->hosts[a].name, r->hosts[b].name);
			struct cfg_section own = { 0 };
			if (!c) {
				r->conns = xrealloc(r->conns, sizeof(struct cfg_conn) * (size_t)(r->nconns + 1));
				c = &r->conns[r->nconns++];
				memset(c, 0, sizeof *c);
				c->host[0] = a;
				c->host[1] = b;
				c->from_mesh = 1;
				c->loc = m->loc;
			}
			own = c->sect[SECT_NET];
			memset(&c->sect[SECT_NET], 0, sizeof c->sect[SECT_NET]);
			copy_section(&c->sect[SECT_NET], &r->mesh_net);
			copy_section(&c->sect[SECT_NET], &own);
			free_section(&own);
		}
	}
	return 0;
}

static const struct cfg_opt *sect_find(const struct cfg_section *s, const char *key)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->opts[i].key, key))
			return &s->opts[i];
	return NULL;
}

/* quorum off|majority|all|N, resolved to the votes needed: every host,
 * with or without a disk, has one vote. */
static void interp_quorum(struct parser *ps, struct cfg_resource *r)
{
	const struct cfg_opt *q = sect_find(&r->sect[SECT_OPTIONS], "quorum");
	const struct cfg_opt *oq = sect_find(&r->sect[SECT_OPTIONS], "on-no-quorum");
	long n;
	r->quorum_io_error = oq && !strcmp(oq->val, "io-error");
	if (!q || !strcmp(q->val, "off"))
		return;
	if (!strcmp(q->val, "majority")) {
		r->quorum = Q_MAJORITY;
		r->quorum_votes = r->nhosts / 2 + 1;
	} else if (!strcmp(q->val, "all")) {
		r->quorum = Q_ALL;
		r->quorum_votes = r->nhosts;
	} else if (!parse_int(q->val, 1, 32, &n)) {
		if (n > r->nhosts) {
			char hint[160];
			snprintf(hint, sizeof hint, "resource '%s' has %d hosts; use majority, all or a number up to %d",
				 r->name, r->nhosts, r->nhosts);
			perr(ps, q->loc, hint, "quorum %ld can never be met", n);
			return;
		}
		r->quorum = Q_FIXED;
		r->quorum_votes = (int)n;
		if (n <= r->nhosts / 2)
			pwarn(ps, q->loc, "quorum %ld of %d hosts is not a majority: two partitions can both have "
					  "quorum and write (split brain); use 'quorum majority'", n, r->nhosts);
	} else {
		perr(ps, q->loc, "write: quorum off; quorum majority; quorum all; or quorum N;",
		     "expected off, majority, all or a number for 'quorum', found '%s'", q->val);
		return;
	}
	if (r->nhosts < 3)
		pwarn(ps, q->loc, "quorum with %d hosts: losing any host stops I/O; add a third host (a diskless "
				  "tiebreaker: 'disk none;') so one side can go on", r->nhosts);
}

/* A new resource named by n, or NULL (reported) when n is malformed or
 * the name is taken. */
static struct cfg_resource *res_new(struct parser *ps, const struct node *n)
{
	struct cfg *cfg = ps->cfg;
	struct cfg_resource *r;

	if (!n->block || n->nargs != 1) {
		perr(ps, n->loc, "write: resource NAME { ... }", "expected 'resource NAME {', found %s",
		     n->nargs != 1 ? "no name or several" : "';'");
		return NULL;
	}
	for (int i = 0; i < cfg->nres; i++) {
		if (!strcmp(cfg->res[i].name, n->args[0].text)) {
			char hint[128];
			snprintf(hint, sizeof hint, "first defined at %s:%d", cfg->res[i].loc.file, cfg->res[i].loc.line);
			perr(ps, n->args[0].loc, hint, "resource '%s' defined twice", n->args[0].text);
			return NULL;
		}
	}
	cfg->res = xrealloc(cfg->res, sizeof(struct cfg_resource) * (size_t)(cfg->nres + 1));
	r = &cfg->res[cfg->nres++];
	memset(r, 0, sizeof *r);
	r->name = xstrdup(n->args[0].text);
	r->loc = n->loc;
	return r;
}

/* Each host's volume, disk, meta-disk and node-id defaults, once the
 * whole resource is read.  0, or -1 with the error reported. */
static int res_hosts(struct parser *ps, struct cfg_resource *r, struct vols *hvols, const struct vols *rvols,
		     const struct dev_disk *dd)
{
	const struct cfg_host *h0 = &r->hosts[0];
	int v0 = 0;

	for (int i = 0; i < r->nhosts; i++) {
		struct cfg_host *h = &r->hosts[i];
		if (resolve_volumes(ps, r, h, &hvols[i], rvols, dd))
			return -1;
		if (!h->meta_disk)
			h->meta_disk = xstrdup("internal");
		if (h->node_id < 0)
			h->node_id = i;
		if (!h->disk) {
			perr(ps, h->loc, "set 'disk PATH;' (or 'disk none;' for a diskless tiebreaker) in this section, "
			     "its 'volume N { }' or the resource",
			     "'%s %s' has no backing disk", h->floating ? "floating" : "on", h->name);
			return -1;
		}
		h->diskless = !strcmp(h->disk, "none");
		int v = h->volume < 0 ? 0 : h->volume;
		if (!i)
			v0 = v;
		if (v != v0) {
			char hint[256];
			snprintf(hint, sizeof hint, "'%s' has volume %d; give every host the same volume number, or each "
				 "volume a resource of its own", h0->name, v0);
			perr(ps, h->loc, hint, "resource '%s' has more than one volume ('%s' has volume %d); dipole supports "
			     "one volume per resource for now", r->name, h->name, v);
			return -1;
		}
	}
	return 0;
}

/* Every host has an address, a name and a node-id of its own.  0, or -1
 * with the error reported. */
static int res_hosts_distinct(struct parser *ps, const struct cfg_resource *r)
{
	for (int i = 0; i < r->nhosts; i++) {
		const struct cfg_host *h = &r->hosts[i];
		if (!h->address) {
			perr(ps, h->loc, "add 'address IP:PORT;' here, or 'host NAME address IP:PORT;' in a connection "
			     "section (the replication address of this node)", "'on %s' has no address", h->name);
			return -1;
		}
		for (int j = 0; j < i; j++) {
			if (!strcmp(r->hosts[j].name, h->name)) {
				perr(ps, h->loc, NULL, "host '%s' appears twice in resource '%s'", h->name, r->name);
				return -1;
			}
			if (r->hosts[j].node_id == h->node_id) {
				char hint[160];
				snprintf(hint, sizeof hint, "give each host its own 'node-id N;' (%s has %d)",
					 r->hosts[j].name, h->node_id);
				perr(ps, h->loc, hint, "node-id %d of '%s' collides with host '%s'", h->node_id,
				     h->name, r->hosts[j].name);
				return -1;
			}
		}
	}
	return 0;
}

static void interp_resource(struct parser *ps, const struct node *n, const struct cfg_section *common)
{
	struct cfg_resource *r;
	struct cfg_section own[SECT_COUNT] = { 0 };
	struct dev_disk dd = { 0 };
	const struct node *mesh = NULL;
	const struct node **conns = NULL;
	int nconns = 0;
	struct vols rvols = { 0 }, *hvols = NULL;
	int nhvols = 0;

	if (!(r = res_new(ps, n)))
		return;

	for (int i = 0; i < n->nkids && !ps->failed; i++) {
		const struct node *k = &n->kids[i];
		int s = sect_from_name(k->key);
		if (s >= 0 && k->block) {
			interp_section(ps, k, (enum cfg_sect)s, &own[s]);
		} else if (interp_dev_disk(ps, k, &dd) || interp_legacy(ps, k, own)) {
			continue;
		} else if (!strcmp(k->key, "on") || !strcmp(k->key, "floating")) {
			hvols = xrealloc(hvols, sizeof(struct vols) * (size_t)(nhvols + 1));
			memset(&hvols[nhvols], 0, sizeof hvols[nhvols]);
			interp_host(ps, k, r, &hvols[nhvols++], &own[SECT_DISK], k->key[0] == 'f');
		} else if (!strcmp(k->key, "volume")) {
			interp_volume(ps, k, &rvols, &own[SECT_DISK]);
		} else if (!strcmp(k->key, "connection-mesh")) {
			mesh = k;
		} else if (!strcmp(k->key, "connection")) {
			conns = xrealloc(conns, sizeof(*conns) * (size_t)(nconns + 1));
			conns[nconns++] = k;
		} else if (!strcmp(k->key, "stacked-on-top-of")) {
			pwarn(ps, k->loc, "'%s' (stacked resources) is not supported by dipole; ignored", k->key);
		} else if (s >= 0) {
			perr(ps, k->loc, NULL, "expected '{' after '%s'", k->key);
		} else {
			pwarn(ps, k->loc, "unknown option '%s' in resource '%s' ignored", k->key, r->name);
		}
	}
	/* inherit: common first, resource values override */
	for (int s = 0; s < SECT_COUNT; s++) {
		copy_section(&r->sect[s], &common[s]);
		copy_section(&r->sect[s], &own[s]);
		free_section(&own[s]);
	}
	if (ps->failed)
		goto out;
	if (r->nhosts == 0) {
		perr(ps, n->loc, "add one 'on HOST { address IP:PORT; disk PATH; }' per node",
		     "resource '%s' has no 'on HOST' section", r->name);
		goto out;
	}
	if (res_hosts(ps, r, hvols, &rvols, &dd))
		goto out;
	for (int i = 0; i < nconns && !ps->failed; i++)
		interp_conn(ps, conns[i], r);
	if (ps->failed)
		goto out;
	conn_addresses(ps, r);
	if (res_hosts_distinct(ps, r))
		goto out;
	if (mesh && interp_mesh(ps, mesh, r))
		goto out;
	interp_quorum(ps, r);
out:
	free(dd.disk);
	free(dd.device);
	free(dd.meta_disk);
	free(conns);
	vols_free(&rvols);
	for (int i = 0; i < nhvols; i++)
		vols_free(&hvols[i]);
	free(hvols);
}

/* A disk belongs to one volume of one resource on a host: two resources (or
 * volumes) naming the same disk for the same host would overwrite each
 * other's data and metadata. */
static void check_disk_claims(struct parser *ps)
{
	const struct cfg *cfg = ps->cfg;
	for (int i = 0; i < cfg->nres; i++)
		for (int h = 0; h < cfg->res[i].nhosts; h++)
			for (int j = 0; j < i; j++)
				for (int g = 0; g < cfg->res[j].nhosts; g++) {
					const struct cfg_host *a = &cfg->res[i].hosts[h], *b = &cfg->res[j].hosts[g];
					if (a->diskless || b->diskless || strcmp(a->name, b->name) || strcmp(a->disk, b->disk))
						continue;
					char hint[256];
					snprintf(hint, sizeof hint, "resource '%s' claims it at %s:%d:%d; each volume needs "
						 "a disk of its own", cfg->res[j].name, b->disk_loc.file, b->disk_loc.line,
						 b->disk_loc.col);
					perr(ps, a->disk_loc.file ? a->disk_loc : a->loc, hint, "disk '%s' of host '%s' in "
					     "resource '%s' is already claimed by resource '%s'", a->disk, a->name,
					     cfg->res[i].name, cfg->res[j].name);
					return;
				}
}

static void interp_top(struct parser *ps, struct node *nodes, int n)
{
	struct cfg_section common[SECT_COUNT] = { 0 };
	char d[64];

	/* common applies to every resource wherever it appears, so read it first */
	for (int i = 0; i < n && !ps->failed; i++) {
		struct node *k = &nodes[i];
		if (!strcmp(k->key, "common")) {
			if (!k->block || k->nargs) {
				perr(ps, k->loc, NULL, "expected 'common {'");
				break;
			}
			for (int j = 0; j < k->nkids && !ps->failed; j++) {
				struct node *c = &k->kids[j];
				int s = sect_from_name(c->key);
				if (s >= 0 && c->block)
					interp_section(ps, c, (enum cfg_sect)s, &common[s]);
				else if (!interp_legacy(ps, c, common))
					pwarn(ps, c->loc, "unknown section '%s' in common ignored", c->key);
			}
		} else if (!strcmp(k->key, "global")) {
			if (!k->block || k->nargs) {
				perr(ps, k->loc, NULL, "expected 'global {'");
				break;
			}
			for (int j = 0; j < k->nkids && !ps->failed; j++)
				interp_option(ps, "global", global_opts, &k->kids[j], &ps->cfg->global);
		}
	}
	for (int i = 0; i < n && !ps->failed; i++) {
		struct node *k = &nodes[i];
		if (!strcmp(k->key, "resource"))
			interp_resource(ps, k, common);
		else if (strcmp(k->key, "common") && strcmp(k->key, "global") && strcmp(k->key, "skeleton")) {
			struct tok t = { .type = T_WORD, .text = k->key };
			perr(ps, k->loc, "the top level holds only global, common, resource and include",
			     "expected a section (global, common, resource) or include, found %s",
			     tok_desc(&t, d, sizeof d));
		}
	}
	if (!ps->failed)
		check_disk_claims(ps);
	for (int s = 0; s < SECT_COUNT; s++)
		free_section(&common[s]);
}

static int finish(struct parser *ps, struct node *nodes, int n, struct cfg **out)
{
	if (!ps->failed)
		interp_top(ps, nodes, n);
	nodes_free(nodes, n);
	if (ps->failed) {
		/* the warnings first: an ignored statement is often the real cause */
		struct cfg *c = ps->cfg;
		if (c->nwarnings) {
			char *e = xstrdup(ps->err);
			size_t el = strlen(e), len = 0;
			int i;
			for (i = 0; i < c->nwarnings; i++) {
				size_t wl = strlen(c->warnings[i]);
				if (len + wl + 1 + el + 64 >= CFG_ERR_MAX)
					break;
				memcpy(ps->err + len, c->warnings[i], wl);
				len += wl;
				ps->err[len++] = '\n';
			}
			if (i < c->nwarnings)
				len += (size_t)snprintf(ps->err + len, CFG_ERR_MAX - len, "(%d more warnings)\n",
							c->nwarnings - i);
			snprintf(ps->err + len, CFG_ERR_MAX - len, "%s", e);
			free(e);
		}
		cfg_free(c);
		return -EINVAL;
	}
	*out = ps->cfg;
	return 0;
}

int cfg_parse_file(const char *path, struct cfg **out, char *err)
{
	struct parser ps = { .cfg = xcalloc(1, sizeof(struct cfg)), .err = err, .allow_include = 1 };
	struct node *nodes = NULL;
	int n = 0;
	struct cfg_loc none = { 0 };

	err[0] = 0;
	int rc = parse_file_nodes(&ps, path, &nodes, &n, none);
	if (rc && rc != -1 && !ps.failed) {
		snprintf(err, CFG_ERR_MAX, "%s: %s", path, strerror(-rc));
		ps.failed = 1;
	}
	rc = finish(&ps, nodes, n, out);
	return rc;
}

int cfg_parse_buffer(const char *name, const char *buf, size_t len, int allow_include,
		     struct cfg **out, char *err)
{
	struct parser ps = { .cfg = xcalloc(1, sizeof(struct cfg)), .err = err, .allow_include = allow_include };
	struct node *nodes = NULL;
	int n = 0;

	err[0] = 0;
	parse_text(&ps, name, buf, len, "/", &nodes, &n);
	return finish(&ps, nodes, n, out);
}

void cfg_free(struct cfg *cfg)
{
	if (!cfg)
		return;
	free_section(&cfg->global);
	for (int i = 0; i < cfg->nres; i++) {
		struct cfg_resource *r = &cfg->res[i];
		free(r->name);
		for (int s = 0; s < SECT_COUNT; s++)
			free_section(&r->sect[s]);
		for (int c = 0; c < r->nconns; c++) {
			free(r->conns[c].name);
			for (int k = 0; k < 2; k++) {
				free(r->conns[c].address[k]);
				free(r->conns[c].af[k]);
			}
			for (int s = 0; s < SECT_COUNT; s++)
				free_section(&r->conns[c].sect[s]);
		}
		free(r->conns);
		free_section(&r->mesh_net);
		for (int h = 0; h < r->nhosts; h++) {
			free(r->hosts[h].name);
			free(r->hosts[h].address);
			free(r->hosts[h].af);
			free(r->hosts[h].disk);
			free(r->hosts[h].device);
			free(r->hosts[h].meta_disk);
			free(r->hosts[h].nbd_address);
			free(r->hosts[h].metrics_address);
		}
		free(r->hosts);
	}
	free(cfg->res);
	for (int i = 0; i < cfg->nfiles; i++)
		free(cfg->files[i]);
	free(cfg->files);
	for (int i = 0; i < cfg->nwarnings; i++)
		free(cfg->warnings[i]);
	free(cfg->warnings);
	free(cfg);
}

const struct cfg_resource *cfg_find_res(const struct cfg *cfg, const char *name)
{
	for (int i = 0; i < cfg->nres; i++)
		if (!strcmp(cfg->res[i].name, name))
			return &cfg->res[i];
	return NULL;
}

const struct cfg_host *cfg_find_host(const struct cfg_resource *res, const char *node)
{
	for (int i = 0; i < res->nhosts; i++)
		if (!strcmp(res->hosts[i].name, node))
			return &res->hosts[i];
	return NULL;
}

void cfg_host_names(const struct cfg_resource *res, uint64_t nodes, char *buf, size_t len)
{
	size_t n = 0;
	if (len)
		buf[0] = 0;
	for (int i = 0; i < res->nhosts && n < len; i++) {
		int id = res->hosts[i].node_id;
		if (id >= 0 && id < 64 && (nodes & (1ULL << id)))
			n += (size_t)snprintf(buf + n, len - n, " %s", res->hosts[i].name);
	}
}

const char *cfg_get(const struct cfg_resource *res, enum cfg_sect s, const char *key)
{
	return sect_get(&res->sect[s], key);
}

const struct cfg_opt *cfg_get_opt(const struct cfg_resource *res, enum cfg_sect s, const char *key)
{
	for (int i = 0; i < res->sect[s].n; i++)
		if (!strcmp(res->sect[s].opts[i].key, key))
			return &res->sect[s].opts[i];
	return NULL;
}

int cfg_get_bool(const struct cfg_resource *res, enum cfg_sect s, const char *key)
{
	const char *v = cfg_get(res, s, key);
	return v && strcmp(v, "no") != 0;
}

const struct cfg_conn *cfg_find_conn(const struct cfg_resource *res, const char *a, const char *b)
{
	int ia = host_index(res, a), ib = host_index(res, b);
	for (int i = 0; ia >= 0 && ib >= 0 && i < res->nconns; i++) {
		const struct cfg_conn *c = &res->conns[i];
		if ((c->host[0] == ia && c->host[1] == ib) || (c->host[0] == ib && c->host[1] == ia))
			return c;
	}
	return NULL;
}

const char *cfg_conn_get(const struct cfg_resource *res, const char *a, const char *b, enum cfg_sect s,
			 const char *key)
{
	const struct cfg_conn *c = cfg_find_conn(res, a, b);
	const char *v = c ? sect_get(&c->sect[s], key) : NULL;
	return v ? v : cfg_get(res, s, key);
}

static void dump_value(struct strbuf *sb, const char *v)
{
	int plain = *v != 0;
	for (const char *p = v; *p; p++)
		if (!is_word_char(*p) || *p == '#')
			plain = 0;
	if (plain) {
		strbuf_printf(sb, "%s", v);
		return;
	}
	strbuf_printf(sb, "\"");
	for (const char *p = v; *p; p++) {
		if (*p == '\n')
			strbuf_printf(sb, "\\n"); /* a raw newline would end the string */
		else if (*p == '\t')
			strbuf_printf(sb, "\\t");
		else
			strbuf_printf(sb, *p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
	}
	strbuf_printf(sb, "\"");
}

static int words_plain(const char *v)
{
	for (; *v; v++)
		if (*v != ' ' && (!is_word_char(*v) || *v == '#'))
			return 0;
	return 1;
}

static const struct optspec *find_spec(const struct optspec *tab, const char *key)
{
	for (; tab && tab->key; tab++)
		if (!strcmp(tab->key, key))
			return tab;
	return NULL;
}

static void dump_section(struct strbuf *sb, const char *name, const struct cfg_section *s, const char *ind,
			 const struct optspec *tab)
{
	if (!s->n)
		return;
	strbuf_printf(sb, "%s%s {\n", ind, name);
	for (int i = 0; i < s->n; i++) {
		const struct optspec *spec = find_spec(tab, s->opts[i].key);
		const char *v = s->opts[i].val;
		strbuf_printf(sb, "%s    %s", ind, s->opts[i].key);
		/* a flag without value prints bare; any other option prints its
		 * value, even an empty one (as "") */
		if (*v || (spec && spec->kind != K_FLAG)) {
			strbuf_printf(sb, " ");
			/* several plain words (become-primary-on a b) print as words;
			 * everything else as one quoted value, so the dump parses back */
			if (spec && spec->kind == K_ANY && strchr(v, ' ') && words_plain(v))
				strbuf_printf(sb, "%s", v);
			else
				dump_value(sb, v);
		}
		strbuf_printf(sb, ";\n");
	}
	strbuf_printf(sb, "%s}\n", ind);
}

/* One resource, normalized: what `dump` prints for it after its location
 * comment (and what the configuration digest is taken of). */
static void dump_resource(struct strbuf *sb, const struct cfg_resource *r)
{
	strbuf_printf(sb, "resource %s {\n", r->name);
	for (int s = 0; s < SECT_COUNT; s++)
		dump_section(sb, sect_names[s], &r->sect[s], "    ", sect_tables[s]);
	for (int h = 0; h < r->nhosts; h++) {
		const struct cfg_host *ho = &r->hosts[h];
		const char *vi = ho->volume >= 0 ? "            " : "        ";
		if (ho->floating)
			strbuf_printf(sb, "    floating %s %s {\n", ho->af, ho->address);
		else
			strbuf_printf(sb, "    on %s {\n", ho->name);
		strbuf_printf(sb, "        node-id %d;\n", ho->node_id);
		if (!ho->floating)
			strbuf_printf(sb, "        address %s %s;\n", ho->af, ho->address);
		if (ho->nbd_address)
			strbuf_printf(sb, "        nbd-address %s;\n", ho->nbd_address);
		if (ho->metrics_address)
			strbuf_printf(sb, "        metrics-address %s;\n", ho->metrics_address);
		if (ho->volume >= 0)
			strbuf_printf(sb, "        volume %d {\n", ho->volume);
		strbuf_printf(sb, "%sdisk ", vi);
		dump_value(sb, ho->disk);
		strbuf_printf(sb, ";\n");
		if (ho->device) {
			strbuf_printf(sb, "%sdevice ", vi);
			dump_value(sb, ho->device);
			strbuf_printf(sb, ";\n");
		}
		strbuf_printf(sb, "%smeta-disk %s;\n", vi, ho->meta_disk);
		if (ho->volume >= 0)
			strbuf_printf(sb, "        }\n");
		strbuf_printf(sb, "    }\n");
	}
	for (int c = 0; c < r->nconns; c++) {
		const struct cfg_conn *co = &r->conns[c];
		if (co->from_mesh)
			continue;
		strbuf_printf(sb, "    connection%s%s {\n", co->name ? " " : "", co->name ? co->name : "");
		for (int k = 0; k < 2; k++) {
			strbuf_printf(sb, "        host %s", r->hosts[co->host[k]].name);
			if (co->address[k])
				strbuf_printf(sb, " address %s %s", co->af[k], co->address[k]);
			strbuf_printf(sb, ";\n");
		}
		for (int s = 0; s < SECT_COUNT; s++)
			dump_section(sb, sect_names[s], &co->sect[s], "        ", sect_tables[s]);
		strbuf_printf(sb, "    }\n");
	}
	if (r->has_mesh) {
		strbuf_printf(sb, "    connection-mesh {\n        hosts");
		for (int h = 0; h < r->nhosts; h++)
			strbuf_printf(sb, " %s", r->hosts[h].name);
		strbuf_printf(sb, ";\n");
		dump_section(sb, "net", &r->mesh_net, "        ", net_opts);
		strbuf_printf(sb, "    }\n");
	}
	strbuf_printf(sb, "}\n");
}

char *cfg_dump_resource(const struct cfg_resource *r)
{
	struct strbuf sb = { 0 };
	strbuf_printf(&sb, "%s", "");
	dump_resource(&sb, r);
	return sb.buf;
}

char *cfg_dump(const struct cfg *cfg, const char *res)
{
	struct strbuf sb = { 0 };

	strbuf_printf(&sb, "%s", "");
	if (!res && cfg->global.n) {
		dump_section(&sb, "global", &cfg->global, "", global_opts);
		strbuf_printf(&sb, "\n");
	}
	for (int i = 0; i < cfg->nres; i++) {
		const struct cfg_resource *r = &cfg->res[i];
		if (res && strcmp(res, r->name))
			continue;
		strbuf_printf(&sb, "# resource %s from %s:%d\n", r->name, r->loc.file, r->loc.line);
		dump_resource(&sb, r);
	}
	return sb.buf;
}

int cfg_disk_hosts(const struct cfg_resource *r)
{
	int n = 0;
	for (int i = 0; i < r->nhosts; i++)
		n += !r->hosts[i].diskless;
	return n;
}

/* Fencing set (not dont-care) between every pair of disk hosts. */
static int fencing_everywhere(const struct cfg_resource *r)
{
	int pairs = 0;
	for (int i = 0; i < r->nhosts; i++)
		for (int j = i + 1; j < r->nhosts; j++) {
			const char *a = r->hosts[i].name, *b = r->hosts[j].name, *v;
			if (r->hosts[i].diskless || r->hosts[j].diskless)
				continue;
			if (!(v = cfg_conn_get(r, a, b, SECT_NET, "fencing")))
				v = cfg_conn_get(r, a, b, SECT_DISK, "fencing");
			if (!v || !strcmp(v, "dont-care"))
				return 0;
			pairs++;
		}
	return pairs > 0;
}

enum cfg_failover cfg_failover(const struct cfg_resource *r)
{
	if (r->quorum != Q_OFF) {
		/* the votes of every host but a dead one must still suffice */
		if (r->nhosts < 3 || r->nhosts - 1 < r->quorum_votes || cfg_disk_hosts(r) < 2)
			return CFG_FO_NONE;
		return cfg_disk_hosts(r) < r->nhosts ? CFG_FO_TIEBREAKER : CFG_FO_QUORUM;
	}
	if (cfg_disk_hosts(r) >= 2 && cfg_get(r, SECT_HANDLERS, "fence-peer") && fencing_everywhere(r))
		return CFG_FO_FENCING;
	return CFG_FO_NONE;
}

int cfg_ping_ms(const struct cfg_resource *r, int ping_int_ms)
{
	int failover = r->quorum != Q_OFF || cfg_failover(r) == CFG_FO_FENCING;
	return failover && ping_int_ms > CFG_FAILOVER_PING_MS ? CFG_FAILOVER_PING_MS : ping_int_ms;
}

const char *cfg_failover_name(enum cfg_failover f)
{
	static const char *const n[] = { "none", "tiebreaker", "quorum", "fencing" };
	return (unsigned)f < sizeof n / sizeof n[0] ? n[f] : "none";
}

/* Is `prog` (a path, or a name looked up in PATH as /bin/sh would) an
 * executable regular file? */
static int executable(const char *prog)
{
	struct stat st;
	if (strchr(prog, '/'))
		return stat(prog, &st) == 0 && S_ISREG(st.st_mode) && access(prog, X_OK) == 0;
	const char *path = getenv("PATH");
	char dir[4096];
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t l = strcspn(p, ":");
		snprintf(dir, sizeof dir, "%.*s/%s", (int)l, p, prog);
		if (stat(dir, &st) == 0 && S_ISREG(st.st_mode) && access(dir, X_OK) == 0)
			return 1;
		p += l + (p[l] == ':');
	}
	return 0;
}

int cfg_check_handlers(const struct cfg_resource *r, char *err)
{
	const struct cfg_section *s = &r->sect[SECT_HANDLERS];
	for (int i = 0; i < s->n; i++) {
		const struct cfg_opt *o = &s->opts[i];
		char prog[1024];
		size_t l = strcspn(o->val + strspn(o->val, " \t"), " \t");
		snprintf(prog, sizeof prog, "%.*s", (int)l, o->val + strspn(o->val, " \t"));
		if (!prog[0]) {
			snprintf(err, CFG_ERR_MAX, "%s:%d:%d: handler '%s' is empty\n  hint: name a program, e.g. %s "
				 "\"/usr/local/sbin/notify.sh\";", o->loc.file, o->loc.line, o->loc.col, o->key, o->key);
			return -EINVAL;
		}
		/* shell builtins that scripts use as handlers */
		if (!strcmp(prog, "true") || !strcmp(prog, "false") || !strcmp(prog, "exit") || !strcmp(prog, "echo"))
			continue;
		if (!executable(prog)) {
			struct stat st;
			int exists = strchr(prog, '/') && stat(prog, &st) == 0;
			snprintf(err, CFG_ERR_MAX, "%s:%d:%d: handler '%s': %s '%s'\n  hint: %s", o->loc.file, o->loc.line,
				 o->loc.col, o->key, exists ? "not an executable file:" : "program not found:", prog,
				 exists ? "chmod +x it, or fix the path" : "give the full path of an executable program");
			return -EINVAL;
		}
	}
	return 0;
}

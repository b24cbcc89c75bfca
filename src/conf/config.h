/* config — DRBD resource-file syntax (drbd.conf(5)) parsed into plain structs.
 *
 * Parsing has no side effects beyond reading the named file and the files its
 * `include "glob";` statements name. The same code serves the daemon, the CLI
 * and the fuzzer. Errors are reported as "file:line:col: expected X, found Y"
 * plus a hint; options dipole does not implement are kept and reported as
 * warnings (never silently dropped). Options from `common` are inherited by
 * every resource unless the resource sets them itself; resource-level `disk`,
 * `device` and `meta-disk` are inherited by each `on HOST` section.
 *
 * Not thread-safe per object; a parsed struct cfg is read-only afterwards.
 */
#ifndef DIPOLE_CONFIG_H
#define DIPOLE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct cfg_loc {
	const char *file; /* owned by struct cfg (files[]) */
	int line, col;
};

/* One "key value...;" statement. val holds the values joined by one space
 * (empty string for a flag such as allow-two-primaries). */
struct cfg_opt {
	char *key;
	char *val;
	struct cfg_loc loc;
};

enum cfg_sect { SECT_NET, SECT_DISK, SECT_STARTUP, SECT_HANDLERS, SECT_OPTIONS, SECT_COUNT };

struct cfg_section {
	struct cfg_opt *opts;
	int n;
};

struct cfg_host {
	char *name;
	char *address;     /* "IP:PORT" (IPv6 in brackets), NULL if absent */
	char *af;          /* "ipv4" or "ipv6" */
	char *disk;        /* backing disk path */
	char *device;      /* device path users open (a symlink to the loop device) */
	char *meta_disk;   /* "internal" (only supported value) */
	char *nbd_address; /* optional "IP:PORT" to also export NBD over TCP */
	int node_id;       /* explicit, else the index of the on-section */
	int diskless;      /* `disk none;`: no backing store (tiebreaker or diskless client) */
	struct cfg_loc loc;
};

/* options { quorum ...; on-no-quorum ...; } resolved against the host count */
enum cfg_quorum { Q_OFF, Q_MAJORITY, Q_ALL, Q_FIXED };

struct cfg_resource {
	char *name;
	struct cfg_loc loc;
	struct cfg_section sect[SECT_COUNT]; /* after inheritance from common */
	struct cfg_host *hosts;
	int nhosts;
	int has_mesh;       /* a connection-mesh was given (it names every host) */
	struct cfg_loc mesh_loc;
	enum cfg_quorum quorum;
	int quorum_votes;   /* votes needed (self included); 0 when quorum is off */
	int quorum_io_error; /* on-no-quorum io-error (else suspend-io) */
};

struct cfg {
	struct cfg_section global;
	struct cfg_resource *res;
	int nres;
	char **files;   /* every file read, for locations */
	int nfiles;
	char **warnings; /* "file:line:col: warning: ..." */
	int nwarnings;
};

#define CFG_ERR_MAX 1024

/* Parse a file (following includes). On error returns -EINVAL (syntax or
 * validation) or -errno (I/O), and writes a complete, human message into
 * err[CFG_ERR_MAX]. On success *out must be freed with cfg_free(). */
int cfg_parse_file(const char *path, struct cfg **out, char *err);
/* Parse an in-memory buffer named `name`; `include` statements are refused
 * unless allow_include (the fuzzer never allows them). */
int cfg_parse_buffer(const char *name, const char *buf, size_t len, int allow_include,
		     struct cfg **out, char *err);
void cfg_free(struct cfg *cfg);

/* Find a resource by name; NULL if absent. */
const struct cfg_resource *cfg_find_res(const struct cfg *cfg, const char *name);
/* Find the on-section for host `node`; NULL if absent. */
const struct cfg_host *cfg_find_host(const struct cfg_resource *res, const char *node);
/* Value of `key` in a section of the resource, or NULL. Flags return "". */
const char *cfg_get(const struct cfg_resource *res, enum cfg_sect s, const char *key);
/* Boolean option: flag present, or "yes"/"no". */
int cfg_get_bool(const struct cfg_resource *res, enum cfg_sect s, const char *key);

/* Checks that need the file system, made by `up` and `dump` (parsing has
 * no side effects): every configured handler names an executable program.
 * Returns 0, or -EINVAL with "file:line:col: ..." in err[CFG_ERR_MAX]. */
int cfg_check_handlers(const struct cfg_resource *r, char *err);
/* Number of hosts with a disk. */
int cfg_disk_hosts(const struct cfg_resource *r);

/* Print the normalized configuration (all resources if res == NULL) to a
 * malloc'd string. */
char *cfg_dump(const struct cfg *cfg, const char *res);

const char *cfg_sect_name(enum cfg_sect s);

#endif

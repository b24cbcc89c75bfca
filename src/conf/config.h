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
 * Every shape of DRBD 8.4 and 9 parses into this one model: `volume N { }`
 * (one volume per resource for now) fills the host's disk/device/meta-disk;
 * `floating IP:PORT { }` is a host named by its IP; `connection { host A
 * [address ..]; host B ..; net { } }` and `connection-mesh { hosts ..; net
 * { } }` become struct cfg_conn, whose options override the resource's for
 * that pair (cfg_conn_get); an address given there also fills the host's
 * address. DRBD 8.3 spellings (`protocol` at resource/common level, `syncer
 * { }`, `flexible-meta-disk`, `no-disk-flushes`, `outdate-peer`) are mapped
 * to today's options with a deprecation warning. `skip { }` is dropped
 * anywhere. Values are normalized: sizes to an explicit unit, digest names
 * (the kernel crypto API's) to the name dipole computes.
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
	char *metrics_address; /* optional "IP:PORT": the Prometheus endpoint (docs/metrics.md) */
	int node_id;       /* explicit, else the index of the on-section */
	int diskless;      /* `disk none;`: no backing store (tiebreaker or diskless client) */
	int volume;        /* `volume N` the disk was given in, -1 if given without one */
	int floating;      /* from `floating [af] IP:PORT { }`: name is the IP */
	struct cfg_loc loc;
	struct cfg_loc disk_loc; /* where the disk was named */
};

/* One connection between two hosts (DRBD 9 `connection`, or a pair of a
 * `connection-mesh`). sect[] holds only the options set for this pair (net:
 * its own over the mesh's; disk: the peer-device options); look them up with
 * cfg_conn_get(), which falls back to the resource's. */
struct cfg_conn {
	char *name;          /* `connection NAME`, or NULL */
	int host[2];         /* indices into cfg_resource.hosts */
	char *address[2];    /* address of host[i] for this pair, NULL if not given */
	char *af[2];
	struct cfg_section sect[SECT_COUNT];
	int from_mesh;       /* made from connection-mesh, not written out */
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
	struct cfg_conn *conns;
	int nconns;
	int has_mesh;       /* a connection-mesh was given (it names every host) */
	struct cfg_loc mesh_loc;
	struct cfg_section mesh_net; /* connection-mesh { net { } }: under every pair's own */
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

#define CFG_ERR_MAX 4096

/* Parse a file (following includes). On error returns -EINVAL (syntax or
 * validation) or -errno (I/O), and writes a complete, human message into
 * err[CFG_ERR_MAX]: the warnings collected before the error, one a line
 * ("file:line:col: warning: ..."), then the error and its hint (a warning is
 * often the real cause). On success *out must be freed with cfg_free(). */
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
/* The names of the hosts in `nodes` (bit n: node-id n, 0..63), each after
 * a space (" a b c"), into buf[len] (cut to fit); "" for none. */
void cfg_host_names(const struct cfg_resource *res, uint64_t nodes, char *buf, size_t len);
/* Value of `key` in a section of the resource, or NULL. Flags return "". */
const char *cfg_get(const struct cfg_resource *res, enum cfg_sect s, const char *key);
/* The same option with where it was given (for messages), or NULL. */
const struct cfg_opt *cfg_get_opt(const struct cfg_resource *res, enum cfg_sect s, const char *key);
/* Boolean option: flag present, or "yes"/"no". */
int cfg_get_bool(const struct cfg_resource *res, enum cfg_sect s, const char *key);
/* The connection between hosts a and b (either order), or NULL. */
const struct cfg_conn *cfg_find_conn(const struct cfg_resource *res, const char *a, const char *b);
/* Value of `key` for the pair a-b: the connection's value if it (or the
 * connection-mesh) sets one, else the resource's (cfg_get). NULL if set
 * nowhere. */
const char *cfg_conn_get(const struct cfg_resource *res, const char *a, const char *b, enum cfg_sect s,
			 const char *key);

/* Checks that need the file system, made by `up` and `dump` (parsing has
 * no side effects): every configured handler names an executable program.
 * Returns 0, or -EINVAL with "file:line:col: ..." in err[CFG_ERR_MAX]. */
int cfg_check_handlers(const struct cfg_resource *r, char *err);
/* Number of hosts with a disk. */
int cfg_disk_hosts(const struct cfg_resource *r);

/* What lets a surviving node take over from a dead Primary without an
 * operator, by the block layer's rules (docs/quorum.md, docs/fencing.md;
 * docs/dipolefs.md "Which nodes can take over"):
 *  CFG_FO_TIEBREAKER  quorum on, a diskless host among the voters, and the
 *                     hosts less any one still reach the votes needed
 *  CFG_FO_QUORUM      the same with three or more disks and no diskless host
 *  CFG_FO_FENCING     quorum off, every pair of disk hosts has `fencing`
 *                     (resource-only or resource-and-stonith, in net or
 *                     disk) and a `fence-peer` handler is configured
 *  CFG_FO_NONE        anything else (with two nodes, nothing decides which
 *                     of them may go on: the survivor does not take over).
 * Pure: reads the parsed resource only. */
enum cfg_failover { CFG_FO_NONE, CFG_FO_TIEBREAKER, CFG_FO_QUORUM, CFG_FO_FENCING };
enum cfg_failover cfg_failover(const struct cfg_resource *r);
/* "none", "tiebreaker", "quorum", "fencing" (status's "failover"). */
const char *cfg_failover_name(enum cfg_failover f);

/* Pings renew the leases (docs/quorum.md) and find a silent peer. On a
 * resource where a survivor may take over from a dead Primary — quorum on
 * (any mode), or CFG_FO_FENCING — they go out at least every
 * CFG_FAILOVER_PING_MS, whatever ping-int says: a lease lasts the ping
 * interval + ping-timeout, the survivor's writes wait it out, and a
 * power-cut peer is noticed within it (issue 14: failover within
 * ping-timeout + the mount's replay + 2 s with default settings). Anywhere
 * else DRBD's ping-int (default 10 s) applies. Every node computes the same
 * interval from the same configuration, as the lease rules need. */
#define CFG_FAILOVER_PING_MS 1000
/* The interval between pings in ms, given ping-int in ms (the resource's,
 * or a connection's own). Pure. */
int cfg_ping_ms(const struct cfg_resource *r, int ping_int_ms);

/* Print the normalized configuration (all resources if res == NULL) to a
 * malloc'd string. */
char *cfg_dump(const struct cfg *cfg, const char *res);

/* One resource as `dump` prints it, without its location comment: the
 * same text for the same meaning whatever file, layout or comments it came
 * from (what peers compare, docs/doctor.md). malloc'd. */
char *cfg_dump_resource(const struct cfg_resource *r);

const char *cfg_sect_name(enum cfg_sect s);

#endif

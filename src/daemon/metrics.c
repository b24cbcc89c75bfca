/* metrics — the resource's Prometheus endpoint (docs/metrics.md): off unless
 * `up --metrics-listen IP:PORT` or `metrics-address IP:PORT;` in this
 * node's `on` section asks for it.
 *
 * Names and labels follow the DRBD exporter existing dashboards read
 * (drbd-reactor's prometheus plugin: drbd_resource_*, drbd_device_*,
 * drbd_connection_*, drbd_peerdevice_*, enums as one 0/1 sample per state
 * with the state in a label named like the metric); what DRBD has no
 * metric for is dipole_*.
 *
 * The exposition is rendered on the HTTP server's thread (httpd.h) from
 * what `status --json` reads, the way the events thread reads it: the
 * engine's, bitmap's, activity log's and peers' atomics and quorum_have,
 * without taking a lock the data path takes, so a scrape never delays
 * I/O. The server starts after the peers and quorum exist and stops
 * before they go (daemon.c's steps), so d->peers and d->quorum hold still
 * while it runs. dipolefs is the main
 * thread's (d->fs comes and goes with mounts): the main thread renders
 * status's "fs" object into d->fs_view each time round its loop, and the
 * metrics read that copy under fs_view_lock.
 */
#include "daemon_int.h"
#include "al.h"
#include "fsevents.h"
#include "httpd.h"
#include "log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct mctx {
	struct daemon *d;
	struct strbuf *sb;
	char res[160];                 /* name="RES", escaped */
	char dev[320];                 /* the device labels: res, volume, minor */
	struct peer_metrics pv[MD_MAX_PEERS];
	char conn[MD_MAX_PEERS][320];  /* the connection labels of each peer */
};

/* a label value as the exposition format wants it: \, " and newline escaped */
static void label_value(char *out, size_t len, const char *v)
{
	size_t n = 0;
	for (; *v && n + 3 < len; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n')
			out[n++] = '\\';
		out[n++] = *v == '\n' ? 'n' : *v;
	}
	out[n] = 0;
}

static void family(struct mctx *m, const char *name, const char *type, const char *help)
{
	strbuf_printf(m->sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(struct mctx *m, const char *name, const char *labels, unsigned long long v)
{
	strbuf_printf(m->sb, "%s{%s} %llu\n", name, labels, v);
}

/* An enum as DRBD's exporter writes it: one sample per state, 1 for the
 * current one, the state in a label named like the metric. */
static void enum_samples(struct mctx *m, const char *name, const char *labels, const char *const *names, int n,
			 int cur)
{
	for (int i = 0; i < n; i++)
		strbuf_printf(m->sb, "%s{%s,%s=\"%s\"} %d\n", name, labels, name, names[i], i == cur);
}

static void resource_metrics(struct mctx *m)
{
	static const char *const roles[] = { "Secondary", "Primary" };
	struct engine *e = m->d->e;
	family(m, "drbd_resource_resources", "gauge", "Number of resources (one per dipole daemon)");
	strbuf_printf(m->sb, "drbd_resource_resources 1\n");
	family(m, "drbd_resource_role", "gauge", "DRBD role of the resource");
	enum_samples(m, "drbd_resource_role", m->res, roles, 2, atomic_load(&e->role));
	family(m, "drbd_resource_suspended", "gauge", "Boolean whether the resource's I/O is suspended");
	sample(m, "drbd_resource_suspended", m->res, (unsigned long long)engine_is_suspended(e));
	family(m, "dipole_resource_sent_bytes_total", "counter", "Replication bytes sent to all peers (DRBD's ns)");
	sample(m, "dipole_resource_sent_bytes_total", m->res, atomic_load(&e->st.sent_bytes));
	family(m, "dipole_resource_received_bytes_total", "counter",
	       "Replication bytes received from all peers (DRBD's nr)");
	sample(m, "dipole_resource_received_bytes_total", m->res, atomic_load(&e->st.received_bytes));
}

static void device_metrics(struct mctx *m)
{
	static const char *const disks[] = { "Diskless", "Attaching", "Failed", "Inconsistent",
					     "Outdated", "Consistent", "UpToDate" };
	struct engine *e = m->d->e;
	int ds = atomic_load(&e->dstate), client = m->d->h->diskless;
	family(m, "drbd_device_state", "gauge", "DRBD device (local disk) state");
	enum_samples(m, "drbd_device_state", m->dev, disks, 7, ds);
	family(m, "drbd_device_client", "gauge", "Boolean whether this node is intentionally diskless");
	sample(m, "drbd_device_client", m->dev, (unsigned long long)client);
	family(m, "drbd_device_unintentionaldiskless", "gauge", "Boolean whether the device lost its disk");
	sample(m, "drbd_device_unintentionaldiskless", m->dev, (unsigned long long)(!client && ds == DS_DISKLESS));
	family(m, "drbd_device_quorum", "gauge", "Boolean if this device has quorum (1 when quorum is off)");
	sample(m, "drbd_device_quorum", m->dev, (unsigned long long)quorum_have(m->d->quorum));
	family(m, "drbd_device_size_bytes", "gauge", "Device size in bytes");
	sample(m, "drbd_device_size_bytes", m->dev, atomic_load(&e->size));
	family(m, "drbd_device_read_bytes_total", "counter", "Net data read from the local disk");
	sample(m, "drbd_device_read_bytes_total", m->dev, atomic_load(&e->st.read_bytes));
	family(m, "drbd_device_written_bytes_total", "counter", "Net data written on the local disk");
	sample(m, "drbd_device_written_bytes_total", m->dev, atomic_load(&e->st.written_bytes));
	family(m, "drbd_device_alwrites_total", "counter", "Number of updates of the activity log");
	sample(m, "drbd_device_alwrites_total", m->dev, (unsigned long long)al_updates(e->al));
	family(m, "dipole_device_io_errors_total", "counter", "Local disk I/O errors since up");
	sample(m, "dipole_device_io_errors_total", m->dev, atomic_load(&e->st.io_errors));
}

/* One gauge or counter with a sample per peer: v(m, i). */
static void per_peer(struct mctx *m, const char *name, const char *type, const char *help,
		     unsigned long long (*v)(struct mctx *m, int i), int volume)
{
	family(m, name, type, help);
	for (int i = 0; i < m->d->npeers; i++) {
		char l[400];
		snprintf(l, sizeof l, "%s%s", m->conn[i], volume ? ",volume=\"0\"" : "");
		sample(m, name, l, v(m, i));
	}
}

static unsigned long long pv_oos(struct mctx *m, int i) { return m->pv[i].oos_bytes; }
static unsigned long long pv_split_brains(struct mctx *m, int i) { return m->pv[i].split_brains; }
/* with one peer, all replication traffic is with it (DRBD counts per peer) */
static unsigned long long pv_sent(struct mctx *m, int i) { (void)i; return atomic_load(&m->d->e->st.sent_bytes); }
static unsigned long long pv_recv(struct mctx *m, int i) { (void)i; return atomic_load(&m->d->e->st.received_bytes); }

static void peer_enums(struct mctx *m, const char *name, const char *help, const char *const *names, int n,
		       int which)
{
	family(m, name, "gauge", help);
	for (int i = 0; i < m->d->npeers; i++) {
		const struct peer_metrics *v = &m->pv[i];
		int cur = which == 0 ? v->cstate : which == 1 ? v->repl : which == 2 ? (v->role < 0 ? 2 : v->role)
										   : (v->disk < 0 ? 7 : v->disk);
		enum_samples(m, name, m->conn[i], names, n, cur);
	}
}

static void connection_metrics(struct mctx *m)
{
	static const char *const cstates[] = { "StandAlone", "Connecting", "Connected", "Disconnecting" };
	static const char *const repls[] = { "Off", "Established", "SyncSource", "SyncTarget", "StartingSyncT" };
	static const char *const roles[] = { "Secondary", "Primary", "Unknown" };
	static const char *const disks[] = { "Diskless", "Attaching", "Failed", "Inconsistent",
					     "Outdated", "Consistent", "UpToDate", "DUnknown" };
	if (!m->d->npeers)
		return;
	peer_enums(m, "drbd_connection_state", "DRBD connection state", cstates, 4, 0);
	peer_enums(m, "dipole_peerdevice_replication_state", "Replication state with this peer", repls, 5, 1);
	peer_enums(m, "dipole_connection_peer_role", "The peer's role as this node knows it", roles, 3, 2);
	peer_enums(m, "dipole_peerdevice_peer_disk_state", "The peer's disk state as this node knows it", disks, 8, 3);
	per_peer(m, "drbd_peerdevice_outofsync_bytes", "gauge",
		 "Number of bytes currently out of sync with this peer", pv_oos, 1);
	family(m, "dipole_peerdevice_resync_done_ratio", "gauge",
	       "Share of the device in sync with this peer, 0 to 1 (status's sync_done_percent / 100)");
	for (int i = 0; i < m->d->npeers; i++)
		strbuf_printf(m->sb, "dipole_peerdevice_resync_done_ratio{%s,volume=\"0\"} %.4f\n", m->conn[i],
			      m->pv[i].sync_done_percent / 100.0);
	per_peer(m, "dipole_connection_split_brains_total", "counter", "Split brains detected with this peer",
		 pv_split_brains, 0);
	if (m->d->npeers == 1) {
		per_peer(m, "drbd_peerdevice_sent_bytes", "counter", "Bytes sent to this peer", pv_sent, 1);
		per_peer(m, "drbd_peerdevice_received_bytes", "counter", "Bytes received from this peer", pv_recv, 1);
	}
}

/* ----------------------------------------------------- dipolefs view */

/* The value after `"key":` in the fs object (our own JSON: a key is
 * preceded by '{' or ',', which inside a string would be escaped). */
static const char *fs_field(const char *j, const char *key)
{
	char pat[64];
	for (const char *lead = "{,"; *lead; lead++) {
		snprintf(pat, sizeof pat, "%c\"%s\":", *lead, key);
		const char *p = strstr(j, pat);
		if (p)
			return p + strlen(pat);
	}
	return NULL;
}

/* a plain string value (names: no escapes in them) into out */
static void fs_string(const char *j, const char *key, char *out, size_t len)
{
	const char *p = fs_field(j, key);
	size_t n = 0;
	if (p && *p == '"')
		for (p++; *p && *p != '"' && n + 1 < len; p++)
			out[n++] = *p == '\\' && p[1] ? *++p : *p;
	out[n] = 0;
}

static unsigned long long fs_clients(const char *j)
{
	const char *p = fs_field(j, "clients");
	unsigned long long n = 0;
	if (!p || *p != '[')
		return 0;
	/* strings in the array: count the opening quotes, skipping escaped ones */
	for (int in = 0; *++p && (in || *p != ']');) {
		if (in && *p == '\\' && p[1])
			p++;
		else if (*p == '"' && !(in = !in))
			n++;
	}
	return n;
}

void metrics_fs_refresh(struct daemon *d)
{
	if (!d->metrics)
		return;
	struct strbuf sb = { 0 };
	fsmount_status_json(d, &sb); /* "fs":{...} or "fs":null */
	char owner[64] = "", was[64] = "";
	const char *obj = strchr(sb.buf, ':') + 1;
	if (*obj == '{')
		fs_string(obj, "owner", owner, sizeof owner);
	pthread_mutex_lock(&d->fs_view_lock);
	fs_string(d->fs_view, "owner", was, sizeof was);
	/* a failover or a planned move: the mount stayed, the owner changed */
	if (owner[0] && was[0] && strcmp(owner, was))
		d->fs_owner_changes++;
	snprintf(d->fs_view, sizeof d->fs_view, "%s", obj);
	pthread_mutex_unlock(&d->fs_view_lock);
	strbuf_free(&sb);
}

/* What the filesystem's events counted (fsevents.h), and the case that
 * lets a survivor take over (served mounted or not: it is configuration). */
static void fs_event_metrics(struct mctx *m, const struct fsevents_totals *ft)
{
	const char *modes[CFG_FO_FENCING + 1];
	for (int i = 0; i <= CFG_FO_FENCING; i++)
		modes[i] = cfg_failover_name((enum cfg_failover)i);
	family(m, "dipole_fs_failover_mode", "gauge",
	       "What lets a surviving node take over the filesystem (docs/dipolefs.md)");
	enum_samples(m, "dipole_fs_failover_mode", m->res, modes, CFG_FO_FENCING + 1, (int)cfg_failover(m->d->r));
	family(m, "dipole_fs_failovers_total", "counter", "Failovers this node took part in as the new owner");
	sample(m, "dipole_fs_failovers_total", m->res, ft->failovers);
	family(m, "dipole_fs_failover_last_milliseconds", "gauge",
	       "The last failover's time from the owner's loss to the first request served (0: none)");
	sample(m, "dipole_fs_failover_last_milliseconds", m->res, ft->last_failover_ms);
}

/* Lock reclaims as status's fs object counts them: on the owner, what its
 * table granted ("reclaims") and refused ("locks_lost"); on a client, its
 * locks reclaimed and lost. */
static void fs_reclaim_metrics(struct mctx *m, const char *view)
{
	const char *ok = fs_field(view, "reclaims"), *lost = fs_field(view, "locks_lost");
	char l[300];
	family(m, "dipole_fs_lock_reclaims_total", "counter",
	       "Lock reclaims after an owner change or a reconnect, by result");
	snprintf(l, sizeof l, "%s,result=\"granted\"", m->res);
	sample(m, "dipole_fs_lock_reclaims_total", l, ok ? strtoull(ok, NULL, 10) : 0);
	snprintf(l, sizeof l, "%s,result=\"refused\"", m->res);
	sample(m, "dipole_fs_lock_reclaims_total", l, lost ? strtoull(lost, NULL, 10) : 0);
}

static void fs_metrics(struct mctx *m)
{
	char view[sizeof m->d->fs_view], owner[64] = "", role[16] = "", l[400], o[128];
	pthread_mutex_lock(&m->d->fs_view_lock);
	snprintf(view, sizeof view, "%s", m->d->fs_view);
	unsigned long long changes = m->d->fs_owner_changes;
	pthread_mutex_unlock(&m->d->fs_view_lock);
	int mounted = view[0] == '{';
	if (mounted) {
		fs_string(view, "owner", owner, sizeof owner);
		fs_string(view, "role", role, sizeof role);
	}
	/* an owner may serve the other nodes without a mount here */
	const char *here = mounted ? fs_field(view, "mounted_here") : NULL;
	family(m, "dipole_fs_mounted", "gauge", "Boolean whether dipolefs is mounted on this node");
	sample(m, "dipole_fs_mounted", m->res, (unsigned long long)(here && !strncmp(here, "true", 4)));
	family(m, "dipole_fs_owner_changes_total", "counter",
	       "Changes of the filesystem's owner under this node's mount (failovers and moves)");
	sample(m, "dipole_fs_owner_changes_total", m->res, changes);
	struct fsevents_totals ft;
	fsevents_totals(&ft);
	fs_event_metrics(m, &ft);
	if (!mounted)
		return;
	static const char *const roles[] = { "owner", "client" };
	family(m, "dipole_fs_role", "gauge", "This node's dipolefs role");
	enum_samples(m, "dipole_fs_role", m->res, roles, 2, !strcmp(role, "owner") ? 0 : 1);
	label_value(o, sizeof o, owner);
	snprintf(l, sizeof l, "%s,owner=\"%s\"", m->res, o);
	family(m, "dipole_fs_owner", "gauge", "The node that owns the filesystem (the label), always 1");
	sample(m, "dipole_fs_owner", l, 1);
	family(m, "dipole_fs_clients", "gauge", "Client nodes the owner serves (0 on a client)");
	sample(m, "dipole_fs_clients", m->res, fs_clients(view));
	const char *lk = fs_field(view, "locks"), *gr = fs_field(view, "grace");
	family(m, "dipole_fs_locks", "gauge", "Cluster-wide file locks held (on the owner)");
	sample(m, "dipole_fs_locks", m->res, lk ? strtoull(lk, NULL, 10) : 0);
	family(m, "dipole_fs_grace", "gauge", "Boolean whether the lock grace period after a failover runs");
	sample(m, "dipole_fs_grace", m->res, (unsigned long long)((gr && !strncmp(gr, "true", 4)) || ft.grace_active));
	fs_reclaim_metrics(m, view);
}

/* ------------------------------------------------------------ render */

static void labels_init(struct mctx *m)
{
	struct daemon *d = m->d;
	char v[128], minor[16] = "";
	label_value(v, sizeof v, d->r->name);
	snprintf(m->res, sizeof m->res, "name=\"%s\"", v);
	/* DRBD's minor, where the device is named like DRBD's (/dev/drbdN) */
	const char *dev = d->h->device ? strstr(d->h->device, "drbd") : NULL;
	if (dev && isdigit((unsigned char)dev[4]))
		snprintf(minor, sizeof minor, "%ld", strtol(dev + 4, NULL, 10));
	snprintf(m->dev, sizeof m->dev, "%s,volume=\"0\",minor=\"%s\"", m->res, minor);
	for (int i = 0; i < d->npeers; i++) {
		peer_metrics(d->peers[i], &m->pv[i]);
		label_value(v, sizeof v, m->pv[i].name);
		snprintf(m->conn[i], sizeof m->conn[i], "%s,conn_name=\"%s\",peer_node_id=\"%d\"", m->res, v,
			 m->pv[i].node_id);
	}
}

static void render(void *arg, struct strbuf *sb)
{
	struct mctx *m = xcalloc(1, sizeof *m);
	m->d = arg;
	m->sb = sb;
	labels_init(m);
	resource_metrics(m);
	device_metrics(m);
	connection_metrics(m);
	fs_metrics(m);
	free(m);
}

/* ------------------------------------------------------------- life */

int metrics_bind(struct daemon *d, const char *address, char *err)
{
	int fd = httpd_bind(address, err);
	if (fd < 0)
		return fd;
	d->metrics_fd = fd;
	snprintf(d->metrics_addr, sizeof d->metrics_addr, "%s", address);
	return 0;
}

int metrics_start(struct daemon *d, char *err)
{
	if (d->metrics_fd < 0)
		return 0;
	pthread_mutex_init(&d->fs_view_lock, NULL);
	snprintf(d->fs_view, sizeof d->fs_view, "null");
	int rc = httpd_start(&d->metrics, d->metrics_fd, "/metrics", CONTENT_TYPE, render, d, err);
	d->metrics_fd = -1; /* the server's now, or closed */
	if (rc)
		return rc;
	metrics_fs_refresh(d);
	log_info("metrics: serving http://%s/metrics", d->metrics_addr);
	return 0;
}

void metrics_stop(struct daemon *d)
{
	if (d->metrics_fd >= 0)
		close(d->metrics_fd);
	d->metrics_fd = -1;
	if (!d->metrics)
		return;
	httpd_stop(d->metrics);
	d->metrics = NULL;
	pthread_mutex_destroy(&d->fs_view_lock);
}

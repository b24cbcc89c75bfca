/* startup — what a node does between `up` and serving as DRBD users expect:
 * wait for the peer (startup { wfc-timeout; degr-wfc-timeout;
 * outdated-wfc-timeout; wait-after-sb; }) and, with become-primary-on
 * naming it, become Primary only once that cannot start a split brain.
 * The rules and their table: docs/startup.md. See daemon_int.h.
 *
 * The rule behind everything here: a restarted node does not start a new
 * data generation (which promotion without a connected peer does) before
 * it has talked to a reachable peer. The handshake decides who is behind;
 * a node that is behind becomes SyncTarget and is promoted when its resync
 * is done. Only when no peer answers within the timeout does the metadata
 * of the last shutdown decide: it promotes when it went down alone after
 * carrying on without the peer (or the peer was known Outdated), never
 * when the peer may have carried on without it.
 *
 * `up` does not block on any of this (it returns once the exports serve,
 * like `drbdadm up`); `dipole wait-connect` is the blocking wait a boot
 * service runs, like DRBD's init script.
 *
 * Locking: the main thread plans and ticks; the events thread prints the
 * state line, so phase, over, talked, declined and why are under su.lock.
 */
#include "daemon_int.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* How often the main thread looks while something is pending (ms). */
#define STARTUP_TICK_MS 200
/* Progress lines in the log while waiting, at most this often (s). */
#define STARTUP_LOG_S 10

static long opt_seconds(const struct cfg_resource *r, const char *name, long dflt)
{
	const char *v = cfg_get(r, SECT_STARTUP, name);
	long n = dflt;
	if (v && parse_int(v, 0, 1000000, &n))
		n = dflt;
	return n;
}

/* Does become-primary-on name this node ("both" or its name)? */
static int names_me(const struct daemon *d)
{
	const char *bp = cfg_get(d->r, SECT_STARTUP, "become-primary-on");
	char list[256], *save = NULL;
	if (!bp)
		return 0;
	snprintf(list, sizeof list, "%s", bp);
	for (char *w = strtok_r(list, " ", &save); w; w = strtok_r(NULL, " ", &save))
		if (!strcmp(w, "both") || !strcmp(w, d->h->name))
			return 1;
	return 0;
}

/* The disk peers' names from the configuration, "b" or "b, c", for
 * messages (the plan runs before the peers are started). */
static void peer_names(const struct daemon *d, char *out, size_t len)
{
	size_t n = 0;
	out[0] = 0;
	for (int i = 0; i < d->r->nhosts && n < len; i++)
		if (&d->r->hosts[i] != d->h && !d->r->hosts[i].diskless)
			n += (size_t)snprintf(out + n, len - n, "%s%s", n ? ", " : "", d->r->hosts[i].name);
	if (!out[0])
		snprintf(out, len, "the peer");
}

static void set_state(struct daemon *d, int phase, int over, int declined, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Record the state; log it when its kind (key) changes, and every
 * STARTUP_LOG_S while it stays, so the log shows the wait progressing. */
static void set_state(struct daemon *d, int phase, int over, int declined, const char *key, const char *fmt, ...)
{
	struct startup *s = &d->su;
	char why[sizeof s->why];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&s->lock);
	s->phase = phase;
	s->over |= over;
	s->declined = declined;
	snprintf(s->why, sizeof s->why, "%s", why);
	pthread_mutex_unlock(&s->lock);
	uint64_t now = now_ns();
	if (strcmp(key, s->logged_key) || now - s->logged_ns >= STARTUP_LOG_S * 1000000000ull) {
		if (declined)
			log_warn("startup: %s", why);
		else
			log_info("startup: %s", why);
		snprintf(s->logged_key, sizeof s->logged_key, "%s", key);
		s->logged_ns = now;
	}
}

/* How long become-primary-on waits, after the handshakes, for the quorum
 * they bring to be counted (s). */
#define STARTUP_QUORUM_WAIT_S 10

static void promote(struct daemon *d, const char *because)
{
	char msg[256];
	int rc = daemon_promote(d, 0, msg);
	if (rc)
		set_state(d, SU_DONE, 1, 1, "refused", "not promoted (become-primary-on): %s", msg);
	else
		set_state(d, SU_DONE, 1, 0, "promoted", "promoted to Primary (become-primary-on): %s", because);
}

void startup_plan(struct daemon *d)
{
	struct startup *s = &d->su;
	struct engine *e = d->e;
	char who[200];

	pthread_mutex_init(&s->lock, NULL);
	s->start_ns = now_ns();
	s->want = names_me(d) && !d->h->diskless;
	s->wait_after_sb = cfg_get_bool(d->r, SECT_STARTUP, "wait-after-sb");
	if (!d->h->diskless) {
		/* what the metadata says of the last time this node went down,
		 * read before any peer connects (and changes it) */
		pthread_mutex_lock(&e->lock);
		s->was_connected = !!(e->sb.flags & MDF_CONNECTED_IND);
		s->fresh = e->sb.uuid[UUID_CURRENT] == MD_UUID_JUST_CREATED;
		s->peer_outdated = !!(e->sb.flags & MDF_PEER_OUTDATED);
		for (uint32_t i = 0; i < e->nslots; i++)
			s->carried_on |= e->sb.peer[i].bitmap_uuid != 0;
		pthread_mutex_unlock(&e->lock);
		s->crashed_primary = e->crashed_primary;
		s->uptodate = atomic_load(&e->dstate) == DS_UPTODATE;
	}
	/* DRBD's choice of timeout: outdated peer, else alone, else connected */
	if (s->peer_outdated) {
		s->timeout_opt = "outdated-wfc-timeout";
		s->timeout_why = "the peer was Outdated when this node went down";
	} else if (!s->was_connected) {
		s->timeout_opt = "degr-wfc-timeout";
		s->timeout_why = s->fresh ? "this node has not been connected since create-md"
					  : "this node was alone (degraded) when it went down";
	} else {
		s->timeout_opt = "wfc-timeout";
		s->timeout_why = "this node was connected when it went down";
	}
	/* DRBD's defaults: 0, wait for ever */
	s->timeout_s = opt_seconds(d->r, s->timeout_opt, 0);
	peer_names(d, who, sizeof who);
	s->has_peers = !d->h->diskless && cfg_disk_hosts(d->r) > 1;
	if (!s->has_peers) {
		set_state(d, SU_DONE, 1, 0, "alone", "no disk peer to wait for");
		if (s->want && s->uptodate)
			promote(d, "no disk peer to wait for");
		else if (s->want)
			set_state(d, SU_DONE, 1, 1, "not-uptodate", "not promoted (become-primary-on): the disk is %s",
				  disk_state_name((enum disk_state)atomic_load(&e->dstate)));
		return;
	}
	if (s->want && !s->uptodate) {
		/* the same as DRBD: become-primary-on is not `primary --force` */
		set_state(d, SU_WAIT_PEER, 0, 1, "not-uptodate",
			  "not promoting (become-primary-on): the disk was %s at startup, not UpToDate; "
			  "'dipole primary' decides that by hand", disk_state_name((enum disk_state)atomic_load(&e->dstate)));
		snprintf(s->note, sizeof s->note, "; not promoting (become-primary-on): the disk was %s at startup",
			 disk_state_name((enum disk_state)atomic_load(&e->dstate)));
		s->want = 0;
		return;
	}
	log_info("startup: waiting for %s: %s %ld s%s (%s)%s", who, s->timeout_opt, s->timeout_s,
		 s->timeout_s ? "" : ", for ever", s->timeout_why, s->want ? "; then become-primary-on" : "");
}

int startup_pending(struct daemon *d)
{
	struct startup *s = &d->su;
	pthread_mutex_lock(&s->lock);
	int pending = s->phase != SU_DONE;
	pthread_mutex_unlock(&s->lock);
	return pending;
}

/* Why promoting without having talked to a peer is safe (returns 1 and
 * sets why) or not (0, why says which peer may have carried on). */
static int safe_alone(struct daemon *d, const char *who, char *why, size_t len)
{
	struct startup *s = &d->su;
	int ds = atomic_load(&d->e->dstate);
	if (ds != DS_UPTODATE) {
		snprintf(why, len, "the disk is %s, not UpToDate", disk_state_name((enum disk_state)ds));
		return 0;
	}
	if (s->peer_outdated) {
		snprintf(why, len, "%s was Outdated when this node went down: it cannot have carried on", who);
		return 1;
	}
	if (s->was_connected) {
		snprintf(why, len, "this node was connected to %s when it went down%s, so %s may have carried on "
			 "without it: promoting now could start a split brain", who,
			 s->crashed_primary ? " (it crashed while Primary)" : "", who);
		return 0;
	}
	if (!s->carried_on) {
		snprintf(why, len, "this node lost %s before it went down but wrote nothing without it, so %s may "
			 "have carried on as Primary: promoting now could start a split brain", who, who);
		return 0;
	}
	snprintf(why, len, "this node was alone when it went down and had carried on without %s (it has writes "
		 "%s lacks)", who, who);
	return 1;
}

/* Records that a disk peer's handshake completed since startup, also after
 * the startup wait ended without one (a timeout), for
 * startup_may_promote_alone. */
static void note_talked(struct daemon *d)
{
	struct startup *s = &d->su;
	pthread_mutex_lock(&s->lock);
	int known = s->talked;
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; !known && i < d->npeers; i++) {
		struct replica_view v;
		peer_view(d->peers[i], &v);
		if (v.connected) {
			pthread_mutex_lock(&s->lock);
			s->talked = known = 1;
			pthread_mutex_unlock(&s->lock);
		}
	}
}

int startup_may_promote_alone(struct daemon *d, char *why, size_t len)
{
	struct startup *s = &d->su;
	char who[200];

	if (!s->has_peers)
		return 1;
	note_talked(d);
	pthread_mutex_lock(&s->lock);
	int talked = s->talked;
	pthread_mutex_unlock(&s->lock);
	if (talked)
		return 1;
	peer_names(d, who, sizeof who);
	return safe_alone(d, who, why, len);
}

/* What startup_tick learns from the peers on one tick. */
struct survey {
	int talked;            /* peers connected now */
	int all;               /* every peer is */
	char behind_of[64];    /* the first peer with newer data ("" if none) */
	char refused_by[64];   /* the first peer that refused the connection */
};

static void survey_peers(struct daemon *d, struct survey *sv)
{
	memset(sv, 0, sizeof *sv);
	sv->all = 1;
	for (int i = 0; i < d->npeers; i++) {
		struct peer *p = d->peers[i];
		/* behind first: it is settled before the peer counts as talked to */
		if (peer_behind(p) && !sv->behind_of[0])
			snprintf(sv->behind_of, sizeof sv->behind_of, "%s", peer_name(p));
		struct replica_view v;
		peer_view(p, &v);
		if (v.connected)
			sv->talked++;
		else
			sv->all = 0;
		if (peer_is_standalone(p) && !sv->refused_by[0])
			snprintf(sv->refused_by, sizeof sv->refused_by, "%s", peer_name(p));
	}
}

/* A peer is connected: done, or promote (become-primary-on) once this
 * node's data is current, every peer talked (or the wait is over) and the
 * votes are counted. */
static void tick_connected(struct daemon *d, const struct survey *sv, const char *who, int timed_out)
{
	struct startup *s = &d->su;
	char why[300];

	if (!s->want) {
		set_state(d, SU_DONE, 1, !!s->note[0], "connected", "connected to %s%s", who, s->note);
	} else if (sv->behind_of[0] || atomic_load(&d->e->dstate) != DS_UPTODATE) {
		set_state(d, SU_WAIT_SYNC, 1, 0, "sync",
			  "connected to %s; SyncTarget of %s: becomes Primary (become-primary-on) when the resync is done",
			  who, sv->behind_of[0] ? sv->behind_of : who);
	} else if (!sv->all && !timed_out) {
		set_state(d, SU_WAIT_PEER, 1, 0, "wait-others",
			  "talked to %d of %d peers; waiting for the others before becoming Primary", sv->talked,
			  d->npeers);
	} else if (!quorum_have(d->quorum) && now_ns() - s->talked_ns < STARTUP_QUORUM_WAIT_S * 1000000000ull) {
		/* the votes of the links just made are counted a moment after
		 * the handshake: promoting at once would be refused; after the
		 * wait, promote() is refused with the reason */
		set_state(d, SU_WAIT_PEER, 1, 0, "wait-quorum",
			  "connected to %s; waiting for quorum before becoming Primary (become-primary-on)", who);
	} else {
		snprintf(why, sizeof why, "the handshake with %s found this node's data current", who);
		promote(d, why);
	}
}

/* The wait (wfc-timeout or degr-wfc-timeout) passed and no peer answered:
 * go on, or promote alone when that cannot start a split brain. */
static void tick_timed_out(struct daemon *d, const struct survey *sv, const char *who)
{
	struct startup *s = &d->su;
	char why[300];

	if (!s->want) {
		set_state(d, SU_DONE, 1, !!s->note[0], "timeout", "no peer within %s %ld s; going on without it%s",
			  s->timeout_opt, s->timeout_s, s->note);
		return;
	}
	if (sv->refused_by[0]) {
		set_state(d, SU_DONE, 1, 1, "refused", "not promoting (become-primary-on): %s refused the connection "
			  "(see 'dipole status'); resolve it, then 'dipole primary'", sv->refused_by);
		return;
	}
	if (safe_alone(d, who, why, sizeof why)) {
		char because[400];
		snprintf(because, sizeof because, "no peer within %s %ld s, and %s", s->timeout_opt, s->timeout_s, why);
		promote(d, because);
		return;
	}
	/* still pending: the peer's return settles it (or the administrator) */
	set_state(d, SU_WAIT_PEER, 1, 1, "declined", "not promoting (become-primary-on) after %s %ld s: %s; waiting "
		  "for %s ('dipole primary' promotes by hand if it is gone for good)", s->timeout_opt, s->timeout_s,
		  why, who);
}

void startup_tick(struct daemon *d)
{
	struct startup *s = &d->su;
	struct survey sv;
	char who[200];

	if (!startup_pending(d)) {
		note_talked(d);
		return;
	}
	peer_names(d, who, sizeof who);
	survey_peers(d, &sv);
	uint64_t waited = (now_ns() - s->start_ns) / 1000000000ull;
	int timed_out = s->timeout_s > 0 && waited >= (uint64_t)s->timeout_s;
	if (sv.talked && !s->talked) {
		pthread_mutex_lock(&s->lock);
		s->talked = 1;
		s->over = 1;
		pthread_mutex_unlock(&s->lock);
	}
	if (sv.talked && !s->talked_ns)
		s->talked_ns = now_ns();
	if (s->want && atomic_load(&d->e->role) == ROLE_PRIMARY) {
		set_state(d, SU_DONE, 1, 0, "primary", "Primary already (made so by the administrator)");
		return;
	}
	if (sv.talked) {
		tick_connected(d, &sv, who, timed_out);
		return;
	}
	if (sv.refused_by[0] && !s->wait_after_sb) {
		set_state(d, SU_DONE, 1, !!s->want, "refused",
			  "%s refused the connection (split brain, unrelated data or two Primaries: see 'dipole "
			  "status'; wait-after-sb keeps waiting)%s", sv.refused_by,
			  s->want ? "; not promoting (become-primary-on): resolve it, then 'dipole primary'" : "");
		return;
	}
	if (timed_out) {
		tick_timed_out(d, &sv, who);
		return;
	}
	char left[64];
	if (s->timeout_s)
		snprintf(left, sizeof left, "%llu s left", (unsigned long long)(s->timeout_s - (long)waited));
	else
		snprintf(left, sizeof left, "0: until it connects");
	set_state(d, SU_WAIT_PEER, 0, 0, "wait", "waiting for %s%s (%s %s; %s)%s", who,
		  sv.refused_by[0] ? " (refused by state; wait-after-sb)" : "", s->timeout_opt, left, s->timeout_why,
		  s->want ? " before becoming Primary (become-primary-on)" : "");
}

static const char *phase_name(int phase)
{
	return phase == SU_WAIT_PEER ? "waiting-for-peer" : phase == SU_WAIT_SYNC ? "waiting-for-resync" : "done";
}

void startup_json(struct daemon *d, struct strbuf *sb)
{
	struct startup *s = &d->su;
	pthread_mutex_lock(&s->lock);
	strbuf_printf(sb, "\"startup\":{\"state\":\"%s\",\"wait_over\":%s,\"connected\":%s,\"become_primary\":%s,"
		      "\"declined\":%s,\"timeout_option\":\"%s\",\"timeout_s\":%ld,\"reason\":",
		      phase_name(s->phase), s->over ? "true" : "false", s->talked ? "true" : "false",
		      s->want ? "true" : "false", s->declined ? "true" : "false", s->timeout_opt ? s->timeout_opt : "",
		      s->timeout_s);
	strbuf_json_str(sb, s->why);
	strbuf_printf(sb, "},");
	pthread_mutex_unlock(&s->lock);
}

static int primary_now(struct daemon *d)
{
	return d->e && atomic_load(&d->e->role) == ROLE_PRIMARY;
}

void startup_text(struct daemon *d, struct strbuf *sb)
{
	struct startup *s = &d->su;
	pthread_mutex_lock(&s->lock);
	/* once it is over and nothing was declined, there is nothing to say;
	 * nor about a declined promotion once the node is Primary anyway */
	if (s->why[0] && (s->phase != SU_DONE || (s->declined && !primary_now(d))))
		strbuf_printf(sb, "  startup: %s\n", s->why);
	pthread_mutex_unlock(&s->lock);
}

void startup_state_line(struct daemon *d, struct strbuf *sb)
{
	struct startup *s = &d->su;
	pthread_mutex_lock(&s->lock);
	if (s->phase != SU_DONE)
		strbuf_printf(sb, " startup:%s", phase_name(s->phase));
	else if (s->declined && !primary_now(d))
		strbuf_printf(sb, " startup:not-promoted");
	pthread_mutex_unlock(&s->lock);
}

void startup_wait_reply(struct daemon *d, struct strbuf *sb)
{
	struct startup *s = &d->su;
	pthread_mutex_lock(&s->lock);
	const char *st = s->talked ? "connected" : !s->has_peers ? "alone" : !s->over ? "waiting"
		       : strstr(s->why, "refused") ? "refused" : "timeout";
	strbuf_printf(sb, "%s %s\n", st, s->why);
	pthread_mutex_unlock(&s->lock);
}

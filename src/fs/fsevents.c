/* fsevents — see fsevents.h. */
#include "fsevents.h"
#include "evlog.h"

#include <pthread.h>
#include <stdio.h>

static struct {
	pthread_mutex_t m;  /* a leaf: guards t */
	struct fsevents_totals t;
} S = { .m = PTHREAD_MUTEX_INITIALIZER };

const char *fsevents_owner_name(enum fsevents_owner s)
{
	static const char *const n[] = { "none", "owner", "serving" };
	return (unsigned)s < sizeof n / sizeof n[0] ? n[s] : "?";
}

void fsevents_owner(const char *res, const char *node, enum fsevents_owner from, enum fsevents_owner to,
		    const char *why)
{
	char f[160];
	if (from == to)
		return;
	snprintf(f, sizeof f, "node:%s old:%s new:%s", node, fsevents_owner_name(from), fsevents_owner_name(to));
	evlog_emit_record("fs:owner", res, f, why);
}

void fsevents_client(const char *res, const char *client, int connected, const char *why)
{
	char f[160];
	snprintf(f, sizeof f, "peer:%s old:%s new:%s", client, connected ? "disconnected" : "connected",
		 connected ? "connected" : "disconnected");
	evlog_emit_record("fs:client", res, f, why);
}

/* " KEY:MS" for the phase a..b, nothing when either end is unknown. */
static int phase(char *buf, size_t len, const char *key, uint64_t a, uint64_t b)
{
	if (!a || !b || b < a)
		return 0;
	return snprintf(buf, len, " %s:%llu", key, (unsigned long long)((b - a) / 1000000u));
}

void fsevents_failover(const char *res, const struct fsevents_failover *fo, const char *why)
{
	char f[160];
	int n = snprintf(f, sizeof f, "node:%s old-owner:%s", fo->new_owner, fo->old_owner);
	int known = fo->lost_ns && fo->served_ns >= fo->lost_ns;
	n += known ? phase(f + n, sizeof f - (size_t)n, "total-ms", fo->lost_ns, fo->served_ns)
		   : snprintf(f + n, sizeof f - (size_t)n, " total-ms:unknown");
	n += phase(f + n, sizeof f - (size_t)n, "promote-ms", fo->lost_ns, fo->promoted_ns);
	n += phase(f + n, sizeof f - (size_t)n, "mount-ms", fo->promoted_ns, fo->mounted_ns);
	phase(f + n, sizeof f - (size_t)n, "serve-ms", fo->mounted_ns, fo->served_ns);
	pthread_mutex_lock(&S.m);
	S.t.failovers++;
	if (known)
		S.t.last_failover_ms = (fo->served_ns - fo->lost_ns) / 1000000u;
	pthread_mutex_unlock(&S.m);
	evlog_emit_record("fs:failover", res, f, why);
}

void fsevents_takeover_refused(const char *res, const char *node, const char *old_owner, const char *why)
{
	char f[160];
	snprintf(f, sizeof f, "node:%s old-owner:%s result:refused", node, old_owner);
	evlog_emit_record("fs:takeover", res, f, why);
}

void fsevents_grace_start(const char *res, uint64_t duration_ms, unsigned clients, const char *why)
{
	char f[160];
	snprintf(f, sizeof f, "old:off new:on duration-ms:%llu clients:%u", (unsigned long long)duration_ms, clients);
	pthread_mutex_lock(&S.m);
	S.t.grace_periods++;
	S.t.grace_active = 1;
	pthread_mutex_unlock(&S.m);
	evlog_emit_record("fs:grace", res, f, why);
}

int fsevents_grace_end(const char *res, unsigned reclaimed, unsigned refused, const char *why)
{
	char f[160];
	snprintf(f, sizeof f, "old:on new:off reclaimed:%u refused:%u", reclaimed, refused);
	pthread_mutex_lock(&S.m);
	int was = S.t.grace_active;
	S.t.grace_active = 0;
	pthread_mutex_unlock(&S.m);
	if (was)
		evlog_emit_record("fs:grace", res, f, why);
	return was;
}

void fsevents_reclaim(const char *res, const char *node, unsigned granted, unsigned refused, const char *why)
{
	char f[160];
	snprintf(f, sizeof f, "peer:%s granted:%u refused:%u", node, granted, refused);
	pthread_mutex_lock(&S.m);
	S.t.reclaims_granted += granted;
	S.t.reclaims_refused += refused;
	pthread_mutex_unlock(&S.m);
	evlog_emit_record("fs:reclaim", res, f, why);
}

void fsevents_totals(struct fsevents_totals *out)
{
	pthread_mutex_lock(&S.m);
	*out = S.t;
	pthread_mutex_unlock(&S.m);
}

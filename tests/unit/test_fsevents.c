/* The filesystem's events (src/fs/fsevents.c): each event's line as
 * `dipole events` prints it, in order with the block layer's transitions,
 * and the totals the metrics read. */
#include <string.h>
#include "unit.h"
#include "evlog.h"
#include "fsevents.h"

/* The next event's line into line[512]; 0 when there is none. */
static int next_line(uint64_t *cur, char *line)
{
	struct evlog_event ev;
	uint64_t lost = 0;
	if (!evlog_read(cur, &ev, &lost))
		return 0;
	evlog_format(&ev, line, 512);
	return 1;
}

TEST(owner_and_client_lines)
{
	uint64_t cur = evlog_next_seq();
	char line[512];
	fsevents_owner("r0", "a", FSEV_NONE, FSEV_SERVING, "mounted at /mnt as \"owner\"");
	fsevents_owner("r0", "a", FSEV_SERVING, FSEV_SERVING, "no change: no event");
	evlog_emit(SO_ROLE, "r0", NULL, ROLE_PRIMARY, ROLE_SECONDARY, "demoted");
	fsevents_client("r0", "b", 1, "from 10.0.0.2:4711");
	fsevents_client("r0", "b", 0, "disconnected");
	CHECK(next_line(&cur, line));
	CHECK_STR_HAS(line, "change fs:owner name:r0 node:a old:none new:serving why:\"mounted at /mnt as \\\"owner\\\"\" seq:");
	CHECK(next_line(&cur, line));
	CHECK_STR_HAS(line, "change role name:r0 old:Primary new:Secondary why:\"demoted\"");
	CHECK(next_line(&cur, line));
	CHECK_STR_HAS(line, "change fs:client name:r0 peer:b old:disconnected new:connected why:\"from 10.0.0.2:4711\"");
	CHECK(next_line(&cur, line));
	CHECK_STR_HAS(line, "change fs:client name:r0 peer:b old:connected new:disconnected why:\"disconnected\"");
	CHECK(strstr(line, " time-us:") != NULL);
	CHECK(!next_line(&cur, line));
	CHECK(!strcmp(fsevents_owner_name(FSEV_OWNER), "owner"));
	CHECK(!strcmp(fsevents_owner_name((enum fsevents_owner)7), "?"));
}

TEST(failover_timings)
{
	uint64_t cur = evlog_next_seq();
	char line[512];
	struct fsevents_totals t0, t1;
	fsevents_totals(&t0);
	const uint64_t ms = 1000000;
	struct fsevents_failover fo = { .old_owner = "a", .new_owner = "b", .lost_ns = 1000 * ms,
					.promoted_ns = 1250 * ms, .mounted_ns = 1900 * ms, .served_ns = 2012 * ms };
	fsevents_failover("r0", &fo, "a lost");
	CHECK(next_line(&cur, line));
	CHECK_STR_HAS(line, "change fs:failover name:r0 node:b old-owner:a total-ms:1012 promote-ms:250 mount-ms:650 "
			    "serve-ms:112 why:\"a lost\"");
	/* what is not known is left out, never made up */
	struct fsevents_failover part = { .old_owner = "b", .new_owner = "a", .promoted_ns = 5 * ms };
	fsevents_failover("r0", &part, "");
	CHECK(next_line(&cur, line));
	CHECK_STR_HAS(line, "change fs:failover name:r0 node:a old-owner:b total-ms:unknown why:\"\"");
	fsevents_totals(&t1);
	CHECK(t1.failovers == t0.failovers + 2 && t1.last_failover_ms == 1012);
}

TEST(grace_and_reclaims)
{
	uint64_t cur = evlog_next_seq();
	char line[512];
	struct fsevents_totals t0, t1;
	fsevents_totals(&t0);
	fsevents_grace_start("r0", 90000, 2, "new owner");
	fsevents_totals(&t1);
	CHECK(t1.grace_active && t1.grace_periods == t0.grace_periods + 1);
	fsevents_reclaim("r0", "c", 3, 1, "one conflict");
	CHECK(fsevents_grace_end("r0", 3, 1, "every survivor reclaimed") == 1);
	/* a second end (the clock's, seen late) is no event */
	CHECK(fsevents_grace_end("r0", 3, 1, "expired") == 0);
	CHECK(next_line(&cur, line));
	CHECK_STR_HAS(line, "change fs:grace name:r0 old:off new:on duration-ms:90000 clients:2 why:\"new owner\"");
	CHECK(next_line(&cur, line));
	CHECK_STR_HAS(line, "change fs:reclaim name:r0 peer:c granted:3 refused:1 why:\"one conflict\"");
	CHECK(next_line(&cur, line));
	CHECK_STR_HAS(line, "change fs:grace name:r0 old:on new:off reclaimed:3 refused:1 why:\"every survivor reclaimed\"");
	CHECK(!next_line(&cur, line));
	fsevents_totals(&t1);
	CHECK(!t1.grace_active && t1.reclaims_granted == t0.reclaims_granted + 3 &&
	      t1.reclaims_refused == t0.reclaims_refused + 1);
}

int main(void)
{
	return unit_main("fsevents");
}

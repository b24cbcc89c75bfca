/* Table-driven tests of the state transition tables and names
 * (src/repl/state.c) and of the event log ring (src/repl/evlog.c). */
#include <string.h>
#include "unit.h"
#include "state.h"
#include "evlog.h"

struct tcase { int from, to, legal; };

static void check_table(const char *what, int (*fn)(int, int), const struct tcase *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fn(c[i].from, c[i].to) != c[i].legal) {
			fprintf(stderr, "    %s %d -> %d: got %s, want %s\n", what, c[i].from, c[i].to,
				c[i].legal ? "illegal" : "legal", c[i].legal ? "legal" : "illegal");
			unit_failed_now = 1;
		}
}
#define TABLE(what, fn, arr) check_table(what, fn, arr, sizeof(arr) / sizeof(arr[0]))

TEST(disk_transitions)
{
	static const struct tcase c[] = {
		{ DS_DISKLESS, DS_ATTACHING, 1 },
		{ DS_ATTACHING, DS_INCONSISTENT, 1 },
		{ DS_ATTACHING, DS_OUTDATED, 1 },
		{ DS_ATTACHING, DS_CONSISTENT, 1 },
		{ DS_ATTACHING, DS_UPTODATE, 1 },
		{ DS_INCONSISTENT, DS_UPTODATE, 1 },
		{ DS_OUTDATED, DS_UPTODATE, 1 },
		{ DS_OUTDATED, DS_INCONSISTENT, 1 },
		{ DS_CONSISTENT, DS_UPTODATE, 1 },
		{ DS_CONSISTENT, DS_OUTDATED, 1 },
		{ DS_UPTODATE, DS_OUTDATED, 1 },
		{ DS_UPTODATE, DS_CONSISTENT, 1 },
		{ DS_UPTODATE, DS_INCONSISTENT, 1 },
		{ DS_UPTODATE, DS_FAILED, 1 },
		{ DS_UPTODATE, DS_DISKLESS, 1 },
		{ DS_INCONSISTENT, DS_DISKLESS, 1 },
		{ DS_ATTACHING, DS_FAILED, 1 },
		{ DS_FAILED, DS_DISKLESS, 1 },
		{ DS_UPTODATE, DS_UPTODATE, 1 },
		{ DS_DISKLESS, DS_DISKLESS, 1 },
		/* illegal: a detached disk does not come back without attaching */
		{ DS_DISKLESS, DS_UPTODATE, 0 },
		{ DS_DISKLESS, DS_INCONSISTENT, 0 },
		{ DS_DISKLESS, DS_FAILED, 0 },
		{ DS_FAILED, DS_UPTODATE, 0 },
		{ DS_INCONSISTENT, DS_OUTDATED, 0 },
		{ DS_INCONSISTENT, DS_CONSISTENT, 0 },
		{ DS_UPTODATE, DS_ATTACHING, 0 },
		{ DS_INCONSISTENT, DS_ATTACHING, 0 },
		{ -1, DS_UPTODATE, 0 },
		{ DS_UPTODATE, 7, 0 },
	};
	TABLE("disk", state_disk_legal, c);
}

TEST(connection_transitions)
{
	static const struct tcase c[] = {
		{ CS_STANDALONE, CS_CONNECTING, 1 },
		{ CS_CONNECTING, CS_CONNECTED, 1 },
		{ CS_CONNECTING, CS_STANDALONE, 1 },
		{ CS_CONNECTED, CS_CONNECTING, 1 },
		{ CS_CONNECTED, CS_DISCONNECTING, 1 },
		{ CS_DISCONNECTING, CS_STANDALONE, 1 },
		{ CS_DISCONNECTING, CS_CONNECTING, 1 },
		{ CS_CONNECTED, CS_CONNECTED, 1 },
		{ CS_STANDALONE, CS_CONNECTED, 0 },
		{ CS_STANDALONE, CS_DISCONNECTING, 0 },
		{ CS_CONNECTED, CS_STANDALONE, 0 },
		{ CS_DISCONNECTING, CS_CONNECTED, 0 },
		{ CS_CONNECTED, 4, 0 },
	};
	TABLE("connection", state_conn_legal, c);
}

TEST(replication_transitions)
{
	static const struct tcase c[] = {
		{ RS_OFF, RS_ESTABLISHED, 1 },
		{ RS_ESTABLISHED, RS_SYNC_SOURCE, 1 },
		{ RS_ESTABLISHED, RS_STARTING_SYNC_T, 1 },
		{ RS_STARTING_SYNC_T, RS_SYNC_TARGET, 1 },
		{ RS_SYNC_TARGET, RS_ESTABLISHED, 1 },
		{ RS_SYNC_SOURCE, RS_ESTABLISHED, 1 },
		{ RS_SYNC_SOURCE, RS_OFF, 1 },
		{ RS_SYNC_TARGET, RS_OFF, 1 },
		{ RS_STARTING_SYNC_T, RS_OFF, 1 },
		{ RS_ESTABLISHED, RS_OFF, 1 },
		{ RS_OFF, RS_SYNC_SOURCE, 0 },
		{ RS_OFF, RS_SYNC_TARGET, 0 },
		/* a target is told a resync and waits for the bitmap first */
		{ RS_ESTABLISHED, RS_SYNC_TARGET, 0 },
		{ RS_SYNC_TARGET, RS_SYNC_SOURCE, 0 },
		{ RS_SYNC_SOURCE, RS_SYNC_TARGET, 0 },
		{ RS_STARTING_SYNC_T, RS_ESTABLISHED, 0 },
	};
	TABLE("replication", state_repl_legal, c);
}

TEST(role_and_peer_reports)
{
	static const struct tcase c[] = {
		{ ROLE_SECONDARY, ROLE_PRIMARY, 1 },
		{ ROLE_PRIMARY, ROLE_SECONDARY, 1 },
		{ ROLE_PRIMARY, ROLE_PRIMARY, 1 },
		{ ROLE_SECONDARY, 2, 0 },
		{ -1, ROLE_PRIMARY, 0 },
	};
	TABLE("role", state_role_legal, c);
	CHECK(state_legal(SO_PEER_ROLE, -1, ROLE_PRIMARY));
	CHECK(state_legal(SO_PEER_ROLE, ROLE_PRIMARY, -1));
	CHECK(!state_legal(SO_PEER_ROLE, -1, 200));
	CHECK(state_legal(SO_PEER_DISK, DS_DISKLESS, DS_UPTODATE)); /* a report, not a transition here */
	CHECK(!state_legal(SO_PEER_DISK, DS_UPTODATE, 9));
	CHECK(state_legal(SO_DISK, DS_UPTODATE, DS_OUTDATED));
	CHECK(!state_legal(SO_COUNT, 0, 0));
}

TEST(names)
{
	CHECK(!strcmp(role_name(ROLE_PRIMARY), "Primary"));
	CHECK(!strcmp(role_name(ROLE_SECONDARY), "Secondary"));
	static const char *disks[] = { "Diskless", "Attaching", "Failed", "Inconsistent", "Outdated", "Consistent",
				       "UpToDate" };
	for (int i = 0; i < 7; i++)
		CHECK(!strcmp(disk_state_name((enum disk_state)i), disks[i]));
	CHECK(!strcmp(disk_state_name((enum disk_state)7), "Unknown"));
	CHECK(!strcmp(conn_state_name(CS_DISCONNECTING), "Disconnecting"));
	CHECK(!strcmp(repl_state_name(RS_STARTING_SYNC_T), "StartingSyncT"));
	CHECK(!strcmp(repl_state_name((enum repl_state)99), "?"));
	CHECK(!strcmp(state_value_name(SO_PEER_DISK, -1), "DUnknown"));
	CHECK(!strcmp(state_value_name(SO_PEER_ROLE, -1), "Unknown"));
	CHECK(!strcmp(state_obj_name(SO_CONN), "connection"));
	CHECK(!strcmp(state_obj_name(SO_REPL), "replication"));
	CHECK(!strcmp(state_obj_name(SO_PEER_DISK), "peer-disk"));
}

TEST(event_ring_order_and_loss)
{
	uint64_t cur = evlog_next_seq(), lost = 0;
	struct evlog_event ev;
	CHECK(!evlog_read(&cur, &ev, &lost));
	evlog_emit(SO_DISK, "r0", NULL, DS_INCONSISTENT, DS_UPTODATE, "resync \"done\"");
	evlog_emit(SO_CONN, "r0", "b", CS_CONNECTING, CS_CONNECTED, "handshake");
	CHECK(evlog_read(&cur, &ev, &lost) && ev.obj == SO_DISK && ev.to == DS_UPTODATE);
	char line[512];
	evlog_format(&ev, line, sizeof line);
	CHECK_STR_HAS(line, "change disk name:r0 old:Inconsistent new:UpToDate why:\"resync \\\"done\\\"\" seq:");
	uint64_t t0 = ev.time_us;
	CHECK(evlog_read(&cur, &ev, &lost) && ev.obj == SO_CONN && ev.time_us >= t0);
	evlog_format(&ev, line, sizeof line);
	CHECK_STR_HAS(line, "change connection name:r0 peer:b old:Connecting new:Connected why:\"handshake\"");
	CHECK(!evlog_read(&cur, &ev, &lost) && lost == 0);
	/* a reader that falls behind a full ring learns how many it lost */
	uint64_t slow = cur;
	for (int i = 0; i < EVLOG_RING + 5; i++)
		evlog_emit(SO_ROLE, "r0", NULL, i & 1, !(i & 1), "flip");
	CHECK(evlog_read(&slow, &ev, &lost) && lost == 5);
	uint64_t n = 1;
	while (evlog_read(&slow, &ev, &lost))
		n++;
	CHECK(n == EVLOG_RING && lost == 5);
	CHECK(evlog_fd() >= 3);
}

int main(void)
{
	return unit_main("state");
}

/* state — see state.h. The tables list every transition dipole performs;
 * one that is missing is a bug in the caller, not in the table, unless the
 * table is shown wrong against DRBD's semantics. */
#include "state.h"

#define N(a) (int)(sizeof(a) / sizeof((a)[0]))
#define BIT(s) (1u << (s))

/* allowed[from]: the states `from` may go to (besides itself) */
static const unsigned disk_next[] = {
	/* a disk is attached only once per daemon: Diskless is final, except
	 * at attach (engine_open) */
	[DS_DISKLESS] = BIT(DS_ATTACHING),
	[DS_ATTACHING] = BIT(DS_INCONSISTENT) | BIT(DS_OUTDATED) | BIT(DS_CONSISTENT) | BIT(DS_UPTODATE),
	[DS_FAILED] = 0,
	/* a finished resync, or `primary --force` */
	[DS_INCONSISTENT] = BIT(DS_UPTODATE),
	/* known current again (a peer with the newest data is back), forced,
	 * or the target of a resync */
	[DS_OUTDATED] = BIT(DS_UPTODATE) | BIT(DS_INCONSISTENT),
	[DS_CONSISTENT] = BIT(DS_UPTODATE) | BIT(DS_INCONSISTENT) | BIT(DS_OUTDATED),
	/* a peer or the quorum has newer data (Outdated); with quorum, a
	 * restarted node is Consistent until it meets its disk peer
	 * (docs/quorum.md); a resync target or `invalidate` (Inconsistent) */
	[DS_UPTODATE] = BIT(DS_OUTDATED) | BIT(DS_CONSISTENT) | BIT(DS_INCONSISTENT),
};

static const unsigned conn_next[] = {
	[CS_STANDALONE] = BIT(CS_CONNECTING),
	/* `disconnect`, a refusal by state, or shutting down while dialing */
	[CS_CONNECTING] = BIT(CS_CONNECTED) | BIT(CS_STANDALONE) | BIT(CS_DISCONNECTING),
	/* lost (straight back to Connecting) or torn down on purpose */
	[CS_CONNECTED] = BIT(CS_CONNECTING) | BIT(CS_DISCONNECTING),
	/* `connect` may come before the connection thread saw `disconnect` */
	[CS_DISCONNECTING] = BIT(CS_STANDALONE) | BIT(CS_CONNECTING),
};

static const unsigned repl_next[] = {
	[RS_OFF] = BIT(RS_ESTABLISHED),
	[RS_ESTABLISHED] = BIT(RS_OFF) | BIT(RS_SYNC_SOURCE) | BIT(RS_STARTING_SYNC_T),
	[RS_SYNC_SOURCE] = BIT(RS_OFF) | BIT(RS_ESTABLISHED),
	[RS_SYNC_TARGET] = BIT(RS_OFF) | BIT(RS_ESTABLISHED),
	[RS_STARTING_SYNC_T] = BIT(RS_OFF) | BIT(RS_SYNC_TARGET),
};

static int legal(const unsigned *next, int n, int from, int to)
{
	if (from < 0 || from >= n || to < 0 || to >= n)
		return 0;
	return from == to || (next[from] & BIT(to)) != 0;
}

int state_role_legal(int from, int to)
{
	/* Secondary <-> Primary; what may refuse a promotion is the engine's
	 * business (disk state, peers), not the table's */
	return from >= ROLE_SECONDARY && from <= ROLE_PRIMARY && to >= ROLE_SECONDARY && to <= ROLE_PRIMARY;
}

int state_disk_legal(int from, int to)
{
	if (from < 0 || from >= N(disk_next) || to < 0 || to >= N(disk_next))
		return 0;
	/* an I/O error or a detach ends any disk state; Failed leads to Diskless */
	if (to == DS_FAILED || to == DS_DISKLESS)
		return from != DS_DISKLESS || to == DS_DISKLESS;
	return legal(disk_next, N(disk_next), from, to);
}

int state_conn_legal(int from, int to)
{
	return legal(conn_next, N(conn_next), from, to);
}

int state_repl_legal(int from, int to)
{
	return legal(repl_next, N(repl_next), from, to);
}

int state_legal(enum state_obj o, int from, int to)
{
	switch (o) {
	case SO_ROLE:
		return state_role_legal(from, to);
	case SO_DISK:
		return state_disk_legal(from, to);
	case SO_CONN:
		return state_conn_legal(from, to);
	case SO_REPL:
		return state_repl_legal(from, to);
	case SO_PEER_ROLE:
		return from >= -1 && from <= ROLE_PRIMARY && to >= -1 && to <= ROLE_PRIMARY;
	case SO_PEER_DISK:
		return from >= -1 && from < N(disk_next) && to >= -1 && to < N(disk_next);
	default:
		return 0;
	}
}

const char *role_name(enum role r)
{
	return r == ROLE_PRIMARY ? "Primary" : r == ROLE_SECONDARY ? "Secondary" : "Unknown";
}

const char *disk_state_name(enum disk_state d)
{
	static const char *n[] = { "Diskless", "Attaching", "Failed", "Inconsistent",
				   "Outdated", "Consistent", "UpToDate" };
	return (unsigned)d < (unsigned)N(n) ? n[d] : "Unknown";
}

const char *conn_state_name(enum conn_state c)
{
	static const char *n[] = { "StandAlone", "Connecting", "Connected", "Disconnecting" };
	return (unsigned)c < (unsigned)N(n) ? n[c] : "?";
}

const char *repl_state_name(enum repl_state r)
{
	static const char *n[] = { "Off", "Established", "SyncSource", "SyncTarget", "StartingSyncT" };
	return (unsigned)r < (unsigned)N(n) ? n[r] : "?";
}

const char *state_value_name(enum state_obj o, int v)
{
	switch (o) {
	case SO_ROLE:
		return role_name((enum role)v);
	case SO_DISK:
		return disk_state_name((enum disk_state)v);
	case SO_CONN:
		return conn_state_name((enum conn_state)v);
	case SO_REPL:
		return repl_state_name((enum repl_state)v);
	case SO_PEER_ROLE:
		return v < 0 ? "Unknown" : role_name((enum role)v);
	case SO_PEER_DISK:
		return v < 0 ? "DUnknown" : disk_state_name((enum disk_state)v);
	default:
		return "?";
	}
}

const char *state_obj_name(enum state_obj o)
{
	static const char *n[] = { "role", "disk", "connection", "replication", "peer-role", "peer-disk" };
	return (unsigned)o < (unsigned)N(n) ? n[o] : "?";
}

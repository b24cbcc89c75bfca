/* state — the states of a resource and of its peers, their names, and which
 * transitions between them are legal (DRBD's vocabulary and semantics,
 * ../shared/design.md "Vocabulary").
 *
 * Pure: no locks, no I/O, links alone (tests/unit/test_state.c). The objects
 * that own these states (engine.h: role and disk; peer_int.h: connection and
 * replication) change them only through their transition functions, which
 * ask state_*_legal() first and refuse (and log as a bug) what it denies.
 * A transition to the same state is no change and always legal.
 * Enum values never change meaning: some travel on the wire (role, disk).
 */
#ifndef DIPOLE_STATE_H
#define DIPOLE_STATE_H

enum role { ROLE_SECONDARY, ROLE_PRIMARY };
enum disk_state { DS_DISKLESS, DS_ATTACHING, DS_FAILED, DS_INCONSISTENT, DS_OUTDATED, DS_CONSISTENT, DS_UPTODATE };
enum conn_state { CS_STANDALONE, CS_CONNECTING, CS_CONNECTED, CS_DISCONNECTING };
/* StartingSyncT: the source announced a resync, its bitmap is on the way */
enum repl_state { RS_OFF, RS_ESTABLISHED, RS_SYNC_SOURCE, RS_SYNC_TARGET, RS_STARTING_SYNC_T };

/* What changed; the names are those of `events` lines (docs/dipole.8.md). */
enum state_obj { SO_ROLE, SO_DISK, SO_CONN, SO_REPL, SO_PEER_ROLE, SO_PEER_DISK, SO_COUNT };

/* 1 when `from -> to` is a legal transition of that object, else 0
 * (also 0 for values outside the enum). */
int state_role_legal(int from, int to);
int state_disk_legal(int from, int to);
int state_conn_legal(int from, int to);
int state_repl_legal(int from, int to);
/* The peer's role and disk are its reports: any known value (or -1,
 * unknown) may follow any other. */
int state_legal(enum state_obj o, int from, int to);

/* Names (contract vocabulary); out-of-range values give "Unknown" / "?". */
const char *role_name(enum role r);
const char *disk_state_name(enum disk_state d);
const char *conn_state_name(enum conn_state c);
const char *repl_state_name(enum repl_state r);
/* A value of object `o` by name: peer role/disk -1 is "Unknown"/"DUnknown". */
const char *state_value_name(enum state_obj o, int v);
/* The object's name in `events` lines: role, disk, connection, replication,
 * peer-role, peer-disk. */
const char *state_obj_name(enum state_obj o);

#endif

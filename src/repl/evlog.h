/* evlog — the state-change event log of this process: every transition of
 * a role, disk, connection or replication state (state.h) is appended here
 * by the object's transition function, and `dipole events` subscribers read
 * it (src/daemon/events.c).
 *
 * A bounded ring, process-wide (one daemon serves one resource). Appending
 * never blocks on readers: when the ring is full the oldest event is dropped,
 * and a reader that had not read it learns how many it lost. Sequence
 * numbers start at 1 and have no gaps, so order and loss are both visible.
 *
 * Locking: one internal mutex, a leaf: evlog_emit may be called holding any
 * other lock (the transition functions call it under e->lock or p->lock) and
 * takes none of them.
 */
#ifndef DIPOLE_EVLOG_H
#define DIPOLE_EVLOG_H

#include <stddef.h>
#include <stdint.h>

#include "state.h"

#define EVLOG_RING 1024

struct evlog_event {
	uint64_t seq;          /* 1, 2, ... */
	uint64_t time_us;      /* CLOCK_MONOTONIC */
	enum state_obj obj;
	int from, to;
	char res[64];          /* the resource */
	char peer[64];         /* the peer host, "" for the resource's own states */
	char why[160];
	/* a record (evlog_emit_record) rather than a transition: its kind
	 * ("fs:owner"), and its "key:value" words; kind "" for a transition */
	char kind[16];
	char fields[160];
};

/* Append a transition (from != to). Never fails: a full ring drops its
 * oldest event. peer may be NULL. */
void evlog_emit(enum state_obj obj, const char *res, const char *peer, int from, int to, const char *why);
/* Append a record that is not a transition of state.h's objects (the
 * filesystem's events, src/fs/fsevents.h): formatted as
 * "change KIND name:RES FIELDS why:"..." seq:N time-us:T". kind: up to 15
 * characters; fields: "key:value" words, one space apart, no quotes (cut
 * at 159 characters). Never fails, as evlog_emit. */
void evlog_emit_record(const char *kind, const char *res, const char *fields, const char *why);
/* The sequence number the next event will get: a reader starting "now"
 * reads from there. */
uint64_t evlog_next_seq(void);
/* Copy the event with sequence number *cursor (or, when that one was
 * dropped, the oldest kept one, adding the number skipped to *lost) and
 * advance *cursor. Returns 1 with an event, 0 when none is newer. */
int evlog_read(uint64_t *cursor, struct evlog_event *out, uint64_t *lost);
/* An eventfd (EFD_NONBLOCK) that becomes readable after an append, for
 * poll(); the reader drains it. -errno when it cannot be made. */
int evlog_fd(void);
/* The event as one `events` line without the newline:
 * "change OBJ name:RES [peer:PEER] old:FROM new:TO why:"..." seq:N time-us:T",
 * or a record's "change KIND name:RES FIELDS why:"..." seq:N time-us:T".
 * Returns what snprintf returns. */
int evlog_format(const struct evlog_event *ev, char *buf, size_t len);

#endif

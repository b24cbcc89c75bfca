/* events — the daemon side of `dipole events`: state changes streamed to
 * subscribers as they happen, without polling.
 *
 * A subscriber is a control connection that asked "events". It gets the
 * reply line "0 \n", then "state <state line>\n" (what the "state" request
 * answers), then for every transition in the event log (evlog.h), in order,
 * "change ...\n" (evlog_format), "lost N\n" when it fell more than the ring
 * behind, and "state ...\n" again whenever the state line changed after a
 * batch of changes. The stream ends when the daemon goes down.
 *
 * One thread serves every subscriber; the main loop only hands the
 * connection over, so it keeps serving other requests. A subscriber that
 * does not read is dropped (after the socket's send timeout), never waited
 * for by the data path: the event log drops its oldest events instead.
 * Locking: internal; the state-line callback runs on the events thread,
 * never after events_state(NULL, NULL) returned.
 */
#ifndef DIPOLE_EVENTS_H
#define DIPOLE_EVENTS_H

#include "util.h"

/* Start the events thread (after the fork: threads do not survive it).
 * 0 or -errno. */
int events_start(void);
/* Give the thread the state line: state_line(arg, sb) appends it (without
 * "state ", with its newline); it runs on the events thread and on the
 * caller of events_subscribe. NULL: the daemon is tearing down what it
 * reads; no more state lines, changes still stream. Returns once no
 * callback runs. */
void events_state(void (*state_line)(void *arg, struct strbuf *sb), void *arg);
/* Take over control connection `fd` (the request was "events"): answer,
 * send the current state, and stream from here on. On failure replies
 * with the reason (or closes fd) and returns -errno. */
int events_subscribe(int fd);
/* Deliver what is logged, end every stream and join the thread. */
void events_stop(void);

#endif

/* confq — `dipole doctor`'s question to a running daemon of the same
 * resource on another node: which configuration does it run (a digest),
 * and what time is it there (docs/doctor.md)?
 *
 * It travels over the replication port (listener.h) as its own channel,
 * CH_QUERY (wire.h): HELLO both ways naming the asker's node-id, with a
 * shared secret the usual HMAC proof both ways (without one, the asker
 * must come from its configured address), then P_CONF_QUERY ->
 * P_CONF_INFO, and the connection closes. It changes nothing on the
 * answering node and never touches its peer links.
 *
 * The digest is SHA-256 of the resource as `dump` prints it
 * (cfg_dump_resource): the same for the same meaning whatever the file's
 * layout, comments or include structure; any option, host, address or
 * disk path that differs changes it.
 *
 * Threads: the answering side serves each query on a short-lived thread
 * of its own (at most CONFQ_MAX at a time), never on the listener's
 * accept thread; `lock` guards the count and `closing`.
 */
#ifndef DIPOLE_CONFQ_H
#define DIPOLE_CONFQ_H

#include <stdint.h>

#include "config.h"
#include "listener.h"

#define CONFQ_DIGEST 32
#define CONFQ_MAX 4

struct confq;

/* SHA-256 of cfg_dump_resource(r) into out. 0 or -ENOMEM. */
int confq_digest(const struct cfg_resource *r, uint8_t out[CONFQ_DIGEST]);

/* Answer queries on listener l as host `me` of r (both outlive it).
 * 0 or -errno. */
int confq_serve(struct confq **out, struct listener *l, const struct cfg_resource *r, const struct cfg_host *me);
/* Stop answering: no new query is taken, running ones finish (each is
 * bounded by its socket timeouts, 5 s). NULL is fine. */
void confq_stop(struct confq *q);

/* The answer to one query. */
struct confq_answer {
	uint8_t digest[CONFQ_DIGEST];
	int64_t clock_offset_ns;   /* the peer's wall clock minus this node's */
	uint64_t clock_error_ns;   /* the offset is known to within this (half the round trip) */
};

/* Ask the daemon of r on `peer`, as `me` (dialing from me's address).
 * 0, or -ECONNREFUSED / -ETIMEDOUT / -EHOSTUNREACH... (not reachable),
 * -EACCES (authentication failed: the shared secrets differ), -EPROTO
 * (refused or not understood: why says what the peer said), with
 * why[256]. Blocks up to about 10 s. */
int confq_ask(const struct cfg_resource *r, const struct cfg_host *me, const struct cfg_host *peer,
	      struct confq_answer *a, char *why);

#endif

/* handler — run a script from the config's `handlers {}` section, as DRBD
 * does: through /bin/sh -c, with DRBD's environment variables (DRBD_RESOURCE,
 * DRBD_PEERS, DRBD_PEER_ADDRESS, DRBD_PEER_AF, DRBD_MY_ADDRESS, DRBD_MY_AF,
 * DRBD_PEER_NODE_ID, DRBD_MY_NODE_ID, DRBD_MINOR) plus DIPOLE_HANDLER (the
 * handler's name). The exit code and any failure to start are logged.
 */
#ifndef DIPOLE_HANDLER_H
#define DIPOLE_HANDLER_H

#include "config.h"

/* Start handler `name` if configured. wait: return its exit code (or -1 if
 * it could not run); otherwise it runs on its own and 0 is returned.
 * Returns -2 when no such handler is configured. */
int handler_run(const struct cfg_resource *r, const char *name, const struct cfg_host *me,
		const struct cfg_host *peer, int wait);

#endif

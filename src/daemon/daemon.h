/* daemon — the per-resource daemon started by `dipole up`: owns the engine,
 * the NBD server, the FUSE file and loop device, the control socket and the
 * runtime files in RUN_DIR. Runs until `down` or SIGTERM/SIGINT.
 */
#ifndef DIPOLE_DAEMON_H
#define DIPOLE_DAEMON_H

#include "cli.h"

/* Remove what a killed daemon of `res` left behind (FUSE mount, loop device,
 * sockets). Prints what it cleaned to stderr. Caller must hold the resource
 * lock or know no daemon runs. Returns 0, or <0 if something could not be
 * cleaned. */
int daemon_clean_stale(const struct cli *cli, const char *res, int quiet);

#endif

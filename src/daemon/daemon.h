/* daemon — the per-resource daemon started by `dipole up`: owns the engine,
 * the NBD server, the FUSE file and loop device, the control socket and the
 * runtime files in RUN_DIR. Runs until `down` or SIGTERM/SIGINT.
 *
 * The command line (src/cli) parses `up`'s arguments and calls daemon_up;
 * the daemon knows nothing of the command line above it.
 */
#ifndef DIPOLE_DAEMON_H
#define DIPOLE_DAEMON_H

#include <stddef.h>

#include "config.h"
#include "ctl.h"

/* What `dipole up RES` was asked to do. */
struct daemon_args {
	const char *run_dir;             /* runtime files: RUN_DIR/RES.{nbd,ctl,pid,log,fuse} */
	const struct cfg_resource *r;    /* the resource, from the loaded configuration */
	const struct cfg_host *h;        /* this node's host section in r */
	const char *device;              /* device symlink path, "none", or NULL: the config's */
	const char *nbd_tcp;             /* NBD over TCP at IP:PORT, NULL: the config's */
	const char *metrics_listen;      /* Prometheus endpoint at IP:PORT, NULL: the config's
					  * metrics-address, or none (docs/metrics.md) */
	int foreground;                  /* run in this process instead of forking */
};

/* Start the daemon. Without `foreground`, forks, waits until the exports
 * serve (or startup failed) and returns in the parent; the child runs until
 * `down`. Returns an exit code (enum exit_code); messages go to stderr. */
int daemon_up(const struct daemon_args *a);

/* RUN_DIR/RES.SUFFIX into out[len]. */
void daemon_path(const char *run_dir, const char *res, const char *suffix, char *out, size_t len);

/* Remove what a killed daemon of `res` left behind (FUSE mount, loop device,
 * sockets). Prints what it cleaned to stderr. Caller must hold the resource
 * lock or know no daemon runs. Returns 0, or <0 if something could not be
 * cleaned. */
int daemon_clean_stale(const char *run_dir, const char *res, int quiet);

#endif

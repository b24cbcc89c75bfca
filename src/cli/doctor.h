/* doctor — `dipole doctor [RES]` (docs/doctor.md): checks, before
 * anything starts, what a two-node setup gets wrong, each finding with a
 * severity and a fix. Private to src/cli: doctor.c runs the checks and
 * prints them, doctor_host.c holds those that look at this machine
 * (addresses, ports, disks, /dev/fuse, loop devices).
 *
 * Single-threaded; no locks. The checks only look: they open disks
 * read-only, bind sockets they close at once, and ask peers' daemons one
 * question over the replication port (confq.h).
 */
#ifndef DIPOLE_DOCTOR_H
#define DIPOLE_DOCTOR_H

#include <sys/types.h>

#include "cli.h"
#include "config.h"

enum dr_sev { DR_INFO, DR_WARNING, DR_ERROR };

struct dr_finding {
	enum dr_sev sev;
	char check[32];   /* a stable name: disk-missing, port-in-use... (docs/doctor.md) */
	char res[64];     /* the resource, "" for the configuration as a whole */
	char where[300];  /* file:line:col it concerns, "" none */
	char msg[600];
	char fix[600];    /* what to do, "" for info */
};

struct doctor {
	struct cli *cli;
	struct dr_finding *f;
	int n, nerr, nwarn;
	pid_t daemon_pid;   /* the running daemon of the resource being checked, 0 none */
};

/* Record a finding. loc may be NULL; fix may be NULL (info). */
void dr_add(struct doctor *dr, enum dr_sev sev, const char *check, const char *res, const struct cfg_loc *loc,
	    const char *fix, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* doctor_host.c: this machine. Each adds its findings for host h of r. */
void dr_check_addresses(struct doctor *dr, const struct cfg_resource *r, const struct cfg_host *h);
void dr_check_disk(struct doctor *dr, const struct cfg_resource *r, const struct cfg_host *h);
void dr_check_kernel(struct doctor *dr, const struct cfg_resource *r, const struct cfg_host *h);
/* The pid of the running daemon of `res` under the cli's run dir, 0 none. */
pid_t dr_daemon_pid(struct cli *cli, const char *res);

#endif

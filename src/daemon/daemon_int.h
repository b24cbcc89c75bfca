/* daemon_int — what the files of the daemon share (daemon.c, control.c,
 * status.c): struct daemon and the functions one file calls in another. Not
 * for use outside src/daemon/.
 *
 * Locking: struct daemon is owned by the daemon's main thread, which starts
 * and stops everything and serves control requests one at a time. The other
 * threads (NBD, FUSE, peers, quorum) reach the engine and their own objects,
 * each with its own locks; of struct daemon, only the local-io-error hook
 * reads r, h and other, which startup sets once.
 */
#ifndef DIPOLE_DAEMON_INT_H
#define DIPOLE_DAEMON_INT_H

#include "daemon.h"
#include "engine.h"
#include "fusedev.h"
#include "listener.h"
#include "nbd.h"
#include "peer.h"
#include "quorum.h"
#include "util.h"

struct daemon {
	const char *run_dir;
	const struct cfg_resource *r;
	const struct cfg_host *h;
	struct engine *e;
	struct nbd_server *nbd;
	struct fusedev *fuse;
	struct peer *peers[MD_MAX_PEERS]; /* the disk peers */
	int npeers;
	struct peer *peer;            /* the first disk peer, NULL if none */
	const struct cfg_host *other; /* its host (handlers' peer), NULL if none */
	struct listener *lsn;         /* the replication port, NULL without peers */
	struct quorum *quorum;        /* votes and vote links, NULL with one host */
	int loop_fd;
	char loop_dev[64];
	char device[1024];   /* symlink we created, "" if none */
	char nbd_path[512], ctl_path[512], pid_path[512], fuse_path[512], log_path[512];
	const char *nbd_tcp;
	int ctl_fd;
	int lock_fd;
};
/* Status of the resource for `dipole status`: human text, one JSON object
 * (../shared/design.md "Command line"), and the one-line state `events`
 * compares. Each appends to sb; caller is the main thread, and for the state
 * line also the events thread (events.h; it reads atomics and takes the
 * engine's, peers' and quorum's own locks). */
void status_text(struct daemon *d, struct strbuf *sb);
void status_json(struct daemon *d, struct strbuf *sb);
void status_state_line(struct daemon *d, struct strbuf *sb);

/* Serve one control request `line` on the accepted connection fd: replies
 * and closes fd, except for a `down` it agrees to, where it returns 1 and
 * leaves the reply to the caller (after the shutdown). Else returns 0. */
int control_handle(struct daemon *d, int fd, const char *line);

#endif

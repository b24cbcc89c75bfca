/* control — the requests a running daemon serves on its control socket
 * (src/daemon/ctl.h): status, roles, connections, verify, down. See
 * daemon_int.h. */
#include "daemon_int.h"
#include "ctl.h"
#include "loopdev.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int device_in_use(struct daemon *d)
{
	return d->loop_dev[0] && loopdev_busy(d->loop_dev);
}

int control_handle(struct daemon *d, int fd, char *req)
{
	struct strbuf body = { 0 };
	char msg[256];
	int force = strstr(req, "--force") != NULL;

	if (!strcmp(req, "status")) {
		status_text(d, &body);
		ctl_reply(fd, 0, "", body.buf);
	} else if (!strcmp(req, "status-json")) {
		status_json(d, &body);
		ctl_reply(fd, 0, "", body.buf);
	} else if (!strcmp(req, "state")) {
		status_state_line(d, &body);
		ctl_reply(fd, 0, "", body.buf);
	} else if (!strncmp(req, "primary", 7)) {
		int rc = 0;
		if (d->h->diskless) {
			snprintf(msg, sizeof msg, "%s has no disk (disk none): it is a tiebreaker and cannot be Primary",
				 d->h->name);
			rc = -EPERM;
		} else if (!force && atomic_load(&d->e->role) != ROLE_PRIMARY) {
			rc = quorum_may_promote(d->quorum, msg);
		}
		if (!rc)
			rc = engine_set_role(d->e, ROLE_PRIMARY, force, msg);
		if (!rc && d->loop_fd >= 0)
			loopdev_set_ro(d->loop_fd, 0);
		ctl_reply(fd, rc == -EPERM || rc == -EBUSY ? 3 : rc ? 1 : 0, rc ? msg : "", NULL);
	} else if (!strncmp(req, "secondary", 9)) {
		if (device_in_use(d)) {
			snprintf(msg, sizeof msg, "refusing to become Secondary: %s is in use (mounted or open); "
				 "unmount it first", d->device[0] ? d->device : d->loop_dev);
			ctl_reply(fd, 3, msg, NULL);
		} else {
			if (d->loop_fd >= 0)
				loopdev_set_ro(d->loop_fd, 1);
			int rc = engine_set_role(d->e, ROLE_SECONDARY, 0, msg);
			ctl_reply(fd, rc ? 1 : 0, rc ? msg : "", NULL);
		}
	} else if (!strcmp(req, "resume-io") && quorum_held(d->quorum, msg)) {
		ctl_reply(fd, 3, msg, NULL);
	} else if (!strcmp(req, "resume-io")) {
		int was = engine_is_suspended(d->e);
		uint32_t gone = 0;
		for (int i = 0; i < d->npeers; i++) {
			peer_io_resumed(d->peers[i]);
			if (!peer_is_connected(d->peers[i]))
				gone |= 1u << peer_slot(d->peers[i]);
		}
		engine_resume(d->e, "by the administrator (dipole resume-io)");
		/* writing on without a peer: a new generation, as any Primary alone */
		if (was && gone && atomic_load(&d->e->role) == ROLE_PRIMARY)
			engine_new_generation(d->e, gone, "I/O resumed by the administrator without a peer");
		ctl_reply(fd, was ? 0 : 3, was ? "" : "I/O is not suspended", NULL);
	} else if (!strcmp(req, "verify") || !strcmp(req, "verify-status")) {
		if (!d->peer) {
			ctl_reply(fd, 3, "this resource has no peer to compare with", NULL);
		} else if (!strcmp(req, "verify")) {
			/* several peers: the first connected one */
			struct peer *v = d->peer;
			for (int i = d->npeers - 1; i >= 0; i--)
				if (peer_is_connected(d->peers[i]))
					v = d->peers[i];
			int rc = peer_verify_start(v, msg);
			ctl_reply(fd, rc ? 3 : 0, rc ? msg : "", NULL);
		} else {
			peer_verify_status(d->peer, &body);
			ctl_reply(fd, 0, "", body.buf);
		}
	} else if (!strncmp(req, "disconnect", 10) || !strncmp(req, "connect", 7) || !strcmp(req, "invalidate")) {
		if (!d->peer) {
			ctl_reply(fd, 3, "this resource has no peer", NULL);
		} else if (req[0] == 'i') {
			/* from the first peer that can serve it */
			int rc = -EBUSY;
			for (int i = 0; i < d->npeers && rc; i++)
				rc = peer_invalidate(d->peers[i], msg);
			ctl_reply(fd, rc ? 3 : 0, rc ? msg : "", NULL);
		} else {
			for (int i = 0; i < d->npeers; i++) {
				if (req[0] == 'd')
					peer_disconnect(d->peers[i]);
				else
					peer_connect(d->peers[i], strstr(req, "--discard-my-data") != NULL);
			}
			ctl_reply(fd, 0, "", NULL);
		}
	} else if (!strncmp(req, "down", 4)) {
		if (device_in_use(d) && !force) {
			snprintf(msg, sizeof msg, "refusing to go down: %s is in use (mounted or open); unmount it, "
				 "or use 'down --force' (its users then get I/O errors)",
				 d->device[0] ? d->device : d->loop_dev);
			ctl_reply(fd, 3, msg, NULL);
		} else {
			strbuf_free(&body);
			return 1; /* reply after shutdown, so `down` returns when it is done */
		}
	} else {
		snprintf(msg, sizeof msg, "unknown control request '%.60s'", req);
		ctl_reply(fd, 2, msg, NULL);
	}
	strbuf_free(&body);
	return 0;
}

/* control — the requests a running daemon serves on its control socket
 * (src/daemon/ctl.h): a table { name, options, handler } with one handler per
 * command. See daemon_int.h.
 *
 * Every handler runs on the daemon's main thread, one request at a time, and
 * replies with an exit code of ../shared/design.md "Command line": 0 done,
 * 1 failed, 2 not understood, 3 refused by the state; but `events`, whose
 * connection the events thread (events.h) keeps and streams on.
 */
#include "daemon_int.h"
#include "ctl.h"
#include "events.h"
#include "loopdev.h"
#include "resize.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int device_in_use(struct daemon *d)
{
	return d->loop_dev[0] && loopdev_busy(d->loop_dev);
}

/* A reply with a body built by fill. */
static int reply_body(int fd, struct daemon *d, void (*fill)(struct daemon *, struct strbuf *))
{
	struct strbuf body = { 0 };
	fill(d, &body);
	ctl_reply(fd, EXIT_OK, "", body.buf);
	strbuf_free(&body);
	return 0;
}

static int do_status(void *ctx, int fd, const struct ctl_req *req)
{
	(void)req;
	return reply_body(fd, ctx, status_text);
}

static int do_status_json(void *ctx, int fd, const struct ctl_req *req)
{
	(void)req;
	return reply_body(fd, ctx, status_json);
}

static int do_state(void *ctx, int fd, const struct ctl_req *req)
{
	(void)req;
	return reply_body(fd, ctx, status_state_line);
}

/* One look at the startup wait; `dipole wait-connect` asks again until it
 * is over (the main thread must not block on one client). */
static int do_wait_connect(void *ctx, int fd, const struct ctl_req *req)
{
	(void)req;
	return reply_body(fd, ctx, startup_wait_reply);
}

/* The connection stays open: the events thread streams on it. */
static int do_events(void *ctx, int fd, const struct ctl_req *req)
{
	(void)ctx;
	(void)req;
	events_subscribe(fd);
	return 0;
}

int daemon_promote(struct daemon *d, int force, char *msg)
{
	int rc = 0;

	msg[0] = 0;
	if (d->h->diskless) {
		snprintf(msg, 256, "%s has no disk (disk none): it is a tiebreaker and cannot be Primary",
			 d->h->name);
		rc = -EPERM;
	} else if (atomic_load(&d->e->role) != ROLE_PRIMARY && fsmount_refuses_primary(d, msg)) {
		rc = -EPERM;
	} else if (!force && atomic_load(&d->e->role) != ROLE_PRIMARY) {
		rc = quorum_may_promote(d->quorum, msg);
	}
	if (!rc)
		rc = engine_set_role(d->e, ROLE_PRIMARY, force, msg);
	if (!rc && d->loop_fd >= 0)
		loopdev_set_ro(d->loop_fd, 0);
	return rc;
}

static int do_primary(void *ctx, int fd, const struct ctl_req *req)
{
	char msg[256];
	int rc = daemon_promote(ctx, ctl_req_has(req, "--force"), msg);
	ctl_reply(fd, rc == -EPERM || rc == -EBUSY ? EXIT_STATE : rc ? EXIT_FAIL : EXIT_OK, rc ? msg : "", NULL);
	return 0;
}

int daemon_demote(struct daemon *d, char *msg)
{
	msg[0] = 0;
	if (d->loop_fd >= 0)
		loopdev_set_ro(d->loop_fd, 1);
	int rc = engine_set_role(d->e, ROLE_SECONDARY, 0, msg);
	if (rc && d->loop_fd >= 0 && atomic_load(&d->e->role) == ROLE_PRIMARY)
		loopdev_set_ro(d->loop_fd, 0);
	return rc;
}

static int do_secondary(void *ctx, int fd, const struct ctl_req *req)
{
	struct daemon *d = ctx;
	char msg[256];
	(void)req;

	if (fsmount_refuses_secondary(d, msg)) {
		ctl_reply(fd, EXIT_STATE, msg, NULL);
		return 0;
	}
	if (device_in_use(d)) {
		snprintf(msg, sizeof msg, "refusing to become Secondary: %s is in use (mounted or open); "
			 "unmount it first", d->device[0] ? d->device : d->loop_dev);
		ctl_reply(fd, EXIT_STATE, msg, NULL);
		return 0;
	}
	int rc = daemon_demote(d, msg);
	ctl_reply(fd, rc ? EXIT_FAIL : EXIT_OK, rc ? msg : "", NULL);
	return 0;
}

static int do_resume_io(void *ctx, int fd, const struct ctl_req *req)
{
	struct daemon *d = ctx;
	char msg[256];
	(void)req;

	/* the quorum rules hold the I/O: the administrator cannot override them */
	if (quorum_held(d->quorum, msg)) {
		ctl_reply(fd, EXIT_STATE, msg, NULL);
		return 0;
	}
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
	ctl_reply(fd, was ? EXIT_OK : EXIT_STATE, was ? "" : "I/O is not suspended", NULL);
	return 0;
}

/* Commands about the peers: refused with `why` when there is none. */
static int no_peer(struct daemon *d, int fd, const char *why)
{
	if (d->peer)
		return 0;
	ctl_reply(fd, EXIT_STATE, why, NULL);
	return 1;
}

static int do_verify(void *ctx, int fd, const struct ctl_req *req)
{
	struct daemon *d = ctx;
	char msg[256];
	(void)req;

	if (no_peer(d, fd, "this resource has no peer to compare with"))
		return 0;
	/* several peers: the first connected one */
	struct peer *v = d->peer;
	for (int i = d->npeers - 1; i >= 0; i--)
		if (peer_is_connected(d->peers[i]))
			v = d->peers[i];
	int rc = peer_verify_start(v, msg);
	ctl_reply(fd, rc ? EXIT_STATE : EXIT_OK, rc ? msg : "", NULL);
	return 0;
}

static int do_verify_status(void *ctx, int fd, const struct ctl_req *req)
{
	struct daemon *d = ctx;
	struct strbuf body = { 0 };
	(void)req;

	if (no_peer(d, fd, "this resource has no peer to compare with"))
		return 0;
	peer_verify_status(d->peer, &body);
	ctl_reply(fd, EXIT_OK, "", body.buf);
	strbuf_free(&body);
	return 0;
}

static int do_connect(void *ctx, int fd, const struct ctl_req *req)
{
	struct daemon *d = ctx;

	if (no_peer(d, fd, "this resource has no peer"))
		return 0;
	for (int i = 0; i < d->npeers; i++)
		peer_connect(d->peers[i], ctl_req_has(req, "--discard-my-data"));
	ctl_reply(fd, EXIT_OK, "", NULL);
	return 0;
}

static int do_disconnect(void *ctx, int fd, const struct ctl_req *req)
{
	struct daemon *d = ctx;
	(void)req;

	if (no_peer(d, fd, "this resource has no peer"))
		return 0;
	for (int i = 0; i < d->npeers; i++)
		peer_disconnect(d->peers[i]);
	ctl_reply(fd, EXIT_OK, "", NULL);
	return 0;
}

static int do_invalidate(void *ctx, int fd, const struct ctl_req *req)
{
	struct daemon *d = ctx;
	char msg[256];
	(void)req;

	if (no_peer(d, fd, "this resource has no peer"))
		return 0;
	/* from the first peer that can serve it */
	int rc = -EBUSY;
	for (int i = 0; i < d->npeers && rc; i++)
		rc = peer_invalidate(d->peers[i], msg);
	ctl_reply(fd, rc ? EXIT_STATE : EXIT_OK, rc ? msg : "", NULL);
	return 0;
}

/* `resize`: grow the device to the smallest usable size of all disk nodes
 * after their backing disks grew (resize.h). Every check comes before
 * anything changes; a refusal says what and where. */
static int do_resize(void *ctx, int fd, const struct ctl_req *req)
{
	struct daemon *d = ctx;
	struct engine *e = d->e;
	char msg[MD_MSG_MAX + 64], err[MD_MSG_MAX], a[32], b[32], c[32];
	(void)req;

	if (!e->bm) {
		ctl_reply(fd, EXIT_STATE, "resize refused: this node has no disk (disk none); run it on a node with "
			  "one", NULL);
		return 0;
	}
	if (atomic_load(&e->dstate) != DS_UPTODATE) {
		snprintf(msg, sizeof msg, "resize refused: this node's disk is %s, not UpToDate; nothing was changed",
			 disk_state_name((enum disk_state)atomic_load(&e->dstate)));
		ctl_reply(fd, EXIT_STATE, msg, NULL);
		return 0;
	}
	for (int i = 0; i < d->npeers; i++) {
		if (peer_resize_check(d->peers[i], err)) {
			snprintf(msg, sizeof msg, "resize refused: %s; nothing was changed", err);
			ctl_reply(fd, EXIT_STATE, msg, NULL);
			return 0;
		}
	}
	uint64_t t0 = now_ns(), usable, agreed, old = atomic_load(&e->size);
	int rc = resize_prepare(e, &usable, err);
	if (rc) {
		snprintf(msg, sizeof msg, "resize failed on this node: %s", err);
		ctl_reply(fd, EXIT_FAIL, msg, NULL);
		return 0;
	}
	agreed = usable;
	const char *limit = "this node";
	for (int i = 0; i < d->npeers; i++) {
		uint64_t theirs = 0;
		rc = peer_resize_ask(d->peers[i], &theirs, err);
		if (rc) {
			snprintf(msg, sizeof msg, "resize failed: %s; the device keeps its size %s", err,
				 fmt_size(old, a, sizeof a));
			ctl_reply(fd, EXIT_FAIL, msg, NULL);
			return 0;
		}
		if (theirs < agreed) {
			agreed = theirs;
			limit = peer_resize_name(d->peers[i]);
		}
	}
	if (agreed < old) {
		snprintf(msg, sizeof msg, "resize refused: the smallest usable size is %s (on %s), below the device's "
			 "%s: shrinking below the data is refused; nothing was changed", fmt_size(agreed, a, sizeof a),
			 limit, fmt_size(old, b, sizeof b));
		ctl_reply(fd, EXIT_STATE, msg, NULL);
		return 0;
	}
	if (agreed == old) {
		snprintf(msg, sizeof msg, "nothing to grow: the device is %s, the usable size on %s (grow that backing "
			 "disk first)", fmt_size(old, a, sizeof a), limit);
		ctl_reply(fd, EXIT_OK, msg, NULL);
		return 0;
	}
	/* new requests wait while the size changes on every node: a write to
	 * the new area must not reach a node that has not grown yet */
	uint32_t mask = 0;
	for (int i = 0; i < d->npeers; i++)
		mask |= 1u << peer_slot(d->peers[i]);
	engine_suspend(e, "resize: the device size changes");
	rc = resize_set(e, agreed, mask);
	for (int i = 0; !rc && i < d->npeers; i++)
		rc = peer_resize_set(d->peers[i], agreed);
	engine_resume(e, "resize done");
	if (rc) {
		snprintf(msg, sizeof msg, "resize failed while setting the new size: %s (the new area is marked out "
			 "of sync and is resynced when the peers reconnect)", strerror(-rc));
		ctl_reply(fd, EXIT_FAIL, msg, NULL);
		return 0;
	}
	snprintf(msg, sizeof msg, "resized %s -> %s in %.3f s; the new area (%s) is resynced to the peers",
		 fmt_size(old, a, sizeof a), fmt_size(agreed, b, sizeof b), (double)(now_ns() - t0) / 1e9,
		 fmt_size(agreed - old, c, sizeof c));
	ctl_reply(fd, EXIT_OK, msg, NULL);
	return 0;
}

static int do_down(void *ctx, int fd, const struct ctl_req *req)
{
	struct daemon *d = ctx;
	char msg[256];

	/* a plain umount(8) just before (systemd stops the mount unit, then
	 * runs the service's ExecStop): the main loop releases it within a
	 * second; release it now instead of refusing */
	fsmount_check_unmounted(d);
	if (fsmount_refuses_down(d, ctl_req_has(req, "--force"), msg)) {
		ctl_reply(fd, EXIT_STATE, msg, NULL);
		return 0;
	}
	if (device_in_use(d) && !d->fs && !ctl_req_has(req, "--force")) {
		snprintf(msg, sizeof msg, "refusing to go down: %s is in use (mounted or open); unmount it, "
			 "or use 'down --force' (its users then get I/O errors)",
			 d->device[0] ? d->device : d->loop_dev);
		ctl_reply(fd, EXIT_STATE, msg, NULL);
		return 0;
	}
	return 1; /* reply after shutdown, so `down` returns when it is done */
}

static const char *const force_opt[] = { "--force", NULL };
static const char *const discard_opt[] = { "--discard-my-data", NULL };
static const char *const fs_mount_opts[] = { "--dir=", "--options=", "--fuse-fd", NULL };
static const char *const fs_umount_opts[] = { "--dir=", NULL };
static const char *const fs_move_opts[] = { "--node=", NULL };

static int do_fs_move(void *ctx, int fd, const struct ctl_req *req)
{
	return fsmount_move_request(ctx, fd, req);
}

static int do_fs_mount(void *ctx, int fd, const struct ctl_req *req)
{
	return fsmount_request(ctx, fd, req);
}

static int do_fs_umount(void *ctx, int fd, const struct ctl_req *req)
{
	return fsmount_umount_request(ctx, fd, req);
}

static const char *const fs_grace_opts[] = { "--expect=", NULL };

/* fs-grace [--expect=MASK]: the owner begins a lock grace period, as after
 * a failover (dipolefs_grace_begin; MASK: node ids, bit n for node n, whose
 * reclaims end it early). No CLI command sends it: the failover does, and
 * tests (tests/integ/fs_reclaim.sh) over the control socket. */
static int do_fs_grace(void *ctx, int fd, const struct ctl_req *req)
{
	struct daemon *d = ctx;
	char v[32] = "0", *end;
	if (!d->fs || d->fs_role != FSR_OWNER) {
		ctl_reply(fd, EXIT_STATE, "not the filesystem's owner here", NULL);
		return 0;
	}
	(void)ctl_req_value(req, "--expect=", v, sizeof v);
	unsigned long long expect = strtoull(v, &end, 0);
	if (end == v || *end) {
		ctl_reply(fd, EXIT_USAGE, "--expect: a node mask (bit n: node id n) expected", NULL);
		return 0;
	}
	dipolefs_grace_begin(d->fs, expect);
	ctl_reply(fd, EXIT_OK, "lock grace period begun", NULL);
	return 0;
}

/* What src/cli/cmd_ctl.c sends. */
static const struct ctl_cmd commands[] = {
	{ "status", NULL, do_status },
	{ "status-json", NULL, do_status_json },
	{ "state", NULL, do_state },
	{ "events", NULL, do_events },
	{ "wait-connect", NULL, do_wait_connect },
	{ "primary", force_opt, do_primary },
	{ "secondary", NULL, do_secondary },
	{ "resume-io", NULL, do_resume_io },
	{ "verify", NULL, do_verify },
	{ "verify-status", NULL, do_verify_status },
	{ "connect", discard_opt, do_connect },
	{ "disconnect", NULL, do_disconnect },
	{ "invalidate", NULL, do_invalidate },
	{ "resize", NULL, do_resize },
	{ "fs-mount", fs_mount_opts, do_fs_mount },
	{ "fs-umount", fs_umount_opts, do_fs_umount },
	{ "fs-grace", fs_grace_opts, do_fs_grace },
	{ "fs-move", fs_move_opts, do_fs_move },
	{ "down", force_opt, do_down },
};

int control_handle(struct daemon *d, int fd, const char *line)
{
	struct ctl_req req;
	const struct ctl_cmd *cmd;
	char msg[256];

	if (ctl_parse(line, commands, ARRAY_SIZE(commands), &req, &cmd, msg, sizeof msg)) {
		ctl_reply(fd, EXIT_USAGE, msg, NULL);
		return 0;
	}
	return cmd->fn(d, fd, &req);
}

/* daemon — `dipole up` and the daemon's life: startup, main loop, shutdown.
 * See daemon.h.
 *
 * Startup is a table of steps { name, start, stop } run in order: check the
 * configuration, lock RUN_DIR/RES.pid (one daemon per resource), clean what
 * a killed predecessor left, check the device path, attach the engine, fork,
 * then in the child start NBD, FUSE + loop device + device symlink, the
 * peers and quorum, and the control socket, and only then tell the waiting
 * parent "ready". When a step fails, the steps started before it are
 * stopped backwards; shutdown stops all of them the same way.
 *
 * Locking: the main thread does all of this, and then serves control
 * requests one at a time (control.c) until `down` or a signal: a request
 * runs to its reply before the next is accepted, so handlers need no lock
 * of their own for struct daemon (daemon_int.h).
 */
#include "daemon_int.h"
#include "resize.h"
#include "al.h"
#include "ctl.h"
#include "handler.h"
#include "engine.h"
#include "events.h"
#include "fusedev.h"
#include "log.h"
#include "listener.h"
#include "loopdev.h"
#include "nbd.h"
#include "peer.h"
#include "quorum.h"
#include "service.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/loop.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------- exports */

static void exports_stop(struct daemon *d)
{
	nbd_server_stop(d->nbd);
	d->nbd = NULL;
	if (d->device[0]) {
		unlink(d->device);
		d->device[0] = 0;
	}
	if (d->loop_fd >= 0) {
		/* the read-only flag belongs to /dev/loopN and outlives the
		 * binding: left set, the next user of the device (a losetup)
		 * would find it read-only */
		loopdev_set_ro(d->loop_fd, 0);
		fusedev_set_loop(d->fuse, "");
		int rc = loopdev_detach(d->loop_fd);
		if (rc)
			log_warn("detaching %s: %s", d->loop_dev, strerror(-rc));
		d->loop_fd = -1;
		d->loop_dev[0] = 0;
	}
	fusedev_stop(d->fuse);
	d->fuse = NULL;
}

static int exports_start(struct daemon *d, const char *device, char *err)
{
	int rc;

	rc = nbd_server_start(&d->nbd, d->e, d->r->name, d->nbd_path, d->nbd_tcp, err);
	if (rc)
		return rc;
	if (device && !strcmp(device, "none"))
		return 0;
	rc = fusedev_start(&d->fuse, d->e, d->fuse_path, d->r->name, err);
	if (rc)
		return rc;
	rc = loopdev_attach(fusedev_file(d->fuse), 0, d->loop_dev, sizeof d->loop_dev, &d->loop_fd, err);
	if (rc)
		return rc;
	/* Secondary: the block device refuses writes at the block layer too
	 * (a mark the watchdog clears if this process is killed) */
	fusedev_set_loop(d->fuse, d->loop_dev);
	loopdev_set_ro(d->loop_fd, 1);
	if (device) {
		if (symlink(d->loop_dev, device) < 0) {
			rc = -errno;
			snprintf(err, 256, "cannot create device link %s -> %s: %s", device, d->loop_dev, strerror(errno));
			return rc;
		}
		snprintf(d->device, sizeof d->device, "%s", device);
	}
	return 0;
}

/* on-io-error call-local-io-error: run the handler (it runs on its own) */
static void io_error_handler(void *arg, const char *what)
{
	struct daemon *d = arg;
	(void)what;
	if (handler_run(d->r, "local-io-error", d->h, d->other, 0) == -2)
		log_warn("on-io-error call-local-io-error, but no local-io-error handler is configured");
}

/* Start replication with the other hosts of the resource: the activity
 * log, the shared port, one peer per other disk host, quorum. */
static int peer_setup(struct daemon *d, char *err)
{
	int rc;
	const struct cfg_host *other = NULL;
	for (int i = 0; i < d->r->nhosts && !d->h->diskless; i++)
		if (&d->r->hosts[i] != d->h && !d->r->hosts[i].diskless && !other)
			other = &d->r->hosts[i];
	const char *oie = cfg_get(d->r, SECT_DISK, "on-io-error");
	d->e->on_io_error = !oie || !strcmp(oie, "detach") ? OIE_DETACH : !strcmp(oie, "pass_on") ? OIE_PASS_ON
													: OIE_CALL_HANDLER;
	d->e->io_error_hook = io_error_handler;
	d->e->hook_arg = d;
	d->other = other;
	if (other) {
		/* al-extents as in DRBD (default 1237), capped to one log record */
		const char *ae = cfg_get(d->r, SECT_DISK, "al-extents");
		long nal = 1237;
		if (ae)
			parse_int(ae, 1, 65534, &nal);
		rc = engine_al_start(d->e, (unsigned)nal);
		if (rc) {
			snprintf(err, 256, "cannot start the activity log: %s", strerror(-rc));
			return rc;
		}
		if ((rc = listener_open(&d->lsn, d->h->address, d->h->name, err)))
			return rc;
		/* a full mesh: one peer per other disk host */
		for (int i = 0; i < d->r->nhosts; i++) {
			const struct cfg_host *o = &d->r->hosts[i];
			if (o == d->h || o->diskless)
				continue;
			if ((rc = peer_start(&d->peers[d->npeers], d->e, d->r, d->h, o, d->lsn, err)))
				return rc;
			d->npeers++;
		}
		d->peer = d->peers[0];
		/* all at once, after every peer started (as the engine's replicas) */
		for (int i = 0; i < d->npeers; i++)
			engine_add_replica(d->e, &peer_replica_ops, d->peers[i], peer_slot(d->peers[i]));
	}
	if (d->r->nhosts > 2 || d->r->quorum != Q_OFF || d->h->diskless) {
		if (!d->lsn && (rc = listener_open(&d->lsn, d->h->address, d->h->name, err)))
			return rc;
		if ((rc = quorum_start(&d->quorum, d->h->diskless ? NULL : d->e, d->r, d->h, d->lsn, err)))
			return rc;
	}
	/* the one rule for writes a peer missed (quorum's, or fencing's) */
	engine_set_write_policy(d->e, quorum_write_policy(d->quorum, d->e));
	if (d->lsn && (rc = listener_start(d->lsn))) {
		snprintf(err, 256, "cannot start the listener thread");
		return rc;
	}
	return 0;
}


static void peers_stop(struct daemon *d)
{
	/* the engine forgets them first: nothing new reaches a stopped peer */
	if (d->e)
		engine_clear_replicas(d->e);
	for (int i = 0; i < d->npeers; i++)
		peer_stop(d->peers[i]);
	d->npeers = 0;
	d->peer = NULL;
}

static int check_resource(const struct cfg_resource *r)
{
	char err[CFG_ERR_MAX];
	if (cfg_check_handlers(r, err)) {
		fprintf(stderr, "dipole: %s\n", err);
		return EXIT_USAGE;
	}
	if (cfg_disk_hosts(r) > MD_MAX_PEERS + 1) {
		fprintf(stderr, "dipole: %s:%d:%d: resource '%s' has %d hosts with a disk; at most %d are supported\n",
			r->loc.file, r->loc.line, r->loc.col, r->name, cfg_disk_hosts(r), MD_MAX_PEERS + 1);
		return EXIT_USAGE;
	}
	if (cfg_disk_hosts(r) > 2 && cfg_get_bool(r, SECT_NET, "allow-two-primaries")) {
		fprintf(stderr, "dipole: %s:%d:%d: resource '%s': allow-two-primaries with %d disk hosts is not "
			"supported (two Primaries are, between two disk hosts)\n  hint: remove allow-two-primaries, "
			"or make the other hosts diskless tiebreakers with 'disk none;'\n", r->loc.file, r->loc.line,
			r->loc.col, r->name, cfg_disk_hosts(r));
		return EXIT_USAGE;
	}
	return 0;
}

static void notify(int fd, int code, const char *msg)
{
	char buf[1400];
	int n = snprintf(buf, sizeof buf, "%d %s", code, msg);
	if (fd >= 0)
		(void)!write(fd, buf, (size_t)n);
}

static int lock_resource(struct daemon *d)
{
	char buf[32] = { 0 };

	d->lock_fd = open(d->pid_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (d->lock_fd < 0) {
		fprintf(stderr, "dipole: cannot create %s: %s\n", d->pid_path, strerror(errno));
		return EXIT_FAIL;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		(void)!pread(d->lock_fd, buf, sizeof buf - 1, 0);
		fprintf(stderr, "dipole: resource '%s' is already up on this node (daemon pid %ld)\n"
				"  hint: 'dipole status %s' shows it; 'dipole down %s' stops it\n",
			d->r->name, strtol(buf, NULL, 10), d->r->name, d->r->name);
		close(d->lock_fd);
		d->lock_fd = -1;
		return EXIT_STATE;
	}
	return EXIT_OK;
}

static void write_pid(struct daemon *d)
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
	(void)!ftruncate(d->lock_fd, 0);
	(void)!pwrite(d->lock_fd, buf, (size_t)n, 0);
}

/* ----------------------------------------------------- startup steps */

/* The daemon and what only its startup needs. */
struct up {
	struct daemon d;
	const char *device;   /* the device link to create, "none", or NULL: none */
	const char *metrics_listen; /* IP:PORT of the metrics endpoint, NULL: none */
	int foreground;
	int ready_fd;         /* to the parent waiting for "ready"; -1: none */
	int log_fd, sig_fd;
	int code;             /* this process's exit code once a step returned UP_DONE */
	int close_rc;         /* what engine_close returned (the final flush) */
	char err[MD_MSG_MAX]; /* why a step in the daemon failed: for the log and the parent */
};

/* A start's result besides an exit code: this process's part is over (the
 * parent after the fork), with exit code u->code and nothing to undo. */
#define UP_DONE (-1)

static int step_check(struct up *u)
{
	return check_resource(u->d.r);
}

static int step_run_dir(struct up *u)
{
	if (mkdir(u->d.run_dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "dipole: cannot create run dir %s: %s\n", u->d.run_dir, strerror(errno));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int step_lock(struct up *u)
{
	return lock_resource(&u->d);
}

/* The runtime files go while the lock still makes them ours (the next
 * daemon creates its own once it is released), and the control socket
 * last of all, although it is opened last: a client that finds it gone or
 * refusing finds nothing else left (`down` then sweeps what a killed daemon
 * left; tests wait for it). */
static void step_unlock(struct up *u)
{
	struct daemon *d = &u->d;
	unlink(d->pid_path);
	if (d->ctl_fd >= 0)
		close(d->ctl_fd);
	d->ctl_fd = -1;
	unlink(d->ctl_path);
	close(d->lock_fd);
	d->lock_fd = -1;
}

/* Before anything is attached: a bad or busy metrics address fails `up`
 * at once, with nothing to undo but the socket. */
static int step_metrics_bind(struct up *u)
{
	char err[256];
	if (!u->metrics_listen)
		return EXIT_OK;
	int rc = metrics_bind(&u->d, u->metrics_listen, err);
	if (rc) {
		fprintf(stderr, "dipole: %s: %s\n", u->d.r->name, err);
		return rc == -EINVAL ? EXIT_USAGE : EXIT_FAIL;
	}
	return EXIT_OK;
}

/* Serving starts once the peers and quorum it reads exist, and stops (this
 * step's stop runs first) before they go. */
static int step_metrics(struct up *u)
{
	return metrics_start(&u->d, u->err) ? EXIT_FAIL : EXIT_OK;
}

static void step_metrics_stop(struct up *u)
{
	metrics_stop(&u->d);
}

static int step_clean_stale(struct up *u)
{
	/* we hold the lock: anything still here belongs to a dead daemon */
	daemon_clean_stale(u->d.run_dir, u->d.r->name, 0);
	return EXIT_OK;
}

static int step_device_path(struct up *u)
{
	struct stat st;

	if (!u->device || !strcmp(u->device, "none") || lstat(u->device, &st) < 0)
		return EXIT_OK;
	if (!S_ISLNK(st.st_mode)) {
		fprintf(stderr, "dipole: device path %s exists and is not a symlink; refusing to replace it\n"
				"  hint: pick another 'device' path or --device PATH\n", u->device);
		return EXIT_FAIL;
	}
	unlink(u->device); /* our own stale link */
	return EXIT_OK;
}

static int step_engine(struct up *u)
{
	struct daemon *d = &u->d;
	char err[MD_MSG_MAX] = "";

	/* disk { size }: normalized by the parser to bytes with a unit suffix
	 * (k M G T, or s for 512-byte sectors) */
	const struct cfg_opt *o = cfg_get_opt(d->r, SECT_DISK, "size");
	uint64_t cap = 0;
	char where[300] = "";
	if (o) {
		size_t n = strlen(o->val);
		snprintf(where, sizeof where, "%s:%d:%d", o->loc.file, o->loc.line, o->loc.col);
		if (n && o->val[n - 1] == 's')
			cap = strtoull(o->val, NULL, 10) * 512;
		else if (parse_size(o->val, &cap))
			cap = 0;
	}
	if (!d->h->diskless && resize_check_cap(d->h->disk, cap, where, err)) {
		fprintf(stderr, "dipole: %s: %s\n", d->r->name, err);
		return EXIT_STATE;
	}
	log_set_resource(d->r->name);
	int rc = d->h->diskless ? engine_open_diskless(&d->e, d->r->name, d->h->name)
				: engine_open(&d->e, d->r->name, d->h->name, d->h->node_id, d->h->disk, err);
	if (rc) {
		fprintf(stderr, "dipole: %s: %s\n", d->r->name, err);
		return rc == -EBADMSG ? EXIT_STATE : EXIT_FAIL;
	}
	rc = resize_attach(d->e, cap, where, err);
	if (rc) {
		fprintf(stderr, "dipole: %s: %s\n", d->r->name, err);
		engine_close(d->e);
		d->e = NULL;
		return EXIT_STATE;
	}
	return EXIT_OK;
}

static void step_engine_close(struct up *u)
{
	u->close_rc = engine_close(u->d.e);
	u->d.e = NULL;
	if (u->close_rc)
		log_err("final flush/metadata update failed: %s", strerror(-u->close_rc));
}

/* The parent's side of the fork: the child's "ready" or its failure is the
 * result of `up`. */
static int wait_ready(struct up *u, int rfd)
{
	char buf[1400] = { 0 };
	size_t n = 0;

	while (n < sizeof buf - 1) {
		ssize_t r = read(rfd, buf + n, sizeof buf - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(rfd);
	if (n == 0) {
		fprintf(stderr, "dipole: %s: the daemon exited during startup; see %s\n", u->d.r->name, u->d.log_path);
		return EXIT_FAIL;
	}
	int code = atoi(buf);
	char *m = strchr(buf, ' ');
	if (code)
		fprintf(stderr, "dipole: %s: %s\n", u->d.r->name, m ? m + 1 : "startup failed");
	else
		printf("%s\n", m ? m + 1 : "");
	return code;
}

/* Fork (unless in the foreground): the parent waits for "ready" and is
 * done; the child goes on as the daemon, logging to RUN_DIR/RES.log, with
 * its pid in the pid file and the signals it stops on read from sig_fd. */
static int step_daemonize(struct up *u)
{
	struct daemon *d = &u->d;
	int ready[2];

	u->log_fd = open(d->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (!u->foreground) {
		if (pipe2(ready, O_CLOEXEC) < 0) {
			perror("dipole: pipe");
			return EXIT_FAIL;
		}
		pid_t pid = fork();
		if (pid < 0) {
			perror("dipole: fork");
			return EXIT_FAIL;
		}
		if (pid > 0) {
			/* the child owns the attached disk, the lock and the log */
			close(ready[1]);
			engine_forget(d->e);
			close(d->lock_fd);
			if (u->log_fd >= 0)
				close(u->log_fd);
			u->code = wait_ready(u, ready[0]);
			return UP_DONE;
		}
		close(ready[0]);
		u->ready_fd = ready[1];
		setsid();
		if (u->log_fd >= 0) {
			log_set_fd(u->log_fd);
			log_set_verbose_prefix(1);
		}
	} else {
		log_set_verbose_prefix(1);
	}
	write_pid(d);
	signal(SIGPIPE, SIG_IGN);
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &ss, NULL); /* inherited by every thread we start */
	u->sig_fd = signalfd(-1, &ss, SFD_CLOEXEC);
	return EXIT_OK;
}

static int step_disk_state(struct up *u)
{
	struct daemon *d = &u->d;

	log_info("starting on node %s (node-id %d), disk %s, %s", d->h->name, d->h->node_id, d->h->disk,
		 disk_state_name((enum disk_state)d->e->dstate));
	if (d->r->quorum != Q_OFF && d->e->dstate == DS_UPTODATE && cfg_disk_hosts(d->r) > 1) {
		/* it may have been down while the others wrote: current again
		 * once it meets its disk peer (docs/quorum.md) */
		engine_set_disk(d->e, DS_CONSISTENT, "quorum: it may have missed writes while down");
		log_info("quorum: disk Consistent until it meets its disk peer (it may have missed writes while down)");
	}
	const char *fen = cfg_get(d->r, SECT_NET, "fencing");
	if (d->r->quorum != Q_OFF && fen && strcmp(fen, "dont-care"))
		log_warn("fencing is ignored: with quorum, the quorum rules decide who writes (docs/quorum.md)");
	return EXIT_OK;
}

/* The device's size changed (resize.h): NBD clients see it when they
 * connect again; the FUSE file and the loop device over it are told now. */
static void exports_resized(void *arg, uint64_t bytes)
{
	struct daemon *d = arg;
	(void)bytes;
	fusedev_resized(d->fuse);
	if (d->loop_fd >= 0 && ioctl(d->loop_fd, LOOP_SET_CAPACITY, 0) < 0)
		log_warn("loop device %s keeps its old size: LOOP_SET_CAPACITY: %s", d->loop_dev, strerror(errno));
}

static int step_exports(struct up *u)
{
	/* a tiebreaker has no data to export */
	if (u->d.h->diskless)
		return EXIT_OK;
	if (exports_start(&u->d, u->device, u->err)) {
		exports_stop(&u->d); /* what did start */
		return EXIT_FAIL;
	}
	u->d.e->size_arg = &u->d;
	u->d.e->size_hook = exports_resized;
	return EXIT_OK;
}

static void step_exports_stop(struct up *u)
{
	u->d.e->size_hook = NULL;
	exports_stop(&u->d);
}

/* The exports write through the engine to the peers, and stopping them
 * waits for requests a suspension froze. So: no more quorum decisions,
 * frozen requests end (failed writes are marked), the exports stop (this
 * step's stop runs before theirs; exports_stop then finds nothing left),
 * and only then the peers go. */
static void step_replication_stop(struct up *u)
{
	struct daemon *d = &u->d;

	quorum_stop(d->quorum);
	engine_resume(d->e, "shutting down");
	exports_stop(d);
	/* no frontend is left to call into the engine: now the peer can go */
	listener_close(d->lsn);
	d->lsn = NULL;
	peers_stop(d);
	engine_set_write_policy(d->e, quorum_write_policy(NULL, d->e));
	quorum_free(d->quorum);
	d->quorum = NULL;
}

/* dipolefs is mounted later, on request (fsmount.c); its unmount comes
 * before the peers and the exports stop: the owner's kernel filesystem
 * flushes through them */
static int step_fs(struct up *u)
{
	int rc = fsmount_start(&u->d);
	if (rc) {
		snprintf(u->err, sizeof u->err, "cannot start dipolefs serving: %s", strerror(-rc));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static void step_fs_stop(struct up *u)
{
	fsmount_stop(&u->d);
}

static int step_replication(struct up *u)
{
	if (peer_setup(&u->d, u->err)) {
		step_replication_stop(u); /* what did start */
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* `dipole doctor` on another node asks which configuration this daemon
 * runs (confq.h), on the replication port: answered while the listener
 * runs, and no longer before it closes (this step's stop runs first). */
static int step_confq(struct up *u)
{
	struct daemon *d = &u->d;
	int rc = d->lsn ? confq_serve(&d->confq, d->lsn, d->r, d->h) : 0;
	if (rc)
		log_warn("cannot answer configuration queries: %s; 'dipole doctor' elsewhere will say 'not checked'",
			 strerror(-rc));
	return EXIT_OK;
}

static void step_confq_stop(struct up *u)
{
	confq_stop(u->d.confq);
	u->d.confq = NULL;
}

/* startup { ... } (startup.c): what the metadata says of the last
 * shutdown is read before any peer can connect and change it */
static int step_startup_plan(struct up *u)
{
	startup_plan(&u->d);
	return EXIT_OK;
}

/* With the peers started: a node with nothing to wait for (no disk peer)
 * is promoted here; otherwise the main loop ticks it (docs/startup.md) */
static int step_startup(struct up *u)
{
	startup_tick(&u->d);
	return EXIT_OK;
}

/* `dipole events` (events.h): the thread starts early, so that it streams
 * the transitions of startup and shutdown too; the state line, which reads
 * the peers and the quorum, only between the last step and the first undo. */
static int step_events(struct up *u)
{
	(void)u;
	int rc = events_start();
	if (rc)
		log_warn("cannot start the events thread: %s; 'dipole events' will fail", strerror(-rc));
	return EXIT_OK;
}

static void step_events_stop(struct up *u)
{
	(void)u;
	events_stop();
}

static void events_state_line(void *arg, struct strbuf *sb)
{
	status_state_line(arg, sb);
}

static int step_events_state(struct up *u)
{
	events_state(events_state_line, &u->d);
	return EXIT_OK;
}

static void step_events_no_state(struct up *u)
{
	(void)u;
	events_state(NULL, NULL);
}

static int step_control(struct up *u)
{
	struct daemon *d = &u->d;

	d->ctl_fd = ctl_listen(d->ctl_path);
	if (d->ctl_fd < 0) {
		snprintf(u->err, sizeof u->err, "cannot listen on %s: %s", d->ctl_path, strerror(-d->ctl_fd));
		d->ctl_fd = -1;
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* Startup, in order. start returns EXIT_OK, an exit code (it failed and
 * undid what it had done; the steps before are then stopped backwards) or
 * UP_DONE. Shutdown stops every step backwards. */
static const struct up_step {
	const char *name;
	int (*start)(struct up *u);
	void (*stop)(struct up *u); /* NULL: nothing to undo */
} up_steps[] = {
	{ "check the configuration", step_check, NULL },
	{ "create the run dir", step_run_dir, NULL },
	{ "lock the pid file", step_lock, step_unlock }, /* also closes the control socket */
	{ "clean what a killed daemon left", step_clean_stale, NULL },
	{ "bind the metrics address", step_metrics_bind, step_metrics_stop },
	{ "check the device path", step_device_path, NULL },
	{ "attach the engine", step_engine, step_engine_close },
	{ "daemonize", step_daemonize, NULL },
	{ "start the events thread", step_events, step_events_stop },
	{ "read the last shutdown for startup", step_startup_plan, NULL },
	{ "set the starting disk state", step_disk_state, NULL },
	{ "start the exports", step_exports, step_exports_stop },
	{ "start peers and quorum", step_replication, step_replication_stop },
	{ "answer doctor's configuration queries", step_confq, step_confq_stop },
	{ "dipolefs: mounts come on request", step_fs, step_fs_stop },
	{ "startup: wait for the peer, become-primary-on", step_startup, NULL },
	{ "open the control socket", step_control, NULL },
	{ "serve metrics", step_metrics, step_metrics_stop },
	{ "give events the state line", step_events_state, step_events_no_state },
};

/* Stop the first n steps, the last started first. */
static void up_unwind(struct up *u, size_t n)
{
	while (n-- > 0)
		if (up_steps[n].stop)
			up_steps[n].stop(u);
}

/* Returns what the final flush returned (0 or -errno). */
static int shutdown_all(struct up *u)
{
	up_unwind(u, ARRAY_SIZE(up_steps));
	log_info("down");
	return u->close_rc;
}

/* ------------------------------------------------------ main loop */

/* STATUS= for the service manager: the short state line (status.c) */
static void service_status_now(struct daemon *d)
{
	struct strbuf sb = { 0 };
	status_short_line(d, &sb);
	service_status(sb.buf ? sb.buf : "");
	strbuf_free(&sb);
}

static int main_loop(struct up *u)
{
	struct daemon *d = &u->d;
	struct pollfd p[3] = { { d->ctl_fd, POLLIN, 0 }, { u->sig_fd, POLLIN, 0 },
			       { fsmount_wake_fd(d), POLLIN, 0 } };

	for (;;) {
		/* the startup wait advances between requests */
		startup_tick(d);
		int wait = fsmount_tick(d);
		metrics_fs_refresh(d);
		if (startup_pending(d) && (wait < 0 || wait > 200))
			wait = 200;
		if (service_enabled()) {
			/* the manager's STATUS= follows the state within a second */
			service_status_now(d);
			if (wait < 0 || wait > 1000)
				wait = 1000;
		}
		if (poll(p, 3, wait) < 0) {
			if (errno == EINTR)
				continue;
			log_err("poll: %s", strerror(errno));
			return shutdown_all(u) ? 1 : 0;
		}
		if (p[1].revents) {
			struct signalfd_siginfo si;
			(void)!read(u->sig_fd, &si, sizeof si);
			log_info("signal %u: shutting down", si.ssi_signo);
			service_stopping("stopping (signal)");
			return shutdown_all(u) ? 1 : 0;
		}
		if (p[2].revents) /* a client asks to be served, or a peer's state changed */
			fsmount_woken(d);
		if (p[0].revents) {
			char req[CTL_REQ_MAX];
			int fd = ctl_accept(d->ctl_fd, req, sizeof req, &d->ctl_passed_fd);
			if (fd < 0)
				continue;
			int down = control_handle(d, fd, req);
			if (d->ctl_passed_fd >= 0) /* not taken (by fs-mount --fuse-fd) */
				close(d->ctl_passed_fd);
			d->ctl_passed_fd = -1;
			if (down) {
				log_info("down requested");
				service_stopping("stopping (dipole down)");
				int rc = shutdown_all(u);
				char m[128];
				snprintf(m, sizeof m, "%s", rc ? "down, but the final flush failed: see the log" : "");
				ctl_reply(fd, rc ? 1 : 0, m, NULL);
				return rc ? 1 : 0;
			}
		}
	}
}

/* ------------------------------------------------------------- up */

void daemon_path(const char *run_dir, const char *res, const char *suffix, char *out, size_t len)
{
	snprintf(out, len, "%s/%s.%s", run_dir, res, suffix);
}

int daemon_clean_stale(const char *run_dir, const char *res, int quiet)
{
	char p[512], file[600], msg[512];
	int rc = 0;

	daemon_path(run_dir, res, "fuse", p, sizeof p);
	snprintf(file, sizeof file, "%s/%s", p, res);
	int n = loopdev_clean_stale(file, msg, sizeof msg);
	if (n > 0 && !quiet)
		fprintf(stderr, "dipole: %s: detached %d stale loop device(s) left by a previous daemon\n", res, n);
	if (msg[0]) {
		fprintf(stderr, "dipole: %s: warning: %s\n", res, msg);
	}
	int f = fusedev_clean_stale(p);
	if (f > 0 && !quiet)
		fprintf(stderr, "dipole: %s: unmounted stale FUSE mount %s left by a previous daemon\n", res, p);
	if (f < 0) {
		fprintf(stderr, "dipole: %s: cannot unmount stale FUSE mount %s: %s\n", res, p, strerror(-f));
		rc = f;
	}
	rmdir(p);
	static const char *const sfx[] = { "nbd", "ctl" };
	for (size_t i = 0; i < ARRAY_SIZE(sfx); i++) {
		daemon_path(run_dir, res, sfx[i], p, sizeof p);
		if (unlink(p) == 0 && !quiet)
			fprintf(stderr, "dipole: %s: removed stale socket %s\n", res, p);
	}
	return rc;
}

/* The soft limit of open files up to the hard one: systemd starts a
 * service with 1024 (its hard limit is far higher, the soft one is low
 * for programs that still use select(2)), and the owner of a dipolefs
 * holds an O_PATH descriptor for every node the kernels hold (local.c),
 * so `ls -l` of a directory of 2,000 files would fail with EMFILE. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
		return;
	rlim_t was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		log_warn("cannot raise the limit of open files from %llu to %llu: %s", (unsigned long long)was,
			 (unsigned long long)rl.rlim_max, strerror(errno));
}

int daemon_up(const struct daemon_args *a)
{
	struct up u = {
		.d = { .run_dir = a->run_dir, .r = a->r, .h = a->h, .nbd_tcp = a->nbd_tcp ? a->nbd_tcp : a->h->nbd_address,
		       .loop_fd = -1, .ctl_fd = -1, .ctl_passed_fd = -1, .lock_fd = -1,
		       .metrics_fd = -1 },
		.device = a->device ? a->device : a->h->device,
		.metrics_listen = a->metrics_listen ? a->metrics_listen : a->h->metrics_address,
		.foreground = a->foreground,
		.ready_fd = -1, .log_fd = -1, .sig_fd = -1,
	};
	struct daemon *d = &u.d;
	const char *name = a->r->name;

	daemon_path(d->run_dir, name, "nbd", d->nbd_path, sizeof d->nbd_path);
	daemon_path(d->run_dir, name, "ctl", d->ctl_path, sizeof d->ctl_path);
	daemon_path(d->run_dir, name, "pid", d->pid_path, sizeof d->pid_path);
	daemon_path(d->run_dir, name, "fuse", d->fuse_path, sizeof d->fuse_path);
	daemon_path(d->run_dir, name, "log", d->log_path, sizeof d->log_path);
	service_init(a->foreground);
	raise_nofile();
	for (size_t i = 0; i < ARRAY_SIZE(up_steps); i++) {
		char st[160];
		snprintf(st, sizeof st, "starting: %s", up_steps[i].name);
		service_status(st);
		int rc = up_steps[i].start(&u);
		if (rc == UP_DONE)
			return u.code;
		if (rc) {
			/* steps before the fork told the user; the daemon's tell
			 * its log and the waiting parent */
			if (u.err[0]) {
				log_err("%s", u.err);
				notify(u.ready_fd, EXIT_FAIL, u.err);
			}
			log_debug("startup failed at '%s'; undoing the steps before it", up_steps[i].name);
			char why[sizeof u.err + 200];
			snprintf(why, sizeof why, "failed to %s%s%s", up_steps[i].name, u.err[0] ? ": " : " (see the log)",
				 u.err);
			service_failed(why, 0);
			up_unwind(&u, i);
			return rc;
		}
	}
	char okmsg[1200];
	snprintf(okmsg, sizeof okmsg, "%s: up on %s as Secondary, disk %s; %s %s%s%s%s%s", name, d->h->name,
		 disk_state_name((enum disk_state)d->e->dstate), d->nbd ? "nbd" : "tiebreaker, no exports:",
		 d->nbd ? d->nbd_path : "votes only", d->loop_dev[0] ? ", loop " : "",
		 d->loop_dev, d->device[0] ? ", device " : "", d->device);
	if (startup_pending(d)) {
		/* say what it is waiting for (and that `up` does not wait) */
		pthread_mutex_lock(&d->su.lock);
		size_t n = strlen(okmsg);
		snprintf(okmsg + n, sizeof okmsg - n, "; startup: %s", d->su.why);
		pthread_mutex_unlock(&d->su.lock);
	}
	log_info("ready: %s", okmsg);
	if (!u.foreground) {
		notify(u.ready_fd, 0, okmsg);
		close(u.ready_fd);
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(u.log_fd >= 0 ? u.log_fd : nul, 2);
		if (nul > 2)
			close(nul);
	} else {
		printf("%s\n", okmsg);
		fflush(stdout);
		/* a Type=notify unit's start is over: what `up` returning means */
		struct strbuf sb = { 0 };
		status_short_line(d, &sb);
		service_ready(sb.buf ? sb.buf : "up");
		strbuf_free(&sb);
	}
	int rc = main_loop(&u);
	close(u.sig_fd);
	if (u.log_fd >= 0)
		close(u.log_fd);
	return rc;
}

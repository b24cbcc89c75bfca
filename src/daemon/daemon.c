/* daemon — `dipole up` and the daemon main loop. See daemon.h.
 *
 * Startup order: lock RUN_DIR/RES.pid (one daemon per resource), clean what a
 * killed predecessor left, attach the engine, fork, then in the child start
 * NBD, FUSE + loop device + device symlink and the control socket, and only
 * then tell the waiting parent "ready". Shutdown runs the same steps backwards.
 */
#include "daemon_int.h"
#include "al.h"
#include "ctl.h"
#include "handler.h"
#include "engine.h"
#include "fusedev.h"
#include "log.h"
#include "listener.h"
#include "loopdev.h"
#include "nbd.h"
#include "peer.h"
#include "quorum.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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
	/* Secondary: the block device refuses writes at the block layer too */
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

/* Start replication with the other host of the resource, and honour
 * startup { become-primary-on }. */
/* on-io-error call-local-io-error: run the handler (it runs on its own) */
static void io_error_handler(void *arg, const char *what)
{
	struct daemon *d = arg;
	(void)what;
	if (handler_run(d->r, "local-io-error", d->h, d->other, 0) == -2)
		log_warn("on-io-error call-local-io-error, but no local-io-error handler is configured");
}

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
		for (int i = 0; i < d->npeers; i++)
			d->e->peers[i] = d->peers[i];
		d->e->npeers = d->npeers;
	}
	if (d->r->nhosts > 2 || d->r->quorum != Q_OFF || d->h->diskless) {
		if (!d->lsn && (rc = listener_open(&d->lsn, d->h->address, d->h->name, err)))
			return rc;
		if ((rc = quorum_start(&d->quorum, d->h->diskless ? NULL : d->e, d->peers, d->npeers, d->r, d->h, d->lsn, err)))
			return rc;
		d->e->quorum = d->quorum;
	}
	if (d->lsn && (rc = listener_start(d->lsn))) {
		snprintf(err, 256, "cannot start the listener thread");
		return rc;
	}
	const char *bp = cfg_get(d->r, SECT_STARTUP, "become-primary-on");
	if (bp && atomic_load(&d->e->dstate) == DS_UPTODATE) {
		char list[256], *save = NULL, msg[256];
		snprintf(list, sizeof list, "%s", bp);
		for (char *w = strtok_r(list, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
			if (!strcmp(w, "both") || !strcmp(w, d->h->name)) {
				if (engine_set_role(d->e, ROLE_PRIMARY, 0, msg))
					log_warn("become-primary-on: %s", msg);
				else if (d->loop_fd >= 0)
					loopdev_set_ro(d->loop_fd, 0);
				break;
			}
		}
	}
	return 0;
}

static void peers_stop(struct daemon *d)
{
	/* the engine forgets them first: nothing new reaches a stopped peer */
	if (d->e)
		d->e->npeers = 0;
	for (int i = 0; i < d->npeers; i++)
		peer_stop(d->peers[i]);
	d->npeers = 0;
	d->peer = NULL;
}

static int shutdown_all(struct daemon *d)
{
	/* no more quorum decisions; requests frozen by a suspension end now
	 * (failed writes are marked) */
	quorum_stop(d->quorum);
	engine_resume(d->e, "shutting down");
	exports_stop(d);
	/* no frontend is left to call into the engine: now the peer can go */
	listener_close(d->lsn);
	d->lsn = NULL;
	peers_stop(d);
	d->e->quorum = NULL;
	quorum_free(d->quorum);
	d->quorum = NULL;
	int rc = engine_close(d->e);
	d->e = NULL;
	if (rc)
		log_err("final flush/metadata update failed: %s", strerror(-rc));
	close(d->ctl_fd);
	unlink(d->ctl_path);
	unlink(d->pid_path);
	log_info("down");
	return rc;
}

/* Configuration checks `up` makes before touching anything: handlers that
 * cannot run, and shapes dipole does not replicate yet. */
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

static int main_loop(struct daemon *d, int sfd)
{
	struct pollfd p[2] = { { d->ctl_fd, POLLIN, 0 }, { sfd, POLLIN, 0 } };

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("poll: %s", strerror(errno));
			return shutdown_all(d) ? 1 : 0;
		}
		if (p[1].revents) {
			struct signalfd_siginfo si;
			(void)!read(sfd, &si, sizeof si);
			log_info("signal %u: shutting down", si.ssi_signo);
			return shutdown_all(d) ? 1 : 0;
		}
		if (p[0].revents) {
			char req[256];
			int fd = ctl_accept(d->ctl_fd, req, sizeof req);
			if (fd < 0)
				continue;
			if (control_handle(d, fd, req)) {
				log_info("down requested");
				int rc = shutdown_all(d);
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

static void notify(int fd, int code, const char *msg)
{
	char buf[600];
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

int daemon_up(const struct daemon_args *a)
{
	struct daemon d = { .run_dir = a->run_dir, .r = a->r, .h = a->h, .nbd_tcp = a->nbd_tcp,
			    .loop_fd = -1, .ctl_fd = -1 };
	const char *name = a->r->name, *device = a->device;
	int foreground = a->foreground, rc, ready[2] = { -1, -1 };
	char err[MD_MSG_MAX];

	if ((rc = check_resource(d.r)))
		return rc;
	if (!device)
		device = d.h->device;
	if (!d.nbd_tcp)
		d.nbd_tcp = d.h->nbd_address;
	if (mkdir(d.run_dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "dipole: cannot create run dir %s: %s\n", d.run_dir, strerror(errno));
		return EXIT_FAIL;
	}
	daemon_path(d.run_dir, name, "nbd", d.nbd_path, sizeof d.nbd_path);
	daemon_path(d.run_dir, name, "ctl", d.ctl_path, sizeof d.ctl_path);
	daemon_path(d.run_dir, name, "pid", d.pid_path, sizeof d.pid_path);
	daemon_path(d.run_dir, name, "fuse", d.fuse_path, sizeof d.fuse_path);
	daemon_path(d.run_dir, name, "log", d.log_path, sizeof d.log_path);
	if ((rc = lock_resource(&d)))
		return rc;
	/* we hold the lock: anything still here belongs to a dead daemon */
	daemon_clean_stale(d.run_dir, name, 0);
	if (device && strcmp(device, "none")) {
		struct stat st;
		if (lstat(device, &st) == 0) {
			if (!S_ISLNK(st.st_mode)) {
				fprintf(stderr, "dipole: device path %s exists and is not a symlink; refusing to replace it\n"
						"  hint: pick another 'device' path or --device PATH\n", device);
				return EXIT_FAIL;
			}
			unlink(device); /* our own stale link */
		}
	}
	log_set_resource(name);
	rc = d.h->diskless ? engine_open_diskless(&d.e, name, d.h->name)
			   : engine_open(&d.e, name, d.h->name, d.h->node_id, d.h->disk, err);
	if (rc) {
		fprintf(stderr, "dipole: %s: %s\n", name, err);
		return rc == -EBADMSG ? EXIT_STATE : EXIT_FAIL;
	}

	int logfd = open(d.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (!foreground) {
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
			char buf[600] = { 0 };
			size_t n = 0;
			close(ready[1]);
			engine_forget(d.e);
			close(d.lock_fd);
			if (logfd >= 0)
				close(logfd);
			while (n < sizeof buf - 1) {
				ssize_t r = read(ready[0], buf + n, sizeof buf - 1 - n);
				if (r <= 0)
					break;
				n += (size_t)r;
			}
			close(ready[0]);
			if (n == 0) {
				fprintf(stderr, "dipole: %s: the daemon exited during startup; see %s\n", name, d.log_path);
				return EXIT_FAIL;
			}
			int code = atoi(buf);
			char *m = strchr(buf, ' ');
			if (code)
				fprintf(stderr, "dipole: %s: %s\n", name, m ? m + 1 : "startup failed");
			else
				printf("%s\n", m ? m + 1 : "");
			return code;
		}
		close(ready[0]);
		setsid();
		if (logfd >= 0) {
			log_set_fd(logfd);
			log_set_verbose_prefix(1);
		}
	} else {
		log_set_verbose_prefix(1);
	}
	write_pid(&d);
	signal(SIGPIPE, SIG_IGN);
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &ss, NULL); /* inherited by every thread we start */
	int sfd = signalfd(-1, &ss, SFD_CLOEXEC);

	log_info("starting on node %s (node-id %d), disk %s, %s", d.h->name, d.h->node_id, d.h->disk,
		 disk_state_name((enum disk_state)d.e->dstate));
	if (d.r->quorum != Q_OFF && d.e->dstate == DS_UPTODATE && cfg_disk_hosts(d.r) > 1) {
		/* it may have been down while the others wrote: current again
		 * once it meets its disk peer (docs/quorum.md) */
		d.e->dstate = DS_CONSISTENT;
		log_info("quorum: disk Consistent until it meets its disk peer (it may have missed writes while down)");
	}
	const char *fen = cfg_get(d.r, SECT_NET, "fencing");
	if (d.r->quorum != Q_OFF && fen && strcmp(fen, "dont-care"))
		log_warn("fencing is ignored: with quorum, the quorum rules decide who writes (docs/quorum.md)");
	rc = d.h->diskless ? 0 : exports_start(&d, device, err);
	if (!rc)
		rc = peer_setup(&d, err);
	if (!rc) {
		d.ctl_fd = ctl_listen(d.ctl_path);
		if (d.ctl_fd < 0) {
			rc = d.ctl_fd;
			snprintf(err, sizeof err, "cannot listen on %s: %s", d.ctl_path, strerror(-rc));
		}
	}
	if (rc) {
		log_err("%s", err);
		notify(ready[1], EXIT_FAIL, err);
		quorum_stop(d.quorum);
		exports_stop(&d);
		listener_close(d.lsn);
		peers_stop(&d);
		d.e->quorum = NULL;
		quorum_free(d.quorum);
		engine_close(d.e);
		unlink(d.pid_path);
		return EXIT_FAIL;
	}
	char okmsg[700];
	snprintf(okmsg, sizeof okmsg, "%s: up on %s as Secondary, disk %s; %s %s%s%s%s%s", name, d.h->name,
		 disk_state_name((enum disk_state)d.e->dstate), d.nbd ? "nbd" : "tiebreaker, no exports:",
		 d.nbd ? d.nbd_path : "votes only", d.loop_dev[0] ? ", loop " : "",
		 d.loop_dev, d.device[0] ? ", device " : "", d.device);
	log_info("ready: %s", okmsg);
	if (!foreground) {
		notify(ready[1], 0, okmsg);
		close(ready[1]);
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(logfd >= 0 ? logfd : nul, 2);
		if (nul > 2)
			close(nul);
	} else {
		printf("%s\n", okmsg);
		fflush(stdout);
	}
	rc = main_loop(&d, sfd);
	close(sfd);
	if (logfd >= 0)
		close(logfd);
	close(d.lock_fd);
	return rc;
}

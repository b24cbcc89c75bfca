/* service — what the daemon tells the service manager that runs it:
 * systemd's notification protocol (sd_notify(3), libsystemd). A unit of
 * Type=notify runs `dipole up RES --foreground` (systemd/dipole@.service)
 * and counts it started once it sends READY=1, which the daemon sends at
 * the moment `up` would have returned: every export serves and the control
 * socket answers. STATUS= carries a one-line state for `systemctl status`
 * (each startup step, then the role, disk and peers whenever they change),
 * STOPPING=1 the start of a shutdown.
 *
 * Only a foreground daemon with NOTIFY_SOCKET set talks: service_init(0)
 * (a forking `up`) makes every call a no-op, and without NOTIFY_SOCKET
 * sd_notify does nothing, so the daemon behaves as it always did.
 *
 * Locking: the daemon's main thread only.
 */
#ifndef DIPOLE_SERVICE_H
#define DIPOLE_SERVICE_H

/* Talk to the service manager from now on if `foreground` and the
 * environment names one (NOTIFY_SOCKET); a forking daemon never does (its
 * parent returns, and whatever runs it is not waiting for READY=1). */
void service_init(int foreground);

/* 1 when notifications go out (a manager listens). */
int service_enabled(void);

/* STATUS=text, sent only when it differs from the last one sent. */
void service_status(const char *text);

/* READY=1 with STATUS=text: the resource is up. */
void service_ready(const char *text);

/* STOPPING=1 with STATUS=text. */
void service_stopping(const char *text);

/* STATUS=text with ERRNO=err (a positive errno, 0: none): startup failed;
 * the process exits next, which is what tells the manager. */
void service_failed(const char *text, int err);

#endif

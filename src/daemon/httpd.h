/* httpd — the daemon's small HTTP endpoint (the Prometheus metrics of
 * docs/metrics.md), served by libmicrohttpd on a thread of its own.
 *
 * Binding is split from serving so that `up` can refuse a bad or busy
 * address before it attaches anything, while the server itself starts
 * last, once what it reads exists (daemon.c's steps). GET PATH answers
 * 200 with what the render callback appends; other paths 404, other
 * methods 405. Requests are served one at a time on libmicrohttpd's
 * internal polling thread, so a render needs no lock against another
 * render; what it reads of the daemon it reads under that data's own
 * locks (daemon_int.h). Never on the data path: a slow scraper delays
 * only other scrapes.
 */
#ifndef DIPOLE_HTTPD_H
#define DIPOLE_HTTPD_H

#include "util.h"

struct httpd;

/* Appends the body for one request to sb (called on the server's thread). */
typedef void (*httpd_render_fn)(void *arg, struct strbuf *sb);

/* Bind and listen on `address` ("IP:PORT", IPv6 in brackets). Returns a
 * listening socket, or -EINVAL (not an address), -EADDRINUSE (the port is
 * taken), -EADDRNOTAVAIL (not an address of this host) or another -errno,
 * with err[256] naming the address, the cause and what to do. */
int httpd_bind(const char *address, char *err);
/* Serve GET `path` on the bound socket fd (owned by the server from here
 * on, closed by httpd_stop, also on failure). content_type is the
 * response's. 0, or -errno with err[256]. */
int httpd_start(struct httpd **out, int fd, const char *path, const char *content_type, httpd_render_fn render,
		void *arg, char *err);
/* Stop serving and close the socket: after it returns no render runs.
 * NULL is fine. */
void httpd_stop(struct httpd *h);

#endif

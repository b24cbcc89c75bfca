/* httpd — see httpd.h. libmicrohttpd (Debian's libmicrohttpd-dev) does the
 * HTTP; this file only binds, routes one path and hands over the body. */
#include "httpd.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct httpd {
	struct MHD_Daemon *mhd;
	int fd;
	const char *path, *content_type;
	httpd_render_fn render;
	void *arg;
};

int httpd_bind(const char *address, char *err)
{
	struct sockaddr_storage ss;
	unsigned sl;
	int one = 1;

	if (parse_sockaddr(address, &ss, &sl)) {
		snprintf(err, 256, "metrics address '%s' is not IP:PORT (port 1-65535, IPv6 in brackets: "
			 "[fd00::1]:9942)", address);
		return -EINVAL;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = -errno;
		snprintf(err, 256, "metrics address %s: socket: %s", address, strerror(errno));
		return e;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0) {
		int e = errno;
		close(fd);
		if (e == EADDRINUSE)
			snprintf(err, 256, "metrics address %s is in use by another process; pick a free port "
				 "(ss -ltnp shows who holds it)", address);
		else if (e == EADDRNOTAVAIL)
			snprintf(err, 256, "metrics address %s is not an address of this host; use one of its "
				 "addresses (ip -br addr) or 127.0.0.1", address);
		else
			snprintf(err, 256, "cannot listen on metrics address %s: %s", address, strerror(e));
		return -e;
	}
	return fd;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, char *body, size_t len, const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result serve(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			     const char *version, const char *upload, size_t *upload_len, void **state)
{
	struct httpd *h = cls;
	(void)version;
	(void)upload;
	(void)upload_len;
	(void)state;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, strdup("only GET\n"), 9, "text/plain");
	if (strcmp(url, h->path)) {
		char *b = NULL;
		int n = asprintf(&b, "not found; the metrics are at %s\n", h->path);
		return n < 0 ? MHD_NO : reply(c, MHD_HTTP_NOT_FOUND, b, (size_t)n, "text/plain");
	}
	struct strbuf sb = { 0 };
	strbuf_printf(&sb, "%s", "");
	h->render(h->arg, &sb);
	return reply(c, MHD_HTTP_OK, sb.buf, sb.len, h->content_type);
}

int httpd_start(struct httpd **out, int fd, const char *path, const char *content_type, httpd_render_fn render,
		void *arg, char *err)
{
	struct httpd *h = xcalloc(1, sizeof *h);
	*h = (struct httpd){ .fd = fd, .path = path, .content_type = content_type, .render = render, .arg = arg };
	/* one internal thread polls and serves; connections are few (scrapers)
	 * and short, and an idle or slow one is dropped after 10 s */
	h->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC, 0, NULL, NULL, serve, h,
				  MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, 16u,
				  MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!h->mhd) {
		snprintf(err, 256, "cannot start the metrics server (libmicrohttpd)");
		close(fd);
		free(h);
		return -EIO;
	}
	*out = h;
	return 0;
}

void httpd_stop(struct httpd *h)
{
	if (!h)
		return;
	/* quiesced, the listening socket stays ours to close */
	MHD_socket fd = MHD_quiesce_daemon(h->mhd);
	MHD_stop_daemon(h->mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	free(h);
}

/* ctl — see ctl.h. */
#include "ctl.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int mkaddr(const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof a->sun_path)
		return -ENAMETOOLONG;
	strcpy(a->sun_path, path);
	return 0;
}

/* The request line, with `pass_fd` (>= 0) alongside its first byte. */
static int send_req(int fd, const char *req, int pass_fd)
{
	if (pass_fd < 0)
		return write_full(fd, req, strlen(req));
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)req, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	memset(u.buf, 0, sizeof u.buf);
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	ssize_t n;
	while ((n = sendmsg(fd, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n != 1)
		return n < 0 ? -errno : -EIO;
	return write_full(fd, req + 1, strlen(req) - 1);
}

int ctl_request(const char *sock_path, const char *req, char *msg, struct strbuf *body)
{
	return ctl_request_fd(sock_path, req, -1, msg, body);
}

int ctl_request_fd(const char *sock_path, const char *req, int pass_fd, char *msg, struct strbuf *body)
{
	struct sockaddr_un a;
	char buf[65536];
	struct strbuf all = { 0 };
	int fd, rc;

	msg[0] = 0;
	if ((rc = mkaddr(sock_path, &a)))
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (!req[0] || (rc = send_req(fd, req, pass_fd)) || (rc = write_full(fd, "\n", 1))) {
		close(fd);
		return rc ? rc : -EINVAL;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf[n] = 0;
		strbuf_printf(&all, "%s", buf);
	}
	close(fd);
	if (!all.buf) {
		snprintf(msg, 512, "daemon closed the control connection without answering (did it crash?)");
		return 1;
	}
	char *nl = strchr(all.buf, '\n');
	if (nl)
		*nl = 0;
	int code = atoi(all.buf);
	const char *sp = strchr(all.buf, ' ');
	snprintf(msg, 512, "%s", sp ? sp + 1 : "");
	if (nl && nl[1])
		strbuf_printf(body, "%s", nl + 1);
	strbuf_free(&all);
	return code;
}

int ctl_open(const char *sock_path, const char *req)
{
	struct sockaddr_un a;
	int fd, rc;

	if ((rc = mkaddr(sock_path, &a)))
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 || (rc = write_full(fd, req, strlen(req))) ||
	    (rc = write_full(fd, "\n", 1))) {
		rc = rc ? rc : -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int ctl_listen(const char *sock_path)
{
	struct sockaddr_un a;
	int fd, rc;

	if ((rc = mkaddr(sock_path, &a)))
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(sock_path);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	chmod(sock_path, 0600);
	return fd;
}

int ctl_accept(int lfd, char *req, size_t reqlen, int *passed_fd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	size_t n = 0;

	*passed_fd = -1;
	if (fd < 0)
		return -errno;
	/* a client that connects and says nothing must not wedge the daemon */
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	while (n + 1 < reqlen) {
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		struct iovec iov = { .iov_base = req + n, .iov_len = 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				     .msg_controllen = sizeof u.buf };
		ssize_t r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
		/* a descriptor sent along (fs-mount's FUSE mount): one at most */
		for (struct cmsghdr *c = r > 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int got;
				memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
				if (*passed_fd < 0)
					*passed_fd = got;
				else
					close(got);
			}
		}
		if (r <= 0 || req[n] == '\n')
			break;
		n++;
	}
	req[n] = 0;
	return fd;
}

void ctl_reply(int fd, int code, const char *msg, const char *body)
{
	char line[600];
	int n = snprintf(line, sizeof line, "%d %s\n", code, msg ? msg : "");
	(void)!write_full(fd, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
	if (body)
		(void)!write_full(fd, body, strlen(body));
	close(fd);
}

/* An option the command lists: exactly, or "--x=" with a value. */
static int allows(const struct ctl_cmd *c, const char *opt)
{
	for (const char *const *o = c->opts; o && *o; o++) {
		size_t n = strlen(*o);
		if (n && (*o)[n - 1] == '=' ? !strncmp(*o, opt, n) : !strcmp(*o, opt))
			return 1;
	}
	return 0;
}

int ctl_parse(const char *line, const struct ctl_cmd *table, size_t n, struct ctl_req *req,
	      const struct ctl_cmd **cmd, char *msg, size_t len)
{
	char *save = NULL;

	memset(req, 0, sizeof *req);
	*cmd = NULL;
	msg[0] = 0;
	snprintf(req->words, sizeof req->words, "%s", line);
	req->cmd = strtok_r(req->words, " \t", &save);
	if (!req->cmd)
		req->cmd = "";
	for (size_t i = 0; i < n && !*cmd; i++)
		if (!strcmp(table[i].name, req->cmd))
			*cmd = &table[i];
	if (!*cmd) {
		snprintf(msg, len, "unknown control request '%.60s'", line);
		return -EINVAL;
	}
	for (char *w = strtok_r(NULL, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (strncmp(w, "--", 2)) {
			snprintf(msg, len, "unexpected argument '%.60s' in control request '%s'", w, req->cmd);
			goto refused;
		}
		if (!allows(*cmd, w)) {
			snprintf(msg, len, "unknown option '%.60s' for control request '%s'", w, req->cmd);
			goto refused;
		}
		if (req->nopts == CTL_OPTS_MAX) {
			snprintf(msg, len, "too many options in control request '%s'", req->cmd);
			*cmd = NULL;
			return -E2BIG;
		}
		req->opts[req->nopts++] = w;
	}
	return 0;
refused:
	*cmd = NULL;
	return -EINVAL;
}

int ctl_req_has(const struct ctl_req *req, const char *opt)
{
	for (int i = 0; i < req->nopts; i++)
		if (!strcmp(req->opts[i], opt))
			return 1;
	return 0;
}

int ctl_req_value(const struct ctl_req *req, const char *opt, char *out, size_t len)
{
	size_t n = strlen(opt);
	for (int i = 0; i < req->nopts; i++) {
		if (strncmp(req->opts[i], opt, n))
			continue;
		const char *v = req->opts[i] + n;
		size_t o = 0;
		for (; *v; v++) {
			unsigned c = (unsigned char)*v;
			if (c == '%') {
				unsigned x;
				if (!isxdigit((unsigned char)v[1]) || !isxdigit((unsigned char)v[2]) ||
				    sscanf(v + 1, "%2x", &x) != 1 || x == 0)
					return -EINVAL;
				c = x;
				v += 2;
			}
			if (o + 1 >= len)
				return -ENAMETOOLONG;
			out[o++] = (char)c;
		}
		out[o] = 0;
		return 0;
	}
	return -ENOENT;
}

void ctl_arg_encode(struct strbuf *sb, const char *s)
{
	strbuf_printf(sb, "%s", "");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c > '~' || c == '%')
			strbuf_printf(sb, "%%%02X", c);
		else
			strbuf_printf(sb, "%c", c);
	}
}

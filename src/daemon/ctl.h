/* ctl — the control socket between `dipole` commands and a running daemon.
 *
 * A request is one line "COMMAND [ARGS]\n". The reply is one line
 * "EXITCODE MESSAGE\n" followed by an optional body; the daemon then closes.
 * One request per connection; the daemon's main thread serves them in turn.
 * COMMAND is a word of the daemon's command table; ARGS are options ("--x"),
 * each of which that command must list, else the request is refused whole:
 * an option is never guessed at or ignored. An option listed with a
 * trailing '=' ("--dir=") carries a value, percent-encoded by the sender
 * (ctl_arg_encode) so that it is one word whatever it holds.
 */
#ifndef DIPOLE_CTL_H
#define DIPOLE_CTL_H

#include "util.h"

#include <stddef.h>

/* Exit codes of every `dipole` command and of every control reply
 * (contract, ../shared/design.md "Command line"). */
enum exit_code { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_STATE = 3 };

/* Send `req` to the daemon at `sock_path`. On success returns the daemon's
 * exit code (>= 0) with message in msg[512] and body appended to `body`.
 * -ENOENT / -ECONNREFUSED when no daemon is listening. */
int ctl_request(const char *sock_path, const char *req, char *msg, struct strbuf *body);
/* The same, with descriptor `pass_fd` (>= 0) sent along the request
 * (SCM_RIGHTS): fs-mount --fuse-fd, the FUSE mount mount.dipole made. */
int ctl_request_fd(const char *sock_path, const char *req, int pass_fd, char *msg, struct strbuf *body);

/* Connect to the daemon at `sock_path` and send `req`, for a request whose
 * answer is a stream (events): returns the connected fd, to read the reply
 * line and what follows from, or -errno (-ENOENT / -ECONNREFUSED: no daemon). */
int ctl_open(const char *sock_path, const char *req);

/* Server side: listen on `sock_path` (removing a stale socket). */
int ctl_listen(const char *sock_path);
/* Accept one request: returns a connected fd and the request line in req[256],
 * or -errno; *passed_fd: a descriptor the client sent along, -1 if none
 * (the caller's to close). */
int ctl_accept(int lfd, char *req, size_t reqlen, int *passed_fd);
/* Send the reply and close fd. */
void ctl_reply(int fd, int code, const char *msg, const char *body);

#define CTL_REQ_MAX  2048 /* a request line, with its NUL (room for an encoded path) */
#define CTL_OPTS_MAX 8

/* A request line split into words: the command and its options. */
struct ctl_req {
	char words[CTL_REQ_MAX]; /* the line, a NUL after each word */
	const char *cmd;         /* "" for an empty line */
	const char *opts[CTL_OPTS_MAX];
	int nopts;
};

/* One control command: its name, the options it accepts (NULL-terminated;
 * NULL: none) and what serves it. fn replies on fd and returns 0, or returns
 * 1 without replying to ask its caller to finish (`down`). */
struct ctl_cmd {
	const char *name;
	const char *const *opts;
	int (*fn)(void *ctx, int fd, const struct ctl_req *req);
};

/* Split `line` into req and find its command in table[n] (*cmd). Returns 0,
 * or -EINVAL (unknown command, an option it does not list, a stray word) /
 * -E2BIG (too many options) with a message naming the culprit in msg[len]. */
int ctl_parse(const char *line, const struct ctl_cmd *table, size_t n, struct ctl_req *req,
	      const struct ctl_cmd **cmd, char *msg, size_t len);

/* Whether the parsed request carries option `opt`. */
int ctl_req_has(const struct ctl_req *req, const char *opt);
/* The decoded value of a value option `opt` ("--dir=") into out[len]:
 * 0, -ENOENT if the request does not carry it, -EINVAL if it is badly
 * encoded, -ENAMETOOLONG if it does not fit. */
int ctl_req_value(const struct ctl_req *req, const char *opt, char *out, size_t len);
/* Append `s` to sb percent-encoded: bytes outside '!'..'~' and '%' become
 * %XX, so the value is one word of a request line. */
void ctl_arg_encode(struct strbuf *sb, const char *s);

#endif

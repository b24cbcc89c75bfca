/* ctl — the control socket between `dipole` commands and a running daemon.
 *
 * A request is one line "COMMAND [ARGS]\n". The reply is one line
 * "EXITCODE MESSAGE\n" followed by an optional body; the daemon then closes.
 * One request per connection; the daemon's main thread serves them in turn.
 */
#ifndef DIPOLE_CTL_H
#define DIPOLE_CTL_H

#include "util.h"

/* Exit codes of every `dipole` command and of every control reply
 * (contract, ../shared/design.md "Command line"). */
enum exit_code { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_STATE = 3 };

/* Send `req` to the daemon at `sock_path`. On success returns the daemon's
 * exit code (>= 0) with message in msg[512] and body appended to `body`.
 * -ENOENT / -ECONNREFUSED when no daemon is listening. */
int ctl_request(const char *sock_path, const char *req, char *msg, struct strbuf *body);

/* Server side: listen on `sock_path` (removing a stale socket). */
int ctl_listen(const char *sock_path);
/* Accept one request: returns a connected fd and the request line in req[256],
 * or -errno. */
int ctl_accept(int lfd, char *req, size_t reqlen);
/* Send the reply and close fd. */
void ctl_reply(int fd, int code, const char *msg, const char *body);

#endif

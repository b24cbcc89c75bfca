/* events — see events.h. */
#include "events.h"
#include "ctl.h"
#include "evlog.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SUBS 32
#define STATE_RECHECK_MS 200

struct sub {
	int fd;
	uint64_t cursor;           /* next event sequence number to send */
	char *last_state;          /* last state line sent (malloc) */
};

static struct {
	pthread_mutex_t m;         /* subs, nsubs, stopping */
	struct sub subs[MAX_SUBS];
	int nsubs;
	int stopping;
	int wake[2];               /* main thread -> events thread */
	pthread_t thr;
	int running;
	pthread_mutex_t state_m;   /* held while state_fn runs; guards state_fn */
	void (*state_fn)(void *, struct strbuf *);
	void *state_arg;
} S = { .m = PTHREAD_MUTEX_INITIALIZER, .state_m = PTHREAD_MUTEX_INITIALIZER, .wake = { -1, -1 } };

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The current state line, "" when the daemon is tearing down (malloc). */
static char *state_now(void)
{
	struct strbuf sb = { 0 };
	pthread_mutex_lock(&S.state_m);
	if (S.state_fn)
		S.state_fn(S.state_arg, &sb);
	pthread_mutex_unlock(&S.state_m);
	char *s = strdup(sb.buf ? sb.buf : "");
	strbuf_free(&sb);
	return s;
}

static void sub_drop(struct sub *s)
{
	close(s->fd);
	free(s->last_state);
	*s = S.subs[--S.nsubs];
}

/* Send s its pending events; 1 when something was sent, -1 when it is gone.
 * S.m held: the events thread is the only writer to subscriber sockets. */
static int sub_flush(struct sub *s)
{
	struct evlog_event ev;
	uint64_t lost = 0;
	int any = 0;
	char line[600];
	while (evlog_read(&s->cursor, &ev, &lost)) {
		int n = 0;
		if (lost) {
			n = snprintf(line, sizeof line, "lost %llu\n", (unsigned long long)lost);
			lost = 0;
		}
		n += evlog_format(&ev, line + n, sizeof line - (size_t)n - 1);
		if (n > (int)sizeof line - 2)
			n = (int)sizeof line - 2;
		line[n++] = '\n';
		if (send_all(s->fd, line, (size_t)n))
			return -1;
		any = 1;
	}
	return any;
}

static int sub_state(struct sub *s, const char *st)
{
	if (!st[0] || (s->last_state && !strcmp(s->last_state, st)))
		return 0;
	char *copy = strdup(st);
	if (!copy)
		return 0;
	free(s->last_state);
	s->last_state = copy;
	if (send_all(s->fd, "state ", 6) || send_all(s->fd, st, strlen(st)))
		return -1;
	return 0;
}

static void *events_main(void *arg)
{
	(void)arg;
	struct pollfd pf[2 + MAX_SUBS];
	for (;;) {
		pthread_mutex_lock(&S.m);
		int stop = S.stopping, n = S.nsubs;
		pf[0] = (struct pollfd){ S.wake[0], POLLIN, 0 };
		pf[1] = (struct pollfd){ evlog_fd(), POLLIN, 0 };
		for (int i = 0; i < n; i++)
			pf[2 + i] = (struct pollfd){ S.subs[i].fd, POLLIN, 0 };
		pthread_mutex_unlock(&S.m);
		/* transitions wake this thread; the parts of the state line that
		 * are not states (I/O suspension, quorum votes, a running
		 * handler) are looked at every STATE_RECHECK_MS while someone
		 * listens */
		int pr = stop ? 0 : poll(pf, (nfds_t)(2 + n), n ? STATE_RECHECK_MS : -1);
		if (pr < 0 && errno != EINTR)
			break;
		char drain[64];
		uint64_t cnt;
		if (pf[0].revents)
			(void)!read(S.wake[0], drain, sizeof drain);
		if (pf[1].fd >= 0 && pf[1].revents)
			(void)!read(pf[1].fd, &cnt, sizeof cnt);

		pthread_mutex_lock(&S.m);
		/* a subscriber says nothing after its request: readable means gone */
		for (int i = 0; i < n && i < S.nsubs; i++)
			if (pf[2 + i].revents && pf[2 + i].fd == S.subs[i].fd &&
			    (pf[2 + i].revents & (POLLHUP | POLLERR) || read(S.subs[i].fd, drain, sizeof drain) <= 0))
				S.subs[i].fd = -S.subs[i].fd - 1; /* mark, dropped below */
		int sent = 0;
		for (int i = 0; i < S.nsubs; i++) {
			if (S.subs[i].fd < 0) {
				S.subs[i].fd = -S.subs[i].fd - 1;
				sub_drop(&S.subs[i--]);
				continue;
			}
			int r = sub_flush(&S.subs[i]);
			if (r < 0)
				sub_drop(&S.subs[i--]);
			else
				sent |= r;
		}
		int nsubs = S.nsubs;
		stop = S.stopping;
		pthread_mutex_unlock(&S.m);
		if ((sent || pr == 0) && nsubs) {
			/* the state line is computed without S.m: it takes other locks */
			char *st = state_now();
			pthread_mutex_lock(&S.m);
			for (int i = 0; st && i < S.nsubs; i++)
				if (sub_state(&S.subs[i], st) < 0)
					sub_drop(&S.subs[i--]);
			pthread_mutex_unlock(&S.m);
			free(st);
		}
		if (stop)
			break;
	}
	pthread_mutex_lock(&S.m);
	while (S.nsubs)
		sub_drop(&S.subs[0]);
	pthread_mutex_unlock(&S.m);
	return NULL;
}

int events_start(void)
{
	int fd = evlog_fd();
	if (fd < 0)
		return fd;
	if (pipe2(S.wake, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	S.stopping = 0;
	int rc = pthread_create(&S.thr, NULL, events_main, NULL);
	if (rc) {
		close(S.wake[0]);
		close(S.wake[1]);
		S.wake[0] = S.wake[1] = -1;
		return -rc;
	}
	S.running = 1;
	return 0;
}

static void wake(void)
{
	(void)!write(S.wake[1], "", 1);
}

int events_subscribe(int fd)
{
	struct sub s = { .fd = fd, .cursor = evlog_next_seq() };
	/* the cursor is taken before the state is read: a change that races
	 * with this is streamed (perhaps again), never missed */
	s.last_state = state_now();
	pthread_mutex_lock(&S.m);
	int rc = !S.running || S.stopping ? -ESHUTDOWN : S.nsubs == MAX_SUBS ? -EMFILE : 0;
	if (!rc && (send_all(fd, "0 \n", 3) || (s.last_state && s.last_state[0] &&
	    (send_all(fd, "state ", 6) || send_all(fd, s.last_state, strlen(s.last_state))))))
		rc = -EPIPE;
	if (!rc)
		S.subs[S.nsubs++] = s;
	pthread_mutex_unlock(&S.m);
	if (rc) {
		char msg[128];
		snprintf(msg, sizeof msg, "cannot stream events: %s", rc == -EMFILE ? "too many subscribers" : strerror(-rc));
		free(s.last_state);
		if (rc == -EPIPE)
			close(fd);
		else
			ctl_reply(fd, EXIT_FAIL, msg, NULL);
		return rc;
	}
	wake();
	return 0;
}

void events_state(void (*state_line)(void *arg, struct strbuf *sb), void *arg)
{
	pthread_mutex_lock(&S.state_m);
	S.state_fn = state_line;
	S.state_arg = arg;
	pthread_mutex_unlock(&S.state_m);
}

void events_stop(void)
{
	events_state(NULL, NULL);
	if (!S.running)
		return;
	pthread_mutex_lock(&S.m);
	S.stopping = 1;
	pthread_mutex_unlock(&S.m);
	wake();
	pthread_join(S.thr, NULL);
	S.running = 0;
	close(S.wake[0]);
	close(S.wake[1]);
	S.wake[0] = S.wake[1] = -1;
}

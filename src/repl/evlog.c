/* evlog — see evlog.h. */
#include "evlog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* ring[seq % EVLOG_RING] holds event seq for seq in [first, next) */
static struct {
	pthread_mutex_t m;
	struct evlog_event ring[EVLOG_RING];
	uint64_t first, next;
	int efd;               /* made on first use; -errno if it could not be */
	int efd_made;
} L = { .m = PTHREAD_MUTEX_INITIALIZER, .first = 1, .next = 1 };

static int efd_locked(void)
{
	if (!L.efd_made) {
		L.efd_made = 1;
		int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		/* above the standard fds, which the daemon points at /dev/null
		 * when it detaches */
		int hi = fd < 0 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (fd >= 0)
			close(fd);
		L.efd = hi < 0 ? -errno : hi;
	}
	return L.efd;
}

/* What an event carries besides its sequence number and time. */
struct event_args {
	enum state_obj obj;
	int from, to;
	const char *res, *peer, *why, *kind, *fields;
};

static void append(const struct event_args *a)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	pthread_mutex_lock(&L.m);
	struct evlog_event *ev = &L.ring[L.next % EVLOG_RING];
	ev->seq = L.next++;
	if (L.next - L.first > EVLOG_RING)
		L.first = L.next - EVLOG_RING;
	ev->time_us = (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
	ev->obj = a->obj;
	ev->from = a->from;
	ev->to = a->to;
	snprintf(ev->res, sizeof ev->res, "%s", a->res ? a->res : "");
	snprintf(ev->peer, sizeof ev->peer, "%s", a->peer ? a->peer : "");
	snprintf(ev->why, sizeof ev->why, "%s", a->why ? a->why : "");
	snprintf(ev->kind, sizeof ev->kind, "%s", a->kind ? a->kind : "");
	snprintf(ev->fields, sizeof ev->fields, "%s", a->fields ? a->fields : "");
	int fd = efd_locked();
	pthread_mutex_unlock(&L.m);
	if (fd >= 0) {
		uint64_t one = 1;
		(void)!write(fd, &one, sizeof one);
	}
}

void evlog_emit(enum state_obj obj, const char *res, const char *peer, int from, int to, const char *why)
{
	struct event_args a = { .obj = obj, .from = from, .to = to, .res = res, .peer = peer, .why = why };
	append(&a);
}

void evlog_emit_record(const char *kind, const char *res, const char *fields, const char *why)
{
	struct event_args a = { .obj = SO_COUNT, .res = res, .why = why, .kind = kind, .fields = fields };
	append(&a);
}

uint64_t evlog_next_seq(void)
{
	pthread_mutex_lock(&L.m);
	uint64_t n = L.next;
	pthread_mutex_unlock(&L.m);
	return n;
}

int evlog_read(uint64_t *cursor, struct evlog_event *out, uint64_t *lost)
{
	int got = 0;
	pthread_mutex_lock(&L.m);
	if (*cursor < L.first) {
		*lost += L.first - *cursor;
		*cursor = L.first;
	}
	if (*cursor < L.next) {
		*out = L.ring[*cursor % EVLOG_RING];
		++*cursor;
		got = 1;
	}
	pthread_mutex_unlock(&L.m);
	return got;
}

int evlog_fd(void)
{
	pthread_mutex_lock(&L.m);
	int fd = efd_locked();
	pthread_mutex_unlock(&L.m);
	return fd;
}

int evlog_format(const struct evlog_event *ev, char *buf, size_t len)
{
	char why[2 * sizeof ev->why];
	size_t j = 0;
	/* one line per event whatever the reason says */
	for (size_t i = 0; ev->why[i] && j + 2 < sizeof why; i++) {
		char c = ev->why[i];
		if (c == '"' || c == '\\')
			why[j++] = '\\';
		why[j++] = c == '\n' ? ' ' : c;
	}
	why[j] = 0;
	if (ev->kind[0])
		return snprintf(buf, len, "change %s name:%s%s%s why:\"%s\" seq:%llu time-us:%llu", ev->kind, ev->res,
				ev->fields[0] ? " " : "", ev->fields, why, (unsigned long long)ev->seq,
				(unsigned long long)ev->time_us);
	return snprintf(buf, len, "change %s name:%s%s%s old:%s new:%s why:\"%s\" seq:%llu time-us:%llu",
			state_obj_name(ev->obj), ev->res, ev->peer[0] ? " peer:" : "", ev->peer,
			state_value_name(ev->obj, ev->from), state_value_name(ev->obj, ev->to), why,
			(unsigned long long)ev->seq, (unsigned long long)ev->time_us);
}

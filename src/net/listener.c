/* listener — see listener.h. */
#include "listener.h"
#include "log.h"
#include "util.h"
#include "wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_ROUTES 33 /* node ids 0..31 and the default */

struct route { listener_fn fn; void *arg; };

struct listener {
	int lfd;
	int wake[2];
	pthread_t thr;
	int running;
	struct route routes[MAX_ROUTES]; /* [32] is the default */
	pthread_mutex_t lock;            /* guards ch_routes, held during their callbacks */
	struct route ch_routes[CH_MAX + 1];
};

int listener_open(struct listener **out, const char *address, const char *host, char *err)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct listener *l = calloc(1, sizeof *l);
	if (!l) {
		snprintf(err, 256, "out of memory");
		return -ENOMEM;
	}
	l->wake[0] = l->wake[1] = -1;
	pthread_mutex_init(&l->lock, NULL);
	if (parse_sockaddr(address, &ss, &sl)) {
		snprintf(err, 256, "bad address %s", address);
		free(l);
		return -EINVAL;
	}
	l->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (l->lfd >= 0)
		setsockopt(l->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (l->lfd < 0 || bind(l->lfd, (struct sockaddr *)&ss, sl) < 0 || listen(l->lfd, 16) < 0 ||
	    pipe2(l->wake, O_CLOEXEC) < 0) {
		int e = errno;
		snprintf(err, 256, "cannot listen for peers on %s: %s (is this address on this node? check 'address' "
			 "in 'on %s')", address, strerror(e), host);
		listener_close(l);
		return -EADDRNOTAVAIL;
	}
	*out = l;
	return 0;
}

void listener_route(struct listener *l, int node_id, listener_fn fn, void *arg)
{
	int i = node_id < 0 ? MAX_ROUTES - 1 : node_id;
	if (i < MAX_ROUTES) {
		l->routes[i].fn = fn;
		l->routes[i].arg = arg;
	}
}

void listener_route_channel(struct listener *l, int channel, listener_fn fn, void *arg)
{
	if (channel < 0 || channel > CH_MAX)
		return;
	pthread_mutex_lock(&l->lock);
	l->ch_routes[channel] = (struct route){ fn, arg };
	pthread_mutex_unlock(&l->lock);
}

static void peer_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET6) {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		} else {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		}
	}
	snprintf(out, len, "%s:%d", ip, port);
}

/* The sender's node-id from its HELLO, without consuming it: -1 when the
 * first bytes are not a HELLO (or do not arrive within 5 s). *channel: the
 * channel byte of that HELLO. */
static int peek_node_id(struct listener *l, int fd, int *channel)
{
	/* HELLO_CHANNEL follows the node-id: peeking it costs nothing more */
	uint8_t b[WIRE_HDR + HELLO_CHANNEL + 1];
	uint64_t until = now_ns() + 5000000000ull;
	for (;;) {
		ssize_t n = recv(fd, b, sizeof b, MSG_PEEK | MSG_DONTWAIT);
		if (n == (ssize_t)sizeof b)
			break;
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return -1;
		if (n > 0 && get_be32(b) != WIRE_MAGIC && n >= 4)
			return -1;
		uint64_t now = now_ns();
		if (now >= until)
			return -1;
		struct pollfd pf[2] = { { fd, POLLIN, 0 }, { l->wake[0], POLLIN, 0 } };
		if (poll(pf, 2, (int)((until - now) / 1000000) + 1) > 0 && pf[1].revents)
			return -1;
		if (n > 0)
			usleep(1000); /* more bytes of a partial HELLO */
	}
	if (get_be32(b) != WIRE_MAGIC || get_be16(b + 4) != P_HELLO)
		return -1;
	*channel = b[WIRE_HDR + HELLO_CHANNEL];
	return (int)get_be32(b + WIRE_HDR + HELLO_NODE_ID);
}

static void *accept_main(void *arg)
{
	struct listener *l = arg;
	for (;;) {
		struct pollfd pf[2] = { { l->lfd, POLLIN, 0 }, { l->wake[0], POLLIN, 0 } };
		int n = poll(pf, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || pf[1].revents)
			break;
		int fd = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		char from[96];
		peer_name(fd, from, sizeof from);
		int ch = -1;
		int id = peek_node_id(l, fd, &ch);
		if (id >= 0 && ch >= 0 && ch <= CH_MAX) {
			pthread_mutex_lock(&l->lock);
			struct route cr = l->ch_routes[ch];
			if (cr.fn)
				cr.fn(cr.arg, fd, from);
			pthread_mutex_unlock(&l->lock);
			if (cr.fn)
				continue;
		}
		const struct route *rt = id >= 0 && id < MAX_ROUTES - 1 && l->routes[id].fn ? &l->routes[id]
											   : &l->routes[MAX_ROUTES - 1];
		if (rt->fn) {
			rt->fn(rt->arg, fd, from);
		} else {
			log_warn("listener: connection from %s %s; dropped", from,
				 id < 0 ? "is not a dipole peer (no HELLO)" : "names a node-id that is not a host of this resource");
			close(fd);
		}
	}
	return NULL;
}

int listener_start(struct listener *l)
{
	if (pthread_create(&l->thr, NULL, accept_main, l))
		return -EAGAIN;
	l->running = 1;
	return 0;
}

void listener_close(struct listener *l)
{
	if (!l)
		return;
	if (l->running) {
		(void)!write(l->wake[1], "x", 1);
		pthread_join(l->thr, NULL);
	}
	if (l->lfd >= 0)
		close(l->lfd);
	if (l->wake[0] >= 0) {
		close(l->wake[0]);
		close(l->wake[1]);
	}
	pthread_mutex_destroy(&l->lock);
	free(l);
}

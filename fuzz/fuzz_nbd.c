/* libFuzzer target: the NBD server (handshake and transmission) fed
 * arbitrary client bytes over a socketpair, against a real engine on a
 * memfd-backed disk. The server must never crash, hang or leak. */
#include "engine.h"
#include "log.h"
#include "meta.h"
#include "nbd.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static struct engine *eng;
static struct nbd_server *srv;

struct client { int fd; const uint8_t *data; size_t size; };

static void *client_main(void *arg)
{
	struct client *c = arg;
	char buf[65536];
	size_t off = 0;
	while (off < c->size) {
		ssize_t n = write(c->fd, c->data + off, c->size - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	shutdown(c->fd, SHUT_WR);
	while (read(c->fd, buf, sizeof buf) > 0)
		;
	return NULL;
}

static void setup(void)
{
	char path[64], err[MD_MSG_MAX], msg[256];
	struct disk *d;
	struct md_super sb;
	int fd = memfd_create("fuzz-disk", 0);

	log_set_level(LOG_ERR);
	signal(SIGPIPE, SIG_IGN); /* the daemon ignores it too */
	if (fd < 0 || ftruncate(fd, 4 << 20) < 0)
		abort();
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	if (disk_open(&d, path, 0) || md_create(d, 0, "fuzz", &sb))
		abort();
	disk_close(d);
	if (engine_open(&eng, "fuzz", "n", path, err) || engine_set_role(eng, ROLE_PRIMARY, 1, msg))
		abort();
	if (nbd_server_new(&srv, eng, "fuzz", 2))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	pthread_t t;
	struct client c;

	if (!eng)
		setup();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	c.fd = sv[1];
	c.data = data;
	c.size = size;
	pthread_create(&t, NULL, client_main, &c);
	nbd_server_serve_fd(srv, sv[0], "fuzz");
	pthread_join(t, NULL);
	close(sv[1]);
	return 0;
}

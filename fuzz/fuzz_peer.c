/* libFuzzer target: the replication packet decoder. Arbitrary bytes arrive
 * from a "peer" over a socketpair: the acceptor handshake, then the data
 * channel, against a real engine on a memfd-backed disk. Nothing may crash,
 * hang, leak or write outside the device. */
#include "config.h"
#include "engine.h"
#include "log.h"
#include "meta.h"
#include "peer.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static struct engine *eng;
static struct cfg *cfg;

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
	char path[64], err[CFG_ERR_MAX], msg[256];
	struct disk *d;
	struct md_super sb;
	static const char conf[] = "resource fuzz { net { protocol C; } "
				   "on a { address 127.0.0.1:1; disk /x; } on b { address 127.0.0.2:1; disk /x; } }";
	int fd = memfd_create("fuzz-disk", 0);

	log_set_level(LOG_ERR);
	signal(SIGPIPE, SIG_IGN); /* the daemon ignores it too */
	if (fd < 0 || ftruncate(fd, 4 << 20) < 0)
		abort();
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	if (disk_open(&d, path, 0) || md_create(d, 1, "fuzz", &sb))
		abort();
	disk_close(d);
	if (engine_open(&eng, "fuzz", "b", path, err) || engine_set_role(eng, ROLE_PRIMARY, 1, msg))
		abort();
	if (cfg_parse_buffer("fuzz.res", conf, sizeof conf - 1, 0, &cfg, err))
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
	const struct cfg_resource *r = &cfg->res[0];
	peer_serve_fd(eng, r, &r->hosts[1], &r->hosts[0], sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
	return 0;
}

/* fuzz_common — shared by the socket-fed fuzz targets: a Primary engine on
 * a 4 MiB memfd disk, and a "remote" thread that sends the fuzzer's bytes
 * over one end of a socketpair (then drains replies) while the target serves
 * the other end in the fuzzer's thread. */
#ifndef DIPOLE_FUZZ_COMMON_H
#define DIPOLE_FUZZ_COMMON_H

#include "engine.h"
#include "log.h"
#include "meta.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

struct fuzz_remote { int fd; const uint8_t *data; size_t size; pthread_t thr; };

static void *fuzz_remote_main(void *arg)
{
	struct fuzz_remote *c = arg;
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

/* Start the remote; returns the fd the target must serve (and close). */
static int fuzz_remote_start(struct fuzz_remote *c, const uint8_t *data, size_t size)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	c->fd = sv[1];
	c->data = data;
	c->size = size;
	pthread_create(&c->thr, NULL, fuzz_remote_main, c);
	return sv[0];
}

static void fuzz_remote_finish(struct fuzz_remote *c)
{
	pthread_join(c->thr, NULL);
	close(c->fd);
}

/* A Primary, UpToDate engine for resource "fuzz" on a memfd disk. */
static struct engine *fuzz_engine(const char *node, int node_id)
{
	char path[64], err[MD_MSG_MAX], msg[256];
	struct disk *d;
	struct md_super sb;
	struct engine *e;
	int fd = memfd_create("fuzz-disk", 0);

	log_set_level(LOG_ERR);
	signal(SIGPIPE, SIG_IGN); /* the daemon ignores it too */
	if (fd < 0 || ftruncate(fd, 4 << 20) < 0)
		abort();
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	if (disk_open(&d, path, 0) || md_create(d, node_id, "fuzz", 1, NULL, &sb))
		abort();
	disk_close(d);
	if (engine_open(&e, "fuzz", node, -1, path, err) || engine_set_role(e, ROLE_PRIMARY, 1, msg))
		abort();
	return e;
}

#endif

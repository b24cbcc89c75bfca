/* engine_env — an engine on a temporary 16 MiB backing file, for the unit
 * tests of the engine (test_engine_*.c). Include after unit.h. */
#ifndef DIPOLE_ENGINE_ENV_H
#define DIPOLE_ENGINE_ENV_H

#include <stdio.h>
#include <unistd.h>

#include "disk.h"
#include "engine.h"
#include "meta.h"

struct env {
	char path[64];
	struct engine *e;   /* NULL until opened */
};

/* Fresh metadata with one peer slot bound to node-id peer_id (-1: unbound),
 * then the engine on it, Secondary and Inconsistent. 0 or -1. */
static int env_open_peer(struct env *v, int peer_id)
{
	struct disk *d;
	struct md_super sb;
	char err[MD_MSG_MAX];
	int fd;
	v->e = NULL;
	snprintf(v->path, sizeof v->path, "/tmp/dipole-test-engine.XXXXXX");
	if ((fd = mkstemp(v->path)) < 0 || ftruncate(fd, 16 << 20))
		return -1;
	close(fd);
	if (disk_open(&d, v->path, 0) || md_create(d, 0, "r0", 1, &peer_id, &sb))
		return -1;
	disk_close(d);
	return engine_open(&v->e, "r0", "a", 0, v->path, err) ? -1 : 0;
}

static void env_close(struct env *v)
{
	engine_close(v->e);
	unlink(v->path);
}

#endif

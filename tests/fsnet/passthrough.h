/* passthrough — the fsnet self-test's fs_ops backend over a directory. */
#ifndef DIPOLE_TEST_PASSTHROUGH_H
#define DIPOLE_TEST_PASSTHROUGH_H

#include "fsops.h"

struct pt_stats {
	uint64_t forgets, releases; /* forget counts and handles released */
	int gone, gone_node;        /* node-gone calls, the last node */
	int slow_fsync_ms;          /* fsync sleeps this long first */
};
extern struct pt_stats pt_stats;
extern const struct fs_ops pt_ops;

int pt_init(const char *dir);
void pt_fini(void);
void pt_node_gone(void *arg, uint32_t node);

#endif

/* mounttop — see mounttop.h. */
#include "mounttop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct at_path {
	long id, parent;
	char type[64];
	long autofs_pgrp; /* autofs: its pgrp= option (the automount daemon's); else -1 */
};

/* The mounts at `path` into m[max]: how many, or -errno. */
static int scan(const char *path, struct at_path *m, int max)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int n = 0;
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return -errno;
	/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER */
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *w[5];
		int i = 0;
		for (char *t = strtok_r(line, " \n", &save); t && i < 5; t = strtok_r(NULL, " \n", &save))
			w[i++] = t;
		if (i < 5)
			continue;
		str_unescape_octal(w[4]); /* mountinfo escapes blanks as \040 */
		if (strcmp(w[4], path))
			continue;
		char *t;
		while ((t = strtok_r(NULL, " \n", &save)) && strcmp(t, "-"))
			;
		t = t ? strtok_r(NULL, " \n", &save) : NULL;
		if (!t || n == max)
			continue;
		m[n].id = strtol(w[0], NULL, 10);
		m[n].parent = strtol(w[1], NULL, 10);
		snprintf(m[n].type, sizeof m[n].type, "%s", t);
		m[n].autofs_pgrp = -1;
		/* SOURCE, then the superblock options: autofs's carry pgrp=N */
		char *src = strtok_r(NULL, " \n", &save);
		char *super = src ? strtok_r(NULL, " \n", &save) : NULL;
		char *pg = super && !strcmp(t, "autofs") ? strstr(super, "pgrp=") : NULL;
		if (pg && (pg == super || pg[-1] == ','))
			m[n].autofs_pgrp = strtol(pg + 5, NULL, 10);
		n++;
	}
	free(line);
	fclose(f);
	return n;
}

/* The topmost of the n mounts at one path (nobody's parent there), or -1. */
static int top(const struct at_path *m, int n)
{
	for (int i = 0; i < n; i++) {
		int covered = 0;
		for (int j = 0; j < n && !covered; j++)
			covered = j != i && m[j].parent == m[i].id;
		if (!covered)
			return i;
	}
	return -1;
}

int mounttop_type(const char *path, char *type, size_t len)
{
	struct at_path m[32];
	int n = scan(path, m, 32);

	if (n < 0)
		return n;
	int t = top(m, n);
	snprintf(type, len, "%s", t >= 0 ? m[t].type : "");
	return t >= 0;
}

long mounttop_autofs_pgrp(const char *path)
{
	struct at_path m[32];
	int n = scan(path, m, 32);
	int t = n > 0 ? top(m, n) : -1;
	return t >= 0 ? m[t].autofs_pgrp : -1;
}

int mounttop_busy(const char *path)
{
	char t[64];
	int rc = mounttop_type(path, t, sizeof t);
	return rc <= 0 ? rc : strcmp(t, "autofs") != 0;
}

int mounttop_has_dipolefs(const char *path)
{
	struct at_path m[32];
	int n = scan(path, m, 32);

	for (int i = 0; i < n; i++)
		if (!strcmp(m[i].type, "fuse.dipole"))
			return 1;
	return n < 0 ? n : 0;
}

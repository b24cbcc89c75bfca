/* dipolefs_stub — stand-ins for the dipolefs service (dipolefs.h) while
 * the real one (dipolefs.c, issue 13) is being built in another branch.
 * The symbols are weak: once dipolefs.c is linked in, its definitions win
 * and this file is to be deleted. dipolefs_mount refuses with a message
 * that says why, so `dipole mount` fails cleanly instead of not linking.
 */
#include "dipolefs.h"

#include <errno.h>
#include <stdio.h>

__attribute__((weak)) int dipolefs_mount(struct dipolefs **out, struct engine *e, const struct dipolefs_conf *c,
					 enum dipolefs_role role, char *err)
{
	(void)e;
	(void)c;
	(void)role;
	*out = NULL;
	snprintf(err, 256, "dipolefs is not built into this binary yet (issue 13)");
	return -ENOSYS;
}

__attribute__((weak)) void dipolefs_unmount(struct dipolefs *fs)
{
	(void)fs;
}

__attribute__((weak)) void dipolefs_status_json(struct dipolefs *fs, struct strbuf *sb)
{
	(void)fs;
	strbuf_printf(sb, "null");
}

__attribute__((weak)) void dipolefs_status_text(struct dipolefs *fs, struct strbuf *sb)
{
	(void)fs;
	(void)sb;
}

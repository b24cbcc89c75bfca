/* libFuzzer target: the configuration parser must never crash, leak or read
 * out of bounds, whatever the bytes; it either parses or explains. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CFG_ERR_MAX];
	struct cfg *c = NULL;

	if (cfg_parse_buffer("fuzz.res", (const char *)data, size, 0, &c, err) == 0) {
		char *d = cfg_dump(c, NULL);
		/* the normalized dump must itself parse */
		struct cfg *c2 = NULL;
		if (cfg_parse_buffer("dump.res", d, strlen(d), 0, &c2, err) != 0)
			abort();
		cfg_free(c2);
		free(d);
		cfg_free(c);
	} else if (err[0] == 0) {
		abort(); /* every failure must say why */
	}
	return 0;
}

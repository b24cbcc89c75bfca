/* libFuzzer target: the replication packet decoder. Arbitrary bytes arrive
 * from a "peer" over a socketpair: the acceptor handshake, then the data
 * channel, against a real engine on a memfd-backed disk. Nothing may crash,
 * hang, leak or write outside the device. */
#include "config.h"
#include "fuzz_common.h"
#include "peer.h"

static struct engine *eng;
static struct cfg *cfg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char conf[] = "resource fuzz { net { protocol C; } "
				   "on a { address 127.0.0.1:1; disk /x; } on b { address 127.0.0.2:1; disk /x; } }";
	struct fuzz_remote c;
	char err[CFG_ERR_MAX];

	if (!eng) {
		eng = fuzz_engine("b", 1);
		if (cfg_parse_buffer("fuzz.res", conf, sizeof conf - 1, 0, &cfg, err))
			abort();
	}
	const struct cfg_resource *r = &cfg->res[0];
	int fd = fuzz_remote_start(&c, data, size);
	peer_serve_fd(eng, r, &r->hosts[1], &r->hosts[0], fd);
	fuzz_remote_finish(&c);
	return 0;
}

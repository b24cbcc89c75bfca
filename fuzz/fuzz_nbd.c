/* libFuzzer target: the NBD server (handshake and transmission) fed
 * arbitrary client bytes over a socketpair, against a real engine on a
 * memfd-backed disk. The server must never crash, hang or leak. */
#include "fuzz_common.h"
#include "nbd.h"

static struct engine *eng;
static struct nbd_server *srv;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_remote c;

	if (!eng) {
		eng = fuzz_engine("n", 0);
		if (nbd_server_new(&srv, eng, "fuzz", 2))
			abort();
	}
	int fd = fuzz_remote_start(&c, data, size);
	nbd_server_serve_fd(srv, fd, "fuzz");
	fuzz_remote_finish(&c);
	return 0;
}

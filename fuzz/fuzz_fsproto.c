/* libFuzzer target: the dipolefs protocol codec (fsproto.c) alone. The
 * input is a 24-byte frame header then its payload; the header decoder and
 * both frame decoders see it. Nothing may crash or read outside the input,
 * and what a decoder accepts must hold the properties the server and the
 * client rely on: names valid, trailing bytes inside the payload, limits
 * kept, readdir batches walkable; and it encodes back to the same bytes,
 * but for the version, which is the lowest the frame needs: no higher
 * than the one it came with. */
#include "fsproto.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static uint8_t again[FSP_HDR + FSP_HEAD_MAX];

static void check_name(const char *s, uint16_t len, const uint8_t *p, const uint8_t *end)
{
	if (len > FSP_NAME_MAX || (len && ((const uint8_t *)s < p || (const uint8_t *)s + len > end)) ||
	    (len && memchr(s, 0, len)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
	struct fsp_hdr h;
	char why[256];
	if (n < FSP_HDR || fsp_decode_hdr(in, &h, why, sizeof why))
		return 0;
	if (h.len > n - FSP_HDR)
		h.len = (uint32_t)(n - FSP_HDR);
	const uint8_t *p = in + FSP_HDR, *end = p + h.len;
	struct fsp_req q;
	if (!fsp_decode_req(&h, p, &q, why, sizeof why)) {
		check_name(q.name, q.name_len, p, end);
		check_name(q.name2, q.name2_len, p, end);
		if (q.dlen && (q.data < p || q.data + q.dlen != end || q.dlen > FSP_IO_MAX))
			abort();
		if (q.caller.ngroups > FSP_GROUPS_MAX || q.lock.start > q.lock.end)
			abort();
		if (q.op == FSP_READ && q.len > FSP_IO_MAX)
			abort();
		int m = fsp_encode_req(again, sizeof again, h.id, &q);
		if (m < 0 || (size_t)m + q.dlen != FSP_HDR + h.len || again[4] > in[4] || memcmp(again + 5, in + 5, 3) ||
		    memcmp(again + 12, in + 12, (size_t)m - 12))
			abort();
	}
	struct fsp_reply r;
	if (!fsp_decode_reply(&h, p, &r, why, sizeof why)) {
		if (r.result < -FSP_ERRNO_MAX || (r.dlen && (r.data < p || r.data + r.dlen != end)))
			abort();
		size_t pos = 0, k = 0;
		struct fsp_dirent de;
		while (r.op == FSP_READDIR && fsp_dirent_next(&r, &pos, &de)) {
			check_name(de.name, de.name_len, p, end);
			if (!de.name_len)
				abort();
			k++;
		}
		if (r.op == FSP_READDIR && r.result == 0 && k != r.ndirents)
			abort();
		int m = fsp_encode_reply(again, sizeof again, h.id, &r);
		if (m < 0 || (size_t)m + (r.result >= 0 ? r.dlen : 0) != FSP_HDR + h.len ||
		    again[4] > in[4] || memcmp(again + 5, in + 5, 3) || memcmp(again + 12, in + 12, (size_t)m - 12))
			abort();
	}
	return 0;
}

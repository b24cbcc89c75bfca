/* libFuzzer target: the wire codec's decoders alone (no engine, no socket).
 * The input is a 24-byte packet header then its payload; the header
 * decoder and every packet decoder see it, against two device shapes (the
 * second with a size that is no sector multiple and no csums-alg). Nothing
 * may crash or read outside the input, and whatever a decoder accepts must
 * lie within the device: the property the receivers rely on. */
#include "codec.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static void check_accepted(const struct wire_hdr *h, const union pkt *k, const struct codec_dev *d,
			   const uint8_t *payload)
{
	const uint8_t *end = payload + h->len;
	switch (h->type) {
	case P_DATA:
		if (!k->data.len || k->data.off > d->bytes || k->data.len > d->bytes - k->data.off ||
		    (k->data.payload && k->data.payload + k->data.len > end))
			abort();
		break;
	case P_RS_DATA:
		if (!k->rs_data.len || k->rs_data.off % CODEC_BLOCK || k->rs_data.off > d->bytes ||
		    k->rs_data.len > d->bytes - k->rs_data.off ||
		    k->rs_data.payload + k->rs_data.len > end)
			abort();
		break;
	case P_READ_REQ:
	case P_VERIFY_REQ:
		if (!k->range.len || k->range.off > d->bytes || k->range.len > d->bytes - k->range.off)
			abort();
		break;
	case P_RS_CSUM:
		if (k->rs_csum.digests + (size_t)k->rs_csum.nblocks * d->csum_len > end ||
		    k->rs_csum.nblocks > RS_MAX_BLOCKS)
			abort();
		break;
	case P_BITMAP:
	case P_PEER_BITMAP:
		if (k->bitmap.first > d->bm_words || k->bitmap.nwords > d->bm_words - k->bitmap.first || k->bitmap.words + 8 * k->bitmap.nwords > end)
			abort();
		for (uint64_t i = 0; i < k->bitmap.nwords; i++)
			(void)codec_bitmap_word(&k->bitmap, i);
		break;
	case P_READ_REPLY:
	case P_RS_CSUM_REPLY:
		if (k->reply.payload + k->reply.len > end)
			abort();
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct codec_dev devs[] = {
		{ 256u << 20, (256u << 20) / 4096 / 64, 4 },
		{ 10 * 4096 + 700, 1, 0 },
	};
	struct wire_hdr h;
	char why[200];

	if (size < WIRE_HDR)
		return 0;
	/* a copy of exactly the payload, so ASan sees any read past its end */
	(void)codec_decode_hdr(data, &h, why, sizeof why); /* fills h even when it refuses */
	size_t plen = size - WIRE_HDR;
	uint8_t *payload = malloc(plen ? plen : 1);
	if (!payload)
		return 0;
	memcpy(payload, data + WIRE_HDR, plen);
	h.len = (uint32_t)plen;
	struct pkt_vstate v;
	(void)codec_decode_vstate(&h, payload, &v, why, sizeof why);
	/* the handshake's packets */
	struct pkt_hello hl;
	char text[CODEC_REFUSE_MAX + 1];
	uint32_t verdict;
	if (codec_decode_hello(payload, h.len, &hl, why, sizeof why) == 0 && !memchr(hl.res, 0, sizeof hl.res))
		abort(); /* an accepted HELLO names a terminated resource */
	(void)codec_decode_decision(&h, payload, &verdict, why, sizeof why);
	(void)codec_decode_auth(&h, why, sizeof why);
	struct wire_hdr hh = h;
	hh.type = P_HISTORY;
	if (codec_decode_history(&hh, payload, &hl, why, sizeof why) == 0 && h.len != HISTORY_BYTES)
		abort(); /* only exactly the older history */
	if (codec_decode_refuse(&h, payload, text, why, sizeof why) == 0 && strlen(text) != h.len)
		abort(); /* a refusal's text is printable, NUL-free */
	/* as the header says, then as every type (with the header's flags) */
	for (int t = -1; t <= 40; t++) {
		struct wire_hdr ht = h;
		if (t >= 0)
			ht.type = (uint16_t)t;
		for (unsigned d = 0; d < sizeof devs / sizeof devs[0]; d++) {
			union pkt k;
			why[0] = 0;
			if (codec_decode(&ht, payload, &devs[d], &k, why, sizeof why) == 0)
				check_accepted(&ht, &k, &devs[d], payload);
			else if (!why[0])
				abort(); /* a refusal always says why */
		}
	}
	free(payload);
	return 0;
}

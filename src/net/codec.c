/* codec — packet encoders and decoders; see codec.h. */
#include "codec.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Refuse: the reason is "<packet>: <what>". Always -EPROTO. */
static int refuse(char *why, size_t whylen, uint16_t type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int refuse(char *why, size_t whylen, uint16_t type, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg_prefixed(why, whylen, codec_type_name(type), fmt, ap);
	va_end(ap);
	return -EPROTO;
}

#define LLU(x) ((unsigned long long)(x))

const char *codec_type_name(uint16_t type)
{
	switch (type) {
	case P_HELLO: return "P_HELLO";
	case P_AUTH: return "P_AUTH";
	case P_AUTH_OK: return "P_AUTH_OK";
	case P_REFUSE: return "P_REFUSE";
	case P_READY: return "P_READY";
	case P_DECISION: return "P_DECISION";
	case P_DATA: return "P_DATA";
	case P_RECV_ACK: return "P_RECV_ACK";
	case P_WRITE_ACK: return "P_WRITE_ACK";
	case P_FLUSH: return "P_FLUSH";
	case P_FLUSH_ACK: return "P_FLUSH_ACK";
	case P_PING: return "P_PING";
	case P_PING_ACK: return "P_PING_ACK";
	case P_STATE: return "P_STATE";
	case P_RS_DATA: return "P_RS_DATA";
	case P_RS_ACK: return "P_RS_ACK";
	case P_SYNC_START: return "P_SYNC_START";
	case P_SIZES: return "P_SIZES";
	case P_CONF_QUERY: return "P_CONF_QUERY";
	case P_CONF_INFO: return "P_CONF_INFO";
	case P_SYNC_DONE: return "P_SYNC_DONE";
	case P_BITMAP: return "P_BITMAP";
	case P_BITMAP_DONE: return "P_BITMAP_DONE";
	case P_SYNC_ACK: return "P_SYNC_ACK";
	case P_READ_REQ: return "P_READ_REQ";
	case P_READ_REPLY: return "P_READ_REPLY";
	case P_PEER_BITMAP: return "P_PEER_BITMAP";
	case P_PEER_BITMAP_DONE: return "P_PEER_BITMAP_DONE";
	case P_VERIFY_REQ: return "P_VERIFY_REQ";
	case P_RS_CSUM: return "P_RS_CSUM";
	case P_RS_CSUM_REPLY: return "P_RS_CSUM_REPLY";
	case P_VSTATE: return "P_VSTATE";
	}
	return "P_?";
}

/* ------------------------------------------------------------ header */

void codec_encode_hdr(uint8_t *b, const struct wire_hdr *h)
{
	put_be32(b, WIRE_MAGIC);
	put_be16(b + 4, h->type);
	put_be16(b + 6, h->flags);
	put_be32(b + 8, h->len);
	put_be32(b + 12, h->stamp);
	put_be64(b + 16, h->id);
}

int codec_decode_hdr(const uint8_t *b, struct wire_hdr *h, char *why, size_t whylen)
{
	uint32_t magic = get_be32(b);
	h->type = get_be16(b + 4);
	h->flags = get_be16(b + 6);
	h->len = get_be32(b + 8);
	h->stamp = get_be32(b + 12);
	h->id = get_be64(b + 16);
	if (magic != WIRE_MAGIC) {
		snprintf(why, whylen, "bad packet magic 0x%08x", magic);
		return -EPROTO;
	}
	if (h->len > WIRE_MAX_PAYLOAD)
		return refuse(why, whylen, h->type, "length %u: more than %u bytes", h->len, WIRE_MAX_PAYLOAD);
	return 0;
}

/* ------------------------------------------------------------ shared checks */

/* [off, off+len) within a device of dev bytes, without overflow. */
static int in_device(uint64_t off, uint64_t len, uint64_t dev)
{
	return off <= dev && len <= dev - off;
}

/* Offset and length in whole sectors; only a range ending at the device's
 * end may end mid-sector (a device size need not be a sector multiple). */
static int check_sectors(uint16_t type, uint64_t off, uint32_t len, uint64_t dev, char *why, size_t whylen)
{
	if (off % CODEC_SECTOR)
		return refuse(why, whylen, type, "offset %llu: not a multiple of %u bytes", LLU(off), CODEC_SECTOR);
	if (len % CODEC_SECTOR && off + len != dev)
		return refuse(why, whylen, type, "length %u at offset %llu: not a multiple of %u bytes", len, LLU(off),
			      CODEC_SECTOR);
	return 0;
}

static int check_range(uint16_t type, uint64_t off, uint32_t len, uint32_t max, uint64_t dev, char *why,
		       size_t whylen)
{
	if (!len)
		return refuse(why, whylen, type, "length 0 at offset %llu: empty request", LLU(off));
	if (len > max)
		return refuse(why, whylen, type, "length %u at offset %llu: more than %u bytes", len, LLU(off), max);
	if (!in_device(off, len, dev))
		return refuse(why, whylen, type, "%u bytes at offset %llu: past the end of the device (%llu bytes)",
			      len, LLU(off), LLU(dev));
	return 0;
}

static int check_status(uint16_t type, uint32_t v, char *why, size_t whylen)
{
	if (v > CODEC_STATUS_MAX)
		return refuse(why, whylen, type, "status %u: not 0 or an errno", v);
	return 0;
}

/* ------------------------------------------------------------ P_DATA */

void codec_encode_data(uint8_t *b, const struct pkt_data *d)
{
	put_be64(b, d->off);
	put_be32(b + 8, d->len);
	put_be64(b + 12, d->seq);
	put_be64(b + 20, d->seen);
}

int codec_decode_data(const struct wire_hdr *h, const uint8_t *payload, const struct codec_dev *dev,
		      struct pkt_data *out, char *why, size_t whylen)
{
	uint16_t t = h->type;
	if (h->len < DATA_HDR)
		return refuse(why, whylen, t, "payload %u bytes: shorter than the %u-byte fixed part", h->len, DATA_HDR);
	if (h->flags & ~(DF_FUA | DF_ZERO | DF_TRIM))
		return refuse(why, whylen, t, "flags 0x%x: unknown bits", h->flags);
	if ((h->flags & DF_ZERO) && (h->flags & DF_TRIM))
		return refuse(why, whylen, t, "flags 0x%x: both DF_ZERO and DF_TRIM", h->flags);
	out->off = get_be64(payload);
	out->len = get_be32(payload + 8);
	out->seq = get_be64(payload + 12);
	out->seen = get_be64(payload + 20);
	uint32_t carried = h->len - DATA_HDR;
	int has_data = !(h->flags & (DF_ZERO | DF_TRIM));
	out->payload = has_data ? payload + DATA_HDR : NULL;
	/* an empty write would reach the disk as a zero-length trim or zero-out,
	 * which fails (EINVAL) and would detach a healthy disk */
	if (!out->len)
		return refuse(why, whylen, t, "length 0 at offset %llu: empty write", LLU(out->off));
	if (has_data && carried != out->len)
		return refuse(why, whylen, t, "length %u but %u bytes of data", out->len, carried);
	if (!has_data && carried)
		return refuse(why, whylen, t, "%u bytes of data with DF_ZERO/DF_TRIM (none expected)", carried);
	if (!in_device(out->off, out->len, dev->bytes))
		return refuse(why, whylen, t, "%u bytes at offset %llu: past the end of the device (%llu bytes)",
			      out->len, LLU(out->off), LLU(dev->bytes));
	return 0;
}

/* ------------------------------------------------------------ P_RS_DATA */

void codec_encode_range(uint8_t *b, uint64_t off, uint32_t len)
{
	put_be64(b, off);
	put_be32(b + 8, len);
}

int codec_decode_rs_data(const struct wire_hdr *h, const uint8_t *payload, const struct codec_dev *dev,
			 struct pkt_rs_data *out, char *why, size_t whylen)
{
	uint16_t t = h->type;
	if (h->len < RS_HDR)
		return refuse(why, whylen, t, "payload %u bytes: shorter than the %u-byte fixed part", h->len, RS_HDR);
	if (h->flags)
		return refuse(why, whylen, t, "flags 0x%x: none expected", h->flags);
	out->off = get_be64(payload);
	out->len = get_be32(payload + 8);
	out->payload = payload + RS_HDR;
	if (out->off % CODEC_BLOCK)
		return refuse(why, whylen, t, "offset %llu: not a multiple of %u bytes", LLU(out->off), CODEC_BLOCK);
	if (h->len - RS_HDR != out->len)
		return refuse(why, whylen, t, "length %u but %u bytes of data", out->len, h->len - RS_HDR);
	int rc = check_range(t, out->off, out->len, WIRE_MAX_PAYLOAD, dev->bytes, why, whylen);
	return rc ? rc : check_sectors(t, out->off, out->len, dev->bytes, why, whylen);
}

/* ------------------------------------------------------------ P_READ_REQ, P_VERIFY_REQ */

int codec_decode_range(const struct wire_hdr *h, const uint8_t *payload, const struct codec_dev *dev,
		       struct pkt_range *out, char *why, size_t whylen)
{
	uint16_t t = h->type;
	if (h->len != RANGE_HDR)
		return refuse(why, whylen, t, "payload %u bytes: expected %u", h->len, RANGE_HDR);
	out->off = get_be64(payload);
	out->len = get_be32(payload + 8);
	int rc = check_range(t, out->off, out->len, t == P_VERIFY_REQ ? VERIFY_MAX : READ_MAX, dev->bytes, why,
			     whylen);
	/* digests cover whole sectors; reads serve byte-granular requests */
	if (!rc && t == P_VERIFY_REQ)
		rc = check_sectors(t, out->off, out->len, dev->bytes, why, whylen);
	return rc;
}

/* ------------------------------------------------------------ P_RS_CSUM */

int codec_decode_rs_csum(const struct wire_hdr *h, const uint8_t *payload, const struct codec_dev *dev,
			 struct pkt_rs_csum *out, char *why, size_t whylen)
{
	uint16_t t = h->type;
	if (h->len < RANGE_HDR)
		return refuse(why, whylen, t, "payload %u bytes: shorter than the %u-byte fixed part", h->len,
			      RANGE_HDR);
	if (!dev->csum_len)
		return refuse(why, whylen, t, "no csums-alg is configured on this node");
	out->off = get_be64(payload);
	out->len = get_be32(payload + 8);
	out->digests = payload + RANGE_HDR;
	if (out->off % CODEC_BLOCK)
		return refuse(why, whylen, t, "offset %llu: not a multiple of %u bytes", LLU(out->off), CODEC_BLOCK);
	int rc = check_range(t, out->off, out->len, RS_MAX_BLOCKS * CODEC_BLOCK, dev->bytes, why, whylen);
	if (rc || (rc = check_sectors(t, out->off, out->len, dev->bytes, why, whylen)))
		return rc;
	out->nblocks = (out->len + CODEC_BLOCK - 1) / CODEC_BLOCK;
	uint64_t want = (uint64_t)out->nblocks * dev->csum_len;
	if (h->len - RANGE_HDR != want)
		return refuse(why, whylen, t, "%u bytes of digests: expected %llu (%u blocks of %u bytes)",
			      h->len - RANGE_HDR, LLU(want), out->nblocks, dev->csum_len);
	return 0;
}

/* ------------------------------------------------------------ P_BITMAP */

void codec_encode_bitmap(uint8_t *b, uint64_t first)
{
	put_be64(b, first);
}

void codec_encode_bitmap_word(uint8_t *b, uint64_t i, uint64_t word)
{
	put_le64(b + 8 + 8 * i, word);
}

uint64_t codec_bitmap_word(const struct pkt_bitmap *bm, uint64_t i)
{
	return get_le64(bm->words + 8 * i);
}

int codec_decode_bitmap(const struct wire_hdr *h, const uint8_t *payload, const struct codec_dev *dev,
			struct pkt_bitmap *out, char *why, size_t whylen)
{
	uint16_t t = h->type;
	if (h->len < 8)
		return refuse(why, whylen, t, "payload %u bytes: shorter than the 8-byte first word", h->len);
	if ((h->len - 8) % 8)
		return refuse(why, whylen, t, "length %u: not a whole number of 8-byte words", h->len);
	out->first = get_be64(payload);
	out->nwords = (h->len - 8) / 8;
	out->words = payload + 8;
	if (out->nwords > BM_WORDS_PER_PKT)
		return refuse(why, whylen, t, "%llu words: more than %u", LLU(out->nwords), BM_WORDS_PER_PKT);
	if (!in_device(out->first, out->nwords, dev->bm_words))
		return refuse(why, whylen, t, "words %llu..%llu: past the bitmap (%llu words)", LLU(out->first),
			      LLU(out->first + out->nwords), LLU(dev->bm_words));
	return 0;
}

/* ------------------------------------------------------------ acks, replies */

void codec_encode_status(uint8_t *b, int status)
{
	put_be32(b, (uint32_t)status);
}

int codec_decode_status(const struct wire_hdr *h, const uint8_t *payload, struct pkt_status *out, char *why,
			size_t whylen)
{
	if (h->len != 4)
		return refuse(why, whylen, h->type, "payload %u bytes: expected 4", h->len);
	uint32_t v = get_be32(payload);
	out->status = (int)v;
	return check_status(h->type, v, why, whylen);
}

int codec_decode_reply(const struct wire_hdr *h, const uint8_t *payload, struct pkt_reply *out, char *why,
		       size_t whylen)
{
	uint16_t t = h->type;
	if (h->len < 4)
		return refuse(why, whylen, t, "payload %u bytes: shorter than the 4-byte status", h->len);
	uint32_t v = get_be32(payload);
	int rc = check_status(t, v, why, whylen);
	if (rc)
		return rc;
	out->status = (int)v;
	out->len = h->len - 4;
	out->payload = payload + 4;
	if (t == P_RS_CSUM_REPLY && h->len > CSUM_REPLY_MAX)
		return refuse(why, whylen, t, "payload %u bytes: more than %u", h->len, CSUM_REPLY_MAX);
	if (t == P_READ_REPLY && v && out->len)
		return refuse(why, whylen, t, "%u bytes of data with status %u (none expected)", out->len, v);
	return 0;
}

/* ------------------------------------------------------------ state, sync, flush */

void codec_encode_flush(uint8_t *b, uint64_t epoch)
{
	put_be64(b, epoch);
}

int codec_decode_flush(const struct wire_hdr *h, const uint8_t *payload, struct pkt_flush *out, char *why,
		       size_t whylen)
{
	if (h->len != 8)
		return refuse(why, whylen, h->type, "payload %u bytes: expected 8", h->len);
	out->epoch = get_be64(payload);
	return 0;
}

void codec_encode_state(uint8_t *b, const struct pkt_state *s)
{
	memset(b, 0, STATE_BYTES);
	b[0] = s->role;
	b[1] = s->disk;
	b[2] = s->flags;
	put_be32(b + 4, s->stamp);
	put_be64(b + 8, s->uuid);
	put_be64(b + 16, s->history[0]);
	put_be64(b + 24, s->history[1]);
}

int codec_decode_state(const struct wire_hdr *h, const uint8_t *payload, struct pkt_state *out, char *why,
		       size_t whylen)
{
	uint16_t t = h->type;
	if (h->len != STATE_BYTES && h->len != STATE_OLD_BYTES)
		return refuse(why, whylen, t, "payload %u bytes: expected %u or %u", h->len, STATE_BYTES,
			      STATE_OLD_BYTES);
	out->role = payload[0];
	out->disk = payload[1];
	if (out->role > WIRE_ROLE_MAX)
		return refuse(why, whylen, t, "role %u: unknown", out->role);
	if (out->disk > WIRE_DISK_MAX)
		return refuse(why, whylen, t, "disk state %u: unknown", out->disk);
	out->flags = payload[2];
	if (out->flags & ~STF_KNOWN)
		return refuse(why, whylen, t, "flags 0x%02x: unknown bits 0x%02x", out->flags, out->flags & ~STF_KNOWN);
	out->stamp = get_be32(payload + 4);
	out->uuid = get_be64(payload + 8);
	out->has_history = h->len == STATE_BYTES;
	out->history[0] = out->has_history ? get_be64(payload + 16) : 0;
	out->history[1] = out->has_history ? get_be64(payload + 24) : 0;
	return 0;
}

void codec_encode_sizes(uint8_t *b, const struct pkt_sizes *s)
{
	put_be64(b, s->usable);
	put_be64(b + 8, s->size);
	put_be32(b + 16, s->flags);
}

int codec_decode_sizes(const struct wire_hdr *h, const uint8_t *payload, struct pkt_sizes *out, char *why,
		       size_t whylen)
{
	uint16_t t = h->type;
	if (h->len != SIZES_BYTES)
		return refuse(why, whylen, t, "payload %u bytes: expected %u", h->len, SIZES_BYTES);
	out->usable = get_be64(payload);
	out->size = get_be64(payload + 8);
	out->flags = get_be32(payload + 16);
	if (out->flags & ~(SZF_ASK | SZF_SET) || out->flags == (SZF_ASK | SZF_SET))
		return refuse(why, whylen, t, "flags 0x%x: unknown or contradictory bits", out->flags);
	if (out->usable % 4096 || out->size % 4096)
		return refuse(why, whylen, t, "usable %llu, size %llu bytes: not multiples of 4096", LLU(out->usable),
			      LLU(out->size));
	if ((out->flags & SZF_SET) && (!out->size || (out->usable && out->size > out->usable)))
		return refuse(why, whylen, t, "size %llu bytes: zero or beyond the usable %llu", LLU(out->size),
			      LLU(out->usable));
	return 0;
}

void codec_encode_sync_start(uint8_t *b, const struct pkt_sync_start *s)
{
	put_be64(b, s->total);
	put_be32(b + 8, s->flags);
	put_be64(b + 12, s->sync_uuid);
}

int codec_decode_sync_start(const struct wire_hdr *h, const uint8_t *payload, const struct codec_dev *dev,
			    struct pkt_sync_start *out, char *why, size_t whylen)
{
	uint16_t t = h->type;
	if (h->len != SYNC_START_BYTES && h->len != SYNC_START_OLD_BYTES)
		return refuse(why, whylen, t, "payload %u bytes: expected %u or %u", h->len, SYNC_START_BYTES,
			      SYNC_START_OLD_BYTES);
	out->total = get_be64(payload);
	out->flags = get_be32(payload + 8);
	out->sync_uuid = h->len == SYNC_START_BYTES ? get_be64(payload + 12) : 0;
	if (out->total > dev->bytes)
		return refuse(why, whylen, t, "total %llu bytes: more than the device (%llu bytes)", LLU(out->total),
			      LLU(dev->bytes));
	if (out->flags & ~SSF_FULL)
		return refuse(why, whylen, t, "flags 0x%x: unknown bits", out->flags);
	return 0;
}

void codec_encode_sync_done(uint8_t *b, const struct pkt_sync_done *s)
{
	for (int i = 0; i < 4; i++)
		put_be64(b + 8 * i, s->uuid[i]);
	put_be64(b + 32, s->gen_time);
}

int codec_decode_sync_done(const struct wire_hdr *h, const uint8_t *payload, struct pkt_sync_done *out,
			   char *why, size_t whylen)
{
	if (h->len != SYNC_DONE_BYTES)
		return refuse(why, whylen, h->type, "payload %u bytes: expected %u", h->len, SYNC_DONE_BYTES);
	for (int i = 0; i < 4; i++)
		out->uuid[i] = get_be64(payload + 8 * i);
	out->gen_time = get_be64(payload + 32);
	return 0;
}

void codec_encode_vstate(uint8_t *b, const struct pkt_vstate *v)
{
	memset(b, 0, VSTATE_BYTES);
	b[0] = v->role;
	b[1] = v->disk;
	b[2] = v->quorum;
	b[3] = v->going_on_without;
	put_be32(b + 4, v->seen);
	put_be32(b + 8, v->uptime_ms);
	put_be64(b + 16, v->uuid);
	for (int i = 0; i < VSTATE_NODES; i++) {
		uint8_t *n = b + VSTATE_HDR + 8 * i;
		put_be32(n, v->n[i].age_ms);
		n[4] = v->n[i].disk;
		n[5] = v->n[i].role;
		n[6] = v->n[i].quorum;
		n[7] = v->n[i].outdated_by;
	}
}

int codec_decode_vstate(const struct wire_hdr *h, const uint8_t *payload, struct pkt_vstate *out, char *why,
			size_t whylen)
{
	uint16_t t = h->type;
	if (h->len != VSTATE_BYTES)
		return refuse(why, whylen, t, "payload %u bytes: expected %u", h->len, VSTATE_BYTES);
	out->role = payload[0];
	out->disk = payload[1];
	out->quorum = payload[2];
	out->going_on_without = payload[3];
	if (out->role > WIRE_ROLE_MAX)
		return refuse(why, whylen, t, "role %u: unknown", out->role);
	if (out->disk > WIRE_DISK_MAX)
		return refuse(why, whylen, t, "disk state %u: unknown", out->disk);
	if (out->quorum > 1)
		return refuse(why, whylen, t, "quorum %u: not 0 or 1", out->quorum);
	if (out->going_on_without != VSTATE_NONE && (out->going_on_without & ~VSTATE_CLAIM) >= VSTATE_NODES)
		return refuse(why, whylen, t, "going-on-without node %u: no such node id",
			      out->going_on_without & ~VSTATE_CLAIM);
	out->seen = get_be32(payload + 4);
	out->uptime_ms = get_be32(payload + 8);
	out->uuid = get_be64(payload + 16);
	for (int i = 0; i < VSTATE_NODES; i++) {
		const uint8_t *n = payload + VSTATE_HDR + 8 * i;
		out->n[i].age_ms = get_be32(n);
		out->n[i].disk = n[4];
		out->n[i].role = n[5];
		out->n[i].quorum = n[6];
		out->n[i].outdated_by = n[7];
	}
	return 0;
}

int codec_decode_empty(const struct wire_hdr *h, char *why, size_t whylen)
{
	if (h->len)
		return refuse(why, whylen, h->type, "payload %u bytes: expected none", h->len);
	return 0;
}

/* ------------------------------------------------------------ by type */

int codec_decode(const struct wire_hdr *h, const uint8_t *payload, const struct codec_dev *dev, union pkt *out,
		 char *why, size_t whylen)
{
	switch (h->type) {
	case P_DATA:
		return codec_decode_data(h, payload, dev, &out->data, why, whylen);
	case P_RS_DATA:
		return codec_decode_rs_data(h, payload, dev, &out->rs_data, why, whylen);
	case P_READ_REQ:
	case P_VERIFY_REQ:
		return codec_decode_range(h, payload, dev, &out->range, why, whylen);
	case P_RS_CSUM:
		return codec_decode_rs_csum(h, payload, dev, &out->rs_csum, why, whylen);
	case P_BITMAP:
	case P_PEER_BITMAP:
		return codec_decode_bitmap(h, payload, dev, &out->bitmap, why, whylen);
	case P_RECV_ACK:
	case P_WRITE_ACK:
	case P_FLUSH_ACK:
	case P_RS_ACK:
		return codec_decode_status(h, payload, &out->ack, why, whylen);
	case P_READ_REPLY:
	case P_RS_CSUM_REPLY:
		return codec_decode_reply(h, payload, &out->reply, why, whylen);
	case P_FLUSH:
		return codec_decode_flush(h, payload, &out->flush, why, whylen);
	case P_STATE:
		return codec_decode_state(h, payload, &out->state, why, whylen);
	case P_SYNC_START:
		return codec_decode_sync_start(h, payload, dev, &out->sync_start, why, whylen);
	case P_SIZES:
		return codec_decode_sizes(h, payload, &out->sizes, why, whylen);
	case P_SYNC_DONE:
		return codec_decode_sync_done(h, payload, &out->sync_done, why, whylen);
	case P_PING:
	case P_PING_ACK:
	case P_BITMAP_DONE:
	case P_PEER_BITMAP_DONE:
	case P_SYNC_ACK:
		return codec_decode_empty(h, why, whylen);
	}
	snprintf(why, whylen, "unknown packet type %u", h->type);
	return -EPROTO;
}

/* ------------------------------------------------------------ handshake */

void codec_encode_hello(uint8_t *b, const struct pkt_hello *hl)
{
	memset(b, 0, HELLO_BYTES);
	put_be32(b + HELLO_VMIN, hl->vmin);
	put_be32(b + HELLO_VMAX, hl->vmax);
	put_be32(b + HELLO_NODE_ID, hl->node_id);
	b[HELLO_CHANNEL] = hl->channel;
	b[HELLO_PROTOCOL] = hl->protocol;
	b[HELLO_ROLE] = hl->role;
	b[HELLO_DISK] = hl->disk;
	put_be32(b + HELLO_FLAGS, hl->flags);
	put_be64(b + HELLO_SIZE, hl->size);
	put_be64(b + HELLO_OOS, hl->oos);
	for (int i = 0; i < 4; i++)
		put_be64(b + HELLO_UUID + 8 * i, hl->uuid[i]);
	memcpy(b + HELLO_RES, hl->res, strnlen(hl->res, HELLO_RES_MAX));
	memcpy(b + HELLO_CHAL, hl->chal, WIRE_CHALLENGE);
	put_be64(b + HELLO_GEN_TIME, hl->gen_time);
	put_be32(b + HELLO_STAMP, hl->stamp);
	put_be32(b + HELLO_STAMP_FROM, (uint32_t)hl->stamp_from);
}

int codec_decode_hello(const uint8_t *payload, uint32_t len, struct pkt_hello *out, char *why, size_t whylen)
{
	const uint8_t *b = payload;

	if (len != HELLO_BYTES)
		return refuse(why, whylen, P_HELLO, "payload %u bytes: expected %u", len, HELLO_BYTES);
	memset(out, 0, sizeof *out);
	out->vmin = get_be32(b + HELLO_VMIN);
	out->vmax = get_be32(b + HELLO_VMAX);
	out->node_id = get_be32(b + HELLO_NODE_ID);
	out->channel = b[HELLO_CHANNEL];
	out->protocol = b[HELLO_PROTOCOL];
	out->role = b[HELLO_ROLE];
	out->disk = b[HELLO_DISK];
	out->flags = get_be32(b + HELLO_FLAGS);
	out->size = get_be64(b + HELLO_SIZE);
	out->oos = get_be64(b + HELLO_OOS);
	for (int i = 0; i < 4; i++)
		out->uuid[i] = get_be64(b + HELLO_UUID + 8 * i);
	memcpy(out->chal, b + HELLO_CHAL, WIRE_CHALLENGE);
	out->gen_time = get_be64(b + HELLO_GEN_TIME);
	out->stamp = get_be32(b + HELLO_STAMP);
	out->stamp_from = (int32_t)get_be32(b + HELLO_STAMP_FROM);
	if (out->channel > CH_MAX)
		return refuse(why, whylen, P_HELLO, "channel %u: expected 0 (data), 1 (meta), 2 (vote), 3 (fs) or 4 (query)",
			      out->channel);
	if (out->role > HELLO_ROLE_MAX)
		return refuse(why, whylen, P_HELLO, "role %u: no such role", out->role);
	if (out->disk > HELLO_DISK_MAX)
		return refuse(why, whylen, P_HELLO, "disk state %u: no such state", out->disk);
	if (out->protocol && (out->protocol < 'A' || out->protocol > 'C'))
		return refuse(why, whylen, P_HELLO, "protocol %u: expected A, B or C", out->protocol);
	if (!memchr(b + HELLO_RES, 0, HELLO_RES_MAX + 1))
		return refuse(why, whylen, P_HELLO, "resource name not terminated within %u bytes", HELLO_RES_MAX + 1);
	memcpy(out->res, b + HELLO_RES, HELLO_RES_MAX + 1);
	if (out->stamp_from < -1)
		return refuse(why, whylen, P_HELLO, "stamp node-id %d: expected -1 or a node-id", out->stamp_from);
	return 0;
}

void codec_encode_history(uint8_t *b, const struct pkt_hello *hl)
{
	for (int i = 4; i < HELLO_UUIDS; i++)
		put_be64(b + 8 * (i - 4), hl->uuid[i]);
}

int codec_decode_history(const struct wire_hdr *h, const uint8_t *payload, struct pkt_hello *hl, char *why,
			 size_t whylen)
{
	if (h->type != P_HISTORY || h->len != HISTORY_BYTES)
		return refuse(why, whylen, P_HISTORY, "got packet type %u of %u bytes: expected P_HISTORY of %u",
			      h->type, h->len, HISTORY_BYTES);
	for (int i = 4; i < HELLO_UUIDS; i++)
		hl->uuid[i] = get_be64(payload + 8 * (i - 4));
	return 0;
}

void codec_encode_decision(uint8_t *b, uint32_t verdict)
{
	put_be32(b, verdict);
}

int codec_decode_decision(const struct wire_hdr *h, const uint8_t *payload, uint32_t *verdict, char *why,
			  size_t whylen)
{
	if (h->type != P_DECISION || h->len != 4)
		return refuse(why, whylen, P_DECISION, "got %s of %u bytes: expected P_DECISION of 4",
			      codec_type_name(h->type), h->len);
	*verdict = get_be32(payload);
	return 0;
}

int codec_decode_auth(const struct wire_hdr *h, char *why, size_t whylen)
{
	if (h->type != P_AUTH || h->len == 0 || h->len > WIRE_MAC_MAX)
		return refuse(why, whylen, P_AUTH, "got %s of %u bytes: expected P_AUTH of 1-%u", codec_type_name(h->type),
			      h->len, WIRE_MAC_MAX);
	return 0;
}

int codec_decode_refuse(const struct wire_hdr *h, const uint8_t *payload, char *text, char *why, size_t whylen)
{
	if (h->type != P_REFUSE || h->len > CODEC_REFUSE_MAX)
		return refuse(why, whylen, P_REFUSE, "%u bytes: at most %u", h->len, CODEC_REFUSE_MAX);
	for (uint32_t i = 0; i < h->len; i++)
		text[i] = payload[i] >= 0x20 && payload[i] < 0x7f ? (char)payload[i] : '?';
	text[h->len] = 0;
	return 0;
}

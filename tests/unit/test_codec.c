/* The wire codec (src/net/codec.c): every packet survives an encode/decode
 * round trip, and a table of malformed packets is refused, each with a
 * reason naming the packet and the field at fault. */
#include <errno.h>
#include <string.h>
#include "unit.h"
#include "codec.h"
#include "util.h"

#define DEV_BYTES (1ull << 30)
static const struct codec_dev dev = { DEV_BYTES, DEV_BYTES / 4096 / 64, 4 };

static struct wire_hdr hdr(uint16_t type, uint16_t flags, uint32_t len)
{
	return (struct wire_hdr){ .type = type, .flags = flags, .len = len, .stamp = 0, .id = 7 };
}

TEST(header_round_trip)
{
	uint8_t b[WIRE_HDR];
	struct wire_hdr in = { P_DATA, DF_FUA, 4096 + DATA_HDR, 99, 0x123456789abcull }, out;
	char why[128] = "";
	codec_encode_hdr(b, &in);
	CHECK(get_be32(b) == WIRE_MAGIC);
	CHECK(codec_decode_hdr(b, &out, why, sizeof why) == 0);
	CHECK(!memcmp(&in, &out, sizeof in));
	b[0] ^= 1;
	CHECK(codec_decode_hdr(b, &out, why, sizeof why) == -EPROTO);
	CHECK_STR_HAS(why, "bad packet magic");
	b[0] ^= 1;
	put_be32(b + 8, WIRE_MAX_PAYLOAD + 1);
	CHECK(codec_decode_hdr(b, &out, why, sizeof why) == -EPROTO);
	CHECK_STR_HAS(why, "P_DATA: length");
}

TEST(data_round_trip)
{
	static uint8_t b[DATA_HDR + 4096];
	struct pkt_data in = { 1u << 20, 4096, 5, 3, NULL }, out;
	union pkt u;
	char why[128] = "";
	codec_encode_data(b, &in);
	memset(b + DATA_HDR, 0x5a, 4096);
	struct wire_hdr h = hdr(P_DATA, DF_FUA, sizeof b);
	CHECK(codec_decode_data(&h, b, &dev, &out, why, sizeof why) == 0);
	CHECK(out.off == in.off && out.len == in.len && out.seq == in.seq && out.seen == in.seen);
	CHECK(out.payload == b + DATA_HDR); /* points into the buffer: no copy */
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0 && u.data.len == 4096);
	/* zero-out: no data follows */
	h = hdr(P_DATA, DF_ZERO, DATA_HDR);
	CHECK(codec_decode_data(&h, b, &dev, &out, why, sizeof why) == 0 && !out.payload && out.len == 4096);
	/* byte-granular writes are legitimate (NBD minimum block size 1) */
	in = (struct pkt_data){ 3, 1, 1, 0, NULL };
	codec_encode_data(b, &in);
	h = hdr(P_DATA, 0, DATA_HDR + 1);
	CHECK(codec_decode_data(&h, b, &dev, &out, why, sizeof why) == 0);
}

TEST(fixed_parts_round_trip)
{
	uint8_t b[64];
	union pkt u;
	char why[128] = "";
	struct wire_hdr h;

	codec_encode_range(b, DEV_BYTES - 8192, 8192);
	h = hdr(P_READ_REQ, 0, RANGE_HDR);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0);
	CHECK(u.range.off == DEV_BYTES - 8192 && u.range.len == 8192);
	h = hdr(P_VERIFY_REQ, 0, RANGE_HDR);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0 && u.range.len == 8192);

	codec_encode_flush(b, 42);
	h = hdr(P_FLUSH, 0, 8);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0 && u.flush.epoch == 42);

	struct pkt_state st = { .role = 1, .disk = 6, .flags = STF_FS_OWNER, .uuid = 0x1111,
				.history = { 0x2222, 0x3333 }, .has_history = 1 };
	codec_encode_state(b, &st);
	h = hdr(P_STATE, 0, STATE_BYTES);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0);
	CHECK(u.state.role == 1 && u.state.disk == 6 && u.state.uuid == 0x1111 && u.state.history[0] == 0x2222 &&
	      u.state.history[1] == 0x3333 && u.state.has_history && u.state.flags == STF_FS_OWNER);
	/* the fs-owner flag and the stamp sit in bytes older senders always
	 * sent as 0 (no stamp: 0) */
	CHECK(b[2] == STF_FS_OWNER && !b[3] && !b[4] && !b[5] && !b[6] && !b[7] && u.state.stamp == 0);
	st.flags = 0;
	st.stamp = 0x01020304;
	codec_encode_state(b, &st);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0 && u.state.flags == 0 && u.state.stamp == 0x01020304);
	CHECK(b[4] == 1 && b[7] == 4 && !b[3]);
	codec_encode_state(b, &st);
	h = hdr(P_STATE, 0, STATE_OLD_BYTES);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0 && !u.state.has_history && !u.state.history[0]);

	codec_encode_sync_start(b, &(struct pkt_sync_start){ 1u << 20, SSF_FULL, 0xabcd });
	h = hdr(P_SYNC_START, 0, SYNC_START_BYTES);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0);
	CHECK(u.sync_start.total == 1u << 20 && u.sync_start.flags == SSF_FULL && u.sync_start.sync_uuid == 0xabcd);
	/* the older 12-byte form: no sync uuid */
	h = hdr(P_SYNC_START, 0, SYNC_START_OLD_BYTES);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0 && u.sync_start.sync_uuid == 0);
	h = hdr(P_SYNC_START, 0, SYNC_START_OLD_BYTES + 4);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == -EPROTO);

	codec_encode_sizes(b, &(struct pkt_sizes){ 8192, 4096, SZF_SET });
	h = hdr(P_SIZES, 0, SIZES_BYTES);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0);
	CHECK(u.sizes.usable == 8192 && u.sizes.size == 4096 && u.sizes.flags == SZF_SET);

	struct pkt_sync_done sd = { { 1, 2, 3, 4 }, 5 };
	codec_encode_sync_done(b, &sd);
	h = hdr(P_SYNC_DONE, 0, SYNC_DONE_BYTES);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0 && !memcmp(&u.sync_done, &sd, sizeof sd));

	static const uint16_t acks[] = { P_RECV_ACK, P_WRITE_ACK, P_FLUSH_ACK, P_RS_ACK };
	for (unsigned i = 0; i < ARRAY_SIZE(acks); i++) {
		codec_encode_status(b, EIO);
		h = hdr(acks[i], 0, 4);
		CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0 && u.ack.status == EIO);
	}
	codec_encode_status(b, 0);
	memset(b + 4, 0xab, 8);
	h = hdr(P_READ_REPLY, 0, 12);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0 && u.reply.len == 8 && u.reply.payload == b + 4);
	h = hdr(P_RS_CSUM_REPLY, 0, 5);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0 && u.reply.len == 1);

	static const uint16_t empty[] = { P_PING, P_PING_ACK, P_BITMAP_DONE, P_PEER_BITMAP_DONE, P_SYNC_ACK };
	for (unsigned i = 0; i < ARRAY_SIZE(empty); i++) {
		h = hdr(empty[i], 0, 0);
		CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0);
	}
}

TEST(bulk_round_trip)
{
	static uint8_t b[8 + 8 * 16 + 4096];
	union pkt u;
	char why[128] = "";
	struct wire_hdr h;

	codec_encode_bitmap(b, dev.bm_words - 16);
	for (uint64_t i = 0; i < 16; i++)
		codec_encode_bitmap_word(b, i, 0x0102030405060708ull * (i + 1));
	h = hdr(P_BITMAP, 0, 8 + 8 * 16);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0);
	CHECK(u.bitmap.first == dev.bm_words - 16 && u.bitmap.nwords == 16);
	CHECK(codec_bitmap_word(&u.bitmap, 15) == 0x0102030405060708ull * 16);
	h = hdr(P_PEER_BITMAP, 0, 8 + 8 * 16);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0);

	codec_encode_range(b, 8192, 4096);
	h = hdr(P_RS_DATA, 0, RS_HDR + 4096);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0);
	CHECK(u.rs_data.off == 8192 && u.rs_data.len == 4096 && u.rs_data.payload == b + RS_HDR);

	codec_encode_range(b, 8192, 3 * 4096);
	h = hdr(P_RS_CSUM, 0, RANGE_HDR + 3 * 4);
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == 0);
	CHECK(u.rs_csum.nblocks == 3 && u.rs_csum.digests == b + RANGE_HDR);

	/* a device whose size is no sector multiple: the last range ends with it */
	struct codec_dev odd = { 10 * 4096 + 100, 1, 4 };
	codec_encode_range(b, 10 * 4096, 100);
	h = hdr(P_RS_DATA, 0, RS_HDR + 100);
	CHECK(codec_decode(&h, b, &odd, &u, why, sizeof why) == 0);
}

/* Each malformed packet: the fixed part (off, len[, seq, seen]) and the
 * reason it must be refused with. */
static const struct bad {
	uint16_t type, flags;
	uint64_t off;
	uint32_t len, paylen; /* len field; payload bytes after the fixed part */
	uint32_t raw_len;     /* != 0: the header's length instead of fixed + paylen */
	const char *why;
} bad[] = {
	{ P_DATA, 0, 1, 0, 0, 0, "P_DATA: length 0 at offset 1: empty write" },
	{ P_DATA, DF_ZERO, 4096, 0, 0, 0, "P_DATA: length 0 at offset 4096" },
	{ P_DATA, DF_TRIM, 0, 0, 0, 0, "P_DATA: length 0" },
	{ P_DATA, 0, 0, 8192, 4096, 0, "P_DATA: length 8192 but 4096 bytes of data" },
	{ P_DATA, DF_ZERO, 0, 4096, 4096, 0, "P_DATA: 4096 bytes of data with DF_ZERO/DF_TRIM" },
	{ P_DATA, DF_ZERO | DF_TRIM, 0, 4096, 0, 0, "P_DATA: flags 0x6: both DF_ZERO and DF_TRIM" },
	{ P_DATA, 0x80, 0, 512, 512, 0, "P_DATA: flags 0x80: unknown bits" },
	{ P_DATA, 0, DEV_BYTES - 512, 4096, 4096, 0, "P_DATA: 4096 bytes at offset 1073741312: past the end" },
	{ P_DATA, DF_ZERO, UINT64_MAX - 100, 4096, 0, 0, "past the end of the device" },
	{ P_DATA, 0, 0, 0, 0, 20, "P_DATA: payload 20 bytes: shorter than the 28-byte fixed part" },
	{ P_RS_DATA, 0, 1000, 4096, 4096, 0, "P_RS_DATA: offset 1000: not a multiple of 4096" },
	{ P_RS_DATA, 0, 4096, 1000, 1000, 0, "P_RS_DATA: length 1000 at offset 4096: not a multiple of 512" },
	{ P_RS_DATA, 0, DEV_BYTES, 4096, 4096, 0, "P_RS_DATA: 4096 bytes at offset 1073741824: past the end" },
	{ P_RS_DATA, 0, 0, 4096, 100, 0, "P_RS_DATA: length 4096 but 100 bytes of data" },
	{ P_RS_DATA, 0, 0, 0, 0, 0, "P_RS_DATA: length 0" },
	{ P_RS_DATA, DF_ZERO, 0, 4096, 0, 0, "P_RS_DATA: flags 0x2: none expected" },
	{ P_READ_REQ, 0, DEV_BYTES - 4096, 8192, 0, 0, "P_READ_REQ: 8192 bytes at offset 1073737728: past the end" },
	{ P_READ_REQ, 0, 0, 0, 0, 0, "P_READ_REQ: length 0 at offset 0" },
	{ P_READ_REQ, 0, 0, READ_MAX + 1, 0, 0, "P_READ_REQ: length 16777217 at offset 0: more than" },
	{ P_READ_REQ, 0, 0, 4096, 0, 16, "P_READ_REQ: payload 16 bytes: expected 12" },
	{ P_VERIFY_REQ, 0, 100, 4096, 0, 0, "P_VERIFY_REQ: offset 100: not a multiple of 512" },
	{ P_VERIFY_REQ, 0, 0, 4000, 0, 0, "P_VERIFY_REQ: length 4000 at offset 0: not a multiple of 512" },
	{ P_VERIFY_REQ, 0, 0, VERIFY_MAX * 2, 0, 0, "P_VERIFY_REQ: length 2097152 at offset 0: more than" },
	{ P_RS_CSUM, 0, 4096, 8192, 4, 0, "P_RS_CSUM: 4 bytes of digests: expected 8" },
	{ P_RS_CSUM, 0, 512, 4096, 4, 0, "P_RS_CSUM: offset 512: not a multiple of 4096" },
	{ P_RS_CSUM, 0, 0, 2u << 20, 2048, 0, "P_RS_CSUM: length 2097152 at offset 0: more than" },
	{ P_RS_CSUM, 0, DEV_BYTES, 4096, 4, 0, "P_RS_CSUM: 4096 bytes at offset 1073741824: past the end" },
};

TEST(malformed_refused)
{
	static uint8_t b[DATA_HDR + (2u << 20)];
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		const struct bad *c = &bad[i];
		uint32_t fixed = c->type == P_DATA ? DATA_HDR : RANGE_HDR;
		memset(b, 0, sizeof b);
		if (c->type == P_DATA)
			codec_encode_data(b, &(struct pkt_data){ c->off, c->len, 1, 0, NULL });
		else
			codec_encode_range(b, c->off, c->len);
		struct wire_hdr h = hdr(c->type, c->flags, c->raw_len ? c->raw_len : fixed + c->paylen);
		union pkt u;
		char why[200] = "";
		int rc = codec_decode(&h, b, &dev, &u, why, sizeof why);
		if (rc != -EPROTO)
			fprintf(stderr, "    case %u (%s) was accepted\n", i, c->why);
		CHECK(rc == -EPROTO);
		CHECK_STR_HAS(why, c->why);
	}
}

TEST(malformed_other_refused)
{
	uint8_t b[64] = { 0 };
	union pkt u;
	char why[200] = "";
	struct wire_hdr h;
	struct codec_dev nocsum = dev;

#define REFUSED(type, len, want) do { h = hdr(type, 0, len); why[0] = 0; \
	CHECK(codec_decode(&h, b, &dev, &u, why, sizeof why) == -EPROTO); CHECK_STR_HAS(why, want); } while (0)
	codec_encode_bitmap(b, 1ull << 40);
	REFUSED(P_BITMAP, 16, "P_BITMAP: words 1099511627776..1099511627777: past the bitmap");
	codec_encode_bitmap(b, dev.bm_words);
	REFUSED(P_PEER_BITMAP, 16, "P_PEER_BITMAP: words");
	REFUSED(P_BITMAP, 12, "P_BITMAP: length 12: not a whole number of 8-byte words");
	REFUSED(P_BITMAP, 4, "P_BITMAP: payload 4 bytes");
	REFUSED(P_FLUSH, 4, "P_FLUSH: payload 4 bytes: expected 8");
	REFUSED(P_RECV_ACK, 8, "P_RECV_ACK: payload 8 bytes: expected 4");
	codec_encode_status(b, -5);
	REFUSED(P_WRITE_ACK, 4, "P_WRITE_ACK: status 4294967291: not 0 or an errno");
	REFUSED(P_READ_REPLY, 4, "P_READ_REPLY: status");
	codec_encode_status(b, EIO);
	REFUSED(P_READ_REPLY, 12, "P_READ_REPLY: 8 bytes of data with status 5");
	REFUSED(P_RS_CSUM_REPLY, 60, "P_RS_CSUM_REPLY: payload 60 bytes: more than 36");
	REFUSED(P_READ_REPLY, 2, "P_READ_REPLY: payload 2 bytes");
	REFUSED(P_PING, 1, "P_PING: payload 1 bytes: expected none");
	REFUSED(P_SYNC_DONE, 32, "P_SYNC_DONE: payload 32 bytes: expected 40");
	memset(b, 0, sizeof b);
	b[0] = 2;
	REFUSED(P_STATE, STATE_BYTES, "P_STATE: role 2: unknown");
	b[0] = 1, b[1] = 7;
	REFUSED(P_STATE, STATE_BYTES, "P_STATE: disk state 7: unknown");
	REFUSED(P_STATE, 24, "P_STATE: payload 24 bytes: expected 32 or 16");
	b[1] = 6, b[2] = 0x82;
	REFUSED(P_STATE, STATE_BYTES, "P_STATE: flags 0x82: unknown bits 0x82");
	codec_encode_sync_start(b, &(struct pkt_sync_start){ DEV_BYTES + 1, 0, 0 });
	REFUSED(P_SYNC_START, SYNC_START_BYTES, "P_SYNC_START: total 1073741825 bytes: more than the device");
	codec_encode_sync_start(b, &(struct pkt_sync_start){ 0, 2, 0 });
	REFUSED(P_SYNC_START, SYNC_START_BYTES, "P_SYNC_START: flags 0x2: unknown bits");
	codec_encode_sizes(b, &(struct pkt_sizes){ 0, 0, SZF_ASK | SZF_SET });
	REFUSED(P_SIZES, SIZES_BYTES, "P_SIZES: flags 0x3: unknown or contradictory bits");
	codec_encode_sizes(b, &(struct pkt_sizes){ 0, 4097, SZF_SET });
	REFUSED(P_SIZES, SIZES_BYTES, "P_SIZES: usable 0, size 4097 bytes: not multiples of 4096");
	codec_encode_sizes(b, &(struct pkt_sizes){ 4096, 8192, SZF_SET });
	REFUSED(P_SIZES, SIZES_BYTES, "P_SIZES: size 8192 bytes: zero or beyond the usable 4096");
	REFUSED(P_SIZES, 12, "P_SIZES: payload 12 bytes: expected 20");
	REFUSED(P_HELLO, 0, "unknown packet type 1");
	REFUSED(999, 0, "unknown packet type 999");
#undef REFUSED
	nocsum.csum_len = 0;
	codec_encode_range(b, 0, 4096);
	h = hdr(P_RS_CSUM, 0, RANGE_HDR + 4);
	CHECK(codec_decode(&h, b, &nocsum, &u, why, sizeof why) == -EPROTO);
	CHECK_STR_HAS(why, "P_RS_CSUM: no csums-alg");
	/* a short reason buffer is cut, never overrun */
	char tiny[8];
	h = hdr(P_PING, 0, 1);
	CHECK(codec_decode(&h, b, &dev, &u, tiny, sizeof tiny) == -EPROTO && strlen(tiny) == 7);
}

TEST(vstate)
{
	static uint8_t b[VSTATE_BYTES];
	struct pkt_vstate in = { 1, 6, 1, 3 | VSTATE_CLAIM, 0x5, 1234, 0xabcdef, { { 0 } } }, out;
	char why[200] = "";
	for (int i = 0; i < VSTATE_NODES; i++)
		in.n[i].age_ms = 100u * (unsigned)i, in.n[i].disk = (uint8_t)(i % 7), in.n[i].role = 0xff,
		in.n[i].quorum = 1, in.n[i].outdated_by = VSTATE_NONE;
	codec_encode_vstate(b, &in);
	struct wire_hdr h = hdr(P_VSTATE, 0, VSTATE_BYTES);
	CHECK(codec_decode_vstate(&h, b, &out, why, sizeof why) == 0 && !memcmp(&in, &out, sizeof in));
	h.len = VSTATE_BYTES - 8;
	CHECK(codec_decode_vstate(&h, b, &out, why, sizeof why) == -EPROTO);
	CHECK_STR_HAS(why, "P_VSTATE: payload 272 bytes: expected 280");
	h.len = VSTATE_BYTES;
	b[3] = 40;
	CHECK(codec_decode_vstate(&h, b, &out, why, sizeof why) == -EPROTO);
	CHECK_STR_HAS(why, "P_VSTATE: going-on-without node 40");
	b[3] = VSTATE_NONE, b[2] = 2;
	CHECK(codec_decode_vstate(&h, b, &out, why, sizeof why) == -EPROTO);
	CHECK_STR_HAS(why, "P_VSTATE: quorum 2");
}

/* the handshake's packets: HELLO both ways, DECISION, AUTH, REFUSE */
TEST(hello_round_trip)
{
	struct pkt_hello in = { .vmin = 1, .vmax = 1, .node_id = 3, .channel = CH_META, .protocol = 'C', .role = 1,
				.disk = HELLO_DISK_MAX, .flags = HF_AUTH | HF_UNSURE, .size = 1ULL << 30, .oos = 77,
				.uuid = { 1, 2, 3, 4 }, .gen_time = 123456789, .stamp = 9, .stamp_from = -1 };
	struct pkt_hello out;
	uint8_t b[HELLO_BYTES];
	char why[128];
	snprintf(in.res, sizeof in.res, "swarm");
	memset(in.chal, 0xab, sizeof in.chal);
	codec_encode_hello(b, &in);
	CHECK(codec_decode_hello(b, HELLO_BYTES, &out, why, sizeof why) == 0);
	CHECK(!memcmp(&in, &out, sizeof in));
}

TEST(history_round_trip_and_length)
{
	struct pkt_hello in = { 0 }, out = { 0 };
	uint8_t b[HISTORY_BYTES];
	char why[160];
	for (int i = 0; i < HELLO_UUIDS; i++)
		in.uuid[i] = 0x1111111111111111ull * (uint64_t)(i + 1);
	codec_encode_history(b, &in);
	struct wire_hdr h = { .type = P_HISTORY, .len = HISTORY_BYTES };
	CHECK(codec_decode_history(&h, b, &out, why, sizeof why) == 0);
	CHECK(out.uuid[3] == 0 && out.uuid[4] == in.uuid[4] && out.uuid[HELLO_UUIDS - 1] == in.uuid[HELLO_UUIDS - 1]);
	h.len = HISTORY_BYTES - 8;
	CHECK(codec_decode_history(&h, b, &out, why, sizeof why) != 0);
	CHECK_STR_HAS(why, "expected P_HISTORY of 48");
	h = (struct wire_hdr){ .type = P_DECISION, .len = HISTORY_BYTES };
	CHECK(codec_decode_history(&h, b, &out, why, sizeof why) != 0);
}

TEST(hello_malformed_refused)
{
	static const struct { int at; uint8_t val; const char *reason; } bad_hello[] = {
		{ HELLO_CHANNEL, CH_MAX + 1, "P_HELLO: channel 5" },
		{ HELLO_ROLE, 2, "P_HELLO: role 2" },
		{ HELLO_DISK, HELLO_DISK_MAX + 1, "P_HELLO: disk state 7" },
		{ HELLO_PROTOCOL, 'D', "P_HELLO: protocol 68" },
		{ HELLO_RES + HELLO_RES_MAX, 'x', "resource name not terminated" },
	};
	struct pkt_hello in = { .vmin = 1, .vmax = 1, .protocol = 'A', .stamp_from = -1 }, out;
	uint8_t b[HELLO_BYTES];
	char why[128];
	memset(in.res, 'r', HELLO_RES_MAX);
	for (size_t i = 0; i < ARRAY_SIZE(bad_hello); i++) {
		codec_encode_hello(b, &in);
		b[bad_hello[i].at] = bad_hello[i].val;
		why[0] = 0;
		CHECK(codec_decode_hello(b, HELLO_BYTES, &out, why, sizeof why) == -EPROTO);
		CHECK_STR_HAS(why, bad_hello[i].reason);
	}
	codec_encode_hello(b, &in);
	CHECK(codec_decode_hello(b, HELLO_BYTES, &out, why, sizeof why) == 0); /* 63 bytes + NUL: fits */
	CHECK(codec_decode_hello(b, HELLO_BYTES - 1, &out, why, sizeof why) == -EPROTO);
	CHECK_STR_HAS(why, "payload 179 bytes: expected 180");
}

TEST(handshake_small_packets)
{
	uint8_t b[8];
	uint32_t v = 0;
	char why[128], text[CODEC_REFUSE_MAX + 1];
	codec_encode_decision(b, 104);
	CHECK(codec_decode_decision(&(struct wire_hdr){ .type = P_DECISION, .len = 4 }, b, &v, why, sizeof why) == 0);
	CHECK(v == 104);
	CHECK(codec_decode_decision(&(struct wire_hdr){ .type = P_DECISION, .len = 3 }, b, &v, why, sizeof why) ==
	      -EPROTO);
	CHECK(codec_decode_decision(&(struct wire_hdr){ .type = P_READY, .len = 4 }, b, &v, why, sizeof why) == -EPROTO);
	CHECK_STR_HAS(why, "got P_READY of 4 bytes");
	CHECK(codec_decode_auth(&(struct wire_hdr){ .type = P_AUTH, .len = 32 }, why, sizeof why) == 0);
	CHECK(codec_decode_auth(&(struct wire_hdr){ .type = P_AUTH, .len = 0 }, why, sizeof why) == -EPROTO);
	CHECK(codec_decode_auth(&(struct wire_hdr){ .type = P_AUTH, .len = WIRE_MAC_MAX + 1 }, why, sizeof why) ==
	      -EPROTO);
	const uint8_t msg[] = { 'n', 'o', '\n', 0x1b, '.' };
	CHECK(codec_decode_refuse(&(struct wire_hdr){ .type = P_REFUSE, .len = sizeof msg }, msg, text, why,
				  sizeof why) == 0);
	CHECK(!strcmp(text, "no??."));
	CHECK(codec_decode_refuse(&(struct wire_hdr){ .type = P_REFUSE, .len = CODEC_REFUSE_MAX + 1 }, msg, text, why,
				  sizeof why) == -EPROTO);
}

int main(void)
{
	return unit_main("codec");
}

/* codec — every replication packet (wire.h) as a struct, with an encoder
 * that writes its big-endian header and fixed part and a decoder that checks
 * it before anything else sees it.
 *
 * A decoder accepts a packet only if its payload length matches its fixed
 * part and flags, and every offset and length it carries lies within the
 * receiving node's device (struct codec_dev): what a decoder accepts can be
 * handed to the disk as it is. Refusals return -EPROTO with a reason naming
 * the packet and the field ("P_DATA: length 0 at offset 1: empty write");
 * the receiver drops the connection with it. Decoded payloads point into
 * the caller's receive buffer (no copy, no allocation): they live as long
 * as that buffer does. No state, no locking, no output.
 *
 * Alignment: resync, checksum and verify ranges are whole 512-byte sectors
 * (resync and checksums start on a 4096-byte bitmap block); only the last
 * one may end at a device size that is not a sector multiple. Writes
 * (P_DATA) and reads (P_READ_REQ) are byte-granular, because the exports
 * take byte-granular requests (NBD minimum block size 1, the FUSE file) and
 * replicate them as they are; the disk layer handles unaligned I/O.
 */
#ifndef DIPOLE_CODEC_H
#define DIPOLE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define CODEC_SECTOR     512u
#define CODEC_BLOCK      4096u  /* bitmap block (MD_BLOCK) */
#define CODEC_STATUS_MAX 4095u  /* acknowledgement status: 0 or a positive errno */
#define CODEC_META_MAX   64u    /* largest meta-channel payload */
#define RANGE_HDR        12u    /* P_READ_REQ, P_VERIFY_REQ, P_RS_CSUM fixed part: off, len */
#define STATE_BYTES      32u    /* P_STATE; 16 from senders older than the history */
#define STATE_OLD_BYTES  16u
#define SYNC_START_BYTES 20u
#define SYNC_START_OLD_BYTES 12u
#define SYNC_DONE_BYTES  40u    /* uuid[4], gen_time */
#define CSUM_REPLY_MAX   (4u + RS_MAX_BLOCKS / 8u)

struct wire_hdr {
	uint16_t type, flags;
	uint32_t len;    /* payload bytes after the header */
	uint32_t stamp;  /* P_DATA fan-out stamp, else 0 */
	uint64_t id;
};

/* What packets are checked against: the receiving node's device. */
struct codec_dev {
	uint64_t bytes;    /* exported device size */
	uint64_t bm_words; /* 64-bit bitmap words covering it */
	unsigned csum_len; /* csums-alg digest bytes; 0: no P_RS_CSUM expected */
};

struct pkt_data {    /* P_DATA */
	uint64_t off;
	uint32_t len;    /* bytes written; the payload holds them unless DF_ZERO/DF_TRIM */
	uint64_t seq, seen;
	const uint8_t *payload; /* NULL with DF_ZERO/DF_TRIM */
};
struct pkt_rs_data { /* P_RS_DATA */
	uint64_t off;
	uint32_t len;
	const uint8_t *payload;
};
struct pkt_range {   /* P_READ_REQ, P_VERIFY_REQ */
	uint64_t off;
	uint32_t len;
};
struct pkt_rs_csum { /* P_RS_CSUM: one digest of dev->csum_len bytes per 4096-byte block */
	uint64_t off;
	uint32_t len, nblocks;
	const uint8_t *digests;
};
struct pkt_bitmap {  /* P_BITMAP, P_PEER_BITMAP */
	uint64_t first, nwords;
	const uint8_t *words; /* nwords little-endian u64: codec_bitmap_word() */
};
struct pkt_status {  /* P_RECV_ACK, P_WRITE_ACK, P_FLUSH_ACK, P_RS_ACK */
	int status;      /* 0 or a positive errno */
};
struct pkt_reply {   /* P_READ_REPLY, P_RS_CSUM_REPLY */
	int status;
	uint32_t len;    /* bytes after the status: data, digests or a bit per block */
	const uint8_t *payload;
};
struct pkt_flush { uint64_t epoch; };
struct pkt_state {
	uint8_t role, disk;     /* enum role, enum disk_state (engine.h) */
	uint8_t flags;          /* STF_* (wire.h); unknown bits are refused */
	uint32_t stamp;         /* the sender's last fan-out stamp (engine.h wstamp); 0 from older senders */
	uint64_t uuid, history[2];
	int has_history;        /* 32-byte form */
};
struct pkt_sync_start { uint64_t total; uint32_t flags; uint64_t sync_uuid; /* 0: none (12-byte form) */ };
/* P_VSTATE (vote links, layout in quorum.c): the sender's view of every
 * node id. Fields are as on the wire: 0xff means "none"/"unknown". */
#define VSTATE_NODES 32
#define VSTATE_HDR   24
#define VSTATE_BYTES (VSTATE_HDR + 8 * VSTATE_NODES)
#define VSTATE_NONE  0xffu
#define VSTATE_CLAIM 0x80u /* going_on_without: it did go on alone */
struct pkt_vstate {
	uint8_t role, disk, quorum, going_on_without;
	uint32_t seen, uptime_ms;
	uint64_t uuid;
	struct { uint32_t age_ms; uint8_t disk, role, quorum, outdated_by; } n[VSTATE_NODES];
};
struct pkt_sync_done { uint64_t uuid[4], gen_time; };
struct pkt_sizes { uint64_t usable, size; uint32_t flags; };

/* P_HELLO (layout: HELLO_* in wire.h), both ways at the start of every
 * link. The decoder checks only the form (length, channel, role, disk,
 * protocol, a terminated resource name); whether the two nodes may talk
 * (versions, names, sizes, secrets) is the handshake's decision (hs.c). */
#define HELLO_ROLE_MAX 1u   /* Primary (enum role) */
#define HELLO_DISK_MAX 6u   /* UpToDate (enum disk_state) */
#define HELLO_RES_MAX  63u  /* resource name bytes, NUL-terminated in 64 */
struct pkt_hello {
	uint32_t vmin, vmax;    /* wire versions spoken */
	uint32_t node_id;
	uint8_t channel;        /* enum channel */
	uint8_t protocol;       /* 'A' 'B' 'C', 0 on vote links */
	uint8_t role, disk;     /* enum role, enum disk_state */
	uint32_t flags;         /* HF_* */
	uint64_t size;          /* exported bytes */
	uint64_t oos;           /* out-of-sync blocks for the receiver's slot */
	uint64_t uuid[HELLO_UUIDS]; /* current, bitmap, history x2; with HF_HISTORY more
				     * history from P_HISTORY (hs.c), else 0 */
	char res[HELLO_RES_MAX + 1];
	uint8_t chal[WIRE_CHALLENGE];
	uint64_t gen_time;      /* unix ns when the current generation began */
	uint32_t stamp;         /* fan-out stamp of the last write applied from a Primary */
	int32_t stamp_from;     /* that Primary's node-id, -1 none */
};
/* Encode into b[HELLO_BYTES]; the resource name is cut at HELLO_RES_MAX. */
void codec_encode_hello(uint8_t *b, const struct pkt_hello *hl);
/* Decode a HELLO of len payload bytes: 0, or -EPROTO with why. */
int codec_decode_hello(const uint8_t *payload, uint32_t len, struct pkt_hello *out, char *why, size_t whylen);
/* P_HISTORY: hl->uuid[4..HELLO_UUIDS) into b[HISTORY_BYTES]; the decoder
 * wants exactly that length and fills hl->uuid[4..]. Any values are
 * accepted (generations are opaque). */
void codec_encode_history(uint8_t *b, const struct pkt_hello *hl);
int codec_decode_history(const struct wire_hdr *h, const uint8_t *payload, struct pkt_hello *hl, char *why,
			 size_t whylen);
/* P_DECISION: the verdict u32 of the handshake. */
void codec_encode_decision(uint8_t *b, uint32_t verdict);
int codec_decode_decision(const struct wire_hdr *h, const uint8_t *payload, uint32_t *verdict, char *why,
			  size_t whylen);
/* P_AUTH: the MAC, 1..WIRE_MAC_MAX bytes (its length is the digest's:
 * the caller compares it with what it expects). */
int codec_decode_auth(const struct wire_hdr *h, char *why, size_t whylen);
/* P_REFUSE: a reason of at most CODEC_REFUSE_MAX bytes, copied into
 * text[CODEC_REFUSE_MAX + 1] with anything unprintable replaced by '?'
 * (it ends up in logs and status). */
#define CODEC_REFUSE_MAX 511u
int codec_decode_refuse(const struct wire_hdr *h, const uint8_t *payload, char *text, char *why, size_t whylen);

/* Any decoded packet: what codec_decode() fills in, by type. */
union pkt {
	struct pkt_data data;
	struct pkt_rs_data rs_data;
	struct pkt_range range;
	struct pkt_rs_csum rs_csum;
	struct pkt_bitmap bitmap;
	struct pkt_status ack;
	struct pkt_reply reply;
	struct pkt_flush flush;
	struct pkt_state state;
	struct pkt_sync_start sync_start;
	struct pkt_sync_done sync_done;
	struct pkt_sizes sizes;
};

/* The packet's name for messages ("P_DATA"); "P_?" for an unknown type. */
const char *codec_type_name(uint16_t type);

/* Header: encode into b[WIRE_HDR]; decode checks magic and length
 * <= WIRE_MAX_PAYLOAD (-EPROTO, why set). The type is not checked here. */
void codec_encode_hdr(uint8_t *b, const struct wire_hdr *h);
int codec_decode_hdr(const uint8_t *b, struct wire_hdr *h, char *why, size_t whylen);

/* Fixed parts, big-endian, into b (DATA_HDR, RANGE_HDR, 8, STATE_BYTES,
 * SYNC_START_BYTES, SYNC_DONE_BYTES or 4 bytes). The payload is sent after
 * them as it is. P_RS_DATA and P_RS_CSUM use codec_encode_range. */
void codec_encode_data(uint8_t *b, const struct pkt_data *d);
void codec_encode_range(uint8_t *b, uint64_t off, uint32_t len);
void codec_encode_flush(uint8_t *b, uint64_t epoch);
void codec_encode_state(uint8_t *b, const struct pkt_state *s);
void codec_encode_sync_start(uint8_t *b, const struct pkt_sync_start *s);
void codec_encode_sync_done(uint8_t *b, const struct pkt_sync_done *s);
void codec_encode_status(uint8_t *b, int status);
/* P_BITMAP: the first-word field into b[8]; word i at b + 8 + 8 * i. */
void codec_encode_bitmap(uint8_t *b, uint64_t first);
void codec_encode_bitmap_word(uint8_t *b, uint64_t i, uint64_t word);
/* Word i (< nwords) of a decoded bitmap packet. */
uint64_t codec_bitmap_word(const struct pkt_bitmap *bm, uint64_t i);

/* Decoders: payload holds h->len bytes. 0, or -EPROTO with why[whylen]
 * naming the packet and field. Pointers in *out point into payload. */
int codec_decode_data(const struct wire_hdr *h, const uint8_t *payload, const struct codec_dev *dev,
		      struct pkt_data *out, char *why, size_t whylen);
int codec_decode_rs_data(const struct wire_hdr *h, const uint8_t *payload, const struct codec_dev *dev,
			 struct pkt_rs_data *out, char *why, size_t whylen);
/* P_READ_REQ (at most READ_MAX bytes) or P_VERIFY_REQ (VERIFY_MAX, sectors). */
int codec_decode_range(const struct wire_hdr *h, const uint8_t *payload, const struct codec_dev *dev,
		       struct pkt_range *out, char *why, size_t whylen);
int codec_decode_rs_csum(const struct wire_hdr *h, const uint8_t *payload, const struct codec_dev *dev,
			 struct pkt_rs_csum *out, char *why, size_t whylen);
int codec_decode_bitmap(const struct wire_hdr *h, const uint8_t *payload, const struct codec_dev *dev,
			struct pkt_bitmap *out, char *why, size_t whylen);
int codec_decode_status(const struct wire_hdr *h, const uint8_t *payload, struct pkt_status *out, char *why,
			size_t whylen);
int codec_decode_reply(const struct wire_hdr *h, const uint8_t *payload, struct pkt_reply *out, char *why,
		       size_t whylen);
int codec_decode_flush(const struct wire_hdr *h, const uint8_t *payload, struct pkt_flush *out, char *why,
		       size_t whylen);
int codec_decode_state(const struct wire_hdr *h, const uint8_t *payload, struct pkt_state *out, char *why,
		       size_t whylen);
int codec_decode_sync_start(const struct wire_hdr *h, const uint8_t *payload, const struct codec_dev *dev,
			    struct pkt_sync_start *out, char *why, size_t whylen);
/* P_SIZES: exactly SIZES_BYTES; sizes multiples of 4096, size <= usable
 * when both are given, at most one of SZF_ASK / SZF_SET, no other bits. */
void codec_encode_sizes(uint8_t *b, const struct pkt_sizes *s);
int codec_decode_sizes(const struct wire_hdr *h, const uint8_t *payload, struct pkt_sizes *out, char *why,
		       size_t whylen);
int codec_decode_sync_done(const struct wire_hdr *h, const uint8_t *payload, struct pkt_sync_done *out,
			   char *why, size_t whylen);
/* P_VSTATE: exactly VSTATE_BYTES; role, disk, quorum and going_on_without
 * in range. The encoder writes all VSTATE_BYTES. */
void codec_encode_vstate(uint8_t *b, const struct pkt_vstate *v);
int codec_decode_vstate(const struct wire_hdr *h, const uint8_t *payload, struct pkt_vstate *out, char *why,
			size_t whylen);
/* Packets without a payload (P_PING, P_BITMAP_DONE, ...): length must be 0. */
int codec_decode_empty(const struct wire_hdr *h, char *why, size_t whylen);

/* Any replication packet after the handshake, by h->type, into the matching
 * member of *out. -EPROTO for an unknown type or one not sent after it. */
int codec_decode(const struct wire_hdr *h, const uint8_t *payload, const struct codec_dev *dev, union pkt *out,
		 char *why, size_t whylen);

#endif

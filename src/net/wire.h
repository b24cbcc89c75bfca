/* wire — the replication protocol between two dipole nodes.
 *
 * Two TCP connections per peer pair: the data channel carries writes, resync
 * data and state changes in order; the meta channel carries acknowledgements
 * and pings, so they never queue behind bulk data. Every packet starts with a
 * 24-byte header, all fields big-endian:
 *
 *   0 magic u32 "DPL1"   4 type u16   6 flags u16   8 length u32 (payload)
 *  12 stamp u32        16 id u64 (request id, echoed by acknowledgements)
 *
 * stamp is 0 except on P_DATA from a node with several peers: it numbers
 * that node's writes in the one order it sends them to all its peers.
 *
 * A connection starts with P_HELLO both ways; when a shared secret is
 * configured each side then proves it knows it (P_AUTH: HMAC over the other
 * side's random challenge, its own node id and the channel) before anything
 * else is accepted. Only the node with the lower node-id dials, so exactly
 * one connection pair exists per peer pair.
 *
 * Epochs: the writes sent between two P_FLUSH packets form an epoch. The
 * peer applies the data channel in order and acknowledges P_FLUSH (which
 * names the epoch it closes) only after flushing its disk, so an
 * acknowledged epoch means every write in it and before it is on the peer's
 * stable storage. Writes completed before a FLUSH was issued belong to an
 * earlier or the closing epoch.
 *
 * codec.h encodes every packet and checks each one received (lengths,
 * sector alignment, ranges within the device) before anything acts on it;
 * a packet it refuses is a protocol error that drops the connection.
 *
 * Version history:
 *   1 (2026-11): first version. Vote links (channel CH_VOTE, P_VSTATE) were
 *     added before any release, so the version stayed 1; so was the
 *     filesystem channel (CH_FS), whose frames have their own version
 *     (fsproto.h). So was the query channel (CH_QUERY: `dipole doctor`
 *     asks a running daemon which configuration it runs and its clock,
 *     confq.h); a daemon without it refuses the HELLO's channel, which the
 *     doctor reports as "not checked".
 *   1, later: HF_FS_OWNER and the P_STATE flags byte (STF_FS_OWNER), in
 *     fields older nodes send as 0 and ignore, so the version stayed 1.
 *     So did HF_FS_MOUNTED (an owner's CH_FS HELLO: it speaks fsproto 3)
 *     and HF_FS_EPOCH (either side's CH_FS HELLO: it speaks fsproto 4).
 *     So did the P_STATE stamp, in pad bytes older nodes send as 0.
 *     So did the deep history (HF_HISTORY, P_HISTORY): sent only to a
 *     peer whose data-channel HELLO says it takes it.
 */
#ifndef DIPOLE_WIRE_H
#define DIPOLE_WIRE_H

#include <stdint.h>

#define WIRE_MAGIC        0x44504c31u /* "DPL1" */
#define WIRE_VERSION_MIN  1u
#define WIRE_VERSION_MAX  1u
#define WIRE_HDR          24u
#define WIRE_MAX_PAYLOAD  ((32u << 20) + 4096u)
#define WIRE_CHALLENGE    32u
#define WIRE_MAC_MAX      64u

enum wire_type {
	P_HELLO = 1,     /* struct below */
	P_AUTH = 2,      /* MAC bytes */
	P_AUTH_OK = 3,
	P_REFUSE = 4,    /* human-readable reason */
	P_READY = 5,     /* data channel, both ways: this side took the connection (it
			  * may still refuse by state after comparing HELLOs) */
	P_DECISION = 6,  /* data channel, both ways: verdict u32 from both HELLOs; each
			  * side acts only after seeing the peer's mirror-image verdict */
	P_DATA = 10,     /* off u64, len u32, seq u64, seen u64, then len bytes
			  * unless DF_ZERO/DF_TRIM. seq numbers this node's writes on
			  * this connection from 1; seen is the highest peer seq this
			  * node had applied when it sent the write. */
	P_RECV_ACK = 11, /* id; payload: status i32 */
	P_WRITE_ACK = 12,
	P_FLUSH = 13,    /* epoch u64: closes that epoch (see below) */
	P_FLUSH_ACK = 14,/* id; status i32: every write of the epoch is on stable storage */
	P_PING = 15,
	P_PING_ACK = 16,
	P_STATE = 17,    /* role u8, disk u8, flags u8 (STF_*), pad u8, stamp u32 (the sender's
			  * last fan-out stamp: a demoted Primary's last write), uuid current u64,
			  * history u64 x2 (the history was added later: 16-byte packets are
			  * accepted; so was flags, in a byte that was always sent 0). With several peers,
			  * a Secondary in sync with a Primary follows it into a new current
			  * generation (engine_adopt_generation) */
	P_RS_DATA = 20,  /* like P_DATA: resync block */
	P_RS_ACK = 21,
	P_SYNC_START = 22, /* total bytes u64, flags u32 (SSF_FULL), sync uuid u64: the
			    * source's generation the target's bitmap counts from (its
			    * bitmap generation for the target, else its current). Added
			    * later: 12-byte packets (sync uuid 0) are accepted */
	P_SYNC_DONE = 23,  /* the source's uuid[4] u64, gen_time u64: the target adopts them */
	P_BITMAP = 24,     /* first word u64, then 64-bit bitmap words (le): blocks to resync */
	P_BITMAP_DONE = 25,/* the source's bitmap is complete on the target */
	P_SYNC_ACK = 26,   /* target -> source on the data channel: bitmap merged, every
			    * write the target sent before this is ahead of it; send data */
	P_READ_REQ = 27,   /* off u64, len u32: read from the peer's (UpToDate) disk */
	P_READ_REPLY = 28, /* id; status i32, then len bytes when status is 0 */
	P_PEER_BITMAP = 29,      /* target -> source, like P_BITMAP: blocks the target has
				  * marked itself (activity log, split-brain changes) */
	P_PEER_BITMAP_DONE = 30, /* target -> source: merged, start the resync */
	P_RS_CSUM = 32,    /* like P_RS_DATA but off u64, len u32, then one csums-alg digest
			    * per block instead of the data (csums-alg set) */
	P_RS_CSUM_REPLY = 33, /* meta, id: status i32, then a bit per block: 1 = differs, send it */
	P_VSTATE = 34,     /* vote links only (quorum.c): this node's role, disk, quorum and
			    * its view of every node; sent every 200 ms */
	P_VERIFY_REQ = 31, /* off u64, len u32: answer with P_READ_REPLY carrying one
			    * verify-alg digest per 4 KiB block of that range */
	P_SIZES = 35,      /* data channel, `resize`: usable u64, size u64, flags u32 (SZF_*).
			    * SZF_ASK: grow your disk's metadata if it grew, answer with
			    * your usable size (flags 0; usable 0: could not). SZF_SET:
			    * the device is `size` bytes now; a growth's new area comes
			    * as a resync from the sender. Added in version 1 before any
			    * release; a peer without it drops the connection (protocol
			    * error), which `resize` reports. */
	P_CONF_QUERY = 36, /* CH_QUERY, asker -> daemon, empty: answer now */
	P_CONF_INFO = 37,  /* CH_QUERY, daemon -> asker: digest u8[32] (sha256 of the
			    * resource as `dump` prints it), wall clock u64 (unix ns) */
	P_HISTORY = 38,    /* data channel, both ways, right after the HELLOs (and AUTH)
			    * when both HELLOs carry HF_HISTORY: the sender's older
			    * history generations, HELLO_UUIDS - 4 u64 (hs.c) */
};
/* generations a HELLO stands for: current, bitmap and history 0..7 (the
 * first four in the HELLO itself, the rest in P_HISTORY) */
#define HELLO_UUIDS 10
#define HISTORY_BYTES (8u * (HELLO_UUIDS - 4))
#define CONF_INFO_BYTES 40u

/* P_STATE flags (its byte 2, always 0 before it was added: older peers send
 * none and ignore them) */
#define STF_FS_OWNER 1u   /* as HF_FS_OWNER, when it changes while connected */
#define STF_KNOWN    STF_FS_OWNER

#define SZF_ASK 1u
#define SZF_SET 2u

#define SSF_FULL 1u        /* P_SYNC_START: everything is out of sync */
#define BM_WORDS_PER_PKT 8192u
#define READ_MAX (16u << 20) /* largest P_READ_REQ */
#define VERIFY_MAX (1u << 20) /* largest P_VERIFY_REQ */
#define RS_MAX_BLOCKS 256u    /* largest P_RS_CSUM, in 4096-byte blocks */
#define WIRE_ROLE_MAX 1u      /* P_STATE role: enum role (engine.h) */
#define WIRE_DISK_MAX 6u      /* P_STATE disk: enum disk_state (engine.h) */

/* P_DATA / P_RS_DATA flags */
#define DF_FUA   1u
#define DF_ZERO  2u
#define DF_TRIM  4u

#define DATA_HDR 28u /* P_DATA fixed part: off, len, seq, seen */
#define RS_HDR   12u /* P_RS_DATA fixed part: off, len */
#define SIZES_BYTES 20u /* P_SIZES */

/* HELLO payload layout (offsets) */
#define HELLO_VMIN      0   /* u32 */
#define HELLO_VMAX      4   /* u32 */
#define HELLO_NODE_ID   8   /* u32 */
#define HELLO_CHANNEL   12  /* u8: 0 data, 1 meta, 2 vote, 3 fs, 4 query */
#define HELLO_PROTOCOL  13  /* u8: 'A' 'B' 'C' */
#define HELLO_ROLE      14  /* u8 */
#define HELLO_DISK      15  /* u8 */
#define HELLO_FLAGS     16  /* u32: HF_* */
#define HELLO_SIZE      20  /* u64: exported bytes */
#define HELLO_OOS       28  /* u64: out-of-sync blocks */
#define HELLO_UUID      36  /* u64 x 4 */
#define HELLO_RES       68  /* char[64] */
#define HELLO_CHAL      132 /* u8[32] */
#define HELLO_GEN_TIME  164 /* u64: when the current generation began (unix ns) */
#define HELLO_STAMP     172 /* u32: fan-out stamp of the last write applied from a Primary */
#define HELLO_STAMP_FROM 176 /* i32: that Primary's node-id, -1 none */
#define HELLO_BYTES     180

#define HF_TWO_PRIMARIES 1u
#define HF_AUTH          2u  /* this side requires authentication */
#define HF_CRASHED_PRIMARY 4u /* was Primary when it last went down uncleanly */
#define HF_DISCARD_MY_DATA 8u /* `connect --discard-my-data` */
#define HF_UNSURE        16u  /* several peers: this side may differ from the other by a third node's writes */
#define HF_THIRD_PRIMARY 32u  /* a third node is Primary and connected to this side */
#define HF_BUSY_TARGET   64u  /* this side is SyncTarget of a third node */
#define HF_FS_MOUNTED    512u /* on a CH_FS link, the owner's: it answers fsproto's MOUNTED
			       * (fsproto.h version 3) */
#define HF_FS_EPOCH      1024u /* on a CH_FS link, either side's: it speaks owner epochs
				* (fsproto.h version 4), so frames to it may carry one */
#define HF_FS_WRITE_ATTR 2048u /* on a CH_FS link, a client's: it takes WRITE replies with
				* the file's attributes (fsproto.h version 5); no longer
				* sent, and ignored by owners since 2026-12-03 */
#define HF_FS_PARENT_ATTR 4096u /* on a CH_FS link, a client's: it takes replies of calls that
				 * change a directory with its attributes (fsproto.h version 6) */
#define HF_FS_READDIRPLUS 8192u /* on a CH_FS link, the owner's: it answers READDIRPLUS
				 * (fsproto.h version 7) */
#define HF_FS_DIR_EMPTY  16384u /* on a CH_FS link, a client's: it takes MKDIR replies saying
				 * whether the new directory is empty (fsproto.h version 8) */
#define HF_FS_UMASK      32768u /* on a CH_FS link, the owner's: it applies the umask a MKNOD,
				 * MKDIR or CREATE carries in its mode (fsproto.h version 9) */
#define HF_FS_OWNER      256u /* this side owns the mounted dipolefs (docs/dipolefs.md): the
			       * receiver keeps off its device (Secondary, refusing `primary`) */
#define HF_HISTORY       65536u /* on a data channel: this side sends and takes P_HISTORY */
#define HF_RESUMABLE     128u /* this side is an Inconsistent SyncTarget of the receiving peer
			       * whose resync was interrupted; its HELLO bitmap UUID names the
			       * source's generation its bitmap counts from (decide.h) */

/* CH_VOTE: a vote link (quorum.h). CH_FS: a dipolefs client's link to the
 * filesystem's owner; after the handshake it speaks fsproto.h, not this
 * protocol. CH_QUERY: one question of `dipole doctor` (confq.h). */
enum channel { CH_DATA = 0, CH_META = 1, CH_VOTE = 2, CH_FS = 3, CH_QUERY = 4 };
#define CH_MAX CH_QUERY

#endif

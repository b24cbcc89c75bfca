/* nbd_proto — NBD wire constants (fixed newstyle handshake, simple replies).
 * All fields are big-endian on the wire. Source of truth: the NBD protocol
 * document (doc/proto.md in the NBD project).
 * History: 2026-11 first version (simple replies; structured replies refused).
 */
#ifndef DIPOLE_NBD_PROTO_H
#define DIPOLE_NBD_PROTO_H

#define NBD_MAGIC               0x4e42444d41474943ULL /* "NBDMAGIC" */
#define NBD_IHAVEOPT            0x49484156454F5054ULL /* "IHAVEOPT" */
#define NBD_REP_MAGIC           0x0003e889045565a9ULL
#define NBD_REQUEST_MAGIC       0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC  0x67446698u

/* handshake flags (server) / client flags */
#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES      (1u << 1)

/* options */
#define NBD_OPT_EXPORT_NAME     1
#define NBD_OPT_ABORT           2
#define NBD_OPT_LIST            3
#define NBD_OPT_STARTTLS        5
#define NBD_OPT_INFO            6
#define NBD_OPT_GO              7
#define NBD_OPT_STRUCTURED_REPLY 8

/* option replies */
#define NBD_REP_ACK             1u
#define NBD_REP_SERVER          2u
#define NBD_REP_INFO            3u
#define NBD_REP_ERR_UNSUP       (0x80000000u + 1)
#define NBD_REP_ERR_POLICY      (0x80000000u + 2)
#define NBD_REP_ERR_INVALID     (0x80000000u + 3)
#define NBD_REP_ERR_UNKNOWN     (0x80000000u + 6)
#define NBD_REP_ERR_SHUTDOWN    (0x80000000u + 7)
#define NBD_REP_ERR_TOO_BIG     (0x80000000u + 9)

/* info types */
#define NBD_INFO_EXPORT         0
#define NBD_INFO_NAME           1
#define NBD_INFO_DESCRIPTION    2
#define NBD_INFO_BLOCK_SIZE     3

/* transmission flags */
#define NBD_FLAG_HAS_FLAGS      (1u << 0)
#define NBD_FLAG_READ_ONLY      (1u << 1)
#define NBD_FLAG_SEND_FLUSH     (1u << 2)
#define NBD_FLAG_SEND_FUA       (1u << 3)
#define NBD_FLAG_SEND_TRIM      (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_CAN_MULTI_CONN (1u << 8)

/* commands */
#define NBD_CMD_READ            0
#define NBD_CMD_WRITE           1
#define NBD_CMD_DISC            2
#define NBD_CMD_FLUSH           3
#define NBD_CMD_TRIM            4
#define NBD_CMD_WRITE_ZEROES    6

/* command flags */
#define NBD_CMD_FLAG_FUA        (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE    (1u << 1)

/* errors */
#define NBD_EPERM     1
#define NBD_EIO       5
#define NBD_ENOMEM    12
#define NBD_EINVAL    22
#define NBD_ENOSPC    28
#define NBD_EOVERFLOW 75
#define NBD_ENOTSUP   95
#define NBD_ESHUTDOWN 108

#define NBD_REQ_BYTES   28
#define NBD_REPLY_BYTES 16

#endif

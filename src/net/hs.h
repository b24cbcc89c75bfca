/* hs — the connection handshake shared by every link between two nodes
 * (data and meta channels of a disk peer, vote links): HELLO both ways, then,
 * with a shared secret, mutual HMAC authentication (wire.h). The dialer
 * speaks first. No state of its own; a link fills in its part of the HELLO.
 */
#ifndef DIPOLE_HS_H
#define DIPOLE_HS_H

#include <openssl/evp.h>
#include <stdint.h>

#include "codec.h"
#include "util.h"

struct hs_conf {
	const char *res;          /* resource name, must match */
	int my_id, peer_id;       /* node ids; the peer must say it is peer_id */
	const char *peer_name;
	uint64_t size;            /* exported bytes, sent (fill may override); not compared */
	int protocol, allow_two;  /* must match (not on vote links) */
	const char *secret;       /* shared-secret when has_secret */
	int has_secret;
	const EVP_MD *md;         /* cram-hmac-alg */
	int timeout_ms;           /* send timeout once connected */
	int vote_only;            /* a vote link: only CH_VOTE; else only data/meta */
	int fs_only;              /* a filesystem link: only CH_FS (protocol, allow-two
				   * and size do not matter on it) */
	int query_only;           /* a doctor's query: only CH_QUERY (confq.h) */
	int has_wake, wake_fd;    /* has_wake: a byte readable on wake_fd cancels a
				   * wait for the peer (as hs_dial_from's) */
	void (*fill)(void *arg, struct pkt_hello *hello); /* state fields of this node's HELLO */
	void *arg;
};

/* Handshake on fd. *chp: the channel to open (dialer) or -1 (acceptor:
 * learns it from the peer's HELLO). Fills the peer's HELLO and this node's
 * as sent (both decoded by the codec). Returns 0, or <0 with reason[256]:
 * -EAGAIN when the peer says nothing for 5 s, -ECANCELED when c->wake_fd
 * (has_wake) became readable while waiting for it. */
int hs_handshake(const struct hs_conf *c, int fd, int *chp, const char *from, struct pkt_hello *peer,
		 struct pkt_hello *mine, char *reason);
/* Read one packet header: -EPROTO bad magic, -EMSGSIZE oversized payload. */
int hs_recv_hdr(int fd, struct wire_hdr *w);
/* After a P_REFUSE header: read its reason into text[CODEC_REFUSE_MAX + 1]
 * (printable). 0, -EPROTO (too long) or -errno. */
int hs_recv_refuse(int fd, const struct wire_hdr *w, char *text);
/* Send one packet (header + payload) with a blocking write. */
int hs_send(int fd, uint16_t type, uint64_t id, const void *payload, uint32_t len);
/* Connect to "IP:PORT" within 5 s (a byte on wake_fd cancels: -ECANCELED);
 * returns a blocking, tuned socket or -errno. */
int hs_dial(const char *address, int wake_fd);
/* The same from the local address `source` ("IP:PORT", the port is
 * ignored; NULL: any), so the other side sees this node's configured
 * address as the source. */
int hs_dial_from(const char *address, const char *source, int wake_fd);
/* TCP_NODELAY and keepalive on a replication socket. */
void hs_tune(int fd);
/* Tell the other side why it is refused (best effort). */
void hs_refuse(int fd, const char *why);

#endif

/* hs — see hs.h. */
#include "hs.h"
#include "codec.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>

#define RSN(...) snprintf(reason, 256, __VA_ARGS__)

int hs_recv_hdr(int fd, struct wire_hdr *w)
{
	uint8_t h[WIRE_HDR];
	char why[96];
	int rc = read_full(fd, h, WIRE_HDR);
	if (rc)
		return rc;
	if (codec_decode_hdr(h, w, why, sizeof why))
		return get_be32(h) != WIRE_MAGIC ? -EPROTO : -EMSGSIZE;
	return 0;
}

int hs_recv_refuse(int fd, const struct wire_hdr *w, char *text)
{
	uint8_t b[CODEC_REFUSE_MAX];
	char why[96];
	if (w->len > sizeof b)
		return -EPROTO;
	int rc = read_full(fd, b, w->len);
	return rc ? rc : codec_decode_refuse(w, b, text, why, sizeof why);
}

int hs_send(int fd, uint16_t type, uint64_t id, const void *payload, uint32_t len)
{
	uint8_t h[WIRE_HDR];
	codec_encode_hdr(h, &(struct wire_hdr){ .type = type, .len = len, .id = id });
	int rc = write_full(fd, h, sizeof h);
	return rc || !len ? rc : write_full(fd, payload, len);
}

void hs_tune(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
}

int hs_dial(const char *address, int wake_fd)
{
	return hs_dial_from(address, NULL, wake_fd);
}

int hs_dial_from(const char *address, const char *source, int wake_fd)
{
	struct sockaddr_storage ss, src;
	socklen_t sl, srcl;
	if (parse_sockaddr(address, &ss, &sl) || (source && parse_sockaddr(source, &src, &srcl)))
		return -EINVAL;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (source && src.ss_family == ss.ss_family) {
		/* the port is the kernel's choice; the address is what the owner checks */
		if (src.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&src)->sin6_port = 0;
		else
			((struct sockaddr_in *)&src)->sin_port = 0;
		if (bind(fd, (struct sockaddr *)&src, srcl) < 0) {
			int e = -errno;
			close(fd);
			return e;
		}
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		int e = -errno;
		close(fd);
		return e;
	}
	struct pollfd pf[2] = { { fd, POLLOUT, 0 }, { wake_fd, POLLIN, 0 } };
	int n = poll(pf, 2, 5000);
	int err = 0;
	socklen_t el = sizeof err;
	if (n <= 0 || pf[1].revents || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
		close(fd);
		return n <= 0 ? -ETIMEDOUT : pf[1].revents ? -ECANCELED : -err;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	hs_tune(fd);
	return fd;
}

static int send_hello(const struct hs_conf *c, int fd, int ch, const uint8_t *chal, struct pkt_hello *mine)
{
	uint8_t b[HELLO_BYTES];

	*mine = (struct pkt_hello){ .vmin = WIRE_VERSION_MIN, .vmax = WIRE_VERSION_MAX, .node_id = (uint32_t)c->my_id,
				    .channel = (uint8_t)ch, .protocol = (uint8_t)c->protocol, .size = c->size,
				    .flags = (c->allow_two ? HF_TWO_PRIMARIES : 0) | (c->has_secret ? HF_AUTH : 0),
				    .stamp_from = -1 };
	snprintf(mine->res, sizeof mine->res, "%s", c->res);
	memcpy(mine->chal, chal, WIRE_CHALLENGE);
	if (c->fill)
		c->fill(c->arg, mine);
	codec_encode_hello(b, mine);
	return hs_send(fd, P_HELLO, 0, b, HELLO_BYTES);
}

static unsigned mac(const struct hs_conf *c, const uint8_t *chal, int node_id, int ch, uint8_t *out)
{
	uint8_t msg[WIRE_CHALLENGE + 5];
	unsigned n = 0;
	memcpy(msg, chal, WIRE_CHALLENGE);
	put_be32(msg + WIRE_CHALLENGE, (uint32_t)node_id);
	msg[WIRE_CHALLENGE + 4] = (uint8_t)ch;
	HMAC(c->md, c->secret, (int)strlen(c->secret), msg, sizeof msg, out, &n);
	return n;
}

void hs_refuse(int fd, const char *why)
{
	/* best effort: tell the other side why, so both logs say the same */
	(void)!hs_send(fd, P_REFUSE, 0, why, (uint32_t)strlen(why));
}

/* Wait until fd has something to read (or an error to report) for the
 * socket's receive timeout (5 s during the handshake): 0, -EAGAIN when it
 * passed, -ECANCELED when c->wake_fd became readable first. */
static int await_peer(const struct hs_conf *c, int fd)
{
	if (!c->has_wake)
		return 0; /* the blocking read waits out SO_RCVTIMEO itself */
	struct pollfd pf[2] = { { fd, POLLIN, 0 }, { c->wake_fd, POLLIN, 0 } };
	int n;
	while ((n = poll(pf, 2, 5000)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -errno;
	return pf[1].revents ? -ECANCELED : n ? 0 : -EAGAIN;
}

/* The next packet header from the peer, cancellable (await_peer). */
static int recv_hdr_wake(const struct hs_conf *c, int fd, struct wire_hdr *w)
{
	int rc = await_peer(c, fd);
	return rc ? rc : hs_recv_hdr(fd, w);
}

/* Receive and decode the other side's HELLO (a REFUSE instead: its text
 * in the reason). 0 or <0 with the reason set. */
static int recv_hello(const struct hs_conf *c, int fd, const char *from, struct pkt_hello *peer, char *reason)
{
	uint8_t hb[HELLO_BYTES];
	struct wire_hdr w;
	char why[256], text[CODEC_REFUSE_MAX + 1];
	int rc = recv_hdr_wake(c, fd, &w);
	if (rc == -EPROTO || rc == -EMSGSIZE) {
		RSN("handshake with %s: not a dipole peer (bad magic or size); dropped", from);
		return rc;
	}
	if (rc) {
		RSN("handshake with %s: %s", from,
		    rc == -EAGAIN ? "timed out" : rc == -ECANCELED ? "cancelled" : strerror(-rc));
		return rc;
	}
	if (w.type == P_REFUSE && !hs_recv_refuse(fd, &w, text)) {
		RSN("refused by %s: %s", from, text);
		return -ECONNREFUSED;
	}
	if (w.type != P_HELLO || w.len != HELLO_BYTES) {
		RSN("handshake with %s: expected HELLO, got %s (%u bytes); dropped", from, codec_type_name(w.type), w.len);
		return -EPROTO;
	}
	if ((rc = read_full(fd, hb, HELLO_BYTES))) {
		RSN("handshake with %s: truncated HELLO", from);
		return rc;
	}
	if ((rc = codec_decode_hello(hb, w.len, peer, why, sizeof why))) {
		hs_refuse(fd, why);
		RSN("handshake with %s: %s; dropped", from, why);
	}
	return rc;
}

/* Why the peer's HELLO on channel ch cannot be served ("" when it can):
 * versions, resource, node-id, channel kind, then, on the block data
 * channel, what both sides must configure alike (drbd.conf(5): protocol,
 * allow-two-primaries, shared-secret). Different sizes are no refusal: the
 * two agree on the smaller one after the handshake (repl/resize.h). */
static void hello_mismatch(const struct hs_conf *c, const struct pkt_hello *peer, int ch, char *why, size_t n)
{
	why[0] = 0;
	if (peer->vmax < WIRE_VERSION_MIN || peer->vmin > WIRE_VERSION_MAX)
		snprintf(why, n, "protocol versions do not overlap: peer speaks %u-%u, this node %u-%u", peer->vmin,
			 peer->vmax, WIRE_VERSION_MIN, WIRE_VERSION_MAX);
	else if (strcmp(peer->res, c->res))
		snprintf(why, n, "resource name differs: peer has '%s', this node '%s'", peer->res, c->res);
	else if (peer->node_id != (uint32_t)c->peer_id)
		snprintf(why, n, "peer says it is node-id %u, but '%s' is node-id %d in the config", peer->node_id,
			 c->peer_name, c->peer_id);
	else if (peer->channel != ch)
		snprintf(why, n, "channel mismatch");
	else if ((ch == CH_VOTE) != !!c->vote_only)
		snprintf(why, n, "%s", c->vote_only ? "this node has a vote link with you, not a disk peer link"
						    : "this node has a disk peer link with you, not a vote link");
	else if ((ch == CH_FS) != !!c->fs_only)
		snprintf(why, n, "%s", c->fs_only ? "this node serves the filesystem on this link, not a peer link"
						  : "this node has a peer link with you, not a filesystem link "
						    "(is the filesystem mounted as owner here?)");
	else if ((ch == CH_QUERY) != !!c->query_only)
		snprintf(why, n, "%s", c->query_only ? "this node answers configuration queries on this link only"
						     : "this node has a peer link with you, not a query link");
	else if (ch == CH_VOTE || ch == CH_FS || ch == CH_QUERY)
		; /* no block data on these links: size and protocol do not matter */
	else if (peer->protocol != c->protocol)
		snprintf(why, n, "protocol differs: peer uses %c, this node %c", peer->protocol, c->protocol);
	else if (!!(peer->flags & HF_TWO_PRIMARIES) != !!c->allow_two)
		snprintf(why, n, "allow-two-primaries differs: set on %s only", c->allow_two ? "this node" : "the peer");
	else if (!!(peer->flags & HF_AUTH) != c->has_secret)
		snprintf(why, n, "%s",
			 c->has_secret ? "peer has no shared-secret but this node requires one"
				       : "peer requires a shared-secret but this node has none");
}

/* Both sides prove the shared-secret: each sends the HMAC of the other's
 * challenge, its node-id and the channel, then AUTH_OK. 0 or -EACCES (or a
 * send's error) with the reason set. */
static int authenticate(const struct hs_conf *c, int fd, int ch, const uint8_t *chal, const struct pkt_hello *peer,
			const char *from, char *reason)
{
	uint8_t m[WIRE_MAC_MAX], want[WIRE_MAC_MAX], pm[WIRE_MAC_MAX];
	struct wire_hdr w;
	char why[256], text[CODEC_REFUSE_MAX + 1];
	unsigned ml = mac(c, peer->chal, c->my_id, ch, m);
	int rc = hs_send(fd, P_AUTH, 0, m, ml);
	if (rc)
		return rc;
	if ((rc = recv_hdr_wake(c, fd, &w)) == -ECANCELED) {
		RSN("handshake with %s: cancelled", from);
		return rc;
	}
	if (rc || codec_decode_auth(&w, why, sizeof why) || w.len != ml || read_full(fd, pm, w.len)) {
		RSN("%s did not authenticate (no or malformed AUTH); refused, nothing changed", from);
		hs_refuse(fd, "authentication failed");
		return -EACCES;
	}
	mac(c, chal, c->peer_id, ch, want);
	if (CRYPTO_memcmp(pm, want, ml)) {
		RSN("%s failed authentication (wrong shared-secret?); refused, nothing changed", from);
		hs_refuse(fd, "authentication failed: shared-secret does not match");
		return -EACCES;
	}
	if ((rc = hs_send(fd, P_AUTH_OK, 0, NULL, 0)))
		return rc;
	rc = recv_hdr_wake(c, fd, &w);
	if (!rc && w.type == P_AUTH_OK && !w.len)
		return 0;
	if (rc == -ECANCELED) {
		RSN("handshake with %s: cancelled", from);
		return rc;
	}
	if (!rc && w.type == P_REFUSE && !hs_recv_refuse(fd, &w, text))
		RSN("refused by %s: %s", from, text);
	else
		RSN("%s: authentication not confirmed", from);
	return -EACCES;
}

/* Both data-channel HELLOs say HF_HISTORY: each side sends its older
 * history (P_HISTORY) and reads the peer's into peer->uuid[4..]. Without
 * it (an older peer) those stay 0: a shallower history, as before. */
static int exchange_history(const struct hs_conf *c, int fd, const struct pkt_hello *mine, struct pkt_hello *peer,
			    const char *from, char *reason)
{
	uint8_t b[HISTORY_BYTES];
	struct wire_hdr w;
	char why[256], text[CODEC_REFUSE_MAX + 1];
	codec_encode_history(b, mine);
	int rc = hs_send(fd, P_HISTORY, 0, b, sizeof b);
	if (!rc)
		rc = recv_hdr_wake(c, fd, &w);
	if (rc == -ECANCELED) {
		RSN("handshake with %s: cancelled", from);
		return rc;
	}
	if (!rc && w.type == P_REFUSE && !hs_recv_refuse(fd, &w, text)) {
		RSN("refused by %s: %s", from, text);
		return -EPROTO;
	}
	/* (the decoder refuses a wrong type or length before it reads b) */
	if (!rc && w.len != HISTORY_BYTES && codec_decode_history(&w, b, peer, why, sizeof why)) {
		RSN("handshake with %s: %s", from, why);
		return -EPROTO;
	}
	if (!rc)
		rc = read_full(fd, b, sizeof b);
	if (!rc && codec_decode_history(&w, b, peer, why, sizeof why)) {
		RSN("handshake with %s: %s", from, why);
		return -EPROTO;
	}
	if (rc)
		RSN("handshake with %s: no history of generations after HF_HISTORY: %s", from, strerror(-rc));
	return rc;
}

/* Exchange HELLO (and AUTH) on fd. Fills peer_hello. Returns 0, or <0 with
 * the reason set (and logged). `from` names the remote address. */
int hs_handshake(const struct hs_conf *c, int fd, int *chp, const char *from, struct pkt_hello *peer,
		 struct pkt_hello *mine, char *reason)
{
	int ch = *chp;
	uint8_t chal[WIRE_CHALLENGE];
	char why[256];
	int rc;

	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (getrandom(chal, sizeof chal, 0) != (ssize_t)sizeof chal)
		return -EIO;
	/* the dialer speaks first; the acceptor learns the channel from it */
	if (ch >= 0 && (rc = send_hello(c, fd, ch, chal, mine))) {
		RSN("handshake with %s: send failed: %s", from, strerror(-rc));
		return rc;
	}
	if ((rc = recv_hello(c, fd, from, peer, reason)))
		return rc;
	if (ch < 0) {
		ch = *chp = peer->channel;
		if ((rc = send_hello(c, fd, ch, chal, mine)))
			return rc;
	}
	hello_mismatch(c, peer, ch, why, sizeof why);
	if (why[0]) {
		hs_refuse(fd, why);
		RSN("%s: %s", from, why);
		return -EPROTO;
	}
	if (c->has_secret && (rc = authenticate(c, fd, ch, chal, peer, from, reason)))
		return rc;
	if (ch == CH_DATA && (mine->flags & peer->flags & HF_HISTORY) &&
	    (rc = exchange_history(c, fd, mine, peer, from, reason)))
		return rc;
	tv.tv_sec = 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	/* a send that cannot make progress for `timeout` means a dead peer:
	 * fail it rather than block a thread (and the locks it holds) forever */
	tv.tv_sec = c->timeout_ms / 1000;
	tv.tv_usec = (c->timeout_ms % 1000) * 1000;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	return 0;
}


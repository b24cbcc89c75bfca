/* hsauth — see hsauth.h. */
#include "hsauth.h"
#include "codec.h"
#include "wire.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int hs_link_conf(const struct cfg_resource *r, const struct cfg_host *me, const struct cfg_host *h,
		 struct hs_conf *hc, char *why)
{
	*hc = (struct hs_conf){ .res = r->name, .my_id = me->node_id, .peer_id = h->node_id, .peer_name = h->name };
	const char *v = cfg_conn_get(r, me->name, h->name, SECT_NET, "shared-secret");
	if (!v || !*v)
		return 0;
	const char *alg = cfg_conn_get(r, me->name, h->name, SECT_NET, "cram-hmac-alg");
	hc->md = EVP_get_digestbyname(alg ? alg : "sha256");
	if (!hc->md) {
		snprintf(why, 256, "cram-hmac-alg '%s' is not a digest this system knows", alg);
		return -EINVAL;
	}
	hc->secret = v;
	hc->has_secret = 1;
	return 0;
}

static int same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family == AF_INET && b->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6 && b->ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr,
			       16);
	return 0;
}

/* Without a secret: whether fd comes from h's configured address. */
static int from_address_of(int fd, const struct cfg_host *h)
{
	struct sockaddr_storage peer, want;
	socklen_t pl = sizeof peer;
	unsigned wl;
	return h->address && !getpeername(fd, (struct sockaddr *)&peer, &pl) &&
	       !parse_sockaddr(h->address, &want, &wl) && same_ip(&peer, &want);
}

const struct cfg_host *hs_identify(int fd, const struct cfg_resource *r, const struct cfg_host *me,
				   const char *from, struct hs_conf *hc, char *why)
{
	uint8_t b[WIRE_HDR + HELLO_CHANNEL + 1];
	_Static_assert(HELLO_CHANNEL + 1 >= HELLO_NODE_ID + 4, "the peek covers the node-id");
	ssize_t n = recv(fd, b, sizeof b, MSG_PEEK | MSG_WAITALL);
	if (n != (ssize_t)sizeof b || get_be32(b) != WIRE_MAGIC || get_be16(b + 4) != P_HELLO) {
		snprintf(why, 256, "connection from %s is not a dipole node (no HELLO)", from);
		hs_refuse(fd, why);
		return NULL;
	}
	int id = (int)get_be32(b + WIRE_HDR + HELLO_NODE_ID);
	const struct cfg_host *h = NULL;
	for (int i = 0; i < r->nhosts; i++)
		if (r->hosts[i].node_id == id && &r->hosts[i] != me)
			h = &r->hosts[i];
	if (!h) {
		snprintf(why, 256, "connection from %s names node-id %d, not another host of %s", from, id, r->name);
		hs_refuse(fd, why);
		return NULL;
	}
	if (hs_link_conf(r, me, h, hc, why)) {
		hs_refuse(fd, why);
		return NULL;
	}
	if (!hc->has_secret && !from_address_of(fd, h)) {
		snprintf(why, 256, "connection from %s claims to be %s, whose address is %s; without a "
			 "shared-secret only that address is served", from, h->name,
			 h->address ? h->address : "not configured");
		hs_refuse(fd, "without a shared-secret only the configured nodes' addresses are served");
		return NULL;
	}
	return h;
}

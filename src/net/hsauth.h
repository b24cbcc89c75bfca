/* hsauth — who an accepted connection claims to be, before the handshake
 * proves it: the acceptor's side shared by the filesystem server (CH_FS,
 * src/fs/server.c) and the doctor's query (CH_QUERY, confq.c). The peer
 * links route by node-id in listener.c and check the same way in peer.c.
 *
 * With a `shared-secret` for the pair (drbd.conf(5) net section, per
 * connection) the handshake's HMAC proves the node; without one the source
 * address must be the claimed host's configured `address` — anyone who can
 * send from it can still impersonate that node (`mount` warns). */
#ifndef DIPOLE_HSAUTH_H
#define DIPOLE_HSAUTH_H

#include "config.h"
#include "hs.h"

/* The handshake settings of the link between me and h: res, ids, name and
 * the pair's shared-secret and cram-hmac-alg if it has one (the caller adds
 * its channel rule and timeout). 0, or -EINVAL with why[256] (an unknown
 * cram-hmac-alg). */
int hs_link_conf(const struct cfg_resource *r, const struct cfg_host *me, const struct cfg_host *h,
		 struct hs_conf *hc, char *why);

/* Peek (not consume) the HELLO on fd, accepted from `from`: the other host
 * of r it names, with *hc set by hs_link_conf; without a shared-secret the
 * connection's source address must be that host's. Else NULL, why[256]
 * set and the asker told (P_REFUSE). Waits up to fd's receive timeout. */
const struct cfg_host *hs_identify(int fd, const struct cfg_resource *r, const struct cfg_host *me,
				   const char *from, struct hs_conf *hc, char *why);

#endif

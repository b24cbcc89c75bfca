/* listener — the one replication port of a node (its `address`), shared by
 * every connection of a resource: data/meta channels of the disk peer and the
 * vote links of diskless nodes.
 *
 * The dialer speaks first (wire.h), so the listener peeks at the HELLO of
 * each accepted connection, reads the sender's node-id and hands the socket
 * to the route registered for that node-id. A connection it cannot place
 * goes to the default route (which handshakes and refuses it with a reason
 * in its status), or is closed with a log line.
 *
 * A connection whose HELLO names a channel with a channel route (CH_FS:
 * a dipolefs client asking the owner) goes to that route whatever its
 * node-id: the channel's server handshakes and checks the node itself.
 * Without a channel route such a connection takes the node-id route as
 * before (whose handshake refuses a channel it does not serve).
 *
 * Threads: one accept thread; route callbacks run on it and own the fd.
 * Node-id routes are registered before listener_start and never change
 * after. Channel routes come and go while it runs (a filesystem mounted
 * as owner, unmounted): `lock` guards them, and is held while their
 * callback runs, so after listener_route_channel(.., NULL, ..) returns no
 * callback of the old route runs any more.
 */
#ifndef DIPOLE_LISTENER_H
#define DIPOLE_LISTENER_H

struct listener;

/* fd: the accepted socket (now owned by the callee); from: "ip:port" */
typedef void (*listener_fn)(void *arg, int fd, const char *from);

/* Bind `address` ("IP:PORT"). err[256] names the address and host on failure. */
int listener_open(struct listener **out, const char *address, const char *host, char *err);
/* Connections from node_id go to fn(arg); node_id -1 sets the default route. */
void listener_route(struct listener *l, int node_id, listener_fn fn, void *arg);
/* Connections on `channel` (enum channel) go to fn(arg), before the
 * node-id routes; fn NULL removes the route (waits for a running call). */
void listener_route_channel(struct listener *l, int channel, listener_fn fn, void *arg);
int listener_start(struct listener *l);
/* Stop accepting and join the thread; NULL is fine. */
void listener_close(struct listener *l);

#endif

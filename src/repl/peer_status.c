/* peer_status — status and events text for one peer.
 * Part of the peer module: see peer.h and peer_int.h. */
#include "peer_int.h"
#include "decide.h"
#include "handler.h"
#include "hs.h"
#include "listener.h"
#include "log.h"
#include "wire.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static double sync_percent(struct peer *p)
{
	int r = atomic_load(&p->repl);
	uint64_t tot = atomic_load(&p->sync_total), done = atomic_load(&p->sync_done);
	if (r == RS_SYNC_SOURCE || r == RS_SYNC_TARGET)
		return tot ? 100.0 * (double)(done > tot ? tot : done) / (double)tot : 0.0;
	if (r == RS_ESTABLISHED && atomic_load(&p->e->dstate) == DS_UPTODATE && atomic_load(&p->peer_disk) == DS_UPTODATE)
		return 100.0;
	uint64_t oos = engine_oos(p->e, p->slot) * MD_BLOCK;
	return p->e->size ? 100.0 - 100.0 * (double)(oos > p->e->size ? p->e->size : oos) / (double)p->e->size : 0;
}

static uint64_t oos_bytes(struct peer *p)
{
	if (atomic_load(&p->repl) == RS_SYNC_TARGET) {
		uint64_t tot = atomic_load(&p->sync_total), done = atomic_load(&p->sync_done);
		return done > tot ? 0 : tot - done;
	}
	uint64_t oos = engine_oos(p->e, p->slot) * MD_BLOCK;
	return oos > p->e->size ? p->e->size : oos;
}

static const char *peer_role_name(struct peer *p)
{
	int r = atomic_load(&p->peer_role);
	return connected(p) && r >= 0 ? role_name((enum role)r) : "Unknown";
}

static const char *peer_disk_name(struct peer *p)
{
	int d = peer_disk_now(p);
	return connected(p) && d >= 0 ? disk_state_name((enum disk_state)d) : "DUnknown";
}

void peer_status_json(struct peer *p, struct strbuf *sb)
{
	char reason[256];
	pthread_mutex_lock(&p->lock);
	snprintf(reason, sizeof reason, "%s", p->reason);
	pthread_mutex_unlock(&p->lock);
	uint64_t el = (now_ns() - atomic_load(&p->sync_start_ns)) / 1000000;
	int r = atomic_load(&p->repl);
	uint64_t done = atomic_load(&p->sync_done);
	double speed = (r == RS_SYNC_SOURCE || r == RS_SYNC_TARGET) && el ? (double)done / 1048576.0 / ((double)el / 1000.0) : 0;
	strbuf_printf(sb, "{\"name\":");
	strbuf_json_str(sb, p->ph->name);
	strbuf_printf(sb, ",\"node_id\":%d,\"address\":", p->ph->node_id);
	strbuf_json_str(sb, p->ph->address);
	strbuf_printf(sb, ",\"connection\":\"%s\",\"role\":\"%s\",\"disk\":\"%s\",\"replication\":\"%s\","
		  "\"protocol\":\"%c\",\"out_of_sync_bytes\":%llu,\"sync_done_percent\":%.1f,"
		  "\"sync_speed_mib_s\":%.1f,\"sync_eta_s\":%.0f,\"write_conflicts\":%llu,"
		  "\"epoch\":%llu,\"epoch_stable\":%llu,\"peer_epoch_stable\":%llu,\"split_brains\":%llu,"
		  "\"csum_skipped_bytes\":%llu,\"fencing_in_progress\":%s,\"fenced\":%llu,"
		  "\"bitmap_slot\":%d,\"unsure\":%s,\"resync_deferred\":%s,\"generation\":\"%016llx\",\"reason\":",
		  conn_state_name((enum conn_state)atomic_load(&p->cstate)), peer_role_name(p), peer_disk_name(p),
		  repl_state_name((enum repl_state)r), p->protocol, (unsigned long long)oos_bytes(p), sync_percent(p),
		  speed, speed > 0 ? (double)oos_bytes(p) / 1048576.0 / speed : 0.0,
		  (unsigned long long)atomic_load(&p->conflicts), (unsigned long long)atomic_load(&p->epoch),
		  (unsigned long long)atomic_load(&p->epoch_acked), (unsigned long long)atomic_load(&p->rx_epoch),
		  (unsigned long long)atomic_load(&p->split_brains), (unsigned long long)atomic_load(&p->csum_skipped),
		  atomic_load(&p->fencing_now) ? "true" : "false", (unsigned long long)atomic_load(&p->fenced), p->slot,
		  engine_unsure(p->e, p->slot) ? "true" : "false", p->deferred && connected(p) ? "true" : "false",
		  (unsigned long long)(connected(p) ? atomic_load(&p->peer_uuid) : 0));
	strbuf_json_str(sb, reason);
	strbuf_printf(sb, "}");
}

void peer_status_text(struct peer *p, struct strbuf *sb)
{
	char a[32];
	strbuf_printf(sb, "  %s connection:%s role:%s\n", p->ph->name, conn_state_name((enum conn_state)atomic_load(&p->cstate)),
		  peer_role_name(p));
	int r = atomic_load(&p->repl);
	strbuf_printf(sb, "    peer-disk:%s replication:%s protocol:%c out-of-sync:%s", peer_disk_name(p),
		  repl_state_name((enum repl_state)r), p->protocol, fmt_size(oos_bytes(p), a, sizeof a));
	if (r == RS_SYNC_SOURCE || r == RS_SYNC_TARGET) {
		uint64_t el = (now_ns() - atomic_load(&p->sync_start_ns)) / 1000000;
		double speed = el ? (double)atomic_load(&p->sync_done) / 1048576.0 / ((double)el / 1000.0) : 0;
		strbuf_printf(sb, " done:%.1f%% speed:%.1f MiB/s eta:%.0fs", sync_percent(p), speed,
			  speed > 0 ? (double)oos_bytes(p) / 1048576.0 / speed : 0.0);
	}
	if (atomic_load(&p->deferred) && connected(p))
		strbuf_printf(sb, " resync:deferred");
	if (engine_unsure(p->e, p->slot))
		strbuf_printf(sb, " unsure");
	strbuf_printf(sb, "\n");
	pthread_mutex_lock(&p->lock);
	if (p->reason[0])
		strbuf_printf(sb, "    last problem: %s\n", p->reason);
	pthread_mutex_unlock(&p->lock);
}

void peer_state_line(struct peer *p, struct strbuf *sb)
{
	strbuf_printf(sb, " peer:%s connection:%s peer-role:%s peer-disk:%s replication:%s%s", p->ph->name,
		  conn_state_name((enum conn_state)atomic_load(&p->cstate)), peer_role_name(p), peer_disk_name(p),
		  repl_state_name((enum repl_state)atomic_load(&p->repl)), atomic_load(&p->fencing_now) ? " fencing:running" : "");
}

void peer_metrics(struct peer *p, struct peer_metrics *v)
{
	int c = connected(p);
	int r = atomic_load(&p->peer_role), d = atomic_load(&p->peer_disk);
	*v = (struct peer_metrics){ .name = p->ph->name, .node_id = p->ph->node_id,
				 .cstate = atomic_load(&p->cstate), .repl = atomic_load(&p->repl),
				 .role = c && r >= 0 ? r : -1, .disk = c && d >= 0 ? d : -1,
				 .oos_bytes = oos_bytes(p), .sync_done_percent = sync_percent(p),
				 .split_brains = atomic_load(&p->split_brains) };
}

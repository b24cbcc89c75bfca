/* status — what `dipole status` and `events` print about a running
 * resource. See daemon_int.h. */
#include "daemon_int.h"
#include "al.h"

#include <stdio.h>
#include <unistd.h>

void status_json(struct daemon *d, struct strbuf *sb)
{
	struct engine *e = d->e;
	strbuf_printf(sb, "{\"name\":");
	strbuf_json_str(sb, d->r->name);
	strbuf_printf(sb, ",\"node\":");
	strbuf_json_str(sb, d->h->name);
	strbuf_printf(sb, ",\"role\":\"%s\",\"disk\":\"%s\",\"size_bytes\":%llu,\"peers\":[",
		  role_name((enum role)atomic_load(&e->role)), disk_state_name((enum disk_state)atomic_load(&e->dstate)),
		  (unsigned long long)e->size);
	for (int i = 0; i < d->npeers; i++) {
		if (i)
			strbuf_printf(sb, ",");
		peer_status_json(d->peers[i], sb);
	}
	if (d->quorum)
		quorum_peers_json(d->quorum, sb, d->npeers > 0);
	strbuf_printf(sb, "],");
	if (d->quorum) {
		quorum_status_json(d->quorum, sb);
		strbuf_printf(sb, ",");
	}
	strbuf_printf(sb, "\"stats\":{\"sent_bytes\":%llu,\"received_bytes\":%llu,\"written_bytes\":%llu,"
		  "\"read_bytes\":%llu,\"io_errors\":%llu},",
		  (unsigned long long)atomic_load(&e->st.sent_bytes), (unsigned long long)atomic_load(&e->st.received_bytes),
		  (unsigned long long)atomic_load(&e->st.written_bytes), (unsigned long long)atomic_load(&e->st.read_bytes),
		  (unsigned long long)atomic_load(&e->st.io_errors));
	startup_json(d, sb);
	char dr[160], sr[256], why[sizeof e->disk_why];
	pthread_mutex_lock(&e->lock);
	uint64_t gc = e->sb.uuid[UUID_CURRENT], gb = e->sb.uuid[UUID_BITMAP];
	snprintf(dr, sizeof dr, "%s", e->detach_reason);
	snprintf(sr, sizeof sr, "%s", e->suspend_reason);
	snprintf(why, sizeof why, "%s", e->disk_why);
	pthread_mutex_unlock(&e->lock);
	strbuf_printf(sb, "\"disk_reason\":");
	strbuf_json_str(sb, dr);
	strbuf_printf(sb, ",\"disk_state_reason\":");
	strbuf_json_str(sb, why);
	strbuf_printf(sb, ",\"io_suspended\":%s,\"suspend_reason\":", engine_is_suspended(e) ? "true" : "false");
	strbuf_json_str(sb, sr);
	strbuf_printf(sb, ",\"generation\":{\"current\":\"%016llx\",\"bitmap\":\"%016llx\"},"
		  "\"activity_log\":{\"active_extents\":%u,\"updates\":%llu,\"marked_at_attach\":%llu},",
		  (unsigned long long)gc, (unsigned long long)gb, al_active(e->al), (unsigned long long)al_updates(e->al), (unsigned long long)e->al_marked);
	strbuf_printf(sb, "\"exports\":{\"nbd\":");
	if (d->nbd)
		strbuf_json_str(sb, d->nbd_path);
	else
		strbuf_printf(sb, "null");
	strbuf_printf(sb, ",\"nbd_tcp\":");
	if (d->nbd_tcp)
		strbuf_json_str(sb, d->nbd_tcp);
	else
		strbuf_printf(sb, "null");
	uint64_t ring_reads, ring_redone;
	nbd_server_ring_counts(d->nbd, &ring_reads, &ring_redone);
	strbuf_printf(sb, ",\"nbd_clients\":%d,\"nbd_ring_reads\":%llu,\"nbd_ring_redone\":%llu,\"loop\":",
		      nbd_server_clients(d->nbd), (unsigned long long)ring_reads, (unsigned long long)ring_redone);
	if (d->loop_dev[0])
		strbuf_json_str(sb, d->loop_dev);
	else
		strbuf_printf(sb, "null");
	strbuf_printf(sb, ",\"device\":");
	if (d->device[0])
		strbuf_json_str(sb, d->device);
	else
		strbuf_printf(sb, "null");
	strbuf_printf(sb, "},");
	fsmount_status_json(d, sb);
	strbuf_printf(sb, ",\"pid\":%d}\n", (int)getpid());
}

void status_text(struct daemon *d, struct strbuf *sb)
{
	struct engine *e = d->e;
	char a[32], b[32], c[32], f[32];

	strbuf_printf(sb, "%s node:%s role:%s\n", d->r->name, d->h->name, role_name((enum role)atomic_load(&e->role)));
	strbuf_printf(sb, "  disk:%s size:%s\n", disk_state_name((enum disk_state)atomic_load(&e->dstate)),
		  fmt_size(e->size, a, sizeof a));
	pthread_mutex_lock(&e->lock);
	int ds = atomic_load(&e->dstate);
	/* a disk short of UpToDate says why, the cue to what brings it back */
	if ((ds == DS_OUTDATED || ds == DS_INCONSISTENT || ds == DS_CONSISTENT) && e->disk_why[0])
		strbuf_printf(sb, "  disk %s: %s\n", disk_state_name((enum disk_state)ds), e->disk_why);
	if (e->detach_reason[0])
		strbuf_printf(sb, "  disk detached: %s\n", e->detach_reason);
	if (atomic_load(&e->suspended))
		strbuf_printf(sb, "  I/O SUSPENDED: %s\n", e->suspend_reason);
	pthread_mutex_unlock(&e->lock);
	startup_text(d, sb);
	for (int i = 0; i < d->npeers; i++)
		peer_status_text(d->peers[i], sb);
	if (d->quorum)
		quorum_status_text(d->quorum, sb);
	strbuf_printf(sb, "  exports: nbd:%s", d->nbd ? d->nbd_path : "none (tiebreaker)");
	if (d->nbd_tcp)
		strbuf_printf(sb, " nbd-tcp:%s", d->nbd_tcp);
	strbuf_printf(sb, " (%d client%s)", nbd_server_clients(d->nbd), nbd_server_clients(d->nbd) == 1 ? "" : "s");
	if (d->loop_dev[0])
		strbuf_printf(sb, " loop:%s", d->loop_dev);
	if (d->device[0])
		strbuf_printf(sb, " device:%s", d->device);
	strbuf_printf(sb, "\n");
	fsmount_status_text(d, sb);
	strbuf_printf(sb, "  stats: sent:%s received:%s written:%s read:%s io-errors:%llu\n",
		  fmt_size(atomic_load(&e->st.sent_bytes), a, sizeof a),
		  fmt_size(atomic_load(&e->st.received_bytes), b, sizeof b),
		  fmt_size(atomic_load(&e->st.written_bytes), c, sizeof c),
		  fmt_size(atomic_load(&e->st.read_bytes), f, sizeof f),
		  (unsigned long long)atomic_load(&e->st.io_errors));
}

void status_state_line(struct daemon *d, struct strbuf *sb)
{
	strbuf_printf(sb, "role:%s disk:%s", role_name((enum role)atomic_load(&d->e->role)),
		  disk_state_name((enum disk_state)atomic_load(&d->e->dstate)));
	if (engine_is_suspended(d->e)) {
		char why[256];
		pthread_mutex_lock(&d->e->lock);
		snprintf(why, sizeof why, "%s", d->e->suspend_reason);
		pthread_mutex_unlock(&d->e->lock);
		strbuf_printf(sb, " io:suspended reason:\"%s\"", why);
	}
	for (int i = 0; i < d->npeers; i++)
		peer_state_line(d->peers[i], sb);
	if (d->quorum)
		quorum_state_line(d->quorum, sb);
	startup_state_line(d, sb);
	strbuf_printf(sb, "\n");
}

void status_short_line(struct daemon *d, struct strbuf *sb)
{
	struct engine *e = d->e;

	if (d->h->diskless)
		strbuf_printf(sb, "tiebreaker (votes only)");
	else
		strbuf_printf(sb, "%s, disk %s", role_name((enum role)atomic_load(&e->role)),
			      disk_state_name((enum disk_state)atomic_load(&e->dstate)));
	if (engine_is_suspended(e))
		strbuf_printf(sb, ", I/O suspended");
	for (int i = 0; i < d->npeers; i++) {
		struct replica_view v;
		peer_view(d->peers[i], &v);
		if (!v.connected)
			strbuf_printf(sb, "; %s not connected", peer_name(d->peers[i]));
		else
			strbuf_printf(sb, "; %s %s, disk %s%s", peer_name(d->peers[i]),
				      v.role >= 0 ? role_name((enum role)v.role) : "Unknown",
				      v.disk >= 0 ? disk_state_name((enum disk_state)v.disk) : "DUnknown",
				      v.established ? "" : ", resync");
	}
	if (d->quorum && quorum_enabled(d->quorum))
		strbuf_printf(sb, "; quorum %s", quorum_have(d->quorum) ? "yes" : "lost");
	if (d->fs && d->fs_dir[0])
		strbuf_printf(sb, "; fs at %s (%s)", d->fs_dir, d->fs_role == FSR_OWNER ? "owner" : "client");
	else if (d->fs)
		strbuf_printf(sb, "; fs served (owner, not mounted here)");
	pthread_mutex_lock(&d->su.lock);
	if (d->su.phase != SU_DONE)
		strbuf_printf(sb, "; startup: waiting");
	pthread_mutex_unlock(&d->su.lock);
}

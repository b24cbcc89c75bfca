/* cmd_md — create-md and dump-md. */
#include "cli.h"
#include "disk.h"
#include "meta.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int parse_args(const char *cmd, int argc, char **argv, const char **res, int *force, long *max_peers)
{
	*res = NULL;
	for (int i = 1; i < argc; i++) {
		if (force && !strcmp(argv[i], "--force"))
			*force = 1;
		else if (max_peers && !strcmp(argv[i], "--max-peers")) {
			if (i + 1 >= argc || parse_int(argv[i + 1], 1, MD_MAX_PEERS, max_peers)) {
				fprintf(stderr, "dipole %s: --max-peers needs a number from 1 to %d%s%s%s\n", cmd,
					MD_MAX_PEERS, i + 1 < argc ? " (got '" : "", i + 1 < argc ? argv[i + 1] : "",
					i + 1 < argc ? "')" : "");
				return EXIT_USAGE;
			}
			i++;
		} else if (argv[i][0] == '-' || *res) {
			return cli_unexpected(cmd, argv[i]);
		} else
			*res = argv[i];
	}
	if (!*res) {
		fprintf(stderr, "dipole %s: missing resource name\n  usage: dipole %s RES%s\n", cmd, cmd,
			force ? " [--force] [--max-peers N]" : "");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static int open_disk(const struct cfg_host *h, int rdonly, struct disk **d)
{
	if (h->diskless) {
		fprintf(stderr, "dipole: node '%s' is diskless (disk none;, %s:%d): it keeps no metadata; "
				"create-md and dump-md are for the nodes with a disk\n",
			h->name, h->disk_loc.file ? h->disk_loc.file : h->loc.file,
			h->disk_loc.file ? h->disk_loc.line : h->loc.line);
		return EXIT_USAGE;
	}
	int rc = disk_open(d, h->disk, rdonly);
	if (rc) {
		fprintf(stderr, "dipole: cannot open backing disk %s: %s%s\n", h->disk, strerror(-rc),
			rc == -ENOENT ? "\n  hint: create it (e.g. lvcreate, or truncate -s SIZE FILE) or fix 'disk'" :
			rc == -EINVAL || rc == -EISDIR ? "\n  hint: the disk must be a regular file or a block device" : "");
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int cmd_create_md(struct cli *cli, int argc, char **argv)
{
	const struct cfg_resource *r;
	const struct cfg_host *h;
	const char *name;
	struct disk *d;
	struct md_super sb;
	struct md_layout l;
	char err[MD_MSG_MAX], warn[MD_MSG_MAX], a[32], b[32];
	int force = 0, rc;
	long max_peers = 0;

	if ((rc = parse_args("create-md", argc, argv, &name, &force, &max_peers)) || (rc = cli_load(cli, 1)) ||
	    (rc = cli_resolve(cli, name, &r, &h)))
		return rc;
	/* a bitmap slot per other disk host, bound to its node-id now */
	int ids[MD_MAX_PEERS], n = 0;
	for (int i = 0; i < r->nhosts; i++)
		if (&r->hosts[i] != h && !r->hosts[i].diskless && n < MD_MAX_PEERS)
			ids[n++] = r->hosts[i].node_id;
	if (max_peers && max_peers < n) {
		fprintf(stderr, "dipole create-md: --max-peers %ld is less than the %d other disk hosts of '%s'\n",
			max_peers, n, r->name);
		return EXIT_USAGE;
	}
	uint32_t nslots = (uint32_t)(max_peers ? max_peers : n ? n : 1);
	for (int i = n; i < (int)nslots; i++)
		ids[i] = -1;
	if ((rc = open_disk(h, 0, &d)))
		return rc;
	if (md_layout(d->size, nslots, &l)) {
		fprintf(stderr, "dipole: backing disk %s is too small (%s): metadata alone needs %s and at least "
				"1 MiB must remain for data\n", h->disk, fmt_size(d->size, a, sizeof a),
			fmt_size(2 * MD_SB_BYTES + MD_AL_BYTES + MD_BLOCK, b, sizeof b));
		disk_close(d);
		return EXIT_FAIL;
	}
	rc = md_read(d, &sb, err, warn);
	if (!force) {
		const char *sig;
		if (rc == 0 || rc == -EBADMSG) {
			fprintf(stderr, "dipole: %s already holds dipole metadata%s%s%s\n"
					"  hint: 'dipole create-md %s --force' overwrites it; the data generations "
					"and bitmap are lost\n", h->disk, rc ? " (damaged: " : "", rc ? err : "",
				rc ? ")" : "", name);
			disk_close(d);
			return EXIT_STATE;
		}
		if ((sig = md_probe_signature(d))) {
			fprintf(stderr, "dipole: %s looks like it holds %s; refusing to write metadata over it\n"
					"  hint: the last %s of the disk would be overwritten; if that is intended, "
					"use 'dipole create-md %s --force'\n", h->disk, sig,
				fmt_size(l.disk_size - l.data_size, a, sizeof a), name);
			disk_close(d);
			return EXIT_STATE;
		}
	}
	rc = md_create(d, h->node_id, r->name, nslots, ids, &sb);
	if (rc) {
		fprintf(stderr, "dipole: writing metadata to %s failed: %s\n", h->disk, strerror(-rc));
		disk_close(d);
		return EXIT_FAIL;
	}
	printf("dipole: wrote metadata for '%s' node '%s' (node-id %d) to %s\n"
	       "  usable size %s (%llu bytes), metadata %s, %u peer slot%s; disk state Inconsistent\n",
	       r->name, h->name, h->node_id, h->disk, fmt_size(sb.lay.data_size, a, sizeof a),
	       (unsigned long long)sb.lay.data_size, fmt_size(sb.lay.disk_size - sb.lay.data_size, b, sizeof b), nslots,
	       nslots == 1 ? "" : "s");
	disk_close(d);
	return EXIT_OK;
}

int cmd_dump_md(struct cli *cli, int argc, char **argv)
{
	const struct cfg_resource *r;
	const struct cfg_host *h;
	const char *name;
	struct disk *d;
	struct md_super sb;
	char err[MD_MSG_MAX], warn[MD_MSG_MAX], a[32];
	uint8_t *bm;
	int rc;

	if ((rc = parse_args("dump-md", argc, argv, &name, NULL, NULL)) || (rc = cli_load(cli, 0)) ||
	    (rc = cli_resolve(cli, name, &r, &h)))
		return rc;
	if ((rc = open_disk(h, 1, &d)))
		return rc;
	rc = md_read(d, &sb, err, warn);
	if (rc == -ENOENT) {
		fprintf(stderr, "dipole: no dipole metadata on %s\n  hint: dipole create-md %s\n", h->disk, name);
		disk_close(d);
		return EXIT_FAIL;
	}
	if (rc) {
		fprintf(stderr, "dipole: %s: %s\n", h->disk, rc == -EBADMSG ? err : strerror(-rc));
		disk_close(d);
		return EXIT_FAIL;
	}
	if (warn[0])
		fprintf(stderr, "dipole: warning: %s\n", warn);
	bm = xcalloc(1, sb.lay.bm_slot_bytes);
	uint64_t bits[MD_MAX_PEERS] = { 0 }, nblocks = (sb.lay.data_size + MD_BLOCK - 1) / MD_BLOCK;
	rc = 0;
	for (uint32_t s = 0; !rc && s < sb.lay.nslots; s++) {
		rc = md_read_bitmap(d, &sb, s, bm);
		for (uint64_t i = 0; !rc && i < nblocks; i++)
			bits[s] += (bm[i / 8] >> (i % 8)) & 1;
	}
	free(bm);
	time_t ct = (time_t)sb.created;
	char tbuf[64];
	strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%SZ", gmtime(&ct));
	printf("# dipole metadata on %s\n", h->disk);
	printf("version %d;\nresource %s;\nnode-id %d;\ncreated %s;\nsequence %llu; # slot %d\n", MD_VERSION,
	       sb.resource, sb.node_id, tbuf, (unsigned long long)sb.seq, sb.slot);
	printf("disk-size %llu; # %s\n", (unsigned long long)sb.lay.disk_size, fmt_size(sb.lay.disk_size, a, sizeof a));
	printf("data-size %llu; # %s usable\n", (unsigned long long)sb.lay.data_size,
	       fmt_size(sb.lay.data_size, a, sizeof a));
	/* the backing disk may be larger than disk-size: grown, not resized yet */
	printf("backing-size %llu; # %s%s\n", (unsigned long long)d->size, fmt_size(d->size, a, sizeof a),
	       d->size / MD_BLOCK * MD_BLOCK > sb.lay.disk_size ? ", grown: 'dipole resize' uses it" : "");
	printf("la-size %llu; # %s, the last agreed device size%s\n", (unsigned long long)sb.la_size,
	       fmt_size(sb.la_size, a, sizeof a), sb.la_size ? "" : " (never agreed)");
	printf("al-offset %llu; al-bytes %llu;\n", (unsigned long long)sb.lay.al_offset,
	       (unsigned long long)sb.lay.al_bytes);
	printf("bm-offset %llu; bm-bytes %llu;\n", (unsigned long long)sb.lay.bm_offset,
	       (unsigned long long)sb.lay.bm_bytes);
	printf("uuid current %016llX; history %016llX %016llX", (unsigned long long)sb.uuid[UUID_CURRENT],
	       (unsigned long long)sb.uuid[UUID_HISTORY0], (unsigned long long)sb.uuid[UUID_HISTORY1]);
	for (int i = UUID_HISTORY1 + 1; i < UUID_COUNT && sb.uuid[i]; i++)
		printf(" %016llX", (unsigned long long)sb.uuid[i]);
	printf(";\n");
	printf("flags 0x%x;%s%s%s%s%s%s%s\n", sb.flags, sb.flags & MDF_CONSISTENT ? " consistent" : "",
	       sb.flags & MDF_WAS_UP_TO_DATE ? " was-up-to-date" : "", sb.flags & MDF_PRIMARY_IND ? " primary" : "",
	       sb.flags & MDF_CRASHED ? " attached-or-crashed" : "", sb.flags & MDF_FULL_SYNC ? " full-sync" : "",
	       sb.flags & MDF_CONNECTED_IND ? " connected" : "", sb.flags & MDF_PEER_OUTDATED ? " peer-outdated" : "");
	printf("disk-state %s;\n", (sb.flags & MDF_CONSISTENT) ? ((sb.flags & MDF_WAS_UP_TO_DATE) ? "UpToDate" : "Consistent")
							       : "Inconsistent");
	printf("bitmap blocks %llu; peer-slots %u;\n", (unsigned long long)nblocks, sb.lay.nslots);
	for (uint32_t s = 0; s < sb.lay.nslots; s++) {
		char who[32];
		if (sb.peer[s].node_id >= 0)
			snprintf(who, sizeof who, "node-id %d", sb.peer[s].node_id);
		else
			snprintf(who, sizeof who, "unbound");
		printf("peer-slot %u { %s; bitmap-uuid %016llX; out-of-sync %llu; # %s%s\n}\n", s, who,
		       (unsigned long long)sb.peer[s].bitmap_uuid, (unsigned long long)bits[s],
		       fmt_size(bits[s] * MD_BLOCK, a, sizeof a), sb.peer[s].flags & MDP_UNSURE ? ", unsure" : "");
	}
	disk_close(d);
	return rc ? EXIT_FAIL : EXIT_OK;
}

int cmd_dump(struct cli *cli, int argc, char **argv)
{
	const char *name = NULL;
	const struct cfg_resource *r;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-' || name)
			return cli_unexpected("dump", argv[i]);
		name = argv[i];
	}
	if ((rc = cli_load(cli, 1)))
		return rc;
	if (name && (rc = cli_resolve(cli, name, &r, NULL)))
		return rc;
	for (int i = 0; i < cli->cfg->nres; i++) {
		char err[CFG_ERR_MAX];
		if ((!name || !strcmp(name, cli->cfg->res[i].name)) && cfg_check_handlers(&cli->cfg->res[i], err)) {
			fprintf(stderr, "dipole: %s\n", err);
			return EXIT_USAGE;
		}
	}
	char *s = cfg_dump(cli->cfg, name);
	fputs(s, stdout);
	free(s);
	return EXIT_OK;
}

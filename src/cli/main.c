/* main — `dipole` entry point: global options and the subcommand table. */
#include "cli.h"
#include "log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef DIPOLE_VERSION
#define DIPOLE_VERSION "0.1.0"
#endif

static const struct cli_cmd cmds[] = {
	{ "create-md", cmd_create_md, "create-md RES [--force] [--max-peers N]",
	  "Write fresh metadata at the end of this node's backing disk, with a bitmap\n"
	  "slot per other disk host (--max-peers N reserves up to 7). Refuses to\n"
	  "overwrite existing dipole metadata or a disk that holds a filesystem or\n"
	  "partition table unless --force is given." },
	{ "dump-md", cmd_dump_md, "dump-md RES",
	  "Print this node's metadata: layout, flags, generation UUIDs, bitmap summary." },
	{ "dump", cmd_dump, "dump [RES]",
	  "Print the parsed, normalized configuration (options inherited from\n"
	  "common are shown in each resource)." },
	{ "up", cmd_up, "up RES [--foreground] [--device PATH|none] [--nbd-tcp IP:PORT] [--metrics-listen IP:PORT]",
	  "Attach the disk and export it: NBD on RUN_DIR/RES.nbd (and TCP if\n"
	  "configured with nbd-address or --nbd-tcp), and a loop device behind a\n"
	  "FUSE file, linked from the config's device path (or --device PATH).\n"
	  "Returns 0 once every export serves; the daemon runs in the background\n"
	  "unless --foreground (systemd's dipole@RES.service: with NOTIFY_SOCKET\n"
	  "set it sends READY=1 then, and its state as STATUS=). The node starts\n"
	  "as Secondary (read-only).\n"
	  "--metrics-listen IP:PORT (or metrics-address in the on section) serves\n"
	  "Prometheus metrics at http://IP:PORT/metrics (docs/metrics.md)." },
	{ "down", cmd_down, "down RES [--force]",
	  "Stop the daemon: finish in-flight requests, flush, detach the loop\n"
	  "device, unmount FUSE, mark metadata clean, remove runtime files.\n"
	  "Refused (exit 3) while the device is mounted or held open, unless\n"
	  "--force. Also cleans leftovers of a killed daemon." },
	{ "primary", cmd_primary, "primary RES [--force]",
	  "Make this node Primary (writable). --force declares an Inconsistent\n"
	  "disk UpToDate: this node's data becomes the good copy." },
	{ "secondary", cmd_secondary, "secondary RES",
	  "Make this node Secondary (read-only). Refused while the device is in use." },
	{ "connect", cmd_connect, "connect RES [--discard-my-data]",
	  "Connect to the peer again after 'disconnect', or after a refusal by\n"
	  "state (split brain, unrelated data, two Primaries) left it StandAlone.\n"
	  "--discard-my-data: this node is the split-brain victim; its changes\n"
	  "since the split are overwritten by the peer's data." },
	{ "disconnect", cmd_disconnect, "disconnect RES",
	  "Drop the connection to the peer and stay StandAlone; writes are tracked\n"
	  "in the bitmap and resynced after 'connect'." },
	{ "invalidate", cmd_invalidate, "invalidate RES",
	  "Throw away this node's data: it becomes Inconsistent and gets a full\n"
	  "resync from the connected UpToDate peer. Refused (exit 3) without one." },
	{ "resize", cmd_resize, "resize RES",
	  "Grow the device after every node's backing disk grew (lvextend): each\n"
	  "node moves its metadata to the new end, the device takes the smallest\n"
	  "usable size (or disk { size }), and only the new area is resynced.\n"
	  "Refused (exit 3), with nothing changed, unless every peer is connected\n"
	  "and UpToDate with no resync running, or when it would shrink." },
	{ "resume-io", cmd_resume_io, "resume-io RES",
	  "Let suspended I/O continue (after fencing failed, or on the dual-primary\n"
	  "node that froze when it lost its peer) without the peer: this node's\n"
	  "writes may then conflict with the peer's (split brain). Exit 3 if not\n"
	  "suspended." },
	{ "verify", cmd_verify, "verify RES",
	  "Online verify: compare every block with the peer's (net { verify-alg },\n"
	  "default crc32c), mark differing blocks out of sync and report how many.\n"
	  "Runs while the device is in use; waits, showing progress. The marked\n"
	  "blocks are resynced at the next connect (disconnect + connect)." },
	{ "wait-connect", cmd_wait_connect, "wait-connect RES [--timeout S]",
	  "Wait until the daemon's startup wait for the peer is over (what a boot\n"
	  "service runs after 'up', as DRBD's wait-connect): the peer connected\n"
	  "(exit 0), or startup's wfc-timeout / degr-wfc-timeout /\n"
	  "outdated-wfc-timeout passed or the peer refused (exit 1, saying why).\n"
	  "--timeout S gives up after S seconds (exit 1). Progress on stderr." },
	{ "mkfs", cmd_mkfs, "mkfs RES [--type ext4|xfs] [--force]",
	  "Make the filesystem dipolefs serves (ext4 by default, or XFS) on the\n"
	  "resource's device, on the Primary (exit 3 elsewhere), with Debian's\n"
	  "mkfs.ext4 / mkfs.xfs, whose output is shown. Refuses (exit 3, nothing\n"
	  "written) while the filesystem is mounted, or when the device already\n"
	  "holds a filesystem or partition table (blkid -p) unless --force." },
	{ "mount", cmd_mount, "mount RES DIR [-o OPTIONS]",
	  "Mount the resource's filesystem (dipolefs) at DIR on this node,\n"
	  "read-write: as its owner on the Primary (a node with UpToDate data\n"
	  "becomes Primary first when no node is), else as a client of the\n"
	  "Primary; a client stays Secondary and 'primary' is refused there.\n"
	  "OPTIONS (comma-separated): config=FILE, node=NAME, run-dir=DIR (the\n"
	  "global options), noatime, relatime, nosuid, nodev, noexec,\n"
	  "cache=SECONDS (how long the kernel may cache names and attributes,\n"
	  "3600 by default; 0: no caching), grace=SECONDS (how long the owner\n"
	  "keeps a lost client's open files and locks, 0 to 3600, 90 by\n"
	  "default), io-timeout=SECONDS (an owner cut off that long fails its\n"
	  "calls with EIO, 30 by default; 0: never); rw, defaults, _netdev,\n"
	  "nofail, auto, noauto, user, nouser, users, owner, group, comment=\n"
	  "and x-* are ignored; ro is refused. Also as\n"
	  "'mount -t dipole RES DIR' (mount.dipole)." },
	{ "fs", cmd_fs, "fs move RES NODE",
	  "Hand the filesystem over to NODE (planned, on the owner): NODE must be\n"
	  "a connected disk node with UpToDate data that has it mounted. Calls\n"
	  "on every node pause, none fails: this node drains, flushes, unmounts\n"
	  "and becomes Secondary, NODE promotes, mounts and serves." },
	{ "umount", cmd_umount, "umount DIR",
	  "Unmount the dipolefs mount at DIR (plain umount(8) works too; the\n"
	  "daemon then releases the filesystem within a second)." },
	{ "doctor", cmd_doctor, "doctor [RES] [--json]",
	  "Check before 'up' what breaks a setup, and say how to fix it: the\n"
	  "configuration parses; this host's name has an 'on' section; its\n"
	  "addresses are local and their ports free (or this resource's own);\n"
	  "the backing disk exists, fits the metadata, is not mounted or in use;\n"
	  "/dev/fuse and a loop device are there; two nodes without tiebreaker or\n"
	  "fencing risk split brain; peers' running daemons have the same\n"
	  "configuration (a digest) and close clocks ('not checked' when down).\n"
	  "Each finding: error, warning or info, with a fix. --json: one object.\n"
	  "Exit 0: no errors (warnings allowed); 1: errors found; 2: usage, the\n"
	  "configuration does not parse, or no such resource (docs/doctor.md)." },
	{ "status", cmd_status, "status [RES] [--json]",
	  "Show role, disk state, peers, exports and counters of running\n"
	  "resources; --json prints one JSON object per resource and line." },
	{ "events", cmd_events, "events [RES] [--once]",
	  "Print one line per state change until interrupted." },
	{ NULL, NULL, NULL, NULL }
};

const struct cli_cmd *cli_find(const char *name)
{
	for (const struct cli_cmd *c = cmds; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dipole [-c|--config FILE] [--node NAME] [--run-dir DIR] COMMAND [RES] [options]\n"
		"\n"
		"Replicated block storage in userspace. Reads DRBD resource files.\n"
		"\n"
		"  -c, --config FILE  configuration (default /etc/dipole/dipole.conf,\n"
		"                     else /etc/drbd.d/*.res)\n"
		"      --node NAME    which 'on NAME' section is this node (default: hostname)\n"
		"      --run-dir DIR  runtime files: sockets, pid, log (default /run/dipole)\n"
		"  -h, --help         this help; 'dipole COMMAND --help' for a command\n"
		"  -V, --version      print the version\n"
		"\ncommands:\n");
	for (const struct cli_cmd *c = cmds; c->name; c++)
		fprintf(f, "  %s\n", c->usage);
	fprintf(f, "\nexit codes: 0 ok, 1 operation failed, 2 usage or configuration error,\n"
		   "3 refused by the current state\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "node", required_argument, NULL, 'n' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct cli cli = { .run_dir = "/run/dipole" };
	int o;

	/* mount(8) runs us as /sbin/mount.dipole for `mount -t dipole` */
	const char *base = strrchr(argv[0], '/');
	if (!strcmp(base ? base + 1 : argv[0], "mount.dipole"))
		return mount_helper_main(argc, argv);
	/* systemd runs us as a generator (installed in system-generators/) */
	if (!strcmp(base ? base + 1 : argv[0], "dipole-fstab-generator"))
		return fstab_generator_main(argc, argv);

	/* stop at the first non-option: the subcommand owns the rest; our
	 * own messages (getopt's would name the program by its full path) */
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+:c:hV", opts, NULL)) != -1) {
		switch (o) {
		case 'c': cli.config_path = optarg; break;
		case 'n': cli.node = optarg; break;
		case 'r': cli.run_dir = optarg; break;
		case 'h': usage(stdout); return EXIT_OK;
		case 'V': printf("dipole %s\n", DIPOLE_VERSION); return EXIT_OK;
		case ':':
			fprintf(stderr, "dipole: option '%s' needs a value; try 'dipole --help'\n", argv[optind - 1]);
			return EXIT_USAGE;
		default:
			if (optopt)
				fprintf(stderr, "dipole: unknown option '-%c'; try 'dipole --help'\n", optopt);
			else
				fprintf(stderr, "dipole: unknown option '%s'; try 'dipole --help'\n", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const struct cli_cmd *c = cli_find(argv[optind]);
	if (!c) {
		fprintf(stderr, "dipole: unknown command '%s'; try 'dipole --help'\n", argv[optind]);
		return EXIT_USAGE;
	}
	argc -= optind;
	argv += optind;
	if (cli_want_help(c, argc, argv))
		return EXIT_OK;
	int rc = c->fn(&cli, argc, argv);
	cfg_free(cli.cfg);
	return rc;
}

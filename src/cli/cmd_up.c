/* cmd_up — `dipole up RES`: parse the arguments, load and resolve the
 * configuration, then hand over to the daemon (src/daemon/daemon.h). */
#include "cli.h"
#include "daemon.h"

#include <stdio.h>
#include <string.h>

int cmd_up(struct cli *cli, int argc, char **argv)
{
	struct daemon_args a = { .run_dir = cli->run_dir };
	const char *name = NULL;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--foreground"))
			a.foreground = 1;
		else if (!strcmp(argv[i], "--device") && i + 1 < argc)
			a.device = argv[++i];
		else if (!strcmp(argv[i], "--nbd-tcp") && i + 1 < argc)
			a.nbd_tcp = argv[++i];
		else if (!strcmp(argv[i], "--metrics-listen") && i + 1 < argc)
			a.metrics_listen = argv[++i];
		else if (!strcmp(argv[i], "--device") || !strcmp(argv[i], "--nbd-tcp") ||
			 !strcmp(argv[i], "--metrics-listen"))
			return cli_option_error("up", argv[i], "a value", NULL); /* given last */
		else if (argv[i][0] == '-' || name)
			return cli_unexpected("up", argv[i]);
		else
			name = argv[i];
	}
	if (!name) {
		fprintf(stderr, "dipole up: missing resource name\n  usage: dipole %s\n", cli_find("up")->usage);
		return EXIT_USAGE;
	}
	if ((rc = cli_load(cli, 1)) || (rc = cli_resolve(cli, name, &a.r, &a.h)))
		return rc;
	return daemon_up(&a);
}

/* fsbench — filesystem workloads for comparing dipolefs (owner and client),
 * the kernel filesystem mounted directly on the dipole loop device, and
 * GlusterFS. Runs each workload in a fresh subdirectory of DIR and prints
 * one "metric value" line per result (bench/run parses them):
 *
 *   create_fsync_per_s   small files: open(O_CREAT|O_EXCL), write 4 KiB,
 *                        fsync, close, one after another, files per second
 *   create_empty_us      mean time of open(O_CREAT|O_EXCL) + close of an
 *                        empty file, while filling a directory of FILES files
 *   stat_warm_us         `ls -l` of that directory, per entry: readdir and
 *                        fstatat of every name, right after creating them
 *   stat_cold_us         the same after dropping the page, dentry and inode
 *                        caches (--drop-caches; machine-wide, root only)
 *   fsync4k_p50_us, fsync4k_p99_us
 *                        pwrite 4 KiB at a random aligned offset of a 16 MiB
 *                        file, then fsync, one at a time
 *   seqwrite_mib_s       1 MiB write()s of a SEQ MiB file, then fsync (the
 *                        fsync is inside the time)
 *   seqread_mib_s        1 MiB read()s of that file after its pages were
 *                        dropped (fadvise DONTNEED, and --drop-caches)
 *   sqlite_tx_per_s      one INSERT of a 100-byte row per transaction
 *                        (autocommit), rollback journal, synchronous=FULL:
 *                        SQLite's defaults
 *
 * usage: fsbench DIR [--seconds S] [--files N] [--seq-mib M] [--drop-caches]
 *                    [--only create,stat,fsync,seq,sqlite]
 *        fsbench rtt-server IP PORT     echo 64-byte messages of one client
 *        fsbench rtt IP PORT COUNT      TCP ping-pong: rtt_p50_us, rtt_mean_us
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double seconds = 5;
static int nfiles = 10000;
static long seq_mib = 512;
static int drop = 0;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "fsbench: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(errno));
	exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* writes all of buf or dies */
static void write_all(int fd, const void *buf, size_t n, const char *what)
{
	while (n) {
		ssize_t r = write(fd, buf, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("write", what);
		buf = (const char *)buf + r;
		n -= (size_t)r;
	}
}

/* sync, then drop clean pages, dentries and inodes everywhere: the next
 * access reads from the device (through the whole stack) */
static void drop_caches(void)
{
	if (!drop)
		return;
	sync();
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0)
		die("open", "/proc/sys/vm/drop_caches");
	write_all(fd, "3", 1, "/proc/sys/vm/drop_caches");
	close(fd);
}

static int subdir(int dfd, const char *name)
{
	if (mkdirat(dfd, name, 0755) < 0)
		die("mkdir", name);
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		die("open", name);
	return fd;
}

static void bench_create(int dfd)
{
	int sd = subdir(dfd, "small");
	char buf[4096], name[32];
	memset(buf, 'c', sizeof buf);
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9);
	long n = 0;
	while (now_ns() < end) {
		snprintf(name, sizeof name, "f%06ld", n);
		int fd = openat(sd, name, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			die("create", name);
		write_all(fd, buf, sizeof buf, name);
		if (fsync(fd) < 0)
			die("fsync", name);
		close(fd);
		n++;
	}
	printf("create_fsync_per_s %.1f\n", (double)n * 1e9 / (double)(now_ns() - t0));
	fflush(stdout);
	close(sd);
}

/* ls -l: every entry read and stat'ed; returns microseconds per entry */
static double ls_l(int sd, int expect)
{
	uint64_t t0 = now_ns();
	int fd = openat(sd, ".", O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		die("open", "many");
	DIR *d = fdopendir(fd);
	if (!d)
		die("fdopendir", "many");
	struct dirent *de;
	struct stat st;
	int n = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(sd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			die("stat", de->d_name);
		n++;
	}
	closedir(d);
	if (n != expect) {
		fprintf(stderr, "fsbench: listed %d entries, created %d\n", n, expect);
		exit(1);
	}
	return (double)(now_ns() - t0) / 1e3 / n;
}

static void bench_stat(int dfd)
{
	int sd = subdir(dfd, "many");
	char name[32];
	uint64_t t0 = now_ns();
	for (int i = 0; i < nfiles; i++) {
		snprintf(name, sizeof name, "entry-%06d", i);
		int fd = openat(sd, name, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			die("create", name);
		close(fd);
	}
	printf("create_empty_us %.1f\n", (double)(now_ns() - t0) / 1e3 / nfiles);
	printf("stat_warm_us %.2f\n", ls_l(sd, nfiles));
	fflush(stdout);
	if (drop) {
		drop_caches();
		printf("stat_cold_us %.2f\n", ls_l(sd, nfiles));
		fflush(stdout);
	}
	close(sd);
}

static void bench_fsync(int dfd)
{
	enum { FILE_SIZE = 16 << 20 };
	int fd = openat(dfd, "sync.dat", O_RDWR | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		die("create", "sync.dat");
	static char big[1 << 20];
	memset(big, 'z', sizeof big);
	for (int i = 0; i < FILE_SIZE / (1 << 20); i++)
		write_all(fd, big, sizeof big, "sync.dat");
	if (fsync(fd) < 0)
		die("fsync", "sync.dat");
	size_t cap = 1 << 20, n = 0;
	uint64_t *lat = malloc(cap * sizeof *lat);
	char buf[4096];
	memset(buf, 'w', sizeof buf);
	uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
	unsigned seed = 42;
	while (n < cap && now_ns() < end) {
		off_t off = (off_t)(rand_r(&seed) % (FILE_SIZE / 4096)) * 4096;
		uint64_t t = now_ns();
		if (pwrite(fd, buf, sizeof buf, off) != (ssize_t)sizeof buf)
			die("pwrite", "sync.dat");
		if (fsync(fd) < 0)
			die("fsync", "sync.dat");
		lat[n++] = now_ns() - t;
	}
	close(fd);
	qsort(lat, n, sizeof *lat, cmp_u64);
	printf("fsync4k_p50_us %.1f\nfsync4k_p99_us %.1f\n", (double)lat[n / 2] / 1e3, (double)lat[n * 99 / 100] / 1e3);
	fflush(stdout);
	free(lat);
	unlinkat(dfd, "sync.dat", 0);
}

static void bench_seq(int dfd)
{
	char *buf = malloc(1 << 20);
	memset(buf, 's', 1 << 20);
	int fd = openat(dfd, "seq.dat", O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		die("create", "seq.dat");
	uint64_t t0 = now_ns();
	for (long i = 0; i < seq_mib; i++)
		write_all(fd, buf, 1 << 20, "seq.dat");
	if (fsync(fd) < 0)
		die("fsync", "seq.dat");
	printf("seqwrite_mib_s %.1f\n", (double)seq_mib * 1e9 / (double)(now_ns() - t0));
	fflush(stdout);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	drop_caches();
	fd = openat(dfd, "seq.dat", O_RDONLY);
	if (fd < 0)
		die("open", "seq.dat");
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	t0 = now_ns();
	long got = 0;
	for (;;) {
		ssize_t r = read(fd, buf, 1 << 20);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("read", "seq.dat");
		if (r == 0)
			break;
		got += r;
	}
	if (got != seq_mib << 20) {
		fprintf(stderr, "fsbench: read %ld bytes of seq.dat, wrote %ld\n", got, seq_mib << 20);
		exit(1);
	}
	printf("seqread_mib_s %.1f\n", (double)seq_mib * 1e9 / (double)(now_ns() - t0));
	fflush(stdout);
	close(fd);
	free(buf);
	unlinkat(dfd, "seq.dat", 0);
}

static void sql_die(sqlite3 *db, const char *what)
{
	fprintf(stderr, "fsbench: sqlite %s: %s\n", what, sqlite3_errmsg(db));
	exit(1);
}

static void bench_sqlite(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/bench.db", dir);
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		sql_die(db, "open");
	/* SQLite's defaults, said out loud: rollback journal, full sync */
	if (sqlite3_exec(db, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;"
			 "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);", NULL, NULL, NULL) != SQLITE_OK)
		sql_die(db, "create");
	sqlite3_stmt *ins;
	if (sqlite3_prepare_v2(db, "INSERT INTO t(v) VALUES(?)", -1, &ins, NULL) != SQLITE_OK)
		sql_die(db, "prepare");
	char row[100];
	memset(row, 'q', sizeof row);
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9);
	long n = 0;
	while (now_ns() < end) {
		sqlite3_bind_blob(ins, 1, row, sizeof row, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE)
			sql_die(db, "insert");
		sqlite3_reset(ins);
		n++;
	}
	printf("sqlite_tx_per_s %.1f\n", (double)n * 1e9 / (double)(now_ns() - t0));
	fflush(stdout);
	sqlite3_finalize(ins);
	sqlite3_close(db);
}

static int tcp_socket(const char *ip, int port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, ip, &sa->sin_addr) != 1) {
		fprintf(stderr, "fsbench: bad IPv4 address %s\n", ip);
		exit(2);
	}
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		die("socket", NULL);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	return s;
}

static void read_all(int fd, char *buf, size_t n)
{
	while (n) {
		ssize_t r = read(fd, buf, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("read", "socket");
		if (r == 0)
			exit(0); /* peer closed */
		buf += r;
		n -= (size_t)r;
	}
}

static _Noreturn void rtt_server(const char *ip, int port)
{
	struct sockaddr_in sa;
	int s = tcp_socket(ip, port, &sa);
	if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 1) < 0)
		die("bind/listen", ip);
	int c = accept(s, NULL, NULL);
	if (c < 0)
		die("accept", NULL);
	int one = 1;
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	char buf[64];
	for (;;) {
		read_all(c, buf, sizeof buf);
		write_all(c, buf, sizeof buf, "socket");
	}
}

static int rtt_client(const char *ip, int port, int count)
{
	struct sockaddr_in sa;
	int s = -1;
	for (int tries = 0; tries < 50; tries++) { /* the server may still be starting */
		s = tcp_socket(ip, port, &sa);
		if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0)
			break;
		close(s);
		s = -1;
		usleep(100000);
	}
	if (s < 0)
		die("connect", ip);
	int one = 1;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	char buf[64] = "ping";
	uint64_t *lat = malloc((size_t)count * sizeof *lat), sum = 0;
	for (int i = -count / 10; i < count; i++) { /* the first tenth warms up */
		uint64_t t = now_ns();
		write_all(s, buf, sizeof buf, "socket");
		read_all(s, buf, sizeof buf);
		if (i >= 0) {
			lat[i] = now_ns() - t;
			sum += lat[i];
		}
	}
	qsort(lat, (size_t)count, sizeof *lat, cmp_u64);
	printf("rtt_p50_us %.1f\nrtt_mean_us %.1f\n", (double)lat[count / 2] / 1e3, (double)sum / count / 1e3);
	close(s);
	free(lat);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: fsbench DIR [--seconds S] [--files N] [--seq-mib M] [--drop-caches]\n"
			"                   [--only create,stat,fsync,seq,sqlite]\n"
			"       fsbench rtt-server IP PORT\n"
			"       fsbench rtt IP PORT COUNT\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "rtt-server"))
		rtt_server(argv[2], atoi(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "rtt"))
		return rtt_client(argv[2], atoi(argv[3]), atoi(argv[4]) > 0 ? atoi(argv[4]) : 1000);
	if (argc < 2 || argv[1][0] == '-')
		usage();
	const char *only = "create,stat,fsync,seq,sqlite";
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--drop-caches"))
			drop = 1;
		else if (i + 1 >= argc)
			usage();
		else if (!strcmp(argv[i], "--seconds"))
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--files"))
			nfiles = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--seq-mib"))
			seq_mib = atol(argv[++i]);
		else if (!strcmp(argv[i], "--only"))
			only = argv[++i];
		else
			usage();
	}
	if (seconds <= 0 || nfiles <= 0 || seq_mib <= 0)
		usage();
	/* a fresh directory per run, so runs never see each other's files */
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/fsbench.%d", argv[1], (int)getpid());
	if (mkdir(dir, 0755) < 0)
		die("mkdir", dir);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd < 0)
		die("open", dir);
	if (strstr(only, "create"))
		bench_create(dfd);
	if (strstr(only, "stat"))
		bench_stat(dfd);
	if (strstr(only, "fsync"))
		bench_fsync(dfd);
	if (strstr(only, "seq"))
		bench_seq(dfd);
	if (strstr(only, "sqlite"))
		bench_sqlite(dir);
	close(dfd);
	return 0;
}

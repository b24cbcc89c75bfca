/* synclat — latency of synchronous 4 KiB random writes (write, then flush,
 * one at a time), the pattern of a database commit, against either a file or
 * block device (pwrite + fdatasync) or an NBD unix socket (NBD_CMD_WRITE +
 * NBD_CMD_FLUSH). fio's nbd engine cannot combine fdatasync with NBD, hence
 * this tool. Prints: ops, IOPS, p50 and p99 latency in microseconds.
 *
 * usage: synclat file PATH SIZE SECONDS [direct]
 *        synclat nbd SOCKET EXPORT SECONDS [fua|write]
 * With "fua" the NBD client sends each write with NBD_CMD_FLAG_FUA instead of
 * a separate flush (one round trip, as qemu and the kernel client do); with
 * "write" it sends plain writes and no flush (replication latency alone).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *m)
{
	perror(m);
	exit(1);
}

static void rd(int fd, void *b, size_t n)
{
	while (n) {
		ssize_t r = read(fd, b, n);
		if (r <= 0)
			die("read");
		b = (char *)b + r;
		n -= (size_t)r;
	}
}

static void wr(int fd, const void *b, size_t n)
{
	while (n) {
		ssize_t r = write(fd, b, n);
		if (r <= 0)
			die("write");
		b = (const char *)b + r;
		n -= (size_t)r;
	}
}

static void be64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i)); }
static void be32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (24 - 8 * i)); }
static void be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static uint64_t gbe64(const uint8_t *p) { uint64_t v = 0; for (int i = 0; i < 8; i++) v = (v << 8) | p[i]; return v; }
static uint32_t gbe32(const uint8_t *p) { uint32_t v = 0; for (int i = 0; i < 4; i++) v = (v << 8) | p[i]; return v; }

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* returns export size */
static uint64_t nbd_open(int fd, const char *name)
{
	uint8_t b[64], h[20];
	size_t nl = strlen(name);
	uint64_t size = 0;

	rd(fd, b, 18);
	be32(b, 3);
	wr(fd, b, 4);
	be64(b, 0x49484156454F5054ull);
	be32(b + 8, 7);
	be32(b + 12, (uint32_t)(4 + nl + 2));
	wr(fd, b, 16);
	be32(b, (uint32_t)nl);
	wr(fd, b, 4);
	wr(fd, name, nl);
	be16(b, 0);
	wr(fd, b, 2);
	for (;;) {
		rd(fd, h, 20);
		uint32_t type = gbe32(h + 12), len = gbe32(h + 16);
		uint8_t d[1024];
		if (len > sizeof d)
			die("reply too long");
		rd(fd, d, len);
		if (type == 3 && len >= 12 && d[0] == 0 && d[1] == 0)
			size = gbe64(d + 2);
		if (type == 1)
			return size;
		if (type & 0x80000000u) {
			fprintf(stderr, "NBD_OPT_GO refused (%x)\n", type);
			exit(1);
		}
	}
}

static void nbd_cmd(int fd, uint16_t type, uint16_t flags, uint64_t off, uint32_t len, const void *data)
{
	uint8_t r[28], rep[16];
	be32(r, 0x25609513);
	be16(r + 4, flags);
	be16(r + 6, type);
	be64(r + 8, 1);
	be64(r + 16, off);
	be32(r + 24, len);
	wr(fd, r, 28);
	if (data)
		wr(fd, data, len);
	rd(fd, rep, 16);
	if (gbe32(rep + 4)) {
		fprintf(stderr, "NBD error %u\n", gbe32(rep + 4));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	int nbd, fd;
	uint64_t size, secs, end, n = 0, cap = 1 << 20;
	uint64_t *lat = malloc(cap * sizeof *lat);
	void *buf;

	if (argc < 5)
		return fprintf(stderr, "usage: synclat file PATH SIZE SECONDS [direct] | nbd SOCKET EXPORT SECONDS\n"), 2;
	nbd = !strcmp(argv[1], "nbd");
	int fua = nbd && argc > 5 && !strcmp(argv[5], "fua");
	int plain = nbd && argc > 5 && !strcmp(argv[5], "write");
	if (posix_memalign(&buf, 4096, 4096))
		die("memalign");
	memset(buf, 0x5a, 4096);
	if (nbd) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		snprintf(a.sun_path, sizeof a.sun_path, "%s", argv[2]);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
			die("connect");
		size = nbd_open(fd, argv[3]);
	} else {
		fd = open(argv[2], O_RDWR | (argc > 5 && !strcmp(argv[5], "direct") ? O_DIRECT : 0));
		if (fd < 0)
			die("open");
		size = strtoull(argv[3], NULL, 0);
	}
	secs = strtoull(argv[4], NULL, 0);
	srandom(42);
	uint64_t blocks = size / 4096;
	end = now_ns() + secs * 1000000000ull;
	while (now_ns() < end && n < cap) {
		uint64_t off = ((uint64_t)random() % blocks) * 4096, t0 = now_ns();
		if (nbd && (fua || plain)) {
			nbd_cmd(fd, 1, fua ? 1 : 0, off, 4096, buf);
		} else if (nbd) {
			nbd_cmd(fd, 1, 0, off, 4096, buf);
			nbd_cmd(fd, 3, 0, 0, 0, NULL);
		} else {
			if (pwrite(fd, buf, 4096, (off_t)off) != 4096)
				die("pwrite");
			if (fdatasync(fd) < 0)
				die("fdatasync");
		}
		lat[n++] = now_ns() - t0;
	}
	if (nbd) {
		uint8_t r[28] = { 0 };
		be32(r, 0x25609513);
		be16(r + 6, 2);
		wr(fd, r, 28);
	}
	qsort(lat, n, sizeof *lat, cmp);
	printf("%llu %.0f %.1f %.1f\n", (unsigned long long)n, (double)n / (double)secs, lat[n / 2] / 1000.0,
	       lat[n * 99 / 100] / 1000.0);
	free(lat);
	free(buf);
	close(fd);
	return 0;
}

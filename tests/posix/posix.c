/*
 * posix-suite — a table-driven POSIX conformance suite that runs against any
 * directory.
 *
 *   posix-suite DIR [--other-uid UID] [--second DIR2] [--only CALL]
 *
 * dipolefs must behave like a local kernel filesystem on every node. What "a
 * kernel filesystem does" is defined by running this same program on ext4
 * and tmpfs (tests/integ/posix_local.sh); the dipolefs tests then run it
 * unchanged through the owner's and a client's mount, so one command line
 * per role is the whole wiring.
 *
 * Every case runs in its own fresh directory DIR/posix-suite.PID/NNN and
 * reaches it only through a directory fd (every call is an *at() call), so
 * a case cannot disturb the next one, and a child that drops to --other-uid
 * needs no search permission on DIR's ancestors (mktemp makes them 0700).
 *
 * --second DIR2 names the same filesystem seen through another mount (the
 * other node's dipolefs): coherence cases change something through DIR and
 * require DIR2 to show it as soon as the call returned — dipolefs promises
 * one-host semantics, not NFS's close-to-open.
 *
 * Contract of a case function: return 0 when the call under test succeeded
 * and every check after it held; -1 with errno set when the call under test
 * failed (the runner compares errno with the table); FAIL when setup or a
 * check failed, with c->msg saying what was expected and what was seen.
 * Cases may return early without closing their fds: the runner closes every
 * fd a case opened, so a failing case cannot leak into the next.
 *
 * Where kernel filesystems legitimately differ (user xattrs, fallocate,
 * hole reporting), a probe run once at start decides, and the dependent
 * cases print "# SKIP" with the reason. The probed capabilities are printed
 * on a "# caps:" line so runs on different filesystems can be compared.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/falloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define FAIL (-2)
#define KiB 1024LL
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

/* capabilities a kernel filesystem may lack, or the run may not be given */
enum {
	NEED_OTHER    = 1 << 0, /* --other-uid given and we are root */
	NEED_SECOND   = 1 << 1, /* --second given */
	NEED_XATTR    = 1 << 2, /* user.* xattrs (tmpfs before Linux 6.6: none) */
	NEED_FALLOC   = 1 << 3, /* fallocate mode 0 / KEEP_SIZE */
	NEED_PUNCH    = 1 << 4, /* FALLOC_FL_PUNCH_HOLE */
	NEED_SEEKHOLE = 1 << 5, /* SEEK_HOLE reports holes inside a file */
	NEED_SPARSE   = 1 << 6, /* holes take no blocks (st_blocks < size) */
	NEED_ACL      = 1 << 7, /* POSIX ACLs (system.posix_acl_* xattrs; acl(5)) */
};
static const char *const cap_names[] = {
	"other-uid", "second-mount", "user-xattr", "fallocate",
	"punch-hole", "seek-hole", "sparse", "acl",
};

struct ctx {
	int dfd;           /* this case's fresh directory */
	int dfd2;          /* the same directory through --second, or -1 */
	uid_t other_uid;
	gid_t other_gid;
	unsigned caps;     /* NEED_* bits this run has */
	char msg[400];     /* why a case returned FAIL */
};

struct posix_case {
	const char *call, *case_name;
	int (*fn)(struct ctx *);
	int expect_errno;  /* 0: the call must succeed */
	int also_errno;    /* a second errno POSIX allows here, or 0 */
	unsigned needs;    /* NEED_* bits; missing → the case is skipped */
};

/* ---- helpers ------------------------------------------------------------ */

static const char *errname(int e)
{
	static char buf[16];
	const char *n = e ? strerrorname_np(e) : "0";
	if (n)
		return n;
	snprintf(buf, sizeof buf, "E%d", e);
	return buf;
}

__attribute__((format(printf, 2, 3)))
static int fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof c->msg, fmt, ap);
	va_end(ap);
	return FAIL;
}

/* a setup step: its failure is the case's failure, not the call's */
#define TRY(expr) do { \
	if ((expr) == -1) \
		return fail(c, "setup %s failed (errno %s)", #expr, errname(errno)); \
} while (0)

/* a check after the call under test */
#define CHECK(cond, ...) do { if (!(cond)) return fail(c, __VA_ARGS__); } while (0)

/* the call under test's outcome: -1 keeps errno for the runner */
static int outcome(long r) { return r < 0 ? -1 : 0; }

static const char name255[] =
	"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
	"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
	"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
	"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn";
static const char name256[] =
	"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
	"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
	"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
	"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn";
_Static_assert(sizeof name255 == 256 && sizeof name256 == 257, "NAME_MAX edge names");

/* create NAME in DFD with MODE holding DATA; 0 or -1 */
static int mkfile(int dfd, const char *name, mode_t mode, const char *data)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return -1;
	size_t len = strlen(data);
	ssize_t n = write(fd, data, len);
	int e = errno;
	close(fd);
	if (n != (ssize_t)len) {
		errno = n < 0 ? e : EIO;
		return -1;
	}
	/* open's mode is filtered by the umask; tests want MODE exactly */
	return fchmodat(dfd, name, mode, 0);
}

/* read NAME's whole content (up to SIZE-1 bytes) into BUF, NUL-terminated */
static ssize_t slurp(int dfd, const char *name, char *buf, size_t size)
{
	int fd = openat(dfd, name, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	int e = errno;
	close(fd);
	errno = e;
	buf[n < 0 ? 0 : n] = 0;
	return n;
}

/* does NAME's content equal WANT? fills c->msg when not */
static bool content_is(struct ctx *c, int dfd, const char *name, const char *want)
{
	char buf[4096];
	if (slurp(dfd, name, buf, sizeof buf) < 0) {
		fail(c, "expected %s to read \"%s\", got errno %s", name, want, errname(errno));
		return false;
	}
	if (strcmp(buf, want) != 0) {
		fail(c, "expected %s to read \"%s\", got \"%.60s\"", name, want, buf);
		return false;
	}
	return true;
}
#define CONTENT(dfd, name, want) do { if (!content_is(c, dfd, name, want)) return FAIL; } while (0)

static int lst(int dfd, const char *name, struct stat *st)
{
	return fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW);
}

static bool exists(int dfd, const char *name)
{
	struct stat st;
	return lst(dfd, name, &st) == 0;
}

/* does a fresh readdir of DFD list NAME? (lookup and readdir are cached apart) */
static bool listed(int dfd, const char *name)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return false;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return false;
	}
	bool found = false;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, name) == 0)
			found = true;
	closedir(d);
	return found;
}

static bool all_zero(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			return false;
	return true;
}

static bool ts_eq(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool ts_after(struct timespec a, struct timespec b)
{
	return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

/* Kernel timestamps come from a coarse clock (a jiffy, up to 10 ms): wait
 * longer than that before a change whose new ctime/mtime must differ. */
static void nap(void)
{
	struct timespec t = { 0, 30 * 1000 * 1000 };
	nanosleep(&t, NULL);
}

/* the lowest fd number not in use */
static int lowest_free_fd(void)
{
	int fd = dup(2);
	close(fd);
	return fd;
}

/* ---- running a step as --other-uid -------------------------------------- */

struct other_result {
	int rc, err;
	char msg[400];
};

/* Run FN(c) in a child that dropped to the other uid (no supplementary
 * groups), and return its outcome as if FN had run here. The child keeps
 * c->dfd, so it starts at the case directory without walking DIR's path. */
static int as_other(struct ctx *c, int (*fn)(struct ctx *))
{
	int p[2];
	TRY(pipe(p));
	fflush(stdout);
	pid_t pid = fork();
	TRY(pid);
	if (pid == 0) {
		struct other_result r = { 0 };
		close(p[0]);
		if (setgroups(0, NULL) || setgid(c->other_gid) || setuid(c->other_uid)) {
			r.rc = fail(c, "dropping to uid %u failed (errno %s)",
				    (unsigned)c->other_uid, errname(errno));
		} else {
			errno = 0;
			r.rc = fn(c);
			r.err = errno;
		}
		memcpy(r.msg, c->msg, sizeof r.msg);
		_exit(write(p[1], &r, sizeof r) == sizeof r ? 0 : 1);
	}
	close(p[1]);
	struct other_result r;
	ssize_t n = read(p[0], &r, sizeof r);
	close(p[0]);
	waitpid(pid, NULL, 0);
	if (n != sizeof r)
		return fail(c, "the uid %u child died", (unsigned)c->other_uid);
	memcpy(c->msg, r.msg, sizeof c->msg);
	errno = r.err;
	return r.rc;
}

/* ---- open / creat ------------------------------------------------------- */

static int open_creat(struct ctx *c)
{
	int fd = openat(c->dfd, "f", O_WRONLY | O_CREAT, 0666);
	if (fd < 0)
		return -1;
	struct stat st;
	TRY(fstat(fd, &st));
	CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644,
	      "expected a regular file mode 0644 (0666 & ~022), got 0%o", st.st_mode);
	CHECK(st.st_uid == geteuid() && st.st_size == 0,
	      "expected owner %u size 0, got owner %u size %lld",
	      (unsigned)geteuid(), (unsigned)st.st_uid, (long long)st.st_size);
	return 0;
}

static int open_excl_existing(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	return outcome(openat(c->dfd, "f", O_WRONLY | O_CREAT | O_EXCL, 0644));
}

static int open_excl_dangling(struct ctx *c)
{
	TRY(symlinkat("missing", c->dfd, "l"));
	return outcome(openat(c->dfd, "l", O_WRONLY | O_CREAT | O_EXCL, 0644));
}

static int open_excl_new(struct ctx *c)
{
	if (openat(c->dfd, "f", O_WRONLY | O_CREAT | O_EXCL, 0644) < 0)
		return -1;
	CHECK(exists(c->dfd, "f"), "expected f to exist, it does not");
	return 0;
}

static int open_trunc(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "old content"));
	int fd = openat(c->dfd, "f", O_WRONLY | O_TRUNC);
	if (fd < 0)
		return -1;
	struct stat st;
	TRY(fstat(fd, &st));
	CHECK(st.st_size == 0, "expected size 0, got %lld", (long long)st.st_size);
	return 0;
}

static int open_append(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "head"));
	int fd;
	TRY(fd = openat(c->dfd, "f", O_WRONLY | O_APPEND));
	TRY(lseek(fd, 0, SEEK_SET));
	if (write(fd, "+tail", 5) != 5)
		return -1;
	off_t pos = lseek(fd, 0, SEEK_CUR);
	CHECK(pos == 9, "expected the offset at the new end 9, got %lld", (long long)pos);
	/* pwrite on O_APPEND appends too on Linux (documented BUG in pwrite(2)) */
	if (pwrite(fd, "!", 1, 0) != 1)
		return -1;
	CONTENT(c->dfd, "f", "head+tail!");
	return 0;
}

static int open_directory_on_file(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	return outcome(openat(c->dfd, "f", O_RDONLY | O_DIRECTORY));
}

static int open_missing(struct ctx *c)
{
	return outcome(openat(c->dfd, "missing", O_RDONLY));
}

static int open_dir_for_write(struct ctx *c)
{
	TRY(mkdirat(c->dfd, "d", 0755));
	return outcome(openat(c->dfd, "d", O_WRONLY));
}

static int open_under_file(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	return outcome(openat(c->dfd, "f/g", O_WRONLY | O_CREAT, 0644));
}

static int open_name255(struct ctx *c)
{
	if (openat(c->dfd, name255, O_WRONLY | O_CREAT, 0644) < 0)
		return -1;
	CHECK(listed(c->dfd, name255), "expected the 255-byte name in readdir, it is not");
	return 0;
}

static int open_name256(struct ctx *c)
{
	return outcome(openat(c->dfd, name256, O_WRONLY | O_CREAT, 0644));
}

static int creat_truncates(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "old"));
	/* creat() has no *at() form: O_CREAT|O_WRONLY|O_TRUNC is its definition */
	int fd = openat(c->dfd, "f", O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	TRY(write(fd, "new", 3));
	CONTENT(c->dfd, "f", "new");
	return 0;
}

/* ---- read / write / lseek ----------------------------------------------- */

static int rw_roundtrip(struct ctx *c)
{
	char out[8192], in[8192];
	for (size_t i = 0; i < sizeof out; i++)
		out[i] = (char)(i * 7 + 1);
	int fd;
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	if (write(fd, out, sizeof out) != sizeof out)
		return -1;
	TRY(lseek(fd, 0, SEEK_SET));
	if (read(fd, in, sizeof in) != sizeof in)
		return -1;
	CHECK(memcmp(in, out, sizeof in) == 0, "expected the 8 KiB written, got other bytes");
	return 0;
}

static int rw_pread_pwrite_offset(struct ctx *c)
{
	int fd;
	char buf[8];
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	TRY(write(fd, "0123456789", 10));
	TRY(lseek(fd, 2, SEEK_SET));
	if (pwrite(fd, "AB", 2, 5) != 2 || pread(fd, buf, 4, 4) != 4)
		return -1;
	off_t pos = lseek(fd, 0, SEEK_CUR);
	CHECK(pos == 2, "expected pread/pwrite to leave the offset at 2, got %lld", (long long)pos);
	CHECK(memcmp(buf, "4AB7", 4) == 0, "expected \"4AB7\", got \"%.4s\"", buf);
	return 0;
}

static int rw_read_eof(struct ctx *c)
{
	char buf[16];
	int fd;
	TRY(mkfile(c->dfd, "f", 0644, "abc"));
	TRY(fd = openat(c->dfd, "f", O_RDONLY));
	ssize_t n = pread(fd, buf, sizeof buf, 3);
	if (n < 0)
		return -1;
	CHECK(n == 0, "expected 0 bytes at end of file, got %zd", n);
	return 0;
}

static int rw_large_offset(struct ctx *c)
{
	int fd;
	char buf[4];
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	if (pwrite(fd, "end", 3, GiB + 1) != 3)
		return -1;
	struct stat st;
	TRY(fstat(fd, &st));
	CHECK(st.st_size == GiB + 4, "expected size %lld, got %lld", GiB + 4, (long long)st.st_size);
	CHECK(pread(fd, buf, 3, GiB + 1) == 3 && memcmp(buf, "end", 3) == 0,
	      "expected \"end\" at 1 GiB + 1, got other bytes");
	return 0;
}

static int rw_hole_zeros(struct ctx *c)
{
	int fd;
	char buf[64 * 1024];
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	TRY(pwrite(fd, "a", 1, 0));
	TRY(pwrite(fd, "z", 1, 1 * MiB));
	memset(buf, 'x', sizeof buf);
	ssize_t n = pread(fd, buf, sizeof buf, 512 * KiB);
	if (n < 0)
		return -1;
	CHECK(n == sizeof buf && all_zero(buf, sizeof buf), "expected 64 KiB of zeros in the hole");
	memset(buf, 'x', sizeof buf);
	CHECK(pread(fd, buf, 4096, 1) == 4096 && all_zero(buf, 4096),
	      "expected zeros right after the first byte");
	return 0;
}

static int rw_sparse_blocks(struct ctx *c)
{
	int fd;
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	if (pwrite(fd, "z", 1, 64 * MiB) != 1)
		return -1;
	TRY(fsync(fd));
	struct stat st;
	TRY(fstat(fd, &st));
	CHECK(st.st_blocks * 512 < 1 * MiB, "expected st_blocks < 1 MiB for one byte at 64 MiB, got %lld blocks",
	      (long long)st.st_blocks);
	return 0;
}

static int rw_read_dir(struct ctx *c)
{
	char buf[16];
	int fd;
	TRY(mkdirat(c->dfd, "d", 0755));
	TRY(fd = openat(c->dfd, "d", O_RDONLY | O_DIRECTORY));
	return outcome(read(fd, buf, sizeof buf));
}

static int rw_write_rdonly(struct ctx *c)
{
	int fd;
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(fd = openat(c->dfd, "f", O_RDONLY));
	return outcome(write(fd, "y", 1));
}

static int rw_read_wronly(struct ctx *c)
{
	char buf[4];
	int fd;
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(fd = openat(c->dfd, "f", O_WRONLY));
	return outcome(read(fd, buf, sizeof buf));
}

static int rw_pwrite_negative(struct ctx *c)
{
	int fd;
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	return outcome(pwrite(fd, "x", 1, -1));
}

/* one byte of data at 0, a hole, one byte at 8 MiB: the layout seek cases use */
static int holey_file(struct ctx *c)
{
	int fd;
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	TRY(pwrite(fd, "a", 1, 0));
	TRY(pwrite(fd, "z", 1, 8 * MiB));
	return fd;
}

static int seek_data(struct ctx *c)
{
	int fd = holey_file(c);
	if (fd == FAIL)
		return FAIL;
	off_t at = lseek(fd, 1 * MiB, SEEK_DATA);
	if (at < 0)
		return -1;
	/* a filesystem may round to its allocation unit, never past the data */
	CHECK(at > 1 * MiB && at <= 8 * MiB, "expected data found in (1 MiB, 8 MiB], got %lld", (long long)at);
	return 0;
}

static int seek_hole(struct ctx *c)
{
	int fd = holey_file(c);
	if (fd == FAIL)
		return FAIL;
	off_t at = lseek(fd, 0, SEEK_HOLE);
	if (at < 0)
		return -1;
	CHECK(at >= 1 && at < 8 * MiB, "expected a hole found in [1, 8 MiB), got %lld", (long long)at);
	return 0;
}

static int seek_hole_at_eof(struct ctx *c)
{
	int fd = holey_file(c);
	if (fd == FAIL)
		return FAIL;
	/* every file ends in an implicit hole, whether or not it has others */
	off_t at = lseek(fd, 8 * MiB, SEEK_HOLE);
	if (at < 0)
		return -1;
	CHECK(at == 8 * MiB + 1, "expected the hole at EOF %lld, got %lld", 8 * MiB + 1, (long long)at);
	return 0;
}

static int seek_data_past_eof(struct ctx *c)
{
	int fd = holey_file(c);
	if (fd == FAIL)
		return FAIL;
	return outcome(lseek(fd, 8 * MiB + 1, SEEK_DATA));
}

static int seek_negative(struct ctx *c)
{
	int fd = holey_file(c);
	if (fd == FAIL)
		return FAIL;
	return outcome(lseek(fd, -1, SEEK_SET));
}

static int large_5g(struct ctx *c)
{
	int fd;
	char buf[8];
	TRY(fd = openat(c->dfd, "big", O_RDWR | O_CREAT, 0644));
	if (pwrite(fd, "5GiB", 4, 5 * GiB) != 4)
		return -1;
	TRY(fsync(fd));
	struct stat st;
	TRY(fstat(fd, &st));
	CHECK(st.st_size == 5 * GiB + 4, "expected size %lld, got %lld", 5 * GiB + 4, (long long)st.st_size);
	CHECK(pread(fd, buf, 4, 5 * GiB) == 4 && memcmp(buf, "5GiB", 4) == 0,
	      "expected \"5GiB\" read back at 5 GiB");
	CHECK(pread(fd, buf, 8, 4 * GiB) == 8 && all_zero(buf, 8), "expected zeros at 4 GiB");
	return 0;
}

/* ---- fsync / O_SYNC ----------------------------------------------------- */

static int sync_fsync(struct ctx *c)
{
	int fd;
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	TRY(write(fd, "data", 4));
	return fsync(fd);
}

static int sync_fdatasync(struct ctx *c)
{
	int fd;
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	TRY(write(fd, "data", 4));
	return fdatasync(fd);
}

static int sync_fsync_dir(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	return fsync(c->dfd);
}

static int sync_closed(struct ctx *c)
{
	int fd;
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	close(fd);
	return fsync(fd);
}

static int sync_flag_write(struct ctx *c, int flag)
{
	int fd;
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT | flag, 0644));
	if (write(fd, "synced", 6) != 6)
		return -1;
	CONTENT(c->dfd, "f", "synced");
	return 0;
}
static int sync_osync(struct ctx *c) { return sync_flag_write(c, O_SYNC); }
static int sync_odsync(struct ctx *c) { return sync_flag_write(c, O_DSYNC); }

/* ---- truncate / ftruncate ----------------------------------------------- */

static int trunc_grow(struct ctx *c)
{
	char buf[4096];
	TRY(mkfile(c->dfd, "f", 0644, "abc"));
	int fd;
	TRY(fd = openat(c->dfd, "f", O_RDWR));
	if (ftruncate(fd, 1 * MiB) < 0)
		return -1;
	struct stat st;
	TRY(fstat(fd, &st));
	CHECK(st.st_size == 1 * MiB, "expected size 1 MiB, got %lld", (long long)st.st_size);
	CHECK(pread(fd, buf, sizeof buf, 3) == sizeof buf && all_zero(buf, sizeof buf),
	      "expected the grown part to read as zeros");
	return 0;
}

static int trunc_shrink(struct ctx *c)
{
	char buf[8];
	TRY(mkfile(c->dfd, "f", 0644, "abcdefgh"));
	int fd;
	TRY(fd = openat(c->dfd, "f", O_RDWR));
	if (ftruncate(fd, 3) < 0)
		return -1;
	CONTENT(c->dfd, "f", "abc");
	/* the cut bytes are gone, not hidden: growing again shows zeros */
	TRY(ftruncate(fd, 8));
	CHECK(pread(fd, buf, 8, 0) == 8 && memcmp(buf, "abc\0\0\0\0\0", 8) == 0,
	      "expected \"abc\" and 5 zeros after shrink and regrow");
	return 0;
}

static int trunc_path(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "abcdef"));
	/* truncate() has no *at() form: /proc/self/fd/N names the directory */
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d/f", c->dfd);
	if (truncate(path, 2) < 0)
		return -1;
	CONTENT(c->dfd, "f", "ab");
	return 0;
}

static int trunc_times(struct ctx *c)
{
	struct stat a, b;
	TRY(mkfile(c->dfd, "f", 0644, "abcdef"));
	TRY(lst(c->dfd, "f", &a));
	nap();
	int fd;
	TRY(fd = openat(c->dfd, "f", O_RDWR));
	if (ftruncate(fd, 1) < 0)
		return -1;
	TRY(fstat(fd, &b));
	CHECK(ts_after(b.st_mtim, a.st_mtim) && ts_after(b.st_ctim, a.st_ctim),
	      "expected truncate to advance mtime and ctime, they did not");
	return 0;
}

static int trunc_dir(struct ctx *c)
{
	char path[64];
	TRY(mkdirat(c->dfd, "d", 0755));
	snprintf(path, sizeof path, "/proc/self/fd/%d/d", c->dfd);
	return truncate(path, 0);
}

static int trunc_negative(struct ctx *c)
{
	int fd;
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	return ftruncate(fd, -1);
}

static int trunc_rdonly(struct ctx *c)
{
	int fd;
	TRY(mkfile(c->dfd, "f", 0644, "abc"));
	TRY(fd = openat(c->dfd, "f", O_RDONLY));
	return ftruncate(fd, 1);
}

static int trunc_missing(struct ctx *c)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d/missing", c->dfd);
	return truncate(path, 0);
}

/* ---- fallocate ---------------------------------------------------------- */

static int falloc_mode0(struct ctx *c)
{
	int fd;
	struct stat st;
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	if (fallocate(fd, 0, 0, 1 * MiB) < 0)
		return -1;
	TRY(fstat(fd, &st));
	CHECK(st.st_size == 1 * MiB, "expected size 1 MiB, got %lld", (long long)st.st_size);
	CHECK(st.st_blocks * 512 >= 1 * MiB, "expected >= 1 MiB allocated, got %lld blocks",
	      (long long)st.st_blocks);
	return 0;
}

static int falloc_keep_size(struct ctx *c)
{
	int fd;
	struct stat st;
	TRY(mkfile(c->dfd, "f", 0644, "abc"));
	TRY(fd = openat(c->dfd, "f", O_RDWR));
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1 * MiB) < 0)
		return -1;
	TRY(fstat(fd, &st));
	CHECK(st.st_size == 3, "expected size to stay 3, got %lld", (long long)st.st_size);
	CHECK(st.st_blocks * 512 >= 1 * MiB, "expected >= 1 MiB allocated, got %lld blocks",
	      (long long)st.st_blocks);
	CONTENT(c->dfd, "f", "abc");
	return 0;
}

static int falloc_punch(struct ctx *c)
{
	static char data[256 * 1024], back[256 * 1024];
	int fd;
	struct stat st;
	memset(data, 'p', sizeof data);
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	TRY(pwrite(fd, data, sizeof data, 0));
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 64 * KiB, 128 * KiB) < 0)
		return -1;
	TRY(fstat(fd, &st));
	CHECK(st.st_size == sizeof data, "expected size to stay 256 KiB, got %lld", (long long)st.st_size);
	TRY(pread(fd, back, sizeof back, 0));
	CHECK(memcmp(back, data, 64 * KiB) == 0 && memcmp(back + 192 * KiB, data, 64 * KiB) == 0,
	      "expected the bytes around the hole intact");
	CHECK(all_zero(back + 64 * KiB, 128 * KiB), "expected the punched range to read as zeros");
	return 0;
}

static int falloc_punch_no_keep(struct ctx *c)
{
	int fd;
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	TRY(pwrite(fd, "abcd", 4, 0));
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 2);
}

static int falloc_rdonly(struct ctx *c)
{
	int fd;
	TRY(mkfile(c->dfd, "f", 0644, "abc"));
	TRY(fd = openat(c->dfd, "f", O_RDONLY));
	return fallocate(fd, 0, 0, 4096);
}

static int falloc_zero_len(struct ctx *c)
{
	int fd;
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	return fallocate(fd, 0, 0, 0);
}

/* ---- mkdir / rmdir ------------------------------------------------------ */

static int mkdir_ok(struct ctx *c)
{
	struct stat p0, p1, st;
	TRY(fstat(c->dfd, &p0));
	if (mkdirat(c->dfd, "d", 0777) < 0)
		return -1;
	TRY(lst(c->dfd, "d", &st));
	TRY(fstat(c->dfd, &p1));
	CHECK(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755,
	      "expected a directory mode 0755, got 0%o", st.st_mode);
	CHECK(st.st_nlink == 2, "expected nlink 2 (name and \".\"), got %lu", (unsigned long)st.st_nlink);
	CHECK(p1.st_nlink == p0.st_nlink + 1, "expected the parent's nlink +1 (\"..\"), got %lu -> %lu",
	      (unsigned long)p0.st_nlink, (unsigned long)p1.st_nlink);
	return 0;
}

static int mkdir_existing_dir(struct ctx *c)
{
	TRY(mkdirat(c->dfd, "d", 0755));
	return mkdirat(c->dfd, "d", 0755);
}

static int mkdir_existing_file(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	return mkdirat(c->dfd, "f", 0755);
}

static int mkdir_missing_parent(struct ctx *c) { return mkdirat(c->dfd, "missing/d", 0755); }

static int mkdir_under_file(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	return mkdirat(c->dfd, "f/d", 0755);
}

static int mkdir_name256(struct ctx *c) { return mkdirat(c->dfd, name256, 0755); }

static int rmdir_ok(struct ctx *c)
{
	struct stat p0, p1;
	TRY(mkdirat(c->dfd, "d", 0755));
	TRY(fstat(c->dfd, &p0));
	if (unlinkat(c->dfd, "d", AT_REMOVEDIR) < 0)
		return -1;
	TRY(fstat(c->dfd, &p1));
	CHECK(!exists(c->dfd, "d"), "expected d gone, it is still there");
	CHECK(p1.st_nlink == p0.st_nlink - 1, "expected the parent's nlink -1, got %lu -> %lu",
	      (unsigned long)p0.st_nlink, (unsigned long)p1.st_nlink);
	return 0;
}

static int rmdir_nonempty(struct ctx *c)
{
	TRY(mkdirat(c->dfd, "d", 0755));
	TRY(mkfile(c->dfd, "d/f", 0644, "x"));
	return unlinkat(c->dfd, "d", AT_REMOVEDIR);
}

static int rmdir_missing(struct ctx *c) { return unlinkat(c->dfd, "missing", AT_REMOVEDIR); }

static int rmdir_file(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	return unlinkat(c->dfd, "f", AT_REMOVEDIR);
}

static int rmdir_dot(struct ctx *c)
{
	TRY(mkdirat(c->dfd, "d", 0755));
	return unlinkat(c->dfd, "d/.", AT_REMOVEDIR);
}

/* ---- unlink ------------------------------------------------------------- */

static int unlink_ok(struct ctx *c)
{
	struct stat st;
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(linkat(c->dfd, "f", c->dfd, "g", 0));
	if (unlinkat(c->dfd, "f", 0) < 0)
		return -1;
	CHECK(!exists(c->dfd, "f") && !listed(c->dfd, "f"), "expected f gone from lookup and readdir");
	TRY(lst(c->dfd, "g", &st));
	CHECK(st.st_nlink == 1, "expected the other link's nlink 1, got %lu", (unsigned long)st.st_nlink);
	return 0;
}

static int unlink_dir(struct ctx *c)
{
	TRY(mkdirat(c->dfd, "d", 0755));
	return unlinkat(c->dfd, "d", 0);
}

static int unlink_missing(struct ctx *c) { return unlinkat(c->dfd, "missing", 0); }

static int unlink_under_file(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	return unlinkat(c->dfd, "f/g", 0);
}

static int unlink_open_file(struct ctx *c)
{
	int fd;
	char buf[16] = { 0 };
	struct stat st;
	TRY(mkfile(c->dfd, "f", 0644, "still here"));
	TRY(fd = openat(c->dfd, "f", O_RDWR));
	if (unlinkat(c->dfd, "f", 0) < 0)
		return -1;
	CHECK(!exists(c->dfd, "f"), "expected the name gone");
	CHECK(pread(fd, buf, sizeof buf, 0) == 10 && strcmp(buf, "still here") == 0,
	      "expected the open fd to read \"still here\", got \"%s\"", buf);
	CHECK(pwrite(fd, "+more", 5, 10) == 5, "expected a write through the fd to work (errno %s)",
	      errname(errno));
	TRY(fstat(fd, &st));
	CHECK(st.st_nlink == 0 && st.st_size == 15, "expected nlink 0 size 15, got nlink %lu size %lld",
	      (unsigned long)st.st_nlink, (long long)st.st_size);
	return 0;
}

static int unlink_symlink(struct ctx *c)
{
	TRY(mkfile(c->dfd, "target", 0644, "x"));
	TRY(symlinkat("target", c->dfd, "l"));
	if (unlinkat(c->dfd, "l", 0) < 0)
		return -1;
	CHECK(!exists(c->dfd, "l") && exists(c->dfd, "target"), "expected the link gone, its target kept");
	return 0;
}

/* ---- rename ------------------------------------------------------------- */

static int rename_over_file(struct ctx *c)
{
	struct stat st;
	int fd;
	TRY(mkfile(c->dfd, "a", 0644, "new"));
	TRY(mkfile(c->dfd, "b", 0644, "old"));
	TRY(fd = openat(c->dfd, "b", O_RDONLY));
	if (renameat(c->dfd, "a", c->dfd, "b") < 0)
		return -1;
	CHECK(!exists(c->dfd, "a"), "expected a gone");
	CONTENT(c->dfd, "b", "new");
	/* the replaced file lives on for whoever holds it open */
	TRY(fstat(fd, &st));
	CHECK(st.st_nlink == 0, "expected the replaced file's nlink 0, got %lu", (unsigned long)st.st_nlink);
	return 0;
}

static int rename_across_dirs(struct ctx *c)
{
	TRY(mkdirat(c->dfd, "d1", 0755));
	TRY(mkdirat(c->dfd, "d2", 0755));
	TRY(mkfile(c->dfd, "d1/f", 0644, "moved"));
	if (renameat(c->dfd, "d1/f", c->dfd, "d2/g") < 0)
		return -1;
	CHECK(!exists(c->dfd, "d1/f") && !listed(c->dfd, "d1/f"), "expected d1/f gone");
	CONTENT(c->dfd, "d2/g", "moved");
	return 0;
}

static int rename_dir_across(struct ctx *c)
{
	struct stat d1, d2, dotdot, sub;
	TRY(mkdirat(c->dfd, "d1", 0755));
	TRY(mkdirat(c->dfd, "d2", 0755));
	TRY(mkdirat(c->dfd, "d1/sub", 0755));
	if (renameat(c->dfd, "d1/sub", c->dfd, "d2/sub") < 0)
		return -1;
	TRY(lst(c->dfd, "d1", &d1));
	TRY(lst(c->dfd, "d2", &d2));
	TRY(lst(c->dfd, "d2/sub/..", &dotdot));
	TRY(lst(c->dfd, "d2/sub", &sub));
	CHECK(d1.st_nlink == 2 && d2.st_nlink == 3, "expected nlink d1 2, d2 3; got %lu, %lu",
	      (unsigned long)d1.st_nlink, (unsigned long)d2.st_nlink);
	CHECK(dotdot.st_ino == d2.st_ino, "expected sub/.. to be d2 after the move");
	return 0;
}

static int rename_dir_over_empty(struct ctx *c)
{
	TRY(mkdirat(c->dfd, "a", 0755));
	TRY(mkfile(c->dfd, "a/f", 0644, "in a"));
	TRY(mkdirat(c->dfd, "b", 0755));
	if (renameat(c->dfd, "a", c->dfd, "b") < 0)
		return -1;
	CHECK(!exists(c->dfd, "a"), "expected a gone");
	CONTENT(c->dfd, "b/f", "in a");
	return 0;
}

static int rename_dir_over_nonempty(struct ctx *c)
{
	TRY(mkdirat(c->dfd, "a", 0755));
	TRY(mkdirat(c->dfd, "b", 0755));
	TRY(mkfile(c->dfd, "b/f", 0644, "x"));
	return renameat(c->dfd, "a", c->dfd, "b");
}

static int rename_file_over_dir(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(mkdirat(c->dfd, "d", 0755));
	return renameat(c->dfd, "f", c->dfd, "d");
}

static int rename_dir_over_file(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(mkdirat(c->dfd, "d", 0755));
	return renameat(c->dfd, "d", c->dfd, "f");
}

static int rename_noreplace_existing(struct ctx *c)
{
	TRY(mkfile(c->dfd, "a", 0644, "a"));
	TRY(mkfile(c->dfd, "b", 0644, "b"));
	int r = renameat2(c->dfd, "a", c->dfd, "b", RENAME_NOREPLACE);
	int e = errno;
	CONTENT(c->dfd, "b", "b");
	errno = e;
	return r;
}

static int rename_noreplace_free(struct ctx *c)
{
	TRY(mkfile(c->dfd, "a", 0644, "a"));
	if (renameat2(c->dfd, "a", c->dfd, "b", RENAME_NOREPLACE) < 0)
		return -1;
	CONTENT(c->dfd, "b", "a");
	return 0;
}

static int rename_exchange(struct ctx *c)
{
	TRY(mkfile(c->dfd, "a", 0644, "was a"));
	TRY(mkdirat(c->dfd, "d", 0755));
	TRY(mkfile(c->dfd, "d/b", 0644, "was b"));
	if (renameat2(c->dfd, "a", c->dfd, "d/b", RENAME_EXCHANGE) < 0)
		return -1;
	CONTENT(c->dfd, "a", "was b");
	CONTENT(c->dfd, "d/b", "was a");
	return 0;
}

static int rename_exchange_file_dir(struct ctx *c)
{
	struct stat a, d;
	TRY(mkfile(c->dfd, "a", 0644, "file"));
	TRY(mkdirat(c->dfd, "d", 0755));
	if (renameat2(c->dfd, "a", c->dfd, "d", RENAME_EXCHANGE) < 0)
		return -1;
	TRY(lst(c->dfd, "a", &a));
	TRY(lst(c->dfd, "d", &d));
	CHECK(S_ISDIR(a.st_mode) && S_ISREG(d.st_mode), "expected a a directory and d a file");
	CONTENT(c->dfd, "d", "file");
	return 0;
}

static int rename_exchange_missing(struct ctx *c)
{
	TRY(mkfile(c->dfd, "a", 0644, "a"));
	return renameat2(c->dfd, "a", c->dfd, "missing", RENAME_EXCHANGE);
}

static int rename_into_own_subdir(struct ctx *c)
{
	TRY(mkdirat(c->dfd, "d", 0755));
	TRY(mkdirat(c->dfd, "d/sub", 0755));
	return renameat(c->dfd, "d", c->dfd, "d/sub/d");
}

static int rename_hardlink_onto_itself(struct ctx *c)
{
	TRY(mkfile(c->dfd, "a", 0644, "x"));
	TRY(linkat(c->dfd, "a", c->dfd, "b", 0));
	/* POSIX: renaming onto another link of the same file does nothing */
	if (renameat(c->dfd, "a", c->dfd, "b") < 0)
		return -1;
	CHECK(exists(c->dfd, "a") && exists(c->dfd, "b"), "expected both links to remain");
	return 0;
}

static int rename_missing(struct ctx *c) { return renameat(c->dfd, "missing", c->dfd, "b"); }

static int rename_name256(struct ctx *c)
{
	TRY(mkfile(c->dfd, "a", 0644, "x"));
	return renameat(c->dfd, "a", c->dfd, name256);
}

static int rename_across_mounts(struct ctx *c)
{
	TRY(mkfile(c->dfd, "a", 0644, "x"));
	/* the same filesystem through another mount is still another mount */
	return renameat(c->dfd, "a", c->dfd2, "b");
}

/* ---- link --------------------------------------------------------------- */

static int link_ok(struct ctx *c)
{
	struct stat a, b;
	TRY(mkfile(c->dfd, "a", 0644, "shared"));
	if (linkat(c->dfd, "a", c->dfd, "b", 0) < 0)
		return -1;
	TRY(lst(c->dfd, "a", &a));
	TRY(lst(c->dfd, "b", &b));
	CHECK(a.st_ino == b.st_ino && a.st_nlink == 2 && b.st_nlink == 2,
	      "expected one inode with nlink 2, got ino %llu/%llu nlink %lu/%lu",
	      (unsigned long long)a.st_ino, (unsigned long long)b.st_ino,
	      (unsigned long)a.st_nlink, (unsigned long)b.st_nlink);
	TRY(mkfile(c->dfd, "b", 0644, "via b"));
	CONTENT(c->dfd, "a", "via b");
	return 0;
}

static int link_existing(struct ctx *c)
{
	TRY(mkfile(c->dfd, "a", 0644, "a"));
	TRY(mkfile(c->dfd, "b", 0644, "b"));
	return linkat(c->dfd, "a", c->dfd, "b", 0);
}

static int link_dir(struct ctx *c)
{
	TRY(mkdirat(c->dfd, "d", 0755));
	return linkat(c->dfd, "d", c->dfd, "e", 0);
}

static int link_missing(struct ctx *c) { return linkat(c->dfd, "missing", c->dfd, "b", 0); }

static int link_name256(struct ctx *c)
{
	TRY(mkfile(c->dfd, "a", 0644, "a"));
	return linkat(c->dfd, "a", c->dfd, name256, 0);
}

/* ---- symlink / readlink ------------------------------------------------- */

static int symlink_readlink(struct ctx *c)
{
	char buf[256];
	if (symlinkat("some/where/../target", c->dfd, "l") < 0)
		return -1;
	ssize_t n = readlinkat(c->dfd, "l", buf, sizeof buf);
	CHECK(n == 20 && memcmp(buf, "some/where/../target", 20) == 0,
	      "expected readlink \"some/where/../target\", got %zd bytes", n);
	return 0;
}

static int symlink_long_target(struct ctx *c)
{
	char target[1001], buf[1100];
	memset(target, 't', 1000);
	target[1000] = 0;
	if (symlinkat(target, c->dfd, "l") < 0)
		return -1;
	ssize_t n = readlinkat(c->dfd, "l", buf, sizeof buf);
	CHECK(n == 1000 && memcmp(buf, target, 1000) == 0, "expected a 1000-byte target, got %zd bytes", n);
	return 0;
}

static int symlink_dangling(struct ctx *c)
{
	struct stat st;
	if (symlinkat("missing", c->dfd, "l") < 0)
		return -1;
	CHECK(lst(c->dfd, "l", &st) == 0 && S_ISLNK(st.st_mode), "expected lstat to show a symlink");
	CHECK(fstatat(c->dfd, "l", &st, 0) < 0 && errno == ENOENT,
	      "expected stat through the dangling link to fail ENOENT, got errno %s", errname(errno));
	return 0;
}

static int symlink_existing(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	return symlinkat("t", c->dfd, "f");
}

static int symlink_follow_dir(struct ctx *c)
{
	TRY(mkdirat(c->dfd, "d", 0755));
	TRY(mkfile(c->dfd, "d/f", 0644, "through"));
	TRY(symlinkat("d", c->dfd, "l"));
	if (openat(c->dfd, "l", O_RDONLY | O_DIRECTORY) < 0)
		return -1;
	CONTENT(c->dfd, "l/f", "through");
	return 0;
}

static int readlink_file(struct ctx *c)
{
	char buf[16];
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	return outcome(readlinkat(c->dfd, "f", buf, sizeof buf));
}

static int symlink_loop(struct ctx *c)
{
	TRY(symlinkat("b", c->dfd, "a"));
	TRY(symlinkat("a", c->dfd, "b"));
	return outcome(openat(c->dfd, "a", O_RDONLY));
}

static int symlink_nofollow(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(symlinkat("f", c->dfd, "l"));
	return outcome(openat(c->dfd, "l", O_RDONLY | O_NOFOLLOW));
}

static int symlink_name256(struct ctx *c) { return symlinkat("t", c->dfd, name256); }

/* ---- chmod / chown / utimensat ------------------------------------------ */

static int chmod_file(struct ctx *c)
{
	struct stat st;
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	if (fchmodat(c->dfd, "f", 0640, 0) < 0)
		return -1;
	TRY(lst(c->dfd, "f", &st));
	CHECK((st.st_mode & 07777) == 0640, "expected mode 0640, got 0%o", st.st_mode & 07777);
	return 0;
}

static int chmod_special_bits(struct ctx *c)
{
	struct stat st;
	TRY(mkdirat(c->dfd, "d", 0755));
	if (fchmodat(c->dfd, "d", 03777, 0) < 0)
		return -1;
	TRY(lst(c->dfd, "d", &st));
	CHECK((st.st_mode & 07777) == 03777, "expected mode 03777 (setgid, sticky), got 0%o",
	      st.st_mode & 07777);
	return 0;
}

static int chmod_fd(struct ctx *c)
{
	struct stat st;
	int fd;
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(fd = openat(c->dfd, "f", O_RDONLY));
	if (fchmod(fd, 04711) < 0)
		return -1;
	TRY(fstat(fd, &st));
	CHECK((st.st_mode & 07777) == 04711, "expected mode 04711, got 0%o", st.st_mode & 07777);
	return 0;
}

static int chmod_ctime(struct ctx *c)
{
	struct stat a, b;
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(lst(c->dfd, "f", &a));
	nap();
	if (fchmodat(c->dfd, "f", 0600, 0) < 0)
		return -1;
	TRY(lst(c->dfd, "f", &b));
	CHECK(ts_after(b.st_ctim, a.st_ctim), "expected chmod to advance ctime, it did not");
	CHECK(ts_eq(b.st_mtim, a.st_mtim), "expected chmod to leave mtime, it changed");
	return 0;
}

static int chmod_missing(struct ctx *c) { return fchmodat(c->dfd, "missing", 0644, 0); }

static int chown_file(struct ctx *c)
{
	struct stat st;
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	if (fchownat(c->dfd, "f", 4242, 4343, 0) < 0)
		return -1;
	TRY(lst(c->dfd, "f", &st));
	CHECK(st.st_uid == 4242 && st.st_gid == 4343, "expected owner 4242:4343, got %u:%u",
	      (unsigned)st.st_uid, (unsigned)st.st_gid);
	if (fchownat(c->dfd, "f", (uid_t)-1, (gid_t)-1, 0) < 0)
		return -1;
	TRY(lst(c->dfd, "f", &st));
	CHECK(st.st_uid == 4242 && st.st_gid == 4343, "expected -1:-1 to keep 4242:4343, got %u:%u",
	      (unsigned)st.st_uid, (unsigned)st.st_gid);
	return 0;
}

static int chown_clears_setuid(struct ctx *c)
{
	struct stat st;
	TRY(mkfile(c->dfd, "f", 06755, "x"));
	if (fchownat(c->dfd, "f", 4242, 4343, 0) < 0)
		return -1;
	TRY(lst(c->dfd, "f", &st));
	CHECK((st.st_mode & 07777) == 0755, "expected chown to clear setuid/setgid (0755), got 0%o",
	      st.st_mode & 07777);
	return 0;
}

static int chown_symlink_nofollow(struct ctx *c)
{
	struct stat l, t;
	TRY(mkfile(c->dfd, "t", 0644, "x"));
	TRY(symlinkat("t", c->dfd, "l"));
	if (fchownat(c->dfd, "l", 4242, 4343, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	TRY(lst(c->dfd, "l", &l));
	TRY(lst(c->dfd, "t", &t));
	CHECK(l.st_uid == 4242 && t.st_uid == geteuid(), "expected the link chowned, not its target");
	return 0;
}

static int chown_missing(struct ctx *c) { return fchownat(c->dfd, "missing", 1, 1, 0); }

static int utimens_explicit(struct ctx *c)
{
	struct stat st;
	struct timespec ts[2] = { { 1000000000, 123456789 }, { 1200000000, 987654321 } };
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	if (utimensat(c->dfd, "f", ts, 0) < 0)
		return -1;
	TRY(lst(c->dfd, "f", &st));
	CHECK(ts_eq(st.st_atim, ts[0]) && ts_eq(st.st_mtim, ts[1]),
	      "expected atime 1000000000.123456789 mtime 1200000000.987654321, got %lld.%09ld %lld.%09ld",
	      (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
	      (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	return 0;
}

static int utimens_now(struct ctx *c)
{
	struct stat st;
	struct timespec old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	struct timespec now[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(utimensat(c->dfd, "f", old, 0));
	time_t before = time(NULL);
	if (utimensat(c->dfd, "f", now, 0) < 0)
		return -1;
	time_t after = time(NULL);
	TRY(lst(c->dfd, "f", &st));
	/* a second of slack: file times come from a coarser clock than time() */
	CHECK(st.st_mtim.tv_sec >= before - 1 && st.st_mtim.tv_sec <= after + 1 &&
	      st.st_atim.tv_sec >= before - 1 && st.st_atim.tv_sec <= after + 1,
	      "expected atime and mtime near %lld, got %lld and %lld", (long long)before,
	      (long long)st.st_atim.tv_sec, (long long)st.st_mtim.tv_sec);
	return 0;
}

static int utimens_null(struct ctx *c)
{
	struct stat st;
	struct timespec old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(utimensat(c->dfd, "f", old, 0));
	if (utimensat(c->dfd, "f", NULL, 0) < 0)
		return -1;
	TRY(lst(c->dfd, "f", &st));
	CHECK(st.st_mtim.tv_sec >= time(NULL) - 2, "expected mtime now, got %lld", (long long)st.st_mtim.tv_sec);
	return 0;
}

static int utimens_omit(struct ctx *c)
{
	struct stat st;
	struct timespec set[2] = { { 1000000000, 5 }, { 1100000000, 6 } };
	struct timespec omit_atime[2] = { { 0, UTIME_OMIT }, { 1300000000, 7 } };
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(utimensat(c->dfd, "f", set, 0));
	if (utimensat(c->dfd, "f", omit_atime, 0) < 0)
		return -1;
	TRY(lst(c->dfd, "f", &st));
	CHECK(ts_eq(st.st_atim, set[0]) && ts_eq(st.st_mtim, omit_atime[1]),
	      "expected atime kept 1000000000.000000005 and mtime 1300000000.000000007, got %lld.%09ld %lld.%09ld",
	      (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
	      (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	return 0;
}

static int utimens_ctime(struct ctx *c)
{
	struct stat a, b;
	struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(lst(c->dfd, "f", &a));
	nap();
	if (utimensat(c->dfd, "f", ts, 0) < 0)
		return -1;
	TRY(lst(c->dfd, "f", &b));
	/* ctime cannot be set, only advanced: it records that the times changed */
	CHECK(ts_after(b.st_ctim, a.st_ctim), "expected utimensat to advance ctime, it did not");
	return 0;
}

static int write_updates_mtime(struct ctx *c)
{
	struct stat a, b;
	int fd;
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(fd = openat(c->dfd, "f", O_WRONLY));
	TRY(fstat(fd, &a));
	nap();
	if (write(fd, "y", 1) != 1)
		return -1;
	TRY(fstat(fd, &b));
	CHECK(ts_after(b.st_mtim, a.st_mtim) && ts_after(b.st_ctim, a.st_ctim),
	      "expected write to advance mtime and ctime, it did not");
	return 0;
}

static int create_updates_dir_mtime(struct ctx *c)
{
	struct stat a, b;
	TRY(fstat(c->dfd, &a));
	nap();
	if (mkfile(c->dfd, "f", 0644, "x") < 0)
		return -1;
	TRY(fstat(c->dfd, &b));
	CHECK(ts_after(b.st_mtim, a.st_mtim), "expected creating a name to advance the directory's mtime");
	return 0;
}

static int utimens_missing(struct ctx *c) { return utimensat(c->dfd, "missing", NULL, 0); }

/* ---- permissions as --other-uid ----------------------------------------- */

static int o_open_secret(struct ctx *c) { return outcome(openat(c->dfd, "secret", O_RDONLY)); }
static int perm_read_0600(struct ctx *c)
{
	TRY(mkfile(c->dfd, "secret", 0600, "root only"));
	return as_other(c, o_open_secret);
}

static int o_read_public(struct ctx *c)
{
	char buf[16];
	return outcome(slurp(c->dfd, "public", buf, sizeof buf));
}
static int perm_read_0644(struct ctx *c)
{
	TRY(mkfile(c->dfd, "public", 0644, "anyone"));
	return as_other(c, o_read_public);
}

static int o_write_public(struct ctx *c) { return outcome(openat(c->dfd, "public", O_WRONLY)); }
static int perm_write_0644(struct ctx *c)
{
	TRY(mkfile(c->dfd, "public", 0644, "anyone"));
	return as_other(c, o_write_public);
}

static int o_create(struct ctx *c) { return outcome(openat(c->dfd, "mine", O_WRONLY | O_CREAT, 0644)); }
static int perm_create_0755(struct ctx *c)
{
	TRY(fchmod(c->dfd, 0755));
	return as_other(c, o_create);
}

static int o_mkdir(struct ctx *c) { return mkdirat(c->dfd, "mine", 0755); }
static int perm_mkdir_0755(struct ctx *c)
{
	TRY(fchmod(c->dfd, 0755));
	return as_other(c, o_mkdir);
}

static int o_open_in_private(struct ctx *c) { return outcome(openat(c->dfd, "priv/f", O_RDONLY)); }
static int perm_search_0700(struct ctx *c)
{
	TRY(mkdirat(c->dfd, "priv", 0700));
	TRY(mkfile(c->dfd, "priv/f", 0644, "x"));
	return as_other(c, o_open_in_private);
}

static int o_chmod_public(struct ctx *c) { return fchmodat(c->dfd, "public", 0666, 0); }
static int perm_chmod_others(struct ctx *c)
{
	TRY(mkfile(c->dfd, "public", 0644, "x"));
	return as_other(c, o_chmod_public);
}

static int o_chown_mine_to_root(struct ctx *c)
{
	TRY(mkfile(c->dfd, "mine", 0644, "x"));
	return fchownat(c->dfd, "mine", 0, (gid_t)-1, 0);
}
static int perm_chown_give_away(struct ctx *c)
{
	TRY(fchmod(c->dfd, 0777));
	return as_other(c, o_chown_mine_to_root);
}

static int o_utimes_explicit(struct ctx *c)
{
	struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	return utimensat(c->dfd, "public", ts, 0);
}
static int perm_utimes_others(struct ctx *c)
{
	TRY(mkfile(c->dfd, "public", 0666, "x"));
	return as_other(c, o_utimes_explicit);
}

static int o_utimes_now(struct ctx *c) { return utimensat(c->dfd, "public", NULL, 0); }
static int perm_utimes_now_readonly(struct ctx *c)
{
	TRY(mkfile(c->dfd, "public", 0644, "x"));
	return as_other(c, o_utimes_now);
}
static int perm_utimes_now_writable(struct ctx *c)
{
	/* write permission is enough to set the times to now */
	TRY(mkfile(c->dfd, "public", 0666, "x"));
	return as_other(c, o_utimes_now);
}

static int o_unlink_roots(struct ctx *c) { return unlinkat(c->dfd, "sticky/roots", 0); }
static int perm_sticky_unlink(struct ctx *c)
{
	TRY(mkdirat(c->dfd, "sticky", 0755));
	TRY(fchmodat(c->dfd, "sticky", 01777, 0));
	TRY(mkfile(c->dfd, "sticky/roots", 0666, "x"));
	int r = as_other(c, o_unlink_roots);
	int e = errno;
	if (r == FAIL)
		return FAIL;
	CHECK(exists(c->dfd, "sticky/roots"), "expected root's file to survive");
	errno = e;
	return r;
}

static int o_create_then_unlink_own(struct ctx *c)
{
	TRY(mkfile(c->dfd, "sticky/mine", 0644, "x"));
	return unlinkat(c->dfd, "sticky/mine", 0);
}
static int perm_sticky_unlink_own(struct ctx *c)
{
	TRY(mkdirat(c->dfd, "sticky", 0755));
	TRY(fchmodat(c->dfd, "sticky", 01777, 0));
	return as_other(c, o_create_then_unlink_own);
}

static int o_create_mine(struct ctx *c)
{
	TRY(mkfile(c->dfd, "mine", 0644, "x"));
	return mkdirat(c->dfd, "mydir", 0755);
}
static int perm_owner_of_created(struct ctx *c)
{
	struct stat f, d;
	TRY(fchmod(c->dfd, 0777));
	int r = as_other(c, o_create_mine);
	if (r != 0)
		return r;
	TRY(lst(c->dfd, "mine", &f));
	TRY(lst(c->dfd, "mydir", &d));
	CHECK(f.st_uid == c->other_uid && f.st_gid == c->other_gid &&
	      d.st_uid == c->other_uid && d.st_gid == c->other_gid,
	      "expected file and dir owned by %u:%u, got %u:%u and %u:%u",
	      (unsigned)c->other_uid, (unsigned)c->other_gid, (unsigned)f.st_uid,
	      (unsigned)f.st_gid, (unsigned)d.st_uid, (unsigned)d.st_gid);
	return 0;
}

static int o_setxattr_public(struct ctx *c)
{
	int fd = openat(c->dfd, "public", O_RDONLY);
	TRY(fd);
	return fsetxattr(fd, "user.k", "v", 1, 0);
}
static int perm_setxattr_others(struct ctx *c)
{
	TRY(mkfile(c->dfd, "public", 0644, "x"));
	return as_other(c, o_setxattr_public);
}

/* ---- POSIX ACLs (acl(5)) ------------------------------------------------- */

/* An ACL in the kernel's xattr form (posix_acl_xattr.h): a version, then
 * (tag, perm, id) entries sorted by tag and id. */
enum { A_USER_OBJ = 1, A_USER = 2, A_GROUP_OBJ = 4, A_MASK = 0x10, A_OTHER = 0x20 };
struct acl_entry { uint16_t tag, perm; uint32_t id; };
struct acl_xattr { uint32_t version; struct acl_entry e[5]; };

/* owner PERM_OWNER, one named user UID with PERM, group and other nothing */
static size_t acl_named(struct acl_xattr *a, unsigned perm_owner, uid_t uid, unsigned perm)
{
	*a = (struct acl_xattr){ 2, { { A_USER_OBJ, (uint16_t)perm_owner, ~0u }, { A_USER, (uint16_t)perm, uid },
				      { A_GROUP_OBJ, 0, ~0u }, { A_MASK, (uint16_t)perm, ~0u }, { A_OTHER, 0, ~0u } } };
	return sizeof *a;
}

static int acl_grant(struct ctx *c, int dfd, const char *name, unsigned perm)
{
	struct acl_xattr a;
	size_t len = acl_named(&a, 6, c->other_uid, perm);
	char path[64];
	int fd = openat(dfd, name, O_RDONLY);
	if (fd < 0)
		return -1;
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int rc = setxattr(path, "system.posix_acl_access", &a, len, 0);
	close(fd);
	return rc;
}

static int acl_read_granted(struct ctx *c)
{
	TRY(mkfile(c->dfd, "secret", 0600, "root only"));
	TRY(acl_grant(c, c->dfd, "secret", 4));
	return as_other(c, o_open_secret);
}

static int o_write_secret(struct ctx *c) { return outcome(openat(c->dfd, "secret", O_WRONLY)); }
static int acl_write_not_granted(struct ctx *c)
{
	TRY(mkfile(c->dfd, "secret", 0600, "root only"));
	TRY(acl_grant(c, c->dfd, "secret", 4));
	return as_other(c, o_write_secret);
}

static int acl_mode_shows_mask(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0600, "x"));
	TRY(acl_grant(c, c->dfd, "f", 6));
	struct stat st;
	TRY(fstatat(c->dfd, "f", &st, 0));
	CHECK((st.st_mode & 0777) == 0660, "expected mode 0660 (group bits show the ACL mask rw), got 0%o",
	      st.st_mode & 0777);
	return 0;
}

/* make DIR/d with a default ACL of rwx for owner, group and other, then
 * create a file and a directory in it under umask 077 */
static int acl_default_vs_umask(struct ctx *c, int with_default)
{
	TRY(mkdirat(c->dfd, "d", 0755));
	if (with_default) {
		struct acl_xattr a = { 2, { { A_USER_OBJ, 7, ~0u }, { A_GROUP_OBJ, 7, ~0u }, { A_OTHER, 7, ~0u } } };
		int fd;
		char path[64];
		TRY(fd = openat(c->dfd, "d", O_RDONLY | O_DIRECTORY));
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		TRY(setxattr(path, "system.posix_acl_default", &a, 4 + 3 * sizeof(struct acl_entry), 0));
		close(fd);
	}
	mode_t old = umask(077);
	int fd = openat(c->dfd, "d/f", O_WRONLY | O_CREAT, 0666);
	int e = errno, rc = fd < 0 ? -1 : mkdirat(c->dfd, "d/sub", 0777);
	e = rc ? errno : e;
	umask(old);
	if (fd < 0 || rc) {
		errno = e;
		return -1;
	}
	struct stat f, d;
	TRY(fstatat(c->dfd, "d/f", &f, 0));
	TRY(fstatat(c->dfd, "d/sub", &d, 0));
	mode_t want_f = with_default ? 0666 : 0600, want_d = with_default ? 0777 : 0700;
	CHECK((f.st_mode & 0777) == want_f && (d.st_mode & 0777) == want_d,
	      "expected file 0%o and directory 0%o under umask 077, got 0%o and 0%o", want_f, want_d,
	      f.st_mode & 0777, d.st_mode & 0777);
	return 0;
}
static int acl_default_beats_umask(struct ctx *c) { return acl_default_vs_umask(c, 1); }
static int acl_umask_without_default(struct ctx *c) { return acl_default_vs_umask(c, 0); }

/* other uid is refused through DIR2, then an ACL set through DIR lets it
 * in through DIR2 at once (a node caching the ACL is told) */
static int o_open_secret2(struct ctx *c) { return outcome(openat(c->dfd2, "secret", O_RDONLY)); }
static int co_acl(struct ctx *c)
{
	TRY(mkfile(c->dfd, "secret", 0600, "root only"));
	CHECK(as_other(c, o_open_secret2) == -1 && errno == EACCES,
	      "expected EACCES through DIR2 before the ACL, got %s", errname(errno));
	TRY(acl_grant(c, c->dfd, "secret", 4));
	return as_other(c, o_open_secret2);
}

/* ---- xattrs ------------------------------------------------------------- */

static int xattr_file(struct ctx *c, int flags)
{
	int fd;
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(fd = openat(c->dfd, "f", O_RDONLY));
	if (flags >= 0)
		TRY(fsetxattr(fd, "user.color", "blue", 4, flags));
	return fd;
}

static int xattr_set_get(struct ctx *c)
{
	char buf[16] = { 0 };
	int fd = xattr_file(c, -1);
	if (fd == FAIL)
		return FAIL;
	if (fsetxattr(fd, "user.color", "blue", 4, 0) < 0)
		return -1;
	ssize_t n = fgetxattr(fd, "user.color", buf, sizeof buf);
	CHECK(n == 4 && memcmp(buf, "blue", 4) == 0, "expected \"blue\", got %zd bytes \"%s\"", n, buf);
	CHECK(fgetxattr(fd, "user.color", NULL, 0) == 4, "expected a size query to return 4");
	/* a binary value with NULs and an empty one survive */
	TRY(fsetxattr(fd, "user.bin", "a\0b", 3, 0));
	TRY(fsetxattr(fd, "user.empty", "", 0, 0));
	CHECK(fgetxattr(fd, "user.bin", buf, sizeof buf) == 3 && memcmp(buf, "a\0b", 3) == 0,
	      "expected the binary value back");
	CHECK(fgetxattr(fd, "user.empty", buf, sizeof buf) == 0, "expected an empty value back");
	return 0;
}

static int xattr_list(struct ctx *c)
{
	char buf[1024];
	int fd = xattr_file(c, 0);
	if (fd == FAIL)
		return FAIL;
	TRY(fsetxattr(fd, "user.size", "L", 1, 0));
	ssize_t n = flistxattr(fd, buf, sizeof buf);
	if (n < 0)
		return -1;
	bool color = false, size = false;
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1) {
		color |= strcmp(buf + i, "user.color") == 0;
		size |= strcmp(buf + i, "user.size") == 0;
	}
	CHECK(color && size, "expected the list to hold user.color and user.size");
	return 0;
}

static int xattr_replace(struct ctx *c)
{
	char buf[16] = { 0 };
	int fd = xattr_file(c, 0);
	if (fd == FAIL)
		return FAIL;
	if (fsetxattr(fd, "user.color", "red", 3, XATTR_REPLACE) < 0)
		return -1;
	CHECK(fgetxattr(fd, "user.color", buf, sizeof buf) == 3 && memcmp(buf, "red", 3) == 0,
	      "expected \"red\", got \"%s\"", buf);
	return 0;
}

static int xattr_remove(struct ctx *c)
{
	char buf[16];
	int fd = xattr_file(c, 0);
	if (fd == FAIL)
		return FAIL;
	if (fremovexattr(fd, "user.color") < 0)
		return -1;
	CHECK(fgetxattr(fd, "user.color", buf, sizeof buf) < 0 && errno == ENODATA,
	      "expected ENODATA after remove, got errno %s", errname(errno));
	return 0;
}

static int xattr_create_existing(struct ctx *c)
{
	int fd = xattr_file(c, 0);
	return fd == FAIL ? FAIL : fsetxattr(fd, "user.color", "red", 3, XATTR_CREATE);
}

static int xattr_replace_missing(struct ctx *c)
{
	int fd = xattr_file(c, -1);
	return fd == FAIL ? FAIL : fsetxattr(fd, "user.color", "red", 3, XATTR_REPLACE);
}

static int xattr_get_missing(struct ctx *c)
{
	char buf[16];
	int fd = xattr_file(c, -1);
	return fd == FAIL ? FAIL : outcome(fgetxattr(fd, "user.none", buf, sizeof buf));
}

static int xattr_remove_missing(struct ctx *c)
{
	int fd = xattr_file(c, -1);
	return fd == FAIL ? FAIL : fremovexattr(fd, "user.none");
}

static int xattr_small_buffer(struct ctx *c)
{
	char buf[2];
	int fd = xattr_file(c, 0);
	return fd == FAIL ? FAIL : outcome(fgetxattr(fd, "user.color", buf, sizeof buf));
}

static int xattr_dir(struct ctx *c)
{
	char buf[16];
	int fd;
	TRY(mkdirat(c->dfd, "d", 0755));
	TRY(fd = openat(c->dfd, "d", O_RDONLY | O_DIRECTORY));
	if (fsetxattr(fd, "user.dir", "yes", 3, 0) < 0)
		return -1;
	CHECK(fgetxattr(fd, "user.dir", buf, sizeof buf) == 3, "expected the directory's xattr back");
	return 0;
}

/* ---- statfs ------------------------------------------------------------- */

static int statfs_sane(struct ctx *c)
{
	struct statfs s;
	if (fstatfs(c->dfd, &s) < 0)
		return -1;
	CHECK(s.f_bsize > 0 && s.f_blocks > 0 && s.f_bfree <= s.f_blocks && s.f_bavail <= s.f_bfree,
	      "expected bsize>0, 0<blocks, bavail<=bfree<=blocks; got bsize %lld blocks %llu bfree %llu bavail %llu",
	      (long long)s.f_bsize, (unsigned long long)s.f_blocks,
	      (unsigned long long)s.f_bfree, (unsigned long long)s.f_bavail);
	CHECK(s.f_namelen >= 255, "expected namelen >= 255, got %lld", (long long)s.f_namelen);
	return 0;
}

static int fstatvfs_sane(struct ctx *c)
{
	struct statvfs s;
	int fd;
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	if (fstatvfs(fd, &s) < 0)
		return -1;
	CHECK(s.f_frsize > 0 && s.f_blocks > 0 && s.f_bfree <= s.f_blocks && s.f_bavail <= s.f_bfree,
	      "expected frsize>0, 0<blocks, bavail<=bfree<=blocks");
	CHECK(s.f_ffree <= s.f_files && s.f_namemax >= 255,
	      "expected ffree<=files and namemax>=255, got ffree %llu files %llu namemax %lu",
	      (unsigned long long)s.f_ffree, (unsigned long long)s.f_files, s.f_namemax);
	return 0;
}

/* ---- EBADF -------------------------------------------------------------- */

/* an fd number that was valid a moment ago and is closed now */
static int closed_fd(struct ctx *c)
{
	int fd;
	TRY(fd = openat(c->dfd, "f", O_RDWR | O_CREAT, 0644));
	TRY(close(fd));
	return fd;
}

static int badf_read(struct ctx *c)
{
	char buf[4];
	int fd = closed_fd(c);
	return fd == FAIL ? FAIL : outcome(read(fd, buf, sizeof buf));
}

static int badf_write(struct ctx *c)
{
	int fd = closed_fd(c);
	return fd == FAIL ? FAIL : outcome(write(fd, "x", 1));
}

static int badf_fstat(struct ctx *c)
{
	struct stat st;
	int fd = closed_fd(c);
	return fd == FAIL ? FAIL : fstat(fd, &st);
}

static int badf_close(struct ctx *c)
{
	int fd = closed_fd(c);
	return fd == FAIL ? FAIL : close(fd);
}

static int badf_fchmod(struct ctx *c)
{
	int fd = closed_fd(c);
	return fd == FAIL ? FAIL : fchmod(fd, 0600);
}

static int badf_openat(struct ctx *c)
{
	int fd = closed_fd(c);
	return fd == FAIL ? FAIL : outcome(openat(fd, "f", O_RDONLY));
}

/* ---- coherence through --second ----------------------------------------- */

/* Each case first reads through DIR2 (so a cache there holds the old state),
 * changes through DIR, then checks DIR2 at once: no sleeps, no reopen. */

static int co_data(struct ctx *c)
{
	int fd, fd2;
	char buf[8] = { 0 };
	TRY(mkfile(c->dfd, "f", 0644, "old-data"));
	TRY(fd2 = openat(c->dfd2, "f", O_RDONLY));
	TRY(pread(fd2, buf, 8, 0));
	TRY(fd = openat(c->dfd, "f", O_WRONLY));
	if (pwrite(fd, "NEW", 3, 4) != 3)
		return -1;
	CHECK(pread(fd2, buf, 8, 0) == 8 && memcmp(buf, "old-NEWa", 8) == 0,
	      "expected DIR2's open fd to read \"old-NEWa\", got \"%.8s\"", buf);
	CONTENT(c->dfd2, "f", "old-NEWa");
	return 0;
}

static int co_data_back(struct ctx *c)
{
	int fd2;
	TRY(mkfile(c->dfd, "f", 0644, "aaaa"));
	CONTENT(c->dfd, "f", "aaaa");
	TRY(fd2 = openat(c->dfd2, "f", O_WRONLY));
	if (pwrite(fd2, "bb", 2, 1) != 2)
		return -1;
	CONTENT(c->dfd, "f", "abba");
	return 0;
}

static int co_size(struct ctx *c)
{
	struct stat st;
	int fd;
	TRY(mkfile(c->dfd, "f", 0644, "abc"));
	TRY(lst(c->dfd2, "f", &st));
	TRY(fd = openat(c->dfd, "f", O_RDWR));
	if (ftruncate(fd, 1 * MiB) < 0)
		return -1;
	TRY(lst(c->dfd2, "f", &st));
	CHECK(st.st_size == 1 * MiB, "expected DIR2 size 1 MiB after grow, got %lld", (long long)st.st_size);
	if (ftruncate(fd, 1) < 0)
		return -1;
	TRY(lst(c->dfd2, "f", &st));
	CHECK(st.st_size == 1, "expected DIR2 size 1 after shrink, got %lld", (long long)st.st_size);
	CONTENT(c->dfd2, "f", "a");
	return 0;
}

static int co_mtime(struct ctx *c)
{
	struct stat a, b;
	int fd;
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(lst(c->dfd2, "f", &b));
	nap();
	TRY(fd = openat(c->dfd, "f", O_WRONLY));
	if (write(fd, "y", 1) != 1)
		return -1;
	TRY(fstat(fd, &a));
	TRY(lst(c->dfd2, "f", &b));
	CHECK(ts_eq(a.st_mtim, b.st_mtim) && ts_eq(a.st_ctim, b.st_ctim),
	      "expected DIR2 mtime/ctime %lld.%09ld/%lld.%09ld, got %lld.%09ld/%lld.%09ld",
	      (long long)a.st_mtim.tv_sec, a.st_mtim.tv_nsec, (long long)a.st_ctim.tv_sec, a.st_ctim.tv_nsec,
	      (long long)b.st_mtim.tv_sec, b.st_mtim.tv_nsec, (long long)b.st_ctim.tv_sec, b.st_ctim.tv_nsec);
	return 0;
}

static int co_create(struct ctx *c)
{
	/* a negative lookup first, which a client may cache */
	CHECK(!exists(c->dfd2, "f") && !listed(c->dfd2, "f"), "expected f absent through DIR2 before");
	if (mkfile(c->dfd, "f", 0644, "born") < 0)
		return -1;
	CHECK(exists(c->dfd2, "f") && listed(c->dfd2, "f"), "expected DIR2 to see f (lookup and readdir)");
	CONTENT(c->dfd2, "f", "born");
	return 0;
}

static int co_unlink(struct ctx *c)
{
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	CHECK(exists(c->dfd2, "f"), "expected f visible through DIR2 before");
	if (unlinkat(c->dfd, "f", 0) < 0)
		return -1;
	CHECK(!exists(c->dfd2, "f") && !listed(c->dfd2, "f"), "expected f gone through DIR2");
	return 0;
}

static int co_rename(struct ctx *c)
{
	TRY(mkfile(c->dfd, "a", 0644, "from a"));
	TRY(mkfile(c->dfd, "b", 0644, "old b"));
	CONTENT(c->dfd2, "a", "from a");
	CONTENT(c->dfd2, "b", "old b");
	if (renameat(c->dfd, "a", c->dfd, "b") < 0)
		return -1;
	CHECK(!exists(c->dfd2, "a"), "expected a gone through DIR2");
	CONTENT(c->dfd2, "b", "from a");
	return 0;
}

static int co_mkdir_rmdir(struct ctx *c)
{
	struct stat st;
	if (mkdirat(c->dfd, "d", 0755) < 0)
		return -1;
	CHECK(lst(c->dfd2, "d", &st) == 0 && S_ISDIR(st.st_mode), "expected DIR2 to see directory d");
	if (unlinkat(c->dfd, "d", AT_REMOVEDIR) < 0)
		return -1;
	CHECK(!exists(c->dfd2, "d"), "expected d gone through DIR2");
	return 0;
}

static int co_chmod(struct ctx *c)
{
	struct stat st;
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(lst(c->dfd2, "f", &st));
	if (fchmodat(c->dfd, "f", 0600, 0) < 0)
		return -1;
	TRY(lst(c->dfd2, "f", &st));
	CHECK((st.st_mode & 07777) == 0600, "expected DIR2 mode 0600, got 0%o", st.st_mode & 07777);
	return 0;
}

static int co_chown(struct ctx *c)
{
	struct stat st;
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(lst(c->dfd2, "f", &st));
	if (fchownat(c->dfd, "f", 4242, 4343, 0) < 0)
		return -1;
	TRY(lst(c->dfd2, "f", &st));
	CHECK(st.st_uid == 4242 && st.st_gid == 4343, "expected DIR2 owner 4242:4343, got %u:%u",
	      (unsigned)st.st_uid, (unsigned)st.st_gid);
	return 0;
}

static int co_utimens(struct ctx *c)
{
	struct stat st;
	struct timespec ts[2] = { { 1000000000, 1 }, { 1100000000, 2 } };
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(lst(c->dfd2, "f", &st));
	if (utimensat(c->dfd, "f", ts, 0) < 0)
		return -1;
	TRY(lst(c->dfd2, "f", &st));
	CHECK(ts_eq(st.st_atim, ts[0]) && ts_eq(st.st_mtim, ts[1]), "expected DIR2 to show the new times");
	return 0;
}

static int co_link(struct ctx *c)
{
	struct stat st;
	TRY(mkfile(c->dfd, "a", 0644, "x"));
	TRY(lst(c->dfd2, "a", &st));
	if (linkat(c->dfd, "a", c->dfd, "b", 0) < 0)
		return -1;
	TRY(lst(c->dfd2, "a", &st));
	CHECK(st.st_nlink == 2 && exists(c->dfd2, "b"), "expected DIR2 to see b and nlink 2, got nlink %lu",
	      (unsigned long)st.st_nlink);
	return 0;
}

static int co_xattr(struct ctx *c)
{
	int fd, fd2;
	char buf[16] = { 0 };
	TRY(mkfile(c->dfd, "f", 0644, "x"));
	TRY(fd2 = openat(c->dfd2, "f", O_RDONLY));
	TRY(fd = openat(c->dfd, "f", O_RDONLY));
	if (fsetxattr(fd, "user.k", "v1", 2, 0) < 0)
		return -1;
	CHECK(fgetxattr(fd2, "user.k", buf, sizeof buf) == 2 && memcmp(buf, "v1", 2) == 0,
	      "expected DIR2 to read user.k = v1");
	if (fremovexattr(fd, "user.k") < 0)
		return -1;
	CHECK(fgetxattr(fd2, "user.k", buf, sizeof buf) < 0 && errno == ENODATA,
	      "expected user.k gone through DIR2");
	return 0;
}

static int co_append(struct ctx *c)
{
	int fd, fd2;
	TRY(mkfile(c->dfd, "f", 0644, ""));
	TRY(fd = openat(c->dfd, "f", O_WRONLY | O_APPEND));
	TRY(fd2 = openat(c->dfd2, "f", O_WRONLY | O_APPEND));
	/* each append lands at the end the other one just made */
	for (int i = 0; i < 3; i++)
		if (write(fd, "A", 1) != 1 || write(fd2, "b", 1) != 1)
			return -1;
	CONTENT(c->dfd, "f", "AbAbAb");
	CONTENT(c->dfd2, "f", "AbAbAb");
	return 0;
}

static int co_unlinked_open(struct ctx *c)
{
	int fd2;
	char buf[16] = { 0 };
	TRY(mkfile(c->dfd, "f", 0644, "kept alive"));
	TRY(fd2 = openat(c->dfd2, "f", O_RDWR));
	if (unlinkat(c->dfd, "f", 0) < 0)
		return -1;
	CHECK(!exists(c->dfd2, "f"), "expected the name gone through DIR2");
	CHECK(pread(fd2, buf, sizeof buf, 0) == 10 && strcmp(buf, "kept alive") == 0,
	      "expected DIR2's open fd to still read \"kept alive\", got \"%s\" (errno %s)", buf,
	      errname(errno));
	CHECK(pwrite(fd2, "!", 1, 10) == 1, "expected DIR2's open fd to still write (errno %s)", errname(errno));
	return 0;
}

static int co_truncate_zero(struct ctx *c)
{
	char buf[16];
	TRY(mkfile(c->dfd, "f", 0644, "cached bytes"));
	CONTENT(c->dfd2, "f", "cached bytes");
	int fd = openat(c->dfd, "f", O_WRONLY | O_TRUNC);
	if (fd < 0)
		return -1;
	ssize_t n = slurp(c->dfd2, "f", buf, sizeof buf);
	CHECK(n == 0, "expected DIR2 to read 0 bytes after O_TRUNC, got %zd", n);
	return 0;
}

/* ---- the table ---------------------------------------------------------- */

static const struct posix_case cases[] = {
	/* call         case                                               fn                        errno          also      needs */
	{ "open",      "O_CREAT creates a file with mode & ~umask",        open_creat,                0,             0,        0 },
	{ "open",      "O_CREAT|O_EXCL on a new name",                     open_excl_new,             0,             0,        0 },
	{ "open",      "O_CREAT|O_EXCL on an existing file",               open_excl_existing,        EEXIST,        0,        0 },
	{ "open",      "O_CREAT|O_EXCL on a dangling symlink",             open_excl_dangling,        EEXIST,        0,        0 },
	{ "open",      "O_TRUNC empties an existing file",                 open_trunc,                0,             0,        0 },
	{ "open",      "O_APPEND writes go to the end",                    open_append,               0,             0,        0 },
	{ "open",      "O_DIRECTORY on a file",                            open_directory_on_file,    ENOTDIR,       0,        0 },
	{ "open",      "a missing name without O_CREAT",                   open_missing,              ENOENT,        0,        0 },
	{ "open",      "a directory for writing",                          open_dir_for_write,        EISDIR,        0,        0 },
	{ "open",      "O_CREAT under a file component",                   open_under_file,           ENOTDIR,       0,        0 },
	{ "open",      "a 255-byte name",                                  open_name255,              0,             0,        0 },
	{ "open",      "a 256-byte name",                                  open_name256,              ENAMETOOLONG,  0,        0 },
	{ "creat",     "truncates an existing file",                       creat_truncates,           0,             0,        0 },

	{ "write",     "8 KiB written reads back",                         rw_roundtrip,              0,             0,        0 },
	{ "pwrite",    "pread/pwrite at an offset keep the file offset",   rw_pread_pwrite_offset,    0,             0,        0 },
	{ "read",      "at end of file returns 0",                         rw_read_eof,               0,             0,        0 },
	{ "pwrite",    "at 1 GiB + 1 sets the size",                       rw_large_offset,           0,             0,        0 },
	{ "read",      "a hole reads as zeros",                            rw_hole_zeros,             0,             0,        0 },
	{ "pwrite",    "a sparse file has st_blocks below its size",       rw_sparse_blocks,          0,             0,        NEED_SPARSE },
	{ "pwrite",    "at 5 GiB: sparse, size right",                     large_5g,                  0,             0,        0 },
	{ "read",      "a directory",                                      rw_read_dir,               EISDIR,        0,        0 },
	{ "write",     "an O_RDONLY fd",                                   rw_write_rdonly,           EBADF,         0,        0 },
	{ "read",      "an O_WRONLY fd",                                   rw_read_wronly,            EBADF,         0,        0 },
	{ "pwrite",    "a negative offset",                                rw_pwrite_negative,        EINVAL,        0,        0 },
	{ "lseek",     "SEEK_DATA skips a hole",                           seek_data,                 0,             0,        NEED_SEEKHOLE },
	{ "lseek",     "SEEK_HOLE finds the hole after data",              seek_hole,                 0,             0,        NEED_SEEKHOLE },
	{ "lseek",     "SEEK_HOLE in the last data finds EOF",             seek_hole_at_eof,          0,             0,        0 },
	{ "lseek",     "SEEK_DATA at EOF",                                 seek_data_past_eof,        ENXIO,         0,        0 },
	{ "lseek",     "SEEK_SET to a negative offset",                    seek_negative,             EINVAL,        0,        0 },

	{ "fsync",     "after a write returns 0",                          sync_fsync,                0,             0,        0 },
	{ "fdatasync", "after a write returns 0",                          sync_fdatasync,            0,             0,        0 },
	{ "fsync",     "a directory returns 0",                            sync_fsync_dir,            0,             0,        0 },
	{ "fsync",     "a closed fd",                                      sync_closed,               EBADF,         0,        0 },
	{ "write",     "O_SYNC write returns its count",                   sync_osync,                0,             0,        0 },
	{ "write",     "O_DSYNC write returns its count",                  sync_odsync,               0,             0,        0 },

	{ "ftruncate", "grow: new bytes read as zeros",                    trunc_grow,                0,             0,        0 },
	{ "ftruncate", "shrink: cut bytes are gone",                       trunc_shrink,              0,             0,        0 },
	{ "truncate",  "by path shrinks",                                  trunc_path,                0,             0,        0 },
	{ "ftruncate", "advances mtime and ctime",                         trunc_times,               0,             0,        0 },
	{ "truncate",  "a directory",                                      trunc_dir,                 EISDIR,        0,        0 },
	{ "ftruncate", "a negative length",                                trunc_negative,            EINVAL,        0,        0 },
	{ "ftruncate", "an O_RDONLY fd",                                   trunc_rdonly,              EINVAL,        EBADF,    0 },
	{ "truncate",  "a missing name",                                   trunc_missing,             ENOENT,        0,        0 },

	{ "fallocate", "mode 0 grows the size and allocates",              falloc_mode0,              0,             0,        NEED_FALLOC },
	{ "fallocate", "KEEP_SIZE allocates, size unchanged",              falloc_keep_size,          0,             0,        NEED_FALLOC },
	{ "fallocate", "PUNCH_HOLE|KEEP_SIZE reads zeros, rest intact",    falloc_punch,              0,             0,        NEED_PUNCH },
	{ "fallocate", "PUNCH_HOLE without KEEP_SIZE",                     falloc_punch_no_keep,      EOPNOTSUPP,    0,        NEED_PUNCH },
	{ "fallocate", "an O_RDONLY fd",                                   falloc_rdonly,             EBADF,         0,        NEED_FALLOC },
	{ "fallocate", "length 0",                                         falloc_zero_len,           EINVAL,        0,        NEED_FALLOC },

	{ "mkdir",     "mode & ~umask, nlink 2, parent nlink +1",          mkdir_ok,                  0,             0,        0 },
	{ "mkdir",     "an existing directory",                            mkdir_existing_dir,        EEXIST,        0,        0 },
	{ "mkdir",     "an existing file",                                 mkdir_existing_file,       EEXIST,        0,        0 },
	{ "mkdir",     "a missing parent",                                 mkdir_missing_parent,      ENOENT,        0,        0 },
	{ "mkdir",     "under a file component",                           mkdir_under_file,          ENOTDIR,       0,        0 },
	{ "mkdir",     "a 256-byte name",                                  mkdir_name256,             ENAMETOOLONG,  0,        0 },
	{ "rmdir",     "an empty directory, parent nlink -1",              rmdir_ok,                  0,             0,        0 },
	{ "rmdir",     "a non-empty directory",                            rmdir_nonempty,            ENOTEMPTY,     EEXIST,   0 },
	{ "rmdir",     "a missing name",                                   rmdir_missing,             ENOENT,        0,        0 },
	{ "rmdir",     "a file",                                           rmdir_file,                ENOTDIR,       0,        0 },
	{ "rmdir",     "\".\"",                                            rmdir_dot,                 EINVAL,        0,        0 },

	{ "unlink",    "removes the name, the other link stays",           unlink_ok,                 0,             0,        0 },
	{ "unlink",    "a directory (Linux: EISDIR, POSIX: EPERM)",        unlink_dir,                EISDIR,        0,        0 },
	{ "unlink",    "a missing name",                                   unlink_missing,            ENOENT,        0,        0 },
	{ "unlink",    "under a file component",                           unlink_under_file,         ENOTDIR,       0,        0 },
	{ "unlink",    "an open file stays usable through its fd",         unlink_open_file,          0,             0,        0 },
	{ "unlink",    "a symlink removes the link, not the target",       unlink_symlink,            0,             0,        0 },

	{ "rename",    "over an existing file",                            rename_over_file,          0,             0,        0 },
	{ "rename",    "a file across directories",                        rename_across_dirs,        0,             0,        0 },
	{ "rename",    "a directory across directories moves \"..\"",      rename_dir_across,         0,             0,        0 },
	{ "rename",    "a directory over an empty directory",              rename_dir_over_empty,     0,             0,        0 },
	{ "rename",    "a directory over a non-empty directory",           rename_dir_over_nonempty,  ENOTEMPTY,     EEXIST,   0 },
	{ "rename",    "a file over a directory",                          rename_file_over_dir,      EISDIR,        0,        0 },
	{ "rename",    "a directory over a file",                          rename_dir_over_file,      ENOTDIR,       0,        0 },
	{ "rename",    "RENAME_NOREPLACE onto an existing name",           rename_noreplace_existing, EEXIST,        0,        0 },
	{ "rename",    "RENAME_NOREPLACE onto a free name",                rename_noreplace_free,     0,             0,        0 },
	{ "rename",    "RENAME_EXCHANGE swaps two files",                  rename_exchange,           0,             0,        0 },
	{ "rename",    "RENAME_EXCHANGE swaps a file and a directory",     rename_exchange_file_dir,  0,             0,        0 },
	{ "rename",    "RENAME_EXCHANGE with a missing target",            rename_exchange_missing,   ENOENT,        0,        0 },
	{ "rename",    "a directory into its own subdirectory",            rename_into_own_subdir,    EINVAL,        0,        0 },
	{ "rename",    "onto another link of the same file is a no-op",    rename_hardlink_onto_itself,0,             0,        0 },
	{ "rename",    "a missing source",                                 rename_missing,            ENOENT,        0,        0 },
	{ "rename",    "to a 256-byte name",                               rename_name256,            ENAMETOOLONG,  0,        0 },
	{ "rename",    "across mounts (DIR to DIR2)",                      rename_across_mounts,      EXDEV,         0,        NEED_SECOND },

	{ "link",      "one inode, nlink 2, data shared",                  link_ok,                   0,             0,        0 },
	{ "link",      "onto an existing name",                            link_existing,             EEXIST,        0,        0 },
	{ "link",      "a directory",                                      link_dir,                  EPERM,         0,        0 },
	{ "link",      "a missing source",                                 link_missing,              ENOENT,        0,        0 },
	{ "link",      "to a 256-byte name",                               link_name256,              ENAMETOOLONG,  0,        0 },

	{ "symlink",   "readlink returns the target as written",           symlink_readlink,          0,             0,        0 },
	{ "symlink",   "a 1000-byte target",                               symlink_long_target,       0,             0,        0 },
	{ "symlink",   "dangling: lstat works, stat ENOENT",               symlink_dangling,          0,             0,        0 },
	{ "symlink",   "onto an existing name",                            symlink_existing,          EEXIST,        0,        0 },
	{ "symlink",   "to a directory is followed",                       symlink_follow_dir,        0,             0,        0 },
	{ "symlink",   "a 256-byte name",                                  symlink_name256,           ENAMETOOLONG,  0,        0 },
	{ "readlink",  "a regular file",                                   readlink_file,             EINVAL,        0,        0 },
	{ "open",      "a symlink loop",                                   symlink_loop,              ELOOP,         0,        0 },
	{ "open",      "O_NOFOLLOW on a symlink",                          symlink_nofollow,          ELOOP,         0,        0 },

	{ "chmod",     "sets the permission bits",                         chmod_file,                0,             0,        0 },
	{ "chmod",     "setgid and sticky on a directory",                 chmod_special_bits,        0,             0,        0 },
	{ "fchmod",    "setuid through an fd",                             chmod_fd,                  0,             0,        0 },
	{ "chmod",     "advances ctime, keeps mtime",                      chmod_ctime,               0,             0,        0 },
	{ "chmod",     "a missing name",                                   chmod_missing,             ENOENT,        0,        0 },
	{ "chown",     "sets uid and gid; -1 keeps them",                  chown_file,                0,             0,        0 },
	{ "chown",     "clears setuid and setgid",                         chown_clears_setuid,       0,             0,        0 },
	{ "chown",     "AT_SYMLINK_NOFOLLOW changes the link",             chown_symlink_nofollow,    0,             0,        0 },
	{ "chown",     "a missing name",                                   chown_missing,             ENOENT,        0,        0 },
	{ "utimensat", "explicit times to the nanosecond",                 utimens_explicit,          0,             0,        0 },
	{ "utimensat", "UTIME_NOW sets now",                               utimens_now,               0,             0,        0 },
	{ "utimensat", "NULL times set now",                               utimens_null,              0,             0,        0 },
	{ "utimensat", "UTIME_OMIT keeps that time",                       utimens_omit,              0,             0,        0 },
	{ "utimensat", "advances ctime",                                   utimens_ctime,             0,             0,        0 },
	{ "utimensat", "a missing name",                                   utimens_missing,           ENOENT,        0,        0 },
	{ "write",     "advances mtime and ctime",                         write_updates_mtime,       0,             0,        0 },
	{ "open",      "O_CREAT advances the directory's mtime",           create_updates_dir_mtime,  0,             0,        0 },

	{ "perm",      "other uid reads root's 0644 file",                 perm_read_0644,            0,             0,        NEED_OTHER },
	{ "perm",      "other uid reads root's 0600 file",                 perm_read_0600,            EACCES,        0,        NEED_OTHER },
	{ "perm",      "other uid writes root's 0644 file",                perm_write_0644,           EACCES,        0,        NEED_OTHER },
	{ "perm",      "other uid creates in root's 0755 dir",             perm_create_0755,          EACCES,        0,        NEED_OTHER },
	{ "perm",      "other uid mkdirs in root's 0755 dir",              perm_mkdir_0755,           EACCES,        0,        NEED_OTHER },
	{ "acl",       "other uid reads a 0600 file its ACL entry allows",  acl_read_granted,          0,             0,        NEED_OTHER | NEED_ACL },
	{ "acl",       "other uid writes where its ACL entry allows read",  acl_write_not_granted,     EACCES,        0,        NEED_OTHER | NEED_ACL },
	{ "acl",       "an ACL's mask shows as the group mode bits",       acl_mode_shows_mask,       0,             0,        NEED_OTHER | NEED_ACL },
	{ "acl",       "a default ACL, not the umask, sets new modes",     acl_default_beats_umask,   0,             0,        NEED_ACL },
	{ "acl",       "without a default ACL the umask (077) applies",    acl_umask_without_default, 0,             0,        0 },
	{ "perm",      "other uid opens a file in root's 0700 dir",        perm_search_0700,          EACCES,        0,        NEED_OTHER },
	{ "perm",      "other uid chmods root's file",                     perm_chmod_others,         EPERM,         0,        NEED_OTHER },
	{ "perm",      "other uid chowns its file to root",                perm_chown_give_away,      EPERM,         0,        NEED_OTHER },
	{ "perm",      "other uid sets explicit times on root's file",     perm_utimes_others,        EPERM,         0,        NEED_OTHER },
	{ "perm",      "other uid sets now on root's 0644 file",           perm_utimes_now_readonly,  EACCES,        0,        NEED_OTHER },
	{ "perm",      "other uid sets now on root's 0666 file",           perm_utimes_now_writable,  0,             0,        NEED_OTHER },
	{ "perm",      "other uid unlinks root's file in a sticky dir",    perm_sticky_unlink,        EPERM,         EACCES,   NEED_OTHER },
	{ "perm",      "other uid unlinks its own file in a sticky dir",   perm_sticky_unlink_own,    0,             0,        NEED_OTHER },
	{ "perm",      "files and dirs other uid creates are its own",     perm_owner_of_created,     0,             0,        NEED_OTHER },
	{ "perm",      "other uid sets a user xattr on root's file",       perm_setxattr_others,      EACCES,        0,        NEED_OTHER | NEED_XATTR },

	{ "xattr",     "user.* set and get, binary and empty values",      xattr_set_get,             0,             0,        NEED_XATTR },
	{ "xattr",     "list holds the names set",                         xattr_list,                0,             0,        NEED_XATTR },
	{ "xattr",     "XATTR_REPLACE an existing name",                   xattr_replace,             0,             0,        NEED_XATTR },
	{ "xattr",     "remove, then get is ENODATA",                      xattr_remove,              0,             0,        NEED_XATTR },
	{ "xattr",     "on a directory",                                   xattr_dir,                 0,             0,        NEED_XATTR },
	{ "xattr",     "XATTR_CREATE an existing name",                    xattr_create_existing,     EEXIST,        0,        NEED_XATTR },
	{ "xattr",     "XATTR_REPLACE a missing name",                     xattr_replace_missing,     ENODATA,       0,        NEED_XATTR },
	{ "xattr",     "get a missing name",                               xattr_get_missing,         ENODATA,       0,        NEED_XATTR },
	{ "xattr",     "remove a missing name",                            xattr_remove_missing,      ENODATA,       0,        NEED_XATTR },
	{ "xattr",     "get into a too small buffer",                      xattr_small_buffer,        ERANGE,        0,        NEED_XATTR },

	{ "statfs",    "fstatfs is sane",                                  statfs_sane,               0,             0,        0 },
	{ "statfs",    "fstatvfs is sane",                                 fstatvfs_sane,             0,             0,        0 },

	{ "ebadf",     "read a closed fd",                                 badf_read,                 EBADF,         0,        0 },
	{ "ebadf",     "write a closed fd",                                badf_write,                EBADF,         0,        0 },
	{ "ebadf",     "fstat a closed fd",                                badf_fstat,                EBADF,         0,        0 },
	{ "ebadf",     "close a closed fd",                                badf_close,                EBADF,         0,        0 },
	{ "ebadf",     "fchmod a closed fd",                               badf_fchmod,               EBADF,         0,        0 },
	{ "ebadf",     "openat relative to a closed dirfd",                badf_openat,               EBADF,         0,        0 },

	{ "coherence", "data written through DIR, read through DIR2",      co_data,                   0,             0,        NEED_SECOND },
	{ "coherence", "data written through DIR2, read through DIR",      co_data_back,              0,             0,        NEED_SECOND },
	{ "coherence", "size after grow and shrink",                       co_size,                   0,             0,        NEED_SECOND },
	{ "coherence", "O_TRUNC drops cached data",                        co_truncate_zero,          0,             0,        NEED_SECOND },
	{ "coherence", "mtime and ctime after a write",                    co_mtime,                  0,             0,        NEED_SECOND },
	{ "coherence", "a created name (lookup and readdir)",              co_create,                 0,             0,        NEED_SECOND },
	{ "coherence", "an unlinked name",                                 co_unlink,                 0,             0,        NEED_SECOND },
	{ "coherence", "rename over an existing name",                     co_rename,                 0,             0,        NEED_SECOND },
	{ "coherence", "mkdir and rmdir",                                  co_mkdir_rmdir,            0,             0,        NEED_SECOND },
	{ "coherence", "hard link count",                                  co_link,                   0,             0,        NEED_SECOND },
	{ "coherence", "mode after chmod",                                 co_chmod,                  0,             0,        NEED_SECOND },
	{ "coherence", "owner after chown",                                co_chown,                  0,             0,        NEED_SECOND },
	{ "coherence", "times after utimensat",                            co_utimens,                0,             0,        NEED_SECOND },
	{ "coherence", "xattr set and removed",                            co_xattr,                  0,             0,        NEED_SECOND | NEED_XATTR },
	{ "coherence", "an ACL set through DIR lets other uid in via DIR2", co_acl,                   0,             0,        NEED_SECOND | NEED_OTHER | NEED_ACL },
	{ "coherence", "O_APPEND through both mounts interleaves",         co_append,                 0,             0,        NEED_SECOND },
	{ "coherence", "a file open through DIR2 outlives unlink in DIR",  co_unlinked_open,          0,             0,        NEED_SECOND },
};

/* ---- capability probes -------------------------------------------------- */

/* Decide what this filesystem can do, in a scratch directory: only what a
 * kernel filesystem may legitimately lack is probed; everything else is
 * required. An error other than "not supported" counts as supported, so the
 * dependent cases run and report it. */
static unsigned probe_caps(int dfd)
{
	unsigned caps = 0;
	int fd = openat(dfd, "probe", O_RDWR | O_CREAT, 0644);
	if (fd < 0)
		return 0;
	if (fsetxattr(fd, "user.probe", "1", 1, 0) == 0 || errno != EOPNOTSUPP)
		caps |= NEED_XATTR;
	char acl[64];
	if (fgetxattr(fd, "system.posix_acl_access", acl, sizeof acl) >= 0 || errno != EOPNOTSUPP)
		caps |= NEED_ACL;
	if (fallocate(fd, 0, 0, 64 * KiB) == 0 || errno != EOPNOTSUPP)
		caps |= NEED_FALLOC;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4 * KiB) == 0 || errno != EOPNOTSUPP)
		caps |= NEED_PUNCH;
	close(fd);

	fd = openat(dfd, "sparse", O_RDWR | O_CREAT, 0644);
	if (fd < 0)
		return caps;
	struct stat st;
	if (pwrite(fd, "a", 1, 0) == 1 && pwrite(fd, "z", 1, 64 * MiB) == 1 && fsync(fd) == 0) {
		off_t hole = lseek(fd, 0, SEEK_HOLE);
		if (hole >= 0 && hole < 64 * MiB)
			caps |= NEED_SEEKHOLE;
		if (fstat(fd, &st) == 0 && st.st_blocks * 512 < 64 * MiB)
			caps |= NEED_SPARSE;
	}
	close(fd);
	return caps;
}

/* ---- the runner --------------------------------------------------------- */

/* remove NAME under DFD and everything below it; best effort */
static void rm_tree(int dfd, const char *name)
{
	if (unlinkat(dfd, name, 0) == 0 || (errno != EISDIR && errno != EPERM))
		return;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd >= 0) {
		DIR *d = fdopendir(fd);
		if (d) {
			struct dirent *de;
			while ((de = readdir(d)))
				if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
					rm_tree(fd, de->d_name);
			closedir(d);
		} else {
			close(fd);
		}
	}
	unlinkat(dfd, name, AT_REMOVEDIR);
}

/* the line printed if a case hangs: prepared before it runs, for the handler */
static char hang_line[512];
static void on_alarm(int sig)
{
	(void)sig;
	ssize_t n = write(1, hang_line, strlen(hang_line));
	(void)n;
	_exit(1);
}
#define CASE_TIMEOUT 120 /* seconds; the 5 GiB case is the slowest */

static void usage(void)
{
	fprintf(stderr,
		"usage: posix-suite DIR [--other-uid UID] [--second DIR2] [--only CALL]\n"
		"  DIR           directory to test in (a fresh subdirectory is made and removed)\n"
		"  --other-uid   run permission cases as UID (needs root)\n"
		"  --second      DIR2 is the same filesystem through another mount: coherence cases\n"
		"  --only        run only the cases of CALL (e.g. rename)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *dir2 = NULL, *only = NULL;
	long other = -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--other-uid") == 0 && i + 1 < argc) {
			char *end;
			other = strtol(argv[++i], &end, 10);
			if (*end || other <= 0)
				usage();
		} else if (strcmp(argv[i], "--second") == 0 && i + 1 < argc) {
			dir2 = argv[++i];
		} else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
			only = argv[++i];
		} else if (argv[i][0] == '-' || dir) {
			usage();
		} else {
			dir = argv[i];
		}
	}
	if (!dir)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	umask(022); /* mode checks assume it */

	struct ctx c = { .dfd = -1, .dfd2 = -1 };
	char work[64];
	snprintf(work, sizeof work, "posix-suite.%d", (int)getpid());
	int top = open(dir, O_RDONLY | O_DIRECTORY);
	if (top < 0 || mkdirat(top, work, 0755) < 0) {
		fprintf(stderr, "posix-suite: cannot make %s/%s: %s\n", dir, work, strerror(errno));
		return 2;
	}
	int wfd = openat(top, work, O_RDONLY | O_DIRECTORY);
	int wfd2 = -1;
	if (dir2) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir2, work);
		wfd2 = open(path, O_RDONLY | O_DIRECTORY);
		if (wfd2 < 0) {
			fprintf(stderr, "posix-suite: %s: %s (is DIR2 the same filesystem as DIR?)\n",
				path, strerror(errno));
			rm_tree(top, work);
			return 2;
		}
		c.caps |= NEED_SECOND;
	}
	if (other > 0) {
		if (geteuid() != 0) {
			fprintf(stderr, "posix-suite: --other-uid needs root\n");
			return 2;
		}
		struct passwd *pw = getpwuid((uid_t)other);
		c.other_uid = (uid_t)other;
		c.other_gid = pw ? pw->pw_gid : (gid_t)other;
		c.caps |= NEED_OTHER;
	}
	if (mkdirat(wfd, "probe", 0755) == 0) {
		int pfd = openat(wfd, "probe", O_RDONLY | O_DIRECTORY);
		c.caps |= probe_caps(pfd);
		close(pfd);
		rm_tree(wfd, "probe");
	}
	printf("# posix-suite %s%s%s\n# caps:", dir, dir2 ? " --second " : "", dir2 ? dir2 : "");
	for (size_t b = 0; b < sizeof cap_names / sizeof *cap_names; b++)
		printf(" %s=%s", cap_names[b], c.caps & (1u << b) ? "yes" : "no");
	printf("\n");

	struct sigaction sa = { .sa_handler = on_alarm };
	sigaction(SIGALRM, &sa, NULL);
	int passed = 0, failed = 0, skipped = 0;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const struct posix_case *t = &cases[i];
		if (only && strcmp(only, t->call) != 0)
			continue;
		unsigned missing = t->needs & ~c.caps;
		if (missing) {
			size_t b = 0;
			while (!(missing & (1u << b)))
				b++;
			printf("ok - posix: %s: %s # SKIP no %s\n", t->call, t->case_name, cap_names[b]);
			skipped++;
			continue;
		}
		char name[16];
		snprintf(name, sizeof name, "%03zu", i);
		if (mkdirat(wfd, name, 0755) < 0 || (c.dfd = openat(wfd, name, O_RDONLY | O_DIRECTORY)) < 0) {
			printf("not ok - posix: %s: %s: setup: mkdir %s failed (errno %s)\n", t->call,
			       t->case_name, name, errname(errno));
			failed++;
			continue;
		}
		if (dir2)
			c.dfd2 = openat(wfd2, name, O_RDONLY | O_DIRECTORY);
		c.msg[0] = 0;
		snprintf(hang_line, sizeof hang_line, "not ok - posix: %s: %s: hung for %d s\n",
			 t->call, t->case_name, CASE_TIMEOUT);
		int mark = lowest_free_fd();
		alarm(CASE_TIMEOUT);
		errno = 0;
		int r = t->fn(&c);
		int e = errno;
		alarm(0);
		close_range((unsigned)mark, ~0U, 0);

		char why[600] = "";
		if (dir2 && c.dfd2 < 0)
			snprintf(why, sizeof why, "DIR2 did not show the case directory %s", name);
		else if (r == FAIL)
			snprintf(why, sizeof why, "%s", c.msg);
		else if (!t->expect_errno && r != 0)
			snprintf(why, sizeof why, "expected success, got -1 (errno %s: %s)", errname(e), strerror(e));
		else if (t->expect_errno && r == 0)
			snprintf(why, sizeof why, "expected %s, got success", errname(t->expect_errno));
		else if (t->expect_errno && e != t->expect_errno && (!t->also_errno || e != t->also_errno))
			snprintf(why, sizeof why, "expected %s, got -1 (errno %s)", errname(t->expect_errno),
				 errname(e));
		if (why[0]) {
			printf("not ok - posix: %s: %s: %s\n", t->call, t->case_name, why);
			failed++;
		} else {
			printf("ok - posix: %s: %s\n", t->call, t->case_name);
			passed++;
		}
		close(c.dfd);
		if (c.dfd2 >= 0)
			close(c.dfd2);
		c.dfd = c.dfd2 = -1;
		rm_tree(wfd, name);
	}
	rm_tree(top, work);
	printf("# posix: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed ? 1 : 0;
}

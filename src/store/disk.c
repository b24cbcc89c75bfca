/* disk — see disk.h. */
#include "disk.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------ fault injection */

/* FK_ASYNC and FK_SHORT act on asynchronous reads only (disk_read_result) */
enum { FK_READ = 1, FK_WRITE = 2, FK_FLUSH = 4, FK_ASYNC = 8, FK_SHORT = 16 };

struct disk_faults {
	pthread_mutex_t lock;
	char path[4096];
	struct timespec mtime;
	int nrules;
	struct { unsigned kinds; uint64_t off, len; } rule[16];
	int nstalls;          /* "stall write OFF LEN": such writes wait while the rule stands */
	struct { uint64_t off, len; } stall[4];
	long after;           /* -1: off */
	uint64_t ops;
	int vol;              /* "volatile": a write cache that a crash loses */
	struct vblock **vc;   /* VC_BUCKETS chains of cached blocks */
	uint64_t vcount;
};

/* The volatile write cache: like a disk's, what is written stays in memory
 * (here: the daemon's, so SIGKILL is a power cut) until a flush or FUA. */
#define VC_BUCKETS 4096u
#define VC_MAX     16384u  /* 64 MiB: then written back (as a disk may do) */
struct vblock { uint64_t blk; struct vblock *next; uint8_t data[DISK_ALIGN]; };

static int vc_writeback(struct disk *d)
{
	struct disk_faults *f = d->faults;
	int rc = 0;
	for (unsigned i = 0; f->vc && i < VC_BUCKETS; i++) {
		while (f->vc[i]) {
			struct vblock *v = f->vc[i];
			f->vc[i] = v->next;
			if (!rc)
				rc = pwrite_full(d->bfd, v->data, DISK_ALIGN, (off_t)(v->blk * DISK_ALIGN));
			free(v);
		}
	}
	f->vcount = 0;
	return rc;
}

static struct vblock **vc_slot(struct disk_faults *f, uint64_t blk)
{
	struct vblock **pp = &f->vc[blk % VC_BUCKETS];
	while (*pp && (*pp)->blk != blk)
		pp = &(*pp)->next;
	return pp;
}

static int vc_write(struct disk *d, const uint8_t *buf, size_t len, uint64_t off)
{
	struct disk_faults *f = d->faults;
	if (!f->vc && !(f->vc = calloc(VC_BUCKETS, sizeof *f->vc)))
		return -ENOMEM;
	for (uint64_t pos = off; pos < off + len;) {
		uint64_t blk = pos / DISK_ALIGN, bs = blk * DISK_ALIGN;
		uint64_t end = bs + DISK_ALIGN < off + len ? bs + DISK_ALIGN : off + len;
		struct vblock **pp = vc_slot(f, blk);
		if (!*pp) {
			struct vblock *v = calloc(1, sizeof *v);
			if (!v)
				return -ENOMEM;
			v->blk = blk;
			if (pos != bs || end != bs + DISK_ALIGN) /* partial: start from the disk's copy */
				(void)!pread(d->bfd, v->data, DISK_ALIGN, (off_t)bs);
			*pp = v;
			f->vcount++;
		}
		memcpy((*pp)->data + (pos - bs), buf + (pos - off), end - pos);
		pos = end;
	}
	return f->vcount > VC_MAX ? vc_writeback(d) : 0;
}

static void vc_overlay(struct disk *d, uint8_t *buf, size_t len, uint64_t off)
{
	struct disk_faults *f = d->faults;
	for (uint64_t pos = off; f->vc && pos < off + len;) {
		uint64_t blk = pos / DISK_ALIGN, bs = blk * DISK_ALIGN;
		uint64_t end = bs + DISK_ALIGN < off + len ? bs + DISK_ALIGN : off + len;
		struct vblock *v = *vc_slot(f, blk);
		if (v)
			memcpy(buf + (pos - off), v->data + (pos - bs), end - pos);
		pos = end;
	}
}

static void vc_drop(struct disk *d, uint64_t off, size_t len)
{
	struct disk_faults *f = d->faults;
	for (uint64_t blk = off / DISK_ALIGN; f->vc && len && blk <= (off + len - 1) / DISK_ALIGN; blk++) {
		struct vblock **pp = vc_slot(f, blk);
		if (*pp) {
			struct vblock *v = *pp;
			*pp = v->next;
			free(v);
			f->vcount--;
		}
	}
}

/* Forget the cache without writing it (the close of a crashed daemon never
 * happens; a clean close flushed it). */
static void vc_drop_all(struct disk *d)
{
	struct disk_faults *f = d->faults;
	for (unsigned i = 0; f->vc && i < VC_BUCKETS; i++)
		while (f->vc[i]) {
			struct vblock *v = f->vc[i];
			f->vc[i] = v->next;
			free(v);
		}
}

/* 1 and *rc set when the volatile cache handled the request. */
static int vc_io(struct disk *d, int op, void *buf, size_t len, uint64_t off, int *rc)
{
	struct disk_faults *f = d->faults;
	if (!f || !f->vol)
		return 0;
	pthread_mutex_lock(&f->lock);
	switch (op) {
	case 'r':
		*rc = pread_full(d->bfd, buf, len, (off_t)off);
		if (!*rc)
			vc_overlay(d, buf, len, off);
		break;
	case 'w':
		*rc = vc_write(d, buf, len, off);
		break;
	case 'F': /* FUA: only this write becomes durable */
		vc_drop(d, off, len);
		*rc = pwrite_full(d->bfd, buf, len, (off_t)off);
		if (!*rc && fdatasync(d->bfd) < 0)
			*rc = -errno;
		break;
	default: /* flush, or before trim/zero: everything */
		*rc = vc_writeback(d);
		if (!*rc && op == 'f' && fdatasync(d->bfd) < 0)
			*rc = -errno;
		break;
	}
	pthread_mutex_unlock(&f->lock);
	return op == 'r' || op == 'w' || op == 'F' || op == 'f';
}

static void faults_load(struct disk_faults *f)
{
	struct stat st;
	if (stat(f->path, &st) < 0) {
		f->nrules = 0;
		f->nstalls = 0;
		f->after = -1;
		f->mtime = (struct timespec){ 0, 0 };
		return;
	}
	if (st.st_mtim.tv_sec == f->mtime.tv_sec && st.st_mtim.tv_nsec == f->mtime.tv_nsec)
		return;
	f->mtime = st.st_mtim;
	f->nrules = 0;
	f->nstalls = 0;
	f->after = -1;
	int was_vol = f->vol;
	f->vol = 0;
	FILE *fp = fopen(f->path, "r");
	char line[256], kind[16];
	unsigned long long a, b;
	long n;
	while (fp && fgets(line, sizeof line, fp)) {
		if (!strncmp(line, "volatile", 8)) {
			f->vol = 1;
		} else if (sscanf(line, "eio-after %ld", &n) == 1) {
			f->after = n;
			f->ops = 0;
		} else if (sscanf(line, "stall write %llu %llu", &a, &b) == 2 && f->nstalls < 4) {
			f->stall[f->nstalls].off = a;
			f->stall[f->nstalls].len = b;
			f->nstalls++;
		} else if (f->nrules < 16 && (sscanf(line, "eio %15s %llu %llu", kind, &a, &b) == 3 ||
					      sscanf(line, "short read %llu %llu", &a, &b) == 2)) {
			unsigned k = line[0] == 's' /* short read */ ? FK_SHORT : !strcmp(kind, "read") ? FK_READ :
				     !strcmp(kind, "write") ? FK_WRITE : !strcmp(kind, "flush") ? FK_FLUSH :
				     !strcmp(kind, "async-read") ? FK_ASYNC : FK_READ | FK_WRITE | FK_FLUSH;
			f->rule[f->nrules].kinds = k;
			f->rule[f->nrules].off = a;
			f->rule[f->nrules].len = b;
			f->nrules++;
		}
	}
	if (fp)
		fclose(fp);
	if (was_vol)
		f->vol = 1; /* once on, the cache stays on: its blocks are not on disk yet */
}

/* [off, off + len) and [o2, o2 + l2) share a byte */
static int overlaps(uint64_t off, uint64_t len, uint64_t o2, uint64_t l2)
{
	return off < o2 + l2 && o2 < off + len;
}

/* A write in a stalled range (under f->lock, rules loaded): 1. */
static int stalled(struct disk_faults *f, uint64_t off, uint64_t len)
{
	for (int i = 0; i < f->nstalls; i++)
		if (overlaps(off, len, f->stall[i].off, f->stall[i].len))
			return 1;
	return 0;
}

static int fault(struct disk *d, unsigned kind, uint64_t off, uint64_t len)
{
	struct disk_faults *f = d->faults;
	int hit = 0;
	if (!f)
		return 0;
	pthread_mutex_lock(&f->lock);
	faults_load(f);
	/* a stalled write waits, the rules re-read every 10 ms, until its
	 * range is no longer stalled (as a disk that stops answering) */
	while (kind == FK_WRITE && stalled(f, off, len)) {
		pthread_mutex_unlock(&f->lock);
		nanosleep(&(struct timespec){ 0, 10000000L }, NULL);
		pthread_mutex_lock(&f->lock);
		faults_load(f);
	}
	if (f->after >= 0 && f->ops++ >= (uint64_t)f->after)
		hit = 1;
	for (int i = 0; i < f->nrules && !hit; i++)
		if ((f->rule[i].kinds & kind) &&
		    (kind == FK_FLUSH || overlaps(off, len, f->rule[i].off, f->rule[i].len)))
			hit = 1;
	pthread_mutex_unlock(&f->lock);
	return hit ? -EIO : 0;
}

int disk_open(struct disk **out, const char *path, int rdonly)
{
	struct stat st;
	struct disk *d;
	int fd = open(path, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	d = calloc(1, sizeof *d);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	d->fd = d->bfd = fd;
	int dfd = open(path, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_DIRECT);
	if (dfd >= 0)
		d->fd = dfd;
	snprintf(d->path, sizeof d->path, "%s", path);
	if (S_ISBLK(st.st_mode)) {
		d->is_blockdev = 1;
		int ro = 0;
		if (ioctl(fd, BLKGETSIZE64, &d->size) < 0) {
			int e = -errno;
			disk_close(d);
			return e;
		}
		/* a read-only block device still opens O_RDWR; its writes fail later */
		if (!rdonly && ioctl(fd, BLKROGET, &ro) == 0 && ro) {
			disk_close(d);
			return -EROFS;
		}
	} else if (S_ISREG(st.st_mode)) {
		d->size = (uint64_t)st.st_size;
	} else {
		disk_close(d);
		return -EINVAL;
	}
	const char *fp = getenv("DIPOLE_FAULTS");
	if (fp && *fp && (d->faults = calloc(1, sizeof *d->faults))) {
		pthread_mutex_init(&d->faults->lock, NULL);
		snprintf(d->faults->path, sizeof d->faults->path, "%s", fp);
		d->faults->after = -1;
	}
	*out = d;
	return 0;
}

void disk_close(struct disk *d)
{
	if (!d)
		return;
	if (d->fd != d->bfd)
		close(d->fd);
	close(d->bfd);
	if (d->faults) {
		vc_drop_all(d);
		free(d->faults->vc);
	}
	free(d->faults);
	free(d);
}

/* Per-thread aligned bounce buffer for direct I/O from unaligned memory,
 * allocated on first use and grown only for larger requests; freed by the
 * key destructor when the thread exits. */
struct bounce { size_t cap; void *buf; };
static pthread_key_t bounce_key;
static pthread_once_t bounce_once = PTHREAD_ONCE_INIT;

static void bounce_free(void *p)
{
	struct bounce *b = p;
	free(b->buf);
	free(b);
}

static void bounce_init(void)
{
	pthread_key_create(&bounce_key, bounce_free);
}

static void *bounce_get(size_t len)
{
	struct bounce *b;

	pthread_once(&bounce_once, bounce_init);
	b = pthread_getspecific(bounce_key);
	if (!b) {
		b = calloc(1, sizeof *b);
		if (!b || pthread_setspecific(bounce_key, b)) {
			free(b);
			return NULL;
		}
	}
	if (b->cap < len) {
		void *p = NULL;
		size_t cap = len < (1u << 20) ? (1u << 20) : len;
		if (posix_memalign(&p, DISK_ALIGN, cap))
			return NULL;
		free(b->buf);
		b->buf = p;
		b->cap = cap;
	}
	return b->buf;
}

static int direct_ok(const struct disk *d, size_t len, uint64_t off)
{
	return d->fd != d->bfd && ((off | len) & (DISK_ALIGN - 1)) == 0;
}

static int buf_aligned(const void *buf)
{
	return ((uintptr_t)buf & (DISK_ALIGN - 1)) == 0;
}

int disk_pread(struct disk *d, void *buf, size_t len, uint64_t off)
{
	int vrc;
	if (d->faults && fault(d, FK_READ, off, len))
		return -EIO;
	if (d->faults && vc_io(d, 'r', buf, len, off, &vrc))
		return vrc;
	if (!direct_ok(d, len, off))
		return pread_full(d->bfd, buf, len, (off_t)off);
	if (buf_aligned(buf))
		return pread_full(d->fd, buf, len, (off_t)off);
	void *b = bounce_get(len);
	if (!b)
		return pread_full(d->bfd, buf, len, (off_t)off);
	int rc = pread_full(d->fd, b, len, (off_t)off);
	if (!rc)
		memcpy(buf, b, len);
	return rc;
}

/* With faults armed, asynchronous reads are allowed only while no rule
 * but "short read", "eio async-read" and "stall write" stands: the others
 * must see each read (an error rule, the eio-after count, the volatile
 * cache's blocks). */
static int faults_allow_async(struct disk_faults *f)
{
	pthread_mutex_lock(&f->lock);
	faults_load(f);
	int ok = f->after < 0 && !f->vol && !f->vcount;
	for (int i = 0; i < f->nrules; i++)
		if (f->rule[i].kinds & ~(unsigned)(FK_ASYNC | FK_SHORT))
			ok = 0;
	pthread_mutex_unlock(&f->lock);
	return ok;
}

int disk_read_fd(struct disk *d, const void *buf, size_t len, uint64_t off)
{
	if (!direct_ok(d, len, off) || !buf_aligned(buf) || (d->faults && !faults_allow_async(d->faults)))
		return -1;
	return d->fd;
}

long disk_read_result(struct disk *d, void *buf, uint64_t off, size_t len, long res)
{
	struct disk_faults *f = d->faults;
	if (!f || res < 0)
		return res;
	pthread_mutex_lock(&f->lock);
	for (int i = 0; i < f->nrules && res >= 0; i++)
		if (overlaps(off, len, f->rule[i].off, f->rule[i].len))
			res = f->rule[i].kinds == FK_SHORT ? res / 2 : f->rule[i].kinds == FK_ASYNC ? -EIO : res;
	pthread_mutex_unlock(&f->lock);
	if (res >= 0 && res < (long)len) /* what a short read did not bring is not there */
		memset((uint8_t *)buf + res, 0xee, len - (size_t)res);
	return res;
}

int disk_pwrite(struct disk *d, const void *buf, size_t len, uint64_t off)
{
	int vrc;
	if (d->faults && fault(d, FK_WRITE, off, len))
		return -EIO;
	if (d->faults && vc_io(d, 'w', (void *)buf, len, off, &vrc))
		return vrc;
	if (!direct_ok(d, len, off))
		return pwrite_full(d->bfd, buf, len, (off_t)off);
	if (buf_aligned(buf))
		return pwrite_full(d->fd, buf, len, (off_t)off);
	void *b = bounce_get(len);
	if (!b)
		return pwrite_full(d->bfd, buf, len, (off_t)off);
	memcpy(b, buf, len);
	return pwrite_full(d->fd, b, len, (off_t)off);
}

int disk_pwrite_fua(struct disk *d, const void *buf, size_t len, uint64_t off)
{
	int vrc;
	if (d->faults && fault(d, FK_WRITE, off, len))
		return -EIO;
	if (d->faults && vc_io(d, 'F', (void *)buf, len, off, &vrc))
		return vrc;
	if (direct_ok(d, len, off) && buf_aligned(buf)) {
		struct iovec iov = { (void *)buf, len };
		ssize_t n = pwritev2(d->fd, &iov, 1, (off_t)off, RWF_DSYNC);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno != EOPNOTSUPP && errno != EINVAL)
			return -errno;
		/* short or unsupported: fall through to write + flush */
	}
	int rc = disk_pwrite(d, buf, len, off);
	return rc ? rc : disk_flush(d);
}

int disk_flush(struct disk *d)
{
	int vrc;
	if (d->faults && fault(d, FK_FLUSH, 0, 0))
		return -EIO;
	if (d->faults && vc_io(d, 'f', NULL, 0, 0, &vrc))
		return vrc;
	/* syncs the inode: data written through either descriptor */
	return fdatasync(d->bfd) < 0 ? -errno : 0;
}

int disk_trim(struct disk *d, uint64_t off, uint64_t len)
{
	int vrc = 0;
	if (d->faults && fault(d, FK_WRITE, off, len))
		return -EIO;
	if (d->faults && (vc_io(d, 'b', NULL, 0, 0, &vrc), d->faults->vol) && vrc)
		return vrc;
	if (d->is_blockdev) {
		uint64_t r[2] = { off, len };
		/* discard is advisory: a device without it still did nothing wrong */
		if (ioctl(d->bfd, BLKDISCARD, r) < 0 && errno != EOPNOTSUPP)
			return -errno;
		return 0;
	}
	if (fallocate(d->bfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0 &&
	    errno != EOPNOTSUPP)
		return -errno;
	return 0;
}

static int zero_by_writing(struct disk *d, uint64_t off, uint64_t len)
{
	static const char zeroes[65536];
	while (len) {
		size_t n = len < sizeof zeroes ? (size_t)len : sizeof zeroes;
		int rc = disk_pwrite(d, zeroes, n, off);
		if (rc)
			return rc;
		off += n;
		len -= n;
	}
	return 0;
}

int disk_zero(struct disk *d, uint64_t off, uint64_t len, int no_hole)
{
	int vrc = 0;
	if (d->faults && fault(d, FK_WRITE, off, len))
		return -EIO;
	if (d->faults && (vc_io(d, 'b', NULL, 0, 0, &vrc), d->faults->vol) && vrc)
		return vrc;
	if (d->is_blockdev) {
		uint64_t r[2] = { off, len };
		if (ioctl(d->bfd, BLKZEROOUT, r) == 0)
			return 0;
		return zero_by_writing(d, off, len);
	}
	int mode = no_hole ? FALLOC_FL_ZERO_RANGE : (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
	if (fallocate(d->bfd, mode, (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	return zero_by_writing(d, off, len);
}

int disk_refresh_size(struct disk *d, uint64_t *bytes)
{
	uint64_t sz = 0;
	struct stat st;

	if (d->is_blockdev) {
		if (ioctl(d->bfd, BLKGETSIZE64, &sz) < 0)
			return -errno;
	} else {
		if (fstat(d->bfd, &st) < 0)
			return -errno;
		sz = (uint64_t)st.st_size;
	}
	d->size = sz;
	*bytes = sz;
	return 0;
}

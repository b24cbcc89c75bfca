/* fsproto — dipolefs frames; see fsproto.h.
 *
 * One table says which fields each op's request and reply carry, in order;
 * the encoder and the decoder both walk it, so the two cannot disagree on
 * a layout. The checks a field needs beyond its form (a read's length, a
 * rename's flags) are in check_req/check_reply, by op. */
#include "fsproto.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LLU(x) ((unsigned long long)(x))
#define TIMEOUT_MAX_NS (365ull * 86400 * 1000000000ull) /* a cache timeout beyond a year is garbage */

/* Field codes. Requests: C caller, I ino, P newparent, H fh, O off, L len,
 * Q u64, M mode, F flags, N name, X xattr name, n name2, A attr, K lock,
 * D trailing bytes, o/l inval off/len. Replies: E entry, A attr, H fh,
 * K lock, V statvfs, D trailing bytes, R trailing readdir batch. */
struct opdesc {
	const char *name;
	const char *req;
	const char *rep;  /* NULL: no reply (one-way) */
};

static const struct opdesc ops[] = {
	[FSP_LOOKUP] = { "LOOKUP", "CIN", "E" },
	[FSP_FORGET] = { "FORGET", "IL", NULL },
	[FSP_GETATTR] = { "GETATTR", "CI", "A" },
	[FSP_SETATTR] = { "SETATTR", "CIAFH", "A" },
	[FSP_READLINK] = { "READLINK", "CIL", "D" },
	[FSP_MKNOD] = { "MKNOD", "CINMQ", "E" },
	[FSP_MKDIR] = { "MKDIR", "CINM", "E" },
	[FSP_UNLINK] = { "UNLINK", "CIN", "" },
	[FSP_RMDIR] = { "RMDIR", "CIN", "" },
	[FSP_SYMLINK] = { "SYMLINK", "CIND", "E" },
	[FSP_RENAME] = { "RENAME", "CINPnF", "" },
	[FSP_LINK] = { "LINK", "CIPN", "E" },
	[FSP_OPEN] = { "OPEN", "CIF", "H" },
	[FSP_CREATE] = { "CREATE", "CINMF", "EH" },
	[FSP_READ] = { "READ", "CIHOL", "D" },
	[FSP_WRITE] = { "WRITE", "CIHOD", "" },
	[FSP_FLUSH] = { "FLUSH", "CIHQ", "" },
	[FSP_RELEASE] = { "RELEASE", "IH", "" },
	[FSP_FSYNC] = { "FSYNC", "CIHF", "" },
	[FSP_OPENDIR] = { "OPENDIR", "CI", "H" },
	[FSP_READDIR] = { "READDIR", "CIHOL", "R" },
	[FSP_RELEASEDIR] = { "RELEASEDIR", "IH", "" },
	[FSP_FSYNCDIR] = { "FSYNCDIR", "CIHF", "" },
	[FSP_STATFS] = { "STATFS", "CI", "V" },
	[FSP_SETXATTR] = { "SETXATTR", "CIXFD", "" },
	[FSP_GETXATTR] = { "GETXATTR", "CIXL", "D" },
	[FSP_LISTXATTR] = { "LISTXATTR", "CIL", "D" },
	[FSP_REMOVEXATTR] = { "REMOVEXATTR", "CIX", "" },
	[FSP_FALLOCATE] = { "FALLOCATE", "CIHMOL", "" },
	[FSP_GETLK] = { "GETLK", "CIHK", "K" },
	[FSP_SETLK] = { "SETLK", "CIHKFQ", "" },
	[FSP_INTERRUPT] = { "INTERRUPT", "CQ", NULL },
	[FSP_LSEEK] = { "LSEEK", "CIHOF", "" },
	[FSP_RECLAIM_DONE] = { "RECLAIM_DONE", "C", "" },
	[FSP_MOUNTED] = { "MOUNTED", "CQ", "" },
	[FSP_READDIRPLUS] = { "READDIRPLUS", "CIHOL", "R" },
	[FSP_INVAL_INODE] = { "INVAL_INODE", "Iol", "" },
	[FSP_INVAL_ENTRY] = { "INVAL_ENTRY", "IN", "" },
};

static const struct opdesc *desc(uint16_t op)
{
	return op < ARRAY_SIZE(ops) && ops[op].name ? &ops[op] : NULL;
}

const char *fsp_op_name(uint16_t op)
{
	const struct opdesc *d = desc(op);
	return d ? d->name : "?";
}

int fsp_op_oneway(uint16_t op)
{
	const struct opdesc *d = desc(op);
	return d && !d->rep;
}

int fsp_op_parent_attr(uint16_t op)
{
	switch (op) {
	case FSP_MKNOD: case FSP_MKDIR: case FSP_SYMLINK: case FSP_LINK: case FSP_CREATE: case FSP_UNLINK:
	case FSP_RMDIR:
		return 1;
	}
	return 0;
}

static int refuse(char *why, size_t whylen, uint16_t op, int reply, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int refuse(char *why, size_t whylen, uint16_t op, int reply, const char *fmt, ...)
{
	char prefix[48];
	va_list ap;
	if (desc(op))
		snprintf(prefix, sizeof prefix, "%s%s", fsp_op_name(op), reply ? " reply" : "");
	else
		snprintf(prefix, sizeof prefix, "op %u%s", op, reply ? " reply" : "");
	va_start(ap, fmt);
	vmsg_prefixed(why, whylen, prefix, fmt, ap);
	va_end(ap);
	return -EPROTO;
}

/* ------------------------------------------------------------ header */

void fsp_encode_hdr(uint8_t *b, const struct fsp_hdr *h)
{
	put_be32(b, FSP_MAGIC);
	b[4] = h->version ? h->version : FSP_VERSION;
	b[5] = h->flags;
	put_be16(b + 6, h->op);
	put_be32(b + 8, h->len);
	put_be32(b + 12, h->epoch);
	put_be64(b + 16, h->id);
}

int fsp_decode_hdr(const uint8_t *b, struct fsp_hdr *h, char *why, size_t whylen)
{
	uint32_t magic = get_be32(b);
	h->version = b[4];
	h->flags = b[5];
	h->op = get_be16(b + 6);
	h->len = get_be32(b + 8);
	h->epoch = get_be32(b + 12);
	h->id = get_be64(b + 16);
	if (magic != FSP_MAGIC) {
		snprintf(why, whylen, "bad frame magic 0x%08x (not a dipolefs frame)", magic);
		return -EPROTO;
	}
	if (h->version < FSP_VERSION_MIN || h->version > FSP_VERSION) {
		snprintf(why, whylen, "frame version %u: this node speaks %u to %u", h->version, FSP_VERSION_MIN,
			 FSP_VERSION);
		return -EPROTO;
	}
	if (h->epoch && h->version < 4)
		return refuse(why, whylen, h->op, h->flags & FSPF_REPLY, "owner epoch in a version %u frame: needs version 4",
			      h->version);
	if (h->flags & ~FSPF_REPLY)
		return refuse(why, whylen, h->op, h->flags & FSPF_REPLY, "unknown flags 0x%x", h->flags);
	if (h->len > FSP_PAYLOAD_MAX)
		return refuse(why, whylen, h->op, h->flags & FSPF_REPLY, "length %u: more than %u bytes", h->len,
			      FSP_PAYLOAD_MAX);
	return 0;
}

/* ------------------------------------------------------------ writer */

struct wr { uint8_t *b; size_t cap, n; int over; };

static uint8_t *wr_take(struct wr *w, size_t n)
{
	if (w->over || n > w->cap - w->n) {
		w->over = 1;
		return NULL;
	}
	uint8_t *p = w->b + w->n;
	w->n += n;
	return p;
}
static void wr_u8(struct wr *w, uint8_t v) { uint8_t *p = wr_take(w, 1); if (p) *p = v; }
static void wr_u16(struct wr *w, uint16_t v) { uint8_t *p = wr_take(w, 2); if (p) put_be16(p, v); }
static void wr_u32(struct wr *w, uint32_t v) { uint8_t *p = wr_take(w, 4); if (p) put_be32(p, v); }
static void wr_u64(struct wr *w, uint64_t v) { uint8_t *p = wr_take(w, 8); if (p) put_be64(p, v); }
static void wr_name(struct wr *w, const char *s, size_t len)
{
	if (len > FSP_NAME_MAX || (len && !s)) {
		w->over = 1;
		return;
	}
	wr_u16(w, (uint16_t)len);
	uint8_t *p = wr_take(w, len);
	if (p && len)
		memcpy(p, s, len);
}

static void wr_attr(struct wr *w, const struct stat *st)
{
	wr_u64(w, st->st_ino);
	wr_u32(w, st->st_mode);
	wr_u64(w, st->st_nlink);
	wr_u32(w, st->st_uid);
	wr_u32(w, st->st_gid);
	wr_u64(w, st->st_rdev);
	wr_u64(w, (uint64_t)st->st_size);
	wr_u32(w, (uint32_t)st->st_blksize);
	wr_u64(w, (uint64_t)st->st_blocks);
	const struct timespec *ts[3] = { &st->st_atim, &st->st_mtim, &st->st_ctim };
	for (int i = 0; i < 3; i++) {
		wr_u64(w, (uint64_t)ts[i]->tv_sec);
		wr_u32(w, (uint32_t)ts[i]->tv_nsec);
	}
}

static void wr_entry(struct wr *w, const struct fsp_entry *e)
{
	wr_u64(w, e->ino);
	wr_u64(w, e->generation);
	wr_attr(w, &e->attr);
	wr_u64(w, e->attr_timeout_ns);
	wr_u64(w, e->entry_timeout_ns);
}

static void wr_lock(struct wr *w, const struct fsp_lock *lk)
{
	wr_u64(w, lk->start);
	wr_u64(w, lk->end);
	wr_u8(w, lk->type);
	wr_u8(w, lk->flock);
	wr_u64(w, lk->owner);
	wr_u32(w, lk->node_id);
	wr_u32(w, lk->pid);
}

static void wr_caller(struct wr *w, const struct fsp_caller *c)
{
	uint32_t ng = c->ngroups > FSP_GROUPS_MAX ? FSP_GROUPS_MAX : c->ngroups;
	wr_u32(w, c->uid);
	wr_u32(w, c->gid);
	wr_u32(w, c->pid);
	wr_u32(w, c->node_id);
	wr_u32(w, ng);
	for (uint32_t i = 0; i < ng; i++)
		wr_u32(w, c->groups[i]);
}

/* Trailing bytes: only their length is written here (the data follows). */
static void wr_trailing(struct wr *w, uint32_t dlen, const uint8_t *data)
{
	if (dlen > FSP_IO_MAX || (dlen && !data)) {
		w->over = 1;
		return;
	}
	wr_u32(w, dlen);
}

/* The version a frame needs: the lowest that has what it uses, so a node
 * speaks to an older one as long as it uses nothing new. */
static uint8_t frame_version(uint16_t op, uint32_t req_flags, uint32_t epoch)
{
	if (op == FSP_READDIRPLUS)
		return 7;
	if (epoch)
		return 4;
	if (op == FSP_MOUNTED)
		return 3;
	if (op == FSP_RECLAIM_DONE || (op == FSP_SETLK && (req_flags & FSP_SETLK_RECLAIM)))
		return 2;
	return 1;
}

/* at_least: a version the frame's fields need beyond frame_version's (a
 * write reply with attributes: 5) */
static int wr_finish(struct wr *w, uint16_t op, uint8_t flags, uint32_t req_flags, uint32_t epoch, uint64_t id,
		     uint32_t dlen, uint8_t at_least)
{
	if (w->over)
		return -EMSGSIZE;
	uint8_t v = frame_version(op, req_flags, epoch);
	fsp_encode_hdr(w->b, &(struct fsp_hdr){ .version = v > at_least ? v : at_least, .flags = flags,
						 .op = op, .len = (uint32_t)(w->n - FSP_HDR) + dlen, .epoch = epoch,
						 .id = id });
	return (int)w->n;
}

int fsp_encode_req(uint8_t *b, size_t cap, uint64_t id, const struct fsp_req *q)
{
	const struct opdesc *d = desc(q->op);
	if (!d)
		return -EINVAL;
	struct wr w = { b, cap, 0, 0 };
	uint32_t dlen = 0;
	wr_take(&w, FSP_HDR);
	for (const char *f = d->req; *f; f++) {
		switch (*f) {
		case 'C': wr_caller(&w, &q->caller); break;
		case 'I': wr_u64(&w, q->ino); break;
		case 'P': wr_u64(&w, q->newparent); break;
		case 'H': wr_u64(&w, q->fh); break;
		case 'O': wr_u64(&w, q->off); break;
		case 'L': wr_u64(&w, q->len); break;
		case 'Q': wr_u64(&w, q->u64); break;
		case 'M': wr_u32(&w, q->mode | (q->has_umask ? FSP_MODE_UMASK | (q->umask & 0777) << 16 : 0)); break;
		case 'F': wr_u32(&w, q->flags); break;
		case 'N': case 'X': wr_name(&w, q->name, q->name_len); break;
		case 'n': wr_name(&w, q->name2, q->name2_len); break;
		case 'A': wr_attr(&w, &q->attr); break;
		case 'K': wr_lock(&w, &q->lock); break;
		case 'o': wr_u64(&w, (uint64_t)q->inval_off); break;
		case 'l': wr_u64(&w, (uint64_t)q->inval_len); break;
		case 'D': wr_trailing(&w, q->dlen, q->data); dlen = q->dlen; break;
		}
	}
	return wr_finish(&w, q->op, 0, q->flags, q->epoch, id, dlen, q->has_umask ? 9 : 0);
}

int fsp_encode_reply(uint8_t *b, size_t cap, uint64_t id, const struct fsp_reply *r)
{
	const struct opdesc *d = desc(r->op);
	if (!d || !d->rep)
		return -EINVAL;
	struct wr w = { b, cap, 0, 0 };
	uint32_t dlen = 0;
	wr_take(&w, FSP_HDR);
	wr_u64(&w, (uint64_t)r->result);
	for (const char *f = d->rep; r->result >= 0 && *f; f++) {
		switch (*f) {
		case 'E': wr_entry(&w, &r->entry); break;
		case 'A': wr_attr(&w, &r->attr); break;
		case 'H': wr_u64(&w, r->fh); break;
		case 'K': wr_lock(&w, &r->lock); break;
		case 'V': {
			const struct statvfs *s = &r->st;
			uint64_t v[11] = { s->f_bsize, s->f_frsize, s->f_blocks, s->f_bfree, s->f_bavail, s->f_files,
					   s->f_ffree, s->f_favail, s->f_fsid, s->f_flag, s->f_namemax };
			for (int i = 0; i < 11; i++)
				wr_u64(&w, v[i]);
			break;
		}
		case 'R': wr_u32(&w, r->ndirents); /* fall through */
		case 'D': wr_trailing(&w, r->dlen, r->data); dlen = r->dlen; break;
		}
	}
	int attr = r->op == FSP_WRITE && r->result >= 0 && r->has_attr;
	if (attr)
		wr_attr(&w, &r->attr); /* version 5 */
	int pattr = fsp_op_parent_attr(r->op) && r->result >= 0 && r->has_pattr;
	if (pattr) { /* version 6 */
		wr_attr(&w, &r->pattr);
		if (r->op == FSP_UNLINK || r->op == FSP_RMDIR)
			wr_u64(&w, r->removed_ino);
	}
	int empty = pattr && r->op == FSP_MKDIR && r->has_empty;
	if (empty) /* version 8 */
		wr_u32(&w, r->new_empty);
	return wr_finish(&w, r->op, FSPF_REPLY, 0, r->epoch, id, dlen, empty ? 8 : pattr ? 6 : attr ? 5 : 0);
}

/* ------------------------------------------------------------ reader */

struct rd { const uint8_t *b; size_t len, n; int short_; };

static const uint8_t *rd_take(struct rd *r, size_t n)
{
	if (r->short_ || n > r->len - r->n) {
		r->short_ = 1;
		return NULL;
	}
	const uint8_t *p = r->b + r->n;
	r->n += n;
	return p;
}
static uint8_t rd_u8(struct rd *r) { const uint8_t *p = rd_take(r, 1); return p ? *p : 0; }
static uint16_t rd_u16(struct rd *r) { const uint8_t *p = rd_take(r, 2); return p ? get_be16(p) : 0; }
static uint32_t rd_u32(struct rd *r) { const uint8_t *p = rd_take(r, 4); return p ? get_be32(p) : 0; }
static uint64_t rd_u64(struct rd *r) { const uint8_t *p = rd_take(r, 8); return p ? get_be64(p) : 0; }

/* A name of a directory entry: 1..FSP_NAME_MAX bytes, no '/' or NUL, not
 * "." or ".." (those are the kernel's, never sent); an xattr name may hold
 * '/'. NULL when fine, else what is wrong. */
static const char *bad_name(const char *s, size_t len, int xattr)
{
	if (!len)
		return "empty";
	if (len > FSP_NAME_MAX)
		return "longer than 255 bytes";
	if (memchr(s, 0, len))
		return "holds a NUL byte";
	if (!xattr && memchr(s, '/', len))
		return "holds a '/'";
	if (!xattr && (len == 1 || len == 2) && s[0] == '.' && s[len - 1] == '.')
		return "is '.' or '..'";
	return NULL;
}

static int rd_name(struct rd *r, const char **s, uint16_t *len, int xattr, const char *field, uint16_t op,
		   char *why, size_t whylen)
{
	*len = rd_u16(r);
	const uint8_t *p = rd_take(r, *len);
	if (!p)
		return 0; /* the caller reports a short payload */
	*s = (const char *)p;
	const char *bad = bad_name(*s, *len, xattr);
	return bad ? refuse(why, whylen, op, 0, "%s (%u bytes) %s", field, *len, bad) : 0;
}

static int rd_attr(struct rd *r, struct stat *st, uint16_t op, int reply, char *why, size_t whylen)
{
	memset(st, 0, sizeof *st);
	st->st_ino = rd_u64(r);
	st->st_mode = rd_u32(r);
	st->st_nlink = rd_u64(r);
	st->st_uid = rd_u32(r);
	st->st_gid = rd_u32(r);
	st->st_rdev = rd_u64(r);
	uint64_t size = rd_u64(r);
	st->st_blksize = rd_u32(r);
	uint64_t blocks = rd_u64(r);
	struct timespec *ts[3] = { &st->st_atim, &st->st_mtim, &st->st_ctim };
	int bad_ns = 0;
	for (int i = 0; i < 3; i++) {
		ts[i]->tv_sec = (time_t)rd_u64(r);
		uint32_t ns = rd_u32(r);
		bad_ns |= ns >= 1000000000u;
		ts[i]->tv_nsec = ns;
	}
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)blocks;
	if (r->short_)
		return 0;
	if (size > INT64_MAX || blocks > INT64_MAX)
		return refuse(why, whylen, op, reply, "attributes: size %llu or blocks %llu beyond 2^63", LLU(size),
			      LLU(blocks));
	if (bad_ns)
		return refuse(why, whylen, op, reply, "attributes: a time's nanoseconds are 1e9 or more");
	return 0;
}

/* An entry (node id 0 allowed: the caller decides) */
static int rd_entry(struct rd *r, struct fsp_entry *e, uint16_t op, char *why, size_t whylen)
{
	e->ino = rd_u64(r);
	e->generation = rd_u64(r);
	int rc = rd_attr(r, &e->attr, op, 1, why, whylen);
	if (rc)
		return rc;
	e->attr_timeout_ns = rd_u64(r);
	e->entry_timeout_ns = rd_u64(r);
	if (!r->short_ && (e->attr_timeout_ns > TIMEOUT_MAX_NS || e->entry_timeout_ns > TIMEOUT_MAX_NS))
		return refuse(why, whylen, op, 1, "entry: cache timeout beyond a year");
	return 0;
}

static int rd_lock(struct rd *r, struct fsp_lock *lk, uint16_t op, int reply, char *why, size_t whylen)
{
	lk->start = rd_u64(r);
	lk->end = rd_u64(r);
	lk->type = rd_u8(r);
	lk->flock = rd_u8(r);
	lk->owner = rd_u64(r);
	lk->node_id = rd_u32(r);
	lk->pid = rd_u32(r);
	if (r->short_)
		return 0;
	if (lk->type > FSP_UNLCK)
		return refuse(why, whylen, op, reply, "lock type %u: expected 0 (read), 1 (write) or 2 (unlock)",
			      lk->type);
	if (lk->flock > 1)
		return refuse(why, whylen, op, reply, "lock flock flag %u: expected 0 or 1", lk->flock);
	if (lk->start > lk->end)
		return refuse(why, whylen, op, reply, "lock range %llu-%llu: start after end", LLU(lk->start),
			      LLU(lk->end));
	return 0;
}

/* The trailing bytes: a u32 length, then exactly the rest of the payload. */
static void rd_trailing(struct rd *r, const uint8_t **data, uint32_t *dlen)
{
	*dlen = rd_u32(r);
	*data = rd_take(r, *dlen);
	if (!*data)
		*dlen = 0;
}

static int check_req(const struct fsp_req *q, char *why, size_t whylen)
{
	uint16_t op = q->op;
	switch (op) {
	case FSP_READ:
		if (q->len > FSP_IO_MAX)
			return refuse(why, whylen, op, 0, "length %llu: more than %u bytes", LLU(q->len), FSP_IO_MAX);
		if (q->off > (uint64_t)INT64_MAX - q->len)
			return refuse(why, whylen, op, 0, "offset %llu: beyond 2^63", LLU(q->off));
		break;
	case FSP_WRITE:
		if (q->off > (uint64_t)INT64_MAX - q->dlen)
			return refuse(why, whylen, op, 0, "offset %llu: beyond 2^63", LLU(q->off));
		break;
	case FSP_READLINK:
		if (!q->len || q->len > FSP_PATH_MAX)
			return refuse(why, whylen, op, 0, "buffer %llu bytes: expected 1..%u", LLU(q->len), FSP_PATH_MAX);
		break;
	case FSP_GETXATTR:
	case FSP_LISTXATTR:
		if (q->len > FSP_XATTR_MAX)
			return refuse(why, whylen, op, 0, "buffer %llu bytes: more than %u", LLU(q->len), FSP_XATTR_MAX);
		break;
	case FSP_READDIR:
	case FSP_READDIRPLUS:
		if (!q->len || q->len > FSP_DIRBATCH_MAX)
			return refuse(why, whylen, op, 0, "batch %llu bytes: expected 1..%u", LLU(q->len),
				      FSP_DIRBATCH_MAX);
		if (q->off > INT64_MAX)
			return refuse(why, whylen, op, 0, "offset %llu: beyond 2^63", LLU(q->off));
		break;
	case FSP_SETXATTR:
		if (q->dlen > FSP_XATTR_MAX)
			return refuse(why, whylen, op, 0, "value %u bytes: more than %u", q->dlen, FSP_XATTR_MAX);
		if (q->flags & ~3u)
			return refuse(why, whylen, op, 0, "flags 0x%x: expected XATTR_CREATE or XATTR_REPLACE", q->flags);
		break;
	case FSP_SYMLINK:
		if (!q->dlen || q->dlen >= FSP_PATH_MAX || memchr(q->data, 0, q->dlen))
			return refuse(why, whylen, op, 0, "target (%u bytes): expected 1..%u bytes without NUL", q->dlen,
				      FSP_PATH_MAX - 1);
		break;
	case FSP_SETATTR:
		if (q->flags & ~FSP_SETATTR_MASK)
			return refuse(why, whylen, op, 0, "mask 0x%x: unknown bits", q->flags);
		break;
	case FSP_RENAME:
		if (q->flags & ~FSP_RENAME_FLAGS || q->flags == FSP_RENAME_FLAGS)
			return refuse(why, whylen, op, 0, "flags 0x%x: expected 0, RENAME_NOREPLACE or RENAME_EXCHANGE",
				      q->flags);
		break;
	case FSP_FSYNC:
	case FSP_FSYNCDIR:
		if (q->flags > 1)
			return refuse(why, whylen, op, 0, "datasync %u: expected 0 or 1", q->flags);
		break;
	case FSP_SETLK:
		if (q->flags > FSP_SETLK_RECLAIM)
			return refuse(why, whylen, op, 0, "flags %u: expected 0, WAIT (1) or RECLAIM (2)", q->flags);
		break;
	case FSP_LSEEK:
		if (q->flags != SEEK_DATA && q->flags != SEEK_HOLE && q->flags > SEEK_END)
			return refuse(why, whylen, op, 0, "whence %u: no such whence", q->flags);
		break;
	case FSP_FALLOCATE:
		if (q->mode & ~0x7fu)
			return refuse(why, whylen, op, 0, "mode 0x%x: unknown bits", q->mode);
		if (!q->len || q->off > INT64_MAX || q->len > (uint64_t)INT64_MAX - q->off)
			return refuse(why, whylen, op, 0, "range %llu+%llu: empty or beyond 2^63", LLU(q->off),
				      LLU(q->len));
		break;
	case FSP_OPEN:
	case FSP_CREATE:
		if (q->flags > INT32_MAX)
			return refuse(why, whylen, op, 0, "open flags 0x%x: not an int", q->flags);
		break;
	case FSP_INVAL_INODE:
		if (q->inval_off < -1 || q->inval_len < 0)
			return refuse(why, whylen, op, 0, "range %lld+%lld: negative", (long long)q->inval_off,
				      (long long)q->inval_len);
		break;
	}
	if ((op == FSP_MKNOD || op == FSP_MKDIR || op == FSP_CREATE) && q->mode > 0177777u)
		return refuse(why, whylen, op, 0, "mode 0%o: not a file mode", q->mode);
	return 0;
}

/* MKNOD, MKDIR, CREATE (version 9): the caller's umask out of the mode */
static int check_umask(uint8_t version, struct fsp_req *q, char *why, size_t whylen)
{
	int makes = q->op == FSP_MKNOD || q->op == FSP_MKDIR || q->op == FSP_CREATE;
	if (!makes || !(q->mode & FSP_MODE_UMASK))
		return 0;
	if (version < 9)
		return refuse(why, whylen, q->op, 0, "a umask in a version %u frame: needs version 9", version);
	if (q->mode & ~(FSP_MODE_UMASK | 0777u << 16 | 0xffffu))
		return refuse(why, whylen, q->op, 0, "mode 0x%x: bits beyond the file mode and the umask", q->mode);
	q->has_umask = 1;
	q->umask = (q->mode >> 16) & 0777;
	q->mode &= 0xffff;
	return 0;
}

int fsp_decode_req(const struct fsp_hdr *h, const uint8_t *payload, struct fsp_req *out, char *why, size_t whylen)
{
	const struct opdesc *d = desc(h->op);
	struct rd r = { payload, h->len, 0, 0 };
	int rc;

	memset(out, 0, sizeof *out);
	out->epoch = h->epoch;
	out->op = h->op;
	if (!d)
		return refuse(why, whylen, h->op, 0, "no such op");
	if (h->flags & FSPF_REPLY)
		return refuse(why, whylen, h->op, 1, "a reply where a request was expected");
	for (const char *f = d->req; *f; f++) {
		switch (*f) {
		case 'C': {
			struct fsp_caller *c = &out->caller;
			c->uid = rd_u32(&r);
			c->gid = rd_u32(&r);
			c->pid = rd_u32(&r);
			c->node_id = rd_u32(&r);
			c->ngroups = rd_u32(&r);
			if (c->ngroups > FSP_GROUPS_MAX)
				return refuse(why, whylen, h->op, 0, "caller with %u groups: at most %u", c->ngroups,
					      FSP_GROUPS_MAX);
			for (uint32_t i = 0; i < c->ngroups; i++)
				c->groups[i] = rd_u32(&r);
			break;
		}
		case 'I': out->ino = rd_u64(&r); break;
		case 'P': out->newparent = rd_u64(&r); break;
		case 'H': out->fh = rd_u64(&r); break;
		case 'O': out->off = rd_u64(&r); break;
		case 'L': out->len = rd_u64(&r); break;
		case 'Q': out->u64 = rd_u64(&r); break;
		case 'M': out->mode = rd_u32(&r); break; /* a umask in it: check_umask */
		case 'F': out->flags = rd_u32(&r); break;
		case 'N':
		case 'X':
			if ((rc = rd_name(&r, &out->name, &out->name_len, *f == 'X', "name", h->op, why, whylen)))
				return rc;
			break;
		case 'n':
			if ((rc = rd_name(&r, &out->name2, &out->name2_len, 0, "new name", h->op, why, whylen)))
				return rc;
			break;
		case 'A':
			if ((rc = rd_attr(&r, &out->attr, h->op, 0, why, whylen)))
				return rc;
			break;
		case 'K':
			if ((rc = rd_lock(&r, &out->lock, h->op, 0, why, whylen)))
				return rc;
			break;
		case 'o': out->inval_off = (int64_t)rd_u64(&r); break;
		case 'l': out->inval_len = (int64_t)rd_u64(&r); break;
		case 'D':
			rd_trailing(&r, &out->data, &out->dlen);
			if (!r.short_ && out->dlen > FSP_IO_MAX)
				return refuse(why, whylen, h->op, 0, "data %u bytes: more than %u", out->dlen, FSP_IO_MAX);
			break;
		}
		if (r.short_)
			return refuse(why, whylen, h->op, 0, "payload %u bytes: too short", h->len);
	}
	if (r.n != r.len)
		return refuse(why, whylen, h->op, 0, "payload %u bytes: %zu bytes more than its fields", h->len,
			      r.len - r.n);
	if (h->version < frame_version(out->op, out->flags, 0))
		return refuse(why, whylen, h->op, 0, "%s in a version %u frame: needs version %u",
			      out->op == FSP_SETLK ? "flag RECLAIM" : "op", h->version,
			      frame_version(out->op, out->flags, 0));
	if ((rc = check_umask(h->version, out, why, whylen)))
		return rc;
	return check_req(out, why, whylen);
}

static int check_dirents(const struct fsp_reply *out, char *why, size_t whylen)
{
	int plus = out->op == FSP_READDIRPLUS;
	size_t pos = 0, least = plus ? FSP_DIRENTPLUS_MIN : FSP_DIRENT_MIN;
	uint32_t n = 0;
	if (out->dlen > FSP_DIRBATCH_MAX)
		return refuse(why, whylen, out->op, 1, "batch %u bytes: more than %u", out->dlen, FSP_DIRBATCH_MAX);
	while (pos < out->dlen) {
		const uint8_t *p = out->data + pos;
		if (out->dlen - pos < least)
			return refuse(why, whylen, out->op, 1, "entry %u: truncated", n);
		uint32_t type = get_be32(p + 16);
		uint16_t nl = get_be16(p + 20);
		if (nl > out->dlen - pos - least)
			return refuse(why, whylen, out->op, 1, "entry %u: name runs past the batch", n);
		const char *bad = bad_name((const char *)p + FSP_DIRENT_MIN, nl, 0);
		/* readdir does report "." and ".." (never with a lookup) */
		int dots = (nl == 1 || nl == 2) && p[FSP_DIRENT_MIN] == '.' && p[FSP_DIRENT_MIN + nl - 1] == '.';
		if (bad && !dots)
			return refuse(why, whylen, out->op, 1, "entry %u: name %s", n, bad);
		if (type & ~(uint32_t)S_IFMT)
			return refuse(why, whylen, out->op, 1, "entry %u: type 0%o is not a file type", n, type);
		if (plus) {
			struct rd r = { p + FSP_DIRENT_MIN + nl, FSP_ENTRY_BYTES + 4, 0, 0 };
			struct fsp_entry e;
			int rc = rd_entry(&r, &e, out->op, why, whylen);
			if (rc)
				return rc;
			uint32_t absent = rd_u32(&r);
			if (e.ino && dots)
				return refuse(why, whylen, out->op, 1, "entry %u: a lookup of '.' or '..'", n);
			if (absent & ~FSP_XATTR_ABSENT_MASK)
				return refuse(why, whylen, out->op, 1, "entry %u: xattr_absent 0x%x: unknown bits", n,
					      absent);
		}
		pos += least + nl;
		n++;
	}
	if (n != out->ndirents)
		return refuse(why, whylen, out->op, 1, "batch says %u entries, holds %u", out->ndirents, n);
	return 0;
}

static int check_reply(const struct fsp_reply *out, char *why, size_t whylen)
{
	uint16_t op = out->op;
	int64_t res = out->result;
	if (res < -FSP_ERRNO_MAX)
		return refuse(why, whylen, op, 1, "result %lld: not an errno", (long long)res);
	if (res < 0)
		return 0;
	switch (op) {
	case FSP_READ:
		if (out->dlen > FSP_IO_MAX || (uint64_t)res != out->dlen)
			return refuse(why, whylen, op, 1, "result %lld with %u bytes of data", (long long)res, out->dlen);
		break;
	case FSP_READLINK:
		if (!out->dlen || out->dlen >= FSP_PATH_MAX || (uint64_t)res != out->dlen ||
		    memchr(out->data, 0, out->dlen))
			return refuse(why, whylen, op, 1, "target of %u bytes (result %lld): expected 1..%u bytes without NUL",
				      out->dlen, (long long)res, FSP_PATH_MAX - 1);
		break;
	case FSP_GETXATTR:
	case FSP_LISTXATTR:
		if (res > FSP_XATTR_MAX || out->dlen > FSP_XATTR_MAX || (out->dlen && (uint64_t)res != out->dlen))
			return refuse(why, whylen, op, 1, "result %lld with %u bytes: more than %u or differ",
				      (long long)res, out->dlen, FSP_XATTR_MAX);
		break;
	case FSP_WRITE:
		if (res > FSP_IO_MAX)
			return refuse(why, whylen, op, 1, "wrote %lld bytes: more than %u", (long long)res, FSP_IO_MAX);
		break;
	case FSP_LSEEK:
	case FSP_MOUNTED: /* the node set */
		break;
	case FSP_READDIR:
	case FSP_READDIRPLUS:
		return res ? refuse(why, whylen, op, 1, "result %lld: expected 0", (long long)res)
			   : check_dirents(out, why, whylen);
	default:
		if (res)
			return refuse(why, whylen, op, 1, "result %lld: expected 0", (long long)res);
	}
	return 0;
}

int fsp_decode_reply(const struct fsp_hdr *h, const uint8_t *payload, struct fsp_reply *out, char *why,
		     size_t whylen)
{
	const struct opdesc *d = desc(h->op);
	struct rd r = { payload, h->len, 0, 0 };
	int rc;

	memset(out, 0, sizeof *out);
	out->epoch = h->epoch;
	out->op = h->op;
	if (!d)
		return refuse(why, whylen, h->op, 1, "no such op");
	if (!(h->flags & FSPF_REPLY))
		return refuse(why, whylen, h->op, 0, "a request where a reply was expected");
	if (!d->rep)
		return refuse(why, whylen, h->op, 1, "this op has no reply");
	if (h->version < frame_version(h->op, 0, 0))
		return refuse(why, whylen, h->op, 1, "op in a version %u frame: needs version %u", h->version,
			      frame_version(h->op, 0, 0));
	out->result = (int64_t)rd_u64(&r);
	for (const char *f = d->rep; !r.short_ && out->result >= 0 && *f; f++) {
		switch (*f) {
		case 'E':
			if ((rc = rd_entry(&r, &out->entry, h->op, why, whylen)))
				return rc;
			if (!r.short_ && !out->entry.ino)
				return refuse(why, whylen, h->op, 1, "entry: node id 0");
			break;
		case 'A':
			if ((rc = rd_attr(&r, &out->attr, h->op, 1, why, whylen)))
				return rc;
			break;
		case 'H': out->fh = rd_u64(&r); break;
		case 'K':
			if ((rc = rd_lock(&r, &out->lock, h->op, 1, why, whylen)))
				return rc;
			break;
		case 'V': {
			struct statvfs *s = &out->st;
			s->f_bsize = rd_u64(&r);
			s->f_frsize = rd_u64(&r);
			s->f_blocks = rd_u64(&r);
			s->f_bfree = rd_u64(&r);
			s->f_bavail = rd_u64(&r);
			s->f_files = rd_u64(&r);
			s->f_ffree = rd_u64(&r);
			s->f_favail = rd_u64(&r);
			s->f_fsid = rd_u64(&r);
			s->f_flag = rd_u64(&r);
			s->f_namemax = rd_u64(&r);
			break;
		}
		case 'R': out->ndirents = rd_u32(&r); /* fall through */
		case 'D': rd_trailing(&r, &out->data, &out->dlen); break;
		}
	}
	if (h->op == FSP_WRITE && h->version >= 5 && !r.short_ && out->result >= 0) {
		if ((rc = rd_attr(&r, &out->attr, h->op, 1, why, whylen)))
			return rc;
		out->has_attr = 1;
	}
	if (fsp_op_parent_attr(h->op) && h->version >= 6 && !r.short_ && out->result >= 0) {
		if ((rc = rd_attr(&r, &out->pattr, h->op, 1, why, whylen)))
			return rc;
		if (h->op == FSP_UNLINK || h->op == FSP_RMDIR)
			out->removed_ino = rd_u64(&r);
		out->has_pattr = 1;
	}
	if (h->op == FSP_MKDIR && h->version >= 8 && !r.short_ && out->result >= 0) {
		out->new_empty = rd_u32(&r);
		out->has_empty = 1;
		if (out->new_empty > 1)
			return refuse(why, whylen, h->op, 1, "new_empty %u: must be 0 or 1", out->new_empty);
	}
	if (r.short_)
		return refuse(why, whylen, h->op, 1, "payload %u bytes: too short", h->len);
	if (r.n != r.len)
		return refuse(why, whylen, h->op, 1, "payload %u bytes: %zu bytes more than its fields", h->len,
			      r.len - r.n);
	return check_reply(out, why, whylen);
}

/* ------------------------------------------------------------ readdir batches */

int fsp_dirent_put(uint8_t *b, size_t cap, size_t *used, uint64_t ino, uint64_t next, uint32_t type,
		   const char *name, size_t name_len)
{
	if (!name_len || name_len > FSP_NAME_MAX || memchr(name, 0, name_len))
		return -EINVAL;
	if (*used > cap || FSP_DIRENT_MIN + name_len > cap - *used)
		return 1;
	uint8_t *p = b + *used;
	put_be64(p, ino);
	put_be64(p + 8, next);
	put_be32(p + 16, type & S_IFMT);
	put_be16(p + 20, (uint16_t)name_len);
	memcpy(p + FSP_DIRENT_MIN, name, name_len);
	*used += FSP_DIRENT_MIN + name_len;
	return 0;
}

int fsp_direntplus_put(uint8_t *b, size_t cap, size_t *used, uint64_t next, uint32_t type, const char *name,
		       size_t name_len, const struct fsp_entry *e)
{
	if (!name_len || name_len > FSP_NAME_MAX || memchr(name, 0, name_len))
		return -EINVAL;
	if (*used > cap || FSP_DIRENTPLUS_MIN + name_len > cap - *used)
		return 1;
	size_t at = *used;
	int rc = fsp_dirent_put(b, cap, used, e->attr.st_ino, next, type, name, name_len);
	if (rc)
		return rc;
	struct wr w = { b + at + FSP_DIRENT_MIN + name_len, FSP_ENTRY_BYTES + 4, 0, 0 };
	wr_entry(&w, e);
	wr_u32(&w, e->xattr_absent & FSP_XATTR_ABSENT_MASK);
	*used += FSP_ENTRY_BYTES + 4;
	return 0;
}

int fsp_dirent_next(const struct fsp_reply *r, size_t *pos, struct fsp_dirent *out)
{
	int plus = r->op == FSP_READDIRPLUS;
	if (*pos + (plus ? FSP_DIRENTPLUS_MIN : FSP_DIRENT_MIN) > r->dlen)
		return 0;
	const uint8_t *p = r->data + *pos;
	out->ino = get_be64(p);
	out->next = get_be64(p + 8);
	out->type = get_be32(p + 16);
	out->name_len = get_be16(p + 20);
	out->name = (const char *)p + FSP_DIRENT_MIN;
	*pos += FSP_DIRENT_MIN + out->name_len;
	memset(&out->entry, 0, sizeof out->entry);
	if (plus) {
		char why[8];
		struct rd rd = { r->data + *pos, FSP_ENTRY_BYTES + 4, 0, 0 };
		(void)rd_entry(&rd, &out->entry, r->op, why, sizeof why); /* checked by the decoder */
		out->entry.xattr_absent = rd_u32(&rd);
		*pos += FSP_ENTRY_BYTES + 4;
	}
	return 1;
}

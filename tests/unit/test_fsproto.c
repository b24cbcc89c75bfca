/* Unit tests for the dipolefs protocol codec (fsproto.c): every op's request
 * and reply survive encode -> decode -> encode byte for byte with their
 * values, and a table of malformed frames is refused with a reason naming
 * the op and the field. */
#include "fsproto.h"
#include "unit.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>

static uint8_t frame[FSP_HDR + FSP_PAYLOAD_MAX];
static uint8_t frame2[FSP_HDR + FSP_PAYLOAD_MAX];
static const uint8_t data[] = "some file data \x01\x02\xff";
static const uint8_t target[] = "../a/symlink/target";

/* A whole frame: the encoded head, then the trailing bytes. Its length. */
static size_t req_frame(uint8_t *b, const struct fsp_req *q)
{
	int n = fsp_encode_req(b, FSP_HDR + FSP_HEAD_MAX, 77, q);
	if (n < 0)
		return 0;
	/* the header's length counts the trailing bytes the op carries */
	size_t trailing = get_be32(b + 8) - ((size_t)n - FSP_HDR);
	if (trailing)
		memcpy(b + n, q->data, trailing);
	return (size_t)n + trailing;
}

static size_t reply_frame(uint8_t *b, const struct fsp_reply *r)
{
	int n = fsp_encode_reply(b, FSP_HDR + FSP_HEAD_MAX, 78, r);
	if (n < 0)
		return 0;
	size_t trailing = get_be32(b + 8) - ((size_t)n - FSP_HDR);
	if (trailing)
		memcpy(b + n, r->data, trailing);
	return (size_t)n + trailing;
}

static int decode_req(const uint8_t *b, size_t n, struct fsp_req *q, char *why)
{
	struct fsp_hdr h;
	int rc = fsp_decode_hdr(b, &h, why, 256);
	if (rc)
		return rc;
	if (h.len != n - FSP_HDR)
		return -999;
	return fsp_decode_req(&h, b + FSP_HDR, q, why, 256);
}

static int decode_reply(const uint8_t *b, size_t n, struct fsp_reply *r, char *why)
{
	struct fsp_hdr h;
	int rc = fsp_decode_hdr(b, &h, why, 256);
	if (rc)
		return rc;
	if (h.len != n - FSP_HDR)
		return -999;
	return fsp_decode_reply(&h, b + FSP_HDR, r, why, 256);
}

static struct stat some_attr(void)
{
	struct stat st = { 0 };
	st.st_ino = 1234567890123ull;
	st.st_mode = S_IFREG | 0640;
	st.st_nlink = 3;
	st.st_uid = 1000;
	st.st_gid = 100;
	st.st_rdev = 0x0801;
	st.st_size = (off_t)5000000000ll;
	st.st_blksize = 4096;
	st.st_blocks = 9765632;
	st.st_atim = (struct timespec){ 1700000000, 1 };
	st.st_mtim = (struct timespec){ 1700000001, 999999999 };
	st.st_ctim = (struct timespec){ -5, 0 };
	return st;
}

/* A request with every field set to something valid for op. */
static struct fsp_req full_req(uint16_t op)
{
	struct fsp_req q = { .op = op };
	q.caller = (struct fsp_caller){ .uid = 1000, .gid = 100, .pid = 4242, .node_id = 2, .ngroups = 3,
					.groups = { 100, 27, 1001 } };
	q.ino = 42;
	q.newparent = 43;
	q.fh = 0xfeedfacecafebeefull;
	q.off = 1ull << 40;
	q.len = op == FSP_READLINK ? FSP_PATH_MAX : op == FSP_READDIR ? 4096 : op == FSP_FORGET ? 7 : 65536;
	q.u64 = 0x1122334455667788ull;
	q.mode = op == FSP_FALLOCATE ? 1 : S_IFREG | 0644;
	q.flags = op == FSP_OPEN || op == FSP_CREATE ? O_RDWR | O_CREAT : op == FSP_SETATTR ? 0x3f
		: op == FSP_LSEEK ? SEEK_DATA : 1;
	q.name = op == FSP_SETXATTR || op == FSP_GETXATTR || op == FSP_REMOVEXATTR ? "user.some/attr" : "a name";
	q.name_len = (uint16_t)strlen(q.name);
	q.name2 = "new name";
	q.name2_len = 8;
	q.data = op == FSP_SYMLINK ? target : data;
	q.dlen = op == FSP_SYMLINK ? (uint32_t)strlen((const char *)target) : sizeof data;
	q.attr = some_attr();
	q.lock = (struct fsp_lock){ .start = 10, .end = UINT64_MAX, .type = FSP_WRLCK, .flock = 0, .owner = 99,
				    .node_id = 2, .pid = 4242 };
	q.inval_off = 4096;
	q.inval_len = 8192;
	return q;
}

static const uint16_t all_ops[] = {
	FSP_LOOKUP, FSP_FORGET, FSP_GETATTR, FSP_SETATTR, FSP_READLINK, FSP_MKNOD, FSP_MKDIR, FSP_UNLINK, FSP_RMDIR,
	FSP_SYMLINK, FSP_RENAME, FSP_LINK, FSP_OPEN, FSP_CREATE, FSP_READ, FSP_WRITE, FSP_FLUSH, FSP_RELEASE,
	FSP_FSYNC, FSP_OPENDIR, FSP_READDIR, FSP_RELEASEDIR, FSP_FSYNCDIR, FSP_STATFS, FSP_SETXATTR, FSP_GETXATTR,
	FSP_LISTXATTR, FSP_REMOVEXATTR, FSP_FALLOCATE, FSP_GETLK, FSP_SETLK, FSP_INTERRUPT, FSP_LSEEK,
	FSP_RECLAIM_DONE, FSP_MOUNTED, FSP_READDIRPLUS, FSP_INVAL_INODE, FSP_INVAL_ENTRY,
};

TEST(every_request_round_trips)
{
	char why[256];
	CHECK(ARRAY_SIZE(all_ops) == FSP_OP_LAST + 2);
	for (size_t i = 0; i < ARRAY_SIZE(all_ops); i++) {
		struct fsp_req q = full_req(all_ops[i]), d;
		size_t n = req_frame(frame, &q);
		CHECK(n > FSP_HDR);
		int rc = decode_req(frame, n, &d, why);
		if (rc)
			fprintf(stderr, "    %s: %s\n", fsp_op_name(all_ops[i]), why);
		CHECK(rc == 0);
		CHECK(d.op == q.op);
		/* what the decoder read encodes to the same bytes */
		size_t n2 = req_frame(frame2, &d);
		CHECK(n2 == n && !memcmp(frame, frame2, n));
		CHECK(strcmp(fsp_op_name(all_ops[i]), "?"));
	}
	/* spot checks of values through the decoder */
	struct fsp_req q = full_req(FSP_RENAME), d;
	CHECK(decode_req(frame, req_frame(frame, &q), &d, why) == 0);
	CHECK(d.ino == 42 && d.newparent == 43 && d.flags == 1 && d.name_len == 6 && !memcmp(d.name, "a name", 6) &&
	      d.name2_len == 8 && !memcmp(d.name2, "new name", 8));
	CHECK(d.caller.uid == 1000 && d.caller.ngroups == 3 && d.caller.groups[2] == 1001 && d.caller.node_id == 2);
	q = full_req(FSP_WRITE);
	CHECK(decode_req(frame, req_frame(frame, &q), &d, why) == 0);
	CHECK(d.dlen == sizeof data && !memcmp(d.data, data, sizeof data) && d.off == 1ull << 40 && d.fh == q.fh);
	q = full_req(FSP_SETATTR);
	CHECK(decode_req(frame, req_frame(frame, &q), &d, why) == 0);
	CHECK(d.attr.st_size == 5000000000ll && d.attr.st_mtim.tv_nsec == 999999999 && d.attr.st_ctim.tv_sec == -5 &&
	      d.attr.st_mode == (S_IFREG | 0640) && d.attr.st_nlink == 3);
	q = full_req(FSP_SETLK);
	CHECK(decode_req(frame, req_frame(frame, &q), &d, why) == 0);
	CHECK(d.lock.end == UINT64_MAX && d.lock.type == FSP_WRLCK && d.u64 == q.u64 && d.flags == 1);
	CHECK(fsp_op_oneway(FSP_FORGET) && fsp_op_oneway(FSP_INTERRUPT) && !fsp_op_oneway(FSP_LOOKUP));
	/* one megabyte of data, the most a write carries */
	static uint8_t big[FSP_IO_MAX];
	memset(big, 0xa5, sizeof big);
	q = full_req(FSP_WRITE);
	q.data = big;
	q.dlen = FSP_IO_MAX;
	CHECK(decode_req(frame, req_frame(frame, &q), &d, why) == 0 && d.dlen == FSP_IO_MAX);
	q.dlen = FSP_IO_MAX + 1;
	CHECK(fsp_encode_req(frame, sizeof frame, 1, &q) == -EMSGSIZE);
}

TEST(every_reply_round_trips)
{
	char why[256];
	static uint8_t batch[4096];
	size_t used = 0;
	CHECK(fsp_dirent_put(batch, sizeof batch, &used, 1, 1, S_IFDIR, ".", 1) == 0);
	CHECK(fsp_dirent_put(batch, sizeof batch, &used, 7, 2, S_IFREG, "file", 4) == 0);
	CHECK(fsp_dirent_put(batch, sizeof batch, &used, 8, 3, S_IFLNK, "link", 4) == 0);
	CHECK(fsp_dirent_put(batch, 40, &(size_t){ 30 }, 8, 3, S_IFLNK, "link", 4) == 1);
	CHECK(fsp_dirent_put(batch, sizeof batch, &used, 8, 3, S_IFLNK, "", 0) == -EINVAL);
	/* READDIRPLUS: "." without a lookup, a file with one */
	static uint8_t plus[4096];
	size_t pused = 0;
	struct fsp_entry dot = { .attr = { .st_ino = 1, .st_mode = S_IFDIR } };
	struct fsp_entry file = { .ino = 9, .generation = 3, .attr = some_attr(), .attr_timeout_ns = 1000000000,
				  .xattr_absent = 0xd };
	CHECK(fsp_direntplus_put(plus, sizeof plus, &pused, 1, S_IFDIR, ".", 1, &dot) == 0);
	CHECK(fsp_direntplus_put(plus, sizeof plus, &pused, 2, S_IFREG, "file", 4, &file) == 0);
	CHECK(pused == 2 * FSP_DIRENTPLUS_MIN + 5);
	CHECK(fsp_direntplus_put(plus, FSP_DIRENTPLUS_MIN + 3, &(size_t){ 0 }, 2, S_IFREG, "file", 4, &file) == 1);
	CHECK(FSP_DIRENTPLUS_MIN + 4 < FSP_DIRENTPLUS_ROOM(4)); /* a batch never outgrows the room it was asked */

	for (size_t i = 0; i < ARRAY_SIZE(all_ops); i++) {
		uint16_t op = all_ops[i];
		if (fsp_op_oneway(op)) {
			CHECK(fsp_encode_reply(frame, sizeof frame, 1, &(struct fsp_reply){ .op = op }) == -EINVAL);
			continue;
		}
		struct fsp_reply r = { .op = op }, d;
		r.entry = (struct fsp_entry){ .ino = 9, .generation = 3, .attr = some_attr(), .attr_timeout_ns = 1000000000,
					      .entry_timeout_ns = 2 };
		r.attr = some_attr();
		r.fh = 55;
		r.lock = (struct fsp_lock){ .start = 0, .end = 99, .type = FSP_RDLCK, .owner = 5, .node_id = 1, .pid = 3 };
		r.st = (struct statvfs){ .f_bsize = 4096, .f_frsize = 4096, .f_blocks = 1000, .f_bfree = 500,
					 .f_bavail = 400, .f_files = 100, .f_ffree = 50, .f_favail = 50, .f_fsid = 77,
					 .f_flag = 0, .f_namemax = 255 };
		if (op == FSP_READ || op == FSP_GETXATTR || op == FSP_LISTXATTR) {
			r.data = data;
			r.dlen = sizeof data;
			r.result = sizeof data;
		} else if (op == FSP_READLINK) {
			r.data = target;
			r.dlen = (uint32_t)strlen((const char *)target);
			r.result = r.dlen;
		} else if (op == FSP_READDIR) {
			r.data = batch;
			r.dlen = (uint32_t)used;
			r.ndirents = 3;
		} else if (op == FSP_READDIRPLUS) {
			r.data = plus;
			r.dlen = (uint32_t)pused;
			r.ndirents = 2;
		} else if (op == FSP_WRITE || op == FSP_LSEEK) {
			r.result = 12345;
		}
		size_t n = reply_frame(frame, &r);
		int rc = decode_reply(frame, n, &d, why);
		if (rc)
			fprintf(stderr, "    %s: %s\n", fsp_op_name(op), why);
		CHECK(rc == 0);
		CHECK(d.result == r.result);
		size_t n2 = reply_frame(frame2, &d);
		CHECK(n2 == n && !memcmp(frame, frame2, n));
		/* every op's error reply: the errno alone */
		struct fsp_reply e = { .op = op, .result = -ENOENT };
		n = reply_frame(frame, &e);
		CHECK(n == FSP_HDR + 8);
		CHECK(decode_reply(frame, n, &d, why) == 0 && d.result == -ENOENT);
	}
	struct fsp_reply r = { .op = FSP_READDIR, .data = batch, .dlen = (uint32_t)used, .ndirents = 3 }, d;
	CHECK(decode_reply(frame, reply_frame(frame, &r), &d, why) == 0);
	size_t pos = 0;
	struct fsp_dirent de;
	CHECK(fsp_dirent_next(&d, &pos, &de) && de.ino == 1 && de.name_len == 1 && de.type == S_IFDIR);
	CHECK(fsp_dirent_next(&d, &pos, &de) && de.ino == 7 && de.next == 2 && !memcmp(de.name, "file", 4));
	CHECK(fsp_dirent_next(&d, &pos, &de) && de.type == S_IFLNK);
	CHECK(!fsp_dirent_next(&d, &pos, &de));
	r = (struct fsp_reply){ .op = FSP_READDIRPLUS, .data = plus, .dlen = (uint32_t)pused, .ndirents = 2 };
	CHECK(decode_reply(frame, reply_frame(frame, &r), &d, why) == 0);
	pos = 0;
	CHECK(fsp_dirent_next(&d, &pos, &de) && de.ino == 1 && de.name_len == 1 && !de.entry.ino);
	CHECK(fsp_dirent_next(&d, &pos, &de) && de.next == 2 && !memcmp(de.name, "file", 4) && de.entry.ino == 9 &&
	      de.ino == file.attr.st_ino && de.entry.attr.st_size == file.attr.st_size &&
	      de.entry.attr_timeout_ns == 1000000000 && de.entry.xattr_absent == 0xd);
	CHECK(!fsp_dirent_next(&d, &pos, &de));
	r = (struct fsp_reply){ .op = FSP_LOOKUP, .entry = { .ino = 9, .attr = some_attr(), .attr_timeout_ns = 1500000000 } };
	CHECK(decode_reply(frame, reply_frame(frame, &r), &d, why) == 0);
	CHECK(d.entry.ino == 9 && d.entry.attr_timeout_ns == 1500000000 && d.entry.attr.st_size == 5000000000ll);
	r = (struct fsp_reply){ .op = FSP_STATFS, .st = { .f_blocks = 1ull << 40, .f_namemax = 255 } };
	CHECK(decode_reply(frame, reply_frame(frame, &r), &d, why) == 0);
	CHECK(d.st.f_blocks == 1ull << 40 && d.st.f_namemax == 255);
}

/* ------------------------------------------------------------ malformed */

enum mut { M_NONE, M_BYTE, M_BE16, M_BE32, M_BE64, M_CUT, M_ADD };
struct bad {
	const char *what;
	int reply;               /* 0: request frame, 1: reply frame */
	uint16_t op;
	void (*fix)(struct fsp_req *q, struct fsp_reply *r); /* a bad value the encoder lets through */
	enum mut mut;            /* then a change of the encoded bytes */
	size_t at;               /* offset from the frame start (M_BYTE..M_BE64), bytes (M_CUT, M_ADD) */
	uint64_t val;
	const char *reason;      /* expected in why */
};

static void f_slash(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->name = "a/b"; q->name_len = 3; }
static void f_nul(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->name = "a\0b"; q->name_len = 3; }
static void f_empty(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->name_len = 0; }
static void f_dotdot(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->name = ".."; q->name_len = 2; }
static void f_readbig(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->len = FSP_IO_MAX + 1; }
static void f_len0(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->len = 0; }
static void f_xbig(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->len = FSP_XATTR_MAX + 1; }
static void f_mask(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->flags = 1u << 6; }
static void f_ren3(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->flags = 3; }
static void f_ren4(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->flags = 4; }
static void f_lk3(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->lock.type = 3; }
static void f_lkrange(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->lock.start = 10; q->lock.end = 9; }
static void f_tgtnul(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->data = (const uint8_t *)"a\0b"; q->dlen = 3; }
static void f_xval(struct fsp_req *q, struct fsp_reply *r) { (void)r; static uint8_t v[FSP_XATTR_MAX + 1]; q->data = v; q->dlen = sizeof v; }
static void f_whence(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->flags = 9; }
static void f_two(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->flags = 2; }
static void f_three(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->flags = 3; }
static void f_mode(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->mode = 0200000; }
static void f_fal0(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->len = 0; }
static void f_offbig(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->off = (uint64_t)INT64_MAX; }
static void f_inval(struct fsp_req *q, struct fsp_reply *r) { (void)r; q->inval_len = -1; }
static void f_r_errno(struct fsp_req *q, struct fsp_reply *r) { (void)q; r->result = -5000; }
static void f_r_readlen(struct fsp_req *q, struct fsp_reply *r) { (void)q; r->result = 3; r->data = data; r->dlen = 2; }
static void f_r_nonzero(struct fsp_req *q, struct fsp_reply *r) { (void)q; r->result = 1; }
static void f_r_ino0(struct fsp_req *q, struct fsp_reply *r) { (void)q; r->entry.ino = 0; }
static void f_r_nsec(struct fsp_req *q, struct fsp_reply *r) { (void)q; r->attr.st_mtim.tv_nsec = 1000000000; }
static void f_r_lock(struct fsp_req *q, struct fsp_reply *r) { (void)q; r->lock.flock = 2; }
static void f_r_tmo(struct fsp_req *q, struct fsp_reply *r) { (void)q; r->entry.ino = 1; r->entry.entry_timeout_ns = UINT64_MAX; }
static uint8_t bad_batch[64];
static void f_r_dslash(struct fsp_req *q, struct fsp_reply *r)
{
	(void)q;
	size_t used = 0;
	fsp_dirent_put(bad_batch, sizeof bad_batch, &used, 5, 1, S_IFREG, "x/y", 3);
	r->data = bad_batch;
	r->dlen = (uint32_t)used;
	r->ndirents = 1;
}
static void f_r_dcount(struct fsp_req *q, struct fsp_reply *r)
{
	f_r_dslash(q, r);
	bad_batch[FSP_DIRENT_MIN + 1] = 'z'; /* "xzy": a good name, but the count says 2 */
	r->ndirents = 2;
}
static void f_r_dtype(struct fsp_req *q, struct fsp_reply *r)
{
	f_r_dslash(q, r);
	bad_batch[FSP_DIRENT_MIN + 1] = 'z';
	put_be32(bad_batch + 16, 0777);
}
static void f_r_dtrunc(struct fsp_req *q, struct fsp_reply *r)
{
	f_r_dslash(q, r);
	bad_batch[FSP_DIRENT_MIN + 1] = 'z';
	put_be16(bad_batch + 20, 40);
}
static uint8_t bad_plus[512];
/* a READDIRPLUS batch of one entry: name with e */
static void plus_one(struct fsp_reply *r, const char *name, const struct fsp_entry *e)
{
	size_t used = 0;
	fsp_direntplus_put(bad_plus, sizeof bad_plus, &used, 1, e->attr.st_mode & S_IFMT, name, strlen(name), e);
	r->data = bad_plus;
	r->dlen = (uint32_t)used;
	r->ndirents = 1;
}
static void f_r_plusdot(struct fsp_req *q, struct fsp_reply *r)
{
	(void)q;
	plus_one(r, "..", &(struct fsp_entry){ .ino = 4, .attr = { .st_ino = 4, .st_mode = S_IFDIR } });
}
static void f_r_plustmo(struct fsp_req *q, struct fsp_reply *r)
{
	(void)q;
	plus_one(r, "f", &(struct fsp_entry){ .ino = 4, .attr = { .st_ino = 4, .st_mode = S_IFREG },
					    .attr_timeout_ns = UINT64_MAX });
}
static void f_r_pluscut(struct fsp_req *q, struct fsp_reply *r)
{
	f_r_plustmo(q, r);
	put_be64(bad_plus + FSP_DIRENT_MIN + 1 + 16 + FSP_ATTR_BYTES, 0); /* a good timeout */
	r->dlen -= 1; /* the entry's last byte missing */
}
static void f_r_plusbits(struct fsp_req *q, struct fsp_reply *r)
{
	f_r_plustmo(q, r);
	put_be64(bad_plus + FSP_DIRENT_MIN + 1 + 16 + FSP_ATTR_BYTES, 0);
	put_be32(bad_plus + FSP_DIRENT_MIN + 1 + FSP_ENTRY_BYTES, 0x10);
}
static void f_r_link(struct fsp_req *q, struct fsp_reply *r) { (void)q; r->data = (const uint8_t *)"a\0"; r->dlen = 2; r->result = 2; }

static void f_r_wattr(struct fsp_req *q, struct fsp_reply *r)
{
	(void)q;
	r->result = 4;
	r->attr = some_attr();
	r->has_attr = 1;
}

static void f_r_pattr(struct fsp_req *q, struct fsp_reply *r)
{
	(void)q;
	r->result = 0;
	r->pattr = some_attr();
	r->has_pattr = 1;
	r->removed_ino = 77;
}

static void f_r_empty(struct fsp_req *q, struct fsp_reply *r)
{
	f_r_pattr(q, r);
	r->has_empty = 1;
	r->new_empty = 1;
}
static void f_r_empty2(struct fsp_req *q, struct fsp_reply *r)
{
	f_r_empty(q, r);
	r->new_empty = 2;
}

#define P (FSP_HDR) /* payload start */
static const struct bad bads[] = {
	{ "bad magic", 0, FSP_GETATTR, NULL, M_BYTE, 0, 'X', "bad frame magic" },
	{ "version 10", 0, FSP_GETATTR, NULL, M_BYTE, 4, 10, "frame version 10: this node speaks 1 to 9" },
	{ "reply: mkdir emptiness in a version 7 frame", 1, FSP_MKDIR, f_r_empty, M_BYTE, 4, 7,
	  "4 bytes more than its fields" },
	{ "reply: mkdir emptiness 2", 1, FSP_MKDIR, f_r_empty2, M_NONE, 0, 0, "MKDIR reply: new_empty 2: must be 0 or 1" },
	{ "reply: mkdir emptiness cut short", 1, FSP_MKDIR, f_r_empty, M_CUT, 0, 1, "too short" },
	{ "readdirplus in a version 6 frame", 0, FSP_READDIRPLUS, NULL, M_BYTE, 4, 6,
	  "READDIRPLUS: op in a version 6 frame: needs version 7" },
	{ "readdirplus batch 0", 0, FSP_READDIRPLUS, f_len0, M_NONE, 0, 0, "READDIRPLUS: batch 0 bytes" },
	{ "reply: readdirplus looks '..' up", 1, FSP_READDIRPLUS, f_r_plusdot, M_NONE, 0, 0,
	  "entry 0: a lookup of '.' or '..'" },
	{ "reply: readdirplus entry timeout", 1, FSP_READDIRPLUS, f_r_plustmo, M_NONE, 0, 0, "beyond a year" },
	{ "reply: readdirplus xattr bits", 1, FSP_READDIRPLUS, f_r_plusbits, M_NONE, 0, 0,
	  "entry 0: xattr_absent 0x10: unknown bits" },
	{ "reply: readdirplus entry cut short", 1, FSP_READDIRPLUS, f_r_pluscut, M_NONE, 0, 0, "entry 0: name runs past the batch" },
	{ "reply: parent attributes in a version 5 frame", 1, FSP_UNLINK, f_r_pattr, M_BYTE, 4, 5,
	  "UNLINK reply: payload 108 bytes: 100 bytes more than its fields" },
	{ "reply: parent attributes cut short", 1, FSP_UNLINK, f_r_pattr, M_CUT, 0, 1,
	  "UNLINK reply: payload 107 bytes: too short" },
	{ "reply: write attributes in a version 4 frame", 1, FSP_WRITE, f_r_wattr, M_BYTE, 4, 4,
	  "WRITE reply: payload 100 bytes: 92 bytes more than its fields" },
	{ "reply: write attributes cut short", 1, FSP_WRITE, f_r_wattr, M_CUT, 0, 1, "WRITE reply: payload 99 bytes: too short" },
	{ "version 0", 0, FSP_GETATTR, NULL, M_BYTE, 4, 0, "frame version 0" },
	{ "reclaim in a version 1 frame", 0, FSP_SETLK, f_two, M_BYTE, 4, 1,
	  "SETLK: flag RECLAIM in a version 1 frame: needs version 2" },
	{ "reclaim done in a version 1 frame", 0, FSP_RECLAIM_DONE, NULL, M_BYTE, 4, 1,
	  "RECLAIM_DONE: op in a version 1 frame" },
	{ "reply: reclaim done in a version 1 frame", 1, FSP_RECLAIM_DONE, NULL, M_BYTE, 4, 1,
	  "RECLAIM_DONE reply: op in a version 1 frame" },
	{ "mounted in a version 2 frame", 0, FSP_MOUNTED, NULL, M_BYTE, 4, 2,
	  "MOUNTED: op in a version 2 frame: needs version 3" },
	{ "reply: mounted in a version 2 frame", 1, FSP_MOUNTED, NULL, M_BYTE, 4, 2,
	  "MOUNTED reply: op in a version 2 frame" },
	{ "epoch in a version 1 frame", 0, FSP_GETATTR, NULL, M_BE32, 12, 1,
	  "GETATTR: owner epoch in a version 1 frame: needs version 4" },
	{ "reply: epoch in a version 1 frame", 1, FSP_GETATTR, NULL, M_BE32, 12, 7,
	  "GETATTR reply: owner epoch in a version 1 frame" },
	{ "unknown flags", 0, FSP_GETATTR, NULL, M_BYTE, 5, 0x80, "GETATTR: unknown flags 0x80" },
	{ "length beyond the maximum", 0, FSP_GETATTR, NULL, M_BE32, 8, FSP_PAYLOAD_MAX + 1, "more than" },
	{ "unknown op", 0, FSP_GETATTR, NULL, M_BE16, 6, 999, "op 999: no such op" },
	{ "op 0", 0, FSP_GETATTR, NULL, M_BE16, 6, 0, "op 0: no such op" },
	{ "reply flag on a request", 0, FSP_GETATTR, NULL, M_BYTE, 5, FSPF_REPLY, "a reply where a request" },
	{ "payload cut short", 0, FSP_LOOKUP, NULL, M_CUT, 0, 3, "LOOKUP: payload" },
	{ "bytes after the fields", 0, FSP_GETATTR, NULL, M_ADD, 0, 1, "1 bytes more than its fields" },
	{ "data length short of the payload", 0, FSP_WRITE, NULL, M_BE32, P + 20 + 12 + 24, 1, "more than its fields" },
	{ "33 groups", 0, FSP_GETATTR, NULL, M_BE32, P + 16, 33, "GETATTR: caller with 33 groups" },
	{ "name with a slash", 0, FSP_LOOKUP, f_slash, M_NONE, 0, 0, "LOOKUP: name (3 bytes) holds a '/'" },
	{ "name with a NUL", 0, FSP_MKDIR, f_nul, M_NONE, 0, 0, "MKDIR: name (3 bytes) holds a NUL" },
	{ "empty name", 0, FSP_UNLINK, f_empty, M_NONE, 0, 0, "UNLINK: name (0 bytes) empty" },
	{ "name ..", 0, FSP_RMDIR, f_dotdot, M_NONE, 0, 0, "RMDIR: name (2 bytes) is '.' or '..'" },
	{ "256-byte name", 0, FSP_LOOKUP, NULL, M_BE16, P + 20 + 12 + 8, 256, "LOOKUP: payload" },
	{ "new name with a slash", 0, FSP_RENAME, NULL, M_BYTE, P + 20 + 12 + 8 + 2 + 6 + 8 + 2 + 3, '/',
	  "RENAME: new name (8 bytes) holds a '/'" },
	{ "read beyond 1 MiB", 0, FSP_READ, f_readbig, M_NONE, 0, 0, "READ: length 1048577" },
	{ "read offset past 2^63", 0, FSP_READ, f_offbig, M_NONE, 0, 0, "READ: offset" },
	{ "write data length past the payload", 0, FSP_WRITE, NULL, M_BE32, P + 20 + 12 + 24, 1000, "WRITE: payload" },
	{ "readdir batch 0", 0, FSP_READDIR, f_len0, M_NONE, 0, 0, "READDIR: batch 0 bytes" },
	{ "readlink buffer 0", 0, FSP_READLINK, f_len0, M_NONE, 0, 0, "READLINK: buffer 0 bytes" },
	{ "getxattr buffer too big", 0, FSP_GETXATTR, f_xbig, M_NONE, 0, 0, "GETXATTR: buffer 65537" },
	{ "setxattr value too big", 0, FSP_SETXATTR, f_xval, M_NONE, 0, 0, "SETXATTR: value 65537 bytes" },
	{ "setattr unknown mask", 0, FSP_SETATTR, f_mask, M_NONE, 0, 0, "SETATTR: mask 0x40" },
	{ "rename noreplace|exchange", 0, FSP_RENAME, f_ren3, M_NONE, 0, 0, "RENAME: flags 0x3" },
	{ "rename whiteout", 0, FSP_RENAME, f_ren4, M_NONE, 0, 0, "RENAME: flags 0x4" },
	{ "lock type 3", 0, FSP_SETLK, f_lk3, M_NONE, 0, 0, "SETLK: lock type 3" },
	{ "lock start after end", 0, FSP_GETLK, f_lkrange, M_NONE, 0, 0, "GETLK: lock range 10-9" },
	{ "symlink target with NUL", 0, FSP_SYMLINK, f_tgtnul, M_NONE, 0, 0, "SYMLINK: target (3 bytes)" },
	{ "lseek whence 9", 0, FSP_LSEEK, f_whence, M_NONE, 0, 0, "LSEEK: whence 9" },
	{ "fsync datasync 2", 0, FSP_FSYNC, f_two, M_NONE, 0, 0, "FSYNC: datasync 2" },
	{ "setlk wait and reclaim", 0, FSP_SETLK, f_three, M_NONE, 0, 0, "SETLK: flags 3: expected 0, WAIT (1) or RECLAIM (2)" },
	{ "mkdir mode beyond 0177777", 0, FSP_MKDIR, f_mode, M_NONE, 0, 0, "MKDIR: mode 0200000" },
	{ "fallocate 0 bytes", 0, FSP_FALLOCATE, f_fal0, M_NONE, 0, 0, "FALLOCATE: range" },
	{ "inval negative length", 0, FSP_INVAL_INODE, f_inval, M_NONE, 0, 0, "INVAL_INODE: range 4096+-1" },
	{ "reply: result not an errno", 1, FSP_GETATTR, f_r_errno, M_NONE, 0, 0, "GETATTR reply: result -5000" },
	{ "reply: request frame", 1, FSP_GETATTR, NULL, M_BYTE, 5, 0, "a request where a reply" },
	{ "reply to a one-way op", 1, FSP_GETATTR, NULL, M_BE16, 6, FSP_FORGET, "FORGET reply: this op has no reply" },
	{ "reply: read data differs from result", 1, FSP_READ, f_r_readlen, M_NONE, 0, 0, "READ reply: result 3 with 2" },
	{ "reply: mkdir result 1", 1, FSP_MKDIR, f_r_nonzero, M_NONE, 0, 0, "MKDIR reply: result 1" },
	{ "reply: entry node id 0", 1, FSP_LOOKUP, f_r_ino0, M_NONE, 0, 0, "LOOKUP reply: entry: node id 0" },
	{ "reply: entry timeout", 1, FSP_LOOKUP, f_r_tmo, M_NONE, 0, 0, "beyond a year" },
	{ "reply: nanoseconds 1e9", 1, FSP_GETATTR, f_r_nsec, M_NONE, 0, 0, "GETATTR reply: attributes: a time" },
	{ "reply: lock flock 2", 1, FSP_GETLK, f_r_lock, M_NONE, 0, 0, "GETLK reply: lock flock flag 2" },
	{ "reply: readdir name with a slash", 1, FSP_READDIR, f_r_dslash, M_NONE, 0, 0, "entry 0: name holds a '/'" },
	{ "reply: readdir count", 1, FSP_READDIR, f_r_dcount, M_NONE, 0, 0, "batch says 2 entries, holds 1" },
	{ "reply: readdir type", 1, FSP_READDIR, f_r_dtype, M_NONE, 0, 0, "entry 0: type 0777" },
	{ "reply: readdir name past the batch", 1, FSP_READDIR, f_r_dtrunc, M_NONE, 0, 0, "name runs past the batch" },
	{ "reply: readlink with NUL", 1, FSP_READLINK, f_r_link, M_NONE, 0, 0, "READLINK reply: target of 2 bytes" },
	{ "reply: bytes after an errno", 1, FSP_GETATTR, f_r_errno, M_ADD, 0, 4, "more than its fields" },
};

/* Frames go out with the lowest version that has what they use, so a
 * node still speaks to a version 1 one until it reclaims a lock. */
TEST(frames_carry_the_lowest_version_they_need)
{
	char why[256];
	struct fsp_req q = full_req(FSP_SETLK), d;
	size_t n = req_frame(frame, &q); /* wait */
	CHECK(frame[4] == 1);
	q.flags = FSP_SETLK_RECLAIM;
	n = req_frame(frame, &q);
	CHECK(frame[4] == 2);
	CHECK(decode_req(frame, n, &d, why) == 0 && d.flags == FSP_SETLK_RECLAIM);
	q = full_req(FSP_RECLAIM_DONE);
	n = req_frame(frame, &q);
	CHECK(frame[4] == 2 && decode_req(frame, n, &d, why) == 0 && d.op == FSP_RECLAIM_DONE);
	q = full_req(FSP_GETATTR);
	n = req_frame(frame, &q);
	CHECK(frame[4] == 1 && decode_req(frame, n, &d, why) == 0);
	struct fsp_reply r = { .op = FSP_RECLAIM_DONE };
	n = reply_frame(frame, &r);
	CHECK(frame[4] == 2);
	r.op = FSP_SETLK;
	n = reply_frame(frame, &r);
	CHECK(frame[4] == 1);
	/* version 3: the mounted nodes, asked with the set known, answered
	 * with the set as the result */
	q = full_req(FSP_MOUNTED);
	q.u64 = 0x5;
	n = req_frame(frame, &q);
	CHECK(frame[4] == 3 && decode_req(frame, n, &d, why) == 0 && d.op == FSP_MOUNTED && d.u64 == 0x5);
	r = (struct fsp_reply){ .op = FSP_MOUNTED, .result = 0x7 };
	n = reply_frame(frame, &r);
	struct fsp_reply rd;
	CHECK(frame[4] == 3 && decode_reply(frame, n, &rd, why) == 0 && rd.result == 0x7);
	/* version 4: an owner epoch, on any op, both ways; 0 is none */
	q = full_req(FSP_WRITE);
	q.epoch = 0xdeadbeef;
	n = req_frame(frame, &q);
	CHECK(frame[4] == 4 && get_be32(frame + 12) == 0xdeadbeef);
	CHECK(decode_req(frame, n, &d, why) == 0 && d.epoch == 0xdeadbeef && d.op == FSP_WRITE);
	q.epoch = 0;
	n = req_frame(frame, &q);
	CHECK(frame[4] == 1 && decode_req(frame, n, &d, why) == 0 && d.epoch == 0);
	r = (struct fsp_reply){ .op = FSP_GETATTR, .result = -ESTALE, .epoch = 42 };
	n = reply_frame(frame, &r);
	CHECK(frame[4] == 4 && decode_reply(frame, n, &rd, why) == 0 && rd.epoch == 42 && rd.result == -ESTALE);
	/* version 5: a write reply with the file's attributes after it; without
	 * them (an older client), or failed, the version the rest needs */
	r = (struct fsp_reply){ .op = FSP_WRITE, .result = 4096, .attr = some_attr(), .has_attr = 1 };
	n = reply_frame(frame, &r);
	CHECK(frame[4] == 5 && decode_reply(frame, n, &rd, why) == 0 && rd.has_attr && rd.result == 4096 &&
	      rd.attr.st_size == 5000000000ll && rd.attr.st_mtim.tv_nsec == 999999999);
	r.epoch = 9;
	n = reply_frame(frame, &r);
	CHECK(frame[4] == 5 && decode_reply(frame, n, &rd, why) == 0 && rd.has_attr && rd.epoch == 9);
	r = (struct fsp_reply){ .op = FSP_WRITE, .result = 4096, .attr = some_attr() };
	n = reply_frame(frame, &r);
	CHECK(frame[4] == 1 && n == FSP_HDR + 8 && decode_reply(frame, n, &rd, why) == 0 && !rd.has_attr);
	r = (struct fsp_reply){ .op = FSP_WRITE, .result = -ENOSPC, .has_attr = 1 };
	n = reply_frame(frame, &r);
	CHECK(frame[4] == 1 && n == FSP_HDR + 8 && decode_reply(frame, n, &rd, why) == 0 && !rd.has_attr);
	/* version 6: replies of calls that change a directory with its
	 * attributes after them (unlink, rmdir: and the removed node) */
	r = (struct fsp_reply){ .op = FSP_CREATE, .result = 0, .pattr = some_attr(), .has_pattr = 1, .fh = 5 };
	r.entry.ino = 12;
	n = reply_frame(frame, &r);
	CHECK(frame[4] == 6 && decode_reply(frame, n, &rd, why) == 0 && rd.has_pattr && rd.fh == 5 &&
	      rd.entry.ino == 12 && rd.pattr.st_size == 5000000000ll && rd.pattr.st_mtim.tv_nsec == 999999999);
	r = (struct fsp_reply){ .op = FSP_RMDIR, .result = 0, .pattr = some_attr(), .has_pattr = 1, .removed_ino = 9 };
	n = reply_frame(frame, &r);
	CHECK(frame[4] == 6 && decode_reply(frame, n, &rd, why) == 0 && rd.has_pattr && rd.removed_ino == 9);
	r.has_pattr = 0;
	n = reply_frame(frame, &r);
	CHECK(frame[4] == 1 && n == FSP_HDR + 8 && decode_reply(frame, n, &rd, why) == 0 && !rd.has_pattr &&
	      !rd.removed_ino);
	r = (struct fsp_reply){ .op = FSP_UNLINK, .result = -ENOENT, .has_pattr = 1 };
	n = reply_frame(frame, &r);
	CHECK(frame[4] == 1 && n == FSP_HDR + 8 && decode_reply(frame, n, &rd, why) == 0 && !rd.has_pattr);
	/* version 8: a mkdir reply says whether the new directory was empty */
	for (uint32_t v = 0; v < 2; v++) {
		r = (struct fsp_reply){ .op = FSP_MKDIR, .result = 0, .pattr = some_attr(), .has_pattr = 1,
					.has_empty = 1, .new_empty = v };
		r.entry.ino = 13;
		n = reply_frame(frame, &r);
		CHECK(frame[4] == 8 && decode_reply(frame, n, &rd, why) == 0 && rd.has_pattr && rd.has_empty &&
		      rd.new_empty == v && rd.entry.ino == 13);
	}
	r.has_empty = 0;
	n = reply_frame(frame, &r);
	CHECK(frame[4] == 6 && decode_reply(frame, n, &rd, why) == 0 && rd.has_pattr && !rd.has_empty);
	r = (struct fsp_reply){ .op = FSP_CREATE, .result = 0, .pattr = some_attr(), .has_pattr = 1, .has_empty = 1 };
	r.entry.ino = 13;
	n = reply_frame(frame, &r); /* only mkdir carries it */
	CHECK(frame[4] == 6 && decode_reply(frame, n, &rd, why) == 0 && !rd.has_empty);
	/* ops that do not change a directory never carry them */
	r = (struct fsp_reply){ .op = FSP_GETATTR, .result = 0, .attr = some_attr(), .has_pattr = 1 };
	n = reply_frame(frame, &r);
	CHECK(frame[4] == 1 && decode_reply(frame, n, &rd, why) == 0 && !rd.has_pattr);
}

TEST(a_new_nodes_umask_rides_in_its_mode_from_version_9)
{
	uint16_t ops[] = { FSP_MKNOD, FSP_MKDIR, FSP_CREATE };
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		struct fsp_req q = full_req(ops[i]), d;
		char why[256] = "";
		q.mode = S_IFREG | 0666;
		q.has_umask = 1;
		q.umask = 077;
		size_t n = req_frame(frame, &q);
		CHECK(frame[4] == 9 && decode_req(frame, n, &d, why) == 0 && d.has_umask && d.umask == 077 &&
		      d.mode == (S_IFREG | 0666));
		q.umask = 0; /* umask 0 is still a umask: the owner applies none */
		n = req_frame(frame, &q);
		CHECK(frame[4] == 9 && decode_req(frame, n, &d, why) == 0 && d.has_umask && d.umask == 0);
		q.has_umask = 0;
		n = req_frame(frame, &q);
		CHECK(frame[4] == 1 && decode_req(frame, n, &d, why) == 0 && !d.has_umask && d.mode == (S_IFREG | 0666));
		/* a umask in an older frame, or bits beyond mode and umask: refused */
		q.has_umask = 1;
		q.umask = 022;
		n = req_frame(frame, &q);
		frame[4] = 8;
		CHECK(decode_req(frame, n, &d, why) == -EPROTO && strstr(why, "needs version 9"));
		q.mode |= 1u << 28;
		n = req_frame(frame, &q);
		CHECK(decode_req(frame, n, &d, why) == -EPROTO && strstr(why, "beyond the file mode"));
	}
}

TEST(malformed_frames_are_refused_with_a_reason)
{
	for (size_t i = 0; i < ARRAY_SIZE(bads); i++) {
		const struct bad *b = &bads[i];
		struct fsp_req q = full_req(b->op);
		struct fsp_reply r = { .op = b->op, .entry = { .ino = 5, .attr = some_attr() }, .attr = some_attr() };
		char why[256] = "";
		if (b->fix)
			b->fix(&q, &r);
		if (b->mut == M_ADD && b->val == 4)
			r.result = -EIO;
		size_t n = b->reply ? reply_frame(frame, &r) : req_frame(frame, &q);
		CHECK(n >= FSP_HDR);
		switch (b->mut) {
		case M_NONE: break;
		case M_BYTE: frame[b->at] = (uint8_t)b->val; break;
		case M_BE16: put_be16(frame + b->at, (uint16_t)b->val); break;
		case M_BE32: put_be32(frame + b->at, (uint32_t)b->val); break;
		case M_BE64: put_be64(frame + b->at, b->val); break;
		case M_CUT: n -= b->val; put_be32(frame + 8, (uint32_t)(n - FSP_HDR)); break;
		case M_ADD: memset(frame + n, 0, b->val); n += b->val; put_be32(frame + 8, (uint32_t)(n - FSP_HDR)); break;
		}
		struct fsp_hdr h;
		int rc = fsp_decode_hdr(frame, &h, why, sizeof why);
		if (!rc) {
			/* a header that lies about the length: decode what is there */
			if (h.len > n - FSP_HDR)
				h.len = (uint32_t)(n - FSP_HDR);
			struct fsp_req dq;
			struct fsp_reply dr;
			rc = b->reply ? fsp_decode_reply(&h, frame + FSP_HDR, &dr, why, sizeof why)
				      : fsp_decode_req(&h, frame + FSP_HDR, &dq, why, sizeof why);
		}
		if (rc != -EPROTO || !strstr(why, b->reason))
			fprintf(stderr, "    %s: rc %d, why \"%s\", expected \"%s\"\n", b->what, rc, why, b->reason);
		CHECK(rc == -EPROTO);
		CHECK_STR_HAS(why, b->reason);
	}
}

TEST(encoder_refuses_what_does_not_fit)
{
	struct fsp_req q = full_req(FSP_LOOKUP);
	uint8_t small[32];
	CHECK(fsp_encode_req(small, sizeof small, 1, &q) == -EMSGSIZE);
	q.name_len = FSP_NAME_MAX + 1;
	CHECK(fsp_encode_req(frame, sizeof frame, 1, &q) == -EMSGSIZE);
	q.op = 0;
	CHECK(fsp_encode_req(frame, sizeof frame, 1, &q) == -EINVAL);
	q.op = 200;
	CHECK(fsp_encode_req(frame, sizeof frame, 1, &q) == -EINVAL);
}

int main(void)
{
	return unit_main("fsproto");
}

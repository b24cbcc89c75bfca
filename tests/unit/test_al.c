/* Unit tests for the activity log (src/store/al.c) on temporary files with
 * fresh metadata: which extents are logged and when the log is written,
 * eviction order under the al-extents limit, what the on-disk record holds
 * and what survives a crash (the disk's volatile cache drops unsynced
 * writes at close), requests over two extents and the device's end. */
#include "unit.h"
#include "al.h"
#include "meta.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXT ((uint64_t)MD_AL_EXTENT)

static char path[64], fault_path[64];

/* 64 MiB with metadata: the data area is not a multiple of 4 MiB, so its
 * last extent is short. `faulty`: the disk's volatile write cache is on. */
static struct disk *mkdisk(struct md_super *sb, int faulty)
{
	struct disk *d = NULL;
	snprintf(path, sizeof path, "/tmp/dipole-altest-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, 64ll << 20) < 0)
		return NULL;
	close(fd);
	if (disk_open(&d, path, 0) || md_create(d, 1, "r", 1, NULL, sb)) {
		disk_close(d);
		return NULL;
	}
	if (!faulty)
		return d;
	disk_close(d);
	snprintf(fault_path, sizeof fault_path, "/tmp/dipole-alfaults-XXXXXX");
	fd = mkstemp(fault_path);
	if (fd < 0 || write(fd, "volatile\n", 9) != 9)
		return NULL;
	close(fd);
	setenv("DIPOLE_FAULTS", fault_path, 1);
	d = NULL;
	int rc = disk_open(&d, path, 0);
	unsetenv("DIPOLE_FAULTS");
	return rc ? NULL : d;
}

static void rmdisk(struct disk *d)
{
	disk_close(d);
	unlink(path);
	if (fault_path[0])
		unlink(fault_path);
	fault_path[0] = 0;
}

/* The newest record on disk as a bit set of extents (< 64), or -1. */
static long long on_disk(struct disk *d, const struct md_super *sb, uint64_t *seq)
{
	uint32_t ext[MD_AL_MAX];
	uint64_t s = 0;
	int n = md_read_al(d, sb, ext, &s);
	long long set = 0;
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (ext[i] >= 63)
			return -1;
		set |= 1ll << ext[i];
	}
	if (seq)
		*seq = s;
	return set;
}

#define BIT(x) (1ll << (x))

/* What the eviction callback saw, in order. */
struct evictions {
	uint32_t ext[32];
	int n;
	int fail;                 /* return this instead of 0 */
	struct disk *d;
	const struct md_super *sb;
	int still_logged;         /* every evicted extent was still on disk when evicted */
	int calls;                /* evict calls (one per record that drops extents) */
};

static int on_evict(void *arg, const uint32_t *ext, unsigned n)
{
	struct evictions *ev = arg;
	if (ev->fail)
		return ev->fail;
	ev->calls++;
	long long set = on_disk(ev->d, ev->sb, NULL);
	for (unsigned i = 0; i < n; i++) {
		if (set < 0 || ext[i] >= 63 || !(set & BIT(ext[i])))
			ev->still_logged = 0;
		if (ev->n < 32)
			ev->ext[ev->n++] = ext[i];
	}
	return 0;
}

/* One short write in extent x, done. */
static int touch(struct al *a, uint64_t x)
{
	int rc = al_begin(a, x * EXT + 4096, 4096);
	if (!rc)
		al_end(a, x * EXT + 4096, 4096);
	return rc;
}

TEST(hot_extent_is_logged_once)
{
	struct md_super sb;
	struct disk *d = mkdisk(&sb, 0);
	struct al *a = NULL;
	uint64_t seq = 0;
	CHECK(d && al_new(&a, d, &sb, sb.lay.data_size, 4, 0, NULL, NULL) == 0);
	if (!a) {
		rmdisk(d);
		return;
	}
	CHECK(al_active(a) == 0 && al_updates(a) == 0 && on_disk(d, &sb, NULL) == 0);
	CHECK(al_begin(a, 0, 4096) == 0);
	CHECK(al_updates(a) == 1 && al_active(a) == 1);
	CHECK(on_disk(d, &sb, &seq) == BIT(0) && seq == 1);
	al_end(a, 0, 4096);
	/* the same extent again, its last byte, and an empty request: no update */
	CHECK(al_begin(a, 512, 4096) == 0);
	al_end(a, 512, 4096);
	CHECK(al_begin(a, EXT - 1, 1) == 0);
	al_end(a, EXT - 1, 1);
	CHECK(al_begin(a, 5 * EXT, 0) == 0);
	al_end(a, 5 * EXT, 0);
	CHECK(al_updates(a) == 1 && al_active(a) == 1 && on_disk(d, &sb, NULL) == BIT(0));
	/* a cold extent: one update, both listed */
	CHECK(touch(a, 3) == 0 && al_updates(a) == 2 && al_active(a) == 2);
	CHECK(on_disk(d, &sb, &seq) == (BIT(0) | BIT(3)) && seq == 2);
	al_free(a);
	rmdisk(d);
}

/* With al-extents 2, cold extents push the oldest out first (the clock
 * hand goes round), and the log still names an extent while it is evicted. */
TEST(eviction_order_with_al_extents_limit)
{
	struct md_super sb;
	struct disk *d = mkdisk(&sb, 0);
	struct evictions ev = { .d = d, .sb = &sb, .still_logged = 1 };
	struct al *a = NULL;
	CHECK(d && al_new(&a, d, &sb, sb.lay.data_size, 2, 0, on_evict, &ev) == 0);
	if (!a) {
		rmdisk(d);
		return;
	}
	CHECK(touch(a, 0) == 0 && touch(a, 1) == 0 && ev.n == 0);
	CHECK(touch(a, 2) == 0 && ev.n == 1 && ev.ext[0] == 0);
	CHECK(on_disk(d, &sb, NULL) == (BIT(1) | BIT(2)) && al_active(a) == 2);
	CHECK(touch(a, 3) == 0 && ev.n == 2 && ev.ext[1] == 1);
	CHECK(touch(a, 4) == 0 && ev.n == 3 && ev.ext[2] == 2);
	CHECK(on_disk(d, &sb, NULL) == (BIT(3) | BIT(4)));
	/* a logged extent is hot: nothing evicted */
	CHECK(touch(a, 4) == 0 && touch(a, 3) == 0 && ev.n == 3 && al_updates(a) == 5);
	CHECK(ev.still_logged);
	al_free(a);
	rmdisk(d);
}

TEST(extent_with_writes_in_flight_is_not_evicted)
{
	struct md_super sb;
	struct disk *d = mkdisk(&sb, 0);
	struct evictions ev = { .d = d, .sb = &sb, .still_logged = 1 };
	struct al *a = NULL;
	CHECK(d && al_new(&a, d, &sb, sb.lay.data_size, 2, 0, on_evict, &ev) == 0);
	if (!a) {
		rmdisk(d);
		return;
	}
	CHECK(al_begin(a, 0, 4096) == 0); /* extent 0 stays busy */
	CHECK(touch(a, 1) == 0);
	CHECK(touch(a, 2) == 0 && ev.n == 1 && ev.ext[0] == 1); /* the hand skipped 0 */
	CHECK(on_disk(d, &sb, NULL) == (BIT(0) | BIT(2)));
	al_end(a, 0, 4096);
	CHECK(touch(a, 5) == 0 && ev.n == 2 && ev.ext[1] == 0); /* idle now */
	al_free(a);
	rmdisk(d);
}

/* The extent's bitmap bits could not be saved: the log keeps what it had
 * and the write must not happen. */
TEST(failed_eviction_refuses_the_write)
{
	struct md_super sb;
	struct disk *d = mkdisk(&sb, 0);
	struct evictions ev = { .d = d, .sb = &sb, .still_logged = 1 };
	struct al *a = NULL;
	CHECK(d && al_new(&a, d, &sb, sb.lay.data_size, 2, 0, on_evict, &ev) == 0);
	if (!a) {
		rmdisk(d);
		return;
	}
	CHECK(touch(a, 0) == 0 && touch(a, 1) == 0);
	ev.fail = -EIO;
	CHECK(al_begin(a, 2 * EXT, 4096) == -EIO);
	CHECK(al_updates(a) == 2 && al_active(a) == 2 && on_disk(d, &sb, NULL) == (BIT(0) | BIT(1)));
	/* the next try goes on round the clock: extent 1's slot */
	ev.fail = 0;
	CHECK(touch(a, 2) == 0 && ev.n == 1 && ev.ext[0] == 1 && on_disk(d, &sb, NULL) == (BIT(0) | BIT(2)));
	al_free(a);
	rmdisk(d);
}

TEST(request_crossing_two_extents_logs_both)
{
	struct md_super sb;
	struct disk *d = mkdisk(&sb, 0);
	struct evictions ev = { .d = d, .sb = &sb, .still_logged = 1 };
	struct al *a = NULL;
	CHECK(d && al_new(&a, d, &sb, sb.lay.data_size, 2, 0, on_evict, &ev) == 0);
	if (!a) {
		rmdisk(d);
		return;
	}
	CHECK(al_begin(a, 2 * EXT - 4096, 8192) == 0);
	CHECK(al_updates(a) == 2 && al_active(a) == 2 && on_disk(d, &sb, NULL) == (BIT(1) | BIT(2)));
	al_end(a, 2 * EXT - 4096, 8192);
	/* both were released: two cold extents evict both */
	CHECK(touch(a, 7) == 0 && touch(a, 8) == 0 && ev.n == 2);
	CHECK(on_disk(d, &sb, NULL) == (BIT(7) | BIT(8)));
	al_free(a);
	rmdisk(d);
}

TEST(last_extent_of_the_device)
{
	struct md_super sb;
	struct disk *d = mkdisk(&sb, 0);
	struct al *a = NULL;
	CHECK(d && al_new(&a, d, &sb, sb.lay.data_size, 4, 0, NULL, NULL) == 0);
	if (!a) {
		rmdisk(d);
		return;
	}
	uint64_t size = sb.lay.data_size, last = (size - 1) / EXT;
	CHECK(size % EXT != 0); /* a short last extent */
	CHECK(al_begin(a, size - 4096, 4096) == 0 && on_disk(d, &sb, NULL) == BIT(last));
	al_end(a, size - 4096, 4096);
	/* past the end (the engine refuses those first): nothing to log */
	CHECK(al_begin(a, (last + 1) * EXT, 4096) == 0 && al_updates(a) == 1 && al_active(a) == 1);
	al_end(a, (last + 1) * EXT, 4096);
	al_free(a);
	rmdisk(d);
}

/* A crash with extents logged: the record survives (FUA) while unflushed
 * data does not, the reopened log continues the sequence so its next
 * record is the newest, and a clean al_clear leaves an empty log. */
TEST(record_survives_a_crash_and_reopen_continues)
{
	struct md_super sb;
	struct disk *d = mkdisk(&sb, 1);
	struct al *a = NULL;
	uint8_t data[4096], back[4096];
	uint64_t seq = 0;
	memset(data, 0xab, sizeof data);
	CHECK(d && al_new(&a, d, &sb, sb.lay.data_size, 4, 0, NULL, NULL) == 0);
	if (!a) {
		rmdisk(d);
		return;
	}
	CHECK(al_begin(a, 3 * EXT, 4096) == 0 && disk_pwrite(d, data, sizeof data, 3 * EXT) == 0);
	CHECK(al_begin(a, 7 * EXT, 4096) == 0);
	/* crash with both writes in flight: no al_end, no al_clear, no flush */
	al_free(a);
	disk_close(d);
	d = NULL;
	CHECK(disk_open(&d, path, 0) == 0);
	if (!d)
		return;
	CHECK(disk_pread(d, back, sizeof back, 3 * EXT) == 0 && back[0] == 0); /* the cut was real */
	CHECK(on_disk(d, &sb, &seq) == (BIT(3) | BIT(7)) && seq == 2);

	a = NULL;
	CHECK(al_new(&a, d, &sb, sb.lay.data_size, 4, seq, NULL, NULL) == 0);
	if (!a) {
		rmdisk(d);
		return;
	}
	/* a fresh log lists only what is written after the attach */
	CHECK(touch(a, 9) == 0 && on_disk(d, &sb, &seq) == BIT(9) && seq == 3);
	CHECK(al_clear(a) == 0 && al_active(a) == 0 && on_disk(d, &sb, &seq) == 0 && seq == 4);
	/* a cleared extent is cold again */
	CHECK(touch(a, 9) == 0 && al_updates(a) == 3 && on_disk(d, &sb, NULL) == BIT(9));
	al_free(a);
	rmdisk(d);
}

/* A crash while a record is written tears it: the previous one is used. */
TEST(torn_newest_record_falls_back_to_the_previous)
{
	struct md_super sb;
	struct disk *d = mkdisk(&sb, 0);
	struct al *a = NULL;
	uint64_t seq = 0;
	CHECK(d && al_new(&a, d, &sb, sb.lay.data_size, 4, 0, NULL, NULL) == 0);
	if (!a) {
		rmdisk(d);
		return;
	}
	CHECK(touch(a, 1) == 0 && touch(a, 2) == 0); /* seq 1 in slot 1, seq 2 in slot 0 */
	uint8_t b;
	CHECK(pread(d->bfd, &b, 1, (off_t)(sb.lay.al_offset + 25)) == 1);
	b ^= 0x40;
	CHECK(pwrite(d->bfd, &b, 1, (off_t)(sb.lay.al_offset + 25)) == 1);
	CHECK(on_disk(d, &sb, &seq) == BIT(1) && seq == 1);
	al_free(a);
	rmdisk(d);
}

/* A sequential writer: the extent after a logged one is logged with the
 * next 7 in one record (the fast path for them afterwards); a cold extent
 * with a cold predecessor is logged alone (the slow path, random I/O); the
 * look-ahead stops at an extent already logged and at the device's end. */
TEST(sequential_writer_logs_ahead)
{
	struct md_super sb;
	struct disk *d = mkdisk(&sb, 0);
	struct al *a = NULL;
	CHECK(d && al_new(&a, d, &sb, sb.lay.data_size, 64, 0, NULL, NULL) == 0);
	if (!a) {
		rmdisk(d);
		return;
	}
	uint64_t next = (sb.lay.data_size + EXT - 1) / EXT; /* 15 or so: a short last one */
	CHECK(next > 10 && next < 63);
	CHECK(touch(a, 0) == 0 && al_updates(a) == 1 && al_active(a) == 1 && on_disk(d, &sb, NULL) == BIT(0));
	/* extent 1 after 0: 1..8 in one record */
	CHECK(touch(a, 1) == 0 && al_updates(a) == 2 && al_active(a) == 9);
	CHECK(on_disk(d, &sb, NULL) == (BIT(9) - 1));
	for (uint64_t x = 2; x <= 8; x++)
		CHECK(touch(a, x) == 0);
	CHECK(al_updates(a) == 2);
	/* a write crossing 8 -> 9: 9 after a logged 8, so 9.. up to the end */
	CHECK(al_begin(a, 9 * EXT - 4096, 8192) == 0);
	al_end(a, 9 * EXT - 4096, 8192);
	long long all = (long long)(BIT(next) - 1);
	CHECK(al_updates(a) == 3 && al_active(a) == next && on_disk(d, &sb, NULL) == all);
	al_free(a);
	rmdisk(d);

	/* random: a cold extent after a cold one is logged alone; the
	 * look-ahead stops at a logged extent */
	d = mkdisk(&sb, 0);
	a = NULL;
	CHECK(d && al_new(&a, d, &sb, sb.lay.data_size, 64, 0, NULL, NULL) == 0);
	if (!a) {
		rmdisk(d);
		return;
	}
	CHECK(touch(a, 5) == 0 && touch(a, 2) == 0 && al_active(a) == 2 && al_updates(a) == 2);
	CHECK(touch(a, 3) == 0 && al_updates(a) == 3 && on_disk(d, &sb, NULL) == (BIT(2) | BIT(3) | BIT(4) | BIT(5)));
	al_free(a);
	rmdisk(d);
}

/* With the log full, a sequential writer evicts up to 8 idle extents for
 * one record, in one evict call (one flush); each was still named on disk
 * when evicted; a busy one is skipped; an evicted extent is cold again. */
TEST(sequential_writer_evicts_in_batches)
{
	struct md_super sb;
	struct disk *d = mkdisk(&sb, 0);
	struct evictions ev = { .d = d, .sb = &sb, .still_logged = 1 };
	struct al *a = NULL;
	/* 32 slots, but the test device has ~15 extents: fill a 32-slot log
	 * through a larger size (the log does not read the data) */
	uint64_t size = 40 * EXT;
	CHECK(d && al_new(&a, d, &sb, size, 32, 0, on_evict, &ev) == 0);
	if (!a) {
		rmdisk(d);
		return;
	}
	/* backwards (no extent follows a logged one): 32 extents logged one
	 * by one, nothing evicted */
	for (uint64_t x = 32; x-- > 0;)
		CHECK(touch(a, x) == 0);
	CHECK(al_active(a) == 32 && al_updates(a) == 32 && ev.n == 0);
	uint64_t before = al_updates(a);
	/* a write stays in flight in extent 31, the clock hand's first victim */
	CHECK(al_begin(a, 31 * EXT, 4096) == 0);
	/* sequential past the log: 32 after the logged 31 takes 32..39 */
	CHECK(touch(a, 32) == 0);
	CHECK(al_updates(a) == before + 1 && ev.calls == 1 && ev.n == 8 && ev.still_logged);
	int evicted31 = 0;
	for (int i = 0; i < ev.n; i++)
		evicted31 |= ev.ext[i] == 31;
	CHECK(!evicted31 && al_active(a) == 32 && ev.ext[0] == 30 && ev.ext[7] == 23);
	al_end(a, 31 * EXT, 4096);
	/* an evicted extent is cold again: logging it is a new record */
	uint32_t gone = ev.ext[0];
	before = al_updates(a);
	CHECK(touch(a, gone) == 0 && al_updates(a) == before + 1);
	al_free(a);
	rmdisk(d);
}

/* Writers that reach cold extents at the same time share a record: while
 * one record is being written (its eviction held up here until every
 * writer has started), the others queue, and the next record logs them
 * all, with one evict call (one flush) for their victims, as DRBD batches
 * its activity log transactions. One record per writer, as before, is a
 * convoy: each waits for every earlier writer's flush and FUA write. */
struct crowd {
	struct evictions ev;   /* first: on_evict's view */
	atomic_int started;    /* writers that began */
	int want, held;        /* writers expected; the first evict call waited */
};

struct crowd_writer {
	struct crowd *c;
	struct al *a;
	uint64_t x;
	int rc;
};

static int on_evict_held(void *arg, const uint32_t *ext, unsigned n)
{
	struct crowd *c = arg;
	if (!c->held) {
		c->held = 1;
		for (int i = 0; i < 5000 && atomic_load(&c->started) < c->want; i++)
			usleep(1000);
		usleep(100000); /* the last starters reach the log's queue */
	}
	return on_evict(&c->ev, ext, n);
}

static void *crowd_write(void *arg)
{
	struct crowd_writer *w = arg;
	atomic_fetch_add(&w->c->started, 1);
	w->rc = touch(w->a, w->x);
	return NULL;
}

TEST(concurrent_cold_extents_share_a_record)
{
	struct md_super sb;
	struct disk *d = mkdisk(&sb, 0);
	struct crowd c = { .ev = { .d = d, .sb = &sb, .still_logged = 1 }, .want = 12 };
	struct al *a = NULL;
	CHECK(d && al_new(&a, d, &sb, 100 * EXT, 16, 0, on_evict_held, &c) == 0);
	if (!a) {
		rmdisk(d);
		return;
	}
	/* a full log of idle extents 0..15, logged backwards (no look-ahead) */
	for (uint64_t x = 16; x-- > 0;)
		CHECK(touch(a, x) == 0);
	uint64_t before = al_updates(a);
	pthread_t th[12];
	struct crowd_writer w[12];
	long long want = 0;
	for (int i = 0; i < 12; i++) {
		w[i] = (struct crowd_writer){ .c = &c, .a = a, .x = 20 + 2 * (uint64_t)i };
		want |= BIT(w[i].x);
		CHECK(pthread_create(&th[i], NULL, crowd_write, &w[i]) == 0);
	}
	int ok = 1;
	for (int i = 0; i < 12; i++) {
		pthread_join(th[i], NULL);
		ok &= w[i].rc == 0;
	}
	long long set = on_disk(d, &sb, NULL);
	CHECK(ok && c.ev.still_logged && al_active(a) == 16 && set >= 0 && (set & want) == want);
	/* two records when the queue forms as intended; one per writer (12)
	 * before batching. A margin for a writer the scheduler held back. */
	CHECK(al_updates(a) - before <= 4);
	al_free(a);
	rmdisk(d);
}

/* al-extents below 1 is taken as 1: the log never names more than that. */
TEST(al_extents_at_least_one)
{
	struct md_super sb;
	struct disk *d = mkdisk(&sb, 0);
	struct evictions ev = { .d = d, .sb = &sb, .still_logged = 1 };
	struct al *a = NULL;
	CHECK(d && al_new(&a, d, &sb, sb.lay.data_size, 0, 0, on_evict, &ev) == 0);
	if (!a) {
		rmdisk(d);
		return;
	}
	CHECK(touch(a, 0) == 0 && touch(a, 1) == 0 && ev.n == 1 && ev.ext[0] == 0);
	CHECK(al_active(a) == 1 && on_disk(d, &sb, NULL) == BIT(1) && ev.still_logged);
	al_free(a);
	rmdisk(d);
}

int main(void)
{
	return unit_main("al");
}

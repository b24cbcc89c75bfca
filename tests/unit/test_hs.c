/* hs: a handshake's wait for a silent peer is cancelled by its wake fd
 * (src/fs/remote.c's remote_close at a takeover: an old owner that is a
 * zombie accepts and never answers), the way hs_dial_from's is. Outcomes:
 * the errno returned, never a duration. */
#include "unit.h"
#include "hs.h"
#include "wire.h"

#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

static struct hs_conf conf(int me, int peer, int wake_fd)
{
	return (struct hs_conf){ .res = "r0", .my_id = me, .peer_id = peer, .peer_name = "peer", .fs_only = 1,
				 .timeout_ms = 1000, .has_wake = wake_fd >= 0, .wake_fd = wake_fd };
}

/* the dialer's handshake on fd against whatever holds the other end */
static int dial_side(int fd, int wake_fd, char *reason)
{
	struct hs_conf c = conf(0, 1, wake_fd);
	struct pkt_hello peer, mine;
	int ch = CH_FS;
	return hs_handshake(&c, fd, &ch, "peer", &peer, &mine, reason);
}

/* sv: the two ends of a connection; wk: a wake pipe */
static void open_fds(int sv[2], int wk[2])
{
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) && !pipe(wk));
}

static void close_fds(int sv[2], int wk[2])
{
	close(sv[0]), close(sv[1]), close(wk[0]), close(wk[1]);
}

TEST(woken_before_the_peer_says_anything_cancels)
{
	int sv[2], wk[2];
	char reason[256] = "";
	open_fds(sv, wk);
	CHECK(write(wk[1], "x", 1) == 1);
	CHECK(dial_side(sv[0], wk[0], reason) == -ECANCELED);
	CHECK_STR_HAS(reason, "cancelled");
	close_fds(sv, wk);
}

static void *wake_later(void *arg)
{
	usleep(50 * 1000);
	(void)!write(*(int *)arg, "x", 1);
	return NULL;
}

TEST(woken_while_waiting_for_a_silent_peer_cancels)
{
	int sv[2], wk[2];
	char reason[256] = "";
	pthread_t t;
	open_fds(sv, wk);
	CHECK(!pthread_create(&t, NULL, wake_later, &wk[1]));
	CHECK(dial_side(sv[0], wk[0], reason) == -ECANCELED); /* not -EAGAIN: the 5 s receive timeout */
	pthread_join(t, NULL);
	close_fds(sv, wk);
}

struct acceptor { int fd, rc; char reason[256]; };

static void *accept_side(void *arg)
{
	struct acceptor *a = arg;
	struct hs_conf c = conf(1, 0, -1);
	struct pkt_hello peer, mine;
	int ch = -1;
	a->rc = hs_handshake(&c, a->fd, &ch, "dialer", &peer, &mine, a->reason);
	return NULL;
}

TEST(a_wake_fd_that_stays_quiet_lets_the_handshake_finish)
{
	int sv[2], wk[2];
	char reason[256] = "";
	pthread_t t;
	open_fds(sv, wk);
	struct acceptor a = { .fd = sv[1] };
	CHECK(!pthread_create(&t, NULL, accept_side, &a));
	CHECK(dial_side(sv[0], wk[0], reason) == 0);
	pthread_join(t, NULL);
	CHECK(a.rc == 0);
	close_fds(sv, wk);
}

/* A data channel: each side's HELLO has its generations; with HF_HISTORY
 * on both, the older history crosses in P_HISTORY. */
struct data_side { int fd, me, history, rc; struct pkt_hello peer; char reason[256]; };

static void fill_history(void *arg, struct pkt_hello *hl)
{
	struct data_side *s = arg;
	for (int i = 0; i < HELLO_UUIDS; i++)
		hl->uuid[i] = (uint64_t)(s->me + 1) << 32 | (uint64_t)i;
	if (s->history)
		hl->flags |= HF_HISTORY;
}

static void *data_side(void *arg)
{
	struct data_side *s = arg;
	struct hs_conf c = { .res = "r0", .my_id = s->me, .peer_id = !s->me, .peer_name = "peer", .protocol = 'C',
			     .timeout_ms = 1000, .fill = fill_history, .arg = s };
	struct pkt_hello mine;
	int ch = s->me ? -1 : CH_DATA;
	s->rc = hs_handshake(&c, s->fd, &ch, "peer", &s->peer, &mine, s->reason);
	return NULL;
}

static void data_pair(struct data_side *d, struct data_side *a)
{
	int sv[2];
	pthread_t t;
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	d->fd = sv[0], a->fd = sv[1], d->me = 0, a->me = 1;
	CHECK(!pthread_create(&t, NULL, data_side, a));
	data_side(d);
	pthread_join(t, NULL);
	close(sv[0]), close(sv[1]);
}

TEST(the_deep_history_crosses_when_both_take_it)
{
	struct data_side d = { .history = 1 }, a = { .history = 1 };
	data_pair(&d, &a);
	CHECK(d.rc == 0 && a.rc == 0);
	CHECK(d.peer.uuid[3] == (2ull << 32 | 3) && d.peer.uuid[HELLO_UUIDS - 1] == (2ull << 32 | (HELLO_UUIDS - 1)));
	CHECK(a.peer.uuid[4] == (1ull << 32 | 4) && a.peer.uuid[HELLO_UUIDS - 1] == (1ull << 32 | (HELLO_UUIDS - 1)));
}

TEST(an_older_peer_gets_no_history_and_sends_none)
{
	struct data_side d = { .history = 1 }, a = { .history = 0 };
	data_pair(&d, &a);
	CHECK(d.rc == 0 && a.rc == 0);
	CHECK(d.peer.uuid[3] == (2ull << 32 | 3) && d.peer.uuid[4] == 0 && d.peer.uuid[HELLO_UUIDS - 1] == 0);
	CHECK(a.peer.uuid[3] == (1ull << 32 | 3) && a.peer.uuid[4] == 0);
}

int main(void)
{
	return unit_main("hs");
}

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

int main(void)
{
	return unit_main("hs");
}

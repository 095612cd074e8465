/*
 * The listener alone on its own libev loop, with a sink the test answers by
 * hand: what happens to a connection when a frame's answer is "no ACK" (the
 * publisher could not commit it) while later frames are in flight.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ingest/listener.h"

#define MAX_SLOTS 8

struct held {
	struct lsn_slot *slot[MAX_SLOTS];
	int n;
};

static int accept_all(void *opaque) { return 1; }

static void hold_frame(void *opaque, struct lsn_slot *slot, const unsigned char *frame, size_t len)
{
	struct held *h = opaque;
	cr_assert_lt(h->n, MAX_SLOTS);
	h->slot[h->n++] = slot;
}

static int client(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* Run the loop for a while; stop early once cond(opaque) holds. */
static void pump(struct ev_loop *loop, int (*cond)(void *), void *opaque)
{
	for (int i = 0; i < 500 && !(cond && cond(opaque)); i++) {
		ev_run(loop, EVRUN_NOWAIT);
		usleep(2000);
	}
}

static int two_held(void *opaque) { return ((struct held *)opaque)->n == 2; }

/* 1 when the peer closed (EOF or reset), 0 while open; bytes read go to got. */
static int peer_closed(int fd, size_t *got)
{
	char buf[512];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0) {
			*got += (size_t)n;
			continue;
		}
		if (n == 0 || errno == ECONNRESET)
			return 1;
		return 0;
	}
}

struct closing {
	int fd;
	size_t got;
};

static int closed_cond(void *opaque)
{
	struct closing *c = opaque;
	return peer_closed(c->fd, &c->got);
}

static void no_ack_closes(int answer_second_first)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct held h = { { 0 }, 0 };
	struct lsn_sink sink = { accept_all, hold_frame, &h };
	struct lsn_conf conf;
	char err[256];
	const char frames[] = "\x0bMSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5.1\r\x1c\r"
			      "\x0bMSH|^~\\&|A|B|C|D|20260101||ADT^A01|2|P|2.5.1\r\x1c\r";

	lsn_conf_defaults(&conf);
	snprintf(conf.port, sizeof conf.port, "0");
	struct lsn *l = lsn_new(loop, &conf, &sink, err, sizeof err);
	cr_assert_not_null(l, "%s", err);
	struct closing c = { client(lsn_port(l)), 0 };
	cr_assert_eq(write(c.fd, frames, sizeof frames - 1), (ssize_t)(sizeof frames - 1));
	pump(loop, two_held, &h);
	cr_assert_eq(h.n, 2, "the listener did not hand over both frames");

	/* The first frame cannot be acknowledged; the second is answered before
	 * or after that. Either way the connection must close (the sender
	 * resends what it has no ACK for), and nothing after the unanswered
	 * frame may be written: ACKs are in order. */
	if (answer_second_first)
		lsn_slot_reply(h.slot[1], "ACK2", 4);
	lsn_slot_reply(h.slot[0], NULL, 0);
	pump(loop, closed_cond, &c);
	cr_assert(peer_closed(c.fd, &c.got), "the connection stayed open after a frame got no ACK");
	cr_assert_eq(c.got, 0, "bytes were written after an unanswered frame");
	if (!answer_second_first)
		lsn_slot_reply(h.slot[1], "ACK2", 4); /* a slot outlives its connection */
	struct lsn_stats st;
	lsn_get_stats(l, &st);
	cr_assert_eq(st.open, 0);
	cr_assert_eq(lsn_busy(l), 0);
	close(c.fd);
	lsn_free(l);
	ev_loop_destroy(loop);
}

Test(listener, no_ack_closes_with_a_later_frame_answered) { no_ack_closes(1); }
Test(listener, no_ack_closes_with_a_later_frame_in_flight) { no_ack_closes(0); }

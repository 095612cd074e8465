/* mllp_client — see mllp_client.h.
 *
 * Each connection keeps its unanswered jobs in a ring, oldest first. The
 * first `wcount` of them are written completely; the next one has `woff`
 * bytes on the wire. Replies pop the head; the connection's timer always
 * runs to the head's deadline (or the connect/handshake deadline). One
 * callback per connection switches on the connection's state. */
#include "ingest/mllp_client.h"

#include <errno.h>
#include <signal.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/err.h>

#include "ingest/mllp.h"
#include "ingest/tls_client.h"
#include "util.h"

/* Bytes read per read call. */
#define CLIENT_READ_CHUNK 16384
/* With --rate, a connection that fell behind may catch up this much. */
#define CLIENT_PACE_BURST 0.05

enum conn_state { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_READY, C_DEAD };

struct job {
	size_t msg;
	uint64_t round;
	int64_t queued_us;
};

struct run;

struct conn {
	struct run *run;
	ev_io io;
	ev_timer timer;
	int fd;
	SSL *ssl;
	enum conn_state state;
	int events;             /* what io watches now */
	int tls_wants_write;    /* TLS asked to be called again when writable */
	int paced;              /* waiting for the pacer to free a slot */
	const struct addrinfo *ai;
	int64_t connect_us;     /* start of the current connect */
	uint64_t replies;       /* on this connection since it was made */
	struct job *ring;
	unsigned head, count, wcount;
	size_t woff;
	struct mllp_decoder dec;
};

struct frame {
	const unsigned char *ptr;
	size_t len;
};

struct run {
	struct ev_loop *loop;
	const struct mllp_client_opts *o;
	struct frame *frames;
	size_t n;
	uint64_t total, next_job, done;
	mllp_client_result_cb cb;
	void *opaque;
	struct mllp_client_stats *st;
	struct addrinfo *ai;
	struct conn *conns;
	unsigned barren;        /* connections in a row that ended without a reply */
	ev_timer pacer;
	ev_signal sigint, sigterm;
	double next_slot;       /* earliest time of the next send with --rate */
	unsigned pace_from;     /* fairness: where the pacer starts looking */
	int64_t start_us, last_us;
	int fatal;
	char *errstr;
	size_t errstr_size;
};

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void conn_start(struct conn *c);
static void pump(struct conn *c);

static double mono_s(void)
{
	return (double)util_mono_us() / 1e6;
}

static void report(struct run *r, const struct job *j, enum mllp_client_outcome oc,
		   const unsigned char *reply, size_t reply_len, const char *why)
{
	struct mllp_client_result res = {
		.msg = j->msg, .round = j->round, .outcome = oc, .reply = reply,
		.reply_len = reply_len, .why = why,
	};
	r->last_us = util_mono_us();
	res.latency_us = r->last_us - j->queued_us;
	if (oc == MLLP_CLIENT_REPLY)
		r->st->replies++;
	else if (oc == MLLP_CLIENT_TIMEOUT)
		r->st->timeouts++;
	else
		r->st->failed++;
	r->done++;
	r->cb(r->opaque, &res);
}

static void check_done(struct run *r)
{
	if (r->fatal || r->done == r->total)
		ev_break(r->loop, EVBREAK_ALL);
}

/* Stop the run: the reason goes to the caller; jobs still unanswered are
 * reported as failed with it, jobs not started are counted. */
static void run_fatal(struct run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void run_fatal(struct run *r, const char *fmt, ...)
{
	va_list ap;
	if (r->fatal)
		return;
	r->fatal = 1;
	if (r->errstr && r->errstr_size) {
		va_start(ap, fmt);
		vsnprintf(r->errstr, r->errstr_size, fmt, ap);
		va_end(ap);
	}
	ev_break(r->loop, EVBREAK_ALL);
}

static void set_events(struct conn *c, int ev)
{
	if (c->events == ev && ev_is_active(&c->io))
		return;
	ev_io_stop(c->run->loop, &c->io);
	c->events = ev;
	if (ev) {
		ev_io_set(&c->io, c->fd, ev);
		ev_io_start(c->run->loop, &c->io);
	}
}

static void arm_timer(struct conn *c)
{
	struct run *r = c->run;
	int64_t deadline;

	ev_timer_stop(r->loop, &c->timer);
	if (c->state == C_CONNECTING || c->state == C_HANDSHAKE)
		deadline = c->connect_us;
	else if (c->state == C_READY && c->count > 0)
		deadline = c->ring[c->head].queued_us;
	else
		return;
	deadline += (int64_t)(r->o->timeout * 1e6);
	double left = (double)(deadline - util_mono_us()) / 1e6;
	ev_timer_set(&c->timer, left > 0 ? left : 0., 0.);
	ev_timer_start(r->loop, &c->timer);
}

/* Close the socket and forget the connection's state, keeping its jobs.
 * graceful: the connection is healthy, so TLS can say goodbye. */
static void conn_close(struct conn *c, int graceful)
{
	struct run *r = c->run;

	ev_io_stop(r->loop, &c->io);
	ev_timer_stop(r->loop, &c->timer);
	c->events = 0;
	if (c->ssl) {
		/* Say goodbye properly if we can; nobody waits for the answer. */
		if (graceful && c->state == C_READY)
			SSL_shutdown(c->ssl);
		ERR_clear_error();
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->tls_wants_write = 0;
	mllp_decoder_clear(&c->dec);
	mllp_decoder_init(&c->dec, r->o->max_frame ? r->o->max_frame : MLLP_DEFAULT_MAX_FRAME);
	c->state = C_IDLE;
}

/* The single teardown of a working connection: every unanswered job gets
 * the outcome (the head `head_oc`, the rest FAILED), then the connection is
 * made again if work remains. */
static void conn_end(struct conn *c, enum mllp_client_outcome head_oc, const char *why)
{
	struct run *r = c->run;
	char rest[160];

	snprintf(rest, sizeof rest, "connection closed (%s)", why);
	conn_close(c, 0);
	for (unsigned i = 0; c->count > 0; i++) {
		struct job j = c->ring[c->head];
		c->head = (c->head + 1) % r->o->pipeline;
		c->count--;
		report(r, &j, i == 0 ? head_oc : MLLP_CLIENT_FAILED, NULL, 0, i == 0 ? why : rest);
	}
	c->wcount = 0;
	c->woff = 0;
	c->head = 0;
	if (c->replies == 0 && ++r->barren >= MLLP_CLIENT_MAX_BARREN_CONNECTS) {
		run_fatal(r, "%u connections in a row to %s:%s ended without a reply (last: %s)",
			  r->barren, r->o->host, r->o->port, why);
		return;
	}
	if (r->next_job < r->total && !r->fatal) {
		conn_start(c);
	} else {
		c->state = C_DEAD;
		check_done(r);
	}
}

static void conn_ready(struct conn *c)
{
	c->state = C_READY;
	c->replies = 0;
	c->run->st->connects++;
	set_events(c, EV_READ);
	arm_timer(c);
	pump(c);
}

static void tls_step(struct conn *c)
{
	struct run *r = c->run;
	char why[256];
	int rc;

	ERR_clear_error();
	rc = SSL_connect(c->ssl);
	if (rc == 1) {
		conn_ready(c);
		return;
	}
	switch (SSL_get_error(c->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		set_events(c, EV_READ);
		return;
	case SSL_ERROR_WANT_WRITE:
		set_events(c, EV_WRITE);
		return;
	default:
		tls_client_strerror(c->ssl, rc, why, sizeof why);
		run_fatal(r, "TLS handshake with %s:%s failed: %s", r->o->host, r->o->port, why);
	}
}

static void conn_connected(struct conn *c)
{
	struct run *r = c->run;
	char err[256];

	if (!r->o->tls) {
		conn_ready(c);
		return;
	}
	c->ssl = tls_client_ssl_new(r->o->tls, c->fd,
				    r->o->servername ? r->o->servername : r->o->host,
				    err, sizeof err);
	if (!c->ssl) {
		run_fatal(r, "%s", err);
		return;
	}
	c->state = C_HANDSHAKE;
	arm_timer(c);
	tls_step(c);
}

static void conn_start(struct conn *c)
{
	struct run *r = c->run;
	const struct addrinfo *ai = c->ai;
	int one = 1;

	c->connect_us = util_mono_us();
	c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		       ai->ai_protocol);
	if (c->fd < 0) {
		run_fatal(r, "socket: %s", strerror(errno));
		return;
	}
	/* One small message per round trip: do not let Nagle hold it back. */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->state = C_CONNECTING;
	if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		conn_connected(c);
		return;
	}
	if (errno != EINPROGRESS) {
		int e = errno;
		conn_close(c, 0);
		if (c->ai->ai_next) {
			c->ai = c->ai->ai_next;
			conn_start(c);
			return;
		}
		run_fatal(r, "connect to %s:%s: %s", r->o->host, r->o->port, strerror(e));
		return;
	}
	set_events(c, EV_WRITE);
	arm_timer(c);
}

/* Write what the ring holds and is not written yet. 0, or -1 when the
 * connection was ended. */
static int conn_write(struct conn *c)
{
	struct run *r = c->run;
	char why[256];

	c->tls_wants_write = 0;
	while (c->wcount < c->count) {
		const struct job *j = &c->ring[(c->head + c->wcount) % r->o->pipeline];
		const struct frame *f = &r->frames[j->msg];
		const unsigned char *p = f->ptr + c->woff;
		size_t left = f->len - c->woff;
		ssize_t n;

		if (c->ssl) {
			ERR_clear_error();
			int rc = SSL_write(c->ssl, p, left > INT32_MAX ? INT32_MAX : (int)left);
			if (rc <= 0) {
				int e = SSL_get_error(c->ssl, rc);
				if (e == SSL_ERROR_WANT_WRITE) {
					c->tls_wants_write = 1;
					return 0;
				}
				if (e == SSL_ERROR_WANT_READ)
					return 0; /* retried after the next read */
				tls_client_strerror(c->ssl, rc, why, sizeof why);
				if (e == SSL_ERROR_SSL)
					run_fatal(r, "TLS error on %s:%s: %s", r->o->host, r->o->port, why);
				conn_end(c, MLLP_CLIENT_FAILED, why);
				return -1;
			}
			n = rc;
		} else {
			n = send(c->fd, p, left, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
					return 0;
				conn_end(c, MLLP_CLIENT_FAILED, strerror(errno));
				return -1;
			}
		}
		c->woff += (size_t)n;
		if (c->woff == f->len) {
			c->woff = 0;
			c->wcount++;
			r->st->sent++;
		}
	}
	return 0;
}

/* One frame from the peer. 0, or -1 when the connection was ended. */
static int conn_frame(struct conn *c, const unsigned char *f, size_t len)
{
	struct run *r = c->run;
	struct job j;

	if (mllp_frame_kind(f, len) != MLLP_FRAME_MESSAGE) {
		r->st->commit_acks++;
		return 0;
	}
	if (c->count == 0) {
		r->st->unsolicited++;
		return 0;
	}
	if (c->wcount == 0) {
		conn_end(c, MLLP_CLIENT_FAILED, "reply before the message was completely sent");
		return -1;
	}
	j = c->ring[c->head];
	c->head = (c->head + 1) % r->o->pipeline;
	c->count--;
	c->wcount--;
	c->replies++;
	r->barren = 0;
	report(r, &j, MLLP_CLIENT_REPLY, f, len, NULL);
	return 0;
}

/* Read and decode everything available. 0, or -1 when the connection was
 * ended. */
static int conn_read(struct conn *c)
{
	struct run *r = c->run;
	unsigned char buf[CLIENT_READ_CHUNK];
	char why[256];

	for (;;) {
		ssize_t n;
		if (c->ssl) {
			ERR_clear_error();
			int rc = SSL_read(c->ssl, buf, sizeof buf);
			if (rc <= 0) {
				int e = SSL_get_error(c->ssl, rc);
				if (e == SSL_ERROR_WANT_READ)
					return 0;
				if (e == SSL_ERROR_WANT_WRITE) {
					c->tls_wants_write = 1;
					return 0;
				}
				if (e == SSL_ERROR_ZERO_RETURN) {
					conn_end(c, MLLP_CLIENT_FAILED, "connection closed by peer");
					return -1;
				}
				tls_client_strerror(c->ssl, rc, why, sizeof why);
				/* A TLS protocol error (e.g. the server rejecting our
				 * certificate after a TLS 1.3 handshake) will not
				 * go away by reconnecting. */
				if (e == SSL_ERROR_SSL)
					run_fatal(r, "TLS error on %s:%s: %s", r->o->host, r->o->port,
						  why);
				conn_end(c, MLLP_CLIENT_FAILED, why);
				return -1;
			}
			n = rc;
		} else {
			n = recv(c->fd, buf, sizeof buf, 0);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
					return 0;
				conn_end(c, MLLP_CLIENT_FAILED,
					 errno == ECONNRESET ? "connection reset by peer" : strerror(errno));
				return -1;
			}
			if (n == 0) {
				conn_end(c, MLLP_CLIENT_FAILED, "connection closed by peer");
				return -1;
			}
		}
		const unsigned char *p = buf;
		size_t left = (size_t)n;
		while (left > 0) {
			size_t used, fl;
			const unsigned char *f;
			int fr = mllp_decoder_feed(&c->dec, p, left, &used, &f, &fl, why, sizeof why);
			p += used;
			left -= used;
			if (fr < 0) {
				conn_end(c, MLLP_CLIENT_FAILED, why);
				return -1;
			}
			if (fr == 1 && conn_frame(c, f, fl) < 0)
				return -1;
		}
	}
}

/* Queue as many jobs as the pipeline, the queue and the pace allow. */
static void pump(struct conn *c)
{
	struct run *r = c->run;
	const struct mllp_client_opts *o = r->o;
	int queued = 0;

	while (c->state == C_READY && c->count < o->pipeline && r->next_job < r->total &&
	       !r->fatal) {
		if (o->rate > 0) {
			double now = mono_s();
			if (now < r->next_slot) {
				c->paced = 1;
				if (!ev_is_active(&r->pacer)) {
					ev_timer_set(&r->pacer, r->next_slot - now, 0.);
					ev_timer_start(r->loop, &r->pacer);
				}
				break;
			}
			if (r->next_slot < now - CLIENT_PACE_BURST)
				r->next_slot = now - CLIENT_PACE_BURST;
			r->next_slot += 1.0 / o->rate;
		}
		struct job *j = &c->ring[(c->head + c->count) % o->pipeline];
		j->msg = (size_t)(r->next_job % r->n);
		j->round = r->next_job / r->n;
		j->queued_us = util_mono_us();
		r->next_job++;
		if (c->count++ == 0)
			arm_timer(c);
		queued = 1;
	}
	if (!queued || c->state != C_READY)
		return;
	if (conn_write(c) < 0)
		return;
	set_events(c, EV_READ | (c->wcount < c->count && (!c->ssl || c->tls_wants_write) ?
				 EV_WRITE : 0));
}

static void pacer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct run *r = container_of(w, struct run, pacer);
	unsigned nc = r->o->connections;

	for (unsigned k = 0; k < nc && !r->fatal; k++) {
		struct conn *c = &r->conns[(r->pace_from + k) % nc];
		if (c->paced) {
			c->paced = 0;
			pump(c);
		}
	}
	r->pace_from = (r->pace_from + 1) % nc;
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct run *r = ev_userdata(loop);
	run_fatal(r, "interrupted by signal %d", w->signum);
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = container_of(w, struct conn, io);
	struct run *r = c->run;
	int err = 0;
	socklen_t len = sizeof err;

	switch (c->state) {
	case C_CONNECTING:
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err == 0) {
			conn_connected(c);
		} else if (c->ai->ai_next) {
			/* e.g. localhost resolved to ::1 first, server on 127.0.0.1 */
			conn_close(c, 0);
			c->ai = c->ai->ai_next;
			conn_start(c);
		} else {
			conn_close(c, 0);
			run_fatal(r, "connect to %s:%s: %s", r->o->host, r->o->port, strerror(err));
		}
		return;
	case C_HANDSHAKE:
		tls_step(c);
		return;
	case C_READY:
		if (conn_read(c) < 0 || conn_write(c) < 0)
			return;
		arm_timer(c);
		pump(c);
		if (c->state == C_READY)
			set_events(c, EV_READ | (c->wcount < c->count &&
						 (!c->ssl || c->tls_wants_write) ? EV_WRITE : 0));
		if (c->state == C_READY && c->count == 0 && r->next_job >= r->total) {
			conn_close(c, 1);
			c->state = C_DEAD;
		}
		check_done(r);
		return;
	default:
		return;
	}
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = container_of(w, struct conn, timer);
	struct run *r = c->run;
	char why[64];

	switch (c->state) {
	case C_CONNECTING:
	case C_HANDSHAKE:
		run_fatal(r, "%s %s:%s timed out after %g s",
			  c->state == C_CONNECTING ? "connect to" : "TLS handshake with",
			  r->o->host, r->o->port, r->o->timeout);
		return;
	case C_READY:
		if (c->count == 0)
			return;
		/* Timers may fire a little early against our clock: re-arm. */
		if (util_mono_us() - c->ring[c->head].queued_us < (int64_t)(r->o->timeout * 1e6)) {
			arm_timer(c);
			return;
		}
		snprintf(why, sizeof why, "no reply within %g s", r->o->timeout);
		conn_end(c, MLLP_CLIENT_TIMEOUT, why);
		return;
	default:
		return;
	}
}

static int frame_all(struct run *r, const struct mllp_client_payload *msgs, size_t n,
		     unsigned char **arena_out, char *errstr, size_t errstr_size)
{
	size_t total = 0;
	unsigned char *arena, *p;

	for (size_t i = 0; i < n; i++) {
		if (msgs[i].len > SIZE_MAX / 2 - total - MLLP_OVERHEAD)
			return util_seterr(errstr, errstr_size, "messages too large");
		total += msgs[i].len + MLLP_OVERHEAD;
	}
	r->frames = calloc(n, sizeof *r->frames);
	arena = malloc(total ? total : 1);
	if (!r->frames || !arena) {
		free(arena);
		return util_seterr(errstr, errstr_size, "out of memory");
	}
	p = arena;
	for (size_t i = 0; i < n; i++) {
		size_t fl = mllp_encode(msgs[i].ptr, msgs[i].len, p, msgs[i].len + MLLP_OVERHEAD);
		r->frames[i].ptr = p;
		r->frames[i].len = fl;
		p += fl;
	}
	*arena_out = arena;
	return 0;
}

static int check_opts(const struct mllp_client_opts *o, size_t n, char *errstr,
		      size_t errstr_size)
{
	if (!o->host || !o->port)
		return util_seterr(errstr, errstr_size, "no host or port");
	if (o->connections < 1 || o->connections > MLLP_CLIENT_MAX_CONNECTIONS)
		return util_seterr(errstr, errstr_size, "connections must be 1..%d",
				   MLLP_CLIENT_MAX_CONNECTIONS);
	if (o->pipeline < 1 || o->pipeline > MLLP_CLIENT_MAX_PIPELINE)
		return util_seterr(errstr, errstr_size, "pipeline must be 1..%d",
				   MLLP_CLIENT_MAX_PIPELINE);
	if (!(o->timeout > 0) || !(o->rate >= 0) || o->repeat < 1)
		return util_seterr(errstr, errstr_size, "timeout, rate or repeat out of range");
	if (n == 0)
		return util_seterr(errstr, errstr_size, "no messages to send");
	if (o->repeat > UINT64_MAX / n)
		return util_seterr(errstr, errstr_size, "repeat too large");
	return 0;
}

int mllp_client_run(const struct mllp_client_opts *o,
		    const struct mllp_client_payload *msgs, size_t n,
		    mllp_client_result_cb cb, void *opaque,
		    struct mllp_client_stats *stats, char *errstr,
		    size_t errstr_size)
{
	struct run r = { 0 };
	struct addrinfo hints = { 0 };
	unsigned char *arena = NULL;
	unsigned nconns = 0;
	int gai, rc = -1;

	memset(stats, 0, sizeof *stats);
	if (check_opts(o, n, errstr, errstr_size) < 0)
		return -1;
	r.o = o;
	r.n = n;
	r.total = (uint64_t)n * o->repeat;
	r.cb = cb;
	r.opaque = opaque;
	r.st = stats;
	r.errstr = errstr;
	r.errstr_size = errstr_size;
	if (frame_all(&r, msgs, n, &arena, errstr, errstr_size) < 0)
		goto out;
	/* Resolved once, before the loop runs: nothing on the loop blocks. */
	hints.ai_socktype = SOCK_STREAM;
	gai = getaddrinfo(o->host, o->port, &hints, &r.ai);
	if (gai != 0) {
		util_seterr(errstr, errstr_size, "%s:%s: %s", o->host, o->port, gai_strerror(gai));
		goto out;
	}
	r.loop = ev_loop_new(EVFLAG_AUTO);
	r.conns = calloc(o->connections, sizeof *r.conns);
	if (!r.loop || !r.conns) {
		util_seterr(errstr, errstr_size, "out of memory");
		goto out;
	}
	ev_set_userdata(r.loop, &r);
	ev_timer_init(&r.pacer, pacer_cb, 0., 0.);
	ev_signal_init(&r.sigint, signal_cb, SIGINT);
	ev_signal_init(&r.sigterm, signal_cb, SIGTERM);
	if (o->stop_on_signals) {
		ev_signal_start(r.loop, &r.sigint);
		ev_signal_start(r.loop, &r.sigterm);
	}
	r.start_us = r.last_us = util_mono_us();
	r.next_slot = mono_s();
	for (; nconns < o->connections; nconns++) {
		struct conn *c = &r.conns[nconns];
		c->run = &r;
		c->fd = -1;
		c->ai = r.ai;
		c->ring = calloc(o->pipeline, sizeof *c->ring);
		if (!c->ring) {
			util_seterr(errstr, errstr_size, "out of memory");
			nconns++;
			goto out;
		}
		ev_init(&c->io, conn_io_cb);
		ev_timer_init(&c->timer, conn_timer_cb, 0., 0.);
		mllp_decoder_init(&c->dec, o->max_frame ? o->max_frame : MLLP_DEFAULT_MAX_FRAME);
	}
	/* More connections than jobs would only sit idle. */
	for (unsigned i = 0; i < nconns && i < r.total && !r.fatal; i++)
		conn_start(&r.conns[i]);
	if (!r.fatal)
		ev_run(r.loop, 0);
	rc = r.fatal ? -1 : 0;
out:
	for (unsigned i = 0; i < nconns; i++) {
		struct conn *c = &r.conns[i];
		struct job j;
		conn_close(c, !r.fatal);
		/* After a fatal error, every job still unanswered gets an outcome. */
		while (c->count > 0) {
			j = c->ring[c->head];
			c->head = (c->head + 1) % o->pipeline;
			c->count--;
			report(&r, &j, MLLP_CLIENT_FAILED, NULL, 0, "not answered: the run was stopped");
		}
		mllp_decoder_clear(&c->dec);
		free(c->ring);
	}
	if (r.loop) {
		ev_timer_stop(r.loop, &r.pacer);
		ev_signal_stop(r.loop, &r.sigint);
		ev_signal_stop(r.loop, &r.sigterm);
		ev_loop_destroy(r.loop);
	}
	stats->not_sent = r.total - r.next_job;
	stats->elapsed = (double)(r.last_us - r.start_us) / 1e6;
	if (r.ai)
		freeaddrinfo(r.ai);
	free(r.conns);
	free(r.frames);
	free(arena);
	return rc;
}

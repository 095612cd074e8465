#include "ingest/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "ingest/http1.h"
#include "ingest/listener_int.h"
#include "ingest/mllp.h"
#include "log.h"
#include "util.h"

static uint64_t g_conn_ids;

void lsn_conf_defaults(struct lsn_conf *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->name, sizeof c->name, "mllp");
	snprintf(c->host, sizeof c->host, "127.0.0.1");
	snprintf(c->port, sizeof c->port, "2575");
	c->max_connections = 512;
	c->max_connections_per_peer = 64;
	c->idle_timeout_ms = 300000;
	c->handshake_timeout_ms = 10000;
	c->frame_timeout_ms = 60000;
	c->max_frame = MLLP_DEFAULT_MAX_FRAME;
	c->max_pending = 64;
	c->max_write_buffer = 1u << 20;
}

/* ---- teardown -------------------------------------------------------------- */

static void conn_free(struct lsn_conn *c, const char *reason)
{
	struct lsn *l = c->l;
	struct lsn_slot *s, *next;

	if (c->busy) { /* finish the callback first; conn_unbusy closes */
		if (!c->close_reason)
			c->close_reason = reason;
		return;
	}
	ev_io_stop(l->loop, &c->rio);
	ev_io_stop(l->loop, &c->wio);
	ev_timer_stop(l->loop, &c->idle);
	ev_timer_stop(l->loop, &c->handshake);
	ev_timer_stop(l->loop, &c->frame);
	log_info("mllp", "%s: closed (%s; %d unanswered)", c->origin, reason, c->pending);
	for (s = c->head; s; s = next) {
		next = s->next;
		l->pending_total -= !s->answered;
		if (s->answered) { /* answered but not yet written: drop it */
			free(s->reply);
			free(s);
		} else {
			s->conn = NULL; /* the sink still holds it */
			s->next = NULL;
		}
	}
	if (c->ssl) {
		if (!c->handshaking)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (l->conf.http && !c->ssl) {
		/* HTTP: a client may still be sending (an answered error, or a
		 * body we refused): read what has arrived, so that closing does
		 * not reset the connection before it reads our answer */
		char drain[4096];
		shutdown(c->fd, SHUT_WR);
		for (int k = 0; k < 64 && recv(c->fd, drain, sizeof drain, MSG_DONTWAIT) > 0; k++)
			;
	}
	close(c->fd);
	mllp_decoder_clear(&c->dec);
	h1_decoder_clear(&c->hdec);
	free(c->wbuf);
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	l->stats.open--;
	l->stats.closed++;
	free(c);
}

static void conn_unbusy(struct lsn_conn *c)
{
	if (--c->busy == 0 && c->close_reason)
		conn_free(c, c->close_reason);
}

/* ---- writing -------------------------------------------------------------- */

static int wbuf_append(struct lsn_conn *c, const unsigned char *p, size_t n)
{
	if (c->wlen + n > c->wcap) {
		size_t cap = c->wcap ? c->wcap * 2 : 4096;
		unsigned char *nb;
		while (cap < c->wlen + n)
			cap *= 2;
		nb = realloc(c->wbuf, cap);
		if (!nb)
			return -1;
		c->wbuf = nb;
		c->wcap = cap;
	}
	memcpy(c->wbuf + c->wlen, p, n);
	c->wlen += n;
	return 0;
}

static void conn_process(struct lsn_conn *c);

/* Move the answered prefix of the slot queue into the write buffer and write
 * what the socket takes. Returns -1 if the connection was closed. */
static int conn_flush(struct lsn_conn *c)
{
	struct lsn *l = c->l;
	int was_full = c->pending >= l->conf.max_pending;

	while (c->head && c->head->answered && !c->closing) {
		struct lsn_slot *s = c->head;
		c->head = s->next;
		if (!c->head)
			c->tail = NULL;
		c->pending--;
		if (s->close_after)
			c->closing = 1;
		else if (wbuf_append(c, s->reply, s->reply_len) != 0 || s->close_when_written)
			c->closing = 1;
		free(s->reply);
		free(s);
	}
	if (c->wlen - c->woff > l->conf.max_write_buffer) {
		conn_free(c, "the client does not read its acknowledgements");
		return -1;
	}
	while (c->woff < c->wlen) {
		ssize_t n;
		if (c->ssl) {
			int r = SSL_write(c->ssl, c->wbuf + c->woff, (int)(c->wlen - c->woff));
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
					break;
				ERR_clear_error();
				conn_free(c, "TLS write failed");
				return -1;
			}
			n = r;
		} else {
			n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
					break;
				conn_free(c, errno == EPIPE || errno == ECONNRESET ? "reset by peer" : "write failed");
				return -1;
			}
		}
		c->woff += (size_t)n;
	}
	if (c->woff == c->wlen) {
		c->woff = c->wlen = 0;
		ev_io_stop(l->loop, &c->wio);
		/* Closing: what is written is all this connection gets; frames
		 * after the unanswered one may not be acknowledged before it (ACKs
		 * are in order), so waiting for them would wait forever. A peer
		 * that finished sending still gets its remaining answers. */
		if (c->closing || (c->eof && c->pending == 0)) {
			conn_free(c, c->closing ? "closed by the bridge" : "peer finished");
			return -1;
		}
	} else {
		ev_io_start(l->loop, &c->wio);
	}
	ev_timer_again(l->loop, &c->idle);
	/* A slot freed up: take the frames that were waiting for it. */
	if (was_full && c->pending < l->conf.max_pending && !c->busy)
		conn_process(c);
	return 0;
}

static void slot_reply(struct lsn_slot *s, const void *reply, size_t len, int last)
{
	struct lsn_conn *c = s->conn;
	if (!c) { /* the connection went away while the work was in flight */
		free(s);
		return;
	}
	c->l->pending_total--;
	s->answered = 1;
	s->close_when_written = last;
	if (!reply) {
		s->close_after = 1;
	} else if (c->l->conf.http) { /* a complete HTTP response */
		s->reply = malloc(len ? len : 1);
		if (!s->reply)
			s->close_after = 1;
		else
			memcpy(s->reply, reply, len);
		s->reply_len = len;
	} else {
		s->reply = malloc(len + MLLP_OVERHEAD);
		if (!s->reply)
			s->close_after = 1;
		else
			s->reply_len = mllp_encode(reply, len, s->reply, len + MLLP_OVERHEAD);
	}
	if (s == c->head)
		conn_flush(c);
}

void lsn_slot_reply(struct lsn_slot *s, const void *reply, size_t len)
{
	slot_reply(s, reply, len, 0);
}

void lsn_slot_reply_last(struct lsn_slot *s, const void *reply, size_t len)
{
	slot_reply(s, reply, len, 1);
}

static size_t dec_pending(const struct lsn_conn *c)
{
	return c->l->conf.http ? h1_decoder_pending(&c->hdec) : mllp_decoder_pending(&c->dec);
}

const char *lsn_slot_origin(const struct lsn_slot *s)
{
	return s->conn ? s->conn->origin : NULL;
}

uint64_t lsn_slot_conn_id(const struct lsn_slot *s)
{
	return s->conn ? s->conn->id : 0;
}

/* ---- reading -------------------------------------------------------------- */

static void stop_reading(struct lsn_conn *c)
{
	if (c->reading) {
		ev_io_stop(c->l->loop, &c->rio);
		c->reading = 0;
	}
}

static void start_reading(struct lsn_conn *c)
{
	if (!c->reading && !c->eof && !c->closing) {
		ev_io_start(c->l->loop, &c->rio);
		c->reading = 1;
	}
}

/* Hand complete frames from rbuf to the sink while it and the connection
 * have room. */
/* A slot for the next answer owed on c, queued after those pending (answers
 * go out in order). NULL when out of memory: c is freed. */
static struct lsn_slot *slot_push(struct lsn *l, struct lsn_conn *c)
{
	struct lsn_slot *s = calloc(1, sizeof *s);
	if (!s) {
		conn_free(c, "out of memory");
		return NULL;
	}
	s->conn = c;
	if (c->tail)
		c->tail->next = s;
	else
		c->head = s;
	c->tail = s;
	c->pending++;
	l->pending_total++;
	return s;
}

static void conn_process(struct lsn_conn *c)
{
	struct lsn *l = c->l;
	char err[256];
	int completed = 0;

	c->busy++;
	while (c->roff < c->rlen && !c->close_reason && !c->closing) {
		const unsigned char *frame;
		size_t used, flen;
		int r, status = 0;

		if (c->pending >= l->conf.max_pending) {
			stop_reading(c);
			break;
		}
		if (l->sink.can_accept && !l->sink.can_accept(l->sink.opaque)) {
			stop_reading(c);
			c->waiting_bp = 1;
			break;
		}
		if (l->conf.http)
			r = h1_decoder_feed(&c->hdec, c->rbuf + c->roff, c->rlen - c->roff, &used,
					    &frame, &flen, &status, err, sizeof err);
		else
			r = mllp_decoder_feed(&c->dec, c->rbuf + c->roff, c->rlen - c->roff, &used,
					      &frame, &flen, err, sizeof err);
		c->roff += used;
		if (r < 0 && l->conf.http) {
			/* answer in order, after what is pending, then close */
			char resp[1024];
			struct lsn_slot *s;
			l->stats.oversize += status == 413 || status == 431;
			log_warn("mllp", "%s: HTTP %d: %s", c->origin, status, err);
			if (!(s = slot_push(l, c)))
				break;
			c->roff = c->rlen;
			stop_reading(c);
			c->eof = 1;
			lsn_slot_reply_last(s, resp, h1_error_response(status, err, resp, sizeof resp));
			break;
		}
		if (r == 2) { /* HTTP "Expect: 100-continue": say so unless answers are owed first */
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
			if (c->pending == 0 && wbuf_append(c, (const unsigned char *)cont, sizeof cont - 1) == 0 &&
			    conn_flush(c) != 0)
				break;
			continue;
		}
		if (r < 0) {
			l->stats.oversize++;
			log_warn_limited("mllp", "%s: %s", c->origin, err);
			conn_free(c, "frame larger than max_frame_size");
			break;
		}
		if (r == 1) {
			completed = 1;
			if (!l->conf.http && mllp_frame_kind(frame, flen) != MLLP_FRAME_MESSAGE)
				continue; /* a sender's commit acknowledgement: nothing to answer */
			struct lsn_slot *s = slot_push(l, c);
			if (!s)
				break;
			l->stats.frames++;
			l->sink.frame(l->sink.opaque, s, frame, flen);
		}
	}
	if (c->roff == c->rlen)
		c->roff = c->rlen = 0;
	/* Only frames are traffic: bytes outside any frame (junk, keep-alive
	 * noise) do not hold a connection open past idle_timeout. */
	if (!c->close_reason && (completed || mllp_decoder_pending(&c->dec) > 0))
		ev_timer_again(l->loop, &c->idle);
	if (!c->close_reason) {
		/* frame_timeout bounds how long one frame takes to arrive: it runs
		 * from when the frame now pending began (a stream of frames whose
		 * every read ends mid-frame is healthy), and only while we read
		 * (back-pressure holding the sender is our delay, not theirs). */
		int paused = c->roff < c->rlen || c->pending >= l->conf.max_pending || c->waiting_bp;
		int partial = dec_pending(c) > 0;
		if (completed || paused || !partial)
			ev_timer_stop(l->loop, &c->frame);
		if (partial && !paused && !ev_is_active(&c->frame)) {
			/* libev's stop keeps the time left and start resumes it:
			 * set the full timeout again, for this frame. */
			ev_timer_set(&c->frame, (double)l->conf.frame_timeout_ms / 1000.0, 0.);
			ev_timer_start(l->loop, &c->frame);
		}
		if (c->roff == c->rlen && c->pending < l->conf.max_pending && !c->waiting_bp)
			start_reading(c);
	}
	conn_unbusy(c);
}

static void conn_handshake(struct lsn_conn *c)
{
	struct lsn *l = c->l;
	char err[256];
	int r = SSL_accept(c->ssl);

	if (r == 1) {
		c->handshaking = 0;
		ev_timer_stop(l->loop, &c->handshake);
		ev_io_stop(l->loop, &c->wio);
		if (tls_check_peer(c->ssl, &l->conf.tls_conf, err, sizeof err) != 0) {
			l->stats.tls_failures++;
			log_warn_limited("mllp", "%s: %s", c->origin, err);
			conn_free(c, "client certificate not allowed");
			return;
		}
		log_debug("mllp", "%s: TLS %s established", c->origin, SSL_get_version(c->ssl));
		start_reading(c);
		return;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		ev_io_stop(l->loop, &c->wio);
		start_reading(c);
		return;
	case SSL_ERROR_WANT_WRITE:
		stop_reading(c);
		ev_io_start(l->loop, &c->wio);
		return;
	default:
		tls_last_error(err, sizeof err);
		l->stats.tls_failures++;
		log_warn_limited("mllp", "%s: TLS handshake failed: %s", c->origin, err);
		conn_free(c, "TLS handshake failed");
	}
}

static void conn_read(struct lsn_conn *c)
{
	for (;;) {
		ssize_t n;
		if (c->roff < c->rlen || c->waiting_bp || c->pending >= c->l->conf.max_pending) {
			stop_reading(c);
			return;
		}
		if (c->ssl) {
			int r = SSL_read(c->ssl, c->rbuf, sizeof c->rbuf);
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					return;
				ERR_clear_error();
				if (e == SSL_ERROR_ZERO_RETURN)
					n = 0;
				else {
					conn_free(c, "TLS read failed");
					return;
				}
			} else {
				n = r;
			}
		} else {
			n = read(c->fd, c->rbuf, sizeof c->rbuf);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
					return;
				conn_free(c, errno == ECONNRESET ? "reset by peer" : "read failed");
				return;
			}
		}
		if (n == 0) {
			c->eof = 1;
			stop_reading(c);
			if (c->pending == 0 && c->wlen == c->woff)
				conn_free(c, dec_pending(c) ? "peer closed mid-frame" : "peer closed");
			return;
		}
		c->rlen = (size_t)n;
		c->roff = 0;
		c->busy++;
		conn_process(c);
		if (c->close_reason) {
			conn_unbusy(c);
			return;
		}
		conn_unbusy(c);
	}
}

static void rio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lsn_conn *c = container_of(w, struct lsn_conn, rio);
	if (c->handshaking)
		conn_handshake(c);
	else
		conn_read(c);
}

static void wio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lsn_conn *c = container_of(w, struct lsn_conn, wio);
	if (c->handshaking)
		conn_handshake(c);
	else
		conn_flush(c);
}

static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lsn_conn *c = container_of(w, struct lsn_conn, idle);
	if (c->pending > 0) { /* the client waits for us, not the other way round */
		ev_timer_again(loop, w);
		return;
	}
	c->l->stats.timeouts++;
	conn_free(c, "idle timeout");
}

static void handshake_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lsn_conn *c = container_of(w, struct lsn_conn, handshake);
	c->l->stats.timeouts++;
	c->l->stats.tls_failures++;
	conn_free(c, "TLS handshake timeout");
}

static void frame_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lsn_conn *c = container_of(w, struct lsn_conn, frame);
	c->l->stats.timeouts++;
	conn_free(c, "a frame was not completed within frame_timeout");
}

/* ---- accepting ------------------------------------------------------------ */

void lsn_conn_new(struct lsn *l, int fd, const struct sockaddr_storage *peer)
{
	struct lsn_conn *c = calloc(1, sizeof *c);
	char p[80];
	int one = 1;

	if (!c) {
		close(fd);
		return;
	}
	c->l = l;
	c->fd = fd;
	c->id = ++g_conn_ids;
	lsn_describe_peer(peer, p, sizeof p);
	lsn_peer_ip(peer, c->peer_ip, sizeof c->peer_ip);
	snprintf(c->origin, sizeof c->origin, "%s:%s:%s#%llu", l->conf.http ? "fhir" : "mllp",
		 l->conf.name, p, (unsigned long long)c->id);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (l->conf.http)
		h1_decoder_init(&c->hdec, l->conf.max_header, l->conf.max_frame);
	else
		mllp_decoder_init(&c->dec, l->conf.max_frame);
	ev_io_init(&c->rio, rio_cb, fd, EV_READ);
	ev_io_init(&c->wio, wio_cb, fd, EV_WRITE);
	ev_init(&c->idle, idle_cb);
	c->idle.repeat = (double)l->conf.idle_timeout_ms / 1000.0;
	ev_timer_again(l->loop, &c->idle);
	ev_timer_init(&c->handshake, handshake_cb, (double)l->conf.handshake_timeout_ms / 1000.0, 0.);
	ev_timer_init(&c->frame, frame_cb, (double)l->conf.frame_timeout_ms / 1000.0, 0.);
	c->next = l->conns;
	if (l->conns)
		l->conns->prev = c;
	l->conns = c;
	l->stats.open++;
	l->stats.accepted++;
	log_info("mllp", "%s: connected%s", c->origin, l->ctx ? " (TLS)" : "");
	if (l->ctx) {
		c->ssl = SSL_new(l->ctx);
		if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
			conn_free(c, "TLS setup failed");
			return;
		}
		c->handshaking = 1;
		ev_timer_start(l->loop, &c->handshake);
		start_reading(c);
	} else {
		start_reading(c);
	}
}

void lsn_free(struct lsn *l)
{
	if (!l)
		return;
	lsn_stop_accepting(l);
	while (l->conns)
		conn_free(l->conns, "shutdown");
	if (l->ctx)
		SSL_CTX_free(l->ctx);
	free(l);
}

const struct lsn_conf *lsn_config(const struct lsn *l) { return &l->conf; }
void lsn_get_stats(const struct lsn *l, struct lsn_stats *out) { *out = l->stats; }
int lsn_port(const struct lsn *l) { return l->port; }

int lsn_busy(const struct lsn *l)
{
	if (l->pending_total > 0)
		return 1;
	for (const struct lsn_conn *c = l->conns; c; c = c->next)
		if (c->woff < c->wlen)
			return 1;
	return 0;
}

/* ---- as one of the daemon's inputs (ingest/input.h) ------------------------ */

/* Resume connections that paused for back-pressure. */
static void kick(void *self)
{
	struct lsn *l = self;
	for (struct lsn_conn *c = l->conns, *next; c; c = next) {
		next = c->next;
		if (!c->waiting_bp)
			continue;
		if (l->sink.can_accept && !l->sink.can_accept(l->sink.opaque))
			return;
		c->waiting_bp = 0;
		conn_process(c); /* may close c: next was taken first */
	}
}

static int busy(void *self) { return lsn_busy(self); }
static void close_cb(void *self) { lsn_free(self); }

/* The certificate files as configured, loaded again: checked, or installed
 * for new connections (they hold their own reference to the old one). */
static int load_tls(struct lsn *l, int install, char *errstr, size_t errstr_size)
{
	SSL_CTX *ctx;
	if (!l->conf.tls)
		return 0;
	if (!(ctx = tls_ctx_new(&l->conf.tls_conf, errstr, errstr_size)))
		return -1;
	SSL_CTX_free(install ? l->ctx : ctx);
	if (install)
		l->ctx = ctx;
	return 0;
}

static int reload_check(void *self, char *errstr, size_t errstr_size)
{
	return load_tls(self, 0, errstr, errstr_size);
}

static int reload(void *self, char *errstr, size_t errstr_size)
{
	return load_tls(self, 1, errstr, errstr_size);
}

static void view(void *self, struct input_view *out)
{
	struct lsn *l = self;
	out->name = l->conf.name;
	out->lsn = l;
}

const struct input_ops lsn_input_ops = {
	.kind = "mllp",
	.format = "hl7v2",
	.wake = kick,
	.busy = busy,
	.stop = lsn_stop_accepting,
	.reload_check = reload_check,
	.reload = reload,
	.close = close_cb,
	.view = view,
};

/* mllp_peer — TEST-ONLY MLLP responder. See mllp_peer.h. */
#include "mllp_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "ingest/mllp.h"
#include "parse/hl7.h"

#define PEER_MAX_CONNS 4096
#define PEER_MAX_HOLD 64

struct peer_conn {
	struct mllp_peer *p;
	pthread_t thread;
	int fd;
	SSL *ssl;
};

struct mllp_peer {
	struct mllp_peer_opts o;
	int lfd, port;
	pthread_t acceptor;
	pthread_mutex_t mu;
	struct peer_conn *conns[PEER_MAX_CONNS];
	unsigned nconns;
	struct mllp_peer_stats st;
	int stopping;
};

static int peer_write(struct peer_conn *c, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = c->ssl ? SSL_write(c->ssl, p, (int)len) : send(c->fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Answer one message. Returns -1 to close the connection. */
static int answer(struct peer_conn *c, const char *msg, size_t len)
{
	static const char mismatch[] = "MSH|^~\\&|PEER|TEST|||20261127000000||ACK|PEER-1|P|2.5.1\r"
				       "MSA|AA|SOMEONE-ELSE\r";
	char ack[4096], es[128];
	unsigned char frame[sizeof ack + MLLP_OVERHEAD];
	struct hl7_seg segs[256];
	struct hl7_msg m;
	struct hl7_error err;
	struct hl7_view id = { "", 0 };
	struct hl7_path where;
	struct hl7_ack_params ap = { .control_id = "PEER-ACK", .timestamp = "20261127000000" };
	int parsed = hl7_parse(&m, msg, len, segs, 256, NULL, &err) == 0;
	ssize_t n;

	if (parsed)
		hl7_field(&m, 0, 10, &id);
	if (id.len >= 4 && !memcmp(id.ptr, "HUGE", 4)) {
		/* One frame over MLLP_DEFAULT_MAX_FRAME. */
		size_t big = MLLP_DEFAULT_MAX_FRAME + 1024;
		char *f = malloc(big + MLLP_OVERHEAD);
		int rc = -1;
		if (parsed)
			hl7_msg_clear(&m);
		if (f) {
			memset(f, 'A', big + MLLP_OVERHEAD);
			f[0] = MLLP_VT;
			f[big + 1] = MLLP_FS;
			f[big + 2] = MLLP_CR;
			rc = peer_write(c, f, big + MLLP_OVERHEAD);
			free(f);
		}
		return rc;
	}
	if (id.len >= 4 && !memcmp(id.ptr, "SLOW", 4))
		n = 0;
	else if (id.len >= 5 && !memcmp(id.ptr, "CLOSE", 5))
		n = -1;
	else if (id.len >= 4 && !memcmp(id.ptr, "GARB", 4))
		n = snprintf(ack, sizeof ack, "this is not HL7");
	else if (id.len >= 3 && !memcmp(id.ptr, "MIS", 3))
		n = snprintf(ack, sizeof ack, "%s", mismatch);
	else {
		if (id.len >= 3 && !memcmp(id.ptr, "ERR", 3)) {
			hl7_path_compile(&where, "PID-3", &err);
			ap.status = HL7_ACK_ERROR;
			ap.err_code = 207;
			ap.err_where = &where;
			ap.reason = "test peer rejects ERR ids";
		} else if (!parsed) {
			ap.status = HL7_ACK_REJECT;
			ap.err_code = hl7_err_0357(err.code);
		}
		n = hl7_ack_build(msg, len, parsed ? &m : NULL, &ap, ack, sizeof ack, es, sizeof es);
	}
	if (parsed)
		hl7_msg_clear(&m);
	if (n < 0)
		return -1;
	if (n == 0)
		return 0;
	size_t fl = mllp_encode(ack, (size_t)n, frame, sizeof frame);
	return peer_write(c, frame, fl);
}

static void *conn_main(void *arg)
{
	struct peer_conn *c = arg;
	struct mllp_peer *p = c->p;
	struct mllp_decoder dec;
	unsigned char buf[16384];
	char *held[PEER_MAX_HOLD];
	size_t held_len[PEER_MAX_HOLD];
	unsigned nheld = 0, hold = p->o.hold ? p->o.hold : 1;
	int ok = 1;

	if (hold > PEER_MAX_HOLD)
		hold = PEER_MAX_HOLD;
	mllp_decoder_init(&dec, MLLP_DEFAULT_MAX_FRAME);
	if (c->ssl && SSL_accept(c->ssl) != 1) {
		pthread_mutex_lock(&p->mu);
		p->st.handshakes_failed++;
		pthread_mutex_unlock(&p->mu);
		ok = 0;
	}
	while (ok) {
		ssize_t n = c->ssl ? SSL_read(c->ssl, buf, sizeof buf) : recv(c->fd, buf, sizeof buf, 0);
		if (n <= 0)
			break;
		const unsigned char *q = buf;
		size_t left = (size_t)n;
		while (left > 0 && ok) {
			size_t used, fl;
			const unsigned char *f;
			char es[128];
			int r = mllp_decoder_feed(&dec, q, left, &used, &f, &fl, es, sizeof es);
			q += used;
			left -= used;
			if (r < 0) {
				ok = 0;
			} else if (r == 1) {
				held[nheld] = malloc(fl ? fl : 1);
				memcpy(held[nheld], f, fl);
				held_len[nheld++] = fl;
				pthread_mutex_lock(&p->mu);
				p->st.frames++;
				if (nheld > p->st.max_waiting)
					p->st.max_waiting = nheld;
				pthread_mutex_unlock(&p->mu);
				if (nheld < hold)
					continue;
				for (unsigned i = 0; i < nheld; i++) {
					if (ok && answer(c, held[i], held_len[i]) < 0)
						ok = 0;
					free(held[i]);
				}
				nheld = 0;
			}
		}
	}
	for (unsigned i = 0; i < nheld; i++)
		free(held[i]);
	mllp_decoder_clear(&dec);
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	shutdown(c->fd, SHUT_RDWR);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct mllp_peer *p = arg;

	for (;;) {
		int fd = accept(p->lfd, NULL, NULL), one = 1;
		if (fd < 0)
			break;
		pthread_mutex_lock(&p->mu);
		if (p->stopping || p->nconns == PEER_MAX_CONNS) {
			pthread_mutex_unlock(&p->mu);
			close(fd);
			if (p->stopping)
				break;
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct peer_conn *c = calloc(1, sizeof *c);
		c->p = p;
		c->fd = fd;
		if (p->o.tls) {
			c->ssl = SSL_new(p->o.tls);
			SSL_set_fd(c->ssl, fd);
		}
		p->conns[p->nconns++] = c;
		p->st.connections++;
		pthread_create(&c->thread, NULL, conn_main, c);
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

struct mllp_peer *mllp_peer_start(const struct mllp_peer_opts *o)
{
	struct mllp_peer *p = calloc(1, sizeof *p);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof sa;

	if (!p)
		return NULL;
	p->o = *o;
	pthread_mutex_init(&p->mu, NULL);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    listen(p->lfd, 512) != 0 || getsockname(p->lfd, (struct sockaddr *)&sa, &sl) != 0)
		goto fail;
	p->port = ntohs(sa.sin_port);
	if (pthread_create(&p->acceptor, NULL, accept_main, p) != 0)
		goto fail;
	return p;
fail:
	if (p->lfd >= 0)
		close(p->lfd);
	free(p);
	return NULL;
}

int mllp_peer_port(const struct mllp_peer *p)
{
	return p->port;
}

void mllp_peer_stop(struct mllp_peer *p, struct mllp_peer_stats *st)
{
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_mutex_unlock(&p->mu);
	/* Wakes accept(); then every connection's blocking read. */
	shutdown(p->lfd, SHUT_RDWR);
	pthread_join(p->acceptor, NULL);
	for (unsigned i = 0; i < p->nconns; i++)
		shutdown(p->conns[i]->fd, SHUT_RDWR);
	for (unsigned i = 0; i < p->nconns; i++) {
		pthread_join(p->conns[i]->thread, NULL);
		close(p->conns[i]->fd);
		free(p->conns[i]);
	}
	close(p->lfd);
	if (st)
		*st = p->st;
	pthread_mutex_destroy(&p->mu);
	free(p);
}

SSL_CTX *mllp_peer_tls_ctx(const char *cert, const char *key, const char *ca_file)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		return NULL;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		goto fail;
	if (ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
			goto fail;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

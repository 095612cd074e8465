#include "iclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/* A blocking call that finds nothing within this returns (poll decides
 * before we read, so this only bounds a record that never completes). */
#define ICL_IO_TIMEOUT_S 10

long long icl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ssl_err(char *err, size_t errsz, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "no OpenSSL reason";
	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	snprintf(err, errsz, "%s: %s", what, buf);
}

int icl_connect(struct icl *c, int port, const struct icl_tls *tls, char *err, size_t errsz)
{
	struct sockaddr_in a;
	struct timeval tv = { ICL_IO_TIMEOUT_S, 0 };
	int one = 1;

	memset(c, 0, sizeof *c);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
		snprintf(err, errsz, "connect to port %d: %s", port, strerror(errno));
		goto fail;
	}
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (!tls)
		return 0;

	c->ctx = SSL_CTX_new(TLS_client_method());
	if (!c->ctx) {
		ssl_err(err, errsz, "SSL_CTX_new");
		goto fail;
	}
	if (tls->max_version) {
		/* Old versions are refused by OpenSSL's default security level
		 * before anything is sent: lower it, so the server is what says no. */
		SSL_CTX_set_security_level(c->ctx, 0);
		SSL_CTX_set_min_proto_version(c->ctx, TLS1_VERSION);
		SSL_CTX_set_max_proto_version(c->ctx, tls->max_version);
		SSL_CTX_set_cipher_list(c->ctx, "DEFAULT:@SECLEVEL=0");
	}
	if (SSL_CTX_load_verify_locations(c->ctx, tls->ca, NULL) != 1) {
		ssl_err(err, errsz, tls->ca);
		goto fail;
	}
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	if (tls->cert && (SSL_CTX_use_certificate_chain_file(c->ctx, tls->cert) != 1 ||
			  SSL_CTX_use_PrivateKey_file(c->ctx, tls->key, SSL_FILETYPE_PEM) != 1)) {
		ssl_err(err, errsz, tls->cert);
		goto fail;
	}
	c->ssl = SSL_new(c->ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		ssl_err(err, errsz, "SSL_new");
		goto fail;
	}
	X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), "127.0.0.1");
	if (SSL_connect(c->ssl) != 1) {
		long v = SSL_get_verify_result(c->ssl);
		if (v != X509_V_OK)
			snprintf(err, errsz, "handshake: certificate: %s", X509_verify_cert_error_string(v));
		else
			ssl_err(err, errsz, "handshake");
		goto fail;
	}
	return 0;
fail:
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->ctx = NULL;
	c->fd = -1;
	return -1;
}

int icl_write(struct icl *c, const void *p, size_t n)
{
	const unsigned char *b = p;
	while (n > 0) {
		ssize_t w;
		if (c->ssl) {
			int r = SSL_write(c->ssl, b, (int)n);
			if (r <= 0)
				return -1;
			w = r;
		} else {
			w = send(c->fd, b, n, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -1;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int icl_send(struct icl *c, const char *msg, size_t len)
{
	unsigned char *f = malloc(len + 3);
	int rc;
	f[0] = 0x0b;
	memcpy(f + 1, msg, len);
	f[len + 1] = 0x1c;
	f[len + 2] = 0x0d;
	rc = icl_write(c, f, len + 3);
	free(f);
	return rc;
}

/* Read what is there into rbuf: >0 bytes, 0 closed/reset, -2 timeout. */
static int fill(struct icl *c, int timeout_ms)
{
	struct pollfd pf = { c->fd, POLLIN, 0 };
	ssize_t n;
	if (c->rlen == sizeof c->rbuf)
		c->rlen = 0; /* garbage that never framed: drop it */
	if (!(c->ssl && SSL_pending(c->ssl) > 0)) {
		int r = poll(&pf, 1, timeout_ms < 0 ? 0 : timeout_ms);
		if (r == 0)
			return -2;
		if (r < 0)
			return errno == EINTR ? -2 : 0;
	}
	if (c->ssl) {
		int r = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(sizeof c->rbuf - c->rlen));
		if (r <= 0) {
			int e = SSL_get_error(c->ssl, r);
			ERR_clear_error();
			if (e == SSL_ERROR_WANT_READ || (e == SSL_ERROR_SYSCALL && errno == EAGAIN))
				return -2;
			return 0;
		}
		n = r;
	} else {
		n = recv(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen, 0);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? -2 : 0;
		if (n == 0)
			return 0;
	}
	c->rlen += (size_t)n;
	return (int)n;
}

int icl_read_ack(struct icl *c, char *out, size_t cap, int timeout_ms)
{
	long long deadline = icl_now_ms() + timeout_ms;
	for (;;) {
		unsigned char *vt = memchr(c->rbuf, 0x0b, c->rlen);
		if (!vt) {
			c->rlen = 0;
		} else {
			size_t start = (size_t)(vt - c->rbuf) + 1;
			for (size_t i = start; i + 1 < c->rlen; i++) {
				if (c->rbuf[i] == 0x1c && c->rbuf[i + 1] == 0x0d) {
					size_t n = i - start, used = i + 2;
					if (n >= cap)
						n = cap - 1;
					memcpy(out, c->rbuf + start, n);
					out[n] = '\0';
					memmove(c->rbuf, c->rbuf + used, c->rlen - used);
					c->rlen -= used;
					return (int)n;
				}
			}
		}
		long long left = deadline - icl_now_ms();
		if (left <= 0)
			return -2;
		int r = fill(c, (int)left);
		if (r == 0)
			return -1;
	}
}

int icl_exchange(struct icl *c, const char *msg, char *ack, size_t cap, int timeout_ms)
{
	if (icl_send(c, msg, strlen(msg)) != 0)
		return -1;
	return icl_read_ack(c, ack, cap, timeout_ms);
}

int icl_wait_closed(struct icl *c, int timeout_ms)
{
	long long deadline = icl_now_ms() + timeout_ms;
	for (;;) {
		long long left = deadline - icl_now_ms();
		if (left <= 0)
			return 0;
		c->rlen = 0;
		if (fill(c, (int)left) == 0)
			return 1;
	}
}

void icl_close(struct icl *c)
{
	if (c->fd < 0)
		return;
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	close(c->fd);
	c->fd = -1;
	c->ssl = NULL;
	c->ctx = NULL;
}

void icl_reset(struct icl *c)
{
	struct linger lg = { 1, 0 };
	if (c->fd < 0)
		return;
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	close(c->fd);
	c->fd = -1;
	c->ssl = NULL;
	c->ctx = NULL;
}

void icl_peer_fingerprint(struct icl *c, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	X509 *x = c->ssl ? SSL_get1_peer_certificate(c->ssl) : NULL;
	out[0] = '\0';
	if (!x)
		return;
	if (X509_digest(x, EVP_sha256(), md, &n) == 1)
		for (unsigned i = 0; i < n && i < 32; i++)
			sprintf(out + 2 * i, "%02x", md[i]);
	X509_free(x);
}

void icl_msa1(const char *ack, char out[3])
{
	const char *m = strstr(ack, "\rMSA|");
	out[0] = '\0';
	if (m && m[5] && m[6] && (m[7] == '|' || m[7] == '\r' || m[7] == '\0')) {
		out[0] = m[5];
		out[1] = m[6];
		out[2] = '\0';
	}
}

int icl_ack_ok(const char *ack, const char *id)
{
	char code[3], want[128];
	icl_msa1(ack, code);
	if (strcmp(code, "AA") != 0 && strcmp(code, "CA") != 0)
		return 0;
	snprintf(want, sizeof want, "MSA|%s|%s", code, id);
	const char *m = strstr(ack, want);
	return m && (m[strlen(want)] == '|' || m[strlen(want)] == '\r' || m[strlen(want)] == '\0');
}

char *icl_adt(const char *id)
{
	char *m = malloc(1024);
	snprintf(m, 1024,
		 "MSH|^~\\&|ITEST|ITESTHOSP|HL7BRIDGE|CMM|20261127070000||ADT^A01^ADT_A01|%s|P|2.5.1\r"
		 "EVN|A01|20261127070000\r"
		 "PID|1||%s^^^ITESTHOSP^MR||Example^Sam||19800101|F|||1 Test Road^^Testville^MI^49116^USA^H\r"
		 "PV1|1|I|WARD1^101^A\r",
		 id, id);
	return m;
}

/* ---- the well-behaved sender ------------------------------------------------ */

static void steady_fail(struct icl_steady *s, const char *what)
{
	if (atomic_fetch_add(&s->bad, 1) == 0)
		snprintf(s->first_error, sizeof s->first_error, "%s", what);
}

static void *steady_main(void *arg)
{
	struct icl_steady *s = arg;
	struct icl c;
	char err[256], ack[4096], id[160];
	long n = 0;
	int up = 0;

	while (!atomic_load(&s->stop)) {
		if (!up) {
			if (icl_connect(&c, s->port, NULL, err, sizeof err) != 0) {
				steady_fail(s, err);
				usleep(100 * 1000);
				continue;
			}
			up = 1;
		}
		snprintf(id, sizeof id, "%s-%ld", s->tag, ++n);
		char *msg = icl_adt(id);
		long long t0 = icl_now_ms();
		int r = icl_exchange(&c, msg, ack, sizeof ack, 15000);
		long us = (long)(icl_now_ms() - t0) * 1000;
		free(msg);
		if (r > 0 && icl_ack_ok(ack, id)) {
			atomic_fetch_add(&s->ok, 1);
			if (us > atomic_load(&s->max_us))
				atomic_store(&s->max_us, us);
			continue;
		}
		snprintf(err, sizeof err, "message %s: %s", id,
			 r == -2 ? "no ACK within 15 s" : r < 0 ? "connection closed" : "not a positive ACK");
		steady_fail(s, err);
		icl_close(&c);
		up = 0;
	}
	if (up)
		icl_close(&c);
	return NULL;
}

void icl_steady_start(struct icl_steady *s, int port, const char *tag)
{
	memset(s, 0, sizeof *s);
	s->port = port;
	snprintf(s->tag, sizeof s->tag, "%s", tag);
	pthread_create(&s->th, NULL, steady_main, s);
}

void icl_steady_stop(struct icl_steady *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->th, NULL);
}

int icl_steady_progress(struct icl_steady *s, long more, int timeout_ms)
{
	long target = atomic_load(&s->ok) + more;
	long long deadline = icl_now_ms() + timeout_ms;
	while (atomic_load(&s->ok) < target) {
		if (icl_now_ms() > deadline)
			return 0;
		usleep(20 * 1000);
	}
	return 1;
}

/* ---- the daemon process -------------------------------------------------- */

long icl_proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t fl = strlen(field);
	long v = -1;
	FILE *f;
	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			v = strtol(line + fl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

char *icl_slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;
	if (!f)
		return calloc(1, 1);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	n = (long)fread(buf, 1, (size_t)n, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

int icl_count_in_file(const char *path, const char *needle)
{
	char *s = icl_slurp(path);
	int n = 0;
	for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	free(s);
	return n;
}

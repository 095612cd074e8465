/* The listening socket: bind, accept, refuse over max_connections and
 * max_connections_per_peer, back off when out of descriptors. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/listener_int.h"
#include "log.h"
#include "util.h"

void lsn_peer_ip(const struct sockaddr_storage *ss, char *buf, size_t n)
{
	snprintf(buf, n, "?");
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, (socklen_t)n);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, (socklen_t)n);
}

/* Open connections from the address ip. */
static int peer_conns(const struct lsn *l, const char *ip)
{
	int n = 0;
	for (const struct lsn_conn *c = l->conns; c; c = c->next)
		n += strcmp(c->peer_ip, ip) == 0;
	return n;
}

void lsn_describe_peer(const struct sockaddr_storage *ss, char *buf, size_t n)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		port = ntohs(a->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		port = ntohs(a->sin6_port);
	}
	snprintf(buf, n, "%s:%d", host, port);
}

static void accept_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lsn *l = container_of(w, struct lsn, accept_retry);
	if (l->fd >= 0)
		ev_io_start(loop, &l->accept_io);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lsn *l = container_of(w, struct lsn, accept_io);
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: back off instead of spinning. */
				log_error("mllp", "%s: accept: %s; pausing accepts for 1 s", l->conf.name,
					  strerror(errno));
				ev_io_stop(loop, &l->accept_io);
				ev_timer_set(&l->accept_retry, 1.0, 0.);
				ev_timer_start(loop, &l->accept_retry);
			}
			return;
		}
		if (l->stats.open >= l->conf.max_connections) {
			char p[80];
			lsn_describe_peer(&ss, p, sizeof p);
			l->stats.refused++;
			log_warn_limited("mllp", "%s: refused %s: max_connections (%d) reached", l->conf.name, p,
				 l->conf.max_connections);
			close(fd);
			continue;
		}
		if (l->conf.max_connections_per_peer > 0) {
			char ip[INET6_ADDRSTRLEN];
			lsn_peer_ip(&ss, ip, sizeof ip);
			if (peer_conns(l, ip) >= l->conf.max_connections_per_peer) {
				l->stats.refused++;
				log_warn_limited("mllp", "%s: refused a connection from %s: "
							 "max.connections.per.peer (%d) reached",
						 l->conf.name, ip, l->conf.max_connections_per_peer);
				close(fd);
				continue;
			}
		}
		lsn_conn_new(l, fd, &ss);
	}
}

struct lsn *lsn_new(struct ev_loop *loop, const struct lsn_conf *conf, const struct lsn_sink *sink,
		    char *errstr, size_t errstr_size)
{
	struct lsn *l = calloc(1, sizeof *l);
	struct addrinfo hints, *res = NULL;
	struct sockaddr_storage bound;
	socklen_t bl = sizeof bound;
	int one = 1, rc;

	if (!l) {
		util_seterr(errstr, errstr_size, "out of memory");
		return NULL;
	}
	l->loop = loop;
	l->conf = *conf;
	l->sink = *sink;
	l->fd = -1;
	if (conf->tls) {
		l->ctx = tls_ctx_new(&conf->tls_conf, errstr, errstr_size);
		if (!l->ctx)
			goto fail;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(conf->host[0] ? conf->host : NULL, conf->port, &hints, &res);
	if (rc != 0) {
		util_seterr(errstr, errstr_size, "listener %s: %s:%s: %s", conf->name, conf->host,
			    conf->port, gai_strerror(rc));
		goto fail;
	}
	l->fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0 || setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(l->fd, res->ai_addr, res->ai_addrlen) != 0 || listen(l->fd, 512) != 0) {
		util_seterr(errstr, errstr_size, "listener %s: %s:%s: %s", conf->name, conf->host,
			    conf->port, strerror(errno));
		goto fail;
	}
	freeaddrinfo(res);
	res = NULL;
	if (getsockname(l->fd, (struct sockaddr *)&bound, &bl) == 0)
		l->port = ntohs(bound.ss_family == AF_INET6
					? ((struct sockaddr_in6 *)&bound)->sin6_port
					: ((struct sockaddr_in *)&bound)->sin_port);
	ev_io_init(&l->accept_io, accept_cb, l->fd, EV_READ);
	ev_init(&l->accept_retry, accept_retry_cb);
	ev_io_start(loop, &l->accept_io);
	return l;
fail:
	if (res)
		freeaddrinfo(res);
	lsn_free(l);
	return NULL;
}

/* Stop accepting (graceful shutdown); open connections go on. */
void lsn_stop_accepting(void *self)
{
	struct lsn *l = self;
	ev_io_stop(l->loop, &l->accept_io);
	ev_timer_stop(l->loop, &l->accept_retry);
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
}


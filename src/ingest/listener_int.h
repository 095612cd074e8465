/*
 * listener internals shared by listener.c (connections: reading, writing,
 * replies in order) and listener_accept.c (the listening socket: binding,
 * accepting, refusing over the limits). Not for other modules.
 */
#ifndef HB_LISTENER_INT_H
#define HB_LISTENER_INT_H

#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "ingest/http1.h"
#include "ingest/listener.h"
#include "ingest/mllp.h"

#define LSN_READ_CHUNK 16384

struct lsn_slot {
	struct lsn_slot *next;
	struct lsn_conn *conn; /* NULL once the connection is gone */
	int answered;
	int close_after;
	int close_when_written; /* HTTP: the reply is the connection's last */
	unsigned char *reply; /* framed */
	size_t reply_len;
};

struct lsn_conn {
	struct lsn *l;
	struct lsn_conn *prev, *next;
	uint64_t id;
	int fd;
	SSL *ssl;
	int handshaking;
	ev_io rio, wio;
	ev_timer idle, handshake, frame;
	struct mllp_decoder dec;
	struct h1_decoder hdec; /* conf.http */
	unsigned char rbuf[LSN_READ_CHUNK];
	size_t rlen, roff;
	unsigned char *wbuf;
	size_t wlen, woff, wcap;
	struct lsn_slot *head, *tail;
	int pending;
	int reading;     /* rio active */
	int waiting_bp;  /* on the listener's back-pressure list */
	int eof;         /* the peer finished sending */
	int closing;     /* close once everything answered is written */
	int busy;        /* inside a callback that may reply synchronously */
	const char *close_reason; /* deferred close */
	char origin[192];
	char peer_ip[INET6_ADDRSTRLEN]; /* for max_connections_per_peer */
};

struct lsn {
	struct ev_loop *loop;
	struct lsn_conf conf;
	struct lsn_sink sink;
	int fd;
	int port;
	ev_io accept_io;
	ev_timer accept_retry;
	SSL_CTX *ctx;
	struct lsn_conn *conns;
	uint64_t next_id;
	struct lsn_stats stats;
	int pending_total;
};

/* listener.c: a new connection on fd (the listener owns fd from here). */
void lsn_conn_new(struct lsn *l, int fd, const struct sockaddr_storage *peer);
/* listener_accept.c */
void lsn_peer_ip(const struct sockaddr_storage *ss, char *buf, size_t n);
void lsn_describe_peer(const struct sockaddr_storage *ss, char *buf, size_t n);
/* Stop accepting (graceful shutdown); open connections go on. */
void lsn_stop_accepting(void *self);

#endif

/* mllp_client — send a list of messages over MLLP (TCP or TLS) and collect
 * one reply per message: the engine behind `hl7bridge send`.
 *
 * One libev loop drives every connection with non-blocking sockets. Jobs
 * (message i of round r) are taken from one shared queue in order by
 * whichever connection has room, so N connections spread the load and a
 * single connection with pipeline 1 sends strictly one message at a time,
 * in file order. Replies are matched to the oldest unanswered message on
 * their connection (MLLP answers in order); what a reply means is the
 * caller's business (the engine knows nothing of HL7).
 *
 * Failures:
 *  - fatal (the run stops, mllp_client_run returns -1): the host does not
 *    resolve, a connection cannot be made (refused, unreachable, connect
 *    timeout), a TLS handshake or TLS protocol error, or connections keep
 *    ending without a single reply (MLLP_CLIENT_MAX_BARREN_CONNECTS);
 *  - per message (reported through the callback, then the connection is
 *    closed and made again if work remains): no reply within the timeout,
 *    the peer closing or resetting the connection, a reply over max_frame.
 *
 * The caller must ignore SIGPIPE (TLS writes go through write(2)).
 */
#ifndef HB_MLLP_CLIENT_H
#define HB_MLLP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* Named limits for the options below. */
#define MLLP_CLIENT_MAX_CONNECTIONS 4096
#define MLLP_CLIENT_MAX_PIPELINE 1024
/* Connections in a row that end before any reply arrived: the peer is
 * refusing us in a way a reconnect will not fix. */
#define MLLP_CLIENT_MAX_BARREN_CONNECTS 5

struct mllp_client_opts {
	const char *host, *port;
	SSL_CTX *tls;           /* borrowed; NULL: plain TCP */
	const char *servername; /* TLS: SNI and the name to check; NULL: host */
	unsigned connections;   /* 1..MLLP_CLIENT_MAX_CONNECTIONS */
	unsigned pipeline;      /* unanswered messages per connection, 1..MAX_PIPELINE */
	double rate;            /* messages per second overall; 0: as fast as replies allow */
	double timeout;         /* seconds to wait for a reply, and for connect + handshake */
	size_t max_frame;       /* largest reply accepted; 0: MLLP_DEFAULT_MAX_FRAME */
	uint64_t repeat;        /* send the whole list this many times (>= 1) */
	int stop_on_signals;    /* SIGINT/SIGTERM stop the run like a fatal error
				 * ("interrupted"), so the caller can still report */
};

struct mllp_client_payload {
	const char *ptr;        /* one message, unframed */
	size_t len;
};

enum mllp_client_outcome {
	MLLP_CLIENT_REPLY,      /* a reply frame arrived */
	MLLP_CLIENT_TIMEOUT,    /* no reply within the timeout */
	MLLP_CLIENT_FAILED,     /* the connection ended before the reply */
};

struct mllp_client_result {
	size_t msg;             /* index into the payload list */
	uint64_t round;         /* 0-based repetition */
	enum mllp_client_outcome outcome;
	const unsigned char *reply; /* REPLY: the frame's payload, valid during the callback */
	size_t reply_len;
	int64_t latency_us;     /* from queueing the message to the outcome */
	const char *why;        /* TIMEOUT/FAILED: what happened (no message data) */
};

typedef void (*mllp_client_result_cb)(void *opaque, const struct mllp_client_result *r);

struct mllp_client_stats {
	uint64_t sent;          /* messages written completely */
	uint64_t replies, timeouts, failed; /* outcomes reported */
	uint64_t not_sent;      /* jobs never started (after a fatal error) */
	uint64_t connects;      /* connections established (incl. TLS handshake) */
	uint64_t commit_acks;   /* MLLP release 2 commit blocks received (ignored) */
	uint64_t unsolicited;   /* replies with nothing outstanding (ignored) */
	double elapsed;         /* seconds from start to the last outcome */
};

/* Copy and frame the n payloads once, then send them opts->repeat times,
 * calling cb once per message sent with its outcome. Blocks until every
 * job has an outcome or a fatal error. Returns 0, or -1 with errstr on a
 * fatal error or invalid options (stats are filled either way). */
int mllp_client_run(const struct mllp_client_opts *opts,
		    const struct mllp_client_payload *msgs, size_t n,
		    mllp_client_result_cb cb, void *opaque,
		    struct mllp_client_stats *stats, char *errstr,
		    size_t errstr_size);

#endif

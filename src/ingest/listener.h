/*
 * listener — MLLP over TCP or TLS: accept connections, read frames, and
 * write each frame's reply in the order the frames came, however the replies
 * complete (pipelining).
 *
 * Runs on one libev loop. For every complete frame the listener asks the
 * sink whether it can take more work (back-pressure) and then hands it the
 * frame together with a *slot*: the place of its reply in the connection's
 * order. The sink answers the slot later with lsn_slot_reply() — after the
 * Kafka commit, typically. A slot outlives its connection: replying to the
 * slot of a closed connection just frees it.
 *
 * Every limit has a name and a config key: max_connections,
 * max_connections_per_peer (one source address), idle_timeout (reset only by
 * frame bytes: junk between frames does not keep a connection alive),
 * handshake_timeout, frame_timeout (a slow sender's partial frame),
 * max_frame_size, max_pending (frames awaiting their reply per connection),
 * max_write_buffer (a client that does not read its ACKs is cut off).
 */
#ifndef HB_LISTENER_H
#define HB_LISTENER_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "ingest/input.h"
#include "ingest/tls.h"

struct lsn_conf {
	char name[64];
	char host[128];
	char port[16];
	int tls;
	struct tls_conf tls_conf;
	int max_connections;
	int max_connections_per_peer; /* from one source address; 0: no limit */
	int64_t idle_timeout_ms;
	int64_t handshake_timeout_ms;
	int64_t frame_timeout_ms;
	size_t max_frame;
	int max_pending;
	size_t max_write_buffer;
	/* 1: frames are HTTP/1.1 requests (ingest/http1.h: head + body, max_frame
	 * bounds the body, max_header the head) and replies are complete HTTP
	 * responses written as given; a malformed or too large request is
	 * answered 400/413/431/501 by the listener and the connection closed. */
	int http;
	size_t max_header;
};

void lsn_conf_defaults(struct lsn_conf *c);

struct lsn_slot;
struct lsn_conn;

struct lsn_sink {
	/* Can the pipeline take another frame now? When not, the connection
	 * stops reading until the input's wake (lsn_input_ops). */
	int (*can_accept)(void *opaque);
	/* A complete frame (valid during the call only) and its reply slot. */
	void (*frame)(void *opaque, struct lsn_slot *slot, const unsigned char *frame, size_t len);
	void *opaque;
};

struct lsn_stats {
	uint64_t accepted, refused, closed, tls_failures, frames, oversize, timeouts;
	int open;
};

struct lsn;

/* Bind and listen (on loop). NULL with errstr on failure (address in use,
 * bad TLS material). */
struct lsn *lsn_new(struct ev_loop *loop, const struct lsn_conf *c, const struct lsn_sink *sink,
		    char *errstr, size_t errstr_size);
/* Close everything and free. Pending slots are orphaned, not freed. */
void lsn_free(struct lsn *l);
const struct lsn_conf *lsn_config(const struct lsn *l);
void lsn_get_stats(const struct lsn *l, struct lsn_stats *out);
/* The bound port (useful when the configuration said 0). */
int lsn_port(const struct lsn *l);
/* Non-zero while any frame is unanswered or any answer is not yet written. */
int lsn_busy(const struct lsn *l);

/* A listener as one of the daemon's inputs ({ &lsn_input_ops, l }): wake
 * resumes connections that paused for back-pressure; stop stops accepting
 * (open connections go on); reload_check/reload load the configured
 * certificate files again and check them / install them for new
 * connections; close is lsn_free. */
extern const struct input_ops lsn_input_ops;

/* The connection's origin string "mllp:<listener>:<peer ip>:<port>#<conn id>"
 * and a numeric id (pins it to a publisher lane). NULL / 0 once closed. */
const char *lsn_slot_origin(const struct lsn_slot *s);
uint64_t lsn_slot_conn_id(const struct lsn_slot *s);

/* Answer a slot: the bytes are MLLP-framed and written when every earlier
 * slot of the connection has been answered. reply == NULL closes the
 * connection without answering (e.g. the publisher failed: no positive ACK
 * may be sent). The slot is consumed. */
void lsn_slot_reply(struct lsn_slot *s, const void *reply, size_t len);
/* Answer a slot, then close the connection once the answer is written
 * (HTTP "Connection: close"). */
void lsn_slot_reply_last(struct lsn_slot *s, const void *reply, size_t len);

#endif

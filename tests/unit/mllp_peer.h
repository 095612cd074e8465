/* mllp_peer — a TEST-ONLY MLLP responder for the client tests. Not the
 * bridge's listener: a thread per connection, blocking I/O, no limits worth
 * the name. Listens on 127.0.0.1 on a free port, optionally over TLS, and
 * answers every frame with an ACK built by hl7_ack_build. What it answers
 * depends on the message's MSH-10 prefix:
 *   ERR...    AE with an ERR segment (code 207, a fixed text)
 *   MIS...    AA whose MSA-2 names another message
 *   SLOW...   nothing (the client times out)
 *   GARB...   a frame that is not HL7
 *   CLOSE...  closes the connection without answering
 *   HUGE...   a frame larger than MLLP_DEFAULT_MAX_FRAME
 *   anything else: AA
 */
#ifndef HB_TEST_MLLP_PEER_H
#define HB_TEST_MLLP_PEER_H

#include <openssl/ssl.h>

struct mllp_peer_opts {
	SSL_CTX *tls;           /* server context (borrowed), NULL: plain TCP */
	unsigned hold;          /* answer only once this many frames wait (0/1: at once) */
};

struct mllp_peer_stats {
	unsigned connections;   /* accepted (TLS handshakes that failed included) */
	unsigned handshakes_failed;
	unsigned frames;        /* frames received */
	unsigned max_waiting;   /* most frames received and not yet answered at once */
};

struct mllp_peer;

/* Start listening; NULL on failure. */
struct mllp_peer *mllp_peer_start(const struct mllp_peer_opts *o);
int mllp_peer_port(const struct mllp_peer *p);
/* Stop, join every thread, copy the stats (may be NULL), free. */
void mllp_peer_stop(struct mllp_peer *p, struct mllp_peer_stats *st);

/* A server context for the peer: certificate and key, and when ca_file is
 * given, client certificates are required and checked against it. */
SSL_CTX *mllp_peer_tls_ctx(const char *cert, const char *key, const char *ca_file);

#endif

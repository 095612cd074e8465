/*
 * iclient — blocking MLLP clients (plain or TLS) for the daemon's end-to-end
 * tests, a well-behaved background sender, and what the tests read from the
 * daemon process (/proc status fields, its log). Test code only.
 *
 * Every read has a timeout; nothing here waits forever.
 */
#ifndef HB_ICLIENT_H
#define HB_ICLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#define ICL_RBUF 65536

struct icl {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	unsigned char rbuf[ICL_RBUF];
	size_t rlen;
};

struct icl_tls {
	const char *ca;   /* trust anchors for the server certificate */
	const char *cert; /* client certificate (mutual TLS), or NULL */
	const char *key;
	int max_version;  /* 0: library default; e.g. TLS1_1_VERSION to offer only old versions */
};

/* Connect to 127.0.0.1:port; with tls, finish the handshake too. Returns 0,
 * or -1 with err (connect refused, handshake failed: OpenSSL's reason). */
int icl_connect(struct icl *c, int port, const struct icl_tls *tls, char *err, size_t errsz);
/* Write all n bytes (no framing). 0 or -1. */
int icl_write(struct icl *c, const void *p, size_t n);
/* Write one MLLP frame around msg. 0 or -1. */
int icl_send(struct icl *c, const char *msg, size_t len);
/* Read the next MLLP frame's payload into out (NUL-terminated). Returns its
 * length, -1 when the peer closed or reset, -2 after timeout_ms. */
int icl_read_ack(struct icl *c, char *out, size_t cap, int timeout_ms);
/* icl_send then icl_read_ack. */
int icl_exchange(struct icl *c, const char *msg, char *ack, size_t cap, int timeout_ms);
/* Wait until the peer closes (EOF or reset): 1, or 0 when still open after
 * timeout_ms. Frames that arrive meanwhile are discarded. */
int icl_wait_closed(struct icl *c, int timeout_ms);
/* Close (a TLS close_notify first when the session is up). */
void icl_close(struct icl *c);
/* Close with a TCP reset (SO_LINGER 0). */
void icl_reset(struct icl *c);
/* The server certificate's SHA-256 fingerprint (hex) into out[65]; "" if none. */
void icl_peer_fingerprint(struct icl *c, char out[65]);

/* MSA-1 of an ACK into out[3] ("" when there is none). */
void icl_msa1(const char *ack, char out[3]);
/* Non-zero when ack is a positive acknowledgement (AA/CA) whose MSA-2 is id. */
int icl_ack_ok(const char *ack, const char *id);

/* A small ADT^A01 (→ healthcare.patient.created) whose MSH-10 and patient id
 * (PID-3.1) are id: heap, NUL-terminated. */
char *icl_adt(const char *id);

/* A well-behaved sender on its own thread: one plain connection, one message
 * in flight, unique MSH-10s "<tag>-<n>", reconnecting after an error. */
struct icl_steady {
	pthread_t th;
	int port;
	char tag[96];
	atomic_int stop;
	atomic_long ok, bad;
	atomic_long max_us; /* slowest ACK */
	char first_error[256];
};
void icl_steady_start(struct icl_steady *s, int port, const char *tag);
void icl_steady_stop(struct icl_steady *s);
/* Wait until the sender got `more` further ACKs (1), or timeout_ms passed (0). */
int icl_steady_progress(struct icl_steady *s, long more, int timeout_ms);

/* A field of /proc/PID/status in kB (VmRSS, VmHWM, ...), or -1. */
long icl_proc_kb(pid_t pid, const char *field);
/* The file as a heap string (NUL-terminated); "" when unreadable. */
char *icl_slurp(const char *path);
/* Occurrences of needle in the file. */
int icl_count_in_file(const char *path, const char *needle);
/* Milliseconds on the monotonic clock. */
long long icl_now_ms(void);

#endif

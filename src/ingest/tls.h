/*
 * tls — server-side TLS for the MLLP listeners (OpenSSL).
 *
 * TLS 1.2 or newer only. Mutual TLS when a CA file is given with
 * verify_client: the client must present a certificate that chains to it,
 * and, if allowed_subjects is set, that one of its entries admits
 * (tls_subject.h: "CN=name; CN=a,O=b,C=c; SAN:DNS:name", entries split by ';').
 *
 * A context is reloaded on SIGHUP by building a new one: existing connections
 * keep the context they started with (OpenSSL reference-counts it); new
 * connections get the new one. A failed reload keeps the old context.
 */
#ifndef HB_TLS_H
#define HB_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

struct tls_conf {
	char cert[512];       /* PEM certificate chain */
	char key[512];        /* PEM private key */
	char ca[512];         /* PEM CA bundle for client certificates ("" = none) */
	int verify_client;    /* require and verify a client certificate */
	char ciphers[512];    /* TLS 1.2 cipher list ("" = OpenSSL's secure default) */
	char allowed_subjects[1024];
};

/* Build a server context. NULL with an OpenSSL reason in errstr. */
SSL_CTX *tls_ctx_new(const struct tls_conf *c, char *errstr, size_t errstr_size);

/* After the handshake: check the client's subject against allowed_subjects
 * (always passes when the list is empty). Returns 0, or -1 with the reason
 * (the subject is an identity of a system, not a patient: it may be logged). */
int tls_check_peer(SSL *ssl, const struct tls_conf *c, char *errstr, size_t errstr_size);

/* The most recent OpenSSL error as text (clears the queue). */
void tls_last_error(char *buf, size_t size);

#endif

/* tls_client — OpenSSL set-up for outgoing TLS connections (MLLP over TLS).
 *
 * Only context and per-connection set-up and error wording live here; the
 * non-blocking handshake and I/O are driven by the connection's owner. TLS
 * 1.2 is the lowest version offered. No I/O, no logging.
 */
#ifndef HB_TLS_CLIENT_H
#define HB_TLS_CLIENT_H

#include <stddef.h>

#include <openssl/ssl.h>

struct tls_client_opts {
	const char *ca_file;    /* trust anchors; NULL: the system store */
	const char *cert_file;  /* client certificate chain (PEM) for mutual TLS */
	const char *key_file;   /* its private key (PEM); required with cert_file */
	int insecure;           /* do not verify the server at all */
};

/* A client context for these options. NULL with errstr (naming the file
 * and OpenSSL's reason) when a file cannot be loaded or the key does not
 * match the certificate. Free with SSL_CTX_free. */
SSL_CTX *tls_client_ctx_new(const struct tls_client_opts *o, char *errstr,
			    size_t errstr_size);

/* A connection object for fd: sends servername as SNI (unless it is an IP
 * literal, which SNI does not allow) and, unless the context is insecure,
 * checks that the server certificate names it (DNS or IP SAN). NULL with
 * errstr on failure. */
SSL *tls_client_ssl_new(SSL_CTX *ctx, int fd, const char *servername,
			char *errstr, size_t errstr_size);

/* Describe why an SSL call that returned ret failed, for an error message:
 * the certificate verification result when that failed, else OpenSSL's
 * reason from the error queue (which is emptied), else the system error.
 * Returns errstr. */
const char *tls_client_strerror(SSL *ssl, int ret, char *errstr,
				size_t errstr_size);

#endif

/* tls_client — see tls_client.h. */
#include "ingest/tls_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "util.h"

/* The oldest OpenSSL error left in the queue, as text; empties the queue. */
static const char *ssl_reason(char *buf, size_t size)
{
	unsigned long e = ERR_get_error(), next;

	if (!e)
		return NULL;
	/* The first error queued is the root cause; later ones are context. */
	while ((next = ERR_get_error()) != 0)
		(void)next;
	ERR_error_string_n(e, buf, size);
	return buf;
}

static int ctx_fail(SSL_CTX *ctx, char *errstr, size_t errstr_size,
		    const char *what, const char *file)
{
	char reason[256];
	const char *r = ssl_reason(reason, sizeof reason);
	util_seterr(errstr, errstr_size, "%s %s: %s", what, file, r ? r : "unknown error");
	SSL_CTX_free(ctx);
	return -1;
}

SSL_CTX *tls_client_ctx_new(const struct tls_client_opts *o, char *errstr,
			    size_t errstr_size)
{
	SSL_CTX *ctx;

	if ((o->cert_file == NULL) != (o->key_file == NULL)) {
		util_seterr(errstr, errstr_size, "a client certificate needs both --cert and --key");
		return NULL;
	}
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		util_seterr(errstr, errstr_size, "cannot create a TLS context");
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
		ctx_fail(ctx, errstr, errstr_size, "TLS", "minimum version");
		return NULL;
	}
	/* Writes may return early and be retried from a buffer that moved. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* Peers that close without close_notify after their last reply are
	 * common; a missing reply is detected by the caller anyway. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	if (o->insecure) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (o->ca_file) {
			if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1) {
				ctx_fail(ctx, errstr, errstr_size, "CA file", o->ca_file);
				return NULL;
			}
		} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
			ctx_fail(ctx, errstr, errstr_size, "system", "trust store");
			return NULL;
		}
	}
	if (o->cert_file) {
		if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1) {
			ctx_fail(ctx, errstr, errstr_size, "certificate", o->cert_file);
			return NULL;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1) {
			ctx_fail(ctx, errstr, errstr_size, "key", o->key_file);
			return NULL;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			ctx_fail(ctx, errstr, errstr_size, "key does not match certificate",
				 o->cert_file);
			return NULL;
		}
	}
	return ctx;
}

static int is_ip_literal(const char *s)
{
	unsigned char addr[16];
	return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

SSL *tls_client_ssl_new(SSL_CTX *ctx, int fd, const char *servername,
			char *errstr, size_t errstr_size)
{
	char reason[256];
	const char *r;
	SSL *ssl;
	int ip = servername && is_ip_literal(servername), ok = 1;

	ERR_clear_error();
	ssl = SSL_new(ctx);
	if (!ssl)
		goto fail;
	if (SSL_set_fd(ssl, fd) != 1)
		goto fail;
	if (servername && !ip && SSL_set_tlsext_host_name(ssl, servername) != 1)
		goto fail;
	if (servername && SSL_CTX_get_verify_mode(ctx) != SSL_VERIFY_NONE) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
		if (ip) {
			ok = X509_VERIFY_PARAM_set1_ip_asc(vp, servername) == 1;
		} else {
			X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			ok = SSL_set1_host(ssl, servername) == 1;
		}
		if (!ok)
			goto fail;
	}
	return ssl;
fail:
	r = ssl_reason(reason, sizeof reason);
	util_seterr(errstr, errstr_size, "TLS set-up for '%s' failed: %s",
		    servername ? servername : "", r ? r : "unknown error");
	SSL_free(ssl);
	return NULL;
}

const char *tls_client_strerror(SSL *ssl, int ret, char *errstr,
				size_t errstr_size)
{
	char reason[256];
	const char *r;
	int e = SSL_get_error(ssl, ret);
	long v = SSL_get_verify_result(ssl);

	if (v != X509_V_OK) {
		ERR_clear_error();
		util_seterr(errstr, errstr_size, "certificate verification failed: %s",
			    X509_verify_cert_error_string(v));
		return errstr;
	}
	r = ssl_reason(reason, sizeof reason);
	if (r)
		util_seterr(errstr, errstr_size, "%s", r);
	else if (e == SSL_ERROR_SYSCALL && errno)
		util_seterr(errstr, errstr_size, "%s", strerror(errno));
	else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN)
		util_seterr(errstr, errstr_size, "connection closed by peer");
	else
		util_seterr(errstr, errstr_size, "TLS error %d", e);
	return errstr;
}

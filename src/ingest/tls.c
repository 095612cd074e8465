#include "ingest/tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ingest/tls_subject.h"
#include "util.h"

void tls_last_error(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();
	if (!e) {
		snprintf(buf, size, "unknown TLS error");
		return;
	}
	ERR_error_string_n(e, buf, size);
	ERR_clear_error();
}

SSL_CTX *tls_ctx_new(const struct tls_conf *c, char *errstr, size_t errstr_size)
{
	char e[256];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		tls_last_error(e, sizeof e);
		util_seterr(errstr, errstr_size, "TLS context: %s", e);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
	if (c->ciphers[0] && SSL_CTX_set_cipher_list(ctx, c->ciphers) != 1) {
		util_seterr(errstr, errstr_size, "TLS ciphers '%s': none usable", c->ciphers);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
		tls_last_error(e, sizeof e);
		util_seterr(errstr, errstr_size, "TLS certificate %s: %s", c->cert, e);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_last_error(e, sizeof e);
		util_seterr(errstr, errstr_size, "TLS key %s: %s", c->key, e);
		goto fail;
	}
	if (c->ca[0]) {
		STACK_OF(X509_NAME) *names;
		if (SSL_CTX_load_verify_locations(ctx, c->ca, NULL) != 1) {
			tls_last_error(e, sizeof e);
			util_seterr(errstr, errstr_size, "TLS CA %s: %s", c->ca, e);
			goto fail;
		}
		names = SSL_load_client_CA_file(c->ca);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
	}
	if (c->verify_client) {
		if (!c->ca[0]) {
			util_seterr(errstr, errstr_size, "TLS: verify_client needs a CA file");
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int tls_check_peer(SSL *ssl, const struct tls_conf *c, char *errstr, size_t errstr_size)
{
	X509 *cert;
	char subject[512] = "";
	BIO *b;
	int ok;

	if (!c->allowed_subjects[0])
		return 0;
	cert = SSL_get1_peer_certificate(ssl);
	if (!cert)
		return util_seterr(errstr, errstr_size, "no client certificate");
	b = BIO_new(BIO_s_mem());
	if (b) {
		int n;
		X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
		n = BIO_read(b, subject, (int)sizeof subject - 1);
		subject[n > 0 ? n : 0] = '\0';
		BIO_free(b);
	}
	ok = tls_subjects_match(c->allowed_subjects, cert);
	X509_free(cert);
	if (!ok)
		return util_seterr(errstr, errstr_size, "client certificate subject '%s' is not allowed",
				   subject);
	return 0;
}

/* hl7bridge send over TLS and mutual TLS against the test peer: verified
 * and unverified servers, wrong CA, wrong name, client certificates from the
 * right and from an unrelated CA; and tls_client's own errors. The
 * certificates come from tests/fixtures/tls/gen.sh at test time. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "ingest/tls_client.h"
#include "send_harness.h"

TestSuite(send_tls, .init = send_setup, .fini = send_teardown, .timeout = 60);

static SSL_CTX *server_ctx(int mutual)
{
	SSL_CTX *ctx = mllp_peer_tls_ctx(tls_file("server.crt"), tls_file("server.key"),
					 mutual ? tls_file("ca.crt") : NULL);
	cr_assert_not_null(ctx);
	return ctx;
}

Test(send_tls, tls_verified)
{
	SSL_CTX *ctx = server_ctx(0);
	struct mllp_peer_opts po = { .tls = ctx };
	struct mllp_peer *p;
	struct mllp_peer_stats st;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("tls.hl7", "T-1", "T-2", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, "--tls", "--ca", tls_file("ca.crt"), hp, f, NULL);
	mllp_peer_stop(p, &st);
	SSL_CTX_free(ctx);
	cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert_eq(count_lines(r.out, "MSA-1=AA"), 2, "%s", r.out);
	cr_assert_eq(st.frames, 2);
	run_free(&r);
}

Test(send_tls, tls_localhost_name_and_pipelined_load)
{
	SSL_CTX *ctx = server_ctx(0);
	struct mllp_peer_opts po = { .tls = ctx };
	struct mllp_peer *p;
	struct mllp_peer_stats st;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("tls.hl7", "T-1", "T-2", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	snprintf(hp, sizeof hp, "localhost:%d", mllp_peer_port(p));
	run_send(&r, "--ca", tls_file("ca.crt"), "--connections", "4", "--pipeline", "8",
		 "--repeat", "40", "--quiet", hp, f, NULL);
	mllp_peer_stop(p, &st);
	SSL_CTX_free(ctx);
	cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.err, "AA/CA 80,"), "%s", r.err);
	cr_assert_eq(st.frames, 80);
	run_free(&r);
}

Test(send_tls, tls_wrong_ca_fails_handshake)
{
	SSL_CTX *ctx = server_ctx(0);
	struct mllp_peer_opts po = { .tls = ctx };
	struct mllp_peer *p;
	struct mllp_peer_stats st;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("tls.hl7", "T-1", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, "--tls", "--ca", tls_file("other-ca.crt"), hp, f, NULL);
	mllp_peer_stop(p, &st);
	SSL_CTX_free(ctx);
	cr_assert_eq(r.status, 2, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.err, "TLS handshake with 127.0.0.1:"), "%s", r.err);
	cr_assert(strstr(r.err, "certificate verification failed"), "%s", r.err);
	cr_assert_eq(st.frames, 0);
	run_free(&r);
}

Test(send_tls, tls_wrong_servername_fails)
{
	SSL_CTX *ctx = server_ctx(0);
	struct mllp_peer_opts po = { .tls = ctx };
	struct mllp_peer *p;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("tls.hl7", "T-1", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, "--ca", tls_file("ca.crt"), "--servername", "mllp.example.org", hp, f, NULL);
	mllp_peer_stop(p, NULL);
	SSL_CTX_free(ctx);
	cr_assert_eq(r.status, 2, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.err, "mismatch"), "%s", r.err);
	run_free(&r);
}

Test(send_tls, tls_insecure_skips_verification_and_says_so)
{
	SSL_CTX *ctx = server_ctx(0);
	struct mllp_peer_opts po = { .tls = ctx };
	struct mllp_peer *p;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("tls.hl7", "T-1", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, "--tls", "--insecure", "--ca", tls_file("other-ca.crt"), hp, f, NULL);
	mllp_peer_stop(p, NULL);
	SSL_CTX_free(ctx);
	cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.err, "NOT verified"), "%s", r.err);
	run_free(&r);
}

Test(send_tls, mutual_tls)
{
	SSL_CTX *ctx = server_ctx(1);
	struct mllp_peer_opts po = { .tls = ctx };
	struct mllp_peer *p;
	struct mllp_peer_stats st;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("mtls.hl7", "M-1", "M-2", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, "--tls", "--ca", tls_file("ca.crt"), "--cert", tls_file("client.crt"), "--key",
		 tls_file("client.key"), hp, f, NULL);
	mllp_peer_stop(p, &st);
	cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert_eq(st.frames, 2);
	cr_assert_eq(st.handshakes_failed, 0);
	run_free(&r);

	/* No client certificate: the server refuses. */
	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, "--tls", "--ca", tls_file("ca.crt"), hp, f, NULL);
	mllp_peer_stop(p, &st);
	cr_assert_eq(r.status, 2, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.err, "TLS"), "%s", r.err);
	cr_assert_eq(st.frames, 0);
	run_free(&r);

	/* A client certificate from an unrelated CA: refused too. */
	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, "--tls", "--ca", tls_file("ca.crt"), "--cert", tls_file("other-client.crt"),
		 "--key", tls_file("other-client.key"), hp, f, NULL);
	mllp_peer_stop(p, &st);
	SSL_CTX_free(ctx);
	cr_assert_eq(r.status, 2, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.err, "unknown ca"), "%s", r.err);
	cr_assert_eq(st.frames, 0);
	cr_assert_eq(st.handshakes_failed, 1);
	run_free(&r);
}

/* Plain MLLP to a TLS port: the server drops the connection. */
Test(send_tls, plain_to_tls_port_exits_2_with_a_hint)
{
	SSL_CTX *ctx = server_ctx(0);
	struct mllp_peer_opts po = { .tls = ctx };
	struct mllp_peer *p;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("plain.hl7", "PL-1", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, hp, f, NULL);
	mllp_peer_stop(p, NULL);
	SSL_CTX_free(ctx);
	cr_assert_eq(r.status, 2, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.err, "add --tls"), "%s", r.err);
	run_free(&r);
}

Test(send_tls, tls_key_mismatch_is_a_usage_error)
{
	struct run_out r;
	const char *f = msg_file("k.hl7", "K-1", NULL);

	run_send(&r, "--tls", "--cert", tls_file("client.crt"), "--key", tls_file("server.key"),
		 "127.0.0.1:9", f, NULL);
	cr_assert_eq(r.status, 2, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.err, "server.key") && strstr(r.err, "mismatch"), "%s", r.err);
	run_free(&r);
}

Test(send_tls, tls_ctx_errors_name_the_file)
{
	char err[512];
	struct tls_client_opts o = { .ca_file = "/nonexistent/ca.crt" };

	cr_assert_null(tls_client_ctx_new(&o, err, sizeof err));
	cr_assert(strstr(err, "CA file /nonexistent/ca.crt"), "%s", err);
	o = (struct tls_client_opts){ .cert_file = tls_file("client.crt") };
	cr_assert_null(tls_client_ctx_new(&o, err, sizeof err));
	cr_assert(strstr(err, "--cert and --key"), "%s", err);
	o = (struct tls_client_opts){ .cert_file = tls_file("client.crt"),
				      .key_file = tls_file("client.key") };
	SSL_CTX *ctx = tls_client_ctx_new(&o, err, sizeof err);
	cr_assert_not_null(ctx, "%s", err);
	SSL_CTX_free(ctx);
}

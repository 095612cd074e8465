/*
 * The MLLP listeners of a running daemon against the real broker, under the
 * clients a hospital network really has: TLS and mutual TLS with the wrong
 * CA, no certificate, an old protocol version or a subject that is not
 * allowed; certificates reloaded on SIGHUP (all or nothing) under an open
 * connection; pipelined frames, 1-byte writes, junk between frames, resets
 * mid-frame, oversize frames, slow senders, many idle connections and a full
 * listener. Throughout each test a well-behaved sender on another connection
 * must keep getting its positive ACKs: one bad client never costs the others.
 *
 * One daemon per test, with four listeners: plain, tls, mtls (client
 * certificates from the test CA, one subject allowed) and a plain one limited
 * to three connections.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "iclient.h"
#include "itest.h"

enum { PLAIN, TLS, MTLS, LIMITED, NLSN };

/* Memory bounds hold for normal builds; AddressSanitizer's redzones and its
 * quarantine of freed blocks make RSS meaningless (the numbers are still
 * logged). The daemon is built like this test. */
#if defined(__SANITIZE_ADDRESS__)
#define HB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HB_ASAN 1
#endif
#endif
#ifdef HB_ASAN
#define rss_assert_lt(a, b, ...) ((void)0)
#else
#define rss_assert_lt(a, b, ...) cr_assert_lt(a, b, __VA_ARGS__)
#endif

/* Slow-sender limits the tests configure (and wait for). */
#define FRAME_TIMEOUT_S 3
#define MAX_FRAME (64 * 1024)
#define LIMITED_CONNS 3
#define HANDSHAKE_TIMEOUT_S 2

struct world {
	char inst[128], conf[512], log[512], tlsdir[512];
	pid_t pid;
	int port[NLSN];
	struct icl_steady steady;
	char files[16][700]; /* paths handed out by tf() */
	int nfiles;
};

static const char *builddir(void)
{
	const char *b = getenv("HB_BUILDDIR");
	cr_assert_not_null(b, "HB_BUILDDIR is not set");
	return b;
}

/* The TLS test set in dir (made by gen.sh unless it is fresh). */
static void tls_set(char *dir, size_t cap, const char *name)
{
	char cmd[1600];
	snprintf(dir, cap, "%s/tests/tmp/%s", builddir(), name);
	snprintf(cmd, sizeof cmd, "sh '%s/tests/fixtures/tls/gen.sh' '%s'", getenv("HB_SRCDIR"), dir);
	cr_assert_eq(system(cmd), 0, "gen.sh failed");
}

/* The TLS listener serves server_crt/server_key (paths). */
static void world_start(struct world *w, const char *server_crt, const char *server_key)
{
	const char *src = getenv("HB_SRCDIR");
	char state[128];
	FILE *f;

	memset(w, 0, sizeof *w);
	signal(SIGPIPE, SIG_IGN); /* SSL_write to a connection the daemon closed */
	tls_set(w->tlsdir, sizeof w->tlsdir, "tls");
	char dcrt[600], dkey[600];
	snprintf(dcrt, sizeof dcrt, "%s/server.crt", w->tlsdir);
	snprintf(dkey, sizeof dkey, "%s/server.key", w->tlsdir);
	if (!server_crt) { /* the test set's */
		server_crt = dcrt;
		server_key = dkey;
	}
	itest_unique_name(w->inst, sizeof w->inst, "itest-listen");
	itest_unique_name(state, sizeof state, "itest.lstate");
	snprintf(w->conf, sizeof w->conf, "/tmp/%s.conf", w->inst);
	snprintf(w->log, sizeof w->log, "/tmp/%s.log", w->inst);
	f = fopen(w->conf, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"[http]\nbind = 127.0.0.1:0\n[bridge]\ninstance = %s\nmappings = %s/mappings\nschemas = %s/conf/schemas\n"
		"log.level = debug\n"
		"[kafka]\nbootstrap.servers = %s\n"
		"[topics]\npartitions = 2\nstate = %s\nstate.partitions = 1\n"
		"[publisher]\nlanes = 2\nlinger = 1ms\n"
		"[listener plain]\nbind = 127.0.0.1:0\nframe.timeout = %ds\nmax.frame.size = %d\n"
		"max.connections.per.peer = 0\n" /* 200 idle connections from loopback */
		"[listener tls]\nbind = 127.0.0.1:0\ntls = on\ntls.cert = %s\ntls.key = %s\n"
		"handshake.timeout = %ds\nmax.connections.per.peer = 0\n"
		"[listener mtls]\nbind = 127.0.0.1:0\ntls = on\ntls.cert = %s/server.crt\n"
		"tls.key = %s/server.key\ntls.ca = %s/ca.crt\ntls.verify.client = on\n"
		"tls.allowed.subjects = hl7bridge test client\n"
		"[listener limited]\nbind = 127.0.0.1:0\nmax.connections = %d\n",
		w->inst, src, src, itest_bootstrap(), state, FRAME_TIMEOUT_S, MAX_FRAME,
		server_crt, server_key, HANDSHAKE_TIMEOUT_S, w->tlsdir, w->tlsdir,
		w->tlsdir, LIMITED_CONNS);
	fclose(f);
	w->pid = itest_daemon_start_ports(w->conf, w->log, w->port, NLSN);
	for (int i = 0; i < NLSN; i++)
		cr_assert_gt(w->port[i], 0, "listener %d has no port", i);
	icl_steady_start(&w->steady, w->port[PLAIN], w->inst);
	cr_assert(icl_steady_progress(&w->steady, 3, 30000), "the steady sender got no ACKs (see %s)",
		  w->log);
}

/* The steady sender kept going: two more ACKs, and no failure so far. */
static void steady_fine(struct world *w, const char *during)
{
	cr_assert(icl_steady_progress(&w->steady, 2, 20000),
		  "the well-behaved sender stalled during %s (see %s)", during, w->log);
	cr_assert_eq(atomic_load(&w->steady.bad), 0,
		     "the well-behaved sender had %ld failures during %s: %s (see %s)",
		     atomic_load(&w->steady.bad), during, w->steady.first_error, w->log);
}

static void world_stop(struct world *w)
{
	icl_steady_stop(&w->steady);
	cr_assert_eq(atomic_load(&w->steady.bad), 0, "well-behaved sender: %s", w->steady.first_error);
	cr_log_info("%s: the well-behaved sender got %ld ACKs, slowest %.1f ms", w->inst,
		    atomic_load(&w->steady.ok), atomic_load(&w->steady.max_us) / 1000.0);
	cr_assert_eq(itest_daemon_stop(w->pid), 0, "SIGTERM did not exit 0 (see %s)", w->log);
	unlink(w->conf);
	unlink(w->log); /* kept when a test fails */
}

/* A file of the TLS test set (valid as long as w). */
static const char *tf(struct world *w, const char *name)
{
	cr_assert_lt(w->nfiles, 16);
	char *p = w->files[w->nfiles++];
	snprintf(p, sizeof w->files[0], "%s/%s", w->tlsdir, name);
	return p;
}

/* One message with a unique id over c: must be a positive ACK. */
static void exchange_ok(struct world *w, struct icl *c, const char *what)
{
	static int n;
	char id[160], ack[4096];
	snprintf(id, sizeof id, "%s-x%d", w->inst, ++n);
	char *msg = icl_adt(id);
	int r = icl_exchange(c, msg, ack, sizeof ack, 20000);
	free(msg);
	cr_assert_gt(r, 0, "%s: no ACK (%d; see %s)", what, r, w->log);
	cr_assert(icl_ack_ok(ack, id), "%s: not AA for %s: %s", what, id, ack);
}

/* The listener refuses this client: the handshake fails, or the connection
 * is closed before any ACK (TLS 1.3 clients learn that the server rejected
 * their certificate only after their side of the handshake is done). */
static void refused(struct world *w, int port, const struct icl_tls *t, const char *what)
{
	struct icl c;
	char err[512], ack[4096];
	if (icl_connect(&c, port, t, err, sizeof err) != 0) {
		cr_log_info("%s: refused at the handshake: %s", what, err);
		return;
	}
	char *msg = icl_adt("REFUSED-1");
	int r = icl_exchange(&c, msg, ack, sizeof ack, 10000);
	free(msg);
	icl_close(&c);
	cr_assert_eq(r, -1, "%s: expected the connection to be closed, got %s", what,
		     r > 0 ? ack : "a timeout");
}

Test(listen, tls_and_mutual_tls, .timeout = 180)
{
	struct world w;
	struct icl c;
	char err[512];

	world_start(&w, NULL, NULL);
	struct icl_tls server_only = { tf(&w, "ca.crt"), NULL, NULL, 0 };
	struct icl_tls mutual = { tf(&w, "ca.crt"), tf(&w, "client.crt"), tf(&w, "client.key"), 0 };
	struct icl_tls other_cn = { tf(&w, "ca.crt"), tf(&w, "client2.crt"), tf(&w, "client2.key"), 0 };
	struct icl_tls wrong_ca = { tf(&w, "ca.crt"), tf(&w, "other-client.crt"),
				    tf(&w, "other-client.key"), 0 };
	struct icl_tls tls12 = { tf(&w, "ca.crt"), NULL, NULL, TLS1_2_VERSION };
	struct icl_tls tls11 = { tf(&w, "ca.crt"), NULL, NULL, TLS1_1_VERSION };

	/* TLS: works; TLS 1.2 works; TLS 1.1 is refused by the server (the
	 * 1.2 control proves the client could have talked). */
	cr_assert_eq(icl_connect(&c, w.port[TLS], &server_only, err, sizeof err), 0, "%s", err);
	exchange_ok(&w, &c, "TLS");
	icl_close(&c);
	cr_assert_eq(icl_connect(&c, w.port[TLS], &tls12, err, sizeof err), 0, "TLS 1.2: %s", err);
	exchange_ok(&w, &c, "TLS 1.2");
	icl_close(&c);
	cr_assert_neq(icl_connect(&c, w.port[TLS], &tls11, err, sizeof err), 0,
		      "a TLS 1.1 client completed a handshake");
	cr_assert(strstr(err, "protocol") || strstr(err, "version"),
		  "TLS 1.1 refused for another reason: %s", err);
	steady_fine(&w, "TLS 1.1");

	/* Plain MLLP to the TLS port: no ACK. */
	cr_assert_eq(icl_connect(&c, w.port[TLS], NULL, err, sizeof err), 0);
	{
		char ack[256];
		char *msg = icl_adt("PLAIN-TO-TLS");
		int r = icl_exchange(&c, msg, ack, sizeof ack, 10000);
		free(msg);
		cr_assert_lt(r, 0, "plain MLLP on the TLS port got a reply");
	}
	icl_close(&c);

	/* A client that starts a handshake and never finishes it is cut at
	 * handshake.timeout. */
	cr_assert_eq(icl_connect(&c, w.port[TLS], NULL, err, sizeof err), 0);
	{
		long long t0 = icl_now_ms();
		cr_assert_eq(icl_write(&c, "\x16\x03\x01\x00\x80\x01", 6), 0); /* a ClientHello, begun */
		cr_assert_eq(icl_wait_closed(&c, (HANDSHAKE_TIMEOUT_S + 5) * 1000), 1,
			     "an unfinished handshake was not cut");
		long long took = icl_now_ms() - t0;
		cr_assert(took >= HANDSHAKE_TIMEOUT_S * 1000 - 200, "cut after %lld ms, before the timeout",
			  took);
	}
	icl_close(&c);
	steady_fine(&w, "an unfinished handshake");

	/* Mutual TLS: the allowed client works; no certificate, a certificate
	 * from another CA, and a certificate of the right CA with a subject
	 * that is not allowed are all refused. */
	cr_assert_eq(icl_connect(&c, w.port[MTLS], &mutual, err, sizeof err), 0, "%s", err);
	exchange_ok(&w, &c, "mutual TLS");
	refused(&w, w.port[MTLS], &server_only, "no client certificate");
	steady_fine(&w, "no client certificate");
	refused(&w, w.port[MTLS], &wrong_ca, "client certificate from another CA");
	steady_fine(&w, "wrong CA");
	refused(&w, w.port[MTLS], &other_cn, "client certificate with another CN");
	steady_fine(&w, "another CN");
	/* The good mutual-TLS connection is still fine after all that. */
	exchange_ok(&w, &c, "mutual TLS after the refusals");
	icl_close(&c);

	cr_assert_geq(icl_count_in_file(w.log, "subject 'CN=hl7bridge second test client"), 1,
		      "the refused subject is not named in the log (see %s)", w.log);
	cr_assert_geq(icl_count_in_file(w.log, "TLS handshake failed"), 3,
		      "expected handshake failures in the log (see %s)", w.log);
	world_stop(&w);
}

static void copy_file(const char *from, const char *to)
{
	char *s = icl_slurp(from);
	FILE *f = fopen(to, "w");
	cr_assert_not_null(f, "%s", to);
	fputs(s, f);
	fclose(f);
	free(s);
}

static void sighup_and_wait(struct world *w, const char *needle)
{
	int before = icl_count_in_file(w->log, needle);
	kill(w->pid, SIGHUP);
	for (int i = 0; i < 200 && icl_count_in_file(w->log, needle) == before; i++)
		usleep(50 * 1000);
	cr_assert_gt(icl_count_in_file(w->log, needle), before, "no '%s' after SIGHUP (see %s)", needle,
		     w->log);
}

Test(listen, sighup_reloads_certificates_all_or_nothing, .timeout = 180)
{
	struct world w;
	struct icl c1, c2, c3;
	char a[700], b[700], live[700], crt[800], key[800], bundle[800], err[512];
	char fa[65], fb[65], f3[65];

	/* Two unrelated certificate sets: the listener starts with A's server
	 * certificate (copied to a directory of its own) and is switched to B's. */
	tls_set(a, sizeof a, "tls");
	tls_set(b, sizeof b, "tls-b");
	snprintf(live, sizeof live, "%s/tests/tmp/tls-live-%ld", builddir(), (long)getpid());
	mkdir(live, 0700);
	snprintf(crt, sizeof crt, "%s/server.crt", live);
	snprintf(key, sizeof key, "%s/server.key", live);
	snprintf(bundle, sizeof bundle, "%s/cas.crt", live);
	{
		char p[800];
		snprintf(p, sizeof p, "%s/server.crt", a);
		copy_file(p, crt);
		snprintf(p, sizeof p, "%s/server.key", a);
		copy_file(p, key);
		char *ca = NULL;
		snprintf(p, sizeof p, "%s/ca.crt", a);
		ca = icl_slurp(p);
		FILE *f = fopen(bundle, "w");
		fputs(ca, f);
		free(ca);
		snprintf(p, sizeof p, "%s/ca.crt", b);
		ca = icl_slurp(p);
		fputs(ca, f);
		free(ca);
		fclose(f);
	}
	world_start(&w, crt, key);
	struct icl_tls t = { bundle, NULL, NULL, 0 };

	cr_assert_eq(icl_connect(&c1, w.port[TLS], &t, err, sizeof err), 0, "%s", err);
	icl_peer_fingerprint(&c1, fa);
	exchange_ok(&w, &c1, "before the reload");

	/* Switch to B: new connections get B; the open one goes on. */
	{
		char p[800];
		snprintf(p, sizeof p, "%s/server.crt", b);
		copy_file(p, crt);
		snprintf(p, sizeof p, "%s/server.key", b);
		copy_file(p, key);
	}
	sighup_and_wait(&w, "reloaded:");
	exchange_ok(&w, &c1, "the connection opened before the reload");
	cr_assert_eq(icl_connect(&c2, w.port[TLS], &t, err, sizeof err), 0, "%s", err);
	icl_peer_fingerprint(&c2, fb);
	cr_assert_str_neq(fa, fb, "new connections still get the old certificate");
	exchange_ok(&w, &c2, "after the reload");
	icl_close(&c2);
	steady_fine(&w, "the reload");

	/* A broken certificate file: the reload is refused as a whole, and new
	 * connections keep getting B. */
	FILE *f = fopen(crt, "w");
	fputs("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n", f);
	fclose(f);
	sighup_and_wait(&w, "reload refused");
	cr_assert_eq(icl_connect(&c3, w.port[TLS], &t, err, sizeof err), 0,
		     "after a refused reload: %s", err);
	icl_peer_fingerprint(&c3, f3);
	cr_assert_str_eq(f3, fb, "a refused reload changed the certificate");
	exchange_ok(&w, &c3, "after a refused reload");
	icl_close(&c3);
	exchange_ok(&w, &c1, "the first connection after both reloads");
	icl_close(&c1);
	steady_fine(&w, "the refused reload");
	world_stop(&w);
	unlink(crt);
	unlink(key);
	unlink(bundle);
	rmdir(live);
}

/* n framed messages with ids <prefix>-<i>, back to back, in one buffer. */
static char *frames(const char *prefix, int n, size_t *len)
{
	size_t cap = (size_t)n * 400 + 1, used = 0;
	char *buf = malloc(cap);
	for (int i = 0; i < n; i++) {
		char id[256];
		snprintf(id, sizeof id, "%s-%d", prefix, i);
		char *m = icl_adt(id);
		used += (size_t)snprintf(buf + used, cap - used, "\x0b%s\x1c\r", m);
		free(m);
	}
	*len = used;
	return buf;
}

static void expect_acks(struct world *w, struct icl *c, const char *prefix, int n, const char *what)
{
	char ack[4096], id[256];
	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof id, "%s-%d", prefix, i);
		int r = icl_read_ack(c, ack, sizeof ack, 20000);
		cr_assert_gt(r, 0, "%s: no ACK for frame %d of %d (see %s)", what, i, n, w->log);
		cr_assert(icl_ack_ok(ack, id), "%s: ACK %d out of order or negative: %s", what, i, ack);
	}
}

Test(listen, framing_pipelining_resets_oversize, .timeout = 180)
{
	struct world w;
	struct icl c;
	char err[512], prefix[200];
	size_t len;

	world_start(&w, NULL, NULL);

	/* Pipelining: 100 frames in one write (more than max.pending = 64, so
	 * the connection pauses and resumes); ACKs in order. */
	snprintf(prefix, sizeof prefix, "%s-pipe", w.inst);
	char *buf = frames(prefix, 100, &len);
	cr_assert_eq(icl_connect(&c, w.port[PLAIN], NULL, err, sizeof err), 0, "%s", err);
	cr_assert_eq(icl_write(&c, buf, len), 0);
	expect_acks(&w, &c, prefix, 100, "pipelined");
	free(buf);
	steady_fine(&w, "pipelining");

	/* The same over TLS. */
	{
		struct icl t;
		struct icl_tls tt = { tf(&w, "ca.crt"), NULL, NULL, 0 };
		snprintf(prefix, sizeof prefix, "%s-tpipe", w.inst);
		buf = frames(prefix, 100, &len);
		cr_assert_eq(icl_connect(&t, w.port[TLS], &tt, err, sizeof err), 0, "%s", err);
		cr_assert_eq(icl_write(&t, buf, len), 0);
		expect_acks(&w, &t, prefix, 100, "pipelined over TLS");
		free(buf);
		icl_close(&t);
	}

	/* 1-byte writes. */
	snprintf(prefix, sizeof prefix, "%s-byte", w.inst);
	buf = frames(prefix, 2, &len);
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(icl_write(&c, buf + i, 1), 0);
	expect_acks(&w, &c, prefix, 2, "1-byte writes");
	free(buf);

	/* Junk outside frames is skipped; the frames around it are answered. */
	snprintf(prefix, sizeof prefix, "%s-junk", w.inst);
	buf = frames(prefix, 3, &len);
	{
		size_t one = len / 3;
		const char *junk = "GET / HTTP/1.1\r\n\r\n\n\n  noise \x1c\r";
		cr_assert_eq(icl_write(&c, junk, strlen(junk)), 0);
		cr_assert_eq(icl_write(&c, buf, one), 0);
		cr_assert_eq(icl_write(&c, "\r\n\r\n", 4), 0);
		cr_assert_eq(icl_write(&c, buf + one, one), 0);
		cr_assert_eq(icl_write(&c, junk, strlen(junk)), 0);
		cr_assert_eq(icl_write(&c, buf + 2 * one, len - 2 * one), 0);
	}
	expect_acks(&w, &c, prefix, 3, "frames between junk");
	free(buf);
	steady_fine(&w, "junk bytes");

	/* Resets: mid-frame, and with complete frames still awaiting their
	 * commit. The daemon goes on; the connection that stayed gets its ACKs. */
	for (int k = 0; k < 5; k++) {
		struct icl r;
		snprintf(prefix, sizeof prefix, "%s-rst%d", w.inst, k);
		buf = frames(prefix, 4, &len);
		cr_assert_eq(icl_connect(&r, w.port[PLAIN], NULL, err, sizeof err), 0, "%s", err);
		cr_assert_eq(icl_write(&r, buf, k == 0 ? len / 8 : len - 20), 0);
		icl_reset(&r);
		free(buf);
	}
	{
		struct icl t;
		struct icl_tls tt = { tf(&w, "ca.crt"), NULL, NULL, 0 };
		buf = frames("TLS-RST", 2, &len);
		cr_assert_eq(icl_connect(&t, w.port[TLS], &tt, err, sizeof err), 0, "%s", err);
		cr_assert_eq(icl_write(&t, buf, len - 30), 0);
		icl_reset(&t);
		free(buf);
	}
	exchange_ok(&w, &c, "after resets");
	steady_fine(&w, "resets");

	/* An oversize frame: that connection is closed without an ACK. */
	{
		struct icl o;
		size_t big = MAX_FRAME + 4096;
		char *huge = malloc(big + 3);
		memset(huge, 'A', big + 3);
		huge[0] = 0x0b;
		memcpy(huge + 1, "MSH|^~\\&|", 9);
		huge[big + 1] = 0x1c;
		huge[big + 2] = '\r';
		cr_assert_eq(icl_connect(&o, w.port[PLAIN], NULL, err, sizeof err), 0, "%s", err);
		(void)icl_write(&o, huge, big + 3); /* may fail once the daemon closed */
		cr_assert_eq(icl_wait_closed(&o, 10000), 1, "an oversize frame did not close its connection");
		icl_close(&o);
		free(huge);
	}
	exchange_ok(&w, &c, "after an oversize frame elsewhere");
	steady_fine(&w, "an oversize frame");
	icl_close(&c);
	cr_assert_geq(icl_count_in_file(w.log, "frame larger than"), 1, "(see %s)", w.log);
	world_stop(&w);
}

Test(listen, slow_senders_and_idle_connections, .timeout = 180)
{
	enum { IDLE = 200 };
	struct world w;
	struct icl c, *idle = calloc(IDLE, sizeof *idle);
	char err[512], prefix[200];
	size_t len;

	world_start(&w, NULL, NULL);

	/* A healthy pipelined stream whose every write ends mid-frame, for
	 * longer than frame.timeout: each frame completes within 250 ms, so
	 * the stream must not be cut. */
	snprintf(prefix, sizeof prefix, "%s-stream", w.inst);
	int nstream = (FRAME_TIMEOUT_S * 1000 + 1500) / 250;
	char *buf = frames(prefix, nstream, &len);
	size_t step = len / (size_t)nstream, off = 0;
	cr_assert_eq(icl_connect(&c, w.port[PLAIN], NULL, err, sizeof err), 0, "%s", err);
	for (int i = 0; i < nstream; i++) {
		size_t upto = i + 1 == nstream ? len : (size_t)(i + 1) * step + step / 2;
		if (upto > len)
			upto = len;
		cr_assert_eq(icl_write(&c, buf + off, upto - off), 0, "stream write %d", i);
		off = upto;
		usleep(250 * 1000);
	}
	expect_acks(&w, &c, prefix, nstream, "a stream that always ends mid-frame");
	free(buf);

	/* Two slow frames in a row, each within frame.timeout, on one
	 * connection: neither is cut (the timeout is per frame). */
	snprintf(prefix, sizeof prefix, "%s-slow2", w.inst);
	buf = frames(prefix, 2, &len);
	for (int f = 0; f < 2; f++) {
		size_t half = len / 2, a = f * half, b = f ? len : half;
		long long t0 = icl_now_ms();
		cr_assert_eq(icl_write(&c, buf + a, 10), 0);
		usleep((FRAME_TIMEOUT_S * 1000 * 2 / 3) * 1000);
		cr_assert_eq(icl_write(&c, buf + a + 10, b - a - 10), 0, "slow frame %d was cut after %lld ms",
			     f, icl_now_ms() - t0);
	}
	expect_acks(&w, &c, prefix, 2, "two slow frames, each within frame.timeout");
	free(buf);

	/* Slowloris: a frame dribbling one byte a second is cut at frame.timeout. */
	{
		struct icl s;
		cr_assert_eq(icl_connect(&s, w.port[PLAIN], NULL, err, sizeof err), 0, "%s", err);
		char *m = icl_adt("SLOW-1");
		long long t0 = icl_now_ms();
		int closed = 0;
		(void)icl_write(&s, "\x0b", 1);
		for (size_t i = 0; i < strlen(m) && !closed; i++) {
			if (icl_write(&s, m + i, 1) != 0)
				closed = 1;
			else
				closed = icl_wait_closed(&s, 1000);
			if (icl_now_ms() - t0 > (FRAME_TIMEOUT_S + 5) * 1000)
				break;
		}
		long long took = icl_now_ms() - t0;
		free(m);
		icl_close(&s);
		cr_assert(closed, "a 1 byte/s sender was not cut after %lld ms", took);
		cr_assert(took >= FRAME_TIMEOUT_S * 1000 - 200 && took <= (FRAME_TIMEOUT_S + 3) * 1000,
			  "cut after %lld ms, frame.timeout is %d s", took, FRAME_TIMEOUT_S);
	}
	steady_fine(&w, "slowloris");

	/* Many idle connections cost bounded memory: half silent, half holding
	 * a partial frame (which frame.timeout then cuts). */
	long rss0 = icl_proc_kb(w.pid, "VmRSS");
	for (int i = 0; i < IDLE; i++) {
		cr_assert_eq(icl_connect(&idle[i], w.port[PLAIN], NULL, err, sizeof err), 0,
			     "idle connection %d: %s", i, err);
		if (i % 2) {
			char *m = icl_adt("IDLE-PARTIAL");
			(void)icl_write(&idle[i], "\x0b", 1);
			(void)icl_write(&idle[i], m, strlen(m) / 2);
			free(m);
		}
	}
	usleep(500 * 1000);
	long rss1 = icl_proc_kb(w.pid, "VmRSS");
	long per = (rss1 - rss0) * 1024 / IDLE;
	cr_log_info("%d idle connections: VmRSS %ld -> %ld kB (%ld bytes each)", IDLE, rss0, rss1, per);
	/* about 20 kB each is expected (a 16 kB read buffer and the partial
	 * frame); 40 kB each would mean a buffer per connection grew. */
	rss_assert_lt(rss1 - rss0, IDLE * 40, "%d idle connections cost %ld kB", IDLE, rss1 - rss0);
	exchange_ok(&w, &c, "next to 200 idle connections");
	steady_fine(&w, "200 idle connections");
	for (int i = 1; i < IDLE; i += 2)
		cr_assert_eq(icl_wait_closed(&idle[i], (FRAME_TIMEOUT_S + 5) * 1000), 1,
			     "idle connection %d with a partial frame was not cut", i);
	for (int i = 0; i < IDLE; i += 2) {
		char *m = icl_adt("IDLE-LATE");
		cr_assert_eq(icl_wait_closed(&idle[i], 0), 0, "silent connection %d was closed", i);
		free(m);
	}
	for (int i = 0; i < IDLE; i++)
		icl_close(&idle[i]);

	/* Idle TLS connections, handshake done, nothing sent. */
	{
		struct icl_tls tt = { tf(&w, "ca.crt"), NULL, NULL, 0 };
		long r0 = icl_proc_kb(w.pid, "VmRSS");
		for (int i = 0; i < IDLE; i++)
			cr_assert_eq(icl_connect(&idle[i], w.port[TLS], &tt, err, sizeof err), 0,
				     "idle TLS connection %d: %s", i, err);
		usleep(500 * 1000);
		long r1 = icl_proc_kb(w.pid, "VmRSS");
		cr_log_info("%d idle TLS connections: VmRSS %ld -> %ld kB (%ld bytes each)", IDLE, r0, r1,
			    (r1 - r0) * 1024 / IDLE);
		/* About 15 kB each with OpenSSL's buffers released between
		 * records, 31 kB without. */
		rss_assert_lt(r1 - r0, IDLE * 40, "%d idle TLS connections cost %ld kB", IDLE, r1 - r0);
		exchange_ok(&w, &c, "next to 200 idle TLS connections");
		for (int i = 0; i < IDLE; i++)
			icl_close(&idle[i]);
	}
	free(idle);
	exchange_ok(&w, &c, "after the idle connections");
	icl_close(&c);
	world_stop(&w);
}

Test(listen, max_connections, .timeout = 120)
{
	struct world w;
	struct icl c[LIMITED_CONNS], extra;
	char err[512];

	world_start(&w, NULL, NULL);
	for (int i = 0; i < LIMITED_CONNS; i++) {
		cr_assert_eq(icl_connect(&c[i], w.port[LIMITED], NULL, err, sizeof err), 0, "%s", err);
		exchange_ok(&w, &c[i], "within max.connections");
	}
	/* The kernel accepts the TCP connection; the daemon closes it at once. */
	cr_assert_eq(icl_connect(&extra, w.port[LIMITED], NULL, err, sizeof err), 0, "%s", err);
	cr_assert_eq(icl_wait_closed(&extra, 5000), 1, "the connection beyond max.connections stayed open");
	icl_close(&extra);
	for (int i = 0; i < LIMITED_CONNS; i++)
		exchange_ok(&w, &c[i], "the others, after a refusal");
	steady_fine(&w, "max.connections");
	/* A place frees up: a new connection is served again. */
	icl_close(&c[0]);
	usleep(300 * 1000);
	cr_assert_eq(icl_connect(&c[0], w.port[LIMITED], NULL, err, sizeof err), 0, "%s", err);
	exchange_ok(&w, &c[0], "after a place freed up");
	for (int i = 0; i < LIMITED_CONNS; i++)
		icl_close(&c[i]);
	cr_assert_geq(icl_count_in_file(w.log, "max_connections"), 1, "(see %s)", w.log);
	world_stop(&w);
}

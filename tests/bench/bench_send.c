/* bench_send — the MLLP client engine (mllp_client_run, what `hl7bridge send`
 * uses) against the test-only peer (tests/unit/mllp_peer.c) in the same
 * process, over loopback. Both share the machine, so the numbers are a
 * floor for the client, not a measure of any server. One line per setting:
 *   conns=<c> pipeline=<p> msgs=<n> secs=<s> msgs_per_s=<x> p50_ms=<a> p99_ms=<b> max_ms=<m>
 * Usage: bench_send [messages-per-setting, default 20000]
 *        bench_send serve [CERT KEY]  run only the peer (TLS with CERT/KEY), print
 *                                     its port, stop at end of input: a target
 *                                     for `hl7bridge send` by hand. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/mllp_client.h"
#include "obs/hist.h"
#include "../unit/mllp_peer.h"

struct tally {
	struct hist lat;
	uint64_t bad;
};

static void result_cb(void *opaque, const struct mllp_client_result *r)
{
	struct tally *t = opaque;
	if (r->outcome != MLLP_CLIENT_REPLY || r->reply_len < 20)
		t->bad++;
	else
		hist_record(&t->lat, (uint64_t)r->latency_us);
}

int main(int argc, char **argv)
{
	static const unsigned settings[][2] = {
		{ 1, 1 }, { 1, 16 }, { 16, 1 }, { 64, 4 }, { 256, 1 }, { 256, 8 },
	};
	static const char msg[] =
		"MSH|^~\\&|SENDER|FAC|BRIDGE|HUB|20261127010000||ADT^A01^ADT_A01|B-1|P|2.5.1\r"
		"EVN|A01|20261127010000\r"
		"PID|1||T0001^^^TEST^MR||SYNTHETIC^PERSON||19700101|U\r"
		"PV1|1|I|WARD^1^1\r";
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000;
	struct mllp_client_payload pl = { msg, sizeof msg - 1 };
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *peer;
	char port[16], err[256];
	int rc = 0;

	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && strcmp(argv[1], "serve") == 0) {
		if (argc > 3 && !(po.tls = mllp_peer_tls_ctx(argv[2], argv[3], NULL))) {
			fprintf(stderr, "bench_send: cannot load %s / %s\n", argv[2], argv[3]);
			return 1;
		}
		peer = mllp_peer_start(&po);
		if (!peer)
			return 1;
		printf("%d\n", mllp_peer_port(peer));
		fflush(stdout);
		while (getchar() != EOF)
			;
		mllp_peer_stop(peer, NULL);
		SSL_CTX_free(po.tls);
		return 0;
	}
	peer = mllp_peer_start(&po);
	if (!peer) {
		fprintf(stderr, "bench_send: cannot start the peer\n");
		return 1;
	}
	snprintf(port, sizeof port, "%d", mllp_peer_port(peer));
	for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
		struct mllp_client_opts o = {
			.host = "127.0.0.1", .port = port, .connections = settings[i][0],
			.pipeline = settings[i][1], .timeout = 30, .repeat = n,
		};
		struct mllp_client_stats st;
		struct tally *t = calloc(1, sizeof *t);
		hist_init(&t->lat);
		if (mllp_client_run(&o, &pl, 1, result_cb, t, &st, err, sizeof err) < 0 || t->bad) {
			fprintf(stderr, "bench_send: %s (%llu bad)\n", err, (unsigned long long)t->bad);
			rc = 1;
		}
		printf("conns=%u pipeline=%u msgs=%llu secs=%.3f msgs_per_s=%.0f p50_ms=%.3f "
		       "p99_ms=%.3f max_ms=%.3f\n",
		       o.connections, o.pipeline, (unsigned long long)st.replies, st.elapsed,
		       st.elapsed > 0 ? (double)st.replies / st.elapsed : 0.0,
		       (double)hist_quantile(&t->lat, 0.5) / 1000.0,
		       (double)hist_quantile(&t->lat, 0.99) / 1000.0,
		       (double)hist_max_us(&t->lat) / 1000.0);
		fflush(stdout);
		free(t);
	}
	mllp_peer_stop(peer, NULL);
	return rc;
}

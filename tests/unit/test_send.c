/* hl7bridge send over plain TCP: the real binary against the test peer
 * (tests/unit/mllp_peer.c); ACK codes, mismatches, timeouts, pipelining,
 * batches, MLLP-framed files, several connections, pacing, exit codes; and
 * the client engine called directly. TLS: test_send_tls.c. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ingest/mllp.h"
#include "ingest/mllp_client.h"
#include "send_harness.h"
#include "util.h"

TestSuite(send, .init = send_setup, .fini = send_teardown, .timeout = 60);

Test(send, plain_three_messages_lf_file)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p;
	struct mllp_peer_stats st;
	struct run_out r;
	char hp[64], file[600];

	snprintf(file, sizeof file, "%s/tests/fixtures/send/three_lf.hl7", send_srcdir());
	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, hp, file, NULL);
	mllp_peer_stop(p, &st);
	cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert_eq(count_lines(r.out, NULL), 3, "%s", r.out);
	cr_assert(strstr(r.out, "three_lf.hl7#1 MSH-10=LF-1 -> MSA-1=AA MSA-2=LF-1 "), "%s", r.out);
	cr_assert(strstr(r.out, "three_lf.hl7#3 MSH-10=LF-3 -> MSA-1=AA MSA-2=LF-3 "), "%s", r.out);
	cr_assert_eq(count_lines(r.out, " ms"), 3);
	/* Ids and codes only: nothing from PID may appear. */
	cr_assert_null(strstr(r.out, "SYNTHETIC"));
	cr_assert_null(strstr(r.err, "SYNTHETIC"));
	cr_assert(strstr(r.err, "sent 3, AA/CA 3, AE/AR 0, errors 0"), "%s", r.err);
	cr_assert(strstr(r.err, "p99.9"), "%s", r.err);
	cr_assert_eq(st.frames, 3);
	cr_assert_eq(st.connections, 1);
	cr_assert_eq(st.max_waiting, 1, "pipeline 1 must send one at a time");
	run_free(&r);
}

Test(send, ae_prints_err_and_exits_1)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("ae.hl7", "OK-1", "ERR-2", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, hp, f, NULL);
	mllp_peer_stop(p, NULL);
	cr_assert_eq(r.status, 1, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.out, "ae.hl7#1 MSH-10=OK-1 -> MSA-1=AA MSA-2=OK-1 "), "%s", r.out);
	cr_assert(strstr(r.out, "ae.hl7#2 MSH-10=ERR-2 -> MSA-1=AE MSA-2=ERR-2 ERR-3=207 "
				"test peer rejects ERR ids "), "%s", r.out);
	cr_assert(strstr(r.err, "AA/CA 1, AE/AR 1, errors 0"), "%s", r.err);
	run_free(&r);
}

Test(send, batch_file_crlf)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p;
	struct mllp_peer_stats st;
	struct run_out r;
	char hp[64], file[600];

	snprintf(file, sizeof file, "%s/tests/fixtures/send/batch_crlf.hl7", send_srcdir());
	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, hp, file, NULL);
	mllp_peer_stop(p, &st);
	cr_assert_eq(r.status, 1, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert_eq(st.frames, 2, "the envelope is not sent, only its messages");
	cr_assert(strstr(r.out, "batch_crlf.hl7#1 MSH-10=BAT-1 -> MSA-1=AA MSA-2=BAT-1 "), "%s",
		  r.out);
	cr_assert(strstr(r.out, "batch_crlf.hl7#2 MSH-10=ERR-BAT-2 -> MSA-1=AE"), "%s", r.out);
	run_free(&r);
}

Test(send, mllp_framed_file)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p;
	struct mllp_peer_stats st;
	struct run_out r;
	char hp[64], path[600], m[512];
	unsigned char frame[600];
	FILE *f;

	snprintf(path, sizeof path, "%s/dump.mllp", send_tmp);
	f = fopen(path, "wb");
	cr_assert_not_null(f);
	const char *ids[] = { "FR-1", "FR-2", "FR-3" };
	for (size_t i = 0; i < 3; i++) {
		msg(m, sizeof m, ids[i]);
		size_t n = mllp_encode(m, strlen(m), frame, sizeof frame);
		fwrite(frame, 1, n, f);
		fputc('\n', f); /* dumps often have a newline between frames */
	}
	fclose(f);
	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, hp, path, NULL);
	mllp_peer_stop(p, &st);
	cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert_eq(st.frames, 3);
	cr_assert(strstr(r.out, "dump.mllp#3 MSH-10=FR-3 -> MSA-1=AA MSA-2=FR-3 "), "%s", r.out);
	run_free(&r);
}

Test(send, msa2_mismatch_is_an_error)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("mis.hl7", "MIS-1", "OK-2", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, hp, f, NULL);
	mllp_peer_stop(p, NULL);
	cr_assert_eq(r.status, 1, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.out, "mis.hl7#1 MSH-10=MIS-1 -> ERROR MSA-2 does not match: "
				"MSA-1=AA MSA-2=SOMEONE-ELSE "), "%s", r.out);
	cr_assert(strstr(r.out, "mis.hl7#2 MSH-10=OK-2 -> MSA-1=AA MSA-2=OK-2 "), "%s", r.out);
	cr_assert(strstr(r.err, "mismatches 1"), "%s", r.err);
	run_free(&r);
}

Test(send, garbled_reply)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("garb.hl7", "GARB-1", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, hp, f, NULL);
	mllp_peer_stop(p, NULL);
	cr_assert_eq(r.status, 1, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.out, "garb.hl7#1 MSH-10=GARB-1 -> ERROR reply is not an HL7 message"),
		  "%s", r.out);
	run_free(&r);
}

Test(send, ack_timeout_then_continues_on_a_new_connection)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p;
	struct mllp_peer_stats st;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("slow.hl7", "SLOW-1", "OK-2", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	int64_t t0 = util_mono_ms();
	run_send(&r, "--timeout", "0.3", hp, f, NULL);
	int64_t took = util_mono_ms() - t0;
	mllp_peer_stop(p, &st);
	cr_assert_eq(r.status, 1, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.out, "slow.hl7#1 MSH-10=SLOW-1 -> ERROR no reply within 0.3 s"), "%s",
		  r.out);
	cr_assert(strstr(r.out, "slow.hl7#2 MSH-10=OK-2 -> MSA-1=AA"), "%s", r.out);
	cr_assert(strstr(r.err, "timeouts 1"), "%s", r.err);
	cr_assert_eq(st.connections, 2);
	cr_assert_geq(took, 300);
	run_free(&r);
}

Test(send, oversize_reply)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("huge.hl7", "HUGE-1", "OK-2", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, hp, f, NULL);
	mllp_peer_stop(p, NULL);
	cr_assert_eq(r.status, 1, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.out, "huge.hl7#1 MSH-10=HUGE-1 -> ERROR MLLP frame larger than the "
				"configured maximum"), "%s", r.out);
	cr_assert(strstr(r.out, "huge.hl7#2 MSH-10=OK-2 -> MSA-1=AA"), "%s", r.out);
	run_free(&r);
}

/* A listener whose accept queue is full drops SYNs: connect hangs. */
Test(send, connect_timeout_exits_2)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof sa;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("ct.hl7", "CT-1", NULL);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), filler = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	cr_assert_eq(listen(lfd, 0), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	cr_assert_eq(connect(filler, (struct sockaddr *)&sa, sizeof sa), 0);
	snprintf(hp, sizeof hp, "127.0.0.1:%d", ntohs(sa.sin_port));
	run_send(&r, "--timeout", "0.3", hp, f, NULL);
	close(filler);
	close(lfd);
	cr_assert_eq(r.status, 2, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.err, "timed out after 0.3 s"), "%s", r.err);
	run_free(&r);
}

Test(send, sigint_stops_with_a_summary)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("int.hl7", "SLOW-1", "OK-2", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	pid_t pid = start_send(hp, f, NULL);
	usleep(300 * 1000);
	kill(pid, SIGINT);
	wait_send(&r, pid);
	mllp_peer_stop(p, NULL);
	cr_assert_eq(r.status, 2, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.err, "interrupted by signal"), "%s", r.err);
	cr_assert(strstr(r.out, "int.hl7#1 MSH-10=SLOW-1 -> ERROR not answered"), "%s", r.out);
	cr_assert(strstr(r.err, "not sent 1"), "%s", r.err);
	run_free(&r);
}

Test(send, peer_closing_fails_the_message)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("close.hl7", "CLOSE-1", "OK-2", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, hp, f, NULL);
	mllp_peer_stop(p, NULL);
	cr_assert_eq(r.status, 1, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.out, "close.hl7#1 MSH-10=CLOSE-1 -> ERROR connection "), "%s", r.out);
	cr_assert(strstr(r.out, "close.hl7#2 MSH-10=OK-2 -> MSA-1=AA"), "%s", r.out);
	run_free(&r);
}

/* The peer answers only when 4 frames wait: only a pipelining client gets
 * its ACKs; one that waits for each ACK times out. */
Test(send, pipelining)
{
	struct mllp_peer_opts po = { .hold = 4 };
	struct mllp_peer *p;
	struct mllp_peer_stats st;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("pipe.hl7", "P-1", "P-2", "P-3", "P-4", "P-5", "P-6", "P-7",
				 "P-8", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, "--pipeline", "4", "--timeout", "5", hp, f, NULL);
	mllp_peer_stop(p, &st);
	cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert_eq(count_lines(r.out, "MSA-1=AA"), 8, "%s", r.out);
	cr_assert_eq(st.max_waiting, 4);
	run_free(&r);

	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, "--timeout", "0.2", hp, f, NULL);
	mllp_peer_stop(p, NULL);
	cr_assert_neq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert_eq(count_lines(r.out, "MSA-1=AA"), 0, "%s", r.out);
	run_free(&r);
}

Test(send, connections_repeat_quiet)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p;
	struct mllp_peer_stats st;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("load.hl7", "L-1", "L-2", "L-3", "L-4", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, "--connections", "8", "--pipeline", "2", "--repeat", "50", "--quiet", hp, f,
		 NULL);
	mllp_peer_stop(p, &st);
	cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert_str_empty(r.out);
	cr_assert(strstr(r.err, "sent 200, AA/CA 200, AE/AR 0, errors 0"), "%s", r.err);
	cr_assert_eq(st.frames, 200);
	cr_assert_eq(st.connections, 8);
	run_free(&r);
}

Test(send, every_connection_dropped_exits_2)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("drop.hl7", "CLOSE-1", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, hp, f, NULL);
	mllp_peer_stop(p, NULL);
	cr_assert_eq(r.status, 2, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.out, "drop.hl7#1 MSH-10=CLOSE-1 -> ERROR connection "), "%s", r.out);
	cr_assert(strstr(r.err, "no reply on any connection (if this is a TLS port, add --tls)"),
		  "%s", r.err);
	run_free(&r);
}

Test(send, repeat_labels_rounds)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("rounds.hl7", "R-1", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	run_send(&r, "--repeat", "2", hp, f, NULL);
	mllp_peer_stop(p, NULL);
	cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.out, "rounds.hl7#1@1 MSH-10=R-1 -> MSA-1=AA"), "%s", r.out);
	cr_assert(strstr(r.out, "rounds.hl7#1@2 MSH-10=R-1 -> MSA-1=AA"), "%s", r.out);
	run_free(&r);
}

Test(send, rate_paces_sends)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("rate.hl7", "RT-1", NULL);

	start_peer(&p, hp, sizeof hp, &po);
	int64_t t0 = util_mono_ms();
	/* 11 messages at 20/s: the last may go 500 ms after the first. */
	run_send(&r, "--rate", "20", "--repeat", "11", "--connections", "2", "--quiet", hp, f,
		 NULL);
	int64_t took = util_mono_ms() - t0;
	mllp_peer_stop(p, NULL);
	cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert_geq(took, 450, "took %lld ms", (long long)took);
	run_free(&r);
}

Test(send, connection_refused_exits_2)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p;
	struct run_out r;
	char hp[64];
	const char *f = msg_file("x.hl7", "X-1", NULL);

	/* A port that was just free: nothing listens on it now. */
	start_peer(&p, hp, sizeof hp, &po);
	mllp_peer_stop(p, NULL);
	run_send(&r, hp, f, NULL);
	cr_assert_eq(r.status, 2, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.err, "Connection refused"), "%s", r.err);
	cr_assert(strstr(r.err, "not sent 1"), "%s", r.err);
	run_free(&r);
}

Test(send, usage_errors_exit_2)
{
	struct run_out r;
	const char *f = msg_file("u.hl7", "U-1", NULL);
	char missing[600], empty[600];

	run_send(&r, NULL);
	cr_assert_eq(r.status, 2);
	run_free(&r);
	run_send(&r, "nocolon", f, NULL);
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "not HOST:PORT"), "%s", r.err);
	run_free(&r);
	snprintf(missing, sizeof missing, "%s/missing.hl7", send_tmp);
	run_send(&r, "127.0.0.1:9", missing, NULL);
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "missing.hl7"), "%s", r.err);
	run_free(&r);
	snprintf(empty, sizeof empty, "%s/empty.hl7", send_tmp);
	fclose(fopen(empty, "w"));
	run_send(&r, "127.0.0.1:9", empty, NULL);
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "no messages"), "%s", r.err);
	run_free(&r);
	run_send(&r, "--pipeline", "0", "127.0.0.1:9", f, NULL);
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "--pipeline"), "%s", r.err);
	run_free(&r);
	run_send(&r, "--help", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "usage: hl7bridge send"), "%s", r.out);
	run_free(&r);
}

/* ---- the client engine directly ------------------------------------------ */

struct seen {
	unsigned count[3][4];   /* [msg][round] */
	unsigned replies;
};

static void seen_cb(void *opaque, const struct mllp_client_result *r)
{
	struct seen *s = opaque;
	cr_assert_lt(r->msg, 3);
	cr_assert_lt(r->round, 4);
	cr_assert_eq(r->outcome, MLLP_CLIENT_REPLY, "%s", r->why ? r->why : "");
	cr_assert_not_null(r->reply);
	cr_assert_geq(r->latency_us, 0);
	s->count[r->msg][r->round]++;
	s->replies++;
}

/* Every (message, round) job gets exactly one outcome, over several
 * pipelined connections. */
Test(send, client_engine_one_outcome_per_job)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p = mllp_peer_start(&po);
	struct mllp_client_payload pl[3];
	struct mllp_client_stats st;
	struct seen s = { 0 };
	char m[3][512], port[16], err[256];
	const char *ids[] = { "E-1", "E-2", "E-3" };

	cr_assert_not_null(p);
	snprintf(port, sizeof port, "%d", mllp_peer_port(p));
	for (int i = 0; i < 3; i++) {
		msg(m[i], sizeof m[i], ids[i]);
		pl[i].ptr = m[i];
		pl[i].len = strlen(m[i]);
	}
	struct mllp_client_opts o = { .host = "127.0.0.1", .port = port, .connections = 3,
				      .pipeline = 5, .timeout = 10, .repeat = 4 };
	cr_assert_eq(mllp_client_run(&o, pl, 3, seen_cb, &s, &st, err, sizeof err), 0, "%s", err);
	mllp_peer_stop(p, NULL);
	cr_assert_eq(s.replies, 12);
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 4; k++)
			cr_assert_eq(s.count[i][k], 1, "msg %d round %d: %u", i, k, s.count[i][k]);
	cr_assert_eq(st.sent, 12);
	cr_assert_eq(st.replies, 12);
	cr_assert_eq(st.not_sent, 0);
	o.pipeline = 0;
	cr_assert_eq(mllp_client_run(&o, pl, 3, seen_cb, &s, &st, err, sizeof err), -1);
	cr_assert(strstr(err, "pipeline"), "%s", err);
}

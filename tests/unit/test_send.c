/* hl7bridge send: the real binary against the test peer (tests/unit/mllp_peer.c)
 * over plain TCP, TLS and mutual TLS; ACK codes, mismatches, timeouts,
 * pipelining, batches, MLLP-framed files, several connections, exit codes. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ingest/mllp.h"
#include "ingest/mllp_client.h"
#include "ingest/tls_client.h"
#include "mllp_peer.h"
#include "util.h"

#define MAX_ARGS 40

struct run_out {
	int status;             /* exit code, or 128 + signal */
	char *out, *err;        /* heap, NUL-terminated */
};

static char tmp[512];

static const char *builddir(void)
{
	const char *b = getenv("HB_BUILDDIR");
	return b && *b ? b : ".";
}

static const char *srcdir(void)
{
	const char *s = getenv("HB_SRCDIR");
	return s && *s ? s : HB_SRCDIR;
}

static void setup(void)
{
	char cmd[600];
	/* The peer writes to sockets the client may have closed. */
	signal(SIGPIPE, SIG_IGN);
	snprintf(cmd, sizeof cmd, "mkdir -p '%s/tests/tmp'", builddir());
	cr_assert_eq(system(cmd), 0);
	snprintf(tmp, sizeof tmp, "%s/tests/tmp/send.XXXXXX", builddir());
	cr_assert_not_null(mkdtemp(tmp), "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
}

TestSuite(send, .init = setup, .fini = teardown, .timeout = 60);

/* The TLS test set, generated once per build tree (gen.sh is idempotent). */
static const char *tls_file(const char *name)
{
	static char dir[512];
	static char path[8][600];
	static int next;
	if (!dir[0]) {
		char cmd[1200];
		snprintf(dir, sizeof dir, "%s/tests/tmp/tls", builddir());
		snprintf(cmd, sizeof cmd, "sh '%s/tests/fixtures/tls/gen.sh' '%s'", srcdir(), dir);
		cr_assert_eq(system(cmd), 0, "gen.sh failed");
	}
	char *p = path[next++ % 8];
	snprintf(p, sizeof path[0], "%s/%s", dir, name);
	return p;
}

static char *slurp(const char *path)
{
	size_t len;
	char err[256];
	char *s = util_read_file(path, 64 << 20, &len, err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	return s;
}

/* Start hl7bridge send with the arguments; stdout and stderr go to files
 * in the test's directory. */
static pid_t spawn_send(const char *first, va_list ap)
{
	const char *argv[MAX_ARGS];
	char bin[600], outp[600], errp[600];
	int n = 0;
	pid_t pid;

	snprintf(bin, sizeof bin, "%s/hl7bridge", builddir());
	snprintf(outp, sizeof outp, "%s/stdout", tmp);
	snprintf(errp, sizeof errp, "%s/stderr", tmp);
	argv[n++] = bin;
	argv[n++] = "send";
	for (const char *a = first; a && n < MAX_ARGS - 1; a = va_arg(ap, const char *))
		argv[n++] = a;
	argv[n] = NULL;
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(o, 1);
		dup2(e, 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static void wait_send(struct run_out *r, pid_t pid)
{
	char outp[600], errp[600];
	int st;

	snprintf(outp, sizeof outp, "%s/stdout", tmp);
	snprintf(errp, sizeof errp, "%s/stderr", tmp);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r->out = slurp(outp);
	r->err = slurp(errp);
	/* In a sanitizer build, a report must fail the test whatever the
	 * expected exit code. */
	cr_assert_null(strstr(r->err, "Sanitizer"), "%s", r->err);
	cr_assert_null(strstr(r->err, "runtime error"), "%s", r->err);
}

/* Run hl7bridge send with the arguments (NULL-terminated). */
static void run_send(struct run_out *r, const char *first, ...)
{
	va_list ap;
	va_start(ap, first);
	pid_t pid = spawn_send(first, ap);
	va_end(ap);
	wait_send(r, pid);
}

/* The same, without waiting. */
static pid_t start_send(const char *first, ...)
{
	va_list ap;
	va_start(ap, first);
	pid_t pid = spawn_send(first, ap);
	va_end(ap);
	return pid;
}

static void run_free(struct run_out *r)
{
	free(r->out);
	free(r->err);
}

static size_t count_lines(const char *s, const char *needle)
{
	size_t n = 0;
	for (const char *l = s; *l; ) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		char line[2048];
		snprintf(line, sizeof line, "%.*s", (int)len, l);
		if (!needle || strstr(line, needle))
			n++;
		l += len + (e ? 1 : 0);
	}
	return n;
}

static void msg(char *out, size_t size, const char *id)
{
	snprintf(out, size,
		 "MSH|^~\\&|SENDER|FAC|BRIDGE|HUB|20261127010000||ADT^A01^ADT_A01|%s|P|2.5.1\r"
		 "PID|1||T-%s^^^TEST^MR||SYNTHETIC^PERSON\r", id, id);
}

/* A file of concatenated messages with these MSH-10s (NULL-terminated). */
static const char *msg_file(const char *name, ...)
{
	static char path[4][600];
	static int next;
	char *p = path[next++ % 4], m[512];
	va_list ap;
	const char *id;
	FILE *f;

	snprintf(p, sizeof path[0], "%s/%s", tmp, name);
	f = fopen(p, "wb");
	cr_assert_not_null(f);
	va_start(ap, name);
	while ((id = va_arg(ap, const char *)) != NULL) {
		msg(m, sizeof m, id);
		fputs(m, f);
	}
	va_end(ap);
	fclose(f);
	return p;
}

static void start_peer(struct mllp_peer **p, char *hostport, size_t size,
		       const struct mllp_peer_opts *o)
{
	*p = mllp_peer_start(o);
	cr_assert_not_null(*p);
	snprintf(hostport, size, "127.0.0.1:%d", mllp_peer_port(*p));
}

Test(send, plain_three_messages_lf_file)
{
	struct mllp_peer_opts po = { 0 };
	struct mllp_peer *p;
	struct mllp_peer_stats st;
	struct run_out r;
	char hp[64], file[600];

	snprintf(file, sizeof file, "%s/tests/fixtures/send/three_lf.hl7", srcdir());
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

	snprintf(file, sizeof file, "%s/tests/fixtures/send/batch_crlf.hl7", srcdir());
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

	snprintf(path, sizeof path, "%s/dump.mllp", tmp);
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
	snprintf(missing, sizeof missing, "%s/missing.hl7", tmp);
	run_send(&r, "127.0.0.1:9", missing, NULL);
	cr_assert_eq(r.status, 2);
	cr_assert(strstr(r.err, "missing.hl7"), "%s", r.err);
	run_free(&r);
	snprintf(empty, sizeof empty, "%s/empty.hl7", tmp);
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

/* ---- TLS ------------------------------------------------------------------ */

static SSL_CTX *server_ctx(int mutual)
{
	SSL_CTX *ctx = mllp_peer_tls_ctx(tls_file("server.crt"), tls_file("server.key"),
					 mutual ? tls_file("ca.crt") : NULL);
	cr_assert_not_null(ctx);
	return ctx;
}

Test(send, tls_verified)
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

Test(send, tls_localhost_name_and_pipelined_load)
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

Test(send, tls_wrong_ca_fails_handshake)
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

Test(send, tls_wrong_servername_fails)
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

Test(send, tls_insecure_skips_verification_and_says_so)
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

Test(send, mutual_tls)
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
Test(send, plain_to_tls_port_exits_2_with_a_hint)
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

Test(send, tls_key_mismatch_is_a_usage_error)
{
	struct run_out r;
	const char *f = msg_file("k.hl7", "K-1", NULL);

	run_send(&r, "--tls", "--cert", tls_file("client.crt"), "--key", tls_file("server.key"),
		 "127.0.0.1:9", f, NULL);
	cr_assert_eq(r.status, 2, "exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.err, "server.key") && strstr(r.err, "mismatch"), "%s", r.err);
	run_free(&r);
}

/* ---- the modules directly --------------------------------------------------- */

Test(send, tls_ctx_errors_name_the_file)
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

/*
 * Issue 14 (hardening), the operator items, against the real daemon and broker:
 *
 *  - user = (privilege drop, item 7): a TLS key only root can read is refused at
 *    start with what to change; once readable, the daemon starts as `nobody`,
 *    its drop folders belong to that user and the drop takes files, SIGHUP
 *    reloads, and a drop folder it cannot use makes /readyz 503 with the reason.
 *  - slow and idle HTTP clients (item 4): /healthz answers within a second while
 *    other addresses trickle bodies and hold idle connections.
 *
 * The privilege-drop test needs root (it is skipped otherwise).
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "util.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);
	if (f) {
		size_t n = fread(buf, 1, (1 << 20) - 1, f);
		buf[n] = '\0';
		fclose(f);
	}
	return buf;
}

/* `hl7bridge run -c conf` that must exit on its own: its exit status. */
static int run_to_exit(const char *conf, const char *log)
{
	char bin[1024];
	int st;
	pid_t pid;
	snprintf(bin, sizeof bin, "%s/hl7bridge", getenv("HB_BUILDDIR"));
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		freopen(log, "a", stderr);
		freopen(log, "a", stdout);
		execl(bin, bin, "run", "-c", conf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 600; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		usleep(100 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	cr_assert_fail("hl7bridge run did not exit within 60 s; see %s", log);
	return -1;
}

static long readyz(int port, char **body)
{
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", port);
	return itest_http("GET", url, NULL, body);
}

/* Poll /readyz until it answers want (up to secs); the last body. */
static char *readyz_until(int port, long want, int secs)
{
	char *body = NULL;
	for (int i = 0; i < secs * 10; i++) {
		free(body);
		if (readyz(port, &body) == want)
			return body;
		usleep(100 * 1000);
	}
	cr_assert_fail("/readyz never answered %ld: %s", want, body ? body : "");
	return body;
}

static int count_lines_with(const char *path, const char *needle)
{
	char *text = slurp(path);
	int n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p++)
		n++;
	free(text);
	return n;
}

Test(hostile_ops, user_drop_keeps_drops_and_reloads_working, .timeout = 240)
{
	char dir[128], tls[200], drop[200], conf[256], log[256], inst[96], state[96], dlq[96];
	char cmd[1024], path[512], *body, *text;
	const char *src = getenv("HB_SRCDIR");
	struct stat st;
	int port, http_port;
	pid_t pid;
	FILE *f;

	if (geteuid() != 0)
		cr_skip_test("the privilege drop needs root");
	itest_unique_name(inst, sizeof inst, "itest-hops");
	itest_unique_name(state, sizeof state, "itest.hops.state");
	itest_unique_name(dlq, sizeof dlq, "itest.hops.dlq");
	snprintf(dir, sizeof dir, "/tmp/%s", inst);
	cr_assert_eq(mkdir(dir, 0755), 0);
	chmod(dir, 0755);
	snprintf(tls, sizeof tls, "%s/tls", dir);
	snprintf(drop, sizeof drop, "%s/drop", dir);
	snprintf(conf, sizeof conf, "%s/hl7bridge.conf", dir);
	snprintf(log, sizeof log, "%s/log", dir);
	snprintf(cmd, sizeof cmd, "sh '%s/tests/fixtures/tls/gen.sh' '%s'", src, tls);
	cr_assert_eq(system(cmd), 0, "gen.sh failed");
	snprintf(path, sizeof path, "%s/server.key", tls);
	cr_assert_eq(chmod(path, 0600), 0); /* root's own key, as operators leave it */
	f = fopen(conf, "w");
	fprintf(f,
		"[bridge]\ninstance = %s\nmappings = %s/mappings\nschemas = %s/conf/schemas\n"
		"user = nobody\n"
		"[kafka]\nbootstrap.servers = %s\n"
		"[topics]\npartitions = 1\ndeadletter = %s\nstate = %s\n"
		"[publisher]\nlanes = 1\nlinger = 2ms\n"
		"[http]\nbind = 127.0.0.1:0\n"
		"[listener tls]\nbind = 127.0.0.1:0\ntls = on\ntls.cert = %s/server.crt\n"
		"tls.key = %s/server.key\n"
		"[drop main]\npath = %s\nquiet.period = 200ms\nrescan = 250ms\n",
		inst, src, src, itest_bootstrap(), dlq, state, tls, tls, drop);
	fclose(f);

	/* 1. A key only root can read: refused at start, saying what to do. */
	cr_assert_eq(run_to_exit(conf, log), 1, "started with an unreadable key; see %s", log);
	text = slurp(log);
	cr_assert(strstr(text, "as user nobody, listener tls") && strstr(text, "readable by it"),
		  "%s", text);
	free(text);

	/* 2. Readable by the user's group: starts, and the drop is the user's. */
	cr_assert_eq(chown(path, 0, 65534), 0);
	cr_assert_eq(chmod(path, 0640), 0);
	pid = itest_daemon_start_http(conf, log, &port, &http_port);
	body = readyz_until(http_port, 200, 30);
	free(body);
	for (int i = 0; i < 4; i++) {
		static const char *sub[] = { "inbox", "done", "error", "work" };
		snprintf(path, sizeof path, "%s/%s", drop, sub[i]);
		cr_assert_eq(stat(path, &st), 0, "%s", path);
		cr_assert_eq(st.st_uid, 65534u, "%s belongs to uid %u", path, (unsigned)st.st_uid);
	}
	{
		size_t len;
		char *msg = itest_sample("samples/hl7v2/adt_a01.hl7", &len);
		snprintf(path, sizeof path, "%s/inbox/.a.part", drop);
		f = fopen(path, "wb");
		fwrite(msg, 1, len, f);
		fputc('\r', f); /* itest_sample strips it; a file drop needs every segment ended */
		fclose(f);
		free(msg);
		char to[512];
		snprintf(to, sizeof to, "%s/inbox/a.hl7", drop);
		cr_assert_eq(rename(path, to), 0);
		snprintf(path, sizeof path, "%s/done/a.hl7", drop);
		for (int i = 0; i < 300 && access(path, F_OK) != 0; i++)
			usleep(100 * 1000);
		cr_assert_eq(access(path, F_OK), 0, "the drop did not take the file; see %s", log);
	}

	/* 3. SIGHUP reloads mappings and the TLS key as the user. */
	kill(pid, SIGHUP);
	for (int i = 0; i < 100 && count_lines_with(log, "reloaded:") == 0; i++)
		usleep(100 * 1000);
	cr_assert_eq(count_lines_with(log, "reload refused"), 0, "see %s", log);
	cr_assert_eq(count_lines_with(log, "reloaded:"), 1, "no reload; see %s", log);

	/* 4. An inbox the user cannot read: not ready, with the reason. */
	snprintf(path, sizeof path, "%s/inbox", drop);
	cr_assert_eq(chmod(path, 0), 0);
	body = readyz_until(http_port, 503, 10);
	cr_assert(strstr(body, "drop main cannot read and write") && strstr(body, "inbox"), "%s",
		  body);
	free(body);
	cr_assert_eq(chmod(path, 0750), 0);
	body = readyz_until(http_port, 200, 10);
	free(body);
	cr_assert_eq(itest_daemon_stop(pid), 0);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

/* ---- slow and idle HTTP clients ------------------------------------------------ */

static int connect_from(const char *srcaddr, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET }, b = { .sin_family = AF_INET };
	struct pollfd p;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	inet_pton(AF_INET, srcaddr, &a.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &b.sin_addr);
	b.sin_port = htons((unsigned short)port);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    (connect(fd, (struct sockaddr *)&b, sizeof b) != 0 && errno != EINPROGRESS)) {
		close(fd);
		return -1;
	}
	p.fd = fd;
	p.events = POLLOUT;
	if (poll(&p, 1, 1000) != 1) {
		close(fd);
		return -1;
	}
	return fd;
}

Test(hostile_ops, healthz_answers_under_slow_and_idle_clients, .timeout = 120)
{
	static int slow[64], idle[1500];
	static const char head[] = "POST /api/playground HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				   "Content-Length: 100000\r\n\r\n";
	char conf[256], log[256], inst[96], state[96], dlq[96], url[128], *body;
	const char *src = getenv("HB_SRCDIR");
	int port, http_port, nslow = 0, nidle = 0;
	double worst = 0;
	pid_t pid;
	FILE *f;

	itest_unique_name(inst, sizeof inst, "itest-hops-http");
	itest_unique_name(state, sizeof state, "itest.hops.state");
	itest_unique_name(dlq, sizeof dlq, "itest.hops.dlq");
	snprintf(conf, sizeof conf, "/tmp/%s.conf", inst);
	snprintf(log, sizeof log, "/tmp/%s.log", inst);
	f = fopen(conf, "w");
	fprintf(f,
		"[bridge]\ninstance = %s\nmappings = %s/mappings\nschemas = %s/conf/schemas\n"
		"[kafka]\nbootstrap.servers = %s\n"
		"[topics]\npartitions = 1\ndeadletter = %s\nstate = %s\n"
		"[publisher]\nlanes = 1\n"
		"[http]\nbind = 127.0.0.1:0\nplayground = on\nrequest.timeout = 3s\n"
		"[listener plain]\nbind = 127.0.0.1:0\n",
		inst, src, src, itest_bootstrap(), dlq, state);
	fclose(f);
	pid = itest_daemon_start_http(conf, log, &port, &http_port);

	for (int i = 0; i < 64; i++) {
		int fd = connect_from("127.0.0.2", http_port);
		if (fd >= 0 && send(fd, head, sizeof head - 1, MSG_NOSIGNAL) > 0)
			slow[nslow++] = fd;
	}
	for (int i = 0; i < 1500; i++) {
		int fd = connect_from("127.0.0.3", http_port);
		if (fd >= 0)
			idle[nidle++] = fd;
	}
	snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", http_port);
	for (int round = 0; round < 20; round++) { /* 6 s: past request.timeout */
		for (int i = 0; i < nslow; i++)
			send(slow[i], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		int64_t t0 = util_mono_ms();
		long st = itest_http("GET", url, NULL, &body);
		double ms = (double)(util_mono_ms() - t0);
		free(body);
		cr_assert_eq(st, 200, "round %d: /healthz %ld", round, st);
		if (ms > worst)
			worst = ms;
		usleep(300 * 1000);
	}
	cr_assert_lt(worst, 1000.0, "slowest /healthz under %d slow and %d idle clients: %.0f ms",
		     nslow, nidle, worst);
	cr_log_info("slowest /healthz under %d slow and %d idle clients: %.0f ms", nslow, nidle,
		    worst);
	/* the refusals are not a log flood */
	cr_assert_lt(count_lines_with(log, "warn  http:"), 40, "see %s", log);
	for (int i = 0; i < nslow; i++)
		close(slow[i]);
	for (int i = 0; i < nidle; i++)
		close(idle[i]);
	cr_assert_eq(itest_daemon_stop(pid), 0);
	unlink(conf);
	unlink(log);
}

/* ---- tls.allowed.subjects with a multi-RDN certificate (item 10) ------------------ */

#include "iclient.h"

Test(hostile_ops, allowed_subjects_admit_a_multi_rdn_certificate, .timeout = 120)
{
	char dir[128], tls[200], conf[256], log[256], inst[96], state[96], dlq[96], cmd[1024];
	char ca[256], cc[256], ck[256], c2c[256], c2k[256], err[512], ack[4096];
	const char *src = getenv("HB_SRCDIR");
	int port;
	pid_t pid;
	FILE *f;
	static struct icl c;

	signal(SIGPIPE, SIG_IGN); /* SSL_write to the connection the daemon refused and closed */
	itest_unique_name(inst, sizeof inst, "itest-hops-tls");
	itest_unique_name(state, sizeof state, "itest.hops.state");
	itest_unique_name(dlq, sizeof dlq, "itest.hops.dlq");
	snprintf(dir, sizeof dir, "/tmp/%s", inst);
	cr_assert_eq(mkdir(dir, 0755), 0);
	snprintf(tls, sizeof tls, "%s/tls", dir);
	snprintf(conf, sizeof conf, "%s/hl7bridge.conf", dir);
	snprintf(log, sizeof log, "%s/log", dir);
	snprintf(cmd, sizeof cmd, "sh '%s/tests/fixtures/tls/gen.sh' '%s'", src, tls);
	cr_assert_eq(system(cmd), 0, "gen.sh failed");
	/* gen.sh's clients have the two-RDN subject CN=...,O=hl7bridge tests */
	f = fopen(conf, "w");
	fprintf(f,
		"[bridge]\ninstance = %s\nmappings = %s/mappings\nschemas = %s/conf/schemas\n"
		"[kafka]\nbootstrap.servers = %s\n"
		"[topics]\npartitions = 1\ndeadletter = %s\nstate = %s\n"
		"[publisher]\nlanes = 1\nlinger = 2ms\n[http]\nbind = off\n"
		"[listener mtls]\nbind = 127.0.0.1:0\ntls = on\ntls.cert = %s/server.crt\n"
		"tls.key = %s/server.key\ntls.ca = %s/ca.crt\ntls.verify.client = on\n"
		"tls.allowed.subjects = SAN:DNS:nobody.example; "
		"CN=hl7bridge test client,O=hl7bridge tests\n",
		inst, src, src, itest_bootstrap(), dlq, state, tls, tls, tls);
	fclose(f);
	pid = itest_daemon_start(conf, log, &port);
	snprintf(ca, sizeof ca, "%s/ca.crt", tls);
	snprintf(cc, sizeof cc, "%s/client.crt", tls);
	snprintf(ck, sizeof ck, "%s/client.key", tls);
	snprintf(c2c, sizeof c2c, "%s/client2.crt", tls);
	snprintf(c2k, sizeof c2k, "%s/client2.key", tls);
	struct icl_tls admitted = { ca, cc, ck, 0 }, other = { ca, c2c, c2k, 0 };

	cr_assert_eq(icl_connect(&c, port, &admitted, err, sizeof err), 0, "%s", err);
	char *msg = icl_adt("HOPS-TLS-1");
	cr_assert_gt(icl_exchange(&c, msg, ack, sizeof ack, 30000), 0, "no ACK; see %s", log);
	cr_assert(icl_ack_ok(ack, "HOPS-TLS-1"), "%s", ack);
	free(msg);
	icl_close(&c);

	if (icl_connect(&c, port, &other, err, sizeof err) == 0) {
		msg = icl_adt("HOPS-TLS-2");
		cr_assert_eq(icl_exchange(&c, msg, ack, sizeof ack, 10000), -1,
			     "a subject not in the list got an answer: %s", ack);
		free(msg);
		icl_close(&c);
	}
	cr_assert_geq(count_lines_with(log, "CN=hl7bridge second test client,O=hl7bridge tests"), 1,
		      "the refusal names the subject; see %s", log);
	cr_assert_eq(itest_daemon_stop(pid), 0);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

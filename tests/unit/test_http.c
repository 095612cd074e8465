/*
 * The HTTP endpoints over real sockets (no Kafka): health and readiness,
 * /metrics from a published snapshot, the bearer token, the playground's
 * 404 when off, 403 to a non-loopback client unless allowed, 413 past its
 * size limit, and a sample run through it.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map/map.h"
#include "obs/http.h"
#include "obs/mapref.h"
#include "util.h"

#include "map_test_source.h"

static const char *srcdir(void)
{
	const char *s = getenv("HB_SRCDIR");
	return s ? s : HB_SRCDIR;
}

static struct mapref *maps(void)
{
	return mapref_new(mt_load_shipped());
}

struct body {
	char *p;
	size_t n;
};

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct body *b = ud;
	char *np = realloc(b->p, b->n + size * nmemb + 1);
	if (!np)
		return 0;
	b->p = np;
	memcpy(b->p + b->n, ptr, size * nmemb);
	b->n += size * nmemb;
	b->p[b->n] = '\0';
	return size * nmemb;
}

/* GET (post == NULL) or POST; returns the status, *out the body (caller frees). */
static long req(const char *host, int port, const char *path, const char *token, const char *post,
		size_t post_len, char **out)
{
	char url[512], auth[300];
	struct body b = { calloc(1, 1), 0 };
	struct curl_slist *h = NULL;
	long status = -1;
	CURL *c = curl_easy_init();
	snprintf(url, sizeof url, "http://%s:%d%s", host, port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	if (token) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	}
	if (post) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)post_len);
	}
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (out)
		*out = b.p;
	else
		free(b.p);
	return status;
}

static struct http *start(struct http_conf *c, struct mapref *r)
{
	char err[512];
	struct http *h = http_start(c, r, err, sizeof err);
	cr_assert_not_null(h, "%s", err);
	return h;
}

static void conf_loopback(struct http_conf *c)
{
	http_conf_defaults(c);
	snprintf(c->port, sizeof c->port, "0");
}

static void ready_snapshot(struct obs_snapshot *s)
{
	memset(s, 0, sizeof *s);
	snprintf(s->instance, sizeof s->instance, "unit");
	s->producers = s->ledger = s->listeners = 1;
	s->pl.received = 3;
	s->pl.rejected_map = 1;
	s->pl.rejected_by[PIPELINE_STAGE_MAP][pipeline_code_index(101)] = 1;
	s->nrecent = 1;
	s->recent[0].code = 101;
	s->recent[0].stage = PIPELINE_STAGE_MAP;
	snprintf(s->recent[0].msh10, sizeof s->recent[0].msh10, "MSG-7");
	snprintf(s->recent[0].reason, sizeof s->recent[0].reason, "required data.patientId is empty");
}

Test(http, health_readiness_metrics_and_pages)
{
	struct http_conf c;
	struct obs_snapshot *s = calloc(1, sizeof *s);
	char *body;
	conf_loopback(&c);
	struct http *h = start(&c, NULL);
	int port = http_port(h);
	cr_assert_gt(port, 0);

	cr_assert_eq(req("127.0.0.1", port, "/healthz", NULL, NULL, 0, NULL), 200);
	cr_assert_eq(req("127.0.0.1", port, "/readyz", NULL, NULL, 0, &body), 503);
	cr_assert(strstr(body, "starting") != NULL, "%s", body);
	free(body);
	cr_assert_eq(req("127.0.0.1", port, "/metrics", NULL, NULL, 0, NULL), 503);

	ready_snapshot(s);
	s->ledger = 0;
	http_publish(h, s, NULL);
	cr_assert_eq(req("127.0.0.1", port, "/readyz", NULL, NULL, 0, &body), 503);
	cr_assert(strstr(body, "ledger no") != NULL, "%s", body);
	free(body);
	/* a drop folder the bridge cannot use: not ready, with the reason */
	s->ledger = 1;
	snprintf(s->problem, sizeof s->problem, "drop main cannot read and write /x/inbox: Permission denied");
	http_publish(h, s, NULL);
	cr_assert_eq(req("127.0.0.1", port, "/readyz", NULL, NULL, 0, &body), 503);
	cr_assert(strstr(body, "drop main cannot read and write /x/inbox"), "%s", body);
	free(body);
	cr_assert_eq(req("127.0.0.1", port, "/api/status", NULL, NULL, 0, &body), 200);
	cr_assert(strstr(body, "\"problem\":\"drop main cannot"), "%s", body);
	free(body);
	s->problem[0] = '\0';
	http_publish(h, s, NULL);
	cr_assert_eq(req("127.0.0.1", port, "/readyz", NULL, NULL, 0, NULL), 200);

	cr_assert_eq(req("127.0.0.1", port, "/metrics", NULL, NULL, 0, &body), 200);
	cr_assert(strstr(body, "hl7bridge_messages_rejected_total{stage=\"map\",code=\"101\"} 1\n"),
		  "%s", body);
	free(body);
	cr_assert_eq(req("127.0.0.1", port, "/api/status", NULL, NULL, 0, &body), 200);
	cr_assert(strstr(body, "\"msh10\":\"MSG-7\"") != NULL, "%s", body);
	free(body);
	cr_assert_eq(req("127.0.0.1", port, "/", NULL, NULL, 0, &body), 200);
	cr_assert(strstr(body, "<title>hl7bridge status</title>") != NULL);
	free(body);
	cr_assert_eq(req("127.0.0.1", port, "/status.js", NULL, NULL, 0, NULL), 200);
	cr_assert_eq(req("127.0.0.1", port, "/nothing", NULL, NULL, 0, NULL), 404);
	cr_assert_eq(req("127.0.0.1", port, "/metrics", NULL, "x", 1, NULL), 405);
	http_stop(h);
	free(s);
}

Test(http, bearer_token)
{
	struct http_conf c;
	struct obs_snapshot *s = calloc(1, sizeof *s);
	conf_loopback(&c);
	snprintf(c.token, sizeof c.token, "s3cret");
	struct http *h = start(&c, NULL);
	int port = http_port(h);
	ready_snapshot(s);
	http_publish(h, s, NULL);
	cr_assert_eq(req("127.0.0.1", port, "/metrics", NULL, NULL, 0, NULL), 401);
	cr_assert_eq(req("127.0.0.1", port, "/metrics", "wrong", NULL, 0, NULL), 401);
	cr_assert_eq(req("127.0.0.1", port, "/metrics", "s3cre", NULL, 0, NULL), 401);
	cr_assert_eq(req("127.0.0.1", port, "/metrics", "s3cret!", NULL, 0, NULL), 401);
	cr_assert_eq(req("127.0.0.1", port, "/api/status", NULL, NULL, 0, NULL), 401);
	cr_assert_eq(req("127.0.0.1", port, "/metrics", "s3cret", NULL, 0, NULL), 200);
	/* probes and the static page shell need none */
	cr_assert_eq(req("127.0.0.1", port, "/healthz", NULL, NULL, 0, NULL), 200);
	cr_assert_eq(req("127.0.0.1", port, "/readyz", NULL, NULL, 0, NULL), 200);
	cr_assert_eq(req("127.0.0.1", port, "/", NULL, NULL, 0, NULL), 200);
	http_stop(h);
	free(s);
}

Test(http, playground_off_answers_404)
{
	struct http_conf c;
	struct mapref *r = maps();
	conf_loopback(&c);
	struct http *h = start(&c, r);
	int port = http_port(h);
	cr_assert_eq(req("127.0.0.1", port, "/playground", NULL, NULL, 0, NULL), 404);
	cr_assert_eq(req("127.0.0.1", port, "/playground.js", NULL, NULL, 0, NULL), 404);
	cr_assert_eq(req("127.0.0.1", port, "/api/playground", NULL, "MSH|", 4, NULL), 404);
	http_stop(h);
	mapref_free(r);
}

Test(http, playground_runs_a_sample_and_limits_its_size)
{
	struct http_conf c;
	struct mapref *r = maps();
	char path[1024], err[256], *body;
	size_t len;
	conf_loopback(&c);
	c.playground = 1;
	c.playground_max = 64 * 1024;
	struct http *h = start(&c, r);
	int port = http_port(h);
	snprintf(path, sizeof path, "%s/samples/hl7v2/adt_a01.hl7", srcdir());
	char *msg = util_read_file(path, 1 << 20, &len, err, sizeof err);
	cr_assert_not_null(msg, "%s", err);

	cr_assert_eq(req("127.0.0.1", port, "/playground", NULL, NULL, 0, &body), 200);
	cr_assert(strstr(body, "Mapping playground") != NULL);
	free(body);
	cr_assert_eq(req("127.0.0.1", port, "/api/playground", NULL, msg, len, &body), 200);
	cr_assert(strstr(body, "\"result\":\"events\"") != NULL, "%s", body);
	cr_assert(strstr(body, "healthcare.patient.") != NULL, "%s", body);
	cr_assert(strstr(body, "\"explain\":[{") != NULL, "no trace: %s", body);
	free(body);
	cr_assert_eq(req("127.0.0.1", port, "/api/playground", NULL, NULL, 0, NULL), 405);
	char *big = calloc(1, 65 * 1024 + 1);
	memset(big, 'A', 65 * 1024);
	cr_assert_eq(req("127.0.0.1", port, "/api/playground", NULL, big, 65 * 1024, NULL), 413);
	free(big);
	http_stop(h);
	mapref_free(r);
	free(msg);
}

/* This host's first non-loopback IPv4 address, or 0. */
static int outside_address(char *out, size_t cap)
{
	struct ifaddrs *ifs, *i;
	int found = 0;
	if (getifaddrs(&ifs) != 0)
		return 0;
	for (i = ifs; i && !found; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_UP) &&
		    !(i->ifa_flags & IFF_LOOPBACK)) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out,
				  (socklen_t)cap);
			found = 1;
		}
	freeifaddrs(ifs);
	return found;
}

Test(http, playground_refuses_non_loopback_clients_unless_allowed)
{
	struct http_conf c;
	struct mapref *r = maps();
	char addr[64], *body;
	if (!outside_address(addr, sizeof addr))
		cr_skip_test("this host has no non-loopback IPv4 address to test from");
	http_conf_defaults(&c);
	snprintf(c.host, sizeof c.host, "0.0.0.0");
	snprintf(c.port, sizeof c.port, "0");
	c.playground = 1;
	struct http *h = start(&c, r);
	int port = http_port(h);
	cr_assert_eq(req(addr, port, "/playground", NULL, NULL, 0, &body), 403, "from %s", addr);
	cr_assert(strstr(body, "loopback") != NULL, "%s", body);
	free(body);
	cr_assert_eq(req(addr, port, "/api/playground", NULL, "MSH|", 4, NULL), 403);
	cr_assert_eq(req("127.0.0.1", port, "/playground", NULL, NULL, 0, NULL), 200);
	cr_assert_eq(req(addr, port, "/healthz", NULL, NULL, 0, NULL), 200, "the rest stays open");
	http_stop(h);

	c.playground_any = 1;
	h = start(&c, r);
	port = http_port(h);
	cr_assert_eq(req(addr, port, "/playground", NULL, NULL, 0, NULL), 200);
	http_stop(h);
	mapref_free(r);
}

Test(http, loopback_addresses)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	inet_pton(AF_INET, "127.3.2.1", &a4.sin_addr);
	cr_assert(http_addr_is_loopback((struct sockaddr *)&a4));
	inet_pton(AF_INET, "10.0.0.1", &a4.sin_addr);
	cr_assert_not(http_addr_is_loopback((struct sockaddr *)&a4));
	inet_pton(AF_INET6, "::1", &a6.sin6_addr);
	cr_assert(http_addr_is_loopback((struct sockaddr *)&a6));
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &a6.sin6_addr);
	cr_assert(http_addr_is_loopback((struct sockaddr *)&a6));
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &a6.sin6_addr);
	cr_assert_not(http_addr_is_loopback((struct sockaddr *)&a6));
	inet_pton(AF_INET6, "2001:db8::1", &a6.sin6_addr);
	cr_assert_not(http_addr_is_loopback((struct sockaddr *)&a6));
	cr_assert_not(http_addr_is_loopback(NULL));
}

Test(http, bind_failure_is_reported)
{
	struct http_conf c;
	char err[512];
	conf_loopback(&c);
	struct http *h = start(&c, NULL);
	snprintf(c.port, sizeof c.port, "%d", http_port(h));
	cr_assert_null(http_start(&c, NULL, err, sizeof err));
	cr_assert(strstr(err, "cannot serve") != NULL, "%s", err);
	snprintf(c.tls_cert, sizeof c.tls_cert, "/nonexistent/cert.pem");
	snprintf(c.tls_key, sizeof c.tls_key, "/nonexistent/key.pem");
	snprintf(c.port, sizeof c.port, "0");
	cr_assert_null(http_start(&c, NULL, err, sizeof err));
	cr_assert(strstr(err, "tls.cert") != NULL, "%s", err);
	http_stop(h);
}

Test(http, https_with_a_certificate)
{
	char dir[] = "/tmp/hb-http-tls-XXXXXX", cmd[1024], url[256];
	struct http_conf c;
	struct body b = { calloc(1, 1), 0 };
	long status = -1;
	cr_assert_not_null(mkdtemp(dir));
	snprintf(cmd, sizeof cmd,
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
		 "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s/key.pem "
		 "-out %s/cert.pem 2>/dev/null",
		 dir, dir);
	cr_assert_eq(system(cmd), 0, "openssl could not make a test certificate");
	conf_loopback(&c);
	snprintf(c.tls_cert, sizeof c.tls_cert, "%s/cert.pem", dir);
	snprintf(c.tls_key, sizeof c.tls_key, "%s/key.pem", dir);
	struct http *h = start(&c, NULL);

	CURL *cu = curl_easy_init();
	snprintf(url, sizeof url, "https://127.0.0.1:%d/healthz", http_port(h));
	curl_easy_setopt(cu, CURLOPT_URL, url);
	curl_easy_setopt(cu, CURLOPT_CAINFO, c.tls_cert);
	curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(cu, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(cu, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(cu, CURLOPT_NOPROXY, "*");
	cr_assert_eq(curl_easy_perform(cu), CURLE_OK);
	curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(cu);
	cr_assert_eq(status, 200);
	cr_assert_str_eq(b.p, "ok\n");
	/* plain HTTP on the TLS port gets no answer */
	cr_assert_neq(req("127.0.0.1", http_port(h), "/healthz", NULL, NULL, 0, NULL), 200);
	http_stop(h);
	free(b.p);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* ---- hostile clients (issue 14, item 4) ------------------------------------------ */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

/* A TCP connection from src (a loopback address) to 127.0.0.1:port, or -1. */
static int connect_from(const char *src, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET }, b = { .sin_family = AF_INET };
	struct pollfd p;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	inet_pton(AF_INET, src, &a.sin_addr);
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

/* GET /healthz from 127.0.0.1 with a 1 s budget: the status, *ms the time taken. */
static long healthz_within_1s(int port, double *ms)
{
	char url[128];
	long status = -1;
	CURL *c = curl_easy_init();
	int64_t t0 = util_mono_ms();
	snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	*ms = (double)(util_mono_ms() - t0);
	return status;
}

/* Has the server closed fd (EOF or reset), without blocking? */
static int closed_by_server(int fd)
{
	char buf[512];
	ssize_t n;
	while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
		;
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

#define SLOW_CLIENTS 64
#define IDLE_CLIENTS 1500

Test(http, slow_and_idle_clients_leave_healthz_answering, .timeout = 60)
{
	static int slow[SLOW_CLIENTS], idle[IDLE_CLIENTS];
	static const char head[] = "POST /api/playground HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				   "Content-Length: 100000\r\n\r\n";
	struct http_conf c;
	struct mapref *r = maps();
	double ms, worst = 0;
	int nslow = 0, nidle = 0, open_slow = 0;
	conf_loopback(&c);
	c.playground = 1;
	c.request_timeout_ms = 2000;
	struct http *h = start(&c, r);
	int port = http_port(h);

	/* 64 clients (one address) trickling a body, 1,500 idle ones (another). */
	for (int i = 0; i < SLOW_CLIENTS; i++) {
		int fd = connect_from("127.0.0.2", port);
		if (fd < 0)
			continue;
		cr_assert_eq(send(fd, head, sizeof head - 1, MSG_NOSIGNAL), (ssize_t)sizeof head - 1);
		slow[nslow++] = fd;
	}
	for (int i = 0; i < IDLE_CLIENTS; i++) {
		int fd = connect_from("127.0.0.3", port);
		if (fd >= 0)
			idle[nidle++] = fd;
	}
	cr_assert_gt(nslow, 0);
	for (int round = 0; round < 12; round++) { /* 3.6 s of trickling */
		for (int i = 0; i < nslow; i++)
			send(slow[i], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		long st = healthz_within_1s(port, &ms);
		cr_assert_eq(st, 200, "round %d: /healthz answered %ld after %.0f ms", round, st, ms);
		if (ms > worst)
			worst = ms;
		usleep(300 * 1000);
	}
	cr_assert_lt(worst, 1000.0, "slowest /healthz: %.0f ms", worst);
	/* Past request.timeout every trickling request was cut off. */
	for (int i = 0; i < nslow; i++)
		if (!closed_by_server(slow[i]))
			open_slow++;
	cr_assert_eq(open_slow, 0, "%d of %d trickling clients still connected after 3.6 s",
		     open_slow, nslow);
	for (int i = 0; i < nslow; i++)
		close(slow[i]);
	for (int i = 0; i < nidle; i++)
		close(idle[i]);
	http_stop(h);
	mapref_free(r);
}

Test(http, a_silent_connection_is_closed_after_idle_timeout)
{
	struct http_conf c;
	conf_loopback(&c);
	c.idle_timeout_ms = 1000;
	struct http *h = start(&c, NULL);
	int fd = connect_from("127.0.0.1", http_port(h));
	cr_assert_geq(fd, 0);
	usleep(2500 * 1000);
	cr_assert(closed_by_server(fd), "still open after 2.5 s with idle.timeout = 1s");
	close(fd);
	http_stop(h);
}

Test(http, a_declared_oversized_body_is_refused_before_it_is_sent)
{
	static const char head[] = "POST /api/playground HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				   "Content-Length: 999999999\r\n\r\n";
	struct http_conf c;
	struct mapref *r = maps();
	struct pollfd p;
	char buf[256] = "";
	conf_loopback(&c);
	c.playground = 1;
	struct http *h = start(&c, r);
	int fd = connect_from("127.0.0.1", http_port(h));
	cr_assert_geq(fd, 0);
	cr_assert_eq(send(fd, head, sizeof head - 1, MSG_NOSIGNAL), (ssize_t)sizeof head - 1);
	p.fd = fd;
	p.events = POLLIN;
	cr_assert_eq(poll(&p, 1, 2000), 1, "no answer before the body");
	cr_assert_gt(recv(fd, buf, sizeof buf - 1, 0), 0);
	cr_assert(strncmp(buf, "HTTP/1.1 413", 12) == 0, "%s", buf);
	close(fd);
	http_stop(h);
	mapref_free(r);
}

/* ---- DNS rebinding (issue 14, item 13) --------------------------------------------- */

static long get_with_host(int port, const char *path, const char *host)
{
	char url[256], hh[300];
	long status = -1;
	struct curl_slist *l = NULL;
	CURL *c = curl_easy_init();
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
	snprintf(hh, sizeof hh, "Host: %s", host);
	l = curl_slist_append(l, hh);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, l);
	curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(l);
	curl_easy_cleanup(c);
	return status;
}

Test(http, host_names_without_a_token)
{
	struct http_conf c;
	http_conf_defaults(&c);
	snprintf(c.host, sizeof c.host, "bridge.example");
	snprintf(c.allowed_hosts, sizeof c.allowed_hosts, "metrics.example, Other.Example");
	cr_assert(http_host_allowed(&c, NULL));
	cr_assert(http_host_allowed(&c, "localhost"));
	cr_assert(http_host_allowed(&c, "LOCALHOST.:9275"));
	cr_assert(http_host_allowed(&c, "app.localhost:1"));
	cr_assert(http_host_allowed(&c, "127.0.0.1:9275"));
	cr_assert(http_host_allowed(&c, "10.1.2.3:9275"), "an IP literal is not a rebinding name");
	cr_assert(http_host_allowed(&c, "[::1]:9275"));
	cr_assert(http_host_allowed(&c, "[2001:db8::1]"));
	cr_assert(http_host_allowed(&c, "bridge.example:9275"));
	cr_assert(http_host_allowed(&c, "other.example"));
	cr_assert(http_host_allowed(&c, "metrics.example"));
	cr_assert_not(http_host_allowed(&c, "evil.example"));
	cr_assert_not(http_host_allowed(&c, "evil.example:9275"));
	cr_assert_not(http_host_allowed(&c, "localhost.evil.example"));
	cr_assert_not(http_host_allowed(&c, "[::1"));
	cr_assert_not(http_host_allowed(&c, ""));
	cr_assert(http_host_is_loopback("127.9.9.9"));
	cr_assert(http_host_is_loopback("::1"));
	cr_assert_not(http_host_is_loopback("0.0.0.0"));
	cr_assert_not(http_host_is_loopback(""));
}

Test(http, a_foreign_host_name_is_refused_without_a_token)
{
	struct http_conf c;
	conf_loopback(&c);
	struct http *h = start(&c, NULL);
	int port = http_port(h);
	cr_assert_eq(get_with_host(port, "/metrics", "evil.example"), 421);
	cr_assert_eq(get_with_host(port, "/", "evil.example:9275"), 421);
	cr_assert_eq(get_with_host(port, "/api/status", "evil.example"), 421);
	cr_assert_eq(get_with_host(port, "/healthz", "evil.example"), 200, "probes are not checked");
	cr_assert_eq(get_with_host(port, "/", "localhost"), 200);
	http_stop(h);
	snprintf(c.token, sizeof c.token, "s3cret");
	h = start(&c, NULL);
	cr_assert_eq(get_with_host(http_port(h), "/", "evil.example"), 200,
		     "a token guards the data: the name is not checked");
	http_stop(h);
}

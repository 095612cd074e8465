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
	s->ledger = 1;
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

/*
 * FHIR over HTTP against the real broker: every request shape (a resource
 * in JSON and XML, transaction, batch, message and subscription
 * notification Bundles, NDJSON), rejections, resends (committed and in
 * flight), hostile requests, 1,000 concurrent keep-alive clients, the
 * TLS / mutual TLS / bearer token matrix, and kill -9 under load with
 * client retries: exactly once.
 *
 * Each test has its own event topic prefix, so counting a topic's records
 * counts this test's events.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

struct fenv {
	char inst[128], conf[300], log[300], state[128], dlq[128], prefix[128], tlsdir[600];
	int ports[4];
	pid_t pid;
};

static const char *g_linger = "2ms";

static void fenv_conf(struct fenv *e, const char *sections)
{
	const char *src = getenv("HB_SRCDIR");
	itest_unique_name(e->inst, sizeof e->inst, "itest-fhir");
	itest_unique_name(e->state, sizeof e->state, "itest.fhstate");
	itest_unique_name(e->dlq, sizeof e->dlq, "itest.fhdlq");
	itest_unique_name(e->prefix, sizeof e->prefix, "itest.fh");
	snprintf(e->conf, sizeof e->conf, "/tmp/%s.conf", e->inst);
	snprintf(e->log, sizeof e->log, "/tmp/%s.log", e->inst);
	FILE *f = fopen(e->conf, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"[bridge]\ninstance = %s\nmappings = %s/mappings\nschemas = %s/conf/schemas\n"
		"[kafka]\nbootstrap.servers = %s\n"
		"[topics]\npartitions = 3\ndeadletter = %s\nstate = %s\nprefix = %s.\n"
		"[publisher]\nlanes = 2\nlinger = %s\n[http]\nbind = 127.0.0.1:0\n%s",
		e->inst, src, src, itest_bootstrap(), e->dlq, e->state, e->prefix, g_linger, sections);
	fclose(f);
}

/* Start and read the ports of the [fhir] listeners from the READY line. */
static void fenv_start(struct fenv *e)
{
	int ports[8];
	e->pid = itest_daemon_start_ports(e->conf, e->log, ports, 0);
	(void)ports;
	/* the READY line's " fhir=N" entries were consumed by the helper: read
	 * them from the log instead */
	char cmd[800], line[256];
	snprintf(cmd, sizeof cmd, "grep -o 'FHIR listening on [^ ]*' '%s' | sed 's/.*:\\([0-9]*\\)\\/.*/\\1/'",
		 e->log);
	FILE *p = popen(cmd, "r");
	int n = 0;
	while (n < 4 && fgets(line, sizeof line, p))
		e->ports[n++] = atoi(line);
	pclose(p);
	cr_assert_gt(n, 0, "no FHIR listener in %s", e->log);
}

static char *topic(const struct fenv *e, const char *type)
{
	static char t[256];
	snprintf(t, sizeof t, "%s.%s", e->prefix, type);
	return t;
}

static int count(const char *t, const char *needle)
{
	return itest_count_with(t, needle, 3000);
}

/* ---- a small blocking HTTP/1.1 client ------------------------------------------ */

static int hconnect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(0x7f000001);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct timeval tv = { 60, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int hsend(int fd, const char *path, const char *ctype, const char *extra, const char *body)
{
	char head[1024];
	size_t bl = body ? strlen(body) : 0;
	int hl = snprintf(head, sizeof head,
			  "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
			  path, ctype, bl, extra ? extra : "");
	return send_all(fd, head, (size_t)hl) || (bl && send_all(fd, body, bl)) ? -1 : 0;
}

/* Read one response (the head byte by byte, so a pipelined next response
 * stays in the socket): its status (or -1), body into out. */
static int hread(int fd, char *out, size_t cap)
{
	char head[8192];
	size_t len = 0;
	while (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0) {
		if (len + 1 >= sizeof head || recv(fd, head + len, 1, 0) != 1)
			return -1;
		len++;
	}
	head[len] = '\0';
	int status = atoi(head + 9);
	char *cl = strcasestr(head, "Content-Length:");
	size_t want = cl ? (size_t)atol(cl + 15) : 0, have = 0;
	char *body = malloc(want + 1);
	while (have < want) {
		ssize_t r = recv(fd, body + have, want - have, 0);
		if (r <= 0) {
			free(body);
			return -1;
		}
		have += (size_t)r;
	}
	body[want] = '\0';
	snprintf(out, cap, "%s", body);
	free(body);
	return status;
}

static int post(int port, const char *path, const char *ctype, const char *extra,
		const char *body, char *out, size_t cap)
{
	int fd = hconnect(port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(hsend(fd, path, ctype, extra, body), 0);
	int st = hread(fd, out, cap);
	close(fd);
	return st;
}

#define JSON "application/fhir+json"

static char *patient(const char *id)
{
	static _Thread_local char b[8][1024]; /* the kill -9 test's clients are threads */
	static _Thread_local int k;
	char *p = b[k++ % 8];
	snprintf(p, 1024,
		 "{\"resourceType\":\"Patient\",\"id\":\"%s\",\"identifier\":[{\"type\":{\"coding\":"
		 "[{\"code\":\"MR\"}]},\"value\":\"%s\"}],\"name\":[{\"family\":\"Secretname\"}],"
		 "\"gender\":\"female\",\"birthDate\":\"1980-01-02\"}",
		 id, id);
	return p;
}

/* A MedicationRequest a mapping rejects (no subject), with a value that must
 * never come back. */
static const char *bad_mr = "{\"resourceType\":\"MedicationRequest\",\"id\":\"badmr1\",\"status\":\"active\","
			    "\"intent\":\"order\",\"note\":[{\"text\":\"Canaryvalue\"}],"
			    "\"medicationCodeableConcept\":{\"coding\":[{\"system\":\"http://www.nlm.nih.gov/research/umls/rxnorm\",\"code\":\"1049502\"}]}}";

/* ---- every request shape ---------------------------------------------------------- */

Test(fhir_http, shapes_rejects_and_resends, .timeout = 240)
{
	struct fenv e;
	char out[65536], id[64], body[16384];
	fenv_conf(&e, "[fhir ehr]\nbind = 127.0.0.1:0\n");
	fenv_start(&e);
	int port = e.ports[0];
	char upd[256], crt[256];
	snprintf(upd, sizeof upd, "%s", topic(&e, "patient.updated"));
	snprintf(crt, sizeof crt, "%s", topic(&e, "patient.created"));

	/* one resource, JSON: 201 after the commit, then a resend: 200, nothing new */
	itest_unique_name(id, sizeof id, "P1");
	cr_assert_eq(post(port, "/fhir/Patient", JSON, NULL, patient(id), out, sizeof out), 201, "%s", out);
	cr_assert_eq(count(upd, id), 1, "the event is committed when the answer comes");
	cr_assert_eq(post(port, "/fhir/Patient", JSON, "X-Request-Id: abc-1\r\n", patient(id), out,
			  sizeof out), 200, "%s", out);
	cr_assert(strstr(out, "resend of a committed request"), "%s", out);
	/* the same resource, re-serialised (other key order) is the same request */
	snprintf(body, sizeof body,
		 "{\"id\":\"%s\",\"resourceType\":\"Patient\",\"birthDate\":\"1980-01-02\",\"gender\":\"female\","
		 "\"name\":[{\"family\":\"Secretname\"}],\"identifier\":[{\"value\":\"%s\",\"type\":{\"coding\":"
		 "[{\"code\":\"MR\"}]}}]}", id, id);
	cr_assert_eq(post(port, "/fhir/Patient", JSON, NULL, body, out, sizeof out), 200, "%s", out);
	cr_assert_eq(count(upd, id), 1, "a resend publishes nothing");

	/* XML */
	itest_unique_name(id, sizeof id, "PX");
	snprintf(body, sizeof body,
		 "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"%s\"/><identifier><type><coding>"
		 "<code value=\"MR\"/></coding></type><value value=\"%s\"/></identifier></Patient>", id, id);
	cr_assert_eq(post(port, "/fhir/Patient", "application/fhir+xml", NULL, body, out, sizeof out), 201,
		     "%s", out);
	cr_assert_eq(count(upd, id), 1);

	/* transaction: all published, a transaction-response */
	char a[64], b[64];
	itest_unique_name(a, sizeof a, "TA");
	itest_unique_name(b, sizeof b, "TB");
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":%s,"
		 "\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}},{\"resource\":%s,\"request\":"
		 "{\"method\":\"POST\",\"url\":\"Patient\"}}]}", patient(a), patient(b));
	cr_assert_eq(post(port, "/fhir", JSON, NULL, body, out, sizeof out), 200, "%s", out);
	cr_assert(strstr(out, "transaction-response") && strstr(out, "201 Created"), "%s", out);
	/* an entry whose request POSTs its Patient is a creation (mappings/fhir/patient.map) */
	cr_assert_eq(count(crt, a), 1);
	cr_assert_eq(count(crt, b), 1);
	cr_assert_eq(count(upd, a), 0);

	/* transaction with a rejected entry: 422 naming the entry, nothing published */
	itest_unique_name(a, sizeof a, "TR");
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":%s},"
		 "{\"resource\":%s}]}", patient(a), bad_mr);
	cr_assert_eq(post(port, "/fhir", JSON, NULL, body, out, sizeof out), 422, "%s", out);
	cr_assert(strstr(out, "Bundle.entry[1].resource") && strstr(out, "data.patientId"), "%s", out);
	cr_assert_null(strstr(out, "Canaryvalue"), "a value in the answer: %s", out);
	cr_assert_null(strstr(out, "Secretname"), "a value in the answer: %s", out);
	cr_assert_eq(count(upd, a), 0, "a failed transaction publishes none of its entries");
	cr_assert_eq(count(e.dlq, "Canaryvalue"), 1, "the rejected entry is dead-lettered");

	/* batch: entry by entry */
	itest_unique_name(a, sizeof a, "BA");
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{\"resource\":%s},"
		 "{\"resource\":%s}]}", patient(a), bad_mr);
	cr_assert_eq(post(port, "/fhir", JSON, NULL, body, out, sizeof out), 200, "%s", out);
	cr_assert(strstr(out, "batch-response") && strstr(out, "201 Created") &&
		  strstr(out, "422 Unprocessable Entity"), "%s", out);
	cr_assert_eq(count(upd, a), 1);

	/* one rejected resource: 422 with path and reason, never a value */
	cr_assert_eq(post(port, "/fhir/MedicationRequest", JSON, NULL, bad_mr, out, sizeof out), 422,
		     "%s", out);
	cr_assert(strstr(out, "\"expression\":[\"MedicationRequest\"]") && strstr(out, "required target"),
		  "%s", out);
	cr_assert_null(strstr(out, "Canaryvalue"));

	/* message Bundle through $process-message */
	itest_unique_name(a, sizeof a, "MS");
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Bundle\",\"type\":\"message\",\"entry\":[{\"resource\":{\"resourceType\":"
		 "\"MessageHeader\",\"id\":\"h1\",\"eventCoding\":{\"code\":\"admit\"},\"source\":{\"endpoint\":"
		 "\"urn:x\"}}},{\"resource\":%s}]}", patient(a));
	cr_assert_eq(post(port, "/fhir/$process-message", JSON, NULL, body, out, sizeof out), 200, "%s", out);
	cr_assert_eq(count(upd, a), 1);
	cr_assert_eq(post(port, "/fhir/$process-message", JSON, NULL, patient(a), out, sizeof out), 400);

	/* NDJSON */
	char n1[64], n2[64];
	itest_unique_name(n1, sizeof n1, "N1");
	itest_unique_name(n2, sizeof n2, "N2");
	snprintf(body, sizeof body, "%s\n%s\n", patient(n1), patient(n2));
	cr_assert_eq(post(port, "/fhir", "application/fhir+ndjson", NULL, body, out, sizeof out), 200, "%s",
		     out);
	cr_assert_eq(count(upd, n1), 1);
	cr_assert_eq(count(upd, n2), 1);

	/* Subscription notifications: handshake and heartbeat are not published */
	const char *hs = "{\"resourceType\":\"Bundle\",\"type\":\"subscription-notification\",\"entry\":[{"
			 "\"resource\":{\"resourceType\":\"SubscriptionStatus\",\"status\":\"requested\","
			 "\"type\":\"handshake\",\"subscription\":{\"reference\":\"Subscription/s1\"}}}]}";
	cr_assert_eq(post(port, "/fhir", JSON, NULL, hs, out, sizeof out), 200, "%s", out);
	cr_assert(strstr(out, "handshake received; nothing published"), "%s", out);
	/* R5/R4B event-notification */
	itest_unique_name(a, sizeof a, "SN");
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Bundle\",\"type\":\"subscription-notification\",\"timestamp\":"
		 "\"2026-01-01T00:00:00Z\",\"entry\":[{\"resource\":{\"resourceType\":\"SubscriptionStatus\","
		 "\"status\":\"active\",\"type\":\"event-notification\",\"eventsSinceSubscriptionStart\":\"3\","
		 "\"subscription\":{\"reference\":\"Subscription/s1\"}}},{\"fullUrl\":\"urn:uuid:1\",\"resource\":%s}]}",
		 patient(a));
	cr_assert_eq(post(port, "/fhir", JSON, NULL, body, out, sizeof out), 200, "%s", out);
	cr_assert_eq(count(upd, a), 1);
	/* redelivered with another timestamp: the same resources, not published again */
	char *ts = strstr(body, "2026-01-01");
	memcpy(ts, "2026-01-02", 10);
	cr_assert_eq(post(port, "/fhir", JSON, NULL, body, out, sizeof out), 200, "%s", out);
	cr_assert_eq(count(upd, a), 1);
	/* R4 backport: a history Bundle led by a subscription-status Parameters */
	itest_unique_name(a, sizeof a, "SB");
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Bundle\",\"type\":\"history\",\"entry\":[{\"resource\":{\"resourceType\":"
		 "\"Parameters\",\"meta\":{\"profile\":[\"http://hl7.org/fhir/uv/subscriptions-backport/"
		 "StructureDefinition/backport-subscription-status-r4\"]},\"parameter\":[{\"name\":"
		 "\"subscription\",\"valueReference\":{\"reference\":\"Subscription/s2\"}},{\"name\":\"type\","
		 "\"valueCode\":\"event-notification\"}]}},{\"resource\":%s,\"request\":{\"method\":\"PUT\","
		 "\"url\":\"Patient/x\"},\"response\":{\"status\":\"200\"}}]}", patient(a));
	cr_assert_eq(post(port, "/fhir", JSON, NULL, body, out, sizeof out), 200, "%s", out);
	cr_assert_eq(count(upd, a), 1);
	const char *hb = "{\"resourceType\":\"Bundle\",\"type\":\"history\",\"entry\":[{\"resource\":{"
			 "\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"subscription\",\"valueReference\":"
			 "{\"reference\":\"Subscription/s2\"}},{\"name\":\"type\",\"valueCode\":\"heartbeat\"}]}}]}";
	cr_assert_eq(post(port, "/fhir", JSON, NULL, hb, out, sizeof out), 200, "%s", out);
	cr_assert(strstr(out, "heartbeat received"), "%s", out);

	/* R4 rest-hook with payload: PUT [base]/{Type}/{id} */
	itest_unique_name(a, sizeof a, "PUT");
	int pfd = hconnect(port);
	char preq[2048];
	int pn = snprintf(preq, sizeof preq, "PUT /fhir/Patient/%s HTTP/1.1\r\nContent-Type: %s\r\n"
			  "Content-Length: %zu\r\n\r\n%s", a, JSON, strlen(patient(a)), patient(a));
	send_all(pfd, preq, (size_t)pn);
	cr_assert_eq(hread(pfd, out, sizeof out), 200, "%s", out);
	pn = snprintf(preq, sizeof preq, "PUT /fhir/Patient/other HTTP/1.1\r\nContent-Type: %s\r\n"
		      "Content-Length: %zu\r\n\r\n%s", JSON, strlen(patient(a)), patient(a));
	send_all(pfd, preq, (size_t)pn);
	cr_assert_eq(hread(pfd, out, sizeof out), 400, "%s", out);
	close(pfd);
	cr_assert_eq(count(upd, a), 1);

	/* refused before the pipeline */
	cr_assert_eq(post(port, "/fhir/Observation", JSON, NULL, patient("x"), out, sizeof out), 400);
	cr_assert_eq(post(port, "/fhir/Patient", JSON, NULL, "{\"resourceType\":", out, sizeof out), 400);
	cr_assert_eq(post(port, "/other/Patient", JSON, NULL, patient("x"), out, sizeof out), 404);
	cr_assert_eq(post(port, "/fhir/Patient", "text/plain", NULL, patient("x"), out, sizeof out), 415);
	/* a filtered resource (no mapping): 200, nothing published */
	cr_assert_eq(post(port, "/fhir/Observation", JSON, NULL,
			  "{\"resourceType\":\"Observation\",\"status\":\"final\"}", out, sizeof out), 200);
	cr_assert(strstr(out, "no mapping matched"), "%s", out);
	cr_assert_eq(itest_daemon_stop(e.pid), 0);
	/* the log names rejections, never values */
	char grep[700];
	snprintf(grep, sizeof grep, "grep -q 'fhir.*rejected: mapping' '%s'", e.log);
	cr_assert_eq(system(grep), 0, "no rejection logged in %s", e.log);
	snprintf(grep, sizeof grep, "grep -q -e Secretname -e Canaryvalue '%s'", e.log);
	cr_assert_neq(system(grep), 0, "a value in the log %s", e.log);
}

/* ---- hostile requests ------------------------------------------------------------------ */

static int raw_exchange(int port, const char *req, size_t len, char *out, size_t cap)
{
	int fd = hconnect(port);
	cr_assert_geq(fd, 0);
	send_all(fd, req, len);
	int st = hread(fd, out, cap);
	close(fd);
	return st;
}

Test(fhir_http, hostile_requests, .timeout = 120)
{
	struct fenv e;
	char out[65536], id[64], req[70000];
	fenv_conf(&e, "[fhir ehr]\nbind = 127.0.0.1:0\nmax.body.size = 64k\nrequest.timeout = 2s\n");
	fenv_start(&e);
	int port = e.ports[0];

	const char *big = "POST /fhir/Patient HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n";
	cr_assert_eq(raw_exchange(port, big, strlen(big), out, sizeof out), 413);
	const char *smug = "POST /fhir/Patient HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
	cr_assert_eq(raw_exchange(port, smug, strlen(smug), out, sizeof out), 400);
	const char *te = "POST /fhir/Patient HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n";
	cr_assert_eq(raw_exchange(port, te, strlen(te), out, sizeof out), 501);
	const char *junk = "\x16\x03\x01\x02garbage\r\n\r\n";
	cr_assert_eq(raw_exchange(port, junk, strlen(junk), out, sizeof out), 400);
	/* a head larger than max.header.size */
	int n = snprintf(req, sizeof req, "POST /fhir/Patient HTTP/1.1\r\nX-Pad: ");
	memset(req + n, 'a', 20000);
	n += 20000;
	n += snprintf(req + n, sizeof req - (size_t)n, "\r\n\r\n");
	cr_assert_eq(raw_exchange(port, req, (size_t)n, out, sizeof out), 431);
	/* nesting deeper than the FHIR reader allows */
	n = 0;
	char deep[4000];
	n += snprintf(deep, sizeof deep, "{\"resourceType\":\"Patient\",\"x\":");
	for (int i = 0; i < 300; i++)
		deep[n++] = '[';
	for (int i = 0; i < 300; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	deep[n] = '\0';
	cr_assert_eq(post(port, "/fhir/Patient", JSON, NULL, deep, out, sizeof out), 400, "%s", out);
	/* XML with a DOCTYPE (external entities): refused, nothing read from disk */
	const char *xxe = "<?xml version=\"1.0\"?><!DOCTYPE p [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
			  "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"&e;\"/></Patient>";
	cr_assert_eq(post(port, "/fhir/Patient", "application/fhir+xml", NULL, xxe, out, sizeof out), 400,
		     "%s", out);
	cr_assert_null(strstr(out, "root:"));
	/* invalid UTF-8 and a NUL inside a JSON string */
	const char bad_utf8[] = "{\"resourceType\":\"Patient\",\"id\":\"a\xff\xfe\"}";
	cr_assert_eq(post(port, "/fhir/Patient", JSON, NULL, bad_utf8, out, sizeof out), 400, "%s", out);
	/* a Bundle whose entry is not an object, and one with no entries at all */
	cr_assert_eq(post(port, "/fhir", JSON, NULL,
			  "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[7]}", out, sizeof out),
		     200, "%s", out);
	cr_assert(strstr(out, "400 Bad Request"), "%s", out);
	cr_assert_eq(post(port, "/fhir", JSON, NULL, "{\"resourceType\":\"Bundle\",\"type\":\"batch\"}", out,
			  sizeof out), 200, "%s", out);
	/* a chunked body, and two pipelined requests in one write */
	itest_unique_name(id, sizeof id, "CH");
	const char *p = patient(id);
	size_t pl = strlen(p), half = pl / 2;
	n = snprintf(req, sizeof req,
		     "POST /fhir/Patient HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Type: %s\r\n\r\n"
		     "%zx\r\n%.*s\r\n%zx;ext=1\r\n%s\r\n0\r\nTrailer: x\r\n\r\n"
		     "GET /fhir/metadata HTTP/1.1\r\n\r\n",
		     JSON, half, (int)half, p, pl - half, p + half);
	int fd = hconnect(port);
	send_all(fd, req, (size_t)n);
	cr_assert_eq(hread(fd, out, sizeof out), 201, "%s", out);
	cr_assert_eq(hread(fd, out, sizeof out), 200);
	cr_assert(strstr(out, "CapabilityStatement"));
	/* Expect: 100-continue (curl's habit for bodies over 1 KiB) */
	itest_unique_name(id, sizeof id, "EX");
	p = patient(id);
	n = snprintf(req, sizeof req, "POST /fhir/Patient HTTP/1.1\r\nExpect: 100-continue\r\n"
		     "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n", JSON, strlen(p));
	send_all(fd, req, (size_t)n);
	char cont[26];
	cr_assert_eq(recv(fd, cont, 25, MSG_WAITALL), 25);
	cont[25] = '\0';
	cr_assert_str_eq(cont, "HTTP/1.1 100 Continue\r\n\r\n");
	send_all(fd, p, strlen(p));
	cr_assert_eq(hread(fd, out, sizeof out), 201, "%s", out);
	cr_assert_eq(count(topic(&e, "patient.updated"), id), 1);
	/* a slow client's unfinished request is cut off at request.timeout */
	send_all(fd, "POST /fhir/Patient HTTP/1.1\r\nContent-Length: 10\r\n\r\n{", 52);
	char c;
	cr_assert_leq(recv(fd, &c, 1, 0), 0, "the connection stays open");
	close(fd);
	cr_assert_eq(count(topic(&e, "patient.updated"), id), 1);
	/* still serving */
	itest_unique_name(id, sizeof id, "OK");
	cr_assert_eq(post(port, "/fhir/Patient", JSON, NULL, patient(id), out, sizeof out), 201);
	cr_assert_eq(itest_daemon_stop(e.pid), 0);
}

/* ---- many keep-alive clients, resends in flight ----------------------------------------- */

#define NCLIENTS 1000

Test(fhir_http, thousand_keepalive_clients_and_resends_in_flight, .timeout = 300)
{
	struct fenv e;
	static int fds[NCLIENTS];
	char out[8192], run[64], id[96];
	fenv_conf(&e, "[fhir ehr]\nbind = 127.0.0.1:0\nmax.connections = 1100\n"
		       "max.connections.per.peer = 0\n"); /* every client is 127.0.0.1 */
	fenv_start(&e);
	int port = e.ports[0];
	itest_unique_name(run, sizeof run, "K");

	for (int i = 0; i < NCLIENTS; i++) {
		fds[i] = hconnect(port);
		cr_assert_geq(fds[i], 0, "connection %d: %s", i, strerror(errno));
	}
	/* every client sends at once, then reads */
	for (int i = 0; i < NCLIENTS; i++) {
		snprintf(id, sizeof id, "%s-%04d", run, i);
		cr_assert_eq(hsend(fds[i], "/fhir/Patient", JSON, NULL, patient(id)), 0);
	}
	for (int i = 0; i < NCLIENTS; i++)
		cr_assert_eq(hread(fds[i], out, sizeof out), 201, "client %d: %s", i, out);
	/* again on the same connections (keep-alive): every one a resend */
	for (int i = 0; i < NCLIENTS; i++) {
		snprintf(id, sizeof id, "%s-%04d", run, i);
		cr_assert_eq(hsend(fds[i], "/fhir/Patient", JSON, NULL, patient(id)), 0);
	}
	for (int i = 0; i < NCLIENTS; i++)
		cr_assert_eq(hread(fds[i], out, sizeof out), 200, "client %d: %s", i, out);
	/* the same new resource from 50 clients at once: one copy publishes */
	snprintf(id, sizeof id, "%s-same", run);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(hsend(fds[i], "/fhir/Patient", JSON, NULL, patient(id)), 0);
	int created = 0;
	for (int i = 0; i < 50; i++) {
		int st = hread(fds[i], out, sizeof out);
		cr_assert(st == 201 || st == 200, "client %d: %d %s", i, st, out);
		created += st == 201;
	}
	cr_assert_eq(created, 1, "one first copy, the others joined or resent");
	for (int i = 0; i < NCLIENTS; i++)
		close(fds[i]);
	char **vals;
	int got = itest_consume_all(topic(&e, "patient.updated"), "read_committed", NCLIENTS + 2, 5000,
				    &vals);
	itest_free_values(vals, got);
	cr_assert_eq(got, NCLIENTS + 1, "events: %d", got);
	cr_assert_eq(itest_daemon_stop(e.pid), 0);
}

/* ---- TLS, mutual TLS, bearer tokens ------------------------------------------------------ */

static size_t sink_cb(char *p, size_t s, size_t n, void *u)
{
	(void)p;
	(void)u;
	return s * n;
}

/* POST a patient over HTTPS with curl: the status, or -1 when TLS failed. */
static long tls_post(int port, const char *dir, const char *client, const char *token, const char *id)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[128], ca[700], crt[700], key[700], auth[300];
	long status = -1;
	snprintf(url, sizeof url, "https://127.0.0.1:%d/fhir/Patient", port);
	snprintf(ca, sizeof ca, "%s/ca.crt", dir);
	h = curl_slist_append(h, "Content-Type: application/fhir+json");
	if (token) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, patient(id));
	curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_cb);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	if (client) {
		snprintf(crt, sizeof crt, "%s/%s.crt", dir, client);
		snprintf(key, sizeof key, "%s/%s.key", dir, client);
		curl_easy_setopt(c, CURLOPT_SSLCERT, crt);
		curl_easy_setopt(c, CURLOPT_SSLKEY, key);
	}
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

Test(fhir_http, tls_mtls_token_matrix, .timeout = 180)
{
	struct fenv e;
	char sections[8192], id[64], out[4096], tokfile[700];
	const char *b = getenv("HB_BUILDDIR");
	snprintf(e.tlsdir, sizeof e.tlsdir, "%s/tests/tmp/fhir-tls", b);
	char cmd[1400];
	snprintf(cmd, sizeof cmd, "sh '%s/tests/fixtures/tls/gen.sh' '%s'", getenv("HB_SRCDIR"), e.tlsdir);
	cr_assert_eq(system(cmd), 0);
	snprintf(tokfile, sizeof tokfile, "%s/fhir-tokens", e.tlsdir);
	FILE *f = fopen(tokfile, "w");
	fprintf(f, "file-token-1\nfile-token-2\n");
	fclose(f);
	setenv("HB_TEST_FHIR_TOKEN", "env-token", 1);
	snprintf(sections, sizeof sections,
		 "[fhir tls]\nbind = 127.0.0.1:0\ntls = on\ntls.cert = %s/server.crt\ntls.key = %s/server.key\n"
		 "[fhir mtls]\nbind = 127.0.0.1:0\ntls = on\ntls.cert = %s/server.crt\ntls.key = %s/server.key\n"
		 "tls.ca = %s/ca.crt\ntls.verify.client = on\ntls.allowed.subjects = hl7bridge test client\n"
		 "[fhir token]\nbind = 127.0.0.1:0\ntoken = ${HB_TEST_FHIR_TOKEN}\ntoken.file = %s\n",
		 e.tlsdir, e.tlsdir, e.tlsdir, e.tlsdir, e.tlsdir, tokfile);
	fenv_conf(&e, sections);
	fenv_start(&e);

	itest_unique_name(id, sizeof id, "TLS");
	cr_assert_eq(tls_post(e.ports[0], e.tlsdir, NULL, NULL, id), 201);
	cr_assert_eq(tls_post(e.ports[1], e.tlsdir, NULL, NULL, id), -1, "mTLS without a certificate");
	cr_assert_eq(tls_post(e.ports[1], e.tlsdir, "other-client", NULL, id), -1, "another CA");
	cr_assert_eq(tls_post(e.ports[1], e.tlsdir, "client2", NULL, id), -1, "a subject not allowed");
	itest_unique_name(id, sizeof id, "MTLS");
	cr_assert_eq(tls_post(e.ports[1], e.tlsdir, "client", NULL, id), 201);
	/* plain HTTP to the TLS listener is refused */
	int fd = hconnect(e.ports[0]);
	cr_assert_geq(fd, 0);
	int st = hsend(fd, "/fhir/Patient", JSON, NULL, patient("x")) == 0 ? hread(fd, out, sizeof out) : -1;
	close(fd);
	cr_assert_lt(st, 200, "plain HTTP answered %d by a TLS listener", st);

	int tp = e.ports[2];
	cr_assert_eq(post(tp, "/fhir/Patient", JSON, NULL, patient("x"), out, sizeof out), 401);
	cr_assert_eq(post(tp, "/fhir/Patient", JSON, "Authorization: Bearer wrong\r\n", patient("x"), out,
			  sizeof out), 401);
	cr_assert_eq(post(tp, "/fhir/Patient", JSON, "Authorization: Bearer env-tokenX\r\n", patient("x"),
			  out, sizeof out), 401);
	itest_unique_name(id, sizeof id, "TOK1");
	cr_assert_eq(post(tp, "/fhir/Patient", JSON, "Authorization: Bearer env-token\r\n", patient(id),
			  out, sizeof out), 201);
	itest_unique_name(id, sizeof id, "TOK2");
	cr_assert_eq(post(tp, "/fhir/Patient", JSON, "Authorization: bearer file-token-2\r\n", patient(id),
			  out, sizeof out), 201);

	/* SIGHUP reloads the FHIR listeners' certificates with the rest */
	kill(e.pid, SIGHUP);
	sleep(1);
	char grep[800];
	snprintf(grep, sizeof grep, "grep -q 'reloaded:' '%s'", e.log);
	cr_assert_eq(system(grep), 0, "no reload in %s", e.log);
	itest_unique_name(id, sizeof id, "HUP");
	cr_assert_eq(tls_post(e.ports[1], e.tlsdir, "client", NULL, id), 201);
	cr_assert_eq(itest_daemon_stop(e.pid), 0);
}

/* ---- kill -9 under load, clients retrying: exactly once -------------------------------------- */

#define K9_CLIENTS 8
#define K9_EACH 60

struct k9 {
	struct fenv *e;
	const char *run;
	int client;
	volatile int *port;
	volatile int answered, retries;
};

static void *k9_client(void *arg)
{
	struct k9 *k = arg;
	char id[96], out[8192];
	int fd = -1;
	for (int i = 0; i < K9_EACH; i++) {
		snprintf(id, sizeof id, "%s-%d-%03d", k->run, k->client, i);
		for (;;) {
			if (fd < 0)
				fd = hconnect(*k->port);
			int st = fd >= 0 && hsend(fd, "/fhir/Patient", JSON, NULL, patient(id)) == 0
					 ? hread(fd, out, sizeof out)
					 : -1;
			if (st == 201 || st == 200) {
				k->answered++;
				break;
			}
			/* no answer (killed), 503: resend the same request */
			k->retries++;
			if (fd >= 0)
				close(fd);
			fd = -1;
			usleep(100000);
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

Test(fhir_http, kill9_under_load_exactly_once, .timeout = 300)
{
	struct fenv e;
	char run[64];
	pthread_t th[K9_CLIENTS];
	struct k9 ks[K9_CLIENTS];
	volatile int port;
	/* a fixed port below the ephemeral range, so the clients find the
	 * restarted daemon and no retrying client's own port can take it */
	char sec[128];
	snprintf(sec, sizeof sec, "[fhir ehr]\nbind = 127.0.0.1:%d\n", 21000 + getpid() % 8000);
	fenv_conf(&e, sec);
	fenv_start(&e);
	port = e.ports[0];
	itest_unique_name(run, sizeof run, "K9");
	for (int i = 0; i < K9_CLIENTS; i++) {
		ks[i] = (struct k9){ &e, run, i, &port, 0, 0 };
		pthread_create(&th[i], NULL, k9_client, &ks[i]);
	}
	/* kill -9 once a third is answered */
	for (int t = 0; t < 600; t++) {
		int n = 0;
		for (int i = 0; i < K9_CLIENTS; i++)
			n += ks[i].answered;
		if (n >= K9_CLIENTS * K9_EACH / 3)
			break;
		usleep(50000);
	}
	kill(e.pid, SIGKILL);
	waitpid(e.pid, NULL, 0);
	int ports[1];
	e.pid = itest_daemon_start_ports(e.conf, e.log, ports, 0);
	for (int i = 0; i < K9_CLIENTS; i++)
		pthread_join(th[i], NULL);
	int retries = 0;
	for (int i = 0; i < K9_CLIENTS; i++)
		retries += ks[i].retries;
	char **vals;
	int total = K9_CLIENTS * K9_EACH;
	int got = itest_consume_all(topic(&e, "patient.updated"), "read_committed", total + 1, 8000, &vals);
	/* every id exactly once */
	int *seen = calloc((size_t)total, sizeof *seen);
	for (int v = 0; v < got; v++) {
		const char *p = strstr(vals[v], run);
		int c, i;
		if (p && sscanf(p + strlen(run), "-%d-%d", &c, &i) == 2 && c < K9_CLIENTS && i < K9_EACH)
			seen[c * K9_EACH + i]++;
	}
	itest_free_values(vals, got);
	for (int i = 0; i < total; i++)
		cr_assert_eq(seen[i], 1, "resource %d published %d times (%d retries, log %s)", i, seen[i],
			     retries, e.log);
	free(seen);
	cr_log_info("kill -9 under load: %d resources, %d client retries, each published once", total,
		    retries);
	cr_assert_eq(itest_daemon_stop(e.pid), 0);
}

/* ---- interop: a real FHIR client library ------------------------------------------------------ */

/* fhir.resources (pydantic FHIR R4B models) + requests, in a venv made by
 * tests/integration/py/setup.sh: tests/integration/py/fhir_client.py builds
 * the resources with the models, POSTs them and reads every answer back
 * into FHIR models. */
Test(fhir_http, python_fhir_client_interop, .timeout = 600)
{
	struct fenv e;
	char cmd[2000], py[600] = "", run[64], id[96], out[700];
	const char *src = getenv("HB_SRCDIR");
	snprintf(cmd, sizeof cmd, "HB_PY_REQUIREMENTS=fhir-requirements.txt '%s/tests/integration/py/setup.sh'",
		 src);
	FILE *p = popen(cmd, "r");
	if (!p || !fgets(py, sizeof py, p) || pclose(p) != 0)
		cr_skip_test("cannot install fhir.resources and requests (no PyPI?)");
	py[strcspn(py, "\n")] = '\0';
	fenv_conf(&e, "[fhir ehr]\nbind = 127.0.0.1:0\n");
	fenv_start(&e);
	itest_unique_name(run, sizeof run, "PY");
	snprintf(out, sizeof out, "%s.py.out", e.log);
	snprintf(cmd, sizeof cmd, "'%s' '%s/tests/integration/py/fhir_client.py' http://127.0.0.1:%d/fhir %s >'%s' 2>&1",
		 py, src, e.ports[0], run, out);
	cr_assert_eq(system(cmd), 0, "the Python FHIR client failed: see %s", out);
	char upd[256], crt[256];
	snprintf(upd, sizeof upd, "%s", topic(&e, "patient.updated"));
	snprintf(crt, sizeof crt, "%s", topic(&e, "patient.created"));
	/* the transaction's entries POST their Patients: creations (mappings/fhir/patient.map) */
	const char *ids[] = { "-p1", "-t0", "-t1", "-t2", "-sub" };
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
		snprintf(id, sizeof id, "\"%s%s\"", run, ids[i]);
		cr_assert_eq(count(ids[i][1] == 't' ? crt : upd, id), 1, "%s", id);
	}
	cr_assert_eq(itest_daemon_stop(e.pid), 0);
}

/* ---- SIGTERM: what was read is committed and answered ------------------------------------------ */

Test(fhir_http, sigterm_answers_what_it_read, .timeout = 120)
{
	struct fenv e;
	int fds[50], created = 0, unavailable = 0;
	char run[64], id[96], out[4096];
	/* The first half must still wait for its commit at SIGTERM. A lane
	 * lingers only while fewer jobs wait than its last batch held (pub.c):
	 * a burst of 50 first makes the lanes' last batches larger than the 25
	 * sent before SIGTERM, which then linger 700 ms. */
	g_linger = "700ms";
	fenv_conf(&e, "[fhir ehr]\nbind = 127.0.0.1:0\n");
	fenv_start(&e);
	itest_unique_name(run, sizeof run, "TERM");
	for (int i = 0; i < 50; i++) {
		fds[i] = hconnect(e.ports[0]);
		cr_assert_geq(fds[i], 0);
	}
	for (int i = 0; i < 50; i++) {
		snprintf(id, sizeof id, "%s-warm-%02d", run, i);
		cr_assert_eq(hsend(fds[i], "/fhir/Patient", JSON, NULL, patient(id)), 0);
	}
	for (int i = 0; i < 50; i++)
		cr_assert_eq(hread(fds[i], out, sizeof out), 201, "warm-up %d: %s", i, out);
	itest_unique_name(run, sizeof run, "TERM");
	for (int i = 0; i < 50; i++) {
		snprintf(id, sizeof id, "%s-%02d", run, i);
		cr_assert_eq(hsend(fds[i], "/fhir/Patient", JSON, NULL, patient(id)), 0);
		if (i == 24) {
			usleep(200000); /* read and submitted, not committed */
			kill(e.pid, SIGTERM);
			usleep(100000);
		}
	}
	for (int i = 0; i < 50; i++) {
		int st = hread(fds[i], out, sizeof out);
		cr_assert(st == 201 || st == 503, "request %d: %d %s", i, st, out);
		created += st == 201;
		unavailable += st == 503;
		close(fds[i]);
	}
	int status;
	cr_assert_eq(waitpid(e.pid, &status, 0), e.pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
	char **vals;
	int got = itest_consume_all(topic(&e, "patient.updated"), "read_committed", 101, 5000, &vals);
	int events = 0;
	for (int v = 0; v < got; v++)
		events += strstr(vals[v], run) != NULL; /* not the warm-up's */
	itest_free_values(vals, got);
	cr_log_info("SIGTERM: %d answered 201, %d answered 503", created, unavailable);
	cr_assert_eq(events, created, "events %d, 201 answers %d", events, created);
	cr_assert_geq(created, 25, "requests read before SIGTERM are committed and answered");
	cr_assert_gt(unavailable, 0, "requests after SIGTERM are answered 503");
}

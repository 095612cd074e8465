/* The hostile-input corpus: every document is refused with a clear error,
 * with bounded memory, and without any connection attempt (a loopback
 * listener stands where an external entity, DTD or XInclude would point). */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "parse/fhir.h"
#include "util.h"

static const char *srcdir(void)
{
	const char *d = getenv("HB_SRCDIR");
	return d ? d : HB_SRCDIR;
}

static char *load(const char *name, size_t *len)
{
	char path[1024], err[256];
	char *buf;

	snprintf(path, sizeof(path), "%s/tests/fixtures/fhir/hostile/%s", srcdir(), name);
	buf = util_read_file(path, 1u << 20, len, err, sizeof(err));
	cr_assert_not_null(buf, "%s", err);
	return buf;
}

/* Read a corpus file with the reader its name says; it must be refused with
 * an error text containing `expect`, and no value may leak into the text. */
static void refuse_file(const char *name, const char *expect)
{
	size_t len;
	char *buf = load(name, &len);
	fhir_error_t err = {0};
	json_t *t = strstr(name, ".xml") ? fhir_read_xml(buf, len, NULL, &err)
					 : fhir_read_json(buf, len, NULL, &err);

	cr_assert_null(t, "%s was accepted", name);
	cr_assert(strstr(err.text, expect), "%s: error '%s' lacks '%s'", name, err.text, expect);
	cr_assert_null(strstr(err.text, "SECRET"), "%s: error leaks a value: %s", name, err.text);
	cr_assert_null(strstr(err.text, "root:"), "%s: error leaks a file: %s", name, err.text);
	free(buf);
}

Test(hostile, xxe_file) { refuse_file("xxe-file.xml", "DOCTYPE refused"); }
Test(hostile, billion_laughs) { refuse_file("billion-laughs.xml", "DOCTYPE refused"); }
Test(hostile, doctype_plain) { refuse_file("doctype-plain.xml", "DOCTYPE refused"); }
Test(hostile, doctype_external) { refuse_file("doctype-external.xml", "DOCTYPE refused"); }
Test(hostile, parameter_entity) { refuse_file("parameter-entity.xml", "DOCTYPE refused"); }
Test(hostile, xinclude_not_processed) { refuse_file("xinclude.xml", "outside the FHIR namespace"); }
Test(hostile, undefined_entity) { refuse_file("undefined-entity.xml", "XML:"); }
Test(hostile, duplicate_keys) { refuse_file("duplicate-keys.json", "duplicate"); }
Test(hostile, nul_escape) { refuse_file("nul-escape.json", "\\u0000"); }
Test(hostile, nul_raw_json) { refuse_file("nul-raw.json", "NUL byte"); }
Test(hostile, nul_raw_xml) { refuse_file("nul-raw.xml", "NUL byte"); }
Test(hostile, invalid_utf8_json) { refuse_file("invalid-utf8.json", "UTF-8"); }
Test(hostile, invalid_utf8_xml) { refuse_file("invalid-utf8.xml", "UTF-8"); }

Test(hostile, declared_legacy_encoding_is_not_honoured)
{
	/* FHIR XML is UTF-8: a Latin-1 declaration must not switch converters. */
	const char *doc = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"
			  "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"\xe9\"/></Patient>";
	fhir_error_t err = {0};

	cr_assert_null(fhir_read_xml(doc, strlen(doc), NULL, &err));
	cr_assert(strstr(err.text, "UTF-8"), "%s", err.text);
}

/* ---- no network: a loopback listener must see no connection ---- */

static int listen_loopback(int *port)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 8), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static void assert_no_connection(int fd)
{
	int c = accept(fd, NULL, NULL);
	cr_assert_lt(c, 0, "the parser connected to the loopback listener");
	cr_assert(errno == EAGAIN || errno == EWOULDBLOCK);
	close(fd);
}

/* Copy tmpl into doc with @PORT@ replaced by the listener's port. */
static void subst_port(char *doc, size_t size, const char *tmpl, int port)
{
	const char *at = strstr(tmpl, "@PORT@");

	cr_assert_not_null(at);
	snprintf(doc, size, "%.*s%d%s", (int)(at - tmpl), tmpl, port, at + 6);
}

Test(hostile, xxe_http_no_connection)
{
	static const char *fmts[] = {
		"<?xml version='1.0'?><!DOCTYPE Patient [<!ENTITY x SYSTEM 'http://127.0.0.1:@PORT@/x'>]>"
		"<Patient xmlns='http://hl7.org/fhir'><id value='&x;'/></Patient>",
		"<?xml version='1.0'?><!DOCTYPE Patient SYSTEM 'http://127.0.0.1:@PORT@/p.dtd'>"
		"<Patient xmlns='http://hl7.org/fhir'/>",
		"<?xml version='1.0'?><!DOCTYPE Patient [<!ENTITY %% p SYSTEM 'http://127.0.0.1:@PORT@/p'> %p;]>"
		"<Patient xmlns='http://hl7.org/fhir'/>",
		"<Patient xmlns='http://hl7.org/fhir' xmlns:xi='http://www.w3.org/2001/XInclude'>"
		"<xi:include href='http://127.0.0.1:@PORT@/x'/></Patient>",
		"<Patient xmlns='http://hl7.org/fhir' xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance' "
		"xsi:schemaLocation='http://hl7.org/fhir http://127.0.0.1:@PORT@/fhir.xsd'/>",
	};
	size_t i;

	for (i = 0; i < HB_ARRAY_LEN(fmts); i++) {
		int port, fd = listen_loopback(&port);
		char doc[512];
		fhir_error_t err = {0};
		json_t *t;

		subst_port(doc, sizeof(doc), fmts[i], port);
		t = fhir_read_xml(doc, strlen(doc), NULL, &err);
		/* The schemaLocation case is a valid (empty) Patient: accepted, offline. */
		if (i < 4)
			cr_assert_null(t, "doc %zu accepted", i);
		json_decref(t);
		assert_no_connection(fd);
	}
}

/* ---- depth ---- */

Test(hostile, json_100k_deep)
{
	size_t depth = 100000, i, n = 0;
	char *buf = malloc(depth * 2 + 64);
	fhir_error_t err = {0};

	n += (size_t)sprintf(buf, "{\"resourceType\":\"Patient\",\"x\":");
	for (i = 0; i < depth; i++)
		buf[n++] = '[';
	for (i = 0; i < depth; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	cr_assert_null(fhir_read_json(buf, n, NULL, &err));
	cr_assert(strstr(err.text, "max_depth"), "%s", err.text);
	cr_assert_eq(err.line, 1);
	free(buf);
}

Test(hostile, xml_100k_deep)
{
	size_t depth = 100000, i, n = 0;
	char *buf = malloc(depth * 8 + 128);
	fhir_error_t err = {0};

	n += (size_t)sprintf(buf, "<Patient xmlns=\"http://hl7.org/fhir\">");
	for (i = 0; i < depth; i++)
		n += (size_t)sprintf(buf + n, "<a>");
	for (i = 0; i < depth; i++)
		n += (size_t)sprintf(buf + n, "</a>");
	n += (size_t)sprintf(buf + n, "</Patient>");
	cr_assert_null(fhir_read_xml(buf, n, NULL, &err));
	cr_assert(strstr(err.text, "max_depth"), "%s", err.text);
	free(buf);
}

Test(hostile, depth_limit_is_configurable)
{
	const char *doc = "{\"resourceType\":\"Patient\",\"a\":{\"b\":{\"c\":[1]}}}";
	fhir_limits_t lim;
	fhir_error_t err;
	json_t *t;

	fhir_limits_init(&lim);
	lim.max_depth = 4;
	t = fhir_read_json(doc, strlen(doc), &lim, &err);
	cr_assert_not_null(t, "%s", err.text);
	json_decref(t);
	lim.max_depth = 3;
	cr_assert_null(fhir_read_json(doc, strlen(doc), &lim, &err));
	cr_assert(strstr(err.text, "max_depth limit of 3"), "%s", err.text);
}

/* ---- a 500 MB string, generated lazily: refused after max_size bytes ---- */

struct lazy {
	const char *head, *tail;
	size_t body, produced;
};

static size_t lazy_cb(void *buf, size_t size, void *arg)
{
	struct lazy *l = arg;
	size_t hl = strlen(l->head), tl = strlen(l->tail), total = hl + l->body + tl, n = 0;
	char *out = buf;

	while (n < size && l->produced < total) {
		size_t p = l->produced;
		out[n++] = p < hl ? l->head[p] : p < hl + l->body ? 'A' : l->tail[p - hl - l->body];
		l->produced++;
	}
	return n;
}

static long max_rss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

Test(hostile, json_500mb_string_streamed)
{
	struct lazy l = {"{\"resourceType\":\"Patient\",\"id\":\"", "\"}", 500u << 20, 0};
	fhir_error_t err = {0};

	cr_assert_null(fhir_read_json_cb(lazy_cb, &l, NULL, &err));
	cr_assert(strstr(err.text, "max_size"), "%s", err.text);
	/* Stopped within one read of the 16 MiB limit, nowhere near 500 MB. */
	cr_assert_leq(l.produced, (size_t)FHIR_DEFAULT_MAX_SIZE + 65536, "%zu", l.produced);
	cr_assert_lt(max_rss_kb(), 128 * 1024, "peak RSS %ld kB", max_rss_kb());
}

Test(hostile, xml_500mb_string_streamed)
{
	struct lazy l = {"<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"", "\"/></Patient>",
			 500u << 20, 0};
	fhir_error_t err = {0};

	cr_assert_null(fhir_read_xml_cb(lazy_cb, &l, NULL, &err));
	cr_assert(strstr(err.text, "max_size") || strstr(err.text, "XML:"), "%s", err.text);
	cr_assert_leq(l.produced, (size_t)FHIR_DEFAULT_MAX_SIZE + 65536, "%zu", l.produced);
	cr_assert_lt(max_rss_kb(), 128 * 1024, "peak RSS %ld kB", max_rss_kb());
}

Test(hostile, oversized_buffer_refused_before_parsing)
{
	fhir_limits_t lim;
	fhir_error_t err;
	const char *doc = "{\"resourceType\":\"Patient\",\"id\":\"0123456789\"}";

	fhir_limits_init(&lim);
	lim.max_size = 16;
	cr_assert_null(fhir_read_json(doc, strlen(doc), &lim, &err));
	cr_assert(strstr(err.text, "max_size limit of 16"), "%s", err.text);
	cr_assert_null(fhir_read_xml(doc, strlen(doc), &lim, &err));
	cr_assert(strstr(err.text, "max_size limit of 16"), "%s", err.text);
}

Test(hostile, streamed_valid_resource_is_read)
{
	struct lazy l = {"{\"resourceType\":\"Patient\",\"id\":\"", "\"}", 1000, 0};
	struct lazy x = {"<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"", "\"/></Patient>",
			 1000, 0};
	fhir_error_t err;
	json_t *a = fhir_read_json_cb(lazy_cb, &l, NULL, &err), *b;

	cr_assert_not_null(a, "%s", err.text);
	b = fhir_read_xml_cb(lazy_cb, &x, NULL, &err);
	cr_assert_not_null(b, "%s", err.text);
	cr_assert(json_equal(a, b));
	json_decref(a);
	json_decref(b);
}

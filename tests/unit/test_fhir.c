/* Tests of the FHIR readers: JSON and XML into one tree, Bundles, NDJSON and
 * the hostile-input corpus. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

	snprintf(path, sizeof(path), "%s/tests/fixtures/fhir/%s", srcdir(), name);
	buf = util_read_file(path, 64u << 20, len, err, sizeof(err));
	cr_assert_not_null(buf, "%s", err);
	return buf;
}

static json_t *read_fixture(const char *name, fhir_error_t *err)
{
	size_t len;
	char *buf = load(name, &len);
	json_t *t = fhir_read(buf, len, NULL, err);
	free(buf);
	return t;
}

static void assert_same_tree(const char *base)
{
	char jn[128], xn[128];
	fhir_error_t err = {0};
	json_t *j, *x;

	snprintf(jn, sizeof(jn), "%s.json", base);
	snprintf(xn, sizeof(xn), "%s.xml", base);
	j = read_fixture(jn, &err);
	cr_assert_not_null(j, "%s: %d:%d %s", jn, err.line, err.column, err.text);
	x = read_fixture(xn, &err);
	cr_assert_not_null(x, "%s: %d:%d %s", xn, err.line, err.column, err.text);
	if (!json_equal(j, x)) {
		char *a = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(1));
		char *b = json_dumps(x, JSON_SORT_KEYS | JSON_INDENT(1));
		cr_log_error("JSON:\n%s\nXML:\n%s", a, b);
		free(a);
		free(b);
		cr_assert_fail("%s: the JSON and XML trees differ", base);
	}
	json_decref(j);
	json_decref(x);
}

Test(fhir_equal, patient) { assert_same_tree("patient"); }
Test(fhir_equal, medicationrequest_codeable_concept) { assert_same_tree("medicationrequest-cc"); }
Test(fhir_equal, medicationrequest_contained) { assert_same_tree("medicationrequest-contained"); }
Test(fhir_equal, bundle_transaction) { assert_same_tree("bundle-transaction"); }
Test(fhir_equal, bundle_message) { assert_same_tree("bundle-message"); }
Test(fhir_equal, bundle_searchset) { assert_same_tree("bundle-searchset"); }
Test(fhir_equal, bundle_history) { assert_same_tree("bundle-history"); }
Test(fhir_equal, medicationrequest_bench) { assert_same_tree("medicationrequest-bench"); }

Test(fhir_xml, types_arrays_and_primitive_extensions)
{
	fhir_error_t err;
	json_t *p = read_fixture("patient.xml", &err), *name0, *ug;

	cr_assert_not_null(p, "%s", err.text);
	cr_assert_str_eq(fhir_resource_type(p), "Patient");
	cr_assert(json_is_true(json_object_get(p, "active")));
	cr_assert(json_is_false(json_object_get(p, "deceasedBoolean")));
	cr_assert(json_is_integer(json_object_get(p, "multipleBirthInteger")));
	cr_assert(json_is_integer(json_object_get(json_array_get(json_object_get(p, "telecom"), 0), "rank")));
	/* one <profile> is still an array; one <managingOrganization> is not */
	cr_assert(json_is_array(json_object_get(json_object_get(p, "meta"), "profile")));
	cr_assert(json_is_object(json_object_get(p, "managingOrganization")));
	name0 = json_array_get(json_object_get(p, "name"), 0);
	ug = json_object_get(name0, "_given");
	cr_assert_eq(json_array_size(ug), 2);
	cr_assert(json_is_null(json_array_get(ug, 0)));
	cr_assert(json_is_object(json_array_get(ug, 1)));
	cr_assert(json_is_object(json_object_get(p, "_birthDate")));
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(p, "text"), "div")),
			 "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Test patient <b>Example</b></p></div>");
	json_decref(p);
}

Test(fhir_xml, decimals_follow_json_number_rules)
{
	fhir_error_t err;
	json_t *mr = read_fixture("medicationrequest-cc.xml", &err), *q;

	cr_assert_not_null(mr, "%s", err.text);
	q = json_object_get(json_object_get(mr, "dispenseRequest"), "quantity");
	cr_assert(json_is_real(json_object_get(q, "value")));
	cr_assert_float_eq(json_real_value(json_object_get(q, "value")), 30.5, 1e-12);
	json_decref(mr);
}

Test(fhir_xml, bad_primitive_values)
{
	static const char *docs[] = {
		"<Patient xmlns='http://hl7.org/fhir'><active value='yes'/></Patient>",
		"<Patient xmlns='http://hl7.org/fhir'><multipleBirthInteger value='1.5'/></Patient>",
		"<Patient xmlns='http://hl7.org/fhir'><active/></Patient>",
		"<Patient xmlns='http://hl7.org/fhir'><gender value='x'/><gender value='y'/></Patient>",
		"<Patient xmlns='http://hl7.org/fhir'>free text</Patient>",
		"<Patient><id value='x'/></Patient>",
		"<Patient xmlns='http://hl7.org/fhir'><foo xmlns='urn:other'/></Patient>",
		"<Bundle xmlns='http://hl7.org/fhir'><type value='collection'/><entry><resource/></entry></Bundle>",
		"<Patient xmlns='http://hl7.org/fhir'><managingOrganization value='x'/></Patient>",
	};
	size_t i;

	for (i = 0; i < HB_ARRAY_LEN(docs); i++) {
		fhir_error_t err = {0};
		json_t *t = fhir_read_xml(docs[i], strlen(docs[i]), NULL, &err);
		cr_expect_null(t, "doc %zu accepted", i);
		cr_expect_neq(err.text[0], '\0', "doc %zu: no error text", i);
		json_decref(t);
	}
}

Test(fhir_json, root_checks)
{
	static const char *docs[] = {"[]", "{}", "{\"resourceType\":5}", "\"x\"", "{\"resourceType\":\"Patient\"} x"};
	size_t i;

	for (i = 0; i < HB_ARRAY_LEN(docs); i++) {
		fhir_error_t err = {0};
		json_t *t = fhir_read_json(docs[i], strlen(docs[i]), NULL, &err);
		cr_expect_null(t, "doc %zu accepted", i);
		cr_expect_neq(err.text[0], '\0');
		json_decref(t);
	}
}

Test(fhir_read, sniffs_syntax_and_skips_bom)
{
	const char *j = "\xEF\xBB\xBF {\"resourceType\":\"Patient\",\"id\":\"a\"}";
	const char *x = "\xEF\xBB\xBF<Patient xmlns='http://hl7.org/fhir'><id value='a'/></Patient>";
	fhir_error_t err;
	json_t *a = fhir_read(j, strlen(j), NULL, &err), *b;

	cr_assert_not_null(a, "%s", err.text);
	b = fhir_read(x, strlen(x), NULL, &err);
	cr_assert_not_null(b, "%s", err.text);
	cr_assert(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	cr_assert_null(fhir_read("MSH|^~\\&|", 10, NULL, &err));
	cr_assert(strstr(err.text, "neither"), "%s", err.text);
}

Test(fhir_bundle, transaction_entries_with_full_urls)
{
	fhir_error_t err;
	json_t *b = read_fixture("bundle-transaction.json", &err);
	fhir_bundle_iter_t it;
	fhir_entry_t e;
	int n = 0, rc;

	cr_assert_not_null(b, "%s", err.text);
	cr_assert_eq(fhir_bundle_iter_init(&it, b, &err), 0, "%s", err.text);
	cr_assert_str_eq(fhir_bundle_type(b), "transaction");
	while ((rc = fhir_bundle_next(&it, &e, &err)) == 1) {
		cr_assert_eq(e.index, (size_t)n);
		if (n < 3) {
			cr_assert_not_null(e.full_url);
			cr_assert(strncmp(e.full_url, "urn:uuid:", 9) == 0);
			cr_assert_not_null(e.resource);
		} else {
			cr_assert_null(e.full_url);
			cr_assert_null(e.resource); /* DELETE carries no resource */
		}
		n++;
	}
	cr_assert_eq(rc, 0);
	cr_assert_eq(n, 4);
	json_decref(b);
}

Test(fhir_bundle, searchset_and_history_from_xml)
{
	fhir_error_t err;
	json_t *s = read_fixture("bundle-searchset.xml", &err), *h;
	fhir_bundle_iter_t it;
	fhir_entry_t e;

	cr_assert_not_null(s, "%s", err.text);
	cr_assert_eq(fhir_bundle_iter_init(&it, s, &err), 0, "%s", err.text);
	cr_assert_eq(fhir_bundle_next(&it, &e, &err), 1);
	cr_assert_str_eq(e.full_url, "http://example.org/fhir/MedicationRequest/mr-31");
	cr_assert(json_is_real(json_object_get(json_object_get(e.entry, "search"), "score")));
	cr_assert(json_is_integer(json_object_get(s, "total")));
	json_decref(s);

	h = read_fixture("bundle-history.xml", &err);
	cr_assert_not_null(h, "%s", err.text);
	cr_assert_eq(fhir_bundle_iter_init(&it, h, &err), 0, "%s", err.text);
	cr_assert_eq(fhir_bundle_next(&it, &e, &err), 1);
	cr_assert_not_null(e.resource);
	cr_assert_eq(fhir_bundle_next(&it, &e, &err), 1);
	cr_assert_null(e.resource); /* a deletion in the history */
	cr_assert_str_eq(e.full_url, "http://example.org/fhir/Patient/pat-4");
	cr_assert_eq(fhir_bundle_next(&it, &e, &err), 0);
	json_decref(h);
}

Test(fhir_bundle, every_bundle_type)
{
	static const char *types[] = {"transaction", "batch", "collection", "searchset",
				      "history", "document", "transaction-response",
				      "batch-response"};
	size_t i;

	for (i = 0; i < HB_ARRAY_LEN(types); i++) {
		json_t *b = json_pack("{s:s, s:s, s:[{s:s, s:{s:s, s:s}}]}", "resourceType",
				      "Bundle", "type", types[i], "entry", "fullUrl",
				      "http://x.org/fhir/Patient/1", "resource", "resourceType",
				      "Patient", "id", "1");
		fhir_bundle_iter_t it;
		fhir_entry_t e;
		fhir_error_t err;
		cr_assert_eq(fhir_bundle_iter_init(&it, b, &err), 0, "%s: %s", types[i], err.text);
		cr_assert_eq(fhir_bundle_next(&it, &e, &err), 1);
		cr_assert_str_eq(e.full_url, "http://x.org/fhir/Patient/1");
		cr_assert_eq(fhir_bundle_next(&it, &e, &err), 0);
		json_decref(b);
	}
}

Test(fhir_bundle, message_and_malformed)
{
	fhir_error_t err;
	json_t *b = read_fixture("bundle-message.xml", &err);
	fhir_bundle_iter_t it;
	fhir_entry_t e;

	cr_assert_not_null(b, "%s", err.text);
	cr_assert_eq(fhir_bundle_iter_init(&it, b, &err), 0, "%s", err.text);
	cr_assert_eq(fhir_bundle_next(&it, &e, &err), 1);
	cr_assert_str_eq(fhir_resource_type(e.resource), "MessageHeader");
	/* A message Bundle must start with its MessageHeader. */
	json_array_remove(json_object_get(b, "entry"), 0);
	cr_assert_eq(fhir_bundle_iter_init(&it, b, &err), -1);
	cr_assert(strstr(err.text, "MessageHeader"));
	json_object_set_new(b, "type", json_string("bogus"));
	cr_assert_eq(fhir_bundle_iter_init(&it, b, &err), -1);
	json_object_set_new(b, "type", json_string("collection"));
	json_array_append_new(json_object_get(b, "entry"), json_string("not an entry"));
	cr_assert_eq(fhir_bundle_iter_init(&it, b, &err), 0);
	cr_assert_eq(fhir_bundle_next(&it, &e, &err), 1);
	cr_assert_eq(fhir_bundle_next(&it, &e, &err), 1);
	cr_assert_eq(fhir_bundle_next(&it, &e, &err), -1);
	cr_assert(strstr(err.text, "entry[2]"), "%s", err.text);
	json_decref(b);
	b = json_pack("{s:s}", "resourceType", "Patient");
	cr_assert_eq(fhir_bundle_iter_init(&it, b, &err), -1);
	json_decref(b);
}

Test(fhir_ndjson, one_resource_per_line_with_line_numbers)
{
	size_t len, line = 0;
	char *buf = load("patients.ndjson", &len);
	fhir_ndjson_t nd;
	fhir_error_t err;
	json_t *r;
	int rc, ok = 0, bad = 0;
	size_t ok_lines[4], bad_line = 0;

	fhir_ndjson_init(&nd, buf, len, NULL);
	while ((rc = fhir_ndjson_next(&nd, &r, &line, &err)) != 0) {
		if (rc == 1) {
			ok_lines[ok++] = line;
			json_decref(r);
		} else {
			bad++;
			bad_line = (size_t)err.line;
			cr_assert_eq(line, (size_t)err.line);
		}
	}
	cr_assert_eq(ok, 3);
	cr_assert_eq(bad, 1);
	cr_assert_eq(ok_lines[0], 1);
	cr_assert_eq(ok_lines[1], 3);
	cr_assert_eq(ok_lines[2], 5);
	cr_assert_eq(bad_line, 4);
	free(buf);
}

Test(fhir_ndjson, crlf_and_no_final_newline)
{
	const char *s = "{\"resourceType\":\"Patient\"}\r\n\r\n{\"resourceType\":\"Medication\"}";
	fhir_ndjson_t nd;
	fhir_error_t err;
	json_t *r;
	size_t line;

	fhir_ndjson_init(&nd, s, strlen(s), NULL);
	cr_assert_eq(fhir_ndjson_next(&nd, &r, &line, &err), 1, "%s", err.text);
	json_decref(r);
	cr_assert_eq(fhir_ndjson_next(&nd, &r, &line, &err), 1, "%s", err.text);
	cr_assert_eq(line, 3);
	cr_assert_str_eq(fhir_resource_type(r), "Medication");
	json_decref(r);
	cr_assert_eq(fhir_ndjson_next(&nd, &r, &line, &err), 0);
}

/* ---- canonical hash (the ledger key of a resource) ---- */

#include <openssl/evp.h>

static void expect_same_hash(json_t *v, const char *what)
{
	uint8_t want[32], got[32];
	unsigned int n = 0;
	char *dump = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	cr_assert_not_null(dump, "%s", what);
	EVP_Digest(dump, strlen(dump), want, &n, EVP_sha256(), NULL);
	cr_assert_eq(fhir_canonical_sha256(v, got), 0, "%s", what);
	cr_assert_eq(memcmp(want, got, 32), 0, "%s: canonical hash differs from json_dumps %s", what,
		     strlen(dump) < 300 ? dump : "(long)");
	free(dump);
}

Test(fhir, canonical_hash_is_the_hash_of_the_sorted_compact_dump)
{
	static const char *tricky =
		"{\"zeta\":1,\"Alpha\":[],\"alpha\":{},\"\\u00e9t\\u00e9\":\"caf\\u00e9 \\ud83d\\ude00\","
		"\"_\":null,\"aa\":true,\"a\":false,\"a b\":\"tab\\there\\nnl\\rcr\\bbs\\fff\","
		"\"ctl\":\"\\u0001\\u001f\\u007f q\\\" bs\\\\ sl/\",\"ints\":[0,-1,9007199254740993,"
		"-9223372036854775808,9223372036854775807],\"reals\":[0.1,1e300,-0.0,39.78,1.0,1e-7,"
		"-89.65,2.5e-308],\"deep\":[[[[{\"b\":[{}],\"a\":[[]]}]]]]}";
	json_error_t je;
	json_t *v = json_loads(tricky, 0, &je);
	cr_assert_not_null(v, "%s", je.text);
	expect_same_hash(v, "tricky values");
	/* more keys than the stack array holds, and a string longer than the buffer */
	json_t *big = json_object();
	char key[16];
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "k%03d", (i * 37) % 100);
		json_object_set_new(big, key, json_integer(i));
	}
	char *longs = malloc(10000);
	for (int i = 0; i < 9999; i++)
		longs[i] = (char)(i % 50 == 0 ? '\n' : 'a' + i % 26);
	longs[9999] = '\0';
	json_object_set_new(big, "long", json_string(longs));
	json_object_set(big, "nested", v);
	expect_same_hash(big, "wide object, long string");
	free(longs);
	json_decref(big);
	json_decref(v);
	/* the shipped samples */
	const char *samples[] = { "medicationrequest.json", "patient.json", "bundle.json" };
	for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
		char path[1024], err[256];
		size_t len;
		snprintf(path, sizeof path, "%s/samples/fhir/%s", srcdir(), samples[i]);
		char *buf = util_read_file(path, 1u << 20, &len, err, sizeof err);
		cr_assert_not_null(buf, "%s", err);
		json_t *r = json_loadb(buf, len, 0, &je);
		cr_assert_not_null(r, "%s: %s", samples[i], je.text);
		expect_same_hash(r, samples[i]);
		json_decref(r);
		free(buf);
	}
}

/*
 * The Schema Registry is real: register an Avro schema, fetch it back by id,
 * and have an incompatible change refused under BACKWARD compatibility,
 * through the Confluent REST API that hl7bridge's registry client speaks.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"

#define SCHEMA_V1 \
	"{\"type\":\"record\",\"name\":\"Probe\",\"namespace\":\"com.covermymeds.healthcare\"," \
	"\"fields\":[{\"name\":\"eventId\",\"type\":\"string\"}]}"
/* Adds a field with a default: readers of v2 can read v1 data (BACKWARD-compatible). */
#define SCHEMA_V2_OK \
	"{\"type\":\"record\",\"name\":\"Probe\",\"namespace\":\"com.covermymeds.healthcare\"," \
	"\"fields\":[{\"name\":\"eventId\",\"type\":\"string\"}," \
	"{\"name\":\"source\",\"type\":[\"null\",\"string\"],\"default\":null}]}"
/* Adds a required field without a default: v1 data cannot be read (incompatible). */
#define SCHEMA_V2_BAD \
	"{\"type\":\"record\",\"name\":\"Probe\",\"namespace\":\"com.covermymeds.healthcare\"," \
	"\"fields\":[{\"name\":\"eventId\",\"type\":\"string\"}," \
	"{\"name\":\"patientId\",\"type\":\"string\"}]}"

static char *schema_body(const char *schema)
{
	json_t *o = json_pack("{s:s, s:s}", "schema", schema, "schemaType", "AVRO");
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static long call(const char *method, const char *path, const char *body, json_t **out)
{
	char url[1024], *resp = NULL;
	json_error_t jerr;
	long st;

	snprintf(url, sizeof url, "%s%s", itest_registry_url(), path);
	/* The test registry's embedded H2 store answers 500 when concurrent
	 * writes time out on a table lock; retry those as any client would. */
	for (int attempt = 0;; attempt++) {
		st = itest_http(method, url, body, &resp);
		if (st < 500 || attempt == 3)
			break;
		free(resp);
		usleep(200000);
	}
	cr_assert_neq(st, -1, "%s %s: no answer from the registry", method, url);
	*out = json_loads(resp, 0, &jerr);
	cr_assert_not_null(*out, "%s %s -> %ld, not JSON: %.200s", method, path, st, resp);
	free(resp);
	return st;
}

static long register_schema(const char *subject, const char *schema, json_t **out)
{
	char path[512];
	char *body = schema_body(schema);
	long st;
	snprintf(path, sizeof path, "/subjects/%s/versions", subject);
	st = call("POST", path, body, out);
	free(body);
	return st;
}

Test(registry, register_fetch_and_refuse_incompatible, .timeout = 120)
{
	char subject[128], path[512];
	json_t *r, *v1, *got;
	json_int_t id1;
	long st;

	itest_unique_name(subject, sizeof subject, "itest-value");

	snprintf(path, sizeof path, "/config/%s", subject);
	st = call("PUT", path, "{\"compatibility\":\"BACKWARD\"}", &r);
	cr_assert_eq(st, 200, "PUT config -> %ld", st);
	cr_expect_str_eq(json_string_value(json_object_get(r, "compatibility")), "BACKWARD");
	json_decref(r);

	st = register_schema(subject, SCHEMA_V1, &r);
	cr_assert_eq(st, 200, "register v1 -> %ld", st);
	id1 = json_integer_value(json_object_get(r, "id"));
	cr_assert_gt(id1, 0);
	json_decref(r);

	/* Registering the same schema again returns the same id. */
	st = register_schema(subject, SCHEMA_V1, &r);
	cr_assert_eq(st, 200);
	cr_expect_eq(json_integer_value(json_object_get(r, "id")), id1);
	json_decref(r);

	snprintf(path, sizeof path, "/schemas/ids/%lld", (long long)id1);
	st = call("GET", path, NULL, &r);
	cr_assert_eq(st, 200, "GET schema -> %ld", st);
	got = json_loads(json_string_value(json_object_get(r, "schema")), 0, NULL);
	v1 = json_loads(SCHEMA_V1, 0, NULL);
	cr_assert_not_null(got);
	cr_expect(json_equal(got, v1), "the registry returned a different schema");
	json_decref(got);
	json_decref(v1);
	json_decref(r);

	/* The compatibility endpoint and the registration agree. */
	snprintf(path, sizeof path, "/compatibility/subjects/%s/versions/latest", subject);
	{
		char *body = schema_body(SCHEMA_V2_BAD);
		st = call("POST", path, body, &r);
		free(body);
	}
	cr_assert_eq(st, 200, "compatibility check -> %ld", st);
	cr_expect(json_is_false(json_object_get(r, "is_compatible")));
	json_decref(r);

	st = register_schema(subject, SCHEMA_V2_BAD, &r);
	cr_expect_eq(st, 409, "incompatible change accepted with status %ld", st);
	json_decref(r);

	st = register_schema(subject, SCHEMA_V2_OK, &r);
	cr_expect_eq(st, 200, "compatible change refused with status %ld", st);
	cr_expect_neq(json_integer_value(json_object_get(r, "id")), id1);
	json_decref(r);
}

/* hl7bridge's own client against the same registry. */
#include "publish/registry.h"

Test(registry, client_registers_caches_and_frames, .timeout = 60)
{
	char subject[128], err[512];
	struct registry *r = registry_new(itest_registry_url(), NULL, NULL, 10000, err, sizeof err);
	int32_t id = 0, again = 0;
	char *schema = NULL;
	uint8_t hdr[REGISTRY_WIRE_HEADER];

	cr_assert_not_null(r, "%s", err);
	itest_unique_name(subject, sizeof subject, "itest-client-value");
	cr_assert_eq(registry_register(r, subject, SCHEMA_V1, &id, err, sizeof err), 0, "%s", err);
	cr_assert_gt(id, 0);
	cr_assert_eq(registry_register(r, subject, SCHEMA_V1, &again, err, sizeof err), 0, "%s", err);
	cr_assert_eq(again, id);
	cr_assert_eq(registry_fetch(r, id, &schema, err, sizeof err), 0, "%s", err);
	json_t *a = json_loads(schema, 0, NULL), *b = json_loads(SCHEMA_V1, 0, NULL);
	cr_expect(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	free(schema);

	registry_wire_header(hdr, id);
	cr_assert_eq(hdr[0], 0);
	cr_assert_eq(registry_wire_id(hdr, sizeof hdr), id);
	cr_assert_eq(registry_wire_id("x", 1), -1);

	cr_assert_eq(registry_fetch(r, 987654321, &schema, err, sizeof err), -1);
	cr_assert(strstr(err, "HTTP 404") != NULL, "%s", err);
	registry_free(r);
}

Test(registry, unreachable_registry_is_a_clear_error, .timeout = 60)
{
	char err[512];
	int32_t id;
	/* Port 1 on loopback: nothing listens there. */
	struct registry *r = registry_new("http://127.0.0.1:1", NULL, NULL, 2000, err, sizeof err);
	cr_assert_not_null(r);
	cr_assert_eq(registry_register(r, "s-value", SCHEMA_V1, &id, err, sizeof err), -1);
	cr_assert(strstr(err, "127.0.0.1:1") != NULL, "%s", err);
	registry_free(r);
}

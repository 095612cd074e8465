/* Avro encoding: our bytes decode with another ecosystem's decoder
 * (fastavro, tests/map/avro_check.py) to the very JSON event, and fastavro's
 * encoding of that JSON is byte-identical to ours. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "map/input.h"
#include "map/map_int.h"
#include "map_test_source.h"
#include "util.h"

static const char *srcdir(void)
{
	return getenv("HB_SRCDIR") ? getenv("HB_SRCDIR") : HB_SRCDIR;
}

struct dump {
	const char *dir;
	int n;
	char schema[256];
	char args[16384];
};

static int dump_cb(const struct map_event *ev, void *opaque)
{
	struct dump *d = opaque;
	char path[512], err[256];
	unsigned char buf[8192];
	ssize_t len = map_event_avro(ev, buf, sizeof(buf), err, sizeof(err));
	cr_assert(len > 0, "%s", err);
	/* too small a buffer is an error, not a short write */
	cr_assert_eq(map_event_avro(ev, buf, 8, err, sizeof(err)), -1);
	cr_assert(strstr(err, "too small"), "%s", err);
	snprintf(path, sizeof(path), "%s/%d.avro", d->dir, d->n);
	FILE *f = fopen(path, "wb");
	fwrite(buf, 1, (size_t)len, f);
	fclose(f);
	snprintf(d->args + strlen(d->args), sizeof(d->args) - strlen(d->args), " %s", path);
	snprintf(path, sizeof(path), "%s/%d.json", d->dir, d->n);
	json_t *obj = map_event_object(ev);
	json_dump_file(obj, path, 0);
	json_decref(obj);
	snprintf(d->args + strlen(d->args), sizeof(d->args) - strlen(d->args), " %s", path);
	snprintf(d->schema, sizeof(d->schema), "%s", ((const struct map_schema *)ev->schema)->file);
	d->n++;
	return 0;
}

static const char *python(void)
{
	static char venv[1024];
	if (getenv("HB_PYTHON"))
		return getenv("HB_PYTHON");
	snprintf(venv, sizeof(venv), "%s/tests/map/.venv/bin/python", srcdir());
	return access(venv, X_OK) == 0 ? venv : "python3";
}

static void check_with_fastavro(struct dump *d)
{
	char cmd[20000];
	snprintf(cmd, sizeof(cmd), "%s %s/tests/map/avro_check.py %s%s", python(), srcdir(),
		 d->schema, d->args);
	int st = system(cmd);
	cr_assert(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77) {
		/* the decoder installs itself (PyPI, into tests/map/.venv), as the
		 * integration tests' npm packages do; only without a network is the
		 * check skipped, and it says so */
		char setup[2048];
		snprintf(setup, sizeof(setup), "%s/tests/map/setup.sh >&2", srcdir());
		if (system(setup) == 0) {
			snprintf(cmd, sizeof(cmd), "%s %s/tests/map/avro_check.py %s%s", python(),
				 srcdir(), d->schema, d->args);
			st = system(cmd);
			cr_assert(WIFEXITED(st));
		}
	}
	if (WEXITSTATUS(st) == 77)
		cr_skip_test("fastavro missing and tests/map/setup.sh failed: Avro interop not checked");
	cr_assert_eq(WEXITSTATUS(st), 0, "fastavro disagrees with our Avro bytes");
}

Test(map_avro, prescription_events_decode_with_fastavro)
{
	const char *dir = mt_tmpdir();
	struct map_diag dg = { 0 };
	mt_write(dir, "rx.map", "mapping rx\nsource test\nevent prescription\neach orders\n"
				"type 'prescription.created'\n"
				"data.prescriptionId = id\ndata.patientId = pid\n"
				"data.medicationReference.display = name\n"
				"metadata.source = src\nmetadata.version = '1.0.0'\n");
	struct map_set *s = mt_load(dir, &dg);
	cr_assert(s, "%s", dg.text);
	struct dump d = { .dir = dir };
	json_t *in = json_loads("{\"pid\":\"P1\",\"src\":\"pharm\",\"orders\":[{\"id\":\"O1\","
				"\"name\":\"Ibuprof\\u00e8ne 200 mg \\u2014 \\ud83d\\udc8a\"},{\"id\":\"O2\"}]}",
				0, NULL);
	struct { json_t *root, *item; } scope = { in, in };
	struct map_input mi = { .ops = &map_test_source, .scope = &scope, .ledger_key = "L",
				.ledger_key_len = 1, .message_id = NULL, .now_ms = 1764200000123 };
	struct map_reject rej;
	cr_assert_eq(map_apply(s, &mi, 0, dump_cb, &d, NULL, &rej), MAP_OK, "%s",
		     rej.reason);
	cr_assert_eq(d.n, 2);
	check_with_fastavro(&d);
	json_decref(in);
	map_set_free(s);
}

Test(map_avro, patient_events_with_arrays_and_nulls_decode_with_fastavro)
{
	const char *dir = mt_tmpdir();
	struct map_diag dg = { 0 };
	mt_write(dir, "p.map", "mapping p\nsource test\nevent patient\ntype 'patient.updated'\n"
			       "data.patientId = id\n"
			       "data.identifiers[] = each ids { \n value = .v\n system = .s\n}\n"
			       "data.name.given[] = given\n"
			       "data.address[] = each addr {\n line[] = .l\n city = .c\n}\n"
			       "data.gender = g\n"
			       "metadata.source = 'x'\n");
	struct map_set *s = mt_load(dir, &dg);
	cr_assert(s, "%s", dg.text);
	struct dump d = { .dir = dir };
	const char *inputs[] = {
		"{\"id\":\"P1\",\"ids\":[{\"v\":\"1\",\"s\":\"S\"},{\"v\":\"2\"}],\"given\":[\"A\",\"B\"],"
		"\"addr\":[{\"l\":[\"1 St\",\"Apt 2\"],\"c\":\"Town\"}],\"g\":\"female\"}",
		"{\"id\":\"P2\"}",
	};
	for (size_t i = 0; i < 2; i++) {
		json_t *in = json_loads(inputs[i], 0, NULL);
		struct { json_t *root, *item; } scope = { in, in };
		struct map_input mi = { .ops = &map_test_source, .scope = &scope, .ledger_key = "L",
					.ledger_key_len = 1, .message_id = "M", .now_ms = 0 };
		struct map_reject rej;
		cr_assert_eq(map_apply(s, &mi, 0, dump_cb, &d, NULL, &rej), MAP_OK, "%s", rej.reason);
		json_decref(in);
	}
	check_with_fastavro(&d);
	map_set_free(s);
}

/* Every event the shipped mappings make of the shipped samples. */
struct per_schema {
	struct dump prescription, patient;
	const struct map_set *set;
};

static int shipped_event_cb(const struct map_event *ev, void *opaque)
{
	struct per_schema *ps = opaque;
	const char *name = map_schema_fullname(ev->schema);
	return dump_cb(ev, strstr(name, "Patient") ? &ps->patient : &ps->prescription);
}

static int shipped_input_cb(const struct map_input *in, const char *label, void *opaque)
{
	struct per_schema *ps = opaque;
	struct map_reject rej;
	if (!in)
		return 0;
	enum map_result r = map_apply(ps->set, in, 0, shipped_event_cb, ps, NULL, &rej);
	cr_assert(r == MAP_OK || r == MAP_UNMATCHED, "%s: %s", label, rej.reason);
	return 0;
}

Test(map_avro, every_shipped_sample_decodes_with_fastavro)
{
	struct map_set *s = mt_load_shipped();
	struct per_schema ps = { .set = s };
	ps.prescription.dir = strdup(mt_tmpdir()); /* mt_tmpdir reuses its buffer */
	ps.patient.dir = strdup(mt_tmpdir());
	const char *files[] = { "hl7v2/rde_o11.hl7", "hl7v2/omp_o09.hl7", "hl7v2/orm_o01.hl7",
				"hl7v2/rds_o13.hl7", "hl7v2/ras_o17.hl7", "hl7v2/adt_a01.hl7",
				"hl7v2/adt_a08.hl7", "hl7v2/adt_a40.hl7", "fhir/bundle.json",
				"fhir/medicationrequest_contained.json", "fhir/patient.json",
				"fhir/patients.ndjson" };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[1200], err[256];
		size_t len;
		snprintf(path, sizeof(path), "%s/samples/%s", srcdir(), files[i]);
		char *buf = util_read_file(path, 1 << 20, &len, err, sizeof(err));
		cr_assert(buf, "%s", err);
		cr_assert_eq(map_input_each(files[i], buf, len, 0, shipped_input_cb, &ps, err,
					    sizeof(err)), 0, "%s", err);
		free(buf);
	}
	cr_assert_geq(ps.prescription.n, 6);
	cr_assert_geq(ps.patient.n, 6);
	check_with_fastavro(&ps.prescription);
	check_with_fastavro(&ps.patient);
	free((char *)ps.prescription.dir);
	free((char *)ps.patient.dir);
	map_set_free(s);
}

/* What a registry answers for our id must give our binary layout: key order
 * and whitespace do not matter, field order and extra fields do. */
static char *variant(const char *text, int how)
{
	json_t *root = json_loads(text, 0, NULL);
	json_t *fields = json_object_get(root, "fields");
	cr_assert(json_is_array(fields));
	if (how == 1) { /* the top-level fields sorted by name, as Apicurio's canonical form does */
		size_t n = json_array_size(fields);
		for (size_t i = 0; i < n; i++)
			for (size_t j = i + 1; j < n; j++) {
				const char *a = json_string_value(json_object_get(json_array_get(fields, i), "name"));
				const char *b = json_string_value(json_object_get(json_array_get(fields, j), "name"));
				if (strcmp(a, b) > 0) {
					json_t *fa = json_incref(json_array_get(fields, i));
					json_t *fb = json_incref(json_array_get(fields, j));
					json_array_set_new(fields, i, fb);
					json_array_set_new(fields, j, fa);
				}
			}
	} else if (how == 2) { /* one more field */
		json_array_append_new(fields, json_pack("{s:s, s:s}", "name", "extra", "type", "string"));
	} else if (how == 3) { /* one field less */
		json_array_remove(fields, json_array_size(fields) - 1);
	}
	char *out = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(3));
	json_decref(root);
	return out;
}

Test(map_avro, registry_schema_layout_check)
{
	char path[512], err[256];
	snprintf(path, sizeof(path), "%s/conf/schemas/prescription_event.avsc", srcdir());
	struct map_schema *sc = map_schema_load(path, err, sizeof(err));
	cr_assert_not_null(sc, "%s", err);
	const char *text = map_schema_text(sc);

	cr_assert_eq(map_schema_same_layout(sc, text, strlen(text)), 1);
	const int want[] = { 1, 0, 0, 0 }; /* reformatted, sorted fields, extra, missing */
	for (int how = 0; how < 4; how++) {
		char *v = variant(text, how);
		cr_assert_eq(map_schema_same_layout(sc, v, strlen(v)), want[how], "variant %d", how);
		free(v);
	}
	cr_assert_eq(map_schema_same_layout(sc, "not a schema", 12), -1);
	map_schema_free(sc);
}

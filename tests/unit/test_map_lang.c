/* The mapping language against a tiny in-test source (map_test_source.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "map/map_int.h"
#include "map_test_source.h"

static const char *RX =
	"mapping  rx\n"
	"source   test\n"
	"when     kind = \"RDE\" and ver in (\"O11\", \"O25\")\n"
	"event    prescription\n"
	"type     \"prescription.\" + lookup(ctl, order_control, \"created\")\n"
	"\n"
	"data.prescriptionId = order ?? alt ?? msgid   required\n"
	"data.medicationReference.code = code required\n"
	"data.medicationReference.system = codesystem(csys)\n"
	"data.patientId = pid\n"
	"data.dateWritten = datetime(written)\n"
	"data.status = lookup(st, order_status, \"active\")\n"
	"metadata.source = lower(app)\n"
	"metadata.version = \"1.0.0\"\n"
	"use tables/codesystems.tbl\n"
	"\n"
	"table order_control\n"
	"  NW = created\n"
	"  CA = cancelled\n"
	"end\n"
	"table order_status\n"
	"  IP = active\n"
	"end\n";

static const char *CS = "table codesystems\n  RXNORM = http://www.nlm.nih.gov/research/umls/rxnorm\n"
			"  NDC = http://hl7.org/fhir/sid/ndc\nend\n";

static struct map_set *load_rx(void)
{
	const char *dir = mt_tmpdir();
	struct map_diag d = { 0 };
	mt_write(dir, "rx.map", RX);
	mt_write(dir, "tables/codesystems.tbl", CS);
	struct map_set *s = mt_load(dir, &d);
	cr_assert(s, "load failed: %s", d.text ? d.text : "");
	map_diag_clear(&d);
	return s;
}

static const char *str_at(json_t *o, const char *path)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	json_t *v = o;
	for (char *tok = strtok(buf, "."); tok && v; tok = strtok(NULL, "."))
		v = json_object_get(v, tok);
	return json_string_value(v);
}

Test(map_lang, rde_like_event)
{
	struct map_set *s = load_rx();
	enum map_result res;
	struct map_reject rej;
	json_t *out = mt_apply(s, "{\"kind\":\"RDE\",\"ver\":\"O11\",\"ctl\":\"CA\",\"alt\":\"A7\","
				  "\"msgid\":\"M1\",\"code\":\"1000006\",\"csys\":\"rxnorm\","
				  "\"pid\":\"P1\",\"written\":\"202611270215-0500\",\"app\":\"PHARM\"}",
			       &res, &rej, 0);
	cr_assert_eq(res, MAP_OK, "%s", rej.reason);
	cr_assert_eq(json_array_size(out), 1);
	json_t *o = json_array_get(out, 0);
	cr_assert_str_eq(str_at(o, "topic"), "healthcare.prescription.cancelled");
	cr_assert_str_eq(str_at(o, "key"), "P1");
	json_t *e = json_object_get(o, "event");
	cr_assert_str_eq(str_at(e, "eventType"), "prescription.cancelled");
	cr_assert_str_eq(str_at(e, "data.prescriptionId"), "A7");
	cr_assert_str_eq(str_at(e, "data.medicationReference.system"),
			 "http://www.nlm.nih.gov/research/umls/rxnorm");
	cr_assert_str_eq(str_at(e, "data.medicationReference.display"), "");
	cr_assert_str_eq(str_at(e, "data.dateWritten"), "2026-11-27T02:15-05:00");
	cr_assert_str_eq(str_at(e, "data.status"), "active");
	cr_assert_str_eq(str_at(e, "metadata.source"), "pharm");
	cr_assert_str_eq(str_at(e, "lineage.mapping"), "rx");
	cr_assert_str_eq(str_at(e, "lineage.sourceMessageId"), "M1");
	cr_assert_eq(strlen(str_at(e, "eventId")), 36);
	cr_assert_eq(str_at(e, "eventId")[14], '5');
	json_decref(out);
	map_set_free(s);
}

Test(map_lang, unmatched_and_required)
{
	struct map_set *s = load_rx();
	enum map_result res;
	struct map_reject rej;
	cr_assert_null(mt_apply(s, "{\"kind\":\"ADT\"}", &res, &rej, 0));
	cr_assert_eq(res, MAP_UNMATCHED);
	cr_assert_eq(rej.err_code, 200);
	cr_assert_str_eq(rej.reason, "no mapping accepts this message type");
	cr_assert_null(mt_apply(s, "{\"kind\":\"RDE\",\"ver\":\"O25\",\"order\":\"O1\","
				   "\"pid\":\"SECRET-PATIENT\"}", &res, &rej, 0));
	cr_assert_eq(res, MAP_REJECTED);
	cr_assert_eq(rej.err_code, 101);
	cr_assert_str_eq(rej.target, "data.medicationReference.code");
	cr_assert_str_eq(rej.source, "code");
	cr_assert_str_eq(rej.reason, "mapping rx: required target data.medicationReference.code "
				     "is empty (source: code)");
	cr_assert_null(strstr(rej.reason, "SECRET"));
	map_set_free(s);
}

Test(map_lang, bad_date_rejects_without_value)
{
	struct map_set *s = load_rx();
	enum map_result res;
	struct map_reject rej;
	cr_assert_null(mt_apply(s, "{\"kind\":\"RDE\",\"ver\":\"O11\",\"order\":\"O1\",\"code\":\"C\","
				   "\"written\":\"2026-13x\"}", &res, &rej, 0));
	cr_assert_eq(res, MAP_REJECTED);
	cr_assert_eq(rej.err_code, 102);
	cr_assert_str_eq(rej.reason, "mapping rx, target data.dateWritten: datetime(): the value "
				     "of written is not an HL7 or ISO 8601 date/time");
	map_set_free(s);
}

Test(map_lang, each_group_and_arrays)
{
	const char *dir = mt_tmpdir();
	struct map_diag d = { 0 };
	mt_write(dir, "p.map",
		 "mapping p\nsource test\nevent patient\neach groups\n"
		 "type 'patient.' + if(exists(merged), 'merged', 'updated')\n"
		 "topic 'x.' + type + '.' + data.patientId\n"
		 "key  data.patientId\n"
		 "data.patientId = id required\n"
		 "data.mergedPatientId = merged\n"
		 "data.identifiers[] = each ids {\n"
		 "  value = .v\n"
		 "  system = .s\n"
		 "  type = upper(.t)\n"
		 "}\n"
		 "data.name.family = fam\n"
		 "data.name.given[] = split(given, ' ')\n"
		 "data.name.given[] = middle\n"
		 "data.gender = trim(sex)\n"
		 "data.birthDate = date(dob)\n"
		 "metadata.source = concat(a, '-', b)\n"
		 "metadata.version = replace(ver, '.', '_')\n");
	struct map_set *s = mt_load(dir, &d);
	cr_assert(s, "%s", d.text);
	enum map_result res;
	struct map_reject rej;
	json_t *out = mt_apply(s, "{\"root\":1, \"groups\":[{\"id\":\"A\",\"ids\":[{\"v\":\"1\","
				  "\"t\":\"mr\"},{\"s\":\"only-system\"},{\"v\":\"2\",\"s\":\"S\"}],"
				  "\"fam\":\"Doe\",\"given\":\"Jo Ann\",\"middle\":\"Q\"},"
				  "{\"id\":\"B\",\"merged\":\"Z\"}], \"sex\":\" F \","
				  "\"dob\":\"19800102\",\"a\":\"x\",\"b\":\"y\",\"ver\":\"1.2\"}",
			       &res, &rej, MAP_EXPLAIN);
	cr_assert_eq(res, MAP_OK, "%s", rej.reason);
	cr_assert_eq(json_array_size(out), 2);
	json_t *a = json_array_get(out, 0), *b = json_array_get(out, 1);
	cr_assert_str_eq(str_at(a, "topic"), "x.patient.updated.A");
	cr_assert_str_eq(str_at(b, "topic"), "x.patient.merged.B");
	json_t *ea = json_object_get(a, "event");
	json_t *ids = json_object_get(json_object_get(ea, "data"), "identifiers");
	cr_assert_eq(json_array_size(ids), 3); /* the item with only a system still counts */
	cr_assert_str_eq(str_at(json_array_get(ids, 0), "type"), "MR");
	cr_assert(json_is_null(json_object_get(json_array_get(ids, 0), "system")));
	json_t *given = json_object_get(json_object_get(json_object_get(ea, "data"), "name"),
					"given");
	cr_assert_eq(json_array_size(given), 3);
	cr_assert_str_eq(json_string_value(json_array_get(given, 2)), "Q");
	cr_assert_str_eq(str_at(ea, "data.gender"), "F");
	cr_assert_str_eq(str_at(ea, "data.birthDate"), "1980-01-02");
	cr_assert_str_eq(str_at(ea, "metadata.source"), "x-y");
	cr_assert_str_eq(str_at(ea, "metadata.version"), "1_2");
	json_t *eb = json_object_get(b, "event");
	cr_assert(json_is_null(json_object_get(json_object_get(eb, "data"), "name")));
	cr_assert_str_eq(str_at(eb, "data.mergedPatientId"), "Z");
	/* different index, different id */
	cr_assert_str_neq(str_at(ea, "eventId"), str_at(eb, "eventId"));
	/* explain: targets with their sources */
	json_t *ex = json_object_get(a, "explain");
	cr_assert(json_array_size(ex) > 5);
	cr_assert_str_eq(str_at(json_array_get(ex, 0), "target"), "data.patientId");
	cr_assert_str_eq(str_at(json_array_get(ex, 0), "from"), "id");
	/* targets left empty are listed too, with the rule's source */
	cr_assert_str_eq(str_at(json_array_get(ex, 1), "target"), "data.mergedPatientId");
	cr_assert(json_is_null(json_object_get(json_array_get(ex, 1), "value")));
	cr_assert_str_eq(str_at(json_array_get(ex, 1), "from"), "merged");
	cr_assert_str_eq(str_at(json_array_get(ex, 2), "target"), "data.identifiers[0].value");
	json_decref(out);
	map_set_free(s);
	map_diag_clear(&d);
}

Test(map_lang, continuation_lines)
{
	const char *dir = mt_tmpdir();
	struct map_diag d = { 0 };
	mt_write(dir, "c.map",
		 "mapping c\nsource test\nevent prescription\ntype 'prescription.created'\n"
		 "when kind = 'X'\n   or kind = 'Y'\n"
		 "data.patientId = a\n"
		 "              ?? b     # the fallback\n"
		 "              ?? c\n"
		 "data.status = concat(\n  a,\n  b\n)\n");
	struct map_set *s = mt_load(dir, &d);
	cr_assert(s, "%s", d.text);
	enum map_result res;
	struct map_reject rej;
	json_t *out = mt_apply(s, "{\"kind\":\"Y\",\"c\":\"C\",\"b\":\"B\"}", &res, &rej, 0);
	cr_assert_eq(res, MAP_OK);
	json_t *e = json_object_get(json_array_get(out, 0), "event");
	cr_assert_str_eq(str_at(e, "data.patientId"), "B");
	cr_assert_str_eq(str_at(e, "data.status"), "B");
	json_decref(out);
	map_set_free(s);
	map_diag_clear(&d);
}

Test(map_lang, datetime_formats)
{
	char o[64];
	struct { const char *in, *dt, *d; } cases[] = {
		{ "2026", "2026", "2026" },
		{ "202611", "2026-11", "2026-11" },
		{ "20261127", "2026-11-27", "2026-11-27" },
		{ "2026112710", "2026-11-27T10:00", "2026-11-27" },
		{ "202611271015", "2026-11-27T10:15", "2026-11-27" },
		{ "20261127101530", "2026-11-27T10:15:30", "2026-11-27" },
		{ "20261127101530.123+0100", "2026-11-27T10:15:30.123+01:00", "2026-11-27" },
		{ "2026-11-27T10:15:30Z", "2026-11-27T10:15:30Z", "2026-11-27" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert(map_fmt_datetime(cases[i].in, strlen(cases[i].in), 1, o, sizeof(o)) > 0);
		cr_assert_str_eq(o, cases[i].dt);
		cr_assert(map_fmt_datetime(cases[i].in, strlen(cases[i].in), 0, o, sizeof(o)) > 0);
		cr_assert_str_eq(o, cases[i].d);
	}
	const char *bad[] = { "20261327", "2026112", "20261127x", "202611271015+01", "abc", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(map_fmt_datetime(bad[i], strlen(bad[i]), 1, o, sizeof(o)), -1, "%s",
			     bad[i]);
}

Test(map_lang, event_id_is_deterministic_uuid5)
{
	char a[37], b[37], c[37];
	map_event_id(a, "key", 3, 0);
	map_event_id(b, "key", 3, 0);
	map_event_id(c, "key", 3, 1);
	cr_assert_str_eq(a, b);
	cr_assert_str_neq(a, c);
	cr_assert_eq(a[14], '5');
	cr_assert(strchr("89ab", a[19]));
}

static const char *header(const struct map_event *ev, const char *name)
{
	for (size_t i = 0; i < ev->nheaders; i++)
		if (strcmp(ev->headers[i].name, name) == 0)
			return ev->headers[i].value;
	return NULL;
}

static int headers_cb(const struct map_event *ev, void *opaque)
{
	cr_assert_str_eq(header(ev, "event-type"), "prescription.created");
	/* the value format is the encoder's: it adds content-type (publish/evenc.h) */
	cr_assert_null(header(ev, "content-type"));
	cr_assert_str_eq(header(ev, "source"), "pharm");
	cr_assert_str_eq(header(ev, "hl7bridge-mapping"), "rx");
	(*(int *)opaque)++;
	return 0;
}

Test(map_lang, kafka_headers)
{
	struct map_set *s = load_rx();
	json_t *root = json_loads("{\"kind\":\"RDE\",\"ver\":\"O11\",\"order\":\"O1\","
				  "\"code\":\"C\",\"app\":\"PHARM\"}", 0, NULL);
	struct { json_t *root, *item; } scope = { root, root };
	struct map_input in = { .ops = &map_test_source, .scope = &scope, .ledger_key = "k",
				.ledger_key_len = 1, .message_id = "M1", .now_ms = 0 };
	int n = 0;
	struct map_reject rej;
	cr_assert_eq(map_apply(s, &in, 0, headers_cb, &n, NULL, &rej), MAP_OK, "%s", rej.reason);
	cr_assert_eq(n, 1);
	json_decref(root);
	map_set_free(s);
}

Test(map_lang, unmatched_policy_names)
{
	cr_assert_eq(map_unmatched_policy_parse("filter"), MAP_UNMATCHED_FILTER);
	cr_assert_eq(map_unmatched_policy_parse("reject"), MAP_UNMATCHED_REJECT);
	cr_assert_eq(map_unmatched_policy_parse("deadletter"), MAP_UNMATCHED_DEADLETTER);
	cr_assert_eq(map_unmatched_policy_parse("drop"), -1);
}

Test(map_lang, required_each_block)
{
	const char *dir = mt_tmpdir();
	struct map_diag d = { 0 };
	mt_write(dir, "r.map", "mapping r\nsource test\nevent patient\ntype 'patient.updated'\n"
			       "data.patientId = id\n"
			       "data.identifiers[] = each ids {\n  value = .v\n} required\n");
	struct map_set *s = mt_load(dir, &d);
	cr_assert(s, "%s", d.text);
	enum map_result res;
	struct map_reject rej;
	cr_assert_null(mt_apply(s, "{\"id\":\"P\",\"ids\":[{\"x\":\"no value\"}]}", &res, &rej, 0));
	cr_assert_eq(res, MAP_REJECTED);
	cr_assert_str_eq(rej.reason, "mapping r: required target data.identifiers[] is empty "
				     "(source: ids)");
	json_t *out = mt_apply(s, "{\"id\":\"P\",\"ids\":[{\"v\":\"1\"}]}", &res, &rej, 0);
	cr_assert_eq(res, MAP_OK);
	json_decref(out);
	map_set_free(s);
	map_diag_clear(&d);
}

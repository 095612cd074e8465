/* The HL7v2 source adapter: path forms, filters, groups, escapes, charsets. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map/map.h"
#include "map/source_hl7.h"
#include "map_test_source.h"
#include "parse/hl7.h"

static const char *MSG =
	"MSH|^~\\&|APP|FAC|||20261127||ADT^A08|C1|P|2.5.1||||||8859/1\r"
	"PID|1||A1^^^X^PI~M1^^^GENHOSP&1.2.3&ISO^MR~M2^^^H^MR||Caf\xe9\\T\\Co^Ren\\S\\e||19800102|F\r"
	"ORC|NW|O1\r"
	"RXE||D1^Drug one\r"
	"ORC|CA|O2\r"
	"ORC|XO|O3\r"
	"RXE||D3^Drug three\r";

static int collect_cb(const struct map_event *ev, void *out)
{
	json_t *e = map_event_object(ev);
	json_array_append(out, json_object_get(e, "data"));
	json_decref(e);
	return 0;
}

/* Map MSG with a patient mapping whose rules are given; return the events. */
static json_t *map_with(const char *header, const char *rules, enum map_result *res,
			struct map_reject *rej)
{
	const char *dir = mt_tmpdir();
	char text[4096];
	struct map_diag d = { 0 };
	snprintf(text, sizeof(text), "mapping t\nsource hl7v2\nevent patient\n%s\n%s\n", header,
		 rules);
	mt_write(dir, "t.map", text);
	struct map_set *s = mt_load(dir, &d);
	cr_assert(s, "%s", d.text);
	struct hl7_seg segs[32];
	struct hl7_msg m;
	struct hl7_error he;
	cr_assert_eq(hl7_parse(&m, MSG, strlen(MSG), segs, 32, NULL, &he), 0, "%s", he.msg);
	struct hl7src_scope sc;
	hl7src_scope_init(&sc, &m);
	struct map_input in = { .ops = &map_source_hl7, .scope = &sc, .ledger_key = "k",
				.ledger_key_len = 1, .message_id = "C1", .now_ms = 0 };
	json_t *out = json_array();
	*res = map_apply(s, &in, 0, collect_cb, out, NULL, rej);
	hl7_msg_clear(&m);
	map_set_free(s);
	map_diag_clear(&d);
	return out;
}


static const char *str(json_t *events, size_t i, const char *field)
{
	return json_string_value(json_object_get(json_array_get(events, i), field));
}

Test(map_hl7, filters_and_all_repetitions)
{
	enum map_result r;
	struct map_reject rej;
	json_t *ev = map_with("type 'patient.updated'",
			      "data.patientId = PID-3[where .5 = \"MR\"].1\n"
			      "data.mergedPatientId = PID-3[where .5 != \"MR\"].1\n"
			      "data.gender = PID-3[where .4.1 in (\"H\", \"Z\")].1\n"
			      "data.name.given[] = PID-3[*].1\n"
			      "data.birthDate = PID-3[3].1\n",
			      &r, &rej);
	cr_assert_eq(r, MAP_OK, "%s", rej.reason);
	cr_assert_str_eq(str(ev, 0, "patientId"), "M1");
	cr_assert_str_eq(str(ev, 0, "mergedPatientId"), "A1");
	cr_assert_str_eq(str(ev, 0, "gender"), "M2");
	cr_assert_str_eq(str(ev, 0, "birthDate"), "M2");
	json_t *given = json_object_get(json_object_get(json_array_get(ev, 0), "name"), "given");
	cr_assert_eq(json_array_size(given), 3);
	json_decref(ev);
}

Test(map_hl7, escapes_and_charset_are_decoded)
{
	enum map_result r;
	struct map_reject rej;
	json_t *ev = map_with("type 'patient.updated'",
			      "data.patientId = PID-5.1\ndata.gender = PID-5.2\n"
			      "data.identifiers[] = each PID-3 {\n value = .1\n system = .4.2 ?? .4.1\n}\n",
			      &r, &rej);
	cr_assert_eq(r, MAP_OK, "%s", rej.reason);
	/* 8859/1 é → UTF-8, \T\ → &, \S\ → ^ */
	cr_assert_str_eq(str(ev, 0, "patientId"), "Caf\xc3\xa9&Co");
	cr_assert_str_eq(str(ev, 0, "gender"), "Ren^e");
	json_t *ids = json_object_get(json_array_get(ev, 0), "identifiers");
	cr_assert_eq(json_array_size(ids), 3);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(ids, 1), "system")),
			 "1.2.3");
	json_decref(ev);
}

Test(map_hl7, groups_see_their_segments_and_the_prefix)
{
	enum map_result r;
	struct map_reject rej;
	json_t *ev = map_with("each ORC\ntype 'patient.' + lookup(ORC-1, oc)\n"
			      "table oc\n NW = created\n CA = deleted\n XO = updated\nend",
			      "data.patientId = ORC-2\ndata.gender = RXE-2.1\n"
			      "data.birthDate = PID-7\n",
			      &r, &rej);
	cr_assert_eq(r, MAP_OK, "%s", rej.reason);
	cr_assert_eq(json_array_size(ev), 3);
	cr_assert_str_eq(str(ev, 0, "gender"), "D1");
	/* the CA group has no RXE: it does not borrow the next group's */
	cr_assert_null(str(ev, 1, "gender"));
	cr_assert_str_eq(str(ev, 2, "gender"), "D3");
	for (size_t i = 0; i < 3; i++)
		cr_assert_str_eq(str(ev, i, "birthDate"), "19800102");
	json_decref(ev);
}

Test(map_hl7, when_over_msh)
{
	enum map_result r;
	struct map_reject rej;
	json_t *ev = map_with("when MSH-9.1 = 'ADT' and not (MSH-9.2 in ('A01', 'A04'))\n"
			      "type 'patient.updated'",
			      "data.patientId = MSH-10\n", &r, &rej);
	cr_assert_eq(r, MAP_OK);
	cr_assert_str_eq(str(ev, 0, "patientId"), "C1");
	json_decref(ev);
	ev = map_with("when MSH-9.2 = 'A01'\ntype 'patient.updated'", "data.patientId = MSH-10\n",
		      &r, &rej);
	cr_assert_eq(r, MAP_UNMATCHED);
	json_decref(ev);
}

Test(map_hl7, each_over_filtered_repetitions)
{
	enum map_result r;
	struct map_reject rej;
	json_t *ev = map_with("type 'patient.updated'",
			      "data.patientId = MSH-10\n"
			      "data.identifiers[] = each PID-3[where .5 != \"PI\"] {\n value = .1\n}\n",
			      &r, &rej);
	cr_assert_eq(r, MAP_OK, "%s", rej.reason);
	json_t *ids = json_object_get(json_array_get(ev, 0), "identifiers");
	cr_assert_eq(json_array_size(ids), 2);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(ids, 0), "value")), "M1");
	json_decref(ev);
}

/* ---- record each-blocks, prefer, alternatives, [codings] (issue 15) ---- */

static const char *CODED =
	"MSH|^~\\&|APP|FAC|||20261127||RDE^O11|C2|P|2.7\r"
	"PID|1||M1^^^H^MR\r"
	"ORC|NW|O1\r"
	"RXE||L1^Local^L^617310^Atorvastatin^RXNORM\r"
	"ORC|NW|O2\r"
	"RXE||L2^Local two^L^0093^Metformin NDC^NDC^^^^860975^Metformin RxNorm^RXNORM\r"
	"ORC|NW|O3\r"
	"RXE||L3^Local three^L^^no code^NDC\r"
	"ORC|NW|O4\r";

static json_t *map_coded(const char *rules, enum map_result *res, struct map_reject *rej)
{
	const char *dir = mt_tmpdir();
	char text[4096];
	struct map_diag d = { 0 };
	snprintf(text, sizeof(text), "mapping t\nsource hl7v2\nevent prescription\n"
		 "type 'prescription.created'\neach ORC\nuse tables/codesystems.tbl\n"
		 "data.prescriptionId = ORC-2\n%s\n", rules);
	mt_write(dir, "t.map", text);
	mt_write(dir, "tables/codesystems.tbl", "table codesystems\n  RXNORM = rx:norm\n"
		 "  NDC = ndc:x\nend\n");
	struct map_set *s = mt_load(dir, &d);
	cr_assert(s, "%s", d.text);
	struct hl7_seg segs[32];
	struct hl7_msg m;
	struct hl7_error he;
	cr_assert_eq(hl7_parse(&m, CODED, strlen(CODED), segs, 32, NULL, &he), 0, "%s", he.msg);
	struct hl7src_scope sc;
	hl7src_scope_init(&sc, &m);
	struct map_input in = { .ops = &map_source_hl7, .scope = &sc, .ledger_key = "k",
				.ledger_key_len = 1, .message_id = "C2", .now_ms = 0 };
	json_t *out = json_array();
	*res = map_apply(s, &in, 0, collect_cb, out, NULL, rej);
	hl7_msg_clear(&m);
	map_set_free(s);
	map_diag_clear(&d);
	return out;
}

static const char *med(json_t *ev, size_t i, const char *f)
{
	return json_string_value(json_object_get(
		json_object_get(json_array_get(ev, i), "medicationReference"), f));
}

Test(map_hl7, prefer_picks_one_coding_and_every_part_from_it)
{
	enum map_result r;
	struct map_reject rej;
	json_t *ev = map_coded("data.medicationReference = each RXE-2[codings]\n"
			       "    prefer codesystem(.3) in (\"rx:norm\", \"ndc:x\") {\n"
			       "  code = .1\n  display = .2\n  system = codesystem(.3) ?? .3\n}\n"
			       "data.dosageInstruction = RXE-2[codings].1\n",
			       &r, &rej);
	cr_assert_eq(r, MAP_OK, "%s", rej.reason);
	cr_assert_eq(json_array_size(ev), 4);
	cr_assert_str_eq(med(ev, 0, "code"), "617310");       /* alternate RxNorm beats local */
	cr_assert_str_eq(med(ev, 0, "display"), "Atorvastatin");
	cr_assert_str_eq(med(ev, 1, "code"), "860975");       /* second alternate (2.7) */
	cr_assert_str_eq(med(ev, 1, "system"), "rx:norm");
	cr_assert_str_eq(med(ev, 2, "code"), "L3");           /* the NDC coding has no code */
	cr_assert_str_eq(med(ev, 2, "system"), "L");
	cr_assert_str_eq(med(ev, 3, "code"), "");             /* no RXE: the record keeps its defaults */
	cr_assert_str_eq(str(ev, 0, "dosageInstruction"), "L1");
	json_decref(ev);
	/* without prefer: the first coding */
	ev = map_coded("data.medicationReference = each RXE-2[codings] {\n  code = .1\n}\n", &r, &rej);
	cr_assert_eq(r, MAP_OK, "%s", rej.reason);
	cr_assert_str_eq(med(ev, 1, "code"), "L2");
	json_decref(ev);
	/* required after the block: a group without a coding rejects */
	ev = map_coded("data.medicationReference = each RXE-2[codings] {\n  code = .1\n} required\n",
		       &r, &rej);
	cr_assert_eq(r, MAP_REJECTED);
	cr_assert_eq(rej.err_code, 101);
	cr_assert_str_eq(rej.reason, "mapping t: required target data.medicationReference is empty "
				     "(source: RXE-2[codings])");
	json_decref(ev);
	/* required inside the block names the block's target */
	ev = map_coded("data.medicationReference = each RXE-2[codings] prefer .3 in (\"NDC\") {\n"
		       "  code = .5\n  display = .7 required\n}\n", &r, &rej);
	cr_assert_eq(r, MAP_REJECTED);
	cr_assert_str_eq(rej.reason, "mapping t: required target data.medicationReference.display is "
				     "empty (source: .7 in each RXE-2[codings])");
	cr_assert_str_eq(rej.target, "data.medicationReference.display");
	json_decref(ev);
}

Test(map_hl7, each_alternatives_take_the_first_that_names_items)
{
	enum map_result r;
	struct map_reject rej;
	json_t *ev = map_with("type 'patient.updated'",
			      "data.patientId = MSH-10\n"
			      "data.identifiers[] = each PID-40 ?? PID-3[where .5 = \"MR\"] ?? PID-3 {\n"
			      "  value = .1\n}\n"
			      "data.name = each PID-9 ?? PID-5 {\n  family = .1\n  given[] = .2\n}\n"
			      "data.mergedPatientId = refid(\"http://x/fhir/Patient/12/_history/2\")\n"
			      "data.birthDate = refid(\"urn:uuid:ab-12\") + refid(\"#c\")\n"
			      "data.gender = refid(\"Practitioner?identifier=http://x/npi|99&_x=1\")\n",
			      &r, &rej);
	cr_assert_eq(r, MAP_OK, "%s", rej.reason);
	json_t *ids = json_object_get(json_array_get(ev, 0), "identifiers");
	cr_assert_eq(json_array_size(ids), 2);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(ids, 1), "value")), "M2");
	json_t *name = json_object_get(json_array_get(ev, 0), "name");
	cr_assert_str_eq(json_string_value(json_object_get(name, "family")), "Caf\xc3\xa9&Co");
	cr_assert_str_eq(str(ev, 0, "mergedPatientId"), "12");
	cr_assert_str_eq(str(ev, 0, "birthDate"), "ab-12c");
	cr_assert_str_eq(str(ev, 0, "gender"), "99");
	json_decref(ev);
}

Test(map_hl7, a_matched_mapping_without_its_group_rejects_when_values_are_required)
{
	enum map_result r;
	struct map_reject rej;
	json_t *ev = map_with("type 'patient.updated'\neach MRG",
			      "data.patientId = PID-3.1 required\n", &r, &rej);
	cr_assert_eq(r, MAP_REJECTED);
	cr_assert_eq(rej.err_code, 100);
	cr_assert_str_eq(rej.target, "data.patientId");
	cr_assert_str_eq(rej.reason, "mapping t: no MRG in the message, so required target "
				     "data.patientId is empty (source: PID-3.1)");
	json_decref(ev);
	ev = map_with("type 'patient.updated'\neach MRG", "data.patientId = PID-3.1\n", &r, &rej);
	cr_assert_eq(r, MAP_UNMATCHED);
	json_decref(ev);
}

Test(map_hl7, prefer_needs_a_record_and_an_in_list)
{
	const char *dir = mt_tmpdir();
	struct map_diag d = { 0 };
	mt_write(dir, "t.map", "mapping t\nsource hl7v2\nevent patient\ntype 'patient.updated'\n"
		 "data.identifiers[] = each PID-3 prefer .5 in (\"MR\") {\n  value = .1\n}\n");
	cr_assert_null(mt_load(dir, &d));
	cr_assert(strstr(d.text, "'prefer' picks one item"), "%s", d.text);
	map_diag_clear(&d);
	mt_write(dir, "t.map", "mapping t\nsource hl7v2\nevent patient\ntype 'patient.updated'\n"
		 "data.name = each PID-5 prefer .7 = \"L\" {\n  family = .1\n}\n");
	cr_assert_null(mt_load(dir, &d));
	cr_assert(strstr(d.text, "'prefer' takes KEY in"), "%s", d.text);
	map_diag_clear(&d);
}

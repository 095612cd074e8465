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

/* Tests of the FHIRPath subset: compile errors, evaluation on the fixtures
 * (read from XML and JSON alike), resolve() inside Bundles. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse/fhir.h"
#include "parse/fhirpath.h"
#include "util.h"

static json_t *fixture(const char *name)
{
	char path[1024], err[256];
	const char *d = getenv("HB_SRCDIR");
	size_t len;
	char *buf;
	fhir_error_t fe;
	json_t *t;

	snprintf(path, sizeof(path), "%s/tests/fixtures/fhir/%s", d ? d : HB_SRCDIR, name);
	buf = util_read_file(path, 1u << 24, &len, err, sizeof(err));
	cr_assert_not_null(buf, "%s", err);
	t = fhir_read(buf, len, NULL, &fe);
	cr_assert_not_null(t, "%s: %s", name, fe.text);
	free(buf);
	return t;
}

/* Evaluate expr and join the string forms of the result with '|'
 * ("<obj>" for complex items). */
static char *eval_str(const char *expr, json_t *res, json_t *bundle, json_t *focus)
{
	fhirpath_error_t err;
	fhirpath_t *fp = fhirpath_compile(expr, strlen(expr), &err);
	fhirpath_ctx_t ctx = {res, bundle, NULL};
	fhirpath_result_t r;
	static char out[1024];
	size_t i, n = 0;

	cr_assert_not_null(fp, "%s: col %d: %s", expr, err.column, err.text);
	fhirpath_result_init(&r);
	cr_assert_eq(fhirpath_eval(fp, &ctx, focus, &r, &err), 0, "%s: %s", expr, err.text);
	out[0] = '\0';
	for (i = 0; i < r.count; i++) {
		char buf[64];
		const char *s = fhirpath_item_str(&r.items[i], buf, sizeof(buf));
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", i ? "|" : "",
				      s ? s : "<obj>");
	}
	fhirpath_result_clear(&r);
	fhirpath_free(fp);
	return out;
}

#define EXPECT(expr, res, want) \
	cr_expect_str_eq(eval_str(expr, res, NULL, NULL), want, "%s", expr)

static void patient_checks(json_t *p)
{
	EXPECT("name.given", p, "Alex|Jordan|AJ");
	EXPECT("Patient.name.given", p, "Alex|Jordan|AJ");
	EXPECT("name.first().given.first()", p, "Alex");
	EXPECT("name.last().given", p, "AJ");
	EXPECT("name[0].given[1]", p, "Jordan");
	EXPECT("name[5]", p, "");
	EXPECT("identifier.where(type.coding.code = 'MR').value", p, "MRN-0001");
	EXPECT("identifier.where(type.coding.code != 'MR').system", p, "http://hl7.org/fhir/sid/us-ssn");
	EXPECT("identifier.where(use = 'usual' and system.startsWith('urn:oid:')).value", p, "MRN-0001");
	EXPECT("identifier.where(use = 'nope' or use = 'official').value", p, "000-00-0000");
	EXPECT("identifier.value.where($this in ('MRN-0001' | 'x'))", p, "MRN-0001");
	EXPECT("identifier.count()", p, "2");
	EXPECT("identifier.exists()", p, "true");
	EXPECT("identifier.exists(use = 'temp')", p, "false");
	EXPECT("photo.empty()", p, "true");
	EXPECT("active", p, "true");
	EXPECT("active = true", p, "true");
	EXPECT("multipleBirth", p, "2");
	EXPECT("multipleBirth.ofType(integer)", p, "2");
	EXPECT("multipleBirth.ofType(Integer)", p, "2");
	EXPECT("multipleBirth.ofType(boolean)", p, "");
	EXPECT("deceased.ofType(boolean)", p, "false");
	EXPECT("extension('http://example.org/fhir/StructureDefinition/consent-flag').value", p, "true");
	EXPECT("extension('http://hl7.org/fhir/StructureDefinition/patient-birthPlace').value.ofType(Address).city",
	       p, "Springfield");
	EXPECT("birthDate.extension('http://hl7.org/fhir/StructureDefinition/patient-birthTime').value",
	       p, "1980-07-14T08:30:00-05:00");
	EXPECT("name.given.extension('http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier').value",
	       p, "MID");
	EXPECT("name.given.where(extension('http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier').exists())",
	       p, "Jordan");
	EXPECT("managingOrganization.reference.replace('Organization/', '')", p, "org-1");
	EXPECT("identifier[0].value.substring(4)", p, "0001");
	EXPECT("identifier[0].value.substring(0, 3)", p, "MRN");
	EXPECT("identifier[0].value.substring(40)", p, "");
	EXPECT("gender in ('male' | 'female')", p, "true");
	EXPECT("('a' | 'b' | 'a').count()", p, "2");
	EXPECT("telecom.rank + 1", p, "2");
	EXPECT("name.family & ', ' & name.given.first()", p, "Example, Alex");
	EXPECT("address.line.last().upper()", p, "APT 2");
	EXPECT("name.where(use = 'official').given.count() = 2", p, "true");
	EXPECT("(active = false).not()", p, "true");
	EXPECT("photo.not()", p, "");
	EXPECT("contact.name.given.single()", p, "Sam");
	EXPECT("gender.exists() and birthDate.empty().not()", p, "true");
	EXPECT("%resource.id", p, "pat-1");
	EXPECT("{}.exists()", p, "false");
	EXPECT("identifier.first().type.coding.code.startsWith('M')", p, "true");
	EXPECT("text.div.startsWith('<div')", p, "true");
	EXPECT("birthDate.extension.url", p, "http://hl7.org/fhir/StructureDefinition/patient-birthTime");
	EXPECT("name.given.extension.value", p, "MID");
	EXPECT("name.given.extension.exists()", p, "true");
}

Test(fhirpath, patient_json) { json_t *p = fixture("patient.json"); patient_checks(p); json_decref(p); }
Test(fhirpath, patient_xml) { json_t *p = fixture("patient.xml"); patient_checks(p); json_decref(p); }

Test(fhirpath, mapping_expressions_on_medicationrequest)
{
	json_t *mr = fixture("medicationrequest-cc.xml");

	EXPECT("subject.reference", mr, "Patient/pat-1");
	EXPECT("status", mr, "active");
	EXPECT("medicationCodeableConcept.coding.where(system='http://www.nlm.nih.gov/research/umls/rxnorm').code",
	       mr, "197361");
	EXPECT("medication.ofType(CodeableConcept).coding.first().display", mr,
	       "Amlodipine 5 MG Oral Tablet");
	EXPECT("medication.ofType(Reference)", mr, "");
	EXPECT("dispenseRequest.quantity.value", mr, "30.5");
	EXPECT("dosageInstruction.doseAndRate.dose.value", mr, "5");
	EXPECT("subject.resolve().id", mr, "");
	json_decref(mr);
}

Test(fhirpath, resolve_contained)
{
	json_t *mr = fixture("medicationrequest-contained.json");

	EXPECT("medicationReference.resolve().code.coding.code", mr, "314076");
	EXPECT("medication.resolve().ofType(Medication).batch.lotNumber", mr, "L-77");
	EXPECT("contained.ofType(Medication).ingredient.isActive", mr, "true");
	json_decref(mr);
}

static void bundle_resolve_checks(json_t *b)
{
	json_t *entries = json_object_get(b, "entry");
	json_t *mr = json_object_get(json_array_get(entries, 2), "resource");

	cr_expect_str_eq(eval_str("subject.resolve().identifier.where(type.coding.code = 'MR').value",
				  mr, b, NULL), "MRN-0002");
	cr_expect_str_eq(eval_str("medicationReference.resolve().code.coding.display", mr, b, NULL),
			 "Metformin 500 MG");
	cr_expect_str_eq(eval_str("requester.resolve()", mr, b, NULL), "");
	cr_expect_str_eq(eval_str("entry.resource.ofType(Patient).name.family", b, b, NULL), "Sample");
	cr_expect_str_eq(eval_str("entry.where(request.method = 'DELETE').request.url", b, b, NULL),
			 "MedicationRequest/old-7");
}

Test(fhirpath, resolve_in_transaction_bundle_json)
{
	json_t *b = fixture("bundle-transaction.json");
	bundle_resolve_checks(b);
	json_decref(b);
}

Test(fhirpath, resolve_in_transaction_bundle_xml)
{
	json_t *b = fixture("bundle-transaction.xml");
	bundle_resolve_checks(b);
	json_decref(b);
}

Test(fhirpath, resolve_type_id_in_message_bundle)
{
	json_t *b = fixture("bundle-message.xml");
	json_t *entries = json_object_get(b, "entry");
	json_t *hdr = json_object_get(json_array_get(entries, 0), "resource");
	json_t *mr = json_object_get(json_array_get(entries, 1), "resource");

	cr_expect_str_eq(eval_str("subject.resolve().identifier.where(type.coding.code = 'MR').value",
				  mr, b, NULL), "MRN-0009");
	cr_expect_str_eq(eval_str("focus.resolve().subject.resolve().name.given", hdr, b, NULL), "Kim");
	cr_expect_str_eq(eval_str("event.ofType(Coding).code", hdr, b, NULL), "prescription-new");
	json_decref(b);
}

Test(fhirpath, relative_to_an_element)
{
	json_t *p = fixture("patient.json");
	json_t *ids = json_object_get(p, "identifier");

	cr_expect_str_eq(eval_str("value", p, NULL, json_array_get(ids, 1)), "000-00-0000");
	cr_expect_str_eq(eval_str("system", p, NULL, json_array_get(ids, 0)),
			 "urn:oid:1.2.36.146.595.217.0.1");
	cr_expect_str_eq(eval_str("type.coding.code", p, NULL, json_array_get(ids, 0)), "MR");
	cr_expect_str_eq(eval_str("$this.value", p, NULL, json_array_get(ids, 0)), "MRN-0001");
	cr_expect_str_eq(eval_str("%resource.gender", p, NULL, json_array_get(ids, 0)), "female");
	json_decref(p);
}

Test(fhirpath, compile_once_evaluate_many)
{
	fhirpath_error_t err;
	fhirpath_t *fp = fhirpath_compile("name.family", 11, &err);
	fhirpath_result_t r;
	char buf[32];
	int i;

	cr_assert_not_null(fp);
	cr_assert_str_eq(fhirpath_text(fp), "name.family");
	fhirpath_result_init(&r);
	for (i = 0; i < 100; i++) {
		json_t *p = json_pack("{s:s, s:[{s:s}]}", "resourceType", "Patient", "name",
				      "family", i % 2 ? "Odd" : "Even");
		fhirpath_ctx_t ctx = {p, NULL, NULL};
		cr_assert_eq(fhirpath_eval(fp, &ctx, NULL, &r, &err), 0);
		cr_assert_str_eq(fhirpath_result_str(&r, buf, sizeof(buf)), i % 2 ? "Odd" : "Even");
		json_decref(p); /* items keep their own references */
		cr_assert_str_eq(fhirpath_result_str(&r, buf, sizeof(buf)), i % 2 ? "Odd" : "Even");
	}
	fhirpath_result_clear(&r);
	fhirpath_free(fp);
}

struct bad { const char *expr; int col; const char *msg; };

Test(fhirpath, compile_errors_have_column_and_expectation)
{
	static const struct bad cases[] = {
		{"name.", 6, "expected a name or function after '.'"},
		{"name.where(use = 'x'", 21, "expected ')' to close the arguments of where()"},
		{"name[0", 7, "expected ']'"},
		{"frobnicate()", 1, "unknown function 'frobnicate'"},
		{"name.first(1)", 6, "first() takes 0 arguments"},
		{"name.where()", 6, "where() takes 1 argument"},
		{"status = 'open", 10, "unterminated string"},
		{"status ==", 9, "expected an expression"},
		{"a b", 3, "expected an operator or the end of the expression"},
		{"%foo", 1, "unknown variable '%foo'"},
		{"", 1, "expected an expression"},
		{"name.ofType()", 13, "expected a type name"},
		{"(status", 8, "expected ')'"},
		{"substring(1,2,3)", 15, "too many arguments to substring()"},
		{"status < 3", 8, "expected an operator or the end of the expression"},
	};
	size_t i;

	for (i = 0; i < HB_ARRAY_LEN(cases); i++) {
		fhirpath_error_t err = {0};
		fhirpath_t *fp = fhirpath_compile(cases[i].expr, strlen(cases[i].expr), &err);
		cr_expect_null(fp, "'%s' compiled", cases[i].expr);
		fhirpath_free(fp);
		cr_expect_eq(err.column, cases[i].col, "'%s': column %d, want %d (%s)", cases[i].expr,
			     err.column, cases[i].col, err.text);
		cr_expect(strstr(err.text, cases[i].msg), "'%s': '%s' lacks '%s'", cases[i].expr,
			  err.text, cases[i].msg);
	}
}

Test(fhirpath, evaluation_errors)
{
	json_t *p = fixture("patient.json");
	static const char *exprs[] = {
		"name.given.replace('a', 'b')", /* more than one item */
		"identifier.value in ('x')",
		"name.given.single()",
		"identifier[0].value.substring('x')",
		"name and true",
	};
	size_t i;

	for (i = 0; i < HB_ARRAY_LEN(exprs); i++) {
		fhirpath_error_t err = {0};
		fhirpath_t *fp = fhirpath_compile(exprs[i], strlen(exprs[i]), &err);
		fhirpath_ctx_t ctx = {p, NULL, NULL};
		fhirpath_result_t r;
		cr_assert_not_null(fp, "%s: %s", exprs[i], err.text);
		fhirpath_result_init(&r);
		cr_expect_eq(fhirpath_eval(fp, &ctx, NULL, &r, &err), -1, "%s succeeded", exprs[i]);
		cr_expect_eq(r.count, 0);
		cr_expect_neq(err.text[0], '\0');
		fhirpath_result_clear(&r);
		fhirpath_free(fp);
	}
	json_decref(p);
}

Test(fhirpath, literals_and_strings)
{
	json_t *p = json_pack("{s:s}", "resourceType", "Patient");

	EXPECT("'a\\'b'", p, "a'b");
	EXPECT("1.5 + 1", p, "2.5");
	EXPECT("-3", p, "-3");
	EXPECT("'abc'.replace('', '-')", p, "-a-b-c-");
	EXPECT("'héllo'.substring(1, 3)", p, "éll");
	EXPECT("'héllo'.length()", p, "5");
	EXPECT("'x'.endsWith('x') xor false", p, "true");
	EXPECT("false implies 'x'.empty()", p, "true");
	EXPECT("1 = 1.0", p, "true");
	EXPECT("(1 | 2 | 3).tail().last()", p, "3");
	EXPECT("(1 | 1 | 2).distinct().count()", p, "2");
	EXPECT("5.toString() + 'x'", p, "5x");
	EXPECT("`status`.exists()", p, "false");
	json_decref(p);
}

/* %entry: the resource's Bundle entry, empty for a resource alone. */
Test(fhirpath, entry_variable)
{
	json_t *b = json_loads("{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
			       "{\"fullUrl\":\"urn:uuid:1\",\"resource\":{\"resourceType\":\"Patient\"},"
			       "\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}}]}", 0, NULL);
	json_t *entry = json_array_get(json_object_get(b, "entry"), 0);
	json_t *p = json_object_get(entry, "resource");
	fhirpath_error_t err;
	fhirpath_t *fp = fhirpath_compile("%entry.request.method = 'POST' and %entry.fullUrl.exists()",
					  58, &err);
	cr_assert_not_null(fp, "%s", err.text);
	fhirpath_ctx_t ctx = {p, b, entry};
	fhirpath_result_t r;
	char buf[16];
	fhirpath_result_init(&r);
	cr_assert_eq(fhirpath_eval(fp, &ctx, NULL, &r, &err), 0, "%s", err.text);
	cr_assert_str_eq(fhirpath_result_str(&r, buf, sizeof buf), "true");
	ctx.entry = NULL;
	cr_assert_eq(fhirpath_eval(fp, &ctx, NULL, &r, &err), 0, "%s", err.text);
	cr_assert(r.count == 0 || strcmp(fhirpath_result_str(&r, buf, sizeof buf), "true") != 0);
	fhirpath_result_clear(&r);
	fhirpath_free(fp);
	cr_assert_null(fhirpath_compile("%nope", 5, &err));
	cr_assert(strstr(err.text, "%entry"), "%s", err.text);
	json_decref(b);
}

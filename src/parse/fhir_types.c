/* fhir_types — a compact table of FHIR R4 element types and cardinalities.
 *
 * XML carries neither arrays nor JSON types, so converting it into FHIR's
 * JSON form needs to know, per element, whether it repeats and whether a
 * primitive is a boolean or a number. This table covers the datatypes and
 * resources the bridge maps (see fhir.h); everything else falls back to the
 * generic rules in fhir_xml.c. FHIRPath uses the same table to type
 * navigation results for ofType().
 *
 * Each spec lists "name:type" pairs; a trailing '*' on the name marks a
 * repeating element (max cardinality *). Backbone elements are types named
 * "Resource.path". Elements of Element/BackboneElement/Resource/DomainResource
 * are handled in fhir_type_elem() itself.
 */
#include "parse/fhir_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct type_spec {
	const char *owner;
	const char *elems;
};

static const struct type_spec specs[] = {
	/* datatypes */
	{"Coding", "system:uri version:string code:code display:string userSelected:boolean"},
	{"CodeableConcept", "coding*:Coding text:string"},
	{"Identifier", "use:code type:CodeableConcept system:uri value:string period:Period "
		       "assigner:Reference"},
	{"HumanName", "use:code text:string family:string given*:string prefix*:string "
		      "suffix*:string period:Period"},
	{"Address", "use:code type:code text:string line*:string city:string district:string "
		    "state:string postalCode:string country:string period:Period"},
	{"ContactPoint", "system:code value:string use:code rank:positiveInt period:Period"},
	{"Period", "start:dateTime end:dateTime"},
	{"Quantity", "value:decimal comparator:code unit:string system:uri code:code"},
	{"Range", "low:Quantity high:Quantity"},
	{"Ratio", "numerator:Quantity denominator:Quantity"},
	{"Reference", "reference:string type:uri identifier:Identifier display:string"},
	{"Annotation", "time:dateTime text:markdown"},
	{"Attachment", "contentType:code language:code data:base64Binary url:url "
		       "size:unsignedInt hash:base64Binary title:string creation:dateTime"},
	{"Meta", "versionId:id lastUpdated:instant source:uri profile*:canonical "
		 "security*:Coding tag*:Coding"},
	{"Narrative", "status:code div:xhtml"},
	{"Extension", "url:uri"},
	{"Signature", "type*:Coding when:instant who:Reference onBehalfOf:Reference "
		      "targetFormat:code sigFormat:code data:base64Binary"},
	{"Dosage", "sequence:integer text:string additionalInstruction*:CodeableConcept "
		   "patientInstruction:string timing:Timing site:CodeableConcept "
		   "route:CodeableConcept method:CodeableConcept "
		   "doseAndRate*:Dosage.doseAndRate maxDosePerPeriod:Ratio "
		   "maxDosePerAdministration:Quantity maxDosePerLifetime:Quantity"},
	{"Dosage.doseAndRate", "type:CodeableConcept"},
	{"Timing", "event*:dateTime repeat:Timing.repeat code:CodeableConcept"},
	{"Timing.repeat", "count:positiveInt countMax:positiveInt duration:decimal "
			  "durationMax:decimal durationUnit:code frequency:positiveInt "
			  "frequencyMax:positiveInt period:decimal periodMax:decimal "
			  "periodUnit:code dayOfWeek*:code timeOfDay*:time when*:code "
			  "offset:unsignedInt"},
	/* resources */
	{"Patient", "identifier*:Identifier active:boolean name*:HumanName "
		    "telecom*:ContactPoint gender:code birthDate:date address*:Address "
		    "maritalStatus:CodeableConcept photo*:Attachment contact*:Patient.contact "
		    "communication*:Patient.communication generalPractitioner*:Reference "
		    "managingOrganization:Reference link*:Patient.link"},
	{"Patient.contact", "relationship*:CodeableConcept name:HumanName "
			    "telecom*:ContactPoint address:Address gender:code "
			    "organization:Reference period:Period"},
	{"Patient.communication", "language:CodeableConcept preferred:boolean"},
	{"Patient.link", "other:Reference type:code"},
	{"Practitioner", "identifier*:Identifier active:boolean name*:HumanName "
			 "telecom*:ContactPoint address*:Address gender:code birthDate:date "
			 "photo*:Attachment qualification*:Practitioner.qualification "
			 "communication*:CodeableConcept"},
	{"Practitioner.qualification", "identifier*:Identifier code:CodeableConcept "
				       "period:Period issuer:Reference"},
	{"Organization", "identifier*:Identifier active:boolean type*:CodeableConcept "
			 "name:string alias*:string telecom*:ContactPoint address*:Address "
			 "partOf:Reference contact*:Organization.contact endpoint*:Reference"},
	{"Organization.contact", "purpose:CodeableConcept name:HumanName "
				 "telecom*:ContactPoint address:Address"},
	{"Medication", "identifier*:Identifier code:CodeableConcept status:code "
		       "manufacturer:Reference form:CodeableConcept amount:Ratio "
		       "ingredient*:Medication.ingredient batch:Medication.batch"},
	{"Medication.ingredient", "isActive:boolean strength:Ratio"},
	{"Medication.batch", "lotNumber:string expirationDate:dateTime"},
	{"MedicationRequest",
	 "identifier*:Identifier status:code statusReason:CodeableConcept intent:code "
	 "category*:CodeableConcept priority:code doNotPerform:boolean subject:Reference "
	 "encounter:Reference supportingInformation*:Reference authoredOn:dateTime "
	 "requester:Reference performer:Reference performerType:CodeableConcept "
	 "recorder:Reference reasonCode*:CodeableConcept reasonReference*:Reference "
	 "instantiatesCanonical*:canonical instantiatesUri*:uri basedOn*:Reference "
	 "groupIdentifier:Identifier courseOfTherapyType:CodeableConcept "
	 "insurance*:Reference note*:Annotation dosageInstruction*:Dosage "
	 "dispenseRequest:MedicationRequest.dispenseRequest "
	 "substitution:MedicationRequest.substitution priorPrescription:Reference "
	 "detectedIssue*:Reference eventHistory*:Reference"},
	{"MedicationRequest.dispenseRequest",
	 "initialFill:MedicationRequest.dispenseRequest.initialFill "
	 "dispenseInterval:Duration validityPeriod:Period "
	 "numberOfRepeatsAllowed:unsignedInt quantity:Quantity "
	 "expectedSupplyDuration:Duration performer:Reference"},
	{"MedicationRequest.dispenseRequest.initialFill", "quantity:Quantity duration:Duration"},
	{"MedicationRequest.substitution", "reason:CodeableConcept"},
	{"MessageHeader", "destination*:MessageHeader.destination sender:Reference "
			  "enterer:Reference author:Reference source:MessageHeader.source "
			  "responsible:Reference reason:CodeableConcept "
			  "response:MessageHeader.response focus*:Reference definition:canonical"},
	{"MessageHeader.destination", "name:string target:Reference endpoint:url "
				      "receiver:Reference"},
	{"MessageHeader.source", "name:string software:string version:string "
				 "contact:ContactPoint endpoint:url"},
	{"MessageHeader.response", "identifier:id code:code details:Reference"},
	{"OperationOutcome", "issue*:OperationOutcome.issue"},
	{"OperationOutcome.issue", "severity:code code:code details:CodeableConcept "
				   "diagnostics:string location*:string expression*:string"},
	{"Bundle", "identifier:Identifier type:code timestamp:instant total:unsignedInt "
		   "link*:Bundle.link entry*:Bundle.entry signature:Signature"},
	{"Bundle.link", "relation:string url:uri"},
	{"Bundle.entry", "link*:Bundle.link fullUrl:uri resource:Resource "
			 "search:Bundle.entry.search request:Bundle.entry.request "
			 "response:Bundle.entry.response"},
	{"Bundle.entry.search", "mode:code score:decimal"},
	{"Bundle.entry.request", "method:code url:uri ifNoneMatch:string "
				 "ifModifiedSince:instant ifMatch:string ifNoneExist:string"},
	{"Bundle.entry.response", "status:string location:uri etag:string "
				  "lastModified:instant outcome:Resource"},
};

/* Quantity profiles share Quantity's elements. */
static const char *const quantity_aliases[] = {
	"Age", "Count", "Distance", "Duration", "SimpleQuantity", "MoneyQuantity",
};

/* Types a choice element may name by its suffix, with the type they stand for. */
static const char *const choice_types[] = {
	"Boolean", "boolean", "Integer", "integer", "Decimal", "decimal",
	"PositiveInt", "positiveInt", "UnsignedInt", "unsignedInt", "String", "string",
	"Code", "code", "Uri", "uri", "Url", "url", "Canonical", "canonical", "Id", "id",
	"Oid", "oid", "Uuid", "uuid", "Markdown", "markdown", "Base64Binary", "base64Binary",
	"Instant", "instant", "Date", "date", "DateTime", "dateTime", "Time", "time",
	"Address", "Address", "Age", "Age", "Annotation", "Annotation",
	"Attachment", "Attachment", "CodeableConcept", "CodeableConcept",
	"Coding", "Coding", "ContactPoint", "ContactPoint", "Count", "Count",
	"Distance", "Distance", "Duration", "Duration", "HumanName", "HumanName",
	"Identifier", "Identifier", "Money", "Money", "Period", "Period",
	"Quantity", "Quantity", "Range", "Range", "Ratio", "Ratio",
	"Reference", "Reference", "SampledData", "SampledData", "Signature", "Signature",
	"Timing", "Timing", "Dosage", "Dosage", "Meta", "Meta", "Expression", "Expression",
	"UsageContext", "UsageContext", "ContactDetail", "ContactDetail",
	"RelatedArtifact", "RelatedArtifact",
};

struct elem {
	const char *owner;
	const char *name;
	const char *type;
	int array;
};

static struct elem *elems;
static size_t n_elems;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static int elem_cmp(const void *a, const void *b)
{
	const struct elem *x = a, *y = b;
	int c = strcmp(x->owner, y->owner);
	return c ? c : strcmp(x->name, y->name);
}

/* Split every spec into elements once; the strings live for the process. */
static void table_build(void)
{
	size_t i, cap = 0;
	struct elem *out;

	for (i = 0; i < HB_FHIR_ARRAY_LEN(specs); i++) {
		const char *p;
		cap++;
		for (p = specs[i].elems; *p; p++)
			cap += *p == ' ';
	}
	out = calloc(cap, sizeof(*out));
	if (!out)
		return; /* lookups then find nothing and the generic rules apply */
	for (i = 0; i < HB_FHIR_ARRAY_LEN(specs); i++) {
		char *copy = strdup(specs[i].elems), *save = NULL, *tok;
		if (!copy)
			break;
		for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			char *colon = strchr(tok, ':');
			size_t nl;
			if (!colon)
				continue;
			*colon = '\0';
			nl = strlen(tok);
			out[n_elems].array = nl > 0 && tok[nl - 1] == '*';
			if (out[n_elems].array)
				tok[nl - 1] = '\0';
			out[n_elems].owner = specs[i].owner;
			out[n_elems].name = tok;
			out[n_elems].type = colon + 1;
			n_elems++;
		}
	}
	qsort(out, n_elems, sizeof(*out), elem_cmp);
	elems = out;
}

const char *fhir_type_choice(const char *name, size_t *prefix_len)
{
	size_t nl = strlen(name), i, best = 0;
	const char *type = NULL;

	for (i = 0; i < HB_FHIR_ARRAY_LEN(choice_types); i += 2) {
		size_t sl = strlen(choice_types[i]);
		if (sl < nl && sl > best && strcmp(name + nl - sl, choice_types[i]) == 0) {
			best = sl;
			type = choice_types[i + 1];
		}
	}
	if (type && prefix_len)
		*prefix_len = nl - best;
	return type;
}

const char *fhir_type_elem(const char *owner, int is_resource, const char *name,
			   int *array)
{
	struct elem key, *hit;
	size_t i;

	*array = 0;
	pthread_once(&table_once, table_build);
	for (i = 0; owner && i < HB_FHIR_ARRAY_LEN(quantity_aliases); i++)
		if (strcmp(owner, quantity_aliases[i]) == 0)
			owner = "Quantity";
	if (owner && elems) {
		key.owner = owner;
		key.name = name;
		hit = bsearch(&key, elems, n_elems, sizeof(*elems), elem_cmp);
		if (hit) {
			*array = hit->array;
			return hit->type;
		}
	}
	/* Element, BackboneElement, Resource and DomainResource. */
	if (strcmp(name, "extension") == 0 || strcmp(name, "modifierExtension") == 0) {
		*array = 1;
		return "Extension";
	}
	if (is_resource) {
		if (strcmp(name, "id") == 0)
			return "id";
		if (strcmp(name, "meta") == 0)
			return "Meta";
		if (strcmp(name, "implicitRules") == 0)
			return "uri";
		if (strcmp(name, "language") == 0)
			return "code";
		if (strcmp(name, "text") == 0)
			return "Narrative";
		if (strcmp(name, "contained") == 0) {
			*array = 1;
			return "Resource";
		}
	} else if (strcmp(name, "id") == 0) {
		return "string";
	}
	return fhir_type_choice(name, NULL);
}

enum fhir_prim fhir_type_prim(const char *type)
{
	if (!type || !(type[0] >= 'a' && type[0] <= 'z'))
		return FHIR_COMPLEX;
	if (strcmp(type, "boolean") == 0)
		return FHIR_BOOLEAN;
	if (strcmp(type, "integer") == 0 || strcmp(type, "positiveInt") == 0 ||
	    strcmp(type, "unsignedInt") == 0)
		return FHIR_INTEGER;
	if (strcmp(type, "decimal") == 0)
		return FHIR_DECIMAL;
	if (strcmp(type, "xhtml") == 0)
		return FHIR_XHTML;
	return FHIR_STRING;
}

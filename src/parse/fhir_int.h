/* fhir internals shared by fhir.c, fhir_xml.c, fhir_types.c and fhirpath. */
#ifndef HB_FHIR_INT_H
#define HB_FHIR_INT_H

#include "parse/fhir.h"
#include "util.h"

#define HB_FHIR_ARRAY_LEN(a) HB_ARRAY_LEN(a)

void fhir_seterr(fhir_error_t *err, int line, int column, size_t offset,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Check the root is an object with resourceType; on failure decref it. */
json_t *fhir_check_root(json_t *root, fhir_error_t *err);

/* JSON kinds of primitive FHIR types. */
enum fhir_prim {
	FHIR_COMPLEX = 0, /* datatype, backbone element or resource */
	FHIR_STRING,      /* every string-like primitive */
	FHIR_BOOLEAN,
	FHIR_INTEGER,     /* integer, positiveInt, unsignedInt */
	FHIR_DECIMAL,
	FHIR_XHTML,       /* narrative div */
};

/* Element `name` of type `owner` (a datatype such as "HumanName", a resource
 * such as "Patient", or a backbone element such as "Patient.contact").
 * is_resource says owner is a resource, so the Resource/DomainResource
 * elements apply. Returns the element's type ("HumanName", "boolean",
 * "Resource", "Patient.contact") and sets *array, or NULL if the table does
 * not know it. Choice elements (valueQuantity) are typed by their suffix. */
const char *fhir_type_elem(const char *owner, int is_resource, const char *name,
			   int *array);
/* JSON kind of a type returned above. */
enum fhir_prim fhir_type_prim(const char *type);
/* For a choice element name such as "valueQuantity": the type named by its
 * suffix ("Quantity") and the length of the prefix; NULL if none. */
const char *fhir_type_choice(const char *name, size_t *prefix_len);

#endif

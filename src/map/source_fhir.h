/* source_fhir — FHIR resources (parse/fhir.h tree) as a mapping source;
 * paths are FHIRPath (parse/fhirpath.h), evaluated on the resource or, inside
 * an each-block, on the current item (reach the resource with %resource). */
#ifndef HB_MAP_SOURCE_FHIR_H
#define HB_MAP_SOURCE_FHIR_H

#include <jansson.h>

#include "map/source.h"
#include "parse/fhirpath.h"

extern const struct map_source_ops map_source_fhir;

struct fhirsrc_scope {
	fhirpath_ctx_t ctx;          /* resource, and the Bundle for resolve() */
	const fhirpath_item_t *item; /* NULL: the resource itself */
};

/* The scope for one resource; bundle (may be NULL) is the enclosing Bundle. */
void fhirsrc_scope_init(struct fhirsrc_scope *sc, json_t *resource, json_t *bundle);

#endif

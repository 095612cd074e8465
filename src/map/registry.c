/* registry — the source adapters a mapping may name after `source`. */
#include "map/map_int.h"

#include <string.h>

#include "map/source_fhir.h"
#include "map/source_hl7.h"
#include "util.h"

/* Built-in adapters; tests add one of their own. */
static const struct map_source_ops *builtin[] = { &map_source_hl7, &map_source_fhir };
static const struct map_source_ops *test_ops;

const struct map_source_ops *map_source_find(const char *name, size_t len)
{
	for (size_t i = 0; i < HB_ARRAY_LEN(builtin); i++)
		if (builtin[i] && strlen(builtin[i]->name) == len &&
		    memcmp(builtin[i]->name, name, len) == 0)
			return builtin[i];
	if (test_ops && strlen(test_ops->name) == len && memcmp(test_ops->name, name, len) == 0)
		return test_ops;
	return NULL;
}

void map_source_register_test(const struct map_source_ops *ops) { test_ops = ops; }

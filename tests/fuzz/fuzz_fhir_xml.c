/* libFuzzer target: FHIR XML reading (hardened libxml2 + conversion into
 * the JSON tree) and Bundle iteration of the result. */
#include <stddef.h>
#include <stdint.h>

#include "parse/fhir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fhir_limits_t lim;
	fhir_error_t err;
	fhir_bundle_iter_t it;
	fhir_entry_t e;
	json_t *t;

	fhir_limits_init(&lim);
	lim.max_size = 1u << 20;
	lim.max_depth = 64;
	t = fhir_read_xml((const char *)data, size, &lim, &err);
	if (!t)
		return 0;
	if (fhir_bundle_iter_init(&it, t, &err) == 0)
		while (fhir_bundle_next(&it, &e, &err) != 0)
			;
	json_decref(t);
	return 0;
}

/* libFuzzer target: FHIR JSON reading, Bundle iteration and NDJSON. */
#include <stddef.h>
#include <stdint.h>

#include "parse/fhir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk_bundle(json_t *t)
{
	fhir_bundle_iter_t it;
	fhir_entry_t e;
	fhir_error_t err;
	int rc;

	if (fhir_bundle_iter_init(&it, t, &err) != 0)
		return;
	while ((rc = fhir_bundle_next(&it, &e, &err)) != 0)
		(void)rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fhir_limits_t lim;
	fhir_error_t err;
	fhir_ndjson_t nd;
	json_t *t;

	fhir_limits_init(&lim);
	lim.max_size = 1u << 20;
	lim.max_depth = 64;
	t = fhir_read_json((const char *)data, size, &lim, &err);
	if (t) {
		walk_bundle(t);
		json_decref(t);
	}
	fhir_ndjson_init(&nd, (const char *)data, size, &lim);
	while (fhir_ndjson_next(&nd, &t, NULL, &err) != 0) {
		if (t) {
			walk_bundle(t);
			json_decref(t);
		}
	}
	return 0;
}

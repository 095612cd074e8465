/* libFuzzer target: FHIRPath compile + evaluate. The first line of the input
 * is the expression; the rest, if it reads as a FHIR resource (JSON or XML),
 * is the context, else a built-in Bundle is used so resolve() has targets. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "parse/fhir.h"
#include "parse/fhirpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fallback[] =
	"{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
	"{\"fullUrl\":\"urn:uuid:1\",\"resource\":{\"resourceType\":\"Patient\",\"id\":\"p\","
	"\"contained\":[{\"resourceType\":\"Medication\",\"id\":\"m\"}],"
	"\"identifier\":[{\"type\":{\"coding\":[{\"code\":\"MR\"}]},\"value\":\"1\"}],"
	"\"name\":[{\"given\":[\"A\",\"B\"],\"_given\":[null,{\"extension\":[{\"url\":\"u\","
	"\"valueString\":\"x\"}]}]}],\"active\":true,\"multipleBirthInteger\":2}},"
	"{\"fullUrl\":\"urn:uuid:2\",\"resource\":{\"resourceType\":\"MedicationRequest\","
	"\"subject\":{\"reference\":\"urn:uuid:1\"},\"medicationReference\":{\"reference\":\"#m\"},"
	"\"dosageInstruction\":[{\"doseAndRate\":[{\"doseQuantity\":{\"value\":1.5}}]}]}}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	size_t elen = nl ? (size_t)(nl - (const char *)data) : size;
	fhirpath_error_t err;
	fhir_error_t ferr;
	fhirpath_t *fp;
	fhirpath_result_t r;
	fhirpath_ctx_t ctx;
	json_t *res = NULL, *entries, *e;
	size_t i, k;
	char buf[64];

	fp = fhirpath_compile((const char *)data, elen, &err);
	if (!fp)
		return 0;
	if (nl && size - elen > 1)
		res = fhir_read(nl + 1, size - elen - 1, NULL, &ferr);
	if (!res)
		res = json_loads(fallback, 0, NULL);
	ctx.resource = res;
	ctx.bundle = res;
	ctx.entry = NULL;
	fhirpath_result_init(&r);
	if (fhirpath_eval(fp, &ctx, NULL, &r, &err) == 0)
		for (i = 0; i < r.count; i++)
			(void)fhirpath_item_str(&r.items[i], buf, sizeof(buf));
	/* Also from each Bundle entry, as the mapping layer does. */
	entries = json_object_get(res, "entry");
	json_array_foreach(entries, k, e) {
		ctx.resource = json_object_get(e, "resource");
		if (!ctx.resource)
			continue;
		if (fhirpath_eval(fp, &ctx, NULL, &r, &err) == 0 && r.count)
			(void)fhirpath_result_str(&r, buf, sizeof(buf));
	}
	fhirpath_result_clear(&r);
	json_decref(res);
	fhirpath_free(fp);
	return 0;
}

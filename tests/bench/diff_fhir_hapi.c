/* diff_fhir_hapi — differential test against HAPI FHIR output.
 *
 *   diff_fhir_hapi DIR EXPRS
 *
 * DIR is written by tests/bench/hapi-fhir (HapiDiff); see fhir_hapi_diff.h.
 * Exit 0 when our trees and FHIRPath answers match HAPI's, 1 otherwise. */
#include <stdio.h>

#include "fhir_hapi_diff.h"

int main(int argc, char **argv)
{
	struct fhir_hapi_stats st;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: %s DIR EXPRS\n", argv[0]);
		return 2;
	}
	rc = fhir_hapi_diff(argv[1], argv[2], stdout, &st);
	return rc < 0 ? 2 : rc;
}

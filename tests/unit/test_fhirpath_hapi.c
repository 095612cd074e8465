/* The HAPI FHIR differential test on a committed snapshot of HAPI's output
 * (tests/fixtures/fhir/hapi/, written by tests/bench/hapi-fhir/run.sh's
 * HapiDiff step), so it runs without Java: 32 resources as HAPI encodes
 * them in JSON and XML, and HAPI's FHIRPath answers for exprs.txt. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>

#include "../bench/fhir_hapi_diff.h"

Test(fhirpath_hapi, same_trees_and_answers_as_hapi)
{
	const char *d = getenv("HB_SRCDIR");
	char dir[1024], exprs[1024];
	struct fhir_hapi_stats st;
	int rc;

	snprintf(dir, sizeof(dir), "%s/tests/fixtures/fhir/hapi", d ? d : HB_SRCDIR);
	snprintf(exprs, sizeof(exprs), "%s/tests/bench/hapi-fhir/exprs.txt", d ? d : HB_SRCDIR);
	rc = fhir_hapi_diff(dir, exprs, stderr, &st);
	cr_assert_eq(rc, 0, "differences from HAPI (see the log)");
	cr_assert_geq(st.resources, 30);
	cr_assert_eq(st.trees_equal + st.trees_div_ws, st.resources);
	cr_assert_geq(st.expressions, 40);
	cr_assert_eq(st.matched, st.compared);
	cr_assert_geq(st.nontrivial_exprs, 40);
}

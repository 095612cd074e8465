/* The shipped mappings against their golden cases (mappings/tests/), and the
 * shipped samples: every sample is covered by a mapping. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map/golden.h"
#include "map/map.h"
#include "map_test_source.h"

static const char *srcdir(void)
{
	return getenv("HB_SRCDIR") ? getenv("HB_SRCDIR") : HB_SRCDIR;
}


Test(map_golden, shipped_mappings_pass_their_golden_cases)
{
	struct map_set *s = mt_load_shipped();
	char tests[1024], *out = NULL;
	size_t outlen = 0;
	struct map_golden_stats st;
	snprintf(tests, sizeof(tests), "%s/mappings/tests", srcdir());
	FILE *f = open_memstream(&out, &outlen);
	int rc = map_golden_run(s, tests, 0, f, &st);
	fclose(f);
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert_geq(st.cases, 20, "only %d golden cases", st.cases);
	free(out);
	map_set_free(s);
}

/* A golden case that fails must fail: change the expectation in memory. */
Test(map_golden, a_wrong_expectation_is_caught)
{
	struct map_set *s = mt_load_shipped();
	char path[1024], err[256];
	snprintf(path, sizeof(path), "%s/mappings/tests/rde-o11/rde_o11.hl7", srcdir());
	json_t *actual = map_golden_actual(s, path, err, sizeof(err));
	cr_assert(actual, "%s", err);
	cr_assert_eq(json_array_size(actual), 2);
	json_t *changed = json_deep_copy(actual);
	json_object_set_new(json_object_get(json_object_get(json_array_get(changed, 0), "event"),
					    "data"), "status", json_string("on-hold"));
	cr_assert(!json_equal(actual, changed));
	json_decref(changed);
	json_decref(actual);
	map_set_free(s);
}

/* Every file in samples/ yields at least one event or names why not. */
Test(map_golden, every_sample_is_mapped)
{
	struct map_set *s = mt_load_shipped();
	const char *sub[] = { "hl7v2", "fhir" };
	int n = 0;
	for (size_t i = 0; i < 2; i++) {
		char dir[1024];
		snprintf(dir, sizeof(dir), "%s/samples/%s", srcdir(), sub[i]);
		DIR *d = opendir(dir);
		struct dirent *de;
		cr_assert(d, "%s", dir);
		while ((de = readdir(d))) {
			char path[2048], err[256];
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			json_t *a = map_golden_actual(s, path, err, sizeof(err));
			cr_assert(a, "%s: %s", path, err);
			int events = 0;
			size_t k;
			json_t *o;
			json_array_foreach(a, k, o) events += json_object_get(o, "event") != NULL;
			/* the lab order is there to show an unmatched message */
			if (!strstr(de->d_name, "_lab"))
				cr_expect_gt(events, 0, "%s: no event", path);
			json_decref(a);
			n++;
		}
		closedir(d);
	}
	cr_assert_geq(n, 15);
	map_set_free(s);
}

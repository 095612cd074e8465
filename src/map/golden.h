/* golden — golden tests of mappings: mappings/tests/<case>/<input> with
 * <input stem>.expected.json beside it. The expectation is what
 * `hl7bridge map` prints for the input, as one JSON array, with eventId and
 * timestamp left out (they change with the ledger key and the clock); a
 * rejected message appears as {"rejected": reason}, an unmatched one as
 * {"unmatched": true}. */
#ifndef HB_MAP_GOLDEN_H
#define HB_MAP_GOLDEN_H

#include <stdio.h>

#include <jansson.h>

#include "map/map.h"

struct map_golden_stats {
	int cases;
	int failed;
};

/* What the set makes of one input file, in the expectation's shape; NULL
 * with errstr if the file cannot be read. */
json_t *map_golden_actual(const struct map_set *s, const char *path, char *errstr,
			  size_t errstr_size);

/* Run every case below tests_dir; print one line per case and a diff per
 * failure to out. update: write the actual output as the new expectation.
 * Returns 0 when all passed. */
int map_golden_run(const struct map_set *s, const char *tests_dir, int update, FILE *out,
		   struct map_golden_stats *st);

/* Print a line diff of two texts (- expected, + actual). */
void map_diff_print(FILE *out, const char *expected, const char *actual);

#endif

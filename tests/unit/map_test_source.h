/* A tiny source adapter for testing the mapping language without a parser:
 * the input is a JSON object; a path is a key (`name`) or, inside an
 * each-block, a relative key (`.name`); a string is one value, an array of
 * strings several, an array of objects the items of `each`. */
#ifndef HB_MAP_TEST_SOURCE_H
#define HB_MAP_TEST_SOURCE_H

#include <jansson.h>

#include "map/map.h"

extern const struct map_source_ops map_test_source;

/* Helpers shared by the map tests. */
/* Make a fresh folder under /tmp and return its path (static storage). */
const char *mt_tmpdir(void);
/* Write text to dir/rel (creating sub folders). */
void mt_write(const char *dir, const char *rel, const char *text);
/* Load dir as a mapping set against the project's schemas. */
struct map_set *mt_load(const char *dir, struct map_diag *d);
/* The shipped mappings (mappings/); fails the test when they do not load. */
struct map_set *mt_load_shipped(void);
/* Apply to a JSON input; return [{topic, key, event}] or NULL (rejected;
 * reason copied into rej). */
json_t *mt_apply(const struct map_set *s, const char *input_json, enum map_result *res,
		 struct map_reject *rej, unsigned flags);

#endif

/* Fuzz the mapping compiler: any bytes as a .map file must give a mapping or
 * a positioned error, never a crash, leak or hang. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "map/map_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct map_set *base;

static void free_base(void)
{
	map_set_free(base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char root[1024];
	if (!base) {
		struct map_diag d = { 0 };
		const char *src = getenv("HB_SRCDIR") ? getenv("HB_SRCDIR") : HB_SRCDIR;
		char schemas[1024];
		snprintf(root, sizeof(root), "%s/mappings", src);
		snprintf(schemas, sizeof(schemas), "%s/conf/schemas", src);
		base = map_set_load(root, schemas, &d);
		map_diag_clear(&d);
		if (!base)
			abort();
		atexit(free_base);
	}
	/* a fresh pool per input, on the loaded schemas */
	struct map_set s = *base;
	struct map_diag d = { 0 };
	s.pool = map_pool_new();
	s.tables = map_pool_alloc(s.pool, MAP_MAX_SHARED_TABLES * sizeof(*s.tables));
	s.tfiles = map_pool_alloc(s.pool, MAP_MAX_TABLE_FILES * sizeof(*s.tfiles));
	s.ntables = s.ntfiles = 0;
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	map_compile(&s, "fuzz.map", text, size, root, &d);
	map_diag_clear(&d);
	free(text);
	map_pool_free(s.pool);
	return 0;
}

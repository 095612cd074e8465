/* Fuzz mapping HL7v2 messages through the shipped mappings and both
 * encoders: whatever the message, map_apply returns a result and the
 * encoders write what it built. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "map/map.h"
#include "map/source_hl7.h"
#include "parse/hl7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int encode_cb(const struct map_event *ev, void *opaque)
{
	static unsigned char buf[65536];
	char err[128];
	char *j = map_event_json(ev);
	free(j);
	map_event_avro(ev, buf, sizeof(buf), err, sizeof(err));
	return 0;
}

static struct map_set *set;

/* avro-c keeps buffers in the schemas' values: free the set before the leak
 * check runs, so only per-input leaks are reported */
static void free_set(void)
{
	map_set_free(set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hl7_seg segs[512];
	if (!set) {
		struct map_diag d = { 0 };
		const char *src = getenv("HB_SRCDIR") ? getenv("HB_SRCDIR") : HB_SRCDIR;
		char maps[1024], schemas[1024];
		snprintf(maps, sizeof(maps), "%s/mappings", src);
		snprintf(schemas, sizeof(schemas), "%s/conf/schemas", src);
		set = map_set_load(maps, schemas, &d);
		map_diag_clear(&d);
		if (!set)
			abort();
		atexit(free_set);
	}
	struct hl7_msg m;
	struct hl7_error he;
	if (hl7_parse(&m, (const char *)data, size, segs, 512, NULL, &he) != 0)
		return 0;
	struct hl7src_scope sc;
	hl7src_scope_init(&sc, &m);
	struct map_input in = { .ops = &map_source_hl7, .scope = &sc, .ledger_key = data,
				.ledger_key_len = size < 32 ? size : 32, .message_id = "fuzz",
				.now_ms = 0 };
	struct map_reject rej;
	map_apply(set, &in, MAP_EXPLAIN, encode_cb, NULL, NULL, &rej);
	hl7_msg_clear(&m);
	return 0;
}

/* input — every input `hl7bridge map` accepts, split into messages, each
 * turned into a map_input: single HL7 messages, HL7 batches (FHS/BHS or
 * plain concatenations), MLLP captures, FHIR JSON or XML resources, Bundles (entry by
 * entry, resolve() across entries), NDJSON. The daemon has its own ingest;
 * this is for tools and tests. */
#ifndef HB_MAP_INPUT_H
#define HB_MAP_INPUT_H

#include <stddef.h>

#include "map/map.h"

/* label names the message for messages to the user: "file.hl7 message 2
 * (MSH-10 X1)" — ids and positions, never content. A message of a batch (or
 * a line of NDJSON, an entry of a Bundle) that cannot be read is reported
 * with in == NULL and a label that ends with the reason; the next one
 * follows. */
typedef int (*map_input_cb)(const struct map_input *in, const char *label, void *opaque);

/* Split buf (the content of the file called name) and call cb per message
 * (in->now_ms is now_ms). A cb returning non-zero stops. Returns 0, the cb's
 * non-zero value, or -1 with errstr when the input as a whole cannot be read
 * (not HL7 or FHIR, a broken batch envelope, a broken JSON document). */
int map_input_each(const char *name, const char *buf, size_t len, int64_t now_ms,
		   map_input_cb cb, void *opaque, char *errstr, size_t errstr_size);

#endif

/*
 * playground — what the current mappings make of a sample, for analysts:
 * the events (as JSON, in the encoder's field order) and `map --explain`'s
 * trace (each target's value and the source path it came from), or why the
 * message was rejected. Nothing is published and nothing is logged: the
 * sample may carry patient data, so it stays between the analyst's browser
 * and this function.
 *
 * Thread-safe for a shared, immutable map set (JSON only; no Avro encoder).
 */
#ifndef HB_PLAYGROUND_H
#define HB_PLAYGROUND_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct map_set;

/* Messages beyond this many in one sample are not run (say so). */
#define PLAYGROUND_MAX_MESSAGES 50

/* Run s over buf: any input `hl7bridge map` accepts (HL7v2 messages and
 * batches, FHIR JSON/XML resources, Bundles, NDJSON). Returns a new object:
 *   {"messages": [{"label", "result": "events"|"unmatched"|"rejected"|"error",
 *                  "events": [{"mapping", "mapping_hash", "topic", "key",
 *                              "event_type", "event_id", "headers", "event",
 *                              "explain": [{"target", "value", "from"}]}],
 *                  "reject": {"code", "mapping", "target", "source", "reason"}}],
 *    "error": null or "why the input could not be read",
 *    "truncated": true when PLAYGROUND_MAX_MESSAGES were run and more remain}
 * NULL only when out of memory. */
json_t *playground_run(const struct map_set *s, const char *buf, size_t len, int64_t now_ms);

#endif

/* input — every input hl7bridge reads from files, split into messages, each
 * turned into a map_input: single HL7 messages, HL7 batches (FHS/BHS or
 * plain concatenations, CR, LF or CRLF), MLLP-framed dumps, FHIR JSON or XML
 * resources, Bundles (entry by entry, resolve() across entries; entries
 * without a resource skipped, nested Bundles opened), NDJSON.
 * Used by `hl7bridge map`, the golden tests and the file drops. */
#ifndef HB_MAP_INPUT_H
#define HB_MAP_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "map/map.h"
#include "parse/hl7.h"
#include "publish/ledger.h"

/* One message of an input. */
struct map_item {
	size_t index;               /* 0-based message number in the input */
	size_t offset;              /* byte offset of the message in the input */
	size_t line;                /* 1-based line (NDJSON), else 0 */
	const char *raw;            /* the message's bytes, for dead letters (valid during the call) */
	size_t raw_len;
	const char *content_type;   /* application/hl7-v2, application/fhir+json, application/fhir+xml */
	const struct map_input *in; /* NULL when this message could not be read */
	int err_code;               /* HL7 table 0357 code, when in == NULL */
	const char *error;          /* why, when in == NULL: positions and paths, never values */
	const char *label;          /* "file.hl7 message 2 (MSH-10 X1)": ids and positions only */
};

typedef int (*map_item_cb)(const struct map_item *it, void *opaque);

/* Split buf (the content of the file called name) and call cb per message,
 * readable or not (in->now_ms is now_ms). A cb returning non-zero stops.
 * Returns 0, the cb's non-zero value, or -1 with errstr when the input as a
 * whole cannot be read any further (unknown format, broken batch envelope,
 * an unreadable JSON/XML document); messages delivered before stay delivered. */
int map_input_items(const char *name, const char *buf, size_t len, int64_t now_ms,
		    map_item_cb cb, void *opaque, char *errstr, size_t errstr_size);

/* One FHIR resource the caller has read already (from raw, raw_len, of
 * content type ctype), delivered as map_input_items would: a Bundle entry
 * by entry, numbered from 0. For the FHIR listener, which looks at a
 * Bundle's type before handing it over. */
int map_input_fhir(const char *name, json_t *res, const char *raw, size_t raw_len,
		   const char *ctype, int64_t now_ms, map_item_cb cb, void *opaque);

/* Reading one input with several threads: thread `mine` of `of` gets the
 * messages of the slices (runs of `slice` consecutive messages, numbered
 * from 0) whose number modulo `of` is `mine`; it counts the others without
 * reading them, so every thread sees the same message numbers. Inputs that
 * cannot be split that way (a FHIR document or Bundle, NDJSON with Bundles)
 * go whole to thread 0 and the others get nothing. */
struct map_input_shard {
	size_t slice;
	unsigned of, mine;
};

/* Whether buf can be read in shards (HL7v2 batches and dumps, NDJSON
 * without Bundles). */
int map_input_shardable(const char *buf, size_t len);

/* Whether buf is HL7v2 (a batch, single messages or MLLP frames). */
int map_input_is_hl7(const char *buf, size_t len);

/* The number of messages in buf, counted without reading them (as a shard
 * counts the others'), or -1 when only reading them tells: FHIR documents
 * and Bundles, NDJSON holding Bundles. */
ssize_t map_input_count(const char *buf, size_t len);

/* map_input_items for one shard (shard NULL: the whole input); *count, if
 * not NULL, gets the number of messages seen, delivered or not. */
int map_input_items_shard(const char *name, const char *buf, size_t len, int64_t now_ms,
			  const struct map_input_shard *shard, map_item_cb cb, void *opaque,
			  size_t *count, char *errstr, size_t errstr_size);

/* Whether buf ends where a complete input ends. Returns len when it does
 * (or cannot tell), else the byte offset where the incomplete tail starts,
 * with why (positions only): an HL7 batch whose last segment has no
 * terminator, or an FHS/BHS batch without its closing FTS/BTS (its last
 * message is in doubt), or NDJSON whose unterminated last line is not
 * JSON. Reading buf up to the offset returned leaves the cut-off message
 * out. A file drop uses it: a file cut by a full disk must not have its last
 * message published as if whole. */
size_t map_input_complete(const char *buf, size_t len, char *why, size_t why_size);

/* Tools' variant: stops with an error at the first unreadable message.
 * label names the message for messages to the user. */
typedef int (*map_input_cb)(const struct map_input *in, const char *label, void *opaque);
int map_input_each(const char *name, const char *buf, size_t len, int64_t now_ms,
		   map_input_cb cb, void *opaque, char *errstr, size_t errstr_size);

/* The ledger key of an HL7v2 message: SHA-256 over the sender (MSH-3^MSH-4),
 * MSH-10 and the whole message in canonical form (every segment ended by one
 * CR, whatever its line endings were; empty lines dropped). The same message
 * gets the same key (and so the same eventIds) whether it came over MLLP, in
 * an LF, CR or CRLF file, or through `hl7bridge map`; canonical bytes hash
 * as they are. */
void map_input_hl7_key(const struct hl7_msg *m, const char *raw, size_t len,
		       uint8_t key[LEDGER_KEY_LEN]);

#endif

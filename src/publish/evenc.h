/*
 * evenc — turn mapped events into Kafka records of a publisher job: JSON, or
 * Avro in the Confluent wire format (magic 0, 4-byte schema id, binary),
 * with the mapping layer's headers plus content-type (the format's) and
 * hl7bridge-origin.
 *
 * The value format is this module's: a new one is a value of enum
 * evenc_format, a row of the table in evenc.c and its branch in evenc_add.
 *
 * One encoder per thread (it owns a scratch buffer; evenc_copy makes one for
 * another thread) and per mapping set. Schema ids are resolved once, at
 * set-up, through the Schema Registry (blocking HTTP, never per message).
 */
#ifndef HB_EVENC_H
#define HB_EVENC_H

#include <stddef.h>
#include <stdint.h>

#include "map/map.h"
#include "publish/pub.h"
#include "publish/registry.h"

/* The value format of event records ([bridge] value.format). */
enum evenc_format {
	EVENC_JSON = 0, /* compact JSON, fields in schema order (the default) */
	EVENC_AVRO,     /* Confluent wire format; needs a Schema Registry */
};

/* The formats' configuration names, for messages: "json or avro". */
#define EVENC_FORMAT_NAMES "json or avro"

/* A configuration name ("json", "avro") to its format; -1 for anything else. */
int evenc_format_parse(const char *name);
/* Does the format need a Schema Registry ([registry] url)? */
int evenc_format_needs_registry(enum evenc_format f);
/* The records' content-type header ("application/json", ...). */
const char *evenc_content_type(enum evenc_format f);

struct evenc {
	enum evenc_format format;
	const struct map_set *maps;
	struct {
		const struct map_schema *schema;
		int32_t id;
	} *ids;
	size_t nids;
	char *buf;           /* scratch: the encoded value (JSON, or Avro after its header) */
	size_t cap;
};

/* Set up for a mapping set; for Avro, register its schemas (subject = the
 * record's full name, as the quick start's client registers it). Returns 0,
 * or -1 with errstr; e is left unchanged on failure. */
int evenc_init(struct evenc *e, enum evenc_format format, const struct map_set *maps,
	       struct registry *reg, char *errstr, size_t errstr_size);
void evenc_clear(struct evenc *e);

/* An encoder for another thread: src's schema ids, a scratch buffer of its
 * own. Returns 0, or -1 (memory). */
int evenc_copy(struct evenc *dst, const struct evenc *src);

/* Encode ev and add it to job. Returns 0, or -1 with errstr (no patient data). */
int evenc_add(struct evenc *e, struct pub_job *job, const struct map_event *ev,
	      const char *origin, char *errstr, size_t errstr_size);

#endif

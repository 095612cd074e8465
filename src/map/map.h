/* map — mapping files: compile them, apply them to messages, get events.
 *
 * A *set* is every mapping under one directory (every NAME.map below it), the shared
 * tables they `use`, and the event schemas (conf/schemas/NAME.avsc) they are
 * checked against. Loading is all or nothing: one error in one file and no
 * set is returned; the caller keeps the set it had.
 *
 * map_apply() runs every mapping whose `when` holds on one input message
 * and hands the events to a callback — all of them, or none when a
 * `required` rule comes out empty (the message is then rejected with a
 * reason naming the target and the source path, never a value).
 *
 * A set is immutable after loading and may be shared by threads (the Avro
 * encoder, map_event_avro, serialises its calls per schema).
 */
#ifndef HB_MAP_H
#define HB_MAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "map/source.h"

struct map_set;
struct map_schema;
struct map_node;

/* ---- diagnostics ---------------------------------------------------------- */

/* Load errors, each `file:line:col: message` followed by the line and a caret
 * under the column. Accumulated across files so `check` shows them all. */
struct map_diag {
	char *text;   /* NUL-terminated, heap; NULL when empty */
	size_t len, cap;
	int errors;
};

void map_diag_clear(struct map_diag *d);
/* Whether diagnostics quote the offending source line under file:line:col
 * (default on, for the CLI). The daemon turns it off once at start: its logs
 * keep file:line:col and the message, never a mapping's text, which may hold
 * literal values copied from a sample. Not thread-safe: call before loading. */
void map_diag_set_quote_source(int on);

/* ---- loading --------------------------------------------------------------- */

/* Every limit has a name: files larger than this are refused. */
#define MAP_MAX_FILE_SIZE (1u * 1024 * 1024)

/* Load every *.map below mappings_dir (the `tests` folder excepted) and every
 * *.avsc in schemas_dir. Table files named by `use` are resolved relative to
 * mappings_dir. Returns the set, or NULL with d->errors > 0. */
struct map_set *map_set_load(const char *mappings_dir, const char *schemas_dir,
			     struct map_diag *d);
void map_set_free(struct map_set *s);

size_t map_set_count(const struct map_set *s);
/* Mapping i's name, file, source ("hl7v2"/"fhir") and content hash (hex). */
const char *map_set_name(const struct map_set *s, size_t i);
const char *map_set_file(const struct map_set *s, size_t i);
const char *map_set_source(const struct map_set *s, size_t i);
const char *map_set_hash(const struct map_set *s, size_t i);

/* Call cb with every event type (topics = 0) or topic (topics = 1) mapping
 * i can produce, when that is known from the file (literals, tables, if()).
 * Returns 0, or -1 when it depends on the message in a way that cannot be
 * listed (then cb was not called). */
int map_set_types(const struct map_set *s, size_t i, int topics,
		  void (*cb)(const char *value, void *arg), void *arg);

/* The topic of a mapping without `topic`: prefix + type. The prefix is
 * "healthcare." unless set (config [topics] prefix); at most 63 bytes. */
void map_set_topic_prefix(struct map_set *s, const char *prefix);

/* Schemas: count, and each one's full name and Avro JSON text (for the
 * Schema Registry). */
size_t map_set_schema_count(const struct map_set *s);
const struct map_schema *map_set_schema(const struct map_set *s, size_t i);
const char *map_schema_fullname(const struct map_schema *sc);
const char *map_schema_text(const struct map_schema *sc);
/* Whether `text` (e.g. what a Schema Registry answers for sc's id) gives
 * sc's binary layout: the same named types, fields in the same order, the
 * same types and union branches. 1 same, 0 different, -1 not a schema. */
int map_schema_same_layout(const struct map_schema *sc, const char *text, size_t len);

/* ---- applying ------------------------------------------------------------- */

/* One input message, as a source adapter's root scope. */
struct map_input {
	const struct map_source_ops *ops; /* the format; only mappings with that source apply */
	void *scope;                      /* the adapter's whole-message scope */
	const void *ledger_key;           /* bytes that identify the message (ledger key) */
	size_t ledger_key_len;
	const char *message_id;           /* MSH-10, resource id: lineage only; may be NULL */
	int64_t now_ms;                   /* event timestamp (wall clock, ms) */
};

#define MAP_MAX_HEADERS 8

struct map_header {
	const char *name;
	const char *value;
};

/* One event. Everything is borrowed and valid during the callback only. */
struct map_event {
	size_t index;                /* 0-based position among the message's events */
	const char *mapping;         /* mapping name */
	const char *mapping_hash;
	const char *topic;
	const char *key;             /* "" when the key expression was empty */
	const char *event_type;      /* eventType, e.g. "prescription.created" */
	const char *event_id;        /* UUIDv5(ledger key, index) */
	const struct map_node *tree; /* the event; read it with map_event_json/_avro/_object */
	json_t *explain;             /* MAP_EXPLAIN: [{target, value, from}] in rule order; value
				      * null and from = the rule's source for a target left empty */
	const struct map_schema *schema;
	/* event-type, source, lineage; the encoder adds content-type (publish/evenc.h) */
	struct map_header headers[MAP_MAX_HEADERS];
	size_t nheaders;
};

typedef int (*map_event_cb)(const struct map_event *ev, void *opaque);

enum map_result {
	MAP_OK = 0,        /* n >= 1 events were delivered */
	MAP_UNMATCHED = 1, /* no mapping's `when` held: filter, reject or dead-letter by policy */
	MAP_REJECTED = 2,  /* a required rule came out empty, or a function failed on the input */
	MAP_ERROR = 3,     /* resources (arena limit, memory) or the callback failed */
};

/* What to do with a message no mapping matches (config `map.unmatched`). */
enum map_unmatched_policy {
	MAP_UNMATCHED_FILTER = 0,     /* acknowledge, count as filtered (default) */
	MAP_UNMATCHED_REJECT = 1,     /* AR, ERR-3 = 200 */
	MAP_UNMATCHED_DEADLETTER = 2, /* acknowledge, raw message to the dead-letter topic */
};
/* "filter", "reject", "deadletter" → policy; -1 for anything else. */
int map_unmatched_policy_parse(const char *s);

/* Why a message was rejected. No value from the message appears here. */
struct map_reject {
	int err_code;        /* HL7 table 0357: 101 required field missing, 102 data type error, 207 */
	char mapping[64];
	char target[96];     /* e.g. data.patientId */
	char source[160];    /* the rule's source text, e.g. PID-3[where .5 = "MR"].1 ?? PID-3.1 */
	char reason[384];    /* one sentence for logs, the ACK's ERR segment and the dead letter */
};

enum map_apply_flags {
	MAP_EXPLAIN = 1,     /* fill map_event.explain */
};

/* Apply every matching mapping of s to the input. Events are built first;
 * only when all succeeded is cb called for each, in order (so a rejected
 * message produces nothing). cb returning non-zero stops with MAP_ERROR.
 * Scratch memory is per thread and reused, so cb must not call map_apply. 
 * *nevents (may be NULL) gets the number delivered. rej (may be NULL) is
 * filled for every result but MAP_OK: err_code (table 0357: 200 for
 * MAP_UNMATCHED, 207 for MAP_ERROR) and a reason that is never empty. */
enum map_result map_apply(const struct map_set *s, const struct map_input *in, unsigned flags,
			  map_event_cb cb, void *opaque, size_t *nevents,
			  struct map_reject *rej);

/* map_apply() keeps a scratch arena per thread. A thread that applies
 * mappings only now and then (or is about to exit) frees it with this; the
 * next map_apply() on that thread makes a new one. */
void map_thread_release(void);

/* ---- encoding ------------------------------------------------------------ */

/* The event as compact JSON, fields in schema order (heap, caller frees),
 * NULL on failure. */
char *map_event_json(const struct map_event *ev);

/* The same into the caller's buffer *buf of *cap bytes, grown with realloc
 * as needed: the length (a NUL follows), or -1 (memory). */
ssize_t map_event_json_to(const struct map_event *ev, char **buf, size_t *cap);

/* The event as a jansson object (new reference), for tools and tests. */
json_t *map_event_object(const struct map_event *ev);

/* The event in Avro binary (no container, no wire-format prefix) into buf.
 * Returns the length, or -1 with errstr (too small: the needed size is not
 * known, grow and retry; or a value the schema refuses). Calls for one
 * schema take turns (they reuse the schema's value buffers). */
ssize_t map_event_avro(const struct map_event *ev, void *buf, size_t size, char *errstr,
		       size_t errstr_size);


/* UUIDv5 in the hl7bridge namespace over (key, index): the eventId. out gets
 * 36 characters and a NUL; -1 when out of memory. */
int map_event_id(char out[37], const void *key, size_t key_len, size_t index);

#endif

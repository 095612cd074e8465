/*
 * replay_diff — what a mapping change does to inputs, for `hl7bridge replay
 * --dry-run --diff`: each input's outcome before (the events published, or
 * another mappings folder's) and now (today's mappings), compared event by
 * event (paired by eventId), summarised per mapping and topic and written in
 * detail as JSON lines: paths always, values only when asked (they are
 * patient data).
 *
 * The index of published events is read from the event topics with a
 * read_committed consumer (JSON values; an Avro value is indexed as present
 * without contents). Not thread-safe.
 */
#ifndef HB_REPLAY_DIFF_H
#define HB_REPLAY_DIFF_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "map/map.h"

enum rdiff_status {
	RDIFF_EVENTS = 0,    /* the mappings made events */
	RDIFF_REJECTED = 1,  /* a mapping rejected it */
	RDIFF_UNMATCHED = 2, /* no mapping matched */
	RDIFF_UNREADABLE = 3,
	RDIFF_NONE = 4,      /* nothing published for it (before side, no index hit) */
};

/* One side: status, its events (array of {eventId, mapping, topic, event})
 * and, when rejected, the mapping and reason (never values). */
struct rdiff_side {
	enum rdiff_status status;
	json_t *events; /* owned */
	char mapping[64];
	char target[96]; /* the rule that rejected it, e.g. data.patientId */
	char reason[384];
};

void rdiff_side_init(struct rdiff_side *s);
void rdiff_side_clear(struct rdiff_side *s);
/* map_apply's callback: appends the event (a map_event_cb; opaque is the side). */
int rdiff_side_add_cb(const struct map_event *ev, void *opaque);
/* Fill s from map_apply's result. */
void rdiff_side_result(struct rdiff_side *s, enum map_result r, const struct map_reject *rej);

/* Published events by eventId. */
struct rdiff_index;
/* Read topics[0..n-1] from the beginning to their current end (read_committed).
 * conf is consumed. NULL with errstr on failure. */
struct rdiff_index *rdiff_index_load(rd_kafka_conf_t *conf, const char *const *topics, int n,
				     int timeout_ms, char *errstr, size_t errstr_size);
void rdiff_index_free(struct rdiff_index *ix);
size_t rdiff_index_size(const struct rdiff_index *ix);
/* Records on those topics that are not JSON events (Avro): not indexed. */
size_t rdiff_index_opaque(const struct rdiff_index *ix);
/* The published events of the input with this ledger key (eventIds
 * UUIDv5(key, 0), (key, 1), ... while present) into s (RDIFF_EVENTS, or
 * RDIFF_NONE when there is none). */
void rdiff_index_side(const struct rdiff_index *ix, const void *key, size_t key_len,
		      struct rdiff_side *s);

struct rdiff;
struct rdiff *rdiff_new(int values, FILE *out);
void rdiff_free(struct rdiff *d);
/* Compare one input's sides; writes its detail line unless it is unchanged. */
void rdiff_record(struct rdiff *d, const char *topic, int partition, int64_t offset,
		  const char *message_id, const struct rdiff_side *before,
		  const struct rdiff_side *now);
/* The summary: a JSON object line to out, and a table to err. */
void rdiff_summary(struct rdiff *d, FILE *out, FILE *err);

#endif

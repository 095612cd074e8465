/*
 * records — the dead-letter and raw records hl7bridge writes, with their
 * headers. (Event records carry the headers the mapping layer gives each
 * event — event-type, content-type, source as in the Event Broker quick
 * start, plus lineage — and hl7bridge-origin.)
 *
 * Dead letters: the raw input bytes; headers hl7bridge-stage
 * (parse|map|encode|publish), hl7bridge-error-code, hl7bridge-error (a reason
 * without patient data), hl7bridge-origin, hl7bridge-source-message-id, and
 * content-type of the input.
 * Raw copies: the input as received, with origin and content-type.
 */
#ifndef HB_RECORDS_H
#define HB_RECORDS_H

#include <stddef.h>

#include "publish/pub.h"

/* Where an input came from: "mllp:<listener>:<peer>" or "file:<drop>:<name>#<index>". */
struct rec_origin {
	const char *origin;     /* never NULL */
	const char *message_id; /* MSH-10, FHIR resource id, or NULL */
};

int records_add_deadletter(struct pub_job *job, const char *topic, const void *raw, size_t raw_len,
			   const char *input_content_type, const char *stage, const char *code,
			   const char *reason, const struct rec_origin *o);

int records_add_raw(struct pub_job *job, const char *topic, const void *raw, size_t raw_len,
		    const char *input_content_type, const struct rec_origin *o);

/* The same, for a record that must fit `room` bytes (pub_record_room of the
 * topic): a larger input is cut to the first bytes that fit, and the header
 * hl7bridge-truncated carries the input's full size in bytes. Used where the
 * input could not be published whole (a dead letter of a message too large
 * for Kafka): a cut copy is committed rather than none, and never retried. */
int records_add_deadletter_fit(struct pub_job *job, size_t room, const char *topic, const void *raw,
			       size_t raw_len, const char *input_content_type, const char *stage,
			       const char *code, const char *reason, const struct rec_origin *o);
int records_add_raw_fit(struct pub_job *job, size_t room, const char *topic, const void *raw,
			size_t raw_len, const char *input_content_type, const struct rec_origin *o);

#endif

#include "publish/records.h"

#include <string.h>

#include "util.h"

int records_add_deadletter(struct pub_job *job, const char *topic, const void *raw, size_t raw_len,
			   const char *input_content_type, const char *stage, const char *code,
			   const char *reason, const struct rec_origin *o)
{
	const struct pub_hdr h[] = {
		{ "hl7bridge-origin", o->origin },
		{ "hl7bridge-source-message-id", o->message_id },
		{ "content-type", input_content_type },
		{ "hl7bridge-stage", stage },
		{ "hl7bridge-error-code", code },
		{ "hl7bridge-error", reason },
	};
	return pub_job_add(job, topic, NULL, 0, raw, raw_len, h, (int)HB_ARRAY_LEN(h));
}

int records_add_raw(struct pub_job *job, const char *topic, const void *raw, size_t raw_len,
		    const char *input_content_type, const struct rec_origin *o)
{
	const struct pub_hdr h[] = {
		{ "hl7bridge-origin", o->origin },
		{ "hl7bridge-source-message-id", o->message_id },
		{ "content-type", input_content_type },
	};
	return pub_job_add(job, topic, NULL, 0, raw, raw_len, h, (int)HB_ARRAY_LEN(h));
}

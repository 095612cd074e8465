#include "publish/records.h"

#include <stdio.h>
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

/* Add the record, its value cut so that the record fits room: h has a spare
 * slot after its nh headers for hl7bridge-truncated. */
static int add_fit(struct pub_job *job, const char *topic, size_t room, const void *raw,
		   size_t raw_len, struct pub_hdr *h, int nh)
{
	char orig[32];
	size_t fixed, keep;
	if (pub_record_size(0, raw_len, h, nh) <= room)
		return pub_job_add(job, topic, NULL, 0, raw, raw_len, h, nh);
	snprintf(orig, sizeof orig, "%zu", raw_len);
	h[nh] = (struct pub_hdr){ "hl7bridge-truncated", orig };
	fixed = pub_record_size(0, 0, h, nh + 1);
	keep = room > fixed ? room - fixed : 0;
	return pub_job_add(job, topic, NULL, 0, raw, keep < raw_len ? keep : raw_len, h, nh + 1);
}

int records_add_deadletter_fit(struct pub_job *job, size_t room, const char *topic, const void *raw,
			       size_t raw_len, const char *input_content_type, const char *stage,
			       const char *code, const char *reason, const struct rec_origin *o)
{
	struct pub_hdr h[] = {
		{ "hl7bridge-origin", o->origin },
		{ "hl7bridge-source-message-id", o->message_id },
		{ "content-type", input_content_type },
		{ "hl7bridge-stage", stage },
		{ "hl7bridge-error-code", code },
		{ "hl7bridge-error", reason },
		{ NULL, NULL },
	};
	return add_fit(job, topic, room, raw, raw_len, h, (int)HB_ARRAY_LEN(h) - 1);
}

int records_add_raw_fit(struct pub_job *job, size_t room, const char *topic, const void *raw,
			size_t raw_len, const char *input_content_type, const struct rec_origin *o)
{
	struct pub_hdr h[] = {
		{ "hl7bridge-origin", o->origin },
		{ "hl7bridge-source-message-id", o->message_id },
		{ "content-type", input_content_type },
		{ NULL, NULL },
	};
	return add_fit(job, topic, room, raw, raw_len, h, (int)HB_ARRAY_LEN(h) - 1);
}

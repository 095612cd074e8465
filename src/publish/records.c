#include "publish/records.h"

#include <string.h>

static void hdr(rd_kafka_headers_t *h, const char *name, const char *value)
{
	if (value)
		rd_kafka_header_add(h, name, -1, value, -1);
}

static rd_kafka_headers_t *origin_headers(const struct rec_origin *o, size_t extra)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(4 + extra);
	hdr(h, "hl7bridge-origin", o->origin);
	hdr(h, "hl7bridge-source-message-id", o->message_id);
	return h;
}

int records_add_deadletter(struct pub_job *job, const char *topic, const void *raw, size_t raw_len,
			   const char *input_content_type, const char *stage, const char *code,
			   const char *reason, const struct rec_origin *o)
{
	rd_kafka_headers_t *h = origin_headers(o, 4);
	hdr(h, "content-type", input_content_type);
	hdr(h, "hl7bridge-stage", stage);
	hdr(h, "hl7bridge-error-code", code);
	hdr(h, "hl7bridge-error", reason);
	return pub_job_add(job, topic, NULL, 0, raw, raw_len, h);
}

int records_add_raw(struct pub_job *job, const char *topic, const void *raw, size_t raw_len,
		    const char *input_content_type, const struct rec_origin *o)
{
	rd_kafka_headers_t *h = origin_headers(o, 1);
	hdr(h, "content-type", input_content_type);
	return pub_job_add(job, topic, NULL, 0, raw, raw_len, h);
}

#include "obs/playground.h"

#include <string.h>

#include "map/input.h"
#include "map/map.h"

struct pg_run {
	const struct map_set *s;
	json_t *messages;
	json_t *events; /* of the current message */
	int truncated;
};

static int event_cb(const struct map_event *ev, void *opaque)
{
	struct pg_run *r = opaque;
	json_t *headers = json_object(), *e;
	json_t *explain = ev->explain ? json_incref(ev->explain) : json_array();
	for (size_t i = 0; i < ev->nheaders; i++)
		json_object_set_new(headers, ev->headers[i].name, json_string(ev->headers[i].value));
	e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "mapping", ev->mapping,
		      "mapping_hash", ev->mapping_hash, "topic", ev->topic, "key", ev->key,
		      "event_type", ev->event_type, "event_id", ev->event_id, "headers", headers,
		      "event", map_event_object(ev), "explain", explain);
	if (!e)
		return -1;
	return json_array_append_new(r->events, e);
}

static int input_cb(const struct map_input *in, const char *label, void *opaque)
{
	struct pg_run *r = opaque;
	struct map_reject rej;
	size_t n = 0;
	json_t *m;
	enum map_result res;

	if (json_array_size(r->messages) == PLAYGROUND_MAX_MESSAGES) {
		r->truncated = 1;
		return 1; /* stop */
	}
	memset(&rej, 0, sizeof rej);
	r->events = json_array();
	res = map_apply(r->s, in, MAP_EXPLAIN, event_cb, r, &n, &rej);
	m = json_pack("{s:s, s:s, s:o}", "label", label, "result",
		      res == MAP_OK	   ? "events"
		      : res == MAP_UNMATCHED ? "unmatched"
		      : res == MAP_REJECTED  ? "rejected"
					     : "error",
		      "events", r->events);
	r->events = NULL;
	if (!m)
		return -1;
	if (res == MAP_REJECTED || res == MAP_ERROR)
		json_object_set_new(m, "reject",
				    json_pack("{s:i, s:s, s:s, s:s, s:s}", "code", rej.err_code,
					      "mapping", rej.mapping, "target", rej.target, "source",
					      rej.source, "reason", rej.reason));
	return json_array_append_new(r->messages, m);
}

json_t *playground_run(const struct map_set *s, const char *buf, size_t len, int64_t now_ms)
{
	struct pg_run r = { s, json_array(), NULL, 0 };
	char err[512];
	int rc;
	json_t *out;

	if (!r.messages)
		return NULL;
	rc = map_input_each("sample", buf, len, now_ms, input_cb, &r, err, sizeof err);
	/* Samples are rare: keep no scratch memory on this (HTTP) thread. */
	map_thread_release();
	out = json_pack("{s:o, s:s?, s:b}", "messages", r.messages, "error",
			rc < 0 ? err : rc > 0 && !r.truncated ? "out of memory" : NULL, "truncated",
			r.truncated);
	return out;
}

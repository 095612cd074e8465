/* replay_diff — see replay_diff.h. */
#include "publish/replay_diff.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "publish/kconf.h"

/* ---- sides -------------------------------------------------------------------- */

void rdiff_side_init(struct rdiff_side *s)
{
	memset(s, 0, sizeof *s);
	s->status = RDIFF_NONE;
	s->events = json_array();
}

void rdiff_side_clear(struct rdiff_side *s)
{
	json_decref(s->events);
	s->events = NULL;
}

/* What is compared: the event without its timestamp and lineage (the
 * mapping's hash changes with every edit of the file). */
static void normalise(json_t *ev)
{
	json_object_del(ev, "timestamp");
	json_object_del(ev, "lineage");
}

static void side_append(struct rdiff_side *s, const char *id, const char *mapping,
			const char *topic, json_t *event)
{
	json_t *e = json_pack("{s:s, s:s, s:s, s:o}", "eventId", id, "mapping", mapping ? mapping : "-",
			      "topic", topic ? topic : "-", "event", event ? event : json_null());
	if (e)
		json_array_append_new(s->events, e);
	s->status = RDIFF_EVENTS;
}

int rdiff_side_add_cb(const struct map_event *ev, void *opaque)
{
	struct rdiff_side *s = opaque;
	json_t *o = map_event_object(ev);
	if (!o)
		return -1;
	normalise(o);
	side_append(s, ev->event_id, ev->mapping, ev->topic, o);
	return 0;
}

void rdiff_side_result(struct rdiff_side *s, enum map_result r, const struct map_reject *rej)
{
	if (r == MAP_OK)
		return;
	s->status = r == MAP_UNMATCHED ? RDIFF_UNMATCHED : RDIFF_REJECTED;
	snprintf(s->mapping, sizeof s->mapping, "%s", rej->mapping[0] ? rej->mapping : "-");
	snprintf(s->target, sizeof s->target, "%s", rej->target);
	snprintf(s->reason, sizeof s->reason, "%s", rej->reason);
	json_array_clear(s->events);
}

/* ---- the index of published events ------------------------------------------- */

struct rdiff_index {
	json_t *by_id; /* eventId → {mapping, topic, event} */
	size_t opaque_values;
};

static const char *hdr(const rd_kafka_message_t *m, const char *name, char *buf, size_t cap)
{
	rd_kafka_headers_t *h;
	const void *v;
	size_t n;
	if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, &n) || !v)
		return NULL;
	snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), (const char *)v);
	return buf;
}

static int index_record(struct rdiff_index *ix, const rd_kafka_message_t *m)
{
	char mapping[128];
	json_t *v = m->payload ? json_loadb(m->payload, m->len, 0, NULL) : NULL;
	const char *id = json_string_value(json_object_get(v, "eventId"));
	if (!id) {
		ix->opaque_values++; /* Avro, or not an event */
		json_decref(v);
		return 0;
	}
	json_t *e = json_pack("{s:s, s:s}", "mapping",
			      hdr(m, "hl7bridge-mapping", mapping, sizeof mapping) ? mapping : "-",
			      "topic", rd_kafka_topic_name(m->rkt));
	normalise(v);
	json_object_set_new(e, "event", v);
	return json_object_set_new(ix->by_id, id, e);
}

struct rdiff_index *rdiff_index_load(rd_kafka_conf_t *conf, const char *const *topics, int n,
				     int timeout_ms, char *errstr, size_t errstr_size)
{
	struct rdiff_index *ix = calloc(1, sizeof *ix);
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
	rd_kafka_t *rk = NULL;
	char err[512];
	int want = 0, eofs = 0;

	if (!ix || !(ix->by_id = json_object())) {
		util_seterr(errstr, errstr_size, "out of memory");
		goto fail;
	}
	if (rd_kafka_conf_set(conf, "isolation.level", "read_committed", err, sizeof err) ||
	    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) ||
	    rd_kafka_conf_set(conf, "group.id", "hl7bridge-replay-diff", err, sizeof err)) {
		rd_kafka_conf_destroy(conf);
		util_seterr(errstr, errstr_size, "index consumer config: %s", err);
		goto fail;
	}
	if (!(rk = kconf_client_take(RD_KAFKA_CONSUMER, conf, err, sizeof err))) {
		util_seterr(errstr, errstr_size, "index consumer: %s", err);
		goto fail;
	}
	for (int i = 0; i < n; i++) {
		const rd_kafka_metadata_t *md = NULL;
		rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topics[i], NULL);
		if (rd_kafka_metadata(rk, 0, t, &md, timeout_ms) == 0 && md->topic_cnt == 1 &&
		    !md->topics[0].err) {
			for (int p = 0; p < md->topics[0].partition_cnt; p++) {
				int64_t lo, hi;
				int32_t id = md->topics[0].partitions[p].id;
				if (rd_kafka_query_watermark_offsets(rk, topics[i], id, &lo, &hi, timeout_ms) ||
				    hi <= lo)
					continue; /* empty */
				rd_kafka_topic_partition_list_add(parts, topics[i], id)->offset =
					RD_KAFKA_OFFSET_BEGINNING;
				want++;
			}
		} /* a topic that does not exist has nothing published */
		if (md)
			rd_kafka_metadata_destroy(md);
		rd_kafka_topic_destroy(t);
	}
	if (want && rd_kafka_assign(rk, parts)) {
		util_seterr(errstr, errstr_size, "index consumer: assign failed");
		goto fail;
	}
	int64_t deadline = util_mono_ms() + timeout_ms;
	while (eofs < want) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		if (!m) {
			if (util_mono_ms() > deadline) {
				util_seterr(errstr, errstr_size, "reading the event topics timed out");
				goto fail;
			}
			continue;
		}
		deadline = util_mono_ms() + timeout_ms;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
			eofs++;
		else if (!m->err && index_record(ix, m) != 0)
			util_seterr(errstr, errstr_size, "out of memory");
		rd_kafka_message_destroy(m);
	}
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return ix;
fail:
	rd_kafka_topic_partition_list_destroy(parts);
	if (rk) {
		rd_kafka_consumer_close(rk);
		rd_kafka_destroy(rk);
	}
	rdiff_index_free(ix);
	return NULL;
}

void rdiff_index_free(struct rdiff_index *ix)
{
	if (!ix)
		return;
	json_decref(ix->by_id);
	free(ix);
}

size_t rdiff_index_size(const struct rdiff_index *ix)
{
	return json_object_size(ix->by_id);
}

size_t rdiff_index_opaque(const struct rdiff_index *ix)
{
	return ix->opaque_values;
}

void rdiff_index_side(const struct rdiff_index *ix, const void *key, size_t key_len,
		      struct rdiff_side *s)
{
	char id[37];
	json_t *e;
	for (size_t i = 0;; i++) {
		if (map_event_id(id, key, key_len, i)) {
			s->status = RDIFF_UNREADABLE;
			snprintf(s->reason, sizeof s->reason, "out of memory");
			break;
		}
		if (!(e = json_object_get(ix->by_id, id)))
			break;
		side_append(s, id, json_string_value(json_object_get(e, "mapping")),
			    json_string_value(json_object_get(e, "topic")),
			    json_incref(json_object_get(e, "event")));
	}
}

/* ---- comparing ------------------------------------------------------------------- */

enum { C_UNCHANGED, C_CHANGED, C_REJECTED, C_ACCEPTED, C_N };
static const char *const c_names[C_N] = { "unchanged", "changed", "newly_rejected",
					  "newly_accepted" };

struct rdiff {
	int values;
	FILE *out;
	json_t *summary; /* "mapping\ttopic" → [unchanged, changed, newly_rejected, newly_accepted] */
	uint64_t inputs, detail_lines;
};

struct rdiff *rdiff_new(int values, FILE *out)
{
	struct rdiff *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->values = values;
	d->out = out;
	d->summary = json_object();
	return d;
}

void rdiff_free(struct rdiff *d)
{
	if (!d)
		return;
	json_decref(d->summary);
	free(d);
}

static void count(struct rdiff *d, const char *mapping, const char *topic, int c)
{
	char k[512];
	snprintf(k, sizeof k, "%s\t%s", mapping, topic);
	json_t *row = json_object_get(d->summary, k);
	if (!row) {
		row = json_pack("[iiii]", 0, 0, 0, 0);
		json_object_set_new(d->summary, k, row);
	}
	json_t *n = json_array_get(row, (size_t)c);
	json_integer_set(n, json_integer_value(n) + 1);
}

/* Leaf paths where a and b differ (either may be NULL: absent). */
static void diff_paths(const json_t *a, const json_t *b, const char *path, json_t *paths,
		       json_t *values)
{
	char sub[512];
	if ((json_is_object(a) || !a) && (json_is_object(b) || !b) && (a || b)) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)(a ? a : b), k, v) {
			snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
			diff_paths(a ? json_object_get(a, k) : NULL, b ? json_object_get(b, k) : NULL, sub,
				   paths, values);
		}
		if (a && b)
			json_object_foreach((json_t *)b, k, v) {
				if (json_object_get(a, k))
					continue;
				snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
				diff_paths(NULL, v, sub, paths, values);
			}
		return;
	}
	if ((json_is_array(a) || !a) && (json_is_array(b) || !b) && (a || b)) {
		size_t na = json_array_size(a), nb = json_array_size(b);
		for (size_t i = 0; i < (na > nb ? na : nb); i++) {
			snprintf(sub, sizeof sub, "%s[%zu]", path, i);
			diff_paths(json_array_get(a, i), json_array_get(b, i), sub, paths, values);
		}
		return;
	}
	if (a && b && json_equal((json_t *)a, (json_t *)b))
		return;
	json_array_append_new(paths, json_string(path));
	if (values)
		json_object_set_new(values, path,
				    json_pack("{s:O?, s:O?}", "before", a, "after", b));
}

static const char *find_str(const json_t *e, const char *k)
{
	return json_string_value(json_object_get(e, k));
}

static json_t *event_detail(struct rdiff *d, const json_t *a, const json_t *b, const char *change)
{
	const json_t *any = b ? b : a;
	json_t *o = json_pack("{s:O, s:O, s:O, s:s}", "eventId", json_object_get(any, "eventId"),
			      "mapping", json_object_get(any, "mapping"), "topic",
			      json_object_get(any, "topic"), "change", change);
	if (!a || !b) {
		/* a whole event added or removed: its content only with values */
		if (d->values)
			json_object_set(o, "event", json_object_get(any, "event"));
		return o;
	}
	if (strcmp(find_str(a, "topic"), find_str(b, "topic")) != 0)
		json_object_set(o, "topicBefore", json_object_get(a, "topic"));
	json_t *paths = json_array(), *values = d->values ? json_object() : NULL;
	diff_paths(json_object_get(a, "event"), json_object_get(b, "event"), "", paths, values);
	json_object_set_new(o, "paths", paths);
	if (values)
		json_object_set_new(o, "values", values);
	return o;
}

static const char *status_name(enum rdiff_status s)
{
	static const char *const n[] = { "events", "rejected", "unmatched", "unreadable", "none" };
	return n[s];
}

void rdiff_record(struct rdiff *d, const char *topic, int partition, int64_t offset,
		  const char *message_id, const struct rdiff_side *before,
		  const struct rdiff_side *now)
{
	json_t *events = json_array();
	int worst = C_UNCHANGED;
	size_t i, j;
	json_t *a, *b;

	d->inputs++;
	if (now->status == RDIFF_EVENTS && before->status != RDIFF_EVENTS) {
		worst = C_ACCEPTED;
		json_array_foreach(now->events, i, b) {
			count(d, find_str(b, "mapping"), find_str(b, "topic"), C_ACCEPTED);
			json_array_append_new(events, event_detail(d, NULL, b, "added"));
		}
	} else if (now->status != RDIFF_EVENTS && before->status == RDIFF_EVENTS) {
		worst = C_REJECTED;
		json_array_foreach(before->events, i, a) {
			count(d, find_str(a, "mapping"), find_str(a, "topic"), C_REJECTED);
			json_array_append_new(events, event_detail(d, a, NULL, "removed"));
		}
	} else if (now->status == RDIFF_EVENTS) {
		json_array_foreach(now->events, i, b) {
			json_t *match = NULL;
			json_array_foreach(before->events, j, a)
				if (strcmp(find_str(a, "eventId"), find_str(b, "eventId")) == 0)
					match = a;
			int same = match && json_equal(json_object_get(match, "event"),
						       json_object_get(b, "event")) &&
				   strcmp(find_str(match, "topic"), find_str(b, "topic")) == 0;
			count(d, find_str(b, "mapping"), find_str(b, "topic"), same ? C_UNCHANGED : C_CHANGED);
			if (!same) {
				worst = C_CHANGED;
				json_array_append_new(events, event_detail(d, match, b, match ? "changed" : "added"));
			}
		}
		json_array_foreach(before->events, j, a) {
			int found = 0;
			json_array_foreach(now->events, i, b)
				found |= strcmp(find_str(a, "eventId"), find_str(b, "eventId")) == 0;
			if (!found) {
				worst = C_CHANGED;
				count(d, find_str(a, "mapping"), find_str(a, "topic"), C_CHANGED);
				json_array_append_new(events, event_detail(d, a, NULL, "removed"));
			}
		}
	} else {
		/* no events either way: still rejected (or unmatched, unreadable) */
		char t[32];
		snprintf(t, sizeof t, "(%s)", status_name(now->status));
		count(d, now->mapping[0] ? now->mapping : "-", t, C_UNCHANGED);
	}
	if (worst != C_UNCHANGED) {
		json_t *o = json_pack("{s:s, s:i, s:I, s:s?, s:s, s:s, s:s, s:o}", "topic", topic,
				      "partition", partition, "offset", (json_int_t)offset, "messageId",
				      message_id, "change", c_names[worst], "before",
				      status_name(before->status), "now", status_name(now->status),
				      "events", events);
		if (now->status == RDIFF_REJECTED || now->status == RDIFF_UNMATCHED) {
			json_object_set_new(o, "reason", json_string(now->reason));
			if (now->target[0])
				json_object_set_new(o, "target", json_string(now->target));
		}
		char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
		if (line) {
			fprintf(d->out, "%s\n", line);
			d->detail_lines++;
		}
		free(line);
		json_decref(o);
	} else {
		json_decref(events);
	}
}

void rdiff_summary(struct rdiff *d, FILE *out, FILE *err)
{
	json_t *rows = json_array();
	const char *k;
	json_t *v;
	fprintf(err, "%-24s %-40s %9s %9s %9s %9s\n", "mapping", "topic", "unchanged", "changed",
		"newly_rej", "newly_acc");
	json_object_foreach(d->summary, k, v) {
		const char *tab = strchr(k, '\t');
		json_t *row = json_pack("{s:s%, s:s}", "mapping", k, (size_t)(tab - k), "topic", tab + 1);
		for (int c = 0; c < C_N; c++)
			json_object_set(row, c_names[c], json_array_get(v, (size_t)c));
		fprintf(err, "%-24.*s %-40s %9" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT
			     " %9" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT "\n",
			(int)(tab - k), k, tab + 1, json_integer_value(json_array_get(v, 0)),
			json_integer_value(json_array_get(v, 1)), json_integer_value(json_array_get(v, 2)),
			json_integer_value(json_array_get(v, 3)));
		json_array_append_new(rows, row);
	}
	json_t *o = json_pack("{s:{s:I, s:I, s:o}}", "summary", "inputs", (json_int_t)d->inputs,
			      "detail_lines", (json_int_t)d->detail_lines, "by_mapping", rows);
	char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (line)
		fprintf(out, "%s\n", line);
	free(line);
	json_decref(o);
	fflush(out);
}

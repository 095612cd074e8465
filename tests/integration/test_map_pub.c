/*
 * Mapping to Kafka: the events `hl7bridge map` shows for the shipped samples
 * are what a read_committed consumer reads after the publisher committed
 * them, one job per message (all its events, atomically), with the event
 * headers. This is the path the daemon takes: map_apply → pub_job_add.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "map/input.h"
#include "map/map.h"
#include "publish/pub.h"
#include "util.h"


struct feed {
	const struct map_set *set;
	struct pub *p;
	struct itest_tally *t;
	const char *topic;   /* one test topic instead of healthcare.* */
	json_t *expected;    /* the JSON values, in order */
	struct pub_job *job;
	int jobs;
};

static int event_cb(const struct map_event *ev, void *opaque)
{
	struct feed *f = opaque;
	char *value = map_event_json(ev);
	struct pub_hdr h[MAP_MAX_HEADERS];
	for (size_t i = 0; i < ev->nheaders; i++)
		h[i] = (struct pub_hdr){ ev->headers[i].name, ev->headers[i].value };
	cr_assert(value);
	cr_assert_eq(pub_job_add(f->job, f->topic, ev->key, strlen(ev->key), value, strlen(value), h,
				 (int)ev->nheaders),
		     0);
	json_array_append_new(f->expected, json_string(value));
	free(value);
	return 0;
}

static int input_cb(const struct map_input *in, const char *label, void *opaque)
{
	struct feed *f = opaque;
	struct map_reject rej;
	struct ledger_entry e;
	cr_assert(in, "%s", label);
	f->job = pub_job_new(itest_tally_cb, f->t);
	size_t n = 0;
	enum map_result r = map_apply(f->set, in, 0, event_cb, f, &n, &rej);
	if (r == MAP_UNMATCHED) {
		pub_job_free(f->job);
		return 0;
	}
	cr_assert_eq(r, MAP_OK, "%s: %s", label, rej.reason);
	memset(&e, 0, sizeof e);
	memcpy(e.key, in->ledger_key, LEDGER_KEY_LEN);
	e.kind = LEDGER_MSG;
	strcpy(e.ack, "AA");
	pub_job_set_ledger(f->job, &e);
	while (pub_submit(f->p, 1, f->job) != 0) {
		pub_wait(f->p, 100);
		pub_drain(f->p);
	}
	f->jobs++;
	return 0;
}

Test(map_pub, shipped_samples_arrive_as_mapped, .timeout = 180)
{
	char topic[128], state[128], inst[128], err[512], maps[1024], schemas[1024];
	const char *src = getenv("HB_SRCDIR") ? getenv("HB_SRCDIR") : HB_SRCDIR;
	const char *samples[] = { "hl7v2/rde_o11.hl7", "hl7v2/adt_a08.hl7", "hl7v2/adt_a40.hl7",
				  "hl7v2/batch_adt.hl7", "fhir/bundle.json", "fhir/patient_xml.xml" };
	struct itest_tally t = { 0, 0 };
	struct map_diag d = { 0 };
	struct pub_conf c;

	snprintf(maps, sizeof maps, "%s/mappings", src);
	snprintf(schemas, sizeof schemas, "%s/conf/schemas", src);
	struct map_set *set = map_set_load(maps, schemas, &d);
	cr_assert(set, "%s", d.text);
	itest_unique_name(topic, sizeof topic, "itest.map");
	itest_unique_name(state, sizeof state, "itest.mapstate");
	itest_unique_name(inst, sizeof inst, "itest-map");
	cr_assert_eq(itest_create_topic(topic, 1, err, sizeof err), 0, "%s", err);
	cr_assert_eq(itest_create_topic(state, 1, err, sizeof err), 0, "%s", err);
	rd_kafka_conf_t *kc = itest_conf("linger.ms", "5", NULL);
	pub_conf_defaults(&c);
	c.instance = inst;
	c.state_topic = state;
	c.lanes = 1;
	c.kafka = kc;
	struct pub *p = pub_new(&c, err, sizeof err);
	cr_assert_not_null(p, "%s", err);

	struct feed f = { set, p, &t, topic, json_array(), NULL, 0 };
	for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
		char path[1200];
		size_t len;
		snprintf(path, sizeof path, "%s/samples/%s", src, samples[i]);
		char *buf = util_read_file(path, 1 << 20, &len, err, sizeof err);
		cr_assert(buf, "%s", err);
		cr_assert_eq(map_input_each(samples[i], buf, len, util_wall_ms(), input_cb, &f, err,
					    sizeof err), 0, "%s", err);
		free(buf);
	}
	int64_t deadline = util_mono_ms() + 60000;
	while (t.committed + t.failed < f.jobs && util_mono_ms() < deadline) {
		pub_wait(p, 200);
		pub_drain(p);
	}
	pub_free(p);
	cr_assert_eq(t.committed, f.jobs, "committed %d of %d jobs", t.committed, f.jobs);

	char **vals;
	int want = (int)json_array_size(f.expected);
	int n = itest_consume_all(topic, "read_committed", want, 10000, &vals);
	cr_assert_eq(n, want, "read %d of %d events", n, want);
	for (int i = 0; i < n; i++)
		cr_assert_str_eq(vals[i], json_string_value(json_array_get(f.expected, (size_t)i)));
	cr_log_info("%d messages, %d events through Kafka", f.jobs, n);
	itest_free_values(vals, n);
	json_decref(f.expected);
	map_set_free(set);
}

/*
 * obs without a network: librdkafka statistics parsing, the Prometheus text
 * (well-formed, escaped, cumulative), the status JSON, the playground, and
 * the shared mapping set under concurrent readers and SIGHUP-style swaps
 * (run under the sanitizer build, a wrong reference count is a
 * use-after-free report or a leak).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map/map.h"
#include "obs/hist.h"
#include "obs/mapref.h"
#include "obs/metrics.h"
#include "obs/playground.h"
#include "publish/kstats.h"
#include "util.h"

#include "map_test_source.h"

static const char *srcdir(void)
{
	const char *s = getenv("HB_SRCDIR");
	return s ? s : HB_SRCDIR;
}

static char *sample(const char *rel, size_t *len)
{
	char path[1024], err[256];
	char *buf;
	snprintf(path, sizeof path, "%s/%s", srcdir(), rel);
	buf = util_read_file(path, 1 << 20, len, err, sizeof err);
	cr_assert_not_null(buf, "%s", err);
	return buf;
}

/* ---- librdkafka statistics ---------------------------------------------------- */

static const char *stats_doc =
	"{\"name\":\"rdkafka#producer-1\",\"type\":\"producer\",\"msg_cnt\":7,\"msg_size\":1234,"
	"\"txmsgs\":99,\"eos\":{\"idemp_state\":\"Assigned\",\"txn_state\":\"InTransaction\"},"
	"\"brokers\":{\":0/internal\":{\"name\":\":0/internal\",\"nodeid\":-1,\"source\":\"internal\","
	"\"state\":\"UP\",\"rtt\":{\"avg\":0,\"p99\":0}},"
	"\"k1:9092/1\":{\"name\":\"k1:9092/1\",\"nodeid\":1,\"source\":\"learned\",\"state\":\"UP\","
	"\"rtt\":{\"avg\":1500,\"p99\":4200}},"
	"\"TxnCoordinator\":{\"source\":\"logical\",\"state\":\"DOWN\",\"rtt\":{\"avg\":10}}}}";

Test(kstats, parses_what_matters_and_skips_the_internal_broker)
{
	struct kstats k;
	cr_assert_eq(kstats_parse(stats_doc, strlen(stats_doc), &k, NULL, 0), 0);
	cr_assert(k.valid);
	cr_assert_str_eq(k.txn_state, "InTransaction");
	cr_assert_str_eq(k.idemp_state, "Assigned");
	cr_assert_eq(k.msg_cnt, 7);
	cr_assert_eq(k.msg_size, 1234);
	cr_assert_eq(k.txmsgs, 99);
	cr_assert_eq(k.nbrokers, 2, "internal broker reported: %d", k.nbrokers);
	cr_assert_str_eq(k.brokers[0].name, "k1:9092/1");
	cr_assert_eq(k.brokers[0].rtt_avg_us, 1500);
	cr_assert_eq(k.brokers[0].rtt_p99_us, 4200);
	cr_assert_str_eq(k.brokers[1].state, "DOWN");
}

Test(kstats, refuses_garbage_and_keeps_the_old_value)
{
	struct kstats k;
	char err[128];
	memset(&k, 0x5a, sizeof k);
	k.valid = 42;
	cr_assert_eq(kstats_parse("{\"msg_cnt\":", 11, &k, err, sizeof err), -1);
	cr_assert(strstr(err, "statistics") != NULL, "%s", err);
	cr_assert_eq(kstats_parse("[1,2]", 5, &k, err, sizeof err), -1);
	cr_assert_eq(k.valid, 42, "overwritten on failure");
}

/* ---- Prometheus text ------------------------------------------------------------- */

static struct hist commit_h, ack_h;

static void fake(struct obs_snapshot *s, struct obs_pubview *v, struct kstats *lanes)
{
	memset(s, 0, sizeof *s);
	snprintf(s->instance, sizeof s->instance, "bridge \"one\"\\a");
	snprintf(s->version, sizeof s->version, "9.9");
	s->started_ms = 1000;
	s->taken_ms = 61000;
	s->producers = s->ledger = s->listeners = 1;
	s->has_pipeline = 1;
	s->pl.received = 10;
	s->pl.accepted = 5;
	s->pl.rejected_parse = 1;
	s->pl.rejected_map = 2;
	s->pl.rejected_by[PIPELINE_STAGE_PARSE][pipeline_code_index(100)] = 1;
	s->pl.rejected_by[PIPELINE_STAGE_MAP][pipeline_code_index(101)] = 2;
	s->pl.filtered = 1;
	s->pl.duplicates = 1;
	s->pl.events = 7;
	s->pl.ntopics = 1;
	snprintf(s->pl.topics[0].topic, sizeof s->pl.topics[0].topic, "healthcare.patient.created");
	s->pl.topics[0].events = 7;
	s->nin = 1;
	snprintf(s->in[0].name, sizeof s->in[0].name, "main\nline");
	snprintf(s->in[0].kind, sizeof s->in[0].kind, "mllp");
	snprintf(s->in[0].format, sizeof s->in[0].format, "hl7v2");
	s->in[0].st.frames = 10;
	s->in[0].st.open = 2;
	s->in[0].st.tls_failures = 3;
	s->nrecent = 1;
	s->recent[0].stage = PIPELINE_STAGE_MAP;
	s->recent[0].code = 101;
	snprintf(s->recent[0].ack, sizeof s->recent[0].ack, "AE/CE");
	snprintf(s->recent[0].reason, sizeof s->recent[0].reason, "required data.patientId is empty");
	snprintf(s->recent[0].msh10, sizeof s->recent[0].msh10, "MSG42");
	hist_init(&commit_h);
	hist_init(&ack_h);
	hist_record(&commit_h, 800);     /* 0.8 ms */
	hist_record(&commit_h, 20000);   /* 20 ms */
	hist_record(&commit_h, 4000000); /* 4 s */
	memset(v, 0, sizeof *v);
	v->present = 1;
	v->st.txn_committed = 3;
	v->inflight = 2;
	v->max_inflight = 100;
	v->commit = &commit_h;
	v->ack = &ack_h;
	v->nlanes = 1;
	v->lanes = lanes;
	cr_assert_eq(kstats_parse(stats_doc, strlen(stats_doc), &lanes[0], NULL, 0), 0);
}

static char *render(const struct obs_snapshot *s, const struct obs_pubview *v)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	metrics_prometheus(f, s, v);
	fclose(f);
	return text;
}

Test(metrics, prometheus_text_is_well_formed)
{
	struct obs_snapshot s;
	struct obs_pubview v;
	struct kstats lanes[1];
	regex_t sample_re;
	char *text, *save = NULL, typed[128] = "";
	int samples = 0;

	fake(&s, &v, lanes);
	text = render(&s, &v);
	/* name{label="value",...} number — values may hold escaped quotes */
	cr_assert_eq(regcomp(&sample_re,
			     "^[a-zA-Z_:][a-zA-Z0-9_:]*(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\""
			     "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\")*\\})? [-+0-9.eInf]+$",
			     REG_EXTENDED | REG_NOSUB),
		     0);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# TYPE ", 7) == 0) {
			sscanf(line + 7, "%127s", typed);
			continue;
		}
		if (line[0] == '#')
			continue;
		cr_assert_eq(regexec(&sample_re, line, 0, NULL, 0), 0, "malformed sample: %s", line);
		cr_assert_eq(strncmp(line, typed, strlen(typed)), 0, "%s outside its family %s", line,
			     typed);
		samples++;
	}
	regfree(&sample_re);
	cr_assert_gt(samples, 40);
	free(text);
}

Test(metrics, counters_labels_and_histograms)
{
	struct obs_snapshot s;
	struct obs_pubview v;
	struct kstats lanes[1];
	char *t;

	fake(&s, &v, lanes);
	t = render(&s, &v);
#define HAS(x) cr_assert(strstr(t, x "\n") != NULL, "missing: %s\n%s", x, t)
	HAS("hl7bridge_build_info{version=\"9.9\",instance=\"bridge \\\"one\\\"\\\\a\"} 1");
	HAS("hl7bridge_messages_received_total{input=\"main\\nline\",kind=\"mllp\",format=\"hl7v2\"} 10");
	HAS("hl7bridge_connections_open{input=\"main\\nline\",kind=\"mllp\",format=\"hl7v2\"} 2");
	HAS("hl7bridge_tls_handshake_failures_total{input=\"main\\nline\",kind=\"mllp\",format=\"hl7v2\"} 3");
	HAS("hl7bridge_messages_published_total 5");
	HAS("hl7bridge_messages_rejected_total{stage=\"parse\",code=\"100\"} 1");
	HAS("hl7bridge_messages_rejected_total{stage=\"map\",code=\"101\"} 2");
	HAS("hl7bridge_messages_rejected_total{stage=\"map\",code=\"207\"} 0");
	HAS("hl7bridge_messages_duplicate_total{answer=\"ledger\"} 1");
	HAS("hl7bridge_events_published_total{topic=\"healthcare.patient.created\"} 7");
	HAS("hl7bridge_transactions_total{result=\"committed\"} 3");
	HAS("hl7bridge_inflight_messages 2");
	HAS("hl7bridge_ready 1");
	/* cumulative: 0.8 ms <= 1 ms; 20 ms <= 25 ms; all three by +Inf */
	HAS("hl7bridge_commit_duration_seconds_bucket{le=\"0.0005\"} 0");
	HAS("hl7bridge_commit_duration_seconds_bucket{le=\"0.001\"} 1");
	HAS("hl7bridge_commit_duration_seconds_bucket{le=\"0.025\"} 2");
	HAS("hl7bridge_commit_duration_seconds_bucket{le=\"5\"} 3");
	HAS("hl7bridge_commit_duration_seconds_bucket{le=\"+Inf\"} 3");
	HAS("hl7bridge_commit_duration_seconds_count 3");
	HAS("hl7bridge_kafka_txn_state{lane=\"0\",state=\"InTransaction\"} 1");
	HAS("hl7bridge_kafka_queue_messages{lane=\"0\"} 7");
	HAS("hl7bridge_kafka_broker_rtt_seconds{lane=\"0\",broker=\"k1:9092/1\",quantile=\"avg\"} 0.001500");
	HAS("hl7bridge_kafka_broker_up{lane=\"0\",broker=\"TxnCoordinator\"} 0");
	HAS("# TYPE hl7bridge_files_total counter");
#undef HAS
	cr_assert(strstr(t, "hl7bridge_files_total{") == NULL, "file drops are not in this build");
	free(t);

	s.draining = 1;
	t = render(&s, &v);
	cr_assert(strstr(t, "hl7bridge_ready 0\n") != NULL, "ready while draining");
	free(t);
}

Test(metrics, status_json_has_what_the_page_shows)
{
	struct obs_snapshot s;
	struct obs_pubview v;
	struct kstats lanes[1];
	json_t *j;

	fake(&s, &v, lanes);
	j = metrics_status_json(&s, &v);
	cr_assert_not_null(j);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "messages"), "rejected")), 3);
	cr_assert(json_is_true(json_object_get(json_object_get(j, "ready"), "ready")));
	json_t *r = json_array_get(json_object_get(json_object_get(j, "rejections"), "recent"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(r, "msh10")), "MSG42");
	cr_assert_eq(json_integer_value(json_object_get(r, "code")), 101);
	cr_assert_str_eq(json_string_value(json_object_get(r, "stage")), "map");
	cr_assert_eq(json_real_value(json_object_get(j, "uptime_s")), 60.0);
	json_t *lane = json_array_get(json_object_get(json_object_get(j, "publisher"), "lanes"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(lane, "txn_state")), "InTransaction");
	json_decref(j);
}

/* ---- the playground ----------------------------------------------------------------- */

Test(playground, events_and_explain_for_a_sample)
{
	struct map_set *m = mt_load_shipped();
	size_t len;
	char *msg = sample("samples/hl7v2/rde_o11.hl7", &len);
	json_t *r = playground_run(m, msg, len, 1700000000000LL);
	json_t *m0 = json_array_get(json_object_get(r, "messages"), 0);
	json_t *ev = json_array_get(json_object_get(m0, "events"), 0);

	cr_assert(json_is_null(json_object_get(r, "error")));
	cr_assert_str_eq(json_string_value(json_object_get(m0, "result")), "events");
	cr_assert_eq(json_array_size(json_object_get(m0, "events")), 2);
	cr_assert_str_eq(json_string_value(json_object_get(ev, "topic")), "healthcare.prescription.created");
	cr_assert_gt(json_array_size(json_object_get(ev, "explain")), 3);
	json_t *x = json_array_get(json_object_get(ev, "explain"), 0);
	cr_assert_not_null(json_object_get(x, "from"), "no source path in the trace");
	cr_assert_not_null(json_object_get(json_object_get(ev, "event"), "data"));
	json_decref(r);
	free(msg);
	map_set_free(m);
}

Test(playground, rejections_and_unreadable_input)
{
	struct map_set *m = mt_load_shipped();
	size_t len;
	char *msg = sample("samples/hl7v2/rde_o11.hl7", &len);
	char *pid = strstr(msg, "PID|1||"), *p3 = pid + 7, *end = strchr(p3, '|');
	memmove(p3, end, strlen(end) + 1); /* blank PID-3: no patient id */
	json_t *r = playground_run(m, msg, strlen(msg), 0);
	json_t *m0 = json_array_get(json_object_get(r, "messages"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(m0, "result")), "rejected");
	json_t *rej = json_object_get(m0, "reject");
	cr_assert_eq(json_integer_value(json_object_get(rej, "code")), 101);
	cr_assert(strstr(json_string_value(json_object_get(rej, "reason")), "data.patientId") != NULL);
	json_decref(r);

	r = playground_run(m, "not a message", 13, 0);
	cr_assert(json_is_string(json_object_get(r, "error")), "unreadable input not reported");
	cr_assert_eq(json_array_size(json_object_get(r, "messages")), 0);
	json_decref(r);
	free(msg);
	map_set_free(m);
}

/* ---- the shared mapping set ------------------------------------------------------------ */

Test(mapref, a_held_set_outlives_its_replacement)
{
	struct mapref *r = mapref_new(mt_load_shipped());
	struct mapref_hold *h = mapref_acquire(r), *next;
	const struct map_set *old = mapref_set(h);
	size_t n = map_set_count(old);

	next = mapref_prepare(mt_load_shipped());
	cr_assert_not_null(next);
	mapref_install(r, next);
	/* still readable: the sanitizer build reports a use-after-free otherwise */
	cr_assert_eq(map_set_count(old), n);
	cr_assert_neq(mapref_set(mapref_acquire(r)), old);
	mapref_release(r, h); /* frees the old set (a leak report otherwise) */
	mapref_release(r, next);
	mapref_free(r);
}

struct reader {
	struct mapref *r;
	const char *msg;
	size_t len;
	int runs;
	atomic_int *finished;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	for (int i = 0; i < 40; i++) {
		struct mapref_hold *h = mapref_acquire(rd->r);
		json_t *out = playground_run(mapref_set(h), rd->msg, rd->len, 0);
		if (out && json_array_size(json_object_get(out, "messages")) == 1)
			rd->runs++;
		json_decref(out);
		mapref_release(rd->r, h);
	}
	atomic_fetch_add(rd->finished, 1);
	return NULL;
}

Test(mapref, readers_on_other_threads_while_the_set_is_swapped, .timeout = 120)
{
	size_t len;
	char *msg = sample("samples/hl7v2/rde_o11.hl7", &len);
	struct mapref *r = mapref_new(mt_load_shipped());
	struct reader rd[3];
	pthread_t t[3];
	atomic_int finished = 0;
	int swaps = 0;

	for (int i = 0; i < 3; i++) {
		rd[i] = (struct reader){ r, msg, len, 0, &finished };
		cr_assert_eq(pthread_create(&t[i], NULL, reader_main, &rd[i]), 0);
	}
	/* the loop's SIGHUP, again and again while the readers run */
	while (atomic_load(&finished) < 3 || swaps < 2) {
		mapref_install(r, mapref_prepare(mt_load_shipped()));
		swaps++;
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(rd[i].runs, 40, "reader %d ran %d times", i, rd[i].runs);
	}
	mapref_free(r);
	free(msg);
}

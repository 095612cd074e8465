/*
 * bench_pub — committed events/s and commit latency of the publisher against
 * a plain librdkafka transactional producer sending the same pre-encoded
 * records, for several batch sizes and lane counts, against a real broker.
 *
 *   bench_pub BOOTSTRAP [EVENTS_PER_RUN]
 *
 * "plain": K threads, each with its own transactional producer: begin,
 * produce B records, commit, repeat. "pub": hl7bridge's publisher with K
 * lanes and batch_max_msgs = B; every job also writes its ledger record to
 * the state topic, as in production. Both send the same ~600-byte JSON value.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "obs/hist.h"
#include "publish/pub.h"
#include "util.h"

static const char *bootstrap;
static char value[700];
static size_t value_len;

static rd_kafka_conf_t *base_conf(void)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, NULL, 0);
	rd_kafka_conf_set(c, "linger.ms", "5", NULL, 0);
	rd_kafka_conf_set(c, "log_level", "3", NULL, 0);
	return c;
}

static void die(const char *what, const char *err)
{
	fprintf(stderr, "bench_pub: %s: %s\n", what, err);
	exit(1);
}

/* ---- plain ---------------------------------------------------------------- */

struct plain_arg {
	int idx, batch, count;
	char topic[128], txid[128];
	struct hist *h;
};

static void *plain_thread(void *a)
{
	struct plain_arg *pa = a;
	char err[512];
	rd_kafka_conf_t *c = base_conf();
	rd_kafka_conf_set(c, "transactional.id", pa->txid, NULL, 0);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
	rd_kafka_error_t *e;
	if (!rk)
		die("producer", err);
	if ((e = rd_kafka_init_transactions(rk, 30000)))
		die("init_transactions", rd_kafka_error_string(e));
	for (int sent = 0; sent < pa->count;) {
		int64_t t0 = util_mono_us();
		if ((e = rd_kafka_begin_transaction(rk)))
			die("begin", rd_kafka_error_string(e));
		for (int i = 0; i < pa->batch && sent < pa->count; i++, sent++) {
			char key[16];
			snprintf(key, sizeof key, "p%d", sent % 1000);
			while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(pa->topic), RD_KAFKA_V_KEY(key, strlen(key)),
						 RD_KAFKA_V_VALUE(value, value_len),
						 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
						 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
				rd_kafka_poll(rk, 10);
		}
		if ((e = rd_kafka_commit_transaction(rk, 30000)))
			die("commit", rd_kafka_error_string(e));
		hist_record(pa->h, (uint64_t)(util_mono_us() - t0));
	}
	rd_kafka_destroy(rk);
	return NULL;
}

static double run_plain(int lanes, int batch, int n, const char *topic, struct hist *h)
{
	pthread_t th[16];
	struct plain_arg a[16];
	int64_t t0 = util_mono_us();
	for (int i = 0; i < lanes; i++) {
		a[i].idx = i;
		a[i].batch = batch;
		a[i].count = n / lanes;
		a[i].h = h;
		snprintf(a[i].topic, sizeof a[i].topic, "%s", topic);
		snprintf(a[i].txid, sizeof a[i].txid, "bench-plain-%d-%d-%d-%ld", lanes, batch, i,
			 (long)t0);
		pthread_create(&th[i], NULL, plain_thread, &a[i]);
	}
	for (int i = 0; i < lanes; i++)
		pthread_join(th[i], NULL);
	return (double)(n / lanes * lanes) / ((double)(util_mono_us() - t0) / 1e6);
}

/* ---- pub ------------------------------------------------------------------ */

static int done;

static void done_cb(struct pub_job *job, enum pub_status st, const char *reason, void *opaque)
{
	if (st != PUB_COMMITTED)
		die("job failed", reason);
	done++;
	pub_job_free(job);
}

struct pub_result {
	double rate;
	double commit_p50_ms, commit_p99_ms, ack_p50_ms, ack_p99_ms;
};

static struct pub_result run_pub(int lanes, int batch, int n, const char *topic, const char *state)
{
	struct pub_result r;
	char err[512], inst[128];
	struct pub_conf c;
	rd_kafka_conf_t *kc = base_conf();
	int64_t t0 = util_mono_us();

	snprintf(inst, sizeof inst, "bench-pub-%d-%d-%ld", lanes, batch, (long)t0);
	pub_conf_defaults(&c);
	c.instance = inst;
	c.state_topic = state;
	c.lanes = lanes;
	c.batch_max_msgs = batch;
	c.max_inflight = batch * lanes * 4;
	c.kafka = kc;
	struct pub *p = pub_new(&c, err, sizeof err);
	if (!p)
		die("pub_new", err);
	t0 = util_mono_us();
	done = 0;
	for (int i = 0; i < n; i++) {
		char key[16];
		struct ledger_entry e;
		const void *parts[] = { &i };
		size_t lens[] = { sizeof i };
		struct pub_job *j = pub_job_new(done_cb, NULL);
		snprintf(key, sizeof key, "p%d", i % 1000);
		pub_job_add(j, topic, key, strlen(key), value, value_len, NULL, 0);
		memset(&e, 0, sizeof e);
		ledger_hash(e.key, 1, parts, lens);
		e.key[0] ^= (uint8_t)t0; /* distinct across runs */
		strcpy(e.ack, "AA");
		pub_job_set_ledger(j, &e);
		while (pub_submit(p, (uint64_t)i, j) != 0) {
			pub_wait(p, 10);
			pub_drain(p);
		}
		if ((i & 255) == 0)
			pub_drain(p);
	}
	while (done < n) {
		pub_wait(p, 50);
		pub_drain(p);
	}
	r.rate = (double)n / ((double)(util_mono_us() - t0) / 1e6);
	r.commit_p50_ms = (double)hist_quantile(pub_commit_hist(p), 0.5) / 1000.0;
	r.commit_p99_ms = (double)hist_quantile(pub_commit_hist(p), 0.99) / 1000.0;
	r.ack_p50_ms = (double)hist_quantile(pub_job_hist(p), 0.5) / 1000.0;
	r.ack_p99_ms = (double)hist_quantile(pub_job_hist(p), 0.99) / 1000.0;
	pub_free(p);
	rd_kafka_conf_destroy(kc);
	return r;
}

static void create_topic(const char *name, int partitions)
{
	char err[512];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, base_conf(), err, sizeof err);
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, 1, err, sizeof err);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
}

int main(int argc, char **argv)
{
	static const int batches[] = { 100, 500, 2000 };
	static const int lanes[] = { 1, 2, 4 };
	char topic[128], state[128];
	int n;

	if (argc < 2) {
		fprintf(stderr, "usage: bench_pub BOOTSTRAP [EVENTS_PER_RUN]\n");
		return 2;
	}
	bootstrap = argv[1];
	n = argc > 2 ? atoi(argv[2]) : 40000;
	value_len = (size_t)snprintf(
		value, sizeof value,
		"{\"eventId\":\"7d4e1f0a-2b3c-5d6e-8f90-a1b2c3d4e5f6\",\"eventType\":\"prescription.created\","
		"\"timestamp\":\"2026-11-27T02:00:00.000Z\",\"data\":{\"prescriptionId\":\"rx-0001234\","
		"\"medicationReference\":{\"system\":\"http://www.nlm.nih.gov/research/umls/rxnorm\","
		"\"code\":\"1000006\",\"display\":\"Atorvastatin 20 MG Oral Tablet\"},\"patientId\":"
		"\"patient-12345\",\"practitionerId\":\"practitioner-54321\",\"dosageInstruction\":"
		"\"Take one tablet by mouth once daily\",\"dateWritten\":\"2026-11-27T01:59:00Z\","
		"\"status\":\"active\"},\"metadata\":{\"source\":\"pharmacy-system\",\"version\":\"1.0.0\","
		"\"mapping\":\"rde-o11\",\"mappingHash\":\"3f2a9c\",\"sourceFormat\":\"hl7v2\","
		"\"sourceMessageId\":\"MSG00001\"}}");
	snprintf(topic, sizeof topic, "bench.events.%ld", (long)util_wall_ms());
	snprintf(state, sizeof state, "bench.state.%ld", (long)util_wall_ms());
	create_topic(topic, 12);
	create_topic(state, 3);

	printf("%d events per run, %zu-byte values, topic %s (12 partitions)\n", n, value_len, topic);
	printf("%-5s %5s %6s %12s %10s %10s %10s %10s %8s\n", "mode", "lanes", "batch", "events/s",
	       "commit p50", "commit p99", "ack p50", "ack p99", "pub/plain");
	for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
		for (size_t l = 0; l < sizeof lanes / sizeof lanes[0]; l++) {
			struct hist hp;
			hist_init(&hp);
			double plain = run_plain(lanes[l], batches[b], n, topic, &hp);
			struct pub_result pub = run_pub(lanes[l], batches[b], n, topic, state);
			printf("%-5s %5d %6d %12.0f %8.1fms %8.1fms %10s %10s\n", "plain", lanes[l],
			       batches[b], plain, hist_quantile(&hp, 0.5) / 1000.0,
			       hist_quantile(&hp, 0.99) / 1000.0, "-", "-");
			printf("%-5s %5d %6d %12.0f %8.1fms %8.1fms %8.1fms %8.1fms %7.0f%%\n", "pub",
			       lanes[l], batches[b], pub.rate, pub.commit_p50_ms, pub.commit_p99_ms,
			       pub.ack_p50_ms, pub.ack_p99_ms, 100.0 * pub.rate / plain);
			fflush(stdout);
		}
	}
	return 0;
}

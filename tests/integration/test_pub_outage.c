/*
 * Kafka down for 20 s in the middle of a stream: no positive completion
 * while it is down, submissions are refused once max_inflight jobs wait
 * (memory stays bounded), and after the broker is back every message is
 * committed exactly once.
 *
 * Pauses the broker that tests/services/kafka.sh started; it runs in its own
 * program so no other test shares the outage.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"
#include "publish/pub.h"
#include "util.h"

#define N 6000
#define MAX_INFLIGHT 500
#define OUTAGE_S 20

static atomic_llong down_at, up_at; /* monotonic ms; 0 = not yet */
static int positive_during_outage, committed, failed;

static void done_cb(struct pub_job *job, enum pub_status st, const char *reason, void *opaque)
{
	long long now = util_mono_ms(), d = atomic_load(&down_at), u = atomic_load(&up_at);
	if (st == PUB_COMMITTED) {
		committed++;
		/* 1 s of grace for a commit acknowledged just before the stop. */
		if (d && now > d + 1000 && (!u || now < u))
			positive_during_outage++;
	} else {
		failed++;
	}
	pub_job_free(job);
}

static int services(const char *verb)
{
	char cmd[1024];
	const char *src = getenv("HB_SRCDIR");
	snprintf(cmd, sizeof cmd, "%s/tests/services/kafka.sh %s >&2", src ? src : ".", verb);
	return system(cmd);
}

static void *outage_thread(void *arg)
{
	(void)arg;
	sleep(2);
	if (services("pause") != 0)
		return (void *)1;
	atomic_store(&down_at, util_mono_ms());
	sleep(OUTAGE_S);
	/* Completions are allowed from the moment the broker is started again:
	 * it may answer well before the script has finished waiting for it. */
	atomic_store(&up_at, util_mono_ms());
	if (services("resume") != 0)
		return (void *)2;
	return NULL;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

Test(outage, broker_down_twenty_seconds, .timeout = 300)
{
	char topic[128], state[128], inst[128], err[512];
	struct pub_conf c;
	pthread_t th;
	void *th_rc;
	int refused = 0, max_seen = 0;
	long rss0, rss_max = 0;

	if (services("status >/dev/null") != 0)
		cr_skip_test("the broker is not one tests/services/kafka.sh started; cannot pause it");
	itest_unique_name(topic, sizeof topic, "itest.outage");
	itest_unique_name(state, sizeof state, "itest.ostate");
	itest_unique_name(inst, sizeof inst, "itest-outage");
	cr_assert_eq(itest_create_topic(topic, 3, err, sizeof err), 0, "%s", err);
	cr_assert_eq(itest_create_topic(state, 1, err, sizeof err), 0, "%s", err);

	rd_kafka_conf_t *kc = itest_conf("reconnect.backoff.max.ms", "1000", NULL);
	pub_conf_defaults(&c);
	c.instance = inst;
	c.state_topic = state;
	c.lanes = 2;
	c.max_inflight = MAX_INFLIGHT;
	c.batch_max_msgs = 100;
	c.txn_timeout_ms = 10000;
	c.kafka = kc;
	struct pub *p = pub_new(&c, err, sizeof err);
	cr_assert_not_null(p, "%s", err);
	rss0 = rss_kb();

	pthread_create(&th, NULL, outage_thread, NULL);
	for (int i = 0; i < N; i++) {
		char v[32];
		struct ledger_entry e;
		const void *parts[] = { v };
		size_t lens[1];
		struct pub_job *j = pub_job_new(done_cb, NULL);
		lens[0] = (size_t)snprintf(v, sizeof v, "m-%d", i);
		pub_job_add(j, topic, "k", 1, v, lens[0], NULL, 0);
		memset(&e, 0, sizeof e);
		ledger_hash(e.key, 1, parts, lens);
		strcpy(e.ack, "AA");
		pub_job_set_ledger(j, &e);
		while (pub_submit(p, (uint64_t)i % 7, j) != 0) {
			cr_assert_not(pub_fatal(p, err, sizeof err), "publisher failed: %s", err);
			refused++;
			pub_wait(p, 50);
			pub_drain(p);
		}
		if (pub_inflight(p) > max_seen)
			max_seen = pub_inflight(p);
		if (i % 64 == 0) {
			long r = rss_kb();
			if (r > rss_max)
				rss_max = r;
			pub_drain(p);
			usleep(2000); /* a sender's pace: the stream spans the outage */
		}
	}
	int64_t deadline = util_mono_ms() + 120000;
	while (committed + failed < N && util_mono_ms() < deadline) {
		pub_wait(p, 200);
		pub_drain(p);
	}
	pthread_join(th, &th_rc);
	cr_assert_null(th_rc, "pausing or resuming the broker failed");
	pub_free(p);

	cr_log_info("refused submissions (back-pressure): %d; max in flight %d; RSS %ld -> %ld kB",
		    refused, max_seen, rss0, rss_max);
	cr_assert_eq(positive_during_outage, 0, "%d positive completions while Kafka was down",
		     positive_during_outage);
	cr_assert_gt(refused, 0, "back-pressure never engaged during the outage");
	cr_assert_leq(max_seen, MAX_INFLIGHT);
	cr_assert_lt(rss_max - rss0, 100 * 1024, "RSS grew by %ld kB during the outage", rss_max - rss0);
	cr_assert_eq(failed, 0);
	cr_assert_eq(committed, N);

	char **vals;
	int n = itest_consume_all(topic, "read_committed", N, 10000, &vals);
	char *seen = calloc(N, 1);
	int dups = 0;
	for (int i = 0; i < n; i++) {
		int k = atoi(vals[i] + 2);
		dups += seen[k];
		seen[k] = 1;
	}
	free(seen);
	itest_free_values(vals, n);
	cr_assert_eq(dups, 0, "%d duplicates", dups);
	cr_assert_eq(n, N, "read_committed saw %d of %d", n, N);
	rd_kafka_conf_destroy(kc);
}

/*
 * The publisher against the real broker: many jobs through several lanes
 * arrive exactly once for a read_committed consumer, the ledger rebuilt from
 * the state topic knows every one, and a second instance with the same name
 * fences the first; a state topic created a moment ago can be read at once.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "publish/pub.h"
#include "util.h"


static struct pub_job *make_job(struct itest_tally *t, const char *topic, int i)
{
	char v[32], key[16];
	struct ledger_entry e;
	const void *parts[] = { v };
	size_t lens[1];
	struct pub_job *j = pub_job_new(itest_tally_cb, t);

	lens[0] = (size_t)snprintf(v, sizeof v, "m-%d", i);
	snprintf(key, sizeof key, "p%d", i % 97);
	cr_assert_eq(pub_job_add(j, topic, key, strlen(key), v, lens[0], NULL, 0), 0);
	memset(&e, 0, sizeof e);
	ledger_hash(e.key, 1, parts, lens);
	e.kind = LEDGER_MSG;
	strcpy(e.ack, "AA");
	pub_job_set_ledger(j, &e);
	return j;
}

static void submit_all(struct pub *p, struct itest_tally *t, const char *topic, int n)
{
	for (int i = 0; i < n; i++) {
		struct pub_job *j = make_job(t, topic, i);
		while (pub_submit(p, (uint64_t)(i % 16), j) != 0) {
			char err[256];
			cr_assert_not(pub_fatal(p, err, sizeof err), "%s", err);
			pub_wait(p, 100); /* back-pressure: wait for completions */
			pub_drain(p);
		}
	}
	int64_t deadline = util_mono_ms() + 120000;
	while (t->committed + t->failed < n && util_mono_ms() < deadline) {
		pub_wait(p, 200);
		pub_drain(p);
	}
}

static rd_kafka_conf_t *base_conf(void)
{
	return itest_conf("linger.ms", "5", NULL);
}

Test(pub, hundred_thousand_through_four_lanes_exactly_once, .timeout = 300)
{
	char topic[128], state[128], inst[128], err[512];
	struct pub_conf c;
	struct itest_tally t = { 0, 0 };
	const int N = 100000;
	char **vals;
	int n;

	itest_unique_name(topic, sizeof topic, "itest.pub");
	itest_unique_name(state, sizeof state, "itest.state");
	itest_unique_name(inst, sizeof inst, "itest-inst");
	cr_assert_eq(itest_create_topic(topic, 3, err, sizeof err), 0, "%s", err);
	cr_assert_eq(itest_create_topic(state, 3, err, sizeof err), 0, "%s", err);

	rd_kafka_conf_t *kc = base_conf();
	pub_conf_defaults(&c);
	c.instance = inst;
	c.state_topic = state;
	c.lanes = 4;
	c.max_inflight = 20000;
	c.kafka = kc;
	struct pub *p = pub_new(&c, err, sizeof err);
	cr_assert_not_null(p, "%s", err);
	submit_all(p, &t, topic, N);
	struct pub_stats st;
	pub_get_stats(p, &st);
	pub_free(p);
	cr_assert_eq(t.committed, N, "committed %d of %d (failed %d)", t.committed, N, t.failed);
	cr_log_info("%d jobs in %llu transactions", N, (unsigned long long)st.txn_committed);

	n = itest_consume_all(topic, "read_committed", N, 10000, &vals);
	cr_assert_eq(n, N, "read_committed saw %d of %d", n, N);
	char *seen = calloc((size_t)N, 1);
	int dups = 0;
	for (int i = 0; i < n; i++) {
		int k = atoi(vals[i] + 2);
		cr_assert(k >= 0 && k < N);
		dups += seen[k];
		seen[k] = 1;
	}
	cr_assert_eq(dups, 0, "%d duplicates", dups);
	free(seen);
	itest_free_values(vals, n);

	/* The ledger rebuilt from the state topic knows every message. */
	struct ledger *l = ledger_new(24LL * 3600 * 1000);
	long applied = ledger_rebuild(l, kc, state, 60000, err, sizeof err);
	cr_assert_eq(applied, N, "rebuild applied %ld: %s", applied, err);
	cr_assert_eq(ledger_size(l), (size_t)N);
	ledger_free(l);
	rd_kafka_conf_destroy(kc);
}

Test(pub, same_instance_fences_the_older_one, .timeout = 120)
{
	char topic[128], state[128], inst[128], err[512];
	struct pub_conf c;
	struct itest_tally t1 = { 0, 0 }, t2 = { 0, 0 };

	itest_unique_name(topic, sizeof topic, "itest.fence");
	itest_unique_name(state, sizeof state, "itest.fstate");
	itest_unique_name(inst, sizeof inst, "itest-fence");
	cr_assert_eq(itest_create_topic(topic, 1, err, sizeof err), 0, "%s", err);
	cr_assert_eq(itest_create_topic(state, 1, err, sizeof err), 0, "%s", err);
	rd_kafka_conf_t *kc = base_conf();
	pub_conf_defaults(&c);
	c.instance = inst;
	c.state_topic = state;
	c.lanes = 1;
	c.kafka = kc;

	struct pub *old = pub_new(&c, err, sizeof err);
	cr_assert_not_null(old, "%s", err);
	submit_all(old, &t1, topic, 10);
	cr_assert_eq(t1.committed, 10);

	struct pub *newer = pub_new(&c, err, sizeof err); /* fences `old` */
	cr_assert_not_null(newer, "%s", err);

	/* The old instance can no longer commit: its jobs fail, it turns fatal. */
	struct pub_job *j = make_job(&t1, topic, 1000);
	cr_assert_eq(pub_submit(old, 0, j), 0);
	int64_t deadline = util_mono_ms() + 60000;
	while (t1.committed + t1.failed < 11 && util_mono_ms() < deadline) {
		pub_wait(old, 200);
		pub_drain(old);
	}
	cr_assert_eq(t1.failed, 1, "the fenced instance committed");
	cr_assert(pub_fatal(old, err, sizeof err));
	cr_log_info("old instance: %s", err);
	pub_free(old);

	submit_all(newer, &t2, topic, 5);
	cr_assert_eq(t2.committed, 5);
	pub_free(newer);

	char **vals;
	int n = itest_consume_all(topic, "read_committed", 15, 5000, &vals);
	cr_assert_eq(n, 15, "saw %d", n);
	itest_free_values(vals, n);
	rd_kafka_conf_destroy(kc);
}

/* First start with topics.create = on: the state topic was created a moment
 * ago and its leader is in the metadata before that broker serves the
 * partitions, so ListOffsets answers NOT_LEADER_FOR_PARTITION for a while.
 * The rebuild must wait that out, not fail the start. */
Test(pub, ledger_rebuild_of_a_state_topic_created_just_now, .timeout = 120)
{
	char err[512];

	for (int i = 0; i < 3; i++) {
		char state[128];
		itest_unique_name(state, sizeof state, "itest.newstate");
		cr_assert_eq(itest_create_topic(state, 3, err, sizeof err), 0, "%s", err);
		rd_kafka_conf_t *kc = base_conf();
		struct ledger *l = ledger_new(24LL * 3600 * 1000);
		long applied = ledger_rebuild(l, kc, state, 30000, err, sizeof err);
		cr_assert_eq(applied, 0, "rebuild of the new topic %s: %s", state, err);
		rd_kafka_conf_destroy(kc);
		ledger_free(l);
	}
}

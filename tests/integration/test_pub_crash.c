/*
 * Crash points: a publisher process dies (abort) after producing a batch but
 * before committing it, or after committing but before any completion was
 * delivered. A new instance with the same name starts (fencing the dead one
 * and aborting its open transaction), rebuilds the ledger from the state
 * topic, and the sender resends every message it never got an ACK for.
 * A read_committed consumer must see every message exactly once.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"
#include "publish/pub.h"
#include "util.h"

#define N 400


static void key_of(uint8_t key[LEDGER_KEY_LEN], int i)
{
	char v[32];
	const void *parts[] = { "crash-test-sender", v };
	size_t lens[] = { 17, 0 };
	lens[1] = (size_t)snprintf(v, sizeof v, "MSG%06d", i);
	ledger_hash(key, 2, parts, lens);
}

static struct pub_job *make_job(struct itest_tally *t, const char *topic, int i)
{
	char v[32];
	struct ledger_entry e;
	struct pub_job *j = pub_job_new(itest_tally_cb, t);
	size_t n = (size_t)snprintf(v, sizeof v, "m-%d", i);
	pub_job_add(j, topic, "patient", 7, v, n, NULL, 0);
	memset(&e, 0, sizeof e);
	key_of(e.key, i);
	e.kind = LEDGER_MSG;
	strcpy(e.ack, "AA");
	pub_job_set_ledger(j, &e);
	return j;
}

static void conf_for(struct pub_conf *c, rd_kafka_conf_t *kc, const char *inst, const char *state)
{
	pub_conf_defaults(c);
	c->instance = inst;
	c->state_topic = state;
	c->lanes = 1;
	c->batch_max_msgs = 50;
	c->linger_ms = 20;
	c->kafka = kc;
}

static void run_crash(int after_commit)
{
	char topic[128], state[128], inst[128], err[512];
	struct pub_conf c;
	struct itest_tally t = { 0, 0 };
	int status, resent = 0;
	pid_t pid;

	itest_unique_name(topic, sizeof topic, "itest.crash");
	itest_unique_name(state, sizeof state, "itest.crashstate");
	itest_unique_name(inst, sizeof inst, "itest-crash");
	cr_assert_eq(itest_create_topic(topic, 3, err, sizeof err), 0, "%s", err);
	cr_assert_eq(itest_create_topic(state, 1, err, sizeof err), 0, "%s", err);

	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		/* The doomed instance. */
		rd_kafka_conf_t *kc = itest_conf(NULL);
		conf_for(&c, kc, inst, state);
		c.crash_after_produce = !after_commit;
		c.crash_after_commit = after_commit;
		struct pub *p = pub_new(&c, err, sizeof err);
		if (!p)
			_exit(3);
		for (int i = 0; i < N; i++)
			if (pub_submit(p, 1, make_job(&t, topic, i)) != 0)
				_exit(4);
		sleep(60);
		_exit(5); /* the crash point was never reached */
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		  "the publisher did not crash at the crash point (status %d)", status);

	/* Restart: same instance name; the ledger says what was committed. */
	rd_kafka_conf_t *kc = itest_conf(NULL);
	conf_for(&c, kc, inst, state);
	struct pub *p = pub_new(&c, err, sizeof err);
	cr_assert_not_null(p, "%s", err);
	struct ledger *l = ledger_new(3600 * 1000);
	long applied = ledger_rebuild(l, kc, state, 30000, err, sizeof err);
	cr_assert_geq(applied, 0, "%s", err);
	if (after_commit)
		cr_assert_gt(applied, 0, "the committed batch is not in the ledger");
	else
		cr_assert_eq(applied, 0, "an uncommitted batch reached the ledger");

	/* The sender resends everything it never got an ACK for (all of it);
	 * the ledger answers the committed ones without republishing. */
	for (int i = 0; i < N; i++) {
		uint8_t key[LEDGER_KEY_LEN];
		key_of(key, i);
		struct ledger_entry *e = ledger_find(l, key);
		if (e && e->state == LEDGER_COMMITTED)
			continue;
		cr_assert_eq(pub_submit(p, 1, make_job(&t, topic, i)), 0);
		resent++;
	}
	int64_t deadline = util_mono_ms() + 60000;
	while (t.committed + t.failed < resent && util_mono_ms() < deadline) {
		pub_wait(p, 200);
		pub_drain(p);
	}
	pub_free(p);
	cr_assert_eq(t.committed, resent, "committed %d of %d resent", t.committed, resent);
	cr_assert_eq(resent + applied, N);

	char **vals;
	int n = itest_consume_all(topic, "read_committed", N, 5000, &vals);
	char seen[N] = { 0 };
	int dups = 0;
	for (int i = 0; i < n; i++) {
		int k = atoi(vals[i] + 2);
		cr_assert(k >= 0 && k < N);
		dups += seen[k];
		seen[k] = 1;
	}
	itest_free_values(vals, n);
	cr_assert_eq(dups, 0, "%d duplicates", dups);
	cr_assert_eq(n, N, "read_committed saw %d of %d", n, N);
	ledger_free(l);
	rd_kafka_conf_destroy(kc);
}

Test(crash, after_produce_before_commit, .timeout = 180)
{
	run_crash(0);
}

Test(crash, after_commit_before_completion, .timeout = 180)
{
	run_crash(1);
}

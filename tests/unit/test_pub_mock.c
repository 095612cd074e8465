/*
 * The exactly-once publisher (pub.c) against librdkafka's mock cluster, one
 * scenario per test: a commit, an abortable produce error replayed in a new
 * transaction, a fenced producer as a fatal error, a broker that goes down
 * and comes back, back-pressure at max_inflight, the ledger record in the
 * transaction, completion order within an origin, and within a key for
 * unordered jobs (routed by partition) from many origins.
 *
 * The mock cluster speaks the transactional protocol but does not filter
 * aborted records for read_committed consumers, so these tests check what
 * the publisher decides (completions, statistics, records it writes);
 * what a read_committed consumer sees is proven against the real broker in
 * tests/integration/test_pub*.c.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmock.h"
#include "publish/pub.h"
#include "util.h"

#define TOPIC "t.events"
#define STATE "t.state"
#define WAIT_MS 30000

struct done_ctx;

struct fixture {
	struct kmock k;
	struct pub *pub;
	/* completions, in the order they were drained */
	int committed, failed;
	int order[256];
	int norder;
	struct done_ctx *last;
};

struct done_ctx {
	struct fixture *f;
	int id;
};

static void done_cb(struct pub_job *job, enum pub_status st, const char *reason, void *opaque)
{
	struct done_ctx *d = opaque;
	(void)reason;
	if (st == PUB_COMMITTED)
		d->f->committed++;
	else
		d->f->failed++;
	if (d->f->norder < (int)(sizeof d->f->order / sizeof d->f->order[0]))
		d->f->order[d->f->norder++] = d->id;
	pub_job_free(job);
	free(d);
}

static void fixture_start(struct fixture *f, int lanes, int max_inflight)
{
	char err[512];
	const char *topics[] = { TOPIC, STATE };
	const struct kmock_topic mt[] = { { TOPIC, 2 }, { STATE, 1 } };
	struct pub_conf c;

	memset(f, 0, sizeof *f);
	kmock_start(&f->k, mt, 2);

	pub_conf_defaults(&c);
	c.instance = "mock";
	c.state_topic = STATE;
	c.lanes = lanes;
	c.linger_ms = 0;
	c.max_inflight = max_inflight;
	c.txn_timeout_ms = 10000;
	c.kafka = f->k.kc;
	c.topics = topics;
	c.ntopics = 2;
	f->pub = pub_new(&c, err, sizeof err);
	cr_assert(f->pub, "pub_new: %s", err);
}

static void fixture_stop(struct fixture *f)
{
	pub_free(f->pub);
	kmock_stop(&f->k);
}

/* A job with one event record and a message ledger entry derived from id.
 * Its completion context is kept in f->last until the job is submitted. */
static struct pub_job *make_job(struct fixture *f, int id)
{
	char v[32];
	const void *parts[] = { v };
	size_t lens[1];
	struct ledger_entry e;
	struct done_ctx *d = calloc(1, sizeof *d);
	struct pub_job *j;

	cr_assert(d);
	d->f = f;
	d->id = id;
	f->last = d;
	j = pub_job_new(done_cb, d);
	cr_assert(j);
	lens[0] = (size_t)snprintf(v, sizeof v, "m-%d", id);
	cr_assert_eq(pub_job_add(j, TOPIC, "p1", 2, v, lens[0], NULL, 0), 0);
	memset(&e, 0, sizeof e);
	ledger_hash(e.key, 1, parts, lens);
	e.kind = LEDGER_MSG;
	strcpy(e.ack, "AA");
	pub_job_set_ledger(j, &e);
	return j;
}

/* Drain completions until `n` arrived or timeout_ms passed. */
static void wait_for(struct fixture *f, int n, int timeout_ms)
{
	int64_t deadline = util_mono_ms() + timeout_ms;
	while (f->committed + f->failed < n && util_mono_ms() < deadline) {
		pub_wait(f->pub, 50);
		pub_drain(f->pub);
	}
}

Test(pub_mock, a_job_commits_once, .timeout = 60)
{
	struct fixture f;
	struct pub_stats st;
	fixture_start(&f, 1, 16);
	cr_assert_eq(pub_submit(f.pub, 1, make_job(&f, 1)), 0);
	wait_for(&f, 1, WAIT_MS);
	pub_get_stats(f.pub, &st);
	cr_assert_eq(f.committed, 1);
	cr_assert_eq(f.failed, 0);
	cr_assert_eq(st.jobs_committed, 1);
	cr_assert_eq(st.txn_aborted, 0);
	cr_assert_geq(st.txn_committed, 1);
	fixture_stop(&f);
}

Test(pub_mock, an_abortable_produce_error_is_replayed_in_a_new_transaction, .timeout = 60)
{
	struct fixture f;
	struct pub_stats st;
	fixture_start(&f, 1, 16);
	/* A permanent produce error: the transaction must be aborted and the
	 * batch produced again in the next one. */
	rd_kafka_mock_push_request_errors(f.k.mc, KMOCK_API_PRODUCE, 1,
					  RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
	cr_assert_eq(pub_submit(f.pub, 1, make_job(&f, 1)), 0);
	wait_for(&f, 1, WAIT_MS);
	pub_get_stats(f.pub, &st);
	cr_assert_eq(f.committed, 1, "committed %d failed %d", f.committed, f.failed);
	cr_assert_eq(f.failed, 0);
	cr_assert_geq(st.txn_aborted, 1, "the failed transaction was aborted");
	cr_assert_eq(st.jobs_committed, 1, "one completion, not one per attempt");
	cr_assert_not(pub_fatal(f.pub, NULL, 0));
	fixture_stop(&f);
}

Test(pub_mock, a_fenced_producer_is_fatal_and_fails_its_jobs, .timeout = 60)
{
	struct fixture f;
	char err[256] = "";
	fixture_start(&f, 1, 16);
	rd_kafka_mock_push_request_errors(f.k.mc, KMOCK_API_END_TXN, 1, RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
	cr_assert_eq(pub_submit(f.pub, 1, make_job(&f, 1)), 0);
	wait_for(&f, 1, WAIT_MS);
	cr_assert_eq(f.committed, 0);
	cr_assert_eq(f.failed, 1, "the job is answered as failed, never as committed");
	cr_assert(pub_fatal(f.pub, err, sizeof err));
	cr_assert_neq(err[0], '\0', "the fatal error has a reason");
	/* Nothing more is accepted once fatal; a refused job stays the caller's. */
	struct pub_job *j = make_job(&f, 2);
	cr_assert_neq(pub_submit(f.pub, 1, j), 0);
	done_cb(j, PUB_FAILED, NULL, f.last);
	cr_assert_eq(f.failed, 2);
	fixture_stop(&f);
}

Test(pub_mock, a_broker_down_holds_jobs_until_it_returns, .timeout = 90)
{
	struct fixture f;
	fixture_start(&f, 1, 16);
	/* one commit first, so the producer knows its coordinator */
	cr_assert_eq(pub_submit(f.pub, 1, make_job(&f, 1)), 0);
	wait_for(&f, 1, WAIT_MS);
	cr_assert_eq(f.committed, 1);

	rd_kafka_mock_broker_set_down(f.k.mc, 1);
	cr_assert_eq(pub_submit(f.pub, 1, make_job(&f, 2)), 0);
	wait_for(&f, 2, 1500);
	cr_assert_eq(f.committed + f.failed, 1, "no completion while the broker is down");
	cr_assert_eq(pub_inflight(f.pub), 1);

	rd_kafka_mock_broker_set_up(f.k.mc, 1);
	wait_for(&f, 2, WAIT_MS);
	cr_assert_eq(f.committed, 2, "committed once the broker is back (failed %d)", f.failed);
	cr_assert_not(pub_fatal(f.pub, NULL, 0));
	fixture_stop(&f);
}

Test(pub_mock, submit_refuses_beyond_max_inflight, .timeout = 60)
{
	struct fixture f;
	struct pub_job *j;
	fixture_start(&f, 1, 2);
	rd_kafka_mock_broker_set_down(f.k.mc, 1); /* nothing completes meanwhile */
	cr_assert_eq(pub_submit(f.pub, 1, make_job(&f, 1)), 0);
	cr_assert_eq(pub_submit(f.pub, 1, make_job(&f, 2)), 0);
	j = make_job(&f, 3);
	cr_assert_neq(pub_submit(f.pub, 1, j), 0, "the third job is refused (back-pressure)");
	cr_assert_eq(pub_inflight(f.pub), 2);
	rd_kafka_mock_broker_set_up(f.k.mc, 1);
	wait_for(&f, 2, WAIT_MS);
	cr_assert_eq(f.committed, 2);
	cr_assert_eq(pub_submit(f.pub, 1, j), 0, "accepted again after the drain");
	wait_for(&f, 3, WAIT_MS);
	cr_assert_eq(f.committed, 3);
	fixture_stop(&f);
}

Test(pub_mock, the_ledger_record_travels_in_the_transaction, .timeout = 60)
{
	struct fixture f;
	fixture_start(&f, 1, 64);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(pub_submit(f.pub, 1, make_job(&f, i)), 0);
	wait_for(&f, 10, WAIT_MS);
	cr_assert_eq(f.committed, 10);
	cr_assert_eq(kmock_count(&f.k, TOPIC, 2, NULL), 10);
	/* message keys go as batch records "msgs/<transactional.id>/<seq>" */
	int batches = kmock_count(&f.k, STATE, 1, "msgs/mock-0/");
	cr_assert_geq(batches, 1);
	cr_assert_leq(batches, 10, "at most one ledger record per transaction");
	fixture_stop(&f);
}

Test(pub_mock, jobs_of_one_origin_complete_in_order, .timeout = 60)
{
	struct fixture f;
	const int n = 100;
	fixture_start(&f, 3, 256);
	for (int i = 0; i < n; i++)
		cr_assert_eq(pub_submit(f.pub, 7, make_job(&f, i)), 0);
	wait_for(&f, n, WAIT_MS);
	cr_assert_eq(f.committed, n);
	for (int i = 0; i < n; i++)
		cr_assert_eq(f.order[i], i, "completion %d is job %d", i, f.order[i]);
	fixture_stop(&f);
}

Test(pub_mock, unordered_jobs_of_one_key_complete_in_order_whatever_their_origin, .timeout = 60)
{
	struct fixture f;
	const int n = 100;
	fixture_start(&f, 3, 256);
	for (int i = 0; i < n; i++) {
		struct pub_job *j = make_job(&f, i);
		pub_job_set_unordered(j); /* routed by the key "p1", not by origin i */
		cr_assert_eq(pub_submit(f.pub, (uint64_t)i, j), 0);
	}
	wait_for(&f, n, WAIT_MS);
	cr_assert_eq(f.committed, n);
	for (int i = 0; i < n; i++)
		cr_assert_eq(f.order[i], i, "completion %d is job %d", i, f.order[i]);
	fixture_stop(&f);
}

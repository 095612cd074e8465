/*
 * The exactly-once logic of pipeline.c (ledger look-up, join, commit, ACK)
 * on librdkafka's mock cluster, one scenario per test: a new message is
 * answered AA only after its commit; a resend of a committed message is
 * answered from the ledger; a resend while the first copy is in flight
 * joins it; a message a mapping rejects is answered AE and dead-lettered; a
 * transaction that cannot commit leaves the message unanswered and its key
 * out of the ledger, so the resend is published; a fenced producer stops
 * the acknowledgements; an abortable error is retried and answered once.
 *
 * The pipeline's completions run in pub_drain, which the tests call: a
 * message stays in flight, as the pipeline sees it, until they do. The real
 * mapping set (mappings/) maps the real samples (samples/hl7v2).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmock.h"
#include "pipeline.h"
#include "util.h"

#define EVENTS "healthcare.patient.created"
#define DEADLETTER "t.deadletter"
#define STATE "t.state"
#define WAIT_MS 30000

/* What the sender of one message got. */
struct answer {
	int calls;   /* done callbacks: exactly one per message */
	int acked;   /* an acknowledgement was sent (else: none may be) */
	char code[3]; /* its MSA-1 */
	int has_err;  /* it carries an ERR segment */
};

struct fixture {
	struct kmock k;
	struct pub *pub;
	struct ledger *ledger;
	struct map_set *maps;
	struct pipeline *pl;
};

static void done_cb(void *ctx, const char *ack, size_t len)
{
	struct answer *a = ctx;
	a->calls++;
	if (!ack)
		return;
	char *s = strndup(ack, len);
	cr_assert(s);
	const char *msa = strstr(s, "\rMSA|");
	cr_assert(msa, "an acknowledgement has MSA");
	a->acked = 1;
	memcpy(a->code, msa + 5, 2);
	a->has_err = strstr(s, "\rERR|") != NULL;
	free(s);
}

static struct pub *new_pub(struct fixture *f, const char *instance)
{
	char err[512];
	const char *topics[] = { EVENTS, DEADLETTER, STATE };
	struct pub_conf c;
	pub_conf_defaults(&c);
	c.instance = instance;
	c.state_topic = STATE;
	c.lanes = 1;
	c.linger_ms = 0;
	c.max_inflight = 16;
	c.txn_timeout_ms = 3000; /* bounds the shutdown of a lane that cannot commit */
	c.limits_timeout_ms = 0; /* the mock does not answer DescribeConfigs */
	c.kafka = f->k.kc;
	c.topics = topics;
	c.ntopics = 3;
	struct pub *p = pub_new(&c, err, sizeof err);
	cr_assert(p, "pub_new: %s", err);
	return p;
}

static struct pipeline *new_pipeline(struct fixture *f)
{
	char err[512];
	struct pipeline_conf c = {
		.instance = "mock",
		.deadletter_topic = DEADLETTER,
		.deadletter = 1,
		.unmatched = MAP_UNMATCHED_FILTER,
	};
	struct pipeline *pl = pipeline_new(&c, f->pub, f->ledger, err, sizeof err);
	cr_assert(pl, "pipeline_new: %s", err);
	cr_assert_eq(pipeline_set_maps(pl, f->maps, NULL, err, sizeof err), 0, "%s", err);
	return pl;
}

static void fixture_start(struct fixture *f)
{
	const struct kmock_topic topics[] = { { EVENTS, 1 }, { DEADLETTER, 1 }, { STATE, 1 } };
	struct map_diag diag = { 0 };

	memset(f, 0, sizeof *f);
	kmock_start(&f->k, topics, 3);
	f->maps = map_set_load(HB_SRCDIR "/mappings", HB_SRCDIR "/conf/schemas", &diag);
	cr_assert(f->maps, "mappings: %s", diag.text ? diag.text : "?");
	map_diag_clear(&diag);
	f->ledger = ledger_new(24LL * 3600 * 1000);
	cr_assert(f->ledger);
	f->pub = new_pub(f, "mock");
	f->pl = new_pipeline(f);
}

static void fixture_stop(struct fixture *f)
{
	pub_free(f->pub); /* its last completions still reach the pipeline */
	pipeline_free(f->pl);
	ledger_free(f->ledger);
	map_set_free(f->maps);
	kmock_stop(&f->k);
}

/* A sample as the sender sends it; free it. */
static char *sample(const char *name, size_t *len)
{
	char path[512], err[256];
	snprintf(path, sizeof path, "%s/%s", HB_SRCDIR, name);
	char *buf = util_read_file(path, 1 << 20, len, err, sizeof err);
	cr_assert(buf, "%s", err);
	return buf;
}

static void send_raw(struct fixture *f, const char *msg, size_t len, struct answer *a)
{
	pipeline_hl7(f->pl, 1, "test", (const unsigned char *)msg, len, done_cb, a);
}

static void send_msg(struct fixture *f, const char *name, struct answer *a)
{
	size_t len;
	char *msg = sample(name, &len);
	send_raw(f, msg, len, a);
	free(msg);
}

/* Drain completions until every answer in a[0..n) came or timeout_ms passed. */
static void wait_answers(struct fixture *f, struct answer *a, int n, int timeout_ms)
{
	int64_t deadline = util_mono_ms() + timeout_ms;
	for (;;) {
		int missing = 0;
		for (int i = 0; i < n; i++)
			missing += a[i].calls == 0;
		if (!missing || util_mono_ms() >= deadline)
			return;
		pub_wait(f->pub, 50);
		pub_drain(f->pub);
	}
}

/* A message that needs a commit: not answered before it, once after. */
static void send_committed(struct fixture *f, const char *name, struct answer *a)
{
	send_msg(f, name, a);
	cr_assert_eq(a->calls, 0, "%s: answered before its commit", name);
	wait_answers(f, a, 1, WAIT_MS);
	cr_assert_eq(a->calls, 1, "%s: answered once", name);
}

static struct pipeline_stats stats(const struct fixture *f)
{
	struct pipeline_stats st;
	pipeline_get_stats(f->pl, &st);
	return st;
}

static struct pub_stats pstats(const struct fixture *f)
{
	struct pub_stats st;
	pub_get_stats(f->pub, &st);
	return st;
}

#define ADT_A01 "samples/hl7v2/adt_a01.hl7"
#define ADT_A04 "samples/hl7v2/adt_a04.hl7"
#define BAD_DATE "mappings/tests/adt-patient/rejected_bad_birth_date.hl7"

Test(pipeline_mock, a_new_message_is_acknowledged_AA_after_its_commit, .timeout = 60)
{
	struct fixture f;
	struct answer a = { 0 };
	fixture_start(&f);
	send_msg(&f, ADT_A01, &a);
	cr_assert_eq(a.calls, 0, "no answer before the commit");
	cr_assert_eq(pub_inflight(f.pub), 1);
	cr_assert_eq(ledger_size(f.ledger), 1, "its key is in the ledger, in flight");
	wait_answers(&f, &a, 1, WAIT_MS);
	cr_assert_eq(a.calls, 1);
	cr_assert(a.acked);
	cr_assert_str_eq(a.code, "AA");
	cr_assert_eq(stats(&f).accepted, 1);
	cr_assert_geq(stats(&f).events, 1);
	cr_assert_eq(pstats(&f).jobs_committed, 1);
	cr_assert_eq(kmock_count(&f.k, EVENTS, 1, NULL), (int)stats(&f).events);
	cr_assert_eq(kmock_count(&f.k, STATE, 1, "msgs/mock-0/"), 1, "its ledger record went with it");
	fixture_stop(&f);
}

Test(pipeline_mock, a_resend_of_a_committed_message_is_answered_from_the_ledger, .timeout = 60)
{
	struct fixture f;
	struct answer a = { 0 }, b = { 0 };
	fixture_start(&f);
	send_committed(&f, ADT_A01, &a);
	cr_assert_str_eq(a.code, "AA");
	int events = kmock_count(&f.k, EVENTS, 1, NULL);

	send_msg(&f, ADT_A01, &b);
	cr_assert_eq(b.calls, 1, "answered at once, from the ledger");
	cr_assert_str_eq(b.code, "AA");
	cr_assert_eq(pub_inflight(f.pub), 0, "not submitted again");
	cr_assert_eq(stats(&f).duplicates, 1);
	cr_assert_eq(stats(&f).accepted, 1);
	cr_assert_eq(pstats(&f).jobs_committed, 1);
	cr_assert_eq(kmock_count(&f.k, EVENTS, 1, NULL), events, "not republished");
	fixture_stop(&f);
}

Test(pipeline_mock, a_resend_while_the_first_copy_is_in_flight_joins_it, .timeout = 60)
{
	struct fixture f;
	struct answer a[2] = { { 0 } };
	fixture_start(&f);
	send_msg(&f, ADT_A01, &a[0]);
	send_msg(&f, ADT_A01, &a[1]); /* nothing drained: the first copy is in flight */
	cr_assert_eq(a[0].calls + a[1].calls, 0, "neither is answered before the commit");
	cr_assert_eq(stats(&f).joined, 1);
	cr_assert_eq(pub_inflight(f.pub), 1, "one job for both");
	wait_answers(&f, a, 2, WAIT_MS);
	cr_assert_eq(a[0].calls, 1);
	cr_assert_eq(a[1].calls, 1);
	cr_assert_str_eq(a[0].code, "AA");
	cr_assert_str_eq(a[1].code, "AA", "the resend gets the first copy's answer");
	cr_assert_eq(pstats(&f).jobs_committed, 1);
	cr_assert_eq(stats(&f).accepted, 1);
	cr_assert_eq(kmock_count(&f.k, EVENTS, 1, NULL), (int)stats(&f).events, "published once");
	fixture_stop(&f);
}

Test(pipeline_mock, an_unreadable_resend_while_its_dead_letter_is_in_flight_joins_it, .timeout = 60)
{
	static const char junk[] = "NOT|an HL7 message\r";
	struct fixture f;
	struct answer a[2] = { { 0 } };
	fixture_start(&f);
	send_raw(&f, junk, sizeof junk - 1, &a[0]);
	send_raw(&f, junk, sizeof junk - 1, &a[1]); /* its first copy's dead letter in flight */
	cr_assert_eq(stats(&f).joined, 1);
	cr_assert_eq(pub_inflight(f.pub), 1, "one dead letter for both");
	wait_answers(&f, a, 2, WAIT_MS);
	cr_assert_str_eq(a[0].code, "AR");
	cr_assert_str_eq(a[1].code, "AR", "the resend gets the first copy's answer");
	cr_assert_eq(kmock_count(&f.k, DEADLETTER, 1, NULL), 1, "dead-lettered once");
	fixture_stop(&f);
}

Test(pipeline_mock, a_message_a_mapping_rejects_is_answered_AE_and_dead_lettered, .timeout = 60)
{
	struct fixture f;
	struct answer a = { 0 };
	fixture_start(&f);
	send_committed(&f, BAD_DATE, &a); /* its dead letter */
	cr_assert_str_eq(a.code, "AE");
	cr_assert(a.has_err, "the AE says why (ERR)");
	cr_assert_eq(stats(&f).rejected_map, 1);
	cr_assert_eq(stats(&f).deadlettered, 1);
	cr_assert_eq(stats(&f).events, 0);
	cr_assert_eq(kmock_count(&f.k, DEADLETTER, 1, NULL), 1);
	cr_assert_eq(kmock_count(&f.k, EVENTS, 1, NULL), 0);
	cr_assert_eq(ledger_size(f.ledger), 1, "its AE is in the ledger for resends");
	fixture_stop(&f);
}

Test(pipeline_mock, a_transaction_that_cannot_commit_leaves_the_message_unanswered_and_a_resend_published,
     .timeout = 90)
{
	struct fixture f;
	struct answer a = { 0 }, b = { 0 };
	fixture_start(&f);
	rd_kafka_mock_broker_set_down(f.k.mc, 1);
	send_msg(&f, ADT_A01, &a);
	wait_answers(&f, &a, 1, 1500);
	cr_assert_eq(a.calls, 0, "no answer while nothing commits");
	/* Shutdown while Kafka is unreachable: the lane gives up, its job fails. */
	pub_free(f.pub);
	cr_assert_eq(a.calls, 1, "answered at shutdown");
	cr_assert_not(a.acked, "with no acknowledgement: the sender must resend");
	cr_assert_eq(stats(&f).failed, 1);
	cr_assert_eq(ledger_size(f.ledger), 0, "its key is out of the ledger");

	/* The next instance, with the same ledger, publishes the resend. */
	rd_kafka_mock_broker_set_up(f.k.mc, 1);
	pipeline_free(f.pl);
	f.pub = new_pub(&f, "mock-next");
	f.pl = new_pipeline(&f);
	send_committed(&f, ADT_A01, &b); /* a new message again, not a duplicate */
	cr_assert_str_eq(b.code, "AA");
	cr_assert_eq(stats(&f).accepted, 1);
	fixture_stop(&f);
}

Test(pipeline_mock, a_fenced_producer_stops_the_acknowledgements, .timeout = 60)
{
	struct fixture f;
	struct answer a = { 0 }, b = { 0 };
	fixture_start(&f);
	rd_kafka_mock_push_request_errors(f.k.mc, KMOCK_API_END_TXN, 1,
					  RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
	send_committed(&f, ADT_A01, &a); /* its transaction's end */
	cr_assert_not(a.acked, "not committed: no acknowledgement");
	cr_assert_eq(ledger_size(f.ledger), 0, "its key is out of the ledger");
	cr_assert_not(pipeline_can_accept(f.pl), "a fenced instance takes nothing more");

	send_msg(&f, ADT_A04, &b);
	cr_assert_eq(b.calls, 1, "refused at once");
	cr_assert_not(b.acked, "and never acknowledged");
	cr_assert_eq(stats(&f).failed, 2);
	cr_assert_eq(stats(&f).accepted, 0);
	cr_assert_eq(ledger_size(f.ledger), 0);
	fixture_stop(&f);
}

Test(pipeline_mock, an_abortable_error_is_retried_and_the_message_acknowledged_once, .timeout = 60)
{
	struct fixture f;
	struct answer a = { 0 };
	fixture_start(&f);
	rd_kafka_mock_push_request_errors(f.k.mc, KMOCK_API_PRODUCE, 1,
					  RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
	send_committed(&f, ADT_A01, &a);
	cr_assert_str_eq(a.code, "AA");
	cr_assert_geq(pstats(&f).txn_aborted, 1, "the first attempt was aborted");
	cr_assert_eq(pstats(&f).jobs_committed, 1);
	cr_assert_eq(stats(&f).accepted, 1);
	cr_assert_eq(stats(&f).failed, 0);
	fixture_stop(&f);
}

/*
 * The broker is real: a transactional producer commits one transaction and
 * aborts another; read_committed sees only the committed records,
 * read_uncommitted sees both.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "itest.h"

static void must(rd_kafka_error_t *e, const char *what)
{
	if (e) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s: %s", what, rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
		cr_assert_fail("%s", msg);
	}
}

static void produce_n(rd_kafka_t *rk, const char *topic, const char *tag, int n)
{
	for (int i = 0; i < n; i++) {
		char v[64];
		snprintf(v, sizeof v, "%s-%d", tag, i);
		rd_kafka_resp_err_t err = rd_kafka_producev(
			rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY("k", 1),
			RD_KAFKA_V_VALUE(v, strlen(v)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			RD_KAFKA_V_END);
		cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(err));
	}
}

static int count_prefix(char **vals, int n, const char *prefix)
{
	int c = 0;
	for (int i = 0; i < n; i++)
		c += strncmp(vals[i], prefix, strlen(prefix)) == 0;
	return c;
}

Test(kafka, commit_is_visible_abort_is_not, .timeout = 120)
{
	char topic[128], txid[128], err[512];
	char **vals;
	int n;

	itest_unique_name(topic, sizeof topic, "itest.txn");
	itest_unique_name(txid, sizeof txid, "itest-txid");
	cr_assert_eq(itest_create_topic(topic, 3, err, sizeof err), 0, "%s", err);

	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER,
				      itest_conf("transactional.id", txid, "linger.ms", "5", NULL),
				      err, sizeof err);
	cr_assert_not_null(rk, "%s", err);
	must(rd_kafka_init_transactions(rk, 30000), "init_transactions");

	must(rd_kafka_begin_transaction(rk), "begin 1");
	produce_n(rk, topic, "committed", 10);
	must(rd_kafka_commit_transaction(rk, 30000), "commit");

	must(rd_kafka_begin_transaction(rk), "begin 2");
	produce_n(rk, topic, "aborted", 7);
	cr_assert_eq(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
	must(rd_kafka_abort_transaction(rk, 30000), "abort");
	rd_kafka_destroy(rk);

	n = itest_consume_all(topic, "read_committed", 10, 5000, &vals);
	cr_expect_eq(n, 10, "read_committed saw %d records", n);
	cr_expect_eq(count_prefix(vals, n, "committed-"), 10);
	cr_expect_eq(count_prefix(vals, n, "aborted-"), 0);
	itest_free_values(vals, n);

	n = itest_consume_all(topic, "read_uncommitted", 17, 5000, &vals);
	cr_expect_eq(n, 17, "read_uncommitted saw %d records", n);
	cr_expect_eq(count_prefix(vals, n, "committed-"), 10);
	cr_expect_eq(count_prefix(vals, n, "aborted-"), 7);
	itest_free_values(vals, n);
}

Test(kafka, broker_reports_version_4, .timeout = 60)
{
	/* The services script records the version the broker logged at start. */
	const char *v = getenv("HB_KAFKA_VERSION");
	cr_assert_not_null(v, "HB_KAFKA_VERSION not exported by the services script");
	cr_expect(v[0] >= '4', "expected Apache Kafka 4.x, broker reported %s", v);
	(void)itest_bootstrap();
}

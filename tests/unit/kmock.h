/* kmock — librdkafka's mock cluster for unit tests: one broker, the topics a
 * test names, a base producer configuration pointing at it, and a count of
 * what a topic holds. The mock speaks the transactional protocol but does
 * not filter aborted records, so counts are read_uncommitted. */
#ifndef HB_TEST_KMOCK_H
#define HB_TEST_KMOCK_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* Kafka protocol API keys tests inject errors into. */
enum {
	KMOCK_API_PRODUCE = 0,
	KMOCK_API_END_TXN = 26,
};

struct kmock_topic {
	const char *name;
	int partitions;
};

struct kmock {
	rd_kafka_t *rk;              /* the handle the cluster lives in */
	rd_kafka_mock_cluster_t *mc;
	rd_kafka_conf_t *kc;         /* base configuration: bootstrap.servers, quiet logs */
};

/* Start the cluster and create n topics (Criterion-asserts on failure). */
void kmock_start(struct kmock *k, const struct kmock_topic *topics, int n);
void kmock_stop(struct kmock *k);

/* Records of topic's partitions 0..partitions-1 whose key starts with
 * key_prefix (NULL: every record). */
int kmock_count(const struct kmock *k, const char *topic, int partitions, const char *key_prefix);

#endif

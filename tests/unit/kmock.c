#include "kmock.h"

#include <criterion/criterion.h>
#include <string.h>

void kmock_start(struct kmock *k, const struct kmock_topic *topics, int n)
{
	char err[512];
	rd_kafka_conf_t *mc_conf = rd_kafka_conf_new();

	memset(k, 0, sizeof *k);
	rd_kafka_conf_set(mc_conf, "log_level", "0", NULL, 0);
	k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, mc_conf, err, sizeof err);
	cr_assert(k->rk, "%s", err);
	k->mc = rd_kafka_mock_cluster_new(k->rk, 1);
	cr_assert(k->mc);
	for (int i = 0; i < n; i++)
		cr_assert_eq(rd_kafka_mock_topic_create(k->mc, topics[i].name, topics[i].partitions, 1),
			     0, "%s", topics[i].name);

	k->kc = rd_kafka_conf_new();
	cr_assert_eq(rd_kafka_conf_set(k->kc, "bootstrap.servers",
				       rd_kafka_mock_cluster_bootstraps(k->mc), err, sizeof err),
		     RD_KAFKA_CONF_OK, "%s", err);
	rd_kafka_conf_set(k->kc, "log_level", "0", NULL, 0);
	rd_kafka_conf_set(k->kc, "retry.backoff.ms", "10", NULL, 0);
}

void kmock_stop(struct kmock *k)
{
	rd_kafka_conf_destroy(k->kc);
	rd_kafka_mock_cluster_destroy(k->mc); /* librdkafka wants it before its handle */
	rd_kafka_destroy(k->rk);
}

int kmock_count(const struct kmock *k, const char *topic, int partitions, const char *key_prefix)
{
	char err[512];
	rd_kafka_conf_t *cc = rd_kafka_conf_dup(k->kc);
	rd_kafka_t *c;
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
	int n = 0, idle = 0;

	rd_kafka_conf_set(cc, "group.id", "t", NULL, 0);
	rd_kafka_conf_set(cc, "enable.auto.commit", "false", NULL, 0);
	c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err);
	cr_assert(c, "%s", err);
	for (int p = 0; p < partitions; p++)
		rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
	cr_assert_eq(rd_kafka_assign(c, parts), 0);
	while (idle < 10) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
		if (!m) {
			idle++;
			continue;
		}
		if (!m->err && (!key_prefix || (m->key && m->key_len >= strlen(key_prefix) &&
						memcmp(m->key, key_prefix, strlen(key_prefix)) == 0)))
			n++;
		rd_kafka_message_destroy(m);
	}
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	return n;
}

/*
 * itest — shared helpers for integration tests against the real Kafka broker
 * and Schema Registry that tests/services/ scripts start.
 *
 * The services are found through the environment that tests/integration/run.sh
 * exports: HB_KAFKA_BOOTSTRAP and SCHEMA_REGISTRY_URL. A test that needs a
 * service which is not configured fails (it does not skip): a green run must
 * mean the real thing was exercised.
 */
#ifndef HB_ITEST_H
#define HB_ITEST_H

#include <stddef.h>
#include <librdkafka/rdkafka.h>

/* The bootstrap address / registry URL; abort the test if unset. */
const char *itest_bootstrap(void);
const char *itest_registry_url(void);

/* A topic (or subject) name unique to this process and call: prefix-pid-n-time. */
void itest_unique_name(char *buf, size_t cap, const char *prefix);

/* Create a topic with the admin API and wait for its metadata. Return 0 or -1. */
int itest_create_topic(const char *topic, int partitions, char *errstr, size_t errstr_size);

/* A producer/consumer conf with bootstrap.servers set, plus extra k=v pairs
 * (NULL-terminated list of key, value). */
rd_kafka_conf_t *itest_conf(const char *key, ...);

/* Read every record currently in `topic` (all partitions, from the beginning)
 * with the given isolation level ("read_committed" or "read_uncommitted").
 * Stops once `expect` records were read or after timeout_ms with no new
 * record. Values are returned as NUL-terminated strings in a heap array
 * (*values_out, caller frees with itest_free_values). Returns the count, or -1. */
int itest_consume_all(const char *topic, const char *isolation, int expect, int timeout_ms,
		      char ***values_out);
void itest_free_values(char **values, int n);

/* HTTP helpers for the registry (libcurl). Returns the HTTP status, or -1 on a
 * transport error; *body_out is a heap string (caller frees). */
long itest_http(const char *method, const char *url, const char *body, char **body_out);

#endif

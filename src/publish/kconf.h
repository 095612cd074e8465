/*
 * kconf — librdkafka configuration from the [kafka] section and the Event
 * Broker quick start's environment variables.
 *
 * Every key of [kafka] passes straight through to rd_kafka_conf_set(). The
 * quick start's variables apply where [kafka] does not set the property:
 *   KAFKA_BROKERS        → bootstrap.servers
 *   KAFKA_CLIENT_ID      → client.id
 *   KAFKA_USERNAME/PASSWORD → sasl.username/sasl.password, sasl.mechanism
 *                          (KAFKA_SASL_MECHANISM: PLAIN by default, or
 *                          SCRAM-SHA-256 / SCRAM-SHA-512), security.protocol
 *                          SASL_SSL when KAFKA_USE_SSL=true, else SASL_PLAINTEXT
 *   KAFKA_USE_SSL=true without credentials → security.protocol SSL
 * `bootstrap.servers = embedded` is reported through *embedded so the daemon
 * can start librdkafka's in-process mock cluster; the returned conf then has
 * no bootstrap.servers yet.
 */
#ifndef HB_KCONF_H
#define HB_KCONF_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "conf.h"

/* section may be NULL (environment only). Returns NULL with
 * "file:line: property: reason" in errstr. */
rd_kafka_conf_t *kconf_build(const struct conf *c, struct conf_section *section, int *embedded,
			     char *errstr, size_t errstr_size);

/* The one way a librdkafka client is made here: rd_kafka_new, with conf
 * *taken* on every path — librdkafka takes it only on success, so a bare
 * rd_kafka_new leaks it on failure. APIs that receive a configuration take
 * it const and duplicate it (pub_new, ledger_read_state); what they build
 * from the duplicate goes through this. NULL with librdkafka's reason in
 * errstr. */
rd_kafka_t *kconf_client_take(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
			      size_t errstr_size);

/* The value of a property as set in conf, or "" if unset (heap string). */
char *kconf_get(const rd_kafka_conf_t *kc, const char *name);

#endif

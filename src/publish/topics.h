/*
 * topics — the Kafka topics hl7bridge writes to, from the [topics] section
 * (and [topic NAME] overrides), created with the admin API and checked.
 *
 *   [topics]
 *   prefix          = healthcare.           event topic = prefix + event type
 *   events          = prescription.created, patient.updated, ...
 *   partitions      = 12                    the quick start's development default
 *   replication.factor = 1                  3 in production
 *   retention       = 7d
 *   cleanup.policy  = delete
 *   deadletter      = healthcare.deadletter
 *   raw             = off                   on: also healthcare.raw.hl7v2 / .fhir
 *   state           = hl7bridge.state       the ledger (compact,delete)
 *   [topic healthcare.patient.updated]      per-topic overrides
 *   partitions = 24
 */
#ifndef HB_TOPICS_H
#define HB_TOPICS_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "conf.h"

#define TOPICS_NAME_MAX 250

enum topic_role { TOPIC_EVENT, TOPIC_DEADLETTER, TOPIC_RAW, TOPIC_STATE };

struct topic_spec {
	char name[TOPICS_NAME_MAX];
	enum topic_role role;
	int partitions;
	int replication;
	long long retention_ms; /* -1: keep forever */
	char cleanup[32];       /* "delete", "compact", "compact,delete" */
};

struct topic_plan {
	struct topic_spec *t;
	int n;
	char prefix[64];
	char deadletter[TOPICS_NAME_MAX];
	char raw_hl7v2[TOPICS_NAME_MAX];
	char raw_fhir[TOPICS_NAME_MAX];
	char state[TOPICS_NAME_MAX];
	int raw;
};

/* Build the plan from the configuration; -1 with "file:line: ..." on error. */
int topics_plan(struct conf *c, struct topic_plan *out, char *errstr, size_t errstr_size);
void topics_plan_clear(struct topic_plan *p);

/* Called for each topic with what happened: "created", "exists", or a
 * problem ("has 3 partitions, the configuration says 12", ...). */
typedef void (*topics_report_cb)(void *opaque, const struct topic_spec *t, int problem,
				 const char *what);

/* Create the missing topics (when create is non-zero) and compare the
 * existing ones with the plan. Returns the number of problems (missing
 * topics when !create, differing settings, failed creations), or -1 when
 * the cluster could not be asked (errstr filled). `kc` is not consumed. */
int topics_apply(const rd_kafka_conf_t *kc, const struct topic_plan *p, int create, int timeout_ms,
		 topics_report_cb report, void *opaque, char *errstr, size_t errstr_size);

#endif

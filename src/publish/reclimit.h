/*
 * reclimit — the largest record each topic takes, learnt once at start so
 * that a record which can never be produced is recognised before it is
 * produced (instead of aborting its transaction again and again).
 *
 * Two limits apply to a record: the producer's message.max.bytes (librdkafka
 * refuses larger records locally, MSG_SIZE_TOO_LARGE) and the topic's
 * max.message.bytes (the broker refuses larger record batches). The topics'
 * values are read with the admin API (DescribeConfigs). When a topic takes
 * less than the producer's message.max.bytes, the producer's limit is
 * lowered to it, because librdkafka fills one partition's batch up to
 * message.max.bytes and the broker would refuse a full batch of small
 * records. Record sizes are estimated with a margin for Kafka's framing
 * (RECLIMIT_OVERHEAD per record, RECLIMIT_HDR_OVERHEAD per header), so an
 * estimate that fits is always accepted.
 */
#ifndef HB_RECLIMIT_H
#define HB_RECLIMIT_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

/* librdkafka's default message.max.bytes. */
#define RECLIMIT_DEFAULT_PRODUCER 1000000
/* Framing counted for every record: the produce request and record batch
 * headers (~120 bytes, plus topic and transactional id) and the record's
 * own varints. Generous on purpose. */
#define RECLIMIT_OVERHEAD 768
#define RECLIMIT_HDR_OVERHEAD 12

struct reclimit_topic {
	char *name;
	size_t max; /* the topic's max.message.bytes; 0 = not known */
};

struct reclimit {
	size_t producer; /* message.max.bytes the producers use (after lowering) */
	size_t configured; /* message.max.bytes as configured */
	struct reclimit_topic *t;
	int n;
	int queried; /* 1 when the cluster answered DescribeConfigs */
};

typedef void (*reclimit_note_cb)(void *opaque, const char *text);

/* Read message.max.bytes from kc and the max.message.bytes of `topics` from
 * the cluster (timeout_ms); lower kc's message.max.bytes to the smallest
 * topic limit when that is smaller. Notes (what was lowered, a cluster that
 * did not answer) go to note (may be NULL): nothing here logs. Returns 0, or
 * -1 with errstr (out of memory, kc cannot be changed). A cluster that does
 * not answer is not an error: the producer's limit alone then applies. */
int reclimit_init(struct reclimit *rl, rd_kafka_conf_t *kc, const char *const *topics, int ntopics,
		  int timeout_ms, reclimit_note_cb note, void *opaque, char *errstr,
		  size_t errstr_size);
void reclimit_clear(struct reclimit *rl);

/* The largest estimated record size (reclimit_record_size) `topic` takes. */
size_t reclimit_room(const struct reclimit *rl, const char *topic);

/* The estimated size of a record: key, value, every header's name and value
 * plus framing. hdrs: nhdrs "name\0value\0" pairs (pub's arena layout). */
size_t reclimit_record_size(size_t key_len, size_t value_len, const char *hdrs, int nhdrs);

#endif

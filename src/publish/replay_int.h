/*
 * replay_int — what replay.c (set-up, the consumer, the run) and
 * replay_rec.c (one record: skip, re-map, job, offsets) share.
 */
#ifndef HB_REPLAY_INT_H
#define HB_REPLAY_INT_H

#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "daemon_conf.h"
#include "map/map.h"
#include "publish/evenc.h"
#include "publish/ledger.h"
#include "publish/pub.h"
#include "publish/registry.h"
#include "publish/replay.h"
#include "publish/replay_diff.h"

#define RP_MAX_PARTS 1024
#define RP_TIMEOUT_MS 30000

struct rp_part {
	int32_t id;
	int64_t start, end; /* [start, end) */
	int64_t pos;        /* next offset to read */
	int done;
};

struct rp_stats {
	uint64_t records, inputs, published, events, deadlettered, unreadable, filtered;
	uint64_t skip_replayed, skip_published, skip_unknown, skip_dup;
	uint64_t still_rejected; /* dead letters rejected again for the same reason */
};

struct rp {
	const struct replay_opts *o;
	volatile sig_atomic_t *stop;
	FILE *out;
	struct conf *conf;
	struct daemon_settings s;
	rd_kafka_conf_t *kc;
	int embedded;
	const char *topic; /* source */
	int from_dlq, from_raw;
	char group[256];
	struct map_set *maps, *against;
	struct registry *reg;
	struct evenc enc;
	int enc_ready;
	uint8_t set_digest[LEDGER_KEY_LEN];
	struct ledger *ledger;
	struct pub *pub;
	rd_kafka_t *cons;
	rd_kafka_consumer_group_metadata_t *cgmd;
	struct rp_part parts[RP_MAX_PARTS];
	int nparts;
	int64_t total;
	struct rp_stats st;
	int failed;
	int pause_after; /* test hook: stop dead in before_commit after N commits */
	int slow_ms;     /* test hook: sleep this long in every before_commit */
	int commits;
	struct rdiff *diff;
	struct rdiff_index *index;
};

/* A record's job: which offset it advances. */
struct rp_job {
	struct rp *r;
	int32_t partition;
	int64_t offset;
	int has_key;
	uint8_t rkey[LEDGER_KEY_LEN];
	uint32_t events;
	int published;
};

/* One record of the source topic: re-map it and submit its job (or, in a
 * dry run, compare). Returns 0, 1 when *stop cut it short (it is read
 * again by the next run), or -1 (the run fails). */
int rp_record(struct rp *r, const rd_kafka_message_t *m);
/* pub's before_commit hook: the group's offsets into the transaction. */
rd_kafka_error_t *rp_before_commit_cb(rd_kafka_t *rk, const struct pub_job *batch, void *opaque);
/* A header's value as a string into buf, or NULL. */
const char *rp_header(const rd_kafka_message_t *m, const char *name, char *buf, size_t cap);

#endif

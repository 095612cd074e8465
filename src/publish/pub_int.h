/* pub internals shared by pub.c (the API: submit, drain, start, stop),
 * pub_job.c (building jobs) and pub_lane.c (a lane's thread: the
 * transaction of one batch, its retries and its completions). */
#ifndef HB_PUB_INT_H
#define HB_PUB_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "obs/hist.h"
#include "owner.h"
#include "publish/kstats.h"
#include "publish/pub.h"
#include "publish/reclimit.h"

/* librdkafka statistics every this often, unless [kafka] sets
 * statistics.interval.ms itself; an idle lane polls for them this often. */
#define PUB_STATS_INTERVAL_MS 1000

/* A record lives in its job's arena: offsets, so the arena can grow. Its
 * headers are "name\0value\0" pairs there; they become librdkafka headers
 * only when produced (and again if a transaction is retried). */
struct pub_rec {
	size_t topic, key, value, hdrs; /* offsets into the arena */
	size_t key_len, value_len;
	int nhdrs;
	unsigned has_key : 1, has_value : 1; /* else NULL (no key; a tombstone) */
};

struct pub_job {
	struct pub_job *next;
	pub_done_cb cb;
	void *opaque;
	struct pub_rec *recs;
	int n, cap;
	char *arena; /* topics, keys, values and headers of recs */
	size_t used, room;
	size_t bytes;
	int has_ledger;
	struct ledger_entry ledger;
	/* Keys of the messages a file's slice carries (pub_job_add_msg_key):
	 * written with the job's transaction, like a message's own key. */
	struct ledger_entry *msgs;
	int nmsgs, capmsgs;
	enum pub_status status;
	int64_t submit_us;
	char reason[160];
	int internal; /* not a message (a heartbeat): out of the job latency and records counts */
	/* A record of this job cannot be produced (why says which): it is left
	 * out of its batch and answered PUB_REJECTED. dr_too_large: the broker
	 * refused one of its records (delivery report), to be confirmed alone. */
	unsigned rejected : 1, dr_too_large : 1;
	/* pub_job_set_unordered: one sender's message, routed by its key's
	 * partition; its completion makes the lanes expect the sender's next. */
	unsigned unordered : 1;
	char why[160];
};

struct lane {
	struct pub *pub;
	int idx;
	pthread_t thread;
	int started;
	rd_kafka_t *rk;
	char txid[256];
	uint64_t ledger_seq; /* makes every batch ledger key unique */
	rd_kafka_topic_t **topics; /* handles kept so their metadata stays cached */
	int ntopics;
	rd_kafka_topic_t *last_topic; /* the one used last (records come in runs) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pub_job *head, *tail;
	struct pub_job *cur; /* the batch being committed (delivery reports check it) */
	int qlen;
	size_t qbytes;
	int stop;
	int lingering; /* under mu: waiting for expected jobs (wake it on each) */
	pthread_mutex_t kmu; /* guards ks and health: written by this lane, read by any thread */
	struct kstats ks;
	struct pub_lane_health health;
};

struct pub {
	struct pub_conf conf;
	char *instance, *state_topic;
	struct lane *lanes;
	pthread_mutex_t done_mu;
	pthread_cond_t done_cv;
	struct pub_job *done_head, *done_tail;
	atomic_int inflight;
	atomic_int fatal;
	atomic_int abandoned; /* pub_free gave up on a blocked lane: no more notify */
	char fatal_reason[256];
	atomic_uint_fast64_t txn_committed, txn_aborted, jobs_committed, jobs_failed, jobs_rejected,
		records;
	rd_kafka_conf_t *kc;    /* the lanes' base configuration (limits applied) */
	struct reclimit rl;     /* record size limits */
	size_t keys_per_record; /* message keys per ledger record that fit the state topic */
	struct hist commit_hist; /* begin → commit returned, per transaction */
	struct hist job_hist;    /* submit → completion posted, per job */
	struct owner drainer;    /* the one thread that calls pub_drain (the loop) */
	/* Routing unordered jobs (set by lane 0 at start, then read-only): the
	 * configured topics' handles and partitions (0: unknown), and the
	 * producer's partitioner (NULL: route by origin). */
	rd_kafka_topic_t **route_rkt;
	int32_t *route_parts;
	int nroute;
	int32_t (*partitioner)(const rd_kafka_topic_t *rkt, const void *key, size_t keylen,
			       int32_t partition_cnt, void *rkt_opaque, void *msg_opaque);
	/* Unordered jobs answered whose senders have not sent again yet, and
	 * unordered jobs submitted so far: a lane with a batch lingers (up to
	 * linger_ms) until as many have arrived as were expected when it began
	 * to linger. */
	atomic_int expect;
	atomic_uint arrived;
};

/* pub.c: queue a finished batch's completions for pub_drain (any thread). */
void pub_post_completions(struct pub *p, struct pub_job *batch, enum pub_status st,
			  const char *reason);
/* pub_lane.c: create lane idx's producer, init its transactions and start
 * its thread; a deadline ms from now; the first record of j from `from` on
 * that its topic's limit does not take (-1: none; why says which). */
int pub_lane_init(struct pub *p, struct lane *l, int idx, char *errstr, size_t errstr_size);
void pub_deadline_in(struct timespec *ts, int ms);
int pub_job_oversized_from(const struct pub *p, const struct pub_job *j, int from, char *why,
			   size_t whysz);
int pub_job_oversized(const struct pub *p, const struct pub_job *j, char *why, size_t whysz);

#endif

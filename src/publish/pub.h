/*
 * pub — the exactly-once publisher: K transactional lanes with group commit.
 *
 * A *job* is the unit of completion: everything one input message (or one
 * slice of a batch file) produces — its event records, dead letters, raw
 * copy — plus its ledger record. A job is committed atomically with the
 * other jobs of its batch; its completion callback then runs on the thread
 * that calls pub_drain() (the event loop), with the outcome.
 *
 * Threads: pub_drain() is called from one thread (the loop); pub_submit()
 * from any. Each lane is a thread owning one transactional producer
 * (transactional.id = <instance>-<lane>); it collects jobs until
 * batch_max_msgs / batch_max_bytes or linger_ms, then
 * begin → produce → commit, and posts completions. While a lane commits, new
 * jobs queue up for its next batch (group commit). Jobs of one origin are
 * pinned to one lane, so their order is kept; a job marked unordered (one
 * message of one sender: pub_job_set_unordered) goes instead to the lane of
 * its first record's partition (partition modulo lanes), so one patient's
 * events stay in one lane, in order, and a transaction writes fewer
 * partitions (a transaction costs the broker a marker per partition).
 *
 * Lingering: after a batch of unordered jobs is answered, its senders are
 * expected to send again at once; a lane with a batch waits (up to
 * linger_ms) until they have, so lockstep senders share one transaction. A
 * lone sender's message is committed at once.
 */
#ifndef HB_PUB_H
#define HB_PUB_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "publish/ledger.h"

struct pub;
struct pub_job;

enum pub_status {
	PUB_COMMITTED = 0, /* the job's records are committed */
	PUB_FAILED = 1,    /* not committed and will not be: fatal producer error or shutdown */
	/* Not committed and never will be: one of its records is larger than its
	 * topic or the producer takes (found before producing, or refused by
	 * librdkafka or the broker with MSG_SIZE_TOO_LARGE). The rest of its
	 * batch is committed without it; the reason names the topic, the
	 * record's size and the limit. */
	PUB_REJECTED = 2,
};

typedef void (*pub_done_cb)(struct pub_job *job, enum pub_status status, const char *reason,
			    void *opaque);

struct pub_conf {
	const char *instance;      /* transactional.id prefix */
	const char *state_topic;   /* ledger topic */
	int lanes;                 /* publisher threads, >= 1 */
	int batch_max_msgs;        /* jobs per transaction */
	size_t batch_max_bytes;    /* record bytes per transaction */
	int linger_ms;             /* wait this long for a batch to fill */
	int max_inflight;          /* jobs submitted and not yet drained; pub_submit refuses beyond */
	int txn_timeout_ms;        /* init/commit/abort call timeout */
	/* Base producer configuration (bootstrap.servers, security, pass-through
	 * properties). Not consumed: each lane uses a duplicate. */
	const rd_kafka_conf_t *kafka;
	/* Called from a lane thread after completions were queued: wake the loop
	 * (ev_async_send). May be NULL (then poll with pub_wait). */
	void (*notify)(void *opaque);
	void *notify_opaque;
	/* Topics the lanes will write to: their metadata is fetched at start so
	 * the first message to each does not wait for a metadata round trip. */
	const char *const *topics;
	int ntopics;
	/* Called on the lane thread after a batch's records were produced and
	 * before its commit, again for every retry of the batch: consume-
	 * transform-produce (hl7bridge replay) adds its consumer's offsets to the
	 * transaction here (rd_kafka_send_offsets_to_transaction). Walk the batch
	 * with pub_job_next. Returns NULL, or an error handled as a failed
	 * commit (abort and retry, or fatal). May be NULL. */
	rd_kafka_error_t *(*before_commit)(rd_kafka_t *rk, const struct pub_job *batch,
					   void *opaque);
	void *before_commit_opaque;
	/* Start-up notes about record size limits (a topic's max.message.bytes
	 * below message.max.bytes, a cluster that did not answer): may be NULL. */
	void (*note)(void *opaque, const char *text);
	void *note_opaque;
	/* How long to wait for the topics' max.message.bytes at start; 0: do not
	 * ask (the embedded broker cannot answer), message.max.bytes alone. */
	int limits_timeout_ms;
	/* pub_free waits this long for each lane to finish its batch, then
	 * abandons it (a librdkafka call may block for txn_timeout_ms): the
	 * process is about to exit. 0: wait as long as it takes. */
	int stop_timeout_ms;
	/* Test-only crash points: abort() the process at a point. */
	int crash_after_produce; /* after producing a batch, before commit */
	int crash_after_commit;  /* after commit, before posting completions */
};

void pub_conf_defaults(struct pub_conf *c);

/* Create the lanes and initialise their transactions (init_transactions
 * fences zombies of the same instance). Blocking: call before the loop
 * starts accepting input. NULL with errstr filled on failure. */
struct pub *pub_new(const struct pub_conf *conf, char *errstr, size_t errstr_size);

/* Finish: stop accepting, commit what is queued, join the lanes, drain
 * nothing (call pub_drain after). Then free. With stop_timeout_ms, a lane
 * still blocked in Kafka after it is abandoned: the publisher's memory is
 * then left allocated (the process is exiting) and notify is not called
 * any more. */
void pub_free(struct pub *p);

/* Jobs. A job owns copies of its records; build it, then submit it. */
struct pub_job *pub_job_new(pub_done_cb cb, void *opaque);
void pub_job_free(struct pub_job *job);
/* A record header; a NULL value leaves the header out. */
struct pub_hdr {
	const char *name;
	const char *value;
};

/* Add a record (the job copies topic, key, value and the nhdrs headers into
 * one buffer of its own). key NULL: no key; value NULL: a tombstone.
 * Returns 0 or -1 (allocation). */
int pub_job_add(struct pub_job *job, const char *topic, const void *key, size_t key_len,
		const void *value, size_t value_len, const struct pub_hdr *hdrs, int nhdrs);
/* Attach the ledger entry (copied) written to the state topic with the job. */
void pub_job_set_ledger(struct pub_job *job, const struct ledger_entry *e);
const struct ledger_entry *pub_job_ledger(const struct pub_job *job);
/* A file's slice: the ledger key of one of its messages, with the answer it
 * got ("AA", "AE", "AR"), written to the state topic in the job's
 * transaction as a message's own key would be, so a resend over MLLP or in
 * another file is recognised. Returns 0 or -1 (allocation). */
int pub_job_add_msg_key(struct pub_job *job, const uint8_t key[LEDGER_KEY_LEN], const char *ack);
/* The keys added so far (for the completion: the ledger learns them). */
const struct ledger_entry *pub_job_msg_keys(const struct pub_job *job, int *n);
/* The next job of a batch (before_commit), or NULL; a job's callback opaque. */
const struct pub_job *pub_job_next(const struct pub_job *job);
void *pub_job_opaque(const struct pub_job *job);
/* Change the completion callback (before submitting). */
void pub_job_set_cb(struct pub_job *job, pub_done_cb cb, void *opaque);
/* Not a message (e.g. a heartbeat): left out of pub_job_hist and of
 * pub_stats.records_produced. */
void pub_job_set_internal(struct pub_job *job);
/* One sender's message that need not follow its origin's earlier jobs in
 * commit order (each is answered, in order, by its sender's connection):
 * routed by its first keyed record's partition instead of by origin. Not
 * for a file's slices (they must commit in order). */
void pub_job_set_unordered(struct pub_job *job);

/* Record sizes. The limits are the producer's message.max.bytes and each
 * configured topic's max.message.bytes, read at start (see reclimit.h).
 * pub_record_size: the size a record counts against them (key, value,
 * headers and a margin for framing); pub_record_room: the largest size
 * `topic` takes. */
size_t pub_record_size(size_t key_len, size_t value_len, const struct pub_hdr *hdrs, int nhdrs);
size_t pub_record_room(const struct pub *p, const char *topic);
/* 0 when every record of the job fits; -1 with "a record of N bytes for
 * topic T ..." in errstr when one does not (such a job would be answered
 * PUB_REJECTED: callers check first to answer without a round trip). */
int pub_job_check(const struct pub *p, const struct pub_job *job, char *errstr,
		  size_t errstr_size);
/* For jobs that carry many messages (a file's slice): the number of records,
 * the check of records from..end only, and dropping records from..end
 * (those one message added) again. */
int pub_job_count(const struct pub_job *job);
int pub_job_check_from(const struct pub *p, const struct pub_job *job, int from, char *errstr,
		       size_t errstr_size);
void pub_job_truncate(struct pub_job *job, int n);

/* Submit a job for the lane of `origin` (an unordered job: of its key's
 * partition). On success the publisher owns the job
 * until its callback has run (the callback frees it or keeps it).
 * Returns 0, or -1 when max_inflight jobs are pending (back-pressure: stop
 * reading and retry after a drain) or the publisher failed fatally. */
int pub_submit(struct pub *p, uint64_t origin, struct pub_job *job);

/* Run the callbacks of completed jobs on the calling thread. Returns how many. */
int pub_drain(struct pub *p);

/* Block until a completion is pending or timeout_ms passes (for callers
 * without an event loop: tools and tests). */
void pub_wait(struct pub *p, int timeout_ms);

int pub_inflight(const struct pub *p);
int pub_max_inflight(const struct pub *p);
/* Non-zero once a lane hit a fatal error (e.g. fenced by a newer instance):
 * no job will be committed any more; the daemon must exit non-zero. */
int pub_fatal(const struct pub *p, char *errstr, size_t errstr_size);

/* A lane's current batch: pending since when (calls that fail and are
 * retried, or block), how many attempts, librdkafka's last error. */
struct pub_lane_health {
	int64_t failing_since_ms; /* monotonic ms the pending batch began; 0: none pending */
	int attempts;
	char last_error[192];
};
int pub_lane_health(const struct pub *p, int lane, struct pub_lane_health *out);
/* Lanes whose batch has been pending (not committed) for at least min_ms; the first one's description ("lane 0:
 * failing for 12 s, 9 attempts, last error: ...") into errstr. */
int pub_lanes_failing(const struct pub *p, int64_t min_ms, char *errstr, size_t errstr_size);
/* A lane failing this long makes the bridge not ready (/readyz 503). */
#define PUB_FAILING_MS 10000

struct pub_stats {
	uint64_t txn_committed;
	uint64_t txn_aborted;
	uint64_t jobs_committed;
	uint64_t jobs_failed;
	uint64_t jobs_rejected; /* PUB_REJECTED: a record too large */
	uint64_t records_produced;
};
void pub_get_stats(const struct pub *p, struct pub_stats *out);

struct hist;
/* Transaction latency (begin → commit returned) and job latency (submit →
 * completion posted), in microseconds. */
const struct hist *pub_commit_hist(const struct pub *p);
const struct hist *pub_job_hist(const struct pub *p);


/* librdkafka's own view of lane `lane` (0..pub_lanes()-1), from its latest
 * statistics: any thread. Returns 0, or -1 before the first statistics. */
struct kstats;
int pub_lanes(const struct pub *p);
int pub_kafka_stats(const struct pub *p, int lane, struct kstats *out);

#endif

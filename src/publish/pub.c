#include "publish/pub.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "obs/hist.h"
#include "owner.h"
#include "publish/kstats.h"
#include "publish/reclimit.h"
#include "util.h"
#include "publish/kconf.h"

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
	int last_n; /* jobs in the batch committed last: what lingering waits for */
	int stop;
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
};

void pub_conf_defaults(struct pub_conf *c)
{
	memset(c, 0, sizeof *c);
	c->instance = "hl7bridge";
	c->state_topic = "hl7bridge.state";
	c->lanes = 2;
	c->batch_max_msgs = 500;
	c->batch_max_bytes = 8u << 20;
	c->linger_ms = 5;
	c->max_inflight = 10000;
	c->txn_timeout_ms = 30000;
	c->limits_timeout_ms = 10000;
}

/* ---- jobs ---------------------------------------------------------------- */

struct pub_job *pub_job_new(pub_done_cb cb, void *opaque)
{
	struct pub_job *j = calloc(1, sizeof *j);
	if (j) {
		j->cb = cb;
		j->opaque = opaque;
	}
	return j;
}

void pub_job_free(struct pub_job *j)
{
	if (!j)
		return;
	free(j->recs);
	free(j->arena);
	free(j->msgs);
	free(j);
}

/* Append n bytes (and a NUL when z) to the arena; returns the offset or
 * SIZE_MAX on allocation failure. */
static size_t arena_put(struct pub_job *j, const void *p, size_t n, int z)
{
	size_t need = j->used + n + (z ? 1 : 0);
	if (util_reserve(&j->arena, &j->room, need, 1024) != 0)
		return SIZE_MAX;
	size_t off = j->used;
	if (n)
		memcpy(j->arena + off, p, n);
	if (z)
		j->arena[off + n] = '\0';
	j->used = need;
	return off;
}

int pub_job_add(struct pub_job *j, const char *topic, const void *key, size_t key_len,
		const void *value, size_t value_len, const struct pub_hdr *hdrs, int nhdrs)
{
	struct pub_rec r = { .has_key = key != NULL, .has_value = value != NULL };
	size_t used = j->used;
	int bad = 0;
	if (j->n == j->cap) {
		int cap = j->cap ? j->cap * 2 : 4;
		struct pub_rec *recs = realloc(j->recs, (size_t)cap * sizeof *recs);
		if (!recs)
			return -1;
		j->recs = recs;
		j->cap = cap;
	}
	r.key_len = key ? key_len : 0;
	r.value_len = value ? value_len : 0;
	bad |= (r.topic = arena_put(j, topic, strlen(topic), 1)) == SIZE_MAX;
	bad |= (r.key = arena_put(j, key, r.key_len, 0)) == SIZE_MAX;
	bad |= (r.value = arena_put(j, value, r.value_len, 0)) == SIZE_MAX;
	r.hdrs = j->used;
	for (int i = 0; i < nhdrs && !bad; i++) {
		if (!hdrs[i].value)
			continue;
		bad |= arena_put(j, hdrs[i].name, strlen(hdrs[i].name), 1) == SIZE_MAX;
		bad |= arena_put(j, hdrs[i].value, strlen(hdrs[i].value), 1) == SIZE_MAX;
		r.nhdrs++;
	}
	if (bad) {
		j->used = used;
		return -1;
	}
	j->recs[j->n++] = r;
	j->bytes += r.key_len + r.value_len + strlen(topic);
	return 0;
}

void pub_job_set_ledger(struct pub_job *j, const struct ledger_entry *e)
{
	j->ledger = *e;
	j->has_ledger = 1;
}

const struct ledger_entry *pub_job_ledger(const struct pub_job *j)
{
	return j->has_ledger ? &j->ledger : NULL;
}

int pub_job_add_msg_key(struct pub_job *j, const uint8_t key[LEDGER_KEY_LEN], const char *ack)
{
	if (j->nmsgs == j->capmsgs) {
		int cap = j->capmsgs ? j->capmsgs * 2 : 64;
		struct ledger_entry *m = realloc(j->msgs, (size_t)cap * sizeof *m);
		if (!m)
			return -1;
		j->msgs = m;
		j->capmsgs = cap;
	}
	struct ledger_entry *e = &j->msgs[j->nmsgs++];
	memset(e, 0, sizeof *e);
	memcpy(e->key, key, LEDGER_KEY_LEN);
	e->kind = LEDGER_MSG;
	snprintf(e->ack, sizeof e->ack, "%s", ack);
	return 0;
}

const struct ledger_entry *pub_job_msg_keys(const struct pub_job *j, int *n)
{
	*n = j->nmsgs;
	return j->msgs;
}

const struct pub_job *pub_job_next(const struct pub_job *j)
{
	return j->next;
}

void *pub_job_opaque(const struct pub_job *j)
{
	return j->opaque;
}

void pub_job_set_cb(struct pub_job *j, pub_done_cb cb, void *opaque)
{
	j->cb = cb;
	j->opaque = opaque;
}

void pub_job_set_internal(struct pub_job *j)
{
	j->internal = 1;
}

/* ---- completions ---------------------------------------------------------- */

static void post_completions(struct pub *p, struct pub_job *batch, enum pub_status st,
			     const char *reason)
{
	struct pub_job *last = NULL;
	int n = 0;
	int64_t now = util_mono_us();
	for (struct pub_job *j = batch; j; j = j->next) {
		if (st == PUB_COMMITTED && !j->internal)
			hist_record(&p->job_hist, (uint64_t)(now - j->submit_us));
		j->status = st;
		snprintf(j->reason, sizeof j->reason, "%s",
			 st == PUB_REJECTED ? j->why : reason ? reason : "");
		last = j;
		n++;
	}
	if (!last)
		return;
	if (st == PUB_COMMITTED)
		atomic_fetch_add(&p->jobs_committed, (uint64_t)n);
	else if (st == PUB_REJECTED)
		atomic_fetch_add(&p->jobs_rejected, (uint64_t)n);
	else
		atomic_fetch_add(&p->jobs_failed, (uint64_t)n);
	pthread_mutex_lock(&p->done_mu);
	if (p->done_tail)
		p->done_tail->next = batch;
	else
		p->done_head = batch;
	p->done_tail = last;
	pthread_cond_broadcast(&p->done_cv);
	pthread_mutex_unlock(&p->done_mu);
	if (p->conf.notify && !atomic_load(&p->abandoned))
		p->conf.notify(p->conf.notify_opaque);
}

int pub_drain(struct pub *p)
{
	struct pub_job *list, *next;
	int n = 0;
	assert(owner_here(&p->drainer));
	pthread_mutex_lock(&p->done_mu);
	list = p->done_head;
	p->done_head = p->done_tail = NULL;
	pthread_mutex_unlock(&p->done_mu);
	for (struct pub_job *j = list; j; j = next) {
		next = j->next;
		j->next = NULL;
		int was = atomic_fetch_sub(&p->inflight, 1);
		assert(was > 0); /* every completion was submitted once */
		(void)was;
		n++;
		if (j->cb)
			j->cb(j, j->status, j->reason, j->opaque);
		else
			pub_job_free(j);
	}
	return n;
}

void pub_wait(struct pub *p, int timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->done_mu);
	while (!p->done_head) {
		if (pthread_cond_timedwait(&p->done_cv, &p->done_mu, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&p->done_mu);
}

/* ---- the transaction of one batch ----------------------------------------- */

static void set_fatal(struct pub *p, const char *what, const char *detail)
{
	int expected = 0;
	if (atomic_compare_exchange_strong(&p->fatal, &expected, 1))
		snprintf(p->fatal_reason, sizeof p->fatal_reason, "%s: %s", what, detail);
}

/* A failed attempt of the lane's current batch: for pub_lane_health. */
static void health_fail(struct lane *l, const char *what, const char *err)
{
	pthread_mutex_lock(&l->kmu);
	snprintf(l->health.last_error, sizeof l->health.last_error, "%s: %s", what, err);
	pthread_mutex_unlock(&l->kmu);
}

/* run_batch began (1), retries (0), or ended (-1): a batch pending for long
 * is a failing lane, whether its calls fail or block. */
static void health_attempt(struct lane *l, int what)
{
	pthread_mutex_lock(&l->kmu);
	if (what == 1) {
		l->health.failing_since_ms = util_mono_ms();
		l->health.attempts = 0;
		snprintf(l->health.last_error, sizeof l->health.last_error, "none yet (commit pending)");
	} else if (what == 0) {
		l->health.attempts++;
	} else {
		l->health.failing_since_ms = 0;
		l->health.attempts = 0;
	}
	pthread_mutex_unlock(&l->kmu);
}

/* What a transactional API error leaves to do. */
enum txn_verdict {
	TXN_RETRY,   /* retry the same call */
	TXN_ABORT,   /* abort the transaction and replay the batch */
	TXN_FATAL,   /* the producer is fenced or broken: give up */
};

/* Classify a transactional API error. Destroys the error. */
static enum txn_verdict classify(struct lane *l, rd_kafka_error_t *e, const char *what)
{
	struct pub *p = l->pub;
	enum txn_verdict v;
	health_fail(l, what, rd_kafka_error_string(e));
	if (rd_kafka_error_is_fatal(e)) {
		set_fatal(p, what, rd_kafka_error_string(e));
		v = TXN_FATAL;
	} else if (rd_kafka_error_txn_requires_abort(e)) {
		v = TXN_ABORT;
	} else if (rd_kafka_error_is_retriable(e)) {
		v = TXN_RETRY;
	} else {
		v = TXN_ABORT;
	}
	rd_kafka_error_destroy(e);
	return v;
}

/* The lane's handle of topic `name`: the configured topics got theirs at
 * start; another one (a mapping's own topic) gets one the first time and
 * keeps it. Producing by handle spares librdkafka a locked lookup by name
 * per record. NULL on failure. */
static rd_kafka_topic_t *lane_topic(struct lane *l, const char *name)
{
	if (l->last_topic && strcmp(rd_kafka_topic_name(l->last_topic), name) == 0)
		return l->last_topic;
	for (int t = 0; t < l->ntopics; t++)
		if (strcmp(rd_kafka_topic_name(l->topics[t]), name) == 0)
			return l->last_topic = l->topics[t];
	rd_kafka_topic_t **more = realloc(l->topics, (size_t)(l->ntopics + 1) * sizeof *more);
	if (!more)
		return NULL;
	l->topics = more;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(l->rk, name, NULL);
	if (!rkt)
		return NULL;
	l->topics[l->ntopics++] = rkt;
	return l->last_topic = rkt;
}

/* hdrs: nhdrs "name\0value\0" pairs. librdkafka takes the headers it is
 * given, so they are built for each attempt. job: the record's job, handed
 * back in its delivery report (NULL for ledger records). Returns 0 or
 * librdkafka's error (MSG_SIZE_TOO_LARGE: larger than message.max.bytes). */
static rd_kafka_resp_err_t produce_one(struct lane *l, const char *topic, const void *key,
				       size_t key_len, const void *value, size_t value_len,
				       const char *hdrs, int nhdrs, struct pub_job *job)
{
	rd_kafka_topic_t *rkt = lane_topic(l, topic);
	if (!rkt)
		return RD_KAFKA_RESP_ERR__FAIL;
	for (;;) {
		rd_kafka_headers_t *h = nhdrs ? rd_kafka_headers_new((size_t)nhdrs) : NULL;
		const char *p = hdrs;
		for (int i = 0; i < nhdrs; i++) {
			size_t nl = strlen(p), vl = strlen(p + nl + 1);
			rd_kafka_header_add(h, p, (ssize_t)nl, p + nl + 1, (ssize_t)vl);
			p += nl + vl + 2;
		}
		rd_kafka_resp_err_t err = rd_kafka_producev(
			l->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(key, key_len),
			RD_KAFKA_V_VALUE((void *)value, value_len),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
			RD_KAFKA_V_OPAQUE(job), RD_KAFKA_V_END);
		if (!err)
			return 0;
		if (h)
			rd_kafka_headers_destroy(h);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			return err;
		rd_kafka_poll(l->rk, 50); /* let the queue drain */
	}
}

/* Write the pending message keys as one ledger record. */
static int flush_msg_keys(struct lane *l, const struct ledger_entry **keys, size_t *n, int64_t now)
{
	char key[512];
	char *val;
	int klen, rc;
	if (*n == 0)
		return 0;
	klen = ledger_batch_key(key, sizeof key, l->txid, ++l->ledger_seq);
	val = ledger_batch_value(keys, *n, now);
	if (!val)
		return -1;
	rc = produce_one(l, l->pub->state_topic, key, (size_t)klen, val, strlen(val), NULL, 0, NULL)
		     ? -1 : 0;
	free(val);
	*n = 0;
	return rc;
}

/* The first record of j that `topic`'s limit does not take: -1 if none,
 * else its index with the reason in j->why. */
static int job_oversized_from(const struct pub *p, const struct pub_job *j, int from, char *why,
			      size_t whysz)
{
	for (int i = from; i < j->n; i++) {
		const struct pub_rec *r = &j->recs[i];
		const char *topic = j->arena + r->topic;
		size_t size = reclimit_record_size(r->key_len, r->value_len, j->arena + r->hdrs, r->nhdrs);
		size_t room = reclimit_room(&p->rl, topic);
		if (size > room) {
			util_seterr(why, whysz, "a record of %zu bytes for topic %s is larger than the "
				    "%zu bytes it takes", size, topic, room);
			return i;
		}
	}
	return -1;
}

static int job_oversized(const struct pub *p, const struct pub_job *j, char *why, size_t whysz)
{
	return job_oversized_from(p, j, 0, why, whysz);
}

static void reject_job(struct pub_job *j, const char *topic, const char *err)
{
	j->rejected = 1;
	snprintf(j->why, sizeof j->why, "librdkafka refused a record for topic %s: %s", topic, err);
}

static int produce_batch(struct lane *l, struct pub_job *batch)
{
	struct pub *p = l->pub;
	int64_t now = util_wall_ms();
	const struct ledger_entry *keys[LEDGER_BATCH_MAX];
	size_t nkeys = 0;

	for (struct pub_job *j = batch; j; j = j->next) {
		if (j->rejected)
			continue;
		/* Checked whole before any of its records is produced: a record
		 * produced cannot be taken back from the transaction. */
		if (job_oversized(p, j, j->why, sizeof j->why) >= 0) {
			j->rejected = 1;
			continue;
		}
		for (int i = 0; i < j->n; i++) {
			const struct pub_rec *r = &j->recs[i];
			const char *a = j->arena;
			rd_kafka_resp_err_t err =
				produce_one(l, a + r->topic, r->has_key ? a + r->key : NULL, r->key_len,
					    r->has_value ? a + r->value : NULL, r->value_len, a + r->hdrs,
					    r->nhdrs, j);
			if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
				reject_job(j, a + r->topic, rd_kafka_err2str(err));
			if (err) {
				health_fail(l, "produce", rd_kafka_err2str(err));
				return -1; /* abort; the replay leaves a rejected job out */
			}
		}
		if (!j->internal)
			atomic_fetch_add(&p->records, (uint64_t)j->n);
		for (int i = 0; i < j->nmsgs; i++) {
			/* a file slice's messages: in the same records as MLLP keys */
			j->msgs[i].state = LEDGER_COMMITTED;
			j->msgs[i].ts_ms = now;
			keys[nkeys++] = &j->msgs[i];
			if (nkeys == p->keys_per_record && flush_msg_keys(l, keys, &nkeys, now) != 0)
				return -1;
		}
		if (!j->has_ledger)
			continue;
		j->ledger.state = LEDGER_COMMITTED;
		j->ledger.ts_ms = now;
		if (j->ledger.kind == LEDGER_MSG) {
			/* message keys travel together: one record per transaction */
			keys[nkeys++] = &j->ledger;
			if (nkeys == p->keys_per_record && flush_msg_keys(l, keys, &nkeys, now) != 0)
				return -1;
		} else {
			char key[LEDGER_RECORD_KEY_MAX];
			size_t klen = ledger_record_key(key, (enum ledger_kind)j->ledger.kind, j->ledger.key);
			char *val = ledger_record_value(&j->ledger);
			int rc;
			if (!val)
				return -1;
			rc = produce_one(l, p->state_topic, key, klen, val, strlen(val), NULL, 0, j) ? -1 : 0;
			free(val);
			if (rc)
				return -1;
		}
	}
	return flush_msg_keys(l, keys, &nkeys, now);
}

static void deadline_in(struct timespec *ts, int ms);

/* run_batch's answers besides 0 (committed) and -1 (cannot be: fatal
 * error, or shutdown while Kafka is unreachable). */
#define RB_SPLIT 1 /* the broker refused records of several jobs as too large */

static int is_size_error(rd_kafka_resp_err_t err)
{
	return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
	       err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

/* The timeout of a commit or abort: short once stopping. */
static int txn_timeout(const struct lane *l)
{
	int t = l->pub->conf.txn_timeout_ms;
	return l->stop && t > 2000 ? 2000 : t;
}

/* Wait ms before the next attempt; a stop request cuts it short. */
static void backoff(struct lane *l, int ms)
{
	struct timespec ts;
	deadline_in(&ts, ms);
	pthread_mutex_lock(&l->mu);
	while (!l->stop && pthread_cond_timedwait(&l->cv, &l->mu, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&l->mu);
}

/* After an aborted attempt: serve the delivery reports still queued, then
 * see whether the broker refused records as too large. A batch of one job
 * rejects that job; a larger batch is split (the broker refuses a whole
 * partition batch, so the culprit is known only once each job goes alone). */
static int after_abort(struct lane *l, struct pub_job *batch)
{
	int live = 0, flagged = 0;
	rd_kafka_poll(l->rk, 0);
	for (struct pub_job *j = batch; j; j = j->next) {
		if (j->rejected)
			continue;
		live++;
		flagged += j->dr_too_large;
	}
	if (!flagged)
		return 0;
	if (live > 1)
		return RB_SPLIT;
	for (struct pub_job *j = batch; j; j = j->next)
		if (!j->rejected && j->dr_too_large)
			j->rejected = 1; /* why was set by dr_cb */
	return 0;
}

/* Test crash points fire on a batch that carries a message, not on one of
 * heartbeats alone (which an idle instance commits too). */
static int carries_message(const struct pub_job *batch)
{
	for (const struct pub_job *j = batch; j; j = j->next)
		if (!j->internal)
			return 1;
	return 0;
}

/* Commit one batch, replaying it after abortable errors. Jobs found too
 * large are marked rejected and left out of the replay. Returns 0 when the
 * rest is committed, RB_SPLIT, or -1 when it cannot be (fatal error, or
 * shutdown while Kafka is unreachable). */
static int run_batch0(struct lane *l, struct pub_job *batch)
{
	struct pub *p = l->pub;
	int backoff_ms = 100, live;

	l->cur = batch;
	for (int attempt = 0;; attempt++) {
		rd_kafka_error_t *e;
		enum txn_verdict v;
		int64_t t0;

		if (atomic_load(&p->fatal))
			return -1;
		live = 0;
		for (struct pub_job *j = batch; j; j = j->next) {
			j->dr_too_large = 0;
			live += !j->rejected;
		}
		if (live == 0)
			return 0; /* every job was rejected: nothing to commit */
		if (attempt > 0) {
			atomic_fetch_add(&p->txn_aborted, 1);
			health_attempt(l, 0);
			if (l->stop && attempt > 3)
				return -1; /* shutting down and Kafka keeps failing */
			backoff(l, l->stop ? 100 : backoff_ms);
			if (backoff_ms < 5000)
				backoff_ms *= 2;
		}
		t0 = util_mono_us();
		e = rd_kafka_begin_transaction(l->rk);
		if (e && classify(l, e, "begin_transaction") == TXN_FATAL)
			return -1;
		if (e)
			continue;
		if (produce_batch(l, batch) != 0) {
			/* A local produce failure leaves the transaction unusable. */
			for (int tries = 0;
			     (e = rd_kafka_abort_transaction(l->rk, txn_timeout(l)));)
				if (classify(l, e, "abort_transaction") == TXN_FATAL ||
				    (l->stop && ++tries >= 2))
					return -1;
			if (after_abort(l, batch) == RB_SPLIT)
				return RB_SPLIT;
			continue;
		}
		if (p->conf.crash_after_produce && carries_message(batch)) {
			rd_kafka_flush(l->rk, 10000);
			abort();
		}
		v = TXN_RETRY;
		if (p->conf.before_commit &&
		    (e = p->conf.before_commit(l->rk, batch, p->conf.before_commit_opaque))) {
			if (classify(l, e, "before_commit") == TXN_FATAL)
				return -1;
			while ((e = rd_kafka_abort_transaction(l->rk, txn_timeout(l))))
				if (classify(l, e, "abort_transaction") == TXN_FATAL)
					return -1;
			continue;
		}
		for (int tries = 0; (e = rd_kafka_commit_transaction(l->rk, txn_timeout(l)));) {
			v = classify(l, e, "commit_transaction");
			if (v != TXN_RETRY)
				break;
			if (l->stop && ++tries >= 2)
				return -1; /* shutting down: do not retry for ever */
		}
		if (!e) {
			hist_record(&p->commit_hist, (uint64_t)(util_mono_us() - t0));
			atomic_fetch_add(&p->txn_committed, 1);
			if (p->conf.crash_after_commit && carries_message(batch))
				abort();
			return 0;
		}
		if (v == TXN_FATAL)
			return -1;
		for (int tries = 0; (e = rd_kafka_abort_transaction(l->rk, txn_timeout(l)));)
			if (classify(l, e, "abort_transaction") == TXN_FATAL ||
			    (l->stop && ++tries >= 2))
				return -1;
		if (after_abort(l, batch) == RB_SPLIT)
			return RB_SPLIT;
	}
}

static int run_batch(struct lane *l, struct pub_job *batch)
{
	health_attempt(l, 1);
	int rc = run_batch0(l, batch);
	health_attempt(l, -1);
	return rc;
}

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += (long)ms * 1000000L;
	ts->tv_sec += ts->tv_nsec / 1000000000L;
	ts->tv_nsec %= 1000000000L;
}

/* Delivery reports: the transaction's commit says whether the records made
 * it. The callback is set so that librdkafka hands delivered messages back
 * to the lane thread (its poll and flush) to be freed there, where their
 * memory was allocated, instead of freeing them on its broker thread. */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct lane *l = opaque;
	struct pub_job *job = m->_private;
	(void)rk;
	if (!job || !is_size_error(m->err))
		return;
	/* The broker refused the record as too large. Touch the job only if it
	 * is still in the batch being committed (a late report must not reach a
	 * job already handed back). */
	for (struct pub_job *j = l->cur; j; j = j->next) {
		if (j != job)
			continue;
		if (!j->dr_too_large)
			snprintf(j->why, sizeof j->why,
				 "the broker refused a record of %zu bytes for topic %s: %s", m->len,
				 rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
		j->dr_too_large = 1;
		return;
	}
}

/* On the lane thread (rd_kafka_poll): keep the latest statistics. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	struct lane *l = opaque;
	struct kstats ks;
	if (kstats_parse(json, len, &ks, NULL, 0) == 0) {
		pthread_mutex_lock(&l->kmu);
		l->ks = ks;
		pthread_mutex_unlock(&l->kmu);
	}
	return 0; /* librdkafka frees json */
}

/* Post a batch's completions: rejected jobs as PUB_REJECTED, the others
 * by rc (run_batch's answer). */
static void post_batch(struct pub *p, struct pub_job *batch, int rc)
{
	struct pub_job *ok = NULL, **okt = &ok, *rej = NULL, **rejt = &rej, *next;
	assert(rc == 0 || rc == -1); /* RB_SPLIT: each job goes alone first */
	for (struct pub_job *j = batch; j; j = next) {
		next = j->next;
		j->next = NULL;
		if (j->rejected) {
			*rejt = j;
			rejt = &j->next;
		} else {
			*okt = j;
			okt = &j->next;
		}
	}
	if (rej)
		post_completions(p, rej, PUB_REJECTED, NULL);
	if (ok && rc == 0)
		post_completions(p, ok, PUB_COMMITTED, NULL);
	else if (ok)
		post_completions(p, ok, PUB_FAILED,
				 atomic_load(&p->fatal) ? p->fatal_reason : "Kafka unavailable at shutdown");
}

static void *lane_main(void *arg)
{
	struct lane *l = arg;
	struct pub *p = l->pub;

	for (;;) {
		struct pub_job *batch, *last = NULL;
		int n = 0;
		size_t bytes = 0;

		pthread_mutex_lock(&l->mu);
		while (!l->head && !l->stop) {
			/* Idle: still serve librdkafka's callbacks (statistics). */
			struct timespec ts;
			deadline_in(&ts, PUB_STATS_INTERVAL_MS);
			if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT) {
				pthread_mutex_unlock(&l->mu);
				rd_kafka_poll(l->rk, 0);
				pthread_mutex_lock(&l->mu);
			}
		}
		if (!l->head && l->stop) {
			pthread_mutex_unlock(&l->mu);
			break;
		}
		/* Linger, adaptively: while fewer jobs wait than the last batch
		 * held, the senders that batch answered are likely about to send
		 * their next message, so give the batch up to linger_ms to fill.
		 * A lone sender (last batch of one) commits at once. */
		if (p->conf.linger_ms > 0 && l->qlen < l->last_n &&
		    l->qlen < p->conf.batch_max_msgs && l->qbytes < p->conf.batch_max_bytes &&
		    !l->stop) {
			struct timespec ts;
			deadline_in(&ts, p->conf.linger_ms);
			while (l->qlen < l->last_n && l->qlen < p->conf.batch_max_msgs &&
			       l->qbytes < p->conf.batch_max_bytes && !l->stop &&
			       pthread_cond_timedwait(&l->cv, &l->mu, &ts) != ETIMEDOUT)
				;
		}
		batch = l->head;
		for (struct pub_job *j = l->head; j; j = j->next) {
			if (n > 0 && (n >= p->conf.batch_max_msgs || bytes + j->bytes > p->conf.batch_max_bytes))
				break;
			n++;
			bytes += j->bytes;
			last = j;
		}
		l->head = last->next;
		if (!l->head)
			l->tail = NULL;
		last->next = NULL;
		assert(l->qlen >= n && l->qbytes >= bytes);
		l->qlen -= n;
		l->qbytes -= bytes;
		l->last_n = n;
		pthread_mutex_unlock(&l->mu);

		int rc = run_batch(l, batch);
		if (rc != RB_SPLIT) {
			post_batch(p, batch, rc);
		} else {
			/* Each job alone, in order: the one(s) the broker refuses are
			 * rejected, the others committed. */
			struct pub_job *next;
			for (struct pub_job *j = batch; j; j = next) {
				next = j->next;
				j->next = NULL;
				post_batch(p, j, run_batch(l, j));
			}
		}
		l->cur = NULL;
		rd_kafka_poll(l->rk, 0);
	}
	return NULL;
}

/* ---- lifecycle ------------------------------------------------------------ */

static int stats_interval_default(rd_kafka_conf_t *conf, char *err, size_t errsz)
{
	char v[32];
	size_t sz = sizeof v;
	if (rd_kafka_conf_get(conf, "statistics.interval.ms", v, &sz) == RD_KAFKA_CONF_OK &&
	    strcmp(v, "0") != 0)
		return 0; /* configured in [kafka] */
	snprintf(v, sizeof v, "%d", PUB_STATS_INTERVAL_MS);
	return rd_kafka_conf_set(conf, "statistics.interval.ms", v, err, errsz) != RD_KAFKA_CONF_OK;
}

static int lane_init(struct pub *p, struct lane *l, int idx, char *errstr, size_t errstr_size)
{
	char *txid = l->txid, err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_dup(p->kc);
	rd_kafka_error_t *e;

	l->pub = p;
	l->idx = idx;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	pthread_mutex_init(&l->kmu, NULL);
	snprintf(l->txid, sizeof l->txid, "%s-%d", p->instance, idx);
	/* unique across restarts too: the wall clock at start, then a counter */
	l->ledger_seq = (uint64_t)util_wall_ms() * 1000;
	rd_kafka_conf_set_opaque(conf, l);
	rd_kafka_conf_set_stats_cb(conf, stats_cb);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	if (rd_kafka_conf_set(conf, "transactional.id", txid, err, sizeof err) ||
	    rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err) ||
	    stats_interval_default(conf, err, sizeof err)) {
		rd_kafka_conf_destroy(conf);
		return util_seterr(errstr, errstr_size, "lane %d: %s", idx, err);
	}
	l->rk = kconf_client_take(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	if (!l->rk)
		return util_seterr(errstr, errstr_size, "lane %d: %s", idx, err);
	e = rd_kafka_init_transactions(l->rk, p->conf.txn_timeout_ms);
	if (e) {
		util_seterr(errstr, errstr_size, "lane %d (%s): init_transactions: %s", idx, txid,
			    rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
		return -1;
	}
	l->topics = calloc((size_t)p->conf.ntopics + 1, sizeof *l->topics);
	for (int i = 0; l->topics && i < p->conf.ntopics; i++) {
		const rd_kafka_metadata_t *md = NULL;
		l->topics[l->ntopics] = rd_kafka_topic_new(l->rk, p->conf.topics[i], NULL);
		if (!l->topics[l->ntopics])
			continue;
		if (rd_kafka_metadata(l->rk, 0, l->topics[l->ntopics], &md, 5000) == 0)
			rd_kafka_metadata_destroy(md);
		l->ntopics++;
	}
	if (pthread_create(&l->thread, NULL, lane_main, l) != 0)
		return util_seterr(errstr, errstr_size, "lane %d: cannot start thread", idx);
	l->started = 1;
	return 0;
}

/* Message keys per ledger record (ledger_batch_value: ~64 bytes, then up to
 * 2 * LEDGER_KEY_LEN + 10 per key; the key "msgs/<txid>/<seq>" < 300) so the
 * record fits the state topic. */
static size_t keys_per_record(size_t room)
{
	size_t fixed = reclimit_record_size(300, 64, NULL, 0), per = 2 * LEDGER_KEY_LEN + 10;
	size_t n = room > fixed ? (room - fixed) / per : 1;
	return n < 1 ? 1 : n > LEDGER_BATCH_MAX ? LEDGER_BATCH_MAX : n;
}

struct pub *pub_new(const struct pub_conf *conf, char *errstr, size_t errstr_size)
{
	struct pub *p = calloc(1, sizeof *p);
	if (!p) {
		util_seterr(errstr, errstr_size, "out of memory");
		return NULL;
	}
	p->conf = *conf;
	p->instance = strdup(conf->instance);
	p->state_topic = strdup(conf->state_topic);
	pthread_mutex_init(&p->done_mu, NULL);
	pthread_cond_init(&p->done_cv, NULL);
	hist_init(&p->commit_hist);
	hist_init(&p->job_hist);
	if (!p->instance || !p->state_topic) {
		util_seterr(errstr, errstr_size, "out of memory");
		goto fail;
	}
	if (conf->lanes < 1 || conf->batch_max_msgs < 1 || conf->max_inflight < 1) {
		util_seterr(errstr, errstr_size, "lanes, batch_max_msgs and max_inflight must be >= 1");
		goto fail;
	}
	p->lanes = calloc((size_t)conf->lanes, sizeof *p->lanes);
	p->kc = rd_kafka_conf_dup(conf->kafka);
	if (!p->instance || !p->state_topic || !p->lanes || !p->kc) {
		util_seterr(errstr, errstr_size, "out of memory");
		goto fail;
	}
	/* Record limits before the lanes exist: they may lower the lanes'
	 * message.max.bytes. */
	if (reclimit_init(&p->rl, p->kc, conf->topics, conf->limits_timeout_ms > 0 ? conf->ntopics : 0,
			  conf->limits_timeout_ms, conf->note, conf->note_opaque, errstr,
			  errstr_size) != 0)
		goto fail;
	p->keys_per_record = keys_per_record(reclimit_room(&p->rl, p->state_topic));
	for (int i = 0; i < conf->lanes; i++)
		if (lane_init(p, &p->lanes[i], i, errstr, errstr_size) != 0)
			goto fail;
	return p;
fail:
	pub_free(p);
	return NULL;
}

void pub_free(struct pub *p)
{
	if (!p)
		return;
	for (int i = 0; p->lanes && i < p->conf.lanes; i++) {
		struct lane *l = &p->lanes[i];
		if (!l->pub)
			continue;
		pthread_mutex_lock(&l->mu);
		l->stop = 1;
		pthread_cond_signal(&l->cv);
		pthread_mutex_unlock(&l->mu);
	}
	struct timespec until;
	int abandoned = 0;
	deadline_in(&until, p->conf.stop_timeout_ms);
	for (int i = 0; p->lanes && i < p->conf.lanes; i++) {
		struct lane *l = &p->lanes[i];
		if (!l->pub)
			continue;
		if (l->started && p->conf.stop_timeout_ms > 0 &&
		    pthread_timedjoin_np(l->thread, NULL, &until) != 0) {
			atomic_store(&p->abandoned, 1);
			abandoned++;
			continue; /* blocked in librdkafka: its handle stays */
		}
		if (l->started)
			pthread_join(l->thread, NULL);
		for (int t = 0; t < l->ntopics; t++)
			rd_kafka_topic_destroy(l->topics[t]);
		free(l->topics);
		if (l->rk)
			rd_kafka_destroy(l->rk);
		pthread_mutex_destroy(&l->mu);
		pthread_cond_destroy(&l->cv);
		pthread_mutex_destroy(&l->kmu);
	}
	pub_drain(p);
	if (abandoned)
		return; /* a lane thread still uses p; the process is exiting */
	reclimit_clear(&p->rl);
	if (p->kc)
		rd_kafka_conf_destroy(p->kc);
	free(p->lanes);
	free(p->instance);
	free(p->state_topic);
	pthread_mutex_destroy(&p->done_mu);
	pthread_cond_destroy(&p->done_cv);
	free(p);
}

int pub_submit(struct pub *p, uint64_t origin, struct pub_job *job)
{
	struct lane *l;
	if (atomic_load(&p->fatal))
		return -1;
	if (atomic_load(&p->inflight) >= p->conf.max_inflight)
		return -1;
	atomic_fetch_add(&p->inflight, 1);
	job->submit_us = util_mono_us();
	/* Pin the origin to a lane (Fibonacci hashing spreads sequential ids). */
	l = &p->lanes[(origin * 11400714819323198485ull >> 32) % (uint64_t)p->conf.lanes];
	job->next = NULL;
	pthread_mutex_lock(&l->mu);
	if (l->tail)
		l->tail->next = job;
	else
		l->head = job;
	l->tail = job;
	l->qlen++;
	l->qbytes += job->bytes;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	return 0;
}

int pub_inflight(const struct pub *p)
{
	return atomic_load(&((struct pub *)p)->inflight);
}

int pub_max_inflight(const struct pub *p)
{
	return p->conf.max_inflight;
}

int pub_fatal(const struct pub *p, char *errstr, size_t errstr_size)
{
	if (!atomic_load(&((struct pub *)p)->fatal))
		return 0;
	util_seterr(errstr, errstr_size, "%s", p->fatal_reason);
	return 1;
}

void pub_get_stats(const struct pub *cp, struct pub_stats *out)
{
	struct pub *p = (struct pub *)cp;
	out->txn_committed = atomic_load(&p->txn_committed);
	out->txn_aborted = atomic_load(&p->txn_aborted);
	out->jobs_committed = atomic_load(&p->jobs_committed);
	out->jobs_failed = atomic_load(&p->jobs_failed);
	out->jobs_rejected = atomic_load(&p->jobs_rejected);
	out->records_produced = atomic_load(&p->records);
}

const struct hist *pub_commit_hist(const struct pub *p)
{
	return &p->commit_hist;
}

const struct hist *pub_job_hist(const struct pub *p)
{
	return &p->job_hist;
}

int pub_lanes(const struct pub *p)
{
	return p->conf.lanes;
}

int pub_kafka_stats(const struct pub *cp, int lane, struct kstats *out)
{
	struct lane *l;
	if (lane < 0 || lane >= cp->conf.lanes || !cp->lanes[lane].pub)
		return -1;
	l = &cp->lanes[lane];
	pthread_mutex_lock(&l->kmu);
	*out = l->ks;
	pthread_mutex_unlock(&l->kmu);
	return out->valid ? 0 : -1;
}

/* ---- record sizes and lane health ----------------------------------------- */

size_t pub_record_size(size_t key_len, size_t value_len, const struct pub_hdr *hdrs, int nhdrs)
{
	size_t n = reclimit_record_size(key_len, value_len, NULL, 0);
	for (int i = 0; i < nhdrs; i++)
		if (hdrs[i].value)
			n += strlen(hdrs[i].name) + strlen(hdrs[i].value) + RECLIMIT_HDR_OVERHEAD;
	return n;
}

size_t pub_record_room(const struct pub *p, const char *topic)
{
	return reclimit_room(&p->rl, topic);
}

int pub_job_check(const struct pub *p, const struct pub_job *job, char *errstr, size_t errstr_size)
{
	char why[160];
	if (job_oversized(p, job, why, sizeof why) < 0)
		return 0;
	util_seterr(errstr, errstr_size, "%s", why);
	return -1;
}

int pub_job_count(const struct pub_job *job)
{
	return job->n;
}

int pub_job_check_from(const struct pub *p, const struct pub_job *job, int from, char *errstr,
		       size_t errstr_size)
{
	char why[160];
	if (job_oversized_from(p, job, from, why, sizeof why) < 0)
		return 0;
	util_seterr(errstr, errstr_size, "%s", why);
	return -1;
}

void pub_job_truncate(struct pub_job *job, int n)
{
	if (n < 0 || n >= job->n)
		return;
	for (int i = n; i < job->n; i++)
		job->bytes -= job->recs[i].key_len + job->recs[i].value_len +
			      strlen(job->arena + job->recs[i].topic);
	job->used = job->recs[n].topic; /* records are appended in order */
	job->n = n;
}

int pub_lane_health(const struct pub *cp, int lane, struct pub_lane_health *out)
{
	struct lane *l;
	if (lane < 0 || lane >= cp->conf.lanes || !cp->lanes[lane].pub)
		return -1;
	l = &cp->lanes[lane];
	pthread_mutex_lock(&l->kmu);
	*out = l->health;
	pthread_mutex_unlock(&l->kmu);
	return 0;
}

int pub_lanes_failing(const struct pub *p, int64_t min_ms, char *errstr, size_t errstr_size)
{
	int n = 0;
	int64_t now = util_mono_ms();
	for (int i = 0; i < p->conf.lanes; i++) {
		struct pub_lane_health h;
		if (pub_lane_health(p, i, &h) != 0 || !h.failing_since_ms ||
		    now - h.failing_since_ms < min_ms)
			continue;
		if (n++ == 0)
			util_seterr(errstr, errstr_size,
				    "lane %d: no commit for %lld s, %d attempts, last error: %s", i,
				    (long long)((now - h.failing_since_ms) / 1000), h.attempts,
				    h.last_error);
	}
	return n;
}

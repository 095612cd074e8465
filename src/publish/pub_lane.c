/* pub_lane — a lane's thread: collect a batch, begin, produce, commit,
 * retry or abort, post the completions. */
#include "publish/pub.h"

#include <assert.h>
#include <unistd.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "publish/kconf.h"
#include "publish/pub_int.h"
#include "util.h"

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
int pub_job_oversized_from(const struct pub *p, const struct pub_job *j, int from, char *why,
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

int pub_job_oversized(const struct pub *p, const struct pub_job *j, char *why, size_t whysz)
{
	return pub_job_oversized_from(p, j, 0, why, whysz);
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
		if (pub_job_oversized(p, j, j->why, sizeof j->why) >= 0) {
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
	pub_deadline_in(&ts, ms);
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

void pub_deadline_in(struct timespec *ts, int ms)
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
		pub_post_completions(p, rej, PUB_REJECTED, NULL);
	if (ok && rc == 0)
		pub_post_completions(p, ok, PUB_COMMITTED, NULL);
	else if (ok)
		pub_post_completions(p, ok, PUB_FAILED,
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
			pub_deadline_in(&ts, PUB_STATS_INTERVAL_MS);
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
		/* Linger, adaptively: senders answered by the last commits and
		 * not back yet (p->expect) are about to send again, so give the
		 * batch up to linger_ms to take them — as many arrivals (to any
		 * lane) as were expected now, not those answered meanwhile, so
		 * lanes do not hold each other up. A lone sender's next message
		 * finds nothing expected and commits at once. Senders that do not
		 * come back within linger_ms are not waited for again. */
		int want = atomic_load(&p->expect);
		if (p->conf.linger_ms > 0 && want > 0 && l->qlen < p->conf.batch_max_msgs &&
		    l->qbytes < p->conf.batch_max_bytes && !l->stop) {
			struct timespec ts;
			unsigned from = atomic_load(&p->arrived);
			int rc = 0;
			pub_deadline_in(&ts, p->conf.linger_ms);
			l->lingering = 1;
			while (atomic_load(&p->expect) > 0 &&
			       (int)(atomic_load(&p->arrived) - from) < want &&
			       l->qlen < p->conf.batch_max_msgs && l->qbytes < p->conf.batch_max_bytes &&
			       !l->stop && (rc = pthread_cond_timedwait(&l->cv, &l->mu, &ts)) != ETIMEDOUT)
				;
			l->lingering = 0;
			if (rc == ETIMEDOUT)
				atomic_store(&p->expect, 0);
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

/* Lane 0 records the configured topics' partitions for routing unordered
 * jobs, with the partitioner the producers use ([kafka] partitioner, else
 * librdkafka's default). Without them jobs go by origin. */
static void route_init(struct pub *p)
{
	static const struct {
		const char *name;
		int32_t (*fn)(const rd_kafka_topic_t *, const void *, size_t, int32_t, void *,
			      void *);
	} fns[] = {
		{"consistent_random", rd_kafka_msg_partitioner_consistent_random},
		{"consistent", rd_kafka_msg_partitioner_consistent},
		{"murmur2", rd_kafka_msg_partitioner_murmur2},
		{"murmur2_random", rd_kafka_msg_partitioner_murmur2_random},
		{"fnv1a", rd_kafka_msg_partitioner_fnv1a},
		{"fnv1a_random", rd_kafka_msg_partitioner_fnv1a_random},
	};
	char v[64] = "consistent_random";
	size_t sz = sizeof v;
	if (rd_kafka_conf_get(p->kc, "partitioner", v, &sz) != RD_KAFKA_CONF_OK)
		snprintf(v, sizeof v, "consistent_random");
	for (size_t i = 0; i < HB_ARRAY_LEN(fns); i++)
		if (strcmp(fns[i].name, v) == 0)
			p->partitioner = fns[i].fn;
	p->route_rkt = calloc((size_t)p->conf.ntopics + 1, sizeof *p->route_rkt);
	p->route_parts = calloc((size_t)p->conf.ntopics + 1, sizeof *p->route_parts);
	if (!p->route_rkt || !p->route_parts)
		p->partitioner = NULL; /* out of memory: by origin, as before */
}

int pub_lane_init(struct pub *p, struct lane *l, int idx, char *errstr, size_t errstr_size)
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
	if (idx == 0)
		route_init(p);
	for (int i = 0; l->topics && i < p->conf.ntopics; i++) {
		const rd_kafka_metadata_t *md = NULL;
		l->topics[l->ntopics] = rd_kafka_topic_new(l->rk, p->conf.topics[i], NULL);
		if (!l->topics[l->ntopics])
			continue;
		if (rd_kafka_metadata(l->rk, 0, l->topics[l->ntopics], &md, 5000) == 0) {
			if (idx == 0 && p->route_rkt && md->topic_cnt == 1 && !md->topics[0].err) {
				p->route_rkt[p->nroute] = l->topics[l->ntopics];
				p->route_parts[p->nroute++] = md->topics[0].partition_cnt;
			}
			rd_kafka_metadata_destroy(md);
		}
		l->ntopics++;
	}
	if (pthread_create(&l->thread, NULL, lane_main, l) != 0)
		return util_seterr(errstr, errstr_size, "lane %d: cannot start thread", idx);
	l->started = 1;
	return 0;
}

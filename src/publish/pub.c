#include "publish/pub.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "publish/pub_int.h"
#include "util.h"

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

/* ---- completions ---------------------------------------------------------- */

void pub_post_completions(struct pub *p, struct pub_job *batch, enum pub_status st,
			     const char *reason)
{
	struct pub_job *last = NULL;
	int n = 0, answered = 0;
	int64_t now = util_mono_us();
	for (struct pub_job *j = batch; j; j = j->next) {
		if (st == PUB_COMMITTED && !j->internal)
			hist_record(&p->job_hist, (uint64_t)(now - j->submit_us));
		answered += j->unordered;
		j->status = st;
		snprintf(j->reason, sizeof j->reason, "%s",
			 st == PUB_REJECTED ? j->why : reason ? reason : "");
		last = j;
		n++;
	}
	if (!last)
		return;
	if (answered)
		atomic_fetch_add(&p->expect, answered);
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
		if (pub_lane_init(p, &p->lanes[i], i, errstr, errstr_size) != 0)
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
	pub_deadline_in(&until, p->conf.stop_timeout_ms);
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
	free(p->route_rkt);
	free(p->route_parts);
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

/* An unordered job's lane: its first keyed record's partition (of a
 * configured topic) modulo the lanes; else the origin's. */
static struct lane *lane_for(struct pub *p, uint64_t origin, const struct pub_job *job)
{
	for (int i = 0; job->unordered && p->partitioner && i < job->n; i++) {
		const struct pub_rec *r = &job->recs[i];
		const char *topic = job->arena + r->topic;
		if (!r->has_key || r->key_len == 0)
			continue;
		for (int t = 0; t < p->nroute; t++) {
			if (p->route_parts[t] <= 0 ||
			    strcmp(rd_kafka_topic_name(p->route_rkt[t]), topic) != 0)
				continue;
			int32_t part = p->partitioner(p->route_rkt[t], job->arena + r->key, r->key_len,
						      p->route_parts[t], NULL, NULL);
			if (part >= 0)
				return &p->lanes[part % p->conf.lanes];
		}
		break; /* the first keyed record decides */
	}
	/* Pin the origin to a lane (Fibonacci hashing spreads sequential ids). */
	return &p->lanes[(origin * 11400714819323198485ull >> 32) % (uint64_t)p->conf.lanes];
}

/* An unordered job arrived: one expected sender fewer. The other lanes
 * that linger count it too. */
static void expect_arrived(struct pub *p, const struct lane *mine)
{
	int e = atomic_load(&p->expect);
	while (e > 0 && !atomic_compare_exchange_weak(&p->expect, &e, e - 1))
		;
	atomic_fetch_add(&p->arrived, 1);
	for (int i = 0; i < p->conf.lanes; i++) {
		struct lane *l = &p->lanes[i];
		if (l == mine)
			continue;
		pthread_mutex_lock(&l->mu);
		if (l->lingering)
			pthread_cond_signal(&l->cv);
		pthread_mutex_unlock(&l->mu);
	}
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
	l = lane_for(p, origin, job);
	/* Counted before it is queued: its lane, woken by the queueing, must
	 * not linger for this very job. */
	if (job->unordered)
		expect_arrived(p, l);
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
	if (pub_job_oversized(p, job, why, sizeof why) < 0)
		return 0;
	util_seterr(errstr, errstr_size, "%s", why);
	return -1;
}


int pub_job_check_from(const struct pub *p, const struct pub_job *job, int from, char *errstr,
		       size_t errstr_size)
{
	char why[160];
	if (pub_job_oversized_from(p, job, from, why, sizeof why) < 0)
		return 0;
	util_seterr(errstr, errstr_size, "%s", why);
	return -1;
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

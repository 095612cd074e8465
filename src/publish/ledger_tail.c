#include "publish/ledger_tail.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "obs/hist.h"
#include "util.h"
#include "publish/kconf.h"

/* fetch.wait.max.ms is left at its default: a waiting read_committed fetch
 * is answered as soon as a record or commit marker moves the last stable
 * offset (measured: a barrier at one connection takes 0.8 ms). */
/* Poll timeout while a barrier waits / while idle (a request wakes it). */
#define LTAIL_POLL_ACTIVE_MS 2
#define LTAIL_POLL_IDLE_MS 100
#define LTAIL_RETRY_MS 100
#define LTAIL_QUERY_TIMEOUT_MS 5000
#define LTAIL_SLOW_MS 5000

/* Barriers whose end offsets were read and not yet reached. */
#define LTAIL_MAX_TARGETS 32

/* One record (or barrier mark) from the thread to the loop. */
struct ltail_item {
	struct ltail_item *next;
	int mark;          /* barrier `seq` reached */
	uint64_t seq;
	int has_value;
	int64_t ts_ms;
	size_t klen, vlen;
	char *key, *value; /* in the same allocation */
};

struct ltail_peer {
	char name[64];
	int64_t ts_ms, seen_mono;
};

struct ltail {
	struct ev_loop *loop;
	struct ledger *ledger;
	char instance[128], topic[256];
	ev_async async;

	/* thread */
	pthread_t th;
	int started;
	atomic_int stop;
	rd_kafka_t *rk;             /* read_committed consumer */
	rd_kafka_t *hw;             /* read_uncommitted handle for ListOffsets */
	rd_kafka_queue_t *cq;       /* rk's consumer queue (yield wakes the poll) */
	int nparts;
	int64_t *pos;               /* per partition */
	/* Barriers in flight, oldest first: each its sequence number and
	 * the end offsets (ntargets x nparts) it waits for. Several can wait
	 * at once, so a message arriving during one barrier does not wait for
	 * that one to pass before its own ListOffsets is sent. */
	int64_t *targets;
	uint64_t target_seq[LTAIL_MAX_TARGETS];
	int64_t target_since[LTAIL_MAX_TARGETS];
	int ntargets;
	int64_t last_slow_log;
	int test_lag_ms; /* HL7BRIDGE_TEST_TAIL_LAG_MS: hand what was read over this late (tests) */

	/* shared, under mu */
	pthread_mutex_t mu;
	uint64_t req_seq;   /* newest barrier asked for (loop) */
	uint64_t taken_seq; /* newest whose ListOffsets the thread has begun */
	struct ltail_item *qhead, *qtail;

	/* loop: parked waiters, oldest first, each with the barrier it waits for */
	struct ltail_waiter *whead, *wtail;
	struct hist lat;
	uint64_t barriers, waiters, records, parked;
	atomic_uint_fast64_t query_errors;
	struct ltail_peer peers[LTAIL_MAX_PEERS];
	int npeers;
};

/* ---- thread ---------------------------------------------------------------- */

/* Own message batches ("msgs/<instance>-<lane>/<seq>") were applied by the
 * loop when their jobs completed. */
static int own_batch(const struct ltail *t, const char *k, size_t klen)
{
	size_t il = strlen(t->instance), i = 5 + il + 1;
	if (klen < i + 2 || memcmp(k, "msgs/", 5) != 0 || memcmp(k + 5, t->instance, il) != 0 ||
	    k[5 + il] != '-')
		return 0;
	if (k[i] < '0' || k[i] > '9')
		return 0;
	while (i < klen && k[i] >= '0' && k[i] <= '9')
		i++;
	return i < klen && k[i] == '/';
}

static int wanted(const struct ltail *t, const char *k, size_t klen)
{
	if (!k)
		return 0;
	if (klen >= 5 && memcmp(k, "msgs/", 5) == 0)
		return !own_batch(t, k, klen);
	return (klen >= 4 && memcmp(k, "msg/", 4) == 0) || (klen >= 5 && memcmp(k, "file/", 5) == 0) ||
	       (klen >= 3 && memcmp(k, "hb/", 3) == 0);
}

static struct ltail_item *item_new(const rd_kafka_message_t *m)
{
	struct ltail_item *it = calloc(1, sizeof *it + m->key_len + m->len + 2);
	if (!it)
		return NULL;
	it->key = (char *)(it + 1);
	it->value = it->key + m->key_len + 1;
	memcpy(it->key, m->key, m->key_len);
	it->klen = m->key_len;
	if (m->payload) {
		memcpy(it->value, m->payload, m->len);
		it->vlen = m->len;
		it->has_value = 1;
	}
	it->ts_ms = rd_kafka_message_timestamp(m, NULL);
	return it;
}

/* Ask the broker for the end of every partition (read_uncommitted: the high
 * watermark). 0, or -1 (retried by the caller). */
static int query_end(struct ltail *t, int64_t *target)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(t->nparts);
	rd_kafka_resp_err_t e;
	int rc = 0;
	for (int p = 0; p < t->nparts; p++)
		rd_kafka_topic_partition_list_add(l, t->topic, p)->offset = RD_KAFKA_OFFSET_END;
	e = rd_kafka_offsets_for_times(t->hw, l, LTAIL_QUERY_TIMEOUT_MS);
	for (int p = 0; p < l->cnt && !e; p++) {
		if (l->elems[p].err || l->elems[p].offset < 0)
			rc = -1;
		else
			target[l->elems[p].partition] = l->elems[p].offset;
	}
	if (e)
		rc = -1;
	rd_kafka_topic_partition_list_destroy(l);
	return rc;
}

/* Refresh the positions; is the oldest barrier's target reached? */
static int reached(struct ltail *t)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(t->nparts);
	const int64_t *target = t->targets;
	int ok = 1;
	for (int p = 0; p < t->nparts; p++)
		rd_kafka_topic_partition_list_add(l, t->topic, p);
	/* The position also moves past commit markers and aborted records,
	 * which are never delivered as messages. */
	if (rd_kafka_position(t->rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR)
		for (int p = 0; p < l->cnt; p++)
			if (l->elems[p].offset > t->pos[l->elems[p].partition])
				t->pos[l->elems[p].partition] = l->elems[p].offset;
	rd_kafka_topic_partition_list_destroy(l);
	for (int p = 0; p < t->nparts; p++)
		if (t->pos[p] < target[p])
			ok = 0;
	return ok;
}

/* A barrier this old is reported: which partition holds it. */
static void slow_log(struct ltail *t)
{
	t->last_slow_log = util_mono_ms();
	for (int p = 0; p < t->nparts; p++)
		if (t->pos[p] < t->targets[p])
			log_warn("ltail",
				 "state topic %s: new messages have waited %lld ms for partition %d: read "
				 "up to offset %lld of %lld (a transaction is still open there, e.g. of "
				 "an instance that died; it ends when that instance restarts or is taken "
				 "over, or after transaction.timeout.ms)",
				 t->topic, (long long)(util_mono_ms() - t->target_since[0]), p,
				 (long long)t->pos[p], (long long)t->targets[p]);
}

static void *tail_main(void *arg)
{
	struct ltail *t = arg;
	int64_t last_err_log = 0;

	while (!atomic_load(&t->stop)) {
		struct ltail_item *head = NULL, **tailp = &head;
		uint64_t want = 0;

		pthread_mutex_lock(&t->mu);
		if (t->req_seq > t->taken_seq && t->ntargets < LTAIL_MAX_TARGETS) {
			/* Waiters parked from now on belong to the next barrier:
			 * this one's ListOffsets may come before their arrival. */
			want = t->taken_seq = t->req_seq;
		}
		pthread_mutex_unlock(&t->mu);
		if (want) {
			if (query_end(t, t->targets + (size_t)t->ntargets * (size_t)t->nparts) == 0) {
				t->target_seq[t->ntargets] = want;
				t->target_since[t->ntargets] = util_mono_ms();
				t->ntargets++;
			} else {
				atomic_fetch_add(&t->query_errors, 1);
				if (util_mono_ms() - last_err_log > 10000) {
					log_warn("ltail", "state topic %s: cannot read its end offsets; "
							  "new messages wait",
						 t->topic);
					last_err_log = util_mono_ms();
				}
				/* The barrier is asked again (its waiters arrived
				 * before this later ListOffsets: still correct). */
				pthread_mutex_lock(&t->mu);
				t->taken_seq = want - 1;
				pthread_mutex_unlock(&t->mu);
				usleep(LTAIL_RETRY_MS * 1000);
				continue;
			}
		}
		rd_kafka_message_t *m =
			rd_kafka_consumer_poll(t->rk, t->ntargets ? LTAIL_POLL_ACTIVE_MS : LTAIL_POLL_IDLE_MS);
		for (int n = 0; m && n < 1000; n++) {
			if (m->partition >= 0 && m->partition < t->nparts) {
				if (!m->err && m->offset + 1 > t->pos[m->partition])
					t->pos[m->partition] = m->offset + 1;
				else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF &&
					 m->offset > t->pos[m->partition])
					t->pos[m->partition] = m->offset;
			}
			if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				log_warn("ltail", "state topic %s: %s", t->topic, rd_kafka_message_errstr(m));
			if (!m->err && wanted(t, m->key, m->key_len)) {
				struct ltail_item *it = item_new(m);
				if (it) {
					*tailp = it;
					tailp = &it->next;
				}
			}
			rd_kafka_message_destroy(m);
			m = rd_kafka_consumer_poll(t->rk, 0);
		}
		if (m)
			rd_kafka_message_destroy(m);
		if (t->ntargets && util_mono_ms() - t->target_since[0] > LTAIL_SLOW_MS &&
		    util_mono_ms() - t->last_slow_log > LTAIL_SLOW_MS)
			slow_log(t);
		/* Barriers pass in order: a later one's offsets are never lower. */
		while (t->ntargets && reached(t)) {
			struct ltail_item *mk = calloc(1, sizeof *mk);
			if (!mk)
				break; /* checked again after the next poll */
			mk->mark = 1;
			mk->seq = t->target_seq[0];
			*tailp = mk;
			tailp = &mk->next;
			t->ntargets--;
			memmove(t->targets, t->targets + t->nparts,
				(size_t)t->ntargets * (size_t)t->nparts * sizeof *t->targets);
			memmove(t->target_seq, t->target_seq + 1, (size_t)t->ntargets * sizeof *t->target_seq);
			memmove(t->target_since, t->target_since + 1,
				(size_t)t->ntargets * sizeof *t->target_since);
		}
		if (head) {
			if (t->test_lag_ms > 0) /* records and marks alike: barriers stay correct */
				usleep((useconds_t)t->test_lag_ms * 1000);
			pthread_mutex_lock(&t->mu);
			if (t->qtail)
				t->qtail->next = head;
			else
				t->qhead = head;
			for (t->qtail = head; t->qtail->next; t->qtail = t->qtail->next)
				;
			pthread_mutex_unlock(&t->mu);
			ev_async_send(t->loop, &t->async);
		}
	}
	return NULL;
}

/* ---- loop ------------------------------------------------------------------ */

static void note_heartbeat(struct ltail *t, const struct ltail_item *it)
{
	char name[64];
	size_t n = it->klen - 3;
	json_t *v;
	int64_t ts;
	int i;

	if (!it->has_value || n == 0 || n >= sizeof name)
		return;
	memcpy(name, it->key + 3, n);
	name[n] = '\0';
	v = json_loadb(it->value, it->vlen, 0, NULL);
	ts = json_is_integer(json_object_get(v, "ts")) ? (int64_t)json_integer_value(json_object_get(v, "ts"))
						       : it->ts_ms;
	json_decref(v);
	for (i = 0; i < t->npeers; i++)
		if (strcmp(t->peers[i].name, name) == 0)
			break;
	if (i == t->npeers) {
		if (i == LTAIL_MAX_PEERS)
			return;
		t->npeers++;
		snprintf(t->peers[i].name, sizeof t->peers[i].name, "%s", name);
	}
	if (ts >= t->peers[i].ts_ms) {
		t->peers[i].ts_ms = ts;
		t->peers[i].seen_mono = util_mono_ms();
	}
}

static void request(struct ltail *t)
{
	if (t->cq)
		rd_kafka_queue_yield(t->cq);
}

/* Barrier `seq` passed: call back every waiter parked for it or before. */
static void barrier_passed(struct ltail *t, uint64_t seq)
{
	int64_t now_us = util_mono_us();
	t->barriers++;
	while (t->whead && t->whead->seq <= seq) {
		struct ltail_waiter *w = t->whead;
		t->whead = w->next;
		if (!t->whead)
			t->wtail = NULL;
		w->next = NULL;
		t->waiters++;
		t->parked--;
		hist_record(&t->lat, (uint64_t)(now_us - w->parked_us));
		w->cb(w, 1);
	}
}

static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct ltail *t = container_of(w, struct ltail, async);
	struct ltail_item *it, *next;
	(void)loop;
	(void)revents;
	pthread_mutex_lock(&t->mu);
	it = t->qhead;
	t->qhead = t->qtail = NULL;
	pthread_mutex_unlock(&t->mu);
	for (; it; it = next) {
		next = it->next;
		if (it->mark) {
			barrier_passed(t, it->seq);
		} else if (it->klen >= 3 && memcmp(it->key, "hb/", 3) == 0) {
			note_heartbeat(t, it);
		} else {
			int n = ledger_apply_record(t->ledger, it->key, it->klen,
						    it->has_value ? it->value : NULL, it->vlen, it->ts_ms);
			if (n < 0)
				log_warn("ltail", "state topic %s: a malformed ledger record was skipped", t->topic);
			else
				t->records++;
		}
		free(it);
	}
}

void ltail_wait(struct ltail *t, struct ltail_waiter *w)
{
	int fresh;
	w->next = NULL;
	w->parked_us = util_mono_us();
	/* Join the newest barrier while its ListOffsets has not begun (it will
	 * be later than this arrival); else ask for a new one. */
	pthread_mutex_lock(&t->mu);
	fresh = t->req_seq == t->taken_seq;
	if (fresh)
		t->req_seq++;
	w->seq = t->req_seq;
	pthread_mutex_unlock(&t->mu);
	if (t->wtail)
		t->wtail->next = w;
	else
		t->whead = w;
	t->wtail = w;
	t->parked++;
	if (fresh)
		request(t);
}

int ltail_busy(const struct ltail *t)
{
	return t && t->whead;
}

static void gate_cb(struct ltail_waiter *w, int ok)
{
	struct ltail_gate *g = container_of(w, struct ltail_gate, w);
	g->state = ok ? LTAIL_GATE_PASSED : LTAIL_GATE_STOPPED;
	g->cb(g, ok);
}

int ltail_gate_pass(struct ltail *t, struct ltail_gate *g, ltail_gate_cb cb)
{
	if (!t || g->state == LTAIL_GATE_PASSED)
		return 1;
	if (g->state == LTAIL_GATE_CLOSED) {
		g->state = LTAIL_GATE_PARKED;
		g->cb = cb;
		g->w.cb = gate_cb;
		ltail_wait(t, &g->w);
	}
	return 0;
}

void ltail_gate_reset(struct ltail_gate *g)
{
	g->state = LTAIL_GATE_CLOSED;
}

struct ltail *ltail_new(const struct ltail_conf *c, rd_kafka_t *consumer,
			rd_kafka_topic_partition_list_t *ends, char *errstr, size_t errstr_size)
{
	struct ltail *t = calloc(1, sizeof *t);
	rd_kafka_conf_t *hc = NULL;
	char err[512];

	if (!t) {
		util_seterr(errstr, errstr_size, "out of memory");
		goto fail;
	}
	t->loop = c->loop;
	t->ledger = c->ledger;
	snprintf(t->instance, sizeof t->instance, "%s", c->instance);
	snprintf(t->topic, sizeof t->topic, "%s", c->state_topic);
	pthread_mutex_init(&t->mu, NULL);
	hist_init(&t->lat);
	if (getenv("HL7BRIDGE_TEST_TAIL_LAG_MS"))
		t->test_lag_ms = atoi(getenv("HL7BRIDGE_TEST_TAIL_LAG_MS"));
	t->rk = consumer;
	consumer = NULL;
	t->nparts = ends->cnt;
	t->pos = calloc((size_t)t->nparts + 1, sizeof *t->pos);
	t->targets = calloc((size_t)LTAIL_MAX_TARGETS * (size_t)(t->nparts + 1), sizeof *t->targets);
	if (!t->pos || !t->targets) {
		util_seterr(errstr, errstr_size, "out of memory");
		goto fail;
	}
	for (int p = 0; p < ends->cnt; p++)
		if (ends->elems[p].partition >= 0 && ends->elems[p].partition < t->nparts)
			t->pos[ends->elems[p].partition] = ends->elems[p].offset;
	/* The end offsets: read_uncommitted, so the high watermark. */
	hc = rd_kafka_conf_dup(c->kafka);
	if (rd_kafka_conf_set(hc, "isolation.level", "read_uncommitted", err, sizeof err) ||
	    rd_kafka_conf_set(hc, "group.id", "hl7bridge-ledger-tail", err, sizeof err) ||
	    rd_kafka_conf_set(hc, "enable.auto.commit", "false", err, sizeof err)) {
		util_seterr(errstr, errstr_size, "ledger tail config: %s", err);
		goto fail;
	}
	t->hw = kconf_client_take(RD_KAFKA_CONSUMER, hc, err, sizeof err);
	hc = NULL;
	if (!t->hw) {
		util_seterr(errstr, errstr_size, "ledger tail: %s", err);
		goto fail;
	}
	t->cq = rd_kafka_queue_get_consumer(t->rk);
	ev_async_init(&t->async, async_cb);
	ev_async_start(t->loop, &t->async);
	if (pthread_create(&t->th, NULL, tail_main, t) != 0) {
		util_seterr(errstr, errstr_size, "ledger tail: cannot start its thread");
		goto fail;
	}
	t->started = 1;
	rd_kafka_topic_partition_list_destroy(ends);
	return t;
fail:
	if (hc)
		rd_kafka_conf_destroy(hc);
	if (consumer) {
		rd_kafka_consumer_close(consumer);
		rd_kafka_destroy(consumer);
	}
	rd_kafka_topic_partition_list_destroy(ends);
	ltail_free(t);
	return NULL;
}

void ltail_free(struct ltail *t)
{
	struct ltail_waiter *w, *next;
	if (!t)
		return;
	if (t->started) {
		atomic_store(&t->stop, 1);
		if (t->cq)
			rd_kafka_queue_yield(t->cq);
		pthread_join(t->th, NULL);
	}
	if (t->loop)
		ev_async_stop(t->loop, &t->async);
	for (struct ltail_item *it = t->qhead, *n; it; it = n) {
		n = it->next;
		free(it);
	}
	/* Waiters get no decision: the caller answers them without one. */
	w = t->whead;
	t->whead = t->wtail = NULL;
	for (; w; w = next) {
		next = w->next;
		w->next = NULL;
		w->cb(w, 0);
	}
	if (t->cq)
		rd_kafka_queue_destroy(t->cq);
	if (t->rk) {
		rd_kafka_consumer_close(t->rk);
		rd_kafka_destroy(t->rk);
	}
	if (t->hw)
		rd_kafka_destroy(t->hw);
	free(t->pos);
	free(t->targets);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

void ltail_get_stats(const struct ltail *t, struct ltail_stats *out)
{
	memset(out, 0, sizeof *out);
	if (!t)
		return;
	out->barriers = t->barriers;
	out->waiters = t->waiters;
	out->records = t->records;
	out->parked = t->parked;
	out->query_errors = atomic_load(&((struct ltail *)t)->query_errors);
	out->barrier_p50_us = hist_quantile(&t->lat, 0.5);
	out->barrier_p99_us = hist_quantile(&t->lat, 0.99);
	out->barrier_max_us = hist_max_us(&t->lat);
}

int ltail_peer(const struct ltail *t, const char *instance, int64_t *ts_ms, int64_t *seen_mono_ms)
{
	for (int i = 0; t && i < t->npeers; i++)
		if (strcmp(t->peers[i].name, instance) == 0) {
			if (ts_ms)
				*ts_ms = t->peers[i].ts_ms;
			if (seen_mono_ms)
				*seen_mono_ms = t->peers[i].seen_mono;
			return 1;
		}
	return 0;
}

const char *ltail_peer_name(const struct ltail *t, int i)
{
	return t && i >= 0 && i < t->npeers ? t->peers[i].name : NULL;
}

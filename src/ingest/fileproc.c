/* fileproc — a drop's worker thread: read a claimed file, publish its
 * messages in slices with the file's progress in the ledger (mapped by
 * several threads for large files), report, move. */
#include "ingest/filedrop_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "digest.h"
#include "fate.h"
#include "log.h"
#include "map/input.h"
#include "publish/records.h"
#include "util.h"

struct slice {
	struct drop *d;
	uint8_t key[LEDGER_KEY_LEN];
	uint32_t next_index, total;
	int done;
};

/* One file in progress. Its messages are cut into slices of
 * max.messages.per.transaction (slice k holds messages k*n .. k*n+n-1), each
 * published as one job with the file's progress (next_index) in the ledger.
 * Several shards (threads) map the slices in turn, shard i taking the slices
 * k with k % nshards == i; the slices are submitted in order, to one lane,
 * so they commit in order and next_index only grows. */
struct fstate {
	struct drop *d;
	const char *name;
	const char *buf;
	size_t len;
	int64_t now_ms;
	uint8_t key[LEDGER_KEY_LEN];
	char hex[2 * LEDGER_KEY_LEN + 1];
	size_t resume_at;        /* messages committed before a crash */
	size_t next_slice;       /* under d->mu: the slice to submit next */
	atomic_int stopped;      /* stop requested, a slice failed, or memory */
	atomic_size_t mapped;    /* messages mapped so far (progress lines) */
	ssize_t total;           /* messages in the file: -1 unknown, -2 not counted yet */
	int64_t started_ms, last_progress_ms;
};

/* One thread's share of a file. */
struct shard {
	struct fstate *f;
	struct map_input_shard part;
	pthread_t thread;
	struct evenc *enc;       /* the drop's for shard 0, else own (own_enc) */
	struct evenc own_enc;
	struct pub_job *job;     /* the slice being filled */
	json_t *errors;          /* report entries */
	uint64_t published, events, dead, filtered, duplicates;
	size_t count;            /* messages in the file */
	/* message.dedup: this shard's messages published before (by any path),
	 * ascending, found before its first message is mapped */
	size_t *dups, ndups, dup_at;
	int record_keys;         /* record each message's key with its slice */
	int rc;
	char err[512];
};

/* The slice's message keys are committed: a resend over MLLP, or the same
 * message in another file, is now answered from the ledger. A key still in
 * flight on another path is left to its owner. */
static void learn_msg_keys(struct ledger *l, const struct pub_job *job)
{
	int n;
	const struct ledger_entry *k = pub_job_msg_keys(job, &n);
	for (int i = 0; i < n; i++) {
		struct ledger_entry *e = ledger_upsert(l, k[i].key, LEDGER_MSG);
		if (!e || e->state != LEDGER_ABSENT)
			continue;
		e->state = LEDGER_COMMITTED;
		e->ts_ms = k[i].ts_ms;
		memcpy(e->ack, k[i].ack, sizeof e->ack);
	}
}

static void slice_done_cb(struct pub_job *job, enum pub_status st, const char *reason, void *opaque)
{
	struct slice *s = opaque;
	struct drop *d = s->d;
	/* On the loop thread: the ledger is ours here. */
	if (st == PUB_COMMITTED) {
		struct ledger_entry *e = ledger_upsert(d->env.ledger, s->key, LEDGER_FILE);
		if (e) {
			e->state = LEDGER_COMMITTED;
			e->ts_ms = util_wall_ms();
			if (s->next_index > e->next_index || s->done)
				e->next_index = s->next_index;
			e->total = s->total;
			e->done = (uint8_t)(s->done || e->done);
		}
		learn_msg_keys(d->env.ledger, job);
	} else {
		log_error("drop", "%s: a slice was not committed (%s); the file stays in work/ and "
				  "resumes at the next start",
			  d->c.name, reason);
	}
	pub_job_free(job);
	pthread_mutex_lock(&d->mu);
	d->inflight--;
	if (st != PUB_COMMITTED)
		d->slice_failed = 1;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	free(s);
}

static void stop_file(struct fstate *f)
{
	struct drop *d = f->d;
	atomic_store(&f->stopped, 1);
	pthread_mutex_lock(&d->mu);
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

/* Submit the shard's slice `slice` (creating an empty job to carry the final
 * progress if needed) once the slices before it are submitted; the final one
 * (done) goes after everything. Blocks while max_inflight slices await their
 * commit. Returns -1 when stopping or a slice failed. */
static int submit_slice(struct shard *sh, size_t slice, uint32_t next_index, uint32_t total,
			int done)
{
	struct fstate *f = sh->f;
	struct drop *d = f->d;
	struct slice *s = calloc(1, sizeof *s);
	struct ledger_entry le;
	if (!s)
		return -1;
	s->d = d;
	memcpy(s->key, f->key, LEDGER_KEY_LEN);
	s->next_index = next_index;
	s->total = total;
	s->done = done;
	if (!sh->job)
		sh->job = pub_job_new(slice_done_cb, s);
	else
		pub_job_set_cb(sh->job, slice_done_cb, s);
	memset(&le, 0, sizeof le);
	memcpy(le.key, f->key, LEDGER_KEY_LEN);
	le.kind = LEDGER_FILE;
	le.next_index = next_index;
	le.total = total;
	le.done = (uint8_t)done;
	if (sh->job)
		pub_job_set_ledger(sh->job, &le);

	pthread_mutex_lock(&d->mu);
	for (;;) {
		if (!sh->job || d->slice_failed || (d->stop && !done) || atomic_load(&f->stopped) ||
		    pub_fatal(d->env.pub, NULL, 0)) {
			pthread_mutex_unlock(&d->mu);
			pub_job_free(sh->job);
			free(s);
			sh->job = NULL;
			if (!atomic_load(&f->stopped))
				stop_file(f);
			return -1;
		}
		if ((!done && f->next_slice != slice) || d->inflight >= d->c.max_inflight) {
			pthread_cond_wait(&d->cv, &d->mu);
			continue;
		}
		uint64_t origin;
		memcpy(&origin, f->key, sizeof origin); /* one file, one lane: slices commit in order */
		if (pub_submit(d->env.pub, origin, sh->job) == 0)
			break;
		/* the publisher is full: wait for completions */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&d->cv, &d->mu, &ts);
	}
	d->inflight++;
	f->next_slice = slice + 1;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	sh->job = NULL;
	return 0;
}

static void report_error(struct shard *sh, const struct map_item *it, int code, const char *reason)
{
	json_t *e = json_pack("{s:I, s:I, s:i, s:s}", "index", (json_int_t)it->index, "offset",
			      (json_int_t)it->offset, "code", code, "reason", reason);
	if (it->line)
		json_object_set_new(e, "line", json_integer((json_int_t)it->line));
	json_array_append_new(sh->errors, e);
}

struct evctx {
	struct shard *sh;
	const char *origin;
	int failed;
	char err[256];
};

static int add_event_cb(const struct map_event *ev, void *opaque)
{
	struct evctx *x = opaque;
	if (evenc_add(x->sh->enc, x->sh->job, ev, x->origin, x->err, sizeof x->err) != 0) {
		x->failed = 1;
		return -1;
	}
	x->sh->events++;
	return 0;
}

static int dead_letter(struct shard *sh, const struct map_item *it, const char *stage, int code,
		       const char *reason, const char *origin, const char *msgid)
{
	struct drop *d = sh->f->d;
	char cs[16];
	snprintf(cs, sizeof cs, "%d", code);
	sh->dead++;
	/* cut to fit when larger than the topic takes (hl7bridge-truncated) */
	return records_add_deadletter_fit(sh->job, pub_record_room(d->env.pub, d->dl_topic),
					  d->dl_topic, it->raw, it->raw_len, it->content_type, stage,
					  cs, reason, &(struct rec_origin){ origin, msgid });
}

/* Carry out the message's fate (fate.c decides, as for MLLP and FHIR over
 * HTTP): rejections are reported; dead letters as the fate says. */
static int settle(struct shard *sh, const struct map_item *it, const struct fate *f, int code,
		  const char *reason, const char *origin)
{
	if (f->kind == FATE_PUBLISH) {
		sh->published++;
		return 0;
	}
	if (f->kind == FATE_FILTER)
		sh->filtered++;
	else
		report_error(sh, it, code, reason);
	if (!f->deadletter)
		return 0;
	return dead_letter(sh, it, f->stage, code, reason, origin, it->in ? it->in->message_id : NULL);
}

/* item_cb's answers besides 0 (go on): stop for now (shutdown, a slice
 * failed), or fail this file (memory, encoding). Either way the file stays
 * in work/ and resumes at the next start. */
#define ITEM_STOP 1
#define ITEM_FAIL 2

static void progress(struct shard *sh, const struct map_item *it)
{
	struct fstate *f = sh->f;
	size_t n = atomic_fetch_add(&f->mapped, 1) + 1;
	if (sh->part.mine != 0)
		return; /* one thread writes the progress lines */
	int64_t now = util_mono_ms();
	if (now - f->last_progress_ms >= f->d->c.progress_ms) {
		double secs = (double)(now - f->started_ms) / 1000.0;
		double rate = secs > 0 ? (double)n / secs : 0.0;
		/* counted once, for a file that lasts long enough to report */
		if (f->total == -2)
			f->total = map_input_count(f->buf, f->len);
		if (f->total > 0)
			log_info("drop", "%s: %s: %zu of %zd messages (%.0f%%), %.0f msg/s",
				 f->d->c.name, f->name, f->resume_at + n, f->total,
				 100.0 * (double)(f->resume_at + n) / (double)f->total, rate);
		else
			log_info("drop", "%s: %s: %zu messages so far, %.0f%% of its bytes, %.0f msg/s",
				 f->d->c.name, f->name, f->resume_at + n,
				 f->len ? 100.0 * (double)it->offset / (double)f->len : 100.0, rate);
		f->last_progress_ms = now;
	}
}

/* A message committed before (a crash, or another path): its report
 * entry rebuilt, nothing published. */
static void report_again(struct shard *sh, const struct map_item *it)
{
	struct drop *d = sh->f->d;
	struct map_reject rej;
	enum map_result r;
	memset(&rej, 0, sizeof rej);
	if (!it->in)
		report_error(sh, it, it->err_code, it->error);
	else if ((r = map_apply(d->maps, it->in, 0, NULL, NULL, NULL, &rej)) != MAP_OK &&
		 fate_decide(&(struct fate_policy){ d->c.deadletter, d->c.unmatched }, 1, r).kind >=
			 FATE_REJECT)
		report_error(sh, it, rej.err_code, rej.reason);
}

static int is_dup(struct shard *sh, size_t index)
{
	while (sh->dup_at < sh->ndups && sh->dups[sh->dup_at] < index)
		sh->dup_at++;
	return sh->dup_at < sh->ndups && sh->dups[sh->dup_at] == index;
}

/* The answer an MLLP sender would have got for a message of this fate (the
 * ledger keeps it for a resend). */
static const char *fate_ack(enum fate_kind k)
{
	return k == FATE_REJECT ? "AE" : k == FATE_REFUSE ? "AR" : "AA";
}

static int item_cb(const struct map_item *it, void *opaque)
{
	struct shard *sh = opaque;
	struct fstate *f = sh->f;
	struct drop *d = f->d;
	struct map_reject rej;
	char origin[512];
	enum map_result r;

	memset(&rej, 0, sizeof rej);
	if (it->index < f->resume_at) {
		report_again(sh, it); /* committed before a crash */
		return 0;
	}
	if (d->stop || atomic_load(&f->stopped))
		return ITEM_STOP;
	if (!sh->job) {
		sh->job = pub_job_new(slice_done_cb, NULL);
		if (!sh->job)
			return ITEM_FAIL;
	}
	snprintf(origin, sizeof origin, "file:%s:%s#%zu", d->c.name, f->name, it->index);
	struct fate_policy pol = { d->c.deadletter, d->c.unmatched };
	if (is_dup(sh, it->index)) {
		/* published before (MLLP, another file, another instance): decided
		 * again for the report, nothing published */
		sh->duplicates++;
		report_again(sh, it);
	} else if (!it->in) {
		struct fate fa = fate_decide(&pol, 0, MAP_ERROR);
		if (settle(sh, it, &fa, it->err_code, it->error, origin) != 0)
			return ITEM_FAIL;
	} else {
		struct evctx x = { sh, origin, 0, "" };
		int n0 = pub_job_count(sh->job), too_large = 0;
		uint64_t ev0 = sh->events;
		char why[160], reason[256];
		const char *raw_topic = strcmp(it->content_type, "application/hl7-v2") == 0 ? d->raw_hl7
											      : d->raw_fhir;
		r = map_apply(d->maps, it->in, 0, add_event_cb, &x, NULL, &rej);
		if (x.failed) {
			/* Part of this message's events may be in the slice: do not commit
			 * it. The file stays in work/ and is retried at the next start. */
			log_error("drop", "%s: %s: %s; stopping this file", d->c.name, it->label, x.err);
			return ITEM_FAIL;
		}
		if (r == MAP_OK && d->env.raw)
			records_add_raw(sh->job, raw_topic, it->raw, it->raw_len, it->content_type,
					&(struct rec_origin){ origin, it->in->message_id });
		if (r == MAP_OK &&
		    pub_job_check_from(d->env.pub, sh->job, n0, why, sizeof why) != 0) {
			/* Larger than Kafka takes: never in a slice (it would never
			 * commit). Rejected like an MLLP message: 207, dead letter. */
			pub_job_truncate(sh->job, n0);
			sh->events = ev0;
			snprintf(reason, sizeof reason, "cannot be published: %s", why);
			too_large = 1;
		}
		struct fate fa = too_large ? (struct fate){ .kind = FATE_REJECT,
							    .deadletter = pol.deadletter,
							    .stage = "publish",
							    .count = FATE_COUNT_REJECTED_MAP }
					   : fate_decide(&pol, 1, r);
		if (settle(sh, it, &fa, too_large ? 207 : rej.err_code, too_large ? reason : rej.reason,
			   origin) != 0)
			return ITEM_FAIL;
		if (sh->record_keys &&
		    pub_job_add_msg_key(sh->job, it->in->ledger_key, fate_ack(fa.kind)) != 0)
			return ITEM_FAIL;
		if (d->env.raw && (r != MAP_OK || too_large)) /* not published: cut to fit */
			records_add_raw_fit(sh->job, pub_record_room(d->env.pub, raw_topic), raw_topic,
					    it->raw, it->raw_len, it->content_type,
					    &(struct rec_origin){ origin, it->in->message_id });
	}
	size_t per = (size_t)d->c.max_per_txn;
	if ((it->index + 1) % per == 0 &&
	    submit_slice(sh, it->index / per, (uint32_t)(it->index + 1), 0, 0) != 0)
		return ITEM_STOP;
	progress(sh, it);
	return 0;
}

/* ---- message.dedup: which of a shard's messages were published before ---- */

struct keys {
	const struct fstate *f;
	uint8_t *keys;
	size_t *idx;
	size_t n, cap;
};

static int key_cb(const struct map_item *it, void *opaque)
{
	struct keys *k = opaque;
	if (it->index < k->f->resume_at || !it->in)
		return 0;
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 1024;
		uint8_t *keys = realloc(k->keys, cap * LEDGER_KEY_LEN);
		if (keys)
			k->keys = keys;
		size_t *idx = realloc(k->idx, cap * sizeof *idx);
		if (idx)
			k->idx = idx;
		if (!keys || !idx)
			return ITEM_FAIL;
		k->cap = cap;
	}
	memcpy(k->keys + k->n * LEDGER_KEY_LEN, it->in->ledger_key, LEDGER_KEY_LEN);
	k->idx[k->n++] = it->index;
	return 0;
}

/* Read the shard's HL7v2 messages once for their keys (split and parse, no
 * mapping) and ask the ledger which were committed, by any path. */
static int find_dups(struct shard *sh)
{
	struct fstate *f = sh->f;
	struct keys k = { .f = f };
	char err[64];
	uint8_t *hits = NULL;
	int rc = map_input_items_shard(f->name, f->buf, f->len, f->now_ms, &sh->part, key_cb, &k,
				       NULL, err, sizeof err);
	if (rc == ITEM_FAIL)
		goto out; /* memory */
	rc = 0; /* an input that breaks off is reported by the publishing pass */
	if (k.n && !(hits = calloc(k.n, 1)))
		rc = ITEM_FAIL;
	else if (k.n && drop_ledger_committed(f->d, k.keys, k.n, hits) != 0)
		rc = ITEM_STOP;
	for (size_t i = 0; rc == 0 && i < k.n; i++)
		if (hits[i])
			k.idx[sh->ndups++] = k.idx[i];
	if (rc == 0 && sh->ndups) {
		sh->dups = k.idx;
		k.idx = NULL;
	}
out:
	free(hits);
	free(k.keys);
	free(k.idx);
	return rc;
}

static void run_shard(struct shard *sh)
{
	struct fstate *f = sh->f;
	if (sh->record_keys && (sh->rc = find_dups(sh)) != 0) {
		stop_file(f);
		return;
	}
	sh->rc = map_input_items_shard(f->name, f->buf, f->len, f->now_ms, &sh->part, item_cb, sh,
				       &sh->count, sh->err, sizeof sh->err);
	if (sh->rc == ITEM_STOP || sh->rc == ITEM_FAIL)
		stop_file(f);
}

static void *shard_main(void *arg)
{
	run_shard(arg);
	map_thread_release(); /* this thread's mapping scratch memory */
	return NULL;
}

/* ---- files ------------------------------------------------------------------ */

/* Totals of a file's shards. */
struct outcome {
	size_t items;
	uint64_t published, events, dead, filtered, duplicates;
	json_t *errors; /* by index */
	int rc;         /* 0, -1 (the input broke off: err), or stopped */
	int stopped;
	char err[512];
};

static int by_index(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "index"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "index"));
	return (x > y) - (x < y);
}

/* The shards' reports as one, in message order. */
static json_t *merge_errors(struct shard *sh, unsigned n)
{
	size_t total = 0, k = 0;
	for (unsigned i = 0; i < n; i++)
		total += json_array_size(sh[i].errors);
	json_t **all = malloc((total ? total : 1) * sizeof *all);
	json_t *out = json_array();
	if (!all)
		return out;
	for (unsigned i = 0; i < n; i++)
		for (size_t j = 0; j < json_array_size(sh[i].errors); j++)
			all[k++] = json_array_get(sh[i].errors, j);
	qsort(all, total, sizeof *all, by_index);
	for (k = 0; k < total; k++)
		json_array_append(out, all[k]);
	free(all);
	return out;
}

/* How many threads map this file: small files and inputs that cannot be
 * sharded get one. */
static unsigned shards_for(const struct drop *d, const struct fstate *f)
{
	if (d->c.threads <= 1 || f->len < DROP_SHARD_MIN_BYTES || !map_input_shardable(f->buf, f->len))
		return 1;
	return (unsigned)d->c.threads;
}

/* Publish the file's messages from resume_at on, slice by slice, then the
 * final slice that marks it done (unless stopped). */
static void publish(struct fstate *f, unsigned n, struct outcome *o)
{
	struct drop *d = f->d;
	unsigned started = 1;
	struct shard *sh = calloc(n, sizeof *sh);

	memset(o, 0, sizeof *o);
	if (!sh) {
		o->stopped = 1;
		o->errors = json_array();
		return;
	}
	f->next_slice = f->resume_at / (size_t)d->c.max_per_txn;
	for (unsigned i = 0; i < n; i++) {
		sh[i].f = f;
		sh[i].part = (struct map_input_shard){ (size_t)d->c.max_per_txn, n, i };
		sh[i].errors = json_array();
		sh[i].enc = &d->enc;
		sh[i].record_keys = d->c.msg_dedup && map_input_is_hl7(f->buf, f->len);
		if (i > 0) {
			if (evenc_copy(&sh[i].own_enc, &d->enc) != 0 ||
			    pthread_create(&sh[i].thread, NULL, shard_main, &sh[i]) != 0) {
				evenc_clear(&sh[i].own_enc);
				log_error("drop", "%s: %s: cannot start a mapping thread; the file stays "
						  "in work/", d->c.name, f->name);
				stop_file(f);
				break;
			}
			sh[i].enc = &sh[i].own_enc;
			started++;
		}
	}
	if (started == n)
		run_shard(&sh[0]);
	for (unsigned i = 1; i < started; i++)
		pthread_join(sh[i].thread, NULL);

	struct pub_job *last = NULL;
	for (unsigned i = 0; i < started; i++) {
		o->items = sh[i].count > o->items ? sh[i].count : o->items;
		o->published += sh[i].published;
		o->events += sh[i].events;
		o->dead += sh[i].dead;
		o->filtered += sh[i].filtered;
		o->duplicates += sh[i].duplicates;
		free(sh[i].dups);
		if (sh[i].rc == -1 && o->rc == 0) {
			o->rc = -1;
			snprintf(o->err, sizeof o->err, "%s", sh[i].err);
		}
		/* the last, partial slice: one shard holds it */
		if (sh[i].job && !last)
			last = sh[i].job;
		else
			pub_job_free(sh[i].job);
		if (i > 0)
			evenc_clear(&sh[i].own_enc);
	}
	o->errors = merge_errors(sh, started);
	for (unsigned i = 0; i < n; i++)
		json_decref(sh[i].errors);
	o->stopped = atomic_load(&f->stopped) || started < n;
	if (o->stopped) {
		pub_job_free(last);
	} else {
		/* Read to the end (rc 0), or the input broke off at some point (rc
		 * -1: the file goes to error/ with what was published before):
		 * either way the final slice records the file as done, so the same
		 * bytes dropped again publish nothing. */
		struct shard fin = { .f = f, .job = last };
		if (submit_slice(&fin, 0, (uint32_t)o->items, (uint32_t)o->items, 1) != 0)
			o->stopped = 1;
	}
	free(sh);
}

static void process(struct drop *d, const char *path)
{
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	struct fstate f;
	struct outcome o = { 0 };
	struct ledger_entry le;
	struct drop_file df;
	char why[512], chex[2 * LEDGER_KEY_LEN + 1], cut_why[256];
	long long cbytes = 0;
	int found, r;

	memset(&f, 0, sizeof f);
	f.d = d;
	f.name = name;
	f.started_ms = f.last_progress_ms = util_mono_ms();
	f.total = -2;
	r = drop_file_open(d, path, &df, why, sizeof why);
	if (r > 0) {
		log_warn("drop", "%s: %s left work/ before it was read", d->c.name, name);
		drop_claim_remove(d, name);
		goto out;
	}
	if (r < 0) {
		drop_refuse(d, path, name, &df, why);
		goto out;
	}
	f.buf = df.buf;
	f.len = df.len;
	{
		unsigned int n = 0;
		EVP_Digest(f.buf, f.len, f.key, &n, digest_sha256(), NULL);
		for (size_t i = 0; i < LEDGER_KEY_LEN; i++)
			snprintf(f.hex + 2 * i, 3, "%02x", f.key[i]);
	}
	/* What was claimed, recorded before anything is published: a file that
	 * changed since (after a crash) is recognised, not published again. */
	if (drop_claim_load(d, name, chex, &cbytes)) {
		if (strcmp(chex, f.hex) != 0) {
			drop_changed_after_claim(d, path, name, f.hex, f.len, chex, cbytes);
			goto out;
		}
	} else if (drop_claim_save(d, name, f.hex, f.len, why, sizeof why) != 0) {
		log_warn("drop", "%s: %s: cannot write its claim record (%s); a change to it in work/ "
				 "after a crash would not be recognised",
			 d->c.name, name, why);
	}
	found = drop_ledger_query(d, f.key, &le);
	if (found < 0)
		goto out;
	if (found && le.done) {
		json_t *j = json_pack("{s:s, s:s, s:s, s:I}", "file", name, "sha256", f.hex, "note",
				      "identical content was published before; nothing was published again",
				      "messages", (json_int_t)le.total);
		drop_finish(d, path, d->done, name, f.hex, j, ".note.json");
		json_decref(j);
		pthread_mutex_lock(&d->mu);
		d->stats.files_duplicate++;
		pthread_mutex_unlock(&d->mu);
		log_info("drop", "%s: %s (sha256 %.12s) was published before; moved to done/ with a note",
			 d->c.name, name, f.hex);
		goto out;
	}
	if (found) {
		f.resume_at = le.next_index;
		pthread_mutex_lock(&d->mu);
		d->stats.files_resumed++;
		pthread_mutex_unlock(&d->mu);
		log_info("drop", "%s: %s resumes at message %zu", d->c.name, name, f.resume_at);
	}
	/* A file cut short (a full disk): its incomplete last message is left
	 * out and the file goes to error/. The key stays that of all its bytes. */
	size_t whole = map_input_complete(f.buf, f.len, cut_why, sizeof cut_why);
	int cut = whole < f.len;
	f.len = whole;
	unsigned shards = shards_for(d, &f);
	log_info("drop", "%s: publishing %s (%zu bytes, sha256 %.12s, %u mapping thread%s)", d->c.name,
		 name, df.len, f.hex, shards, shards > 1 ? "s" : "");
	f.now_ms = util_wall_ms();
	publish(&f, shards, &o);

	pthread_mutex_lock(&d->mu);
	while (d->inflight > 0)
		pthread_cond_wait(&d->cv, &d->mu);
	int failed = d->slice_failed;
	d->slice_failed = 0;
	pthread_mutex_unlock(&d->mu);
	if (failed || o.stopped)
		goto out; /* stays in work/ */
	{
		double secs = (double)(util_mono_ms() - f.started_ms) / 1000.0;
		size_t nerr = json_array_size(o.errors);
		int changed = drop_file_changed(&df);
		json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:O}", "file", name, "sha256",
				      f.hex, "messages", (json_int_t)o.items, "published",
				      (json_int_t)o.published, "events", (json_int_t)o.events,
				      "dead_lettered", (json_int_t)o.dead, "filtered",
				      (json_int_t)o.filtered, "errors", o.errors);
		if (o.duplicates) /* message.dedup */
			json_object_set_new(j, "duplicates", json_integer((json_int_t)o.duplicates));
		const char *err = changed ? "changed in work/ while it was published; what was "
					    "published is its content as read (sha256 above)"
				  : cut ? cut_why
				  : o.rc < 0 ? o.err : NULL;
		if (cut)
			json_object_set_new(j, "incomplete_at", json_integer((json_int_t)whole));
		if (err)
			json_object_set_new(j, "error", json_string(err));
		int bad = err != NULL;
		/* a report for errors; else a note when messages were skipped as
		 * published before */
		if (!bad && nerr == 0 && o.duplicates)
			json_object_set_new(j, "note", json_string("messages published before (over "
								   "MLLP, in another file or by "
								   "another instance) were not "
								   "published again"));
		int to = drop_finish(d, path, bad ? d->error : d->done, name, f.hex,
				     (bad || nerr > 0 || o.duplicates) ? j : NULL,
				     (bad || nerr > 0) ? ".errors.json" : ".note.json");
		bad = bad || to == 1;
		json_decref(j);
		pthread_mutex_lock(&d->mu);
		if (bad)
			d->stats.files_error++;
		else
			d->stats.files_done++;
		d->stats.messages += o.items - f.resume_at;
		d->stats.events += o.events;
		d->stats.rejected += nerr;
		d->stats.deadlettered += o.dead;
		d->stats.filtered += o.filtered;
		d->stats.duplicates += o.duplicates;
		d->stats.bytes += f.len;
		pthread_mutex_unlock(&d->mu);
		if (err)
			log_warn("drop", "%s: %s: %s; %zu messages read (published or reported); moved to "
					 "error/",
				 d->c.name, name, err, o.items);
		else if (bad)
			log_warn("drop", "%s: %s: %zu messages, %llu events, %zu rejected; in error/ as its "
					 "report is lost",
				 d->c.name, name, o.items, (unsigned long long)o.events, nerr);
		else
			log_info("drop", "%s: %s done: %zu messages, %llu events, %zu rejected, %llu "
					 "published before, %.1f MB/s (%.1f s)",
				 d->c.name, name, o.items, (unsigned long long)o.events, nerr,
				 (unsigned long long)o.duplicates,
				 secs > 0 ? (double)f.len / 1e6 / secs : 0.0, secs);
	}
out:
	json_decref(o.errors);
	drop_file_close(&df);
}

void *drop_worker_main(void *arg)
{
	struct drop *d = arg;
	for (;;) {
		char *path;
		pthread_mutex_lock(&d->mu);
		while (!d->stop && d->nqueue == 0)
			pthread_cond_wait(&d->cv, &d->mu);
		if (d->stop) {
			pthread_mutex_unlock(&d->mu);
			break;
		}
		path = d->queue[0];
		memmove(d->queue, d->queue + 1, (size_t)(d->nqueue - 1) * sizeof d->queue[0]);
		d->nqueue--;
		d->busy = 1;
		int reload = d->reload;
		d->reload = 0;
		pthread_mutex_unlock(&d->mu);
		if (reload) {
			struct map_diag diag = { 0 };
			char err[512];
			struct map_set *m = map_set_load(d->c.mappings, d->c.schemas, &diag);
			struct evenc ne = { 0 };
			if (m)
				map_set_topic_prefix(m, d->prefix);
			if (m && evenc_init(&ne, d->env.format, m, d->env.reg, err, sizeof err) == 0) {
				evenc_clear(&d->enc);
				d->enc = ne;
				map_set_free(d->maps);
				d->maps = m;
				log_info("drop", "%s: mappings reloaded", d->c.name);
			} else {
				log_error("drop", "%s: reload refused, keeping the current mappings", d->c.name);
				map_set_free(m);
			}
			map_diag_clear(&diag);
		}
		process(d, path);
		free(path);
		pthread_mutex_lock(&d->mu);
		d->busy = 0;
		pthread_mutex_unlock(&d->mu);
		ev_async_send(d->loop, &d->async); /* claim the next file */
	}
	map_thread_release(); /* this thread's mapping scratch memory */
	return NULL;
}

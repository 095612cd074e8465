/* replay_rec — one record of a replay: see replay_int.h and replay.h. */
#include "publish/replay_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "map/input.h"
#include "publish/records.h"
#include "util.h"

const char *rp_header(const rd_kafka_message_t *m, const char *name, char *buf, size_t cap)
{
	rd_kafka_headers_t *h;
	const void *v;
	size_t n;
	if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, &n) || !v)
		return NULL;
	snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), (const char *)v);
	return buf;
}

static void replay_key(const struct rp *r, const void *key, size_t key_len,
		       uint8_t out[LEDGER_KEY_LEN])
{
	const void *parts[3] = { "replay", key, r->set_digest };
	size_t lens[3] = { 6, key_len, LEDGER_KEY_LEN };
	ledger_hash(out, r->o->republish ? 3 : 2, parts, lens);
}

/* ---- transactions: the group's offsets go with the records -------------------- */

rd_kafka_error_t *rp_before_commit_cb(rd_kafka_t *rk, const struct pub_job *batch, void *opaque)
{
	struct rp *r = opaque;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
	rd_kafka_error_t *e;
	for (const struct pub_job *j = batch; j; j = pub_job_next(j)) {
		const struct rp_job *x = pub_job_opaque(j);
		rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(l, r->topic, x->partition);
		if (!tp)
			tp = rd_kafka_topic_partition_list_add(l, r->topic, x->partition);
		if (x->offset + 1 > tp->offset)
			tp->offset = x->offset + 1;
	}
	if (r->pause_after > 0 && ++r->commits > r->pause_after) {
		/* test hook: the records of this transaction are produced and it is
		 * left open: the test kills the process here (kill -9) */
		rd_kafka_flush(rk, 10000);
		fprintf(stderr, "replay: PAUSED in an open transaction\n");
		for (;;)
			pause();
	}
	if (r->slow_ms > 0)
		usleep((useconds_t)r->slow_ms * 1000); /* test hook: a long replay */
	e = rd_kafka_send_offsets_to_transaction(rk, l, r->cgmd, RP_TIMEOUT_MS);
	rd_kafka_topic_partition_list_destroy(l);
	return e;
}

static void job_done_cb(struct pub_job *job, enum pub_status st, const char *reason, void *opaque)
{
	struct rp_job *x = opaque;
	struct rp *r = x->r;
	if (st == PUB_COMMITTED) {
		struct ledger_entry *e = x->has_key ? ledger_find(r->ledger, x->rkey) : NULL;
		if (e) {
			e->state = LEDGER_COMMITTED;
			e->owner = NULL;
		}
		if (x->published) {
			r->st.published++;
			r->st.events += x->events;
		}
	} else {
		if (x->has_key)
			ledger_remove(r->ledger, x->rkey);
		if (!r->failed)
			fprintf(stderr, "replay: not committed: %s\n", reason);
		r->failed = 1;
	}
	pub_job_free(job);
	free(x);
}

/* ---- one record --------------------------------------------------------------- */

struct rp_item_ctx {
	struct rp *r;
	struct pub_job *job;
	struct rp_job *x;
	const rd_kafka_message_t *m;
	const char *origin;
	const char *err_code; /* of the dead letter being replayed: its code, */
	const char *stage_was; /* stage */
	const char *error_was; /* and reason */
	int failed;
	int stopped;
	char err[256];
};

static int rp_event_cb(const struct map_event *ev, void *opaque)
{
	struct rp_item_ctx *c = opaque;
	if (evenc_add(&c->r->enc, c->job, ev, c->origin, c->err, sizeof c->err) != 0) {
		c->failed = 1;
		return -1;
	}
	c->x->events++;
	return 0;
}

/* Skip an input that is published already? Returns the reason or NULL. */
static const char *skip_reason(struct rp_item_ctx *c, const struct map_input *in, uint8_t rkey[])
{
	struct rp *r = c->r;
	replay_key(r, in->ledger_key, in->ledger_key_len, rkey);
	struct ledger_entry *e = ledger_find(r->ledger, rkey);
	if (e)
		return e->state == LEDGER_COMMITTED ? "replayed" : "dup";
	if (r->o->republish || in->ledger_key_len != LEDGER_KEY_LEN)
		return NULL;
	e = ledger_find(r->ledger, in->ledger_key);
	int accepted = e && e->state == LEDGER_COMMITTED && e->ack[1] == 'A';
	if (r->from_dlq)
		return accepted && !(c->err_code && strcmp(c->err_code, "200") == 0) ? "published" : NULL;
	if (accepted)
		return "published";
	return e ? NULL : "unknown";
}

static void count_skip(struct rp *r, const char *skip)
{
	if (strcmp(skip, "replayed") == 0)
		r->st.skip_replayed++;
	else if (strcmp(skip, "dup") == 0)
		r->st.skip_dup++;
	else if (strcmp(skip, "published") == 0)
		r->st.skip_published++;
	else
		r->st.skip_unknown++;
}

static int dead_letter(struct rp_item_ctx *c, const struct map_item *it, const char *stage,
		       int code, const char *reason)
{
	char cs[16];
	snprintf(cs, sizeof cs, "%d", code);
	/* A dead letter rejected again at the same stage for the same reason
	 * is already on the topic: not written again (an unreadable one cannot
	 * have changed). */
	if (c->r->from_dlq && c->stage_was && strcmp(stage, c->stage_was) == 0 &&
	    (strcmp(stage, "parse") == 0 ||
	     (c->err_code && strcmp(cs, c->err_code) == 0 && c->error_was &&
	      strcmp(reason, c->error_was) == 0))) {
		c->r->st.still_rejected++;
		return 0;
	}
	c->r->st.deadlettered++;
	if (!c->r->s.pl.deadletter)
		return 0;
	return records_add_deadletter(c->job, c->r->s.topics.deadletter, it->raw, it->raw_len,
				      it->content_type, stage, cs, reason,
				      &(struct rec_origin){ c->origin, it->in ? it->in->message_id : NULL });
}

/* Submit, waiting while the publisher is full. */
static int submit(struct rp *r, struct pub_job *job, uint64_t origin)
{
	while (pub_submit(r->pub, origin, job) != 0) {
		if (pub_fatal(r->pub, NULL, 0))
			return -1;
		pub_wait(r->pub, 100);
		pub_drain(r->pub);
	}
	return 0;
}

/* The record's (next) job, advancing the group's offset past it. */
static int new_job(struct rp_item_ctx *c)
{
	c->x = calloc(1, sizeof *c->x);
	c->job = c->x ? pub_job_new(job_done_cb, c->x) : NULL;
	if (!c->job) {
		free(c->x);
		c->x = NULL;
		return -1;
	}
	c->x->r = c->r;
	c->x->partition = c->m->partition;
	c->x->offset = c->m->offset;
	return 0;
}

/* A record holding several inputs (a batch): a job carries one ledger
 * key, so each published input gets its own. Those before the last leave
 * the group's offset at this record: after a crash it is read again and
 * the ledger skips the inputs already published. */
static int rotate(struct rp_item_ctx *c)
{
	c->x->offset = c->m->offset - 1;
	if (submit(c->r, c->job, (uint64_t)c->m->partition) != 0)
		return -1; /* the job stays c's: one_record frees it */
	c->job = NULL;
	c->x = NULL;
	return new_job(c);
}

static int publish_item(struct rp_item_ctx *c, const struct map_item *it)
{
	struct rp *r = c->r;
	struct map_reject rej;
	uint8_t rkey[LEDGER_KEY_LEN];
	const char *skip;

	r->st.inputs++;
	if (!it->in) {
		r->st.unreadable++;
		return dead_letter(c, it, "parse", it->err_code, it->error);
	}
	if ((skip = skip_reason(c, it->in, rkey))) {
		count_skip(r, skip);
		return 0;
	}
	if (c->x->has_key && rotate(c) != 0)
		return -1;
	if (*r->stop) {
		/* Ctrl-C inside a record of many inputs: what was submitted stays
		 * (it left the offset at this record); the rest is dropped and
		 * the record read again by the next run */
		c->stopped = 1;
		return -1;
	}
	memset(&rej, 0, sizeof rej);
	enum map_result res = map_apply(r->maps, it->in, 0, rp_event_cb, c,
					NULL, &rej);
	if (c->failed)
		return -1;
	if (res == MAP_OK) {
		struct ledger_entry le, *e;
		memset(&le, 0, sizeof le);
		memcpy(le.key, rkey, LEDGER_KEY_LEN);
		le.kind = LEDGER_MSG;
		snprintf(le.ack, sizeof le.ack, "AA");
		pub_job_set_ledger(c->job, &le);
		if (!(e = ledger_upsert(r->ledger, rkey, LEDGER_MSG)))
			return -1;
		e->state = LEDGER_INFLIGHT;
		e->ts_ms = util_wall_ms();
		memcpy(c->x->rkey, rkey, LEDGER_KEY_LEN);
		c->x->has_key = 1;
		c->x->published = 1;
		return 0;
	}
	if (res == MAP_UNMATCHED && r->s.pl.unmatched == MAP_UNMATCHED_FILTER) {
		r->st.filtered++;
		return 0;
	}
	return dead_letter(c, it, "map", rej.err_code, rej.reason);
}

/* ---- dry run: the diff --------------------------------------------------------- */

/* What the real run would do with this input (the diff covers every input). */
static void count_would(struct rp_item_ctx *c, const struct map_input *in,
			const struct rdiff_side *now, size_t nevents)
{
	struct rp *r = c->r;
	uint8_t rkey[LEDGER_KEY_LEN];
	const char *skip = skip_reason(c, in, rkey);
	if (skip)
		count_skip(r, skip);
	else if (now->status == RDIFF_EVENTS) {
		r->st.published++;
		r->st.events += nevents;
	} else if (now->status == RDIFF_UNMATCHED && r->s.pl.unmatched == MAP_UNMATCHED_FILTER)
		r->st.filtered++;
	else
		r->st.deadlettered++;
}

static int diff_item(struct rp_item_ctx *c, const struct map_item *it)
{
	struct rp *r = c->r;
	struct rdiff_side before, now;
	struct map_reject rej;
	enum map_result res;

	r->st.inputs++;
	rdiff_side_init(&before);
	rdiff_side_init(&now);
	if (!it->in) {
		r->st.unreadable++;
		before.status = now.status = RDIFF_UNREADABLE;
	} else {
		memset(&rej, 0, sizeof rej);
		size_t nev = 0;
		/* without a diff only the outcome counts: no event objects */
		res = map_apply(r->maps, it->in, 0, r->diff ? rdiff_side_add_cb : NULL, &now, &nev, &rej);
		if (res == MAP_OK)
			now.status = RDIFF_EVENTS;
		rdiff_side_result(&now, res, &rej);
		if (!r->diff) {
			/* counts only */
		} else if (r->against) {
			memset(&rej, 0, sizeof rej);
			res = map_apply(r->against, it->in, 0, rdiff_side_add_cb, &before, NULL, &rej);
			rdiff_side_result(&before, res, &rej);
		} else {
			rdiff_index_side(r->index, it->in->ledger_key, it->in->ledger_key_len, &before);
			if (before.status == RDIFF_NONE && r->from_dlq)
				before.status = RDIFF_REJECTED; /* a dead letter, not published since */
		}
		count_would(c, it->in, &now, nev);
	}
	if (r->diff)
		rdiff_record(r->diff, r->topic, c->m->partition, c->m->offset,
			     it->in ? it->in->message_id : NULL, &before, &now);
	rdiff_side_clear(&before);
	rdiff_side_clear(&now);
	return 0;
}

/* item_cb's answer when the job cannot be built: distinct from
 * map_input_items' own -1 (the record cannot be read). */
#define RP_ITEM_FAIL 2

static int item_cb(const struct map_item *it, void *opaque)
{
	struct rp_item_ctx *c = opaque;
	int rc = c->r->o->dry_run ? diff_item(c, it) : publish_item(c, it);
	return rc ? RP_ITEM_FAIL : 0;
}


int rp_record(struct rp *r, const rd_kafka_message_t *m)
{
	char origin[256], code[16], stage[16], reason[512], name[300], err[512];
	struct rp_item_ctx c;
	memset(&c, 0, sizeof c);
	c.r = r;
	c.m = m;
	if (!rp_header(m, "hl7bridge-origin", origin, sizeof origin))
		snprintf(origin, sizeof origin, "replay:%s/%" PRId32 "@%" PRId64, r->topic, m->partition,
			 m->offset);
	c.origin = origin;
	c.err_code = rp_header(m, "hl7bridge-error-code", code, sizeof code);
	c.stage_was = rp_header(m, "hl7bridge-stage", stage, sizeof stage);
	c.error_was = rp_header(m, "hl7bridge-error", reason, sizeof reason);
	snprintf(name, sizeof name, "%s/%" PRId32 "@%" PRId64, r->topic, m->partition, m->offset);
	r->st.records++;
	if (!r->o->dry_run && new_job(&c) != 0)
		return -1;
	int rc = map_input_items(name, m->payload ? m->payload : "", m->len, util_wall_ms(), item_cb, &c,
				 err, sizeof err);
	if (rc < 0) {
		/* the record as a whole cannot be read: it goes to the dead letters again */
		char ct[64];
		struct map_item it = { .raw = m->payload, .raw_len = m->len,
				       .content_type = rp_header(m, "content-type", ct, sizeof ct) };
		if (!it.content_type)
			it.content_type = "application/octet-stream";
		fprintf(stderr, "replay: %s: %s\n", name, err);
		if (!r->o->dry_run && dead_letter(&c, &it, "parse", 102, err) != 0)
			rc = 1;
		else
			rc = 0;
		r->st.unreadable++;
	}
	if (rc != 0) {
		if (c.stopped) {
			pub_job_free(c.job);
			free(c.x);
			return 1;
		}
		char why[300];
		if (!r->pub || !pub_fatal(r->pub, why, sizeof why))
			snprintf(why, sizeof why, "%s", c.err[0] ? c.err : "cannot build the job");
		fprintf(stderr, "replay: %s: %s\n", name, why);
		if (c.x && c.x->has_key)
			ledger_remove(r->ledger, c.x->rkey);
		pub_job_free(c.job);
		free(c.x);
		return -1;
	}
	if (!r->o->dry_run && submit(r, c.job, (uint64_t)m->partition) != 0) {
		char why[300];
		if (pub_fatal(r->pub, why, sizeof why))
			fprintf(stderr, "replay: %s: publisher failed: %s\n", name, why);
		if (c.x->has_key)
			ledger_remove(r->ledger, c.x->rkey);
		pub_job_free(c.job);
		free(c.x);
		return -1;
	}
	return 0;
}

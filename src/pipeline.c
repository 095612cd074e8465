#include "pipeline.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fate.h"
#include "log.h"
#include "map/input.h"
#include "map/source_hl7.h"
#include "owner.h"
#include "parse/hl7.h"
#include "publish/evenc.h"
#include "publish/ledger_tail.h"
#include "publish/records.h"
#include "util.h"

#define PL_ACK_MAX 4096

struct pipeline {
	struct pipeline_conf conf;
	char *instance, *deadletter_topic, *raw_topic;
	struct pub *pub;
	struct ledger *ledger;
	struct ltail *tail; /* shared ledger: NULL when alone (tests, tools) */
	const struct map_set *maps;
	struct evenc enc;
	struct hl7_seg *segs; /* parse scratch: messages are parsed one at a time on the loop */
	uint64_t ack_seq;
	struct pipeline_stats stats;
	struct pipeline_rejection recent[PIPELINE_RECENT_REJECTIONS]; /* ring */
	size_t nrecent;                                               /* total ever noted */
	struct owner owner; /* the event loop's: messages, completions, reloads */
};

/* Distinct topics one message's events are counted under. */
#define PL_MSG_TOPICS 8

/* One message between arrival and acknowledgement. */
struct pl_msg {
	struct pipeline *p;
	char *raw;
	size_t len;
	int parsed;
	int dl; /* its job is its dead letter */
	uint64_t origin_id;
	char origin[192];
	char msh10[64];
	uint8_t key[LEDGER_KEY_LEN];
	pipeline_done_cb done;
	void *ctx;
	struct pl_msg *waiters; /* resends of this message, waiting for its commit */
	struct pl_msg *next_waiter;
	enum hl7_ack_status status;
	int err_code;
	char reason[384];
	uint32_t nevents;                  /* events in its job */
	uint8_t ntopics;
	uint8_t topic_idx[PL_MSG_TOPICS];  /* into stats.topics; PIPELINE_MAX_TOPICS = other */
	uint32_t topic_events[PL_MSG_TOPICS];
	struct ltail_gate gate; /* parked until the ledger tail's barrier */
};

/* The 0357 codes counted apart, in by_code order; the last slot (0) is "other". */
static const int counted_codes[] = { 100, 101, 102, 200, 201, 203, 207, 0 };
_Static_assert(HB_ARRAY_LEN(counted_codes) == PIPELINE_CODES, "one code per by_code slot");
#define CODE_OTHER ((int)HB_ARRAY_LEN(counted_codes) - 1)

int pipeline_code_index(int code)
{
	for (int i = 0; i < CODE_OTHER; i++)
		if (counted_codes[i] == code)
			return i;
	return CODE_OTHER;
}

int pipeline_code_of_index(int idx)
{
	return idx >= 0 && idx < (int)HB_ARRAY_LEN(counted_codes) ? counted_codes[idx] : 0;
}

const char *pipeline_stage_name(enum pipeline_stage st)
{
	return st == PIPELINE_STAGE_PARSE ? "parse" : st == PIPELINE_STAGE_MAP ? "map" : "publish";
}

/* ---- observability: rejections by stage and code, events by topic ---------- */

/* A first-time rejection (not a resend answered from the ledger). */
static void note_rejection(struct pipeline *p, const struct pl_msg *m, enum pipeline_stage st)
{
	struct pipeline_rejection *r = &p->recent[p->nrecent++ % PIPELINE_RECENT_REJECTIONS];
	p->stats.rejected_by[st][pipeline_code_index(m->err_code)]++;
	r->ts_ms = util_wall_ms();
	r->stage = st;
	r->code = m->err_code;
	snprintf(r->ack, sizeof r->ack, "%s", m->status == HL7_ACK_REJECT ? "AR/CR" : "AE/CE");
	snprintf(r->reason, sizeof r->reason, "%s", m->reason);
	snprintf(r->origin, sizeof r->origin, "%s", m->origin);
	snprintf(r->msh10, sizeof r->msh10, "%s", m->msh10);
}

size_t pipeline_recent_rejections(const struct pipeline *p, struct pipeline_rejection *out,
				  size_t max)
{
	size_t n = p->nrecent < PIPELINE_RECENT_REJECTIONS ? p->nrecent : PIPELINE_RECENT_REJECTIONS;
	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++)
		out[i] = p->recent[(p->nrecent - 1 - i) % PIPELINE_RECENT_REJECTIONS];
	return n;
}

/* Remember that m's job carries one more event for topic. */
static void note_event(struct pipeline *p, struct pl_msg *m, const char *topic)
{
	int t;
	m->nevents++;
	for (t = 0; t < p->stats.ntopics; t++)
		if (strcmp(p->stats.topics[t].topic, topic) == 0)
			break;
	if (t == p->stats.ntopics && t < PIPELINE_MAX_TOPICS && strlen(topic) < sizeof p->stats.topics[t].topic)
		snprintf(p->stats.topics[p->stats.ntopics++].topic, sizeof p->stats.topics[t].topic, "%s", topic);
	else if (t == p->stats.ntopics)
		t = PIPELINE_MAX_TOPICS;
	for (int i = 0; i < m->ntopics; i++)
		if (m->topic_idx[i] == t) {
			m->topic_events[i]++;
			return;
		}
	if (m->ntopics == PL_MSG_TOPICS) {
		p->stats.events_other_topics++; /* counted now: a message this wide is rare */
		return;
	}
	m->topic_idx[m->ntopics] = (uint8_t)t;
	m->topic_events[m->ntopics++] = 1;
}

/* m's job committed: its events are published. */
static void count_published(struct pipeline *p, const struct pl_msg *m)
{
	for (int i = 0; i < m->ntopics; i++) {
		if (m->topic_idx[i] < PIPELINE_MAX_TOPICS)
			p->stats.topics[m->topic_idx[i]].events += m->topic_events[i];
		else
			p->stats.events_other_topics += m->topic_events[i];
	}
}

struct pipeline *pipeline_new(const struct pipeline_conf *c, struct pub *pub,
			      struct ledger *ledger, char *errstr, size_t errstr_size)
{
	struct pipeline *p = calloc(1, sizeof *p);
	if (!p)
		goto oom;
	p->conf = *c;
	p->instance = strdup(c->instance ? c->instance : "hl7bridge");
	p->deadletter_topic = strdup(c->deadletter_topic ? c->deadletter_topic : "healthcare.deadletter");
	p->raw_topic = strdup(c->raw_topic ? c->raw_topic : "healthcare.raw.hl7v2");
	if (!p->conf.max_segments)
		p->conf.max_segments = HL7_DEFAULT_MAX_SEGMENTS;
	p->segs = calloc(p->conf.max_segments, sizeof *p->segs);
	if (!p->instance || !p->deadletter_topic || !p->raw_topic || !p->segs)
		goto oom;
	p->pub = pub;
	p->ledger = ledger;
	return p;
oom:
	util_seterr(errstr, errstr_size, "out of memory");
	pipeline_free(p);
	return NULL;
}

void pipeline_free(struct pipeline *p)
{
	if (!p)
		return;
	free(p->instance);
	free(p->deadletter_topic);
	free(p->raw_topic);
	free(p->segs);
	evenc_clear(&p->enc);
	free(p);
}

int pipeline_set_maps(struct pipeline *p, const struct map_set *maps, struct registry *reg,
		      char *errstr, size_t errstr_size)
{
	assert(owner_here(&p->owner));
	if (evenc_init(&p->enc, p->conf.format, maps, reg, errstr, errstr_size) != 0)
		return -1;
	p->maps = maps;
	return 0;
}

int pipeline_can_accept(const struct pipeline *p)
{
	return pub_inflight(p->pub) < pub_max_inflight(p->pub) && !pub_fatal(p->pub, NULL, 0);
}

void pipeline_get_stats(const struct pipeline *p, struct pipeline_stats *out)
{
	*out = p->stats;
}

/* ---- acknowledgements ------------------------------------------------------ */

static void msg_free(struct pl_msg *m)
{
	free(m->raw);
	free(m);
}

/* Build m's acknowledgement and hand it over; frees m. ok = 0: no ACK. */
static void reply(struct pl_msg *m, int ok)
{
	struct pipeline *p = m->p;
	char ack[PL_ACK_MAX], ctl[64], ts[32], err[256];
	struct hl7_msg h;
	struct hl7_error herr;
	struct hl7_ack_params ap;
	int parsed;
	ssize_t n = -1;
	time_t now;
	struct tm tm;

	assert(!m->waiters); /* resends joined to m are answered with it (reply_all) */
	assert(!ledger_find(p->ledger, m->key) || ledger_find(p->ledger, m->key)->owner != m);
	if (ok) {
		struct hl7_parse_opts o = { p->conf.max_field_len, 0 };
		memset(&h, 0, sizeof h);
		parsed = m->parsed &&
			 hl7_parse(&h, m->raw, m->len, p->segs, p->conf.max_segments, &o, &herr) == 0;
		now = time(NULL);
		gmtime_r(&now, &tm);
		strftime(ts, sizeof ts, "%Y%m%d%H%M%S+0000", &tm);
		snprintf(ctl, sizeof ctl, "%s-%llu", p->instance, (unsigned long long)++p->ack_seq);
		memset(&ap, 0, sizeof ap);
		ap.control_id = ctl;
		ap.timestamp = ts;
		ap.status = m->status;
		ap.err_code = m->status == HL7_ACK_ACCEPT ? 0 : m->err_code;
		ap.reason = m->status == HL7_ACK_ACCEPT ? NULL : m->reason;
		ap.default_version = "2.5.1";
		n = hl7_ack_build(m->raw, m->len, parsed ? &h : NULL, &ap, ack, sizeof ack, err, sizeof err);
		if (parsed)
			hl7_msg_clear(&h);
		if (n < 0)
			log_error("pipeline", "%s MSH-10=%s: cannot build the acknowledgement: %s",
				  m->origin, m->msh10, err);
	}
	m->done(m->ctx, n < 0 ? NULL : ack, n < 0 ? 0 : (size_t)n);
	msg_free(m);
}

static void reject(struct pl_msg *m, enum hl7_ack_status st, int code, const char *reason)
{
	m->status = st;
	m->err_code = code;
	snprintf(m->reason, sizeof m->reason, "%s", reason);
	m->p->stats.by_code[pipeline_code_index(code)]++;
}

/* ---- building the job ------------------------------------------------------- */

struct build {
	struct pipeline *p;
	struct pl_msg *m;
	struct pub_job *job;
	int count; /* events to be published (not a resend decided again) */
};

static int add_event_cb(const struct map_event *ev, void *opaque)
{
	struct build *b = opaque;
	char err[256];
	if (evenc_add(&b->p->enc, b->job, ev, b->m->origin, err, sizeof err) != 0) {
		log_error("pipeline", "%s MSH-10=%s: %s", b->m->origin, b->m->msh10, err);
		return -1;
	}
	if (b->count) {
		b->p->stats.events++;
		note_event(b->p, b->m, ev->topic);
	}
	return 0;
}

static void job_done_cb(struct pub_job *job, enum pub_status st, const char *reason, void *opaque);
static void not_publishable(struct pipeline *p, struct pl_msg *m, const char *why);

/* Answer the resends waiting for m, then m (frees them). */
static void reply_all(struct pl_msg *m, int ok)
{
	struct pl_msg *w, *next;
	for (w = m->waiters; w; w = next) {
		next = w->next_waiter;
		w->status = m->status;
		w->err_code = m->err_code;
		memcpy(w->reason, m->reason, sizeof w->reason);
		reply(w, ok);
	}
	m->waiters = NULL;
	reply(m, ok);
}

static void add_raw(struct pipeline *p, struct pl_msg *m, struct pub_job *job)
{
	if (p->conf.raw && m->dl) /* cut to fit like its dead letter */
		records_add_raw_fit(job, pub_record_room(p->pub, p->raw_topic), p->raw_topic, m->raw,
				    m->len, "application/hl7-v2",
				    &(struct rec_origin){ m->origin, m->msh10 });
	else if (p->conf.raw)
		records_add_raw(job, p->raw_topic, m->raw, m->len, "application/hl7-v2",
				&(struct rec_origin){ m->origin, m->msh10 });
}

/* Submit m's job with its ledger record. On failure m is answered with no ACK. */
static void submit(struct pipeline *p, struct pl_msg *m, struct pub_job *job)
{
	struct ledger_entry le, *e;
	char why[160];
	memset(&le, 0, sizeof le);
	memcpy(le.key, m->key, LEDGER_KEY_LEN);
	le.kind = LEDGER_MSG;
	snprintf(le.ack, sizeof le.ack, "%s", m->status == HL7_ACK_ACCEPT ? "AA"
					    : m->status == HL7_ACK_ERROR   ? "AE"
									   : "AR");
	pub_job_set_ledger(job, &le);
	add_raw(p, m, job);
	if (pub_job_check(p->pub, job, why, sizeof why) != 0) {
		/* It could never be committed: answer now, do not wedge the lane. */
		pub_job_free(job);
		not_publishable(p, m, why);
		return;
	}
	pub_job_set_unordered(job); /* answered in order by its connection */
	e = ledger_upsert(p->ledger, m->key, LEDGER_MSG);
	if (!e || pub_submit(p->pub, m->origin_id, job) != 0) {
		if (e)
			ledger_remove(p->ledger, m->key);
		pub_job_free(job);
		p->stats.failed++;
		log_error("pipeline", "%s MSH-10=%s: the publisher refused the message", m->origin,
			  m->msh10);
		reply_all(m, 0); /* a dead letter's resubmit may have resends joined */
		return;
	}
	e->state = LEDGER_INFLIGHT;
	e->ts_ms = util_wall_ms();
	e->owner = m;
}

static void job_done_cb(struct pub_job *job, enum pub_status st, const char *reason, void *opaque)
{
	struct pl_msg *m = opaque;
	struct pipeline *p = m->p;
	struct ledger_entry *e = ledger_find(p->ledger, m->key);
	int ok = st == PUB_COMMITTED;

	assert(owner_here(&p->owner));
	if (st == PUB_REJECTED) {
		/* The broker (or librdkafka) refused a record as too large: answer
		 * with an ERR and dead-letter a copy that fits. (reason lives in
		 * the job.) */
		char why[160];
		snprintf(why, sizeof why, "%s", reason);
		pub_job_free(job);
		not_publishable(p, m, why);
		return;
	}
	if (ok) {
		if (e) {
			e->state = LEDGER_COMMITTED;
			e->ts_ms = util_wall_ms();
			e->owner = NULL;
			snprintf(e->ack, sizeof e->ack, "%s", pub_job_ledger(job)->ack);
		}
		/* accepted = published events (a filtered message's dead letter is not) */
		if (m->status == HL7_ACK_ACCEPT && m->nevents) {
			p->stats.accepted++;
			count_published(p, m);
		}
	} else {
		/* The ledger tail may have read the key committed (by another
		 * instance) meanwhile: keep what is committed. */
		if (e && e->state == LEDGER_COMMITTED)
			e->owner = NULL;
		else if (e)
			ledger_remove(p->ledger, m->key);
		p->stats.failed++;
		log_error("pipeline", "%s MSH-10=%s: not committed (%s); no acknowledgement sent",
			  m->origin, m->msh10, reason);
	}
	pub_job_free(job);
	reply_all(m, ok);
}

/* ---- the message ------------------------------------------------------------ */

static void copy_id(char *out, size_t cap, struct hl7_view v)
{
	size_t n = 0;
	for (size_t i = 0; i < v.len && n + 1 < cap; i++) {
		unsigned char ch = (unsigned char)v.ptr[i];
		out[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	out[n] = '\0';
}

/* An MSH-10 the sender could not recognise in our MSA-2 (HL7 allows 199
 * characters, and control characters are no part of an id): the message is
 * answered AR (ERR-3 102) with an escaped, cut copy in MSA-2 (hl7_ack.c). */
static int msh10_unusable(struct hl7_view v, char *why, size_t whysz)
{
	if (v.len > 199) {
		snprintf(why, whysz, "MSH-10 (message control id) is %zu characters long; at most 199 "
				     "are accepted", v.len);
		return 1;
	}
	for (size_t i = 0; i < v.len; i++) {
		unsigned char c = (unsigned char)v.ptr[i];
		if (c < 0x20 || c == 0x7f) {
			snprintf(why, whysz, "MSH-10 (message control id) contains a control character "
					     "(0x%02X at position %zu)", c, i + 1);
			return 1;
		}
	}
	return 0;
}

/* Dead-letter m in a committed transaction, then answer it. A message
 * larger than the dead-letter topic takes is dead-lettered cut to fit (its
 * header hl7bridge-truncated says the full size). */
static void dead_letter(struct pipeline *p, struct pl_msg *m, const char *stage)
{
	char code[16];
	struct pub_job *job = pub_job_new(job_done_cb, m);
	snprintf(code, sizeof code, "%d", m->err_code);
	m->dl = 1;
	if (!job || records_add_deadletter_fit(job, pub_record_room(p->pub, p->deadletter_topic),
					       p->deadletter_topic, m->raw, m->len,
					       "application/hl7-v2", stage, code, m->reason,
					       &(struct rec_origin){ m->origin, m->msh10 }) != 0) {
		struct ledger_entry *e = ledger_find(p->ledger, m->key);
		if (e && e->owner == m) /* from not_publishable: m was in flight */
			ledger_remove(p->ledger, m->key);
		pub_job_free(job);
		reply_all(m, 0);
		return;
	}
	p->stats.deadlettered++;
	submit(p, m, job);
}

static void decide(struct pipeline *p, struct pl_msg *m);

/* The barrier passed: decide again (or, when the tail stopped, answer with
 * no ACK). */
static void barrier_cb(struct ltail_gate *g, int ok)
{
	struct pl_msg *m = container_of(g, struct pl_msg, gate);
	assert(owner_here(&m->p->owner));
	if (!ok) {
		m->p->stats.failed++;
		reply(m, 0);
		return;
	}
	decide(m->p, m);
}

/* A message absent from the ledger is new only once the ledger tail has read
 * every commit of every instance up to its arrival (ledger_tail.h): park it
 * until a barrier, then decide again. Returns 1 when parked. Parked messages
 * are bounded by the listeners' connections and per-connection pipelining. */
static int park(struct pipeline *p, struct pl_msg *m)
{
	return !ltail_gate_pass(p->tail, &m->gate, barrier_cb);
}

void pipeline_set_tail(struct pipeline *p, struct ltail *tail)
{
	assert(owner_here(&p->owner));
	p->tail = tail;
}

/* m's job can never be committed: a record is larger than Kafka takes. The
 * message is answered AE (AR stays AR) with ERR-3 207 and a reason naming
 * the topic and the sizes, and dead-lettered (cut to fit). If even its dead
 * letter does not fit, the answer goes out without it. Never retried. */
static void not_publishable(struct pipeline *p, struct pl_msg *m, const char *why)
{
	struct ledger_entry *e = ledger_find(p->ledger, m->key);
	if (m->dl) {
		if (e && e->owner == m)
			ledger_remove(p->ledger, m->key);
		log_error("pipeline", "%s MSH-10=%s: the dead letter cannot be written either (%s); "
				      "answered %s without it",
			  m->origin, m->msh10, why, m->status == HL7_ACK_REJECT ? "AR" : "AE");
		/* counted already, as the rejection that made it a dead letter */
		if (m->status == HL7_ACK_ACCEPT)
			reject(m, HL7_ACK_ERROR, 207, "cannot be published: larger than Kafka takes");
		reply_all(m, 1);
		return;
	}
	char reason[sizeof m->reason];
	snprintf(reason, sizeof reason, "cannot be published: %s", why);
	reject(m, m->status == HL7_ACK_REJECT ? HL7_ACK_REJECT : HL7_ACK_ERROR, 207, reason);
	p->stats.rejected_publish++;
	note_rejection(p, m, PIPELINE_STAGE_PUBLISH);
	log_warn_limited("pipeline", "%s MSH-10=%s: rejected: %s", m->origin, m->msh10, m->reason);
	if (p->conf.deadletter) {
		dead_letter(p, m, "publish");
		return;
	}
	if (e && e->owner == m)
		ledger_remove(p->ledger, m->key);
	reply_all(m, 1);
}

void pipeline_hl7(struct pipeline *p, uint64_t origin_id, const char *origin,
		  const unsigned char *msg, size_t len, pipeline_done_cb done, void *ctx)
{
	struct pl_msg *m = calloc(1, sizeof *m);

	assert(owner_here(&p->owner));
	p->stats.received++;
	if (!m || !(m->raw = malloc(len ? len : 1))) {
		free(m);
		p->stats.failed++;
		done(ctx, NULL, 0);
		return;
	}
	memcpy(m->raw, msg, len);
	m->len = len;
	m->p = p;
	m->origin_id = origin_id;
	m->done = done;
	m->ctx = ctx;
	m->status = HL7_ACK_ACCEPT;
	snprintf(m->origin, sizeof m->origin, "%s", origin ? origin : "?");
	snprintf(m->msh10, sizeof m->msh10, "-");
	decide(p, m);
}

/* A resend of a message whose first copy is in flight joins it: answered
 * with it, nothing published. Returns 1 when m joined. */
static int join_first(struct pipeline *p, struct pl_msg *m, const struct ledger_entry *e)
{
	if (!e || e->state != LEDGER_INFLIGHT || !e->owner)
		return 0;
	struct pl_msg *first = e->owner;
	p->stats.joined++;
	log_info("pipeline", "%s MSH-10=%s: resent while the first copy is in flight; answered with it",
		 m->origin, m->msh10);
	m->next_waiter = first->waiters;
	first->waiters = m;
	return 1;
}

/* A message refused before mapping (unreadable, or an unusable MSH-10): AR
 * with code and why, and its dead letter written once — a resend while the
 * first copy's dead letter is in flight joins it, one committed before is
 * answered again. */
static void refuse_unreadable(struct pipeline *p, struct pl_msg *m, int code, const char *why)
{
	struct ledger_entry *e = ledger_find(p->ledger, m->key);
	struct fate f = fate_decide(&(struct fate_policy){ p->conf.deadletter, p->conf.unmatched }, 0,
				    MAP_ERROR);
	if (!e && f.deadletter && park(p, m))
		return; /* its dead letter would be published: decide after the barrier */
	if (join_first(p, m, e))
		return;
	reject(m, HL7_ACK_REJECT, code, why);
	if (m->parsed)
		log_warn_limited("pipeline", "%s MSH-10=%s: rejected: %s", m->origin, m->msh10, why);
	else
		log_warn_limited("pipeline", "%s: rejected unreadable message: %s", m->origin, why);
	int dup = e && e->state == LEDGER_COMMITTED;
	if (dup) {
		p->stats.duplicates++;
	} else {
		p->stats.rejected_parse++;
		note_rejection(p, m, PIPELINE_STAGE_PARSE);
	}
	if (f.deadletter && !dup)
		dead_letter(p, m, f.stage);
	else
		reply(m, 1);
}

/* Parse, look the key up, map, submit or answer. Runs again (re-parsing)
 * after a barrier when the key was absent. */
static void decide(struct pipeline *p, struct pl_msg *m)
{
	struct hl7_msg h;
	struct hl7_error herr;
	struct hl7_parse_opts o = { p->conf.max_field_len, 0 };
	struct ledger_entry *e;
	int publish = 1;

	memset(&h, 0, sizeof h);
	if (hl7_parse(&h, m->raw, m->len, p->segs, p->conf.max_segments, &o, &herr) != 0) {
		const void *parts[] = { "unparsed", m->raw };
		size_t lens[] = { 8, m->len };
		ledger_hash(m->key, 2, parts, lens);
		refuse_unreadable(p, m, hl7_err_0357(herr.code), herr.msg);
		return;
	}
	m->parsed = 1;
	{
		struct hl7_view v10;
		char why[160];
		hl7_field(&h, 0, 10, &v10);
		copy_id(m->msh10, sizeof m->msh10, v10);
		map_input_hl7_key(&h, m->raw, m->len, m->key);
		if (msh10_unusable(v10, why, sizeof why)) {
			hl7_msg_clear(&h);
			refuse_unreadable(p, m, 102, why);
			return;
		}
	}

	e = ledger_find(p->ledger, m->key);
	if (!e && park(p, m)) {
		hl7_msg_clear(&h);
		return;
	}
	if (join_first(p, m, e)) {
		hl7_msg_clear(&h);
		return;
	}
	if (e && e->state == LEDGER_COMMITTED) {
		p->stats.duplicates++;
		log_info("pipeline", "%s MSH-10=%s: duplicate of a committed message; answered again",
			 m->origin, m->msh10);
		if (strcmp(e->ack, "AA") == 0 || strcmp(e->ack, "CA") == 0) {
			hl7_msg_clear(&h);
			reply(m, 1);
			return;
		}
		publish = 0; /* rejected before: decide again, publish nothing */
	}

	struct hl7src_scope scope;
	struct map_input in;
	struct map_reject rej;
	struct build b = { p, m, NULL, publish };
	size_t nev = 0;
	enum map_result r;

	hl7src_scope_init(&scope, &h);
	memset(&in, 0, sizeof in);
	in.ops = &map_source_hl7;
	in.scope = &scope;
	in.ledger_key = m->key;
	in.ledger_key_len = LEDGER_KEY_LEN;
	in.message_id = m->msh10;
	in.now_ms = util_wall_ms();
	memset(&rej, 0, sizeof rej);
	/* A resend of a rejected message builds its events too: if they are
	 * larger than Kafka takes, that was the reason, and is again. */
	b.job = pub_job_new(job_done_cb, m);
	r = map_apply(p->maps, &in, 0, b.job ? add_event_cb : NULL, &b,
		      &nev, &rej);
	hl7_msg_clear(&h);

	/* fate.c decides, as for files and FHIR over HTTP */
	struct fate f = fate_decide(&(struct fate_policy){ p->conf.deadletter, p->conf.unmatched },
				    1, r);
	if (f.kind != FATE_PUBLISH)
		pub_job_free(b.job);
	switch (f.kind) {
	case FATE_PUBLISH:
		if (!publish) {
			/* rejected before though mapped: its records were too large */
			char why[160], reason[sizeof m->reason];
			add_raw(p, m, b.job);
			if (pub_job_check(p->pub, b.job, why, sizeof why) != 0) {
				snprintf(reason, sizeof reason, "cannot be published: %s", why);
				reject(m, HL7_ACK_ERROR, 207, reason);
			}
			pub_job_free(b.job);
			reply(m, 1);
			return;
		}
		submit(p, m, b.job);
		return;
	case FATE_FILTER:
		/* accepted (AA); under "deadletter" once the dead letter is committed */
		m->err_code = rej.err_code;
		snprintf(m->reason, sizeof m->reason, "%s", rej.reason);
		if (publish)
			p->stats.filtered++;
		if (f.deadletter && publish)
			dead_letter(p, m, f.stage);
		else
			reply(m, 1);
		return;
	case FATE_REJECT:
	case FATE_REFUSE:
	default:
		assert(f.kind == FATE_REJECT || f.kind == FATE_REFUSE); /* fate.h has four kinds */
		reject(m, f.kind == FATE_REJECT ? HL7_ACK_ERROR : HL7_ACK_REJECT, rej.err_code, rej.reason);
		if (publish) {
			if (f.count == FATE_COUNT_REJECTED_UNMATCHED)
				p->stats.rejected_unmatched++;
			else
				p->stats.rejected_map++;
			note_rejection(p, m, PIPELINE_STAGE_MAP);
		}
		log_warn_limited("pipeline", "%s MSH-10=%s: rejected: %s", m->origin, m->msh10, m->reason);
		if (f.deadletter && publish)
			dead_letter(p, m, f.stage);
		else
			reply(m, 1);
		return;
	}
}

const struct map_set *pipeline_maps(const struct pipeline *p)
{
	return p->maps;
}

struct evenc *pipeline_evenc(struct pipeline *p)
{
	return &p->enc;
}

void pipeline_note_rejection(struct pipeline *p, enum pipeline_stage st, int code,
			     const char *answer, const char *reason, const char *origin,
			     const char *id)
{
	assert(owner_here(&p->owner));
	struct pipeline_rejection *r = &p->recent[p->nrecent++ % PIPELINE_RECENT_REJECTIONS];
	r->ts_ms = util_wall_ms();
	r->stage = st;
	r->code = code;
	snprintf(r->ack, sizeof r->ack, "%s", answer);
	snprintf(r->reason, sizeof r->reason, "%s", reason);
	snprintf(r->origin, sizeof r->origin, "%s", origin);
	snprintf(r->msh10, sizeof r->msh10, "%s", id ? id : "-");
}

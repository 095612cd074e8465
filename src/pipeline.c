#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "map/source_hl7.h"
#include "parse/hl7.h"
#include "publish/records.h"
#include "util.h"

#define PL_ACK_MAX 4096
/* One event never needs more Avro than this (it comes from one message). */
#define PL_AVRO_MAX (64u << 20)

struct pl_schema_id {
	const struct map_schema *schema;
	int32_t id;
};

struct pipeline {
	struct pipeline_conf conf;
	char *instance, *deadletter_topic, *raw_topic;
	struct pub *pub;
	struct ledger *ledger;
	const struct map_set *maps;
	struct pl_schema_id *ids;
	size_t nids;
	struct hl7_seg *segs; /* parse scratch: messages are parsed one at a time on the loop */
	unsigned char *avro_buf;
	size_t avro_cap;
	uint64_t ack_seq;
	struct pipeline_stats stats;
};

/* One message between arrival and acknowledgement. */
struct pl_msg {
	struct pipeline *p;
	char *raw;
	size_t len;
	int parsed;
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
};

int pipeline_code_index(int code)
{
	static const int codes[] = { 100, 101, 102, 200, 201, 203, 207 };
	for (int i = 0; i < 7; i++)
		if (codes[i] == code)
			return i;
	return 7;
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
	free(p->ids);
	free(p->avro_buf);
	free(p);
}

/* Consumers decode our bytes with the schema the registry answers for the id,
 * and Avro binary carries no field names. A registry that stores a rewritten
 * text with another field order (Apicurio's ccompat canonical-hash mode sorts
 * a record's fields by name) would make every consumer misread every event,
 * so such a registry is refused at start-up. */
static int check_registered(struct registry *reg, const struct map_schema *sc, int32_t id,
			    char *errstr, size_t errstr_size)
{
	char *text = NULL;
	int same;

	if (registry_fetch(reg, id, &text, errstr, errstr_size) != 0)
		return -1;
	same = map_schema_same_layout(sc, text, strlen(text));
	free(text);
	if (same == 1)
		return 0;
	return util_seterr(errstr, errstr_size,
			   "schema registry: schema id %ld (subject %s) %s; consumers would misread "
			   "the events (does the registry rewrite schemas, e.g. a canonical form?)",
			   (long)id, map_schema_fullname(sc),
			   same < 0 ? "is not a readable Avro schema"
				    : "has other fields, types or field order than the one registered");
}

int pipeline_set_maps(struct pipeline *p, const struct map_set *maps, struct registry *reg,
		      char *errstr, size_t errstr_size)
{
	size_t n = map_set_schema_count(maps);
	struct pl_schema_id *ids = NULL;

	if (p->conf.avro) {
		if (!reg)
			return util_seterr(errstr, errstr_size,
					   "Avro values need a schema registry ([registry] url)");
		ids = calloc(n ? n : 1, sizeof *ids);
		if (!ids)
			return util_seterr(errstr, errstr_size, "out of memory");
		for (size_t i = 0; i < n; i++) {
			const struct map_schema *sc = map_set_schema(maps, i);
			/* Subject = the record's full name, as the quick start's client
			 * registers it (RecordNameStrategy): one subject per event type,
			 * whatever topic it is written to. */
			ids[i].schema = sc;
			if (registry_register(reg, map_schema_fullname(sc), map_schema_text(sc), &ids[i].id,
					      errstr, errstr_size) != 0 ||
			    check_registered(reg, sc, ids[i].id, errstr, errstr_size) != 0) {
				free(ids);
				return -1;
			}
		}
	}
	free(p->ids);
	p->ids = ids;
	p->nids = ids ? n : 0;
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
	int failed;
};

static int32_t schema_id(const struct pipeline *p, const struct map_schema *sc)
{
	for (size_t i = 0; i < p->nids; i++)
		if (p->ids[i].schema == sc)
			return p->ids[i].id;
	return -1;
}

static int add_event_cb(const struct map_event *ev, void *opaque)
{
	struct build *b = opaque;
	struct pipeline *p = b->p;
	rd_kafka_headers_t *h = rd_kafka_headers_new(ev->nheaders + 1);
	char err[256];
	int rc;

	for (size_t i = 0; i < ev->nheaders; i++)
		rd_kafka_header_add(h, ev->headers[i].name, -1, ev->headers[i].value, -1);
	rd_kafka_header_add(h, "hl7bridge-origin", -1, b->m->origin, -1);
	if (p->conf.avro) {
		int32_t id = schema_id(p, ev->schema);
		ssize_t n;
		if (id < 0) {
			rd_kafka_headers_destroy(h);
			return -1;
		}
		/* The encoder cannot say how much room it needs: grow and retry. */
		for (;;) {
			if (p->avro_cap >= REGISTRY_WIRE_HEADER) {
				n = map_event_avro(ev, p->avro_buf + REGISTRY_WIRE_HEADER,
						   p->avro_cap - REGISTRY_WIRE_HEADER, err, sizeof err);
				if (n >= 0)
					break;
				if (p->avro_cap >= PL_AVRO_MAX) {
					log_error("pipeline", "%s MSH-10=%s: Avro encoding failed: %s",
						  b->m->origin, b->m->msh10, err);
					rd_kafka_headers_destroy(h);
					return -1;
				}
			}
			size_t cap = p->avro_cap ? p->avro_cap * 2 : 65536;
			unsigned char *nb = realloc(p->avro_buf, cap);
			if (!nb)
				goto oom;
			p->avro_buf = nb;
			p->avro_cap = cap;
		}
		registry_wire_header(p->avro_buf, id);
		rc = pub_job_add(b->job, ev->topic, ev->key[0] ? ev->key : NULL, strlen(ev->key),
				 p->avro_buf, (size_t)n + REGISTRY_WIRE_HEADER, h);
	} else {
		char *json = map_event_json(ev);
		if (!json)
			goto oom;
		rc = pub_job_add(b->job, ev->topic, ev->key[0] ? ev->key : NULL, strlen(ev->key), json,
				 strlen(json), h);
		free(json);
	}
	if (rc == 0)
		p->stats.events++;
	return rc;
oom:
	rd_kafka_headers_destroy(h);
	return -1;
}

static void job_done_cb(struct pub_job *job, enum pub_status st, const char *reason, void *opaque);

/* Submit m's job with its ledger record. On failure m is answered with no ACK. */
static void submit(struct pipeline *p, struct pl_msg *m, struct pub_job *job)
{
	struct ledger_entry le, *e;
	memset(&le, 0, sizeof le);
	memcpy(le.key, m->key, LEDGER_KEY_LEN);
	le.kind = LEDGER_MSG;
	snprintf(le.ack, sizeof le.ack, "%s", m->status == HL7_ACK_ACCEPT ? "AA"
					    : m->status == HL7_ACK_ERROR   ? "AE"
									   : "AR");
	pub_job_set_ledger(job, &le);
	if (p->conf.raw)
		records_add_raw(job, p->raw_topic, m->raw, m->len, "application/hl7-v2",
				&(struct rec_origin){ m->origin, m->msh10 });
	e = ledger_upsert(p->ledger, m->key, LEDGER_MSG);
	if (!e || pub_submit(p->pub, m->origin_id, job) != 0) {
		if (e)
			ledger_remove(p->ledger, m->key);
		pub_job_free(job);
		p->stats.failed++;
		log_error("pipeline", "%s MSH-10=%s: the publisher refused the message", m->origin,
			  m->msh10);
		reply(m, 0);
		return;
	}
	e->state = LEDGER_INFLIGHT;
	e->ts_ms = util_wall_ms();
	e->owner = m;
}

static void job_done_cb(struct pub_job *job, enum pub_status st, const char *reason, void *opaque)
{
	struct pl_msg *m = opaque, *w, *next;
	struct pipeline *p = m->p;
	struct ledger_entry *e = ledger_find(p->ledger, m->key);
	int ok = st == PUB_COMMITTED;

	if (ok) {
		if (e) {
			e->state = LEDGER_COMMITTED;
			e->ts_ms = util_wall_ms();
			e->owner = NULL;
			snprintf(e->ack, sizeof e->ack, "%s", pub_job_ledger(job)->ack);
		}
		if (m->status == HL7_ACK_ACCEPT)
			p->stats.accepted++;
	} else {
		if (e)
			ledger_remove(p->ledger, m->key);
		p->stats.failed++;
		log_error("pipeline", "%s MSH-10=%s: not committed (%s); no acknowledgement sent",
			  m->origin, m->msh10, reason);
	}
	pub_job_free(job);
	for (w = m->waiters; w; w = next) {
		next = w->next_waiter;
		w->status = m->status;
		w->err_code = m->err_code;
		memcpy(w->reason, m->reason, sizeof w->reason);
		reply(w, ok);
	}
	reply(m, ok);
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

/* Dead-letter m in a committed transaction, then answer it. */
static void dead_letter(struct pipeline *p, struct pl_msg *m, const char *stage)
{
	char code[16];
	struct pub_job *job = pub_job_new(job_done_cb, m);
	snprintf(code, sizeof code, "%d", m->err_code);
	if (!job || records_add_deadletter(job, p->deadletter_topic, m->raw, m->len,
					   "application/hl7-v2", stage, code, m->reason,
					   &(struct rec_origin){ m->origin, m->msh10 }) != 0) {
		pub_job_free(job);
		reply(m, 0);
		return;
	}
	p->stats.deadlettered++;
	submit(p, m, job);
}

void pipeline_hl7(struct pipeline *p, uint64_t origin_id, const char *origin,
		  const unsigned char *msg, size_t len, pipeline_done_cb done, void *ctx)
{
	struct pl_msg *m = calloc(1, sizeof *m);
	struct hl7_msg h;
	struct hl7_error herr;
	struct hl7_parse_opts o = { p->conf.max_field_len, 0 };
	struct ledger_entry *e;
	int publish = 1;

	p->stats.received++;
	if (!m || !(m->raw = malloc(len ? len : 1))) {
		free(m);
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

	memset(&h, 0, sizeof h);
	if (hl7_parse(&h, m->raw, m->len, p->segs, p->conf.max_segments, &o, &herr) != 0) {
		const void *parts[] = { "unparsed", m->raw };
		size_t lens[] = { 8, m->len };
		ledger_hash(m->key, 2, parts, lens);
		reject(m, HL7_ACK_REJECT, hl7_err_0357(herr.code), herr.msg);
		p->stats.rejected_parse++;
		log_warn("pipeline", "%s: rejected unreadable message: %s", m->origin, herr.msg);
		e = ledger_find(p->ledger, m->key);
		if (p->conf.deadletter && !(e && e->state == LEDGER_COMMITTED))
			dead_letter(p, m, "parse");
		else
			reply(m, 1);
		return;
	}
	m->parsed = 1;
	{
		struct hl7_view v3, v4, v10;
		hl7_field(&h, 0, 3, &v3);
		hl7_field(&h, 0, 4, &v4);
		hl7_field(&h, 0, 10, &v10);
		copy_id(m->msh10, sizeof m->msh10, v10);
		const void *parts[] = { v3.ptr, v4.ptr, v10.ptr, m->raw };
		size_t lens[] = { v3.len, v4.len, v10.len, m->len };
		ledger_hash(m->key, 4, parts, lens);
	}

	e = ledger_find(p->ledger, m->key);
	if (e && e->state == LEDGER_INFLIGHT && e->owner) {
		struct pl_msg *first = e->owner;
		p->stats.joined++;
		m->next_waiter = first->waiters;
		first->waiters = m;
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
	struct build b = { p, m, NULL, 0 };
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
	b.job = publish ? pub_job_new(job_done_cb, m) : NULL;
	r = p->maps ? map_apply(p->maps, &in, p->conf.avro ? MAP_AVRO : 0,
				publish ? add_event_cb : NULL, &b, &nev, &rej)
		    : MAP_UNMATCHED;
	hl7_msg_clear(&h);

	switch (r) {
	case MAP_OK:
		if (!publish) { /* cannot happen: a duplicate of an accepted message returned above */
			reply(m, 1);
			return;
		}
		submit(p, m, b.job);
		return;
	case MAP_UNMATCHED:
		pub_job_free(b.job);
		if (p->conf.unmatched == MAP_UNMATCHED_REJECT) {
			reject(m, HL7_ACK_REJECT, 200, "no mapping accepts this message type");
			p->stats.rejected_unmatched++;
			reply(m, 1);
		} else if (p->conf.unmatched == MAP_UNMATCHED_DEADLETTER && publish) {
			/* accepted (AA) once the dead letter is committed */
			m->err_code = 200;
			snprintf(m->reason, sizeof m->reason, "no mapping accepts this message type");
			p->stats.filtered++;
			dead_letter(p, m, "map");
		} else {
			p->stats.filtered++;
			reply(m, 1);
		}
		return;
	case MAP_REJECTED:
	case MAP_ERROR:
	default:
		pub_job_free(b.job);
		reject(m, HL7_ACK_ERROR, r == MAP_REJECTED && rej.err_code ? rej.err_code : 207,
		       rej.reason[0] ? rej.reason : "the message could not be mapped");
		p->stats.rejected_map++;
		log_warn("pipeline", "%s MSH-10=%s: rejected: %s", m->origin, m->msh10, m->reason);
		if (p->conf.deadletter && publish)
			dead_letter(p, m, "map");
		else
			reply(m, 1);
		return;
	}
}

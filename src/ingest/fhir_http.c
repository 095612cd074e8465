/* fhir_http — FHIR requests from bytes to their answer, after the commit. */
#include "ingest/fhir_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "fate.h"
#include "ingest/fhir_http_int.h"
#include "ingest/http1.h"
#include "log.h"
#include "map/input.h"
#include "parse/fhir.h"
#include "pipeline.h"
#include "publish/evenc.h"
#include "publish/ledger.h"
#include "publish/pub.h"
#include "publish/records.h"
#include "util.h"

struct fhttp {
	struct fhttp_conf conf;
	struct fhttp_env env;
	struct lsn *lsn;
	struct fhttp_stats stats;
	uint64_t seq;
	struct fh_req *ihead, *itail; /* awaiting their barrier or commit; oldest first */
};

void fhttp_conf_defaults(struct fhttp_conf *c)
{
	memset(c, 0, sizeof *c);
	lsn_conf_defaults(&c->lsn);
	snprintf(c->lsn.name, sizeof c->lsn.name, "fhir");
	snprintf(c->lsn.port, sizeof c->lsn.port, "8080");
	c->lsn.http = 1;
	c->lsn.max_header = H1_DEFAULT_MAX_HEAD;
	c->lsn.max_frame = FHIR_DEFAULT_MAX_SIZE;
	c->lsn.max_connections = 1024;
	c->lsn.max_pending = 16;
	snprintf(c->base, sizeof c->base, "/fhir");
	c->retry_after_s = 5;
	c->unavailable_after_ms = 5000;
}

/* Kafka does not commit (or the shared ledger's barrier does not pass): the
 * oldest request waiting for either waits too long. */
static int stalled(const struct fhttp *f)
{
	return f->ihead && util_mono_ms() - f->ihead->submitted_ms > f->conf.unavailable_after_ms;
}

static void inflight_remove(struct fhttp *f, struct fh_req *r)
{
	if (r->iprev)
		r->iprev->inext = r->inext;
	else if (f->ihead == r)
		f->ihead = r->inext;
	if (r->inext)
		r->inext->iprev = r->iprev;
	else if (f->itail == r)
		f->itail = r->iprev;
	r->iprev = r->inext = NULL;
}

/* r waits for Kafka from now on (its barrier, then its commit). */
static void inflight_add(struct fhttp *f, struct fh_req *r)
{
	if (r->iprev || f->ihead == r)
		return; /* since it parked for its barrier */
	r->submitted_ms = util_mono_ms();
	r->iprev = f->itail;
	if (f->itail)
		f->itail->inext = r;
	else
		f->ihead = r;
	f->itail = r;
}

/* ---- answering ---------------------------------------------------------------- */

static void req_free(struct fh_req *r)
{
	inflight_remove(r->f, r);
	for (size_t i = 0; i < r->nitems; i++)
		free(r->items[i].reason);
	free(r->items);
	free(r->keys);
	pub_job_free(r->job);
	free(r);
}

/* Write the response (status, FHIR JSON body) to r's slot and free r. */
static void respond(struct fh_req *r, int status, json_t *body)
{
	struct fhttp *f = r->f;
	if (status >= 200 && status < 300)
		f->stats.ok++;
	fh_write_answer(r->slot, status, body, !r->keep_alive || (f->env.draining && *f->env.draining),
			r->request_id, f->conf.retry_after_s);
	req_free(r);
}

/* An answer that only says why (no resource was looked at). */
static void respond_outcome(struct fh_req *r, int status, const char *severity, const char *code,
			    const char *diag)
{
	respond(r, status, fh_outcome1(severity, code, diag, NULL));
}

/* ---- per resource -------------------------------------------------------------- */

struct evctx {
	struct fh_req *r;
	int failed;
	char err[256];
};

static int add_event_cb(const struct map_event *ev, void *opaque)
{
	struct evctx *x = opaque;
	struct fhttp *f = x->r->f;
	if (evenc_add(pipeline_evenc(f->env.pl), x->r->job, ev, x->r->origin, x->err,
		      sizeof x->err) != 0) {
		x->failed = 1;
		return -1;
	}
	x->r->events++;
	return 0;
}

static struct fh_item *add_item(struct fh_req *r)
{
	if (r->nitems == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 4;
		struct fh_item *n = realloc(r->items, cap * sizeof *n);
		uint8_t *k = realloc(r->keys, cap * LEDGER_KEY_LEN);
		if (n)
			r->items = n;
		if (k)
			r->keys = k;
		if (!n || !k)
			return NULL;
		r->cap = cap;
	}
	struct fh_item *it = &r->items[r->nitems++];
	memset(it, 0, sizeof *it);
	return it;
}

/* Decide only (a transaction or message's first pass: all or nothing). */
static int decide_cb(const struct map_item *it, void *opaque)
{
	struct fh_req *r = opaque;
	struct fhttp *f = r->f;
	struct fate_policy pol = { f->env.deadletter, f->env.unmatched };
	if (r->skip_first && it->index == 0)
		return 0;
	enum map_result res = it->in ? map_apply(pipeline_maps(f->env.pl), it->in, 0, NULL, NULL,
						 NULL, NULL)
				     : MAP_ERROR;
	if (fate_decide(&pol, it->in != NULL, res).kind >= FATE_REJECT)
		r->atomic_fail = 1;
	return 0;
}

static int item_cb(const struct map_item *it, void *opaque)
{
	struct fh_req *r = opaque;
	struct fhttp *f = r->f;
	struct fate_policy pol = { f->env.deadletter, f->env.unmatched };
	struct map_reject rej;
	struct fate fa;
	struct fh_item *fi = add_item(r);
	const char *reason;
	int code;

	if (!fi)
		return -1;
	fi->index = it->index;
	fi->line = it->line;
	if (r->skip_first && it->index == 0) {
		fi->kind = FH_SKIPPED;
		r->nitems_skipped++;
		return 0;
	}
	memset(&rej, 0, sizeof rej);
	if (!it->in) {
		const void *parts[1] = { it->raw };
		size_t lens[1] = { it->raw_len };
		ledger_hash(r->keys + (r->nitems - 1) * LEDGER_KEY_LEN, 1, parts, lens);
		fa = fate_decide(&pol, 0, MAP_ERROR);
		code = it->err_code;
		reason = it->error;
	} else {
		struct evctx x = { r, 0, "" };
		enum map_result res;
		memcpy(r->keys + (r->nitems - 1) * LEDGER_KEY_LEN, it->in->ledger_key, LEDGER_KEY_LEN);
		res = map_apply(pipeline_maps(f->env.pl), it->in, 0,
				r->atomic_fail ? NULL : add_event_cb, &x, &fi->nevents, &rej);
		if (x.failed) {
			log_error("fhir", "%s: %s: %s", r->origin, it->label, x.err);
			r->internal = 1;
			return -1;
		}
		fa = fate_decide(&pol, 1, res);
		code = rej.err_code;
		reason = rej.reason;
		if (r->atomic_fail && fa.kind == FATE_PUBLISH)
			fi->rolled_back = 1;
	}
	fi->kind = (uint8_t)fa.kind;
	fi->count = (uint8_t)fa.count;
	fi->code = code;
	if (fa.kind >= FATE_REJECT)
		r->note_rejections = 1;
	if (fa.kind != FATE_PUBLISH && !(fi->reason = strdup(reason ? reason : "")))
		return -1;
	if (fa.deadletter) {
		char cs[16];
		snprintf(cs, sizeof cs, "%d", code);
		if (records_add_deadletter(r->job, f->env.deadletter_topic, it->raw, it->raw_len,
					   it->content_type, fa.stage, cs, reason, &(struct rec_origin){
						   r->origin, it->in ? it->in->message_id : NULL }) != 0)
			return -1;
		fi->deadlettered = 1;
		r->records++;
	}
	return 0;
}

/* ---- the ledger and the commit --------------------------------------------------- */

/* r's first-time rejections, for the status page ("Recent rejections"). */
static void note_rejections(struct fh_req *r)
{
	for (size_t i = 0; i < r->nitems; i++) {
		const struct fh_item *it = &r->items[i];
		char where[280];
		if (it->kind == FH_SKIPPED || it->kind < FATE_REJECT)
			continue;
		snprintf(where, sizeof where, "%s entry %zu", r->origin, it->index);
		pipeline_note_rejection(r->f->env.pl,
					it->count == FATE_COUNT_REJECTED_PARSE ? PIPELINE_STAGE_PARSE
									       : PIPELINE_STAGE_MAP,
					it->code,
					it->count == FATE_COUNT_REJECTED_PARSE ? "400" : "422",
					it->reason ? it->reason : "", where, r->request_id);
		log_warn("fhir", "%s: rejected: %s", where, it->reason ? it->reason : "");
	}
}

static void count(struct fh_req *r)
{
	struct fhttp_stats *s = &r->f->stats;
	if (r->note_rejections)
		note_rejections(r);
	for (size_t i = 0; i < r->nitems; i++) {
		const struct fh_item *it = &r->items[i];
		if (it->kind == FH_SKIPPED)
			continue;
		s->resources++;
		s->deadlettered += it->deadlettered;
		if (it->kind == FATE_PUBLISH && !it->rolled_back) {
			s->published++;
			s->events += it->nevents;
		} else if (it->kind == FATE_FILTER) {
			s->filtered++;
		} else if (it->count == FATE_COUNT_REJECTED_MAP) {
			s->mapping_rejected++;
		} else if (it->kind >= FATE_REJECT) {
			s->refused++;
		}
	}
}

static void answer(struct fh_req *r)
{
	int status;
	json_t *body = fh_response(r, &status);
	if (status >= 400 && status != 503)
		r->f->stats.rejected++;
	if (!body)
		respond_outcome(r, 500, "fatal", "exception", "out of memory");
	else
		respond(r, status, body);
}

static void job_done_cb(struct pub_job *job, enum pub_status st, const char *reason, void *opaque)
{
	struct fh_req *r = opaque, *w, *next;
	struct fhttp *f = r->f;
	struct ledger_entry *e = ledger_find(f->env.ledger, r->key);
	int ok = st == PUB_COMMITTED;

	r->job = NULL;
	pub_job_free(job);
	inflight_remove(f, r);
	if (ok) {
		if (e) {
			e->state = LEDGER_COMMITTED;
			e->ts_ms = util_wall_ms();
			e->owner = NULL;
		}
		count(r);
	} else {
		if (e)
			ledger_remove(f->env.ledger, r->key);
		f->stats.failed++;
		log_error("fhir", "%s: not committed (%s); answered 503", r->origin, reason);
	}
	for (w = r->waiters; w; w = next) {
		next = w->next_waiter;
		if (ok)
			answer(w);
		else
			respond_outcome(w, 503, "error", "transient", "not committed; send it again");
	}
	if (ok)
		answer(r);
	else
		respond_outcome(r, 503, "error", "transient", "not committed; send it again");
}

static void decide(struct fh_req *r);

/* The shared ledger's barrier passed: decide again (or, when the tail
 * stopped, answer 503: no decision may be taken from the ledger). */
static void barrier_cb(struct ltail_gate *g, int ok)
{
	struct fh_req *r = container_of(g, struct fh_req, gate);
	if (!ok) {
		r->f->stats.unavailable++;
		respond_outcome(r, 503, "error", "transient", "shutting down; send it again");
		return;
	}
	decide(r);
}

/* The request is read and mapped: its ledger key, then decide. */
static void settle(struct fh_req *r)
{
	size_t n = 0;
	const void *parts[1];
	size_t lens[1];

	for (size_t i = 0; i < r->nitems; i++)
		if (r->items[i].kind != FH_SKIPPED) {
			if (n != i)
				memcpy(r->keys + n * LEDGER_KEY_LEN, r->keys + i * LEDGER_KEY_LEN, LEDGER_KEY_LEN);
			n++;
		}
	if (n == 1) {
		memcpy(r->key, r->keys, LEDGER_KEY_LEN);
	} else {
		parts[0] = r->keys;
		lens[0] = n * LEDGER_KEY_LEN;
		ledger_hash(r->key, 1, parts, lens);
		/* domain-separate from a single resource's key */
		r->key[0] ^= 0x5a;
	}
	decide(r);
}

/* Answer r from the ledger, join its first copy, answer it now (nothing to
 * commit), or submit its job. Runs again after a barrier when its key was
 * absent from a shared ledger. */
static void decide(struct fh_req *r)
{
	struct fhttp *f = r->f;
	struct ledger_entry *e = ledger_find(f->env.ledger, r->key);

	if (e && e->state == LEDGER_INFLIGHT && e->owner) {
		struct fh_req *first = e->owner;
		f->stats.joined++;
		log_info("fhir", "%s: resent while the first copy is in flight; answered with it",
			 r->origin);
		inflight_remove(f, r); /* (parked before) the first copy is the one in flight */
		pub_job_free(r->job);
		r->job = NULL;
		r->duplicate = 1; /* answered as a resend once the first copy commits */
		r->next_waiter = first->waiters;
		first->waiters = r;
		return;
	}
	if (e && e->state == LEDGER_COMMITTED) {
		f->stats.duplicates++;
		r->duplicate = 1;
		log_info("fhir", "%s: duplicate of a committed request; answered again", r->origin);
		answer(r);
		return;
	}
	if (!r->prepared) { /* the body is the frame's: copy it before parking */
		r->prepared = 1;
		if (f->env.raw && r->nitems > r->nitems_skipped &&
		    records_add_raw(r->job, f->env.raw_topic, r->body, r->body_len, r->ctype,
				    &(struct rec_origin){ r->origin, NULL }) == 0)
			r->records++;
		if (!r->atomic_fail && r->events > 0)
			r->records++;
		r->body = NULL;
		r->body_len = 0;
	}
	if (r->records == 0) { /* nothing to commit: filtered or rejected without dead letters */
		count(r);
		answer(r);
		return;
	}
	/* it would publish: new only once the shared ledger is read up to now */
	if (!e && !ltail_gate_pass(f->env.tail, &r->gate, barrier_cb)) {
		inflight_add(f, r); /* a barrier that does not pass makes new requests 503 */
		return;
	}
	struct ledger_entry le;
	memset(&le, 0, sizeof le);
	memcpy(le.key, r->key, LEDGER_KEY_LEN);
	le.kind = LEDGER_MSG;
	snprintf(le.ack, sizeof le.ack, "%s", fh_any_rejected(r) ? "AE" : "AA");
	pub_job_set_ledger(r->job, &le);
	pub_job_set_unordered(r->job); /* answered in order by its connection */
	e = ledger_upsert(f->env.ledger, r->key, LEDGER_MSG);
	if (!e || pub_submit(f->env.pub, r->origin_id, r->job) != 0) {
		if (e)
			ledger_remove(f->env.ledger, r->key);
		f->stats.unavailable++;
		respond_outcome(r, 503, "error", "transient", "the publisher cannot take it now");
		return;
	}
	r->job = NULL; /* the publisher's until job_done_cb */
	e->state = LEDGER_INFLIGHT;
	e->ts_ms = util_wall_ms();
	e->owner = r;
	inflight_add(f, r);
}

/* ---- a request ----------------------------------------------------------------- */

static int token_ok(const struct fhttp *f, const struct h1_request *hr)
{
	size_t n;
	const char *v = h1_header(hr, "Authorization", &n);
	if (f->conf.ntokens == 0)
		return 1;
	if (!v || n < 8 || strncasecmp(v, "Bearer ", 7) != 0)
		return 0;
	v += 7;
	n -= 7;
	int ok = 0;
	for (int i = 0; i < f->conf.ntokens; i++) {
		size_t tl = strlen(f->conf.tokens[i]);
		unsigned char diff = (unsigned char)(tl != n);
		for (size_t k = 0; k < n; k++) /* constant time over the presented token */
			diff |= (unsigned char)(v[k] ^ (k < tl ? f->conf.tokens[i][k] : 0));
		ok |= diff == 0;
	}
	return ok;
}

/* Content-Type: 1 NDJSON, 0 a resource (JSON, XML or unsaid), -1 unsupported. */
static int body_kind(const struct h1_request *hr)
{
	size_t n;
	const char *v = h1_header(hr, "Content-Type", &n);
	if (!v || !n)
		return 0;
	size_t m = 0;
	while (m < n && v[m] != ';' && v[m] != ' ')
		m++;
#define IS(s) (m == sizeof(s) - 1 && strncasecmp(v, s, m) == 0)
	if (IS("application/fhir+ndjson") || IS("application/x-ndjson") || IS("application/ndjson"))
		return 1;
	if (IS("application/fhir+json") || IS("application/json") || IS("application/fhir+xml") ||
	    IS("application/xml") || IS("text/xml") || IS("application/json+fhir") ||
	    IS("application/xml+fhir"))
		return 0;
#undef IS
	return -1;
}

static void copy_request_id(struct fh_req *r, const struct h1_request *hr)
{
	size_t n, k = 0;
	const char *v = h1_header(hr, "X-Request-Id", &n);
	for (size_t i = 0; v && i < n && k + 1 < sizeof r->request_id; i++) {
		char c = v[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == ':')
			r->request_id[k++] = c;
	}
	r->request_id[k] = '\0';
}

/* Read the body of a POST and hand its resources to item_cb. */
static void ingest(struct fh_req *r, const char *type, const char *put_id, int process_message,
		   int ndjson)
{
	struct fhttp *f = r->f;
	int64_t now = util_wall_ms();
	char err[512];

	if (r->body_len == 0) {
		f->stats.bad_request++;
		respond_outcome(r, 400, "error", "required", "the request has no body");
		return;
	}
	if (!(r->job = pub_job_new(job_done_cb, r))) {
		respond_outcome(r, 500, "fatal", "exception", "out of memory");
		return;
	}
	if (ndjson) {
		r->shape = FH_NDJSON;
		r->ctype = "application/fhir+ndjson";
		int rc = map_input_items(f->conf.lsn.name, r->body, r->body_len, now, item_cb, r, err,
					 sizeof err);
		if (rc != 0 && (r->internal || r->nitems == 0)) {
			f->stats.bad_request += !r->internal;
			respond_outcome(r, r->internal ? 500 : 400, "error",
					r->internal ? "exception" : "structure", err);
			return;
		}
		settle(r);
		return;
	}
	fhir_error_t fe = { 0 };
	json_t *res = fhir_read(r->body, r->body_len, NULL, &fe);
	if (!res) {
		snprintf(err, sizeof err, "line %d, column %d: %s", fe.line, fe.column, fe.text);
		f->stats.bad_request++;
		respond_outcome(r, 400, "error", "structure", err);
		return;
	}
	const char *rt = fhir_resource_type(res);
	size_t at = 0;
	while (at < r->body_len && strchr(" \t\r\n\xEF\xBB\xBF", r->body[at]) && r->body[at])
		at++;
	r->ctype = at < r->body_len && r->body[at] == '<' ? "application/fhir+xml"
							 : "application/fhir+json";
	if (type && strcmp(type, rt) != 0) {
		snprintf(err, sizeof err, "resourceType %s does not match the URL's type %s", rt, type);
		json_decref(res);
		f->stats.bad_request++;
		respond_outcome(r, 400, "error", "invalid", err);
		return;
	}
	if (put_id) { /* an R4 rest-hook with payload: PUT [base]/{Type}/{id} */
		const char *rid = json_string_value(json_object_get(res, "id"));
		if (!rid || strcmp(rid, put_id) != 0) {
			json_decref(res);
			f->stats.bad_request++;
			respond_outcome(r, 400, "error", "invalid", "the resource's id does not match the URL's");
			return;
		}
	}
	r->shape = FH_RESOURCE;
	r->type_level = type != NULL && !put_id; /* POST: 201; PUT: 200 */
	snprintf(r->rtype, sizeof r->rtype, "%s", rt);
	if (strcmp(rt, "Bundle") == 0) {
		const char *bt = fhir_bundle_type(res);
		char ntype[32] = "";
		r->type_level = 0;
		if (fh_notification(res, ntype, sizeof ntype)) {
			r->shape = FH_NOTIFY;
			r->skip_first = 1;
			snprintf(r->notify_type, sizeof r->notify_type, "%s", ntype);
			if (strcmp(ntype, "event-notification") != 0 && strcmp(ntype, "query-event") != 0) {
				/* handshake, heartbeat, query-status: acknowledged, not published */
				f->stats.notifications++;
				log_info("fhir", "%s: subscription %s answered, nothing published", r->origin,
					 ntype[0] ? ntype : "notification");
				json_decref(res);
				r->shape = FH_NOTIFY_CONTROL;
				answer(r);
				return;
			}
		} else if (bt && strcmp(bt, "transaction") == 0) {
			r->shape = FH_TRANSACTION;
		} else if (bt && strcmp(bt, "message") == 0) {
			r->shape = FH_MESSAGE;
		} else {
			r->shape = FH_BATCH;
		}
		if (process_message && r->shape != FH_MESSAGE) {
			json_decref(res);
			f->stats.bad_request++;
			respond_outcome(r, 400, "error", "invalid", "$process-message takes a message Bundle");
			return;
		}
	} else if (process_message) {
		json_decref(res);
		f->stats.bad_request++;
		respond_outcome(r, 400, "error", "invalid", "$process-message takes a message Bundle");
		return;
	}
	if (r->shape == FH_TRANSACTION || r->shape == FH_MESSAGE)
		map_input_fhir(f->conf.lsn.name, res, r->body, r->body_len, r->ctype, now, decide_cb, r);
	int rc = map_input_fhir(f->conf.lsn.name, res, r->body, r->body_len, r->ctype, now, item_cb, r);
	json_decref(res);
	if (rc != 0) {
		respond_outcome(r, 500, "fatal", "exception",
				r->internal ? "the events could not be encoded" : "out of memory");
		return;
	}
	settle(r);
}

static void frame_cb(void *opaque, struct lsn_slot *slot, const unsigned char *frame, size_t len)
{
	struct fhttp *f = opaque;
	struct h1_request hr;
	int st;
	struct fh_req *r = calloc(1, sizeof *r);

	f->stats.requests++;
	if (!r || h1_parse_head((const char *)frame, len, &hr, &st) < 0) {
		free(r);
		lsn_slot_reply(slot, NULL, 0);
		return;
	}
	r->f = f;
	r->slot = slot;
	r->keep_alive = hr.keep_alive;
	r->origin_id = lsn_slot_conn_id(slot);
	snprintf(r->origin, sizeof r->origin, "%s/%llu", lsn_slot_origin(slot) ? lsn_slot_origin(slot) : "?",
		 (unsigned long long)++f->seq);
	r->body = (const char *)frame + hr.head_len;
	r->body_len = len - hr.head_len;
	copy_request_id(r, &hr);

	/* the path, without its query, under base */
	size_t plen = hr.path_len, blen = strlen(f->conf.base);
	const char *q = memchr(hr.path, '?', hr.path_len);
	if (q)
		plen = (size_t)(q - hr.path);
	while (blen && f->conf.base[blen - 1] == '/')
		blen--;
	if (plen < blen || memcmp(hr.path, f->conf.base, blen) != 0 ||
	    (plen > blen && hr.path[blen] != '/')) {
		f->stats.bad_request++;
		respond_outcome(r, 404, "error", "not-found", "not a path of this FHIR endpoint");
		return;
	}
	char rest[128];
	size_t rl = plen - blen;
	if (rl >= sizeof rest) {
		f->stats.bad_request++;
		respond_outcome(r, 404, "error", "not-found", "not a path of this FHIR endpoint");
		return;
	}
	memcpy(rest, hr.path + blen, rl);
	rest[rl] = '\0';
	if (!token_ok(f, &hr)) {
		f->stats.unauthorized++;
		log_warn("fhir", "%s: refused: missing or unknown bearer token", r->origin);
		respond_outcome(r, 401, "error", "login", "a valid bearer token is required");
		return;
	}
	int is_get = hr.method_len == 3 && memcmp(hr.method, "GET", 3) == 0;
	int is_post = hr.method_len == 4 && memcmp(hr.method, "POST", 4) == 0;
	int is_put = hr.method_len == 3 && memcmp(hr.method, "PUT", 3) == 0;
	if (is_get && strcmp(rest, "/metadata") == 0) {
		respond(r, 200, fh_capability(f->conf.base));
		return;
	}
	if (!is_post && !is_put) {
		f->stats.bad_request++;
		respond_outcome(r, 405, "error", "not-supported",
				"this endpoint takes POST, PUT [base]/{Type}/{id} and GET [base]/metadata");
		return;
	}
	int kind = body_kind(&hr);
	if (kind < 0) {
		f->stats.bad_request++;
		respond_outcome(r, 415, "error", "not-supported",
				"Content-Type must be FHIR JSON, FHIR XML or application/fhir+ndjson");
		return;
	}
	if ((f->env.draining && *f->env.draining) || !pipeline_can_accept(f->env.pl) || stalled(f)) {
		f->stats.unavailable++;
		respond_outcome(r, 503, "error", "transient",
				"Kafka cannot take more now; retry after Retry-After seconds");
		return;
	}
	if (is_post && (rest[0] == '\0' || strcmp(rest, "/") == 0 || strcmp(rest, "/Bundle") == 0)) {
		ingest(r, NULL, NULL, 0, kind == 1);
	} else if (is_post && strcmp(rest, "/$process-message") == 0) {
		ingest(r, NULL, NULL, 1, 0);
	} else {
		const char *t = rest + 1;
		char *slash = strchr(rest + 1, '/');
		const char *id = NULL;
		if (is_put && slash) { /* [base]/{Type}/{id}: FHIR ids are [A-Za-z0-9-.]{1,64} */
			*slash = '\0';
			id = slash + 1;
			size_t il = strlen(id);
			int idok = il > 0 && il <= 64;
			for (size_t i = 0; idok && i < il; i++)
				idok = (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
				       (id[i] >= '0' && id[i] <= '9') || id[i] == '-' || id[i] == '.';
			if (!idok)
				id = NULL;
		}
		size_t tl = strlen(t);
		int ok = tl > 0 && tl < sizeof r->rtype && t[0] >= 'A' && t[0] <= 'Z';
		for (size_t i = 0; ok && i < tl; i++)
			ok = (t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z');
		if (!ok || kind == 1 || (is_put && !id)) {
			f->stats.bad_request++;
			respond_outcome(r, 404, "error", "not-found",
					"POST [base]/{Type}, PUT [base]/{Type}/{id}, POST [base] or "
					"[base]/$process-message");
			return;
		}
		ingest(r, t, id, 0, 0);
	}
}

/* ---- life cycle ------------------------------------------------------------------- */

struct fhttp *fhttp_new(struct ev_loop *loop, const struct fhttp_conf *c,
			const struct fhttp_env *env, char *errstr, size_t errstr_size)
{
	struct fhttp *f = calloc(1, sizeof *f);
	if (!f) {
		util_seterr(errstr, errstr_size, "out of memory");
		return NULL;
	}
	f->conf = *c;
	f->conf.lsn.http = 1;
	f->env = *env;
	struct lsn_sink sink = { NULL, frame_cb, f };
	f->lsn = lsn_new(loop, &f->conf.lsn, &sink, errstr, errstr_size);
	if (!f->lsn) {
		free(f);
		return NULL;
	}
	return f;
}

void fhttp_free(struct fhttp *f)
{
	if (!f)
		return;
	lsn_free(f->lsn);
	free(f);
}

const struct fhttp_conf *fhttp_config(const struct fhttp *f) { return &f->conf; }
void fhttp_get_stats(const struct fhttp *f, struct fhttp_stats *out) { *out = f->stats; }

/* ---- as one of the daemon's inputs (ingest/input.h): its listener's, but
 * never paused for back-pressure (a full publisher is answered 503), and
 * close frees the requests' side too ---------------------------------------- */

static int in_busy(void *self) { return lsn_input_ops.busy(((struct fhttp *)self)->lsn); }
static void in_stop(void *self) { lsn_input_ops.stop(((struct fhttp *)self)->lsn); }
static void in_close(void *self) { fhttp_free(self); }

static int in_reload_check(void *self, char *errstr, size_t errstr_size)
{
	return lsn_input_ops.reload_check(((struct fhttp *)self)->lsn, errstr, errstr_size);
}

static int in_reload(void *self, char *errstr, size_t errstr_size)
{
	return lsn_input_ops.reload(((struct fhttp *)self)->lsn, errstr, errstr_size);
}

static void in_view(void *self, struct input_view *out)
{
	struct fhttp *f = self;
	out->name = f->conf.lsn.name;
	out->lsn = f->lsn;
	out->fhir = f;
}

const struct input_ops fhttp_input_ops = {
	.kind = "fhir",
	.format = "fhir",
	.busy = in_busy,
	.stop = in_stop,
	.reload_check = in_reload_check,
	.reload = in_reload,
	.close = in_close,
	.view = in_view,
};

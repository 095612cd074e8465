/* fhir_resp — the FHIR listener's answers: OperationOutcomes,
 * transaction-response and batch-response Bundles, the CapabilityStatement.
 * They name paths, codes and reasons, never a value of the request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fate.h"
#include "ingest/fhir_http_int.h"
#include "ingest/http1.h"

json_t *fh_outcome1(const char *severity, const char *code, const char *diag,
		    const char *expression)
{
	json_t *issue = json_pack("{s:s, s:s, s:s}", "severity", severity, "code", code,
				  "diagnostics", diag ? diag : "");
	if (issue && expression)
		json_object_set_new(issue, "expression", json_pack("[s]", expression));
	return json_pack("{s:s, s:[o]}", "resourceType", "OperationOutcome", "issue", issue);
}

static int is_failure(const struct fh_item *it)
{
	return it->kind != FH_SKIPPED && it->kind >= FATE_REJECT;
}

int fh_any_rejected(const struct fh_req *r)
{
	for (size_t i = 0; i < r->nitems; i++)
		if (is_failure(&r->items[i]))
			return 1;
	return 0;
}

/* The HTTP status of one resource's fate. */
static int item_status(const struct fh_item *it, int created)
{
	switch (it->kind) {
	case FATE_PUBLISH:
		return created ? 201 : 200;
	case FATE_FILTER:
		return 200;
	case FATE_REFUSE:
		return it->count == FATE_COUNT_REJECTED_PARSE ? 400 : 422;
	default:
		return 422;
	}
}

static const char *issue_code(const struct fh_item *it)
{
	if (it->kind == FATE_REFUSE)
		return it->count == FATE_COUNT_REJECTED_PARSE ? "structure" : "not-supported";
	return "processing";
}

static void where(const struct fh_req *r, const struct fh_item *it, char *buf, size_t n)
{
	if (r->shape == FH_NDJSON)
		snprintf(buf, n, "line %zu", it->line ? it->line : it->index + 1);
	else if (r->shape == FH_RESOURCE)
		snprintf(buf, n, "%s", r->rtype);
	else
		snprintf(buf, n, "Bundle.entry[%zu].resource", it->index);
}

static json_t *issue_of(const struct fh_req *r, const struct fh_item *it)
{
	char w[96];
	char diag[600];
	where(r, it, w, sizeof w);
	snprintf(diag, sizeof diag, "%s%s%s (HL7 table 0357 code %d)%s",
		 r->shape == FH_NDJSON ? w : "", r->shape == FH_NDJSON ? ": " : "",
		 it->reason ? it->reason : "", it->code,
		 it->deadlettered ? "; the resource is on the dead-letter topic" : "");
	json_t *issue = json_pack("{s:s, s:s, s:s}", "severity", "error", "code", issue_code(it),
				  "diagnostics", diag);
	if (issue && r->shape != FH_NDJSON)
		json_object_set_new(issue, "expression", json_pack("[s]", w));
	return issue;
}

static json_t *info(const char *text)
{
	return json_pack("{s:s, s:s, s:s}", "severity", "information", "code", "informational",
			 "diagnostics", text);
}

/* Totals in one sentence. */
static void summary(const struct fh_req *r, char *buf, size_t n)
{
	size_t res = 0, pub = 0, filt = 0, rej = 0, ev = 0;
	for (size_t i = 0; i < r->nitems; i++) {
		const struct fh_item *it = &r->items[i];
		if (it->kind == FH_SKIPPED)
			continue;
		res++;
		if (it->kind == FATE_PUBLISH && !it->rolled_back) {
			pub++;
			ev += it->nevents;
		} else if (it->kind == FATE_FILTER) {
			filt++;
		} else if (is_failure(it)) {
			rej++;
		}
	}
	if (r->duplicate)
		snprintf(buf, n, "a resend of a committed request: answered again, nothing published "
				 "again (%zu resources)", res);
	else if (r->atomic_fail)
		snprintf(buf, n, "%zu of %zu resources rejected: nothing of this %s was published", rej,
			 res, r->shape == FH_MESSAGE ? "message" : "transaction");
	else
		snprintf(buf, n, "%zu resources: %zu published (%zu events, committed), %zu filtered "
				 "(no mapping matched), %zu rejected", res, pub, ev, filt, rej);
}

/* OperationOutcome with a summary and an issue per rejected resource. */
static json_t *outcome_all(const struct fh_req *r)
{
	char s[256];
	json_t *issues = json_array();
	summary(r, s, sizeof s);
	json_array_append_new(issues, info(s));
	for (size_t i = 0; i < r->nitems; i++)
		if (is_failure(&r->items[i]))
			json_array_append_new(issues, issue_of(r, &r->items[i]));
	return json_pack("{s:s, s:o}", "resourceType", "OperationOutcome", "issue", issues);
}

static json_t *response_bundle(const struct fh_req *r, const char *type)
{
	json_t *entries = json_array();
	for (size_t i = 0; i < r->nitems; i++) {
		const struct fh_item *it = &r->items[i];
		char st[48];
		int code = item_status(it, 1);
		snprintf(st, sizeof st, "%d %s", code, code == 201 ? "Created" : code == 200 ? "OK"
						    : code == 400 ? "Bad Request"
								  : "Unprocessable Entity");
		json_t *resp = json_pack("{s:s}", "status", st);
		if (is_failure(it))
			json_object_set_new(resp, "outcome",
					    json_pack("{s:s, s:[o]}", "resourceType", "OperationOutcome",
						      "issue", issue_of(r, it)));
		else if (r->duplicate)
			json_object_set_new(resp, "outcome",
					    json_pack("{s:s, s:[o]}", "resourceType", "OperationOutcome",
						      "issue", info("already committed; not published again")));
		json_array_append_new(entries, json_pack("{s:o}", "response", resp));
	}
	return json_pack("{s:s, s:s, s:o}", "resourceType", "Bundle", "type", type, "entry", entries);
}

json_t *fh_response(const struct fh_req *r, int *status)
{
	char s[256];
	*status = 200;
	switch (r->shape) {
	case FH_NOTIFY_CONTROL:
		snprintf(s, sizeof s, "subscription %s received; nothing published",
			 r->notify_type[0] ? r->notify_type : "notification");
		return fh_outcome1("information", "informational", s, NULL);
	case FH_RESOURCE: {
		const struct fh_item *it = r->nitems ? &r->items[0] : NULL;
		if (!it)
			return fh_outcome1("information", "informational", "nothing to publish", NULL);
		*status = item_status(it, r->type_level && !r->duplicate);
		if (is_failure(it))
			return json_pack("{s:s, s:[o]}", "resourceType", "OperationOutcome", "issue",
					 issue_of(r, it));
		if (r->duplicate)
			summary(r, s, sizeof s);
		else if (it->kind == FATE_PUBLISH)
			snprintf(s, sizeof s, "published %zu event%s (committed)", it->nevents,
				 it->nevents == 1 ? "" : "s");
		else
			snprintf(s, sizeof s, "no mapping matched: nothing published%s",
				 it->deadlettered ? "; the resource is on the dead-letter topic" : "");
		return fh_outcome1("information", "informational", s, NULL);
	}
	case FH_TRANSACTION:
		if (!r->atomic_fail)
			return response_bundle(r, "transaction-response");
		/* fall through */
	case FH_MESSAGE:
		if (r->atomic_fail) {
			*status = 422;
			for (size_t i = 0; i < r->nitems; i++)
				if (item_status(&r->items[i], 0) == 400)
					*status = 400;
		}
		return outcome_all(r);
	case FH_BATCH:
		return response_bundle(r, "batch-response");
	case FH_NOTIFY:
	case FH_NDJSON:
	default:
		if (fh_any_rejected(r))
			*status = 422;
		return outcome_all(r);
	}
}

int fh_notification(json_t *bundle, char *ntype, size_t n)
{
	const char *bt = json_string_value(json_object_get(bundle, "type"));
	json_t *first = json_object_get(json_array_get(json_object_get(bundle, "entry"), 0), "resource");
	const char *frt = json_string_value(json_object_get(first, "resourceType"));
	const char *t = NULL;

	ntype[0] = '\0';
	if (!bt || !frt || (strcmp(bt, "subscription-notification") != 0 && strcmp(bt, "history") != 0))
		return 0;
	if (strcmp(frt, "SubscriptionStatus") == 0) {
		/* R4B and R5 */
		t = json_string_value(json_object_get(first, "type"));
	} else if (strcmp(frt, "Parameters") == 0) {
		/* R4 backport: Parameters profiled as subscription-status-r4 */
		json_t *params = json_object_get(first, "parameter"), *p;
		size_t i;
		int status_like = 0;
		json_array_foreach(params, i, p) {
			const char *name = json_string_value(json_object_get(p, "name"));
			if (!name)
				continue;
			if (strcmp(name, "subscription") == 0)
				status_like = 1;
			if (strcmp(name, "type") == 0)
				t = json_string_value(json_object_get(p, "valueCode"));
		}
		if (!status_like && !t)
			return 0;
	} else {
		return 0;
	}
	snprintf(ntype, n, "%s", t ? t : "event-notification");
	return 1;
}

json_t *fh_capability(const char *base)
{
	return json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:[s,s,s], s:{s:s, s:s}, s:[{s:s, s:[{s:s},{s:s}], "
		"s:[{s:s, s:s}]}]}",
		"resourceType", "CapabilityStatement", "status", "active", "date", "2026-12-01",
		"kind", "instance", "fhirVersion", "4.0.1", "format", "json", "xml", "ndjson",
		"implementation", "description", "hl7bridge FHIR ingest: resources are published to Kafka",
		"url", base, "rest", "mode", "server", "interaction", "code", "transaction", "code",
		"batch", "operation", "name", "process-message", "definition",
		"http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message");
}

/* ---- writing an answer --------------------------------------------------------- */

void fh_write_answer(struct lsn_slot *slot, int status, json_t *body, int last,
		     const char *request_id, int retry_after_s)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	size_t blen = text ? strlen(text) : 0;
	char head[512];
	int hl;

	json_decref(body);
	hl = snprintf(head, sizeof head,
		      "HTTP/1.1 %d %s\r\nContent-Type: application/fhir+json; charset=utf-8\r\n"
		      "Content-Length: %zu\r\n%s%s%s%s",
		      status, h1_reason(status), blen, last ? "Connection: close\r\n" : "",
		      request_id[0] ? "X-Request-Id: " : "", request_id, request_id[0] ? "\r\n" : "");
	if (status == 503)
		hl += snprintf(head + hl, sizeof head - (size_t)hl, "Retry-After: %d\r\n",
			       retry_after_s);
	if (status == 401)
		hl += snprintf(head + hl, sizeof head - (size_t)hl,
			       "WWW-Authenticate: Bearer realm=\"hl7bridge\"\r\n");
	if (status == 405)
		hl += snprintf(head + hl, sizeof head - (size_t)hl, "Allow: GET, POST\r\n");
	hl += snprintf(head + hl, sizeof head - (size_t)hl, "\r\n");
	char *out = malloc((size_t)hl + blen);
	if (!out) {
		lsn_slot_reply(slot, NULL, 0); /* closes: the client resends */
	} else {
		memcpy(out, head, (size_t)hl);
		if (blen)
			memcpy(out + hl, text, blen);
		if (last)
			lsn_slot_reply_last(slot, out, (size_t)hl + blen);
		else
			lsn_slot_reply(slot, out, (size_t)hl + blen);
		free(out);
	}
	free(text);
}

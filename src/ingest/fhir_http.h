/*
 * fhir_http — `[fhir NAME]`: FHIR over HTTP(S), to FHIR what the MLLP
 * listener is to HL7v2. Runs on the event loop; the connections, TLS,
 * limits and ordered replies are the listener's (ingest/listener.h in HTTP
 * mode), the per-resource decision is fate.c's, the mappings, encoder,
 * publisher and ledger are the MLLP pipeline's.
 *
 * Requests:
 *   POST [base]/{Type}            one resource (JSON or XML)       201 / 200
 *   PUT  [base]/{Type}/{id}       one resource (an R4 rest-hook
 *                                 Subscription with payload)       200
 *   POST [base]                   transaction, batch, message,
 *                                 subscription-notification Bundle,
 *                                 or application/fhir+ndjson       200 + response Bundle / OperationOutcome
 *   POST [base]/$process-message  message Bundle                   200
 *   GET  [base]/metadata          a CapabilityStatement
 *
 * The answer is written only after the request's events (and dead letters)
 * are committed. A rejected resource gets 422 (400 when unreadable) with an
 * OperationOutcome naming the path and the reason, never a value. While
 * Kafka is unavailable (a request has waited unavailable.after for its
 * commit or its shared-ledger barrier, or the publisher holds max.inflight
 * jobs) or the bridge is
 * draining: 503 with Retry-After, nothing read into the pipeline; the
 * requests already submitted wait for their commit. A commit that fails: 503 too, and the client resends.
 *
 * Resends: a request's ledger key is the content hash the file drops and
 * `hl7bridge map` use for the same resource (SHA-256 of its canonical JSON,
 * so JSON and XML of one resource are one request); for a Bundle or NDJSON
 * body, SHA-256 over those keys of every resource in it (Bundle.id,
 * timestamps and a notification's SubscriptionStatus left out). A resend of
 * a committed request is answered again without publishing; one still in
 * flight waits for the first copy's commit. X-Request-Id is echoed, not
 * used as a key. With a shared ledger (env.tail), a request whose key is
 * absent and that would publish waits for the tail's next barrier before
 * it is decided new, as MLLP messages do (ledger_tail.h), so a resend to
 * another instance is answered from the ledger too.
 *
 * Subscription notifications (R4 backport "history" Bundles whose first
 * entry is a subscription-status Parameters, R4B/R5
 * "subscription-notification" Bundles): handshake, heartbeat and
 * query-status are answered 200 and not published; an event-notification's
 * resources (all entries but the status) are published.
 */
#ifndef HB_FHIR_HTTP_H
#define HB_FHIR_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "ingest/listener.h"
#include "map/map.h"
#include "publish/evenc.h"

struct pipeline;
struct pub;
struct ledger;
struct ltail;

#define FHTTP_MAX_TOKENS 8

struct fhttp_conf {
	struct lsn_conf lsn;        /* bind, TLS, limits; lsn.http = 1 */
	char base[128];             /* path prefix, "/fhir" */
	char tokens[FHTTP_MAX_TOKENS][256]; /* accepted bearer tokens; none: no authentication */
	int ntokens;
	int retry_after_s;          /* Retry-After of a 503 */
	/* Kafka counts as unavailable (new requests get 503) while a submitted
	 * request has waited this long for its commit, or the publisher is full. */
	int64_t unavailable_after_ms;
};

void fhttp_conf_defaults(struct fhttp_conf *c);

/* What the FHIR listeners share with the MLLP pipeline (borrowed). */
struct fhttp_env {
	struct pipeline *pl;
	struct pub *pub;
	struct ledger *ledger;
	const char *deadletter_topic;
	int deadletter;
	enum map_unmatched_policy unmatched;
	int raw;
	const char *raw_topic;      /* healthcare.raw.fhir */
	enum evenc_format format;   /* the events' value format */
	const int *draining;        /* non-zero: answer 503 and close */
	struct ltail *tail;         /* shared ledger (NULL: alone); freed: parked requests get 503 */
};

struct fhttp_stats {
	uint64_t requests;          /* complete requests read */
	uint64_t ok, rejected;      /* answered 2xx / 422 or 400 by the mappings */
	uint64_t bad_request;       /* refused before the pipeline: 400 404 405 415 */
	uint64_t unauthorized, unavailable, failed;
	uint64_t duplicates, joined, notifications; /* handshake/heartbeat not published */
	uint64_t resources, published, filtered, refused, mapping_rejected, deadlettered, events;
};

struct fhttp;

struct fhttp *fhttp_new(struct ev_loop *loop, const struct fhttp_conf *c,
			const struct fhttp_env *env, char *errstr, size_t errstr_size);
void fhttp_free(struct fhttp *f);
const struct fhttp_conf *fhttp_config(const struct fhttp *f);
void fhttp_get_stats(const struct fhttp *f, struct fhttp_stats *out);

/* A FHIR listener as one of the daemon's inputs ({ &fhttp_input_ops, f }):
 * its listener's operations; close frees it. */
extern const struct input_ops fhttp_input_ops;

#endif

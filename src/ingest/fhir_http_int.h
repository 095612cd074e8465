/* fhir_http internals shared by the request side (fhir_http.c) and the
 * answers (fhir_resp.c). */
#ifndef HB_FHIR_HTTP_INT_H
#define HB_FHIR_HTTP_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ingest/fhir_http.h"
#include "publish/ledger.h"
#include "publish/ledger_tail.h"

/* kind: an enum fate_kind, or this for a notification's status entry */
#define FH_SKIPPED 9

/* One resource of a request and what became of it. */
struct fh_item {
	size_t index;         /* Bundle entry or NDJSON message number, from 0 */
	size_t line;          /* NDJSON line, else 0 */
	uint8_t kind;         /* enum fate_kind or FH_SKIPPED */
	uint8_t count;        /* enum fate_count */
	uint8_t deadlettered;
	uint8_t rolled_back;  /* mapped, but its transaction failed as a whole */
	int code;             /* table 0357 */
	size_t nevents;
	char *reason;         /* heap; paths and reasons, never values */
};

enum fh_shape {
	FH_RESOURCE,       /* one resource */
	FH_TRANSACTION,    /* all or nothing */
	FH_BATCH,          /* entry by entry (batch, collection, history, ...) */
	FH_MESSAGE,        /* all or nothing, answered with an OperationOutcome */
	FH_NOTIFY,         /* a subscription event-notification */
	FH_NOTIFY_CONTROL, /* handshake, heartbeat, query-status: not published */
	FH_NDJSON,
};

struct lsn_slot;
struct pub_job;
struct fhttp;

struct fh_req {
	struct fhttp *f;
	struct lsn_slot *slot;
	uint64_t origin_id;
	char origin[224];
	char request_id[80];
	int keep_alive;
	enum fh_shape shape;
	int type_level;       /* POST [base]/{Type}: 201 when published */
	char rtype[64];
	char notify_type[32];
	int skip_first;       /* entry 0 is a notification's status */
	int atomic_fail;      /* a transaction or message with a rejected entry */
	int internal;         /* encoding failed */
	int duplicate;        /* answered from the ledger */
	int note_rejections;  /* some resource was rejected */
	const char *body;     /* during the frame callback only */
	size_t body_len;
	const char *ctype;
	struct fh_item *items;
	uint8_t *keys;        /* LEDGER_KEY_LEN per item */
	size_t nitems, cap, nitems_skipped;
	struct pub_job *job;
	size_t records;
	size_t events;
	uint8_t key[LEDGER_KEY_LEN];
	int prepared;         /* its raw copy is in the job (the body is gone after parking) */
	struct ltail_gate gate; /* shared ledger: parked until a barrier before "new" */
	struct fh_req *waiters, *next_waiter;
	int64_t submitted_ms;      /* monotonic, since it parked for its barrier or was submitted */
	struct fh_req *iprev, *inext; /* the listener's requests awaiting barrier or commit */
};

/* The answer for a decided request (status filled), NULL on memory failure. */
json_t *fh_response(const struct fh_req *r, int *status);
/* An OperationOutcome with one issue (expression may be NULL). */
json_t *fh_outcome1(const char *severity, const char *code, const char *diag,
		    const char *expression);
/* Whether bundle is a subscription notification with its status first;
 * its type ("handshake", "event-notification", ...) into ntype. */
int fh_notification(json_t *bundle, char *ntype, size_t n);
int fh_any_rejected(const struct fh_req *r);
json_t *fh_capability(const char *base);
/* Write the HTTP response: status, the FHIR JSON body (taken; NULL: none),
 * X-Request-Id when request_id is not empty, Retry-After on 503; last: the
 * connection's last response (Connection: close). Out of memory: the
 * connection is closed, so the client sends again. */
void fh_write_answer(struct lsn_slot *slot, int status, json_t *body, int last,
		     const char *request_id, int retry_after_s);

#endif

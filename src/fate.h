/*
 * fate — what becomes of one input message, decided in one place for every
 * input: MLLP (pipeline.c), file drops (fileproc.c) and FHIR over HTTP
 * (ingest/fhir_http.c). The callers differ only in how they answer (an HL7
 * ACK, a file report, an HTTP status); whether a message is published,
 * filtered, rejected or refused, and whether its raw bytes go to the
 * dead-letter topic, is this function's answer alone.
 *
 *   unreadable                      REFUSE   (AR / 400)  dead letter if deadletter = on
 *   mapped, events                  PUBLISH  (AA / 2xx)
 *   no mapping matched, filter      FILTER   (AA / 200)  nothing written
 *   no mapping matched, deadletter  FILTER   (AA / 200)  dead letter, always
 *   no mapping matched, reject      REFUSE   (AR / 422)  dead letter if deadletter = on
 *   a mapping rejected it, or error REJECT   (AE / 422)  dead letter if deadletter = on
 */
#ifndef HB_FATE_H
#define HB_FATE_H

#include "map/map.h"

enum fate_kind {
	FATE_PUBLISH = 0, /* its events are published; answered positively */
	FATE_FILTER = 1,  /* nothing published; answered positively */
	FATE_REJECT = 2,  /* a mapping refused it: AE, HTTP 422 */
	FATE_REFUSE = 3,  /* unreadable, or unmatched under "reject": AR, HTTP 400/422 */
};

/* The counter a first-time message is counted under. */
enum fate_count {
	FATE_COUNT_PUBLISHED = 0,
	FATE_COUNT_FILTERED = 1,
	FATE_COUNT_REJECTED_PARSE = 2,
	FATE_COUNT_REJECTED_MAP = 3,
	FATE_COUNT_REJECTED_UNMATCHED = 4,
};

struct fate_policy {
	int deadletter;                      /* [bridge] deadletter (per drop: its own) */
	enum map_unmatched_policy unmatched; /* [bridge] unmatched (per drop: its own) */
};

struct fate {
	enum fate_kind kind;
	int deadletter;          /* write the raw message to the dead-letter topic */
	const char *stage;       /* "parse" or "map": the dead letter's hl7bridge-stage */
	enum fate_count count;
};

/* readable = 0: the message could not be read (r is ignored); else r is
 * map_apply's result for it. */
struct fate fate_decide(const struct fate_policy *pol, int readable, enum map_result r);

/* "publish", "filter", "reject", "refuse". */
const char *fate_kind_name(enum fate_kind k);

#endif

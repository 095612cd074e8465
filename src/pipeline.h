/*
 * pipeline — one inbound HL7v2 message, from bytes to its acknowledgement:
 * parse → ledger look-up → map → encode → publisher job → (commit) → ACK.
 *
 * Runs on the event-loop thread. For every message, `done` is called exactly
 * once, with the acknowledgement to send (not MLLP-framed), or with NULL
 * when no acknowledgement may be sent (the publisher failed: the sender must
 * resend to an instance that can commit). It may be called before
 * pipeline_hl7() returns (duplicates of committed messages, messages filtered
 * or rejected without dead-lettering).
 *
 * Acknowledgement semantics:
 *  AA / CA  the message's events (and its ledger record) are committed;
 *  AE / CE  rejected by a mapping (ERR-3 from table 0357, a reason that names
 *           the target and source path, never a value); dead-lettered in a
 *           committed transaction when dead letters are on;
 *  AR / CR  unreadable, or unmatched under the "reject" policy, or an MSH-10
 *           with control characters or over 199 characters (ERR-3 102; MSA-2
 *           echoes it escaped and cut, see hl7_ack.c).
 * A message whose events or raw copy are larger than Kafka takes (the
 * topic's max.message.bytes, the producer's message.max.bytes) gets AE with
 * ERR-3 207 and is dead-lettered, cut to fit if need be: it never blocks
 * its lane.
 * A message whose ledger key was already committed is answered again without
 * republishing; one whose first copy is still in flight waits for it.
 */
#ifndef HB_PIPELINE_H
#define HB_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "map/map.h"
#include "publish/evenc.h"
#include "publish/ledger.h"
#include "publish/pub.h"
#include "publish/registry.h"

struct pipeline_conf {
	const char *instance;            /* prefix of ACK control ids */
	const char *deadletter_topic;
	int deadletter;                  /* dead-letter rejected/unreadable messages */
	int raw;                         /* copy every input to raw_topic */
	const char *raw_topic;
	enum map_unmatched_policy unmatched;
	enum evenc_format format;        /* the events' value format */
	size_t max_segments;
	size_t max_field_len;
};

/* Event topics counted by name; events to further topics count as "other". */
#define PIPELINE_MAX_TOPICS 32

enum pipeline_stage {
	PIPELINE_STAGE_PARSE = 0, /* unreadable: AR */
	PIPELINE_STAGE_MAP = 1,   /* a mapping rejected it (AE), or none matched under "reject" (AR) */
	PIPELINE_STAGE_PUBLISH = 2, /* a record larger than Kafka takes (AE, ERR-3 207) */
	PIPELINE_STAGES = 3,
};

/* Rejections are counted by HL7 table 0357 code: 100 101 102 200 201 203 207
 * each apart, every other code in one more slot (pipeline_code_index). */
enum { PIPELINE_CODES = 8 };

/* Counters, written on the loop thread only. Once nothing is in flight:
 * received = accepted + rejected_parse + rejected_map + rejected_unmatched
 *            + rejected_publish + filtered + duplicates + joined + failed. */
struct pipeline_stats {
	uint64_t received, accepted, events, duplicates, joined, filtered;
	uint64_t rejected_parse, rejected_map, rejected_unmatched, deadlettered, failed;
	uint64_t rejected_publish; /* events (or raw copy) larger than Kafka takes: AE 207 */
	uint64_t by_code[PIPELINE_CODES]; /* table 0357: 100 101 102 200 201 203 207 other */
	/* First-time rejections (resends answered from the ledger are duplicates)
	 * by stage and by_code index. */
	uint64_t rejected_by[PIPELINE_STAGES][PIPELINE_CODES];
	/* Events committed, by topic. */
	struct pipeline_topic_count {
		char topic[128];
		uint64_t events;
	} topics[PIPELINE_MAX_TOPICS];
	int ntopics;
	uint64_t events_other_topics;
};

/* A recent rejection, for operators: ids and the reason (which names codes,
 * positions and paths, never values). */
struct pipeline_rejection {
	int64_t ts_ms;            /* wall clock */
	enum pipeline_stage stage;
	int code;                 /* table 0357 */
	char ack[6];              /* "AE/CE" (error) or "AR/CR" (reject), as the sender's mode picks */
	char reason[384];
	char origin[192];
	char msh10[64];
};

/* Rejections kept for pipeline_recent_rejections(). */
#define PIPELINE_RECENT_REJECTIONS 32

typedef void (*pipeline_done_cb)(void *ctx, const char *ack, size_t len);

struct pipeline;

/* The mapping set is borrowed (pipeline_set_maps swaps it on reload). */
struct pipeline *pipeline_new(const struct pipeline_conf *c, struct pub *pub,
			      struct ledger *ledger, char *errstr, size_t errstr_size);
void pipeline_free(struct pipeline *p);

/* Use this mapping set from now on. For Avro, register its schemas first
 * (blocking HTTP): returns -1 with errstr and keeps the old set on failure. */
int pipeline_set_maps(struct pipeline *p, const struct map_set *maps, struct registry *reg,
		      char *errstr, size_t errstr_size);

void pipeline_hl7(struct pipeline *p, uint64_t origin_id, const char *origin,
		  const unsigned char *msg, size_t len, pipeline_done_cb done, void *ctx);

/* Share the ledger with other instances (ledger_tail.h): a message whose key
 * is absent waits for the tail's next barrier before it is decided new.
 * Messages parked when the tail is freed are answered with no ACK. */
struct ltail;
void pipeline_set_tail(struct pipeline *p, struct ltail *tail);

/* Room for another message (publisher and pipeline below their limits)? */
int pipeline_can_accept(const struct pipeline *p);

void pipeline_get_stats(const struct pipeline *p, struct pipeline_stats *out);

/* Index into pipeline_stats.by_code for a 0357 code. */
int pipeline_code_index(int code);
/* The 0357 code of a by_code index (0 for "other"). */
int pipeline_code_of_index(int idx);
/* "parse" or "map". */
const char *pipeline_stage_name(enum pipeline_stage st);

/* Copy up to max recent rejections into out, newest first; returns how many. */
size_t pipeline_recent_rejections(const struct pipeline *p, struct pipeline_rejection *out,
				  size_t max);

/* For the FHIR listener, on the loop thread: the current mapping set and
 * its event encoder (both replaced by pipeline_set_maps on reload). */
/* Add another input's first-time rejection to the recent ones (the status
 * page's "Recent rejections"); answer is what its sender got ("422"). The
 * counters are the caller's. */
void pipeline_note_rejection(struct pipeline *p, enum pipeline_stage st, int code,
			     const char *answer, const char *reason, const char *origin,
			     const char *id);

struct evenc;
const struct map_set *pipeline_maps(const struct pipeline *p);
struct evenc *pipeline_evenc(struct pipeline *p);

#endif

/*
 * ledger_tail — one ledger for every instance that shares a state topic.
 *
 * A thread owns a read_committed consumer of the state topic (the one
 * ledger_rebuild_open left where the rebuild stopped, every partition
 * assigned, no group subscription) and hands every record it reads to the
 * event-loop thread, which applies it to the ledger (the ledger stays
 * loop-owned). So every instance learns the other instances' commits within
 * a fetch round trip.
 *
 * The barrier. "Absent from the ledger" means "new" only once the tail has
 * read every transaction that committed before the message arrived. A
 * client parks such a message with ltail_wait(); the tail then asks for the
 * end offsets of every state partition (one ListOffsets for all of them,
 * read_uncommitted, so the high watermark: a committed transaction can sit
 * behind one still open, and the last stable offset would stop before it)
 * and calls the waiter back on the loop once its read_committed position
 * has reached them on every partition and every record before that point is
 * applied. One barrier serves every waiter parked before its ListOffsets
 * began; a waiter parked after that asks for the next barrier, whose
 * ListOffsets is sent at once (several barriers may wait together; they
 * pass in order). A barrier lasts until every transaction open
 * at its ListOffsets has ended: normally one commit; a transaction left
 * open by a dead instance holds it until that instance restarts (or is
 * taken over: both abort it) or the broker aborts it after
 * transaction.timeout.ms.
 *
 * The tail also collects heartbeats (hb/<instance> records) for takeover.
 *
 * Threads: ltail_new, ltail_wait, ltail_busy, ltail_free and the peer
 * queries run on the loop thread; waiters are called back there.
 */
#ifndef HB_LEDGER_TAIL_H
#define HB_LEDGER_TAIL_H

#include <stdint.h>

#include <ev.h>
#include <librdkafka/rdkafka.h>

#include "publish/ledger.h"

struct ltail;

/* Embedded in the waiting object; ok = 0 when the tail is freed before the
 * barrier passed (no decision may be taken from the ledger then). */
struct ltail_waiter {
	void (*cb)(struct ltail_waiter *w, int ok);
	/* the tail's */
	struct ltail_waiter *next;
	uint64_t seq;       /* the barrier it waits for */
	int64_t parked_us;
};

struct ltail_conf {
	struct ev_loop *loop;
	struct ledger *ledger;
	const char *instance;      /* own "msgs/<instance>-<lane>/" records are applied locally already */
	const char *state_topic;
	const rd_kafka_conf_t *kafka; /* base configuration (not consumed) */
};

/* Takes `consumer` and `ends` (from ledger_rebuild_open) in every case and
 * starts the thread. NULL with errstr on failure. */
struct ltail *ltail_new(const struct ltail_conf *c, rd_kafka_t *consumer,
			rd_kafka_topic_partition_list_t *ends, char *errstr, size_t errstr_size);
/* Stop the thread; every parked waiter is called with ok = 0. */
void ltail_free(struct ltail *t);

/* Park w until a barrier issued after this call has passed. */
void ltail_wait(struct ltail *t, struct ltail_waiter *w);
/* Waiters parked? */
int ltail_busy(const struct ltail *t);

/* The barrier before "new", for every input that decides from the ledger
 * (pipeline messages, FHIR requests, a file drop's ledger question): a gate
 * embedded in the waiting object, zeroed to start. */
enum ltail_gate_state {
	LTAIL_GATE_CLOSED = 0, /* no barrier asked for yet */
	LTAIL_GATE_PARKED,     /* waiting for its barrier */
	LTAIL_GATE_PASSED,     /* its barrier passed: decide from the ledger as it is */
	LTAIL_GATE_STOPPED,    /* the tail stopped first: no decision may be taken */
};
struct ltail_gate;
typedef void (*ltail_gate_cb)(struct ltail_gate *g, int ok);
struct ltail_gate {
	struct ltail_waiter w;
	ltail_gate_cb cb;
	enum ltail_gate_state state;
};
/* 1: decide from the ledger now (no tail, or g's barrier passed). 0: not
 * yet; the first such call parks g for the next barrier and cb(g, ok) comes
 * on the loop once it passed (ok = 1: call again, it answers 1) or the tail
 * stopped (ok = 0). */
int ltail_gate_pass(struct ltail *t, struct ltail_gate *g, ltail_gate_cb cb);
/* Ready g for another question (a reused gate, e.g. the file drop's). */
void ltail_gate_reset(struct ltail_gate *g);

struct ltail_stats {
	uint64_t barriers;       /* barriers passed */
	uint64_t waiters;        /* waiters called back after a barrier */
	uint64_t records;        /* state records applied from the tail */
	uint64_t query_errors;   /* failed ListOffsets (retried) */
	uint64_t parked;         /* waiters parked now */
	uint64_t barrier_p50_us, barrier_p99_us, barrier_max_us; /* a waiter's wait: parked → called back */
};
void ltail_get_stats(const struct ltail *t, struct ltail_stats *out);

/* Heartbeats: instance name → the value's "ts" of its newest hb/ record and
 * when this process read it (monotonic ms). 0 if never seen. */
#define LTAIL_MAX_PEERS 64
int ltail_peer(const struct ltail *t, const char *instance, int64_t *ts_ms, int64_t *seen_mono_ms);
/* The i-th peer seen (0..), NULL past the end. */
const char *ltail_peer_name(const struct ltail *t, int i);

#endif

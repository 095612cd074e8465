/*
 * kstats — the few numbers that matter from librdkafka's statistics JSON
 * (statistics.interval.ms + stats_cb): broker round-trip times, the
 * transaction state, and the producer queue depth.
 *
 * Pure: no I/O, no logging. The publisher calls kstats_parse() from a lane
 * thread and keeps the result under a lock for readers on other threads.
 */
#ifndef HB_KSTATS_H
#define HB_KSTATS_H

#include <stddef.h>
#include <stdint.h>

/* Brokers beyond this many are not reported (the rest of the cluster). */
#define KSTATS_MAX_BROKERS 16

struct kstats_broker {
	char name[96];     /* "host:port/id", or a logical name such as TxnCoordinator */
	char state[16];    /* UP, DOWN, CONNECT, ... */
	int64_t rtt_avg_us; /* over the last statistics window; 0 when idle */
	int64_t rtt_p99_us;
};

struct kstats {
	int valid;           /* 0 until a first statistics document was parsed */
	char txn_state[32];  /* eos.txn_state: Ready, InTransaction, CommittingTransaction, ... */
	char idemp_state[32];
	int64_t msg_cnt;     /* messages in the producer queue (not yet acknowledged by brokers) */
	int64_t msg_size;    /* their bytes */
	int64_t txmsgs;      /* messages sent to brokers, total */
	int nbrokers;
	struct kstats_broker brokers[KSTATS_MAX_BROKERS];
};

/* Parse one statistics document. Returns 0, or -1 with errstr (not JSON, or
 * not an object); out is left untouched on failure. */
int kstats_parse(const char *json, size_t len, struct kstats *out, char *errstr,
		 size_t errstr_size);

#endif

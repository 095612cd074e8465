/*
 * takeover — another instance's work, when that instance died and does not
 * come back (docs/ARCHITECTURE.md, "Several instances").
 *
 * 1. Fence: init_transactions with every transactional id the dead
 *    instance may have used (<name>-0 .. <name>-<lanes-1>). The coordinator
 *    aborts its open transactions and bumps the epoch, so a zombie of it can
 *    commit nothing any more, and the peers' ledger barriers stop waiting
 *    for those transactions.
 * 2. Files: every file in work/<name>/ of each drop is renamed back into
 *    inbox/ (atomic: two instances taking over at once move each file once);
 *    whoever claims it next looks its key up after a barrier and resumes at
 *    the ledger's next_index.
 *
 * Heartbeats tell a live instance from a dead one: each instance commits a
 * record hb/<instance> {"ts","lanes"} to the state topic every [ledger]
 * heartbeat, in a transaction of its own lanes, so it stands for commits
 * that actually succeed.
 *
 * Blocking calls (fencing waits for the coordinator): never on the loop.
 */
#ifndef HB_TAKEOVER_H
#define HB_TAKEOVER_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "ingest/filedrop.h"
#include "publish/pub.h"

/* What the state topic says about an instance since a point in time. */
struct takeover_info {
	int heartbeats;     /* hb/<name> records read */
	int64_t hb_ts_ms;   /* the newest one's "ts" (wall clock of its writer) */
	int lanes;          /* most lanes seen (heartbeat "lanes", msgs/<name>-<lane>/ keys) */
};

/* Read the state topic (read_committed) from since_ms to its end. 0, or -1
 * with errstr. */
int takeover_scan(const rd_kafka_conf_t *kc, const char *state_topic, const char *name,
		  int64_t since_ms, int timeout_ms, struct takeover_info *out, char *errstr,
		  size_t errstr_size);

/* Fence <name>-0 .. <name>-<lanes-1>. 0, or -1 with errstr (the ids fenced
 * before the failure stay fenced). */
int takeover_fence(const rd_kafka_conf_t *kc, const char *name, int lanes, int timeout_ms,
		   char *errstr, size_t errstr_size);

/* Move every file of <drop>/work/<name>/ back into <drop>/inbox/. Returns the number of
 * files moved (a file another instance moved first is not counted). */
int takeover_files(const struct drop_conf *drops, int ndrops, const char *name);

/* The broker-side transaction lifetime: [kafka] transaction.timeout.ms
 * (librdkafka's default 60000). */
int64_t takeover_txn_timeout_ms(const rd_kafka_conf_t *kc);

/* Submit this instance's heartbeat (a job of one state record). Its commit
 * sets *last_ok_ms (wall clock) on the loop. 0, or -1 when the publisher
 * refused it (back-pressure: the next tick tries again). */
int takeover_heartbeat(struct pub *pub, const char *state_topic, const char *instance, int lanes,
		       int64_t *last_ok_ms);


/* ---- in the daemon (loop thread) ---- */

struct ev_loop;
struct ltail;
struct daemon_settings;
struct takeover_watch;

/* Heartbeats every s->heartbeat_ms (0: none) and, when s->takeover_after_ms
 * is set, the automatic takeover of a peer whose heartbeat this instance saw
 * and then did not see renewed for that long (measured on this machine's
 * monotonic clock, so clock skew does not matter; a peer never seen since
 * this instance started is left to the operator's `hl7bridge takeover`).
 * The takeover itself runs on a thread of its own. Borrowed pointers must
 * outlive the watch; free it after the publisher. */
struct takeover_watch *takeover_watch_new(struct ev_loop *loop, struct pub *pub,
					  struct ltail *tail, const struct daemon_settings *s,
					  const rd_kafka_conf_t *kc);
void takeover_watch_stop(struct takeover_watch *w); /* timers only (before the publisher goes) */
void takeover_watch_free(struct takeover_watch *w);
/* Wall clock of the last committed heartbeat (0: none yet). */
int64_t takeover_last_heartbeat(const struct takeover_watch *w);
#endif

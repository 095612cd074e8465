/*
 * replay — push dead letters or raw input back through today's mappings,
 * exactly once (consume-transform-produce), or show what today's mappings
 * would change (dry run with a diff).
 *
 * A read_committed consumer reads the source topic's range; each record is
 * split (map_input_items, as the file drops do) and re-mapped; its events,
 * new dead letters and the replay's ledger record go into one publisher job.
 * The publisher has one lane whose before_commit hook adds the consumer
 * group's offsets to the same transaction, so a crash at any point neither
 * loses nor duplicates: a rerun resumes at the group's committed offsets and
 * an open transaction of the dead run is aborted by init_transactions.
 *
 * What is "already published" is decided by the ledger (rebuilt from the
 * whole state topic):
 *  - every replayed input leaves a replay key, SHA-256("replay" | ledger key
 *    [| mapping-set digest with --republish]): an input carrying one is skipped;
 *  - from the dead-letter topic, an input whose own ledger key says AA/CA was
 *    published meanwhile (not for a dead letter of an unmatched message, code
 *    200, which the daemon acknowledges AA by policy): skipped;
 *  - from a raw topic, only inputs the ledger records as rejected (AE/AR/CE/CR)
 *    are published; AA/CA and unknown ones (file inputs are known to the
 *    ledger as files, not messages) are skipped unless --republish, which
 *    re-derives every input once per mapping set (same eventIds).
 */
#ifndef HB_REPLAY_H
#define HB_REPLAY_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

struct replay_opts {
	const char *conf_path;   /* NULL: CLI_DEFAULT_CONF */
	const char *from;        /* "deadletter", "raw-hl7v2", "raw-fhir" or a topic name */
	int partition;           /* -1: every partition */
	int64_t off_lo, off_hi;  /* inclusive offset range (with partition); -1: unset */
	int64_t since_ms, until_ms; /* record timestamps [since, until); -1: unset */
	const char *group;       /* consumer group; NULL: derived from the selection */
	int republish;           /* re-derive inputs already published (raw replays) */
	int dry_run;             /* publish nothing */
	int diff;                /* dry run: compare with what was published (or --against) */
	int values;              /* diff detail with values (patient data!) */
	const char *against;     /* diff against this mappings folder instead */
	int batch;               /* inputs per transaction; 0: [publisher] max.messages */
	int progress_ms;         /* progress line interval on stderr */
};

void replay_opts_defaults(struct replay_opts *o);

/* Run a replay. Progress and the summary go to stderr (ids and counts, no
 * patient data); the dry run's diff goes to out (JSON lines, then the
 * summary as a JSON object). *stop set (SIGINT) ends it after the current
 * transaction. Returns the exit code: 0 done, 1 failed, 2 usage, 130
 * interrupted (a rerun resumes). */
int replay_run(const struct replay_opts *o, volatile sig_atomic_t *stop, FILE *out);

#endif

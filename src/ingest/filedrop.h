/*
 * filedrop — batch files dropped into a directory, published exactly once.
 *
 * A drop is a directory with inbox/, work/<instance>/, done/ and error/.
 * Operators (or interface engines) put files into inbox/. A file is taken
 * when it is complete: it arrived by rename, or it was closed after writing
 * and has not changed for quiet.period (files found without that history,
 * e.g. at start-up, must stay unchanged for quiet.period). Dotfiles and
 * *.tmp are ignored. A file is claimed by an atomic rename into
 * work/<instance>/, so several instances can share one inbox.
 *
 * Each file is identified by the SHA-256 of its content. Its messages are
 * published in slices of up to max.messages.per.transaction; every slice's
 * transaction also writes the file's progress (next_index, total, done) to
 * the ledger. After a crash, the file (still in work/) resumes at next_index.
 * It moves to done/ only after the transaction carrying its last message
 * commits; directories are fsynced after every move. Bad messages are
 * dead-lettered (by configuration) and listed in <name>.errors.json beside
 * the file (index, byte offset, code, reason: no patient data). A file whose
 * content was already published goes to done/ with <name>.note.json and
 * publishes nothing. A file that cannot be read as a whole goes to error/
 * with its report.
 *
 * Hostile or careless producers: nothing is followed and only regular files
 * are read (symlinks, FIFOs, directories, devices, unreadable files and, by
 * default, hard links go to error/ with a report). A claimed file is read
 * into memory, and its SHA-256 is recorded in work/ before anything is
 * published, so a file truncated or rewritten later neither crashes the
 * daemon nor is published again after a restart. A file cut short has its
 * incomplete last message left out (error/). A report that cannot be written
 * is logged and counted, and its file goes to error/, not done/.
 *
 * With message.dedup (default), HL7v2 messages are also known one by one:
 * those committed before (any path, any instance) are skipped and counted as
 * duplicates, and every other message's key is committed with its slice.
 *
 * Threads: discovery and claiming run on the event loop; parsing, mapping and
 * encoding run on the drop's own worker thread (a 100 MB batch never stalls
 * the MLLP listeners); the ledger is touched only on the loop.
 */
#ifndef HB_FILEDROP_H
#define HB_FILEDROP_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "ingest/input.h"
#include "map/map.h"
#include "publish/evenc.h"
#include "publish/ledger.h"
#include "publish/ledger_tail.h"
#include "publish/pub.h"
#include "publish/registry.h"

struct drop_conf {
	char name[64];
	char path[512];         /* holds inbox/ work/ done/ error/ (created if missing) */
	char mappings[512];     /* this drop's mapping set */
	char schemas[512];
	int deadletter;         /* dead-letter bad messages */
	enum map_unmatched_policy unmatched;
	int64_t max_file_size;
	int allow_hardlinks;    /* take files with more than one hard link */
	int msg_dedup;          /* HL7v2 messages known one by one (message.dedup) */
	int max_per_txn;        /* messages per transaction */
	int max_inflight;       /* slices awaiting their commit */
	int threads;            /* mapping threads per (large) file */
	int64_t quiet_ms;
	int64_t rescan_ms;
	int64_t progress_ms;    /* progress log interval */
};

void drop_conf_defaults(struct drop_conf *c);

/* What the daemon lends every drop. */
struct drop_env {
	struct pub *pub;
	struct ledger *ledger;  /* loop thread only */
	struct registry *reg;   /* Avro: schemas are registered at drop_new */
	enum evenc_format format;  /* the events' value format */
	const char *instance;
	const char *topic_prefix;   /* [topics] prefix, for mappings without `topic` */
	const char *deadletter_topic;
	int raw;
	const char *raw_hl7v2_topic;
	const char *raw_fhir_topic;
	/* Shared ledger (ledger_tail.h), or NULL: a file's key is looked up only
	 * after a barrier, so another instance's progress on it is known. */
	struct ltail *tail;
};

struct drop_stats {
	uint64_t files_done, files_error, files_duplicate, files_resumed;
	uint64_t messages, events, rejected, deadlettered, filtered;
	uint64_t duplicates;    /* messages published before (message.dedup): skipped */
	uint64_t bytes;
	uint64_t reports_lost;  /* reports that could not be written (logged instead) */
};

struct drop;

struct drop *drop_new(struct ev_loop *loop, const struct drop_conf *c, const struct drop_env *env,
		      char *errstr, size_t errstr_size);
/* Stops (if the daemon did not), joins the worker, frees. */
void drop_free(struct drop *d);
void drop_get_stats(struct drop *d, struct drop_stats *out);

/* Move the claim record of file FROM_NAME in FROM_DIR (work/<instance>/ or
 * inbox/) to stand beside TO_NAME in TO_DIR: the record of what was claimed
 * travels with the file, so a file changed after its first claim is still
 * recognised (takeover moves work/<dead>/ files back to inbox/, and a claim
 * moves them on). Returns 1 when moved, 0 when there was none, -1 on error. */
int drop_claim_move(const char *from_dir, const char *from_name, const char *to_dir,
		    const char *to_name);
const struct drop_conf *drop_config(const struct drop *d);

/* A drop as one of the daemon's inputs ({ &drop_input_ops, d }): wake lets
 * the worker go on after completions; busy: a slice in flight or the worker
 * busy and not stopped; stop (and close) takes no more files, the worker
 * stops after the slices in flight are committed (the current file stays in
 * work/ and resumes next start); reload loads the drop's mappings again
 * before its next file; free is drop_free. */
extern const struct input_ops drop_input_ops;

#endif

/* filedrop internals shared by the loop side (filedrop.c) and the worker
 * (fileproc.c). */
#ifndef HB_FILEDROP_INT_H
#define HB_FILEDROP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include <jansson.h>

#include "ingest/filedrop.h"
#include "publish/evenc.h"

#define DROP_QUEUE_MAX 8
/* Files smaller than this are mapped by one thread whatever `threads` says
 * (a second thread would have little to do). */
#define DROP_SHARD_MIN_BYTES (64 << 10)

struct drop_cand {
	struct drop_cand *next;
	char name[256];
	int moved_in;        /* arrived by rename: complete */
	int regular;         /* a regular file (else claimed at once, refused by the worker) */
	int writing;         /* opened for writing and not closed since */
	long long size;
	int64_t mtime_ms;
	int64_t stable_since;
};

struct drop {
	struct ev_loop *loop;
	struct drop_conf c;
	struct drop_env env;
	char instance[64], prefix[64], dl_topic[256], raw_hl7[256], raw_fhir[256];
	char inbox[600], work[700], done[600], error[600];
	int ino_fd;
	ev_io ino_io;
	ev_timer tick;
	ev_async async;
	int64_t last_scan;
	int scan_errno; /* why the last rescan could not read the inbox (logged once) */
	struct drop_cand *cands;

	pthread_t thread;
	int thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *queue[DROP_QUEUE_MAX]; /* claimed files (full paths in work/) */
	int nqueue;
	atomic_int stop;     /* set under mu; the mapping threads also read it without */
	int busy;            /* the worker is processing a file */
	int inflight;        /* slices submitted, not completed */
	int slice_failed;
	int reload;
	/* ledger question from the worker, answered on the loop */
	int q_busy;          /* a question is asked (shards take turns) */
	int q_pending, q_answered, q_found;
	uint8_t q_key[LEDGER_KEY_LEN];
	struct ledger_entry q_entry;
	const uint8_t *q_keys; /* or many message keys: q_hits[i] = committed */
	size_t q_n;
	uint8_t *q_hits;
	struct ltail_gate q_gate; /* the question waits for a barrier (loop side) */
	struct drop_stats stats; /* under mu */

	/* worker-owned */
	struct map_set *maps;
	struct evenc enc;
};

/* Worker thread body (fileproc.c). */
void *drop_worker_main(void *arg);
/* Ask the loop for the ledger entry of a file key (worker side, blocking).
 * Returns 1 with *out filled, 0 if absent, -1 when stopping. */
int drop_ledger_query(struct drop *d, const uint8_t key[LEDGER_KEY_LEN], struct ledger_entry *out);
/* Which of n message keys (n * LEDGER_KEY_LEN bytes) the ledger holds as
 * committed, after the shared ledger's barrier: hits[i] = 1 for those.
 * Blocking, worker side. Returns 0, or -1 when stopping. */
int drop_ledger_committed(struct drop *d, const uint8_t *keys, size_t n, uint8_t *hits);
/* fsync a directory (after renames). */
void drop_fsync_dir(const char *dir);

/* ---- fileio.c: the worker's file handling ---- */

/* Temporary files (reports, claim records) are
 * DROP_TMP_PREFIX<12 hex>-<instance>.tmp; the claim record of work/<instance>/NAME is .NAME.claim (shortened as below). */
#define DROP_TMP_PREFIX ".hb-"
#define DROP_CLAIM_SUFFIX ".claim"

/* pfx + name + suffix when it fits NAME_MAX; else pfx + the longest prefix of
 * name that fits + "~" + 8 hex digits of SHA-256(name) + suffix (the same
 * name always gives the same result). out holds NAME_MAX + 1. */
void drop_side_name(char *out, size_t cap, const char *pfx, const char *name, const char *suffix);

/* A claimed file, read whole into memory (buf/len), its descriptor kept open
 * to tell whether it changed later. */
struct drop_file {
	int fd;
	char *buf;
	size_t len;
	struct stat st;
	int too_large;
};
/* Open and read path: no symlink followed, regular files only, hard links
 * only with allow.hardlinks, at most max.file.size, unchanged while read.
 * Returns 0, 1 if it is gone, -1 with why (no file content in it) when it
 * must go to error/. drop_file_close in every case. */
int drop_file_open(struct drop *d, const char *path, struct drop_file *f, char *why, size_t n);
/* Size, mtime or ctime differ from when it was read (or it cannot be told). */
int drop_file_changed(const struct drop_file *f);
void drop_file_close(struct drop_file *f);

/* Write j as dir/fname atomically (temporary file, fsync, rename); on failure
 * no temporary file is left and why says why. */
int drop_write_json(const struct drop *d, const char *dir, const char *fname, json_t *j, char *why,
		    size_t n);

/* The claim record: the content's SHA-256 and size, written before anything
 * of the file is published, so that a file changed in work/ after its claim
 * is recognised after a restart instead of being published again from its
 * first message. load returns 1 when a record for name exists. */
int drop_claim_save(struct drop *d, const char *name, const char *hex, size_t bytes, char *why,
		    size_t n);
int drop_claim_load(struct drop *d, const char *name, char hex[2 * LEDGER_KEY_LEN + 1],
		    long long *bytes);
void drop_claim_remove(struct drop *d, const char *name);
/* At start: this instance's temporary files a crash left in done/, error/
 * and work/, and
 * claim records whose file has left work/. */
void drop_clean_leftovers(struct drop *d);

/* Move path (in work/) to dir as name (name.<hash8> when taken, shortened to
 * NAME_MAX), with its report (name + suffix) when j is given, and remove its
 * claim record. A report that cannot be written is logged (with a value-free
 * summary) and counted (reports_lost), and the file then goes to error/, not
 * done/. Returns 0, 1 when it went to error/ instead of done/, -1 when it
 * could not be moved (it stays in work/). */
int drop_finish(struct drop *d, const char *path, const char *dir, const char *name, const char *hex,
		json_t *j, const char *suffix);

/* A file that is not read (not a regular file, a hard link, unreadable, too
 * large): to error/ with a report that says why, counted as an error. */
void drop_refuse(struct drop *d, const char *path, const char *name, const struct drop_file *df,
		 const char *why);
/* The file in work/ (sha256 hex, len bytes) is not what was claimed (chex,
 * cbytes): to error/ with what was published of the claimed content. */
void drop_changed_after_claim(struct drop *d, const char *path, const char *name,
			      const char *hex, size_t len, const char *chex, long long cbytes);

#endif

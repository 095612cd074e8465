/* filedrop internals shared by the loop side (filedrop.c) and the worker
 * (fileproc.c). */
#ifndef HB_FILEDROP_INT_H
#define HB_FILEDROP_INT_H

#include <pthread.h>
#include <stdatomic.h>

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
	int q_pending, q_answered, q_found;
	uint8_t q_key[LEDGER_KEY_LEN];
	struct ledger_entry q_entry;
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
/* fsync a directory (after renames). */
void drop_fsync_dir(const char *dir);

#endif

/*
 * metrics — what operators see: a snapshot of the daemon's counters, and its
 * renderings as Prometheus text (/metrics) and as the status page's JSON
 * (/api/status).
 *
 * Threads: the pipeline, listener and ledger counters are written on the
 * event-loop thread only, so the loop copies them into a snapshot
 * (obs_collect) every 250 ms and hands it to the HTTP server, which renders
 * from its own copy. The publisher's counters, histograms and librdkafka
 * statistics are thread-safe and read at render time (obs_pubview_fill).
 * Rendering is pure: no I/O but the FILE it writes to, and no patient data
 * anywhere — ids, codes and reasons only.
 */
#ifndef HB_METRICS_H
#define HB_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "ingest/fhir_http.h"
#include "ingest/filedrop.h"
#include "ingest/input.h"
#include "ingest/listener.h"
#include "pipeline.h"
#include "publish/kstats.h"
#include "publish/ledger_tail.h"
#include "publish/pub.h"

#define OBS_MAX_LISTENERS 16

/* One listener (MLLP or FHIR). */
struct obs_input {
	char name[64];
	char kind[8];     /* "mllp", "fhir" */
	char format[16];  /* "hl7v2", "fhir" */
	char bind[160];   /* host:port as bound */
	int tls;
	struct lsn_stats st;
};

struct obs_snapshot {
	int64_t taken_ms;   /* wall clock */
	int64_t started_ms; /* process start, wall clock */
	char instance[64];
	char version[32];
	/* readiness: producers initialised, ledger rebuilt, every input open */
	int producers, ledger, listeners;
	int draining;
	int fatal;
	int lanes_failing;  /* lanes with no commit for PUB_FAILING_MS while retrying */
	char failing[256];  /* the first one: since when, attempts, librdkafka's last error */
	int has_pipeline;
	struct pipeline_stats pl;
	struct pipeline_rejection recent[PIPELINE_RECENT_REJECTIONS];
	size_t nrecent;
	struct obs_input in[OBS_MAX_LISTENERS];
	int nin;
	struct {
		char name[64];
		char path[512];
		struct drop_stats st;
	} drops[OBS_MAX_LISTENERS];
	int ndrops;
	size_t ledger_keys;
	/* Why the bridge cannot work although everything is up (a drop folder
	 * it cannot use); "" when nothing is wrong. Not ready while set. */
	char problem[256];
	/* FHIR listeners (their connections are in `in` too, kind "fhir") */
	struct {
		char name[64];
		struct fhttp_stats st;
	} fhir[OBS_MAX_LISTENERS];
	int nfhir;
	int shared;               /* [ledger] shared: the tail's figures below */
	struct ltail_stats tail;
};

/* What the loop knows; NULL/0 for what does not exist yet. */
struct obs_sources {
	const char *instance;
	int64_t started_ms;
	const struct pipeline *pl;
	const struct input *in;   /* the inputs opened so far, */
	int nin, nin_expected;    /* of how many configured */
	const struct ledger *ledger;
	int ledger_rebuilt;
	const struct pub *pub;
	int draining;
	const struct ltail *tail; /* NULL: the ledger is not shared */
};

/* On the loop thread. */
void obs_collect(struct obs_snapshot *s, const struct obs_sources *src);
/* Ready to take traffic: producers, ledger and listeners, not draining, not failed. */
int obs_ready(const struct obs_snapshot *s);

/* The publisher's side, read from any thread. */
struct obs_pubview {
	int present;
	struct pub_stats st;
	int inflight, max_inflight;
	const struct hist *commit, *ack; /* µs */
	int nlanes;
	struct kstats *lanes; /* nlanes entries (valid = 0: no statistics yet); heap */
};

/* Fill v from pub (NULL: nothing yet). obs_pubview_clear() frees. */
int obs_pubview_fill(struct obs_pubview *v, const struct pub *pub);
void obs_pubview_clear(struct obs_pubview *v);

/* Prometheus text exposition format 0.0.4. */
void metrics_prometheus(FILE *out, const struct obs_snapshot *s, const struct obs_pubview *v);

/* The status page's data (new reference). */
json_t *metrics_status_json(const struct obs_snapshot *s, const struct obs_pubview *v);

#endif

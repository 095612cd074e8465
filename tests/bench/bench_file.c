/* bench_file — the CPU a file drop's mapping thread spends per message,
 * without Kafka: split the file, parse, map, encode (JSON) and add the
 * records and their headers to publisher jobs of 2,000 messages, as the drop
 * worker does; the jobs are freed instead of published.
 *
 * usage: bench_file FILE [MAPPINGS_DIR SCHEMAS_DIR]
 * With BENCH_KEYS=1 in the environment, only the pass a drop makes for the
 * messages' ledger keys (message.dedup): split, parse, hash, no mapping.
 * Prints messages, events, MB, CPU seconds, messages/s and MB/s of CPU time
 * (one thread), so a change to the parsers or the mapper can be weighed
 * without the broker's noise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "map/input.h"
#include "map/map.h"
#include "publish/evenc.h"
#include "publish/pub.h"
#include "util.h"

#define PER_JOB 2000

struct run {
	struct map_set *set;
	struct evenc enc;
	struct pub_job *job;
	size_t in_job, messages, events, rejected;
	int failed;
};

struct evx {
	struct run *r;
	const char *origin;
};

static int event_cb(const struct map_event *ev, void *opaque)
{
	struct evx *x = opaque;
	char err[256];
	if (evenc_add(&x->r->enc, x->r->job, ev, x->origin, err, sizeof err) != 0) {
		fprintf(stderr, "encode: %s\n", err);
		x->r->failed = 1;
		return -1;
	}
	x->r->events++;
	return 0;
}

static int item_cb(const struct map_item *it, void *opaque)
{
	struct run *r = opaque;
	struct map_reject rej;
	char origin[512];
	r->messages++;
	if (!r->job && !(r->job = pub_job_new(NULL, NULL)))
		return 1;
	snprintf(origin, sizeof origin, "file:bench:%s#%zu", "bench.hl7", it->index);
	struct evx x = { r, origin };
	if (!it->in || map_apply(r->set, it->in, 0, event_cb, &x, NULL, &rej) != MAP_OK)
		r->rejected++;
	if (r->failed)
		return 1;
	if (++r->in_job == PER_JOB) {
		pub_job_free(r->job);
		r->job = NULL;
		r->in_job = 0;
	}
	return 0;
}

static int key_cb(const struct map_item *it, void *opaque)
{
	struct run *r = opaque;
	r->messages++;
	if (!it->in)
		r->rejected++;
	return 0;
}

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *src = getenv("HB_SRCDIR") ? getenv("HB_SRCDIR") : HB_SRCDIR;
	char maps[1024], schemas[1024], err[512];
	struct run r = { 0 };
	struct map_diag d = { 0 };
	size_t len;

	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: bench_file FILE [MAPPINGS_DIR SCHEMAS_DIR]\n");
		return 2;
	}
	snprintf(maps, sizeof maps, "%s", argc == 4 ? argv[2] : "");
	snprintf(schemas, sizeof schemas, "%s", argc == 4 ? argv[3] : "");
	if (argc == 2) {
		snprintf(maps, sizeof maps, "%s/mappings", src);
		snprintf(schemas, sizeof schemas, "%s/conf/schemas", src);
	}
	char *buf = util_read_file(argv[1], (size_t)4 << 30, &len, err, sizeof err);
	if (!buf) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	r.set = map_set_load(maps, schemas, &d);
	if (!r.set || evenc_init(&r.enc, 0, r.set, NULL, err, sizeof err) != 0) {
		fputs(d.text ? d.text : err, stderr);
		return 1;
	}
	double c0 = cpu_s();
	int keys = getenv("BENCH_KEYS") && strcmp(getenv("BENCH_KEYS"), "1") == 0;
	int rc = map_input_items(argv[1], buf, len, util_wall_ms(), keys ? key_cb : item_cb, &r, err,
				 sizeof err);
	double c = cpu_s() - c0;
	if (rc != 0 || r.failed) {
		fprintf(stderr, "%s\n", rc < 0 ? err : "stopped");
		return 1;
	}
	printf("%s: %zu messages, %zu events, %zu without events, %.1f MB, %.2f CPU s: "
	       "%.0f msg/s, %.1f MB/s, %.2f us/msg (one thread)\n",
	       argv[1], r.messages, r.events, r.rejected, (double)len / 1e6, c,
	       (double)r.messages / c, (double)len / 1e6 / c, c * 1e6 / (double)r.messages);
	pub_job_free(r.job);
	evenc_clear(&r.enc);
	map_set_free(r.set);
	map_diag_clear(&d);
	map_thread_release();
	free(buf);
	return 0;
}

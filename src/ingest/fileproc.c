/* fileproc — a drop's worker thread: read a claimed file, publish its
 * messages in slices with the file's progress in the ledger, report, move. */
#include "ingest/filedrop_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "log.h"
#include "map/input.h"
#include "publish/records.h"
#include "util.h"

struct slice {
	struct drop *d;
	uint8_t key[LEDGER_KEY_LEN];
	uint32_t next_index, total;
	int done;
};

/* One file in progress. */
struct fstate {
	struct drop *d;
	const char *name;
	uint8_t key[LEDGER_KEY_LEN];
	char hex[2 * LEDGER_KEY_LEN + 1];
	size_t resume_at;        /* messages committed before a crash */
	size_t items;            /* messages seen */
	struct pub_job *job;     /* the slice being filled */
	int in_slice;
	json_t *errors;          /* report entries */
	uint64_t published, events, dead, filtered;
	int stopped;             /* stop requested or a slice failed */
	int64_t started_ms, last_progress_ms;
	size_t len;
};

static void slice_done_cb(struct pub_job *job, enum pub_status st, const char *reason, void *opaque)
{
	struct slice *s = opaque;
	struct drop *d = s->d;
	/* On the loop thread: the ledger is ours here. */
	if (st == PUB_COMMITTED) {
		struct ledger_entry *e = ledger_upsert(d->env.ledger, s->key, LEDGER_FILE);
		if (e) {
			e->state = LEDGER_COMMITTED;
			e->ts_ms = util_wall_ms();
			if (s->next_index > e->next_index || s->done)
				e->next_index = s->next_index;
			e->total = s->total;
			e->done = (uint8_t)(s->done || e->done);
		}
	} else {
		log_error("drop", "%s: a slice was not committed (%s); the file stays in work/ and "
				  "resumes at the next start",
			  d->c.name, reason);
	}
	pub_job_free(job);
	pthread_mutex_lock(&d->mu);
	d->inflight--;
	if (st != PUB_COMMITTED)
		d->slice_failed = 1;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	free(s);
}

/* Submit the current slice (creating an empty one to carry the final
 * progress if needed). Blocks while max_inflight slices await their commit.
 * Returns -1 when stopping or a slice failed. */
static int submit_slice(struct fstate *f, uint32_t next_index, uint32_t total, int done)
{
	struct drop *d = f->d;
	struct slice *s = calloc(1, sizeof *s);
	struct ledger_entry le;
	if (!s)
		return -1;
	s->d = d;
	memcpy(s->key, f->key, LEDGER_KEY_LEN);
	s->next_index = next_index;
	s->total = total;
	s->done = done;
	if (!f->job)
		f->job = pub_job_new(slice_done_cb, s);
	else
		pub_job_set_cb(f->job, slice_done_cb, s);
	memset(&le, 0, sizeof le);
	memcpy(le.key, f->key, LEDGER_KEY_LEN);
	le.kind = LEDGER_FILE;
	le.next_index = next_index;
	le.total = total;
	le.done = (uint8_t)done;
	pub_job_set_ledger(f->job, &le);

	pthread_mutex_lock(&d->mu);
	while (!d->slice_failed && !d->stop && d->inflight >= d->c.max_inflight)
		pthread_cond_wait(&d->cv, &d->mu);
	for (;;) {
		if (d->slice_failed || (d->stop && !done)) {
			pthread_mutex_unlock(&d->mu);
			pub_job_free(f->job);
			free(s);
			f->job = NULL;
			f->stopped = 1;
			return -1;
		}
		uint64_t origin;
		memcpy(&origin, f->key, sizeof origin); /* one file, one lane: slices commit in order */
		if (pub_submit(d->env.pub, origin, f->job) == 0)
			break;
		/* the publisher is full: wait for completions */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&d->cv, &d->mu, &ts);
	}
	d->inflight++;
	pthread_mutex_unlock(&d->mu);
	f->job = NULL;
	f->in_slice = 0;
	return 0;
}

static void report_error(struct fstate *f, const struct map_item *it, int code, const char *reason)
{
	json_t *e = json_pack("{s:I, s:I, s:i, s:s}", "index", (json_int_t)it->index, "offset",
			      (json_int_t)it->offset, "code", code, "reason", reason);
	if (it->line)
		json_object_set_new(e, "line", json_integer((json_int_t)it->line));
	json_array_append_new(f->errors, e);
}

struct evctx {
	struct fstate *f;
	const char *origin;
	int failed;
	char err[256];
};

static int add_event_cb(const struct map_event *ev, void *opaque)
{
	struct evctx *x = opaque;
	if (evenc_add(&x->f->d->enc, x->f->job, ev, x->origin, x->err, sizeof x->err) != 0) {
		x->failed = 1;
		return -1;
	}
	x->f->events++;
	return 0;
}

static int dead_letter(struct fstate *f, const struct map_item *it, const char *stage, int code,
		       const char *reason, const char *origin, const char *msgid)
{
	char cs[16];
	if (!f->d->c.deadletter)
		return 0;
	snprintf(cs, sizeof cs, "%d", code);
	f->dead++;
	return records_add_deadletter(f->job, f->d->dl_topic, it->raw, it->raw_len, it->content_type,
				      stage, cs, reason, &(struct rec_origin){ origin, msgid });
}

/* item_cb's answers besides 0 (go on): stop for now (shutdown, a slice
 * failed), or fail this file (memory, encoding). Either way the file stays
 * in work/ and resumes at the next start. */
#define ITEM_STOP 1
#define ITEM_FAIL 2

static int item_cb(const struct map_item *it, void *opaque)
{
	struct fstate *f = opaque;
	struct drop *d = f->d;
	struct map_reject rej;
	char origin[512];
	enum map_result r;

	f->items = it->index + 1;
	memset(&rej, 0, sizeof rej);
	if (it->index < f->resume_at) {
		/* committed before a crash: only rebuild the report */
		if (!it->in)
			report_error(f, it, it->err_code, it->error);
		else if ((r = map_apply(d->maps, it->in, 0, NULL, NULL, NULL, &rej)) == MAP_REJECTED ||
			 r == MAP_ERROR)
			report_error(f, it, rej.err_code, rej.reason);
		return 0;
	}
	if (d->stop)
		return ITEM_STOP;
	if (!f->job) {
		f->job = pub_job_new(slice_done_cb, NULL);
		if (!f->job)
			return ITEM_FAIL;
	}
	snprintf(origin, sizeof origin, "file:%s:%s#%zu", d->c.name, f->name, it->index);
	if (!it->in) {
		report_error(f, it, it->err_code, it->error);
		if (dead_letter(f, it, "parse", it->err_code, it->error, origin, NULL) != 0)
			return ITEM_FAIL;
	} else {
		struct evctx x = { f, origin, 0, "" };
		r = map_apply(d->maps, it->in, d->env.avro ? MAP_AVRO : 0, add_event_cb, &x, NULL, &rej);
		if (x.failed) {
			/* Part of this message's events may be in the slice: do not commit
			 * it. The file stays in work/ and is retried at the next start. */
			log_error("drop", "%s: %s: %s; stopping this file", d->c.name, it->label, x.err);
			return ITEM_FAIL;
		}
		if (r == MAP_OK) {
			f->published++;
		} else if (r == MAP_UNMATCHED) {
			if (d->c.unmatched == MAP_UNMATCHED_FILTER) {
				f->filtered++;
			} else {
				report_error(f, it, rej.err_code, rej.reason);
				if (dead_letter(f, it, "map", rej.err_code, rej.reason, origin,
						it->in->message_id) != 0)
					return ITEM_FAIL;
			}
		} else {
			report_error(f, it, rej.err_code, rej.reason);
			if (dead_letter(f, it, "map", rej.err_code, rej.reason, origin,
					it->in->message_id) != 0)
				return ITEM_FAIL;
		}
		if (d->env.raw)
			records_add_raw(f->job,
					strcmp(it->content_type, "application/hl7-v2") == 0 ? d->raw_hl7
											    : d->raw_fhir,
					it->raw, it->raw_len, it->content_type,
					&(struct rec_origin){ origin, it->in->message_id });
	}
	if (++f->in_slice >= d->c.max_per_txn &&
	    submit_slice(f, (uint32_t)(it->index + 1), 0, 0) != 0)
		return ITEM_STOP;
	int64_t now = util_mono_ms();
	if (now - f->last_progress_ms >= d->c.progress_ms) {
		double secs = (double)(now - f->started_ms) / 1000.0;
		log_info("drop", "%s: %s: %zu messages so far (%.0f msg/s)", d->c.name, f->name,
			 it->index + 1, secs > 0 ? (double)(it->index + 1 - f->resume_at) / secs : 0.0);
		f->last_progress_ms = now;
	}
	return 0;
}

/* ---- files ------------------------------------------------------------------ */

static int write_json(const char *path, json_t *j)
{
	char tmp[1300];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if (json_dump_file(j, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
		return -1;
	int fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return rename(tmp, path);
}

/* Move `path` into dir as name (or name.<hash8> when taken), with its report
 * (suffix ".errors.json" / ".note.json") when j is given. */
static void finish(struct drop *d, const char *path, const char *dir, const char *name,
		   const char *hex, json_t *j, const char *suffix)
{
	char to[1100], rep[1200];
	snprintf(to, sizeof to, "%s/%s", dir, name);
	if (access(to, F_OK) == 0)
		snprintf(to, sizeof to, "%s/%s.%.8s", dir, name, hex);
	if (j) {
		snprintf(rep, sizeof rep, "%s%s", to, suffix);
		if (write_json(rep, j) != 0)
			log_error("drop", "%s: cannot write %s: %s", d->c.name, rep, strerror(errno));
	}
	if (rename(path, to) != 0)
		log_error("drop", "%s: cannot move %s to %s: %s", d->c.name, name, dir, strerror(errno));
	drop_fsync_dir(d->work);
	drop_fsync_dir(dir);
}

static void process(struct drop *d, const char *path)
{
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	struct fstate f;
	struct stat st;
	struct ledger_entry le;
	char err[512];
	void *map = NULL;
	int fd, rc, found;

	memset(&f, 0, sizeof f);
	f.d = d;
	f.name = name;
	f.errors = json_array();
	f.started_ms = f.last_progress_ms = util_mono_ms();
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		log_error("drop", "%s: cannot open %s: %s", d->c.name, name, strerror(errno));
		if (fd >= 0)
			close(fd);
		json_decref(f.errors);
		return;
	}
	f.len = (size_t)st.st_size;
	if ((int64_t)st.st_size > d->c.max_file_size) {
		close(fd);
		json_t *j = json_pack("{s:s, s:I, s:s}", "file", name, "bytes", (json_int_t)st.st_size,
				      "error", "larger than max.file.size");
		finish(d, path, d->error, name, "toolarge", j, ".errors.json");
		json_decref(j);
		json_decref(f.errors);
		pthread_mutex_lock(&d->mu);
		d->stats.files_error++;
		pthread_mutex_unlock(&d->mu);
		log_warn("drop", "%s: %s is larger than max.file.size; moved to error/", d->c.name, name);
		return;
	}
	if (st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			log_error("drop", "%s: cannot map %s: %s", d->c.name, name, strerror(errno));
			close(fd);
			json_decref(f.errors);
			return;
		}
		madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
	}
	close(fd);
	{
		unsigned int n = 0;
		EVP_Digest(map ? map : "", f.len, f.key, &n, EVP_sha256(), NULL);
		for (size_t i = 0; i < LEDGER_KEY_LEN; i++)
			snprintf(f.hex + 2 * i, 3, "%02x", f.key[i]);
	}
	found = drop_ledger_query(d, f.key, &le);
	if (found < 0)
		goto out;
	if (found && le.done) {
		json_t *j = json_pack("{s:s, s:s, s:s, s:I}", "file", name, "sha256", f.hex, "note",
				      "identical content was published before; nothing was published again",
				      "messages", (json_int_t)le.total);
		finish(d, path, d->done, name, f.hex, j, ".note.json");
		json_decref(j);
		pthread_mutex_lock(&d->mu);
		d->stats.files_duplicate++;
		pthread_mutex_unlock(&d->mu);
		log_info("drop", "%s: %s (sha256 %.12s) was published before; moved to done/ with a note",
			 d->c.name, name, f.hex);
		goto out;
	}
	if (found) {
		f.resume_at = le.next_index;
		pthread_mutex_lock(&d->mu);
		d->stats.files_resumed++;
		pthread_mutex_unlock(&d->mu);
		log_info("drop", "%s: %s resumes at message %zu", d->c.name, name, f.resume_at);
	}
	log_info("drop", "%s: publishing %s (%zu bytes, sha256 %.12s)", d->c.name, name, f.len, f.hex);
	rc = map_input_items(name, map ? map : "", f.len, util_wall_ms(), item_cb, &f, err, sizeof err);
	if (rc == ITEM_STOP || rc == ITEM_FAIL || f.stopped) {
		pub_job_free(f.job);
		f.job = NULL;
		f.stopped = 1;
		goto wait;
	}
	/* Read to the end (rc 0), or the input broke off at some point (rc -1:
	 * the file goes to error/ with what was published before): either way
	 * the final slice records the file as done, so the same bytes dropped
	 * again publish nothing. */
	submit_slice(&f, (uint32_t)f.items, (uint32_t)f.items, 1);
wait:
	pthread_mutex_lock(&d->mu);
	while (d->inflight > 0)
		pthread_cond_wait(&d->cv, &d->mu);
	int failed = d->slice_failed;
	d->slice_failed = 0;
	pthread_mutex_unlock(&d->mu);
	if (failed || f.stopped)
		goto out; /* stays in work/ */
	{
		double secs = (double)(util_mono_ms() - f.started_ms) / 1000.0;
		json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:O}", "file", name, "sha256",
				      f.hex, "messages", (json_int_t)f.items, "published",
				      (json_int_t)f.published, "events", (json_int_t)f.events,
				      "dead_lettered", (json_int_t)f.dead, "filtered",
				      (json_int_t)f.filtered, "errors", f.errors);
		if (rc < 0)
			json_object_set_new(j, "error", json_string(err));
		int bad = rc < 0;
		finish(d, path, bad ? d->error : d->done, name, f.hex,
		       (bad || json_array_size(f.errors) > 0) ? j : NULL, ".errors.json");
		json_decref(j);
		pthread_mutex_lock(&d->mu);
		if (bad)
			d->stats.files_error++;
		else
			d->stats.files_done++;
		d->stats.messages += f.items - f.resume_at;
		d->stats.events += f.events;
		d->stats.rejected += json_array_size(f.errors);
		d->stats.deadlettered += f.dead;
		d->stats.filtered += f.filtered;
		d->stats.bytes += f.len;
		pthread_mutex_unlock(&d->mu);
		if (bad)
			log_warn("drop", "%s: %s: %s; %zu messages before it were published; moved to error/",
				 d->c.name, name, err, f.items);
		else
			log_info("drop", "%s: %s done: %zu messages, %llu events, %zu rejected, %.1f MB/s "
					 "(%.1f s)",
				 d->c.name, name, f.items, (unsigned long long)f.events,
				 json_array_size(f.errors),
				 secs > 0 ? (double)f.len / 1e6 / secs : 0.0, secs);
	}
out:
	if (map)
		munmap(map, f.len);
	json_decref(f.errors);
}

void *drop_worker_main(void *arg)
{
	struct drop *d = arg;
	for (;;) {
		char *path;
		pthread_mutex_lock(&d->mu);
		while (!d->stop && d->nqueue == 0)
			pthread_cond_wait(&d->cv, &d->mu);
		if (d->stop) {
			pthread_mutex_unlock(&d->mu);
			break;
		}
		path = d->queue[0];
		memmove(d->queue, d->queue + 1, (size_t)(d->nqueue - 1) * sizeof d->queue[0]);
		d->nqueue--;
		d->busy = 1;
		int reload = d->reload;
		d->reload = 0;
		pthread_mutex_unlock(&d->mu);
		if (reload) {
			struct map_diag diag = { 0 };
			char err[512];
			struct map_set *m = map_set_load(d->c.mappings, d->c.schemas, &diag);
			struct evenc ne = { 0 };
			if (m)
				map_set_topic_prefix(m, d->prefix);
			if (m && evenc_init(&ne, d->env.avro, m, d->env.reg, err, sizeof err) == 0) {
				evenc_clear(&d->enc);
				d->enc = ne;
				map_set_free(d->maps);
				d->maps = m;
				log_info("drop", "%s: mappings reloaded", d->c.name);
			} else {
				log_error("drop", "%s: reload refused, keeping the current mappings", d->c.name);
				map_set_free(m);
			}
			map_diag_clear(&diag);
		}
		process(d, path);
		free(path);
		pthread_mutex_lock(&d->mu);
		d->busy = 0;
		pthread_mutex_unlock(&d->mu);
		ev_async_send(d->loop, &d->async); /* claim the next file */
	}
	map_thread_release(); /* this thread's mapping scratch memory */
	return NULL;
}

/* filedrop — the loop side: directories, discovery, completeness, claiming,
 * and the worker's questions to the ledger. */
#include "ingest/filedrop_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

void drop_conf_defaults(struct drop_conf *c)
{
	memset(c, 0, sizeof *c);
	c->deadletter = 1;
	c->unmatched = MAP_UNMATCHED_FILTER;
	c->max_file_size = 1LL << 30;
	c->max_per_txn = 2000;
	c->max_inflight = 4;
	c->msg_dedup = 1;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	c->threads = cpus < 1 ? 1 : cpus > 4 ? 4 : (int)cpus;
	c->quiet_ms = 2000;
	c->rescan_ms = 5000;
	c->progress_ms = 10000;
}

void drop_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static int mkdir_p(const char *path, char *errstr, size_t errstr_size)
{
	char tmp[700];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
			return util_seterr(errstr, errstr_size, "%s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
		return util_seterr(errstr, errstr_size, "%s: %s", tmp, strerror(errno));
	return 0;
}

/* Files an operator may leave in the inbox that are not (yet) input. */
static int ignored(const char *name)
{
	size_t n = strlen(name);
	return name[0] == '.' || (n >= 4 && strcmp(name + n - 4, ".tmp") == 0);
}

static struct drop_cand *cand_get(struct drop *d, const char *name, int create)
{
	struct drop_cand *c;
	for (c = d->cands; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	if (!create || strlen(name) >= sizeof c->name)
		return NULL;
	c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	snprintf(c->name, sizeof c->name, "%s", name);
	c->stable_since = util_mono_ms();
	c->next = d->cands;
	d->cands = c;
	return c;
}

static void cand_remove(struct drop *d, const char *name)
{
	for (struct drop_cand **pp = &d->cands; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->name, name) == 0) {
			struct drop_cand *c = *pp;
			*pp = c->next;
			free(c);
			return;
		}
	}
}

/* Observe size and mtime; any change restarts the quiet period. Returns -1
 * if the entry is gone. Nothing is followed: a symlink, a FIFO, a directory
 * or a device is seen as what it is (and claimed at once, for the worker to
 * move it to error/ with a report). */
static int cand_observe(struct drop *d, struct drop_cand *c, struct stat *out)
{
	char path[1024];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", d->inbox, c->name);
	if (lstat(path, &st) != 0)
		return -1;
	c->regular = S_ISREG(st.st_mode);
	int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
	if (st.st_size != c->size || mt != c->mtime_ms) {
		c->size = st.st_size;
		c->mtime_ms = mt;
		c->stable_since = util_mono_ms();
	}
	if (out)
		*out = st;
	return 0;
}

static int cand_ready(struct drop *d, struct drop_cand *c)
{
	if (c->moved_in || !c->regular)
		return 1;
	return !c->writing && util_mono_ms() - c->stable_since >= d->c.quiet_ms &&
	       util_wall_ms() - c->mtime_ms >= d->c.quiet_ms;
}

static void rescan(struct drop *d)
{
	DIR *dir = opendir(d->inbox);
	struct dirent *de;
	if (!dir) {
		/* Once per cause, not at every rescan: /readyz carries it meanwhile. */
		if (errno != d->scan_errno)
			log_error("drop", "%s: cannot read %s: %s", d->c.name, d->inbox, strerror(errno));
		d->scan_errno = errno;
		return;
	}
	d->scan_errno = 0;
	while ((de = readdir(dir))) {
		if (ignored(de->d_name))
			continue;
		struct drop_cand *c = cand_get(d, de->d_name, 1);
		if (c && cand_observe(d, c, NULL) != 0)
			cand_remove(d, de->d_name);
	}
	closedir(dir);
	/* forget candidates that disappeared */
	for (struct drop_cand *c = d->cands, *next; c; c = next) {
		next = c->next;
		if (cand_observe(d, c, NULL) != 0)
			cand_remove(d, c->name);
	}
	d->last_scan = util_mono_ms();
}

/* Claim one ready file for the worker when it has nothing queued. */
static void claim(struct drop *d)
{
	struct drop_cand *best = NULL;
	pthread_mutex_lock(&d->mu);
	int room = !d->stop && d->nqueue == 0;
	pthread_mutex_unlock(&d->mu);
	if (!room)
		return;
	for (struct drop_cand *c = d->cands; c; c = c->next) {
		if (cand_observe(d, c, NULL) != 0 || !cand_ready(d, c))
			continue;
		if (!best || c->mtime_ms < best->mtime_ms)
			best = c;
	}
	if (!best)
		return;
	char from[1024], to[1024];
	snprintf(from, sizeof from, "%s/%s", d->inbox, best->name);
	snprintf(to, sizeof to, "%s/%s", d->work, best->name);
	struct stat st;
	for (int i = 1; lstat(to, &st) == 0 && i < 1000; i++) {
		char sfx[16], alt[NAME_MAX + 1];
		snprintf(sfx, sizeof sfx, ".%d", i);
		drop_side_name(alt, sizeof alt, "", best->name, sfx);
		snprintf(to, sizeof to, "%s/%s", d->work, alt);
	}
	if (rename(from, to) != 0) {
		/* ENOENT: another instance claimed it first */
		if (errno != ENOENT)
			log_error("drop", "%s: cannot claim %s: %s", d->c.name, best->name, strerror(errno));
		cand_remove(d, best->name);
		return;
	}
	/* a file taken over from a dead instance brings its claim record along */
	if (drop_claim_move(d->inbox, best->name, d->work, strrchr(to, '/') + 1) < 0)
		log_warn("drop", "%s: cannot move the claim record of %s: %s", d->c.name, best->name,
			 strerror(errno));
	drop_fsync_dir(d->inbox);
	drop_fsync_dir(d->work);
	log_info("drop", "%s: claimed %s (%lld bytes)", d->c.name, best->name, best->size);
	char *queued = strdup(to);
	if (!queued)
		log_error("drop", "%s: out of memory: %s stays in work/ until the next start",
			  d->c.name, best->name);
	cand_remove(d, best->name);
	if (!queued)
		return;
	pthread_mutex_lock(&d->mu);
	d->queue[d->nqueue++] = queued;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

static void ino_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct drop *d = container_of(w, struct drop, ino_io);
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	while ((n = read(d->ino_fd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)(void *)p;
			p += sizeof *ev + ev->len;
			if (!ev->len || ignored(ev->name))
				continue;
			if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
				cand_remove(d, ev->name);
				continue;
			}
			struct drop_cand *c = cand_get(d, ev->name, 1);
			if (!c)
				continue;
			if (ev->mask & IN_MOVED_TO)
				c->moved_in = 1;
			struct stat st;
			int seen = cand_observe(d, c, &st) == 0;
			/* Created in place: being written only if it is a new, empty
			 * regular file (a hard link or a symlink made in place gets no
			 * IN_CLOSE_WRITE and must not wait for one forever). */
			if ((ev->mask & IN_CREATE) && seen && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
			    st.st_size == 0)
				c->writing = 1;
			if (ev->mask & IN_MODIFY)
				c->writing = 1;
			if (ev->mask & IN_CLOSE_WRITE)
				c->writing = 0;
		}
	}
	if (n < 0 && errno == EINVAL)
		log_error("drop", "%s: inotify read failed", d->c.name);
	claim(d);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct drop *d = container_of(w, struct drop, tick);
	if (util_mono_ms() - d->last_scan >= d->c.rescan_ms)
		rescan(d);
	claim(d);
}

/* The question's barrier passed (ok = 0: the tail stopped; the worker is
 * being stopped too and gets no answer). */
static void q_barrier_cb(struct ltail_gate *g, int ok)
{
	struct drop *d = container_of(g, struct drop, q_gate);
	if (ok)
		ev_async_send(d->loop, &d->async); /* answer from the ledger now */
}

/* The worker asks (ledger) or says it is idle (claim the next file). */
static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct drop *d = container_of(w, struct drop, async);
	pthread_mutex_lock(&d->mu);
	/* Another instance may have worked on this file: read the state topic
	 * up to now before answering. */
	if (d->q_pending && ltail_gate_pass(d->env.tail, &d->q_gate, q_barrier_cb)) {
		ltail_gate_reset(&d->q_gate);
		if (d->q_keys) {
			for (size_t i = 0; i < d->q_n; i++) {
				const struct ledger_entry *e =
					ledger_find(d->env.ledger, d->q_keys + i * LEDGER_KEY_LEN);
				d->q_hits[i] = e && e->kind == LEDGER_MSG &&
					       e->state == LEDGER_COMMITTED;
			}
		} else {
			struct ledger_entry *e = ledger_find(d->env.ledger, d->q_key);
			d->q_found = e != NULL;
			if (e)
				d->q_entry = *e;
		}
		d->q_pending = 0;
		d->q_answered = 1;
		pthread_cond_broadcast(&d->cv);
	}
	pthread_mutex_unlock(&d->mu);
	claim(d);
}

/* Ask the loop about one file key (keys NULL) or n message keys, one
 * question at a time (shards take turns); 0 once answered, -1 when
 * stopping. Called and returns with d->mu held. */
static int ask(struct drop *d, const uint8_t *key, const uint8_t *keys, size_t n, uint8_t *hits)
{
	while (d->q_busy && !d->stop)
		pthread_cond_wait(&d->cv, &d->mu);
	if (d->stop)
		return -1;
	d->q_busy = 1;
	if (key)
		memcpy(d->q_key, key, LEDGER_KEY_LEN);
	d->q_keys = keys;
	d->q_n = n;
	d->q_hits = hits;
	d->q_pending = 1;
	d->q_answered = 0;
	pthread_mutex_unlock(&d->mu);
	ev_async_send(d->loop, &d->async);
	pthread_mutex_lock(&d->mu);
	while (!d->q_answered && !d->stop)
		pthread_cond_wait(&d->cv, &d->mu);
	d->q_busy = 0;
	d->q_pending = 0;
	d->q_keys = NULL;
	pthread_cond_broadcast(&d->cv);
	return d->q_answered ? 0 : -1;
}

int drop_ledger_query(struct drop *d, const uint8_t key[LEDGER_KEY_LEN], struct ledger_entry *out)
{
	int found = -1;
	pthread_mutex_lock(&d->mu);
	if (ask(d, key, NULL, 0, NULL) == 0) {
		found = d->q_found;
		if (found)
			*out = d->q_entry;
	}
	pthread_mutex_unlock(&d->mu);
	return found;
}

int drop_ledger_committed(struct drop *d, const uint8_t *keys, size_t n, uint8_t *hits)
{
	int rc;
	pthread_mutex_lock(&d->mu);
	rc = ask(d, NULL, keys, n, hits);
	pthread_mutex_unlock(&d->mu);
	return rc;
}

/* Files left in work/<instance>/ by a crash: resume them first. */
static void queue_leftovers(struct drop *d)
{
	DIR *dir = opendir(d->work);
	struct dirent *de;
	if (!dir)
		return;
	while ((de = readdir(dir)) && d->nqueue < DROP_QUEUE_MAX) {
		char path[1024];
		struct stat st;
		if (de->d_name[0] == '.')
			continue; /* claim records, temporary files */
		snprintf(path, sizeof path, "%s/%s", d->work, de->d_name);
		if (lstat(path, &st) != 0)
			continue; /* anything else is queued: the worker refuses what is not a file */
		char *queued = strdup(path);
		if (!queued) {
			log_error("drop", "%s: out of memory: %s stays in work/ until the next start",
				  d->c.name, de->d_name);
			break;
		}
		log_info("drop", "%s: resuming %s (left in work/ by an earlier run)", d->c.name, de->d_name);
		d->queue[d->nqueue++] = queued;
	}
	closedir(dir);
}

struct drop *drop_new(struct ev_loop *loop, const struct drop_conf *c, const struct drop_env *env,
		      char *errstr, size_t errstr_size)
{
	struct drop *d = calloc(1, sizeof *d);
	struct map_diag diag = { 0 };

	if (!d) {
		util_seterr(errstr, errstr_size, "out of memory");
		return NULL;
	}
	d->loop = loop;
	d->c = *c;
	d->env = *env;
	d->ino_fd = -1;
	snprintf(d->instance, sizeof d->instance, "%s", env->instance);
	snprintf(d->prefix, sizeof d->prefix, "%s", env->topic_prefix ? env->topic_prefix : "healthcare.");
	snprintf(d->dl_topic, sizeof d->dl_topic, "%s", env->deadletter_topic);
	snprintf(d->raw_hl7, sizeof d->raw_hl7, "%s", env->raw_hl7v2_topic ? env->raw_hl7v2_topic : "");
	snprintf(d->raw_fhir, sizeof d->raw_fhir, "%s", env->raw_fhir_topic ? env->raw_fhir_topic : "");
	d->env.instance = d->instance;
	d->env.deadletter_topic = d->dl_topic;
	d->env.raw_hl7v2_topic = d->raw_hl7;
	d->env.raw_fhir_topic = d->raw_fhir;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	snprintf(d->inbox, sizeof d->inbox, "%s/inbox", c->path);
	snprintf(d->work, sizeof d->work, "%s/work/%s", c->path, d->instance);
	snprintf(d->done, sizeof d->done, "%s/done", c->path);
	snprintf(d->error, sizeof d->error, "%s/error", c->path);
	if (mkdir_p(d->inbox, errstr, errstr_size) || mkdir_p(d->work, errstr, errstr_size) ||
	    mkdir_p(d->done, errstr, errstr_size) || mkdir_p(d->error, errstr, errstr_size))
		goto fail;

	/* The drop's own mapping set: its worker maps (and encodes Avro) on its
	 * own thread. */
	d->maps = map_set_load(c->mappings, c->schemas, &diag);
	if (!d->maps) {
		util_seterr(errstr, errstr_size, "drop %s: mappings: %d error(s):\n%s", c->name,
			    diag.errors, diag.text ? diag.text : "");
		map_diag_clear(&diag);
		goto fail;
	}
	map_diag_clear(&diag);
	map_set_topic_prefix(d->maps, d->prefix);
	if (evenc_init(&d->enc, env->format, d->maps, env->reg, errstr, errstr_size) != 0)
		goto fail;

	d->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->ino_fd < 0 ||
	    inotify_add_watch(d->ino_fd, d->inbox,
			      IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
				      IN_DELETE) < 0) {
		/* Not fatal: the periodic rescan still finds every file. */
		log_warn("drop", "%s: inotify unavailable (%s); relying on the rescan every %lld ms",
			 c->name, strerror(errno), (long long)c->rescan_ms);
		if (d->ino_fd >= 0)
			close(d->ino_fd);
		d->ino_fd = -1;
	}
	drop_clean_leftovers(d);
	queue_leftovers(d);
	if (pthread_create(&d->thread, NULL, drop_worker_main, d) != 0) {
		util_seterr(errstr, errstr_size, "drop %s: cannot start its worker", c->name);
		goto fail;
	}
	d->thread_started = 1;
	if (d->ino_fd >= 0) {
		ev_io_init(&d->ino_io, ino_cb, d->ino_fd, EV_READ);
		ev_io_start(loop, &d->ino_io);
	}
	ev_async_init(&d->async, async_cb);
	ev_async_start(loop, &d->async);
	ev_timer_init(&d->tick, tick_cb, 0.0, 0.25);
	ev_timer_start(loop, &d->tick);
	rescan(d);
	log_info("drop", "%s: watching %s (quiet period %lld ms)", c->name, d->inbox,
		 (long long)c->quiet_ms);
	return d;
fail:
	drop_free(d);
	return NULL;
}

/* Stop taking files; the worker stops after the slices in flight are
 * committed (the current file stays in work/ and resumes next start). */
static void stop(void *self)
{
	struct drop *d = self;
	pthread_mutex_lock(&d->mu);
	d->stop = 1;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	ev_timer_stop(d->loop, &d->tick);
	if (d->ino_fd >= 0)
		ev_io_stop(d->loop, &d->ino_io);
}


void drop_get_stats(struct drop *d, struct drop_stats *out)
{
	pthread_mutex_lock(&d->mu);
	*out = d->stats;
	pthread_mutex_unlock(&d->mu);
}

const struct drop_conf *drop_config(const struct drop *d)
{
	return &d->c;
}

void drop_free(struct drop *d)
{
	if (!d)
		return;
	stop(d);
	if (d->thread_started)
		pthread_join(d->thread, NULL);
	ev_async_stop(d->loop, &d->async);
	if (d->ino_fd >= 0)
		close(d->ino_fd);
	while (d->cands) {
		struct drop_cand *c = d->cands;
		d->cands = c->next;
		free(c);
	}
	for (int i = 0; i < d->nqueue; i++)
		free(d->queue[i]);
	evenc_clear(&d->enc);
	map_set_free(d->maps);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	free(d);
}

/* ---- as one of the daemon's inputs (ingest/input.h) ------------------------ */

/* Publisher completions were drained: one may have freed room, let the
 * worker go on. */
static void wake(void *self)
{
	struct drop *d = self;
	pthread_mutex_lock(&d->mu);
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

/* Something in flight, or the worker busy and not stopped. */
static int busy(void *self)
{
	struct drop *d = self;
	int idle;
	pthread_mutex_lock(&d->mu);
	idle = d->inflight == 0 && (!d->busy || d->stop);
	pthread_mutex_unlock(&d->mu);
	return !idle;
}

/* The drop's mappings are loaded again before its next file. */
static int reload(void *self, char *errstr, size_t errstr_size)
{
	struct drop *d = self;
	pthread_mutex_lock(&d->mu);
	d->reload = 1;
	pthread_mutex_unlock(&d->mu);
	return 0;
}

static void free_cb(void *self) { drop_free(self); }

static void view(void *self, struct input_view *out)
{
	struct drop *d = self;
	out->name = d->c.name;
	out->drop = d;
}

/* close only stops: the worker ends in free, after the publisher delivered
 * the completions its callbacks use. */
const struct input_ops drop_input_ops = {
	.kind = "drop",
	.format = "",
	.wake = wake,
	.busy = busy,
	.stop = stop,
	.reload = reload,
	.close = stop,
	.free = free_cb,
	.view = view,
};

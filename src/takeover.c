#include "takeover.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "daemon_conf.h"
#include "ingest/filedrop.h"
#include "log.h"
#include "publish/ledger.h"
#include "publish/ledger_tail.h"
#include "util.h"
#include "publish/kconf.h"

/* "msgs/<name>-<lane>/..." → lane, or -1. */
static int lane_of(const char *k, size_t klen, const char *name)
{
	size_t nl = strlen(name), i = 5 + nl + 1;
	int lane = 0;
	if (klen < i + 2 || memcmp(k, "msgs/", 5) != 0 || memcmp(k + 5, name, nl) != 0 || k[5 + nl] != '-')
		return -1;
	if (k[i] < '0' || k[i] > '9')
		return -1;
	for (; i < klen && k[i] >= '0' && k[i] <= '9' && lane < 100000; i++)
		lane = lane * 10 + (k[i] - '0');
	return i < klen && k[i] == '/' ? lane : -1;
}

static void note(struct takeover_info *out, const rd_kafka_message_t *m, const char *name)
{
	size_t nl = strlen(name);
	const char *k = m->key;
	int lane;
	if (!k)
		return;
	if (m->key_len == 3 + nl && memcmp(k, "hb/", 3) == 0 && memcmp(k + 3, name, nl) == 0 &&
	    m->payload) {
		json_t *v = json_loadb(m->payload, m->len, 0, NULL);
		int64_t ts = json_is_integer(json_object_get(v, "ts"))
				     ? (int64_t)json_integer_value(json_object_get(v, "ts"))
				     : rd_kafka_message_timestamp(m, NULL);
		int lanes = (int)json_integer_value(json_object_get(v, "lanes"));
		json_decref(v);
		out->heartbeats++;
		if (ts > out->hb_ts_ms)
			out->hb_ts_ms = ts;
		if (lanes > out->lanes && lanes < 10000)
			out->lanes = lanes;
		return;
	}
	lane = lane_of(k, m->key_len, name);
	if (lane >= 0 && lane + 1 > out->lanes && lane < 10000)
		out->lanes = lane + 1;
}

struct scan {
	struct takeover_info *out;
	const char *name;
};

static void scan_cb(const rd_kafka_message_t *m, void *opaque)
{
	struct scan *sc = opaque;
	note(sc->out, m, sc->name);
}

int takeover_scan(const rd_kafka_conf_t *kc, const char *state_topic, const char *name,
		  int64_t since_ms, int timeout_ms, struct takeover_info *out, char *errstr,
		  size_t errstr_size)
{
	struct scan sc = { out, name };
	rd_kafka_t *rk;
	memset(out, 0, sizeof *out);
	rk = ledger_read_state(kc, "hl7bridge-takeover", state_topic, since_ms, timeout_ms, scan_cb,
			       &sc, NULL, errstr, errstr_size);
	if (!rk)
		return -1;
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return 0;
}

int takeover_fence(const rd_kafka_conf_t *kc, const char *name, int lanes, int timeout_ms,
		   char *errstr, size_t errstr_size)
{
	for (int lane = 0; lane < lanes; lane++) {
		rd_kafka_conf_t *conf = rd_kafka_conf_dup(kc);
		rd_kafka_error_t *e;
		rd_kafka_t *rk;
		char txid[128], err[512];
		snprintf(txid, sizeof txid, "%s-%d", name, lane);
		if (rd_kafka_conf_set(conf, "transactional.id", txid, err, sizeof err) ||
		    rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err)) {
			rd_kafka_conf_destroy(conf);
			return util_seterr(errstr, errstr_size, "%s: %s", txid, err);
		}
		rk = kconf_client_take(RD_KAFKA_PRODUCER, conf, err, sizeof err);
		if (!rk)
			return util_seterr(errstr, errstr_size, "%s: %s", txid, err);
		/* The coordinator aborts the id's open transaction and bumps its
		 * epoch: whatever still runs under it can no longer commit. */
		e = rd_kafka_init_transactions(rk, timeout_ms);
		if (e) {
			util_seterr(errstr, errstr_size, "%s: init_transactions: %s", txid,
				    rd_kafka_error_string(e));
			rd_kafka_error_destroy(e);
			rd_kafka_destroy(rk);
			return -1;
		}
		rd_kafka_destroy(rk);
	}
	return 0;
}

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

int takeover_files(const struct drop_conf *drops, int ndrops, const char *name)
{
	int moved = 0;
	for (int i = 0; i < ndrops; i++) {
		char work[1024], inbox[1024];
		DIR *dir;
		struct dirent *de;
		snprintf(work, sizeof work, "%s/work/%s", drops[i].path, name);
		snprintf(inbox, sizeof inbox, "%s/inbox", drops[i].path);
		if (!(dir = opendir(work)))
			continue;
		while ((de = readdir(dir))) {
			char from[1400], to[1400];
			struct stat st;
			if (de->d_name[0] == '.')
				continue;
			snprintf(from, sizeof from, "%s/%s", work, de->d_name);
			if (lstat(from, &st) != 0 || !S_ISREG(st.st_mode))
				continue;
			snprintf(to, sizeof to, "%s/%s", inbox, de->d_name);
			for (int k = 1; access(to, F_OK) == 0 && k < 1000; k++)
				snprintf(to, sizeof to, "%s/%s.takeover-%d", inbox, de->d_name, k);
			/* Atomic: of two instances taking over at once, one moves it. */
			if (rename(from, to) == 0) {
				moved++;
				/* what was claimed travels with the file (filedrop.h) */
				if (drop_claim_move(work, de->d_name, inbox, strrchr(to, '/') + 1) < 0)
					log_warn("takeover", "drop %s: cannot move the claim record of %s: %s",
						 drops[i].name, de->d_name, strerror(errno));
				log_info("takeover", "drop %s: %s of instance %s is back in inbox/; it "
						     "resumes where the ledger says",
					 drops[i].name, de->d_name, name);
			} else if (errno != ENOENT) {
				log_error("takeover", "drop %s: cannot move %s of instance %s: %s",
					  drops[i].name, de->d_name, name, strerror(errno));
			}
		}
		closedir(dir);
		fsync_dir(work);
		fsync_dir(inbox);
	}
	return moved;
}

int64_t takeover_txn_timeout_ms(const rd_kafka_conf_t *kc)
{
	char v[64];
	size_t sz = sizeof v;
	if (rd_kafka_conf_get(kc, "transaction.timeout.ms", v, &sz) == RD_KAFKA_CONF_OK && atoll(v) > 0)
		return atoll(v);
	return 60000;
}

/* ---- heartbeats ------------------------------------------------------------- */

static void hb_done_cb(struct pub_job *job, enum pub_status st, const char *reason, void *opaque)
{
	int64_t *last_ok = opaque;
	(void)reason;
	if (st == PUB_COMMITTED)
		*last_ok = util_wall_ms();
	pub_job_free(job);
}

int takeover_heartbeat(struct pub *pub, const char *state_topic, const char *instance, int lanes,
		       int64_t *last_ok_ms)
{
	char key[128], val[160];
	int kl = snprintf(key, sizeof key, "hb/%s", instance);
	int vl = snprintf(val, sizeof val, "{\"ts\":%" PRId64 ",\"lanes\":%d}", util_wall_ms(), lanes);
	static uint64_t turn; /* loop thread: each lane's commits take their turn */
	struct pub_job *job = pub_job_new(hb_done_cb, last_ok_ms);
	if (job)
		pub_job_set_internal(job);
	if (!job || kl >= (int)sizeof key ||
	    pub_job_add(job, state_topic, key, (size_t)kl, val, (size_t)vl, NULL, 0) != 0 ||
	    pub_submit(pub, UINT64_MAX - turn++ % 4096, job) != 0) {
		pub_job_free(job);
		return -1;
	}
	return 0;
}

/* ---- the daemon's watch ------------------------------------------------------ */

#define TAKEOVER_MAX_TAKEN 64
#define TAKEOVER_FENCE_TIMEOUT_MS 60000

struct takeover_watch {
	struct ev_loop *loop;
	struct pub *pub;
	struct ltail *tail;
	const struct daemon_settings *s;
	const rd_kafka_conf_t *kc;
	ev_timer hb, check;
	int64_t last_ok_ms;
	/* peers taken over, with the heartbeat sighting that was too old */
	struct {
		char name[64];
		int64_t seen;
	} taken[TAKEOVER_MAX_TAKEN];
	int ntaken;
	/* the takeover thread */
	pthread_t th;
	int th_started;
	atomic_int th_done;
	char victim[64];
};

static void hb_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct takeover_watch *w = container_of(t, struct takeover_watch, hb);
	(void)loop;
	(void)revents;
	takeover_heartbeat(w->pub, w->s->topics.state, w->s->instance, w->s->pub.lanes, &w->last_ok_ms);
}

static void *takeover_main(void *arg)
{
	struct takeover_watch *w = arg;
	struct takeover_info info;
	char err[512];
	int lanes = w->s->pub.lanes;

	if (takeover_scan(w->kc, w->s->topics.state, w->victim,
			  util_wall_ms() - 2 * w->s->takeover_after_ms - 60000, TAKEOVER_FENCE_TIMEOUT_MS,
			  &info, err, sizeof err) == 0 && info.lanes > lanes)
		lanes = info.lanes;
	if (takeover_fence(w->kc, w->victim, lanes, TAKEOVER_FENCE_TIMEOUT_MS, err, sizeof err) != 0) {
		log_error("takeover", "instance %s: fencing failed: %s; its files stay where they are",
			  w->victim, err);
	} else {
		int moved = takeover_files(w->s->drops, w->s->ndrops, w->victim);
		log_warn("takeover", "instance %s taken over: %d lanes fenced, %d claimed file%s back in "
				     "the inbox",
			 w->victim, lanes, moved, moved == 1 ? "" : "s");
	}
	atomic_store(&w->th_done, 1);
	return NULL;
}

static void check_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct takeover_watch *w = container_of(t, struct takeover_watch, check);
	int64_t now = util_mono_ms();
	const char *name;
	(void)loop;
	(void)revents;
	if (w->th_started) {
		if (!atomic_load(&w->th_done))
			return; /* one at a time */
		pthread_join(w->th, NULL);
		w->th_started = 0;
	}
	for (int i = 0; (name = ltail_peer_name(w->tail, i)); i++) {
		int64_t ts, seen;
		int k;
		if (strcmp(name, w->s->instance) == 0 || !ltail_peer(w->tail, name, &ts, &seen) ||
		    now - seen <= w->s->takeover_after_ms)
			continue;
		for (k = 0; k < w->ntaken; k++)
			if (strcmp(w->taken[k].name, name) == 0)
				break;
		if (k < w->ntaken && w->taken[k].seen == seen)
			continue; /* taken over already, not seen since */
		if (k == w->ntaken) {
			if (k == TAKEOVER_MAX_TAKEN)
				continue;
			w->ntaken++;
			snprintf(w->taken[k].name, sizeof w->taken[k].name, "%s", name);
		}
		w->taken[k].seen = seen;
		snprintf(w->victim, sizeof w->victim, "%s", name);
		log_warn("takeover", "instance %s: no heartbeat for %lld ms (takeover.after %lld ms): "
				     "taking it over",
			 name, (long long)(now - seen), (long long)w->s->takeover_after_ms);
		atomic_store(&w->th_done, 0);
		if (pthread_create(&w->th, NULL, takeover_main, w) == 0)
			w->th_started = 1;
		return;
	}
}

struct takeover_watch *takeover_watch_new(struct ev_loop *loop, struct pub *pub,
					  struct ltail *tail, const struct daemon_settings *s,
					  const rd_kafka_conf_t *kc)
{
	struct takeover_watch *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->loop = loop;
	w->pub = pub;
	w->tail = tail;
	w->s = s;
	w->kc = kc;
	if (s->heartbeat_ms > 0) {
		double iv = (double)s->heartbeat_ms / 1000.0;
		ev_timer_init(&w->hb, hb_cb, 0.0, iv);
		ev_timer_start(loop, &w->hb);
	}
	if (s->takeover_after_ms > 0 && tail) {
		ev_timer_init(&w->check, check_cb, 1.0, 1.0);
		ev_timer_start(loop, &w->check);
	}
	return w;
}

void takeover_watch_stop(struct takeover_watch *w)
{
	if (!w)
		return;
	ev_timer_stop(w->loop, &w->hb);
	ev_timer_stop(w->loop, &w->check);
}

void takeover_watch_free(struct takeover_watch *w)
{
	if (!w)
		return;
	takeover_watch_stop(w);
	if (w->th_started)
		pthread_join(w->th, NULL);
	free(w);
}

int64_t takeover_last_heartbeat(const struct takeover_watch *w)
{
	return w ? w->last_ok_ms : 0;
}

/* replay — see replay.h. */
#include "publish/replay_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "cli.h"
#include "daemon_conf.h"
#include "map/map.h"
#include "publish/evenc.h"
#include "publish/kconf.h"
#include "publish/ledger.h"
#include "publish/pub.h"
#include "publish/registry.h"
#include "publish/replay_diff.h"
#include "publish/topics.h"
#include "util.h"

void replay_opts_defaults(struct replay_opts *o)
{
	memset(o, 0, sizeof *o);
	o->partition = -1;
	o->off_lo = o->off_hi = -1;
	o->since_ms = o->until_ms = -1;
	o->progress_ms = 2000;
}
/* ---- set-up ----------------------------------------------------------------- */

static const char *source_topic(struct rp *r)
{
	const char *f = r->o->from;
	if (strcmp(f, "deadletter") == 0 || strcmp(f, r->s.topics.deadletter) == 0) {
		r->from_dlq = 1;
		return r->s.topics.deadletter;
	}
	if (strcmp(f, "raw-hl7v2") == 0 || strcmp(f, r->s.topics.raw_hl7v2) == 0) {
		r->from_raw = 1;
		return r->s.topics.raw_hl7v2;
	}
	if (strcmp(f, "raw-fhir") == 0 || strcmp(f, r->s.topics.raw_fhir) == 0) {
		r->from_raw = 1;
		return r->s.topics.raw_fhir;
	}
	return f; /* another topic of raw inputs: decided like a raw topic */
}

/* The default group names the selection, so the same command resumes. */
static void derive_group(struct rp *r)
{
	const struct replay_opts *o = r->o;
	int n = snprintf(r->group, sizeof r->group, "%s-replay-%s", r->s.instance, r->topic);
	if (o->partition >= 0 && n > 0 && (size_t)n < sizeof r->group)
		n += snprintf(r->group + n, sizeof r->group - (size_t)n, "-p%d", o->partition);
	if (o->off_lo >= 0 && n > 0 && (size_t)n < sizeof r->group)
		n += snprintf(r->group + n, sizeof r->group - (size_t)n, "-o%" PRId64 "-%" PRId64,
			      o->off_lo, o->off_hi);
	if ((o->since_ms >= 0 || o->until_ms >= 0) && n > 0 && (size_t)n < sizeof r->group)
		n += snprintf(r->group + n, sizeof r->group - (size_t)n, "-t%" PRId64 "-%" PRId64,
			      o->since_ms, o->until_ms);
	/* republishing is once per mapping set: a new set reads the topic again */
	if (o->republish && n > 0 && (size_t)n < sizeof r->group)
		snprintf(r->group + n, sizeof r->group - (size_t)n, "-republish-%02x%02x%02x%02x",
			 r->set_digest[0], r->set_digest[1], r->set_digest[2], r->set_digest[3]);
}

/* SHA-256 over the mapping hashes: what "the same mappings" means for
 * --republish. 0, or -1 when out of memory. */
static int digest_set(const struct map_set *s, uint8_t out[LEDGER_KEY_LEN])
{
	size_t n = map_set_count(s);
	const void **parts = calloc(n + 1, sizeof *parts);
	size_t *lens = calloc(n + 1, sizeof *lens);
	int rc = parts && lens ? 0 : -1;
	for (size_t i = 0; rc == 0 && i <= n; i++) {
		parts[i] = i ? map_set_hash(s, i - 1) : "set";
		lens[i] = strlen(parts[i]);
	}
	if (rc == 0)
		ledger_hash(out, n + 1, parts, lens);
	free(parts);
	free(lens);
	return rc;
}
static struct map_set *load_maps(const char *dir, const struct rp *r, char *err, size_t errsz)
{
	struct map_diag diag = { 0 };
	struct map_set *m = map_set_load(dir, r->s.schemas, &diag);
	if (!m)
		util_seterr(err, errsz, "mappings %s: %d error(s):\n%s", dir, diag.errors,
			    diag.text ? diag.text : "");
	else
		map_set_topic_prefix(m, r->s.topics.prefix);
	map_diag_clear(&diag);
	return m;
}
/* ---- the consumer ------------------------------------------------------------- */

static int64_t offset_at(rd_kafka_t *rk, const char *topic, int32_t p, int64_t ts, int64_t dflt)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, topic, p)->offset = ts;
	int64_t off = dflt;
	if (rd_kafka_offsets_for_times(rk, l, RP_TIMEOUT_MS) == 0 && !l->elems[0].err &&
	    l->elems[0].offset >= 0)
		off = l->elems[0].offset;
	rd_kafka_topic_partition_list_destroy(l);
	return off;
}

/* Work out every partition's [start, end): the selection, moved on to the
 * group's committed offset (not for a dry run, which commits nothing). */
static int plan_ranges(struct rp *r, char *err, size_t errsz)
{
	const struct replay_opts *o = r->o;
	const rd_kafka_metadata_t *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(r->cons, r->topic, NULL);
	rd_kafka_resp_err_t e = rd_kafka_metadata(r->cons, 0, t, &md, RP_TIMEOUT_MS);
	rd_kafka_topic_destroy(t);
	if (e || md->topic_cnt != 1 || md->topics[0].err) {
		util_seterr(err, errsz, "topic %s: %s", r->topic,
			    rd_kafka_err2str(e ? e : md->topic_cnt ? md->topics[0].err
								   : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
		if (md)
			rd_kafka_metadata_destroy(md);
		return -1;
	}
	for (int i = 0; i < md->topics[0].partition_cnt && r->nparts < RP_MAX_PARTS; i++) {
		int32_t id = md->topics[0].partitions[i].id;
		int64_t lo, hi;
		if (o->partition >= 0 && id != o->partition)
			continue;
		if (rd_kafka_query_watermark_offsets(r->cons, r->topic, id, &lo, &hi, RP_TIMEOUT_MS)) {
			rd_kafka_metadata_destroy(md);
			return util_seterr(err, errsz, "topic %s [%d]: no watermarks", r->topic, id);
		}
		struct rp_part *p = &r->parts[r->nparts++];
		p->id = id;
		p->start = lo;
		p->end = hi;
		if (o->off_lo >= 0 && o->off_lo > p->start)
			p->start = o->off_lo;
		if (o->off_hi >= 0 && o->off_hi + 1 < p->end)
			p->end = o->off_hi + 1;
		if (o->since_ms >= 0)
			p->start = offset_at(r->cons, r->topic, id, o->since_ms, hi);
		if (o->until_ms >= 0)
			p->end = offset_at(r->cons, r->topic, id, o->until_ms, hi);
	}
	rd_kafka_metadata_destroy(md);
	if (r->nparts == 0)
		return util_seterr(err, errsz, "topic %s: no partition %d", r->topic, o->partition);
	if (!o->dry_run) {
		rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->nparts);
		for (int i = 0; i < r->nparts; i++)
			rd_kafka_topic_partition_list_add(l, r->topic, r->parts[i].id);
		e = rd_kafka_committed(r->cons, l, RP_TIMEOUT_MS);
		if (e) {
			rd_kafka_topic_partition_list_destroy(l);
			return util_seterr(err, errsz, "group %s: committed offsets: %s", r->group,
					   rd_kafka_err2str(e));
		}
		for (int i = 0; i < l->cnt; i++) {
			struct rp_part *p = &r->parts[i];
			if (l->elems[i].offset > p->start) {
				fprintf(stderr, "replay: partition %d resumes at offset %" PRId64
						" (group %s)\n", p->id, l->elems[i].offset, r->group);
				p->start = l->elems[i].offset;
			}
		}
		rd_kafka_topic_partition_list_destroy(l);
	}
	rd_kafka_topic_partition_list_t *a = rd_kafka_topic_partition_list_new(r->nparts);
	for (int i = 0; i < r->nparts; i++) {
		struct rp_part *p = &r->parts[i];
		if (p->start >= p->end) {
			p->done = 1;
			continue;
		}
		p->pos = p->start;
		r->total += p->end - p->start;
		rd_kafka_topic_partition_list_add(a, r->topic, p->id)->offset = p->start;
	}
	e = a->cnt ? rd_kafka_assign(r->cons, a) : 0;
	rd_kafka_topic_partition_list_destroy(a);
	return e ? util_seterr(err, errsz, "assign: %s", rd_kafka_err2str(e)) : 0;
}

static struct rp_part *part_of(struct rp *r, int32_t id)
{
	for (int i = 0; i < r->nparts; i++)
		if (r->parts[i].id == id)
			return &r->parts[i];
	return NULL;
}

static int all_done(const struct rp *r)
{
	for (int i = 0; i < r->nparts; i++)
		if (!r->parts[i].done)
			return 0;
	return 1;
}

/* ---- the run ------------------------------------------------------------------- */

static int64_t done_offsets(const struct rp *r)
{
	int64_t d = 0;
	for (int i = 0; i < r->nparts; i++) {
		const struct rp_part *p = &r->parts[i];
		if (p->start < p->end)
			d += (p->done ? p->end : p->pos) - p->start;
	}
	return d;
}

static void progress(const struct rp *r, int64_t t0, const char *what)
{
	double secs = (double)(util_mono_ms() - t0) / 1000.0;
	fprintf(stderr,
		"replay: %s %" PRId64 "/%" PRId64 " offsets, %" PRIu64 " records, %.0f records/s, %"
		PRIu64 " inputs %s\n",
		what, done_offsets(r), r->total, r->st.records,
		secs > 0 ? (double)r->st.records / secs : 0.0, r->st.published,
		r->o->dry_run ? "would be published" : "published (committed)");
}

static void summary(const struct rp *r, int64_t t0, int interrupted)
{
	double secs = (double)(util_mono_ms() - t0) / 1000.0;
	const struct rp_stats *s = &r->st;
	int dry = r->o->dry_run;
	fprintf(stderr,
		"replay %s: %s %s: %" PRIu64 " records (%" PRIu64 " inputs) in %.1f s, %.0f records/s\n"
		"  %s %" PRIu64 " inputs (%" PRIu64 " events); %s %" PRIu64
		" (%" PRIu64 " unreadable); still rejected for the same reason %" PRIu64
		"; filtered %" PRIu64 "\n"
		"  skipped: %" PRIu64 " replayed before, %" PRIu64 " published before, %" PRIu64
		" unknown to the ledger (use --republish), %" PRIu64 " repeated in this run\n",
		interrupted ? "interrupted" : r->failed ? "FAILED" : "done",
		dry ? "dry run of" : "group", dry ? r->topic : r->group, s->records, s->inputs, secs,
		secs > 0 ? (double)s->records / secs : 0.0, dry ? "would publish" : "published",
		s->published, s->events, dry ? "would dead-letter" : "dead-lettered again",
		s->deadlettered, s->unreadable, s->still_rejected, s->filtered, s->skip_replayed,
		s->skip_published, s->skip_unknown, s->skip_dup);
	if (dry)
		fprintf(stderr, "  dry run: nothing was published\n");
	else if (interrupted)
		fprintf(stderr, "  run the same command again to resume\n");
}

static int consume(struct rp *r)
{
	int64_t t0 = util_mono_ms(), last = t0;
	while (!all_done(r) && !*r->stop && !r->failed) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(r->cons, 200);
		if (r->pub)
			pub_drain(r->pub);
		char why[300];
		if (r->pub && !r->failed && pub_fatal(r->pub, why, sizeof why)) {
			fprintf(stderr, "replay: publisher failed: %s\n", why);
			r->failed = 1;
		}
		if (r->o->progress_ms > 0 && util_mono_ms() - last >= r->o->progress_ms) {
			progress(r, t0, "at");
			last = util_mono_ms();
		}
		if (!m)
			continue;
		struct rp_part *p = part_of(r, m->partition);
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			if (p && m->offset >= p->pos)
				p->done = 1; /* the rest of the range is transaction markers */
		} else if (m->err) {
			fprintf(stderr, "replay: %s: %s\n", r->topic, rd_kafka_message_errstr(m));
			r->failed = 1;
		} else if (p && !p->done) {
			if (m->offset >= p->end) {
				p->done = 1;
			} else {
				p->pos = m->offset + 1;
				int rc = rp_record(r, m);
				if (rc < 0)
					r->failed = 1;
				else if (rc > 0)
					p->pos = m->offset; /* cut short: not done */
				else if (p->pos >= p->end)
					p->done = 1;
			}
		}
		rd_kafka_message_destroy(m);
	}
	return 0;
}

#define RP_MAX_TOPICS 64

struct topic_list {
	char *t[RP_MAX_TOPICS];
	int n;
};

static void add_topic_cb(const char *topic, void *arg)
{
	struct topic_list *tl = arg;
	for (int i = 0; i < tl->n; i++)
		if (strcmp(tl->t[i], topic) == 0)
			return;
	if (tl->n < RP_MAX_TOPICS && (tl->t[tl->n] = strdup(topic)))
		tl->n++;
}

static void topics_cb(void *opaque, const struct topic_spec *t, int problem, const char *what)
{
	if (problem || strcmp(what, "created") == 0)
		fprintf(stderr, "replay: topic %s: %s\n", t->name, what);
}

static int setup(struct rp *r, char *err, size_t errsz)
{
	const struct replay_opts *o = r->o;
	char e[512];

	r->conf = cli_load_conf(o->conf_path, err, errsz);
	if (!r->conf)
		return -1;
	r->kc = kconf_build(r->conf, conf_section(r->conf, "kafka", NULL), &r->embedded, err, errsz);
	if (!r->kc || daemon_settings_load(r->conf, &r->s, err, errsz) != 0)
		return -1;
	if (r->embedded)
		return util_seterr(err, errsz, "replay needs a real Kafka cluster (bootstrap.servers = embedded)");
	r->topic = source_topic(r);
	if (!(r->maps = load_maps(r->s.mappings, r, err, errsz)))
		return -1;
	if (digest_set(r->maps, r->set_digest) != 0)
		return util_seterr(err, errsz, "out of memory");
	if (o->group)
		snprintf(r->group, sizeof r->group, "%s", o->group);
	else
		derive_group(r);
	if (o->against && !(r->against = load_maps(o->against, r, err, errsz)))
		return -1;
	if (evenc_format_needs_registry(r->s.pl.format) && !o->dry_run) {
		r->reg = registry_new(r->s.registry_url, r->s.registry_user, r->s.registry_password,
				      10000, err, errsz);
		if (!r->reg)
			return -1;
	}
	/* as the daemon does at start: the topics the configuration names */
	if (!o->dry_run && r->s.create_topics &&
	    topics_apply(r->kc, &r->s.topics, 1, RP_TIMEOUT_MS, topics_cb, NULL, err, errsz) < 0)
		return -1;
	if (!o->dry_run) {
		if (evenc_init(&r->enc, r->s.pl.format, r->maps, r->reg, err, errsz) != 0)
			return -1;
		r->enc_ready = 1;
		/* One lane, its transactional.id stable for this group: a rerun
		 * fences a dead run and aborts its open transaction. */
		char inst[128];
		uint8_t h[LEDGER_KEY_LEN];
		const void *parts[1] = { r->group };
		size_t lens[1] = { strlen(r->group) };
		ledger_hash(h, 1, parts, lens);
		snprintf(inst, sizeof inst, "%s-replay-%02x%02x%02x%02x%02x%02x", r->s.instance, h[0],
			 h[1], h[2], h[3], h[4], h[5]);
		r->s.pub.instance = inst;
		r->s.pub.lanes = 1;
		if (o->batch > 0)
			r->s.pub.batch_max_msgs = o->batch;
		/* one transaction committing, the next filling: Ctrl-C waits for
		 * no more than these */
		r->s.pub.max_inflight = 2 * r->s.pub.batch_max_msgs;
		r->s.pub.kafka = r->kc;
		r->s.pub.state_topic = r->s.topics.state;
		r->s.pub.before_commit = rp_before_commit_cb;
		r->s.pub.before_commit_opaque = r;
		const char *warm[2] = { r->s.topics.deadletter, r->s.topics.state };
		r->s.pub.topics = warm;
		r->s.pub.ntopics = 2;
		if (getenv("HL7BRIDGE_TEST_REPLAY_PAUSE_AFTER"))
			r->pause_after = atoi(getenv("HL7BRIDGE_TEST_REPLAY_PAUSE_AFTER"));
		if (getenv("HL7BRIDGE_TEST_REPLAY_SLOW_MS"))
			r->slow_ms = atoi(getenv("HL7BRIDGE_TEST_REPLAY_SLOW_MS"));
		r->pub = pub_new(&r->s.pub, err, errsz);
		r->s.pub.instance = r->s.instance; /* inst goes out of scope */
		r->s.pub.topics = NULL;
		r->s.pub.ntopics = 0;
		if (!r->pub)
			return -1;
	}
	if (o->diff && !o->against) {
		/* the events published before: every topic today's mappings name */
		struct topic_list tl = { { 0 }, 0 };
		for (size_t i = 0; i < map_set_count(r->maps); i++)
			if (map_set_types(r->maps, i, 1, add_topic_cb, &tl) != 0)
				fprintf(stderr, "replay: mapping %s: its topics depend on the message; "
						"events it published elsewhere are not compared\n",
					map_set_name(r->maps, i));
		r->index = rdiff_index_load(rd_kafka_conf_dup(r->kc), (const char *const *)tl.t, tl.n,
					    RP_TIMEOUT_MS, err, errsz);
		for (int i = 0; i < tl.n; i++)
			free(tl.t[i]);
		if (!r->index)
			return -1;
		fprintf(stderr, "replay: %zu published events indexed from %d topic(s)\n",
			rdiff_index_size(r->index), tl.n);
		if (rdiff_index_opaque(r->index))
			fprintf(stderr, "replay: %zu records on those topics are not JSON events (Avro?) "
					"and are not compared: use --against DIR\n",
				rdiff_index_opaque(r->index));
	}
	/* the whole state topic: a dead letter may be older than the dedup window */
	r->ledger = ledger_new(util_wall_ms());
	if (!r->ledger)
		return util_seterr(err, errsz, "out of memory");
	long n = ledger_rebuild(r->ledger, r->kc, r->s.topics.state,
				(int)r->s.ledger_rebuild_timeout_ms, err, errsz);
	if (n < 0)
		return -1;
	fprintf(stderr, "replay: ledger rebuilt from %s: %zu keys\n", r->s.topics.state,
		ledger_size(r->ledger));
	rd_kafka_conf_t *cc = rd_kafka_conf_dup(r->kc);
	if (rd_kafka_conf_set(cc, "group.id", r->group, e, sizeof e) ||
	    rd_kafka_conf_set(cc, "isolation.level", "read_committed", e, sizeof e) ||
	    rd_kafka_conf_set(cc, "enable.auto.commit", "false", e, sizeof e) ||
	    rd_kafka_conf_set(cc, "enable.auto.offset.store", "false", e, sizeof e) ||
	    rd_kafka_conf_set(cc, "enable.partition.eof", "true", e, sizeof e)) {
		rd_kafka_conf_destroy(cc);
		return util_seterr(err, errsz, "consumer config: %s", e);
	}
	r->cons = kconf_client_take(RD_KAFKA_CONSUMER, cc, e, sizeof e);
	if (!r->cons)
		return util_seterr(err, errsz, "consumer: %s", e);
	r->cgmd = rd_kafka_consumer_group_metadata(r->cons);
	return plan_ranges(r, err, errsz);
}

static void teardown(struct rp *r)
{
	if (r->pub) {
		pub_free(r->pub); /* commits what is queued, with its offsets */
		r->pub = NULL;
	}
	if (r->cgmd)
		rd_kafka_consumer_group_metadata_destroy(r->cgmd);
	if (r->cons) {
		rd_kafka_consumer_close(r->cons);
		rd_kafka_destroy(r->cons);
	}
	rdiff_free(r->diff);
	rdiff_index_free(r->index);
	ledger_free(r->ledger);
	if (r->enc_ready)
		evenc_clear(&r->enc);
	registry_free(r->reg);
	map_set_free(r->maps);
	map_set_free(r->against);
	if (r->kc)
		rd_kafka_conf_destroy(r->kc);
	daemon_settings_clear(&r->s);
	conf_free(r->conf);
}

int replay_run(const struct replay_opts *o, volatile sig_atomic_t *stop, FILE *out)
{
	struct rp *r = calloc(1, sizeof *r);
	char err[4096];
	int rc;
	if (!r)
		return 1;
	r->o = o;
	r->stop = stop;
	r->out = out;
	if (setup(r, err, sizeof err) != 0) {
		fprintf(stderr, "hl7bridge replay: %s\n", err);
		teardown(r);
		free(r);
		return 1;
	}
	if (o->dry_run && o->diff)
		r->diff = rdiff_new(o->values, out);
	fprintf(stderr, "replay: %s %s: %" PRId64 " offsets in %d partition(s)%s\n",
		o->dry_run ? "dry run of" : "from", r->topic, r->total, r->nparts,
		o->dry_run ? ", publishing nothing" : "");
	int64_t t0 = util_mono_ms();
	consume(r);
	if (r->pub) {
		/* what is queued commits with its offsets; then run its callbacks */
		pub_free(r->pub);
		r->pub = NULL;
		/* pub_free left the completions queued: nothing else reads them */
	}
	if (r->diff)
		rdiff_summary(r->diff, out, stderr);
	int interrupted = *stop && !all_done(r);
	summary(r, t0, interrupted);
	rc = r->failed ? 1 : interrupted ? 130 : 0;
	teardown(r);
	free(r);
	return rc;
}

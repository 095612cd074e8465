#include "daemon.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cli.h"
#include "daemon_conf.h"
#include "daemon_priv.h"
#include "log.h"
#include "ingest/fhir_http.h"
#include "ingest/filedrop.h"
#include "map/map.h"
#include "obs/hist.h"
#include "obs/http.h"
#include "obs/mapref.h"
#include "obs/metrics.h"
#include "pipeline.h"
#include "publish/kconf.h"
#include "publish/ledger.h"
#include "publish/ledger_tail.h"
#include "publish/pub.h"
#include "publish/registry.h"
#include "publish/topics.h"
#include "takeover.h"
#include "util.h"

struct daemon {
	struct ev_loop *loop;
	const struct daemon_opts *opts;
	struct conf *conf;
	struct daemon_settings s;
	rd_kafka_conf_t *kc;
	int embedded;
	rd_kafka_t *mock_rk;
	rd_kafka_mock_cluster_t *mock;
	struct map_set *maps;
	struct registry *reg;
	struct pub *pub;
	struct ledger *ledger;
	struct ltail *tail; /* [ledger] shared: the other instances' commits */
	struct takeover_watch *watch; /* heartbeats, automatic takeover */
	struct pipeline *pl;
	/* MLLP listeners, FHIR listeners, drops: every lifecycle step is one
	 * loop over them (ingest/input.h) */
	struct input in[DAEMON_MAX_LISTENERS + DAEMON_MAX_FHIR + DAEMON_MAX_DROPS];
	int nin;
	ev_async wake;
	ev_signal sigterm, sigint, sighup;
	ev_timer tick, deadline;
	int draining;
	int exit_code;
	/* observability: the [http] endpoints, fed a snapshot every OBS_PUBLISH_S */
	struct mapref *mref; /* owns the current mapping set (the playground shares it) */
	struct http *http;
	ev_timer obs_tick;
	int64_t started_ms;
	int ledger_rebuilt;
	char problem[256]; /* a drop folder this process cannot use (readiness) */
	int64_t failing_logged_ms; /* last "lane failing" line; 0 while every lane commits */
};

#define OBS_PUBLISH_S 0.25

/* ---- the listeners' sink --------------------------------------------------- */

static int sink_can_accept(void *opaque)
{
	struct daemon *d = opaque;
	return !d->draining && pipeline_can_accept(d->pl);
}

static void reply_cb(void *ctx, const char *ack, size_t len)
{
	lsn_slot_reply(ctx, ack, len);
}

static void sink_frame(void *opaque, struct lsn_slot *slot, const unsigned char *frame, size_t len)
{
	struct daemon *d = opaque;
	pipeline_hl7(d->pl, lsn_slot_conn_id(slot), lsn_slot_origin(slot), frame, len, reply_cb, slot);
}

/* ---- observability ---------------------------------------------------------- */

/* Hand the HTTP thread a copy of the loop-owned counters. */
static void obs_publish(struct daemon *d)
{
	struct obs_snapshot *snap;
	struct obs_sources src = {
		.instance = d->s.instance,
		.started_ms = d->started_ms,
		.pl = d->pl,
		.in = d->in,
		.nin = d->nin,
		.nin_expected = d->s.nlsn + d->s.nfhir + d->s.ndrops,
		.ledger = d->ledger,
		.ledger_rebuilt = d->ledger_rebuilt,
		.pub = d->pub,
		.draining = d->draining,
		.tail = d->tail,
	};
	if (!d->http || !(snap = malloc(sizeof *snap)))
		return;
	obs_collect(snap, &src);
	snprintf(snap->problem, sizeof snap->problem, "%s", d->problem);
	http_publish(d->http, snap, d->pub);
	free(snap);
}

static void obs_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	obs_publish(container_of(w, struct daemon, obs_tick));
}

/* ---- loop callbacks --------------------------------------------------------- */

static int idle_everywhere(struct daemon *d)
{
	if (pub_inflight(d->pub) > 0 || ltail_busy(d->tail))
		return 0;
	for (int i = 0; i < d->nin; i++)
		if (input_busy(&d->in[i]))
			return 0;
	return 1;
}

static void check_fatal(struct daemon *d)
{
	char err[512];
	if (d->exit_code == 0 && pub_fatal(d->pub, err, sizeof err)) {
		log_error("daemon", "publisher failed: %s; no further message will be acknowledged; "
				    "exiting so a supervisor can restart hl7bridge", err);
		d->exit_code = 1;
		ev_break(d->loop, EVBREAK_ALL);
	}
}

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct daemon *d = container_of(w, struct daemon, wake);
	pub_drain(d->pub);
	check_fatal(d);
	for (int i = 0; i < d->nin; i++)
		input_wake(&d->in[i]);
	if (d->draining && idle_everywhere(d)) {
		log_info("daemon", "every in-flight message is committed and acknowledged");
		ev_break(loop, EVBREAK_ALL);
	}
}

static void notify_cb(void *opaque)
{
	struct daemon *d = opaque;
	ev_async_send(d->loop, &d->wake); /* from a lane thread */
}

/* A lane that keeps failing to commit: say so every 30 s until it commits
 * again (/readyz says not ready meanwhile). */
static void check_failing(struct daemon *d)
{
	char why[256];
	int64_t now = util_mono_ms();
	int n = pub_lanes_failing(d->pub, PUB_FAILING_MS, why, sizeof why);
	if (n > 0 && (!d->failing_logged_ms || now - d->failing_logged_ms >= 30000)) {
		log_error("daemon", "publisher: %d lane(s) cannot commit (%s); their senders get no "
				    "acknowledgement and /readyz answers 503 until it commits again",
			  n, why);
		d->failing_logged_ms = now;
	} else if (n == 0 && d->failing_logged_ms) {
		log_info("daemon", "publisher: every lane commits again");
		d->failing_logged_ms = 0;
	}
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = container_of(w, struct daemon, tick);
	size_t pruned = ledger_prune(d->ledger, util_wall_ms());
	char problem[sizeof d->problem];
	daemon_priv_drops_problem(&d->s, problem, sizeof problem);
	if (strcmp(problem, d->problem) != 0) {
		if (problem[0])
			log_error("daemon", "%s: /readyz answers 503 until this is fixed", problem);
		else
			log_info("daemon", "every drop folder is usable again");
		snprintf(d->problem, sizeof d->problem, "%s", problem);
	}
	if (pruned)
		log_debug("daemon", "ledger: %zu message keys left the dedup window", pruned);
	check_fatal(d);
	check_failing(d);
	if (d->draining && idle_everywhere(d))
		ev_break(loop, EVBREAK_ALL);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = container_of(w, struct daemon, deadline);
	log_error("daemon", "shutdown deadline passed with %d messages in flight; they were not "
			    "acknowledged, so their senders will resend them",
		  pub_inflight(d->pub));
	d->exit_code = 1;
	ev_break(loop, EVBREAK_ALL);
}

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct daemon *d = w->data;
	if (d->draining) {
		log_warn("daemon", "second signal: stopping now");
		d->exit_code = 1;
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	log_info("daemon", "signal %d: no new connections or messages; committing what is in flight",
		 w->signum);
	d->draining = 1;
	obs_publish(d); /* not ready any more */
	for (int i = 0; i < d->nin; i++)
		input_stop(&d->in[i]);
	ev_timer_set(&d->deadline, (double)d->s.shutdown_timeout_ms / 1000.0, 0.);
	ev_timer_start(loop, &d->deadline);
	if (idle_everywhere(d))
		ev_break(loop, EVBREAK_ALL);
}

/* SIGHUP: mappings and TLS certificates, all or nothing. */
static void reload_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct daemon *d = w->data;
	struct map_diag diag = { 0 };
	struct map_set *maps;
	char err[1024];

	log_info("daemon", "SIGHUP: reloading mappings and certificates");
	maps = map_set_load(d->s.mappings, d->s.schemas, &diag);
	if (!maps) {
		log_error("daemon", "reload refused, keeping the current mappings: %d error(s):\n%s",
			  diag.errors, diag.text ? diag.text : "");
		map_diag_clear(&diag);
		return;
	}
	map_diag_clear(&diag);
	map_set_topic_prefix(maps, d->s.topics.prefix);
	/* Check every certificate before switching anything. */
	for (int i = 0; i < d->nin; i++) {
		if (input_reload_check(&d->in[i], err, sizeof err) != 0) {
			log_error("daemon", "reload refused (listener %s): %s",
				  input_view(&d->in[i]).name, err);
			map_set_free(maps);
			return;
		}
	}
	struct mapref_hold *next = mapref_prepare(maps);
	if (!next || pipeline_set_maps(d->pl, maps, d->reg, err, sizeof err) != 0) {
		log_error("daemon", "reload refused: %s", next ? err : "out of memory");
		mapref_discard(next);
		map_set_free(maps);
		return;
	}
	/* Messages in flight hold no pointer into the old set: events were built
	 * when the message arrived. A playground request may still use it: the
	 * holder frees it when that request is done. */
	mapref_install(d->mref, next);
	d->maps = maps;
	for (int i = 0; i < d->nin; i++)
		if (input_reload(&d->in[i], err, sizeof err) != 0)
			log_error("daemon", "listener %s: %s", input_view(&d->in[i]).name, err);
	log_info("daemon", "reloaded: %zu mappings", map_set_count(maps));
}

/* ---- start-up ------------------------------------------------------------- */

static int start_embedded(struct daemon *d, char *err, size_t errsz)
{
	char e[512];
	rd_kafka_conf_t *mc = rd_kafka_conf_new();
	rd_kafka_conf_set(mc, "log_level", "3", NULL, 0);
	d->mock_rk = kconf_client_take(RD_KAFKA_PRODUCER, mc, e, sizeof e);
	if (!d->mock_rk)
		return util_seterr(err, errsz, "embedded broker: %s", e);
	d->mock = rd_kafka_mock_cluster_new(d->mock_rk, 1);
	if (!d->mock)
		return util_seterr(err, errsz, "embedded broker: cannot start");
	const char *bs = rd_kafka_mock_cluster_bootstraps(d->mock);
	if (rd_kafka_conf_set(d->kc, "bootstrap.servers", bs, e, sizeof e) != RD_KAFKA_CONF_OK)
		return util_seterr(err, errsz, "embedded broker: %s", e);
	for (int i = 0; i < d->s.topics.n; i++)
		rd_kafka_mock_topic_create(d->mock, d->s.topics.t[i].name, d->s.topics.t[i].partitions, 1);
	log_warn("daemon", "EMBEDDED BROKER at %s: an in-process Kafka-protocol broker for trying "
			   "hl7bridge out. It is NOT durable: every event is lost when hl7bridge stops. "
			   "Point [kafka] bootstrap.servers (or KAFKA_BROKERS) at a real cluster for "
			   "anything else.",
		 bs);
	fprintf(stderr, "embedded Kafka broker: %s (not durable)\n", bs);
	return 0;
}

static void pub_note_cb(void *opaque, const char *text)
{
	(void)opaque;
	log_warn("publisher", "%s", text);
}

/* Frames a listener takes vs what the dead-letter and raw topics take: a
 * larger message is still answered (AE, dead-lettered cut to fit), but say
 * so at start. */
static void check_frame_limits(struct daemon *d)
{
	for (int i = 0; i < d->s.nlsn; i++) {
		const struct lsn_conf *lc = &d->s.lsn[i];
		size_t need = pub_record_size(0, lc->max_frame, NULL, 0) + 1024; /* + headers */
		size_t dl = pub_record_room(d->pub, d->s.topics.deadletter);
		size_t raw = pub_record_room(d->pub, d->s.topics.raw_hl7v2);
		if (d->s.pl.deadletter && need > dl)
			log_warn("daemon", "listener %s: max.frame.size = %zu, but topic %s takes records "
					   "up to %zu bytes: larger rejected messages are dead-lettered cut "
					   "to fit (header hl7bridge-truncated)",
				 lc->name, lc->max_frame, d->s.topics.deadletter, dl);
		if (d->s.topics.raw && need > raw)
			log_warn("daemon", "listener %s: max.frame.size = %zu, but topic %s takes records "
					   "up to %zu bytes: larger messages cannot be copied whole and are "
					   "answered AE (207)",
				 lc->name, lc->max_frame, d->s.topics.raw_hl7v2, raw);
	}
}

static void topics_report(void *opaque, const struct topic_spec *t, int problem, const char *what)
{
	if (problem)
		log_warn("topics", "%s: %s", t->name, what);
	else if (strcmp(what, "created") == 0)
		log_info("topics", "created %s (%d partitions)", t->name, t->partitions);
}

static int drop_privileges(const struct daemon_settings *s, char *err, size_t errsz)
{
	if (s->group[0]) {
		struct group *g = getgrnam(s->group);
		if (!g || setgroups(0, NULL) != 0 || setgid(g->gr_gid) != 0)
			return util_seterr(err, errsz, "cannot switch to group %s: %s", s->group,
					   g ? strerror(errno) : "no such group");
	}
	if (s->user[0]) {
		struct passwd *pw = getpwnam(s->user);
		if (!pw || (!s->group[0] && setgid(pw->pw_gid) != 0) || setuid(pw->pw_uid) != 0)
			return util_seterr(err, errsz, "cannot switch to user %s: %s", s->user,
					   pw ? strerror(errno) : "no such user");
		log_info("daemon", "running as user %s", s->user);
	}
	return 0;
}

/* The inputs, in the order of the ready line: MLLP listeners, FHIR
 * listeners (the same mappings, ledger, publisher and topics), drops. */
static int open_inputs(struct daemon *d, char *err, size_t errsz)
{
	struct lsn_sink sink = {
		.can_accept = sink_can_accept,
		.frame = sink_frame,
		.opaque = d,
	};
	struct fhttp_env fenv = {
		.pl = d->pl,
		.pub = d->pub,
		.ledger = d->ledger,
		.deadletter_topic = d->s.topics.deadletter,
		.deadletter = d->s.pl.deadletter,
		.unmatched = d->s.pl.unmatched,
		.raw = d->s.topics.raw,
		.raw_topic = d->s.topics.raw_fhir,
		.format = d->s.pl.format,
		.draining = &d->draining,
		.tail = d->tail,
	};
	struct drop_env denv = {
		.pub = d->pub,
		.ledger = d->ledger,
		.reg = d->reg,
		.format = d->s.pl.format,
		.instance = d->s.instance,
		.topic_prefix = d->s.topics.prefix,
		.deadletter_topic = d->s.topics.deadletter,
		.raw = d->s.topics.raw,
		.raw_hl7v2_topic = d->s.topics.raw_hl7v2,
		.raw_fhir_topic = d->s.topics.raw_fhir,
		.tail = d->tail,
	};
	void *self;

	for (int i = 0; i < d->s.nlsn; i++) {
		const struct lsn_conf *lc = &d->s.lsn[i];
		if (!(self = lsn_new(d->loop, lc, &sink, err, errsz)))
			return -1;
		d->in[d->nin++] = (struct input){ &lsn_input_ops, self };
		log_info("daemon", "listening on %s:%d (%s%s)", lc->host[0] ? lc->host : "*",
			 lsn_port(self), lc->name,
			 lc->tls ? (lc->tls_conf.verify_client ? ", mutual TLS" : ", TLS") : "");
	}
	for (int i = 0; i < d->s.nfhir; i++) {
		const struct fhttp_conf *fc = &d->s.fhir[i];
		if (!(self = fhttp_new(d->loop, fc, &fenv, err, errsz)))
			return -1;
		d->in[d->nin++] = (struct input){ &fhttp_input_ops, self };
		log_info("daemon", "FHIR listening on %s:%d%s (%s%s%s)",
			 fc->lsn.host[0] ? fc->lsn.host : "*", lsn_port(input_view(&d->in[d->nin - 1]).lsn),
			 fc->base, fc->lsn.name,
			 fc->lsn.tls ? (fc->lsn.tls_conf.verify_client ? ", mutual TLS" : ", TLS") : "",
			 fc->ntokens ? ", bearer tokens" : "");
	}
	for (int i = 0; i < d->s.ndrops; i++) {
		if (!(self = drop_new(d->loop, &d->s.drops[i], &denv, err, errsz)))
			return -1;
		d->in[d->nin++] = (struct input){ &drop_input_ops, self };
	}
	return 0;
}

static int startup(struct daemon *d, char *err, size_t errsz)
{
	struct map_diag diag = { 0 };
	int64_t t0 = util_mono_ms();
	long applied;

	d->conf = cli_load_conf(d->opts->conf_path, err, errsz);
	if (!d->conf)
		return -1;
	if (daemon_conf_validate(d->conf, &d->s, &d->kc, &d->embedded, err, errsz) != 0)
		return -1;
	log_setup(d->s.log_level, d->s.log_format);
	{
		char *proto = kconf_get(d->kc, "security.protocol");
		char *mech = kconf_get(d->kc, "sasl.mechanism");
		int rc = daemon_priv_audit(&d->s, d->opts->conf_path ? d->opts->conf_path
								     : CLI_DEFAULT_CONF,
					   ".env", proto, mech, 1, err, errsz);
		free(proto);
		free(mech);
		if (rc != 0)
			return -1;
	}
	if (d->s.takeover_after_ms &&
	    d->s.takeover_after_ms <= 2 * d->s.heartbeat_ms + takeover_txn_timeout_ms(d->kc))
		return util_seterr(err, errsz,
				   "[bridge] takeover.after must exceed [kafka] transaction.timeout.ms + 2 x "
				   "[ledger] heartbeat (%lld ms): a live instance could be fenced",
				   (long long)(2 * d->s.heartbeat_ms + takeover_txn_timeout_ms(d->kc)));

	d->maps = map_set_load(d->s.mappings, d->s.schemas, &diag);
	if (!d->maps) {
		util_seterr(err, errsz, "mappings: %d error(s):\n%s", diag.errors,
			    diag.text ? diag.text : "");
		map_diag_clear(&diag);
		return -1;
	}
	map_diag_clear(&diag);
	map_set_topic_prefix(d->maps, d->s.topics.prefix);
	log_info("daemon", "%zu mappings loaded from %s", map_set_count(d->maps), d->s.mappings);
	d->mref = mapref_new(d->maps);
	if (!d->mref) {
		d->maps = NULL; /* freed by mapref_new */
		return util_seterr(err, errsz, "out of memory");
	}
	/* Serve /healthz and /readyz while the slow steps below run. */
	if (d->s.http.enabled) {
		d->http = http_start(&d->s.http, d->mref, err, errsz);
		if (!d->http)
			return -1;
		log_info("daemon", "HTTP endpoints on %s%s:%d%s%s", d->s.http.tls_cert[0] ? "https://" : "http://",
			 d->s.http.host[0] ? d->s.http.host : "*", http_port(d->http),
			 d->s.http.token[0] ? " (bearer token required)" : "",
			 d->s.http.playground ? "; mapping playground on" : "");
		obs_publish(d);
	}

	if (d->embedded && start_embedded(d, err, errsz) != 0)
		return -1;
	if (d->s.create_topics && !d->embedded) {
		int problems = topics_apply(d->kc, &d->s.topics, 1, 30000, topics_report, NULL, err, errsz);
		if (problems < 0)
			return -1;
	}
	if (evenc_format_needs_registry(d->s.pl.format)) {
		d->reg = registry_new(d->s.registry_url, d->s.registry_user, d->s.registry_password,
				      10000, err, errsz);
		if (!d->reg)
			return -1;
	}

	const char *warm[64];
	int nwarm = 0;
	for (int i = 0; i < d->s.topics.n && nwarm < 64; i++)
		warm[nwarm++] = d->s.topics.t[i].name;
	d->s.pub.topics = warm;
	d->s.pub.ntopics = nwarm;
	d->s.pub.kafka = d->kc;
	d->s.pub.notify = notify_cb;
	d->s.pub.notify_opaque = d;
	d->s.pub.note = pub_note_cb;
	d->s.pub.stop_timeout_ms = 5000; /* after shutdown.timeout, at most this more */
	if (d->embedded)
		d->s.pub.limits_timeout_ms = 0; /* the mock cluster has no DescribeConfigs */
	if (getenv("HL7BRIDGE_TEST_CRASH_AFTER_PRODUCE"))
		d->s.pub.crash_after_produce = 1;
	if (getenv("HL7BRIDGE_TEST_CRASH_AFTER_COMMIT"))
		d->s.pub.crash_after_commit = 1;
	d->pub = pub_new(&d->s.pub, err, errsz);
	if (!d->pub)
		return -1;
	log_info("daemon", "%d publisher lanes ready (transactional.id %s-0..%d)", d->s.pub.lanes,
		 d->s.instance, d->s.pub.lanes - 1);
	check_frame_limits(d);
	obs_publish(d);

	d->ledger = ledger_new(d->s.ledger_window_ms);
	if (!d->ledger)
		return util_seterr(err, errsz, "out of memory");
	/* The embedded broker lives in this process: no other instance can share
	 * its state topic, and its fetches wait out fetch.wait.max.ms, which
	 * would make every barrier half a second. */
	if (d->s.ledger_shared && !d->embedded) {
		/* The rebuild's consumer goes on as the ledger tail. */
		rd_kafka_topic_partition_list_t *ends = NULL;
		rd_kafka_t *rk = ledger_rebuild_open(d->ledger, d->kc, d->s.topics.state,
						     (int)d->s.ledger_rebuild_timeout_ms, &applied, &ends,
						     err, errsz);
		struct ltail_conf tc = { .loop = d->loop, .ledger = d->ledger, .instance = d->s.instance,
					  .state_topic = d->s.topics.state, .kafka = d->kc };
		if (!rk || !(d->tail = ltail_new(&tc, rk, ends, err, errsz)))
			return -1;
	} else {
		applied = ledger_rebuild(d->ledger, d->kc, d->s.topics.state,
					 (int)d->s.ledger_rebuild_timeout_ms, err, errsz);
		if (applied < 0)
			return -1;
	}
	log_info("daemon", "ledger rebuilt from %s: %ld records, %zu keys", d->s.topics.state, applied,
		 ledger_size(d->ledger));
	d->ledger_rebuilt = 1;

	d->pl = pipeline_new(&d->s.pl, d->pub, d->ledger, err, errsz);
	if (!d->pl || pipeline_set_maps(d->pl, d->maps, d->reg, err, errsz) != 0)
		return -1;
	pipeline_set_tail(d->pl, d->tail);

	if (open_inputs(d, err, errsz) != 0)
		return -1;
	if (!d->embedded && !(d->watch = takeover_watch_new(d->loop, d->pub, d->tail, &d->s, d->kc)))
		return util_seterr(err, errsz, "out of memory");
	if (daemon_priv_prepare(&d->s, err, errsz) != 0 || drop_privileges(&d->s, err, errsz) != 0 ||
	    (d->s.user[0] && daemon_priv_check(&d->s, err, errsz) != 0))
		return -1;
	log_info("daemon", "ready in %lld ms (instance %s)", (long long)(util_mono_ms() - t0),
		 d->s.instance);
	obs_publish(d);
	if (d->opts->ready_fd >= 0) {
		char line[256];
		int n = snprintf(line, sizeof line, "READY");
		for (int i = 0; i < d->nin && n < (int)sizeof line - 16; i++) {
			/* MLLP ports bare, others' as kind=port; drops have none */
			struct lsn *l = input_view(&d->in[i]).lsn;
			const char *kind = d->in[i].ops->kind;
			if (l && strcmp(kind, "mllp") == 0)
				n += snprintf(line + n, sizeof line - (size_t)n, " %d", lsn_port(l));
			else if (l)
				n += snprintf(line + n, sizeof line - (size_t)n, " %s=%d", kind, lsn_port(l));
		}
		if (d->http)
			n += snprintf(line + n, sizeof line - (size_t)n, " http=%d", http_port(d->http));
		n += snprintf(line + n, sizeof line - (size_t)n, "\n");
		if (write(d->opts->ready_fd, line, (size_t)n) < 0)
			log_warn("daemon", "cannot write the ready line: %s", strerror(errno));
	}
	return 0;
}

/* One line for capacity planning: how long a transaction takes here, and how
 * long a message waits from submission to its commit. */
static void log_publisher_summary(struct daemon *d)
{
	struct pub_stats st;
	const struct hist *ch = pub_commit_hist(d->pub), *jh = pub_job_hist(d->pub);
	pub_get_stats(d->pub, &st);
	log_info("daemon",
		 "publisher: %llu transactions committed, %llu aborted, %llu jobs; commit p50 %.1f ms "
		 "p99 %.1f ms; submit to commit p50 %.1f ms p99 %.1f ms",
		 (unsigned long long)st.txn_committed, (unsigned long long)st.txn_aborted,
		 (unsigned long long)st.jobs_committed, hist_quantile(ch, 0.5) / 1000.0,
		 hist_quantile(ch, 0.99) / 1000.0, hist_quantile(jh, 0.5) / 1000.0,
		 hist_quantile(jh, 0.99) / 1000.0);
	if (d->tail) {
		struct ltail_stats ts;
		ltail_get_stats(d->tail, &ts);
		log_info("daemon",
			 "shared ledger: %llu barriers for %llu messages/files, barrier p50 %.1f ms p99 "
			 "%.1f ms max %.1f ms; %llu records from the state topic, %llu failed ListOffsets",
			 (unsigned long long)ts.barriers, (unsigned long long)ts.waiters,
			 ts.barrier_p50_us / 1000.0, ts.barrier_p99_us / 1000.0, ts.barrier_max_us / 1000.0,
			 (unsigned long long)ts.records, (unsigned long long)ts.query_errors);
	}
}

static void teardown(struct daemon *d)
{
	http_stop(d->http); /* first: it reads the publisher */
	/* Messages still waiting for a barrier are answered (no ACK) while
	 * their connections exist. */
	takeover_watch_stop(d->watch);
	ltail_free(d->tail);
	d->tail = NULL;
	if (d->pl)
		pipeline_set_tail(d->pl, NULL); /* (drops ask only from the loop, which has stopped) */
	/* Inputs close first (listeners are freed, drops stop) so nothing more
	 * is submitted; the publisher then commits what is queued and delivers
	 * the completions (which the drops' callbacks use); only then do the
	 * drops' workers end. */
	for (int i = 0; i < d->nin; i++)
		input_close(&d->in[i]);
	if (d->pub)
		pub_free(d->pub);
	takeover_watch_free(d->watch); /* after the publisher: a heartbeat job points into it */
	for (int i = 0; i < d->nin; i++)
		input_free(&d->in[i]);
	pipeline_free(d->pl);
	ledger_free(d->ledger);
	registry_free(d->reg);
	if (d->mref)
		mapref_free(d->mref); /* the current set */
	else
		map_set_free(d->maps);
	if (d->mock)
		rd_kafka_mock_cluster_destroy(d->mock); /* librdkafka asserts it goes first */
	if (d->mock_rk)
		rd_kafka_destroy(d->mock_rk);
	if (d->kc)
		rd_kafka_conf_destroy(d->kc);
	daemon_settings_clear(&d->s);
	conf_free(d->conf);
}

int daemon_run(const struct daemon_opts *o)
{
	struct daemon d;
	char err[4096];

	memset(&d, 0, sizeof d);
	d.opts = o;
	d.started_ms = util_wall_ms();
	d.loop = ev_default_loop(EVFLAG_AUTO);
	signal(SIGPIPE, SIG_IGN);
	/* mapping errors in the logs: file:line:col and the reason, not the line */
	map_diag_set_quote_source(0);
	ev_async_init(&d.wake, wake_cb);
	ev_async_start(d.loop, &d.wake);

	if (startup(&d, err, sizeof err) != 0) {
		log_error("daemon", "%s", err);
		teardown(&d);
		return 1;
	}
	ev_signal_init(&d.sigterm, stop_cb, SIGTERM);
	ev_signal_init(&d.sigint, stop_cb, SIGINT);
	ev_signal_init(&d.sighup, reload_cb, SIGHUP);
	d.sigterm.data = d.sigint.data = d.sighup.data = &d;
	ev_signal_start(d.loop, &d.sigterm);
	ev_signal_start(d.loop, &d.sigint);
	ev_signal_start(d.loop, &d.sighup);
	ev_timer_init(&d.tick, tick_cb, 1.0, 1.0);
	ev_timer_start(d.loop, &d.tick);
	ev_init(&d.deadline, deadline_cb);
	ev_timer_init(&d.obs_tick, obs_tick_cb, OBS_PUBLISH_S, OBS_PUBLISH_S);
	if (d.http)
		ev_timer_start(d.loop, &d.obs_tick);

	ev_run(d.loop, 0);

	log_publisher_summary(&d);
	log_info("daemon", "stopping (exit %d)", d.exit_code);
	teardown(&d);
	return d.exit_code;
}

int cmd_run(int argc, char **argv)
{
	struct daemon_opts o = { NULL, -1 };
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			o.conf_path = argv[++i];
		} else if (strcmp(argv[i], "--ready-fd") == 0 && i + 1 < argc) {
			o.ready_fd = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: hl7bridge run [-c FILE]\n"
			       "  Run the bridge: MLLP listeners → mappings → Kafka (exactly once).\n"
			       "  -c FILE       configuration (default %s)\n"
			       "  --ready-fd N  write 'READY <port>...' to fd N once listening\n"
			       "  Signals: HUP reloads mappings and certificates; TERM/INT shut down\n"
			       "  gracefully (in-flight messages are committed and acknowledged).\n",
			       CLI_DEFAULT_CONF);
			return 0;
		} else {
			fprintf(stderr, "hl7bridge run: unknown argument '%s' (see --help)\n", argv[i]);
			return 2;
		}
	}
	return daemon_run(&o);
}

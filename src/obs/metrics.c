#include "config.h"

#include "obs/metrics.h"

#include <stdlib.h>
#include <string.h>

#include "obs/hist.h"
#include "publish/ledger.h"
#include "util.h"

/* ---- the loop's side -------------------------------------------------------- */

/* An input's counters: its connections (listeners), FHIR requests, files. */
static void collect_input(struct obs_snapshot *s, const struct input *src)
{
	struct input_view v = input_view(src);
	if (v.lsn && s->nin < OBS_MAX_LISTENERS) {
		struct obs_input *in = &s->in[s->nin++];
		const struct lsn_conf *c = lsn_config(v.lsn);
		snprintf(in->name, sizeof in->name, "%s", v.name);
		snprintf(in->kind, sizeof in->kind, "%s", src->ops->kind);
		snprintf(in->format, sizeof in->format, "%s", src->ops->format);
		snprintf(in->bind, sizeof in->bind, "%s:%d", c->host[0] ? c->host : "*",
			 lsn_port(v.lsn));
		in->tls = c->tls;
		lsn_get_stats(v.lsn, &in->st);
	}
	if (v.fhir && s->nfhir < OBS_MAX_LISTENERS) {
		snprintf(s->fhir[s->nfhir].name, sizeof s->fhir[0].name, "%s", v.name);
		fhttp_get_stats(v.fhir, &s->fhir[s->nfhir].st);
		s->nfhir++;
	}
	if (v.drop && s->ndrops < OBS_MAX_LISTENERS) {
		snprintf(s->drops[s->ndrops].name, sizeof s->drops[0].name, "%s", v.name);
		snprintf(s->drops[s->ndrops].path, sizeof s->drops[0].path, "%s",
			 drop_config(v.drop)->path);
		drop_get_stats(v.drop, &s->drops[s->ndrops].st);
		s->ndrops++;
	}
}

void obs_collect(struct obs_snapshot *s, const struct obs_sources *src)
{
	memset(s, 0, sizeof *s);
	s->taken_ms = util_wall_ms();
	s->started_ms = src->started_ms;
	snprintf(s->instance, sizeof s->instance, "%s", src->instance ? src->instance : "");
	snprintf(s->version, sizeof s->version, "%s", PACKAGE_VERSION);
	s->producers = src->pub != NULL;
	s->ledger = src->ledger && src->ledger_rebuilt;
	s->listeners = src->nin > 0 && src->nin == src->nin_expected;
	s->draining = src->draining;
	s->fatal = src->pub && pub_fatal(src->pub, NULL, 0);
	if (src->pub)
		s->lanes_failing = pub_lanes_failing(src->pub, PUB_FAILING_MS, s->failing,
						     sizeof s->failing);
	if (src->pl) {
		s->has_pipeline = 1;
		pipeline_get_stats(src->pl, &s->pl);
		s->nrecent = pipeline_recent_rejections(src->pl, s->recent, PIPELINE_RECENT_REJECTIONS);
	}
	for (int i = 0; i < src->nin; i++)
		collect_input(s, &src->in[i]);
	if (src->ledger)
		s->ledger_keys = ledger_size(src->ledger);
	if (src->tail) {
		s->shared = 1;
		ltail_get_stats(src->tail, &s->tail);
	}
}

int obs_ready(const struct obs_snapshot *s)
{
	return s->producers && s->ledger && s->listeners && !s->draining && !s->fatal &&
	       !s->lanes_failing && !s->problem[0];
}

/* ---- the publisher's side ------------------------------------------------------ */

int obs_pubview_fill(struct obs_pubview *v, const struct pub *pub)
{
	memset(v, 0, sizeof *v);
	if (!pub)
		return 0;
	v->present = 1;
	pub_get_stats(pub, &v->st);
	v->inflight = pub_inflight(pub);
	v->max_inflight = pub_max_inflight(pub);
	v->commit = pub_commit_hist(pub);
	v->ack = pub_job_hist(pub);
	v->nlanes = pub_lanes(pub);
	v->lanes = calloc((size_t)v->nlanes, sizeof *v->lanes);
	if (!v->lanes) {
		v->nlanes = 0;
		return -1;
	}
	for (int i = 0; i < v->nlanes; i++)
		pub_kafka_stats(pub, i, &v->lanes[i]);
	return 0;
}

void obs_pubview_clear(struct obs_pubview *v)
{
	free(v->lanes);
	memset(v, 0, sizeof *v);
}

/* ---- Prometheus ------------------------------------------------------------------ */

/* Histogram bucket edges, µs (Prometheus wants seconds: printed as such). */
static const uint64_t buckets_us[] = { 500,    1000,   2500,    5000,    10000,   25000,
				       50000,  100000, 250000,  500000,  1000000, 2500000,
				       5000000, 10000000, 30000000 };

static void family(FILE *o, const char *name, const char *type, const char *help)
{
	fprintf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void lv(FILE *o, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', o), fputc(*s, o);
		else if (*s == '\n')
			fputs("\\n", o);
		else
			fputc(*s, o);
	}
}

static void input_labels(FILE *o, const struct obs_input *in)
{
	fputs("{input=\"", o);
	lv(o, in->name);
	fprintf(o, "\",kind=\"%s\",format=\"%s\"}", in->kind, in->format);
}

static void histogram(FILE *o, const char *name, const char *help, const struct hist *h)
{
	family(o, name, "histogram", help);
	for (size_t i = 0; i < sizeof buckets_us / sizeof buckets_us[0]; i++)
		fprintf(o, "%s_bucket{le=\"%g\"} %llu\n", name, (double)buckets_us[i] / 1e6,
			(unsigned long long)(h ? hist_count_le(h, buckets_us[i]) : 0));
	fprintf(o, "%s_bucket{le=\"+Inf\"} %llu\n", name,
		(unsigned long long)(h ? hist_count(h) : 0));
	fprintf(o, "%s_sum %.6f\n", name, h ? (double)hist_sum_us(h) / 1e6 : 0.0);
	fprintf(o, "%s_count %llu\n", name, (unsigned long long)(h ? hist_count(h) : 0));
}

#define U(x) ((unsigned long long)(x))

static void inputs(FILE *o, const struct obs_snapshot *s)
{
	family(o, "hl7bridge_messages_received_total", "counter",
	       "Messages received, by input (MLLP listener or file drop) and format.");
	for (int i = 0; i < s->nin; i++) {
		fputs("hl7bridge_messages_received_total", o);
		input_labels(o, &s->in[i]);
		fprintf(o, " %llu\n", U(s->in[i].st.frames));
	}
	struct {
		const char *name, *type, *help;
	} fams[] = {
		{ "hl7bridge_connections_open", "gauge", "Open connections, by input." },
		{ "hl7bridge_connections_accepted_total", "counter", "Connections accepted, by input." },
		{ "hl7bridge_connections_refused_total", "counter",
		  "Connections refused at max.connections, by input." },
		{ "hl7bridge_connections_closed_total", "counter", "Connections closed, by input." },
		{ "hl7bridge_tls_handshake_failures_total", "counter", "TLS handshakes that failed, by input." },
		{ "hl7bridge_frames_oversize_total", "counter",
		  "Frames larger than max.frame.size (connection closed), by input." },
		{ "hl7bridge_timeouts_total", "counter", "Idle, frame and handshake timeouts, by input." },
	};
	for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
		family(o, fams[f].name, fams[f].type, fams[f].help);
		for (int i = 0; i < s->nin; i++) {
			const struct lsn_stats *st = &s->in[i].st;
			uint64_t v[] = { (uint64_t)(st->open > 0 ? st->open : 0), st->accepted, st->refused,
					 st->closed, st->tls_failures, st->oversize, st->timeouts };
			fputs(fams[f].name, o);
			input_labels(o, &s->in[i]);
			fprintf(o, " %llu\n", U(v[f]));
		}
	}
	family(o, "hl7bridge_fhir_requests_total", "counter",
	       "FHIR requests by listener and answer: ok (2xx, committed), rejected (422/400 by the "
	       "mappings), bad_request, unauthorized, unavailable (503), failed (not committed), "
	       "duplicate and joined (resends), notification (handshake/heartbeat, not published).");
	for (int i = 0; i < s->nfhir; i++) {
		const struct fhttp_stats *st = &s->fhir[i].st;
		const char *names[] = { "ok", "rejected", "bad_request", "unauthorized", "unavailable",
					"failed", "duplicate", "joined", "notification" };
		uint64_t v[] = { st->ok, st->rejected, st->bad_request, st->unauthorized,
				 st->unavailable, st->failed, st->duplicates, st->joined,
				 st->notifications };
		_Static_assert(HB_ARRAY_LEN(names) == HB_ARRAY_LEN(v), "a name per counter");
		for (size_t k = 0; k < HB_ARRAY_LEN(v); k++) {
			fputs("hl7bridge_fhir_requests_total{input=\"", o);
			lv(o, s->fhir[i].name);
			fprintf(o, "\",outcome=\"%s\"} %llu\n", names[k], U(v[k]));
		}
	}
	family(o, "hl7bridge_fhir_resources_total", "counter",
	       "Resources in first-time FHIR requests by listener and fate (published, filtered, "
	       "rejected by a mapping, refused: unreadable or unmatched under reject), and events.");
	for (int i = 0; i < s->nfhir; i++) {
		const struct fhttp_stats *st = &s->fhir[i].st;
		const char *names[] = { "published", "filtered", "rejected", "refused", "deadlettered",
					"events" };
		uint64_t v[] = { st->published, st->filtered, st->mapping_rejected, st->refused,
				 st->deadlettered, st->events };
		_Static_assert(HB_ARRAY_LEN(names) == HB_ARRAY_LEN(v), "a name per counter");
		for (size_t k = 0; k < HB_ARRAY_LEN(v); k++) {
			fputs("hl7bridge_fhir_resources_total{input=\"", o);
			lv(o, s->fhir[i].name);
			fprintf(o, "\",outcome=\"%s\"} %llu\n", names[k], U(v[k]));
		}
	}
	family(o, "hl7bridge_files_total", "counter",
	       "Batch files by drop and outcome: done (published, moved to done/), error (unreadable, "
	       "moved to error/), duplicate (published before), resumed (continued after a restart).");
	for (int i = 0; i < s->ndrops; i++) {
		const struct drop_stats *st = &s->drops[i].st;
		const char *names[] = { "done", "error", "duplicate", "resumed" };
		uint64_t v[] = { st->files_done, st->files_error, st->files_duplicate, st->files_resumed };
		_Static_assert(HB_ARRAY_LEN(names) == HB_ARRAY_LEN(v), "a name per counter");
		for (size_t k = 0; k < HB_ARRAY_LEN(v); k++)
			fprintf(o, "hl7bridge_files_total{drop=\"%s\",outcome=\"%s\"} %llu\n",
				s->drops[i].name, names[k], U(v[k]));
	}
	family(o, "hl7bridge_drop_messages_total", "counter",
	       "Messages read from dropped files, by drop and outcome (published, rejected, filtered, "
	       "duplicate: published before by another path, not again).");
	for (int i = 0; i < s->ndrops; i++) {
		const struct drop_stats *st = &s->drops[i].st;
		uint64_t published = st->messages - st->rejected - st->filtered - st->duplicates;
		fprintf(o, "hl7bridge_drop_messages_total{drop=\"%s\",outcome=\"duplicate\"} %llu\n",
			s->drops[i].name, U(st->duplicates));
		fprintf(o, "hl7bridge_drop_messages_total{drop=\"%s\",outcome=\"published\"} %llu\n",
			s->drops[i].name, U(published));
		fprintf(o, "hl7bridge_drop_messages_total{drop=\"%s\",outcome=\"rejected\"} %llu\n",
			s->drops[i].name, U(st->rejected));
		fprintf(o, "hl7bridge_drop_messages_total{drop=\"%s\",outcome=\"filtered\"} %llu\n",
			s->drops[i].name, U(st->filtered));
	}
	family(o, "hl7bridge_drop_reports_lost_total", "counter",
	       "File reports (<name>.errors.json, .note.json) that could not be written; each is "
	       "logged instead.");
	for (int i = 0; i < s->ndrops; i++)
		fprintf(o, "hl7bridge_drop_reports_lost_total{drop=\"%s\"} %llu\n", s->drops[i].name,
			U(s->drops[i].st.reports_lost));
	family(o, "hl7bridge_drop_events_total", "counter", "Events published from dropped files.");
	for (int i = 0; i < s->ndrops; i++)
		fprintf(o, "hl7bridge_drop_events_total{drop=\"%s\"} %llu\n", s->drops[i].name,
			U(s->drops[i].st.events));
	family(o, "hl7bridge_drop_bytes_total", "counter", "Bytes of files published by each drop.");
	for (int i = 0; i < s->ndrops; i++)
		fprintf(o, "hl7bridge_drop_bytes_total{drop=\"%s\"} %llu\n", s->drops[i].name,
			U(s->drops[i].st.bytes));
}

static void pipeline(FILE *o, const struct obs_snapshot *s)
{
	const struct pipeline_stats *p = &s->pl;
	family(o, "hl7bridge_messages_published_total", "counter",
	       "Messages whose events were committed to Kafka (acknowledged AA/CA).");
	fprintf(o, "hl7bridge_messages_published_total %llu\n", U(p->accepted));
	family(o, "hl7bridge_messages_rejected_total", "counter",
	       "Messages rejected the first time they came (AE/AR), by stage and HL7 table 0357 "
	       "code; code 0 is any other.");
	for (int st = 0; st < PIPELINE_STAGES; st++)
		for (int c = 0; c < PIPELINE_CODES; c++) {
			/* Always print the common ones, so rates start at zero. */
			int common = (st == PIPELINE_STAGE_PARSE && c == pipeline_code_index(100)) ||
				     (st == PIPELINE_STAGE_MAP && (c == pipeline_code_index(101) ||
								  c == pipeline_code_index(207)));
			if (!p->rejected_by[st][c] && !common)
				continue;
			fprintf(o, "hl7bridge_messages_rejected_total{stage=\"%s\",code=\"%d\"} %llu\n",
				pipeline_stage_name((enum pipeline_stage)st), pipeline_code_of_index(c),
				U(p->rejected_by[st][c]));
		}
	family(o, "hl7bridge_messages_filtered_total", "counter",
	       "Messages no mapping matched, acknowledged and not published (unmatched = filter or "
	       "deadletter).");
	fprintf(o, "hl7bridge_messages_filtered_total %llu\n", U(p->filtered));
	family(o, "hl7bridge_messages_duplicate_total", "counter",
	       "Resends answered without publishing: from the ledger (already committed) or joined "
	       "to the first copy still in flight.");
	fprintf(o, "hl7bridge_messages_duplicate_total{answer=\"ledger\"} %llu\n", U(p->duplicates));
	fprintf(o, "hl7bridge_messages_duplicate_total{answer=\"joined\"} %llu\n", U(p->joined));
	family(o, "hl7bridge_messages_failed_total", "counter",
	       "Messages that could not be committed and got no acknowledgement (the sender resends).");
	fprintf(o, "hl7bridge_messages_failed_total %llu\n", U(p->failed));
	family(o, "hl7bridge_messages_deadlettered_total", "counter",
	       "Messages written to the dead-letter topic.");
	fprintf(o, "hl7bridge_messages_deadlettered_total %llu\n", U(p->deadlettered));
	family(o, "hl7bridge_events_published_total", "counter", "Events committed, by topic.");
	for (int t = 0; t < p->ntopics; t++) {
		fputs("hl7bridge_events_published_total{topic=\"", o);
		lv(o, p->topics[t].topic);
		fprintf(o, "\"} %llu\n", U(p->topics[t].events));
	}
	if (p->events_other_topics)
		fprintf(o, "hl7bridge_events_published_total{topic=\"other\"} %llu\n",
			U(p->events_other_topics));
	family(o, "hl7bridge_ledger_keys", "gauge",
	       "Keys in the in-memory exactly-once ledger (messages in the dedup window, live files).");
	fprintf(o, "hl7bridge_ledger_keys %zu\n", s->ledger_keys);
	if (!s->shared)
		return;
	family(o, "hl7bridge_ledger_barriers_total", "counter",
	       "Barriers passed: the ledger tail read the state topic up to its end (one ListOffsets) "
	       "before new messages, files and FHIR requests were decided.");
	fprintf(o, "hl7bridge_ledger_barriers_total %llu\n", U(s->tail.barriers));
	family(o, "hl7bridge_ledger_barrier_waits_total", "counter",
	       "Messages, files and FHIR requests decided after waiting for a barrier.");
	fprintf(o, "hl7bridge_ledger_barrier_waits_total %llu\n", U(s->tail.waiters));
	family(o, "hl7bridge_ledger_barrier_wait_seconds", "gauge",
	       "A message's, file's or FHIR request's wait for its barrier since start, by quantile.");
	fprintf(o, "hl7bridge_ledger_barrier_wait_seconds{quantile=\"0.5\"} %.6f\n",
		(double)s->tail.barrier_p50_us / 1e6);
	fprintf(o, "hl7bridge_ledger_barrier_wait_seconds{quantile=\"0.99\"} %.6f\n",
		(double)s->tail.barrier_p99_us / 1e6);
	fprintf(o, "hl7bridge_ledger_barrier_wait_seconds{quantile=\"1\"} %.6f\n",
		(double)s->tail.barrier_max_us / 1e6);
	family(o, "hl7bridge_ledger_parked", "gauge",
	       "Messages, files and FHIR requests waiting for a barrier now (a long wait: a "
	       "transaction left open, e.g. by an instance that died).");
	fprintf(o, "hl7bridge_ledger_parked %llu\n", U(s->tail.parked));
	family(o, "hl7bridge_ledger_tail_records_total", "counter",
	       "Ledger records of other instances applied from the ledger tail.");
	fprintf(o, "hl7bridge_ledger_tail_records_total %llu\n", U(s->tail.records));
}

static void publisher(FILE *o, const struct obs_pubview *v)
{
	family(o, "hl7bridge_transactions_total", "counter",
	       "Kafka transactions, by result (aborted ones are replayed).");
	fprintf(o, "hl7bridge_transactions_total{result=\"committed\"} %llu\n", U(v->st.txn_committed));
	fprintf(o, "hl7bridge_transactions_total{result=\"aborted\"} %llu\n", U(v->st.txn_aborted));
	family(o, "hl7bridge_records_produced_total", "counter",
	       "Kafka records produced (events, dead letters, raw copies; ledger records excluded).");
	fprintf(o, "hl7bridge_records_produced_total %llu\n", U(v->st.records_produced));
	family(o, "hl7bridge_inflight_messages", "gauge",
	       "Messages submitted to the publisher and not yet committed and acknowledged.");
	fprintf(o, "hl7bridge_inflight_messages %d\n", v->inflight);
	family(o, "hl7bridge_inflight_limit", "gauge", "[publisher] max.inflight.");
	fprintf(o, "hl7bridge_inflight_limit %d\n", v->max_inflight);
	histogram(o, "hl7bridge_commit_duration_seconds",
		  "Kafka transaction duration, begin to commit returned.", v->commit);
	histogram(o, "hl7bridge_ack_latency_seconds",
		  "From a message's hand-over to the publisher until its commit is known and its "
		  "acknowledgement released.", v->ack);

	family(o, "hl7bridge_kafka_broker_rtt_seconds", "gauge",
	       "librdkafka: broker round-trip time over its last statistics window, by lane and "
	       "broker (quantile avg or 0.99).");
	for (int l = 0; l < v->nlanes; l++)
		for (int b = 0; v->lanes[l].valid && b < v->lanes[l].nbrokers; b++) {
			const struct kstats_broker *kb = &v->lanes[l].brokers[b];
			for (int q = 0; q < 2; q++) {
				fprintf(o, "hl7bridge_kafka_broker_rtt_seconds{lane=\"%d\",broker=\"", l);
				lv(o, kb->name);
				fprintf(o, "\",quantile=\"%s\"} %.6f\n", q ? "0.99" : "avg",
					(double)(q ? kb->rtt_p99_us : kb->rtt_avg_us) / 1e6);
			}
		}
	family(o, "hl7bridge_kafka_broker_up", "gauge",
	       "librdkafka: 1 when the lane's connection to the broker is UP.");
	for (int l = 0; l < v->nlanes; l++)
		for (int b = 0; v->lanes[l].valid && b < v->lanes[l].nbrokers; b++) {
			fprintf(o, "hl7bridge_kafka_broker_up{lane=\"%d\",broker=\"", l);
			lv(o, v->lanes[l].brokers[b].name);
			fprintf(o, "\"} %d\n", strcmp(v->lanes[l].brokers[b].state, "UP") == 0);
		}
	family(o, "hl7bridge_kafka_txn_state", "gauge",
	       "librdkafka: the lane producer's transaction state (1 for the current one).");
	for (int l = 0; l < v->nlanes; l++)
		if (v->lanes[l].valid) {
			fprintf(o, "hl7bridge_kafka_txn_state{lane=\"%d\",state=\"", l);
			lv(o, v->lanes[l].txn_state);
			fputs("\"} 1\n", o);
		}
	family(o, "hl7bridge_kafka_queue_messages", "gauge",
	       "librdkafka: messages in the lane producer's queue, not yet acknowledged by brokers.");
	for (int l = 0; l < v->nlanes; l++)
		if (v->lanes[l].valid)
			fprintf(o, "hl7bridge_kafka_queue_messages{lane=\"%d\"} %lld\n", l,
				(long long)v->lanes[l].msg_cnt);
	family(o, "hl7bridge_kafka_queue_bytes", "gauge", "librdkafka: bytes of those messages.");
	for (int l = 0; l < v->nlanes; l++)
		if (v->lanes[l].valid)
			fprintf(o, "hl7bridge_kafka_queue_bytes{lane=\"%d\"} %lld\n", l,
				(long long)v->lanes[l].msg_size);
}

void metrics_prometheus(FILE *o, const struct obs_snapshot *s, const struct obs_pubview *v)
{
	family(o, "hl7bridge_build_info", "gauge", "Version and instance name.");
	fputs("hl7bridge_build_info{version=\"", o);
	lv(o, s->version);
	fputs("\",instance=\"", o);
	lv(o, s->instance);
	fputs("\"} 1\n", o);
	family(o, "hl7bridge_start_time_seconds", "gauge", "Start of the process, Unix time.");
	fprintf(o, "hl7bridge_start_time_seconds %.3f\n", (double)s->started_ms / 1000.0);
	family(o, "hl7bridge_ready", "gauge",
	       "1 when producers are initialised, the ledger rebuilt and listeners open.");
	fprintf(o, "hl7bridge_ready %d\n", obs_ready(s));
	family(o, "hl7bridge_publisher_fatal", "gauge",
	       "1 after a fatal publisher error (no more acknowledgements; the process exits).");
	fprintf(o, "hl7bridge_publisher_fatal %d\n", s->fatal);
	family(o, "hl7bridge_publisher_lanes_failing", "gauge",
	       "Publisher lanes whose batch has failed to commit for 10 s or more (retrying; their "
	       "senders get no ACK meanwhile).");
	fprintf(o, "hl7bridge_publisher_lanes_failing %d\n", s->lanes_failing);
	inputs(o, s);
	pipeline(o, s);
	publisher(o, v);
}

/* ---- the status page's JSON ------------------------------------------------- */

static json_t *hist_json(const struct hist *h)
{
	if (!h)
		return json_null();
	return json_pack("{s:I, s:f, s:f, s:f, s:f}", "count", (json_int_t)hist_count(h), "p50_ms",
			 (double)hist_quantile(h, 0.5) / 1000.0, "p99_ms",
			 (double)hist_quantile(h, 0.99) / 1000.0, "max_ms",
			 (double)hist_max_us(h) / 1000.0, "mean_ms",
			 hist_count(h) ? (double)hist_sum_us(h) / (double)hist_count(h) / 1000.0 : 0.0);
}

static json_t *inputs_json(const struct obs_snapshot *s)
{
	json_t *a = json_array();
	for (int i = 0; i < s->nin; i++) {
		const struct obs_input *in = &s->in[i];
		json_array_append_new(
			a, json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
				     "name", in->name, "kind", in->kind, "format", in->format, "bind",
				     in->bind, "tls", in->tls, "open", in->st.open, "received",
				     (json_int_t)in->st.frames, "accepted", (json_int_t)in->st.accepted,
				     "refused", (json_int_t)in->st.refused, "closed",
				     (json_int_t)in->st.closed, "tls_failures",
				     (json_int_t)in->st.tls_failures, "oversize",
				     (json_int_t)in->st.oversize, "timeouts", (json_int_t)in->st.timeouts));
	}
	return a;
}

static json_t *drops_json(const struct obs_snapshot *s)
{
	json_t *a = json_array();
	for (int i = 0; i < s->ndrops; i++) {
		const struct drop_stats *st = &s->drops[i].st;
		json_array_append_new(
			a, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name",
				     s->drops[i].name, "path", s->drops[i].path, "files_done",
				     (json_int_t)st->files_done, "files_error", (json_int_t)st->files_error,
				     "files_duplicate", (json_int_t)st->files_duplicate, "messages",
				     (json_int_t)st->messages, "events", (json_int_t)st->events, "rejected",
				     (json_int_t)st->rejected, "deadlettered", (json_int_t)st->deadlettered,
				     "bytes", (json_int_t)st->bytes));
	}
	return a;
}

static json_t *rejections_json(const struct obs_snapshot *s)
{
	json_t *by = json_array(), *recent = json_array();
	for (int st = 0; st < PIPELINE_STAGES; st++)
		for (int c = 0; c < PIPELINE_CODES; c++)
			if (s->pl.rejected_by[st][c])
				json_array_append_new(
					by, json_pack("{s:s, s:i, s:I}", "stage",
						      pipeline_stage_name((enum pipeline_stage)st), "code",
						      pipeline_code_of_index(c), "count",
						      (json_int_t)s->pl.rejected_by[st][c]));
	for (size_t i = 0; i < s->nrecent; i++) {
		const struct pipeline_rejection *r = &s->recent[i];
		json_array_append_new(
			recent, json_pack("{s:I, s:s, s:i, s:s, s:s, s:s, s:s}", "ts_ms",
					  (json_int_t)r->ts_ms, "stage", pipeline_stage_name(r->stage),
					  "code", r->code, "ack", r->ack, "reason", r->reason, "origin",
					  r->origin, "msh10", r->msh10));
	}
	return json_pack("{s:o, s:o}", "by", by, "recent", recent);
}

static json_t *lanes_json(const struct obs_pubview *v)
{
	json_t *a = json_array();
	for (int l = 0; l < v->nlanes; l++) {
		const struct kstats *k = &v->lanes[l];
		json_t *brokers = json_array();
		for (int b = 0; k->valid && b < k->nbrokers; b++)
			json_array_append_new(brokers,
					      json_pack("{s:s, s:s, s:f, s:f}", "name", k->brokers[b].name,
							"state", k->brokers[b].state, "rtt_avg_ms",
							(double)k->brokers[b].rtt_avg_us / 1000.0,
							"rtt_p99_ms",
							(double)k->brokers[b].rtt_p99_us / 1000.0));
		json_array_append_new(a, json_pack("{s:i, s:b, s:s, s:I, s:I, s:o}", "lane", l, "stats",
						   k->valid, "txn_state", k->valid ? k->txn_state : "",
						   "queue_messages", (json_int_t)k->msg_cnt,
						   "queue_bytes", (json_int_t)k->msg_size, "brokers",
						   brokers));
	}
	return a;
}

json_t *metrics_status_json(const struct obs_snapshot *s, const struct obs_pubview *v)
{
	const struct pipeline_stats *p = &s->pl;
	json_t *topics = json_object(), *out;
	for (int t = 0; t < p->ntopics; t++)
		json_object_set_new(topics, p->topics[t].topic, json_integer((json_int_t)p->topics[t].events));
	if (p->events_other_topics)
		json_object_set_new(topics, "other", json_integer((json_int_t)p->events_other_topics));
	out = json_pack(
		"{s:s, s:s, s:I, s:I, s:f,"
		" s:{s:b, s:b, s:b, s:b, s:b, s:b},"
		" s:o, s:o,"
		" s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o},"
		" s:o,"
		" s:{s:I, s:I, s:I, s:i, s:i, s:o, s:o, s:o},"
		" s:I}",
		"instance", s->instance, "version", s->version, "now_ms", (json_int_t)s->taken_ms,
		"started_ms", (json_int_t)s->started_ms, "uptime_s",
		s->started_ms ? (double)(s->taken_ms - s->started_ms) / 1000.0 : 0.0,
		"ready", "ready", obs_ready(s), "producers", s->producers, "ledger", s->ledger,
		"listeners", s->listeners, "draining", s->draining, "fatal", s->fatal,
		"inputs", inputs_json(s), "drops", drops_json(s),
		"messages", "received", (json_int_t)p->received, "published", (json_int_t)p->accepted,
		"rejected", (json_int_t)(p->rejected_parse + p->rejected_map + p->rejected_unmatched +
					 p->rejected_publish),
		"filtered", (json_int_t)p->filtered, "duplicates", (json_int_t)(p->duplicates + p->joined),
		"failed", (json_int_t)p->failed, "deadlettered", (json_int_t)p->deadlettered, "events",
		(json_int_t)p->events, "events_by_topic", topics,
		"rejections", rejections_json(s),
		"publisher", "txn_committed", (json_int_t)v->st.txn_committed, "txn_aborted",
		(json_int_t)v->st.txn_aborted, "records", (json_int_t)v->st.records_produced, "inflight",
		v->inflight, "max_inflight", v->max_inflight, "commit", hist_json(v->commit), "ack",
		hist_json(v->ack), "lanes", lanes_json(v),
		"ledger_keys", (json_int_t)s->ledger_keys);
	/* why it is not ready although everything is up (a drop folder) */
	if (out && s->problem[0])
		json_object_set_new(json_object_get(out, "ready"), "problem", json_string(s->problem));
	return out;
}

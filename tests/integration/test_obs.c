/*
 * /metrics, /readyz, /api/status and the playground of the real daemon
 * against the real broker. A known mix of messages goes in over MLLP —
 * published, resent, rejected by a mapping, unreadable, unmatched — and the
 * counters must add up (received = published + rejected + filtered +
 * duplicates), agree with what a read_committed consumer finds in Kafka,
 * and name the rejections (code, reason, origin, MSH-10) without patient
 * data. A playground run publishes nothing, and keeps working while SIGHUP
 * reloads the mappings. After a restart with the
 * playground off, its routes answer 404 and a resend counts as a duplicate
 * from the rebuilt ledger.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"

static char conf_path[256], log_path[256], state[128], dlq[128], inst[128];

static void write_conf(int playground)
{
	const char *src = getenv("HB_SRCDIR");
	FILE *f = fopen(conf_path, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"[bridge]\ninstance = %s\nmappings = %s/mappings\nschemas = %s/conf/schemas\n"
		"[kafka]\nbootstrap.servers = %s\nstatistics.interval.ms = 500\n"
		"[topics]\npartitions = 3\ndeadletter = %s\nstate = %s\n"
		"[publisher]\nlanes = 2\nlinger = 2ms\n"
		"[http]\nbind = 127.0.0.1:0\nplayground = %s\n"
		"[listener plain]\nbind = 127.0.0.1:0\n",
		inst, src, src, itest_bootstrap(), dlq, state, playground ? "on" : "off");
	fclose(f);
}

/* The value of one sample (exact name and labels), or -1 when absent. */
static double metric(const char *text, const char *sample)
{
	size_t n = strlen(sample);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, sample, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

/* The sum over every sample of a family (any labels). */
static double family_sum(const char *text, const char *name)
{
	size_t n = strlen(name);
	double sum = 0;
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, name, n) == 0 && (p[n] == '{' || p[n] == ' ')) {
			const char *v = strchr(p + n, ' ');
			if (p[n] == '{')
				v = strstr(p + n, "} ") + 1;
			sum += strtod(v + 1, NULL);
		}
	return sum;
}

static char *get(int port, const char *path, long want)
{
	char url[256], *body;
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
	long st = itest_http("GET", url, NULL, &body);
	cr_assert_eq(st, want, "GET %s: %ld, expected %ld: %s", path, st, want, body);
	return body;
}

/* Scrape until the loop's snapshot shows nothing in flight and `received`. */
static char *settled(int port, double received)
{
	for (int i = 0; i < 100; i++) {
		char *m = get(port, "/metrics", 200);
		if (metric(m, "hl7bridge_inflight_messages") == 0 &&
		    family_sum(m, "hl7bridge_messages_received_total") == received &&
		    metric(m, "hl7bridge_messages_published_total") +
				    family_sum(m, "hl7bridge_messages_rejected_total") +
				    metric(m, "hl7bridge_messages_filtered_total") +
				    family_sum(m, "hl7bridge_messages_duplicate_total") ==
			    received)
			return m;
		free(m);
		usleep(100 * 1000);
	}
	return get(port, "/metrics", 200);
}

static int count_with(const char *topic, const char *needle)
{
	char **vals;
	int n = itest_consume_all(topic, "read_committed", -1, 3000, &vals), c = 0;
	for (int i = 0; i < n; i++)
		c += strstr(vals[i], needle) != NULL;
	itest_free_values(vals, n);
	return c;
}

static void send_one(int fd, const char *msg, const char *want)
{
	char ack[4096], code[3];
	cr_assert_gt(itest_mllp_exchange(fd, msg, strlen(msg), ack, sizeof ack), 0, "no ACK (see %s)",
		     log_path);
	itest_msa1(ack, code);
	cr_assert(strstr(want, code) != NULL, "MSA-1 %s, expected one of %s: %s", code, want, ack);
}

static char *replace(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	cr_assert_not_null(at, "'%s' not in the sample", from);
	size_t pre = (size_t)(at - s), fl = strlen(from), tl = strlen(to);
	char *out = malloc(strlen(s) - fl + tl + 1);
	memcpy(out, s, pre);
	memcpy(out + pre, to, tl);
	strcpy(out + pre + tl, at + fl);
	return out;
}

static void no_patient_data(const char *what, const char *text)
{
	static const char *phi[] = { "Testpatient", "19800102", "Atorvastatin", "Newcomer", "19990909",
				     "Example St", "5550100" };
	for (size_t i = 0; i < sizeof phi / sizeof phi[0]; i++)
		cr_assert(strstr(text, phi[i]) == NULL, "%s shows patient data (%s)", what, phi[i]);
}

Test(obs, counters_add_up_against_kafka, .timeout = 300)
{
	char prefix[64], id[96], *m, *status;
	int port, hport, fd;
	size_t len;
	pid_t pid;

	itest_unique_name(inst, sizeof inst, "itest-obs");
	itest_unique_name(state, sizeof state, "itest.ostate");
	itest_unique_name(dlq, sizeof dlq, "itest.odlq");
	itest_unique_name(prefix, sizeof prefix, "OBS");
	snprintf(conf_path, sizeof conf_path, "/tmp/%s.conf", inst);
	snprintf(log_path, sizeof log_path, "/tmp/%s.log", inst);
	write_conf(1);
	char *rde = itest_sample("samples/hl7v2/rde_o11.hl7", &len);
	char *adt = itest_sample("samples/hl7v2/adt_a01.hl7", &len);

	pid = itest_daemon_start_http(conf_path, log_path, &port, &hport);
	free(get(hport, "/healthz", 200));
	free(get(hport, "/readyz", 200));
	fd = itest_mllp_connect(port);
	cr_assert_geq(fd, 0);

	/* 5 prescriptions (2 events each) and 1 admission: published */
	char *first = NULL;
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof id, "%s-P%d", prefix, i);
		char *msg = itest_set_msh10(rde, id);
		send_one(fd, msg, "AA CA");
		if (i == 0)
			first = msg;
		else
			free(msg);
	}
	snprintf(id, sizeof id, "%s-A", prefix);
	char *adm = itest_set_msh10(adt, id);
	send_one(fd, adm, "AA CA");
	/* 2 resends: answered from the ledger */
	send_one(fd, first, "AA CA");
	send_one(fd, first, "AA CA");
	/* 2 rejected by the mapping (no patient id): AE, code 101 */
	char rej_id[2][96];
	for (int i = 0; i < 2; i++) {
		snprintf(rej_id[i], sizeof rej_id[i], "%s-R%d", prefix, i);
		char *msg = itest_set_msh10(rde, rej_id[i]);
		char *bad = replace(msg, "PAT123^^^GENHOSP&1.2.3.4&ISO^MR~900-00-0001^^^SSA^SS", "");
		send_one(fd, bad, "AE CE");
		if (i == 1) /* a resend of a rejected message: a duplicate, not a second rejection */
			send_one(fd, bad, "AE CE");
		free(msg);
		free(bad);
	}
	/* 1 unreadable: AR, code 100 */
	send_one(fd, "this is not HL7", "AR CR");
	/* 2 that no mapping matches: filtered, AA */
	for (int i = 0; i < 2; i++) {
		snprintf(id, sizeof id, "%s-F%d", prefix, i);
		char *msg = itest_set_msh10(adt, id);
		char *other = replace(msg, "|ADT^A01", "|ADT^A02");
		send_one(fd, other, "AA CA");
		free(msg);
		free(other);
	}

	m = settled(hport, 14);
	double received = family_sum(m, "hl7bridge_messages_received_total");
	double published = metric(m, "hl7bridge_messages_published_total");
	double rejected = family_sum(m, "hl7bridge_messages_rejected_total");
	double filtered = metric(m, "hl7bridge_messages_filtered_total");
	double dups = family_sum(m, "hl7bridge_messages_duplicate_total");
	cr_log_info("received %.0f = published %.0f + rejected %.0f + filtered %.0f + duplicates %.0f",
		    received, published, rejected, filtered, dups);
	cr_assert_eq(received, 14);
	cr_assert_eq(received, published + rejected + filtered + dups, "counters do not add up:\n%s", m);
	cr_assert_eq(published, 6);
	cr_assert_eq(rejected, 3);
	cr_assert_eq(filtered, 2);
	cr_assert_eq(dups, 3);
	cr_assert_eq(metric(m, "hl7bridge_messages_rejected_total{stage=\"map\",code=\"101\"}"), 2);
	cr_assert_eq(metric(m, "hl7bridge_messages_rejected_total{stage=\"parse\",code=\"100\"}"), 1);
	cr_assert_eq(metric(m, "hl7bridge_messages_failed_total"), 0);
	cr_assert_eq(metric(m, "hl7bridge_messages_deadlettered_total"), 3);
	cr_assert_eq(metric(m, "hl7bridge_connections_open{input=\"plain\",kind=\"mllp\",format=\"hl7v2\"}"), 1);
	cr_assert_eq(metric(m, "hl7bridge_messages_received_total{input=\"plain\",kind=\"mllp\",format=\"hl7v2\"}"), 14);

	/* The metrics agree with what a read_committed consumer sees. */
	double created = metric(m, "hl7bridge_events_published_total{topic=\"healthcare.prescription.created\"}");
	double cancelled = metric(m, "hl7bridge_events_published_total{topic=\"healthcare.prescription.cancelled\"}");
	cr_assert_eq(created, 5);
	cr_assert_eq(cancelled, 5);
	cr_assert_eq(count_with("healthcare.prescription.created", prefix), (int)created);
	cr_assert_eq(count_with("healthcare.prescription.cancelled", prefix), (int)cancelled);
	cr_assert_eq(count_with(dlq, prefix) + count_with(dlq, "this is not HL7"), 3, "dead letters");
	cr_assert_eq(family_sum(m, "hl7bridge_events_published_total"), 11, "events by topic:\n%s", m);

	/* Transactions and their histograms */
	double txns = metric(m, "hl7bridge_transactions_total{result=\"committed\"}");
	cr_assert_geq(txns, 1);
	cr_assert_eq(metric(m, "hl7bridge_commit_duration_seconds_count"), txns);
	cr_assert_eq(metric(m, "hl7bridge_commit_duration_seconds_bucket{le=\"+Inf\"}"), txns);
	cr_assert_eq(metric(m, "hl7bridge_ack_latency_seconds_count"), 9, "6 published + 3 dead letters");
	cr_assert_geq(metric(m, "hl7bridge_ledger_keys"), 9);
	free(m);

	/* librdkafka's statistics arrive within their interval */
	for (int i = 0; i < 50; i++) {
		m = get(hport, "/metrics", 200);
		if (strstr(m, "hl7bridge_kafka_txn_state{lane=\"0\"") &&
		    strstr(m, "hl7bridge_kafka_txn_state{lane=\"1\"") &&
		    strstr(m, "hl7bridge_kafka_broker_rtt_seconds{"))
			break;
		free(m);
		m = NULL;
		usleep(100 * 1000);
	}
	cr_assert_not_null(m, "no librdkafka statistics in /metrics");
	cr_assert(strstr(m, "hl7bridge_kafka_queue_messages{lane=\"0\"}") != NULL);
	no_patient_data("/metrics", m);
	free(m);

	/* The status page's data names the rejections, not the patients. */
	status = get(hport, "/api/status", 200);
	for (int i = 0; i < 2; i++)
		cr_assert(strstr(status, rej_id[i]) != NULL, "rejection %s not listed", rej_id[i]);
	cr_assert(strstr(status, "\"code\":101") != NULL);
	cr_assert(strstr(status, "data.patientId") != NULL, "the reason is not shown");
	cr_assert(strstr(status, "mllp:plain:127.0.0.1:") != NULL, "the origin is not shown");
	cr_assert(strstr(status, "\"stage\":\"parse\"") != NULL);
	no_patient_data("/api/status", status);
	free(status);

	/* The playground maps a sample and publishes nothing. */
	char url[256], *out;
	snprintf(id, sizeof id, "%s-PG", prefix);
	char *pg = itest_set_msh10(rde, id);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api/playground", hport);
	cr_assert_eq(itest_http("POST", url, pg, &out), 200, "%s", out);
	cr_assert(strstr(out, "\"result\":\"events\"") != NULL, "%s", out);
	cr_assert(strstr(out, "healthcare.prescription.created") != NULL, "%s", out);
	free(out);
	m = settled(hport, 14);
	cr_assert_eq(family_sum(m, "hl7bridge_messages_received_total"), 14, "the playground counted as input");
	cr_assert_eq(metric(m, "hl7bridge_records_produced_total"), 14,
		     "records: 11 events + 3 dead letters");
	free(m);
	cr_assert_eq(count_with("healthcare.prescription.created", id), 0, "the playground published");

	/* SIGHUP swaps the mapping set under the playground: it keeps working. */
	for (int i = 0; i < 3; i++) {
		kill(pid, SIGHUP);
		cr_assert_eq(itest_http("POST", url, pg, &out), 200, "%s", out);
		cr_assert(strstr(out, "\"result\":\"events\"") != NULL, "after SIGHUP: %s", out);
		free(out);
	}
	close(fd);
	cr_assert_eq(itest_daemon_stop(pid), 0, "SIGTERM did not exit 0 (see %s)", log_path);

	/* Restart with the playground off: 404; the ledger answers a resend. */
	write_conf(0);
	pid = itest_daemon_start_http(conf_path, log_path, &port, &hport);
	free(get(hport, "/playground", 404));
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api/playground", hport);
	cr_assert_eq(itest_http("POST", url, pg, &out), 404);
	free(out);
	fd = itest_mllp_connect(port);
	send_one(fd, first, "AA CA");
	m = settled(hport, 1);
	cr_assert_eq(metric(m, "hl7bridge_messages_duplicate_total{answer=\"ledger\"}"), 1, "%s", m);
	cr_assert_eq(metric(m, "hl7bridge_messages_published_total"), 0);
	free(m);
	close(fd);
	cr_assert_eq(itest_daemon_stop(pid), 0);

	/* /readyz before the process is gone said ready; the log has no patient data either */
	FILE *lf = fopen(log_path, "r");
	char *logtext = calloc(1, 1 << 22);
	size_t ll = fread(logtext, 1, (1 << 22) - 1, lf);
	fclose(lf);
	logtext[ll] = '\0';
	no_patient_data("the log", logtext);
	cr_assert(strstr(logtext, "reloaded: ") != NULL, "SIGHUP did not reload the mappings");
	free(logtext);
	free(pg);
	free(first);
	free(adm);
	free(rde);
	free(adt);
	unlink(conf_path);
}

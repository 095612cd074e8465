/*
 * Hostile input and operator error against a running daemon and the real
 * broker (issue 14). Each test is named after what must stay fixed.
 *
 * hostile/mllp_*: records larger than Kafka takes must never wedge a lane
 * (answered AE with ERR-3 207, dead-lettered cut to fit, the next message
 * committed), a lane that cannot commit makes /readyz 503 and SIGTERM still
 * ends in bounded time.
 *
 * Topics with a small max.message.bytes keep the big-record cases cheap.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "iclient.h"
#include "itest.h"

#define SMALL_TOPIC 65536

/* More [listener plain] lines for the next hw_start. */
static const char *g_listener_extra = "";

struct hw {
	char inst[128], prefix[160], dlq[200], state[200], conf[512], log[512];
	char created[200]; /* <prefix>patient.created */
	pid_t pid;
	int port, http;
};

/* Create a topic with one topic config set (key NULL: none). */
static void topic_with(const char *name, const char *key, const char *value)
{
	char err[512];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, itest_conf(NULL), err, sizeof err);
	cr_assert_not_null(rk, "%s", err);
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, 1, 1, err, sizeof err);
	cr_assert_not_null(nt, "%s", err);
	if (key)
		rd_kafka_NewTopic_set_config(nt, key, value);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
	cr_assert_not_null(ev, "CreateTopics timed out");
	size_t n;
	const rd_kafka_topic_result_t **tr =
		rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
	cr_assert(n == 1 && !rd_kafka_topic_result_error(tr[0]), "create %s: %s", name,
		  n ? rd_kafka_topic_result_error_string(tr[0]) : "no result");
	rd_kafka_event_destroy(ev);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	/* wait for its leader */
	cr_assert_eq(itest_create_topic(name, 1, err, sizeof err), 0, "%s", err);
}

/* Set one config of a topic created by topic_with (AlterConfigs replaces
 * the topic's whole set: only one key is ever set on these topics). */
static void topic_alter(const char *name, const char *key, const char *value)
{
	char err[512];
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, itest_conf(NULL), err, sizeof err);
	cr_assert_not_null(rk, "%s", err);
	rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, name);
	rd_kafka_ConfigResource_set_config(cr, key, value);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_AlterConfigs(rk, &cr, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
	cr_assert_not_null(ev, "AlterConfigs timed out");
	cr_assert(!rd_kafka_event_error(ev), "AlterConfigs: %s", rd_kafka_event_error_string(ev));
	size_t n;
	const rd_kafka_ConfigResource_t **res =
		rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &n);
	cr_assert(n == 1 && !rd_kafka_ConfigResource_error(res[0]), "AlterConfigs %s: %s", name,
		  n ? rd_kafka_ConfigResource_error_string(res[0]) : "no result");
	rd_kafka_event_destroy(ev);
	rd_kafka_ConfigResource_destroy(cr);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	usleep(500 * 1000); /* the broker applies it asynchronously */
}

static void hw_names(struct hw *w, const char *tag)
{
	memset(w, 0, sizeof *w);
	itest_unique_name(w->inst, sizeof w->inst, tag);
	snprintf(w->prefix, sizeof w->prefix, "%s.", w->inst);
	snprintf(w->dlq, sizeof w->dlq, "%sdeadletter", w->prefix);
	snprintf(w->state, sizeof w->state, "%sstate", w->prefix);
	snprintf(w->created, sizeof w->created, "%spatient.created", w->prefix);
	snprintf(w->conf, sizeof w->conf, "/tmp/%s.conf", w->inst);
	snprintf(w->log, sizeof w->log, "/tmp/%s.log", w->inst);
}

/* Start the daemon: one plain listener, HTTP, its own topics. kafka: more
 * [kafka] lines; linger: the publisher's. */
static void hw_start(struct hw *w, const char *kafka, const char *linger)
{
	const char *src = getenv("HB_SRCDIR");
	FILE *f = fopen(w->conf, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"[bridge]\ninstance = %s\nmappings = %s/mappings\nschemas = %s/conf/schemas\n"
		"log.level = info\nshutdown.timeout = 5s\n"
		"[kafka]\nbootstrap.servers = %s\n%s"
		"[topics]\nprefix = %s\nevents = patient.created, patient.updated\npartitions = 1\n"
		"deadletter = %s\nstate = %s\nstate.partitions = 1\n"
		"[publisher]\nlanes = 1\nlinger = %s\n"
		"[http]\nbind = 127.0.0.1:0\n"
		"[listener plain]\nbind = 127.0.0.1:0\n%s",
		w->inst, src, src, itest_bootstrap(), kafka ? kafka : "", w->prefix, w->dlq, w->state,
		linger ? linger : "2ms", g_listener_extra);
	fclose(f);
	w->pid = itest_daemon_start_http(w->conf, w->log, &w->port, &w->http);
}

static void hw_stop(struct hw *w)
{
	cr_assert_eq(itest_daemon_stop(w->pid), 0, "SIGTERM did not exit 0 (see %s)", w->log);
	unlink(w->conf);
	unlink(w->log); /* kept when a test fails */
}

/* An ADT (A01 → patient.created, A08 → patient.updated) whose PID-3 repeats
 * reps times: every repetition becomes an identifier of the event. */
static char *adt_reps(const char *id, const char *event, int reps, size_t *len)
{
	size_t cap = 512 + (size_t)reps * 32;
	char *m = malloc(cap);
	size_t n = (size_t)snprintf(m, cap,
				    "MSH|^~\\&|ITEST|ITESTHOSP|HL7BRIDGE|CMM|20261127070000||ADT^%s^ADT_A01|"
				    "%s|P|2.5.1\rEVN|%s|20261127070000\rPID|1||%s^^^ITESTHOSP^MR",
				    event, id, event, id);
	for (int i = 1; i < reps; i++)
		n += (size_t)snprintf(m + n, cap - n, "~X%07d^^^ITESTHOSP^PI", i);
	n += (size_t)snprintf(m + n, cap - n, "||Example^Sam||19800101|F\rPV1|1|I|WARD1^101^A\r");
	*len = n;
	return m;
}

/* Send msg on c, expect MSA-1 want (AA or AE...) with MSA-2 = id. */
static void expect_ack(struct hw *w, struct icl *c, const char *msg, const char *id,
		       const char *want, char *ack, size_t cap)
{
	char code[3];
	int r = icl_exchange(c, msg, ack, cap, 60000);
	cr_assert_gt(r, 0, "%s: no ACK (%d; see %s)", id, r, w->log);
	icl_msa1(ack, code);
	cr_assert_str_eq(code, want, "%s: MSA-1 %s, expected %s: %s", id, code, want, ack);
	char msa2[200];
	snprintf(msa2, sizeof msa2, "MSA|%s|%s", want, id);
	cr_assert(strstr(ack, msa2) != NULL, "%s: MSA-2 is not the message's MSH-10: %s", id, ack);
}

/* Value of the metric line that starts with `line` in /metrics, or -1. */
static long metric(struct hw *w, const char *line)
{
	char url[128], *body = NULL;
	long v = -1;
	snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", w->http);
	if (itest_http("GET", url, NULL, &body) == 200 && body) {
		const char *p = strstr(body, line);
		if (p)
			v = atol(p + strlen(line));
	}
	free(body);
	return v;
}

static long readyz(struct hw *w, char **body)
{
	char url[128], *b = NULL;
	snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", w->http);
	long st = itest_http("GET", url, NULL, &b);
	if (body)
		*body = b;
	else
		free(b);
	return st;
}

/* The dead letter of id: its value's length (the value is the raw message,
 * maybe cut), or -1 when there is none. */
static long dead_letter_len(struct hw *w, const char *id)
{
	char **v = NULL;
	long len = -1;
	int n = itest_consume_all(w->dlq, "read_committed", -1, 3000, &v);
	for (int i = 0; i < n; i++)
		if (strstr(v[i], id))
			len = (long)strlen(v[i]);
	itest_free_values(v, n);
	return len;
}

Test(hostile, mllp_oversized_event_and_dead_letter, .timeout = 180)
{
	struct hw w;
	struct icl c;
	char err[512], big_id[200], ok_id[200], ack[8192];
	size_t len;

	hw_names(&w, "h14-size");
	/* Topics that take 64 KiB: the bridge lowers its producers' limit to it. */
	topic_with(w.created, "max.message.bytes", "65536");
	topic_with(w.dlq, "max.message.bytes", "65536");
	hw_start(&w, NULL, NULL);
	cr_assert_gt(icl_count_in_file(w.log, "takes records up to 65536 bytes"), 0,
		     "no start-up note about the 64 KiB topic (see %s)", w.log);
	cr_assert_gt(icl_count_in_file(w.log, "max.frame.size = 4194304, but topic"), 0,
		     "no start-up warning about max.frame.size (see %s)", w.log);
	cr_assert_eq(icl_connect(&c, w.port, NULL, err, sizeof err), 0, "%s", err);

	/* 3,000 identifiers: the event is ~150 KB, the message ~75 KB: answered
	 * AE 207 at once, dead-lettered cut to fit. */
	snprintf(big_id, sizeof big_id, "%s-big", w.inst);
	char *big = adt_reps(big_id, "A01", 3000, &len);
	cr_assert_gt(len, SMALL_TOPIC);
	expect_ack(&w, &c, big, big_id, "AE", ack, sizeof ack);
	cr_assert(strstr(ack, "207") && strstr(ack, "cannot be published"),
		  "no ERR 207 with the reason: %s", ack);
	/* the lane goes on: the next message on the same connection commits */
	snprintf(ok_id, sizeof ok_id, "%s-ok", w.inst);
	char *ok = icl_adt(ok_id);
	expect_ack(&w, &c, ok, ok_id, "AA", ack, sizeof ack);
	/* a resend of the big one: the same answer, nothing new published */
	expect_ack(&w, &c, big, big_id, "AE", ack, sizeof ack);

	cr_assert_eq(itest_count_with(w.created, ok_id, 3000), 1);
	cr_assert_eq(itest_count_with(w.created, big_id, 3000), 0);
	long dl = dead_letter_len(&w, big_id);
	cr_assert(dl > 1000 && dl < SMALL_TOPIC, "dead letter of %zu bytes cut to %ld", len, dl);
	cr_assert_eq(metric(&w, "hl7bridge_messages_rejected_total{stage=\"publish\",code=\"207\"} "),
		     1);
	icl_close(&c);
	free(big);
	free(ok);
	hw_stop(&w);
}

Test(hostile, mllp_adt_with_60000_pid3, .timeout = 180)
{
	struct hw w;
	struct icl c;
	char err[512], big_id[200], ok_id[200], ack[8192];
	size_t len;

	/* The broker's default limits (~1 MB): the event of an ADT with 60,000
	 * PID-3 repetitions is several MB. */
	hw_names(&w, "h14-60k");
	hw_start(&w, NULL, NULL);
	cr_assert_eq(icl_connect(&c, w.port, NULL, err, sizeof err), 0, "%s", err);
	snprintf(big_id, sizeof big_id, "%s-big", w.inst);
	char *big = adt_reps(big_id, "A08", 60000, &len);
	cr_log_info("ADT with 60,000 PID-3 repetitions: %zu bytes", len);
	long long t0 = icl_now_ms();
	expect_ack(&w, &c, big, big_id, "AE", ack, sizeof ack);
	cr_log_info("answered AE in %lld ms", icl_now_ms() - t0);
	cr_assert(strstr(ack, "207"), "no ERR 207: %s", ack);
	snprintf(ok_id, sizeof ok_id, "%s-ok", w.inst);
	char *ok = icl_adt(ok_id);
	expect_ack(&w, &c, ok, ok_id, "AA", ack, sizeof ack);
	long dl = dead_letter_len(&w, big_id);
	cr_assert(dl > 100000 && dl < 1000000, "dead letter of %zu bytes cut to %ld", len, dl);
	icl_close(&c);
	free(big);
	free(ok);
	hw_stop(&w);
}

/* The topic's limit shrinks after start: the bridge cannot know it, the
 * broker refuses the record (MSG_SIZE_TOO_LARGE). That message is answered
 * AE; the other message of the same transaction is committed. */
Test(hostile, mllp_broker_refuses_too_large, .timeout = 180)
{
	struct hw w;
	struct icl c1, c2;
	char err[512], big_id[200], ok_id[200], ack[8192], code[3];
	size_t len;

	hw_names(&w, "h14-brk");
	topic_with(w.created, "retention.ms", "604800000");
	/* linger 300 ms: both messages land in one transaction */
	hw_start(&w, NULL, "300ms");
	topic_alter(w.created, "max.message.bytes", "65536");
	cr_assert_eq(icl_connect(&c1, w.port, NULL, err, sizeof err), 0, "%s", err);
	cr_assert_eq(icl_connect(&c2, w.port, NULL, err, sizeof err), 0, "%s", err);
	snprintf(big_id, sizeof big_id, "%s-big", w.inst);
	snprintf(ok_id, sizeof ok_id, "%s-ok", w.inst);
	char *big = adt_reps(big_id, "A01", 3000, &len);
	char *ok = icl_adt(ok_id);
	cr_assert_eq(icl_send(&c1, big, len), 0);
	cr_assert_eq(icl_send(&c2, ok, strlen(ok)), 0);
	cr_assert_gt(icl_read_ack(&c2, ack, sizeof ack, 60000), 0, "no ACK for %s (see %s)", ok_id,
		     w.log);
	icl_msa1(ack, code);
	cr_assert_str_eq(code, "AA", "%s: %s", ok_id, ack);
	cr_assert_gt(icl_read_ack(&c1, ack, sizeof ack, 60000), 0, "no ACK for %s (see %s)", big_id,
		     w.log);
	icl_msa1(ack, code);
	cr_assert_str_eq(code, "AE", "%s: %s", big_id, ack);
	cr_assert(strstr(ack, "207") && strstr(ack, "too large"), "no ERR 207 with the reason: %s",
		  ack);
	/* and the lane goes on */
	free(ok);
	snprintf(ok_id, sizeof ok_id, "%s-ok2", w.inst);
	ok = icl_adt(ok_id);
	expect_ack(&w, &c1, ok, ok_id, "AA", ack, sizeof ack);
	cr_assert_eq(itest_count_with(w.created, big_id, 3000), 0);
	cr_assert_eq(itest_count_with(w.created, w.inst, 3000), 2);
	icl_close(&c1);
	icl_close(&c2);
	free(big);
	free(ok);
	hw_stop(&w);
}

/* Records older than this are refused by the topic: 0 refuses every record
 * (its timestamp is a moment in the past when it arrives). */
#define BEFORE_ANY "9223372036854775807"

/* A lane that cannot commit (the topic refuses every record's timestamp):
 * /readyz answers 503 and the log says why; SIGTERM still ends within
 * shutdown.timeout and a few seconds (exit 1: a message was not
 * acknowledged). (Whether the lane commits again once the topic is fixed
 * is librdkafka's business: 2.0.2 sometimes needs a restart after repeated
 * produce errors, which is what the 503 is for.) */
Test(hostile, mllp_failing_lane_readyz_and_sigterm, .timeout = 240)
{
	struct hw w;
	struct icl c;
	char err[512], id[200], *body = NULL;

	hw_names(&w, "h14-fail");
	topic_with(w.created, "message.timestamp.before.max.ms", BEFORE_ANY);
	hw_start(&w, NULL, NULL);
	cr_assert_eq(readyz(&w, NULL), 200);
	topic_alter(w.created, "message.timestamp.before.max.ms", "0");
	cr_assert_eq(icl_connect(&c, w.port, NULL, err, sizeof err), 0, "%s", err);
	snprintf(id, sizeof id, "%s-1", w.inst);
	char *msg = icl_adt(id);
	cr_assert_eq(icl_send(&c, msg, strlen(msg)), 0);
	long st = 0;
	long long t0 = icl_now_ms();
	while (icl_now_ms() - t0 < 40000) {
		free(body);
		body = NULL;
		if ((st = readyz(&w, &body)) == 503)
			break;
		usleep(500 * 1000);
	}
	cr_assert_eq(st, 503, "/readyz stayed %ld while the lane failed (see %s)", st, w.log);
	cr_log_info("/readyz after %lld ms: %s", icl_now_ms() - t0, body);
	cr_assert(strstr(body, "publisher failing"), "%s", body);
	free(body);
	for (int i = 0; i < 30 && icl_count_in_file(w.log, "lane(s) cannot commit") == 0; i++)
		usleep(100 * 1000); /* the loop looks once a second */
	cr_assert_gt(icl_count_in_file(w.log, "lane(s) cannot commit"), 0, "not logged (see %s)",
		     w.log);
	cr_assert_eq(metric(&w, "\nhl7bridge_publisher_lanes_failing "), 1);

	/* SIGTERM while it keeps failing (by now a commit call blocks for up to
	 * transaction.timeout) */
	sleep(12);
	t0 = icl_now_ms();
	kill(w.pid, SIGTERM);
	int ws;
	cr_assert_eq(waitpid(w.pid, &ws, 0), w.pid);
	long long took = icl_now_ms() - t0;
	cr_log_info("SIGTERM with a failing lane: exit %d after %lld ms", WEXITSTATUS(ws), took);
	cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 1, "exit status %d", ws);
	cr_assert_lt(took, 20000, "SIGTERM took %lld ms (shutdown.timeout = 5s)", took);
	icl_close(&c);
	free(msg);
	unlink(w.conf);
	unlink(w.log);
}

/* Issue 14 item 11: an MSH-10 with a control character or longer than 199
 * characters got "MSA|AA|" with an empty MSA-2. Now: AR with ERR-3 102, the
 * id echoed escaped and cut in MSA-2, and the message dead-lettered. */
Test(hostile, mllp_msh10_unusable_gets_ar, .timeout = 120)
{
	struct hw w;
	struct icl c;
	char err[512], ack[8192], code[3], id[300];

	hw_names(&w, "h14-msh10");
	hw_start(&w, NULL, NULL);
	cr_assert_eq(icl_connect(&c, w.port, NULL, err, sizeof err), 0, "%s", err);

	/* a control character (BEL) in MSH-10 */
	snprintf(id, sizeof id, "%s-B\aX", w.inst);
	char *msg = icl_adt(id);
	cr_assert_gt(icl_exchange(&c, msg, ack, sizeof ack, 30000), 0, "no ACK (see %s)", w.log);
	icl_msa1(ack, code);
	cr_assert_str_eq(code, "AR", "%s", ack);
	char want[400];
	snprintf(want, sizeof want, "MSA|AR|%s-B\\X07\\X", w.inst);
	cr_assert(strstr(ack, want) != NULL, "MSA-2 not the escaped id: %s", ack);
	cr_assert(strstr(ack, "102") && strstr(ack, "control character"), "no ERR 102: %s", ack);
	cr_assert_null(strchr(ack, '\a'), "a control character went back to the sender");
	free(msg);

	/* 250 characters */
	size_t n = (size_t)snprintf(id, sizeof id, "%s-L", w.inst);
	memset(id + n, 'L', 250 - n);
	id[250] = '\0';
	msg = icl_adt(id);
	cr_assert_gt(icl_exchange(&c, msg, ack, sizeof ack, 30000), 0, "no ACK (see %s)", w.log);
	icl_msa1(ack, code);
	cr_assert_str_eq(code, "AR", "%s", ack);
	snprintf(want, sizeof want, "MSA|AR|%.199s\r", id);
	cr_assert(strstr(ack, want) != NULL, "MSA-2 not the first 199 characters: %s", ack);
	cr_assert(strstr(ack, "at most 199"), "no reason: %s", ack);
	free(msg);

	/* and an ordinary one still gets AA */
	snprintf(id, sizeof id, "%s-ok", w.inst);
	msg = icl_adt(id);
	expect_ack(&w, &c, msg, id, "AA", ack, sizeof ack);
	free(msg);
	cr_assert_eq(itest_count_with(w.dlq, "-L", 3000), 1, "the long one is not dead-lettered");
	icl_close(&c);
	hw_stop(&w);
}

/* A plain connection from source address src (another loopback address is
 * another peer). 0 or -1. */
static int connect_from(struct icl *c, const char *src, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	memset(c, 0, sizeof *c);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, src, &a.sin_addr);
	if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&a, sizeof a) != 0)
		return -1;
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	a.sin_port = htons((uint16_t)port);
	return connect(c->fd, (struct sockaddr *)&a, sizeof a);
}

/* Issue 14 item 13 (listener part): connections per source address are
 * limited, so one host cannot lock out the others; junk outside frames does
 * not keep a connection past idle.timeout; a flood of empty frames does not
 * flood the log; an MSH-18 charset nothing can read gets AR, not AA. */
Test(hostile, mllp_per_peer_limit_idle_logs_charset, .timeout = 120)
{
	struct hw w;
	struct icl c[6], other, junk;
	char err[512], ack[8192], code[3], id[200];

	hw_names(&w, "h14-peer");
	g_listener_extra = "max.connections.per.peer = 5\nidle.timeout = 3s\n";
	hw_start(&w, NULL, NULL);
	g_listener_extra = "";

	for (int i = 0; i < 5; i++)
		cr_assert_eq(icl_connect(&c[i], w.port, NULL, err, sizeof err), 0, "%s", err);
	/* the sixth from the same host is closed at once */
	cr_assert_eq(icl_connect(&c[5], w.port, NULL, err, sizeof err), 0, "%s", err);
	cr_assert_eq(icl_wait_closed(&c[5], 5000), 1, "a sixth connection from one peer was kept");
	icl_close(&c[5]);
	/* another host still gets in and is answered */
	cr_assert_eq(connect_from(&other, "127.0.0.2", w.port), 0, "cannot connect from 127.0.0.2");
	snprintf(id, sizeof id, "%s-other", w.inst);
	char *msg = icl_adt(id);
	expect_ack(&w, &other, msg, id, "AA", ack, sizeof ack);
	free(msg);
	cr_assert_gt(icl_count_in_file(w.log, "max.connections.per.peer (5) reached"), 0);

	/* an MSH-18 nothing can read: AR (was AA) */
	snprintf(id, sizeof id, "%s-cs", w.inst);
	char cs[1024];
	snprintf(cs, sizeof cs,
		 "MSH|^~\\&|ITEST|ITESTHOSP|HL7BRIDGE|CMM|20261127070000||ADT^A01^ADT_A01|%s|P|2.5.1"
		 "||||||NO-SUCH-CHARSET\rEVN|A01|20261127070000\rPID|1||%s^^^ITESTHOSP^MR||Example^Sam\r",
		 id, id);
	cr_assert_gt(icl_exchange(&c[0], cs, ack, sizeof ack, 30000), 0);
	icl_msa1(ack, code);
	cr_assert_str_eq(code, "AR", "unknown charset: %s", ack);

	/* 300 empty frames: each answered AR, a few log lines */
	int before = icl_count_in_file(w.log, "rejected unreadable message");
	for (int i = 0; i < 300; i++) {
		cr_assert_eq(icl_write(&c[1], "\x0b\x1c\r", 3), 0);
		cr_assert_gt(icl_read_ack(&c[1], ack, sizeof ack, 30000), 0, "empty frame %d", i);
	}
	int lines = icl_count_in_file(w.log, "rejected unreadable message") - before;
	cr_log_info("300 empty frames: %d log lines", lines);
	cr_assert_leq(lines, 10, "%d log lines for 300 empty frames", lines);

	/* junk outside frames does not reset idle.timeout (3 s) */
	for (int i = 2; i < 5; i++)
		icl_close(&c[i]);
	cr_assert_eq(icl_connect(&junk, w.port, NULL, err, sizeof err), 0, "%s", err);
	long long t0 = icl_now_ms();
	int closed = 0;
	while (!closed && icl_now_ms() - t0 < 10000) {
		(void)icl_write(&junk, "noise\r\n", 7);
		closed = icl_wait_closed(&junk, 500);
	}
	cr_assert(closed, "junk every 0.5 s kept the connection open past idle.timeout");
	cr_log_info("junk-only connection closed after %lld ms", icl_now_ms() - t0);
	icl_close(&junk);
	icl_close(&c[0]);
	icl_close(&c[1]);
	icl_close(&other);
	hw_stop(&w);
}

/* The same in a file drop: a message whose event is larger than its topic
 * takes is rejected in the file's report (207) and dead-lettered; the
 * messages around it are published and the file reaches done/ (it used to
 * fail its slice for ever). */
Test(hostile, mllp_oversized_event_in_a_file_drop, .timeout = 180)
{
	struct hw w;
	char dir[300], path[700], tmp[700], a[200], b[200], c[200];
	size_t l1, l2, l3;

	hw_names(&w, "h14-fdrop");
	topic_with(w.created, "max.message.bytes", "65536");
	snprintf(dir, sizeof dir, "/tmp/%s-drop", w.inst);
	char extra[512];
	snprintf(extra, sizeof extra,
		 "[drop main]\npath = %s\nquiet.period = 1s\nrescan = 1s\n", dir);
	g_listener_extra = extra; /* appended after [listener plain]: a section of its own */
	hw_start(&w, NULL, NULL);
	g_listener_extra = "";
	snprintf(a, sizeof a, "%s-f1", w.inst);
	snprintf(b, sizeof b, "%s-fbig", w.inst);
	snprintf(c, sizeof c, "%s-f3", w.inst);
	char *m1 = adt_reps(a, "A01", 1, &l1), *m2 = adt_reps(b, "A01", 3000, &l2),
	     *m3 = adt_reps(c, "A01", 1, &l3);
	snprintf(tmp, sizeof tmp, "%s/inbox/.big.part", dir);
	snprintf(path, sizeof path, "%s/inbox", dir);
	mkdir(dir, 0755);
	mkdir(path, 0755);
	FILE *f = fopen(tmp, "wb");
	cr_assert_not_null(f);
	fwrite(m1, 1, l1, f);
	fwrite(m2, 1, l2, f);
	fwrite(m3, 1, l3, f);
	fclose(f);
	snprintf(path, sizeof path, "%s/inbox/big.hl7", dir);
	cr_assert_eq(rename(tmp, path), 0);
	snprintf(path, sizeof path, "%s/done/big.hl7.errors.json", dir);
	int done = 0;
	for (int i = 0; i < 600 && !done; i++) {
		done = access(path, F_OK) == 0;
		if (!done)
			usleep(100 * 1000);
	}
	cr_assert(done, "big.hl7 has no report in done/ (see %s)", w.log);
	char *rep = icl_slurp(path);
	cr_assert(strstr(rep, "207") && strstr(rep, "cannot be published"), "report: %s", rep);
	free(rep);
	cr_assert_eq(itest_count_with(w.created, a, 3000), 1);
	cr_assert_eq(itest_count_with(w.created, c, 3000), 1);
	cr_assert_eq(itest_count_with(w.created, b, 3000), 0);
	long dl = dead_letter_len(&w, b);
	cr_assert(dl > 1000 && dl < SMALL_TOPIC, "dead letter cut to %ld", dl);
	free(m1);
	free(m2);
	free(m3);
	hw_stop(&w);
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

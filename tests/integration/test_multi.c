/*
 * Several instances sharing one state topic are one exactly-once system
 * (issue 13): a resend to another running instance is answered from the
 * shared ledger, not published again; senders that fail over between three
 * instances while instances are killed (-9) and restarted get every message
 * published exactly once; a file whose instance died is taken over and
 * finished exactly once; a FHIR request resent to another running instance is
 * answered from the shared ledger too.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "iclient.h"
#include "itest.h"

#define MAXI 3

struct cluster {
	int n;
	char run[128], state[160], prefix[160], drop[256];
	char inst[MAXI][160], conf[MAXI][300], log[MAXI][300];
	pthread_mutex_t mu;
	pid_t pid[MAXI];
	int port[MAXI]; /* -1 while down */
	int http[MAXI];
	const char *kafka_extra, *bridge_extra; /* more keys for [kafka] and [bridge] */
};

static void cluster_conf(struct cluster *c, const char *extra)
{
	const char *src = getenv("HB_SRCDIR");
	char base[96];
	itest_unique_name(base, sizeof base, "itm");
	snprintf(c->run, sizeof c->run, "%s", base);
	snprintf(c->state, sizeof c->state, "%s.state", base);
	snprintf(c->prefix, sizeof c->prefix, "%s.", base);
	snprintf(c->drop, sizeof c->drop, "/tmp/%s.drop", base);
	pthread_mutex_init(&c->mu, NULL);
	for (int i = 0; i < c->n; i++) {
		snprintf(c->inst[i], sizeof c->inst[i], "%s-%c", base, 'a' + i);
		snprintf(c->conf[i], sizeof c->conf[i], "/tmp/%s.conf", c->inst[i]);
		snprintf(c->log[i], sizeof c->log[i], "/tmp/%s.log", c->inst[i]);
		FILE *f = fopen(c->conf[i], "w");
		cr_assert_not_null(f);
		fprintf(f,
			"[http]\nbind = 127.0.0.1:0\n"
			"[bridge]\ninstance = %s\nmappings = %s/mappings\nschemas = %s/conf/schemas\n%s"
			"[kafka]\nbootstrap.servers = %s\n%s"
			"[topics]\nprefix = %s\npartitions = 1\nstate.partitions = 3\ndeadletter = %s.dlq\n"
			"state = %s\n"
			"[publisher]\nlanes = 2\nlinger = 2ms\n"
			"[listener plain]\nbind = 127.0.0.1:0\n%s",
			c->inst[i], src, src, c->bridge_extra ? c->bridge_extra : "", itest_bootstrap(),
			c->kafka_extra ? c->kafka_extra : "", c->prefix, base, c->state,
			extra ? extra : "");
		fclose(f);
		c->port[i] = -1;
	}
}

static void start(struct cluster *c, int i)
{
	int port, http;
	pid_t pid = itest_daemon_start_http(c->conf[i], c->log[i], &port, &http);
	pthread_mutex_lock(&c->mu);
	c->pid[i] = pid;
	c->port[i] = port;
	c->http[i] = http;
	pthread_mutex_unlock(&c->mu);
}

static int port_of(struct cluster *c, int i)
{
	pthread_mutex_lock(&c->mu);
	int p = c->port[i];
	pthread_mutex_unlock(&c->mu);
	return p;
}

/* Count the events per patient id "<tag><k>" (k < n) in topic. */
static void tally(const char *topic, const char *tag, int n, int *got, int *dups, int *missing)
{
	char **vals;
	char needle[240];
	char *seen = calloc((size_t)n, 1);
	int m = itest_consume_all(topic, "read_committed", -1, 4000, &vals);
	snprintf(needle, sizeof needle, "\"patientId\":\"%s", tag);
	*got = *dups = *missing = 0;
	for (int i = 0; i < m; i++) {
		char *at = strstr(vals[i], needle);
		if (!at)
			continue;
		int k = atoi(at + strlen(needle));
		if (k < 0 || k >= n)
			continue;
		(*got)++;
		if (seen[k] < 100)
			seen[k]++;
	}
	for (int k = 0; k < n; k++) {
		if (!seen[k])
			(*missing)++;
		else if (seen[k] > 1)
			*dups += seen[k] - 1;
	}
	if (m > 0)
		itest_free_values(vals, m);
	free(seen);
}

static void send_all(int port, const char *tag, int n)
{
	struct icl c;
	char err[256], ack[4096], id[200];
	cr_assert_eq(icl_connect(&c, port, NULL, err, sizeof err), 0, "%s", err);
	for (int k = 0; k < n; k++) {
		snprintf(id, sizeof id, "%s%d", tag, k);
		char *msg = icl_adt(id);
		int r = icl_exchange(&c, msg, ack, sizeof ack, 20000);
		free(msg);
		cr_assert(r > 0 && icl_ack_ok(ack, id), "message %s: no positive ACK (%d)", id, r);
	}
	icl_close(&c);
}

/* The bug of issue 13: 200 to A, the same 200 to B (running all along):
 * 200 events, not 400. Then C, started later, agrees too. */
Test(multi, resend_to_a_running_peer, .timeout = 180)
{
	struct cluster c = { .n = 3 };
	char tag[160], topic[240];
	int got, dups, missing;

	cluster_conf(&c, NULL);
	snprintf(tag, sizeof tag, "%sP", c.run);
	snprintf(topic, sizeof topic, "%spatient.created", c.prefix);
	start(&c, 0);
	start(&c, 1);
	send_all(c.port[0], tag, 200);
	send_all(c.port[1], tag, 200);
	start(&c, 2);
	send_all(c.port[2], tag, 200);
	/* and back to A: its own commits and B's answers alike */
	send_all(c.port[0], tag, 200);
	tally(topic, tag, 200, &got, &dups, &missing);
	cr_expect_eq(dups, 0, "%d duplicates (logs %s, %s)", dups, c.log[0], c.log[1]);
	cr_expect_eq(missing, 0, "%d missing", missing);
	cr_expect_eq(got, 200, "%d events", got);
	/* Metrics: A decided its 200 new messages after barriers; B answered
	 * the resends from A's records, read by its tail; nothing parked. */
	for (int i = 0; i < 2; i++) {
		char url[128], *m = NULL;
		snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", c.http[i]);
		cr_expect_eq(itest_http("GET", url, NULL, &m), 200);
		cr_expect(m && strstr(m, "\nhl7bridge_ledger_parked 0\n"), "parked messages on %d", i);
		const char *w = m ? strstr(m, "\nhl7bridge_ledger_barrier_waits_total ") : NULL;
		const char *r = m ? strstr(m, "\nhl7bridge_ledger_tail_records_total ") : NULL;
		if (i == 0)
			cr_expect(w && atol(w + 38) >= 200, "A decided fewer than 200 after a barrier");
		else
			cr_expect(r && atol(r + 37) >= 1, "B applied none of A's records");
		free(m);
	}
	for (int i = 0; i < 3; i++)
		cr_expect_eq(itest_daemon_stop(c.pid[i]), 0, "instance %d did not stop cleanly (%s)", i,
			     c.log[i]);
	cr_expect(icl_count_in_file(c.log[1], "shared ledger:") == 1, "no barrier summary in %s",
		  c.log[1]);
}

/* ---- failover under kill -9 ------------------------------------------------- */

#define SENDERS 16
#define TOTAL 5000
#define KILLS 10

struct sender {
	struct cluster *c;
	pthread_t th;
	int idx, first, n;
	const char *tag;
	atomic_int *acked;
	int failovers, errors;
	char err[300];
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	struct icl conn;
	int up = 0, inst = s->idx % s->c->n;
	char ack[4096], id[200], err[256];

	for (int k = s->first; k < s->first + s->n; k++) {
		long long t0 = icl_now_ms();
		snprintf(id, sizeof id, "%s%d", s->tag, k);
		char *msg = icl_adt(id);
		for (;;) {
			if (icl_now_ms() - t0 > 120000) {
				snprintf(s->err, sizeof s->err, "message %s: no ACK from any instance in 120 s", id);
				s->errors++;
				break;
			}
			if (!up) {
				int port = port_of(s->c, inst);
				if (port < 0 || icl_connect(&conn, port, NULL, err, sizeof err) != 0) {
					inst = (inst + 1) % s->c->n; /* the next instance */
					usleep(20000);
					continue;
				}
				up = 1;
			}
			int r = icl_exchange(&conn, msg, ack, sizeof ack, 15000);
			if (r > 0 && icl_ack_ok(ack, id)) {
				atomic_fetch_add(s->acked, 1);
				break;
			}
			if (r > 0) { /* a negative ACK: must not happen here */
				snprintf(s->err, sizeof s->err, "message %.60s: %.120s", id, ack);
				s->errors++;
			}
			/* connection error or timeout: resend to the next instance */
			icl_close(&conn);
			up = 0;
			inst = (inst + 1) % s->c->n;
			s->failovers++;
		}
		free(msg);
	}
	if (up)
		icl_close(&conn);
	return NULL;
}

Test(multi, failover_kill9_three_instances, .timeout = 300)
{
	struct cluster c = { .n = 3 };
	struct sender s[SENDERS];
	atomic_int acked = 0;
	char tag[160], topic[240];
	int got, dups, missing, failovers = 0, errors = 0;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	long long t0;

	cluster_conf(&c, NULL);
	snprintf(tag, sizeof tag, "%sK", c.run);
	snprintf(topic, sizeof topic, "%spatient.created", c.prefix);
	srand(seed);
	for (int i = 0; i < c.n; i++)
		start(&c, i);
	t0 = icl_now_ms();
	for (int i = 0; i < SENDERS; i++) {
		s[i] = (struct sender){ .c = &c, .idx = i, .first = i * (TOTAL / SENDERS),
					.n = TOTAL / SENDERS + (i == SENDERS - 1 ? TOTAL % SENDERS : 0),
					.tag = tag, .acked = &acked };
		pthread_create(&s[i].th, NULL, sender_main, &s[i]);
	}
	/* Kill k at (k+1)/(KILLS+2) of the traffic, an instance that is up,
	 * while another one is up too; restart it. */
	for (int k = 0; k < KILLS; k++) {
		while (atomic_load(&acked) < (k + 1) * TOTAL / (KILLS + 2))
			usleep(5000);
		int victim;
		for (;;) {
			int upcount = 0;
			victim = rand() % c.n;
			for (int i = 0; i < c.n; i++)
				upcount += port_of(&c, i) >= 0;
			if (port_of(&c, victim) >= 0 && upcount >= 2)
				break;
			usleep(20000);
		}
		pthread_mutex_lock(&c.mu);
		pid_t pid = c.pid[victim];
		c.port[victim] = -1;
		pthread_mutex_unlock(&c.mu);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		/* A supervisor's restart delay. From this thread: a daemon dies with
		 * the thread that started it (PR_SET_PDEATHSIG). */
		usleep(200000);
		start(&c, victim);
	}
	for (int i = 0; i < SENDERS; i++) {
		pthread_join(s[i].th, NULL);
		failovers += s[i].failovers;
		errors += s[i].errors;
		if (s[i].errors)
			cr_log_warn("sender %d: %s", i, s[i].err);
	}
	long long secs = (icl_now_ms() - t0) / 1000;
	cr_log_info("%d messages over %d connections, %d kills, %d failovers in %lld s (seed %u)",
		    TOTAL, SENDERS, KILLS, failovers, secs, seed);
	tally(topic, tag, TOTAL, &got, &dups, &missing);
	for (int i = 0; i < c.n; i++)
		cr_expect_eq(itest_daemon_stop(c.pid[i]), 0, "instance %d (%s)", i, c.log[i]);
	cr_expect_eq(errors, 0, "%d sender errors (seed %u)", errors, seed);
	cr_expect_eq(atomic_load(&acked), TOTAL, "ACKed %d of %d", atomic_load(&acked), TOTAL);
	cr_expect_eq(dups, 0, "%d duplicates (seed %u, logs %s ...)", dups, seed, c.log[0]);
	cr_expect_eq(missing, 0, "%d ACKed messages missing (seed %u)", missing, seed);
}

/* ---- takeover of a dead instance's file --------------------------------------- */

#define FILE_MSGS 3000
#define AUTO_FILE_MSGS 4000

static int in_dir(const char *dir, const char *sub, const char *name)
{
	char p[700];
	struct stat st;
	snprintf(p, sizeof p, "%s/%s/%s", dir, sub, name);
	return stat(p, &st) == 0;
}

static int wait_in_dir(const char *dir, const char *sub, const char *name, int secs)
{
	for (int i = 0; i < secs * 10; i++) {
		if (in_dir(dir, sub, name))
			return 1;
		usleep(100000);
	}
	return 0;
}

/* n ADT^A01 back to back, patient ids "<tag><k>", dropped by rename (or
 * written in place: then a drop takes it after its quiet period). */
static void drop_batch_n(const struct cluster *c, const char *tag, const char *name, int n,
			 int in_place)
{
	char tmp[600], to[600], id[200];
	snprintf(tmp, sizeof tmp, "%s/inbox", c->drop);
	mkdir(c->drop, 0755);
	mkdir(tmp, 0755);
	snprintf(tmp, sizeof tmp, "%s/inbox/.%s.part", c->drop, name);
	snprintf(to, sizeof to, "%s/inbox/%s", c->drop, name);
	FILE *f = fopen(in_place ? to : tmp, "wb");
	cr_assert_not_null(f);
	for (int k = 0; k < n; k++) {
		snprintf(id, sizeof id, "%s%d", tag, k);
		char *m = icl_adt(id);
		fputs(m, f);
		free(m);
	}
	fclose(f);
	if (!in_place)
		cr_assert_eq(rename(tmp, to), 0);
}

static void drop_batch(const struct cluster *c, const char *tag, const char *name)
{
	drop_batch_n(c, tag, name, FILE_MSGS, 0);
}

static int run_takeover(const struct cluster *c, int by, int victim, const char *flags)
{
	char cmd[1400];
	snprintf(cmd, sizeof cmd, "%s/hl7bridge takeover %s -c %s %s >>%s 2>&1", getenv("HB_BUILDDIR"),
		 c->inst[victim], c->conf[by], flags, c->log[by]);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *drop_section(const struct cluster *c, const char *more, const char *quiet)
{
	static char buf[1024];
	snprintf(buf, sizeof buf,
		 "[drop main]\npath = %s\nquiet.period = %s\nrescan = 500ms\n"
		 "max.inflight = 1\nthreads = 1\n%s",
		 c->drop, quiet ? quiet : "200ms", more ? more : "max.messages.per.transaction = 10\n");
	return buf;
}

/* Two instances sharing one drop (under /tmp, named from stem). */
static void shared_drop_cluster(struct cluster *c, const char *stem)
{
	char base[96], drop_dir[256];
	itest_unique_name(base, sizeof base, stem);
	snprintf(drop_dir, sizeof drop_dir, "/tmp/%s.drop", base);
	snprintf(c->drop, sizeof c->drop, "%s", drop_dir);
	cluster_conf(c, NULL);
	snprintf(c->drop, sizeof c->drop, "%s", drop_dir);
	for (int i = 0; i < c->n; i++) {
		FILE *f = fopen(c->conf[i], "a");
		fputs(drop_section(c, NULL, NULL), f);
		fclose(f);
	}
}

/* Start A, drop a batch file, and kill A (-9) once some of its slices
 * committed but not all: the file stays in A's work folder. */
static void kill_a_mid_file(struct cluster *c, const char *tag, const char *work, const char *name)
{
	char publishing[128];
	start(c, 0);
	drop_batch(c, tag, name);
	cr_assert(wait_in_dir(c->drop, work, name, 20), "A did not claim %s (%s)", name, c->log[0]);
	snprintf(publishing, sizeof publishing, "publishing %s", name);
	for (int i = 0; i < 100 && icl_count_in_file(c->log[0], publishing) == 0; i++)
		usleep(20000);
	usleep(300000);
	kill(c->pid[0], SIGKILL);
	waitpid(c->pid[0], NULL, 0);
	cr_assert(in_dir(c->drop, work, name), "A finished %s before it was killed; the test "
					      "proves nothing (log %s)", name, c->log[0]);
}

/* A dies (-9) in the middle of a file; `takeover` refuses while its
 * heartbeat is recent, then with --force fences it and puts the file back;
 * B resumes it: every message once. */
Test(multi, takeover_command_finishes_a_dead_instances_file, .timeout = 180)
{
	struct cluster c = { .n = 2 };
	char tag[160], topic[240], work[400];
	int got, dups, missing;

	shared_drop_cluster(&c, "itm");
	snprintf(tag, sizeof tag, "%sF", c.run);
	snprintf(topic, sizeof topic, "%spatient.created", c.prefix);
	snprintf(work, sizeof work, "work/%s", c.inst[0]);

	kill_a_mid_file(&c, tag, work, "big.hl7");

	start(&c, 1);
	/* A's heartbeat is a second old: refused */
	cr_expect_eq(run_takeover(&c, 1, 0, ""), 1, "takeover of a live-looking instance was not refused");
	cr_expect(in_dir(c.drop, work, "big.hl7"), "the refused takeover moved the file");
	cr_assert_eq(run_takeover(&c, 1, 0, "--force"), 0, "takeover failed (%s)", c.log[1]);
	cr_assert(wait_in_dir(c.drop, "done", "big.hl7", 90), "B did not finish the file (%s)", c.log[1]);
	cr_expect(icl_count_in_file(c.log[1], "resumes at message") == 1, "B did not resume (%s)",
		  c.log[1]);
	tally(topic, tag, FILE_MSGS, &got, &dups, &missing);
	cr_expect_eq(itest_daemon_stop(c.pid[1]), 0);
	cr_expect_eq(dups, 0, "%d duplicates (%s, %s)", dups, c.log[0], c.log[1]);
	cr_expect_eq(missing, 0, "%d missing (%s, %s)", missing, c.log[0], c.log[1]);
	/* a second takeover finds nothing left to move */
	cr_expect_eq(run_takeover(&c, 1, 0, "--force"), 0);
	cr_expect(icl_count_in_file(c.log[1], "moved 0 files") == 1, "second takeover (%s)", c.log[1]);
}

/* The same without an operator: B saw A's heartbeats, A dies (-9) mid-file,
 * and after takeover.after of silence B fences A and finishes the file. */
Test(multi, automatic_takeover_after_silence, .timeout = 180)
{
	struct cluster c = { .n = 2,
			     .kafka_extra = "transaction.timeout.ms = 5000\nsocket.timeout.ms = 5000\n"
					    "message.timeout.ms = 5000\n",
			     .bridge_extra = "takeover.after = 8s\n" };
	char tag[160], topic[240], work[400], drop_dir[256], base[96];
	int got, dups, missing;

	itest_unique_name(base, sizeof base, "itm");
	snprintf(drop_dir, sizeof drop_dir, "/tmp/%s.drop", base);
	/* transaction.timeout.ms 5 s + 2 x 1 s < takeover.after 8 s */
	cluster_conf(&c, "[ledger]\nheartbeat = 1s\n");
	snprintf(c.drop, sizeof c.drop, "%s", drop_dir);
	for (int i = 0; i < c.n; i++) {
		FILE *f = fopen(c.conf[i], "a");
		/* A is slow (a message a transaction) and takes a file written in
		 * place after 200 ms; B is quick and would wait a minute (a file
		 * moved back by a takeover it takes at once) */
		fputs(drop_section(&c, i == 0 ? "max.messages.per.transaction = 1\n"
					      : "max.messages.per.transaction = 500\n",
				   i == 0 ? "200ms" : "60s"),
		      f);
		fclose(f);
	}
	snprintf(tag, sizeof tag, "%sT", c.run);
	snprintf(topic, sizeof topic, "%spatient.created", c.prefix);
	snprintf(work, sizeof work, "work/%s", c.inst[0]);

	start(&c, 0);
	start(&c, 1);
	drop_batch_n(&c, tag, "auto.hl7", AUTO_FILE_MSGS, 1);
	cr_assert(wait_in_dir(c.drop, work, "auto.hl7", 20), "A did not claim the file (%s)", c.log[0]);
	usleep(1500000); /* B reads A's heartbeats */
	kill(c.pid[0], SIGKILL);
	waitpid(c.pid[0], NULL, 0);
	cr_assert(in_dir(c.drop, work, "auto.hl7"), "A finished before it was killed (%s)", c.log[0]);
	cr_assert(wait_in_dir(c.drop, "done", "auto.hl7", 60), "B did not finish the file (%s)", c.log[1]);
	cr_expect(icl_count_in_file(c.log[1], "taken over:") == 1, "no takeover in %s", c.log[1]);
	tally(topic, tag, AUTO_FILE_MSGS, &got, &dups, &missing);
	cr_expect_eq(itest_daemon_stop(c.pid[1]), 0);
	cr_expect_eq(dups, 0, "%d duplicates (%s, %s)", dups, c.log[0], c.log[1]);
	cr_expect_eq(missing, 0, "%d missing (%s, %s)", missing, c.log[0], c.log[1]);
}

/* A dies (-9) in the middle of a file, then the file is cut in work/A/ (a
 * producer still held it open). The takeover brings A's claim record along
 * with the file, so B sees the file is not what A claimed: it goes to
 * error/ and nothing of it is published again from message 0. */
Test(multi, takeover_of_a_file_cut_after_its_claim_publishes_nothing_twice, .timeout = 180)
{
	struct cluster c = { .n = 2 };
	char tag[160], topic[240], work[400], path[700];
	int got, dups, missing;
	struct stat st;

	shared_drop_cluster(&c, "itc");
	snprintf(tag, sizeof tag, "%sC", c.run);
	snprintf(topic, sizeof topic, "%spatient.created", c.prefix);
	snprintf(work, sizeof work, "work/%s", c.inst[0]);

	kill_a_mid_file(&c, tag, work, "cut.hl7");
	snprintf(path, sizeof path, "%s/%s/cut.hl7", c.drop, work);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(truncate(path, st.st_size / 2), 0);

	start(&c, 1);
	cr_assert_eq(run_takeover(&c, 1, 0, "--force"), 0, "takeover failed (%s)", c.log[1]);
	cr_assert(wait_in_dir(c.drop, "error", "cut.hl7", 60), "B did not refuse the cut file (%s)",
		  c.log[1]);
	cr_expect(icl_count_in_file(c.log[1], "changed in work/ after it was claimed") == 1,
		  "B did not recognise the change (%s)", c.log[1]);
	tally(topic, tag, FILE_MSGS, &got, &dups, &missing);
	cr_expect_eq(itest_daemon_stop(c.pid[1]), 0);
	cr_expect_eq(dups, 0, "%d duplicates (%s, %s)", dups, c.log[0], c.log[1]);
	cr_expect_gt(got, 0, "A had published part of the file");
}

/* ---- FHIR over HTTP: a resend to another running instance ----------------------- */

/* The port of the instance's [fhir] listener, from its log. */
static int fhir_port(const char *log)
{
	char cmd[800], line[64] = "";
	snprintf(cmd, sizeof cmd,
		 "grep -o 'FHIR listening on [^ ]*' '%s' | sed 's/.*:\\([0-9]*\\)\\/.*/\\1/'", log);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	if (!fgets(line, sizeof line, p))
		line[0] = '\0';
	pclose(p);
	cr_assert_gt(atoi(line), 0, "no FHIR listener in %s", log);
	return atoi(line);
}

static size_t discard_cb(char *ptr, size_t size, size_t n, void *opaque)
{
	(void)ptr;
	(void)opaque;
	return size * n;
}

/* POST body to [base]/Patient; the HTTP status, or -1. */
static long fhir_post(int port, const char *body)
{
	char url[128];
	long status = -1;
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/fhir+json");
	snprintf(url, sizeof url, "http://127.0.0.1:%d/fhir/Patient", port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_cb);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

/* A and B share a state topic; B's ledger tail hands over what it reads
 * 1.5 s late (a test hook), so B has not read A's commit when the resend
 * comes. The same Patient POSTed to A, then to B: B's answers (*b1, then
 * *b2 for a third copy), the events published, B's barrier waits. */
static void fhir_resend(const char *ledger, long *a, long *b1, long *b2, int *events, long *b_waits)
{
	struct cluster c = { .n = 2 };
	char extra[256], id[160], body[1024], topic[240], url[128], *m = NULL;

	snprintf(extra, sizeof extra, "[fhir ehr]\nbind = 127.0.0.1:0\n%s", ledger);
	cluster_conf(&c, extra);
	snprintf(id, sizeof id, "%sFH", c.run);
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Patient\",\"id\":\"%s\",\"identifier\":[{\"type\":{\"coding\":"
		 "[{\"code\":\"MR\"}]},\"value\":\"%s\"}],\"name\":[{\"family\":\"Resent\"}]}",
		 id, id);
	snprintf(topic, sizeof topic, "%spatient.updated", c.prefix);
	start(&c, 0);
	setenv("HL7BRIDGE_TEST_TAIL_LAG_MS", "1500", 1);
	start(&c, 1);
	unsetenv("HL7BRIDGE_TEST_TAIL_LAG_MS");
	int pa = fhir_port(c.log[0]), pb = fhir_port(c.log[1]);
	*a = fhir_post(pa, body);
	*b1 = fhir_post(pb, body);
	*b2 = fhir_post(pb, body);
	*events = itest_count_with(topic, id, 4000);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", c.http[1]);
	const char *w = itest_http("GET", url, NULL, &m) == 200 && m
				? strstr(m, "\nhl7bridge_ledger_barrier_waits_total ")
				: NULL;
	*b_waits = w ? atol(w + 38) : -1;
	free(m);
	for (int i = 0; i < 2; i++)
		cr_expect_eq(itest_daemon_stop(c.pid[i]), 0, "instance %d (%s)", i, c.log[i]);
	cr_log_info("FHIR resend, %s: A %ld, B %ld then %ld, %d events, B's barrier waits %ld "
		    "(logs %s, %s)",
		    ledger[0] ? "ledger not shared" : "shared ledger", *a, *b1, *b2, *events, *b_waits,
		    c.log[0], c.log[1]);
}

/* Issue 13 for FHIR: a request's "new or resend" is decided after a barrier,
 * as for MLLP and files. With [ledger] shared = off, the control, B
 * publishes the resend again. */
Test(multi, fhir_resend_to_a_running_peer, .timeout = 180)
{
	long a, b1, b2, waits;
	int events;

	fhir_resend("", &a, &b1, &b2, &events, &waits);
	cr_expect_eq(a, 201, "A's answer");
	cr_expect_eq(b1, 200, "B published the resend (answered %ld)", b1);
	cr_expect_eq(b2, 200);
	cr_expect_eq(events, 1, "%d events for one resource sent twice", events);
	cr_expect_geq(waits, 1, "B decided without a barrier");

	fhir_resend("[ledger]\nshared = off\n", &a, &b1, &b2, &events, &waits);
	cr_expect_eq(a, 201);
	cr_expect_eq(b1, 201, "without a shared ledger B cannot know A's commit");
	cr_expect_eq(b2, 200, "B's own commit");
	cr_expect_eq(events, 2, "%d events without a shared ledger", events);
}

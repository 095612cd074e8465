/*
 * Graceful shutdown under load, against the real broker: eight pipelined
 * senders (four frames in flight each) keep the daemon busy; SIGTERM comes
 * mid-stream. The daemon must stop taking frames, commit and acknowledge what
 * it took, and exit 0. Then a read_committed consumer must find every message
 * that got a positive ACK exactly once. Messages not acknowledged may or may
 * not be there; after they are resent to a restarted daemon (which rebuilds
 * its ledger from the state topic) every message must be there exactly once.
 *
 * The event topics get a prefix of their own ([topics] prefix), so the
 * consumer reads only this test's events.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "iclient.h"
#include "itest.h"

#define SENDERS 8
#define PIPELINE 4
#define PER_SENDER 4000 /* more than a sender can get through before SIGTERM */

enum { UNSENT, SENT, ACKED, NEGATIVE };

struct sender {
	pthread_t th;
	int port, k;
	const char *tag;
	unsigned char state[PER_SENDER];
	int sent, acked;
	char error[512];
};

static atomic_long g_acked;

static void id_of(char *out, size_t cap, const char *tag, int k, int i)
{
	snprintf(out, cap, "%s-c%d-%d", tag, k, i);
}

/* Send until the connection ends, with up to PIPELINE frames outstanding. */
static void *sender_main(void *arg)
{
	struct sender *s = arg;
	struct icl c;
	char id[200], ack[4096];
	int next = 0, head = 0; /* next to send, oldest unanswered */

	if (icl_connect(&c, s->port, NULL, s->error, sizeof s->error) != 0)
		return NULL;
	for (;;) {
		while (next < PER_SENDER && next - head < PIPELINE) {
			id_of(id, sizeof id, s->tag, s->k, next);
			char *m = icl_adt(id);
			int rc = icl_send(&c, m, strlen(m));
			free(m);
			if (rc != 0)
				goto out;
			s->state[next++] = SENT;
			s->sent++;
		}
		if (head == next)
			break;
		int r = icl_read_ack(&c, ack, sizeof ack, 30000);
		if (r < 0) {
			if (r == -2)
				snprintf(s->error, sizeof s->error, "no ACK within 30 s");
			break;
		}
		id_of(id, sizeof id, s->tag, s->k, head);
		if (icl_ack_ok(ack, id)) {
			s->state[head] = ACKED;
			s->acked++;
			atomic_fetch_add(&g_acked, 1);
		} else {
			s->state[head] = NEGATIVE;
			snprintf(s->error, sizeof s->error, "not AA for %s: %.200s", id, ack);
		}
		head++;
	}
out:
	icl_close(&c);
	return NULL;
}

/* How often each of our ids appears in the topic (read_committed). */
struct counts {
	int c[SENDERS][PER_SENDER];
	int unknown;
};

static void count_events(const char *topic, const char *tag, struct counts *out)
{
	char **vals;
	int n = itest_consume_all(topic, "read_committed", -1, 4000, &vals);
	size_t tl = strlen(tag);
	memset(out, 0, sizeof *out);
	cr_assert_geq(n, 0);
	for (int i = 0; i < n; i++) {
		const char *p = strstr(vals[i], tag); /* the first mention: data.patientId */
		int k, j;
		if (!p || sscanf(p + tl, "-c%d-%d", &k, &j) != 2 || k < 0 || k >= SENDERS || j < 0 ||
		    j >= PER_SENDER) {
			out->unknown++;
			continue;
		}
		out->c[k][j]++;
	}
	itest_free_values(vals, n);
}

static void write_conf(const char *path, const char *inst, const char *prefix, const char *state)
{
	const char *src = getenv("HB_SRCDIR");
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"[http]\nbind = 127.0.0.1:0\n[bridge]\ninstance = %s\nmappings = %s/mappings\nschemas = %s/conf/schemas\n"
		"shutdown.timeout = 60s\n"
		"[kafka]\nbootstrap.servers = %s\n"
		"[topics]\nprefix = %s\npartitions = 2\nstate = %s\nstate.partitions = 1\n"
		"deadletter = %sdeadletter\n"
		"[publisher]\nlanes = 2\n"
		"[listener plain]\nbind = 127.0.0.1:0\n",
		inst, src, src, itest_bootstrap(), prefix, state, prefix);
	fclose(f);
}

Test(shutdown, sigterm_under_load_exactly_once, .timeout = 240)
{
	static struct sender s[SENDERS];
	static struct counts cnt;
	char inst[128], prefix[160], state[128], conf[256], log[256], topic[256], tag[64];
	int port, status;
	pid_t pid;

	itest_unique_name(inst, sizeof inst, "itest-shut");
	itest_unique_name(state, sizeof state, "itest.sstate");
	itest_unique_name(prefix, sizeof prefix, "itsd");
	strcat(prefix, ".");
	snprintf(tag, sizeof tag, "SD%ld", (long)getpid());
	snprintf(conf, sizeof conf, "/tmp/%s.conf", inst);
	snprintf(log, sizeof log, "/tmp/%s.log", inst);
	snprintf(topic, sizeof topic, "%spatient.created", prefix);
	write_conf(conf, inst, prefix, state);

	pid = itest_daemon_start(conf, log, &port);
	for (int k = 0; k < SENDERS; k++) {
		s[k].port = port;
		s[k].k = k;
		s[k].tag = tag;
		pthread_create(&s[k].th, NULL, sender_main, &s[k]);
	}
	/* Mid-stream: after a few hundred ACKs, with frames in flight everywhere. */
	long long t0 = icl_now_ms();
	while (atomic_load(&g_acked) < 400 && icl_now_ms() - t0 < 60000)
		usleep(10 * 1000);
	cr_assert_geq(atomic_load(&g_acked), 400, "the senders got only %ld ACKs in 60 s (see %s)",
		      atomic_load(&g_acked), log);
	long acked_at_term = atomic_load(&g_acked);
	kill(pid, SIGTERM);
	long long t_term = icl_now_ms();
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	long long t_exit = icl_now_ms();
	for (int k = 0; k < SENDERS; k++)
		pthread_join(s[k].th, NULL);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the daemon did not exit 0 after SIGTERM (status %d; see %s)", status, log);

	int sent = 0, acked = 0, unacked = 0;
	for (int k = 0; k < SENDERS; k++) {
		sent += s[k].sent;
		acked += s[k].acked;
		for (int i = 0; i < PER_SENDER; i++) {
			cr_assert_neq(s[k].state[i], NEGATIVE, "sender %d: %s", k, s[k].error);
			unacked += s[k].state[i] == SENT;
		}
	}
	cr_log_info("exit %lld ms after SIGTERM; sent %d, acknowledged %d (%ld after SIGTERM), "
		    "unacknowledged %d",
		    t_exit - t_term, sent, acked, acked - acked_at_term, unacked);
	/* What was in flight at SIGTERM was committed and acknowledged. */
	cr_assert_gt(acked - acked_at_term, 0, "no ACK after SIGTERM: nothing was drained");

	/* Every acknowledged message is there exactly once, nothing twice. */
	count_events(topic, tag, &cnt);
	int there_unacked = 0;
	cr_assert_eq(cnt.unknown, 0, "%d events of no message of ours", cnt.unknown);
	for (int k = 0; k < SENDERS; k++)
		for (int i = 0; i < PER_SENDER; i++) {
			int c = cnt.c[k][i];
			if (s[k].state[i] == ACKED)
				cr_assert_eq(c, 1, "acknowledged message c%d-%d is there %d times", k, i, c);
			else
				cr_assert_leq(c, 1, "message c%d-%d (%s) is there %d times", k, i,
					      s[k].state[i] == SENT ? "unacknowledged" : "never sent", c);
			if (s[k].state[i] == SENT && c == 1)
				there_unacked++;
			cr_assert(s[k].state[i] != UNSENT || c == 0, "a message never sent is there");
		}
	cr_log_info("%d unacknowledged messages were committed before the exit", there_unacked);

	/* Restart and resend every unacknowledged message, plus some that were
	 * acknowledged: each gets AA, and nothing is published twice. */
	pid = itest_daemon_start(conf, log, &port);
	struct icl c;
	char err[256], id[200], ack[4096];
	int resent = 0;
	cr_assert_eq(icl_connect(&c, port, NULL, err, sizeof err), 0, "%s", err);
	for (int k = 0; k < SENDERS; k++)
		for (int i = 0; i < PER_SENDER; i++) {
			if (s[k].state[i] == UNSENT || (s[k].state[i] == ACKED && i % 10))
				continue;
			id_of(id, sizeof id, tag, k, i);
			char *m = icl_adt(id);
			int r = icl_exchange(&c, m, ack, sizeof ack, 30000);
			free(m);
			cr_assert_gt(r, 0, "resend of %s: no ACK (see %s)", id, log);
			cr_assert(icl_ack_ok(ack, id), "resend of %s: %s", id, ack);
			resent++;
		}
	icl_close(&c);
	cr_assert_eq(itest_daemon_stop(pid), 0, "(see %s)", log);
	count_events(topic, tag, &cnt);
	cr_assert_eq(cnt.unknown, 0);
	for (int k = 0; k < SENDERS; k++)
		for (int i = 0; i < PER_SENDER; i++) {
			int want = s[k].state[i] == UNSENT ? 0 : 1;
			cr_assert_eq(cnt.c[k][i], want, "after the resend, message c%d-%d is there %d times "
				     "(want %d)", k, i, cnt.c[k][i], want);
		}
	cr_log_info("resent %d messages; every one of %d is there exactly once", resent, sent);
	cr_assert_geq(icl_count_in_file(log, "duplicate of a committed message"), 1,
		      "no resend was recognised as a duplicate (see %s)", log);
	unlink(conf);
	unlink(log); /* kept when the test fails */
}

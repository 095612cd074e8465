/*
 * hl7bridge replay against the real broker: the daemon rejects messages a
 * mapping cannot map (dead letters, raw copies); after the mapping is
 * fixed, `replay` publishes them once — a second run, and a run under
 * another consumer group, publish nothing more; a replay killed with -9 in
 * an open transaction and run again publishes every input exactly once; a
 * raw replay with a changed mapping republishes once with --republish and
 * not at all without; --dry-run --diff prints the change and publishes
 * nothing; Ctrl-C stops after the transaction in progress (exit 130) and a
 * rerun resumes, every input once.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

struct rt {
	char inst[96], dir[128], conf[256], log[256], prefix[128];
	char created[256], dlq[128], raw[128], state[128];
};

/* The RDE mapping in three versions: as shipped (PID-3 required), fixed
 * (a fallback patient id) and changed (another metadata.version). */
enum variant { V_SHIPPED, V_FIXED, V_CHANGED, V_CHANGED_AGAIN };

static void write_mapping(const struct rt *t, enum variant v)
{
	char path[512];
	size_t len;
	char *m = itest_sample("mappings/hl7v2/rde_o11.map", &len);
	FILE *f;
	snprintf(path, sizeof path, "%s/maps/rde_o11.map", t->dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, "topic ", 6) == 0)
			continue; /* the configured prefix + type: this test's own topics */
		if (v == V_FIXED && strncmp(line, "data.patientId", 14) == 0)
			line = "data.patientId = PID-3[where .5 = \"MR\"].1 ?? PID-3.1 ?? \"UNKNOWN\" required";
		if (v == V_CHANGED && strncmp(line, "metadata.version", 16) == 0)
			line = "metadata.version = \"2.0.0\"";
		if (v == V_CHANGED_AGAIN && strncmp(line, "metadata.version", 16) == 0)
			line = "metadata.version = \"3.0.0\"";
		fprintf(f, "%s\n", line);
	}
	fclose(f);
	free(m);
}

static void setup(struct rt *t, int raw)
{
	const char *src = getenv("HB_SRCDIR");
	char cmd[1024];
	FILE *f;
	memset(t, 0, sizeof *t);
	itest_unique_name(t->inst, sizeof t->inst, "itest-replay");
	snprintf(t->dir, sizeof t->dir, "/tmp/%s", t->inst);
	snprintf(t->conf, sizeof t->conf, "%s/hl7bridge.conf", t->dir);
	snprintf(t->log, sizeof t->log, "%s/daemon.log", t->dir);
	snprintf(t->prefix, sizeof t->prefix, "%s.", t->inst);
	snprintf(t->created, sizeof t->created, "%sprescription.created", t->prefix);
	snprintf(t->dlq, sizeof t->dlq, "%s.dlq", t->inst);
	snprintf(t->raw, sizeof t->raw, "%s.raw", t->inst);
	snprintf(t->state, sizeof t->state, "%s.state", t->inst);
	snprintf(cmd, sizeof cmd, "mkdir -p %s/maps && cp -r %s/mappings/tables %s/maps/", t->dir, src,
		 t->dir);
	cr_assert_eq(system(cmd), 0);
	write_mapping(t, V_SHIPPED);
	f = fopen(t->conf, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"[bridge]\ninstance = %s\nmappings = %s/maps\nschemas = %s/conf/schemas\n"
		"[kafka]\nbootstrap.servers = %s\n"
		"[topics]\nprefix = %s\nevents = prescription.created, prescription.cancelled\n"
		"partitions = 2\ndeadletter = %s\nstate = %s\nraw = %s\nraw.hl7v2 = %s\n"
		"[publisher]\nlanes = 1\nlinger = 2ms\n"
		"[http]\nbind = 127.0.0.1:0\n"
		"[listener plain]\nbind = 127.0.0.1:0\n",
		t->inst, t->dir, src, itest_bootstrap(), t->prefix, t->dlq, t->state, raw ? "on" : "off",
		t->raw);
	fclose(f);
}

/* Send n RDE messages with MSH-10 = <base>-<i>; without_pid blanks PID-3
 * (the shipped mapping rejects them). Checks MSA-1 against want. */
static void send_msgs_junk(const struct rt *t, const char *base, int n, int without_pid,
			   const char *want, int junk)
{
	size_t len;
	char *sample = itest_sample("samples/hl7v2/rde_o11.hl7", &len);
	char ack[4096], id[128], code[3];
	int port;
	pid_t pid = itest_daemon_start(t->conf, t->log, &port);
	int fd = itest_mllp_connect(port);
	cr_assert_geq(fd, 0);
	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof id, "%s-%d", base, i);
		char *msg = itest_set_msh10(sample, id);
		if (without_pid) {
			char *p3 = strstr(msg, "PID|1||") + 7, *end = strchr(p3, '|');
			memmove(p3, end, strlen(end) + 1);
		}
		cr_assert_gt(itest_mllp_exchange(fd, msg, strlen(msg), ack, sizeof ack), 0);
		itest_msa1(ack, code);
		cr_assert(code[1] == want[1], "MSA-1 %s, expected %s: %s", code, want, ack);
		free(msg);
	}
	if (junk) { /* unreadable: AR, dead-lettered at stage parse */
		const char *j = "this is not HL7";
		cr_assert_gt(itest_mllp_exchange(fd, j, strlen(j), ack, sizeof ack), 0);
		itest_msa1(ack, code);
		cr_assert_str_eq(code, "AR", "%s", ack);
	}
	close(fd);
	cr_assert_eq(itest_daemon_stop(pid), 0, "daemon exit (see %s)", t->log);
	free(sample);
}

static void send_msgs(const struct rt *t, const char *base, int n, int without_pid, const char *want)
{
	send_msgs_junk(t, base, n, without_pid, want, 0);
}

/* Run `hl7bridge replay -c conf ARGS`, stdout to <dir>/<name>.out, stderr
 * to <dir>/<name>.err; returns the exit status. */
static int replay(const struct rt *t, const char *name, const char *args)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "%s/hl7bridge replay -c %s --progress 0 %s >%s/%s.out 2>%s/%s.err",
		 getenv("HB_BUILDDIR"), t->conf, args, t->dir, name, t->dir, name);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const struct rt *t, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", t->dir, name);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	char *buf = calloc(1, 1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int count(const char *topic, const char *needle)
{
	return itest_count_with(topic, needle, 3000);
}

Test(replay, redrive_after_fix_dry_run_and_twice, .timeout = 300)
{
	struct rt t;
	char id[128];
	setup(&t, 0);
	send_msgs_junk(&t, "REJ", 3, 1, "AE", 1);
	send_msgs(&t, "OK", 1, 0, "AA");
	cr_assert_eq(count(t.dlq, "REJ-"), 3, "the rejected messages were not dead-lettered");
	cr_assert_eq(count(t.dlq, "not HL7"), 1, "the unreadable one was not dead-lettered");
	cr_assert_eq(count(t.created, "REJ-"), 0);

	/* before the fix: rejected again for the same reasons, nothing new */
	cr_assert_eq(replay(&t, "unfixed", "--from deadletter --group itest-unfixed"), 0);
	char *uerr = slurp(&t, "unfixed.err");
	cr_assert(strstr(uerr, "published 0 inputs") && strstr(uerr, "same reason 4"), "%s", uerr);
	free(uerr);
	cr_assert_eq(count(t.dlq, "REJ-"), 3, "dead letters written again");
	cr_assert_eq(count(t.dlq, "not HL7"), 1, "the unreadable one written again");

	write_mapping(&t, V_FIXED);
	/* dry run: the diff says they would be accepted; nothing is published */
	cr_assert_eq(replay(&t, "dry", "--from deadletter --dry-run --diff"), 0);
	char *out = slurp(&t, "dry.out"), *err = slurp(&t, "dry.err");
	cr_assert(strstr(out, "\"change\":\"newly_accepted\"") != NULL, "no diff line: %s", out);
	cr_assert(strstr(out, "\"newly_accepted\":3") != NULL, "summary: %s", out);
	cr_assert(strstr(out, "UNKNOWN") == NULL, "a value in the diff without --values: %s", out);
	cr_assert(strstr(err, "would publish 3 inputs") != NULL, "%s", err);
	free(out);
	free(err);
	cr_assert_eq(replay(&t, "dryv", "--from deadletter --dry-run --diff --values"), 0);
	out = slurp(&t, "dryv.out");
	cr_assert(strstr(out, "UNKNOWN") != NULL, "--values shows no values: %s", out);
	free(out);
	cr_assert_eq(count(t.created, "REJ-"), 0, "the dry run published");

	/* the redrive: each rejected message published once */
	cr_assert_eq(replay(&t, "run1", "--from deadletter"), 0);
	err = slurp(&t, "run1.err");
	cr_assert(strstr(err, "published 3 inputs") != NULL, "%s", err);
	free(err);
	for (int i = 0; i < 3; i++) {
		snprintf(id, sizeof id, "\"REJ-%d\"", i);
		cr_assert_eq(count(t.created, id), 1, "%s published %d times", id, count(t.created, id));
	}
	/* again (the group's offsets), and under another group (the ledger) */
	cr_assert_eq(replay(&t, "run2", "--from deadletter"), 0);
	cr_assert_eq(replay(&t, "run3", "--from deadletter --group itest-other"), 0);
	err = slurp(&t, "run3.err");
	cr_assert(strstr(err, "3 replayed before") != NULL, "%s", err);
	free(err);
	cr_assert_eq(count(t.created, "REJ-"), 3, "a rerun republished");
	cr_assert_eq(count(t.created, "OK-"), 1);
	/* like any other event: the quick start's PrescriptionEvent */
	char **vals = NULL;
	int n = itest_consume_all(t.created, "read_committed", 4, 5000, &vals);
	cr_assert_eq(n, 4);
	for (int i = 0; i < n; i++)
		cr_assert(strstr(vals[i], "\"eventType\":\"prescription.created\"") &&
			  strstr(vals[i], "\"eventId\":"), "%s", vals[i]);
	itest_free_values(vals, n);
}

Test(replay, kill9_mid_replay_then_rerun, .timeout = 300)
{
	struct rt t;
	char id[128], bin[512], args[1024];
	const int N = 8;
	setup(&t, 0);
	send_msgs(&t, "K", N, 1, "AE");
	write_mapping(&t, V_FIXED);

	/* a replay that stops dead in its third transaction (records produced,
	 * offsets not yet sent): killed with -9 there */
	snprintf(bin, sizeof bin, "%s/hl7bridge", getenv("HB_BUILDDIR"));
	snprintf(args, sizeof args, "%s/kill.err", t.dir);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		/* a failed assertion ends the test: the replay must not outlive it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setenv("HL7BRIDGE_TEST_REPLAY_PAUSE_AFTER", "2", 1);
		if (!freopen(args, "w", stderr) || !freopen("/dev/null", "w", stdout))
			_exit(127);
		execl(bin, bin, "replay", "-c", t.conf, "--from", "deadletter", "--batch", "1",
		      "--progress", "0", (char *)NULL);
		_exit(127);
	}
	int paused = 0;
	for (int i = 0; i < 240 && !paused; i++) {
		if (access(args, R_OK) == 0) {
			char *e = slurp(&t, "kill.err");
			paused = strstr(e, "PAUSED") != NULL;
			free(e);
		}
		if (!paused)
			usleep(250 * 1000);
	}
	cr_assert(paused, "the replay never reached its third transaction");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	int before = count(t.created, "\"K-");
	cr_assert_eq(before, 2, "committed before the kill: %d (2 expected)", before);

	cr_assert_eq(replay(&t, "rerun", "--from deadletter --batch 3"), 0);
	char *err = slurp(&t, "rerun.err");
	cr_assert(strstr(err, "resumes at offset") != NULL, "did not resume: %s", err);
	free(err);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof id, "\"K-%d\"", i);
		cr_assert_eq(count(t.created, id), 1, "%s published %d times", id, count(t.created, id));
	}
}

Test(replay, raw_with_changed_mapping, .timeout = 300)
{
	struct rt t;
	setup(&t, 1);
	send_msgs(&t, "RAW", 2, 0, "AA");
	cr_assert_eq(count(t.raw, "RAW-"), 2, "no raw copies");
	write_mapping(&t, V_CHANGED);

	/* the diff names the changed path, and the dry run publishes nothing */
	cr_assert_eq(replay(&t, "dry", "--from raw-hl7v2 --dry-run --diff"), 0);
	char *out = slurp(&t, "dry.out");
	cr_assert(strstr(out, "\"change\":\"changed\"") != NULL, "%s", out);
	cr_assert(strstr(out, "metadata.version") != NULL, "%s", out);
	cr_assert(strstr(out, "\"changed\":2") != NULL, "%s", out);
	free(out);

	/* published already: without --republish nothing happens */
	cr_assert_eq(replay(&t, "plain", "--from raw-hl7v2"), 0);
	cr_assert_eq(count(t.created, "RAW-"), 2);
	char *err = slurp(&t, "plain.err");
	cr_assert(strstr(err, "2 published before") != NULL, "%s", err);
	free(err);

	/* --republish: once with the new mapping, and once only */
	cr_assert_eq(replay(&t, "re1", "--from raw-hl7v2 --republish"), 0);
	cr_assert_eq(replay(&t, "re2", "--from raw-hl7v2 --republish --group itest-again"), 0);
	cr_assert_eq(count(t.created, "RAW-"), 4);
	cr_assert_eq(count(t.created, "\"2.0.0\""), 2, "the new mapping's events");

	/* another change: the same command republishes once more */
	write_mapping(&t, V_CHANGED_AGAIN);
	cr_assert_eq(replay(&t, "re3", "--from raw-hl7v2 --republish"), 0);
	cr_assert_eq(replay(&t, "re4", "--from raw-hl7v2 --republish"), 0);
	cr_assert_eq(count(t.created, "RAW-"), 6);
	cr_assert_eq(count(t.created, "\"3.0.0\""), 2, "the third mapping's events");
}

Test(replay, ctrl_c_stops_after_the_transaction_and_a_rerun_resumes, .timeout = 300)
{
	struct rt t;
	char id[128], bin[512], errp[512];
	const int N = 8;
	setup(&t, 0);
	send_msgs(&t, "C", N, 1, "AE");
	write_mapping(&t, V_FIXED);

	/* one input per transaction, each held 400 ms: Ctrl-C comes mid-way */
	snprintf(bin, sizeof bin, "%s/hl7bridge", getenv("HB_BUILDDIR"));
	snprintf(errp, sizeof errp, "%s/int.err", t.dir);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setenv("HL7BRIDGE_TEST_REPLAY_SLOW_MS", "400", 1);
		if (!freopen(errp, "w", stderr) || !freopen("/dev/null", "w", stdout))
			_exit(127);
		execl(bin, bin, "replay", "-c", t.conf, "--from", "deadletter", "--batch", "1",
		      "--progress", "0", (char *)NULL);
		_exit(127);
	}
	int seen = 0;
	for (int i = 0; i < 200 && seen < 2; i++) {
		seen = itest_count_with(t.created, "\"C-", 200);
		if (seen < 2)
			usleep(100 * 1000);
	}
	cr_assert_geq(seen, 2, "the replay published nothing");
	kill(pid, SIGINT);
	int st = 0;
	waitpid(pid, &st, 0);
	char *err = slurp(&t, "int.err");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "exit %d: %s", st, err);
	cr_assert(strstr(err, "replay interrupted") && strstr(err, "run the same command again"), "%s", err);
	free(err);
	int mid = count(t.created, "\"C-");
	cr_assert(mid >= 2 && mid < N, "%d published before the rerun", mid);

	cr_assert_eq(replay(&t, "resume", "--from deadletter --batch 1"), 0);
	err = slurp(&t, "resume.err");
	cr_assert(strstr(err, "resumes at offset") != NULL, "did not resume: %s", err);
	free(err);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof id, "\"C-%d\"", i);
		cr_assert_eq(count(t.created, id), 1, "%s published %d times", id, count(t.created, id));
	}
}


/*
 * The daemon end to end against the real broker: an RDE^O11 over MLLP is
 * acknowledged only after its events are committed; a resend is answered
 * again without republishing, also after a restart (the ledger is rebuilt
 * from the state topic); a message a mapping rejects gets AE with an ERR
 * segment and is dead-lettered; an unreadable one gets AR; SIGTERM exits 0.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"

static char conf_path[256], log_path[256], state[128], dlq[128], inst[128];

static void write_conf(void)
{
	const char *src = getenv("HB_SRCDIR");
	FILE *f;
	itest_unique_name(inst, sizeof inst, "itest-daemon");
	itest_unique_name(state, sizeof state, "itest.dstate");
	itest_unique_name(dlq, sizeof dlq, "itest.ddlq");
	snprintf(conf_path, sizeof conf_path, "/tmp/%s.conf", inst);
	snprintf(log_path, sizeof log_path, "/tmp/%s.log", inst);
	f = fopen(conf_path, "w");
	fprintf(f,
		"[http]\nbind = 127.0.0.1:0\n[bridge]\ninstance = %s\nmappings = %s/mappings\nschemas = %s/conf/schemas\n"
		"log.level = debug\n"
		"[kafka]\nbootstrap.servers = %s\n"
		"[topics]\npartitions = 3\ndeadletter = %s\nstate = %s\n"
		"[publisher]\nlanes = 2\nlinger = 2ms\n"
		"[listener plain]\nbind = 127.0.0.1:0\n",
		inst, src, src, itest_bootstrap(), dlq, state);
	fclose(f);
}

static int count_with(const char *topic, const char *needle)
{
	return itest_count_with(topic, needle, 3000);
}

static void exchange(int fd, const char *msg, char *ack, size_t cap, const char *want1,
		     const char *want2)
{
	char code[3];
	cr_assert_gt(itest_mllp_exchange(fd, msg, strlen(msg), ack, cap), 0, "no ACK (see %s)", log_path);
	itest_msa1(ack, code);
	cr_assert(strcmp(code, want1) == 0 || strcmp(code, want2) == 0,
		  "MSA-1 is '%s', expected %s or %s; ACK: %s", code, want1, want2, ack);
}

Test(daemon, ack_after_commit_dedup_reject_restart, .timeout = 240)
{
	char id[64], ack[4096];
	int port, fd;
	size_t len;
	pid_t pid;

	write_conf();
	itest_unique_name(id, sizeof id, "RDE");
	char *sample = itest_sample("samples/hl7v2/rde_o11.hl7", &len);
	char *msg = itest_set_msh10(sample, id);

	pid = itest_daemon_start(conf_path, log_path, &port);
	fd = itest_mllp_connect(port);
	cr_assert_geq(fd, 0);

	/* Accepted only once committed: a read_committed consumer sees the
	 * events as soon as the ACK is back. */
	exchange(fd, msg, ack, sizeof ack, "AA", "CA");
	cr_assert(strstr(ack, id) != NULL, "MSA-2 does not echo MSH-10: %s", ack);
	int created = count_with("healthcare.prescription.created", id);
	int cancelled = count_with("healthcare.prescription.cancelled", id);
	cr_assert_eq(created, 1, "prescription.created events: %d", created);
	cr_assert_eq(cancelled, 1, "prescription.cancelled events: %d", cancelled);

	/* The same message again: same answer, nothing republished. */
	exchange(fd, msg, ack, sizeof ack, "AA", "CA");
	cr_assert_eq(count_with("healthcare.prescription.created", id), 1, "republished a duplicate");

	/* The same new message on two connections at once: the second arrives
	 * while the first is in flight and joins it; both are acknowledged, one
	 * event is published. */
	{
		char jid[64], ack2[4096], c1[3], c2[3];
		itest_unique_name(jid, sizeof jid, "JOIN");
		char *jm = itest_set_msh10(sample, jid);
		size_t jl = strlen(jm);
		char *frame = malloc(jl + 3);
		frame[0] = 0x0b;
		memcpy(frame + 1, jm, jl);
		frame[jl + 1] = 0x1c;
		frame[jl + 2] = 0x0d;
		int fd2 = itest_mllp_connect(port);
		cr_assert_geq(fd2, 0);
		cr_assert_eq(write(fd, frame, jl + 3), (ssize_t)(jl + 3));
		cr_assert_eq(write(fd2, frame, jl + 3), (ssize_t)(jl + 3));
		/* read both replies: an empty message makes exchange only read */
		cr_assert_gt(itest_mllp_read(fd, ack, sizeof ack), 0);
		cr_assert_gt(itest_mllp_read(fd2, ack2, sizeof ack2), 0);
		itest_msa1(ack, c1);
		itest_msa1(ack2, c2);
		cr_assert(c1[1] == 'A' && c2[1] == 'A', "MSA-1 %s and %s", c1, c2);
		cr_assert_eq(count_with("healthcare.prescription.created", jid), 1,
			     "the concurrent resend was published twice");
		close(fd2);
		free(frame);
		free(jm);
	}

	/* A mapping rejects it (no patient id): AE/CE with ERR, dead-lettered. */
	char rid[64];
	itest_unique_name(rid, sizeof rid, "REJ");
	char *bad0 = itest_set_msh10(sample, rid);
	char *pid_seg = strstr(bad0, "PID|1||");
	cr_assert_not_null(pid_seg);
	/* blank PID-3 (the patient identifiers) */
	char *p3 = pid_seg + 7, *p3end = strchr(p3, '|');
	memmove(p3, p3end, strlen(p3end) + 1);
	exchange(fd, bad0, ack, sizeof ack, "AE", "CE");
	cr_assert(strstr(ack, "ERR|") != NULL, "no ERR segment: %s", ack);
	cr_assert(strstr(ack, "data.patientId") != NULL, "the reason does not name the target: %s", ack);
	cr_assert(strstr(ack, "Testpatient") == NULL, "patient data in the ACK");
	cr_assert_eq(count_with(dlq, rid), 1, "not dead-lettered");

	/* Unreadable: AR. */
	const char *junk = "this is not HL7";
	cr_assert_gt(itest_mllp_exchange(fd, junk, strlen(junk), ack, sizeof ack), 0);
	char code[3];
	itest_msa1(ack, code);
	cr_assert_str_eq(code, "AR", "ACK: %s", ack);
	close(fd);

	cr_assert_eq(itest_daemon_stop(pid), 0, "SIGTERM did not exit 0 (see %s)", log_path);

	/* Restart: the ledger comes back from the state topic. */
	pid = itest_daemon_start(conf_path, log_path, &port);
	fd = itest_mllp_connect(port);
	exchange(fd, msg, ack, sizeof ack, "AA", "CA");
	cr_assert_eq(count_with("healthcare.prescription.created", id), 1,
		     "republished after a restart");
	close(fd);
	cr_assert_eq(itest_daemon_stop(pid), 0);

	/* No patient data in the logs. */
	size_t ll;
	FILE *lf = fopen(log_path, "r");
	char *logtext = calloc(1, 1 << 22);
	ll = fread(logtext, 1, (1 << 22) - 1, lf);
	fclose(lf);
	logtext[ll] = '\0';
	cr_assert(strstr(logtext, "Testpatient") == NULL, "patient name in the log");
	cr_assert(strstr(logtext, "19800102") == NULL, "birth date in the log");
	cr_assert(strstr(logtext, "Atorvastatin") == NULL, "medication in the log");
	free(logtext);
	free(msg);
	free(bad0);
	free(sample);
	unlink(conf_path);
}

/* [topics] raw = on: every input, as received, on the raw topic, in the same
 * transaction as its events. */
Test(daemon, raw_copies, .timeout = 120)
{
	const char *src = getenv("HB_SRCDIR");
	char id[64], ack[4096], raw[128], conf[256], log[256], rinst[128], st[128];
	size_t len;
	int port;
	FILE *f;

	itest_unique_name(rinst, sizeof rinst, "itest-raw");
	itest_unique_name(raw, sizeof raw, "itest.raw");
	itest_unique_name(st, sizeof st, "itest.rstate");
	snprintf(conf, sizeof conf, "/tmp/%s.conf", rinst);
	snprintf(log, sizeof log, "/tmp/%s.log", rinst);
	f = fopen(conf, "w");
	fprintf(f,
		"[http]\nbind = 127.0.0.1:0\n[bridge]\ninstance = %s\nmappings = %s/mappings\n"
		"schemas = %s/conf/schemas\n[kafka]\nbootstrap.servers = %s\n"
		"[topics]\npartitions = 3\nstate = %s\nraw = on\nraw.hl7v2 = %s\n"
		"[listener plain]\nbind = 127.0.0.1:0\n",
		rinst, src, src, itest_bootstrap(), st, raw);
	fclose(f);
	itest_unique_name(id, sizeof id, "RAW");
	char *sample = itest_sample("samples/hl7v2/adt_a08.hl7", &len);
	char *msg = itest_set_msh10(sample, id);
	pid_t pid = itest_daemon_start(conf, log, &port);
	int fd = itest_mllp_connect(port);
	cr_assert_gt(itest_mllp_exchange(fd, msg, strlen(msg), ack, sizeof ack), 0);
	close(fd);
	cr_assert_eq(itest_daemon_stop(pid), 0);
	char **vals;
	int n = itest_consume_all(raw, "read_committed", 1, 5000, &vals);
	cr_assert_eq(n, 1, "raw copies: %d", n);
	cr_assert_str_eq(vals[0], msg, "the raw copy differs from what was sent");
	itest_free_values(vals, n);
	free(msg);
	free(sample);
	unlink(conf);
}

/*
 * File drops against the real broker: every input format, a file with bad
 * messages (good ones published, bad ones dead-lettered and reported), a
 * re-dropped file publishing nothing, incomplete files left alone, and
 * kill -9 at random points while several files are in progress.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"

struct env {
	char dir[256], conf[300], log[300], state[128], dlq[128], inst[128], run[64];
};

static void setup(struct env *e, const char *extra)
{
	const char *src = getenv("HB_SRCDIR");
	FILE *f;
	itest_unique_name(e->inst, sizeof e->inst, "itest-drop");
	itest_unique_name(e->state, sizeof e->state, "itest.fstate");
	itest_unique_name(e->dlq, sizeof e->dlq, "itest.fdlq");
	snprintf(e->run, sizeof e->run, "R%ld%d", (long)time(NULL) % 100000, getpid() % 1000);
	snprintf(e->dir, sizeof e->dir, "/tmp/%s", e->inst);
	snprintf(e->conf, sizeof e->conf, "%s.conf", e->dir);
	snprintf(e->log, sizeof e->log, "%s.log", e->dir);
	f = fopen(e->conf, "w");
	fprintf(f,
		"[http]\nbind = 127.0.0.1:0\n[bridge]\ninstance = %s\nmappings = %s/mappings\nschemas = %s/conf/schemas\n"
		"[kafka]\nbootstrap.servers = %s\n"
		"[topics]\npartitions = 3\ndeadletter = %s\nstate = %s\n"
		"[publisher]\nlanes = 2\nlinger = 2ms\n"
		"[drop main]\npath = %s\nquiet.period = 1s\nrescan = 1s\nmax.messages.per.transaction = 200\n"
		"threads = 3\n%s",
		e->inst, src, src, itest_bootstrap(), e->dlq, e->state, e->dir, extra ? extra : "");
	fclose(f);
}

static void drop_file(struct env *e, const char *name, const void *buf, size_t len)
{
	char tmp[600], to[600];
	snprintf(tmp, sizeof tmp, "%s/inbox", e->dir);
	mkdir(e->dir, 0755);
	mkdir(tmp, 0755); /* the daemon creates it too; a drop may come first */
	snprintf(tmp, sizeof tmp, "%s/inbox/.%s.part", e->dir, name);
	snprintf(to, sizeof to, "%s/inbox/%s", e->dir, name);
	FILE *f = fopen(tmp, "wb");
	cr_assert_not_null(f, "%s", tmp);
	fwrite(buf, 1, len, f);
	fclose(f);
	cr_assert_eq(rename(tmp, to), 0);
}

static int exists(struct env *e, const char *sub, const char *name)
{
	char p[700];
	snprintf(p, sizeof p, "%s/%s/%s", e->dir, sub, name);
	return access(p, F_OK) == 0;
}

static int wait_in(struct env *e, const char *sub, const char *name, int secs)
{
	for (int i = 0; i < secs * 10; i++) {
		if (exists(e, sub, name))
			return 1;
		usleep(100000);
	}
	return 0;
}

/* n ADT^A08 messages (each publishes one patient.updated event) with MSH-10
 * <prefix><i>, joined by sep; the indexes in bad[] lose PID-3 (a mapping
 * rejects them). */
static char *adt_batch(const char *prefix, int n, const char *sep, const int *bad, int nbad,
		       size_t *len)
{
	size_t sl;
	char *sample = itest_sample("samples/hl7v2/adt_a08.hl7", &sl);
	size_t cap = (size_t)n * (sl + 64) + 16, o = 0;
	char *out = malloc(cap);
	for (int i = 0; i < n; i++) {
		char id[64];
		snprintf(id, sizeof id, "%s%06d", prefix, i);
		char *m = itest_set_msh10(sample, id);
		for (int b = 0; b < nbad; b++) {
			if (bad[b] != i)
				continue;
			char *p3 = strstr(m, "\rPID|");
			cr_assert_not_null(p3);
			p3 += 5;
			for (int k = 0; k < 2; k++)
				p3 = strchr(p3, '|') + 1; /* now at PID-3 */
			char *end = strchr(p3, '|');
			memmove(p3, end, strlen(end) + 1);
		}
		size_t ml = strlen(m);
		memcpy(out + o, m, ml);
		o += ml;
		o += (size_t)sprintf(out + o, "%s", sep);
		free(m);
	}
	free(sample);
	*len = o;
	return out;
}

static json_t *report(struct env *e, const char *name)
{
	char p[700];
	snprintf(p, sizeof p, "%s/done/%s.errors.json", e->dir, name);
	return json_load_file(p, 0, NULL);
}

Test(filedrop, thousand_with_three_bad_then_the_same_again, .timeout = 180)
{
	struct env e;
	int bad[] = { 7, 500, 993 };
	size_t len;
	int port;
	char prefix[80];

	setup(&e, NULL);
	pid_t pid = itest_daemon_start(e.conf, e.log, &port);
	snprintf(prefix, sizeof prefix, "%sA", e.run);
	char *batch = adt_batch(prefix, 1000, "\r\n", bad, 3, &len);
	drop_file(&e, "adt1000.hl7", batch, len);
	cr_assert(wait_in(&e, "done", "adt1000.hl7", 60), "not in done/ (log %s)", e.log);

	json_t *r = report(&e, "adt1000.hl7");
	cr_assert_not_null(r, "no report beside the file");
	json_t *errs = json_object_get(r, "errors");
	cr_assert_eq(json_array_size(errs), 3);
	for (int i = 0; i < 3; i++) {
		json_t *x = json_array_get(errs, (size_t)i);
		cr_assert_eq(json_integer_value(json_object_get(x, "index")), bad[i]);
		cr_assert_eq(json_integer_value(json_object_get(x, "code")), 101);
		cr_assert_gt(json_integer_value(json_object_get(x, "offset")), 0);
		cr_assert(strstr(json_string_value(json_object_get(x, "reason")), "data.patientId"));
	}
	cr_assert_eq(json_integer_value(json_object_get(r, "published")), 997);
	json_decref(r);
	cr_assert_eq(itest_count_with("healthcare.patient.updated", prefix, 4000), 997);
	cr_assert_eq(itest_count_with(e.dlq, prefix, 3000), 3);

	/* the same bytes under another name: done/ with a note, nothing published */
	drop_file(&e, "again.hl7", batch, len);
	cr_assert(wait_in(&e, "done", "again.hl7.note.json", 30), "no note for the duplicate");
	cr_assert_eq(itest_count_with("healthcare.patient.updated", prefix, 3000), 997,
		     "the duplicate file was published again");
	cr_assert_eq(itest_daemon_stop(pid), 0);
	free(batch);
}

Test(filedrop, every_format, .timeout = 180)
{
	struct env e;
	size_t len;
	int port;
	char p[80];

	setup(&e, NULL);
	pid_t pid = itest_daemon_start(e.conf, e.log, &port);
	const char *seps[] = { "\r", "\n", "\r\n" };
	const char *names[] = { "cr.hl7", "lf.hl7", "crlf.hl7" };
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%sS%d", e.run, i);
		char *b = adt_batch(p, 50, seps[i], NULL, 0, &len);
		drop_file(&e, names[i], b, len);
		free(b);
	}
	/* FHS/BHS envelope */
	snprintf(p, sizeof p, "%sB", e.run);
	char *b = adt_batch(p, 20, "\r", NULL, 0, &len);
	char *env = malloc(len + 256);
	int n = sprintf(env, "FHS|^~\\&|ADT|HOSP\rBHS|^~\\&|ADT|HOSP\r");
	memcpy(env + n, b, len);
	n += (int)len;
	n += sprintf(env + n, "BTS|20\rFTS|1\r");
	drop_file(&e, "enveloped.hl7", env, (size_t)n);
	free(b);
	free(env);
	/* MLLP-framed dump */
	snprintf(p, sizeof p, "%sM", e.run);
	b = adt_batch(p, 10, "\x1c\r\x0b", NULL, 0, &len);
	char *mllp = malloc(len + 2);
	mllp[0] = 0x0b;
	memcpy(mllp + 1, b, len - 1); /* the last separator's <VT> is dropped */
	drop_file(&e, "dump.mllp", mllp, len);
	free(b);
	free(mllp);
	/* FHIR: a Bundle (JSON), a resource (XML), NDJSON */
	size_t fl;
	char *fb = itest_sample("samples/fhir/bundle.json", &fl);
	drop_file(&e, "bundle.json", fb, fl);
	free(fb);
	fb = itest_sample("samples/fhir/patient_xml.xml", &fl);
	drop_file(&e, "patient.xml", fb, fl);
	free(fb);
	fb = itest_sample("samples/fhir/patients.ndjson", &fl);
	drop_file(&e, "patients.ndjson", fb, fl);
	free(fb);

	const char *all[] = { "cr.hl7",	    "lf.hl7",	   "crlf.hl7",	     "enveloped.hl7",
			      "dump.mllp", "bundle.json", "patient.xml", "patients.ndjson" };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		cr_expect(wait_in(&e, "done", all[i], 60), "%s not in done/ (log %s)", all[i], e.log);
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%sS%d", e.run, i);
		cr_expect_eq(itest_count_with("healthcare.patient.updated", p, 3000), 50, "%s", names[i]);
	}
	snprintf(p, sizeof p, "%sB", e.run);
	cr_expect_eq(itest_count_with("healthcare.patient.updated", p, 3000), 20, "enveloped");
	snprintf(p, sizeof p, "%sM", e.run);
	cr_expect_eq(itest_count_with("healthcare.patient.updated", p, 3000), 10, "MLLP dump");
	cr_assert_eq(itest_daemon_stop(pid), 0);
}

Test(filedrop, incomplete_and_ignored_files, .timeout = 120)
{
	struct env e;
	size_t len;
	int port;
	char p[80], path[700];

	setup(&e, NULL);
	pid_t pid = itest_daemon_start(e.conf, e.log, &port);
	snprintf(p, sizeof p, "%sW", e.run);
	char *b = adt_batch(p, 40, "\r", NULL, 0, &len);
	/* ignored names */
	snprintf(path, sizeof path, "%s/inbox/.hidden.hl7", e.dir);
	FILE *f = fopen(path, "wb");
	fwrite(b, 1, len, f);
	fclose(f);
	snprintf(path, sizeof path, "%s/inbox/upload.tmp", e.dir);
	f = fopen(path, "wb");
	fwrite(b, 1, len, f);
	fclose(f);
	/* a slow writer, no rename: 4 chunks 1.5 s apart (longer than the quiet
	 * period), the file open all along */
	snprintf(path, sizeof path, "%s/inbox/slow.hl7", e.dir);
	f = fopen(path, "wb");
	for (int i = 0; i < 4; i++) {
		fwrite(b + (size_t)i * len / 4, 1, (i == 3 ? len : (size_t)(i + 1) * len / 4) - (size_t)i * len / 4, f);
		fflush(f);
		sleep(2);
		cr_assert(exists(&e, "inbox", "slow.hl7"), "taken while still being written");
	}
	fclose(f);
	cr_assert(wait_in(&e, "done", "slow.hl7", 30), "the completed file was not taken");
	cr_assert_eq(itest_count_with("healthcare.patient.updated", p, 3000), 40);
	cr_assert(exists(&e, "inbox", ".hidden.hl7"), "a dotfile was taken");
	cr_assert(exists(&e, "inbox", "upload.tmp"), "a .tmp file was taken");
	cr_assert_eq(itest_daemon_stop(pid), 0);
	free(b);
}

Test(filedrop, kill_nine_twenty_times, .timeout = 600)
{
	struct env e;
	const int files = 4, per = 1500;
	char names[4][32], prefix[4][100];
	size_t len;
	int port;
	unsigned seed = (unsigned)time(NULL);

	setup(&e, NULL);
	srand(seed);
	for (int i = 0; i < files; i++) {
		snprintf(names[i], sizeof names[i], "k%d.hl7", i);
		snprintf(prefix[i], sizeof prefix[i], "%sK%d-", e.run, i);
		char *b = adt_batch(prefix[i], per, "\r", NULL, 0, &len);
		drop_file(&e, names[i], b, len);
		free(b);
	}
	for (int round = 0; round < 20; round++) {
		pid_t pid = itest_daemon_start(e.conf, e.log, &port);
		usleep((useconds_t)(100000 + rand() % 900000)); /* 0.1 - 1 s */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	pid_t pid = itest_daemon_start(e.conf, e.log, &port);
	for (int i = 0; i < files; i++)
		cr_assert(wait_in(&e, "done", names[i], 120), "%s not in done/ (seed %u, log %s)",
			  names[i], seed, e.log);
	cr_assert_eq(itest_daemon_stop(pid), 0);
	/* every message exactly once for a read_committed consumer */
	char **vals;
	int n = itest_consume_all("healthcare.patient.updated", "read_committed", -1, 4000, &vals);
	for (int f = 0; f < files; f++) {
		char *seen = calloc((size_t)per, 1);
		int got = 0, dups = 0;
		for (int i = 0; i < n; i++) {
			char *at = strstr(vals[i], prefix[f]);
			if (!at)
				continue;
			int k = atoi(at + strlen(prefix[f]));
			cr_assert(k >= 0 && k < per);
			dups += seen[k];
			seen[k] = 1;
			got++;
		}
		free(seen);
		cr_expect_eq(dups, 0, "%s: %d duplicates (seed %u)", names[f], dups, seed);
		cr_expect_eq(got - dups, per, "%s: %d of %d (seed %u)", names[f], got - dups, per, seed);
	}
	itest_free_values(vals, n);
}

/* A 100 MB HL7 batch and a 100,000-line NDJSON export, end to end. */
Test(filedrop, hundred_megabytes_and_hundred_thousand_lines, .timeout = 900)
{
	struct env e;
	size_t len;
	int port;
	char prefix[80], nprefix[80];

	setup(&e, NULL);
	pid_t pid = itest_daemon_start(e.conf, e.log, &port);

	snprintf(prefix, sizeof prefix, "%sG", e.run);
	size_t one;
	char *probe = adt_batch(prefix, 1, "\r\n", NULL, 0, &one);
	free(probe);
	int n = (int)((100u << 20) / one) + 1;
	char *big = adt_batch(prefix, n, "\r\n", NULL, 0, &len);
	cr_assert_geq(len, 100u << 20);
	drop_file(&e, "big.hl7", big, len);
	free(big);

	snprintf(nprefix, sizeof nprefix, "%sN", e.run);
	size_t cap = 100000u * 200, o = 0;
	char *nd = malloc(cap);
	for (int i = 0; i < 100000; i++)
		o += (size_t)snprintf(nd + o, cap - o,
				      "{\"resourceType\":\"Patient\",\"id\":\"p%d\",\"meta\":{\"versionId\":\"1\"},"
				      "\"identifier\":[{\"type\":{\"coding\":[{\"code\":\"MR\"}]},\"value\":\"%s%06d\"}],"
				      "\"gender\":\"%s\"}\n",
				      i, nprefix, i, i % 2 ? "male" : "female");
	drop_file(&e, "export.ndjson", nd, o);
	free(nd);

	cr_assert(wait_in(&e, "done", "big.hl7", 600), "big.hl7 not in done/ (log %s)", e.log);
	cr_assert(wait_in(&e, "done", "export.ndjson", 300), "export.ndjson not in done/ (log %s)", e.log);
	cr_assert_not(exists(&e, "done", "big.hl7.errors.json"));
	cr_assert_not(exists(&e, "done", "export.ndjson.errors.json"));
	cr_assert_eq(itest_daemon_stop(pid), 0);
	int got = itest_count_with("healthcare.patient.updated", prefix, 5000);
	cr_assert_eq(got, n, "big.hl7: %d of %d events", got, n);
	got = itest_count_with("healthcare.patient.created", nprefix, 5000);
	cr_assert_eq(got, 100000, "export.ndjson: %d of 100000 events", got);
	/* the log says how fast */
	char cmd[600];
	snprintf(cmd, sizeof cmd, "grep -E 'big.hl7 done|export.ndjson done' %s >&2", e.log);
	(void)!system(cmd);
}

/* The same HL7v2 messages over MLLP, as an LF file, a CRLF file and a CR
 * batch: one key per message whatever its line endings, so every message is
 * published once, a file's messages published before are skipped (a note
 * says so), and an MLLP resend of a file's message is answered from the
 * ledger. */
Test(filedrop, same_message_every_path, .timeout = 180)
{
	struct env e;
	size_t len;
	int port;
	char p[80], ack[512];

	setup(&e, "[listener plain]\nbind = 127.0.0.1:0\n");
	pid_t pid = itest_daemon_start(e.conf, e.log, &port);
	cr_assert_gt(port, 0);
	snprintf(p, sizeof p, "%sX", e.run);
	/* messages 0..9 over MLLP first */
	char *cr = adt_batch(p, 20, "\r", NULL, 0, &len);
	int fd = itest_mllp_connect(port);
	cr_assert_geq(fd, 0);
	const char *m = cr;
	for (int i = 0; i < 10; i++) {
		const char *next = strstr(m + 3, "MSH|");
		cr_assert_gt(itest_mllp_exchange(fd, m, (size_t)(next - m), ack, sizeof ack), 0);
		cr_assert(strstr(ack, "MSA|AA|"), "MLLP message %d: %s", i, ack);
		m = next;
	}
	/* all 20 as an LF file: the first 10 are skipped */
	char *lf = adt_batch(p, 20, "\n", NULL, 0, &len);
	drop_file(&e, "lf.hl7", lf, len);
	cr_assert(wait_in(&e, "done", "lf.hl7.note.json", 60), "no note for lf.hl7 (log %s)", e.log);
	char np[700];
	snprintf(np, sizeof np, "%s/done/lf.hl7.note.json", e.dir);
	json_t *note = json_load_file(np, 0, NULL);
	cr_assert_not_null(note);
	cr_assert_eq(json_integer_value(json_object_get(note, "duplicates")), 10);
	cr_assert_eq(json_integer_value(json_object_get(note, "published")), 10);
	json_decref(note);
	/* a CRLF file and a CR batch of the same messages: nothing new */
	char *crlf = adt_batch(p, 20, "\r\n", NULL, 0, &len);
	drop_file(&e, "crlf.hl7", crlf, len);
	cr_assert(wait_in(&e, "done", "crlf.hl7.note.json", 60), "no note for crlf.hl7");
	size_t crlen = strlen(cr);
	drop_file(&e, "cr.hl7", cr, crlen);
	cr_assert(wait_in(&e, "done", "cr.hl7.note.json", 60), "no note for cr.hl7");
	/* message 15 (published from lf.hl7) resent over MLLP: answered, not
	 * published again */
	m = cr;
	for (int i = 0; i < 15; i++)
		m = strstr(m + 3, "MSH|");
	const char *next = strstr(m + 3, "MSH|");
	cr_assert_gt(itest_mllp_exchange(fd, m, (size_t)(next - m), ack, sizeof ack), 0);
	cr_assert(strstr(ack, "MSA|AA|"), "%s", ack);
	close(fd);
	cr_assert_eq(itest_count_with("healthcare.patient.updated", p, 4000), 20,
		     "every message once (log %s)", e.log);
	cr_assert_eq(itest_daemon_stop(pid), 0);
	free(cr);
	free(lf);
	free(crlf);
}

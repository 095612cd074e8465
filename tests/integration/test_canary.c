/*
 * No patient data in the daemon's logs, at log.level = debug, against the real
 * broker: every field of every message sent carries the canary "CANARY"
 * (names, addresses, ids, phone numbers, sending application and facility,
 * free text), except MSH-10, the message control id, which is an id the logs
 * may carry. The messages cover every path: accepted, a resend of an accepted
 * one, rejected by a mapping (missing id, unreadable date), unmatched type
 * (rejected), unreadable (not HL7, a bad segment, a field or segment count
 * over the limits), an oversize frame, and junk between frames. After the
 * daemon stopped, its stderr must not contain the canary in any case, and
 * no ACK may carry it outside its MSH segment (which echoes the sender's
 * application and facility back, as HL7 requires).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iclient.h"
#include "itest.h"

#define MAX_FRAME (32 * 1024)

static char g_inst[128];

/* An ADT^A01 with the canary in every field but MSH-10; pid3 and dob are
 * PID-3 and PID-7 (so they can be blanked or made unreadable). */
static char *canary_adt(const char *type, const char *id, const char *pid3, const char *dob)
{
	char *m = malloc(4096);
	snprintf(m, 4096,
		 "MSH|^~\\&|CANARYAPP|CANARYHOSP|CANARYRCV|CANARYFAC|20261127070000|CANARYSEC|%s|%s|P|2.5.1\r"
		 "EVN|A01|20261127070000|||CANARYOPERATOR^Canaryop^Ann\r"
		 "PID|1||%s||Canarysmith^CANARYJANE^Q^JR^DR^^L||%s|F|CANARYALIAS|2106-3^CANARYRACE|"
		 "17 CANARY Street^Apt CANARY^Canaryville^MI^49116^USA^H||"
		 "^PRN^PH^^1^269^CANARY1^^CANARY note~^NET^Internet^canary@example.org|"
		 "^WPN^PH^^1^269^CANARY2||S^CANARYMARITAL||CANARYACCT^^^CANARYHOSP^AN|999-CANARY-99\r"
		 "NK1|1|Canarykin^CANARYKIN|SPO^Spouse|9 CANARY Way^^Canaryville^MI^49116\r"
		 "PV1|1|I|CANARYWARD^101^A|||||CANARYDOC^Canarydoc^Pat\r"
		 "OBX|1|TX|CANARYOBS^Canary note||Patient CANARY reports CANARY symptoms||||||F\r",
		 type, id, pid3, dob);
	return m;
}

static int g_n;

static void unique_id(char *out, size_t cap)
{
	snprintf(out, cap, "PHI-%ld-%d", (long)getpid(), ++g_n);
}

static int contains_canary(const char *s, size_t n)
{
	for (size_t i = 0; i + 6 <= n; i++)
		if (strncasecmp(s + i, "canary", 6) == 0)
			return 1;
	return 0;
}

/* Send one frame, read its ACK; check the ACK carries no canary outside MSH.
 * Returns MSA-1 in code ("" without an ACK). */
static void send_one(struct icl *c, const char *msg, size_t len, char code[3], const char *what)
{
	char ack[8192];
	cr_assert_eq(icl_send(c, msg, len), 0, "%s: write failed", what);
	int r = icl_read_ack(c, ack, sizeof ack, 20000);
	cr_assert_gt(r, 0, "%s: no ACK (%d)", what, r);
	icl_msa1(ack, code);
	const char *after_msh = strchr(ack, '\r');
	cr_assert(!after_msh || !contains_canary(after_msh, strlen(after_msh)),
		  "%s: patient data in the ACK: %s", what, after_msh);
	cr_log_info("%s -> %s", what, code);
}

static void expect(const char *got, const char *a, const char *b, const char *what)
{
	cr_assert(strcmp(got, a) == 0 || (b && strcmp(got, b) == 0), "%s: MSA-1 %s, expected %s%s%s",
		  what, got, a, b ? " or " : "", b ? b : "");
}

Test(canary, no_patient_data_in_logs, .timeout = 180)
{
	const char *src = getenv("HB_SRCDIR");
	char conf[256], log[256], state[128], id[64], code[3], err[256];
	struct icl c;
	int port;
	FILE *f;

	itest_unique_name(g_inst, sizeof g_inst, "itest-phi");
	itest_unique_name(state, sizeof state, "itest.pstate");
	snprintf(conf, sizeof conf, "/tmp/%s.conf", g_inst);
	snprintf(log, sizeof log, "/tmp/%s.log", g_inst);
	f = fopen(conf, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"[http]\nbind = 127.0.0.1:0\n[bridge]\ninstance = %s\nmappings = %s/mappings\nschemas = %s/conf/schemas\n"
		"log.level = debug\nunmatched = reject\ndeadletter = on\n"
		"[hl7]\nmax.segments = 32\nmax.field.length = 1k\n"
		"[kafka]\nbootstrap.servers = %s\n"
		"[topics]\npartitions = 2\nstate = %s\nstate.partitions = 1\nraw = on\n"
		"[publisher]\nlanes = 2\n"
		"[listener plain]\nbind = 127.0.0.1:0\nmax.frame.size = %d\n",
		g_inst, src, src, itest_bootstrap(), state, MAX_FRAME);
	fclose(f);
	pid_t pid = itest_daemon_start(conf, log, &port);
	cr_assert_eq(icl_connect(&c, port, NULL, err, sizeof err), 0, "%s", err);

	/* Accepted, then resent (a duplicate of a committed message). */
	unique_id(id, sizeof id);
	char *ok = canary_adt("ADT^A01^ADT_A01", id, "CANARYMRN1^^^CANARYHOSP^MR", "19800102");
	send_one(&c, ok, strlen(ok), code, "accepted");
	expect(code, "AA", "CA", "accepted");
	send_one(&c, ok, strlen(ok), code, "resend");
	expect(code, "AA", "CA", "resend");
	free(ok);

	/* Rejected by the mapping: no patient id; an unreadable birth date. */
	unique_id(id, sizeof id);
	char *m = canary_adt("ADT^A01^ADT_A01", id, "", "19800102");
	send_one(&c, m, strlen(m), code, "no patient id");
	expect(code, "AE", "CE", "no patient id");
	free(m);
	unique_id(id, sizeof id);
	m = canary_adt("ADT^A01^ADT_A01", id, "CANARYMRN2^^^CANARYHOSP^MR", "CANARY1980");
	send_one(&c, m, strlen(m), code, "unreadable birth date");
	free(m);

	/* A type no mapping takes (unmatched = reject). */
	unique_id(id, sizeof id);
	m = canary_adt("ORU^R01^ORU_R01", id, "CANARYMRN3^^^CANARYHOSP^MR", "19800102");
	send_one(&c, m, strlen(m), code, "unmatched type");
	expect(code, "AR", "CR", "unmatched type");
	free(m);

	/* Unreadable: not HL7 at all; a segment with a bad name; a field over
	 * max.field.length; more segments than max.segments. */
	const char *junk = "CANARY Jane Canarysmith 1980-01-02 17 CANARY Street";
	send_one(&c, junk, strlen(junk), code, "not HL7");
	expect(code, "AR", "CR", "not HL7");
	unique_id(id, sizeof id);
	m = canary_adt("ADT^A01^ADT_A01", id, "CANARYMRN4^^^CANARYHOSP^MR", "19800102");
	{
		char *bad = malloc(strlen(m) + 64);
		char *pv1 = strstr(m, "PV1|");
		sprintf(bad, "%.*sC@NARY|CANARY secret|CANARY\r%s", (int)(pv1 - m), m, pv1);
		send_one(&c, bad, strlen(bad), code, "bad segment name");
		free(bad);
	}
	free(m);
	unique_id(id, sizeof id);
	{
		char name[2048];
		memset(name, 'X', sizeof name);
		memcpy(name, "CANARY", 6);
		memcpy(name + sizeof name - 7, "CANARY", 6);
		name[sizeof name - 1] = '\0';
		m = canary_adt("ADT^A01^ADT_A01", id, name, "19800102");
		send_one(&c, m, strlen(m), code, "field over max.field.length");
		expect(code, "AR", "CR", "field over max.field.length");
		free(m);
	}
	unique_id(id, sizeof id);
	{
		m = canary_adt("ADT^A01^ADT_A01", id, "CANARYMRN5^^^CANARYHOSP^MR", "19800102");
		size_t cap = strlen(m) + 64 * 64;
		char *many = malloc(cap);
		strcpy(many, m);
		for (int i = 0; i < 40; i++)
			strcat(many, "NTE|1||CANARY comment\r");
		send_one(&c, many, strlen(many), code, "more than max.segments");
		expect(code, "AR", "CR", "more than max.segments");
		free(many);
		free(m);
	}

	/* Junk between frames, then a good frame on the same connection. */
	cr_assert_eq(icl_write(&c, "CANARY stray bytes\r\n", 20), 0);
	unique_id(id, sizeof id);
	ok = canary_adt("ADT^A01^ADT_A01", id, "CANARYMRN6^^^CANARYHOSP^MR", "19800102");
	send_one(&c, ok, strlen(ok), code, "after junk");
	expect(code, "AA", "CA", "after junk");
	free(ok);
	icl_close(&c);

	/* An oversize frame full of canaries: its connection is closed. */
	{
		size_t big = MAX_FRAME + 1000;
		char *huge = malloc(big + 1);
		for (size_t i = 0; i < big; i += 6)
			memcpy(huge + i, "CANARY", big - i < 6 ? big - i : 6);
		memcpy(huge, "MSH|^~\\&|", 9);
		huge[big] = '\0';
		cr_assert_eq(icl_connect(&c, port, NULL, err, sizeof err), 0, "%s", err);
		(void)icl_send(&c, huge, big);
		cr_assert_eq(icl_wait_closed(&c, 10000), 1, "oversize frame: connection not closed");
		icl_close(&c);
		free(huge);
	}

	cr_assert_eq(itest_daemon_stop(pid), 0, "(see %s)", log);
	char *text = icl_slurp(log);
	cr_assert(strstr(text, "PHI-") != NULL, "MSH-10 never logged: did the messages arrive? (see %s)",
		  log);
	const char *hit = NULL;
	for (const char *p = text; *p && !hit; p++)
		if (strncasecmp(p, "canary", 6) == 0)
			hit = p;
	if (hit) {
		const char *bol = hit, *eol = strchr(hit, '\n');
		while (bol > text && bol[-1] != '\n')
			bol--;
		cr_assert_fail("patient data in the log (%s): %.*s", log,
			       (int)(eol ? eol - bol : (long)strlen(bol)), bol);
	}
	free(text);
	unlink(conf);
	unlink(log);
}

/* ACK builder: field mapping, modes, ERR forms, broken input, round trip. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "guard.h"
#include "hl7_fixture.h"
#include "parse/hl7.h"
#include "util.h"

struct acked {
	char buf[2048];
	ssize_t len;
	struct hl7_seg segs[8];
	struct hl7_msg m;
};

/* Build an ACK for s (parsed if it parses) and parse the ACK back. */
static void ack_for(const char *s, size_t len, const struct hl7_ack_params *p,
		    struct acked *a)
{
	struct hl7_seg segs[64];
	struct hl7_msg m;
	struct hl7_error err;
	char es[128];
	struct guard g;
	const char *in = guard_place(&g, s, len);
	int ok = hl7_parse(&m, in, len, segs, 64, NULL, &err) == 0;
	a->len = hl7_ack_build(in, len, ok ? &m : NULL, p, a->buf, sizeof a->buf, es, sizeof es);
	cr_assert_gt(a->len, 0, "%s", es);
	cr_assert_eq(hl7_parse(&a->m, a->buf, (size_t)a->len, a->segs, 8, NULL, &err), 0,
		     "ACK does not parse back: %s: %.*s", err.msg, (int)a->len, a->buf);
	guard_free(&g);
}

static void expect(struct acked *a, const char *path, const char *want)
{
	struct hl7_path p;
	struct hl7_view v;
	struct hl7_error err;
	cr_assert_eq(hl7_path_compile(&p, path, &err), 0, "%s", path);
	hl7_get(&a->m, &p, &v);
	cr_assert(v.len == strlen(want) && !memcmp(v.ptr, want, v.len), "%s = '%.*s', want '%s'",
		  path, (int)v.len, v.ptr, want);
}

static const char *V25 =
	"MSH|^~\\&|PHARM|HOSP|BRIDGE|HUB|20250101||RDE^O11^RDE_O11|ORIG-1|P|2.5.1\rPID|1||X\r";

Test(ack, original_mode_accept)
{
	struct hl7_ack_params p = { .control_id = "ACK-77", .timestamp = "20261127020000+0000" };
	struct acked a;
	ack_for(V25, strlen(V25), &p, &a);
	cr_assert_eq(a.m.nsegs, 2);
	expect(&a, "MSH-3", "BRIDGE");
	expect(&a, "MSH-4", "HUB");
	expect(&a, "MSH-5", "PHARM");
	expect(&a, "MSH-6", "HOSP");
	expect(&a, "MSH-7", "20261127020000+0000");
	expect(&a, "MSH-9", "ACK^O11^ACK");
	expect(&a, "MSH-10", "ACK-77");
	expect(&a, "MSH-11", "P");
	expect(&a, "MSH-12", "2.5.1");
	expect(&a, "MSA-1", "AA");
	expect(&a, "MSA-2", "ORIG-1");
	expect(&a, "ERR", "");
}

Test(ack, enhanced_mode_error_with_err_25)
{
	const char *s = "MSH|^~\\&|A|B|C|D|2025||ADT^A08|C9|T|2.6|||AL|NE\rPID|1\r";
	struct hl7_path where;
	struct hl7_error err;
	cr_assert_eq(hl7_path_compile(&where, "PID-3[2].1", &err), 0);
	struct hl7_ack_params p = { .control_id = "K1", .timestamp = "2026",
				    .status = HL7_ACK_ERROR, .err_code = 101,
				    .err_where = &where, .reason = "PID-3 required | see spec" };
	struct acked a;
	ack_for(s, strlen(s), &p, &a);
	expect(&a, "MSA-1", "CE");
	expect(&a, "MSA-3", "");
	expect(&a, "ERR-2", "PID^1^3^2^1");
	expect(&a, "ERR-3.1", "101");
	expect(&a, "ERR-3.2", "Required field missing");
	expect(&a, "ERR-3.3", "HL70357");
	expect(&a, "ERR-4", "E");
	expect(&a, "ERR-8", "PID-3 required \\F\\ see spec");
	expect(&a, "MSH-11", "T");
	expect(&a, "MSH-12", "2.6");
}

Test(ack, old_version_err_1_and_msa_3)
{
	const char *s = "MSH|^~\\&|A|B|C|D|2025||ORU^R01|Q1|P|2.3\r";
	struct hl7_path where;
	struct hl7_error err;
	cr_assert_eq(hl7_path_compile(&where, "OBX[2]-5", &err), 0);
	struct hl7_ack_params p = { .control_id = "K2", .timestamp = "2026",
				    .status = HL7_ACK_REJECT, .err_code = 102,
				    .err_where = &where, .reason = "bad value" };
	struct acked a;
	ack_for(s, strlen(s), &p, &a);
	expect(&a, "MSA-1", "AR");
	expect(&a, "MSA-3", "bad value");
	expect(&a, "ERR-1", "OBX^2^5^102&Data type error&HL70357");
	expect(&a, "ERR-1.4.1", "102");
}

Test(ack, broken_message_still_gets_ar)
{
	/* MSH-12 missing: parse fails; MSH is salvaged. */
	const char *s = "MSH|^~\\&|A|B|C|D|2025||ADT^A01|BROKEN-1|P|\rPID|1\r";
	struct hl7_ack_params p = { .control_id = "K3", .timestamp = "2026",
				    .status = HL7_ACK_REJECT, .err_code = 101 };
	struct acked a;
	ack_for(s, strlen(s), &p, &a);
	expect(&a, "MSA-1", "AR");
	expect(&a, "MSA-2", "BROKEN-1");
	expect(&a, "MSH-12", "2.5.1");
	expect(&a, "MSH-5", "A");
	expect(&a, "ERR-3.1", "101");

	/* Nothing readable at all. */
	const char junk[] = "\x01\x02garbage with | pipes\r\x7f";
	ack_for(junk, sizeof junk - 1, &p, &a);
	expect(&a, "MSA-1", "AR");
	expect(&a, "MSA-2", "");
	expect(&a, "MSH-2", "^~\\&");
	ack_for("", 0, &p, &a);
	expect(&a, "MSA-1", "AR");

	/* Control characters in copied fields are dropped (MSA-2: escaped), not sent on. */
	const char ctl[] = "MSH|^~\\&|A\x1c|B|C|D|2025||ADT^A01|ID\x0b|P|2.5\r";
	ack_for(ctl, sizeof ctl - 1, &p, &a);
	expect(&a, "MSH-5", "");
	expect(&a, "MSA-2", "ID\\X0B\\"); /* escaped: correlatable, never sent raw */
	cr_assert_null(memchr(a.buf, 0x1c, (size_t)a.len));
	cr_assert_null(memchr(a.buf, 0x0b, (size_t)a.len));

	/* Found by fuzz_ack: letters as delimiters make escapes ambiguous. */
	const char al[] = "MSH|^TRAL|A|B|C|D|1||ADT^A01|X|P|2.5\r";
	ack_for(al, sizeof al - 1, &p, &a);
	expect(&a, "MSH-2", "^~\\&");
	/* Found by fuzz_ack: a control character declared as a delimiter. */
	const char dl[] = "MSH|^~\\\x1c|A|B|C|D|1||ADT^A01|X|P|2.5\r";
	ack_for(dl, sizeof dl - 1, &p, &a);
	expect(&a, "MSH-2", "^~\\&");
	cr_assert_null(memchr(a.buf, 0x1c, (size_t)a.len));
}

/* Found by fuzz_ack: an ACK echoing a charset iconv does not know could not
 * be read back. Only table 0211 names are echoed now. */
Test(ack, echoes_only_standard_charsets)
{
	const char *s1 = "MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5||||||NO-SUCH-CHARSET\r";
	const char *s2 = "MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5||||||8859/1~ISO IR87\r";
	struct hl7_ack_params p = { .control_id = "K", .timestamp = "2026" };
	struct acked a;
	ack_for(s1, strlen(s1), &p, &a);
	expect(&a, "MSH-18", "");
	ack_for(s2, strlen(s2), &p, &a);
	expect(&a, "MSH-18", "8859/1");
}

Test(ack, keeps_the_original_delimiters)
{
	const char *s = "MSH#$*/+#S#F#R#G#2025##ADT$A01#X1#P#2.5\r";
	struct hl7_ack_params p = { .control_id = "id#1", .timestamp = "2026" };
	struct acked a;
	ack_for(s, strlen(s), &p, &a);
	cr_assert_eq(a.buf[3], '#');
	expect(&a, "MSH-9", "ACK$A01$ACK");
	expect(&a, "MSH-10", "id/F/1");
	expect(&a, "MSA-2", "X1");
}

/* Found by fuzz_ack: with no escape character declared (MSH-2 "^!") our
 * control id and version could not be written; the ACK now falls back to
 * the standard delimiters and drops copied values that would not fit them. */
Test(ack, no_escape_character_falls_back_to_standard_delimiters)
{
	const char *s = "MSH|^!|SND|F|R|G|1||ADT^A01|ID^1|P|2.5\r";
	struct hl7_ack_params p = { .control_id = "CTRL|1^x", .timestamp = "2026" };
	struct acked a;
	ack_for(s, strlen(s), &p, &a);
	expect(&a, "MSH-2", "^~\\&");
	expect(&a, "MSH-5", "SND");
	expect(&a, "MSH-10", "CTRL\\F\\1\\S\\x");
	expect(&a, "MSH-12", "2.5");
	expect(&a, "MSH-9", "ACK^A01^ACK");
	/* issue 14 item 11: the id stays correlatable, escaped in the ACK's set */
	expect(&a, "MSA-2", "ID\\S\\1");
}

/* Issue 14 item 11: an MSH-10 with control characters or longer than 199
 * characters used to leave MSA-2 empty. It is echoed escaped (\Xhh\) and
 * cut after 199 characters, never inside an escape sequence. */
Test(ack, msa2_keeps_an_unusual_control_id_correlatable)
{
	struct hl7_ack_params p = { .control_id = "K", .timestamp = "2026",
				    .status = HL7_ACK_REJECT, .err_code = 102 };
	struct acked a;
	char s[1024], id[400], want[400];

	snprintf(s, sizeof s, "MSH|^~\\&|A|B|C|D|1||ADT^A01|ID\x07X\x1b\x7f|P|2.5\rPID|1\r");
	ack_for(s, strlen(s), &p, &a);
	expect(&a, "MSA-1", "AR");
	expect(&a, "MSA-2", "ID\\X07\\X\\X1B\\\\X7F\\");

	memset(id, 'A', 250);
	id[250] = '\0';
	snprintf(s, sizeof s, "MSH|^~\\&|A|B|C|D|1||ADT^A01|%s|P|2.5\r", id);
	ack_for(s, strlen(s), &p, &a);
	memset(want, 'A', 199);
	want[199] = '\0';
	expect(&a, "MSA-2", want);

	/* 197 characters, then an escape sequence that would pass 199: cut before it */
	memset(id, 'B', 197);
	snprintf(id + 197, sizeof id - 197, "\\F\\%s", "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC");
	snprintf(s, sizeof s, "MSH|^~\\&|A|B|C|D|1||ADT^A01|%s|P|2.5\r", id);
	ack_for(s, strlen(s), &p, &a);
	memset(want, 'B', 197);
	want[197] = '\0';
	expect(&a, "MSA-2", want);

	/* 195 + escape sequence of 3 fits exactly before the cut */
	memset(id, 'B', 195);
	snprintf(id + 195, sizeof id - 195, "\\F\\%s", "CCCCCCCCCCC");
	snprintf(s, sizeof s, "MSH|^~\\&|A|B|C|D|1||ADT^A01|%s|P|2.5\r", id);
	ack_for(s, strlen(s), &p, &a);
	memset(want, 'B', 195);
	snprintf(want + 195, sizeof want - 195, "\\F\\C");
	expect(&a, "MSA-2", want);
	/* an ordinary id is echoed exactly as before */
	ack_for(V25, strlen(V25), &p, &a);
	expect(&a, "MSA-2", "ORIG-1");
}

Test(ack, output_too_small_and_missing_params)
{
	char out[32], es[128];
	struct hl7_ack_params p = { .control_id = "K", .timestamp = "2026" };
	cr_assert_eq(hl7_ack_build(V25, strlen(V25), NULL, &p, out, sizeof out, es, sizeof es), -1);
	cr_assert(strstr(es, "too small") != NULL, "%s", es);
	p.control_id = NULL;
	cr_assert_eq(hl7_ack_build(V25, strlen(V25), NULL, &p, out, sizeof out, es, sizeof es), -1);
}

Test(ack, accept_ack_type)
{
	struct hl7_seg segs[4];
	struct hl7_msg m;
	struct hl7_error err;
	const char *types[] = { "", "AL", "NE", "ER", "SU" };
	int want[][2] = { { 1, 1 }, { 1, 1 }, { 0, 0 }, { 0, 1 }, { 1, 0 } };
	char s[128];
	for (size_t i = 0; i < 5; i++) {
		snprintf(s, sizeof s, "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5|||%s\r", types[i]);
		cr_assert_eq(hl7_parse(&m, s, strlen(s), segs, 4, NULL, &err), 0);
		cr_assert_eq(hl7_ack_wanted(&m, HL7_ACK_ACCEPT), want[i][0], "%s", types[i]);
		cr_assert_eq(hl7_ack_wanted(&m, HL7_ACK_ERROR), want[i][1], "%s", types[i]);
	}
}

/* Every parse fixture, with every status: the ACK parses back and answers
 * the right control id. */
Test(ack, round_trip_over_fixtures)
{
	char dir[512], path[1024], es[256];
	snprintf(dir, sizeof dir, "%s/tests/fixtures/hl7/parse", fixture_root());
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		size_t len;
		snprintf(path, sizeof path, "%s/%s/input.hl7", dir, e->d_name);
		char *data = util_read_file(path, 1 << 20, &len, es, sizeof es);
		cr_assert_not_null(data);
		for (int st = HL7_ACK_ACCEPT; st <= HL7_ACK_REJECT; st++) {
			struct hl7_ack_params p = { .control_id = "RT-1", .timestamp = "20260101",
						    .status = st, .err_code = st ? 207 : 0,
						    .reason = "internal error" };
			struct acked a;
			ack_for(data, len, &p, &a);
			expect(&a, "MSH-10", "RT-1");
			n++;
		}
		free(data);
	}
	closedir(d);
	cr_assert_geq(n, 60);
}

/* Every prefix of every fixture, right before an unreadable page: the
 * builder (parsed or salvaging) never reads past the end, and its ACK
 * always parses back. */
Test(ack, guard_page_every_prefix)
{
	char dir[512], path[1024], es[256];
	snprintf(dir, sizeof dir, "%s/tests/fixtures/hl7/parse", fixture_root());
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	struct dirent *e;
	size_t n = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		size_t len;
		snprintf(path, sizeof path, "%s/%s/input.hl7", dir, e->d_name);
		char *data = util_read_file(path, 1 << 20, &len, es, sizeof es);
		cr_assert_not_null(data);
		for (size_t k = 0; k <= len; k++) {
			struct hl7_ack_params p = { .control_id = "G-1", .timestamp = "2026",
						    .status = (enum hl7_ack_status)(k % 3),
						    .err_code = k % 3 ? 100 : 0 };
			struct acked a;
			ack_for(data, k, &p, &a);
			expect(&a, "MSH-10", "G-1");
			n++;
		}
		free(data);
	}
	closedir(d);
	cr_assert_gt(n, 3000);
}

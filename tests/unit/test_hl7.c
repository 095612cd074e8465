/* Parser, navigation and paths. Fixture folders under tests/fixtures/hl7/parse:
 * each has input.hl7 and expected.txt (format in tests/fixtures/hl7/README.md). */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "guard.h"
#include "hl7_fixture.h"
#include "hl7_walk.h"
#include "parse/hl7.h"
#include "util.h"

#define MAX_SEGS 256

/* Decode the expected-value notation: \n is a newline, \\ a backslash. */
static size_t decode_expected(const char *s, char *out)
{
	size_t n = 0;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] == 'n') {
			out[n++] = '\n';
			s++;
		} else if (s[0] == '\\' && s[1] == '\\') {
			out[n++] = '\\';
			s++;
		} else {
			out[n++] = *s;
		}
	}
	out[n] = '\0';
	return n;
}

static void check_value(struct hl7_msg *m, const char *name, const char *spec,
			int raw)
{
	char path[64], want[1024], got[4096];
	const char *eq = strchr(spec, '=');
	struct hl7_path p;
	struct hl7_error err;
	struct hl7_view v;

	cr_assert_not_null(eq, "%s: bad line %s", name, spec);
	snprintf(path, sizeof path, "%.*s", (int)(eq - spec), spec);
	size_t wlen = decode_expected(eq + 1, want);
	cr_assert_eq(hl7_path_compile(&p, path, &err), 0, "%s: %s: %s", name, path, err.msg);
	int r = hl7_get(m, &p, &v);
	cr_assert(r == 0 || r == 1, "%s: %s", name, path);
	if (raw) {
		cr_assert(v.len == wlen && !memcmp(v.ptr, want, wlen), "%s: raw %s = '%.*s'",
			  name, path, (int)v.len, v.ptr);
		return;
	}
	ssize_t n = hl7_unescape(m, v, got, sizeof got, &err);
	cr_assert_geq(n, 0, "%s: %s: %s", name, path, err.msg);
	cr_assert_eq((size_t)n, wlen, "%s: %s = '%s', want '%s'", name, path, got, want);
	cr_assert(!memcmp(got, want, wlen), "%s: %s = '%s', want '%s'", name, path, got, want);
	cr_assert_eq(r, wlen > 0, "%s: %s presence", name, path);
}

static void run_fixture(const char *dir, const char *name)
{
	char path[1024], err_s[256], line[2048];
	size_t len;
	struct guard g;
	struct hl7_seg segs[MAX_SEGS];
	struct hl7_msg m;
	struct hl7_error err;

	snprintf(path, sizeof path, "%s/%s/input.hl7", dir, name);
	char *data = util_read_file(path, 1 << 20, &len, err_s, sizeof err_s);
	cr_assert_not_null(data, "%s", err_s);
	char *in = guard_place(&g, data, len);
	cr_assert_not_null(in);
	int pr = hl7_parse(&m, in, len, segs, MAX_SEGS, NULL, &err);

	snprintf(path, sizeof path, "%s/%s/expected.txt", dir, name);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	int checked = 0;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		checked++;
		if (!strncmp(line, "error=", 6)) {
			cr_assert_eq(pr, -1, "%s: parse should fail", name);
			cr_assert_str_eq(hl7_errcode_name(err.code), line + 6, "%s: %s", name, err.msg);
			continue;
		}
		cr_assert_eq(pr, 0, "%s: %s", name, err.msg);
		if (!strncmp(line, "segments=", 9)) {
			cr_assert_eq(m.nsegs, strtoul(line + 9, NULL, 10), "%s", name);
		} else if (!strncmp(line, "count ", 6)) {
			struct hl7_path p;
			char *eq = strchr(line, '=');
			*eq = '\0';
			cr_assert_eq(hl7_path_compile(&p, line + 6, &err), 0);
			cr_assert_eq(hl7_count_reps_in(&m, &p, 0, m.nsegs),
				     strtoul(eq + 1, NULL, 10), "%s: count %s", name, line + 6);
		} else if (!strncmp(line, "group ", 6)) {
			char *eq = strchr(line, '=');
			*eq = '\0';
			size_t pos = 0, first, end, n = 0;
			while (hl7_group_next(&m, line + 6, &pos, &first, &end))
				n++;
			cr_assert_eq(n, strtoul(eq + 1, NULL, 10), "%s: groups", name);
		} else if (!strncmp(line, "unescape-error ", 15)) {
			struct hl7_path p;
			struct hl7_view v;
			char out[1024];
			char *eq = strchr(line, '=');
			*eq = '\0';
			cr_assert_eq(hl7_path_compile(&p, line + 15, &err), 0);
			hl7_get(&m, &p, &v);
			cr_assert_eq(hl7_unescape(&m, v, out, sizeof out, &err), -1, "%s", name);
			cr_assert_str_eq(hl7_errcode_name(err.code), eq + 1, "%s", name);
			cr_assert_str_eq(out, "", "%s: nothing half-converted", name);
		} else if (!strncmp(line, "raw ", 4)) {
			check_value(&m, name, line + 4, 1);
		} else {
			check_value(&m, name, line, 0);
		}
	}
	fclose(f);
	cr_assert_gt(checked, 0, "%s: empty expected.txt", name);
	if (pr == 0)
		hl7_msg_clear(&m);
	guard_free(&g);
	free(data);
}

Test(hl7, fixtures)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s/tests/fixtures/hl7/parse", fixture_root());
	DIR *d = opendir(dir);
	cr_assert_not_null(d, "%s", dir);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		run_fixture(dir, e->d_name);
		n++;
	}
	closedir(d);
	cr_assert_geq(n, 20);
}

/* Every prefix of every fixture, placed right before an unreadable page,
 * parsed and walked completely: any over-read crashes. */
Test(hl7, guard_page_every_prefix)
{
	char dir[512], path[1024], err_s[256];
	snprintf(dir, sizeof dir, "%s/tests/fixtures/hl7/parse", fixture_root());
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	struct dirent *e;
	size_t walked = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		size_t len;
		snprintf(path, sizeof path, "%s/%s/input.hl7", dir, e->d_name);
		char *data = util_read_file(path, 1 << 20, &len, err_s, sizeof err_s);
		cr_assert_not_null(data);
		for (size_t k = 0; k <= len; k++) {
			struct guard g;
			struct hl7_seg segs[MAX_SEGS];
			struct hl7_msg m;
			struct hl7_error err;
			char *in = guard_place(&g, data, k);
			cr_assert_not_null(in);
			if (hl7_parse(&m, in, k, segs, MAX_SEGS, NULL, &err) == 0) {
				size_t bad;
				walked += hl7_walk(&m, &bad);
				cr_assert_eq(bad, 0, "%s prefix %zu", e->d_name, k);
				hl7_msg_clear(&m);
			}
			guard_free(&g);
		}
		free(data);
	}
	closedir(d);
	cr_assert_gt(walked, 1000);
}

static void parse_str(struct hl7_msg *m, struct hl7_seg *segs, const char *s)
{
	struct hl7_error err;
	cr_assert_eq(hl7_parse(m, s, strlen(s), segs, MAX_SEGS, NULL, &err), 0, "%s", err.msg);
}

static const char *ADT =
	"MSH|^~\\&|SND|SF|RCV|RF|20240101||ADT^A01|C1|P|2.5\r"
	"PID|1||A1^^^H1^MR~B2^^^H2&urn:oid:1.2&ISO^PI~~C3||DOE^JOHN\r"
	"ORC|NW|O1\rRXE|x|M1\rRXR|PO\rORC|XO|O2\rRXE|y|M2\rORC|CA|O3\r";

Test(hl7, repetitions_and_relative_paths)
{
	struct hl7_seg segs[MAX_SEGS];
	struct hl7_msg m;
	struct hl7_path p, rel1, rel42;
	struct hl7_view field, rep, v;
	struct hl7_error err;

	parse_str(&m, segs, ADT);
	cr_assert_eq(hl7_path_compile(&p, "PID-3", &err), 0);
	cr_assert_eq(hl7_count_reps_in(&m, &p, 0, m.nsegs), 4);
	cr_assert_eq(hl7_path_compile(&rel1, ".1", &err), 0);
	cr_assert_eq(hl7_path_compile(&rel42, ".4.2", &err), 0);
	cr_assert_eq(hl7_get_field_in(&m, &p, 0, m.nsegs, &field), 1);
	struct hl7_iter it;
	hl7_iter_init(&it, field, m.d.rep);
	const char *ids[] = { "A1", "B2", "", "C3" };
	const char *sys[] = { "", "urn:oid:1.2", "", "" };
	int i = 0;
	while (hl7_iter_next(&it, &rep)) {
		cr_assert_lt(i, 4);
		hl7_get_rel(&m, rep, &rel1, &v);
		cr_assert(v.len == strlen(ids[i]) && !memcmp(v.ptr, ids[i], v.len), "rep %d", i);
		hl7_get_rel(&m, rep, &rel42, &v);
		cr_assert(v.len == strlen(sys[i]) && !memcmp(v.ptr, sys[i], v.len), "rep %d", i);
		i++;
	}
	cr_assert_eq(i, 4);
	cr_assert_eq(hl7_get_rel(&m, rep, &p, &v), -1, "absolute path is not relative");
	cr_assert_eq(hl7_get(&m, &rel1, &v), -1, "relative path needs a repetition");
}

Test(hl7, segment_groups)
{
	struct hl7_seg segs[MAX_SEGS];
	struct hl7_msg m;
	struct hl7_path rxe, orc2;
	struct hl7_view v;
	struct hl7_error err;
	size_t pos = 0, first, end;
	const char *want_orc[] = { "O1", "O2", "O3" };
	const char *want_rxe[] = { "M1", "M2", "" };
	size_t want_len[] = { 3, 2, 1 };
	int g = 0;

	parse_str(&m, segs, ADT);
	cr_assert_eq(hl7_path_compile(&rxe, "RXE-2", &err), 0);
	cr_assert_eq(hl7_path_compile(&orc2, "ORC-2", &err), 0);
	while (hl7_group_next(&m, "ORC", &pos, &first, &end)) {
		cr_assert_lt(g, 3);
		cr_assert_eq(end - first, want_len[g]);
		hl7_get_in(&m, &orc2, first, end, &v);
		cr_assert(v.len == 2 && !memcmp(v.ptr, want_orc[g], 2));
		hl7_get_in(&m, &rxe, first, end, &v);
		cr_assert(v.len == strlen(want_rxe[g]) && !memcmp(v.ptr, want_rxe[g], v.len));
		g++;
	}
	cr_assert_eq(g, 3);
	cr_assert_eq(hl7_group_next(&m, "ORC", &pos, &first, &end), 0);
	pos = 0;
	cr_assert_eq(hl7_group_next(&m, "OBR", &pos, &first, &end), 0);
}

Test(hl7, segment_paths_and_header_numbering)
{
	struct hl7_seg segs[MAX_SEGS];
	struct hl7_msg m;
	struct hl7_path p;
	struct hl7_view v;
	struct hl7_error err;

	parse_str(&m, segs, ADT);
	cr_assert_eq(hl7_path_compile(&p, "ORC[2]", &err), 0);
	cr_assert_eq(hl7_get(&m, &p, &v), 1);
	cr_assert(v.len == 9 && !memcmp(v.ptr, "ORC|XO|O2", 9));
	cr_assert_eq(hl7_path_compile(&p, "MSH-1", &err), 0);
	cr_assert_eq(hl7_get(&m, &p, &v), 1);
	cr_assert(v.len == 1 && v.ptr[0] == '|');
	cr_assert_eq(hl7_path_compile(&p, "MSH-2", &err), 0);
	cr_assert_eq(hl7_get(&m, &p, &v), 1);
	cr_assert(v.len == 4 && !memcmp(v.ptr, "^~\\&", 4), "MSH-2 is not split");
	cr_assert_eq(hl7_path_compile(&p, "MSH-3", &err), 0);
	cr_assert_eq(hl7_get(&m, &p, &v), 1);
	cr_assert(v.len == 3 && !memcmp(v.ptr, "SND", 3));
	cr_assert_eq(hl7_seg_find(&m, "ORC", 3, 0, m.nsegs), 7);
	cr_assert_eq(hl7_seg_find(&m, "ORC", 4, 0, m.nsegs), -1);
	cr_assert_eq(hl7_seg_find(&m, "ORC", 1, 4, m.nsegs), 5);
}

Test(hl7, path_syntax_and_columns)
{
	struct hl7_path p;
	struct hl7_error err;
	char buf[64];
	static const struct { const char *in; size_t col; } bad[] = {
		{ "pid-3", 1 }, { "P", 2 }, { "PID-", 5 }, { "PID-0", 5 },
		{ "PID-3[2", 8 }, { "PID-3.1.2.3", 10 }, { "PID-3x", 6 },
		{ "1AB-1", 1 }, { "PID-3[0]", 7 }, { ".", 2 }, { ".x", 2 },
		{ "PID-9999999", 5 }, { "PID-3[x]", 6 }, { "", 1 },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(hl7_path_compile(&p, bad[i].in, &err), -1, "%s", bad[i].in);
		cr_assert_eq(err.code, HL7_E_PATH);
		cr_assert_eq(err.column, bad[i].col, "%s: column %zu", bad[i].in, err.column);
	}
	static const char *good[] = { "PID", "OBX[2]", "PID-3", "PID-3[2].1", "PID-5.1.1",
				      "OBX[2]-5", "ZX1[3]-12[4].5.6", ".1", ".4.2", "MSH-9" };
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		cr_assert_eq(hl7_path_compile(&p, good[i], &err), 0, "%s: %s", good[i], err.msg);
		hl7_path_format(&p, buf, sizeof buf);
		cr_assert_str_eq(buf, good[i]);
	}
	/* Embedded in a longer expression: stops where the path ends. */
	cr_assert_eq(hl7_path_parse(&p, "PID-3[where .5 = \"MR\"].1", 25, &err), 5);
	cr_assert_eq(hl7_path_parse(&p, "RXE-2.1 ?? X", 12, &err), 7);
	cr_assert_eq(hl7_path_parse(&p, "ORC-1.", 6, &err), 5);
	cr_assert_eq(p.field, 1);
}

Test(hl7, limits)
{
	struct hl7_seg segs[5];
	struct hl7_msg m;
	struct hl7_error err;
	struct hl7_parse_opts o = { .max_field_len = 8 };
	const char *msg = "MSH|^~\\&|A|B|C|D|2024||ADT^A01|X|P|2.5\rPID|1\rPV1|1\rOBX|1\rNTE|1\r";

	cr_assert_eq(hl7_parse(&m, msg, strlen(msg), segs, 5, NULL, &err), 0);
	cr_assert_eq(hl7_parse(&m, msg, strlen(msg), segs, 4, NULL, &err), -1);
	cr_assert_eq(err.code, HL7_E_TOO_MANY_SEGMENTS);
	cr_assert_eq(hl7_err_0357(err.code), 207);
	const char *lng = "MSH|^~\\&|A|B|C|D|2024||ADT^A01|X|P|2.5\rPID|1|123456789\r";
	struct hl7_seg s2[8];
	o.max_field_len = 9;
	cr_assert_eq(hl7_parse(&m, lng, strlen(lng), s2, 8, &o, &err), 0, "%s", err.msg);
	o.max_field_len = 8;
	cr_assert_eq(hl7_parse(&m, lng, strlen(lng), s2, 8, &o, &err), -1);
	cr_assert_eq(err.code, HL7_E_FIELD_TOO_LONG);
	cr_assert_eq(err.offset, strlen(lng) - 10);
	cr_assert_str_eq(err.where.seg, "PID");
	cr_assert_eq(err.where.field, 2);
	/* Header numbering: the long field is MSH-3. */
	const char *hdr = "MSH|^~\\&|ABCDEFGHIJ|B|C|D|2024||ADT^A01|X|P|2.5\r";
	cr_assert_eq(hl7_parse(&m, hdr, strlen(hdr), s2, 8, &o, &err), -1);
	cr_assert_eq(err.code, HL7_E_FIELD_TOO_LONG);
	cr_assert_str_eq(err.where.seg, "MSH");
	cr_assert_eq(err.where.field, 3, "%s", err.msg);
	cr_assert_eq(err.offset, 9);
	cr_assert_null(strstr(err.msg, "ABC"));
}

Test(hl7, errors_name_positions_not_values)
{
	struct hl7_seg segs[8];
	struct hl7_msg m;
	struct hl7_error err;
	const char *msg = "MSH|^~\\&|A|B|C|D|2024||ADT^A01|SECRETID|P|2.5\rPID|1||SECRET-MRN\rbad|\r";

	cr_assert_eq(hl7_parse(&m, msg, strlen(msg), segs, 8, NULL, &err), -1);
	cr_assert_eq(err.code, HL7_E_SEGMENT_ID);
	cr_assert_eq(err.offset, strlen(msg) - 5);
	cr_assert_null(strstr(err.msg, "SECRET"));
	cr_assert_null(strstr(err.msg, "bad"));
	cr_assert_eq(hl7_err_0357(err.code), 100);
	const char *req = "MSH|^~\\&|A|B|C|D|2024||ADT^A01|X|P|\r";
	cr_assert_eq(hl7_parse(&m, req, strlen(req), segs, 8, NULL, &err), -1);
	cr_assert_str_eq(err.where.seg, "MSH");
	cr_assert_eq(err.where.field, 12);
	cr_assert_eq(hl7_err_0357(err.code), 101);
}

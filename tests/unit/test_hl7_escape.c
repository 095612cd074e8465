/* Unescaping, escaping and charsets (fixture coverage is in test_hl7.c). */
#include <criterion/criterion.h>

#include <iconv.h>
#include <stdio.h>
#include <string.h>

#include "guard.h"
#include "parse/hl7.h"

static struct hl7_seg segs[16];

static void parse(struct hl7_msg *m, const char *s)
{
	struct hl7_error err;
	cr_assert_eq(hl7_parse(m, s, strlen(s), segs, 16, NULL, &err), 0, "%s", err.msg);
}

/* Unescape text placed right before an unreadable page. */
static ssize_t unesc(struct hl7_msg *m, const char *text, char *out, size_t out_size,
		     struct hl7_error *err)
{
	struct guard g;
	size_t len = strlen(text);
	const char *p = guard_place(&g, text, len);
	cr_assert_not_null(p);
	ssize_t n = hl7_unescape(m, (struct hl7_view){ p, len }, out, out_size, err);
	guard_free(&g);
	return n;
}

static void expect(struct hl7_msg *m, const char *in, const char *want)
{
	char out[256];
	struct hl7_error err;
	ssize_t n = unesc(m, in, out, sizeof out, &err);
	cr_assert_geq(n, 0, "'%s': %s", in, err.msg);
	cr_assert_eq((size_t)n, strlen(want), "'%s' -> '%s'", in, out);
	cr_assert(!memcmp(out, want, (size_t)n), "'%s' -> '%s', want '%s'", in, out, want);
	cr_assert_eq(out[n], '\0');
}

Test(escape, standard_sequences)
{
	struct hl7_msg m;
	parse(&m, "MSH|^~\\&|A|B|C|D|2024||ADT^A01|X|P|2.5\r");
	expect(&m, "", "");
	expect(&m, "plain", "plain");
	expect(&m, "\\F\\\\S\\\\T\\\\R\\\\E\\", "|^&~\\");
	expect(&m, "a\\.br\\b", "a\nb");
	expect(&m, "\\H\\bold\\N\\", "bold");
	expect(&m, "\\X4142\\\\x4142\\", "AB\\x4142\\");
	expect(&m, "\\Xc3a9\\", "\xc3\xa9");
	/* Kept literally: unknown, malformed, unterminated. */
	expect(&m, "\\.sp\\", "\\.sp\\");
	expect(&m, "\\X414\\", "\\X414\\");
	expect(&m, "\\XZZ\\", "\\XZZ\\");
	expect(&m, "\\X\\", "\\X\\");
	expect(&m, "\\P\\", "\\P\\"); /* no truncation character declared */
	expect(&m, "\\Cxxyy\\", "\\Cxxyy\\");
	expect(&m, "\\\\", "\\\\");
	expect(&m, "tail\\", "tail\\");
	expect(&m, "tail\\F", "tail\\F");
	hl7_msg_clear(&m);
}

Test(escape, truncation_and_no_escape_character)
{
	struct hl7_msg m;
	parse(&m, "MSH|^~\\&#|A|B|C|D|2024||ADT^A01|X|P|2.7\r");
	expect(&m, "a\\P\\b#", "a#b#");
	parse(&m, "MSH|^~|A|B|C|D|2024||ADT^A01|X|P|2.5\r");
	cr_assert_eq(m.d.has_esc, 0);
	expect(&m, "\\F\\", "\\F\\");
}

Test(escape, output_buffer_bounds)
{
	struct hl7_msg m;
	struct hl7_error err;
	char out[8];

	parse(&m, "MSH|^~\\&|A|B|C|D|2024||ADT^A01|X|P|2.5||||||8859/1\r");
	cr_assert_eq(unesc(&m, "\xe9\xe9\xe9", out, 7, &err), 6);
	cr_assert_eq(unesc(&m, "\xe9\xe9\xe9", out, 6, &err), -1);
	cr_assert_eq(err.code, HL7_E_NOSPACE);
	cr_assert_eq(unesc(&m, "abc", out, 3, &err), -1);
	cr_assert_eq(unesc(&m, "abc", out, 4, &err), 3);
	cr_assert_eq(unesc(&m, "abc", out, 0, &err), -1);
	/* The documented bound is enough for the worst case. */
	char big[HL7_UNESCAPE_BOUND(8)];
	cr_assert_eq(unesc(&m, "\xff\xff\xff\xff\xff\xff\xff\xff", big, sizeof big, &err), 16);
}

Test(escape, iconv_charsets_and_errors)
{
	struct hl7_msg m;
	struct hl7_error err;
	char out[64];

	parse(&m, "MSH|^~\\&|A|B|C|D|2024||ADT^A01|X|P|2.5||||||8859/15\r");
	cr_assert_eq(m.cs, HL7_CS_ICONV);
	cr_assert_str_eq(m.charset, "ISO-8859-15");
	expect(&m, "\xa4 5", "\xe2\x82\xac 5"); /* euro sign */
	expect(&m, "\\XA4\\", "\xe2\x82\xac");
	expect(&m, "again \xa4", "again \xe2\x82\xac");
	hl7_msg_clear(&m);
	parse(&m, "MSH|^~\\&|A|B|C|D|2024||ADT^A01|X|P|2.5||||||ISO IR87\r");
	cr_assert_eq(unesc(&m, "\x1b$B\x30\x21\x1b(B", out, sizeof out, &err), 3, "%s", err.msg);
	cr_assert_eq(unesc(&m, "\x1b$B\x30", out, sizeof out, &err), -1, "incomplete");
	cr_assert_eq(err.code, HL7_E_ENCODING);
	hl7_msg_clear(&m);
	parse(&m, "MSH|^~\\&|A|B|C|D|2024||ADT^A01|X|P|2.5||||||UNICODE UTF-8\r");
	cr_assert_eq(unesc(&m, "\xed\xa0\x80", out, sizeof out, &err), -1, "surrogate");
	cr_assert_eq(unesc(&m, "\xc0\xaf", out, sizeof out, &err), -1, "overlong");
	cr_assert_eq(unesc(&m, "\\XC0AF\\", out, sizeof out, &err), -1, "escaped overlong");
	cr_assert_eq(unesc(&m, "\xf4\x90\x80\x80", out, sizeof out, &err), -1, "> U+10FFFF");
	cr_assert_eq(unesc(&m, "\xf0\x9f\x92\x8a", out, sizeof out, &err), 4);
	cr_assert_eq(err.code, HL7_E_ENCODING);
	cr_assert_null(strstr(err.msg, "\xf0"));
}

Test(escape, charset_names)
{
	enum hl7_charset cs;
	char name[40];
	struct { const char *in; int ok; enum hl7_charset cs; const char *iconv; } t[] = {
		{ "ASCII", 1, HL7_CS_DEFAULT, "" },
		{ "8859/1", 1, HL7_CS_LATIN1, "ISO-8859-1" },
		{ "8859/9", 1, HL7_CS_ICONV, "ISO-8859-9" },
		{ "8859/15", 1, HL7_CS_ICONV, "ISO-8859-15" },
		{ "unicode utf-8", 1, HL7_CS_UTF8, "UTF-8" },
		{ "GB 18030-2000", 1, HL7_CS_ICONV, "GB18030" },
		{ "KS X 1001", 1, HL7_CS_ICONV, "EUC-KR" },
		{ "UNICODE", 0, 0, "" },
		{ "UNICODE UTF-16", 0, 0, "" },
		{ "bad\"name", 0, 0, "" },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		int r = hl7_charset_lookup((struct hl7_view){ t[i].in, strlen(t[i].in) }, &cs,
					   name, sizeof name);
		cr_assert_eq(r == 0, t[i].ok, "%s", t[i].in);
		if (r == 0) {
			cr_assert_eq(cs, t[i].cs, "%s", t[i].in);
			cr_assert_str_eq(name, t[i].iconv);
		}
	}
	cr_assert_eq(hl7_charset_lookup((struct hl7_view){ "WINDOWS-1252", 12 }, &cs, name,
					sizeof name), 1, "passed through to iconv");
	cr_assert_str_eq(name, "WINDOWS-1252");
}

/* Every HL7 name in the table maps to something this iconv can open. */
Test(escape, every_known_charset_opens)
{
	const char *n;
	for (size_t i = 0; (n = hl7_charset_name(i)) != NULL; i++) {
		enum hl7_charset cs;
		char name[40];
		cr_assert_eq(hl7_charset_lookup((struct hl7_view){ n, strlen(n) }, &cs, name,
						sizeof name), 0, "%s", n);
		if (cs != HL7_CS_ICONV)
			continue;
		iconv_t cd = iconv_open("UTF-8", name);
		cr_assert_neq(cd, (iconv_t)-1, "%s -> %s", n, name);
		iconv_close(cd);
	}
	/* Found by fuzz_ack: "8859/12" was taken for a real charset. */
	for (unsigned k = 2; k <= 16; k++) {
		char hl7n[16], name[40];
		enum hl7_charset cs;
		snprintf(hl7n, sizeof hl7n, "8859/%u", k);
		int r = hl7_charset_lookup((struct hl7_view){ hl7n, strlen(hl7n) }, &cs, name,
					   sizeof name);
		cr_assert_eq(r, k == 12 ? 1 : 0, "%s", hl7n);
		if (r == 0 && cs == HL7_CS_ICONV) {
			iconv_t cd = iconv_open("UTF-8", name);
			cr_assert_neq(cd, (iconv_t)-1, "%s", name);
			iconv_close(cd);
		}
	}
}

Test(escape, escape_round_trips)
{
	struct hl7_msg m;
	char esc[256], back[256];
	struct hl7_error err;
	const char *text = "a|b^c&d~e\\f\ng\rh";

	parse(&m, "MSH|^~\\&|A|B|C|D|2024||ADT^A01|X|P|2.5\r");
	ssize_t n = hl7_escape(&m.d, text, strlen(text), esc, sizeof esc);
	cr_assert_gt(n, 0);
	cr_assert_null(memchr(esc, '|', (size_t)n));
	cr_assert_null(memchr(esc, '\r', (size_t)n));
	ssize_t b = hl7_unescape(&m, (struct hl7_view){ esc, (size_t)n }, back, sizeof back, &err);
	cr_assert_eq((size_t)b, strlen(text));
	cr_assert_str_eq(back, text);
	cr_assert_eq(hl7_escape(&m.d, text, strlen(text), esc, 5), -1);
}

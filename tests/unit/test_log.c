#include <criterion/criterion.h>

#include <string.h>

#include "log.h"
#include "util.h"

Test(log, parses_levels_and_formats)
{
	enum log_level l;
	enum log_format f;
	cr_assert_eq(log_level_parse("debug", &l), 0);
	cr_assert_eq(l, LOGL_DEBUG);
	cr_assert_eq(log_level_parse("loud", &l), -1);
	cr_assert_eq(log_format_parse("json", &f), 0);
	cr_assert_eq(f, LOG_FORMAT_JSON);
	cr_assert_eq(log_format_parse("xml", &f), -1);
}

Test(log, threshold)
{
	log_setup(LOGL_WARN, LOG_FORMAT_TEXT);
	cr_assert(log_enabled(LOGL_ERROR));
	cr_assert(log_enabled(LOGL_WARN));
	cr_assert_not(log_enabled(LOGL_INFO));
	log_setup(LOGL_INFO, LOG_FORMAT_TEXT);
}

/* Log injection: a file name with a newline and ANSI escapes must stay one
 * harmless line (issue 14, item 5). */
Test(log, escape_keeps_one_harmless_line)
{
	char out[256];
	const char *evil = "a.hl7\n2026-01-01T00:00:00Z info  drop: fake\x1b[31mred\x1b[0m\\x\t\x7f";
	log_escape(out, sizeof out, evil, strlen(evil));
	cr_assert_str_eq(out, "a.hl7\\n2026-01-01T00:00:00Z info  drop: fake\\x1b[31mred\\x1b[0m"
			      "\\\\x\\t\\x7f");
	/* UTF-8 kept; C1 CSI, a bidi override and invalid bytes escaped */
	const char *u = "caf\xc3\xa9 \xc2\x9b" "2J \xe2\x80\xae" "x \xff\xc3";
	log_escape(out, sizeof out, u, strlen(u));
	cr_assert_str_eq(out, "caf\xc3\xa9 \\xc2\\x9b2J \\xe2\\x80\\xaex \\xff\\xc3");
	/* never half an escape, always terminated */
	cr_assert_eq(log_escape(out, 4, "\x01\x02", 2), 0);
	cr_assert_str_eq(out, "");
	cr_assert_eq(log_escape(out, 6, "ab\x01", 3), 2);
	cr_assert_str_eq(out, "ab");
}

Test(util, seterr_returns_minus_one_and_formats)
{
	char buf[32];
	cr_assert_eq(util_seterr(buf, sizeof buf, "bad %d", 7), -1);
	cr_assert_str_eq(buf, "bad 7");
	cr_assert_eq(util_seterr(NULL, 0, "ignored"), -1);
}

Test(util, read_file_respects_limit)
{
	char err[256];
	size_t len = 0;
	char *p = util_read_file(HB_SRCDIR "/configure.ac", 1 << 20, &len, err, sizeof err);
	cr_assert_not_null(p, "%s", err);
	cr_assert_gt(len, 10);
	free(p);
	p = util_read_file(HB_SRCDIR "/configure.ac", 4, &len, err, sizeof err);
	cr_assert_null(p);
	cr_assert(strstr(err, "larger than the limit") != NULL, "%s", err);
	p = util_read_file(HB_SRCDIR "/no-such-file", 4, &len, err, sizeof err);
	cr_assert_null(p);
}

#include <stdio.h>
#include <unistd.h>

/* Issue 14: a line a peer can cause at will (an empty frame's rejection)
 * is written at most `burst` times per window; the rest are counted and
 * the count is written before the next line of a later window. */
Test(log, limited_lines_are_counted_not_written)
{
	char path[] = "/tmp/hb-test-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	struct log_limit lim = LOG_LIMIT_INIT(5, 10000);
	cr_assert_geq(fd, 0);
	dup2(fd, 2);
	for (int i = 0; i < 100; i++)
		log_limited(&lim, LOGL_WARN, "test", "empty frame %d rejected", i);
	lim.window_ms -= 10000; /* the window is over */
	log_limited(&lim, LOGL_WARN, "test", "empty frame %d rejected", 100);
	dup2(saved, 2);
	close(saved);
	FILE *f = fopen(path, "r");
	char line[512];
	int written = 0, summaries = 0;
	while (fgets(line, sizeof line, f)) {
		written += strstr(line, "rejected") != NULL;
		summaries += strstr(line, "95 similar lines suppressed") != NULL;
	}
	fclose(f);
	close(fd);
	unlink(path);
	cr_assert_eq(written, 6, "%d lines written", written);
	cr_assert_eq(summaries, 1);
}

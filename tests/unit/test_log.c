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

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

static char err[512];

Test(conf, sections_keys_and_types)
{
	const char *text = "# comment\n"
			   "[kafka]\n"
			   "bootstrap.servers = 127.0.0.1:9092\n"
			   "\n"
			   "[listener plain]\n"
			   "bind = \"127.0.0.1:2575\"\n"
			   "max.connections = 64\n"
			   "idle.timeout = 5m\n"
			   "max.frame = 1m\n"
			   "tls = off\n"
			   "[listener tls]\n"
			   "bind = 127.0.0.1:2576\n";
	struct conf *c = conf_parse(text, "t.conf", err, sizeof err);
	cr_assert_not_null(c, "%s", err);
	struct conf_section *k = conf_section(c, "kafka", NULL);
	cr_assert_str_eq(conf_str(k, "bootstrap.servers", NULL), "127.0.0.1:9092");
	struct conf_section *l = conf_section(c, "listener", "plain");
	cr_assert_not_null(l);
	cr_assert_str_eq(conf_str(l, "bind", NULL), "127.0.0.1:2575");
	int64_t v;
	int b;
	cr_assert_eq(conf_int(c, l, "max.connections", 10, 1, 100000, &v, err, sizeof err), 0);
	cr_assert_eq(v, 64);
	cr_assert_eq(conf_duration_ms(c, l, "idle.timeout", 0, &v, err, sizeof err), 0);
	cr_assert_eq(v, 300000);
	cr_assert_eq(conf_size(c, l, "max.frame", 0, &v, err, sizeof err), 0);
	cr_assert_eq(v, 1 << 20);
	cr_assert_eq(conf_bool(c, l, "tls", 1, &b, err, sizeof err), 0);
	cr_assert_eq(b, 0);
	int n = 0;
	for (struct conf_section *s = conf_next(c, "listener", NULL); s; s = conf_next(c, "listener", s))
		n++;
	cr_assert_eq(n, 2);
	/* "bind" of [listener tls] was never read */
	cr_assert_eq(conf_unused(c, err, sizeof err), -1);
	cr_assert_str_eq(err, "t.conf:12: unknown key 'bind' in [listener tls]");
	conf_free(c);
}

Test(conf, bad_values_name_file_and_line)
{
	struct conf *c = conf_parse("[a]\nn = 12x\nm = 0\nd = 5 fortnights\n", "x.conf", err, sizeof err);
	cr_assert_not_null(c, "%s", err);
	struct conf_section *a = conf_section(c, "a", NULL);
	int64_t v;
	cr_assert_eq(conf_int(c, a, "n", 0, 0, 10, &v, err, sizeof err), -1);
	cr_assert_str_eq(err, "x.conf:2: n: expected an integer, got '12x'");
	cr_assert_eq(conf_int(c, a, "m", 5, 1, 10, &v, err, sizeof err), -1);
	cr_assert_str_eq(err, "x.conf:3: m: 0 is outside 1..10");
	cr_assert_eq(conf_duration_ms(c, a, "d", 0, &v, err, sizeof err), -1);
	cr_assert(strstr(err, "x.conf:4: d: expected a duration") == err, "%s", err);
	conf_free(c);
}

Test(conf, syntax_errors)
{
	cr_assert_null(conf_parse("[a\n", "s.conf", err, sizeof err));
	cr_assert_str_eq(err, "s.conf:1: section header needs a closing ]");
	cr_assert_null(conf_parse("k = v\n", "s.conf", err, sizeof err));
	cr_assert_str_eq(err, "s.conf:1: key outside of any [section]");
	cr_assert_null(conf_parse("[a]\njunk\n", "s.conf", err, sizeof err));
	cr_assert_str_eq(err, "s.conf:2: expected 'key = value' or '[section]'");
	cr_assert_null(conf_parse("[a]\nk=1\nk=2\n", "s.conf", err, sizeof err));
	cr_assert_str_eq(err, "s.conf:3: key 'k' repeated in [a]");
}

Test(conf, environment_expansion)
{
	char *s;
	setenv("HB_T_SET", "value", 1);
	unsetenv("HB_T_UNSET");
	s = conf_expand("a-${HB_T_SET}-${HB_T_UNSET:-dflt}-${HB_T_SET:-x}", err, sizeof err);
	cr_assert_str_eq(s, "a-value-dflt-value");
	free(s);
	cr_assert_null(conf_expand("${HB_T_UNSET}", err, sizeof err));
	cr_assert(strstr(err, "HB_T_UNSET is not set") != NULL, "%s", err);
	cr_assert_null(conf_expand("${HB_T_SET", err, sizeof err));
	struct conf *c = conf_parse("[a]\nk = ${HB_T_UNSET}\n", "e.conf", err, sizeof err);
	cr_assert_null(c);
	cr_assert(strncmp(err, "e.conf:2: environment variable HB_T_UNSET", 41) == 0, "%s", err);
}

Test(conf, env_file_does_not_override)
{
	char path[] = "/tmp/hb-env-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	fprintf(f, "# quick start variables\nKAFKA_BROKERS=localhost:9092\nexport KAFKA_CLIENT_ID=\"from-file\"\n");
	fclose(f);
	setenv("KAFKA_CLIENT_ID", "from-env", 1);
	unsetenv("KAFKA_BROKERS");
	cr_assert_eq(conf_env_file(path, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(getenv("KAFKA_BROKERS"), "localhost:9092");
	cr_assert_str_eq(getenv("KAFKA_CLIENT_ID"), "from-env");
	unlink(path);
	cr_assert_eq(conf_env_file("/nonexistent/.env", err, sizeof err), 0);
}

/* Issue 14, item 13: .env quoting as shells and dotenv tools read it. */
static int env_text(const char *text, char *msg, size_t msgsz)
{
	char path[] = "/tmp/hb-env-XXXXXX";
	int fd = mkstemp(path), rc;
	FILE *f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	rc = conf_env_file(path, msg, msgsz);
	unlink(path);
	return rc;
}

Test(conf, env_file_quotes_and_comments)
{
	char e[512];
	static const char *names[] = { "HB_Q1", "HB_Q2", "HB_Q3", "HB_Q4", "HB_Q5", "HB_Q6", "HB_Q7" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		unsetenv(names[i]);
	cr_assert_eq(env_text("HB_Q1=\"v\"  # c\n"
			      "HB_Q2='it''s'\n"
			      "HB_Q3=plain value   # comment\n"
			      "HB_Q4=pa#ss\n"
			      "HB_Q5=\"a \\\"q\\\" # not a comment\"\n"
			      "HB_Q6='$HOME # literal'   \n"
			      "export HB_Q7 = \"\"\n",
			      e, sizeof e),
		     -1, "text after a closing quote is refused");
	cr_assert(strstr(e, ":2: HB_Q2: unexpected text after the closing quote"), "%s", e);
	cr_assert_str_eq(getenv("HB_Q1"), "v");
	unsetenv("HB_Q1");
	cr_assert_eq(env_text("HB_Q1=\"v\"  # c\n"
			      "HB_Q3=plain value   # comment\n"
			      "HB_Q4=pa#ss\n"
			      "HB_Q5=\"a \\\"q\\\" # not a comment\"\n"
			      "HB_Q6='$HOME # literal'   \n"
			      "export HB_Q7 = \"\"\n",
			      e, sizeof e),
		     0, "%s", e);
	cr_assert_str_eq(getenv("HB_Q1"), "v");
	cr_assert_str_eq(getenv("HB_Q3"), "plain value");
	cr_assert_str_eq(getenv("HB_Q4"), "pa#ss");
	cr_assert_str_eq(getenv("HB_Q5"), "a \"q\" # not a comment");
	cr_assert_str_eq(getenv("HB_Q6"), "$HOME # literal");
	cr_assert_str_eq(getenv("HB_Q7"), "");
}

Test(conf, env_file_unterminated_quote_names_file_line_and_variable)
{
	char e[512];
	cr_assert_eq(env_text("A_OK=1\nHB_SECRET=\"s3cr3t-value\n", e, sizeof e), -1);
	cr_assert(strstr(e, ":2: HB_SECRET: unterminated double quote"), "%s", e);
	cr_assert_null(strstr(e, "s3cr3t"), "the value leaked: %s", e);
	cr_assert_eq(env_text("HB_S2='abc\n", e, sizeof e), -1);
	cr_assert(strstr(e, ":1: HB_S2: unterminated single quote"), "%s", e);
	cr_assert_eq(env_text("BAD-NAME=1\n", e, sizeof e), -1);
	cr_assert(strstr(e, ":1: 'BAD-NAME' is not a variable name"), "%s", e);
}

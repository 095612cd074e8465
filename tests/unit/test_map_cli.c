/* The analyst's commands as a user runs them: exit codes and messages of
 * `hl7bridge map` and `hl7bridge check` (the binary of this build). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "map_test_source.h"

static const char *srcdir(void)
{
	return getenv("HB_SRCDIR") ? getenv("HB_SRCDIR") : HB_SRCDIR;
}

/* Run `hl7bridge ARGS` in the source folder; return the exit code and the
 * combined output (static buffer). */
static int run(const char *args, char **out)
{
	static char buf[1 << 16];
	char cmd[4096];
	const char *bd = getenv("HB_BUILDDIR");
	if (!bd)
		cr_skip_test("HB_BUILDDIR not set (run through make check)");
	snprintf(cmd, sizeof(cmd), "cd %s && %s/hl7bridge %s 2>&1", srcdir(), bd, args);
	FILE *p = popen(cmd, "r");
	cr_assert(p);
	size_t n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	int st = pclose(p);
	*out = buf;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(map_cli, map_prints_one_json_object_per_event)
{
	char *out;
	cr_assert_eq(run("map samples/hl7v2/rde_o11.hl7", &out), 0, "%s", out);
	int lines = 0;
	for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
		json_error_t e;
		json_t *o = json_loads(l, 0, &e);
		cr_assert(o, "not JSON: %s", l);
		cr_assert(json_is_string(json_object_get(o, "topic")));
		cr_assert(json_is_string(json_object_get(o, "key")));
		cr_assert(json_is_object(json_object_get(o, "event")));
		json_decref(o);
		lines++;
	}
	cr_assert_eq(lines, 2);
}

Test(map_cli, explain_names_each_target_and_its_path)
{
	char *out;
	cr_assert_eq(run("map --explain samples/hl7v2/rde_o11.hl7", &out), 0, "%s", out);
	cr_assert(strstr(out, "data.patientId"), "%s", out);
	cr_assert(strstr(out, "<- PID-3[where .5 = \"MR\"].1"), "%s", out);
	cr_assert(strstr(out, "<- ORC-2.1"), "%s", out);
}

Test(map_cli, rejected_message_exits_1_without_values)
{
	char *out;
	cr_assert_eq(run("map mappings/tests/rde-o11/rejected_no_drug_code.hl7", &out), 1);
	cr_assert(strstr(out, "required target data.medicationReference is empty "
			      "(source: RXE-2[codings])"), "%s", out);
	cr_assert_null(strstr(out, "Testpatient"), "a value leaked: %s", out);
}

Test(map_cli, bad_input_exits_1)
{
	char *out;
	cr_assert_eq(run("map README.md", &out), 1);
	cr_assert(strstr(out, "not HL7v2"), "%s", out);
	cr_assert_eq(run("map no-such-file.hl7", &out), 1);
}

Test(map_cli, unmatched_is_not_an_error)
{
	char *out;
	cr_assert_eq(run("map samples/hl7v2/orm_o01_lab.hl7", &out), 0);
	cr_assert(strstr(out, "no mapping matched"), "%s", out);
}

Test(map_cli, test_and_check)
{
	char *out;
	cr_assert_eq(run("map --test", &out), 0, "%s", out);
	cr_assert(strstr(out, " 0 failed"), "%s", out);
	cr_assert_eq(run("check", &out), 0, "%s", out);
	cr_assert(strstr(out, "no errors"), "%s", out);
}

Test(map_cli, check_reports_broken_mappings_and_exits_1)
{
	char *out, args[1024];
	const char *dir = mt_tmpdir();
	mt_write(dir, "x.map", "mapping x\nsource hl7v2\nevent patient\ntype 'patient.updated'\n"
			       "data.patientID = PID-3.1\n");
	snprintf(args, sizeof(args), "check -m %s", dir);
	cr_assert_eq(run(args, &out), 1);
	cr_assert(strstr(out, "x.map:5:6: unknown target field 'data.patientID'"), "%s", out);
	cr_assert(strstr(out, "     ^"), "%s", out);
}

Test(map_cli, golden_failure_prints_a_diff_and_exits_1)
{
	char *out, args[1024], cmd[2048];
	const char *dir = mt_tmpdir();
	snprintf(cmd, sizeof(cmd), "cp -r %s/mappings/. %s/ && sed -i 's/\"active\"/\"on-hold\"/' "
		 "%s/tests/rde-o11/rde_o11.expected.json", srcdir(), dir, dir);
	cr_assert_eq(system(cmd), 0);
	snprintf(args, sizeof(args), "map --test %s", dir);
	cr_assert_eq(run(args, &out), 1);
	cr_assert(strstr(out, "FAIL"), "%s", out);
	cr_assert(strstr(out, "-         \"status\": \"on-hold\""), "%s", out);
	cr_assert(strstr(out, "+         \"status\": \"active\""), "%s", out);
}

/* Issue 14, items 6 and 9: `check -c` reads the configuration exactly as `run`
 * does, so a configuration `run` refuses never passes `check`. */
static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

Test(map_cli, check_refuses_every_configuration_run_refuses)
{
	static const struct {
		const char *conf, *why;
	} bad[] = {
		{ "[listener a]\nbind = 127.0.0.1:0\nmax.conections = 3\n", "unknown key 'max.conections'" },
		{ "[drop d]\npath = /tmp/hb-nowhere\nquiet = 1s\n", "unknown key 'quiet'" },
		{ "[http]\nbind = 127.0.0.1:0\nplaygroud = on\n", "unknown key 'playgroud'" },
		{ "[bridge]\nlog.level = loud\n", "log.level" },
		{ "[http]\nbind = 0.0.0.0:0\nplayground = on\nplayground.allow = any\n",
		  "serves patient samples to anyone" },
		{ "[http]\nbind = :0\nplayground = on\nplayground.allow = any\n",
		  "serves patient samples to anyone" },
		{ "[http]\nbind = 127.0.0.1:0\nidle.timeout = 10ms\n", "at least 1s" },
		{ "[listener m]\nbind = 127.0.0.1:0\ntls = on\ntls.cert = c\ntls.key = k\ntls.ca = a\n"
		  "tls.verify.client = on\ntls.allowed.subjects = CN=engine-1, CN=engine-2\n",
		  "separate entries with ';'" },
		{ "[listener m]\nbind = 127.0.0.1:0\ntls.allowed.subjects = CN=engine-1\n",
		  "needs tls = on and tls.verify.client = on" },
	};
	char path[] = "/tmp/hb-check-XXXXXX", args[512], *out, first[4096];
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char text[1024];
		snprintf(text, sizeof text, "[kafka]\nbootstrap.servers = 127.0.0.1:1\n%s", bad[i].conf);
		write_file(path, text);
		snprintf(args, sizeof args, "check -c %s", path);
		cr_assert_eq(run(args, &out), 1, "check passed:\n%s\n%s", bad[i].conf, out);
		cr_assert(strstr(out, bad[i].why), "check: %s\n%s", bad[i].conf, out);
		snprintf(first, sizeof first, "%s", out);
		snprintf(args, sizeof args, "run -c %s", path);
		cr_assert_eq(run(args, &out), 1, "run started:\n%s\n%s", bad[i].conf, out);
		cr_assert(strstr(out, bad[i].why), "run: %s\n%s", bad[i].conf, out);
	}
	/* the same playground behind a token, or on loopback, is accepted */
	write_file(path, "[kafka]\nbootstrap.servers = 127.0.0.1:1\n[http]\nbind = 0.0.0.0:0\n"
			 "playground = on\nplayground.allow = any\ntoken = t0ken\n");
	snprintf(args, sizeof args, "check -c %s", path);
	cr_assert_eq(run(args, &out), 0, "%s", out);
	write_file(path, "[kafka]\nbootstrap.servers = 127.0.0.1:1\n[http]\nbind = 127.0.0.1:0\n"
			 "playground = on\nplayground.allow = any\n");
	cr_assert_eq(run(args, &out), 0, "%s", out);
	unlink(path);
}

/* What `run` refuses once the file is read (TLS material it cannot load),
 * `check` refuses too. */
Test(map_cli, check_refuses_tls_material_run_could_not_load)
{
	char path[] = "/tmp/hb-check-tls-XXXXXX", args[512], *out;
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	write_file(path, "[kafka]\nbootstrap.servers = 127.0.0.1:1\n[listener m]\n"
			 "bind = 127.0.0.1:0\ntls = on\ntls.cert = /nonexistent/c.pem\n"
			 "tls.key = /nonexistent/k.pem\n");
	snprintf(args, sizeof args, "check -c %s", path);
	cr_assert_eq(run(args, &out), 1, "%s", out);
	cr_assert(strstr(out, "listener m: TLS certificate /nonexistent/c.pem"), "%s", out);
	write_file(path, "[kafka]\nbootstrap.servers = 127.0.0.1:1\n[http]\nbind = 127.0.0.1:0\n"
			 "tls.cert = /nonexistent/c.pem\ntls.key = /nonexistent/k.pem\n");
	cr_assert_eq(run(args, &out), 1, "%s", out);
	cr_assert(strstr(out, "[http] tls.cert /nonexistent/c.pem"), "%s", out);
	unlink(path);
}

/* Run `hl7bridge ARGS` in DIR (not the source folder), with ENV prefixed. */
static int run_in(const char *dir, const char *env, const char *args, char **out)
{
	static char buf[1 << 16];
	char cmd[8192];
	const char *bd = getenv("HB_BUILDDIR");
	if (!bd)
		cr_skip_test("HB_BUILDDIR not set (run through make check)");
	snprintf(cmd, sizeof(cmd), "cd %s && %s %s/hl7bridge %s 2>&1", dir, env, bd, args);
	FILE *p = popen(cmd, "r");
	cr_assert(p);
	size_t n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	int st = pclose(p);
	*out = buf;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Outside a checkout, the defaults are the configured install paths. */
Test(map_cli, defaults_outside_the_tree_are_the_installed_paths)
{
	char *out;
	cr_assert_eq(run_in(mt_tmpdir(), "", "map --help", &out), 0, "%s", out);
	cr_assert(strstr(out, "(default: " HB_SYSCONFDIR "/mappings)"), "%s", out);
	cr_assert(strstr(out, "(default: " HB_DATADIR "/schemas)"), "%s", out);
	cr_assert_eq(run_in(mt_tmpdir(), "", "run --help", &out), 0, "%s", out);
	cr_assert(strstr(out, HB_SYSCONFDIR "/hl7bridge.conf"), "%s", out);
	cr_assert_eq(run("map --help", &out), 0, "%s", out);
	cr_assert(strstr(out, "(default: mappings)"), "in the tree: %s", out);
}

/* check -c checks the mappings and schemas the configuration names, from any
 * working directory. */
Test(map_cli, check_with_a_config_uses_its_mappings_and_schemas)
{
	char *out, env[2048], args[1024];
	snprintf(env, sizeof(env), "HL7BRIDGE_MAPPINGS=%s/mappings HL7BRIDGE_SCHEMAS=%s/conf/schemas",
		 srcdir(), srcdir());
	snprintf(args, sizeof(args), "check -c %s/conf/hl7bridge.conf", srcdir());
	cr_assert_eq(run_in(mt_tmpdir(), env, args, &out), 0, "%s", out);
	cr_assert(strstr(out, "no errors"), "%s", out);
	/* -m still wins over the configuration */
	snprintf(args, sizeof(args), "check -c %s/conf/hl7bridge.conf -m %s", srcdir(), mt_tmpdir());
	cr_assert_eq(run_in(mt_tmpdir(), env, args, &out), 0, "%s", out);
	cr_assert(strstr(out, "0 mappings"), "%s", out);
}

/* The analyst's commands as a user runs them: exit codes and messages of
 * `hl7bridge map` and `hl7bridge check` (the binary of this build). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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

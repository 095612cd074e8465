/*
 * Topic administration against the real broker: create what the
 * configuration names with its settings, recognise what exists, and report
 * an existing topic whose settings differ.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "itest.h"
#include "publish/kconf.h"
#include "publish/topics.h"

struct seen {
	int created, exists, problems;
	char last_problem[256];
};

static void report_cb(void *opaque, const struct topic_spec *t, int problem, const char *what)
{
	struct seen *s = opaque;
	if (problem) {
		s->problems++;
		snprintf(s->last_problem, sizeof s->last_problem, "%s: %s", t->name, what);
	} else if (strcmp(what, "created") == 0) {
		s->created++;
	} else {
		s->exists++;
	}
}

static struct conf *make_conf(const char *prefix, int partitions)
{
	char text[2048], err[512];
	snprintf(text, sizeof text,
		 "[kafka]\nbootstrap.servers = %s\n"
		 "[topics]\nprefix = %s.\nevents = prescription.created, patient.updated\n"
		 "partitions = %d\nretention = 2d\ndeadletter = %s.dlq\nstate = %s.state\n"
		 "raw = on\nraw.hl7v2 = %s.raw.hl7v2\nraw.fhir = %s.raw.fhir\n",
		 itest_bootstrap(), prefix, partitions, prefix, prefix, prefix, prefix);
	struct conf *c = conf_parse(text, "topics-test.conf", err, sizeof err);
	cr_assert_not_null(c, "%s", err);
	return c;
}

Test(topics, create_then_recognise_then_report_differences, .timeout = 120)
{
	char prefix[128], err[512];
	struct topic_plan plan;
	struct seen s = { 0 };
	int emb;

	itest_unique_name(prefix, sizeof prefix, "itest-topics");
	struct conf *c = make_conf(prefix, 4);
	rd_kafka_conf_t *kc = kconf_build(c, conf_section(c, "kafka", NULL), &emb, err, sizeof err);
	cr_assert_not_null(kc, "%s", err);
	cr_assert_eq(topics_plan(c, &plan, err, sizeof err), 0, "%s", err);
	cr_assert_eq(plan.n, 6, "2 events, dead letters, 2 raw, state");
	cr_assert_eq(conf_unused(c, err, sizeof err), 0, "%s", err);

	/* check before create: everything is missing */
	cr_assert_eq(topics_apply(kc, &plan, 0, 30000, report_cb, &s, err, sizeof err), 6);

	memset(&s, 0, sizeof s);
	cr_assert_eq(topics_apply(kc, &plan, 1, 30000, report_cb, &s, err, sizeof err), 0, "%s",
		     s.last_problem);
	cr_assert_eq(s.created, 6);

	memset(&s, 0, sizeof s);
	cr_assert_eq(topics_apply(kc, &plan, 1, 30000, report_cb, &s, err, sizeof err), 0, "%s",
		     s.last_problem);
	cr_assert_eq(s.created, 0, "created again");
	cr_assert_eq(s.exists, 6);
	topics_plan_clear(&plan);
	conf_free(c);

	/* The same names with 8 partitions: every non-state topic differs. */
	c = make_conf(prefix, 8);
	cr_assert_eq(topics_plan(c, &plan, err, sizeof err), 0, "%s", err);
	memset(&s, 0, sizeof s);
	cr_assert_eq(topics_apply(kc, &plan, 1, 30000, report_cb, &s, err, sizeof err), 5);
	cr_assert(strstr(s.last_problem, "has 4 partitions, the configuration says 8") != NULL, "%s",
		  s.last_problem);
	topics_plan_clear(&plan);
	conf_free(c);
	rd_kafka_conf_destroy(kc);
}

Test(topics, state_topic_is_compacted_and_names_are_checked, .timeout = 60)
{
	char err[512];
	struct topic_plan plan;
	struct conf *c = conf_parse("[topics]\nevents = bad/name\n", "t.conf", err, sizeof err);
	cr_assert_eq(topics_plan(c, &plan, err, sizeof err), -1);
	cr_assert(strstr(err, "'healthcare.bad/name' is not a valid Kafka topic name") != NULL, "%s", err);
	conf_free(c);

	c = conf_parse("[topics]\n", "t.conf", err, sizeof err);
	cr_assert_eq(topics_plan(c, &plan, err, sizeof err), 0, "%s", err);
	cr_assert_eq(plan.n, 10, "8 default events, dead letters, state");
	cr_assert_str_eq(plan.t[0].name, "healthcare.prescription.created");
	cr_assert_eq(plan.t[0].partitions, 12);
	cr_assert_eq(plan.t[0].retention_ms, 7LL * 86400000);
	cr_assert_str_eq(plan.t[plan.n - 1].name, "hl7bridge.state");
	cr_assert_str_eq(plan.t[plan.n - 1].cleanup, "compact,delete");
	topics_plan_clear(&plan);
	conf_free(c);
}

Test(topics, cli_creates_and_reports, .timeout = 120)
{
	char prefix[128], path[256], cmd[1024];
	const char *build = getenv("HB_BUILDDIR");
	cr_assert_not_null(build);
	itest_unique_name(prefix, sizeof prefix, "itest-cli");
	snprintf(path, sizeof path, "/tmp/%s.conf", prefix);
	FILE *f = fopen(path, "w");
	fprintf(f, "[kafka]\nbootstrap.servers = %s\n[topics]\nprefix = %s.\nevents = patient.created\n"
		   "partitions = 2\ndeadletter = %s.dlq\nstate = %s.state\n",
		itest_bootstrap(), prefix, prefix, prefix);
	fclose(f);
	snprintf(cmd, sizeof cmd, "%s/hl7bridge topics create -c %s", build, path);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(system(cmd), 0, "second create is not idempotent");
	snprintf(cmd, sizeof cmd, "%s/hl7bridge topics check -c %s", build, path);
	cr_assert_eq(system(cmd), 0);
	unlink(path);
}

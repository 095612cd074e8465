/*
 * hl7bridge topics create|check [-c FILE]
 *
 * create: creates every topic the configuration names (events, dead letters,
 * raw copies when enabled, the ledger's state topic) with its partitions,
 * replication factor, retention and cleanup policy; existing topics are
 * left alone and compared. check: only compares. Exit 1 when anything is
 * missing (check) or differs from the configuration.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "publish/kconf.h"
#include "publish/topics.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: hl7bridge topics create|check [-c FILE]\n"
		     "  create  create the configured topics that are missing, check the others\n"
		     "  check   only check that they exist with the configured settings\n"
		     "  -c FILE configuration file (default %s)\n",
		CLI_DEFAULT_CONF);
}

static void report_cb(void *opaque, const struct topic_spec *t, int problem, const char *what)
{
	int *problems = opaque;
	if (problem) {
		(*problems)++;
		printf("PROBLEM %s: %s\n", t->name, what);
	} else if (strcmp(what, "created") == 0) {
		char ret[32];
		if (t->retention_ms < 0)
			snprintf(ret, sizeof ret, "forever");
		else if (t->retention_ms % 86400000 == 0)
			snprintf(ret, sizeof ret, "%lldd", t->retention_ms / 86400000);
		else
			snprintf(ret, sizeof ret, "%lldms", t->retention_ms);
		printf("created %s (%d partitions, replication %d, retention %s, %s)\n", t->name,
		       t->partitions, t->replication, ret, t->cleanup);
	} else {
		printf("%s %s\n", what, t->name);
	}
}

int cmd_topics(int argc, char **argv)
{
	const char *path = NULL, *verb;
	char err[1024];
	struct topic_plan plan;
	struct conf *c;
	rd_kafka_conf_t *kc;
	int opt, embedded, problems = 0, rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	verb = argv[1];
	if (strcmp(verb, "create") != 0 && strcmp(verb, "check") != 0) {
		usage(stderr);
		return 2;
	}
	optind = 2;
	while ((opt = getopt(argc, argv, "c:h")) != -1) {
		if (opt == 'c') {
			path = optarg;
		} else {
			usage(opt == 'h' ? stdout : stderr);
			return opt == 'h' ? 0 : 2;
		}
	}
	c = cli_load_conf(path, err, sizeof err);
	if (!c) {
		fprintf(stderr, "hl7bridge topics: %s\n", err);
		return 1;
	}
	kc = kconf_build(c, conf_section(c, "kafka", NULL), &embedded, err, sizeof err);
	if (!kc || topics_plan(c, &plan, err, sizeof err) != 0) {
		fprintf(stderr, "hl7bridge topics: %s\n", err);
		if (kc)
			rd_kafka_conf_destroy(kc);
		conf_free(c);
		return 1;
	}
	if (embedded) {
		fprintf(stderr, "hl7bridge topics: bootstrap.servers is 'embedded': the in-process "
				"broker lives inside 'hl7bridge run', which creates its topics itself\n");
		rc = 1;
	} else {
		rc = topics_apply(kc, &plan, strcmp(verb, "create") == 0, 30000, report_cb, &problems,
				  err, sizeof err);
		if (rc < 0)
			fprintf(stderr, "hl7bridge topics: %s\n", err);
		rc = rc != 0 ? 1 : 0;
	}
	topics_plan_clear(&plan);
	rd_kafka_conf_destroy(kc);
	conf_free(c);
	return rc;
}

/*
 * hl7bridge — HL7v2 / FHIR to Kafka bridge with exactly-once delivery.
 *
 * main() only dispatches subcommands; each lives in its own module and has
 * the signature int cmd_<name>(int argc, char **argv) returning the exit code.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <libxml/xmlversion.h>
#include <librdkafka/rdkafka.h>
#include <openssl/opensslv.h>

#include "cli.h"
#include "map/map_cli.h"
#include "util.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* Subcommands, in the order --help lists them. Add an entry when the
 * subcommand exists, not before. */
static const struct command commands[] = {
	{ "run", cmd_run, "run the bridge: MLLP listeners, file drops, mappings, Kafka (exactly once)" },
	{ "send", cmd_send, "send HL7v2 messages over MLLP (TLS too) and print each ACK" },
	{ "map", cmd_map, "print the events the mappings make of input files; --test runs golden tests" },
	{ "check", cmd_check, "check the configuration, every mapping and every event schema" },
	{ "topics", cmd_topics, "create or check the Kafka topics the configuration names" },
	{ "replay", cmd_replay, "re-map dead letters or raw input with today's mappings, exactly once (--dry-run --diff)" },
	{ "consume", cmd_consume, "print what a read_committed consumer sees on topics (JSON lines)" },
	{ "takeover", cmd_takeover, "take over a dead instance: fence its transactions, resume its files" },
	{ NULL, NULL, NULL },
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hl7bridge [--version] [--help] <command> [<args>]\n"
		"\n"
		"hl7bridge turns HL7v2 (MLLP, batch files) and FHIR feeds into Kafka\n"
		"events, exactly once.\n"
		"\n");
	if (commands[0].name) {
		fprintf(out, "commands:\n");
		for (const struct command *c = commands; c->name; c++)
			fprintf(out, "  %-10s %s\n", c->name, c->summary);
		fprintf(out, "\nRun 'hl7bridge <command> --help' for a command's options.\n");
	}
}

static void version(void)
{
	printf("hl7bridge %s\n", PACKAGE_VERSION);
	printf("  librdkafka %s, jansson %s, libxml2 %s, %s\n", rd_kafka_version_str(),
	       JANSSON_VERSION, LIBXML_DOTTED_VERSION, OPENSSL_VERSION_TEXT);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		version();
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (const struct command *c = commands; c->name; c++) {
		if (strcmp(argv[1], c->name) == 0)
			return c->run(argc - 1, argv + 1);
	}
	fprintf(stderr, "hl7bridge: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}

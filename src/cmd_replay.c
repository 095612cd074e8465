/*
 * hl7bridge replay -c FILE --from deadletter|raw-hl7v2|raw-fhir|TOPIC
 *     [--partition P [--offset A..B]] [--since TIME] [--until TIME] [--group G]
 *     [--republish] [--batch N] [--dry-run [--diff [--against DIR] [--values]]]
 *
 * The option parsing; the work is publish/replay.c.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "publish/replay.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hl7bridge replay [-c FILE] --from SOURCE [selection] [options]\n"
		"  Re-map dead letters or raw input with today's mappings and publish the\n"
		"  result exactly once: events, new dead letters and the consumer group's\n"
		"  offsets in one transaction. Ctrl-C stops after the current transaction;\n"
		"  the same command again resumes.\n"
		"  -c FILE              configuration (default %s)\n"
		"  --from SOURCE        deadletter, raw-hl7v2, raw-fhir, or a topic name\n"
		"  --partition P        only partition P\n"
		"  --offset A..B        with --partition: offsets A to B (inclusive)\n"
		"  --since TIME         records from TIME (ms since the epoch or\n"
		"  --until TIME         YYYY-MM-DDTHH:MM:SSZ) up to, not including, --until\n"
		"  --group G            consumer group (default: named after the selection)\n"
		"  --republish          also inputs whose events were published before\n"
		"                       (raw replays after a mapping change; once per mapping set)\n"
		"  --batch N            inputs per transaction (default [publisher] max.messages)\n"
		"  --dry-run            publish nothing, count what would happen\n"
		"  --diff               with --dry-run: compare with the events published before\n"
		"  --against DIR        ... or with what the mappings in DIR make\n"
		"  --values             show values in the diff (patient data!)\n"
		"  --progress S         progress line every S seconds (default 2, 0: none)\n",
		CLI_DEFAULT_CONF);
}

/* ms since the epoch, or an ISO-8601 UTC time; -1 if neither. */
static int64_t parse_time(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (*s && !*end && v >= 0)
		return v;
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end || (*end && strcmp(end, "Z") != 0))
		return -1;
	return (int64_t)timegm(&tm) * 1000;
}

int cmd_replay(int argc, char **argv)
{
	struct replay_opts o;
	replay_opts_defaults(&o);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && v) {
			o.conf_path = argv[++i];
		} else if (strcmp(a, "--from") == 0 && v) {
			o.from = argv[++i];
		} else if (strcmp(a, "--partition") == 0 && v) {
			o.partition = atoi(argv[++i]);
		} else if (strcmp(a, "--offset") == 0 && v) {
			long long lo, hi;
			if (sscanf(v, "%lld..%lld", &lo, &hi) != 2 || lo < 0 || hi < lo) {
				fprintf(stderr, "hl7bridge replay: --offset wants A..B, got '%s'\n", v);
				return 2;
			}
			o.off_lo = lo;
			o.off_hi = hi;
			i++;
		} else if ((strcmp(a, "--since") == 0 || strcmp(a, "--until") == 0) && v) {
			int64_t t = parse_time(v);
			if (t < 0) {
				fprintf(stderr, "hl7bridge replay: %s: not a time: '%s'\n", a, v);
				return 2;
			}
			*(strcmp(a, "--since") == 0 ? &o.since_ms : &o.until_ms) = t;
			i++;
		} else if (strcmp(a, "--group") == 0 && v) {
			o.group = argv[++i];
		} else if (strcmp(a, "--batch") == 0 && v) {
			o.batch = atoi(argv[++i]);
		} else if (strcmp(a, "--progress") == 0 && v) {
			o.progress_ms = (int)(atof(argv[++i]) * 1000);
		} else if (strcmp(a, "--against") == 0 && v) {
			o.against = argv[++i];
		} else if (strcmp(a, "--republish") == 0) {
			o.republish = 1;
		} else if (strcmp(a, "--dry-run") == 0) {
			o.dry_run = 1;
		} else if (strcmp(a, "--diff") == 0) {
			o.diff = 1;
		} else if (strcmp(a, "--values") == 0) {
			o.values = 1;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "hl7bridge replay: unknown argument '%s' (see --help)\n", a);
			return 2;
		}
	}
	if (!o.from) {
		fprintf(stderr, "hl7bridge replay: --from is required (see --help)\n");
		return 2;
	}
	if (o.off_lo >= 0 && o.partition < 0) {
		fprintf(stderr, "hl7bridge replay: --offset needs --partition\n");
		return 2;
	}
	if ((o.diff || o.against || o.values) && !o.dry_run) {
		fprintf(stderr, "hl7bridge replay: --diff, --against and --values need --dry-run\n");
		return 2;
	}
	if (o.against || o.values)
		o.diff = 1;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return replay_run(&o, &stop, stdout);
}

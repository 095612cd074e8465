/*
 * hl7bridge takeover NAME — take over a dead instance's work (takeover.h):
 * refuse while NAME's heartbeat is recent (unless --force), fence its
 * transactional ids, move its claimed files back to the inboxes.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "daemon_conf.h"
#include "publish/kconf.h"
#include "takeover.h"
#include "util.h"

/* How far back the state topic is read for NAME's heartbeats and lanes. */
#define TAKEOVER_LOOKBACK_MS (15LL * 60 * 1000)
#define TAKEOVER_TIMEOUT_MS 60000

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hl7bridge takeover NAME [-c FILE] [--force] [--lanes N]\n"
		"  Take over instance NAME, which died and does not come back: fence its\n"
		"  transactional ids (NAME-0 .. NAME-<lanes-1>; its open transactions are\n"
		"  aborted and it can commit nothing more), then move the files it had\n"
		"  claimed (work/NAME/ of every [drop]) back to inbox/, where any instance\n"
		"  resumes them where the ledger says.\n"
		"  Refused while NAME's heartbeat in the state topic is recent: it may be\n"
		"  alive. --force skips that check.\n"
		"  -c FILE    configuration of an instance sharing NAME's state topic and\n"
		"             drops (default %s)\n"
		"  --lanes N  fence at least N lanes (default: the most of the\n"
		"             configuration's lanes and what the state topic shows)\n",
		CLI_DEFAULT_CONF);
}

int cmd_takeover(int argc, char **argv)
{
	static const struct option opts[] = { { "force", no_argument, NULL, 'f' },
					       { "lanes", required_argument, NULL, 'l' },
					       { "help", no_argument, NULL, 'h' },
					       { NULL, 0, NULL, 0 } };
	const char *path = NULL, *name = NULL;
	struct daemon_settings *s = calloc(1, sizeof *s);
	struct takeover_info info;
	struct conf *c = NULL;
	rd_kafka_conf_t *kc = NULL;
	char err[1024];
	int opt, force = 0, lanes = 0, embedded = 0, rc = 1, moved;
	int64_t quiet_ms, age_ms;

	if (!s) {
		fprintf(stderr, "hl7bridge takeover: out of memory\n");
		return 1;
	}
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (opt == 'c') {
			path = optarg;
		} else if (opt == 'f') {
			force = 1;
		} else if (opt == 'l') {
			lanes = atoi(optarg);
		} else {
			usage(opt == 'h' ? stdout : stderr);
			free(s);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		free(s);
		return 2;
	}
	name = argv[optind];
	if (!(c = cli_load_conf(path, err, sizeof err)) ||
	    !(kc = kconf_build(c, conf_section(c, "kafka", NULL), &embedded, err, sizeof err)) ||
	    daemon_settings_load(c, s, err, sizeof err) != 0) {
		fprintf(stderr, "hl7bridge takeover: %s\n", err);
		goto out;
	}
	if (embedded) {
		fprintf(stderr, "hl7bridge takeover: bootstrap.servers is 'embedded': there is no other "
				"instance to take over\n");
		goto out;
	}
	if (strcmp(name, s->instance) == 0) {
		fprintf(stderr, "hl7bridge takeover: %s is this configuration's own instance; run it "
				"with the configuration of another instance\n", name);
		goto out;
	}
	if (takeover_scan(kc, s->topics.state, name, util_wall_ms() - TAKEOVER_LOOKBACK_MS,
			  TAKEOVER_TIMEOUT_MS, &info, err, sizeof err) != 0) {
		fprintf(stderr, "hl7bridge takeover: %s\n", err);
		goto out;
	}
	/* Recent: younger than the automatic takeover's silence, or than two
	 * heartbeats plus a transaction's lifetime. */
	quiet_ms = s->takeover_after_ms ? s->takeover_after_ms
					: 2 * s->heartbeat_ms + takeover_txn_timeout_ms(kc);
	age_ms = util_wall_ms() - info.hb_ts_ms;
	if (info.heartbeats && age_ms < quiet_ms) {
		if (!force) {
			fprintf(stderr,
				"hl7bridge takeover: %s committed a heartbeat %lld ms ago (less than %lld "
				"ms): it looks alive; refusing (--force to take it over anyway)\n",
				name, (long long)age_ms, (long long)quiet_ms);
			goto out;
		}
		fprintf(stderr, "hl7bridge takeover: %s committed a heartbeat %lld ms ago; --force: "
				"taking it over anyway\n", name, (long long)age_ms);
	} else if (!info.heartbeats) {
		fprintf(stderr, "hl7bridge takeover: no heartbeat of %s in the last %lld minutes\n",
			name, (long long)(TAKEOVER_LOOKBACK_MS / 60000));
	}
	if (lanes < s->pub.lanes)
		lanes = s->pub.lanes;
	if (lanes < info.lanes)
		lanes = info.lanes;
	if (takeover_fence(kc, name, lanes, TAKEOVER_TIMEOUT_MS, err, sizeof err) != 0) {
		fprintf(stderr, "hl7bridge takeover: fencing %s failed: %s\n", name, err);
		goto out;
	}
	printf("fenced %s-0 .. %s-%d (open transactions aborted)\n", name, name, lanes - 1);
	moved = takeover_files(s->drops, s->ndrops, name);
	printf("moved %d file%s of %s back to the inbox%s\n", moved, moved == 1 ? "" : "s", name,
	       s->ndrops == 1 ? "" : "es");
	rc = 0;
out:
	if (kc)
		rd_kafka_conf_destroy(kc);
	if (c) {
		daemon_settings_clear(s);
		conf_free(c);
	}
	free(s);
	return rc;
}

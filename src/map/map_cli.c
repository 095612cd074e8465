/* map_cli — `hl7bridge map` (what would be published, --explain, --test) and
 * `hl7bridge check` (every mapping and schema). No Kafka involved. */
#include "map/map_cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "daemon_conf.h"
#include "daemon_priv.h"
#include "publish/kconf.h"
#include "map/golden.h"
#include "map/input.h"
#include "map/map.h"
#include "publish/topics.h"
#include "util.h"

#define CLI_MAX_INPUT (256u * 1024 * 1024)

struct cli_opts {
	const char *mappings;
	const char *schemas;
	const char *conf;
	int explain, test, update;
	int mappings_given, schemas_given;
};

static void map_usage(FILE *out)
{
	fprintf(out,
		"usage: hl7bridge map [-m DIR] [-s DIR] [--explain] FILE... (- for stdin)\n"
		"       hl7bridge map [-s DIR] --test [--update] [DIR]\n"
		"\n"
		"Print the events the mappings make of each input, one JSON object per line:\n"
		"{\"topic\": …, \"key\": …, \"event\": {…}}. Inputs: HL7v2 messages, batches and\n"
		"MLLP captures, FHIR JSON or XML resources, Bundles, NDJSON.\n"
		"\n"
		"  -m, --mappings DIR  mappings folder (default: %s)\n"
		"  -s, --schemas DIR   event schemas folder (default: %s)\n"
		"  -e, --explain       before each event, each target's value and its source\n"
		"  -t, --test          run the golden tests in DIR/tests (DIR default: the mappings)\n"
		"  -u, --update        with --test: write the actual output as the expectation\n"
		"\n"
		"Exit status: 0, or 1 when an input is bad, a message is rejected or a test fails.\n",
		cli_default_mappings(), cli_default_schemas());
}

static int parse_opts(int argc, char **argv, struct cli_opts *o, int is_check)
{
	static const struct option longopts[] = {
		{ "mappings", required_argument, NULL, 'm' },
		{ "schemas", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "explain", no_argument, NULL, 'e' },
		{ "test", no_argument, NULL, 't' },
		{ "update", no_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	o->mappings = cli_default_mappings();
	o->schemas = cli_default_schemas();
	optind = 1;
	while ((c = getopt_long(argc, argv, is_check ? "m:s:c:h" : "m:s:etuh", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': o->mappings = optarg; o->mappings_given = 1; break;
		case 's': o->schemas = optarg; o->schemas_given = 1; break;
		case 'c': o->conf = optarg; break;
		case 'e': o->explain = 1; break;
		case 't': o->test = 1; break;
		case 'u': o->update = 1; break;
		case 'h': return 1;
		default: return -1;
		}
	}
	return 0;
}

static struct map_set *load(const struct cli_opts *o)
{
	struct map_diag d = { 0 };
	struct map_set *s = map_set_load(o->mappings, o->schemas, &d);
	if (!s) {
		fputs(d.text ? d.text : "cannot load the mappings\n", stderr);
		fprintf(stderr, "%d error%s; no mapping loaded\n", d.errors, d.errors == 1 ? "" : "s");
	}
	map_diag_clear(&d);
	return s;
}

struct run {
	const struct map_set *s;
	int explain;
	int failed;
	const char *label;
};

static int print_event_cb(const struct map_event *ev, void *opaque)
{
	struct run *r = opaque;
	if (r->explain) {
		size_t i;
		json_t *x;
		printf("# %s: mapping %s (%.12s) -> topic %s, key %s\n", r->label, ev->mapping,
		       ev->mapping_hash, ev->topic, *ev->key ? ev->key : "(empty)");
		json_array_foreach(ev->explain, i, x) {
			json_t *jv = json_object_get(x, "value");
			char *v = json_is_null(jv) ? NULL : json_dumps(jv, JSON_ENCODE_ANY);
			printf("#   %-40s = %-30s <- %s\n", json_string_value(json_object_get(x, "target")),
			       v ? v : "(empty)", json_string_value(json_object_get(x, "from")));
			free(v);
		}
	}
	/* {"topic": …, "key": …, "event": …} with the event written by the
	 * encoder the daemon uses */
	json_t *head = json_pack("{s:s, s:s}", "topic", ev->topic, "key", ev->key);
	char *h = json_dumps(head, JSON_COMPACT | JSON_PRESERVE_ORDER);
	char *e = map_event_json(ev);
	json_decref(head);
	if (!h || !e) {
		free(h);
		free(e);
		return -1;
	}
	h[strlen(h) - 1] = '\0'; /* drop the closing brace */
	printf("%s,\"event\":%s}\n", h, e);
	free(h);
	free(e);
	return 0;
}

static int input_cb(const struct map_item *it, void *opaque)
{
	struct run *r = opaque;
	struct map_reject rej = { 0 };
	const struct map_input *in = it->in;
	const char *label = it->label;
	size_t n = 0;
	if (!in) {
		/* unreadable: say why, go on with the next message */
		fprintf(stderr, "%s: %s\n", label, it->error);
		r->failed = 1;
		return 0;
	}
	r->label = label;
	enum map_result res = map_apply(r->s, in, r->explain ? MAP_EXPLAIN : 0, print_event_cb, r,
					&n, &rej);
	switch (res) {
	case MAP_OK:
		break;
	case MAP_UNMATCHED:
		fprintf(stderr, "%s: no mapping matched (filtered by default)\n", label);
		break;
	case MAP_REJECTED:
	case MAP_ERROR:
		fprintf(stderr, "%s: rejected (HL7 error %d): %s\n", label, rej.err_code, rej.reason);
		r->failed = 1;
		break;
	}
	return 0;
}

/* `-`: the standard input, up to the same limit as a file. */
static char *read_stdin(size_t *len, char *err, size_t errsz)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	while (buf) {
		size_t got = fread(buf + n, 1, cap - n, stdin);
		n += got;
		if (got == 0)
			break;
		if (n == cap) {
			if (cap >= CLI_MAX_INPUT) {
				free(buf);
				util_seterr(err, errsz, "stdin: larger than %u bytes", CLI_MAX_INPUT);
				return NULL;
			}
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb) {
				free(buf);
				util_seterr(err, errsz, "stdin: out of memory");
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (!buf) {
		util_seterr(err, errsz, "stdin: out of memory");
		return NULL;
	}
	if (ferror(stdin)) {
		free(buf);
		util_seterr(err, errsz, "stdin: cannot read");
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

int cmd_map(int argc, char **argv)
{
	struct cli_opts o = { 0 };
	int rc = parse_opts(argc, argv, &o, 0);
	if (rc) {
		map_usage(rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : 2;
	}
	if (o.test) {
		struct map_golden_stats st;
		char tests[4096];
		if (optind < argc)
			o.mappings = argv[optind];
		struct map_set *s = load(&o);
		if (!s)
			return 1;
		snprintf(tests, sizeof(tests), "%s/tests", o.mappings);
		rc = map_golden_run(s, tests, o.update, stdout, &st);
		map_set_free(s);
		return rc ? 1 : 0;
	}
	if (optind >= argc) {
		map_usage(stderr);
		return 2;
	}
	struct map_set *s = load(&o);
	if (!s)
		return 1;
	struct run r = { s, o.explain, 0, NULL };
	for (int i = optind; i < argc; i++) {
		char err[512];
		size_t len;
		char *buf = strcmp(argv[i], "-") == 0 ? read_stdin(&len, err, sizeof(err))
						      : util_read_file(argv[i], CLI_MAX_INPUT, &len, err,
								       sizeof(err));
		if (!buf) {
			fprintf(stderr, "%s\n", err);
			r.failed = 1;
			continue;
		}
		if (map_input_items(argv[i], buf, len, util_wall_ms(), input_cb, &r, err,
				    sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			r.failed = 1;
		}
		free(buf);
	}
	fflush(stdout);
	map_set_free(s);
	return r.failed ? 1 : 0;
}

struct topic_check {
	const struct topic_plan *plan;
	const char *mapping, *conf;
	int errors;
};

static void topic_cb(const char *topic, void *arg)
{
	struct topic_check *tc = arg;
	for (int i = 0; i < tc->plan->n; i++)
		if (tc->plan->t[i].role == TOPIC_EVENT && strcmp(tc->plan->t[i].name, topic) == 0)
			return;
	fprintf(stderr, "%s: mapping %s can publish to %s, which the configuration does not "
			"create: add its event type to [topics] events\n", tc->conf, tc->mapping,
		topic);
	tc->errors++;
}

/* Every topic a mapping can publish to must be one the configuration creates. */
static int check_topics(const struct map_set *s, const struct topic_plan *plan, const char *conf)
{
	struct topic_check tc = { plan, NULL, conf, 0 };
	for (size_t i = 0; i < map_set_count(s); i++) {
		tc.mapping = map_set_name(s, i);
		if (map_set_types(s, i, 1, topic_cb, &tc) != 0)
			printf("note: mapping %s: its topics depend on the message; not checked "
			       "against the configuration\n", tc.mapping);
	}
	return tc.errors;
}

int cmd_check(int argc, char **argv)
{
	struct cli_opts o = { 0 };
	int rc = parse_opts(argc, argv, &o, 1);
	if (rc) {
		FILE *out = rc > 0 ? stdout : stderr;
		fprintf(out, "usage: hl7bridge check [-c FILE] [-m DIR] [-s DIR]\n\n"
			     "Compile every mapping in DIR (default: %s) against the event\n"
			     "schemas (default: %s). With -c, also check the configuration\n"
			     "exactly as `run` reads it (every key, every section; the mappings and\n"
			     "schemas it names unless -m/-s are given), and that every topic a\n"
			     "mapping can publish to is created by it.\n"
			     "Exit status 1 on any error.\n",
			cli_default_mappings(), cli_default_schemas());
		return rc > 0 ? 0 : 2;
	}
	struct daemon_settings ds;
	const struct topic_plan *plan = NULL;
	int errors = 0;
	char err[1024];
	if (o.conf) {
		/* the configuration exactly as `run` reads it: every section, every
		 * key, and the combinations it refuses */
		struct conf *c = cli_load_conf(o.conf, err, sizeof(err));
		if (!c) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		rd_kafka_conf_t *kc = NULL;
		if (daemon_conf_validate(c, &ds, &kc, NULL, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s\n", err);
			daemon_settings_clear(&ds);
			conf_free(c);
			return 1;
		}
		conf_free(c);
		/* what `run` refuses at start besides the file: TLS material it
		 * cannot load, an expired certificate (and the same warnings) */
		char *proto = kconf_get(kc, "security.protocol"), *mech = kconf_get(kc, "sasl.mechanism");
		int bad = daemon_priv_audit(&ds, o.conf, ".env", proto, mech, 0, err, sizeof(err)) != 0 ||
			  daemon_priv_tls_check(&ds, err, sizeof(err)) != 0;
		free(proto);
		free(mech);
		rd_kafka_conf_destroy(kc);
		if (bad) {
			fprintf(stderr, "%s: %s\n", o.conf, err);
			daemon_settings_clear(&ds);
			return 1;
		}
		plan = &ds.topics;
		/* the mappings and schemas `run` would load, unless named here */
		if (!o.mappings_given)
			o.mappings = ds.mappings;
		if (!o.schemas_given)
			o.schemas = ds.schemas;
		printf("ok  config %s\n", o.conf);
	}
	struct map_set *s = load(&o);
	if (!s) {
		if (plan)
			daemon_settings_clear(&ds);
		return 1;
	}
	if (plan) {
		map_set_topic_prefix(s, plan->prefix);
		errors = check_topics(s, plan, o.conf);
		daemon_settings_clear(&ds);
	}
	for (size_t i = 0; i < map_set_count(s); i++)
		printf("ok  %-28s %-6s %.12s  %s\n", map_set_name(s, i), map_set_source(s, i),
		       map_set_hash(s, i), map_set_file(s, i));
	for (size_t i = 0; i < map_set_schema_count(s); i++)
		printf("ok  schema %s\n", map_schema_fullname(map_set_schema(s, i)));
	if (errors)
		printf("%zu mappings, %zu schemas: %d error%s\n", map_set_count(s),
		       map_set_schema_count(s), errors, errors == 1 ? "" : "s");
	else
		printf("%zu mappings, %zu schemas: no errors\n", map_set_count(s),
		       map_set_schema_count(s));
	map_set_free(s);
	return errors ? 1 : 0;
}

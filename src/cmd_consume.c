/*
 * hl7bridge consume [-b BOOTSTRAP] [-c FILE] [--from-beginning] [--timeout S] TOPIC...
 *
 * Prints what a read_committed consumer sees on the topics, one JSON object
 * per record: topic, partition, offset, key, headers, value (JSON values
 * inline, anything else base64). For operators checking what the bridge
 * published, and for the quick start (the embedded broker prints its
 * address). Stops after --timeout seconds without a new record once its
 * partitions are assigned (default: never). Commits no offsets.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>

#include "cli.h"
#include "publish/kconf.h"
#include "util.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static json_t *value_json(const void *p, size_t len)
{
	json_t *v;
	char *b64;
	if (!p)
		return json_null();
	v = json_loadb(p, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	if (v)
		return v;
	b64 = malloc(4 * ((len + 2) / 3) + 1);
	if (!b64)
		return json_null();
	EVP_EncodeBlock((unsigned char *)b64, p, (int)len);
	v = json_pack("{s:s}", "base64", b64);
	free(b64);
	return v;
}

static void print_record(const rd_kafka_message_t *m)
{
	json_t *o = json_object(), *h = json_object();
	rd_kafka_headers_t *hdrs = NULL;
	char *line;

	json_object_set_new(o, "topic", json_string(rd_kafka_topic_name(m->rkt)));
	json_object_set_new(o, "partition", json_integer(m->partition));
	json_object_set_new(o, "offset", json_integer(m->offset));
	json_object_set_new(o, "key", m->key ? json_stringn(m->key, m->key_len) : json_null());
	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		const char *name;
		const void *val;
		size_t sz;
		for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &sz) == 0; i++)
			json_object_set_new(h, name, val ? json_stringn(val, sz) : json_null());
	}
	json_object_set_new(o, "headers", h);
	json_object_set_new(o, "value", value_json(m->payload, m->len));
	line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (line)
		puts(line);
	fflush(stdout);
	free(line);
	json_decref(o);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: hl7bridge consume [-b BOOTSTRAP] [-c FILE] [--from-beginning] "
		     "[--timeout SECONDS] TOPIC...\n"
		     "  -b BOOTSTRAP       brokers (default: [kafka] of the configuration, or KAFKA_BROKERS)\n"
		     "  -c FILE            configuration for [kafka] (default %s, if present)\n"
		     "  --from-beginning   start at the oldest record (default: only new records)\n"
		     "  --timeout SECONDS  stop after this long without a new record\n",
		CLI_DEFAULT_CONF);
}

int cmd_consume(int argc, char **argv)
{
	static const struct option opts[] = { { "from-beginning", no_argument, NULL, 'f' },
					      { "timeout", required_argument, NULL, 't' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	const char *bootstrap = NULL, *path = NULL;
	int from_beginning = 0, opt, embedded = 0;
	double timeout_s = 0;
	char err[1024], group[96];
	rd_kafka_conf_t *kc = NULL;
	struct conf *c = NULL;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "b:c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'b': bootstrap = optarg; break;
		case 'c': path = optarg; break;
		case 'f': from_beginning = 1; break;
		case 't': timeout_s = atof(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (path || access(CLI_DEFAULT_CONF, R_OK) == 0) {
		c = cli_load_conf(path, err, sizeof err);
		if (!c) {
			fprintf(stderr, "hl7bridge consume: %s\n", err);
			return 1;
		}
	}
	kc = bootstrap ? rd_kafka_conf_new()
		       : kconf_build(c, c ? conf_section(c, "kafka", NULL) : NULL, &embedded, err, sizeof err);
	conf_free(c);
	if (!kc) {
		fprintf(stderr, "hl7bridge consume: %s\n", err);
		return 1;
	}
	if (!bootstrap && embedded) {
		fprintf(stderr, "hl7bridge consume: the configuration says 'embedded': pass the address "
				"'hl7bridge run' printed with -b\n");
		rd_kafka_conf_destroy(kc);
		return 1;
	}
	snprintf(group, sizeof group, "hl7bridge-consume-%ld", (long)util_wall_ms());
	if ((bootstrap && rd_kafka_conf_set(kc, "bootstrap.servers", bootstrap, err, sizeof err)) ||
	    rd_kafka_conf_set(kc, "group.id", group, err, sizeof err) ||
	    rd_kafka_conf_set(kc, "isolation.level", "read_committed", err, sizeof err) ||
	    rd_kafka_conf_set(kc, "enable.auto.commit", "false", err, sizeof err) ||
	    rd_kafka_conf_set(kc, "enable.partition.eof", "true", err, sizeof err) ||
	    rd_kafka_conf_set(kc, "auto.offset.reset", from_beginning ? "earliest" : "latest", err,
			      sizeof err)) {
		fprintf(stderr, "hl7bridge consume: %s\n", err);
		rd_kafka_conf_destroy(kc);
		return 1;
	}
	rd_kafka_t *rk = kconf_client_take(RD_KAFKA_CONSUMER, kc, err, sizeof err);
	if (!rk) {
		fprintf(stderr, "hl7bridge consume: %s\n", err);
		return 1;
	}
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(argc - optind);
	for (int i = optind; i < argc; i++)
		rd_kafka_topic_partition_list_add(sub, argv[i], RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, sub);
	rd_kafka_topic_partition_list_destroy(sub);
	if (e) {
		fprintf(stderr, "hl7bridge consume: subscribe: %s\n", rd_kafka_err2str(e));
		rd_kafka_destroy(rk);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	/* The idle clock starts once the group has its partitions (the first
	 * record or end-of-partition), so a slow group join is not mistaken for
	 * an empty topic; it gives up after 60 s without any assignment. */
	int64_t last = util_mono_ms(), started = last;
	int assigned = 0;
	while (!stop) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		if (!m) {
			int64_t now = util_mono_ms();
			if (timeout_s > 0 && ((assigned && now - last > (int64_t)(timeout_s * 1000)) ||
					      (!assigned && now - started > 60000)))
				break;
			continue;
		}
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			if (!assigned)
				last = util_mono_ms();
			assigned = 1;
		} else if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
				fprintf(stderr, "hl7bridge consume: %s\n", rd_kafka_message_errstr(m));
		} else {
			assigned = 1;
			last = util_mono_ms();
			print_record(m);
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return 0;
}

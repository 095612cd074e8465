/* bench_map — parse + map + encode throughput on one core, for the shipped
 * samples: HL7v2 RDE^O11 (two order groups) and ADT^A08, JSON and Avro; any
 * other single HL7v2 message or FHIR resource given as an argument.
 *
 * usage: bench_map [-n MESSAGES] [SAMPLE...]  (default: the two samples)
 * Prints messages/s and events/s per sample and encoding. The ledger key is
 * fixed (the daemon hashes each message for its ledger anyway). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "map/map.h"
#include "map/source_fhir.h"
#include "map/source_hl7.h"
#include "parse/fhir.h"
#include "parse/hl7.h"
#include "util.h"

#define BENCH_SEGS 256

struct sink {
	int avro;
	size_t events, bytes;
	unsigned char buf[16384];
	char *json; /* reused, as the daemon's encoder does */
	size_t json_cap;
};

static int encode_cb(const struct map_event *ev, void *opaque)
{
	struct sink *k = opaque;
	char err[128];
	if (k->avro) {
		ssize_t n = map_event_avro(ev, k->buf, sizeof(k->buf), err, sizeof(err));
		if (n < 0) {
			fprintf(stderr, "avro: %s\n", err);
			return -1;
		}
		k->bytes += (size_t)n;
	} else {
		ssize_t n = map_event_json_to(ev, &k->json, &k->json_cap);
		if (n < 0)
			return -1;
		k->bytes += (size_t)n;
	}
	k->events++;
	return 0;
}

/* CPU time of this thread: on a shared machine, wall time counts the other
 * tenants too; CPU time is what one core spends on our work. */
static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(const struct map_set *set, const char *path, long n, int avro)
{
	char err[256];
	size_t len;
	char *buf = util_read_file(path, 1 << 20, &len, err, sizeof(err));
	struct hl7_seg segs[BENCH_SEGS];
	struct sink *k = calloc(1, sizeof(*k));
	static const unsigned char key[32] = { 1, 2, 3 };
	if (!buf || !k) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	k->avro = avro;
	int64_t t0 = util_mono_us();
	double c0 = cpu_s();
	int fhir = buf[0] == '{' || buf[0] == '<';
	for (long i = 0; fhir && i < n; i++) {
		/* FHIR: read the document, map the resource */
		fhir_error_t fe;
		struct fhirsrc_scope sc;
		struct map_reject rej;
		json_t *res = fhir_read(buf, len, NULL, &fe);
		if (!res) {
			fprintf(stderr, "%s: %s\n", path, fe.text);
			return 1;
		}
		fhirsrc_scope_init(&sc, res, NULL);
		struct map_input in = { .ops = &map_source_fhir, .scope = &sc, .ledger_key = key,
					.ledger_key_len = sizeof(key), .message_id = "bench",
					.now_ms = 1764200000000 };
		if (map_apply(set, &in, 0, encode_cb, k, NULL, &rej) != MAP_OK) {
			fprintf(stderr, "%s: %s\n", path, rej.reason);
			return 1;
		}
		json_decref(res);
	}
	for (long i = 0; !fhir && i < n; i++) {
		struct hl7_msg m;
		struct hl7_error he;
		struct hl7src_scope sc;
		struct map_reject rej;
		if (hl7_parse(&m, buf, len, segs, BENCH_SEGS, NULL, &he) != 0) {
			fprintf(stderr, "%s: %s\n", path, he.msg);
			return 1;
		}
		hl7src_scope_init(&sc, &m);
		struct map_input in = { .ops = &map_source_hl7, .scope = &sc, .ledger_key = key,
					.ledger_key_len = sizeof(key), .message_id = "bench",
					.now_ms = 1764200000000 };
		if (map_apply(set, &in, 0, encode_cb, k, NULL, &rej) != MAP_OK) {
			fprintf(stderr, "%s: %s\n", path, rej.reason);
			return 1;
		}
		hl7_msg_clear(&m);
	}
	double s = (double)(util_mono_us() - t0) / 1e6, c = cpu_s() - c0;
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	printf("%-14s %-4s cpu: %7.0f msg/s %7.0f events/s %5.2f us/msg | wall: %7.0f msg/s | "
	       "%zu B/event\n", name, avro ? "avro" : "json", (double)n / c,
	       (double)k->events / c, c * 1e6 / (double)n, (double)n / s,
	       k->bytes / (k->events ? k->events : 1));
	free(k->json);
	free(k);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	const char *src = getenv("HB_SRCDIR") ? getenv("HB_SRCDIR") : HB_SRCDIR;
	char maps[1024], schemas[1024], rde[1024], a08[1024];
	long n = 200000;
	int first = 1;
	if (argc > 2 && strcmp(argv[1], "-n") == 0) {
		n = atol(argv[2]);
		first = 3;
	}
	snprintf(maps, sizeof(maps), "%s/mappings", src);
	snprintf(schemas, sizeof(schemas), "%s/conf/schemas", src);
	snprintf(rde, sizeof(rde), "%s/samples/hl7v2/rde_o11.hl7", src);
	snprintf(a08, sizeof(a08), "%s/samples/hl7v2/adt_a08.hl7", src);
	struct map_diag d = { 0 };
	struct map_set *set = map_set_load(maps, schemas, &d);
	if (!set) {
		fputs(d.text ? d.text : "load failed\n", stderr);
		return 1;
	}
	const char *def[] = { rde, a08 };
	const char **files = first < argc ? (const char **)argv + first : def;
	int nf = first < argc ? argc - first : 2;
	int rc = 0;
	for (int i = 0; i < nf && !rc; i++)
		for (int avro = 0; avro < 2 && !rc; avro++)
			rc = run(set, files[i], n, avro);
	map_set_free(set);
	return rc;
}

/* bench_hl7 — parse + read 10 fields + unescape them, per message, on the
 * fixtures in tests/fixtures/hl7/bench. Prints one line per message:
 *   impl=c msg=<name> bytes=<n> msgs_per_s=<x> mb_per_s=<y> iters=<k>
 * (MB = 10^6 bytes). The comparison programs print the same line format.
 * Usage: bench_hl7 [seconds-per-message, default 3] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse/hl7.h"
#include "util.h"

#define MAX_SEGS 1024
#define NPATHS 10

struct bench_case {
	const char *name;
	const char *file;
	const char *paths[NPATHS];
};

/* The same ten reads as tests/bench/hapi and tests/bench/python. */
static const struct bench_case cases[] = {
	{ "adt_a01_300B", "adt_a01.hl7",
	  { "MSH-9.1", "MSH-9.2", "MSH-10", "PID-3.1", "PID-3[2].1", "PID-5.1",
	    "PID-5.2", "PID-7", "PID-8", "PID-11.3" } },
	{ "rde_o11_1.5KB", "rde_o11.hl7",
	  { "MSH-10", "PID-3.1", "PID-5.1", "ORC-1", "ORC-2.1", "RXE-2.1", "RXE-2.2",
	    "RXE-7", "ORC[2]-2.1", "RXE[2]-2.1" } },
	{ "oru_r01_50KB", "oru_r01.hl7",
	  { "MSH-10", "PID-3.1", "PID-5.1", "OBR-4.1", "OBX-5", "OBX[100]-5",
	    "OBX[250]-3.2", "OBX[400]-5", "OBX[490]-5", "NTE-3" } },
};

static struct hl7_seg segs[MAX_SEGS];

/* One unit of work. Returns the total unescaped length (so nothing can be
 * optimised away), or -1 on error. */
static long work(const char *buf, size_t len, const struct hl7_path *paths,
		 char *out, size_t out_size)
{
	struct hl7_msg m;
	struct hl7_error err;
	long total = 0;

	if (hl7_parse(&m, buf, len, segs, MAX_SEGS, NULL, &err) < 0) {
		fprintf(stderr, "parse: %s\n", err.msg);
		return -1;
	}
	for (int i = 0; i < NPATHS; i++) {
		struct hl7_view v;
		hl7_get(&m, &paths[i], &v);
		ssize_t n = hl7_unescape(&m, v, out, out_size, &err);
		if (n < 0) {
			fprintf(stderr, "unescape: %s\n", err.msg);
			return -1;
		}
		total += n;
	}
	hl7_msg_clear(&m);
	return total;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 3.0;
	const char *src = getenv("HB_SRCDIR");
	char path[1024], errstr[256];

	if (!src || !*src)
		src = HB_SRCDIR;
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		const struct bench_case *bc = &cases[c];
		struct hl7_path paths[NPATHS];
		struct hl7_error err;
		size_t len;

		snprintf(path, sizeof path, "%s/tests/fixtures/hl7/bench/%s", src, bc->file);
		char *buf = util_read_file(path, 1 << 24, &len, errstr, sizeof errstr);
		if (!buf) {
			fprintf(stderr, "%s\n", errstr);
			return 1;
		}
		for (int i = 0; i < NPATHS; i++) {
			if (hl7_path_compile(&paths[i], bc->paths[i], &err) < 0) {
				fprintf(stderr, "%s: %s\n", bc->paths[i], err.msg);
				return 1;
			}
		}
		size_t out_size = HL7_UNESCAPE_BOUND(len);
		char *out = malloc(out_size);
		if (!out)
			return 1;
		/* Check once that every read finds something. */
		long first = work(buf, len, paths, out, out_size);
		if (first <= 0)
			return 1;
		for (int i = 0; i < NPATHS; i++) {
			struct hl7_msg m;
			struct hl7_view v;
			hl7_parse(&m, buf, len, segs, MAX_SEGS, NULL, &err);
			if (hl7_get(&m, &paths[i], &v) != 1) {
				fprintf(stderr, "%s: %s finds nothing\n", bc->name, bc->paths[i]);
				return 1;
			}
		}

		/* Warm up, then time batches until the budget is spent. */
		volatile long sink = 0;
		for (int i = 0; i < 1000; i++)
			sink += work(buf, len, paths, out, out_size);
		long iters = 0, batch = 256;
		int64_t t0 = util_mono_us(), t1;
		do {
			for (long i = 0; i < batch; i++)
				sink += work(buf, len, paths, out, out_size);
			iters += batch;
			t1 = util_mono_us();
		} while ((double)(t1 - t0) < seconds * 1e6);
		double s = (double)(t1 - t0) / 1e6;
		printf("impl=c msg=%s bytes=%zu msgs_per_s=%.0f mb_per_s=%.1f iters=%ld\n",
		       bc->name, len, (double)iters / s, (double)iters * (double)len / s / 1e6,
		       iters);
		(void)sink;
		free(out);
		free(buf);
	}
	return 0;
}

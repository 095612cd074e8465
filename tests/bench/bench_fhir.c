/* bench_fhir — FHIR reading throughput: a ~5 KB MedicationRequest and a
 * ~1 MB Bundle, each as JSON and as XML, read into the tree and freed.
 *
 *   bench_fhir [-s seconds] [-w dir]
 *
 * -s: time per case (default 3). -w: also write the four inputs into dir
 * (mr.json, mr.xml, bundle.json, bundle.xml) so other parsers (see
 * tests/bench/hapi-fhir/) can read exactly the same bytes.
 * Output: one line per case: bytes, iterations, resources/s, MB/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parse/fhir.h"
#include "util.h"

#define BUNDLE_TARGET (1024 * 1024)

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p) {
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static char *load(const char *name, size_t *len)
{
	char path[1024], err[256];
	const char *d = getenv("HB_SRCDIR");
	char *p;

	snprintf(path, sizeof(path), "%s/tests/fixtures/fhir/%s", d ? d : HB_SRCDIR, name);
	p = util_read_file(path, 1u << 20, len, err, sizeof(err));
	if (!p) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	return p;
}

/* A collection Bundle of n copies of the MedicationRequest, each with its
 * own id and urn:uuid fullUrl, as JSON. */
static char *bundle_json(const char *mr_json, size_t n, size_t *len)
{
	json_t *mr = json_loads(mr_json, 0, NULL), *b, *entries;
	char *out, url[64], id[32];
	size_t i;

	b = json_pack("{s:s, s:s, s:s, s:[]}", "resourceType", "Bundle", "id", "bench",
		      "type", "collection", "entry");
	entries = json_object_get(b, "entry");
	for (i = 0; i < n; i++) {
		json_t *r = json_deep_copy(mr);
		snprintf(id, sizeof(id), "mr-%zu", i);
		snprintf(url, sizeof(url), "urn:uuid:00000000-0000-4000-8000-%012zu", i);
		json_object_set_new(r, "id", json_string(id));
		json_array_append_new(entries, json_pack("{s:s, s:o}", "fullUrl", url,
							  "resource", r));
	}
	out = json_dumps(b, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	*len = strlen(out);
	json_decref(b);
	json_decref(mr);
	return out;
}

/* The same Bundle as XML, from the MedicationRequest's XML text. */
static char *bundle_xml(const char *mr_xml, size_t n, size_t *len)
{
	const char *start = strstr(mr_xml, "<MedicationRequest");
	const char *id_at = strstr(mr_xml, "<id value=\"");
	const char *id_end = id_at ? strstr(id_at, "/>") : NULL;
	const char *body = start ? strchr(start, '>') + 1 : NULL;
	struct buf b = {0};
	char line[160];
	size_t i;

	if (!body || !id_end || id_at < body) {
		fprintf(stderr, "unexpected MedicationRequest XML\n");
		exit(1);
	}
	buf_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		    "<Bundle xmlns=\"http://hl7.org/fhir\">\n <id value=\"bench\"/>\n"
		    " <type value=\"collection\"/>\n");
	for (i = 0; i < n; i++) {
		snprintf(line, sizeof(line),
			 " <entry>\n  <fullUrl value=\"urn:uuid:00000000-0000-4000-8000-%012zu\"/>\n"
			 "  <resource>\n<MedicationRequest>\n  <id value=\"mr-%zu\"/>", i, i);
		buf_str(&b, line);
		buf_add(&b, id_end + 2, strlen(id_end + 2));
		buf_str(&b, "  </resource>\n </entry>\n");
	}
	buf_str(&b, "</Bundle>\n");
	(void)body;
	*len = b.len;
	return b.p;
}

static void write_file(const char *dir, const char *name, const char *p, size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "%s: cannot write\n", path);
		exit(1);
	}
}

static void run(const char *label, const char *p, size_t len, int xml, size_t resources,
		double seconds)
{
	int64_t t0 = util_mono_us(), now = t0;
	size_t iters = 0;
	fhir_limits_t lim;
	fhir_error_t err;
	double s;

	fhir_limits_init(&lim);
	while (now - t0 < (int64_t)(seconds * 1e6)) {
		json_t *t = xml ? fhir_read_xml(p, len, &lim, &err) : fhir_read_json(p, len, &lim, &err);
		if (!t) {
			fprintf(stderr, "%s: %s\n", label, err.text);
			exit(1);
		}
		json_decref(t);
		iters++;
		now = util_mono_us();
	}
	s = (double)(now - t0) / 1e6;
	printf("hl7bridge %-12s %9zu bytes %8zu iters  %10.0f resources/s  %8.1f MB/s\n", label,
	       len, iters, (double)(iters * resources) / s, (double)iters * (double)len / s / 1e6);
}

int main(int argc, char **argv)
{
	double seconds = 3;
	const char *dir = NULL;
	size_t mj_len, mx_len, bj_len, bx_len, n;
	char *mj, *mx, *bj, *bx;
	fhir_error_t err;
	json_t *a, *b;
	int c;

	while ((c = getopt(argc, argv, "s:w:")) != -1) {
		if (c == 's')
			seconds = atof(optarg);
		else if (c == 'w')
			dir = optarg;
		else {
			fprintf(stderr, "usage: %s [-s seconds] [-w dir]\n", argv[0]);
			return 2;
		}
	}
	mj = load("medicationrequest-bench.json", &mj_len);
	mx = load("medicationrequest-bench.xml", &mx_len);
	n = (BUNDLE_TARGET + mj_len - 1) / mj_len;
	bj = bundle_json(mj, n, &bj_len);
	bx = bundle_xml(mx, n, &bx_len);

	/* The comparison only means something if both forms are one resource. */
	a = fhir_read_json(bj, bj_len, NULL, &err);
	b = fhir_read_xml(bx, bx_len, NULL, &err);
	if (!a || !b || !json_equal(a, b)) {
		fprintf(stderr, "bundle JSON and XML differ or fail: %s\n", err.text);
		return 1;
	}
	json_decref(a);
	json_decref(b);

	if (dir) {
		write_file(dir, "mr.json", mj, mj_len);
		write_file(dir, "mr.xml", mx, mx_len);
		write_file(dir, "bundle.json", bj, bj_len);
		write_file(dir, "bundle.xml", bx, bx_len);
	}
	printf("# bundle: %zu MedicationRequest entries (+1 Bundle resource); %.1f s per case\n",
	       n, seconds);
	run("mr.json", mj, mj_len, 0, 1, seconds);
	run("mr.xml", mx, mx_len, 1, 1, seconds);
	run("bundle.json", bj, bj_len, 0, n + 1, seconds);
	run("bundle.xml", bx, bx_len, 1, n + 1, seconds);
	free(mj);
	free(mx);
	free(bj);
	free(bx);
	return 0;
}

/* golden — run mappings against inputs and compare with expectations. */
#include "map/golden.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "map/input.h"
#include "util.h"

/* Expectations are small; a diff bigger than this prints both texts whole. */
#define DIFF_MAX_LINES 4000
#define GOLDEN_MAX_INPUT (16u * 1024 * 1024)

struct actual {
	const struct map_set *s;
	json_t *arr;
	const char *label;
};

/* What a golden test ignores: eventId and timestamp change with the ledger
 * key and the clock, the mapping hash with every edit of the mapping. */
static void strip_volatile(json_t *e)
{
	json_object_del(e, "eventId");
	json_object_del(e, "timestamp");
	json_object_del(json_object_get(e, "lineage"), "mappingHash");
}

static int event_cb(const struct map_event *ev, void *opaque)
{
	struct actual *a = opaque;
	json_t *e = map_event_object(ev);
	strip_volatile(e);
	json_array_append_new(a->arr, json_pack("{s:s, s:s, s:o}", "topic", ev->topic, "key",
						ev->key, "event", e));
	return 0;
}

static int input_cb(const struct map_item *it, void *opaque)
{
	struct actual *a = opaque;
	struct map_reject rej = { 0 };
	const struct map_input *in = it->in;
	if (!in) {
		/* unreadable: noted, and the next message follows */
		char msg[512];
		snprintf(msg, sizeof(msg), "%s: %s", it->label, it->error);
		json_array_append_new(a->arr, json_pack("{s:s}", "error", msg));
		return 0;
	}
	enum map_result r = map_apply(a->s, in, 0, event_cb, a, NULL, &rej);
	if (r == MAP_REJECTED || r == MAP_ERROR)
		json_array_append_new(a->arr, json_pack("{s:s}", "rejected", rej.reason));
	else if (r == MAP_UNMATCHED)
		json_array_append_new(a->arr, json_pack("{s:b}", "unmatched", 1));
	return 0;
}

json_t *map_golden_actual(const struct map_set *s, const char *path, char *errstr, size_t n)
{
	size_t len;
	char *buf = util_read_file(path, GOLDEN_MAX_INPUT, &len, errstr, n);
	if (!buf)
		return NULL;
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	struct actual a = { s, json_array(), name };
	if (map_input_items(name, buf, len, 0, input_cb, &a, errstr, n) < 0) {
		json_array_append_new(a.arr, json_pack("{s:s}", "error", errstr));
	}
	free(buf);
	return a.arr;
}

/* ---- diff ------------------------------------------------------------------------ */

/* The lines of s (cut in place) into *out (caller frees); (size_t)-1 and
 * *out NULL when out of memory. */
static size_t split_lines(char *s, char ***out)
{
	size_t n = 0, cap = 64;
	char **v = s ? malloc(cap * sizeof(*v)) : NULL;
	*out = NULL;
	if (!v)
		return (size_t)-1;
	for (char *p = s; *p;) {
		if (n == cap) {
			char **nv = realloc(v, (cap *= 2) * sizeof(*v));
			if (!nv) {
				free(v);
				return (size_t)-1;
			}
			v = nv;
		}
		v[n++] = p;
		char *nl = strchr(p, '\n');
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	*out = v;
	return n;
}

void map_diff_print(FILE *out, const char *expected, const char *actual)
{
	char *e = strdup(expected), *a = strdup(actual), **el, **al;
	size_t ne = split_lines(e, &el), na = split_lines(a, &al);
	unsigned *L = NULL;
	/* longest common subsequence, then walk it; too long (or out of memory): both whole */
	if (ne > DIFF_MAX_LINES || na > DIFF_MAX_LINES ||
	    !(L = calloc((ne + 1) * (na + 1), sizeof(*L)))) {
		fprintf(out, "--- expected\n%s\n+++ actual\n%s\n", expected, actual);
		goto done;
	}
#define AT(i, j) L[(i) * (na + 1) + (j)]
	for (size_t i = ne; i-- > 0;)
		for (size_t j = na; j-- > 0;)
			AT(i, j) = strcmp(el[i], al[j]) == 0 ? AT(i + 1, j + 1) + 1
				 : AT(i + 1, j) > AT(i, j + 1) ? AT(i + 1, j) : AT(i, j + 1);
	size_t i = 0, j = 0;
	fprintf(out, "--- expected\n+++ actual\n");
	while (i < ne || j < na) {
		if (i < ne && j < na && strcmp(el[i], al[j]) == 0) {
			fprintf(out, "  %s\n", el[i]);
			i++;
			j++;
		} else if (j < na && (i == ne || AT(i, j + 1) > AT(i + 1, j))) {
			fprintf(out, "+ %s\n", al[j++]);
		} else {
			fprintf(out, "- %s\n", el[i++]);
		}
	}
#undef AT
done:
	free(L);
	free(el);
	free(al);
	free(e);
	free(a);
}

/* ---- the runner ------------------------------------------------------------------- */

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Sorted names in dir (no dot files); caller frees each and the array.
 * Out of memory: a failed case (said on log), no names. */
static size_t list_dir(const char *dir, char ***out, FILE *log, struct map_golden_stats *st)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0, cap = 16;
	char **v = malloc(cap * sizeof(*v));
	int oom = !v;
	while (!oom && d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **nv = realloc(v, cap * 2 * sizeof(*v));
			if (!(oom = !nv)) {
				v = nv;
				cap *= 2;
			}
		}
		if (!oom && !(oom = !(v[n] = strdup(de->d_name))))
			n++;
	}
	if (d)
		closedir(d);
	if (oom) {
		while (n)
			free(v[--n]);
		free(v);
		*out = NULL;
		fprintf(log, "FAIL %s: out of memory\n", dir);
		st->failed++;
		return 0;
	}
	qsort(v, n, sizeof(*v), cmp_str);
	*out = v;
	return n;
}

static const char SUFFIX[] = ".expected.json";

static int run_case(const struct map_set *s, const char *dir, const char *file, int update,
		    FILE *out, struct map_golden_stats *st)
{
	char in_path[4096], exp_path[4096], err[512];
	const char *dot = strrchr(file, '.');
	size_t stem = dot ? (size_t)(dot - file) : strlen(file);
	st->cases++;
	if ((size_t)snprintf(in_path, sizeof(in_path), "%s/%s", dir, file) >= sizeof(in_path) ||
	    (size_t)snprintf(exp_path, sizeof(exp_path), "%s/%.*s%s", dir, (int)stem, file,
			     SUFFIX) >= sizeof(exp_path)) {
		fprintf(out, "FAIL %s/%s: path too long\n", dir, file);
		st->failed++;
		return -1;
	}
	json_t *actual = map_golden_actual(s, in_path, err, sizeof(err));
	if (!actual) {
		fprintf(out, "FAIL %s: %s\n", in_path, err);
		st->failed++;
		return -1;
	}
	char *atext = json_dumps(actual, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	int rc = 0;
	if (!atext) {
		fprintf(out, "FAIL %s: out of memory\n", in_path);
		rc = -1;
	} else if (update) {
		FILE *f = fopen(exp_path, "w");
		if (f) {
			fprintf(f, "%s\n", atext);
			fclose(f);
		}
		fprintf(out, "wrote %s\n", exp_path);
	} else {
		json_error_t je;
		json_t *expected = json_load_file(exp_path, JSON_DECODE_ANY, &je);
		if (expected && json_is_array(expected)) {
			/* ignored even if written down */
			size_t k;
			json_t *o;
			json_array_foreach(expected, k, o)
				strip_volatile(json_object_get(o, "event"));
		}
		if (!expected) {
			fprintf(out, "FAIL %s: no expectation (%s:%d: %s); run with --update to "
				     "write it\n", in_path, exp_path, je.line, je.text);
			rc = -1;
		} else if (!json_equal(expected, actual)) {
			char *etext = json_dumps(expected, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			fprintf(out, "FAIL %s\n", in_path);
			if (etext)
				map_diff_print(out, etext, atext);
			free(etext);
			rc = -1;
		} else {
			fprintf(out, "ok   %s\n", in_path);
		}
		json_decref(expected);
	}
	if (rc)
		st->failed++;
	free(atext);
	json_decref(actual);
	return rc;
}

static int same_stem(const char *a, const char *b)
{
	const char *da = strrchr(a, '.'), *db = strrchr(b, '.');
	size_t la = da ? (size_t)(da - a) : strlen(a), lb = db ? (size_t)(db - b) : strlen(b);
	return la == lb && memcmp(a, b, la) == 0 && strcmp(a, b) != 0 &&
	       !strstr(a, SUFFIX) && !strstr(b, SUFFIX);
}

/* Inputs are recognised by extension; notes (README.md) may sit beside them. */
static int is_input(const char *name, size_t l)
{
	static const char *const ext[] = { ".hl7", ".er7", ".json", ".xml", ".ndjson" };
	if (l > sizeof(SUFFIX) - 1 && strcmp(name + l - (sizeof(SUFFIX) - 1), SUFFIX) == 0)
		return 0;
	for (size_t i = 0; i < HB_ARRAY_LEN(ext); i++)
		if (l > strlen(ext[i]) && strcmp(name + l - strlen(ext[i]), ext[i]) == 0)
			return 1;
	return 0;
}

int map_golden_run(const struct map_set *s, const char *tests_dir, int update, FILE *out,
		   struct map_golden_stats *st)
{
	char **cases;
	st->cases = st->failed = 0;
	size_t nc = list_dir(tests_dir, &cases, out, st);
	for (size_t c = 0; c < nc; c++) {
		char dir[4096];
		struct stat sb;
		int dl = snprintf(dir, sizeof(dir), "%s/%s", tests_dir, cases[c]);
		if ((size_t)dl < sizeof(dir) && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			char **files;
			size_t nf = list_dir(dir, &files, out, st);
			for (size_t f = 0; f < nf; f++) {
				size_t l = strlen(files[f]);
				if (is_input(files[f], l)) {
					if (f > 0 && same_stem(files[f - 1], files[f])) {
						fprintf(out, "FAIL %s/%s: same name as %s, so they would share "
							"one expectation; rename one\n", dir, files[f],
							files[f - 1]);
						st->cases++;
						st->failed++;
					} else {
						run_case(s, dir, files[f], update, out, st);
					}
				}
			}
			for (size_t f = 0; f < nf; f++)
				free(files[f]);
			free(files);
		}
		free(cases[c]);
	}
	free(cases);
	fprintf(out, "%d case%s, %d failed\n", st->cases, st->cases == 1 ? "" : "s", st->failed);
	return st->failed ? 1 : 0;
}

/* fhir_hapi_diff — the differential check against HAPI FHIR, shared by the
 * diff_fhir_hapi program (fresh HAPI output) and the unit tests (a committed
 * snapshot of HAPI output in tests/fixtures/fhir/hapi/).
 *
 * DIR holds NN-Type.json, NN-Type.xml and NN-Type.expected written by
 * tests/bench/hapi-fhir (HapiDiff): HAPI's JSON and XML encodings of one
 * resource and HAPI's FHIRPath answers, one line per expression of EXPRS.
 * For each resource this checks that our tree from the XML equals our tree
 * from the JSON, and that our FHIRPath answers equal HAPI's. Expressions HAPI
 * itself rejects ("!error") are counted apart. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir_hapi_diff.h"
#include "parse/fhir.h"
#include "parse/fhirpath.h"
#include "util.h"

#define MAX_EXPRS 256

static char *read_all(const char *dir, const char *name, size_t *len, FILE *log)
{
	char path[1024], err[256];
	char *p;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	p = util_read_file(path, 64u << 20, len, err, sizeof(err));
	if (!p)
		fprintf(log, "%s\n", err);
	return p;
}

/* Split buf into lines in place; returns the count. */
static size_t lines(char *buf, char **out, size_t max)
{
	size_t n = 0;
	char *save = NULL, *l;

	/* strtok_r would merge empty lines, and empty answers are lines too. */
	(void)save;
	for (l = buf; l && *l && n < max; n++) {
		char *nl = strchr(l, '\n');
		out[n] = l;
		if (nl)
			*nl = '\0';
		l = nl ? nl + 1 : NULL;
	}
	return n;
}

static void answer(const fhirpath_t *fp, json_t *res, char *out, size_t size)
{
	fhirpath_ctx_t ctx = {res, json_is_object(res) && fhir_resource_type(res) &&
				     strcmp(fhir_resource_type(res), "Bundle") == 0 ? res : NULL, NULL};
	fhirpath_result_t r;
	fhirpath_error_t err;
	size_t i, n = 0;

	fhirpath_result_init(&r);
	out[0] = '\0';
	if (fhirpath_eval(fp, &ctx, NULL, &r, &err) != 0) {
		snprintf(out, size, "!error");
		return;
	}
	for (i = 0; i < r.count && n < size; i++) {
		char buf[64];
		const char *s = fhirpath_item_str(&r.items[i], buf, sizeof(buf));
		n += (size_t)snprintf(out + n, size - n, "%s%s", i ? "|" : "", s ? s : "<obj>");
	}
	fhirpath_result_clear(&r);
}

/* HAPI's XML pretty-printer indents the narrative div, which changes its
 * text; compare divs with the whitespace between tags removed. */
static void strip_div_ws(json_t *v)
{
	const char *k;
	json_t *c;
	size_t i;

	if (json_is_array(v)) {
		json_array_foreach(v, i, c)
			strip_div_ws(c);
		return;
	}
	json_object_foreach(v, k, c) {
		if (strcmp(k, "div") == 0 && json_is_string(c)) {
			const char *s = json_string_value(c);
			char *o = malloc(strlen(s) + 1), *w = o;
			for (; *s; s++) {
				if (*s == '>') {
					const char *e = s + 1;
					while (*e == ' ' || *e == '\n' || *e == '\t' || *e == '\r')
						e++;
					*w++ = '>';
					if (*e == '<')
						s = e - 1;
					continue;
				}
				*w++ = *s;
			}
			*w = '\0';
			json_string_set(c, o);
			free(o);
		} else {
			strip_div_ws(c);
		}
	}
}

static unsigned nontrivial_exprs(const unsigned *ok, size_t n)
{
	unsigned c = 0;
	size_t i;

	for (i = 0; i < n; i++)
		c += ok[i] > 0;
	return c;
}

static int cmp_names(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int fhir_hapi_diff(const char *dir, const char *exprs_path, FILE *log,
		   struct fhir_hapi_stats *st)
{
	struct dirent **ents;
	char *exbuf, *exprs[MAX_EXPRS];
	fhirpath_t *fps[MAX_EXPRS];
	size_t exlen, nex, i, k;
	int n, f;
	unsigned *expr_ok;

	memset(st, 0, sizeof(*st));
	exbuf = util_read_file(exprs_path, 1u << 20, &exlen, NULL, 0);
	if (!exbuf) {
		fprintf(log, "%s: cannot read\n", exprs_path);
		return -1;
	}
	nex = lines(exbuf, exprs, MAX_EXPRS);
	while (nex > 0 && exprs[nex - 1][0] == '\0')
		nex--;
	expr_ok = calloc(nex, sizeof(*expr_ok));
	for (i = 0; i < nex; i++) {
		fhirpath_error_t err;
		fps[i] = fhirpath_compile(exprs[i], strlen(exprs[i]), &err);
		if (!fps[i]) {
			fprintf(log, "COMPILE %s: col %d: %s\n", exprs[i], err.column, err.text);
			return -1;
		}
	}
	n = scandir(dir, &ents, NULL, cmp_names);
	if (n < 0) {
		fprintf(log, "%s: cannot list\n", dir);
		return -1;
	}
	for (f = 0; f < n; f++) {
		char *name = ents[f]->d_name, base[256], fn[300];
		size_t nl = strlen(name), jl, xl, el, ne;
		char *jb, *xb, *eb, *exp[MAX_EXPRS];
		json_t *j, *x;
		fhir_error_t err;

		if (nl < 6 || strcmp(name + nl - 5, ".json") != 0)
			continue;
		snprintf(base, sizeof(base), "%.*s", (int)(nl - 5), name);
		jb = read_all(dir, name, &jl, log);
		snprintf(fn, sizeof(fn), "%s.xml", base);
		xb = read_all(dir, fn, &xl, log);
		snprintf(fn, sizeof(fn), "%s.expected", base);
		eb = read_all(dir, fn, &el, log);
		if (!jb || !xb || !eb)
			return -1;
		st->resources++;
		j = fhir_read_json(jb, jl, NULL, &err);
		if (!j)
			fprintf(log, "READ %s.json: %d:%d %s\n", base, err.line, err.column, err.text);
		x = fhir_read_xml(xb, xl, NULL, &err);
		if (!x)
			fprintf(log, "READ %s.xml: %d:%d %s\n", base, err.line, err.column, err.text);
		if (j && x && json_equal(j, x)) {
			st->trees_equal++;
		} else if (j && x && (strip_div_ws(j), strip_div_ws(x), json_equal(j, x))) {
			st->trees_div_ws++;
			fprintf(log, "TREE %s: equal except whitespace inside the narrative div\n", base);
		} else if (j && x) {
			char *a = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
			char *b = json_dumps(x, JSON_SORT_KEYS | JSON_COMPACT);
			fprintf(log, "TREE %s: JSON and XML trees differ\n  json: %s\n  xml:  %s\n", base, a, b);
			free(a);
			free(b);
		}
		ne = lines(eb, exp, MAX_EXPRS);
		for (i = 0; j && i < nex && i < ne; i++) {
			char ours[4096];
			if (strcmp(exp[i], "!error") == 0) {
				st->hapi_err++;
				continue;
			}
			st->compared++;
			answer(fps[i], j, ours, sizeof(ours));
			if (strcmp(ours, exp[i]) == 0) {
				st->matched++;
				if (exp[i][0] != '\0') {
					st->nonempty++;
					expr_ok[i]++;
				}
			} else {
				fprintf(log, "PATH %s: %s\n  ours: '%s'\n  hapi: '%s'\n", base, exprs[i], ours,
				       exp[i]);
			}
		}
		json_decref(j);
		json_decref(x);
		free(jb);
		free(xb);
		free(eb);
	}
	for (k = 0; k < nex; k++)
		fhirpath_free(fps[k]);
	for (f = 0; f < n; f++)
		free(ents[f]);
	free(ents);
	fprintf(log, "resources: %u, JSON tree == XML tree: %u, equal but for narrative whitespace "
	       "added by HAPI's XML pretty-printer: %u\n", st->resources, st->trees_equal, st->trees_div_ws);
	fprintf(log, "expressions: %zu; comparisons: %u, equal: %u, different: %u; "
	       "not comparable (HAPI rejects the expression for the type): %u\n",
	       nex, st->compared, st->matched, st->compared - st->matched, st->hapi_err);
	fprintf(log, "equal answers that are not empty: %u; expressions with at least one equal "
	       "non-trivial answer: %u\n", st->nonempty, nontrivial_exprs(expr_ok, nex));
	st->expressions = (unsigned)nex;
	st->nontrivial_exprs = nontrivial_exprs(expr_ok, nex);
	free(expr_ok);
	free(exbuf);
	return (st->trees_equal + st->trees_div_ws == st->resources &&
		st->matched == st->compared) ? 0 : 1;
}

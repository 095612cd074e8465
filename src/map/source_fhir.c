/* source_fhir — the mapping language's view of a FHIR resource. */
#include "map/source_fhir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void *f_compile(const char *text, size_t len, struct map_srcerr *err)
{
	fhirpath_error_t fe = { 0 };
	fhirpath_t *fp = fhirpath_compile(text, len, &fe);
	if (!fp) {
		err->column = fe.column > 0 ? (size_t)fe.column : 1;
		snprintf(err->msg, sizeof(err->msg), "%s", fe.text);
	}
	return fp;
}

static void f_free(void *p) { fhirpath_free(p); }
/* FHIRPath is always relative to its focus: the resource, or an each item. */
static int f_is_relative(const void *p) { return 0; }
static int f_can_group(const void *p) { return 1; }

static int run(struct fhirsrc_scope *sc, const fhirpath_t *fp, fhirpath_result_t *r,
	       char *errstr, size_t n)
{
	fhirpath_error_t fe = { 0 };
	int rc = sc->item ? fhirpath_eval_item(fp, &sc->ctx, sc->item, r, &fe)
			  : fhirpath_eval(fp, &sc->ctx, NULL, r, &fe);
	if (rc != 0)
		return util_seterr(errstr, n, "%s: %s", fhirpath_text(fp), fe.text);
	return 0;
}

static int f_eval(void *scope, const void *path, struct map_arena *a, struct map_vals *out,
		  char *errstr, size_t n)
{
	fhirpath_result_t r;
	char buf[64];
	int rc = 0;
	fhirpath_result_init(&r);
	if (run(scope, path, &r, errstr, n)) {
		fhirpath_result_clear(&r);
		return -1;
	}
	for (size_t i = 0; i < r.count; i++) {
		const char *s = fhirpath_item_str(&r.items[i], buf, sizeof(buf));
		if (!s || !*s)
			continue; /* objects have no string form; a mapping names their fields */
		/* copied: computed strings die with the result */
		char *c = map_arena_strndup(a, s, strlen(s));
		if (!c || map_vals_add(a, out, c, strlen(c), fhirpath_text(path))) {
			rc = util_seterr(errstr, n, "out of scratch memory");
			break;
		}
	}
	fhirpath_result_clear(&r);
	return rc;
}

static int f_exists(void *scope, const void *path, struct map_arena *a, char *errstr, size_t n)
{
	fhirpath_result_t r;
	fhirpath_result_init(&r);
	int rc = run(scope, path, &r, errstr, n);
	if (rc == 0)
		rc = r.count > 0;
	fhirpath_result_clear(&r);
	return rc;
}

static int f_each(void *scope, const void *path, struct map_arena *a, map_each_cb cb, void *arg,
		  char *errstr, size_t n)
{
	struct fhirsrc_scope *sc = scope;
	fhirpath_result_t r;
	int rc = 0;
	fhirpath_result_init(&r);
	if (run(sc, path, &r, errstr, n)) {
		fhirpath_result_clear(&r);
		return -1;
	}
	/* r keeps the items alive while their scopes are in use */
	for (size_t i = 0; i < r.count && rc == 0; i++) {
		struct fhirsrc_scope *sub = map_arena_alloc(a, sizeof(*sub));
		if (!sub) {
			rc = util_seterr(errstr, n, "out of scratch memory");
			break;
		}
		sub->ctx = sc->ctx;
		sub->item = &r.items[i];
		rc = cb(sub, arg);
	}
	fhirpath_result_clear(&r);
	return rc;
}

const struct map_source_ops map_source_fhir = {
	.name = "fhir",
	.compile = f_compile,
	.free = f_free,
	.is_relative = f_is_relative,
	.can_group = f_can_group,
	.eval = f_eval,
	.exists = f_exists,
	.each = f_each,
};

void fhirsrc_scope_init(struct fhirsrc_scope *sc, json_t *resource, json_t *bundle)
{
	sc->ctx.resource = resource;
	sc->ctx.bundle = bundle;
	sc->ctx.entry = NULL; /* set by the caller for a Bundle entry */
	sc->item = NULL;
}

/* fhirpath_fn — the functions of the FHIRPath subset. */
#include "parse/fhirpath_int.h"
#include "parse/fhir_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The single string argument i, evaluated on the expression's focus. */
static int arg_str(const struct fp_node *n, int i, struct fp_ev *ev, const coll_t *focus,
		   coll_t *tmp, const char **s, const char *fn)
{
	if (fp_eval(n->args[i], ev, focus, tmp) != 0)
		return -1;
	return fp_single_str(ev, tmp, s, fn);
}

static int arg_int(const struct fp_node *n, int i, struct fp_ev *ev, const coll_t *focus,
		   json_int_t *v, const char *fn)
{
	coll_t tmp;
	int rc = 0;

	fhirpath_result_init(&tmp);
	if (fp_eval(n->args[i], ev, focus, &tmp) != 0)
		return -1;
	if (tmp.count > 1 || (tmp.count == 1 && !json_is_integer(tmp.items[0].value)))
		rc = fp_everr(ev, "%s needs an integer argument", fn);
	else if (tmp.count == 1)
		*v = json_integer_value(tmp.items[0].value), rc = 1;
	fhirpath_result_clear(&tmp);
	return rc;
}

/* Items of input for which the lambda `crit` is true. */
static int filter(const struct fp_node *crit, struct fp_ev *ev, const coll_t *input,
		  coll_t *out, size_t *matched)
{
	size_t i;
	int t;

	*matched = 0;
	for (i = 0; i < input->count; i++) {
		coll_t one = {&input->items[i], 1, 1}, r;
		fhirpath_result_init(&r);
		if (fp_eval(crit, ev, &one, &r) != 0 || fp_truth(ev, &r, &t, "where()") != 0) {
			fhirpath_result_clear(&r);
			return -1;
		}
		fhirpath_result_clear(&r);
		if (t == 1) {
			(*matched)++;
			if (out && fp_push_item(ev, out, &input->items[i]) != 0)
				return -1;
		}
	}
	return 0;
}

static int fn_extension(const struct fp_node *n, struct fp_ev *ev, const coll_t *focus,
			const coll_t *input, coll_t *out)
{
	coll_t tmp;
	const char *url = NULL;
	size_t i, k;
	int rc;

	fhirpath_result_init(&tmp);
	rc = arg_str(n, 0, ev, focus, &tmp, &url, "extension()");
	if (rc <= 0)
		goto done;
	rc = 0;
	for (i = 0; rc == 0 && i < input->count; i++) {
		const fhirpath_item_t *it = &input->items[i];
		json_t *exts, *e;
		/* A primitive's extensions live in its `_name` object. */
		exts = json_object_get(json_is_object(it->value) ? it->value : it->ext, "extension");
		json_array_foreach(exts, k, e) {
			const char *u = json_string_value(json_object_get(e, "url"));
			if (u && strcmp(u, url) == 0 &&
			    (rc = fp_push(ev, out, e, NULL, "Extension")) != 0)
				break;
		}
	}
done:
	fhirpath_result_clear(&tmp);
	return rc;
}

static int fn_resolve(struct fp_ev *ev, const coll_t *input, coll_t *out)
{
	size_t i;

	for (i = 0; i < input->count; i++) {
		json_t *v = input->items[i].value, *r;
		const char *ref = json_is_object(v)
					  ? json_string_value(json_object_get(v, "reference"))
					  : json_string_value(v);
		if (!ref || !(r = fp_resolve_ref(ev, ref)))
			continue;
		if (fp_push(ev, out, r, NULL, NULL) != 0)
			return -1;
	}
	return 0;
}

/* String functions of one string input: empty input gives empty. */
static int fn_string(const struct fp_node *n, struct fp_ev *ev, const coll_t *focus,
		     const coll_t *input, coll_t *out)
{
	static const char *const names[] = {
		[FN_REPLACE] = "replace()", [FN_STARTSWITH] = "startsWith()",
		[FN_ENDSWITH] = "endsWith()", [FN_SUBSTRING] = "substring()",
		[FN_LENGTH] = "length()", [FN_LOWER] = "lower()", [FN_UPPER] = "upper()",
	};
	const char *fn = names[n->op], *s = NULL, *a = NULL, *b = NULL;
	coll_t t0, t1;
	int rc;

	fhirpath_result_init(&t0);
	fhirpath_result_init(&t1);
	rc = fp_single_str(ev, input, &s, fn);
	if (rc <= 0)
		goto done;
	if (n->op == FN_REPLACE || n->op == FN_STARTSWITH || n->op == FN_ENDSWITH) {
		rc = arg_str(n, 0, ev, focus, &t0, &a, fn);
		if (rc <= 0)
			goto done;
	}
	if (n->op == FN_REPLACE) {
		rc = arg_str(n, 1, ev, focus, &t1, &b, fn);
		if (rc <= 0)
			goto done;
	}
	switch (n->op) {
	case FN_REPLACE:
		rc = fp_push_new(ev, out, fp_str_replace_all(s, a, b), "string");
		break;
	case FN_STARTSWITH:
		rc = fp_push_bool(ev, out, strncmp(s, a, strlen(a)) == 0);
		break;
	case FN_ENDSWITH: {
		size_t sl = strlen(s), al = strlen(a);
		rc = fp_push_bool(ev, out, al <= sl && strcmp(s + sl - al, a) == 0);
		break;
	}
	case FN_SUBSTRING: {
		json_int_t start = 0, len = -1;
		const char *from, *to;
		size_t cps = fp_utf8_len(s);
		rc = arg_int(n, 0, ev, focus, &start, fn);
		if (rc <= 0)
			goto done;
		if (n->nargs == 2 && (rc = arg_int(n, 1, ev, focus, &len, fn)) < 0)
			goto done;
		rc = 0;
		if (start < 0 || (size_t)start >= cps)
			goto done;
		from = fp_utf8_at(s, (size_t)start);
		to = (len < 0 || (size_t)len >= cps - (size_t)start)
			     ? s + strlen(s) : fp_utf8_at(s, (size_t)(start + len));
		rc = fp_push_new(ev, out, json_stringn(from, (size_t)(to - from)), "string");
		break;
	}
	case FN_LENGTH:
		rc = fp_push_new(ev, out, json_integer((json_int_t)fp_utf8_len(s)), "integer");
		break;
	case FN_LOWER:
	case FN_UPPER: {
		char *c = strdup(s), *p;
		if (!c) {
			rc = fp_everr(ev, "out of memory");
			break;
		}
		/* ASCII only: locale-dependent case mapping has no place in a parser. */
		for (p = c; *p; p++)
			*p = (char)(n->op == FN_LOWER ? tolower((unsigned char)*p)
						      : toupper((unsigned char)*p));
		rc = fp_push_new(ev, out, json_string(c), "string");
		free(c);
		break;
	}
	}
done:
	fhirpath_result_clear(&t0);
	fhirpath_result_clear(&t1);
	return rc < 0 ? -1 : 0;
}

int fp_eval_fn(const struct fp_node *n, struct fp_ev *ev, const coll_t *focus,
	       const coll_t *input, coll_t *out)
{
	size_t i, matched;
	int t, rc = 0;
	char buf[64];
	const char *s;

	switch ((enum fp_fn)n->op) {
	case FN_WHERE:
		return filter(n->args[0], ev, input, out, &matched);
	case FN_EXISTS:
		if (n->nargs == 0)
			return fp_push_bool(ev, out, input->count > 0);
		if (filter(n->args[0], ev, input, NULL, &matched) != 0)
			return -1;
		return fp_push_bool(ev, out, matched > 0);
	case FN_EMPTY:
		return fp_push_bool(ev, out, input->count == 0);
	case FN_COUNT:
		return fp_push_new(ev, out, json_integer((json_int_t)input->count), "integer");
	case FN_FIRST:
		return input->count ? fp_push_item(ev, out, &input->items[0]) : 0;
	case FN_LAST:
		return input->count ? fp_push_item(ev, out, &input->items[input->count - 1]) : 0;
	case FN_TAIL:
		for (i = 1; rc == 0 && i < input->count; i++)
			rc = fp_push_item(ev, out, &input->items[i]);
		return rc;
	case FN_SINGLE:
		if (input->count > 1)
			return fp_everr(ev, "single() got %s", "more than one item");
		return input->count ? fp_push_item(ev, out, &input->items[0]) : 0;
	case FN_NOT:
		if (fp_truth(ev, input, &t, "not()") != 0)
			return -1;
		return t < 0 ? 0 : fp_push_bool(ev, out, !t);
	case FN_HASVALUE:
		return fp_push_bool(ev, out, input->count == 1 &&
					     !json_is_object(input->items[0].value) &&
					     !json_is_null(input->items[0].value));
	case FN_DISTINCT:
		for (i = 0; rc == 0 && i < input->count; i++)
			if (!fp_coll_has(out, input->items[i].value))
				rc = fp_push_item(ev, out, &input->items[i]);
		return rc;
	case FN_OFTYPE:
		for (i = 0; rc == 0 && i < input->count; i++)
			if (fp_type_matches(&input->items[i], n->name))
				rc = fp_push_item(ev, out, &input->items[i]);
		return rc;
	case FN_EXTENSION:
		return fn_extension(n, ev, focus, input, out);
	case FN_RESOLVE:
		return fn_resolve(ev, input, out);
	case FN_TOSTRING:
		if (input->count == 0)
			return 0;
		if (input->count > 1)
			return fp_everr(ev, "toString() needs a single item");
		s = fhirpath_item_str(&input->items[0], buf, sizeof(buf));
		return s ? fp_push_new(ev, out, json_string(s), "string") : 0;
	case FN_REPLACE: case FN_STARTSWITH: case FN_ENDSWITH: case FN_SUBSTRING:
	case FN_LENGTH: case FN_LOWER: case FN_UPPER:
		return fn_string(n, ev, focus, input, out);
	}
	return fp_everr(ev, "unsupported function");
}

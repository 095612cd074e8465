/* fhirpath_eval — evaluation of a compiled expression over the FHIR tree.
 * Collections are arrays of items that each hold a reference, so results
 * stay valid whatever the caller does with the tree afterwards. */
#include "parse/fhirpath_int.h"
#include "parse/fhir_int.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int fp_everr(struct fp_ev *ev, const char *fmt, ...)
{
	va_list ap;

	if (ev->err) {
		ev->err->column = 0;
		va_start(ap, fmt);
		vsnprintf(ev->err->text, sizeof(ev->err->text), fmt, ap);
		va_end(ap);
	}
	return -1;
}

void fhirpath_result_init(fhirpath_result_t *r)
{
	r->items = NULL;
	r->count = 0;
	r->cap = 0;
}

void fhirpath_result_clear(fhirpath_result_t *r)
{
	size_t i;

	for (i = 0; i < r->count; i++) {
		json_decref(r->items[i].value);
		json_decref(r->items[i].ext);
	}
	free(r->items);
	fhirpath_result_init(r);
}

/* Append an item; takes new references to value and ext. */
int fp_push(struct fp_ev *ev, coll_t *c, json_t *value, json_t *ext, const char *type)
{
	if (c->count == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 4;
		fhirpath_item_t *n = realloc(c->items, ncap * sizeof(*n));
		if (!n)
			return fp_everr(ev, "out of memory");
		c->items = n;
		c->cap = ncap;
	}
	c->items[c->count].value = json_incref(value);
	c->items[c->count].ext = json_incref(ext);
	c->items[c->count].type = type;
	c->count++;
	return 0;
}

int fp_push_item(struct fp_ev *ev, coll_t *c, const fhirpath_item_t *it)
{
	return fp_push(ev, c, it->value, it->ext, it->type);
}

/* Append a value created by the caller (steals the reference). */
int fp_push_new(struct fp_ev *ev, coll_t *c, json_t *value, const char *type)
{
	int rc;

	if (!value)
		return fp_everr(ev, "out of memory");
	rc = fp_push(ev, c, value, NULL, type);
	json_decref(value);
	return rc;
}

int fp_push_bool(struct fp_ev *ev, coll_t *c, int b)
{
	return fp_push_new(ev, c, json_boolean(b), "boolean");
}

/* ---- types ---- */

static const char *fp_item_type(const fhirpath_item_t *it)
{
	const char *rt = fhir_resource_type(it->value);

	if (rt)
		return rt;
	if (it->type)
		return it->type;
	switch (json_typeof(it->value)) {
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "decimal";
	case JSON_TRUE: case JSON_FALSE: return "boolean";
	default: return NULL;
	}
}

/* ofType(T): FHIR type names match exactly; System types (String, Integer,
 * Decimal, Boolean) match the primitives of that kind; Resource and
 * DomainResource match any resource. */
int fp_type_matches(const fhirpath_item_t *it, const char *want)
{
	const char *t = fp_item_type(it);
	enum fhir_prim k;

	if (!t)
		return 0;
	if (strcmp(t, want) == 0)
		return 1;
	if (fhir_resource_type(it->value))
		return strcmp(want, "Resource") == 0 || strcmp(want, "DomainResource") == 0;
	k = fhir_type_prim(t);
	if (strcmp(want, "String") == 0)
		return k == FHIR_STRING;
	if (strcmp(want, "Boolean") == 0)
		return k == FHIR_BOOLEAN;
	if (strcmp(want, "Integer") == 0)
		return k == FHIR_INTEGER;
	if (strcmp(want, "Decimal") == 0)
		return k == FHIR_DECIMAL;
	return 0;
}

/* ---- navigation ---- */

/* Push obj[key] (with `_key`) as items of type `type`, flattening arrays. */
static int nav_key(struct fp_ev *ev, coll_t *out, json_t *obj, const char *key,
		   const char *type)
{
	json_t *v = json_object_get(obj, key), *e;
	char ukey[256];
	size_t i, n;

	if (snprintf(ukey, sizeof(ukey), "_%s", key) >= (int)sizeof(ukey))
		return 0;
	e = json_object_get(obj, ukey);
	if (!v && !e)
		return 0;
	if (json_is_array(v) || json_is_array(e)) {
		n = json_array_size(v) > json_array_size(e) ? json_array_size(v)
							    : json_array_size(e);
		for (i = 0; i < n; i++) {
			json_t *vi = json_array_get(v, i), *ei = json_array_get(e, i);
			if (json_is_null(ei))
				ei = NULL;
			if ((!vi || json_is_null(vi)) && !ei)
				continue;
			if (fp_push(ev, out, vi ? vi : json_null(), ei, type) != 0)
				return -1;
		}
		return 0;
	}
	if (json_is_null(e))
		e = NULL;
	if ((!v || json_is_null(v)) && !e)
		return 0;
	return fp_push(ev, out, v ? v : json_null(), e, type);
}

static int navigate(struct fp_ev *ev, const fhirpath_item_t *it, const char *name, coll_t *out)
{
	json_t *obj = it->value;
	const char *owner, *type, *key;
	int array, is_res;
	json_t *v;

	if (!json_is_object(obj)) {
		/* A primitive's id and extensions live in its `_name` object. */
		if (json_is_object(it->ext) && (strcmp(name, "extension") == 0 ||
						strcmp(name, "id") == 0))
			return nav_key(ev, out, it->ext, name,
				       name[0] == 'e' ? "Extension" : "string");
		return 0;
	}
	is_res = fhir_resource_type(obj) != NULL;
	owner = is_res ? fhir_resource_type(obj) : it->type;
	if (json_object_get(obj, name) || name[0] == '_') {
		type = fhir_type_elem(owner, is_res, name, &array);
		return nav_key(ev, out, obj, name, type);
	}
	/* A choice element: `value` finds valueQuantity, valueString, … */
	json_object_foreach(obj, key, v) {
		size_t nl = strlen(name), pl = 0;
		const char *t;
		if (strncmp(key, name, nl) != 0 || !isupper((unsigned char)key[nl]))
			continue;
		t = fhir_type_choice(key, &pl);
		if (t && pl == nl && nav_key(ev, out, obj, key, t) != 0)
			return -1;
	}
	/* Only `_valueString` without a value. */
	json_object_foreach(obj, key, v) {
		size_t nl = strlen(name), pl = 0;
		const char *t;
		if (key[0] != '_' || strncmp(key + 1, name, nl) != 0 ||
		    !isupper((unsigned char)key[1 + nl]) || json_object_get(obj, key + 1))
			continue;
		t = fhir_type_choice(key + 1, &pl);
		if (t && pl == nl && nav_key(ev, out, obj, key + 1, t) != 0)
			return -1;
	}
	return 0;
}

/* ---- truth and equality ---- */

/* FHIRPath singleton evaluation for booleans: -1 empty, 0 false, 1 true;
 * a single non-boolean item counts as true; more than one is an error. */
int fp_truth(struct fp_ev *ev, const coll_t *c, int *out, const char *what)
{
	if (c->count == 0)
		return *out = -1, 0;
	if (c->count > 1)
		return fp_everr(ev, "%s needs a single item, got a collection", what);
	if (json_is_boolean(c->items[0].value))
		*out = json_is_true(c->items[0].value);
	else
		*out = 1;
	return 0;
}

static int value_equal(json_t *a, json_t *b)
{
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	return json_equal(a, b);
}

static int coll_equal(const coll_t *a, const coll_t *b)
{
	size_t i;

	if (a->count != b->count)
		return 0;
	for (i = 0; i < a->count; i++)
		if (!value_equal(a->items[i].value, b->items[i].value))
			return 0;
	return 1;
}

int fp_coll_has(const coll_t *c, json_t *v)
{
	size_t i;

	for (i = 0; i < c->count; i++)
		if (value_equal(c->items[i].value, v))
			return 1;
	return 0;
}

/* The single string of a collection: 1 found, 0 empty, -1 error. */
int fp_single_str(struct fp_ev *ev, const coll_t *c, const char **s, const char *fn)
{
	if (c->count == 0)
		return 0;
	if (c->count > 1)
		return fp_everr(ev, "%s needs a single item, got a collection", fn);
	*s = json_string_value(c->items[0].value);
	if (!*s)
		return fp_everr(ev, "%s needs a string", fn);
	return 1;
}


/* ---- resolve() ---- */

static json_t *find_contained(json_t *res, const char *id)
{
	json_t *c, *r;
	size_t i;

	c = json_object_get(res, "contained");
	json_array_foreach(c, i, r) {
		const char *rid = json_string_value(json_object_get(r, "id"));
		if (rid && strcmp(rid, id) == 0)
			return r;
	}
	return NULL;
}

static int same_type_id(json_t *res, const char *type, size_t tl, const char *id, size_t il)
{
	const char *rt = fhir_resource_type(res);
	const char *rid = json_string_value(json_object_get(res, "id"));

	return rt && rid && strlen(rt) == tl && strncmp(rt, type, tl) == 0 &&
	       strlen(rid) == il && strncmp(rid, id, il) == 0;
}

json_t *fp_resolve_ref(struct fp_ev *ev, const char *ref)
{
	json_t *bundle = ev->ctx->bundle, *entries, *e, *r;
	const char *end, *type, *id, *slash, *hist;
	size_t i, tl, il;

	if (ref[0] == '#')
		return ref[1] ? find_contained(ev->ctx->resource, ref + 1) : ev->ctx->resource;
	entries = json_object_get(bundle, "entry");
	json_array_foreach(entries, i, e) {
		const char *fu = json_string_value(json_object_get(e, "fullUrl"));
		if (fu && strcmp(fu, ref) == 0)
			return json_object_get(e, "resource");
	}
	/* [base/]Type/id[/_history/v]: match on the last Type/id pair. */
	hist = strstr(ref, "/_history/");
	end = hist ? hist : ref + strlen(ref);
	for (slash = end; slash > ref && slash[-1] != '/'; slash--)
		;
	if (slash == ref || slash == end)
		return NULL;
	id = slash;
	il = (size_t)(end - id);
	end = slash - 1;
	for (type = end; type > ref && type[-1] != '/'; type--)
		;
	tl = (size_t)(end - type);
	if (tl == 0 || !isupper((unsigned char)type[0]))
		return NULL;
	json_array_foreach(entries, i, e) {
		r = json_object_get(e, "resource");
		if (same_type_id(r, type, tl, id, il))
			return r;
	}
	if (same_type_id(ev->ctx->resource, type, tl, id, il))
		return ev->ctx->resource;
	return NULL;
}

/* ---- string helpers ---- */

json_t *fp_str_replace_all(const char *s, const char *pat, const char *rep)
{
	size_t sl = strlen(s), pl = strlen(pat), rl = strlen(rep), cnt = 0, o = 0;
	const char *p;
	char *buf;
	json_t *r;

	if (pl == 0) /* FHIRPath: an empty pattern puts rep around every character */
		cnt = sl + 1;
	else
		for (p = strstr(s, pat); p; p = strstr(p + pl, pat))
			cnt++;
	buf = malloc(sl + cnt * rl + 1);
	if (!buf)
		return NULL;
	for (p = s; *p;) {
		if (pl == 0) {
			memcpy(buf + o, rep, rl);
			o += rl;
			buf[o++] = *p++;
		} else if (strncmp(p, pat, pl) == 0) {
			memcpy(buf + o, rep, rl);
			o += rl;
			p += pl;
		} else {
			buf[o++] = *p++;
		}
	}
	if (pl == 0) {
		memcpy(buf + o, rep, rl);
		o += rl;
	}
	buf[o] = '\0';
	r = json_stringn(buf, o);
	free(buf);
	return r;
}

/* Code points of a UTF-8 string (jansson guarantees valid UTF-8). */
size_t fp_utf8_len(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

const char *fp_utf8_at(const char *s, size_t cp)
{
	for (; *s; s++) {
		if (((unsigned char)*s & 0xC0) != 0x80) {
			if (cp == 0)
				return s;
			cp--;
		}
	}
	return cp == 0 ? s : NULL;
}


/* ---- the evaluator ---- */

static int eval_bin(const struct fp_node *n, struct fp_ev *ev, const coll_t *focus, coll_t *out)
{
	coll_t a, b;
	int rc = -1, ta, tb;
	const char *sa = NULL, *sb = NULL;
	size_t i;

	fhirpath_result_init(&a);
	fhirpath_result_init(&b);
	if (fp_eval(n->base, ev, focus, &a) != 0 || fp_eval(n->args[0], ev, focus, &b) != 0)
		goto done;
	switch (n->op) {
	case OP_EQ:
	case OP_NE:
		rc = (a.count && b.count) ? fp_push_bool(ev, out, coll_equal(&a, &b) == (n->op == OP_EQ))
					  : 0;
		break;
	case OP_AND: case OP_OR: case OP_XOR: case OP_IMPLIES:
		if (fp_truth(ev, &a, &ta, "a boolean operator") != 0 ||
		    fp_truth(ev, &b, &tb, "a boolean operator") != 0)
			goto done;
		if (n->op == OP_AND)
			rc = (ta == 0 || tb == 0) ? fp_push_bool(ev, out, 0)
			     : (ta == 1 && tb == 1) ? fp_push_bool(ev, out, 1) : 0;
		else if (n->op == OP_OR)
			rc = (ta == 1 || tb == 1) ? fp_push_bool(ev, out, 1)
			     : (ta == 0 && tb == 0) ? fp_push_bool(ev, out, 0) : 0;
		else if (n->op == OP_XOR)
			rc = (ta < 0 || tb < 0) ? 0 : fp_push_bool(ev, out, ta != tb);
		else
			rc = ta == 0 || tb == 1 ? fp_push_bool(ev, out, 1)
			     : ta == 1 && tb == 0 ? fp_push_bool(ev, out, 0) : 0;
		break;
	case OP_IN:
	case OP_CONTAINS: {
		coll_t *item = n->op == OP_IN ? &a : &b, *set = n->op == OP_IN ? &b : &a;
		if (item->count == 0) {
			rc = 0;
			break;
		}
		if (item->count > 1) {
			fp_everr(ev, "'%s' needs a single item on its element side",
			      n->op == OP_IN ? "in" : "contains");
			goto done;
		}
		rc = fp_push_bool(ev, out, fp_coll_has(set, item->items[0].value));
		break;
	}
	case OP_UNION:
		rc = 0;
		for (i = 0; rc == 0 && i < a.count + b.count; i++) {
			fhirpath_item_t *it = i < a.count ? &a.items[i] : &b.items[i - a.count];
			if (!fp_coll_has(out, it->value))
				rc = fp_push_item(ev, out, it);
		}
		break;
	case OP_AMP:
		if (a.count > 1 || b.count > 1 ||
		    (a.count && !(sa = json_string_value(a.items[0].value))) ||
		    (b.count && !(sb = json_string_value(b.items[0].value)))) {
			fp_everr(ev, "'&' needs single strings");
			goto done;
		}
		rc = fp_push_new(ev, out, json_sprintf("%s%s", sa ? sa : "", sb ? sb : ""), "string");
		break;
	case OP_PLUS:
	case OP_MINUS: {
		json_t *x, *y;
		if (a.count == 0 || b.count == 0) {
			rc = 0;
			break;
		}
		if (a.count > 1 || b.count > 1) {
			fp_everr(ev, "'%s' needs single items", n->op == OP_PLUS ? "+" : "-");
			goto done;
		}
		x = a.items[0].value;
		y = b.items[0].value;
		if (n->op == OP_PLUS && json_is_string(x) && json_is_string(y))
			rc = fp_push_new(ev, out, json_sprintf("%s%s", json_string_value(x),
							    json_string_value(y)), "string");
		else if (json_is_integer(x) && json_is_integer(y)) {
			long long p = json_integer_value(x), q = json_integer_value(y), r;
			if (n->op == OP_PLUS ? __builtin_add_overflow(p, q, &r)
					     : __builtin_sub_overflow(p, q, &r)) {
				fp_everr(ev, "integer overflow");
				goto done;
			}
			rc = fp_push_new(ev, out, json_integer(r), "integer");
		} else if (json_is_number(x) && json_is_number(y)) {
			double r = n->op == OP_PLUS ? json_number_value(x) + json_number_value(y)
						    : json_number_value(x) - json_number_value(y);
			rc = fp_push_new(ev, out, json_real(r), "decimal");
		} else {
			fp_everr(ev, "'%s' needs numbers (or strings for +)",
			      n->op == OP_PLUS ? "+" : "-");
			goto done;
		}
		break;
	}
	}
done:
	fhirpath_result_clear(&a);
	fhirpath_result_clear(&b);
	return rc;
}

int fp_eval(const struct fp_node *n, struct fp_ev *ev, const coll_t *focus, coll_t *out)
{
	coll_t in;
	const coll_t *input = focus;
	int rc = -1;
	size_t i;

	fhirpath_result_init(&in);
	if ((n->kind == FP_NAV || n->kind == FP_FUNC || n->kind == FP_INDEX ||
	     n->kind == FP_NEG) && n->base) {
		if (fp_eval(n->base, ev, focus, &in) != 0)
			goto done;
		input = &in;
	}
	switch (n->kind) {
	case FP_LIT:
		rc = fp_push(ev, out, n->lit, NULL, NULL);
		break;
	case FP_EMPTY:
		rc = 0;
		break;
	case FP_THIS:
		rc = 0;
		for (i = 0; rc == 0 && i < focus->count; i++)
			rc = fp_push_item(ev, out, &focus->items[i]);
		break;
	case FP_VAR:
		if (n->op == 1)
			rc = fp_push_item(ev, out, ev->context);
		else if (n->op == 2)
			rc = ev->ctx->entry ? fp_push(ev, out, ev->ctx->entry, NULL, NULL) : 0;
		else
			rc = ev->ctx->resource ? fp_push(ev, out, ev->ctx->resource, NULL, NULL) : 0;
		break;
	case FP_NAV:
		rc = 0;
		/* A leading type name filters the focus: `Patient.name` on a Patient. */
		if (!n->base && isupper((unsigned char)n->name[0])) {
			for (i = 0; rc == 0 && i < input->count; i++)
				if (fp_type_matches(&input->items[i], n->name))
					rc = fp_push_item(ev, out, &input->items[i]);
			break;
		}
		for (i = 0; rc == 0 && i < input->count; i++)
			rc = navigate(ev, &input->items[i], n->name, out);
		break;
	case FP_INDEX: {
		coll_t ix;
		fhirpath_result_init(&ix);
		if (fp_eval(n->args[0], ev, focus, &ix) != 0)
			goto done;
		if (ix.count != 1 || !json_is_integer(ix.items[0].value)) {
			fhirpath_result_clear(&ix);
			fp_everr(ev, "an index must be a single integer");
			goto done;
		}
		json_int_t k = json_integer_value(ix.items[0].value);
		fhirpath_result_clear(&ix);
		rc = (k >= 0 && (size_t)k < input->count)
			     ? fp_push_item(ev, out, &input->items[k]) : 0;
		break;
	}
	case FP_NEG:
		if (input->count == 0) {
			rc = 0;
		} else if (input->count > 1 || !json_is_number(input->items[0].value)) {
			fp_everr(ev, "unary '-' needs a single number");
		} else if (json_is_integer(input->items[0].value)) {
			json_int_t v = json_integer_value(input->items[0].value);
			rc = v == INT64_MIN ? fp_everr(ev, "integer overflow")
					    : fp_push_new(ev, out, json_integer(-v), "integer");
		} else {
			rc = fp_push_new(ev, out, json_real(-json_real_value(input->items[0].value)),
				      "decimal");
		}
		break;
	case FP_FUNC:
		rc = fp_eval_fn(n, ev, focus, input, out);
		break;
	case FP_BIN:
		rc = eval_bin(n, ev, focus, out);
		break;
	}
done:
	fhirpath_result_clear(&in);
	return rc;
}

int fhirpath_eval_item(const fhirpath_t *fp, const fhirpath_ctx_t *ctx,
		       const fhirpath_item_t *focus, fhirpath_result_t *out,
		       fhirpath_error_t *err)
{
	struct fp_ev ev = {ctx, focus, err};
	coll_t f;
	fhirpath_item_t item = *focus;

	fhirpath_result_clear(out);
	if (err) {
		err->column = 0;
		err->text[0] = '\0';
	}
	f.items = &item;
	f.count = focus->value ? 1 : 0;
	f.cap = 1;
	if (fp_eval(fp->root, &ev, &f, out) != 0) {
		fhirpath_result_clear(out);
		return -1;
	}
	return 0;
}

int fhirpath_eval(const fhirpath_t *fp, const fhirpath_ctx_t *ctx, json_t *focus,
		  fhirpath_result_t *out, fhirpath_error_t *err)
{
	fhirpath_item_t item = {focus ? focus : ctx->resource, NULL, NULL};
	return fhirpath_eval_item(fp, ctx, &item, out, err);
}

const char *fhirpath_item_str(const fhirpath_item_t *it, char *buf, size_t size)
{
	json_t *v = it->value;
	int prec;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return json_string_value(v);
	case JSON_TRUE:
		return snprintf(buf, size, "true") < (int)size ? buf : NULL;
	case JSON_FALSE:
		return snprintf(buf, size, "false") < (int)size ? buf : NULL;
	case JSON_INTEGER:
		return snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) <
			       (int)size ? buf : NULL;
	case JSON_REAL:
		/* Shortest text that reads back as the same double. */
		for (prec = 1; prec <= 17; prec++) {
			if (snprintf(buf, size, "%.*g", prec, json_real_value(v)) >= (int)size)
				return NULL;
			if (strtod(buf, NULL) == json_real_value(v))
				break;
		}
		return buf;
	default:
		return NULL;
	}
}

const char *fhirpath_result_str(const fhirpath_result_t *r, char *buf, size_t size)
{
	return r->count ? fhirpath_item_str(&r->items[0], buf, size) : NULL;
}

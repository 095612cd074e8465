/* expr — evaluating compiled expressions and the built-in functions.
 *
 * Every expression yields a list of values (HL7 repetitions, FHIR
 * collections); a scalar target takes the first. Empty values never enter a
 * list, so `a ?? b` is simply "a's values if there are any, else b's".
 * Errors (a date that is not a date) name the function and the source path,
 * never the value.
 */
#include "map/map_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static int fail(struct map_env *env, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct map_env *env, int code, const char *fmt, ...)
{
	va_list ap;
	env->err_code = code;
	va_start(ap, fmt);
	vsnprintf(env->errstr, env->errstr_size, fmt, ap);
	va_end(ap);
	return -1;
}

/* The path text a value list came from, for messages. */
static const char *origin_of(const struct map_expr *e)
{
	while (e->op != OP_PATH && e->nargs > 0)
		e = e->args[0];
	return e->text ? e->text : "a literal";
}

static int oom(struct map_env *env)
{
	return fail(env, 207, "out of scratch memory");
}

static int add(struct map_env *env, struct map_vals *out, const char *s, size_t len,
	       const char *origin)
{
	if (map_vals_add(env->arena, out, s, len, origin) != 0)
		return oom(env);
	return 0;
}

static int is_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

static int num2(const char *s) { return (s[0] - '0') * 10 + (s[1] - '0'); }

/* FHIR date/dateTime: YYYY-MM[-DD[Thh:mm:ss[.fff](Z|+hh:mm)]]. */
static int iso_valid(const char *s, size_t len)
{
	/* a template per position: 9 digit, anything else literal */
	static const char date[] = "9999-99-99", time[] = "T99:99:99";
	size_t i = 0;
	for (; i < len && i < 10; i++)
		if (date[i] == '9' ? !isdigit((unsigned char)s[i]) : s[i] != date[i])
			return 0;
	if (i != 7 && i != 10)
		return 0;
	if (num2(s + 5) < 1 || num2(s + 5) > 12 || (i == 10 && (num2(s + 8) < 1 || num2(s + 8) > 31)))
		return 0;
	if (i == len)
		return 1;
	if (i != 10)
		return 0;
	for (size_t k = 0; k < 9; k++, i++)
		if (i >= len || (time[k] == '9' ? !isdigit((unsigned char)s[i]) : s[i] != time[k]))
			return 0;
	if (i < len && s[i] == '.') {
		size_t f = ++i;
		while (i < len && isdigit((unsigned char)s[i]))
			i++;
		if (i == f)
			return 0;
	}
	if (i < len && s[i] == 'Z')
		return i + 1 == len;
	if (i < len && (s[i] == '+' || s[i] == '-'))
		return len - i == 6 && isdigit((unsigned char)s[i + 1]) &&
		       isdigit((unsigned char)s[i + 2]) && s[i + 3] == ':' &&
		       isdigit((unsigned char)s[i + 4]) && isdigit((unsigned char)s[i + 5]);
	return i == len;
}

int map_fmt_datetime(const char *s, size_t len, int dt, char *out, size_t size)
{
	/* already ISO 8601 (FHIR): keep it, cut to the date for date() */
	if (len >= 7 && s[4] == '-') {
		if (!iso_valid(s, len))
			return -1;
		size_t n = dt ? len : (len > 10 ? 10 : len);
		if (n + 1 > size)
			return -1;
		memcpy(out, s, n);
		out[n] = '\0';
		return (int)n;
	}
	/* HL7 DTM: YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ] */
	size_t tz = len;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '+' || s[i] == '-') {
			tz = i;
			break;
		}
	size_t dl = tz, frac = tz;
	for (size_t i = 0; i < tz; i++)
		if (s[i] == '.') {
			frac = i;
			break;
		}
	dl = frac;
	if (!(dl == 4 || dl == 6 || dl == 8 || dl == 10 || dl == 12 || dl == 14) ||
	    !is_digits(s, dl))
		return -1;
	if (frac < tz && (dl != 14 || tz - frac < 2 || tz - frac > 5 ||
			  !is_digits(s + frac + 1, tz - frac - 1)))
		return -1;
	if (tz < len && (len - tz != 5 || !is_digits(s + tz + 1, 4)))
		return -1;
	if ((dl >= 6 && (num2(s + 4) < 1 || num2(s + 4) > 12)) ||
	    (dl >= 8 && (num2(s + 6) < 1 || num2(s + 6) > 31)) ||
	    (dl >= 10 && num2(s + 8) > 23) || (dl >= 12 && num2(s + 10) > 59) ||
	    (dl >= 14 && num2(s + 12) > 60))
		return -1;
	if (!dt && dl > 8)
		dl = 8;
	char buf[64];
	size_t n = 0;
#define PUT(c) (buf[n++] = (c))
#define PUT2(p) (buf[n++] = (p)[0], buf[n++] = (p)[1])
	memcpy(buf, s, 4);
	n = 4;
	if (dl >= 6) {
		PUT('-');
		PUT2(s + 4);
	}
	if (dl >= 8) {
		PUT('-');
		PUT2(s + 6);
	}
	if (dt && dl >= 10) {
		/* FHIR has no hour-only precision: an hour gets ":00" */
		PUT('T');
		PUT2(s + 8);
		PUT(':');
		PUT2(dl >= 12 ? s + 10 : "00");
		if (dl >= 14) {
			PUT(':');
			PUT2(s + 12);
		}
		for (size_t i = frac; i < tz; i++) /* ".S" up to 4 digits, checked above */
			PUT(s[i]);
		if (tz < len) {
			PUT(s[tz]);
			PUT2(s + tz + 1);
			PUT(':');
			PUT2(s + tz + 3);
		}
	}
#undef PUT
#undef PUT2
	if (n + 1 > size)
		return -1;
	memcpy(out, buf, n);
	out[n] = '\0';
	return (int)n;
}

/* The id a FHIR reference or fullUrl names: `Patient/123`,
 * `http://x/fhir/Patient/123/_history/2` → 123; `urn:uuid:ab-12` → ab-12
 * (also urn:oid:); `#p1` → p1; `Practitioner?identifier=sys|123` → 123. *len
 * gets its length. */
static const char *ref_id(const char *s, size_t *len)
{
	size_t n = *len;
	if (n > 9 && (strncmp(s, "urn:uuid:", 9) == 0 || strncmp(s, "urn:oid:", 8) == 0)) {
		size_t k = s[4] == 'u' ? 9 : 8;
		*len = n - k;
		return s + k;
	}
	if (n > 1 && s[0] == '#') {
		*len = n - 1;
		return s + 1;
	}
	/* a conditional reference, Practitioner?identifier=system|value: the value */
	const char *q = memchr(s, '?', n), *id = q ? memmem(q, n - (size_t)(q - s), "identifier=", 11) : NULL;
	if (id) {
		const char *v = id + 11, *end = s + n, *amp = memchr(v, '&', (size_t)(end - v));
		if (amp)
			end = amp;
		const char *bar = memrchr(v, '|', (size_t)(end - v));
		if (bar)
			v = bar + 1;
		*len = (size_t)(end - v);
		return v;
	}
	const char *h = memmem(s, n, "/_history/", 10);
	size_t end = h ? (size_t)(h - s) : n, start = end;
	while (start > 0 && s[start - 1] != '/')
		start--;
	*len = end - start;
	return s + start;
}

/* The UUIDv5 helper lives with the event id (event.c). */
void map_uuid5(char out[37], const void *name, size_t len);

static int eval_arg(struct map_env *env, const struct map_expr *e, struct map_vals *v)
{
	v->n = 0;
	v->cap = 0;
	v->v = NULL;
	return map_expr_eval(env, e, v);
}

static int call(struct map_env *env, const struct map_expr *e, struct map_vals *out)
{
	struct map_vals a, b, c;
	if (e->fn == FN_IF) {
		int t = map_expr_test(env, e->args[0]);
		if (t < 0)
			return -1;
		if (t)
			return map_expr_eval(env, e->args[1], out);
		return e->nargs > 2 ? map_expr_eval(env, e->args[2], out) : 0;
	}
	if (e->fn == FN_CONCAT || e->fn == FN_UUID) {
		size_t total = 0;
		struct map_vals parts[16];
		for (size_t k = 0; k < e->nargs; k++) {
			if (eval_arg(env, e->args[k], &parts[k]))
				return -1;
			for (size_t i = 0; i < parts[k].n; i++)
				total += parts[k].v[i].len + 1;
		}
		if (total == 0)
			return 0;
		char *s = map_arena_alloc(env->arena, total + 1), *p = s;
		if (!s)
			return oom(env);
		for (size_t k = 0; k < e->nargs; k++)
			for (size_t i = 0; i < parts[k].n; i++) {
				memcpy(p, parts[k].v[i].s, parts[k].v[i].len);
				p += parts[k].v[i].len;
				if (e->fn == FN_UUID)
					*p++ = 0x1f; /* ("ab","c") and ("a","bc") differ */
			}
		*p = '\0';
		if (e->fn == FN_UUID) {
			char *u = map_arena_alloc(env->arena, 37);
			if (!u)
				return oom(env);
			map_uuid5(u, s, (size_t)(p - s));
			return add(env, out, u, 36, origin_of(e));
		}
		return add(env, out, s, (size_t)(p - s), origin_of(e));
	}
	if (eval_arg(env, e->args[0], &a))
		return -1;
	switch (e->fn) {
	case FN_DATETIME:
	case FN_DATE:
		for (size_t i = 0; i < a.n; i++) {
			char *o = map_arena_alloc(env->arena, 64);
			int n = o ? map_fmt_datetime(a.v[i].s, a.v[i].len, e->fn == FN_DATETIME, o, 64)
				  : -1;
			if (n < 0)
				return fail(env, 102, "%s(): the value of %s is not an HL7 or ISO 8601 "
					    "date/time", e->fn == FN_DATE ? "date" : "datetime",
					    origin_of(e->args[0]));
			if (add(env, out, o, (size_t)n, a.v[i].origin))
				return -1;
		}
		return 0;
	case FN_LOOKUP:
	case FN_CODESYSTEM: {
		const struct map_table *t = e->fn == FN_LOOKUP ? e->args[1]->table : e->table;
		if (a.n == 0 && e->fn == FN_LOOKUP && e->nargs > 2)
			return map_expr_eval(env, e->args[2], out);
		for (size_t i = 0; i < a.n; i++) {
			char key[128];
			size_t kl = a.v[i].len < sizeof(key) - 1 ? a.v[i].len : sizeof(key) - 1;
			memcpy(key, a.v[i].s, kl);
			if (e->fn == FN_CODESYSTEM)
				for (size_t k = 0; k < kl; k++)
					key[k] = (char)toupper((unsigned char)key[k]);
			const char *v = map_table_get(t, key, kl);
			if (v) {
				if (add(env, out, v, strlen(v), a.v[i].origin))
					return -1;
			} else if (e->fn == FN_CODESYSTEM) {
				/* already a URI (FHIR): keep it */
				if (memchr(a.v[i].s, ':', a.v[i].len) &&
				    add(env, out, a.v[i].s, a.v[i].len, a.v[i].origin))
					return -1;
			} else if (e->nargs > 2) {
				if (eval_arg(env, e->args[2], &b))
					return -1;
				if (b.n && add(env, out, b.v[0].s, b.v[0].len, b.v[0].origin))
					return -1;
			}
		}
		return 0;
	}
	case FN_LOWER:
	case FN_UPPER:
	case FN_TRIM:
		for (size_t i = 0; i < a.n; i++) {
			const char *s = a.v[i].s;
			size_t n = a.v[i].len;
			if (e->fn == FN_TRIM) {
				while (n && isspace((unsigned char)*s)) {
					s++;
					n--;
				}
				while (n && isspace((unsigned char)s[n - 1]))
					n--;
				if (add(env, out, s, n, a.v[i].origin))
					return -1;
				continue;
			}
			char *o = map_arena_strndup(env->arena, s, n);
			if (!o)
				return oom(env);
			for (size_t k = 0; k < n; k++) /* ASCII only: other bytes kept */
				o[k] = (char)(e->fn == FN_LOWER ? tolower((unsigned char)o[k])
								: toupper((unsigned char)o[k]));
			if (add(env, out, o, n, a.v[i].origin))
				return -1;
		}
		return 0;
	case FN_REPLACE:
		if (eval_arg(env, e->args[1], &b) || eval_arg(env, e->args[2], &c))
			return -1;
		for (size_t i = 0; i < a.n; i++) {
			const char *s = a.v[i].s, *from = b.n ? b.v[0].s : "";
			size_t n = a.v[i].len, fl = b.n ? b.v[0].len : 0, tl = c.n ? c.v[0].len : 0;
			if (fl == 0) {
				if (add(env, out, s, n, a.v[i].origin))
					return -1;
				continue;
			}
			size_t cap = n + (n / fl + 1) * tl + 1, k = 0;
			char *o = map_arena_alloc(env->arena, cap);
			if (!o)
				return oom(env);
			for (size_t j = 0; j < n;) {
				if (j + fl <= n && memcmp(s + j, from, fl) == 0) {
					memcpy(o + k, c.n ? c.v[0].s : "", tl);
					k += tl;
					j += fl;
				} else {
					o[k++] = s[j++];
				}
			}
			o[k] = '\0';
			if (add(env, out, o, k, a.v[i].origin))
				return -1;
		}
		return 0;
	case FN_REFID:
		for (size_t i = 0; i < a.n; i++) {
			size_t n = a.v[i].len;
			const char *id = ref_id(a.v[i].s, &n);
			char *o = map_arena_strndup(env->arena, id, n);
			if (!o)
				return oom(env);
			if (add(env, out, o, n, a.v[i].origin))
				return -1;
		}
		return 0;
	case FN_SPLIT:
		if (eval_arg(env, e->args[1], &b))
			return -1;
		for (size_t i = 0; i < a.n; i++) {
			const char *s = a.v[i].s, *end = s + a.v[i].len;
			if (!b.n) {
				if (add(env, out, s, a.v[i].len, a.v[i].origin))
					return -1;
				continue;
			}
			while (s <= end) {
				const char *q = memmem(s, (size_t)(end - s), b.v[0].s, b.v[0].len);
				if (!q)
					q = end;
				char *piece = map_arena_strndup(env->arena, s, (size_t)(q - s));
				if (!piece || add(env, out, piece, (size_t)(q - s), a.v[i].origin))
					return oom(env);
				s = q + b.v[0].len;
			}
		}
		return 0;
	default:
		return fail(env, 207, "internal error: unknown function");
	}
}

static const char *tref_value(const struct map_env *env, const struct map_expr *e)
{
	const struct map_node *n = env->event;
	const struct map_field *parent = env->event_root;
	for (size_t k = 0; e->tref[k] && n; k++) {
		if (n->kind != MN_REC)
			return NULL;
		n = map_node_child((struct map_node *)n, parent, e->tref[k]);
		parent = e->tref[k];
	}
	return n && n->kind == MN_STR ? n->s : NULL;
}

int map_expr_eval(struct map_env *env, const struct map_expr *e, struct map_vals *out)
{
	struct map_vals a, b;
	switch (e->op) {
	case OP_LIT:
		return add(env, out, e->str, e->len, NULL);
	case OP_PATH: {
		size_t before = out->n;
		if (env->ops->eval(env->scope, e->src, env->arena, out, env->errstr,
				   env->errstr_size) != 0) {
			env->err_code = 102;
			return -1;
		}
		/* --explain names the path as the analyst wrote it */
		for (size_t i = before; i < out->n; i++)
			out->v[i].origin = e->text;
		return 0;
	}
	case OP_TYPE:
		return env->type ? add(env, out, env->type, strlen(env->type), NULL) : 0;
	case OP_TREF: {
		const char *s = tref_value(env, e);
		return s ? add(env, out, s, strlen(s), e->text) : 0;
	}
	case OP_CONCAT: {
		if (eval_arg(env, e->args[0], &a) || eval_arg(env, e->args[1], &b))
			return -1;
		size_t la = a.n ? a.v[0].len : 0, lb = b.n ? b.v[0].len : 0;
		char *s = map_arena_alloc(env->arena, la + lb + 1);
		if (!s)
			return oom(env);
		memcpy(s, a.n ? a.v[0].s : "", la);
		memcpy(s + la, b.n ? b.v[0].s : "", lb);
		s[la + lb] = '\0';
		return add(env, out, s, la + lb, a.n ? a.v[0].origin : b.n ? b.v[0].origin : NULL);
	}
	case OP_COALESCE:
		if (eval_arg(env, e->args[0], &a))
			return -1;
		if (a.n) {
			for (size_t i = 0; i < a.n; i++)
				if (add(env, out, a.v[i].s, a.v[i].len, a.v[i].origin))
					return -1;
			return 0;
		}
		return map_expr_eval(env, e->args[1], out);
	case OP_CALL:
		return call(env, e, out);
	default:
		return fail(env, 207, "internal error: a condition used as a value");
	}
}

static int vals_eq(const struct map_vals *a, const struct map_vals *b)
{
	static const struct map_val empty = { "", 0, NULL };
	size_t na = a->n ? a->n : 1, nb = b->n ? b->n : 1;
	for (size_t i = 0; i < na; i++) {
		const struct map_val *x = a->n ? &a->v[i] : &empty;
		for (size_t k = 0; k < nb; k++) {
			const struct map_val *y = b->n ? &b->v[k] : &empty;
			if (x->len == y->len && memcmp(x->s, y->s, x->len) == 0)
				return 1;
		}
	}
	return 0;
}

int map_expr_test(struct map_env *env, const struct map_expr *e)
{
	struct map_vals a, b;
	int r;
	switch (e->op) {
	case OP_EQ:
	case OP_NE:
		if (eval_arg(env, e->args[0], &a) || eval_arg(env, e->args[1], &b))
			return -1;
		r = vals_eq(&a, &b);
		return e->op == OP_EQ ? r : !r;
	case OP_IN:
		if (eval_arg(env, e->args[0], &a))
			return -1;
		for (size_t k = 1; k < e->nargs; k++) {
			if (eval_arg(env, e->args[k], &b))
				return -1;
			if (vals_eq(&a, &b))
				return 1;
		}
		return 0;
	case OP_AND:
	case OP_OR:
		r = map_expr_test(env, e->args[0]);
		if (r < 0 || (e->op == OP_AND && !r) || (e->op == OP_OR && r))
			return r;
		return map_expr_test(env, e->args[1]);
	case OP_NOT:
		r = map_expr_test(env, e->args[0]);
		return r < 0 ? r : !r;
	case OP_EXISTS:
		if (e->args[0]->op == OP_PATH && env->ops->exists) {
			r = env->ops->exists(env->scope, e->args[0]->src, env->arena, env->errstr,
					     env->errstr_size);
			if (r < 0)
				env->err_code = 102;
			return r;
		}
		if (eval_arg(env, e->args[0], &a))
			return -1;
		return a.n > 0;
	default:
		return fail(env, 207, "internal error: a value used as a condition");
	}
}

/* expr — evaluating compiled expressions (the built-in functions are in
 * functions.c).
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

int map_eval_fail(struct map_env *env, int code, const char *fmt, ...)
{
	va_list ap;
	env->err_code = code;
	va_start(ap, fmt);
	vsnprintf(env->errstr, env->errstr_size, fmt, ap);
	va_end(ap);
	return -1;
}

/* The path text a value list came from, for messages. */
const char *map_eval_origin(const struct map_expr *e)
{
	while (e->op != OP_PATH && e->nargs > 0)
		e = e->args[0];
	return e->text ? e->text : "a literal";
}

int map_eval_oom(struct map_env *env)
{
	return map_eval_fail(env, 207, "out of scratch memory");
}

int map_eval_add(struct map_env *env, struct map_vals *out, const char *s, size_t len,
		 const char *origin)
{
	if (map_vals_add(env->arena, out, s, len, origin) != 0)
		return map_eval_oom(env);
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
	const size_t ymd = sizeof(date) - 1, ym = sizeof("9999-99") - 1;
	size_t i = 0;
	for (; i < len && i < ymd; i++)
		if (date[i] == '9' ? !isdigit((unsigned char)s[i]) : s[i] != date[i])
			return 0;
	if (i != ym && i != ymd)
		return 0;
	if (num2(s + 5) < 1 || num2(s + 5) > 12 || (i == ymd && (num2(s + 8) < 1 || num2(s + 8) > 31)))
		return 0;
	if (i == len)
		return 1;
	if (i != ymd)
		return 0;
	for (size_t k = 0; k < sizeof(time) - 1; k++, i++)
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

int map_eval_arg(struct map_env *env, const struct map_expr *e, struct map_vals *v)
{
	v->n = 0;
	v->cap = 0;
	v->v = NULL;
	return map_expr_eval(env, e, v);
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
		return map_eval_add(env, out, e->str, e->len, NULL);
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
		return env->type ? map_eval_add(env, out, env->type, strlen(env->type), NULL) : 0;
	case OP_TREF: {
		const char *s = tref_value(env, e);
		return s ? map_eval_add(env, out, s, strlen(s), e->text) : 0;
	}
	case OP_CONCAT: {
		if (map_eval_arg(env, e->args[0], &a) || map_eval_arg(env, e->args[1], &b))
			return -1;
		size_t la = a.n ? a.v[0].len : 0, lb = b.n ? b.v[0].len : 0;
		char *s = map_arena_alloc(env->arena, la + lb + 1);
		if (!s)
			return map_eval_oom(env);
		memcpy(s, a.n ? a.v[0].s : "", la);
		memcpy(s + la, b.n ? b.v[0].s : "", lb);
		s[la + lb] = '\0';
		return map_eval_add(env, out, s, la + lb, a.n ? a.v[0].origin : b.n ? b.v[0].origin : NULL);
	}
	case OP_COALESCE:
		if (map_eval_arg(env, e->args[0], &a))
			return -1;
		if (a.n) {
			for (size_t i = 0; i < a.n; i++)
				if (map_eval_add(env, out, a.v[i].s, a.v[i].len, a.v[i].origin))
					return -1;
			return 0;
		}
		return map_expr_eval(env, e->args[1], out);
	case OP_CALL:
		if (e->fn->eval)
			return e->fn->eval(env, e, out);
		/* a condition function */
		/* fall through */
	default:
		return map_eval_fail(env, 207, "internal error: a condition used as a value");
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
		if (map_eval_arg(env, e->args[0], &a) || map_eval_arg(env, e->args[1], &b))
			return -1;
		r = vals_eq(&a, &b);
		return e->op == OP_EQ ? r : !r;
	case OP_IN:
		if (map_eval_arg(env, e->args[0], &a))
			return -1;
		for (size_t k = 1; k < e->nargs; k++) {
			if (map_eval_arg(env, e->args[k], &b))
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
	case OP_CALL:
		if (e->fn->test)
			return e->fn->test(env, e);
		/* a value function */
		/* fall through */
	default:
		return map_eval_fail(env, 207, "internal error: a value used as a condition");
	}
}

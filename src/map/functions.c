/* functions — the built-in functions of the mapping language.
 *
 * map_functions[] is the one place a function is defined: its name, how
 * many arguments it takes, what the compiler checks about them, how
 * map_set_types lists its values, and the small function that evaluates
 * it. Adding a function is a row here and its eval (or test) function; the
 * compiler's "unknown function" message lists the rows.
 *
 * Every function yields a list of values (empty values never enter it).
 * Errors name the function and the source path, never the value.
 */
#include "map/map_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static int fn_if(struct map_env *env, const struct map_expr *e, struct map_vals *out)
{
	int t = map_expr_test(env, e->args[0]);
	if (t < 0)
		return -1;
	if (t)
		return map_expr_eval(env, e->args[1], out);
	return e->nargs > 2 ? map_expr_eval(env, e->args[2], out) : 0;
}

/* Every value of every argument, one after the other, each followed by sep
 * when sep is not 0, into *s (arena); *len 0 when there is none. */
static int join(struct map_env *env, const struct map_expr *e, char sep, char **s, size_t *len)
{
	/* the compiler takes at most MAP_MAX_ARGS arguments (parse_call) */
	struct map_vals parts[MAP_MAX_ARGS];
	_Static_assert(HB_ARRAY_LEN(parts) == MAP_MAX_ARGS, "one slot per argument");
	size_t total = 0;
	*len = 0;
	if (e->nargs > HB_ARRAY_LEN(parts))
		return map_eval_fail(env, 207, "internal error: too many arguments");
	for (size_t k = 0; k < e->nargs; k++) {
		if (map_eval_arg(env, e->args[k], &parts[k]))
			return -1;
		for (size_t i = 0; i < parts[k].n; i++)
			total += parts[k].v[i].len + 1;
	}
	if (total == 0)
		return 0;
	char *p = *s = map_arena_alloc(env->arena, total + 1);
	if (!p)
		return map_eval_oom(env);
	for (size_t k = 0; k < e->nargs; k++)
		for (size_t i = 0; i < parts[k].n; i++) {
			memcpy(p, parts[k].v[i].s, parts[k].v[i].len);
			p += parts[k].v[i].len;
			if (sep)
				*p++ = sep;
		}
	*p = '\0';
	*len = (size_t)(p - *s);
	return 0;
}

static int fn_concat(struct map_env *env, const struct map_expr *e, struct map_vals *out)
{
	char *s;
	size_t len;
	if (join(env, e, 0, &s, &len))
		return -1;
	return len ? map_eval_add(env, out, s, len, map_eval_origin(e)) : 0;
}

static int fn_uuid(struct map_env *env, const struct map_expr *e, struct map_vals *out)
{
	char *s;
	size_t len;
	if (join(env, e, 0x1f, &s, &len)) /* ("ab","c") and ("a","bc") differ */
		return -1;
	if (len == 0)
		return 0;
	char *u = map_arena_alloc(env->arena, 37);
	if (!u || map_uuid5(u, s, len))
		return map_eval_oom(env);
	return map_eval_add(env, out, u, 36, map_eval_origin(e));
}

/* Argument 1's values one by one through one (arg: its variant), which
 * appends what it makes of each to out. */
static int each_value(struct map_env *env, const struct map_expr *e, struct map_vals *out,
		      int (*one)(struct map_env *env, const struct map_expr *e,
				 const struct map_val *v, struct map_vals *out, int arg),
		      int arg)
{
	struct map_vals a;
	if (map_eval_arg(env, e->args[0], &a))
		return -1;
	for (size_t i = 0; i < a.n; i++)
		if (one(env, e, &a.v[i], out, arg))
			return -1;
	return 0;
}

/* dt: datetime(), else date() */
static int date_one(struct map_env *env, const struct map_expr *e, const struct map_val *v,
		    struct map_vals *out, int dt)
{
	char *o = map_arena_alloc(env->arena, 64);
	int n = o ? map_fmt_datetime(v->s, v->len, dt, o, 64) : -1;
	if (n < 0)
		return map_eval_fail(env, 102, "%s(): the value of %s is not an HL7 or ISO 8601 "
				     "date/time", e->fn->name, map_eval_origin(e->args[0]));
	return map_eval_add(env, out, o, (size_t)n, v->origin);
}

static int fn_datetime(struct map_env *env, const struct map_expr *e, struct map_vals *out)
{
	return each_value(env, e, out, date_one, 1);
}

static int fn_date(struct map_env *env, const struct map_expr *e, struct map_vals *out)
{
	return each_value(env, e, out, date_one, 0);
}

/* A table key: v cut to key's size (the longest key a table holds). */
static size_t table_key(const struct map_val *v, char key[static 128])
{
	size_t kl = v->len < 127 ? v->len : 127;
	memcpy(key, v->s, kl);
	return kl;
}

static int fn_lookup(struct map_env *env, const struct map_expr *e, struct map_vals *out)
{
	struct map_vals a, b;
	if (map_eval_arg(env, e->args[0], &a))
		return -1;
	if (a.n == 0 && e->nargs > 2)
		return map_expr_eval(env, e->args[2], out);
	for (size_t i = 0; i < a.n; i++) {
		char key[128];
		size_t kl = table_key(&a.v[i], key);
		const char *v = map_table_get(e->args[1]->table, key, kl);
		if (v) {
			if (map_eval_add(env, out, v, strlen(v), a.v[i].origin))
				return -1;
		} else if (e->nargs > 2) {
			if (map_eval_arg(env, e->args[2], &b))
				return -1;
			if (b.n && map_eval_add(env, out, b.v[0].s, b.v[0].len, b.v[0].origin))
				return -1;
		}
	}
	return 0;
}

static int codesystem_one(struct map_env *env, const struct map_expr *e,
			  const struct map_val *v, struct map_vals *out, int unused)
{
	char key[128];
	size_t kl = table_key(v, key);
	for (size_t k = 0; k < kl; k++)
		key[k] = (char)toupper((unsigned char)key[k]);
	const char *uri = map_table_get(e->table, key, kl);
	if (uri)
		return map_eval_add(env, out, uri, strlen(uri), v->origin);
	/* already a URI (FHIR): keep it */
	return memchr(v->s, ':', v->len) ? map_eval_add(env, out, v->s, v->len, v->origin) : 0;
}

static int fn_codesystem(struct map_env *env, const struct map_expr *e, struct map_vals *out)
{
	return each_value(env, e, out, codesystem_one, 0);
}

/* Every ASCII byte in upper (or lower) case; other bytes kept. */
static int case_one(struct map_env *env, const struct map_expr *e, const struct map_val *v,
		    struct map_vals *out, int upper)
{
	char *o = map_arena_strndup(env->arena, v->s, v->len);
	if (!o)
		return map_eval_oom(env);
	for (size_t k = 0; k < v->len; k++)
		o[k] = (char)(upper ? toupper((unsigned char)o[k]) : tolower((unsigned char)o[k]));
	return map_eval_add(env, out, o, v->len, v->origin);
}

static int fn_lower(struct map_env *env, const struct map_expr *e, struct map_vals *out)
{
	return each_value(env, e, out, case_one, 0);
}

static int fn_upper(struct map_env *env, const struct map_expr *e, struct map_vals *out)
{
	return each_value(env, e, out, case_one, 1);
}

static int trim_one(struct map_env *env, const struct map_expr *e, const struct map_val *v,
		    struct map_vals *out, int unused)
{
	const char *s = v->s;
	size_t n = v->len;
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return map_eval_add(env, out, s, n, v->origin);
}

static int fn_trim(struct map_env *env, const struct map_expr *e, struct map_vals *out)
{
	return each_value(env, e, out, trim_one, 0);
}

static int fn_replace(struct map_env *env, const struct map_expr *e, struct map_vals *out)
{
	struct map_vals a, b, c;
	if (map_eval_arg(env, e->args[0], &a) || map_eval_arg(env, e->args[1], &b) ||
	    map_eval_arg(env, e->args[2], &c))
		return -1;
	const char *from = b.n ? b.v[0].s : "", *to = c.n ? c.v[0].s : "";
	size_t fl = b.n ? b.v[0].len : 0, tl = c.n ? c.v[0].len : 0;
	for (size_t i = 0; i < a.n; i++) {
		const char *s = a.v[i].s;
		size_t n = a.v[i].len;
		if (fl == 0) {
			if (map_eval_add(env, out, s, n, a.v[i].origin))
				return -1;
			continue;
		}
		size_t cap = n + (n / fl + 1) * tl + 1, k = 0;
		char *o = map_arena_alloc(env->arena, cap);
		if (!o)
			return map_eval_oom(env);
		for (size_t j = 0; j < n;) {
			if (j + fl <= n && memcmp(s + j, from, fl) == 0) {
				memcpy(o + k, to, tl);
				k += tl;
				j += fl;
			} else {
				o[k++] = s[j++];
			}
		}
		o[k] = '\0';
		if (map_eval_add(env, out, o, k, a.v[i].origin))
			return -1;
	}
	return 0;
}

static int fn_split(struct map_env *env, const struct map_expr *e, struct map_vals *out)
{
	struct map_vals a, b;
	if (map_eval_arg(env, e->args[0], &a) || map_eval_arg(env, e->args[1], &b))
		return -1;
	for (size_t i = 0; i < a.n; i++) {
		const char *s = a.v[i].s, *end = s + a.v[i].len;
		if (!b.n) {
			if (map_eval_add(env, out, s, a.v[i].len, a.v[i].origin))
				return -1;
			continue;
		}
		while (s <= end) {
			const char *q = memmem(s, (size_t)(end - s), b.v[0].s, b.v[0].len);
			if (!q)
				q = end;
			char *piece = map_arena_strndup(env->arena, s, (size_t)(q - s));
			if (!piece || map_eval_add(env, out, piece, (size_t)(q - s), a.v[i].origin))
				return map_eval_oom(env);
			s = q + b.v[0].len;
		}
	}
	return 0;
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

static int refid_one(struct map_env *env, const struct map_expr *e, const struct map_val *v,
		     struct map_vals *out, int unused)
{
	size_t n = v->len;
	const char *id = ref_id(v->s, &n);
	char *o = map_arena_strndup(env->arena, id, n);
	if (!o)
		return map_eval_oom(env);
	return map_eval_add(env, out, o, n, v->origin);
}

static int fn_refid(struct map_env *env, const struct map_expr *e, struct map_vals *out)
{
	return each_value(env, e, out, refid_one, 0);
}

static int fn_exists(struct map_env *env, const struct map_expr *e)
{
	const struct map_expr *arg = e->args[0];
	if (arg->op == OP_PATH && env->ops->exists) {
		int r = env->ops->exists(env->scope, arg->src, env->arena, env->errstr,
					 env->errstr_size);
		if (r < 0)
			env->err_code = 102;
		return r;
	}
	struct map_vals a;
	if (map_eval_arg(env, arg, &a))
		return -1;
	return a.n > 0;
}

/* In the order the "unknown function" message lists them. */
static const struct map_func map_functions[] = {
	{ "datetime", 1, 1, .eval = fn_datetime },
	{ "date", 1, 1, .eval = fn_date },
	{ "lookup", 2, 3, .arg2_table = 1, .values = MFV_TABLE, .eval = fn_lookup },
	{ "codesystem", 1, 1, .needs_table = "codesystems", .eval = fn_codesystem },
	{ "lower", 1, 1, .values = MFV_LOWER, .eval = fn_lower },
	{ "upper", 1, 1, .values = MFV_UPPER, .eval = fn_upper },
	{ "trim", 1, 1, .eval = fn_trim },
	{ "replace", 3, 3, .eval = fn_replace },
	{ "split", 2, 2, .eval = fn_split },
	{ "concat", 1, MAP_MAX_ARGS, .eval = fn_concat },
	{ "uuid", 1, MAP_MAX_ARGS, .eval = fn_uuid },
	{ "if", 2, 3, .arg1_cond = 1, .values = MFV_BRANCHES, .eval = fn_if },
	{ "refid", 1, 1, .eval = fn_refid },
	{ "exists", 1, 1, .test = fn_exists },
};

const struct map_func *map_func_find(const char *name, size_t len)
{
	for (size_t k = 0; k < HB_ARRAY_LEN(map_functions); k++)
		if (strlen(map_functions[k].name) == len &&
		    memcmp(map_functions[k].name, name, len) == 0)
			return &map_functions[k];
	return NULL;
}

void map_func_names(char *buf, size_t size)
{
	size_t n = 0;
	buf[0] = '\0';
	for (size_t k = 0; k < HB_ARRAY_LEN(map_functions) && n < size; k++) {
		int w = snprintf(buf + n, size - n, "%s%s", k ? ", " : "", map_functions[k].name);
		if (w < 0)
			break;
		n += (size_t)w;
	}
}

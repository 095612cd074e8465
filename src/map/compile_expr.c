/* compile_expr — expressions of the mapping language: precedence
 * or < and < not < comparison (= != in) < ?? < + < value, checked for type
 * (a condition is not a value) as they are parsed. */
#include "map/compile_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* A string literal's value: \" \' \\ \n \t */
static char *unescape_lit(struct parser *P, const char *s, size_t len, size_t *outlen)
{
	char *o = map_palloc(P, len + 1);
	size_t k = 0;
	if (!o)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len) {
			i++;
			o[k++] = s[i] == 'n' ? '\n' : s[i] == 't' ? '\t' : s[i];
		} else {
			o[k++] = s[i];
		}
	}
	o[k] = '\0';
	*outlen = k;
	return o;
}

/* ---- expressions --------------------------------------------------------------- */

/* A value node at t with a copy of its n operands; NULL when out of memory. */
static struct map_expr *node(struct parser *P, enum map_op op, const struct map_token *t,
			     struct map_expr **args, size_t n)
{
	struct map_expr *e = map_palloc(P, sizeof(*e));
	if (!e || (n && !(e->args = map_palloc(P, n * sizeof(*args)))))
		return NULL;
	if (n)
		memcpy(e->args, args, n * sizeof(*args));
	e->nargs = n;
	e->op = op;
	e->type = ET_STRING;
	e->line = t->line;
	e->col = t->col;
	return e;
}

/* a op b, at a's position */
static struct map_expr *binary(struct parser *P, enum map_op op, const struct map_token *t,
			       struct map_expr *a, struct map_expr *b)
{
	struct map_expr *args[2] = { a, b };
	struct map_expr *e = node(P, op, t, args, 2);
	if (e) {
		e->line = a->line;
		e->col = a->col;
	}
	return e;
}

static int want(struct parser *P, const struct map_expr *e, enum map_etype type,
		const char *what)
{
	if (e->type == type)
		return 0;
	map_diag_add(P->d, P->file, P->text, P->len, e->line, e->col,
		     type == ET_BOOL ? "type mismatch: %s needs a condition, this is a value"
				     : "type mismatch: %s needs a value, this is a condition",
		     what);
	return -1;
}

static struct map_expr *parse_or(struct parser *P);

static struct map_expr *parse_path(struct parser *P, struct map_token *t)
{
	struct map_srcerr se = { 0 };
	if (P->header) {
		if (t->len == 4 && memcmp(t->p, "type", 4) == 0)
			return node(P, OP_TYPE, t, NULL, 0);
		const struct map_field *path[MAP_MAX_TARGET_DEPTH + 1];
		size_t depth;
		int append;
		if (map_resolve_target(P, t, &P->m->schema->root, path, &depth, &append, 1) == 1) {
			struct map_expr *e = node(P, OP_TREF, t, NULL, 0);
			const struct map_field **tr = e ? map_palloc(P, (depth + 1) * sizeof(*tr)) : NULL;
			if (!tr || !(e->text = map_pstr(P, t->p, t->len)))
				return NULL;
			memcpy(tr, path, depth * sizeof(*tr));
			e->tref = (const struct map_field *const *)tr;
			return e;
		}
	}
	void *h = P->m->ops->compile(t->p, t->len, &se);
	if (!h) {
		map_perr(P, t, se.column ? (int)se.column - 1 : 0, "bad %s path: %s", P->m->ops->name,
		     se.msg);
		return NULL;
	}
	if (map_pown(P, h))
		return NULL;
	if (!P->block && P->m->ops->is_relative(h)) {
		map_perr(P, t, 0, "the relative path '%.*s' is only allowed inside an each-block",
		     (int)t->len, t->p);
		return NULL;
	}
	struct map_expr *e = node(P, OP_PATH, t, NULL, 0);
	if (!e || !(e->text = map_pstr(P, t->p, t->len)))
		return NULL;
	e->src = h;
	return e;
}

static struct map_expr *parse_call(struct parser *P)
{
	struct map_token *name = cur(P);
	struct map_expr *args[MAP_MAX_ARGS];
	size_t n = 0;
	const struct map_func *f = map_func_find(name->p, name->len);

	if (!f) {
		char names[256];
		map_func_names(names, sizeof(names));
		map_perr(P, name, 0, "unknown function '%.*s' (functions: %s)", (int)name->len,
			 name->p, names);
		return NULL;
	}
	P->i += 2; /* name ( */
	P->paren++;
	map_skip_cont(P);
	while (!is_op(cur(P), ")")) {
		if (n == MAP_MAX_ARGS) {
			map_perr(P, cur(P), 0, "too many arguments");
			return NULL;
		}
		/* lookup's second argument names a table */
		if (f->arg2_table && n == 1 && cur(P)->kind == T_WORD) {
			struct map_token *t = cur(P);
			const struct map_table *tb = map_find_table(P, t->p, t->len);
			if (!tb) {
				map_perr(P, t, 0, "unknown table '%.*s'", (int)t->len, t->p);
				return NULL;
			}
			if (!(args[n] = node(P, OP_TABLE, t, NULL, 0)))
				return NULL;
			args[n]->type = ET_TABLE;
			args[n]->table = tb;
			n++;
			P->i++;
		} else {
			if (!(args[n++] = parse_or(P)))
				return NULL;
		}
		map_skip_cont(P);
		if (is_op(cur(P), ",")) {
			P->i++;
			map_skip_cont(P);
			continue;
		}
		if (!is_op(cur(P), ")")) {
			map_perr(P, cur(P), 0, "expected ',' or ')' in the arguments of %.*s()",
			     (int)name->len, name->p);
			return NULL;
		}
	}
	P->i++;
	P->paren--;
	/* a condition function (exists) keeps its shorter messages */
	if ((int)n < f->min || (int)n > f->max) {
		if (f->test)
			map_perr(P, name, 0, "%s() takes %d argument%s", f->name, f->min,
				 f->min == 1 ? "" : "s");
		else if (f->min == f->max)
			map_perr(P, name, 0, "%s() takes %d argument%s, not %zu", f->name, f->min,
				 f->min == 1 ? "" : "s", n);
		else
			map_perr(P, name, 0, "%s() takes %d to %d arguments, not %zu", f->name,
				 f->min, f->max, n);
		return NULL;
	}
	struct map_expr *e = node(P, OP_CALL, name, args, n);
	if (!e)
		return NULL;
	e->fn = f;
	e->type = f->test ? ET_BOOL : ET_STRING;
	for (size_t k = 0; k < n; k++) {
		char what[64];
		if (f->test)
			snprintf(what, sizeof(what), "%s()", f->name);
		else
			snprintf(what, sizeof(what), "argument %zu of %s()", k + 1, f->name);
		if (f->arg2_table && k == 1) {
			if (args[k]->type != ET_TABLE) {
				map_perr(P, name, 0, "%s() needs a table name as its second argument",
					 f->name);
				return NULL;
			}
			continue;
		}
		if (want(P, args[k], f->arg1_cond && k == 0 ? ET_BOOL : ET_STRING, what))
			return NULL;
	}
	if (f->needs_table) {
		e->table = map_find_table(P, f->needs_table, strlen(f->needs_table));
		if (!e->table) {
			map_perr(P, name, 0, "%s() needs the table '%s': add 'use tables/%s.tbl'",
				 f->name, f->needs_table, f->needs_table);
			return NULL;
		}
	}
	return e;
}

static struct map_expr *parse_primary(struct parser *P)
{
	struct map_token *t = cur(P);
	struct map_expr *e;
	switch (t->kind) {
	case T_STR:
	case T_NUM:
		if (!(e = node(P, OP_LIT, t, NULL, 0)))
			return NULL;
		if (t->kind == T_STR)
			e->str = unescape_lit(P, t->p, t->len, &e->len);
		else
			e->str = map_pstr(P, t->p, e->len = t->len);
		if (!e->str)
			return NULL;
		e->text = e->str;
		P->i++;
		return e;
	case T_FUNC:
		return parse_call(P);
	case T_WORD:
		if (map_tok_is(t, "and") || map_tok_is(t, "or") || map_tok_is(t, "in") ||
		    map_tok_is(t, "required") || map_tok_is(t, "each")) {
			map_perr(P, t, 0, "expected a value, found '%.*s'", (int)t->len, t->p);
			return NULL;
		}
		P->i++;
		return parse_path(P, t);
	case T_OP:
		if (is_op(t, "(")) {
			P->i++;
			P->paren++;
			map_skip_cont(P);
			e = parse_or(P);
			if (!e)
				return NULL;
			map_skip_cont(P);
			if (!is_op(cur(P), ")")) {
				map_perr(P, cur(P), 0, "expected ')'");
				return NULL;
			}
			P->i++;
			P->paren--;
			return e;
		}
		break;
	default:
		break;
	}
	map_perr(P, t, 0, t->kind == T_NL || t->kind == T_EOF ? "expected a value at the end of the line"
							   : "expected a value");
	return NULL;
}

static struct map_expr *parse_concat(struct parser *P)
{
	struct map_expr *a = parse_primary(P);
	while (a) {
		map_skip_cont(P);
		struct map_token *t = cur(P);
		if (!is_op(t, "+"))
			break;
		P->i++;
		map_skip_cont(P);
		struct map_expr *b = parse_primary(P);
		if (!b || want(P, a, ET_STRING, "'+'") || want(P, b, ET_STRING, "'+'"))
			return NULL;
		a = binary(P, OP_CONCAT, t, a, b);
	}
	return a;
}

static struct map_expr *parse_coalesce(struct parser *P)
{
	struct map_expr *a = parse_concat(P);
	while (a) {
		map_skip_cont(P);
		struct map_token *t = cur(P);
		if (!is_op(t, "??"))
			break;
		P->i++;
		map_skip_cont(P);
		struct map_expr *b = parse_concat(P);
		if (!b || want(P, a, ET_STRING, "'?\?'") || want(P, b, ET_STRING, "'?\?'"))
			return NULL;
		a = binary(P, OP_COALESCE, t, a, b);
	}
	return a;
}

static struct map_expr *parse_cmp(struct parser *P)
{
	struct map_expr *a = parse_coalesce(P);
	if (!a)
		return NULL;
	struct map_token *t = cur(P);
	if (is_op(t, "=") || is_op(t, "!=")) {
		P->i++;
		struct map_expr *b = parse_coalesce(P);
		if (!b || want(P, a, ET_STRING, "a comparison") || want(P, b, ET_STRING, "a comparison"))
			return NULL;
		if (!(a = binary(P, is_op(t, "=") ? OP_EQ : OP_NE, t, a, b)))
			return NULL;
		a->type = ET_BOOL;
	} else if (map_tok_is(t, "in")) {
		struct map_expr *args[MAP_MAX_ARGS + 1];
		size_t n = 0;
		args[n++] = a;
		if (want(P, a, ET_STRING, "'in'"))
			return NULL;
		P->i++;
		if (!is_op(cur(P), "(")) {
			map_perr(P, cur(P), 0, "expected '(' after 'in'");
			return NULL;
		}
		P->i++;
		P->paren++;
		map_skip_cont(P);
		while (1) {
			if (n > MAP_MAX_ARGS) {
				map_perr(P, cur(P), 0, "too many values in 'in (…)' (limit %d)",
				     MAP_MAX_ARGS);
				return NULL;
			}
			struct map_expr *v = parse_coalesce(P);
			if (!v || want(P, v, ET_STRING, "'in'"))
				return NULL;
			args[n++] = v;
			map_skip_cont(P);
			if (is_op(cur(P), ",")) {
				P->i++;
				map_skip_cont(P);
				continue;
			}
			if (is_op(cur(P), ")"))
				break;
			map_perr(P, cur(P), 0, "expected ',' or ')' in 'in (…)'");
			return NULL;
		}
		P->i++;
		P->paren--;
		struct map_expr *e = node(P, OP_IN, t, args, n);
		if (!e)
			return NULL;
		e->line = a->line;
		e->col = a->col;
		e->type = ET_BOOL;
		a = e;
	}
	return a;
}

static struct map_expr *parse_not(struct parser *P)
{
	struct map_token *t = cur(P);
	if (map_tok_is(t, "not")) {
		P->i++;
		struct map_expr *a = parse_not(P);
		if (!a || want(P, a, ET_BOOL, "'not'"))
			return NULL;
		struct map_expr *e = node(P, OP_NOT, t, &a, 1);
		if (e)
			e->type = ET_BOOL;
		return e;
	}
	return parse_cmp(P);
}

static struct map_expr *parse_bool(struct parser *P, int is_and)
{
	struct map_expr *a = is_and ? parse_not(P) : parse_bool(P, 1);
	while (a) {
		map_skip_cont(P);
		struct map_token *t = cur(P);
		if (!map_tok_is(t, is_and ? "and" : "or"))
			break;
		P->i++;
		map_skip_cont(P);
		struct map_expr *b = is_and ? parse_not(P) : parse_bool(P, 1);
		if (!b || want(P, a, ET_BOOL, is_and ? "'and'" : "'or'") ||
		    want(P, b, ET_BOOL, is_and ? "'and'" : "'or'"))
			return NULL;
		if ((a = binary(P, is_and ? OP_AND : OP_OR, t, a, b)))
			a->type = ET_BOOL;
	}
	return a;
}

static struct map_expr *parse_or(struct parser *P) { return parse_bool(P, 0); }

struct map_expr *map_parse_expr(struct parser *P) { return parse_or(P); }

/* An expression that must end its line. */
struct map_expr *map_parse_line_expr(struct parser *P, enum map_etype type, const char *what)
{
	struct map_expr *e = parse_or(P);
	if (!e || want(P, e, type, what))
		return NULL;
	return e;
}

int map_end_of_line(struct parser *P)
{
	struct map_token *t = cur(P);
	if (t->kind == T_NL || t->kind == T_EOF || (P->block && is_op(t, "}"))) {
		if (t->kind == T_NL)
			P->i++;
		return 0;
	}
	return map_perr(P, t, 0, "unexpected '%.*s' after the expression", (int)(t->len ? t->len : 1),
		    t->p);
}


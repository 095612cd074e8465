/* compile — a mapping file into a checked, ready-to-run mapping.
 *
 * Two passes over the tokens: the first reads the lines that give context
 * (`source`, `event`, tables and `use`), so a rule may name a table defined at
 * the end of the file; the second compiles the header expressions and the
 * rules against the event schema. The first error in a file is reported as
 * file:line:col with the line and a caret; other files still get checked.
 */
#include "map/map_int.h"
#include "map/lex.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util.h"

#define MAP_MAX_RULES 512
#define MAP_MAX_ARGS 16
#define MAP_MAX_TABLES 64
#define MAP_MAX_TARGET_DEPTH 8

struct parser {
	struct map_set *set;
	struct map_mapping *m;
	const char *file, *text;
	size_t len;
	const char *root_dir;
	struct map_diag *d;
	struct map_token *t;
	size_t n, i;
	int paren;          /* inside (…): newlines do not end the statement */
	int block;          /* inside each { … }: relative paths allowed */
	int header;         /* topic/key: names of targets and `type` are references */
	EVP_MD_CTX *hash;
};

static int perr(struct parser *P, const struct map_token *t, int coloff, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int perr(struct parser *P, const struct map_token *t, int coloff, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	map_diag_add(P->d, P->file, P->text, P->len, t ? t->line : 0, t ? t->col + coloff : 0,
		     "%s", msg);
	return -1;
}

static struct map_token *cur(struct parser *P) { return &P->t[P->i]; }
static int is_op(const struct map_token *t, const char *op)
{
	return t->kind == T_OP && t->len == strlen(op) && memcmp(t->p, op, t->len) == 0;
}

/* Continuation: a newline does not end an expression when the next line
 * starts with a binary operator, or inside parentheses. */
static int cont_op(const struct map_token *t)
{
	return is_op(t, "??") || is_op(t, "+") || map_tok_is(t, "and") || map_tok_is(t, "or");
}
static void skip_cont(struct parser *P)
{
	size_t j = P->i;
	while (P->t[j].kind == T_NL)
		j++;
	if (j != P->i && (P->paren > 0 || cont_op(&P->t[j])))
		P->i = j;
}
static void skip_nl(struct parser *P)
{
	while (cur(P)->kind == T_NL)
		P->i++;
}

static char *pstr(struct parser *P, const char *s, size_t len)
{
	return map_pool_strndup(P->set->pool, s, len);
}

/* A string literal's value: \" \' \\ \n \t */
static char *unescape_lit(struct parser *P, const char *s, size_t len, size_t *outlen)
{
	char *o = map_pool_alloc(P->set->pool, len + 1);
	size_t k = 0;
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

/* Source text spanning continuation lines, with each run of white space
 * collapsed to one blank: what a reject reason quotes. */
static char *one_line(struct parser *P, const char *s, size_t len)
{
	char *o = map_pool_alloc(P->set->pool, len + 1);
	size_t k = 0;
	for (size_t i = 0; i < len; i++) {
		if (isspace((unsigned char)s[i])) {
			if (k && o[k - 1] != ' ')
				o[k++] = ' ';
			continue;
		}
		o[k++] = s[i];
	}
	while (k && o[k - 1] == ' ')
		k--;
	o[k] = '\0';
	return o;
}

/* ---- tables ----------------------------------------------------------------- */

static const struct map_table *find_table(struct parser *P, const char *name, size_t len)
{
	for (size_t i = 0; i < P->m->nused; i++)
		if (strlen(P->m->used[i]->name) == len && memcmp(P->m->used[i]->name, name, len) == 0)
			return P->m->used[i];
	return NULL;
}

const char *map_table_get(const struct map_table *t, const char *key, size_t len)
{
	for (size_t i = 0; i < t->n; i++)
		if (strlen(t->keys[i]) == len && memcmp(t->keys[i], key, len) == 0)
			return t->vals[i];
	return NULL;
}

/* Read `table NAME` … `end` at P->i (on `table`); add it to *list. */
static int parse_table(struct parser *P, struct map_table **list, size_t *n, size_t cap)
{
	struct map_token *kw = cur(P), *name = &P->t[P->i + 1];
	if (name->kind != T_WORD || P->t[P->i + 2].kind != T_NL)
		return perr(P, name, 0, "expected 'table NAME' on a line of its own");
	if (*n >= cap)
		return perr(P, kw, 0, "too many tables (limit %zu)", cap);
	struct map_table *t = map_pool_alloc(P->set->pool, sizeof(*t));
	t->name = pstr(P, name->p, name->len);
	P->i += 3;
	size_t cnt = 0;
	for (size_t j = P->i; P->t[j].kind == T_ENTRY || P->t[j].kind == T_NL; j++)
		cnt += P->t[j].kind == T_ENTRY;
	t->keys = map_pool_alloc(P->set->pool, (cnt + 1) * sizeof(char *));
	t->vals = map_pool_alloc(P->set->pool, (cnt + 1) * sizeof(char *));
	while (cur(P)->kind == T_ENTRY || cur(P)->kind == T_NL) {
		struct map_token *e = cur(P);
		P->i++;
		if (e->kind != T_ENTRY)
			continue;
		if (map_table_get(t, e->p, e->len))
			return perr(P, e, 0, "duplicate key in table '%s'", t->name);
		t->keys[t->n] = pstr(P, e->p, e->len);
		t->vals[t->n] = pstr(P, e->p2, e->len2);
		t->n++;
	}
	if (!map_tok_is(cur(P), "end"))
		return perr(P, cur(P), 0, "table '%s' is not closed with 'end'", t->name);
	P->i++;
	for (size_t k = 0; k < *n; k++)
		if (strcmp(list[k]->name, t->name) == 0)
			return perr(P, name, 0, "table '%s' is defined twice", t->name);
	list[(*n)++] = t;
	return 0;
}

/* `use tables/x.tbl`: load (once per set) and bring its tables into scope. */
static int use_file(struct parser *P, const struct map_token *raw)
{
	char path[4096], rel[1024], err[256];
	if (raw->len == 0 || raw->len >= sizeof(rel))
		return perr(P, raw, 0, "expected 'use FILE'");
	memcpy(rel, raw->p, raw->len);
	rel[raw->len] = '\0';
	if (rel[0] == '/' || strstr(rel, ".."))
		return perr(P, raw, 0, "'use' takes a path inside the mappings folder");
	snprintf(path, sizeof(path), "%s/%s", P->root_dir, rel);

	struct map_set *S = P->set;
	struct map_tfile *tf = NULL;
	for (size_t f = 0; f < S->ntfiles; f++)
		if (strcmp(S->tfiles[f].rel, rel) == 0)
			tf = &S->tfiles[f];
	if (!tf) {
		size_t len;
		char *text = util_read_file(path, MAP_MAX_FILE_SIZE, &len, err, sizeof(err));
		if (!text)
			return perr(P, raw, 0, "cannot read table file '%s'", rel);
		if (S->ntfiles >= MAP_MAX_TABLE_FILES)
			return perr(P, raw, 0, "too many table files (limit %d)",
				    MAP_MAX_TABLE_FILES);
		struct map_lexed lx;
		struct parser T = *P;
		T.file = pstr(P, path, strlen(path));
		T.text = pstr(P, text, len);
		T.len = len;
		free(text);
		if (map_lex(T.text, T.len, &lx) != 0) {
			map_diag_add(P->d, T.file, T.text, T.len, lx.err_line, lx.err_col, "%s",
				     lx.err);
			free(lx.v);
			return -1;
		}
		T.t = lx.v;
		T.n = lx.n;
		T.i = 0;
		size_t first = S->ntables;
		while (1) {
			skip_nl(&T);
			if (cur(&T)->kind == T_EOF)
				break;
			if (!map_tok_is(cur(&T), "table")) {
				perr(&T, cur(&T), 0, "a table file holds only 'table NAME' … 'end' blocks");
				free(lx.v);
				return -1;
			}
			if (parse_table(&T, S->tables, &S->ntables, MAP_MAX_SHARED_TABLES) != 0) {
				free(lx.v);
				return -1;
			}
		}
		free(lx.v);
		tf = &S->tfiles[S->ntfiles++];
		tf->rel = pstr(P, rel, strlen(rel));
		tf->text = T.text;
		tf->len = T.len;
		tf->first = first;
		tf->count = S->ntables - first;
	}
	EVP_DigestUpdate(P->hash, tf->text, tf->len);
	size_t first = tf->first, count = tf->count;
	for (size_t k = 0; k < count; k++) {
		if (P->m->nused >= MAP_MAX_TABLES)
			return perr(P, raw, 0, "too many tables (limit %d)", MAP_MAX_TABLES);
		P->m->used[P->m->nused++] = S->tables[first + k];
	}
	return 0;
}

/* ---- expressions --------------------------------------------------------------- */

static const struct {
	const char *name;
	enum map_fn fn;
	int min, max;
} functions[] = {
	{ "datetime", FN_DATETIME, 1, 1 }, { "date", FN_DATE, 1, 1 },
	{ "lookup", FN_LOOKUP, 2, 3 },     { "codesystem", FN_CODESYSTEM, 1, 1 },
	{ "lower", FN_LOWER, 1, 1 },       { "upper", FN_UPPER, 1, 1 },
	{ "trim", FN_TRIM, 1, 1 },         { "replace", FN_REPLACE, 3, 3 },
	{ "split", FN_SPLIT, 2, 2 },       { "concat", FN_CONCAT, 1, MAP_MAX_ARGS },
	{ "uuid", FN_UUID, 1, MAP_MAX_ARGS }, { "if", FN_IF, 2, 3 },
};

#define FUNCTION_LIST "datetime, date, lookup, codesystem, lower, upper, trim, replace, " \
		      "split, concat, uuid, if, exists"

static struct map_expr *node(struct parser *P, enum map_op op, const struct map_token *t)
{
	struct map_expr *e = map_pool_alloc(P->set->pool, sizeof(*e));
	e->op = op;
	e->type = ET_STRING;
	e->line = t->line;
	e->col = t->col;
	return e;
}

static int add_args(struct parser *P, struct map_expr *e, struct map_expr **args, size_t n)
{
	e->args = map_pool_alloc(P->set->pool, (n ? n : 1) * sizeof(*args));
	memcpy(e->args, args, n * sizeof(*args));
	e->nargs = n;
	return 0;
}

static struct map_expr *binary(struct parser *P, enum map_op op, const struct map_token *t,
			       struct map_expr *a, struct map_expr *b)
{
	struct map_expr *e = node(P, op, t);
	struct map_expr *args[2] = { a, b };
	e->line = a->line;
	e->col = a->col;
	add_args(P, e, args, 2);
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
static int resolve_target(struct parser *P, const struct map_token *t,
			  const struct map_field *root, const struct map_field **path,
			  size_t *depth, int *append, int for_ref);

static struct map_expr *parse_path(struct parser *P, struct map_token *t)
{
	struct map_srcerr se = { 0 };
	if (P->header) {
		if (t->len == 4 && memcmp(t->p, "type", 4) == 0)
			return node(P, OP_TYPE, t);
		const struct map_field *path[MAP_MAX_TARGET_DEPTH + 1];
		size_t depth;
		int append;
		if (resolve_target(P, t, &P->m->schema->root, path, &depth, &append, 1) == 1) {
			struct map_expr *e = node(P, OP_TREF, t);
			const struct map_field **tr =
				map_pool_alloc(P->set->pool, (depth + 1) * sizeof(*tr));
			memcpy(tr, path, depth * sizeof(*tr));
			e->tref = (const struct map_field *const *)tr;
			e->text = pstr(P, t->p, t->len);
			return e;
		}
	}
	void *h = P->m->ops->compile(t->p, t->len, &se);
	if (!h) {
		perr(P, t, se.column ? (int)se.column - 1 : 0, "bad %s path: %s", P->m->ops->name,
		     se.msg);
		return NULL;
	}
	map_pool_own_handle(P->set->pool, P->m->ops, h);
	if (!P->block && P->m->ops->is_relative(h)) {
		perr(P, t, 0, "the relative path '%.*s' is only allowed inside an each-block",
		     (int)t->len, t->p);
		return NULL;
	}
	struct map_expr *e = node(P, OP_PATH, t);
	e->src = h;
	e->text = pstr(P, t->p, t->len);
	return e;
}

static struct map_expr *parse_call(struct parser *P)
{
	struct map_token *name = cur(P);
	struct map_expr *args[MAP_MAX_ARGS];
	size_t n = 0;
	int fi = -1, is_exists = name->len == 6 && memcmp(name->p, "exists", 6) == 0;

	for (size_t k = 0; k < HB_ARRAY_LEN(functions); k++)
		if (strlen(functions[k].name) == name->len &&
		    memcmp(functions[k].name, name->p, name->len) == 0)
			fi = (int)k;
	if (fi < 0 && !is_exists) {
		perr(P, name, 0, "unknown function '%.*s' (functions: " FUNCTION_LIST ")",
		     (int)name->len, name->p);
		return NULL;
	}
	P->i += 2; /* name ( */
	P->paren++;
	skip_cont(P);
	while (!is_op(cur(P), ")")) {
		if (n == MAP_MAX_ARGS) {
			perr(P, cur(P), 0, "too many arguments");
			return NULL;
		}
		/* lookup's second argument names a table */
		if (fi >= 0 && functions[fi].fn == FN_LOOKUP && n == 1 && cur(P)->kind == T_WORD) {
			struct map_token *t = cur(P);
			const struct map_table *tb = find_table(P, t->p, t->len);
			if (!tb) {
				perr(P, t, 0, "unknown table '%.*s'", (int)t->len, t->p);
				return NULL;
			}
			args[n] = node(P, OP_TABLE, t);
			args[n]->type = ET_TABLE;
			args[n]->table = tb;
			n++;
			P->i++;
		} else {
			if (!(args[n++] = parse_or(P)))
				return NULL;
		}
		skip_cont(P);
		if (is_op(cur(P), ",")) {
			P->i++;
			skip_cont(P);
			continue;
		}
		if (!is_op(cur(P), ")")) {
			perr(P, cur(P), 0, "expected ',' or ')' in the arguments of %.*s()",
			     (int)name->len, name->p);
			return NULL;
		}
	}
	P->i++;
	P->paren--;
	if (is_exists) {
		if (n != 1) {
			perr(P, name, 0, "exists() takes 1 argument");
			return NULL;
		}
		struct map_expr *e = node(P, OP_EXISTS, name);
		e->type = ET_BOOL;
		add_args(P, e, args, n);
		return want(P, args[0], ET_STRING, "exists()") ? NULL : e;
	}
	if ((int)n < functions[fi].min || (int)n > functions[fi].max) {
		if (functions[fi].min == functions[fi].max)
			perr(P, name, 0, "%s() takes %d argument%s, not %zu", functions[fi].name,
			     functions[fi].min, functions[fi].min == 1 ? "" : "s", n);
		else
			perr(P, name, 0, "%s() takes %d to %d arguments, not %zu",
			     functions[fi].name, functions[fi].min, functions[fi].max, n);
		return NULL;
	}
	struct map_expr *e = node(P, OP_CALL, name);
	e->fn = functions[fi].fn;
	add_args(P, e, args, n);
	for (size_t k = 0; k < n; k++) {
		char what[64];
		snprintf(what, sizeof(what), "argument %zu of %s()", k + 1, functions[fi].name);
		if (e->fn == FN_LOOKUP && k == 1) {
			if (args[k]->type != ET_TABLE) {
				perr(P, name, 0, "lookup() needs a table name as its second argument");
				return NULL;
			}
			continue;
		}
		if (want(P, args[k], e->fn == FN_IF && k == 0 ? ET_BOOL : ET_STRING, what))
			return NULL;
	}
	if (e->fn == FN_CODESYSTEM) {
		e->table = find_table(P, "codesystems", 11);
		if (!e->table) {
			perr(P, name, 0, "codesystem() needs the table 'codesystems': add "
				       "'use tables/codesystems.tbl'");
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
		e = node(P, OP_LIT, t);
		if (t->kind == T_STR)
			e->str = unescape_lit(P, t->p, t->len, &e->len);
		else
			e->str = pstr(P, t->p, e->len = t->len);
		e->text = e->str;
		P->i++;
		return e;
	case T_FUNC:
		return parse_call(P);
	case T_WORD:
		if (map_tok_is(t, "and") || map_tok_is(t, "or") || map_tok_is(t, "in") ||
		    map_tok_is(t, "required") || map_tok_is(t, "each")) {
			perr(P, t, 0, "expected a value, found '%.*s'", (int)t->len, t->p);
			return NULL;
		}
		P->i++;
		return parse_path(P, t);
	case T_OP:
		if (is_op(t, "(")) {
			P->i++;
			P->paren++;
			skip_cont(P);
			e = parse_or(P);
			if (!e)
				return NULL;
			skip_cont(P);
			if (!is_op(cur(P), ")")) {
				perr(P, cur(P), 0, "expected ')'");
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
	perr(P, t, 0, t->kind == T_NL || t->kind == T_EOF ? "expected a value at the end of the line"
							   : "expected a value");
	return NULL;
}

static struct map_expr *parse_concat(struct parser *P)
{
	struct map_expr *a = parse_primary(P);
	while (a) {
		skip_cont(P);
		struct map_token *t = cur(P);
		if (!is_op(t, "+"))
			break;
		P->i++;
		skip_nl(P);
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
		skip_cont(P);
		struct map_token *t = cur(P);
		if (!is_op(t, "??"))
			break;
		P->i++;
		skip_nl(P);
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
		a = binary(P, is_op(t, "=") ? OP_EQ : OP_NE, t, a, b);
		a->type = ET_BOOL;
	} else if (map_tok_is(t, "in")) {
		struct map_expr *args[MAP_MAX_ARGS + 1];
		size_t n = 0;
		args[n++] = a;
		if (want(P, a, ET_STRING, "'in'"))
			return NULL;
		P->i++;
		if (!is_op(cur(P), "(")) {
			perr(P, cur(P), 0, "expected '(' after 'in'");
			return NULL;
		}
		P->i++;
		P->paren++;
		skip_cont(P);
		while (1) {
			if (n > MAP_MAX_ARGS) {
				perr(P, cur(P), 0, "too many values in 'in (…)' (limit %d)",
				     MAP_MAX_ARGS);
				return NULL;
			}
			struct map_expr *v = parse_coalesce(P);
			if (!v || want(P, v, ET_STRING, "'in'"))
				return NULL;
			args[n++] = v;
			skip_cont(P);
			if (is_op(cur(P), ",")) {
				P->i++;
				skip_cont(P);
				continue;
			}
			if (is_op(cur(P), ")"))
				break;
			perr(P, cur(P), 0, "expected ',' or ')' in 'in (…)'");
			return NULL;
		}
		P->i++;
		P->paren--;
		struct map_expr *e = node(P, OP_IN, t);
		e->line = a->line;
		e->col = a->col;
		e->type = ET_BOOL;
		add_args(P, e, args, n);
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
		struct map_expr *e = node(P, OP_NOT, t);
		e->type = ET_BOOL;
		add_args(P, e, &a, 1);
		return e;
	}
	return parse_cmp(P);
}

static struct map_expr *parse_bool(struct parser *P, int is_and)
{
	struct map_expr *a = is_and ? parse_not(P) : parse_bool(P, 1);
	while (a) {
		skip_cont(P);
		struct map_token *t = cur(P);
		if (!map_tok_is(t, is_and ? "and" : "or"))
			break;
		P->i++;
		skip_nl(P);
		struct map_expr *b = is_and ? parse_not(P) : parse_bool(P, 1);
		if (!b || want(P, a, ET_BOOL, is_and ? "'and'" : "'or'") ||
		    want(P, b, ET_BOOL, is_and ? "'and'" : "'or'"))
			return NULL;
		a = binary(P, is_and ? OP_AND : OP_OR, t, a, b);
		a->type = ET_BOOL;
	}
	return a;
}

static struct map_expr *parse_or(struct parser *P) { return parse_bool(P, 0); }

/* An expression that must end its line. */
static struct map_expr *parse_line_expr(struct parser *P, enum map_etype type, const char *what)
{
	struct map_expr *e = parse_or(P);
	if (!e || want(P, e, type, what))
		return NULL;
	return e;
}

static int end_of_line(struct parser *P)
{
	struct map_token *t = cur(P);
	if (t->kind == T_NL || t->kind == T_EOF || (P->block && is_op(t, "}"))) {
		if (t->kind == T_NL)
			P->i++;
		return 0;
	}
	return perr(P, t, 0, "unexpected '%.*s' after the expression", (int)(t->len ? t->len : 1),
		    t->p);
}

/* ---- targets and rules ------------------------------------------------------------ */

static const char *ftype_name(const struct map_field *f)
{
	if (f->type == MF_RECORD)
		return "a record";
	if (f->type == MF_ARRAY)
		return f->item == MF_RECORD ? "an array of records" : "an array of strings";
	return "a string";
}

/* Resolve `a.b.c` or `a.b[]` from root. Returns 1 when resolved; for_ref:
 * 0 silently if not a string field (then the word is a source path), else
 * -1 with a diagnostic. */
static int resolve_target(struct parser *P, const struct map_token *t,
			  const struct map_field *root, const struct map_field **path,
			  size_t *depth, int *append, int for_ref)
{
	const char *s = t->p, *end = t->p + t->len;
	const struct map_field *rec = root, *f = NULL;
	*depth = 0;
	*append = 0;
	if (t->len >= 2 && end[-2] == '[' && end[-1] == ']') {
		*append = 1;
		end -= 2;
	}
	while (s < end) {
		const char *dot = memchr(s, '.', (size_t)(end - s));
		const char *e = dot ? dot : end;
		int off = (int)(s - t->p);
		for (const char *q = s; q < e; q++)
			if (!isalnum((unsigned char)*q) && *q != '_') {
				if (for_ref)
					return 0;
				return perr(P, t, (int)(q - t->p), "a target is a field name like "
					    "data.patientId, not a path");
			}
		if (rec == NULL || (f && f->type == MF_ARRAY)) {
			if (for_ref)
				return 0;
			return perr(P, t, off, "'%.*s' is %s; %s", (int)(s - 1 - t->p), t->p,
				    ftype_name(f), f->type == MF_ARRAY ?
				    "build its items with 'each PATH { … }'" : "it has no fields");
		}
		f = map_field_find(rec, s, (size_t)(e - s));
		if (!f) {
			if (for_ref)
				return 0;
			const char *hint = NULL;
			for (size_t k = 0; k < rec->nfields; k++)
				if (strlen(rec->fields[k].name) == (size_t)(e - s) &&
				    strncasecmp(rec->fields[k].name, s, (size_t)(e - s)) == 0)
					hint = rec->fields[k].name;
			if (hint)
				return perr(P, t, off, "unknown target field '%.*s' in %s "
					    "(did you mean '%s'?)", (int)(e - t->p), t->p,
					    P->m->schema->fullname, hint);
			return perr(P, t, off, "unknown target field '%.*s' in %s", (int)(e - t->p),
				    t->p, P->m->schema->fullname);
		}
		if (f->automatic && rec == &P->m->schema->root) {
			if (for_ref)
				return 0;
			return perr(P, t, off, "'%s' is set by the bridge; it cannot be a target",
				    f->name);
		}
		if (*depth >= MAP_MAX_TARGET_DEPTH)
			return for_ref ? 0 : perr(P, t, off, "target nests too deep");
		path[(*depth)++] = f;
		rec = f->type == MF_RECORD ? f : NULL;
		s = dot ? dot + 1 : end;
	}
	if (!f)
		return for_ref ? 0 : perr(P, t, 0, "expected a target field");
	if (for_ref)
		return f->type == MF_STRING && !*append ? 1 : 0;
	return 1;
}

struct rule_list {
	struct map_rule *v;
	size_t n, cap;
};

static int same_path(const struct map_rule *r, const struct map_field **path, size_t depth)
{
	return r->depth == depth && memcmp(r->path, path, depth * sizeof(*path)) == 0;
}

static int parse_rules_block(struct parser *P, const struct map_field *rec, struct rule_list *out);

static int parse_rule(struct parser *P, const struct map_field *root, struct rule_list *rl)
{
	struct map_token *t = cur(P);
	const struct map_field *path[MAP_MAX_TARGET_DEPTH + 1];
	size_t depth;
	int append;
	struct map_rule r = { 0 };

	if (t->kind != T_WORD)
		return perr(P, t, 0, "expected a rule 'target = expression'%s",
			    P->block ? "" : " or a header line (mapping, source, when, each, "
					    "event, type, topic, key, use, table)");
	if (resolve_target(P, t, root, path, &depth, &append, 0) != 1)
		return -1;
	const struct map_field *leaf = path[depth - 1];
	P->i++;
	if (!is_op(cur(P), "="))
		return perr(P, cur(P), 0, "expected '=' after the target");
	P->i++;
	r.line = t->line;
	r.col = t->col;
	r.target = pstr(P, t->p, t->len);
	r.depth = depth;
	r.path = map_pool_alloc(P->set->pool, depth * sizeof(*path));
	memcpy(r.path, path, depth * sizeof(*path));
	r.append = append;

	if (map_tok_is(cur(P), "each")) {
		struct map_token *pt = &P->t[P->i + 1];
		struct map_srcerr se = { 0 };
		if (leaf->type != MF_ARRAY || leaf->item != MF_RECORD)
			return perr(P, t, 0, "type mismatch: '%.*s' is %s; an each-block builds "
				    "arrays of records", (int)(t->len - (append ? 2 : 0)), t->p,
				    ftype_name(leaf));
		if (!append)
			return perr(P, t, (int)t->len, "write '%.*s[] = each …' to build the array",
				    (int)t->len, t->p);
		if (pt->kind != T_WORD)
			return perr(P, pt, 0, "expected a path after 'each'");
		r.each = P->m->ops->compile(pt->p, pt->len, &se);
		if (!r.each)
			return perr(P, pt, se.column ? (int)se.column - 1 : 0, "bad %s path: %s",
				    P->m->ops->name, se.msg);
		map_pool_own_handle(P->set->pool, P->m->ops, r.each);
		if (!P->block && P->m->ops->is_relative(r.each))
			return perr(P, pt, 0, "the relative path '%.*s' is only allowed inside an "
				    "each-block", (int)pt->len, pt->p);
		r.each_text = pstr(P, pt->p, pt->len);
		r.src_text = (char *)r.each_text;
		P->i += 2;
		if (!is_op(cur(P), "{"))
			return perr(P, cur(P), 0, "expected '{' after 'each %.*s'", (int)pt->len,
				    pt->p);
		P->i++;
		struct rule_list sub = { 0 };
		P->block++;
		int rc = parse_rules_block(P, leaf, &sub);
		P->block--;
		if (rc) {
			free(sub.v);
			return -1;
		}
		r.sub = map_pool_alloc(P->set->pool, (sub.n ? sub.n : 1) * sizeof(*sub.v));
		memcpy(r.sub, sub.v, sub.n * sizeof(*sub.v));
		r.nsub = sub.n;
		free(sub.v);
	} else {
		if (leaf->type == MF_RECORD)
			return perr(P, t, 0, "type mismatch: '%s' is a record; assign its fields "
				    "(%s.%s, …)", r.target, r.target, leaf->fields[0].name);
		if (leaf->type == MF_ARRAY && leaf->item == MF_RECORD)
			return perr(P, t, 0, "type mismatch: '%.*s' is an array of records; build "
				    "it with '%.*s[] = each PATH { … }'", (int)(t->len - (append ? 2 : 0)),
				    t->p, (int)(t->len - (append ? 2 : 0)), t->p);
		if (leaf->type == MF_ARRAY && !append)
			return perr(P, t, (int)t->len, "'%s' is an array of strings; write '%s[] = …'",
				    r.target, r.target);
		if (leaf->type == MF_STRING && append)
			return perr(P, t, (int)t->len - 2, "type mismatch: '%.*s' is a string, not an "
				    "array; drop the '[]'", (int)t->len - 2, t->p);
		char what[160];
		const char *from = cur(P)->p;
		snprintf(what, sizeof(what), "the target '%s'", r.target);
		if (!(r.expr = parse_line_expr(P, ET_STRING, what)))
			return -1;
		const struct map_token *last = &P->t[P->i - 1];
		r.src_text = one_line(P, from, (size_t)(last->p + last->len - from) +
				      (last->kind == T_STR ? 1 : 0));
	}
	if (map_tok_is(cur(P), "required")) {
		r.required = 1;
		P->i++;
	}
	if (end_of_line(P))
		return -1;
	if (!append)
		for (size_t k = 0; k < rl->n; k++)
			if (same_path(&rl->v[k], r.path, r.depth))
				return perr(P, t, 0, "'%s' is already assigned on line %d", r.target,
					    rl->v[k].line);
	if (rl->n >= MAP_MAX_RULES)
		return perr(P, t, 0, "too many rules (limit %d)", MAP_MAX_RULES);
	if (rl->n == rl->cap) {
		size_t ncap = rl->cap ? rl->cap * 2 : 16;
		struct map_rule *v = realloc(rl->v, ncap * sizeof(*v));
		if (!v)
			return perr(P, t, 0, "out of memory");
		rl->v = v;
		rl->cap = ncap;
	}
	rl->v[rl->n++] = r;
	return 0;
}

/* Rules of an each-block, up to the closing '}'. */
static int parse_rules_block(struct parser *P, const struct map_field *rec, struct rule_list *out)
{
	while (1) {
		skip_nl(P);
		if (is_op(cur(P), "}")) {
			P->i++;
			return 0;
		}
		if (cur(P)->kind == T_EOF)
			return perr(P, cur(P), 0, "missing '}' to close the each-block");
		if (parse_rule(P, rec, out))
			return -1;
	}
}

/* ---- the file -------------------------------------------------------------------- */

/* Pass 1: source, event, tables, use. */
static int prepass(struct parser *P)
{
	struct map_mapping *m = P->m;
	for (P->i = 0; cur(P)->kind != T_EOF;) {
		struct map_token *t = cur(P);
		if (t->kind == T_NL) {
			P->i++;
			continue;
		}
		if (map_tok_is(t, "table")) {
			size_t before = m->ntables;
			if (parse_table(P, m->tables, &m->ntables, MAP_MAX_TABLES))
				return -1;
			if (m->nused >= MAP_MAX_TABLES)
				return perr(P, t, 0, "too many tables (limit %d)", MAP_MAX_TABLES);
			m->used[m->nused++] = m->tables[before];
			continue;
		}
		struct map_token *a = &P->t[P->i + 1];
		if (map_tok_is(t, "source")) {
			if (m->ops)
				return perr(P, t, 0, "'source' is given twice");
			if (a->kind != T_WORD || !(m->ops = map_source_find(a->p, a->len)))
				return perr(P, a, 0, "unknown source '%.*s'; expected hl7v2 or fhir",
					    (int)a->len, a->p);
		} else if (map_tok_is(t, "event")) {
			if (m->schema)
				return perr(P, t, 0, "'event' is given twice");
			for (size_t k = 0; a->kind == T_WORD && k < P->set->nschemas; k++)
				if (strlen(P->set->schemas[k]->event) == a->len &&
				    memcmp(P->set->schemas[k]->event, a->p, a->len) == 0)
					m->schema = P->set->schemas[k];
			if (!m->schema) {
				char names[256] = "";
				for (size_t k = 0; k < P->set->nschemas; k++)
					snprintf(names + strlen(names), sizeof(names) - strlen(names),
						 "%s%s", k ? ", " : "", P->set->schemas[k]->event);
				return perr(P, a, 0, "unknown event '%.*s'; the schemas define: %s",
					    (int)a->len, a->p, names[0] ? names : "none");
			}
		} else if (map_tok_is(t, "use")) {
			if (a->kind != T_RAW || use_file(P, a))
				return a->kind != T_RAW ? perr(P, t, 0, "expected 'use FILE'") : -1;
		}
		/* skip to the next line */
		while (cur(P)->kind != T_NL && cur(P)->kind != T_EOF)
			P->i++;
	}
	/* the same table name from two places is ambiguous */
	for (size_t i = 0; i < m->nused; i++)
		for (size_t k = i + 1; k < m->nused; k++)
			if (strcmp(m->used[i]->name, m->used[k]->name) == 0)
				return perr(P, &P->t[0], 0, "table '%s' is defined twice (inline and "
					    "by 'use', or by two 'use' files)", m->used[i]->name);
	return 0;
}

static int header_expr(struct parser *P, struct map_expr **slot, const struct map_token *kw,
		       enum map_etype type, int refs)
{
	if (*slot)
		return perr(P, kw, 0, "'%.*s' is given twice", (int)kw->len, kw->p);
	P->i++;
	P->header = refs;
	*slot = parse_line_expr(P, type, type == ET_BOOL ? "'when'" : "this header");
	P->header = 0;
	if (!*slot)
		return -1;
	return end_of_line(P);
}

static int mainpass(struct parser *P, struct rule_list *rl)
{
	struct map_mapping *m = P->m;
	for (P->i = 0;;) {
		skip_nl(P);
		struct map_token *t = cur(P), *a = &P->t[P->i + 1];
		if (t->kind == T_EOF)
			return 0;
		if (map_tok_is(t, "table")) {
			while (!map_tok_is(cur(P), "end"))
				P->i++;
			P->i++;
			continue;
		}
		if (map_tok_is(t, "source") || map_tok_is(t, "event") || map_tok_is(t, "use")) {
			P->i += 2;
			if (end_of_line(P))
				return -1;
			continue;
		}
		if (!m->ops || !m->schema) {
			return perr(P, t, 0, "missing '%s' line: every mapping names its %s",
				    !m->ops ? "source" : "event", !m->ops ? "source (hl7v2 or fhir)"
				    : "event (prescription, patient)");
		}
		if (map_tok_is(t, "mapping")) {
			if (m->name)
				return perr(P, t, 0, "'mapping' is given twice");
			if (a->kind != T_WORD)
				return perr(P, a, 0, "expected 'mapping NAME'");
			m->name = pstr(P, a->p, a->len);
			P->i += 2;
			if (end_of_line(P))
				return -1;
		} else if (map_tok_is(t, "when")) {
			if (header_expr(P, &m->when, t, ET_BOOL, 0))
				return -1;
		} else if (map_tok_is(t, "each") && a->kind == T_WORD) {
			struct map_srcerr se = { 0 };
			if (m->each)
				return perr(P, t, 0, "'each' is given twice");
			m->each = m->ops->compile(a->p, a->len, &se);
			if (!m->each)
				return perr(P, a, se.column ? (int)se.column - 1 : 0, "bad %s path: %s",
					    m->ops->name, se.msg);
			map_pool_own_handle(P->set->pool, m->ops, m->each);
			if (!m->ops->can_group(m->each))
				return perr(P, a, 0, "'each' in the header takes %s",
					    strcmp(m->ops->name, "hl7v2") == 0 ?
					    "a segment id (one event per segment group), e.g. each ORC" :
					    "a path to a collection");
			m->each_text = pstr(P, a->p, a->len);
			P->i += 2;
			if (end_of_line(P))
				return -1;
		} else if (map_tok_is(t, "type")) {
			if (header_expr(P, &m->type, t, ET_STRING, 1))
				return -1;
		} else if (map_tok_is(t, "topic")) {
			if (header_expr(P, &m->topic, t, ET_STRING, 1))
				return -1;
		} else if (map_tok_is(t, "key")) {
			if (header_expr(P, &m->key, t, ET_STRING, 1))
				return -1;
		} else if (parse_rule(P, &m->schema->root, rl)) {
			return -1;
		}
	}
}

struct map_mapping *map_compile(struct map_set *set, const char *file, const char *text,
				size_t len, const char *root_dir, struct map_diag *d)
{
	struct parser P = { .set = set, .file = file, .text = text, .len = len,
			    .root_dir = root_dir, .d = d };
	struct map_lexed lx;
	struct rule_list rl = { 0 };
	struct map_mapping *m = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (map_lex(text, len, &lx) != 0) {
		map_diag_add(d, file, text, len, lx.err_line, lx.err_col, "%s", lx.err);
		goto fail;
	}
	P.t = lx.v;
	P.n = lx.n;
	P.hash = EVP_MD_CTX_new();
	if (!P.hash || !EVP_DigestInit_ex(P.hash, EVP_sha256(), NULL))
		goto fail;
	EVP_DigestUpdate(P.hash, text, len);
	m = P.m = map_pool_alloc(set->pool, sizeof(*m));
	m->file = pstr(&P, file, strlen(file));
	m->tables = map_pool_alloc(set->pool, MAP_MAX_TABLES * sizeof(*m->tables));
	m->used = map_pool_alloc(set->pool, MAP_MAX_TABLES * sizeof(*m->used));
	if (prepass(&P) || mainpass(&P, &rl))
		goto fail;
	if (!m->name) {
		perr(&P, &P.t[0], 0, "missing 'mapping NAME' line");
		goto fail;
	}
	if (!m->type) {
		perr(&P, &P.t[0], 0, "missing 'type' line (the event type, e.g. type "
				      "\"prescription.created\")");
		goto fail;
	}
	m->rules = map_pool_alloc(set->pool, (rl.n ? rl.n : 1) * sizeof(*rl.v));
	memcpy(m->rules, rl.v, rl.n * sizeof(*rl.v));
	m->nrules = rl.n;
	EVP_DigestFinal_ex(P.hash, md, &mdlen);
	for (unsigned int k = 0; k < mdlen && k < 32; k++)
		snprintf(m->hash + 2 * k, 3, "%02x", md[k]);
	free(rl.v);
	free(lx.v);
	EVP_MD_CTX_free(P.hash);
	return m;
fail:
	free(rl.v);
	free(lx.v);
	EVP_MD_CTX_free(P.hash);
	return NULL;
}

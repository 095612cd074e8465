/* compile — a mapping file into a checked, ready-to-run mapping.
 *
 * Two passes over the tokens: the first reads the lines that give context
 * (`source`, `event`, tables and `use`), so a rule may name a table defined at
 * the end of the file; the second compiles the header expressions and the
 * rules against the event schema. The first error in a file is reported as
 * file:line:col with the line and a caret; other files still get checked.
 * Expressions are in compile_expr.c.
 */
#include "map/compile_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "util.h"

int map_perr(struct parser *P, const struct map_token *t, int coloff, const char *fmt, ...)
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


/* Continuation: a newline does not end an expression when the next line
 * starts with a binary operator, or inside parentheses. */
static int cont_op(const struct map_token *t)
{
	return is_op(t, "??") || is_op(t, "+") || map_tok_is(t, "and") || map_tok_is(t, "or");
}
void map_skip_cont(struct parser *P)
{
	size_t j = P->i;
	while (P->t[j].kind == T_NL)
		j++;
	if (j != P->i && (P->paren > 0 || cont_op(&P->t[j])))
		P->i = j;
}
void map_skip_nl(struct parser *P)
{
	while (cur(P)->kind == T_NL)
		P->i++;
}

static int oom(struct parser *P)
{
	return map_perr(P, cur(P), 0, "out of memory");
}

void *map_palloc(struct parser *P, size_t size)
{
	void *p = map_pool_alloc(P->set->pool, size);
	if (!p)
		oom(P);
	return p;
}

char *map_pstr(struct parser *P, const char *s, size_t len)
{
	char *p = map_pool_strndup(P->set->pool, s, len);
	if (!p)
		oom(P);
	return p;
}

int map_pown(struct parser *P, void *h)
{
	if (map_pool_own_handle(P->set->pool, P->m->ops, h) == 0)
		return 0;
	P->m->ops->free(h);
	return oom(P);
}


/* Source text spanning continuation lines, with each run of white space
 * collapsed to one blank: what a reject reason quotes. */
static char *one_line(struct parser *P, const char *s, size_t len)
{
	char *o = map_palloc(P, len + 1);
	size_t k = 0;
	if (!o)
		return NULL;
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

const struct map_table *map_find_table(struct parser *P, const char *name, size_t len)
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
		return map_perr(P, name, 0, "expected 'table NAME' on a line of its own");
	if (*n >= cap)
		return map_perr(P, kw, 0, "too many tables (limit %zu)", cap);
	struct map_table *t = map_palloc(P, sizeof(*t));
	if (!t || !(t->name = map_pstr(P, name->p, name->len)))
		return -1;
	P->i += 3;
	size_t cnt = 0;
	for (size_t j = P->i; P->t[j].kind == T_ENTRY || P->t[j].kind == T_NL; j++)
		cnt += P->t[j].kind == T_ENTRY;
	if (!(t->keys = map_palloc(P, (cnt + 1) * sizeof(char *))) ||
	    !(t->vals = map_palloc(P, (cnt + 1) * sizeof(char *))))
		return -1;
	while (cur(P)->kind == T_ENTRY || cur(P)->kind == T_NL) {
		struct map_token *e = cur(P);
		P->i++;
		if (e->kind != T_ENTRY)
			continue;
		if (map_table_get(t, e->p, e->len))
			return map_perr(P, e, 0, "duplicate key in table '%s'", t->name);
		if (!(t->keys[t->n] = map_pstr(P, e->p, e->len)) ||
		    !(t->vals[t->n] = map_pstr(P, e->p2, e->len2)))
			return -1;
		t->n++;
	}
	if (!map_tok_is(cur(P), "end"))
		return map_perr(P, cur(P), 0, "table '%s' is not closed with 'end'", t->name);
	P->i++;
	for (size_t k = 0; k < *n; k++)
		if (strcmp(list[k]->name, t->name) == 0)
			return map_perr(P, name, 0, "table '%s' is defined twice", t->name);
	list[(*n)++] = t;
	return 0;
}

/* `use tables/x.tbl`: load (once per set) and bring its tables into scope. */
static int use_file(struct parser *P, const struct map_token *raw)
{
	char path[4096], rel[1024], err[256];
	if (raw->len == 0 || raw->len >= sizeof(rel))
		return map_perr(P, raw, 0, "expected 'use FILE'");
	memcpy(rel, raw->p, raw->len);
	rel[raw->len] = '\0';
	if (rel[0] == '/' || strstr(rel, ".."))
		return map_perr(P, raw, 0, "'use' takes a path inside the mappings folder");
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
			return map_perr(P, raw, 0, "cannot read table file '%s'", rel);
		if (S->ntfiles >= MAP_MAX_TABLE_FILES)
			return map_perr(P, raw, 0, "too many table files (limit %d)",
				    MAP_MAX_TABLE_FILES);
		struct map_lexed lx;
		struct parser T = *P;
		T.file = map_pstr(P, path, strlen(path));
		T.text = T.file ? map_pstr(P, text, len) : NULL;
		T.len = len;
		free(text);
		if (!T.text)
			return -1;
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
			map_skip_nl(&T);
			if (cur(&T)->kind == T_EOF)
				break;
			if (!map_tok_is(cur(&T), "table")) {
				map_perr(&T, cur(&T), 0, "a table file holds only 'table NAME' … 'end' blocks");
				free(lx.v);
				return -1;
			}
			if (parse_table(&T, S->tables, &S->ntables, MAP_MAX_SHARED_TABLES) != 0) {
				free(lx.v);
				return -1;
			}
		}
		free(lx.v);
		char *kept_rel = map_pstr(P, rel, strlen(rel));
		if (!kept_rel)
			return -1;
		tf = &S->tfiles[S->ntfiles++];
		tf->rel = kept_rel;
		tf->text = T.text;
		tf->len = T.len;
		tf->first = first;
		tf->count = S->ntables - first;
	}
	EVP_DigestUpdate(P->hash, tf->text, tf->len);
	size_t first = tf->first, count = tf->count;
	for (size_t k = 0; k < count; k++) {
		if (P->m->nused >= MAP_MAX_TABLES)
			return map_perr(P, raw, 0, "too many tables (limit %d)", MAP_MAX_TABLES);
		P->m->used[P->m->nused++] = S->tables[first + k];
	}
	return 0;
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
int map_resolve_target(struct parser *P, const struct map_token *t,
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
				return map_perr(P, t, (int)(q - t->p), "a target is a field name like "
					    "data.patientId, not a path");
			}
		if (rec == NULL || (f && f->type == MF_ARRAY)) {
			if (for_ref)
				return 0;
			return map_perr(P, t, off, "'%.*s' is %s; %s", (int)(s - 1 - t->p), t->p,
				    ftype_name(f), f->type == MF_ARRAY ?
				    "build its items with 'each PATH { … }'" : "it has no fields");
		}
		f = map_field_find(rec, s, (size_t)(e - s));
		if (!f) {
			if (for_ref)
				return 0;
			const char *hint = NULL;
			char fields[256] = "";
			for (size_t k = 0; k < rec->nfields; k++) {
				if (strlen(rec->fields[k].name) == (size_t)(e - s) &&
				    strncasecmp(rec->fields[k].name, s, (size_t)(e - s)) == 0)
					hint = rec->fields[k].name;
				if (!rec->fields[k].automatic)
					snprintf(fields + strlen(fields), sizeof(fields) - strlen(fields),
						 "%s%s", fields[0] ? ", " : "", rec->fields[k].name);
			}
			char where[160];
			if (P->block_target)
				snprintf(where, sizeof(where), "the items of '%s'", P->block_target);
			else
				snprintf(where, sizeof(where), "%s", P->m->schema->fullname);
			if (hint)
				return map_perr(P, t, off, "unknown target field '%.*s' in %s "
					    "(did you mean '%.*s%s'?)", (int)(e - t->p), t->p, where,
					    (int)(s - t->p), t->p, hint);
			return map_perr(P, t, off, "unknown target field '%.*s' in %s (fields here: %s)",
					(int)(e - t->p), t->p, where, fields);
		}
		if (f->automatic && rec == &P->m->schema->root) {
			if (for_ref)
				return 0;
			return map_perr(P, t, off, "'%s' is set by the bridge; it cannot be a target",
				    f->name);
		}
		if (*depth >= MAP_MAX_TARGET_DEPTH)
			return for_ref ? 0 : map_perr(P, t, off, "target nests too deep");
		path[(*depth)++] = f;
		rec = f->type == MF_RECORD ? f : NULL;
		s = dot ? dot + 1 : end;
	}
	if (!f)
		return for_ref ? 0 : map_perr(P, t, 0, "expected a target field");
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

static int parse_rules_block(struct parser *P, const struct map_field *rec,
			     const struct map_token *open, struct rule_list *out);

/* After `each`: PATH [?? PATH …] [prefer KEY in (V, …)], up to the '{'. */
static int parse_each_source(struct parser *P, struct map_rule *r)
{
	void *alts[MAP_MAX_ARGS];
	size_t n = 0;
	const char *from = cur(P)->p;
	const struct map_token *last = cur(P);
	while (1) {
		struct map_token *pt = cur(P);
		struct map_srcerr se = { 0 };
		if (pt->kind != T_WORD)
			return map_perr(P, pt, 0, "expected a path after 'each'%s", n ? " and '?\?'" : "");
		if (n == MAP_MAX_ARGS)
			return map_perr(P, pt, 0, "too many alternatives (limit %d)", MAP_MAX_ARGS);
		void *h = P->m->ops->compile(pt->p, pt->len, &se);
		if (!h)
			return map_perr(P, pt, se.column ? (int)se.column - 1 : 0, "bad %s path: %s",
				    P->m->ops->name, se.msg);
		if (map_pown(P, h))
			return -1;
		if (!P->block && P->m->ops->is_relative(h))
			return map_perr(P, pt, 0, "the relative path '%.*s' is only allowed inside an "
				    "each-block", (int)pt->len, pt->p);
		alts[n++] = h;
		last = pt;
		P->i++;
		map_skip_cont(P);
		if (!is_op(cur(P), "??"))
			break;
		P->i++;
	}
	r->each = alts[0];
	r->neach_alt = n - 1;
	/* reasons quote the paths, not the prefer clause */
	r->each_text = one_line(P, from, (size_t)(last->p + last->len - from));
	r->src_text = (char *)r->each_text;
	r->each_alt = map_palloc(P, (n > 1 ? n - 1 : 1) * sizeof(void *));
	if (!r->each_text || !r->each_alt)
		return -1;
	memcpy(r->each_alt, alts + 1, (n - 1) * sizeof(void *));
	/* `prefer` may start the next line */
	if (cur(P)->kind == T_NL && map_tok_is(&P->t[P->i + 1], "prefer"))
		P->i++;
	if (map_tok_is(cur(P), "prefer")) {
		const struct map_token *pw = cur(P);
		if (!r->one)
			return map_perr(P, pw, 0, "'prefer' picks one item; '%s' is an array (drop the "
				    "'[]' of a record target, or leave 'prefer' out)", r->target);
		P->i++;
		/* the key and the values are evaluated on each item */
		P->block++;
		const char *outer = P->block_target;
		P->block_target = r->target;
		struct map_expr *e = map_parse_expr(P);
		P->block--;
		P->block_target = outer;
		if (!e)
			return -1;
		if (e->op != OP_IN)
			return map_perr(P, pw, 0, "'prefer' takes KEY in (\"first choice\", \"second\", …)");
		r->prefer = e;
	}
	return 0;
}

static int parse_rule(struct parser *P, const struct map_field *root, struct rule_list *rl)
{
	struct map_token *t = cur(P);
	const struct map_field *path[MAP_MAX_TARGET_DEPTH + 1];
	size_t depth;
	int append;
	struct map_rule r = { 0 };

	if (t->kind != T_WORD)
		return map_perr(P, t, 0, "expected a rule 'target = expression'%s",
			    P->block ? "" : " or a header line (mapping, source, when, each, "
					    "event, type, topic, key, use, table)");
	if (map_resolve_target(P, t, root, path, &depth, &append, 0) != 1)
		return -1;
	const struct map_field *leaf = path[depth - 1];
	P->i++;
	if (!is_op(cur(P), "="))
		return map_perr(P, cur(P), 0, "expected '=' after the target");
	P->i++;
	r.line = t->line;
	r.col = t->col;
	r.target = map_pstr(P, t->p, t->len);
	r.depth = depth;
	r.path = r.target ? map_palloc(P, depth * sizeof(*path)) : NULL;
	if (!r.path)
		return -1;
	memcpy(r.path, path, depth * sizeof(*path));
	r.append = append;

	if (map_tok_is(cur(P), "each")) {
		struct map_token *pt = &P->t[P->i + 1];
		int one = leaf->type == MF_RECORD && !append;
		if (!one && (leaf->type != MF_ARRAY || leaf->item != MF_RECORD))
			return map_perr(P, t, 0, "type mismatch: '%.*s' is %s; an each-block builds "
				    "records and arrays of records", (int)(t->len - (append ? 2 : 0)),
				    t->p, ftype_name(leaf));
		if (!one && !append)
			return map_perr(P, t, (int)t->len, "write '%.*s[] = each …' to build the array",
				    (int)t->len, t->p);
		r.one = one;
		P->i++;
		if (parse_each_source(P, &r))
			return -1;
		if (!is_op(cur(P), "{"))
			return map_perr(P, cur(P), 0, "expected '{' after 'each %.*s'", (int)pt->len,
				    pt->p);
		const struct map_token *open = cur(P);
		const char *outer = P->block_target;
		P->i++;
		struct rule_list sub = { 0 };
		P->block++;
		P->block_target = r.target;
		int rc = parse_rules_block(P, leaf, open, &sub);
		P->block--;
		P->block_target = outer;
		if (rc) {
			free(sub.v);
			return -1;
		}
		r.sub = map_palloc(P, (sub.n ? sub.n : 1) * sizeof(*sub.v));
		if (r.sub && sub.n)
			memcpy(r.sub, sub.v, sub.n * sizeof(*sub.v));
		r.nsub = sub.n;
		free(sub.v);
		if (!r.sub)
			return -1;
	} else {
		if (leaf->type == MF_RECORD)
			return map_perr(P, t, 0, "type mismatch: '%s' is a record; assign its fields "
				    "(%s.%s, …)", r.target, r.target, leaf->fields[0].name);
		if (leaf->type == MF_ARRAY && leaf->item == MF_RECORD)
			return map_perr(P, t, 0, "type mismatch: '%.*s' is an array of records; build "
				    "it with '%.*s[] = each PATH { … }'", (int)(t->len - (append ? 2 : 0)),
				    t->p, (int)(t->len - (append ? 2 : 0)), t->p);
		if (leaf->type == MF_ARRAY && !append)
			return map_perr(P, t, (int)t->len, "'%s' is an array of strings; write '%s[] = …'",
				    r.target, r.target);
		if (leaf->type == MF_STRING && append)
			return map_perr(P, t, (int)t->len - 2, "type mismatch: '%.*s' is a string, not an "
				    "array; drop the '[]'", (int)t->len - 2, t->p);
		char what[160];
		const char *from = cur(P)->p;
		snprintf(what, sizeof(what), "the target '%s'", r.target);
		if (!(r.expr = map_parse_line_expr(P, ET_STRING, what)))
			return -1;
		const struct map_token *last = &P->t[P->i - 1];
		r.src_text = one_line(P, from, (size_t)(last->p + last->len - from) +
				      (last->kind == T_STR ? 1 : 0));
		if (!r.src_text)
			return -1;
	}
	if (map_tok_is(cur(P), "required")) {
		r.required = 1;
		P->i++;
	}
	if (map_end_of_line(P))
		return -1;
	if (!append)
		for (size_t k = 0; k < rl->n; k++)
			if (same_path(&rl->v[k], r.path, r.depth))
				return map_perr(P, t, 0, "'%s' is already assigned on line %d", r.target,
					    rl->v[k].line);
	if (rl->n >= MAP_MAX_RULES)
		return map_perr(P, t, 0, "too many rules (limit %d)", MAP_MAX_RULES);
	if (rl->n == rl->cap) {
		size_t ncap = rl->cap ? rl->cap * 2 : 16;
		struct map_rule *v = realloc(rl->v, ncap * sizeof(*v));
		if (!v)
			return oom(P);
		rl->v = v;
		rl->cap = ncap;
	}
	rl->v[rl->n++] = r;
	return 0;
}

/* Rules of an each-block, up to the closing '}'. */
static int parse_rules_block(struct parser *P, const struct map_field *rec,
			     const struct map_token *open, struct rule_list *out)
{
	while (1) {
		map_skip_nl(P);
		if (is_op(cur(P), "}")) {
			P->i++;
			return 0;
		}
		if (cur(P)->kind == T_EOF)
			return map_perr(P, open, 0, "this '{' is never closed with '}'");
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
				return map_perr(P, t, 0, "too many tables (limit %d)", MAP_MAX_TABLES);
			m->used[m->nused++] = m->tables[before];
			continue;
		}
		struct map_token *a = &P->t[P->i + 1];
		if (is_op(a, "=")) {
			/* a rule (inside an each-block a target may be called use) */
		} else if (map_tok_is(t, "source")) {
			if (m->ops)
				return map_perr(P, t, 0, "'source' is given twice");
			if (a->kind != T_WORD || !(m->ops = map_source_find(a->p, a->len)))
				return map_perr(P, a, 0, "unknown source '%.*s'; expected hl7v2 or fhir",
					    (int)a->len, a->p);
		} else if (map_tok_is(t, "event")) {
			if (m->schema)
				return map_perr(P, t, 0, "'event' is given twice");
			for (size_t k = 0; a->kind == T_WORD && k < P->set->nschemas; k++)
				if (strlen(P->set->schemas[k]->event) == a->len &&
				    memcmp(P->set->schemas[k]->event, a->p, a->len) == 0)
					m->schema = P->set->schemas[k];
			if (!m->schema) {
				char names[256] = "";
				for (size_t k = 0; k < P->set->nschemas; k++)
					snprintf(names + strlen(names), sizeof(names) - strlen(names),
						 "%s%s", k ? ", " : "", P->set->schemas[k]->event);
				return map_perr(P, a, 0, "unknown event '%.*s'; the schemas define: %s",
					    (int)a->len, a->p, names[0] ? names : "none");
			}
		} else if (map_tok_is(t, "use") && !is_op(a, "=")) {
			if (a->kind != T_RAW || use_file(P, a))
				return a->kind != T_RAW ? map_perr(P, t, 0, "expected 'use FILE'") : -1;
		}
		/* skip to the next line */
		while (cur(P)->kind != T_NL && cur(P)->kind != T_EOF)
			P->i++;
	}
	/* the same table name from two places is ambiguous */
	for (size_t i = 0; i < m->nused; i++)
		for (size_t k = i + 1; k < m->nused; k++)
			if (strcmp(m->used[i]->name, m->used[k]->name) == 0)
				return map_perr(P, &P->t[0], 0, "table '%s' is defined twice (inline and "
					    "by 'use', or by two 'use' files)", m->used[i]->name);
	return 0;
}

static int header_expr(struct parser *P, struct map_expr **slot, const struct map_token *kw,
		       enum map_etype type, int refs)
{
	if (*slot)
		return map_perr(P, kw, 0, "'%.*s' is given twice", (int)kw->len, kw->p);
	P->i++;
	P->header = refs;
	*slot = map_parse_line_expr(P, type, type == ET_BOOL ? "'when'" : "this header");
	P->header = 0;
	if (!*slot)
		return -1;
	return map_end_of_line(P);
}

static int mainpass(struct parser *P, struct rule_list *rl)
{
	struct map_mapping *m = P->m;
	for (P->i = 0;;) {
		map_skip_nl(P);
		struct map_token *t = cur(P), *a = &P->t[P->i + 1];
		if (t->kind == T_EOF)
			return 0;
		if (map_tok_is(t, "table")) {
			while (!map_tok_is(cur(P), "end"))
				P->i++;
			P->i++;
			continue;
		}
		if ((map_tok_is(t, "source") || map_tok_is(t, "event") || map_tok_is(t, "use")) &&
		    !is_op(a, "=")) {
			P->i += 2;
			if (map_end_of_line(P))
				return -1;
			continue;
		}
		if (!m->ops || !m->schema) {
			return map_perr(P, t, 0, "missing '%s' line: every mapping names its %s",
				    !m->ops ? "source" : "event", !m->ops ? "source (hl7v2 or fhir)"
				    : "event (prescription, patient)");
		}
		if (map_tok_is(t, "mapping")) {
			if (m->name)
				return map_perr(P, t, 0, "'mapping' is given twice");
			if (a->kind != T_WORD)
				return map_perr(P, a, 0, "expected 'mapping NAME'");
			if (!(m->name = map_pstr(P, a->p, a->len)))
				return -1;
			P->i += 2;
			if (map_end_of_line(P))
				return -1;
		} else if (map_tok_is(t, "when")) {
			if (header_expr(P, &m->when, t, ET_BOOL, 0))
				return -1;
		} else if (map_tok_is(t, "each") && a->kind == T_WORD) {
			struct map_srcerr se = { 0 };
			if (m->each)
				return map_perr(P, t, 0, "'each' is given twice");
			m->each = m->ops->compile(a->p, a->len, &se);
			if (!m->each)
				return map_perr(P, a, se.column ? (int)se.column - 1 : 0, "bad %s path: %s",
					    m->ops->name, se.msg);
			if (map_pown(P, m->each)) {
				m->each = NULL;
				return -1;
			}
			if (!m->ops->can_group(m->each))
				return map_perr(P, a, 0, "'each' in the header takes %s",
					    strcmp(m->ops->name, "hl7v2") == 0 ?
					    "a segment id (one event per segment group), e.g. each ORC" :
					    "a path to a collection");
			if (!(m->each_text = map_pstr(P, a->p, a->len)))
				return -1;
			P->i += 2;
			if (map_end_of_line(P))
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
	if (!P.hash || !EVP_DigestInit_ex(P.hash, digest_sha256(), NULL))
		goto fail;
	EVP_DigestUpdate(P.hash, text, len);
	m = P.m = map_palloc(&P, sizeof(*m));
	if (!m || !(m->file = map_pstr(&P, file, strlen(file))) ||
	    !(m->tables = map_palloc(&P, MAP_MAX_TABLES * sizeof(*m->tables))) ||
	    !(m->used = map_palloc(&P, MAP_MAX_TABLES * sizeof(*m->used))) ||
	    prepass(&P) || mainpass(&P, &rl))
		goto fail;
	if (!m->name) {
		map_perr(&P, &P.t[0], 0, "missing 'mapping NAME' line");
		goto fail;
	}
	if (!m->type) {
		map_perr(&P, &P.t[0], 0, "missing 'type' line (the event type, e.g. type "
				      "\"prescription.created\")");
		goto fail;
	}
	if (!(m->rules = map_palloc(&P, (rl.n ? rl.n : 1) * sizeof(*rl.v))))
		goto fail;
	if (rl.n) /* a mapping may have no rules (rl.v is then NULL) */
		memcpy(m->rules, rl.v, rl.n * sizeof(*rl.v));
	m->nrules = rl.n;
	EVP_DigestFinal_ex(P.hash, md, &mdlen);
	for (unsigned int k = 0; k < mdlen && k < (sizeof(m->hash) - 1) / 2; k++)
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

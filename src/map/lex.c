/* lex — tokenizer for mapping and table files.
 *
 * Paths are not tokenized here, only delimited: a path runs over name
 * characters and . - % $ * and over balanced [...] and (...) groups (quotes
 * respected), so `PID-3[where .5 = "MR"].1` and
 * `coding.where(system = 'x').code` are one word the source adapter compiles.
 * Table bodies (`table NAME` … `end`) are read line by line: `KEY = VALUE`,
 * where a value may hold any character (URIs).
 */
#include "map/lex.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* No mapping file needs more; a hostile one is refused early. */
#define LEX_MAX_TOKENS 200000
#define LEX_MAX_NEST 32

struct lexer {
	const char *s, *end, *p, *bol;
	int line;
	struct map_lexed *lx;
	size_t cap;
};

int map_tok_is(const struct map_token *t, const char *w)
{
	size_t n = strlen(w);
	return t->kind == T_WORD && t->len == n && memcmp(t->p, w, n) == 0;
}

static int col_of(const struct lexer *L, const char *p) { return (int)(p - L->bol) + 1; }

static int fail(struct lexer *L, const char *at, const char *msg)
{
	L->lx->err_line = L->line;
	L->lx->err_col = col_of(L, at);
	strncpy(L->lx->err, msg, sizeof(L->lx->err) - 1);
	return -1;
}

static int push(struct lexer *L, enum map_tok k, const char *p, size_t len)
{
	struct map_lexed *lx = L->lx;
	if (lx->n == L->cap) {
		size_t ncap = L->cap ? L->cap * 2 : 256;
		if (ncap > LEX_MAX_TOKENS)
			return fail(L, p, "file too large");
		struct map_token *v = realloc(lx->v, ncap * sizeof(*v));
		if (!v)
			return fail(L, p, "out of memory");
		lx->v = v;
		L->cap = ncap;
	}
	struct map_token *t = &lx->v[lx->n++];
	memset(t, 0, sizeof(*t));
	t->kind = k;
	t->p = p;
	t->len = len;
	t->line = L->line;
	t->col = col_of(L, p);
	return 0;
}

static int is_name(int c) { return isalnum(c) || c == '_'; }
static int is_word_start(int c) { return isalpha(c) || c == '_' || c == '.' || c == '%' || c == '$'; }
static int is_word(int c)
{
	return is_name(c) || c == '.' || c == '-' || c == '%' || c == '$' || c == '*';
}

/* Skip a quoted string starting at p (on the quote); NULL if unterminated. */
static const char *skip_string(struct lexer *L, const char *p)
{
	char q = *p++;
	while (p < L->end && *p != q && *p != '\n') {
		if (*p == '\\' && p + 1 < L->end)
			p++;
		p++;
	}
	return p < L->end && *p == q ? p + 1 : NULL;
}

static int lex_word(struct lexer *L)
{
	const char *start = L->p, *p = L->p;
	char stack[LEX_MAX_NEST];
	int depth = 0;

	while (p < L->end) {
		unsigned char c = (unsigned char)*p;
		if (depth > 0) {
			if (c == '\n')
				return fail(L, start, "unclosed bracket in path");
			if (c == '"' || c == '\'') {
				const char *q = skip_string(L, p);
				if (!q)
					return fail(L, p, "unterminated string");
				p = q;
				continue;
			}
			if (c == '[' || c == '(') {
				if (depth == LEX_MAX_NEST)
					return fail(L, p, "brackets nested too deep");
				stack[depth++] = c == '[' ? ']' : ')';
			} else if (c == ']' || c == ')') {
				if (c != stack[depth - 1])
					return fail(L, p, "mismatched bracket in path");
				depth--;
			}
			p++;
			continue;
		}
		if (is_word(c)) {
			p++;
			continue;
		}
		if (c == '[') {
			stack[depth++] = ']';
			p++;
			continue;
		}
		if (c == '(') {
			/* name( is a function of the language; a.b( belongs to the path */
			int plain = 1;
			for (const char *q = start; q < p; q++)
				if (!is_name((unsigned char)*q))
					plain = 0;
			if (plain)
				break;
			stack[depth++] = ')';
			p++;
			continue;
		}
		break;
	}
	if (depth > 0)
		return fail(L, start, "unclosed bracket in path");
	int func = p < L->end && *p == '(';
	if (push(L, func ? T_FUNC : T_WORD, start, (size_t)(p - start)))
		return -1;
	L->p = p;
	return 0;
}

static const char *line_end(struct lexer *L, const char *p)
{
	while (p < L->end && *p != '\n')
		p++;
	return p;
}

static void newline(struct lexer *L)
{
	/* L->p is on '\n' */
	L->p++;
	L->line++;
	L->bol = L->p;
}

static void trim(const char **a, const char **b)
{
	while (*a < *b && isspace((unsigned char)**a))
		(*a)++;
	while (*b > *a && isspace((unsigned char)(*b)[-1]))
		(*b)--;
}

static void unquote(const char **a, const char **b)
{
	if (*b - *a >= 2 && (**a == '"' || **a == '\'') && (*b)[-1] == **a) {
		(*a)++;
		(*b)--;
	}
}

/* Lines after `table NAME` until `end`: entries. */
static int lex_table_body(struct lexer *L)
{
	while (L->p < L->end) {
		const char *a = L->p, *b = line_end(L, L->p);
		const char *next = b;
		trim(&a, &b);
		if (a == b || *a == '#') {
			/* blank or comment line */
		} else if (b - a == 3 && memcmp(a, "end", 3) == 0) {
			if (push(L, T_WORD, a, 3) || push(L, T_NL, b, 0))
				return -1;
			L->p = next;
			if (L->p < L->end)
				newline(L);
			return 0;
		} else {
			const char *eq = memchr(a, '=', (size_t)(b - a));
			if (!eq)
				return fail(L, a, "expected 'KEY = VALUE' or 'end' in table");
			const char *ka = a, *kb = eq, *va = eq + 1, *vb = b;
			/* a comment after the value: ' #' */
			for (const char *q = va; q + 1 < vb; q++)
				if (isspace((unsigned char)q[0]) && q[1] == '#') {
					vb = q;
					break;
				}
			trim(&ka, &kb);
			trim(&va, &vb);
			unquote(&ka, &kb);
			unquote(&va, &vb);
			if (ka == kb)
				return fail(L, a, "empty key in table");
			if (push(L, T_ENTRY, ka, (size_t)(kb - ka)))
				return -1;
			struct map_token *t = &L->lx->v[L->lx->n - 1];
			t->p2 = va;
			t->len2 = (size_t)(vb - va);
			if (push(L, T_NL, b, 0))
				return -1;
		}
		L->p = next;
		if (L->p < L->end)
			newline(L);
	}
	return fail(L, L->p, "table is not closed with 'end'");
}

int map_lex(const char *text, size_t len, struct map_lexed *lx)
{
	struct lexer L = { .s = text, .end = text + len, .p = text, .bol = text, .line = 1,
			   .lx = lx, .cap = 0 };
	size_t line_first = 0; /* index of the first token on the current line */

	memset(lx, 0, sizeof(*lx));
	while (L.p < L.end) {
		unsigned char c = (unsigned char)*L.p;
		if (c == '\n') {
			if (lx->n > line_first && push(&L, T_NL, L.p, 0))
				return -1;
			/* `table NAME` starts a raw body on the next line */
			int table = lx->n >= line_first + 3 &&
				    map_tok_is(&lx->v[line_first], "table");
			newline(&L);
			line_first = lx->n;
			if (table) {
				if (lex_table_body(&L))
					return -1;
				line_first = lx->n;
			}
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r') {
			L.p++;
			continue;
		}
		if (c == '#') {
			L.p = line_end(&L, L.p);
			continue;
		}
		if (c == '"' || c == '\'') {
			const char *q = skip_string(&L, L.p);
			if (!q)
				return fail(&L, L.p, "unterminated string");
			if (push(&L, T_STR, L.p + 1, (size_t)(q - L.p - 2)))
				return -1;
			L.p = q;
			continue;
		}
		if (isdigit(c)) {
			const char *q = L.p;
			while (q < L.end && (isdigit((unsigned char)*q) || *q == '.'))
				q++;
			if (push(&L, T_NUM, L.p, (size_t)(q - L.p)))
				return -1;
			L.p = q;
			continue;
		}
		if (is_word_start(c)) {
			if (lex_word(&L))
				return -1;
			/* `use PATH`: the path is raw text up to the end of the line */
			const char *peek = L.p;
			while (peek < L.end && (*peek == ' ' || *peek == '\t'))
				peek++;
			/* (`use = …` inside an each-block is a target called use) */
			if (lx->n == line_first + 1 && map_tok_is(&lx->v[line_first], "use") &&
			    (peek >= L.end || *peek != '=')) {
				const char *a = L.p, *b = line_end(&L, L.p);
				for (const char *q = a; q < b; q++)
					if (*q == '#') {
						b = q;
						break;
					}
				trim(&a, &b);
				if (push(&L, T_RAW, a, (size_t)(b - a)))
					return -1;
				L.p = line_end(&L, L.p);
			}
			continue;
		}
		if ((c == '!' || c == '?') && L.p + 1 < L.end && L.p[1] == (c == '!' ? '=' : '?')) {
			if (push(&L, T_OP, L.p, 2))
				return -1;
			L.p += 2;
			continue;
		}
		if (strchr("=+(),{}", c)) {
			if (push(&L, T_OP, L.p, 1))
				return -1;
			L.p++;
			continue;
		}
		return fail(&L, L.p, "unexpected character");
	}
	if (lx->n > line_first && push(&L, T_NL, L.p, 0))
		return -1;
	/* the table body case is handled at '\n'; a `table` on the last line has none */
	return push(&L, T_EOF, L.p, 0);
}

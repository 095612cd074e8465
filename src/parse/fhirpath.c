/* fhirpath — compiler: lexer and recursive-descent parser into a small tree.
 * Precedence, loosest first (FHIRPath's order for the supported operators):
 * implies; or xor; and; in contains; = !=; |; + - &; unary -; . [] */
#include "parse/fhirpath_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum tok {
	T_END, T_IDENT, T_STRING, T_NUMBER, T_DOLLAR_THIS, T_VAR,
	T_DOT, T_LBRACK, T_RBRACK, T_LPAREN, T_RPAREN, T_COMMA, T_LBRACE, T_RBRACE,
	T_EQ, T_NE, T_PIPE, T_PLUS, T_MINUS, T_AMP, T_OTHER,
};

struct parser {
	const char *s;
	size_t len, pos;
	/* current token */
	enum tok t;
	size_t tstart, tlen;
	char *tval; /* decoded identifier or string */
	int depth;
	fhirpath_error_t *err;
	int failed;
};

static int perr(struct parser *p, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int perr(struct parser *p, size_t at, const char *fmt, ...)
{
	va_list ap;

	if (!p->failed) {
		p->failed = 1;
		if (p->err) {
			p->err->column = (int)at + 1;
			va_start(ap, fmt);
			vsnprintf(p->err->text, sizeof(p->err->text), fmt, ap);
			va_end(ap);
		}
	}
	return -1;
}

static int is_ident_start(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_ident(int c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* Decode a '...' or `...` literal starting at p->pos (the quote). */
static int lex_quoted(struct parser *p, char q)
{
	size_t i = p->pos + 1, o = 0;
	char *buf = malloc(p->len - p->pos + 1);

	if (!buf)
		return perr(p, p->pos, "out of memory");
	while (i < p->len && p->s[i] != q) {
		char c = p->s[i++];
		if (c == '\\') {
			if (i >= p->len)
				break;
			c = p->s[i++];
			switch (c) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'f': c = '\f'; break;
			case '\\': case '\'': case '"': case '`': case '/': break;
			default:
				free(buf);
				return perr(p, i - 2, "unsupported escape in string");
			}
		} else if (c == '\0') {
			free(buf);
			return perr(p, i - 1, "NUL character in expression");
		}
		buf[o++] = c;
	}
	if (i >= p->len) {
		free(buf);
		return perr(p, p->pos, "unterminated %s", q == '`' ? "`name`" : "string");
	}
	buf[o] = '\0';
	p->tval = buf;
	p->tlen = i + 1 - p->pos;
	return 0;
}

static int lex(struct parser *p)
{
	const char *s = p->s;
	size_t i;

	free(p->tval);
	p->tval = NULL;
	while (p->pos < p->len && (s[p->pos] == ' ' || s[p->pos] == '\t' ||
				   s[p->pos] == '\r' || s[p->pos] == '\n'))
		p->pos++;
	p->tstart = p->pos;
	p->tlen = 1;
	if (p->pos >= p->len) {
		p->t = T_END;
		p->tlen = 0;
		return 0;
	}
	i = p->pos;
	if (is_ident_start((unsigned char)s[i])) {
		while (i < p->len && is_ident((unsigned char)s[i]))
			i++;
		p->t = T_IDENT;
		p->tlen = i - p->pos;
		p->tval = strndup(s + p->pos, p->tlen);
		if (!p->tval)
			return perr(p, p->pos, "out of memory");
	} else if (s[i] == '`' || s[i] == '\'') {
		p->t = s[i] == '`' ? T_IDENT : T_STRING;
		if (lex_quoted(p, s[i]) != 0)
			return -1;
	} else if (s[i] >= '0' && s[i] <= '9') {
		while (i < p->len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i + 1 < p->len && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9') {
			i++;
			while (i < p->len && s[i] >= '0' && s[i] <= '9')
				i++;
		}
		p->t = T_NUMBER;
		p->tlen = i - p->pos;
		p->tval = strndup(s + p->pos, p->tlen);
		if (!p->tval)
			return perr(p, p->pos, "out of memory");
	} else if (s[i] == '$' || s[i] == '%') {
		i++;
		while (i < p->len && is_ident((unsigned char)s[i]))
			i++;
		p->tlen = i - p->pos;
		p->tval = strndup(s + p->pos, p->tlen);
		if (!p->tval)
			return perr(p, p->pos, "out of memory");
		if (s[p->pos] == '$') {
			if (strcmp(p->tval, "$this") != 0)
				return perr(p, p->pos, "unknown variable '%s' (expected $this)",
					    p->tval);
			p->t = T_DOLLAR_THIS;
		} else {
			p->t = T_VAR;
		}
	} else if (s[i] == '!' && i + 1 < p->len && s[i + 1] == '=') {
		p->t = T_NE;
		p->tlen = 2;
	} else {
		switch (s[i]) {
		case '.': p->t = T_DOT; break;
		case '[': p->t = T_LBRACK; break;
		case ']': p->t = T_RBRACK; break;
		case '(': p->t = T_LPAREN; break;
		case ')': p->t = T_RPAREN; break;
		case ',': p->t = T_COMMA; break;
		case '{': p->t = T_LBRACE; break;
		case '}': p->t = T_RBRACE; break;
		case '=': p->t = T_EQ; break;
		case '|': p->t = T_PIPE; break;
		case '+': p->t = T_PLUS; break;
		case '-': p->t = T_MINUS; break;
		case '&': p->t = T_AMP; break;
		default: p->t = T_OTHER; break;
		}
	}
	p->pos = p->tstart + p->tlen;
	return 0;
}

static int is_word(struct parser *p, const char *w)
{
	return p->t == T_IDENT && p->tval && strcmp(p->tval, w) == 0 &&
	       p->s[p->tstart] != '`';
}

static struct fp_node *node_new(struct parser *p, enum fp_kind kind)
{
	struct fp_node *n = calloc(1, sizeof(*n));
	if (!n) {
		perr(p, p->tstart, "out of memory");
		return NULL;
	}
	n->col = (int)p->tstart + 1;
	n->kind = kind;
	return n;
}

static void node_free(struct fp_node *n)
{
	if (!n)
		return;
	json_decref(n->lit);
	free(n->name);
	node_free(n->base);
	node_free(n->args[0]);
	node_free(n->args[1]);
	free(n);
}

struct fn_def {
	const char *name;
	enum fp_fn fn;
	int min, max;
};

static const struct fn_def fns[] = {
	{"where", FN_WHERE, 1, 1}, {"first", FN_FIRST, 0, 0}, {"last", FN_LAST, 0, 0},
	{"tail", FN_TAIL, 0, 0}, {"single", FN_SINGLE, 0, 0}, {"exists", FN_EXISTS, 0, 1},
	{"empty", FN_EMPTY, 0, 0}, {"count", FN_COUNT, 0, 0}, {"not", FN_NOT, 0, 0},
	{"hasValue", FN_HASVALUE, 0, 0}, {"ofType", FN_OFTYPE, 1, 1},
	{"extension", FN_EXTENSION, 1, 1}, {"resolve", FN_RESOLVE, 0, 0},
	{"replace", FN_REPLACE, 2, 2}, {"startsWith", FN_STARTSWITH, 1, 1},
	{"endsWith", FN_ENDSWITH, 1, 1}, {"substring", FN_SUBSTRING, 1, 2},
	{"length", FN_LENGTH, 0, 0}, {"lower", FN_LOWER, 0, 0}, {"upper", FN_UPPER, 0, 0},
	{"toString", FN_TOSTRING, 0, 0}, {"distinct", FN_DISTINCT, 0, 0},
};

static struct fp_node *parse_expr(struct parser *p);

/* ofType(T): T is a type name, optionally qualified (FHIR.Patient,
 * System.String); the last part is kept. */
static int parse_type_arg(struct parser *p, struct fp_node *n)
{
	if (p->t != T_IDENT)
		return perr(p, p->tstart, "expected a type name");
	for (;;) {
		free(n->name);
		n->name = p->tval;
		p->tval = NULL;
		if (lex(p) != 0)
			return -1;
		if (p->t != T_DOT)
			break;
		if (lex(p) != 0)
			return -1;
		if (p->t != T_IDENT)
			return perr(p, p->tstart, "expected a type name after '.'");
	}
	return 0;
}

/* Called with the function name as the current token, '(' next. */
static struct fp_node *parse_call(struct parser *p, struct fp_node *base)
{
	struct fp_node *n = node_new(p, FP_FUNC);
	const struct fn_def *def = NULL;
	size_t i, name_at = p->tstart;
	char name[64];

	if (!n)
		goto fail;
	n->base = base;
	base = NULL;
	snprintf(name, sizeof(name), "%s", p->tval);
	for (i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
		if (strcmp(fns[i].name, p->tval) == 0)
			def = &fns[i];
	if (!def) {
		perr(p, name_at, "unknown function '%s'", name);
		goto fail;
	}
	n->op = def->fn;
	if (lex(p) != 0 || lex(p) != 0) /* name, '(' */
		goto fail;
	if (def->fn == FN_OFTYPE) {
		if (parse_type_arg(p, n) != 0)
			goto fail;
		n->nargs = 1;
	} else if (p->t != T_RPAREN) {
		for (;;) {
			if (n->nargs == 2) {
				perr(p, p->tstart, "too many arguments to %s()", name);
				goto fail;
			}
			n->args[n->nargs] = parse_expr(p);
			if (!n->args[n->nargs])
				goto fail;
			n->nargs++;
			if (p->t != T_COMMA)
				break;
			if (lex(p) != 0)
				goto fail;
		}
	}
	if (p->t != T_RPAREN) {
		perr(p, p->tstart, "expected ')' to close the arguments of %s()", name);
		goto fail;
	}
	if (n->nargs < def->min || n->nargs > def->max) {
		char msg[96];
		if (def->min == def->max)
			snprintf(msg, sizeof(msg), "%s() takes %d argument%s", name, def->min,
				 def->min == 1 ? "" : "s");
		else
			snprintf(msg, sizeof(msg), "%s() takes %d to %d arguments", name,
				 def->min, def->max);
		perr(p, name_at, "%s", msg);
		goto fail;
	}
	if (lex(p) != 0)
		goto fail;
	return n;
fail:
	node_free(base);
	node_free(n);
	return NULL;
}

/* An identifier or a call, on base (NULL: the focus). Current token: the name. */
static struct fp_node *parse_invocation(struct parser *p, struct fp_node *base)
{
	struct fp_node *n;
	size_t save_pos = p->pos;

	/* Peek for '(' without consuming: only whitespace may separate them. */
	while (save_pos < p->len && (p->s[save_pos] == ' ' || p->s[save_pos] == '\t'))
		save_pos++;
	if (save_pos < p->len && p->s[save_pos] == '(' && p->s[p->tstart] != '`')
		return parse_call(p, base);
	n = node_new(p, FP_NAV);
	if (!n) {
		node_free(base);
		return NULL;
	}
	n->base = base;
	n->name = p->tval;
	p->tval = NULL;
	if (lex(p) != 0) {
		node_free(n);
		return NULL;
	}
	return n;
}

static struct fp_node *parse_primary(struct parser *p)
{
	struct fp_node *n = NULL;
	json_error_t je;

	switch (p->t) {
	case T_LPAREN:
		if (lex(p) != 0)
			return NULL;
		n = parse_expr(p);
		if (!n)
			return NULL;
		if (p->t != T_RPAREN) {
			perr(p, p->tstart, "expected ')'");
			node_free(n);
			return NULL;
		}
		break;
	case T_STRING:
		n = node_new(p, FP_LIT);
		if (n && !(n->lit = json_string(p->tval))) {
			perr(p, p->tstart, "string literal is not valid UTF-8");
			node_free(n);
			return NULL;
		}
		break;
	case T_NUMBER:
		n = node_new(p, FP_LIT);
		/* jansson's own number rules, so literals compare like tree values. */
		if (n && !(n->lit = json_loads(p->tval, JSON_DECODE_ANY, &je))) {
			perr(p, p->tstart, "number out of range");
			node_free(n);
			return NULL;
		}
		break;
	case T_LBRACE:
		if (lex(p) != 0)
			return NULL;
		if (p->t != T_RBRACE)
			return perr(p, p->tstart, "expected '}' (only {} is supported)"), NULL;
		n = node_new(p, FP_EMPTY);
		break;
	case T_DOLLAR_THIS:
		n = node_new(p, FP_THIS);
		break;
	case T_VAR:
		n = node_new(p, FP_VAR);
		if (!n)
			return NULL;
		if (strcmp(p->tval, "%resource") == 0 || strcmp(p->tval, "%rootResource") == 0)
			n->op = 0;
		else if (strcmp(p->tval, "%context") == 0)
			n->op = 1;
		else if (strcmp(p->tval, "%entry") == 0)
			n->op = 2;
		else {
			perr(p, p->tstart, "unknown variable '%s' (expected %%resource, %%context "
			     "or %%entry)",
			     p->tval);
			node_free(n);
			return NULL;
		}
		break;
	case T_IDENT:
		if (is_word(p, "true") || is_word(p, "false")) {
			n = node_new(p, FP_LIT);
			if (n)
				n->lit = json_boolean(is_word(p, "true"));
			break;
		}
		return parse_invocation(p, NULL);
	default:
		perr(p, p->tstart, "expected an expression");
		return NULL;
	}
	if (!n)
		return NULL;
	if (lex(p) != 0) {
		node_free(n);
		return NULL;
	}
	return n;
}

static struct fp_node *parse_postfix(struct parser *p)
{
	struct fp_node *n = parse_primary(p), *idx;

	while (n) {
		if (p->t == T_DOT) {
			if (lex(p) != 0)
				goto fail;
			if (p->t != T_IDENT) {
				perr(p, p->tstart, "expected a name or function after '.'");
				goto fail;
			}
			n = parse_invocation(p, n);
		} else if (p->t == T_LBRACK) {
			struct fp_node *ix = node_new(p, FP_INDEX);
			if (!ix || lex(p) != 0) {
				node_free(ix);
				goto fail;
			}
			ix->base = n;
			n = ix;
			idx = parse_expr(p);
			if (!idx)
				goto fail;
			n->args[0] = idx;
			n->nargs = 1;
			if (p->t != T_RBRACK) {
				perr(p, p->tstart, "expected ']'");
				goto fail;
			}
			if (lex(p) != 0)
				goto fail;
		} else {
			break;
		}
	}
	return n;
fail:
	node_free(n);
	return NULL;
}

static struct fp_node *parse_unary(struct parser *p)
{
	struct fp_node *n;

	if (p->t == T_PLUS || p->t == T_MINUS) {
		int neg = p->t == T_MINUS;
		if (lex(p) != 0)
			return NULL;
		if (++p->depth > FHIRPATH_MAX_DEPTH) {
			perr(p, p->tstart, "expression nested deeper than %s levels", "64");
			return NULL;
		}
		n = parse_unary(p);
		p->depth--;
		if (!n || !neg)
			return n;
		struct fp_node *m = node_new(p, FP_NEG);
		if (!m) {
			node_free(n);
			return NULL;
		}
		m->base = n;
		return m;
	}
	return parse_postfix(p);
}

/* Binary levels, loosest first; each entry lists its operators. */
enum { LV_IMPLIES, LV_OR, LV_AND, LV_MEMBER, LV_EQ, LV_UNION, LV_ADD, LV_COUNT };

static int op_at(struct parser *p, int level, int *op)
{
	switch (level) {
	case LV_IMPLIES:
		if (is_word(p, "implies")) return *op = OP_IMPLIES, 1;
		return 0;
	case LV_OR:
		if (is_word(p, "or")) return *op = OP_OR, 1;
		if (is_word(p, "xor")) return *op = OP_XOR, 1;
		return 0;
	case LV_AND:
		if (is_word(p, "and")) return *op = OP_AND, 1;
		return 0;
	case LV_MEMBER:
		if (is_word(p, "in")) return *op = OP_IN, 1;
		if (is_word(p, "contains")) return *op = OP_CONTAINS, 1;
		return 0;
	case LV_EQ:
		if (p->t == T_EQ) return *op = OP_EQ, 1;
		if (p->t == T_NE) return *op = OP_NE, 1;
		return 0;
	case LV_UNION:
		if (p->t == T_PIPE) return *op = OP_UNION, 1;
		return 0;
	case LV_ADD:
		if (p->t == T_PLUS) return *op = OP_PLUS, 1;
		if (p->t == T_MINUS) return *op = OP_MINUS, 1;
		if (p->t == T_AMP) return *op = OP_AMP, 1;
		return 0;
	}
	return 0;
}

static struct fp_node *parse_level(struct parser *p, int level)
{
	struct fp_node *lhs, *n;
	int op;

	if (level == LV_COUNT)
		return parse_unary(p);
	lhs = parse_level(p, level + 1);
	while (lhs && op_at(p, level, &op)) {
		n = node_new(p, FP_BIN);
		if (!n || lex(p) != 0) {
			node_free(n);
			break;
		}
		n->op = op;
		n->base = lhs;
		lhs = n;
		n->args[0] = parse_level(p, level + 1);
		n->nargs = 1;
		if (!n->args[0])
			break;
	}
	if (p->failed) {
		node_free(lhs);
		return NULL;
	}
	return lhs;
}

static struct fp_node *parse_expr(struct parser *p)
{
	struct fp_node *n;

	if (++p->depth > FHIRPATH_MAX_DEPTH) {
		perr(p, p->tstart, "expression nested deeper than %s levels", "64");
		return NULL;
	}
	n = parse_level(p, LV_IMPLIES);
	p->depth--;
	return n;
}

fhirpath_t *fhirpath_compile(const char *expr, size_t len, fhirpath_error_t *err)
{
	struct parser p;
	fhirpath_t *fp = NULL;

	memset(&p, 0, sizeof(p));
	p.s = expr;
	p.len = len;
	p.err = err;
	if (err) {
		err->column = 0;
		err->text[0] = '\0';
	}
	if (len > FHIRPATH_MAX_LEN) {
		perr(&p, 0, "expression longer than %s bytes", "4096");
		return NULL;
	}
	fp = calloc(1, sizeof(*fp));
	if (!fp || !(fp->text = strndup(expr, len))) {
		perr(&p, 0, "out of memory");
		goto fail;
	}
	if (strlen(fp->text) != len) {
		perr(&p, strlen(fp->text), "NUL character in expression");
		goto fail;
	}
	if (lex(&p) != 0)
		goto fail;
	fp->root = parse_expr(&p);
	if (!fp->root)
		goto fail;
	if (p.t != T_END) {
		perr(&p, p.tstart, "expected an operator or the end of the expression");
		goto fail;
	}
	free(p.tval);
	return fp;
fail:
	free(p.tval);
	fhirpath_free(fp);
	return NULL;
}

void fhirpath_free(fhirpath_t *fp)
{
	if (!fp)
		return;
	node_free(fp->root);
	free(fp->text);
	free(fp);
}

const char *fhirpath_text(const fhirpath_t *fp)
{
	return fp->text;
}

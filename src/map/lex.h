/* lex — tokens of mapping (.map) and table (.tbl) files. */
#ifndef HB_MAP_LEX_H
#define HB_MAP_LEX_H

#include <stddef.h>

enum map_tok {
	T_EOF,
	T_NL,      /* end of a line (comments are dropped) */
	T_STR,     /* "…" or '…' (p/len without the quotes, escapes still in) */
	T_NUM,     /* 123, 1.5 */
	T_WORD,    /* a path, target, keyword or name: PID-3[where .5 = "MR"].1, data.x[] */
	T_FUNC,    /* a plain name directly followed by '(' (the '(' is the next token) */
	T_OP,      /* = != ?? + ( ) , { } */
	T_ENTRY,   /* a table line: key in p/len, value in p2/len2 */
	T_RAW,     /* the rest of a `use` line */
};

struct map_token {
	enum map_tok kind;
	const char *p;
	size_t len;
	const char *p2;
	size_t len2;
	int line, col;
};

struct map_lexed {
	struct map_token *v;
	size_t n;
	/* first error, if any */
	int err_line, err_col;
	char err[160];
};

/* Tokenize a whole file. Returns 0, or -1 with the error position filled
 * (the tokens up to it are kept). free(lx->v) when done. */
int map_lex(const char *text, size_t len, struct map_lexed *lx);

/* Is the token the word w? */
int map_tok_is(const struct map_token *t, const char *w);

#endif

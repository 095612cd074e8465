/* compile_int — the parser state shared by compile.c (files, rules,
 * targets) and compile_expr.c (expressions). */
#ifndef HB_MAP_COMPILE_INT_H
#define HB_MAP_COMPILE_INT_H

#include <string.h>

#include <openssl/evp.h>

#include "map/lex.h"
#include "map/map_int.h"

#define MAP_MAX_RULES 512
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
	const char *block_target; /* the array the block builds, for messages */
	int header;         /* topic/key: names of targets and `type` are references */
	EVP_MD_CTX *hash;
};

/* Report an error at token t (column + coloff); returns -1. */
int map_perr(struct parser *P, const struct map_token *t, int coloff, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Out of memory is an error like any other: these allocate from the set's
 * pool (zeroed) and, when it is exhausted, report "out of memory" at the
 * current token and return NULL (map_pown: -1, h freed); the caller then
 * returns its error. Nothing in the compiler calls map_pool_* directly. */
void *map_palloc(struct parser *P, size_t size);
char *map_pstr(struct parser *P, const char *s, size_t len);
/* The set frees the adapter handle h (a path of P->m->ops) when it goes. */
int map_pown(struct parser *P, void *h);
const struct map_table *map_find_table(struct parser *P, const char *name, size_t len);
/* Skip newlines when the statement continues on the next line. */
void map_skip_cont(struct parser *P);
void map_skip_nl(struct parser *P);
/* compile.c: resolve a target (see there). */
int map_resolve_target(struct parser *P, const struct map_token *t, const struct map_field *root,
		       const struct map_field **path, size_t *depth, int *append, int for_ref);
/* compile_expr.c */
struct map_expr *map_parse_expr(struct parser *P);
struct map_expr *map_parse_line_expr(struct parser *P, enum map_etype type, const char *what);
int map_end_of_line(struct parser *P);

static inline struct map_token *cur(struct parser *P) { return &P->t[P->i]; }
static inline int is_op(const struct map_token *t, const char *op)
{
	return t->kind == T_OP && t->len == strlen(op) && memcmp(t->p, op, t->len) == 0;
}

#endif

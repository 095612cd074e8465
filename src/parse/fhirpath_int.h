/* fhirpath internals: the compiled tree shared by the compiler and the
 * evaluator. */
#ifndef HB_FHIRPATH_INT_H
#define HB_FHIRPATH_INT_H

#include "parse/fhirpath.h"

enum fp_kind {
	FP_LIT,   /* lit */
	FP_EMPTY, /* {} */
	FP_THIS,  /* $this */
	FP_VAR,   /* %resource (op 0), %context (op 1), %entry (op 2) */
	FP_NAV,   /* name, on base or the focus */
	FP_FUNC,  /* op = enum fp_fn, on base or the focus */
	FP_INDEX, /* base[args[0]] */
	FP_BIN,   /* base <op> args[0] */
	FP_NEG,   /* -base */
};

enum fp_fn {
	FN_WHERE, FN_FIRST, FN_LAST, FN_TAIL, FN_SINGLE, FN_EXISTS, FN_EMPTY, FN_COUNT,
	FN_NOT, FN_HASVALUE, FN_OFTYPE, FN_EXTENSION, FN_RESOLVE, FN_REPLACE,
	FN_STARTSWITH, FN_ENDSWITH, FN_SUBSTRING, FN_LENGTH, FN_LOWER, FN_UPPER,
	FN_TOSTRING, FN_DISTINCT,
};

enum fp_op {
	OP_EQ, OP_NE, OP_AND, OP_OR, OP_XOR, OP_IMPLIES, OP_IN, OP_CONTAINS,
	OP_UNION, OP_PLUS, OP_MINUS, OP_AMP,
};

struct fp_node {
	enum fp_kind kind;
	int op;
	int col;
	json_t *lit;
	char *name;
	struct fp_node *base;
	struct fp_node *args[2];
	int nargs;
};

struct fhirpath {
	struct fp_node *root;
	char *text;
};

/* ---- evaluator internals shared by fhirpath_eval.c and fhirpath_fn.c ---- */

typedef fhirpath_result_t coll_t;

struct fp_ev {
	const fhirpath_ctx_t *ctx;
	const fhirpath_item_t *context; /* %context: the focus of the evaluation */
	fhirpath_error_t *err;
};

/* Every helper returns 0 or -1 with ev->err filled. */
int fp_everr(struct fp_ev *ev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append an item, taking new references to value and ext. */
int fp_push(struct fp_ev *ev, coll_t *c, json_t *value, json_t *ext, const char *type);
int fp_push_item(struct fp_ev *ev, coll_t *c, const fhirpath_item_t *it);
/* Append a value the caller created (steals it; NULL means out of memory). */
int fp_push_new(struct fp_ev *ev, coll_t *c, json_t *value, const char *type);
int fp_push_bool(struct fp_ev *ev, coll_t *c, int b);
int fp_type_matches(const fhirpath_item_t *it, const char *want);
/* Singleton boolean: *out -1 empty, 0 false, 1 true. */
int fp_truth(struct fp_ev *ev, const coll_t *c, int *out, const char *what);
int fp_coll_has(const coll_t *c, json_t *v);
/* The single string of c: 1 found, 0 empty, -1 error. */
int fp_single_str(struct fp_ev *ev, const coll_t *c, const char **s, const char *fn);
int fp_eval(const struct fp_node *n, struct fp_ev *ev, const coll_t *focus, coll_t *out);
json_t *fp_resolve_ref(struct fp_ev *ev, const char *ref);
json_t *fp_str_replace_all(const char *s, const char *pat, const char *rep);
size_t fp_utf8_len(const char *s);
const char *fp_utf8_at(const char *s, size_t cp);
/* Functions (fhirpath_fn.c): input is the collection the function applies
 * to, focus the one its non-lambda arguments are evaluated on. */
int fp_eval_fn(const struct fp_node *n, struct fp_ev *ev, const coll_t *focus,
	       const coll_t *input, coll_t *out);

#endif

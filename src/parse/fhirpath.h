/* fhirpath — a FHIRPath subset over the FHIR tree of fhir.h.
 *
 * Compile once (fhirpath_compile), evaluate many times (fhirpath_eval) on any
 * resource or element, from any thread: a compiled expression is immutable.
 *
 * Supported: navigation (with choice elements: `value` finds valueQuantity),
 * a leading type name (`Patient.name` on a Patient), indexers `[n]`,
 * literals ('string', integers, decimals, true/false, {}), $this, %resource,
 * %context, %entry (the resource's Bundle entry; empty outside a Bundle),
 * parentheses; operators `=`, `!=`, `and`, `or`, `xor`, `implies`,
 * `in`, `contains`, `|` and `+` (numbers, strings), `&` (string concatenation);
 * functions where(), first(), last(), tail(), single(), exists([crit]),
 * empty(), count(), not(), hasValue(), ofType(T), extension(url), resolve(),
 * replace(a, b), startsWith(s), endsWith(s), substring(start[, len]),
 * length(), lower(), upper(), toString(), distinct().
 *
 * resolve() finds, in this order: `#id` among the contained resources of
 * ctx->resource; a Bundle entry whose fullUrl equals the reference; a Bundle
 * entry (or contained resource) with the same `Type/id` (a `_history/..`
 * suffix and a leading base URL are ignored).
 */
#ifndef HB_FHIRPATH_H
#define HB_FHIRPATH_H

#include <stddef.h>
#include <jansson.h>

/* Longest expression accepted; deeper nesting than this is refused too. */
#define FHIRPATH_MAX_LEN   4096
#define FHIRPATH_MAX_DEPTH 64

typedef struct fhirpath fhirpath_t;

typedef struct fhirpath_error {
	int column;     /* 1-based column in the expression; 0 for evaluation errors */
	char text[160]; /* e.g. "expected ')' to close the argument list" */
} fhirpath_error_t;

/* One item of a result collection. value and ext each hold a reference
 * (released by fhirpath_result_clear), so items outlive the tree they came
 * from. value is JSON null for a primitive that has only an id/extension;
 * ext is the primitive's `_name` object or NULL. type is the element's FHIR
 * type when the type table knows it ("HumanName", "string", "Quantity"),
 * else NULL (resources are typed by their resourceType); static storage. */
typedef struct fhirpath_item {
	json_t *value;
	json_t *ext;
	const char *type;
} fhirpath_item_t;

typedef struct fhirpath_result {
	fhirpath_item_t *items;
	size_t count;
	size_t cap;
} fhirpath_result_t;

/* Evaluation context. resource is the resource being mapped (%resource, and
 * where `#id` references are looked up); bundle, if not NULL, the enclosing
 * Bundle for resolve(); entry, if not NULL, the resource's Bundle entry
 * (%entry: fullUrl, request, response). All borrowed. */
typedef struct fhirpath_ctx {
	json_t *resource;
	json_t *bundle;
	json_t *entry;
} fhirpath_ctx_t;

/* Compile expr (len bytes, need not be NUL-terminated). Returns NULL with
 * err->column and err->text on a syntax error, an unknown function or a
 * wrong argument count. */
fhirpath_t *fhirpath_compile(const char *expr, size_t len, fhirpath_error_t *err);
void fhirpath_free(fhirpath_t *fp);
/* The source text it was compiled from. */
const char *fhirpath_text(const fhirpath_t *fp);

/* Evaluate on `focus` (NULL: ctx->resource). `focus` may be any element of
 * the tree, e.g. one identifier of an array rule. The result collection is
 * cleared first; on error (-1) it is left empty and err->text says why
 * (err->column is 0). Returns 0 on success. */
int fhirpath_eval(const fhirpath_t *fp, const fhirpath_ctx_t *ctx, json_t *focus,
		  fhirpath_result_t *out, fhirpath_error_t *err);
/* Same, with the focus given as an item (keeps a primitive's extensions and
 * its type), e.g. one item of a previous result. */
int fhirpath_eval_item(const fhirpath_t *fp, const fhirpath_ctx_t *ctx,
		       const fhirpath_item_t *focus, fhirpath_result_t *out,
		       fhirpath_error_t *err);

void fhirpath_result_init(fhirpath_result_t *r);
/* Release every item's reference and the storage; r may be reused. */
void fhirpath_result_clear(fhirpath_result_t *r);

/* String form of a primitive item: strings as they are (no copy, valid while
 * the item is), booleans "true"/"false", integers and decimals in shortest
 * round-trip form written into buf. NULL for objects, arrays, JSON null, or
 * a buf too small. */
const char *fhirpath_item_str(const fhirpath_item_t *it, char *buf, size_t size);

/* The first item's string form, or NULL if the result is empty or the first
 * item is not a primitive. */
const char *fhirpath_result_str(const fhirpath_result_t *r, char *buf, size_t size);

#endif

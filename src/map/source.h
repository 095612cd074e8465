/* source — what the mapping language needs from an input format.
 *
 * The compiler and evaluator (mapping.c, expr.c) know nothing about HL7v2 or
 * FHIR. A source adapter turns the path text an analyst wrote on the right of
 * a rule (`PID-3[where .5 = "MR"].1`, `subject.resolve().identifier.value`)
 * into a compiled handle once, at load time, and evaluates it per message in
 * a *scope*: the whole message, one segment group of `each ORC`, or one item
 * of an array rule's `each PID-3 { … }`.
 *
 * Values handed back are UTF-8, already unescaped, and live in the arena of
 * the call (or in memory that outlives it, such as the input tree).
 */
#ifndef HB_MAP_SOURCE_H
#define HB_MAP_SOURCE_H

#include <stddef.h>
#include <stdint.h>

/* ---- per-call bump allocator ------------------------------------------- */

/* Everything one map_apply() computes (values, unescaped strings, scopes)
 * comes from one arena, released at once when the call ends, so evaluating a
 * rule costs no malloc/free pair. Chunks grow; nothing is freed singly. */
struct map_arena_chunk;
struct map_arena {
	struct map_arena_chunk *head;
	size_t used_total; /* bytes handed out, for the per-message limit */
	size_t limit;      /* MAP_ARENA_LIMIT unless set */
};

/* A message whose mapping needs more scratch than this is refused: no HL7 or
 * FHIR message we map comes near it, a hostile one could. */
#define MAP_ARENA_LIMIT (64u * 1024 * 1024)

void map_arena_init(struct map_arena *a);
void map_arena_clear(struct map_arena *a);
/* Keep the first chunk, forget its contents (reuse across messages). */
void map_arena_reset(struct map_arena *a);
/* NULL when the limit is reached or memory is out. */
void *map_arena_alloc(struct map_arena *a, size_t size);
/* Copy (s, len) and NUL-terminate it. */
char *map_arena_strndup(struct map_arena *a, const char *s, size_t len);

/* ---- values ---------------------------------------------------------------- */

/* One value: NUL-terminated UTF-8 of length len. origin is the source text
 * (path or literal) it came from, for --explain; static for the set's life. */
struct map_val {
	const char *s;
	size_t len;
	const char *origin;
};

/* A list of values, grown in the arena. Empty strings are never added: an
 * empty HL7 component and an absent one mean the same to a mapping. */
struct map_vals {
	struct map_val *v;
	size_t n, cap;
};

/* Append (s, len); s must stay valid for the call (arena or input). Returns 0
 * or -1 (arena exhausted). Empty values are silently skipped. */
int map_vals_add(struct map_arena *a, struct map_vals *out, const char *s, size_t len,
		 const char *origin);

/* ---- adapters ---------------------------------------------------------------- */

struct map_srcerr {
	size_t column;  /* 1-based column inside the path text; 0: unknown */
	char msg[160];  /* names positions and paths, never values */
};

/* Called by each() once per item with the item's scope; non-zero stops. */
typedef int (*map_each_cb)(void *scope, void *arg);

struct map_source_ops {
	const char *name; /* as written after `source`: "hl7v2", "fhir" */

	/* Compile the path text (len bytes, not NUL-terminated). Returns a handle
	 * or NULL with err filled. */
	void *(*compile)(const char *text, size_t len, struct map_srcerr *err);
	void (*free)(void *path);
	/* 1 if the path is relative to an `each` item (`.1` in HL7); those are
	 * refused outside an each-block. */
	int (*is_relative)(const void *path);
	/* 1 if the path can drive the `each` header (one event per group). */
	int (*can_group)(const void *path);

	/* Append the path's non-empty values in scope to out. Returns 0, or -1
	 * with errstr (a position or path, never a value). */
	int (*eval)(void *scope, const void *path, struct map_arena *a, struct map_vals *out,
		    char *errstr, size_t errstr_size);
	/* Optional: 1 if the path names anything in scope (even items without a
	 * string form, such as FHIR elements), 0 if not, -1 on error. NULL:
	 * exists() asks eval for a non-empty value. */
	int (*exists)(void *scope, const void *path, struct map_arena *a, char *errstr,
		      size_t errstr_size);
	/* Call cb for every item the path names in scope: repetitions of a
	 * field, segment groups of a segment id, elements of a FHIR collection.
	 * Returns -1 on error (errstr filled), else the last cb result (0 when
	 * all items were visited). */
	int (*each)(void *scope, const void *path, struct map_arena *a, map_each_cb cb,
		    void *arg, char *errstr, size_t errstr_size);
};

#endif

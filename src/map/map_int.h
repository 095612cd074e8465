/* map_int — structures shared by the map module's files; not for callers. */
#ifndef HB_MAP_INT_H
#define HB_MAP_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <avro.h>
#include <jansson.h>

#include "map/map.h"
#include "map/source.h"

/* ---- schemas (schema.c) ----------------------------------------------------- */

enum map_ftype {
	MF_STRING = 0,
	MF_RECORD = 1,
	MF_ARRAY = 2,
};

/* A field of an event schema, as the language sees it: strings, records,
 * arrays of strings or records; each possibly nullable. */
struct map_field {
	char *name;                  /* an Avro name: [A-Za-z_][A-Za-z0-9_]*, never escaped */
	size_t name_len;
	enum map_ftype type;
	int nullable;
	int automatic;               /* eventId, eventType, timestamp, lineage: set by the bridge */
	enum map_ftype item;         /* MF_ARRAY: MF_STRING or MF_RECORD */
	struct map_field *fields;    /* MF_RECORD, or MF_ARRAY of MF_RECORD */
	size_t nfields;
};

struct map_schema {
	char *event;                 /* `event` name: "prescription" for PrescriptionEvent */
	char *fullname;              /* com.covermymeds.healthcare.PrescriptionEvent */
	char *text;                  /* the .avsc as read */
	char *file;
	struct map_field root;       /* MF_RECORD */
	/* Avro (avro-c), built at load; the value is reused by the encoder,
	 * one thread at a time (value_mu). */
	avro_schema_t avro;
	avro_value_iface_t *iface;
	avro_value_t value;
	int value_ok;
	pthread_mutex_t value_mu;
};

/* Load one .avsc; NULL with errstr. */
struct map_schema *map_schema_load(const char *path, char *errstr, size_t errstr_size);
void map_schema_free(struct map_schema *sc);
const struct map_field *map_field_find(const struct map_field *rec, const char *name,
				       size_t len);

/* ---- event trees (node.c) ------------------------------------------------------- */

enum map_nkind { MN_NULL = 0, MN_STR, MN_REC, MN_ARR };

/* A value in an event: a string, null, a record (kids = its fields in
 * schema order) or an array (kids = items; items of an array of records are
 * MN_REC nodes whose fields are the array field's). Lives in the arena. */
struct map_node {
	enum map_nkind kind;
	const char *s;
	size_t len;
	struct map_node *kids;
	size_t n, cap;
};

/* n becomes a record of rec with every field at its default. 0 or -1. */
int map_node_record(struct map_arena *a, const struct map_field *rec, struct map_node *n);
/* The node of field f (a field of parent) inside record node rec. */
struct map_node *map_node_child(struct map_node *rec, const struct map_field *parent,
				const struct map_field *f);
/* A new (MN_NULL) item at the end of array node arr; NULL when out of memory. */
struct map_node *map_node_append(struct map_arena *a, struct map_node *arr);
void map_node_str(struct map_node *n, const char *s, size_t len);
/* Compact JSON of record node n (heap; caller frees). */
char *map_node_json(const struct map_field *root, const struct map_node *n, size_t *len);
/* The same into *buf (grown with realloc; *cap is its size, both kept on
 * failure too): the length (a NUL follows), or -1 (memory). */
ssize_t map_node_json_to(const struct map_field *root, const struct map_node *n, char **buf,
			 size_t *cap);
/* The same as a jansson value (new reference). */
json_t *map_node_to_jansson(const struct map_field *f, const struct map_node *n);

/* ---- expressions (expr.c) ----------------------------------------------------- */

enum map_etype { ET_STRING = 0, ET_BOOL = 1, ET_TABLE = 2 };

enum map_op {
	OP_LIT,      /* str */
	OP_PATH,     /* src */
	OP_TREF,     /* target reference (topic/key): tref */
	OP_TYPE,     /* the event type (topic/key) */
	OP_TABLE,    /* a table name (lookup's second argument) */
	OP_CONCAT,   /* a + b */
	OP_COALESCE, /* a ?? b */
	OP_CALL,     /* fn(args) */
	OP_EQ, OP_NE, OP_IN, OP_AND, OP_OR, OP_NOT,
};

/* Most arguments of a call, values of `in (…)` and `each` alternatives. */
#define MAP_MAX_ARGS 16

struct map_table;
struct map_func;

struct map_expr {
	enum map_op op;
	enum map_etype type;
	const struct map_func *fn;   /* OP_CALL: its row of map_functions[] */
	const char *text;            /* source text of this node (paths, literals), for errors/explain */
	const char *str;             /* OP_LIT value */
	size_t len;
	void *src;                   /* OP_PATH: the adapter's handle */
	const struct map_table *table;
	const struct map_field *const *tref; /* OP_TREF: field path, NULL-terminated */
	struct map_expr **args;      /* operands and arguments */
	size_t nargs;
	int line, col;
};

struct map_table {
	char *name;
	char **keys, **vals;
	size_t n;
};
const char *map_table_get(const struct map_table *t, const char *key, size_t len);

/* ---- mappings (all in the set's pool) ------------------------------------------ */

struct map_rule {
	const struct map_field **path; /* target path from the event root (or each item) */
	size_t depth;
	char *target;                  /* as written, e.g. data.identifiers[] */
	char *src_text;                /* the expression or each path as written (one line) */
	int append;                    /* `[]` target */
	int required;
	struct map_expr *expr;         /* value (NULL for each-blocks) */
	void *each;                    /* each-block: the source path */
	void **each_alt;               /* `each A ?? B ?? C`: B, C (tried when A names nothing) */
	size_t neach_alt;
	const char *each_text;         /* the whole source, alternatives and prefer */
	int one;                       /* a record target: one item, the preferred or the first */
	struct map_expr *prefer;       /* `prefer KEY in (V1, V2, …)`: OP_IN, in the item's scope */
	struct map_rule *sub;          /* each-block rules (relative to the item record) */
	size_t nsub;
	int line, col;
};

struct map_mapping {
	char *name;
	char *file;
	char hash[65];
	const struct map_source_ops *ops;
	struct map_expr *when;         /* NULL: always */
	void *each;                    /* NULL: one event per message */
	const char *each_text;
	const struct map_schema *schema;
	struct map_expr *type, *topic, *key;
	struct map_rule *rules;
	size_t nrules;
	struct map_table **tables;     /* inline tables */
	size_t ntables;
	struct map_table **used;       /* tables in scope (owned by the set or inline) */
	size_t nused;
};

/* A table file, loaded once per set: its tables are tables[first, first+count). */
struct map_tfile {
	char *rel;
	const char *text;
	size_t len;
	size_t first, count;
};

#define MAP_MAX_SHARED_TABLES 256
#define MAP_MAX_TABLE_FILES 64

struct map_set {
	struct map_mapping **maps;
	size_t nmaps;
	struct map_schema **schemas;
	size_t nschemas;
	struct map_table **tables;     /* shared tables from `use` files (MAP_MAX_SHARED_TABLES) */
	size_t ntables;
	struct map_tfile *tfiles;      /* table files loaded so far (MAP_MAX_TABLE_FILES) */
	size_t ntfiles;
	struct map_strpool *pool;      /* texts and AST nodes */
	char topic_prefix[64];
};

/* Evaluation environment for one event. */
struct map_env {
	struct map_arena *arena;
	const struct map_source_ops *ops;
	void *scope;
	const struct map_node *event;  /* for target references */
	const struct map_field *event_root;
	const char *type;              /* event type once known */
	char *errstr;
	size_t errstr_size;
	int err_code;                  /* 0357 code when evaluation rejects */
};

/* Evaluate a string expression into out (may stay empty). -1 with env->errstr. */
int map_expr_eval(struct map_env *env, const struct map_expr *e, struct map_vals *out);
/* Evaluate a condition: 1 true, 0 false, -1 error. */
int map_expr_test(struct map_env *env, const struct map_expr *e);
/* Helpers of expr.c for the functions: evaluate e into the fresh list v;
 * append to out (-1 with the error when the arena is full); reject with a
 * 0357 code; the path text a value came from, for messages. */
int map_eval_arg(struct map_env *env, const struct map_expr *e, struct map_vals *v);
int map_eval_add(struct map_env *env, struct map_vals *out, const char *s, size_t len,
		 const char *origin);
int map_eval_fail(struct map_env *env, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int map_eval_oom(struct map_env *env);
const char *map_eval_origin(const struct map_expr *e);

/* ---- built-in functions (functions.c) ------------------------------------------- */

/* How map_set_types/topics (enumerate.c) list the values of a call. */
enum map_fn_values {
	MFV_NONE = 0,     /* not listable */
	MFV_TABLE,        /* the values of the table (argument 2), then argument 3 */
	MFV_BRANCHES,     /* argument 2, then argument 3 */
	MFV_LOWER,        /* argument 1's values in lower case */
	MFV_UPPER,        /* argument 1's values in upper case */
};

/* A built-in function: one row of map_functions[] is the whole definition.
 * The compiler checks calls against it; a call of a value function runs
 * eval, a call of a condition function (exists) runs test. */
struct map_func {
	const char *name;
	int min, max;                /* number of arguments */
	int arg2_table;              /* the second argument names a table (lookup) */
	int arg1_cond;               /* the first argument is a condition (if) */
	const char *needs_table;     /* a table the mapping must have in scope (codesystem) */
	enum map_fn_values values;
	int (*eval)(struct map_env *env, const struct map_expr *e, struct map_vals *out);
	int (*test)(struct map_env *env, const struct map_expr *e);
};

/* The function called name, or NULL. */
const struct map_func *map_func_find(const char *name, size_t len);
/* "datetime, date, …": every function's name, for messages. */
void map_func_names(char *buf, size_t size);

/* pick.c: the item an each-block over a record takes: 1 with the
 * alternative (0: the first path) and the item's position in it, 0 when no
 * alternative names an item, -1 with env->errstr. */
int map_pick(struct map_env *env, const struct map_rule *r, size_t *alt, size_t *index);
/* The rule's each path number alt (0 the first, then the ?? alternatives), or NULL. */
void *map_rule_each_path(const struct map_rule *r, size_t alt);

/* event.c: UUIDv5 in the hl7bridge namespace over name; -1 when out of memory. */
int map_uuid5(char out[37], const void *name, size_t len);

/* HL7 DTM / TS → ISO 8601 (dt=1) or date only (dt=0). Returns length or -1. */
int map_fmt_datetime(const char *s, size_t len, int dt, char *out, size_t size);

/* Registry of adapters, by the name written after `source`. */
const struct map_source_ops *map_source_find(const char *name, size_t len);
/* Tests register an adapter of their own. */
void map_source_register_test(const struct map_source_ops *ops);

/* ---- the string/node pool of a set ---------------------------------------------- */
struct map_strpool;
struct map_strpool *map_pool_new(void);
void map_pool_free(struct map_strpool *p);
void *map_pool_alloc(struct map_strpool *p, size_t size); /* zeroed */
/* The pool frees the adapter handle with ops->free when the set goes. */
int map_pool_own_handle(struct map_strpool *p, const struct map_source_ops *ops, void *h);
char *map_pool_strndup(struct map_strpool *p, const char *s, size_t len);
/* Tests: the calling thread's pool allocations fail after n more succeed
 * (n < 0: never), to check that out of memory is an error everywhere. */
void map_pool_test_fail_after(long n);

/* compile.c: one file into a mapping (or its first error into d). Everything
 * it allocates belongs to set->pool. */
struct map_mapping *map_compile(struct map_set *set, const char *file, const char *text,
				size_t len, const char *root_dir, struct map_diag *d);
/* diag.c helpers */
void map_diag_add(struct map_diag *d, const char *file, const char *text, size_t len, int line,
		  int col, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

#endif

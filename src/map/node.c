/* node — events as the evaluator builds them: a tree of strings, records and
 * arrays laid out like the schema (a record's children are its fields, in
 * schema order), allocated in the call's arena. Writing JSON and Avro from
 * it costs one pass and no per-field allocation; a jansson tree is built
 * only when a caller asks for one (tools, tests). */
#include "map/map_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static struct map_node *kids_alloc(struct map_arena *a, size_t n)
{
	return map_arena_alloc(a, (n ? n : 1) * sizeof(struct map_node));
}

static int node_default(struct map_arena *a, const struct map_field *f, struct map_node *n)
{
	memset(n, 0, sizeof(*n));
	if (f->nullable) {
		n->kind = MN_NULL;
		return 0;
	}
	switch (f->type) {
	case MF_STRING:
		n->kind = MN_STR;
		n->s = "";
		return 0;
	case MF_ARRAY:
		n->kind = MN_ARR;
		return 0;
	case MF_RECORD:
		return map_node_record(a, f, n);
	}
	return 0;
}

int map_node_record(struct map_arena *a, const struct map_field *rec, struct map_node *n)
{
	memset(n, 0, sizeof(*n));
	n->kind = MN_REC;
	n->n = rec->nfields;
	if (!(n->kids = kids_alloc(a, rec->nfields)))
		return -1;
	for (size_t i = 0; i < rec->nfields; i++)
		if (node_default(a, &rec->fields[i], &n->kids[i]))
			return -1;
	return 0;
}

struct map_node *map_node_child(struct map_node *rec, const struct map_field *parent,
				const struct map_field *f)
{
	return &rec->kids[f - parent->fields];
}

struct map_node *map_node_append(struct map_arena *a, struct map_node *arr)
{
	if (arr->n == arr->cap) {
		size_t ncap = arr->cap ? arr->cap * 2 : 4;
		struct map_node *k = kids_alloc(a, ncap);
		if (!k)
			return NULL;
		if (arr->n)
			memcpy(k, arr->kids, arr->n * sizeof(*k));
		arr->kids = k;
		arr->cap = ncap;
	}
	struct map_node *n = &arr->kids[arr->n++];
	memset(n, 0, sizeof(*n));
	return n;
}

void map_node_str(struct map_node *n, const char *s, size_t len)
{
	n->kind = MN_STR;
	n->s = s;
	n->len = len;
}

/* ---- JSON ------------------------------------------------------------------------ */

struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static void sb_grow_slow(struct sbuf *b, size_t more)
{
	if (!b->oom && util_reserve(&b->p, &b->cap, b->len + more, 1024) != 0)
		b->oom = 1;
}

static inline void sb_grow(struct sbuf *b, size_t more)
{
	if (b->len + more > b->cap)
		sb_grow_slow(b, more);
}

/* Inlined: most pieces are a quote, a comma or a colon. */
static inline void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n > b->cap) {
		sb_grow_slow(b, n);
		if (b->oom)
			return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void sb_put_cb(void *ctx, const char *p, size_t n)
{
	sb_put(ctx, p, n);
}

/* A JSON string: the values are valid UTF-8 (sources guarantee it). */
static void sb_str(struct sbuf *b, const char *s, size_t n)
{
	sb_grow(b, n + 2);
	util_json_quote(s, n, sb_put_cb, b);
}

static void json_node(struct sbuf *b, const struct map_field *f, enum map_ftype type,
		      const struct map_node *n)
{
	switch (n->kind) {
	case MN_NULL:
		sb_put(b, "null", 4);
		return;
	case MN_STR:
		sb_str(b, n->s, n->len);
		return;
	case MN_REC:
		sb_put(b, "{", 1);
		for (size_t i = 0; i < f->nfields; i++) {
			if (i)
				sb_put(b, ",", 1);
			sb_put(b, "\"", 1);
			sb_put(b, f->fields[i].name, f->fields[i].name_len);
			sb_put(b, "\":", 2);
			json_node(b, &f->fields[i], f->fields[i].type, &n->kids[i]);
		}
		sb_put(b, "}", 1);
		return;
	case MN_ARR:
		sb_put(b, "[", 1);
		for (size_t i = 0; i < n->n; i++) {
			if (i)
				sb_put(b, ",", 1);
			/* items of an array of records share the array's field list */
			json_node(b, f, f->item, &n->kids[i]);
		}
		sb_put(b, "]", 1);
		return;
	}
	(void)type;
}

ssize_t map_node_json_to(const struct map_field *root, const struct map_node *n, char **buf,
			 size_t *cap)
{
	struct sbuf b = { *buf, 0, *cap, 0 };
	json_node(&b, root, MF_RECORD, n);
	sb_put(&b, "", 1);
	*buf = b.p;
	*cap = b.cap;
	return b.oom ? -1 : (ssize_t)b.len - 1;
}

char *map_node_json(const struct map_field *root, const struct map_node *n, size_t *len)
{
	char *p = NULL;
	size_t cap = 0;
	ssize_t l = map_node_json_to(root, n, &p, &cap);
	if (l < 0) {
		free(p);
		return NULL;
	}
	if (len)
		*len = (size_t)l;
	return p;
}

json_t *map_node_to_jansson(const struct map_field *f, const struct map_node *n)
{
	json_t *o = NULL;
	switch (n->kind) {
	case MN_NULL:
		return json_null();
	case MN_STR:
		return json_stringn(n->s, n->len);
	case MN_REC:
		o = json_object();
		for (size_t i = 0; o && i < f->nfields; i++)
			if (json_object_set_new(o, f->fields[i].name,
						map_node_to_jansson(&f->fields[i], &n->kids[i])) != 0)
				goto fail;
		return o;
	case MN_ARR:
		o = json_array();
		for (size_t i = 0; o && i < n->n; i++)
			if (json_array_append_new(o, map_node_to_jansson(f, &n->kids[i])) != 0)
				goto fail;
		return o;
	}
	return json_null();
fail:
	json_decref(o);
	return NULL;
}

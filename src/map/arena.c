/* arena — the per-call bump allocator, the per-set pool, diagnostics. */
#include "map/map_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------------ */

struct map_arena_chunk {
	struct map_arena_chunk *next;
	size_t size, used;
	max_align_t data[];
};

/* First chunk: big enough that a typical message never needs a second. */
#define ARENA_FIRST_CHUNK (16u * 1024)

void map_arena_init(struct map_arena *a)
{
	a->head = NULL;
	a->used_total = 0;
	a->limit = MAP_ARENA_LIMIT;
}

void map_arena_clear(struct map_arena *a)
{
	struct map_arena_chunk *c = a->head, *next;
	for (; c; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
	a->used_total = 0;
}

void map_arena_reset(struct map_arena *a)
{
	struct map_arena_chunk *c = a->head, *last = NULL;
	if (!c)
		return;
	/* keep only the oldest (last in the list) chunk */
	while (c->next) {
		struct map_arena_chunk *n = c->next;
		free(c);
		c = n;
	}
	last = c;
	last->used = 0;
	a->head = last;
	a->used_total = 0;
}

void *map_arena_alloc(struct map_arena *a, size_t size)
{
	struct map_arena_chunk *c = a->head;
	size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (a->used_total + size > a->limit)
		return NULL;
	if (!c || c->size - c->used < size) {
		size_t csize = c ? c->size * 2 : ARENA_FIRST_CHUNK;
		while (csize < size)
			csize *= 2;
		c = malloc(sizeof(*c) + csize);
		if (!c)
			return NULL;
		c->size = csize;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	void *p = (char *)c->data + c->used;
	c->used += size;
	a->used_total += size;
	return p;
}

char *map_arena_strndup(struct map_arena *a, const char *s, size_t len)
{
	char *p = map_arena_alloc(a, len + 1);
	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

int map_vals_add(struct map_arena *a, struct map_vals *out, const char *s, size_t len,
		 const char *origin)
{
	if (len == 0)
		return 0;
	if (out->n == out->cap) {
		size_t ncap = out->cap ? out->cap * 2 : 4;
		struct map_val *v = map_arena_alloc(a, ncap * sizeof(*v));
		if (!v)
			return -1;
		if (out->n)
			memcpy(v, out->v, out->n * sizeof(*v));
		out->v = v;
		out->cap = ncap;
	}
	out->v[out->n].s = s;
	out->v[out->n].len = len;
	out->v[out->n].origin = origin;
	out->n++;
	return 0;
}

/* ---- pool: lives as long as the set ------------------------------------------- */

struct pool_block {
	struct pool_block *next;
	max_align_t data[];
};

struct pool_handle {
	struct pool_handle *next;
	const struct map_source_ops *ops;
	void *h;
};

struct map_strpool {
	struct pool_block *blocks;
	struct pool_handle *handles;
};

/* Tests: allocations of this thread's pools that still succeed (-1: all). */
static _Thread_local long pool_budget = -1;

void map_pool_test_fail_after(long n)
{
	pool_budget = n;
}

static int pool_refuses(void)
{
	if (pool_budget < 0)
		return 0;
	if (pool_budget == 0)
		return 1;
	pool_budget--;
	return 0;
}

struct map_strpool *map_pool_new(void)
{
	return calloc(1, sizeof(struct map_strpool));
}

void map_pool_free(struct map_strpool *p)
{
	if (!p)
		return;
	for (struct pool_handle *h = p->handles, *n; h; h = n) {
		n = h->next;
		h->ops->free(h->h);
		free(h);
	}
	for (struct pool_block *b = p->blocks, *n; b; b = n) {
		n = b->next;
		free(b);
	}
	free(p);
}

void *map_pool_alloc(struct map_strpool *p, size_t size)
{
	struct pool_block *b = pool_refuses() ? NULL : calloc(1, sizeof(*b) + size);
	if (!b)
		return NULL;
	b->next = p->blocks;
	p->blocks = b;
	return b->data;
}

char *map_pool_strndup(struct map_strpool *p, const char *s, size_t len)
{
	char *d = map_pool_alloc(p, len + 1);
	if (!d)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

int map_pool_own_handle(struct map_strpool *p, const struct map_source_ops *ops, void *h)
{
	struct pool_handle *ph = pool_refuses() ? NULL : malloc(sizeof(*ph));
	if (!ph)
		return -1;
	ph->ops = ops;
	ph->h = h;
	ph->next = p->handles;
	p->handles = ph;
	return 0;
}

/* ---- diagnostics ----------------------------------------------------------------- */

static int diag_quote_source = 1;

void map_diag_set_quote_source(int on)
{
	diag_quote_source = on;
}

static void diag_append(struct map_diag *d, const char *s, size_t n)
{
	if (d->len + n + 1 > d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 1024;
		while (ncap < d->len + n + 1)
			ncap *= 2;
		char *t = realloc(d->text, ncap);
		if (!t)
			return;
		d->text = t;
		d->cap = ncap;
	}
	memcpy(d->text + d->len, s, n);
	d->len += n;
	d->text[d->len] = '\0';
}

void map_diag_add(struct map_diag *d, const char *file, const char *text, size_t len, int line,
		  int col, const char *fmt, ...)
{
	char msg[512];
	char head[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->errors++;
	if (line <= 0) {
		n = snprintf(head, sizeof(head), "%s: %s\n", file, msg);
		diag_append(d, head, (size_t)n < sizeof(head) ? (size_t)n : sizeof(head) - 1);
		return;
	}
	n = snprintf(head, sizeof(head), "%s:%d:%d: %s\n", file, line, col, msg);
	diag_append(d, head, (size_t)n < sizeof(head) ? (size_t)n : sizeof(head) - 1);
	if (!text || !diag_quote_source)
		return;
	/* the line itself, then a caret under the column (tabs kept so it lines up) */
	const char *p = text, *end = text + len;
	for (int l = 1; l < line && p < end; p++)
		if (*p == '\n')
			l++;
	const char *e = p;
	while (e < end && *e != '\n' && *e != '\r')
		e++;
	diag_append(d, p, (size_t)(e - p));
	diag_append(d, "\n", 1);
	for (int i = 1; i < col && p + i - 1 < e; i++)
		diag_append(d, p[i - 1] == '\t' ? "\t" : " ", 1);
	diag_append(d, "^\n", 2);
}

void map_diag_clear(struct map_diag *d)
{
	free(d->text);
	d->text = NULL;
	d->len = d->cap = 0;
	d->errors = 0;
}

/* enumerate — the event types a mapping can produce, when they are knowable
 * from the file alone (literals, tables, if()), so `check -c` can tell an
 * analyst that a type has no topic before the first message does. */
#include "map/map_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Beyond this many combinations the answer is "open" rather than a list. */
#define ENUM_MAX 64
#define ENUM_MAX_LEN 128

struct strset {
	char v[ENUM_MAX][ENUM_MAX_LEN];
	size_t n;
};

static int add(struct strset *s, const char *a, size_t al, const char *b, size_t bl)
{
	if (al + bl >= ENUM_MAX_LEN)
		return -1;
	char tmp[ENUM_MAX_LEN];
	memcpy(tmp, a, al);
	memcpy(tmp + al, b, bl);
	tmp[al + bl] = '\0';
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], tmp) == 0)
			return 0;
	if (s->n == ENUM_MAX)
		return -1;
	memcpy(s->v[s->n++], tmp, al + bl + 1);
	return 0;
}

/* 0 with out filled, -1 when the values depend on the message. */
static int values(const struct map_expr *e, struct strset *out, const struct strset *types)
{
	struct strset *a, *b;
	int rc = 0;
	switch (e->op) {
	case OP_LIT:
		return add(out, e->str, e->len, "", 0);
	case OP_TYPE:
		if (!types)
			return -1;
		for (size_t i = 0; i < types->n; i++)
			if (add(out, types->v[i], strlen(types->v[i]), "", 0))
				return -1;
		return 0;
	case OP_COALESCE:
		return values(e->args[0], out, types) || values(e->args[1], out, types) ? -1 : 0;
	case OP_CONCAT:
		a = calloc(1, sizeof(*a));
		b = calloc(1, sizeof(*b));
		if (!a || !b || values(e->args[0], a, types) || values(e->args[1], b, types))
			rc = -1;
		for (size_t i = 0; rc == 0 && i < a->n; i++)
			for (size_t k = 0; rc == 0 && k < b->n; k++)
				rc = add(out, a->v[i], strlen(a->v[i]), b->v[k], strlen(b->v[k]));
		free(a);
		free(b);
		return rc;
	case OP_CALL:
		switch (e->fn->values) {
		case MFV_TABLE:
			for (size_t i = 0; i < e->args[1]->table->n; i++)
				if (add(out, e->args[1]->table->vals[i],
					strlen(e->args[1]->table->vals[i]), "", 0))
					return -1;
			return e->nargs > 2 ? values(e->args[2], out, types) : 0;
		case MFV_BRANCHES:
			if (values(e->args[1], out, types))
				return -1;
			return e->nargs > 2 ? values(e->args[2], out, types) : 0;
		case MFV_LOWER:
		case MFV_UPPER:
			a = calloc(1, sizeof(*a));
			if (!a || values(e->args[0], a, types))
				rc = -1;
			for (size_t i = 0; rc == 0 && i < a->n; i++) {
				for (char *p = a->v[i]; *p; p++)
					*p = (char)(e->fn->values == MFV_LOWER ? tolower((unsigned char)*p)
								     : toupper((unsigned char)*p));
				rc = add(out, a->v[i], strlen(a->v[i]), "", 0);
			}
			free(a);
			return rc;
		default:
			return -1;
		}
	default:
		return -1;
	}
}

int map_set_types(const struct map_set *s, size_t i, int topics,
		  void (*cb)(const char *value, void *arg), void *arg)
{
	const struct map_mapping *m = s->maps[i];
	struct strset *types = calloc(1, sizeof(*types)), *out = calloc(1, sizeof(*out));
	int rc = types && out ? values(m->type, types, NULL) : -1;
	if (rc == 0 && topics) {
		if (m->topic) {
			rc = values(m->topic, out, types);
		} else {
			for (size_t k = 0; rc == 0 && k < types->n; k++)
				rc = add(out, s->topic_prefix, strlen(s->topic_prefix), types->v[k],
					 strlen(types->v[k]));
		}
	}
	const struct strset *res = topics ? out : types;
	for (size_t k = 0; rc == 0 && k < res->n; k++)
		if (res->v[k][0])
			cb(res->v[k], arg);
	free(types);
	free(out);
	return rc;
}

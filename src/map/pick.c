/* pick — which item an each-block over a record target takes.
 *
 * `data.name = each name prefer use in ("official", "usual") { … }`: the
 * source's items are ranked by their key (evaluated on each item): an item
 * whose key equals the first value listed beats one matching the second, and
 * so on; among equals, and when nothing matches, the first item wins. With
 * `each A ?? B`, the first alternative that names any item is the one ranked.
 * Without `prefer` the first item of that alternative is taken.
 */
#include "map/map_int.h"

#include <string.h>

struct rank {
	struct map_env *env;
	const struct map_expr *prefer; /* OP_IN: args[0] key, args[1…] the values in order */
	size_t count;                  /* items seen */
	size_t best, best_index;       /* rank (index of the value matched) and item */
	int failed;
};

static int any_equal(const struct map_vals *a, const struct map_vals *b)
{
	for (size_t i = 0; i < a->n; i++)
		for (size_t k = 0; k < b->n; k++)
			if (a->v[i].len == b->v[k].len && memcmp(a->v[i].s, b->v[k].s, a->v[i].len) == 0)
				return 1;
	return 0;
}

static int rank_cb(void *scope, void *arg)
{
	struct rank *rk = arg;
	size_t index = rk->count++;
	if (!rk->prefer) {
		rk->best_index = 0;
		return 1; /* the first item: stop */
	}
	void *saved = rk->env->scope;
	struct map_vals key = { 0 };
	int rc = 0;
	rk->env->scope = scope;
	if (map_expr_eval(rk->env, rk->prefer->args[0], &key) != 0) {
		rc = rk->failed = 1;
		goto out;
	}
	for (size_t k = 1; k < rk->prefer->nargs && k - 1 < rk->best; k++) {
		struct map_vals want = { 0 };
		if (map_expr_eval(rk->env, rk->prefer->args[k], &want) != 0) {
			rc = rk->failed = 1;
			goto out;
		}
		if (any_equal(&key, &want)) {
			rk->best = k - 1;
			rk->best_index = index;
			break;
		}
	}
	if (rk->best == 0)
		rc = 1; /* the first choice: nothing can beat it */
out:
	rk->env->scope = saved;
	return rc;
}

void *map_rule_each_path(const struct map_rule *r, size_t alt)
{
	return alt == 0 ? r->each : alt <= r->neach_alt ? r->each_alt[alt - 1] : NULL;
}

int map_pick(struct map_env *env, const struct map_rule *r, size_t *alt, size_t *index)
{
	void *h;
	for (size_t k = 0; (h = map_rule_each_path(r, k)); k++) {
		struct rank rk = { .env = env, .prefer = r->prefer, .best = (size_t)-1 };
		int rc = env->ops->each(env->scope, h, env->arena, rank_cb, &rk, env->errstr,
					env->errstr_size);
		if (rk.failed)
			return -1;
		if (rc < 0) {
			env->err_code = 102;
			return -1;
		}
		if (rk.count) {
			*alt = k;
			*index = rk.best_index;
			return 1;
		}
	}
	return 0;
}

#include "map_test_source.h"
#include <criterion/criterion.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "map/map_int.h"

struct tpath {
	int rel;
	char key[64];
};

static void *t_compile(const char *text, size_t len, struct map_srcerr *err)
{
	struct tpath *p = calloc(1, sizeof(*p));
	size_t i = 0;
	if (len && text[0] == '.') {
		p->rel = 1;
		i = 1;
	}
	if (i == len || len - i >= sizeof(p->key)) {
		err->column = i + 1;
		snprintf(err->msg, sizeof(err->msg), "expected a key");
		free(p);
		return NULL;
	}
	for (size_t k = i; k < len; k++)
		if (!isalnum((unsigned char)text[k]) && text[k] != '_') {
			err->column = k + 1;
			snprintf(err->msg, sizeof(err->msg), "a key has letters, digits and _ only");
			free(p);
			return NULL;
		}
	memcpy(p->key, text + i, len - i);
	return p;
}

static void t_free(void *p) { free(p); }
static int t_is_relative(const void *p) { return ((const struct tpath *)p)->rel; }
static int t_can_group(const void *p) { return !((const struct tpath *)p)->rel; }

/* A scope is the JSON object the keys are looked up in; relative paths use
 * the item, absolute ones the root (kept in the first slot). */
struct tscope {
	json_t *root, *item;
};

static json_t *t_get(void *scope, const struct tpath *p)
{
	struct tscope *s = scope;
	if (p->rel)
		return json_object_get(s->item, p->key);
	json_t *v = json_object_get(s->item, p->key);
	return v ? v : json_object_get(s->root, p->key);
}

static int t_eval(void *scope, const void *path, struct map_arena *a, struct map_vals *out,
		  char *errstr, size_t n)
{
	const struct tpath *p = path;
	json_t *v = t_get(scope, p), *x;
	size_t i;
	if (json_is_string(v))
		return map_vals_add(a, out, json_string_value(v), json_string_length(v), p->key);
	if (json_is_integer(v)) {
		snprintf(errstr, n, "%s is a number", p->key);
		return -1;
	}
	json_array_foreach(v, i, x)
		if (json_is_string(x) &&
		    map_vals_add(a, out, json_string_value(x), json_string_length(x), p->key))
			return -1;
	return 0;
}

static int t_each(void *scope, const void *path, struct map_arena *a, map_each_cb cb, void *arg,
		  char *errstr, size_t n)
{
	struct tscope *s = scope;
	json_t *v = t_get(scope, path), *x;
	size_t i;
	json_array_foreach(v, i, x) {
		struct tscope *sub = map_arena_alloc(a, sizeof(*sub));
		sub->root = s->root;
		sub->item = x;
		int rc = cb(sub, arg);
		if (rc)
			return rc;
	}
	return 0;
}

const struct map_source_ops map_test_source = {
	.name = "test",
	.compile = t_compile,
	.free = t_free,
	.is_relative = t_is_relative,
	.can_group = t_can_group,
	.eval = t_eval,
	.each = t_each,
};

const char *mt_tmpdir(void)
{
	static char dir[64];
	snprintf(dir, sizeof(dir), "/tmp/hb-map-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	return dir;
}

void mt_write(const char *dir, const char *rel, const char *text)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (char *p = path + strlen(dir) + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0700);
			*p = '/';
		}
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

struct map_set *mt_load(const char *dir, struct map_diag *d)
{
	char schemas[1024];
	const char *src = getenv("HB_SRCDIR") ? getenv("HB_SRCDIR") : HB_SRCDIR;
	snprintf(schemas, sizeof(schemas), "%s/conf/schemas", src);
	map_source_register_test(&map_test_source);
	return map_set_load(dir, schemas, d);
}

struct map_set *mt_load_shipped(void)
{
	char maps[1024];
	struct map_diag d = { 0 };
	const char *src = getenv("HB_SRCDIR") ? getenv("HB_SRCDIR") : HB_SRCDIR;
	snprintf(maps, sizeof(maps), "%s/mappings", src);
	struct map_set *s = mt_load(maps, &d);
	cr_assert(s, "shipped mappings do not load:\n%s", d.text ? d.text : "");
	map_diag_clear(&d);
	return s;
}

static int collect_cb(const struct map_event *ev, void *opaque)
{
	json_t *o = json_pack("{s:s, s:s, s:o}", "topic", ev->topic, "key", ev->key, "event",
			      map_event_object(ev));
	/* the JSON encoder and the jansson view agree */
	char *text = map_event_json(ev);
	json_t *parsed = json_loads(text, 0, NULL);
	if (!json_equal(parsed, json_object_get(o, "event")))
		abort();
	json_decref(parsed);
	free(text);
	if (ev->explain)
		json_object_set(o, "explain", ev->explain);
	json_array_append_new(opaque, o);
	return 0;
}

json_t *mt_apply(const struct map_set *s, const char *input_json, enum map_result *res,
		 struct map_reject *rej, unsigned flags)
{
	json_t *root = json_loads(input_json, 0, NULL);
	struct tscope scope = { root, root };
	struct map_input in = { .ops = &map_test_source, .scope = &scope, .ledger_key = "k1",
				.ledger_key_len = 2, .message_id = "M1", .now_ms = 0 };
	json_t *out = json_array();
	*res = map_apply(s, &in, flags, collect_cb, out, NULL, rej);
	json_decref(root);
	if (*res != MAP_OK) {
		json_decref(out);
		return NULL;
	}
	return out;
}

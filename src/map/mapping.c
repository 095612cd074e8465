/* mapping — loading a set of mappings and applying it to one message. */
#include "map/map_int.h"

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

/* A message yields at most this many events (one per order group, …). */
#define MAP_MAX_EVENTS 256
/* Mapping folders are shallow; a deeper walk is a loop or a mistake. */
#define MAP_MAX_DIR_DEPTH 8
#define MAP_MAX_FILES 1024

/* ---- loading ------------------------------------------------------------------ */

struct pathlist {
	char **v;
	size_t n, cap;
};

/* 0, 1 when the list is full (the path is left out), -1 out of memory. */
static int pl_add(struct pathlist *pl, const char *path)
{
	if (pl->n >= MAP_MAX_FILES)
		return 1;
	if (pl->n == pl->cap) {
		size_t ncap = pl->cap ? pl->cap * 2 : 32;
		char **v = realloc(pl->v, ncap * sizeof(*v));
		if (!v)
			return -1;
		pl->v = v;
		pl->cap = ncap;
	}
	if (!(pl->v[pl->n] = strdup(path)))
		return -1;
	pl->n++;
	return 0;
}

static void pl_free(struct pathlist *pl)
{
	for (size_t i = 0; i < pl->n; i++)
		free(pl->v[i]);
	free(pl->v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), k = strlen(suf);
	return n > k && strcmp(s + n - k, suf) == 0;
}

/* Files ending in suffix below dir; `tests` folders hold golden cases, not
 * mappings. -1 with errno when dir cannot be read or memory runs out. */
static int walk(const char *dir, const char *suffix, int depth, struct pathlist *pl)
{
	int rc = 0;
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d)
		return -1;
	while (rc == 0 && (de = readdir(d))) {
		char path[4096];
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (strcmp(de->d_name, "tests") != 0 && depth < MAP_MAX_DIR_DEPTH &&
			    walk(path, suffix, depth + 1, pl) != 0 && errno == ENOMEM)
				rc = -1;
		} else if (S_ISREG(st.st_mode) && ends_with(de->d_name, suffix) &&
			   pl_add(pl, path) < 0) {
			errno = ENOMEM;
			rc = -1;
		}
	}
	closedir(d);
	if (rc)
		errno = ENOMEM;
	return rc;
}

struct map_set *map_set_load(const char *mappings_dir, const char *schemas_dir,
			     struct map_diag *d)
{
	struct map_set *s = calloc(1, sizeof(*s));
	struct pathlist maps = { 0 }, schemas = { 0 };
	char err[512];

	if (!s || !(s->pool = map_pool_new())) {
		map_diag_add(d, mappings_dir, NULL, 0, 0, 0, "out of memory");
		free(s);
		return NULL;
	}
	snprintf(s->topic_prefix, sizeof(s->topic_prefix), "healthcare.");
	if (!(s->tables = map_pool_alloc(s->pool, MAP_MAX_SHARED_TABLES * sizeof(*s->tables))) ||
	    !(s->tfiles = map_pool_alloc(s->pool, MAP_MAX_TABLE_FILES * sizeof(*s->tfiles)))) {
		map_diag_add(d, mappings_dir, NULL, 0, 0, 0, "out of memory");
		goto done;
	}
	if (walk(schemas_dir, ".avsc", 0, &schemas) != 0)
		map_diag_add(d, schemas_dir, NULL, 0, 0, 0, "cannot read the schema folder: %s",
			     strerror(errno));
	if (schemas.n) /* qsort of no array: v may be NULL */
		qsort(schemas.v, schemas.n, sizeof(char *), cmp_str);
	if (!(s->schemas = calloc(schemas.n ? schemas.n : 1, sizeof(*s->schemas)))) {
		map_diag_add(d, schemas_dir, NULL, 0, 0, 0, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < schemas.n; i++) {
		struct map_schema *sc = map_schema_load(schemas.v[i], err, sizeof(err));
		if (!sc) {
			map_diag_add(d, schemas.v[i], NULL, 0, 0, 0, "%s", err);
			continue;
		}
		for (size_t k = 0; k < s->nschemas; k++)
			if (strcmp(s->schemas[k]->event, sc->event) == 0)
				map_diag_add(d, schemas.v[i], NULL, 0, 0, 0,
					     "event '%s' is already defined by %s", sc->event,
					     s->schemas[k]->file);
		s->schemas[s->nschemas++] = sc;
	}
	if (walk(mappings_dir, ".map", 0, &maps) != 0)
		map_diag_add(d, mappings_dir, NULL, 0, 0, 0, "cannot read the mappings folder: %s",
			     strerror(errno));
	if (maps.n)
		qsort(maps.v, maps.n, sizeof(char *), cmp_str);
	if (!(s->maps = calloc(maps.n ? maps.n : 1, sizeof(*s->maps)))) {
		map_diag_add(d, mappings_dir, NULL, 0, 0, 0, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < maps.n; i++) {
		size_t len;
		char *text = util_read_file(maps.v[i], MAP_MAX_FILE_SIZE, &len, err, sizeof(err));
		if (!text) {
			map_diag_add(d, maps.v[i], NULL, 0, 0, 0, "%s", err);
			continue;
		}
		/* the text stays in the pool: errors quote it, explain points into it */
		char *kept = map_pool_strndup(s->pool, text, len);
		free(text);
		if (!kept) {
			map_diag_add(d, maps.v[i], NULL, 0, 0, 0, "out of memory");
			continue;
		}
		struct map_mapping *m = map_compile(s, maps.v[i], kept, len, mappings_dir, d);
		if (!m)
			continue;
		for (size_t k = 0; k < s->nmaps; k++)
			if (strcmp(s->maps[k]->name, m->name) == 0)
				map_diag_add(d, maps.v[i], NULL, 0, 0, 0,
					     "mapping '%s' is already defined in %s", m->name,
					     s->maps[k]->file);
		s->maps[s->nmaps++] = m;
	}
done:
	pl_free(&maps);
	pl_free(&schemas);
	if (d->errors) {
		map_set_free(s);
		return NULL;
	}
	return s;
}

void map_set_free(struct map_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nschemas; i++)
		map_schema_free(s->schemas[i]);
	free(s->schemas);
	free(s->maps);
	map_pool_free(s->pool);
	free(s);
}

size_t map_set_count(const struct map_set *s) { return s->nmaps; }
const char *map_set_name(const struct map_set *s, size_t i) { return s->maps[i]->name; }
const char *map_set_file(const struct map_set *s, size_t i) { return s->maps[i]->file; }
const char *map_set_source(const struct map_set *s, size_t i) { return s->maps[i]->ops->name; }
const char *map_set_hash(const struct map_set *s, size_t i) { return s->maps[i]->hash; }
size_t map_set_schema_count(const struct map_set *s) { return s->nschemas; }
const struct map_schema *map_set_schema(const struct map_set *s, size_t i)
{
	return s->schemas[i];
}

void map_set_topic_prefix(struct map_set *s, const char *prefix)
{
	snprintf(s->topic_prefix, sizeof(s->topic_prefix), "%s", prefix);
}

int map_unmatched_policy_parse(const char *s)
{
	if (strcmp(s, "filter") == 0)
		return MAP_UNMATCHED_FILTER;
	if (strcmp(s, "reject") == 0)
		return MAP_UNMATCHED_REJECT;
	if (strcmp(s, "deadletter") == 0)
		return MAP_UNMATCHED_DEADLETTER;
	return -1;
}

/* ---- applying ------------------------------------------------------------------ */

struct built {
	const struct map_mapping *m;
	struct map_node event;
	json_t *explain;
	const char *type, *topic, *key;
};

struct apply {
	const struct map_set *set;
	const struct map_input *in;
	const struct map_mapping *m;
	struct map_env env;
	struct map_arena *arena_p;
	unsigned flags;
	struct built ev_inline[8]; /* most messages: one or two events */
	struct built *ev;
	size_t nev, cap;
	struct map_reject *rej;
	int rejected;
	const struct map_rule *block; /* the each-block whose item rules run, for reasons */
	char errbuf[256];
};

static int reject(struct apply *A, const struct map_rule *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Describe an outcome that is not a mapping's own rejection (no mapping,
 * resources): no mapping, target or source to name. */
static void outcome(struct map_reject *rej, int code, const char *reason)
{
	if (!rej)
		return;
	memset(rej, 0, sizeof(*rej));
	rej->err_code = code;
	snprintf(rej->reason, sizeof(rej->reason), "%s", reason);
}

static int reject(struct apply *A, const struct map_rule *r, int code, const char *fmt, ...)
{
	va_list ap;
	A->rejected = 1;
	if (!A->rej)
		return -1;
	A->rej->err_code = code;
	snprintf(A->rej->mapping, sizeof(A->rej->mapping), "%s", A->m->name);
	if (r && A->block) /* a rule of an each-block: name it inside the block's target */
		snprintf(A->rej->target, sizeof(A->rej->target), "%.*s.%s",
			 (int)strcspn(A->block->target, "["), A->block->target, r->target);
	else
		snprintf(A->rej->target, sizeof(A->rej->target), "%s", r ? r->target : "");
	snprintf(A->rej->source, sizeof(A->rej->source), "%s", r && r->src_text ? r->src_text : "");
	va_start(ap, fmt);
	vsnprintf(A->rej->reason, sizeof(A->rej->reason), fmt, ap);
	va_end(ap);
	return -1;
}

static int oom(struct apply *A)
{
	return reject(A, NULL, 207, "mapping %s: out of scratch memory", A->m->name);
}

/* --explain: a target that stayed empty, with the whole rule's source, so
 * an analyst sees what was tried. */
static void explain_empty(json_t *ex, const char *prefix, const struct map_rule *r)
{
	if (!ex)
		return;
	char t[256];
	snprintf(t, sizeof(t), "%s%s", prefix, r->target);
	json_array_append_new(ex, json_pack("{s:s, s:n, s:s}", "target", t, "value", "from",
					    r->src_text ? r->src_text : ""));
}

static void explain(json_t *ex, const char *prefix, const char *target, const struct map_val *v)
{
	if (!ex)
		return;
	char t[256];
	snprintf(t, sizeof(t), "%s%s", prefix, target);
	json_array_append_new(ex, json_pack("{s:s, s:s%, s:s}", "target", t, "value", v->s,
					    v->len, "from", v->origin ? v->origin : "literal"));
}

static int apply_rules(struct apply *A, struct map_node *obj, const struct map_field *rec,
		       const struct map_rule *rules, size_t n, json_t *ex, const char *prefix,
		       size_t *nset);

struct item_ctx {
	struct apply *A;
	const struct map_rule *r;
	struct map_node *items;     /* collected here, appended once all succeeded */
	json_t *ex;
	const char *prefix;
	size_t base;                /* items already in the target array */
	size_t want, seen;          /* want: the one item to build ((size_t)-1: all) */
	int failed;
};

static int item_cb(void *scope, void *arg)
{
	struct item_ctx *ic = arg;
	struct apply *A = ic->A;
	const struct map_field *leaf = ic->r->path[ic->r->depth - 1];
	void *saved = A->env.scope;
	struct map_node item;
	size_t nset = 0;
	char prefix[200];

	if (ic->want != (size_t)-1 && ic->seen++ != ic->want)
		return 0; /* a record takes the one item map_pick chose */
	if (map_node_record(A->arena_p, leaf, &item)) {
		ic->failed = 1;
		return oom(A);
	}
	prefix[0] = '\0';
	if (ic->ex && ic->r->one) /* the targets' names are for the explanation only */
		snprintf(prefix, sizeof(prefix), "%s%s.", ic->prefix, ic->r->target);
	else if (ic->ex)
		snprintf(prefix, sizeof(prefix), "%s%.*s[%zu].", ic->prefix,
			 (int)strlen(ic->r->target) - 2, ic->r->target, ic->base + ic->items->n);
	const struct map_rule *outer = A->block;
	A->env.scope = scope;
	A->block = ic->r;
	int rc = apply_rules(A, &item, leaf, ic->r->sub, ic->r->nsub, ic->ex, prefix, &nset);
	A->env.scope = saved;
	A->block = outer;
	if (rc) {
		ic->failed = 1;
		return 1;
	}
	/* an item none of whose rules produced anything is not an item */
	if (nset) {
		struct map_node *slot = map_node_append(A->arena_p, ic->items);
		if (!slot) {
			ic->failed = 1;
			return oom(A);
		}
		*slot = item;
	}
	return ic->want != (size_t)-1 ? 2 : 0; /* 2: the one item is built, stop */
}

/* The node of the rule's leaf; optional records on the way become records
 * only now, when there is a value to put in them. */
static struct map_node *leaf_node(struct apply *A, struct map_node *obj,
				  const struct map_field *rec, const struct map_rule *r)
{
	struct map_node *n = obj;
	const struct map_field *parent = rec;
	for (size_t k = 0; k < r->depth; k++) {
		n = map_node_child(n, parent, r->path[k]);
		parent = r->path[k];
		if (k + 1 < r->depth && n->kind == MN_NULL && map_node_record(A->arena_p, parent, n))
			return NULL;
	}
	return n;
}

static int apply_rule(struct apply *A, struct map_node *obj, const struct map_field *rec,
		      const struct map_rule *r, json_t *ex, const char *prefix, size_t *nset)
{
	if (r->each) {
		struct map_node items = { .kind = MN_ARR };
		struct map_node *arr = leaf_node(A, obj, rec, r);
		if (!arr)
			return oom(A);
		struct item_ctx ic = { .A = A, .r = r, .items = &items, .ex = ex, .prefix = prefix,
					.base = r->one ? 0 : arr->n, .want = (size_t)-1 };
		size_t alt = 0;
		int rc = 0;
		if (r->one) {
			int p = map_pick(&A->env, r, &alt, &ic.want);
			if (p < 0)
				return reject(A, r, A->env.err_code ? A->env.err_code : 207,
					      "mapping %s, target %s: %s", A->m->name, r->target, A->errbuf);
			if (p > 0 && ex) {
				/* --explain: which item the record came from */
				char which[64];
				snprintf(which, sizeof which, "item %zu of path %zu", ic.want + 1, alt + 1);
				struct map_val wv = { which, strlen(which), r->each_text };
				explain(ex, prefix, r->target, &wv);
			}
			if (p > 0)
				rc = A->in->ops->each(A->env.scope, map_rule_each_path(r, alt), A->arena_p,
						      item_cb, &ic, A->errbuf, sizeof(A->errbuf));
		} else {
			/* each A ?? B: the first alternative that gives an item */
			void *h;
			for (; rc >= 0 && items.n == 0 && !ic.failed && (h = map_rule_each_path(r, alt));
			     alt++)
				rc = A->in->ops->each(A->env.scope, h, A->arena_p, item_cb, &ic, A->errbuf,
						      sizeof(A->errbuf));
		}
		if (ic.failed)
			return -1;
		if (rc < 0)
			return reject(A, r, 102, "mapping %s, target %s: %s", A->m->name, r->target,
				      A->errbuf);
		if (items.n == 0 && r->required)
			return reject(A, r, 101, "mapping %s: required target %s is empty (source: %s)",
				      A->m->name, r->target, r->src_text);
		if (items.n == 0)
			explain_empty(ex, prefix, r);
		if (r->one) {
			if (items.n)
				*arr = items.kids[0];
			*nset += items.n;
			return 0;
		}
		for (size_t i = 0; i < items.n; i++) {
			struct map_node *slot = map_node_append(A->arena_p, arr);
			if (!slot)
				return oom(A);
			*slot = items.kids[i];
		}
		*nset += items.n;
		return 0;
	}
	struct map_vals v = { 0 };
	A->env.errstr = A->errbuf;
	A->env.errstr_size = sizeof(A->errbuf);
	if (map_expr_eval(&A->env, r->expr, &v) != 0)
		return reject(A, r, A->env.err_code ? A->env.err_code : 207,
			      "mapping %s, target %s: %s", A->m->name, r->target, A->errbuf);
	if (v.n == 0) {
		if (r->required && A->block)
			return reject(A, r, 101, "mapping %s: required target %.*s.%s is empty (source: "
				      "%s in each %s)", A->m->name, (int)strcspn(A->block->target, "["),
				      A->block->target, r->target, r->src_text, A->block->each_text);
		if (r->required)
			return reject(A, r, 101, "mapping %s: required target %s is empty (source: %s)",
				      A->m->name, r->target, r->src_text);
		explain_empty(ex, prefix, r);
		return 0;
	}
	struct map_node *leaf = leaf_node(A, obj, rec, r);
	if (!leaf)
		return oom(A);
	if (r->append) {
		for (size_t i = 0; i < v.n; i++) {
			struct map_node *slot = map_node_append(A->arena_p, leaf);
			if (!slot)
				return oom(A);
			map_node_str(slot, v.v[i].s, v.v[i].len);
			explain(ex, prefix, r->target, &v.v[i]);
		}
	} else {
		map_node_str(leaf, v.v[0].s, v.v[0].len);
		explain(ex, prefix, r->target, &v.v[0]);
	}
	*nset += v.n;
	return 0;
}

static int apply_rules(struct apply *A, struct map_node *obj, const struct map_field *rec,
		       const struct map_rule *rules, size_t n, json_t *ex, const char *prefix,
		       size_t *nset)
{
	for (size_t i = 0; i < n; i++)
		if (apply_rule(A, obj, rec, &rules[i], ex, prefix, nset))
			return -1;
	return 0;
}

/* First value of a header expression, NUL-terminated in the arena; "" if none. */
static const char *header_value(struct apply *A, const struct map_expr *e, const char *what)
{
	struct map_vals v = { 0 };
	if (map_expr_eval(&A->env, e, &v) != 0) {
		reject(A, NULL, A->env.err_code ? A->env.err_code : 207, "mapping %s, %s: %s",
		       A->m->name, what, A->errbuf);
		return NULL;
	}
	return v.n ? v.v[0].s : "";
}

/* A root field's node by name (envelope fields: eventId, data, lineage …). */
static struct map_node *root_field(struct built *b, const char *name)
{
	const struct map_field *root = &b->m->schema->root;
	const struct map_field *f = map_field_find(root, name, strlen(name));
	return f ? map_node_child(&b->event, root, f) : NULL;
}

static int build_cb(void *scope, void *arg)
{
	struct apply *A = arg;
	const struct map_mapping *m = A->m;
	struct built *b;
	size_t nset = 0;

	if (A->nev >= MAP_MAX_EVENTS) {
		reject(A, NULL, 207, "mapping %s: more than %d events from one message", m->name,
		       MAP_MAX_EVENTS);
		return 1;
	}
	if (A->nev == A->cap) {
		size_t ncap = A->cap * 2;
		struct built *v = malloc(ncap * sizeof(*v));
		if (!v) {
			reject(A, NULL, 207, "mapping %s: out of memory", m->name);
			return 1;
		}
		memcpy(v, A->ev, A->nev * sizeof(*v));
		if (A->ev != A->ev_inline)
			free(A->ev);
		A->ev = v;
		A->cap = ncap;
	}
	b = &A->ev[A->nev];
	memset(b, 0, sizeof(*b));
	b->m = m;
	if (map_node_record(A->arena_p, &m->schema->root, &b->event)) {
		oom(A);
		return 1;
	}
	b->explain = A->flags & MAP_EXPLAIN ? json_array() : NULL;
	A->nev++; /* owned by A from here, freed on any outcome */
	A->env.scope = scope;
	A->env.event = &b->event;
	A->env.event_root = &m->schema->root;
	A->env.type = NULL;
	A->env.errstr = A->errbuf;
	A->env.errstr_size = sizeof(A->errbuf);
	if (apply_rules(A, &b->event, &m->schema->root, m->rules, m->nrules, b->explain, "", &nset))
		return 1;
	if (!(b->type = header_value(A, m->type, "type")))
		return 1;
	if (!*b->type) {
		reject(A, NULL, 101, "mapping %s: the event type came out empty", m->name);
		return 1;
	}
	A->env.type = b->type;
	if (m->topic) {
		if (!(b->topic = header_value(A, m->topic, "topic")))
			return 1;
	} else {
		size_t pl = strlen(A->set->topic_prefix), tl = strlen(b->type);
		char *t = map_arena_alloc(A->arena_p, pl + tl + 1);
		if (!t)
			return oom(A), 1;
		memcpy(t, A->set->topic_prefix, pl);
		memcpy(t + pl, b->type, tl + 1);
		b->topic = t;
	}
	if (!*b->topic) {
		reject(A, NULL, 101, "mapping %s: the topic came out empty", m->name);
		return 1;
	}
	if (m->key) {
		if (!(b->key = header_value(A, m->key, "key")))
			return 1;
	} else {
		/* data.patientId when the schema has it */
		struct map_node *data = root_field(b, "data");
		const struct map_field *df = map_field_find(&m->schema->root, "data", 4);
		const struct map_field *pf = df ? map_field_find(df, "patientId", 9) : NULL;
		struct map_node *pn = data && pf && data->kind == MN_REC ?
				      map_node_child(data, df, pf) : NULL;
		b->key = pn && pn->kind == MN_STR ? pn->s : "";
	}
	/* The key goes to Kafka as it is: a CR, LF or other control character
	 * (decoded from an escape such as \X0D\) would reach every consumer's
	 * keys and logs. Rejected (AE 102) rather than altered: a changed key
	 * would silently be another patient's partition and identity. */
	for (const char *k = b->key; *k; k++)
		if ((unsigned char)*k < 0x20 || *k == 0x7f) {
			reject(A, NULL, 102, "mapping %s: the Kafka key (%s) contains a control character "
					     "(0x%02X)",
			       m->name, m->key ? "key" : "data.patientId", (unsigned char)*k);
			return 1;
		}
	return 0;
}

/* The mapping matched but its `each` found no group (an ADT without PID):
 * when it has a required rule, that value is missing and the message is
 * rejected (table 0357: 100, a required segment is missing) instead of
 * passing as unmatched. Without a required rule it simply yields nothing. */
static void no_group(struct apply *A, const struct map_mapping *m)
{
	for (size_t i = 0; i < m->nrules; i++)
		if (m->rules[i].required) {
			reject(A, &m->rules[i], 100, "mapping %s: no %s in the message, so required "
			       "target %s is empty (source: %s)", m->name, m->each_text,
			       m->rules[i].target, m->rules[i].src_text);
			return;
		}
}

/* A file's messages all share one now_ms: the last one is remembered. */
static void iso_time(char out[32], int64_t ms)
{
	static __thread int64_t last_ms = -1;
	static __thread char last[32];
	if (ms != last_ms) {
		time_t t = (time_t)(ms / 1000);
		struct tm tm;
		gmtime_r(&t, &tm);
		size_t n = strftime(last, sizeof last, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(last + n, sizeof last - n, ".%03dZ", (int)(ms % 1000));
		last_ms = ms;
	}
	memcpy(out, last, sizeof last);
}

/* The arena's first chunk is kept per thread: a message then costs no
 * scratch allocation at all. */
static __thread struct map_arena arena;
static __thread int arena_ready;

void map_thread_release(void)
{
	if (arena_ready) {
		map_arena_clear(&arena);
		arena_ready = 0;
	}
}

enum map_result map_apply(const struct map_set *s, const struct map_input *in, unsigned flags,
			  map_event_cb cb, void *opaque, size_t *nevents,
			  struct map_reject *rej)
{
	struct apply *A = malloc(sizeof(*A));
	enum map_result res = MAP_OK;
	size_t matched = 0, delivered = 0;
	char ts[32];

	if (nevents)
		*nevents = 0;
	if (!A) {
		outcome(rej, 207, "out of memory");
		return MAP_ERROR;
	}
	memset(A, 0, offsetof(struct apply, ev_inline));
	A->ev = A->ev_inline;
	A->cap = HB_ARRAY_LEN(A->ev_inline);
	A->nev = 0;
	A->errbuf[0] = '\0';
	if (!arena_ready) {
		map_arena_init(&arena);
		arena_ready = 1;
	}
	A->arena_p = &arena;
	A->set = s;
	A->in = in;
	A->flags = flags;
	A->rej = rej;
	A->rejected = 0;
	A->block = NULL;
	A->env.arena = A->arena_p;
	A->env.ops = in->ops;
	A->env.errstr = A->errbuf;
	A->env.errstr_size = sizeof(A->errbuf);

	for (size_t i = 0; i < s->nmaps && !A->rejected; i++) {
		const struct map_mapping *m = s->maps[i];
		if (m->ops != in->ops)
			continue;
		A->m = m;
		A->env.scope = in->scope;
		A->env.event = NULL;
		if (m->when) {
			int t = map_expr_test(&A->env, m->when);
			if (t < 0) {
				reject(A, NULL, A->env.err_code ? A->env.err_code : 207,
				       "mapping %s, when: %s", m->name, A->errbuf);
				break;
			}
			if (!t)
				continue;
		}
		matched++;
		if (m->each) {
			size_t before = A->nev;
			int rc = in->ops->each(in->scope, m->each, A->arena_p, build_cb, A, A->errbuf,
					       sizeof(A->errbuf));
			if (rc < 0 && !A->rejected)
				reject(A, NULL, 102, "mapping %s, each %s: %s", m->name, m->each_text,
				       A->errbuf);
			if (rc != 0 && !A->rejected)
				reject(A, NULL, 207, "mapping %s: internal error", m->name);
			if (!A->rejected && A->nev == before)
				no_group(A, m);
		} else if (build_cb(in->scope, A) != 0 && !A->rejected) {
			reject(A, NULL, 207, "mapping %s: out of memory", m->name);
		}
	}
	if (A->rejected) {
		res = rej && rej->err_code == 207 ? MAP_ERROR : MAP_REJECTED;
		goto out;
	}
	if (matched == 0 || A->nev == 0) {
		outcome(rej, 200, "no mapping accepts this message type");
		res = MAP_UNMATCHED;
		goto out;
	}
	iso_time(ts, in->now_ms);
	for (size_t i = 0; i < A->nev; i++) {
		struct built *b = &A->ev[i];
		struct map_event ev = { 0 };
		char id[37];
		struct map_node *n;
		if (map_event_id(id, in->ledger_key, in->ledger_key_len, i)) {
			outcome(rej, 207, "out of memory");
			res = MAP_ERROR;
			break;
		}
		if ((n = root_field(b, "eventId")))
			map_node_str(n, id, 36);
		if ((n = root_field(b, "eventType")))
			map_node_str(n, b->type, strlen(b->type));
		if ((n = root_field(b, "timestamp")))
			map_node_str(n, ts, strlen(ts));
		const char *source = NULL;
		struct map_node *meta = root_field(b, "metadata");
		const struct map_field *mf = map_field_find(&b->m->schema->root, "metadata", 8);
		const struct map_field *sf = mf ? map_field_find(mf, "source", 6) : NULL;
		if (meta && sf && meta->kind == MN_REC)
			source = map_node_child(meta, mf, sf)->s;
		const struct map_field *lf = map_field_find(&b->m->schema->root, "lineage", 7);
		if (lf && lf->type == MF_RECORD && (n = root_field(b, "lineage"))) {
			if (map_node_record(A->arena_p, lf, n) != 0) {
				outcome(rej, 207, "out of scratch memory");
				res = MAP_ERROR;
				break;
			}
			const char *lv[][2] = { { "mapping", b->m->name }, { "mappingHash", b->m->hash },
						{ "sourceFormat", in->ops->name },
						{ "sourceMessageId", in->message_id } };
			for (size_t k = 0; k < HB_ARRAY_LEN(lv); k++) {
				const struct map_field *f = map_field_find(lf, lv[k][0], strlen(lv[k][0]));
				if (f && lv[k][1])
					map_node_str(map_node_child(n, lf, f), lv[k][1], strlen(lv[k][1]));
			}
		}
		ev.index = i;
		ev.mapping = b->m->name;
		ev.mapping_hash = b->m->hash;
		ev.topic = b->topic;
		ev.key = b->key;
		ev.event_type = b->type;
		ev.event_id = id;
		ev.tree = &b->event;
		ev.explain = b->explain;
		ev.schema = b->m->schema;
		const char *hv[][2] = {
			{ "event-type", b->type },
			{ "source", source && *source ? source : in->ops->name },
			{ "hl7bridge-mapping", b->m->name },
			{ "hl7bridge-mapping-hash", b->m->hash },
			{ "hl7bridge-source-format", in->ops->name },
			{ "hl7bridge-source-message-id", in->message_id },
		};
		for (size_t k = 0; k < HB_ARRAY_LEN(hv) && ev.nheaders < MAP_MAX_HEADERS; k++)
			if (hv[k][1]) {
				ev.headers[ev.nheaders].name = hv[k][0];
				ev.headers[ev.nheaders].value = hv[k][1];
				ev.nheaders++;
			}
		if (cb && cb(&ev, opaque) != 0) {
			outcome(rej, 207, "event callback failed");
			res = MAP_ERROR;
			break;
		}
		delivered++;
	}
out:
	for (size_t i = 0; i < A->nev; i++)
		json_decref(A->ev[i].explain);
	if (nevents)
		*nevents = delivered;
	map_arena_reset(A->arena_p);
	if (A->ev != A->ev_inline)
		free(A->ev);
	free(A);
	return res;
}

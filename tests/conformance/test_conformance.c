/* Conformance runner: every file under tests/conformance/fixtures/ goes
 * through the file splitter and the shipped mappings, as `hl7bridge map` and
 * the file drops take it, and its outcome (events by type, keys, rejections by
 * table-0357 code, unmatched and unreadable messages) must be the one recorded
 * in tests/conformance/outcomes.txt. Nothing is fetched: the fixtures are in
 * the tree (see tests/conformance/README.md for where their shapes come from).
 *
 * Also checked: no file takes longer than CONF_MAX_SECONDS, and every folder
 * named `variants/<name>/` holds one message or batch written in different
 * ways (CR, LF, CRLF, MLLP, FHS/BHS, no final terminator) that must give the
 * very same events — eventIds included, so the ledger deduplicates them across
 * paths.
 *
 * Every file's outcome is printed (ok / FAIL). To record new outcomes after a
 * deliberate change: HB_CONFORMANCE_UPDATE=1 tests/conformance/test_conformance,
 * then read `git diff tests/conformance/outcomes.txt`.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "map/input.h"
#include "map/map.h"
#include "util.h"
#include "../unit/map_test_source.h"

#define CONF_MAX_FILES 512
#define CONF_MAX_SECONDS 5.0
#define CONF_MAX_INPUT (16u * 1024 * 1024)

static const char *srcdir(void)
{
	return getenv("HB_SRCDIR") ? getenv("HB_SRCDIR") : HB_SRCDIR;
}

/* What one file gave. */
struct outcome {
	const struct map_set *s;
	size_t events, rejected, unmatched, unreadable;
	char types[512];   /* event types in order, run-length: "patient.created x2, …" */
	char keys[512];    /* distinct keys in order of appearance */
	char codes[128];   /* rejection codes in order */
	char last_type[64];
	size_t run;
	json_t *ids;       /* [eventId, topic, key] per event, for the variants */
};

/* Append s to buf, after sep when buf is not empty. */
static void append(char *buf, size_t size, const char *sep, const char *s)
{
	size_t n = strlen(buf);
	if (n + 1 < size)
		snprintf(buf + n, size - n, "%s%s", n ? sep : "", s);
}

static void flush_run(struct outcome *o)
{
	char t[96];
	if (!o->run)
		return;
	if (o->run > 1)
		snprintf(t, sizeof t, "%s x%zu", o->last_type, o->run);
	else
		snprintf(t, sizeof t, "%s", o->last_type);
	append(o->types, sizeof o->types, ", ", t);
	o->run = 0;
}

static int event_cb(const struct map_event *ev, void *opaque)
{
	struct outcome *o = opaque;
	o->events++;
	if (o->run && strcmp(o->last_type, ev->event_type) != 0)
		flush_run(o);
	snprintf(o->last_type, sizeof o->last_type, "%s", ev->event_type);
	o->run++;
	/* keys are listed once each, in order of appearance */
	int seen = 0;
	for (const char *p = o->keys; *p;) {
		const char *e = strstr(p, ", ");
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == strlen(ev->key) && strncmp(p, ev->key, n) == 0)
			seen = 1;
		p += n + (e ? 2 : 0);
	}
	if (!seen)
		append(o->keys, sizeof o->keys, ", ", *ev->key ? ev->key : "\"\"");
	json_array_append_new(o->ids, json_pack("[s, s, s]", ev->event_id, ev->topic, ev->key));
	return 0;
}

static int item_cb(const struct map_item *it, void *opaque)
{
	struct outcome *o = opaque;
	struct map_reject rej = { 0 };
	char code[16];
	if (!it->in) {
		o->unreadable++;
		return 0;
	}
	enum map_result r = map_apply(o->s, it->in, 0, event_cb, o, NULL, &rej);
	if (r == MAP_REJECTED || r == MAP_ERROR) {
		o->rejected++;
		snprintf(code, sizeof code, "%d", rej.err_code);
		append(o->codes, sizeof o->codes, " ", code);
	} else if (r == MAP_UNMATCHED) {
		o->unmatched++;
	}
	return 0;
}

/* One line: the outcome of the file at path. */
static void run_file(const struct map_set *s, const char *path, char *line, size_t size,
		     json_t **ids, double *seconds)
{
	struct outcome o;
	char err[512] = "";
	size_t len;
	struct timespec t0, t1;
	memset(&o, 0, sizeof o);
	o.s = s;
	o.ids = json_array();
	char *buf = util_read_file(path, CONF_MAX_INPUT, &len, err, sizeof err);
	cr_assert(buf, "%s", err);
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = map_input_items(name, buf, len, 0, item_cb, &o, err, sizeof err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	free(buf);
	flush_run(&o);
	snprintf(line, size, "events %zu%s%s%s%s%s; rejected %zu%s%s%s; unmatched %zu; unreadable %zu%s",
		 o.events, o.events ? " (" : "", o.types, o.events ? ")" : "",
		 o.events ? " keys " : "", o.keys, o.rejected, o.rejected ? " (" : "", o.codes,
		 o.rejected ? ")" : "", o.unmatched, o.unreadable, rc < 0 ? "; input unreadable" : "");
	*ids = o.ids;
}

struct files {
	char *v[CONF_MAX_FILES];
	size_t n;
};

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every fixture below dir, as paths relative to root. */
static void walk(const char *root, const char *rel, struct files *f)
{
	char dir[2048];
	snprintf(dir, sizeof dir, "%s/%s", root, rel);
	DIR *d = opendir(dir);
	struct dirent *de;
	cr_assert(d, "cannot read %s", dir);
	while ((de = readdir(d))) {
		char sub[1024], full[4096];
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
		snprintf(full, sizeof full, "%s/%s", root, sub);
		if (stat(full, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode))
			walk(root, sub, f);
		else if (f->n < CONF_MAX_FILES)
			f->v[f->n++] = strdup(sub);
	}
	closedir(d);
}

/* outcomes.txt: "path<TAB>outcome" lines; '#' starts a comment. */
static json_t *load_expected(const char *path)
{
	json_t *o = json_object();
	FILE *fp = fopen(path, "r");
	char line[4096];
	if (!fp)
		return o;
	while (fgets(line, sizeof line, fp)) {
		line[strcspn(line, "\n")] = '\0';
		char *tab = strchr(line, '\t');
		if (line[0] == '#' || !tab)
			continue;
		*tab = '\0';
		json_object_set_new(o, line, json_string(tab + 1));
	}
	fclose(fp);
	return o;
}

Test(conformance, every_fixture_gives_its_recorded_outcome, .timeout = 300)
{
	struct map_set *s = mt_load_shipped();
	char root[1024], expected_path[1024];
	struct files f = { .n = 0 };
	snprintf(root, sizeof root, "%s/tests/conformance/fixtures", srcdir());
	snprintf(expected_path, sizeof expected_path, "%s/tests/conformance/outcomes.txt", srcdir());
	walk(root, "", &f);
	qsort(f.v, f.n, sizeof f.v[0], cmp);
	cr_assert_geq(f.n, 40, "only %zu fixtures", f.n);
	json_t *expected = load_expected(expected_path);
	json_t *variants = json_object(); /* folder → first file's ids */
	int update = getenv("HB_CONFORMANCE_UPDATE") != NULL, failed = 0;
	FILE *out = update ? fopen(expected_path, "w") : NULL;
	if (out)
		fprintf(out, "# tests/conformance: the outcome of every fixture under the shipped "
			     "mappings.\n# Written by HB_CONFORMANCE_UPDATE=1 "
			     "tests/conformance/test_conformance; read the diff before committing.\n");
	for (size_t i = 0; i < f.n; i++) {
		char path[4096], line[2048];
		json_t *ids;
		double secs;
		snprintf(path, sizeof path, "%s/%s", root, f.v[i]);
		run_file(s, path, line, sizeof line, &ids, &secs);
		const char *want = json_string_value(json_object_get(expected, f.v[i]));
		int ok = update || (want && strcmp(want, line) == 0);
		if (secs > CONF_MAX_SECONDS) {
			ok = 0;
			fprintf(stderr, "FAIL %s: took %.1f s (limit %.0f s)\n", f.v[i], secs,
				CONF_MAX_SECONDS);
		}
		/* variants/<name>/…: all files of a folder give the same events */
		const char *v = strstr(f.v[i], "variants/");
		if (v) {
			char folder[1024];
			snprintf(folder, sizeof folder, "%.*s", (int)(strrchr(f.v[i], '/') - f.v[i]),
				 f.v[i]);
			json_t *first = json_object_get(variants, folder);
			if (!first) {
				json_object_set(variants, folder, ids);
			} else if (!json_equal(first, ids)) {
				ok = 0;
				fprintf(stderr, "FAIL %s: its events (eventIds, topics, keys) differ from "
						"the first file of %s\n", f.v[i], folder);
			}
		}
		json_decref(ids);
		if (out)
			fprintf(out, "%s\t%s\n", f.v[i], line);
		fprintf(stderr, "%s %s: %s\n", ok ? "ok  " : "FAIL", f.v[i], line);
		if (!ok && want && strcmp(want, line) != 0)
			fprintf(stderr, "     expected: %s\n", want);
		else if (!ok && !want)
			fprintf(stderr, "     no recorded outcome (HB_CONFORMANCE_UPDATE=1 records it)\n");
		failed += !ok;
	}
	/* a recorded outcome without its fixture is a fixture lost */
	const char *k;
	json_t *val;
	json_object_foreach(expected, k, val) {
		int found = 0;
		for (size_t i = 0; i < f.n && !found; i++)
			found = strcmp(f.v[i], k) == 0;
		if (!found && !update) {
			fprintf(stderr, "FAIL %s: recorded in outcomes.txt but not in fixtures/\n", k);
			failed++;
		}
	}
	fprintf(stderr, "conformance: %zu files, %d failed\n", f.n, failed);
	if (out)
		fclose(out);
	cr_assert_eq(failed, 0, "%d of %zu conformance fixtures differ (see above)", failed, f.n);
	for (size_t i = 0; i < f.n; i++)
		free(f.v[i]);
	json_decref(expected);
	json_decref(variants);
	map_set_free(s);
}

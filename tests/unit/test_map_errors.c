/* Broken mapping files, each with the exact message it must produce:
 * tests/fixtures/map/errors/NAME.map and NAME.err. Set HB_MAP_WRITE_ERRORS=1
 * to (re)write the .err files after a deliberate change of wording. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map/map_int.h"
#include "map_test_source.h"
#include "util.h"

static const char *srcdir(void)
{
	return getenv("HB_SRCDIR") ? getenv("HB_SRCDIR") : HB_SRCDIR;
}

/* The diagnostic for one broken file, loaded alone in a fresh folder, with
 * the folder prefix removed so the expectation does not depend on it. */
static char *diag_for(const char *name)
{
	char path[1024], err[256];
	size_t len;
	snprintf(path, sizeof(path), "%s/tests/fixtures/map/errors/%s", srcdir(), name);
	char *text = util_read_file(path, 1 << 20, &len, err, sizeof(err));
	cr_assert(text, "%s", err);
	const char *dir = mt_tmpdir();
	mt_write(dir, name, text);
	free(text);
	struct map_diag d = { 0 };
	struct map_set *s = mt_load(dir, &d);
	cr_assert_null(s, "%s loaded without error", name);
	cr_assert_eq(d.errors, 1, "%s: %d errors", name, d.errors);
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "%s/", dir);
	char *out = strdup(d.text + (strncmp(d.text, prefix, strlen(prefix)) == 0 ? strlen(prefix) : 0));
	map_diag_clear(&d);
	return out;
}

Test(map_errors, every_broken_file_has_its_exact_message)
{
	char dirpath[1024];
	snprintf(dirpath, sizeof(dirpath), "%s/tests/fixtures/map/errors", srcdir());
	DIR *dir = opendir(dirpath);
	struct dirent *de;
	int n = 0;
	cr_assert(dir);
	while ((de = readdir(dir))) {
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 4, ".map") != 0)
			continue;
		char *got = diag_for(de->d_name);
		char errpath[1200], err[256];
		size_t len;
		snprintf(errpath, sizeof(errpath), "%s/%.*s.err", dirpath, (int)(l - 4), de->d_name);
		if (getenv("HB_MAP_WRITE_ERRORS")) {
			FILE *f = fopen(errpath, "w");
			fputs(got, f);
			fclose(f);
		}
		char *want = util_read_file(errpath, 1 << 20, &len, err, sizeof(err));
		cr_assert(want, "%s", err);
		cr_expect_str_eq(got, want, "%s:\n--- got\n%s--- want\n%s", de->d_name, got, want);
		free(got);
		free(want);
		n++;
	}
	closedir(dir);
	cr_assert_geq(n, 20, "only %d cases", n);
}

/* All files load or none do: one good and one broken file give no set. */
Test(map_errors, all_or_nothing)
{
	const char *dir = mt_tmpdir();
	struct map_diag d = { 0 };
	mt_write(dir, "a.map", "mapping a\nsource test\nevent patient\ntype 'patient.created'\n"
			       "data.patientId = id\n");
	mt_write(dir, "b.map", "mapping b\nsource test\nevent patient\ntype 'patient.created'\n"
			       "data.patientid = id\n");
	mt_write(dir, "c.map", "mapping c\nsource test\nevent patient\ntype 'patient.created'\n"
			       "data.gender = nope(id)\n");
	cr_assert_null(mt_load(dir, &d));
	cr_assert_eq(d.errors, 2, "both broken files are reported: %s", d.text);
	map_diag_clear(&d);
}

Test(map_errors, duplicate_mapping_names)
{
	const char *dir = mt_tmpdir();
	struct map_diag d = { 0 };
	mt_write(dir, "a.map", "mapping same\nsource test\nevent patient\ntype 'patient.created'\n");
	mt_write(dir, "sub/b.map", "mapping same\nsource test\nevent patient\ntype 'patient.created'\n");
	cr_assert_null(mt_load(dir, &d));
	cr_assert(strstr(d.text, "mapping 'same' is already defined in"), "%s", d.text);
	map_diag_clear(&d);
}

/* Issue 14, item 13: the daemon's logs name file:line:col and the reason of a
 * mapping error but never quote the mapping's text (a literal in it may have
 * been copied from a sample); the CLI keeps the quoted line. */
Test(map_errors, the_daemon_does_not_quote_mapping_source)
{
	const char *dir = mt_tmpdir();
	mt_write(dir, "leak.map",
		 "mapping  leak\nsource   hl7v2\nevent    prescription\n"
		 "type     \"prescription.created\"\n"
		 "data.status = lower(\"DOE^JANE 1961-07-04\", PID-5)\n");
	struct map_diag d = { 0 };
	map_diag_set_quote_source(0);
	struct map_set *s = mt_load(dir, &d);
	map_diag_set_quote_source(1);
	cr_assert_null(s);
	cr_assert(strstr(d.text, "leak.map:5:"), "%s", d.text);
	cr_assert(strstr(d.text, "lower() takes 1 argument, not 2"), "%s", d.text);
	cr_assert_null(strstr(d.text, "DOE^JANE"), "the source line was quoted: %s", d.text);
	map_diag_clear(&d);
	s = mt_load(dir, &d);
	cr_assert_null(s);
	cr_assert(strstr(d.text, "DOE^JANE"), "the CLI quotes the line: %s", d.text);
	map_diag_clear(&d);
}

/* Issue 20: out of memory is an error like any other. The pool refuses its
 * k-th allocation, for every k, while the shipped mappings (both sources,
 * tables, each-blocks, every kind of expression) load: each time the set
 * does not load and says "out of memory" with the file:line:col it was at,
 * never a crash on a NULL. */
Test(map_errors, out_of_memory_at_every_pool_allocation)
{
	char maps[1024];
	snprintf(maps, sizeof(maps), "%s/mappings", srcdir());
	long k = 0;
	int at_position = 0;
	for (;; k++) {
		struct map_diag d = { 0 };
		map_pool_test_fail_after(k);
		struct map_set *s = mt_load(maps, &d);
		map_pool_test_fail_after(-1);
		if (s) {
			cr_assert_eq(d.errors, 0, "%s", d.text);
			map_set_free(s);
			break;
		}
		cr_assert(d.text && strstr(d.text, "out of memory"), "allocation %ld: %s", k,
			  d.text ? d.text : "(no message)");
		/* the compiler's own failures point into the file */
		const char *m = strstr(d.text, ".map:");
		at_position += m && strstr(m, ": out of memory") != NULL;
		if (k == 1000)
			cr_log_info("allocation %ld: %s", k, d.text);
		map_diag_clear(&d);
		cr_assert_lt(k, 1000000, "the set never loads");
	}
	cr_log_info("%ld pool allocations, each refused once", k);
	cr_assert_gt(k, 100, "only %ld pool allocations: the sweep covers little", k);
	cr_assert_gt(at_position, k / 2, "%d of %ld failures name file:line:col", at_position, k);
}

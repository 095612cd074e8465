/* Batch splitting over tests/fixtures/hl7/batch: <name>.hl7 with
 * <name>.expected (count=, offset= lines, optional error=). */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "guard.h"
#include "hl7_fixture.h"
#include "parse/hl7.h"
#include "util.h"

static void run(const char *dir, const char *base)
{
	char path[1024], line[256], es[256];
	size_t len, offs[64], noffs = 0, count = 0;
	const char *want_err = NULL;
	char errbuf[64] = "";

	snprintf(path, sizeof path, "%s/%s.expected", dir, base);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "count=", 6))
			count = strtoul(line + 6, NULL, 10);
		else if (!strncmp(line, "offset=", 7))
			offs[noffs++] = strtoul(line + 7, NULL, 10);
		else if (!strncmp(line, "error=", 6))
			want_err = strcpy(errbuf, line + 6);
	}
	fclose(f);
	snprintf(path, sizeof path, "%s/%s.hl7", dir, base);
	char *data = util_read_file(path, 1 << 20, &len, es, sizeof es);
	cr_assert_not_null(data, "%s", es);
	struct guard g;
	char *in = guard_place(&g, data, len);

	struct hl7_batch b;
	struct hl7_batch_item it;
	struct hl7_error err;
	int r;
	size_t n = 0;
	hl7_batch_init(&b, in, len);
	while ((r = hl7_batch_next(&b, &it, &err)) == 1) {
		cr_assert_lt(n, noffs, "%s", base);
		cr_assert_eq(it.index, n);
		cr_assert_eq(it.offset, offs[n], "%s: message %zu at %zu", base, n, it.offset);
		cr_assert_eq(it.msg.ptr, in + it.offset);
		/* Each piece is one message the parser accepts. */
		struct hl7_seg segs[16];
		struct hl7_msg m;
		cr_assert_eq(hl7_parse(&m, it.msg.ptr, it.msg.len, segs, 16, NULL, &err), 0,
			     "%s message %zu: %s", base, n, err.msg);
		n++;
	}
	cr_assert_eq(n, count, "%s: %zu messages", base, n);
	if (want_err) {
		cr_assert_eq(r, -1, "%s", base);
		cr_assert_str_eq(hl7_errcode_name(err.code), want_err);
		cr_assert_eq(hl7_batch_next(&b, &it, &err), 0, "stays at the end");
	} else {
		cr_assert_eq(r, 0, "%s: %s", base, err.msg);
	}
	guard_free(&g);
	free(data);
}

Test(batch, fixtures)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s/tests/fixtures/hl7/batch", fixture_root());
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l < 5 || strcmp(e->d_name + l - 4, ".hl7"))
			continue;
		char base[256];
		snprintf(base, sizeof base, "%.*s", (int)(l - 4), e->d_name);
		run(dir, base);
		n++;
	}
	closedir(d);
	cr_assert_geq(n, 8);
}

/* Every prefix of every batch fixture, right before an unreadable page:
 * the splitter never reads past the end and its pieces stay in bounds. */
Test(batch, guard_page_every_prefix)
{
	char dir[512], path[1024], es[256];
	snprintf(dir, sizeof dir, "%s/tests/fixtures/hl7/batch", fixture_root());
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	struct dirent *e;
	size_t pieces = 0;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name), len;
		if (l < 5 || strcmp(e->d_name + l - 4, ".hl7"))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		char *data = util_read_file(path, 1 << 20, &len, es, sizeof es);
		cr_assert_not_null(data);
		for (size_t k = 0; k <= len; k++) {
			struct guard g;
			const char *in = guard_place(&g, data, k);
			struct hl7_batch b;
			struct hl7_batch_item it;
			struct hl7_error err;
			hl7_batch_init(&b, in, k);
			while (hl7_batch_next(&b, &it, &err) == 1) {
				cr_assert(it.msg.ptr >= in && it.msg.ptr + it.msg.len <= in + k);
				pieces++;
			}
			guard_free(&g);
		}
		free(data);
	}
	closedir(d);
	cr_assert_gt(pieces, 100);
}

Test(batch, envelope_views)
{
	const char *s = "FHS|^~\\&|F\rBHS|^~\\&|B\rMSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rBTS|1\rFTS|1\r";
	struct hl7_batch b;
	struct hl7_batch_item it;
	struct hl7_error err;
	hl7_batch_init(&b, s, strlen(s));
	cr_assert_eq(hl7_batch_next(&b, &it, &err), 1);
	cr_assert_eq(hl7_batch_next(&b, &it, &err), 0);
	cr_assert(b.fhs.len == 10 && !memcmp(b.fhs.ptr, "FHS|^~\\&|F", 10));
	cr_assert(b.bts.len == 5 && !memcmp(b.bts.ptr, "BTS|1", 5));
	cr_assert(b.fts.len == 5);
}

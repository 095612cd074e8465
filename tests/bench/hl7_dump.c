/* hl7_dump — print every non-empty subcomponent of each message file, one
 * line each: SEG[n]-F[r].C.S=value (unescaped UTF-8; \ \n \r written as
 * \\ \n \r). Same format as `hapi dump`, for the differential test
 * (tests/bench/run-diff.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse/hl7.h"
#include "util.h"

#define MAX_SEGS 4096

static void put_value(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\')
			fputs("\\\\", stdout);
		else if (s[i] == '\n')
			fputs("\\n", stdout);
		else if (s[i] == '\r')
			fputs("\\r", stdout);
		else
			putchar(s[i]);
	}
	putchar('\n');
}

static int dump(const char *file)
{
	static struct hl7_seg segs[MAX_SEGS];
	char errstr[256];
	size_t len;
	struct hl7_msg m;
	struct hl7_error err;
	char *buf = util_read_file(file, 1 << 26, &len, errstr, sizeof errstr);
	if (!buf) {
		fprintf(stderr, "%s\n", errstr);
		return -1;
	}
	if (hl7_parse(&m, buf, len, segs, MAX_SEGS, NULL, &err) < 0) {
		fprintf(stderr, "%s: %s\n", file, err.msg);
		free(buf);
		return -1;
	}
	const char *base = strrchr(file, '/');
	printf("# %s\n", base ? base + 1 : file);
	size_t cap = HL7_UNESCAPE_BOUND(len);
	char *out = malloc(cap);
	for (size_t s = 0; s < m.nsegs; s++) {
		const char *id = m.segs[s].id;
		size_t occ = 0;
		for (size_t k = 0; k <= s; k++)
			occ += !strcmp(m.segs[k].id, id);
		int header = !strcmp(id, "MSH") || !strcmp(id, "BHS") || !strcmp(id, "FHS");
		struct hl7_view field, rep, comp, sub;
		for (uint32_t f = 1; hl7_field(&m, s, f, &field); f++) {
			if (header && f <= 2) {
				printf("%s[%zu]-%u[1].1.1=", id, occ, f);
				put_value(field.ptr, field.len);
				continue;
			}
			struct hl7_iter ri, ci, si;
			uint32_t r = 0;
			hl7_iter_init(&ri, field, m.d.rep);
			while (hl7_iter_next(&ri, &rep)) {
				uint32_t c = 0;
				r++;
				hl7_iter_init(&ci, rep, m.d.comp);
				while (hl7_iter_next(&ci, &comp)) {
					uint32_t sc = 0;
					c++;
					hl7_iter_init(&si, comp, m.d.sub);
					while (hl7_iter_next(&si, &sub)) {
						sc++;
						if (!sub.len)
							continue;
						ssize_t n = hl7_unescape(&m, sub, out, cap, &err);
						if (n < 0) {
							fprintf(stderr, "%s: %s\n", file, err.msg);
							return -1;
						}
						if (n == 0)
							continue;
						printf("%s[%zu]-%u[%u].%u.%u=", id, occ, f, r, c, sc);
						put_value(out, (size_t)n);
					}
				}
			}
		}
	}
	free(out);
	hl7_msg_clear(&m);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 0;
	for (int i = 1; i < argc; i++)
		if (dump(argv[i]) < 0)
			rc = 1;
	return rc;
}

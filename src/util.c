#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int util_seterr(char *errstr, size_t errstr_size, const char *fmt, ...)
{
	va_list ap;
	if (errstr && errstr_size) {
		va_start(ap, fmt);
		vsnprintf(errstr, errstr_size, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int64_t clock_us(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t util_mono_us(void) { return clock_us(CLOCK_MONOTONIC); }
int64_t util_mono_ms(void) { return clock_us(CLOCK_MONOTONIC) / 1000; }
int64_t util_wall_ms(void) { return clock_us(CLOCK_REALTIME) / 1000; }

char *util_read_file(const char *path, size_t max_size, size_t *len_out,
		     char *errstr, size_t errstr_size)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *buf = NULL;
	size_t n;

	if (!f) {
		util_seterr(errstr, errstr_size, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		util_seterr(errstr, errstr_size, "%s: not a regular file", path);
		goto fail;
	}
	if ((size_t)st.st_size > max_size) {
		util_seterr(errstr, errstr_size, "%s: %lld bytes, larger than the limit of %zu",
			    path, (long long)st.st_size, max_size);
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		util_seterr(errstr, errstr_size, "%s: out of memory", path);
		goto fail;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	if (n != (size_t)st.st_size) {
		util_seterr(errstr, errstr_size, "%s: short read", path);
		goto fail;
	}
	buf[n] = '\0';
	fclose(f);
	if (len_out)
		*len_out = n;
	return buf;
fail:
	free(buf);
	fclose(f);
	return NULL;
}

void util_json_quote(const char *s, size_t n, void (*put)(void *ctx, const char *p, size_t n),
		     void *ctx)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t run = 0;
	put(ctx, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		put(ctx, s + run, i - run);
		run = i + 1;
		char e[6] = { '\\', 0, 0, 0, 0, 0 };
		size_t el = 2;
		switch (ch) {
		case '"': e[1] = '"'; break;
		case '\\': e[1] = '\\'; break;
		case '\b': e[1] = 'b'; break;
		case '\f': e[1] = 'f'; break;
		case '\n': e[1] = 'n'; break;
		case '\r': e[1] = 'r'; break;
		case '\t': e[1] = 't'; break;
		default:
			e[1] = 'u'; e[2] = '0'; e[3] = '0';
			e[4] = hex[ch >> 4]; e[5] = hex[ch & 15];
			el = 6;
		}
		put(ctx, e, el);
	}
	put(ctx, s + run, n - run);
	put(ctx, "\"", 1);
}

int util_reserve(char **buf, size_t *cap, size_t need, size_t first)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : first;
	while (ncap < need)
		ncap *= 2;
	char *p = realloc(*buf, ncap);
	if (!p)
		return -1;
	*buf = p;
	*cap = ncap;
	return 0;
}

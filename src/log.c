#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level g_level = LOGL_INFO;
static enum log_format g_format = LOG_FORMAT_TEXT;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_setup(enum log_level level, enum log_format format)
{
	g_level = level;
	g_format = format;
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int log_format_parse(const char *s, enum log_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = LOG_FORMAT_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = LOG_FORMAT_JSON;
	else
		return -1;
	return 0;
}

int log_enabled(enum log_level level)
{
	return level <= g_level;
}

/* Append s to buf as the body of a JSON string. Return the new length. */
static size_t json_escape(char *buf, size_t len, size_t cap, const char *s)
{
	for (; *s && len + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[len++] = '\\';
			buf[len++] = (char)c;
		} else if (c < 0x20) {
			len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
		} else {
			buf[len++] = (char)c;
		}
	}
	return len;
}

/* Bytes of a valid UTF-8 sequence at s (at most n), or 0. Overlong forms,
 * surrogates and code points past U+10FFFF are not valid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t k = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : 2;
	unsigned long cp;
	if (s[0] < 0xC2 || s[0] > 0xF4 || n < k)
		return 0;
	cp = s[0] & (0x3F >> (k - 1));
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	/* C1 controls (a terminal takes U+009B as CSI) and the bidirectional
	 * overrides and isolates (they reorder what the reader sees). */
	if (cp <= 0x9F || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069))
		return 0;
	return k;
}

size_t log_escape(char *dst, size_t cap, const char *src, size_t len)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0, k;
	if (cap == 0)
		return 0;
	for (size_t i = 0; i < len;) {
		char esc[8];
		const char *put = esc;
		size_t pl;
		unsigned char c = s[i];
		if (c >= 0x20 && c < 0x7F && c != '\\') {
			esc[0] = (char)c;
			pl = 1;
			k = 1;
		} else if (c == '\\' || c == '\n' || c == '\r' || c == '\t') {
			esc[0] = '\\';
			esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : '\\';
			pl = 2;
			k = 1;
		} else if (c >= 0x80 && (k = utf8_len(s + i, len - i)) > 0) {
			put = (const char *)s + i;
			pl = k;
		} else {
			snprintf(esc, sizeof esc, "\\x%02x", c);
			pl = 4;
			k = 1;
		}
		if (o + pl >= cap)
			break; /* never half an escape */
		memcpy(dst + o, put, pl);
		o += pl;
		i += k;
	}
	dst[o] = '\0';
	return o;
}

void log_vmsg(enum log_level level, const char *module, const char *fmt, va_list ap)
{
	char text[2048], safe[4096], line[4608], ts[40];
	struct timespec now;
	struct tm tm;
	size_t n;

	if (!log_enabled(level))
		return;
	vsnprintf(text, sizeof text, fmt, ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);

	if (g_format == LOG_FORMAT_JSON) {
		n = (size_t)snprintf(line, sizeof line,
				     "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"", ts,
				     level_names[level]);
		n = json_escape(line, n, sizeof line - 16, module);
		n += (size_t)snprintf(line + n, sizeof line - n, "\",\"msg\":\"");
		n = json_escape(line, n, sizeof line - 8, text);
		n += (size_t)snprintf(line + n, sizeof line - n, "\"}\n");
	} else {
		/* Every string in the message may come from outside (file names,
		 * MSH-10, peers' errors): one line, no terminal controls. */
		log_escape(safe, sizeof safe, text, strlen(text));
		int w = snprintf(line, sizeof line, "%s %-5s %s: %s\n", ts,
				 level_names[level], module, safe);
		n = w < 0 ? 0 : (size_t)w;
		if (n >= sizeof line) {
			n = sizeof line - 1;
			line[n - 1] = '\n';
		}
	}
	/* One write per line keeps lines whole across threads. */
	if (write(STDERR_FILENO, line, n) < 0) {
		/* Nowhere left to report it. */
	}
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, module, fmt, ap);
	va_end(ap);
}

static pthread_mutex_t g_limit_mu = PTHREAD_MUTEX_INITIALIZER;

void log_limited(struct log_limit *lim, enum log_level level, const char *module,
		 const char *fmt, ...)
{
	struct timespec now;
	long long ms;
	unsigned long suppressed = 0;
	int write_it;
	va_list ap;

	if (!log_enabled(level))
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	pthread_mutex_lock(&g_limit_mu);
	if (!lim->window_ms || ms - lim->window_ms >= lim->per_ms) {
		suppressed = lim->suppressed;
		lim->suppressed = 0;
		lim->window_ms = ms;
		lim->used = 0;
	}
	write_it = lim->used < lim->burst;
	if (write_it)
		lim->used++;
	else
		lim->suppressed++;
	pthread_mutex_unlock(&g_limit_mu);
	if (suppressed)
		log_msg(level, module, "%lu similar lines suppressed (at most %d per %d s)", suppressed,
			lim->burst, lim->per_ms / 1000);
	if (!write_it)
		return;
	va_start(ap, fmt);
	log_vmsg(level, module, fmt, ap);
	va_end(ap);
}

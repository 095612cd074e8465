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

void log_vmsg(enum log_level level, const char *module, const char *fmt, va_list ap)
{
	char text[2048], line[4608], ts[40];
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
		int w = snprintf(line, sizeof line, "%s %-5s %s: %s\n", ts,
				 level_names[level], module, text);
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

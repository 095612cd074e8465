/*
 * log — the daemon's only writer of diagnostics (stderr, text or JSON lines).
 *
 * Contract: callers pass identifiers (MSH-10, file names, offsets, hashes,
 * error codes), never field values from a message. Lower layers (parsers,
 * codecs, the mapping evaluator) do not log at all; they return errors and the
 * daemon decides what to say.
 */
#ifndef HB_LOG_H
#define HB_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
	LOGL_ERROR = 0,
	LOGL_WARN = 1,
	LOGL_INFO = 2,
	LOGL_DEBUG = 3,
};

enum log_format {
	LOG_FORMAT_TEXT = 0,
	LOG_FORMAT_JSON = 1,
};

/* Set the threshold and output format. Safe to call again (reload). */
void log_setup(enum log_level level, enum log_format format);

/* Parse "error|warn|info|debug" / "text|json". Return 0, or -1 if unknown. */
int log_level_parse(const char *s, enum log_level *out);
int log_format_parse(const char *s, enum log_format *out);

int log_enabled(enum log_level level);

/* Copy len bytes of src into dst (NUL-terminated, at most cap - 1 bytes, never
 * half an escape) so that it prints as one harmless line: backslash, CR, LF
 * and tab as \\, \r, \n, \t; other control characters, DEL, C1 controls,
 * bidirectional overrides and bytes that are not valid UTF-8 as \xNN; valid
 * UTF-8 is kept. Returns the length written. Text logs pass every message
 * through it, so a file name or an MSH-10 cannot start a new line or drive
 * the operator's terminal. */
size_t log_escape(char *dst, size_t cap, const char *src, size_t len);

/* One line per call; thread-safe (a single write(2) per line). */
void log_msg(enum log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *module, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* A call site's budget of lines: at most `burst` per `per_ms`; lines past it
 * are counted, and the count is written ("N similar lines suppressed")
 * before the next line the budget allows. For lines a hostile peer can
 * cause at will (10,000 empty frames must not be 10,000 lines). */
struct log_limit {
	int burst;
	int per_ms;
	long long window_ms; /* start of the current window (monotonic) */
	int used;
	unsigned long suppressed;
};
#define LOG_LIMIT_INIT(burst, per_ms) { (burst), (per_ms), 0, 0, 0 }
void log_limited(struct log_limit *lim, enum log_level level, const char *module,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* log_warn with a budget of 10 lines per 10 s for this call site. */
#define log_warn_limited(mod, ...)                                                  \
	do {                                                                        \
		static struct log_limit lim_ = LOG_LIMIT_INIT(10, 10000);          \
		log_limited(&lim_, LOGL_WARN, (mod), __VA_ARGS__);                 \
	} while (0)

#define log_error(mod, ...) log_msg(LOGL_ERROR, (mod), __VA_ARGS__)
#define log_warn(mod, ...)  log_msg(LOGL_WARN, (mod), __VA_ARGS__)
#define log_info(mod, ...)  log_msg(LOGL_INFO, (mod), __VA_ARGS__)
#define log_debug(mod, ...) do { if (log_enabled(LOGL_DEBUG)) log_msg(LOGL_DEBUG, (mod), __VA_ARGS__); } while (0)

#endif

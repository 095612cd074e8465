/* util — small helpers shared by every module. */
#ifndef HB_UTIL_H
#define HB_UTIL_H

#include <stddef.h>
#include <stdint.h>

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#endif

#define HB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Format an error into a caller's (errstr, errstr_size) buffer; return -1 so
 * callers can write `return util_seterr(errstr, n, "...")`. errstr may be NULL. */
int util_seterr(char *errstr, size_t errstr_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Monotonic and wall clocks in milliseconds / microseconds. */
int64_t util_mono_ms(void);
int64_t util_mono_us(void);
int64_t util_wall_ms(void);

/* Make the heap buffer *buf (of *cap bytes) hold at least need bytes,
 * doubling from *cap, or from first when empty. Returns 0, or -1 with *buf
 * and *cap unchanged (memory). */
int util_reserve(char **buf, size_t *cap, size_t need, size_t first);

/* Write s (n bytes of valid UTF-8) as a JSON string through put: quoted,
 * with quote, backslash and control characters escaped the way jansson
 * writes them (\n, \t, ... and upper-case \u00XX), UTF-8 left as it is. */
void util_json_quote(const char *s, size_t n, void (*put)(void *ctx, const char *p, size_t n),
		     void *ctx);

/* Read a whole file into a NUL-terminated heap buffer (caller frees).
 * Fails if the file is larger than max_size. Return NULL and fill errstr. */
char *util_read_file(const char *path, size_t max_size, size_t *len_out,
		     char *errstr, size_t errstr_size);

#endif

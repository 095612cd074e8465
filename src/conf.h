/*
 * conf — the configuration file: INI-style sections of `key = value` lines.
 *
 *   # comment
 *   [kafka]                      section type "kafka", no name
 *   bootstrap.servers = ${KAFKA_BROKERS:-embedded}
 *   [listener mllp-plain]        section type "listener", name "mllp-plain"
 *   bind = 127.0.0.1:2575
 *
 * Values may use ${VAR} and ${VAR:-default}, expanded from the environment
 * when the file is loaded (an unset ${VAR} without default is an error, so a
 * missing secret is never silently empty). conf_env_file() loads a `.env`
 * file (KEY=VALUE lines) into the environment first, without overriding
 * variables that are already set.
 *
 * Every key read through the accessors is marked used; conf_unused() reports
 * keys nobody read (typos) as file:line errors.
 */
#ifndef HB_CONF_H
#define HB_CONF_H

#include <stddef.h>
#include <stdint.h>

struct conf_kv {
	char *key;
	char *value;
	int line;
	int used;
};

struct conf_section {
	char *type;
	char *name; /* NULL for unnamed sections */
	int line;
	struct conf_kv *kv;
	int n, cap;
};

struct conf {
	char *path;
	struct conf_section *sec;
	int n, cap;
};

/* Load and parse a file / parse text (path used in messages). NULL with
 * "path:line: message" in errstr on error. */
struct conf *conf_load(const char *path, char *errstr, size_t errstr_size);
struct conf *conf_parse(const char *text, const char *path, char *errstr, size_t errstr_size);
void conf_free(struct conf *c);

/* Load KEY=VALUE lines (optionally `export KEY=VALUE`) into the environment
 * without overriding. Values: "double quoted" (\" \\ \n escapes) or
 * 'single quoted' (literal), then optionally whitespace and a # comment; or
 * unquoted, up to a # that follows whitespace (a # inside a word is kept),
 * trimmed. An unterminated quote, text after the closing quote or a bad
 * name is an error "path:line: NAME: reason" (never the value). Missing
 * file: returns 0. */
int conf_env_file(const char *path, char *errstr, size_t errstr_size);

/* Expand ${VAR} / ${VAR:-default} in s. Heap result, or NULL with errstr. */
char *conf_expand(const char *s, char *errstr, size_t errstr_size);

/* The first section of a type (and name, if name is non-NULL), or NULL. */
struct conf_section *conf_section(struct conf *c, const char *type, const char *name);
/* Iterate sections of a type: pass the previous result (NULL to start). */
struct conf_section *conf_next(struct conf *c, const char *type, struct conf_section *prev);

/* Accessors. A missing key gives the default. Typed ones return 0, or -1
 * with "path:line: key: expected ..." in errstr. */
const char *conf_str(struct conf_section *s, const char *key, const char *def);
struct conf_kv *conf_kv(struct conf_section *s, const char *key);
int conf_int(const struct conf *c, struct conf_section *s, const char *key, int64_t def,
	     int64_t min, int64_t max, int64_t *out, char *errstr, size_t errstr_size);
int conf_bool(const struct conf *c, struct conf_section *s, const char *key, int def, int *out,
	      char *errstr, size_t errstr_size);
/* Durations: "500ms", "30s", "5m", "24h", "7d" (a bare number is ms). */
int conf_duration_ms(const struct conf *c, struct conf_section *s, const char *key, int64_t def,
		     int64_t *out, char *errstr, size_t errstr_size);
/* Sizes: "512", "64k", "16m", "1g" bytes. */
int conf_size(const struct conf *c, struct conf_section *s, const char *key, int64_t def,
	      int64_t *out, char *errstr, size_t errstr_size);

/* Report the first key nobody read: "path:line: unknown key 'x' in [type]". */
int conf_unused(const struct conf *c, char *errstr, size_t errstr_size);

#endif

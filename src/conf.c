#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define CONF_MAX_FILE (1u << 20)
#define CONF_MAX_LINE 8192

static char *trim(char *s)
{
	char *e;
	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* A value written in matching single or double quotes, without them. */
static char *unquote(char *val)
{
	size_t n = strlen(val);
	if (n >= 2 && ((val[0] == '"' && val[n - 1] == '"') || (val[0] == '\'' && val[n - 1] == '\''))) {
		val[n - 1] = '\0';
		val++;
	}
	return val;
}

char *conf_expand(const char *s, char *errstr, size_t errstr_size)
{
	size_t cap = strlen(s) + 64, n = 0;
	char *out = malloc(cap);
	if (!out)
		goto oom;
	while (*s) {
		const char *add;
		size_t addlen;
		char name[256];
		if (s[0] == '$' && s[1] == '{') {
			const char *end = strchr(s + 2, '}');
			const char *def = NULL;
			size_t nlen;
			if (!end) {
				util_seterr(errstr, errstr_size, "unterminated ${ in value");
				goto fail;
			}
			nlen = (size_t)(end - (s + 2));
			{
				const char *colon = memchr(s + 2, ':', nlen);
				if (colon && colon[1] == '-') {
					def = colon + 2;
					nlen = (size_t)(colon - (s + 2));
				}
			}
			if (nlen == 0 || nlen >= sizeof name) {
				util_seterr(errstr, errstr_size, "bad variable name in ${...}");
				goto fail;
			}
			memcpy(name, s + 2, nlen);
			name[nlen] = '\0';
			add = getenv(name);
			if (add && *add) {
				addlen = strlen(add);
			} else if (def) {
				add = def;
				addlen = (size_t)(end - def);
			} else {
				util_seterr(errstr, errstr_size,
					    "environment variable %s is not set (use ${%s:-default})", name, name);
				goto fail;
			}
			s = end + 1;
		} else {
			add = s;
			addlen = 1;
			s++;
		}
		if (n + addlen + 1 > cap) {
			char *np;
			cap = (n + addlen + 1) * 2;
			np = realloc(out, cap);
			if (!np)
				goto oom;
			out = np;
		}
		memcpy(out + n, add, addlen);
		n += addlen;
	}
	out[n] = '\0';
	return out;
oom:
	util_seterr(errstr, errstr_size, "out of memory");
fail:
	free(out);
	return NULL;
}

static struct conf_section *add_section(struct conf *c, const char *type, const char *name,
					int line)
{
	struct conf_section *s;
	if (c->n == c->cap) {
		int cap = c->cap ? c->cap * 2 : 8;
		struct conf_section *ns = realloc(c->sec, (size_t)cap * sizeof *ns);
		if (!ns)
			return NULL;
		c->sec = ns;
		c->cap = cap;
	}
	s = &c->sec[c->n];
	memset(s, 0, sizeof *s);
	s->type = strdup(type);
	s->name = name ? strdup(name) : NULL;
	s->line = line;
	if (!s->type || (name && !s->name)) {
		free(s->type);
		free(s->name);
		return NULL;
	}
	c->n++;
	return s;
}

static int add_kv(struct conf_section *s, const char *key, char *value, int line)
{
	if (s->n == s->cap) {
		int cap = s->cap ? s->cap * 2 : 8;
		struct conf_kv *nk = realloc(s->kv, (size_t)cap * sizeof *nk);
		if (!nk)
			return -1;
		s->kv = nk;
		s->cap = cap;
	}
	s->kv[s->n].key = strdup(key);
	s->kv[s->n].value = value;
	s->kv[s->n].line = line;
	s->kv[s->n].used = 0;
	if (!s->kv[s->n].key)
		return -1;
	s->n++;
	return 0;
}

struct conf *conf_parse(const char *text, const char *path, char *errstr, size_t errstr_size)
{
	struct conf *c = calloc(1, sizeof *c);
	struct conf_section *cur = NULL;
	char line[CONF_MAX_LINE], err[256];
	const char *p = text;
	int lineno = 0;

	if (!c || !(c->path = strdup(path))) {
		free(c);
		util_seterr(errstr, errstr_size, "out of memory");
		return NULL;
	}
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char *l, *eq;
		lineno++;
		if (len >= sizeof line) {
			util_seterr(errstr, errstr_size, "%s:%d: line longer than %d bytes", path, lineno,
				    CONF_MAX_LINE);
			goto fail;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		p = nl ? nl + 1 : p + len;
		l = trim(line);
		if (!*l || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *end = strchr(l, ']'), *type, *name;
			if (!end || end[1] != '\0') {
				util_seterr(errstr, errstr_size, "%s:%d: section header needs a closing ]",
					    path, lineno);
				goto fail;
			}
			*end = '\0';
			type = trim(l + 1);
			name = type;
			while (*name && !isspace((unsigned char)*name))
				name++;
			if (*name) {
				*name++ = '\0';
				name = trim(name);
			}
			if (!*type) {
				util_seterr(errstr, errstr_size, "%s:%d: empty section name", path, lineno);
				goto fail;
			}
			cur = add_section(c, type, *name ? name : NULL, lineno);
			if (!cur)
				goto oom;
			continue;
		}
		eq = strchr(l, '=');
		if (!eq) {
			util_seterr(errstr, errstr_size, "%s:%d: expected 'key = value' or '[section]'",
				    path, lineno);
			goto fail;
		}
		if (!cur) {
			util_seterr(errstr, errstr_size, "%s:%d: key outside of any [section]", path,
				    lineno);
			goto fail;
		}
		*eq = '\0';
		{
			char *key = trim(l), *val = unquote(trim(eq + 1)), *exp;
			if (!*key) {
				util_seterr(errstr, errstr_size, "%s:%d: empty key", path, lineno);
				goto fail;
			}
			if (conf_kv(cur, key)) {
				util_seterr(errstr, errstr_size, "%s:%d: key '%s' repeated in [%s]", path,
					    lineno, key, cur->type);
				goto fail;
			}
			exp = conf_expand(val, err, sizeof err);
			if (!exp) {
				util_seterr(errstr, errstr_size, "%s:%d: %s", path, lineno, err);
				goto fail;
			}
			if (add_kv(cur, key, exp, lineno) != 0) {
				free(exp);
				goto oom;
			}
		}
	}
	return c;
oom:
	util_seterr(errstr, errstr_size, "out of memory");
fail:
	conf_free(c);
	return NULL;
}

struct conf *conf_load(const char *path, char *errstr, size_t errstr_size)
{
	size_t len;
	char *text = util_read_file(path, CONF_MAX_FILE, &len, errstr, errstr_size);
	struct conf *c;
	if (!text)
		return NULL;
	if (memchr(text, '\0', len)) {
		free(text);
		util_seterr(errstr, errstr_size, "%s: contains a NUL byte", path);
		return NULL;
	}
	c = conf_parse(text, path, errstr, errstr_size);
	free(text);
	return c;
}

void conf_free(struct conf *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->n; i++) {
		for (int k = 0; k < c->sec[i].n; k++) {
			free(c->sec[i].kv[k].key);
			free(c->sec[i].kv[k].value);
		}
		free(c->sec[i].kv);
		free(c->sec[i].type);
		free(c->sec[i].name);
	}
	free(c->sec);
	free(c->path);
	free(c);
}

/* The value of a .env line, in place: "double" (with \" \\ \n escapes) or
 * 'single' quoted (literal), each optionally followed by whitespace and a
 * # comment; unquoted, up to a # that follows whitespace, trimmed. NULL with
 * *why when a quote is not closed or text follows the closing one. */
static char *env_value(char *v, const char **why)
{
	char q = *v, *out, *w;
	if (q != '"' && q != '\'') {
		for (w = v; *w; w++)
			if (*w == '#' && (w == v || w[-1] == ' ' || w[-1] == '\t')) {
				*w = '\0';
				break;
			}
		return trim(v);
	}
	out = w = ++v;
	for (; *v && *v != q; v++) {
		if (q == '"' && *v == '\\' && (v[1] == '"' || v[1] == '\\' || v[1] == 'n')) {
			v++;
			*w++ = *v == 'n' ? '\n' : *v;
		} else {
			*w++ = *v;
		}
	}
	if (*v != q) {
		*why = q == '"' ? "unterminated double quote" : "unterminated single quote";
		return NULL;
	}
	*w = '\0';
	for (v++; *v == ' ' || *v == '\t' || *v == '\r' || *v == '\n'; v++)
		;
	if (*v && *v != '#') {
		*why = "unexpected text after the closing quote";
		return NULL;
	}
	return out;
}

static int env_name_ok(const char *k)
{
	if (!*k || !(isalpha((unsigned char)*k) || *k == '_'))
		return 0;
	for (; *k; k++)
		if (!(isalnum((unsigned char)*k) || *k == '_'))
			return 0;
	return 1;
}

int conf_env_file(const char *path, char *errstr, size_t errstr_size)
{
	FILE *f = fopen(path, "r");
	char line[CONF_MAX_LINE];
	int lineno = 0;
	if (!f)
		return errno == ENOENT ? 0 : util_seterr(errstr, errstr_size, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof line, f)) {
		char *l = trim(line), *eq, *val, *key;
		const char *why = NULL;
		lineno++;
		if (!*l || *l == '#')
			continue;
		if (strncmp(l, "export ", 7) == 0)
			l = trim(l + 7);
		eq = strchr(l, '=');
		if (!eq) {
			fclose(f);
			return util_seterr(errstr, errstr_size, "%s:%d: expected KEY=VALUE", path, lineno);
		}
		*eq = '\0';
		key = trim(l);
		if (!env_name_ok(key)) {
			fclose(f);
			return util_seterr(errstr, errstr_size,
					   "%s:%d: '%s' is not a variable name (letters, digits, _)", path,
					   lineno, key);
		}
		val = env_value(trim(eq + 1), &why);
		if (!val) {
			fclose(f);
			/* the value may be a secret: name the variable, never the value */
			return util_seterr(errstr, errstr_size, "%s:%d: %s: %s", path, lineno, key, why);
		}
		setenv(key, val, 0);
	}
	fclose(f);
	return 0;
}

struct conf_section *conf_next(struct conf *c, const char *type, struct conf_section *prev)
{
	int start = prev ? (int)(prev - c->sec) + 1 : 0;
	for (int i = start; i < c->n; i++)
		if (strcmp(c->sec[i].type, type) == 0)
			return &c->sec[i];
	return NULL;
}

struct conf_section *conf_section(struct conf *c, const char *type, const char *name)
{
	for (struct conf_section *s = conf_next(c, type, NULL); s; s = conf_next(c, type, s))
		if (!name || (s->name && strcmp(s->name, name) == 0))
			return s;
	return NULL;
}

struct conf_kv *conf_kv(struct conf_section *s, const char *key)
{
	if (!s)
		return NULL;
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->kv[i].key, key) == 0) {
			s->kv[i].used = 1;
			return &s->kv[i];
		}
	return NULL;
}

const char *conf_str(struct conf_section *s, const char *key, const char *def)
{
	struct conf_kv *kv = conf_kv(s, key);
	return kv ? kv->value : def;
}

/* Parse a number with an optional unit suffix from `units` (each a suffix and
 * its multiplier). */
struct unit {
	const char *suffix;
	int64_t mult;
};

static int parse_scaled(const char *v, const struct unit *units, int64_t *out)
{
	char *end;
	long long n;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || end == v || n < 0)
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	if (!*end) {
		*out = n;
		return 0;
	}
	for (const struct unit *u = units; u->suffix; u++) {
		if (strcasecmp(end, u->suffix) == 0) {
			if (n > INT64_MAX / u->mult)
				return -1;
			*out = n * u->mult;
			return 0;
		}
	}
	return -1;
}

static int typed(const struct conf *c, struct conf_section *s, const char *key,
		 const struct unit *units, const char *expected, int64_t def, int64_t min,
		 int64_t max, int64_t *out, char *errstr, size_t errstr_size)
{
	struct conf_kv *kv = conf_kv(s, key);
	if (!kv) {
		*out = def;
		return 0;
	}
	if (parse_scaled(kv->value, units, out) != 0)
		return util_seterr(errstr, errstr_size, "%s:%d: %s: expected %s, got '%s'", c->path,
				   kv->line, key, expected, kv->value);
	if (*out < min || *out > max)
		return util_seterr(errstr, errstr_size, "%s:%d: %s: %lld is outside %lld..%lld",
				   c->path, kv->line, key, (long long)*out, (long long)min,
				   (long long)max);
	return 0;
}

int conf_int(const struct conf *c, struct conf_section *s, const char *key, int64_t def,
	     int64_t min, int64_t max, int64_t *out, char *errstr, size_t errstr_size)
{
	static const struct unit none[] = { { NULL, 0 } };
	return typed(c, s, key, none, "an integer", def, min, max, out, errstr, errstr_size);
}

int conf_duration_ms(const struct conf *c, struct conf_section *s, const char *key, int64_t def,
		     int64_t *out, char *errstr, size_t errstr_size)
{
	static const struct unit u[] = { { "ms", 1 },	     { "s", 1000 },	  { "m", 60000 },
					 { "h", 3600000 }, { "d", 86400000 }, { NULL, 0 } };
	return typed(c, s, key, u, "a duration such as 500ms, 30s, 5m, 24h or 7d", def, 0,
		     INT64_MAX / 2, out, errstr, errstr_size);
}

int conf_size(const struct conf *c, struct conf_section *s, const char *key, int64_t def,
	      int64_t *out, char *errstr, size_t errstr_size)
{
	static const struct unit u[] = { { "b", 1 },	     { "k", 1024 },	   { "kb", 1024 },
					 { "m", 1 << 20 }, { "mb", 1 << 20 }, { "g", 1 << 30 },
					 { "gb", 1 << 30 }, { NULL, 0 } };
	return typed(c, s, key, u, "a size such as 512, 64k, 16m or 1g", def, 0, INT64_MAX / 2, out,
		     errstr, errstr_size);
}

int conf_bool(const struct conf *c, struct conf_section *s, const char *key, int def, int *out,
	      char *errstr, size_t errstr_size)
{
	struct conf_kv *kv = conf_kv(s, key);
	static const char *const yes[] = { "true", "yes", "on", "1" }, *const no[] = { "false", "no", "off", "0" };
	if (!kv) {
		*out = def;
		return 0;
	}
	_Static_assert(HB_ARRAY_LEN(yes) == HB_ARRAY_LEN(no), "a no for every yes");
	for (size_t i = 0; i < HB_ARRAY_LEN(yes); i++) {
		if (strcasecmp(kv->value, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(kv->value, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return util_seterr(errstr, errstr_size, "%s:%d: %s: expected true or false, got '%s'",
			   c->path, kv->line, key, kv->value);
}

int conf_unused(const struct conf *c, char *errstr, size_t errstr_size)
{
	for (int i = 0; i < c->n; i++)
		for (int k = 0; k < c->sec[i].n; k++)
			if (!c->sec[i].kv[k].used)
				return util_seterr(errstr, errstr_size, "%s:%d: unknown key '%s' in [%s%s%s]",
						   c->path, c->sec[i].kv[k].line, c->sec[i].kv[k].key,
						   c->sec[i].type, c->sec[i].name ? " " : "",
						   c->sec[i].name ? c->sec[i].name : "");
	return 0;
}

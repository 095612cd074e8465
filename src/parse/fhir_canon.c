/* fhir_canon — the SHA-256 of a resource's canonical JSON (compact, keys
 * sorted: the bytes json_dumps(JSON_COMPACT | JSON_SORT_KEYS) writes),
 * computed while walking the tree instead of building the string. It is the
 * ledger key of a FHIR resource, so it must never change: the unit tests hold
 * it byte for byte against json_dumps. */
#include "parse/fhir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "digest.h"
#include "util.h"

struct canon {
	EVP_MD_CTX *ctx;
	size_t n;
	int bad;
	unsigned char buf[4096];
};

static void put(struct canon *c, const void *p, size_t n)
{
	if (n > sizeof c->buf - c->n) {
		EVP_DigestUpdate(c->ctx, c->buf, c->n);
		c->n = 0;
		if (n > sizeof c->buf) {
			EVP_DigestUpdate(c->ctx, p, n);
			return;
		}
	}
	memcpy(c->buf + c->n, p, n);
	c->n += n;
}

static void put_cb(void *ctx, const char *p, size_t n)
{
	put(ctx, p, n);
}

/* jansson's escaping without JSON_ENSURE_ASCII / JSON_ESCAPE_SLASH. */
static void put_str(struct canon *c, const char *s, size_t n)
{
	util_json_quote(s, n, put_cb, c);
}

static int by_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void walk(struct canon *c, const json_t *v, int depth)
{
	char num[32];
	if (depth > 2048) { /* deeper than the reader lets in */
		c->bad = 1;
		return;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		size_t n = json_object_size(v), k = 0;
		const char *stack[32], **keys = n <= 32 ? stack : malloc(n * sizeof *keys);
		const char *key;
		json_t *item;
		if (!keys) {
			c->bad = 1;
			return;
		}
		json_object_foreach((json_t *)v, key, item)
			keys[k++] = key;
		qsort(keys, k, sizeof *keys, by_key);
		put(c, "{", 1);
		for (size_t i = 0; i < k; i++) {
			if (i)
				put(c, ",", 1);
			put_str(c, keys[i], strlen(keys[i]));
			put(c, ":", 1);
			walk(c, json_object_get(v, keys[i]), depth + 1);
		}
		put(c, "}", 1);
		if (keys != stack)
			free(keys);
		return;
	}
	case JSON_ARRAY:
		put(c, "[", 1);
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				put(c, ",", 1);
			walk(c, json_array_get(v, i), depth + 1);
		}
		put(c, "]", 1);
		return;
	case JSON_STRING:
		put_str(c, json_string_value(v), json_string_length(v));
		return;
	case JSON_INTEGER:
		put(c, num, (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT,
					     json_integer_value(v)));
		return;
	case JSON_REAL: { /* rare: jansson's own formatting */
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!s) {
			c->bad = 1;
			return;
		}
		put(c, s, strlen(s));
		free(s);
		return;
	}
	case JSON_TRUE:
		put(c, "true", 4);
		return;
	case JSON_FALSE:
		put(c, "false", 5);
		return;
	case JSON_NULL:
		put(c, "null", 4);
		return;
	}
}

int fhir_canonical_sha256(const json_t *v, uint8_t out[32])
{
	struct canon *c = malloc(sizeof *c);
	unsigned int len = 0;
	int ok;
	if (!c)
		return -1;
	c->n = 0;
	c->bad = 0;
	c->ctx = EVP_MD_CTX_new();
	ok = c->ctx && EVP_DigestInit_ex(c->ctx, digest_sha256(), NULL);
	if (ok) {
		walk(c, v, 0);
		EVP_DigestUpdate(c->ctx, c->buf, c->n);
		ok = EVP_DigestFinal_ex(c->ctx, out, &len) && !c->bad;
	}
	EVP_MD_CTX_free(c->ctx);
	free(c);
	return ok ? 0 : -1;
}

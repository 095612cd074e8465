/* event — event ids and the JSON and Avro encodings of an event. */
#include "map/map_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util.h"

/* The hl7bridge namespace for UUIDv5 (a fixed random UUID: changing it
 * changes every eventId ever published, so it never changes). */
static const uint8_t hb_namespace[16] = { 0x6b, 0x1e, 0x2f, 0x0c, 0x9a, 0x51, 0x4d, 0x3e,
					  0x8f, 0x27, 0x5c, 0x0b, 0xd4, 0x61, 0x73, 0xa9 };

void map_uuid5(char out[37], const void *name, size_t len);

void map_uuid5(char out[37], const void *name, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t u[16] = { 0 };

	if (c && EVP_DigestInit_ex(c, EVP_sha1(), NULL)) {
		EVP_DigestUpdate(c, hb_namespace, sizeof(hb_namespace));
		EVP_DigestUpdate(c, name, len);
		EVP_DigestFinal_ex(c, md, &mdlen);
		memcpy(u, md, 16);
	}
	EVP_MD_CTX_free(c);
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x50); /* version 5 */
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
		 u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
		 u[14], u[15]);
}

void map_event_id(char out[37], const void *key, size_t key_len, size_t index)
{
	/* name = key bytes, 0x1f, the index in decimal */
	char stackbuf[256];
	char idx[24];
	int il = snprintf(idx, sizeof(idx), "%zu", index);
	size_t n = key_len + 1 + (size_t)il;
	char *buf = n <= sizeof(stackbuf) ? stackbuf : malloc(n);
	if (!buf) {
		memset(out, '0', 36);
		out[36] = '\0';
		return;
	}
	if (key_len)
		memcpy(buf, key, key_len);
	buf[key_len] = 0x1f;
	memcpy(buf + key_len + 1, idx, (size_t)il);
	map_uuid5(out, buf, n);
	if (buf != stackbuf)
		free(buf);
}

char *map_event_json(const struct map_event *ev)
{
	return json_dumps(ev->event, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

/* ---- Avro ---------------------------------------------------------------------- */

static int avro_put(const struct map_field *f, json_t *j, avro_value_t *v, char *errstr,
		    size_t n);

static int avro_put_nonnull(const struct map_field *f, json_t *j, avro_value_t *v,
			    char *errstr, size_t n)
{
	switch (f->type) {
	case MF_STRING: {
		const char *s = json_string_value(j);
		if (!s)
			return util_seterr(errstr, n, "field %s: expected a string", f->name);
		/* avro-c counts the terminating NUL in the size */
		if (avro_value_set_string_len(v, s, json_string_length(j) + 1))
			return util_seterr(errstr, n, "field %s: %s", f->name, avro_strerror());
		return 0;
	}
	case MF_RECORD:
		if (!json_is_object(j))
			return util_seterr(errstr, n, "field %s: expected a record", f->name);
		for (size_t i = 0; i < f->nfields; i++) {
			avro_value_t child;
			if (avro_value_get_by_index(v, i, &child, NULL))
				return util_seterr(errstr, n, "field %s: %s", f->fields[i].name,
						   avro_strerror());
			if (avro_put(&f->fields[i], json_object_get(j, f->fields[i].name), &child,
				     errstr, n))
				return -1;
		}
		return 0;
	case MF_ARRAY: {
		size_t i;
		json_t *item;
		if (!json_is_array(j))
			return util_seterr(errstr, n, "field %s: expected an array", f->name);
		avro_value_reset(v);
		json_array_foreach(j, i, item) {
			avro_value_t elem;
			struct map_field itf = { .name = f->name, .type = f->item,
						 .fields = f->fields, .nfields = f->nfields };
			if (avro_value_append(v, &elem, NULL))
				return util_seterr(errstr, n, "field %s: %s", f->name,
						   avro_strerror());
			if (avro_put_nonnull(&itf, item, &elem, errstr, n))
				return -1;
		}
		return 0;
	}
	}
	return util_seterr(errstr, n, "field %s: unsupported type", f->name);
}

static int avro_put(const struct map_field *f, json_t *j, avro_value_t *v, char *errstr,
		    size_t n)
{
	if (f->nullable) {
		avro_value_t branch;
		int isnull = j == NULL || json_is_null(j);
		if (avro_value_set_branch(v, isnull ? 0 : 1, &branch))
			return util_seterr(errstr, n, "field %s: %s", f->name, avro_strerror());
		if (isnull)
			return avro_value_set_null(&branch) ? -1 : 0;
		return avro_put_nonnull(f, j, &branch, errstr, n);
	}
	if (!j)
		return util_seterr(errstr, n, "field %s: missing", f->name);
	return avro_put_nonnull(f, j, v, errstr, n);
}

ssize_t map_event_avro(const struct map_event *ev, void *buf, size_t size, char *errstr,
		       size_t errstr_size)
{
	struct map_schema *sc = (struct map_schema *)ev->schema;
	avro_writer_t w;
	ssize_t len;

	avro_value_reset(&sc->value);
	if (avro_put_nonnull(&sc->root, ev->event, &sc->value, errstr, errstr_size))
		return -1;
	w = avro_writer_memory(buf, (int64_t)size);
	if (!w)
		return util_seterr(errstr, errstr_size, "avro: %s", avro_strerror());
	if (avro_value_write(w, &sc->value)) {
		size_t need = 0;
		avro_value_sizeof(&sc->value, &need);
		avro_writer_free(w);
		return util_seterr(errstr, errstr_size, "avro: buffer of %zu bytes too small, "
				   "%zu needed", size, need);
	}
	len = (ssize_t)avro_writer_tell(w);
	avro_writer_free(w);
	return len;
}

/* event — event ids and the JSON and Avro encodings of an event. */
#include "map/map_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "digest.h"

#include "util.h"

/* The hl7bridge namespace for UUIDv5 (a fixed random UUID: changing it
 * changes every eventId ever published, so it never changes). */
static const uint8_t hb_namespace[16] = { 0x6b, 0x1e, 0x2f, 0x0c, 0x9a, 0x51, 0x4d, 0x3e,
					  0x8f, 0x27, 0x5c, 0x0b, 0xd4, 0x61, 0x73, 0xa9 };

int map_uuid5(char out[37], const void *name, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA_DIGEST_LENGTH];
	unsigned char stackbuf[512];
	unsigned char *buf = len + 16 <= sizeof(stackbuf) ? stackbuf : malloc(len + 16);
	uint8_t u[16];

	if (!buf)
		return -1;
	memcpy(buf, hb_namespace, 16);
	memcpy(buf + 16, name, len);
	int ok = EVP_Digest(buf, len + 16, md, NULL, digest_sha1(), NULL);
	if (buf != stackbuf)
		free(buf);
	if (!ok)
		return -1;
	memcpy(u, md, sizeof(u));
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x50); /* version 5 */
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	for (size_t i = 0, k = 0; i < HB_ARRAY_LEN(u); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[k++] = '-';
		out[k++] = hex[u[i] >> 4];
		out[k++] = hex[u[i] & 15];
	}
	out[36] = '\0';
	return 0;
}

int map_event_id(char out[37], const void *key, size_t key_len, size_t index)
{
	/* name = key bytes, 0x1f, the index in decimal */
	char stackbuf[256];
	char idx[24], *ip = idx + sizeof(idx);
	size_t v = index;
	do {
		*--ip = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	int il = (int)(idx + sizeof(idx) - ip);
	size_t n = key_len + 1 + (size_t)il;
	char *buf = n <= sizeof(stackbuf) ? stackbuf : malloc(n);
	if (!buf)
		return -1;
	if (key_len)
		memcpy(buf, key, key_len);
	buf[key_len] = 0x1f;
	memcpy(buf + key_len + 1, ip, (size_t)il);
	int rc = map_uuid5(out, buf, n);
	if (buf != stackbuf)
		free(buf);
	return rc;
}

char *map_event_json(const struct map_event *ev)
{
	return map_node_json(&ev->schema->root, ev->tree, NULL);
}

ssize_t map_event_json_to(const struct map_event *ev, char **buf, size_t *cap)
{
	return map_node_json_to(&ev->schema->root, ev->tree, buf, cap);
}

json_t *map_event_object(const struct map_event *ev)
{
	return map_node_to_jansson(&ev->schema->root, ev->tree);
}

/* ---- Avro ---------------------------------------------------------------------- */

static int avro_put(const struct map_field *f, const struct map_node *j, avro_value_t *v,
		    char *errstr, size_t n);

static int avro_put_nonnull(const struct map_field *f, enum map_ftype type,
			    const struct map_node *j, avro_value_t *v, char *errstr, size_t n)
{
	switch (type) {
	case MF_STRING:
		if (j->kind != MN_STR)
			return util_seterr(errstr, n, "field %s: expected a string", f->name);
		/* avro-c counts a terminating NUL in the size; node strings are terminated */
		if (avro_value_set_string_len(v, j->s, j->len + 1))
			return util_seterr(errstr, n, "field %s: %s", f->name, avro_strerror());
		return 0;
	case MF_RECORD:
		if (j->kind != MN_REC)
			return util_seterr(errstr, n, "field %s: expected a record", f->name);
		for (size_t i = 0; i < f->nfields; i++) {
			avro_value_t child;
			if (avro_value_get_by_index(v, i, &child, NULL))
				return util_seterr(errstr, n, "field %s: %s", f->fields[i].name,
						   avro_strerror());
			if (avro_put(&f->fields[i], &j->kids[i], &child, errstr, n))
				return -1;
		}
		return 0;
	case MF_ARRAY:
		if (j->kind != MN_ARR)
			return util_seterr(errstr, n, "field %s: expected an array", f->name);
		avro_value_reset(v);
		for (size_t i = 0; i < j->n; i++) {
			avro_value_t elem;
			if (avro_value_append(v, &elem, NULL))
				return util_seterr(errstr, n, "field %s: %s", f->name,
						   avro_strerror());
			/* items of an array of records have the array field's fields */
			if (avro_put_nonnull(f, f->item, &j->kids[i], &elem, errstr, n))
				return -1;
		}
		return 0;
	}
	return util_seterr(errstr, n, "field %s: unsupported type", f->name);
}

static int avro_put(const struct map_field *f, const struct map_node *j, avro_value_t *v,
		    char *errstr, size_t n)
{
	if (f->nullable) {
		avro_value_t branch;
		int isnull = j->kind == MN_NULL;
		if (avro_value_set_branch(v, isnull ? 0 : 1, &branch))
			return util_seterr(errstr, n, "field %s: %s", f->name, avro_strerror());
		if (isnull)
			return avro_value_set_null(&branch) ? -1 : 0;
		return avro_put_nonnull(f, f->type, j, &branch, errstr, n);
	}
	return avro_put_nonnull(f, f->type, j, v, errstr, n);
}

ssize_t map_event_avro(const struct map_event *ev, void *buf, size_t size, char *errstr,
		       size_t errstr_size)
{
	struct map_schema *sc = (struct map_schema *)ev->schema;
	avro_writer_t w;
	ssize_t len;

	pthread_mutex_lock(&sc->value_mu);
	avro_value_reset(&sc->value);
	if (avro_put_nonnull(&sc->root, MF_RECORD, ev->tree, &sc->value, errstr, errstr_size)) {
		len = -1;
	} else if (!(w = avro_writer_memory(buf, (int64_t)size))) {
		len = util_seterr(errstr, errstr_size, "avro: %s", avro_strerror());
	} else if (avro_value_write(w, &sc->value)) {
		size_t need = 0;
		avro_value_sizeof(&sc->value, &need);
		avro_writer_free(w);
		len = util_seterr(errstr, errstr_size, "avro: buffer of %zu bytes too small, "
				  "%zu needed", size, need);
	} else {
		len = (ssize_t)avro_writer_tell(w);
		avro_writer_free(w);
	}
	pthread_mutex_unlock(&sc->value_mu);
	return len;
}

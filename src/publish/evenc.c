#include "publish/evenc.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static const struct {
	const char *name;
	const char *content_type;
	int registry;
} formats[] = {
	[EVENC_JSON] = { "json", "application/json", 0 },
	[EVENC_AVRO] = { "avro", "application/avro", 1 },
};

int evenc_format_parse(const char *name)
{
	for (size_t i = 0; i < HB_ARRAY_LEN(formats); i++)
		if (strcmp(name, formats[i].name) == 0)
			return (int)i;
	return -1;
}

int evenc_format_needs_registry(enum evenc_format f) { return formats[f].registry; }
const char *evenc_content_type(enum evenc_format f) { return formats[f].content_type; }

/* One event never needs more Avro than this (it comes from one message). */
#define EVENC_AVRO_MAX (64u << 20)

/* Consumers decode our bytes with the schema the registry answers for the id,
 * and Avro binary carries no field names. A registry that stores a rewritten
 * text with another field order (Apicurio's ccompat canonical-hash mode sorts
 * a record's fields by name) would make every consumer misread every event,
 * so such a registry is refused at start-up. */
static int check_registered(struct registry *reg, const struct map_schema *sc, int32_t id,
			    char *errstr, size_t errstr_size)
{
	char *text = NULL;
	int same;

	if (registry_fetch(reg, id, &text, errstr, errstr_size) != 0)
		return -1;
	same = map_schema_same_layout(sc, text, strlen(text));
	free(text);
	if (same == 1)
		return 0;
	return util_seterr(errstr, errstr_size,
			   "schema registry: schema id %ld (subject %s) %s; consumers would misread "
			   "the events (does the registry rewrite schemas, e.g. a canonical form?)",
			   (long)id, map_schema_fullname(sc),
			   same < 0 ? "is not a readable Avro schema"
				    : "has other fields, types or field order than the one registered");
}

int evenc_init(struct evenc *e, enum evenc_format format, const struct map_set *maps,
	       struct registry *reg, char *errstr, size_t errstr_size)
{
	size_t n = map_set_schema_count(maps);
	struct evenc ne;

	memset(&ne, 0, sizeof ne);
	ne.format = format;
	ne.maps = maps;
	if (evenc_format_needs_registry(format)) {
		if (!reg)
			return util_seterr(errstr, errstr_size,
					   "Avro values need a schema registry ([registry] url)");
		ne.ids = calloc(n ? n : 1, sizeof *ne.ids);
		if (!ne.ids)
			return util_seterr(errstr, errstr_size, "out of memory");
		for (size_t i = 0; i < n; i++) {
			const struct map_schema *sc = map_set_schema(maps, i);
			ne.ids[i].schema = sc;
			if (registry_register(reg, map_schema_fullname(sc), map_schema_text(sc),
					      &ne.ids[i].id, errstr, errstr_size) != 0 ||
			    check_registered(reg, sc, ne.ids[i].id, errstr, errstr_size) != 0) {
				free(ne.ids);
				return -1;
			}
		}
		ne.nids = n;
	}
	ne.buf = e->buf; /* keep the scratch buffer across re-initialisation */
	ne.cap = e->cap;
	free(e->ids);
	*e = ne;
	return 0;
}

void evenc_clear(struct evenc *e)
{
	free(e->ids);
	free(e->buf);
	memset(e, 0, sizeof *e);
}

int evenc_copy(struct evenc *dst, const struct evenc *src)
{
	*dst = *src;
	dst->buf = NULL;
	dst->cap = 0;
	dst->ids = NULL;
	if (src->nids) {
		dst->ids = malloc(src->nids * sizeof *src->ids);
		if (!dst->ids)
			return -1;
		memcpy(dst->ids, src->ids, src->nids * sizeof *src->ids);
	}
	return 0;
}

static int32_t schema_id(const struct evenc *e, const struct map_schema *sc)
{
	for (size_t i = 0; i < e->nids; i++)
		if (e->ids[i].schema == sc)
			return e->ids[i].id;
	return -1;
}

int evenc_add(struct evenc *e, struct pub_job *job, const struct map_event *ev,
	      const char *origin, char *errstr, size_t errstr_size)
{
	struct pub_hdr h[MAP_MAX_HEADERS + 2];
	const char *key = ev->key && ev->key[0] ? ev->key : NULL;
	size_t klen = key ? strlen(key) : 0;
	char err[256];
	int nh = 0, rc;

	for (size_t i = 0; i < ev->nheaders; i++)
		h[nh++] = (struct pub_hdr){ ev->headers[i].name, ev->headers[i].value };
	h[nh++] = (struct pub_hdr){ "content-type", evenc_content_type(e->format) };
	h[nh++] = (struct pub_hdr){ "hl7bridge-origin", origin };
	if (e->format == EVENC_JSON) {
		ssize_t len = map_event_json_to(ev, &e->buf, &e->cap);
		if (len < 0)
			return util_seterr(errstr, errstr_size, "JSON encoding failed");
		rc = pub_job_add(job, ev->topic, key, klen, e->buf, (size_t)len, h, nh);
		return rc == 0 ? 0 : util_seterr(errstr, errstr_size, "out of memory");
	}
	int32_t id = schema_id(e, ev->schema);
	ssize_t n = -1;
	if (id < 0)
		return util_seterr(errstr, errstr_size, "no registered schema for event %s",
				   ev->event_type);
	/* The encoder cannot say how much room it needs: grow and retry. */
	for (;;) {
		if (e->cap > REGISTRY_WIRE_HEADER) {
			n = map_event_avro(ev, e->buf + REGISTRY_WIRE_HEADER, e->cap - REGISTRY_WIRE_HEADER,
					   err, sizeof err);
			if (n >= 0)
				break;
			if (e->cap >= EVENC_AVRO_MAX)
				return util_seterr(errstr, errstr_size, "Avro encoding failed: %s", err);
		}
		if (util_reserve(&e->buf, &e->cap, e->cap + 1, 65536) != 0)
			return util_seterr(errstr, errstr_size, "out of memory");
	}
	registry_wire_header((uint8_t *)e->buf, id);
	rc = pub_job_add(job, ev->topic, key, klen, e->buf, (size_t)n + REGISTRY_WIRE_HEADER, h, nh);
	return rc == 0 ? 0 : util_seterr(errstr, errstr_size, "out of memory");
}

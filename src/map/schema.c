/* schema — event schemas (.avsc) as the language sees them: the tree of
 * target fields a rule may assign, and the avro-c schema the encoder uses. */
#include "map/map_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Fields the bridge fills itself; a rule naming one is an error. */
static const char *const automatic_fields[] = { "eventId", "eventType", "timestamp",
						 "lineage" };

#define SCHEMA_MAX_DEPTH 16

/* Named records seen so far in one file, for references by name. */
struct named {
	const char *name;
	const struct map_field *rec;
};
struct named_list {
	struct named v[64];
	size_t n;
};

static void field_clear(struct map_field *f)
{
	for (size_t i = 0; i < f->nfields; i++)
		field_clear(&f->fields[i]);
	free(f->fields);
	free(f->name);
	f->fields = NULL;
	f->nfields = 0;
}

static int parse_type(json_t *t, struct map_field *f, struct named_list *nl, int depth,
		      char *errstr, size_t n);

static int parse_record(json_t *t, struct map_field *f, struct named_list *nl, int depth,
			char *errstr, size_t n)
{
	json_t *fields = json_object_get(t, "fields");
	const char *name = json_string_value(json_object_get(t, "name"));
	if (!json_is_array(fields) || !name)
		return util_seterr(errstr, n, "a record needs a name and fields");
	f->type = MF_RECORD;
	size_t nf = json_array_size(fields);
	if (!(f->fields = calloc(nf ? nf : 1, sizeof(*f->fields))))
		return util_seterr(errstr, n, "out of memory");
	f->nfields = nf;
	for (size_t i = 0; i < f->nfields; i++) {
		json_t *fd = json_array_get(fields, i);
		const char *fname = json_string_value(json_object_get(fd, "name"));
		if (!fname)
			return util_seterr(errstr, n, "record %s: field %zu has no name", name, i);
		if (!(f->fields[i].name = strdup(fname)))
			return util_seterr(errstr, n, "out of memory");
		f->fields[i].name_len = strlen(fname);
		if (parse_type(json_object_get(fd, "type"), &f->fields[i], nl, depth + 1, errstr,
			       n) != 0)
			return -1;
	}
	if (nl->n < HB_ARRAY_LEN(nl->v)) {
		nl->v[nl->n].name = name;
		nl->v[nl->n].rec = f;
		nl->n++;
	}
	return 0;
}

static int parse_type(json_t *t, struct map_field *f, struct named_list *nl, int depth,
		      char *errstr, size_t n)
{
	if (depth > SCHEMA_MAX_DEPTH)
		return util_seterr(errstr, n, "schema nests deeper than %d", SCHEMA_MAX_DEPTH);
	if (json_is_string(t)) {
		const char *s = json_string_value(t);
		if (strcmp(s, "string") == 0) {
			f->type = MF_STRING;
			return 0;
		}
		for (size_t i = 0; i < nl->n; i++) {
			const char *dot = strrchr(s, '.');
			if (strcmp(nl->v[i].name, dot ? dot + 1 : s) == 0) {
				/* copy the referenced record's shape */
				const struct map_field *r = nl->v[i].rec;
				f->type = MF_RECORD;
				f->fields = calloc(r->nfields ? r->nfields : 1, sizeof(*f->fields));
				if (!f->fields)
					return util_seterr(errstr, n, "out of memory");
				f->nfields = r->nfields;
				for (size_t k = 0; k < r->nfields; k++) {
					f->fields[k] = r->fields[k];
					f->fields[k].name = strdup(r->fields[k].name);
					f->fields[k].fields = NULL;
					f->fields[k].nfields = 0;
					if (!f->fields[k].name)
						return util_seterr(errstr, n, "out of memory");
					if (r->fields[k].nfields)
						return util_seterr(errstr, n,
							"reuse of nested record %s is not supported", s);
				}
				return 0;
			}
		}
		return util_seterr(errstr, n, "type '%s' is not supported in event schemas "
				   "(strings, records and arrays only)", s);
	}
	if (json_is_array(t)) {
		/* only ["null", X]: an optional field */
		if (json_array_size(t) != 2 ||
		    strcmp(json_string_value(json_array_get(t, 0)) ?: "", "null") != 0)
			return util_seterr(errstr, n, "unions must be [\"null\", T]");
		f->nullable = 1;
		return parse_type(json_array_get(t, 1), f, nl, depth + 1, errstr, n);
	}
	if (json_is_object(t)) {
		const char *kind = json_string_value(json_object_get(t, "type"));
		if (kind && strcmp(kind, "record") == 0)
			return parse_record(t, f, nl, depth, errstr, n);
		if (kind && strcmp(kind, "array") == 0) {
			struct map_field item = { 0 };
			f->type = MF_ARRAY;
			if (parse_type(json_object_get(t, "items"), &item, nl, depth + 1, errstr, n)) {
				field_clear(&item);
				return -1;
			}
			if (item.type == MF_ARRAY || item.nullable) {
				field_clear(&item);
				return util_seterr(errstr, n, "array items must be strings or records");
			}
			f->item = item.type;
			f->fields = item.fields;
			f->nfields = item.nfields;
			return 0;
		}
		if (kind && strcmp(kind, "string") == 0) {
			f->type = MF_STRING;
			return 0;
		}
	}
	return util_seterr(errstr, n, "unsupported type in event schema");
}

struct map_schema *map_schema_load(const char *path, char *errstr, size_t errstr_size)
{
	struct map_schema *sc = calloc(1, sizeof(*sc));
	struct named_list nl = { .n = 0 };
	json_error_t jerr;
	json_t *root = NULL;
	size_t len;
	char err[200];

	if (!sc) {
		util_seterr(errstr, errstr_size, "%s: out of memory", path);
		return NULL;
	}
	pthread_mutex_init(&sc->value_mu, NULL);
	if (!(sc->file = strdup(path))) {
		util_seterr(errstr, errstr_size, "%s: out of memory", path);
		goto fail;
	}
	sc->text = util_read_file(path, MAP_MAX_FILE_SIZE, &len, errstr, errstr_size);
	if (!sc->text)
		goto fail;
	root = json_loadb(sc->text, len, 0, &jerr);
	if (!root) {
		util_seterr(errstr, errstr_size, "%s:%d:%d: %s", path, jerr.line, jerr.column,
			    jerr.text);
		goto fail;
	}
	const char *name = json_string_value(json_object_get(root, "name"));
	const char *ns = json_string_value(json_object_get(root, "namespace"));
	if (!name || !json_is_object(root)) {
		util_seterr(errstr, errstr_size, "%s: the top level must be a named record", path);
		goto fail;
	}
	if (parse_record(root, &sc->root, &nl, 0, err, sizeof(err)) != 0) {
		util_seterr(errstr, errstr_size, "%s: %s", path, err);
		goto fail;
	}
	size_t fl = strlen(name) + (ns ? strlen(ns) + 1 : 0) + 1;
	sc->fullname = malloc(fl);
	/* PrescriptionEvent → prescription */
	size_t nl_len = strlen(name);
	if (nl_len > 5 && strcmp(name + nl_len - 5, "Event") == 0)
		nl_len -= 5;
	sc->event = strndup(name, nl_len);
	if (!sc->fullname || !sc->event) {
		util_seterr(errstr, errstr_size, "%s: out of memory", path);
		goto fail;
	}
	snprintf(sc->fullname, fl, "%s%s%s", ns ? ns : "", ns ? "." : "", name);
	for (char *p = sc->event; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (size_t i = 0; i < sc->root.nfields; i++)
		for (size_t k = 0; k < HB_ARRAY_LEN(automatic_fields); k++)
			if (strcmp(sc->root.fields[i].name, automatic_fields[k]) == 0)
				sc->root.fields[i].automatic = 1;

	if (avro_schema_from_json_length(sc->text, len, &sc->avro) != 0) {
		util_seterr(errstr, errstr_size, "%s: avro: %s", path, avro_strerror());
		goto fail;
	}
	sc->iface = avro_generic_class_from_schema(sc->avro);
	if (!sc->iface || avro_generic_value_new(sc->iface, &sc->value) != 0) {
		util_seterr(errstr, errstr_size, "%s: avro: %s", path, avro_strerror());
		goto fail;
	}
	sc->value_ok = 1;
	json_decref(root);
	return sc;
fail:
	json_decref(root);
	map_schema_free(sc);
	return NULL;
}

void map_schema_free(struct map_schema *sc)
{
	if (!sc)
		return;
	if (sc->value_ok)
		avro_value_decref(&sc->value);
	if (sc->iface)
		avro_value_iface_decref(sc->iface);
	if (sc->avro)
		avro_schema_decref(sc->avro);
	pthread_mutex_destroy(&sc->value_mu);
	field_clear(&sc->root);
	free(sc->event);
	free(sc->fullname);
	free(sc->text);
	free(sc->file);
	free(sc);
}

const struct map_field *map_field_find(const struct map_field *rec, const char *name, size_t len)
{
	for (size_t i = 0; i < rec->nfields; i++)
		if (strlen(rec->fields[i].name) == len &&
		    memcmp(rec->fields[i].name, name, len) == 0)
			return &rec->fields[i];
	return NULL;
}

const char *map_schema_fullname(const struct map_schema *sc) { return sc->fullname; }
const char *map_schema_text(const struct map_schema *sc) { return sc->text; }

int map_schema_same_layout(const struct map_schema *sc, const char *text, size_t len)
{
	avro_schema_t other = NULL;
	int same;

	if (avro_schema_from_json_length(text, len, &other) != 0)
		return -1;
	/* avro_schema_equal walks the fields and branches of its first argument
	 * only: ask both ways, so that an extra one on either side counts. */
	same = avro_schema_equal(sc->avro, other) && avro_schema_equal(other, sc->avro);
	avro_schema_decref(other);
	return same;
}

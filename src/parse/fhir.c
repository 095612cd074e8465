/* fhir — JSON reader, Bundle and NDJSON iteration. The XML reader is in
 * fhir_xml.c and lands in the same tree. */
#include "parse/fhir.h"
#include "parse/fhir_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void fhir_limits_init(fhir_limits_t *lim)
{
	lim->max_size = FHIR_DEFAULT_MAX_SIZE;
	lim->max_depth = FHIR_DEFAULT_MAX_DEPTH;
}

void fhir_seterr(fhir_error_t *err, int line, int column, size_t offset,
		 const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	err->line = line;
	err->column = column;
	err->offset = offset;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
}

const char *fhir_resource_type(const json_t *v)
{
	const char *t = json_string_value(json_object_get(v, "resourceType"));
	return (t && *t) ? t : NULL;
}

/* A resource read from either syntax must be an object naming its type. */
json_t *fhir_check_root(json_t *root, fhir_error_t *err)
{
	if (!json_is_object(root)) {
		fhir_seterr(err, 1, 1, 0, "the document is not a JSON object");
		goto fail;
	}
	if (!fhir_resource_type(root)) {
		fhir_seterr(err, 1, 1, 0, "resourceType missing or not a string");
		goto fail;
	}
	return root;
fail:
	json_decref(root);
	return NULL;
}

/* ---- JSON pre-scan ----
 * jansson knows no depth limit of ours and reports a NUL byte only as a
 * generic error, so a small scanner runs over the bytes first (or alongside,
 * when streaming). It tracks strings so brackets inside them don't count. */
struct jscan {
	size_t depth, max_depth;
	size_t offset, total, max_size;
	int line, col;
	int in_string, escape;
	int failed;
	fhir_error_t *err;
};

static void jscan_init(struct jscan *s, const fhir_limits_t *lim, fhir_error_t *err)
{
	memset(s, 0, sizeof(*s));
	s->max_depth = lim->max_depth;
	s->max_size = lim->max_size;
	s->line = 1;
	s->err = err;
}

static int jscan_feed(struct jscan *s, const unsigned char *p, size_t n)
{
	size_t i;

	s->total += n;
	if (s->total > s->max_size) {
		s->failed = 1;
		fhir_seterr(s->err, 0, 0, s->max_size,
			    "input larger than the max_size limit of %zu bytes", s->max_size);
		return -1;
	}
	for (i = 0; i < n; i++, s->offset++) {
		unsigned char c = p[i];
		s->col++;
		if (c == '\0') {
			s->failed = 1;
			fhir_seterr(s->err, s->line, s->col, s->offset, "NUL byte in input");
			return -1;
		}
		if (c == '\n') {
			s->line++;
			s->col = 0;
		}
		if (s->in_string) {
			if (s->escape)
				s->escape = 0;
			else if (c == '\\')
				s->escape = 1;
			else if (c == '"')
				s->in_string = 0;
			continue;
		}
		if (c == '"') {
			s->in_string = 1;
		} else if (c == '{' || c == '[') {
			if (++s->depth > s->max_depth) {
				s->failed = 1;
				fhir_seterr(s->err, s->line, s->col, s->offset,
					    "nesting deeper than the max_depth limit of %zu",
					    s->max_depth);
				return -1;
			}
		} else if ((c == '}' || c == ']') && s->depth > 0) {
			s->depth--;
		}
	}
	return 0;
}

/* jansson's messages may quote the input ("... near 'text'"); keep only the
 * part before the quote so no value reaches an error. */
static void jansson_err(const json_error_t *je, fhir_error_t *err)
{
	const char *near = strstr(je->text, " near ");
	int n = near ? (int)(near - je->text) : (int)strlen(je->text);

	if (json_error_code(je) == json_error_invalid_utf8) {
		fhir_seterr(err, je->line, je->column,
			    (size_t)(je->position > 0 ? je->position : 0), "JSON: invalid UTF-8");
		return;
	}
	fhir_seterr(err, je->line, je->column, (size_t)(je->position > 0 ? je->position : 0),
		    "JSON: %.*s", n, je->text);
}

/* Flags for every JSON read: duplicate keys refused; \u0000 stays refused
 * (JSON_ALLOW_NUL not set); trailing data refused (no EOF check disable). */
#define FHIR_JSON_FLAGS JSON_REJECT_DUPLICATES

json_t *fhir_read_json(const char *buf, size_t len, const fhir_limits_t *lim,
		       fhir_error_t *err)
{
	fhir_limits_t dl;
	struct jscan s;
	json_error_t je;
	json_t *root;

	if (!lim) {
		fhir_limits_init(&dl);
		lim = &dl;
	}
	jscan_init(&s, lim, err);
	if (jscan_feed(&s, (const unsigned char *)buf, len) != 0)
		return NULL;
	root = json_loadb(buf, len, FHIR_JSON_FLAGS, &je);
	if (!root) {
		jansson_err(&je, err);
		return NULL;
	}
	return fhir_check_root(root, err);
}

struct jstream {
	fhir_read_cb cb;
	void *arg;
	struct jscan scan;
	int read_failed;
};

static size_t jstream_cb(void *buf, size_t size, void *arg)
{
	struct jstream *js = arg;
	size_t n = js->cb(buf, size, js->arg);

	if (n == (size_t)-1) {
		js->read_failed = 1;
		return n;
	}
	if (n > 0 && jscan_feed(&js->scan, buf, n) != 0)
		return (size_t)-1;
	return n;
}

json_t *fhir_read_json_cb(fhir_read_cb cb, void *arg, const fhir_limits_t *lim,
			  fhir_error_t *err)
{
	fhir_limits_t dl;
	struct jstream js;
	json_error_t je;
	json_t *root;

	if (!lim) {
		fhir_limits_init(&dl);
		lim = &dl;
	}
	memset(&js, 0, sizeof(js));
	js.cb = cb;
	js.arg = arg;
	jscan_init(&js.scan, lim, err);
	root = json_load_callback(jstream_cb, &js, FHIR_JSON_FLAGS, &je);
	if (!root) {
		/* Our own limit errors are more precise than jansson's "read error". */
		if (js.scan.failed)
			return NULL;
		if (js.read_failed) {
			fhir_seterr(err, 0, 0, js.scan.offset, "read error");
			return NULL;
		}
		jansson_err(&je, err);
		return NULL;
	}
	return fhir_check_root(root, err);
}

json_t *fhir_read(const char *buf, size_t len, const fhir_limits_t *lim,
		  fhir_error_t *err)
{
	size_t i = 0, bom = 0;

	/* A UTF-8 byte order mark is allowed before either syntax. */
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		i = bom = 3;
	for (; i < len; i++) {
		if (buf[i] == '{') /* jansson refuses a BOM; the JSON starts after it */
			return fhir_read_json(buf + bom, len - bom, lim, err);
		if (buf[i] == '<')
			return fhir_read_xml(buf, len, lim, err);
		if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r' && buf[i] != '\n')
			break;
	}
	fhir_seterr(err, 1, 1, 0, "neither FHIR JSON nor FHIR XML");
	return NULL;
}

/* ---- Bundles ---- */

static const char *const bundle_types[] = {
	"document", "message", "transaction", "transaction-response", "batch",
	"batch-response", "history", "searchset", "collection",
	"subscription-notification", /* R4B and R5 */
};

const char *fhir_bundle_type(const json_t *bundle)
{
	return json_string_value(json_object_get(bundle, "type"));
}

int fhir_bundle_iter_init(fhir_bundle_iter_t *it, json_t *bundle, fhir_error_t *err)
{
	const char *rt = fhir_resource_type(bundle);
	const char *type = fhir_bundle_type(bundle);
	json_t *entries = json_object_get(bundle, "entry");
	size_t i;

	it->entries = NULL;
	it->next = 0;
	if (!rt || strcmp(rt, "Bundle") != 0) {
		fhir_seterr(err, 0, 0, 0, "not a Bundle");
		return -1;
	}
	if (!type) {
		fhir_seterr(err, 0, 0, 0, "Bundle.type missing");
		return -1;
	}
	for (i = 0; i < HB_FHIR_ARRAY_LEN(bundle_types); i++)
		if (strcmp(type, bundle_types[i]) == 0)
			break;
	if (i == HB_FHIR_ARRAY_LEN(bundle_types)) {
		fhir_seterr(err, 0, 0, 0, "Bundle.type is not a known bundle type");
		return -1;
	}
	if (entries && !json_is_array(entries)) {
		fhir_seterr(err, 0, 0, 0, "Bundle.entry is not an array");
		return -1;
	}
	if (strcmp(type, "message") == 0) {
		json_t *first = json_object_get(json_array_get(entries, 0), "resource");
		const char *frt = fhir_resource_type(first);
		if (!frt || strcmp(frt, "MessageHeader") != 0) {
			fhir_seterr(err, 0, 0, 0,
				    "message Bundle: entry[0] is not a MessageHeader");
			return -1;
		}
	}
	it->entries = entries;
	return 0;
}

int fhir_bundle_next(fhir_bundle_iter_t *it, fhir_entry_t *e, fhir_error_t *err)
{
	json_t *entry, *res, *url;

	if (!it->entries || it->next >= json_array_size(it->entries))
		return 0;
	e->index = it->next++;
	entry = json_array_get(it->entries, e->index);
	if (!json_is_object(entry)) {
		fhir_seterr(err, 0, 0, 0, "Bundle.entry[%zu] is not an object", e->index);
		return -1;
	}
	url = json_object_get(entry, "fullUrl");
	if (url && !json_is_string(url)) {
		fhir_seterr(err, 0, 0, 0, "Bundle.entry[%zu].fullUrl is not a string",
			    e->index);
		return -1;
	}
	res = json_object_get(entry, "resource");
	if (res && !fhir_resource_type(res)) {
		fhir_seterr(err, 0, 0, 0,
			    "Bundle.entry[%zu].resource has no resourceType", e->index);
		return -1;
	}
	e->full_url = json_string_value(url);
	e->resource = res;
	e->entry = entry;
	return 1;
}

/* ---- NDJSON ---- */

void fhir_ndjson_init(fhir_ndjson_t *nd, const char *buf, size_t len,
		      const fhir_limits_t *lim)
{
	nd->buf = buf;
	nd->len = len;
	nd->pos = 0;
	nd->line = 0;
	if (lim)
		nd->lim = *lim;
	else
		fhir_limits_init(&nd->lim);
}

/* Advance to the next non-blank line: 1 with (*start, *n), 0 at the end. */
static int ndjson_line(fhir_ndjson_t *nd, const char **start_out, size_t *n_out)
{
	while (nd->pos < nd->len) {
		const char *start = nd->buf + nd->pos;
		const char *nl = memchr(start, '\n', nd->len - nd->pos);
		size_t n = nl ? (size_t)(nl - start) : nd->len - nd->pos;
		size_t i;

		nd->pos += n + (nl ? 1 : 0);
		nd->line++;
		for (i = 0; i < n; i++)
			if (start[i] != ' ' && start[i] != '\t' && start[i] != '\r')
				break;
		if (i == n)
			continue; /* blank lines (and a final newline) carry nothing */
		*start_out = start;
		*n_out = n;
		return 1;
	}
	return 0;
}

int fhir_ndjson_next(fhir_ndjson_t *nd, json_t **res, size_t *line_out,
		     fhir_error_t *err)
{
	const char *start;
	size_t n;
	*res = NULL;
	if (!ndjson_line(nd, &start, &n))
		return 0;
	if (line_out)
		*line_out = nd->line;
	*res = fhir_read_json(start, n, &nd->lim, err);
	if (!*res) {
		/* Position within the line becomes position within the file. */
		if (err) {
			err->line = (int)nd->line;
			err->offset += (size_t)(start - nd->buf);
		}
		return -1;
	}
	return 1;
}

int fhir_ndjson_skip(fhir_ndjson_t *nd)
{
	const char *start;
	size_t n;
	return ndjson_line(nd, &start, &n);
}

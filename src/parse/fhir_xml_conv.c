/* fhir_xml_conv — a parsed FHIR XML document into FHIR's JSON tree.
 * The rules are those of the FHIR R4 JSON representation; see fhir.h for what
 * the built-in type table does not know. Errors name the element and its
 * line, never a value. */
#include "parse/fhir_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#define FHIR_NS "http://hl7.org/fhir"
#define XHTML_NS "http://www.w3.org/1999/xhtml"

json_t *fhir_xml_convert(xmlDocPtr doc, fhir_error_t *err);

struct conv {
	xmlDocPtr doc;
	fhir_error_t *err;
	int said; /* conv_fail wrote err: a failure without it is out of memory */
};

static int conv_fail(struct conv *c, xmlNodePtr n, const char *what, const char *name)
{
	fhir_seterr(c->err, n ? (int)xmlGetLineNo(n) : 0, 0, 0, "XML: <%s>: %s",
		    name ? name : "?", what);
	c->said = 1;
	return -1;
}

static int in_ns(xmlNodePtr n, const char *ns)
{
	return n->ns && n->ns->href && strcmp((const char *)n->ns->href, ns) == 0;
}

/* An attribute without namespace, or NULL. */
static const char *attr(xmlNodePtr n, const char *name)
{
	xmlAttrPtr a;

	for (a = n->properties; a; a = a->next)
		if (!a->ns && strcmp((const char *)a->name, name) == 0 && a->children &&
		    a->children->type == XML_TEXT_NODE)
			return (const char *)a->children->content;
	for (a = n->properties; a; a = a->next)
		if (!a->ns && strcmp((const char *)a->name, name) == 0)
			return ""; /* present but empty */
	return NULL;
}

/* JSON number grammar, which is also FHIR's decimal/integer grammar. */
static int json_number_syntax(const char *s, int *is_real)
{
	const char *p = s;

	*is_real = 0;
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return 0;
	if (*p == '.') {
		*is_real = 1;
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		*is_real = 1;
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

/* The typed JSON value of a primitive's value attribute, the same value
 * jansson produces for the same text in JSON (integers without '.'/'e' are
 * integers, everything else a double). */
static json_t *prim_value(struct conv *c, xmlNodePtr n, enum fhir_prim kind,
			  const char *v)
{
	const char *name = (const char *)n->name;
	int is_real;

	switch (kind) {
	case FHIR_BOOLEAN:
		if (strcmp(v, "true") == 0)
			return json_true();
		if (strcmp(v, "false") == 0)
			return json_false();
		conv_fail(c, n, "value is not a boolean", name);
		return NULL;
	case FHIR_INTEGER:
	case FHIR_DECIMAL:
		if (!json_number_syntax(v, &is_real) || (kind == FHIR_INTEGER && is_real)) {
			conv_fail(c, n, kind == FHIR_INTEGER ? "value is not an integer"
							     : "value is not a decimal", name);
			return NULL;
		}
		errno = 0;
		if (is_real) {
			double d = strtod(v, NULL);
			if (errno == ERANGE || !isfinite(d)) {
				conv_fail(c, n, "decimal out of range", name);
				return NULL;
			}
			return json_real(d);
		} else {
			long long i = strtoll(v, NULL, 10);
			if (errno == ERANGE) {
				conv_fail(c, n, "integer out of range", name);
				return NULL;
			}
			return json_integer((json_int_t)i);
		}
	default:
		return json_string(v);
	}
}

static json_t *conv_resource(struct conv *c, xmlNodePtr el);
static int conv_children(struct conv *c, xmlNodePtr parent, json_t *obj,
			 const char *owner, int is_resource);

/* The single resource inside <contained>, <resource> or <outcome>. */
static json_t *conv_resource_holder(struct conv *c, xmlNodePtr holder)
{
	xmlNodePtr ch, found = NULL;

	for (ch = holder->children; ch; ch = ch->next) {
		if (ch->type != XML_ELEMENT_NODE)
			continue;
		if (found) {
			conv_fail(c, ch, "holds more than one resource", (const char *)holder->name);
			return NULL;
		}
		found = ch;
	}
	if (!found) {
		conv_fail(c, holder, "holds no resource", (const char *)holder->name);
		return NULL;
	}
	return conv_resource(c, found);
}

/* The narrative div, serialized as XHTML text the way FHIR JSON carries it. */
static json_t *conv_xhtml(struct conv *c, xmlNodePtr n)
{
	xmlBufferPtr buf;
	json_t *s = NULL;

	if (!in_ns(n, XHTML_NS)) {
		conv_fail(c, n, "narrative is not in the XHTML namespace", (const char *)n->name);
		return NULL;
	}
	buf = xmlBufferCreate();
	if (!buf)
		return NULL;
	if (xmlNodeDump(buf, c->doc, n, 0, 0) >= 0)
		s = json_stringn((const char *)xmlBufferContent(buf), (size_t)xmlBufferLength(buf));
	xmlBufferFree(buf);
	if (!s)
		conv_fail(c, n, "narrative could not be serialized", (const char *)n->name);
	return s;
}

/* Append (value, ext) to the repeating element `name`: `name` gets the value
 * or null, `_name` gets the extension object or null, created on the first
 * extension and padded so both stay aligned. */
static int put_array(json_t *obj, const char *name, const char *uname, json_t *val,
		     json_t *ext)
{
	json_t *arr = json_object_get(obj, name), *earr = json_object_get(obj, uname);

	if (!arr) {
		arr = json_array();
		if (!arr || json_object_set_new(obj, name, arr) != 0)
			goto fail;
	}
	if (ext && !earr) {
		earr = json_array();
		if (!earr || json_object_set_new(obj, uname, earr) != 0)
			goto fail;
	}
	if (earr)
		while (json_array_size(earr) < json_array_size(arr))
			if (json_array_append_new(earr, json_null()) != 0)
				goto fail;
	if (json_array_append_new(arr, val ? val : json_null()) != 0) {
		val = NULL;
		goto fail;
	}
	val = NULL;
	if (earr && json_array_append_new(earr, ext ? ext : json_null()) != 0) {
		ext = NULL;
		goto fail;
	}
	return 0;
fail:
	json_decref(val);
	json_decref(ext);
	return -1;
}

/* Turn a single element that turns out to repeat (unknown to the type
 * table) into an array, keeping `name` and `_name` aligned. -1 when out of
 * memory (obj unchanged). */
static int promote_to_array(json_t *obj, const char *name, const char *uname)
{
	json_t *v = json_object_get(obj, name), *e = json_object_get(obj, uname);
	json_t *arr, *earr = NULL;

	if (json_is_array(v) || (!v && json_is_array(e)))
		return 0;
	arr = json_array();
	if (!arr || json_array_append(arr, v ? v : json_null()) != 0)
		goto fail;
	if (e && (!(earr = json_array()) || json_array_append(earr, e) != 0))
		goto fail;
	if (earr && json_object_set_new(obj, uname, earr) != 0) {
		earr = NULL; /* taken even on failure */
		goto fail;
	}
	if (json_object_set_new(obj, name, arr) != 0)
		return -1; /* taken; `_name` already an array: the caller fails */
	return 0;
fail:
	json_decref(arr);
	json_decref(earr);
	return -1;
}

/* After all children: pad `_x` arrays to `x`, drop value arrays that only
 * hold nulls (every value missing, only extensions present). -1 when out of
 * memory. */
static int finish_arrays(json_t *obj)
{
	const char *key;
	json_t *v, *tmp;

	json_object_foreach_safe(obj, tmp, key, v) {
		json_t *vals;
		size_t i, n;
		if (key[0] != '_' || !json_is_array(v))
			continue;
		vals = json_object_get(obj, key + 1);
		n = json_array_size(vals);
		while (json_array_size(v) < n)
			if (json_array_append_new(v, json_null()) != 0)
				return -1;
		for (i = 0; i < n; i++)
			if (!json_is_null(json_array_get(vals, i)))
				break;
		if (vals && i == n)
			json_object_del(obj, key + 1);
	}
	return 0;
}

static int conv_element(struct conv *c, xmlNodePtr ch, json_t *obj, const char *owner,
			int is_resource)
{
	const char *name = (const char *)ch->name;
	const char *value = attr(ch, "value"), *id = attr(ch, "id");
	int array = 0, known;
	const char *type = fhir_type_elem(owner, is_resource, name, &array);
	enum fhir_prim kind;
	json_t *val = NULL, *ext = NULL;
	char uname[256];

	if (strlen(name) + 2 > sizeof(uname))
		return conv_fail(c, ch, "element name too long", "?");
	snprintf(uname, sizeof(uname), "_%s", name);
	known = type != NULL;
	if (!type)
		type = value ? "string" : NULL; /* generic rule: value attribute = primitive */
	kind = fhir_type_prim(type);

	if (type && strcmp(type, "Resource") == 0) {
		val = conv_resource_holder(c, ch);
		if (!val)
			return -1;
	} else if (kind == FHIR_XHTML) {
		val = conv_xhtml(c, ch);
		if (!val)
			return -1;
	} else if (kind != FHIR_COMPLEX) {
		if (value) {
			val = prim_value(c, ch, kind, value);
			if (!val)
				return -1;
		}
		ext = json_object();
		if (!ext || conv_children(c, ch, ext, type, 0) != 0)
			goto fail;
		if (id && json_object_set_new(ext, "id", json_string(id)) != 0)
			goto fail;
		if (json_object_size(ext) == 0) {
			json_decref(ext);
			ext = NULL;
		}
		if (!val && !ext) {
			conv_fail(c, ch, "primitive without value or extension", name);
			goto fail;
		}
	} else {
		const char *url = attr(ch, "url");
		if (value) {
			conv_fail(c, ch, "value attribute on a complex element", name);
			goto fail;
		}
		val = json_object();
		if (!val)
			goto fail;
		if (id && json_object_set_new(val, "id", json_string(id)) != 0)
			goto fail;
		if (url && json_object_set_new(val, "url", json_string(url)) != 0)
			goto fail;
		if (conv_children(c, ch, val, type, 0) != 0)
			goto fail;
	}

	if (!known && (json_object_get(obj, name) || json_object_get(obj, uname))) {
		if (promote_to_array(obj, name, uname) != 0)
			goto fail;
		array = 1;
	}
	if (array)
		return put_array(obj, name, uname, val, ext);
	if (json_object_get(obj, name) || json_object_get(obj, uname)) {
		conv_fail(c, ch, "element repeats but allows one", name);
		goto fail;
	}
	if (val && json_object_set_new(obj, name, val) != 0) {
		val = NULL;
		goto fail;
	}
	val = NULL;
	if (ext && json_object_set_new(obj, uname, ext) != 0) {
		ext = NULL;
		goto fail;
	}
	return 0;
fail:
	json_decref(val);
	json_decref(ext);
	return -1;
}

static int conv_children(struct conv *c, xmlNodePtr parent, json_t *obj,
			 const char *owner, int is_resource)
{
	xmlNodePtr ch;

	for (ch = parent->children; ch; ch = ch->next) {
		if (ch->type == XML_TEXT_NODE || ch->type == XML_CDATA_SECTION_NODE) {
			const xmlChar *p = ch->content;
			while (p && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
				p++;
			if (p && *p)
				return conv_fail(c, ch, "text content is not allowed here",
						 (const char *)parent->name);
			continue;
		}
		if (ch->type == XML_ENTITY_REF_NODE)
			return conv_fail(c, ch, "entity reference refused",
					 (const char *)parent->name);
		if (ch->type != XML_ELEMENT_NODE)
			continue; /* comments, processing instructions */
		if (!in_ns(ch, FHIR_NS) && !(in_ns(ch, XHTML_NS) &&
					     strcmp((const char *)ch->name, "div") == 0))
			return conv_fail(c, ch, "element outside the FHIR namespace",
					 (const char *)ch->name);
		if (conv_element(c, ch, obj, owner, is_resource) != 0)
			return -1;
	}
	return finish_arrays(obj);
}

static json_t *conv_resource(struct conv *c, xmlNodePtr el)
{
	const char *name = (const char *)el->name;
	json_t *obj;

	if (!in_ns(el, FHIR_NS)) {
		conv_fail(c, el, "resource outside the FHIR namespace", name);
		return NULL;
	}
	if (!(name[0] >= 'A' && name[0] <= 'Z')) {
		conv_fail(c, el, "not a resource name", name);
		return NULL;
	}
	obj = json_object();
	if (!obj || json_object_set_new(obj, "resourceType", json_string(name)) != 0 ||
	    conv_children(c, el, obj, name, 1) != 0) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

json_t *fhir_xml_convert(xmlDocPtr doc, fhir_error_t *err)
{
	struct conv c = {.doc = doc, .err = err};
	xmlNodePtr root = xmlDocGetRootElement(doc);

	if (!root) {
		fhir_seterr(err, 1, 1, 0, "XML: no root element");
		return NULL;
	}
	json_t *r = conv_resource(&c, root);
	if (!r && !c.said)
		fhir_seterr(err, 0, 0, 0, "XML: out of memory");
	return r;
}

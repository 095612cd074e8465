/* fhir_xml — FHIR XML into the FHIR JSON tree, with libxml2 hardened for
 * untrusted input.
 *
 * Hardening, and why:
 * - Any DOCTYPE stops the parse at once (SAX internalSubset hook): FHIR XML
 *   never needs one, and every entity attack (billion laughs, external
 *   entities to files or URLs) starts there.
 * - No XML_PARSE_NOENT (no entity substitution), no XML_PARSE_DTDLOAD,
 *   XML_PARSE_NONET, and xmlXIncludeProcess is never called.
 * - Size is checked before parsing (or while pulling bytes); depth is counted
 *   in the SAX start/end hooks with our own named limit.
 * - libxml2's error messages go to our error struct, never to stderr.
 *
 * Conversion follows FHIR's JSON representation: `value` attributes become
 * typed JSON values, `id`/extension on primitives become `_name`, repeating
 * elements (per fhir_types.c, or by repetition when unknown) become arrays,
 * the narrative div is kept as its XHTML serialization, contained and Bundle
 * resources become objects with resourceType.
 */
#include "parse/fhir_int.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/SAX2.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#define FHIR_NS "http://hl7.org/fhir"
#define XHTML_NS "http://www.w3.org/1999/xhtml"

/* Parse options: keep libxml2 quiet and offline; never substitute entities. */
#define FHIR_XML_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | \
			  XML_PARSE_NOCDATA)

struct xparse {
	fhir_error_t *err;
	int failed;       /* our own refusal (doctype, depth, size) is recorded */
	size_t depth, max_depth;
	size_t total, max_size;
	fhir_read_cb cb;
	void *cb_arg;
};

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
	xmlInitParser();
}

static struct xparse *xp_of(void *ctx)
{
	return ((xmlParserCtxtPtr)ctx)->_private;
}

static int ctx_line(xmlParserCtxtPtr ctxt)
{
	return ctxt->input ? ctxt->input->line : 0;
}

static int ctx_col(xmlParserCtxtPtr ctxt)
{
	return ctxt->input ? ctxt->input->col : 0;
}

static void refuse(void *ctx, const char *what)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct xparse *xp = xp_of(ctx);

	if (!xp->failed) {
		xp->failed = 1;
		fhir_seterr(xp->err, ctx_line(ctxt), ctx_col(ctxt), 0, "XML: %s", what);
	}
	xmlStopParser(ctxt);
}

static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *ext_id,
		       const xmlChar *sys_id)
{
	refuse(ctx, "DOCTYPE refused (FHIR XML never needs one)");
}

static void on_entity_decl(void *ctx, const xmlChar *name, int type,
			   const xmlChar *public_id, const xmlChar *system_id,
			   xmlChar *content)
{
	refuse(ctx, "entity declaration refused");
}

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
		     const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
		     int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
	struct xparse *xp = xp_of(ctx);
	char msg[96];

	if (++xp->depth > xp->max_depth) {
		snprintf(msg, sizeof(msg), "nesting deeper than the max_depth limit of %zu",
			 xp->max_depth);
		refuse(ctx, msg);
		return;
	}
	xmlSAX2StartElementNs(ctx, localname, prefix, uri, nb_namespaces, namespaces,
			      nb_attributes, nb_defaulted, attributes);
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix,
		   const xmlChar *uri)
{
	struct xparse *xp = xp_of(ctx);

	if (xp->depth > 0)
		xp->depth--;
	xmlSAX2EndElementNs(ctx, localname, prefix, uri);
}

/* libxml2's messages name tags and entities, not character data; the first
 * error is the one worth reporting. */
static void on_error(void *ctx, xmlErrorPtr e)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct xparse *xp = ctxt ? xp_of(ctxt) : NULL;
	size_t n;

	if (!xp || xp->failed || !e || e->level < XML_ERR_ERROR)
		return;
	xp->failed = 1;
	n = e->message ? strlen(e->message) : 0;
	while (n > 0 && (e->message[n - 1] == '\n' || e->message[n - 1] == ' '))
		n--;
	fhir_seterr(xp->err, e->line, e->int2, 0, "XML: %.*s", (int)n,
		    e->message ? e->message : "error");
}

static int io_read(void *arg, char *buf, int len)
{
	struct xparse *xp = arg;
	size_t n = xp->cb(buf, (size_t)len, xp->cb_arg);

	if (n == (size_t)-1) {
		if (!xp->failed)
			fhir_seterr(xp->err, 0, 0, xp->total, "read error");
		xp->failed = 1;
		return -1;
	}
	xp->total += n;
	if (xp->total > xp->max_size) {
		if (!xp->failed)
			fhir_seterr(xp->err, 0, 0, xp->max_size,
				    "input larger than the max_size limit of %zu bytes",
				    xp->max_size);
		xp->failed = 1;
		return -1;
	}
	return (int)n;
}

static int io_close(void *arg)
{
	return 0;
}

json_t *fhir_xml_convert(xmlDocPtr doc, fhir_error_t *err);

/* Parse from a buffer (buf != NULL) or through xp->cb. */
static json_t *xml_read(const char *buf, size_t len, struct xparse *xp)
{
	xmlParserCtxtPtr ctxt = NULL;
	xmlDocPtr doc = NULL;
	json_t *root = NULL;

	pthread_once(&xml_once, xml_init);
	ctxt = xmlNewParserCtxt();
	if (!ctxt) {
		fhir_seterr(xp->err, 0, 0, 0, "out of memory");
		return NULL;
	}
	ctxt->_private = xp;
	ctxt->sax->internalSubset = on_doctype;
	ctxt->sax->externalSubset = on_doctype;
	ctxt->sax->entityDecl = on_entity_decl;
	ctxt->sax->startElementNs = on_start;
	ctxt->sax->endElementNs = on_end;
	ctxt->sax->serror = on_error;
	ctxt->sax->warning = NULL;
	ctxt->sax->error = NULL;
	ctxt->sax->fatalError = NULL;
	ctxt->vctxt.error = NULL;
	ctxt->vctxt.warning = NULL;

	/* The encoding is forced: FHIR XML is UTF-8, and a declared legacy
	 * encoding would otherwise switch converters on hostile input. */
	if (buf)
		doc = xmlCtxtReadMemory(ctxt, buf, (int)len, NULL, "UTF-8", FHIR_XML_OPTIONS);
	else
		doc = xmlCtxtReadIO(ctxt, io_read, io_close, xp, NULL, "UTF-8",
				    FHIR_XML_OPTIONS);
	if (xp->failed || !doc || !ctxt->wellFormed) {
		if (!xp->failed)
			fhir_seterr(xp->err, ctx_line(ctxt), 0, 0, "XML: not well-formed");
		goto done;
	}
	if (doc->intSubset || doc->extSubset) { /* belt and braces */
		fhir_seterr(xp->err, 1, 1, 0, "XML: DOCTYPE refused (FHIR XML never needs one)");
		goto done;
	}
	root = fhir_xml_convert(doc, xp->err);
done:
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(ctxt);
	return root;
}

/* The parse state both entry points start from; lim NULL: the defaults. */
static void xparse_init(struct xparse *xp, const fhir_limits_t *lim, fhir_error_t *err)
{
	fhir_limits_t dl;
	if (!lim) {
		fhir_limits_init(&dl);
		lim = &dl;
	}
	memset(xp, 0, sizeof(*xp));
	xp->err = err;
	xp->max_depth = lim->max_depth;
	xp->max_size = lim->max_size;
}

json_t *fhir_read_xml(const char *buf, size_t len, const fhir_limits_t *lim,
		      fhir_error_t *err)
{
	struct xparse xp;

	xparse_init(&xp, lim, err);
	if (len > xp.max_size || len > (size_t)INT32_MAX) {
		fhir_seterr(err, 0, 0, xp.max_size,
			    "input larger than the max_size limit of %zu bytes", xp.max_size);
		return NULL;
	}
	if (memchr(buf, '\0', len)) {
		size_t off = (size_t)((const char *)memchr(buf, '\0', len) - buf);
		fhir_seterr(err, 0, 0, off, "NUL byte in input");
		return NULL;
	}
	return xml_read(buf, len, &xp);
}

json_t *fhir_read_xml_cb(fhir_read_cb cb, void *arg, const fhir_limits_t *lim,
			 fhir_error_t *err)
{
	struct xparse xp;

	xparse_init(&xp, lim, err);
	xp.cb = cb;
	xp.cb_arg = arg;
	return xml_read(NULL, 0, &xp);
}

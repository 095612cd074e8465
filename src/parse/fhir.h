/* fhir — FHIR R4 input: JSON and XML read into one tree, Bundles, NDJSON.
 *
 * The tree is a jansson value laid out exactly as FHIR's JSON representation
 * (resourceType, arrays for repeating elements, `_name` for primitive
 * extensions and ids, narrative div as a string). XML is converted into the
 * very tree the JSON reader would produce for the same resource, so "same
 * resource" is json_equal().
 *
 * Readers do no I/O of their own: they take a caller buffer or pull bytes
 * through a caller callback. They never log. Every input is treated as
 * hostile: size and depth limits, duplicate keys, NUL, invalid UTF-8 and any
 * XML DOCTYPE are refused with an error naming the position, never a value.
 *
 * Known limitation of the XML conversion: FHIR XML carries no JSON types, so
 * the reader uses a compact built-in table (fhir_types.c) of the elements of
 * the common datatypes and of Patient, Practitioner, Organization,
 * MedicationRequest, Medication, MessageHeader, OperationOutcome and Bundle to
 * know which elements repeat and which primitives are booleans or numbers.
 * Choice elements (valueQuantity, medicationReference, …) are typed by their
 * suffix. Elements of other resources fall back to: array only when repeated
 * in the document, primitives as strings. Decimals are doubles in both
 * readers, so trailing zeros ("1.50") are not preserved.
 */
#ifndef HB_FHIR_H
#define HB_FHIR_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* Default limits. A FHIR resource nests about 10 deep; a Bundle with
 * contained resources and nested extensions rarely passes 30. */
#define FHIR_DEFAULT_MAX_SIZE  (16u * 1024 * 1024) /* bytes of one document */
#define FHIR_DEFAULT_MAX_DEPTH 100u                /* objects/arrays or elements */

typedef struct fhir_limits {
	size_t max_size;  /* fhir.max_size: bytes; larger input is refused */
	size_t max_depth; /* fhir.max_depth: JSON object/array or XML element nesting */
} fhir_limits_t;

/* Error with position: 1-based line and column (0 = unknown) and byte offset. */
typedef struct fhir_error {
	int line;
	int column;
	size_t offset;
	char text[200];
} fhir_error_t;

/* Pull callback for streamed input: copy up to `size` bytes into buf and
 * return the count, 0 at end of input, or (size_t)-1 on error. */
typedef size_t (*fhir_read_cb)(void *buf, size_t size, void *arg);

/* Fill *lim with the defaults above. */
void fhir_limits_init(fhir_limits_t *lim);

/* Read one resource from JSON. The root must be an object with a string
 * resourceType. Returns a new reference (caller json_decref()s) or NULL with
 * *err filled. lim may be NULL for the defaults. */
json_t *fhir_read_json(const char *buf, size_t len, const fhir_limits_t *lim,
		       fhir_error_t *err);
/* Same, pulling bytes through cb; stops as soon as a limit is passed, so a
 * huge input is refused after reading at most max_size bytes. */
json_t *fhir_read_json_cb(fhir_read_cb cb, void *arg, const fhir_limits_t *lim,
			  fhir_error_t *err);

/* Read one resource from XML (namespace http://hl7.org/fhir) into the JSON
 * tree. Any DOCTYPE is refused; no entity is substituted, nothing is loaded
 * from a file or the network, XInclude is never processed. */
json_t *fhir_read_xml(const char *buf, size_t len, const fhir_limits_t *lim,
		      fhir_error_t *err);
json_t *fhir_read_xml_cb(fhir_read_cb cb, void *arg, const fhir_limits_t *lim,
			 fhir_error_t *err);

/* Pick the reader by the first non-blank byte: '{' JSON, '<' XML. */
json_t *fhir_read(const char *buf, size_t len, const fhir_limits_t *lim,
		  fhir_error_t *err);

/* The resourceType of a resource tree, or NULL if v is not a resource. */
const char *fhir_resource_type(const json_t *v);

/* ---- Bundles ---- */

typedef struct fhir_entry {
	size_t index;         /* 0-based position in Bundle.entry */
	const char *full_url; /* entry.fullUrl or NULL; borrowed from the tree */
	json_t *resource;     /* entry.resource or NULL (e.g. a DELETE request); borrowed */
	json_t *entry;        /* the entry object itself; borrowed */
} fhir_entry_t;

typedef struct fhir_bundle_iter {
	json_t *entries; /* borrowed; NULL for an empty Bundle */
	size_t next;
} fhir_bundle_iter_t;

/* Start iterating a Bundle of any type (transaction, batch, collection,
 * message, searchset, history, document and the -response types). Checks the
 * Bundle's shape: resourceType, a known type, entry an array; a message
 * Bundle must start with a MessageHeader. Returns 0 or -1 with *err. */
int fhir_bundle_iter_init(fhir_bundle_iter_t *it, json_t *bundle, fhir_error_t *err);
/* Next entry: 1 and *e filled, 0 at the end, -1 for a malformed entry
 * (err->text names its index; iteration may continue with the next one). */
int fhir_bundle_next(fhir_bundle_iter_t *it, fhir_entry_t *e, fhir_error_t *err);
/* Bundle.type, or NULL. */
const char *fhir_bundle_type(const json_t *bundle);

/* SHA-256 over the resource's canonical JSON, the bytes
 * json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) gives, without making that
 * string. Returns 0, or -1 (memory). */
int fhir_canonical_sha256(const json_t *v, uint8_t out[32]);

/* ---- NDJSON (bulk export): one resource per line ---- */

typedef struct fhir_ndjson {
	const char *buf;
	size_t len;
	size_t pos;
	size_t line; /* line number of the last line returned */
	fhir_limits_t lim;
} fhir_ndjson_t;

/* Iterate over the caller's buffer, which must outlive the iterator.
 * lim applies to each line (max_size is per line). */
void fhir_ndjson_init(fhir_ndjson_t *nd, const char *buf, size_t len,
		      const fhir_limits_t *lim);
/* Next non-blank line: 1 with *res (new reference), 0 at the end, -1 if this
 * line is not a valid resource (err->line is the file's line number;
 * iteration may continue). *line_out, if not NULL, gets the line number. */
int fhir_ndjson_next(fhir_ndjson_t *nd, json_t **res, size_t *line_out,
		     fhir_error_t *err);
/* Step over the next non-blank line without reading it: 1, or 0 at the end. */
int fhir_ndjson_skip(fhir_ndjson_t *nd);

#endif

/*
 * registry — a Confluent Schema Registry client (REST over libcurl) and the
 * Confluent wire format.
 *
 * Blocking calls: the daemon registers every schema it may use at start-up
 * (and on reload), before any input is accepted, so no HTTP call ever runs on
 * the event loop. Ids are cached per (subject, schema text).
 */
#ifndef HB_REGISTRY_H
#define HB_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#define REGISTRY_WIRE_HEADER 5 /* magic byte 0 + 4-byte big-endian schema id */

struct registry;

/* url: base URL, e.g. http://127.0.0.1:8081 (no trailing slash needed).
 * user/password: HTTP basic auth, or NULL. Returns NULL with errstr filled. */
struct registry *registry_new(const char *url, const char *user, const char *password,
			      long timeout_ms, char *errstr, size_t errstr_size);
void registry_free(struct registry *r);

/* Register (or look up) `schema` (Avro JSON text) under `subject`; the id is
 * cached. Returns 0 and sets *id, or -1 with a message naming the subject
 * and the registry's answer (HTTP status, error_code) — never the data. */
int registry_register(struct registry *r, const char *subject, const char *schema,
		      int32_t *id, char *errstr, size_t errstr_size);

/* Fetch a schema by id; *schema_out is a heap string the caller frees. */
int registry_fetch(struct registry *r, int32_t id, char **schema_out, char *errstr,
		   size_t errstr_size);

/* Write the wire-format header for `id` into out[0..4]. */
void registry_wire_header(uint8_t out[REGISTRY_WIRE_HEADER], int32_t id);
/* Parse a wire-format header; returns the id, or -1 if buf is not framed. */
int64_t registry_wire_id(const void *buf, size_t len);

#endif

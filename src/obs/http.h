/*
 * http — the operators' endpoints, on libmicrohttpd's own thread so that
 * nothing here ever runs on (or waits for) the event loop:
 *
 *   GET  /healthz          200 while the process runs (no token needed)
 *   GET  /readyz           200 once producers, ledger and listeners are up,
 *                          else 503 with what is missing (no token needed)
 *   GET  /metrics          Prometheus text
 *   GET  /api/status       the status page's data (JSON)
 *   GET  /                 the status page (updates itself from /api/status)
 *   GET  /playground       the mapping playground (when enabled)
 *   POST /api/playground   run the current mappings on the body; nothing is
 *                          published (when enabled)
 *
 * With a bearer token configured, /metrics and /api/status, /api/playground need
 * "Authorization: Bearer <token>"; the pages themselves are static shells
 * (the status page passes a token given as #token=... in its address).
 * The playground's routes answer 404 when it is off, and 403 to clients that
 * are not on loopback unless playground.allow = any.
 *
 * The loop hands over a snapshot of its counters with http_publish(); the
 * publisher's thread-safe counters are read per request.
 */
#ifndef HB_HTTP_H
#define HB_HTTP_H

#include <stddef.h>

#include "obs/metrics.h"

struct mapref;

/* Every limit has a name: connections served at once, request time, and the
 * largest playground sample. */
#define HTTP_MAX_CONNECTIONS 64
#define HTTP_TIMEOUT_S 15
#define HTTP_DEFAULT_PLAYGROUND_MAX (1u << 20)

struct http_conf {
	int enabled;            /* bind = off: no server */
	char host[128];         /* "" = every interface */
	char port[16];
	char tls_cert[512];     /* PEM files; both or neither */
	char tls_key[512];
	char token[256];        /* bearer token; "" = none */
	int playground;         /* off by default */
	int playground_any;     /* playground.allow = any (default loopback) */
	size_t playground_max;  /* playground.max.size */
};

void http_conf_defaults(struct http_conf *c);

struct http;

/* Bind and start serving (its own thread). maps may be NULL when the
 * playground is off. NULL with errstr on failure (address in use, TLS). */
struct http *http_start(const struct http_conf *c, struct mapref *maps, char *errstr,
			size_t errstr_size);
/* Stop serving (joins the thread) and free. NULL is fine. */
void http_stop(struct http *h);
/* The bound port (when the configuration said 0). */
int http_port(const struct http *h);

/* From the loop: the latest snapshot (copied), and the publisher once it
 * exists (it must outlive the server: stop the server first). */
void http_publish(struct http *h, const struct obs_snapshot *s, const struct pub *pub);

/* Is this address loopback (127/8, ::1, ::ffff:127/104)? */
struct sockaddr;
int http_addr_is_loopback(const struct sockaddr *sa);

#endif

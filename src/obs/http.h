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
 * Without a token, every route but /healthz and /readyz answers 421 to a Host
 * header that names a host other than a loopback name, an IP literal, the
 * bind host or one of allowed.hosts (DNS rebinding).
 *
 * The loop hands over a snapshot of its counters with http_publish(); the
 * publisher's thread-safe counters are read per request.
 */
#ifndef HB_HTTP_H
#define HB_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "obs/metrics.h"

struct mapref;

/* Every limit has a name (and a key in [http]): connections served at once and
 * per client address, how long a connection may sit silent, how long one request
 * may take to arrive, the server's threads, and the largest playground sample.
 * Served by a small pool of threads each polling its connections (epoll), so
 * idle or trickling clients cost a socket each, never a thread; a client that
 * sends nothing for idle.timeout is closed, one whose request (headers and
 * body) is not in after request.timeout is closed, and no address holds more
 * than max.connections.per.ip of the max.connections: /healthz stays answerable
 * for everyone else. Only POST /api/playground takes a body. */
#define HTTP_DEFAULT_MAX_CONNECTIONS 256
#define HTTP_DEFAULT_MAX_PER_IP 16
#define HTTP_DEFAULT_IDLE_TIMEOUT_MS 10000
#define HTTP_DEFAULT_REQUEST_TIMEOUT_MS 30000
#define HTTP_DEFAULT_THREADS 4
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
	int max_connections;    /* max.connections */
	int max_per_ip;         /* max.connections.per.ip */
	int64_t idle_timeout_ms;    /* idle.timeout (whole seconds, at least 1) */
	int64_t request_timeout_ms; /* request.timeout */
	int threads;            /* threads */
	/* allowed.hosts: host names (besides loopback names, IP literals and the
	 * bind host) a request's Host header may carry when no token is set, so a
	 * DNS-rebinding page cannot read the endpoints; comma-separated. */
	char allowed_hosts[512];
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
/* Is a host (name or literal, no port) loopback: localhost, *.localhost,
 * 127/8, ::1? */
int http_host_is_loopback(const char *host);
/* Would a request with this Host header value ("name", "name:port",
 * "[v6]:port"; NULL = none) be served without a token under c? */
int http_host_allowed(const struct http_conf *c, const char *host_header);

#endif

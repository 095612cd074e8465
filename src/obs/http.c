#include "obs/http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "log.h"
#include "obs/mapref.h"
#include "obs/pages.h"
#include "obs/playground.h"
#include "util.h"

/* TLS material larger than this is not a certificate. */
#define HTTP_MAX_PEM (1u << 20)

struct http {
	struct http_conf conf;
	struct MHD_Daemon *mhd;
	struct mapref *maps;
	char *cert, *key; /* PEM, alive as long as the daemon */
	pthread_mutex_t mu; /* guards snap, have_snap, pub */
	struct obs_snapshot *snap;
	int have_snap;
	const struct pub *pub;
	int port;
};

/* One request: its body (POST /api/playground only) as it arrives. */
struct http_req {
	char *body;
	size_t len, cap;
	int too_big;
	int takes_body;     /* the one route that reads a body */
	int64_t started_ms; /* headers in; request.timeout counts from here */
};

void http_conf_defaults(struct http_conf *c)
{
	memset(c, 0, sizeof *c);
	c->enabled = 1;
	snprintf(c->host, sizeof c->host, "127.0.0.1");
	snprintf(c->port, sizeof c->port, "9275");
	c->playground_max = HTTP_DEFAULT_PLAYGROUND_MAX;
	c->max_connections = HTTP_DEFAULT_MAX_CONNECTIONS;
	c->max_per_ip = HTTP_DEFAULT_MAX_PER_IP;
	c->idle_timeout_ms = HTTP_DEFAULT_IDLE_TIMEOUT_MS;
	c->request_timeout_ms = HTTP_DEFAULT_REQUEST_TIMEOUT_MS;
	c->threads = HTTP_DEFAULT_THREADS;
}

int http_host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	size_t n = strlen(host);
	char h[256];
	if (n >= sizeof h)
		return 0;
	memcpy(h, host, n + 1);
	if (n && h[n - 1] == '.') /* "localhost." is localhost */
		h[--n] = '\0';
	if (strcasecmp(h, "localhost") == 0 ||
	    (n > 10 && strcasecmp(h + n - 10, ".localhost") == 0))
		return 1;
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, h, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return 0;
}

/* Is name one of the comma-separated entries of list (case-insensitive)? */
static int in_list(const char *list, const char *name)
{
	size_t nl = strlen(name);
	for (const char *p = list; *p;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		while (n && (*p == ' ' || *p == '\t'))
			p++, n--;
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == nl && strncasecmp(p, name, n) == 0)
			return 1;
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

int http_host_allowed(const struct http_conf *c, const char *hdr)
{
	char host[256];
	struct in_addr a4;
	struct in6_addr a6;
	const char *colon;
	size_t n;
	if (!hdr) /* HTTP/1.0 without Host: no browser sends that */
		return 1;
	if (hdr[0] == '[') { /* [v6]:port: an IP literal */
		const char *end = strchr(hdr, ']');
		if (!end || (size_t)(end - hdr - 1) >= sizeof host)
			return 0;
		snprintf(host, sizeof host, "%.*s", (int)(end - hdr - 1), hdr + 1);
		return inet_pton(AF_INET6, host, &a6) == 1;
	}
	colon = strchr(hdr, ':');
	n = colon ? (size_t)(colon - hdr) : strlen(hdr);
	if (!n || n >= sizeof host)
		return 0;
	snprintf(host, sizeof host, "%.*s", (int)n, hdr);
	/* A rebinding page's Host is always its own DNS name: an IP literal
	 * names this server by address, which is what Prometheus and probes do. */
	if (inet_pton(AF_INET, host, &a4) == 1 || http_host_is_loopback(host))
		return 1;
	if (c->host[0] && strcasecmp(c->host, host) == 0)
		return 1;
	return in_list(c->allowed_hosts, host);
}

int http_addr_is_loopback(const struct sockaddr *sa)
{
	if (!sa)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			return 1;
		return memcmp(a->sin6_addr.s6_addr, v4mapped, 12) == 0 && a->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

/* ---- responses -------------------------------------------------------------- */

static enum MHD_Result send_buf(struct MHD_Connection *conn, unsigned status, const char *type,
				const void *data, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data, mode);
	enum MHD_Result ret;
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Content-Security-Policy",
				"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"hl7bridge\"");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	return send_buf(conn, status, "text/plain; charset=utf-8", text, strlen(text),
			MHD_RESPMEM_MUST_COPY);
}

/* Takes the reference. */
static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s)
		return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	return send_buf(conn, status, "application/json", s, strlen(s), MHD_RESPMEM_MUST_FREE);
}

/* ---- access ----------------------------------------------------------------- */

static int authorised(struct http *h, struct MHD_Connection *conn)
{
	const char *v;
	size_t tl = strlen(h->conf.token), vl;
	unsigned char diff = 0;
	if (!tl)
		return 1;
	v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!v || strncmp(v, "Bearer ", 7) != 0)
		return 0;
	v += 7;
	vl = strlen(v);
	/* Same time whatever the first differing byte. */
	for (size_t i = 0; i < tl; i++)
		diff |= (unsigned char)(h->conf.token[i] ^ (i < vl ? v[i] : 0));
	return diff == 0 && vl == tl;
}

static int from_loopback(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	return ci && http_addr_is_loopback(ci->client_addr);
}

/* ---- the routes --------------------------------------------------------------- */

/* A copy of the snapshot and the publisher's view; 0 when there is none yet. */
static int current(struct http *h, struct obs_snapshot *s, struct obs_pubview *v)
{
	int have;
	const struct pub *pub;
	pthread_mutex_lock(&h->mu);
	have = h->have_snap;
	if (have)
		*s = *h->snap;
	pub = h->pub;
	pthread_mutex_unlock(&h->mu);
	if (!have)
		return 0;
	obs_pubview_fill(v, pub);
	return 1;
}

static enum MHD_Result route_readyz(struct http *h, struct MHD_Connection *conn)
{
	struct obs_snapshot *s = malloc(sizeof *s);
	char text[768];
	int have, ready;
	if (!s)
		return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	pthread_mutex_lock(&h->mu);
	have = h->have_snap;
	if (have)
		*s = *h->snap;
	pthread_mutex_unlock(&h->mu);
	ready = have && obs_ready(s);
	if (ready)
		snprintf(text, sizeof text, "ready\n");
	else if (!have)
		snprintf(text, sizeof text, "starting: producers no, ledger no, listeners no\n");
	else
		snprintf(text, sizeof text, "not ready: producers %s, ledger %s, listeners %s%s%s%s%s%s%s\n",
			 s->producers ? "yes" : "no", s->ledger ? "yes" : "no",
			 s->listeners ? "yes" : "no", s->draining ? ", draining" : "",
			 s->fatal ? ", publisher failed" : "",
			 s->lanes_failing ? ", publisher failing: " : "",
			 s->lanes_failing ? s->failing : "", s->problem[0] ? ", " : "",
			 s->problem);
	free(s);
	return send_text(conn, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, text);
}

static enum MHD_Result route_metrics(struct http *h, struct MHD_Connection *conn, int json)
{
	struct obs_snapshot *s = malloc(sizeof *s);
	struct obs_pubview v;
	enum MHD_Result r;
	memset(&v, 0, sizeof v);
	if (!s)
		return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	if (!current(h, s, &v)) {
		free(s);
		return send_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "starting\n");
	}
	if (json) {
		r = send_json(conn, MHD_HTTP_OK, metrics_status_json(s, &v));
	} else {
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		if (f) {
			metrics_prometheus(f, s, &v);
			fclose(f);
		}
		if (!text)
			r = send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
		else
			r = send_buf(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
				     len, MHD_RESPMEM_MUST_FREE);
	}
	obs_pubview_clear(&v);
	free(s);
	return r;
}

static enum MHD_Result route_playground(struct http *h, struct MHD_Connection *conn,
					struct http_req *rq)
{
	struct mapref_hold *hold;
	json_t *out;
	if (rq->too_big) {
		char msg[128];
		snprintf(msg, sizeof msg, "the sample is larger than playground.max.size (%zu bytes)\n",
			 h->conf.playground_max);
		return send_text(conn, MHD_HTTP_CONTENT_TOO_LARGE, msg);
	}
	if (!rq->len)
		return send_text(conn, MHD_HTTP_BAD_REQUEST, "empty sample\n");
	hold = mapref_acquire(h->maps);
	out = playground_run(mapref_set(hold), rq->body, rq->len, util_wall_ms());
	mapref_release(h->maps, hold);
	return send_json(conn, MHD_HTTP_OK, out);
}

static enum MHD_Result dispatch(struct http *h, struct MHD_Connection *conn, const char *url,
				const char *method, struct http_req *rq)
{
	int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	int post = strcmp(method, "POST") == 0;
	int pg = strcmp(url, "/playground") == 0 || strcmp(url, "/api/playground") == 0 ||
		 strcmp(url, "/playground.js") == 0;

	if (strcmp(url, "/healthz") == 0 && get)
		return send_text(conn, MHD_HTTP_OK, "ok\n");
	if (strcmp(url, "/readyz") == 0 && get)
		return route_readyz(h, conn);
	/* Probes may name the server however they like; everything else, when
	 * no token guards it, only under a name the operator chose. */
	if (!h->conf.token[0] &&
	    !http_host_allowed(&h->conf, MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								     MHD_HTTP_HEADER_HOST)))
		return send_text(conn, MHD_HTTP_MISDIRECTED_REQUEST,
				 "this host name is not served without a token: add it to [http] "
				 "allowed.hosts, or set [http] token\n");
	if (pg) {
		if (!h->conf.playground || !h->maps)
			return send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
		if (!h->conf.playground_any && !from_loopback(conn))
			return send_text(conn, MHD_HTTP_FORBIDDEN,
					 "the playground answers loopback clients only "
					 "([http] playground.allow = any opens it)\n");
	}
	if ((strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0) && get)
		return send_buf(conn, MHD_HTTP_OK, "text/html; charset=utf-8", page_status_html,
				strlen(page_status_html), MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/status.js") == 0 && get)
		return send_buf(conn, MHD_HTTP_OK, "text/javascript; charset=utf-8", page_status_js,
				strlen(page_status_js), MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/style.css") == 0 && get)
		return send_buf(conn, MHD_HTTP_OK, "text/css; charset=utf-8", page_css,
				strlen(page_css), MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/playground") == 0 && get)
		return send_buf(conn, MHD_HTTP_OK, "text/html; charset=utf-8", page_playground_html,
				strlen(page_playground_html), MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/playground.js") == 0 && get)
		return send_buf(conn, MHD_HTTP_OK, "text/javascript; charset=utf-8",
				page_playground_js, strlen(page_playground_js),
				MHD_RESPMEM_PERSISTENT);

	if (strcmp(url, "/metrics") == 0 || strcmp(url, "/api/status") == 0 ||
	    strcmp(url, "/api/playground") == 0) {
		if (!authorised(h, conn))
			return send_text(conn, MHD_HTTP_UNAUTHORIZED, "a bearer token is required\n");
		if (strcmp(url, "/api/playground") == 0)
			return post ? route_playground(h, conn, rq)
				    : send_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "POST the sample\n");
		if (!get)
			return send_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
		return route_metrics(h, conn, strcmp(url, "/api/status") == 0);
	}
	return send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

static enum MHD_Result handler_cb(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **req_cls)
{
	struct http *h = cls;
	struct http_req *rq = *req_cls;
	(void)version;

	if (!rq) { /* first call: headers only */
		const char *cl;
		rq = calloc(1, sizeof *rq);
		if (!rq)
			return MHD_NO;
		*req_cls = rq;
		rq->started_ms = util_mono_ms();
		rq->takes_body = strcmp(method, "POST") == 0 && strcmp(url, "/api/playground") == 0 &&
				 h->conf.playground && h->maps;
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		/* A declared body past the limit is refused before it is read. */
		if (rq->takes_body && cl && strtoull(cl, NULL, 10) > h->conf.playground_max) {
			rq->too_big = 1;
			return route_playground(h, conn, rq);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;
		*upload_size = 0;
		/* A request trickled in byte by byte ends at request.timeout. */
		if (util_mono_ms() - rq->started_ms > h->conf.request_timeout_ms)
			return MHD_NO; /* closes the connection */
		if (!rq->takes_body || rq->too_big || rq->len + n > h->conf.playground_max) {
			rq->too_big = 1; /* discard; answer at the end (413, 404 or 405) */
			return MHD_YES;
		}
		if (util_reserve(&rq->body, &rq->cap, rq->len + n, 16384) != 0)
			return MHD_NO;
		memcpy(rq->body + rq->len, upload, n);
		rq->len += n;
		return MHD_YES;
	}
	return dispatch(h, conn, url, method, rq);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_req *rq = *req_cls;
	(void)cls, (void)conn, (void)toe;
	if (rq) {
		free(rq->body);
		free(rq);
		*req_cls = NULL;
	}
}

/* libmicrohttpd's own warnings (refused connections, timeouts) come once per
 * connection: a flood of clients must not become a flood of log lines. At
 * most HTTP_LOG_BURST lines per HTTP_LOG_WINDOW_MS, then a count of the rest. */
#define HTTP_LOG_BURST 10
#define HTTP_LOG_WINDOW_MS 10000

__attribute__((format(printf, 2, 0))) static void mhd_log_cb(void *cls, const char *fmt,
								va_list ap)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static int64_t window_start;
	static unsigned in_window, suppressed;
	unsigned dropped = 0;
	int64_t now = util_mono_ms();
	char line[512];
	size_t n;
	(void)cls;
	pthread_mutex_lock(&mu);
	if (now - window_start >= HTTP_LOG_WINDOW_MS) {
		window_start = now;
		in_window = 0;
		dropped = suppressed;
		suppressed = 0;
	}
	if (in_window >= HTTP_LOG_BURST) {
		suppressed++;
		pthread_mutex_unlock(&mu);
		return;
	}
	in_window++;
	pthread_mutex_unlock(&mu);
	if (dropped)
		log_warn("http", "%u server messages were not logged (more than %d in %d s)", dropped,
			 HTTP_LOG_BURST, HTTP_LOG_WINDOW_MS / 1000);
	vsnprintf(line, sizeof line, fmt, ap);
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_warn("http", "%s", line);
}

/* ---- lifecycle ----------------------------------------------------------------- */

struct http *http_start(const struct http_conf *c, struct mapref *maps, char *errstr,
			size_t errstr_size)
{
	struct http *h = calloc(1, sizeof *h);
	struct addrinfo hints, *ai = NULL;
	/* internal threads, each polling (epoll) its share of the connections */
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	size_t len;
	int rc;
	const union MHD_DaemonInfo *di;

	if (!h) {
		util_seterr(errstr, errstr_size, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&h->mu, NULL);
	h->conf = *c;
	h->maps = maps;
	if (!(h->snap = calloc(1, sizeof *h->snap))) {
		util_seterr(errstr, errstr_size, "out of memory");
		goto fail;
	}
	if (!h->conf.playground_max)
		h->conf.playground_max = HTTP_DEFAULT_PLAYGROUND_MAX;
	if (c->tls_cert[0] || c->tls_key[0]) {
		char err[512];
		if (!c->tls_cert[0] || !c->tls_key[0]) {
			util_seterr(errstr, errstr_size, "[http] tls.cert and tls.key go together");
			goto fail;
		}
		h->cert = util_read_file(c->tls_cert, HTTP_MAX_PEM, &len, err, sizeof err);
		if (!h->cert) {
			util_seterr(errstr, errstr_size, "[http] tls.cert: %s", err);
			goto fail;
		}
		h->key = util_read_file(c->tls_key, HTTP_MAX_PEM, &len, err, sizeof err);
		if (!h->key) {
			util_seterr(errstr, errstr_size, "[http] tls.key: %s", err);
			goto fail;
		}
		flags |= MHD_USE_TLS;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(c->host[0] ? c->host : NULL, c->port, &hints, &ai);
	if (rc != 0 || !ai) {
		util_seterr(errstr, errstr_size, "[http] bind %s:%s: %s", c->host, c->port,
			    gai_strerror(rc));
		goto fail;
	}
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	{
		unsigned threads = h->conf.threads > 0 ? (unsigned)h->conf.threads : 1;
		unsigned limit = h->conf.max_connections > 0 ? (unsigned)h->conf.max_connections : 1;
		unsigned idle_s = (unsigned)((h->conf.idle_timeout_ms + 999) / 1000);
		struct MHD_OptionItem opts[] = {
			{ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log_cb, h },
			{ MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr },
			{ MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threads, NULL },
			/* MHD shares the limit out among its threads */
			{ MHD_OPTION_CONNECTION_LIMIT, (intptr_t)(limit < threads ? threads : limit),
			  NULL },
			{ MHD_OPTION_PER_IP_CONNECTION_LIMIT,
			  (intptr_t)(h->conf.max_per_ip > 0 ? h->conf.max_per_ip : 0), NULL },
			{ MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)(idle_s ? idle_s : 1), NULL },
			{ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed_cb, h },
			{ h->cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, h->cert },
			{ MHD_OPTION_HTTPS_MEM_KEY, 0, h->key },
			{ MHD_OPTION_END, 0, NULL },
		};
		h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handler_cb, h, MHD_OPTION_ARRAY,
					  opts, MHD_OPTION_END);
	}
	freeaddrinfo(ai);
	if (!h->mhd) {
		util_seterr(errstr, errstr_size,
			    "[http] cannot serve on %s:%s (address in use, or bad TLS material)",
			    c->host[0] ? c->host : "*", c->port);
		goto fail;
	}
	di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di ? di->port : atoi(c->port);
	return h;
fail:
	http_stop(h);
	return NULL;
}

void http_stop(struct http *h)
{
	if (!h)
		return;
	if (h->mhd)
		MHD_stop_daemon(h->mhd);
	pthread_mutex_destroy(&h->mu);
	free(h->snap);
	free(h->cert);
	free(h->key);
	free(h);
}

int http_port(const struct http *h)
{
	return h->port;
}

void http_publish(struct http *h, const struct obs_snapshot *s, const struct pub *pub)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	*h->snap = *s;
	h->have_snap = 1;
	h->pub = pub;
	pthread_mutex_unlock(&h->mu);
}

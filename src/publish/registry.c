#include "publish/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "util.h"

struct cache_entry {
	char *subject;
	char *schema;
	int32_t id;
	struct cache_entry *next;
};

struct registry {
	char *url;
	char *userpwd;
	long timeout_ms;
	CURL *curl;
	struct cache_entry *cache;
};

struct body {
	char *p;
	size_t len;
};

#define REGISTRY_MAX_RESPONSE (4u << 20)

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct body *b = ud;
	size_t n = size * nmemb;
	char *np;
	if (b->len + n > REGISTRY_MAX_RESPONSE)
		return 0; /* abort the transfer: no registry answer is this large */
	np = realloc(b->p, b->len + n + 1);
	if (!np)
		return 0;
	b->p = np;
	memcpy(b->p + b->len, ptr, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

struct registry *registry_new(const char *url, const char *user, const char *password,
			      long timeout_ms, char *errstr, size_t errstr_size)
{
	struct registry *r;
	size_t n;

	if (!url || !*url) {
		util_seterr(errstr, errstr_size, "schema registry URL is empty");
		return NULL;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = calloc(1, sizeof *r);
	if (!r)
		goto oom;
	r->url = strdup(url);
	if (!r->url)
		goto oom;
	n = strlen(r->url);
	while (n > 0 && r->url[n - 1] == '/')
		r->url[--n] = '\0';
	if (user && *user) {
		size_t len = strlen(user) + strlen(password ? password : "") + 2;
		r->userpwd = malloc(len);
		if (!r->userpwd)
			goto oom;
		snprintf(r->userpwd, len, "%s:%s", user, password ? password : "");
	}
	r->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
	r->curl = curl_easy_init();
	if (!r->curl)
		goto oom;
	return r;
oom:
	util_seterr(errstr, errstr_size, "out of memory");
	registry_free(r);
	return NULL;
}

void registry_free(struct registry *r)
{
	struct cache_entry *c, *next;
	if (!r)
		return;
	for (c = r->cache; c; c = next) {
		next = c->next;
		free(c->subject);
		free(c->schema);
		free(c);
	}
	if (r->curl)
		curl_easy_cleanup(r->curl);
	free(r->url);
	free(r->userpwd);
	free(r);
}

/* One attempt. Returns the HTTP status (and the parsed JSON answer in *out,
 * possibly NULL), or -1 on a transport error with errstr filled. */
static long request_once(struct registry *r, const char *method, const char *path,
		    const char *payload, json_t **out, char *errstr, size_t errstr_size)
{
	char url[2048];
	struct body b = { NULL, 0 };
	struct curl_slist *hdr = NULL;
	long status = -1;
	CURLcode cc;

	*out = NULL;
	snprintf(url, sizeof url, "%s%s", r->url, path);
	curl_easy_reset(r->curl);
	hdr = curl_slist_append(hdr, "Content-Type: application/vnd.schemaregistry.v1+json");
	hdr = curl_slist_append(hdr, "Accept: application/vnd.schemaregistry.v1+json, application/json");
	curl_easy_setopt(r->curl, CURLOPT_URL, url);
	curl_easy_setopt(r->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(r->curl, CURLOPT_TIMEOUT_MS, r->timeout_ms);
	curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if (r->userpwd) {
		curl_easy_setopt(r->curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(r->curl, CURLOPT_USERPWD, r->userpwd);
	}
	if (payload)
		curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, payload);
	cc = curl_easy_perform(r->curl);
	if (cc != CURLE_OK) {
		util_seterr(errstr, errstr_size, "schema registry %s: %s", r->url, curl_easy_strerror(cc));
	} else {
		curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
		if (b.p)
			*out = json_loadb(b.p, b.len, 0, NULL);
	}
	curl_slist_free_all(hdr);
	free(b.p);
	return status;
}

/* Registries answer 5xx under transient load (e.g. storage lock timeouts on
 * concurrent first registrations) and restart now and then: retry those,
 * and transport errors, a few times with backoff. 4xx answers are final. */
#define REGISTRY_ATTEMPTS 4

static long request(struct registry *r, const char *method, const char *path,
		    const char *payload, json_t **out, char *errstr, size_t errstr_size)
{
	long status = -1;
	for (int attempt = 0; attempt < REGISTRY_ATTEMPTS; attempt++) {
		if (attempt > 0) {
			json_decref(*out);
			*out = NULL;
			usleep((useconds_t)(100000 << attempt));
		}
		status = request_once(r, method, path, payload, out, errstr, errstr_size);
		if (status >= 0 && status < 500)
			break;
	}
	return status;
}

static void describe_failure(char *errstr, size_t errstr_size, const char *what, long status,
			     json_t *ans)
{
	const char *msg = json_string_value(json_object_get(ans, "message"));
	json_int_t code = json_integer_value(json_object_get(ans, "error_code"));
	util_seterr(errstr, errstr_size, "%s: HTTP %ld%s%s (error_code %lld)", what, status,
		    msg ? ": " : "", msg ? msg : "", (long long)code);
}

int registry_register(struct registry *r, const char *subject, const char *schema,
		      int32_t *id, char *errstr, size_t errstr_size)
{
	char path[1024], what[600];
	char *esc = NULL, *payload = NULL;
	json_t *req = NULL, *ans = NULL;
	struct cache_entry *c;
	long status;
	int rc = -1;

	for (c = r->cache; c; c = c->next) {
		if (strcmp(c->subject, subject) == 0 && strcmp(c->schema, schema) == 0) {
			*id = c->id;
			return 0;
		}
	}
	snprintf(what, sizeof what, "registering the schema of subject %s", subject);
	esc = curl_easy_escape(r->curl, subject, 0);
	req = json_pack("{s:s, s:s}", "schema", schema, "schemaType", "AVRO");
	payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (!esc || !payload) {
		util_seterr(errstr, errstr_size, "%s: out of memory", what);
		goto out;
	}
	snprintf(path, sizeof path, "/subjects/%s/versions", esc);
	status = request(r, "POST", path, payload, &ans, errstr, errstr_size);
	if (status < 0)
		goto out;
	if (status != 200 || !json_is_integer(json_object_get(ans, "id"))) {
		describe_failure(errstr, errstr_size, what, status, ans);
		goto out;
	}
	*id = (int32_t)json_integer_value(json_object_get(ans, "id"));
	c = calloc(1, sizeof *c);
	if (c) {
		c->subject = strdup(subject);
		c->schema = strdup(schema);
		c->id = *id;
		if (c->subject && c->schema) {
			c->next = r->cache;
			r->cache = c;
		} else {
			free(c->subject);
			free(c->schema);
			free(c);
		}
	}
	rc = 0;
out:
	curl_free(esc);
	free(payload);
	json_decref(req);
	json_decref(ans);
	return rc;
}

int registry_fetch(struct registry *r, int32_t id, char **schema_out, char *errstr,
		   size_t errstr_size)
{
	char path[64], what[64];
	json_t *ans = NULL;
	const char *s;
	long status;

	snprintf(path, sizeof path, "/schemas/ids/%ld", (long)id);
	snprintf(what, sizeof what, "fetching schema id %ld", (long)id);
	status = request(r, "GET", path, NULL, &ans, errstr, errstr_size);
	if (status < 0)
		return -1;
	s = json_string_value(json_object_get(ans, "schema"));
	if (status != 200 || !s) {
		describe_failure(errstr, errstr_size, what, status, ans);
		json_decref(ans);
		return -1;
	}
	*schema_out = strdup(s);
	json_decref(ans);
	return *schema_out ? 0 : util_seterr(errstr, errstr_size, "out of memory");
}

void registry_wire_header(uint8_t out[REGISTRY_WIRE_HEADER], int32_t id)
{
	uint32_t u = (uint32_t)id;
	out[0] = 0;
	out[1] = (uint8_t)(u >> 24);
	out[2] = (uint8_t)(u >> 16);
	out[3] = (uint8_t)(u >> 8);
	out[4] = (uint8_t)u;
}

int64_t registry_wire_id(const void *buf, size_t len)
{
	const uint8_t *b = buf;
	if (len < REGISTRY_WIRE_HEADER || b[0] != 0)
		return -1;
	return (int64_t)(((uint32_t)b[1] << 24) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 8) |
			 (uint32_t)b[4]);
}

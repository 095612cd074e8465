/* http1 — HTTP/1.1 request heads and an incremental request decoder. */
#include "ingest/http1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

enum { S_HEAD, S_BODY, S_CHUNK_SIZE, S_CHUNK_DATA, S_CHUNK_END, S_TRAILER, S_DONE, S_FAILED };

static int is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *find_crlfcrlf(const char *buf, size_t len, size_t from)
{
	for (size_t i = from; i + 3 < len; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
			return buf + i;
	return NULL;
}

/* Whether a comma-separated header value holds token tok (case-insensitive). */
static int has_token(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok);
	for (size_t i = 0; i < n;) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
			return 1;
	}
	return 0;
}

ssize_t h1_parse_head(const char *buf, size_t len, struct h1_request *r, int *status)
{
	const char *end = find_crlfcrlf(buf, len, 0), *p = buf, *eol;
	memset(r, 0, sizeof *r);
	r->content_length = -1;
	*status = 400;
	if (!end)
		return -2;
	r->head_len = (size_t)(end - buf) + 4;
	/* request line: method SP target SP HTTP/1.x CRLF */
	r->method = p;
	while (p < end && is_tchar((unsigned char)*p))
		p++;
	r->method_len = (size_t)(p - r->method);
	if (!r->method_len || p >= end || *p != ' ')
		return -1;
	r->path = ++p;
	while (p < end && (unsigned char)*p > ' ' && *p != 0x7f)
		p++;
	r->path_len = (size_t)(p - r->path);
	if (!r->path_len || end + 4 - p < 11 || memcmp(p, " HTTP/1.", 8) != 0 || p[8] < '0' ||
	    p[8] > '9' || p[9] != '\r' || p[10] != '\n')
		return -1;
	r->minor_version = p[8] - '0';
	p += 11;
	/* header fields */
	int have_cl = 0, have_te = 0;
	while (p < end + 2) {
		eol = memchr(p, '\r', (size_t)(end + 2 - p));
		if (!eol || eol[1] != '\n')
			return -1;
		if (r->nheaders == H1_MAX_HEADERS) {
			*status = 431;
			return -1;
		}
		struct h1_header *h = &r->headers[r->nheaders++];
		h->name = p;
		while (p < eol && is_tchar((unsigned char)*p))
			p++;
		h->name_len = (size_t)(p - h->name);
		if (!h->name_len || p >= eol || *p != ':')
			return -1; /* also obs-fold and whitespace before the colon */
		p++;
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		h->value = p;
		for (; p < eol; p++)
			if (((unsigned char)*p < ' ' && *p != '\t') || *p == 0x7f)
				return -1;
		h->value_len = (size_t)(eol - h->value);
		while (h->value_len && (h->value[h->value_len - 1] == ' ' ||
					h->value[h->value_len - 1] == '\t'))
			h->value_len--;
		p = eol + 2;
		if (h->name_len == 14 && strncasecmp(h->name, "Content-Length", 14) == 0) {
			long long v = 0;
			if (!h->value_len || h->value_len > 15)
				return -1;
			for (size_t i = 0; i < h->value_len; i++) {
				if (h->value[i] < '0' || h->value[i] > '9')
					return -1;
				v = v * 10 + (h->value[i] - '0');
			}
			if (have_cl && v != r->content_length)
				return -1;
			have_cl = 1;
			r->content_length = v;
		} else if (h->name_len == 17 && strncasecmp(h->name, "Transfer-Encoding", 17) == 0) {
			if (have_te || h->value_len != 7 || strncasecmp(h->value, "chunked", 7) != 0) {
				*status = 501;
				return -1;
			}
			have_te = 1;
			r->chunked = 1;
		} else if (h->name_len == 10 && strncasecmp(h->name, "Connection", 10) == 0) {
			if (has_token(h->value, h->value_len, "close"))
				r->keep_alive = -1;
			else if (has_token(h->value, h->value_len, "keep-alive") && r->keep_alive == 0)
				r->keep_alive = 2;
		}
	}
	if (have_cl && have_te)
		return -1; /* request smuggling: never guess which one frames the body */
	r->keep_alive = r->keep_alive == -1 ? 0 : r->minor_version >= 1 ? 1 : r->keep_alive == 2;
	return (ssize_t)r->head_len;
}

const char *h1_header(const struct h1_request *r, const char *name, size_t *len)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < r->nheaders; i++)
		if (r->headers[i].name_len == n && strncasecmp(r->headers[i].name, name, n) == 0) {
			if (len)
				*len = r->headers[i].value_len;
			return r->headers[i].value;
		}
	return NULL;
}

/* ---- the decoder ---------------------------------------------------------- */

void h1_decoder_init(struct h1_decoder *d, size_t max_head, size_t max_body)
{
	memset(d, 0, sizeof *d);
	d->max_head = max_head ? max_head : H1_DEFAULT_MAX_HEAD;
	d->max_body = max_body;
}

void h1_decoder_clear(struct h1_decoder *d)
{
	free(d->buf);
	d->buf = NULL;
	d->len = d->cap = 0;
}

size_t h1_decoder_pending(const struct h1_decoder *d)
{
	if (d->state == S_DONE)
		return 0;
	return d->len + (d->state != S_HEAD);
}

static int reserve(struct h1_decoder *d, size_t need)
{
	if (need <= d->cap)
		return 0;
	size_t cap = d->cap ? d->cap : 4096;
	while (cap < need)
		cap *= 2;
	unsigned char *nb = realloc(d->buf, cap);
	if (!nb)
		return -1;
	d->buf = nb;
	d->cap = cap;
	return 0;
}

static int fail(struct h1_decoder *d, int *status, int st, char *errstr, size_t n, const char *why)
{
	d->state = S_FAILED;
	*status = st;
	util_seterr(errstr, n, "%s", why);
	return -1;
}

/* Read one line (a chunk size, a chunk's CRLF, a trailer) into d->line.
 * Returns 1 when it ended, 0 when input ran out, -1 when it is too long
 * (trailer lines: only counted). */
static int read_line(struct h1_decoder *d, const unsigned char *p, size_t len, size_t *i,
		     int keep)
{
	while (*i < len) {
		unsigned char c = p[(*i)++];
		if (c == '\n') {
			if (d->line_len && d->line[d->line_len - 1] == '\r')
				d->line_len--;
			d->line[d->line_len < sizeof d->line ? d->line_len : sizeof d->line - 1] = '\0';
			return 1;
		}
		if (d->line_len + 1 >= sizeof d->line) {
			if (keep)
				return -1;
			d->line_len = 1; /* a long trailer: skip it, keep a non-empty mark */
			d->line[0] = 'x';
			continue;
		}
		d->line[d->line_len++] = (char)c;
	}
	return 0;
}

static int frame_out(struct h1_decoder *d, const unsigned char **frame, size_t *flen)
{
	d->state = S_DONE;
	*frame = d->buf;
	*flen = d->len;
	return 1;
}

int h1_decoder_feed(struct h1_decoder *d, const void *data, size_t len, size_t *consumed,
		    const unsigned char **frame, size_t *flen, int *status, char *errstr, size_t n)
{
	const unsigned char *p = data;
	size_t i = 0;

	*consumed = 0;
	if (d->state == S_FAILED)
		return fail(d, status, 400, errstr, n, "the connection failed before");
	if (d->state == S_DONE) {
		d->state = S_HEAD;
		d->len = 0;
		if (d->cap > (256u << 10)) { /* do not keep a large body's buffer per idle connection */
			h1_decoder_clear(d);
		}
	}
	while (i < len || d->state == S_HEAD) {
		switch (d->state) {
		case S_HEAD: {
			if (i == len)
				return 0;
			size_t room = d->max_head - d->len, take = len - i < room ? len - i : room;
			size_t from = d->len > 3 ? d->len - 3 : 0;
			if (reserve(d, d->len + take) != 0)
				return fail(d, status, 500, errstr, n, "out of memory");
			memcpy(d->buf + d->len, p + i, take);
			d->len += take;
			const char *e = find_crlfcrlf((const char *)d->buf, d->len, from);
			if (!e) {
				i += take;
				*consumed = i;
				if (d->len >= d->max_head)
					return fail(d, status, 431, errstr, n, "request head larger than max.header.size");
				return 0;
			}
			size_t end = (size_t)(e - (const char *)d->buf) + 4;
			i += take - (d->len - end);
			d->len = end;
			struct h1_request r;
			int st;
			if (h1_parse_head((const char *)d->buf, d->len, &r, &st) < 0)
				return fail(d, status, st, errstr, n,
					    st == 431 ? "too many header fields"
					    : st == 501 ? "unsupported Transfer-Encoding"
							: "malformed request head");
			d->head_len = d->len;
			size_t el;
			const char *ex = h1_header(&r, "Expect", &el);
			d->expect_continue = r.minor_version >= 1 && (r.chunked || r.content_length > 0) &&
					     ex && el == 12 && strncasecmp(ex, "100-continue", 12) == 0;
			if (r.chunked) {
				d->state = S_CHUNK_SIZE;
				d->line_len = 0;
			} else if (r.content_length > 0) {
				if ((unsigned long long)r.content_length > d->max_body)
					return fail(d, status, 413, errstr, n, "body larger than max.body.size");
				if (reserve(d, d->len + (size_t)r.content_length) != 0)
					return fail(d, status, 500, errstr, n, "out of memory");
				d->body_left = (size_t)r.content_length;
				d->state = S_BODY;
			} else {
				d->expect_continue = 0;
				*consumed = i;
				return frame_out(d, frame, flen);
			}
			if (d->expect_continue) {
				*consumed = i;
				return 2;
			}
			break;
		}
		case S_BODY:
		case S_CHUNK_DATA: {
			size_t take = len - i < d->body_left ? len - i : d->body_left;
			if (reserve(d, d->len + take) != 0)
				return fail(d, status, 500, errstr, n, "out of memory");
			memcpy(d->buf + d->len, p + i, take);
			d->len += take;
			d->body_left -= take;
			i += take;
			if (d->body_left == 0) {
				if (d->state == S_BODY) {
					*consumed = i;
					return frame_out(d, frame, flen);
				}
				d->state = S_CHUNK_END;
				d->line_len = 0;
			}
			break;
		}
		case S_CHUNK_SIZE: {
			int r = read_line(d, p, len, &i, 1);
			if (r < 0)
				return fail(d, status, 400, errstr, n, "chunk-size line too long");
			if (r == 0)
				break;
			unsigned long long sz = 0;
			size_t k = 0;
			for (; k < d->line_len && k < 16; k++) {
				char c = d->line[k];
				int v = c >= '0' && c <= '9' ? c - '0'
					: c >= 'a' && c <= 'f' ? c - 'a' + 10
					: c >= 'A' && c <= 'F' ? c - 'A' + 10
							       : -1;
				if (v < 0)
					break;
				sz = sz * 16 + (unsigned)v;
			}
			if (k == 0 || k == 16 || (k < d->line_len && d->line[k] != ';' && d->line[k] != ' ' &&
						  d->line[k] != '\t'))
				return fail(d, status, 400, errstr, n, "malformed chunk size");
			d->line_len = 0;
			if (sz == 0) {
				d->state = S_TRAILER;
				break;
			}
			if (sz > d->max_body || d->len - d->head_len + sz > d->max_body)
				return fail(d, status, 413, errstr, n, "body larger than max.body.size");
			d->body_left = (size_t)sz;
			d->state = S_CHUNK_DATA;
			break;
		}
		case S_CHUNK_END: {
			int r = read_line(d, p, len, &i, 1);
			if (r < 0 || (r == 1 && d->line_len != 0))
				return fail(d, status, 400, errstr, n, "chunk data not followed by CRLF");
			if (r == 1) {
				d->state = S_CHUNK_SIZE;
				d->line_len = 0;
			}
			break;
		}
		case S_TRAILER: {
			int r = read_line(d, p, len, &i, 0);
			if (r == 1) {
				if (d->line_len == 0) {
					*consumed = i;
					return frame_out(d, frame, flen);
				}
				d->line_len = 0;
			}
			break;
		}
		default:
			return fail(d, status, 400, errstr, n, "decoder state");
		}
	}
	*consumed = i;
	return 0;
}

const char *h1_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

size_t h1_error_response(int status, const char *diag, char *out, size_t size)
{
	char body[512], clean[256];
	size_t k = 0;
	for (const char *s = diag ? diag : ""; *s && k + 1 < sizeof clean; s++)
		clean[k++] = (*s == '"' || *s == '\\' || (unsigned char)*s < ' ') ? '\'' : *s;
	clean[k] = '\0';
	int bl = snprintf(body, sizeof body,
			  "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\","
			  "\"code\":\"%s\",\"diagnostics\":\"%s\"}]}",
			  status == 413 || status == 431 ? "too-long" : status == 501 ? "not-supported"
										     : "structure",
			  clean);
	int n = snprintf(out, size,
			 "HTTP/1.1 %d %s\r\nContent-Type: application/fhir+json\r\nConnection: close\r\n"
			 "Content-Length: %d\r\n\r\n%s",
			 status, h1_reason(status), bl, body);
	return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

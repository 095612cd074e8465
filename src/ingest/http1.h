/*
 * http1 — HTTP/1.1 request framing for the FHIR listeners, pure codec.
 *
 * h1_parse_head() parses a request head in the manner of picohttpparser: it
 * never allocates and fills caller-sized arrays of (ptr, len) views into the
 * buffer. The decoder is incremental like the MLLP decoder: feed it any
 * chunk size and take complete requests out one at a time, each as one
 * frame = the request head followed by its body (de-chunked when it came
 * with Transfer-Encoding: chunked). It never buffers more than max_head +
 * max_body bytes and never reads past the end of the request (pipelined
 * requests stay in the caller's input).
 */
#ifndef HB_HTTP1_H
#define HB_HTTP1_H

#include <stddef.h>
#include <sys/types.h>

/* Config key fhir.max_header_size; a larger head is answered 431. */
#define H1_DEFAULT_MAX_HEAD (16u * 1024)
#define H1_MAX_HEADERS 64

struct h1_header {
	const char *name, *value;
	size_t name_len, value_len;
};

struct h1_request {
	const char *method, *path;
	size_t method_len, path_len;
	int minor_version;          /* HTTP/1.x */
	struct h1_header headers[H1_MAX_HEADERS];
	size_t nheaders;
	size_t head_len;            /* bytes of the head, its final CRLF CRLF included */
	long long content_length;   /* -1: none */
	int chunked;                /* Transfer-Encoding: chunked */
	int keep_alive;             /* HTTP/1.1 without "Connection: close", or 1.0 with keep-alive */
};

/* Parse the head at the start of buf. Returns its length (> 0), -2 when
 * more bytes are needed, -1 when malformed (*status: 400, 431, 501). */
ssize_t h1_parse_head(const char *buf, size_t len, struct h1_request *req, int *status);

/* The header's value (case-insensitive name), or NULL; *len gets its length. */
const char *h1_header(const struct h1_request *req, const char *name, size_t *len);

struct h1_decoder {
	unsigned char *buf;
	size_t len, cap;
	size_t max_head, max_body;
	int state;
	size_t head_len, body_left;
	char line[80];              /* a chunk-size or trailer line being read */
	size_t line_len;
	int expect_continue;        /* the head asked for "100 Continue" */
};

void h1_decoder_init(struct h1_decoder *d, size_t max_head, size_t max_body);
void h1_decoder_clear(struct h1_decoder *d);

/* Consume bytes from (data, len) until a request completes or input runs
 * out. *consumed gets the bytes used. Returns 1 with (*frame, *frame_len) =
 * head + body (valid until the next call), 0 when all input was consumed
 * without completing a request, 2 when a head with "Expect: 100-continue"
 * was accepted and its body is awaited (answer "HTTP/1.1 100 Continue" if
 * nothing else is owed on the connection, then feed on), -1 when the request is malformed or too
 * large: *status is the HTTP status to answer with (400, 413, 431, 501) and
 * errstr says why; the connection must then be closed. */
int h1_decoder_feed(struct h1_decoder *d, const void *data, size_t len, size_t *consumed,
		    const unsigned char **frame, size_t *frame_len, int *status, char *errstr,
		    size_t errstr_size);

/* Bytes of an unfinished request held (0 between requests). */
size_t h1_decoder_pending(const struct h1_decoder *d);

/* The reason phrase of a status code ("Unprocessable Entity"). */
const char *h1_reason(int status);

/* A complete response with a FHIR OperationOutcome naming only the status,
 * for errors found before a request reaches the sink; "Connection: close".
 * Returns its length (truncated to size). */
size_t h1_error_response(int status, const char *diagnostics, char *out, size_t size);

#endif

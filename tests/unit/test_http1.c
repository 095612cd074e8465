/* http1 — request heads and the incremental decoder; every input placed
 * right before an unreadable page (guard.c), so an over-read crashes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "guard.h"
#include "ingest/http1.h"

static ssize_t head(const char *s, struct h1_request *r, int *st)
{
	struct guard g;
	char *p = guard_place(&g, s, strlen(s));
	ssize_t n = h1_parse_head(p, strlen(s), r, st);
	guard_free(&g);
	return n;
}

Test(http1, request_line_and_headers)
{
	struct h1_request r;
	int st;
	const char *s = "POST /fhir/Patient?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n"
			"Authorization:   Bearer t0k  \r\n\r\n";
	cr_assert_eq(head(s, &r, &st), (ssize_t)strlen(s));
	cr_assert_eq(r.method_len, 4);
	cr_assert_eq(r.path_len, strlen("/fhir/Patient?x=1"));
	cr_assert_eq(r.content_length, 12);
	cr_assert_eq(r.keep_alive, 1);
	cr_assert_eq(r.nheaders, 3);
	/* no header field at all */
	cr_assert_eq(head("GET /fhir/metadata HTTP/1.1\r\n\r\n", &r, &st), 31);
	cr_assert_eq(head("GET / HTTP/1.0\r\n\r\n", &r, &st), 18);
	cr_assert_eq(r.keep_alive, 0);
	cr_assert_eq(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r, &st) > 0, 1);
	cr_assert_eq(r.keep_alive, 1);
	cr_assert_eq(head("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", &r, &st) > 0, 1);
	cr_assert_eq(r.keep_alive, 0);
}

Test(http1, incomplete_and_malformed)
{
	struct h1_request r;
	int st;
	cr_assert_eq(head("POST / HTTP/1.1\r\nHost: a\r\n", &r, &st), -2);
	cr_assert_eq(head("POST / HTTP/1.1\r\n", &r, &st), -2);
	const char *bad[] = {
		"POST  / HTTP/1.1\r\n\r\n",              /* two spaces */
		"POST / HTTP/2.0\r\n\r\n",
		"POST / HTTP/1.1\r\n folded: x\r\n\r\n",  /* obs-fold */
		"POST / HTTP/1.1\r\nBad Name: x\r\n\r\n",
		"POST / HTTP/1.1\r\nX: a\x01\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\nHost: a\n\n\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(head(bad[i], &r, &st), -1, "accepted: %s", bad[i]);
		cr_assert_eq(st, 400, "%s", bad[i]);
	}
	cr_assert_eq(head("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &r, &st), -1);
	cr_assert_eq(st, 501);
}

/* Feed s in pieces of `step` bytes; collect frames. */
static int feed_all(struct h1_decoder *d, const char *s, size_t len, size_t step, char frames[][512],
		    int max, int *status)
{
	size_t pos = 0;
	int n = 0;
	while (pos < len) {
		size_t chunk = len - pos < step ? len - pos : step, used;
		const unsigned char *f;
		size_t fl;
		char err[128];
		struct guard g;
		char *p = guard_place(&g, s + pos, chunk);
		int r = h1_decoder_feed(d, p, chunk, &used, &f, &fl, status, err, sizeof err);
		if (r == 1 && n < max)
			snprintf(frames[n++], 512, "%.*s", (int)fl, f);
		guard_free(&g);
		if (r < 0)
			return -1;
		pos += used;
	}
	return n;
}

Test(http1, decoder_any_chunk_size_pipelined_and_chunked)
{
	const char *s = "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
			"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n"
			"T: 1\r\n\r\n"
			"GET /c HTTP/1.1\r\n\r\n";
	for (size_t step = 1; step <= strlen(s); step++) {
		struct h1_decoder d;
		char frames[4][512];
		int st;
		h1_decoder_init(&d, 1024, 100);
		cr_assert_eq(feed_all(&d, s, strlen(s), step, frames, 4, &st), 3, "step %zu", step);
		cr_assert(strstr(frames[0], "\r\n\r\nhello") != NULL);
		cr_assert(strstr(frames[1], "\r\n\r\nabcde") != NULL, "%s", frames[1]);
		cr_assert_eq(strncmp(frames[2], "GET /c", 6), 0);
		cr_assert_eq(h1_decoder_pending(&d), 0);
		h1_decoder_clear(&d);
	}
}

Test(http1, decoder_limits)
{
	struct h1_decoder d;
	char frames[1][512];
	int st;
	h1_decoder_init(&d, 64, 10);
	const char *big = "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
	cr_assert_eq(feed_all(&d, big, strlen(big), 7, frames, 1, &st), -1);
	cr_assert_eq(st, 413);
	h1_decoder_clear(&d);
	h1_decoder_init(&d, 64, 10);
	const char *chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n3\r\n";
	cr_assert_eq(feed_all(&d, chunked, strlen(chunked), 3, frames, 1, &st), -1);
	cr_assert_eq(st, 413);
	h1_decoder_clear(&d);
	h1_decoder_init(&d, 64, 10);
	char longhead[200];
	memset(longhead, 'a', sizeof longhead);
	memcpy(longhead, "POST / HTTP/1.1\r\nX: ", 20);
	cr_assert_eq(feed_all(&d, longhead, sizeof longhead, 50, frames, 1, &st), -1);
	cr_assert_eq(st, 431);
	h1_decoder_clear(&d);
	h1_decoder_init(&d, 64, 10);
	const char *badsize = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
	cr_assert_eq(feed_all(&d, badsize, strlen(badsize), 100, frames, 1, &st), -1);
	cr_assert_eq(st, 400);
	h1_decoder_clear(&d);
}

Test(http1, error_response_is_complete)
{
	char out[1024];
	size_t n = h1_error_response(413, "too \"big\"", out, sizeof out);
	cr_assert_eq(strncmp(out, "HTTP/1.1 413 ", 13), 0);
	cr_assert(strstr(out, "Connection: close") != NULL);
	const char *body = strstr(out, "\r\n\r\n") + 4;
	char cl[64];
	snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", strlen(body));
	cr_assert(strstr(out, cl) != NULL, "%s", out);
	cr_assert_eq(n, strlen(out));
	cr_assert_null(strstr(body, "\"big\""));
}

Test(http1, expect_continue_is_reported_once)
{
	struct h1_decoder d;
	const unsigned char *f;
	size_t used, fl;
	int st;
	char err[64];
	const char *h = "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
	h1_decoder_init(&d, 1024, 100);
	cr_assert_eq(h1_decoder_feed(&d, h, strlen(h), &used, &f, &fl, &st, err, sizeof err), 2);
	cr_assert_eq(used, strlen(h));
	cr_assert_eq(h1_decoder_feed(&d, "ok", 2, &used, &f, &fl, &st, err, sizeof err), 1);
	cr_assert_eq(fl, strlen(h) + 2);
	/* no body: nothing to continue */
	const char *g = "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n";
	cr_assert_eq(h1_decoder_feed(&d, g, strlen(g), &used, &f, &fl, &st, err, sizeof err), 1);
	h1_decoder_clear(&d);
}

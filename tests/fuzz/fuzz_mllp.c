/* libFuzzer: MLLP decoder. The first two bytes choose a chunk size and a frame
 * limit; the rest is decoded once in one piece and once in chunks. Both must
 * yield the same frames, and every frame must survive encode → decode. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/mllp.h"

struct out {
	unsigned char *buf;
	size_t len, cap;
	int error;
	struct mllp_stats st;
};

static void put(struct out *o, const void *p, size_t n)
{
	if (o->len + n + sizeof n > o->cap) {
		o->cap = (o->len + n + sizeof n) * 2;
		o->buf = realloc(o->buf, o->cap);
		if (!o->buf)
			abort();
	}
	memcpy(o->buf + o->len, &n, sizeof n);
	if (n)
		memcpy(o->buf + o->len + sizeof n, p, n);
	o->len += n + sizeof n;
}

static void decode(const uint8_t *data, size_t size, size_t chunk, size_t maxf,
		   struct out *o)
{
	struct mllp_decoder d;
	mllp_decoder_init(&d, maxf);
	for (size_t off = 0; off < size && !o->error; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		/* Copy each chunk so ASan sees reads past its end. */
		uint8_t *c = malloc(n);
		if (!c)
			abort();
		memcpy(c, data + off, n);
		const uint8_t *p = c;
		while (n > 0) {
			size_t used, fl;
			const unsigned char *f;
			int r = mllp_decoder_feed(&d, p, n, &used, &f, &fl, NULL, 0);
			if (used > n)
				abort();
			p += used;
			n -= used;
			if (r < 0) {
				o->error = 1;
				break;
			}
			if (r == 1) {
				if (fl > maxf)
					abort();
				put(o, f, fl);
			} else if (n != 0) {
				abort();
			}
		}
		free(c);
	}
	o->st = d.stats;
	mllp_decoder_clear(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t chunk = (size_t)data[0] % 23 + 1;
	size_t maxf = (size_t)data[1] * 8 + 1;
	data += 2;
	size -= 2;

	struct out a = { 0 }, b = { 0 };
	decode(data, size, size ? size : 1, maxf, &a);
	decode(data, size, chunk, maxf, &b);
	if (a.error != b.error || a.len != b.len || (a.len && memcmp(a.buf, b.buf, a.len)))
		abort();
	if (!a.error && memcmp(&a.st, &b.st, sizeof a.st))
		abort();

	/* Each frame, re-encoded and decoded alone, comes back unchanged
	 * (frames never contain <VT> or <FS>). */
	for (size_t off = 0; off < a.len;) {
		size_t n;
		memcpy(&n, a.buf + off, sizeof n);
		const unsigned char *f = a.buf + off + sizeof n;
		if (memchr(f, MLLP_VT, n) || memchr(f, MLLP_FS, n))
			abort();
		unsigned char *enc = malloc(n + MLLP_OVERHEAD);
		if (!enc || mllp_encode(f, n, enc, n + MLLP_OVERHEAD) != n + MLLP_OVERHEAD)
			abort();
		struct out c = { 0 };
		decode(enc, n + MLLP_OVERHEAD, 1, maxf, &c);
		size_t got;
		if (c.error || c.len != n + sizeof n)
			abort();
		memcpy(&got, c.buf, sizeof got);
		if (got != n || memcmp(c.buf + sizeof n, f, n))
			abort();
		free(c.buf);
		free(enc);
		off += n + sizeof n;
	}
	free(a.buf);
	free(b.buf);
	return 0;
}

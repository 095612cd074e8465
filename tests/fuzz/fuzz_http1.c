/* libFuzzer: the FHIR listeners' HTTP/1.1 request decoder. The first byte
 * chooses a chunk size; the rest is decoded once whole and once in chunks
 * (each chunk copied, so ASan sees reads past it). Both must give the same
 * frames and the same failure, and every frame's head must parse again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/http1.h"

static uint64_t decode(const uint8_t *data, size_t size, size_t chunk, int *failed)
{
	struct h1_decoder d;
	uint64_t sig = 1469598103934665603ull;
	h1_decoder_init(&d, 512, 4096);
	*failed = 0;
	for (size_t off = 0; off < size && !*failed;) {
		size_t n = size - off < chunk ? size - off : chunk, used;
		uint8_t *c = malloc(n);
		if (!c)
			abort();
		memcpy(c, data + off, n);
		size_t pos = 0;
		while (pos < n) {
			const unsigned char *f;
			size_t fl;
			int st;
			char err[128];
			int r = h1_decoder_feed(&d, c + pos, n - pos, &used, &f, &fl, &st, err, sizeof err);
			pos += used;
			if (r < 0) {
				*failed = st;
				break;
			}
			if (r == 1) {
				struct h1_request req;
				int s2;
				if (h1_parse_head((const char *)f, fl, &req, &s2) <= 0)
					abort(); /* a frame's head always parses */
				for (size_t i = 0; i < fl; i++)
					sig = (sig ^ f[i]) * 1099511628211ull;
				sig = (sig ^ 0x100) * 1099511628211ull;
			} else if (used == 0 && pos < n) {
				abort(); /* no progress */
			}
		}
		free(c);
		off += n;
	}
	h1_decoder_clear(&d);
	return sig;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t chunk = (size_t)data[0] % 17 + 1;
	int f1, f2;
	uint64_t a = decode(data + 1, size - 1, size, &f1);
	uint64_t b = decode(data + 1, size - 1, chunk, &f2);
	if (f1 != f2 || (!f1 && a != b))
		abort();
	return 0;
}

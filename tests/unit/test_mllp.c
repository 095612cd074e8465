/* MLLP codec: chunking down to one byte, pipelining, noise, limits. */
#include <criterion/criterion.h>

#include <string.h>

#include "guard.h"
#include "ingest/mllp.h"

#define MAXF 16

struct collected {
	size_t n;
	char frames[MAXF][256];
	size_t lens[MAXF];
	int error;
};

/* Feed (data, len) in chunks of `chunk` bytes, each chunk copied right
 * before an unreadable page. */
static void feed_all(struct mllp_decoder *d, const char *data, size_t len,
		     size_t chunk, struct collected *c)
{
	memset(c, 0, sizeof *c);
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		struct guard g;
		const char *p = guard_place(&g, data + off, n);
		cr_assert_not_null(p);
		while (n > 0) {
			size_t used, fl;
			const unsigned char *f;
			char err[128];
			int r = mllp_decoder_feed(d, p, n, &used, &f, &fl, err, sizeof err);
			cr_assert_leq(used, n);
			p += used;
			n -= used;
			if (r < 0) {
				c->error = 1;
				guard_free(&g);
				return;
			}
			if (r == 1) {
				cr_assert_lt(c->n, MAXF);
				cr_assert_lt(fl, sizeof c->frames[0]);
				memcpy(c->frames[c->n], f, fl);
				c->lens[c->n++] = fl;
			} else {
				cr_assert_eq(n, 0);
			}
		}
		guard_free(&g);
	}
}

static const char PIPELINED[] =
	"noise\x0bMSH|A\rPID|1\r\x1c\r"
	"\x0bMSH|B\r\x1c\r\n"
	"\n\x0bMSH|C\r\x1c\r";

Test(mllp, every_chunk_size_gives_the_same_frames)
{
	for (size_t chunk = 1; chunk <= sizeof PIPELINED; chunk++) {
		struct mllp_decoder d;
		struct collected c;
		mllp_decoder_init(&d, 0);
		feed_all(&d, PIPELINED, sizeof PIPELINED - 1, chunk, &c);
		cr_assert_eq(c.error, 0);
		cr_assert_eq(c.n, 3, "chunk %zu: %zu frames", chunk, c.n);
		cr_assert(c.lens[0] == 12 && !memcmp(c.frames[0], "MSH|A\rPID|1\r", 12));
		cr_assert(c.lens[1] == 6 && !memcmp(c.frames[1], "MSH|B\r", 6));
		cr_assert(c.lens[2] == 6 && !memcmp(c.frames[2], "MSH|C\r", 6));
		/* "noise" and the lone LF are skipped; the LF after FS CR is not. */
		cr_assert_eq(d.stats.skipped, 6, "chunk %zu", chunk);
		cr_assert_eq(d.stats.frames, 3);
		cr_assert_eq(mllp_decoder_pending(&d), 0);
		mllp_decoder_clear(&d);
	}
}

Test(mllp, frame_over_the_limit_fails_the_connection)
{
	struct mllp_decoder d;
	struct collected c;
	const char ok[] = "\x0b" "0123456789\x1c\r";
	const char big[] = "\x0b" "01234567890\x1c\r";

	mllp_decoder_init(&d, 10);
	feed_all(&d, ok, sizeof ok - 1, 3, &c);
	cr_assert_eq(c.error, 0);
	cr_assert_eq(c.n, 1);
	for (size_t chunk = 1; chunk < sizeof big; chunk++) {
		mllp_decoder_clear(&d);
		mllp_decoder_init(&d, 10);
		feed_all(&d, big, sizeof big - 1, chunk, &c);
		cr_assert_eq(c.error, 1, "chunk %zu", chunk);
		cr_assert_leq(d.cap, 10, "never buffers past the limit");
		size_t used, fl;
		const unsigned char *f;
		cr_assert_eq(mllp_decoder_feed(&d, ok, sizeof ok - 1, &used, &f, &fl, NULL, 0), -1,
			     "stays failed");
	}
	mllp_decoder_clear(&d);
}

/* Found by fuzz_mllp: an oversized partial frame cut short by a new <VT>
 * failed only when chunked; now it fails however the bytes arrive. */
Test(mllp, limit_applies_to_frames_cut_by_vt)
{
	const char in[] = "\x0b" "0123456789AB\x0b" "ok\x1c\r";
	for (size_t chunk = 1; chunk < sizeof in; chunk++) {
		struct mllp_decoder d;
		struct collected c;
		mllp_decoder_init(&d, 10);
		feed_all(&d, in, sizeof in - 1, chunk, &c);
		cr_assert_eq(c.error, 1, "chunk %zu", chunk);
		mllp_decoder_clear(&d);
	}
}

Test(mllp, restart_on_vt_and_missing_cr)
{
	struct mllp_decoder d;
	struct collected c;
	const char in[] = "\x0bMSH|lost\x0bMSH|X\x1cjunk\x0bMSH|Y\x1c\r";

	mllp_decoder_init(&d, 0);
	feed_all(&d, in, sizeof in - 1, 1, &c);
	cr_assert_eq(c.n, 2);
	cr_assert(c.lens[0] == 5 && !memcmp(c.frames[0], "MSH|X", 5));
	cr_assert(c.lens[1] == 5 && !memcmp(c.frames[1], "MSH|Y", 5));
	cr_assert_eq(d.stats.aborted, 1);
	cr_assert_eq(d.stats.bad_trailer, 1);
	cr_assert_eq(d.stats.skipped, 8 + 4);
	mllp_decoder_clear(&d);
}

Test(mllp, encode_and_commit_blocks)
{
	unsigned char out[64];
	struct mllp_decoder d;
	struct collected c;

	cr_assert_eq(mllp_encode("MSH|x\r", 6, out, 8), 0, "too small: nothing");
	size_t n = mllp_encode("MSH|x\r", 6, out, sizeof out);
	cr_assert_eq(n, 9);
	cr_assert(out[0] == MLLP_VT && out[7] == MLLP_FS && out[8] == MLLP_CR);
	n += mllp_encode_commit(1, out + n);
	n += mllp_encode_commit(0, out + n);
	cr_assert_eq(n, 17);
	mllp_decoder_init(&d, 0);
	feed_all(&d, (const char *)out, n, 2, &c);
	cr_assert_eq(c.n, 3);
	cr_assert_eq(mllp_frame_kind((unsigned char *)c.frames[0], c.lens[0]), MLLP_FRAME_MESSAGE);
	cr_assert_eq(mllp_frame_kind((unsigned char *)c.frames[1], c.lens[1]), MLLP_FRAME_COMMIT_ACK);
	cr_assert_eq(mllp_frame_kind((unsigned char *)c.frames[2], c.lens[2]), MLLP_FRAME_COMMIT_NAK);
	cr_assert_eq(mllp_frame_kind((unsigned char *)"", 0), MLLP_FRAME_MESSAGE);
	mllp_decoder_clear(&d);
}

Test(mllp, empty_frame_and_partial_pending)
{
	struct mllp_decoder d;
	struct collected c;
	mllp_decoder_init(&d, 0);
	feed_all(&d, "\x0b\x1c\r\x0bMSH", 7, 1, &c);
	cr_assert_eq(c.n, 1);
	cr_assert_eq(c.lens[0], 0);
	cr_assert_eq(mllp_decoder_pending(&d), 3);
	mllp_decoder_clear(&d);
}

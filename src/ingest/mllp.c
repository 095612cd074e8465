/* mllp — see mllp.h for the contract. */
#include "ingest/mllp.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

enum {
	ST_OUTSIDE,     /* between frames, waiting for <VT> */
	ST_PAYLOAD,     /* inside a frame, collecting until <FS> */
	ST_AFTER_FS,    /* saw <FS>, expecting <CR> */
	ST_AFTER_CR,    /* frame ended, one optional <LF> is not noise */
	ST_FAILED,
};

void mllp_decoder_init(struct mllp_decoder *d, size_t max_frame)
{
	memset(d, 0, sizeof *d);
	d->max_frame = max_frame ? max_frame : MLLP_DEFAULT_MAX_FRAME;
	d->state = ST_OUTSIDE;
}

void mllp_decoder_clear(struct mllp_decoder *d)
{
	free(d->buf);
	d->buf = NULL;
	d->len = d->cap = 0;
	d->state = ST_OUTSIDE;
}

size_t mllp_decoder_pending(const struct mllp_decoder *d)
{
	return d->state == ST_PAYLOAD ? d->len : 0;
}

static int fail(struct mllp_decoder *d, char *errstr, size_t errstr_size,
		const char *why)
{
	d->state = ST_FAILED;
	d->len = 0;
	return util_seterr(errstr, errstr_size, "%s", why);
}

/* Append to the assembly buffer, growing it geometrically but never past
 * max_frame: the cap is what keeps a hostile peer from exhausting memory. */
static int append(struct mllp_decoder *d, const unsigned char *p, size_t n)
{
	if (n > d->max_frame - d->len)
		return -1;
	if (d->len + n > d->cap) {
		size_t cap = d->cap ? d->cap : 4096;
		if (cap > d->max_frame)
			cap = d->max_frame;
		while (cap < d->len + n)
			cap = cap > d->max_frame / 2 ? d->max_frame : cap * 2;
		unsigned char *nb = realloc(d->buf, cap);
		if (!nb)
			return -2;
		d->buf = nb;
		d->cap = cap;
	}
	memcpy(d->buf + d->len, p, n);
	d->len += n;
	return 0;
}

int mllp_decoder_feed(struct mllp_decoder *d, const void *data, size_t len,
		      size_t *consumed, const unsigned char **frame,
		      size_t *frame_len, char *errstr, size_t errstr_size)
{
	const unsigned char *p = data, *end = p + len;

	*consumed = 0;
	if (d->state == ST_FAILED)
		return util_seterr(errstr, errstr_size, "decoder failed earlier");

	while (p < end) {
		switch (d->state) {
		case ST_AFTER_CR:
			d->state = ST_OUTSIDE;
			if (*p == MLLP_LF) {
				p++;
				continue;
			}
			/* fall through */
		case ST_OUTSIDE: {
			const unsigned char *vt = memchr(p, MLLP_VT, (size_t)(end - p));
			if (!vt) {
				d->stats.skipped += (uint64_t)(end - p);
				p = end;
				break;
			}
			d->stats.skipped += (uint64_t)(vt - p);
			p = vt + 1;
			d->state = ST_PAYLOAD;
			d->len = 0;
			break;
		}
		case ST_PAYLOAD: {
			/* Scan for the end of the payload; a <VT> here restarts. */
			const unsigned char *q = p;
			while (q < end && *q != MLLP_FS && *q != MLLP_VT)
				q++;
			size_t n = (size_t)(q - p);
			/* The limit holds however the frame ends, so the outcome
			 * never depends on how the bytes were chunked. */
			if (n > d->max_frame || d->len > d->max_frame - n) {
				*consumed = (size_t)(q - (const unsigned char *)data);
				return fail(d, errstr, errstr_size,
					    "MLLP frame larger than the configured maximum");
			}
			if (q < end && *q == MLLP_VT) {
				d->stats.aborted++;
				d->stats.skipped += d->len + n;
				d->len = 0;
				p = q + 1;
				break;
			}
			if (n) {
				int r = append(d, p, n);
				if (r < 0) {
					*consumed = (size_t)(q - (const unsigned char *)data);
					return fail(d, errstr, errstr_size,
						    r == -1 ? "MLLP frame larger than the configured maximum"
							    : "out of memory");
				}
			}
			p = q;
			if (q < end) { /* at <FS> */
				p++;
				d->state = ST_AFTER_FS;
			}
			break;
		}
		case ST_AFTER_FS:
			if (*p == MLLP_CR) {
				p++;
				d->state = ST_AFTER_CR;
			} else {
				/* Leave the byte for ST_OUTSIDE to judge. */
				d->stats.bad_trailer++;
				d->state = ST_OUTSIDE;
			}
			d->stats.frames++;
			*consumed = (size_t)(p - (const unsigned char *)data);
			*frame = d->buf ? d->buf : (const unsigned char *)"";
			*frame_len = d->len;
			d->len = 0; /* the data stays put until the next feed */
			return 1;
		default:
			return fail(d, errstr, errstr_size, "decoder in a bad state");
		}
	}
	*consumed = len;
	return 0;
}

enum mllp_frame_kind mllp_frame_kind(const unsigned char *frame, size_t len)
{
	if (len == 1 && frame[0] == MLLP_COMMIT_ACK)
		return MLLP_FRAME_COMMIT_ACK;
	if (len == 1 && frame[0] == MLLP_COMMIT_NAK)
		return MLLP_FRAME_COMMIT_NAK;
	return MLLP_FRAME_MESSAGE;
}

size_t mllp_encode(const void *payload, size_t len, unsigned char *out,
		   size_t out_size)
{
	if (len > SIZE_MAX - MLLP_OVERHEAD || out_size < len + MLLP_OVERHEAD)
		return 0;
	out[0] = MLLP_VT;
	if (len)
		memcpy(out + 1, payload, len);
	out[len + 1] = MLLP_FS;
	out[len + 2] = MLLP_CR;
	return len + MLLP_OVERHEAD;
}

size_t mllp_encode_commit(int positive, unsigned char out[4])
{
	unsigned char c = positive ? MLLP_COMMIT_ACK : MLLP_COMMIT_NAK;
	return mllp_encode(&c, 1, out, 4);
}

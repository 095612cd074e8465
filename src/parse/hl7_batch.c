/* hl7_batch — split batch files and concatenated messages. See hl7.h.
 *
 * Works line by line: a line is a segment wherever it starts (after \r, \n
 * or \r\n). MSH starts a message, which runs until the next MSH or envelope
 * segment (FHS, BHS, BTS, FTS). Nothing is copied. */
#include "parse/hl7.h"

#include <string.h>

#include "parse/hl7_internal.h"

void hl7_batch_init(struct hl7_batch *b, const char *buf, size_t len)
{
	memset(b, 0, sizeof *b);
	b->buf = buf;
	b->len = len;
	b->eol_from = len + 1; /* nothing known yet */
}

static size_t find_from(const struct hl7_batch *b, size_t from, char c)
{
	const char *q = memchr(b->buf + from, c, b->len - from);
	return q ? (size_t)(q - b->buf) : b->len;
}

/* The end of the line at pos: the first CR or LF at or after it (len if
 * none). memchr keeps the search fast on long lines; the positions found
 * serve the following lines, so an LF file is not searched for CRs again
 * on every line. */
static size_t line_end(struct hl7_batch *b, size_t pos)
{
	if (pos < b->eol_from || pos > b->eol_cr || pos > b->eol_lf) {
		/* the cache does not cover pos: refresh what it cannot vouch for */
		int cr_ok = pos >= b->eol_from && pos <= b->eol_cr;
		int lf_ok = pos >= b->eol_from && pos <= b->eol_lf;
		if (!cr_ok)
			b->eol_cr = find_from(b, pos, '\r');
		if (!lf_ok)
			b->eol_lf = find_from(b, pos, '\n');
		b->eol_from = pos;
	}
	return b->eol_cr < b->eol_lf ? b->eol_cr : b->eol_lf;
}

/* Next line at *pos: its start and length; *pos moves past the terminator. */
static int next_line(struct hl7_batch *b, size_t *pos, size_t *start, size_t *n)
{
	while (*pos < b->len) {
		const char *p = b->buf + *pos;
		size_t e = line_end(b, *pos);
		const char *q = b->buf + e;
		*start = *pos;
		*n = e - *pos;
		*pos = e + (e < b->len);
		for (const char *c = p; c < q; c++)
			if (*c != ' ' && *c != '\t' && *c != 0x1a) /* ^Z from old DOS tools */
				return 1;
	}
	return 0;
}

static int is_id(const char *p, size_t n, const char *id)
{
	if (n < 3 || memcmp(p, id, 3) != 0)
		return 0;
	/* The id must end there: "MSHX" would be another segment. */
	return n == 3 || !((p[3] >= 'A' && p[3] <= 'Z') || (p[3] >= '0' && p[3] <= '9'));
}

static int is_envelope(const char *p, size_t n)
{
	return is_id(p, n, "FHS") || is_id(p, n, "BHS") || is_id(p, n, "BTS") ||
	       is_id(p, n, "FTS");
}

static int batch_fail(struct hl7_batch *b, struct hl7_error *err, size_t off,
		      const char *why)
{
	hl7_seterr(err, HL7_E_BATCH, off, "batch byte %zu: %s", off, why);
	b->pos = b->len;
	b->done = 1;
	return -1;
}

int hl7_batch_next(struct hl7_batch *b, struct hl7_batch_item *it,
		   struct hl7_error *err)
{
	size_t start, n;

	if (b->done)
		return 0;
	while (next_line(b, &b->pos, &start, &n)) {
		const char *p = b->buf + start;
		struct hl7_view line = { p, n };
		if (b->seen_fts)
			return batch_fail(b, err, start, "segment after FTS");
		if (is_id(p, n, "FHS")) {
			if (b->seen_fhs || b->seen_bhs || b->index > 0)
				return batch_fail(b, err, start, "FHS out of place");
			b->seen_fhs = 1;
			b->fhs = line;
		} else if (is_id(p, n, "BHS")) {
			if ((b->seen_bhs && !b->seen_bts) || (b->index > 0 && !b->seen_bts))
				return batch_fail(b, err, start, "BHS out of place");
			b->seen_bhs = 1;
			b->seen_bts = 0;
			b->bhs = line;
		} else if (is_id(p, n, "BTS")) {
			if (!b->seen_bhs || b->seen_bts)
				return batch_fail(b, err, start, "BTS without BHS");
			b->seen_bts = 1;
			b->bts = line;
		} else if (is_id(p, n, "FTS")) {
			if (!b->seen_fhs)
				return batch_fail(b, err, start, "FTS without FHS");
			b->seen_fts = 1;
			b->fts = line;
		} else if (is_id(p, n, "MSH")) {
			if (b->seen_bts)
				return batch_fail(b, err, start, "message after BTS");
			/* The message runs to the next header or envelope line;
			 * its terminators stay with it. */
			size_t pos = b->pos, end = b->len, s2, n2;
			while (next_line(b, &pos, &s2, &n2)) {
				const char *q = b->buf + s2;
				if (is_id(q, n2, "MSH") || is_envelope(q, n2)) {
					end = s2;
					break;
				}
			}
			it->index = b->index++;
			it->offset = start;
			it->msg.ptr = p;
			it->msg.len = end - start;
			b->pos = end;
			return 1;
		} else {
			return batch_fail(b, err, start, "segment outside a message");
		}
	}
	if (b->seen_bhs && !b->seen_bts)
		return batch_fail(b, err, b->len, "BHS without BTS");
	if (b->seen_fhs && !b->seen_fts)
		return batch_fail(b, err, b->len, "FHS without FTS");
	b->done = 1;
	return 0;
}

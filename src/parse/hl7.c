/* hl7 — message parsing, navigation and paths. See hl7.h for the contract.
 * Escapes and charsets live in hl7_escape.c, batches in hl7_batch.c, ACKs in
 * hl7_ack.c. */
#include "parse/hl7.h"

#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "parse/hl7_internal.h"

/* Numbers in paths above this are surely typos, and keep arithmetic safe. */
#define HL7_PATH_MAX_NUMBER 999999u

void hl7_seterr(struct hl7_error *err, enum hl7_errcode code, size_t offset,
		const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	memset(err, 0, sizeof *err);
	err->code = code;
	err->offset = offset;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
}

void hl7_seterr_where(struct hl7_error *err, const char *seg, uint32_t field)
{
	if (!err)
		return;
	snprintf(err->where.seg, sizeof err->where.seg, "%s", seg);
	err->where.field = field;
}

int hl7_err_0357(enum hl7_errcode code)
{
	switch (code) {
	case HL7_OK:
		return 0;
	case HL7_E_EMPTY:
	case HL7_E_NOT_MSH:
	case HL7_E_SEGMENT_ID:
	case HL7_E_MULTIPLE:
	case HL7_E_BATCH:
		return 100; /* segment sequence error */
	case HL7_E_REQUIRED:
		return 101; /* required field missing */
	case HL7_E_DELIMS:
	case HL7_E_FIELD_TOO_LONG:
	case HL7_E_ENCODING:
		return 102; /* data type error */
	case HL7_E_TOO_MANY_SEGMENTS:
	case HL7_E_TOO_LARGE:
	case HL7_E_CHARSET:
	case HL7_E_NOSPACE:
	case HL7_E_PATH:
	case HL7_E_ARG:
		break;
	}
	return 207; /* application internal error */
}

const char *hl7_errcode_name(enum hl7_errcode c)
{
	static const char *names[] = {
		"HL7_OK", "HL7_E_EMPTY", "HL7_E_NOT_MSH", "HL7_E_DELIMS",
		"HL7_E_SEGMENT_ID", "HL7_E_TOO_MANY_SEGMENTS", "HL7_E_FIELD_TOO_LONG",
		"HL7_E_TOO_LARGE", "HL7_E_REQUIRED", "HL7_E_MULTIPLE", "HL7_E_CHARSET",
		"HL7_E_ENCODING", "HL7_E_NOSPACE", "HL7_E_PATH", "HL7_E_BATCH", "HL7_E_ARG",
	};
	return (size_t)c < sizeof names / sizeof names[0] ? names[c] : "HL7_E_?";
}

int hl7_is_header_id(const char *id)
{
	return !strcmp(id, "MSH") || !strcmp(id, "FHS") || !strcmp(id, "BHS");
}

/* Delimiters must be printable ASCII (a control character such as MLLP's
 * <FS> would break the framing of anything we send back; a byte >= 0x80
 * would split multibyte characters) and not letters or digits (escape
 * sequences are letters and hex digits between escape characters, so those
 * would make them ambiguous). */
static int delim_ok(char c)
{
	unsigned char u = (unsigned char)c;
	return u >= 0x20 && u < 0x7f && !(u >= '0' && u <= '9') &&
	       !(u >= 'A' && u <= 'Z') && !(u >= 'a' && u <= 'z');
}

int hl7_delims_read(const char *p, size_t len, struct hl7_delims *d)
{
	if (len < 4)
		return -1;
	char fs = p[3];
	if (!delim_ok(fs))
		return -1;
	memset(d, 0, sizeof *d);
	d->field = fs;
	/* Undeclared delimiters become the field separator: it never occurs
	 * inside a field, so they never split anything. */
	d->comp = d->rep = d->esc = d->sub = d->trunc = fs;
	char *slots[5] = { &d->comp, &d->rep, &d->esc, &d->sub, &d->trunc };
	size_t i;
	for (i = 0; i < 5 && 4 + i < len && p[4 + i] != fs; i++) {
		char c = p[4 + i];
		if (!delim_ok(c))
			return -1;
		/* Every encoding character must be distinct from the others. */
		if (c == fs || memchr(p + 4, c, i))
			return -1;
		*slots[i] = c;
	}
	if (i == 0)
		return -1; /* MSH-2 missing */
	/* A sixth character would be junk, not another delimiter. */
	if (4 + i < len && p[4 + i] != fs)
		return -1;
	d->has_esc = i >= 3;
	d->has_trunc = i >= 5;
	return 0;
}

static int seg_id_ok(const char *p, size_t n)
{
	if (n != 3)
		return 0;
	for (size_t i = 0; i < 3; i++) {
		char c = p[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

static int blank_line(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t')
			return 0;
	return 1;
}

static int read_charset(struct hl7_msg *m, struct hl7_error *err)
{
	struct hl7_view f, rep;

	m->cs = HL7_CS_DEFAULT;
	m->charset[0] = '\0';
	hl7_field(m, 0, 18, &f);
	hl7_piece(f, m->d.rep, 1, &rep);
	if (rep.len == 0)
		return 0;
	int r = hl7_charset_lookup(rep, &m->cs, m->charset, sizeof m->charset);
	if (r == 1) {
		/* Not an HL7 name: usable only if iconv knows it. Checked here, so
		 * that a message whose values happen to be ASCII is not accepted
		 * under a charset nothing can read (issue 14). */
		iconv_t cd = iconv_open("UTF-8", m->charset);
		if (cd == (iconv_t)-1)
			r = -1;
		else
			iconv_close(cd);
	}
	if (r < 0) {
		hl7_seterr(err, HL7_E_CHARSET, (size_t)(rep.ptr - m->buf),
			   "MSH-18: unsupported character set");
		hl7_seterr_where(err, "MSH", 18);
		return -1;
	}
	return 0;
}

/* The first field of segment (s, n) longer than max, or NULL. *nf gets
 * the number of separators before it. */
static const char *long_field(const char *s, size_t n, char fs, size_t max,
			      uint32_t *nf)
{
	const char *p = s, *end = s + n;

	*nf = 0;
	for (;;) {
		const char *q = memchr(p, fs, (size_t)(end - p));
		if ((size_t)((q ? q : end) - p) > max)
			return p;
		if (!q)
			return NULL;
		p = q + 1;
		(*nf)++;
	}
}

int hl7_parse(struct hl7_msg *m, const char *buf, size_t len,
	      struct hl7_seg *segs, size_t max_segs,
	      const struct hl7_parse_opts *opts, struct hl7_error *err)
{
	size_t max_field = opts && opts->max_field_len ? opts->max_field_len
						       : HL7_DEFAULT_MAX_FIELD_LEN;
	int allow_multiple = opts && opts->allow_multiple;
	const char *end = buf + len, *p = buf;
	/* Next \r and next \n at or after p (end if none). Each is searched
	 * with memchr only once it has been passed, so splitting stays linear
	 * for \r, \n and \r\n terminators alike. */
	const char *cr = NULL, *lf = NULL;

	memset(m, 0, sizeof *m);
	m->buf = buf;
	m->len = len;
	m->segs = segs;
	if (len > HL7_MAX_MESSAGE_LEN) {
		hl7_seterr(err, HL7_E_TOO_LARGE, 0, "message larger than %u bytes",
			   HL7_MAX_MESSAGE_LEN);
		return -1;
	}

	while (p < end) {
		if (!cr || cr < p) {
			cr = memchr(p, '\r', (size_t)(end - p));
			if (!cr)
				cr = end;
		}
		if (!lf || lf < p) {
			lf = memchr(p, '\n', (size_t)(end - p));
			if (!lf)
				lf = end;
		}
		const char *start = p, *e = cr < lf ? cr : lf;
		size_t n = (size_t)(e - start);
		p = e < end ? e + 1 : end; /* a \n after \r is an empty line */
		if (n == 0 || blank_line(start, n))
			continue;

		if (m->nsegs == 0) {
			if (n < 3 || memcmp(start, "MSH", 3) != 0) {
				hl7_seterr(err, HL7_E_NOT_MSH, (size_t)(start - buf),
					   "message does not start with MSH");
				return -1;
			}
			if (hl7_delims_read(start, n, &m->d) < 0) {
				hl7_seterr(err, HL7_E_DELIMS, (size_t)(start - buf) + 3,
					   "MSH-1/MSH-2: invalid encoding characters");
				hl7_seterr_where(err, "MSH", 2);
				return -1;
			}
		}
		const char *sep = memchr(start, m->d.field, n);
		size_t idlen = sep ? (size_t)(sep - start) : n;
		if (!seg_id_ok(start, idlen)) {
			hl7_seterr(err, HL7_E_SEGMENT_ID, (size_t)(start - buf),
				   "segment %zu: invalid segment id", m->nsegs + 1);
			return -1;
		}
		char id[4] = { start[0], start[1], start[2], '\0' };
		int header = hl7_is_header_id(id);
		if (m->nsegs > 0 && !allow_multiple &&
		    (header || !strcmp(id, "BTS") || !strcmp(id, "FTS"))) {
			hl7_seterr(err, HL7_E_MULTIPLE, (size_t)(start - buf),
				   "segment %zu: batch or second message header in one message",
				   m->nsegs + 1);
			return -1;
		}
		/* No field can be longer than its segment: only long segments
		 * need the per-field check. */
		uint32_t nf;
		const char *lng = n > max_field ? long_field(start, n, m->d.field, max_field, &nf)
						: NULL;
		if (lng) {
			uint32_t field = header ? nf + 1 : nf;
			hl7_seterr(err, HL7_E_FIELD_TOO_LONG, (size_t)(lng - buf),
				   "%s-%u (segment %zu) longer than %zu bytes", id, field,
				   m->nsegs + 1, max_field);
			hl7_seterr_where(err, id, field);
			return -1;
		}
		if (m->nsegs >= max_segs) {
			hl7_seterr(err, HL7_E_TOO_MANY_SEGMENTS, (size_t)(start - buf),
				   "more than %zu segments", max_segs);
			return -1;
		}
		struct hl7_seg *sg = &segs[m->nsegs++];
		sg->off = (uint32_t)(start - buf);
		sg->len = (uint32_t)n;
		memcpy(sg->id, id, 4);
	}

	if (m->nsegs == 0) {
		hl7_seterr(err, HL7_E_EMPTY, 0, "no segments");
		return -1;
	}
	static const uint32_t required[] = { 9, 10, 12 };
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
		struct hl7_view f;
		if (!hl7_field(m, 0, required[i], &f) || f.len == 0) {
			hl7_seterr(err, HL7_E_REQUIRED, 0, "MSH-%u is required",
				   required[i]);
			hl7_seterr_where(err, "MSH", required[i]);
			return -1;
		}
	}
	return read_charset(m, err);
}

void hl7_msg_clear(struct hl7_msg *m)
{
	if (m->cd) {
		iconv_close((iconv_t)m->cd);
		m->cd = NULL;
	}
}

/* ---- navigation ------------------------------------------------------------ */

ssize_t hl7_seg_find(const struct hl7_msg *m, const char *id, size_t n,
		     size_t from, size_t to)
{
	if (n == 0)
		n = 1;
	if (to > m->nsegs)
		to = m->nsegs;
	for (size_t i = from; i < to; i++) {
		const char *sid = m->segs[i].id;
		if (sid[0] == id[0] && sid[1] == id[1] && sid[2] == id[2] &&
		    id[3] == '\0' && --n == 0)
			return (ssize_t)i;
	}
	return -1;
}

/* The first c in [p, end), or NULL. Fields and components are mostly a few
 * bytes long, where a plain loop beats memchr's call and set-up; long ones
 * (a report's text) still get memchr. */
static inline const char *scan(const char *p, const char *end, char c)
{
	const char *stop = end - p > 32 ? p + 32 : end;
	for (; p < stop; p++)
		if (*p == c)
			return p;
	return p < end ? memchr(p, c, (size_t)(end - p)) : NULL;
}

int hl7_field(const struct hl7_msg *m, size_t s, uint32_t f,
	      struct hl7_view *out)
{
	out->ptr = "";
	out->len = 0;
	if (s >= m->nsegs || f == 0)
		return 0;
	const struct hl7_seg *sg = &m->segs[s];
	const char *p = m->buf + sg->off, *end = p + sg->len;
	uint32_t skip = f;
	if (hl7_is_header_id(sg->id)) {
		if (f == 1) { /* the field separator itself */
			if (sg->len < 4)
				return 0;
			out->ptr = p + 3;
			out->len = 1;
			return 1;
		}
		skip = f - 1; /* MSH-2 is the first piece after the id */
	}
	char fs = m->d.field;
	uint32_t want = skip;
	if (m->memo.seg == s + 1 && m->memo.skip <= skip) {
		p = m->buf + m->memo.off;
		skip -= m->memo.skip;
	}
	while (skip--) {
		const char *q = scan(p, end, fs);
		if (!q)
			return 0;
		p = q + 1;
	}
	struct hl7_msg *mm = (struct hl7_msg *)m;
	mm->memo.seg = (uint32_t)s + 1;
	mm->memo.skip = want;
	mm->memo.off = (uint32_t)(p - m->buf);
	const char *q = scan(p, end, fs);
	out->ptr = p;
	out->len = (size_t)((q ? q : end) - p);
	return 1;
}

int hl7_piece(struct hl7_view v, char sep, uint32_t n, struct hl7_view *out)
{
	const char *p = v.ptr, *end = v.ptr + v.len;

	out->ptr = "";
	out->len = 0;
	if (n == 0 || v.len == 0)
		return 0;
	while (--n) {
		const char *q = scan(p, end, sep);
		if (!q)
			return 0;
		p = q + 1;
	}
	const char *q = scan(p, end, sep);
	out->ptr = p;
	out->len = (size_t)((q ? q : end) - p);
	return 1;
}

void hl7_iter_init(struct hl7_iter *it, struct hl7_view v, char sep)
{
	it->p = v.ptr;
	it->end = v.ptr + v.len;
	it->sep = sep;
	it->done = v.len == 0;
}

int hl7_iter_next(struct hl7_iter *it, struct hl7_view *out)
{
	if (it->done)
		return 0;
	const char *q = scan(it->p, it->end, it->sep);
	out->ptr = it->p;
	if (q) {
		out->len = (size_t)(q - it->p);
		it->p = q + 1;
	} else {
		out->len = (size_t)(it->end - it->p);
		it->done = 1;
	}
	return 1;
}

int hl7_group_next(const struct hl7_msg *m, const char *id, size_t *pos,
		   size_t *first, size_t *end)
{
	ssize_t s = hl7_seg_find(m, id, 1, *pos, m->nsegs);
	if (s < 0) {
		*pos = m->nsegs;
		return 0;
	}
	ssize_t e = hl7_seg_find(m, id, 1, (size_t)s + 1, m->nsegs);
	*first = (size_t)s;
	*end = e < 0 ? m->nsegs : (size_t)e;
	*pos = *end;
	return 1;
}

/* ---- paths ----------------------------------------------------------------- */

static ssize_t path_fail(struct hl7_error *err, size_t at, const char *what)
{
	hl7_seterr(err, HL7_E_PATH, 0, "path column %zu: %s", at + 1, what);
	if (err)
		err->column = at + 1;
	return -1;
}

/* Read a 1-based number at s[*i]; advances *i. */
static int path_number(const char *s, size_t len, size_t *i, uint32_t *out,
		       struct hl7_error *err)
{
	size_t start = *i;
	uint32_t v = 0;

	if (*i >= len || s[*i] < '0' || s[*i] > '9')
		return (int)path_fail(err, *i, "expected a number");
	while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
		v = v * 10 + (uint32_t)(s[*i] - '0');
		if (v > HL7_PATH_MAX_NUMBER)
			return (int)path_fail(err, start, "number too large");
		(*i)++;
	}
	if (v == 0)
		return (int)path_fail(err, start, "numbers start at 1");
	*out = v;
	return 0;
}

static int is_digit_at(const char *s, size_t len, size_t i)
{
	return i < len && s[i] >= '0' && s[i] <= '9';
}

/* [n] at s[*i] if there is one followed by a digit; a '[' followed by
 * something else ends the path (the caller's language may use it). */
static int path_index(const char *s, size_t len, size_t *i, uint32_t *out,
		      struct hl7_error *err)
{
	if (*i >= len || s[*i] != '[' || !is_digit_at(s, len, *i + 1))
		return 0;
	(*i)++;
	if (path_number(s, len, i, out, err) < 0)
		return -1;
	if (*i >= len || s[*i] != ']')
		return (int)path_fail(err, *i, "expected ']'");
	(*i)++;
	return 0;
}

/* .C and .C.S, each dot only taken when a digit follows it. */
static int path_comp_sub(const char *s, size_t len, size_t *i,
			 struct hl7_path *p, struct hl7_error *err)
{
	if (*i < len && s[*i] == '.' && is_digit_at(s, len, *i + 1)) {
		(*i)++;
		if (path_number(s, len, i, &p->comp, err) < 0)
			return -1;
		if (*i < len && s[*i] == '.' && is_digit_at(s, len, *i + 1)) {
			(*i)++;
			if (path_number(s, len, i, &p->sub, err) < 0)
				return -1;
		}
	}
	return 0;
}

ssize_t hl7_path_parse(struct hl7_path *p, const char *s, size_t len,
		       struct hl7_error *err)
{
	size_t i = 0;

	memset(p, 0, sizeof *p);
	if (len > 0 && s[0] == '.') {
		if (!is_digit_at(s, len, 1))
			return path_fail(err, 1, "expected a component number");
		if (path_comp_sub(s, len, &i, p, err) < 0)
			return -1;
		return (ssize_t)i;
	}
	for (i = 0; i < 3; i++) {
		char c = i < len ? s[i] : '\0';
		int ok = (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return path_fail(err, i, "expected a segment id (3 capitals or digits)");
		p->seg[i] = c;
	}
	if (path_index(s, len, &i, &p->seg_n, err) < 0)
		return -1;
	if (i < len && s[i] == '-') {
		i++;
		if (path_number(s, len, &i, &p->field, err) < 0)
			return -1;
		if (path_index(s, len, &i, &p->rep, err) < 0)
			return -1;
		if (path_comp_sub(s, len, &i, p, err) < 0)
			return -1;
	}
	return (ssize_t)i;
}

int hl7_path_compile(struct hl7_path *p, const char *s, struct hl7_error *err)
{
	size_t len = strlen(s);
	ssize_t n = hl7_path_parse(p, s, len, err);
	if (n < 0)
		return -1;
	if ((size_t)n != len)
		return (int)path_fail(err, (size_t)n, "unexpected character");
	return 0;
}

int hl7_path_format(const struct hl7_path *p, char *out, size_t out_size)
{
	char seg_n[16] = "", rep[16] = "", field[16] = "", comp[16] = "", sub[16] = "";

	if (p->seg_n)
		snprintf(seg_n, sizeof seg_n, "[%u]", p->seg_n);
	if (p->field)
		snprintf(field, sizeof field, "-%u", p->field);
	if (p->rep)
		snprintf(rep, sizeof rep, "[%u]", p->rep);
	if (p->comp)
		snprintf(comp, sizeof comp, ".%u", p->comp);
	if (p->sub)
		snprintf(sub, sizeof sub, ".%u", p->sub);
	return snprintf(out, out_size, "%s%s%s%s%s%s", p->seg, seg_n, field, rep,
			comp, sub);
}

/* Component and subcomponent of one repetition. MSH-1/MSH-2 are atomic. */
static int rep_part(const struct hl7_delims *d, struct hl7_view rep, uint32_t comp,
		    uint32_t sub, int atomic, struct hl7_view *out)
{
	*out = rep;
	if (atomic) {
		if (comp > 1 || sub > 1) {
			out->ptr = "";
			out->len = 0;
			return 0;
		}
		return rep.len > 0;
	}
	if (comp && !hl7_piece(rep, d->comp, comp, out))
		return 0;
	if (sub && !hl7_piece(*out, d->sub, sub, out))
		return 0;
	return out->len > 0;
}

/* Locate the segment and field a path names; *atomic for MSH-1/MSH-2. */
static int path_field(const struct hl7_msg *m, const struct hl7_path *p,
		      size_t from, size_t to, ssize_t *seg, struct hl7_view *f,
		      int *atomic)
{
	f->ptr = "";
	f->len = 0;
	*seg = hl7_seg_find(m, p->seg, p->seg_n, from, to);
	if (*seg < 0)
		return 0;
	*atomic = hl7_is_header_id(m->segs[*seg].id) && p->field <= 2;
	return hl7_field(m, (size_t)*seg, p->field, f);
}

int hl7_get_field_in(const struct hl7_msg *m, const struct hl7_path *p,
		     size_t from, size_t to, struct hl7_view *out)
{
	ssize_t s;
	int atomic;

	if (!p->seg[0] || !p->field) {
		out->ptr = "";
		out->len = 0;
		return -1;
	}
	return path_field(m, p, from, to, &s, out, &atomic);
}

int hl7_get_in(const struct hl7_msg *m, const struct hl7_path *p, size_t from,
	       size_t to, struct hl7_view *out)
{
	struct hl7_view f, rep;
	ssize_t s;
	int atomic = 0;

	out->ptr = "";
	out->len = 0;
	if (!p->seg[0])
		return -1;
	if (!p->field) {
		s = hl7_seg_find(m, p->seg, p->seg_n, from, to);
		if (s < 0)
			return 0;
		out->ptr = m->buf + m->segs[s].off;
		out->len = m->segs[s].len;
		return 1;
	}
	if (!path_field(m, p, from, to, &s, &f, &atomic))
		return 0;
	if (atomic) {
		rep = f;
		if (p->rep > 1)
			return 0;
	} else if (!hl7_piece(f, m->d.rep, p->rep ? p->rep : 1, &rep)) {
		return 0;
	}
	return rep_part(&m->d, rep, p->comp, p->sub, atomic, out);
}

int hl7_get(const struct hl7_msg *m, const struct hl7_path *p,
	    struct hl7_view *out)
{
	return hl7_get_in(m, p, 0, m->nsegs, out);
}

size_t hl7_count_reps_in(const struct hl7_msg *m, const struct hl7_path *p,
			 size_t from, size_t to)
{
	struct hl7_view f;
	ssize_t s;
	int atomic = 0;

	if (!p->seg[0] || !p->field || !path_field(m, p, from, to, &s, &f, &atomic) ||
	    f.len == 0)
		return 0;
	if (atomic)
		return 1;
	size_t n = 1;
	for (const char *q = f.ptr, *end = f.ptr + f.len;
	     (q = memchr(q, m->d.rep, (size_t)(end - q))) != NULL; q++)
		n++;
	return n;
}

int hl7_get_rel(const struct hl7_msg *m, struct hl7_view rep,
		const struct hl7_path *p, struct hl7_view *out)
{
	if (p->seg[0]) {
		out->ptr = "";
		out->len = 0;
		return -1;
	}
	return rep_part(&m->d, rep, p->comp, p->sub, 0, out);
}

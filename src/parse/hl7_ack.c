/* hl7_ack — acknowledgement builder. See hl7.h.
 *
 * Fields taken from the original (MSH-3..6, MSH-9.2, MSH-10..12, MSH-18) are
 * copied as they were, still escaped, and the ACK keeps the original's
 * delimiters, so the copies stay valid without re-escaping. Text we add
 * (control id, timestamp, reason) is escaped. */
#include "parse/hl7.h"

#include <stdio.h>
#include <string.h>

#include "util.h"
#include "parse/hl7_internal.h"

/* A copied field longer than this is not an application name or an id. */
#define ACK_MAX_COPIED_FIELD 199
#define ACK_DEFAULT_VERSION "2.5.1"

struct writer {
	char *out;
	size_t cap, n;
	int overflow;
};

static void w_put(struct writer *w, const char *s, size_t len)
{
	if (w->overflow || len > w->cap - w->n) {
		w->overflow = 1;
		w->n += len; /* keep counting so the error can say how much */
		return;
	}
	memcpy(w->out + w->n, s, len);
	w->n += len;
}

static void w_ch(struct writer *w, char c)
{
	w_put(w, &c, 1);
}

static void w_text(struct writer *w, const struct hl7_delims *d, const char *s)
{
	char tmp[512];
	size_t len = strlen(s);

	/* Escaped text grows at most 5x (one char → \X1F\); do it in slices. */
	while (len > 0) {
		size_t take = len > sizeof tmp / 5 ? sizeof tmp / 5 : len;
		ssize_t n = hl7_escape(d, s, take, tmp, sizeof tmp);
		if (n > 0)
			w_put(w, tmp, (size_t)n);
		s += take;
		len -= take;
	}
}

static void w_num(struct writer *w, unsigned v)
{
	char tmp[16];
	int n = snprintf(tmp, sizeof tmp, "%u", v);
	w_put(w, tmp, (size_t)n);
}

/* A copied field is used only if it cannot break the ACK or its framing.
 * When the ACK cannot keep the original's delimiters (foreign), the value
 * must also be free of the standard ones. */
static struct hl7_view safe_copy(struct hl7_view v, int foreign)
{
	if (v.len > ACK_MAX_COPIED_FIELD)
		goto drop;
	for (size_t i = 0; i < v.len; i++) {
		char c = v.ptr[i];
		if ((unsigned char)c < 0x20 || c == 0x7f ||
		    (foreign && strchr("|^~\\&", c)))
			goto drop;
	}
	return v;
drop:
	v.ptr = "";
	v.len = 0;
	return v;
}

/* MSA-2: the original's control id, so the sender can correlate the
 * answer. A value that safe_copy would drop (control characters, longer
 * than ACK_MAX_COPIED_FIELD, delimiters foreign to the ACK) is written
 * escaped instead — control characters as \Xhh\, foreign delimiters as
 * \F\ \S\ ... — and cut after ACK_MAX_COPIED_FIELD characters of output,
 * never inside an escape sequence: a prefix of the sender's id, exact up to
 * the cut once unescaped. (The pipeline answers such a message AR.) */
static void w_control_id(struct writer *w, const struct hl7_delims *d, int own, struct hl7_view v)
{
	size_t out = 0;
	if (safe_copy(v, !own).len == v.len) {
		w_put(w, v.ptr, v.len); /* as it was */
		return;
	}
	for (size_t i = 0; i < v.len;) {
		char tmp[16];
		size_t tl = 0, adv = 1;
		unsigned char c = (unsigned char)v.ptr[i];
		if (own && c == (unsigned char)d->esc) {
			/* the original's escape sequence: whole, if it is a sane one */
			const char *end = memchr(v.ptr + i + 1, d->esc, v.len - i - 1);
			size_t sl = end ? (size_t)(end - (v.ptr + i)) + 1 : 0;
			for (size_t k = 1; sl && k + 1 < sl; k++)
				if ((unsigned char)v.ptr[i + k] < 0x20 || v.ptr[i + k] == 0x7f)
					sl = 0;
			if (sl && sl < sizeof tmp) {
				memcpy(tmp, v.ptr + i, sl);
				tl = adv = sl;
			}
		} else if (c == 0x7f) {
			tl = (size_t)snprintf(tmp, sizeof tmp, "%cX7F%c", d->esc, d->esc);
		} else if (own && c >= 0x20) {
			tmp[0] = (char)c;
			tl = 1;
		}
		if (!tl) {
			ssize_t n = hl7_escape(d, (const char *)&v.ptr[i], 1, tmp, sizeof tmp);
			tl = n > 0 ? (size_t)n : 0;
		}
		if (out + tl > ACK_MAX_COPIED_FIELD)
			break;
		w_put(w, tmp, tl);
		out += tl;
		i += adv;
	}
}

static const char *text_0357(int code)
{
	switch (code) {
	case 0: return "Message accepted";
	case 100: return "Segment sequence error";
	case 101: return "Required field missing";
	case 102: return "Data type error";
	case 103: return "Table value not found";
	case 200: return "Unsupported message type";
	case 201: return "Unsupported event code";
	case 202: return "Unsupported processing id";
	case 203: return "Unsupported version id";
	case 204: return "Unknown key identifier";
	case 205: return "Duplicate key identifier";
	case 206: return "Application record locked";
	default: return "Application internal error";
	}
}

/* Version 2.5 moved the error location and code to ERR-2 and ERR-3. */
static int version_at_least_25(struct hl7_view v)
{
	unsigned major = 0, minor = 0;
	size_t i = 0;
	while (i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9')
		major = major * 10 + (unsigned)(v.ptr[i++] - '0');
	if (i < v.len && v.ptr[i] == '.')
		i++;
	while (i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9' && minor < 1000)
		minor = minor * 10 + (unsigned)(v.ptr[i++] - '0');
	return major > 2 || (major == 2 && minor >= 5);
}

static int enhanced_mode(const struct hl7_msg *m)
{
	struct hl7_view a, b;
	hl7_field(m, 0, 15, &a);
	hl7_field(m, 0, 16, &b);
	return a.len > 0 || b.len > 0;
}

int hl7_ack_wanted(const struct hl7_msg *m, enum hl7_ack_status status)
{
	struct hl7_view v;

	if (!enhanced_mode(m))
		return 1;
	hl7_field(m, 0, 15, &v);
	if (v.len == 2 && !memcmp(v.ptr, "NE", 2))
		return 0;
	if (v.len == 2 && !memcmp(v.ptr, "ER", 2))
		return status != HL7_ACK_ACCEPT;
	if (v.len == 2 && !memcmp(v.ptr, "SU", 2))
		return status == HL7_ACK_ACCEPT;
	return 1; /* AL, or empty with MSH-16 valued */
}

/* Find the MSH line of a message that did not parse, as a one-segment
 * message, so the same field accessors work. Returns 0 if none. */
static int salvage_msh(const char *raw, size_t len, struct hl7_msg *tmp,
		       struct hl7_seg *seg)
{
	size_t i = 0;
	while (i < len && (raw[i] == '\r' || raw[i] == '\n' || raw[i] == ' '))
		i++;
	const char *p = raw + i, *q = p;
	while (q < raw + len && *q != '\r' && *q != '\n')
		q++;
	size_t n = (size_t)(q - p);
	memset(tmp, 0, sizeof *tmp);
	if (n < 4 || memcmp(p, "MSH", 3) != 0 || n > HL7_MAX_MESSAGE_LEN ||
	    hl7_delims_read(p, n, &tmp->d) < 0)
		return 0;
	tmp->buf = raw;
	tmp->len = len;
	tmp->segs = seg;
	tmp->nsegs = 1;
	seg->off = (uint32_t)i;
	seg->len = (uint32_t)n;
	memcpy(seg->id, "MSH", 4);
	return 1;
}

/* An error code as a coded element: code, text and table HL70357, its
 * parts separated by sep (components in ERR-3, subcomponents in old ERR-1). */
static void w_0357(struct writer *w, const struct hl7_delims *d, char sep, int code)
{
	w_num(w, (unsigned)code);
	w_ch(w, sep);
	w_text(w, d, text_0357(code));
	w_ch(w, sep);
	w_put(w, "HL70357", 7);
}

/* 2.5+: ERR-2 location (ERL), ERR-3 code (CWE), ERR-4 severity, ERR-8 text. */
static void write_err_25(struct writer *w, const struct hl7_delims *d,
			 const struct hl7_ack_params *p)
{
	const struct hl7_path *loc = p->err_where;

	w_ch(w, d->field); /* ERR-1 is for older versions */
	if (loc && loc->seg[0]) {
		uint32_t parts[5] = { loc->seg_n ? loc->seg_n : 1, loc->field,
				      loc->field ? (loc->rep ? loc->rep : 1) : 0,
				      loc->comp, loc->comp ? loc->sub : 0 };
		w_put(w, loc->seg, strlen(loc->seg));
		for (size_t i = 0; i < 5 && parts[i]; i++) {
			w_ch(w, d->comp);
			w_num(w, parts[i]);
		}
	}
	w_ch(w, d->field);
	w_0357(w, d, d->comp, p->err_code);
	w_ch(w, d->field);
	w_ch(w, p->status == HL7_ACK_ACCEPT ? 'W' : 'E');
	if (p->reason && p->reason[0]) {
		for (int i = 5; i <= 8; i++)
			w_ch(w, d->field);
		w_text(w, d, p->reason);
	}
}

/* Before 2.5: ERR-1 = segment ^ sequence ^ field ^ code & text & table. */
static void write_err_old(struct writer *w, const struct hl7_delims *d,
			  const struct hl7_ack_params *p)
{
	const struct hl7_path *loc = p->err_where;

	if (loc && loc->seg[0]) {
		w_put(w, loc->seg, strlen(loc->seg));
		w_ch(w, d->comp);
		w_num(w, loc->seg_n ? loc->seg_n : 1);
		w_ch(w, d->comp);
		if (loc->field)
			w_num(w, loc->field);
	} else {
		w_ch(w, d->comp);
	}
	w_ch(w, d->comp);
	w_0357(w, d, d->sub, p->err_code);
}

ssize_t hl7_ack_build(const char *raw, size_t len, const struct hl7_msg *m,
		      const struct hl7_ack_params *p, char *out, size_t out_size,
		      char *errstr, size_t errstr_size)
{
	struct hl7_msg tmp;
	struct hl7_seg tmpseg;
	struct hl7_delims dflt;
	struct writer w = { out, out_size, 0, 0 };
	struct hl7_view f[19], msh2, trigger, ver;
	int have = 1;

	if (!p || !p->control_id || !p->timestamp || !out)
		return util_seterr(errstr, errstr_size, "ACK needs a control id and a timestamp");
	if (!m) {
		have = raw && salvage_msh(raw, len, &tmp, &tmpseg);
		m = have ? &tmp : NULL;
	}
	hl7_delims_read("MSH|^~\\&", 8, &dflt);
	/* Keep the original's delimiters so copied fields stay valid as they
	 * are; without an escape character our own text could not be carried,
	 * so fall back to the standard ones. */
	const struct hl7_delims *od = have ? &m->d : &dflt;
	int own = have && m->d.has_esc;
	const struct hl7_delims *d = own ? &m->d : &dflt;
	for (uint32_t i = 0; i < HB_ARRAY_LEN(f); i++) {
		f[i].ptr = "";
		f[i].len = 0;
		if (have)
			hl7_field(m, 0, i, &f[i]);
	}
	msh2 = own ? f[2] : (struct hl7_view){ "^~\\&", 4 };
	hl7_piece(f[9], od->rep, 1, &trigger); /* MSH-9.2 of the first repetition */
	hl7_piece(trigger, od->comp, 2, &trigger);
	hl7_piece(f[12], od->rep, 1, &ver);
	hl7_piece(ver, od->comp, 1, &ver);
	hl7_piece(f[18], od->rep, 1, &f[18]);
	struct hl7_view msh10 = f[10];
	for (uint32_t i = 3; i < HB_ARRAY_LEN(f); i++)
		f[i] = safe_copy(f[i], !own);
	trigger = safe_copy(trigger, !own);
	int v25 = ver.len ? version_at_least_25(ver) : 1;
	int enhanced = have && enhanced_mode(m);
	static const char codes[2][3][3] = { { "AA", "AE", "AR" }, { "CA", "CE", "CR" } };
	const char *code = codes[enhanced][p->status];

	/* MSH: sender and receiver swapped. */
	w_put(&w, "MSH", 3);
	w_ch(&w, d->field);
	w_put(&w, msh2.ptr, msh2.len);
	static const int swapped[] = { 5, 6, 3, 4 };
	for (size_t i = 0; i < HB_ARRAY_LEN(swapped); i++) {
		w_ch(&w, d->field);
		w_put(&w, f[swapped[i]].ptr, f[swapped[i]].len);
	}
	w_ch(&w, d->field);
	w_text(&w, d, p->timestamp);
	w_ch(&w, d->field); /* MSH-8 security */
	w_ch(&w, d->field);
	w_put(&w, "ACK", 3);
	if (trigger.len) {
		w_ch(&w, d->comp);
		w_put(&w, trigger.ptr, trigger.len);
		w_ch(&w, d->comp);
		w_put(&w, "ACK", 3);
	}
	w_ch(&w, d->field);
	w_text(&w, d, p->control_id);
	w_ch(&w, d->field);
	w_put(&w, f[11].ptr, f[11].len);
	w_ch(&w, d->field);
	if (f[12].len)
		w_put(&w, f[12].ptr, f[12].len);
	else
		w_text(&w, d, p->default_version ? p->default_version : ACK_DEFAULT_VERSION);
	/* Echo the charset only if it is a standard one: the ACK must parse
	 * and be readable by whoever reads it. */
	enum hl7_charset cs;
	char csname[40];
	if (f[18].len && hl7_charset_lookup(f[18], &cs, csname, sizeof csname) != 0)
		f[18].len = 0;
	if (f[18].len) {
		for (int i = 13; i <= 18; i++)
			w_ch(&w, d->field);
		w_put(&w, f[18].ptr, f[18].len);
	}
	w_ch(&w, '\r');

	/* MSA: code, the original control id, and (before 2.5) the text. */
	w_put(&w, "MSA", 3);
	w_ch(&w, d->field);
	w_put(&w, code, 2);
	w_ch(&w, d->field);
	w_control_id(&w, d, own, msh10);
	if (!v25 && p->reason && p->reason[0]) {
		w_ch(&w, d->field);
		w_text(&w, d, p->reason);
	}
	w_ch(&w, '\r');

	if (p->err_code) {
		w_put(&w, "ERR", 3);
		w_ch(&w, d->field);
		if (v25)
			write_err_25(&w, d, p);
		else
			write_err_old(&w, d, p);
		w_ch(&w, '\r');
	}

	if (w.overflow)
		return util_seterr(errstr, errstr_size,
				   "ACK output buffer too small (need %zu bytes)", w.n);
	return (ssize_t)w.n;
}

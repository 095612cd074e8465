/* hl7_escape — escape sequences and character sets. See hl7.h. */
#include "parse/hl7.h"

#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "parse/hl7_internal.h"

/* ---- charsets --------------------------------------------------------------- */

/* HL7 table 0211 names and what they mean to us. The ISO 2022 Japanese sets
 * are handled by iconv's stateful decoder; UTF-16/32 are absent on purpose:
 * ER7 delimiters are single bytes, so only ASCII-compatible charsets work. */
static const struct {
	const char *hl7;
	enum hl7_charset cs;
	const char *iconv;
} charsets[] = {
	{ "ASCII", HL7_CS_DEFAULT, "" },
	{ "ISO IR6", HL7_CS_DEFAULT, "" },
	{ "UNICODE UTF-8", HL7_CS_UTF8, "UTF-8" },
	{ "UTF-8", HL7_CS_UTF8, "UTF-8" },
	{ "8859/1", HL7_CS_LATIN1, "ISO-8859-1" },
	{ "ISO IR100", HL7_CS_LATIN1, "ISO-8859-1" },
	{ "ISO IR101", HL7_CS_ICONV, "ISO-8859-2" },
	{ "ISO IR109", HL7_CS_ICONV, "ISO-8859-3" },
	{ "ISO IR110", HL7_CS_ICONV, "ISO-8859-4" },
	{ "ISO IR144", HL7_CS_ICONV, "ISO-8859-5" },
	{ "ISO IR127", HL7_CS_ICONV, "ISO-8859-6" },
	{ "ISO IR126", HL7_CS_ICONV, "ISO-8859-7" },
	{ "ISO IR138", HL7_CS_ICONV, "ISO-8859-8" },
	{ "ISO IR148", HL7_CS_ICONV, "ISO-8859-9" },
	{ "ISO IR13", HL7_CS_ICONV, "SHIFT_JIS" }, /* JIS X 0201 katakana ⊂ Shift_JIS */
	{ "ISO IR14", HL7_CS_ICONV, "JIS_C6220-1969-RO" },
	{ "ISO IR87", HL7_CS_ICONV, "ISO-2022-JP" },
	{ "ISO IR159", HL7_CS_ICONV, "ISO-2022-JP-2" }, /* has JIS X 0212 */
	{ "JAS2020", HL7_CS_ICONV, "ISO-2022-JP" },
	{ "JIS X 0202", HL7_CS_ICONV, "ISO-2022-JP" },
	{ "BIG-5", HL7_CS_ICONV, "BIG5" },
	{ "CNS 11643-1992", HL7_CS_ICONV, "EUC-TW" },
	{ "GB 18030-2000", HL7_CS_ICONV, "GB18030" },
	{ "KS X 1001", HL7_CS_ICONV, "EUC-KR" },
};

const char *hl7_charset_name(size_t i)
{
	return i < sizeof charsets / sizeof charsets[0] ? charsets[i].hl7 : NULL;
}

int hl7_charset_lookup(struct hl7_view name, enum hl7_charset *cs,
		       char *iconv_name, size_t iconv_name_size)
{
	char buf[40];

	if (name.len == 0 || name.len >= sizeof buf || name.len >= iconv_name_size)
		return -1;
	for (size_t i = 0; i < name.len; i++) {
		char c = name.ptr[i];
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			 (c >= '0' && c <= '9') || strchr(" -_/.:", c);
		if (!ok || c == '\0')
			return -1;
	}
	memcpy(buf, name.ptr, name.len);
	buf[name.len] = '\0';
	for (size_t i = 0; i < sizeof charsets / sizeof charsets[0]; i++) {
		if (!strcasecmp(buf, charsets[i].hl7)) {
			*cs = charsets[i].cs;
			snprintf(iconv_name, iconv_name_size, "%s", charsets[i].iconv);
			return 0;
		}
	}
	if (!strncasecmp(buf, "UNICODE", 7))
		return -1; /* UCS-2, UTF-16, UTF-32: not byte-delimited */
	unsigned n;
	char tail;
	/* 8859/12 was never published. */
	if (sscanf(buf, "8859/%u%c", &n, &tail) == 1 && n >= 2 && n <= 16 && n != 12) {
		*cs = HL7_CS_ICONV;
		snprintf(iconv_name, iconv_name_size, "ISO-8859-%u", n);
		return 0;
	}
	/* Not an HL7 name: senders do write things like "WINDOWS-1252";
	 * let iconv decide when a value is first converted. */
	*cs = HL7_CS_ICONV;
	snprintf(iconv_name, iconv_name_size, "%s", buf);
	return 1;
}

int hl7_utf8_valid(const char *s, size_t len, size_t *bad_offset)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		uint32_t cp, min;
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1; cp = c & 0x1f; min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2; cp = c & 0x0f; min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3; cp = c & 0x07; min = 0x10000;
		} else {
			goto bad;
		}
		if (len - i <= n)
			goto bad;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			goto bad;
		i += n + 1;
	}
	return 1;
bad:
	if (bad_offset)
		*bad_offset = i;
	return 0;
}

/* ---- unescape ---------------------------------------------------------------- */

/* Where unescaped bytes (still in the message charset) go. Plain and UTF-8
 * text is written straight to the output and validated at the end; Latin-1
 * is widened on the fly; iconv charsets pass through a small chunk. */
struct sink {
	char *out;
	size_t cap;             /* out_size - 1, room for the NUL */
	size_t n;
	enum hl7_charset cs;
	iconv_t cd;
	char chunk[512];
	size_t clen;
	enum hl7_errcode err;
};

static int sink_flush(struct sink *k, int final)
{
	char *in = k->chunk, *out = k->out + k->n;
	size_t inleft = k->clen, outleft = k->cap - k->n;

	while (inleft > 0) {
		if (iconv(k->cd, &in, &inleft, &out, &outleft) != (size_t)-1)
			continue;
		if (errno == EINVAL && !final)
			break; /* incomplete sequence: keep it for the next chunk */
		k->err = errno == E2BIG ? HL7_E_NOSPACE : HL7_E_ENCODING;
		return -1;
	}
	if (final && iconv(k->cd, NULL, NULL, &out, &outleft) == (size_t)-1) {
		k->err = HL7_E_NOSPACE;
		return -1;
	}
	k->n = (size_t)(out - k->out);
	memmove(k->chunk, in, inleft);
	k->clen = inleft;
	return 0;
}

static int sink_put(struct sink *k, const char *p, size_t len)
{
	switch (k->cs) {
	case HL7_CS_DEFAULT:
	case HL7_CS_UTF8:
		if (len > k->cap - k->n)
			goto nospace;
		memcpy(k->out + k->n, p, len);
		k->n += len;
		return 0;
	case HL7_CS_LATIN1:
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)p[i];
			if (k->cap - k->n < 2 && (c >= 0x80 || k->cap == k->n))
				goto nospace;
			if (c < 0x80) {
				k->out[k->n++] = (char)c;
			} else {
				k->out[k->n++] = (char)(0xc0 | (c >> 6));
				k->out[k->n++] = (char)(0x80 | (c & 0x3f));
			}
		}
		return 0;
	case HL7_CS_ICONV:
		while (len > 0) {
			size_t take = sizeof k->chunk - k->clen;
			if (take > len)
				take = len;
			memcpy(k->chunk + k->clen, p, take);
			k->clen += take;
			p += take;
			len -= take;
			if (k->clen == sizeof k->chunk) {
				if (sink_flush(k, 0) < 0)
					return -1;
				if (k->clen == sizeof k->chunk) { /* no progress */
					k->err = HL7_E_ENCODING;
					return -1;
				}
			}
		}
		return 0;
	}
nospace:
	k->err = HL7_E_NOSPACE;
	return -1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* One escape sequence with body (b, blen) between the escape characters. */
static int put_escape(struct sink *k, const struct hl7_delims *d, const char *b,
		      size_t blen)
{
	if (blen == 1) {
		const char *c = NULL;
		switch (b[0]) {
		case 'F': c = &d->field; break;
		case 'S': c = &d->comp; break;
		case 'T': c = &d->sub; break;
		case 'R': c = &d->rep; break;
		case 'E': c = &d->esc; break;
		case 'P': c = d->has_trunc ? &d->trunc : NULL; break;
		case 'H': case 'N': return 0; /* highlighting: no text */
		}
		if (c)
			return sink_put(k, c, 1);
	} else if (blen == 3 && !memcmp(b, ".br", 3)) {
		return sink_put(k, "\n", 1);
	} else if (blen >= 3 && b[0] == 'X' && (blen - 1) % 2 == 0) {
		size_t i;
		for (i = 1; i < blen; i++)
			if (hexval(b[i]) < 0)
				break;
		if (i == blen) {
			for (i = 1; i < blen; i += 2) {
				char byte = (char)(hexval(b[i]) << 4 | hexval(b[i + 1]));
				if (sink_put(k, &byte, 1) < 0)
					return -1;
			}
			return 0;
		}
	}
	/* Unknown or malformed: keep it, delimiters and all. */
	if (sink_put(k, &d->esc, 1) < 0 || sink_put(k, b, blen) < 0)
		return -1;
	return sink_put(k, &d->esc, 1);
}

static int open_conv(struct hl7_msg *m, struct hl7_error *err, size_t off)
{
	if (m->cd) {
		/* Back to the initial shift state for a new value. */
		iconv((iconv_t)m->cd, NULL, NULL, NULL, NULL);
		return 0;
	}
	iconv_t cd = iconv_open("UTF-8", m->charset);
	if (cd == (iconv_t)-1) {
		hl7_seterr(err, HL7_E_CHARSET, off, "MSH-18: character set not supported");
		hl7_seterr_where(err, "MSH", 18);
		return -1;
	}
	m->cd = (void *)cd;
	return 0;
}

ssize_t hl7_unescape(struct hl7_msg *m, struct hl7_view v, char *out,
		     size_t out_size, struct hl7_error *err)
{
	struct sink k;
	const struct hl7_delims *d = &m->d;
	size_t off = v.ptr >= m->buf && v.ptr <= m->buf + m->len
			     ? (size_t)(v.ptr - m->buf) : 0;

	if (out_size == 0) {
		hl7_seterr(err, HL7_E_NOSPACE, off, "output buffer too small");
		return -1;
	}
	k.out = out;
	k.cap = out_size - 1;
	k.n = 0;
	k.cs = m->cs;
	k.clen = 0;
	k.err = HL7_OK;
	k.cd = (iconv_t)-1;
	if (k.cs == HL7_CS_ICONV) {
		if (open_conv(m, err, off) < 0)
			return -1;
		k.cd = (iconv_t)m->cd;
	}

	const char *p = v.ptr, *end = v.ptr + v.len;
	while (p < end) {
		const char *e = d->has_esc ? memchr(p, d->esc, (size_t)(end - p)) : NULL;
		if (!e) {
			if (sink_put(&k, p, (size_t)(end - p)) < 0)
				goto fail;
			break;
		}
		if (e > p && sink_put(&k, p, (size_t)(e - p)) < 0)
			goto fail;
		const char *close = memchr(e + 1, d->esc, (size_t)(end - e - 1));
		if (!close) {
			/* A lone escape character: literal, like the rest. */
			if (sink_put(&k, e, (size_t)(end - e)) < 0)
				goto fail;
			break;
		}
		if (put_escape(&k, d, e + 1, (size_t)(close - e - 1)) < 0)
			goto fail;
		p = close + 1;
	}
	if (k.cs == HL7_CS_ICONV && sink_flush(&k, 1) < 0)
		goto fail;
	if (k.cs == HL7_CS_DEFAULT || k.cs == HL7_CS_UTF8) {
		size_t bad;
		if (!hl7_utf8_valid(out, k.n, &bad)) {
			k.err = HL7_E_ENCODING;
			goto fail;
		}
	}
	out[k.n] = '\0';
	return (ssize_t)k.n;
fail:
	out[0] = '\0';
	if (k.err == HL7_E_NOSPACE)
		hl7_seterr(err, HL7_E_NOSPACE, off, "output buffer too small");
	else
		hl7_seterr(err, HL7_E_ENCODING, off,
			   "value at byte %zu is not valid in the message character set",
			   off);
	return -1;
}

/* ---- escape ------------------------------------------------------------------ */

ssize_t hl7_escape(const struct hl7_delims *d, const char *s, size_t len,
		   char *out, size_t out_size)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i], tmp[8];
		const char *rep = NULL;
		size_t rlen = 0;
		if (c == d->field) rep = "F";
		else if (c == d->comp) rep = "S";
		else if (c == d->sub) rep = "T";
		else if (c == d->rep) rep = "R";
		else if (d->has_esc && c == d->esc) rep = "E";
		else if (d->has_trunc && c == d->trunc) rep = "P";
		else if (c == '\n') rep = ".br";
		else if ((unsigned char)c < 0x20) {
			snprintf(tmp, sizeof tmp, "X%02X", (unsigned char)c);
			rep = tmp;
		}
		if (rep && !d->has_esc) {
			/* No escape character declared: nothing can carry it. */
			rep = NULL;
			c = ' ';
		}
		if (rep) {
			rlen = strlen(rep);
			if (out_size - n < rlen + 2 || n > out_size)
				return -1;
			out[n++] = d->esc;
			memcpy(out + n, rep, rlen);
			n += rlen;
			out[n++] = d->esc;
		} else {
			if (n >= out_size)
				return -1;
			out[n++] = c;
		}
	}
	return (ssize_t)n;
}

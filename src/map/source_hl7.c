/* source_hl7 — the mapping language's view of an HL7v2 message.
 *
 * Paths are the analyst's notation (parse/hl7.h): SEG[n]-F[r].C.S, plus two
 * forms for repeating fields:
 *   PID-3[where .5 = "MR"].1   the repetitions whose component 5 is MR
 *   PID-3[*].1                 every repetition
 *   RXE-2[codings].1           the codings of a coded element (CE/CWE/CNE):
 *                              components 1-3, 4-6 (alternate) and 10-12
 *                              (second alternate, 2.7+) of every repetition,
 *                              each seen as .1 code, .2 text, .3 system;
 *                              a coding without a code is left out
 * and, inside `each PID-3 { … }`, relative paths (.1, .4.2) into the current
 * repetition. Inside a header `each ORC`, a path sees the segments of its
 * group (the ORC and those after it up to the next ORC) and, for segments not
 * in the group, those before the first group (MSH, PID, PV1 …).
 */
#include "map/source_hl7.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Values a filter may test against, per path: `in` lists are short. */
#define HL7SRC_MAX_FILTER_VALUES 8

struct hl7src_path {
	struct hl7_path base;   /* absolute or relative */
	int all;                /* [*] */
	int codings;            /* [codings] */
	int filtered;           /* [where …] */
	struct hl7_path fpath;  /* the relative path the filter tests */
	int fnot;               /* != */
	char *fval[HL7SRC_MAX_FILTER_VALUES];
	size_t nfval;
	int has_post;
	struct hl7_path post;   /* relative path applied to the chosen repetitions */
};

static void p_free(void *vp)
{
	struct hl7src_path *p = vp;
	if (!p)
		return;
	for (size_t i = 0; i < p->nfval; i++)
		free(p->fval[i]);
	free(p);
}

static int seterr(struct map_srcerr *err, size_t column, const char *msg)
{
	err->column = column;
	snprintf(err->msg, sizeof(err->msg), "%s", msg);
	return -1;
}

/* Compile text[off, off+len) as an HL7 path (absolute or relative). */
static int compile_part(struct hl7_path *p, const char *text, size_t off, size_t len,
			struct map_srcerr *err)
{
	char buf[128];
	struct hl7_error he = { 0 };
	if (len == 0 || len >= sizeof(buf))
		return seterr(err, off + 1, len ? "path too long" : "empty path");
	memcpy(buf, text + off, len);
	buf[len] = '\0';
	if (hl7_path_compile(p, buf, &he) != 0) {
		/* the caret shows the column; keep the parser's words without it */
		const char *msg = he.msg[0] ? he.msg : "not an HL7 path (SEG-F.C.S)";
		if (strncmp(msg, "path column ", 12) == 0 && strstr(msg, ": "))
			msg = strstr(msg, ": ") + 2;
		return seterr(err, off + (he.column ? he.column : 1), msg);
	}
	return 0;
}

static size_t skip_ws(const char *s, size_t i, size_t n)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

/* `.5 = "MR"`, `.5 != "MR"`, `.5 in ("MR", "PI")` between off and end. */
static int compile_filter(struct hl7src_path *p, const char *s, size_t off, size_t end,
			  struct map_srcerr *err)
{
	size_t i = skip_ws(s, off, end), j = i;
	while (j < end && s[j] != ' ' && s[j] != '=' && s[j] != '!' && s[j] != '\t')
		j++;
	if (compile_part(&p->fpath, s, i, j - i, err))
		return -1;
	if (p->fpath.seg[0])
		return seterr(err, i + 1, "a filter tests a relative path like .5");
	i = skip_ws(s, j, end);
	int in = 0;
	if (i + 1 < end && s[i] == '!' && s[i + 1] == '=') {
		p->fnot = 1;
		i += 2;
	} else if (i < end && s[i] == '=') {
		i++;
	} else if (i + 1 < end && s[i] == 'i' && s[i + 1] == 'n') {
		in = 1;
		i = skip_ws(s, i + 2, end);
		if (i >= end || s[i] != '(')
			return seterr(err, i + 1, "expected '(' after 'in'");
		i++;
	} else {
		return seterr(err, i + 1, "expected =, != or in");
	}
	while (1) {
		i = skip_ws(s, i, end);
		if (i >= end || (s[i] != '"' && s[i] != '\''))
			return seterr(err, i + 1, "expected a quoted value");
		char q = s[i];
		size_t k = i + 1;
		while (k < end && s[k] != q)
			k++;
		if (k >= end)
			return seterr(err, i + 1, "unterminated string");
		if (p->nfval == HL7SRC_MAX_FILTER_VALUES)
			return seterr(err, i + 1, "too many values");
		if (!(p->fval[p->nfval] = strndup(s + i + 1, k - i - 1)))
			return seterr(err, i + 1, "out of memory");
		p->nfval++;
		i = skip_ws(s, k + 1, end);
		if (!in)
			break;
		if (i < end && s[i] == ',') {
			i++;
			continue;
		}
		if (i < end && s[i] == ')') {
			i = skip_ws(s, i + 1, end);
			break;
		}
		return seterr(err, i + 1, "expected ',' or ')'");
	}
	if (i != end)
		return seterr(err, i + 1, "unexpected text in the filter");
	return 0;
}

static void *p_compile(const char *text, size_t len, struct map_srcerr *err)
{
	struct hl7src_path *p = calloc(1, sizeof(*p));
	const char *br = NULL;
	if (!p) {
		seterr(err, 0, "out of memory");
		return NULL;
	}
	/* [where …] or [*] after the field: split there */
	for (size_t i = 0; i < len; i++)
		if (text[i] == '[' && (len - i >= 3 && (memcmp(text + i, "[*]", 3) == 0 ||
			(len - i >= 9 && memcmp(text + i, "[codings]", 9) == 0) ||
			(len - i > 7 && memcmp(text + i, "[where ", 7) == 0)))) {
			br = text + i;
			break;
		}
	size_t blen = br ? (size_t)(br - text) : len;
	if (compile_part(&p->base, text, 0, blen, err))
		goto fail;
	if (br) {
		size_t off = blen, close;
		if (p->base.field == 0 || p->base.comp || p->base.rep) {
			seterr(err, off + 1, "[where …], [*] and [codings] follow a field, as in PID-3[*].1");
			goto fail;
		}
		if (text[off + 1] == '*') {
			p->all = 1;
			close = off + 2;
		} else if (text[off + 1] == 'c') {
			p->codings = 1;
			close = off + 8;
		} else {
			int depth = 0;
			char q = 0;
			for (close = off; close < len; close++) {
				char c = text[close];
				if (q) {
					if (c == q)
						q = 0;
				} else if (c == '"' || c == '\'') {
					q = c;
				} else if (c == '[') {
					depth++;
				} else if (c == ']' && --depth == 0) {
					break;
				}
			}
			if (close >= len) {
				seterr(err, off + 1, "missing ']'");
				goto fail;
			}
			p->filtered = 1;
			if (compile_filter(p, text, off + 7, close, err))
				goto fail;
		}
		if (close + 1 < len) {
			if (compile_part(&p->post, text, close + 1, len - close - 1, err))
				goto fail;
			if (p->post.seg[0]) {
				seterr(err, close + 2, "expected .C or .C.S after ']'");
				goto fail;
			}
			p->has_post = 1;
		}
	}
	return p;
fail:
	p_free(p);
	return NULL;
}

static int p_is_relative(const void *vp)
{
	return ((const struct hl7src_path *)vp)->base.seg[0] == '\0';
}

static int p_can_group(const void *vp)
{
	const struct hl7src_path *p = vp;
	return p->base.seg[0] && p->base.field == 0 && !p->filtered && !p->all && !p->codings;
}

/* Unescape and convert v to UTF-8 in the arena, then add it. */
static int add_view(struct hl7src_scope *sc, struct hl7_view v, struct map_arena *a,
		    struct map_vals *out, const char *origin, char *errstr, size_t n)
{
	struct hl7_error he; /* hl7_seterr fills it all on failure */
	if (v.len == 0)
		return 0;
	size_t cap = HL7_UNESCAPE_BOUND(v.len);
	char *buf = map_arena_alloc(a, cap);
	if (!buf)
		return util_seterr(errstr, n, "out of scratch memory");
	ssize_t len = hl7_unescape(sc->m, v, buf, cap, &he);
	if (len < 0)
		return util_seterr(errstr, n, "%s", he.msg);
	return map_vals_add(a, out, buf, (size_t)len, origin) ? util_seterr(errstr, n,
		"out of scratch memory") : 0;
}

/* A relative path inside a coding of [codings]: .1 is the coding's first
 * component, which is component comp_off + 1 of the repetition. */
static struct hl7_path shifted(const struct hl7_path *p, uint32_t comp_off)
{
	struct hl7_path q = *p;
	if (q.comp)
		q.comp += comp_off;
	return q;
}

/* Does repetition rep pass the path's filter? */
static int passes(struct hl7src_scope *sc, const struct hl7src_path *p, struct hl7_view rep,
		  struct map_arena *a)
{
	struct hl7_view fv;
	struct hl7_error he; /* hl7_seterr fills it all on failure */
	if (!p->filtered)
		return 1;
	hl7_get_rel(sc->m, rep, &p->fpath, &fv);
	size_t cap = HL7_UNESCAPE_BOUND(fv.len);
	char *buf = map_arena_alloc(a, cap);
	ssize_t len = buf ? hl7_unescape(sc->m, fv, buf, cap, &he) : -1;
	int hit = 0;
	for (size_t i = 0; len >= 0 && i < p->nfval; i++)
		if (strlen(p->fval[i]) == (size_t)len && memcmp(p->fval[i], buf, (size_t)len) == 0)
			hit = 1;
	return p->fnot ? !hit : hit;
}

/* The whole field (all repetitions) of an absolute path in scope. */
static int field_in_scope(struct hl7src_scope *sc, const struct hl7_path *p, struct hl7_view *f)
{
	if (hl7_get_field_in(sc->m, p, sc->from, sc->to, f) > 0)
		return 1;
	/* a segment outside the group: look before the first group */
	if (sc->grouped && hl7_seg_find(sc->m, p->seg, 1, sc->from, sc->to) < 0)
		return hl7_get_field_in(sc->m, p, 0, sc->prefix_end, f) > 0;
	return 0;
}

/* The component offsets of the codings of a coded element: primary,
 * alternate, second alternate (CWE-10..12 since 2.7). */
static const uint32_t coding_off[] = { 0, 3, 9 };

/* Call fn for each chosen repetition of an [*] / [where] path, or for each
 * coding (repetition and component offset) of a [codings] path. */
static int for_reps(struct hl7src_scope *sc, const struct hl7src_path *p, struct map_arena *a,
		    int (*fn)(struct hl7src_scope *, struct hl7_view, uint32_t, void *), void *arg)
{
	struct hl7_view field, rep;
	struct hl7_iter it;
	if (!field_in_scope(sc, &p->base, &field))
		return 0;
	hl7_iter_init(&it, field, sc->m->d.rep);
	while (hl7_iter_next(&it, &rep)) {
		if (!passes(sc, p, rep, a))
			continue;
		for (size_t k = 0; k < (p->codings ? HB_ARRAY_LEN(coding_off) : 1); k++) {
			uint32_t off = p->codings ? coding_off[k] : 0;
			if (p->codings) {
				/* a coding without a code is not a coding */
				struct hl7_view v;
				struct hl7_path cp = { "", 0, 0, 0, off + 1, 0 };
				if (hl7_get_rel(sc->m, rep, &cp, &v) <= 0)
					continue;
			}
			int rc = fn(sc, rep, off, arg);
			if (rc)
				return rc;
		}
	}
	return 0;
}

struct eval_arg {
	const struct hl7src_path *p;
	struct map_arena *a;
	struct map_vals *out;
	const char *origin;
	char *errstr;
	size_t n;
};

static int eval_rep(struct hl7src_scope *sc, struct hl7_view rep, uint32_t off, void *varg)
{
	struct eval_arg *ea = varg;
	struct hl7_view v = rep;
	if (ea->p->has_post) {
		struct hl7_path q = shifted(&ea->p->post, off);
		hl7_get_rel(sc->m, rep, &q, &v);
	}
	return add_view(sc, v, ea->a, ea->out, ea->origin, ea->errstr, ea->n) ? -1 : 0;
}

static int p_eval(void *scope, const void *vp, struct map_arena *a, struct map_vals *out,
		  char *errstr, size_t n)
{
	struct hl7src_scope *sc = scope;
	const struct hl7src_path *p = vp;
	struct hl7_view v = { NULL, 0 };
	/* the evaluator stamps the path text on the values; errors format it */
	const char *org = NULL;

	if (p->all || p->filtered || p->codings) {
		struct eval_arg ea = { .p = p, .a = a, .out = out, .origin = org, .errstr = errstr, .n = n };
		return for_reps(sc, p, a, eval_rep, &ea) < 0 ? -1 : 0;
	}
	if (p->base.seg[0] == '\0') {
		if (!sc->has_rep) {
			char origin[64];
			hl7_path_format(&p->base, origin, sizeof(origin));
			return util_seterr(errstr, n, "relative path %s outside a field's each-block",
					   origin);
		}
		struct hl7_path q = shifted(&p->base, sc->comp_off);
		hl7_get_rel(sc->m, sc->rep, &q, &v);
	} else if (hl7_get_in(sc->m, &p->base, sc->from, sc->to, &v) <= 0 && sc->grouped &&
		   hl7_seg_find(sc->m, p->base.seg, 1, sc->from, sc->to) < 0) {
		hl7_get_in(sc->m, &p->base, 0, sc->prefix_end, &v);
	}
	return add_view(sc, v, a, out, org, errstr, n);
}

struct each_arg {
	map_each_cb cb;
	void *arg;
	struct map_arena *a;
};

static int each_rep(struct hl7src_scope *sc, struct hl7_view rep, uint32_t off, void *varg)
{
	struct each_arg *ea = varg;
	struct hl7src_scope *sub = map_arena_alloc(ea->a, sizeof(*sub));
	if (!sub)
		return -1;
	*sub = *sc;
	sub->has_rep = 1;
	sub->rep = rep;
	sub->comp_off = off;
	return ea->cb(sub, ea->arg);
}

static int p_each(void *scope, const void *vp, struct map_arena *a, map_each_cb cb, void *arg,
		  char *errstr, size_t n)
{
	struct hl7src_scope *sc = scope;
	const struct hl7src_path *p = vp;

	if (p->base.seg[0] && p->base.field == 0) {
		/* segment groups: the segment and those after it up to the next one */
		size_t pos = sc->from, first, end, prefix = sc->grouped ? sc->prefix_end : 0;
		int seen = 0;
		while (hl7_group_next(sc->m, p->base.seg, &pos, &first, &end) && first < sc->to) {
			struct hl7src_scope *sub = map_arena_alloc(a, sizeof(*sub));
			if (!sub)
				return util_seterr(errstr, n, "out of scratch memory");
			if (!seen && !sc->grouped)
				prefix = first;
			seen = 1;
			*sub = *sc;
			sub->from = first;
			sub->to = end < sc->to ? end : sc->to;
			sub->grouped = 1;
			sub->prefix_end = prefix;
			sub->has_rep = 0;
			int rc = cb(sub, arg);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (p->base.seg[0] == '\0')
		return util_seterr(errstr, n, "each over a relative path is not supported");
	struct each_arg ea = { cb, arg, a };
	if (!p->all && !p->filtered && !p->codings) {
		/* each PID-3: every repetition */
		struct hl7src_path all = *p;
		all.all = 1;
		return for_reps(sc, &all, a, each_rep, &ea);
	}
	return for_reps(sc, p, a, each_rep, &ea);
}

const struct map_source_ops map_source_hl7 = {
	.name = "hl7v2",
	.compile = p_compile,
	.free = p_free,
	.is_relative = p_is_relative,
	.can_group = p_can_group,
	.eval = p_eval,
	.each = p_each,
};

void hl7src_scope_init(struct hl7src_scope *sc, struct hl7_msg *m)
{
	memset(sc, 0, sizeof(*sc));
	sc->m = m;
	sc->from = 0;
	sc->to = m->nsegs;
}

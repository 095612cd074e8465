/* input — sniff the format, split into messages, hand each over. */
#include "map/input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "ingest/mllp.h"
#include "map/source_fhir.h"
#include "map/source_hl7.h"
#include "parse/fhir.h"
#include "util.h"

/* Feed the message's canonical form to the hash: every segment (CR, LF and
 * CRLF all end one; empty lines are dropped) followed by one CR. Bytes that
 * are already canonical (CR after every segment) are fed unchanged, so their
 * keys stay what they were before line endings were normalised. */
static void hash_canonical(EVP_MD_CTX *ctx, const char *raw, size_t len)
{
	/* Runs already canonical (segments each ended by one CR) are hashed as
	 * they are; other segments are copied with their CR into buf. A digest
	 * update costs more than a copy: a call per segment would double the
	 * cost of a key. */
	char buf[4096];
	size_t nbuf = 0, i = 0, run = 0; /* raw[run..i) is canonical and not yet hashed */
	size_t cr = 0, lf = 0;           /* the next CR and LF at or after i (len: none) */
	int have_cr = 0, have_lf = 0;
	while (i < len) {
		if (!have_cr || cr < i) {
			const char *q = memchr(raw + i, '\r', len - i);
			cr = q ? (size_t)(q - raw) : len;
			have_cr = 1;
		}
		if (!have_lf || lf < i) {
			const char *q = memchr(raw + i, '\n', len - i);
			lf = q ? (size_t)(q - raw) : len;
			have_lf = 1;
		}
		size_t j = cr < lf ? cr : lf;
		size_t k = j;
		while (k < len && (raw[k] == '\r' || raw[k] == '\n'))
			k++;
		if (j > i && k == j + 1 && raw[j] == '\r') {
			i = k; /* "segment CR": canonical, extends the run */
			continue;
		}
		/* flush the run, then this segment (if not empty) with one CR */
		if (i > run) {
			if (nbuf) {
				EVP_DigestUpdate(ctx, buf, nbuf);
				nbuf = 0;
			}
			EVP_DigestUpdate(ctx, raw + run, i - run);
		}
		if (j > i) {
			if (nbuf + (j - i) + 1 > sizeof buf) {
				EVP_DigestUpdate(ctx, buf, nbuf);
				nbuf = 0;
			}
			if ((j - i) + 1 > sizeof buf) {
				static const char cr_byte = '\r';
				EVP_DigestUpdate(ctx, raw + i, j - i);
				EVP_DigestUpdate(ctx, &cr_byte, 1);
			} else {
				memcpy(buf + nbuf, raw + i, j - i);
				nbuf += j - i;
				buf[nbuf++] = '\r';
			}
		}
		i = run = k;
	}
	if (i > run) {
		if (nbuf) {
			EVP_DigestUpdate(ctx, buf, nbuf);
			nbuf = 0;
		}
		EVP_DigestUpdate(ctx, raw + run, i - run);
	}
	if (nbuf)
		EVP_DigestUpdate(ctx, buf, nbuf);
}

void map_input_hl7_key(const struct hl7_msg *m, const char *raw, size_t len,
		       uint8_t key[LEDGER_KEY_LEN])
{
	struct hl7_view msh3, msh4, msh10;
	char sender[512];
	int sl;
	const uint8_t sep = 0x1f;
	unsigned int outlen = 0;
	hl7_field(m, 0, 3, &msh3);
	hl7_field(m, 0, 4, &msh4);
	hl7_field(m, 0, 10, &msh10);
	sl = snprintf(sender, sizeof sender, "%.*s^%.*s", (int)msh3.len, msh3.ptr, (int)msh4.len,
		      msh4.ptr);
	/* ledger_hash's layout (parts joined by 0x1f), the message canonical */
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, digest_sha256(), NULL);
	EVP_DigestUpdate(ctx, sender, (size_t)sl < sizeof sender ? (size_t)sl : sizeof sender - 1);
	EVP_DigestUpdate(ctx, &sep, 1);
	EVP_DigestUpdate(ctx, msh10.ptr, msh10.len);
	EVP_DigestUpdate(ctx, &sep, 1);
	hash_canonical(ctx, raw, len);
	EVP_DigestFinal_ex(ctx, key, &outlen);
	EVP_MD_CTX_free(ctx);
}

struct split {
	const char *name;
	const char *base; /* start of the whole input, for offsets */
	int64_t now_ms;
	map_item_cb cb;
	void *opaque;
	struct hl7_seg *segs;
	size_t index;
	const struct map_input_shard *shard; /* NULL: every message */
};

/* Whether message `index` is another shard's: then it is counted, not read. */
static int other_shard(const struct split *s, size_t index)
{
	const struct map_input_shard *sh = s->shard;
	return sh && sh->of > 1 && (index / sh->slice) % sh->of != sh->mine;
}

/* One HL7 message (from a batch or an MLLP frame) at `offset`. */
static int hl7_one(struct split *s, const char *msg, size_t len, size_t offset)
{
	struct hl7_msg m;
	struct hl7_error he; /* hl7_seterr fills it all on failure */
	struct map_item it;
	char label[256], id[64] = "";
	int rc;

	if (other_shard(s, s->index)) {
		s->index++;
		return 0;
	}
	memset(&it, 0, sizeof it);
	it.index = s->index++;
	it.offset = offset;
	it.raw = msg;
	it.raw_len = len;
	it.content_type = "application/hl7-v2";
	it.label = label;
	if (hl7_parse(&m, msg, len, s->segs, HL7_DEFAULT_MAX_SEGMENTS, NULL, &he) != 0) {
		char why[256];
		snprintf(label, sizeof label, "%s message %zu at byte %zu", s->name, it.index + 1, offset);
		snprintf(why, sizeof why, "%s (%s)", he.msg, hl7_errcode_name(he.code));
		it.err_code = hl7_err_0357(he.code);
		it.error = why;
		return s->cb(&it, s->opaque);
	}
	struct hl7_view msh10;
	hl7_field(&m, 0, 10, &msh10);
	snprintf(id, sizeof id, "%.*s", (int)(msh10.len < 63 ? msh10.len : 63), msh10.ptr);
	snprintf(label, sizeof label, "%s message %zu (MSH-10 %s)", s->name, it.index + 1, id);
	uint8_t key[LEDGER_KEY_LEN];
	map_input_hl7_key(&m, msg, len, key);
	struct hl7src_scope sc;
	hl7src_scope_init(&sc, &m);
	struct map_input in = { .ops = &map_source_hl7, .scope = &sc, .ledger_key = key,
				.ledger_key_len = sizeof key, .message_id = id, .now_ms = s->now_ms };
	it.in = &in;
	rc = s->cb(&it, s->opaque);
	hl7_msg_clear(&m);
	return rc;
}

static int hl7_each(struct split *s, const char *buf, size_t len, char *errstr, size_t n)
{
	struct hl7_batch b;
	struct hl7_batch_item bi;
	struct hl7_error he = { 0 };
	int rc = 0, got;

	hl7_batch_init(&b, buf, len);
	while ((got = hl7_batch_next(&b, &bi, &he)) == 1) {
		rc = hl7_one(s, bi.msg.ptr, bi.msg.len, (size_t)(buf - s->base) + bi.offset);
		if (rc)
			return rc;
	}
	if (got < 0)
		return util_seterr(errstr, n, "%s: batch envelope at byte %zu: %s", s->name,
				   (size_t)(buf - s->base) + he.offset, he.msg);
	return 0;
}

static int mllp_each(struct split *s, const char *buf, size_t len, char *errstr, size_t n)
{
	struct mllp_decoder d;
	size_t pos = 0, start = 0;
	int rc = 0;

	mllp_decoder_init(&d, len + 1);
	while (pos < len && rc == 0) {
		const unsigned char *frame;
		size_t used, flen;
		char err[160];
		int r = mllp_decoder_feed(&d, buf + pos, len - pos, &used, &frame, &flen, err, sizeof err);
		if (r < 0) {
			rc = util_seterr(errstr, n, "%s: MLLP framing at byte %zu: %s", s->name, pos, err);
			break;
		}
		pos += used;
		if (r == 1 && mllp_frame_kind(frame, flen) == MLLP_FRAME_MESSAGE)
			rc = hl7_one(s, (const char *)frame, flen, start + 1);
		if (r == 1)
			start = pos;
	}
	if (rc == 0 && mllp_decoder_pending(&d))
		rc = util_seterr(errstr, n, "%s: MLLP frame at byte %zu is not closed", s->name, start);
	mllp_decoder_clear(&d);
	return rc;
}

/* Bundles inside Bundles (a searchset in a batch-response) are opened up to
 * this depth; a deeper one is reported, not followed. */
#define MAP_MAX_NESTED_BUNDLES 4

/* The entries of a Bundle, each matched on its own with resolve() looking in
 * this Bundle and %entry naming the entry. An entry without a resource (a
 * DELETE or GET request, a transaction-response status: R4 bdl-5 allows
 * them) carries nothing to map and is skipped; an entry that is itself a
 * Bundle is opened. `where` names the entry's position ("entry 3.2"). */
static int bundle_each(struct split *s, json_t *bundle, const char *raw, size_t raw_len,
		       size_t offset, size_t line, const char *where, int depth)
{
	char label[256];
	uint8_t key[LEDGER_KEY_LEN];
	fhir_bundle_iter_t bit;
	fhir_entry_t e;
	fhir_error_t fe = { 0 };
	struct map_item it;
	int got, rc = 0;

	memset(&it, 0, sizeof it);
	it.offset = offset;
	it.line = line;
	it.content_type = "application/fhir+json";
	it.label = label;
	if (depth > MAP_MAX_NESTED_BUNDLES || fhir_bundle_iter_init(&bit, bundle, &fe) != 0) {
		it.index = s->index++;
		it.raw = raw;
		it.raw_len = raw_len;
		it.err_code = 102;
		it.error = depth > MAP_MAX_NESTED_BUNDLES ? "Bundles nested too deep" : fe.text;
		if (depth)
			snprintf(label, sizeof label, "%s %s (Bundle)", s->name, where);
		else
			snprintf(label, sizeof label, "%s resource %zu (Bundle)", s->name,
				 it.index + 1);
		return s->cb(&it, s->opaque);
	}
	while ((got = fhir_bundle_next(&bit, &e, &fe)) != 0) {
		char here[96];
		snprintf(here, sizeof here, "%s%s%zu", where, depth ? "." : " ", e.index + 1);
		if (got > 0 && !e.resource)
			continue; /* request or response only: nothing to map */
		if (got > 0 && strcmp(fhir_resource_type(e.resource), "Bundle") == 0) {
			char *dump = json_dumps(e.resource, JSON_COMPACT | JSON_SORT_KEYS);
			rc = bundle_each(s, e.resource, dump ? dump : "", dump ? strlen(dump) : 0,
					 offset, line, here, depth + 1);
			free(dump);
			if (rc)
				return rc;
			continue;
		}
		char *dump = got > 0 ? json_dumps(e.resource, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		it.index = s->index++;
		it.raw = dump ? dump : "";
		it.raw_len = dump ? strlen(dump) : 0;
		it.in = NULL;
		if (got < 0) {
			it.err_code = 102;
			it.error = fe.text;
			snprintf(label, sizeof label, "%s %s", s->name, here);
			rc = s->cb(&it, s->opaque);
		} else {
			const char *rid = json_string_value(json_object_get(e.resource, "id"));
			const void *parts[1] = { it.raw };
			size_t lens[1] = { it.raw_len };
			ledger_hash(key, 1, parts, lens);
			struct fhirsrc_scope sc;
			fhirsrc_scope_init(&sc, e.resource, bundle);
			sc.ctx.entry = e.entry;
			snprintf(label, sizeof label, "%s %s (%s/%s)", s->name, here,
				 fhir_resource_type(e.resource), rid ? rid : "-");
			/* lineage: the id, else the entry's fullUrl (urn:uuid:…) */
			struct map_input in = { .ops = &map_source_fhir, .scope = &sc,
						.ledger_key = key, .ledger_key_len = sizeof key,
						.message_id = rid ? rid : e.full_url,
						.now_ms = s->now_ms };
			it.in = &in;
			rc = s->cb(&it, s->opaque);
		}
		free(dump);
		if (rc)
			return rc;
	}
	return 0;
}

/* One FHIR resource read from (raw, raw_len); a Bundle is taken apart into
 * its entries (their raw bytes are each entry's resource as JSON). */
static int fhir_one(struct split *s, json_t *res, const char *raw, size_t raw_len,
		    const char *ctype, size_t offset, size_t line)
{
	char label[256];
	uint8_t key[LEDGER_KEY_LEN];
	const char *type = fhir_resource_type(res);
	struct map_item it;

	if (type && strcmp(type, "Bundle") == 0)
		return bundle_each(s, res, raw, raw_len, offset, line, "entry", 0);
	memset(&it, 0, sizeof it);
	it.offset = offset;
	it.line = line;
	it.content_type = ctype;
	it.label = label;
	const char *rid = json_string_value(json_object_get(res, "id"));
	/* the same key as ledger_hash over the canonical dump, without the dump */
	if (fhir_canonical_sha256(res, key) != 0) {
		char *dump = json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS);
		const void *parts[1] = { dump };
		size_t lens[1] = { dump ? strlen(dump) : 0 };
		ledger_hash(key, 1, parts, lens);
		free(dump);
	}
	struct fhirsrc_scope sc;
	fhirsrc_scope_init(&sc, res, NULL);
	it.index = s->index++;
	it.raw = raw;
	it.raw_len = raw_len;
	snprintf(label, sizeof label, "%s resource %zu (%s/%s)", s->name, it.index + 1,
		 type ? type : "?", rid ? rid : "-");
	struct map_input in = { .ops = &map_source_fhir, .scope = &sc, .ledger_key = key,
				.ledger_key_len = sizeof key, .message_id = rid, .now_ms = s->now_ms };
	it.in = &in;
	return s->cb(&it, s->opaque);
}

int map_input_fhir(const char *name, json_t *res, const char *raw, size_t raw_len,
		   const char *ctype, int64_t now_ms, map_item_cb cb, void *opaque)
{
	struct split s = { .name = name, .base = raw, .now_ms = now_ms, .cb = cb, .opaque = opaque };
	return fhir_one(&s, res, raw, raw_len, ctype, 0, 0);
}

/* NDJSON: more than one line that starts with '{' in its first column (a
 * pretty-printed resource indents its nested objects). */
static int is_ndjson(const char *buf, size_t len)
{
	int objs = 0;
	for (size_t i = 0; i < len && objs < 2;) {
		if (buf[i] == '{')
			objs++;
		const char *nl = memchr(buf + i, '\n', len - i);
		if (!nl)
			break;
		i = (size_t)(nl - buf) + 1;
	}
	return objs > 1;
}

static int ndjson_each(struct split *s, const char *buf, size_t len)
{
	fhir_ndjson_t nd;
	fhir_error_t fe = { 0 };
	json_t *res;
	size_t line;
	int got, rc = 0;

	fhir_ndjson_init(&nd, buf, len, NULL);
	for (;;) {
		size_t start = nd.pos;
		if (other_shard(s, s->index)) {
			/* sharded only without Bundles: one line, one message */
			if (!fhir_ndjson_skip(&nd))
				break;
			s->index++;
			continue;
		}
		got = fhir_ndjson_next(&nd, &res, &line, &fe);
		if (got == 0)
			break;
		/* this line's bytes: from where the iterator stood to its newline */
		while (start < len && (buf[start] == '\n' || buf[start] == '\r'))
			start++;
		const char *nl = memchr(buf + start, '\n', len - start);
		size_t llen = nl ? (size_t)(nl - (buf + start)) : len - start;
		size_t off = (size_t)(buf + start - s->base);
		if (got < 0) {
			struct map_item it;
			char label[256];
			memset(&it, 0, sizeof it);
			it.index = s->index++;
			it.offset = off;
			it.line = (size_t)fe.line;
			it.raw = buf + start;
			it.raw_len = llen;
			it.content_type = "application/fhir+json";
			it.err_code = 102;
			it.error = fe.text;
			it.label = label;
			snprintf(label, sizeof label, "%s line %d", s->name, fe.line);
			rc = s->cb(&it, s->opaque);
		} else {
			rc = fhir_one(s, res, buf + start, llen, "application/fhir+json", off, line);
			json_decref(res);
		}
		if (rc)
			return rc;
	}
	return 0;
}

enum format { F_UNKNOWN, F_MLLP, F_HL7, F_NDJSON, F_FHIR };

/* The input's format by its first bytes; *at gets where its content starts. */
static enum format sniff(const char *buf, size_t len, size_t *at)
{
	size_t i = 0;
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	/* Not isspace(): it counts <VT>, which starts an MLLP frame. */
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
		i++;
	*at = i;
	if (i < len && (unsigned char)buf[i] == MLLP_VT)
		return F_MLLP;
	if (len - i >= 3 && (memcmp(buf + i, "MSH", 3) == 0 || memcmp(buf + i, "FHS", 3) == 0 ||
			     memcmp(buf + i, "BHS", 3) == 0))
		return F_HL7;
	if (i < len && buf[i] == '{' && is_ndjson(buf + i, len - i))
		return F_NDJSON;
	if (i < len && (buf[i] == '{' || buf[i] == '<'))
		return F_FHIR;
	return F_UNKNOWN;
}

static int shardable(enum format fmt, const char *buf, size_t len)
{
	switch (fmt) {
	case F_MLLP:
	case F_HL7:
		return 1;
	case F_NDJSON:
		/* A Bundle line holds several messages, known only once read. A
		 * false alarm ("Bundle" in some text) only costs the sharding. */
		return memmem(buf, len, "Bundle", 6) == NULL;
	default:
		return 0;
	}
}

int map_input_shardable(const char *buf, size_t len)
{
	size_t at;
	return shardable(sniff(buf, len, &at), buf, len);
}

int map_input_is_hl7(const char *buf, size_t len)
{
	size_t at;
	enum format fmt = sniff(buf, len, &at);
	return fmt == F_HL7 || fmt == F_MLLP;
}

/* Where the last line of buf (trailing CR/LF left out) starts; *end gets
 * where it ends. */
static size_t last_line(const char *buf, size_t len, size_t *end)
{
	while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == '\n'))
		len--;
	*end = len;
	while (len > 0 && buf[len - 1] != '\r' && buf[len - 1] != '\n')
		len--;
	return len;
}

static int line_is(const char *buf, size_t at, size_t end, const char *id)
{
	return end - at >= 3 && memcmp(buf + at, id, 3) == 0;
}

/* The start of the last line beginning with MSH at or before `from` (the
 * start of a line), or floor when there is none. */
static size_t last_msh(const char *buf, size_t len, size_t from, size_t floor)
{
	size_t at = from;
	for (;;) {
		if (at + 3 <= len && memcmp(buf + at, "MSH", 3) == 0)
			return at;
		if (at <= floor)
			return floor;
		size_t p = at - 1; /* the terminator before this line */
		while (p > floor && buf[p - 1] != '\r' && buf[p - 1] != '\n')
			p--;
		at = p;
	}
}

size_t map_input_complete(const char *buf, size_t len, char *why, size_t n)
{
	size_t at, end, ls;
	enum format fmt = sniff(buf, len, &at);
	int terminated = len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == '\n');

	if (why && n)
		why[0] = '\0';
	if (fmt == F_HL7) {
		ls = last_line(buf + at, len - at, &end) + at;
		end += at;
		/* An enveloped batch ends with its trailer; without one, the file was
		 * cut, maybe at a segment boundary inside its last message. */
		const char *want = memcmp(buf + at, "FHS", 3) == 0 ? "FTS" :
				   memcmp(buf + at, "BHS", 3) == 0 ? "BTS" : NULL;
		int trailer = (line_is(buf, ls, end, "FTS") || line_is(buf, ls, end, "BTS")) &&
			      end - ls > 3 && at + 3 < len && buf[ls + 3] == buf[at + 3];
		if (want ? line_is(buf, ls, end, want) && trailer : terminated || trailer)
			return len;
		size_t cut = last_msh(buf, len, ls, at);
		if (want)
			util_seterr(why, n,
				    "the batch ends without its %s trailer: its last message (at byte %zu) "
				    "may be incomplete (cut off, e.g. by a full disk) and was not read",
				    want, cut);
		else
			util_seterr(why, n,
				    "the file ends inside a segment (no terminator): its last message (at "
				    "byte %zu) is incomplete (cut off, e.g. by a full disk) and was not read",
				    cut);
		return cut;
	}
	if (fmt == F_NDJSON && !terminated) {
		ls = last_line(buf, len, &end);
		json_t *j = json_loadb(buf + ls, end - ls, 0, NULL);
		int whole = j != NULL;
		json_decref(j);
		if (whole)
			return len;
		util_seterr(why, n,
			    "the last line (at byte %zu) is incomplete JSON without a line end (cut off, "
			    "e.g. by a full disk) and was not read",
			    ls);
		return ls;
	}
	/* MLLP dumps: an unclosed last frame is never delivered; a FHIR
	 * document that was cut does not parse. */
	return len;
}

int map_input_items_shard(const char *name, const char *buf, size_t len, int64_t now_ms,
			  const struct map_input_shard *shard, map_item_cb cb, void *opaque,
			  size_t *count, char *errstr, size_t n)
{
	struct split s = { .name = name, .base = buf, .now_ms = now_ms, .cb = cb, .opaque = opaque };
	size_t i;
	int rc;
	enum format fmt = sniff(buf, len, &i);

	if (count)
		*count = 0;
	if (shard && shard->of > 1) {
		if (shardable(fmt, buf, len))
			s.shard = shard;
		else if (shard->mine != 0)
			return 0; /* read whole by shard 0 alone */
	}
	switch (fmt) {
	case F_MLLP:
	case F_HL7:
		s.segs = malloc(HL7_DEFAULT_MAX_SEGMENTS * sizeof *s.segs);
		if (!s.segs)
			rc = util_seterr(errstr, n, "out of memory");
		else if (fmt == F_MLLP)
			rc = mllp_each(&s, buf + i, len - i, errstr, n);
		else
			rc = hl7_each(&s, buf + i, len - i, errstr, n);
		free(s.segs);
		break;
	case F_NDJSON:
		rc = ndjson_each(&s, buf + i, len - i);
		break;
	case F_FHIR: {
		fhir_error_t fe = { 0 };
		json_t *res = fhir_read(buf + i, len - i, NULL, &fe);
		if (!res) {
			rc = util_seterr(errstr, n, "%s:%d:%d: %s", name, fe.line, fe.column, fe.text);
			break;
		}
		rc = fhir_one(&s, res, buf + i, len - i,
			      buf[i] == '<' ? "application/fhir+xml" : "application/fhir+json", i, 0);
		json_decref(res);
		break;
	}
	default:
		rc = util_seterr(errstr, n,
				 "%s: not HL7v2 (MSH, FHS, BHS, MLLP frames) and not FHIR (JSON or XML)",
				 name);
		break;
	}
	if (count)
		*count = s.index;
	return rc;
}

static int count_none(const struct map_item *it, void *opaque)
{
	(void)it;
	(void)opaque;
	return 0;
}

ssize_t map_input_count(const char *buf, size_t len)
{
	/* a shard that owns no slice: every message is counted, none read */
	const struct map_input_shard none = { 1, 2, 2 };
	size_t count = 0;
	char err[256];
	if (!map_input_shardable(buf, len))
		return -1;
	map_input_items_shard("", buf, len, 0, &none, count_none, NULL, &count, err, sizeof err);
	return (ssize_t)count;
}

int map_input_items(const char *name, const char *buf, size_t len, int64_t now_ms,
		    map_item_cb cb, void *opaque, char *errstr, size_t n)
{
	return map_input_items_shard(name, buf, len, now_ms, NULL, cb, opaque, NULL, errstr, n);
}

struct each {
	map_input_cb cb;
	void *opaque;
	char *errstr;
	size_t n;
};

static int each_item(const struct map_item *it, void *opaque)
{
	struct each *e = opaque;
	if (!it->in) {
		util_seterr(e->errstr, e->n, "%s: %s", it->label, it->error);
		return -1;
	}
	return e->cb(it->in, it->label, e->opaque);
}

int map_input_each(const char *name, const char *buf, size_t len, int64_t now_ms,
		   map_input_cb cb, void *opaque, char *errstr, size_t n)
{
	struct each e = { cb, opaque, errstr, n };
	return map_input_items(name, buf, len, now_ms, each_item, &e, errstr, n);
}

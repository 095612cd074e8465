/* input — tools' input reader: sniff the format, split, hand over. */
#include "map/input.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map/source_fhir.h"
#include "ingest/mllp.h"
#include "map/source_hl7.h"
#include "parse/fhir.h"
#include "parse/hl7.h"
#include "publish/ledger.h"
#include "util.h"

static int hl7_each(const char *name, const char *buf, size_t len, int64_t now_ms,
		    map_input_cb cb, void *opaque, char *errstr, size_t n)
{
	struct hl7_batch b;
	struct hl7_batch_item it;
	struct hl7_error he = { 0 };
	struct hl7_seg *segs = malloc(HL7_DEFAULT_MAX_SEGMENTS * sizeof(*segs));
	int rc = 0, got;

	if (!segs)
		return util_seterr(errstr, n, "out of memory");
	hl7_batch_init(&b, buf, len);
	while ((got = hl7_batch_next(&b, &it, &he)) == 1) {
		struct hl7_msg m;
		struct hl7src_scope sc;
		struct hl7_view msh3, msh4, msh10;
		char label[256], id[64] = "";
		uint8_t key[LEDGER_KEY_LEN];

		if (hl7_parse(&m, it.msg.ptr, it.msg.len, segs, HL7_DEFAULT_MAX_SEGMENTS, NULL,
			      &he) != 0) {
			snprintf(label, sizeof(label), "%s message %zu at byte %zu: %s (%s)", name,
				 it.index + 1, it.offset + he.offset, he.msg,
				 hl7_errcode_name(he.code));
			if ((rc = cb(NULL, label, opaque)))
				break;
			continue;
		}
		hl7_field(&m, 0, 3, &msh3);
		hl7_field(&m, 0, 4, &msh4);
		hl7_field(&m, 0, 10, &msh10);
		snprintf(id, sizeof(id), "%.*s", (int)(msh10.len < 63 ? msh10.len : 63), msh10.ptr);
		snprintf(label, sizeof(label), "%s message %zu (MSH-10 %s)", name, it.index + 1, id);
		/* the ledger key: sender MSH-3^MSH-4 | MSH-10 | body */
		char sender[512];
		int sl = snprintf(sender, sizeof(sender), "%.*s^%.*s", (int)msh3.len, msh3.ptr,
				  (int)msh4.len, msh4.ptr);
		const void *parts[3] = { sender, msh10.ptr, it.msg.ptr };
		size_t lens[3] = { (size_t)sl < sizeof(sender) ? (size_t)sl : sizeof(sender) - 1,
				   msh10.len, it.msg.len };
		ledger_hash(key, 3, parts, lens);
		hl7src_scope_init(&sc, &m);
		struct map_input in = { .ops = &map_source_hl7, .scope = &sc, .ledger_key = key,
					.ledger_key_len = sizeof(key), .message_id = id,
					.now_ms = now_ms };
		rc = cb(&in, label, opaque);
		hl7_msg_clear(&m);
		if (rc)
			break;
	}
	if (got < 0 && rc == 0)
		rc = util_seterr(errstr, n, "%s: batch: %s", name, he.msg);
	free(segs);
	return rc;
}

/* One resource (or each entry of a Bundle). key_base tells resources apart. */
static int fhir_one(const char *name, json_t *res, size_t index, int64_t now_ms,
		    map_input_cb cb, void *opaque, char *errstr, size_t n)
{
	char label[256];
	uint8_t key[LEDGER_KEY_LEN];
	const char *type = fhir_resource_type(res);
	int rc = 0;

	if (type && strcmp(type, "Bundle") == 0) {
		fhir_bundle_iter_t it;
		fhir_entry_t e;
		fhir_error_t fe = { 0 };
		int got;
		if (fhir_bundle_iter_init(&it, res, &fe) != 0)
			return util_seterr(errstr, n, "%s: %s", name, fe.text);
		while ((got = fhir_bundle_next(&it, &e, &fe)) != 0) {
			if (got < 0) {
				snprintf(label, sizeof(label), "%s resource %zu: %s", name, index + 1,
					 fe.text);
				if ((rc = cb(NULL, label, opaque)))
					return rc;
				continue;
			}
			if (!e.resource || !fhir_resource_type(e.resource))
				continue;
			const char *rid = json_string_value(json_object_get(e.resource, "id"));
			char *dump = json_dumps(e.resource, JSON_COMPACT | JSON_SORT_KEYS);
			const void *parts[1] = { dump };
			size_t lens[1] = { dump ? strlen(dump) : 0 };
			ledger_hash(key, 1, parts, lens);
			free(dump);
			struct fhirsrc_scope sc;
			fhirsrc_scope_init(&sc, e.resource, res);
			snprintf(label, sizeof(label), "%s resource %zu entry %zu (%s/%s)", name,
				 index + 1, e.index + 1, fhir_resource_type(e.resource),
				 rid ? rid : "-");
			struct map_input in = { .ops = &map_source_fhir, .scope = &sc,
						.ledger_key = key, .ledger_key_len = sizeof(key),
						.message_id = rid, .now_ms = now_ms };
			if ((rc = cb(&in, label, opaque)))
				return rc;
		}
		return 0;
	}
	const char *rid = json_string_value(json_object_get(res, "id"));
	char *dump = json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS);
	const void *parts[1] = { dump };
	size_t lens[1] = { dump ? strlen(dump) : 0 };
	ledger_hash(key, 1, parts, lens);
	free(dump);
	struct fhirsrc_scope sc;
	fhirsrc_scope_init(&sc, res, NULL);
	snprintf(label, sizeof(label), "%s resource %zu (%s/%s)", name, index + 1,
		 type ? type : "?", rid ? rid : "-");
	struct map_input in = { .ops = &map_source_fhir, .scope = &sc, .ledger_key = key,
				.ledger_key_len = sizeof(key), .message_id = rid,
				.now_ms = now_ms };
	return cb(&in, label, opaque);
}

/* NDJSON: more than one line that starts with '{' in its first column (a
 * pretty-printed resource indents its nested objects). */
static int is_ndjson(const char *buf, size_t len)
{
	int objs = 0;
	for (size_t i = 0; i < len;) {
		if (buf[i] == '{')
			objs++;
		const char *nl = memchr(buf + i, '\n', len - i);
		if (!nl)
			break;
		i = (size_t)(nl - buf) + 1;
	}
	return objs > 1;
}

/* A capture of MLLP traffic (<VT> message <FS><CR> …): each frame's payload
 * is read as HL7v2. */
static int mllp_each(const char *name, const char *buf, size_t len, int64_t now_ms,
		     map_input_cb cb, void *opaque, char *errstr, size_t n)
{
	struct mllp_decoder d;
	int rc = 0;
	mllp_decoder_init(&d, HL7_MAX_MESSAGE_LEN);
	while (len > 0 && rc == 0) {
		size_t used;
		const unsigned char *frame;
		size_t flen;
		int got = mllp_decoder_feed(&d, buf, len, &used, &frame, &flen, errstr, n);
		buf += used;
		len -= used;
		if (got < 0) {
			rc = -1;
		} else if (got == 1 && mllp_frame_kind(frame, flen) == MLLP_FRAME_MESSAGE) {
			rc = hl7_each(name, (const char *)frame, flen, now_ms, cb, opaque, errstr, n);
		}
	}
	if (rc == 0 && mllp_decoder_pending(&d))
		rc = util_seterr(errstr, n, "%s: the last MLLP frame is not closed", name);
	mllp_decoder_clear(&d);
	return rc;
}

int map_input_each(const char *name, const char *buf, size_t len, int64_t now_ms,
		   map_input_cb cb, void *opaque, char *errstr, size_t n)
{
	if (len > 0 && buf[0] == 0x0b)
		return mllp_each(name, buf, len, now_ms, cb, opaque, errstr, n);
	size_t i = 0;
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	while (i < len && isspace((unsigned char)buf[i]))
		i++;
	if (len - i >= 3 && (memcmp(buf + i, "MSH", 3) == 0 || memcmp(buf + i, "FHS", 3) == 0 ||
			     memcmp(buf + i, "BHS", 3) == 0))
		return hl7_each(name, buf + i, len - i, now_ms, cb, opaque, errstr, n);
	if (i < len && (buf[i] == '{' || buf[i] == '<')) {
		fhir_error_t fe = { 0 };
		if (buf[i] == '{' && is_ndjson(buf + i, len - i)) {
			fhir_ndjson_t nd;
			json_t *res;
			size_t line;
			int got, rc = 0;
			fhir_ndjson_init(&nd, buf + i, len - i, NULL);
			for (size_t k = 0; (got = fhir_ndjson_next(&nd, &res, &line, &fe)) != 0; k++) {
				if (got < 0) {
					char label[256];
					snprintf(label, sizeof(label), "%s:%d: %s", name, fe.line,
						 fe.text);
					if ((rc = cb(NULL, label, opaque)))
						return rc;
					continue;
				}
				rc = fhir_one(name, res, k, now_ms, cb, opaque, errstr, n);
				json_decref(res);
				if (rc)
					return rc;
			}
			return 0;
		}
		json_t *res = fhir_read(buf + i, len - i, NULL, &fe);
		if (!res)
			return util_seterr(errstr, n, "%s:%d:%d: %s", name, fe.line, fe.column,
					   fe.text);
		int rc = fhir_one(name, res, 0, now_ms, cb, opaque, errstr, n);
		json_decref(res);
		return rc;
	}
	return util_seterr(errstr, n, "%s: not HL7v2 (MSH, FHS, BHS) and not FHIR (JSON or XML)",
			   name);
}

/* libFuzzer: parse + walk + unescape, paths, batches, escape round trip.
 * Invariants: no crash or over-read, unescaped output is always valid UTF-8
 * and fits HL7_UNESCAPE_BOUND, escape → unescape gives the text back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse/hl7.h"
#include "../unit/hl7_walk.h"

#define SEGS 512

static void check_message(const char *p, size_t len)
{
	static struct hl7_seg segs[SEGS];
	struct hl7_msg m;
	struct hl7_error err;
	struct hl7_parse_opts o = { .max_field_len = 4096 };

	if (hl7_parse(&m, p, len, segs, SEGS, &o, &err) < 0) {
		if (err.code == HL7_OK)
			abort();
		return;
	}
	size_t bad;
	hl7_walk(&m, &bad);
	if (bad)
		abort();
	hl7_msg_clear(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	char *copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	memcpy(copy, data, size);

	check_message(copy, size);

	/* Batch split; every piece goes through the parser too. */
	struct hl7_batch b;
	struct hl7_batch_item it;
	struct hl7_error err;
	size_t last = 0;
	hl7_batch_init(&b, copy, size);
	while (hl7_batch_next(&b, &it, &err) == 1) {
		if (it.offset < last || it.offset + it.msg.len > size)
			abort();
		last = it.offset + it.msg.len;
		check_message(it.msg.ptr, it.msg.len);
	}

	/* A path from the first bytes, evaluated on a fixed message. */
	static const char msg[] = "MSH|^~\\&|A|B|C|D|2024||ADT^A01|X|P|2.5\r"
				  "PID|1||A^^^H&x&y^MR~B||N\\S\\M^G\rOBX|1\rOBX|2|TX||v\r";
	static struct hl7_seg s2[8];
	struct hl7_msg m;
	if (hl7_parse(&m, msg, sizeof msg - 1, s2, 8, NULL, &err) < 0)
		abort();
	struct hl7_path path;
	struct hl7_view v;
	ssize_t n = hl7_path_parse(&path, copy, size < 40 ? size : 40, &err);
	if (n >= 0) {
		char out[HL7_UNESCAPE_BOUND(sizeof msg)];
		if (path.seg[0]) {
			hl7_get(&m, &path, &v);
			hl7_count_reps_in(&m, &path, 0, m.nsegs);
		} else {
			const char *r = strstr(msg, "A^^^H");
			struct hl7_view rep = { r, (size_t)(strchr(r, '~') - r) };
			hl7_get_rel(&m, rep, &path, &v);
		}
		if (hl7_unescape(&m, v, out, sizeof out, &err) < 0)
			abort();
		char fmt[64];
		hl7_path_format(&path, fmt, sizeof fmt);
	} else if (err.column == 0 || err.column > 41) {
		abort();
	}

	/* Escape then unescape: the text comes back if it was valid UTF-8. */
	size_t cap = size * 5 + 1;
	char *esc = malloc(cap), *back = malloc(HL7_UNESCAPE_BOUND(cap));
	if (!esc || !back)
		abort();
	ssize_t el = hl7_escape(&m.d, in, size, esc, cap);
	if (el < 0)
		abort();
	ssize_t bl = hl7_unescape(&m, (struct hl7_view){ esc, (size_t)el }, back,
				  HL7_UNESCAPE_BOUND(cap), &err);
	if (hl7_utf8_valid(in, size, NULL)) {
		if (bl != (ssize_t)size || memcmp(back, in, size))
			abort();
	} else if (bl >= 0) {
		abort();
	}
	free(esc);
	free(back);
	free(copy);
	return 0;
}

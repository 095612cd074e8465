/* libFuzzer: ACK round trip. Whatever the input — a message, a broken one,
 * noise — the ACK builds, parses back, carries our control id, answers the
 * original MSH-10 when there was a readable one, and the right MSA-1. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse/hl7.h"

#define SEGS 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hl7_seg segs[SEGS], asegs[8];
	struct hl7_msg m, a;
	struct hl7_error err;
	struct hl7_path where;
	char out[4096], es[128];

	if (size < 1)
		return 0;
	int sel = data[0];
	char *copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		abort();
	memcpy(copy, data + 1, size - 1);
	size--;
	int ok = hl7_parse(&m, copy, size, segs, SEGS, NULL, &err) == 0;
	hl7_path_compile(&where, "PID-3[2].4.1", &err);
	struct hl7_ack_params p = {
		.control_id = "CTRL|1^x", .timestamp = "20260101000000",
		.status = (enum hl7_ack_status)(sel % 3),
		.err_code = (sel / 3) % 2 ? 101 : 0,
		.err_where = (sel / 6) % 2 ? &where : NULL,
		.reason = (sel / 12) % 2 ? "reason with | and ^ and \\ and \n" : NULL,
	};
	ssize_t n = hl7_ack_build(copy, size, ok ? &m : NULL, &p, out, sizeof out, es, sizeof es);
	if (n < 0) {
		/* Only an oversized ACK may fail: copied fields are capped, so
		 * 4 KiB always suffices. */
		abort();
	}
	for (ssize_t i = 0; i < n; i++)
		if (out[i] == 0x0b || out[i] == 0x1c)
			abort(); /* would break MLLP framing */
	if (hl7_parse(&a, out, (size_t)n, asegs, 8, NULL, &err) < 0)
		abort();
	struct hl7_path pp;
	struct hl7_view v, orig;
	char un[64];
	hl7_path_compile(&pp, "MSH-10", &err);
	hl7_get(&a, &pp, &v);
	if (hl7_unescape(&a, v, un, sizeof un, &err) < 0 || strcmp(un, "CTRL|1^x"))
		abort();
	hl7_path_compile(&pp, "MSA-1", &err);
	hl7_get(&a, &pp, &v);
	if (v.len != 2 || v.ptr[1] != "AER"[p.status])
		abort();
	if (ok) {
		hl7_field(&m, 0, 10, &orig);
		/* Copied unless it could break the ACK (see safe_copy). */
		int printable = orig.len <= 199;
		for (size_t i = 0; i < orig.len; i++)
			if ((unsigned char)orig.ptr[i] < 0x20 || orig.ptr[i] == 0x7f ||
			    (!m.d.has_esc && strchr("|^~\\&", orig.ptr[i])))
				printable = 0;
		ssize_t msa = hl7_seg_find(&a, "MSA", 1, 0, a.nsegs);
		if (msa < 0)
			abort();
		hl7_field(&a, (size_t)msa, 2, &v);
		if (printable && (v.len != orig.len || memcmp(v.ptr, orig.ptr, v.len)))
			abort();
		hl7_msg_clear(&m);
	}
	hl7_msg_clear(&a);
	free(copy);
	return 0;
}

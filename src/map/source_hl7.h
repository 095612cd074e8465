/* source_hl7 — HL7v2 messages (parse/hl7.h) as a mapping source. */
#ifndef HB_MAP_SOURCE_HL7_H
#define HB_MAP_SOURCE_HL7_H

#include "map/source.h"
#include "parse/hl7.h"

extern const struct map_source_ops map_source_hl7;

/* A scope: the whole message, one segment group, or one repetition. */
struct hl7src_scope {
	struct hl7_msg *m;
	size_t from, to;        /* segment range */
	int grouped;            /* inside a header `each SEG` */
	size_t prefix_end;      /* segments before the first group stay visible */
	int has_rep;            /* inside `each SEG-F { … }` */
	struct hl7_view rep;
	uint32_t comp_off;      /* inside `each SEG-F[codings]`: the coding's first component - 1 */
};

/* The whole-message scope for map_input.scope. m must outlive the apply. */
void hl7src_scope_init(struct hl7src_scope *sc, struct hl7_msg *m);

#endif

/* hl7_walk — visit every subcomponent of a parsed message through the public
 * API, unescaping each. Shared by the unit tests (guard-page over-read test)
 * and the fuzz targets. Returns the number of values visited; *bad counts
 * unescape results that were not valid UTF-8 (must stay 0). */
#ifndef HB_TEST_HL7_WALK_H
#define HB_TEST_HL7_WALK_H

#include <stdlib.h>

#include "parse/hl7.h"

static inline size_t hl7_walk(struct hl7_msg *m, size_t *bad)
{
	size_t visited = 0;
	struct hl7_error err;

	*bad = 0;
	for (size_t s = 0; s < m->nsegs; s++) {
		for (uint32_t f = 1;; f++) {
			struct hl7_view field, rep, comp, sub;
			if (!hl7_field(m, s, f, &field))
				break;
			struct hl7_iter ri, ci, si;
			hl7_iter_init(&ri, field, m->d.rep);
			while (hl7_iter_next(&ri, &rep)) {
				hl7_iter_init(&ci, rep, m->d.comp);
				while (hl7_iter_next(&ci, &comp)) {
					hl7_iter_init(&si, comp, m->d.sub);
					while (hl7_iter_next(&si, &sub)) {
						size_t cap = HL7_UNESCAPE_BOUND(sub.len);
						char *out = malloc(cap);
						if (!out)
							abort();
						ssize_t n = hl7_unescape(m, sub, out, cap, &err);
						if (n >= 0 && !hl7_utf8_valid(out, (size_t)n, NULL))
							(*bad)++;
						if (n < 0 && err.code == HL7_E_NOSPACE)
							(*bad)++; /* the bound must always suffice */
						free(out);
						visited++;
					}
				}
			}
		}
	}
	return visited;
}

#endif

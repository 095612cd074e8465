/* Shared between the hl7*.c files; not part of the public API. */
#ifndef HB_HL7_INTERNAL_H
#define HB_HL7_INTERNAL_H

#include "parse/hl7.h"

void hl7_seterr(struct hl7_error *err, enum hl7_errcode code, size_t offset,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void hl7_seterr_where(struct hl7_error *err, const char *seg, uint32_t field);
/* MSH, FHS and BHS share the header layout (-1 separator, -2 encoding chars). */
int hl7_is_header_id(const char *id);

#endif

/* Helpers shared by the HL7 unit tests. */
#ifndef HB_TEST_HL7_FIXTURE_H
#define HB_TEST_HL7_FIXTURE_H

#include <stdlib.h>

static inline const char *fixture_root(void)
{
	const char *e = getenv("HB_SRCDIR");
	return e && *e ? e : HB_SRCDIR;
}

#endif

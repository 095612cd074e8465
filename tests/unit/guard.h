/* guard — place test input right before an unreadable page, so that any
 * read past the end of the input crashes the test instead of passing. */
#ifndef HB_TEST_GUARD_H
#define HB_TEST_GUARD_H

#include <stddef.h>

struct guard {
	void *map;
	size_t maplen;
};

/* Copy (data, len) so that its last byte is the last readable byte before a
 * PROT_NONE page. Returns the copy (NULL on failure); free with guard_free. */
char *guard_place(struct guard *g, const void *data, size_t len);
void guard_free(struct guard *g);

#endif

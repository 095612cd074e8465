#include "guard.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

char *guard_place(struct guard *g, const void *data, size_t len)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	size_t data_pages = (len + ps - 1) / ps;

	g->maplen = (data_pages + 1) * ps;
	g->map = mmap(NULL, g->maplen, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->map == MAP_FAILED) {
		g->map = NULL;
		return NULL;
	}
	char *guard_page = (char *)g->map + data_pages * ps;
	if (mprotect(guard_page, ps, PROT_NONE) != 0) {
		munmap(g->map, g->maplen);
		g->map = NULL;
		return NULL;
	}
	char *p = guard_page - len;
	if (len)
		memcpy(p, data, len);
	return p;
}

void guard_free(struct guard *g)
{
	if (g->map)
		munmap(g->map, g->maplen);
	g->map = NULL;
}

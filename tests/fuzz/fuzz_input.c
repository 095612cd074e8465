/* Fuzz the file splitter (format sniffing, HL7 batches, MLLP dumps, NDJSON,
 * FHIR documents) differentially: reading an input in three shards must
 * deliver exactly the messages of a whole read, each once, with the same
 * offsets, outcome and ledger keys. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "map/input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct got {
	size_t n, cap;
	struct one {
		size_t index, offset;
		int readable;
		uint8_t key[32];
	} *v;
};

static int collect(const struct map_item *it, void *opaque)
{
	struct got *g = opaque;
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 16;
		g->v = realloc(g->v, g->cap * sizeof *g->v);
		if (!g->v)
			abort();
	}
	struct one *o = &g->v[g->n++];
	memset(o, 0, sizeof *o);
	o->index = it->index;
	o->offset = it->offset;
	o->readable = it->in != NULL;
	if (it->in && it->in->ledger_key_len == sizeof o->key)
		memcpy(o->key, it->in->ledger_key, sizeof o->key);
	return 0;
}

static int by_index(const void *a, const void *b)
{
	const struct one *x = a, *y = b;
	return (x->index > y->index) - (x->index < y->index);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct got whole = { 0 }, parts = { 0 };
	size_t count = 0, c;
	char err[256];
	int rc = map_input_items_shard("fuzz", (const char *)data, size, 0, NULL, collect, &whole,
				       &count, err, sizeof err);
	for (unsigned i = 0; i < 3; i++) {
		struct map_input_shard sh = { 2, 3, i };
		int r = map_input_items_shard("fuzz", (const char *)data, size, 0, &sh, collect, &parts,
					      &c, err, sizeof err);
		if (map_input_shardable((const char *)data, size) && (r != rc || c != count))
			abort();
	}
	if (parts.n != whole.n)
		abort();
	if (parts.n)
		qsort(parts.v, parts.n, sizeof *parts.v, by_index);
	for (size_t k = 0; k < whole.n; k++)
		if (memcmp(&parts.v[k], &whole.v[k], sizeof whole.v[k]) != 0)
			abort();
	free(whole.v);
	free(parts.v);
	return 0;
}

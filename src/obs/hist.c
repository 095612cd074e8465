#include "obs/hist.h"

#include <string.h>

void hist_init(struct hist *h)
{
	for (int i = 0; i < HIST_BUCKETS; i++)
		atomic_init(&h->b[i], 0);
	atomic_init(&h->count, 0);
	atomic_init(&h->sum_us, 0);
	atomic_init(&h->max_us, 0);
}

/* Values below HIST_SUB get a bucket each; above, bucket = magnitude and the
 * next HIST_SUB_BITS bits below the top bit. */
static int index_of(uint64_t v)
{
	int mag, idx;
	if (v < HIST_SUB)
		return (int)v;
	mag = 63 - __builtin_clzll(v); /* >= HIST_SUB_BITS */
	idx = (mag - HIST_SUB_BITS + 1) * HIST_SUB + (int)((v >> (mag - HIST_SUB_BITS)) & (HIST_SUB - 1));
	return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* Largest value that falls into bucket idx. */
static uint64_t upper_of(int idx)
{
	int mag;
	uint64_t sub;
	if (idx < HIST_SUB)
		return (uint64_t)idx;
	mag = idx / HIST_SUB - 1 + HIST_SUB_BITS;
	sub = (uint64_t)(idx % HIST_SUB);
	return ((1ull << mag) | (sub << (mag - HIST_SUB_BITS))) + (1ull << (mag - HIST_SUB_BITS)) - 1;
}

void hist_record(struct hist *h, uint64_t us)
{
	uint64_t m = atomic_load_explicit(&h->max_us, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->b[index_of(us)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
	while (us > m && !atomic_compare_exchange_weak(&h->max_us, &m, us))
		;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t total = hist_count(h), seen = 0, rank;
	if (total == 0)
		return 0;
	rank = (uint64_t)(q * (double)total);
	if (rank >= total)
		rank = total - 1;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		seen += atomic_load_explicit(&((struct hist *)h)->b[i], memory_order_relaxed);
		if (seen > rank) {
			uint64_t up = upper_of(i), mx = hist_max_us(h);
			/* the last bucket also holds everything beyond its range */
			return up < mx && i < HIST_BUCKETS - 1 ? up : mx;
		}
	}
	return hist_max_us(h);
}

uint64_t hist_count_le(const struct hist *h, uint64_t us)
{
	uint64_t n = 0;
	for (int i = 0; i < HIST_BUCKETS && upper_of(i) <= us; i++)
		n += atomic_load_explicit(&((struct hist *)h)->b[i], memory_order_relaxed);
	return n;
}

uint64_t hist_count(const struct hist *h)
{
	return atomic_load(&((struct hist *)h)->count);
}

uint64_t hist_sum_us(const struct hist *h)
{
	return atomic_load(&((struct hist *)h)->sum_us);
}

uint64_t hist_max_us(const struct hist *h)
{
	return atomic_load(&((struct hist *)h)->max_us);
}

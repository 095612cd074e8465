/*
 * hist — a lock-free latency histogram (microseconds, ~3% resolution).
 *
 * Buckets are log-linear: each power of two is split into 32 linear
 * sub-buckets, covering 1 µs to ~19 hours (larger values share the last
 * bucket). Any thread may record; readers get
 * a consistent-enough snapshot for percentiles and Prometheus buckets.
 */
#ifndef HB_HIST_H
#define HB_HIST_H

#include <stdatomic.h>
#include <stdint.h>

#define HIST_SUB_BITS 5
#define HIST_SUB (1 << HIST_SUB_BITS)
#define HIST_MAGS 32
#define HIST_BUCKETS (HIST_MAGS * HIST_SUB)

struct hist {
	atomic_uint_fast64_t b[HIST_BUCKETS];
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum_us;
	atomic_uint_fast64_t max_us;
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t us);
/* Value at quantile q in [0,1] (upper edge of its bucket); 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);
/* Number of recorded values <= us (for cumulative Prometheus buckets). */
uint64_t hist_count_le(const struct hist *h, uint64_t us);
uint64_t hist_count(const struct hist *h);
uint64_t hist_sum_us(const struct hist *h);
uint64_t hist_max_us(const struct hist *h);

#endif

#include <criterion/criterion.h>

#include <stdlib.h>

#include "obs/hist.h"

static struct hist h;

Test(hist, exact_below_sub_range)
{
	hist_init(&h);
	for (uint64_t v = 0; v < 32; v++)
		hist_record(&h, v);
	cr_assert_eq(hist_count(&h), 32);
	cr_assert_eq(hist_quantile(&h, 0.0), 0);
	cr_assert_eq(hist_quantile(&h, 0.5), 16);
	cr_assert_eq(hist_quantile(&h, 1.0), 31);
	cr_assert_eq(hist_count_le(&h, 9), 10);
}

Test(hist, relative_error_is_small)
{
	hist_init(&h);
	/* 1..100000 uniformly: p50 ~ 50000, p99 ~ 99000 */
	for (uint64_t v = 1; v <= 100000; v++)
		hist_record(&h, v);
	double p50 = (double)hist_quantile(&h, 0.5), p99 = (double)hist_quantile(&h, 0.99);
	cr_assert(p50 >= 50000 && p50 <= 50000 * 1.04, "p50 %f", p50);
	cr_assert(p99 >= 99000 && p99 <= 99000 * 1.04, "p99 %f", p99);
	cr_assert_eq(hist_max_us(&h), 100000);
	cr_assert_eq(hist_quantile(&h, 1.0), 100000, "never above the max");
	cr_assert_eq(hist_sum_us(&h), 100000ull * 100001 / 2);
	/* cumulative counts are monotonic and end at the total */
	uint64_t prev = 0;
	for (uint64_t le = 1; le < 200000; le *= 2) {
		uint64_t c = hist_count_le(&h, le);
		cr_assert_geq(c, prev);
		prev = c;
	}
	cr_assert_eq(hist_count_le(&h, UINT64_MAX), 100000);
}

Test(hist, huge_values_land_in_the_last_bucket)
{
	hist_init(&h);
	hist_record(&h, UINT64_MAX / 2);
	cr_assert_eq(hist_count(&h), 1);
	cr_assert_eq(hist_quantile(&h, 0.5), UINT64_MAX / 2);
}

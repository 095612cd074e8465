/* Record size limits (issue 14 item 1): the estimate, the room per topic,
 * and dropping the records one message added to a job. */
#include <criterion/criterion.h>

#include <string.h>

#include "publish/pub.h"
#include "publish/reclimit.h"

Test(reclimit, room_is_the_smaller_of_producer_and_topic)
{
	struct reclimit_topic t[2] = { { "small", 65536 }, { "unknown", 0 } };
	struct reclimit rl = { .producer = 1000000, .configured = 1000000, .t = t, .n = 2 };
	cr_assert_eq(reclimit_room(&rl, "small"), 65536);
	cr_assert_eq(reclimit_room(&rl, "unknown"), 1000000);
	cr_assert_eq(reclimit_room(&rl, "not-configured"), 1000000);
	rl.producer = 1000;
	cr_assert_eq(reclimit_room(&rl, "small"), 1000);
}

Test(reclimit, estimate_counts_key_value_headers_and_framing)
{
	const char hdrs[] = "a\0bc\0de\0\0";
	size_t n = reclimit_record_size(3, 100, hdrs, 2);
	cr_assert_eq(n, RECLIMIT_OVERHEAD + 3 + 100 + (1 + 2 + RECLIMIT_HDR_OVERHEAD) +
				(2 + 0 + RECLIMIT_HDR_OVERHEAD));
	struct pub_hdr h[] = { { "a", "bc" }, { "de", "" }, { "skipped", NULL } };
	cr_assert_eq(pub_record_size(3, 100, h, 3), n);
}

Test(reclimit, truncate_drops_what_one_message_added)
{
	struct pub_job *j = pub_job_new(NULL, NULL);
	char big[5000];
	memset(big, 'x', sizeof big);
	cr_assert_eq(pub_job_add(j, "t1", "k", 1, "v1", 2, NULL, 0), 0);
	int n0 = pub_job_count(j);
	cr_assert_eq(pub_job_add(j, "t2", "k", 1, big, sizeof big, NULL, 0), 0);
	cr_assert_eq(pub_job_add(j, "t3", NULL, 0, "v3", 2, NULL, 0), 0);
	cr_assert_eq(pub_job_count(j), 3);
	pub_job_truncate(j, n0);
	cr_assert_eq(pub_job_count(j), 1);
	/* and it takes records again after the cut */
	cr_assert_eq(pub_job_add(j, "t4", "k", 1, "v4", 2, NULL, 0), 0);
	cr_assert_eq(pub_job_count(j), 2);
	pub_job_free(j);
}

/* fate — one decision for every input (MLLP, files, FHIR over HTTP). */
#include <criterion/criterion.h>

#include "fate.h"

static struct fate fd(int dl, enum map_unmatched_policy u, int readable, enum map_result r)
{
	struct fate_policy p = { dl, u };
	return fate_decide(&p, readable, r);
}

Test(fate, published)
{
	struct fate f = fd(1, MAP_UNMATCHED_REJECT, 1, MAP_OK);
	cr_assert_eq(f.kind, FATE_PUBLISH);
	cr_assert_eq(f.deadletter, 0);
	cr_assert_eq(f.count, FATE_COUNT_PUBLISHED);
}

Test(fate, unreadable_is_refused_and_dead_lettered_by_policy)
{
	struct fate f = fd(1, MAP_UNMATCHED_FILTER, 0, MAP_OK);
	cr_assert_eq(f.kind, FATE_REFUSE);
	cr_assert_eq(f.deadletter, 1);
	cr_assert_str_eq(f.stage, "parse");
	cr_assert_eq(f.count, FATE_COUNT_REJECTED_PARSE);
	cr_assert_eq(fd(0, MAP_UNMATCHED_FILTER, 0, MAP_OK).deadletter, 0);
}

/* The case MLLP and files used to decide differently. */
Test(fate, unmatched_reject_dead_letters_like_any_rejection)
{
	struct fate f = fd(1, MAP_UNMATCHED_REJECT, 1, MAP_UNMATCHED);
	cr_assert_eq(f.kind, FATE_REFUSE);
	cr_assert_eq(f.deadletter, 1);
	cr_assert_str_eq(f.stage, "map");
	cr_assert_eq(f.count, FATE_COUNT_REJECTED_UNMATCHED);
	cr_assert_eq(fd(0, MAP_UNMATCHED_REJECT, 1, MAP_UNMATCHED).deadletter, 0);
}

Test(fate, unmatched_filter_and_deadletter)
{
	struct fate f = fd(1, MAP_UNMATCHED_FILTER, 1, MAP_UNMATCHED);
	cr_assert_eq(f.kind, FATE_FILTER);
	cr_assert_eq(f.deadletter, 0);
	f = fd(0, MAP_UNMATCHED_DEADLETTER, 1, MAP_UNMATCHED);
	cr_assert_eq(f.kind, FATE_FILTER);
	cr_assert_eq(f.deadletter, 1, "the policy names the dead letter itself");
	cr_assert_eq(f.count, FATE_COUNT_FILTERED);
}

Test(fate, mapping_rejection)
{
	for (int r = MAP_REJECTED; r <= MAP_ERROR; r++) {
		struct fate f = fd(1, MAP_UNMATCHED_FILTER, 1, (enum map_result)r);
		cr_assert_eq(f.kind, FATE_REJECT);
		cr_assert_eq(f.deadletter, 1);
		cr_assert_eq(f.count, FATE_COUNT_REJECTED_MAP);
	}
	cr_assert_str_eq(fate_kind_name(FATE_REFUSE), "refuse");
}

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "publish/ledger.h"

static void key_of(uint8_t out[LEDGER_KEY_LEN], int i)
{
	char buf[32];
	const void *parts[] = { "sender", buf };
	size_t lens[] = { 6, 0 };
	lens[1] = (size_t)snprintf(buf, sizeof buf, "%d", i);
	ledger_hash(out, 2, parts, lens);
}

Test(ledger, hash_separates_parts)
{
	uint8_t a[LEDGER_KEY_LEN], b[LEDGER_KEY_LEN];
	const void *pa[] = { "ab", "c" }, *pb[] = { "a", "bc" };
	size_t la[] = { 2, 1 }, lb[] = { 1, 2 };
	ledger_hash(a, 2, pa, la);
	ledger_hash(b, 2, pb, lb);
	cr_assert_neq(memcmp(a, b, LEDGER_KEY_LEN), 0);
}

Test(ledger, insert_find_remove_many)
{
	struct ledger *l = ledger_new(1000);
	uint8_t k[LEDGER_KEY_LEN];
	for (int i = 0; i < 50000; i++) {
		key_of(k, i);
		struct ledger_entry *e = ledger_upsert(l, k, LEDGER_MSG);
		cr_assert_not_null(e);
		cr_assert_eq(e->state, LEDGER_ABSENT);
		e->state = LEDGER_INFLIGHT;
	}
	cr_assert_eq(ledger_size(l), 50000);
	for (int i = 0; i < 50000; i += 2) {
		key_of(k, i);
		ledger_remove(l, k);
	}
	cr_assert_eq(ledger_size(l), 25000);
	for (int i = 0; i < 50000; i++) {
		key_of(k, i);
		struct ledger_entry *e = ledger_find(l, k);
		if (i % 2)
			cr_assert(e && e->state == LEDGER_INFLIGHT, "key %d lost", i);
		else
			cr_assert_null(e, "key %d still there", i);
	}
	ledger_free(l);
}

Test(ledger, prune_forgets_only_old_committed_messages)
{
	struct ledger *l = ledger_new(1000);
	uint8_t k[LEDGER_KEY_LEN];
	for (int i = 0; i < 100; i++) {
		key_of(k, i);
		struct ledger_entry *e = ledger_upsert(l, k, i < 10 ? LEDGER_FILE : LEDGER_MSG);
		e->state = i % 3 == 0 ? LEDGER_INFLIGHT : LEDGER_COMMITTED;
		e->ts_ms = i < 50 ? 0 : 5000;
	}
	size_t dropped = ledger_prune(l, 5500);
	/* old (i<50), message (i>=10), committed (i%3!=0) */
	size_t expect = 0;
	for (int i = 10; i < 50; i++)
		expect += i % 3 != 0;
	cr_assert_eq(dropped, expect);
	cr_assert_eq(ledger_size(l), 100 - expect);
	ledger_free(l);
}

Test(ledger, state_records_round_trip)
{
	struct ledger *a = ledger_new(1000), *b = ledger_new(1000);
	uint8_t k[LEDGER_KEY_LEN];
	char rk[LEDGER_RECORD_KEY_MAX];
	key_of(k, 7);
	struct ledger_entry *e = ledger_upsert(a, k, LEDGER_MSG);
	e->state = LEDGER_COMMITTED;
	strcpy(e->ack, "AE");
	e->ts_ms = 1234;
	size_t n = ledger_record_key(rk, LEDGER_MSG, k);
	cr_assert_eq(n, 4 + 64);
	char *v = ledger_record_value(e);
	cr_assert_eq(ledger_apply_record(b, rk, n, v, strlen(v), 99), 1);
	free(v);
	struct ledger_entry *got = ledger_find(b, k);
	cr_assert_not_null(got);
	cr_assert_eq(got->state, LEDGER_COMMITTED);
	cr_assert_str_eq(got->ack, "AE");
	cr_assert_eq(got->ts_ms, 1234);

	key_of(k, 8);
	e = ledger_upsert(a, k, LEDGER_FILE);
	e->next_index = 41;
	e->total = 100;
	n = ledger_record_key(rk, LEDGER_FILE, k);
	v = ledger_record_value(e);
	cr_assert_eq(ledger_apply_record(b, rk, n, v, strlen(v), 99), 1);
	free(v);
	got = ledger_find(b, k);
	cr_assert(got && got->kind == LEDGER_FILE && got->next_index == 41 && got->total == 100 &&
		  !got->done);

	/* tombstone, foreign key, malformed */
	cr_assert_eq(ledger_apply_record(b, rk, n, NULL, 0, 0), 1);
	cr_assert_null(ledger_find(b, k));
	cr_assert_eq(ledger_apply_record(b, "other/x", 7, "{}", 2, 0), 0);
	cr_assert_eq(ledger_apply_record(b, "msg/zz", 6, "{}", 2, 0), -1);
	cr_assert_eq(ledger_apply_record(b, rk, n, "not json", 8, 0), -1);
	ledger_free(a);
	ledger_free(b);
}

Test(ledger, batch_records_round_trip)
{
	struct ledger *a = ledger_new(1000), *b = ledger_new(1000);
	const struct ledger_entry *es[300];
	struct ledger_entry store[300];
	char key[256];
	for (int i = 0; i < 300; i++) {
		memset(&store[i], 0, sizeof store[i]);
		key_of(store[i].key, 1000 + i);
		strcpy(store[i].ack, i % 7 ? "AA" : "AE");
		es[i] = &store[i];
	}
	int kl = ledger_batch_key(key, sizeof key, "inst-0", 42);
	cr_assert_str_eq(key, "msgs/inst-0/42");
	char *v = ledger_batch_value(es, 300, 5555);
	cr_assert_eq(ledger_apply_record(b, key, (size_t)kl, v, strlen(v), 1), 300);
	free(v);
	cr_assert_eq(ledger_size(b), 300);
	for (int i = 0; i < 300; i++) {
		struct ledger_entry *e = ledger_find(b, store[i].key);
		cr_assert(e && e->state == LEDGER_COMMITTED && e->ts_ms == 5555);
		cr_assert_str_eq(e->ack, i % 7 ? "AA" : "AE");
	}
	/* malformed batches are refused */
	cr_assert_eq(ledger_apply_record(b, key, (size_t)kl, "{\"acks\":3}", 10, 1), -1);
	cr_assert_eq(ledger_apply_record(b, key, (size_t)kl, "{\"acks\":{\"zz\":\"AA\"}}", 20, 1), -1);
	ledger_free(a);
	ledger_free(b);
}

/* The ledger tail may read a file's older slice record after the loop applied
 * a newer completion (or a peer's progress): progress never goes back, done
 * stays done. And an in-flight message read committed becomes committed. */
Test(ledger, records_never_move_progress_back)
{
	struct ledger *l = ledger_new(3600 * 1000);
	uint8_t k[LEDGER_KEY_LEN];
	char rk[LEDGER_RECORD_KEY_MAX];
	const char *older = "{\"next_index\":20,\"total\":100,\"done\":false,\"ts\":1}";
	const char *last = "{\"next_index\":100,\"total\":100,\"done\":true,\"ts\":3}";
	key_of(k, 9);
	size_t n = ledger_record_key(rk, LEDGER_FILE, k);
	struct ledger_entry *e = ledger_upsert(l, k, LEDGER_FILE);
	e->state = LEDGER_COMMITTED;
	e->next_index = 60;
	e->total = 100;
	cr_assert_eq(ledger_apply_record(l, rk, n, older, strlen(older), 0), 1);
	e = ledger_find(l, k);
	cr_assert_eq(e->next_index, 60, "moved back to %u", e->next_index);
	cr_assert_eq(ledger_apply_record(l, rk, n, last, strlen(last), 0), 1);
	cr_assert(e->next_index == 100 && e->done);
	cr_assert_eq(ledger_apply_record(l, rk, n, older, strlen(older), 0), 1);
	cr_assert(e->next_index == 100 && e->done, "done was undone");

	int owner;
	key_of(k, 10);
	e = ledger_upsert(l, k, LEDGER_MSG);
	e->state = LEDGER_INFLIGHT;
	e->owner = &owner;
	n = ledger_record_key(rk, LEDGER_MSG, k);
	cr_assert_eq(ledger_apply_record(l, rk, n, "{\"ack\":\"AA\",\"ts\":5}", 19, 0), 1);
	e = ledger_find(l, k);
	cr_assert(e->state == LEDGER_COMMITTED && e->owner == &owner && strcmp(e->ack, "AA") == 0);
	ledger_free(l);
}

/*
 * replay_diff: events paired by eventId; unchanged inputs write no line;
 * paths always, values only when asked; newly rejected / accepted; the
 * summary per mapping and topic.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "publish/replay_diff.h"

static void add(struct rdiff_side *s, const char *id, const char *status, const char *patient)
{
	json_t *ev = json_pack("{s:s, s:{s:s, s:s}}", "eventId", id, "data", "status", status,
			       "patientId", patient);
	json_array_append_new(s->events,
			      json_pack("{s:s, s:s, s:s, s:o}", "eventId", id, "mapping", "rde-o11",
					"topic", "healthcare.prescription.created", "event", ev));
	s->status = RDIFF_EVENTS;
}

struct run {
	char *buf;
	size_t len;
	FILE *f;
	struct rdiff *d;
};

static void start(struct run *r, int values)
{
	memset(r, 0, sizeof *r);
	r->f = open_memstream(&r->buf, &r->len);
	r->d = rdiff_new(values, r->f);
	cr_assert_not_null(r->d);
}

static void finish(struct run *r)
{
	FILE *err = fopen("/dev/null", "w");
	rdiff_summary(r->d, r->f, err);
	fclose(err);
	rdiff_free(r->d);
	fclose(r->f);
}

Test(replay_diff, unchanged_writes_only_the_summary)
{
	struct run r;
	struct rdiff_side a, b;
	start(&r, 0);
	rdiff_side_init(&a);
	rdiff_side_init(&b);
	add(&a, "id-1", "active", "P1");
	add(&b, "id-1", "active", "P1");
	rdiff_record(r.d, "t", 0, 7, "M1", &a, &b);
	rdiff_side_clear(&a);
	rdiff_side_clear(&b);
	finish(&r);
	cr_assert(strncmp(r.buf, "{\"summary\"", 10) == 0, "%s", r.buf);
	cr_assert(strstr(r.buf, "\"unchanged\":1") != NULL, "%s", r.buf);
	cr_assert(strstr(r.buf, "\"detail_lines\":0") != NULL, "%s", r.buf);
	free(r.buf);
}

Test(replay_diff, changed_paths_without_and_with_values)
{
	for (int values = 0; values < 2; values++) {
		struct run r;
		struct rdiff_side a, b;
		start(&r, values);
		rdiff_side_init(&a);
		rdiff_side_init(&b);
		add(&a, "id-1", "active", "P1");
		add(&b, "id-1", "cancelled", "P1");
		rdiff_record(r.d, "t", 2, 9, "M2", &a, &b);
		rdiff_side_clear(&a);
		rdiff_side_clear(&b);
		finish(&r);
		cr_assert(strstr(r.buf, "\"change\":\"changed\"") != NULL, "%s", r.buf);
		cr_assert(strstr(r.buf, "\"paths\":[\"data.status\"]") != NULL, "%s", r.buf);
		cr_assert(strstr(r.buf, "\"offset\":9") && strstr(r.buf, "\"messageId\":\"M2\""), "%s", r.buf);
		cr_assert(strstr(r.buf, "\"changed\":1") != NULL, "%s", r.buf);
		if (values)
			cr_assert(strstr(r.buf, "{\"before\":\"active\",\"after\":\"cancelled\"}") != NULL,
				  "%s", r.buf);
		else
			cr_assert(strstr(r.buf, "active") == NULL, "a value without --values: %s", r.buf);
		free(r.buf);
	}
}

Test(replay_diff, newly_rejected_and_accepted)
{
	struct run r;
	struct rdiff_side a, b, c, e;
	struct map_reject rej = { .err_code = 101, .mapping = "rde-o11", .target = "data.patientId" };
	snprintf(rej.reason, sizeof rej.reason, "mapping rde-o11: required target data.patientId is empty");
	start(&r, 0);
	rdiff_side_init(&a);
	rdiff_side_init(&b);
	add(&a, "id-1", "active", "P1");
	rdiff_side_result(&b, MAP_REJECTED, &rej);
	rdiff_record(r.d, "t", 0, 1, NULL, &a, &b); /* was published, now rejected */
	rdiff_side_init(&c);
	rdiff_side_init(&e);
	c.status = RDIFF_REJECTED;
	add(&e, "id-2", "active", "P2");
	add(&e, "id-3", "active", "P2");
	rdiff_record(r.d, "t", 0, 2, NULL, &c, &e); /* a dead letter the fix accepts */
	rdiff_side_clear(&a);
	rdiff_side_clear(&b);
	rdiff_side_clear(&c);
	rdiff_side_clear(&e);
	finish(&r);
	cr_assert(strstr(r.buf, "\"change\":\"newly_rejected\"") != NULL, "%s", r.buf);
	cr_assert(strstr(r.buf, "required target data.patientId") != NULL, "no reason: %s", r.buf);
	cr_assert(strstr(r.buf, "\"target\":\"data.patientId\"") != NULL, "no target: %s", r.buf);
	cr_assert(strstr(r.buf, "\"change\":\"newly_accepted\"") != NULL, "%s", r.buf);
	cr_assert(strstr(r.buf, "\"newly_rejected\":1") != NULL, "%s", r.buf);
	cr_assert(strstr(r.buf, "\"newly_accepted\":2") != NULL, "%s", r.buf);
	cr_assert(strstr(r.buf, "P2") == NULL, "a value without --values: %s", r.buf);
	free(r.buf);
}

Test(replay_diff, event_removed_and_added_by_event_id)
{
	struct run r;
	struct rdiff_side a, b;
	start(&r, 0);
	rdiff_side_init(&a);
	rdiff_side_init(&b);
	add(&a, "id-1", "active", "P1");
	add(&a, "id-2", "active", "P1");
	add(&b, "id-1", "active", "P1");
	add(&b, "id-9", "active", "P1");
	rdiff_record(r.d, "t", 0, 3, NULL, &a, &b);
	rdiff_side_clear(&a);
	rdiff_side_clear(&b);
	finish(&r);
	cr_assert(strstr(r.buf, "\"eventId\":\"id-9\"") && strstr(r.buf, "\"change\":\"added\""), "%s", r.buf);
	cr_assert(strstr(r.buf, "\"eventId\":\"id-2\"") && strstr(r.buf, "\"change\":\"removed\""), "%s", r.buf);
	cr_assert(strstr(r.buf, "\"unchanged\":1,") || strstr(r.buf, "\"unchanged\":1}"), "%s", r.buf);
	cr_assert(strstr(r.buf, "\"changed\":2") != NULL, "%s", r.buf);
	free(r.buf);
}

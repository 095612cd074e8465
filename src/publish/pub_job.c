/* pub_job — building a publisher job: its records in one arena, its ledger
 * entry and, for a file's slice, its messages' keys. */
#include "publish/pub.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "publish/kconf.h"
#include "publish/pub_int.h"
#include "util.h"

/* ---- jobs ---------------------------------------------------------------- */

struct pub_job *pub_job_new(pub_done_cb cb, void *opaque)
{
	struct pub_job *j = calloc(1, sizeof *j);
	if (j) {
		j->cb = cb;
		j->opaque = opaque;
	}
	return j;
}

void pub_job_free(struct pub_job *j)
{
	if (!j)
		return;
	free(j->recs);
	free(j->arena);
	free(j->msgs);
	free(j);
}

/* Append n bytes (and a NUL when z) to the arena; returns the offset or
 * SIZE_MAX on allocation failure. */
static size_t arena_put(struct pub_job *j, const void *p, size_t n, int z)
{
	size_t need = j->used + n + (z ? 1 : 0);
	if (util_reserve(&j->arena, &j->room, need, 1024) != 0)
		return SIZE_MAX;
	size_t off = j->used;
	if (n)
		memcpy(j->arena + off, p, n);
	if (z)
		j->arena[off + n] = '\0';
	j->used = need;
	return off;
}

int pub_job_add(struct pub_job *j, const char *topic, const void *key, size_t key_len,
		const void *value, size_t value_len, const struct pub_hdr *hdrs, int nhdrs)
{
	struct pub_rec r = { .has_key = key != NULL, .has_value = value != NULL };
	size_t used = j->used;
	int bad = 0;
	if (j->n == j->cap) {
		int cap = j->cap ? j->cap * 2 : 4;
		struct pub_rec *recs = realloc(j->recs, (size_t)cap * sizeof *recs);
		if (!recs)
			return -1;
		j->recs = recs;
		j->cap = cap;
	}
	r.key_len = key ? key_len : 0;
	r.value_len = value ? value_len : 0;
	bad |= (r.topic = arena_put(j, topic, strlen(topic), 1)) == SIZE_MAX;
	bad |= (r.key = arena_put(j, key, r.key_len, 0)) == SIZE_MAX;
	bad |= (r.value = arena_put(j, value, r.value_len, 0)) == SIZE_MAX;
	r.hdrs = j->used;
	for (int i = 0; i < nhdrs && !bad; i++) {
		if (!hdrs[i].value)
			continue;
		bad |= arena_put(j, hdrs[i].name, strlen(hdrs[i].name), 1) == SIZE_MAX;
		bad |= arena_put(j, hdrs[i].value, strlen(hdrs[i].value), 1) == SIZE_MAX;
		r.nhdrs++;
	}
	if (bad) {
		j->used = used;
		return -1;
	}
	j->recs[j->n++] = r;
	j->bytes += r.key_len + r.value_len + strlen(topic);
	return 0;
}

void pub_job_set_ledger(struct pub_job *j, const struct ledger_entry *e)
{
	j->ledger = *e;
	j->has_ledger = 1;
}

const struct ledger_entry *pub_job_ledger(const struct pub_job *j)
{
	return j->has_ledger ? &j->ledger : NULL;
}

int pub_job_add_msg_key(struct pub_job *j, const uint8_t key[LEDGER_KEY_LEN], const char *ack)
{
	if (j->nmsgs == j->capmsgs) {
		int cap = j->capmsgs ? j->capmsgs * 2 : 64;
		struct ledger_entry *m = realloc(j->msgs, (size_t)cap * sizeof *m);
		if (!m)
			return -1;
		j->msgs = m;
		j->capmsgs = cap;
	}
	struct ledger_entry *e = &j->msgs[j->nmsgs++];
	memset(e, 0, sizeof *e);
	memcpy(e->key, key, LEDGER_KEY_LEN);
	e->kind = LEDGER_MSG;
	snprintf(e->ack, sizeof e->ack, "%s", ack);
	return 0;
}

const struct ledger_entry *pub_job_msg_keys(const struct pub_job *j, int *n)
{
	*n = j->nmsgs;
	return j->msgs;
}

const struct pub_job *pub_job_next(const struct pub_job *j)
{
	return j->next;
}

void *pub_job_opaque(const struct pub_job *j)
{
	return j->opaque;
}

void pub_job_set_cb(struct pub_job *j, pub_done_cb cb, void *opaque)
{
	j->cb = cb;
	j->opaque = opaque;
}

void pub_job_set_internal(struct pub_job *j)
{
	j->internal = 1;
}

void pub_job_set_unordered(struct pub_job *j)
{
	j->unordered = 1;
}

int pub_job_count(const struct pub_job *job)
{
	return job->n;
}

void pub_job_truncate(struct pub_job *job, int n)
{
	if (n < 0 || n >= job->n)
		return;
	for (int i = n; i < job->n; i++)
		job->bytes -= job->recs[i].key_len + job->recs[i].value_len +
			      strlen(job->arena + job->recs[i].topic);
	job->used = job->recs[n].topic; /* records are appended in order */
	job->n = n;
}

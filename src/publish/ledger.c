#include "publish/ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "util.h"

/* Open addressing with linear probing; deletion by backward shift, so there
 * are no tombstones and lookups stay short. Capacity is a power of two and the
 * table is kept at most 70% full. */
struct ledger {
	struct ledger_entry *slots;
	uint8_t *used;
	size_t cap;
	size_t n;
	int64_t window_ms;
};

#define LEDGER_MIN_CAP 1024

static size_t slot_of(const struct ledger *l, const uint8_t key[LEDGER_KEY_LEN])
{
	uint64_t h;
	memcpy(&h, key, sizeof h); /* keys are SHA-256 digests: already uniform */
	return (size_t)h & (l->cap - 1);
}

struct ledger *ledger_new(int64_t window_ms)
{
	struct ledger *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->cap = LEDGER_MIN_CAP;
	l->slots = calloc(l->cap, sizeof *l->slots);
	l->used = calloc(l->cap, 1);
	l->window_ms = window_ms;
	if (!l->slots || !l->used) {
		ledger_free(l);
		return NULL;
	}
	return l;
}

void ledger_free(struct ledger *l)
{
	if (!l)
		return;
	free(l->slots);
	free(l->used);
	free(l);
}

void ledger_hash(uint8_t out[LEDGER_KEY_LEN], size_t n, const void *const parts[],
		 const size_t lens[])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const uint8_t sep = 0x1f;
	unsigned int outlen = 0;
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (size_t i = 0; i < n; i++) {
		if (i)
			EVP_DigestUpdate(ctx, &sep, 1);
		EVP_DigestUpdate(ctx, parts[i], lens[i]);
	}
	EVP_DigestFinal_ex(ctx, out, &outlen);
	EVP_MD_CTX_free(ctx);
}

struct ledger_entry *ledger_find(struct ledger *l, const uint8_t key[LEDGER_KEY_LEN])
{
	for (size_t i = slot_of(l, key);; i = (i + 1) & (l->cap - 1)) {
		if (!l->used[i])
			return NULL;
		if (memcmp(l->slots[i].key, key, LEDGER_KEY_LEN) == 0)
			return &l->slots[i];
	}
}

static int grow(struct ledger *l)
{
	struct ledger_entry *old = l->slots;
	uint8_t *old_used = l->used;
	size_t old_cap = l->cap;

	l->cap = old_cap * 2;
	l->slots = calloc(l->cap, sizeof *l->slots);
	l->used = calloc(l->cap, 1);
	if (!l->slots || !l->used) {
		free(l->slots);
		free(l->used);
		l->slots = old;
		l->used = old_used;
		l->cap = old_cap;
		return -1;
	}
	for (size_t i = 0; i < old_cap; i++) {
		if (!old_used[i])
			continue;
		size_t j = slot_of(l, old[i].key);
		while (l->used[j])
			j = (j + 1) & (l->cap - 1);
		l->slots[j] = old[i];
		l->used[j] = 1;
	}
	free(old);
	free(old_used);
	return 0;
}

struct ledger_entry *ledger_upsert(struct ledger *l, const uint8_t key[LEDGER_KEY_LEN],
				   enum ledger_kind kind)
{
	struct ledger_entry *e = ledger_find(l, key);
	size_t i;
	if (e)
		return e;
	if ((l->n + 1) * 10 > l->cap * 7 && grow(l) != 0)
		return NULL;
	for (i = slot_of(l, key); l->used[i]; i = (i + 1) & (l->cap - 1))
		;
	e = &l->slots[i];
	memset(e, 0, sizeof *e);
	memcpy(e->key, key, LEDGER_KEY_LEN);
	e->kind = (uint8_t)kind;
	l->used[i] = 1;
	l->n++;
	return e;
}

static void remove_at(struct ledger *l, size_t i)
{
	size_t mask = l->cap - 1, j = i;
	l->used[i] = 0;
	l->n--;
	/* Backward shift: move later members of the probe run into the hole
	 * when their home slot is at or before it. */
	for (;;) {
		j = (j + 1) & mask;
		if (!l->used[j])
			return;
		size_t home = slot_of(l, l->slots[j].key);
		if (((j - home) & mask) >= ((j - i) & mask)) {
			l->slots[i] = l->slots[j];
			l->used[i] = 1;
			l->used[j] = 0;
			i = j;
		}
	}
}

void ledger_remove(struct ledger *l, const uint8_t key[LEDGER_KEY_LEN])
{
	struct ledger_entry *e = ledger_find(l, key);
	if (e)
		remove_at(l, (size_t)(e - l->slots));
}

size_t ledger_prune(struct ledger *l, int64_t now_ms)
{
	size_t dropped = 0;
	int64_t cutoff = now_ms - l->window_ms;
	for (size_t i = 0; i < l->cap;) {
		struct ledger_entry *e = &l->slots[i];
		if (l->used[i] && e->kind == LEDGER_MSG && e->state == LEDGER_COMMITTED &&
		    e->ts_ms < cutoff) {
			remove_at(l, i); /* slot i may now hold a shifted entry: look again */
			dropped++;
			continue;
		}
		i++;
	}
	return dropped;
}

size_t ledger_size(const struct ledger *l)
{
	return l->n;
}

size_t ledger_record_key(char *buf, enum ledger_kind kind, const uint8_t key[LEDGER_KEY_LEN])
{
	static const char hex[] = "0123456789abcdef";
	size_t n = (size_t)sprintf(buf, "%s/", kind == LEDGER_FILE ? "file" : "msg");
	for (size_t i = 0; i < LEDGER_KEY_LEN; i++) {
		buf[n++] = hex[key[i] >> 4];
		buf[n++] = hex[key[i] & 15];
	}
	buf[n] = '\0';
	return n;
}

char *ledger_record_value(const struct ledger_entry *e)
{
	char buf[160];
	if (e->kind == LEDGER_FILE)
		snprintf(buf, sizeof buf,
			 "{\"next_index\":%" PRIu32 ",\"total\":%" PRIu32 ",\"done\":%s,\"ts\":%" PRId64 "}",
			 e->next_index, e->total, e->done ? "true" : "false", e->ts_ms);
	else
		snprintf(buf, sizeof buf, "{\"ack\":\"%s\",\"ts\":%" PRId64 "}", e->ack, e->ts_ms);
	return strdup(buf);
}

static int unhex(const char *s, uint8_t out[LEDGER_KEY_LEN])
{
	for (size_t i = 0; i < LEDGER_KEY_LEN; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

int ledger_apply_record(struct ledger *l, const void *key, size_t key_len, const void *value,
			size_t value_len, int64_t ts_ms)
{
	char k[LEDGER_RECORD_KEY_MAX];
	uint8_t digest[LEDGER_KEY_LEN];
	enum ledger_kind kind;
	const char *hexpart;
	struct ledger_entry *e;
	json_t *v;

	if (!key || key_len >= sizeof k)
		return -1;
	memcpy(k, key, key_len);
	k[key_len] = '\0';
	if (strncmp(k, "msg/", 4) == 0) {
		kind = LEDGER_MSG;
		hexpart = k + 4;
	} else if (strncmp(k, "file/", 5) == 0) {
		kind = LEDGER_FILE;
		hexpart = k + 5;
	} else {
		return 0; /* not ours: other tools may share the topic */
	}
	if (strlen(hexpart) != 2 * LEDGER_KEY_LEN || unhex(hexpart, digest) != 0)
		return -1;
	if (!value) { /* tombstone */
		ledger_remove(l, digest);
		return 0;
	}
	v = json_loadb(value, value_len, 0, NULL);
	if (!json_is_object(v)) {
		json_decref(v);
		return -1;
	}
	e = ledger_upsert(l, digest, kind);
	if (!e) {
		json_decref(v);
		return -1;
	}
	e->state = LEDGER_COMMITTED;
	e->ts_ms = json_is_integer(json_object_get(v, "ts"))
			   ? (int64_t)json_integer_value(json_object_get(v, "ts"))
			   : ts_ms;
	if (kind == LEDGER_MSG) {
		const char *ack = json_string_value(json_object_get(v, "ack"));
		snprintf(e->ack, sizeof e->ack, "%s", ack ? ack : "AA");
	} else {
		e->next_index = (uint32_t)json_integer_value(json_object_get(v, "next_index"));
		e->total = (uint32_t)json_integer_value(json_object_get(v, "total"));
		e->done = json_is_true(json_object_get(v, "done"));
	}
	json_decref(v);
	return 0;
}

long ledger_rebuild(struct ledger *l, rd_kafka_conf_t *conf, const char *state_topic,
		    int timeout_ms, char *errstr, size_t errstr_size)
{
	rd_kafka_t *rk = NULL;
	const rd_kafka_metadata_t *md = NULL;
	rd_kafka_topic_partition_list_t *parts = NULL;
	rd_kafka_topic_t *t = NULL;
	long applied = 0, rc = -1;
	int nparts, eofs = 0;
	int64_t start_ms = util_wall_ms() - l->window_ms, deadline;
	char err[512];

	if (rd_kafka_conf_set(conf, "isolation.level", "read_committed", err, sizeof err) ||
	    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) ||
	    rd_kafka_conf_set(conf, "group.id", "hl7bridge-ledger-rebuild", err, sizeof err)) {
		rd_kafka_conf_destroy(conf);
		return util_seterr(errstr, errstr_size, "ledger consumer config: %s", err);
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
	if (!rk)
		return util_seterr(errstr, errstr_size, "ledger consumer: %s", err);

	t = rd_kafka_topic_new(rk, state_topic, NULL);
	if (rd_kafka_metadata(rk, 0, t, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    md->topic_cnt != 1) {
		util_seterr(errstr, errstr_size, "state topic %s: no metadata", state_topic);
		goto out;
	}
	if (md->topics[0].err) {
		util_seterr(errstr, errstr_size, "state topic %s: %s", state_topic,
			    rd_kafka_err2str(md->topics[0].err));
		goto out;
	}
	nparts = md->topics[0].partition_cnt;
	parts = rd_kafka_topic_partition_list_new(nparts);
	for (int p = 0; p < nparts; p++)
		rd_kafka_topic_partition_list_add(parts, state_topic, p)->offset = start_ms;
	/* Message keys older than the window are not needed; file keys are
	 * rewritten by every transaction that advances them, so their latest
	 * value is inside the window while the file is live. */
	/* Right after the state topic was created this call has been seen to
	 * fail while the partitions settle: retry until the timeout. */
	deadline = util_mono_ms() + timeout_ms;
	for (rd_kafka_resp_err_t e; (e = rd_kafka_offsets_for_times(rk, parts, timeout_ms));) {
		if (util_mono_ms() > deadline) {
			util_seterr(errstr, errstr_size, "state topic %s: offsets_for_times: %s",
				    state_topic, rd_kafka_err2str(e));
			goto out;
		}
		rd_kafka_poll(rk, 100);
		for (int p = 0; p < nparts; p++)
			parts->elems[p].offset = start_ms;
	}
	for (int p = 0; p < parts->cnt; p++)
		if (parts->elems[p].offset < 0) /* no record after the start time */
			parts->elems[p].offset = RD_KAFKA_OFFSET_END;
	if (rd_kafka_assign(rk, parts)) {
		util_seterr(errstr, errstr_size, "state topic %s: assign failed", state_topic);
		goto out;
	}
	deadline = util_mono_ms() + timeout_ms;
	while (eofs < nparts) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		if (util_mono_ms() > deadline) {
			util_seterr(errstr, errstr_size, "state topic %s: rebuild timed out after %d ms",
				    state_topic, timeout_ms);
			if (m)
				rd_kafka_message_destroy(m);
			goto out;
		}
		if (!m)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			eofs++;
		} else if (m->err) {
			util_seterr(errstr, errstr_size, "state topic %s: %s", state_topic,
				    rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			goto out;
		} else if (ledger_apply_record(l, m->key, m->key_len, m->payload, m->len,
					       rd_kafka_message_timestamp(m, NULL)) == 0) {
			applied++;
		}
		rd_kafka_message_destroy(m);
	}
	rc = applied;
out:
	if (parts)
		rd_kafka_topic_partition_list_destroy(parts);
	if (md)
		rd_kafka_metadata_destroy(md);
	if (t)
		rd_kafka_topic_destroy(t);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return rc;
}

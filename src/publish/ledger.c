#include "publish/ledger.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "digest.h"
#include "owner.h"
#include "util.h"
#include "publish/kconf.h"

/* Open addressing with linear probing; deletion by backward shift, so there
 * are no tombstones and lookups stay short. Capacity is a power of two and the
 * table is kept at most 70% full. */
struct ledger {
	struct ledger_entry *slots;
	uint8_t *used;
	size_t cap;
	size_t n;
	int64_t window_ms;
	struct owner owner; /* the event loop's (ledger.h) */
};

#define LEDGER_MIN_CAP 1024
/* Pause between ListOffsets attempts while a new state topic's leader is not
 * yet serving (see offsets_from). */
#define LEDGER_OFFSETS_RETRY_MS 100

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
	EVP_DigestInit_ex(ctx, digest_sha256(), NULL);
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
	assert(owner_here(&l->owner));
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
	assert(l->n < l->cap); /* a free slot ends the probe */
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
	assert(l->used[i] && l->n > 0);
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
	assert(owner_here(&l->owner));
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

int ledger_batch_key(char *buf, size_t size, const char *txid, uint64_t seq)
{
	return snprintf(buf, size, "msgs/%s/%llu", txid, (unsigned long long)seq);
}

char *ledger_batch_value(const struct ledger_entry *const *entries, size_t n, int64_t ts_ms)
{
	static const char hex[] = "0123456789abcdef";
	/* {"ts":N,"acks":{"<64 hex>":"AA",...}} */
	size_t cap = 64 + n * (2 * LEDGER_KEY_LEN + 10), o;
	char *v = malloc(cap);
	if (!v)
		return NULL;
	o = (size_t)snprintf(v, cap, "{\"ts\":%" PRId64 ",\"acks\":{", ts_ms);
	for (size_t i = 0; i < n; i++) {
		if (i)
			v[o++] = ',';
		v[o++] = '"';
		for (size_t k = 0; k < LEDGER_KEY_LEN; k++) {
			v[o++] = hex[entries[i]->key[k] >> 4];
			v[o++] = hex[entries[i]->key[k] & 15];
		}
		o += (size_t)snprintf(v + o, cap - o, "\":\"%.2s\"", entries[i]->ack[0] ? entries[i]->ack : "AA");
	}
	snprintf(v + o, cap - o, "}}");
	return v;
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

static struct ledger_entry *commit_msg(struct ledger *l, const uint8_t digest[LEDGER_KEY_LEN],
				       const char *ack, int64_t ts)
{
	struct ledger_entry *e = ledger_upsert(l, digest, LEDGER_MSG);
	if (!e)
		return NULL;
	e->state = LEDGER_COMMITTED;
	e->ts_ms = ts;
	snprintf(e->ack, sizeof e->ack, "%s", ack ? ack : "AA");
	return e;
}

/* "msgs/..." {"ts":N,"acks":{hex: code}} */
static int apply_batch(struct ledger *l, json_t *v, int64_t ts_ms)
{
	json_t *acks = json_object_get(v, "acks"), *code;
	const char *hexkey;
	int64_t ts = json_is_integer(json_object_get(v, "ts"))
			     ? (int64_t)json_integer_value(json_object_get(v, "ts"))
			     : ts_ms;
	int n = 0;
	if (!json_is_object(acks))
		return -1;
	json_object_foreach(acks, hexkey, code) {
		uint8_t digest[LEDGER_KEY_LEN];
		if (strlen(hexkey) != 2 * LEDGER_KEY_LEN || unhex(hexkey, digest) != 0)
			return -1;
		if (!commit_msg(l, digest, json_string_value(code), ts))
			return -1;
		n++;
	}
	return n;
}

int ledger_apply_record(struct ledger *l, const void *key, size_t key_len, const void *value,
			size_t value_len, int64_t ts_ms)
{
	char k[LEDGER_RECORD_KEY_MAX + 256];
	uint8_t digest[LEDGER_KEY_LEN];
	enum ledger_kind kind;
	const char *hexpart;
	struct ledger_entry *e;
	json_t *v;
	int rc = 1;

	if (!key || key_len >= sizeof k)
		return key && key_len >= 5 && memcmp(key, "msgs/", 5) == 0 ? -1 : 0;
	memcpy(k, key, key_len);
	k[key_len] = '\0';
	if (strncmp(k, "msgs/", 5) == 0) {
		if (!value)
			return 0; /* a tombstone of a batch key: nothing to forget */
		v = json_loadb(value, value_len, 0, NULL);
		rc = json_is_object(v) ? apply_batch(l, v, ts_ms) : -1;
		json_decref(v);
		return rc;
	}
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
		return 1;
	}
	v = json_loadb(value, value_len, 0, NULL);
	if (!json_is_object(v)) {
		json_decref(v);
		return -1;
	}
	int64_t ts = json_is_integer(json_object_get(v, "ts"))
			     ? (int64_t)json_integer_value(json_object_get(v, "ts"))
			     : ts_ms;
	if (kind == LEDGER_MSG) {
		e = commit_msg(l, digest, json_string_value(json_object_get(v, "ack")), ts);
	} else {
		e = ledger_upsert(l, digest, kind);
		if (e) {
			/* A file's progress only grows: the ledger tail may read a
			 * slice's record after the loop applied a later slice's
			 * completion, and a record must not move it back. */
			uint32_t next = (uint32_t)json_integer_value(json_object_get(v, "next_index"));
			e->state = LEDGER_COMMITTED;
			e->ts_ms = ts;
			if (next > e->next_index)
				e->next_index = next;
			e->total = (uint32_t)json_integer_value(json_object_get(v, "total"));
			e->done = (uint8_t)(e->done || json_is_true(json_object_get(v, "done")));
		}
	}
	json_decref(v);
	return e ? rc : -1;
}

/* A topic created a moment ago (topics.create = on, first start) has a leader
 * in the metadata before that broker serves the partition: ListOffsets then
 * answers NOT_LEADER_FOR_PARTITION (or LEADER_NOT_AVAILABLE,
 * UNKNOWN_TOPIC_OR_PART) for a short while. librdkafka does not retry
 * offsets_for_times, so this does, until the deadline. */
static int offsets_retriable(rd_kafka_resp_err_t e)
{
	return e == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
	       e == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
	       e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
}

/* Set each partition's offset to the first at or after start_ms (or END when
 * there is none). Returns 0, or the (first) error of the last attempt. */
static rd_kafka_resp_err_t offsets_from(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
					int64_t start_ms, int64_t deadline_ms)
{
	rd_kafka_resp_err_t e;

	for (;;) {
		int64_t left = deadline_ms - util_mono_ms();
		/* offsets_for_times replaces the times with offsets, also on a
		 * partial failure: set them again for each attempt. */
		for (int p = 0; p < parts->cnt; p++)
			parts->elems[p].offset = start_ms;
		e = rd_kafka_offsets_for_times(rk, parts, left > 0 ? (int)left : 1);
		/* A partition's own error must not become "no record after the
		 * start time" (END) below: that would skip the ledger. */
		for (int p = 0; p < parts->cnt && !e; p++)
			e = parts->elems[p].err;
		if (!e || !offsets_retriable(e) || left <= LEDGER_OFFSETS_RETRY_MS)
			break;
		usleep(LEDGER_OFFSETS_RETRY_MS * 1000);
	}
	if (e)
		return e;
	for (int p = 0; p < parts->cnt; p++)
		if (parts->elems[p].offset < 0) /* no record after the start time */
			parts->elems[p].offset = RD_KAFKA_OFFSET_END;
	return RD_KAFKA_RESP_ERR_NO_ERROR;
}

rd_kafka_t *ledger_read_state(const rd_kafka_conf_t *kc, const char *group,
			      const char *state_topic, int64_t since_ms, int timeout_ms,
			      ledger_record_cb cb, void *opaque,
			      rd_kafka_topic_partition_list_t **ends_out, char *errstr,
			      size_t errstr_size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_dup(kc);
	rd_kafka_t *rk = NULL;
	const rd_kafka_metadata_t *md = NULL;
	rd_kafka_topic_partition_list_t *parts = NULL;
	rd_kafka_topic_t *t = NULL;
	int nparts, eofs = 0, ok = 0;
	int64_t deadline;
	rd_kafka_resp_err_t oerr;
	char err[512];

	if (rd_kafka_conf_set(conf, "isolation.level", "read_committed", err, sizeof err) ||
	    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) ||
	    rd_kafka_conf_set(conf, "group.id", group, err, sizeof err)) {
		rd_kafka_conf_destroy(conf);
		util_seterr(errstr, errstr_size, "state topic consumer config: %s", err);
		return NULL;
	}
	rk = kconf_client_take(RD_KAFKA_CONSUMER, conf, err, sizeof err);
	if (!rk) {
		util_seterr(errstr, errstr_size, "state topic consumer: %s", err);
		return NULL;
	}

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
		rd_kafka_topic_partition_list_add(parts, state_topic, p);
	deadline = util_mono_ms() + timeout_ms;
	oerr = offsets_from(rk, parts, since_ms, deadline);
	if (oerr) {
		util_seterr(errstr, errstr_size, "state topic %s: offsets_for_times failed: %s",
			    state_topic, rd_kafka_err2name(oerr));
		goto out;
	}
	if (rd_kafka_assign(rk, parts)) {
		util_seterr(errstr, errstr_size, "state topic %s: assign failed", state_topic);
		goto out;
	}
	/* From here parts holds each partition's position (offset after the
	 * last record or end seen), for ends_out. */
	for (int p = 0; p < nparts; p++)
		parts->elems[p].offset = -1;
	while (eofs < nparts) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		if (util_mono_ms() > deadline) {
			util_seterr(errstr, errstr_size, "state topic %s: not read within %d ms",
				    state_topic, timeout_ms);
			if (m)
				rd_kafka_message_destroy(m);
			goto out;
		}
		if (!m)
			continue;
		if (m->partition >= 0 && m->partition < nparts && !m->err &&
		    m->offset + 1 > parts->elems[m->partition].offset)
			parts->elems[m->partition].offset = m->offset + 1;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			/* where a tail goes on: the end as this read saw it */
			if (m->partition >= 0 && m->partition < nparts &&
			    m->offset > parts->elems[m->partition].offset)
				parts->elems[m->partition].offset = m->offset;
			eofs++;
		} else if (m->err) {
			util_seterr(errstr, errstr_size, "state topic %s: %s", state_topic,
				    rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			goto out;
		} else {
			cb(m, opaque);
		}
		rd_kafka_message_destroy(m);
	}
	ok = 1;
out:
	if (md)
		rd_kafka_metadata_destroy(md);
	if (t)
		rd_kafka_topic_destroy(t);
	if (!ok) {
		if (parts)
			rd_kafka_topic_partition_list_destroy(parts);
		rd_kafka_consumer_close(rk);
		rd_kafka_destroy(rk);
		return NULL;
	}
	if (ends_out)
		*ends_out = parts;
	else
		rd_kafka_topic_partition_list_destroy(parts);
	return rk;
}

struct rebuild {
	struct ledger *l;
	long applied;
};

static void rebuild_cb(const rd_kafka_message_t *m, void *opaque)
{
	struct rebuild *r = opaque;
	int n = ledger_apply_record(r->l, m->key, m->key_len, m->payload, m->len,
				    rd_kafka_message_timestamp(m, NULL));
	if (n > 0)
		r->applied += n;
}

rd_kafka_t *ledger_rebuild_open(struct ledger *l, const rd_kafka_conf_t *kc,
				const char *state_topic, int timeout_ms, long *applied_out,
				rd_kafka_topic_partition_list_t **ends_out, char *errstr,
				size_t errstr_size)
{
	struct rebuild r = { l, 0 };
	/* Message keys older than the window are not needed; file keys are
	 * rewritten by every transaction that advances them, so their latest
	 * value is inside the window while the file is live. */
	rd_kafka_t *rk = ledger_read_state(kc, "hl7bridge-ledger-rebuild", state_topic,
					   util_wall_ms() - l->window_ms, timeout_ms, rebuild_cb, &r,
					   ends_out, errstr, errstr_size);
	if (rk)
		*applied_out = r.applied;
	return rk;
}

long ledger_rebuild(struct ledger *l, const rd_kafka_conf_t *kc, const char *state_topic,
		    int timeout_ms, char *errstr, size_t errstr_size)
{
	long applied = 0;
	rd_kafka_t *rk = ledger_rebuild_open(l, kc, state_topic, timeout_ms, &applied, NULL, errstr,
					     errstr_size);
	if (!rk)
		return -1;
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return applied;
}

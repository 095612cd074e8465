/*
 * ledger — what has been committed to Kafka, for end-to-end exactly-once.
 *
 * Keys are SHA-256 digests: of a message (sender MSH-3^MSH-4 | MSH-10 | body)
 * or of a batch file's content. The ledger lives in the state topic, written
 * in the same transaction as the events; this module holds its in-memory
 * image (hashes and a few bytes each, never message content), rebuilt at
 * start from the state topic with read_committed.
 *
 * Not thread-safe: owned by the event-loop thread. Lanes never touch it; the
 * loop updates it when it drains their completions.
 */
#ifndef HB_LEDGER_H
#define HB_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#define LEDGER_KEY_LEN 32
/* "msg/" or "file/" + 64 hex digits + NUL */
#define LEDGER_RECORD_KEY_MAX 72

enum ledger_state {
	LEDGER_ABSENT = 0,
	LEDGER_INFLIGHT = 1,  /* submitted, transaction not yet committed */
	LEDGER_COMMITTED = 2, /* committed; `ack` holds the acknowledgement code sent */
};

enum ledger_kind {
	LEDGER_MSG = 0,
	LEDGER_FILE = 1,
};

struct ledger_entry {
	uint8_t key[LEDGER_KEY_LEN];
	uint8_t kind;       /* enum ledger_kind */
	uint8_t state;      /* enum ledger_state */
	char ack[3];        /* "AA", "AE", "CA", ... NUL-terminated */
	int64_t ts_ms;      /* commit (or submit) time, for the dedup window */
	/* file progress (LEDGER_FILE only) */
	uint32_t next_index;
	uint32_t total;
	uint8_t done;
	/* In memory only, never written: while LEDGER_INFLIGHT, the owner's
	 * handle for the message (resends join it). */
	void *owner;
};

struct ledger;

/* window_ms: how long message keys are remembered (file keys are kept while
 * live). Returns NULL on allocation failure. */
struct ledger *ledger_new(int64_t window_ms);
void ledger_free(struct ledger *l);

/* SHA-256 of the concatenation of n (ptr, len) parts, with a 0x1f separator
 * between parts so ("ab","c") and ("a","bc") differ. */
void ledger_hash(uint8_t out[LEDGER_KEY_LEN], size_t n, const void *const parts[],
		 const size_t lens[]);

/* Find a key; NULL if absent. The pointer stays valid until the next insert
 * or prune. */
struct ledger_entry *ledger_find(struct ledger *l, const uint8_t key[LEDGER_KEY_LEN]);

/* Insert or return the existing entry for key (state LEDGER_ABSENT when new).
 * NULL on allocation failure. */
struct ledger_entry *ledger_upsert(struct ledger *l, const uint8_t key[LEDGER_KEY_LEN],
				   enum ledger_kind kind);

/* Drop a key (an in-flight message whose transaction failed). */
void ledger_remove(struct ledger *l, const uint8_t key[LEDGER_KEY_LEN]);

/* Forget message keys committed before now_ms - window. Returns how many. */
size_t ledger_prune(struct ledger *l, int64_t now_ms);

size_t ledger_size(const struct ledger *l);

/* State-topic records.
 *
 * Files: key "file/<hex>", value {"next_index","total","done","ts"}; every
 * transaction that advances a file rewrites its key, and compaction keeps
 * the newest.
 *
 * Messages: one record per transaction (per LEDGER_BATCH_MAX messages) with
 * a key unique to it, "msgs/<transactional.id>/<sequence>", and the value
 * {"ts": ms, "acks": {"<hex>": "AA", ...}}: a message costs ~70 bytes in the
 * transaction, not a record of its own. Message keys are needed only for
 * the dedup window, which the rebuild reads by time.
 *
 * (A single message record "msg/<hex>" {"ack","ts"} is also understood.) */
#define LEDGER_BATCH_MAX 1000

/* Key of a file or single-message record: returns its length (buf must hold
 * LEDGER_RECORD_KEY_MAX). */
size_t ledger_record_key(char *buf, enum ledger_kind kind, const uint8_t key[LEDGER_KEY_LEN]);
/* Heap-allocated JSON value for the entry; caller frees. */
char *ledger_record_value(const struct ledger_entry *e);
/* Key and value of a batch of message entries (n <= LEDGER_BATCH_MAX). The
 * value is heap-allocated (caller frees), NULL on allocation failure. */
int ledger_batch_key(char *buf, size_t size, const char *txid, uint64_t seq);
char *ledger_batch_value(const struct ledger_entry *const *entries, size_t n, int64_t ts_ms);
/* Apply one state-topic record (as read back); ignores foreign keys.
 * Returns the number of ledger keys it set or removed (0 for foreign
 * records), or -1 if the record is malformed. */
int ledger_apply_record(struct ledger *l, const void *key, size_t key_len, const void *value,
			size_t value_len, int64_t ts_ms);

/* Read the state topic with isolation.level=read_committed from since_ms
 * (found with offsets_for_times) to its end as of the read, calling cb for
 * every record, with a consumer of group id `group` (no offsets are
 * committed). kc is not consumed: the consumer uses a duplicate. Returns the
 * consumer, still assigned and positioned where the read stopped (close and
 * destroy it, or go on reading: the ledger tail), with *ends (when not NULL;
 * caller destroys) holding every partition's position, offset -1 for a
 * partition that had nothing to read. NULL with errstr filled on failure. */
typedef void (*ledger_record_cb)(const rd_kafka_message_t *m, void *opaque);
rd_kafka_t *ledger_read_state(const rd_kafka_conf_t *kc, const char *group,
			      const char *state_topic, int64_t since_ms, int timeout_ms,
			      ledger_record_cb cb, void *opaque,
			      rd_kafka_topic_partition_list_t **ends, char *errstr,
			      size_t errstr_size);

/* Rebuild from the state topic: ledger_read_state from (now - window),
 * applying every record. kc is not consumed. Returns the number of ledger
 * keys applied, or -1 with errstr filled. */
long ledger_rebuild(struct ledger *l, const rd_kafka_conf_t *kc, const char *state_topic,
		    int timeout_ms, char *errstr, size_t errstr_size);
/* The same, but the consumer stays open and assigned, positioned where the
 * rebuild stopped (for the ledger tail, ledger_tail.h): returns it, with
 * *applied set and *ends as ledger_read_state. A file record never moves a
 * file's next_index back nor clears its done flag (progress only grows). */
rd_kafka_t *ledger_rebuild_open(struct ledger *l, const rd_kafka_conf_t *kc,
				const char *state_topic, int timeout_ms, long *applied,
				rd_kafka_topic_partition_list_t **ends, char *errstr,
				size_t errstr_size);

#endif

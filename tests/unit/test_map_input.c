/* map/input: reading one input in shards gives every thread the same message
 * numbers, and together exactly the messages of a whole read. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map/input.h"

#define MAXN 64

struct seen {
	int n;
	size_t index[MAXN], offset[MAXN];
	int readable[MAXN];
};

static int collect(const struct map_item *it, void *opaque)
{
	struct seen *s = opaque;
	cr_assert_lt(s->n, MAXN);
	s->index[s->n] = it->index;
	s->offset[s->n] = it->offset;
	s->readable[s->n] = it->in != NULL;
	s->n++;
	return 0;
}

/* Read buf whole, then in `of` shards of `slice`; compare. */
static void check_shards(const char *buf, size_t len, size_t slice, unsigned of, int shardable)
{
	struct seen whole = { 0 }, part[8];
	size_t count = 0, pcount;
	char err[256];
	cr_assert_eq(map_input_shardable(buf, len), shardable);
	cr_assert_eq(map_input_items_shard("t", buf, len, 0, NULL, collect, &whole, &count, err,
					   sizeof err),
		     0, "%s", err);
	cr_assert_eq((size_t)whole.n, count);
	cr_assert_eq(map_input_count(buf, len), shardable ? (ssize_t)count : -1);
	int total = 0;
	for (unsigned i = 0; i < of; i++) {
		struct map_input_shard sh = { slice, of, i };
		memset(&part[i], 0, sizeof part[i]);
		cr_assert_eq(map_input_items_shard("t", buf, len, 0, &sh, collect, &part[i], &pcount,
						   err, sizeof err),
			     0, "%s", err);
		if (shardable) {
			cr_assert_eq(pcount, count, "shard %u counted %zu of %zu", i, pcount, count);
			for (int k = 0; k < part[i].n; k++)
				cr_assert_eq((part[i].index[k] / slice) % of, i);
		} else {
			cr_assert_eq(part[i].n, i == 0 ? whole.n : 0);
		}
		total += part[i].n;
	}
	cr_assert_eq(total, whole.n);
	/* every message once, with the whole read's offset and outcome */
	for (int k = 0; k < whole.n; k++) {
		int hits = 0;
		for (unsigned i = 0; i < of; i++)
			for (int m = 0; m < part[i].n; m++)
				if (part[i].index[m] == whole.index[k]) {
					hits++;
					cr_assert_eq(part[i].offset[m], whole.offset[k]);
					cr_assert_eq(part[i].readable[m], whole.readable[k]);
				}
		cr_assert_eq(hits, 1, "message %zu delivered %d times", whole.index[k], hits);
	}
}

static char *hl7_batch(int n, const char *sep, size_t *len)
{
	char *b = malloc((size_t)n * 200 + 1), *p = b;
	for (int i = 0; i < n; i++) {
		if (i == 7) /* unreadable: no MSH-9 */
			p += sprintf(p, "MSH|^~\\&|A|B|C|D|20260101||||P|2.5.1\rPID|1||X\r%s", sep);
		else
			p += sprintf(p, "MSH|^~\\&|A|B|C|D|20260101||ADT^A08|M%d|P|2.5.1\r"
					"PID|1||P%d^^^H^MR\r%s", i, i, sep);
	}
	*len = (size_t)(p - b);
	return b;
}

Test(map_input, hl7_batches_shard_by_slice)
{
	size_t len;
	char *b = hl7_batch(23, "\n", &len);
	check_shards(b, len, 4, 3, 1);
	check_shards(b, len, 1, 2, 1);
	check_shards(b, len, 100, 4, 1); /* fewer slices than shards */
	free(b);
}

/* A file cut short (a full disk): the incomplete tail is found, so that a
 * file drop never publishes the last message as whole (issue 14, item 13). */
static size_t complete(const char *s)
{
	char why[256];
	return map_input_complete(s, strlen(s), why, sizeof why);
}

Test(map_input, incomplete_tails_are_found)
{
	const char *m1 = "MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X1|P|2.5\rPID|1||1^^^H\r";
	const char *m2 = "MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X2|P|2.5\rPID|1||2^^^H\r";
	char buf[1024];
	/* plain batch: whole, then cut inside the last segment */
	snprintf(buf, sizeof buf, "%s%s", m1, m2);
	cr_assert_eq(complete(buf), strlen(buf));
	buf[strlen(buf) - 4] = '\0';
	cr_assert_eq(complete(buf), strlen(m1));
	/* cut inside the second MSH itself */
	snprintf(buf, sizeof buf, "%sMS", m1);
	cr_assert_eq(complete(buf), 0, "the MS line belongs to the first message");
	/* FHS/BHS batch: whole; trailer without a final CR is whole; cut in
	 * the trailer, or at a segment boundary before it */
	snprintf(buf, sizeof buf, "FHS|^~\\&\rBHS|^~\\&\r%s%sBTS|2\rFTS|1\r", m1, m2);
	cr_assert_eq(complete(buf), strlen(buf));
	buf[strlen(buf) - 1] = '\0';
	cr_assert_eq(complete(buf), strlen(buf));
	buf[strlen(buf) - 3] = '\0'; /* "...BTS|2\rFT" */
	size_t at = strlen("FHS|^~\\&\rBHS|^~\\&\r") + strlen(m1);
	cr_assert_eq(complete(buf), at);
	snprintf(buf, sizeof buf, "FHS|^~\\&\rBHS|^~\\&\r%s%s", m1, m2);
	cr_assert_eq(complete(buf), at, "no trailer: the last message is in doubt");
	/* CRLF and LF line ends, and blank lines between messages */
	snprintf(buf, sizeof buf, "MSH|^~\\&|A|B\r\nPID|1\r\n\r\nMSH|^~\\&|A|B\r\nPID|1||2");
	cr_assert_eq(complete(buf), strlen("MSH|^~\\&|A|B\r\nPID|1\r\n\r\n"));
	snprintf(buf, sizeof buf, "MSH|^~\\&|A|B\nPID|1\nMSH|^~\\&|A|B\nPV1|1\n");
	cr_assert_eq(complete(buf), strlen(buf));
	/* NDJSON: an unterminated, complete last line is whole; a cut one is not */
	const char *nd = "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n{\"resourceType\":\"Patient\",\"id\":\"b\"}";
	cr_assert_eq(complete(nd), strlen(nd));
	snprintf(buf, sizeof buf, "%.*s", (int)strlen(nd) - 5, nd);
	cr_assert_eq(complete(buf), (size_t)(strchr(nd, '\n') + 1 - nd));
	/* other inputs: not judged here */
	cr_assert_eq(complete("{\"resourceType\":\"Pat"), strlen("{\"resourceType\":\"Pat"));
}

Test(map_input, mllp_dumps_shard_too)
{
	char buf[8192], *p = buf;
	for (int i = 0; i < 9; i++)
		p += sprintf(p, "\x0bMSH|^~\\&|A|B|C|D|20260101||ADT^A08|M%d|P|2.5.1\rPID|1||P%d\r\x1c\r",
			     i, i);
	check_shards(buf, (size_t)(p - buf), 2, 2, 1);
}

Test(map_input, ndjson_with_blank_and_bad_lines)
{
	char buf[8192], *p = buf;
	for (int i = 0; i < 17; i++) {
		if (i == 5)
			p += sprintf(p, "{\"resourceType\":\"Patient\",broken\n");
		else
			p += sprintf(p, "{\"resourceType\":\"Patient\",\"id\":\"p%d\"}\n%s", i,
				     i % 4 == 0 ? "\n  \r\n" : "");
	}
	check_shards(buf, (size_t)(p - buf), 3, 2, 1);
}

Test(map_input, inputs_that_cannot_be_cut_go_whole_to_shard_zero)
{
	const char *nd = "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n"
			 "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
			 "{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"b\"}},"
			 "{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"c\"}}]}\n"
			 "{\"resourceType\":\"Patient\",\"id\":\"d\"}\n";
	check_shards(nd, strlen(nd), 1, 3, 0);
	const char *doc = "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
			  "{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"b\"}}]}";
	check_shards(doc, strlen(doc), 1, 2, 0);
}

/* ---- ledger keys on the canonical form (issue 15, item 3) ---- */

static int first_key(const struct map_item *it, void *opaque)
{
	cr_assert(it->in, "%s: %s", it->label, it->error ? it->error : "");
	memcpy(opaque, it->in->ledger_key, LEDGER_KEY_LEN);
	return 1; /* the first message only */
}

static void key_of(const char *buf, size_t len, uint8_t key[LEDGER_KEY_LEN])
{
	char err[256];
	memset(key, 0, LEDGER_KEY_LEN);
	map_input_items("t", buf, len, 0, first_key, key, err, sizeof err);
}

Test(map_input, one_key_whatever_the_line_endings)
{
	static const char *segs[] = { "MSH|^~\\&|APP|FAC|||20261127||ADT^A04|K1|P|2.5.1",
				      "PID|1||P1^^^H^MR||Doe^Jane", "PV1|1|O" };
	const char *eols[] = { "\r", "\n", "\r\n", "\n\n" };
	uint8_t ref[LEDGER_KEY_LEN], key[LEDGER_KEY_LEN];
	char buf[512];
	struct hl7_seg hs[8];
	struct hl7_msg m;
	struct hl7_error he;
	/* the canonical bytes: the key is SHA-256 over sender, MSH-10 and them, as before */
	int n = snprintf(buf, sizeof buf, "%s\r%s\r%s\r", segs[0], segs[1], segs[2]);
	cr_assert_eq(hl7_parse(&m, buf, (size_t)n, hs, 8, NULL, &he), 0);
	map_input_hl7_key(&m, buf, (size_t)n, ref);
	const void *parts[3] = { "APP^FAC", "K1", buf };
	size_t lens[3] = { 7, 2, (size_t)n };
	ledger_hash(key, 3, parts, lens);
	cr_assert_eq(memcmp(ref, key, LEDGER_KEY_LEN), 0, "canonical bytes keep their key");
	hl7_msg_clear(&m);
	for (size_t e = 0; e < 4; e++) {
		n = snprintf(buf, sizeof buf, "%s%s%s%s%s%s", segs[0], eols[e], segs[1], eols[e],
			     segs[2], eols[e]);
		key_of(buf, (size_t)n, key);
		cr_assert_eq(memcmp(ref, key, LEDGER_KEY_LEN), 0, "line ending %zu", e);
		/* without the last terminator, and with extra ones */
		key_of(buf, (size_t)n - strlen(eols[e]), key);
		cr_assert_eq(memcmp(ref, key, LEDGER_KEY_LEN), 0, "no final terminator %zu", e);
	}
	/* MLLP-framed, and in an FHS/BHS batch */
	n = snprintf(buf, sizeof buf, "\x0b%s\r%s\r%s\r\x1c\r", segs[0], segs[1], segs[2]);
	key_of(buf, (size_t)n, key);
	cr_assert_eq(memcmp(ref, key, LEDGER_KEY_LEN), 0, "MLLP");
	n = snprintf(buf, sizeof buf, "FHS|^~\\&\nBHS|^~\\&\n%s\n%s\n%s\nBTS|1\nFTS|1\n", segs[0],
		     segs[1], segs[2]);
	key_of(buf, (size_t)n, key);
	cr_assert_eq(memcmp(ref, key, LEDGER_KEY_LEN), 0, "FHS batch");
	/* another message is another key */
	n = snprintf(buf, sizeof buf, "%s\r%s\r%s\r", segs[0], "PID|1||P2^^^H^MR", segs[2]);
	key_of(buf, (size_t)n, key);
	cr_assert_neq(memcmp(ref, key, LEDGER_KEY_LEN), 0);
}

/* Long segments, many segments and mixed endings: the key is the one of
 * the canonical bytes (the hash copies non-canonical segments in blocks). */
Test(map_input, canonical_key_of_long_and_mixed_messages)
{
	const char *eols[] = { "\r", "\n", "\r\n" };
	size_t cap = 64 << 10;
	char *canon = malloc(cap), *mixed = malloc(cap);
	uint8_t ref[LEDGER_KEY_LEN], key[LEDGER_KEY_LEN];
	size_t nc = 0, nm = 0;
	nc += (size_t)sprintf(canon, "MSH|^~\\&|APP|FAC|||20261127||ADT^A04|K2|P|2.5.1\r");
	nm += (size_t)sprintf(mixed, "MSH|^~\\&|APP|FAC|||20261127||ADT^A04|K2|P|2.5.1\n");
	for (int i = 0; i < 300; i++) {
		char seg[6000];
		int n = snprintf(seg, sizeof seg, "NTE|%d|", i);
		size_t body = i % 50 == 7 ? 5000 : (size_t)(i % 13); /* some longer than a block */
		memset(seg + n, 'a' + i % 26, body);
		n += (int)body;
		memcpy(canon + nc, seg, (size_t)n);
		nc += (size_t)n;
		canon[nc++] = '\r';
		memcpy(mixed + nm, seg, (size_t)n);
		nm += (size_t)n;
		nm += (size_t)sprintf(mixed + nm, "%s", eols[i % 3]);
	}
	const void *parts[3] = { "APP^FAC", "K2", canon };
	size_t lens[3] = { 7, 2, nc };
	ledger_hash(ref, 3, parts, lens);
	key_of(canon, nc, key);
	cr_assert_eq(memcmp(ref, key, LEDGER_KEY_LEN), 0, "canonical");
	key_of(mixed, nm, key);
	cr_assert_eq(memcmp(ref, key, LEDGER_KEY_LEN), 0, "mixed line endings");
	free(canon);
	free(mixed);
}

/* ---- Bundles (items 2 and 4) ---- */

struct labels {
	int n, errors;
	char label[8][128];
};

static int note_label(const struct map_item *it, void *opaque)
{
	struct labels *l = opaque;
	cr_assert_lt(l->n, 8);
	snprintf(l->label[l->n++], sizeof l->label[0], "%s", it->label);
	l->errors += it->in == NULL;
	return 0;
}

Test(map_input, entries_without_resource_are_skipped_nested_bundles_opened)
{
	const char *b = "{\"resourceType\":\"Bundle\",\"type\":\"batch-response\",\"entry\":["
			"{\"response\":{\"status\":\"204 No Content\"}},"
			"{\"resource\":{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":["
			"{\"search\":{\"mode\":\"outcome\"}},"
			"{\"fullUrl\":\"urn:uuid:1\",\"resource\":{\"resourceType\":\"Patient\"}},"
			"{\"resource\":{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
			"{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"deep\"}}]}}]},"
			"\"response\":{\"status\":\"200 OK\"}},"
			"{\"request\":{\"method\":\"DELETE\",\"url\":\"Patient/1\"}},"
			"{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"top\"}}]}";
	struct labels l = { 0 };
	char err[256];
	cr_assert_eq(map_input_items("b.json", b, strlen(b), 0, note_label, &l, err, sizeof err), 0,
		     "%s", err);
	cr_assert_eq(l.n, 3);
	cr_assert_eq(l.errors, 0);
	cr_assert_str_eq(l.label[0], "b.json entry 2.2 (Patient/-)");
	cr_assert_str_eq(l.label[1], "b.json entry 2.3.1 (Patient/deep)");
	cr_assert_str_eq(l.label[2], "b.json entry 4 (Patient/top)");
}

Test(map_input, bundles_nested_too_deep_are_reported)
{
	char b[4096] = "", *p = b;
	for (int i = 0; i < 7; i++)
		p += sprintf(p, "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":"
				"[{\"resource\":");
	p += sprintf(p, "{\"resourceType\":\"Patient\",\"id\":\"x\"}");
	for (int i = 0; i < 7; i++)
		p += sprintf(p, "}]}");
	struct labels l = { 0 };
	char err[256];
	cr_assert_eq(map_input_items("d.json", b, strlen(b), 0, note_label, &l, err, sizeof err), 0);
	cr_assert_eq(l.n, 1);
	cr_assert_eq(l.errors, 1);
}

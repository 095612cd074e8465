#include "publish/reclimit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "publish/kconf.h"

static void notef(reclimit_note_cb note, void *opaque, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void notef(reclimit_note_cb note, void *opaque, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	if (!note)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	note(opaque, text);
}

static size_t kafka_conf_size(rd_kafka_conf_t *kc, const char *name, size_t dflt)
{
	char v[64];
	size_t sz = sizeof v;
	if (rd_kafka_conf_get(kc, name, v, &sz) != RD_KAFKA_CONF_OK || !v[0])
		return dflt;
	long long n = atoll(v);
	return n > 0 ? (size_t)n : dflt;
}

/* DescribeConfigs of every topic; fills rl->t[i].max. Returns 0 when the
 * cluster answered, -1 with errstr otherwise. */
static int describe(struct reclimit *rl, rd_kafka_conf_t *kc, int timeout_ms, char *errstr,
		    size_t errstr_size)
{
	char err[512];
	rd_kafka_conf_t *dup = rd_kafka_conf_dup(kc);
	rd_kafka_t *rk;
	rd_kafka_queue_t *q = NULL;
	rd_kafka_event_t *ev = NULL;
	rd_kafka_ConfigResource_t **cr = calloc((size_t)rl->n + 1, sizeof *cr);
	int rc = -1;

	rk = kconf_client_take(RD_KAFKA_PRODUCER, dup, err, sizeof err);
	if (!rk) {
		free(cr);
		return util_seterr(errstr, errstr_size, "%s", err);
	}
	if (!cr) {
		util_seterr(errstr, errstr_size, "out of memory");
		goto out;
	}
	q = rd_kafka_queue_new(rk);
	for (int i = 0; i < rl->n; i++)
		cr[i] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, rl->t[i].name);
	rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
	rd_kafka_AdminOptions_set_request_timeout(o, timeout_ms, NULL, 0);
	rd_kafka_DescribeConfigs(rk, cr, (size_t)rl->n, o, q);
	rd_kafka_AdminOptions_destroy(o);
	ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
	if (!ev) {
		util_seterr(errstr, errstr_size, "no answer within %d ms", timeout_ms);
		goto out;
	}
	if (rd_kafka_event_error(ev)) {
		util_seterr(errstr, errstr_size, "%s", rd_kafka_event_error_string(ev));
		goto out;
	}
	size_t nres;
	const rd_kafka_ConfigResource_t **res =
		rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &nres);
	for (size_t r = 0; r < nres; r++) {
		const char *name = rd_kafka_ConfigResource_name(res[r]);
		size_t ne;
		const rd_kafka_ConfigEntry_t **ent;
		if (rd_kafka_ConfigResource_error(res[r]))
			continue; /* a topic that does not exist yet: the producer's limit */
		ent = rd_kafka_ConfigResource_configs(res[r], &ne);
		for (size_t e = 0; e < ne; e++) {
			const char *v = rd_kafka_ConfigEntry_value(ent[e]);
			if (!v || strcmp(rd_kafka_ConfigEntry_name(ent[e]), "max.message.bytes") != 0)
				continue;
			for (int i = 0; i < rl->n; i++)
				if (strcmp(rl->t[i].name, name) == 0 && atoll(v) > 0)
					rl->t[i].max = (size_t)atoll(v);
		}
	}
	rc = 0;
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	for (int i = 0; cr && i < rl->n; i++)
		if (cr[i])
			rd_kafka_ConfigResource_destroy(cr[i]);
	free(cr);
	if (q)
		rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	return rc;
}

int reclimit_init(struct reclimit *rl, rd_kafka_conf_t *kc, const char *const *topics, int ntopics,
		  int timeout_ms, reclimit_note_cb note, void *opaque, char *errstr,
		  size_t errstr_size)
{
	char err[512];
	memset(rl, 0, sizeof *rl);
	rl->configured = rl->producer = kafka_conf_size(kc, "message.max.bytes", RECLIMIT_DEFAULT_PRODUCER);
	if (ntopics <= 0)
		return 0;
	rl->t = calloc((size_t)ntopics, sizeof *rl->t);
	if (!rl->t)
		return util_seterr(errstr, errstr_size, "out of memory");
	for (int i = 0; i < ntopics; i++) {
		if (!(rl->t[i].name = strdup(topics[i]))) {
			reclimit_clear(rl);
			return util_seterr(errstr, errstr_size, "out of memory");
		}
		rl->n++;
	}
	if (describe(rl, kc, timeout_ms, err, sizeof err) != 0) {
		notef(note, opaque,
		      "cannot read the topics' max.message.bytes (%s): records are checked against "
		      "message.max.bytes = %zu only",
		      err, rl->producer);
		return 0;
	}
	rl->queried = 1;
	const char *lowest = NULL;
	size_t min = 0;
	for (int i = 0; i < rl->n; i++)
		if (rl->t[i].max && (!min || rl->t[i].max < min)) {
			min = rl->t[i].max;
			lowest = rl->t[i].name;
		}
	if (lowest && min < rl->producer) {
		char v[32];
		snprintf(v, sizeof v, "%zu", min);
		if (rd_kafka_conf_set(kc, "message.max.bytes", v, err, sizeof err) != RD_KAFKA_CONF_OK) {
			util_seterr(errstr, errstr_size, "topic %s takes records up to %zu bytes, "
				    "but message.max.bytes cannot be lowered to it: %s", lowest, min, err);
			reclimit_clear(rl);
			return -1;
		}
		/* batch.size bounds a batch too; keep it within the limit */
		if (kafka_conf_size(kc, "batch.size", RECLIMIT_DEFAULT_PRODUCER) > min)
			rd_kafka_conf_set(kc, "batch.size", v, NULL, 0);
		notef(note, opaque,
		      "topic %s takes records up to %zu bytes (max.message.bytes), less than "
		      "message.max.bytes = %zu: the producers use %zu, so that a batch of records "
		      "always fits",
		      lowest, min, rl->producer, min);
		rl->producer = min;
	}
	return 0;
}

void reclimit_clear(struct reclimit *rl)
{
	for (int i = 0; i < rl->n; i++)
		free(rl->t[i].name);
	free(rl->t);
	rl->t = NULL;
	rl->n = 0;
}

size_t reclimit_room(const struct reclimit *rl, const char *topic)
{
	size_t room = rl->producer;
	for (int i = 0; i < rl->n; i++)
		if (rl->t[i].max && rl->t[i].max < room && strcmp(rl->t[i].name, topic) == 0)
			room = rl->t[i].max;
	return room;
}

size_t reclimit_record_size(size_t key_len, size_t value_len, const char *hdrs, int nhdrs)
{
	size_t n = RECLIMIT_OVERHEAD + key_len + value_len;
	const char *p = hdrs;
	for (int i = 0; i < nhdrs; i++) {
		size_t nl = strlen(p), vl = strlen(p + nl + 1);
		n += nl + vl + RECLIMIT_HDR_OVERHEAD;
		p += nl + vl + 2;
	}
	return n;
}

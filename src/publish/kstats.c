#include "publish/kstats.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "util.h"

static int64_t get_int(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static void get_str(json_t *o, const char *key, char *out, size_t cap)
{
	const char *s = json_string_value(json_object_get(o, key));
	snprintf(out, cap, "%s", s ? s : "");
}

int kstats_parse(const char *json, size_t len, struct kstats *out, char *errstr,
		 size_t errstr_size)
{
	json_error_t jerr;
	json_t *root = json_loadb(json, len, 0, &jerr), *eos, *brokers, *b;
	struct kstats k;
	const char *name;

	if (!root)
		return util_seterr(errstr, errstr_size, "statistics: line %d column %d: %s", jerr.line,
				   jerr.column, jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return util_seterr(errstr, errstr_size, "statistics: not a JSON object");
	}
	memset(&k, 0, sizeof k);
	k.valid = 1;
	k.msg_cnt = get_int(root, "msg_cnt");
	k.msg_size = get_int(root, "msg_size");
	k.txmsgs = get_int(root, "txmsgs");
	eos = json_object_get(root, "eos");
	get_str(eos, "txn_state", k.txn_state, sizeof k.txn_state);
	get_str(eos, "idemp_state", k.idemp_state, sizeof k.idemp_state);
	brokers = json_object_get(root, "brokers");
	json_object_foreach(brokers, name, b) {
		const char *src = json_string_value(json_object_get(b, "source"));
		struct kstats_broker *kb;
		json_t *rtt;
		/* The internal pseudo-broker only routes local work: no network. */
		if ((src && strcmp(src, "internal") == 0) || k.nbrokers == KSTATS_MAX_BROKERS)
			continue;
		kb = &k.brokers[k.nbrokers++];
		snprintf(kb->name, sizeof kb->name, "%s", name);
		get_str(b, "state", kb->state, sizeof kb->state);
		rtt = json_object_get(b, "rtt");
		kb->rtt_avg_us = get_int(rtt, "avg");
		kb->rtt_p99_us = get_int(rtt, "p99");
	}
	json_decref(root);
	*out = k;
	return 0;
}

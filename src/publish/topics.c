#include "publish/topics.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "publish/kconf.h"

static const char *const default_events =
	"prescription.created, prescription.updated, prescription.cancelled, "
	"prescription.dispensed, prescription.administered, patient.created, patient.updated, "
	"patient.merged";

static int valid_topic_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= TOPICS_NAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
			return 0;
	return 1;
}

static struct topic_spec *add(struct topic_plan *p, const char *name, enum topic_role role)
{
	struct topic_spec *t = realloc(p->t, (size_t)(p->n + 1) * sizeof *t);
	if (!t)
		return NULL;
	p->t = t;
	t = &p->t[p->n++];
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->role = role;
	return t;
}

/* Apply [topics] defaults, then a [topic NAME] section if there is one. */
static int settle(struct conf *c, struct topic_spec *t, int64_t parts, int64_t rf, int64_t ret,
		  const char *cleanup, char *errstr, size_t errstr_size)
{
	struct conf_section *o = conf_section(c, "topic", t->name);
	int64_t v;
	const char *cp;

	if (!valid_topic_name(t->name))
		return util_seterr(errstr, errstr_size,
				   "%s: '%s' is not a valid Kafka topic name (letters, digits, . _ -)",
				   c->path, t->name);
	if (conf_int(c, o, "partitions", parts, 1, 10000, &v, errstr, errstr_size))
		return -1;
	t->partitions = (int)v;
	if (conf_int(c, o, "replication.factor", rf, 1, 32, &v, errstr, errstr_size))
		return -1;
	t->replication = (int)v;
	if (conf_duration_ms(c, o, "retention", ret, &v, errstr, errstr_size))
		return -1;
	t->retention_ms = v == 0 ? -1 : v;
	cp = conf_str(o, "cleanup.policy", cleanup);
	if (strcmp(cp, "delete") && strcmp(cp, "compact") && strcmp(cp, "compact,delete"))
		return util_seterr(errstr, errstr_size,
				   "%s: topic %s: cleanup.policy must be delete, compact or compact,delete",
				   c->path, t->name);
	snprintf(t->cleanup, sizeof t->cleanup, "%s", cp);
	return 0;
}

int topics_plan(struct conf *c, struct topic_plan *p, char *errstr, size_t errstr_size)
{
	struct conf_section *s = conf_section(c, "topics", NULL);
	int64_t parts, rf, ret, sparts, sret;
	const char *cleanup;
	char *events = NULL, *save = NULL;
	int raw;

	memset(p, 0, sizeof *p);
	if (conf_int(c, s, "partitions", 12, 1, 10000, &parts, errstr, errstr_size) ||
	    conf_int(c, s, "replication.factor", 1, 1, 32, &rf, errstr, errstr_size) ||
	    conf_duration_ms(c, s, "retention", 7LL * 86400000, &ret, errstr, errstr_size) ||
	    conf_int(c, s, "state.partitions", 3, 1, 10000, &sparts, errstr, errstr_size) ||
	    conf_duration_ms(c, s, "state.retention", 7LL * 86400000, &sret, errstr, errstr_size) ||
	    conf_bool(c, s, "raw", 0, &raw, errstr, errstr_size))
		return -1;
	cleanup = conf_str(s, "cleanup.policy", "delete");
	p->raw = raw;
	snprintf(p->prefix, sizeof p->prefix, "%s", conf_str(s, "prefix", "healthcare."));
	snprintf(p->deadletter, sizeof p->deadletter, "%s",
		 conf_str(s, "deadletter", "healthcare.deadletter"));
	snprintf(p->raw_hl7v2, sizeof p->raw_hl7v2, "%s",
		 conf_str(s, "raw.hl7v2", "healthcare.raw.hl7v2"));
	snprintf(p->raw_fhir, sizeof p->raw_fhir, "%s", conf_str(s, "raw.fhir", "healthcare.raw.fhir"));
	snprintf(p->state, sizeof p->state, "%s", conf_str(s, "state", "hl7bridge.state"));

	events = strdup(conf_str(s, "events", default_events));
	if (!events)
		goto oom;
	for (char *tok = strtok_r(events, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char name[TOPICS_NAME_MAX];
		struct topic_spec *t;
		while (isspace((unsigned char)*tok))
			tok++;
		for (char *e = tok + strlen(tok); e > tok && isspace((unsigned char)e[-1]);)
			*--e = '\0';
		if (!*tok)
			continue;
		snprintf(name, sizeof name, "%s%s", p->prefix, tok);
		if (!(t = add(p, name, TOPIC_EVENT)))
			goto oom;
		if (settle(c, t, parts, rf, ret, cleanup, errstr, errstr_size))
			goto fail;
	}
	{
		struct topic_spec *t = add(p, p->deadletter, TOPIC_DEADLETTER);
		if (!t)
			goto oom;
		if (settle(c, t, parts, rf, ret, cleanup, errstr, errstr_size))
			goto fail;
	}
	if (raw) {
		const char *names[] = { p->raw_hl7v2, p->raw_fhir };
		for (size_t i = 0; i < HB_ARRAY_LEN(names); i++) {
			struct topic_spec *t = add(p, names[i], TOPIC_RAW);
			if (!t)
				goto oom;
			if (settle(c, t, parts, rf, ret, cleanup, errstr, errstr_size))
				goto fail;
		}
	}
	{
		/* The ledger: compacted so the newest record per key survives, and
		 * deleted after the retention so it stays small. */
		struct topic_spec *t = add(p, p->state, TOPIC_STATE);
		if (!t)
			goto oom;
		if (settle(c, t, sparts, rf, sret, "compact,delete", errstr, errstr_size))
			goto fail;
	}
	free(events);
	return 0;
oom:
	util_seterr(errstr, errstr_size, "out of memory");
fail:
	free(events);
	topics_plan_clear(p);
	return -1;
}

void topics_plan_clear(struct topic_plan *p)
{
	free(p->t);
	p->t = NULL;
	p->n = 0;
}

/* ---- against the cluster -------------------------------------------------- */

static rd_kafka_event_t *wait_result(rd_kafka_queue_t *q, int timeout_ms, char *errstr,
				     size_t errstr_size)
{
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms);
	if (!ev) {
		util_seterr(errstr, errstr_size, "the cluster did not answer within %d ms", timeout_ms);
		return NULL;
	}
	if (rd_kafka_event_error(ev)) {
		util_seterr(errstr, errstr_size, "%s", rd_kafka_event_error_string(ev));
		rd_kafka_event_destroy(ev);
		return NULL;
	}
	return ev;
}

static const rd_kafka_metadata_topic_t *find_md(const rd_kafka_metadata_t *md, const char *name)
{
	for (int i = 0; i < md->topic_cnt; i++)
		if (strcmp(md->topics[i].topic, name) == 0 &&
		    md->topics[i].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
			return &md->topics[i];
	return NULL;
}

static int create_missing(rd_kafka_t *rk, const struct topic_plan *p, const char *missing,
			  int timeout_ms, topics_report_cb report, void *opaque, char *errstr,
			  size_t errstr_size)
{
	rd_kafka_NewTopic_t **nt = calloc((size_t)p->n, sizeof *nt);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_event_t *ev = NULL;
	int n = 0, problems = 0;
	char err[512];

	if (!nt) {
		problems = util_seterr(errstr, errstr_size, "out of memory");
		goto out;
	}
	for (int i = 0; i < p->n; i++) {
		const struct topic_spec *t = &p->t[i];
		char ret[32];
		if (!missing[i])
			continue;
		nt[n] = rd_kafka_NewTopic_new(t->name, t->partitions, t->replication, err, sizeof err);
		if (!nt[n]) {
			report(opaque, t, 1, err);
			problems++;
			continue;
		}
		snprintf(ret, sizeof ret, "%lld", t->retention_ms);
		rd_kafka_NewTopic_set_config(nt[n], "retention.ms", ret);
		rd_kafka_NewTopic_set_config(nt[n], "cleanup.policy", t->cleanup);
		n++;
	}
	if (n > 0) {
		rd_kafka_CreateTopics(rk, nt, (size_t)n, NULL, q);
		ev = wait_result(q, timeout_ms, errstr, errstr_size);
		if (!ev) {
			problems = -1;
			goto out;
		}
		size_t cnt;
		const rd_kafka_topic_result_t **res =
			rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
		for (size_t r = 0; r < cnt; r++) {
			const char *name = rd_kafka_topic_result_name(res[r]);
			for (int i = 0; i < p->n; i++) {
				if (strcmp(p->t[i].name, name) != 0)
					continue;
				rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[r]);
				if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
					/* created a moment ago, not yet in our metadata */
					report(opaque, &p->t[i], 0, "exists");
				} else if (e) {
					report(opaque, &p->t[i], 1, rd_kafka_topic_result_error_string(res[r]));
					problems++;
				} else {
					report(opaque, &p->t[i], 0, "created");
				}
			}
		}
	}
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	for (int i = 0; i < n; i++)
		rd_kafka_NewTopic_destroy(nt[i]);
	free(nt);
	rd_kafka_queue_destroy(q);
	return problems;
}

/* Compare retention.ms and cleanup.policy of existing topics. */
static int check_configs(rd_kafka_t *rk, const struct topic_plan *p, const char *exists,
			 int timeout_ms, topics_report_cb report, void *opaque, char *errstr,
			 size_t errstr_size)
{
	rd_kafka_ConfigResource_t **cr = calloc((size_t)p->n, sizeof *cr);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_event_t *ev = NULL;
	int n = 0, problems = 0;

	if (!cr) {
		problems = util_seterr(errstr, errstr_size, "out of memory");
		goto out;
	}
	for (int i = 0; i < p->n; i++)
		if (exists[i])
			cr[n++] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, p->t[i].name);
	if (n == 0)
		goto out;
	rd_kafka_DescribeConfigs(rk, cr, (size_t)n, NULL, q);
	ev = wait_result(q, timeout_ms, errstr, errstr_size);
	if (!ev) {
		problems = -1;
		goto out;
	}
	size_t rcnt;
	const rd_kafka_ConfigResource_t **res = rd_kafka_DescribeConfigs_result_resources(
		rd_kafka_event_DescribeConfigs_result(ev), &rcnt);
	for (size_t r = 0; r < rcnt; r++) {
		const struct topic_spec *t = NULL;
		for (int i = 0; i < p->n; i++)
			if (strcmp(p->t[i].name, rd_kafka_ConfigResource_name(res[r])) == 0)
				t = &p->t[i];
		if (!t)
			continue;
		size_t ecnt;
		const rd_kafka_ConfigEntry_t **ent = rd_kafka_ConfigResource_configs(res[r], &ecnt);
		for (size_t e = 0; e < ecnt; e++) {
			const char *name = rd_kafka_ConfigEntry_name(ent[e]);
			const char *val = rd_kafka_ConfigEntry_value(ent[e]);
			char want[32], msg[256];
			if (!val)
				continue;
			if (strcmp(name, "retention.ms") == 0) {
				snprintf(want, sizeof want, "%lld", t->retention_ms);
				if (strcmp(val, want) != 0) {
					snprintf(msg, sizeof msg, "retention.ms is %s, the configuration says %s", val, want);
					report(opaque, t, 1, msg);
					problems++;
				}
			} else if (strcmp(name, "cleanup.policy") == 0) {
				/* Kafka may list "compact,delete" as "delete,compact". */
				int same = strcmp(val, t->cleanup) == 0 ||
					   (strstr(val, "compact") && strstr(val, "delete") &&
					    strcmp(t->cleanup, "compact,delete") == 0);
				if (!same) {
					snprintf(msg, sizeof msg, "cleanup.policy is %s, the configuration says %s",
						 val, t->cleanup);
					report(opaque, t, 1, msg);
					problems++;
				}
			}
		}
	}
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	for (int i = 0; i < n; i++)
		rd_kafka_ConfigResource_destroy(cr[i]);
	free(cr);
	rd_kafka_queue_destroy(q);
	return problems;
}

/* Wait until every topic in `which` has metadata with leaders, so a
 * producer started right after does not race the topics' creation. */
static int wait_visible(rd_kafka_t *rk, const struct topic_plan *p, const char *which,
			int timeout_ms)
{
	int64_t deadline = util_mono_ms() + timeout_ms;
	for (;;) {
		const rd_kafka_metadata_t *md = NULL;
		int ready = 1;
		if (rd_kafka_metadata(rk, 1, NULL, &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
			ready = 0;
		} else {
			for (int i = 0; i < p->n && ready; i++) {
				const rd_kafka_metadata_topic_t *mt;
				if (!which[i])
					continue;
				mt = find_md(md, p->t[i].name);
				ready = mt && mt->err == 0 && mt->partition_cnt > 0;
				for (int k = 0; ready && k < mt->partition_cnt; k++)
					ready = mt->partitions[k].leader >= 0;
			}
		}
		if (md)
			rd_kafka_metadata_destroy(md);
		if (ready)
			return 0;
		if (util_mono_ms() > deadline)
			return -1;
		usleep(100000);
	}
}

int topics_apply(const rd_kafka_conf_t *kc, const struct topic_plan *p, int create, int timeout_ms,
		 topics_report_cb report, void *opaque, char *errstr, size_t errstr_size)
{
	char err[512];
	rd_kafka_t *rk = kconf_client_take(RD_KAFKA_PRODUCER, rd_kafka_conf_dup(kc), err, sizeof err);
	const rd_kafka_metadata_t *md = NULL;
	char *missing = calloc((size_t)p->n + 1, 1), *exists = calloc((size_t)p->n + 1, 1);
	int problems = 0, r;
	rd_kafka_resp_err_t merr;

	if (!rk) {
		util_seterr(errstr, errstr_size, "%s", err);
		problems = -1;
		goto out;
	}
	if (!missing || !exists) {
		problems = util_seterr(errstr, errstr_size, "out of memory");
		goto out;
	}
	merr = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
	if (merr) {
		util_seterr(errstr, errstr_size, "cannot read the cluster's metadata: %s",
			    rd_kafka_err2str(merr));
		problems = -1;
		goto out;
	}
	for (int i = 0; i < p->n; i++) {
		const struct topic_spec *t = &p->t[i];
		const rd_kafka_metadata_topic_t *mt = find_md(md, t->name);
		char msg[256];
		if (!mt) {
			missing[i] = 1;
			if (!create) {
				report(opaque, t, 1, "does not exist");
				problems++;
			}
			continue;
		}
		exists[i] = 1;
		report(opaque, t, 0, "exists");
		if (mt->partition_cnt != t->partitions) {
			snprintf(msg, sizeof msg, "has %d partitions, the configuration says %d",
				 mt->partition_cnt, t->partitions);
			report(opaque, t, 1, msg);
			problems++;
		}
		if (mt->partition_cnt > 0 && mt->partitions[0].replica_cnt != t->replication) {
			snprintf(msg, sizeof msg, "has replication factor %d, the configuration says %d",
				 mt->partitions[0].replica_cnt, t->replication);
			report(opaque, t, 1, msg);
			problems++;
		}
	}
	if (create) {
		r = create_missing(rk, p, missing, timeout_ms, report, opaque, errstr, errstr_size);
		if (r < 0) {
			problems = -1;
			goto out;
		}
		problems += r;
		if (wait_visible(rk, p, missing, timeout_ms) != 0) {
			util_seterr(errstr, errstr_size,
				    "created topics have no partition leaders after %d ms", timeout_ms);
			problems = -1;
			goto out;
		}
	}
	r = check_configs(rk, p, exists, timeout_ms, report, opaque, errstr, errstr_size);
	problems = r < 0 ? -1 : problems + r;
out:
	if (md)
		rd_kafka_metadata_destroy(md);
	if (rk)
		rd_kafka_destroy(rk);
	free(missing);
	free(exists);
	return problems;
}

#include "publish/kconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

char *kconf_get(const rd_kafka_conf_t *kc, const char *name)
{
	size_t sz = 0;
	char *v;
	if (rd_kafka_conf_get(kc, name, NULL, &sz) != RD_KAFKA_CONF_OK || sz == 0)
		return strdup("");
	v = malloc(sz);
	if (v && rd_kafka_conf_get(kc, name, v, &sz) != RD_KAFKA_CONF_OK)
		v[0] = '\0';
	return v;
}

static int env_set(rd_kafka_conf_t *kc, struct conf_section *s, const char *prop,
		   const char *value, const char *var, char *errstr, size_t errstr_size)
{
	char err[512];
	if (!value || !*value || (s && conf_kv(s, prop)))
		return 0; /* the file wins */
	if (rd_kafka_conf_set(kc, prop, value, err, sizeof err) != RD_KAFKA_CONF_OK)
		return util_seterr(errstr, errstr_size, "%s (from %s): %s", prop, var, err);
	return 0;
}

rd_kafka_conf_t *kconf_build(const struct conf *c, struct conf_section *s, int *embedded,
			     char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *kc = rd_kafka_conf_new();
	const char *user = getenv("KAFKA_USERNAME"), *pass = getenv("KAFKA_PASSWORD");
	const char *use_ssl = getenv("KAFKA_USE_SSL");
	int ssl = use_ssl && (strcasecmp(use_ssl, "true") == 0 || strcmp(use_ssl, "1") == 0);
	char err[512];

	*embedded = 0;
	if (!kc) {
		util_seterr(errstr, errstr_size, "out of memory");
		return NULL;
	}
	/* Our defaults first; the file and the environment override them. */
	rd_kafka_conf_set(kc, "client.id", "hl7bridge", NULL, 0);

	for (int i = 0; s && i < s->n; i++) {
		struct conf_kv *kv = &s->kv[i];
		kv->used = 1;
		if (strcmp(kv->key, "bootstrap.servers") == 0 && strcmp(kv->value, "embedded") == 0) {
			*embedded = 1;
			continue;
		}
		if (rd_kafka_conf_set(kc, kv->key, kv->value, err, sizeof err) != RD_KAFKA_CONF_OK) {
			util_seterr(errstr, errstr_size, "%s:%d: %s: %s", c ? c->path : "?", kv->line,
				    kv->key, err);
			goto fail;
		}
	}
	if (!*embedded && !(s && conf_kv(s, "bootstrap.servers"))) {
		const char *b = getenv("KAFKA_BROKERS");
		if (b && strcmp(b, "embedded") == 0)
			*embedded = 1;
		else if (env_set(kc, s, "bootstrap.servers", b, "KAFKA_BROKERS", errstr, errstr_size))
			goto fail;
	}
	if (env_set(kc, s, "client.id", getenv("KAFKA_CLIENT_ID"), "KAFKA_CLIENT_ID", errstr,
		    errstr_size))
		goto fail;
	if (user && *user && pass) {
		const char *mech = getenv("KAFKA_SASL_MECHANISM");
		if (env_set(kc, s, "security.protocol", ssl ? "SASL_SSL" : "SASL_PLAINTEXT",
			    "KAFKA_USE_SSL", errstr, errstr_size) ||
		    env_set(kc, s, "sasl.mechanism", mech && *mech ? mech : "PLAIN",
			    "KAFKA_SASL_MECHANISM", errstr, errstr_size) ||
		    env_set(kc, s, "sasl.username", user, "KAFKA_USERNAME", errstr, errstr_size) ||
		    env_set(kc, s, "sasl.password", pass, "KAFKA_PASSWORD", errstr, errstr_size))
			goto fail;
	} else if (ssl) {
		if (env_set(kc, s, "security.protocol", "SSL", "KAFKA_USE_SSL", errstr, errstr_size))
			goto fail;
	}
	if (!*embedded) {
		char *b = kconf_get(kc, "bootstrap.servers");
		int empty = !b || !*b;
		free(b);
		if (empty) {
			util_seterr(errstr, errstr_size,
				    "no Kafka brokers: set bootstrap.servers in [kafka] or KAFKA_BROKERS "
				    "(or 'embedded' to try hl7bridge without a cluster)");
			goto fail;
		}
	}
	return kc;
fail:
	rd_kafka_conf_destroy(kc);
	return NULL;
}

rd_kafka_t *kconf_client_take(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
			      size_t errstr_size)
{
	rd_kafka_t *rk;
	if (!conf) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	rk = rd_kafka_new(type, conf, errstr, errstr_size);
	if (!rk)
		rd_kafka_conf_destroy(conf);
	return rk;
}

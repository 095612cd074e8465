#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "publish/kconf.h"

static char err[512];

static void clear_env(void)
{
	const char *vars[] = { "KAFKA_BROKERS", "KAFKA_CLIENT_ID", "KAFKA_USERNAME", "KAFKA_PASSWORD",
			       "KAFKA_USE_SSL", "KAFKA_SASL_MECHANISM" };
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		unsetenv(vars[i]);
}

static void expect_prop(rd_kafka_conf_t *kc, const char *name, const char *want)
{
	char *v = kconf_get(kc, name);
	cr_expect_str_eq(v, want, "%s", name);
	free(v);
}

Test(kconf, quick_start_variables, .init = clear_env)
{
	int emb;
	setenv("KAFKA_BROKERS", "b1:9092,b2:9092", 1);
	setenv("KAFKA_CLIENT_ID", "healthcare-events-client", 1);
	setenv("KAFKA_USERNAME", "user", 1);
	setenv("KAFKA_PASSWORD", "secret", 1);
	setenv("KAFKA_USE_SSL", "true", 1);
	rd_kafka_conf_t *kc = kconf_build(NULL, NULL, &emb, err, sizeof err);
	cr_assert_not_null(kc, "%s", err);
	cr_assert_eq(emb, 0);
	expect_prop(kc, "bootstrap.servers", "b1:9092,b2:9092");
	expect_prop(kc, "client.id", "healthcare-events-client");
	expect_prop(kc, "security.protocol", "sasl_ssl");
	expect_prop(kc, "sasl.mechanisms", "PLAIN");
	expect_prop(kc, "sasl.username", "user");
	rd_kafka_conf_destroy(kc);

	setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", 1);
	unsetenv("KAFKA_USE_SSL");
	kc = kconf_build(NULL, NULL, &emb, err, sizeof err);
	cr_assert_not_null(kc, "%s", err);
	expect_prop(kc, "security.protocol", "sasl_plaintext");
	expect_prop(kc, "sasl.mechanisms", "SCRAM-SHA-512");
	rd_kafka_conf_destroy(kc);
}

Test(kconf, file_wins_and_passes_through, .init = clear_env)
{
	int emb;
	setenv("KAFKA_BROKERS", "from-env:9092", 1);
	struct conf *c = conf_parse("[kafka]\nbootstrap.servers = file:9092\nsocket.timeout.ms = 1234\n",
				    "k.conf", err, sizeof err);
	rd_kafka_conf_t *kc = kconf_build(c, conf_section(c, "kafka", NULL), &emb, err, sizeof err);
	cr_assert_not_null(kc, "%s", err);
	expect_prop(kc, "bootstrap.servers", "file:9092");
	expect_prop(kc, "socket.timeout.ms", "1234");
	cr_assert_eq(conf_unused(c, err, sizeof err), 0);
	rd_kafka_conf_destroy(kc);
	conf_free(c);
}

Test(kconf, errors_and_embedded, .init = clear_env)
{
	int emb;
	struct conf *c = conf_parse("[kafka]\nbootstrap.servers = x:1\nno.such.property = 1\n", "k.conf",
				    err, sizeof err);
	cr_assert_null(kconf_build(c, conf_section(c, "kafka", NULL), &emb, err, sizeof err));
	cr_assert(strncmp(err, "k.conf:3: no.such.property:", 27) == 0, "%s", err);
	conf_free(c);

	cr_assert_null(kconf_build(NULL, NULL, &emb, err, sizeof err));
	cr_assert(strstr(err, "no Kafka brokers") != NULL, "%s", err);

	c = conf_parse("[kafka]\nbootstrap.servers = embedded\n", "k.conf", err, sizeof err);
	rd_kafka_conf_t *kc = kconf_build(c, conf_section(c, "kafka", NULL), &emb, err, sizeof err);
	cr_assert_not_null(kc, "%s", err);
	cr_assert_eq(emb, 1);
	rd_kafka_conf_destroy(kc);
	conf_free(c);
}

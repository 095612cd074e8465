/*
 * daemon_conf — the daemon's settings from the configuration file: [bridge],
 * [hl7], [publisher], [ledger], [registry], [topics], [http], every
 * [listener NAME], every [drop NAME] and every [fhir NAME]. conf/hl7bridge.conf documents each key. Unknown keys are
 * errors (file:line), so a typo never silently keeps a default.
 */
#ifndef HB_DAEMON_CONF_H
#define HB_DAEMON_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "ingest/fhir_http.h"
#include "ingest/filedrop.h"
#include "ingest/listener.h"
#include "log.h"
#include "obs/http.h"
#include "pipeline.h"
#include "publish/pub.h"
#include "publish/topics.h"

#define DAEMON_MAX_LISTENERS 16
#define DAEMON_MAX_DROPS 16
#define DAEMON_MAX_FHIR 8

struct daemon_settings {
	char instance[64];
	char mappings[512];
	char schemas[512];
	enum log_level log_level;
	enum log_format log_format;
	int64_t shutdown_timeout_ms;
	char user[64], group[64];

	struct pub_conf pub;
	int64_t ledger_window_ms;
	int64_t ledger_rebuild_timeout_ms;
	int ledger_shared;             /* [ledger] shared: tail + barrier (ledger_tail.h) */
	int64_t heartbeat_ms;          /* [ledger] heartbeat: hb/<instance> records, 0 = off */
	int64_t takeover_after_ms;     /* [bridge] takeover.after: 0 = off */

	struct pipeline_conf pl;
	struct topic_plan topics;
	int create_topics;

	char registry_url[512];
	char registry_user[128];
	char registry_password[256];

	struct lsn_conf lsn[DAEMON_MAX_LISTENERS];
	int nlsn;

	struct drop_conf drops[DAEMON_MAX_DROPS];
	int ndrops;
	struct http_conf http;

	struct fhttp_conf fhir[DAEMON_MAX_FHIR];
	int nfhir;
};

/* Fill s from c (after kconf_build has consumed [kafka]). Returns 0, or -1
 * with "file:line: ..." in errstr. Call daemon_settings_clear() after. */
int daemon_settings_load(struct conf *c, struct daemon_settings *s, char *errstr,
			 size_t errstr_size);
void daemon_settings_clear(struct daemon_settings *s);

/* The one validation `run` and `check` share: [kafka] through kconf_build,
 * then daemon_settings_load (every other section, unknown keys, and the
 * combinations refused at start). On success *kc is the Kafka configuration
 * (caller destroys it; pass NULL to have it destroyed here) and s must be
 * cleared. Returns 0, or -1 with "file:line: ..." in errstr. */
struct rd_kafka_conf_s;
int daemon_conf_validate(struct conf *c, struct daemon_settings *s, struct rd_kafka_conf_s **kc,
			 int *embedded, char *errstr, size_t errstr_size);

/* "host:port", "[v6]:port", ":port" or "port" → host (may be "") and port. */
int daemon_parse_bind(const char *bind, char *host, size_t host_size, char *port,
		      size_t port_size);

#endif

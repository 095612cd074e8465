#include "daemon_conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/tls_subject.h"
#include "cli.h"
#include "parse/hl7.h"
#include "publish/kconf.h"
#include "util.h"

int daemon_parse_bind(const char *bind, char *host, size_t host_size, char *port,
		      size_t port_size)
{
	const char *colon;
	if (bind[0] == '[') {
		const char *end = strchr(bind, ']');
		if (!end || end[1] != ':')
			return -1;
		snprintf(host, host_size, "%.*s", (int)(end - bind - 1), bind + 1);
		snprintf(port, port_size, "%s", end + 2);
	} else if ((colon = strrchr(bind, ':'))) {
		snprintf(host, host_size, "%.*s", (int)(colon - bind), bind);
		snprintf(port, port_size, "%s", colon + 1);
	} else {
		host[0] = '\0';
		snprintf(port, port_size, "%s", bind);
	}
	if (!port[0] || strspn(port, "0123456789") != strlen(port) || atoi(port) > 65535)
		return -1;
	return 0;
}

static int copy_str(char *dst, size_t cap, const char *src, const struct conf *c,
		    struct conf_section *s, const char *key, char *errstr, size_t errstr_size)
{
	if (strlen(src) >= cap) {
		struct conf_kv *kv = conf_kv(s, key);
		return util_seterr(errstr, errstr_size, "%s:%d: %s: longer than %zu characters",
				   c->path, kv ? kv->line : 0, key, cap - 1);
	}
	snprintf(dst, cap, "%s", src);
	return 0;
}

static int on_off(const struct conf *c, struct conf_section *s, const char *key, int def,
		  int *out, char *errstr, size_t errstr_size)
{
	return conf_bool(c, s, key, def, out, errstr, errstr_size);
}

static int load_listener(struct conf *c, struct conf_section *s, struct lsn_conf *l,
			 char *errstr, size_t errstr_size)
{
	int64_t v;
	const char *bind = conf_str(s, "bind", "127.0.0.1:2575");
	lsn_conf_defaults(l);
	snprintf(l->name, sizeof l->name, "%s", s->name ? s->name : "mllp");
	if (daemon_parse_bind(bind, l->host, sizeof l->host, l->port, sizeof l->port) != 0) {
		struct conf_kv *kv = conf_kv(s, "bind");
		return util_seterr(errstr, errstr_size,
				   "%s:%d: bind: expected host:port, [ipv6]:port or port, got '%s'",
				   c->path, kv ? kv->line : s->line, bind);
	}
	if (on_off(c, s, "tls", 0, &l->tls, errstr, errstr_size) ||
	    copy_str(l->tls_conf.cert, sizeof l->tls_conf.cert, conf_str(s, "tls.cert", ""), c, s,
		     "tls.cert", errstr, errstr_size) ||
	    copy_str(l->tls_conf.key, sizeof l->tls_conf.key, conf_str(s, "tls.key", ""), c, s,
		     "tls.key", errstr, errstr_size) ||
	    copy_str(l->tls_conf.ca, sizeof l->tls_conf.ca, conf_str(s, "tls.ca", ""), c, s, "tls.ca",
		     errstr, errstr_size) ||
	    on_off(c, s, "tls.verify.client", 0, &l->tls_conf.verify_client, errstr, errstr_size) ||
	    copy_str(l->tls_conf.ciphers, sizeof l->tls_conf.ciphers, conf_str(s, "tls.ciphers", ""),
		     c, s, "tls.ciphers", errstr, errstr_size) ||
	    copy_str(l->tls_conf.allowed_subjects, sizeof l->tls_conf.allowed_subjects,
		     conf_str(s, "tls.allowed.subjects", ""), c, s, "tls.allowed.subjects", errstr,
		     errstr_size))
		return -1;
	if (l->tls_conf.allowed_subjects[0]) {
		struct conf_kv *kv = conf_kv(s, "tls.allowed.subjects");
		char why[512];
		if (tls_subjects_check(l->tls_conf.allowed_subjects, why, sizeof why) != 0)
			return util_seterr(errstr, errstr_size, "%s:%d: [listener %s] %s", c->path,
					   kv ? kv->line : s->line, l->name, why);
		if (!l->tls || !l->tls_conf.verify_client)
			return util_seterr(errstr, errstr_size,
					   "%s:%d: [listener %s] tls.allowed.subjects needs tls = on and "
					   "tls.verify.client = on (no client certificate is asked for)",
					   c->path, kv ? kv->line : s->line, l->name);
	}
	if (l->tls && (!l->tls_conf.cert[0] || !l->tls_conf.key[0]))
		return util_seterr(errstr, errstr_size, "%s:%d: [listener %s]: tls = on needs tls.cert and tls.key",
				   c->path, s->line, l->name);
	if (conf_int(c, s, "max.connections", l->max_connections, 1, 100000, &v, errstr, errstr_size))
		return -1;
	l->max_connections = (int)v;
	if (conf_int(c, s, "max.connections.per.peer", l->max_connections_per_peer, 0, 100000, &v,
		     errstr, errstr_size))
		return -1;
	l->max_connections_per_peer = (int)v;
	if (conf_duration_ms(c, s, "idle.timeout", l->idle_timeout_ms, &l->idle_timeout_ms, errstr,
			     errstr_size) ||
	    conf_duration_ms(c, s, "handshake.timeout", l->handshake_timeout_ms,
			     &l->handshake_timeout_ms, errstr, errstr_size) ||
	    conf_duration_ms(c, s, "frame.timeout", l->frame_timeout_ms, &l->frame_timeout_ms, errstr,
			     errstr_size))
		return -1;
	if (conf_size(c, s, "max.frame.size", (int64_t)l->max_frame, &v, errstr, errstr_size))
		return -1;
	l->max_frame = (size_t)v;
	if (conf_int(c, s, "max.pending", l->max_pending, 1, 100000, &v, errstr, errstr_size))
		return -1;
	l->max_pending = (int)v;
	if (conf_size(c, s, "max.write.buffer", (int64_t)l->max_write_buffer, &v, errstr, errstr_size))
		return -1;
	l->max_write_buffer = (size_t)v;
	return 0;
}

/* [fhir NAME]: the [listener] keys (TLS, limits) with HTTP's names and
 * defaults, the base path and bearer tokens. */
static int load_fhir(struct conf *c, struct conf_section *s, struct fhttp_conf *f, char *errstr,
		     size_t errstr_size)
{
	int64_t v;
	struct fhttp_conf def;
	fhttp_conf_defaults(&def);
	fhttp_conf_defaults(f);
	if (load_listener(c, s, &f->lsn, errstr, errstr_size) != 0)
		return -1;
	f->lsn.http = 1;
	f->lsn.max_header = def.lsn.max_header;
	if (!conf_kv(s, "bind"))
		snprintf(f->lsn.port, sizeof f->lsn.port, "%s", def.lsn.port);
	if (!conf_kv(s, "max.connections"))
		f->lsn.max_connections = def.lsn.max_connections;
	if (!conf_kv(s, "max.pending"))
		f->lsn.max_pending = def.lsn.max_pending;
	if (conf_size(c, s, "max.body.size", conf_kv(s, "max.frame.size") ? (int64_t)f->lsn.max_frame
									     : (int64_t)def.lsn.max_frame,
		      &v, errstr, errstr_size))
		return -1;
	f->lsn.max_frame = (size_t)v;
	if (conf_size(c, s, "max.header.size", (int64_t)f->lsn.max_header, &v, errstr, errstr_size))
		return -1;
	f->lsn.max_header = (size_t)v;
	if (conf_duration_ms(c, s, "request.timeout", f->lsn.frame_timeout_ms, &f->lsn.frame_timeout_ms,
			     errstr, errstr_size) ||
	    copy_str(f->base, sizeof f->base, conf_str(s, "base", def.base), c, s, "base", errstr,
		     errstr_size))
		return -1;
	if (f->base[0] != '/')
		return util_seterr(errstr, errstr_size, "%s:%d: [fhir %s] base: must start with /",
				   c->path, s->line, f->lsn.name);
	if (conf_int(c, s, "retry.after", f->retry_after_s, 1, 3600, &v, errstr, errstr_size) ||
	    conf_duration_ms(c, s, "unavailable.after", f->unavailable_after_ms,
			     &f->unavailable_after_ms, errstr, errstr_size))
		return -1;
	f->retry_after_s = (int)v;
	/* tokens: "token" (blank-separated; use ${VAR}) and "token.file" (one per line) */
	char toks[4096];
	const char *tf = conf_str(s, "token.file", "");
	snprintf(toks, sizeof toks, "%s", conf_str(s, "token", ""));
	if (tf[0]) {
		FILE *fp = fopen(tf, "r");
		size_t l = strlen(toks);
		if (!fp)
			return util_seterr(errstr, errstr_size, "%s:%d: [fhir %s] token.file: cannot read %s",
					   c->path, s->line, f->lsn.name, tf);
		if (l + 1 < sizeof toks) {
			toks[l++] = '\n';
			l += fread(toks + l, 1, sizeof toks - 1 - l, fp);
			toks[l] = '\0';
		}
		fclose(fp);
	}
	for (char *save = NULL, *t = strtok_r(toks, " \t\r\n", &save); t;
	     t = strtok_r(NULL, " \t\r\n", &save)) {
		if (f->ntokens == FHTTP_MAX_TOKENS || strlen(t) >= sizeof f->tokens[0])
			return util_seterr(errstr, errstr_size,
					   "%s:%d: [fhir %s]: at most %d tokens of up to %zu characters",
					   c->path, s->line, f->lsn.name, FHTTP_MAX_TOKENS,
					   sizeof f->tokens[0] - 1);
		snprintf(f->tokens[f->ntokens++], sizeof f->tokens[0], "%s", t);
	}
	return 0;
}

static int load_drop(struct conf *c, struct conf_section *s, const struct daemon_settings *ds,
		     struct drop_conf *d, char *errstr, size_t errstr_size)
{
	int64_t v;
	const char *u;
	drop_conf_defaults(d);
	snprintf(d->name, sizeof d->name, "%s", s->name);
	if (!conf_kv(s, "path"))
		return util_seterr(errstr, errstr_size, "%s:%d: [drop %s] needs a path", c->path, s->line,
				   s->name);
	if (copy_str(d->path, sizeof d->path, conf_str(s, "path", ""), c, s, "path", errstr,
		     errstr_size) ||
	    copy_str(d->mappings, sizeof d->mappings, conf_str(s, "mappings", ds->mappings), c, s,
		     "mappings", errstr, errstr_size) ||
	    copy_str(d->schemas, sizeof d->schemas, conf_str(s, "schemas", ds->schemas), c, s,
		     "schemas", errstr, errstr_size) ||
	    on_off(c, s, "deadletter", ds->pl.deadletter, &d->deadletter, errstr, errstr_size))
		return -1;
	u = conf_str(s, "unmatched", NULL);
	if (u) {
		int pol = map_unmatched_policy_parse(u);
		if (pol < 0)
			return util_seterr(errstr, errstr_size,
					   "%s:%d: unmatched: expected filter, reject or deadletter", c->path,
					   conf_kv(s, "unmatched")->line);
		d->unmatched = (enum map_unmatched_policy)pol;
	} else {
		d->unmatched = ds->pl.unmatched;
	}
	if (conf_size(c, s, "max.file.size", d->max_file_size, &d->max_file_size, errstr, errstr_size) ||
	    on_off(c, s, "allow.hardlinks", d->allow_hardlinks, &d->allow_hardlinks, errstr,
		   errstr_size) ||
	    on_off(c, s, "message.dedup", d->msg_dedup, &d->msg_dedup, errstr, errstr_size))
		return -1;
	if (conf_int(c, s, "max.messages.per.transaction", d->max_per_txn, 1, 100000, &v, errstr,
		     errstr_size))
		return -1;
	d->max_per_txn = (int)v;
	if (conf_int(c, s, "max.inflight", d->max_inflight, 1, 1000, &v, errstr, errstr_size))
		return -1;
	d->max_inflight = (int)v;
	if (conf_int(c, s, "threads", d->threads, 1, 64, &v, errstr, errstr_size))
		return -1;
	d->threads = (int)v;
	if (conf_duration_ms(c, s, "quiet.period", d->quiet_ms, &d->quiet_ms, errstr, errstr_size) ||
	    conf_duration_ms(c, s, "rescan", d->rescan_ms, &d->rescan_ms, errstr, errstr_size) ||
	    conf_duration_ms(c, s, "progress.interval", d->progress_ms, &d->progress_ms, errstr,
			     errstr_size))
		return -1;
	return 0;
}

/* [http]: the operators' endpoints (metrics, health, status, playground). */
static int load_http(struct conf *c, struct conf_section *s, struct http_conf *h, char *errstr,
		     size_t errstr_size)
{
	const char *bind = conf_str(s, "bind", "127.0.0.1:9275");
	const char *allow = conf_str(s, "playground.allow", "loopback");
	int line = s ? s->line : 0;
	int64_t n;

	http_conf_defaults(h);
	if (strcmp(bind, "off") == 0) {
		h->enabled = 0;
	} else if (daemon_parse_bind(bind, h->host, sizeof h->host, h->port, sizeof h->port) != 0) {
		struct conf_kv *kv = conf_kv(s, "bind");
		return util_seterr(errstr, errstr_size,
				   "%s:%d: [http] bind: expected host:port, [ipv6]:port, port or off, got '%s'",
				   c->path, kv ? kv->line : line, bind);
	}
	if (copy_str(h->tls_cert, sizeof h->tls_cert, conf_str(s, "tls.cert", ""), c, s, "tls.cert",
		     errstr, errstr_size) ||
	    copy_str(h->tls_key, sizeof h->tls_key, conf_str(s, "tls.key", ""), c, s, "tls.key", errstr,
		     errstr_size) ||
	    copy_str(h->token, sizeof h->token, conf_str(s, "token", ""), c, s, "token", errstr,
		     errstr_size) ||
	    on_off(c, s, "playground", 0, &h->playground, errstr, errstr_size))
		return -1;
	if (!h->tls_cert[0] != !h->tls_key[0])
		return util_seterr(errstr, errstr_size, "%s:%d: [http] tls.cert and tls.key go together",
				   c->path, line);
	if (strcmp(allow, "any") == 0)
		h->playground_any = 1;
	else if (strcmp(allow, "loopback") != 0)
		return util_seterr(errstr, errstr_size,
				   "%s:%d: [http] playground.allow: expected loopback or any", c->path, line);
	if (conf_size(c, s, "playground.max.size", (int64_t)h->playground_max, &n, errstr, errstr_size))
		return -1;
	h->playground_max = (size_t)n;
	if (conf_int(c, s, "max.connections", h->max_connections, 1, 100000, &n, errstr, errstr_size))
		return -1;
	h->max_connections = (int)n;
	if (conf_int(c, s, "max.connections.per.ip", h->max_per_ip, 1, 100000, &n, errstr,
		     errstr_size))
		return -1;
	h->max_per_ip = (int)n;
	if (conf_int(c, s, "threads", h->threads, 1, 64, &n, errstr, errstr_size))
		return -1;
	h->threads = (int)n;
	if (conf_duration_ms(c, s, "idle.timeout", h->idle_timeout_ms, &h->idle_timeout_ms, errstr,
			     errstr_size) ||
	    conf_duration_ms(c, s, "request.timeout", h->request_timeout_ms, &h->request_timeout_ms,
			     errstr, errstr_size) ||
	    copy_str(h->allowed_hosts, sizeof h->allowed_hosts, conf_str(s, "allowed.hosts", ""), c, s,
		     "allowed.hosts", errstr, errstr_size))
		return -1;
	if (h->idle_timeout_ms < 1000 || h->request_timeout_ms < 1000)
		return util_seterr(errstr, errstr_size,
				   "%s:%d: [http] idle.timeout and request.timeout: at least 1s", c->path,
				   line);
	/* The playground shows the sample it was given back: opened to every
	 * address on a non-loopback socket, anyone who reaches the port could use
	 * it to read (and have) patient data. */
	if (h->enabled && h->playground && h->playground_any && !h->token[0] &&
	    !http_host_is_loopback(h->host))
		return util_seterr(errstr, errstr_size,
				   "%s:%d: [http] playground = on with playground.allow = any on %s:%s "
				   "serves patient samples to anyone who can reach the port: set [http] "
				   "token (and tls.cert/tls.key), bind to loopback, or use "
				   "playground.allow = loopback",
				   c->path, line, h->host[0] ? h->host : "*", h->port);
	return 0;
}

int daemon_settings_load(struct conf *c, struct daemon_settings *s, char *errstr,
			 size_t errstr_size)
{
	struct conf_section *b = conf_section(c, "bridge", NULL);
	struct conf_section *h = conf_section(c, "hl7", NULL);
	struct conf_section *p = conf_section(c, "publisher", NULL);
	struct conf_section *l = conf_section(c, "ledger", NULL);
	struct conf_section *r = conf_section(c, "registry", NULL);
	struct conf_section *t = conf_section(c, "topics", NULL);
	const char *v;
	int64_t n;
	const char *vformat;
	int format;

	memset(s, 0, sizeof *s);
	if (copy_str(s->instance, sizeof s->instance, conf_str(b, "instance", "hl7bridge"), c, b,
		     "instance", errstr, errstr_size) ||
	    copy_str(s->mappings, sizeof s->mappings,
		     conf_str(b, "mappings", cli_default_mappings()), c, b, "mappings", errstr,
		     errstr_size) ||
	    copy_str(s->schemas, sizeof s->schemas,
		     conf_str(b, "schemas", cli_default_schemas()), c, b, "schemas", errstr,
		     errstr_size) ||
	    copy_str(s->user, sizeof s->user, conf_str(b, "user", ""), c, b, "user", errstr,
		     errstr_size) ||
	    copy_str(s->group, sizeof s->group, conf_str(b, "group", ""), c, b, "group", errstr,
		     errstr_size))
		return -1;
	v = conf_str(b, "log.level", "info");
	if (log_level_parse(v, &s->log_level) != 0)
		return util_seterr(errstr, errstr_size, "%s: [bridge] log.level: expected error, warn, info or debug",
				   c->path);
	v = conf_str(b, "log.format", "text");
	if (log_format_parse(v, &s->log_format) != 0)
		return util_seterr(errstr, errstr_size, "%s: [bridge] log.format: expected text or json",
				   c->path);
	if (conf_duration_ms(c, b, "shutdown.timeout", 30000, &s->shutdown_timeout_ms, errstr,
			     errstr_size))
		return -1;
	vformat = conf_str(b, "value.format", "json");
	if ((format = evenc_format_parse(vformat)) < 0)
		return util_seterr(errstr, errstr_size,
				   "%s: [bridge] value.format: expected " EVENC_FORMAT_NAMES, c->path);

	/* pipeline */
	pub_conf_defaults(&s->pub);
	s->pl.instance = s->instance;
	s->pl.format = (enum evenc_format)format;
	v = conf_str(b, "unmatched", "filter");
	if ((n = map_unmatched_policy_parse(v)) < 0)
		return util_seterr(errstr, errstr_size,
				   "%s: [bridge] unmatched: expected filter, reject or deadletter", c->path);
	s->pl.unmatched = (enum map_unmatched_policy)n;
	if (on_off(c, b, "deadletter", 1, &s->pl.deadletter, errstr, errstr_size))
		return -1;
	if (conf_int(c, h, "max.segments", HL7_DEFAULT_MAX_SEGMENTS, 8, 1000000, &n, errstr,
		     errstr_size))
		return -1;
	s->pl.max_segments = (size_t)n;
	if (conf_size(c, h, "max.field.length", HL7_DEFAULT_MAX_FIELD_LEN, &n, errstr, errstr_size))
		return -1;
	s->pl.max_field_len = (size_t)n;

	/* topics */
	if (topics_plan(c, &s->topics, errstr, errstr_size) != 0)
		return -1;
	if (on_off(c, t, "create", 1, &s->create_topics, errstr, errstr_size))
		return -1;
	s->pl.deadletter_topic = s->topics.deadletter;
	s->pl.raw = s->topics.raw;
	s->pl.raw_topic = s->topics.raw_hl7v2;

	/* publisher and ledger */
	s->pub.instance = s->instance;
	s->pub.state_topic = s->topics.state;
	if (conf_int(c, p, "lanes", s->pub.lanes, 1, 64, &n, errstr, errstr_size))
		return -1;
	s->pub.lanes = (int)n;
	if (conf_int(c, p, "batch.max.messages", s->pub.batch_max_msgs, 1, 100000, &n, errstr,
		     errstr_size))
		return -1;
	s->pub.batch_max_msgs = (int)n;
	if (conf_size(c, p, "batch.max.bytes", (int64_t)s->pub.batch_max_bytes, &n, errstr, errstr_size))
		return -1;
	s->pub.batch_max_bytes = (size_t)n;
	if (conf_duration_ms(c, p, "linger", s->pub.linger_ms, &n, errstr, errstr_size))
		return -1;
	s->pub.linger_ms = (int)n;
	if (conf_int(c, p, "max.inflight", s->pub.max_inflight, 1, 10000000, &n, errstr, errstr_size))
		return -1;
	s->pub.max_inflight = (int)n;
	if (conf_duration_ms(c, p, "transaction.timeout", s->pub.txn_timeout_ms, &n, errstr,
			     errstr_size))
		return -1;
	s->pub.txn_timeout_ms = (int)n;
	if (conf_duration_ms(c, l, "window", 24LL * 3600 * 1000, &s->ledger_window_ms, errstr,
			     errstr_size) ||
	    conf_duration_ms(c, l, "rebuild.timeout", 60000, &s->ledger_rebuild_timeout_ms, errstr,
			     errstr_size))
		return -1;
	if (on_off(c, l, "shared", 1, &s->ledger_shared, errstr, errstr_size) ||
	    conf_duration_ms(c, l, "heartbeat", 5000, &s->heartbeat_ms, errstr, errstr_size))
		return -1;
	if (strcmp(conf_str(b, "takeover.after", "off"), "off") != 0 &&
	    conf_duration_ms(c, b, "takeover.after", 0, &s->takeover_after_ms, errstr, errstr_size))
		return -1;
	if (s->takeover_after_ms && (!s->ledger_shared || !s->heartbeat_ms))
		return util_seterr(errstr, errstr_size,
				   "%s: [bridge] takeover.after needs [ledger] shared = on and a heartbeat",
				   c->path);

	/* registry */
	if (copy_str(s->registry_url, sizeof s->registry_url, conf_str(r, "url", ""), c, r, "url",
		     errstr, errstr_size) ||
	    copy_str(s->registry_user, sizeof s->registry_user, conf_str(r, "username", ""), c, r,
		     "username", errstr, errstr_size) ||
	    copy_str(s->registry_password, sizeof s->registry_password, conf_str(r, "password", ""),
		     c, r, "password", errstr, errstr_size))
		return -1;
	if (evenc_format_needs_registry(s->pl.format) && !s->registry_url[0])
		return util_seterr(errstr, errstr_size,
				   "%s: value.format = %s needs [registry] url (or SCHEMA_REGISTRY_URL)",
				   c->path, vformat);

	if (load_http(c, conf_section(c, "http", NULL), &s->http, errstr, errstr_size) != 0)
		return -1;

	/* listeners */
	for (struct conf_section *ls = conf_next(c, "listener", NULL); ls;
	     ls = conf_next(c, "listener", ls)) {
		if (s->nlsn == DAEMON_MAX_LISTENERS)
			return util_seterr(errstr, errstr_size, "%s:%d: more than %d listeners", c->path,
					   ls->line, DAEMON_MAX_LISTENERS);
		if (!ls->name)
			return util_seterr(errstr, errstr_size, "%s:%d: a listener needs a name: [listener NAME]",
					   c->path, ls->line);
		if (load_listener(c, ls, &s->lsn[s->nlsn], errstr, errstr_size) != 0)
			return -1;
		s->nlsn++;
	}
	/* file drops */
	for (struct conf_section *dsn = conf_next(c, "drop", NULL); dsn; dsn = conf_next(c, "drop", dsn)) {
		if (s->ndrops == DAEMON_MAX_DROPS)
			return util_seterr(errstr, errstr_size, "%s:%d: more than %d drops", c->path,
					   dsn->line, DAEMON_MAX_DROPS);
		if (!dsn->name)
			return util_seterr(errstr, errstr_size, "%s:%d: a drop needs a name: [drop NAME]",
					   c->path, dsn->line);
		if (load_drop(c, dsn, s, &s->drops[s->ndrops], errstr, errstr_size) != 0)
			return -1;
		s->ndrops++;
	}
	/* FHIR over HTTP */
	for (struct conf_section *fs = conf_next(c, "fhir", NULL); fs; fs = conf_next(c, "fhir", fs)) {
		if (s->nfhir == DAEMON_MAX_FHIR)
			return util_seterr(errstr, errstr_size, "%s:%d: more than %d [fhir] listeners",
					   c->path, fs->line, DAEMON_MAX_FHIR);
		if (!fs->name)
			return util_seterr(errstr, errstr_size, "%s:%d: a FHIR listener needs a name: [fhir NAME]",
					   c->path, fs->line);
		if (load_fhir(c, fs, &s->fhir[s->nfhir], errstr, errstr_size) != 0)
			return -1;
		s->nfhir++;
	}
	return conf_unused(c, errstr, errstr_size);
}

void daemon_settings_clear(struct daemon_settings *s)
{
	topics_plan_clear(&s->topics);
}

int daemon_conf_validate(struct conf *c, struct daemon_settings *s, struct rd_kafka_conf_s **kc,
			 int *embedded, char *errstr, size_t errstr_size)
{
	int emb = 0;
	rd_kafka_conf_t *k = kconf_build(c, conf_section(c, "kafka", NULL), &emb, errstr, errstr_size);
	if (!k) {
		memset(s, 0, sizeof *s);
		return -1;
	}
	if (daemon_settings_load(c, s, errstr, errstr_size) != 0) {
		rd_kafka_conf_destroy(k);
		return -1;
	}
	if (embedded)
		*embedded = emb;
	if (kc)
		*kc = k;
	else
		rd_kafka_conf_destroy(k);
	return 0;
}

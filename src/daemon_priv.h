/*
 * daemon_priv — what `user =` (and `group =`) needs around the privilege drop,
 * and the start-up warnings about how the process runs.
 *
 * Before the drop (as root): the drop directories hl7bridge manages (inbox,
 * work, work/INSTANCE, done, error) are handed to the user, so a drop never
 * loses access to its own folders. After it: every drop folder must be usable
 * and every TLS certificate and key readable by the user (a SIGHUP reload
 * re-reads them as that user): a start that would fail later fails now, with
 * the path and what to change.
 *
 * At run time daemon_priv_drops_problem() tells readiness why a drop cannot
 * work (a folder it cannot read or write), so /readyz answers 503 with it.
 */
#ifndef HB_DAEMON_PRIV_H
#define HB_DAEMON_PRIV_H

#include <stddef.h>

#include "daemon_conf.h"

/* As root with a user set: chown the drop folders. 0, or -1 with errstr
 * (unknown user or group, a chown that fails). Does nothing otherwise. */
int daemon_priv_prepare(const struct daemon_settings *s, char *errstr, size_t errstr_size);

/* After the drop: can this process use every drop folder and read every
 * listener's TLS material? 0, or -1 with what to fix in errstr. */
int daemon_priv_check(const struct daemon_settings *s, char *errstr, size_t errstr_size);

/* The first drop folder this process cannot use, as a reason ("drop NAME:
 * cannot read PATH: Permission denied"), or "" (returns 0 / -1). */
int daemon_priv_drops_problem(const struct daemon_settings *s, char *buf, size_t cap);

/* Warnings at start: root without `user =` (when running: not for
 * `check`), a configuration or .env file that others can read while it holds
 * secrets, SASL PLAIN without TLS, listener and [http] certificates that
 * expire within 30 days. An expired server certificate is an error (returns
 * -1 with errstr). conf_path and env_path may be NULL. */
int daemon_priv_audit(const struct daemon_settings *s, const char *conf_path,
		      const char *env_path, const char *kafka_protocol,
		      const char *kafka_mechanism, int running, char *errstr, size_t errstr_size);

/* Can this process load every listener's TLS certificate and key, and read
 * [http]'s? 0, or -1 with the listener and OpenSSL's reason (for `check`,
 * which refuses what `run` would refuse). */
int daemon_priv_tls_check(const struct daemon_settings *s, char *errstr, size_t errstr_size);

#endif

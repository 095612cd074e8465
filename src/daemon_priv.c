#include "daemon_priv.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ingest/tls.h"
#include "log.h"
#include "util.h"

/* Certificates this close to their end are announced at every start. */
#define PRIV_CERT_WARN_DAYS 30

/* The folders of a drop that hl7bridge itself manages (filedrop.c's layout),
 * the drop's own folder last. */
#define PRIV_DROP_DIRS 6
static int drop_dirs(const struct daemon_settings *s, const struct drop_conf *d,
		     char dirs[PRIV_DROP_DIRS][700])
{
	snprintf(dirs[0], 700, "%s/inbox", d->path);
	snprintf(dirs[1], 700, "%s/work", d->path);
	snprintf(dirs[2], 700, "%s/work/%s", d->path, s->instance);
	snprintf(dirs[3], 700, "%s/done", d->path);
	snprintf(dirs[4], 700, "%s/error", d->path);
	snprintf(dirs[5], 700, "%s", d->path);
	return PRIV_DROP_DIRS;
}

static int target_ids(const struct daemon_settings *s, uid_t *uid, gid_t *gid, char *errstr,
		      size_t errstr_size)
{
	struct passwd *pw = getpwnam(s->user);
	if (!pw)
		return util_seterr(errstr, errstr_size, "[bridge] user %s: no such user", s->user);
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	if (s->group[0]) {
		struct group *g = getgrnam(s->group);
		if (!g)
			return util_seterr(errstr, errstr_size, "[bridge] group %s: no such group",
					   s->group);
		*gid = g->gr_gid;
	}
	return 0;
}

int daemon_priv_prepare(const struct daemon_settings *s, char *errstr, size_t errstr_size)
{
	uid_t uid = 0;
	gid_t gid = 0;
	char dirs[PRIV_DROP_DIRS][700];
	if (!s->user[0] || geteuid() != 0)
		return 0;
	if (target_ids(s, &uid, &gid, errstr, errstr_size) != 0)
		return -1;
	for (int i = 0; i < s->ndrops; i++) {
		int n = drop_dirs(s, &s->drops[i], dirs);
		for (int k = 0; k < n; k++) {
			struct stat st;
			/* Only what root owns (what hl7bridge made before the drop):
			 * a folder the operator gave to someone else stays theirs. */
			if (lstat(dirs[k], &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0)
				continue;
			if (chown(dirs[k], uid, gid) != 0)
				return util_seterr(errstr, errstr_size,
						   "drop %s: cannot give %s to user %s: %s",
						   s->drops[i].name, dirs[k], s->user, strerror(errno));
		}
	}
	return 0;
}

int daemon_priv_drops_problem(const struct daemon_settings *s, char *buf, size_t cap)
{
	char dirs[PRIV_DROP_DIRS][700];
	buf[0] = '\0';
	for (int i = 0; i < s->ndrops; i++) {
		int n = drop_dirs(s, &s->drops[i], dirs);
		for (int k = 0; k < n; k++) {
			/* inbox: list it; every folder: create and rename entries in it */
			int mode = k == 1 || k == 5 ? X_OK : W_OK | X_OK | (k == 0 || k == 2 ? R_OK : 0);
			if (access(dirs[k], mode) != 0) {
				snprintf(buf, cap, "drop %s cannot %s %s: %s", s->drops[i].name,
					 mode & R_OK ? "read and write" : mode & W_OK ? "write to" : "enter",
					 dirs[k],
					 strerror(errno));
				return -1;
			}
		}
	}
	return 0;
}

int daemon_priv_check(const struct daemon_settings *s, char *errstr, size_t errstr_size)
{
	char why[1024], err[512];
	const char *who = s->user[0] ? s->user : "this user";
	if (daemon_priv_drops_problem(s, why, sizeof why) != 0)
		return util_seterr(errstr, errstr_size,
				   "as user %s, %s: give that user the folder (and the drop's parent "
				   "folders search permission)",
				   who, why);
	if (daemon_priv_tls_check(s, err, sizeof err) != 0)
		return util_seterr(errstr, errstr_size,
				   "as user %s, %s; a SIGHUP reload reads the certificate and key "
				   "again as this user: make them readable by it (e.g. chgrp GROUP "
				   "FILE; chmod 0640 FILE)",
				   who, err);
	return 0;
}

/* Load a listener's TLS material once, as its start or a reload would. */
static int tls_probe(const struct lsn_conf *l, const char *kind, char *errstr, size_t errstr_size)
{
	char err[512];
	SSL_CTX *probe;
	if (!l->tls)
		return 0;
	probe = tls_ctx_new(&l->tls_conf, err, sizeof err);
	if (!probe)
		return util_seterr(errstr, errstr_size, "%s %s: %s", kind, l->name, err);
	SSL_CTX_free(probe);
	return 0;
}

int daemon_priv_tls_check(const struct daemon_settings *s, char *errstr, size_t errstr_size)
{
	for (int i = 0; i < s->nlsn; i++)
		if (tls_probe(&s->lsn[i], "listener", errstr, errstr_size) != 0)
			return -1;
	for (int i = 0; i < s->nfhir; i++)
		if (tls_probe(&s->fhir[i].lsn, "fhir", errstr, errstr_size) != 0)
			return -1;
	if (s->http.enabled && s->http.tls_cert[0]) {
		const char *files[] = { s->http.tls_cert, s->http.tls_key };
		for (size_t i = 0; i < HB_ARRAY_LEN(files); i++)
			if (access(files[i], R_OK) != 0)
				return util_seterr(errstr, errstr_size, "[http] %s %s: %s",
						   i ? "tls.key" : "tls.cert", files[i], strerror(errno));
	}
	return 0;
}

/* ---- the audit at start -------------------------------------------------------- */

/* The first line of a file whose key names a secret and whose value is given
 * in the file itself (a ${VAR} reference is not a secret); 0 when none. */
static int secret_line(const char *path, char *key, size_t key_size)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	int no = 0, found = 0;
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof line, f)) {
		char *eq = strchr(line, '='), *v, lower[128];
		size_t n;
		no++;
		if (!eq || line[0] == '#' || line[0] == ';')
			continue;
		n = (size_t)(eq - line);
		if (n >= sizeof lower)
			continue;
		for (size_t i = 0; i < n; i++)
			lower[i] = (char)tolower((unsigned char)line[i]);
		lower[n] = '\0';
		for (v = eq + 1; *v == ' ' || *v == '\t' || *v == '"' || *v == '\''; v++)
			;
		if (!*v || *v == '\n' || *v == '#' || strncmp(v, "${", 2) == 0)
			continue;
		if (strstr(lower, "password") || strstr(lower, "token") || strstr(lower, "secret")) {
			while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
				n--;
			snprintf(key, key_size, "%.*s", (int)n, line);
			found = no;
		}
	}
	fclose(f);
	return found;
}

static void warn_if_world_readable(const char *path)
{
	struct stat st;
	char key[128];
	int line;
	if (!path || stat(path, &st) != 0 || !(st.st_mode & S_IROTH))
		return;
	if ((line = secret_line(path, key, sizeof key)) > 0)
		log_warn("daemon",
			 "%s is readable by every user and holds a secret (%s, line %d): "
			 "chmod o-r %s",
			 path, key, line, path);
}

/* Days until a PEM certificate's notAfter (negative: expired); 0 and *ok = 0
 * when it cannot be read (the TLS set-up reports that). */
static int cert_days_left(const char *path, int *ok)
{
	FILE *f = fopen(path, "r");
	X509 *x;
	int days = 0, secs = 0;
	*ok = 0;
	if (!f)
		return 0;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x)
		return 0;
	if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) == 1) {
		*ok = 1;
		if (days == 0 && secs < 0)
			days = -1;
	}
	X509_free(x);
	return days;
}

static int check_cert(const char *what, const char *path, char *errstr, size_t errstr_size)
{
	int ok, days;
	if (!path[0])
		return 0;
	days = cert_days_left(path, &ok);
	if (!ok)
		return 0;
	if (days < 0)
		return util_seterr(errstr, errstr_size,
				   "%s: the server certificate %s has expired: renew it", what, path);
	if (days < PRIV_CERT_WARN_DAYS)
		log_warn("daemon", "%s: the server certificate %s expires in %d day%s: renew it and "
				   "send SIGHUP",
			 what, path, days, days == 1 ? "" : "s");
	return 0;
}

int daemon_priv_audit(const struct daemon_settings *s, const char *conf_path,
		      const char *env_path, const char *kafka_protocol,
		      const char *kafka_mechanism, int running, char *errstr, size_t errstr_size)
{
	char what[128];
	if (running && geteuid() == 0 && !s->user[0])
		log_warn("daemon", "running as root without [bridge] user: set user = (and group =) "
				   "so the bridge gives up root once its ports are open");
	warn_if_world_readable(conf_path);
	warn_if_world_readable(env_path);
	if (kafka_protocol && strcasecmp(kafka_protocol, "SASL_PLAINTEXT") == 0 &&
	    (!kafka_mechanism || !kafka_mechanism[0] || strcasecmp(kafka_mechanism, "PLAIN") == 0))
		log_warn("daemon", "[kafka] SASL PLAIN over plaintext: the Kafka password crosses the "
				   "network in clear; use security.protocol = SASL_SSL");
	for (int i = 0; i < s->nlsn + s->nfhir; i++) {
		const struct lsn_conf *l = i < s->nlsn ? &s->lsn[i] : &s->fhir[i - s->nlsn].lsn;
		if (!l->tls)
			continue;
		snprintf(what, sizeof what, "%s %s", i < s->nlsn ? "listener" : "fhir", l->name);
		if (check_cert(what, l->tls_conf.cert, errstr, errstr_size) != 0)
			return -1;
	}
	if (s->http.enabled && check_cert("[http]", s->http.tls_cert, errstr, errstr_size) != 0)
		return -1;
	return 0;
}

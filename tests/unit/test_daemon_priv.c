/*
 * daemon_priv (issue 14, items 7 and 13): the start-up audit's warnings
 * (world-readable files holding a secret, SASL PLAIN without TLS, root
 * without user =, certificates close to or past their end) and the drop
 * folder check behind /readyz. Warnings are read back from stderr.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "daemon_priv.h"

static char logpath[] = "/tmp/hb-priv-log-XXXXXX";
static int saved_stderr = -1;

/* stderr into a file until captured() */
static void capture(void)
{
	int fd = mkstemp(logpath);
	cr_assert_geq(fd, 0);
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

static char *captured(void)
{
	static char buf[16384];
	FILE *f;
	size_t n;
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	f = fopen(logpath, "r");
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(logpath);
	snprintf(logpath, sizeof logpath, "/tmp/hb-priv-log-XXXXXX");
	return buf;
}

static void write_mode(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

/* A self-signed certificate valid until now + secs (negative: expired). */
static void write_cert(const char *path, long secs)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	FILE *f = fopen(path, "w");
	cr_assert(k && x && f);
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -30L * 86400);
	X509_gmtime_adj(X509_getm_notAfter(x), secs);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
				   (const unsigned char *)"test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, k);
	cr_assert(X509_sign(x, k, EVP_sha256()));
	PEM_write_X509(f, x);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(k);
}

static struct daemon_settings *settings(void)
{
	static struct daemon_settings s;
	memset(&s, 0, sizeof s);
	snprintf(s.instance, sizeof s.instance, "unit");
	snprintf(s.user, sizeof s.user, "nobody"); /* no root warning unless a test wants it */
	return &s;
}

Test(daemon_priv, world_readable_files_with_secrets_are_announced)
{
	char err[512], conf[] = "/tmp/hb-priv-conf-XXXXXX", env[] = "/tmp/hb-priv-env-XXXXXX";
	struct daemon_settings *s = settings();
	close(mkstemp(conf));
	close(mkstemp(env));
	write_mode(conf, "[http]\ntoken = t0psecret\n", 0644);
	write_mode(env, "KAFKA_PASSWORD=\"hunter2\"\n", 0644);
	capture();
	cr_assert_eq(daemon_priv_audit(s, conf, env, NULL, NULL, 1, err, sizeof err), 0);
	char *out = captured();
	cr_assert(strstr(out, "readable by every user and holds a secret (token, line 2)"), "%s", out);
	cr_assert(strstr(out, "(KAFKA_PASSWORD, line 1)"), "%s", out);
	cr_assert_null(strstr(out, "t0psecret"), "a secret leaked: %s", out);
	cr_assert_null(strstr(out, "hunter2"), "a secret leaked: %s", out);

	/* not readable by others, or the secret comes from the environment: quiet */
	chmod(conf, 0640);
	write_mode(env, "KAFKA_PASSWORD=${FROM_VAULT}\nKAFKA_BROKERS=b:9092\n", 0644);
	capture();
	cr_assert_eq(daemon_priv_audit(s, conf, env, NULL, NULL, 1, err, sizeof err), 0);
	out = captured();
	cr_assert_null(strstr(out, "readable by every user"), "%s", out);
	unlink(conf);
	unlink(env);
}

Test(daemon_priv, sasl_plain_without_tls_and_root_are_announced)
{
	char err[512];
	struct daemon_settings *s = settings();
	capture();
	cr_assert_eq(daemon_priv_audit(s, NULL, NULL, "SASL_PLAINTEXT", "PLAIN", 1, err, sizeof err), 0);
	cr_assert_eq(daemon_priv_audit(s, NULL, NULL, "SASL_SSL", "PLAIN", 1, err, sizeof err), 0);
	cr_assert_eq(daemon_priv_audit(s, NULL, NULL, "SASL_PLAINTEXT", "SCRAM-SHA-512", 1, err,
				       sizeof err),
		     0);
	s->user[0] = '\0';
	cr_assert_eq(daemon_priv_audit(s, NULL, NULL, NULL, NULL, 1, err, sizeof err), 0);
	char *out = captured();
	char *first = strstr(out, "SASL PLAIN over plaintext");
	cr_assert_not_null(first, "%s", out);
	cr_assert_null(strstr(first + 1, "SASL PLAIN over plaintext"), "once only: %s", out);
	if (geteuid() == 0)
		cr_assert(strstr(out, "running as root without [bridge] user"), "%s", out);
	else
		cr_assert_null(strstr(out, "running as root"), "%s", out);
}

Test(daemon_priv, certificates_near_or_past_their_end)
{
	char err[512], dir[] = "/tmp/hb-priv-cert-XXXXXX";
	struct daemon_settings *s = settings();
	cr_assert_not_null(mkdtemp(dir));
	s->nlsn = 1;
	s->lsn[0].tls = 1;
	snprintf(s->lsn[0].name, sizeof s->lsn[0].name, "secure");
	snprintf(s->lsn[0].tls_conf.cert, sizeof s->lsn[0].tls_conf.cert, "%s/c.pem", dir);

	write_cert(s->lsn[0].tls_conf.cert, 90L * 86400);
	capture();
	cr_assert_eq(daemon_priv_audit(s, NULL, NULL, NULL, NULL, 1, err, sizeof err), 0);
	cr_assert_null(strstr(captured(), "expires"));

	write_cert(s->lsn[0].tls_conf.cert, 5L * 86400 + 600);
	capture();
	cr_assert_eq(daemon_priv_audit(s, NULL, NULL, NULL, NULL, 1, err, sizeof err), 0);
	char *out = captured();
	cr_assert(strstr(out, "listener secure: the server certificate") && strstr(out, "expires in 5 days"),
		  "%s", out);

	write_cert(s->lsn[0].tls_conf.cert, -3600);
	cr_assert_eq(daemon_priv_audit(s, NULL, NULL, NULL, NULL, 1, err, sizeof err), -1);
	cr_assert(strstr(err, "has expired"), "%s", err);

	s->nlsn = 0; /* [http] too */
	s->http.enabled = 1;
	snprintf(s->http.tls_cert, sizeof s->http.tls_cert, "%s/c.pem", dir);
	cr_assert_eq(daemon_priv_audit(s, NULL, NULL, NULL, NULL, 1, err, sizeof err), -1);
	cr_assert(strstr(err, "[http]: the server certificate"), "%s", err);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(daemon_priv, a_drop_folder_that_cannot_be_used_is_named)
{
	char dir[] = "/tmp/hb-priv-drop-XXXXXX", p[512], why[256];
	struct daemon_settings *s = settings();
	cr_assert_not_null(mkdtemp(dir));
	s->ndrops = 1;
	snprintf(s->drops[0].name, sizeof s->drops[0].name, "main");
	snprintf(s->drops[0].path, sizeof s->drops[0].path, "%s", dir);
	cr_assert_eq(daemon_priv_drops_problem(s, why, sizeof why), -1);
	cr_assert(strstr(why, "drop main cannot read and write") && strstr(why, "/inbox"), "%s", why);
	static const char *sub[] = { "inbox", "work", "work/unit", "done", "error" };
	for (size_t i = 0; i < 5; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, sub[i]);
		cr_assert_eq(mkdir(p, 0750), 0);
	}
	cr_assert_eq(daemon_priv_drops_problem(s, why, sizeof why), 0, "%s", why);
	cr_assert_str_eq(why, "");
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

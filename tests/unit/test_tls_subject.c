/*
 * tls.allowed.subjects (issue 14, item 10): certificates with a normal,
 * multi-RDN subject are admitted by a CN entry, a whole RFC 4514 subject, or a
 * subjectAltName entry; ';' separates entries so commas inside a subject are
 * not split; the older comma-separated CN list still works, and "CN=a, CN=b"
 * (which used to mean two CNs) is refused rather than silently changing
 * meaning. Certificates are made here with the OpenSSL API.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "ingest/tls_subject.h"

/* A self-signed certificate; subject entries as (type, value, set) triples
 * in DER order (most significant first), set -1 = new RDN, 0 = join the
 * previous RDN (multi-valued); san is "DNS:x,URI:y" or NULL. */
struct ent {
	const char *type, *value;
	int join;
};

static X509 *make_cert(const struct ent *e, size_t n, const char *san)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	cr_assert(k && x && name);
	for (size_t i = 0; i < n; i++)
		cr_assert(X509_NAME_add_entry_by_txt(name, e[i].type, MBSTRING_UTF8,
						     (const unsigned char *)e[i].value, -1, -1,
						     e[i].join ? -1 : 0));
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, name);
	X509_set_pubkey(x, k);
	if (san) {
		X509V3_CTX ctx;
		X509V3_set_ctx_nodb(&ctx);
		X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
		cr_assert_not_null(ext, "%s", san);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	cr_assert(X509_sign(x, k, EVP_sha256()));
	X509_NAME_free(name);
	EVP_PKEY_free(k);
	return x;
}

static void ok(const char *list)
{
	char err[512];
	cr_assert_eq(tls_subjects_check(list, err, sizeof err), 0, "%s: %s", list, err);
}

Test(tls_subject, a_multi_rdn_certificate_is_admitted)
{
	/* C=US, O=Acme Hospital, OU=Integration, CN=engine-1 */
	static const struct ent e[] = { { "C", "US", 0 },
					{ "O", "Acme Hospital", 0 },
					{ "OU", "Integration", 0 },
					{ "CN", "engine-1", 0 } };
	X509 *x = make_cert(e, 4, "DNS:engine-1.acme.example,URI:spiffe://acme/hl7/engine-1,"
				  "email:hl7@acme.example");
	static const char *yes[] = {
		"CN=engine-1",
		"cn = engine-1",
		"commonName=engine-1",
		"O=Acme Hospital",
		"CN=engine-1,OU=Integration,O=Acme Hospital,C=US",
		"CN=engine-1, OU=Integration, O=Acme Hospital, C=US",
		"2.5.4.3=engine-1,OU=Integration,O=Acme Hospital,C=US",
		"CN=other; CN=engine-1,OU=Integration,O=Acme Hospital,C=US",
		"SAN:DNS:ENGINE-1.acme.example",
		"SAN:URI:spiffe://acme/hl7/engine-1",
		"SAN:EMAIL:hl7@acme.example",
		"engine-1",                 /* the older bare CN value */
		"engine-0, engine-1",       /* the older comma-separated list */
		"CN=nobody; SAN:DNS:engine-1.acme.example",
	};
	static const char *no[] = {
		"CN=engine-2",
		"CN=Engine-1",
		"CN=engine-1,OU=Integration,O=Acme Hospital",      /* not the whole subject */
		"C=US,O=Acme Hospital,OU=Integration,CN=engine-1", /* reversed order */
		"CN=engine-1,OU=Pharmacy,O=Acme Hospital,C=US",
		"SAN:DNS:engine-2.acme.example",
		"SAN:URI:spiffe://acme/hl7/ENGINE-1",
		"SAN:DNS:spiffe://acme/hl7/engine-1",
		"engine-0, engine-2",
	};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		ok(yes[i]);
		cr_assert(tls_subjects_match(yes[i], x), "'%s' should admit the certificate", yes[i]);
	}
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
		ok(no[i]);
		cr_assert_not(tls_subjects_match(no[i], x), "'%s' should not admit it", no[i]);
	}
	X509_free(x);
}

Test(tls_subject, escapes_and_multi_valued_rdns)
{
	/* O=Acme\, Inc., then the multi-valued RDN CN=engine+UID=42 */
	static const struct ent e[] = { { "O", "Acme, Inc.", 0 },
					{ "CN", "engine; one", 0 },
					{ "UID", "42", 1 } };
	X509 *x = make_cert(e, 3, NULL);
	cr_assert(tls_subjects_match("CN=engine\\; one+UID=42,O=Acme\\, Inc.", x));
	cr_assert(tls_subjects_match("UID=42+CN=engine\\; one,O=Acme\\2C Inc.", x),
		  "AVAs of an RDN in any order, \\XX escapes");
	cr_assert(tls_subjects_match("O=Acme\\, Inc.", x));
	cr_assert(tls_subjects_match("CN=x; O=Acme\\, Inc.", x));
	cr_assert_not(tls_subjects_match("CN=engine\\; one,UID=42,O=Acme\\, Inc.", x),
		      "a multi-valued RDN is not two RDNs");
	X509_free(x);
}

Test(tls_subject, malformed_lists_are_refused_with_the_entry)
{
	char err[512];
	static const struct {
		const char *list, *why;
	} bad[] = {
		{ "CN=interface-engine-1, CN=interface-engine-2", "separate entries with ';'" },
		{ "CN=a; XYZZY=b", "unknown attribute type 'XYZZY'" },
		{ "CN=a; =b", "attribute type is missing" },
		{ "CN=a,O", "expected TYPE=value" },
		{ "SAN:IPX:1.2.3.4", "SAN:DNS:name" },
		{ "CN=#0403414243", "#hex" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(tls_subjects_check(bad[i].list, err, sizeof err), -1, "%s", bad[i].list);
		cr_assert(strstr(err, bad[i].why), "%s: %s", bad[i].list, err);
		cr_assert(strstr(err, "tls.allowed.subjects: entry"), "%s", err);
	}
}

#include "ingest/tls_subject.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "util.h"

#define TS_MAX_RDNS 32
#define TS_MAX_AVAS 64
#define TS_MAX_VALUE 256

struct ts_ava {
	int nid;
	int rdn; /* index of its RDN, most specific first */
	char value[TS_MAX_VALUE];
};

struct ts_dn {
	struct ts_ava ava[TS_MAX_AVAS];
	int n, nrdn;
};

static void trim(const char **p, size_t *n)
{
	while (*n && isspace((unsigned char)**p))
		(*p)++, (*n)--;
	while (*n && isspace((unsigned char)(*p)[*n - 1]) &&
	       !(*n >= 2 && (*p)[*n - 2] == '\\'))
		(*n)--;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* An attribute type by short name, long name or OID, without case. */
static int type_nid(const char *type)
{
	static const int known[] = { NID_commonName, NID_countryName, NID_localityName,
				     NID_stateOrProvinceName, NID_organizationName,
				     NID_organizationalUnitName, NID_domainComponent, NID_userId,
				     NID_surname, NID_givenName, NID_serialNumber,
				     NID_pkcs9_emailAddress, NID_title, NID_streetAddress };
	int nid = OBJ_txt2nid(type);
	for (size_t i = 0; nid == NID_undef && i < sizeof known / sizeof known[0]; i++)
		if (strcasecmp(type, OBJ_nid2sn(known[i])) == 0 ||
		    strcasecmp(type, OBJ_nid2ln(known[i])) == 0)
			nid = known[i];
	return nid;
}

/* An RFC 4514 string (s, n) into dn. 0, or -1 with the reason. */
static int parse_dn(const char *s, size_t n, struct ts_dn *dn, char *why, size_t why_size)
{
	size_t i = 0;
	memset(dn, 0, sizeof *dn);
	dn->nrdn = 1;
	while (i <= n) {
		struct ts_ava *a;
		char type[64];
		size_t t0 = i, tl, vl = 0;
		const char *tp;
		while (i < n && s[i] != '=')
			i++;
		if (i >= n)
			return util_seterr(why, why_size, "expected TYPE=value");
		tp = s + t0;
		tl = i - t0;
		trim(&tp, &tl);
		if (!tl || tl >= sizeof type)
			return util_seterr(why, why_size, "an attribute type is missing");
		snprintf(type, sizeof type, "%.*s", (int)tl, tp);
		if (dn->n == TS_MAX_AVAS)
			return util_seterr(why, why_size, "more than %d attributes", TS_MAX_AVAS);
		a = &dn->ava[dn->n++];
		a->rdn = dn->nrdn - 1;
		a->nid = type_nid(type);
		if (a->nid == NID_undef)
			return util_seterr(why, why_size, "unknown attribute type '%s'", type);
		i++; /* '=' */
		while (i < n && s[i] == ' ')
			i++;
		if (i < n && s[i] == '#')
			return util_seterr(why, why_size, "#hex values are not supported");
		for (; i < n && s[i] != ',' && s[i] != '+'; i++) {
			int c = (unsigned char)s[i];
			if (c == '\\') {
				int h1 = i + 1 < n ? hexval((unsigned char)s[i + 1]) : -1;
				int h2 = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
				if (i + 1 >= n)
					return util_seterr(why, why_size, "a trailing backslash");
				if (h1 >= 0 && h2 >= 0) {
					c = h1 * 16 + h2;
					i += 2;
				} else {
					c = (unsigned char)s[++i];
				}
			}
			if (vl + 1 >= TS_MAX_VALUE)
				return util_seterr(why, why_size, "a value longer than %d bytes",
						   TS_MAX_VALUE - 1);
			a->value[vl++] = (char)c;
		}
		/* unescaped trailing spaces are not part of the value */
		while (vl && a->value[vl - 1] == ' ' && !(i >= 2 && s[i - 2] == '\\'))
			vl--;
		a->value[vl] = '\0';
		if (i >= n)
			break;
		if (s[i] == ',')
			dn->nrdn++;
		i++;
	}
	return 0;
}

/* The certificate subject as a ts_dn, most specific RDN first. */
static int cert_dn(X509_NAME *name, struct ts_dn *dn)
{
	int count = X509_NAME_entry_count(name), last_set = -1;
	memset(dn, 0, sizeof *dn);
	/* DER order is most significant first: walk it backwards */
	for (int i = count - 1; i >= 0; i--) {
		X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		unsigned char *utf8 = NULL;
		int len;
		struct ts_ava *a;
		if (dn->n == TS_MAX_AVAS)
			return -1;
		if (X509_NAME_ENTRY_set(e) != last_set) {
			dn->nrdn++;
			last_set = X509_NAME_ENTRY_set(e);
		}
		a = &dn->ava[dn->n++];
		a->rdn = dn->nrdn - 1;
		a->nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
		len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
		if (len < 0)
			return -1;
		/* too long to compare, or a NUL inside: matches nothing */
		if ((size_t)len >= sizeof a->value || memchr(utf8, '\0', (size_t)len)) {
			OPENSSL_free(utf8);
			return -1;
		}
		memcpy(a->value, utf8, (size_t)len);
		a->value[len] = '\0';
		OPENSSL_free(utf8);
	}
	return 0;
}

static int ava_eq(const struct ts_ava *x, const struct ts_ava *y)
{
	return x->nid == y->nid && strcmp(x->value, y->value) == 0;
}

/* Same RDNs in the same order; within an RDN the same AVAs in any order. */
static int dn_eq(const struct ts_dn *want, const struct ts_dn *have)
{
	if (want->nrdn != have->nrdn || want->n != have->n)
		return 0;
	for (int i = 0; i < want->n; i++) {
		int found = 0;
		for (int k = 0; k < have->n && !found; k++)
			found = have->ava[k].rdn == want->ava[i].rdn && ava_eq(&want->ava[i], &have->ava[k]);
		if (!found)
			return 0;
	}
	return 1;
}

static int san_match(X509 *cert, int type, const char *want, int nocase)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	int ok = 0;
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && !ok; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		const ASN1_IA5STRING *s;
		size_t wl = strlen(want);
		if (g->type != type)
			continue;
		s = type == GEN_DNS ? g->d.dNSName : type == GEN_URI ? g->d.uniformResourceIdentifier
								      : g->d.rfc822Name;
		if ((size_t)ASN1_STRING_length(s) != wl)
			continue;
		ok = nocase ? strncasecmp((const char *)ASN1_STRING_get0_data(s), want, wl) == 0
			    : memcmp(ASN1_STRING_get0_data(s), want, wl) == 0;
	}
	GENERAL_NAMES_free(names);
	return ok;
}

/* One entry (s, n): -1 malformed (why), else whether cert (may be NULL) matches. */
static int entry(const char *s, size_t n, X509 *cert, char *why, size_t why_size)
{
	struct ts_dn want, have;
	char buf[TS_MAX_VALUE + 16];
	int all_cn = 1;
	if (n >= 4 && strncasecmp(s, "SAN:", 4) == 0) {
		static const struct {
			const char *kind;
			int type, nocase;
		} kinds[] = { { "DNS:", GEN_DNS, 1 }, { "URI:", GEN_URI, 0 }, { "EMAIL:", GEN_EMAIL, 1 } };
		for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
			size_t kl = strlen(kinds[k].kind);
			if (n > 4 + kl && strncasecmp(s + 4, kinds[k].kind, kl) == 0) {
				if (n - 4 - kl >= sizeof buf)
					return util_seterr(why, why_size, "a name too long");
				snprintf(buf, sizeof buf, "%.*s", (int)(n - 4 - kl), s + 4 + kl);
				return cert ? san_match(cert, kinds[k].type, buf, kinds[k].nocase) : 0;
			}
		}
		return util_seterr(why, why_size, "expected SAN:DNS:name, SAN:URI:uri or SAN:EMAIL:address");
	}
	if (!memchr(s, '=', n)) { /* a bare CN value: as CN=value, escaped */
		char esc[2 * TS_MAX_VALUE + 4] = "CN=";
		size_t el = 3;
		if (n >= TS_MAX_VALUE)
			return util_seterr(why, why_size, "a name too long");
		for (size_t i = 0; i < n; i++) {
			if (s[i] == ',' || s[i] == '+' || s[i] == '\\')
				esc[el++] = '\\';
			esc[el++] = s[i];
		}
		esc[el] = '\0';
		return entry(esc, el, cert, why, why_size);
	}
	if (parse_dn(s, n, &want, why, why_size) != 0)
		return -1;
	for (int i = 0; i < want.n; i++)
		all_cn &= want.ava[i].nid == NID_commonName;
	if (want.nrdn > 1 && all_cn)
		return util_seterr(why, why_size,
				   "reads as one subject made of %d CNs: separate entries with ';'",
				   want.nrdn);
	if (!cert || cert_dn(X509_get_subject_name(cert), &have) != 0)
		return 0;
	if (want.n == 1) { /* one attribute, anywhere in the subject */
		for (int k = 0; k < have.n; k++)
			if (ava_eq(&want.ava[0], &have.ava[k]))
				return 1;
		return 0;
	}
	return dn_eq(&want, &have);
}

/* Call entry() for each entry; stops at the first match (1) or error (-1). */
static int each(const char *list, X509 *cert, char *errstr, size_t errstr_size)
{
	char why[256];
	int legacy = !strchr(list, ';') && !strchr(list, '=');
	char sep = legacy ? ',' : ';';
	const char *p = list;
	int idx = 0;
	while (*p) {
		const char *e = p;
		size_t n;
		int r;
		while (*e && *e != sep) {
			if (*e == '\\' && e[1])
				e++;
			e++;
		}
		n = (size_t)(e - p);
		trim(&p, &n);
		idx++;
		if (n) {
			r = entry(p, n, cert, why, sizeof why);
			if (r < 0)
				return util_seterr(errstr, errstr_size, "tls.allowed.subjects: entry %d '%.*s': %s",
						   idx, (int)(n > 80 ? 80 : n), p, why);
			if (r > 0)
				return 1;
		}
		if (!*e)
			break;
		p = e + 1;
	}
	return 0;
}

int tls_subjects_check(const char *list, char *errstr, size_t errstr_size)
{
	return each(list, NULL, errstr, errstr_size) < 0 ? -1 : 0;
}

int tls_subjects_match(const char *list, X509 *cert)
{
	char err[8];
	return each(list, cert, err, sizeof err) == 1;
}

/*
 * tls_subject — which client certificates tls.allowed.subjects admits.
 *
 * The list holds entries separated by ';' (a ';' inside a value is written
 * "\;"). Each entry is one of:
 *
 *   CN=interface-engine-1          one attribute: admits a certificate whose
 *   O=Acme Hospital                subject has it (in any RDN), whatever else
 *                                  the subject holds
 *   CN=engine-1,OU=HL7,O=Acme,C=US a whole subject (RFC 4514, most specific
 *                                  RDN first, as `openssl x509 -subject
 *                                  -nameopt RFC2253` prints it): admits that
 *                                  subject only, compared RDN by RDN
 *                                  (attribute types by OID, so CN and
 *                                  commonName are the same; values exactly;
 *                                  "\," "\+" "\\" "\XX" escapes; "+" joins a
 *                                  multi-valued RDN, in any order)
 *   SAN:DNS:engine-1.example.org   a subjectAltName entry (DNS and EMAIL
 *   SAN:URI:spiffe://acme/hl7      compared without case, URI exactly)
 *   SAN:EMAIL:hl7@acme.example
 *   interface engine 1             (no '=') the CN value, as before
 *
 * A list with no ';' and no '=' is the older form: CN values separated by
 * commas. "CN=a, CN=b" is refused: it reads as one subject of two CNs, which
 * is never what was meant (write "CN=a; CN=b").
 */
#ifndef HB_TLS_SUBJECT_H
#define HB_TLS_SUBJECT_H

#include <stddef.h>

#include <openssl/x509.h>

/* Is the list well formed? 0, or -1 with the entry and the reason. */
int tls_subjects_check(const char *list, char *errstr, size_t errstr_size);

/* Does cert match an entry of list? 1 or 0 (0 for a malformed list). */
int tls_subjects_match(const char *list, X509 *cert);

#endif

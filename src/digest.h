/* digest — the SHA-1 and SHA-256 implementations, fetched from OpenSSL's
 * provider once per process instead of once per call (the implicit fetch
 * behind EVP_sha256()/SHA1() costs more than hashing a short message). */
#ifndef HB_DIGEST_H
#define HB_DIGEST_H

#include <openssl/evp.h>

const EVP_MD *digest_sha1(void);
const EVP_MD *digest_sha256(void);

#endif

#include "digest.h"

#include <pthread.h>

static EVP_MD *sha1, *sha256;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fetch(void)
{
	sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* Fall back to the implicit fetch if the explicit one failed. */
const EVP_MD *digest_sha1(void)
{
	pthread_once(&once, fetch);
	return sha1 ? sha1 : EVP_sha1();
}

const EVP_MD *digest_sha256(void)
{
	pthread_once(&once, fetch);
	return sha256 ? sha256 : EVP_sha256();
}

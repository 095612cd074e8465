/* send_harness — what the `hl7bridge send` tests share: a scratch directory
 * per test, the TLS test set (made by tests/fixtures/tls/gen.sh), running
 * the real binary, and message files. Test code only. */
#ifndef HB_TEST_SEND_HARNESS_H
#define HB_TEST_SEND_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include "mllp_peer.h"

struct run_out {
	int status;             /* exit code, or 128 + signal */
	char *out, *err;        /* heap, NUL-terminated */
};

/* The test's scratch directory (made by send_setup, removed by send_teardown). */
extern char send_tmp[512];
void send_setup(void);
void send_teardown(void);

const char *send_srcdir(void);
/* Path of a file of the TLS test set (generated on first use). */
const char *tls_file(const char *name);

/* Run hl7bridge send with the arguments (NULL-terminated); wait for it. */
void run_send(struct run_out *r, const char *first, ...);
/* The same, without waiting; then wait_send. */
pid_t start_send(const char *first, ...);
void wait_send(struct run_out *r, pid_t pid);
void run_free(struct run_out *r);

/* Lines of s containing needle (all lines when NULL). */
size_t count_lines(const char *s, const char *needle);
/* A small synthetic message with this MSH-10. */
void msg(char *out, size_t size, const char *id);
/* A file in the scratch directory of concatenated messages with these
 * MSH-10s (NULL-terminated). */
const char *msg_file(const char *name, ...);
/* Start the test peer and write its "127.0.0.1:PORT". */
void start_peer(struct mllp_peer **p, char *hostport, size_t size,
		const struct mllp_peer_opts *o);

#endif

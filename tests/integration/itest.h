/*
 * itest — shared helpers for integration tests against the real Kafka broker
 * and Schema Registry that tests/services/ scripts start.
 *
 * The services are found through the environment that tests/integration/run.sh
 * exports: HB_KAFKA_BOOTSTRAP and SCHEMA_REGISTRY_URL. A test that needs a
 * service which is not configured fails (it does not skip): a green run must
 * mean the real thing was exercised.
 */
#ifndef HB_ITEST_H
#define HB_ITEST_H

#include <stddef.h>
#include <librdkafka/rdkafka.h>

#include "publish/pub.h"

/* The bootstrap address / registry URL; abort the test if unset. */
const char *itest_bootstrap(void);
const char *itest_registry_url(void);

/* A topic (or subject) name unique to this process and call: prefix-pid-n-time. */
void itest_unique_name(char *buf, size_t cap, const char *prefix);

/* Create a topic with the admin API and wait for its metadata. Return 0 or -1. */
int itest_create_topic(const char *topic, int partitions, char *errstr, size_t errstr_size);

/* A producer/consumer conf with bootstrap.servers set, plus extra k=v pairs
 * (NULL-terminated list of key, value). */
rd_kafka_conf_t *itest_conf(const char *key, ...);

/* Read every record currently in `topic` (all partitions, from the beginning)
 * with the given isolation level ("read_committed" or "read_uncommitted").
 * Stops once `expect` records were read or after timeout_ms with no new
 * record. Values are returned as NUL-terminated strings in a heap array
 * (*values_out, caller frees with itest_free_values). Returns the count, or -1. */
int itest_consume_all(const char *topic, const char *isolation, int expect, int timeout_ms,
		      char ***values_out);
void itest_free_values(char **values, int n);
/* Count the records (read_committed, from the beginning) whose value contains
 * needle; stops after timeout_ms without a new record. */
int itest_count_with(const char *topic, const char *needle, int timeout_ms);

/* Publisher jobs whose completion only needs counting: pass a struct
 * itest_tally as the job's opaque; the callback frees the job. */
struct itest_tally {
	int committed, failed;
};
void itest_tally_cb(struct pub_job *job, enum pub_status status, const char *reason, void *opaque);

/* HTTP helpers for the registry (libcurl). Returns the HTTP status, or -1 on a
 * transport error; *body_out is a heap string (caller frees). */
long itest_http(const char *method, const char *url, const char *body, char **body_out);

#endif

/* ---- the daemon ---------------------------------------------------------- */

#include <sys/types.h>

/* Start `hl7bridge run -c conf_path` (binary from HB_BUILDDIR), wait for its
 * ready line, return its pid and the first listener's port. stderr goes to
 * log_path. *port is -1 when no listener is configured (may be NULL). */
pid_t itest_daemon_start(const char *conf_path, const char *log_path, int *port);
/* The same, for a configuration with [http] on: also the HTTP port. */
pid_t itest_daemon_start_http(const char *conf_path, const char *log_path, int *port,
			      int *http_port);
/* SIGTERM and wait; returns the exit status (or -1). */
int itest_daemon_stop(pid_t pid);
/* The same, for several listeners: their ports in configuration order into
 * ports[0..max-1] (-1 for those not configured). */
pid_t itest_daemon_start_ports(const char *conf_path, const char *log_path, int *ports, int max);

/* Connect to 127.0.0.1:port; -1 on failure. */
int itest_mllp_connect(int port);
/* Send one message framed and read one framed reply into ack (NUL-terminated).
 * Returns the reply length, or -1 (timeout 30 s, connection closed). */
int itest_mllp_exchange(int fd, const char *msg, size_t len, char *ack, size_t cap);
/* Read one framed reply (as itest_mllp_exchange does after sending). */
int itest_mllp_read(int fd, char *ack, size_t cap);
/* The value of MSA-1 ("AA", "CA", ...) in an ACK, or "" */
void itest_msa1(const char *ack, char out[3]);

/* A sample from the source tree (HB_SRCDIR/relpath), heap, NUL-terminated. */
char *itest_sample(const char *relpath, size_t *len);
/* Replace MSH-10 of an ER7 message (heap result). */
char *itest_set_msh10(const char *msg, const char *id);

/*
 * daemon — `hl7bridge run`: one libev loop for every socket, the publisher
 * lanes, and the promise that an ACK leaves only after the Kafka commit.
 *
 * Start-up, in order: configuration → mappings and schemas (all or nothing)
 * → Kafka configuration (or the embedded broker) → topics → Schema Registry
 * (Avro) → publisher lanes (init_transactions fences zombies) → ledger
 * rebuilt from the state topic (its consumer then goes on as the ledger
 * tail, ledger_tail.h) → listeners open → ready. Any failure before
 * "ready" exits 1 with the reason.
 *
 * Signals: SIGHUP reloads mappings and TLS certificates, all or nothing;
 * SIGTERM/SIGINT stop accepting, let in-flight messages commit and their
 * ACKs go out, and exit 0 (or 1 if the shutdown deadline passes first).
 * A fatal publisher error (e.g. fenced by another instance with the same
 * name) stops all positive ACKs and exits 1 so a supervisor restarts it.
 */
#ifndef HB_DAEMON_H
#define HB_DAEMON_H

struct daemon_opts {
	const char *conf_path;
	/* Write "READY <port> <port>..." to this fd once listening (tests, -1: none). */
	int ready_fd;
};

/* Runs until shutdown; returns the process exit code. */
int daemon_run(const struct daemon_opts *o);

#endif

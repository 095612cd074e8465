/*
 * FHIR over HTTP while the broker is down: no 2xx is sent for anything not
 * committed, the endpoint answers 503 with Retry-After once the publisher
 * is full, and after the broker is back every resource the clients kept
 * resending is published exactly once. Then, idle, the broker goes again:
 * a request waiting for the shared ledger's barrier makes new ones 503 too.
 *
 * Pauses the broker that tests/services/kafka.sh started (like
 * test_pub_outage): run it only against services of your own.
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"

#define OUTAGE_S 20
#define NCLIENTS 4

static atomic_llong down_at, up_at;

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int services(const char *verb)
{
	char cmd[1024];
	const char *src = getenv("HB_SRCDIR");
	snprintf(cmd, sizeof cmd, "%s/tests/services/kafka.sh %s >&2", src ? src : ".", verb);
	return system(cmd);
}

static int hconnect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(0x7f000001);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct timeval tv = { 2, 0 }; /* an impatient client: resends after 2 s */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

/* POST one patient; the status, or -1 without an answer. *retry_after gets
 * the Retry-After header's presence. */
static int post_patient(int port, const char *id, int *retry_after)
{
	char body[1024], req[1400], head[4096];
	int bl = snprintf(body, sizeof body,
			  "{\"resourceType\":\"Patient\",\"id\":\"%s\",\"identifier\":[{\"type\":{\"coding\":"
			  "[{\"code\":\"MR\"}]},\"value\":\"%s\"}]}", id, id);
	int rl = snprintf(req, sizeof req,
			  "POST /fhir/Patient HTTP/1.1\r\nContent-Type: application/fhir+json\r\n"
			  "Connection: close\r\nContent-Length: %d\r\n\r\n%s", bl, body);
	int fd = hconnect(port);
	if (fd < 0)
		return -1;
	if (send(fd, req, (size_t)rl, MSG_NOSIGNAL) != rl) {
		close(fd);
		return -1;
	}
	size_t len = 0;
	ssize_t r;
	while (len + 1 < sizeof head && (r = recv(fd, head + len, sizeof head - 1 - len, 0)) > 0)
		len += (size_t)r;
	close(fd);
	head[len] = '\0';
	if (len < 12 || strncmp(head, "HTTP/1.1 ", 9) != 0)
		return -1;
	*retry_after = strstr(head, "Retry-After:") != NULL;
	return atoi(head + 9);
}

struct client {
	int port, id;
	const char *run;
	int sent, answered;
	int unavailable, no_answer, positive_during_outage, no_retry_after;
	volatile int stop;
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	char id[96];
	for (int i = 0; !c->stop || i < c->sent; i++) {
		if (c->stop)
			break;
		snprintf(id, sizeof id, "%s-%d-%04d", c->run, c->id, i);
		c->sent = i + 1;
		for (;;) {
			int ra = 0, st = post_patient(c->port, id, &ra);
			long long now = mono_ms(), d = atomic_load(&down_at), u = atomic_load(&up_at);
			if (st == 200 || st == 201) {
				/* 1 s of grace for a commit acknowledged as the broker stopped */
				if (d && now > d + 1000 && !u)
					c->positive_during_outage++;
				c->answered++;
				break;
			}
			if (st == 503) {
				c->no_retry_after += !ra;
				c->unavailable++;
			} else {
				c->no_answer++;
			}
			usleep(200000);
		}
		usleep(20000);
	}
	return NULL;
}

Test(fhir_outage, broker_down_then_back, .timeout = 400)
{
	char conf[300], logp[300], inst[128], state[128], dlq[128], prefix[128], run[64];
	const char *src = getenv("HB_SRCDIR");
	if (services("status >/dev/null") != 0)
		cr_skip_test("the broker is not one tests/services/kafka.sh started; cannot pause it");
	itest_unique_name(inst, sizeof inst, "itest-fhout");
	itest_unique_name(state, sizeof state, "itest.fhostate");
	itest_unique_name(dlq, sizeof dlq, "itest.fhodlq");
	itest_unique_name(prefix, sizeof prefix, "itest.fho");
	itest_unique_name(run, sizeof run, "OUT");
	snprintf(conf, sizeof conf, "/tmp/%s.conf", inst);
	snprintf(logp, sizeof logp, "/tmp/%s.log", inst);
	int port = 21000 + getpid() % 8000;
	FILE *f = fopen(conf, "w");
	fprintf(f,
		"[bridge]\ninstance = %s\nmappings = %s/mappings\nschemas = %s/conf/schemas\n"
		"[kafka]\nbootstrap.servers = %s\nreconnect.backoff.max.ms = 1000\n"
		"[topics]\npartitions = 3\ndeadletter = %s\nstate = %s\nprefix = %s.\n"
		"[publisher]\nlanes = 2\nlinger = 2ms\nmax.inflight = 40\n"
		"[http]\nbind = 127.0.0.1:0\n"
		"[fhir ehr]\nbind = 127.0.0.1:%d\nretry.after = 1\n",
		inst, src, src, itest_bootstrap(), dlq, state, prefix, port);
	fclose(f);
	pid_t pid = itest_daemon_start_ports(conf, logp, NULL, 0);

	struct client cs[NCLIENTS];
	pthread_t th[NCLIENTS];
	for (int i = 0; i < NCLIENTS; i++) {
		cs[i] = (struct client){ .port = port, .id = i, .run = run };
		pthread_create(&th[i], NULL, client_main, &cs[i]);
	}
	sleep(3);
	cr_assert_eq(services("pause"), 0);
	atomic_store(&down_at, mono_ms());
	sleep(OUTAGE_S);
	atomic_store(&up_at, mono_ms());
	cr_assert_eq(services("resume"), 0);
	sleep(10);
	for (int i = 0; i < NCLIENTS; i++)
		cs[i].stop = 1;
	int total = 0, unavailable = 0, no_answer = 0, positive = 0, no_ra = 0;
	for (int i = 0; i < NCLIENTS; i++) {
		pthread_join(th[i], NULL);
		total += cs[i].answered;
		unavailable += cs[i].unavailable;
		no_answer += cs[i].no_answer;
		positive += cs[i].positive_during_outage;
		no_ra += cs[i].no_retry_after;
	}
	cr_assert_eq(no_ra, 0, "503 without Retry-After");
	cr_log_info("outage: %d resources answered, %d answers 503, %d without an answer (resent), "
		    "%d positive during the outage", total, unavailable, no_answer, positive);
	cr_assert_eq(positive, 0, "2xx while the broker was down (log %s)", logp);
	cr_assert_gt(unavailable, 0, "never 503 while the broker was down (log %s)", logp);

	char topic[256], **vals;
	snprintf(topic, sizeof topic, "%s.patient.updated", prefix);
	int got = itest_consume_all(topic, "read_committed", total + 1, 10000, &vals);
	int *seen = calloc((size_t)NCLIENTS * 10000, sizeof *seen);
	for (int v = 0; v < got; v++) {
		const char *p = strstr(vals[v], run);
		int c, i;
		if (p && sscanf(p + strlen(run), "-%d-%d", &c, &i) == 2 && c < NCLIENTS && i < 10000)
			seen[c * 10000 + i]++;
	}
	itest_free_values(vals, got);
	for (int c = 0; c < NCLIENTS; c++)
		for (int i = 0; i < cs[c].answered; i++)
			cr_assert_eq(seen[c * 10000 + i], 1, "client %d resource %d published %d times", c, i,
				     seen[c * 10000 + i]);
	cr_assert_eq(got, total, "events %d, answered %d", got, total);
	free(seen);

	/* Idle, then the broker goes: a new request waits for the shared
	 * ledger's barrier, which cannot pass. It counts as waiting for Kafka:
	 * once it has waited unavailable.after (5 s), new requests get 503 and
	 * Retry-After, as when a commit waits, not silence. */
	char idle1[96], idle2[96];
	int ra = 0, st;
	snprintf(idle1, sizeof idle1, "%s-idle-1", run);
	snprintf(idle2, sizeof idle2, "%s-idle-2", run);
	cr_assert_eq(services("pause"), 0);
	st = post_patient(port, idle1, &ra);
	cr_assert(st == -1 || st == 503, "a request while the broker is down: %d (log %s)", st, logp);
	sleep(4);
	st = post_patient(port, idle2, &ra);
	cr_assert_eq(st, 503, "a request 6 s into the outage: %d, not 503 (log %s)", st, logp);
	cr_assert(ra, "503 without Retry-After");
	cr_assert_eq(services("resume"), 0);
	for (int i = 0; i < 100 && (st = post_patient(port, idle1, &ra)) != 200 && st != 201; i++)
		usleep(300000);
	cr_assert(st == 200 || st == 201, "after the outage: %d (log %s)", st, logp);
	cr_assert_eq(itest_count_with(topic, idle1, 5000), 1);
	cr_assert_eq(itest_daemon_stop(pid), 0);
}

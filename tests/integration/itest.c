#include "itest.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *need_env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v)
		cr_assert_fail("%s is not set: run the integration tests through "
			       "tests/integration/run.sh (make check), which starts the services", name);
	return v;
}

const char *itest_bootstrap(void) { return need_env("HB_KAFKA_BOOTSTRAP"); }
const char *itest_registry_url(void) { return need_env("SCHEMA_REGISTRY_URL"); }

void itest_unique_name(char *buf, size_t cap, const char *prefix)
{
	static int counter;
	snprintf(buf, cap, "%s-%ld-%d-%ld", prefix, (long)getpid(), ++counter, (long)time(NULL));
}

rd_kafka_conf_t *itest_conf(const char *key, ...)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	va_list ap;

	cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", itest_bootstrap(), err, sizeof err),
		     RD_KAFKA_CONF_OK, "%s", err);
	va_start(ap, key);
	for (const char *k = key; k; k = va_arg(ap, const char *)) {
		const char *v = va_arg(ap, const char *);
		cr_assert_eq(rd_kafka_conf_set(conf, k, v, err, sizeof err), RD_KAFKA_CONF_OK,
			     "%s=%s: %s", k, v, err);
	}
	va_end(ap);
	return conf;
}

int itest_create_topic(const char *topic, int partitions, char *errstr, size_t errstr_size)
{
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, itest_conf(NULL), errstr, errstr_size);
	rd_kafka_NewTopic_t *nt = NULL;
	rd_kafka_queue_t *q = NULL;
	rd_kafka_event_t *ev = NULL;
	int rc = -1;

	if (!rk)
		return -1;
	nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, errstr_size);
	if (!nt)
		goto out;
	q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	ev = rd_kafka_queue_poll(q, 30000);
	if (!ev) {
		snprintf(errstr, errstr_size, "CreateTopics timed out");
		goto out;
	}
	if (rd_kafka_event_error(ev)) {
		snprintf(errstr, errstr_size, "%s", rd_kafka_event_error_string(ev));
		goto out;
	}
	{
		const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
		size_t n;
		const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
		if (n != 1 || (rd_kafka_topic_result_error(tr[0]) &&
			       rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)) {
			snprintf(errstr, errstr_size, "%s",
				 n ? rd_kafka_topic_result_error_string(tr[0]) : "no result");
			goto out;
		}
	}
	/* Wait until the partition leaders are known. */
	for (int i = 0; i < 100; i++) {
		const rd_kafka_metadata_t *md = NULL;
		rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
		int ok = rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
			 md->topic_cnt == 1 && md->topics[0].err == 0 &&
			 md->topics[0].partition_cnt == partitions;
		if (ok)
			for (int p = 0; p < partitions; p++)
				ok = ok && md->topics[0].partitions[p].leader >= 0;
		if (md)
			rd_kafka_metadata_destroy(md);
		rd_kafka_topic_destroy(t);
		if (ok) {
			rc = 0;
			break;
		}
		usleep(100 * 1000);
	}
	if (rc)
		snprintf(errstr, errstr_size, "topic %s has no leaders after 10 s", topic);
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	if (nt)
		rd_kafka_NewTopic_destroy(nt);
	if (q)
		rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	return rc;
}

/* Read topic from the beginning with the given isolation level, calling
 * cb(value, len, opaque) per record, until `expect` records were seen
 * (expect < 0: no limit) or timeout_ms passed without a new one. Returns the
 * number of records seen. */
static int consume_each(const char *topic, const char *isolation, int expect, int timeout_ms,
			void (*cb)(const void *v, size_t len, void *opaque), void *opaque)
{
	char err[512], group[128];
	rd_kafka_t *rk;
	rd_kafka_topic_partition_list_t *sub;
	int n = 0;
	long long idle_since;

	itest_unique_name(group, sizeof group, "itest-group");
	rk = rd_kafka_new(RD_KAFKA_CONSUMER,
			  itest_conf("group.id", group, "isolation.level", isolation,
				     "auto.offset.reset", "earliest", "enable.auto.commit", "false",
				     NULL),
			  err, sizeof err);
	cr_assert_not_null(rk, "%s", err);
	rd_kafka_poll_set_consumer(rk);
	sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
	cr_assert_eq(rd_kafka_subscribe(rk, sub), 0);
	rd_kafka_topic_partition_list_destroy(sub);

	idle_since = (long long)time(NULL) * 1000;
	while (n < expect || expect < 0) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		long long now = (long long)time(NULL) * 1000;
		if (!m) {
			if (now - idle_since > timeout_ms)
				break;
			continue;
		}
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				fprintf(stderr, "consume: %s\n", rd_kafka_message_errstr(m));
		} else {
			idle_since = now;
			cb(m->payload, m->len, opaque);
			n++;
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return n;
}

struct collect {
	char **vals;
	int n, cap;
};

static void collect_cb(const void *v, size_t len, void *opaque)
{
	struct collect *c = opaque;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->vals = realloc(c->vals, (size_t)c->cap * sizeof *c->vals);
	}
	c->vals[c->n++] = strndup(v ? (const char *)v : "", len);
}

int itest_consume_all(const char *topic, const char *isolation, int expect, int timeout_ms,
		      char ***values_out)
{
	struct collect c = { NULL, 0, 0 };
	consume_each(topic, isolation, expect, timeout_ms, collect_cb, &c);
	*values_out = c.vals ? c.vals : calloc(1, sizeof(char *));
	return c.n;
}

struct count {
	const char *needle;
	int n;
};

static void count_cb(const void *v, size_t len, void *opaque)
{
	struct count *c = opaque;
	if (v && memmem(v, len, c->needle, strlen(c->needle)))
		c->n++;
}

int itest_count_with(const char *topic, const char *needle, int timeout_ms)
{
	struct count c = { needle, 0 };
	consume_each(topic, "read_committed", -1, timeout_ms, count_cb, &c);
	return c.n;
}

void itest_tally_cb(struct pub_job *job, enum pub_status status, const char *reason, void *opaque)
{
	struct itest_tally *t = opaque;
	if (status == PUB_COMMITTED)
		t->committed++;
	else
		t->failed++;
	pub_job_free(job);
}

void itest_free_values(char **values, int n)
{
	for (int i = 0; i < n; i++)
		free(values[i]);
	free(values);
}

struct buf {
	char *p;
	size_t len;
};

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t n = size * nmemb;
	b->p = realloc(b->p, b->len + n + 1);
	memcpy(b->p + b->len, ptr, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

long itest_http(const char *method, const char *url, const char *body, char **body_out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdr = NULL;
	struct buf b = { calloc(1, 1), 0 };
	long status = -1;

	hdr = curl_slist_append(hdr, "Content-Type: application/vnd.schemaregistry.v1+json");
	hdr = curl_slist_append(hdr, "Accept: application/vnd.schemaregistry.v1+json, application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	*body_out = b.p;
	return status;
}

/* ---- the daemon ---------------------------------------------------------- */

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

static pid_t daemon_start(const char *conf_path, const char *log_path, char *line, size_t cap);

pid_t itest_daemon_start_ports(const char *conf_path, const char *log_path, int *ports, int max)
{
	char line[256];
	pid_t pid = daemon_start(conf_path, log_path, line, sizeof line);
	cr_assert(strncmp(line, "READY", 5) == 0, "bad ready line: %s", line);
	const char *p = line + 5;
	int i = 0, used;
	for (; i < max && sscanf(p, " %d%n", &ports[i], &used) == 1; i++)
		p += used;
	for (; i < max; i++)
		ports[i] = -1; /* fewer listeners configured */
	return pid;
}

pid_t itest_daemon_start(const char *conf_path, const char *log_path, int *port)
{
	int ports[1];
	pid_t pid = itest_daemon_start_ports(conf_path, log_path, ports, 1);
	if (port)
		*port = ports[0];
	return pid;
}

pid_t itest_daemon_start_http(const char *conf_path, const char *log_path, int *port,
			      int *http_port)
{
	char line[256];
	pid_t pid = daemon_start(conf_path, log_path, line, sizeof line);
	const char *h = strstr(line, " http=");
	cr_assert(sscanf(line, "READY %d", port) == 1, "bad ready line: %s", line);
	cr_assert(h && sscanf(h, " http=%d", http_port) == 1, "no HTTP port in: %s", line);
	return pid;
}

static pid_t daemon_start(const char *conf_path, const char *log_path, char *line, size_t cap)
{
	const char *build = getenv("HB_BUILDDIR");
	char bin[1024];
	int pfd[2];
	pid_t pid;
	FILE *f;

	cr_assert_not_null(build, "HB_BUILDDIR is not set");
	snprintf(bin, sizeof bin, "%s/hl7bridge", build);
	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		char fdarg[16];
		/* A test that fails stops at its assertion: the daemon must not
		 * outlive it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (log >= 0) {
			dup2(log, 2);
			dup2(log, 1);
		}
		close(pfd[0]);
		snprintf(fdarg, sizeof fdarg, "%d", pfd[1]);
		execl(bin, bin, "run", "-c", conf_path, "--ready-fd", fdarg, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	if (!fgets(line, (int)cap, f)) {
		int st;
		fclose(f);
		waitpid(pid, &st, 0);
		cr_assert_fail("hl7bridge run exited before it was ready (status %d); see %s", st, log_path);
	}
	fclose(f);
	return pid;
}

int itest_daemon_stop(pid_t pid)
{
	int st;
	kill(pid, SIGTERM);
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int itest_mllp_connect(int port)
{
	struct sockaddr_in a;
	struct timeval tv = { 30, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

int itest_mllp_exchange(int fd, const char *msg, size_t len, char *ack, size_t cap)
{
	char *frame = malloc(len + 3);
	frame[0] = 0x0b;
	memcpy(frame + 1, msg, len);
	frame[len + 1] = 0x1c;
	frame[len + 2] = 0x0d;
	if (write(fd, frame, len + 3) != (ssize_t)(len + 3)) {
		free(frame);
		return -1;
	}
	free(frame);
	return itest_mllp_read(fd, ack, cap);
}

int itest_mllp_read(int fd, char *ack, size_t cap)
{
	size_t n = 0;
	int started = 0;
	for (;;) {
		char ch;
		ssize_t r = read(fd, &ch, 1);
		if (r <= 0)
			return -1;
		if (!started) {
			started = ch == 0x0b;
			continue;
		}
		if (ch == 0x1c) {
			(void)!read(fd, &ch, 1); /* the CR */
			ack[n] = '\0';
			return (int)n;
		}
		if (n + 1 < cap)
			ack[n++] = ch;
	}
}

void itest_msa1(const char *ack, char out[3])
{
	const char *m = strstr(ack, "MSA");
	out[0] = '\0';
	if (m && m[3] && m[4] && m[5]) {
		out[0] = m[4];
		out[1] = m[5];
		out[2] = '\0';
	}
}

char *itest_sample(const char *relpath, size_t *len)
{
	char path[1024];
	const char *src = getenv("HB_SRCDIR");
	FILE *f;
	long n;
	char *buf;
	snprintf(path, sizeof path, "%s/%s", src ? src : ".", relpath);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	/* samples end in a terminator or newline: drop trailing LF/CR runs */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (len)
		*len = (size_t)n;
	return buf;
}

char *itest_set_msh10(const char *msg, const char *id)
{
	const char *p = msg;
	size_t fields = 0;
	char sep = msg[3];
	/* MSH-1 is the separator itself: MSH-10 starts after the 9th separator. */
	while (*p && fields < 9) {
		if (*p == sep)
			fields++;
		p++;
	}
	const char *end = p;
	while (*end && *end != sep && *end != '\r' && *end != '\n')
		end++;
	size_t pre = (size_t)(p - msg), idl = strlen(id), post = strlen(end);
	char *out = malloc(pre + idl + post + 1);
	memcpy(out, msg, pre);
	memcpy(out + pre, id, idl);
	memcpy(out + pre + idl, end, post + 1);
	return out;
}

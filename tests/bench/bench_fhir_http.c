/* bench_fhir_http — load for the [fhir] endpoint: C keep-alive connections,
 * one POST [base]/Patient in flight each (a distinct Patient every time, so
 * every request is a real commit), for S seconds. Prints requests/s and the
 * latency percentiles (send → complete answer).
 *
 *   bench_fhir_http PORT CONNECTIONS SECONDS TAG */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	char out[1024];
	size_t olen, ooff;
	char in[4096];
	size_t ilen;
	double sent;
	long seq;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void next_request(struct conn *c, const char *tag, int idx)
{
	char body[512];
	int bl = snprintf(body, sizeof body,
			  "{\"resourceType\":\"Patient\",\"id\":\"%s-%d-%ld\",\"identifier\":[{\"type\":"
			  "{\"coding\":[{\"code\":\"MR\"}]},\"value\":\"%s-%d-%ld\"}],\"gender\":\"female\"}",
			  tag, idx, c->seq, tag, idx, c->seq);
	c->seq++;
	c->olen = (size_t)snprintf(c->out, sizeof c->out,
				   "POST /fhir/Patient HTTP/1.1\r\nHost: b\r\nContent-Type: application/fhir+json\r\n"
				   "Content-Length: %d\r\n\r\n%s", bl, body);
	c->ooff = 0;
	c->ilen = 0;
	c->sent = now_s();
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: bench_fhir_http PORT CONNECTIONS SECONDS TAG\n");
		return 2;
	}
	int port = atoi(argv[1]), n = atoi(argv[2]);
	double secs = atof(argv[3]);
	const char *tag = argv[4];
	struct conn *cs = calloc((size_t)n, sizeof *cs);
	struct pollfd *pf = calloc((size_t)n, sizeof *pf);
	size_t cap = 1 << 20, nlat = 0;
	double *lat = malloc(cap * sizeof *lat);
	long bad = 0;
	for (int i = 0; i < n; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
		int one = 1;
		a.sin_addr.s_addr = htonl(0x7f000001);
		cs[i].fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(cs[i].fd, (struct sockaddr *)&a, sizeof a) != 0) {
			perror("connect");
			return 1;
		}
		setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		next_request(&cs[i], tag, i);
	}
	double t0 = now_s(), end = t0 + secs;
	int active = n;
	while (active > 0) {
		for (int i = 0; i < n; i++) {
			pf[i].fd = cs[i].fd;
			pf[i].events = cs[i].fd < 0 ? 0 : cs[i].ooff < cs[i].olen ? POLLOUT : POLLIN;
		}
		if (poll(pf, (nfds_t)n, 1000) < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			struct conn *c = &cs[i];
			if (c->fd < 0 || !pf[i].revents)
				continue;
			if (c->ooff < c->olen) {
				ssize_t w = send(c->fd, c->out + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
				if (w <= 0) {
					fprintf(stderr, "connection %d: send failed\n", i);
					return 1;
				}
				c->ooff += (size_t)w;
				continue;
			}
			ssize_t r = recv(c->fd, c->in + c->ilen, sizeof c->in - 1 - c->ilen, 0);
			if (r <= 0) {
				fprintf(stderr, "connection %d: closed by the server\n", i);
				return 1;
			}
			c->ilen += (size_t)r;
			c->in[c->ilen] = '\0';
			char *e = strstr(c->in, "\r\n\r\n"), *cl = strcasestr(c->in, "Content-Length:");
			if (!e || !cl || c->ilen < (size_t)(e + 4 - c->in) + (size_t)atol(cl + 15))
				continue;
			double t = now_s();
			if (nlat == cap)
				lat = realloc(lat, (cap *= 2) * sizeof *lat);
			lat[nlat++] = t - c->sent;
			if (strncmp(c->in + 9, "201", 3) != 0)
				bad++;
			if (t >= end) {
				close(c->fd);
				c->fd = -1;
				active--;
			} else {
				next_request(c, tag, i);
			}
		}
	}
	double el = now_s() - t0;
	qsort(lat, nlat, sizeof *lat, cmp);
	printf("connections %d: %zu requests in %.1f s, %.0f req/s, latency ms p50 %.1f p99 %.1f max %.1f, "
	       "not 201: %ld\n", n, nlat, el, (double)nlat / el, nlat ? lat[nlat / 2] * 1e3 : 0.0,
	       nlat ? lat[(size_t)((double)nlat * 0.99)] * 1e3 : 0.0, nlat ? lat[nlat - 1] * 1e3 : 0.0,
	       bad);
	return bad ? 1 : 0;
}

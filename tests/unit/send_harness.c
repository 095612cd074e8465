/* send_harness — see send_harness.h. */
#include "send_harness.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define MAX_ARGS 40

char send_tmp[512];

static const char *builddir(void)
{
	const char *b = getenv("HB_BUILDDIR");
	return b && *b ? b : ".";
}

const char *send_srcdir(void)
{
	const char *s = getenv("HB_SRCDIR");
	return s && *s ? s : HB_SRCDIR;
}

void send_setup(void)
{
	char cmd[600];
	/* The peer writes to sockets the client may have closed. */
	signal(SIGPIPE, SIG_IGN);
	snprintf(cmd, sizeof cmd, "mkdir -p '%s/tests/tmp'", builddir());
	cr_assert_eq(system(cmd), 0);
	snprintf(send_tmp, sizeof send_tmp, "%s/tests/tmp/send.XXXXXX", builddir());
	cr_assert_not_null(mkdtemp(send_tmp), "mkdtemp: %s", strerror(errno));
}

void send_teardown(void)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", send_tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", send_tmp);
}

/* The TLS test set, generated once per build tree (gen.sh is idempotent). */
const char *tls_file(const char *name)
{
	static char dir[512];
	static char path[8][600];
	static int next;
	if (!dir[0]) {
		char cmd[1200];
		snprintf(dir, sizeof dir, "%s/tests/tmp/tls", builddir());
		snprintf(cmd, sizeof cmd, "sh '%s/tests/fixtures/tls/gen.sh' '%s'", send_srcdir(), dir);
		cr_assert_eq(system(cmd), 0, "gen.sh failed");
	}
	char *p = path[next++ % 8];
	snprintf(p, sizeof path[0], "%s/%s", dir, name);
	return p;
}

static char *slurp(const char *path)
{
	size_t len;
	char err[256];
	char *s = util_read_file(path, 64 << 20, &len, err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	return s;
}

/* Start hl7bridge send with the arguments; stdout and stderr go to files
 * in the test's directory. */
static pid_t spawn_send(const char *first, va_list ap)
{
	const char *argv[MAX_ARGS];
	char bin[600], outp[600], errp[600];
	int n = 0;
	pid_t pid;

	snprintf(bin, sizeof bin, "%s/hl7bridge", builddir());
	snprintf(outp, sizeof outp, "%s/stdout", send_tmp);
	snprintf(errp, sizeof errp, "%s/stderr", send_tmp);
	argv[n++] = bin;
	argv[n++] = "send";
	for (const char *a = first; a && n < MAX_ARGS - 1; a = va_arg(ap, const char *))
		argv[n++] = a;
	argv[n] = NULL;
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(o, 1);
		dup2(e, 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

void wait_send(struct run_out *r, pid_t pid)
{
	char outp[600], errp[600];
	int st;

	snprintf(outp, sizeof outp, "%s/stdout", send_tmp);
	snprintf(errp, sizeof errp, "%s/stderr", send_tmp);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r->out = slurp(outp);
	r->err = slurp(errp);
	/* In a sanitizer build, a report must fail the test whatever the
	 * expected exit code. */
	cr_assert_null(strstr(r->err, "Sanitizer"), "%s", r->err);
	cr_assert_null(strstr(r->err, "runtime error"), "%s", r->err);
}

/* Run hl7bridge send with the arguments (NULL-terminated). */
void run_send(struct run_out *r, const char *first, ...)
{
	va_list ap;
	va_start(ap, first);
	pid_t pid = spawn_send(first, ap);
	va_end(ap);
	wait_send(r, pid);
}

/* The same, without waiting. */
pid_t start_send(const char *first, ...)
{
	va_list ap;
	va_start(ap, first);
	pid_t pid = spawn_send(first, ap);
	va_end(ap);
	return pid;
}

void run_free(struct run_out *r)
{
	free(r->out);
	free(r->err);
}

size_t count_lines(const char *s, const char *needle)
{
	size_t n = 0;
	for (const char *l = s; *l; ) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		char line[2048];
		snprintf(line, sizeof line, "%.*s", (int)len, l);
		if (!needle || strstr(line, needle))
			n++;
		l += len + (e ? 1 : 0);
	}
	return n;
}

void msg(char *out, size_t size, const char *id)
{
	snprintf(out, size,
		 "MSH|^~\\&|SENDER|FAC|BRIDGE|HUB|20261127010000||ADT^A01^ADT_A01|%s|P|2.5.1\r"
		 "PID|1||T-%s^^^TEST^MR||SYNTHETIC^PERSON\r", id, id);
}

/* A file of concatenated messages with these MSH-10s (NULL-terminated). */
const char *msg_file(const char *name, ...)
{
	static char path[4][600];
	static int next;
	char *p = path[next++ % 4], m[512];
	va_list ap;
	const char *id;
	FILE *f;

	snprintf(p, sizeof path[0], "%s/%s", send_tmp, name);
	f = fopen(p, "wb");
	cr_assert_not_null(f);
	va_start(ap, name);
	while ((id = va_arg(ap, const char *)) != NULL) {
		msg(m, sizeof m, id);
		fputs(m, f);
	}
	va_end(ap);
	fclose(f);
	return p;
}

void start_peer(struct mllp_peer **p, char *hostport, size_t size,
		       const struct mllp_peer_opts *o)
{
	*p = mllp_peer_start(o);
	cr_assert_not_null(*p);
	snprintf(hostport, size, "127.0.0.1:%d", mllp_peer_port(*p));
}


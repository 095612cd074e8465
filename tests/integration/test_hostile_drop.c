/*
 * File drops against hostile or careless producers, with the real broker
 * (issue 14): a file truncated in work/ by a producer that kept it open (no
 * SIGBUS, no duplicates after a crash), symlinks, FIFOs, directories and hard
 * links (never followed or read), unreadable files, reports that cannot be
 * written (long names, a full disk), files cut short, and file names that try
 * to inject log lines.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <linux/capability.h>

#include "itest.h"

struct env {
	char dir[256], conf[300], log[300], state[128], dlq[128], inst[128], run[64], work[400];
};

static void setup(struct env *e, const char *extra)
{
	const char *src = getenv("HB_SRCDIR");
	char p[600];
	FILE *f;
	itest_unique_name(e->inst, sizeof e->inst, "itest-hdrop");
	itest_unique_name(e->state, sizeof e->state, "itest.hstate");
	itest_unique_name(e->dlq, sizeof e->dlq, "itest.hdlq");
	snprintf(e->run, sizeof e->run, "H%ld%d", (long)time(NULL) % 100000, getpid() % 1000);
	snprintf(e->dir, sizeof e->dir, "/tmp/%s", e->inst);
	snprintf(e->conf, sizeof e->conf, "%s.conf", e->dir);
	snprintf(e->log, sizeof e->log, "%s.log", e->dir);
	snprintf(e->work, sizeof e->work, "%s/work/%s", e->dir, e->inst);
	mkdir(e->dir, 0755);
	snprintf(p, sizeof p, "%s/inbox", e->dir);
	mkdir(p, 0755);
	f = fopen(e->conf, "w");
	fprintf(f,
		"[http]\nbind = 127.0.0.1:0\n[bridge]\ninstance = %s\nmappings = %s/mappings\nschemas = %s/conf/schemas\n"
		"[kafka]\nbootstrap.servers = %s\n"
		"[topics]\npartitions = 3\ndeadletter = %s\nstate = %s\n"
		"[publisher]\nlanes = 2\nlinger = 2ms\n"
		"[drop main]\npath = %s\nquiet.period = 1s\nrescan = 1s\nmax.messages.per.transaction = 200\n"
		"threads = 1\n%s",
		e->inst, src, src, itest_bootstrap(), e->dlq, e->state, e->dir, extra ? extra : "");
	fclose(f);
}

/* How the daemon is started: without the capabilities that let root read
 * any file (so that mode 000 means unreadable), or with a file size limit
 * (writes past it fail as on a full disk). */
struct how {
	int no_dac;
	long fsize;
};

static pid_t start(struct env *e, const struct how *how, int *http_port)
{
	const char *build = getenv("HB_BUILDDIR");
	char bin[1024], line[256];
	int pfd[2];
	cr_assert_not_null(build);
	snprintf(bin, sizeof bin, "%s/hl7bridge", build);
	cr_assert_eq(pipe(pfd), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		char fdarg[16];
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int log = open(e->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (log >= 0) {
			dup2(log, 2);
			dup2(log, 1);
		}
		if (how && how->no_dac &&
		    (prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) != 0 ||
		     prctl(PR_CAPBSET_DROP, CAP_DAC_READ_SEARCH, 0, 0, 0) != 0) &&
		    geteuid() == 0)
			_exit(126);
		if (how && how->fsize) {
			struct rlimit rl = { (rlim_t)how->fsize, (rlim_t)how->fsize };
			signal(SIGXFSZ, SIG_IGN); /* a write past the limit fails with EFBIG */
			setrlimit(RLIMIT_FSIZE, &rl);
		}
		close(pfd[0]);
		snprintf(fdarg, sizeof fdarg, "%d", pfd[1]);
		execl(bin, bin, "run", "-c", e->conf, "--ready-fd", fdarg, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	FILE *f = fdopen(pfd[0], "r");
	if (!fgets(line, sizeof line, f)) {
		int st;
		fclose(f);
		waitpid(pid, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 126)
			cr_skip_test("cannot drop CAP_DAC_OVERRIDE here");
		cr_assert_fail("hl7bridge run exited before it was ready (status %d); see %s", st, e->log);
	}
	fclose(f);
	const char *h = strstr(line, " http=");
	if (http_port)
		*http_port = h ? atoi(h + 6) : -1;
	return pid;
}

static int stop(pid_t pid)
{
	int st;
	kill(pid, SIGTERM);
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int alive(pid_t pid)
{
	return waitpid(pid, NULL, WNOHANG) == 0;
}

static void write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

/* Written beside the inbox, renamed in: complete at once. */
static void drop_file(struct env *e, const char *name, const void *buf, size_t len)
{
	char tmp[600], to[700];
	snprintf(tmp, sizeof tmp, "%s/inbox/.part", e->dir);
	snprintf(to, sizeof to, "%s/inbox/%s", e->dir, name);
	write_file(tmp, buf, len);
	cr_assert_eq(rename(tmp, to), 0);
}

static int exists(struct env *e, const char *sub, const char *name)
{
	char p[800];
	struct stat st;
	snprintf(p, sizeof p, "%s/%s/%s", e->dir, sub, name);
	return lstat(p, &st) == 0;
}

static int wait_in(struct env *e, const char *sub, const char *name, int secs)
{
	for (int i = 0; i < secs * 20; i++) {
		if (exists(e, sub, name))
			return 1;
		usleep(50000);
	}
	return 0;
}

static json_t *load_report(struct env *e, const char *sub, const char *name)
{
	char p[800];
	snprintf(p, sizeof p, "%s/%s/%s.errors.json", e->dir, sub, name);
	return json_load_file(p, 0, NULL);
}

static const char *report_error(json_t *r)
{
	const char *s = json_string_value(json_object_get(r, "error"));
	return s ? s : "";
}

static char *slurp(const char *path)
{
	size_t len;
	char *p = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return strdup("");
	fseek(f, 0, SEEK_END);
	len = (size_t)ftell(f);
	rewind(f);
	p = malloc(len + 1);
	len = fread(p, 1, len, f);
	p[len] = '\0';
	fclose(f);
	return p;
}

/* Wait until the daemon's log holds needle. */
static int wait_log(struct env *e, const char *needle, int secs)
{
	for (int i = 0; i < secs * 200; i++) {
		char *log = slurp(e->log);
		int found = strstr(log, needle) != NULL;
		free(log);
		if (found)
			return 1;
		usleep(5000);
	}
	return 0;
}

/* n ADT^A08 messages with MSH-10 <prefix><6 digits>, CR-terminated; the
 * first `bad` lose PID-3 (a mapping rejects them: reported). */
static char *adt_batch_bad(const char *prefix, int n, int bad, size_t *len)
{
	size_t sl;
	char *sample = itest_sample("samples/hl7v2/adt_a08.hl7", &sl);
	size_t cap = (size_t)n * (sl + 64) + 16, o = 0;
	char *out = malloc(cap);
	for (int i = 0; i < n; i++) {
		char id[64];
		snprintf(id, sizeof id, "%s%06d", prefix, i);
		char *m = itest_set_msh10(sample, id);
		if (i < bad) {
			char *p3 = strstr(m, "\rPID|");
			cr_assert_not_null(p3);
			p3 += 5;
			for (int k = 0; k < 2; k++)
				p3 = strchr(p3, '|') + 1; /* now at PID-3 */
			char *end = strchr(p3, '|');
			memmove(p3, end, strlen(end) + 1);
		}
		size_t ml = strlen(m);
		memcpy(out + o, m, ml);
		o += ml;
		out[o++] = '\r'; /* itest_sample strips the last terminator */
		free(m);
	}
	free(sample);
	*len = o;
	return out;
}

static char *adt_batch(const char *prefix, int n, size_t *len)
{
	return adt_batch_bad(prefix, n, 0, len);
}

/* Messages of prefix in the events topic (read_committed): how many distinct
 * indexes, how many duplicates, the highest index seen. */
static void tally(const char *prefix, int per, int *distinct, int *dups, int *max_index)
{
	char **vals;
	char *seen = calloc((size_t)per, 1);
	int n = itest_consume_all("healthcare.patient.updated", "read_committed", -1, 4000, &vals);
	*distinct = *dups = 0;
	*max_index = -1;
	for (int i = 0; i < n; i++) {
		char *at = strstr(vals[i], prefix);
		if (!at)
			continue;
		int k = atoi(at + strlen(prefix));
		cr_assert(k >= 0 && k < per);
		if (seen[k])
			(*dups)++;
		else
			(*distinct)++;
		seen[k] = 1;
		*max_index = k > *max_index ? k : *max_index;
	}
	itest_free_values(vals, n);
	free(seen);
}

/* Item 2: a producer keeps the file open and truncates it right after the
 * claim. The file used to be mapped: the worker died of SIGBUS. */
Test(hostile_drop, truncated_after_claim_does_not_kill_the_daemon, .timeout = 300)
{
	struct env e;
	size_t len;
	char prefix[80], path[800], tmp[600];
	const int per = 20000;

	setup(&e, NULL);
	pid_t pid = start(&e, NULL, NULL);
	snprintf(prefix, sizeof prefix, "%sT", e.run);
	char *b = adt_batch(prefix, per, &len);
	snprintf(tmp, sizeof tmp, "%s/inbox/.part", e.dir);
	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert_eq(write(fd, b, len), (ssize_t)len);
	snprintf(path, sizeof path, "%s/inbox/big.hl7", e.dir);
	cr_assert_eq(rename(tmp, path), 0);
	/* once the worker has started on it: cut it inside a message, a third in */
	cr_assert(wait_log(&e, "publishing big.hl7", 60), "not taken (log %s)", e.log);
	cr_assert_eq(ftruncate(fd, (off_t)(len / 3 + 17)), 0);
	close(fd);
	int in_error = wait_in(&e, "error", "big.hl7", 120);
	cr_assert(alive(pid), "the daemon died (log %s)", e.log);
	cr_assert(in_error || exists(&e, "done", "big.hl7"), "the file was not finished (log %s)",
		  e.log);
	int distinct, dups, max;
	tally(prefix, per, &distinct, &dups, &max);
	cr_assert_eq(dups, 0, "%d duplicates", dups);
	if (in_error) {
		/* read before the cut: published whole as read, reported as changed;
		 * read after it: the cut message left out */
		json_t *r = load_report(&e, "error", "big.hl7");
		cr_assert_not_null(r, "no report in error/");
		cr_assert(strstr(report_error(r), "changed") || strstr(report_error(r), "incomplete"),
			  "%s", report_error(r));
		cr_assert_eq(distinct, (int)json_integer_value(json_object_get(r, "published")));
		json_decref(r);
	} else {
		cr_assert_eq(distinct, per);
	}
	cr_assert_eq(stop(pid), 0);
	free(b);
}

/* Item 2, after a crash: the daemon is killed while a file is published, the
 * file is truncated in work/, the daemon restarts. It used to hash the
 * truncated content as a new file and publish it again from message 0 (and
 * its cut last message as valid). */
Test(hostile_drop, truncated_in_work_after_a_crash_is_not_published_again, .timeout = 300)
{
	struct env e;
	size_t len;
	char prefix[80], wpath[800];
	const int per = 60000;

	setup(&e, NULL);
	pid_t pid = start(&e, NULL, NULL);
	snprintf(prefix, sizeof prefix, "%sC", e.run);
	char *b = adt_batch(prefix, per, &len);
	drop_file(&e, "crash.hl7", b, len);
	snprintf(wpath, sizeof wpath, "%s/crash.hl7", e.work);
	struct stat st;
	cr_assert(wait_log(&e, "publishing crash.hl7", 60), "not taken (log %s)", e.log);
	usleep(300000); /* some slices committed */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert(lstat(wpath, &st) == 0, "the file finished before the kill: make it larger");
	cr_assert_eq(truncate(wpath, (off_t)(len / 2 + 11)), 0);

	pid = start(&e, NULL, NULL);
	cr_assert(wait_in(&e, "error", "crash.hl7", 60), "not in error/ (log %s)", e.log);
	json_t *r = load_report(&e, "error", "crash.hl7");
	cr_assert_not_null(r);
	cr_assert(strstr(report_error(r), "changed in work/ after it was claimed"), "%s",
		  report_error(r));
	int before = (int)json_integer_value(json_object_get(r, "published_before"));
	cr_assert_eq(json_integer_value(json_object_get(r, "claimed_bytes")), (json_int_t)len);
	json_decref(r);
	int distinct, dups, max;
	tally(prefix, per, &distinct, &dups, &max);
	cr_assert_eq(dups, 0, "%d duplicates", dups);
	cr_assert_eq(distinct, before, "%d published, the report says %d", distinct, before);
	cr_assert_eq(max, before - 1);
	cr_assert_eq(stop(pid), 0);
	free(b);
}

static int has_claim_record(struct env *e)
{
	DIR *d = opendir(e->work);
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)))
		n += strstr(de->d_name, ".claim") != NULL;
	if (d)
		closedir(d);
	return n;
}

/* Item 3: nothing is followed, only regular files are read. */
Test(hostile_drop, links_fifos_and_directories_go_to_error, .timeout = 180)
{
	struct env e;
	size_t len;
	char prefix[80], secret[600], secret2[600], p[800];

	setup(&e, NULL);
	snprintf(prefix, sizeof prefix, "%sL", e.run);
	char *b = adt_batch(prefix, 5, &len);
	/* content outside the drop that must never be read */
	snprintf(secret, sizeof secret, "%s.secret", e.dir);
	write_file(secret, b, len);
	snprintf(secret2, sizeof secret2, "%s.secret2", e.dir);
	write_file(secret2, b, len);
	/* present at start: a symlink in the inbox, one left in work/ */
	snprintf(p, sizeof p, "%s/inbox/at-start.hl7", e.dir);
	cr_assert_eq(symlink(secret, p), 0);
	char w[600];
	snprintf(w, sizeof w, "%s/work", e.dir);
	mkdir(w, 0750);
	mkdir(e.work, 0750);
	snprintf(p, sizeof p, "%s/in-work.hl7", e.work);
	cr_assert_eq(symlink(secret, p), 0);

	pid_t pid = start(&e, NULL, NULL);
	/* renamed in */
	snprintf(p, sizeof p, "%s/inbox/.l", e.dir);
	cr_assert_eq(symlink(secret, p), 0);
	char to[800];
	snprintf(to, sizeof to, "%s/inbox/moved-link.hl7", e.dir);
	cr_assert_eq(rename(p, to), 0);
	/* created in place: a symlink, a dangling one, a hard link, a FIFO, a
	 * directory */
	snprintf(p, sizeof p, "%s/inbox/in-place-link.hl7", e.dir);
	cr_assert_eq(symlink(secret, p), 0);
	snprintf(p, sizeof p, "%s/inbox/dangling.hl7", e.dir);
	cr_assert_eq(symlink("/nonexistent/nothing", p), 0);
	snprintf(p, sizeof p, "%s/inbox/hard.hl7", e.dir);
	cr_assert_eq(link(secret2, p), 0);
	snprintf(p, sizeof p, "%s/inbox/fifo.hl7", e.dir);
	cr_assert_eq(mkfifo(p, 0600), 0);
	snprintf(p, sizeof p, "%s/inbox/dir.hl7", e.dir);
	cr_assert_eq(mkdir(p, 0750), 0);

	struct {
		const char *name, *why;
	} want[] = { { "at-start.hl7", "symbolic link" },   { "in-work.hl7", "symbolic link" },
		     { "moved-link.hl7", "symbolic link" }, { "in-place-link.hl7", "symbolic link" },
		     { "dangling.hl7", "symbolic link" },   { "hard.hl7", "hard links" },
		     { "fifo.hl7", "FIFO" },		    { "dir.hl7", "directory" } };
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		char rep[300];
		snprintf(rep, sizeof rep, "%s.errors.json", want[i].name);
		cr_expect(wait_in(&e, "error", rep, 30), "%s: no report in error/ (log %s)",
			  want[i].name, e.log);
		cr_expect(exists(&e, "error", want[i].name), "%s not in error/", want[i].name);
		json_t *r = load_report(&e, "error", want[i].name);
		cr_expect(strstr(report_error(r), want[i].why), "%s: %s", want[i].name,
			  report_error(r));
		json_decref(r);
		cr_expect(!exists(&e, "inbox", want[i].name), "%s still in the inbox", want[i].name);
	}
	/* moved as links: the targets are where they were, unread */
	struct stat st;
	cr_assert_eq(lstat(secret, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	snprintf(p, sizeof p, "%s/error/moved-link.hl7", e.dir);
	cr_assert_eq(lstat(p, &st), 0);
	cr_assert(S_ISLNK(st.st_mode));
	cr_assert_eq(itest_count_with("healthcare.patient.updated", prefix, 3000), 0,
		     "content outside the drop was published");
	cr_assert(alive(pid));
	cr_assert_eq(has_claim_record(&e), 0, "a claim record was left in work/");
	cr_assert_eq(stop(pid), 0);
	unlink(secret);
	unlink(secret2);
	free(b);
}

/* Item 3: allow.hardlinks = on takes a file with two names. */
Test(hostile_drop, hard_links_when_allowed, .timeout = 120)
{
	struct env e;
	size_t len;
	char prefix[80], other[600], p[800];

	setup(&e, "allow.hardlinks = on\n");
	snprintf(prefix, sizeof prefix, "%sK", e.run);
	char *b = adt_batch(prefix, 5, &len);
	snprintf(other, sizeof other, "%s.other", e.dir);
	write_file(other, b, len);
	pid_t pid = start(&e, NULL, NULL);
	snprintf(p, sizeof p, "%s/inbox/linked.hl7", e.dir);
	cr_assert_eq(link(other, p), 0);
	cr_assert(wait_in(&e, "done", "linked.hl7", 30), "not in done/ (log %s)", e.log);
	cr_assert_eq(itest_count_with("healthcare.patient.updated", prefix, 3000), 5);
	cr_assert_eq(stop(pid), 0);
	unlink(other);
	free(b);
}

/* Item 8: a file the daemon cannot read goes to error/ with a report. */
Test(hostile_drop, unreadable_file_goes_to_error, .timeout = 120)
{
	struct env e;
	size_t len;
	char prefix[80], p[800];
	struct how how = { .no_dac = 1 };

	setup(&e, NULL);
	snprintf(prefix, sizeof prefix, "%sU", e.run);
	char *b = adt_batch(prefix, 3, &len);
	pid_t pid = start(&e, &how, NULL);
	snprintf(p, sizeof p, "%s/inbox/.u", e.dir);
	write_file(p, b, len);
	cr_assert_eq(chmod(p, 0), 0);
	char to[800];
	snprintf(to, sizeof to, "%s/inbox/locked.hl7", e.dir);
	cr_assert_eq(rename(p, to), 0);
	cr_assert(wait_in(&e, "error", "locked.hl7.errors.json", 30), "no report (log %s)", e.log);
	json_t *r = load_report(&e, "error", "locked.hl7");
	cr_assert(strstr(report_error(r), "Permission denied"), "%s", report_error(r));
	json_decref(r);
	cr_assert(exists(&e, "error", "locked.hl7"));
	cr_assert_eq(itest_count_with("healthcare.patient.updated", prefix, 2000), 0);
	cr_assert_eq(stop(pid), 0);
	free(b);
}

static int count_entries(const char *dir, const char *part)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)))
		n += strstr(de->d_name, part) != NULL;
	if (d)
		closedir(d);
	return n;
}

static char *with_rejects(const char *prefix, int n, int bad, size_t *len)
{
	return adt_batch_bad(prefix, n, bad, len);
}

/* Item 12: reports of long names are written (shortened name), a report
 * that cannot be written is logged and counted, the file is not put in
 * done/ as if clean, and no temporary file is left. */
Test(hostile_drop, reports_survive_long_names_and_failures, .timeout = 180)
{
	struct env e;
	size_t len;
	char prefix[80], name[256], p[800];
	int http;

	setup(&e, NULL);
	/* left by a crash: this instance's empty temporary report, another
	 * instance's (not ours to remove), a claim record whose file is gone */
	char mine[800], theirs[800], orphan[800];
	snprintf(p, sizeof p, "%s/done", e.dir);
	mkdir(p, 0750);
	snprintf(mine, sizeof mine, "%s/done/.hb-0123456789ab-%s.tmp", e.dir, e.inst);
	snprintf(theirs, sizeof theirs, "%s/done/.hb-0123456789ab-%s-other.tmp", e.dir, e.inst);
	write_file(mine, "", 0);
	write_file(theirs, "", 0);
	snprintf(p, sizeof p, "%s/work", e.dir);
	mkdir(p, 0750);
	mkdir(e.work, 0750);
	snprintf(orphan, sizeof orphan, "%s/.gone.hl7.claim", e.work);
	write_file(orphan, "{\"file\": \"gone.hl7\", \"sha256\": \"00\"}", 36);
	pid_t pid = start(&e, NULL, &http);
	cr_assert_neq(access(mine, F_OK), 0, "a temporary report left by a crash was not removed");
	cr_assert_eq(access(theirs, F_OK), 0, "another instance's temporary file was removed");
	cr_assert_neq(access(orphan, F_OK), 0, "an orphan claim record was not removed");
	unlink(theirs);
	/* a 250-byte name with rejected messages: name + ".errors.json" is too
	 * long for the file system */
	snprintf(prefix, sizeof prefix, "%sN", e.run);
	char *b = with_rejects(prefix, 10, 2, &len);
	memset(name, 'n', 246);
	snprintf(name + 246, sizeof name - 246, ".hl7");
	drop_file(&e, name, b, len);
	cr_assert(wait_in(&e, "done", name, 30), "not in done/ (log %s)", e.log);
	snprintf(p, sizeof p, "%s/done", e.dir);
	cr_assert(count_entries(p, ".errors.json") == 1, "no (shortened) report for the long name");
	DIR *d = opendir(p);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strstr(de->d_name, ".errors.json"))
			continue;
		char rp[1200];
		snprintf(rp, sizeof rp, "%s/%s", p, de->d_name);
		json_t *r = json_load_file(rp, 0, NULL);
		cr_assert_str_eq(json_string_value(json_object_get(r, "file")), name);
		cr_assert_eq(json_array_size(json_object_get(r, "errors")), 2);
		json_decref(r);
	}
	closedir(d);
	/* the same long name again, other content: name.<hash> shortened too */
	char *b2 = with_rejects(prefix, 12, 1, &len);
	drop_file(&e, name, b2, len);
	for (int i = 0; i < 300 && count_entries(p, ".errors.json") < 2; i++)
		usleep(100000);
	cr_assert_eq(count_entries(p, ".errors.json"), 2, "second long-named report missing");
	struct stat st;
	snprintf(p, sizeof p, "%s/%s", e.work, name);
	cr_assert_neq(lstat(p, &st), 0, "the second long-named file stayed in work/");

	/* a report that cannot be written (a directory stands where it goes) */
	snprintf(p, sizeof p, "%s/done/blocked.hl7.errors.json", e.dir);
	cr_assert_eq(mkdir(p, 0750), 0);
	char pre2[80];
	snprintf(pre2, sizeof pre2, "%sB", e.run);
	char *b3 = with_rejects(pre2, 10, 3, &len);
	drop_file(&e, "blocked.hl7", b3, len);
	cr_assert(wait_in(&e, "error", "blocked.hl7", 30), "not in error/ (log %s)", e.log);
	cr_assert(!exists(&e, "done", "blocked.hl7"), "moved to done/ with its report lost");
	char *log = slurp(e.log);
	cr_assert(strstr(log, "report lost") && strstr(log, "3 rejected message(s): #0:"), "%s", log);
	free(log);
	char url[128], *body = NULL;
	snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", http);
	int counted = 0;
	for (int i = 0; i < 50 && !counted; i++) { /* the metrics are a periodic snapshot */
		cr_assert_eq(itest_http("GET", url, NULL, &body), 200);
		counted = strstr(body, "hl7bridge_drop_reports_lost_total{drop=\"main\"} 1") != NULL;
		free(body);
		if (!counted)
			usleep(200000);
	}
	cr_assert(counted, "hl7bridge_drop_reports_lost_total is not 1");
	snprintf(p, sizeof p, "%s/done", e.dir);
	cr_assert_eq(count_entries(p, ".tmp"), 0, "a temporary report was left in done/");
	cr_assert_eq(stop(pid), 0);
	free(b);
	free(b2);
	free(b3);
}

/* Item 12: a disk that fills up while a report is written (a file size limit
 * stands in for it): no half report, no temporary file, said in the log. */
Test(hostile_drop, full_disk_while_writing_a_report, .timeout = 180)
{
	struct env e;
	size_t len;
	char prefix[80], p[800];
	struct how how = { .fsize = 256 << 10 };

	setup(&e, NULL);
	pid_t pid = start(&e, &how, NULL);
	snprintf(prefix, sizeof prefix, "%sF", e.run);
	/* 3,000 rejected messages: a report of several hundred kB */
	char *b = with_rejects(prefix, 3000, 3000, &len);
	drop_file(&e, "many.hl7", b, len);
	cr_assert(wait_in(&e, "error", "many.hl7", 120), "not in error/ (log %s)", e.log);
	cr_assert(!exists(&e, "done", "many.hl7"));
	snprintf(p, sizeof p, "%s/done", e.dir);
	cr_assert_eq(count_entries(p, ".tmp"), 0, "a temporary report was left in done/");
	snprintf(p, sizeof p, "%s/error", e.dir);
	cr_assert_eq(count_entries(p, ".tmp"), 0, "a temporary report was left in error/");
	cr_assert(!exists(&e, "error", "many.hl7.errors.json"), "a cut report was left");
	char *log = slurp(e.log);
	cr_assert(strstr(log, "report lost") && strstr(log, "File too large"), "%s", log);
	free(log);
	cr_assert_eq(stop(pid), 0);
	free(b);
}

/* Item 13: files cut short are not published as complete. */
Test(hostile_drop, files_cut_short_keep_their_last_message_out, .timeout = 180)
{
	struct env e;
	size_t len;
	char plain[80], env_[80];

	setup(&e, NULL);
	pid_t pid = start(&e, NULL, NULL);
	/* a plain batch cut inside the last message's PID segment */
	snprintf(plain, sizeof plain, "%sP", e.run);
	char *b = adt_batch(plain, 20, &len);
	char *last = strstr(b, "\rPID|");
	char *l2;
	while ((l2 = strstr(last + 1, "\rPID|")))
		last = l2;
	drop_file(&e, "cut.hl7", b, (size_t)(last + 12 - b));
	/* an FHS/BHS batch cut at a segment boundary before its trailer */
	snprintf(env_, sizeof env_, "%sE", e.run);
	char *m = adt_batch(env_, 10, &len);
	char *eb = malloc(len + 128);
	int n = sprintf(eb, "FHS|^~\\&|ADT|HOSP\rBHS|^~\\&|ADT|HOSP\r");
	memcpy(eb + n, m, len);
	drop_file(&e, "enveloped.hl7", eb, (size_t)n + len);
	/* NDJSON whose last line is cut */
	size_t fl;
	char *nd = itest_sample("samples/fhir/patients.ndjson", &fl);
	size_t lines = 1; /* itest_sample strips the last line end */
	for (size_t i = 0; i < fl; i++)
		lines += nd[i] == '\n';
	drop_file(&e, "cut.ndjson", nd, fl - 7);

	cr_assert(wait_in(&e, "error", "cut.hl7", 30), "cut.hl7 not in error/ (log %s)", e.log);
	cr_assert(wait_in(&e, "error", "enveloped.hl7", 30), "enveloped.hl7 not in error/");
	cr_assert(wait_in(&e, "error", "cut.ndjson", 30), "cut.ndjson not in error/");
	json_t *r = load_report(&e, "error", "cut.hl7");
	cr_assert(strstr(report_error(r), "incomplete"), "%s", report_error(r));
	cr_assert_eq(json_integer_value(json_object_get(r, "messages")), 19);
	json_decref(r);
	r = load_report(&e, "error", "enveloped.hl7");
	cr_assert(strstr(report_error(r), "without its FTS trailer"), "%s", report_error(r));
	json_decref(r);
	r = load_report(&e, "error", "cut.ndjson");
	cr_assert(strstr(report_error(r), "incomplete JSON"), "%s", report_error(r));
	cr_assert_eq(json_integer_value(json_object_get(r, "messages")), (json_int_t)lines - 1);
	json_decref(r);
	cr_assert_eq(itest_count_with("healthcare.patient.updated", plain, 3000), 19,
		     "the cut message was published (or others were not)");
	cr_assert_eq(itest_count_with("healthcare.patient.updated", env_, 3000), 9);
	cr_assert_eq(stop(pid), 0);
	free(b);
	free(m);
	free(eb);
	free(nd);
}

/* Item 5: a file name cannot forge log lines or drive the terminal. */
Test(hostile_drop, file_names_cannot_inject_log_lines, .timeout = 120)
{
	struct env e;
	size_t len;
	char prefix[80];
	const char *evil = "x.hl7\n2026-01-01T00:00:00.000Z info  drop: main: FORGED\x1b[2J";

	setup(&e, NULL);
	pid_t pid = start(&e, NULL, NULL);
	snprintf(prefix, sizeof prefix, "%sI", e.run);
	char *b = adt_batch(prefix, 2, &len);
	drop_file(&e, evil, b, len);
	cr_assert(wait_in(&e, "done", evil, 30), "not in done/ (log %s)", e.log);
	cr_assert_eq(stop(pid), 0);
	char *log = slurp(e.log);
	cr_assert_null(strchr(log, '\x1b'), "a raw ESC reached the log");
	cr_assert_null(strstr(log, "\n2026-01-01T00:00:00.000Z info  drop: main: FORGED"),
		       "a forged line");
	cr_assert(strstr(log, "x.hl7\\n2026-01-01T00:00:00.000Z info  drop: main: FORGED\\x1b[2J"),
		  "the name is not in the log, escaped");
	free(log);
	free(b);
}

/* fileio — a drop's file handling that must hold against hostile or careless
 * producers: opening a claimed file (no symlinks, regular files only, hard
 * links by configuration), reading it into memory (a producer truncating it
 * later cannot crash the daemon or change what is published), the claim
 * record that says what was claimed, reports and moves that are never lost
 * silently, and the refusals of files that cannot be read or changed after
 * their claim. Worker thread only. */
#include "ingest/filedrop_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "digest.h"
#include "log.h"
#include "util.h"

void drop_side_name(char *out, size_t cap, const char *pfx, const char *name, const char *suffix)
{
	size_t pl = strlen(pfx), nl = strlen(name), sl = strlen(suffix);
	if (pl + nl + sl <= NAME_MAX) {
		snprintf(out, cap, "%s%s%s", pfx, name, suffix);
		return;
	}
	/* prefix + as much of the name as fits + "~" + 8 hex of SHA-256(name) */
	uint8_t h[EVP_MAX_MD_SIZE];
	unsigned int hl = 0;
	EVP_Digest(name, nl, h, &hl, digest_sha256(), NULL);
	size_t keep = NAME_MAX - pl - sl - 9;
	while (keep > 0 && ((unsigned char)name[keep] & 0xC0) == 0x80)
		keep--; /* not inside a UTF-8 sequence */
	snprintf(out, cap, "%s%.*s~%02x%02x%02x%02x%s", pfx, (int)keep, name, h[0], h[1], h[2], h[3],
		 suffix);
}

static const char *kind_of(mode_t m)
{
	return S_ISLNK(m) ? "a symbolic link" : S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" :
	       S_ISSOCK(m) ? "a socket" : S_ISCHR(m) || S_ISBLK(m) ? "a device" : "not a regular file";
}

int drop_file_open(struct drop *d, const char *path, struct drop_file *f, char *why, size_t n)
{
	struct stat st;
	memset(f, 0, sizeof f[0]);
	f->fd = -1;
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 1;
		return util_seterr(why, n, "cannot examine it: %s", strerror(errno));
	}
	f->st = st;
	if (!S_ISREG(st.st_mode))
		return util_seterr(why, n, "%s, not a regular file: not read", kind_of(st.st_mode));
	/* O_NOFOLLOW: a symlink swapped in since is not followed; O_NONBLOCK: a
	 * FIFO swapped in does not block the worker. */
	f->fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (f->fd < 0) {
		if (errno == ENOENT)
			return 1;
		if (errno == ELOOP)
			return util_seterr(why, n, "a symbolic link, not a regular file: not read");
		return util_seterr(why, n, "cannot open it: %s", strerror(errno));
	}
	if (fstat(f->fd, &st) != 0)
		return util_seterr(why, n, "cannot examine it: %s", strerror(errno));
	f->st = st;
	if (!S_ISREG(st.st_mode))
		return util_seterr(why, n, "%s, not a regular file: not read", kind_of(st.st_mode));
	if (st.st_nlink > 1 && !d->c.allow_hardlinks)
		return util_seterr(why, n,
				   "has %lu hard links (another name for the same file elsewhere): not "
				   "read (allow.hardlinks = off)",
				   (unsigned long)st.st_nlink);
	if ((int64_t)st.st_size > d->c.max_file_size) {
		f->too_large = 1;
		return util_seterr(why, n, "larger than max.file.size");
	}
	/* Read, not mapped: a producer that still holds the file open and
	 * truncates it cannot kill the daemon (SIGBUS), and what is hashed is
	 * what is published. */
	f->len = (size_t)st.st_size;
	f->buf = malloc(f->len ? f->len : 1);
	if (!f->buf)
		return util_seterr(why, n, "out of memory reading its %zu bytes", f->len);
	posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	size_t got = 0;
	while (got < f->len) {
		ssize_t r = read(f->fd, f->buf + got, f->len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return util_seterr(why, n, "cannot read it: %s", strerror(errno));
		if (r == 0)
			return util_seterr(why, n, "changed while it was read (%zu of %zu bytes left)",
					   got, f->len);
		got += (size_t)r;
	}
	if (drop_file_changed(f))
		return util_seterr(why, n, "changed while it was read");
	return 0;
}

int drop_file_changed(const struct drop_file *f)
{
	struct stat st;
	if (f->fd < 0 || fstat(f->fd, &st) != 0)
		return 1;
	return st.st_size != f->st.st_size || st.st_mtim.tv_sec != f->st.st_mtim.tv_sec ||
	       st.st_mtim.tv_nsec != f->st.st_mtim.tv_nsec || st.st_ctim.tv_sec != f->st.st_ctim.tv_sec ||
	       st.st_ctim.tv_nsec != f->st.st_ctim.tv_nsec;
}

void drop_file_close(struct drop_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->buf);
	f->fd = -1;
	f->buf = NULL;
}

/* ---- reports and claim records ------------------------------------------- */

/* This instance's temporary name for dir/fname: .hb-<12 hex>-<instance>.tmp
 * (another instance sharing done/ and error/ has its own, and start-up
 * removes only its own). */
static void tmp_name(const struct drop *d, const char *dir, const char *fname, char *out, size_t cap)
{
	uint8_t h[EVP_MAX_MD_SIZE];
	unsigned int hl = 0;
	EVP_Digest(fname, strlen(fname), h, &hl, digest_sha256(), NULL);
	snprintf(out, cap, "%s/" DROP_TMP_PREFIX "%02x%02x%02x%02x%02x%02x-%s.tmp", dir, h[0], h[1],
		 h[2], h[3], h[4], h[5], d->instance);
}

/* Whether name is a temporary name of this instance. */
static int own_tmp(const struct drop *d, const char *name)
{
	size_t pl = strlen(DROP_TMP_PREFIX), il = strlen(d->instance);
	if (strncmp(name, DROP_TMP_PREFIX, pl) != 0 || strlen(name) != pl + 13 + il + 4)
		return 0;
	for (size_t i = 0; i < 12; i++)
		if (!strchr("0123456789abcdef", name[pl + i]))
			return 0;
	return name[pl + 12] == '-' && strncmp(name + pl + 13, d->instance, il) == 0 &&
	       strcmp(name + pl + 13 + il, ".tmp") == 0;
}

int drop_write_json(const struct drop *d, const char *dir, const char *fname, json_t *j, char *why,
		    size_t n)
{
	char path[1300], tmp[1300];
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	int fd = -1, err = 0;
	size_t len, off = 0;

	if (!text)
		return util_seterr(why, n, "out of memory");
	len = strlen(text);
	snprintf(path, sizeof path, "%s/%s", dir, fname);
	/* a short temporary name whatever the report's length; drop_new removes
	 * those a crash left */
	tmp_name(d, dir, fname, tmp, sizeof tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
	if (fd < 0) {
		err = errno;
		goto fail;
	}
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			err = errno;
			goto fail;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		err = errno;
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		err = errno;
		goto fail;
	}
	free(text);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp); /* never a 0-byte or half report left behind */
	free(text);
	errno = err;
	return util_seterr(why, n, "%s", strerror(err));
}

static void claim_path_in(const char *dir, const char *name, char *out, size_t cap)
{
	char side[NAME_MAX + 1];
	drop_side_name(side, sizeof side, ".", name, DROP_CLAIM_SUFFIX);
	snprintf(out, cap, "%s/%s", dir, side);
}

static void claim_path(const struct drop *d, const char *name, char *out, size_t cap)
{
	claim_path_in(d->work, name, out, cap);
}

int drop_claim_move(const char *from_dir, const char *from_name, const char *to_dir,
		    const char *to_name)
{
	char from[1300], to[1300];
	claim_path_in(from_dir, from_name, from, sizeof from);
	claim_path_in(to_dir, to_name, to, sizeof to);
	if (rename(from, to) == 0)
		return 1;
	return errno == ENOENT ? 0 : -1;
}

int drop_claim_save(struct drop *d, const char *name, const char *hex, size_t bytes, char *why,
		    size_t n)
{
	char side[NAME_MAX + 1];
	drop_side_name(side, sizeof side, ".", name, DROP_CLAIM_SUFFIX);
	json_t *j = json_pack("{s:s, s:s, s:I}", "file", name, "sha256", hex, "bytes", (json_int_t)bytes);
	int rc = j ? drop_write_json(d, d->work, side, j, why, n) : util_seterr(why, n, "out of memory");
	json_decref(j);
	if (rc == 0)
		drop_fsync_dir(d->work);
	return rc;
}

int drop_claim_load(struct drop *d, const char *name, char hex[2 * LEDGER_KEY_LEN + 1],
		    long long *bytes)
{
	char path[1300];
	claim_path(d, name, path, sizeof path);
	json_t *j = json_load_file(path, 0, NULL);
	const char *f = json_string_value(json_object_get(j, "file"));
	const char *h = json_string_value(json_object_get(j, "sha256"));
	/* The record is bound to the file by its side name; it travels with the
	 * file (takeover, claim), whose name may change on the way (".1"). */
	int ok = f && h && strlen(h) == 2 * LEDGER_KEY_LEN;
	if (ok) {
		memcpy(hex, h, 2 * LEDGER_KEY_LEN + 1);
		*bytes = (long long)json_integer_value(json_object_get(j, "bytes"));
	}
	json_decref(j);
	return ok;
}

void drop_claim_remove(struct drop *d, const char *name)
{
	char path[1300];
	claim_path(d, name, path, sizeof path);
	if (unlink(path) == 0)
		drop_fsync_dir(d->work);
}

void drop_clean_leftovers(struct drop *d)
{
	const char *dirs[] = { d->done, d->error, d->work };
	for (size_t i = 0; i < HB_ARRAY_LEN(dirs); i++) {
		DIR *dir = opendir(dirs[i]);
		struct dirent *de;
		if (!dir)
			continue;
		while ((de = readdir(dir))) {
			char path[1300];
			size_t nl = strlen(de->d_name);
			snprintf(path, sizeof path, "%s/%s", dirs[i], de->d_name);
			if (own_tmp(d, de->d_name)) {
				unlink(path); /* a report or record a crash cut short */
			} else if (dirs[i] == d->work && de->d_name[0] == '.' &&
				   nl > strlen(DROP_CLAIM_SUFFIX) &&
				   strcmp(de->d_name + nl - strlen(DROP_CLAIM_SUFFIX), DROP_CLAIM_SUFFIX) == 0) {
				/* a claim record whose file has left work/ */
				json_t *j = json_load_file(path, 0, NULL);
				const char *f = json_string_value(json_object_get(j, "file"));
				char fp[1300];
				struct stat st;
				snprintf(fp, sizeof fp, "%s/%s", d->work, f ? f : "");
				if (!f || !*f || strchr(f, '/') || lstat(fp, &st) != 0)
					unlink(path);
				json_decref(j);
			}
		}
		closedir(dir);
	}
}

/* A compact, value-free account of a report that could not be written:
 * indexes and codes of the first rejected messages. */
static void summary(json_t *j, char *out, size_t cap)
{
	json_t *errs = json_object_get(j, "errors");
	const char *err = json_string_value(json_object_get(j, "error"));
	size_t o = 0, n = json_array_size(errs);
	out[0] = '\0';
	if (err)
		o += (size_t)snprintf(out, cap, "error: %s; ", err);
	if (o < cap)
		o += (size_t)snprintf(out + o, cap - o, "%zu rejected message(s)", n);
	for (size_t i = 0; i < n && i < 20 && o < cap; i++) {
		json_t *e = json_array_get(errs, i);
		o += (size_t)snprintf(out + o, cap - o, "%s#%lld:%lld", i ? " " : ": ",
				      (long long)json_integer_value(json_object_get(e, "index")),
				      (long long)json_integer_value(json_object_get(e, "code")));
	}
	if (n > 20 && o < cap)
		snprintf(out + o, cap - o, " ...");
}

static int finish_to(struct drop *d, const char *path, const char *dir, const char *name,
		     const char *hex, json_t *j, const char *suffix, int lost)
{
	char to_name[NAME_MAX + 1], to[1300], rep[NAME_MAX + 1], why[256], dot_hex[16];
	struct stat st;
	int rc = 0;

	snprintf(to_name, sizeof to_name, "%s", name);
	snprintf(to, sizeof to, "%s/%s", dir, to_name);
	if (lstat(to, &st) == 0) {
		snprintf(dot_hex, sizeof dot_hex, ".%.8s", hex);
		drop_side_name(to_name, sizeof to_name, "", name, dot_hex);
		snprintf(to, sizeof to, "%s/%s", dir, to_name);
	}
	if (j) {
		drop_side_name(rep, sizeof rep, "", to_name, suffix);
		if (drop_write_json(d, dir, rep, j, why, sizeof why) != 0) {
			char sum[1024];
			summary(j, sum, sizeof sum);
			/* Said here and counted once; the file is not moved to done/
			 * as if nothing was wrong. */
			log_error("drop", "%s: report lost: cannot write %s/%s (%s); %s: %s", d->c.name,
				  dir, rep, why, name, sum);
			if (!lost) {
				pthread_mutex_lock(&d->mu);
				d->stats.reports_lost++;
				pthread_mutex_unlock(&d->mu);
			}
			if (dir == d->done) {
				log_error("drop", "%s: %s goes to error/ instead of done/: its report is lost",
					  d->c.name, name);
				return finish_to(d, path, d->error, name, hex, j, suffix, 1) == 0 ? 1 : -1;
			}
		}
	}
	if (rename(path, to) != 0) {
		log_error("drop", "%s: cannot move %s to %s: %s", d->c.name, name, dir, strerror(errno));
		rc = -1;
	} else {
		drop_claim_remove(d, name);
	}
	drop_fsync_dir(d->work);
	drop_fsync_dir(dir);
	return rc;
}

int drop_finish(struct drop *d, const char *path, const char *dir, const char *name, const char *hex,
		json_t *j, const char *suffix)
{
	return finish_to(d, path, dir, name, hex, j, suffix, 0);
}

/* ---- files refused before or while they are read --------------------------- */

static void count_error(struct drop *d)
{
	pthread_mutex_lock(&d->mu);
	d->stats.files_error++;
	pthread_mutex_unlock(&d->mu);
}

/* A file that is not read (not a regular file, a hard link, unreadable, too
 * large, changed): error/ with a report that says why. */
void drop_refuse(struct drop *d, const char *path, const char *name, const struct drop_file *df,
		 const char *why)
{
	json_t *j = json_pack("{s:s, s:s}", "file", name, "error", why);
	if (S_ISREG(df->st.st_mode))
		json_object_set_new(j, "bytes", json_integer((json_int_t)df->st.st_size));
	drop_finish(d, path, d->error, name, df->too_large ? "toolarge" : "refused", j, ".errors.json");
	json_decref(j);
	count_error(d);
	log_warn("drop", "%s: %s: %s; moved to error/", d->c.name, name, why);
}

/* The file in work/ is not what was claimed (a producer still holding it
 * truncated or rewrote it): nothing more of it is published, and it goes
 * to error/ with what was published of the claimed content. */
void drop_changed_after_claim(struct drop *d, const char *path, const char *name,
			      const char *hex, size_t len, const char *chex, long long cbytes)
{
	uint8_t ckey[LEDGER_KEY_LEN];
	struct ledger_entry le;
	for (size_t i = 0; i < LEDGER_KEY_LEN; i++)
		sscanf(chex + 2 * i, "%2hhx", &ckey[i]);
	int found = drop_ledger_query(d, ckey, &le);
	if (found < 0)
		return; /* stopping: decided at the next start */
	json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:b}", "file", name, "error",
			      "changed in work/ after it was claimed; nothing more of it is published",
			      "claimed_sha256", chex, "claimed_bytes", (json_int_t)cbytes, "sha256",
			      hex, "bytes", (json_int_t)len, "published_before",
			      (json_int_t)(found ? le.next_index : 0), "claimed_content_done",
			      found && le.done);
	drop_finish(d, path, d->error, name, hex, j, ".errors.json");
	json_decref(j);
	count_error(d);
	log_warn("drop", "%s: %s changed in work/ after it was claimed (%lld bytes, sha256 %.12s then; "
			 "%zu bytes, sha256 %.12s now); %u of its messages were published before; "
			 "moved to error/",
		 d->c.name, name, cbytes, chex, len, hex, found ? le.next_index : 0u);
}

/*
 * input — what the daemon asks of every input (an MLLP listener, a FHIR
 * HTTP listener, a file drop): one table of operations per kind, so every
 * lifecycle step is one loop over the daemon's inputs.
 *
 * A new input is a module that keeps its own state on the event loop and
 * fills one `const struct input_ops` (see lsn_input_ops in listener.c,
 * fhttp_input_ops in fhir_http.c, drop_input_ops in filedrop.c); the daemon
 * creates it from its settings and adds { &ops, self } to its array.
 *
 * Every operation runs on the loop thread. The optional ones may be NULL;
 * the daemon calls them through the input_* helpers below, which skip them.
 */
#ifndef HB_INPUT_H
#define HB_INPUT_H

#include <stddef.h>

struct lsn;
struct fhttp;
struct drop;

/* What the status page, /metrics and the ready line read of an input: its
 * name and the objects whose counters they copy (NULL: none of that kind). */
struct input_view {
	const char *name;         /* its section's name */
	struct lsn *lsn;          /* connections: bound address, TLS, counters */
	const struct fhttp *fhir; /* FHIR requests and resources */
	struct drop *drop;        /* batch files */
};

struct input_ops {
	const char *kind;   /* "mllp", "fhir", "drop" (the status page's kind) */
	const char *format; /* what it reads: "hl7v2", "fhir", "" for either */
	/* Publisher completions were drained: go on with what waited for room
	 * (back-pressure), hand over what completed. Optional. */
	void (*wake)(void *self);
	/* Something is in flight: a message unanswered, an answer unwritten, a
	 * file's slice uncommitted. */
	int (*busy)(void *self);
	/* Graceful shutdown: take nothing new; what is in flight goes on. */
	void (*stop)(void *self);
	/* SIGHUP, all or nothing: reload_check tries what reload would load
	 * (certificates) without switching, and every input's check passes
	 * before any input reloads. 0, or -1 with errstr. Optional. */
	int (*reload_check)(void *self, char *errstr, size_t errstr_size);
	int (*reload)(void *self, char *errstr, size_t errstr_size);
	/* Teardown, before the publisher finishes: submit nothing more and close
	 * connections (answers still owed are not written). */
	void (*close)(void *self);
	/* Teardown, after the publisher finished (its completions may still
	 * have used what close left). Optional. */
	void (*free)(void *self);
	void (*view)(void *self, struct input_view *out);
};

struct input {
	const struct input_ops *ops;
	void *self;
};

static inline void input_wake(const struct input *in)
{
	if (in->ops->wake)
		in->ops->wake(in->self);
}

static inline int input_busy(const struct input *in) { return in->ops->busy(in->self); }
static inline void input_stop(const struct input *in) { in->ops->stop(in->self); }
static inline void input_close(const struct input *in) { in->ops->close(in->self); }

static inline int input_reload_check(const struct input *in, char *errstr, size_t errstr_size)
{
	return in->ops->reload_check ? in->ops->reload_check(in->self, errstr, errstr_size) : 0;
}

static inline int input_reload(const struct input *in, char *errstr, size_t errstr_size)
{
	return in->ops->reload ? in->ops->reload(in->self, errstr, errstr_size) : 0;
}

static inline void input_free(const struct input *in)
{
	if (in->ops->free)
		in->ops->free(in->self);
}

static inline struct input_view input_view(const struct input *in)
{
	struct input_view v = { 0 };
	in->ops->view(in->self, &v);
	return v;
}

#endif

/* hl7 — HL7v2 (ER7, "pipe and hat") parser: zero-copy views, paths, escapes,
 * charsets, batches, ACKs. Pure library code: no I/O, no logging.
 *
 * A parsed message is an index of segments over the caller's buffer; fields,
 * repetitions, components and subcomponents are found on demand and returned
 * as views (pointer + length into that buffer, still escaped). The buffer must
 * outlive the message. hl7_parse() itself never allocates: the caller passes
 * the segment array, whose size is the segment limit.
 *
 * Errors are returned in struct hl7_error: a code, a byte offset or path
 * column, the location as an HL7 path, and a message that names positions
 * and paths only — never a value from the message (no patient data).
 */
#ifndef HB_HL7_H
#define HB_HL7_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- limits (each has a config key in the daemon) ---------------------- */

/* Size a segment array with this unless configured otherwise (hl7.max_segments). */
#define HL7_DEFAULT_MAX_SEGMENTS 10000
/* hl7.max_field_length: a longer field rejects the message. Embedded
 * documents (base64 PDFs in OBX-5) are the usual big fields. */
#define HL7_DEFAULT_MAX_FIELD_LEN (8u * 1024 * 1024)
/* Offsets are 32-bit; no message may be this large. */
#define HL7_MAX_MESSAGE_LEN 0x7fffffffu

/* ---- views, delimiters, errors ------------------------------------------ */

struct hl7_view {
	const char *ptr;
	size_t len;
};

/* Encoding characters from MSH-1/MSH-2. A delimiter the message does not
 * declare is set to the field separator, which can never occur inside a
 * field, so it never splits anything. has_esc/has_trunc say whether the
 * escape and (2.7+) truncation characters were declared. */
struct hl7_delims {
	char field, comp, rep, esc, sub, trunc;
	unsigned char has_esc, has_trunc;
};

enum hl7_errcode {
	HL7_OK = 0,
	HL7_E_EMPTY,            /* no segments at all */
	HL7_E_NOT_MSH,          /* first segment is not MSH */
	HL7_E_DELIMS,           /* bad MSH-1/MSH-2 */
	HL7_E_SEGMENT_ID,       /* a segment id is not 3 letters/digits */
	HL7_E_TOO_MANY_SEGMENTS,
	HL7_E_FIELD_TOO_LONG,
	HL7_E_TOO_LARGE,        /* message over HL7_MAX_MESSAGE_LEN */
	HL7_E_REQUIRED,         /* MSH-9, MSH-10 or MSH-12 empty */
	HL7_E_MULTIPLE,         /* a second MSH/FHS/BHS: use the batch splitter */
	HL7_E_CHARSET,          /* MSH-18 names a charset we cannot convert */
	HL7_E_ENCODING,         /* bytes invalid in the message's charset */
	HL7_E_NOSPACE,          /* caller's output buffer too small */
	HL7_E_PATH,             /* path syntax error (see column) */
	HL7_E_BATCH,            /* batch envelope out of order */
	HL7_E_ARG,              /* invalid argument */
};

/* A compiled path: SEG[n]-F[r].C.S, or a relative .C.S (for use inside an
 * iteration over repetitions). Numbers are 1-based; 0 means "not given". */
struct hl7_path {
	char seg[4];            /* NUL-terminated id; "" for relative paths */
	uint32_t seg_n;         /* occurrence, default first */
	uint32_t field;         /* 0: the whole segment */
	uint32_t rep;           /* 0: first repetition */
	uint32_t comp;          /* 0: the whole repetition */
	uint32_t sub;           /* 0: the whole component */
};

struct hl7_error {
	enum hl7_errcode code;
	size_t offset;          /* byte offset in the message / batch */
	size_t column;          /* 1-based column for HL7_E_PATH, else 0 */
	struct hl7_path where;  /* location (seg "" if none), e.g. MSH-12 */
	char msg[160];          /* positions and paths only, never values */
};

/* HL7 table 0357 code for an error (101 required field missing, ...). */
int hl7_err_0357(enum hl7_errcode code);
/* The code's name, e.g. "HL7_E_REQUIRED" (for logs and tests). */
const char *hl7_errcode_name(enum hl7_errcode code);

/* ---- parsing -------------------------------------------------------------- */

enum hl7_charset {
	HL7_CS_DEFAULT,         /* MSH-18 empty or ASCII: ASCII; valid UTF-8 tolerated */
	HL7_CS_UTF8,
	HL7_CS_LATIN1,          /* 8859/1, converted inline */
	HL7_CS_ICONV,           /* anything else iconv knows */
};

struct hl7_seg {
	uint32_t off;           /* start of the segment id in the buffer */
	uint32_t len;           /* up to, not including, the terminator */
	char id[4];
};

struct hl7_parse_opts {
	size_t max_field_len;   /* 0: HL7_DEFAULT_MAX_FIELD_LEN */
	int allow_multiple;     /* accept several MSH (no batch splitting) */
};

struct hl7_msg {
	const char *buf;
	size_t len;
	struct hl7_delims d;
	struct hl7_seg *segs;
	size_t nsegs;
	enum hl7_charset cs;
	char charset[40];       /* iconv name for HL7_CS_ICONV */
	void *cd;               /* cached iconv handle, opened by hl7_unescape */
	/* hl7_field's last answer, where the next lookup in the same segment
	 * starts when it asks for a later field (mappings read PID-3, PID-5,
	 * PID-7 ... in turn). Like cd, written through a const message: a
	 * message is read by one thread at a time. */
	struct {
		uint32_t seg;   /* segment index + 1; 0: none */
		uint32_t skip;  /* field separators passed to reach off */
		uint32_t off;   /* from buf */
	} memo;
};

/* Parse one message over (buf, len): index the segments into segs (at most
 * max_segs: the segment limit), read the delimiters and MSH-18. Segment
 * terminators \r, \n and \r\n are all accepted; empty lines are skipped.
 * The message must start with MSH and carry MSH-9, MSH-10 and MSH-12.
 * Returns 0, or -1 with err filled. Call hl7_msg_clear() when done (it frees
 * the iconv handle hl7_unescape may have opened; harmless otherwise). */
int hl7_parse(struct hl7_msg *m, const char *buf, size_t len,
	      struct hl7_seg *segs, size_t max_segs,
	      const struct hl7_parse_opts *opts, struct hl7_error *err);
void hl7_msg_clear(struct hl7_msg *m);

/* Read delimiters from the MSH/FHS/BHS header starting at p (len bytes of
 * that segment). Any printable ASCII character is accepted except letters
 * and digits (control and 8-bit characters would break framing or split
 * multibyte text; letters and digits would make escapes ambiguous); they
 * must be distinct. Returns 0 or -1. */
int hl7_delims_read(const char *p, size_t len, struct hl7_delims *d);

/* ---- navigation ----------------------------------------------------------- */

/* Index of the n-th (1-based) segment with this id in [from, to), or -1. */
ssize_t hl7_seg_find(const struct hl7_msg *m, const char *id, size_t n,
		     size_t from, size_t to);

/* Field f of segment index s (HL7 numbering: MSH-1 is the field separator,
 * MSH-2 the encoding characters; same for FHS and BHS). Returns 1 and the
 * whole field (all repetitions), or 0 and an empty view if absent. */
int hl7_field(const struct hl7_msg *m, size_t s, uint32_t f,
	      struct hl7_view *out);

/* The n-th (1-based) piece of v split on sep. Returns 1, or 0 with an empty
 * view if there are fewer pieces. */
int hl7_piece(struct hl7_view v, char sep, uint32_t n, struct hl7_view *out);

/* Iterate pieces of v split on sep: init, then next() until it returns 0.
 * An empty v yields no pieces. */
struct hl7_iter {
	const char *p, *end;
	char sep;
	int done;
};
void hl7_iter_init(struct hl7_iter *it, struct hl7_view v, char sep);
int hl7_iter_next(struct hl7_iter *it, struct hl7_view *out);

/* Segment groups: with *pos = 0 initially, each call finds the next segment
 * with this id in [*pos, m->nsegs) and returns 1 with [*first, *end): that
 * segment and the ones after it up to the next segment with the same id (or
 * the end). Returns 0 when there are no more. */
int hl7_group_next(const struct hl7_msg *m, const char *id, size_t *pos,
		   size_t *first, size_t *end);

/* ---- paths ---------------------------------------------------------------- */

/* Parse a path at the start of (s, len): SEG, SEG[n], SEG-F, SEG[n]-F[r].C.S
 * or relative .C / .C.S. Stops at the first character that cannot continue
 * the path and returns the bytes consumed (so a lexer can embed paths), or
 * -1 with err->column (1-based) at the offending character. */
ssize_t hl7_path_parse(struct hl7_path *p, const char *s, size_t len,
		       struct hl7_error *err);
/* Like hl7_path_parse, but the whole string must be the path. */
int hl7_path_compile(struct hl7_path *p, const char *s, struct hl7_error *err);
/* Write the path back in canonical form; returns snprintf's result. */
int hl7_path_format(const struct hl7_path *p, char *out, size_t out_size);

/* Evaluate an absolute path over segments [from, to) (use 0, m->nsegs for
 * the whole message, a group's range inside `each`). Default repetition is
 * the first; a path without component returns the whole repetition; a path
 * without field returns the whole segment. Returns 1 and a still-escaped
 * view if the value is present and non-empty, 0 and an empty view if not,
 * -1 for a relative path. */
int hl7_get_in(const struct hl7_msg *m, const struct hl7_path *p, size_t from,
	       size_t to, struct hl7_view *out);
int hl7_get(const struct hl7_msg *m, const struct hl7_path *p,
	    struct hl7_view *out);
/* The whole field (all repetitions) the path names; for `each PID-3`. */
int hl7_get_field_in(const struct hl7_msg *m, const struct hl7_path *p,
		     size_t from, size_t to, struct hl7_view *out);
/* Number of repetitions of that field (0 if absent or empty). */
size_t hl7_count_reps_in(const struct hl7_msg *m, const struct hl7_path *p,
			 size_t from, size_t to);
/* Evaluate a relative path (.C or .C.S) against one repetition. Returns 1/0
 * like hl7_get, -1 if p is not relative. */
int hl7_get_rel(const struct hl7_msg *m, struct hl7_view rep,
		const struct hl7_path *p, struct hl7_view *out);

/* ---- unescaping and charsets (hl7_escape.c) -------------------------------- */

/* Output size that always suffices for an n-byte view. */
#define HL7_UNESCAPE_BOUND(n) (4 * (n) + 1)

/* Unescape v and convert it from the message charset (MSH-18) to UTF-8 into
 * out, NUL-terminated. Returns the length (without NUL), or -1 with err:
 * HL7_E_NOSPACE if out_size is too small, HL7_E_ENCODING if the bytes are
 * invalid in the charset, HL7_E_CHARSET if iconv cannot open it. The output
 * is always valid UTF-8.
 *
 * Escapes (E is the message's escape character):
 *   \F\ \S\ \T\ \R\ \E\  the field, component, subcomponent, repetition and
 *                        escape characters; \P\ the truncation character
 *   \Xhhhh..\            the bytes, in the message charset
 *   \.br\                a newline
 *   \H\ \N\              highlighting on/off: dropped
 * Anything else (\.sp\, \Cxxyy\, \Mxxyyzz\, \Zxx\, malformed \X\, an escape
 * character without its closing one) is kept literally, byte for byte, so no
 * data is silently lost and the result is still well-defined. */
ssize_t hl7_unescape(struct hl7_msg *m, struct hl7_view v, char *out,
		     size_t out_size, struct hl7_error *err);

/* Escape text (the delimiters and the escape character) with the message's
 * delimiters. Returns bytes written or -1 if out is too small. */
ssize_t hl7_escape(const struct hl7_delims *d, const char *s, size_t len,
		   char *out, size_t out_size);

/* Map an MSH-18 value (e.g. "8859/1", "UNICODE UTF-8") to a charset and,
 * for HL7_CS_ICONV, the iconv name. Returns 0 for an HL7 table 0211 name,
 * 1 for another name passed to iconv as it is (e.g. "WINDOWS-1252"; whether
 * iconv knows it shows at the first hl7_unescape), -1 if the name is too
 * long, has characters no charset name has, or is a UTF-16/32 form. */
int hl7_charset_lookup(struct hl7_view name, enum hl7_charset *cs,
		       char *iconv_name, size_t iconv_name_size);

/* The i-th HL7 charset name we know (0-based), NULL past the end. */
const char *hl7_charset_name(size_t i);

/* Is (s, len) valid UTF-8 (no overlongs, surrogates or > U+10FFFF)? */
int hl7_utf8_valid(const char *s, size_t len, size_t *bad_offset);

/* ---- batches (hl7_batch.c) ------------------------------------------------ */

/* Splits FHS/BHS ... BTS/FTS batches and plain concatenations of messages
 * into messages. No allocation; items are views into the buffer. */
struct hl7_batch {
	const char *buf;
	size_t len, pos;
	size_t index;           /* next message index (0-based) */
	int seen_fhs, seen_bhs, seen_bts, seen_fts;
	int done;               /* end or error reported: nothing more */
	struct hl7_view fhs, bhs, bts, fts; /* envelope segments, if any */
	/* where the next CR and LF are: none in [eol_from, eol_cr) and
	 * [eol_from, eol_lf) (len when none), so each byte is searched once */
	size_t eol_from, eol_cr, eol_lf;
};

struct hl7_batch_item {
	size_t index;           /* 0-based message number in the batch */
	size_t offset;          /* byte offset of its MSH in the buffer */
	struct hl7_view msg;    /* the message, terminators included */
};

void hl7_batch_init(struct hl7_batch *b, const char *buf, size_t len);
/* Returns 1 and the next message, 0 at the end, -1 on a malformed envelope
 * (a segment outside any message, envelope segments out of order or
 * unclosed); after 0 or -1 it returns 0. Messages are not parsed here. */
int hl7_batch_next(struct hl7_batch *b, struct hl7_batch_item *it,
		   struct hl7_error *err);

/* ---- ACKs (hl7_ack.c) ----------------------------------------------------- */

enum hl7_ack_status { HL7_ACK_ACCEPT, HL7_ACK_ERROR, HL7_ACK_REJECT };

struct hl7_ack_params {
	const char *control_id;   /* new unique MSH-10 (required) */
	const char *timestamp;    /* MSH-7, e.g. "20261127021500+0000" (required) */
	enum hl7_ack_status status;
	int err_code;             /* table 0357 code; 0: no ERR segment */
	const struct hl7_path *err_where; /* location for ERR, optional */
	const char *reason;       /* ERR text; caller guarantees: no patient data */
	const char *default_version; /* MSH-12 when the original has none ("2.5.1") */
};

/* Build an ACK for the message in (raw, len). m is its parse (or NULL when it
 * did not parse: the MSH line is then read leniently, and anything unreadable
 * is left empty — a broken message still gets its AR). Enhanced mode (CA/CE/
 * CR) is used when the original's MSH-15 or MSH-16 is valued, else original
 * mode (AA/AE/AR). The ACK uses the original's delimiters when readable, is
 * terminated by \r, and is not MLLP-framed. Returns its length, or -1 with
 * errstr (e.g. out too small). */
ssize_t hl7_ack_build(const char *raw, size_t len, const struct hl7_msg *m,
		      const struct hl7_ack_params *p, char *out, size_t out_size,
		      char *errstr, size_t errstr_size);

/* Whether MSH-15 (accept acknowledgement type: AL, NE, ER, SU) asks for an
 * ACK with this status. Original mode always does. */
int hl7_ack_wanted(const struct hl7_msg *m, enum hl7_ack_status status);

#endif

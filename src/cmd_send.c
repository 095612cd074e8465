/*
 * hl7bridge send [options] HOST:PORT FILE...
 *
 * An MLLP test client: splits each file into messages (plain or batch files
 * through the batch splitter, MLLP-framed dumps frame by frame), sends them
 * over MLLP or MLLP/TLS, checks each ACK against the message it answers and
 * prints one line per message with ids and codes only — never message
 * content. Exit 0 if every ACK was AA/CA, 1 if any was not (or did not come,
 * or did not match), 2 for usage errors and failed connections.
 */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ingest/mllp.h"
#include "ingest/mllp_client.h"
#include "ingest/tls_client.h"
#include "obs/hist.h"
#include "parse/hl7.h"
#include "util.h"

/* Largest input file read. */
#define SEND_MAX_FILE_SIZE ((size_t)1 << 30)
/* Ids and codes are printed up to this many bytes. */
#define SEND_MAX_ID 64
/* ERR-8 text is printed up to this many bytes. */
#define SEND_MAX_TEXT 200
/* Segments an ACK may have before we call it garbled. */
#define SEND_MAX_ACK_SEGS 64
#define SEND_DEFAULT_TIMEOUT 30.0

struct send_msg {
	char *data;             /* owned: the message as sent */
	size_t len;
	const char *file;
	size_t index;           /* 1-based position in its file */
	char id[SEND_MAX_ID + 1]; /* MSH-10 as it is in the message, "" if none */
};

struct send_state {
	struct send_msg *msgs;
	size_t n, cap;
	int quiet;
	uint64_t repeat;
	uint64_t ok, negative, timeouts, mismatches, failed, bad_replies;
	struct hist lat;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hl7bridge send [options] HOST:PORT FILE...\n"
		"Send the HL7v2 messages in each FILE (single or concatenated messages,\n"
		"FHS/BHS batches, or MLLP-framed dumps) over MLLP and print one line per ACK:\n"
		"  FILE#N[@ROUND] MSH-10=id -> MSA-1=code MSA-2=id [ERR-3=code text] latency ms\n"
		"options:\n"
		"  --tls               use TLS (1.2 or later)\n"
		"  --ca FILE           verify the server against this CA (default: system store)\n"
		"  --cert FILE --key FILE  client certificate for mutual TLS\n"
		"  --servername NAME   name for SNI and the certificate check (default HOST)\n"
		"  --insecure          do not verify the server's certificate\n"
		"  --timeout SECONDS   wait this long for each ACK (default %g)\n"
		"  --connections N     spread the messages over N connections (default 1)\n"
		"  --pipeline N        up to N unacknowledged messages per connection (default 1)\n"
		"  --rate R            send at most R messages/s overall (default 0: no limit)\n"
		"  --repeat N          send the whole input N times (default 1)\n"
		"  --quiet             no per-message lines, only the summary\n"
		"exit status: 0 all AA/CA, 1 any other ACK, mismatch or timeout, 2 usage or\n"
		"connection failure\n",
		SEND_DEFAULT_TIMEOUT);
}

/* Copy s for printing: printable characters only, at most max bytes. */
static const char *printable(const char *s, size_t len, size_t max, char *out, size_t out_size)
{
	size_t n = 0;
	for (size_t i = 0; i < len && n + 4 < out_size; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (i == max) {
			memcpy(out + n, "...", 3);
			n += 3;
			break;
		}
		out[n++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	out[n] = '\0';
	return out;
}

/* MSH-10 read leniently from the MSH line, so that messages that would not
 * parse can still be sent (to test how a receiver rejects them). */
static void read_msh10(const char *p, size_t len, char *id, size_t id_size)
{
	struct hl7_delims d;
	struct hl7_view line = { p, 0 }, v;

	id[0] = '\0';
	while (line.len < len && p[line.len] != '\r' && p[line.len] != '\n')
		line.len++;
	if (line.len < 4 || memcmp(p, "MSH", 3) != 0 || hl7_delims_read(p, line.len, &d) < 0)
		return;
	/* Pieces of the line: "MSH", MSH-2, MSH-3, ...: MSH-10 is the 10th. */
	if (hl7_piece(line, d.field, 10, &v) && v.len > 0)
		printable(v.ptr, v.len, SEND_MAX_ID, id, id_size);
}

static int add_msg(struct send_state *s, const char *file, const char *p, size_t len,
		   int normalize, char *errstr, size_t errstr_size)
{
	struct send_msg *m;
	size_t n = 0;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct send_msg *nm = realloc(s->msgs, cap * sizeof *nm);
		if (!nm)
			return util_seterr(errstr, errstr_size, "out of memory");
		s->msgs = nm;
		s->cap = cap;
	}
	m = &s->msgs[s->n];
	memset(m, 0, sizeof *m);
	m->data = malloc(len + 1);
	if (!m->data)
		return util_seterr(errstr, errstr_size, "out of memory");
	if (!normalize) {
		memcpy(m->data, p, len);
		n = len;
	} else {
		/* Files often end segments with LF or CRLF; HL7 ends them with CR.
		 * A raw LF cannot be data (it must be escaped), so this is safe. */
		for (size_t i = 0; i < len; i++) {
			if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
				continue;
			m->data[n++] = p[i] == '\n' ? '\r' : p[i];
		}
		if (n > 0 && m->data[n - 1] != '\r')
			m->data[n++] = '\r';
	}
	m->len = n;
	m->file = file;
	read_msh10(m->data, m->len, m->id, sizeof m->id);
	s->n++;
	return 0;
}

static int load_framed(struct send_state *s, const char *file, const char *buf, size_t len,
		       char *errstr, size_t errstr_size)
{
	struct mllp_decoder dec;
	size_t before = s->n, index = 0;
	int rc = 0;

	mllp_decoder_init(&dec, MLLP_DEFAULT_MAX_FRAME);
	while (len > 0 && rc == 0) {
		size_t used, fl;
		const unsigned char *f;
		char err[128];
		int r = mllp_decoder_feed(&dec, buf, len, &used, &f, &fl, err, sizeof err);
		buf += used;
		len -= used;
		if (r < 0) {
			rc = util_seterr(errstr, errstr_size, "%s: frame %zu: %s", file, index + 1, err);
		} else if (r == 1 && mllp_frame_kind(f, fl) == MLLP_FRAME_MESSAGE) {
			rc = add_msg(s, file, (const char *)f, fl, 0, errstr, errstr_size);
			if (rc == 0)
				s->msgs[s->n - 1].index = ++index;
		}
	}
	if (rc == 0 && mllp_decoder_pending(&dec) > 0)
		rc = util_seterr(errstr, errstr_size, "%s: the last frame is not terminated", file);
	mllp_decoder_clear(&dec);
	if (rc == 0 && s->n == before)
		rc = util_seterr(errstr, errstr_size, "%s: no MLLP frames", file);
	return rc;
}

static int load_file(struct send_state *s, const char *file, char *errstr, size_t errstr_size)
{
	struct hl7_batch b;
	struct hl7_batch_item it;
	struct hl7_error err;
	size_t len, i = 0, before = s->n;
	char *buf = util_read_file(file, SEND_MAX_FILE_SIZE, &len, errstr, errstr_size);
	int r, rc = 0;

	if (!buf)
		return -1;
	while (i < len && (buf[i] == ' ' || buf[i] == '\r' || buf[i] == '\n' || buf[i] == '\t'))
		i++;
	if (i < len && buf[i] == MLLP_VT) {
		rc = load_framed(s, file, buf, len, errstr, errstr_size);
		free(buf);
		return rc;
	}
	hl7_batch_init(&b, buf, len);
	while ((r = hl7_batch_next(&b, &it, &err)) == 1) {
		if (add_msg(s, file, it.msg.ptr, it.msg.len, 1, errstr, errstr_size) < 0) {
			rc = -1;
			break;
		}
		s->msgs[s->n - 1].index = it.index + 1;
	}
	if (r < 0)
		rc = util_seterr(errstr, errstr_size, "%s: byte %zu: %s", file, err.offset, err.msg);
	else if (rc == 0 && s->n == before)
		rc = util_seterr(errstr, errstr_size, "%s: no messages", file);
	free(buf);
	return rc;
}

/* A value at path in the ACK, printable, or "" if absent. */
static const char *ack_value(const struct hl7_msg *m, const char *path, char *out,
			     size_t out_size)
{
	struct hl7_path p;
	struct hl7_error err;
	struct hl7_view v;

	out[0] = '\0';
	if (hl7_path_compile(&p, path, &err) == 0 && hl7_get(m, &p, &v) == 1)
		printable(v.ptr, v.len, SEND_MAX_ID, out, out_size);
	return out;
}

/* ERR-8 (2.5+) or ERR-1.4.2 (older), unescaped and printable. */
static const char *ack_err_text(struct hl7_msg *m, char *out, size_t out_size)
{
	static const char *const paths[] = { "ERR-8", "ERR-1.4.2" };
	char tmp[HL7_UNESCAPE_BOUND(SEND_MAX_TEXT)];
	struct hl7_error err;

	out[0] = '\0';
	for (size_t i = 0; i < HB_ARRAY_LEN(paths); i++) {
		struct hl7_path p;
		struct hl7_view v;
		if (hl7_path_compile(&p, paths[i], &err) != 0 || hl7_get(m, &p, &v) != 1)
			continue;
		if (v.len > SEND_MAX_TEXT)
			v.len = SEND_MAX_TEXT;
		ssize_t n = hl7_unescape(m, v, tmp, sizeof tmp, &err);
		if (n >= 0)
			printable(tmp, (size_t)n, SEND_MAX_TEXT, out, out_size);
		break;
	}
	return out;
}

static int is_ack_code(const char *c)
{
	static const char *const codes[] = { "AA", "AE", "AR", "CA", "CE", "CR" };
	for (size_t i = 0; i < HB_ARRAY_LEN(codes); i++)
		if (strcmp(c, codes[i]) == 0)
			return 1;
	return 0;
}

static void result_cb(void *opaque, const struct mllp_client_result *r)
{
	struct send_state *s = opaque;
	const struct send_msg *m = &s->msgs[r->msg];
	char where[64] = "", line[1024], msa1[SEND_MAX_ID + 4], msa2[SEND_MAX_ID + 4];
	char code[SEND_MAX_ID + 4], text[SEND_MAX_TEXT + 4];
	struct hl7_seg segs[SEND_MAX_ACK_SEGS];
	struct hl7_msg ack;
	struct hl7_error err;
	double ms = (double)r->latency_us / 1000.0;

	if (s->repeat > 1)
		snprintf(where, sizeof where, "@%llu", (unsigned long long)r->round + 1);
	if (r->outcome != MLLP_CLIENT_REPLY) {
		if (r->outcome == MLLP_CLIENT_TIMEOUT)
			s->timeouts++;
		else
			s->failed++;
		snprintf(line, sizeof line, "ERROR %s %.3f ms", r->why, ms);
		goto print;
	}
	hist_record(&s->lat, (uint64_t)(r->latency_us > 0 ? r->latency_us : 0));
	if (hl7_parse(&ack, (const char *)r->reply, r->reply_len, segs, SEND_MAX_ACK_SEGS, NULL,
		      &err) != 0) {
		s->bad_replies++;
		snprintf(line, sizeof line, "ERROR reply is not an HL7 message (%s at byte %zu) %.3f ms",
			 hl7_errcode_name(err.code), err.offset, ms);
		goto print;
	}
	ack_value(&ack, "MSA-1", msa1, sizeof msa1);
	ack_value(&ack, "MSA-2", msa2, sizeof msa2);
	if (!is_ack_code(msa1)) {
		s->bad_replies++;
		snprintf(line, sizeof line, "ERROR reply has no valid MSA-1 (MSA-1=%s) %.3f ms", msa1,
			 ms);
		goto clear;
	}
	if (strcmp(msa2, m->id) != 0) {
		s->mismatches++;
		snprintf(line, sizeof line, "ERROR MSA-2 does not match: MSA-1=%s MSA-2=%s %.3f ms",
			 msa1, msa2, ms);
		goto clear;
	}
	if (msa1[1] == 'A')
		s->ok++;
	else
		s->negative++;
	int n = snprintf(line, sizeof line, "MSA-1=%s MSA-2=%s", msa1, msa2);
	if (hl7_seg_find(&ack, "ERR", 1, 0, ack.nsegs) >= 0) {
		if (!ack_value(&ack, "ERR-3.1", code, sizeof code)[0])
			ack_value(&ack, "ERR-1.4.1", code, sizeof code);
		ack_err_text(&ack, text, sizeof text);
		n += snprintf(line + n, sizeof line - (size_t)n, " ERR-3=%s%s%s", code,
			      text[0] ? " " : "", text);
	}
	snprintf(line + n, sizeof line - (size_t)n, " %.3f ms", ms);
clear:
	hl7_msg_clear(&ack);
print:
	if (!s->quiet)
		printf("%s#%zu%s MSH-10=%s -> %s\n", m->file, m->index, where, m->id, line);
}

static void summary(const struct send_state *s, const struct mllp_client_stats *st)
{
	uint64_t outcomes = st->replies + st->timeouts + st->failed;
	uint64_t errors = outcomes - s->ok - s->negative;

	fprintf(stderr,
		"hl7bridge send: sent %llu, AA/CA %llu, AE/AR %llu, errors %llu (timeouts %llu, "
		"mismatches %llu, bad replies %llu, connection %llu), not sent %llu, "
		"elapsed %.3f s, %.1f msgs/s\n",
		(unsigned long long)st->sent, (unsigned long long)s->ok,
		(unsigned long long)s->negative, (unsigned long long)errors,
		(unsigned long long)s->timeouts, (unsigned long long)s->mismatches,
		(unsigned long long)s->bad_replies, (unsigned long long)s->failed,
		(unsigned long long)st->not_sent, st->elapsed,
		st->elapsed > 0 ? (double)outcomes / st->elapsed : 0.0);
	if (hist_count(&s->lat) > 0)
		fprintf(stderr,
			"hl7bridge send: ACK latency ms: p50 %.3f p99 %.3f p99.9 %.3f max %.3f "
			"(%llu connections made)\n",
			(double)hist_quantile(&s->lat, 0.5) / 1000.0,
			(double)hist_quantile(&s->lat, 0.99) / 1000.0,
			(double)hist_quantile(&s->lat, 0.999) / 1000.0,
			(double)hist_max_us(&s->lat) / 1000.0, (unsigned long long)st->connects);
	if (st->commit_acks || st->unsolicited)
		fprintf(stderr, "hl7bridge send: ignored %llu commit acknowledgements and %llu "
				"unsolicited replies\n",
			(unsigned long long)st->commit_acks, (unsigned long long)st->unsolicited);
}

/* HOST:PORT or [V6ADDR]:PORT into host and port (pointers into buf). */
static int split_hostport(const char *arg, char *buf, size_t size, const char **host,
			  const char **port)
{
	char *colon;

	if (strlen(arg) >= size)
		return -1;
	strcpy(buf, arg);
	colon = strrchr(buf, ':');
	if (!colon || colon == buf || !colon[1])
		return -1;
	*colon = '\0';
	*port = colon + 1;
	*host = buf;
	if (buf[0] == '[') {
		if (colon[-1] != ']')
			return -1;
		colon[-1] = '\0';
		*host = buf + 1;
	}
	return **host ? 0 : -1;
}

static int parse_num(const char *s, double min, double max, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || !isfinite(v) || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* In the order of longopts[] below (the error message relies on it). */
enum { OPT_TLS = 256, OPT_CA, OPT_CERT, OPT_KEY, OPT_SERVERNAME, OPT_INSECURE, OPT_TIMEOUT,
       OPT_CONNECTIONS, OPT_RATE, OPT_PIPELINE, OPT_REPEAT, OPT_QUIET };

int cmd_send(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "tls", no_argument, NULL, OPT_TLS },
		{ "ca", required_argument, NULL, OPT_CA },
		{ "cert", required_argument, NULL, OPT_CERT },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "servername", required_argument, NULL, OPT_SERVERNAME },
		{ "insecure", no_argument, NULL, OPT_INSECURE },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "connections", required_argument, NULL, OPT_CONNECTIONS },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "pipeline", required_argument, NULL, OPT_PIPELINE },
		{ "repeat", required_argument, NULL, OPT_REPEAT },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mllp_client_opts o = { .connections = 1, .pipeline = 1,
				      .timeout = SEND_DEFAULT_TIMEOUT, .repeat = 1,
				      .stop_on_signals = 1 };
	struct tls_client_opts to = { 0 };
	struct mllp_client_stats st;
	struct mllp_client_payload *pl = NULL;
	struct send_state *s;
	char hostport[512], err[512];
	int opt, tls = 0, rc = 2;
	double v;

	s = calloc(1, sizeof *s);
	if (!s) {
		fprintf(stderr, "hl7bridge send: out of memory\n");
		return 2;
	}
	hist_init(&s->lat);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "hq", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_TLS: tls = 1; break;
		case OPT_CA: to.ca_file = optarg; tls = 1; break;
		case OPT_CERT: to.cert_file = optarg; tls = 1; break;
		case OPT_KEY: to.key_file = optarg; tls = 1; break;
		case OPT_SERVERNAME: o.servername = optarg; break;
		case OPT_INSECURE: to.insecure = 1; break;
		case OPT_QUIET: case 'q': s->quiet = 1; break;
		case OPT_TIMEOUT:
			if (parse_num(optarg, 0.001, 86400, &o.timeout) < 0)
				goto bad_value;
			break;
		case OPT_RATE:
			if (parse_num(optarg, 0, 1e9, &o.rate) < 0)
				goto bad_value;
			break;
		case OPT_CONNECTIONS:
			if (parse_num(optarg, 1, MLLP_CLIENT_MAX_CONNECTIONS, &v) < 0 || v != (double)(uint64_t)v)
				goto bad_value;
			o.connections = (unsigned)v;
			break;
		case OPT_PIPELINE:
			if (parse_num(optarg, 1, MLLP_CLIENT_MAX_PIPELINE, &v) < 0 || v != (double)(uint64_t)v)
				goto bad_value;
			o.pipeline = (unsigned)v;
			break;
		case OPT_REPEAT:
			if (parse_num(optarg, 1, 1e12, &v) < 0 || v != (double)(uint64_t)v)
				goto bad_value;
			o.repeat = (uint64_t)v;
			break;
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (argc - optind < 2) {
		usage(stderr);
		goto out;
	}
	if (split_hostport(argv[optind], hostport, sizeof hostport, &o.host, &o.port) < 0) {
		fprintf(stderr, "hl7bridge send: '%s' is not HOST:PORT\n", argv[optind]);
		goto out;
	}
	if (to.insecure && !tls) {
		fprintf(stderr, "hl7bridge send: --insecure needs --tls\n");
		goto out;
	}
	s->repeat = o.repeat;
	for (int i = optind + 1; i < argc; i++) {
		if (load_file(s, argv[i], err, sizeof err) < 0) {
			fprintf(stderr, "hl7bridge send: %s\n", err);
			goto out;
		}
	}
	if (tls) {
		if (to.insecure)
			fprintf(stderr, "hl7bridge send: --insecure: the server's certificate is "
					"NOT verified\n");
		o.tls = tls_client_ctx_new(&to, err, sizeof err);
		if (!o.tls) {
			fprintf(stderr, "hl7bridge send: %s\n", err);
			goto out;
		}
	}
	pl = calloc(s->n, sizeof *pl);
	if (!pl) {
		fprintf(stderr, "hl7bridge send: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < s->n; i++) {
		pl[i].ptr = s->msgs[i].data;
		pl[i].len = s->msgs[i].len;
	}
	signal(SIGPIPE, SIG_IGN);
	if (mllp_client_run(&o, pl, s->n, result_cb, s, &st, err, sizeof err) < 0) {
		fflush(stdout);
		fprintf(stderr, "hl7bridge send: %s\n", err);
		summary(s, &st);
		goto out;
	}
	fflush(stdout);
	summary(s, &st);
	rc = s->ok == (uint64_t)s->n * o.repeat ? 0 : 1;
	if (st.replies == 0 && st.failed > 0 && st.timeouts == 0) {
		/* Connected, but every connection ended before any reply: as much
		 * a connection failure as a refused connect. */
		fprintf(stderr, "hl7bridge send: no reply on any connection%s\n",
			tls ? "" : " (if this is a TLS port, add --tls)");
		rc = 2;
	}
	goto out;
bad_value:
	fprintf(stderr, "hl7bridge send: bad value '%s' for --%s\n", optarg,
		longopts[opt - OPT_TLS].name);
out:
	if (o.tls)
		SSL_CTX_free(o.tls);
	for (size_t i = 0; i < s->n; i++)
		free(s->msgs[i].data);
	free(s->msgs);
	free(pl);
	free(s);
	return rc;
}

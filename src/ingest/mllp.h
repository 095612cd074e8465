/* mllp — Minimal Lower Layer Protocol framing (HL7v2 over TCP), pure codec.
 *
 * A frame is <VT> payload <FS><CR>. The decoder is incremental: feed it any
 * chunk size (down to one byte) and take complete frames out one at a time.
 * It never does I/O and never buffers more than max_frame bytes: a longer
 * frame is an error for the connection, which the caller must then close.
 *
 * Tolerated on input: <FS><CR><LF> (the LF is swallowed), bytes between
 * frames (skipped and counted), and <FS> followed by something other than
 * <CR> (the frame is delivered, the oddity counted). A <VT> inside a frame
 * means the sender gave up on the previous frame: its partial payload is
 * dropped and counted, and a new frame starts.
 *
 * MLLP release 2 commit acknowledgements are the one-byte payloads 0x06
 * (ACK) and 0x15 (NAK); mllp_frame_kind() recognises them.
 */
#ifndef HB_MLLP_H
#define HB_MLLP_H

#include <stddef.h>
#include <stdint.h>

#define MLLP_VT 0x0b
#define MLLP_FS 0x1c
#define MLLP_CR 0x0d
#define MLLP_LF 0x0a
#define MLLP_COMMIT_ACK 0x06
#define MLLP_COMMIT_NAK 0x15

/* Default cap on one frame's payload (config key: mllp.max_frame_size). */
#define MLLP_DEFAULT_MAX_FRAME (4u * 1024 * 1024)
/* Bytes the encoder adds around a payload. */
#define MLLP_OVERHEAD 3

struct mllp_stats {
	uint64_t frames;        /* frames delivered */
	uint64_t skipped;       /* bytes outside any frame (noise, stray LF) */
	uint64_t aborted;       /* partial frames dropped because a new <VT> came */
	uint64_t bad_trailer;   /* <FS> not followed by <CR> (frame still delivered) */
};

/* Embed in the connection; init/clear. The struct is public so it can be
 * embedded, but its fields other than stats are private. */
struct mllp_decoder {
	unsigned char *buf;     /* payload of the frame being assembled */
	size_t len, cap;
	size_t max_frame;
	int state;
	struct mllp_stats stats;
};

void mllp_decoder_init(struct mllp_decoder *d, size_t max_frame);
void mllp_decoder_clear(struct mllp_decoder *d);

/* Consume bytes from (data, len) until a frame completes or input runs out.
 * *consumed is set to the bytes used. Returns:
 *    1  a frame is complete: (*frame, *frame_len) is its payload, valid until
 *       the next call on this decoder (it may point into data or into the
 *       decoder's buffer). Call again with the rest of the input.
 *    0  all input consumed, no complete frame yet.
 *   -1  error (frame larger than max_frame, or out of memory); errstr is
 *       filled; the decoder stays failed: close the connection.
 * Typical loop:
 *   while (len > 0) { r = mllp_decoder_feed(d, p, len, &n, &f, &fl, e, es);
 *                     p += n; len -= n; if (r < 0) fail; if (r) handle(f, fl); } */
int mllp_decoder_feed(struct mllp_decoder *d, const void *data, size_t len,
		      size_t *consumed, const unsigned char **frame,
		      size_t *frame_len, char *errstr, size_t errstr_size);

/* Bytes of an unfinished frame currently held (0 between frames). */
size_t mllp_decoder_pending(const struct mllp_decoder *d);

enum mllp_frame_kind {
	MLLP_FRAME_MESSAGE,
	MLLP_FRAME_COMMIT_ACK,  /* release 2 commit acknowledgement (0x06) */
	MLLP_FRAME_COMMIT_NAK,  /* release 2 negative commit acknowledgement (0x15) */
};
enum mllp_frame_kind mllp_frame_kind(const unsigned char *frame, size_t len);

/* Write <VT> payload <FS><CR> into out. Returns the frame size
 * (len + MLLP_OVERHEAD), or 0 if out_size is too small (nothing written). */
size_t mllp_encode(const void *payload, size_t len, unsigned char *out,
		   size_t out_size);

/* Write a release 2 commit acknowledgement block (positive: 0x06, else
 * 0x15) into out, which must hold 4 bytes. Returns 4. */
size_t mllp_encode_commit(int positive, unsigned char out[4]);

#endif

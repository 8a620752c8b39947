/*
 * The stream's private state, shared by src/cedar's stream*.c only (never
 * included outside them; the upper layers use cedar/stream_internal.h):
 * stream.c frames, reads and writes messages; stream_crypto.c holds the
 * session crypto (keys, handshake digests, secrets).
 */
#ifndef CCB_CEDAR_STREAM_PRIV_H
#define CCB_CEDAR_STREAM_PRIV_H

#include <stdatomic.h>

#include <openssl/evp.h>

#include "cedar/aesgcm.h"
#include "cedar/legacy.h"
#include "cedar/stream_internal.h"

#define HDR_LEN 5
#define DIGEST_LEN 32

/*
 * Kept small: a broker holds one per registration for its whole life
 * (docs/performance.md). What only some streams need is allocated when
 * needed: the error detail at the first failure, the AES-GCM or legacy
 * cipher state when a key is installed, the frozen handshake digests
 * between the first AES packet and the first packet each way, and the peer
 * text to fit.
 */
struct ccb_stream {
	int fd;
	atomic_bool cancelled;
	bool broken;
	bool loaded;     /* an inbound message is being consumed */
	bool corked;     /* end_message output waits in `scratch` (ccb__stream_cork) */
	/* Handshake digests (cedar-stream.md §4). */
	bool frozen;
	bool finished_send, finished_recv;
	/* Legacy key (cedar-stream.md §5, §7, §8): every byte enciphered while
	 * `legacy_on`, otherwise only secrets; `md_on` adds the MD5 header. */
	bool legacy_on;
	bool md_on;
	int timeout_ms;
	ccb_err code;    /* of the most recent failure (its detail in `err`) */
	uint32_t md_send_bytes, md_recv_bytes; /* digested so far (< 2 x DIGEST_LIMIT) */
	int64_t deadline;
	int64_t op_start; /* when the current read/write began, for timeout details */
	size_t max_message;
	char *peer;      /* to fit; never NULL (no_peer when out of memory) */
	ccb_error *err;  /* allocated at the first failure */

	ccb_buf out;     /* outbound message being built */
	ccb_buf in;      /* inbound message plaintext */
	ccb_cursor cur;  /* position in `in` */
	ccb_buf scratch; /* packet assembly; while corked, the packets not yet sent */

	ccb_aesgcm *gcm; /* an AES-GCM key is installed */
	ccb_legacy *leg; /* a legacy key is installed */

	EVP_MD_CTX *md_send, *md_recv;
	uint8_t *final;  /* frozen digests, sent then received (2 x DIGEST_LEN),
			  * until the first packet each way has used them */

	/* Waits handed to the owner instead of poll() (a fiber's scheduler). */
	ccb__stream_wait_fn wait_hook;
	void *wait_ctx;
};

/* ---- stream.c ---- */

/* Record a failure (code and printf detail, prefixed with the peer) and
 * return the code; anything but a caller mistake breaks the stream. */
ccb_err ccb__stream_failf(ccb_stream *s, ccb_err code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- stream_crypto.c ---- */

/* Wipe and free every key, digest and frozen digest (ccb_stream_free). */
void ccb__stream_drop_crypto(ccb_stream *s);
/* Digest a plaintext packet sent / received before the digests freeze. */
void ccb__stream_digest_sent(ccb_stream *s, const uint8_t *hdr, const uint8_t *body, size_t n);
void ccb__stream_digest_received(ccb_stream *s, const uint8_t *hdr, const uint8_t *body,
				 size_t n);
/* AES-GCM: seal n body bytes after the header at `pkt` (whose length field
 * is already the sealed length) into pkt + HDR_LEN; open `len` sealed bytes
 * `ct` under header `hdr` into `out` (room for len), setting *plen. Both
 * freeze the handshake digests and use them in the first packet each way. */
ccb_err ccb__stream_seal(ccb_stream *s, uint8_t *pkt, const uint8_t *body, size_t n);
ccb_err ccb__stream_open(ccb_stream *s, const uint8_t hdr[HDR_LEN], const uint8_t *ct,
			 size_t len, uint8_t *out, size_t *plen);
/* Restart the legacy cipher, if any, at an end of message. */
void ccb__stream_legacy_restart(ccb_stream *s);
/* Cursor hook deciphering a secret of the loaded message (ccb_cursor.secret). */
ccb_err ccb__stream_decipher_secret(void *ctx, size_t off, size_t n, ccb_error *err);

#endif

/* Internal stream hooks for the ClassAd layer, the layers above and tests
 * (implemented in stream.c and stream_crypto.c). Not installed. */
#ifndef CCB_CEDAR_STREAM_INTERNAL_H
#define CCB_CEDAR_STREAM_INTERNAL_H

#include "ccb/stream.h"
#include "cedar/codec.h"

/* ccb_stream_new() for an fd whose peer text the caller already has (no
 * getpeername) and, when `nonblocking`, that already is non-blocking (no
 * fcntl): a broker's accepted connections. */
ccb_err ccb__stream_new_named(int fd, const char *peer, bool nonblocking, ccb_stream **out,
			      ccb_error *err);

/*
 * Cork: from ccb__stream_cork() on, the packets of ended messages stay in
 * the stream and go out together (one send) just before the stream next
 * reads a message or waits to read (ccb_stream_wait_readable), at
 * ccb_stream_detach_fd(), or at ccb__stream_uncork(), which sends them and
 * ends the cork. A sender of several messages in a row (a handshake's
 * answers) thus costs the peer one wake-up, not one per message. A send
 * failure then shows at that read or at uncork. Uncork before freeing the
 * stream: what is still held is dropped.
 */
void ccb__stream_cork(ccb_stream *s);
ccb_err ccb__stream_uncork(ccb_stream *s);

/* The current inbound message, read from the socket if none is loaded.
 * Returns NULL on failure (details in ccb_stream_error()). */
ccb_cursor *ccb__stream_in(ccb_stream *s);
/* The outbound message being built. */
ccb_buf *ccb__stream_out(ccb_stream *s);
/* Record a failure on the stream and return its code. `err` carries the
 * detail from a codec call. */
ccb_err ccb__stream_fail(ccb_stream *s, const ccb_error *err);
/* Like ccb_stream_set_aes_key() with a fixed send base IV (known-answer tests). */
ccb_err ccb__stream_set_aes_key_iv(ccb_stream *s, const uint8_t key[32], const uint8_t iv[16]);

/*
 * Install a BLOWFISH or 3DES session key (CCB_SEC_CRYPTO_BLOWFISH / _3DES,
 * 24 bytes) as Sock::set_crypto_key + set_MD_mode do: `encrypt` turns
 * crypto mode on for every byte, otherwise only secrets are enciphered;
 * `integrity` adds the MD5 header to every packet (cedar-stream.md §7, §8).
 * Must be called between messages. Errors: CCB_ERR_STATE, CCB_ERR_UNSUPPORTED
 * (cipher unavailable), CCB_ERR_CRYPTO.
 */
ccb_err ccb__stream_set_legacy_key(ccb_stream *s, int method, const uint8_t *key, bool encrypt,
				   bool integrity);
/* A legacy key is installed and crypto mode is off: secrets are enciphered. */
bool ccb__stream_secrets_enciphered(const ccb_stream *s);
/* Encipher the outbound bytes from offset `from` to the end as a secret
 * (no-op unless ccb__stream_secrets_enciphered()). */
ccb_err ccb__stream_encipher_tail(ccb_stream *s, size_t from);

/* Release the message buffers' memory when no message is being read or
 * built (a long-lived idle stream, e.g. a broker's registration, then holds
 * only its struct). No-op otherwise. */
void ccb__stream_trim(ccb_stream *s);

/*
 * Hand every wait of this stream (socket not readable / writable yet) to
 * `fn` instead of poll(): fn(ctx, fd, POLLIN or POLLOUT, deadline in ms of
 * ccb_now_ms()) returns > 0 once the fd is ready, 0 at the deadline, < 0 to
 * cancel. The broker's handshake fibers yield there. NULL restores poll().
 */
typedef int (*ccb__stream_wait_fn)(void *ctx, int fd, short events, int64_t deadline);
void ccb__stream_set_wait_hook(ccb_stream *s, ccb__stream_wait_fn fn, void *ctx);

/* Stop digesting plaintext on s for good (as past the 1 MiB limit) and free
 * the digest contexts: for a connection whose handshake is over and that
 * will never turn encryption on (a plaintext registration would otherwise
 * keep two SHA-256 contexts, ~370 bytes, and hash every heartbeat). */
void ccb__stream_stop_digests(ccb_stream *s);

#endif

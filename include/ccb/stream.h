/*
 * libccb — CEDAR stream: HTCondor's message framing over a TCP socket.
 *
 * A ccb_stream wraps a connected socket. Writers append primitives and end the
 * message with ccb_stream_end_message(), which sends it as one or more CEDAR
 * packets. Readers call the get functions; the first one reads the whole next
 * message (up to the configured cap) and later ones consume it;
 * ccb_stream_end_of_message() then checks that nothing was left unread, as the
 * C++ reader does.
 *
 * Wire rules: 5-byte packet header (end flag,
 * 32-bit big-endian length 1..1 MiB), every integer 8 bytes big-endian, a
 * double as two integers (frexp form), strings NUL-terminated in plaintext and
 * 8-byte length-prefixed while crypto mode is on (an AES-GCM key, or a
 * BLOWFISH/3DES key with encryption negotiated; legacy ciphers restart at
 * every end of message and may add an MD5 integrity header), 0xAD as the
 * NULL string marker.
 *
 * Deadlines: every blocking operation waits at most the stream's timeout
 * (default 30 s) and never past its absolute deadline, if one is set.
 *
 * Errors: every function returns a ccb_err. The codec calls (put_*, get_*,
 * end_message, ...) keep the detail of the most recent failure in the stream
 * (ccb_stream_error(): a context-held error, as hiredis keeps its own); the
 * other calls also take a `ccb_error *err` (may be NULL). After an I/O,
 * framing or crypto failure the stream is broken and every later call fails.
 *
 * Memory: strings the get functions return are the caller's, released with
 * ccb_free(); ccb_stream_peer_name() and ccb_stream_error() are borrowed
 * from the stream.
 *
 * Thread safety: a stream is not thread-safe; use it from one thread at a
 * time. ccb_stream_shutdown() is the exception: it may be called from any
 * thread to make a blocked operation return promptly.
 */
#ifndef CCB_STREAM_H
#define CCB_STREAM_H

#include "ccb/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/clock.h"
#include "ccb/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ccb_stream ccb_stream;

/** Default cap on one inbound message (all its packets together). */
#define CCB_STREAM_DEFAULT_MAX_MESSAGE (1024 * 1024)
/** Largest packet body CEDAR accepts. */
#define CCB_MAX_PACKET_BODY (1024 * 1024)
/** Default per-operation timeout in milliseconds. */
#define CCB_STREAM_DEFAULT_TIMEOUT_MS 30000
/** AES-256-GCM session key length. */
#define CCB_AES_KEY_LEN 32

/**
 * Wrap connected socket `fd`. The stream owns the fd from then on (even when
 * this fails) and closes it in ccb_stream_free(). The fd may be blocking or
 * not; the stream makes it non-blocking and uses poll().
 * Errors: CCB_ERR_INVALID_ARG (fd < 0), CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_stream_new(int fd, ccb_stream **out, ccb_error *err);

/**
 * Open a TCP connection to `host`:`port` (a name or an IPv4/IPv6 literal),
 * trying each resolved address in turn, all before `deadline_ms` (on the
 * ccb_now_ms() clock; INT64_MAX for none; name resolution itself is not
 * bounded). *fd is a connected, non-blocking, close-on-exec socket with
 * TCP_NODELAY, owned by the caller. `what` names the peer in error details
 * ("broker", "target"; NULL for none). Errors: CCB_ERR_NOT_FOUND (cannot
 * resolve), CCB_ERR_IO (refused, unreachable; errno text in the detail),
 * CCB_ERR_TIMEOUT. Thread-safe.
 */
CCB_API ccb_err ccb_tcp_connect(const char *host, int port, int64_t deadline_ms, const char *what,
			int *fd, ccb_error *err);

/** ccb_tcp_connect() with a timeout in ms, wrapped in a new stream whose
 * peer name is "host:port". */
CCB_API ccb_err ccb_stream_connect(const char *host, int port, int timeout_ms, ccb_stream **out,
			   ccb_error *err);

/** Close the fd (unless detached) and free everything. NULL is allowed. */
CCB_API void ccb_stream_free(ccb_stream *s);

/** The socket, still owned by the stream. */
CCB_API int ccb_stream_fd(const ccb_stream *s);

/**
 * Take the socket back: the stream no longer closes it. Fails with
 * CCB_ERR_STATE if a partly read or written message is pending (its bytes
 * would be lost). The stream stays usable only for ccb_stream_free().
 */
CCB_API ccb_err ccb_stream_detach_fd(ccb_stream *s, int *fd);

/** Shut the socket down in both directions, from any thread, so a blocked
 * call returns (with CCB_ERR_CANCELLED). */
CCB_API void ccb_stream_shutdown(ccb_stream *s);

/** Per-operation timeout in ms; < 0 means wait forever (not recommended). */
CCB_API void ccb_stream_set_timeout(ccb_stream *s, int timeout_ms);

/** Absolute deadline on the ccb_now_ms() monotonic clock (milliseconds,
 * CLOCK_MONOTONIC); INT64_MAX removes it. Operations stop at whichever of
 * timeout and deadline comes first. */
CCB_API void ccb_stream_set_deadline(ccb_stream *s, int64_t deadline_ms);

/** Cap on one inbound message in bytes (default 1 MiB, minimum 64). */
CCB_API void ccb_stream_set_max_message(ccb_stream *s, size_t max_bytes);

/** Text naming the peer in error details (e.g. "broker 127.0.0.1:9618").
 * Copied. Default: the socket's peer address. */
CCB_API void ccb_stream_set_peer_name(ccb_stream *s, const char *name);
CCB_API const char *ccb_stream_peer_name(const ccb_stream *s);

/** Detail of the most recent failure on this stream (code CCB_OK if none). */
CCB_API const ccb_error *ccb_stream_error(const ccb_stream *s);

/* ---- writing: append to the current outbound message ---------------- */

CCB_API ccb_err ccb_stream_put_int(ccb_stream *s, int64_t v);
CCB_API ccb_err ccb_stream_put_uint(ccb_stream *s, uint64_t v);
CCB_API ccb_err ccb_stream_put_char(ccb_stream *s, uint8_t v);
CCB_API ccb_err ccb_stream_put_double(ccb_stream *s, double v);
/** NULL is sent as the empty string, as HTCondor's put(const char *) does. */
CCB_API ccb_err ccb_stream_put_string(ccb_stream *s, const char *str);
/** The 0xAD NULL-string marker (HTCondor's put_nullstr). */
CCB_API ccb_err ccb_stream_put_null_string(ccb_stream *s);
/** Raw bytes, no length prefix. */
CCB_API ccb_err ccb_stream_put_bytes(ccb_stream *s, const void *p, size_t n);

/**
 * Send the buffered message, split into packets of at most 1 MiB, the last
 * with end flag 1. With nothing buffered nothing is sent (HTCondor never
 * sends an empty packet) and CCB_OK is returned.
 */
CCB_API ccb_err ccb_stream_end_message(ccb_stream *s);

/* ---- reading: consume the current inbound message -------------------- */

CCB_API ccb_err ccb_stream_get_int(ccb_stream *s, int64_t *v);
/** Reads an integer and checks it fits in 32 bits (CCB_ERR_PROTOCOL if not). */
CCB_API ccb_err ccb_stream_get_int32(ccb_stream *s, int32_t *v);
CCB_API ccb_err ccb_stream_get_char(ccb_stream *s, uint8_t *v);
CCB_API ccb_err ccb_stream_get_double(ccb_stream *s, double *v);
/** *out is the caller's (ccb_free()), or NULL for the NULL-string marker. */
CCB_API ccb_err ccb_stream_get_string(ccb_stream *s, char **out);
CCB_API ccb_err ccb_stream_get_bytes(ccb_stream *s, void *out, size_t n);

/**
 * Finish reading the current message: CCB_ERR_PROTOCOL if bytes were left
 * unread (the message is dropped either way). If no message was started,
 * returns CCB_OK without reading (HTCondor's empty-message case).
 */
CCB_API ccb_err ccb_stream_end_of_message(ccb_stream *s);

/**
 * Wait until bytes of the next message can be read, without consuming
 * anything (for serving a socket while also keeping a schedule, such as
 * heartbeats). CCB_OK when readable — which includes the peer having closed:
 * the next get then reports CCB_ERR_CLOSED. CCB_ERR_TIMEOUT after `timeout_ms`
 * (< 0: the stream's own timeout), never past the stream's deadline.
 */
CCB_API ccb_err ccb_stream_wait_readable(ccb_stream *s, int timeout_ms);

/** Bytes of the current inbound message not yet consumed (0 if none loaded). */
CCB_API size_t ccb_stream_unread(const ccb_stream *s);

/* ---- byte-stream mode --------------------------------------------------- */

/** Largest CEDAR message ccb_stream_write() sends (64 KiB). */
#define CCB_STREAM_WRITE_CHUNK (64 * 1024)

/**
 * Byte-stream mode, for an established stream (after the handshake and
 * command) that carries raw bytes (an echo, a tunnel) instead of typed
 * CEDAR messages. Both ends must use it: on the wire every write is one or
 * more ordinary CEDAR messages whose bodies are the bytes themselves, so a
 * peer reading messages sees one byte blob (ccb_stream_get_bytes() of
 * ccb_stream_unread() bytes) per message. The session crypto applies as to
 * any message: AES-GCM packets, BLOWFISH/3DES (restarted at every message
 * end) or plaintext alike.
 *
 * ccb_stream_write() sends all `n` bytes, as one message when n <=
 * CCB_STREAM_WRITE_CHUNK, otherwise as consecutive messages of at most that
 * size (so the reader's message cap is never hit); n = 0 sends nothing. It
 * must not be mixed with a message being built (CCB_ERR_STATE). Errors: as
 * ccb_stream_end_message() (CCB_ERR_IO, CCB_ERR_TIMEOUT, CCB_ERR_CLOSED,
 * CCB_ERR_CANCELLED, CCB_ERR_CRYPTO), CCB_ERR_INVALID_ARG, CCB_ERR_NOMEM.
 *
 * ccb_stream_read() waits for the next bytes and returns 1..n of them in
 * *got, crossing message boundaries: it takes what is left of the current
 * message, up to n, and reads the next message when none is left. At the
 * end of the stream it returns CCB_ERR_CLOSED with *got = 0. Errors: as the
 * get functions (CCB_ERR_CLOSED, CCB_ERR_TIMEOUT, CCB_ERR_TOO_LARGE,
 * CCB_ERR_CRYPTO, CCB_ERR_CANCELLED), CCB_ERR_INVALID_ARG (n = 0, NULL).
 *
 * Both bound each wait by the stream's timeout and deadline, fill `err`
 * (may be NULL) and also keep the detail on the stream (ccb_stream_error()).
 */
CCB_API ccb_err ccb_stream_write(ccb_stream *s, const void *buf, size_t n, ccb_error *err);
CCB_API ccb_err ccb_stream_read(ccb_stream *s, void *buf, size_t n, size_t *got, ccb_error *err);

/* ---- session crypto --------------------------- */

/**
 * Install an AES-256-GCM key: every later packet in both directions is
 * encrypted and strings switch to the length-prefixed form. As in HTCondor an
 * AES key always encrypts; there is no integrity-only mode. Must be called
 * between messages. Errors: CCB_ERR_STATE (message pending), CCB_ERR_CRYPTO.
 */
CCB_API ccb_err ccb_stream_set_aes_key(ccb_stream *s, const uint8_t key[CCB_AES_KEY_LEN]);

/** True while crypto mode is on: an AES key is installed, or a legacy
 * (BLOWFISH/3DES) key with encryption negotiated. Strings then use the
 * length-prefixed form. */
CCB_API bool ccb_stream_crypto_on(const ccb_stream *s);

/** The installed key's method: 0 none, 1 BLOWFISH, 2 3DES, 3 AES (the
 * wire's numbering). A legacy key may be installed with crypto mode off. */
CCB_API int ccb_stream_crypto_method(const ccb_stream *s);

/** True when packets carry an integrity check (AES-GCM, or the legacy
 * MD5 header). */
CCB_API bool ccb_stream_integrity_on(const ccb_stream *s);

/**
 * Write a string as HTCondor's put_secret does: with a legacy key installed
 * and crypto mode off, crypto is on for this string only (8-byte length and
 * bytes enciphered); otherwise a plain put_string.
 * Errors as ccb_stream_put_string().
 */
CCB_API ccb_err ccb_stream_put_secret(ccb_stream *s, const char *str);

/** Read a string written with put_secret (see ccb_stream_put_secret()).
 * *out is the caller's (ccb_free()), or NULL for the NULL-string marker. */
CCB_API ccb_err ccb_stream_get_secret(ccb_stream *s, char **out);

/**
 * Forget the handshake digests (HTCondor's resetHeaderMD): traffic before this
 * point no longer counts towards the first encrypted packet's AAD. Required
 * after a shared-port connect and around the CCB reverse-connect hello.
 */
CCB_API void ccb_stream_reset_digests(ccb_stream *s);

#ifdef __cplusplus
}
#endif
#endif

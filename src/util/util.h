/*
 * Internal helpers shared by every layer: growable buffers, deadlines, hex,
 * randomness and the internal logging entry point. Not installed.
 */
#ifndef CCB_UTIL_H
#define CCB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/error.h"
#include "ccb/clock.h"
#include "ccb/log.h"

/* ---- growable byte buffer ---------------------------------------------- */

typedef struct ccb_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
} ccb_buf;

void ccb_buf_init(ccb_buf *b);
void ccb_buf_free(ccb_buf *b);
/* Make room for `extra` more bytes; false on overflow or allocation failure. */
bool ccb_buf_reserve(ccb_buf *b, size_t extra);
bool ccb_buf_append(ccb_buf *b, const void *p, size_t n);
bool ccb_buf_append_str(ccb_buf *b, const char *s);
bool ccb_buf_appendf(ccb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append a NUL without counting it in len, so data can be used as a C string. */
bool ccb_buf_terminate(ccb_buf *b);
/* Hand the storage to the caller (NUL-terminated); the buffer is left empty. */
char *ccb_buf_steal_str(ccb_buf *b);
void ccb_buf_reset(ccb_buf *b);

/* ---- time and deadlines ------------------------------------------------ */

/* ccb_now_ms() and ccb_deadline_in() are public: ccb/clock.h. */
/* Wall clock, seconds since the epoch. */
int64_t ccb_wall_s(void);
/* Milliseconds left before `deadline`, clamped to [0, INT32_MAX] for poll();
 * -1 for "no deadline". */
int ccb_deadline_left(int64_t deadline);

/* ---- hex and random ---------------------------------------------------- */

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void ccb_hex_encode(const void *in, size_t n, char *out);
/* Value of one hex digit (either case), -1 if not one. */
int ccb_hex_digit(int c);
/* Decode 2n hex digits into out; false on a bad digit or odd length. */
bool ccb_hex_decode(const char *hex, size_t hexlen, uint8_t *out);
/* Cryptographically strong random bytes (OpenSSL). */
ccb_err ccb_random_bytes(void *out, size_t n, ccb_error *err);

/* ---- strings ----------------------------------------------------------- */

char *ccb_strdup(const char *s);
char *ccb_strndup(const char *s, size_t n);
bool ccb_str_ieq(const char *a, const char *b);

/* Thread-safe text for an errno value: ccb__strerror() may share one static
 * buffer between threads, so the library never calls it. ccb__strerror_r
 * writes into buf (n bytes) when it needs to and returns the text to use,
 * which is either buf or a constant string; it never returns NULL. Unknown
 * values give "error N". ccb__strerror uses a per-thread buffer, so its
 * result stays valid until the same thread calls it again. */
const char *ccb__strerror_r(int e, char *buf, size_t n);
const char *ccb__strerror(int e);

/* Wipe a secret NUL-terminated string (cookie, connect id, token, password)
 * with OPENSSL_cleanse, which the compiler may not drop as a dead store the
 * way it can drop a memset before free, then free it. NULL is a no-op. */
void ccb__free_secret(char *s);

/* ---- logging ----------------------------------------------------------- */

bool ccb__log_enabled(ccb_log_level level);
void ccb__log(ccb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define CCB_LOG(level, ...)                                 \
	do {                                                \
		if (ccb__log_enabled(level))                \
			ccb__log(level, __VA_ARGS__);       \
	} while (0)

#endif

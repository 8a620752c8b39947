/*
 * CEDAR primitive codec over in-memory messages (cedar-stream.md §3).
 * One codec for every user: the stream, the ClassAd layer and the decoder.
 * `crypto` selects the string form: NUL-terminated (off) or int64 length +
 * bytes including the NUL (on, i.e. an AES key is installed).
 */
#ifndef CCB_CEDAR_CODEC_H
#define CCB_CEDAR_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* First byte of a NULL string (H:stream.cpp:980-985: octal \255). */
#define CCB_NULL_STRING_MARKER 0xAD
/* Bound on an encrypted string's length prefix (H:stream.cpp:997-1000). */
#define CCB_MAX_CRYPTO_STRING 10000000

typedef struct ccb_cursor {
	const uint8_t *data;
	size_t len;
	size_t pos;
	bool crypto;
	/* Set by a stream holding a legacy key with crypto mode off: deciphers
	 * n bytes at offset `off` of `data` in place, for a secret
	 * (classad-wire.md §6). NULL: secrets are read like other strings. */
	ccb_err (*secret)(void *ctx, size_t off, size_t n, ccb_error *err);
	void *secret_ctx;
} ccb_cursor;

static inline size_t ccb_cursor_left(const ccb_cursor *c)
{
	return c->len - c->pos;
}

ccb_err ccb_dec_int(ccb_cursor *c, int64_t *v, ccb_error *err);
ccb_err ccb_dec_char(ccb_cursor *c, uint8_t *v, ccb_error *err);
ccb_err ccb_dec_double(ccb_cursor *c, double *v, ccb_error *err);
ccb_err ccb_dec_bytes(ccb_cursor *c, void *out, size_t n, ccb_error *err);
/* Zero-copy string: *s points into the message (not NUL-terminated in crypto
 * mode's terms, but always followed by the NUL the sender wrote), *n is its
 * length without the NUL. *is_null is set for the NULL marker (then *s = NULL). */
ccb_err ccb_dec_string_view(ccb_cursor *c, const char **s, size_t *n, bool *is_null,
			    ccb_error *err);
/* Copying form; *out is malloc'd (NULL for the NULL marker). */
ccb_err ccb_dec_string(ccb_cursor *c, char **out, ccb_error *err);
/* Stream::get_secret: with a `secret` hook the string is in the ON form
 * (8-byte length + bytes), both enciphered; without, a plain string. */
ccb_err ccb_dec_secret_view(ccb_cursor *c, const char **s, size_t *n, bool *is_null,
			    ccb_error *err);
ccb_err ccb_dec_secret(ccb_cursor *c, char **out, ccb_error *err);

bool ccb_enc_int(ccb_buf *b, int64_t v);
bool ccb_enc_uint(ccb_buf *b, uint64_t v);
bool ccb_enc_char(ccb_buf *b, uint8_t v);
bool ccb_enc_double(ccb_buf *b, double v);
bool ccb_enc_bytes(ccb_buf *b, const void *p, size_t n);
/* NULL `s` is sent as the empty string, as C++ put(const char*) does. */
bool ccb_enc_string(ccb_buf *b, bool crypto, const char *s);
bool ccb_enc_string_n(ccb_buf *b, bool crypto, const char *s, size_t n);
bool ccb_enc_null_string(ccb_buf *b, bool crypto);

/* Big-endian helpers. */
static inline void ccb_be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t ccb_be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif

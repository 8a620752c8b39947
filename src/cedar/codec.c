#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

/* Scale of a double's fraction on the wire (H:stream.cpp:36). */
#define CCB_FRAC_SCALE 2147483647.0

static ccb_err short_read(ccb_cursor *c, size_t want, const char *what, ccb_error *err)
{
	return ccb_error_set(err, CCB_ERR_PROTOCOL,
			     "message ends inside %s: need %zu bytes, %zu left", what, want,
			     ccb_cursor_left(c));
}

ccb_err ccb_dec_int(ccb_cursor *c, int64_t *v, ccb_error *err)
{
	uint64_t u = 0;

	if (ccb_cursor_left(c) < 8)
		return short_read(c, 8, "an integer", err);
	for (int i = 0; i < 8; i++)
		u = u << 8 | c->data[c->pos + (size_t)i];
	c->pos += 8;
	*v = (int64_t)u;
	return CCB_OK;
}

ccb_err ccb_dec_char(ccb_cursor *c, uint8_t *v, ccb_error *err)
{
	if (ccb_cursor_left(c) < 1)
		return short_read(c, 1, "a char", err);
	*v = c->data[c->pos++];
	return CCB_OK;
}

ccb_err ccb_dec_double(ccb_cursor *c, double *v, ccb_error *err)
{
	int64_t frac = 0, ex = 0;
	ccb_err rc;

	if ((rc = ccb_dec_int(c, &frac, err)) || (rc = ccb_dec_int(c, &ex, err)))
		return rc;
	/* The C++ writer produces a 32-bit fraction and an int exponent; clamp
	 * the exponent so hostile input cannot make ldexp misbehave. */
	if (ex > 4096)
		ex = 4096;
	if (ex < -4096)
		ex = -4096;
	*v = ldexp((double)(int32_t)frac / CCB_FRAC_SCALE, (int)ex);
	return CCB_OK;
}

ccb_err ccb_dec_bytes(ccb_cursor *c, void *out, size_t n, ccb_error *err)
{
	if (ccb_cursor_left(c) < n)
		return short_read(c, n, "raw bytes", err);
	if (n)
		memcpy(out, c->data + c->pos, n);
	c->pos += n;
	return CCB_OK;
}

ccb_err ccb_dec_string_view(ccb_cursor *c, const char **s, size_t *n, bool *is_null,
			    ccb_error *err)
{
	const uint8_t *start;
	ccb_err rc;

	*s = NULL;
	*n = 0;
	*is_null = false;
	if (c->crypto) {
		int64_t len = 0;
		if ((rc = ccb_dec_int(c, &len, err)))
			return rc;
		if (len < 0 || len > CCB_MAX_CRYPTO_STRING)
			return ccb_error_set(err, CCB_ERR_PROTOCOL,
					     "bad string length %lld", (long long)len);
		if (ccb_cursor_left(c) < (size_t)len)
			return short_read(c, (size_t)len, "a string", err);
		start = c->data + c->pos;
		c->pos += (size_t)len;
		if (len > 0 && start[0] == CCB_NULL_STRING_MARKER) {
			*is_null = true;
			return CCB_OK;
		}
		/* The count includes the NUL; tolerate a sender that left it out. */
		*s = (const char *)start;
		*n = (size_t)len;
		if (*n > 0 && start[*n - 1] == '\0')
			(*n)--;
		if (memchr(start, '\0', *n))
			return ccb_error_set(err, CCB_ERR_PROTOCOL, "string has an embedded NUL");
		return CCB_OK;
	}
	if (ccb_cursor_left(c) < 1)
		return short_read(c, 1, "a string", err);
	start = c->data + c->pos;
	if (start[0] == CCB_NULL_STRING_MARKER) {
		c->pos++;
		*is_null = true;
		return CCB_OK;
	}
	{
		const uint8_t *nul = memchr(start, '\0', ccb_cursor_left(c));
		if (!nul)
			return ccb_error_set(err, CCB_ERR_PROTOCOL,
					     "message ends inside a string (no NUL in %zu bytes)",
					     ccb_cursor_left(c));
		*s = (const char *)start;
		*n = (size_t)(nul - start);
		c->pos += *n + 1;
	}
	return CCB_OK;
}

ccb_err ccb_dec_secret_view(ccb_cursor *c, const char **s, size_t *n, bool *is_null,
			    ccb_error *err)
{
	size_t at = c->pos;
	uint64_t len = 0;
	ccb_err rc;

	if (!c->secret || c->crypto)
		return ccb_dec_string_view(c, s, n, is_null, err);
	*s = NULL;
	*n = 0;
	*is_null = false;
	if (ccb_cursor_left(c) < 8)
		return short_read(c, 8, "a secret's length", err);
	if ((rc = c->secret(c->secret_ctx, at, 8, err)))
		return rc;
	for (int i = 0; i < 8; i++)
		len = len << 8 | c->data[at + i];
	if (len > CCB_MAX_CRYPTO_STRING || len > ccb_cursor_left(c) - 8)
		return ccb_error_set(err, CCB_ERR_PROTOCOL,
				     "bad secret length %llu (%zu bytes left; wrong session key?)",
				     (unsigned long long)len, ccb_cursor_left(c) - 8);
	if ((rc = c->secret(c->secret_ctx, at + 8, (size_t)len, err)))
		return rc;
	c->crypto = true;
	rc = ccb_dec_string_view(c, s, n, is_null, err);
	c->crypto = false;
	return rc;
}

static ccb_err dec_copy(ccb_cursor *c, char **out, bool secret, ccb_error *err)
{
	const char *s;
	size_t n;
	bool is_null;
	ccb_err rc;

	*out = NULL;
	rc = secret ? ccb_dec_secret_view(c, &s, &n, &is_null, err)
		    : ccb_dec_string_view(c, &s, &n, &is_null, err);
	if (rc)
		return rc;
	if (is_null)
		return CCB_OK;
	*out = ccb_strndup(s, n);
	if (!*out)
		return ccb_error_set(err, CCB_ERR_NOMEM, "string of %zu bytes", n);
	return CCB_OK;
}

ccb_err ccb_dec_string(ccb_cursor *c, char **out, ccb_error *err)
{
	return dec_copy(c, out, false, err);
}

ccb_err ccb_dec_secret(ccb_cursor *c, char **out, ccb_error *err)
{
	return dec_copy(c, out, true, err);
}

bool ccb_enc_uint(ccb_buf *b, uint64_t v)
{
	uint8_t p[8];

	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
	return ccb_buf_append(b, p, 8);
}

bool ccb_enc_int(ccb_buf *b, int64_t v)
{
	return ccb_enc_uint(b, (uint64_t)v);
}

bool ccb_enc_char(ccb_buf *b, uint8_t v)
{
	return ccb_buf_append(b, &v, 1);
}

bool ccb_enc_double(ccb_buf *b, double v)
{
	int ex = 0;
	double m = frexp(v, &ex);
	/* (int)(m * scale): truncation toward zero (H:stream.cpp:622-630). */
	int32_t frac = (int32_t)(m * CCB_FRAC_SCALE);

	if (!isfinite(v)) {
		frac = 0;
		ex = 0;
	}
	return ccb_enc_int(b, frac) && ccb_enc_int(b, ex);
}

bool ccb_enc_bytes(ccb_buf *b, const void *p, size_t n)
{
	return ccb_buf_append(b, p, n);
}

bool ccb_enc_string_n(ccb_buf *b, bool crypto, const char *s, size_t n)
{
	static const uint8_t nul = 0;

	if (crypto && !ccb_enc_int(b, (int64_t)n + 1))
		return false;
	return ccb_buf_append(b, s, n) && ccb_buf_append(b, &nul, 1);
}

bool ccb_enc_string(ccb_buf *b, bool crypto, const char *s)
{
	if (!s)
		s = "";
	return ccb_enc_string_n(b, crypto, s, strlen(s));
}

bool ccb_enc_null_string(ccb_buf *b, bool crypto)
{
	static const uint8_t marker = CCB_NULL_STRING_MARKER;

	if (crypto && !ccb_enc_int(b, 1))
		return false;
	return ccb_buf_append(b, &marker, 1);
}

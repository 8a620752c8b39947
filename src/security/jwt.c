/*
 * Strict compact-JWS parsing and HS256/384/512 verification for IDTOKENS
 * (security-handshake.md §7.4; H:src/condor_io/condor_auth_passwd.cpp:
 * checkToken 206-251, setup_shared_keys 1085-1130).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "security/jwt.h"

static const char b64url_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

bool ccb__b64url_encode(const void *in, size_t n, ccb_buf *out)
{
	const uint8_t *p = in;
	char q[4];

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t rem = n - i, k = rem >= 3 ? 4 : rem + 1;
		if (rem > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (rem > 2)
			v |= p[i + 2];
		for (size_t j = 0; j < 4; j++)
			q[j] = b64url_chars[(v >> (18 - 6 * j)) & 63];
		if (!ccb_buf_append(out, q, k))
			return false;
	}
	return true;
}

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

bool ccb__b64url_decode(const char *in, size_t n, uint8_t *out, size_t *out_len)
{
	uint32_t acc = 0;
	size_t bits = 0, o = 0;

	if (n % 4 == 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_value((unsigned char)in[i]);
		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Non-zero leftover bits mean a non-canonical encoding. */
	if (acc != 0)
		return false;
	*out_len = o;
	return true;
}

size_t ccb__jwt_sig_len(ccb__jwt_alg alg)
{
	switch (alg) {
	case CCB__JWT_HS256:
		return 32;
	case CCB__JWT_HS384:
		return 48;
	case CCB__JWT_HS512:
		return 64;
	}
	return 0;
}

static const EVP_MD *alg_md(ccb__jwt_alg alg)
{
	switch (alg) {
	case CCB__JWT_HS256:
		return EVP_sha256();
	case CCB__JWT_HS384:
		return EVP_sha384();
	case CCB__JWT_HS512:
		return EVP_sha512();
	}
	return NULL;
}

void ccb__jwt_clear(ccb__jwt *j)
{
	if (!j)
		return;
	free(j->token_hp);
	free(j->header_json);
	free(j->payload_json);
	free(j->kid);
	free(j->iss);
	free(j->sub);
	free(j->jti);
	free(j->scope);
	OPENSSL_cleanse(j->sig, sizeof j->sig);
	memset(j, 0, sizeof *j);
}

const char *ccb__jwt_identity(const ccb__jwt *j)
{
	if (j->sub)
		return j->sub;
	return j->jti;
}

/* Decode one base64url part into a NUL-terminated JSON text. */
static ccb_err decode_part(const char *what, const char *p, size_t n, char **out, ccb_error *err)
{
	size_t olen = 0;
	char *buf;

	if (n == 0)
		return ccb_error_set(err, CCB_ERR_PARSE, "JWT %s is empty", what);
	buf = malloc(n * 3 / 4 + 1);
	if (!buf)
		return ccb_error_set(err, CCB_ERR_NOMEM, "JWT %s: out of memory", what);
	if (!ccb__b64url_decode(p, n, (uint8_t *)buf, &olen)) {
		free(buf);
		return ccb_error_set(err, CCB_ERR_PARSE, "JWT %s is not valid base64url", what);
	}
	buf[olen] = '\0';
	if (strlen(buf) != olen) {
		free(buf);
		return ccb_error_set(err, CCB_ERR_PARSE, "JWT %s contains a NUL byte", what);
	}
	*out = buf;
	return CCB_OK;
}

static ccb_err load_object(const char *what, const char *text, json_t **out, ccb_error *err)
{
	json_error_t jerr;
	json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);

	if (!o)
		return ccb_error_set(err, CCB_ERR_PARSE, "JWT %s is not valid JSON: %s", what,
				     jerr.text);
	if (!json_is_object(o)) {
		json_decref(o);
		return ccb_error_set(err, CCB_ERR_PARSE, "JWT %s is not a JSON object", what);
	}
	*out = o;
	return CCB_OK;
}

/* Optional string member: absent -> NULL; present but not a string -> error. */
static ccb_err get_str(json_t *o, const char *key, char **out, ccb_error *err)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return CCB_OK;
	if (!json_is_string(v))
		return ccb_error_set(err, CCB_ERR_PARSE, "JWT claim \"%s\" is not a string", key);
	if (!(*out = ccb_strdup(json_string_value(v))))
		return ccb_error_set(err, CCB_ERR_NOMEM, "JWT claim \"%s\": out of memory", key);
	return CCB_OK;
}

/* Optional NumericDate: HTCondor writes integers; anything else is refused. */
static ccb_err get_time(json_t *o, const char *key, int64_t *out, bool *has, ccb_error *err)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return CCB_OK;
	if (!json_is_integer(v))
		return ccb_error_set(err, CCB_ERR_PARSE, "JWT claim \"%s\" is not an integer", key);
	*out = (int64_t)json_integer_value(v);
	*has = true;
	return CCB_OK;
}

static ccb_err parse_header(ccb__jwt *j, ccb_error *err)
{
	json_t *o = NULL, *alg;
	const char *a;
	ccb_err rc = load_object("header", j->header_json, &o, err);

	if (rc != CCB_OK)
		return rc;
	alg = json_object_get(o, "alg");
	if (!alg || !json_is_string(alg)) {
		rc = ccb_error_set(err, CCB_ERR_PARSE, "JWT header has no \"alg\"");
		goto out;
	}
	a = json_string_value(alg);
	if (!strcmp(a, "HS256"))
		j->alg = CCB__JWT_HS256;
	else if (!strcmp(a, "HS384"))
		j->alg = CCB__JWT_HS384;
	else if (!strcmp(a, "HS512"))
		j->alg = CCB__JWT_HS512;
	else {
		rc = ccb_error_set(err, CCB_ERR_UNSUPPORTED, "JWT algorithm is not HS256/384/512");
		goto out;
	}
	/* kid is mandatory and non-empty (fetchTokenSharedKey: "explicit is
	 * better than implicit"). */
	rc = get_str(o, "kid", &j->kid, err);
	if (rc == CCB_OK && (!j->kid || !*j->kid))
		rc = ccb_error_set(err, CCB_ERR_PARSE, "JWT header has no \"kid\" (signing key name)");
out:
	json_decref(o);
	return rc;
}

static ccb_err parse_payload(ccb__jwt *j, ccb_error *err)
{
	json_t *o = NULL;
	ccb_err rc = load_object("payload", j->payload_json, &o, err);

	if (rc != CCB_OK)
		return rc;
	if ((rc = get_str(o, "iss", &j->iss, err)) == CCB_OK &&
	    (rc = get_str(o, "sub", &j->sub, err)) == CCB_OK &&
	    (rc = get_str(o, "jti", &j->jti, err)) == CCB_OK &&
	    (rc = get_str(o, "scope", &j->scope, err)) == CCB_OK &&
	    (rc = get_time(o, "iat", &j->iat, &j->has_iat, err)) == CCB_OK)
		rc = get_time(o, "exp", &j->exp, &j->has_exp, err);
	json_decref(o);
	return rc;
}

static ccb_err parse_signature(ccb__jwt *j, const char *p, size_t n, ccb_error *err)
{
	size_t want = ccb__jwt_sig_len(j->alg), got = 0;
	uint8_t buf[CCB__JWT_SIG_MAX + 3];

	if (n > (CCB__JWT_SIG_MAX * 4 + 2) / 3)
		return ccb_error_set(err, CCB_ERR_PARSE, "JWT signature is too long for its algorithm");
	if (!ccb__b64url_decode(p, n, buf, &got))
		return ccb_error_set(err, CCB_ERR_PARSE, "JWT signature is not valid base64url");
	if (got != want) {
		OPENSSL_cleanse(buf, sizeof buf);
		return ccb_error_set(err, CCB_ERR_PARSE, "JWT signature has %zu bytes, %zu expected",
				     got, want);
	}
	memcpy(j->sig, buf, got);
	j->sig_len = got;
	OPENSSL_cleanse(buf, sizeof buf);
	return CCB_OK;
}

/* Split text into header, payload and (optional) signature at the dots. */
static ccb_err split(const char *text, size_t len, unsigned flags, size_t dots[2], size_t *ndots,
		     ccb_error *err)
{
	*ndots = 0;
	for (size_t i = 0; i < len; i++) {
		if (text[i] != '.')
			continue;
		if (*ndots == 2)
			return ccb_error_set(err, CCB_ERR_PARSE, "JWT has more than three parts");
		dots[(*ndots)++] = i;
	}
	if (*ndots == 2 || (*ndots == 1 && (flags & CCB__JWT_NO_SIGNATURE)))
		return CCB_OK;
	return ccb_error_set(err, CCB_ERR_PARSE, "JWT is not header.payload.signature");
}

ccb_err ccb__jwt_parse(const char *text, size_t len, unsigned flags, ccb__jwt *out,
		       ccb_error *err)
{
	size_t dots[2] = {0, 0}, ndots = 0, sig_n;
	ccb_err rc;

	memset(out, 0, sizeof *out);
	if (!text || len == 0)
		return ccb_error_set(err, CCB_ERR_PARSE, "JWT is empty");
	if (len > CCB__JWT_MAX_LEN)
		return ccb_error_set(err, CCB_ERR_TOO_LARGE, "JWT of %zu bytes exceeds %d", len,
				     CCB__JWT_MAX_LEN);
	if ((rc = split(text, len, flags, dots, &ndots, err)) != CCB_OK)
		return rc;
	out->hp_len = ndots == 2 ? dots[1] : len;
	if (!(out->token_hp = ccb_strndup(text, out->hp_len)))
		return ccb_error_set(err, CCB_ERR_NOMEM, "JWT: out of memory");
	if ((rc = decode_part("header", text, dots[0], &out->header_json, err)) != CCB_OK ||
	    (rc = decode_part("payload", text + dots[0] + 1, out->hp_len - dots[0] - 1,
			      &out->payload_json, err)) != CCB_OK ||
	    (rc = parse_header(out, err)) != CCB_OK || (rc = parse_payload(out, err)) != CCB_OK)
		return rc;
	sig_n = ndots == 2 ? len - dots[1] - 1 : 0;
	if (sig_n == 0) {
		if (!(flags & CCB__JWT_NO_SIGNATURE))
			return ccb_error_set(err, CCB_ERR_PARSE, "JWT has an empty signature");
		return CCB_OK;
	}
	return parse_signature(out, text + dots[1] + 1, sig_n, err);
}

ccb_err ccb__jwt_sign(ccb__jwt_alg alg, const uint8_t *key, size_t key_len, const void *data,
		      size_t n, uint8_t *sig, ccb_error *err)
{
	const EVP_MD *md = alg_md(alg);
	unsigned int got = 0;

	if (!md || key_len > INT32_MAX)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "JWT sign: bad algorithm or key");
	if (!HMAC(md, key, (int)key_len, data, n, sig, &got) || got != ccb__jwt_sig_len(alg))
		return ccb_error_set(err, CCB_ERR_CRYPTO, "JWT sign: HMAC failed");
	return CCB_OK;
}

ccb_err ccb__jwt_verify(const ccb__jwt *j, const uint8_t jwt_key[32], ccb_error *err)
{
	uint8_t want[CCB__JWT_SIG_MAX];
	size_t n = ccb__jwt_sig_len(j->alg);
	ccb_err rc;

	if (!j->sig_len || j->sig_len != n)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "JWT has no signature to verify");
	rc = ccb__jwt_sign(j->alg, jwt_key, 32, j->token_hp, j->hp_len, want, err);
	if (rc == CCB_OK && CRYPTO_memcmp(want, j->sig, n) != 0)
		rc = ccb_error_set(err, CCB_ERR_CRYPTO,
				   "JWT signature does not match (wrong signing key \"%s\" or altered token)",
				   j->kid ? j->kid : "");
	OPENSSL_cleanse(want, sizeof want);
	return rc;
}

/* a - b, saturated: claim times come from the network and may be extreme. */
static int64_t sat_sub(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return r;
}

ccb_err ccb__jwt_check_claims(const ccb__jwt *j, int64_t now, int64_t max_age, ccb_error *err)
{
	if (!j->iss || !*j->iss)
		return ccb_error_set(err, CCB_ERR_AUTH, "token has no issuer (iss)");
	if (!j->jti || !*j->jti)
		return ccb_error_set(err, CCB_ERR_AUTH, "token has no id (jti)");
	if (max_age > 0 && j->has_iat && sat_sub(now, j->iat) > max_age)
		return ccb_error_set(err, CCB_ERR_AUTH,
				     "token age %lld s is greater than the max age %lld s",
				     (long long)sat_sub(now, j->iat), (long long)max_age);
	if (j->has_exp && sat_sub(now, j->exp) > 0)
		return ccb_error_set(err, CCB_ERR_AUTH, "token expired %lld s ago",
				     (long long)sat_sub(now, j->exp));
	return CCB_OK;
}

/*
 * Compact JWS ("header.payload.signature", base64url without padding) as
 * HTCondor's IDTOKENS use it (security-handshake.md §7.4). Parsing is strict
 * and bounded; the signed text is kept exactly as received (token_hp), since
 * the signature and the TOKEN key schedule both cover that text and never a
 * re-serialisation of the JSON. Internal; no global state, thread-safe.
 *
 * Errors (ccb_error code + detail, distinct per cause):
 *   CCB_ERR_TOO_LARGE    input longer than CCB__JWT_MAX_LEN
 *   CCB_ERR_PARSE        not three (or two) dot-separated parts, bad
 *                        base64url, bad JSON, wrong claim type, no "kid"
 *   CCB_ERR_UNSUPPORTED  "alg" other than HS256/HS384/HS512
 *   CCB_ERR_CRYPTO       signature does not match
 *   CCB_ERR_AUTH         claim checks: expired, too old, no iss, no jti
 *
 * Included by: src/security (TOKEN method, tokens, token files),
 * test/security and test/fuzz. Not by the layers above.
 */
#ifndef CCB_SECURITY_JWT_H
#define CCB_SECURITY_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define CCB__JWT_MAX_LEN 16384 /* whole token text, bytes */
#define CCB__JWT_SIG_MAX 64    /* HS512 */

/* Accept "header.payload" (and "header.payload.") without a signature: the
 * server side of TOKEN only ever sees token_hp (T1). */
#define CCB__JWT_NO_SIGNATURE 0x1u

typedef enum ccb__jwt_alg {
	CCB__JWT_HS256 = 1,
	CCB__JWT_HS384 = 2,
	CCB__JWT_HS512 = 3,
} ccb__jwt_alg;

typedef struct ccb__jwt {
	char *token_hp;       /* "<header_b64>.<payload_b64>" as received */
	size_t hp_len;
	char *header_json;    /* decoded JSON texts (NUL-terminated) */
	char *payload_json;
	ccb__jwt_alg alg;
	char *kid;            /* never NULL nor empty after a successful parse */
	char *iss, *sub, *jti, *scope; /* NULL when absent */
	int64_t iat, exp;
	bool has_iat, has_exp;
	uint8_t sig[CCB__JWT_SIG_MAX];
	size_t sig_len;       /* 0: no signature (CCB__JWT_NO_SIGNATURE) */
} ccb__jwt;

/* Parse text[0..len) into *out (which the caller clears with
 * ccb__jwt_clear(), also after a failure). */
ccb_err ccb__jwt_parse(const char *text, size_t len, unsigned flags, ccb__jwt *out,
		       ccb_error *err);
void ccb__jwt_clear(ccb__jwt *j);

/* Client identity of a token: `sub`, or `jti` for a subject-less capability
 * token (checkToken, condor_auth_passwd.cpp:206-251); NULL if neither. */
const char *ccb__jwt_identity(const ccb__jwt *j);

/* Digest size of an algorithm (32, 48, 64). */
size_t ccb__jwt_sig_len(ccb__jwt_alg alg);

/* HMAC-SHA2 of `alg` over data[0..n) keyed with key[0..key_len) into sig
 * (ccb__jwt_sig_len(alg) bytes). */
ccb_err ccb__jwt_sign(ccb__jwt_alg alg, const uint8_t *key, size_t key_len, const void *data,
		      size_t n, uint8_t *sig, ccb_error *err);

/* Recompute the signature of j->token_hp under jwt_key (32 bytes) and compare
 * in constant time with the token's. */
ccb_err ccb__jwt_verify(const ccb__jwt *j, const uint8_t jwt_key[32], ccb_error *err);

/*
 * The server's claim checks (analyze_token / setup_shared_keys,
 * condor_auth_passwd.cpp:1085-1099): `iss` and `jti` non-empty; `exp`, if
 * present, not passed (now - exp > 0 is expired, as HTCondor counts it);
 * `iat` not older than max_age seconds when max_age > 0 (SEC_TOKEN_MAX_AGE:
 * unset, -1 and 0 all disable the check there).
 */
ccb_err ccb__jwt_check_claims(const ccb__jwt *j, int64_t now, int64_t max_age, ccb_error *err);

/* base64url without padding: append the encoding of in[0..n) to out. */
bool ccb__b64url_encode(const void *in, size_t n, ccb_buf *out);
/* Strict decode (alphabet A-Z a-z 0-9 - _, no padding, zero trailing bits)
 * into out, which has room for n * 3 / 4 bytes; false on any bad input. */
bool ccb__b64url_decode(const char *in, size_t n, uint8_t *out, size_t *out_len);

#endif

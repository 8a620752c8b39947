/*
 * libccb — IDTOKENS: mint and verify HTCondor tokens.
 *
 * An IDTOKEN is an HMAC-signed JWT, "header.payload.signature" in base64url
 * without padding, as made by condor_token_create. The signing key is a file
 * in the password directory (SEC_PASSWORD_DIRECTORY/<kid>), or for the key
 * named "POOL" the pool signing key file (SEC_TOKEN_POOL_SIGNING_KEY_FILE,
 * default <password_dir>/POOL); the JWT key is derived from it with HKDF.
 * Minted tokens are byte-for-byte what HTCondor 25 produces for the same
 * claims: header {"alg":"HS256","kid":"<kid>"}, payload keys in alphabetical
 * order, no whitespace, '/' written as "\/".
 *
 * Key files must, as in HTCondor, be owned by the effective user and not be
 * accessible by group or others (mode 0600 or stricter), unless the params
 * say `insecure_key_file`. Key material is wiped from memory after use and
 * never logged.
 *
 * Errors: CCB_ERR_INVALID_ARG (bad params), CCB_ERR_CONFIG (no key location,
 * bad key file), CCB_ERR_NOT_FOUND (no key file for the kid),
 * CCB_ERR_NOT_AUTHORIZED (key file owner/mode), CCB_ERR_TOO_LARGE (token
 * over 16 KiB), CCB_ERR_PARSE (malformed token, missing kid),
 * CCB_ERR_UNSUPPORTED (alg not HS256/HS384/HS512), CCB_ERR_CRYPTO (signature
 * mismatch: altered token or wrong key), CCB_ERR_AUTH (expired, older than
 * max_age, no iss or jti), CCB_ERR_NOT_AUTHORIZED (issuer is not the trust
 * domain). The ccb_error detail says which.
 *
 * Thread safety: all functions are reentrant; they share no state.
 *
 * Memory (as in every libccb header, see ccb/error.h): a returned `const char *`
 * is borrowed, valid until its owner is freed or changed; a returned `char *`
 * or `char **out` is the caller's, released with ccb_free().
 */
#ifndef CCB_TOKEN_H
#define CCB_TOKEN_H

#include "ccb/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Where the signing keys live (the two HTCondor settings). */
typedef struct ccb_token_keys {
	const char *password_dir;  /**< SEC_PASSWORD_DIRECTORY; key <kid> is <dir>/<kid> */
	const char *pool_key_file; /**< SEC_TOKEN_POOL_SIGNING_KEY_FILE; NULL: <dir>/POOL */
	bool insecure_key_file;    /**< skip the owner and mode 0600 checks */
} ccb_token_keys;

/** What to mint (condor_token_create's options). Borrowed, not kept. */
typedef struct ccb_token_config {
	ccb_token_keys keys;
	const char *kid;            /**< signing key name; NULL: "POOL" */
	const char *issuer;         /**< "iss", the TRUST_DOMAIN; required, no ", \t" */
	const char *subject;        /**< "sub", e.g. "alice@example.net"; required */
	int64_t lifetime;           /**< seconds until "exp"; 0: no "exp" */
	const char *const *authz;   /**< NULL-terminated authorization levels
				     *   ("READ", "WRITE"), each written as
				     *   "condor:/<level>" in "scope"; NULL: no scope */
	int64_t iat;                /**< "iat"; 0: now */
	const char *jti;            /**< "jti"; NULL: 16 random bytes as 32 hex */
} ccb_token_config;

/**
 * Mint a token. On success *out_token is a NUL-terminated string the caller
 * releases with ccb_free(); on failure it is NULL.
 */
CCB_API ccb_err ccb_token_create(const ccb_token_config *p, char **out_token, ccb_error *err);

/** How to verify. */
typedef struct ccb_token_verify_config {
	ccb_token_keys keys;
	const char *trust_domain; /**< if set, "iss" must equal it */
	int64_t max_age;          /**< SEC_TOKEN_MAX_AGE: reject if now - iat > max_age;
				   *   <= 0: no limit (HTCondor's default) */
	int64_t now;              /**< the time to verify at (Unix seconds); 0: now */
} ccb_token_verify_config;

/** The claims of a verified token. All strings are owned by the struct. */
typedef struct ccb_token_info {
	char *kid;      /**< signing key name (header) */
	char *issuer;   /**< "iss" */
	char *subject;  /**< "sub"; NULL for a subject-less token */
	char *jti;      /**< "jti" */
	char *scope;    /**< "scope" as written; NULL if absent */
	char **scopes;  /**< scope split at spaces ("condor:/READ", ...) */
	size_t n_scopes;
	int64_t iat, exp;
	bool has_iat, has_exp;
} ccb_token_info;

/**
 * Verify a token (surrounding whitespace ignored): parse strictly, load the
 * key named by its kid, check the HMAC signature over the text as received,
 * then the claims (exp, max_age, iss, jti, trust domain). `info` may be NULL;
 * otherwise it is filled on success and zeroed on failure, and the caller
 * releases it with ccb_token_info_clear().
 */
CCB_API ccb_err ccb_token_verify(const char *token, const ccb_token_verify_config *p,
			 ccb_token_info *info, ccb_error *err);

/** Free what ccb_token_verify() put in `info` and zero it. NULL is fine. */
CCB_API void ccb_token_info_clear(ccb_token_info *info);

#ifdef __cplusplus
}
#endif
#endif

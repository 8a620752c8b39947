/*
 * IDTOKENS (TOKEN method) key schedule: the AKEP2 keys K and K' derived from
 * a token's signature, the two MACs hkt and hk exchanged in T2/T3, the
 * session key W, and the server-name rule for `b`
 * (security-handshake.md §7.4; H:src/condor_io/condor_auth_passwd.cpp).
 * Pure functions of their inputs; safe from any thread. Internal.
 *
 * Every secret output is the caller's to wipe (OPENSSL_cleanse).
 *
 * Included by: src/security (TOKEN method, signing keys), test/security
 * and test/fuzz. Not by the layers above.
 */
#ifndef CCB_SECURITY_TOKEN_CRYPTO_H
#define CCB_SECURITY_TOKEN_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define CCB__TOKEN_NONCE_LEN 256 /* ra, rb (AUTH_PW_KEY_LEN) */
#define CCB__TOKEN_SEED_LEN 256  /* SEED_KA, SEED_KB */
#define CCB__TOKEN_KEY_LEN 32    /* K, K', W, jwt_key */
#define CCB__TOKEN_MAC_LEN 20    /* hkt, hk: HMAC-SHA1 */
#define CCB__TOKEN_NAME_MAX 1023 /* a and b: read into 1024-byte buffers */

/* The fixed 256-byte seeds (setup_seed, condor_auth_passwd.cpp:1205-1721). */
extern const uint8_t ccb__token_seed_ka[CCB__TOKEN_SEED_LEN];
extern const uint8_t ccb__token_seed_kb[CCB__TOKEN_SEED_LEN];

/* HKDF-SHA256 (RFC 5869, extract and expand) into out[out_len]. */
ccb_err ccb__token_hkdf(const uint8_t *ikm, size_t ikm_len, const void *salt, size_t salt_len,
			const void *info, size_t info_len, uint8_t *out, size_t out_len,
			ccb_error *err);

/*
 * K  = HKDF(IKM = sig, salt = SEED_KA ‖ token_hp, info = "master ka", 32)
 * K' = HKDF(IKM = sig, salt = SEED_KB ‖ token_hp, info = "master kb", 32)
 * `sig` is the raw JWT signature (32, 48 or 64 bytes), `hp` the token's
 * "<header_b64>.<payload_b64>" text exactly as sent in T1.
 */
ccb_err ccb__token_derive_keys(const uint8_t *sig, size_t sig_len, const char *hp, size_t hp_len,
			       uint8_t k[CCB__TOKEN_KEY_LEN], uint8_t kp[CCB__TOKEN_KEY_LEN],
			       ccb_error *err);

/* hkt = HMAC-SHA1(K, a ‖ " " ‖ b ‖ 0x00 ‖ ra ‖ rb)   (calculate_hkt) */
ccb_err ccb__token_hkt(const uint8_t k[CCB__TOKEN_KEY_LEN], const char *a, const char *b,
		       const uint8_t ra[CCB__TOKEN_NONCE_LEN], const uint8_t rb[CCB__TOKEN_NONCE_LEN],
		       uint8_t out[CCB__TOKEN_MAC_LEN], ccb_error *err);

/* hk = HMAC-SHA1(K, a ‖ 0x00 ‖ rb)   (calculate_hk) */
ccb_err ccb__token_hk(const uint8_t k[CCB__TOKEN_KEY_LEN], const char *a,
		      const uint8_t rb[CCB__TOKEN_NONCE_LEN], uint8_t out[CCB__TOKEN_MAC_LEN],
		      ccb_error *err);

/* W = HKDF(IKM = rb, salt = "session key", info = "htcondor", 32)
 * (set_session_key; salt and info swapped relative to the other HKDFs). */
ccb_err ccb__token_session_key(const uint8_t rb[CCB__TOKEN_NONCE_LEN],
			       uint8_t w[CCB__TOKEN_KEY_LEN], ccb_error *err);

/*
 * Whether a peer's version ("$CondorVersion: 25.14.0 ... $" or bare
 * "25.14.0") is at least maj.min.sub. NULL, empty or unparseable text counts
 * as "new": HTCondor's CondorVersionInfo falls back to its own version when it
 * has none, and every peer libccb targets is >= 23.9.
 */
bool ccb__token_version_at_least(const char *version, int maj, int min, int sub);

/*
 * The server's name `b` (fetchLogin, condor_auth_passwd.cpp:615-773):
 * "condor@password" if the client's RemoteVersion is >= 23.9.0, else
 * "condor_pool@<uid_domain>" (uid_domain then required). Written to out.
 */
ccb_err ccb__token_server_name(const char *remote_version, const char *uid_domain, char *out,
			       size_t out_size, ccb_error *err);

#endif

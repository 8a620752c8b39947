/*
 * The session key of a new DC_AUTHENTICATE session: an ephemeral ECDH
 * exchange on P-256 followed by HKDF-SHA256 (security-handshake.md §8;
 * H:src/condor_io/condor_secman.cpp:2951-3125, H:src/condor_io/condor_crypt.cpp:204-219).
 * Internal.
 *
 * A key object is immutable after creation and may be used from several
 * threads. Secrets (private scalar, shared secret, derived key) are wiped
 * before their memory is released and never logged.
 *
 * Included by: src/security (ecdh.c, handshake_client.c,
 * handshake_server.c), test/security and test/bench. Not by the layers above.
 */
#ifndef CCB_SECURITY_ECDH_H
#define CCB_SECURITY_ECDH_H

#include <stddef.h>
#include <stdint.h>

#include "ccb/error.h"

/* Uncompressed point 04 || X || Y, and its padded base64 form (+ NUL). */
#define CCB_ECDH_POINT_LEN 65
#define CCB_ECDH_PUB_B64_LEN 88
#define CCB_ECDH_PUB_B64_SIZE (CCB_ECDH_PUB_B64_LEN + 1)
/* Raw ECDH output: the X coordinate of the shared point. */
#define CCB_ECDH_SECRET_LEN 32
#define CCB_ECDH_PRIV_LEN 32

/* Session key lengths by crypto method (H:src/condor_includes/condor_secman.h:32-35). */
#define CCB_SESSION_KEY_LEN_AES 32
#define CCB_SESSION_KEY_LEN_OLD 24

typedef struct ccb__ecdh ccb__ecdh;

/* A fresh ephemeral P-256 key pair. Errors: CCB_ERR_CRYPTO, CCB_ERR_NOMEM. */
ccb_err ccb__ecdh_generate(ccb__ecdh **out, ccb_error *err);

/* Test vectors only: the key pair of a fixed big-endian private scalar
 * (must be in [1, n-1]). Errors: CCB_ERR_INVALID_ARG, CCB_ERR_CRYPTO. */
ccb_err ccb__ecdh_from_private(const uint8_t priv[CCB_ECDH_PRIV_LEN], ccb__ecdh **out,
			       ccb_error *err);

/* NULL is allowed. */
void ccb__ecdh_free(ccb__ecdh *k);

/* Our public point, uncompressed (65 bytes). */
ccb_err ccb__ecdh_public_raw(const ccb__ecdh *k, uint8_t out[CCB_ECDH_POINT_LEN], ccb_error *err);

/* Our public point as the ECDHPublicKey attribute value: standard base64
 * with padding, no newlines, 88 characters + NUL. */
ccb_err ccb__ecdh_public_b64(const ccb__ecdh *k, char out[CCB_ECDH_PUB_B64_SIZE], ccb_error *err);

/*
 * Decode a peer's ECDHPublicKey and check it: exactly 88 base64 characters
 * with one '=' of padding, 65 bytes starting 0x04, a point on P-256.
 * Errors: CCB_ERR_PROTOCOL with a detail naming which check failed.
 */
ccb_err ccb__ecdh_decode_peer(const char *b64, uint8_t out[CCB_ECDH_POINT_LEN], ccb_error *err);

/* The raw shared secret with a peer's (base64) public key. */
ccb_err ccb__ecdh_shared_secret(const ccb__ecdh *k, const char *peer_b64,
				uint8_t secret[CCB_ECDH_SECRET_LEN], ccb_error *err);

/* HKDF-SHA256(IKM = ikm, salt = "htcondor", info = "keygen", L = key_len). */
ccb_err ccb__ecdh_hkdf(const uint8_t *ikm, size_t ikm_len, uint8_t *key, size_t key_len,
		       ccb_error *err);

/*
 * The session key: shared secret with the peer, then HKDF. key_len is
 * CCB_SESSION_KEY_LEN_AES for AES, CCB_SESSION_KEY_LEN_OLD otherwise.
 */
ccb_err ccb__ecdh_session_key(const ccb__ecdh *k, const char *peer_b64, uint8_t *key,
			      size_t key_len, ccb_error *err);

#endif

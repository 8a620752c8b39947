/*
 * CEDAR's legacy ciphers, BLOWFISH and 3DES (cedar-stream.md §7), and the
 * legacy integrity "MD" header (§8). 64-bit CFB with an all-zero IV and a
 * 24-byte key; the caller restarts the cipher at every end of message.
 *
 * BLOWFISH lives in OpenSSL 3's legacy provider. It is loaded once into a
 * library context of our own (with the default provider beside it), so the
 * process's default OpenSSL context is left exactly as the application set
 * it up.
 */
#ifndef CCB_CEDAR_LEGACY_H
#define CCB_CEDAR_LEGACY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* Legacy session key length (SEC_SESSION_KEY_LENGTH_OLD, condor_secman.h). */
#define CCB_LEGACY_KEY_LEN 24
/* MD5 digest in front of each packet body in MD mode (MAC_SIZE, condor_md.h). */
#define CCB_LEGACY_MAC_LEN 16

/* Method numbers as the wire Protocol enum (CCB_SEC_CRYPTO_BLOWFISH / _3DES). */
enum { CCB_LEGACY_BLOWFISH = 1, CCB_LEGACY_3DES = 2 };

/* Whether this process can run the cipher; when not, `why` (may be NULL)
 * says why, e.g. "BLOWFISH needs OpenSSL's legacy provider
 * (ossl-modules/legacy.so), not available: ...". Thread-safe. */
bool ccb_legacy_available(int method, char *why, size_t why_size);

typedef struct ccb_legacy {
	int method;
	uint8_t key[CCB_LEGACY_KEY_LEN];
	void *enc; /* EVP_CIPHER_CTX */
	void *dec;
} ccb_legacy;

/* Set up both directions with `key` (CCB_LEGACY_KEY_LEN bytes). */
ccb_err ccb_legacy_init(ccb_legacy *l, int method, const uint8_t *key, ccb_error *err);
/* Restart both directions from the zero IV (Condor_Crypto_State::reset). */
ccb_err ccb_legacy_reset(ccb_legacy *l, ccb_error *err);
/* Transform n bytes in place, continuing the direction's CFB stream. */
ccb_err ccb_legacy_encrypt(ccb_legacy *l, uint8_t *p, size_t n, ccb_error *err);
ccb_err ccb_legacy_decrypt(ccb_legacy *l, uint8_t *p, size_t n, ccb_error *err);
/* Free the contexts and wipe the key. Safe on a zeroed struct. */
void ccb_legacy_wipe(ccb_legacy *l);

/* MD5(key ‖ body): the MD-mode packet MAC (Condor_MD_MAC, condor_md.cpp). */
void ccb_legacy_mac(const uint8_t *key, size_t key_len, const uint8_t *body, size_t n,
		    uint8_t out[CCB_LEGACY_MAC_LEN]);

#endif

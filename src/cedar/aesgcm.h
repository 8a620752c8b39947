/*
 * AES-256-GCM packet crypto as HTCondor's Condor_Crypt_AESGCM does it
 * (cedar-stream.md §6): 16-byte IV, per-direction base IV and packet counter
 * added into the IV's first 4 bytes, the base IV sent in front of a
 * direction's first packet, 16-byte tag at the end.
 */
#ifndef CCB_CEDAR_AESGCM_H
#define CCB_CEDAR_AESGCM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define CCB_GCM_IV_LEN 16
#define CCB_GCM_TAG_LEN 16

typedef struct ccb_aesgcm {
	uint8_t key[32];
	uint8_t send_base[CCB_GCM_IV_LEN];
	uint8_t recv_base[CCB_GCM_IV_LEN];
	uint32_t send_count;
	uint32_t recv_count;
} ccb_aesgcm;

/* Fresh state; `send_iv` NULL means a random base IV (tests pass a fixed one). */
ccb_err ccb_aesgcm_init(ccb_aesgcm *g, const uint8_t key[32], const uint8_t *send_iv,
			ccb_error *err);
void ccb_aesgcm_wipe(ccb_aesgcm *g);

/* Body length on the wire for n plaintext bytes of the next packet sent. */
size_t ccb_aesgcm_sealed_len(const ccb_aesgcm *g, size_t n);

/* Encrypt the next outbound packet. `aad` is the full AAD (69 or 5 bytes).
 * `out` must hold ccb_aesgcm_sealed_len(g, n) bytes. */
ccb_err ccb_aesgcm_seal(ccb_aesgcm *g, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
			size_t n, uint8_t *out, ccb_error *err);

/* Decrypt the next inbound packet body in place-compatible fashion: `out`
 * receives the plaintext (*out_len bytes, at most body_len). */
ccb_err ccb_aesgcm_open(ccb_aesgcm *g, const uint8_t *aad, size_t aad_len, const uint8_t *body,
			size_t body_len, uint8_t *out, size_t *out_len, ccb_error *err);

#endif

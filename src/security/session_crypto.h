/*
 * Session crypto helpers of the DC_AUTHENTICATE client and server. Internal.
 *
 * Included by: src/security (handshake_client.c, handshake_server.c,
 * session_crypto.c) and test/security. Not by the layers above.
 */
#ifndef CCB_SECURITY_SESSION_CRYPTO_H
#define CCB_SECURITY_SESSION_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/classad.h"
#include "ccb/security.h"
#include "ccb/stream.h"

/* HTCondor 25's SEC_DEFAULT_CRYPTO_METHODS (param_info.in). */
#define CCB_SEC_DEFAULT_CRYPTO "AES,BLOWFISH,3DES"

/* The crypto methods of `list` this process can run, canonical names
 * (AES, BLOWFISH, 3DES) in the configured order, into out ("" if none);
 * BLOWFISH is left out, with a debug log line saying why, when OpenSSL's
 * legacy provider is missing. */
void ccb__sec_usable_crypto(const char *list, char *out, size_t size);

/* `configured` if set, else this host's full name (HTCondor's
 * $(FULL_HOSTNAME) default for UID_DOMAIN). Thread-safe. */
const char *ccb__sec_uid_domain(const char *configured);

/* Install a session key as HTCondor does once a session is settled: AES
 * always encrypts; BLOWFISH/3DES encrypt with `encrypt`, add the MD5
 * header with `integrity`, and otherwise only encipher secrets; no key or
 * no method is plaintext, refused (CCB_ERR_UNSUPPORTED) if encryption or integrity
 * was negotiated. */
ccb_err ccb__sec_install_key(ccb_stream *s, const uint8_t *key, size_t key_len, int crypto,
			     bool encrypt, bool integrity, ccb_error *err);

/* Fill info->encrypted, ->integrity and ->crypto from what `s` does. */
void ccb__sec_crypto_info(const ccb_stream *s, ccb_sec_info *info);

/* Encryption / Integrity of a cached session's policy ad: YES, or absent
 * (sessions cached before these were kept were AES: both on). */
bool ccb__sec_policy_yes(const ccb_classad *pol, const char *attr);

#endif

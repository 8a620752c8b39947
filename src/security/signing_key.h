/*
 * IDTOKENS signing keys (security-handshake.md §7.4 "Signing key -> JWT key";
 * H:src/condor_utils/store_cred.cpp:2622-2745 getTokenSigningKeyPath /
 * getTokenSigningKey, H:src/condor_utils/secure_file.cpp simple_scramble and
 * read_secure_file). Internal; no global state, thread-safe.
 *
 * File checks (CCB__SIGNING_KEY_CHECK_PERMS, what read_secure_file enforces):
 * the file must be owned by the effective uid and have no group/other
 * permission bits (mode & 077 == 0). Like HTCondor (safe_fopen_wrapper_follow)
 * a symlink to such a file is followed; the checks apply to the target, via
 * fstat on the opened descriptor, so there is no check/open race. Always:
 * regular file, 1..CCB__SIGNING_KEY_MAX bytes, unchanged (mtime/ctime) while
 * read. Key names coming from a token's "kid" must not contain '/' nor be
 * "." or ".." (HTCondor does not check; a kid is peer input and names a file).
 *
 * Included by: src/security (TOKEN method, token.c) and test/security.
 * Not by the layers above.
 */
#ifndef CCB_SECURITY_SIGNING_KEY_H
#define CCB_SECURITY_SIGNING_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define CCB__SIGNING_KEY_MAX 65536
#define CCB__SIGNING_KEY_CHECK_PERMS 0x1u

/*
 * Path of the key named kid (NULL or "" means "POOL", as in
 * getTokenSigningKeyPath): POOL -> pool_key_file if set
 * (SEC_TOKEN_POOL_SIGNING_KEY_FILE), else <password_dir>/POOL; any other
 * name -> <password_dir>/<kid> (SEC_PASSWORD_DIRECTORY). *is_pool tells
 * whether the doubling rule applies. Caller frees *path.
 * CCB_ERR_CONFIG when the needed setting is missing, CCB_ERR_INVALID_ARG for
 * an unsafe kid.
 */
ccb_err ccb__signing_key_path(const char *kid, const char *password_dir,
			      const char *pool_key_file, char **path, bool *is_pool,
			      ccb_error *err);

/* XOR with DE AD BE EF repeated (simple_scramble; its own inverse). */
void ccb__signing_key_scramble(uint8_t *p, size_t n);

/*
 * Read a key file, unscramble, and for the POOL key concatenate the key with
 * itself. *key is malloc'd; the caller wipes (OPENSSL_cleanse) and frees it.
 * CCB_ERR_NOT_FOUND if absent, CCB_ERR_NOT_AUTHORIZED for bad owner/mode,
 * CCB_ERR_IO / CCB_ERR_CONFIG otherwise.
 */
ccb_err ccb__signing_key_read(const char *path, bool is_pool, unsigned flags, uint8_t **key,
			      size_t *len, ccb_error *err);

/* jwt_key = HKDF-SHA256(IKM = key, salt = "htcondor", info = "master jwt", 32). */
ccb_err ccb__signing_key_jwt_key(const uint8_t *key, size_t len, uint8_t jwt_key[32],
				 ccb_error *err);

/* Path + read + derive in one go; the raw key never leaves this call. */
ccb_err ccb__signing_key_load(const char *kid, const char *password_dir,
			      const char *pool_key_file, unsigned flags, uint8_t jwt_key[32],
			      ccb_error *err);

#endif

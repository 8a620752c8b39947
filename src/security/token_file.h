/*
 * Where a TOKEN client finds its token (security-handshake.md §7.4 "Token
 * format" and "Client token selection"; H:src/condor_io/condor_auth_passwd.cpp
 * checkToken/findToken/findTokens 206-400). Internal; thread-safe.
 *
 * Token file: one token per line; lines are trimmed of surrounding
 * whitespace (so CRLF files work), blank lines and lines starting with '#'
 * are skipped, lines that do not parse as a JWT (or are over
 * CCB__JWT_MAX_LEN) are skipped as HTCondor ignores them.
 * Token directory: regular files only (subdirectories skipped), names that
 * HTCondor's default LOCAL_CONFIG_DIR_EXCLUDE_REGEXP excludes are skipped
 * (".*", "*~", "#*", "*.rpmsave", "*.rpmnew"); `<subsys>_auto_generated_token`
 * (case-insensitive) is tried first, then all files in byte order of their
 * names; the first usable token wins. Unreadable or (with CHECK_PERMS)
 * insecure files are skipped, like findToken's read_secure_file failures.
 *
 * Included by: src/security (TOKEN client), test/security and test/fuzz.
 * Not by the layers above.
 */
#ifndef CCB_SECURITY_TOKEN_FILE_H
#define CCB_SECURITY_TOKEN_FILE_H

#include <stddef.h>

#include "security/jwt.h"
#include "util/util.h"

#define CCB__TOKEN_FILE_MAX (1024 * 1024)
/* read_secure_file checks: owner is the effective uid, mode & 077 == 0. */
#define CCB__TOKEN_FILE_CHECK_PERMS 0x1u

/* What the server told us in its DC_AUTHENTICATE response. */
typedef struct ccb__token_filter {
	const char *trust_domain; /* TrustDomain; NULL/"" accepts any issuer */
	const char *issuer_keys;  /* IssuerKeys ("POOL, k2"; comma/space list);
				   * NULL/"" accepts any kid */
} ccb__token_filter;

/* Whether a parsed token may be offered: it has an iss and an identity (sub
 * or jti), its kid is in issuer_keys (if any) and its iss equals
 * trust_domain (if any). */
bool ccb__token_usable(const ccb__jwt *j, const ccb__token_filter *f);

/* First usable token among the lines of data[0..len) into *out (clear it
 * with ccb__jwt_clear()). CCB_ERR_NOT_FOUND if none. */
ccb_err ccb__token_pick_text(const char *data, size_t len, const ccb__token_filter *f,
			     ccb__jwt *out, ccb_error *err);

/* Same for a token file (at most CCB__TOKEN_FILE_MAX bytes). */
ccb_err ccb__token_pick_file(const char *path, unsigned flags, const ccb__token_filter *f,
			     ccb__jwt *out, ccb_error *err);

/* The files of a token directory in search order (see above); subsys may be
 * NULL. Caller frees each entry and the array. */
ccb_err ccb__token_dir_files(const char *dir, const char *subsys, char ***paths, size_t *n,
			     ccb_error *err);

/* First usable token in a token directory. *from (optional) receives the
 * file it came from (caller frees). CCB_ERR_NOT_FOUND if none. */
ccb_err ccb__token_pick_dir(const char *dir, const char *subsys, unsigned flags,
			    const ccb__token_filter *f, ccb__jwt *out, char **from,
			    ccb_error *err);

#endif

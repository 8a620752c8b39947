/*
 * RemoteVersion (security-handshake.md §4.1): the $CondorVersion string
 * libccb sends, the parser for a peer's, and the DC_AUTHENTICATE command
 * numbers.
 *
 * Included by: src/security, and the layer above (src/ccb): this header
 * and the public ccb/security.h are all the ccb layer needs from the
 * security layer (it reads the peer's version from ccb_sec_info). Today
 * src/ccb includes security/policy.h for this; that one is internal to
 * the security layer (and its tests).
 */
#ifndef CCB_SECURITY_REMOTE_VERSION_H
#define CCB_SECURITY_REMOTE_VERSION_H

#include "ccb/error.h"
#include "ccb/version.h"

/* Commands that carry the real command in AuthCommand (§1); the same
 * numbers as CCB_CMD_DC_AUTHENTICATE / CCB_CMD_DC_SEC_QUERY in ccb/commands.h. */
#define CCB_DC_AUTHENTICATE 60010
#define CCB_DC_SEC_QUERY 60040

/* What libccb claims to be in RemoteVersion: >= 25.13.0 (streaming CCB),
 * >= 23.9.0 (TOKEN naming) and >= 9.9.0 (private attributes), §4.1. */
#define CCB_SEC_CONDOR_VERSION "25.14.0"
#define CCB_SEC_VERSION_DATE "2026-11-24"
#define CCB_SEC_LIBCCB_VERSION CCB_VERSION_STRING /* ccb/version.h */

/* "$CondorVersion: 25.14.0 2026-11-24 libccb <CCB_VERSION_STRING> $" (static). */
const char *ccb__sec_version_string(void);

/*
 * Parse a $CondorVersion string as CondorVersionInfo does
 * (H:src/condor_utils/condor_ver_info.cpp:419-466): "$CondorVersion: ",
 * X.Y.Z (X >= 6, Y and Z <= 99), a space, more text, ending in " $".
 * *num = CCB_VERSION_NUM(X, Y, Z). Errors: CCB_ERR_PARSE.
 */
ccb_err ccb__sec_version_parse(const char *s, int *major, int *minor, int *patch,
			       unsigned *num, ccb_error *err);

#endif

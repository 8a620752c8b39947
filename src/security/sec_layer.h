/*
 * What the security layer offers the layers above it (src/ccb) beyond the
 * public include/ccb/security.h. Not installed.
 *
 * Include as "security/sec_layer.h": src/ccb and the tests. The rest of
 * src/security's headers (policy.h, auth.h, session_*.h, ...) are the
 * layer's own; nothing above it includes them.
 */
#ifndef CCB_SECURITY_SEC_LAYER_H
#define CCB_SECURITY_SEC_LAYER_H

#include "ccb/error.h"

/*
 * Parse a peer's $CondorVersion string (a handshake's RemoteVersion) into
 * its numbers; *num = CCB_VERSION_NUM(X, Y, Z). major, minor, patch and
 * err may be NULL. Errors: CCB_ERR_PARSE. Defined in policy.c (see policy.h for the
 * accepted form).
 */
ccb_err ccb__sec_version_parse(const char *s, int *major, int *minor, int *patch,
			       unsigned *num, ccb_error *err);

#endif

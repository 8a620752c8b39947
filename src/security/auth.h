/*
 * The authentication sub-protocol of DC_AUTHENTICATE (security-handshake.md
 * §6): the method negotiation loop, the per-method exchanges, and the hasKey
 * message that follows a successful method. Internal.
 */
#ifndef CCB_SECURITY_AUTH_H
#define CCB_SECURITY_AUTH_H

#include <stdbool.h>

#include "ccb/stream.h"
#include "util/util.h"

/* Method bits on the wire (H:src/condor_includes/condor_auth.h:30-43). */
enum {
	CCB_AUTH_CLAIMTOBE = 2,
	CCB_AUTH_FS = 4,
	CCB_AUTH_FS_REMOTE = 8,
	CCB_AUTH_ANONYMOUS = 128,
	CCB_AUTH_SSL = 256,
	CCB_AUTH_TOKEN = 2048,
	CCB_AUTH_SCITOKENS = 4096,
};

#define CCB_AUTH_NAME_MAX 256

/* What a method needs from the configuration. */
typedef struct ccb__auth_params {
	const char *uid_domain;      /* domain for identities without one (UID_DOMAIN) */
	const char *claimtobe_user;  /* SEC_CLAIMTOBE_USER; NULL: the effective user */
	bool claimtobe_no_domain;    /* SEC_CLAIMTOBE_INCLUDE_DOMAIN = false */
} ccb__auth_params;

typedef struct ccb__auth_result {
	int method;                       /* bit of the method that succeeded */
	char method_name[16];
	char peer_user[CCB_AUTH_NAME_MAX]; /* server: the client's identity */
} ccb__auth_result;

/* Map a method name (any case, TOKEN aliases) to its bit; 0 if unknown. */
int ccb__auth_method_bit(const char *name);
/* Canonical name of a bit ("TOKEN"), NULL if unknown. */
const char *ccb__auth_method_name(int bit);
/* Whether libccb implements the client (or server) side of a method. */
bool ccb__auth_method_supported(int bit, bool server);

/*
 * Run the client side: offer the methods of `methods` (a comma/space list,
 * server-reconciled: AuthMethodsList of the RESPONSE), retrying with the
 * rest after a method fails, then read hasKey. CCB_ERR_AUTH when no method
 * succeeds.
 */
ccb_err ccb__auth_client(ccb_stream *s, const char *methods, const ccb__auth_params *p,
			 ccb__auth_result *out, ccb_error *err);

/*
 * Run the server side with `methods` as its preference list; after success
 * send hasKey = 0 (the key comes from ECDH). CCB_ERR_AUTH when the client
 * gives up or no offered method is acceptable.
 */
ccb_err ccb__auth_server(ccb_stream *s, const char *methods, const ccb__auth_params *p,
			 ccb__auth_result *out, ccb_error *err);

#endif

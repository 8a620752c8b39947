/*
 * Pieces shared by the two sides of DC_AUTHENTICATE (handshake_client.c,
 * handshake_server.c, handshake_common.c, authz.c): message helpers, the
 * method and level defaults, the session store behind the public handle.
 *
 * Included by: src/security/handshake_*.c and authz.c only. Nothing
 * outside src/security includes it.
 */
#ifndef CCB_SECURITY_HANDSHAKE_INTERNAL_H
#define CCB_SECURITY_HANDSHAKE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "ccb/classad.h"
#include "ccb/security.h"
#include "ccb/stream.h"
#include "security/policy.h"
#include "security/session_cache.h"

/* SEC_DEFAULT_AUTHENTICATION_METHODS as far as libccb implements it:
 * HTCondor 25's default is FS,IDTOKENS(,KERBEROS,SCITOKENS),SSL
 * (H:src/condor_utils/param_info.cpp SEC_STD_AUTH_METHOD_NAMES). */
#define CCB__SEC_DEFAULT_METHODS "FS,TOKEN,SSL"

/* The public session store: a cache (session_cache.h). */
struct ccb_sec_sessions {
	ccb__sess_cache *cache;
};

/* A public level, or `dflt` for CCB_SEC_LEVEL_DEFAULT. */
ccb__sec_level ccb__sec_to_level(ccb_sec_level l, ccb__sec_level dflt);

/* The methods of `list` this build implements for one side, as a comma
 * list into out ("" when none fit); `no_ssl` drops SSL (a server without
 * a host certificate, §7.5). Each dropped name is logged at DEBUG. */
void ccb__sec_usable_methods(const char *list, bool server, bool no_ssl, char *out, size_t size);

/* The stream's error as *err, prefixed with `step`. */
ccb_err ccb__sec_stream_fail(ccb_stream *s, ccb_error *err, const char *step);

/* Read one handshake ad (getPODClassAd rules) and end the message;
 * *ad is NULL on error. */
ccb_err ccb__sec_get_ad(ccb_stream *s, ccb_classad **ad, ccb_error *err, const char *step);

/* Send an ad and end the message. */
ccb_err ccb__sec_put_ad(ccb_stream *s, const ccb_classad *ad, ccb_error *err, const char *step);

/* A string attribute into out ("" when absent), truncated to size. */
void ccb__sec_copy_attr(const ccb_classad *ad, const char *name, char *out, size_t size);

/* A fresh 33-byte nonce in base64 (44 characters, §9.2). */
ccb_err ccb__sec_make_nonce(char out[48], ccb_error *err);

/* A token's condor:/<PERM> scopes authorize only those levels
 * (LimitAuthorization, §7.4 and §5 step 9); no condor:/ scope at all
 * limits nothing. */
bool ccb__sec_scopes_allow(const char *scopes, ccb_perm perm);

#endif

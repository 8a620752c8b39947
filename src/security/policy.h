/*
 * Security policy negotiation of DC_AUTHENTICATE (security-handshake.md §1,
 * §2, §4): requirement levels and decisions, local policy construction,
 * method lists, the REQUEST / RESPONSE / POST-AUTH ads (the
 * $CondorVersion string: remote_version.h). Internal; independent of configuration parsing
 * (the caller fills a ccb__sec_config) and of the stream (ads in, ads out).
 *
 * Truth: H:src/condor_io/condor_secman.cpp and
 * H:src/condor_daemon_core.V6/daemon_command.cpp at 7491a145.
 *
 * Included by: src/security, test/security and test/bench. The layers
 * above need only security/remote_version.h (which this header includes)
 * and the public ccb/security.h.
 */
#ifndef CCB_SECURITY_POLICY_H
#define CCB_SECURITY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/classad.h"
#include "ccb/error.h"
#include "security/remote_version.h"


/* ---- levels and decisions (§2) ------------------------------------------ */

/* Ordered as SecMan::sec_req so that "raise" is a comparison
 * (H:src/condor_includes/condor_secman.h). UNDEFINED must stay 0. */
typedef enum ccb__sec_level {
	CCB_SEC_UNDEFINED = 0,
	CCB_SEC_INVALID,
	CCB_SEC_NEVER,
	CCB_SEC_OPTIONAL,
	CCB_SEC_PREFERRED,
	CCB_SEC_REQUIRED,
} ccb__sec_level;

typedef enum ccb__sec_action {
	CCB_SEC_ACT_UNDEFINED = 0, /* attribute absent or not a string */
	CCB_SEC_ACT_INVALID,
	CCB_SEC_ACT_FAIL,
	CCB_SEC_ACT_YES,
	CCB_SEC_ACT_NO,
} ccb__sec_action;

/* First letter, any case: R/Y/T, P, O, F/N; else (or NULL/"") INVALID. */
ccb__sec_level ccb__sec_level_parse(const char *s);
/* "REQUIRED", "PREFERRED", "OPTIONAL", "NEVER"; "UNDEFINED"/"INVALID" otherwise. */
const char *ccb__sec_level_name(ccb__sec_level l);
/* First letter, any case: Y, N, F; else (or NULL/"") INVALID. */
ccb__sec_action ccb__sec_action_parse(const char *s);
/* "YES", "NO", "FAIL"; "UNDEFINED"/"INVALID" otherwise. */
const char *ccb__sec_action_name(ccb__sec_action a);
/* An attribute of an ad as a decision: UNDEFINED when absent or not a string. */
ccb__sec_action ccb__sec_lookup_action(const ccb_classad *ad, const char *attr);

/* The reconcile table (§2.1); an INVALID client level gives FAIL. */
ccb__sec_action ccb__sec_reconcile_levels(ccb__sec_level client, ccb__sec_level server);

/* Raise *a to at least *b; if *a is NEVER, *b becomes NEVER unless it is
 * REQUIRED, which makes the policy invalid (returns false). */
bool ccb__sec_raise(ccb__sec_level *a, ccb__sec_level *b);

/* ---- method names and lists (§1, §2.1) --------------------------------- */

/* Crypto methods, numbered as the wire Protocol enum (CryptKey.h:26-31). */
enum {
	CCB_SEC_CRYPTO_NONE = 0,
	CCB_SEC_CRYPTO_BLOWFISH = 1,
	CCB_SEC_CRYPTO_3DES = 2,
	CCB_SEC_CRYPTO_AES = 3,
};

/* Authentication method name (any case, aliases) -> bit; 0 if unknown. */
int ccb__sec_method_bit(const char *name);
/* Bit -> canonical wire name ("TOKEN", "SCITOKENS"); NULL if unknown. */
const char *ccb__sec_method_name(int bit);
/* OR of the bits of every known name in a list. */
int ccb__sec_method_mask(const char *list);

/*
 * Iterate a method list split on commas, spaces, tabs and line breaks,
 * skipping empty items: returns the next item and its length, advancing
 * *p; NULL at the end.
 */
const char *ccb__sec_list_next(const char **p, size_t *len);

/*
 * A configured authentication method list as a C++ peer offers it
 * (H:condor_secman.cpp:3519-3605): TOKEN aliases become "TOKEN", SCITOKEN(S)
 * "SCITOKENS"; unknown names and the methods no libccb build has (NTSSPI,
 * GSI, KERBEROS, MUNGE) are dropped; others keep their spelling. malloc'd
 * ("" when nothing is left), NULL when out of memory.
 */
char *ccb__sec_canonical_auth_methods(const char *configured);

/* Keep only AES, BLOWFISH, 3DES, TRIPLEDES, compared case-sensitively as
 * C++ does (H:condor_secman.cpp:3497-3510). malloc'd, NULL on OOM. */
char *ccb__sec_filter_crypto_methods(const char *configured);

/*
 * Server-side reconciliation of a method list (H:condor_secman.cpp:3267-3305):
 * walk the server's list in order, append every client entry equal to it
 * (case-insensitive), in the client's spelling. TOKENS/IDTOKEN/IDTOKENS are
 * normalised to TOKEN on the server side only: a client spelling other
 * than TOKEN never matches. malloc'd, NULL on OOM.
 */
char *ccb__sec_reconcile_methods(const char *client, const char *server);

/* The first crypto method of a list libccb knows (any case), as
 * getCryptProtocolNameToEnum; CCB_SEC_CRYPTO_NONE if none. */
int ccb__sec_crypto_parse(const char *list);
/* "AES", "BLOWFISH", "3DES"; "" for NONE. */
const char *ccb__sec_crypto_name(int crypto);
/* Session key length for a method: 32 for AES, 24 otherwise. */
size_t ccb__sec_crypto_key_len(int crypto);

/* ---- local policy (§2.2) ------------------------------------------------ */

typedef struct ccb__sec_config {
	/* SEC_<PERM>_* after the permission fallback; UNDEFINED = compiled-in
	 * default (OPTIONAL, negotiation PREFERRED). */
	ccb__sec_level authentication;
	ccb__sec_level encryption;
	ccb__sec_level integrity;
	ccb__sec_level negotiation;
	/* REQUIRED for commands registered with force_authentication or when
	 * the caller insists; UNDEFINED otherwise. */
	ccb__sec_level request_authentication;
	/* The permission level is ALLOW (AuthenticationNew becomes OPTIONAL). */
	bool allow_perm;
	/* SEC_<PERM>_AUTHENTICATION_METHODS as configured; NULL/"" = none. */
	const char *auth_methods;
	/* SEC_<PERM>_CRYPTO_METHODS; NULL = "AES,BLOWFISH,3DES". */
	const char *crypto_methods;
	/* Default SessionDuration is 86400 for daemons, 60 for tools. */
	bool daemon;
	/* A daemon's temporary session (e.g. its CCB_REGISTER): duration 60. */
	bool tmp_session;
	/* SEC_*_SESSION_DURATION / _LEASE; negative = default (see above, 3600). */
	int session_duration;
	int session_lease;
	/* TRUST_DOMAIN; sent when some method is offered. NULL = not set. */
	const char *trust_domain;
	/* Readable signing-key names; sent when TOKEN is offered. */
	const char *issuer_keys;
} ccb__sec_config;

/* Compiled-in defaults: levels UNDEFINED, durations and lease negative. */
void ccb__sec_config_init(ccb__sec_config *c);

typedef struct ccb__sec_policy {
	ccb__sec_level authentication;     /* old style, raised to enc/integrity */
	ccb__sec_level authentication_new; /* as configured */
	ccb__sec_level encryption;
	ccb__sec_level integrity;
	ccb__sec_level negotiation; /* OutgoingNegotiation */
	char *auth_methods;   /* canonical list; NULL when none */
	char *crypto_methods; /* filtered list; NULL when none */
	int session_duration;
	int session_lease;
	char *trust_domain; /* NULL unless set and methods offered */
	char *issuer_keys;  /* NULL unless set and TOKEN offered */
} ccb__sec_policy;

/*
 * FillInSecurityPolicyAd (H:condor_secman.cpp:445-654). Errors:
 * CCB_ERR_CONFIG (NEVER against REQUIRED; no methods while REQUIRED),
 * CCB_ERR_NOMEM. *out is zeroed first; free with ccb__sec_policy_clear().
 */
ccb_err ccb__sec_policy_build(const ccb__sec_config *c, ccb__sec_policy *out, ccb_error *err);
void ccb__sec_policy_clear(ccb__sec_policy *p);

/* ---- REQUEST (§4.1) ----------------------------------------------------- */

typedef struct ccb__sec_request_params {
	const ccb__sec_policy *policy; /* built for permission CLIENT */
	int64_t command;
	int64_t auth_command;          /* sent when command is 60010 or 60040 */
	const char *ecdh_public_key;   /* our base64 point; required */
	const char *remote_version;    /* NULL: ccb__sec_version_string() */
	const char *subsystem;         /* NULL: "TOOL" */
	int64_t pid;                   /* 0: getpid() */
	const char *parent_unique_id;  /* optional */
	const char *connect_sinful;    /* optional: the address dialed */
	const char *server_command_sock; /* optional: daemons only */
} ccb__sec_request_params;

/* A new-session REQUEST as a C++ 25 client sends it. *out owned by caller.
 * Errors: CCB_ERR_INVALID_ARG, CCB_ERR_NOMEM. */
ccb_err ccb__sec_build_request(const ccb__sec_request_params *p, ccb_classad **out,
			       ccb_error *err);

/* ---- RESPONSE, server side (§4.2, §5) ----------------------------------- */

typedef struct ccb__sec_server_params {
	const ccb__sec_policy *policy;  /* for the command's permission level */
	const char *remote_version;     /* NULL: ccb__sec_version_string() */
	/* Our base64 point, inserted when the client sent one. May be NULL:
	 * then the caller adds ECDHPublicKey itself when outcome.client_ecdh. */
	const char *ecdh_public_key;
} ccb__sec_server_params;

typedef struct ccb__sec_outcome {
	ccb__sec_action authentication; /* YES or NO */
	ccb__sec_action encryption;
	ccb__sec_action integrity;
	bool auth_required;   /* authentication failure must close */
	bool new_session;     /* client sent NewSession = "YES" */
	bool send_response;   /* client sent Enact = "NO": send the RESPONSE */
	bool client_ecdh;     /* client sent ECDHPublicKey: key comes from ECDH */
	int crypto;           /* chosen crypto method (new session), or NONE */
	size_t key_len;       /* session key length for it */
	unsigned peer_version; /* CCB_VERSION_NUM of RemoteVersion, 0 if unparsable */
} ccb__sec_outcome;

/*
 * ReconcileSecurityPolicyAds plus the additions of daemon_command.cpp:954-1050.
 * On success *response is the RESPONSE ad (the caller sends it when
 * outcome.send_response). Errors: CCB_ERR_UNSUPPORTED when the policies
 * cannot be reconciled (a FAIL) or no crypto method can be agreed though
 * one is needed (the C++ server closes the connection silently in both
 * cases),
 * CCB_ERR_INVALID_ARG, CCB_ERR_NOMEM. The detail says which attribute.
 */
ccb_err ccb__sec_reconcile(const ccb__sec_server_params *p, const ccb_classad *request,
			   ccb_classad **response, ccb__sec_outcome *out, ccb_error *err);

/* ---- RESPONSE, client side (§4.2 last paragraph) ------------------------ */

typedef struct ccb__sec_negotiated {
	ccb__sec_action authentication; /* YES or NO */
	ccb__sec_action encryption;
	ccb__sec_action integrity;
	bool auth_required;       /* AuthRequired, true when absent */
	const char *auth_methods; /* AuthMethodsList (borrowed), NULL if absent */
	int crypto;               /* first entry of CryptoMethods, NONE if absent */
	size_t key_len;
	const char *server_ecdh;  /* ECDHPublicKey (borrowed), NULL if absent */
	const char *trust_domain; /* borrowed, NULL if absent */
	const char *issuer_keys;  /* borrowed, NULL if absent */
	unsigned peer_version;    /* 0 if absent or unparsable */
	int session_duration;     /* atoi of the string, 0 if absent */
	bool has_lease;
	int session_lease;
} ccb__sec_negotiated;

/*
 * Check a RESPONSE as the C++ client does (H:condor_secman.cpp:2073-2178):
 * Authentication, Encryption and Integrity present and YES/NO; with
 * Encryption "YES" a CryptoMethods whose first entry is a supported method.
 * Borrowed pointers live as long as the ad. Errors: CCB_ERR_PROTOCOL
 * (missing/bad decision), CCB_ERR_UNSUPPORTED (a FAIL decision, or the
 * crypto method).
 */
ccb_err ccb__sec_parse_response(const ccb_classad *resp, ccb__sec_negotiated *out,
				ccb_error *err);

/* ---- POST-AUTH (§4.3) --------------------------------------------------- */

typedef struct ccb__sec_postauth {
	const char *sid;
	const char *user;           /* the peer's mapped identity; NULL: absent */
	const char *return_code;    /* "AUTHORIZED", "DENIED", "CMD_NOT_FOUND" */
	const char *valid_commands; /* comma list of command numbers */
	bool tried_authentication;  /* sent only when true */
} ccb__sec_postauth;

ccb_err ccb__sec_build_postauth(const ccb__sec_postauth *p, ccb_classad **out, ccb_error *err);

/*
 * Client side (H:condor_secman.cpp:2451-2585): a ReturnCode other than
 * empty/AUTHORIZED gives CCB_ERR_NOT_AUTHORIZED; an empty Sid or
 * ValidCommands CCB_ERR_PROTOCOL. Strings borrowed from the ad; an empty
 * ReturnCode reads as "AUTHORIZED".
 */
ccb_err ccb__sec_parse_postauth(const ccb_classad *ad, ccb__sec_postauth *out, ccb_error *err);

#endif

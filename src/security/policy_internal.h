/*
 * Helpers shared by the parts of the policy code: policy.c (levels, local
 * policy, RemoteVersion, REQUEST), policy_methods.c (method lists) and
 * policy_negotiate.c (RESPONSE, POST-AUTH).
 *
 * Included by: src/security/policy*.c only.
 */
#ifndef CCB_SECURITY_POLICY_INTERNAL_H
#define CCB_SECURITY_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "ccb/classad.h"
#include "ccb/error.h"
#include "security/policy.h"

/* String value of an attribute, false when absent or of another type
 * (ClassAd LookupString). */
static inline bool lookup_str(const ccb_classad *ad, const char *name, const char **v)
{
	return ccb_classad_get_string(ad, name, v) == CCB_OK;
}


/* Setters that stop at the first failure: `rc` carries it. */
static inline void put_str(ccb_classad *ad, ccb_err *rc, const char *name, const char *v)
{
	if (!*rc && v)
		*rc = ccb_classad_set_string(ad, name, v);
}

static inline void put_int(ccb_classad *ad, ccb_err *rc, const char *name, int64_t v)
{
	if (!*rc)
		*rc = ccb_classad_set_int(ad, name, v);
}

static inline void put_bool(ccb_classad *ad, ccb_err *rc, const char *name, bool v)
{
	if (!*rc)
		*rc = ccb_classad_set_bool(ad, name, v);
}

static inline ccb_err finish_ad(ccb_classad *ad, ccb_err rc, ccb_classad **out, ccb_error *err,
					const char *what)
{
	if (rc) {
		ccb_classad_free(ad);
		return ccb_error_set(err, rc, "building the %s ad: %s", what, ccb_strerror(rc));
	}
	*out = ad;
	return CCB_OK;
}

/* Whether a list holds `name` exactly (case-sensitive). */
bool ccb__sec_list_has_exact(const char *list, const char *name);

/* TrustDomain travels with an offered method, IssuerKeys with TOKEN:
 * the policy's values, or NULL when they are not sent. */
const char *ccb__sec_policy_trust_domain(const ccb__sec_policy *p);
const char *ccb__sec_policy_issuer_keys(const ccb__sec_policy *p);

/* The CCB_VERSION_NUM of an ad's RemoteVersion; 0 if absent or unparsable. */
unsigned ccb__sec_peer_version_of(const ccb_classad *ad);

#endif

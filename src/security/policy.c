/*
 * Security policy (security-handshake.md §2, §4.1): requirement levels and
 * decisions, the local policy built from configuration, the RemoteVersion
 * string and the REQUEST ad. Method lists: policy_methods.c; the RESPONSE
 * and POST-AUTH ads: policy_negotiate.c.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "classad/classad_internal.h"
#include "security/policy.h"
#include "security/policy_internal.h"
#include "util/util.h"

/* ---- levels and decisions ----------------------------------------------- */

/* security-handshake.md §2; H:src/condor_io/condor_secman.cpp:142-164 */
ccb__sec_level ccb__sec_level_parse(const char *s)
{
	if (!s || !*s)
		return CCB_SEC_INVALID;
	switch (s[0]) {
	case 'R': case 'r': case 'Y': case 'y': case 'T': case 't':
		return CCB_SEC_REQUIRED;
	case 'P': case 'p':
		return CCB_SEC_PREFERRED;
	case 'O': case 'o':
		return CCB_SEC_OPTIONAL;
	case 'F': case 'f': case 'N': case 'n':
		return CCB_SEC_NEVER;
	}
	return CCB_SEC_INVALID;
}

const char *ccb__sec_level_name(ccb__sec_level l)
{
	switch (l) {
	case CCB_SEC_REQUIRED: return "REQUIRED";
	case CCB_SEC_PREFERRED: return "PREFERRED";
	case CCB_SEC_OPTIONAL: return "OPTIONAL";
	case CCB_SEC_NEVER: return "NEVER";
	case CCB_SEC_UNDEFINED: return "UNDEFINED";
	default: return "INVALID";
	}
}

/* H:condor_secman.cpp:183-200 */
ccb__sec_action ccb__sec_action_parse(const char *s)
{
	if (!s || !*s)
		return CCB_SEC_ACT_INVALID;
	switch (s[0]) {
	case 'F': case 'f': return CCB_SEC_ACT_FAIL;
	case 'Y': case 'y': return CCB_SEC_ACT_YES;
	case 'N': case 'n': return CCB_SEC_ACT_NO;
	}
	return CCB_SEC_ACT_INVALID;
}

const char *ccb__sec_action_name(ccb__sec_action a)
{
	switch (a) {
	case CCB_SEC_ACT_YES: return "YES";
	case CCB_SEC_ACT_NO: return "NO";
	case CCB_SEC_ACT_FAIL: return "FAIL";
	case CCB_SEC_ACT_UNDEFINED: return "UNDEFINED";
	default: return "INVALID";
	}
}

/* sec_lookup_feat_act, H:condor_secman.cpp:167-180 */
ccb__sec_action ccb__sec_lookup_action(const ccb_classad *ad, const char *attr)
{
	const char *v;

	if (!lookup_str(ad, attr, &v))
		return CCB_SEC_ACT_UNDEFINED;
	return ccb__sec_action_parse(v);
}

/* The reconcile table, security-handshake.md §2.1; H:condor_secman.cpp:775-826 */
ccb__sec_action ccb__sec_reconcile_levels(ccb__sec_level client, ccb__sec_level server)
{
	switch (client) {
	case CCB_SEC_REQUIRED:
		return server == CCB_SEC_NEVER ? CCB_SEC_ACT_FAIL : CCB_SEC_ACT_YES;
	case CCB_SEC_PREFERRED:
		return server == CCB_SEC_NEVER ? CCB_SEC_ACT_NO : CCB_SEC_ACT_YES;
	case CCB_SEC_OPTIONAL:
		return server == CCB_SEC_REQUIRED || server == CCB_SEC_PREFERRED ? CCB_SEC_ACT_YES
										 : CCB_SEC_ACT_NO;
	case CCB_SEC_NEVER:
		return server == CCB_SEC_REQUIRED ? CCB_SEC_ACT_FAIL : CCB_SEC_ACT_NO;
	default:
		return CCB_SEC_ACT_FAIL;
	}
}

/* ReconcileSecurityDependency, H:condor_secman.cpp:691-705 */
bool ccb__sec_raise(ccb__sec_level *a, ccb__sec_level *b)
{
	if (*a == CCB_SEC_NEVER) {
		if (*b == CCB_SEC_REQUIRED)
			return false;
		*b = CCB_SEC_NEVER;
	}
	if (*b > *a)
		*a = *b;
	return true;
}

/* ---- local policy -------------------------------------------------------- */

void ccb__sec_config_init(ccb__sec_config *c)
{
	memset(c, 0, sizeof *c);
	c->session_duration = -1;
	c->session_lease = -1;
}

void ccb__sec_policy_clear(ccb__sec_policy *p)
{
	free(p->auth_methods);
	free(p->crypto_methods);
	free(p->trust_domain);
	free(p->issuer_keys);
	memset(p, 0, sizeof *p);
}

/* A configured level: UNDEFINED takes the default; anything unparsable
 * is fatal in C++ (sec_req_param EXCEPTs, H:condor_secman.cpp:284-316). */
static bool config_level(ccb__sec_level in, ccb__sec_level def, ccb__sec_level *out)
{
	if (in == CCB_SEC_UNDEFINED)
		in = def;
	*out = in;
	return in >= CCB_SEC_NEVER && in <= CCB_SEC_REQUIRED;
}

static ccb_err levels_from_config(const ccb__sec_config *c, ccb__sec_policy *p, ccb_error *err)
{
	ccb__sec_level req = c->request_authentication;

	if (!config_level(c->authentication, CCB_SEC_OPTIONAL, &p->authentication) ||
	    !config_level(c->encryption, CCB_SEC_OPTIONAL, &p->encryption) ||
	    !config_level(c->integrity, CCB_SEC_OPTIONAL, &p->integrity) ||
	    !config_level(c->negotiation, CCB_SEC_PREFERRED, &p->negotiation) ||
	    (req != CCB_SEC_UNDEFINED && (req < CCB_SEC_NEVER || req > CCB_SEC_REQUIRED)))
		return ccb_error_set(err, CCB_ERR_CONFIG, "security policy: invalid level");
	if (req > p->authentication)
		p->authentication = req;
	p->authentication_new = p->authentication;
	/* ALLOW-level commands need no authentication unless asked (499-503). */
	if (c->allow_perm && req == CCB_SEC_UNDEFINED)
		p->authentication_new = CCB_SEC_OPTIONAL;
	/* Old-style Authentication >= encryption, integrity; negotiation >= all
	 * three (514-533; security-handshake.md §2.2, corrected from capture S1). */
	if (!ccb__sec_raise(&p->authentication, &p->encryption) ||
	    !ccb__sec_raise(&p->authentication, &p->integrity) ||
	    !ccb__sec_raise(&p->negotiation, &p->authentication) ||
	    !ccb__sec_raise(&p->negotiation, &p->encryption) ||
	    !ccb__sec_raise(&p->negotiation, &p->integrity))
		return ccb_error_set(err, CCB_ERR_CONFIG,
				     "security policy is invalid: a NEVER level conflicts with a "
				     "REQUIRED one (authentication %s, encryption %s, integrity %s, "
				     "negotiation %s)",
				     ccb__sec_level_name(p->authentication),
				     ccb__sec_level_name(p->encryption),
				     ccb__sec_level_name(p->integrity),
				     ccb__sec_level_name(p->negotiation));
	return CCB_OK;
}

/* No methods: the feature is off, or the policy fails if it is required (535-577). */
static ccb_err methods_from_config(const ccb__sec_config *c, ccb__sec_policy *p, ccb_error *err)
{
	p->auth_methods = ccb__sec_canonical_auth_methods(c->auth_methods);
	p->crypto_methods =
		ccb__sec_filter_crypto_methods(c->crypto_methods ? c->crypto_methods : "AES,BLOWFISH,3DES");
	if (!p->auth_methods || !p->crypto_methods)
		return ccb_error_set(err, CCB_ERR_NOMEM, "security policy: out of memory");
	if (!*p->auth_methods) {
		free(p->auth_methods);
		p->auth_methods = NULL;
		if (p->authentication_new == CCB_SEC_REQUIRED)
			return ccb_error_set(err, CCB_ERR_CONFIG,
					     "authentication is REQUIRED but no usable "
					     "authentication method is configured");
		p->authentication_new = CCB_SEC_NEVER;
	}
	if (!*p->crypto_methods) {
		free(p->crypto_methods);
		p->crypto_methods = NULL;
		if (p->encryption == CCB_SEC_REQUIRED || p->integrity == CCB_SEC_REQUIRED)
			return ccb_error_set(err, CCB_ERR_CONFIG,
					     "encryption or integrity is REQUIRED but no usable "
					     "crypto method is configured");
		p->encryption = CCB_SEC_NEVER;
		p->integrity = CCB_SEC_NEVER;
	}
	return CCB_OK;
}

static bool dup_opt(char **dst, const char *src)
{
	if (!src || !*src)
		return true;
	*dst = ccb_strdup(src);
	return *dst != NULL;
}

ccb_err ccb__sec_policy_build(const ccb__sec_config *c, ccb__sec_policy *out, ccb_error *err)
{
	ccb_err rc;

	memset(out, 0, sizeof *out);
	if (!c)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "security policy: no configuration");
	if ((rc = levels_from_config(c, out, err)) || (rc = methods_from_config(c, out, err)))
		goto fail;
	/* Durations: H:condor_secman.cpp:606-651. */
	out->session_duration = c->session_duration >= 0 ? c->session_duration
				: c->daemon ? 86400 : 60;
	if (c->tmp_session)
		out->session_duration = 60;
	out->session_lease = c->session_lease >= 0 ? c->session_lease : 3600;
	if (!dup_opt(&out->trust_domain, c->trust_domain) ||
	    !dup_opt(&out->issuer_keys, c->issuer_keys)) {
		rc = ccb_error_set(err, CCB_ERR_NOMEM, "security policy: out of memory");
		goto fail;
	}
	return CCB_OK;
fail:
	ccb__sec_policy_clear(out);
	return rc;
}

/* TrustDomain travels with an offered method, IssuerKeys with TOKEN
 * (UpdateAuthenticationMetadata, H:condor_secman.cpp:406-429, 536-542). */
const char *ccb__sec_policy_trust_domain(const ccb__sec_policy *p)
{
	return p->auth_methods ? p->trust_domain : NULL;
}

const char *ccb__sec_policy_issuer_keys(const ccb__sec_policy *p)
{
	return p->auth_methods && ccb__sec_list_has_exact(p->auth_methods, "TOKEN") ? p->issuer_keys : NULL;
}

unsigned ccb__sec_peer_version_of(const ccb_classad *ad)
{
	const char *v;
	unsigned num = 0;

	if (!lookup_str(ad, "RemoteVersion", &v) || ccb__sec_version_parse(v, NULL, NULL, NULL, &num, NULL))
		return 0;
	return num;
}

/* ---- REQUEST -------------------------------------------------------------- */

/* The policy part, FillInSecurityPolicyAd (H:condor_secman.cpp:535-651). */
static void put_policy(ccb_classad *ad, ccb_err *rc, const ccb__sec_policy *pol)
{
	char dur[16];

	put_str(ad, rc, "AuthMethods", pol->auth_methods);
	put_str(ad, rc, "TrustDomain", ccb__sec_policy_trust_domain(pol));
	put_str(ad, rc, "IssuerKeys", ccb__sec_policy_issuer_keys(pol));
	put_str(ad, rc, "CryptoMethods", pol->crypto_methods);
	put_str(ad, rc, "OutgoingNegotiation", ccb__sec_level_name(pol->negotiation));
	put_str(ad, rc, "Authentication", ccb__sec_level_name(pol->authentication));
	put_str(ad, rc, "AuthenticationNew", ccb__sec_level_name(pol->authentication_new));
	put_str(ad, rc, "Encryption", ccb__sec_level_name(pol->encryption));
	put_str(ad, rc, "Integrity", ccb__sec_level_name(pol->integrity));
	put_str(ad, rc, "Enact", "NO");
	/* "For historical reasons" a string (§2.1 trap). */
	snprintf(dur, sizeof dur, "%d", pol->session_duration);
	put_str(ad, rc, "SessionDuration", dur);
	put_int(ad, rc, "SessionLease", pol->session_lease);
}

ccb_err ccb__sec_build_request(const ccb__sec_request_params *p, ccb_classad **out,
			       ccb_error *err)
{
	ccb_classad *ad;
	ccb_err rc = CCB_OK;

	*out = NULL;
	if (!p || !p->policy || !p->ecdh_public_key || !*p->ecdh_public_key)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				     "security request: policy and ECDH public key are required");
	if (!(ad = ccb__classad_new()))
		return ccb_error_set(err, CCB_ERR_NOMEM, "security request: out of memory");
	put_policy(ad, &rc, p->policy);
	put_str(ad, &rc, "Subsystem", p->subsystem ? p->subsystem : "TOOL");
	put_str(ad, &rc, "ParentUniqueID", p->parent_unique_id);
	put_int(ad, &rc, "ServerPid", p->pid ? p->pid : (int64_t)getpid());
	/* SecManStartCommand, H:condor_secman.cpp:1632-1651, 1766-1784, 3128-3147 */
	put_str(ad, &rc, "ECDHPublicKey", p->ecdh_public_key);
	put_str(ad, &rc, "NewSession", "YES");
	put_bool(ad, &rc, "NegotiatedSession", true);
	put_str(ad, &rc, "RemoteVersion",
		p->remote_version ? p->remote_version : ccb__sec_version_string());
	put_str(ad, &rc, "ServerCommandSock", p->server_command_sock);
	put_str(ad, &rc, "ConnectSinful", p->connect_sinful);
	put_int(ad, &rc, "Command", p->command);
	if (p->command == CCB_DC_AUTHENTICATE || p->command == CCB_DC_SEC_QUERY)
		put_int(ad, &rc, "AuthCommand", p->auth_command);
	return finish_ad(ad, rc, out, err, "security request");
}

/*
 * The negotiated part of DC_AUTHENTICATE (security-handshake.md §4.2,
 * §4.3, §5): the server's RESPONSE (ReconcileSecurityPolicyAds), the
 * client's check of it, and the POST-AUTH ad both ways.
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

/* ---- RESPONSE, server side ------------------------------------------------ */

/* atoi of a string attribute; 0 when absent or not a string
 * (H:condor_secman.cpp:916-934). */
static int duration_of(const ccb_classad *ad)
{
	const char *v;
	long n;

	if (!lookup_str(ad, "SessionDuration", &v))
		return 0;
	n = strtol(v, NULL, 10);
	return n > INT_MAX ? INT_MAX : n < INT_MIN ? INT_MIN : (int)n;
}

/* LookupInteger: integers, reals (truncated) and booleans count. */
static bool lookup_number(const ccb_classad *ad, const char *name, int *v)
{
	int64_t i;
	double d;
	bool b;

	switch (ccb_classad_type(ad, name)) {
	case CCB_VAL_INT:
		ccb_classad_get_int(ad, name, &i);
		*v = i > INT_MAX ? INT_MAX : i < INT_MIN ? INT_MIN : (int)i;
		return true;
	case CCB_VAL_REAL:
		ccb_classad_get_real(ad, name, &d);
		*v = d >= (double)INT_MAX ? INT_MAX : d <= (double)INT_MIN ? INT_MIN : (int)d;
		return true;
	case CCB_VAL_BOOL:
		ccb_classad_get_bool(ad, name, &b);
		*v = b;
		return true;
	default:
		return false;
	}
}

/* Authentication: AuthenticationNew when the client sent it, else the
 * old-style attribute on both sides (ReconcileSecurityAttribute, 709-773). */
static ccb__sec_action reconcile_auth(const ccb__sec_policy *srv, const ccb_classad *req,
				      bool *required, ccb__sec_level *cl, ccb__sec_level *sl)
{
	const char *v = NULL;
	bool use_alt = false;

	if (!lookup_str(req, "AuthenticationNew", &v))
		use_alt = lookup_str(req, "Authentication", &v);
	*cl = v && *v ? ccb__sec_level_parse(v) : CCB_SEC_NEVER;
	*sl = use_alt ? srv->authentication : srv->authentication_new;
	*required = *cl == CCB_SEC_REQUIRED || *sl == CCB_SEC_REQUIRED;
	return ccb__sec_reconcile_levels(*cl, *sl);
}

/* A missing (or empty) client attribute counts as NEVER. */
static ccb__sec_level client_level(const ccb_classad *req, const char *attr)
{
	const char *v;

	return lookup_str(req, attr, &v) && *v ? ccb__sec_level_parse(v) : CCB_SEC_NEVER;
}

static ccb_err fail_reason(ccb_error *err, const char *attr, ccb__sec_level cl, ccb__sec_level sl)
{
	return ccb_error_set(err, CCB_ERR_UNSUPPORTED,
			     "security policies cannot be reconciled: client %s %s, server %s",
			     attr, ccb__sec_level_name(cl), ccb__sec_level_name(sl));
}

static ccb_err reconcile_actions(const ccb__sec_policy *srv, const ccb_classad *req,
				 ccb__sec_outcome *o, ccb_error *err)
{
	ccb__sec_level cl, sl;

	o->authentication = reconcile_auth(srv, req, &o->auth_required, &cl, &sl);
	if (o->authentication == CCB_SEC_ACT_FAIL)
		return fail_reason(err, "Authentication", cl, sl);
	cl = client_level(req, "Encryption");
	o->encryption = ccb__sec_reconcile_levels(cl, srv->encryption);
	if (o->encryption == CCB_SEC_ACT_FAIL)
		return fail_reason(err, "Encryption", cl, srv->encryption);
	cl = client_level(req, "Integrity");
	o->integrity = ccb__sec_reconcile_levels(cl, srv->integrity);
	if (o->integrity == CCB_SEC_ACT_FAIL)
		return fail_reason(err, "Integrity", cl, srv->integrity);
	return CCB_OK;
}

/* First item of a list, copied into buf ("" if none). */
static void first_item(const char *list, char *buf, size_t n)
{
	const char *p = list, *t;
	size_t len;

	buf[0] = '\0';
	if ((t = ccb__sec_list_next(&p, &len)))
		snprintf(buf, n, "%.*s", (int)len, t);
}

/* AuthMethodsList/AuthMethods and CryptoMethods(List) (850-913). */
static void reconcile_lists(ccb_classad *resp, ccb_err *rc, const ccb__sec_policy *srv,
			    const ccb_classad *req, ccb__sec_outcome *o)
{
	const char *cli;
	char first[64];
	char *list;

	if (srv->auth_methods && lookup_str(req, "AuthMethods", &cli)) {
		if (!(list = ccb__sec_reconcile_methods(cli, srv->auth_methods))) {
			*rc = CCB_ERR_NOMEM;
			return;
		}
		first_item(list, first, sizeof first);
		put_str(resp, rc, "AuthMethodsList", list);
		put_str(resp, rc, "AuthMethods", first);
		free(list);
	}
	if (srv->crypto_methods && lookup_str(req, "CryptoMethods", &cli)) {
		if (!(list = ccb__sec_reconcile_methods(cli, srv->crypto_methods))) {
			*rc = CCB_ERR_NOMEM;
			return;
		}
		put_str(resp, rc, "CryptoMethods", list);
		put_str(resp, rc, "CryptoMethodsList", list);
		/* AES-GCM always encrypts and checks integrity (907-913); the
		 * comparison of the first item is exact, as in C++. */
		if (o->authentication == CCB_SEC_ACT_YES && !strncmp(list, "AES", 3) &&
		    (list[3] == '\0' || list[3] == ',')) {
			o->encryption = CCB_SEC_ACT_YES;
			o->integrity = CCB_SEC_ACT_YES;
		}
		free(list);
	}
}

/* SessionDuration (string, min) and SessionLease (0 defers, min) (916-956). */
static void reconcile_session(ccb_classad *resp, ccb_err *rc, const ccb__sec_policy *srv,
			      const ccb_classad *req)
{
	int cd = duration_of(req), sd = srv->session_duration, cl;
	char buf[16];

	snprintf(buf, sizeof buf, "%d", cd < sd ? cd : sd);
	put_str(resp, rc, "SessionDuration", buf);
	if (lookup_number(req, "SessionLease", &cl)) {
		int sl = srv->session_lease;
		if (cl == 0)
			cl = sl;
		if (sl == 0)
			sl = cl;
		put_int(resp, rc, "SessionLease", cl < sl ? cl : sl);
	}
}

/* New session: pick the crypto method and answer the client's ECDH key
 * (daemon_command.cpp:961-1044). */
static ccb_err new_session_crypto(ccb_classad *resp, const ccb__sec_server_params *p,
				  const ccb_classad *req, ccb__sec_outcome *o, ccb_error *err)
{
	const char *peer, *list;
	ccb_err rc = CCB_OK;

	o->client_ecdh = lookup_str(req, "ECDHPublicKey", &peer) && *peer;
	if (o->authentication != CCB_SEC_ACT_YES && !o->client_ecdh) {
		if (ccb_classad_type(resp, "CryptoMethods") != CCB_VAL_ABSENT)
			rc = ccb_classad_remove(resp, "CryptoMethods");
		return rc ? ccb_error_set(err, rc, "building the security response") : CCB_OK;
	}
	if (!lookup_str(resp, "CryptoMethods", &list))
		return ccb_error_set(err, CCB_ERR_UNSUPPORTED,
				     "no crypto method to agree on (client or server lists none)");
	o->crypto = ccb__sec_crypto_parse(list);
	o->key_len = ccb__sec_crypto_key_len(o->crypto);
	/* C++ carries on with no protocol; it cannot work once encryption or
	 * integrity is on, and the C++ client refuses it (secman.cpp:2128-2136). */
	if (o->crypto == CCB_SEC_CRYPTO_NONE &&
	    (o->encryption == CCB_SEC_ACT_YES || o->integrity == CCB_SEC_ACT_YES))
		return ccb_error_set(err, CCB_ERR_UNSUPPORTED,
				     "no common crypto method (client \"%s\", server \"%s\")",
				     lookup_str(req, "CryptoMethods", &peer) ? peer : "",
				     p->policy->crypto_methods);
	if (o->client_ecdh)
		put_str(resp, &rc, "ECDHPublicKey", p->ecdh_public_key);
	put_str(resp, &rc, "CryptoMethods", ccb__sec_crypto_name(o->crypto));
	return rc ? ccb_error_set(err, rc, "building the security response") : CCB_OK;
}

ccb_err ccb__sec_reconcile(const ccb__sec_server_params *p, const ccb_classad *request,
			   ccb_classad **response, ccb__sec_outcome *out, ccb_error *err)
{
	const ccb__sec_policy *srv;
	ccb_classad *resp;
	ccb_err rc;

	*response = NULL;
	memset(out, 0, sizeof *out);
	if (!p || !p->policy || !request)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "security reconcile: bad arguments");
	srv = p->policy;
	if ((rc = reconcile_actions(srv, request, out, err)))
		return rc;
	if (!(resp = ccb__classad_new()))
		return ccb_error_set(err, CCB_ERR_NOMEM, "security response: out of memory");
	reconcile_lists(resp, &rc, srv, request, out);
	put_str(resp, &rc, "Authentication", ccb__sec_action_name(out->authentication));
	if (out->authentication == CCB_SEC_ACT_YES && !out->auth_required)
		put_bool(resp, &rc, "AuthRequired", false);
	put_str(resp, &rc, "Encryption", ccb__sec_action_name(out->encryption));
	put_str(resp, &rc, "Integrity", ccb__sec_action_name(out->integrity));
	reconcile_session(resp, &rc, srv, request);
	put_str(resp, &rc, "Enact", "YES");
	/* UpdateAuthenticationMetadata on the result plus the server's own
	 * TrustDomain/IssuerKeys (958-968). */
	put_str(resp, &rc, "TrustDomain", srv->trust_domain);
	put_str(resp, &rc, "IssuerKeys", ccb__sec_policy_issuer_keys(srv));
	put_bool(resp, &rc, "NegotiatedSession", true);
	put_str(resp, &rc, "RemoteVersion",
		p->remote_version ? p->remote_version : ccb__sec_version_string());
	if (rc) {
		ccb_classad_free(resp);
		return ccb_error_set(err, rc, "building the security response: %s", ccb_strerror(rc));
	}
	out->new_session = ccb__sec_lookup_action(request, "NewSession") == CCB_SEC_ACT_YES;
	out->send_response = ccb__sec_lookup_action(request, "Enact") == CCB_SEC_ACT_NO;
	out->peer_version = ccb__sec_peer_version_of(request);
	if (out->new_session && (rc = new_session_crypto(resp, p, request, out, err))) {
		ccb_classad_free(resp);
		return rc;
	}
	*response = resp;
	return CCB_OK;
}

/* ---- RESPONSE, client side ------------------------------------------------ */

static ccb_err response_action(const ccb_classad *resp, const char *attr, ccb__sec_action *a,
			       ccb_error *err)
{
	*a = ccb__sec_lookup_action(resp, attr);
	if (*a == CCB_SEC_ACT_UNDEFINED)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "security response lacks %s", attr);
	if (*a == CCB_SEC_ACT_INVALID)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "security response has unparsable %s",
				     attr);
	/* C++ never sends FAIL (it closes instead); treat it as a refusal. */
	if (*a == CCB_SEC_ACT_FAIL)
		return ccb_error_set(err, CCB_ERR_UNSUPPORTED, "server answered %s FAIL",
				     attr);
	return CCB_OK;
}

/* With Encryption exactly "YES" the first CryptoMethods entry (text up to
 * the first comma) must be one we support (H:condor_secman.cpp:2121-2145). */
static ccb_err check_crypto(const ccb_classad *resp, ccb_error *err)
{
	const char *enc, *list;
	char first[64];
	char *filtered;
	bool ok;

	if (!lookup_str(resp, "Encryption", &enc) || strcmp(enc, "YES") != 0)
		return CCB_OK;
	if (!lookup_str(resp, "CryptoMethods", &list) || !*list)
		return ccb_error_set(err, CCB_ERR_PROTOCOL,
				     "server answered Encryption YES but sent no CryptoMethods");
	snprintf(first, sizeof first, "%.*s", (int)strcspn(list, ","), list);
	if (!(filtered = ccb__sec_filter_crypto_methods(first)))
		return ccb_error_set(err, CCB_ERR_NOMEM, "security response: out of memory");
	ok = *filtered != '\0';
	free(filtered);
	if (!ok)
		return ccb_error_set(err, CCB_ERR_UNSUPPORTED,
				     "server suggested a crypto method we do not support (%s)", first);
	return CCB_OK;
}

ccb_err ccb__sec_parse_response(const ccb_classad *resp, ccb__sec_negotiated *out,
				ccb_error *err)
{
	const char *list;
	bool b;
	ccb_err rc;

	memset(out, 0, sizeof *out);
	if ((rc = check_crypto(resp, err)) ||
	    (rc = response_action(resp, "Authentication", &out->authentication, err)) ||
	    (rc = response_action(resp, "Encryption", &out->encryption, err)) ||
	    (rc = response_action(resp, "Integrity", &out->integrity, err)))
		return rc;
	/* Absent means required (H:condor_secman.cpp:2240-2249). */
	out->auth_required = ccb_classad_get_bool(resp, "AuthRequired", &b) != CCB_OK || b;
	if (!lookup_str(resp, "AuthMethodsList", &out->auth_methods))
		out->auth_methods = NULL;
	if (lookup_str(resp, "CryptoMethods", &list))
		out->crypto = ccb__sec_crypto_parse(list);
	out->key_len = ccb__sec_crypto_key_len(out->crypto);
	if (!lookup_str(resp, "ECDHPublicKey", &out->server_ecdh) || !*out->server_ecdh)
		out->server_ecdh = NULL;
	if (!lookup_str(resp, "TrustDomain", &out->trust_domain))
		out->trust_domain = NULL;
	if (!lookup_str(resp, "IssuerKeys", &out->issuer_keys))
		out->issuer_keys = NULL;
	out->peer_version = ccb__sec_peer_version_of(resp);
	out->session_duration = duration_of(resp);
	out->has_lease = lookup_number(resp, "SessionLease", &out->session_lease);
	return CCB_OK;
}

/* ---- POST-AUTH ------------------------------------------------------------ */

/* H:src/condor_daemon_core.V6/daemon_command.cpp:1689-1736 */
ccb_err ccb__sec_build_postauth(const ccb__sec_postauth *p, ccb_classad **out, ccb_error *err)
{
	ccb_classad *ad;
	ccb_err rc = CCB_OK;

	*out = NULL;
	if (!p || !p->sid || !*p->sid || !p->return_code)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "post-auth ad: Sid and ReturnCode needed");
	if (!(ad = ccb__classad_new()))
		return ccb_error_set(err, CCB_ERR_NOMEM, "post-auth ad: out of memory");
	put_str(ad, &rc, "User", p->user);
	if (p->tried_authentication)
		put_bool(ad, &rc, "TriedAuthentication", true);
	put_str(ad, &rc, "Sid", p->sid);
	put_str(ad, &rc, "ValidCommands", p->valid_commands ? p->valid_commands : "");
	put_str(ad, &rc, "ReturnCode", p->return_code);
	return finish_ad(ad, rc, out, err, "post-auth");
}

ccb_err ccb__sec_parse_postauth(const ccb_classad *ad, ccb__sec_postauth *out, ccb_error *err)
{
	bool b;

	memset(out, 0, sizeof *out);
	if (!lookup_str(ad, "ReturnCode", &out->return_code) || !*out->return_code)
		out->return_code = "AUTHORIZED"; /* pre-8.3.6 servers send none */
	if (!lookup_str(ad, "User", &out->user))
		out->user = NULL;
	if (strcmp(out->return_code, "AUTHORIZED") != 0)
		return ccb_error_set(err, CCB_ERR_NOT_AUTHORIZED, "server answered %s%s%s%s",
				     out->return_code, out->user ? " (user '" : " (no user: unauthenticated)",
				     out->user ? out->user : "", out->user ? "')" : "");
	if (!lookup_str(ad, "Sid", &out->sid) || !*out->sid)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "post-auth ad lacks the session id (Sid)");
	if (!lookup_str(ad, "ValidCommands", &out->valid_commands) || !*out->valid_commands)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "post-auth ad lacks ValidCommands");
	out->tried_authentication = ccb_classad_get_bool(ad, "TriedAuthentication", &b) == CCB_OK && b;
	return CCB_OK;
}

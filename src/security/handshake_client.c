/*
 * DC_AUTHENTICATE, client side (security-handshake.md §3, §9): one
 * function per phase — resume a cached session, send the REQUEST, read
 * the RESPONSE, authenticate, install the key, read the POST-AUTH answer
 * and keep the session — carrying a client_hs through them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ccb/classad.h"
#include "ccb/security.h"
#include "classad/classad_internal.h"
#include "security/auth.h"
#include "security/ecdh.h"
#include "security/handshake_internal.h"
#include "security/policy.h"
#include "security/session_cache.h"
#include "security/session_crypto.h"

static bool resumable(int command)
{
	return command != CCB_DC_AUTHENTICATE && command != CCB_DC_SEC_QUERY;
}

/*
 * Resume the cached session `e` for `command` (§9.2): RESUME written as a
 * projection, the server's reply, then the cached key. A refusal forgets
 * the session and gives CCB_ERR_SESSION_REFUSED (the server closes, so the
 * caller reconnects and negotiates anew).
 */
static ccb_err client_resume(ccb_stream *s, const ccb_sec_client_config *cfg,
			     const ccb__sess_entry *e, int command, const char *connect_sinful,
			     const char *crypto_methods, ccb_sec_info *info, ccb_error *err)
{
	ccb_classad *req = ccb__classad_new(), *reply = NULL;
	char nonce[48];
	const char *code = NULL;
	ccb_err rc;

	if (!req)
		return ccb_error_set(err, CCB_ERR_NOMEM, "resume request");
	if ((rc = ccb__sec_make_nonce(nonce, err)))
		goto out;
	if (ccb_classad_set_int(req, "Command", command) ||
	    ccb_classad_set_string(req, "ConnectSinful", connect_sinful) ||
	    ccb_classad_set_string(req, "CryptoMethods", crypto_methods) ||
	    ccb_classad_set_string(req, "Nonce", nonce) ||
	    ccb_classad_set_string(req, "RemoteVersion", ccb__sec_version_string()) ||
	    ccb_classad_set_bool(req, "ResumeResponse", true) ||
	    ccb_classad_set_string(req, "Sid", e->id) ||
	    ccb_classad_set_string(req, "UseSession", "YES")) {
		rc = ccb_error_set(err, CCB_ERR_NOMEM, "resume request");
		goto out;
	}
	if (ccb_stream_put_int(s, CCB_DC_AUTHENTICATE) ||
	    ccb_classad_put(s, req, &(ccb_classad_put_config){.projection = true}) ||
	    ccb_stream_end_message(s)) {
		rc = ccb__sec_stream_fail(s, err, "send resume request");
		goto out;
	}
	rc = ccb__sec_get_ad(s, &reply, err, "read resume reply");
	if (rc == CCB_OK && (ccb_classad_get_string(reply, "ReturnCode", &code) ||
			     strcmp(code, "AUTHORIZED") != 0))
		rc = ccb_error_set(err, CCB_ERR_SESSION_REFUSED, "server answered %s to resuming "
				   "session %s", code ? code : "without a ReturnCode", e->id);
	else if (rc == CCB_ERR_CLOSED)
		rc = ccb_error_set(err, CCB_ERR_SESSION_REFUSED,
				   "server closed instead of resuming session %s", e->id);
	if (rc) {
		ccb__sess_remove(cfg->sessions->cache, e->id);
		goto out;
	}
	/* The session's key, method and policy go back on (§9.2). */
	if ((rc = ccb__sec_install_key(s, e->key, e->key_len, e->crypto,
				       ccb__sec_policy_yes(e->policy, "Encryption"),
				       ccb__sec_policy_yes(e->policy, "Integrity"), err))) {
		ccb_error_prefix(err, "resumed session %s: ", e->id);
		goto out;
	}
	info->resumed = true;
	ccb__sec_crypto_info(s, info);
	snprintf(info->session_id, sizeof info->session_id, "%s", e->id);
	ccb__sec_copy_attr(reply, "RemoteVersion", info->peer_version, sizeof info->peer_version);
	if (e->policy) {
		ccb__sec_copy_attr(e->policy, "User", info->user, sizeof info->user);
		ccb__sec_copy_attr(e->policy, "AuthMethods", info->method, sizeof info->method);
		if (!info->peer_version[0])
			ccb__sec_copy_attr(e->policy, "RemoteVersion", info->peer_version,
				  sizeof info->peer_version);
		info->authenticated = info->method[0] != '\0';
	}
out:
	ccb_classad_free(req);
	ccb_classad_free(reply);
	return rc;
}

/* Keep a negotiated session for later commands to `addr` (§9.1): key,
 * what the server told us, and every command of ValidCommands. */
static void client_keep(const ccb_sec_client_config *cfg, const char *addr,
			const ccb__sec_negotiated *neg, const ccb__sec_postauth *pa,
			const ccb_sec_info *info, const uint8_t *key, size_t key_len, int crypto)
{
	ccb__sess_entry e = {.id = (char *)pa->sid, .key_len = key_len, .crypto = crypto};
	int64_t now = ccb_wall_s();
	ccb_classad *pol;

	/* Our RESUME always asks for a reply (ResumeResponse = true), which a
	 * server older than 9.9.0 never sends (security-handshake.md §9.2):
	 * such sessions are not kept. */
	if (neg->peer_version < CCB_VERSION_NUM(9, 9, 0) || !(pol = ccb__classad_new()))
		return;
	memcpy(e.key, key, key_len);
	ccb_classad_set_string(pol, "User", info->user);
	ccb_classad_set_string(pol, "AuthMethods", info->method);
	ccb_classad_set_string(pol, "RemoteVersion", info->peer_version);
	ccb_classad_set_string(pol, "Encryption", ccb__sec_action_name(neg->encryption));
	ccb_classad_set_string(pol, "Integrity", ccb__sec_action_name(neg->integrity));
	e.policy = pol;
	/* C++ keeps a client session for the server's SessionDuration and
	 * SessionLease (condor_secman.cpp:2569-2660). */
	e.expiry = neg->session_duration > 0 ? now + neg->session_duration : now + 60;
	e.lease = neg->has_lease && neg->session_lease > 0 ? neg->session_lease : 0;
	if (ccb__sess_add(cfg->sessions->cache, &e, now, NULL) == CCB_OK)
		ccb__sess_map_commands(cfg->sessions->cache, addr, pa->valid_commands, pa->sid,
				       NULL);
	OPENSSL_cleanse(e.key, sizeof e.key);
	ccb_classad_free(pol);
}

/* What the phases of a new-session handshake share. */
typedef struct client_hs {
	ccb_stream *s;
	const ccb_sec_client_config *cfg;
	int command;
	int auth_command;
	const char *connect_sinful;
	ccb_sec_info *info;
	ccb_error *err;
	char methods[256];
	char cryptos[64];
	ccb__sec_config c;  /* our policy as configured (permission CLIENT) */
	ccb__sec_policy pol;
	ccb__ecdh *k;
	ccb_classad *resp;  /* the RESPONSE; neg borrows from it */
	ccb_classad *post;  /* the POST-AUTH answer; pa borrows from it */
	ccb__sec_negotiated neg;
	ccb__sec_postauth pa;
	ccb__auth_result ar;
	uint8_t key[CCB_SESSION_KEY_LEN_AES];
	size_t key_len;
	int crypto;
	bool have_key;
	char auth_failure[CCB_ERROR_DETAIL_SIZE]; /* why an optional method failed */
} client_hs;

/* Our policy for permission CLIENT, with security:recommended's values as
 * defaults (see security.h), then the REQUEST sent: int 60010, ad, EOM. */
static ccb_err client_send_request(client_hs *h)
{
	const ccb_sec_client_config *cfg = h->cfg;
	ccb__sec_request_params rp;
	char pub[CCB_ECDH_PUB_B64_SIZE];
	ccb_classad *req = NULL;
	ccb_err rc;

	ccb__sec_config_init(&h->c);
	h->c.authentication = ccb__sec_to_level(cfg->authentication, CCB_SEC_OPTIONAL);
	h->c.encryption = ccb__sec_to_level(cfg->encryption, CCB_SEC_REQUIRED);
	h->c.integrity = ccb__sec_to_level(cfg->integrity, CCB_SEC_REQUIRED);
	ccb__sec_usable_methods(cfg->auth_methods ? cfg->auth_methods : CCB__SEC_DEFAULT_METHODS,
				false, false, h->methods, sizeof h->methods);
	h->c.auth_methods = h->methods;
	h->c.crypto_methods = h->cryptos;
	h->c.session_duration = cfg->session_duration > 0 ? cfg->session_duration : -1;
	h->c.trust_domain = cfg->trust_domain;
	if ((rc = ccb__sec_policy_build(&h->c, &h->pol, h->err)) ||
	    (rc = ccb__ecdh_generate(&h->k, h->err)) || (rc = ccb__ecdh_public_b64(h->k, pub, h->err)))
		return rc;
	rp = (ccb__sec_request_params){
		.policy = &h->pol,
		.command = h->command,
		.auth_command = h->auth_command,
		.ecdh_public_key = pub,
		.subsystem = cfg->subsystem,
		.connect_sinful = h->connect_sinful,
	};
	if ((rc = ccb__sec_build_request(&rp, &req, h->err)))
		return rc;
	if (ccb_stream_put_int(h->s, CCB_DC_AUTHENTICATE) ||
	    (rc = ccb__sec_put_ad(h->s, req, h->err, "send security request")))
		rc = rc ? rc : ccb__sec_stream_fail(h->s, h->err, "send security request");
	ccb_classad_free(req);
	return rc;
}

/* The RESPONSE: what the server decided, checked against what we require. */
static ccb_err client_read_response(client_hs *h)
{
	const char *off = NULL;
	ccb_err rc;

	/* A C++ server that refuses closes here without saying why (its log
	 * has the reason), so neither can we. */
	if ((rc = ccb__sec_get_ad(h->s, &h->resp, h->err, "read security response"))) {
		if (rc == CCB_ERR_CLOSED)
			ccb_error_set(h->err, CCB_ERR_CLOSED,
				      "server %s closed the connection after the DC_AUTHENTICATE "
				      "request for command %d, before answering",
				      ccb_stream_peer_name(h->s), h->command);
		return rc;
	}
	if ((rc = ccb__sec_parse_response(h->resp, &h->neg, h->err)))
		return rc;
	ccb__sec_copy_attr(h->resp, "RemoteVersion", h->info->peer_version,
			   sizeof h->info->peer_version);
	/* A server that answers NO to what we require is downgrading us: a
	 * reconciling server gives YES or closes (security-handshake.md §2.1). */
	if (h->c.encryption == CCB_SEC_REQUIRED && h->neg.encryption != CCB_SEC_ACT_YES)
		off = "Encryption";
	else if (h->c.integrity == CCB_SEC_REQUIRED && h->neg.integrity != CCB_SEC_ACT_YES)
		off = "Integrity";
	else if (h->c.authentication == CCB_SEC_REQUIRED && h->neg.authentication != CCB_SEC_ACT_YES)
		off = "Authentication";
	if (off)
		return ccb_error_set(h->err, CCB_ERR_UNSUPPORTED,
				     "server answered %s NO although this client requires it", off);
	/* With the server's ECDH point the key is derived for the first
	 * CryptoMethods entry, which must be present (possibly empty: no
	 * method, the stream stays plaintext); condor_secman.cpp:2372-2391. */
	if (h->neg.server_ecdh && ccb_classad_type(h->resp, "CryptoMethods") != CCB_VAL_STRING)
		return ccb_error_set(h->err, CCB_ERR_PROTOCOL,
				     "server sent ECDHPublicKey but no CryptoMethods");
	return CCB_OK;
}

/* Authentication, when negotiated: the method loop of auth.c. A failure
 * the server does not require is logged and the handshake goes on. */
static ccb_err client_authenticate(client_hs *h)
{
	const ccb_sec_client_config *cfg = h->cfg;
	ccb__auth_params ap;
	ccb_err rc;

	if (h->neg.authentication != CCB_SEC_ACT_YES)
		return CCB_OK;
	ap = (ccb__auth_params){.uid_domain = ccb__sec_uid_domain(cfg->uid_domain),
				.claimtobe_user = cfg->claimtobe_user,
				.token = cfg->token,
				.token_file = cfg->token_file,
				.token_directory = cfg->token_directory,
				.subsystem = cfg->subsystem ? cfg->subsystem : "TOOL",
				.server_trust_domain = h->neg.trust_domain,
				.server_issuer_keys = h->neg.issuer_keys,
				.peer_version = h->neg.peer_version,
				.ssl_ca_file = cfg->ssl_ca_file,
				.ssl_ca_dir = cfg->ssl_ca_dir,
				.ssl_client_certfile = cfg->ssl_certfile,
				.ssl_client_keyfile = cfg->ssl_keyfile,
				.ssl_server_host = cfg->ssl_server_host,
				.ssl_skip_host_check = cfg->ssl_skip_host_check};
	rc = ccb__auth_client(h->s, h->neg.auth_methods, &ap, &h->ar, h->err);
	if (rc && (h->neg.auth_required || rc != CCB_ERR_AUTH))
		return rc;
	h->info->authenticated = rc == CCB_OK;
	if (h->info->authenticated)
		snprintf(h->info->method, sizeof h->info->method, "%s", h->ar.method_name);
	else if (h->err) {
		snprintf(h->auth_failure, sizeof h->auth_failure, "%s", h->err->detail);
		CCB_LOG(CCB_LOG_DEBUG, "security: %s: authentication failed but was not "
			"required, going on: %s", ccb_stream_peer_name(h->s), h->auth_failure);
	}
	return CCB_OK;
}

/* The session key, from ECDH (or, from a server answering a keyless
 * request, sent after authentication, §6.2), installed as negotiated. */
static ccb_err client_install_key(client_hs *h)
{
	ccb_err rc;

	if (h->neg.server_ecdh) {
		h->crypto = h->neg.crypto;
		h->key_len = ccb__sec_crypto_key_len(h->crypto);
		if ((rc = ccb__ecdh_session_key(h->k, h->neg.server_ecdh, h->key, h->key_len, h->err)))
			return rc;
		h->have_key = true;
	} else if (h->ar.has_key) {
		h->crypto = h->ar.key_protocol;
		h->key_len = h->ar.key_len < sizeof h->key ? h->ar.key_len : sizeof h->key;
		memcpy(h->key, h->ar.key, h->key_len);
		h->have_key = true;
	}
	if ((rc = ccb__sec_install_key(h->s, h->have_key ? h->key : NULL, h->key_len, h->crypto,
				       h->neg.encryption == CCB_SEC_ACT_YES,
				       h->neg.integrity == CCB_SEC_ACT_YES, h->err)))
		return rc;
	ccb__sec_crypto_info(h->s, h->info);
	return CCB_OK;
}

/* The server's POST-AUTH refusal, saying who it refused: the user it
 * names and how we authenticated, or why we are unauthenticated. */
static ccb_err client_denied(client_hs *h)
{
	const char *user = h->pa.user && *h->pa.user ? h->pa.user : CCB_UNAUTHENTICATED_USER;
	const char *code = h->pa.return_code;

	if (h->info->authenticated)
		return ccb_error_set(h->err, CCB_ERR_NOT_AUTHORIZED,
				     "server answered %s to command %d: user '%s' (authenticated by "
				     "%s) not authorized", code, h->command, user, h->info->method);
	if (h->neg.authentication != CCB_SEC_ACT_YES)
		return ccb_error_set(h->err, CCB_ERR_NOT_AUTHORIZED,
				     "server answered %s to command %d: no authentication was "
				     "negotiated, so the peer is unauthenticated (%s)",
				     code, h->command, user);
	return ccb_error_set(h->err, CCB_ERR_NOT_AUTHORIZED,
			     "server answered %s to command %d: authentication failed and was "
			     "optional, so the peer is unauthenticated (%s): %s",
			     code, h->command, user, h->auth_failure);
}

/* The POST-AUTH answer: the session id, who the server says we are, and
 * whether we may run the command; then keep the session for later. */
static ccb_err client_read_postauth(client_hs *h)
{
	const ccb_sec_client_config *cfg = h->cfg;
	ccb_err rc;

	if ((rc = ccb__sec_get_ad(h->s, &h->post, h->err, "read post-authentication answer")))
		return rc;
	if ((rc = ccb__sec_parse_postauth(h->post, &h->pa, h->err)) == CCB_ERR_NOT_AUTHORIZED)
		return client_denied(h);
	if (rc)
		return rc;
	snprintf(h->info->session_id, sizeof h->info->session_id, "%s", h->pa.sid);
	snprintf(h->info->user, sizeof h->info->user, "%s", h->pa.user ? h->pa.user : "");
	if (cfg->sessions && h->connect_sinful && *h->connect_sinful && h->have_key &&
	    h->crypto != CCB_SEC_CRYPTO_NONE)
		client_keep(cfg, h->connect_sinful, &h->neg, &h->pa, h->info, h->key, h->key_len,
			    h->crypto);
	return CCB_OK;
}

ccb_err ccb_sec_client_start(ccb_stream *s, const ccb_sec_client_config *cfg, int command,
			     int auth_command, const char *connect_sinful, ccb_sec_info *info,
			     ccb_error *err)
{
	static const ccb_sec_client_config defaults = {0};
	client_hs h;
	ccb_err rc;

	if (!s || !info)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_sec_client_start: NULL argument");
	if (!cfg)
		cfg = &defaults;
	memset(info, 0, sizeof *info);
	h = (client_hs){.s = s, .cfg = cfg, .command = command, .auth_command = auth_command,
			.connect_sinful = connect_sinful, .info = info, .err = err,
			.crypto = CCB_SEC_CRYPTO_NONE};
	ccb__sec_usable_crypto(cfg->crypto_methods ? cfg->crypto_methods : CCB_SEC_DEFAULT_CRYPTO,
			       h.cryptos, sizeof h.cryptos);
	/* A cached session for this address and command: resume it. */
	if (cfg->sessions && connect_sinful && *connect_sinful && resumable(command)) {
		ccb__sess_entry e = {0};
		if (ccb__sess_map_lookup(cfg->sessions->cache, connect_sinful, command, ccb_wall_s(),
					 &e) == CCB_OK) {
			rc = client_resume(s, cfg, &e, command, connect_sinful, h.cryptos, info, err);
			ccb__sess_entry_clear(&e);
			return rc;
		}
	}
	if (!(rc = client_send_request(&h)) && !(rc = client_read_response(&h)) &&
	    !(rc = client_authenticate(&h)) && !(rc = client_install_key(&h)))
		rc = client_read_postauth(&h);
	OPENSSL_cleanse(h.key, sizeof h.key);
	OPENSSL_cleanse(h.ar.key, sizeof h.ar.key);
	ccb_classad_free(h.resp);
	ccb_classad_free(h.post);
	ccb__sec_policy_clear(&h.pol);
	ccb__ecdh_free(h.k);
	return rc;
}

ccb_err ccb_sec_client_query_reply(ccb_stream *s, bool *authorized, ccb_error *err)
{
	ccb_classad *ad = NULL;
	ccb_err rc = ccb__sec_get_ad(s, &ad, err, "read DC_SEC_QUERY answer");

	if (rc)
		return rc;
	if (ccb_classad_get_bool(ad, "AuthorizationSucceeded", authorized))
		rc = ccb_error_set(err, CCB_ERR_PROTOCOL, "DC_SEC_QUERY answer has no AuthorizationSucceeded");
	ccb_classad_free(ad);
	return rc;
}

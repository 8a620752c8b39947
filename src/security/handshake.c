/*
 * DC_AUTHENTICATE, client and server (security-handshake.md §3, §5): the
 * new-session exchange, built from the policy (policy.c), authentication
 * (auth.c) and ECDH (ecdh.c) pieces.
 */
#include <arpa/inet.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ccb/classad.h"
#include "ccb/security.h"
#include "cedar/stream_internal.h"
#include "classad/classad_internal.h"
#include "security/auth.h"
#include "security/ecdh.h"
#include "security/policy.h"
#include "security/session_crypto.h"
#include "security/session_cache.h"

#define DEFAULT_METHODS "FS,TOKEN,SSL"

const char *ccb_perm_name(ccb_perm perm)
{
	static const char *const names[] = {"ALLOW", "READ", "WRITE", "ADMINISTRATOR", "DAEMON"};
	return perm < CCB_PERM_COUNT ? names[perm] : "?";
}

static ccb__sec_level to_level(ccb_sec_level l, ccb__sec_level dflt)
{
	switch (l) {
	case CCB_SEC_LEVEL_NEVER: return CCB_SEC_NEVER;
	case CCB_SEC_LEVEL_OPTIONAL: return CCB_SEC_OPTIONAL;
	case CCB_SEC_LEVEL_PREFERRED: return CCB_SEC_PREFERRED;
	case CCB_SEC_LEVEL_REQUIRED: return CCB_SEC_REQUIRED;
	case CCB_SEC_LEVEL_DEFAULT: break;
	}
	return dflt;
}

/* The methods of `list` this build implements for one side, as a comma list;
 * `no_ssl` drops SSL (a server without a host certificate, §7.5). */
static void usable_methods(const char *list, bool server, bool no_ssl, char *out, size_t size)
{
	const char *p = list, *item;
	size_t len, used = 0;

	out[0] = '\0';
	while ((item = ccb__sec_list_next(&p, &len))) {
		char name[32];
		int bit;
		if (len >= sizeof name)
			continue;
		memcpy(name, item, len);
		name[len] = '\0';
		bit = ccb__sec_method_bit(name);
		if (!bit || !ccb__auth_method_supported(bit, server)) {
			CCB_LOG(CCB_LOG_DEBUG, "security: not %s %s: %s", server ? "accepting" : "offering",
				name, bit ? "libccb does not implement it" : "unknown method name");
			continue;
		}
		if (no_ssl && bit == CCB_AUTH_SSL) {
			CCB_LOG(CCB_LOG_DEBUG, "security: not accepting SSL: AUTH_SSL_SERVER_CERTFILE and "
				"AUTH_SSL_SERVER_KEYFILE are not both set");
			continue;
		}
		used += (size_t)snprintf(out + used, used < size ? size - used : 0, "%s%s",
					 used ? "," : "", name);
	}
	if (used >= size)
		out[0] = '\0';
}

static ccb_err stream_fail(ccb_stream *s, ccb_error *err, const char *step)
{
	const ccb_error *e = ccb_stream_error(s);
	return ccb_error_set(err, e->code, "%s: %s", step, e->detail);
}

/* Read one handshake ad (getPODClassAd rules) and end the message. */
static ccb_err get_pod_ad(ccb_stream *s, ccb_classad **ad, ccb_error *err, const char *step)
{
	ccb_cursor *c = ccb__stream_in(s);
	ccb_error e;

	*ad = NULL;
	if (!c)
		return stream_fail(s, err, step);
	if (ccb__classad_decode(c, ad, CCB_CLASSAD_DECODE_POD, &e)) {
		ccb__stream_fail(s, &e);
		return ccb_error_set(err, e.code, "%s: %s", step, e.detail);
	}
	if (ccb_stream_end_of_message(s)) {
		ccb_classad_free(*ad);
		*ad = NULL;
		return stream_fail(s, err, step);
	}
	return CCB_OK;
}

static ccb_err put_ad(ccb_stream *s, const ccb_classad *ad, ccb_error *err, const char *step)
{
	if (ccb_classad_put(s, ad, NULL) || ccb_stream_end_message(s))
		return stream_fail(s, err, step);
	return CCB_OK;
}

static void copy_attr(const ccb_classad *ad, const char *name, char *out, size_t size)
{
	const char *v = NULL;

	out[0] = '\0';
	if (ccb_classad_get_string(ad, name, &v) == CCB_OK)
		snprintf(out, size, "%s", v);
}

/* ---- client -------------------------------------------------------------- */

struct ccb_sec_sessions {
	ccb__sess_cache *cache;
};

/* A fresh 33-byte nonce in base64 (44 characters, §9.2). */
static ccb_err make_nonce(char out[48], ccb_error *err)
{
	uint8_t raw[33];
	ccb_err rc = ccb_random_bytes(raw, sizeof raw, err);

	if (rc == CCB_OK)
		EVP_EncodeBlock((unsigned char *)out, raw, sizeof raw);
	return rc;
}

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
	if ((rc = make_nonce(nonce, err)))
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
		rc = stream_fail(s, err, "send resume request");
		goto out;
	}
	rc = get_pod_ad(s, &reply, err, "read resume reply");
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
	copy_attr(reply, "RemoteVersion", info->peer_version, sizeof info->peer_version);
	if (e->policy) {
		copy_attr(e->policy, "User", info->user, sizeof info->user);
		copy_attr(e->policy, "AuthMethods", info->method, sizeof info->method);
		if (!info->peer_version[0])
			copy_attr(e->policy, "RemoteVersion", info->peer_version,
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

ccb_err ccb_sec_client_start(ccb_stream *s, const ccb_sec_client_config *cfg, int command,
			     int auth_command, const char *connect_sinful, ccb_sec_info *info,
			     ccb_error *err)
{
	static const ccb_sec_client_config defaults = {0};
	char methods[256], cryptos[64];
	ccb__sec_config c;
	ccb__sec_policy pol = {0};
	ccb__ecdh *k = NULL;
	char pub[CCB_ECDH_PUB_B64_SIZE];
	ccb_classad *req = NULL, *resp = NULL, *post = NULL;
	ccb__sec_negotiated neg;
	ccb__sec_postauth pa;
	ccb__auth_params ap;
	ccb__auth_result ar = {0};
	uint8_t key[CCB_SESSION_KEY_LEN_AES];
	size_t key_len = 0;
	int crypto = CCB_SEC_CRYPTO_NONE;
	bool have_key = false;
	ccb_err rc;

	if (!s || !info)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_sec_client_start: NULL argument");
	if (!cfg)
		cfg = &defaults;
	memset(info, 0, sizeof *info);
	ccb__sec_usable_crypto(cfg->crypto_methods ? cfg->crypto_methods : CCB_SEC_DEFAULT_CRYPTO,
			       cryptos, sizeof cryptos);
	/* A cached session for this address and command: resume it. */
	if (cfg->sessions && connect_sinful && *connect_sinful && resumable(command)) {
		ccb__sess_entry e = {0};
		if (ccb__sess_map_lookup(cfg->sessions->cache, connect_sinful, command, ccb_wall_s(),
					 &e) == CCB_OK) {
			rc = client_resume(s, cfg, &e, command, connect_sinful, cryptos, info, err);
			ccb__sess_entry_clear(&e);
			return rc;
		}
	}
	/* Permission CLIENT, with security:recommended's values as defaults. */
	ccb__sec_config_init(&c);
	c.authentication = to_level(cfg->authentication, CCB_SEC_OPTIONAL);
	c.encryption = to_level(cfg->encryption, CCB_SEC_REQUIRED);
	c.integrity = to_level(cfg->integrity, CCB_SEC_REQUIRED);
	usable_methods(cfg->auth_methods ? cfg->auth_methods : DEFAULT_METHODS, false, false,
		       methods, sizeof methods);
	c.auth_methods = methods;
	c.crypto_methods = cryptos;
	c.session_duration = cfg->session_duration > 0 ? cfg->session_duration : -1;
	c.trust_domain = cfg->trust_domain;
	if ((rc = ccb__sec_policy_build(&c, &pol, err)) || (rc = ccb__ecdh_generate(&k, err)) ||
	    (rc = ccb__ecdh_public_b64(k, pub, err)))
		goto out;
	{
		ccb__sec_request_params rp = {
			.policy = &pol,
			.command = command,
			.auth_command = auth_command,
			.ecdh_public_key = pub,
			.subsystem = cfg->subsystem,
			.connect_sinful = connect_sinful,
		};
		if ((rc = ccb__sec_build_request(&rp, &req, err)))
			goto out;
	}
	/* Step 1: int 60010, REQUEST, EOM. */
	if (ccb_stream_put_int(s, CCB_DC_AUTHENTICATE) || (rc = put_ad(s, req, err, "send security request"))) {
		rc = rc ? rc : stream_fail(s, err, "send security request");
		goto out;
	}
	/* Step 2: RESPONSE. A close here is HTCondor's way of refusing. */
	if ((rc = get_pod_ad(s, &resp, err, "read security response"))) {
		if (rc == CCB_ERR_CLOSED)
			/* HTCondor says no more than that: its log has the reason. */
			ccb_error_prefix(err, "server closed the connection without answering the "
					      "security request for command %d (it refuses this "
					      "command, this client's security policy, or more "
					      "connections; its log says which): ", command);
		goto out;
	}
	if ((rc = ccb__sec_parse_response(resp, &neg, err)))
		goto out;
	copy_attr(resp, "RemoteVersion", info->peer_version, sizeof info->peer_version);
	/* A server that answers NO to what we require is downgrading us: a
	 * reconciling server gives YES or closes (security-handshake.md §2.1). */
	if ((c.encryption == CCB_SEC_REQUIRED && neg.encryption != CCB_SEC_ACT_YES) ||
	    (c.integrity == CCB_SEC_REQUIRED && neg.integrity != CCB_SEC_ACT_YES) ||
	    (c.authentication == CCB_SEC_REQUIRED && neg.authentication != CCB_SEC_ACT_YES)) {
		rc = ccb_error_set(err, CCB_ERR_AUTH,
				   "server turned off authentication, encryption or integrity "
				   "that this client requires");
		goto out;
	}
	/* With the server's ECDH point the key is derived for the first
	 * CryptoMethods entry, which must be present (possibly empty: no
	 * method, the stream stays plaintext); condor_secman.cpp:2372-2391. */
	if (neg.server_ecdh && ccb_classad_type(resp, "CryptoMethods") != CCB_VAL_STRING) {
		rc = ccb_error_set(err, CCB_ERR_PROTOCOL,
				   "server sent ECDHPublicKey but no CryptoMethods");
		goto out;
	}
	/* Step 3: authentication, when negotiated. */
	if (neg.authentication == CCB_SEC_ACT_YES) {
		ap = (ccb__auth_params){.uid_domain = ccb__sec_uid_domain(cfg->uid_domain),
					.claimtobe_user = cfg->claimtobe_user,
					.token = cfg->token,
					.token_file = cfg->token_file,
					.token_directory = cfg->token_directory,
					.subsystem = cfg->subsystem ? cfg->subsystem : "TOOL",
					.server_trust_domain = neg.trust_domain,
					.server_issuer_keys = neg.issuer_keys,
					.peer_version = neg.peer_version,
					.ssl_ca_file = cfg->ssl_ca_file,
					.ssl_ca_dir = cfg->ssl_ca_dir,
					.ssl_client_certfile = cfg->ssl_certfile,
					.ssl_client_keyfile = cfg->ssl_keyfile,
					.ssl_server_host = cfg->ssl_server_host,
					.ssl_skip_host_check = cfg->ssl_skip_host_check};
		rc = ccb__auth_client(s, neg.auth_methods, &ap, &ar, err);
		if (rc && (neg.auth_required || rc != CCB_ERR_AUTH))
			goto out;
		info->authenticated = rc == CCB_OK;
		if (info->authenticated)
			snprintf(info->method, sizeof info->method, "%s", ar.method_name);
		else
			CCB_LOG(CCB_LOG_DEBUG, "security: %s: authentication failed but was not "
				"required, going on: %s", ccb_stream_peer_name(s), err ? err->detail : "");
	}
	/* Step 4: the session key, from ECDH (or, from a server answering a
	 * keyless request, sent after authentication, §6.2), installed as
	 * negotiated. */
	if (neg.server_ecdh) {
		crypto = neg.crypto;
		key_len = ccb__sec_crypto_key_len(crypto);
		if ((rc = ccb__ecdh_session_key(k, neg.server_ecdh, key, key_len, err)))
			goto out;
		have_key = true;
	} else if (ar.has_key) {
		crypto = ar.key_protocol;
		key_len = ar.key_len < sizeof key ? ar.key_len : sizeof key;
		memcpy(key, ar.key, key_len);
		have_key = true;
	}
	if ((rc = ccb__sec_install_key(s, have_key ? key : NULL, key_len, crypto,
				       neg.encryption == CCB_SEC_ACT_YES,
				       neg.integrity == CCB_SEC_ACT_YES, err)))
		goto out;
	ccb__sec_crypto_info(s, info);
	/* Step 5: POST-AUTH. */
	if ((rc = get_pod_ad(s, &post, err, "read post-authentication answer")))
		goto out;
	if ((rc = ccb__sec_parse_postauth(post, &pa, err)))
		goto out;
	snprintf(info->session_id, sizeof info->session_id, "%s", pa.sid);
	snprintf(info->user, sizeof info->user, "%s", pa.user ? pa.user : "");
	if (cfg->sessions && connect_sinful && *connect_sinful && have_key &&
	    crypto != CCB_SEC_CRYPTO_NONE)
		client_keep(cfg, connect_sinful, &neg, &pa, info, key, key_len, crypto);
out:
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(ar.key, sizeof ar.key);
	ccb_classad_free(req);
	ccb_classad_free(resp);
	ccb_classad_free(post);
	ccb__sec_policy_clear(&pol);
	ccb__ecdh_free(k);
	return rc;
}

ccb_err ccb_sec_client_query_reply(ccb_stream *s, bool *authorized, ccb_error *err)
{
	ccb_classad *ad = NULL;
	ccb_err rc = get_pod_ad(s, &ad, err, "read DC_SEC_QUERY answer");

	if (rc)
		return rc;
	if (ccb_classad_get_bool(ad, "AuthorizationSucceeded", authorized))
		rc = ccb_error_set(err, CCB_ERR_PROTOCOL, "DC_SEC_QUERY answer has no AuthorizationSucceeded");
	ccb_classad_free(ad);
	return rc;
}

/* ---- authorization --------------------------------------------------------- */

/* One ALLOW/DENY entry: "user@domain[/host]" matches the identity (and the
 * host part the peer IP); an entry without '@' is a host pattern. */
static bool entry_matches(const char *entry, const char *user, const char *ip)
{
	char buf[512];
	char *slash;

	if (!strcmp(entry, "*"))
		return true;
	snprintf(buf, sizeof buf, "%s", entry);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	if (!strchr(buf, '@'))
		return fnmatch(buf, ip ? ip : "", 0) == 0;
	if (fnmatch(buf, user ? user : "", FNM_CASEFOLD) != 0)
		return false;
	return !slash || fnmatch(slash, ip ? ip : "", 0) == 0;
}

static bool list_matches(const char *list, const char *user, const char *ip)
{
	const char *p = list, *item;
	size_t len;

	while ((item = ccb__sec_list_next(&p, &len))) {
		char entry[512];
		if (len >= sizeof entry)
			continue;
		memcpy(entry, item, len);
		entry[len] = '\0';
		if (entry_matches(entry, user, ip))
			return true;
	}
	return false;
}

bool ccb_sec_authorized(const ccb_sec_server_config *cfg, ccb_perm perm, const char *user,
			const char *ip)
{
	const char *allow;

	if (!cfg || perm >= CCB_PERM_COUNT)
		return false;
	if (cfg->deny[perm] && list_matches(cfg->deny[perm], user, ip))
		return false;
	allow = cfg->allow[perm];
	if (!allow)
		allow = perm == CCB_PERM_READ || perm == CCB_PERM_ALLOW ? "*" : "";
	if (list_matches(allow, user, ip))
		return true;
	/* Neither list matched: a level is granted when a level directly
	 * implying it is (WRITE implies READ; ADMINISTRATOR and DAEMON imply
	 * WRITE), H:src/condor_io/condor_ipverify.cpp:750-780,
	 * H:src/condor_utils/condor_perms.cpp:144-159. */
	switch (perm) {
	case CCB_PERM_READ:
		return ccb_sec_authorized(cfg, CCB_PERM_WRITE, user, ip);
	case CCB_PERM_WRITE:
		return ccb_sec_authorized(cfg, CCB_PERM_ADMINISTRATOR, user, ip) ||
		       ccb_sec_authorized(cfg, CCB_PERM_DAEMON, user, ip);
	default:
		return false;
	}
}

/* ---- server ---------------------------------------------------------------- */

ccb_err ccb_sec_sessions_new(size_t max_sessions, ccb_sec_sessions **out, ccb_error *err)
{
	ccb_sec_sessions *s;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_sec_sessions_new: NULL out");
	s = calloc(1, sizeof *s);
	if (s && !(s->cache = ccb__sess_cache_new(max_sessions))) {
		free(s);
		s = NULL;
	}
	if (!(*out = s))
		return ccb_error_set(err, CCB_ERR_NOMEM, "new session store of %zu sessions: out of memory",
				     max_sessions ? max_sessions : 4096);
	return CCB_OK;
}

void ccb_sec_sessions_free(ccb_sec_sessions *s)
{
	if (s) {
		ccb__sess_cache_free(s->cache);
		free(s);
	}
}

ccb__sess_cache *ccb__sec_sessions_cache(ccb_sec_sessions *s)
{
	return s->cache;
}

size_t ccb_sec_sessions_count(ccb_sec_sessions *s)
{
	return s ? ccb__sess_count(s->cache) : 0;
}

/* Keep a new session: HTCondor caches it for SessionDuration + 20 s with a
 * lease of SessionLease + 20 s (daemon_command.cpp:1761-1837). The policy
 * ad holds what a resumption needs: the identity and how it was proven. */
static void keep_session(const ccb_sec_server_config *cfg, const char *sid, const uint8_t *key,
			 size_t key_len, int crypto, const ccb_classad *resp,
			 const ccb_sec_command *cmd, const ccb__auth_result *ar,
			 const ccb__sec_outcome *o)
{
	ccb__sess_entry e = {.id = (char *)sid, .key_len = key_len, .crypto = crypto};
	const char *dur = NULL;
	int64_t lease = 0, now = ccb_wall_s();
	ccb_classad *pol = ccb__classad_new();

	if (!cfg->sessions || !pol)
		goto out;
	memcpy(e.key, key, key_len);
	if (ccb_classad_get_string(resp, "SessionDuration", &dur) == CCB_OK && atoi(dur) > 0)
		e.expiry = now + atoi(dur) + 20;
	if (ccb_classad_get_int(resp, "SessionLease", &lease) == CCB_OK && lease > 0)
		e.lease = lease + 20;
	if (ccb_classad_set_string(pol, "User", cmd->info.user) ||
	    ccb_classad_set_string(pol, "AuthMethods", cmd->info.method) ||
	    ccb_classad_set_bool(pol, "Authenticated", cmd->info.authenticated) ||
	    ccb_classad_set_string(pol, "TokenScopes", ar->token_scopes) ||
	    ccb_classad_set_string(pol, "RemoteVersion", cmd->info.peer_version) ||
	    ccb_classad_set_string(pol, "Encryption", ccb__sec_action_name(o->encryption)) ||
	    ccb_classad_set_string(pol, "Integrity", ccb__sec_action_name(o->integrity)))
		goto out;
	e.policy = pol;
	ccb__sess_add(cfg->sessions->cache, &e, now, NULL);
out:
	OPENSSL_cleanse(e.key, sizeof e.key);
	ccb_classad_free(pol);
}

/* A token with condor:/<PERM> scopes authorizes only those levels
 * (LimitAuthorization, security-handshake.md §7.4 and §5 step 9). */
static bool scopes_allow(const char *scopes, ccb_perm perm)
{
	const char *p = scopes, *item;
	size_t len, n = 0;
	char want[64];

	snprintf(want, sizeof want, "condor:/%s", ccb_perm_name(perm));
	while ((item = ccb__sec_list_next(&p, &len))) {
		if (len < 8 || strncmp(item, "condor:/", 8))
			continue;
		n++;
		if (len == strlen(want) && !strncasecmp(item, want, len))
			return true;
	}
	return n == 0;
}

/* The AuthToken* attributes of a DC_SEC_QUERY answer (§9.3). */
static ccb_err add_token_attrs(ccb_classad *ad, const ccb__auth_result *ar)
{
	ccb_err rc = CCB_OK;

	if (ar->method != CCB_AUTH_TOKEN)
		return CCB_OK;
	if (ar->token_id[0])
		rc = ccb_classad_set_string(ad, "AuthTokenId", ar->token_id);
	if (!rc && ar->token_issuer[0])
		rc = ccb_classad_set_string(ad, "AuthTokenIssuer", ar->token_issuer);
	if (!rc && ar->token_subject[0])
		rc = ccb_classad_set_string(ad, "AuthTokenSubject", ar->token_subject);
	if (!rc && ar->token_scopes[0])
		rc = ccb_classad_set_string(ad, "AuthTokenScopes", ar->token_scopes);
	return rc;
}

static void peer_ip(int fd, char *out, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	snprintf(out, size, "%s", "");
	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)size);
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)size);
}

/* Session ids as C++ makes them: host:pid:time:counter (daemon_command.cpp:967-969). */
static void new_session_id(char *out, size_t size)
{
	static atomic_uint counter;
	char host[128] = "localhost";

	gethostname(host, sizeof host - 1);
	snprintf(out, size, "%s:%d:%lld:%u", host, (int)getpid(), (long long)ccb_wall_s(),
		 atomic_fetch_add(&counter, 1));
}

static void server_policy_config(const ccb_sec_server_config *cfg, ccb_perm perm,
				 ccb__sec_config *c, char *methods, size_t msize, char *cryptos,
				 size_t csize)
{
	const char *m = cfg->auth_methods[perm] ? cfg->auth_methods[perm]
						: cfg->auth_methods[CCB_PERM_ALLOW];
	const char *cm = cfg->crypto_methods[perm] ? cfg->crypto_methods[perm]
						   : cfg->crypto_methods[CCB_PERM_ALLOW];
	/* security:recommended: everything REQUIRED except READ authentication. */
	ccb__sec_level auth_dflt = perm == CCB_PERM_READ ? CCB_SEC_OPTIONAL : CCB_SEC_REQUIRED;

	ccb__sec_config_init(c);
	c->authentication = to_level(cfg->authentication[perm],
				     to_level(cfg->authentication[CCB_PERM_ALLOW], auth_dflt));
	c->encryption = to_level(cfg->encryption[perm],
				 to_level(cfg->encryption[CCB_PERM_ALLOW], CCB_SEC_REQUIRED));
	c->integrity = to_level(cfg->integrity[perm],
				to_level(cfg->integrity[CCB_PERM_ALLOW], CCB_SEC_REQUIRED));
	c->allow_perm = perm == CCB_PERM_ALLOW;
	usable_methods(m ? m : DEFAULT_METHODS, true, !cfg->ssl_certfile || !cfg->ssl_keyfile,
		       methods, msize);
	c->auth_methods = methods;
	ccb__sec_usable_crypto(cm ? cm : CCB_SEC_DEFAULT_CRYPTO, cryptos, csize);
	c->crypto_methods = cryptos;
	c->daemon = true;
	c->trust_domain = cfg->trust_domain;
	/* IssuerKeys lets clients pick a token we can verify (§4.2). */
	if (cfg->password_directory || cfg->pool_signing_key_file)
		c->issuer_keys = "POOL";
}

/* A resumption request for a session we do not have (§9.2). */
static ccb_err refuse_resume(ccb_stream *s, const ccb_classad *req, ccb_error *err)
{
	bool want_reply = false;

	ccb_classad_get_bool(req, "ResumeResponse", &want_reply);
	if (want_reply) {
		ccb_classad *ad = ccb__classad_new();
		if (ad && ccb_classad_set_string(ad, "ReturnCode", "SID_NOT_FOUND") == CCB_OK)
			put_ad(s, ad, NULL, "send SID_NOT_FOUND");
		ccb_classad_free(ad);
	}
	return ccb_error_set(err, CCB_ERR_AUTH, "client asked to resume an unknown session");
}

/* The answer to a known session: ReturnCode, our version and a fresh
 * 33-byte nonce in base64 (§9.2; the nonce makes the digests unique). */
static ccb_err send_resume_reply(ccb_stream *s, ccb_error *err)
{
	char nonce[48];
	ccb_classad *ad = ccb__classad_new();
	ccb_err rc;

	if (!ad)
		return ccb_error_set(err, CCB_ERR_NOMEM, "resume reply");
	if (!(rc = make_nonce(nonce, err))) {
		if (ccb_classad_set_string(ad, "ReturnCode", "AUTHORIZED") ||
		    ccb_classad_set_string(ad, "RemoteVersion", ccb__sec_version_string()) ||
		    ccb_classad_set_string(ad, "Nonce", nonce))
			rc = ccb_error_set(err, CCB_ERR_NOMEM, "resume reply");
		else
			rc = put_ad(s, ad, err, "send resume reply");
	}
	ccb_classad_free(ad);
	return rc;
}

/* Resume a session we negotiated earlier (§9.2, daemon_command.cpp:739-912):
 * no re-authentication and no POST-AUTH; the cached key goes back on, and
 * an unauthorized command just gets the connection closed. */
static ccb_err resume(ccb_stream *s, const ccb_sec_server_config *cfg, const ccb_classad *req,
		      ccb_sec_command *cmd, ccb_error *err)
{
	const char *sid = NULL, *user = "", *method = "", *scopes = "";
	bool want_reply = false, authenticated = false;
	int64_t command, auth_command = 0, perm;
	ccb__sess_entry e = {0};
	ccb_err rc;

	if (!cfg->sessions || ccb_classad_get_string(req, "Sid", &sid) ||
	    ccb__sess_lookup(cfg->sessions->cache, sid, ccb_wall_s(), &e))
		return refuse_resume(s, req, err);
	if (ccb_classad_get_int(req, "Command", &command)) {
		rc = ccb_error_set(err, CCB_ERR_PROTOCOL, "resume request has no integer Command");
		goto out;
	}
	if (command == CCB_DC_AUTHENTICATE || command == CCB_DC_SEC_QUERY)
		ccb_classad_get_int(req, "AuthCommand", &auth_command);
	perm = cfg->command_perm((int)(auth_command ? auth_command : command), cfg->user);
	if (perm < 0 || perm >= CCB_PERM_COUNT) {
		rc = ccb_error_set(err, CCB_ERR_NOT_FOUND, "unknown command %lld", (long long)command);
		goto out;
	}
	ccb_classad_get_bool(req, "ResumeResponse", &want_reply);
	/* The reply goes before authorization is checked, as in C++. */
	if (want_reply && (rc = send_resume_reply(s, err)))
		goto out;
	/* The session's key as negotiated: DaemonCommandProtocol takes the
	 * cached key and policy through EnableCrypto (daemon_command.cpp:855-912). */
	if ((rc = ccb__sec_install_key(s, e.key, e.key_len, e.crypto,
				       ccb__sec_policy_yes(e.policy, "Encryption"),
				       ccb__sec_policy_yes(e.policy, "Integrity"), err))) {
		ccb_error_prefix(err, "resumed session %s: ", sid);
		goto out;
	}
	ccb_classad_get_string(e.policy, "User", &user);
	ccb_classad_get_string(e.policy, "AuthMethods", &method);
	ccb_classad_get_string(e.policy, "TokenScopes", &scopes);
	ccb_classad_get_bool(e.policy, "Authenticated", &authenticated);
	cmd->command = (int)command;
	cmd->negotiated = cmd->resumed = true;
	cmd->perm = (ccb_perm)perm;
	cmd->info.authenticated = authenticated;
	ccb__sec_crypto_info(s, &cmd->info);
	snprintf(cmd->info.user, sizeof cmd->info.user, "%s", user);
	snprintf(cmd->info.method, sizeof cmd->info.method, "%s", method);
	snprintf(cmd->info.session_id, sizeof cmd->info.session_id, "%s", sid);
	CCB_LOG(CCB_LOG_DEBUG, "security: %s: command %lld resumes session %s (%s as %s; crypto %s, "
		"encryption %s, integrity %s)", ccb_stream_peer_name(s), (long long)command, sid,
		method[0] ? method : "not authenticated", user,
		cmd->info.crypto[0] ? cmd->info.crypto : "none", cmd->info.encrypted ? "on" : "off",
		cmd->info.integrity ? "on" : "off");
	{
		bool allowed = ccb_sec_authorized(cfg, cmd->perm, user, cmd->peer_ip) &&
			       scopes_allow(scopes, cmd->perm);
		if (command == CCB_DC_SEC_QUERY) {
			ccb_classad *reply = ccb__classad_new();
			rc = reply && !ccb_classad_set_bool(reply, "AuthorizationSucceeded", allowed)
				     ? put_ad(s, reply, err, "send DC_SEC_QUERY answer")
				     : ccb_error_set(err, CCB_ERR_NOMEM, "DC_SEC_QUERY answer");
			ccb_classad_free(reply);
		} else if (!allowed) {
			rc = ccb_error_set(err, CCB_ERR_NOT_AUTHORIZED,
					   "%s is not allowed %s (resumed session, command %lld)", user,
					   ccb_perm_name(cmd->perm), (long long)command);
		} else {
			rc = CCB_OK;
		}
	}
out:
	ccb__sess_entry_clear(&e);
	return rc;
}

ccb_err ccb_sec_server_accept(ccb_stream *s, const ccb_sec_server_config *cfg,
			      ccb_sec_command *cmd, ccb_error *err)
{
	int64_t first, command, auth_command = 0, perm_of;
	ccb_classad *req = NULL, *resp = NULL, *post = NULL, *reply = NULL;
	ccb__sec_policy pol = {0};
	ccb__sec_config c;
	ccb__sec_outcome out;
	ccb__ecdh *k = NULL;
	char pub[CCB_ECDH_PUB_B64_SIZE], methods[256], cryptos[64], sid[160], valid[32];
	const char *peer_key = NULL, *use_session = NULL;
	ccb__auth_params ap;
	ccb__auth_result ar = {0};
	uint8_t key[CCB_SESSION_KEY_LEN_AES] = {0};
	size_t key_len = 0;
	bool allowed, have_key = false, legacy_key = false;
	ccb_err rc;

	if (!s || !cfg || !cmd || !cfg->command_perm)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_sec_server_accept: missing argument");
	memset(cmd, 0, sizeof *cmd);
	peer_ip(ccb_stream_fd(s), cmd->peer_ip, sizeof cmd->peer_ip);
	if (ccb_stream_get_int(s, &first))
		return stream_fail(s, err, "read command");
	if (first != CCB_DC_AUTHENTICATE) {
		/* A raw command: the rest of this message is its payload. Only
		 * commands open to everyone may come this way (§5 step 1). */
		perm_of = first < INT32_MIN || first > INT32_MAX ? -1 : cfg->command_perm((int)first, cfg->user);
		if (perm_of < 0)
			return ccb_error_set(err, CCB_ERR_NOT_FOUND, "unknown command %lld", (long long)first);
		if (perm_of != CCB_PERM_ALLOW)
			return ccb_error_set(err, CCB_ERR_NOT_AUTHORIZED,
					     "command %lld needs %s and arrived without a security handshake",
					     (long long)first, ccb_perm_name((ccb_perm)perm_of));
		cmd->command = (int)first;
		cmd->perm = CCB_PERM_ALLOW;
		snprintf(cmd->info.user, sizeof cmd->info.user, "%s", CCB_UNAUTHENTICATED_USER);
		return CCB_OK;
	}
	if ((rc = get_pod_ad(s, &req, err, "read security request")))
		return rc;
	copy_attr(req, "RemoteVersion", cmd->info.peer_version, sizeof cmd->info.peer_version);
	if (ccb_classad_get_string(req, "UseSession", &use_session) == CCB_OK &&
	    ccb__sec_action_parse(use_session) == CCB_SEC_ACT_YES) {
		rc = resume(s, cfg, req, cmd, err);
		goto out;
	}
	if (ccb_classad_get_int(req, "Command", &command)) {
		rc = ccb_error_set(err, CCB_ERR_PROTOCOL, "security request has no integer Command");
		goto out;
	}
	if (command == CCB_DC_AUTHENTICATE || command == CCB_DC_SEC_QUERY)
		ccb_classad_get_int(req, "AuthCommand", &auth_command);
	/* The permission that governs the handshake: the command's own, or for
	 * DC_SEC_QUERY the queried command's. */
	perm_of = cfg->command_perm((int)(auth_command ? auth_command : command), cfg->user);
	if (perm_of < 0 || perm_of >= CCB_PERM_COUNT) {
		rc = ccb_error_set(err, CCB_ERR_NOT_FOUND, "unknown command %lld",
				   (long long)(auth_command ? auth_command : command));
		goto out;
	}
	cmd->command = (int)command;
	cmd->negotiated = true;
	cmd->perm = (ccb_perm)perm_of;
	server_policy_config(cfg, cmd->perm, &c, methods, sizeof methods, cryptos, sizeof cryptos);
	if ((rc = ccb__sec_policy_build(&c, &pol, err)) || (rc = ccb__ecdh_generate(&k, err)) ||
	    (rc = ccb__ecdh_public_b64(k, pub, err)))
		goto out;
	{
		ccb__sec_server_params sp = {.policy = &pol, .ecdh_public_key = pub};
		if ((rc = ccb__sec_reconcile(&sp, req, &resp, &out, err))) {
			/* HTCondor closes silently; so does our caller */
			CCB_LOG(CCB_LOG_DEBUG, "security: %s: command %lld: policy refused: %s",
				ccb_stream_peer_name(s), (long long)command, err ? err->detail : "");
			goto out;
		}
	}
	if (!out.new_session) {
		rc = ccb_error_set(err, CCB_ERR_UNSUPPORTED,
				   "client asked for neither a new session nor a known one "
				   "(NewSession is not YES)");
		goto out;
	}
	if (out.client_ecdh) {
		ccb_classad_get_string(req, "ECDHPublicKey", &peer_key);
	} else if (out.authentication == CCB_SEC_ACT_YES) {
		/* A client without ECDH (HTCondor's legacy key exchange): with
		 * authentication we make a random key of the agreed method and
		 * send it after the method succeeds (daemon_command.cpp:1003-1044,
		 * security-handshake.md §6.2). Without authentication there is
		 * no key and the stream stays plaintext. */
		key_len = ccb__sec_crypto_key_len(out.crypto);
		if ((rc = ccb_random_bytes(key, key_len, err)))
			goto out;
		legacy_key = true;
	}
	if (out.send_response && (rc = put_ad(s, resp, err, "send security response")))
		goto out;
	if (out.authentication == CCB_SEC_ACT_YES) {
		const char *list = NULL;
		ccb_classad_get_string(resp, "AuthMethodsList", &list);
		ap = (ccb__auth_params){.uid_domain = ccb__sec_uid_domain(cfg->uid_domain),
					.password_directory = cfg->password_directory,
					.pool_signing_key_file = cfg->pool_signing_key_file,
					.trust_domain = cfg->trust_domain,
					.peer_version = out.peer_version,
					.token_max_age = cfg->token_max_age,
					.ssl_server_certfile = cfg->ssl_certfile,
					.ssl_server_keyfile = cfg->ssl_keyfile,
					.ssl_ca_file = cfg->ssl_ca_file,
					.ssl_ca_dir = cfg->ssl_ca_dir,
					.ssl_require_client_cert = cfg->ssl_require_client_cert,
					.send_key = legacy_key ? key : NULL,
					.send_key_len = key_len,
					.send_key_protocol = out.crypto};
		rc = ccb__auth_server(s, list, &ap, &ar, err);
		if (rc) {
			CCB_LOG(CCB_LOG_DEBUG, "security: %s: command %lld: authentication failed%s: %s",
				ccb_stream_peer_name(s), (long long)command,
				out.auth_required ? "" : " (not required, going on)",
				err ? err->detail : "");
			if (out.auth_required || rc != CCB_ERR_AUTH)
				goto out;
		}
		cmd->info.authenticated = rc == CCB_OK;
		if (cmd->info.authenticated)
			snprintf(cmd->info.method, sizeof cmd->info.method, "%s", ar.method_name);
	}
	/* The key: ECDH (derived now, as EnableCrypto does), or the legacy
	 * key if it went out (a failed, optional authentication drops it). */
	if (out.client_ecdh) {
		key_len = out.key_len;
		if ((rc = ccb__ecdh_session_key(k, peer_key, key, key_len, err)))
			goto out;
		have_key = true;
	} else {
		have_key = legacy_key && ar.key_sent;
	}
	if ((rc = ccb__sec_install_key(s, have_key ? key : NULL, key_len, out.crypto,
				       out.encryption == CCB_SEC_ACT_YES,
				       out.integrity == CCB_SEC_ACT_YES, err))) {
		CCB_LOG(CCB_LOG_DEBUG, "security: %s: command %lld: %s", ccb_stream_peer_name(s),
			(long long)command, err ? err->detail : "");
		goto out;
	}
	ccb__sec_crypto_info(s, &cmd->info);
	snprintf(cmd->info.user, sizeof cmd->info.user, "%s",
		 cmd->info.authenticated ? ar.peer_user : CCB_UNAUTHENTICATED_USER);
	allowed = ccb_sec_authorized(cfg, cmd->perm, cmd->info.user, cmd->peer_ip) &&
		  scopes_allow(ar.token_scopes, cmd->perm);
	new_session_id(sid, sizeof sid);
	snprintf(cmd->info.session_id, sizeof cmd->info.session_id, "%s", sid);
	CCB_LOG(CCB_LOG_DEBUG, "security: %s: command %lld: %s%s%s, identity %s; crypto %s, "
		"encryption %s, integrity %s; session %s; %s", ccb_stream_peer_name(s),
		(long long)command,
		cmd->info.authenticated ? "authenticated with " : "not authenticated",
		cmd->info.authenticated ? cmd->info.method : "",
		out.authentication == CCB_SEC_ACT_YES ? "" : " (authentication not negotiated)",
		cmd->info.user, cmd->info.crypto[0] ? cmd->info.crypto : "none",
		cmd->info.encrypted ? "on" : "off", cmd->info.integrity ? "on" : "off", sid,
		allowed ? "authorized" : "NOT authorized");
	snprintf(valid, sizeof valid, "%lld", (long long)(auth_command ? auth_command : command));
	{
		/* DC_SEC_QUERY itself is always allowed; its answer carries the
		 * verdict for the queried command (§9.3). */
		bool query = command == CCB_DC_SEC_QUERY;
		ccb__sec_postauth pa = {
			.sid = sid,
			.user = cmd->info.authenticated ? cmd->info.user : NULL,
			.return_code = allowed || query ? "AUTHORIZED" : "DENIED",
			.valid_commands = valid,
			.tried_authentication = out.authentication == CCB_SEC_ACT_YES,
		};
		if ((rc = ccb__sec_build_postauth(&pa, &post, err)) ||
		    (rc = put_ad(s, post, err, "send post-authentication answer")))
			goto out;
		if (!allowed && !query) {
			rc = ccb_error_set(err, CCB_ERR_NOT_AUTHORIZED, "%s is not allowed %s (command %lld)",
					   cmd->info.user, ccb_perm_name(cmd->perm), (long long)command);
			goto out;
		}
		if (have_key && out.crypto != CCB_SEC_CRYPTO_NONE)
			keep_session(cfg, sid, key, key_len, out.crypto, resp, cmd, &ar, &out);
		if (query) {
			reply = ccb__classad_new();
			if (!reply || ccb_classad_set_bool(reply, "AuthorizationSucceeded", allowed) ||
			    add_token_attrs(reply, &ar)) {
				rc = ccb_error_set(err, CCB_ERR_NOMEM, "DC_SEC_QUERY answer");
				goto out;
			}
			rc = put_ad(s, reply, err, "send DC_SEC_QUERY answer");
		}
	}
out:
	OPENSSL_cleanse(key, sizeof key);
	ccb_classad_free(req);
	ccb_classad_free(resp);
	ccb_classad_free(post);
	ccb_classad_free(reply);
	ccb__sec_policy_clear(&pol);
	ccb__ecdh_free(k);
	return rc;
}

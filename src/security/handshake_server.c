/*
 * DC_AUTHENTICATE, server side (security-handshake.md §5, §9;
 * H:src/condor_daemon_core.V6/daemon_command.cpp): one function per
 * phase — read the command, resume a known session, reconcile the
 * policies, authenticate, install the key, authorize, answer POST-AUTH
 * and keep the session — carrying a server_hs through them.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ccb/classad.h"
#include "ccb/security.h"
#include "cedar/stream_internal.h"
#include "classad/classad_internal.h"
#include "security/auth.h"
#include "security/ecdh.h"
#include "security/handshake_internal.h"
#include "security/policy.h"
#include "security/session_cache.h"
#include "security/session_crypto.h"

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

/* Session ids as C++ makes them: host:pid:time:counter (daemon_command.cpp:967-969).
 * The host name and pid are looked up once (a uname and a getpid per
 * session otherwise); a forked child looks its pid up again. */
static char sid_host[128] = "localhost";
static int sid_pid;
static pthread_once_t sid_once = PTHREAD_ONCE_INIT;

static void sid_child(void)
{
	sid_pid = (int)getpid();
}

static void sid_init(void)
{
	gethostname(sid_host, sizeof sid_host - 1);
	sid_pid = (int)getpid();
	pthread_atfork(NULL, NULL, sid_child);
}

static void new_session_id(char *out, size_t size)
{
	static atomic_uint counter;

	pthread_once(&sid_once, sid_init);
	snprintf(out, size, "%s:%d:%lld:%u", sid_host, sid_pid, (long long)ccb_wall_s(),
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
	c->authentication = ccb__sec_to_level(cfg->authentication[perm],
				     ccb__sec_to_level(cfg->authentication[CCB_PERM_ALLOW], auth_dflt));
	c->encryption = ccb__sec_to_level(cfg->encryption[perm],
				 ccb__sec_to_level(cfg->encryption[CCB_PERM_ALLOW], CCB_SEC_REQUIRED));
	c->integrity = ccb__sec_to_level(cfg->integrity[perm],
				ccb__sec_to_level(cfg->integrity[CCB_PERM_ALLOW], CCB_SEC_REQUIRED));
	c->allow_perm = perm == CCB_PERM_ALLOW;
	ccb__sec_usable_methods(m ? m : CCB__SEC_DEFAULT_METHODS, true, !cfg->ssl_certfile || !cfg->ssl_keyfile,
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

/* Why the peer may not run the command, naming who it is and how it was
 * (or was not) authenticated. `how` says why an unauthenticated peer is
 * one; `session` names a resumed session (NULL for a new one). */
static ccb_err not_authorized(ccb_error *err, const ccb_sec_command *cmd, bool scopes_ok,
			      const char *scopes, const char *how, const char *session)
{
	const char *perm = ccb_perm_name(cmd->perm);
	char where[200];

	if (session)
		snprintf(where, sizeof where, "command %d, resumed session %s", cmd->command, session);
	else
		snprintf(where, sizeof where, "command %d", cmd->command);
	if (!cmd->info.authenticated)
		return ccb_error_set(err, CCB_ERR_NOT_AUTHORIZED,
				     "%s, so the peer is unauthenticated (%s) and not authorized "
				     "for %s (%s)", how, cmd->info.user, perm, where);
	if (!scopes_ok)
		return ccb_error_set(err, CCB_ERR_NOT_AUTHORIZED,
				     "user '%s' (authenticated by %s) not authorized for %s: its "
				     "token's scopes (%s) do not include it (%s)", cmd->info.user,
				     cmd->info.method, perm, scopes, where);
	return ccb_error_set(err, CCB_ERR_NOT_AUTHORIZED,
			     "user '%s' (authenticated by %s) not authorized for %s (%s)",
			     cmd->info.user, cmd->info.method, perm, where);
}

/* A resumption request for a session we do not have (§9.2). */
static ccb_err refuse_resume(ccb_stream *s, const ccb_classad *req, ccb_error *err)
{
	bool want_reply = false;

	ccb_classad_get_bool(req, "ResumeResponse", &want_reply);
	if (want_reply) {
		ccb_classad *ad = ccb__classad_new();
		if (ad && ccb_classad_set_string(ad, "ReturnCode", "SID_NOT_FOUND") == CCB_OK)
			ccb__sec_put_ad(s, ad, NULL, "send SID_NOT_FOUND");
		ccb_classad_free(ad);
	}
	return ccb_error_set(err, CCB_ERR_SESSION_REFUSED,
			     "client asked to resume a session this server does not have");
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
	if (!(rc = ccb__sec_make_nonce(nonce, err))) {
		if (ccb_classad_set_string(ad, "ReturnCode", "AUTHORIZED") ||
		    ccb_classad_set_string(ad, "RemoteVersion", ccb__sec_version_string()) ||
		    ccb_classad_set_string(ad, "Nonce", nonce))
			rc = ccb_error_set(err, CCB_ERR_NOMEM, "resume reply");
		else
			rc = ccb__sec_put_ad(s, ad, err, "send resume reply");
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
		bool scopes_ok = ccb__sec_scopes_allow(scopes, cmd->perm);
		bool allowed = ccb_sec_authorized(cfg, cmd->perm, user, cmd->peer_ip) && scopes_ok;
		if (command == CCB_DC_SEC_QUERY) {
			ccb_classad *reply = ccb__classad_new();
			rc = reply && !ccb_classad_set_bool(reply, "AuthorizationSucceeded", allowed)
				     ? ccb__sec_put_ad(s, reply, err, "send DC_SEC_QUERY answer")
				     : ccb_error_set(err, CCB_ERR_NOMEM, "DC_SEC_QUERY answer");
			ccb_classad_free(reply);
		} else if (!allowed) {
			rc = not_authorized(err, cmd, scopes_ok, scopes,
					    "the session was not authenticated", sid);
		} else {
			rc = CCB_OK;
		}
	}
out:
	ccb__sess_entry_clear(&e);
	return rc;
}

/* What the phases of a new-session handshake share. */
typedef struct server_hs {
	ccb_stream *s;
	const ccb_sec_server_config *cfg;
	ccb_sec_command *cmd;
	ccb_error *err;
	ccb_classad *req;   /* the client's REQUEST */
	ccb_classad *resp;  /* our RESPONSE */
	int64_t command;
	int64_t auth_command; /* DC_SEC_QUERY's queried command, else 0 */
	ccb__sec_policy pol;
	ccb__sec_outcome out;
	ccb__ecdh *k;
	char methods[256];
	char cryptos[64];
	char sid[160];
	ccb__auth_result ar;
	uint8_t key[CCB_SESSION_KEY_LEN_AES];
	size_t key_len;
	bool legacy_key;    /* a random key for a client without ECDH (§6.2) */
	bool have_key;
	bool scopes_ok;     /* the token's scopes (if any) include the level */
	bool allowed;
} server_hs;

/* A command without a handshake: the rest of this message is its
 * payload. Only commands open to everyone may come this way (§5 step 1). */
static ccb_err server_raw_command(server_hs *h, int64_t first)
{
	const ccb_sec_server_config *cfg = h->cfg;
	int64_t perm = first < INT32_MIN || first > INT32_MAX ? -1
							       : cfg->command_perm((int)first, cfg->user);

	if (perm < 0)
		return ccb_error_set(h->err, CCB_ERR_NOT_FOUND, "unknown command %lld", (long long)first);
	if (perm != CCB_PERM_ALLOW)
		return ccb_error_set(h->err, CCB_ERR_NOT_AUTHORIZED,
				     "command %lld needs %s and arrived without a security handshake",
				     (long long)first, ccb_perm_name((ccb_perm)perm));
	h->cmd->command = (int)first;
	h->cmd->perm = CCB_PERM_ALLOW;
	snprintf(h->cmd->info.user, sizeof h->cmd->info.user, "%s", CCB_UNAUTHENTICATED_USER);
	return CCB_OK;
}

/* The command the REQUEST is for and the permission that governs the
 * handshake: the command's own, or for DC_SEC_QUERY the queried one's. */
static ccb_err server_command_perm(server_hs *h)
{
	const ccb_sec_server_config *cfg = h->cfg;
	int64_t perm, which;

	if (ccb_classad_get_int(h->req, "Command", &h->command))
		return ccb_error_set(h->err, CCB_ERR_PROTOCOL, "security request has no integer Command");
	if (h->command == CCB_DC_AUTHENTICATE || h->command == CCB_DC_SEC_QUERY)
		ccb_classad_get_int(h->req, "AuthCommand", &h->auth_command);
	which = h->auth_command ? h->auth_command : h->command;
	perm = cfg->command_perm((int)which, cfg->user);
	if (perm < 0 || perm >= CCB_PERM_COUNT)
		return ccb_error_set(h->err, CCB_ERR_NOT_FOUND, "unknown command %lld", (long long)which);
	h->cmd->command = (int)h->command;
	h->cmd->negotiated = true;
	h->cmd->perm = (ccb_perm)perm;
	return CCB_OK;
}

/* Our policy for the permission against the REQUEST (§5 steps 3-5): the
 * RESPONSE, the key source, and the RESPONSE sent when the client asks. */
static ccb_err server_reconcile(server_hs *h)
{
	ccb__sec_server_params sp;
	ccb__sec_config c;
	char pub[CCB_ECDH_PUB_B64_SIZE] = "";
	const char *peer_key = NULL;
	ccb_err rc;

	server_policy_config(h->cfg, h->cmd->perm, &c, h->methods, sizeof h->methods, h->cryptos,
			     sizeof h->cryptos);
	if ((rc = ccb__sec_policy_build(&c, &h->pol, h->err)))
		return rc;
	/* Our key pair is answered only to a client that sent its own: a keyless
	 * client (plaintext, or the legacy key after CLAIMTOBE/FS) costs none. */
	if (ccb_classad_get_string(h->req, "ECDHPublicKey", &peer_key) == CCB_OK && peer_key &&
	    *peer_key &&
	    ((rc = ccb__ecdh_generate(&h->k, h->err)) || (rc = ccb__ecdh_public_b64(h->k, pub, h->err))))
		return rc;
	sp = (ccb__sec_server_params){.policy = &h->pol, .ecdh_public_key = pub};
	if ((rc = ccb__sec_reconcile(&sp, h->req, &h->resp, &h->out, h->err))) {
		/* HTCondor closes silently; so does our caller */
		CCB_LOG(CCB_LOG_DEBUG, "security: %s: command %lld: policy refused: %s",
			ccb_stream_peer_name(h->s), (long long)h->command,
			h->err ? h->err->detail : "");
		return rc;
	}
	if (!h->out.new_session)
		return ccb_error_set(h->err, CCB_ERR_UNSUPPORTED,
				     "client asked for neither a new session nor a known one "
				     "(NewSession is not YES)");
	if (!h->out.client_ecdh && h->out.authentication == CCB_SEC_ACT_YES) {
		/* A client without ECDH (HTCondor's legacy key exchange): with
		 * authentication we make a random key of the agreed method and
		 * send it after the method succeeds (daemon_command.cpp:1003-1044,
		 * security-handshake.md §6.2). Without authentication there is
		 * no key and the stream stays plaintext. */
		h->key_len = ccb__sec_crypto_key_len(h->out.crypto);
		if ((rc = ccb_random_bytes(h->key, h->key_len, h->err)))
			return rc;
		h->legacy_key = true;
	}
	if (h->out.send_response)
		return ccb__sec_put_ad(h->s, h->resp, h->err, "send security response");
	return CCB_OK;
}

/* Authentication, when negotiated: the method loop of auth.c with our
 * AuthMethodsList. A failure that is not required leaves the peer
 * unauthenticated and the handshake goes on. */
static ccb_err server_authenticate(server_hs *h)
{
	const ccb_sec_server_config *cfg = h->cfg;
	const char *list = NULL;
	ccb__auth_params ap;
	ccb_err rc;

	if (h->out.authentication != CCB_SEC_ACT_YES)
		return CCB_OK;
	ccb_classad_get_string(h->resp, "AuthMethodsList", &list);
	ap = (ccb__auth_params){.uid_domain = ccb__sec_uid_domain(cfg->uid_domain),
				.password_directory = cfg->password_directory,
				.pool_signing_key_file = cfg->pool_signing_key_file,
				.trust_domain = cfg->trust_domain,
				.peer_version = h->out.peer_version,
				.token_max_age = cfg->token_max_age,
				.ssl_server_certfile = cfg->ssl_certfile,
				.ssl_server_keyfile = cfg->ssl_keyfile,
				.ssl_ca_file = cfg->ssl_ca_file,
				.ssl_ca_dir = cfg->ssl_ca_dir,
				.ssl_require_client_cert = cfg->ssl_require_client_cert,
				.send_key = h->legacy_key ? h->key : NULL,
				.send_key_len = h->key_len,
				.send_key_protocol = h->out.crypto};
	rc = ccb__auth_server(h->s, list, &ap, &h->ar, h->err);
	if (rc) {
		CCB_LOG(CCB_LOG_DEBUG, "security: %s: command %lld: authentication failed%s: %s",
			ccb_stream_peer_name(h->s), (long long)h->command,
			h->out.auth_required ? "" : " (not required, going on)",
			h->err ? h->err->detail : "");
		if (h->out.auth_required || rc != CCB_ERR_AUTH)
			return rc;
	}
	h->cmd->info.authenticated = rc == CCB_OK;
	if (h->cmd->info.authenticated)
		snprintf(h->cmd->info.method, sizeof h->cmd->info.method, "%s", h->ar.method_name);
	return CCB_OK;
}

/* The key: ECDH (derived now, as EnableCrypto does), or the legacy key if
 * it went out (a failed, optional authentication drops it). */
static ccb_err server_install_key(server_hs *h)
{
	const char *peer_key = NULL;
	ccb_err rc;

	if (h->out.client_ecdh) {
		ccb_classad_get_string(h->req, "ECDHPublicKey", &peer_key);
		h->key_len = h->out.key_len;
		if ((rc = ccb__ecdh_session_key(h->k, peer_key, h->key, h->key_len, h->err)))
			return rc;
		h->have_key = true;
	} else {
		h->have_key = h->legacy_key && h->ar.key_sent;
	}
	if ((rc = ccb__sec_install_key(h->s, h->have_key ? h->key : NULL, h->key_len, h->out.crypto,
				       h->out.encryption == CCB_SEC_ACT_YES,
				       h->out.integrity == CCB_SEC_ACT_YES, h->err))) {
		CCB_LOG(CCB_LOG_DEBUG, "security: %s: command %lld: %s", ccb_stream_peer_name(h->s),
			(long long)h->command, h->err ? h->err->detail : "");
		return rc;
	}
	ccb__sec_crypto_info(h->s, &h->cmd->info);
	return CCB_OK;
}

/* Who the peer is and whether ALLOW/DENY and its token's scopes let it
 * run the command (§5 step 9); a new session id. */
static void server_authorize(server_hs *h)
{
	ccb_sec_command *cmd = h->cmd;

	snprintf(cmd->info.user, sizeof cmd->info.user, "%s",
		 cmd->info.authenticated ? h->ar.peer_user : CCB_UNAUTHENTICATED_USER);
	h->scopes_ok = ccb__sec_scopes_allow(h->ar.token_scopes, cmd->perm);
	h->allowed = ccb_sec_authorized(h->cfg, cmd->perm, cmd->info.user, cmd->peer_ip) &&
		     h->scopes_ok;
	new_session_id(h->sid, sizeof h->sid);
	snprintf(cmd->info.session_id, sizeof cmd->info.session_id, "%s", h->sid);
	CCB_LOG(CCB_LOG_DEBUG, "security: %s: command %lld: %s%s%s, identity %s; crypto %s, "
		"encryption %s, integrity %s; session %s; %s", ccb_stream_peer_name(h->s),
		(long long)h->command,
		cmd->info.authenticated ? "authenticated with " : "not authenticated",
		cmd->info.authenticated ? cmd->info.method : "",
		h->out.authentication == CCB_SEC_ACT_YES ? "" : " (authentication not negotiated)",
		cmd->info.user, cmd->info.crypto[0] ? cmd->info.crypto : "none",
		cmd->info.encrypted ? "on" : "off", cmd->info.integrity ? "on" : "off", h->sid,
		h->allowed ? "authorized" : "NOT authorized");
}

/* The POST-AUTH answer (§5 step 10), then the session kept and, for
 * DC_SEC_QUERY, the verdict on the queried command (§9.3). DC_SEC_QUERY
 * itself is always allowed. */
static ccb_err server_postauth(server_hs *h)
{
	ccb_sec_command *cmd = h->cmd;
	bool query = h->command == CCB_DC_SEC_QUERY;
	ccb_classad *post = NULL, *reply = NULL;
	char valid[32];
	ccb__sec_postauth pa;
	ccb_err rc;

	snprintf(valid, sizeof valid, "%lld",
		 (long long)(h->auth_command ? h->auth_command : h->command));
	pa = (ccb__sec_postauth){
		.sid = h->sid,
		.user = cmd->info.authenticated ? cmd->info.user : NULL,
		.return_code = h->allowed || query ? "AUTHORIZED" : "DENIED",
		.valid_commands = valid,
		.tried_authentication = h->out.authentication == CCB_SEC_ACT_YES,
	};
	if ((rc = ccb__sec_build_postauth(&pa, &post, h->err)) ||
	    (rc = ccb__sec_put_ad(h->s, post, h->err, "send post-authentication answer")))
		goto out;
	if (!h->allowed && !query) {
		rc = not_authorized(h->err, cmd, h->scopes_ok, h->ar.token_scopes,
				    h->out.authentication == CCB_SEC_ACT_YES
					    ? "authentication was negotiated but failed (it was optional)"
					    : "no authentication was negotiated",
				    NULL);
		goto out;
	}
	if (h->have_key && h->out.crypto != CCB_SEC_CRYPTO_NONE)
		keep_session(h->cfg, h->sid, h->key, h->key_len, h->out.crypto, h->resp, cmd, &h->ar,
			     &h->out);
	if (query) {
		reply = ccb__classad_new();
		if (!reply || ccb_classad_set_bool(reply, "AuthorizationSucceeded", h->allowed) ||
		    add_token_attrs(reply, &h->ar))
			rc = ccb_error_set(h->err, CCB_ERR_NOMEM, "DC_SEC_QUERY answer");
		else
			rc = ccb__sec_put_ad(h->s, reply, h->err, "send DC_SEC_QUERY answer");
	}
out:
	ccb_classad_free(post);
	ccb_classad_free(reply);
	return rc;
}

ccb_err ccb_sec_server_accept(ccb_stream *s, const ccb_sec_server_config *cfg,
			      ccb_sec_command *cmd, ccb_error *err)
{
	server_hs h;
	const char *use_session = NULL;
	int64_t first;
	ccb_err rc;

	if (!s || !cfg || !cmd || !cfg->command_perm)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_sec_server_accept: missing argument");
	memset(cmd, 0, sizeof *cmd);
	h = (server_hs){.s = s, .cfg = cfg, .cmd = cmd, .err = err};
	peer_ip(ccb_stream_fd(s), cmd->peer_ip, sizeof cmd->peer_ip);
	if (ccb_stream_get_int(s, &first))
		return ccb__sec_stream_fail(s, err, "read command");
	if (first != CCB_DC_AUTHENTICATE)
		return server_raw_command(&h, first);
	if ((rc = ccb__sec_get_ad(s, &h.req, err, "read security request")))
		return rc;
	/* Our answers in a row (the authentication result, its end, the
	 * POST-AUTH ad) go out in one send: the stream sends what it holds
	 * before each read and at the uncork below. */
	ccb__stream_cork(s);
	ccb__sec_copy_attr(h.req, "RemoteVersion", cmd->info.peer_version,
			   sizeof cmd->info.peer_version);
	if (ccb_classad_get_string(h.req, "UseSession", &use_session) == CCB_OK &&
	    ccb__sec_action_parse(use_session) == CCB_SEC_ACT_YES)
		rc = resume(s, cfg, h.req, cmd, err);
	else if (!(rc = server_command_perm(&h)) && !(rc = server_reconcile(&h)) &&
		 !(rc = server_authenticate(&h)) && !(rc = server_install_key(&h))) {
		server_authorize(&h);
		rc = server_postauth(&h);
	}
	/* Refusals (SID_NOT_FOUND, DENIED) go out too. */
	if (ccb__stream_uncork(s) && !rc)
		rc = ccb__sec_stream_fail(s, err, "send security answers");
	OPENSSL_cleanse(h.key, sizeof h.key);
	ccb_classad_free(h.req);
	ccb_classad_free(h.resp);
	ccb__sec_policy_clear(&h.pol);
	ccb__ecdh_free(h.k);
	return rc;
}

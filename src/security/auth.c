#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "security/auth.h"
#include "security/policy.h"

typedef ccb__auth_method_fn method_fn;

static ccb_err claimtobe_client(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *r,
				ccb_error *err);
static ccb_err claimtobe_server(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *r,
				ccb_error *err);

/* The methods libccb implements, by wire bit; names and aliases are mapped
 * by policy.c (H:condor_secman.cpp:3210-3246). */
static const struct {
	int bit;
	method_fn client, server;
} methods_table[] = {
	{CCB_AUTH_CLAIMTOBE, claimtobe_client, claimtobe_server},
	{CCB_AUTH_FS, ccb__auth_fs_client, ccb__auth_fs_server},
	{CCB_AUTH_TOKEN, ccb__auth_token_client, ccb__auth_token_server},
	{CCB_AUTH_SSL, ccb__auth_ssl_client, ccb__auth_ssl_server},
};
#define N_METHODS (sizeof methods_table / sizeof methods_table[0])

static method_fn method_for(int bit, bool server)
{
	for (size_t i = 0; i < N_METHODS; i++)
		if (methods_table[i].bit == bit)
			return server ? methods_table[i].server : methods_table[i].client;
	return NULL;
}

bool ccb__auth_method_supported(int bit, bool server)
{
	return method_for(bit, server) != NULL;
}

/* Bits of the supported methods in a comma/space list, in list order. */
static size_t parse_list(const char *list, bool server, int *bits, size_t max)
{
	const char *p = list ? list : "", *item;
	size_t len, n = 0;

	while (n < max && (item = ccb__sec_list_next(&p, &len))) {
		char tok[32];
		int bit;
		bool dup = false;

		if (len >= sizeof tok)
			continue;
		memcpy(tok, item, len);
		tok[len] = '\0';
		bit = ccb__sec_method_bit(tok);
		for (size_t i = 0; i < n; i++)
			dup |= bits[i] == bit;
		if (bit && !dup && method_for(bit, server))
			bits[n++] = bit;
	}
	return n;
}

static ccb_err send_int(ccb_stream *s, int64_t v)
{
	ccb_err rc = ccb_stream_put_int(s, v);
	return rc ? rc : ccb_stream_end_message(s);
}

static ccb_err recv_int(ccb_stream *s, int64_t *v)
{
	ccb_err rc = ccb_stream_get_int(s, v);
	return rc ? rc : ccb_stream_end_of_message(s);
}

static ccb_err recv_legacy_key(ccb_stream *s, int method, ccb__auth_result *out,
			       ccb_error *err);
static ccb_err stream_err(ccb_stream *s, ccb_error *err, const char *step)
{
	const ccb_error *e = ccb_stream_error(s);
	return ccb_error_set(err, e->code, "%s: %s", step, e->detail);
}

/* Broken-stream failures end the loop; a method's own refusal does not. */
static bool fatal(ccb_err rc)
{
	return rc != CCB_ERR_AUTH;
}

ccb_err ccb__auth_client(ccb_stream *s, const char *methods, const ccb__auth_params *p,
			 ccb__auth_result *out, ccb_error *err)
{
	int bits[16];
	size_t n = parse_list(methods, false, bits, 16);
	char tried[512] = "";

	memset(out, 0, sizeof *out);
	while (n > 0) {
		int64_t mask = 0, chosen;
		size_t k;
		ccb_err rc;

		for (size_t i = 0; i < n; i++)
			mask |= bits[i];
		/* §6.1: offer every remaining method as one bitmask. */
		if (send_int(s, mask))
			return stream_err(s, err, "send authentication methods");
		if (recv_int(s, &chosen)) {
			if (ccb_stream_error(s)->code == CCB_ERR_CLOSED)
				return ccb_error_set(err, CCB_ERR_CLOSED,
						     "server closed the connection after the offer of "
						     "authentication methods (mask %lld), before choosing "
						     "one", (long long)mask);
			return stream_err(s, err, "read chosen authentication method");
		}
		if (chosen == 0)
			return ccb_error_set(err, CCB_ERR_AUTH,
					     "server accepts none of the offered methods (mask %lld%s%s)",
					     (long long)mask, tried[0] ? "; failed: " : "", tried);
		for (k = 0; k < n && bits[k] != chosen; k++)
			;
		if (k == n)
			return ccb_error_set(err, CCB_ERR_PROTOCOL,
					     "server chose method %lld, which was not offered", (long long)chosen);
		rc = method_for(bits[k], false)(s, p, out, err);
		if (rc == CCB_OK) {
			int64_t has_key;
			out->method = bits[k];
			snprintf(out->method_name, sizeof out->method_name, "%s",
				 ccb__sec_method_name(bits[k]));
			/* §6.2: after a successful method the server says whether it
			 * sends a key; with ECDH it never does. */
			if (recv_int(s, &has_key))
				return stream_err(s, err, "read hasKey");
			if (has_key != 0)
				return recv_legacy_key(s, bits[k], out, err);
			return CCB_OK;
		}
		if (fatal(rc))
			return rc;
		snprintf(tried + strlen(tried), sizeof tried - strlen(tried), "%s%s",
			 tried[0] ? "; " : "", err && err->detail[0] ? err->detail
							  : ccb__sec_method_name(bits[k]));
		/* Drop the failed method and offer the rest (§6.1). */
		memmove(&bits[k], &bits[k + 1], (n - k - 1) * sizeof bits[0]);
		n--;
	}
	if (tried[0])
		return ccb_error_set(err, CCB_ERR_AUTH, "every authentication method failed: %s", tried);
	return ccb_error_set(err, CCB_ERR_AUTH,
			     "no authentication method in common with the server (negotiated list: '%s')",
			     methods ? methods : "");
}

/* Methods whose wrap()/unwrap() is Condor_Auth_Base's copy
 * (H:condor_auth.cpp:100-130): the legacy key travels as is. */
static bool identity_wrap(int method)
{
	return method == CCB_AUTH_CLAIMTOBE || method == CCB_AUTH_FS ||
	       method == CCB_AUTH_FS_REMOTE || method == CCB_AUTH_ANONYMOUS;
}

/* Authentication::exchangeKey, server side (H:authentication.cpp:852-941):
 * int hasKey, EOM; with a key a second message: int keyLength, int
 * protocol, int duration, int n, n wrapped bytes, EOM. */
static ccb_err send_legacy_key(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *out,
			       ccb_error *err)
{
	bool send = p && p->send_key && p->send_key_len && identity_wrap(out->method);

	if (send_int(s, send ? 1 : 0))
		return stream_err(s, err, "send hasKey");
	if (!send)
		return CCB_OK;
	if (ccb_stream_put_int(s, (int64_t)p->send_key_len) ||
	    ccb_stream_put_int(s, p->send_key_protocol) || ccb_stream_put_int(s, 0) ||
	    ccb_stream_put_int(s, (int64_t)p->send_key_len) ||
	    ccb_stream_put_bytes(s, p->send_key, p->send_key_len) || ccb_stream_end_message(s))
		return stream_err(s, err, "send session key");
	out->key_sent = true;
	return CCB_OK;
}

/* The client side of the same: the key message after hasKey = 1. */
static ccb_err recv_legacy_key(ccb_stream *s, int method, ccb__auth_result *out, ccb_error *err)
{
	int64_t key_len, protocol, duration, n;

	if (ccb_stream_get_int(s, &key_len) || ccb_stream_get_int(s, &protocol) ||
	    ccb_stream_get_int(s, &duration) || ccb_stream_get_int(s, &n))
		return stream_err(s, err, "read session key");
	if (!identity_wrap(method))
		return ccb_error_set(err, CCB_ERR_UNSUPPORTED,
				     "server sent a session key wrapped by %s (legacy key exchange); "
				     "libccb unwraps keys only for CLAIMTOBE and FS",
				     ccb__sec_method_name(method));
	if (n != key_len || n < 1 || n > (int64_t)sizeof out->key)
		return ccb_error_set(err, CCB_ERR_PROTOCOL,
				     "server sent a session key of %lld bytes (keyLength %lld)",
				     (long long)n, (long long)key_len);
	if (ccb_stream_get_bytes(s, out->key, (size_t)n) || ccb_stream_end_of_message(s))
		return stream_err(s, err, "read session key");
	out->has_key = true;
	out->key_len = (size_t)n;
	out->key_protocol = (int)protocol;
	(void)duration;
	return CCB_OK;
}

ccb_err ccb__auth_server(ccb_stream *s, const char *methods, const ccb__auth_params *p,
			 ccb__auth_result *out, ccb_error *err)
{
	int bits[16];
	size_t n = parse_list(methods, true, bits, 16);

	memset(out, 0, sizeof *out);
	for (;;) {
		int64_t mask, chosen = 0;
		ccb_err rc;

		if (recv_int(s, &mask)) {
			if (ccb_stream_error(s)->code == CCB_ERR_CLOSED)
				return ccb_error_set(err, CCB_ERR_AUTH,
						     "client closed the connection during the "
						     "choice of authentication method%s%s",
						     out->failures[0] ? " after: " : "", out->failures);
			return stream_err(s, err, "read offered authentication methods");
		}
		/* The first method of our own list that the client offers. */
		for (size_t i = 0; i < n && !chosen; i++)
			if (mask & bits[i])
				chosen = bits[i];
		if (send_int(s, chosen))
			return stream_err(s, err, "send chosen authentication method");
		if (!chosen) {
			if (out->failures[0])
				return ccb_error_set(err, CCB_ERR_AUTH,
						     "no authentication method left (client offers mask "
						     "%lld): %s", (long long)mask, out->failures);
			return ccb_error_set(err, CCB_ERR_AUTH,
					     "client offered no acceptable method (client mask %lld, "
					     "ours: %s)", (long long)mask, methods && *methods ? methods : "none");
		}
		rc = method_for((int)chosen, true)(s, p, out, err);
		if (rc == CCB_OK) {
			out->method = (int)chosen;
			snprintf(out->method_name, sizeof out->method_name, "%s",
				 ccb__sec_method_name((int)chosen));
			return send_legacy_key(s, p, out, err);
		}
		if (fatal(rc))
			return rc;
		/* Say why, so that the final "no acceptable method" names the
		 * real cause (the client only learns a method's error code). */
		CCB_LOG(CCB_LOG_DEBUG, "security: %s: %s failed: %s", ccb_stream_peer_name(s),
			ccb__sec_method_name((int)chosen), err ? err->detail : "");
		{
			const char *name = ccb__sec_method_name((int)chosen);
			const char *d = err && err->detail[0] ? err->detail : "failed";
			size_t nl = strlen(name);
			bool named = !strncmp(d, name, nl) && d[nl] == ':';
			snprintf(out->failures + strlen(out->failures),
				 sizeof out->failures - strlen(out->failures), "%s%s%s%s",
				 out->failures[0] ? "; " : "", named ? "" : name, named ? "" : ": ", d);
		}
		/* The client drops the method and offers the rest; wait for it. */
	}
}

/* ---- CLAIMTOBE (§7.1; H:src/condor_io/condor_auth_claim.cpp:36-195) ------ */

static ccb_err claimtobe_client(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *r,
				ccb_error *err)
{
	char name[CCB_AUTH_NAME_MAX];
	const char *user = p ? p->claimtobe_user : NULL;
	struct passwd pw, *res = NULL;
	char pwbuf[1024];
	int64_t ok;

	if (!user && getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &res) == 0 && res)
		user = pw.pw_name;
	if (!user || !*user) {
		/* No name: int 0 and both sides fail; the server sends nothing. */
		if (send_int(s, 0))
			return stream_err(s, err, "CLAIMTOBE");
		return ccb_error_set(err, CCB_ERR_AUTH, "CLAIMTOBE: no user name to claim");
	}
	if (p && !p->claimtobe_no_domain && p->uid_domain && *p->uid_domain && !strchr(user, '@'))
		snprintf(name, sizeof name, "%s@%s", user, p->uid_domain);
	else
		snprintf(name, sizeof name, "%s", user);
	if (ccb_stream_put_int(s, 1) || ccb_stream_put_string(s, name) || ccb_stream_end_message(s))
		return stream_err(s, err, "CLAIMTOBE: send claim");
	if (recv_int(s, &ok))
		return stream_err(s, err, "CLAIMTOBE: read answer");
	if (ok != 1)
		return ccb_error_set(err, CCB_ERR_AUTH, "CLAIMTOBE: server refused the claim '%s'", name);
	(void)r;
	return CCB_OK;
}

static ccb_err claimtobe_server(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *r,
				ccb_error *err)
{
	int64_t flag;
	char *name = NULL;

	if (ccb_stream_get_int(s, &flag))
		return stream_err(s, err, "CLAIMTOBE: read claim");
	if (flag == 1 && ccb_stream_get_string(s, &name))
		return stream_err(s, err, "CLAIMTOBE: read claimed name");
	if (ccb_stream_end_of_message(s)) {
		free(name);
		return stream_err(s, err, "CLAIMTOBE: claim message");
	}
	if (flag != 1 || !name || !*name || strlen(name) >= CCB_AUTH_NAME_MAX) {
		free(name);
		return ccb_error_set(err, CCB_ERR_AUTH, "CLAIMTOBE: client made no usable claim");
	}
	/* The claim is the identity, unverified; no '@' means our UID_DOMAIN. */
	if (strchr(name, '@') || !p || !p->uid_domain || !*p->uid_domain)
		snprintf(r->peer_user, sizeof r->peer_user, "%s", name);
	else
		snprintf(r->peer_user, sizeof r->peer_user, "%s@%s", name, p->uid_domain);
	free(name);
	if (send_int(s, 1))
		return stream_err(s, err, "CLAIMTOBE: send answer");
	return CCB_OK;
}

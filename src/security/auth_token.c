/*
 * The TOKEN (IDTOKENS) method's three messages, client and server
 * (security-handshake.md §7.4 "Messages"; H:src/condor_io/condor_auth_passwd.cpp
 * client_send_one 3084-3128, server_receive_one 3130-3182, server_send
 * 2932-3004, client_receive 3006-3082, client_send_two 2628-2702,
 * server_receive_two 2801-2872, doServerRec1/2 2323-2574).
 *
 * Both sides always exchange all three messages (T1, T2, T3), also after a
 * failure (status -1, every field empty), so a refusal leaves the stream in
 * step and the loop can try the next method. Two exceptions, as in HTCondor:
 * a message that cannot be decoded breaks the stream, and a server that
 * rejects T3 sends nothing (the client believes it succeeded).
 *
 * Secrets (signature, K, K', hkt, hk) never reach an error detail or a log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "ccb/classad.h"
#include "security/auth.h"
#include "security/jwt.h"
#include "security/signing_key.h"
#include "security/token_crypto.h"
#include "security/token_file.h"

#define NONCE CCB__TOKEN_NONCE_LEN
#define MAC CCB__TOKEN_MAC_LEN
#define STATUS_OK 0   /* AUTH_PW_A_OK */
#define STATUS_ERR -1 /* AUTH_PW_ERROR */
#define MAC_MAX 64    /* EVP_MAX_MD_SIZE: the receivers' bound on hkt/hk */

/* What a peer sent in T1, T2 or T3; absent fields are NULL / length 0. */
typedef struct tmsg {
	int64_t status;
	int64_t a_len;
	char *a;
	char *b;       /* T2 */
	char *token;   /* T1: token_hp */
	int64_t ra_len, rb_len, mac_len;
	uint8_t ra[NONCE], rb[NONCE], mac[MAC_MAX];
} tmsg;

static void tmsg_clear(tmsg *m)
{
	free(m->a);
	free(m->b);
	ccb__free_secret(m->token);
	OPENSSL_cleanse(m, sizeof *m);
}

/* The session secrets of one exchange. */
typedef struct tkeys {
	uint8_t k[CCB__TOKEN_KEY_LEN], kp[CCB__TOKEN_KEY_LEN];
} tkeys;

static ccb_err stream_err(ccb_stream *s, ccb_error *err, const char *step)
{
	const ccb_error *e = ccb_stream_error(s);
	return ccb_error_set(err, e->code ? e->code : CCB_ERR_PROTOCOL, "TOKEN: %s: %s", step,
			     e->detail);
}

/* An int length field followed by that many raw bytes, at most max. */
static ccb_err get_sized(ccb_stream *s, int64_t *len, uint8_t *buf, size_t max)
{
	ccb_err rc = ccb_stream_get_int(s, len);

	if (rc)
		return rc;
	if (*len < 0 || (uint64_t)*len > max)
		return CCB_ERR_PROTOCOL;
	return ccb_stream_get_bytes(s, buf, (size_t)*len);
}

static ccb_err put_sized(ccb_stream *s, const uint8_t *buf, size_t len)
{
	ccb_err rc = ccb_stream_put_int(s, (int64_t)len);
	return rc ? rc : ccb_stream_put_bytes(s, buf, len);
}

/* A string field, bounded as the C++ reader's 1024-byte buffer (client) or
 * by the message cap (server). NULL-string marker counts as empty. */
static ccb_err get_str(ccb_stream *s, char **out, size_t max)
{
	ccb_err rc = ccb_stream_get_string(s, out);

	if (rc)
		return rc;
	if (!*out && !(*out = calloc(1, 1)))
		return CCB_ERR_NOMEM;
	return strlen(*out) > max ? CCB_ERR_PROTOCOL : CCB_OK;
}

/* ---- client ------------------------------------------------------------ */

/* The client's token: the literal, else the token file, else the token
 * directory, first usable against the server's IssuerKeys / TrustDomain
 * (§7.4 "Client token selection"; checkToken/findToken 206-400). */
static ccb_err client_pick_token(const ccb__auth_params *p, ccb__jwt *j, ccb_error *err)
{
	ccb__token_filter f = {p->server_trust_domain, p->server_issuer_keys};

	memset(j, 0, sizeof *j);
	if (p->token && *p->token)
		return ccb__token_pick_text(p->token, strlen(p->token), &f, j, err);
	if (p->token_file && *p->token_file)
		return ccb__token_pick_file(p->token_file, CCB__TOKEN_FILE_CHECK_PERMS, &f, j, err);
	if (p->token_directory && *p->token_directory)
		return ccb__token_pick_dir(p->token_directory, p->subsystem,
					   CCB__TOKEN_FILE_CHECK_PERMS, &f, j, NULL, err);
	return ccb_error_set(err, CCB_ERR_NOT_FOUND, "no token configured");
}

/* T1 C→S: status | strlen(a) | a | token_hp | 256 | ra   (client_send_one;
 * on error every field empty, the token still sent, here "" as we have none) */
static ccb_err send_t1(ccb_stream *s, bool ok, const char *a, const char *hp, const uint8_t *ra)
{
	ccb_err rc = ccb_stream_put_int(s, ok ? STATUS_OK : STATUS_ERR);

	if (!rc)
		rc = ccb_stream_put_int(s, ok ? (int64_t)strlen(a) : 0);
	if (!rc)
		rc = ccb_stream_put_string(s, ok ? a : "");
	if (!rc)
		rc = ccb_stream_put_string(s, hp ? hp : "");
	if (!rc)
		rc = put_sized(s, ra, ok ? NONCE : 0);
	return rc ? rc : ccb_stream_end_message(s);
}

/* T2 S→C, as read by client_receive (names into 1024-byte buffers). */
static ccb_err recv_t2(ccb_stream *s, tmsg *m)
{
	int64_t b_len; /* read and ignored, as client_receive does */
	ccb_err rc = ccb_stream_get_int(s, &m->status);

	if (!rc)
		rc = ccb_stream_get_int(s, &m->a_len);
	if (!rc)
		rc = get_str(s, &m->a, CCB__TOKEN_NAME_MAX);
	if (!rc)
		rc = ccb_stream_get_int(s, &b_len);
	if (!rc)
		rc = get_str(s, &m->b, CCB__TOKEN_NAME_MAX);
	if (!rc)
		rc = get_sized(s, &m->ra_len, m->ra, NONCE);
	if (!rc)
		rc = get_sized(s, &m->rb_len, m->rb, NONCE);
	if (!rc)
		rc = get_sized(s, &m->mac_len, m->mac, MAC_MAX);
	return rc ? rc : ccb_stream_end_of_message(s);
}

/* client_check_t_validity: status, echoed a and ra, non-empty b, hkt. */
static ccb_err client_check_t2(const tmsg *m, const char *a, const uint8_t *ra, const tkeys *k,
			       ccb_error *err)
{
	uint8_t hkt[MAC];
	bool good;

	if (m->status != STATUS_OK)
		return ccb_error_set(err, CCB_ERR_AUTH, "TOKEN: server refused the token");
	if (m->ra_len != NONCE || m->rb_len != NONCE || !*m->a || !*m->b || m->mac_len != MAC)
		return ccb_error_set(err, CCB_ERR_AUTH, "TOKEN: server reply T2 is incomplete");
	if (strcmp(m->a, a) || CRYPTO_memcmp(m->ra, ra, NONCE))
		return ccb_error_set(err, CCB_ERR_AUTH,
				     "TOKEN: server reply T2 does not echo our name and ra");
	if (ccb__token_hkt(k->k, a, m->b, ra, m->rb, hkt, err))
		return CCB_ERR_AUTH;
	good = CRYPTO_memcmp(hkt, m->mac, MAC) == 0;
	OPENSSL_cleanse(hkt, sizeof hkt);
	if (!good)
		return ccb_error_set(err, CCB_ERR_AUTH,
				     "TOKEN: server's hkt does not match (it holds a different "
				     "signing key, or the token's signature is not its own)");
	return CCB_OK;
}

/* T3 C→S: status | strlen(a) | a | 256 | rb | len(hk) | hk   (client_send_two) */
static ccb_err send_t3(ccb_stream *s, bool ok, const char *a, const uint8_t *rb,
		       const uint8_t *hk)
{
	ccb_err rc = ccb_stream_put_int(s, ok ? STATUS_OK : STATUS_ERR);

	if (!rc)
		rc = ccb_stream_put_int(s, ok ? (int64_t)strlen(a) : 0);
	if (!rc)
		rc = ccb_stream_put_string(s, ok ? a : "");
	if (!rc)
		rc = put_sized(s, rb, ok ? NONCE : 0);
	if (!rc)
		rc = put_sized(s, hk, ok ? MAC : 0);
	return rc ? rc : ccb_stream_end_message(s);
}

/* Everything the client needs before T1: token, identity a, K, ra. */
static ccb_err client_prepare(const ccb__auth_params *p, ccb__jwt *j, const char **a, tkeys *k,
			      uint8_t *ra, ccb_error *err)
{
	ccb_err rc = client_pick_token(p, j, err);

	if (rc)
		return ccb_error_prefix(err, "TOKEN: ");
	*a = ccb__jwt_identity(j);
	if (!*a || !**a || strlen(*a) > CCB__TOKEN_NAME_MAX)
		return ccb_error_set(err, CCB_ERR_AUTH, "TOKEN: token has no usable identity");
	if (ccb__token_derive_keys(j->sig, j->sig_len, j->token_hp, j->hp_len, k->k, k->kp, err) ||
	    ccb_random_bytes(ra, NONCE, err))
		return ccb_error_prefix(err, "TOKEN: ");
	return CCB_OK;
}

ccb_err ccb__auth_token_client(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *r,
			       ccb_error *err)
{
	static const ccb__auth_params none = {0};
	ccb__jwt j;
	tkeys k;
	tmsg t2 = {0};
	uint8_t ra[NONCE], hk[MAC];
	const char *a = NULL;
	ccb_error why = {0};
	ccb_err rc, verdict;
	bool ok;

	(void)r;
	verdict = client_prepare(p ? p : &none, &j, &a, &k, ra, &why);
	ok = verdict == CCB_OK;
	/* §7.4: without a token T1 still goes out, status -1 and empty fields. */
	if (send_t1(s, ok, a, ok ? j.token_hp : "", ra)) {
		rc = stream_err(s, err, "send T1");
		goto out;
	}
	if (recv_t2(s, &t2)) {
		rc = stream_err(s, err, "read T2");
		goto out;
	}
	if (ok) {
		verdict = client_check_t2(&t2, a, ra, &k, &why);
		ok = verdict == CCB_OK;
	}
	if (ok && ccb__token_hk(k.k, a, t2.rb, hk, &why)) {
		verdict = CCB_ERR_AUTH;
		ok = false;
	}
	if (send_t3(s, ok, a, t2.rb, hk)) {
		rc = stream_err(s, err, "send T3");
		goto out;
	}
	rc = ok ? CCB_OK : ccb_error_set(err, CCB_ERR_AUTH, "%s", why.detail);
out:
	OPENSSL_cleanse(&k, sizeof k);
	OPENSSL_cleanse(hk, sizeof hk);
	tmsg_clear(&t2);
	ccb__jwt_clear(&j);
	return rc;
}

/* ---- server ------------------------------------------------------------ */

/* T1 as server_receive_one reads it. */
static ccb_err recv_t1(ccb_stream *s, tmsg *m)
{
	ccb_err rc = ccb_stream_get_int(s, &m->status);

	if (!rc)
		rc = ccb_stream_get_int(s, &m->a_len);
	if (!rc)
		rc = get_str(s, &m->a, CCB__JWT_MAX_LEN);
	if (!rc)
		rc = get_str(s, &m->token, CCB__JWT_MAX_LEN);
	if (!rc)
		rc = get_sized(s, &m->ra_len, m->ra, NONCE);
	return rc ? rc : ccb_stream_end_of_message(s);
}

/* T3 as server_receive_two reads it. */
static ccb_err recv_t3(ccb_stream *s, tmsg *m)
{
	ccb_err rc = ccb_stream_get_int(s, &m->status);

	if (!rc)
		rc = ccb_stream_get_int(s, &m->a_len);
	if (!rc)
		rc = get_str(s, &m->a, CCB__JWT_MAX_LEN);
	if (!rc)
		rc = get_sized(s, &m->rb_len, m->rb, NONCE);
	if (!rc)
		rc = get_sized(s, &m->mac_len, m->mac, MAC_MAX);
	return rc ? rc : ccb_stream_end_of_message(s);
}

/* T2 S→C: status | strlen(a) | a | strlen(b) | b | 256 | ra | 256 | rb
 * | len(hkt) | hkt   (server_send; on error every field empty) */
static ccb_err send_t2(ccb_stream *s, bool ok, const char *a, const char *b, const uint8_t *ra,
		       const uint8_t *rb, const uint8_t *hkt)
{
	ccb_err rc = ccb_stream_put_int(s, ok ? STATUS_OK : STATUS_ERR);

	if (!rc)
		rc = ccb_stream_put_int(s, ok ? (int64_t)strlen(a) : 0);
	if (!rc)
		rc = ccb_stream_put_string(s, ok ? a : "");
	if (!rc)
		rc = ccb_stream_put_int(s, ok ? (int64_t)strlen(b) : 0);
	if (!rc)
		rc = ccb_stream_put_string(s, ok ? b : "");
	if (!rc)
		rc = put_sized(s, ra, ok ? NONCE : 0);
	if (!rc)
		rc = put_sized(s, rb, ok ? NONCE : 0);
	if (!rc)
		rc = put_sized(s, hkt, ok ? MAC : 0);
	return rc ? rc : ccb_stream_end_message(s);
}

/* `b` from the client's version (fetchLogin 615-773); the rule itself is
 * ccb__token_server_name's. */
static ccb_err server_name(const ccb__auth_params *p, char *b, size_t n, ccb_error *err)
{
	char ver[32] = "";

	if (p->peer_version)
		snprintf(ver, sizeof ver, "%u.%u.%u", p->peer_version / 10000,
			 p->peer_version / 100 % 100, p->peer_version % 100);
	return ccb__token_server_name(ver, p->uid_domain, b, n, err);
}

/*
 * doServerRec1 / setup_shared_keys / analyze_token: parse token_hp, check
 * the claims and the issuer, load the key named by kid, re-sign, derive K.
 * Every failure is CCB_ERR_AUTH (reported to the client as T2 status -1).
 */
static ccb_err server_check_t1(const tmsg *t1, const ccb__auth_params *p, ccb__jwt *j,
			       tkeys *k, ccb_error *err)
{
	uint8_t jwt_key[CCB__TOKEN_KEY_LEN], sig[CCB__JWT_SIG_MAX];
	ccb_err rc;

	if (t1->status != STATUS_OK)
		return ccb_error_set(err, CCB_ERR_AUTH, "TOKEN: client has no usable token");
	if (t1->ra_len != NONCE || !*t1->a)
		return ccb_error_set(err, CCB_ERR_AUTH, "TOKEN: client message T1 is incomplete");
	if (!*t1->token)
		return ccb_error_set(err, CCB_ERR_AUTH, "TOKEN: client presented no token");
	if (ccb__jwt_parse(t1->token, strlen(t1->token), CCB__JWT_NO_SIGNATURE, j, err) ||
	    ccb__jwt_check_claims(j, (int64_t)time(NULL), p->token_max_age, err))
		goto refuse;
	if (p->trust_domain && *p->trust_domain && strcmp(j->iss, p->trust_domain))
		return ccb_error_set(err, CCB_ERR_AUTH,
				     "TOKEN: token issuer '%.64s' is not our trust domain '%.64s'",
				     j->iss, p->trust_domain);
	if (!j->sub || !*j->sub)
		return ccb_error_set(err, CCB_ERR_AUTH,
				     "TOKEN: token has no subject (capability tokens unsupported)");
	rc = ccb__signing_key_load(j->kid, p->password_directory, p->pool_signing_key_file,
				   CCB__SIGNING_KEY_CHECK_PERMS, jwt_key, err);
	if (!rc)
		rc = ccb__jwt_sign(j->alg, jwt_key, sizeof jwt_key, j->token_hp, j->hp_len, sig, err);
	if (!rc)
		rc = ccb__token_derive_keys(sig, ccb__jwt_sig_len(j->alg), j->token_hp, j->hp_len,
					    k->k, k->kp, err);
	OPENSSL_cleanse(jwt_key, sizeof jwt_key);
	OPENSSL_cleanse(sig, sizeof sig);
	if (!rc)
		return CCB_OK;
refuse:
	ccb_error_prefix(err, "TOKEN: ");
	if (err)
		err->code = CCB_ERR_AUTH;
	return CCB_ERR_AUTH;
}

/* server_receive_two + server_check_hk_validity + the final subject check
 * of doServerRec2. */
static ccb_err server_check_t3(const tmsg *t3, const char *a, const uint8_t *rb, const tkeys *k,
			       const ccb__jwt *j, ccb_error *err)
{
	uint8_t hk[MAC];
	bool good;

	if (t3->status != STATUS_OK)
		return ccb_error_set(err, CCB_ERR_AUTH, "TOKEN: client rejected our reply T2");
	if (t3->rb_len != NONCE || strcmp(t3->a, a) || t3->a_len != (int64_t)strlen(t3->a) ||
	    CRYPTO_memcmp(t3->rb, rb, NONCE))
		return ccb_error_set(err, CCB_ERR_AUTH, "TOKEN: client message T3 is inconsistent");
	if (ccb__token_hk(k->k, a, rb, hk, err))
		return CCB_ERR_AUTH;
	good = t3->mac_len == MAC && CRYPTO_memcmp(hk, t3->mac, MAC) == 0;
	OPENSSL_cleanse(hk, sizeof hk);
	if (!good)
		return ccb_error_set(err, CCB_ERR_AUTH, "TOKEN: client's hk does not match");
	if (strcmp(a, j->sub))
		return ccb_error_set(err, CCB_ERR_AUTH,
				     "TOKEN: client name '%.64s' is not the token's subject '%.64s'", a,
				     j->sub);
	return CCB_OK;
}

/* Copy src to dst[n]; false if it does not fit (never truncate identities). */
static bool copy_in(char *dst, size_t n, const char *src)
{
	int w = snprintf(dst, n, "%s", src ? src : "");
	return w >= 0 && (size_t)w < n;
}

/* Identity = sub split at the last '@', the domain lower-cased (§7.4); the
 * AuthToken* claims and the scopes comma-joined as TokenScopes (§9.3). */
static ccb_err fill_result(const ccb__jwt *j, ccb__auth_result *r, ccb_error *err)
{
	char *at;
	bool fits = copy_in(r->peer_user, sizeof r->peer_user, j->sub) &&
		    copy_in(r->token_id, sizeof r->token_id, j->jti) &&
		    copy_in(r->token_issuer, sizeof r->token_issuer, j->iss) &&
		    copy_in(r->token_subject, sizeof r->token_subject, j->sub) &&
		    copy_in(r->token_scopes, sizeof r->token_scopes, j->scope);

	if (!fits)
		return ccb_error_set(err, CCB_ERR_AUTH, "TOKEN: token claims too long");
	if ((at = strrchr(r->peer_user, '@')))
		for (char *c = at + 1; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
	/* "condor:/READ condor:/WRITE" -> "condor:/READ,condor:/WRITE" */
	for (char *c = r->token_scopes; *c; c++)
		if (*c == ' ')
			*c = ',';
	return CCB_OK;
}

ccb_err ccb__auth_token_server(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *r,
			       ccb_error *err)
{
	static const ccb__auth_params none = {0};
	ccb__jwt j = {0};
	tkeys k = {0};
	tmsg t1 = {0}, t3 = {0};
	uint8_t rb[NONCE] = {0}, hkt[MAC] = {0};
	char b[CCB__TOKEN_NAME_MAX + 1] = "";
	ccb_error why = {0};
	ccb_err rc;
	bool ok;

	if (!p)
		p = &none;
	if (recv_t1(s, &t1)) {
		rc = stream_err(s, err, "read T1");
		goto out;
	}
	ok = server_check_t1(&t1, p, &j, &k, &why) == CCB_OK &&
	     server_name(p, b, sizeof b, &why) == CCB_OK &&
	     ccb_random_bytes(rb, NONCE, &why) == CCB_OK &&
	     ccb__token_hkt(k.k, t1.a, b, t1.ra, rb, hkt, &why) == CCB_OK;
	if (send_t2(s, ok, t1.a, b, t1.ra, rb, hkt)) {
		rc = stream_err(s, err, "send T2");
		goto out;
	}
	if (recv_t3(s, &t3)) {
		rc = stream_err(s, err, "read T3");
		goto out;
	}
	/* §7.4 Trap: a rejected T3 gets no answer; the client is not told. */
	if (ok && server_check_t3(&t3, t1.a, rb, &k, &j, &why) == CCB_OK && r &&
	    fill_result(&j, r, &why) == CCB_OK)
		rc = CCB_OK;
	else
		rc = ccb_error_set(err, CCB_ERR_AUTH, "%s",
				   why.detail[0] ? why.detail : "TOKEN: authentication failed");
out:
	OPENSSL_cleanse(&k, sizeof k);
	OPENSSL_cleanse(hkt, sizeof hkt);
	tmsg_clear(&t1);
	tmsg_clear(&t3);
	ccb__jwt_clear(&j);
	return rc;
}

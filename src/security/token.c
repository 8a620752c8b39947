/*
 * Public IDTOKENS API: mint (what condor_token_create does) and verify
 * (security-handshake.md §7.4; H:src/condor_io/condor_auth_passwd.cpp
 * generate_token 1844-1980, setup_shared_keys 1085-1130).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ccb/token.h"
#include "security/jwt.h"
#include "security/signing_key.h"

/* ---- JSON the way HTCondor writes it (jwt-cpp with picojson) ------------
 * Objects are std::maps, so keys come out sorted; no whitespace; strings
 * escape '"', '\\', '/', \b \f \n \r \t, other bytes below 0x20 and 0x7f
 * as \u00xx (lower-case hex); everything else, UTF-8 included, verbatim. */

static bool json_str(ccb_buf *b, const char *s)
{
	bool ok = ccb_buf_append(b, "\"", 1);

	for (; ok && *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '"':  ok = ccb_buf_append(b, "\\\"", 2); break;
		case '\\': ok = ccb_buf_append(b, "\\\\", 2); break;
		case '/':  ok = ccb_buf_append(b, "\\/", 2); break;
		case '\b': ok = ccb_buf_append(b, "\\b", 2); break;
		case '\f': ok = ccb_buf_append(b, "\\f", 2); break;
		case '\n': ok = ccb_buf_append(b, "\\n", 2); break;
		case '\r': ok = ccb_buf_append(b, "\\r", 2); break;
		case '\t': ok = ccb_buf_append(b, "\\t", 2); break;
		default:
			if (c < 0x20 || c == 0x7f)
				ok = ccb_buf_appendf(b, "\\u%04x", c);
			else
				ok = ccb_buf_append(b, s, 1);
		}
	}
	return ok && ccb_buf_append(b, "\"", 1);
}

/* One "key":value member; `first` tracks the comma. */
static bool member_str(ccb_buf *b, bool *first, const char *key, const char *val)
{
	bool ok = ccb_buf_append_str(b, *first ? "" : ",") && json_str(b, key) &&
		  ccb_buf_append(b, ":", 1) && json_str(b, val);
	*first = false;
	return ok;
}

static bool member_int(ccb_buf *b, bool *first, const char *key, int64_t val)
{
	bool ok = ccb_buf_append_str(b, *first ? "" : ",") && json_str(b, key) &&
		  ccb_buf_appendf(b, ":%" PRId64, val);
	*first = false;
	return ok;
}

/* "condor:/A condor:/B" (generate_token joins with " condor:/"). */
static bool build_scope(ccb_buf *b, const char *const *authz)
{
	for (size_t i = 0; authz[i]; i++)
		if (!ccb_buf_appendf(b, "%scondor:/%s", i ? " " : "", authz[i]))
			return false;
	return ccb_buf_terminate(b);
}

/* Payload members in key order: exp, iat, iss, jti, scope, sub. */
static bool build_payload(ccb_buf *b, const ccb_token_config *p, int64_t iat, const char *jti,
			  const char *scope)
{
	bool first = true;

	return ccb_buf_append(b, "{", 1) &&
	       (!p->lifetime || member_int(b, &first, "exp", iat + p->lifetime)) &&
	       member_int(b, &first, "iat", iat) && member_str(b, &first, "iss", p->issuer) &&
	       member_str(b, &first, "jti", jti) &&
	       (!scope || member_str(b, &first, "scope", scope)) &&
	       member_str(b, &first, "sub", p->subject) && ccb_buf_append(b, "}", 1);
}

static bool build_header(ccb_buf *b, const char *kid)
{
	bool first = true;

	return ccb_buf_append(b, "{", 1) && member_str(b, &first, "alg", "HS256") &&
	       member_str(b, &first, "kid", kid) && ccb_buf_append(b, "}", 1);
}

static ccb_err check_params(const ccb_token_config *p, ccb_error *err)
{
	if (!p || !p->issuer || !*p->issuer)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "token: an issuer (trust domain) is required");
	/* generate_token: "Issuer namespace may not contain spaces or commas". */
	if (strpbrk(p->issuer, ", \t"))
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "token: issuer may not contain spaces or commas");
	if (!p->subject || !*p->subject)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "token: a subject is required");
	/* Bounded so that iat + lifetime cannot overflow. */
	if (p->lifetime < 0 || p->lifetime > ((int64_t)1 << 40) || p->iat < 0 ||
	    p->iat > ((int64_t)1 << 40))
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "token: lifetime or iat out of range");
	if (p->jti && !*p->jti)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "token: empty jti");
	for (size_t i = 0; p->authz && p->authz[i]; i++)
		if (!*p->authz[i] || strpbrk(p->authz[i], " \t"))
			return ccb_error_set(err, CCB_ERR_INVALID_ARG, "token: bad authorization \"%s\"",
					     p->authz[i]);
	return CCB_OK;
}

static unsigned key_flags(const ccb_token_keys *k)
{
	return k->insecure_key_file ? 0 : CCB__SIGNING_KEY_CHECK_PERMS;
}

/* "<b64(header)>.<b64(payload)>" then ".<b64(signature)>". */
static ccb_err assemble(const char *header, const char *payload, const uint8_t jwt_key[32],
			char **out, ccb_error *err)
{
	uint8_t sig[32];
	ccb_buf t;
	ccb_err rc = CCB_ERR_NOMEM;

	ccb_buf_init(&t);
	if (ccb__b64url_encode(header, strlen(header), &t) && ccb_buf_append(&t, ".", 1) &&
	    ccb__b64url_encode(payload, strlen(payload), &t)) {
		rc = ccb__jwt_sign(CCB__JWT_HS256, jwt_key, 32, t.data, t.len, sig, err);
		if (rc == CCB_OK && !(ccb_buf_append(&t, ".", 1) &&
				      ccb__b64url_encode(sig, sizeof sig, &t) && ccb_buf_terminate(&t)))
			rc = CCB_ERR_NOMEM;
	}
	OPENSSL_cleanse(sig, sizeof sig);
	if (rc == CCB_ERR_NOMEM)
		ccb_error_set(err, rc, "token: out of memory");
	if (rc != CCB_OK) {
		ccb_buf_free(&t);
		return rc;
	}
	*out = ccb_buf_steal_str(&t);
	return CCB_OK;
}

ccb_err ccb_token_create(const ccb_token_config *p, char **out_token, ccb_error *err)
{
	const char *kid = p && p->kid && *p->kid ? p->kid : "POOL";
	uint8_t jwt_key[32], rnd[16];
	char jti[33];
	ccb_buf hdr, pay, scope;
	ccb_err rc;

	if (out_token)
		*out_token = NULL;
	if (!out_token)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "token: no output");
	if ((rc = check_params(p, err)) != CCB_OK)
		return rc;
	if (!p->jti) {
		/* Condor_Crypt_Base::randomHexKey(16): 32 hex digits. */
		if ((rc = ccb_random_bytes(rnd, sizeof rnd, err)) != CCB_OK)
			return rc;
		ccb_hex_encode(rnd, sizeof rnd, jti);
	}
	rc = ccb__signing_key_load(kid, p->keys.password_dir, p->keys.pool_key_file,
				   key_flags(&p->keys), jwt_key, err);
	if (rc != CCB_OK)
		return rc;
	ccb_buf_init(&hdr);
	ccb_buf_init(&pay);
	ccb_buf_init(&scope);
	if ((p->authz && p->authz[0] && !build_scope(&scope, p->authz)) || !build_header(&hdr, kid) ||
	    !ccb_buf_terminate(&hdr) ||
	    !build_payload(&pay, p, p->iat ? p->iat : ccb_wall_s(), p->jti ? p->jti : jti,
			   scope.len ? (char *)scope.data : NULL) ||
	    !ccb_buf_terminate(&pay))
		rc = ccb_error_set(err, CCB_ERR_NOMEM, "token: out of memory");
	else
		rc = assemble((char *)hdr.data, (char *)pay.data, jwt_key, out_token, err);
	OPENSSL_cleanse(jwt_key, sizeof jwt_key);
	ccb_buf_free(&hdr);
	ccb_buf_free(&pay);
	ccb_buf_free(&scope);
	return rc;
}

/* ---- verification ------------------------------------------------------ */

void ccb_token_info_clear(ccb_token_info *info)
{
	if (!info)
		return;
	free(info->kid);
	free(info->issuer);
	free(info->subject);
	free(info->jti);
	free(info->scope);
	for (size_t i = 0; i < info->n_scopes; i++)
		free(info->scopes[i]);
	free(info->scopes);
	memset(info, 0, sizeof *info);
}

static bool split_scope(ccb_token_info *info, const char *scope)
{
	const char *s = scope;

	for (;;) {
		size_t n;
		char **v;
		s += strspn(s, " ");
		if (!*s)
			return true;
		n = strcspn(s, " ");
		v = realloc(info->scopes, (info->n_scopes + 1) * sizeof *v);
		if (!v)
			return false;
		info->scopes = v;
		if (!(v[info->n_scopes] = ccb_strndup(s, n)))
			return false;
		info->n_scopes++;
		s += n;
	}
}

/* Move the claims of j into info. */
static bool fill_info(ccb__jwt *j, ccb_token_info *info)
{
	info->kid = j->kid;
	info->issuer = j->iss;
	info->subject = j->sub;
	info->jti = j->jti;
	info->scope = j->scope;
	j->kid = j->iss = j->sub = j->jti = j->scope = NULL;
	info->iat = j->iat;
	info->exp = j->exp;
	info->has_iat = j->has_iat;
	info->has_exp = j->has_exp;
	return !info->scope || split_scope(info, info->scope);
}

static ccb_err verify_parsed(ccb__jwt *j, const ccb_token_verify_config *p, ccb_error *err)
{
	uint8_t jwt_key[32];
	ccb_err rc = ccb__signing_key_load(j->kid, p->keys.password_dir, p->keys.pool_key_file,
					   key_flags(&p->keys), jwt_key, err);

	if (rc != CCB_OK)
		return rc;
	rc = ccb__jwt_verify(j, jwt_key, err);
	OPENSSL_cleanse(jwt_key, sizeof jwt_key);
	if (rc != CCB_OK)
		return rc;
	if ((rc = ccb__jwt_check_claims(j, p->now ? p->now : ccb_wall_s(), p->max_age, err)) != CCB_OK)
		return rc;
	if (p->trust_domain && *p->trust_domain && strcmp(j->iss, p->trust_domain))
		return ccb_error_set(err, CCB_ERR_NOT_AUTHORIZED,
				     "token issuer \"%s\" is not the trust domain \"%s\"", j->iss,
				     p->trust_domain);
	return CCB_OK;
}

ccb_err ccb_token_verify(const char *token, const ccb_token_verify_config *p,
			 ccb_token_info *info, ccb_error *err)
{
	ccb__jwt j;
	size_t len;
	ccb_err rc;

	if (info)
		memset(info, 0, sizeof *info);
	if (!token || !p)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "token verify: no token or params");
	token += strspn(token, " \t\r\n");
	len = strlen(token);
	while (len && strchr(" \t\r\n", token[len - 1]))
		len--;
	rc = ccb__jwt_parse(token, len, 0, &j, err);
	if (rc == CCB_OK)
		rc = verify_parsed(&j, p, err);
	if (rc == CCB_OK && info && !fill_info(&j, info)) {
		ccb_token_info_clear(info);
		rc = ccb_error_set(err, CCB_ERR_NOMEM, "token verify: out of memory");
	}
	ccb__jwt_clear(&j);
	return rc;
}

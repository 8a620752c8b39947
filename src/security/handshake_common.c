/*
 * What both sides of DC_AUTHENTICATE share (security-handshake.md §3, §5):
 * message helpers, level and method defaults, the public session store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ccb/classad.h"
#include "ccb/security.h"
#include "cedar/stream_internal.h"
#include "classad/classad_internal.h"
#include "security/auth.h"
#include "security/handshake_internal.h"
#include "security/policy.h"
#include "security/session_cache.h"

const char *ccb_perm_name(ccb_perm perm)
{
	static const char *const names[] = {"ALLOW", "READ", "WRITE", "ADMINISTRATOR", "DAEMON"};
	return perm < CCB_PERM_COUNT ? names[perm] : "?";
}

ccb__sec_level ccb__sec_to_level(ccb_sec_level l, ccb__sec_level dflt)
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

void ccb__sec_usable_methods(const char *list, bool server, bool no_ssl, char *out, size_t size)
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

ccb_err ccb__sec_stream_fail(ccb_stream *s, ccb_error *err, const char *step)
{
	const ccb_error *e = ccb_stream_error(s);
	return ccb_error_set(err, e->code, "%s: %s", step, e->detail);
}

ccb_err ccb__sec_get_ad(ccb_stream *s, ccb_classad **ad, ccb_error *err, const char *step)
{
	ccb_cursor *c = ccb__stream_in(s);
	ccb_error e;

	*ad = NULL;
	if (!c)
		return ccb__sec_stream_fail(s, err, step);
	if (ccb__classad_decode(c, ad, CCB_CLASSAD_DECODE_POD, &e)) {
		ccb__stream_fail(s, &e);
		return ccb_error_set(err, e.code, "%s: %s", step, e.detail);
	}
	if (ccb_stream_end_of_message(s)) {
		ccb_classad_free(*ad);
		*ad = NULL;
		return ccb__sec_stream_fail(s, err, step);
	}
	return CCB_OK;
}

ccb_err ccb__sec_put_ad(ccb_stream *s, const ccb_classad *ad, ccb_error *err, const char *step)
{
	if (ccb_classad_put(s, ad, NULL) || ccb_stream_end_message(s))
		return ccb__sec_stream_fail(s, err, step);
	return CCB_OK;
}

void ccb__sec_copy_attr(const ccb_classad *ad, const char *name, char *out, size_t size)
{
	const char *v = NULL;

	out[0] = '\0';
	if (ccb_classad_get_string(ad, name, &v) == CCB_OK)
		snprintf(out, size, "%s", v);
}

ccb_err ccb__sec_make_nonce(char out[48], ccb_error *err)
{
	uint8_t raw[33];
	ccb_err rc = ccb_random_bytes(raw, sizeof raw, err);

	if (rc == CCB_OK)
		EVP_EncodeBlock((unsigned char *)out, raw, sizeof raw);
	return rc;
}

/* ---- the public session store ---------------------------------------------- */

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


/* ClassAds on a CEDAR stream (classad-wire.md §1, §6). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cedar/stream_internal.h"
#include "classad/classad_internal.h"

/* First HTCondor version that receives private attributes in the clear. */
#define PEER_PRIVATE_OK CCB_VERSION_NUM(9, 9, 0)

typedef enum { SEND_PLAIN, SEND_MARKED, SEND_NOTHING } send_mode;

/* What _putClassAd writes for one attribute (H:classad_oldnew.cpp:672-825,
 * projection 826-900). `noop` is prepare_crypto_for_secret_is_noop
 * (H:stream.cpp:1277-1290): true under AES, under a legacy cipher with
 * crypto mode on, and without a key; false with a legacy key and crypto off,
 * when secrets are enciphered one by one. */
static send_mode mode_for(const char *name, const ccb_classad_put_config *o, bool noop)
{
	bool v2 = strncasecmp(name, "_condor_priv", 12) == 0;
	bool old_peer = o->peer_version < PEER_PRIVATE_OK;

	if (!ccb_attr_is_private(name))
		return SEND_PLAIN;
	if (o->no_private || (v2 && old_peer))
		return SEND_NOTHING;
	if (o->projection)
		return noop ? SEND_PLAIN : SEND_MARKED;
	/* Peer unknown or older than 9.9.0, or secrets to encipher: the marker
	 * and a secret (in clear when crypto is a no-op). */
	return noop && !old_peer ? SEND_PLAIN : SEND_MARKED;
}

static bool encode(ccb_buf *b, bool crypto, ccb_stream *sec, const ccb_classad *ad,
		   const ccb_classad_put_config *opts);

bool ccb__classad_encode(ccb_buf *b, bool crypto, const ccb_classad *ad,
			 const ccb_classad_put_config *opts)
{
	return encode(b, crypto, NULL, ad, opts);
}

bool ccb__classad_encode_stream(ccb_stream *s, const ccb_classad *ad,
				const ccb_classad_put_config *opts)
{
	return encode(ccb__stream_out(s), ccb_stream_crypto_on(s), s, ad, opts);
}

static bool encode(ccb_buf *b, bool crypto, ccb_stream *sec, const ccb_classad *ad,
		   const ccb_classad_put_config *opts)
{
	static const ccb_classad_put_config defaults = {0};
	bool noop = !sec || !ccb__stream_secrets_enciphered(sec);
	size_t n = ccb_classad_count(ad), count = 0, *order;
	ccb_buf line;
	bool ok = true;

	if (!opts)
		opts = &defaults;
	/* Wire order, or case-insensitive alphabetical for a projection. */
	if (!(order = malloc((n ? n : 1) * sizeof *order)))
		return false;
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	if (opts->projection && n > 1) {
		/* Insertion sort (handshake ads are small); the names of one ad
		 * are distinct case-insensitively, so the order is total. */
		size_t *tmp = order;
		for (size_t i = 1; i < n; i++) {
			size_t v = tmp[i], j = i;
			while (j > 0 && strcasecmp(ccb_classad_name_at(ad, tmp[j - 1]),
						   ccb_classad_name_at(ad, v)) > 0) {
				tmp[j] = tmp[j - 1];
				j--;
			}
			tmp[j] = v;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (mode_for(ccb_classad_name_at(ad, i), opts, noop) != SEND_NOTHING)
			count++;
	if (!ccb_enc_int(b, (int64_t)count))
		return false;
	ccb_buf_init(&line);
	for (size_t k = 0; ok && k < n; k++) {
		size_t i = order[k];
		send_mode m = mode_for(ccb_classad_name_at(ad, i), opts, noop);
		size_t from;
		if (m == SEND_NOTHING)
			continue;
		ccb_buf_reset(&line);
		ok = ccb__classad_print_line(&line, ad, i) &&
		     (m != SEND_MARKED || ccb_enc_string(b, crypto, CCB_SECRET_MARKER));
		from = b->len;
		/* put_secret: the ON string form, enciphered, when crypto is off
		 * with a legacy key (H:stream.cpp:685-697). */
		ok = ok && ccb_enc_string_n(b, crypto || (m == SEND_MARKED && !noop),
					    (const char *)line.data, line.len);
		if (ok && m == SEND_MARKED && !noop)
			ok = ccb__stream_encipher_tail(sec, from) == CCB_OK;
	}
	ccb_buf_free(&line);
	free(order);
	/* C++ always sends empty MyType and TargetType trailers (H:classad_oldnew.cpp:640-670). */
	return ok && ccb_enc_string(b, crypto, "") && ccb_enc_string(b, crypto, "");
}

ccb_err ccb__classad_decode(ccb_cursor *c, ccb_classad **out, int flags, ccb_error *err)
{
	bool pod = flags & CCB_CLASSAD_DECODE_POD;
	int64_t max = pod ? CCB_CLASSAD_POD_MAX_ATTRS : CCB_CLASSAD_MAX_ATTRS;
	int64_t n;
	ccb_classad *ad;
	ccb_err rc;

	*out = NULL;
	if ((rc = ccb_dec_int(c, &n, err)))
		return ccb_error_prefix(err, "ClassAd attribute count: ");
	if (n < 0 || n > max)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "ClassAd attribute count %lld outside 0..%lld",
				     (long long)n, (long long)max);
	/* Each attribute needs at least 2 bytes, so a count the message cannot
	 * hold is rejected before any allocation. */
	if ((uint64_t)n > ccb_cursor_left(c) / 2)
		return ccb_error_set(err, CCB_ERR_PROTOCOL,
				     "ClassAd claims %lld attributes in %zu bytes", (long long)n,
				     ccb_cursor_left(c));
	ad = ccb__classad_new();
	if (!ad)
		return ccb_error_set(err, CCB_ERR_NOMEM, "ClassAd");
	for (int64_t i = 0; i < n; i++) {
		const char *s, *name, *rhs;
		size_t len, name_len, rhs_len;
		bool is_null;

		if ((rc = ccb_dec_string_view(c, &s, &len, &is_null, err)))
			goto fail_prefix;
		/* A "ZKM" marker: the next string is the real attribute, read as a
		 * secret (H:classad_oldnew.cpp:64-80). The pair counts once in N. */
		if (!is_null && len == 3 && !memcmp(s, CCB_SECRET_MARKER, 3)) {
			if (pod) {
				rc = ccb_error_set(err, CCB_ERR_PROTOCOL,
						   "secret attribute in a handshake ad");
				goto fail;
			}
			if ((rc = ccb_dec_secret_view(c, &s, &len, &is_null, err)))
				goto fail_prefix;
		}
		if (is_null || !ccb__classad_split_line(s, len, &name, &name_len, &rhs, &rhs_len)) {
			rc = ccb_error_set(err, CCB_ERR_PROTOCOL,
					   "ClassAd attribute %lld is not 'Name = value': '%.*s'",
					   (long long)i, (int)(len > 60 ? 60 : len), is_null ? "" : s);
			goto fail;
		}
		if (pod && !ccb__classad_rhs_is_literal(rhs, rhs_len)) {
			rc = ccb_error_set(err, CCB_ERR_PROTOCOL,
					   "handshake attribute '%.*s' is not a literal",
					   (int)(name_len > 60 ? 60 : name_len), name);
			goto fail;
		}
		{
			/* The line is not NUL-terminated in the buffer under AES
			 * framing, so parse a bounded copy. */
			char *line = ccb_strndup(s, len);
			if (!line) {
				rc = ccb_error_set(err, CCB_ERR_NOMEM, "ClassAd line");
				goto fail;
			}
			rc = ccb_classad_parse_line(ad, line, err);
			free(line);
			if (rc == CCB_ERR_PARSE) {
				/* Unparsable text from the network is a protocol error. */
				rc = CCB_ERR_PROTOCOL;
				if (err)
					err->code = rc;
			}
			if (rc)
				goto fail;
		}
	}
	/* MyType and TargetType trailers: read and ignored, as C++ does. */
	for (int i = 0; i < 2; i++) {
		const char *s;
		size_t len;
		bool is_null;
		if ((rc = ccb_dec_string_view(c, &s, &len, &is_null, err)))
			goto fail_prefix;
	}
	*out = ad;
	return CCB_OK;
fail_prefix:
	ccb_error_prefix(err, "ClassAd: ");
fail:
	ccb_classad_free(ad);
	return rc;
}

ccb_err ccb_classad_put(ccb_stream *s, const ccb_classad *ad, const ccb_classad_put_config *opts)
{
	if (!ccb__classad_encode_stream(s, ad, opts)) {
		ccb_error e;
		ccb_error_set(&e, CCB_ERR_NOMEM, "encoding ClassAd");
		return ccb__stream_fail(s, &e);
	}
	return CCB_OK;
}

ccb_err ccb_classad_get(ccb_stream *s, ccb_classad **out)
{
	ccb_cursor *c = ccb__stream_in(s);
	ccb_error e;

	*out = NULL;
	if (!c)
		return ccb_stream_error(s)->code;
	if (ccb__classad_decode(c, out, 0, &e))
		return ccb__stream_fail(s, &e);
	return CCB_OK;
}

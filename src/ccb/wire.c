/*
 * CCB wire helpers: control ads, the reverse-connect hello and result
 * reports (ccb-protocol.md §2, §4-§7; classad-wire.md §6; cedar-stream.md §4).
 */
#include <stdarg.h>
#include <string.h>

#include "ccb/wire.h"
#include "cedar/stream_internal.h"
#include "classad/classad_internal.h"

/* The command int in front of the hello's ad (cedar-stream.md §3: 8 bytes). */
#define HELLO_INT_LEN 8

/* Attributes that are strings whenever a hello carries them: C++ fills
 * them from LookupString results (H:src/ccb/ccb_listener.cpp:475-499) and
 * aborts on a forwarded request without string ClaimId, RequestID or
 * MyAddress (lst:446-455), so another type only comes from a broken peer. */
static const char *const hello_string_attrs[] = {
	CCB_ATTR_REQUEST_ID,
	CCB_ATTR_MY_ADDRESS,
	CCB_ATTR_CCB_ROUTE,
	CCB_ATTR_CCB_ORIGINAL_REQUESTER,
	CCB_ATTR_CCB_PRIOR_HOP,
};

static const char *type_name(ccb_value_type t)
{
	switch (t) {
	case CCB_VAL_ABSENT: return "absent";
	case CCB_VAL_UNDEFINED: return "undefined";
	case CCB_VAL_ERROR: return "error";
	case CCB_VAL_BOOL: return "bool";
	case CCB_VAL_INT: return "int";
	case CCB_VAL_REAL: return "real";
	case CCB_VAL_STRING: return "string";
	case CCB_VAL_EXPR: return "an expression";
	}
	return "unknown";
}

/* ---- building ads ------------------------------------------------------- */

ccb_err ccb_ad_new(const ccb_ad_field *fields, size_t n, ccb_classad **out, ccb_error *err)
{
	ccb_classad *ad;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_ad_new: NULL out");
	*out = NULL;
	if (!fields && n)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_ad_new: NULL fields");
	if (!(ad = ccb__classad_new()))
		return ccb_error_set(err, CCB_ERR_NOMEM, "ccb_ad_new");
	for (size_t i = 0; i < n; i++) {
		const ccb_ad_field *f = &fields[i];
		ccb_err rc;

		switch (f->type) {
		case CCB_VAL_INT: rc = ccb_classad_set_int(ad, f->name, f->i); break;
		case CCB_VAL_BOOL: rc = ccb_classad_set_bool(ad, f->name, f->b); break;
		case CCB_VAL_STRING:
			/* NULL marks an optional attribute that is not sent. */
			rc = f->s ? ccb_classad_set_string(ad, f->name, f->s) : CCB_OK;
			break;
		default: rc = CCB_ERR_INVALID_ARG; break;
		}
		if (rc) {
			ccb_classad_free(ad);
			return ccb_error_set(err, rc, "ccb_ad_new: field %zu (%s, %s): %s", i,
					     f->name ? f->name : "NULL", type_name(f->type),
					     ccb_strerror(rc));
		}
	}
	*out = ad;
	return CCB_OK;
}

/* ---- reading attributes -------------------------------------------------- */

/* Turn a getter's NOT_FOUND / TYPE into a protocol error naming the
 * attribute and both types. */
static ccb_err need_fail(const ccb_classad *ad, const char *name, ccb_err rc, ccb_value_type want,
			 ccb_error *err)
{
	if (rc == CCB_ERR_NOT_FOUND)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "missing %s attribute %s",
				     type_name(want), name);
	if (rc == CCB_ERR_TYPE)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "attribute %s is %s, not %s", name,
				     type_name(ccb_classad_type(ad, name)), type_name(want));
	return ccb_error_set(err, rc, "attribute %s: %s", name, ccb_strerror(rc));
}

ccb_err ccb_ad_need_string(const ccb_classad *ad, const char *name, const char **v,
			   ccb_error *err)
{
	ccb_err rc;

	if (!ad || !name || !v)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_ad_need_string: NULL argument");
	if ((rc = ccb_classad_get_string(ad, name, v)))
		return need_fail(ad, name, rc, CCB_VAL_STRING, err);
	return CCB_OK;
}

ccb_err ccb_ad_need_int(const ccb_classad *ad, const char *name, int64_t *v, ccb_error *err)
{
	ccb_err rc;

	if (!ad || !name || !v)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_ad_need_int: NULL argument");
	/* The getter also takes a boolean as 0/1, as ClassAd evaluation does. */
	if ((rc = ccb_classad_get_int(ad, name, v)))
		return need_fail(ad, name, rc, CCB_VAL_INT, err);
	return CCB_OK;
}

ccb_err ccb_ad_need_bool(const ccb_classad *ad, const char *name, bool *v, ccb_error *err)
{
	ccb_err rc;

	if (!ad || !name || !v)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_ad_need_bool: NULL argument");
	if ((rc = ccb_classad_get_bool(ad, name, v)))
		return need_fail(ad, name, rc, CCB_VAL_BOOL, err);
	return CCB_OK;
}

ccb_err ccb_ad_need_decimal(const ccb_classad *ad, const char *name, uint64_t *v,
			    ccb_error *err)
{
	const char *s;
	uint64_t x = 0;
	size_t len;

	if (!ad || !name || !v)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ccb_ad_need_decimal: NULL argument");
	if (ccb_classad_type(ad, name) == CCB_VAL_INT) {
		int64_t i;
		ccb_classad_get_int(ad, name, &i);
		if (i < 0)
			return ccb_error_set(err, CCB_ERR_PROTOCOL, "attribute %s is negative (%lld)",
					     name, (long long)i);
		*v = (uint64_t)i;
		return CCB_OK;
	}
	if (ccb_ad_need_string(ad, name, &s, err))
		return CCB_ERR_PROTOCOL;
	/* Digits only, as the C++ broker checks request ids and CCBIDs
	 * (ccb-protocol.md §6.2, §6.4); no sign, no spaces. */
	len = strlen(s);
	if (len == 0 || len > 20 || strspn(s, "0123456789") != len)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "attribute %s = \"%.40s\" is not a decimal id",
				     name, s);
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return ccb_error_set(err, CCB_ERR_PROTOCOL,
					     "attribute %s = \"%s\" does not fit in 64 bits", name, s);
		x = x * 10 + d;
	}
	*v = x;
	return CCB_OK;
}

const char *ccb_ad_string_or(const ccb_classad *ad, const char *name, const char *dflt)
{
	const char *v;

	if (!ad || !name || ccb_classad_get_string(ad, name, &v))
		return dflt;
	return v;
}

bool ccb_ad_bool_or(const ccb_classad *ad, const char *name, bool dflt)
{
	bool v;

	if (!ad || !name || ccb_classad_get_bool(ad, name, &v))
		return dflt;
	return v;
}

/* ---- stream plumbing ----------------------------------------------------- */

/* A stream failure, reported with the step and the stream's own detail
 * (which names the peer). */
static ccb_err stream_err(ccb_stream *s, ccb_err rc, ccb_error *err, const char *step)
{
	const ccb_error *e = ccb_stream_error(s);

	if (e->code)
		rc = e->code;
	return ccb_error_set(err, rc ? rc : CCB_ERR_STATE, "%s: %s", step, e->detail);
}

/* The peer broke the protocol: record it on the stream (which is then
 * broken: the caller must close it) and report it. */
static ccb_err peer_fail(ccb_stream *s, ccb_error *err, const char *step, ccb_err code,
			 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static ccb_err peer_fail(ccb_stream *s, ccb_error *err, const char *step, ccb_err code,
			 const char *fmt, ...)
{
	ccb_error e;
	va_list ap;

	va_start(ap, fmt);
	ccb_error_setv(&e, code, fmt, ap);
	va_end(ap);
	ccb__stream_fail(s, &e);
	return stream_err(s, code, err, step);
}

/* Encode [int 69 +] ad as the whole outbound message and send it. The ad is
 * encoded straight into the stream's outbound buffer, which must be empty,
 * so an oversized one can be dropped before anything goes out. */
static ccb_err send_ad(ccb_stream *s, bool hello, const ccb_classad *ad, unsigned peer_version,
		       ccb_error *err, const char *step)
{
	/* Private attributes go out: ClaimId is the payload of these messages
	 * (G:ccb/ccb.go:113-121 opts in the same way). */
	ccb_classad_put_config opts = {.no_private = false, .peer_version = peer_version};
	ccb_buf *out = ccb__stream_out(s);
	ccb_err rc;

	if (out->len)
		return ccb_error_set(err, CCB_ERR_STATE,
				     "%s: another outbound message is being built (%zu bytes)", step,
				     out->len);
	if ((hello && !ccb_enc_int(out, CCB_CMD_CCB_REVERSE_CONNECT)) ||
	    !ccb__classad_encode_stream(s, ad, &opts)) {
		ccb_buf_reset(out);
		return ccb_error_set(err, CCB_ERR_NOMEM, "%s: encoding the ClassAd", step);
	}
	if (out->len > CCB_CONTROL_MAX_MESSAGE) {
		size_t len = out->len;
		ccb_buf_reset(out);
		return ccb_error_set(err, CCB_ERR_TOO_LARGE,
				     "%s: message of %zu bytes exceeds the %d-byte CCB control cap",
				     step, len, CCB_CONTROL_MAX_MESSAGE);
	}
	if ((rc = ccb_stream_end_message(s)))
		return stream_err(s, rc, err, step);
	return CCB_OK;
}

/* Load the next message under the control cap. The cap only matters while
 * the message is read from the socket, so the default is put back at once. */
static ccb_err load_capped(ccb_stream *s, ccb_error *err, const char *step)
{
	ccb_cursor *c;

	if (ccb_stream_unread(s))
		return ccb_error_set(err, CCB_ERR_STATE, "%s: %zu bytes of the previous message unread",
				     step, ccb_stream_unread(s));
	ccb_stream_set_max_message(s, CCB_CONTROL_MAX_MESSAGE);
	c = ccb__stream_in(s);
	ccb_stream_set_max_message(s, CCB_STREAM_DEFAULT_MAX_MESSAGE);
	if (!c)
		return stream_err(s, CCB_ERR_STATE, err, step);
	return CCB_OK;
}

/* One ad filling the rest of the current message (cedar-stream.md §1: bytes
 * left at end of message are an error, as in C++). */
static ccb_err read_one_ad(ccb_stream *s, ccb_classad **out, ccb_error *err, const char *step)
{
	ccb_err rc;

	if ((rc = ccb_classad_get(s, out)))
		return stream_err(s, rc, err, step);
	if ((rc = ccb_stream_end_of_message(s))) {
		ccb_classad_free(*out);
		*out = NULL;
		return stream_err(s, rc, err, step);
	}
	return CCB_OK;
}

/* ---- control messages ----------------------------------------------------- */

ccb_err ccb_control_ad_write(ccb_stream *s, const ccb_classad *ad, unsigned peer_version,
			     ccb_error *err)
{
	if (!s || !ad)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "write CCB control ad: NULL argument");
	return send_ad(s, false, ad, peer_version, err, "write CCB control ad");
}

ccb_err ccb_control_ad_read(ccb_stream *s, ccb_classad **out, ccb_error *err)
{
	static const char step[] = "read CCB control ad";
	ccb_err rc;

	if (!s || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "%s: NULL argument", step);
	*out = NULL;
	if ((rc = load_capped(s, err, step)))
		return rc;
	return read_one_ad(s, out, err, step);
}

/* ---- the hello ------------------------------------------------------------- */

/* What every hello must satisfy (see ccb_hello_read_ad()); `code` is
 * CCB_ERR_INVALID_ARG for our own ad, CCB_ERR_PROTOCOL for a peer's. */
static ccb_err check_hello(const ccb_classad *ad, ccb_err code, ccb_error *err)
{
	const char *id;
	ccb_error e;

	if (ccb_ad_need_string(ad, CCB_ATTR_CLAIM_ID, &id, &e))
		return ccb_error_set(err, code, "%s", e.detail);
	if (!id[0])
		return ccb_error_set(err, code, "empty %s (connect id)", CCB_ATTR_CLAIM_ID);
	for (size_t i = 0; i < sizeof hello_string_attrs / sizeof hello_string_attrs[0]; i++) {
		ccb_value_type t = ccb_classad_type(ad, hello_string_attrs[i]);
		if (t != CCB_VAL_ABSENT && t != CCB_VAL_STRING)
			return ccb_error_set(err, code, "attribute %s is %s, not string",
					     hello_string_attrs[i], type_name(t));
	}
	return CCB_OK;
}

ccb_err ccb_hello_ad_new(const char *connect_id, const char *request_id, const char *my_address,
			 ccb_classad **out, ccb_error *err)
{
	ccb_ad_field f[] = {
		CCB_AD_STRING(CCB_ATTR_CLAIM_ID, connect_id),
		CCB_AD_STRING(CCB_ATTR_REQUEST_ID, request_id),
		CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, my_address),
	};

	if (out)
		*out = NULL;
	if (!connect_id || !connect_id[0])
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "hello: empty connect id");
	return ccb_ad_new(f, CCB_AD_NFIELDS(f), out, err);
}

ccb_err ccb_hello_ad_from_request(const ccb_classad *request, ccb_classad **out, ccb_error *err)
{
	const char *addr, *id, *reqid, *v;
	ccb_classad *ad;
	ccb_err rc;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "hello from request: NULL out");
	*out = NULL;
	if (!request)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "hello from request: NULL request");
	/* lst:446-455: all three must be strings (C++ EXCEPTs otherwise). */
	if (ccb_ad_need_string(request, CCB_ATTR_MY_ADDRESS, &addr, err) ||
	    ccb_ad_need_string(request, CCB_ATTR_CLAIM_ID, &id, err) ||
	    ccb_ad_need_string(request, CCB_ATTR_REQUEST_ID, &reqid, err))
		return ccb_error_prefix(err, "forwarded CCB request: ");
	if (!id[0])
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "forwarded CCB request: empty %s",
				     CCB_ATTR_CLAIM_ID);
	if ((rc = ccb_hello_ad_new(id, reqid, addr, &ad, err)))
		return rc;
	/* lst:488-498: the route only when non-empty, the audit trail whenever
	 * it is a string. */
	rc = CCB_OK;
	if (!ccb_classad_get_string(request, CCB_ATTR_CCB_ROUTE, &v) && v[0])
		rc = ccb_classad_set_string(ad, CCB_ATTR_CCB_ROUTE, v);
	if (!rc && !ccb_classad_get_string(request, CCB_ATTR_CCB_ORIGINAL_REQUESTER, &v))
		rc = ccb_classad_set_string(ad, CCB_ATTR_CCB_ORIGINAL_REQUESTER, v);
	if (!rc && !ccb_classad_get_string(request, CCB_ATTR_CCB_PRIOR_HOP, &v))
		rc = ccb_classad_set_string(ad, CCB_ATTR_CCB_PRIOR_HOP, v);
	if (rc) {
		ccb_classad_free(ad);
		return ccb_error_set(err, rc, "hello from request: %s", ccb_strerror(rc));
	}
	*out = ad;
	return CCB_OK;
}

ccb_err ccb_hello_write(ccb_stream *s, const ccb_classad *hello, unsigned peer_version,
			ccb_error *err)
{
	static const char step[] = "write CCB_REVERSE_CONNECT hello";
	ccb_err rc;

	if (!s || !hello)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "%s: NULL argument", step);
	if ((rc = check_hello(hello, CCB_ERR_INVALID_ARG, err)))
		return ccb_error_prefix(err, "%s: ", step);
	/* lst:557-575: int 69 + ad + EOM in one message. */
	if ((rc = send_ad(s, true, hello, peer_version, err, step)))
		return rc;
	/* lst:573: the requester's exchange that follows must not see the hello
	 * in its handshake digests (cedar-stream.md §4). */
	ccb_stream_reset_digests(s);
	return CCB_OK;
}

ccb_err ccb_hello_read_ad(ccb_stream *s, int64_t cmd, const char *expect_connect_id,
			  ccb_classad **out, ccb_error *err)
{
	static const char step[] = "read CCB_REVERSE_CONNECT hello";
	const char *id;
	ccb_error e;
	ccb_err rc;

	if (!s || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "%s: NULL argument", step);
	*out = NULL;
	/* cli:1242-1253: anything but 69 is not a hello. */
	if (cmd != CCB_CMD_CCB_REVERSE_CONNECT) {
		const char *name = ccb_command_name(cmd);
		return peer_fail(s, err, step, CCB_ERR_PROTOCOL,
				 "expected command %d (CCB_REVERSE_CONNECT), got %lld%s%s%s",
				 CCB_CMD_CCB_REVERSE_CONNECT, (long long)cmd, name ? " (" : "",
				 name ? name : "", name ? ")" : "");
	}
	/* The ad must follow the int in the same message (§2). Nothing left
	 * means the message was only the int, or already finished by the
	 * caller; either way there is no hello to read. */
	if (!ccb_stream_unread(s))
		return peer_fail(s, err, step, CCB_ERR_PROTOCOL,
				 "message ends after the command int: no ClassAd");
	/* When a dispatcher loaded the message it used its own cap. */
	if (ccb_stream_unread(s) > CCB_CONTROL_MAX_MESSAGE - HELLO_INT_LEN)
		return peer_fail(s, err, step, CCB_ERR_TOO_LARGE,
				 "hello ad of %zu bytes exceeds the %d-byte CCB control cap",
				 ccb_stream_unread(s), CCB_CONTROL_MAX_MESSAGE);
	if ((rc = read_one_ad(s, out, err, step)))
		return rc;
	if ((rc = check_hello(*out, CCB_ERR_PROTOCOL, &e)))
		goto bad;
	ccb_classad_get_string(*out, CCB_ATTR_CLAIM_ID, &id);
	if (expect_connect_id && strcmp(id, expect_connect_id) != 0) {
		rc = ccb_error_set(&e, CCB_ERR_PROTOCOL,
				   "hello carries connect id %.48s, not this request's", id);
		goto bad;
	}
	/* cli:1261: the command exchange that follows starts with fresh
	 * handshake digests on both ends (cedar-stream.md §4). */
	ccb_stream_reset_digests(s);
	return CCB_OK;
bad:
	ccb_classad_free(*out);
	*out = NULL;
	return peer_fail(s, err, step, rc, "%s", e.detail);
}

ccb_err ccb_hello_read(ccb_stream *s, const char *expect_connect_id, ccb_classad **out,
		       ccb_error *err)
{
	static const char step[] = "read CCB_REVERSE_CONNECT hello";
	int64_t cmd;
	ccb_err rc;

	if (!s || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "%s: NULL argument", step);
	*out = NULL;
	if ((rc = load_capped(s, err, step)))
		return rc;
	if ((rc = ccb_stream_get_int(s, &cmd)))
		return stream_err(s, rc, err, step);
	return ccb_hello_read_ad(s, cmd, expect_connect_id, out, err);
}

ccb_err ccb_result_ad_new(const ccb_classad *hello, bool success, const char *error_string,
			  ccb_classad **out, ccb_error *err)
{
	ccb_classad *ad;
	ccb_err rc;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "result ad: NULL out");
	*out = NULL;
	if (!hello)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "result ad: NULL hello");
	/* lst:610-637: a copy of the hello ad, plus Result and, only when there
	 * is a message, ErrorString. */
	if (!(ad = ccb__classad_copy(hello)))
		return ccb_error_set(err, CCB_ERR_NOMEM, "result ad");
	rc = ccb_classad_set_bool(ad, CCB_ATTR_RESULT, success);
	if (!rc && error_string)
		rc = ccb_classad_set_string(ad, CCB_ATTR_ERROR_STRING, error_string);
	if (rc) {
		ccb_classad_free(ad);
		return ccb_error_set(err, rc, "result ad: %s", ccb_strerror(rc));
	}
	*out = ad;
	return CCB_OK;
}

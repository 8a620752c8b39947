/*
 * Sinful strings: parsing ("<host:port?params>" and the bare address forms
 * HTCondor accepts). The representation and the setters are in sinful.c.
 *
 * Rules from ../shared/spec/sinful.md; "sin:" is
 * H:src/condor_utils/condor_sinful.cpp at 7491a145.
 */
#include <stdlib.h>
#include <string.h>

#include "addr_internal.h"
#include "sinful_internal.h"
#include "util/util.h"

typedef enum addr__dec {
	DEC_OK,
	DEC_BAD_ESCAPE,
	DEC_NUL,
	DEC_NOMEM,
} addr__dec;

/* sin:121-160: '%' must be followed by exactly two hex digits (either
 * case); '+' is not a space (it separates "addrs" elements). HTCondor would
 * keep a decoded NUL and then lose everything after it in c_str(); we refuse
 * it instead. *bad gets the offset of a failing escape. */
static addr__dec url_decode(const char *p, size_t len, char **out, size_t *bad)
{
	char *d = malloc(len + 1);
	size_t j = 0;

	*out = NULL;
	if (!d)
		return DEC_NOMEM;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (p[i] != '%') {
			d[j++] = p[i];
			continue;
		}
		hi = i + 1 < len ? ccb_hex_digit((unsigned char)p[i + 1]) : -1;
		lo = i + 2 < len ? ccb_hex_digit((unsigned char)p[i + 2]) : -1;
		*bad = i;
		if (hi < 0 || lo < 0) {
			free(d);
			return DEC_BAD_ESCAPE;
		}
		if (hi == 0 && lo == 0) {
			free(d);
			return DEC_NUL;
		}
		d[j++] = (char)(hi << 4 | lo);
		i += 2;
	}
	d[j] = '\0';
	*out = d;
	return DEC_OK;
}

static ccb_err decode_field(const char *text, size_t from, size_t to, const char *what,
	char **out, ccb_error *err)
{
	size_t bad = 0;

	switch (url_decode(text + from, to - from, out, &bad)) {
	case DEC_OK:
		return CCB_OK;
	case DEC_BAD_ESCAPE:
		return addr__parse_error(err, "sinful", text,
			"bad %%-escape in parameter %s at offset %zu", what, from + bad);
	case DEC_NUL:
		return addr__parse_error(err, "sinful", text,
			"%%00 (NUL byte) in parameter %s at offset %zu", what, from + bad);
	case DEC_NOMEM:
		break;
	}
	return ccb_error_set(err, CCB_ERR_NOMEM, "parse sinful");
}

/* sin:193-248: pairs separated by runs of '&' or ';'; a key runs to '=',
 * '&' or ';' and must not be empty; a key without '=' has the empty value
 * (the noUDP flag). */
static ccb_err parse_params(ccb_sinful *s, const char *text, size_t i, size_t end,
	ccb_error *err)
{
	while (i < end) {
		size_t k, v;
		char *key, *value;
		ccb_err rc;

		while (i < end && (text[i] == '&' || text[i] == ';'))
			i++;
		if (i == end)
			break;
		for (k = i; i < end && text[i] != '=' && text[i] != '&' && text[i] != ';'; i++)
			;
		if (i == k)
			return addr__parse_error(err, "sinful", text,
				"empty parameter key at offset %zu", k);
		rc = decode_field(text, k, i, "key", &key, err);
		if (rc != CCB_OK)
			return rc;
		if (i < end && text[i] == '=') {
			for (v = ++i; i < end && text[i] != '&' && text[i] != ';'; i++)
				;
			rc = decode_field(text, v, i, "value", &value, err);
			if (rc != CCB_OK) {
				free(key);
				return rc;
			}
		} else {
			value = ccb_strdup("");
		}
		if (value && strcmp(key, "ccbid") == 0) {
			free(key);
			key = ccb_strdup(CCB_SINFUL_CCBID);
		}
		if (!key || !value) {
			free(key);
			free(value);
			return ccb_error_set(err, CCB_ERR_NOMEM, "parse sinful");
		}
		if (!addr__sinful_put_param(s, key, value, false))
			return ccb_error_set(err, CCB_ERR_NOMEM, "parse sinful");
	}
	return CCB_OK;
}

/* The host part after "<" (sin:34-119): "[v6]" or a run up to ':', '?' or
 * '>'. Returns the position after it, or 0 on error. */
static size_t parse_host(ccb_sinful *s, const char *text, size_t len, ccb_error *err)
{
	size_t p = 1, hl = 0;
	const char *h = text + p;

	if (p < len && text[p] == '[') {
		const char *close = memchr(text + p, ']', len - p);

		if (!close) {
			addr__parse_error(err, "sinful", text, "missing ']' after IPv6 address");
			return 0;
		}
		h = text + p + 1;
		hl = (size_t)(close - h);
		if (!addr__ipv6_literal(h, hl)) {
			addr__parse_error(err, "sinful", text, "bad IPv6 address in brackets");
			return 0;
		}
		p = (size_t)(close - text) + 1;
	} else {
		while (p + hl < len && !strchr(":?>", text[p + hl]))
			hl++;
		if (hl == 0) {
			addr__parse_error(err, "sinful", text, "empty host");
			return 0;
		}
		if (!addr__host_name(h, hl)) {
			addr__parse_error(err, "sinful", text,
				"bad character in host name (or longer than %d)", ADDR_HOST_MAX);
			return 0;
		}
		p += hl;
	}
	s->host = ccb_strndup(h, hl);
	if (!s->host) {
		ccb_error_set(err, CCB_ERR_NOMEM, "parse sinful");
		return 0;
	}
	return p;
}

/* ":" then a run of digits, possibly empty (sin:34-119). We also insist on
 * 0..65535, which split_sin leaves to atoi(). Returns the new position or 0
 * on error. */
static size_t parse_port(ccb_sinful *s, const char *text, size_t len, size_t p,
	ccb_error *err)
{
	size_t d;
	unsigned v = 0;

	if (p >= len || text[p] != ':')
		return p;
	for (d = ++p; p < len && text[p] >= '0' && text[p] <= '9'; p++) {
		if (p - d >= 5) {
			addr__parse_error(err, "sinful", text, "port out of range");
			return 0;
		}
		v = v * 10 + (unsigned)(text[p] - '0');
	}
	if (v > 65535) {
		addr__parse_error(err, "sinful", text, "port out of range");
		return 0;
	}
	if (p < len && text[p] != '?' && text[p] != '>') {
		addr__parse_error(err, "sinful", text, "bad port at offset %zu", p);
		return 0;
	}
	if (p > d)
		s->port = (int)v;
	return p;
}

/* v0 grammar of sinful.md §2 on text[0..len), which starts with '<'. */
static ccb_err parse_v0(const char *text, size_t len, ccb_sinful **out, ccb_error *err)
{
	ccb_sinful *s;
	size_t p;
	ccb_err rc = CCB_ERR_PARSE;
	const char *addrs;

	if (len == 0 || text[0] != '<')
		return addr__parse_error(err, "sinful", text, "missing '<' at start");
	s = calloc(1, sizeof *s);
	if (!s)
		return ccb_error_set(err, CCB_ERR_NOMEM, "parse sinful");
	s->port = -1;
	p = parse_host(s, text, len, err);
	if (p)
		p = parse_port(s, text, len, p, err);
	if (!p)
		goto fail;
	if (p < len && text[p] == '?') {
		const char *gt = memchr(text + p, '>', len - p);
		size_t end = gt ? (size_t)(gt - text) : len;

		rc = parse_params(s, text, p + 1, end, err);
		if (rc != CCB_OK)
			goto fail;
		rc = CCB_ERR_PARSE;
		p = end;
	}
	/* split_sin (sin:34-119): exactly ">" and the end of the string follow */
	if (p >= len) {
		addr__parse_error(err, "sinful", text, "missing '>' at end");
		goto fail;
	}
	if (text[p] != '>') {
		addr__parse_error(err, "sinful", text, "unexpected character at offset %zu", p);
		goto fail;
	}
	if (p + 1 != len) {
		addr__parse_error(err, "sinful", text, "text after '>' at offset %zu", p + 1);
		goto fail;
	}
	addrs = ccb_sinful_param(s, CCB_SINFUL_ADDRS);
	if (addrs && addr__check_addrs(addrs, err) != CCB_OK) {
		ccb_error_prefix(err, "sinful addrs: ");
		goto fail;
	}
	*out = s;
	return CCB_OK;
fail:
	ccb_sinful_free(s);
	return rc;
}

/* Parse pre + text + post (the bracket-adding forms of sinful.md §6). */
static ccb_err parse_wrapped(const char *pre, const char *text, size_t len,
	const char *post, ccb_sinful **out, ccb_error *err)
{
	size_t pl = strlen(pre), ql = strlen(post);
	char *buf = malloc(pl + len + ql + 1);
	ccb_err rc;

	if (!buf)
		return ccb_error_set(err, CCB_ERR_NOMEM, "parse address");
	memcpy(buf, pre, pl);
	memcpy(buf + pl, text, len);
	memcpy(buf + pl + len, post, ql + 1);
	rc = parse_v0(buf, pl + len + ql, out, err);
	free(buf);
	return rc;
}

/* hasTwoColonsInHost, used by Sinful::Sinful (sin:572-628): two ':' before
 * the first '?' (or with no '?') mean a naked IPv6 literal. */
static bool two_colons_in_host(const char *text)
{
	const char *c1 = strchr(text, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	const char *q = strchr(text, '?');

	return c2 && (!q || c2 < q);
}

/* ---- public ------------------------------------------------------------------- */

ccb_err ccb_sinful_parse(const char *text, ccb_sinful **out, ccb_error *err)
{
	size_t len;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "parse sinful: NULL out");
	*out = NULL;
	if (!text)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "parse sinful: NULL text");
	if (!addr__check_len(text, "sinful", &len, err))
		return CCB_ERR_PARSE;
	return parse_v0(text, len, out, err);
}

/* sin:572-628 (Sinful::Sinful): how bracket-less text is normalized. */
ccb_err ccb_sinful_parse_address(const char *text, ccb_sinful **out, ccb_error *err)
{
	size_t len;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "parse address: NULL out");
	*out = NULL;
	if (!text)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "parse address: NULL text");
	if (!addr__check_len(text, "address", &len, err))
		return CCB_ERR_PARSE;
	switch (text[0]) {
	case '<':
		return parse_v0(text, len, out, err);
	case '{':
		/* sinful.md §8: the v1 form is internal and optional */
		return ccb_error_set(err, CCB_ERR_UNSUPPORTED,
			"parse address: v1 (\"{...}\") addresses are not supported");
	case '[':
		return parse_wrapped("<", text, len, ">", out, err);
	default:
		if (two_colons_in_host(text))
			return parse_wrapped("<[", text, len, "]>", out, err);
		return parse_wrapped("<", text, len, ">", out, err);
	}
}

/*
 * CCB contacts ("<broker>#<ccbid>[#<id>...]"): split, check, build
 * (../shared/spec/ccb-protocol.md §3, sinful.md §7). Lists of contacts and
 * of brokers are in addr_list.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr_internal.h"
#include "util/util.h"

/* A CCBID is printed by the broker with %lu (srv:158-171): 1-20 decimal
 * digits that fit in 64 bits. */
/* A CCBID, strictly: 1-20 decimal digits, no leading zero (except "0"
 * itself), fitting in 64 bits. HTCondor's CCBServer::CCBIDFromString
 * (H:src/ccb/ccb_server.cpp 112-136) requires digits only and no overflow
 * but reads "0001" as 1; no HTCondor or libccb broker ever writes an id
 * that way (they print with %lu / PRIu64), so such text is refused here
 * rather than aliased to another id. Returns NULL or why not. */
static const char *ccbid_check(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0)
		return "is empty";
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return "is not all decimal digits";
	if (len > 1 && s[0] == '0')
		return "has a leading zero";
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return "does not fit in 64 bits";
		v = v * 10 + d;
	}
	if (out)
		*out = v;
	return NULL;
}

static bool ccbid_ok(const char *s, size_t len)
{
	return ccbid_check(s, len, NULL) == NULL;
}

ccb_err ccb_ccbid_parse(const char *text, uint64_t *out, ccb_error *err)
{
	const char *why;
	uint64_t v = 0;

	if (!text)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "CCBID: NULL text");
	why = ccbid_check(text, strlen(text), &v);
	if (why)
		return ccb_error_set(err, CCB_ERR_PARSE, "CCBID \"%.40s%s\" %s", text,
				     strlen(text) > 40 ? "..." : "", why);
	if (out)
		*out = v;
	return CCB_OK;
}

/* Find where the broker ends. Go accepts a broker in "<" ">" and strips
 * them only when they wrap the whole broker (G:addresses/sinful.go:109-142);
 * HTCondor's broker never writes them. Otherwise the broker ends at the
 * first '#': a broker address never carries a CCBID parameter, so every '#'
 * is a hop separator (ccb-protocol.md §3.2). */
static ccb_err find_broker(const char *c, size_t len, const char **b, size_t *blen,
	size_t *rest, ccb_error *err)
{
	const char *end;

	if (c[0] == '<') {
		end = memchr(c, '>', len);
		if (!end)
			return addr__parse_error(err, "CCB contact", c, "missing '>' after broker");
		*b = c + 1;
		*blen = (size_t)(end - c) - 1;
		*rest = (size_t)(end - c) + 1;
		if (*rest >= len || c[*rest] != '#')
			return addr__parse_error(err, "CCB contact", c, "no '#' after '>'");
		return CCB_OK;
	}
	end = memchr(c, '#', len);
	if (!end)
		return addr__parse_error(err, "CCB contact", c, "no '#' before the CCBID");
	*b = c;
	*blen = (size_t)(end - c);
	*rest = *blen;
	return CCB_OK;
}

/* The "#id#id..." tail starting at c[pos] == '#'. */
static ccb_err split_ids(const char *c, size_t len, size_t pos, addr__strv *ids,
	ccb_error *err)
{
	while (pos < len) {
		size_t start = pos + 1, end = start;

		while (end < len && c[end] != '#')
			end++;
		if (!ccbid_ok(c + start, end - start))
			return addr__parse_error(err, "CCB contact", c,
				"CCBID at offset %zu is not a decimal number below 2^64 without leading zeros", start);
		if (!addr__strv_push(ids, c + start, end - start))
			return ccb_error_set(err, CCB_ERR_NOMEM, "split CCB contact");
		pos = end;
	}
	return CCB_OK;
}

ccb_err ccb_contact_split(const char *contact, ccb_contact *out, ccb_error *err)
{
	addr__strv ids = { 0 };
	ccb_sinful *check = NULL;
	const char *b = NULL;
	size_t len, blen = 0, rest = 0;
	ccb_err rc;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "split CCB contact: NULL out");
	memset(out, 0, sizeof *out);
	if (!contact)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "split CCB contact: NULL contact");
	if (!addr__check_len(contact, "CCB contact", &len, err))
		return CCB_ERR_PARSE;
	/* contacts travel in space-separated lists (ccb-protocol.md §3.1) */
	if (addr__has_space(contact, len))
		return addr__parse_error(err, "CCB contact", contact, "contains white space");
	rc = find_broker(contact, len, &b, &blen, &rest, err);
	if (rc != CCB_OK)
		return rc;
	if (blen == 0)
		return addr__parse_error(err, "CCB contact", contact, "empty broker address");
	rc = split_ids(contact, len, rest, &ids, err);
	if (rc != CCB_OK)
		goto fail;
	out->broker = ccb_strndup(b, blen);
	if (!out->broker) {
		rc = ccb_error_set(err, CCB_ERR_NOMEM, "split CCB contact");
		goto fail;
	}
	/* the broker is dialed as HTCondor's Sinful constructor reads it */
	rc = ccb_sinful_parse_address(out->broker, &check, err);
	ccb_sinful_free(check);
	if (rc != CCB_OK) {
		ccb_error_prefix(err, "CCB contact broker: ");
		goto fail;
	}
	if (!addr__strv_finish(&ids, &out->ids, &out->n_ids)) {
		rc = ccb_error_set(err, CCB_ERR_NOMEM, "split CCB contact");
		goto fail;
	}
	return CCB_OK;
fail:
	addr__strv_discard(&ids);
	ccb_contact_clear(out);
	return rc;
}

void ccb_contact_clear(ccb_contact *c)
{
	if (!c)
		return;
	free(c->broker);
	ccb_strv_free(c->ids);
	memset(c, 0, sizeof *c);
}

/* ccb-protocol.md §3.2: the ids after the first form the CCBRoute of a
 * streaming request to the entry broker (cli:200-227, 473-519). */
ccb_err ccb_contact_route(const ccb_contact *c, char **out, ccb_error *err)
{
	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "contact route: NULL out");
	*out = NULL;
	if (!c)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "contact route: NULL contact");
	if (!(*out = ccb__contact_route(c)))
		return ccb_error_set(err, CCB_ERR_NOMEM, "contact route of %zu ids: out of memory",
				     c->n_ids);
	return CCB_OK;
}

char *ccb__contact_route(const ccb_contact *c)
{
	ccb_buf b;
	bool ok = true;
	char *res;

	if (!c)
		return NULL;
	ccb_buf_init(&b);
	for (size_t i = 1; ok && i < c->n_ids; i++)
		ok = (i == 1 || ccb_buf_append_str(&b, " ")) && ccb_buf_append_str(&b, c->ids[i]);
	res = ok ? ccb_buf_steal_str(&b) : NULL;
	if (!res)
		ccb_buf_free(&b);
	return res;
}

/* CCBServer::CCBIDToContactString (srv:158-171): address + '#' + %lu. */
ccb_err ccb_contact_make(const char *broker, uint64_t ccbid, char **out, ccb_error *err)
{
	ccb_contact check;
	size_t len;
	char *s;
	int n;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "make CCB contact: NULL out");
	*out = NULL;
	if (!broker)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "make CCB contact: NULL broker");
	if (!addr__check_len(broker, "CCB broker address", &len, err)) {
		if (err)
			err->code = CCB_ERR_INVALID_ARG;
		return CCB_ERR_INVALID_ARG;
	}
	/* contacts hold the broker without its angle brackets (srv:361-375) */
	if (len >= 2 && broker[0] == '<' && broker[len - 1] == '>') {
		broker++;
		len -= 2;
	}
	n = snprintf(NULL, 0, "%.*s#%" PRIu64, (int)len, broker, ccbid);
	s = n < 0 ? NULL : malloc((size_t)n + 1);
	if (!s)
		return ccb_error_set(err, CCB_ERR_NOMEM, "make CCB contact");
	snprintf(s, (size_t)n + 1, "%.*s#%" PRIu64, (int)len, broker, ccbid);
	if (ccb_contact_split(s, &check, err) != CCB_OK) {
		free(s);
		if (err)
			err->code = CCB_ERR_INVALID_ARG;
		return CCB_ERR_INVALID_ARG;
	}
	ccb_contact_clear(&check);
	*out = s;
	return CCB_OK;
}

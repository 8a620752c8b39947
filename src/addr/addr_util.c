/*
 * Address layer helpers: string vectors, input limits, error details, and
 * connect ids.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr_internal.h"
#include "util/util.h"

/* Longest prefix of the offending text quoted in an error detail. */
#define ADDR_QUOTE_MAX 72

bool addr__strv_push(addr__strv *sv, const char *s, size_t len)
{
	char *copy;

	/* keep one slot for the terminating NULL */
	if (sv->n + 2 > sv->cap) {
		size_t ncap = sv->cap ? sv->cap * 2 : 8;
		char **nv = realloc(sv->v, ncap * sizeof *nv);

		if (!nv)
			return false;
		sv->v = nv;
		sv->cap = ncap;
	}
	copy = ccb_strndup(s, len);
	if (!copy)
		return false;
	sv->v[sv->n++] = copy;
	sv->v[sv->n] = NULL;
	return true;
}

bool addr__strv_finish(addr__strv *sv, char ***out, size_t *n)
{
	if (!sv->v) {
		sv->v = calloc(1, sizeof *sv->v);
		if (!sv->v)
			return false;
		sv->cap = 1;
	}
	*out = sv->v;
	if (n)
		*n = sv->n;
	sv->v = NULL;
	sv->n = sv->cap = 0;
	return true;
}

void addr__strv_discard(addr__strv *sv)
{
	ccb_strv_free(sv->v);
	sv->v = NULL;
	sv->n = sv->cap = 0;
}

bool addr__check_len(const char *text, const char *what, size_t *len, ccb_error *err)
{
	size_t n = strnlen(text, CCB_ADDR_MAX_TEXT + 1);

	if (n > CCB_ADDR_MAX_TEXT) {
		ccb_error_set(err, CCB_ERR_PARSE, "%s longer than %d bytes", what,
			CCB_ADDR_MAX_TEXT);
		return false;
	}
	*len = n;
	return true;
}

/* Copy a printable prefix of `text` for an error detail: the input may be
 * arbitrary bytes from the network and the detail ends up in logs. */
static void quote_prefix(const char *text, char *out, size_t outsz)
{
	size_t i;

	for (i = 0; text[i] && i + 4 < outsz && i < ADDR_QUOTE_MAX; i++) {
		unsigned char c = (unsigned char)text[i];

		out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (text[i] && i + 4 <= outsz) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
}

ccb_err addr__parse_error(ccb_error *err, const char *what, const char *text,
	const char *fmt, ...)
{
	char quoted[ADDR_QUOTE_MAX + 4];
	char msg[CCB_ERROR_DETAIL_SIZE];
	va_list ap;

	if (!err)
		return CCB_ERR_PARSE;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	quote_prefix(text, quoted, sizeof quoted);
	return ccb_error_set(err, CCB_ERR_PARSE, "bad %s \"%s\": %s", what, quoted, msg);
}

/* ccb-protocol.md §1 / cli:54-90: the connect id is 20 CSPRNG bytes in
 * lower-case hex; it is a secret, so only OpenSSL's generator will do. */
ccb_err ccb_connect_id_new(char out[CCB_CONNECT_ID_SIZE], ccb_error *err)
{
	unsigned char raw[CCB_CONNECT_ID_LEN / 2];
	ccb_err rc;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "connect id: NULL buffer");
	out[0] = '\0';
	rc = ccb_random_bytes(raw, sizeof raw, err);
	if (rc != CCB_OK)
		return ccb_error_prefix(err, "connect id: ");
	ccb_hex_encode(raw, sizeof raw, out);
	return CCB_OK;
}

bool ccb_connect_id_valid(const char *id)
{
	size_t i;

	if (!id)
		return false;
	for (i = 0; i < CCB_CONNECT_ID_LEN; i++) {
		char c = id[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return id[i] == '\0';
}

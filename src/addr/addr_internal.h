/*
 * Internal helpers of the address layer (src/addr). Not installed.
 *
 * Include as "addr_internal.h": only the .c files of src/addr. Nothing above the
 * layer uses it (the layer offers include/ccb/addr.h).
 */
#ifndef CCB_ADDR_INTERNAL_H
#define CCB_ADDR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "ccb/addr.h"

/* Convenience forms of the public formatters for the library's own callers
 * (any layer): the string, or NULL when out of memory (or s is NULL). The
 * public ccb_sinful_format() etc. return a ccb_err and fill an
 * out-parameter. Not exported. */
char *ccb__sinful_format(const ccb_sinful *s);
char *ccb__sinful_format_bare(const ccb_sinful *s);
char *ccb__sinful_broker_address(const ccb_sinful *s);
char *ccb__contact_route(const ccb_contact *c);

/* Growable NULL-terminated string vector, the form ccb_strv_free()
 * releases. */
typedef struct addr__strv {
	char **v;
	size_t n;
	size_t cap;
} addr__strv;

/* Append a copy of s[0..len). False when out of memory. */
bool addr__strv_push(addr__strv *sv, const char *s, size_t len);

/* Hand the vector to the caller (always non-NULL on success: an empty
 * vector is {NULL}); false when out of memory, and the vector is freed. */
bool addr__strv_finish(addr__strv *sv, char ***out, size_t *n);

void addr__strv_discard(addr__strv *sv);

/* Length of text if it is at most CCB_ADDR_MAX_TEXT bytes; otherwise sets a
 * CCB_ERR_PARSE naming `what` and returns false. Never reads past
 * CCB_ADDR_MAX_TEXT + 1 bytes. */
bool addr__check_len(const char *text, const char *what, size_t *len, ccb_error *err);

/* Set a CCB_ERR_PARSE detail quoting (a prefix of) `text`. */
ccb_err addr__parse_error(ccb_error *err, const char *what, const char *text,
	const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ASCII white space as HTCondor's token splitters use it. */
static inline bool addr__is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static inline bool addr__has_space(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (addr__is_space(s[i]))
			return true;
	return false;
}

#endif

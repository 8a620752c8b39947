/*
 * Lists of addresses: space-separated CCB contact lists (a sinful's CCBID
 * parameter) and CCB_ADDRESS broker lists (../shared/spec/ccb-protocol.md
 * §3.1, §3.3). Used by sinful.c and by callers; depends on no other file
 * of the layer but addr_util.c.
 */
#include <stdlib.h>
#include <string.h>

#include "addr_internal.h"
#include "util/util.h"

/* Split `text` at white space (and commas if `commas`), dropping empty
 * tokens. */
static ccb_err split_tokens(const char *text, const char *what, bool commas,
	char ***out, size_t *n, ccb_error *err)
{
	addr__strv sv = { 0 };
	size_t len, i = 0;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "split %s: NULL out", what);
	*out = NULL;
	if (n)
		*n = 0;
	if (!text)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "split %s: NULL text", what);
	if (!addr__check_len(text, what, &len, err))
		return CCB_ERR_PARSE;
	while (i < len) {
		size_t start;

		while (i < len && (addr__is_space(text[i]) || (commas && text[i] == ',')))
			i++;
		start = i;
		while (i < len && !addr__is_space(text[i]) && !(commas && text[i] == ','))
			i++;
		if (i > start && !addr__strv_push(&sv, text + start, i - start)) {
			addr__strv_discard(&sv);
			return ccb_error_set(err, CCB_ERR_NOMEM, "split %s", what);
		}
	}
	if (!addr__strv_finish(&sv, out, n))
		return ccb_error_set(err, CCB_ERR_NOMEM, "split %s", what);
	return CCB_OK;
}

/* ccb-protocol.md §3.1: a list of contacts is space-separated. */
ccb_err ccb_contact_list_split(const char *list, char ***out, size_t *n, ccb_error *err)
{
	return split_tokens(list, "CCB contact list", false, out, n, err);
}

ccb_err ccb_contact_list_join(const char *const *contacts, size_t n, char **out,
	ccb_error *err)
{
	ccb_buf b;
	char *res;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "join CCB contacts: NULL out");
	*out = NULL;
	if (n && !contacts)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "join CCB contacts: NULL list");
	for (size_t i = 0; i < n; i++) {
		const char *c = contacts[i];

		if (!c || !c[0] || addr__has_space(c, strlen(c)))
			return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				"join CCB contacts: contact %zu is empty or contains white space", i);
	}
	ccb_buf_init(&b);
	for (size_t i = 0; i < n; i++) {
		if ((i && !ccb_buf_append_str(&b, " ")) || !ccb_buf_append_str(&b, contacts[i])) {
			ccb_buf_free(&b);
			return ccb_error_set(err, CCB_ERR_NOMEM, "join CCB contacts");
		}
	}
	res = ccb_buf_steal_str(&b);
	if (!res) {
		ccb_buf_free(&b);
		return ccb_error_set(err, CCB_ERR_NOMEM, "join CCB contacts");
	}
	*out = res;
	return CCB_OK;
}

/* ccb-protocol.md §3.3: CCB_ADDRESS tokens are separated by ", \t\r\n"
 * (StringTokenIterator defaults, H:src/condor_utils/stl_string_utils.h:151;
 * Go's SplitBrokerList omits '\r'). */
ccb_err ccb_broker_list_split(const char *list, char ***out, size_t *n, ccb_error *err)
{
	return split_tokens(list, "CCB broker list", true, out, n, err);
}

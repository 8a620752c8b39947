/*
 * libFuzzer target for the address layer: parse arbitrary bytes as a sinful
 * (strict and bracket-less), print, re-parse and check that printing is a
 * fixed point; also split the input as contacts and lists.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccb/addr.h"
#include "addr/addr_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Printing a parsed sinful and parsing that again must give the same text,
 * as long as the printed text stays within the input limit (escaping can
 * triple its length). */
static void check_fixed_point(const ccb_sinful *s)
{
	ccb_sinful *again = NULL;
	char *first, *second;
	ccb_hostport *hp = NULL;
	char **contacts = NULL;
	size_t n;

	first = ccb__sinful_format(s);
	if (!first)
		return;
	if (strlen(first) <= CCB_ADDR_MAX_TEXT) {
		if (ccb_sinful_parse(first, &again, NULL) != CCB_OK)
			abort();
		second = ccb__sinful_format(again);
		if (!second || strcmp(first, second) != 0)
			abort();
		free(second);
		ccb_sinful_free(again);
	}
	free(first);
	free(ccb__sinful_broker_address(s));
	if (ccb_sinful_addrs(s, &hp, &n, NULL) != CCB_OK)
		abort(); /* addrs was validated by the parser */
	free(hp);
	if (ccb_sinful_ccb_contacts(s, &contacts, &n, NULL) == CCB_OK) {
		for (size_t i = 0; i < n; i++) {
			ccb_contact c;

			if (ccb_contact_split(contacts[i], &c, NULL) == CCB_OK)
				free(ccb__contact_route(&c));
			ccb_contact_clear(&c);
		}
		ccb_strv_free(contacts);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ccb_sinful *s = NULL;
	ccb_contact c;
	char **v = NULL;
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	if (ccb_sinful_parse(text, &s, NULL) == CCB_OK)
		check_fixed_point(s);
	ccb_sinful_free(s);
	s = NULL;
	if (ccb_sinful_parse_address(text, &s, NULL) == CCB_OK)
		check_fixed_point(s);
	ccb_sinful_free(s);

	if (ccb_contact_split(text, &c, NULL) == CCB_OK)
		free(ccb__contact_route(&c));
	ccb_contact_clear(&c);
	if (ccb_broker_list_split(text, &v, NULL, NULL) == CCB_OK)
		ccb_strv_free(v);
	free(text);
	return 0;
}

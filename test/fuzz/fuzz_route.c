/*
 * libFuzzer target for tunnel route parsing (ccb-protocol.md §9.3): the
 * entry broker's CCBRoute check (bare integers, at most 8), the relay hop's
 * head/tail split, and the nested-contact split a requester does before it
 * sends CCBRoute. Invariants: a valid route always splits into a numeric
 * head and a tail that is valid or empty; a contact that splits gives a
 * route that the broker accepts whenever it has at most 8 hops.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccb/addr.h"
#include "broker_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), head[32];
	const char *tail = NULL;
	ccb_contact c = {0};

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (bk_route_ok(text)) {
		if (!bk_route_split(text, head, sizeof head, &tail))
			abort();
		for (const char *p = head; *p; p++)
			if (*p < '0' || *p > '9')
				abort();
		if (*tail && !bk_route_ok(tail))
			abort();
	} else {
		bk_route_split(text, head, sizeof head, &tail);
	}
	if (ccb_contact_split(text, &c, NULL) == CCB_OK) {
		char *route = NULL;
		if (ccb_contact_route(&c, &route, NULL) != CCB_OK)
			abort();
		if (c.n_ids > 1 && c.n_ids <= 9 && !bk_route_ok(route))
			abort();
		ccb_free(route);
	}
	ccb_contact_clear(&c);
	free(text);
	return 0;
}

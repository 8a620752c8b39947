/*
 * Fuzz the ClassAd wire reader (both string forms, general and handshake
 * rules) and the old-syntax line parser; every ad read is printed and
 * re-encoded, and the result must decode again.
 */
#include <stdlib.h>
#include <string.h>

#include "classad/classad_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const ccb_classad *ad, bool crypto)
{
	ccb_buf b;
	ccb_cursor c;
	ccb_classad *again = NULL;
	char *text = ccb__classad_to_text(ad);

	free(text);
	ccb_buf_init(&b);
	/* For a 9.9+ peer nothing is dropped, so the count must survive. */
	if (ccb__classad_encode(&b, crypto, ad, &(ccb_classad_put_config){.peer_version = 251400})) {
		c = (ccb_cursor){.data = b.data, .len = b.len, .crypto = crypto};
		/* What we write must read back (values with a NUL-free form). */
		if (ccb__classad_decode(&c, &again, 0, NULL) == CCB_OK &&
		    ccb_classad_count(again) != ccb_classad_count(ad))
			abort();
		ccb_classad_free(again);
	}
	ccb_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int mode = 0; mode < 4; mode++) {
		ccb_cursor c = {.data = data, .len = size, .crypto = mode & 1};
		ccb_classad *ad = NULL;
		if (ccb__classad_decode(&c, &ad, mode & 2 ? CCB_CLASSAD_DECODE_POD : 0, NULL) ==
		    CCB_OK) {
			roundtrip(ad, mode & 1);
			ccb_classad_free(ad);
		}
	}
	{
		char *line = malloc(size + 1);
		ccb_classad *ad = ccb__classad_new();
		if (line && ad) {
			memcpy(line, data, size);
			line[size] = '\0';
			if (ccb_classad_parse_line(ad, line, NULL) == CCB_OK)
				roundtrip(ad, false);
		}
		free(line);
		ccb_classad_free(ad);
	}
	return 0;
}

/*
 * Fuzz the SHARED_PORT_CONNECT request parser (the body of the message a
 * shared-port server reads from any TCP client, sp §3.1). The input is the
 * message body from the command int on. A request that parses must obey
 * the C++ reader's limits.
 */
#include <stdlib.h>
#include <string.h>

#include "sharedport/sharedport_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sharedport__request req;
	ccb_error err;
	uint8_t *copy;

	if (size > SHAREDPORT_MAX_REQUEST)
		return 0;
	/* An exact-size heap copy lets ASan catch any read past the end. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	if (size)
		memcpy(copy, data, size);
	if (sharedport__parse_connect(copy, size, &req, &err) == CCB_OK) {
		if (req.id_len > CCB_SHAREDPORT_ID_MAX ||
		    req.client_name_len > CCB_SHAREDPORT_ID_MAX || strlen(req.id) != req.id_len ||
		    strlen(req.client_name) != req.client_name_len || req.more_args < 0 ||
		    req.more_args > SHAREDPORT_MAX_MORE_ARGS)
			abort();
		(void)ccb_sharedport_id_valid(req.id);
	} else if (err.code == CCB_OK || !err.detail[0]) {
		abort(); /* every failure carries a detail */
	}
	free(copy);
	return 0;
}

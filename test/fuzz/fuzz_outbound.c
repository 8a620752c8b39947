/*
 * Fuzz the outbound proxy's readers (ccb-protocol.md §9.1): the input is a
 * CCB_PROXY_CONNECT request as a network peer sends it, read back through a
 * ccb_stream with ccb_control_ad_read() and then taken apart as the broker
 * does (ccb__outbound_parse, the target check against fixed allow/deny
 * lists, the requester's exception test on the same target). The input
 * also serves, split at its first two NUL bytes, as target / allow-list /
 * deny-list text for the list matcher. Host names are never resolved here
 * (no DNS traffic). Seeds: corpus/outbound/.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccb/wire.h"
#include "outbound.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void use_request(const ccb_classad *ad)
{
	static const char *const lists[][2] = {
		{NULL, NULL},
		{"10.0.0.0/8, *.example.org 192.0.2.1", ""},
		{"", NULL},
		{"*", "0.0.0.0/0 ::/0"},
	};
	const char *target, *cid;
	long long ttl;
	char why[128];

	for (int local = 0; local <= 9; local += 3) {
		if (ccb__outbound_parse(ad, local, &target, &cid, &ttl))
			continue;
		if (ttl > local && local >= 1)
			abort(); /* a request may only lower the budget */
		for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
			(void)ccb__outbound_target_check(target, lists[i][0], lists[i][1], false, why,
							 sizeof why);
		(void)ccb__outbound_bypass(target, "10.9.9.9:9618, <192.0.2.5:9618?sock=x>");
	}
}

static void read_request(const uint8_t *data, size_t size)
{
	int sv[2];
	ccb_stream *s = NULL;

	if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return;
	if (size && send(sv[1], data, size, MSG_NOSIGNAL) != (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	shutdown(sv[1], SHUT_WR);
	if (ccb_stream_new(sv[0], &s, NULL) != CCB_OK) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	ccb_stream_set_timeout(s, 50);
	for (int i = 0; i < 4; i++) {
		ccb_classad *ad = NULL;
		if (ccb_control_ad_read(s, &ad, NULL) != CCB_OK)
			break;
		use_request(ad);
		ccb_classad_free(ad);
	}
	ccb_stream_free(s);
	close(sv[1]);
}

static void match_lists(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 3), *allow, *deny;
	char why[128];

	if (!buf)
		return;
	memcpy(buf, data, size);
	buf[size] = buf[size + 1] = buf[size + 2] = '\0';
	allow = buf + strlen(buf) + 1;
	deny = allow + strlen(allow) + 1;
	if (deny > buf + size)
		deny = buf + size;
	(void)ccb__outbound_target_check(buf, allow, deny, false, why, sizeof why);
	(void)ccb__outbound_target_check(buf, allow, NULL, false, why, sizeof why);
	(void)ccb__outbound_bypass(buf, allow);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_request(data, size);
	match_lists(data, size);
	return 0;
}

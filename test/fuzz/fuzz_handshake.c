/*
 * Fuzz the security handshake as a network peer drives it. The input is
 * what the peer sends, written to a socket whose write side is then shut:
 * byte 0 chooses the side under test (even: our server, as a broker runs
 * ccb_sec_server_accept on every inbound connection; odd: our client
 * reading a server's RESPONSE, method messages and POST-AUTH), the rest is
 * the byte stream. The server offers CLAIMTOBE, FS and TOKEN and keeps
 * sessions, so RESUME requests, method negotiation and the TOKEN messages
 * are all reachable. Seeds: the captured handshakes of S1-S3 (both
 * directions).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccb/classad.h"
#include "ccb/commands.h"
#include "ccb/security.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ccb_sec_sessions *sessions;

static int perm_of(int command, void *user)
{
	(void)user;
	switch (command) {
	case CCB_CMD_CCB_REGISTER: return CCB_PERM_DAEMON;
	case CCB_CMD_CCB_REQUEST: return CCB_PERM_READ;
	case CCB_CMD_CCB_REVERSE_CONNECT: return CCB_PERM_ALLOW;
	case CCB_CMD_DC_NOP: return CCB_PERM_READ;
	}
	return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	ccb_stream *s;

	if (size < 1 || size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 0;
	if (!sessions)
		ccb_sec_sessions_new(64, &sessions, NULL);
	/* The peer's bytes; our replies fit the socket buffer unread. */
	if (size > 1 && send(sv[1], data + 1, size - 1, MSG_NOSIGNAL) != (ssize_t)(size - 1)) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	shutdown(sv[1], SHUT_WR);
	if (ccb_stream_new(sv[0], &s, NULL) != CCB_OK) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	ccb_stream_set_timeout(s, 50);
	if (data[0] % 2 == 0) {
		ccb_sec_server_config cfg = {0};
		ccb_sec_command cmd;

		cfg.auth_methods[CCB_PERM_ALLOW] = "CLAIMTOBE,FS,TOKEN";
		cfg.authentication[CCB_PERM_ALLOW] = data[0] & 2 ? CCB_SEC_LEVEL_OPTIONAL : CCB_SEC_LEVEL_DEFAULT;
		cfg.allow[CCB_PERM_DAEMON] = "*";
		cfg.uid_domain = "fuzz";
		cfg.trust_domain = "fuzz";
		cfg.sessions = sessions;
		cfg.command_perm = perm_of;
		if (ccb_sec_server_accept(s, &cfg, &cmd, NULL) == CCB_OK && cmd.negotiated) {
			/* The payload a handler would read next. */
			ccb_classad *ad = NULL;
			if (ccb_classad_get(s, &ad) == CCB_OK)
				ccb_stream_end_of_message(s);
			ccb_classad_free(ad);
		}
	} else {
		ccb_sec_client_config cfg = {.auth_methods = "CLAIMTOBE,FS,TOKEN",
					     .token = "a.b.c",
					     .uid_domain = "fuzz",
					     .authentication = data[0] & 2 ? CCB_SEC_LEVEL_OPTIONAL
									   : CCB_SEC_LEVEL_DEFAULT};
		ccb_sec_info info;
		int command = data[0] & 4 ? CCB_CMD_DC_SEC_QUERY : CCB_CMD_CCB_REGISTER;
		if (ccb_sec_client_start(s, &cfg, command, command == CCB_CMD_DC_SEC_QUERY ? 60020 : 0,
					 "<127.0.0.1:9618>", &info, NULL) == CCB_OK &&
		    command == CCB_CMD_DC_SEC_QUERY) {
			bool ok;
			ccb_sec_client_query_reply(s, &ok, NULL);
		}
	}
	ccb_stream_free(s);
	close(sv[1]);
	return 0;
}

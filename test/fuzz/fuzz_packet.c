/*
 * Fuzz the CEDAR packet layer and primitive decoders as a network peer would
 * drive them: the input is written to a socket and read back through a
 * ccb_stream (plaintext, then again with an AES-GCM key installed), and
 * also fed to the capture dissector. Byte 0 picks the read pattern.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccb/dissect.h"
#include "cedar/stream_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_all(const uint8_t *data, size_t size, bool aes)
{
	static const uint8_t key[32] = {7};
	int sv[2];
	ccb_stream *s;
	uint8_t pattern = size ? data[0] : 0;

	if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return;
	if (size && send(sv[1], data, size, MSG_NOSIGNAL) != (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	shutdown(sv[1], SHUT_WR);
	if (ccb_stream_new(sv[0], &s, NULL) != CCB_OK) {
		close(sv[1]);
		return;
	}
	ccb_stream_set_timeout(s, 50);
	ccb_stream_set_max_message(s, 16384);
	if (aes)
		ccb_stream_set_aes_key(s, key);
	for (int i = 0; i < 64; i++) {
		int64_t v;
		double d;
		char *str = NULL;
		uint8_t c, buf[16];
		ccb_err rc;

		switch ((pattern >> (i % 4) * 2) & 3) {
		case 0: rc = ccb_stream_get_int(s, &v); break;
		case 1: rc = ccb_stream_get_string(s, &str); ccb_free(str); break;
		case 2: rc = ccb_stream_get_double(s, &d); break;
		default:
			rc = ccb_stream_get_char(s, &c);
			if (rc == CCB_OK)
				rc = ccb_stream_get_bytes(s, buf, c % sizeof buf);
			break;
		}
		if (rc == CCB_ERR_PROTOCOL && ccb_stream_unread(s) == 0)
			rc = ccb_stream_end_of_message(s);
		if (rc != CCB_OK && rc != CCB_ERR_PROTOCOL)
			break;
		if (i % 5 == 4)
			ccb_stream_end_of_message(s);
	}
	ccb_stream_free(s);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ccb_dissector *d;

	read_all(data, size, false);
	read_all(data, size, true);
	ccb_dissector_new(&d, NULL);
	if (d) {
		ccb_dissector_feed(d, CCB_DIR_C2S, data, size, NULL);
		for (size_t i = 0; i < ccb_dissector_count(d); i++) {
			char *t = NULL;
			ccb_dissect_msg_text(ccb_dissector_msg(d, i), i + 1, &t, NULL);
			ccb_free(t);
		}
		ccb_dissector_free(d);
	}
	return 0;
}

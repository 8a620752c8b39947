/*
 * Fuzz the CCB wire readers as a network peer drives them: the input is
 * written to a socket and read back through a ccb_stream with
 * ccb_control_ad_read(), ccb_hello_read(), and the dispatcher path
 * (ccb_stream_get_int() then ccb_hello_read_ad()), in plaintext and with an
 * AES-GCM key installed. Every ad that is accepted goes through the
 * attribute helpers and builders a listener or broker would apply to it, and
 * is written back out through the control-ad writer. Seeds: captured
 * messages (corpus/packet/hello, corpus/packet/s1-register-c2s).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccb/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { READ_CONTROL, READ_HELLO, READ_DISPATCH, N_MODES };

/* What a broker or listener does with an accepted ad. */
static void use_ad(const ccb_classad *ad, ccb_stream *sink, ccb_stream *drain)
{
	ccb_classad *hello = NULL, *result = NULL, *back = NULL;
	const char *str;
	uint64_t id;
	int64_t cmd;
	bool b;

	ccb_ad_need_decimal(ad, CCB_ATTR_REQUEST_ID, &id, NULL);
	ccb_ad_need_decimal(ad, CCB_ATTR_CCBID, &id, NULL);
	ccb_ad_need_int(ad, CCB_ATTR_COMMAND, &cmd, NULL);
	ccb_ad_need_bool(ad, CCB_ATTR_RESULT, &b, NULL);
	ccb_ad_need_string(ad, CCB_ATTR_MY_ADDRESS, &str, NULL);
	(void)ccb_ad_string_or(ad, CCB_ATTR_ERROR_STRING, "");
	(void)ccb_ad_bool_or(ad, CCB_ATTR_PROXY_MODE, false);
	if (ccb_hello_ad_from_request(ad, &hello, NULL) == CCB_OK &&
	    ccb_result_ad_new(hello, false, "failed to connect", &result, NULL) == CCB_OK &&
	    ccb_control_ad_write(sink, result, 0, NULL) == CCB_OK)
		ccb_control_ad_read(drain, &back, NULL);
	ccb_classad_free(back);
	ccb_classad_free(result);
	ccb_classad_free(hello);
}

static void read_all(const uint8_t *data, size_t size, int mode, bool aes)
{
	static const uint8_t key[32] = {7};
	int sv[2], out[2];
	ccb_stream *s, *sink = NULL, *drain = NULL;

	if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, out) != 0) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	if (size && send(sv[1], data, size, MSG_NOSIGNAL) != (ssize_t)size)
		goto close_raw;
	shutdown(sv[1], SHUT_WR);
	if (ccb_stream_new(out[0], &sink, NULL) != CCB_OK) {
		out[0] = -1;
		goto close_raw;
	}
	if (ccb_stream_new(out[1], &drain, NULL) != CCB_OK) {
		out[1] = -1;
		goto close_raw;
	}
	if (ccb_stream_new(sv[0], &s, NULL) != CCB_OK) {
		sv[0] = -1;
		goto close_raw;
	}
	ccb_stream_set_timeout(s, 50);
	ccb_stream_set_timeout(sink, 50);
	ccb_stream_set_timeout(drain, 50);
	if (aes)
		ccb_stream_set_aes_key(s, key);
	for (int i = 0; i < 16; i++) {
		ccb_classad *ad = NULL;
		int64_t cmd;
		ccb_err rc;

		switch (mode) {
		case READ_CONTROL: rc = ccb_control_ad_read(s, &ad, NULL); break;
		case READ_HELLO: rc = ccb_hello_read(s, i & 1 ? NULL : "0123", &ad, NULL); break;
		default:
			rc = ccb_stream_get_int(s, &cmd);
			if (rc == CCB_OK)
				rc = ccb_hello_read_ad(s, cmd, NULL, &ad, NULL);
			break;
		}
		if (rc != CCB_OK)
			break; /* every read failure leaves the stream broken */
		use_ad(ad, sink, drain);
		ccb_classad_free(ad);
	}
	ccb_stream_free(s);
	sv[0] = -1;
close_raw:
	if (sink)
		ccb_stream_free(sink);
	else if (out[0] >= 0)
		close(out[0]);
	if (drain)
		ccb_stream_free(drain);
	else if (out[1] >= 0)
		close(out[1]);
	if (sv[0] >= 0)
		close(sv[0]);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int mode = 0; mode < N_MODES; mode++)
		read_all(data, size, mode, false);
	read_all(data, size, READ_HELLO, true);
	return 0;
}

/*
 * CCB wire helper tests over real loopback TCP: golden bytes from the
 * captures in test/vectors (S1 conn 1, 6, 7; S5 conn 1, 6, 7),
 * reading those bytes back, the hello with and without its command int,
 * digest resets around the hello, and the refusals (wrong command, missing
 * or mistyped attributes, oversized ads, two ads in one message).
 *
 * Captured ads whose ClaimId went out as a BLOWFISH secret ("ZKM" + 8-byte
 * enciphered length + enciphered string) cannot be reproduced: libccb has no
 * legacy ciphers. Those goldens keep every captured byte except the
 * enciphered secret, which is replaced by the clear form a key-less C++
 * sender writes behind the same marker (classad-wire.md §6), with the packet
 * length fixed up. The connect ids are the ones the same captures show in
 * clear in the matching hello.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "ccb/wire.h"
#include "ccbt.h"
#include "util/util.h"
#include "classad/classad_internal.h"

/* ---- captured messages (hex of the full CEDAR message, header included) -- */

/* S1-claimtobe-plain conn 7 message 1: the hello, ZKM + ClaimId in clear. */
static const char S1_HELLO[] =
	"0100000084000000000000004500000000000000035a4b4d00436c61696d4964203d2022623565"
	"3961643236333338656263326439346638613766306466613761663835353163363761363522004d"
	"7941646472657373203d20223c3132372e302e302e313a33393737313f616c6961733d766d3e2200"
	"526571756573744944203d20223122000000";
static const char S1_CONNECT_ID[] = "b5e9ad26338ebc2d94f8a7f0dfa7af8551c67a65";
static const char S1_TOOL_ADDR[] = "<127.0.0.1:39771?alias=vm>";

/* S1 conn 1 message 9: register ad {Name, Command = 67}. */
static const char S1_REGISTER[] =
	"010000005800000000000000024e616d65203d20224d4153544552203c3132372e302e302e313a33"
	"333738313f61646472733d3132372e302e302e312d333337383126616c6961733d766d3e2200436f"
	"6d6d616e64203d203637000000";
static const char S1_MASTER_NAME[] = "MASTER <127.0.0.1:33781?addrs=127.0.0.1-33781&alias=vm>";

/* S1 conn 1 message 10: register reply {CCBID, ZKM + secret cookie, Command}. */
static const char S1_REGISTER_REPLY[] =
	"010000007500000000000000034343424944203d20223132372e302e302e313a31393631383f6164"
	"6472733d3132372e302e302e312d313936313826616c6961733d766d233122005a4b4d004b4ce93b"
	"b86c635e8b7d3585223bfeb704fa2ae8da7556dd1fba19cc73c78e436f6d6d616e64203d20363700"
	"0000";

/* S1 conn 1 messages 11 and 12 (byte-identical): ALIVE {Command = 441}. */
static const char S1_ALIVE[] = "01000000180000000000000001436f6d6d616e64203d20343431000000";

/* S1 conn 1 message 13: forwarded request 1 (secret ClaimId). */
static const char S1_FORWARD[] =
	"01000000b400000000000000054e616d65203d2022544f4f4c206f6e203c3132372e302e302e313a"
	"33363735333e22005a4b4d004b4ce93bb86c637c172c1aae47e86138bd8b2e83ccc95ff417729bfa"
	"60e7e568a8752e9d9ba6173c26e3a627f328aade80ae6f10e6ff359ee5016728d7436f6d6d616e64"
	"203d203638004d7941646472657373203d20223c3132372e302e302e313a33393737313f616c6961"
	"733d766d3e2200526571756573744944203d20223122000000";

/* S1 conn 1 message 14: the listener's result for request 1. */
static const char S1_RESULT[] =
	"01000000920000000000000004526573756c74203d2074727565005a4b4d004b4ce93bb86c637c17"
	"2c1aae47e86138bd8b2e83ccc95ff417729bfa60e7e568a8752e9d9ba6173c26e3a627f328aade80"
	"ae6f10e6ff359ee5016728d74d7941646472657373203d20223c3132372e302e302e313a33393737"
	"313f616c6961733d766d3e2200526571756573744944203d20223122000000";

/* S1 conn 6 message 9: condor_ping's CCB_REQUEST ad (secret ClaimId). */
static const char S1_REQUEST[] =
	"010000008e00000000000000044e616d65203d2022544f4f4c22004343424944203d20223122005a"
	"4b4d0042b4c0a560dd36e1cca126d61a9c7215c0ce798d638b59c7d289c61ae462a88ccfaa21e2fb"
	"08e12b269da31f45604768d1bdc43de548871ac0f7755a104d7941646472657373203d20223c3132"
	"372e302e302e313a33393737313f616c6961733d766d3e22000000";

/* S1 conn 6 message 10: broker reply {Result = true, ErrorString = ""}. */
static const char S1_REPLY[] =
	"01000000290000000000000002526573756c74203d2074727565004572726f72537472696e67203d"
	"202222000000";

/* S5-streaming conn 1 message 13: streaming forward with the audit trail. */
static const char S5_FORWARD[] =
	"010000014100000000000000074e616d65203d2022544f4f4c206f6e203c3132372e302e302e313a"
	"34323436313e22005a4b4d00241cf54c7555c3b47ed8ce4c34e31163f9ffa90aceb0d2f5e6a2b56c"
	"08cd614b49a3e5e2f9841916519040b5b3a498f62d37fdd8c3011e076e16f730fc436f6d6d616e64"
	"203d203638004d7941646472657373203d20223c3132372e302e302e313a31393631383f61646472"
	"733d3132372e302e302e312d313936313826616c6961733d766d3e2200526571756573744944203d"
	"20223122004343425072696f72486f70203d20223132372e302e302e313a31393631383f61646472"
	"733d3132372e302e302e312d313936313826616c6961733d766d22004343424f726967696e616c52"
	"6571756573746572203d2022636f6e646f7240766d206174203c3132372e302e302e313a34323436"
	"313e22000000";

/* S5 conn 1 message 14: the listener's result for it. */
static const char S5_RESULT[] =
	"010000011f0000000000000006526573756c74203d2074727565005a4b4d00241cf54c7555c3b47e"
	"d8ce4c34e31163f9ffa90aceb0d2f5e6a2b56c08cd614b49a3e5e2f9841916519040b5b3a498f62d"
	"37fdd8c3011e076e16f730fc4d7941646472657373203d20223c3132372e302e302e313a31393631"
	"383f61646472733d3132372e302e302e312d313936313826616c6961733d766d3e22005265717565"
	"73744944203d20223122004343425072696f72486f70203d20223132372e302e302e313a31393631"
	"383f61646472733d3132372e302e302e312d313936313826616c6961733d766d22004343424f7269"
	"67696e616c526571756573746572203d2022636f6e646f7240766d206174203c3132372e302e302e"
	"313a34323436313e22000000";

/* S5 conn 7 message 1: the target's hello to the broker, all in clear. */
static const char S5_HELLO[] =
	"0100000111000000000000004500000000000000055a4b4d00436c61696d4964203d202236393437"
	"3934633534643962343133316630343262376264343239396238653066306339613361372200"
	"4d7941646472657373203d20223c3132372e302e302e313a31393631383f61646472733d3132372e"
	"302e302e312d313936313826616c6961733d766d3e2200526571756573744944203d202231220043"
	"43425072696f72486f70203d20223132372e302e302e313a31393631383f61646472733d3132372e"
	"302e302e312d313936313826616c6961733d766d22004343424f726967696e616c52657175657374"
	"6572203d2022636f6e646f7240766d206174203c3132372e302e302e313a34323436313e22000000";
static const char S5_CONNECT_ID[] = "694794c54d9b4131f042b7bd4299b8e0f0c9a3a7";
static const char S5_BROKER_ADDR[] = "<127.0.0.1:19618?addrs=127.0.0.1-19618&alias=vm>";

/* S5 conn 6 message 9: the tool's streaming request (secret ClaimId). */
static const char S5_REQUEST[] =
	"010000009000000000000000054e616d65203d2022544f4f4c22004343424944203d20223122005a"
	"4b4d00d1909099261db2ac4d99bcf40269f2fce0e982f09c265093899f0f047dd0c70ced903160cd"
	"58f7dc973ca16cf30b402dabbaa27486fda8cad54b5aeac14d7941646472657373203d2022220043"
	"434253747265616d696e675265717569726564203d2074727565000000";

/* S5 conn 6 message 10: {Result = true, ProxyMode = true}. */
static const char S5_PROXY_REPLY[] =
	"01000000290000000000000002526573756c74203d20747275650050726f78794d6f6465203d2074"
	"727565000000";

/* ---- helpers --------------------------------------------------------------- */

typedef struct blob {
	uint8_t *p;
	size_t n;
} blob;

static blob unhex(const char *hex)
{
	blob b;
	b.p = ccbt_unhex(hex, &b.n);
	return b;
}

/* The captured single-packet message `hex` with its enciphered secret
 * (`secret_len` bytes after "ZKM\0") replaced by `line` and its NUL; with
 * keep_marker false the "ZKM\0" goes too (a peer known to be >= 9.9.0,
 * classad-wire.md §6). The 4-byte packet length is fixed up. */
static blob splice(const char *hex, size_t secret_len, const char *line, bool keep_marker)
{
	blob cap = unhex(hex), out;
	size_t m = 0, llen = strlen(line) + 1;

	for (size_t i = 13; i + 4 <= cap.n; i++)
		if (!memcmp(cap.p + i, "ZKM", 4)) {
			m = i;
			break;
		}
	CU_ASSERT_FATAL(m != 0 && m + 4 + secret_len <= cap.n);
	out.n = cap.n - secret_len + llen - (keep_marker ? 0 : 4);
	out.p = malloc(out.n);
	CU_ASSERT_FATAL(out.p != NULL);
	memcpy(out.p, cap.p, keep_marker ? m + 4 : m);
	memcpy(out.p + (keep_marker ? m + 4 : m), line, llen);
	memcpy(out.p + out.n - (cap.n - m - 4 - secret_len), cap.p + m + 4 + secret_len,
	       cap.n - m - 4 - secret_len);
	{
		uint32_t len = (uint32_t)(out.n - 5);
		out.p[1] = (uint8_t)(len >> 24);
		out.p[2] = (uint8_t)(len >> 16);
		out.p[3] = (uint8_t)(len >> 8);
		out.p[4] = (uint8_t)len;
	}
	free(cap.p);
	return out;
}

static const struct timeval raw_timeout = {.tv_sec = 5};

/* A stream on one end of a loopback pair and the raw other end. */
static ccb_stream *pair_stream(int *raw)
{
	int fds[2];
	ccb_stream *s;

	ccbt_tcp_pair(fds);
	CU_ASSERT_FATAL(ccb_stream_new(fds[0], &s, NULL) == CCB_OK);
	ccb_stream_set_timeout(s, 5000);
	/* A short or missing message must fail the test, not hang it. */
	CU_ASSERT_FATAL(setsockopt(fds[1], SOL_SOCKET, SO_RCVTIMEO, &raw_timeout,
				   sizeof raw_timeout) == 0);
	*raw = fds[1];
	return s;
}

static void send_blob(int raw, blob b)
{
	CU_ASSERT_FATAL(send(raw, b.p, b.n, MSG_NOSIGNAL) == (ssize_t)b.n);
}


/* Read exactly want.n bytes from `raw`, compare, and check nothing follows. */
static void expect_blob(int raw, blob want, const char *what)
{
	uint8_t *got = malloc(want.n + 1);
	size_t n = 0;
	ssize_t r;

	while (n < want.n) {
		r = recv(raw, got + n, want.n - n, 0);
		CU_ASSERT_FATAL(r > 0);
		n += (size_t)r;
	}
	CU_ASSERT(memcmp(got, want.p, want.n) == 0);
	if (memcmp(got, want.p, want.n)) {
		char *h = malloc(2 * want.n + 1), *w = malloc(2 * want.n + 1);
		ccb_hex_encode(got, want.n, h);
		ccb_hex_encode(want.p, want.n, w);
		fprintf(stderr, "\n  %s\n  want %s\n  got  %s\n", what, w, h);
		free(h);
		free(w);
	}
	r = recv(raw, got, 1, MSG_DONTWAIT);
	CU_ASSERT(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
	free(got);
}

static void expect_hex(int raw, const char *hex, const char *what)
{
	blob b = unhex(hex);
	expect_blob(raw, b, what);
	free(b.p);
}

/* Nothing at all arrived on `raw`. */
static void expect_nothing(int raw)
{
	uint8_t c;
	ssize_t r = recv(raw, &c, 1, MSG_DONTWAIT);
	CU_ASSERT(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

static char *claim_line(const char *id)
{
	static char line[128];
	snprintf(line, sizeof line, "ClaimId = \"%s\"", id);
	return line;
}

static void expect_str(const ccb_classad *ad, const char *name, const char *want)
{
	const char *v = NULL;
	CU_ASSERT(ccb_classad_get_string(ad, name, &v) == CCB_OK);
	CU_ASSERT(v && !strcmp(v, want));
}

/* ---- goldens: writing ---------------------------------------------------- */

/* The hello for the captured values is the captured 137 bytes. */
static void test_hello_golden(void)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);
	ccb_classad *hello;
	ccb_error err;

	CU_ASSERT_FATAL(ccb_hello_ad_new(S1_CONNECT_ID, "1", S1_TOOL_ADDR, &hello, &err) == CCB_OK);
	CU_ASSERT(ccb_hello_write(s, hello, 0, &err) == CCB_OK);
	{
		blob b = unhex(S1_HELLO);
		CU_ASSERT_EQUAL(b.n, 137);
		expect_blob(raw, b, "S1 conn 7 msg 1 hello");
		free(b.p);
	}
	ccb_classad_free(hello);
	ccb_stream_free(s);
	close(raw);
}

/* Control ads of the registration socket, request socket and streaming. */
static void test_control_goldens(void)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);
	ccb_classad *ad;
	ccb_error err;
	blob b;

	{ /* S1 conn 1 msg 9: a first registration. */
		ccb_ad_field f[] = {
			CCB_AD_STRING(CCB_ATTR_NAME, S1_MASTER_NAME),
			CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_CCB_REGISTER),
			CCB_AD_STRING(CCB_ATTR_CCBID, NULL), /* optional: left out */
			CCB_AD_STRING(CCB_ATTR_CLAIM_ID, NULL),
		};
		CU_ASSERT_FATAL(ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, &err) == CCB_OK);
		CU_ASSERT(ccb_control_ad_write(s, ad, CCB_VERSION_NUM(25, 14, 0), &err) == CCB_OK);
		expect_hex(raw, S1_REGISTER, "S1 conn 1 msg 9 register");
		ccb_classad_free(ad);
	}
	{ /* S1 conn 1 msgs 11-12: ALIVE, both directions. */
		ccb_ad_field f[] = {CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_ALIVE)};
		CU_ASSERT_FATAL(ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, &err) == CCB_OK);
		CU_ASSERT(ccb_control_ad_write(s, ad, 0, &err) == CCB_OK);
		expect_hex(raw, S1_ALIVE, "S1 conn 1 msg 11 ALIVE");
		ccb_classad_free(ad);
	}
	{ /* S1 conn 1 msg 10: the reply; the cookie's digits are not in the
	   * capture, only its size (10 digits), so any 10 digits do. */
		ccb_ad_field f[] = {
			CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_CCB_REGISTER),
			CCB_AD_STRING(CCB_ATTR_CLAIM_ID, "3141592653"),
			CCB_AD_STRING(CCB_ATTR_CCBID, "127.0.0.1:19618?addrs=127.0.0.1-19618&alias=vm#1"),
		};
		CU_ASSERT_FATAL(ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, &err) == CCB_OK);
		CU_ASSERT(ccb_control_ad_write(s, ad, 0, &err) == CCB_OK);
		b = splice(S1_REGISTER_REPLY, 31, claim_line("3141592653"), true);
		expect_blob(raw, b, "S1 conn 1 msg 10 register reply");
		free(b.p);
		ccb_classad_free(ad);
	}
	{ /* S1 conn 1 msg 13: forwarded request. */
		ccb_ad_field f[] = {
			CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_CCB_REQUEST),
			CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, S1_TOOL_ADDR),
			CCB_AD_STRING(CCB_ATTR_CLAIM_ID, S1_CONNECT_ID),
			CCB_AD_STRING(CCB_ATTR_NAME, "TOOL on <127.0.0.1:36753>"),
			CCB_AD_STRING(CCB_ATTR_REQUEST_ID, "1"),
		};
		CU_ASSERT_FATAL(ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, &err) == CCB_OK);
		CU_ASSERT(ccb_control_ad_write(s, ad, 0, &err) == CCB_OK);
		b = splice(S1_FORWARD, 61, claim_line(S1_CONNECT_ID), true);
		expect_blob(raw, b, "S1 conn 1 msg 13 forward");
		free(b.p);
		/* A peer known to be >= 9.9.0 gets ClaimId plainly, no marker
		 * (classad-wire.md §6; the AES captures S2-S4). */
		CU_ASSERT(ccb_control_ad_write(s, ad, CCB_VERSION_NUM(25, 14, 0), &err) == CCB_OK);
		b = splice(S1_FORWARD, 61, claim_line(S1_CONNECT_ID), false);
		expect_blob(raw, b, "S1 conn 1 msg 13 forward, plain ClaimId");
		free(b.p);
		ccb_classad_free(ad);
	}
	{ /* S1 conn 6 msg 9 and S5 conn 6 msg 9: requests, plain and streaming. */
		ccb_ad_field f[] = {
			CCB_AD_STRING(CCB_ATTR_NAME, "TOOL"),
			CCB_AD_STRING(CCB_ATTR_CCBID, "1"),
			CCB_AD_STRING(CCB_ATTR_CLAIM_ID, S1_CONNECT_ID),
			CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, S1_TOOL_ADDR),
		};
		CU_ASSERT_FATAL(ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, &err) == CCB_OK);
		CU_ASSERT(ccb_control_ad_write(s, ad, 0, &err) == CCB_OK);
		b = splice(S1_REQUEST, 61, claim_line(S1_CONNECT_ID), true);
		expect_blob(raw, b, "S1 conn 6 msg 9 request");
		free(b.p);
		ccb_classad_free(ad);
	}
	{
		ccb_ad_field f[] = {
			CCB_AD_STRING(CCB_ATTR_NAME, "TOOL"),
			CCB_AD_STRING(CCB_ATTR_CCBID, "1"),
			CCB_AD_STRING(CCB_ATTR_CLAIM_ID, S5_CONNECT_ID),
			CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, ""),
			CCB_AD_BOOL(CCB_ATTR_CCB_STREAMING_REQUIRED, true),
		};
		CU_ASSERT_FATAL(ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, &err) == CCB_OK);
		CU_ASSERT(ccb_control_ad_write(s, ad, 0, &err) == CCB_OK);
		b = splice(S5_REQUEST, 61, claim_line(S5_CONNECT_ID), true);
		expect_blob(raw, b, "S5 conn 6 msg 9 streaming request");
		free(b.p);
		ccb_classad_free(ad);
	}
	{ /* Broker replies: S1 conn 6 msg 10 and S5 conn 6 msg 10. */
		ccb_ad_field f[] = {
			CCB_AD_BOOL(CCB_ATTR_RESULT, true),
			CCB_AD_STRING(CCB_ATTR_ERROR_STRING, ""),
		};
		CU_ASSERT_FATAL(ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, &err) == CCB_OK);
		CU_ASSERT(ccb_control_ad_write(s, ad, 0, &err) == CCB_OK);
		expect_hex(raw, S1_REPLY, "S1 conn 6 msg 10 reply");
		ccb_classad_free(ad);
	}
	{
		ccb_ad_field f[] = {
			CCB_AD_BOOL(CCB_ATTR_PROXY_MODE, true),
			CCB_AD_BOOL(CCB_ATTR_RESULT, true),
		};
		CU_ASSERT_FATAL(ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, &err) == CCB_OK);
		CU_ASSERT(ccb_control_ad_write(s, ad, 0, &err) == CCB_OK);
		expect_hex(raw, S5_PROXY_REPLY, "S5 conn 6 msg 10 ProxyMode reply");
		ccb_classad_free(ad);
	}
	ccb_stream_free(s);
	close(raw);
}

/* The listener path: read the captured forward, build the hello from it,
 * send it, build the result: S1 and S5 (with the audit trail). */
static void listener_path(const char *forward_hex, const char *connect_id, const char *hello_hex,
			  const char *result_hex, const char *what)
{
	int raw_broker, raw_requester;
	ccb_stream *reg = pair_stream(&raw_broker), *rev = pair_stream(&raw_requester);
	ccb_classad *fwd, *hello, *result;
	ccb_error err;
	blob b;

	b = splice(forward_hex, 61, claim_line(connect_id), true);
	send_blob(raw_broker, b);
	free(b.p);
	CU_ASSERT_FATAL(ccb_control_ad_read(reg, &fwd, &err) == CCB_OK);
	CU_ASSERT_FATAL(ccb_hello_ad_from_request(fwd, &hello, &err) == CCB_OK);
	CU_ASSERT(ccb_hello_write(rev, hello, 0, &err) == CCB_OK);
	expect_hex(raw_requester, hello_hex, what);
	CU_ASSERT_FATAL(ccb_result_ad_new(hello, true, NULL, &result, &err) == CCB_OK);
	CU_ASSERT(ccb_control_ad_write(reg, result, 0, &err) == CCB_OK);
	b = splice(result_hex, 61, claim_line(connect_id), true);
	expect_blob(raw_broker, b, what);
	free(b.p);
	ccb_classad_free(fwd);
	ccb_classad_free(hello);
	ccb_classad_free(result);
	ccb_stream_free(reg);
	ccb_stream_free(rev);
	close(raw_broker);
	close(raw_requester);
}

static void test_listener_path_golden(void)
{
	listener_path(S1_FORWARD, S1_CONNECT_ID, S1_HELLO, S1_RESULT, "S1 request 1");
	listener_path(S5_FORWARD, S5_CONNECT_ID, S5_HELLO, S5_RESULT, "S5 streaming request 1");
}

/* ---- goldens: reading ------------------------------------------------------ */

static void test_read_captures(void)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);
	ccb_classad *ad;
	ccb_error err;
	int64_t cmd;
	uint64_t id;
	bool b;

	ccbt_send_hex(raw, S1_REGISTER);
	CU_ASSERT_FATAL(ccb_control_ad_read(s, &ad, &err) == CCB_OK);
	CU_ASSERT(ccb_ad_need_int(ad, CCB_ATTR_COMMAND, &cmd, &err) == CCB_OK && cmd == 67);
	expect_str(ad, CCB_ATTR_NAME, S1_MASTER_NAME);
	CU_ASSERT_EQUAL(ccb_classad_count(ad), 2);
	ccb_classad_free(ad);

	ccbt_send_hex(raw, S1_ALIVE);
	CU_ASSERT_FATAL(ccb_control_ad_read(s, &ad, &err) == CCB_OK);
	CU_ASSERT(ccb_ad_need_int(ad, CCB_ATTR_COMMAND, &cmd, &err) == CCB_OK &&
		  cmd == CCB_CMD_ALIVE);
	ccb_classad_free(ad);

	{
		blob fwd = splice(S1_FORWARD, 61, claim_line(S1_CONNECT_ID), true);
		send_blob(raw, fwd);
		free(fwd.p);
	}
	CU_ASSERT_FATAL(ccb_control_ad_read(s, &ad, &err) == CCB_OK);
	CU_ASSERT(ccb_ad_need_decimal(ad, CCB_ATTR_REQUEST_ID, &id, &err) == CCB_OK && id == 1);
	expect_str(ad, CCB_ATTR_CLAIM_ID, S1_CONNECT_ID);
	expect_str(ad, CCB_ATTR_MY_ADDRESS, S1_TOOL_ADDR);
	CU_ASSERT(ccb_ad_need_int(ad, CCB_ATTR_COMMAND, &cmd, &err) == CCB_OK &&
		  cmd == CCB_CMD_CCB_REQUEST);
	ccb_classad_free(ad);

	ccbt_send_hex(raw, S5_PROXY_REPLY);
	CU_ASSERT_FATAL(ccb_control_ad_read(s, &ad, &err) == CCB_OK);
	CU_ASSERT(ccb_ad_need_bool(ad, CCB_ATTR_RESULT, &b, &err) == CCB_OK && b);
	CU_ASSERT(ccb_ad_bool_or(ad, CCB_ATTR_PROXY_MODE, false));
	CU_ASSERT_STRING_EQUAL(ccb_ad_string_or(ad, CCB_ATTR_ERROR_STRING, "none"), "none");
	ccb_classad_free(ad);

	/* The requester's view of the hello, with its connect id checked. */
	ccbt_send_hex(raw, S1_HELLO);
	CU_ASSERT_FATAL(ccb_hello_read(s, S1_CONNECT_ID, &ad, &err) == CCB_OK);
	expect_str(ad, CCB_ATTR_CLAIM_ID, S1_CONNECT_ID);
	expect_str(ad, CCB_ATTR_MY_ADDRESS, S1_TOOL_ADDR);
	CU_ASSERT(ccb_ad_need_decimal(ad, CCB_ATTR_REQUEST_ID, &id, &err) == CCB_OK && id == 1);
	CU_ASSERT_EQUAL(ccb_classad_count(ad), 3);
	ccb_classad_free(ad);

	/* The broker's view (no expectation), streaming hello with audit trail. */
	ccbt_send_hex(raw, S5_HELLO);
	CU_ASSERT_FATAL(ccb_hello_read(s, NULL, &ad, &err) == CCB_OK);
	expect_str(ad, CCB_ATTR_CLAIM_ID, S5_CONNECT_ID);
	expect_str(ad, CCB_ATTR_MY_ADDRESS, S5_BROKER_ADDR);
	expect_str(ad, CCB_ATTR_CCB_ORIGINAL_REQUESTER, "condor@vm at <127.0.0.1:42461>");
	expect_str(ad, CCB_ATTR_CCB_PRIOR_HOP, "127.0.0.1:19618?addrs=127.0.0.1-19618&alias=vm");
	ccb_classad_free(ad);
	ccb_stream_free(s);
	close(raw);
}

/* A dispatcher took the command int; the ad is in the same message. */
static void test_hello_after_dispatch(void)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);
	ccb_classad *ad;
	ccb_error err;
	int64_t cmd;

	ccbt_send_hex(raw, S1_HELLO);
	CU_ASSERT_FATAL(ccb_stream_get_int(s, &cmd) == CCB_OK);
	CU_ASSERT_EQUAL(cmd, CCB_CMD_CCB_REVERSE_CONNECT);
	CU_ASSERT_FATAL(ccb_hello_read_ad(s, cmd, S1_CONNECT_ID, &ad, &err) == CCB_OK);
	expect_str(ad, CCB_ATTR_REQUEST_ID, "1");
	ccb_classad_free(ad);
	/* The message was finished: the next one reads normally. */
	ccbt_send_hex(raw, S1_ALIVE);
	CU_ASSERT(ccb_control_ad_read(s, &ad, &err) == CCB_OK);
	ccb_classad_free(ad);

	/* A dispatcher that got another command must not pass it off as a hello. */
	ccbt_send_hex(raw, S1_HELLO);
	CU_ASSERT_FATAL(ccb_stream_get_int(s, &cmd) == CCB_OK);
	CU_ASSERT_EQUAL(ccb_hello_read_ad(s, CCB_CMD_DC_AUTHENTICATE, NULL, &ad, &err),
			CCB_ERR_PROTOCOL);
	CU_ASSERT_PTR_NULL(ad);
	CU_ASSERT(strstr(err.detail, "60010") != NULL);
	CU_ASSERT(strstr(err.detail, "DC_AUTHENTICATE") != NULL);
	ccb_stream_free(s);
	close(raw);
}

/* ---- refusals -------------------------------------------------------------- */

/* A peer stream on the raw end, to send malformed messages. */
typedef struct peer {
	ccb_stream *s;  /* ours */
	ccb_stream *p;  /* the peer's */
} peer;

static peer peer_new(void)
{
	int fds[2];
	peer x;

	ccbt_tcp_pair(fds);
	CU_ASSERT_FATAL(ccb_stream_new(fds[0], &x.s, NULL) == CCB_OK);
	CU_ASSERT_FATAL(ccb_stream_new(fds[1], &x.p, NULL) == CCB_OK);
	ccb_stream_set_timeout(x.s, 5000);
	ccb_stream_set_timeout(x.p, 5000);
	return x;
}

static void peer_free(peer x)
{
	ccb_stream_free(x.s);
	ccb_stream_free(x.p);
}

/* The peer sends [int cmd +] `lines` as one ad (+ a second ad) in one message. */
static void peer_send(peer x, int64_t cmd, const char *const *lines, size_t n, bool two_ads)
{
	ccb_classad *ad = ccb__classad_new();

	for (size_t i = 0; i < n; i++)
		CU_ASSERT_FATAL(ccb_classad_parse_line(ad, lines[i], NULL) == CCB_OK);
	if (cmd >= 0)
		ccb_stream_put_int(x.p, cmd);
	ccb_classad_put(x.p, ad, NULL);
	if (two_ads)
		ccb_classad_put(x.p, ad, NULL);
	CU_ASSERT_FATAL(ccb_stream_end_message(x.p) == CCB_OK);
	ccb_classad_free(ad);
}

/* Send a hello made of `lines` and expect ccb_hello_read to refuse it with
 * `code` and a detail containing `needle`. */
static void refuse_hello(int64_t cmd, const char *const *lines, size_t n, bool two_ads,
			 const char *expect_id, ccb_err code, const char *needle)
{
	peer x = peer_new();
	ccb_classad *ad = (ccb_classad *)1;
	ccb_error err;
	int64_t v;

	peer_send(x, cmd, lines, n, two_ads);
	CU_ASSERT_EQUAL(ccb_hello_read(x.s, expect_id, &ad, &err), code);
	CU_ASSERT_PTR_NULL(ad);
	CU_ASSERT_EQUAL(err.code, code);
	if (!strstr(err.detail, needle)) {
		CU_FAIL("error detail lacks the expected text");
		fprintf(stderr, "\n  want '%s' in '%s'\n", needle, err.detail);
	}
	/* The stream is broken: the connection must be closed. */
	CU_ASSERT_NOT_EQUAL(ccb_stream_get_int(x.s, &v), CCB_OK);
	peer_free(x);
}

static void test_hello_refusals(void)
{
	const char *ok[] = {"ClaimId = \"abc\"", "RequestID = \"7\"", "MyAddress = \"<1.2.3.4:5>\""};
	const char *no_claim[] = {"RequestID = \"7\"", "MyAddress = \"<1.2.3.4:5>\""};
	const char *int_claim[] = {"ClaimId = 12345", "RequestID = \"7\""};
	const char *empty_claim[] = {"ClaimId = \"\"", "RequestID = \"7\""};
	const char *int_reqid[] = {"ClaimId = \"abc\"", "RequestID = 7"};
	const char *bool_addr[] = {"ClaimId = \"abc\"", "MyAddress = true"};
	const char *int_route[] = {"ClaimId = \"abc\"", "CCBRoute = 5"};
	ccb_error err;

	refuse_hello(CCB_CMD_CCB_REQUEST, ok, 3, false, NULL, CCB_ERR_PROTOCOL,
		     "got 68 (CCB_REQUEST)");
	refuse_hello(CCB_CMD_CCB_REVERSE_CONNECT, no_claim, 2, false, NULL, CCB_ERR_PROTOCOL,
		     "missing string attribute ClaimId");
	refuse_hello(CCB_CMD_CCB_REVERSE_CONNECT, int_claim, 2, false, NULL, CCB_ERR_PROTOCOL,
		     "ClaimId is int, not string");
	refuse_hello(CCB_CMD_CCB_REVERSE_CONNECT, empty_claim, 2, false, NULL, CCB_ERR_PROTOCOL,
		     "empty ClaimId");
	refuse_hello(CCB_CMD_CCB_REVERSE_CONNECT, int_reqid, 2, false, NULL, CCB_ERR_PROTOCOL,
		     "RequestID is int, not string");
	refuse_hello(CCB_CMD_CCB_REVERSE_CONNECT, bool_addr, 2, false, NULL, CCB_ERR_PROTOCOL,
		     "MyAddress is bool, not string");
	refuse_hello(CCB_CMD_CCB_REVERSE_CONNECT, int_route, 2, false, NULL, CCB_ERR_PROTOCOL,
		     "CCBRoute is int");
	refuse_hello(CCB_CMD_CCB_REVERSE_CONNECT, ok, 3, false, "abd", CCB_ERR_PROTOCOL,
		     "connect id abc");
	refuse_hello(CCB_CMD_CCB_REVERSE_CONNECT, ok, 3, true, NULL, CCB_ERR_PROTOCOL,
		     "left unread");
	/* Only the command int: no ad in the message. */
	{
		peer x = peer_new();
		ccb_classad *ad;
		ccb_stream_put_int(x.p, CCB_CMD_CCB_REVERSE_CONNECT);
		ccb_stream_end_message(x.p);
		CU_ASSERT_EQUAL(ccb_hello_read(x.s, NULL, &ad, &err), CCB_ERR_PROTOCOL);
		CU_ASSERT(strstr(err.detail, "no ClassAd") != NULL);
		peer_free(x);
	}
	/* Optional attributes may be absent (old-client hello, Go writers). */
	{
		const char *only_claim[] = {"ClaimId = \"abc\""};
		peer x = peer_new();
		ccb_classad *ad;
		peer_send(x, CCB_CMD_CCB_REVERSE_CONNECT, only_claim, 1, false);
		CU_ASSERT(ccb_hello_read(x.s, "abc", &ad, &err) == CCB_OK);
		ccb_classad_free(ad);
		peer_free(x);
	}
}

static void test_control_refusals(void)
{
	const char *alive[] = {"Command = 441"};
	ccb_classad *ad;
	ccb_error err;
	int64_t v;

	{ /* Two ads in one message. */
		peer x = peer_new();
		peer_send(x, -1, alive, 1, true);
		CU_ASSERT_EQUAL(ccb_control_ad_read(x.s, &ad, &err), CCB_ERR_PROTOCOL);
		CU_ASSERT_PTR_NULL(ad);
		CU_ASSERT(strstr(err.detail, "read CCB control ad") != NULL);
		peer_free(x);
	}
	{ /* Not an ad at all. */
		peer x = peer_new();
		ccb_stream_put_int(x.p, -5);
		ccb_stream_end_message(x.p);
		CU_ASSERT_EQUAL(ccb_control_ad_read(x.s, &ad, &err), CCB_ERR_PROTOCOL);
		peer_free(x);
	}
	{ /* A message partly read is a caller error, not the peer's. */
		peer x = peer_new();
		peer_send(x, CCB_CMD_CCB_REVERSE_CONNECT, alive, 1, false);
		CU_ASSERT(ccb_stream_get_int(x.s, &v) == CCB_OK);
		CU_ASSERT_EQUAL(ccb_control_ad_read(x.s, &ad, &err), CCB_ERR_STATE);
		CU_ASSERT_EQUAL(ccb_hello_read(x.s, NULL, &ad, &err), CCB_ERR_STATE);
		/* ... and the hello is still readable the dispatcher's way. */
		CU_ASSERT_EQUAL(ccb_hello_read_ad(x.s, v, NULL, &ad, &err), CCB_ERR_PROTOCOL);
		CU_ASSERT(strstr(err.detail, "missing string attribute ClaimId") != NULL);
		peer_free(x);
	}
	{ /* A closed peer. */
		peer x = peer_new();
		ccb_stream_shutdown(x.p);
		CU_ASSERT_NOT_EQUAL(ccb_control_ad_read(x.s, &ad, &err), CCB_OK);
		CU_ASSERT_PTR_NULL(ad);
		peer_free(x);
	}
}

/* ---- size caps --------------------------------------------------------------- */

/* An ad whose one string attribute makes its body about `bytes` long. */
static ccb_classad *big_ad(size_t bytes)
{
	ccb_classad *ad = ccb__classad_new();
	char *v = malloc(bytes + 1);

	memset(v, 'x', bytes);
	v[bytes] = 0;
	ccb_classad_set_string(ad, "Blob", v);
	ccb_classad_set_string(ad, CCB_ATTR_CLAIM_ID, "abc");
	ccb_free(v);
	return ad;
}

typedef struct sender {
	ccb_stream *p;
	ccb_classad *ad;
	bool hello;
} sender;

/* Writes from a thread: a refused message is never drained by the reader. */
static void *send_thread(void *arg)
{
	sender *x = arg;
	if (x->hello)
		ccb_stream_put_int(x->p, CCB_CMD_CCB_REVERSE_CONNECT);
	ccb_classad_put(x->p, x->ad, NULL);
	ccb_stream_end_message(x->p);
	return NULL;
}

static void read_oversized(bool hello, int mode)
{
	peer x = peer_new();
	sender snd = {x.p, big_ad(CCB_CONTROL_MAX_MESSAGE + 100), hello};
	pthread_t t;
	ccb_classad *ad;
	ccb_error err;
	int64_t cmd;

	pthread_create(&t, NULL, send_thread, &snd);
	if (mode == 0) {
		CU_ASSERT_EQUAL(ccb_control_ad_read(x.s, &ad, &err), CCB_ERR_TOO_LARGE);
	} else if (mode == 1) {
		CU_ASSERT_EQUAL(ccb_hello_read(x.s, NULL, &ad, &err), CCB_ERR_TOO_LARGE);
	} else {
		/* A dispatcher loaded it under the stream's 1 MiB default. */
		CU_ASSERT_FATAL(ccb_stream_get_int(x.s, &cmd) == CCB_OK);
		CU_ASSERT_EQUAL(ccb_hello_read_ad(x.s, cmd, NULL, &ad, &err), CCB_ERR_TOO_LARGE);
	}
	CU_ASSERT_PTR_NULL(ad);
	ccb_stream_shutdown(x.s);
	pthread_join(t, NULL);
	ccb_classad_free(snd.ad);
	peer_free(x);
}

static void test_size_caps(void)
{
	int raw;
	ccb_stream *s;
	ccb_classad *ad, *small;
	ccb_error err;
	char *str;

	read_oversized(false, 0);
	read_oversized(true, 1);
	read_oversized(true, 2);

	/* Writing: refused before anything is sent, stream still usable. */
	s = pair_stream(&raw);
	ad = big_ad(CCB_CONTROL_MAX_MESSAGE);
	CU_ASSERT_EQUAL(ccb_control_ad_write(s, ad, 0, &err), CCB_ERR_TOO_LARGE);
	CU_ASSERT(strstr(err.detail, "65536") != NULL);
	CU_ASSERT_EQUAL(ccb_hello_write(s, ad, 0, &err), CCB_ERR_TOO_LARGE);
	expect_nothing(raw);
	ccb_classad_free(ad);
	/* Just under the cap goes out (the body is the whole message). */
	ad = big_ad(CCB_CONTROL_MAX_MESSAGE - 200);
	CU_ASSERT(ccb_control_ad_write(s, ad, 0, &err) == CCB_OK);
	ccb_classad_free(ad);
	{
		ccb_stream *r;
		int fd = dup(raw);
		CU_ASSERT_FATAL(ccb_stream_new(fd, &r, NULL) == CCB_OK);
		CU_ASSERT(ccb_control_ad_read(r, &ad, &err) == CCB_OK);
		ccb_classad_free(ad);
		/* The cap is back to the default after a control read: a 200 KiB
		 * message (e.g. a job ad after the hello) is still readable. */
		{
			ccb_classad *huge = big_ad(200 * 1024);
			sender snd = {s, huge, false};
			pthread_t t;
			pthread_create(&t, NULL, send_thread, &snd);
			CU_ASSERT(ccb_classad_get(r, &small) == CCB_OK);
			CU_ASSERT(ccb_stream_end_of_message(r) == CCB_OK);
			ccb_classad_free(small);
			pthread_join(t, NULL);
			ccb_classad_free(huge);
		}
		ccb_stream_free(r);
	}
	(void)str;
	ccb_stream_free(s);
	close(raw);
}

/* ---- writer argument checks ------------------------------------------------- */

static void test_write_checks(void)
{
	int raw;
	ccb_stream *s = pair_stream(&raw);
	ccb_classad *ad = ccb__classad_new(), *out;
	ccb_error err;

	/* No ClaimId / mistyped attributes: our own bug, nothing sent. */
	ccb_classad_set_string(ad, CCB_ATTR_REQUEST_ID, "1");
	CU_ASSERT_EQUAL(ccb_hello_write(s, ad, 0, &err), CCB_ERR_INVALID_ARG);
	CU_ASSERT(strstr(err.detail, "ClaimId") != NULL);
	ccb_classad_set_string(ad, CCB_ATTR_CLAIM_ID, "abc");
	ccb_classad_set_int(ad, CCB_ATTR_REQUEST_ID, 1);
	CU_ASSERT_EQUAL(ccb_hello_write(s, ad, 0, &err), CCB_ERR_INVALID_ARG);
	CU_ASSERT(strstr(err.detail, "RequestID is int") != NULL);
	expect_nothing(raw);
	/* A message being built is not ours to finish. */
	ccb_classad_set_string(ad, CCB_ATTR_REQUEST_ID, "1");
	ccb_stream_put_int(s, 1);
	CU_ASSERT_EQUAL(ccb_hello_write(s, ad, 0, &err), CCB_ERR_STATE);
	CU_ASSERT_EQUAL(ccb_control_ad_write(s, ad, 0, &err), CCB_ERR_STATE);
	ccb_stream_end_message(s);
	expect_hex(raw, "01 00000008 0000000000000001", "the caller's own message");
	CU_ASSERT_EQUAL(ccb_control_ad_write(NULL, ad, 0, &err), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_hello_write(s, NULL, 0, &err), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_hello_ad_new("", "1", NULL, &out, &err), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_hello_ad_new(NULL, "1", NULL, &out, &err), CCB_ERR_INVALID_ARG);
	CU_ASSERT_PTR_NULL(out);
	/* NULL request id / address are left out (old-client hello, §9.4). */
	CU_ASSERT(ccb_hello_ad_new("abc", NULL, "<1.2.3.4:5>", &out, &err) == CCB_OK);
	CU_ASSERT_EQUAL(ccb_classad_count(out), 2);
	CU_ASSERT_EQUAL(ccb_classad_type(out, CCB_ATTR_REQUEST_ID), CCB_VAL_ABSENT);
	ccb_classad_free(out);
	ccb_classad_free(ad);
	ccb_stream_free(s);
	close(raw);
}

static void test_hello_from_request(void)
{
	ccb_classad *req = ccb__classad_new(), *hello, *res;
	ccb_error err;
	const char *v;

	ccb_classad_set_int(req, CCB_ATTR_COMMAND, CCB_CMD_CCB_REQUEST);
	ccb_classad_set_string(req, CCB_ATTR_NAME, "TOOL on <1.2.3.4:5>");
	ccb_classad_set_string(req, CCB_ATTR_MY_ADDRESS, "<1.2.3.4:9>");
	ccb_classad_set_string(req, CCB_ATTR_CLAIM_ID, "abc");
	CU_ASSERT_EQUAL(ccb_hello_ad_from_request(req, &hello, &err), CCB_ERR_PROTOCOL);
	CU_ASSERT(strstr(err.detail, "missing string attribute RequestID") != NULL);
	CU_ASSERT_PTR_NULL(hello);
	ccb_classad_set_int(req, CCB_ATTR_REQUEST_ID, 3);
	CU_ASSERT_EQUAL(ccb_hello_ad_from_request(req, &hello, &err), CCB_ERR_PROTOCOL);
	CU_ASSERT(strstr(err.detail, "RequestID is int, not string") != NULL);
	ccb_classad_set_string(req, CCB_ATTR_REQUEST_ID, "3");
	/* An empty route is not copied; a mistyped audit field is ignored, as
	 * C++ LookupString ignores it. */
	ccb_classad_set_string(req, CCB_ATTR_CCB_ROUTE, "");
	ccb_classad_set_int(req, CCB_ATTR_CCB_PRIOR_HOP, 5);
	ccb_classad_set_string(req, CCB_ATTR_CCB_ORIGINAL_REQUESTER, "");
	CU_ASSERT_FATAL(ccb_hello_ad_from_request(req, &hello, &err) == CCB_OK);
	CU_ASSERT_EQUAL(ccb_classad_count(hello), 4);
	CU_ASSERT_EQUAL(ccb_classad_type(hello, CCB_ATTR_CCB_ROUTE), CCB_VAL_ABSENT);
	CU_ASSERT_EQUAL(ccb_classad_type(hello, CCB_ATTR_CCB_PRIOR_HOP), CCB_VAL_ABSENT);
	CU_ASSERT_EQUAL(ccb_classad_type(hello, CCB_ATTR_NAME), CCB_VAL_ABSENT);
	CU_ASSERT_EQUAL(ccb_classad_type(hello, CCB_ATTR_COMMAND), CCB_VAL_ABSENT);
	ccb_classad_free(hello);
	ccb_classad_set_string(req, CCB_ATTR_CCB_ROUTE, "42 7");
	CU_ASSERT_FATAL(ccb_hello_ad_from_request(req, &hello, &err) == CCB_OK);
	expect_str(hello, CCB_ATTR_CCB_ROUTE, "42 7");
	/* A failure report carries the listener's text. */
	CU_ASSERT_FATAL(ccb_result_ad_new(hello, false, "failed to connect", &res, &err) == CCB_OK);
	CU_ASSERT(ccb_ad_need_string(res, CCB_ATTR_ERROR_STRING, &v, &err) == CCB_OK &&
		  !strcmp(v, "failed to connect"));
	CU_ASSERT_FALSE(ccb_ad_bool_or(res, CCB_ATTR_RESULT, true));
	CU_ASSERT_EQUAL(ccb_classad_count(res), ccb_classad_count(hello) + 2);
	ccb_classad_free(res);
	ccb_classad_free(hello);
	ccb_classad_free(req);
}

/* ---- digest resets around the hello (cedar-stream.md §4) --------------------- */

/* Target writes the hello, requester reads it (either with the helpers or
 * by hand, without reset), then both install a key and the requester sends
 * the first encrypted message. Its AAD covers both sides' handshake
 * digests, so it only authenticates if both reset at the hello. */
static ccb_err after_hello(bool helper_write, bool helper_read)
{
	static const uint8_t key[32] = {9, 8, 7};
	int fds[2];
	ccb_stream *target, *requester;
	ccb_classad *hello, *got;
	int64_t v = 0;
	ccb_err rc;

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &target, NULL);
	ccb_stream_new(fds[1], &requester, NULL);
	ccb_hello_ad_new(S1_CONNECT_ID, "1", S1_TOOL_ADDR, &hello, NULL);
	if (helper_write) {
		CU_ASSERT(ccb_hello_write(target, hello, 0, NULL) == CCB_OK);
	} else {
		ccb_stream_put_int(target, CCB_CMD_CCB_REVERSE_CONNECT);
		ccb_classad_put(target, hello, NULL);
		ccb_stream_end_message(target);
	}
	if (helper_read) {
		CU_ASSERT(ccb_hello_read(requester, S1_CONNECT_ID, &got, NULL) == CCB_OK);
	} else {
		ccb_stream_get_int(requester, &v);
		ccb_classad_get(requester, &got);
		ccb_stream_end_of_message(requester);
	}
	ccb_classad_free(got);
	ccb_classad_free(hello);
	/* The requester is the CEDAR client from here on (§2). */
	ccb_stream_put_int(requester, CCB_CMD_DC_AUTHENTICATE);
	ccb_stream_end_message(requester);
	ccb_stream_get_int(target, &v);
	ccb_stream_end_of_message(target);
	ccb_stream_set_aes_key(target, key);
	ccb_stream_set_aes_key(requester, key);
	ccb_stream_put_int(requester, 4242);
	ccb_stream_end_message(requester);
	rc = ccb_stream_get_int(target, &v);
	if (rc == CCB_OK && v != 4242)
		rc = CCB_ERR_PROTOCOL;
	ccb_stream_free(target);
	ccb_stream_free(requester);
	return rc;
}

static void test_digest_reset(void)
{
	CU_ASSERT_EQUAL(after_hello(true, true), CCB_OK);
	/* Controls: each side's reset is needed. */
	CU_ASSERT_EQUAL(after_hello(false, true), CCB_ERR_CRYPTO);
	CU_ASSERT_EQUAL(after_hello(true, false), CCB_ERR_CRYPTO);
}

/* A broker replays a hello on an AES session (§7.5): strings are then
 * length-prefixed, and a known peer version sends ClaimId plainly. */
static void test_hello_under_aes(void)
{
	static const uint8_t key[32] = {1};
	int fds[2];
	ccb_stream *a, *b;
	ccb_classad *hello, *got;
	ccb_error err;

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &a, NULL);
	ccb_stream_new(fds[1], &b, NULL);
	ccb_stream_set_aes_key(a, key);
	ccb_stream_set_aes_key(b, key);
	ccb_hello_ad_new(S5_CONNECT_ID, "1", S5_BROKER_ADDR, &hello, NULL);
	CU_ASSERT(ccb_hello_write(a, hello, CCB_VERSION_NUM(25, 14, 0), &err) == CCB_OK);
	CU_ASSERT(ccb_hello_read(b, S5_CONNECT_ID, &got, &err) == CCB_OK);
	ccb_classad_free(got);
	CU_ASSERT(ccb_hello_write(a, hello, 0, &err) == CCB_OK);
	CU_ASSERT(ccb_hello_read(b, S5_CONNECT_ID, &got, &err) == CCB_OK);
	ccb_classad_free(got);
	ccb_classad_free(hello);
	ccb_stream_free(a);
	ccb_stream_free(b);
}

/* ---- attribute helpers, builders, constants ---------------------------------- */

static void test_ad_helpers(void)
{
	ccb_classad *ad = ccb__classad_new(), *out;
	ccb_error err;
	uint64_t u;
	int64_t i;
	bool b;
	const char *s;

	ccb_classad_set_string(ad, "S", "x");
	ccb_classad_set_int(ad, "I", 7);
	ccb_classad_set_bool(ad, "B", true);
	CU_ASSERT(ccb_ad_need_string(ad, "s", &s, &err) == CCB_OK && !strcmp(s, "x"));
	CU_ASSERT(ccb_ad_need_int(ad, "I", &i, &err) == CCB_OK && i == 7);
	CU_ASSERT(ccb_ad_need_bool(ad, "B", &b, &err) == CCB_OK && b);
	CU_ASSERT_EQUAL(ccb_ad_need_string(ad, "I", &s, &err), CCB_ERR_PROTOCOL);
	CU_ASSERT_STRING_EQUAL(err.detail, "attribute I is int, not string");
	CU_ASSERT_EQUAL(ccb_ad_need_bool(ad, "S", &b, &err), CCB_ERR_PROTOCOL);
	CU_ASSERT_STRING_EQUAL(err.detail, "attribute S is string, not bool");
	CU_ASSERT_EQUAL(ccb_ad_need_int(ad, "Nope", &i, &err), CCB_ERR_PROTOCOL);
	CU_ASSERT_STRING_EQUAL(err.detail, "missing int attribute Nope");
	CU_ASSERT_EQUAL(ccb_ad_need_int(NULL, "I", &i, &err), CCB_ERR_INVALID_ARG);

	/* Decimal ids: strings of digits, or non-negative ints. */
	CU_ASSERT(ccb_ad_need_decimal(ad, "I", &u, &err) == CCB_OK && u == 7);
	ccb_classad_set_string(ad, "D", "18446744073709551615");
	CU_ASSERT(ccb_ad_need_decimal(ad, "D", &u, &err) == CCB_OK && u == UINT64_MAX);
	{
		const char *bad[] = {"", "-1", "+1", " 1", "1 ", "12a", "0x10", "18446744073709551616",
				     "123456789012345678901"};
		for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
			ccb_classad_set_string(ad, "D", bad[k]);
			CU_ASSERT_EQUAL(ccb_ad_need_decimal(ad, "D", &u, &err), CCB_ERR_PROTOCOL);
		}
	}
	ccb_classad_set_int(ad, "D", -1);
	CU_ASSERT_EQUAL(ccb_ad_need_decimal(ad, "D", &u, &err), CCB_ERR_PROTOCOL);
	CU_ASSERT_EQUAL(ccb_ad_need_decimal(ad, "B", &u, &err), CCB_ERR_PROTOCOL);
	CU_ASSERT_EQUAL(ccb_ad_need_decimal(ad, "Nope", &u, &err), CCB_ERR_PROTOCOL);

	CU_ASSERT_STRING_EQUAL(ccb_ad_string_or(ad, "S", "d"), "x");
	CU_ASSERT_STRING_EQUAL(ccb_ad_string_or(ad, "I", "d"), "d");
	CU_ASSERT_PTR_NULL(ccb_ad_string_or(NULL, "S", NULL));
	CU_ASSERT_TRUE(ccb_ad_bool_or(ad, "B", false));
	CU_ASSERT_FALSE(ccb_ad_bool_or(ad, "S", false));
	CU_ASSERT_TRUE(ccb_ad_bool_or(ad, "Nope", true));
	ccb_classad_free(ad);

	/* Builder: a later field wins; bad fields are refused. */
	{
		ccb_ad_field f[] = {CCB_AD_INT("A", 1), CCB_AD_STRING("a", "two")};
		CU_ASSERT(ccb_ad_new(f, 2, &out, &err) == CCB_OK);
		CU_ASSERT_EQUAL(ccb_classad_count(out), 1);
		expect_str(out, "A", "two");
		ccb_classad_free(out);
	}
	{
		ccb_ad_field f[] = {CCB_AD_INT("A", 1), {.name = "R", .type = CCB_VAL_REAL}};
		CU_ASSERT_EQUAL(ccb_ad_new(f, 2, &out, &err), CCB_ERR_INVALID_ARG);
		CU_ASSERT(strstr(err.detail, "field 1 (R, real)") != NULL);
		CU_ASSERT_PTR_NULL(out);
	}
	{
		ccb_ad_field f[] = {CCB_AD_INT("Bad Name", 1)};
		CU_ASSERT_EQUAL(ccb_ad_new(f, 1, &out, &err), CCB_ERR_INVALID_ARG);
	}
	CU_ASSERT(ccb_ad_new(NULL, 0, &out, &err) == CCB_OK && ccb_classad_count(out) == 0);
	ccb_classad_free(out);
	CU_ASSERT_EQUAL(ccb_ad_new(NULL, 1, &out, &err), CCB_ERR_INVALID_ARG);
}

static void test_constants(void)
{
	/* condor_commands.h values and names (ccb-protocol.md §1). */
	CU_ASSERT_EQUAL(CCB_CMD_CCB_REGISTER, 67);
	CU_ASSERT_EQUAL(CCB_CMD_CCB_REQUEST, 68);
	CU_ASSERT_EQUAL(CCB_CMD_CCB_REVERSE_CONNECT, 69);
	CU_ASSERT_EQUAL(CCB_CMD_CCB_PROXY_CONNECT, 82);
	CU_ASSERT_EQUAL(CCB_CMD_CCB_GET_TUNNEL_ADDRESS, 83);
	CU_ASSERT_EQUAL(CCB_CMD_ALIVE, 441);
	CU_ASSERT_EQUAL(CCB_CMD_DC_SET_READY, 60043);
	CU_ASSERT_STRING_EQUAL(ccb_command_name(82), "CCB_PROXY_CONNECT");
	CU_ASSERT_STRING_EQUAL(ccb_command_name(83), "CCB_GET_TUNNEL_ADDRESS");
	CU_ASSERT_STRING_EQUAL(ccb_command_name(60043), "DC_SET_READY");
	CU_ASSERT_STRING_EQUAL(ccb_command_name(69), "CCB_REVERSE_CONNECT");
	CU_ASSERT_STRING_EQUAL(ccb_command_name(441), "ALIVE");
	CU_ASSERT_PTR_NULL(ccb_command_name(84));
	/* Attribute spellings seen on the wire are covered by the goldens;
	 * these never occur in a capture. */
	CU_ASSERT_STRING_EQUAL(CCB_ATTR_CCB_ROUTE, "CCBRoute");
	CU_ASSERT_STRING_EQUAL(CCB_ATTR_CCB_TTL, "CCBTTL");
	CU_ASSERT_STRING_EQUAL(CCB_ATTR_CCB_STREAMING, "CCBStreaming");
	CU_ASSERT_STRING_EQUAL(CCB_ATTR_CCB_STREAMING_UNSUPPORTED, "CCBStreamingUnsupported");
}

static const ccbt_test tests[] = {
	{"hello golden (S1 conn 7 msg 1)", test_hello_golden},
	{"control ad goldens (S1, S5)", test_control_goldens},
	{"listener path goldens: forward -> hello -> result", test_listener_path_golden},
	{"read captured messages back", test_read_captures},
	{"hello after the dispatcher took the int", test_hello_after_dispatch},
	{"hello refusals", test_hello_refusals},
	{"control ad refusals", test_control_refusals},
	{"64 KiB caps on read and write", test_size_caps},
	{"writer argument checks", test_write_checks},
	{"hello from a forwarded request, result ads", test_hello_from_request},
	{"digest reset around the hello", test_digest_reset},
	{"hello under AES", test_hello_under_aes},
	{"attribute helpers and builder", test_ad_helpers},
	{"command and attribute constants", test_constants},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"ccb wire", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}

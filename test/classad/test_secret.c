/*
 * ClassAd secrets under a legacy key with crypto mode off (classad-wire.md
 * §6): "ZKM" in clear, then the attribute as put_secret writes it. Checked
 * against the capture of a real BLOWFISH session (S1-claimtobe-plain, conn
 * 1, message 10: the collector's CCB_REGISTER reply), whose bytes outside
 * the secret, and the secret's size, we must reproduce exactly.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "ccbt.h"
#include "cedar/legacy.h"
#include "cedar/stream_internal.h"
#include "classad/classad_internal.h"
#include "util/util.h"

static const uint8_t key24[24] = {0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
				  12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};

/* All bytes one direction of connection `id` sent, in order. */
static uint8_t *direction_bytes(int id, const char *dir, size_t *len)
{
	json_t *root = json_load_file(CCB_VECTORS_DIR "/S1-claimtobe-plain/streams.json", 0, NULL);
	json_t *conn = NULL, *it, *seg;
	size_t i, j, total = 0;
	uint8_t *out = NULL;

	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	json_array_foreach(json_object_get(root, "connections"), i, it)
		if (json_integer_value(json_object_get(it, "id")) == id)
			conn = it;
	CU_ASSERT_PTR_NOT_NULL_FATAL(conn);
	json_array_foreach(json_object_get(conn, "segments"), j, seg) {
		const char *hex = json_string_value(json_object_get(seg, "hex"));
		size_t n = strlen(hex) / 2;
		if (strcmp(json_string_value(json_object_get(seg, "dir")), dir))
			continue;
		out = realloc(out, total + n);
		CU_ASSERT_FATAL(out && ccb_hex_decode(hex, 2 * n, out + total));
		total += n;
	}
	json_decref(root);
	*len = total;
	return out;
}

/* The captured message (header included) containing `needle`. */
static uint8_t *captured_message(int id, const char *dir, const char *needle, size_t *len)
{
	size_t n, off = 0;
	uint8_t *all = direction_bytes(id, dir, &n), *msg = NULL;

	while (off + 5 <= n) {
		size_t body = (size_t)all[off + 1] << 24 | (size_t)all[off + 2] << 16 |
			      (size_t)all[off + 3] << 8 | all[off + 4];
		if (off + 5 + body > n)
			break;
		if (memmem(all + off, 5 + body, needle, strlen(needle))) {
			msg = malloc(5 + body);
			memcpy(msg, all + off, 5 + body);
			*len = 5 + body;
			break;
		}
		off += 5 + body;
	}
	free(all);
	CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
	return msg;
}

static void test_s1_register_reply(void)
{
	size_t cap_len = 0, zkm_at;
	uint8_t *cap = captured_message(1, "s2c", "CCBID = ", &cap_len), got[256];
	const uint8_t *z;
	int fds[2];
	ccb_stream *a, *b;
	ccb_classad *ad = ccb__classad_new(), *back = NULL;
	const char *claim = NULL;

	/* Same CCBID, a 10-character ClaimId as in the capture (31 secret
	 * bytes = 8-byte length + `ClaimId = "..."` + NUL). */
	ccb_classad_set_string(ad, "CCBID", "127.0.0.1:19618?addrs=127.0.0.1-19618&alias=vm#1");
	ccb_classad_set_string(ad, "ClaimId", "0123456789");
	ccb_classad_set_int(ad, "Command", 67);
	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &a, NULL);
	ccb_stream_new(fds[1], &b, NULL);
	ccb_stream_set_timeout(a, 5000);
	ccb_stream_set_timeout(b, 5000);
	CU_ASSERT_FATAL(ccb__stream_set_legacy_key(a, CCB_LEGACY_BLOWFISH, key24, false, false) == CCB_OK);
	CU_ASSERT(ccb_classad_put(a, ad, &(ccb_classad_put_config){.peer_version = 251400}) == CCB_OK);
	CU_ASSERT(ccb_stream_end_message(a) == CCB_OK);
	CU_ASSERT_EQUAL_FATAL(cap_len, 122);
	ccbt_read_raw(fds[1], got, cap_len);
	z = memmem(cap, cap_len, "ZKM", 4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(z);
	zkm_at = (size_t)(z - cap) + 4;
	/* Everything but the 31 enciphered bytes is byte-identical. */
	CU_ASSERT(memcmp(got, cap, zkm_at) == 0);
	CU_ASSERT(memcmp(got + zkm_at + 31, cap + zkm_at + 31, cap_len - zkm_at - 31) == 0);
	/* And the secret really is enciphered. */
	CU_ASSERT(memmem(got, cap_len, "0123456789", 10) == NULL);

	/* Read back by a peer with the same key: the ClaimId comes out. */
	CU_ASSERT(send(fds[1], got, cap_len, 0) == (ssize_t)cap_len);
	CU_ASSERT_FATAL(ccb__stream_set_legacy_key(a, CCB_LEGACY_BLOWFISH, key24, false, false) == CCB_OK);
	CU_ASSERT(ccb_classad_get(a, &back) == CCB_OK && ccb_stream_end_of_message(a) == CCB_OK);
	CU_ASSERT(back && ccb_classad_get_string(back, "ClaimId", &claim) == CCB_OK);
	CU_ASSERT(claim && !strcmp(claim, "0123456789"));
	ccb_classad_free(back);
	(void)b;
	ccb_stream_free(a);
	ccb_stream_free(b);
	ccb_classad_free(ad);
	free(cap);
}

/* Which attributes go out how (H:classad_oldnew.cpp:672-900). */
static void test_modes(void)
{
	int fds[2];
	ccb_stream *a, *b;
	ccb_classad *ad = ccb__classad_new(), *back = NULL;
	uint8_t buf[512];
	ssize_t n;
	const char *v = NULL;

	ccb_classad_set_string(ad, "Name", "n");
	ccb_classad_set_string(ad, "ClaimId", "c1");
	ccb_classad_set_string(ad, "_condor_privX", "p2");
	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &a, NULL);
	ccb_stream_new(fds[1], &b, NULL);
	ccb_stream_set_timeout(b, 5000);
	CU_ASSERT(ccb__stream_set_legacy_key(a, CCB_LEGACY_3DES, key24, false, false) == CCB_OK);
	CU_ASSERT(ccb__stream_set_legacy_key(b, CCB_LEGACY_3DES, key24, false, false) == CCB_OK);
	/* Peer >= 9.9.0: both private attributes as enciphered secrets. */
	ccb_classad_put(a, ad, &(ccb_classad_put_config){.peer_version = 251400});
	ccb_stream_end_message(a);
	CU_ASSERT(ccb_classad_get(b, &back) == CCB_OK && ccb_stream_end_of_message(b) == CCB_OK);
	CU_ASSERT_EQUAL(ccb_classad_count(back), 3);
	CU_ASSERT(ccb_classad_get_string(back, "_condor_privX", &v) == CCB_OK && v && !strcmp(v, "p2"));
	ccb_classad_free(back);
	/* Unknown peer: the V2 name is dropped, ClaimId still a secret. */
	ccb_classad_put(a, ad, NULL);
	ccb_stream_end_message(a);
	CU_ASSERT(ccb_classad_get(b, &back) == CCB_OK && ccb_stream_end_of_message(b) == CCB_OK);
	CU_ASSERT_EQUAL(ccb_classad_count(back), 2);
	CU_ASSERT(ccb_classad_get_string(back, "ClaimId", &v) == CCB_OK && v && !strcmp(v, "c1"));
	ccb_classad_free(back);
	/* A projection write marks private attributes too when secrets are
	 * enciphered; raw bytes: two ZKM markers, no clear "c1". */
	ccb_classad_put(a, ad, &(ccb_classad_put_config){.peer_version = 251400, .projection = true});
	ccb_stream_end_message(a);
	n = recv(fds[1], buf, sizeof buf, 0);
	CU_ASSERT(n > 0);
	CU_ASSERT(n > 0 && memmem(buf, (size_t)n, "ZKM", 4) != NULL);
	CU_ASSERT(n > 0 && memmem(buf, (size_t)n, "\"c1\"", 4) == NULL);
	ccb_stream_free(a);
	ccb_stream_free(b);
	ccb_classad_free(ad);
}

static const ccbt_test tests[] = {
	{"S1 CCB_REGISTER reply: ZKM secret bytes and size", test_s1_register_reply},
	{"private attributes as secrets", test_modes},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"classad secrets", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}

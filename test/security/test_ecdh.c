/* ECDH P-256 + HKDF session key (security-handshake.md §8): the computed
 * vector byte for byte, a round trip between fresh keys, and refusal of
 * malformed peer points. */
#include <stdlib.h>
#include <string.h>

#include "ccbt.h"
#include "security/ecdh.h"

static const char CLIENT_PUB[] =
	"BAIX5hfwtkQ5KCePlpmeaaI6TywVK99tbN9m5bgCgtTtGUp968uXcS0t2jyoWqh2Wlb0X8dYWZZS8ol8ZTBuV5Q=";
static const char SERVER_PUB[] =
	"BNZak5d8qj0bCBhS/1ennkZfFmBXcwS66tUF3TpIWJzzUBheiVNy32Ih6joTdVfkc/3bZ1XwW9UHw8Uz/OnJEoU=";
static const char SECRET_HEX[] = "ccfc261f58193c98ca4ad4a53bbac6f0ee29bc4d48438090446908622ca79af6";
static const char AES_KEY_HEX[] = "210c3e339c3a5e9743e64f7cf478cc963d37d96b613c885117a5cc1da41af6c5";

static ccb__ecdh *fixed_key(uint8_t byte)
{
	uint8_t priv[CCB_ECDH_PRIV_LEN];
	ccb__ecdh *k = NULL;

	memset(priv, byte, sizeof priv);
	CU_ASSERT_FATAL(ccb__ecdh_from_private(priv, &k, NULL) == CCB_OK);
	return k;
}

static void expect_hex(const uint8_t *got, size_t n, const char *hex)
{
	size_t len;
	uint8_t *want = ccbt_unhex(hex, &len);

	CU_ASSERT_EQUAL(len, n);
	CU_ASSERT(memcmp(got, want, n) == 0);
	free(want);
}

/* §8 vector: both public keys, the shared secret from both sides, the AES key. */
static void test_vector(void)
{
	ccb__ecdh *c = fixed_key(0x11), *s = fixed_key(0x22);
	char pub[CCB_ECDH_PUB_B64_SIZE];
	uint8_t sec_c[CCB_ECDH_SECRET_LEN], sec_s[CCB_ECDH_SECRET_LEN], key[32];

	CU_ASSERT_EQUAL(ccb__ecdh_public_b64(c, pub, NULL), CCB_OK);
	CU_ASSERT_STRING_EQUAL(pub, CLIENT_PUB);
	CU_ASSERT_EQUAL(ccb__ecdh_public_b64(s, pub, NULL), CCB_OK);
	CU_ASSERT_STRING_EQUAL(pub, SERVER_PUB);

	CU_ASSERT_EQUAL(ccb__ecdh_shared_secret(c, SERVER_PUB, sec_c, NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb__ecdh_shared_secret(s, CLIENT_PUB, sec_s, NULL), CCB_OK);
	expect_hex(sec_c, sizeof sec_c, SECRET_HEX);
	expect_hex(sec_s, sizeof sec_s, SECRET_HEX);

	CU_ASSERT_EQUAL(ccb__ecdh_session_key(c, SERVER_PUB, key, CCB_SESSION_KEY_LEN_AES, NULL),
			CCB_OK);
	expect_hex(key, CCB_SESSION_KEY_LEN_AES, AES_KEY_HEX);
	CU_ASSERT_EQUAL(ccb__ecdh_session_key(s, CLIENT_PUB, key, CCB_SESSION_KEY_LEN_AES, NULL),
			CCB_OK);
	expect_hex(key, CCB_SESSION_KEY_LEN_AES, AES_KEY_HEX);

	ccb__ecdh_free(c);
	ccb__ecdh_free(s);
}

/* HKDF output is a prefix-stable expansion: the 24-byte BLOWFISH/3DES key is
 * the first 24 bytes of the 32-byte one (one SHA-256 block). */
static void test_short_key(void)
{
	ccb__ecdh *c = fixed_key(0x11);
	uint8_t key[CCB_SESSION_KEY_LEN_OLD];

	CU_ASSERT_EQUAL(ccb__ecdh_session_key(c, SERVER_PUB, key, sizeof key, NULL), CCB_OK);
	expect_hex(key, sizeof key, "210c3e339c3a5e9743e64f7cf478cc963d37d96b613c8851");
	ccb__ecdh_free(c);
}

/* The key depends on the input keying material; length 0 is refused. */
static void test_hkdf_sensitivity(void)
{
	uint8_t a[32], b[32], ikm[32] = {0};

	CU_ASSERT_EQUAL(ccb__ecdh_hkdf(ikm, sizeof ikm, a, sizeof a, NULL), CCB_OK);
	ikm[31] = 1;
	CU_ASSERT_EQUAL(ccb__ecdh_hkdf(ikm, sizeof ikm, b, sizeof b, NULL), CCB_OK);
	CU_ASSERT(memcmp(a, b, sizeof a) != 0);
	CU_ASSERT_EQUAL(ccb__ecdh_hkdf(ikm, sizeof ikm, a, 0, NULL), CCB_ERR_INVALID_ARG);
}

static void test_round_trip(void)
{
	ccb__ecdh *a = NULL, *b = NULL;
	char pa[CCB_ECDH_PUB_B64_SIZE], pb[CCB_ECDH_PUB_B64_SIZE];
	uint8_t ka[32], kb[32];

	CU_ASSERT_FATAL(ccb__ecdh_generate(&a, NULL) == CCB_OK);
	CU_ASSERT_FATAL(ccb__ecdh_generate(&b, NULL) == CCB_OK);
	CU_ASSERT_EQUAL(ccb__ecdh_public_b64(a, pa, NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb__ecdh_public_b64(b, pb, NULL), CCB_OK);
	CU_ASSERT_EQUAL(strlen(pa), 88);
	CU_ASSERT_EQUAL(pa[0], 'B');
	CU_ASSERT_EQUAL(pa[87], '=');
	CU_ASSERT(strcmp(pa, pb) != 0);
	CU_ASSERT_EQUAL(ccb__ecdh_session_key(a, pb, ka, sizeof ka, NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb__ecdh_session_key(b, pa, kb, sizeof kb, NULL), CCB_OK);
	CU_ASSERT(memcmp(ka, kb, sizeof ka) == 0);
	ccb__ecdh_free(a);
	ccb__ecdh_free(b);
}

static void expect_refused(const char *b64, const char *detail_part)
{
	uint8_t pt[CCB_ECDH_POINT_LEN], sec[CCB_ECDH_SECRET_LEN];
	ccb__ecdh *k = fixed_key(0x11);
	ccb_error e;

	CU_ASSERT_EQUAL(ccb__ecdh_decode_peer(b64, pt, &e), CCB_ERR_PROTOCOL);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, detail_part));
	CU_ASSERT_EQUAL(ccb__ecdh_shared_secret(k, b64, sec, &e), CCB_ERR_PROTOCOL);
	ccb__ecdh_free(k);
}

static void test_invalid_points(void)
{
	char buf[128];

	expect_refused("", "0 characters");
	expect_refused(NULL, "0 characters");
	/* Too short / too long. */
	expect_refused("BAIX5hfwtkQ5KCePlpmeaaI6TywVK99t", "characters, expected 88");
	snprintf(buf, sizeof buf, "%sAAAA", CLIENT_PUB);
	expect_refused(buf, "characters, expected 88");
	/* Bad base64 character. */
	snprintf(buf, sizeof buf, "%s", CLIENT_PUB);
	buf[10] = '*';
	expect_refused(buf, "not base64");
	/* A newline inside is refused too (C++ sends none). */
	buf[10] = '\n';
	expect_refused(buf, "not base64");
	/* No padding character. */
	snprintf(buf, sizeof buf, "%s", CLIENT_PUB);
	buf[87] = 'A';
	expect_refused(buf, "65-byte");
	/* Compressed / hybrid prefix: first byte 0x02 ("Ai..."). */
	snprintf(buf, sizeof buf, "%s", CLIENT_PUB);
	buf[0] = 'A';
	buf[1] = 'g';
	expect_refused(buf, "uncompressed");
	/* Y changed: off the curve. */
	snprintf(buf, sizeof buf, "%s", CLIENT_PUB);
	buf[80] = buf[80] == 'A' ? 'B' : 'A';
	expect_refused(buf, "not a point on P-256");
	/* All zero coordinates (04 00..00). */
	snprintf(buf, sizeof buf, "BA%.*s=", 85,
		 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	expect_refused(buf, "not a point on P-256");
}

static void test_bad_scalar(void)
{
	uint8_t zero[CCB_ECDH_PRIV_LEN] = {0}, big[CCB_ECDH_PRIV_LEN];
	ccb__ecdh *k = NULL;

	memset(big, 0xff, sizeof big);
	CU_ASSERT_EQUAL(ccb__ecdh_from_private(zero, &k, NULL), CCB_ERR_INVALID_ARG);
	CU_ASSERT_PTR_NULL(k);
	CU_ASSERT_EQUAL(ccb__ecdh_from_private(big, &k, NULL), CCB_ERR_INVALID_ARG);
	CU_ASSERT_PTR_NULL(k);
}

static const ccbt_test tests[] = {
	{"section 8 vector", test_vector},
	{"24-byte key", test_short_key},
	{"hkdf input sensitivity", test_hkdf_sensitivity},
	{"round trip", test_round_trip},
	{"invalid points refused", test_invalid_points},
	{"bad private scalar", test_bad_scalar},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"ecdh", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}

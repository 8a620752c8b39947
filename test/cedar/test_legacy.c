/*
 * CEDAR legacy ciphers over real loopback TCP (cedar-stream.md §7, §8):
 * BLOWFISH and 3DES known answers (64-bit CFB, zero IV, 24-byte key), the
 * restart at every end of message in both directions, secrets enciphered
 * alone while crypto mode is off (8-byte length + bytes), and the MD5
 * integrity header. The expected bytes were computed outside libccb
 * (Python cryptography's Blowfish/TripleDES in CFB mode; `openssl enc
 * -des-ede3-cfb` agrees on 3DES) with key 00 01 02 ... 17.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ccbt.h"
#include "cedar/legacy.h"
#include "cedar/stream_internal.h"

static const uint8_t key24[24] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
				  12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};

static ccb_stream *keyed_pair(int *raw, int method, bool encrypt, bool integrity)
{
	int fds[2];
	ccb_stream *s;

	ccbt_tcp_pair(fds);
	CU_ASSERT_FATAL(ccb_stream_new(fds[0], &s, NULL) == CCB_OK);
	ccb_stream_set_timeout(s, 5000);
	CU_ASSERT_FATAL(ccb__stream_set_legacy_key(s, method, key24, encrypt, integrity) == CCB_OK);
	*raw = fds[1];
	return s;
}

/* Without the legacy provider BLOWFISH is refused with a message that
 * names it; 3DES (default provider) still works. Runs in a child whose
 * OPENSSL_MODULES points nowhere, before anything loaded the providers. */
static void test_blowfish_missing_provider(void)
{
	pid_t pid = fork();
	int status = 0;

	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		char why[256] = "";
		setenv("OPENSSL_MODULES", "/nonexistent-ccbt-ossl-modules", 1);
		if (ccb_legacy_available(CCB_LEGACY_BLOWFISH, why, sizeof why))
			_exit(2);
		if (!strstr(why, "BLOWFISH needs OpenSSL's legacy provider (ossl-modules/legacy.so), "
				 "not available"))
			_exit(3);
		_exit(ccb_legacy_available(CCB_LEGACY_3DES, NULL, 0) ? 0 : 4);
	}
	CU_ASSERT(waitpid(pid, &status, 0) == pid);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CU_ASSERT(ccb_legacy_available(CCB_LEGACY_3DES, NULL, 0));
}

/* Encryption on: every byte enciphered, header clear with L = plaintext
 * length, strings in the length-prefixed form; each message starts from
 * the zero IV again, so the same message gives the same bytes. */
static void check_full(int method, const char *cipher_hex)
{
	char want[128];
	int raw;
	ccb_stream *s = keyed_pair(&raw, method, true, false);
	int64_t v = 0;
	char *str = NULL;

	CU_ASSERT(ccb_stream_crypto_on(s));
	CU_ASSERT_EQUAL(ccb_stream_crypto_method(s), method);
	snprintf(want, sizeof want, "01 00000014 %s", cipher_hex);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT(ccb_stream_put_int(s, 67) == CCB_OK);
		CU_ASSERT(ccb_stream_put_string(s, "abc") == CCB_OK);
		CU_ASSERT(ccb_stream_end_message(s) == CCB_OK);
		ccbt_expect_wire(raw, want);
	}
	/* The same bytes read back, twice: the receiver restarts too. */
	for (int i = 0; i < 2; i++) {
		ccbt_send_hex(raw, want);
		CU_ASSERT(ccb_stream_get_int(s, &v) == CCB_OK && v == 67);
		CU_ASSERT(ccb_stream_get_string(s, &str) == CCB_OK);
		CU_ASSERT(str && !strcmp(str, "abc"));
		ccb_free(str);
		str = NULL;
		CU_ASSERT(ccb_stream_end_of_message(s) == CCB_OK);
	}
	ccb_stream_free(s);
	close(raw);
}

static void test_blowfish_full(void)
{
	check_full(CCB_LEGACY_BLOWFISH, "9fecc88319730e77060c658cbe2601acbaf374a8");
}

static void test_3des_full(void)
{
	check_full(CCB_LEGACY_3DES, "894bc3085426a402ff3542f698e8d7680cd80991");
}

/* Encryption off: the int and the plain string stay clear (NUL form); the
 * secret is the ON form (8-byte length 4 + "abc\0") enciphered alone. */
static void check_secret(int method, const char *secret_hex)
{
	char want[160];
	int raw;
	ccb_stream *s = keyed_pair(&raw, method, false, false);
	int64_t v = 0;
	char *str = NULL;

	CU_ASSERT(!ccb_stream_crypto_on(s));
	CU_ASSERT(!ccb_stream_integrity_on(s));
	snprintf(want, sizeof want, "01 00000018 0000000000000005 %s 78797a00", secret_hex);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT(ccb_stream_put_int(s, 5) == CCB_OK);
		CU_ASSERT(ccb_stream_put_secret(s, "abc") == CCB_OK);
		CU_ASSERT(ccb_stream_put_string(s, "xyz") == CCB_OK);
		CU_ASSERT(ccb_stream_end_message(s) == CCB_OK);
		ccbt_expect_wire(raw, want);
	}
	for (int i = 0; i < 2; i++) {
		ccbt_send_hex(raw, want);
		CU_ASSERT(ccb_stream_get_int(s, &v) == CCB_OK && v == 5);
		CU_ASSERT(ccb_stream_get_secret(s, &str) == CCB_OK);
		CU_ASSERT(str && !strcmp(str, "abc"));
		ccb_free(str);
		CU_ASSERT(ccb_stream_get_string(s, &str) == CCB_OK);
		CU_ASSERT(str && !strcmp(str, "xyz"));
		ccb_free(str);
		str = NULL;
		CU_ASSERT(ccb_stream_end_of_message(s) == CCB_OK);
	}
	/* Two secrets in one message: the second continues the cipher stream,
	 * so it differs from the first although the text is the same. */
	{
		uint8_t got[5 + 24];
		ccb_stream_put_secret(s, "abc");
		ccb_stream_put_secret(s, "abc");
		CU_ASSERT(ccb_stream_end_message(s) == CCB_OK);
		ccbt_read_raw(raw, got, sizeof got);
		CU_ASSERT(memcmp(got + 5, got + 5 + 12, 12) != 0);
		CU_ASSERT(send(raw, got, sizeof got, 0) == (ssize_t)sizeof got);
		for (int i = 0; i < 2; i++) {
			CU_ASSERT(ccb_stream_get_secret(s, &str) == CCB_OK);
			CU_ASSERT(str && !strcmp(str, "abc"));
			ccb_free(str);
			str = NULL;
		}
		CU_ASSERT(ccb_stream_end_of_message(s) == CCB_OK);
	}
	ccb_stream_free(s);
	close(raw);
}

static void test_blowfish_secret(void)
{
	check_secret(CCB_LEGACY_BLOWFISH, "9fecc88319730e307b0aac71");
}

static void test_3des_secret(void)
{
	check_secret(CCB_LEGACY_3DES, "894bc3085426a445b00094d7");
}

/* A secret whose enciphered length is garbage (wrong key) is a clear error. */
static void test_secret_wrong_key(void)
{
	int raw;
	ccb_stream *s = keyed_pair(&raw, CCB_LEGACY_3DES, false, false);
	char *str = NULL;

	/* BLOWFISH's bytes read with the 3DES key. */
	ccbt_send_hex(raw, "01 0000000c 9fecc88319730e307b0aac71");
	CU_ASSERT_EQUAL(ccb_stream_get_secret(s, &str), CCB_ERR_PROTOCOL);
	CU_ASSERT_PTR_NULL(str);
	CU_ASSERT_PTR_NOT_NULL(strstr(ccb_stream_error(s)->detail, "secret length"));
	ccb_stream_free(s);
	close(raw);
}

/* Integrity on: 21-byte header, MD5(key ‖ body) after the length. */
static void test_md_header(void)
{
	static const char *want = "01 00000008 5617acec88ae55ecb000b02ef45ee863 0000000000000043";
	int raw;
	ccb_stream *s = keyed_pair(&raw, CCB_LEGACY_3DES, false, true);
	int64_t v = 0;

	CU_ASSERT(ccb_stream_integrity_on(s) && !ccb_stream_crypto_on(s));
	CU_ASSERT(ccb_stream_put_int(s, 67) == CCB_OK && ccb_stream_end_message(s) == CCB_OK);
	ccbt_expect_wire(raw, want);
	ccbt_send_hex(raw, want);
	CU_ASSERT(ccb_stream_get_int(s, &v) == CCB_OK && v == 67);
	CU_ASSERT(ccb_stream_end_of_message(s) == CCB_OK);
	/* One bit changed in the body: refused. */
	ccbt_send_hex(raw, "01 00000008 5617acec88ae55ecb000b02ef45ee863 0000000000000042");
	CU_ASSERT_EQUAL(ccb_stream_get_int(s, &v), CCB_ERR_CRYPTO);
	CU_ASSERT_PTR_NOT_NULL(strstr(ccb_stream_error(s)->detail, "MD5"));
	ccb_stream_free(s);
	close(raw);
}

/* Both at once, as with Encryption and Integrity YES: the MAC covers the
 * enciphered body. */
static void test_encrypt_and_md(void)
{
	int fds[2];
	ccb_stream *a, *b;
	int64_t v = 0;
	char *str = NULL;

	ccbt_tcp_pair(fds);
	ccb_stream_new(fds[0], &a, NULL);
	ccb_stream_new(fds[1], &b, NULL);
	ccb_stream_set_timeout(a, 5000);
	ccb_stream_set_timeout(b, 5000);
	CU_ASSERT(ccb__stream_set_legacy_key(a, CCB_LEGACY_BLOWFISH, key24, true, true) == CCB_OK);
	CU_ASSERT(ccb__stream_set_legacy_key(b, CCB_LEGACY_BLOWFISH, key24, true, true) == CCB_OK);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT(ccb_stream_put_int(a, 1000 + i) == CCB_OK);
		CU_ASSERT(ccb_stream_put_secret(a, "claim") == CCB_OK); /* no-op: crypto is on */
		CU_ASSERT(ccb_stream_end_message(a) == CCB_OK);
		CU_ASSERT(ccb_stream_get_int(b, &v) == CCB_OK && v == 1000 + i);
		CU_ASSERT(ccb_stream_get_secret(b, &str) == CCB_OK);
		CU_ASSERT(str && !strcmp(str, "claim"));
		ccb_free(str);
		str = NULL;
		CU_ASSERT(ccb_stream_end_of_message(b) == CCB_OK);
		/* and back */
		CU_ASSERT(ccb_stream_put_string(b, "ok") == CCB_OK && ccb_stream_end_message(b) == CCB_OK);
		CU_ASSERT(ccb_stream_get_string(a, &str) == CCB_OK && str && !strcmp(str, "ok"));
		ccb_free(str);
		str = NULL;
		CU_ASSERT(ccb_stream_end_of_message(a) == CCB_OK);
	}
	ccb_stream_free(a);
	ccb_stream_free(b);
}

/* An AES key replaces the legacy one and turns MD mode off. */
static void test_aes_replaces_legacy(void)
{
	int raw;
	static const uint8_t k32[32] = {1};
	ccb_stream *s = keyed_pair(&raw, CCB_LEGACY_3DES, false, true);

	CU_ASSERT(ccb_stream_set_aes_key(s, k32) == CCB_OK);
	CU_ASSERT_EQUAL(ccb_stream_crypto_method(s), 3);
	CU_ASSERT(ccb_stream_crypto_on(s) && ccb_stream_integrity_on(s));
	ccb_stream_free(s);
	close(raw);
}

static const ccbt_test tests[] = {
	{"BLOWFISH without the legacy provider", test_blowfish_missing_provider},
	{"BLOWFISH encryption known answer, per-EOM restart", test_blowfish_full},
	{"3DES encryption known answer, per-EOM restart", test_3des_full},
	{"BLOWFISH secret known answer", test_blowfish_secret},
	{"3DES secret known answer", test_3des_secret},
	{"secret read with the wrong key", test_secret_wrong_key},
	{"MD5 integrity header", test_md_header},
	{"encryption and integrity together", test_encrypt_and_md},
	{"AES replaces a legacy key", test_aes_replaces_legacy},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"cedar legacy ciphers", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}

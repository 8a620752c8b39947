#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "cedar/legacy.h"

/* One library context for the legacy ciphers, made on first use. Loading
 * "legacy" into the default context (as HTCondor does) would stop OpenSSL
 * from loading "default" there implicitly and so change what every other
 * user of OpenSSL in the process sees. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static OSSL_LIB_CTX *libctx;
static EVP_CIPHER *bf_cfb, *des3_cfb;
static EVP_MD *md5;
static char bf_why[200], des3_why[200];

static void openssl_reason(char *out, size_t size)
{
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, out, size);
	else
		snprintf(out, size, "unknown reason");
	ERR_clear_error();
}

static void load(void)
{
	char reason[160];

	libctx = OSSL_LIB_CTX_new();
	if (!libctx || !OSSL_PROVIDER_load(libctx, "default")) {
		openssl_reason(reason, sizeof reason);
		snprintf(bf_why, sizeof bf_why, "OpenSSL library context: %s", reason);
		snprintf(des3_why, sizeof des3_why, "OpenSSL library context: %s", reason);
		return;
	}
	/* H:condor_crypt.cpp:58-75: "des-ede3-cfb" and "bf-cfb" (64-bit CFB). */
	if (!(des3_cfb = EVP_CIPHER_fetch(libctx, "des-ede3-cfb", NULL))) {
		openssl_reason(reason, sizeof reason);
		snprintf(des3_why, sizeof des3_why, "3DES (des-ede3-cfb) not available: %s", reason);
	}
	md5 = EVP_MD_fetch(libctx, "MD5", NULL);
	ERR_clear_error();
	if (!OSSL_PROVIDER_load(libctx, "legacy")) {
		openssl_reason(reason, sizeof reason);
		snprintf(bf_why, sizeof bf_why,
			 "BLOWFISH needs OpenSSL's legacy provider (ossl-modules/legacy.so), "
			 "not available: %s", reason);
		return;
	}
	if (!(bf_cfb = EVP_CIPHER_fetch(libctx, "bf-cfb", NULL))) {
		openssl_reason(reason, sizeof reason);
		snprintf(bf_why, sizeof bf_why,
			 "BLOWFISH needs OpenSSL's legacy provider (ossl-modules/legacy.so), "
			 "not available: %s", reason);
	}
}

static const EVP_CIPHER *cipher_of(int method, const char **why)
{
	pthread_once(&once, load);
	if (method == CCB_LEGACY_BLOWFISH) {
		*why = bf_why;
		return bf_cfb;
	}
	if (method == CCB_LEGACY_3DES) {
		*why = des3_why;
		return des3_cfb;
	}
	*why = "not a legacy cipher";
	return NULL;
}

bool ccb_legacy_available(int method, char *why, size_t why_size)
{
	const char *w;
	bool ok = cipher_of(method, &w) != NULL;

	if (!ok && why && why_size)
		snprintf(why, why_size, "%s", w);
	return ok;
}

static ccb_err start(ccb_legacy *l, EVP_CIPHER_CTX **ctx, bool enc, ccb_error *err)
{
	static const uint8_t zero_iv[8];
	const char *why;
	const EVP_CIPHER *c = cipher_of(l->method, &why);

	if (!c)
		return ccb_error_set(err, CCB_ERR_UNSUPPORTED, "%s", why);
	if (!*ctx && !(*ctx = EVP_CIPHER_CTX_new()))
		return ccb_error_set(err, CCB_ERR_NOMEM, "EVP_CIPHER_CTX_new");
	/* Condor_Crypto_State::reset (H:condor_crypt.cpp:103-147): the key
	 * length is set to 24 before the key goes in, the IV is zero. */
	if (EVP_CipherInit_ex(*ctx, c, NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_set_key_length(*ctx, CCB_LEGACY_KEY_LEN) != 1 ||
	    EVP_CipherInit_ex(*ctx, NULL, NULL, l->key, zero_iv, enc) != 1) {
		ERR_clear_error();
		return ccb_error_set(err, CCB_ERR_CRYPTO, "cannot set up %s",
				     l->method == CCB_LEGACY_BLOWFISH ? "BLOWFISH" : "3DES");
	}
	return CCB_OK;
}

ccb_err ccb_legacy_reset(ccb_legacy *l, ccb_error *err)
{
	ccb_err rc = start(l, (EVP_CIPHER_CTX **)&l->enc, true, err);

	return rc ? rc : start(l, (EVP_CIPHER_CTX **)&l->dec, false, err);
}

ccb_err ccb_legacy_init(ccb_legacy *l, int method, const uint8_t *key, ccb_error *err)
{
	ccb_legacy_wipe(l);
	l->method = method;
	memcpy(l->key, key, CCB_LEGACY_KEY_LEN);
	return ccb_legacy_reset(l, err);
}

static ccb_err run(void *ctx, uint8_t *p, size_t n, ccb_error *err)
{
	while (n > 0) {
		int chunk = n > (1 << 30) ? (1 << 30) : (int)n, out = 0;
		if (!ctx || EVP_CipherUpdate(ctx, p, &out, p, chunk) != 1 || out != chunk)
			return ccb_error_set(err, CCB_ERR_CRYPTO, "legacy cipher failed");
		p += chunk;
		n -= (size_t)chunk;
	}
	return CCB_OK;
}

ccb_err ccb_legacy_encrypt(ccb_legacy *l, uint8_t *p, size_t n, ccb_error *err)
{
	return run(l->enc, p, n, err);
}

ccb_err ccb_legacy_decrypt(ccb_legacy *l, uint8_t *p, size_t n, ccb_error *err)
{
	return run(l->dec, p, n, err);
}

void ccb_legacy_wipe(ccb_legacy *l)
{
	EVP_CIPHER_CTX_free(l->enc);
	EVP_CIPHER_CTX_free(l->dec);
	OPENSSL_cleanse(l, sizeof *l);
}

void ccb_legacy_mac(const uint8_t *key, size_t key_len, const uint8_t *body, size_t n,
		    uint8_t out[CCB_LEGACY_MAC_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = CCB_LEGACY_MAC_LEN;

	pthread_once(&once, load);
	memset(out, 0, CCB_LEGACY_MAC_LEN);
	/* Condor_MD_MAC (H:condor_md.cpp:60-79, 180-197): plain MD5 of the
	 * key then the body, not an HMAC. */
	if (ctx && EVP_DigestInit_ex(ctx, md5 ? md5 : EVP_md5(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, key, key_len) == 1 && EVP_DigestUpdate(ctx, body, n) == 1)
		EVP_DigestFinal_ex(ctx, out, &len);
	EVP_MD_CTX_free(ctx);
}

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "aesgcm.h"
#include "codec.h"

ccb_err ccb_aesgcm_init(ccb_aesgcm *g, const uint8_t key[32], const uint8_t *send_iv,
			ccb_error *err)
{
	memset(g, 0, sizeof *g);
	memcpy(g->key, key, 32);
	if (send_iv) {
		memcpy(g->send_base, send_iv, CCB_GCM_IV_LEN);
		return CCB_OK;
	}
	return ccb_random_bytes(g->send_base, CCB_GCM_IV_LEN, err);
}

void ccb_aesgcm_wipe(ccb_aesgcm *g)
{
	OPENSSL_cleanse(g, sizeof *g);
}

size_t ccb_aesgcm_sealed_len(const ccb_aesgcm *g, size_t n)
{
	return n + CCB_GCM_TAG_LEN + (g->send_count == 0 ? CCB_GCM_IV_LEN : 0);
}

/* IV for packet n: base with n added to its first 4 bytes, big-endian, wrapping
 * (H:condor_crypt_aesgcm.cpp:116-131, 328-344). */
static void packet_iv(const uint8_t base[CCB_GCM_IV_LEN], uint32_t n, uint8_t iv[CCB_GCM_IV_LEN])
{
	memcpy(iv, base, CCB_GCM_IV_LEN);
	ccb_be32_put(iv, ccb_be32_get(base) + n);
}

/*
 * Every packet is sealed or opened on its own (HTCondor re-keys the GCM
 * context per packet too), so the state kept between packets is only the key,
 * the base IVs and the counters. What is expensive to make again for each
 * packet is kept instead: the cipher is fetched from the provider once per
 * process, and each thread keeps one cipher context that every packet
 * re-initialises with its key and IV (OpenSSL reuses the provider context
 * when the cipher is the same). A packet never yields half-way, so a context
 * is never shared, even when handshakes move between threads.
 */
static EVP_CIPHER *gcm_cipher;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;
static pthread_key_t gcm_ctx_key;

static void gcm_ctx_free(void *ctx)
{
	EVP_CIPHER_CTX_free(ctx);
}

static void gcm_setup(void)
{
	gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	if (pthread_key_create(&gcm_ctx_key, gcm_ctx_free))
		gcm_cipher = (EVP_CIPHER_free(gcm_cipher), NULL);
}

static EVP_CIPHER_CTX *gcm_ctx(void)
{
	EVP_CIPHER_CTX *ctx;

	pthread_once(&gcm_once, gcm_setup);
	if (!gcm_cipher)
		return NULL;
	if ((ctx = pthread_getspecific(gcm_ctx_key)))
		return ctx;
	if ((ctx = EVP_CIPHER_CTX_new()) && pthread_setspecific(gcm_ctx_key, ctx))
		ctx = (EVP_CIPHER_CTX_free(ctx), NULL);
	return ctx;
}

static ccb_err gcm_run(bool enc, const uint8_t key[32], const uint8_t iv[CCB_GCM_IV_LEN],
		       const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t n,
		       uint8_t *out, uint8_t tag[CCB_GCM_TAG_LEN], ccb_error *err)
{
	EVP_CIPHER_CTX *ctx = gcm_ctx();
	const OSSL_PARAM ivlen[] = {
		OSSL_PARAM_construct_size_t("ivlen", &(size_t){CCB_GCM_IV_LEN}), OSSL_PARAM_END};
	int len = 0, ok;

	if (!ctx)
		return ccb_error_set(err, CCB_ERR_CRYPTO, "AES-256-GCM is not available from OpenSSL");
	/* A context that already runs this cipher with 16-byte IVs takes the
	 * packet's key and IV in one step. */
	ok = n <= INT32_MAX && aad_len <= INT32_MAX &&
	     ((EVP_CIPHER_CTX_get0_cipher(ctx) == gcm_cipher &&
	       EVP_CIPHER_CTX_get_iv_length(ctx) == CCB_GCM_IV_LEN) ||
	      EVP_CipherInit_ex2(ctx, gcm_cipher, NULL, NULL, enc, ivlen) == 1) &&
	     EVP_CipherInit_ex2(ctx, NULL, key, iv, enc, NULL) == 1 &&
	     EVP_CipherUpdate(ctx, NULL, &len, aad, (int)aad_len) == 1 &&
	     (n == 0 || EVP_CipherUpdate(ctx, out, &len, in, (int)n) == 1);
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CCB_GCM_TAG_LEN, tag) == 1;
	if (ok)
		ok = EVP_CipherFinal_ex(ctx, out + (n ? len : 0), &len) == 1;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CCB_GCM_TAG_LEN, tag) == 1;
	if (!ok)
		return ccb_error_set(err, CCB_ERR_CRYPTO,
				     enc ? "AES-GCM encryption failed"
					 : "AES-GCM packet failed authentication");
	return CCB_OK;
}

ccb_err ccb_aesgcm_seal(ccb_aesgcm *g, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
			size_t n, uint8_t *out, ccb_error *err)
{
	uint8_t iv[CCB_GCM_IV_LEN];
	size_t off = 0;
	ccb_err rc;

	if (g->send_count == UINT32_MAX)
		return ccb_error_set(err, CCB_ERR_CRYPTO, "AES-GCM send counter exhausted");
	packet_iv(g->send_base, g->send_count, iv);
	if (g->send_count == 0) {
		memcpy(out, g->send_base, CCB_GCM_IV_LEN);
		off = CCB_GCM_IV_LEN;
	}
	rc = gcm_run(true, g->key, iv, aad, aad_len, pt, n, out + off, out + off + n, err);
	if (rc == CCB_OK)
		g->send_count++;
	return rc;
}

ccb_err ccb_aesgcm_open(ccb_aesgcm *g, const uint8_t *aad, size_t aad_len, const uint8_t *body,
			size_t body_len, uint8_t *out, size_t *out_len, ccb_error *err)
{
	uint8_t iv[CCB_GCM_IV_LEN], base[CCB_GCM_IV_LEN], tag[CCB_GCM_TAG_LEN];
	size_t need = CCB_GCM_TAG_LEN + (g->recv_count == 0 ? CCB_GCM_IV_LEN : 0);
	size_t n;
	ccb_err rc;

	if (g->recv_count == UINT32_MAX)
		return ccb_error_set(err, CCB_ERR_CRYPTO, "AES-GCM receive counter exhausted");
	if (body_len < need)
		return ccb_error_set(err, CCB_ERR_CRYPTO,
				     "encrypted packet of %zu bytes is shorter than %zu", body_len,
				     need);
	memcpy(base, g->recv_base, sizeof base);
	if (g->recv_count == 0) {
		memcpy(base, body, CCB_GCM_IV_LEN);
		body += CCB_GCM_IV_LEN;
		body_len -= CCB_GCM_IV_LEN;
	}
	n = body_len - CCB_GCM_TAG_LEN;
	memcpy(tag, body + n, CCB_GCM_TAG_LEN);
	packet_iv(base, g->recv_count, iv);
	rc = gcm_run(false, g->key, iv, aad, aad_len, body, n, out, tag, err);
	if (rc)
		return rc;
	/* Counters and the learned base IV advance only on success. */
	memcpy(g->recv_base, base, sizeof base);
	g->recv_count++;
	*out_len = n;
	return CCB_OK;
}

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

static ccb_err gcm_run(bool enc, const uint8_t key[32], const uint8_t iv[CCB_GCM_IV_LEN],
		       const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t n,
		       uint8_t *out, uint8_t tag[CCB_GCM_TAG_LEN], ccb_error *err)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len = 0, ok;

	if (!ctx)
		return ccb_error_set(err, CCB_ERR_NOMEM, "EVP_CIPHER_CTX_new");
	ok = n <= INT32_MAX && aad_len <= INT32_MAX &&
	     EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CCB_GCM_IV_LEN, NULL) == 1 &&
	     EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, enc) == 1 &&
	     EVP_CipherUpdate(ctx, NULL, &len, aad, (int)aad_len) == 1 &&
	     (n == 0 || EVP_CipherUpdate(ctx, out, &len, in, (int)n) == 1);
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CCB_GCM_TAG_LEN, tag) == 1;
	if (ok)
		ok = EVP_CipherFinal_ex(ctx, out + (n ? len : 0), &len) == 1;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CCB_GCM_TAG_LEN, tag) == 1;
	EVP_CIPHER_CTX_free(ctx);
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

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>

#include "security/ecdh.h"

/* prime256v1 = secp256r1 = P-256 (H:condor_secman.cpp:2960). */

/* HKDF parameters (H:src/condor_io/condor_crypt.cpp:204-219). */
static const char HKDF_SALT[] = "htcondor";
static const char HKDF_INFO[] = "keygen";

/*
 * ECDH on P-256 with OpenSSL's point arithmetic (EC_POINT_mul, the same
 * constant-time code its EVP key agreement ends in) on one group made
 * once per process. The EVP route spent about a quarter of a key
 * agreement's time making key contexts and looking key types up by name
 * (EVP_PKEY_CTX_new_from_pkey, EVP_PKEY_copy_parameters); this one has no
 * EVP_PKEY at all. A group is only read once made, so threads share it.
 */
struct ccb__ecdh {
	BIGNUM *d;                       /* private scalar, secure heap, constant time */
	uint8_t pub[CCB_ECDH_POINT_LEN]; /* d * G, uncompressed */
};

static EC_GROUP *p256;
static pthread_once_t p256_once = PTHREAD_ONCE_INIT;

static void p256_setup(void)
{
	p256 = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
}

static const EC_GROUP *group(void)
{
	pthread_once(&p256_once, p256_setup);
	return p256;
}

/* k->pub = k->d * G. */
static bool make_public(const EC_GROUP *g, ccb__ecdh *k)
{
	EC_POINT *p = EC_POINT_new(g);
	BN_CTX *bc = BN_CTX_secure_new();
	bool ok = p && bc && EC_POINT_mul(g, p, k->d, NULL, NULL, bc) == 1 &&
		  EC_POINT_point2oct(g, p, POINT_CONVERSION_UNCOMPRESSED, k->pub, CCB_ECDH_POINT_LEN,
				     bc) == CCB_ECDH_POINT_LEN;

	BN_CTX_free(bc);
	EC_POINT_free(p);
	return ok;
}

/* A key around a scalar d in [1, order) (taken over), or an error. */
static ccb_err finish_key(const EC_GROUP *g, BIGNUM *d, ccb__ecdh **out, ccb_error *err)
{
	ccb__ecdh *k = calloc(1, sizeof *k);

	if (!k) {
		BN_clear_free(d);
		return ccb_error_set(err, CCB_ERR_NOMEM, "ECDH key: out of memory");
	}
	BN_set_flags(d, BN_FLG_CONSTTIME);
	k->d = d;
	if (!make_public(g, k)) {
		ccb__ecdh_free(k);
		return ccb_error_set(err, CCB_ERR_CRYPTO, "ECDH: computing our public point failed");
	}
	*out = k;
	return CCB_OK;
}

ccb_err ccb__ecdh_generate(ccb__ecdh **out, ccb_error *err)
{
	const EC_GROUP *g = group();
	BIGNUM *d = BN_secure_new();

	*out = NULL;
	if (!g || !d) {
		BN_free(d);
		return ccb_error_set(err, CCB_ERR_CRYPTO, "ECDH: P-256 is not available");
	}
	/* Uniform in [1, order): the private-key generator, as for keys. */
	do {
		if (BN_priv_rand_range_ex(d, EC_GROUP_get0_order(g), 0, NULL) != 1) {
			BN_clear_free(d);
			return ccb_error_set(err, CCB_ERR_CRYPTO, "ECDH: generating a P-256 key failed");
		}
	} while (BN_is_zero(d));
	return finish_key(g, d, out, err);
}

ccb_err ccb__ecdh_from_private(const uint8_t priv[CCB_ECDH_PRIV_LEN], ccb__ecdh **out,
			       ccb_error *err)
{
	const EC_GROUP *g = group();
	BIGNUM *d = BN_secure_new();

	*out = NULL;
	if (!g || !d || !BN_bin2bn(priv, CCB_ECDH_PRIV_LEN, d)) {
		BN_clear_free(d);
		return ccb_error_set(err, CCB_ERR_NOMEM, "ECDH: out of memory");
	}
	if (BN_is_zero(d) || BN_cmp(d, EC_GROUP_get0_order(g)) >= 0) {
		BN_clear_free(d);
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "ECDH: private scalar out of range");
	}
	return finish_key(g, d, out, err);
}

void ccb__ecdh_free(ccb__ecdh *k)
{
	if (!k)
		return;
	BN_clear_free(k->d);
	free(k);
}

ccb_err ccb__ecdh_public_raw(const ccb__ecdh *k, uint8_t out[CCB_ECDH_POINT_LEN], ccb_error *err)
{
	/* Uncompressed, like the i2d_PublicKey the C++ code uses
	 * (H:condor_secman.cpp:3103-3125). */
	(void)err;
	memcpy(out, k->pub, CCB_ECDH_POINT_LEN);
	return CCB_OK;
}

ccb_err ccb__ecdh_public_b64(const ccb__ecdh *k, char out[CCB_ECDH_PUB_B64_SIZE], ccb_error *err)
{
	/* EVP_EncodeBlock: standard alphabet, padding, no newlines, NUL. */
	if (EVP_EncodeBlock((unsigned char *)out, k->pub, CCB_ECDH_POINT_LEN) != CCB_ECDH_PUB_B64_LEN)
		return ccb_error_set(err, CCB_ERR_CRYPTO, "ECDH: base64 encoding failed");
	return CCB_OK;
}

static bool is_b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/*
 * Decode and check a peer's key; *pt (may be NULL) receives the point. The
 * point must be on the curve and not the point at infinity (which has no
 * 65-byte form anyway); that is the whole check for P-256: with cofactor 1
 * every other point on the curve has the group's prime order.
 */
static ccb_err decode_peer(const char *b64, uint8_t out[CCB_ECDH_POINT_LEN], EC_POINT **pt_out,
			   ccb_error *err)
{
	uint8_t raw[CCB_ECDH_POINT_LEN + 1];
	size_t n = b64 ? strlen(b64) : 0;
	const EC_GROUP *g = group();
	EC_POINT *pt;
	bool on_curve;

	/* 65 bytes are 88 base64 characters, the last one '=' (§8 step 2). */
	if (n != CCB_ECDH_PUB_B64_LEN)
		return ccb_error_set(err, CCB_ERR_PROTOCOL,
				     "peer ECDHPublicKey has %zu characters, expected %d", n,
				     CCB_ECDH_PUB_B64_LEN);
	for (size_t i = 0; i < n - 1; i++)
		if (!is_b64_char(b64[i]))
			return ccb_error_set(err, CCB_ERR_PROTOCOL,
					     "peer ECDHPublicKey is not base64 (character %zu)", i);
	if (b64[n - 1] != '=')
		return ccb_error_set(err, CCB_ERR_PROTOCOL,
				     "peer ECDHPublicKey does not decode to a 65-byte point");
	/* EVP_DecodeBlock counts the padding as a zero byte. */
	if (EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n) != CCB_ECDH_POINT_LEN + 1)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "peer ECDHPublicKey: bad base64");
	if (raw[0] != 0x04)
		return ccb_error_set(err, CCB_ERR_PROTOCOL,
				     "peer ECDHPublicKey is not an uncompressed point (first byte %02x)",
				     raw[0]);
	if (!g)
		return ccb_error_set(err, CCB_ERR_CRYPTO, "ECDH: P-256 is not available");
	pt = EC_POINT_new(g);
	/* oct2point refuses coordinates out of range and points off the
	 * curve; the explicit checks keep that independent of its version. */
	on_curve = pt && EC_POINT_oct2point(g, pt, raw, CCB_ECDH_POINT_LEN, NULL) == 1 &&
		   EC_POINT_is_on_curve(g, pt, NULL) == 1 && !EC_POINT_is_at_infinity(g, pt);
	if (!on_curve) {
		EC_POINT_free(pt);
		return ccb_error_set(err, CCB_ERR_PROTOCOL,
				     "peer ECDHPublicKey is not a point on P-256");
	}
	if (out)
		memcpy(out, raw, CCB_ECDH_POINT_LEN);
	if (pt_out)
		*pt_out = pt;
	else
		EC_POINT_free(pt);
	return CCB_OK;
}

ccb_err ccb__ecdh_decode_peer(const char *b64, uint8_t out[CCB_ECDH_POINT_LEN], ccb_error *err)
{
	return decode_peer(b64, out, NULL, err);
}

/* The shared secret is the x coordinate of d * Q (SEC 1 §3.3.1, as
 * EVP_PKEY_derive gives it for EC keys), 32 bytes big-endian. */
ccb_err ccb__ecdh_shared_secret(const ccb__ecdh *k, const char *peer_b64,
				uint8_t secret[CCB_ECDH_SECRET_LEN], ccb_error *err)
{
	const EC_GROUP *g = group();
	EC_POINT *peer = NULL, *s = NULL;
	BN_CTX *bc = NULL;
	BIGNUM *x;
	ccb_err rc = decode_peer(peer_b64, NULL, &peer, err);
	bool ok;

	if (rc)
		return rc;
	s = EC_POINT_new(g);
	bc = BN_CTX_secure_new();
	if (bc)
		BN_CTX_start(bc);
	x = bc ? BN_CTX_get(bc) : NULL;
	ok = s && x && EC_POINT_mul(g, s, NULL, peer, k->d, bc) == 1 &&
	     !EC_POINT_is_at_infinity(g, s) &&
	     EC_POINT_get_affine_coordinates(g, s, x, NULL, bc) == 1 &&
	     BN_bn2binpad(x, secret, CCB_ECDH_SECRET_LEN) == CCB_ECDH_SECRET_LEN;
	if (!ok) {
		OPENSSL_cleanse(secret, CCB_ECDH_SECRET_LEN);
		rc = ccb_error_set(err, CCB_ERR_CRYPTO, "ECDH: deriving the shared secret failed");
	}
	if (bc)
		BN_CTX_end(bc);
	BN_CTX_free(bc);
	EC_POINT_clear_free(s);
	EC_POINT_free(peer);
	return rc;
}

/*
 * HKDF-SHA256 (RFC 5869) with HTCondor's salt and info, on HMAC-SHA256: an
 * HMAC context with its digest set is made once per process and each
 * derivation works on a copy of it. EVP_PKEY_HKDF looked the KDF and the
 * digest up by name in the provider tables on every call (5.8 us against
 * 1.2 us here), and OpenSSL 3.0 cannot copy an HKDF context.
 */
static EVP_MAC_CTX *hmac_tmpl;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_setup(void)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM p[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};

	EVP_MAC_free(mac); /* the context keeps its own reference */
	if (ctx && EVP_MAC_CTX_set_params(ctx, p) != 1)
		ctx = (EVP_MAC_CTX_free(ctx), NULL);
	hmac_tmpl = ctx;
}

ccb_err ccb__ecdh_hkdf(const uint8_t *ikm, size_t ikm_len, uint8_t *key, size_t key_len,
		       ccb_error *err)
{
	uint8_t prk[32], t[32];
	size_t len = 0, done = 0;
	EVP_MAC_CTX *ctx;
	bool ok;

	if (key_len == 0 || key_len > 255 * 32)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "HKDF: bad key length %zu", key_len);
	pthread_once(&hmac_once, hmac_setup);
	ctx = hmac_tmpl ? EVP_MAC_CTX_dup(hmac_tmpl) : NULL;
	/* Extract: PRK = HMAC(salt, IKM). */
	ok = ctx && EVP_MAC_init(ctx, (const unsigned char *)HKDF_SALT, sizeof HKDF_SALT - 1, NULL) &&
	     EVP_MAC_update(ctx, ikm, ikm_len) && EVP_MAC_final(ctx, prk, &len, sizeof prk) &&
	     len == sizeof prk;
	/* Expand: T(i) = HMAC(PRK, T(i-1) | info | i), OKM = T(1) | T(2) ... */
	for (uint8_t i = 1; ok && done < key_len; i++) {
		size_t n = key_len - done < sizeof t ? key_len - done : sizeof t;
		ok = EVP_MAC_init(ctx, prk, sizeof prk, NULL) &&
		     (i == 1 || EVP_MAC_update(ctx, t, sizeof t)) &&
		     EVP_MAC_update(ctx, (const unsigned char *)HKDF_INFO, sizeof HKDF_INFO - 1) &&
		     EVP_MAC_update(ctx, &i, 1) && EVP_MAC_final(ctx, t, &len, sizeof t) &&
		     len == sizeof t;
		if (ok)
			memcpy(key + done, t, n);
		done += n;
	}
	EVP_MAC_CTX_free(ctx);
	OPENSSL_cleanse(prk, sizeof prk);
	OPENSSL_cleanse(t, sizeof t);
	if (!ok) {
		OPENSSL_cleanse(key, key_len);
		return ccb_error_set(err, CCB_ERR_CRYPTO, "HKDF-SHA256 failed");
	}
	return CCB_OK;
}

ccb_err ccb__ecdh_session_key(const ccb__ecdh *k, const char *peer_b64, uint8_t *key,
			      size_t key_len, ccb_error *err)
{
	uint8_t secret[CCB_ECDH_SECRET_LEN];
	ccb_err rc = ccb__ecdh_shared_secret(k, peer_b64, secret, err);

	if (!rc)
		rc = ccb__ecdh_hkdf(secret, sizeof secret, key, key_len, err);
	OPENSSL_cleanse(secret, sizeof secret);
	return rc;
}

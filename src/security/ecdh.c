#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/params.h>

#include "security/ecdh.h"

/* prime256v1 = secp256r1 = P-256 (H:condor_secman.cpp:2960). */
#define GROUP_NAME "prime256v1"

/* HKDF parameters (H:src/condor_io/condor_crypt.cpp:204-219). */
static const char HKDF_SALT[] = "htcondor";
static const char HKDF_INFO[] = "keygen";

struct ccb__ecdh {
	EVP_PKEY *pkey;
};

static ccb_err wrap(EVP_PKEY *pkey, ccb__ecdh **out, ccb_error *err)
{
	ccb__ecdh *k = calloc(1, sizeof *k);

	if (!k) {
		EVP_PKEY_free(pkey);
		return ccb_error_set(err, CCB_ERR_NOMEM, "ECDH key: out of memory");
	}
	k->pkey = pkey;
	*out = k;
	return CCB_OK;
}

/*
 * P-256's parameters, made once per process: key pairs are generated from
 * them and peers' points imported into a copy of them, so no handshake
 * builds the curve from its name again (the most expensive part of an
 * import after the scalar multiplication itself).
 */
static EVP_PKEY *p256;
static pthread_once_t p256_once = PTHREAD_ONCE_INIT;

static void p256_setup(void)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);

	if (!ctx || EVP_PKEY_paramgen_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_group_name(ctx, GROUP_NAME) != 1 || EVP_PKEY_paramgen(ctx, &p256) != 1)
		p256 = NULL;
	EVP_PKEY_CTX_free(ctx);
}

static const EVP_PKEY *p256_params(void)
{
	pthread_once(&p256_once, p256_setup);
	return p256;
}

ccb_err ccb__ecdh_generate(ccb__ecdh **out, ccb_error *err)
{
	const EVP_PKEY *params = p256_params();
	EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)params, NULL) : NULL;
	EVP_PKEY *pkey = NULL;

	if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &pkey) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	*out = NULL;
	if (!pkey)
		return ccb_error_set(err, CCB_ERR_CRYPTO, "ECDH: generating a P-256 key failed");
	return wrap(pkey, out, err);
}

/* pub = priv * G, uncompressed. */
static bool point_of_scalar(const BIGNUM *d, uint8_t pub[CCB_ECDH_POINT_LEN])
{
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	EC_POINT *p = g ? EC_POINT_new(g) : NULL;
	bool ok = p && EC_POINT_mul(g, p, d, NULL, NULL, NULL) == 1 &&
		  EC_POINT_point2oct(g, p, POINT_CONVERSION_UNCOMPRESSED, pub, CCB_ECDH_POINT_LEN,
				     NULL) == CCB_ECDH_POINT_LEN;

	EC_POINT_free(p);
	EC_GROUP_free(g);
	return ok;
}

static bool scalar_in_range(const BIGNUM *d)
{
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	bool ok = g && !BN_is_zero(d) && BN_cmp(d, EC_GROUP_get0_order(g)) < 0;

	EC_GROUP_free(g);
	return ok;
}

/* Import a key pair (pub always, priv if given) through OSSL_PARAM. */
static EVP_PKEY *import_key(const BIGNUM *priv, const uint8_t pub[CCB_ECDH_POINT_LEN])
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pkey = NULL;
	int selection = priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY;

	if (!bld || !ctx ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, GROUP_NAME, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
					      CCB_ECDH_POINT_LEN) ||
	    (priv && !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv)))
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	if (!params || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, selection, params) != 1)
		pkey = NULL;
out:
	/* OpenSSL 3.0 has no OSSL_PARAM_clear_free; the builder puts a
	 * secure BIGNUM in secure memory, which OSSL_PARAM_free releases. */
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

/* A peer's point, in a key that shares our P-256 parameters. */
static EVP_PKEY *import_public(const uint8_t pub[CCB_ECDH_POINT_LEN])
{
	const EVP_PKEY *params = p256_params();
	EVP_PKEY *pkey = EVP_PKEY_new();

	if (!params || !pkey || EVP_PKEY_copy_parameters(pkey, params) != 1 ||
	    EVP_PKEY_set1_encoded_public_key(pkey, pub, CCB_ECDH_POINT_LEN) != 1) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

/* The point must be on the curve and not the point at infinity; fromdata
 * already refuses points that are not, the explicit check keeps that
 * independent of the provider. The quick check is complete for P-256:
 * with cofactor 1 every other point on the curve has the group's prime
 * order, so the full check's extra scalar multiplication (order * Q = O)
 * proves nothing more and costs as much as the key agreement itself. */
static bool public_ok(EVP_PKEY *pkey)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	bool ok = ctx && EVP_PKEY_public_check_quick(ctx) == 1;

	EVP_PKEY_CTX_free(ctx);
	return ok;
}

ccb_err ccb__ecdh_from_private(const uint8_t priv[CCB_ECDH_PRIV_LEN], ccb__ecdh **out,
			       ccb_error *err)
{
	BIGNUM *d = BN_secure_new();
	uint8_t pub[CCB_ECDH_POINT_LEN];
	EVP_PKEY *pkey = NULL;
	ccb_err rc = CCB_OK;

	*out = NULL;
	if (!d || !BN_bin2bn(priv, CCB_ECDH_PRIV_LEN, d)) {
		rc = ccb_error_set(err, CCB_ERR_NOMEM, "ECDH: out of memory");
	} else if (!scalar_in_range(d)) {
		rc = ccb_error_set(err, CCB_ERR_INVALID_ARG, "ECDH: private scalar out of range");
	} else if (!point_of_scalar(d, pub) || !(pkey = import_key(d, pub))) {
		rc = ccb_error_set(err, CCB_ERR_CRYPTO, "ECDH: importing the private key failed");
	}
	BN_clear_free(d);
	return rc ? rc : wrap(pkey, out, err);
}

void ccb__ecdh_free(ccb__ecdh *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey); /* OpenSSL clears private key material */
	free(k);
}

ccb_err ccb__ecdh_public_raw(const ccb__ecdh *k, uint8_t out[CCB_ECDH_POINT_LEN], ccb_error *err)
{
	size_t len = 0;

	/* EC public keys export uncompressed by default, like the
	 * i2d_PublicKey the C++ code uses (H:condor_secman.cpp:3103-3125). */
	if (EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out,
					    CCB_ECDH_POINT_LEN, &len) != 1 ||
	    len != CCB_ECDH_POINT_LEN || out[0] != 0x04)
		return ccb_error_set(err, CCB_ERR_CRYPTO, "ECDH: encoding our public key failed");
	return CCB_OK;
}

ccb_err ccb__ecdh_public_b64(const ccb__ecdh *k, char out[CCB_ECDH_PUB_B64_SIZE], ccb_error *err)
{
	uint8_t pt[CCB_ECDH_POINT_LEN];
	ccb_err rc = ccb__ecdh_public_raw(k, pt, err);

	if (rc)
		return rc;
	/* EVP_EncodeBlock: standard alphabet, padding, no newlines, NUL. */
	if (EVP_EncodeBlock((unsigned char *)out, pt, CCB_ECDH_POINT_LEN) != CCB_ECDH_PUB_B64_LEN)
		return ccb_error_set(err, CCB_ERR_CRYPTO, "ECDH: base64 encoding failed");
	return CCB_OK;
}

static bool is_b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* Decode and check a peer's key; *pkey (may be NULL) receives it imported. */
static ccb_err decode_peer(const char *b64, uint8_t out[CCB_ECDH_POINT_LEN], EVP_PKEY **pkey_out,
			   ccb_error *err)
{
	uint8_t raw[CCB_ECDH_POINT_LEN + 1];
	size_t n = b64 ? strlen(b64) : 0;
	EVP_PKEY *pkey;
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
	pkey = import_public(raw);
	on_curve = pkey && public_ok(pkey);
	if (!on_curve) {
		EVP_PKEY_free(pkey);
		return ccb_error_set(err, CCB_ERR_PROTOCOL,
				     "peer ECDHPublicKey is not a point on P-256");
	}
	if (out)
		memcpy(out, raw, CCB_ECDH_POINT_LEN);
	if (pkey_out)
		*pkey_out = pkey;
	else
		EVP_PKEY_free(pkey);
	return CCB_OK;
}

ccb_err ccb__ecdh_decode_peer(const char *b64, uint8_t out[CCB_ECDH_POINT_LEN], ccb_error *err)
{
	return decode_peer(b64, out, NULL, err);
}

ccb_err ccb__ecdh_shared_secret(const ccb__ecdh *k, const char *peer_b64,
				uint8_t secret[CCB_ECDH_SECRET_LEN], ccb_error *err)
{
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t len = CCB_ECDH_SECRET_LEN;
	/* One import of the peer's point, checked once. */
	ccb_err rc = decode_peer(peer_b64, NULL, &peer, err);

	if (rc)
		return rc;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	if (!ctx || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer_ex(ctx, peer, 0) != 1 ||
	    EVP_PKEY_derive(ctx, secret, &len) != 1 || len != CCB_ECDH_SECRET_LEN) {
		OPENSSL_cleanse(secret, CCB_ECDH_SECRET_LEN);
		rc = ccb_error_set(err, CCB_ERR_CRYPTO, "ECDH: deriving the shared secret failed");
	}
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
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

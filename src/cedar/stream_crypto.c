/*
 * The session crypto of a stream: the AES-GCM key and the handshake
 * digests its first packets carry (cedar-stream.md §4), the legacy
 * BLOWFISH / 3DES key with its MD5 integrity mode (§5, §7, §8), secrets
 * (put_secret / get_secret) and the crypto queries. Message framing and
 * socket I/O are in stream.c; the struct is in stream_priv.h.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cedar/stream_priv.h"

#define fail ccb__stream_failf

static void drop_digests(ccb_stream *s)
{
	EVP_MD_CTX_free(s->md_send);
	EVP_MD_CTX_free(s->md_recv);
	s->md_send = s->md_recv = NULL;
}

static void drop_final(ccb_stream *s)
{
	if (s->final)
		OPENSSL_cleanse(s->final, 2 * DIGEST_LEN);
	free(s->final);
	s->final = NULL;
}

static void drop_gcm(ccb_stream *s)
{
	if (s->gcm)
		ccb_aesgcm_wipe(s->gcm);
	free(s->gcm);
	s->gcm = NULL;
}

static void drop_legacy(ccb_stream *s)
{
	if (s->leg)
		ccb_legacy_wipe(s->leg);
	free(s->leg);
	s->leg = NULL;
	s->legacy_on = s->md_on = false;
}

void ccb__stream_drop_crypto(ccb_stream *s)
{
	drop_digests(s);
	drop_final(s);
	drop_gcm(s);
	drop_legacy(s);
}

/* ---- handshake digests -------------------------------------------------- */

/* Past this much plaintext a direction stops being digested and its context
 * is dropped (H:reli_sock.cpp:1066-1072, 1296-1301): a handshake is never
 * that large, and bulk plaintext streams do not pay for hashing. */
#define DIGEST_LIMIT (1024 * 1024)

static void digest(EVP_MD_CTX **ctx, uint32_t *total, const uint8_t *hdr, const uint8_t *body,
		   size_t n)
{
	if (*total > DIGEST_LIMIT)
		return;
	*total += (uint32_t)(HDR_LEN + n); /* n <= CCB_MAX_PACKET_BODY */
	if (*total > DIGEST_LIMIT) {
		EVP_MD_CTX_free(*ctx);
		*ctx = NULL;
		return;
	}
	if (!*ctx) {
		*ctx = EVP_MD_CTX_new();
		if (!*ctx || EVP_DigestInit_ex(*ctx, EVP_sha256(), NULL) != 1) {
			EVP_MD_CTX_free(*ctx);
			*ctx = NULL;
			return;
		}
	}
	EVP_DigestUpdate(*ctx, hdr, HDR_LEN);
	EVP_DigestUpdate(*ctx, body, n);
}

void ccb__stream_digest_sent(ccb_stream *s, const uint8_t *hdr, const uint8_t *body, size_t n)
{
	digest(&s->md_send, &s->md_send_bytes, hdr, body, n);
}

void ccb__stream_digest_received(ccb_stream *s, const uint8_t *hdr, const uint8_t *body,
				 size_t n)
{
	digest(&s->md_recv, &s->md_recv_bytes, hdr, body, n);
}

static void finalize(EVP_MD_CTX *ctx, uint8_t out[DIGEST_LEN])
{
	unsigned int len = DIGEST_LEN;

	/* A direction with no plaintext traffic has no context: 32 zero bytes
	 * (H:reli_sock.cpp:1013-1016). */
	memset(out, 0, DIGEST_LEN);
	if (ctx)
		EVP_DigestFinal_ex(ctx, out, &len);
}

/* Both digests freeze at the first AES packet in either direction
 * (m_final_mds, H:reli_sock.cpp:1001-1043, 1231-1273). */
static ccb_err freeze_digests(ccb_stream *s)
{
	if (s->frozen)
		return CCB_OK;
	if (!(s->final = malloc(2 * DIGEST_LEN)))
		return fail(s, CCB_ERR_NOMEM, "handshake digests");
	finalize(s->md_send, s->final);
	finalize(s->md_recv, s->final + DIGEST_LEN);
	drop_digests(s);
	s->frozen = true;
	return CCB_OK;
}

/* The frozen digests go into the first packet each way only. */
static void final_used(ccb_stream *s)
{
	if (s->finished_send && s->finished_recv)
		drop_final(s);
}

void ccb_stream_reset_digests(ccb_stream *s)
{
	drop_digests(s);
	drop_final(s);
	s->md_send_bytes = s->md_recv_bytes = 0;
	s->frozen = false;
	s->finished_send = s->finished_recv = false;
}

void ccb__stream_stop_digests(ccb_stream *s)
{
	drop_digests(s);
	s->md_send_bytes = s->md_recv_bytes = DIGEST_LIMIT + 1;
}

/* ---- AES-GCM packets ---------------------------------------------------- */

ccb_err ccb__stream_seal(ccb_stream *s, uint8_t *pkt, const uint8_t *body, size_t n)
{
	uint8_t aad[2 * DIGEST_LEN + HDR_LEN];
	size_t aad_len = HDR_LEN;
	ccb_error e;
	ccb_err rc;

	if ((rc = freeze_digests(s)))
		return rc;
	if (!s->finished_send) {
		/* Sender's first packet: what it sent, what it received, header. */
		memcpy(aad, s->final, DIGEST_LEN);
		memcpy(aad + DIGEST_LEN, s->final + DIGEST_LEN, DIGEST_LEN);
		aad_len += 2 * DIGEST_LEN;
	}
	memcpy(aad + aad_len - HDR_LEN, pkt, HDR_LEN);
	if (ccb_aesgcm_seal(s->gcm, aad, aad_len, body, n, pkt + HDR_LEN, &e))
		return fail(s, e.code, "%s", e.detail);
	s->finished_send = true;
	final_used(s);
	return CCB_OK;
}

ccb_err ccb__stream_open(ccb_stream *s, const uint8_t hdr[HDR_LEN], const uint8_t *ct,
			 size_t len, uint8_t *out, size_t *plen)
{
	uint8_t aad[2 * DIGEST_LEN + HDR_LEN];
	size_t aad_len = HDR_LEN;
	ccb_error e;
	ccb_err rc;

	if ((rc = freeze_digests(s)))
		return rc;
	if (!s->finished_recv) {
		/* What flowed from the sender to us comes first. */
		memcpy(aad, s->final + DIGEST_LEN, DIGEST_LEN);
		memcpy(aad + DIGEST_LEN, s->final, DIGEST_LEN);
		aad_len += 2 * DIGEST_LEN;
	}
	memcpy(aad + aad_len - HDR_LEN, hdr, HDR_LEN);
	if (ccb_aesgcm_open(s->gcm, aad, aad_len, ct, len, out, plen, &e))
		return fail(s, e.code, "%s", e.detail);
	s->finished_recv = true;
	final_used(s);
	return CCB_OK;
}

/* ---- legacy cipher ------------------------------------------------------ */

/* A legacy cipher restarts at every end of message, sent or read, in both
 * directions (ReliSock::end_of_message_internal -> resetCrypto,
 * H:reli_sock.cpp:575-577, H:sock.cpp:2775-2783, H:condor_crypt.cpp:103-147). */
void ccb__stream_legacy_restart(ccb_stream *s)
{
	ccb_error e;

	if (s->leg && ccb_legacy_reset(s->leg, &e))
		fail(s, e.code, "%s", e.detail);
}

/* Cursor hook: decipher n bytes of the loaded message at `off` (a secret
 * read while crypto mode is off, classad-wire.md §6). */
ccb_err ccb__stream_decipher_secret(void *ctx, size_t off, size_t n, ccb_error *err)
{
	ccb_stream *s = ctx;

	if (off > s->in.len || n > s->in.len - off)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "secret runs past the message");
	return ccb_legacy_decrypt(s->leg, s->in.data + off, n, err);
}

/* ---- secrets ------------------------------------------------------------ */

bool ccb__stream_secrets_enciphered(const ccb_stream *s)
{
	return s->leg && !s->legacy_on;
}

ccb_err ccb__stream_encipher_tail(ccb_stream *s, size_t from)
{
	ccb_error e;

	if (!ccb__stream_secrets_enciphered(s) || from > s->out.len)
		return CCB_OK;
	if (ccb_legacy_encrypt(s->leg, s->out.data + from, s->out.len - from, &e))
		return fail(s, e.code, "%s", e.detail);
	return CCB_OK;
}

/* Stream::put_secret (H:stream.cpp:685-697, 1277-1301): crypto mode on
 * around the string when a legacy key is installed but off; otherwise a
 * plain put. */
ccb_err ccb_stream_put_secret(ccb_stream *s, const char *str)
{
	size_t from = s->out.len;
	bool on = ccb__stream_secrets_enciphered(s);
	ccb_err rc;

	if (str && (uint8_t)str[0] == CCB_NULL_STRING_MARKER)
		return fail(s, CCB_ERR_INVALID_ARG,
			    "a string starting with byte 0xAD cannot be sent (NULL marker)");
	if (s->broken)
		return s->code ? s->code : CCB_ERR_STATE;
	if (!ccb_enc_string(&s->out, on || ccb_stream_crypto_on(s), str))
		return fail(s, CCB_ERR_NOMEM, "growing outbound message");
	rc = ccb__stream_encipher_tail(s, from);
	return rc;
}

/* The secret's bytes are deciphered by the cursor's hook
 * (ccb__stream_decipher_secret) when crypto mode is off. */
ccb_err ccb_stream_get_secret(ccb_stream *s, char **out)
{
	ccb_cursor *c;
	ccb_error e;

	*out = NULL;
	if (!(c = ccb__stream_in(s)))
		return s->code;
	if (ccb_dec_secret(c, out, &e))
		return ccb__stream_fail(s, &e);
	return CCB_OK;
}

/* ---- keys and queries --------------------------------------------------- */

ccb_err ccb__stream_set_aes_key_iv(ccb_stream *s, const uint8_t key[32], const uint8_t iv[16])
{
	ccb_error e;

	if (s->out.len || s->loaded)
		return fail(s, CCB_ERR_STATE, "key installed in the middle of a message");
	if (!s->gcm && !(s->gcm = calloc(1, sizeof *s->gcm)))
		return fail(s, CCB_ERR_NOMEM, "AES-GCM state");
	if (ccb_aesgcm_init(s->gcm, key, iv, &e)) {
		drop_gcm(s);
		return fail(s, e.code, "%s", e.detail);
	}
	/* An AES key replaces a legacy one and turns MD mode off
	 * (H:sock.cpp:2806-2810, 2825-2833). */
	drop_legacy(s);
	return CCB_OK;
}

ccb_err ccb_stream_set_aes_key(ccb_stream *s, const uint8_t key[CCB_AES_KEY_LEN])
{
	return ccb__stream_set_aes_key_iv(s, key, NULL);
}

bool ccb_stream_crypto_on(const ccb_stream *s)
{
	return s->gcm || s->legacy_on;
}

ccb_err ccb__stream_set_legacy_key(ccb_stream *s, int method, const uint8_t *key, bool encrypt,
				   bool integrity)
{
	ccb_error e;

	if (s->out.len || s->loaded)
		return fail(s, CCB_ERR_STATE, "key installed in the middle of a message");
	if (s->gcm)
		return fail(s, CCB_ERR_STATE, "an AES key is already installed");
	if (s->leg)
		drop_legacy(s);
	if (!(s->leg = calloc(1, sizeof *s->leg)))
		return fail(s, CCB_ERR_NOMEM, "legacy cipher state");
	if (ccb_legacy_init(s->leg, method, key, &e)) {
		drop_legacy(s);
		return fail(s, e.code, "%s", e.detail);
	}
	s->legacy_on = encrypt;
	s->md_on = integrity;
	return CCB_OK;
}

int ccb_stream_crypto_method(const ccb_stream *s)
{
	return s->gcm ? 3 : s->leg ? s->leg->method : 0;
}

bool ccb_stream_integrity_on(const ccb_stream *s)
{
	return s->gcm || s->md_on;
}

/*
 * Session keys on the stream as HTCondor installs them, the crypto methods
 * this process can run, and HTCondor's UID_DOMAIN default
 * (security-handshake.md §8, cedar-stream.md §5-§8).
 */
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cedar/legacy.h"
#include "cedar/stream_internal.h"
#include "security/policy.h"
#include "security/session_crypto.h"

static ccb_err stream_fail(ccb_stream *s, ccb_error *err, const char *step)
{
	const ccb_error *e = ccb_stream_error(s);
	return ccb_error_set(err, e->code, "%s: %s", step, e->detail);
}

/*
 * The crypto methods of `list` this process can run, canonical names in
 * the configured order (AES, BLOWFISH, 3DES; TRIPLEDES is 3DES). BLOWFISH
 * is left out, saying why, when OpenSSL's legacy provider is missing.
 */
void ccb__sec_usable_crypto(const char *list, char *out, size_t size)
{
	const char *p = list, *item;
	size_t len, used = 0;

	out[0] = '\0';
	while ((item = ccb__sec_list_next(&p, &len))) {
		char name[32], why[256];
		int m;
		if (len >= sizeof name)
			continue;
		memcpy(name, item, len);
		name[len] = '\0';
		m = ccb__sec_crypto_parse(name);
		if (m == CCB_SEC_CRYPTO_NONE || strstr(out, ccb__sec_crypto_name(m)))
			continue;
		if (m != CCB_SEC_CRYPTO_AES && !ccb_legacy_available(m, why, sizeof why)) {
			/* A warning the first time, then debug lines. */
			static atomic_bool warned;
			ccb_log_level level = atomic_exchange(&warned, true) ? CCB_LOG_DEBUG
									    : CCB_LOG_WARNING;
			CCB_LOG(level, "security: %s is configured but left out: %s", name, why);
			continue;
		}
		used += (size_t)snprintf(out + used, used < size ? size - used : 0, "%s%s",
					 used ? "," : "", ccb__sec_crypto_name(m));
	}
	if (used >= size)
		out[0] = '\0';
}

/* HTCondor's UID_DOMAIN default is $(FULL_HOSTNAME): the canonical name of
 * this host (param_info.in; my_full_hostname). Looked up once. */
static pthread_once_t full_host_once = PTHREAD_ONCE_INIT;
static char full_host[256];

static void find_full_host(void)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_flags = AI_CANONNAME}, *ai = NULL;
	char host[256] = "localhost";

	gethostname(host, sizeof host - 1);
	snprintf(full_host, sizeof full_host, "%s", host);
	if (!strchr(host, '.') && getaddrinfo(host, NULL, &hints, &ai) == 0 && ai &&
	    ai->ai_canonname && *ai->ai_canonname)
		snprintf(full_host, sizeof full_host, "%s", ai->ai_canonname);
	if (ai)
		freeaddrinfo(ai);
}

const char *ccb__sec_uid_domain(const char *configured)
{
	if (configured && *configured)
		return configured;
	pthread_once(&full_host_once, find_full_host);
	return full_host;
}

/*
 * Put the session key on the stream as HTCondor does once a session is
 * settled (client: condor_secman.cpp:2361-2442; server:
 * daemon_command.cpp:1343-1397; spec cedar-stream.md §5-§8): an AES key
 * always encrypts (Sock::set_crypto_key ORs "key is AES" into the enable
 * flag); a BLOWFISH/3DES key encrypts only with Encryption YES, else it only
 * enciphers secrets, and adds the MD5 header with Integrity YES; no key
 * (or no method) leaves the stream in plaintext, which is allowed only
 * when neither was negotiated.
 */
ccb_err ccb__sec_install_key(ccb_stream *s, const uint8_t *key, size_t key_len, int crypto,
				   bool encrypt, bool integrity, ccb_error *err)
{
	if (!key || crypto == CCB_SEC_CRYPTO_NONE) {
		if (encrypt || integrity)
			return ccb_error_set(err, CCB_ERR_UNSUPPORTED,
					     "%s negotiated but %s", encrypt ? "encryption" : "integrity",
					     key ? "no crypto method was agreed (CryptoMethods empty)"
						 : "there is no session key (no ECDH key and none sent)");
		return CCB_OK;
	}
	if (crypto == CCB_SEC_CRYPTO_AES) {
		if (key_len != CCB_AES_KEY_LEN)
			return ccb_error_set(err, CCB_ERR_PROTOCOL, "AES session key of %zu bytes",
					     key_len);
		if (ccb_stream_set_aes_key(s, key))
			return stream_fail(s, err, "install AES session key");
		return CCB_OK;
	}
	if (key_len != CCB_LEGACY_KEY_LEN)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "%s session key of %zu bytes (want %d)",
				     ccb__sec_crypto_name(crypto), key_len, CCB_LEGACY_KEY_LEN);
	if (ccb__stream_set_legacy_key(s, crypto, key, encrypt, integrity))
		return stream_fail(s, err, "install session key");
	return CCB_OK;
}

/* What the stream now does, for ccb_sec_info. */
void ccb__sec_crypto_info(const ccb_stream *s, ccb_sec_info *info)
{
	info->encrypted = ccb_stream_crypto_on(s);
	info->integrity = ccb_stream_integrity_on(s);
	snprintf(info->crypto, sizeof info->crypto, "%s",
		 ccb__sec_crypto_name(ccb_stream_crypto_method(s)));
}

/* Encryption / Integrity of a cached session's policy; a session cached
 * without them (AES) had both. */
bool ccb__sec_policy_yes(const ccb_classad *pol, const char *attr)
{
	ccb__sec_action a = pol ? ccb__sec_lookup_action(pol, attr) : CCB_SEC_ACT_UNDEFINED;
	return a == CCB_SEC_ACT_UNDEFINED || a == CCB_SEC_ACT_YES;
}

const char *ccb_sec_info_encryption(const ccb_sec_info *info)
{
	bool aes = strcmp(info->crypto, "AES") == 0, bf = strcmp(info->crypto, "BLOWFISH") == 0,
	     des = strcmp(info->crypto, "3DES") == 0;
	if (info->encrypted)
		return aes ? "AES-GCM" : bf ? "BLOWFISH" : des ? "3DES" : "on";
	return bf ? "none (secrets under BLOWFISH)" : des ? "none (secrets under 3DES)" : "none";
}

const char *ccb_sec_info_integrity(const ccb_sec_info *info)
{
	if (!info->integrity)
		return "none";
	return strcmp(info->crypto, "AES") == 0 ? "AES-GCM" : "MD5";
}

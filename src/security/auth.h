/*
 * The authentication sub-protocol of DC_AUTHENTICATE (security-handshake.md
 * §6): the method negotiation loop, the per-method exchanges, and the hasKey
 * message that follows a successful method. Internal.
 *
 * Included by: src/security (the handshake and every method) and
 * test/security. Not by the layers above.
 */
#ifndef CCB_SECURITY_AUTH_H
#define CCB_SECURITY_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "ccb/stream.h"
#include "util/util.h"

/* Method bits on the wire (H:src/condor_includes/condor_auth.h:30-43). */
enum {
	CCB_AUTH_CLAIMTOBE = 2,
	CCB_AUTH_FS = 4,
	CCB_AUTH_FS_REMOTE = 8,
	CCB_AUTH_ANONYMOUS = 128,
	CCB_AUTH_SSL = 256,
	CCB_AUTH_TOKEN = 2048,
	CCB_AUTH_SCITOKENS = 4096,
};

#define CCB_AUTH_NAME_MAX 256

/* What a method needs from the configuration and the handshake so far.
 * Every field may be NULL/0; a method that needs a missing one fails with
 * CCB_ERR_AUTH (a method failure: the loop tries the next method). */
typedef struct ccb__auth_params {
	const char *uid_domain;      /* domain for identities without one (UID_DOMAIN) */
	const char *claimtobe_user;  /* SEC_CLAIMTOBE_USER; NULL: the effective user */
	bool claimtobe_no_domain;    /* SEC_CLAIMTOBE_INCLUDE_DOMAIN = false */

	/* TOKEN (§7.4) */
	const char *token;           /* a literal token to present (client) */
	const char *token_file;      /* SEC_TOKEN_FILE-like: a file of tokens (client) */
	const char *token_directory; /* SEC_TOKEN_DIRECTORY (client) */
	const char *subsystem;       /* for <SUBSYS>_auto_generated_token (client) */
	const char *server_trust_domain; /* TrustDomain of the RESPONSE (client) */
	const char *server_issuer_keys;  /* IssuerKeys of the RESPONSE (client) */
	const char *password_directory;  /* SEC_PASSWORD_DIRECTORY (server) */
	const char *pool_signing_key_file; /* SEC_TOKEN_POOL_SIGNING_KEY_FILE (server) */
	const char *trust_domain;    /* our TRUST_DOMAIN (server: tokens' iss) */
	unsigned peer_version;       /* peer's RemoteVersion as CCB_VERSION_NUM, 0 unknown */
	int64_t token_max_age;       /* SEC_TOKEN_MAX_AGE, <= 0 none (server) */

	/* FS (§7.3) */
	const char *fs_local_dir;    /* FS_LOCAL_DIR; NULL: /tmp (server) */
	bool fs_no_channel_binding;  /* SEC_FS_ENFORCE_CHANNEL_BINDING = false (client) */
	const char *dialed_shared_port_id; /* sock= of the address dialed (client) */

	/* SSL (§7.5) */
	const char *ssl_server_certfile; /* AUTH_SSL_SERVER_CERTFILE */
	const char *ssl_server_keyfile;  /* AUTH_SSL_SERVER_KEYFILE */
	const char *ssl_client_certfile; /* AUTH_SSL_CLIENT_CERTFILE (optional) */
	const char *ssl_client_keyfile;  /* AUTH_SSL_CLIENT_KEYFILE */
	const char *ssl_ca_file;         /* AUTH_SSL_{CLIENT,SERVER}_CAFILE */
	const char *ssl_ca_dir;          /* AUTH_SSL_{CLIENT,SERVER}_CADIR */
	const char *ssl_server_host;     /* name to check the server certificate against (client) */
	bool ssl_skip_host_check;        /* SSL_SKIP_HOST_CHECK (client) */
	bool ssl_require_client_cert;    /* AUTH_SSL_REQUIRE_CLIENT_CERTIFICATE (server) */
	/* Legacy key exchange (§6.2 hasKey = 1), server side: a session key to
	 * send after a successful method, for a client without ECDH. Sent only
	 * by methods whose wrap() is the identity (CLAIMTOBE, FS, FS_REMOTE,
	 * ANONYMOUS); otherwise hasKey = 0 and r->key_sent stays false. */
	const uint8_t *send_key;
	size_t send_key_len;
	int send_key_protocol;           /* CCB_SEC_CRYPTO_* */
} ccb__auth_params;

typedef struct ccb__auth_result {
	int method;                       /* bit of the method that succeeded */
	char method_name[16];
	char peer_user[CCB_AUTH_NAME_MAX]; /* server: the client's identity */
	/* TOKEN, server side: claims of the token used (AuthToken* attributes,
	 * security-handshake.md §9.3) and its scopes (LimitAuthorization). */
	char token_id[128];
	char token_issuer[256];
	char token_subject[256];
	char token_scopes[512];
	/* Legacy key exchange: server side, the key went out (hasKey = 1);
	 * client side, the server sent this key. */
	bool key_sent;
	bool has_key;
	uint8_t key[32];
	size_t key_len;
	int key_protocol;
	/* Server side: why each method that was tried here failed, for the
	 * log and for the final error ("FS: no UID_DOMAIN configured; ..."). */
	char failures[512];
} ccb__auth_result;

/* The signature every method's client and server side has. It runs the
 * method's own messages on `s` (plaintext, before the key) and returns
 * CCB_OK, CCB_ERR_AUTH for a refusal that leaves the stream usable (the loop
 * goes on), or another code when the stream is broken. The server side sets
 * r->peer_user. Declared for each method below. */
typedef ccb_err (*ccb__auth_method_fn)(ccb_stream *s, const ccb__auth_params *p,
				       ccb__auth_result *r, ccb_error *err);

ccb_err ccb__auth_token_client(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *r,
			       ccb_error *err);
ccb_err ccb__auth_token_server(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *r,
			       ccb_error *err);
ccb_err ccb__auth_fs_client(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *r,
			    ccb_error *err);
ccb_err ccb__auth_fs_server(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *r,
			    ccb_error *err);
ccb_err ccb__auth_ssl_client(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *r,
			     ccb_error *err);
ccb_err ccb__auth_ssl_server(ccb_stream *s, const ccb__auth_params *p, ccb__auth_result *r,
			     ccb_error *err);

/* Method names and bits: ccb__sec_method_bit() / ccb__sec_method_name()
 * in policy.h. */
/* Whether libccb implements the client (or server) side of a method. */
bool ccb__auth_method_supported(int bit, bool server);

/*
 * Run the client side: offer the methods of `methods` (a comma/space list,
 * server-reconciled: AuthMethodsList of the RESPONSE), retrying with the
 * rest after a method fails, then read hasKey. CCB_ERR_AUTH when no method
 * succeeds.
 */
ccb_err ccb__auth_client(ccb_stream *s, const char *methods, const ccb__auth_params *p,
			 ccb__auth_result *out, ccb_error *err);

/*
 * Run the server side with `methods` as its preference list; after success
 * send hasKey = 0 (the key comes from ECDH). CCB_ERR_AUTH when the client
 * gives up or no offered method is acceptable.
 */
ccb_err ccb__auth_server(ccb_stream *s, const char *methods, const ccb__auth_params *p,
			 ccb__auth_result *out, ccb_error *err);

#endif

/*
 * libccb — HTCondor's security handshake (DC_AUTHENTICATE) on a CEDAR stream.
 *
 * Client: ccb_sec_client_start() runs a new-session handshake for a command
 * on a connected stream: policy negotiation, authentication when it is
 * negotiated, ECDH P-256 key agreement and the session key installed as
 * negotiated (see Crypto below), and the server's POST-AUTH verdict. On
 * success the stream is ready for the command's payload.
 *
 * Server: ccb_sec_server_accept() reads the first message of an inbound
 * connection. A raw command (no handshake, e.g. CCB_REVERSE_CONNECT) is
 * returned as is with the payload still unread; DC_AUTHENTICATE is served
 * (policy, authentication, key, authorization, POST-AUTH) and the command it
 * carries is returned, its payload to follow on the stream with the session
 * key installed as negotiated.
 * DC_SEC_QUERY (what condor_ping sends) is answered completely.
 *
 * Methods in this release: CLAIMTOBE, FS, TOKEN (IDTOKENS) and SSL, both
 * sides. FS proves the effective user of this process (no privilege switch). A
 * token's scopes (condor:/READ ...) limit what its session is authorized for.
 * Crypto: AES-256-GCM, and HTCondor's legacy BLOWFISH and 3DES (64-bit
 * CFB; BLOWFISH needs OpenSSL's legacy provider), chosen from
 * SEC_*_CRYPTO_METHODS. As in HTCondor an AES key always encrypts; a legacy
 * key encrypts only when Encryption is negotiated (otherwise only secrets
 * such as ClaimId are enciphered) and adds an MD5 packet header when
 * Integrity is. A client that sends no ECDH key (legacy key exchange) gets
 * a random key after CLAIMTOBE/FS authentication, or none (plaintext) when
 * nothing is negotiated.
 * Sessions: a server given a ccb_sec_sessions store keeps every session it
 * negotiates (for SessionDuration + 20 s, lease SessionLease + 20 s, as
 * HTCondor) and lets clients resume them; an
 * unknown or expired session is answered with SID_NOT_FOUND. A client
 * given a store (ccb_sec_client_config.sessions) keeps the sessions it
 * negotiates for every command the server lists in ValidCommands, and
 * resumes one for the next such command to the same address (RESUME,
 * no re-authentication); a refused resumption forgets the session and
 * returns CCB_ERR_SESSION_REFUSED: reconnect and call again to negotiate
 * anew, as HTCondor's client does.
 *
 * Thread safety: the config structs are read-only during a call and may be
 * shared between threads; each stream is used by one thread.
 *
 * Memory (as in every libccb header, see ccb/error.h): a returned `const char *`
 * is borrowed, valid until its owner is freed or changed; a returned `char *`
 * or `char **out` is the caller's, released with ccb_free().
 */
#ifndef CCB_SECURITY_H
#define CCB_SECURITY_H

#include "ccb/export.h"

#include <stdbool.h>

#include "ccb/error.h"
#include "ccb/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/** SEC_*_AUTHENTICATION / _ENCRYPTION / _INTEGRITY values. */
typedef enum ccb_sec_level {
	CCB_SEC_LEVEL_DEFAULT = 0, /**< HTCondor's default for that setting */
	CCB_SEC_LEVEL_NEVER,
	CCB_SEC_LEVEL_OPTIONAL,
	CCB_SEC_LEVEL_PREFERRED,
	CCB_SEC_LEVEL_REQUIRED,
} ccb_sec_level;

/** Authorization levels (HTCondor's DCpermission). */
typedef enum ccb_perm {
	CCB_PERM_ALLOW = 0,
	CCB_PERM_READ,
	CCB_PERM_WRITE,
	CCB_PERM_ADMINISTRATOR,
	CCB_PERM_DAEMON,
	CCB_PERM_COUNT,
} ccb_perm;

/** HTCondor's name of a level ("READ"). */
CCB_API const char *ccb_perm_name(ccb_perm perm);

/** Identity given to a peer that did not authenticate. */
#define CCB_UNAUTHENTICATED_USER "unauthenticated@unmapped"

/** Client settings (HTCondor's SEC_CLIENT_* knobs). Zero means default. */
typedef struct ccb_sec_client_config {
	/** Default OPTIONAL, HTCondor 25's SEC_CLIENT_AUTHENTICATION
	 * (security:recommended). Against a server's OPTIONAL (its READ
	 * default) nothing authenticates and the peer is
	 * CCB_UNAUTHENTICATED_USER, as with HTCondor's tools; against its
	 * REQUIRED (every other level) a method runs. PREFERRED makes this
	 * client authenticate wherever the server allows it. */
	ccb_sec_level authentication;
	/** Default REQUIRED (security:recommended). */
	ccb_sec_level encryption;
	/** Default REQUIRED (security:recommended). */
	ccb_sec_level integrity;
	/** SEC_CLIENT_AUTHENTICATION_METHODS; NULL: "FS,TOKEN,SSL" (only the
	 * methods this release implements are offered). */
	const char *auth_methods;
	/** SEC_CLIENT_CRYPTO_METHODS in order of preference (AES, BLOWFISH,
	 * 3DES; TRIPLEDES = 3DES); NULL: "AES,BLOWFISH,3DES". BLOWFISH is
	 * left out when OpenSSL's legacy provider is missing. */
	const char *crypto_methods;
	const char *trust_domain;   /**< TRUST_DOMAIN, sent when methods are offered */
	/** UID_DOMAIN, domain of a CLAIMTOBE claim; NULL: this host's full
	 * name, as HTCondor's $(FULL_HOSTNAME) default. */
	const char *uid_domain;
	const char *claimtobe_user; /**< SEC_CLAIMTOBE_USER; NULL: effective user */
	const char *subsystem;      /**< "TOOL" by default */
	/** SEC_CLIENT_SESSION_DURATION in seconds; 0: 60 (a tool's default). */
	int session_duration;
	/** TOKEN: a token to present (takes precedence), or a file of tokens
	 * (one per line), or SEC_TOKEN_DIRECTORY; the first token the server's
	 * IssuerKeys and TrustDomain accept is used. */
	const char *token;
	const char *token_file;
	const char *token_directory;
	/** SSL: AUTH_SSL_CLIENT_CAFILE / _CADIR (the system CAs are also
	 * trusted), an optional client certificate and key, and the name the
	 * server certificate must carry — HTCondor uses the alias= of the
	 * address dialed, else its host; without one (and without
	 * ssl_skip_host_check, SSL_SKIP_HOST_CHECK) SSL fails. */
	const char *ssl_ca_file;
	const char *ssl_ca_dir;
	const char *ssl_certfile;
	const char *ssl_keyfile;
	const char *ssl_server_host;
	bool ssl_skip_host_check;
	/** Sessions to keep and resume, keyed by the connect_sinful given to
	 * ccb_sec_client_start() and the command; NULL: every call negotiates
	 * a new session. One store may be shared by many threads. */
	struct ccb_sec_sessions *sessions;
} ccb_sec_client_config;

/** What a handshake established. */
typedef struct ccb_sec_info {
	bool authenticated;     /**< a method succeeded */
	char method[16];        /**< its name, "" if none */
	char user[256];         /**< identity: the client as the server mapped it */
	bool encrypted;         /**< every byte enciphered (AES-GCM, or a legacy
				     cipher with Encryption negotiated) */
	bool integrity;         /**< packets integrity-checked (AES-GCM, or the
				     legacy MD5 header with Integrity negotiated) */
	char crypto[16];        /**< the session key's method: "AES",
				     "BLOWFISH", "3DES", "" for no key. A legacy
				     key with encryption off still enciphers
				     secrets (ClaimId). */
	char peer_version[128]; /**< the peer's $CondorVersion$ string */
	char session_id[128];   /**< the server's session id (client side) */
	bool resumed;           /**< a cached session was resumed (client side) */
} ccb_sec_info;

/**
 * How a session protects its bytes, as a label for people (the words
 * condor_ping's table uses): ccb_sec_info_encryption() gives "AES-GCM",
 * "BLOWFISH", "3DES", "none (secrets under BLOWFISH)" / "none (secrets
 * under 3DES)" for a legacy key with encryption off, or "none";
 * ccb_sec_info_integrity() gives "AES-GCM", "MD5" (the legacy header) or
 * "none". The strings are static. Thread safety: pure functions.
 */
CCB_API const char *ccb_sec_info_encryption(const ccb_sec_info *info);
CCB_API const char *ccb_sec_info_integrity(const ccb_sec_info *info);

/**
 * Run the client side of DC_AUTHENTICATE for `command` on connected stream
 * `s`. `auth_command` is the command whose permission applies when
 * `command` is DC_AUTHENTICATE or DC_SEC_QUERY (0 otherwise). `connect_sinful`
 * (may be NULL) is the address dialed, sent as ConnectSinful. On success
 * the session key is installed as negotiated (info->crypto, ->encrypted,
 * ->integrity say how) and the stream is ready for the command's payload; for
 * DC_SEC_QUERY read the reply with ccb_sec_client_query_reply().
 * Errors: CCB_ERR_CLOSED (the server closed the connection; the detail
 * says after which step — a C++ server refusing a command or a policy
 * closes after the request without saying why), CCB_ERR_AUTH (an
 * authentication method ran and failed, or none was in common, while
 * authentication was required), CCB_ERR_NOT_AUTHORIZED (the server
 * answered DENIED; the detail names the user and how it authenticated, or
 * that no authentication was negotiated), CCB_ERR_UNSUPPORTED (the server
 * turned off what this client requires, or no crypto method in common),
 * CCB_ERR_SESSION_REFUSED, CCB_ERR_PROTOCOL, stream errors.
 */
CCB_API ccb_err ccb_sec_client_start(ccb_stream *s, const ccb_sec_client_config *cfg, int command,
			     int auth_command, const char *connect_sinful, ccb_sec_info *info,
			     ccb_error *err);

/** After ccb_sec_client_start() for DC_SEC_QUERY: read the server's
 * [AuthorizationSucceeded = bool] verdict into *authorized. */
CCB_API ccb_err ccb_sec_client_query_reply(ccb_stream *s, bool *authorized, ccb_error *err);

/** A thread-safe store of security sessions, for a server (sessions it
 * negotiated, to be resumed by clients) or a client (sessions to resume). */
typedef struct ccb_sec_sessions ccb_sec_sessions;

/** A store for at most `max_sessions` (0: 4096; the least recently used
 * one is dropped when full) in *out, freed with ccb_sec_sessions_free().
 * Errors: CCB_ERR_INVALID_ARG (NULL out), CCB_ERR_NOMEM (*out is then NULL). */
CCB_API ccb_err ccb_sec_sessions_new(size_t max_sessions, ccb_sec_sessions **out, ccb_error *err);
/** Free the store, wiping every key. NULL is allowed. */
CCB_API void ccb_sec_sessions_free(ccb_sec_sessions *s);
/** Sessions held (including expired ones not yet noticed). */
CCB_API size_t ccb_sec_sessions_count(ccb_sec_sessions *s);

/** Maps a command to its permission level; return -1 for an unknown
 * command (the server then closes, as HTCondor does). */
typedef int (*ccb_sec_command_perm_fn)(int command, void *user);

/** Server settings. Zero means default. */
typedef struct ccb_sec_server_config {
	/** SEC_<PERM>_AUTHENTICATION etc.; DEFAULT falls back to
	 * [CCB_PERM_ALLOW] (SEC_DEFAULT_*), whose DEFAULT is HTCondor 25's
	 * security:recommended: authentication REQUIRED (READ: OPTIONAL),
	 * encryption and integrity REQUIRED. So READ commands (CCB_REQUEST)
	 * from a default client are not authenticated: an ALLOW_READ that
	 * names users needs authentication[CCB_PERM_READ] REQUIRED here or
	 * PREFERRED in the client. */
	ccb_sec_level authentication[CCB_PERM_COUNT];
	ccb_sec_level encryption[CCB_PERM_COUNT];
	ccb_sec_level integrity[CCB_PERM_COUNT];
	/** SEC_<PERM>_AUTHENTICATION_METHODS; NULL falls back to [CCB_PERM_ALLOW],
	 * then "FS,TOKEN,SSL" (only implemented methods are used). */
	const char *auth_methods[CCB_PERM_COUNT];
	/** SEC_<PERM>_CRYPTO_METHODS; NULL falls back to [CCB_PERM_ALLOW],
	 * then "AES,BLOWFISH,3DES" (the server's order decides). */
	const char *crypto_methods[CCB_PERM_COUNT];
	/** ALLOW_<PERM> / DENY_<PERM>: comma/space lists of identity patterns
	 * (`user@domain`, `*` wildcards; an entry without '@' matches the peer's
	 * IP address). NULL ALLOW means "*" for READ and ALLOW, nobody else. */
	const char *allow[CCB_PERM_COUNT];
	const char *deny[CCB_PERM_COUNT];
	/** UID_DOMAIN for FS and CLAIMTOBE identities; NULL: this host's
	 * full name (HTCondor's default). */
	const char *uid_domain;
	const char *trust_domain; /**< TRUST_DOMAIN: tokens' issuer must match */
	/** TOKEN: SEC_PASSWORD_DIRECTORY (signing keys by name) and
	 * SEC_TOKEN_POOL_SIGNING_KEY_FILE (the POOL key). */
	const char *password_directory;
	const char *pool_signing_key_file;
	/** SEC_TOKEN_MAX_AGE in seconds; 0: no limit. */
	long token_max_age;
	/** SSL: AUTH_SSL_SERVER_CERTFILE / _KEYFILE (SSL is offered only with
	 * both), AUTH_SSL_SERVER_CAFILE / _CADIR for client certificates,
	 * AUTH_SSL_REQUIRE_CLIENT_CERTIFICATE. */
	const char *ssl_certfile;
	const char *ssl_keyfile;
	const char *ssl_ca_file;
	const char *ssl_ca_dir;
	bool ssl_require_client_cert;
	/** Sessions to keep and resume; NULL: none (resumption is refused). */
	ccb_sec_sessions *sessions;
	/** Required: the permission of each command served. */
	ccb_sec_command_perm_fn command_perm;
	void *user;
} ccb_sec_server_config;

/** What the server learnt about a command it accepted. */
typedef struct ccb_sec_command {
	int command;      /**< the command to run (the payload follows) */
	bool negotiated;  /**< false for a raw command without handshake */
	bool resumed;     /**< an existing session was resumed */
	ccb_perm perm;    /**< its permission level (raw commands: ALLOW) */
	char peer_ip[64];
	ccb_sec_info info;
} ccb_sec_command;

/**
 * Serve the start of an inbound connection (see the file comment). On
 * CCB_OK `cmd->command` is to be run by the caller with its payload still
 * to come; DC_SEC_QUERY has been answered already (cmd->command is 60040 and
 * the caller just closes). Errors: CCB_ERR_NOT_FOUND (unknown command),
 * CCB_ERR_UNSUPPORTED (the policies cannot be reconciled or no crypto
 * method in common), CCB_ERR_AUTH (a required authentication failed),
 * CCB_ERR_NOT_AUTHORIZED (DENIED was sent; the detail names the user and
 * its method, or says the peer is unauthenticated and why),
 * CCB_ERR_SESSION_REFUSED (resumption of an unknown session),
 * CCB_ERR_PROTOCOL, stream errors; in every error case the caller closes
 * the stream.
 */
CCB_API ccb_err ccb_sec_server_accept(ccb_stream *s, const ccb_sec_server_config *cfg,
			      ccb_sec_command *cmd, ccb_error *err);

/**
 * Whether `user` (or, for entries without '@', `peer_ip`) may use `perm`
 * under cfg's ALLOW/DENY lists, as HTCondor's IpVerify decides: a DENY_<perm>
 * match refuses, an ALLOW_<perm> match grants, and otherwise the level is
 * granted when a level implying it is (WRITE implies READ; ADMINISTRATOR
 * and DAEMON imply WRITE), so a DAEMON-authorized peer may also run READ
 * commands. Thread-safe.
 */
CCB_API bool ccb_sec_authorized(const ccb_sec_server_config *cfg, ccb_perm perm, const char *user,
			const char *peer_ip);

#ifdef __cplusplus
}
#endif
#endif

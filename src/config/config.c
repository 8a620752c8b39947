/* The JSON configuration file (include/ccb/config.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "ccb/config.h"
#include "util/util.h"

typedef enum { K_STRING, K_LEVEL, K_INT, K_BOOL } knob_type;

/* Every knob: name, type, default (as documented) and a one-line
 * description; `ccbctl config` prints this table and docs/config.md is made
 * from it. */
static const struct {
	const char *name;
	knob_type type;
	const char *dflt;
	const char *doc;
} knobs[] = {
	{"SEC_DEFAULT_AUTHENTICATION", K_LEVEL, "REQUIRED (READ: OPTIONAL)",
	 "Authentication for every level without its own SEC_<LEVEL>_AUTHENTICATION (security:recommended)."},
	{"SEC_DEFAULT_ENCRYPTION", K_LEVEL, "REQUIRED",
	 "Encryption for every level without its own setting."},
	{"SEC_DEFAULT_INTEGRITY", K_LEVEL, "REQUIRED",
	 "Integrity for every level without its own setting."},
	{"SEC_DEFAULT_AUTHENTICATION_METHODS", K_STRING, "FS,TOKEN,SSL",
	 "Methods offered and accepted, in order of preference (CLAIMTOBE, FS, TOKEN/IDTOKENS, SSL)."},
	{"SEC_DEFAULT_CRYPTO_METHODS", K_STRING, "AES,BLOWFISH,3DES",
	 "Crypto methods in order of preference: AES (AES-256-GCM), BLOWFISH, 3DES (alias TRIPLEDES); BLOWFISH is dropped when OpenSSL's legacy provider is missing."},
	{"SEC_CLIENT_AUTHENTICATION", K_LEVEL, "OPTIONAL",
	 "Authentication a client asks for (falls back to SEC_DEFAULT_AUTHENTICATION)."},
	{"SEC_CLIENT_ENCRYPTION", K_LEVEL, "REQUIRED",
	 "Encryption a client asks for."},
	{"SEC_CLIENT_INTEGRITY", K_LEVEL, "REQUIRED",
	 "Integrity a client asks for."},
	{"SEC_CLIENT_AUTHENTICATION_METHODS", K_STRING, "FS,TOKEN,SSL",
	 "Methods a client offers."},
	{"SEC_CLIENT_CRYPTO_METHODS", K_STRING, "SEC_DEFAULT_CRYPTO_METHODS",
	 "Crypto methods a client offers, in order of preference."},
	{"SEC_CLIENT_SESSION_DURATION", K_INT, "60",
	 "Seconds a client asks a session to last."},
	{"SEC_CLAIMTOBE_USER", K_STRING, "effective user",
	 "User name a CLAIMTOBE client claims."},
	{"SEC_TOKEN_DIRECTORY", K_STRING, "unset",
	 "Directory of IDTOKENS files a client presents (every line a token)."},
	{"SEC_PASSWORD_DIRECTORY", K_STRING, "unset",
	 "Directory of token signing keys by name (servers)."},
	{"SEC_TOKEN_POOL_SIGNING_KEY_FILE", K_STRING, "unset",
	 "The POOL signing key file (servers)."},
	{"AUTH_SSL_CLIENT_CAFILE", K_STRING, "system CAs",
	 "CA bundle a client trusts for SSL servers."},
	{"AUTH_SSL_CLIENT_CADIR", K_STRING, "system CAs",
	 "CA directory a client trusts for SSL servers."},
	{"AUTH_SSL_CLIENT_CERTFILE", K_STRING, "unset",
	 "Client certificate for SSL."},
	{"AUTH_SSL_CLIENT_KEYFILE", K_STRING, "unset",
	 "Client key for SSL."},
	{"SSL_SKIP_HOST_CHECK", K_BOOL, "false",
	 "Do not check the server certificate's name against the dialed host."},
	{"SEC_READ_AUTHENTICATION", K_LEVEL, "SEC_DEFAULT_AUTHENTICATION",
	 "Authentication for READ commands."},
	{"SEC_READ_ENCRYPTION", K_LEVEL, "SEC_DEFAULT_ENCRYPTION",
	 "Encryption for READ commands."},
	{"SEC_READ_INTEGRITY", K_LEVEL, "SEC_DEFAULT_INTEGRITY",
	 "Integrity for READ commands."},
	{"SEC_READ_AUTHENTICATION_METHODS", K_STRING, "SEC_DEFAULT_AUTHENTICATION_METHODS",
	 "Authentication methods for READ commands."},
	{"SEC_READ_CRYPTO_METHODS", K_STRING, "SEC_DEFAULT_CRYPTO_METHODS",
	 "Crypto methods for READ commands."},
	{"SEC_WRITE_AUTHENTICATION", K_LEVEL, "SEC_DEFAULT_AUTHENTICATION",
	 "Authentication for WRITE commands."},
	{"SEC_WRITE_ENCRYPTION", K_LEVEL, "SEC_DEFAULT_ENCRYPTION",
	 "Encryption for WRITE commands."},
	{"SEC_WRITE_INTEGRITY", K_LEVEL, "SEC_DEFAULT_INTEGRITY",
	 "Integrity for WRITE commands."},
	{"SEC_WRITE_AUTHENTICATION_METHODS", K_STRING, "SEC_DEFAULT_AUTHENTICATION_METHODS",
	 "Authentication methods for WRITE commands."},
	{"SEC_WRITE_CRYPTO_METHODS", K_STRING, "SEC_DEFAULT_CRYPTO_METHODS",
	 "Crypto methods for WRITE commands."},
	{"SEC_ADMINISTRATOR_AUTHENTICATION", K_LEVEL, "SEC_DEFAULT_AUTHENTICATION",
	 "Authentication for ADMINISTRATOR commands."},
	{"SEC_ADMINISTRATOR_ENCRYPTION", K_LEVEL, "SEC_DEFAULT_ENCRYPTION",
	 "Encryption for ADMINISTRATOR commands."},
	{"SEC_ADMINISTRATOR_INTEGRITY", K_LEVEL, "SEC_DEFAULT_INTEGRITY",
	 "Integrity for ADMINISTRATOR commands."},
	{"SEC_ADMINISTRATOR_AUTHENTICATION_METHODS", K_STRING, "SEC_DEFAULT_AUTHENTICATION_METHODS",
	 "Authentication methods for ADMINISTRATOR commands."},
	{"SEC_ADMINISTRATOR_CRYPTO_METHODS", K_STRING, "SEC_DEFAULT_CRYPTO_METHODS",
	 "Crypto methods for ADMINISTRATOR commands."},
	{"SEC_DAEMON_AUTHENTICATION", K_LEVEL, "SEC_DEFAULT_AUTHENTICATION",
	 "Authentication for DAEMON commands."},
	{"SEC_DAEMON_ENCRYPTION", K_LEVEL, "SEC_DEFAULT_ENCRYPTION",
	 "Encryption for DAEMON commands."},
	{"SEC_DAEMON_INTEGRITY", K_LEVEL, "SEC_DEFAULT_INTEGRITY",
	 "Integrity for DAEMON commands."},
	{"SEC_DAEMON_AUTHENTICATION_METHODS", K_STRING, "SEC_DEFAULT_AUTHENTICATION_METHODS",
	 "Authentication methods for DAEMON commands."},
	{"SEC_DAEMON_CRYPTO_METHODS", K_STRING, "SEC_DEFAULT_CRYPTO_METHODS",
	 "Crypto methods for DAEMON commands."},
	{"SEC_TOKEN_MAX_AGE", K_INT, "0 (no limit)",
	 "Oldest token (seconds since iat) a server accepts."},
	{"ALLOW_READ", K_STRING, "*",
	 "Identities and hosts allowed READ (CCB_REQUEST)."},
	{"ALLOW_WRITE", K_STRING, "nobody",
	 "Identities and hosts allowed WRITE."},
	{"ALLOW_ADMINISTRATOR", K_STRING, "nobody",
	 "Identities and hosts allowed ADMINISTRATOR."},
	{"ALLOW_DAEMON", K_STRING, "nobody",
	 "Identities and hosts allowed DAEMON (CCB_REGISTER)."},
	{"DENY_READ", K_STRING, "unset",
	 "Denied READ; DENY wins over ALLOW."},
	{"DENY_WRITE", K_STRING, "unset",
	 "Denied WRITE."},
	{"DENY_ADMINISTRATOR", K_STRING, "unset",
	 "Denied ADMINISTRATOR."},
	{"DENY_DAEMON", K_STRING, "unset",
	 "Denied DAEMON."},
	{"AUTH_SSL_SERVER_CERTFILE", K_STRING, "unset",
	 "Server certificate; SSL is offered only with it and its key."},
	{"AUTH_SSL_SERVER_KEYFILE", K_STRING, "unset",
	 "Server key."},
	{"AUTH_SSL_SERVER_CAFILE", K_STRING, "system CAs",
	 "CA bundle a server trusts for client certificates."},
	{"AUTH_SSL_SERVER_CADIR", K_STRING, "system CAs",
	 "CA directory a server trusts for client certificates."},
	{"AUTH_SSL_REQUIRE_CLIENT_CERTIFICATE", K_BOOL, "false",
	 "Servers require a client certificate."},
	{"TRUST_DOMAIN", K_STRING, "unset",
	 "Trust domain: the issuer of tokens minted and accepted."},
	{"UID_DOMAIN", K_STRING, "this host's full name",
	 "Domain of CLAIMTOBE and FS identities (user@UID_DOMAIN); HTCondor's default is $(FULL_HOSTNAME)."},
	{"CCB_ADDRESS", K_STRING, "unset",
	 "Listener: the brokers to register with, space or comma separated host:port or sinful strings."},
	{"CCB_HEARTBEAT_INTERVAL", K_INT, "300",
	 "Listener: seconds between ALIVE heartbeats (minimum 30, 0 = off)."},
	{"CCB_RECONNECT_TIME", K_INT, "60",
	 "Listener: seconds before re-registering with a lost broker (plus random jitter)."},
	{"CCB_TIMEOUT", K_INT, "300",
	 "Listener: deadline in seconds of registration connects and of reads on the registration socket (reverse connects: see CCB_LISTENER_CONNECT_TIMEOUT_MS)."},
	{"CCB_LISTENER_NAME", K_STRING, "LISTENER <its command address>",
	 "libccb: the Name a listener registers with."},
	{"CCB_CLIENT_STREAMING", K_BOOL, "true",
	 "Requester: allow streaming (proxy) mode."},
	{"CCB_PROXY_RETURN_ADDRESS", K_STRING, "unset",
	 "libccb: a private requester's own CCB sinful, sent as MyAddress in streaming mode."},
	{"CCB_DIAL_TIMEOUT", K_INT, "30",
	 "libccb: total seconds a dial may take."},
	{"CCB_DIAL_STAGGER_MS", K_INT, "250",
	 "libccb: milliseconds before the next broker is tried in parallel (negative: strictly one after another)."},
	{"TOOLS_ASSUME_FIREWALLS", K_BOOL, "false",
	 "Requester: do not listen for a reverse connection; ask for streaming with an empty MyAddress, as HTCondor tools do."},
	{"CCB_SERVER_LISTEN", K_STRING, "0.0.0.0:9618",
	 "libccb: broker listen addresses (space separated host:port, IPv6 as [addr]:port)."},
	{"CCB_SERVER_PUBLIC_ADDRESS", K_STRING, "first listen address (127.0.0.1 for a wildcard one)",
	 "libccb: the broker address advertised in CCB contacts."},
	{"CCB_RECONNECT_FILE", K_STRING, "unset (records in memory only)",
	 "Broker: file of reconnect records, so restarted brokers give listeners their old CCBIDs."},
	{"CCB_RECONNECT_ALLOWED_FROM_ANY_IP", K_BOOL, "false",
	 "Broker: accept a reconnect cookie from a different IP address."},
	{"CCB_SWEEP_INTERVAL", K_INT, "1200",
	 "Broker: seconds between sweeps of expired reconnect records."},
	{"CCB_SERVER_REQUEST_TIMEOUT", K_INT, "60",
	 "libccb: seconds a broker waits for a target's result before failing a request (0 = never, as HTCondor's collector)."},
	{"CCB_SERVER_STREAMING", K_BOOL, "true",
	 "Broker: relay streaming (proxy) requests."},
	{"CCB_SERVER_STREAMING_HANDSHAKE_TIMEOUT", K_INT, "300",
	 "Broker: seconds a streaming session may wait for its target (0 = never)."},
	{"CCB_SERVER_MAX_STREAMING_SESSIONS", K_INT, "0 (unlimited)",
	 "Broker: cap on relays, handshaking or relaying."},
	{"CCB_SERVER_MAX_STREAMING_HANDSHAKES", K_INT, "0 (unlimited)",
	 "Broker: cap on relays still waiting for their target."},
	{"CCB_SERVER_MAX_CONNECTIONS", K_INT, "open-file limit - 40",
	 "libccb: connections a broker holds before refusing new ones; 8 more are kept for status queries."},
	{"CCB_SERVER_MAX_MESSAGE", K_INT, "65536",
	 "libccb: largest CCB message a broker accepts, in bytes."},
	{"CCB_SERVER_HANDSHAKE_WORKERS", K_INT, "0 (one per CPU, 2 to 8)",
	 "libccb: threads running the CPU-bound steps of a broker's security handshakes (a handshake waiting for its peer holds none)."},
	{"CCB_SERVER_MAX_HANDSHAKES_PER_SOURCE", K_INT, "64",
	 "libccb: security handshakes one peer IP address may have in progress with a broker; further connections from it are closed (logged)."},
	{"CCB_SERVER_TARGET_IDLE_TIMEOUT", K_INT, "3600",
	 "libccb: seconds of silence after which a broker drops a registration (golang-ccb's TargetIdleTimeout; 0 = never)."},
	{"PRIVATE_NETWORK_NAME", K_STRING, "unset (ccbctl listen: a per-process name)",
	 "Name of the private network the process is on: written as PrivNet in a listener's sinful; a requester with the same name connects to such a sinful's host:port directly, without CCB."},
	{"CCB_LISTENER_COMMAND_ADDRESS", K_STRING, "an ephemeral port on the address that routes to the first broker",
	 "libccb: where a listener opens its own command socket (ip, ip:port or [v6]:port; the port in its sinful)."},
	{"CCB_SERVER_HANDSHAKE_TIMEOUT", K_INT, "20",
	 "libccb: seconds a peer has to finish its security handshake with a broker."},
	{"CCB_LISTENER_CONNECT_TIMEOUT_MS", K_INT, "5000",
	 "libccb: milliseconds a listener's reverse connect may take to connect to the requester (a black-holed address costs a socket this long, never a thread)."},
	{"CCB_LISTENER_HELLO_TIMEOUT_MS", K_INT, "3000",
	 "libccb: milliseconds a connected reverse connect may wait for a free handler and write its hello."},
	{"CCB_LISTENER_MAX_PENDING", K_INT, "4096",
	 "libccb: reverse connects a listener runs at once (connecting or waiting for a handler); beyond it a request is reported failed to the broker."},
	{"CCB_LISTENER_MAX_PENDING_PER_REQUESTER", K_INT, "16",
	 "libccb: pending reverse connects for one requester IP (as the broker stamped it on the request)."},
	{"CCB_SERVER_MAX_REQUESTS_PER_REQUESTER_TARGET", K_INT, "32",
	 "libccb: requests one requester IP may have pending at a broker for one CCBID; beyond it the request is refused at once."},
	{"CCB_SERVER_MAX_RECONNECT_RECORDS", K_INT, "100000",
	 "libccb: reconnect records a broker keeps (memory and file); beyond it the oldest of absent targets are dropped, with a warning."},
	/* Inside CCB (tunnels, ccb-protocol.md §9.2). */
	{"CCB_TUNNEL_REGISTRATION_TIMEOUT", K_INT, "300",
	 "Broker: seconds an inside CCB holds a registration reply while its tunnel is not up before hanging up on the registrant (0 = wait forever)."},
	/* Outbound proxy (CCB_PROXY_CONNECT), ccb-protocol.md §9.1, §13. */
	{"OUTBOUND_CCB_ADDRESS", K_STRING, "unset",
	 "Requester: brokers (space separated) asked with CCB_PROXY_CONNECT to dial every target for this process and relay; loopback, same-host and broker targets are dialed directly; no fall-back."},
	{"CCB_OUTBOUND_PROXY", K_BOOL, "false",
	 "Broker: serve CCB_PROXY_CONNECT (DAEMON authorization): dial a target on the requester's behalf and splice."},
	{"CCB_OUTBOUND_TARGET_ALLOWLIST", K_STRING, "*",
	 "Broker: CIDR, IP or host-glob entries an outbound proxy may dial (empty: nothing)."},
	{"CCB_OUTBOUND_TARGET_DENYLIST", K_STRING, "127.0.0.0/8 ::1 fe80::/10 169.254.0.0/16 localhost",
	 "Broker: entries an outbound proxy refuses even when allowed; host names are resolved and every address checked."},
	{"CCB_OUTBOUND_TTL", K_INT, "8",
	 "Requester: CCBTTL sent with CCB_PROXY_CONNECT; broker: its own hop budget (a request only lowers it)."},
	{"CCB_OUTBOUND_NEXT_HOP", K_STRING, "unset",
	 "Broker: the brokers this broker registers with as an inside CCB (CCB_ADDRESS syntax; its registrants then get nested contacts through them) and forwards CCB_PROXY_CONNECT to (CCBTTL decremented) instead of dialing; implies CCB_OUTBOUND_PROXY."},
};
#define N_KNOBS (sizeof knobs / sizeof knobs[0])

struct ccb_config {
	char *values[N_KNOBS]; /* text form, NULL if unset */
	char *env[N_KNOBS];    /* _CONDOR_<KNOB> overrides */
};

static int knob_index(const char *name)
{
	for (size_t i = 0; i < N_KNOBS; i++)
		if (!strcasecmp(name, knobs[i].name))
			return (int)i;
	return -1;
}

bool ccb_config_knob_known(const char *knob)
{
	return knob && knob_index(knob) >= 0;
}

/* A SEC_*_CRYPTO_METHODS list: names HTCondor knows (condor_secman.cpp
 * filterCryptoMethods / getCryptProtocolNameToEnum), any case; NULL if
 * fine, else the first unknown name (copied into bad). */
static const char *crypto_list_bad(const char *v, char *bad, size_t size)
{
	static const char *const known[] = {"AES", "BLOWFISH", "3DES", "TRIPLEDES"};
	const char *p = v;

	for (;;) {
		size_t n;
		bool ok = false;
		while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (!*p)
			return NULL;
		n = strcspn(p, ", \t\n\r");
		for (size_t i = 0; i < 4 && !ok; i++)
			ok = strlen(known[i]) == n && !strncasecmp(p, known[i], n);
		if (!ok) {
			snprintf(bad, size, "%.*s", (int)n, p);
			return bad;
		}
		p += n;
	}
}

static bool level_ok(const char *v)
{
	/* First letter, as HTCondor parses it (condor_secman.cpp:142-164). */
	return v && strchr("RrYyTtPpOoFfNn", v[0]) && v[0];
}

size_t ccb_config_knob_count(void)
{
	return N_KNOBS;
}

bool ccb_config_knob_info(size_t i, ccb_config_knob *out)
{
	static const char *const type_names[] = {"string", "level", "integer", "boolean"};

	if (i >= N_KNOBS || !out)
		return false;
	out->name = knobs[i].name;
	out->type = type_names[knobs[i].type];
	out->dflt = knobs[i].dflt;
	out->doc = knobs[i].doc;
	return true;
}

/* "path:line" of the first `"key" :` in the file text, for error messages
 * (jansson keeps no positions once parsed). */
static void where(char *out, size_t size, const char *path, const char *text, const char *key)
{
	size_t klen = strlen(key);
	int line = 1;

	for (const char *p = text; p && *p; p++) {
		if (*p == '\n')
			line++;
		else if (*p == '"' && !strncmp(p + 1, key, klen) && p[1 + klen] == '"') {
			const char *q = p + 2 + klen;
			while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')
				q++;
			if (*q == ':') {
				snprintf(out, size, "%s:%d", path, line);
				return;
			}
		}
	}
	snprintf(out, size, "%s", path);
}

static ccb_err set_value(ccb_config *c, const char *file, const char *text, const char *key,
			 json_t *v, ccb_error *err)
{
	int i = knob_index(key);
	char text_v[64], path[600];
	const char *s;

	where(path, sizeof path, file, text, key);
	if (i < 0)
		return ccb_error_set(err, CCB_ERR_CONFIG, "%s: unknown knob \"%s\"", path, key);
	switch (knobs[i].type) {
	case K_STRING:
	case K_LEVEL:
		if (!json_is_string(v))
			return ccb_error_set(err, CCB_ERR_CONFIG, "%s: %s must be a string", path, key);
		s = json_string_value(v);
		if (knobs[i].type == K_LEVEL && !level_ok(s))
			return ccb_error_set(err, CCB_ERR_CONFIG,
					     "%s: %s must be REQUIRED, PREFERRED, OPTIONAL or NEVER, not \"%s\"",
					     path, key, s);
		{
			size_t kl = strlen(knobs[i].name);
			char bad[64];
			if (kl > 15 && !strcmp(knobs[i].name + kl - 15, "_CRYPTO_METHODS") &&
			    crypto_list_bad(s, bad, sizeof bad))
				return ccb_error_set(err, CCB_ERR_CONFIG,
						     "%s: %s: unknown crypto method \"%s\" (known: AES, "
						     "BLOWFISH, 3DES, TRIPLEDES)", path, key, bad);
		}
		break;
	case K_INT:
		if (!json_is_integer(v))
			return ccb_error_set(err, CCB_ERR_CONFIG, "%s: %s must be an integer", path, key);
		snprintf(text_v, sizeof text_v, "%lld", (long long)json_integer_value(v));
		s = text_v;
		break;
	case K_BOOL:
	default:
		if (!json_is_boolean(v))
			return ccb_error_set(err, CCB_ERR_CONFIG, "%s: %s must be true or false", path, key);
		s = json_is_true(v) ? "true" : "false";
		break;
	}
	free(c->values[i]);
	c->values[i] = ccb_strdup(s);
	return c->values[i] ? CCB_OK : ccb_error_set(err, CCB_ERR_NOMEM, "config");
}

/* A whole file as a NUL-terminated string (at most 16 MiB), NULL + errno. */
static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *n;
			cap = cap ? cap * 2 : 8192;
			if (cap > (16u << 20) || !(n = realloc(buf, cap))) {
				free(buf);
				fclose(f);
				errno = cap > (16u << 20) ? EFBIG : ENOMEM;
				return NULL;
			}
			buf = n;
		}
		size_t r = fread(buf + len, 1, cap - len - 1, f);
		len += r;
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		int e = errno ? errno : EIO;
		free(buf);
		fclose(f);
		errno = e;
		return NULL;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

ccb_err ccb_config_load(const char *path, ccb_config **out, ccb_error *err)
{
	ccb_config *c = calloc(1, sizeof *c);
	json_t *root = NULL, *v;
	json_error_t jerr;
	char *text = NULL;
	const char *key;
	ccb_err rc = CCB_OK;

	*out = NULL;
	if (!c)
		return ccb_error_set(err, CCB_ERR_NOMEM, "config");
	if (path) {
		if (!(text = read_text(path))) {
			rc = ccb_error_set(err, CCB_ERR_IO, "%s: %s", path, ccb__strerror(errno));
			goto out;
		}
		root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
		if (!root) {
			rc = ccb_error_set(err, jerr.line < 0 ? CCB_ERR_IO : CCB_ERR_CONFIG,
					   "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
			goto out;
		}
		if (!json_is_object(root)) {
			rc = ccb_error_set(err, CCB_ERR_CONFIG, "%s: the top level must be an object", path);
			goto out;
		}
		json_object_foreach(root, key, v)
			if ((rc = set_value(c, path, text, key, v, err)))
				goto out;
	}
	for (size_t i = 0; i < N_KNOBS; i++) {
		char env[96];
		const char *e;
		snprintf(env, sizeof env, "_CONDOR_%s", knobs[i].name);
		if ((e = getenv(env))) {
			char bad[64];
			size_t kl = strlen(knobs[i].name);
			if (knobs[i].type == K_LEVEL && !level_ok(e)) {
				rc = ccb_error_set(err, CCB_ERR_CONFIG, "environment %s: bad level \"%s\"", env, e);
				goto out;
			}
			if (kl > 15 && !strcmp(knobs[i].name + kl - 15, "_CRYPTO_METHODS") &&
			    crypto_list_bad(e, bad, sizeof bad)) {
				rc = ccb_error_set(err, CCB_ERR_CONFIG,
						   "environment %s: unknown crypto method \"%s\" (known: "
						   "AES, BLOWFISH, 3DES, TRIPLEDES)", env, bad);
				goto out;
			}
			if (!(c->env[i] = ccb_strdup(e))) {
				rc = ccb_error_set(err, CCB_ERR_NOMEM, "config");
				goto out;
			}
		}
	}
out:
	json_decref(root);
	free(text);
	if (rc)
		ccb_config_free(c);
	else
		*out = c;
	return rc;
}

void ccb_config_free(ccb_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < N_KNOBS; i++) {
		free(c->values[i]);
		free(c->env[i]);
	}
	free(c);
}

ccb_err ccb_config_int(const ccb_config *c, const char *knob, long long dflt, long long *out,
		       ccb_error *err)
{
	const char *v = ccb_config_get(c, knob);
	char *end;

	*out = dflt;
	if (!v)
		return CCB_OK;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || end == v || *end)
		return ccb_error_set(err, CCB_ERR_CONFIG, "%s must be an integer, not \"%s\"", knob, v);
	*out = n;
	return CCB_OK;
}

ccb_err ccb_config_bool(const ccb_config *c, const char *knob, bool dflt, bool *out,
			ccb_error *err)
{
	const char *v = ccb_config_get(c, knob);

	*out = dflt;
	if (!v)
		return CCB_OK;
	/* HTCondor's boolean spellings (any case). */
	if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1"))
		*out = true;
	else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0"))
		*out = false;
	else
		return ccb_error_set(err, CCB_ERR_CONFIG, "%s must be true or false, not \"%s\"",
				     knob, v);
	return CCB_OK;
}

const char *ccb_config_get(const ccb_config *c, const char *knob)
{
	int i = knob ? knob_index(knob) : -1;

	if (!c || i < 0)
		return NULL;
	return c->env[i] ? c->env[i] : c->values[i];
}

static ccb_sec_level level_of(const ccb_config *c, const char *knob, const char *fallback)
{
	const char *v = ccb_config_get(c, knob);

	if (!v)
		v = ccb_config_get(c, fallback);
	if (!v)
		return CCB_SEC_LEVEL_DEFAULT;
	switch (toupper((unsigned char)v[0])) {
	case 'R': case 'Y': case 'T': return CCB_SEC_LEVEL_REQUIRED;
	case 'P': return CCB_SEC_LEVEL_PREFERRED;
	case 'O': return CCB_SEC_LEVEL_OPTIONAL;
	default: return CCB_SEC_LEVEL_NEVER;
	}
}

ccb_err ccb_config_client_security(const ccb_config *c, ccb_sec_client_config *out,
				   ccb_error *err)
{
	const char *m, *d;

	memset(out, 0, sizeof *out);
	if (!c)
		return CCB_OK;
	out->authentication = level_of(c, "SEC_CLIENT_AUTHENTICATION", "SEC_DEFAULT_AUTHENTICATION");
	out->encryption = level_of(c, "SEC_CLIENT_ENCRYPTION", "SEC_DEFAULT_ENCRYPTION");
	out->integrity = level_of(c, "SEC_CLIENT_INTEGRITY", "SEC_DEFAULT_INTEGRITY");
	m = ccb_config_get(c, "SEC_CLIENT_AUTHENTICATION_METHODS");
	out->auth_methods = m ? m : ccb_config_get(c, "SEC_DEFAULT_AUTHENTICATION_METHODS");
	m = ccb_config_get(c, "SEC_CLIENT_CRYPTO_METHODS");
	out->crypto_methods = m ? m : ccb_config_get(c, "SEC_DEFAULT_CRYPTO_METHODS");
	out->trust_domain = ccb_config_get(c, "TRUST_DOMAIN");
	out->uid_domain = ccb_config_get(c, "UID_DOMAIN");
	out->claimtobe_user = ccb_config_get(c, "SEC_CLAIMTOBE_USER");
	d = ccb_config_get(c, "SEC_CLIENT_SESSION_DURATION");
	out->session_duration = d ? atoi(d) : 0;
	out->token_directory = ccb_config_get(c, "SEC_TOKEN_DIRECTORY");
	out->ssl_ca_file = ccb_config_get(c, "AUTH_SSL_CLIENT_CAFILE");
	out->ssl_ca_dir = ccb_config_get(c, "AUTH_SSL_CLIENT_CADIR");
	out->ssl_certfile = ccb_config_get(c, "AUTH_SSL_CLIENT_CERTFILE");
	out->ssl_keyfile = ccb_config_get(c, "AUTH_SSL_CLIENT_KEYFILE");
	d = ccb_config_get(c, "SSL_SKIP_HOST_CHECK");
	out->ssl_skip_host_check = d && !strcmp(d, "true");
	(void)err;
	return CCB_OK;
}

ccb_err ccb_config_server_security(const ccb_config *c, ccb_sec_server_config *out,
				   ccb_error *err)
{
	/* [CCB_PERM_ALLOW] carries SEC_DEFAULT_* (see ccb_sec_server_config). */
	static const char *const perm_knob[CCB_PERM_COUNT] = {"DEFAULT", "READ", "WRITE",
							      "ADMINISTRATOR", "DAEMON"};
	char knob[96];
	const char *v;

	memset(out, 0, sizeof *out);
	if (!c)
		return CCB_OK;
	for (int p = 0; p < CCB_PERM_COUNT; p++) {
		snprintf(knob, sizeof knob, "SEC_%s_AUTHENTICATION", perm_knob[p]);
		out->authentication[p] = level_of(c, knob, knob);
		snprintf(knob, sizeof knob, "SEC_%s_ENCRYPTION", perm_knob[p]);
		out->encryption[p] = level_of(c, knob, knob);
		snprintf(knob, sizeof knob, "SEC_%s_INTEGRITY", perm_knob[p]);
		out->integrity[p] = level_of(c, knob, knob);
		snprintf(knob, sizeof knob, "SEC_%s_AUTHENTICATION_METHODS", perm_knob[p]);
		out->auth_methods[p] = ccb_config_get(c, knob);
		snprintf(knob, sizeof knob, "SEC_%s_CRYPTO_METHODS", perm_knob[p]);
		out->crypto_methods[p] = ccb_config_get(c, knob);
		if (p == CCB_PERM_ALLOW)
			continue; /* no ALLOW_ALLOW */
		snprintf(knob, sizeof knob, "ALLOW_%s", perm_knob[p]);
		out->allow[p] = ccb_config_get(c, knob);
		snprintf(knob, sizeof knob, "DENY_%s", perm_knob[p]);
		out->deny[p] = ccb_config_get(c, knob);
	}
	out->uid_domain = ccb_config_get(c, "UID_DOMAIN");
	out->trust_domain = ccb_config_get(c, "TRUST_DOMAIN");
	out->password_directory = ccb_config_get(c, "SEC_PASSWORD_DIRECTORY");
	out->pool_signing_key_file = ccb_config_get(c, "SEC_TOKEN_POOL_SIGNING_KEY_FILE");
	v = ccb_config_get(c, "SEC_TOKEN_MAX_AGE");
	out->token_max_age = v ? atol(v) : 0;
	out->ssl_certfile = ccb_config_get(c, "AUTH_SSL_SERVER_CERTFILE");
	out->ssl_keyfile = ccb_config_get(c, "AUTH_SSL_SERVER_KEYFILE");
	out->ssl_ca_file = ccb_config_get(c, "AUTH_SSL_SERVER_CAFILE");
	out->ssl_ca_dir = ccb_config_get(c, "AUTH_SSL_SERVER_CADIR");
	v = ccb_config_get(c, "AUTH_SSL_REQUIRE_CLIENT_CERTIFICATE");
	out->ssl_require_client_cert = v && !strcmp(v, "true");
	(void)err;
	return CCB_OK;
}

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

static const struct {
	const char *name;
	knob_type type;
} knobs[] = {
	{"SEC_DEFAULT_AUTHENTICATION", K_LEVEL},
	{"SEC_DEFAULT_ENCRYPTION", K_LEVEL},
	{"SEC_DEFAULT_INTEGRITY", K_LEVEL},
	{"SEC_DEFAULT_AUTHENTICATION_METHODS", K_STRING},
	{"SEC_DEFAULT_CRYPTO_METHODS", K_STRING},
	{"SEC_CLIENT_AUTHENTICATION", K_LEVEL},
	{"SEC_CLIENT_ENCRYPTION", K_LEVEL},
	{"SEC_CLIENT_INTEGRITY", K_LEVEL},
	{"SEC_CLIENT_AUTHENTICATION_METHODS", K_STRING},
	{"SEC_CLIENT_CRYPTO_METHODS", K_STRING},
	{"SEC_CLIENT_SESSION_DURATION", K_INT},
	{"SEC_CLAIMTOBE_USER", K_STRING},
	{"SEC_TOKEN_DIRECTORY", K_STRING},
	{"SEC_PASSWORD_DIRECTORY", K_STRING},
	{"SEC_TOKEN_POOL_SIGNING_KEY_FILE", K_STRING},
	{"AUTH_SSL_CLIENT_CAFILE", K_STRING},
	{"AUTH_SSL_CLIENT_CADIR", K_STRING},
	{"AUTH_SSL_CLIENT_CERTFILE", K_STRING},
	{"AUTH_SSL_CLIENT_KEYFILE", K_STRING},
	{"SSL_SKIP_HOST_CHECK", K_BOOL},
	{"SEC_READ_AUTHENTICATION", K_LEVEL},
	{"SEC_READ_ENCRYPTION", K_LEVEL},
	{"SEC_READ_INTEGRITY", K_LEVEL},
	{"SEC_READ_AUTHENTICATION_METHODS", K_STRING},
	{"SEC_WRITE_AUTHENTICATION", K_LEVEL},
	{"SEC_WRITE_ENCRYPTION", K_LEVEL},
	{"SEC_WRITE_INTEGRITY", K_LEVEL},
	{"SEC_WRITE_AUTHENTICATION_METHODS", K_STRING},
	{"SEC_ADMINISTRATOR_AUTHENTICATION", K_LEVEL},
	{"SEC_ADMINISTRATOR_ENCRYPTION", K_LEVEL},
	{"SEC_ADMINISTRATOR_INTEGRITY", K_LEVEL},
	{"SEC_ADMINISTRATOR_AUTHENTICATION_METHODS", K_STRING},
	{"SEC_DAEMON_AUTHENTICATION", K_LEVEL},
	{"SEC_DAEMON_ENCRYPTION", K_LEVEL},
	{"SEC_DAEMON_INTEGRITY", K_LEVEL},
	{"SEC_DAEMON_AUTHENTICATION_METHODS", K_STRING},
	{"SEC_TOKEN_MAX_AGE", K_INT},
	{"ALLOW_READ", K_STRING},
	{"ALLOW_WRITE", K_STRING},
	{"ALLOW_ADMINISTRATOR", K_STRING},
	{"ALLOW_DAEMON", K_STRING},
	{"DENY_READ", K_STRING},
	{"DENY_WRITE", K_STRING},
	{"DENY_ADMINISTRATOR", K_STRING},
	{"DENY_DAEMON", K_STRING},
	{"AUTH_SSL_SERVER_CERTFILE", K_STRING},
	{"AUTH_SSL_SERVER_KEYFILE", K_STRING},
	{"AUTH_SSL_SERVER_CAFILE", K_STRING},
	{"AUTH_SSL_SERVER_CADIR", K_STRING},
	{"AUTH_SSL_REQUIRE_CLIENT_CERTIFICATE", K_BOOL},
	{"TRUST_DOMAIN", K_STRING},
	{"UID_DOMAIN", K_STRING},
	/* CCB, all roles (ccb-protocol.md §13); names without an HTCondor
	 * counterpart are libccb's own and say so in docs/config.md. */
	{"CCB_ADDRESS", K_STRING},
	{"CCB_HEARTBEAT_INTERVAL", K_INT},
	{"CCB_RECONNECT_TIME", K_INT},
	{"CCB_TIMEOUT", K_INT},
	{"CCB_LISTENER_NAME", K_STRING},
	{"CCB_CLIENT_STREAMING", K_BOOL},
	{"CCB_PROXY_RETURN_ADDRESS", K_STRING},
	{"CCB_DIAL_TIMEOUT", K_INT},
	{"CCB_DIAL_STAGGER_MS", K_INT},
	{"TOOLS_ASSUME_FIREWALLS", K_BOOL},
	{"CCB_SERVER_LISTEN", K_STRING},
	{"CCB_SERVER_PUBLIC_ADDRESS", K_STRING},
	{"CCB_RECONNECT_FILE", K_STRING},
	{"CCB_RECONNECT_ALLOWED_FROM_ANY_IP", K_BOOL},
	{"CCB_SWEEP_INTERVAL", K_INT},
	{"CCB_SERVER_REQUEST_TIMEOUT", K_INT},
	{"CCB_SERVER_STREAMING", K_BOOL},
	{"CCB_SERVER_STREAMING_HANDSHAKE_TIMEOUT", K_INT},
	{"CCB_SERVER_MAX_STREAMING_SESSIONS", K_INT},
	{"CCB_SERVER_MAX_STREAMING_HANDSHAKES", K_INT},
	{"CCB_SERVER_MAX_CONNECTIONS", K_INT},
	{"CCB_SERVER_MAX_MESSAGE", K_INT},
	{"CCB_SERVER_HANDSHAKE_WORKERS", K_INT},
	{"CCB_SERVER_HANDSHAKE_TIMEOUT", K_INT},
	{"CCB_SERVER_TARGET_IDLE_TIMEOUT", K_INT},
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

static bool level_ok(const char *v)
{
	/* First letter, as HTCondor parses it (condor_secman.cpp:142-164). */
	return v && strchr("RrYyTtPpOoFfNn", v[0]) && v[0];
}

static ccb_err set_value(ccb_config *c, const char *path, const char *key, json_t *v,
			 ccb_error *err)
{
	int i = knob_index(key);
	char text[64];
	const char *s;

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
		break;
	case K_INT:
		if (!json_is_integer(v))
			return ccb_error_set(err, CCB_ERR_CONFIG, "%s: %s must be an integer", path, key);
		snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
		s = text;
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

ccb_err ccb_config_load(const char *path, ccb_config **out, ccb_error *err)
{
	ccb_config *c = calloc(1, sizeof *c);
	json_t *root = NULL, *v;
	json_error_t jerr;
	const char *key;
	ccb_err rc = CCB_OK;

	*out = NULL;
	if (!c)
		return ccb_error_set(err, CCB_ERR_NOMEM, "config");
	if (path) {
		root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
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
			if ((rc = set_value(c, path, key, v, err)))
				goto out;
	}
	for (size_t i = 0; i < N_KNOBS; i++) {
		char env[96];
		const char *e;
		snprintf(env, sizeof env, "_CONDOR_%s", knobs[i].name);
		if ((e = getenv(env))) {
			if (knobs[i].type == K_LEVEL && !level_ok(e)) {
				rc = ccb_error_set(err, CCB_ERR_CONFIG, "environment %s: bad level \"%s\"", env, e);
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

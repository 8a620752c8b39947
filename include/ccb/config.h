/*
 * libccb — the JSON configuration file.
 *
 * One JSON object whose keys are HTCondor knob names, so values carry over
 * from condor_config:
 *
 *   { "SEC_CLIENT_AUTHENTICATION_METHODS": "TOKEN,CLAIMTOBE",
 *     "SEC_CLIENT_ENCRYPTION": "REQUIRED", "UID_DOMAIN": "example.net" }
 *
 * Knob names are case-insensitive, as in HTCondor. Unknown knobs and values
 * of the wrong type are errors naming the file and the knob. An environment
 * variable `_CONDOR_<KNOB>` overrides the file, as in HTCondor.
 *
 * Thread safety: a loaded config is immutable and may be shared; strings
 * returned borrow from it and live until ccb_config_free().
 *
 * Memory (as in every libccb header, see ccb/error.h): a returned `const char *`
 * is borrowed, valid until its owner is freed or changed; a returned `char *`
 * or `char **out` is the caller's, released with ccb_free().
 */
#ifndef CCB_CONFIG_H
#define CCB_CONFIG_H

#include "ccb/export.h"

#include <stdbool.h>
#include <stddef.h>

#include "ccb/error.h"
#include "ccb/security.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ccb_config ccb_config;

/**
 * Load `path` (NULL: no file, defaults and environment only). Errors:
 * CCB_ERR_IO (unreadable), CCB_ERR_CONFIG (JSON syntax with line and
 * column, not an object, unknown knob, wrong type, bad level), CCB_ERR_NOMEM.
 * *out is freed with ccb_config_free().
 */
CCB_API ccb_err ccb_config_load(const char *path, ccb_config **out, ccb_error *err);
CCB_API void ccb_config_free(ccb_config *c);

/** A knob's value as text (environment override first), NULL if unset.
 * Integers and booleans are returned in their text form. */
CCB_API const char *ccb_config_get(const ccb_config *c, const char *knob);

/**
 * A knob as an integer: `dflt` when unset. Errors: CCB_ERR_CONFIG when the
 * value (e.g. from the environment) is not a decimal integer; *out is then
 * `dflt`.
 */
CCB_API ccb_err ccb_config_int(const ccb_config *c, const char *knob, long long dflt, long long *out,
		       ccb_error *err);

/**
 * A knob as a boolean (true/false, yes/no, 1/0, any case): `dflt` when
 * unset. Errors: CCB_ERR_CONFIG for any other text; *out is then `dflt`.
 */
CCB_API ccb_err ccb_config_bool(const ccb_config *c, const char *knob, bool dflt, bool *out,
			ccb_error *err);

/** One knob as documented: what `ccbctl config` prints. */
typedef struct ccb_config_knob {
	const char *name; /**< HTCondor's spelling, upper case */
	const char *type; /**< "string", "level", "integer" or "boolean" */
	const char *dflt; /**< the default, as text for people */
	const char *doc;  /**< one line */
} ccb_config_knob;

/** Number of knobs libccb knows. */
CCB_API size_t ccb_config_knob_count(void);
/** Knob `i` (0 .. count-1) into *out (static strings); false if out of range. */
CCB_API bool ccb_config_knob_info(size_t i, ccb_config_knob *out);

/** Whether libccb knows a knob name (any case). */
CCB_API bool ccb_config_knob_known(const char *knob);

/**
 * Fill client security settings from SEC_CLIENT_* (falling back to
 * SEC_DEFAULT_*), TRUST_DOMAIN, UID_DOMAIN, SEC_CLAIMTOBE_USER,
 * SEC_TOKEN_DIRECTORY, AUTH_SSL_CLIENT_*, SSL_SKIP_HOST_CHECK. Strings
 * borrow from `c`. Errors: CCB_ERR_CONFIG for an unparsable level.
 */
CCB_API ccb_err ccb_config_client_security(const ccb_config *c, ccb_sec_client_config *out,
				   ccb_error *err);

/**
 * Fill server security settings: SEC_DEFAULT_* and SEC_<PERM>_* for READ,
 * WRITE, ADMINISTRATOR and DAEMON (levels and AUTHENTICATION_METHODS),
 * ALLOW_<PERM> / DENY_<PERM>, UID_DOMAIN, TRUST_DOMAIN, SEC_PASSWORD_DIRECTORY,
 * SEC_TOKEN_POOL_SIGNING_KEY_FILE, SEC_TOKEN_MAX_AGE, AUTH_SSL_SERVER_*.
 * `command_perm` is left for the caller. Strings borrow from `c`.
 */
CCB_API ccb_err ccb_config_server_security(const ccb_config *c, ccb_sec_server_config *out,
				   ccb_error *err);

#ifdef __cplusplus
}
#endif
#endif

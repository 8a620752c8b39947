/*
 * libccb — ClassAds as HTCondor puts them on the CEDAR wire.
 *
 * A small value model: integer, real, boolean, string, undefined, error, and
 * "expression kept as text" for anything else, so an ad carrying expressions
 * we do not evaluate is forwarded unchanged. Attribute names are
 * case-insensitive and kept in HTCondor's wire order (name length, then
 * case-insensitive name), so an ad put by libccb is byte-identical to the same
 * ad put by HTCondor 25.
 *
 * Errors: the constructors and text functions take a `ccb_error *err`
 * (may be NULL). The typed accessors (set, get, remove, value_text) return
 * their code only: CCB_ERR_INVALID_ARG, CCB_ERR_NOMEM, CCB_ERR_NOT_FOUND and
 * CCB_ERR_TYPE say all there is to say. ccb_classad_put() / _get() are
 * stream codec calls: their detail is kept on the stream (ccb_stream_error()).
 *
 * Memory: a returned `char *` / `char **out` is the caller's, released with
 * ccb_free(). Thread safety: an ad is not thread-safe; distinct ads may be
 * used from distinct threads. Pointers returned by getters borrow from the ad
 * and stay valid until that attribute is changed or the ad is freed.
 */
#ifndef CCB_CLASSAD_H
#define CCB_CLASSAD_H

#include "ccb/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/error.h"
#include "ccb/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ccb_classad ccb_classad;

typedef enum ccb_value_type {
	CCB_VAL_ABSENT = 0, /**< no such attribute (only returned by ccb_classad_type) */
	CCB_VAL_UNDEFINED,
	CCB_VAL_ERROR,
	CCB_VAL_BOOL,
	CCB_VAL_INT,
	CCB_VAL_REAL,
	CCB_VAL_STRING,
	CCB_VAL_EXPR, /**< any other expression, kept as its old-syntax text */
} ccb_value_type;

/** A new empty ad in *out, freed with ccb_classad_free(). Errors:
 * CCB_ERR_INVALID_ARG (NULL out), CCB_ERR_NOMEM (*out is then NULL). */
CCB_API ccb_err ccb_classad_new(ccb_classad **out, ccb_error *err);
/** Free an ad and everything in it. NULL is allowed. */
CCB_API void ccb_classad_free(ccb_classad *ad);
/** Deep copy of `ad` in *out, freed with ccb_classad_free(). Errors:
 * CCB_ERR_INVALID_ARG (NULL ad or out), CCB_ERR_NOMEM (*out is then NULL). */
CCB_API ccb_err ccb_classad_copy(const ccb_classad *ad, ccb_classad **out, ccb_error *err);

/** Number of attributes. */
CCB_API size_t ccb_classad_count(const ccb_classad *ad);
/** Name of the i-th attribute in wire order (borrowed), NULL if out of range. */
CCB_API const char *ccb_classad_name_at(const ccb_classad *ad, size_t i);

/* ---- setting: each replaces an attribute of the same name (any case) --- */
/* Errors: CCB_ERR_INVALID_ARG (empty name, name with '=' or whitespace, string
 * with a NUL-free but unsendable byte), CCB_ERR_NOMEM. Strings are copied. */

CCB_API ccb_err ccb_classad_set_int(ccb_classad *ad, const char *name, int64_t v);
CCB_API ccb_err ccb_classad_set_real(ccb_classad *ad, const char *name, double v);
CCB_API ccb_err ccb_classad_set_bool(ccb_classad *ad, const char *name, bool v);
CCB_API ccb_err ccb_classad_set_string(ccb_classad *ad, const char *name, const char *v);
CCB_API ccb_err ccb_classad_set_undefined(ccb_classad *ad, const char *name);
/** An expression given as old-syntax text (e.g. `(TARGET.Name == "x")`).
 * Literal text is recognised and stored typed, like a received attribute. */
CCB_API ccb_err ccb_classad_set_expr(ccb_classad *ad, const char *name, const char *text);
/** Remove an attribute; CCB_ERR_NOT_FOUND if absent. */
CCB_API ccb_err ccb_classad_remove(ccb_classad *ad, const char *name);

/* ---- getting: CCB_ERR_NOT_FOUND if absent, CCB_ERR_TYPE if another type --- */

CCB_API ccb_value_type ccb_classad_type(const ccb_classad *ad, const char *name);
CCB_API ccb_err ccb_classad_get_int(const ccb_classad *ad, const char *name, int64_t *v);
/** Integers are converted to real, as ClassAd evaluation does. */
CCB_API ccb_err ccb_classad_get_real(const ccb_classad *ad, const char *name, double *v);
CCB_API ccb_err ccb_classad_get_bool(const ccb_classad *ad, const char *name, bool *v);
/** *v borrows the ad's copy of the string value. */
CCB_API ccb_err ccb_classad_get_string(const ccb_classad *ad, const char *name, const char **v);

/**
 * The attribute's right-hand side in old ClassAd syntax, as it goes on the
 * wire (strings quoted and escaped). *out is released with ccb_free().
 * Errors (code only, as the other accessors): CCB_ERR_INVALID_ARG,
 * CCB_ERR_NOT_FOUND, CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_classad_value_text(const ccb_classad *ad, const char *name, char **out);

/* ---- text --------------------------------------------------------------- */

/**
 * Parse one `Name = expression` line (old syntax, as on the wire) into the ad.
 * Errors: CCB_ERR_PARSE (no '=', empty name, unterminated string).
 */
CCB_API ccb_err ccb_classad_parse_line(ccb_classad *ad, const char *line, ccb_error *err);

/** All attributes as `Name = value` lines, each ending in '\n', in wire
 * order ("" for an empty or NULL ad). *out is the caller's, released with
 * ccb_free(). Errors: CCB_ERR_INVALID_ARG (NULL out), CCB_ERR_NOMEM. */
CCB_API ccb_err ccb_classad_to_text(const ccb_classad *ad, char **out, ccb_error *err);

/* ---- private attributes --------------------------- */

/** True for HTCondor's private attribute names: Capability, ChildClaimIds,
 * ClaimId, ClaimIdList, ClaimIds, TransferKey, and any `_condor_priv*`. */
CCB_API bool ccb_attr_is_private(const char *name);

/* ---- wire ---------------------------------------------------------------- */

/** HTCondor version as one number: major*10000 + minor*100 + patch. */
#define CCB_VERSION_NUM(maj, min, pat) ((maj) * 10000 + (min) * 100 + (pat))

typedef struct ccb_classad_put_config {
	/** Leave private attributes out entirely (PUT_CLASSAD_NO_PRIVATE). */
	bool no_private;
	/** The peer's HTCondor version as CCB_VERSION_NUM, 0 if unknown. Below
	 * 9.9.0 (or unknown) private attributes are wrapped in the "ZKM" secret
	 * marker and `_condor_priv*` ones are dropped, as the C++ sender does. */
	unsigned peer_version;
	/** Write as a projection ("whitelist") write does: attributes in
	 * case-insensitive alphabetical order, private V1 attributes unmarked
	 * (the session-resume ad is written this way). */
	bool projection;
} ccb_classad_put_config;

/**
 * Append the ad to the stream's current outbound message: attribute count,
 * one `Name = value` string per attribute, and the two empty trailing type
 * strings. Does not end the message. `opts` may be NULL (peer version
 * unknown, private attributes included).
 */
CCB_API ccb_err ccb_classad_put(ccb_stream *s, const ccb_classad *ad, const ccb_classad_put_config *opts);

/**
 * Read an ad from the stream's current inbound message (reading the message
 * if none is pending), unwrapping "ZKM" secrets. Does not end the message.
 * *out is a new ad owned by the caller. Errors: stream errors,
 * CCB_ERR_PROTOCOL (bad count, malformed attribute line).
 */
CCB_API ccb_err ccb_classad_get(ccb_stream *s, ccb_classad **out);

#ifdef __cplusplus
}
#endif
#endif

/*
 * libccb — errors.
 *
 * Every fallible libccb function returns a ccb_err. Most also take an optional
 * `ccb_error *` out-parameter that receives the code plus a detail string naming
 * the peer and the protocol step ("read packet header from 127.0.0.1:9618: timed
 * out after 5000 ms"). Passing NULL for it is always allowed.
 *
 * Memory (every header): a function returning `const char *` returns a
 * borrowed string, valid until the object that owns it is freed or changed.
 * A returned `char *`, a `char **out` or another buffer the library
 * allocates for the caller belongs to the caller and is released with
 * ccb_free() (never free(): libccb.so may use another allocator than the
 * program); a NULL-terminated string vector (`char ***out`) with
 * ccb_strv_free(). Objects are released with their own `*_free()`.
 *
 * Thread safety: all functions here are safe from any thread; ccb_error values
 * belong to the caller.
 */
#ifndef CCB_ERROR_H
#define CCB_ERROR_H

#include "ccb/export.h"

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Error codes. Values are stable across releases; new ones are appended. */
typedef enum ccb_err {
	CCB_OK = 0,
	CCB_ERR_INVALID_ARG = 1,      /**< a caller passed something unusable */
	CCB_ERR_NOMEM = 2,            /**< an allocation failed */
	CCB_ERR_IO = 3,               /**< a socket or file operation failed (errno in detail) */
	CCB_ERR_TIMEOUT = 4,          /**< the operation's deadline passed */
	CCB_ERR_CLOSED = 5,           /**< the peer closed the connection */
	CCB_ERR_PROTOCOL = 6,         /**< the peer violated the wire protocol */
	CCB_ERR_TOO_LARGE = 7,        /**< a message or field exceeds a configured limit */
	CCB_ERR_PARSE = 8,            /**< text (ClassAd, sinful, JSON) could not be parsed */
	CCB_ERR_CRYPTO = 9,           /**< encryption, decryption or integrity check failed */
	CCB_ERR_AUTH = 10,            /**< authentication failed or no common method */
	CCB_ERR_NOT_AUTHORIZED = 11,  /**< the peer (authenticated or not) is not allowed */
	CCB_ERR_NOT_FOUND = 12,       /**< a named thing (attribute, CCBID, file) does not exist */
	CCB_ERR_UNSUPPORTED = 13,     /**< the peer or build lacks a needed feature */
	CCB_ERR_CANCELLED = 14,       /**< the operation was cancelled (stop, lost race) */
	CCB_ERR_STREAMING_UNSUPPORTED = 15, /**< broker cannot do streaming/proxy mode */
	CCB_ERR_NO_BROKER = 16,       /**< no CCB broker could be reached */
	CCB_ERR_NO_CALLBACK = 17,     /**< the target never connected back */
	CCB_ERR_UNKNOWN_CCBID = 18,   /**< the broker does not know the requested CCBID */
	CCB_ERR_CONFIG = 19,          /**< configuration file or value is invalid */
	CCB_ERR_LIMIT = 20,           /**< a resource cap (fds, relays) was reached */
	CCB_ERR_TYPE = 21,            /**< a value has a different type than asked for */
	CCB_ERR_STATE = 22,           /**< call not valid in the object's current state */
	CCB_ERR_SESSION_REFUSED = 23, /**< a cached security session was refused (and
				           forgotten): reconnect and retry */
} ccb_err;

/** Size of the detail buffer, including the terminating NUL. */
#define CCB_ERROR_DETAIL_SIZE 256

/** An error code together with a human-readable detail string. */
typedef struct ccb_error {
	ccb_err code;
	char detail[CCB_ERROR_DETAIL_SIZE];
} ccb_error;

/**
 * Short, static description of a code ("timed out"). Never NULL; unknown codes
 * give "unknown error". The string is owned by the library.
 */
CCB_API const char *ccb_strerror(ccb_err code);

/**
 * Fill `e` (if not NULL) with `code` and a printf-style detail; returns `code`
 * so it can be used as `return ccb_error_set(e, CCB_ERR_IO, "...", ...)`.
 * The detail is truncated to fit CCB_ERROR_DETAIL_SIZE.
 */
CCB_API ccb_err ccb_error_set(ccb_error *e, ccb_err code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** va_list form of ccb_error_set(). */
CCB_API ccb_err ccb_error_setv(ccb_error *e, ccb_err code, const char *fmt, va_list ap);

/**
 * Prefix the existing detail of `e` with more context ("dial broker A: " +
 * old detail), keeping the code. Returns e->code, or CCB_OK if `e` is NULL.
 */
CCB_API ccb_err ccb_error_prefix(ccb_error *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/** Reset `e` to CCB_OK with an empty detail. `e` may be NULL. */
CCB_API void ccb_error_clear(ccb_error *e);

/**
 * Release a string or buffer the library returned to the caller (a `char *`
 * result, a `char **out`, an array such as ccb_sinful_addrs()'s). NULL is
 * allowed. Any thread.
 */
CCB_API void ccb_free(void *p);

/** Release a NULL-terminated string vector the library returned (each
 * string, then the vector). NULL is allowed. Any thread. */
CCB_API void ccb_strv_free(char **v);

#ifdef __cplusplus
}
#endif
#endif

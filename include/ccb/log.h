/*
 * libccb — logging.
 *
 * The library never prints. It reports what it does through one process-wide
 * log handler, which is unset (silent) by default. Secrets (keys, tokens,
 * connect ids) are never passed to it.
 *
 * Thread safety: the handler may be called concurrently from any library
 * thread, so it must be thread-safe itself. ccb_set_log_handler() may be
 * called at any time; a handler being replaced may still receive messages
 * already in flight on other threads.
 *
 * Memory (as in every libccb header, see ccb/error.h): a returned `const char *`
 * is borrowed, valid until its owner is freed or changed; a returned `char *`
 * or `char **out` is the caller's, released with ccb_free().
 */
#ifndef CCB_LOG_H
#define CCB_LOG_H

#include "ccb/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Log levels, most severe first. */
typedef enum ccb_log_level {
	CCB_LOG_ERROR = 0,
	CCB_LOG_WARNING = 1,
	CCB_LOG_INFO = 2,
	CCB_LOG_DEBUG = 3,
} ccb_log_level;

/** Receives one formatted line (no trailing newline). `msg` is valid only
 * during the call. */
typedef void (*ccb_log_fn)(ccb_log_level level, const char *msg, void *user);

/**
 * Install `fn` as the process-wide handler, receiving messages at `max_level`
 * and more severe. Pass NULL to silence the library again.
 */
CCB_API void ccb_set_log_handler(ccb_log_fn fn, ccb_log_level max_level, void *user);

/** Name of a level ("error", "warning", "info", "debug"). */
CCB_API const char *ccb_log_level_name(ccb_log_level level);

#ifdef __cplusplus
}
#endif
#endif

/*
 * Internal relay engine: moves bytes both ways between two connected sockets
 * for the broker's streaming (proxy) mode, ccb-protocol.md §7.7. Not installed.
 *
 * Event-driven: `threads` event threads, each with its own epoll set; relays
 * are assigned to them round-robin (never a thread per relay). Each direction
 * is moved with splice(2) through its own pipe (sized with F_SETPIPE_SZ where
 * the kernel allows), or through a user-space buffer when splice is not
 * possible (EINVAL/ENOSYS from the kernel, or pipe2() failing with EMFILE /
 * ENFILE: the relay is then not refused, it copies in user space instead).
 *
 * Semantics: byte-transparent both ways; nothing is read ahead beyond what the
 * destination accepts (backpressure: a direction whose destination is full
 * stops reading its source); EOF on a source -> after the pending bytes drain,
 * shutdown(SHUT_WR) on the destination (half-close propagated); both directions
 * done -> both sockets closed; hard error (ECONNRESET, EPIPE, SO_ERROR set) ->
 * counted as failed, both sockets closed. No idle timeout once relaying.
 *
 * Test-only switch: when the environment variable CCB_RELAY_FORCE_COPY is set
 * to a non-empty value other than "0" at ccb__relay_engine_new(), that engine
 * never uses splice (user-space copy only).
 *
 * Include as "relay.h": only src/ccb/broker*.c (through broker_internal.h),
 * src/ccb/relay.c and the relay test and benchmark.
 */
#ifndef CCB_RELAY_H
#define CCB_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/error.h"

typedef struct ccb__relay_engine ccb__relay_engine;

typedef struct ccb__relay_stats {
	uint64_t sessions;  /* relays ever started (CCBStreamingSessions) */
	uint64_t active;    /* relays running now (CCBStreamingActive) */
	uint64_t bytes;     /* bytes moved, both directions (CCBStreamingBytes) */
	uint64_t failed;    /* relays ended by a hard send/recv error (CCBStreamingFailed) */
	uint64_t refused;   /* starts refused at the cap */
} ccb__relay_stats;

/* Called once per relay when it ends, on a relay thread (keep it short, thread-safe). May be NULL.
 * Both sockets are already closed and the stats already updated when it runs. Relays still
 * running when ccb__relay_engine_free() is called also get it (failed = false), before free
 * returns. It must not call ccb__relay_engine_free(). */
typedef void (*ccb__relay_done_fn)(void *user, uint64_t bytes_a_to_b, uint64_t bytes_b_to_a, bool failed);

/* `threads` event threads (0: 1), at most `max_relays` at once (0: unlimited). NULL + err on failure. */
ccb__relay_engine *ccb__relay_engine_new(unsigned threads, size_t max_relays, ccb_error *err);

/* Splice fd_a <-> fd_b until both directions end. Takes ownership of both fds on CCB_OK only
 * (on error the caller still owns and closes them). Errors: CCB_ERR_LIMIT at the cap, CCB_ERR_STATE
 * after free started, CCB_ERR_IO, CCB_ERR_NOMEM (CCB_ERR_INVALID_ARG for negative or equal fds).
 * Thread-safe. The fds may be blocking or not; the engine makes them non-blocking. Bytes already
 * buffered in user space by the caller must be sent by the caller before handing over (nothing is
 * read ahead by the engine either). */
ccb_err ccb__relay_start(ccb__relay_engine *e, int fd_a, int fd_b, ccb__relay_done_fn done, void *user,
			 ccb_error *err);

void ccb__relay_engine_stats(ccb__relay_engine *e, ccb__relay_stats *out); /* thread-safe snapshot */

/* Stop every relay (both sockets closed), join the threads, free. NULL allowed. */
void ccb__relay_engine_free(ccb__relay_engine *e);

#endif

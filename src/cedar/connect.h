/*
 * The one TCP connect of the library (cedar/connect.c), in two forms:
 *
 * - ccb__tcp_connect(): resolve, then connect to each address in turn until
 *   a deadline, optionally cut short by a stop fd (util/wakeup.h). Blocking;
 *   ccb_tcp_connect() and ccb_stream_connect() are this without a stop fd.
 * - ccb__tcp_connect_start() / ccb__tcp_connect_finish(): the non-blocking
 *   halves, for an event loop that waits for many connects at once (the
 *   listener's reverse connects) or a race that polls more than one fd.
 *
 * Error details name the peer and say what happened: "connect to broker
 * 10.0.0.1:9618 timed out after 5000 ms", "connection refused by broker
 * 10.0.0.1:9618". Not installed.
 */
#ifndef CCB_CEDAR_CONNECT_H
#define CCB_CEDAR_CONNECT_H

#include <stddef.h>
#include <stdint.h>

#include "ccb/error.h"

struct addrinfo;

/* Like ccb_tcp_connect() (ccb/stream.h), and when `stop_fd` >= 0 also polls
 * it for POLLIN: once readable the connect gives up with CCB_ERR_CANCELLED.
 * The stop fd is never read. */
ccb_err ccb__tcp_connect(const char *host, int port, int64_t deadline_ms, const char *what,
			 int stop_fd, int *fd, ccb_error *err);

/* Open a non-blocking, close-on-exec socket for `ai` and start connecting.
 * Returns 0 with *fd set (the connect is in progress or already done: wait
 * for the fd to poll writable, then call ccb__tcp_connect_finish()), or the
 * errno of the failure with *fd = -1. */
int ccb__tcp_connect_start(const struct addrinfo *ai, int *fd);

/* Outcome of a connect begun by ccb__tcp_connect_start(), once its fd polled
 * writable or with an error: 0 when connected (TCP_NODELAY is then set), else
 * the errno of the failure (the caller closes the fd). */
int ccb__tcp_connect_finish(int fd);

/* Format "host:port" (IPv6 literals in brackets) after `what` ("broker",
 * NULL for nothing) into buf. Returns buf. */
const char *ccb__tcp_peer_name(char *buf, size_t n, const char *what, const char *host, int port);

/* Set `err` for a connect to `where` that failed with errno `e`:
 * CCB_ERR_IO "connection refused by <where>" / "connect to <where>: <errno
 * text>". Returns CCB_ERR_IO. */
ccb_err ccb__tcp_connect_error(ccb_error *err, const char *where, int e);

#endif

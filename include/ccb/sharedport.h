/*
 * libccb — shared port: reaching daemons behind condor_shared_port, receiving
 * forwarded connections, and a minimal shared-port server.
 *
 * The wire format is that of HTCondor 25's condor_shared_port daemon and its
 * shared-port endpoints (see the HTCondor manual, "Reducing Port Usage with
 * the condor_shared_port Daemon").
 *
 * Three pieces:
 *
 * - Client: on a freshly connected TCP stream to a shared-port
 *   server, send SHARED_PORT_CONNECT naming the target's shared-port id (the
 *   `sock=` value of its sinful). No reply comes back; the next bytes in both
 *   directions belong to the target daemon, so the caller continues with its
 *   real protocol on the same stream.
 *
 * - Endpoint: a Unix stream socket named after a shared-port id,
 *   in a socket directory (DAEMON_SOCKET_DIR) or, on Linux, in the abstract
 *   namespace under a cookie. A shared-port server hands each forwarded TCP
 *   connection over it as a file descriptor (int 76, then one byte carrying
 *   SCM_RIGHTS); the endpoint returns it as an accepted connection.
 *
 * - Server: accepts TCP connections, reads SHARED_PORT_CONNECT
 *   and passes the socket to the named endpoint exactly as condor_shared_port
 *   does. Connections that start with another command go to a default id, if
 *   one is configured.
 *
 * Deadlines: every deadline here is absolute, in milliseconds on the
 * ccb_now_ms() monotonic clock (CLOCK_MONOTONIC), as for
 * ccb_stream_set_deadline(); INT64_MAX means "none".
 *
 * Errors: every fallible function returns a ccb_err and, if `err` is not
 * NULL, fills it with a detail naming the peer and the step. Nothing is
 * printed; diagnostics go to the log handler (ccb/log.h).
 *
 * Threads: no global state. Each handle is used from one thread at a time,
 * except the *_shutdown / *_stop functions and the statistics getters, which
 * may be called from any thread at any time.
 *
 * Memory (as in every libccb header, see ccb/error.h): a returned `const char *`
 * is borrowed, valid until its owner is freed or changed; a returned `char *`
 * or `char **out` is the caller's, released with ccb_free().
 */
#ifndef CCB_SHAREDPORT_H
#define CCB_SHAREDPORT_H

#include "ccb/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/clock.h"
#include "ccb/error.h"
#include "ccb/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest shared-port id or client name condor_shared_port accepts: it
 * reads both into 1024-byte buffers. */
#define CCB_SHAREDPORT_ID_MAX 1023

/** Client name sent when the caller gives none; HTCondor tools send their
 * subsystem name "TOOL". */
#define CCB_SHAREDPORT_DEFAULT_CLIENT_NAME "TOOL"

/**
 * True if `id` is a usable shared-port id: 1..CCB_SHAREDPORT_ID_MAX
 * characters from A-Z a-z 0-9 . - _. Such an id can never name a
 * path outside the socket directory. NULL gives false. Thread-safe.
 */
CCB_API bool ccb_sharedport_id_valid(const char *id);

/* ---- client ------------------------------------------------------------ */

/**
 * Ask the shared-port server at the other end of `s` to forward this
 * connection to the endpoint `id`.
 *
 * Sends one plaintext CEDAR message: int 75 (SHARED_PORT_CONNECT), string
 * `id`, string `client_name`, int deadline, int 0 (no extra arguments), end
 * of message. The deadline field is the number of whole seconds left
 * until `deadline_ms` (rounded up, 0 if already past), or -1 when
 * `deadline_ms` is INT64_MAX. HTCondor sends its socket timeout when the
 * socket has no deadline; callers that want that pass
 * ccb_deadline_in(timeout_ms). The value only tells the server how long it
 * may spend handing the connection over; it does not change `s`.
 *
 * Then, unless `id` is "self", the stream's handshake digests are reset
 * (ccb_stream_reset_digests()), because the target daemon never sees this
 * message. Nothing is read: a server that knows
 * no such endpoint simply closes the connection, which the caller sees as
 * CCB_ERR_CLOSED on its first read.
 *
 * `s` must be plaintext (no AES key) with nothing buffered for sending; this
 * must be the first message on the connection. `client_name` is for the
 * server's logs (HTCondor sends "<SUBSYS> <own sinful>"); NULL sends
 * CCB_SHAREDPORT_DEFAULT_CLIENT_NAME. Nothing is retained.
 *
 * Errors: CCB_ERR_INVALID_ARG (NULL stream, invalid id, client name longer
 * than CCB_SHAREDPORT_ID_MAX or starting with byte 0xAD), CCB_ERR_STATE
 * (crypto on, or a message partly written), or the stream's own error for
 * the send (CCB_ERR_TIMEOUT, CCB_ERR_CLOSED, CCB_ERR_IO, ...), prefixed
 * with the step. Not thread-safe with other uses of `s`.
 */
CCB_API ccb_err ccb_sharedport_send_connect(ccb_stream *s, const char *id, const char *client_name,
				    int64_t deadline_ms, ccb_error *err);

/**
 * Connect over TCP to the shared-port server at `host`:`port` and send
 * SHARED_PORT_CONNECT for `id` (see ccb_sharedport_send_connect()). This is
 * how `<host:port?sock=id>` is reached.
 *
 * `host` is an IP literal or a name; every address it resolves to is tried
 * in turn until one connects. Name resolution itself is not bounded by the
 * deadline. The TCP connect and the send stop at `deadline_ms`; with
 * INT64_MAX each step is bounded by CCB_STREAM_DEFAULT_TIMEOUT_MS instead.
 *
 * On success *out is a new stream the caller frees with ccb_stream_free();
 * it keeps `deadline_ms` as its deadline (ccb_stream_set_deadline(s,
 * INT64_MAX) lifts it) and is ready for the target daemon's protocol. On
 * failure *out is NULL and no fd is left open.
 *
 * Errors: CCB_ERR_INVALID_ARG (NULL host/out, port 0, invalid id or client
 * name), CCB_ERR_NOT_FOUND (host does not resolve), CCB_ERR_TIMEOUT,
 * CCB_ERR_IO (connect refused, ...), CCB_ERR_NOMEM, and the errors of
 * ccb_sharedport_send_connect(). Thread-safe (no shared state).
 */
CCB_API ccb_err ccb_sharedport_dial(const char *host, uint16_t port, const char *id,
			    const char *client_name, int64_t deadline_ms, ccb_stream **out,
			    ccb_error *err);

/* ---- endpoint ----------------------------------------------------------- */

/** A Unix socket receiving connections forwarded by a shared-port server. */
typedef struct ccb_sharedport_endpoint ccb_sharedport_endpoint;

/** Endpoint options. Zero-initialise; zero / NULL fields take the default. */
typedef struct ccb_sharedport_endpoint_config {
	/** DAEMON_SOCKET_DIR: the socket is the file <socket_dir>/<id>. Created
	 * (mode 0755, one level) if missing, as HTCondor does.
	 * Required unless `cookie` is set. */
	const char *socket_dir;
	/** Linux only: listen on the abstract name "\0<cookie>/<id>" instead of
	 * a file, as daemons started by condor_master do with
	 * CONDOR_PRIVATE_SHARED_PORT_COOKIE. `socket_dir` is then
	 * ignored. NULL: file socket. */
	const char *cookie;
	/** Shared-port id to listen as. NULL: generate "<name>_<pid>_<4 hex>".
	 * A given id whose socket file exists but has no listener
	 * (a stale file) is replaced; one with a live listener is an error. */
	const char *id;
	/** Prefix of a generated id. NULL: "ccb". Must itself be a valid id. */
	const char *name;
	/** listen() backlog. 0: 4096 (SOCKET_LISTEN_BACKLOG). */
	int backlog;
	/** Most time one hand-off (reading int 76 and the fd) may take, in ms.
	 * A peer that stalls longer is dropped. 0: 10000 (as Go's listener). */
	int handoff_timeout_ms;
} ccb_sharedport_endpoint_config;

/** Endpoint counters (snapshots; may lag concurrent accepts). */
typedef struct ccb_sharedport_endpoint_stats {
	uint64_t accepted; /**< connections handed to the caller */
	uint64_t rejected; /**< hand-offs dropped (bad command, no fd, stall) */
} ccb_sharedport_endpoint_stats;

/**
 * Create the endpoint's socket and listen on it. On success *out is a new
 * endpoint the caller frees with ccb_sharedport_endpoint_free(), which also
 * removes the socket file. `cfg` and its strings are copied.
 *
 * Errors: CCB_ERR_INVALID_ARG (NULL cfg/out, no socket_dir and no cookie,
 * invalid id or name, path longer than sun_path), CCB_ERR_UNSUPPORTED
 * (cookie on a non-Linux system), CCB_ERR_STATE (a live endpoint already
 * uses the id), CCB_ERR_IO (mkdir, socket, bind, listen), CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_sharedport_endpoint_new(const ccb_sharedport_endpoint_config *cfg,
				    ccb_sharedport_endpoint **out, ccb_error *err);

/** The endpoint's shared-port id (owned by the endpoint, valid until free).
 * A daemon advertises `<server host:port?sock=ID>`. */
CCB_API const char *ccb_sharedport_endpoint_id(const ccb_sharedport_endpoint *ep);

/** The socket file's path (owned by the endpoint), or NULL for an abstract
 * socket. */
CCB_API const char *ccb_sharedport_endpoint_path(const ccb_sharedport_endpoint *ep);

/** The listening socket, still owned by the endpoint, for poll(): readable
 * when a hand-off may be waiting. Do not read from it or close it. */
CCB_API int ccb_sharedport_endpoint_fd(const ccb_sharedport_endpoint *ep);

/**
 * Wait until `deadline_ms` for the next forwarded connection and return its
 * TCP socket in *fd (blocking mode, close-on-exec; the caller owns and
 * closes it). Its first bytes are whatever the remote client sends after its
 * SHARED_PORT_CONNECT, or the whole connection if the server forwarded it
 * unread (a default id).
 *
 * Each hand-off is checked as HTCondor's endpoint does:
 * one CEDAR message holding exactly int 76, then one data byte with one
 * SCM_RIGHTS descriptor; nothing is written back. A hand-off that breaks
 * these rules, passes something that is not a socket, or stalls past the
 * hand-off timeout is dropped (logged, counted as rejected) and the wait
 * goes on until the deadline.
 *
 * Errors: CCB_ERR_TIMEOUT (deadline passed; the detail quotes the last
 * rejected hand-off, if any), CCB_ERR_CANCELLED (after
 * ccb_sharedport_endpoint_shutdown()), CCB_ERR_IO (accept failed, e.g. out
 * of fds), CCB_ERR_INVALID_ARG. Call from one thread at a time.
 */
CCB_API ccb_err ccb_sharedport_endpoint_accept_fd(ccb_sharedport_endpoint *ep, int64_t deadline_ms,
					  int *fd, ccb_error *err);

/**
 * As ccb_sharedport_endpoint_accept_fd(), wrapped in a new stream (the
 * caller frees it with ccb_stream_free()). The stream starts with fresh
 * handshake digests, as the target of a shared-port connect must.
 */
CCB_API ccb_err ccb_sharedport_endpoint_accept(ccb_sharedport_endpoint *ep, int64_t deadline_ms,
				       ccb_stream **out, ccb_error *err);

/** Make a blocked or later accept return CCB_ERR_CANCELLED promptly
 * (including one in the middle of a hand-off). Any thread; idempotent; the
 * endpoint must still be freed. */
CCB_API void ccb_sharedport_endpoint_shutdown(ccb_sharedport_endpoint *ep);

/** Counters; any thread. */
CCB_API void ccb_sharedport_endpoint_get_stats(const ccb_sharedport_endpoint *ep,
				       ccb_sharedport_endpoint_stats *st);

/** Close the socket, remove its file (only if it is still ours) and free.
 * No accept may be running. NULL is allowed. */
CCB_API void ccb_sharedport_endpoint_free(ccb_sharedport_endpoint *ep);

/* ---- server --------------------------------------------------------------- */

/** A minimal condor_shared_port: TCP in, file descriptors out. */
typedef struct ccb_sharedport_server ccb_sharedport_server;

/** Server options. Zero-initialise; zero / NULL fields take the default. */
typedef struct ccb_sharedport_server_config {
	/** Numeric IPv4/IPv6 address to listen on. NULL: "127.0.0.1" (pass
	 * "0.0.0.0" or "::" for every interface, as condor_shared_port does). */
	const char *bind_host;
	/** TCP port. 0: an ephemeral port (ccb_sharedport_server_port()). */
	uint16_t port;
	/** DAEMON_SOCKET_DIR where endpoints listen as <dir>/<id>. Required
	 * unless `cookie` is set. */
	const char *socket_dir;
	/** Linux: try the abstract name "\0<cookie>/<id>" first and fall back
	 * to <socket_dir>/<id> on ENOENT/ECONNREFUSED, as condor_shared_port
	 * does. NULL: file sockets only. */
	const char *cookie;
	/** Id receiving connections whose first command is not
	 * SHARED_PORT_CONNECT, unread (SHARED_PORT_DEFAULT_ID).
	 * NULL: such connections are closed. */
	const char *default_id;
	/** Most time a client may take to send its request, in ms. 0: 20000. */
	int request_timeout_ms;
	/** Most time passing one socket to an endpoint may take, in ms; a
	 * client's deadline field can only shorten it. 0: 10000. */
	int handoff_timeout_ms;
	/** Connections ccb_sharedport_server_run() serves at once, one thread
	 * each; further ones wait in the listen queue. 0: 64. */
	int max_workers;
	/** listen() backlog. 0: 128. */
	int backlog;
} ccb_sharedport_server_config;

/** Server counters (snapshots). */
typedef struct ccb_sharedport_server_stats {
	uint64_t passed; /**< sockets handed to an endpoint */
	uint64_t failed; /**< connections closed because of an error */
	uint64_t active; /**< connections being served now */
} ccb_sharedport_server_stats;

/**
 * Bind and listen. On success *out is a new server the caller frees with
 * ccb_sharedport_server_free(); `cfg` and its strings are copied.
 * Errors: CCB_ERR_INVALID_ARG (NULL cfg/out, no socket_dir and no cookie,
 * invalid default_id, bind_host not numeric), CCB_ERR_UNSUPPORTED (cookie
 * off Linux), CCB_ERR_IO (socket/bind/listen), CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_sharedport_server_new(const ccb_sharedport_server_config *cfg,
				  ccb_sharedport_server **out, ccb_error *err);

/** The TCP port the server listens on. */
CCB_API uint16_t ccb_sharedport_server_port(const ccb_sharedport_server *srv);

/**
 * Accept one connection (waiting until `deadline_ms`) and serve it to the
 * end on the calling thread: peek at its first command, read and
 * check SHARED_PORT_CONNECT, pass the socket to the endpoint. Returns CCB_OK once the socket is handed over. Whatever fails, the
 * client's connection is closed and the error names the client and the
 * step: CCB_ERR_TIMEOUT (no client before the deadline, or the client
 * stalled past the request timeout), CCB_ERR_CLOSED, CCB_ERR_PROTOCOL
 * (malformed message, wrong command, illegal id, more_args out of 0..100),
 * CCB_ERR_TOO_LARGE (a string longer than the C++ buffers allow),
 * CCB_ERR_NOT_FOUND (no endpoint with that id), CCB_ERR_LIMIT (endpoint's
 * listen queue full), CCB_ERR_UNSUPPORTED (id "self": this server has no
 * commands of its own), CCB_ERR_CANCELLED (stopped), CCB_ERR_IO.
 * Must not run concurrently with another serve_one or run on `srv`.
 */
CCB_API ccb_err ccb_sharedport_server_serve_one(ccb_sharedport_server *srv, int64_t deadline_ms,
					ccb_error *err);

/**
 * Serve connections until ccb_sharedport_server_stop(), each on its own
 * worker thread (at most max_workers at once). Per-connection failures are
 * logged and counted, not returned. Returns CCB_OK after a stop, once every
 * worker has finished (workers are interrupted, so this is prompt), or
 * CCB_ERR_IO if accepting fails for good, CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_sharedport_server_run(ccb_sharedport_server *srv, ccb_error *err);

/** Make run / serve_one return promptly, interrupting connections being
 * served. Any thread; idempotent; permanent. */
CCB_API void ccb_sharedport_server_stop(ccb_sharedport_server *srv);

/** Counters; any thread. */
CCB_API void ccb_sharedport_server_get_stats(const ccb_sharedport_server *srv,
				     ccb_sharedport_server_stats *st);

/** Close the listener and free. Call only after run / serve_one returned
 * (stop first). NULL is allowed. */
CCB_API void ccb_sharedport_server_free(ccb_sharedport_server *srv);

#ifdef __cplusplus
}
#endif
#endif

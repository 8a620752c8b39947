/*
 * libccb — CCB listener (target / registrant side).
 *
 * A listener keeps one registration with each configured CCB broker and,
 * when a broker forwards a CCB_REQUEST, connects back to the requester (or, in streaming mode, to the
 * broker), sends the reverse-connect hello and hands the connection to the
 * caller's handler.
 *
 * Threads (see docs/threading.md): one worker thread per broker runs the
 * register / serve / heartbeat / reconnect loop on blocking sockets with
 * deadlines. Forwarded requests are connected back by one event loop thread
 * per listener (non-blocking connects under epoll, each with a connect
 * deadline and then a hello deadline), so a black-holed or slow requester
 * costs a socket, not a thread, and never delays heartbeats or other
 * requests; capacity is shared per requester (max_pending_per_requester).
 * Only an established connection, its hello written, gets a thread: the
 * handler's (at most max_reverse_connects at once). stop() joins all of
 * them. Only the worker thread ever reads or writes its
 * registration socket: result reports from request threads are queued under
 * the listener's mutex and the worker is woken to send them, which keeps the
 * writes to one registration serialized.
 *
 * Per broker:
 * - authenticated CCB_REGISTER {Command, Name[, CCBID, ClaimId]}, the last
 *   two being the previous reply's CCBID and cookie, verbatim, so the broker
 *   can give the same CCBID back; a fresh security session is
 *   negotiated for every registration;
 * - ALIVE {Command=441} after `heartbeat interval` of silence from the
 *   broker; the broker is declared dead after 3 intervals of silence (the C++
 *   listener's rule);
 * - on any failure: close, wait the reconnect interval with random jitter
 *   (75%-125%), register again. One broker failing never affects another.
 *
 * Command socket and sinful: like an HTCondor
 * daemon, a listener has a real TCP command socket, opened by
 * ccb_listener_new() on `command_address` (default: an ephemeral port on
 * the local address that routes toward the first broker), unless the
 * embedder names its own with `own_command_address`. Its address is what
 * ccb_listener_sinful() publishes, with the CCB contacts and PrivNet added;
 * HTCondor clients refuse a port-0 address, so none is ever published. A
 * client whose PRIVATE_NETWORK_NAME equals our PrivNet connects straight to
 * that socket; the library accepts such connections on one more thread,
 * keeps each in the reverse-connect loop (no thread) until the client's
 * first bytes arrive (within reverse_connect_timeout_ms, else it is closed),
 * and then hands it to the same handler as reverse connections
 * (ccb_listener_conn_info.direct says which). The pending caps apply per
 * client IP as per requester.
 *
 * Thread safety: every function may be called from any thread, except that
 * ccb_listener_free() must not race with any other call on the same
 * listener. The handler is called from library threads.
 *
 * Memory (as in every libccb header, see ccb/error.h): a returned `const char *`
 * is borrowed, valid until its owner is freed or changed; a returned `char *`
 * or `char **out` is the caller's, released with ccb_free().
 */
#ifndef CCB_LISTENER_H
#define CCB_LISTENER_H

#include "ccb/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/config.h"
#include "ccb/error.h"
#include "ccb/security.h"
#include "ccb/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ccb_listener ccb_listener;

/** What the handler learns about a reverse connection. Strings are valid
 * only during the handler call. */
typedef struct ccb_listener_conn_info {
	const char *broker;       /**< broker address as configured */
	const char *contact;      /**< our contact at that broker ("<broker>#<ccbid>") */
	const char *request_id;   /**< the broker's RequestID */
	const char *requester;    /**< the request's Name ("" when absent) */
	const char *my_address;   /**< the address dialed (requester, or broker when
				   * streaming); for a direct connection our command address */
	bool streaming;           /**< the request came with CCBPriorHop (streaming mode) */
	bool direct;              /**< a direct connection to our command socket, not a
				   * reverse connect: broker, contact, request_id and
				   * requester are "" */
	const char *peer;         /**< direct connections: the client's address
				   * ("<ip:port>"); NULL for reverse connects */
	const char *route;        /**< the request's CCBRoute: the CCBIDs still to
				   * follow beyond us ("" when none). Non-empty
				   * only when this listener is an inside CCB's
				   * upstream registration:
				   * a plain daemon just serves the connection. */
	const char *original_requester; /**< CCBOriginalRequester ("" when absent;
					 * for logs only, never trust it) */
	const char *prior_hop;    /**< CCBPriorHop ("" when absent; logs only) */
} ccb_listener_conn_info;

/**
 * Receives a reverse connection after the hello was sent (and its result
 * reported to the broker), or a connection accepted on the command socket
 * (info->direct). `conn` is an ordinary inbound CEDAR command
 * socket with its digests reset: the requester drives DC_AUTHENTICATE next,
 * so serve it with ccb_sec_server_accept(). The handler owns `conn` and must
 * ccb_stream_free() it. It runs on a library thread; ccb_listener_stop()
 * waits for running handlers, so a handler should bound its I/O with stream
 * timeouts or deadlines (and may check ccb_listener_stopping()).
 */
typedef void (*ccb_listener_handler_fn)(ccb_stream *conn, const ccb_listener_conn_info *info,
					void *user);

/** ccb_listener_config.heartbeat_interval_ms value that turns heartbeats
 * off (HTCondor's CCB_HEARTBEAT_INTERVAL = 0). */
#define CCB_LISTENER_HEARTBEAT_OFF (-1)

/** Listener settings. Zero-initialise; zero / NULL means the default. All
 * strings and arrays are copied by ccb_listener_new(). */
typedef struct ccb_listener_config {
	/** Broker addresses (CCB_ADDRESS entries: "host:port", "host" for port
	 * 9618, or a sinful, through shared port when it carries sock=). */
	const char *const *brokers;
	size_t n_brokers;
	/** Convenience for a single broker; used in addition to `brokers`. */
	const char *broker;
	/** Client security for CCB_REGISTER (copied, strings included). */
	ccb_sec_client_config security;
	/** Required: receives every reverse connection. */
	ccb_listener_handler_fn handler;
	void *user;
	/** Name attribute of the register ad (C++ daemons send "<SUBSYS>
	 * <sinful>"; CCB_LISTENER_NAME). Default "ccb listener". */
	const char *name;
	/** Heartbeat interval (CCB_HEARTBEAT_INTERVAL) in milliseconds:
	 * 0: 300000 (HTCondor 25's effective default); 1..29999 are raised to
	 * 30000, as HTCondor raises 1-29 s to 30 s; CCB_LISTENER_HEARTBEAT_OFF
	 * for none. */
	int heartbeat_interval_ms;
	/** Reconnect interval (CCB_RECONNECT_TIME) in milliseconds: 0: 60000.
	 * The actual wait is drawn uniformly from 75%-125% of it so restarted
	 * brokers are not stampeded. */
	int reconnect_interval_ms;
	/** CCB_TIMEOUT in milliseconds: 0: 300000. Bounds the broker connect,
	 * the registration handshake and reply, and each read or write on the
	 * registration socket. */
	int timeout_ms;
	/** Overall bound on a reverse connect in milliseconds (connect,
	 * waiting for a free handler, hello): 0: 30000. The shorter per-step
	 * deadlines below apply inside it. */
	int dial_timeout_ms;
	/** Most handlers running at once (threads), for established reverse
	 * connections and direct connections together, at most half of them
	 * for one requester or client IP. A connected reverse connect (or a
	 * direct connection that has sent its first bytes) waits cheaply in
	 * the loop for a free one up to reverse_hello_timeout_ms, then is
	 * reported failed (direct: closed). Default 64. */
	int max_reverse_connects;
	/** Deadline of a reverse connect's TCP connect, in milliseconds:
	 * default 5000. A black-holed MyAddress costs a socket for this long,
	 * never a thread. */
	int reverse_connect_timeout_ms;
	/** Once connected: deadline to get a free handler and write the hello
	 * (SHARED_PORT_CONNECT first through shared port), in milliseconds:
	 * default 3000. */
	int reverse_hello_timeout_ms;
	/** Most reverse connects pending at once (connecting or waiting for a
	 * handler), all brokers together: default 4096. Beyond it a request is
	 * reported failed to the broker at once ("failed to initiate
	 * connection: too many reverse connects in progress"). */
	int max_pending_reverse_connects;
	/** Most pending reverse connects for one requester (its IP as the
	 * broker stamped it on the request's Name, else MyAddress's host):
	 * default 16, so that one source cannot take the whole capacity. */
	int max_pending_per_requester;
	/** Where the library opens the command socket (CCB_LISTENER_COMMAND_ADDRESS):
	 * "ip", "ip:port", "[v6]:port" or a sinful, with an IP literal host
	 * (a wildcard binds every interface and advertises the address that
	 * routes toward the first broker). NULL or no port: an ephemeral port;
	 * NULL: on the local address that routes toward the first broker
	 * (127.0.0.1 when none does). */
	const char *command_address;
	/** The embedder's own command socket, served by the embedder: a sinful
	 * or host:port (non-zero port) advertised as is, parameters kept. The
	 * library then opens no socket and `command_address` is ignored. */
	const char *own_command_address;
	/** PRIVATE_NETWORK_NAME: published as PrivNet by ccb_listener_sinful().
	 * NULL or "": no PrivNet. */
	const char *private_network_name;
	/** Host name published as alias= (what SSL clients check the
	 * certificate against). NULL: none. Not used with own_command_address. */
	const char *alias;
} ccb_listener_config;

/**
 * Fill `out` from a loaded JSON config: CCB_ADDRESS (split as by
 * ccb_broker_list_split()), CCB_HEARTBEAT_INTERVAL (0 becomes
 * CCB_LISTENER_HEARTBEAT_OFF), CCB_RECONNECT_TIME, CCB_TIMEOUT (these three
 * in seconds, as HTCondor writes them, 0..2073600 (24 days), converted to
 * the struct's milliseconds), CCB_LISTENER_CONNECT_TIMEOUT_MS,
 * CCB_LISTENER_HELLO_TIMEOUT_MS, CCB_LISTENER_MAX_PENDING,
 * CCB_LISTENER_MAX_PENDING_PER_REQUESTER, CCB_LISTENER_NAME,
 * CCB_LISTENER_COMMAND_ADDRESS, PRIVATE_NETWORK_NAME and the client security
 * knobs (ccb_config_client_security()). `out` is zeroed first; handler and
 * user are left for the caller. The broker vector is allocated: release it
 * with ccb_listener_config_clear(); other strings borrow from `c`.
 * Errors: CCB_ERR_CONFIG (bad value, no CCB_ADDRESS), CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_listener_config_load(const ccb_config *c, ccb_listener_config *out, ccb_error *err);

/** Free what ccb_listener_config_load() allocated and zero `cfg`. NULL is
 * allowed. */
CCB_API void ccb_listener_config_clear(ccb_listener_config *cfg);

/**
 * Create a listener: its command socket is bound and listening (see the
 * file comment; connections wait in the backlog until start), no thread
 * started, no broker contacted. *out is freed with ccb_listener_free().
 * Errors: CCB_ERR_INVALID_ARG (no broker, no handler, an unparsable broker,
 * command or own address; the detail names it), CCB_ERR_NOMEM, CCB_ERR_IO
 * (eventfd, or the command socket cannot be bound: the detail says where).
 */
CCB_API ccb_err ccb_listener_new(const ccb_listener_config *cfg, ccb_listener **out, ccb_error *err);

/** Start one worker thread per broker. Errors: CCB_ERR_STATE (already
 * started or stopped), CCB_ERR_IO (thread creation; nothing left running). */
CCB_API ccb_err ccb_listener_start(ccb_listener *l, ccb_error *err);

/**
 * Stop: close every registration, cancel reverse connects in progress, join
 * every thread (including running handlers, see ccb_listener_handler_fn)
 * and close every socket the listener owns. Every blocking step is
 * cancelled by a shutdown of its socket or a wake-up, so this returns
 * promptly (name resolution, which cannot be cancelled, excepted).
 * Idempotent; safe before start().
 *
 * Thread safety: from any thread, several at once (one of them joins, the
 * others wait for it). Called from one of this listener's own handlers it
 * only asks for the stop and returns at once — a thread cannot join itself;
 * the handler threads are then joined by ccb_listener_free() (or a stop
 * from any other thread), which must not be called from a handler.
 */
CCB_API void ccb_listener_stop(ccb_listener *l);

/** True once ccb_listener_stop() has been called (for handlers). */
CCB_API bool ccb_listener_stopping(ccb_listener *l);

/** Stop (if needed) and free. NULL is allowed. */
CCB_API void ccb_listener_free(ccb_listener *l);

/** Number of brokers currently registered. */
CCB_API size_t ccb_listener_num_registered(ccb_listener *l);

/**
 * Wait until at least `n` brokers are registered, or `timeout_ms` passes
 * (< 0: forever). Errors: CCB_ERR_TIMEOUT (the detail says how long it
 * waited and how many were registered), CCB_ERR_CANCELLED (the listener
 * was stopped meanwhile), CCB_ERR_INVALID_ARG.
 */
CCB_API ccb_err ccb_listener_wait_registered(ccb_listener *l, size_t n, int timeout_ms,
					     ccb_error *err);

/**
 * The contacts of the currently registered brokers, in configuration order
 * (each broker's reply CCBID, split on white space): a NULL-terminated
 * vector of *n strings released with ccb_strv_free(); an empty vector when
 * none. `n` may be NULL. Errors: CCB_ERR_INVALID_ARG, CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_listener_contacts(ccb_listener *l, char ***out, size_t *n, ccb_error *err);

/** The same joined by single spaces ("" when none): the value of a sinful's
 * CCBID parameter. *out is released with ccb_free(). Errors:
 * CCB_ERR_INVALID_ARG, CCB_ERR_NOMEM. */
CCB_API ccb_err ccb_listener_contact_list(ccb_listener *l, char **out, ccb_error *err);

/**
 * The command address without CCB parameters: "<ip:port?addrs=ip-port
 * [&alias=..]&noUDP>" for the library's command socket, or the
 * own_command_address as given. Borrowed: valid until ccb_listener_free().
 * Never changes, so any thread may read it.
 */
CCB_API const char *ccb_listener_address(const ccb_listener *l);

/**
 * The full sinful to advertise, as an HTCondor daemon writes its own:
 * the command address plus CCBID = the current contacts
 * of every registered broker (ccb_listener_contact_list(), URL-encoded) and
 * PrivNet when configured, parameters in HTCondor's order, e.g.
 * "<10.0.0.7:40123?CCBID=10.0.0.1:9618%3faddrs%3d10.0.0.1-9618#5
 * &PrivNet=node7&addrs=10.0.0.7-40123&noUDP>" (one line). It changes when
 * the contacts do (see ccb_listener_wait_change()). On success *out is the
 * caller's, released with ccb_free().
 * Errors: CCB_ERR_INVALID_ARG (NULL argument), CCB_ERR_STATE (no broker
 * registered yet: there is no CCBID to publish), CCB_ERR_NOMEM.
 * Thread-safe.
 */
CCB_API ccb_err ccb_listener_sinful(ccb_listener *l, char **out, ccb_error *err);

/**
 * A counter that changes whenever the set of contacts changes. Wait until
 * it differs from *gen (at most `timeout_ms`; 0: just look; < 0: forever),
 * then set *gen to its current value. Start with *gen = 0. CCB_OK when it
 * changed; errors: CCB_ERR_TIMEOUT (unchanged after timeout_ms),
 * CCB_ERR_CANCELLED (the listener stopped, unchanged), CCB_ERR_INVALID_ARG.
 */
CCB_API ccb_err ccb_listener_wait_change(ccb_listener *l, uint64_t *gen, int timeout_ms,
					 ccb_error *err);

/** Whether broker `index` (configuration order) is registered and its
 * register reply said CCBStreaming = true (golang-ccb). */
CCB_API bool ccb_listener_broker_supports_streaming(ccb_listener *l, size_t index);

/**
 * A JSON status dump: {"registered": N, "command_address": "<...>",
 * "contacts": "...", "brokers": [
 * {"address", "state" ("idle", "connecting", "authenticating",
 * "registering", "registered", "reconnect_wait", "stopped"), "ccbid",
 * "registered_at" (Unix s, 0 if never), "last_heartbeat" (Unix s of the
 * last ALIVE reply, 0 if none), "heartbeats_sent", "registrations",
 * "reconnects", "requests_served", "requests_failed", "streaming",
 * "last_error" (the failure the broker is being retried after; "" once
 * registered again), "last_error_at" (Unix s, 0 if none), "previous_error"
 * and "previous_error_at" (the last error a successful registration
 * cleared, "" and 0 if none)}], "reverse_connects_pending" (connecting or
 * waiting for a handler now), "reverse_connects_pending_peak",
 * "reverse_connects_refused" (requests refused for a full global or
 * per-requester cap), "handlers_running"}. Secrets (cookies, connect ids)
 * are left out. *out is released with ccb_free(). Errors:
 * CCB_ERR_INVALID_ARG, CCB_ERR_NOMEM. Thread-safe.
 */
CCB_API ccb_err ccb_listener_status_json(ccb_listener *l, char **out, ccb_error *err);

#ifdef __cplusplus
}
#endif
#endif

/*
 * libccb — the CCB broker (server): HTCondor's collector-side Condor
 * Connection Broker, wire-compatible with the CCB server of HTCondor 25's
 * collector.
 *
 * What it serves on its listen sockets:
 *   CCB_REGISTER (67, DAEMON)      a listener registers and keeps the socket;
 *                                  ALIVE heartbeats and request results flow
 *                                  on it afterwards
 *   CCB_REQUEST (68, READ)         a requester asks a registered target to
 *                                  connect back (standard) or, in streaming
 *                                  mode, to connect to the broker, which then
 *                                  splices the two sockets
 *   CCB_REVERSE_CONNECT (69, raw)  a target's hello for a streaming session
 *   DC_SEC_QUERY, DC_NOP           answered as any daemon does
 *   CCB_CMD_LIBCCB_STATUS (62001, READ) libccb's own status query: no
 *                                  payload; the reply is one CEDAR string
 *                                  holding ccb_broker_status_json()
 *
 * Design: one event-loop thread (epoll) watches the registrations and
 * requests; every table is under one lock. A small pool of handshake
 * workers accepts new connections, runs their security handshakes and
 * serves the command that follows (at once when the lock is free, else
 * before it next sleeps). A connection whose first bytes are slow to come waits in the loop,
 * with a deadline, holding no worker. Established relays run in the relay
 * engine. No thread per connection.
 *
 * Threads: ccb_broker_run() runs the loop in the calling thread.
 * ccb_broker_stop() may be called from any thread and from a signal handler.
 * ccb_broker_status_json(), ccb_broker_address() and ccb_broker_port() are
 * thread-safe. ccb_broker_free() must not race with run (stop, let run
 * return, then free).
 *
 * Memory (as in every libccb header, see ccb/error.h): a returned `const char *`
 * is borrowed, valid until its owner is freed or changed; a returned `char *`
 * or `char **out` is the caller's, released with ccb_free().
 */
#ifndef CCB_BROKER_H
#define CCB_BROKER_H

#include "ccb/export.h"

#include <stdbool.h>
#include <stddef.h>

#include "ccb/config.h"
#include "ccb/error.h"
#include "ccb/security.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ccb_broker ccb_broker;

/** Broker settings. Zero means default; strings are copied by
 * ccb_broker_new(). Times are in milliseconds (int). */
typedef struct ccb_broker_config {
	/** Addresses to listen on, comma/space separated, each "host:port",
	 * "[v6]:port" or a sinful (CCB_SERVER_LISTEN). Port 0 picks a free
	 * port (see ccb_broker_port()). NULL: "0.0.0.0:9618". */
	const char *listen;
	/** Sinful or host[:port] advertised in contacts (CCB_SERVER_PUBLIC_ADDRESS).
	 * Without a port (or port 0) the first bound port is used. NULL: the
	 * first listen address (127.0.0.1 for a wildcard one). */
	const char *public_address;
	/** Server security (SEC_*, ALLOW_*, ...); zero: defaults. Its
	 * command_perm is replaced by the broker's (67 DAEMON, 68 READ, 69
	 * ALLOW, ...). Without a sessions store the broker makes its own so
	 * clients can resume sessions. Deep-copied by ccb_broker_new(), strings
	 * included. */
	ccb_sec_server_config security;
	/** Reconnect record file (CCB_RECONNECT_FILE); NULL: records in memory only. */
	const char *reconnect_file;
	/** Reclaim a CCBID from another IP (CCB_RECONNECT_ALLOWED_FROM_ANY_IP). */
	bool reconnect_any_ip;
	/** Record pruning period (CCB_SWEEP_INTERVAL); 0: 1200 s. A record
	 * whose target stays away for more than 2 periods is dropped. */
	int sweep_interval_ms;
	/** Drop a registration silent for this long (no heartbeat, no
	 * result); 0: 3600 s (golang-ccb's TargetIdleTimeout); < 0: never
	 * (C++ behaviour). */
	int target_idle_timeout_ms;
	/** Fail a standard request the target has not answered (CCB_SERVER_REQUEST_TIMEOUT);
	 * 0: 60 s; < 0: never (C++). */
	int request_timeout_ms;
	/** Turn streaming off (CCB_SERVER_STREAMING=false). */
	bool streaming_disabled;
	/** CCB_SERVER_STREAMING_HANDSHAKE_TIMEOUT; 0: 300 s; < 0: never. */
	int streaming_handshake_timeout_ms;
	/** CCB_SERVER_MAX_STREAMING_SESSIONS / _HANDSHAKES; 0: unlimited. */
	unsigned max_streaming_sessions;
	unsigned max_streaming_handshakes;
	/** CCB_SERVER_MAX_CONNECTIONS (every socket the broker holds, relays
	 * excluded); 0: the open-file limit minus a reserve. Over it, 8 more
	 * connections are accepted for status and no-op commands only
	 * (docs/performance.md). */
	unsigned max_connections;
	/** CCB_SERVER_MAX_MESSAGE: cap on one inbound control message; 0: 64 KiB. */
	size_t max_message;
	/** CCB_SERVER_HANDSHAKE_WORKERS; 0: one per CPU (2 to 8). Threads that run the CPU-bound
	 * steps of security handshakes; a handshake waiting for its peer holds
	 * none of them (only its socket and a small fiber stack). */
	unsigned handshake_workers;
	/** CCB_SERVER_MAX_HANDSHAKES_PER_SOURCE: security handshakes one peer
	 * IP address may have in progress at once (counted from its complete
	 * first message to the end of the command's first message); a further
	 * connection from it is closed and logged; 0: 64. */
	unsigned max_handshakes_per_source;
	/** CCB_SERVER_HANDSHAKE_TIMEOUT: from accept to the end of the
	 * command's first message, and for any partly received message; 0: 20 s. */
	int handshake_timeout_ms;
	/** Relay engine threads; 0: 1. */
	unsigned relay_threads;
	/** Registrations listed one by one in the status (beyond: a count); 0: 1000. */
	size_t status_detail_max;
	/** CCB_SERVER_MAX_REQUESTS_PER_REQUESTER_TARGET: standard or streaming
	 * requests one requester IP may have pending for one CCBID; beyond it
	 * the request is answered at once with Result = false and an
	 * ErrorString naming the limit. 0: 32. */
	unsigned max_requests_per_requester_target;
	/** CCB_SERVER_MAX_RECONNECT_RECORDS: reconnect records kept (memory,
	 * and the reconnect file, which is compacted once it grows past twice
	 * that many lines). Beyond it the records of absent targets are
	 * dropped oldest first, with a log line. 0: 100000. */
	size_t max_reconnect_records;
	/** CCB_OUTBOUND_NEXT_HOP: brokers (a CCB_ADDRESS-style list) this broker
	 * registers with as an "inside CCB", and to
	 * which it forwards CCB_PROXY_CONNECT with CCBTTL decremented instead
	 * of dialing the target (implies outbound_proxy), as HTCondor's
	 * broker does with the same knob. Its own registrants are given nested
	 * contacts through those brokers ("<next hop>#<our id>#<their id>", one
	 * per next hop), their registration replies are held until the first
	 * upstream registration succeeds, and routed reverse connects from
	 * upstream are relayed to the next local registrant. NULL or "": none. */
	const char *outbound_next_hop;
	/** CCB_TUNNEL_REGISTRATION_TIMEOUT: how long a registration reply is
	 * held while the tunnel is not up before the registrant is hung up on;
	 * 0: 300 s; < 0: wait forever. */
	int tunnel_registration_timeout_ms;
	/** CCB_RECONNECT_TIME for the upstream registrations of an inside CCB,
	 * in milliseconds: 0: 60000 (see ccb_listener_config). */
	int upstream_reconnect_interval_ms;
	/** CCB_OUTBOUND_PROXY: serve CCB_PROXY_CONNECT (82, DAEMON): dial a
	 * target for the requester and splice. Implied
	 * by outbound_next_hop. */
	bool outbound_proxy;
	/** CCB_OUTBOUND_TARGET_ALLOWLIST: CIDR, IP, or host glob entries, space
	 * or comma separated; NULL: "*"; "": nothing is permitted. */
	const char *outbound_target_allowlist;
	/** CCB_OUTBOUND_TARGET_DENYLIST, consulted first; NULL: HTCondor's
	 * "127.0.0.0/8 ::1 fe80::/10 169.254.0.0/16 localhost"; "": none. */
	const char *outbound_target_denylist;
	/** CCB_OUTBOUND_TTL: this broker's hop budget (a request's CCBTTL only
	 * lowers it); 0: 8. */
	int outbound_ttl;
	/** Client security (HTCondor's SEC_CLIENT_* knobs) of every connection
	 * the broker makes itself: the upstream registrations with the next
	 * hops (CCB_REGISTER), CCB_PROXY_CONNECT forwarded to a next hop, and
	 * a CCB-routed target's broker. HTCondor's collector uses its one
	 * SEC_CLIENT_* policy for all of them, so there is one field. Zero:
	 * defaults. Deep-copied by ccb_broker_new(), strings included. */
	ccb_sec_client_config client_security;
	/** Concurrent outbound dials (each on its own thread); 0: 64. Beyond,
	 * requests are refused with the handshake-limit text. */
	unsigned outbound_max_dials;
} ccb_broker_config;

/**
 * Fill `out` from a loaded JSON config: CCB_SERVER_LISTEN, CCB_SERVER_PUBLIC_ADDRESS,
 * CCB_RECONNECT_FILE, CCB_RECONNECT_ALLOWED_FROM_ANY_IP, CCB_SWEEP_INTERVAL,
 * CCB_SERVER_TARGET_IDLE_TIMEOUT, CCB_SERVER_REQUEST_TIMEOUT,
 * CCB_SERVER_STREAMING, CCB_SERVER_STREAMING_HANDSHAKE_TIMEOUT,
 * CCB_SERVER_MAX_STREAMING_SESSIONS, CCB_SERVER_MAX_STREAMING_HANDSHAKES,
 * CCB_SERVER_MAX_CONNECTIONS, CCB_SERVER_MAX_MESSAGE,
 * CCB_SERVER_HANDSHAKE_WORKERS, CCB_SERVER_MAX_HANDSHAKES_PER_SOURCE,
 * CCB_SERVER_HANDSHAKE_TIMEOUT, CCB_SERVER_MAX_REQUESTS_PER_REQUESTER_TARGET,
 * CCB_SERVER_MAX_RECONNECT_RECORDS (all times in seconds, as HTCondor),
 * CCB_OUTBOUND_PROXY, CCB_OUTBOUND_TARGET_ALLOWLIST,
 * CCB_OUTBOUND_TARGET_DENYLIST, CCB_OUTBOUND_TTL, CCB_OUTBOUND_NEXT_HOP,
 * CCB_TUNNEL_REGISTRATION_TIMEOUT, CCB_RECONNECT_TIME (for the upstream
 * registrations), the server security knobs into out->security
 * (ccb_config_server_security()) and the client security knobs into
 * out->client_security (ccb_config_client_security()). Time knobs are in
 * seconds, as HTCondor writes them, at most 2073600 (24 days); the struct
 * holds milliseconds. Strings borrow from `c` (ccb_broker_new() copies
 * them). Errors: CCB_ERR_INVALID_ARG, CCB_ERR_CONFIG.
 */
CCB_API ccb_err ccb_broker_config_load(const ccb_config *c, ccb_broker_config *out,
				       ccb_error *err);

/**
 * Create a broker: raise RLIMIT_NOFILE's soft limit to the hard one, bind
 * and listen on every address, load the reconnect record file (a corrupt or
 * truncated file is logged and skipped record by record), start the relay
 * engine and the handshake workers. Nothing is served until
 * ccb_broker_run(). Free with ccb_broker_free().
 * Errors: CCB_ERR_INVALID_ARG, CCB_ERR_CONFIG (bad address), CCB_ERR_IO
 * (bind/listen, record file unwritable), CCB_ERR_NOMEM.
 */
CCB_API ccb_err ccb_broker_new(const ccb_broker_config *cfg, ccb_broker **out, ccb_error *err);

/**
 * Serve until ccb_broker_stop(). Returns CCB_OK after a stop (every
 * connection closed, records flushed), or CCB_ERR_STATE if already running
 * or stopped, CCB_ERR_IO if epoll fails.
 */
CCB_API ccb_err ccb_broker_run(ccb_broker *b, ccb_error *err);

/** Ask the loop to stop. Async-signal-safe (one write(2) to an eventfd);
 * callable before run (run then returns at once) and more than once. */
CCB_API void ccb_broker_stop(ccb_broker *b);

/** Stop the workers and relays, close everything, free. NULL allowed. */
CCB_API void ccb_broker_free(ccb_broker *b);

/** The public address as a sinful ("<127.0.0.1:9618?addrs=127.0.0.1-9618>";
 * its bare form, minus CCBID and PrivAddr, starts every contact the broker
 * hands out, as the collector's do); borrowed, valid until
 * ccb_broker_free(). Thread-safe. */
CCB_API const char *ccb_broker_address(const ccb_broker *b);

/** Number of listen sockets and the bound port of the i-th (-1 if out of range). */
CCB_API size_t ccb_broker_listen_count(const ccb_broker *b);
CCB_API int ccb_broker_port(const ccb_broker *b, size_t i);

/**
 * Replace the security and authorization settings (methods, levels,
 * ALLOW/DENY lists, key and certificate files) used for handshakes that
 * start from now on; established registrations and sessions stay. The
 * broker's command table and session store are kept whatever `sec` holds.
 * Deep-copied, strings included: the caller may free `sec` and its strings
 * on return. Handshakes in progress finish with the settings they started
 * with. Thread-safe (`ccbctl broker` calls it on SIGHUP). Errors:
 * CCB_ERR_INVALID_ARG, CCB_ERR_NOMEM (the old settings stay).
 */
CCB_API ccb_err ccb_broker_reload_security(ccb_broker *b, const ccb_sec_server_config *sec,
				   ccb_error *err);

/**
 * The status as JSON text: "address", "stats" (HTCondor's CCB* counter and
 * gauge names, plus libccb's own), "limits", and
 * "registrations" (ccbid, peer, name, registered and last-heartbeat wall
 * times, pending requests) — replaced by "registrations_truncated": true
 * when there are more than status_detail_max. `pretty` indents it.
 * *out is released with ccb_free(). Errors: CCB_ERR_INVALID_ARG,
 * CCB_ERR_NOMEM. Thread-safe (briefly takes the loop's state lock).
 */
CCB_API ccb_err ccb_broker_status_json(ccb_broker *b, bool pretty, char **out, ccb_error *err);

/**
 * Ask a broker at `address` (sinful or host:port) for its status over the
 * network: security handshake for CCB_CMD_LIBCCB_STATUS with `sec`
 * (NULL: defaults), then read the JSON string. *json is released with
 * ccb_free(). Errors: the dial, handshake and stream errors (CCB_ERR_CLOSED
 * when the peer does not know the command).
 */
CCB_API ccb_err ccb_broker_query_status(const char *address, const ccb_sec_client_config *sec,
				int timeout_ms, char **json, ccb_error *err);

#ifdef __cplusplus
}
#endif
#endif

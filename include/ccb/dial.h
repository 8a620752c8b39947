/*
 * libccb — the CCB requester: reach a daemon behind NAT through its broker(s).
 *
 * ccb_dial() asks the target's CCB broker(s) to have the target connect back
 * (connection reversal) and returns the reversed connection once the
 * target's hello (int 69 + ad) has been read and its ClaimId checked. The stream is then ready for the requester's
 * real command, in which the requester is the CEDAR client (e.g.
 * ccb_sec_client_start()).
 *
 * Standard mode: the requester opens a reverse-connect listen socket (or
 * a shared-port endpoint), authenticates to the broker for CCB_REQUEST and
 * sends {CCBID, ClaimId = a fresh connect id, MyAddress, Name}. A hello with
 * the right ClaimId is the success signal: a C++ broker's success reply may
 * come before, after or never. Hellos with another ClaimId are closed
 * and the wait goes on. A reply with Result=false, or the broker closing the
 * request socket, ends that broker's attempt.
 *
 * Streaming / proxy mode: for a requester that cannot accept a
 * connection. The request carries CCBStreamingRequired=true (and CCBRoute for
 * a nested contact); the broker answers {Result=true, ProxyMode=true}
 * once the target has called it back, replays the hello on the same socket
 * and from then on relays raw bytes. The hello is read under the broker
 * session; then that session is dropped and a fresh plaintext stream over the
 * same socket is returned.
 *
 * Several contacts: tried in random order with "happy eyeballs": the next
 * broker starts after `stagger_ms`, or at once when an outstanding attempt
 * fails; the first hello wins and the other attempts are cancelled (their
 * sockets shut down, threads joined). Every attempt has its own thread and
 * its own connect id. Everything is bounded by one deadline.
 *
 * Target behind condor_shared_port: when the target's sinful has
 * `sock=`, SHARED_PORT_CONNECT for that id is sent on the reversed connection
 * before it is returned.
 *
 * Errors: CCB_ERR_INVALID_ARG, CCB_ERR_NO_BROKER (no broker could be reached
 * or it broke off), CCB_ERR_AUTH (the broker refused the handshake or the
 * command), CCB_ERR_UNKNOWN_CCBID (the broker knows no such target),
 * CCB_ERR_NO_CALLBACK (request accepted but the target never called back
 * before the deadline, or the broker reported that the target failed),
 * CCB_ERR_STREAMING_UNSUPPORTED, CCB_ERR_TIMEOUT (the deadline passed before
 * the request could be made), CCB_ERR_CANCELLED, CCB_ERR_PROTOCOL,
 * CCB_ERR_NOMEM, CCB_ERR_IO (local listen socket). With several brokers the
 * detail lists every broker's failure ("broker <first>: ...; broker <second>: ...",
 * truncated to CCB_ERROR_DETAIL_SIZE; the progress callback gets them whole)
 * and the code is that of the attempt that got furthest.
 *
 * Logging: attempts are logged at CCB_LOG_DEBUG, without connect ids.
 * Thread safety: ccb_dial() may run on many threads at once; it has no
 * global state. A ccb_dial_cancel token may be fired from any thread.
 *
 * Memory (as in every libccb header, see ccb/error.h): a returned `const char *`
 * is borrowed, valid until its owner is freed or changed; a returned `char *`
 * or `char **out` is the caller's, released with ccb_free().
 */
#ifndef CCB_DIAL_H
#define CCB_DIAL_H

#include "ccb/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/error.h"
#include "ccb/security.h"
#include "ccb/sharedport.h"
#include "ccb/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Defaults of ccb_dial_config. */
#define CCB_DIAL_DEFAULT_TIMEOUT_MS 30000
#define CCB_DIAL_DEFAULT_STAGGER_MS 250
/** Oldest broker version trusted to stream (Go cedar's gate). */
#define CCB_DIAL_DEFAULT_STREAMING_VERSION 251300 /* CCB_VERSION_NUM(25, 13, 0) */
/** MyAddress of a streaming request when no return address is given: Go's
 * placeholder; golang-ccb refuses an empty one. */
#define CCB_DIAL_PROXY_PLACEHOLDER "<0.0.0.0:0>"

/** A cancellation token: fire it from any thread to make the ccb_dial() (or
 * the convenience functions) using it return CCB_ERR_CANCELLED promptly. */
typedef struct ccb_dial_cancel ccb_dial_cancel;

/** A new token, not fired, in *out; free it with ccb_dial_cancel_free()
 * once no dial uses it. Errors: CCB_ERR_INVALID_ARG (NULL out),
 * CCB_ERR_NOMEM (*out is then NULL). */
CCB_API ccb_err ccb_dial_cancel_new(ccb_dial_cancel **out, ccb_error *err);
/** Fire the token: any running dial using it stops (its attempts are
 * cancelled and joined before it returns); dials started later fail at once.
 * Any thread; idempotent; permanent. */
CCB_API void ccb_dial_cancel_fire(ccb_dial_cancel *c);
/** Whether the token was fired. Any thread. */
CCB_API bool ccb_dial_cancel_fired(ccb_dial_cancel *c);
/** Free the token. No dial may be using it. NULL is allowed. */
CCB_API void ccb_dial_cancel_free(ccb_dial_cancel *c);

/** One step of a dial, for progress reports (ccbctl prints them). */
typedef struct ccb_dial_event {
	int attempt;          /**< 1-based attempt number; 0 for the dial as a whole */
	const char *broker;   /**< broker address of the attempt, "" for the dial */
	const char *step;     /**< "connect", "authenticate", "authenticated",
			       * "request", "listen", "private network",
			       * "reverse connect", "impostor", "broker reply", "proxy",
			       * "hello", "shared port", "failed", "cancelled", "won";
			       * through an outbound broker: "connect",
			       * "authenticate", "authenticated", "request",
			       * "relay" (CCB_PROXY_CONNECT accepted), "failed" */
	int64_t elapsed_ms;   /**< since the dial started */
	ccb_err code;         /**< CCB_OK, or the failure of this step */
	const char *detail;   /**< human-readable; never contains a connect id */
	/** "authenticated" only (NULL otherwise): what the security handshake
	 * with the broker established (method, identity, encryption, the
	 * broker's version). Valid only during the call. */
	const ccb_sec_info *sec;
} ccb_dial_event;

/** Progress callback. Calls are serialized by the dial (never two at once
 * for one dial) but may come from any of its threads; the event and its
 * strings are valid only during the call. It must not block for long and must
 * not call back into the dial. */
typedef void (*ccb_dial_progress_fn)(const ccb_dial_event *ev, void *user);

/** What a successful dial did (optional output). */
typedef struct ccb_dial_info {
	char broker[256];      /**< the winning broker's address ("" for a direct dial) */
	bool proxied;          /**< streaming mode: the socket is relayed by the broker */
	bool via_shared_port;  /**< SHARED_PORT_CONNECT was sent to reach the target */
	int attempts;          /**< attempts started */
	int64_t elapsed_ms;
	/** The connection goes through an outbound broker (CCB_PROXY_CONNECT,
	 * opts->outbound_ccb_address); `broker` names it. */
	bool outbound;
} ccb_dial_info;

/** Dial options. Zero-initialise; zero / NULL fields take the default. */
typedef struct ccb_dial_config {
	/** Security settings for the brokers (CCB_REQUEST). Required. */
	const ccb_sec_client_config *broker_sec;
	/** Standard mode: the MyAddress to send, verbatim (e.g. a port forward
	 * to listen_addr). NULL: the listen socket's address, with a wildcard
	 * host replaced by the local address of the broker connection. */
	const char *my_address;
	/** Standard mode: where to listen for the reverse connection,
	 * "host", "host:port", "[v6]:port" or a sinful. NULL: the local
	 * address of the broker connection, any port. A fixed port can serve
	 * only one attempt at a time, so it makes the brokers sequential. */
	const char *listen_addr;
	/** Standard mode alternative to a listen socket: receive the reverse
	 * connection through a shared-port endpoint with this config (a
	 * NULL id is generated per attempt, a fixed one makes the brokers
	 * sequential) and advertise `sharedport_address` (the shared-port
	 * server's sinful) plus sock=<endpoint id> as MyAddress. */
	const ccb_sharedport_endpoint_config *sharedport_endpoint;
	const char *sharedport_address;
	/** Use streaming (proxy) mode. Implied by proxy_return_addr,
	 * require_streaming and by nested contacts. */
	bool streaming;
	/** MyAddress of a streaming request: the requester's own CCB sinful
	 * (ProxyReturnAddr). NULL: CCB_DIAL_PROXY_PLACEHOLDER; "" sends the
	 * empty string as HTCondor tools do (golang-ccb refuses that). */
	const char *proxy_return_addr;
	/** Streaming only: a broker that fails the capability gate fails the
	 * attempt at once with CCB_ERR_STREAMING_UNSUPPORTED and no request is
	 * sent. Without it such a broker is asked in standard mode instead, as
	 * C++ falls back, except for nested contacts. */
	bool require_streaming;
	/** Streaming capability gate: the broker's $CondorVersion$ from the
	 * handshake must be at least this CCB_VERSION_NUM. 0:
	 * CCB_DIAL_DEFAULT_STREAMING_VERSION (25.13.0); 251200 matches the C++
	 * client. An unparsable version fails the gate. */
	unsigned streaming_min_version;
	/** The caller knows the brokers stream (a register reply carried
	 * CCBStreaming=true): skip the version gate. */
	bool broker_advertises_streaming;
	/** Name sent in the request (the target description). NULL: "TOOL",
	 * as HTCondor tools send. */
	const char *name;
	/** Shared-port id of the target (the `sock=` of its sinful): sent as
	 * SHARED_PORT_CONNECT on the reversed connection. NULL: none. */
	const char *target_shared_port_id;
	/** Client name in that SHARED_PORT_CONNECT. NULL: "TOOL". */
	const char *shared_port_client_name;
	/** Whole-dial bound in ms. 0: CCB_DIAL_DEFAULT_TIMEOUT_MS. */
	int timeout_ms;
	/** Delay before the next broker starts. 0: CCB_DIAL_DEFAULT_STAGGER_MS;
	 * negative: strictly one broker at a time. */
	int stagger_ms;
	/** Optional cancellation token. */
	ccb_dial_cancel *cancel;
	/** Optional progress callback and its argument. */
	ccb_dial_progress_fn progress;
	void *progress_user;
	/** Optional output, filled on success. */
	ccb_dial_info *info;
	/** Our PRIVATE_NETWORK_NAME. ccb_dial_sinful() dials a target whose
	 * PrivNet equals it directly, as HTCondor does: at its
	 * PrivAddr when it has one, else at its host:port with the CCBID
	 * ignored; no fall-back to CCB. NULL or "": never. */
	const char *private_network_name;
	/** OUTBOUND_CCB_ADDRESS: brokers (space or comma
	 * separated sinfuls / host:port) through which ccb_dial_sinful() and
	 * ccb_dial_command() make every connection: a broker is asked with
	 * CCB_PROXY_CONNECT (DAEMON authorization, broker_sec or defaults) to
	 * dial the target's sinful itself (directly, through its shared port or
	 * through its own CCB) and splice; the returned stream is the raw relay,
	 * on which the caller's CEDAR handshake runs end to end. Brokers are
	 * tried in random order, one at a time; there is no fall-back to a
	 * direct or CCB connection. HTCondor's exceptions are dialed directly:
	 * a loopback or local-interface target, this host's name, or one of the
	 * brokers themselves (unless outbound_force). NULL or "": off. ccb_dial()
	 * (contacts, not a sinful) ignores it. */
	const char *outbound_ccb_address;
	/** CCBTTL sent with CCB_PROXY_CONNECT (CCB_OUTBOUND_TTL); 0: 8. */
	int outbound_ttl;
	/** Route through outbound_ccb_address even for HTCondor's exceptions
	 * (ccbctl --outbound). */
	bool outbound_force;
} ccb_dial_config;

/**
 * Reach the target registered as `contacts[0..n-1]` (CCB contacts
 * "<broker>#<ccbid>[#<id>...]", e.g. from ccb_sinful_ccb_contacts()) and
 * return in *out the reversed connection, its hello validated, ready for the
 * requester's command (see the file comment). The caller frees *out with
 * ccb_stream_free(). The dial's deadline (timeout_ms) does not follow the
 * stream: it is returned with no deadline and the default per-operation
 * timeout (CCB_STREAM_DEFAULT_TIMEOUT_MS); set your own with
 * ccb_stream_set_timeout() / ccb_stream_set_deadline().
 * On failure *out is NULL and no thread, socket or listen port is left.
 * Errors: see the file comment. A contact that does not parse fails its own
 * attempt (CCB_ERR_INVALID_ARG) only. Thread-safe.
 */
CCB_API ccb_err ccb_dial(const char *const *contacts, size_t n, const ccb_dial_config *opts,
		 ccb_stream **out, ccb_error *err);

/**
 * Reach the daemon at sinful `address` (anything ccb_sinful_parse_address()
 * takes): directly when its PrivNet is opts->private_network_name (see
 * there), else through CCB with all the contacts of its CCBID parameter when it
 * has one (its sock= then becomes opts->target_shared_port_id), through its
 * shared-port server when it has sock=, directly otherwise. opts may be NULL
 * for a direct or shared-port dial (broker_sec is needed only for CCB).
 * The returned stream as for ccb_dial(): no deadline, the default
 * per-operation timeout, whichever way it was reached. Errors: as ccb_dial(), plus
 * CCB_ERR_PARSE for a bad address and the connect errors of
 * ccb_tcp_connect() / ccb_sharedport_dial() (CCB_ERR_IO, CCB_ERR_TIMEOUT,
 * CCB_ERR_NOT_FOUND) for a direct dial. Thread-safe.
 */
CCB_API ccb_err ccb_dial_sinful(const char *address, const ccb_dial_config *opts, ccb_stream **out,
			ccb_error *err);

/**
 * ccb_dial_sinful(), then the CEDAR client side of `command` (see
 * ccb_sec_client_start(); `auth_command` as there) with `target_sec` against
 * the target, all within opts->timeout_ms. On success *out is the
 * authenticated stream ready for the command's payload, with no deadline
 * and the default per-operation timeout (set your own with
 * ccb_stream_set_timeout()), and *info what the handshake established
 * (may be NULL). Errors: those of
 * ccb_dial_sinful() and of ccb_sec_client_start(). Thread-safe.
 */
CCB_API ccb_err ccb_dial_command(const char *address, const ccb_dial_config *opts,
			 const ccb_sec_client_config *target_sec, int command, int auth_command,
			 ccb_stream **out, ccb_sec_info *info, ccb_error *err);

#ifdef __cplusplus
}
#endif
#endif

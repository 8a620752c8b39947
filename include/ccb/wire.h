/*
 * libccb — CCB wire helpers: control ads, the reverse-connect hello, result
 * reports, and typed attribute access with protocol-level errors.
 *
 * Message shapes:
 *
 * - A control message is one CEDAR message holding exactly one ClassAd
 *   (register ad and reply, forwarded request, result report, ALIVE, broker
 *   replies). It is capped at CCB_CONTROL_MAX_MESSAGE bytes in both
 *   directions, as the Go implementation caps it on read.
 *
 * - The reverse-connect hello is ONE message: the int CCB_REVERSE_CONNECT
 *   (69) followed by one ClassAd {ClaimId, RequestID, MyAddress[, CCBRoute,
 *   CCBOriginalRequester, CCBPriorHop]}. It is the first message of a fresh
 *   connection with no security handshake, so the C++ target writes ClaimId
 *   behind the "ZKM" marker (peer version unknown).
 *   After it, both ends reset their handshake digests
 *   and the connection carries an ordinary CEDAR command exchange in which
 *   the requester is the client. The hello helpers below do the reset.
 *
 * Errors: every fallible function returns a ccb_err and, if `err` is not
 * NULL, fills it with a detail naming the step (and, for stream failures,
 * the stream's own detail, which also stays in ccb_stream_error()). A peer's
 * protocol violation is CCB_ERR_PROTOCOL; a failed read leaves the stream
 * broken (the connection should be closed), a refused write (too large, bad
 * argument) sends nothing and leaves it usable. Nothing is printed.
 *
 * Memory (as in every libccb header, see ccb/error.h): ads returned through
 * `out` are new and owned by the caller (ccb_classad_free()), and *out is NULL
 * on failure; input ads are only read. A returned `const char *` is borrowed,
 * valid until its owner is freed or changed; a returned `char *` or
 * `char **out` is the caller's, released with ccb_free().
 *
 * Thread safety: no global state. A stream or ad must not be used by two
 * threads at once (see ccb/stream.h, ccb/classad.h); distinct streams and
 * ads may be used concurrently.
 */
#ifndef CCB_WIRE_H
#define CCB_WIRE_H

#include "ccb/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/attributes.h"
#include "ccb/classad.h"
#include "ccb/commands.h"
#include "ccb/error.h"
#include "ccb/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Cap on one CCB control or hello message body (64 KiB).
 * C++ has no CCB-specific cap; every legitimate message is far smaller. */
#define CCB_CONTROL_MAX_MESSAGE (64 * 1024)

/* ---- building ads (Go's ccb.NewAd) ---------------------------------------- */

/** One attribute for ccb_ad_new(). Build it with the CCB_AD_* macros. */
typedef struct ccb_ad_field {
	const char *name;
	ccb_value_type type; /**< CCB_VAL_INT, CCB_VAL_BOOL or CCB_VAL_STRING */
	int64_t i;
	bool b;
	const char *s; /**< NULL: the attribute is left out (optional field) */
} ccb_ad_field;

/** Initializers for an array of ccb_ad_field. */
#define CCB_AD_INT(n, v) {.name = (n), .type = CCB_VAL_INT, .i = (v)}
#define CCB_AD_BOOL(n, v) {.name = (n), .type = CCB_VAL_BOOL, .b = (v)}
#define CCB_AD_STRING(n, v) {.name = (n), .type = CCB_VAL_STRING, .s = (v)}
/** Number of elements of a ccb_ad_field array (not a pointer). */
#define CCB_AD_NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/**
 * New ad holding `fields` in order (a later field of the same name wins).
 * String fields with a NULL value are skipped, so optional attributes can be
 * listed unconditionally. Example, the ALIVE heartbeat:
 *
 *     ccb_ad_field f[] = {CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_ALIVE)};
 *     ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, &err);
 *
 * Errors: CCB_ERR_INVALID_ARG (NULL out, NULL fields with n > 0, bad name or
 * type, unsendable string; the detail names the field), CCB_ERR_NOMEM.
 * Thread-safe.
 */
CCB_API ccb_err ccb_ad_new(const ccb_ad_field *fields, size_t n, ccb_classad **out, ccb_error *err);

/* ---- reading attributes with protocol errors -------------------------------
 * ccb_classad_get_* already tell an absent attribute (CCB_ERR_NOT_FOUND)
 * from one of another type (CCB_ERR_TYPE). These wrappers are for checking a
 * peer's ad: both cases become CCB_ERR_PROTOCOL with a detail such as
 * "missing string attribute ClaimId" or "attribute RequestID is int, not
 * string", ready to report or log. C++ lookups are type-strict in the same
 * way. All are thread-safe for distinct ads; returned
 * strings borrow from the ad.
 */

/** Required string attribute. Errors: CCB_ERR_INVALID_ARG, CCB_ERR_PROTOCOL. */
CCB_API ccb_err ccb_ad_need_string(const ccb_classad *ad, const char *name, const char **v,
			   ccb_error *err);
/** Required integer attribute. Errors: CCB_ERR_INVALID_ARG, CCB_ERR_PROTOCOL. */
CCB_API ccb_err ccb_ad_need_int(const ccb_classad *ad, const char *name, int64_t *v, ccb_error *err);
/** Required boolean attribute. Errors: CCB_ERR_INVALID_ARG, CCB_ERR_PROTOCOL. */
CCB_API ccb_err ccb_ad_need_bool(const ccb_classad *ad, const char *name, bool *v, ccb_error *err);

/**
 * A decimal id such as RequestID or a request's bare CCBID: the wire form is
 * a ClassAd string of 1-20 digits; a
 * non-negative ClassAd integer is accepted as well, for lenient peers. The
 * value must fit in 64 bits. Errors: CCB_ERR_INVALID_ARG, CCB_ERR_PROTOCOL
 * (absent, another type, not all digits, too large; detail says which).
 */
CCB_API ccb_err ccb_ad_need_decimal(const ccb_classad *ad, const char *name, uint64_t *v,
			    ccb_error *err);

/** The string attribute `name`, or `dflt` when it is absent or not a string
 * (Go's ccb.AdString with a chosen default). For optional, informational
 * fields (Name, ErrorString). `ad` may be NULL. */
CCB_API const char *ccb_ad_string_or(const ccb_classad *ad, const char *name, const char *dflt);
/** The boolean attribute `name`, or `dflt` when absent or not a boolean
 * (Go's ccb.AdBool). A reply without Result reads as failed with dflt
 * false, as in C++ and Go. `ad` may be NULL. */
CCB_API bool ccb_ad_bool_or(const ccb_classad *ad, const char *name, bool dflt);

/* ---- control messages (Go's WriteControlAd / ReadControlAd) ---------------- */

/**
 * Send `ad` as one control message: the ad, then end of message.
 * Private attributes (ClaimId) are sent, wrapped per
 * `peer_version` as C++ does: pass the version the peer
 * announced in the security handshake (CCB_VERSION_NUM), or 0 if unknown,
 * which puts ClaimId behind the "ZKM" marker.
 *
 * The ad is encoded first and refused with CCB_ERR_TOO_LARGE, without
 * sending anything, if its body exceeds CCB_CONTROL_MAX_MESSAGE bytes; the
 * stream stays usable then. `s` must have no partly built outbound message.
 * Errors: CCB_ERR_INVALID_ARG (NULL s or ad), CCB_ERR_STATE (message being
 * built), CCB_ERR_TOO_LARGE, CCB_ERR_NOMEM, and the stream's send errors
 * (CCB_ERR_TIMEOUT, CCB_ERR_CLOSED, CCB_ERR_IO, ...).
 */
CCB_API ccb_err ccb_control_ad_write(ccb_stream *s, const ccb_classad *ad, unsigned peer_version,
			     ccb_error *err);

/**
 * Read one control message: exactly one ad, then end of message ("ZKM"
 * secrets unwrapped). For the read the stream's message cap is set to
 * CCB_CONTROL_MAX_MESSAGE, so a bigger message is refused before its body is
 * buffered; afterwards the cap is set back to CCB_STREAM_DEFAULT_MAX_MESSAGE
 * (stream.h has no getter to restore a caller's own value).
 * Must be called between messages (nothing of the current one unread).
 * The ad's content is not checked; use ccb_ad_need_*().
 * Errors: CCB_ERR_INVALID_ARG, CCB_ERR_STATE (a message is partly read),
 * CCB_ERR_TOO_LARGE, CCB_ERR_PROTOCOL (malformed ad, or bytes left after the
 * ad, e.g. two ads in one message), and the stream's read errors
 * (CCB_ERR_TIMEOUT, CCB_ERR_CLOSED, ...). Every failure except
 * CCB_ERR_INVALID_ARG and CCB_ERR_STATE leaves the stream broken.
 */
CCB_API ccb_err ccb_control_ad_read(ccb_stream *s, ccb_classad **out, ccb_error *err);

/* ---- the reverse-connect hello ---------- */

/**
 * Build a hello ad {ClaimId = connect_id, RequestID = request_id, MyAddress =
 * my_address} (all strings). `connect_id` is required and non-empty;
 * `request_id` and `my_address` may be NULL to leave them out (the C++
 * broker's old-client hello has no RequestID; the Go implementation leaves
 * out empty values). Errors: CCB_ERR_INVALID_ARG, CCB_ERR_NOMEM.
 * Thread-safe.
 */
CCB_API ccb_err ccb_hello_ad_new(const char *connect_id, const char *request_id, const char *my_address,
			 ccb_classad **out, ccb_error *err);

/**
 * Build the hello a listener sends for a forwarded CCB_REQUEST, as C++ does:
 * ClaimId, RequestID and MyAddress
 * (the address to dial, not the listener's own) copied from `request`, plus
 * CCBRoute when non-empty and CCBOriginalRequester / CCBPriorHop when
 * present as strings. C++ aborts the whole daemon when the request lacks a
 * string MyAddress, ClaimId or RequestID; here that is
 * CCB_ERR_PROTOCOL with the attribute named. Errors: CCB_ERR_INVALID_ARG,
 * CCB_ERR_PROTOCOL, CCB_ERR_NOMEM. Thread-safe.
 */
CCB_API ccb_err ccb_hello_ad_from_request(const ccb_classad *request, ccb_classad **out,
				  ccb_error *err);

/**
 * Send the hello on a freshly connected `s`: int CCB_REVERSE_CONNECT, the
 * ad, end of message, all in one message with no security handshake before
 * it. `peer_version` is 0 on a fresh
 * reverse connection, which puts ClaimId behind the "ZKM" marker exactly as
 * the C++ target does; a broker replaying a
 * target's hello to a requester on an authenticated socket passes that
 * peer's version instead.
 *
 * After a successful send the stream's handshake digests are reset
 * (ccb_stream_reset_digests(), as the C++ listener does), so the
 * following exchange, in which this side is the server, authenticates as if
 * the connection had started here. (On a stream that already has an AES key,
 * as in the broker's replay, the reset also changes the AAD of its later
 * encrypted packets; CCB never sends any: that socket becomes a raw relay.)
 *
 * `hello` must hold a non-empty string ClaimId; RequestID, MyAddress,
 * CCBRoute, CCBOriginalRequester and CCBPriorHop, if present, must be
 * strings. The message is refused (nothing sent, stream usable) if it would
 * exceed CCB_CONTROL_MAX_MESSAGE. Errors: CCB_ERR_INVALID_ARG (NULL, bad
 * hello ad), CCB_ERR_STATE (message being built), CCB_ERR_TOO_LARGE,
 * CCB_ERR_NOMEM, and the stream's send errors.
 */
CCB_API ccb_err ccb_hello_write(ccb_stream *s, const ccb_classad *hello, unsigned peer_version,
			ccb_error *err);

/**
 * Read a hello as the first message of a reverse connection (requester) or
 * of a broker's streaming rendezvous: the int, the ad, end of message, and
 * the checks of ccb_hello_read_ad(). Must be called between messages. The
 * message cap is handled as in ccb_control_ad_read().
 */
CCB_API ccb_err ccb_hello_read(ccb_stream *s, const char *expect_connect_id, ccb_classad **out,
		       ccb_error *err);

/**
 * Read the rest of a hello whose command int `cmd` a dispatcher has already
 * taken from the current message (Go's ReadReverseConnectAd): the ad and end
 * of message, from the SAME message.
 *
 * Checks, as the C++ requester and broker make them:
 * `cmd` is CCB_REVERSE_CONNECT; exactly one ad fills the message; ClaimId is
 * a non-empty string; RequestID, MyAddress, CCBRoute, CCBOriginalRequester
 * and CCBPriorHop are strings when present (every implementation writes
 * them so; a C++ listener aborts on anything else). When `expect_connect_id`
 * is not NULL, ClaimId must equal it. A broker that looks sessions up by
 * connect id passes NULL and does its own lookup. Requesters must not rely
 * on other attributes: golang-ccb synthesizes the replayed hello.
 *
 * On success the stream's handshake digests have been reset:
 * the caller can
 * start its real command (DC_AUTHENTICATE ...) on `s` as the client. A
 * caller that rejects the hello afterwards just closes the stream. A
 * streaming requester reads the broker's replayed hello under the broker
 * session's key and then starts a fresh plaintext exchange over the same
 * fd, e.g. ccb_stream_detach_fd() and a new stream.
 *
 * Errors: CCB_ERR_INVALID_ARG, CCB_ERR_TOO_LARGE, CCB_ERR_PROTOCOL (wrong
 * command, malformed or missing/mistyped attribute, connect id mismatch,
 * bytes after the ad; the detail says which), and the stream's read errors.
 * Every failure except CCB_ERR_INVALID_ARG (and CCB_ERR_STATE from
 * ccb_hello_read()) leaves the stream broken: close it.
 */
CCB_API ccb_err ccb_hello_read_ad(ccb_stream *s, int64_t cmd, const char *expect_connect_id,
			  ccb_classad **out, ccb_error *err);

/**
 * The result report a listener sends up its registration socket after a
 * reverse connect: a copy of `hello`
 * plus Result = `success` and, when `error_string` is not NULL,
 * ErrorString. C++ sends no ErrorString on success. Send it with
 * ccb_control_ad_write(). Errors: CCB_ERR_INVALID_ARG, CCB_ERR_NOMEM.
 * Thread-safe.
 */
CCB_API ccb_err ccb_result_ad_new(const ccb_classad *hello, bool success, const char *error_string,
			  ccb_classad **out, ccb_error *err);

#ifdef __cplusplus
}
#endif
#endif

/*
 * libccb — ClassAd attribute names of the CCB protocol.
 *
 * Each macro is HTCondor's ATTR_* name from condor_attributes.h with a CCB_
 * prefix, and its value is the exact wire spelling (attribute names are
 * case-insensitive on read, but HTCondor writes these spellings and so do
 * we). Names that HTCondor only writes as string literals (the streaming
 * extension) follow the same pattern. Which message carries which attribute,
 * and with which type, is described with the functions of ccb/wire.h. A few
 * names come from the Go implementation (golang-ccb) only.
 */
#ifndef CCB_ATTRIBUTES_H
#define CCB_ATTRIBUTES_H

#include "ccb/export.h"

/* ---- core protocol -------------------------- */

/** int: command of a control ad (67 register, 68 forwarded request, 441 ALIVE). */
#define CCB_ATTR_COMMAND "Command"
/** string: peer description, for logs only. */
#define CCB_ATTR_NAME "Name"
/** string: contact or contact list (register, reply), bare id (request). */
#define CCB_ATTR_CCBID "CCBID"
/** string, private: reconnect cookie or connect id. Travels behind the "ZKM"
 * marker when the peer's version is unknown. */
#define CCB_ATTR_CLAIM_ID "ClaimId"
/** string (sinful): where the target dials back, or the proxy-connect target. */
#define CCB_ATTR_MY_ADDRESS "MyAddress"
/** string holding a decimal number: broker's request id. */
#define CCB_ATTR_REQUEST_ID "RequestID"
/** bool: outcome in broker replies and listener result reports. */
#define CCB_ATTR_RESULT "Result"
/** string: failure text in replies and results. */
#define CCB_ATTR_ERROR_STRING "ErrorString"

/* ---- tunnelling and outbound proxy ----------- */

/** int: hop budget of a CCB_PROXY_CONNECT. */
#define CCB_ATTR_CCB_TTL "CCBTTL"
/** string: space-separated bare CCBIDs still to traverse. */
#define CCB_ATTR_CCB_ROUTE "CCBRoute"
/** string: "<user> at <peer>", stamped by the entry broker; audit only. */
#define CCB_ATTR_CCB_ORIGINAL_REQUESTER "CCBOriginalRequester"
/** string: the forwarding broker's own address; audit only. */
#define CCB_ATTR_CCB_PRIOR_HOP "CCBPriorHop"

/* ---- streaming ------------------------------------- */

/** bool: requester asks the broker to proxy (always set it explicitly). */
#define CCB_ATTR_CCB_STREAMING_REQUIRED "CCBStreamingRequired"
/** bool: broker reply saying the connection is proxied on this socket. */
#define CCB_ATTR_PROXY_MODE "ProxyMode"
/** bool: golang-ccb register reply only; C++ neither sends nor reads it. */
#define CCB_ATTR_CCB_STREAMING "CCBStreaming"
/** bool: understood by the Go requester in a failure reply; emitted by no
 * broker. */
#define CCB_ATTR_CCB_STREAMING_UNSUPPORTED "CCBStreamingUnsupported"

#endif

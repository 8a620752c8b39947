/*
 * Outbound proxy (CCB_PROXY_CONNECT, ccb-protocol.md §9.1): the requester's
 * exchange, shared by ccb_dial_sinful() (OUTBOUND_CCB_ADDRESS) and by a broker
 * forwarding to its next hop, and the request/target checks a broker makes.
 * Not installed.
 *
 * Include as "outbound.h": only src/ccb/dial.c, src/ccb/broker*.c and the
 * outbound tests, fuzzer and benchmark.
 */
#ifndef CCB_OUTBOUND_H
#define CCB_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccb/classad.h"
#include "ccb/dial.h"
#include "ccb/error.h"
#include "ccb/security.h"

/** HTCondor's CCB_OUTBOUND_TTL default (param_info.in). */
#define CCB_OUTBOUND_DEFAULT_TTL 8
/** HTCondor's CCB_OUTBOUND_TARGET_DENYLIST default (param_info.in). */
#define CCB_OUTBOUND_DEFAULT_DENYLIST "127.0.0.0/8 ::1 fe80::/10 169.254.0.0/16 localhost"

/** One CCB_PROXY_CONNECT exchange parameters. */
typedef struct ccb__outbound_req {
	const char *brokers;  /* space/comma list; tried in random order, one at a time */
	const char *target;   /* the sinful the (exit) broker is to dial */
	int ttl;              /* CCBTTL, always sent (0 included) */
	const char *name;     /* Name; NULL: "TOOL" */
	const ccb_sec_client_config *sec; /* NULL: defaults */
	unsigned min_version; /* broker version gate; 0: 25.13.0 */
	int64_t deadline_ms;
	int64_t t0_ms;        /* for progress events */
	ccb_dial_cancel *cancel;
	ccb_dial_progress_fn progress;
	void *progress_user;
	char *won;            /* out: the broker that accepted (optional) */
	size_t won_size;
	/* Optional: told the broker socket's fd once connected and -1 when it
	 * is given up, so another thread may shutdown() it to cancel. */
	void (*on_socket)(int fd, void *user);
	void *socket_user;
} ccb__outbound_req;

/* Ask the brokers to dial req->target; on success *fd is the raw relayed
 * socket (the broker's session dropped; nothing read past the reply).
 * Errors: CCB_ERR_INVALID_ARG, CCB_ERR_NO_BROKER (every broker unreachable,
 * refused, too old or failed; the detail names each), CCB_ERR_AUTH,
 * CCB_ERR_CANCELLED, CCB_ERR_TIMEOUT, CCB_ERR_NOMEM. */
ccb_err ccb__outbound_connect(const ccb__outbound_req *req, int *fd, ccb_error *err);

/* HTCondor's exceptions to OUTBOUND_CCB_ADDRESS (sock.cpp
 * bypassOutboundCCBForTarget): true when `target` should be dialed directly:
 * no host, a loopback or local-interface address, this host's name, or one
 * of the brokers in `brokers`. */
bool ccb__outbound_bypass(const char *target, const char *brokers);

/* A broker's reading of a CCB_PROXY_CONNECT ad: target (MyAddress) and
 * connect id (ClaimId) as strings, TTL = min(CCBTTL or local, local).
 * Returns NULL on success (pointers borrow from the ad), else the wire error
 * text to reply. */
const char *ccb__outbound_parse(const ccb_classad *ad, int local_ttl, const char **target,
				const char **connect_id, long long *ttl);

/* The broker's target check (ccb_server.cpp OutboundTargetAllowed): deny
 * list first (a match refuses), then the allow list (NULL: "*"; "": nothing).
 * `deny` NULL: CCB_OUTBOUND_DEFAULT_DENYLIST. Host names are resolved and
 * every address checked against CIDR entries; an unresolvable name is
 * refused. Entries: CIDR ("10.0.0.0/8"), a bare IP, or a case-insensitive
 * glob on the host text ("*.example.com", "*"). `why` gets the reason of a
 * refusal. Blocking (DNS): never on the broker's loop thread. */
bool ccb__outbound_target_allowed(const char *target, const char *allow, const char *deny,
				  char *why, size_t why_size);
/* The same; with !may_resolve a host name is refused without a lookup
 * (the fuzz target: no DNS traffic). */
bool ccb__outbound_target_check(const char *target, const char *allow, const char *deny,
				bool may_resolve, char *why, size_t why_size);

/* ccb_dial_sinful()'s hook: whether opts route `address` through an
 * outbound broker, and doing it (progress events, info filled). */
bool ccb__dial_outbound_wanted(const ccb_dial_config *o, const char *address);
ccb_err ccb__dial_outbound(const char *address, const ccb_dial_config *o, int64_t t0,
			   int64_t deadline, ccb_stream **out, ccb_error *err);

#endif

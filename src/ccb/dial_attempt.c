/*
 * One dial attempt against one broker (dial_internal.h), on its own thread:
 * connect and authenticate (CCB_REQUEST), open the return path (a listen
 * socket, a shared-port endpoint, or none when streaming), send the request,
 * then wait for the target's reverse connection (§6.5, §6.7) or take over
 * the request socket as a relay (§7.6).
 * Wire reference: ccb-protocol.md §6 (standard request), §7 (streaming),
 * §12 (broker error texts).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ccb/addr.h"
#include "ccb/attributes.h"
#include "ccb/classad.h"
#include "ccb/commands.h"
#include "ccb/wire.h"
#include "cedar/connect.h"
#include "security/policy.h"
#include "util/util.h"
#include "dial_internal.h"

/* What one attempt holds while it runs; released by attempt_release(). */
typedef struct attempt_ctx {
	ccb_contact c;
	ccb_sinful *baddr;
	int port;
	bool streaming, nested;
	ccb_stream *bs; /* the broker connection */
	ccb_sec_info info;
	unsigned peer_num;
	char local_ip[CCB_ADDR_IP_SIZE]; /* our end of the broker connection */
	char connect_id[CCB_CONNECT_ID_SIZE];
	/* the return path */
	int lfd;
	ccb_sharedport_endpoint *ep;
	char *my_address, *route;
	char *broker_text; /* the broker address the handshake names */
} attempt_ctx;

/* ---- state shared with the race ----------------------------------------- */

static bool stopping(race *r)
{
	bool s;

	pthread_mutex_lock(&r->mu);
	s = r->stop;
	pthread_mutex_unlock(&r->mu);
	return s;
}

/* Make `s` (or NULL to clear) reachable for a canceller; a stream
 * registered after the stop is shut down at once. */
static void reg_stream(attempt *a, int slot, ccb_stream *s)
{
	pthread_mutex_lock(&a->r->mu);
	a->reg[slot] = s;
	if (s && a->r->stop)
		ccb_stream_shutdown(s);
	pthread_mutex_unlock(&a->r->mu);
}

static void reg_endpoint(attempt *a, ccb_sharedport_endpoint *ep)
{
	pthread_mutex_lock(&a->r->mu);
	a->reg_ep = ep;
	if (ep && a->r->stop)
		ccb_sharedport_endpoint_shutdown(ep);
	pthread_mutex_unlock(&a->r->mu);
}

void ccb__dial_shutdown_registered(attempt *a)
{
	for (int i = 0; i < 2; i++)
		if (a->reg[i])
			ccb_stream_shutdown(a->reg[i]);
	if (a->reg_ep)
		ccb_sharedport_endpoint_shutdown(a->reg_ep);
}

/* Record the attempt's failure: a stop turns any failure into CANCELLED. */
static ccb_err fail(attempt *a, ccb_err code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static ccb_err fail(attempt *a, ccb_err code, const char *fmt, ...)
{
	char msg[CCB_ERROR_DETAIL_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (stopping(a->r) && code != CCB_OK) {
		code = CCB_ERR_CANCELLED;
		snprintf(msg, sizeof msg, "cancelled");
	}
	a->code = code;
	snprintf(a->detail, sizeof a->detail, "broker %s: %s", a->broker, msg);
	return code;
}

static long long since_request(const attempt *a)
{
	return (long long)(ccb_now_ms() - a->requested_at);
}

/* ---- the return path (§6.7) ----------------------------------------------- */

/* Numeric host of a socket address; false if it is not IP. */
static bool sockaddr_ip(const struct sockaddr_storage *ss, char *ip, size_t n, int *port)
{
	if (getnameinfo((const struct sockaddr *)ss, sizeof *ss, ip, (socklen_t)n, NULL, 0,
			NI_NUMERICHOST) != 0)
		return false;
	if (port)
		*port = ss->ss_family == AF_INET6
				? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
				: ntohs(((const struct sockaddr_in *)ss)->sin_port);
	/* Drop a scope suffix ("fe80::1%eth0"): sinful hosts carry none. */
	char *pct = strchr(ip, '%');
	if (pct)
		*pct = '\0';
	return ss->ss_family == AF_INET || ss->ss_family == AF_INET6;
}

static bool ip_is_wildcard(const char *ip)
{
	return !strcmp(ip, "0.0.0.0") || !strcmp(ip, "::");
}

/* "<ip:port>" as a sinful; NULL when out of memory or bad. */
static char *sinful_of(const char *ip, int port)
{
	ccb_sinful *s = NULL;
	char *txt;

	if (ccb_sinful_new(ip, port, &s, NULL))
		return NULL;
	ccb_sinful_format(s, &txt, NULL);
	ccb_sinful_free(s);
	return txt;
}

/* Open the reverse-connect listen socket of a standard request (§6.7) and
 * work out the MyAddress to send. `local_ip` is our end of the broker
 * connection. */
static ccb_err open_listener(attempt *a, const char *local_ip, int *lfd, char **my_address)
{
	const ccb_dial_config *o = a->r->o;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[CCB_ADDR_IP_SIZE + 200], portstr[8], ip[CCB_ADDR_IP_SIZE];
	int port = 0, fd = -1, one = 1, gai, bport;

	*lfd = -1;
	*my_address = NULL;
	snprintf(host, sizeof host, "%s", local_ip);
	if (o->listen_addr) {
		ccb_sinful *ls = NULL;
		ccb_error e;

		if (ccb_sinful_parse_address(o->listen_addr, &ls, &e))
			return fail(a, CCB_ERR_INVALID_ARG, "listen address: %s", e.detail);
		snprintf(host, sizeof host, "%s", ccb_sinful_host(ls));
		port = ccb_sinful_port(ls) > 0 ? ccb_sinful_port(ls) : 0;
		ccb_sinful_free(ls);
	}
	snprintf(portstr, sizeof portstr, "%d", port);
	gai = getaddrinfo(host, portstr, &hints, &res);
	if (gai != 0)
		return fail(a, CCB_ERR_IO, "listen: resolve %s: %s", host, gai_strerror(gai));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 16) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
	    !sockaddr_ip(&ss, ip, sizeof ip, &bport)) {
		int e = errno;
		freeaddrinfo(res);
		if (fd >= 0)
			close(fd);
		return fail(a, CCB_ERR_IO, "listen on %s:%d: %s", host, port, ccb__strerror(e));
	}
	freeaddrinfo(res);
	if (o->my_address)
		*my_address = ccb_strdup(o->my_address);
	else
		*my_address = sinful_of(ip_is_wildcard(ip) ? local_ip : ip, bport);
	if (!*my_address) {
		close(fd);
		return fail(a, CCB_ERR_NOMEM, "listen: out of memory");
	}
	*lfd = fd;
	return CCB_OK;
}

/* Shared-port endpoint for the reverse connection (§6.7). */
static ccb_err open_endpoint(attempt *a, ccb_sharedport_endpoint **ep, char **my_address)
{
	const ccb_dial_config *o = a->r->o;
	ccb_sinful *s = NULL;
	ccb_error e;

	*ep = NULL;
	*my_address = NULL;
	if (!o->sharedport_address)
		return fail(a, CCB_ERR_INVALID_ARG, "sharedport_endpoint needs sharedport_address");
	if (ccb_sharedport_endpoint_new(o->sharedport_endpoint, ep, &e))
		return fail(a, e.code, "shared-port endpoint: %s", e.detail);
	if (ccb_sinful_parse_address(o->sharedport_address, &s, &e) ||
	    ccb_sinful_set_param(s, CCB_SINFUL_SOCK, ccb_sharedport_endpoint_id(*ep), &e) ||
	    ccb_sinful_format(s, my_address, &e)) {
		ccb_sinful_free(s);
		ccb_sharedport_endpoint_free(*ep);
		*ep = NULL;
		return fail(a, CCB_ERR_INVALID_ARG, "shared-port address: %s", e.detail);
	}
	ccb_sinful_free(s);
	return CCB_OK;
}

/* Map a broker's failure reply to a code (§12 texts; golang-ccb's in §6.2). */
static ccb_err reply_code(const ccb_classad *reply, const char *text)
{
	if (ccb_ad_bool_or(reply, CCB_ATTR_CCB_STREAMING_UNSUPPORTED, false) ||
	    (strstr(text, "streaming") && strstr(text, "disabled")))
		return CCB_ERR_STREAMING_UNSUPPORTED;
	if (strstr(text, "no daemon is currently registered") ||
	    strstr(text, "no target registered for ccbid") || strstr(text, "invalid CCBID") ||
	    strstr(text, "bad target CCBID") || strstr(text, "invalid tunnel route"))
		return CCB_ERR_UNKNOWN_CCBID;
	if (strstr(text, "limit reached"))
		return CCB_ERR_LIMIT;
	return CCB_ERR_NO_CALLBACK;
}

/* ---- the broker's reply and the target's call-back -------------------------- */

static ccb_err handle_reply(attempt *a, ccb_stream *bs, bool streaming, bool *ok)
{
	ccb_classad *reply = NULL;
	ccb_error e;
	const char *text;
	ccb_err rc;

	*ok = false;
	if (ccb_control_ad_read(bs, &reply, &e)) {
		/* Say what happened, not why: the broker may have lost the
		 * target, been stopped, or refused us without a reply. */
		if (e.code == CCB_ERR_CLOSED)
			return fail(a, CCB_ERR_NO_CALLBACK,
				    "the broker closed the connection without a reply");
		if (e.code == CCB_ERR_TIMEOUT)
			return fail(a, CCB_ERR_NO_CALLBACK,
				    "reading the reply timed out after %lld ms: the target did "
				    "not call back",
				    since_request(a));
		return fail(a, e.code == CCB_ERR_CANCELLED ? e.code : CCB_ERR_NO_BROKER,
			    "read reply: %s", e.detail);
	}
	a->phase = PH_REPLIED;
	text = ccb_ad_string_or(reply, CCB_ATTR_ERROR_STRING, "");
	if (!ccb_ad_bool_or(reply, CCB_ATTR_RESULT, false)) {
		rc = reply_code(reply, text);
		fail(a, rc, "request refused: %s", *text ? text : "(no ErrorString)");
		ccb_classad_free(reply);
		return rc;
	}
	if (streaming && !ccb_ad_bool_or(reply, CCB_ATTR_PROXY_MODE, false)) {
		ccb_classad_free(reply);
		return fail(a, CCB_ERR_PROTOCOL, "streaming reply without ProxyMode=true");
	}
	ccb_classad_free(reply);
	ccb__dial_emit(a->r, a, "broker reply", CCB_OK, "Result=true%s",
		       streaming ? ", ProxyMode=true" : "");
	*ok = true;
	return CCB_OK;
}

/* One connection on the return path is readable: accept it and check its
 * hello. True when the wait is over: *rc is CCB_OK with a->result set (the
 * target), or the failure. False (an impostor, a spurious wake-up) to keep
 * waiting. */
static bool take_callback(attempt *a, attempt_ctx *x, ccb_err *rc)
{
	race *r = a->r;
	ccb_stream *hs = NULL;
	ccb_classad *hello = NULL;
	ccb_error e;
	int64_t hd = ccb_deadline_in(CCB__DIAL_HELLO_TIMEOUT_MS);

	if (hd > r->deadline)
		hd = r->deadline;
	if (x->ep) {
		int64_t ad = ccb_deadline_in(CCB__DIAL_HANDOFF_WAIT_MS);
		if (ccb_sharedport_endpoint_accept(x->ep, ad < hd ? ad : hd, &hs, &e)) {
			if (e.code != CCB_ERR_CANCELLED)
				return false;
			*rc = fail(a, e.code, "cancelled");
			return true;
		}
	} else {
		int fd = accept4(x->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return false;
			*rc = fail(a, CCB_ERR_IO, "accept: %s", ccb__strerror(errno));
			return true;
		}
		if (ccb_stream_new(fd, &hs, &e)) {
			*rc = fail(a, e.code, "reverse connection: %s", e.detail);
			return true;
		}
	}
	ccb_stream_set_deadline(hs, hd);
	reg_stream(a, 1, hs);
	ccb__dial_emit(r, a, "reverse connect", CCB_OK, "from %s", ccb_stream_peer_name(hs));
	if (ccb_hello_read(hs, x->connect_id, &hello, &e) == CCB_OK) {
		ccb_classad_free(hello);
		reg_stream(a, 1, NULL);
		a->result = hs;
		ccb__dial_emit(r, a, "hello", CCB_OK, "valid hello from %s", ccb_stream_peer_name(hs));
		*rc = CCB_OK;
		return true;
	}
	reg_stream(a, 1, NULL);
	/* An impostor or a broken peer: close it and keep waiting
	 * (ccb-protocol.md §6.7). Connect ids stay out of reports. */
	ccb__dial_emit(r, a, "impostor", e.code, "rejected reverse connection from %s: %s",
		       ccb_stream_peer_name(hs),
		       strstr(e.detail, "connect id") ? "hello carries another connect id" : e.detail);
	ccb_stream_free(hs);
	if (!stopping(r))
		return false;
	*rc = fail(a, CCB_ERR_CANCELLED, "cancelled");
	return true;
}

/* Standard mode: wait for the hello on the listener (or endpoint) while
 * watching the broker socket (§6.5, §6.7). */
static ccb_err wait_callback(attempt *a, attempt_ctx *x)
{
	race *r = a->r;
	bool watch_broker = true;

	for (;;) {
		struct pollfd p[3] = {
			{.fd = x->ep ? ccb_sharedport_endpoint_fd(x->ep) : x->lfd, .events = POLLIN},
			{.fd = ccb__wakeup_fd(&r->stop_signal), .events = POLLIN},
			{.fd = watch_broker ? ccb_stream_fd(x->bs) : -1, .events = POLLIN}};
		int left = ccb_deadline_left(r->deadline), prc;
		ccb_err rc;

		if (left == 0)
			return fail(a, CCB_ERR_NO_CALLBACK,
				    "the target did not call back within %lld ms of the request",
				    since_request(a));
		prc = poll(p, 3, left);
		if (prc < 0 && errno != EINTR)
			return fail(a, CCB_ERR_IO, "poll: %s", ccb__strerror(errno));
		if (prc <= 0)
			continue;
		if (p[1].revents)
			return fail(a, CCB_ERR_CANCELLED, "cancelled");
		if (p[0].revents) {
			if (take_callback(a, x, &rc))
				return rc;
			continue;
		}
		if (p[2].revents) {
			bool ok;
			if (handle_reply(a, x->bs, false, &ok))
				return a->code;
			/* The success reply is not completion; the broker closes
			 * the socket next, so stop watching it. */
			watch_broker = false;
		}
	}
}

/* Streaming mode (§7.6): reply, replayed hello under the broker session,
 * then a fresh plaintext stream over the same socket. */
static ccb_err finish_streaming(attempt *a, attempt_ctx *x)
{
	ccb_classad *hello = NULL;
	ccb_error e;
	bool ok;
	int fd;

	if (handle_reply(a, x->bs, true, &ok))
		return a->code;
	if (ccb_hello_read(x->bs, x->connect_id, &hello, &e))
		return fail(a, e.code == CCB_ERR_CANCELLED ? e.code : CCB_ERR_PROTOCOL,
			    "replayed hello: %s", e.detail);
	ccb_classad_free(hello);
	reg_stream(a, 0, NULL);
	if (ccb_stream_detach_fd(x->bs, &fd))
		return fail(a, CCB_ERR_PROTOCOL, "relay: %s", ccb_stream_error(x->bs)->detail);
	ccb_stream_free(x->bs);
	x->bs = NULL;
	if (ccb_stream_new(fd, &a->result, &e))
		return fail(a, e.code, "relay: %s", e.detail);
	a->proxied = true;
	ccb__dial_emit(a->r, a, "hello", CCB_OK, "proxied connection ready");
	return CCB_OK;
}

static ccb_err map_sec_error(const ccb_error *e)
{
	switch (e->code) {
	case CCB_ERR_AUTH:
	case CCB_ERR_NOT_AUTHORIZED:
	case CCB_ERR_UNSUPPORTED:
	case CCB_ERR_TIMEOUT:
	case CCB_ERR_CANCELLED:
	case CCB_ERR_NOMEM: return e->code;
	default: return CCB_ERR_NO_BROKER;
	}
}

/* ---- the attempt, phase by phase ---------------------------------------------- */

/* Which broker, and whether the request streams. */
static ccb_err parse_contact(attempt *a, attempt_ctx *x)
{
	const ccb_dial_config *o = a->r->o;
	ccb_error e;

	snprintf(a->broker, sizeof a->broker, "%s", a->contact);
	if (ccb_contact_split(a->contact, &x->c, &e))
		return fail(a, CCB_ERR_INVALID_ARG, "bad contact: %s", e.detail);
	if (ccb_sinful_parse_address(x->c.broker, &x->baddr, &e))
		return fail(a, CCB_ERR_INVALID_ARG, "bad broker address: %s", e.detail);
	x->port = ccb_sinful_port(x->baddr) > 0 ? ccb_sinful_port(x->baddr)
						 : CCB__DIAL_BROKER_DEFAULT_PORT;
	ccb__tcp_peer_name(a->broker, sizeof a->broker, NULL, ccb_sinful_host(x->baddr), x->port);
	x->nested = x->c.n_ids > 1;
	x->streaming = o->streaming || o->proxy_return_addr || o->require_streaming || x->nested;
	return CCB_OK;
}

/* A stream to the broker (through its shared port when its address has
 * sock=), registered for cancellation. The TCP connect gives up on the stop
 * signal: a black-holed broker must not hold the join. */
static ccb_err connect_broker(attempt *a, attempt_ctx *x)
{
	race *r = a->r;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char peer[300];
	const char *sock;
	ccb_error e;
	ccb_err rc;
	int fd;

	ccb__dial_emit(r, a, "connect", CCB_OK, "connecting");
	rc = ccb__tcp_connect(ccb_sinful_host(x->baddr), x->port, r->deadline, NULL,
			      ccb__wakeup_fd(&r->stop_signal), &fd, &e);
	if (rc)
		return fail(a, rc == CCB_ERR_TIMEOUT || rc == CCB_ERR_CANCELLED ? rc : CCB_ERR_NO_BROKER,
			    "%s", e.detail);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
	    !sockaddr_ip(&ss, x->local_ip, sizeof x->local_ip, NULL))
		snprintf(x->local_ip, sizeof x->local_ip, "127.0.0.1");
	if (ccb_stream_new(fd, &x->bs, &e))
		return fail(a, e.code, "%s", e.detail);
	a->phase = PH_CONNECTED;
	ccb_stream_set_deadline(x->bs, r->deadline);
	ccb_stream_set_timeout(x->bs, -1);
	snprintf(peer, sizeof peer, "broker %s", a->broker);
	ccb_stream_set_peer_name(x->bs, peer);
	reg_stream(a, 0, x->bs);
	if ((sock = ccb_sinful_shared_port_id(x->baddr)) &&
	    ccb_sharedport_send_connect(x->bs, sock, r->o->shared_port_client_name, r->deadline, &e))
		return fail(a, CCB_ERR_NO_BROKER, "shared port: %s", e.detail);
	return CCB_OK;
}

static void drop_broker_stream(attempt *a, attempt_ctx *x)
{
	reg_stream(a, 0, NULL);
	ccb_stream_free(x->bs);
	x->bs = NULL;
}

/* Connect and run the security handshake for CCB_REQUEST. Twice at most: a
 * cached broker session that is refused is forgotten, and the second
 * connection negotiates anew (security.h). */
static ccb_err open_session(attempt *a, attempt_ctx *x)
{
	race *r = a->r;
	ccb_sec_client_config sec;
	ccb_error e;
	ccb_err rc;

	for (int tries = 0;; tries++) {
		if ((rc = connect_broker(a, x)))
			return rc;
		ccb__dial_emit(r, a, "authenticate", CCB_OK,
			       "connected; security handshake for CCB_REQUEST");
		free(x->broker_text);
		ccb_sinful_format(x->baddr, &x->broker_text, NULL);
		memset(&x->info, 0, sizeof x->info);
		sec = *r->o->broker_sec;
		/* SSL names the broker by its alias, else its host (security-handshake.md §7.5). */
		if (!sec.ssl_server_host)
			sec.ssl_server_host = ccb_sinful_alias(x->baddr) ? ccb_sinful_alias(x->baddr)
									 : ccb_sinful_host(x->baddr);
		rc = ccb_sec_client_start(x->bs, &sec, CCB_CMD_CCB_REQUEST, 0, x->broker_text, &x->info,
					  &e);
		if (rc != CCB_ERR_SESSION_REFUSED || tries > 0)
			break;
		ccb__dial_emit(r, a, "authenticate", CCB_OK, "cached session refused; reconnecting");
		drop_broker_stream(a, x);
	}
	if (rc)
		return fail(a, map_sec_error(&e), "authenticate: %s", e.detail);
	a->phase = PH_AUTHENTICATED;
	ccb__dial_emit_sec(r, a, &x->info, "%s as %s, encryption %s",
			   x->info.authenticated ? x->info.method : "no authentication",
			   x->info.user[0] ? x->info.user : CCB_UNAUTHENTICATED_USER,
			   ccb_sec_info_encryption(&x->info));
	if (ccb__sec_version_parse(x->info.peer_version, NULL, NULL, NULL, &x->peer_num, NULL))
		x->peer_num = 0;
	return CCB_OK;
}

/* Streaming capability gate (§7.3): before any request is sent. A broker
 * too old to stream gets a standard request unless streaming is required. */
static ccb_err check_streaming(attempt *a, attempt_ctx *x)
{
	const ccb_dial_config *o = a->r->o;
	unsigned need = o->streaming_min_version ? o->streaming_min_version
						 : CCB_DIAL_DEFAULT_STREAMING_VERSION;

	if (!x->streaming || o->broker_advertises_streaming || x->peer_num >= need)
		return CCB_OK;
	if (o->require_streaming || x->nested)
		return fail(a, CCB_ERR_STREAMING_UNSUPPORTED,
			    "broker version %s cannot stream (need %u.%u.%u)%s",
			    x->info.peer_version[0] ? x->info.peer_version : "unknown", need / 10000,
			    need / 100 % 100, need % 100, x->nested ? " to reach a nested contact" : "");
	ccb__dial_emit(a->r, a, "proxy", CCB_ERR_STREAMING_UNSUPPORTED,
		       "broker too old to stream; falling back to a standard request");
	x->streaming = false;
	return CCB_OK;
}

/* Where the target is to call back: MyAddress, and the listen socket or
 * shared-port endpoint behind it (standard), or the placeholder / proxy
 * return address and the route (streaming). */
static ccb_err open_return_path(attempt *a, attempt_ctx *x)
{
	const ccb_dial_config *o = a->r->o;
	ccb_err rc;

	if (x->streaming) {
		x->my_address = ccb_strdup(o->proxy_return_addr ? o->proxy_return_addr
								: CCB_DIAL_PROXY_PLACEHOLDER);
		ccb_contact_route(&x->c, &x->route, NULL);
		if (!x->my_address || !x->route)
			return fail(a, CCB_ERR_NOMEM, "out of memory");
		return CCB_OK;
	}
	if (o->sharedport_endpoint) {
		if ((rc = open_endpoint(a, &x->ep, &x->my_address)))
			return rc;
		reg_endpoint(a, x->ep);
	} else if ((rc = open_listener(a, x->local_ip, &x->lfd, &x->my_address))) {
		return rc;
	}
	ccb__dial_emit(a->r, a, "listen", CCB_OK, "waiting for the reverse connection at %s",
		       x->my_address);
	return CCB_OK;
}

static ccb_err send_request(attempt *a, attempt_ctx *x)
{
	const ccb_dial_config *o = a->r->o;
	ccb_classad *req = NULL;
	ccb_error e;
	ccb_err rc = CCB_OK;
	/* ccb-protocol.md §6.1 / §7.4. */
	ccb_ad_field f[] = {
		CCB_AD_STRING(CCB_ATTR_CCBID, x->c.ids[0]),
		CCB_AD_STRING(CCB_ATTR_CLAIM_ID, x->connect_id),
		CCB_AD_STRING(CCB_ATTR_NAME, o->name ? o->name : "TOOL"),
		CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, x->my_address),
		CCB_AD_BOOL(CCB_ATTR_CCB_STREAMING_REQUIRED, true),
		CCB_AD_STRING(CCB_ATTR_CCB_ROUTE, x->route && *x->route ? x->route : NULL),
	};

	if (ccb_ad_new(f, x->streaming ? CCB_AD_NFIELDS(f) : 4, &req, &e))
		return fail(a, e.code, "request: %s", e.detail);
	if (ccb_control_ad_write(x->bs, req, x->peer_num, &e))
		rc = fail(a, e.code == CCB_ERR_CANCELLED || e.code == CCB_ERR_TIMEOUT ? e.code
										     : CCB_ERR_NO_BROKER,
			  "send request: %s", e.detail);
	ccb_classad_free(req);
	if (rc)
		return rc;
	a->phase = PH_REQUESTED;
	a->requested_at = ccb_now_ms();
	ccb__dial_emit(a->r, a, "request", CCB_OK, "CCB_REQUEST sent for ccbid %s%s", x->c.ids[0],
		       x->streaming ? " (streaming)" : "");
	return CCB_OK;
}

static void attempt_release(attempt *a, attempt_ctx *x)
{
	drop_broker_stream(a, x);
	reg_endpoint(a, NULL);
	ccb_sharedport_endpoint_free(x->ep);
	if (x->lfd >= 0)
		close(x->lfd);
	free(x->my_address);
	free(x->route);
	free(x->broker_text);
	ccb_sinful_free(x->baddr);
	ccb_contact_clear(&x->c);
	OPENSSL_cleanse(x->connect_id, sizeof x->connect_id);
}

static ccb_err run_attempt(attempt *a)
{
	attempt_ctx x = {.lfd = -1};
	ccb_error e;
	ccb_err rc;

	if ((rc = parse_contact(a, &x)) || (rc = open_session(a, &x)) ||
	    (rc = check_streaming(a, &x)))
		goto out;
	if (ccb_connect_id_new(x.connect_id, &e)) {
		rc = fail(a, e.code, "%s", e.detail);
		goto out;
	}
	if ((rc = open_return_path(a, &x)) || (rc = send_request(a, &x)))
		goto out;
	rc = x.streaming ? finish_streaming(a, &x) : wait_callback(a, &x);
out:
	attempt_release(a, &x);
	return rc;
}

void *ccb__dial_attempt_main(void *arg)
{
	attempt *a = arg;
	race *r = a->r;
	ccb_err rc = run_attempt(a);
	bool won = false;

	pthread_mutex_lock(&r->mu);
	if (rc == CCB_OK && !r->stop && !r->winner) {
		r->winner = a;
		won = true;
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	if (!won && rc == CCB_OK) {
		/* Lost the race: the connection is not needed. */
		ccb_stream_free(a->result);
		a->result = NULL;
		a->code = CCB_ERR_CANCELLED;
		snprintf(a->detail, sizeof a->detail, "broker %s: lost the race", a->broker);
	}
	/* Report the end before the launcher hears of it, so that progress
	 * shows attempts in a consistent order. */
	ccb__dial_emit(r, a, won ? "won" : a->code == CCB_ERR_CANCELLED ? "cancelled" : "failed",
		       a->code, "%s", won ? "first valid hello" : a->detail);
	pthread_mutex_lock(&r->mu);
	if (!won)
		r->failed_pending++;
	r->running--;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

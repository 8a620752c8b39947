/*
 * CCB requester: blocking dial through one or more brokers by connection
 * reversal, with happy-eyeballs racing and streaming (proxy) mode.
 * Wire reference: ccb-protocol.md §6 (standard request), §7 (streaming),
 * §8 (several brokers), §12 (broker error texts); ARCHITECTURE.md "Threads".
 *
 * Threads: the caller's thread owns a race object (mutex + condition
 * variable); each broker attempt runs on its own thread. The caller launches
 * attempts (staggered), waits for a winner, a cancel or the deadline, then
 * stops the rest (flag + a byte on the stop pipe every attempt polls +
 * ccb_stream_shutdown / endpoint shutdown of their registered sockets) and
 * joins every thread before returning.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ccb/addr.h"
#include "ccb/attributes.h"
#include "ccb/classad.h"
#include "ccb/commands.h"
#include "ccb/dial.h"
#include "ccb/wire.h"
#include "outbound.h"
#include "security/sec_layer.h"
#include "util/util.h"

/* Default port of a broker address without one: the collector's (§3.3). */
#define BROKER_DEFAULT_PORT 9618
/* Most time one reverse connection may take to deliver its hello. */
#define HELLO_TIMEOUT_MS 5000
/* Most time one shared-port hand-off may take once its socket is readable. */
#define HANDOFF_WAIT_MS 1000
/* Grace after the deadline for attempts to report their own timeout. */
#define DEADLINE_GRACE_MS 1000

/* Phases an attempt reaches, to pick the most telling failure. */
enum phase { PH_START, PH_CONNECTED, PH_AUTHENTICATED, PH_REQUESTED, PH_REPLIED };

struct ccb_dial_cancel {
	pthread_mutex_t mu;
	bool fired;
	struct race *races; /* dials using the token */
};

typedef struct race race;

typedef struct attempt {
	race *r;
	int idx; /* 1-based, in launch order */
	const char *contact;
	char broker[256]; /* host:port of the broker, for details */
	pthread_t th;
	bool started;
	/* written by the attempt thread, read by the caller after join */
	ccb_err code;
	char detail[CCB_ERROR_DETAIL_SIZE];
	enum phase phase;
	ccb_stream *result;
	bool proxied;
	/* under r->mu: what a canceller shuts down */
	ccb_stream *reg[2];
	ccb_sharedport_endpoint *reg_ep;
} attempt;

struct race {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_mutex_t progress_mu;
	const ccb_dial_opts *o;
	int64_t t0, deadline;
	int stop_pipe[2];
	/* under mu */
	bool stop;      /* attempts must end */
	bool cancelled; /* token fired */
	attempt *winner;
	int running;
	int failed_pending; /* failures the launcher has not reacted to yet */
	struct race *next_on_token;
};

/* ---- cancel tokens ---------------------------------------------------- */

ccb_dial_cancel *ccb_dial_cancel_new(void)
{
	ccb_dial_cancel *c = calloc(1, sizeof *c);

	if (c)
		pthread_mutex_init(&c->mu, NULL);
	return c;
}

void ccb_dial_cancel_fire(ccb_dial_cancel *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->fired = true;
	for (race *r = c->races; r; r = r->next_on_token) {
		pthread_mutex_lock(&r->mu);
		r->cancelled = true;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
	pthread_mutex_unlock(&c->mu);
}

bool ccb_dial_cancel_fired(ccb_dial_cancel *c)
{
	bool f;

	if (!c)
		return false;
	pthread_mutex_lock(&c->mu);
	f = c->fired;
	pthread_mutex_unlock(&c->mu);
	return f;
}

void ccb_dial_cancel_free(ccb_dial_cancel *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* Returns false if the token was already fired. */
static bool token_attach(race *r)
{
	ccb_dial_cancel *c = r->o->cancel;
	bool ok;

	if (!c)
		return true;
	pthread_mutex_lock(&c->mu);
	ok = !c->fired;
	if (ok) {
		r->next_on_token = c->races;
		c->races = r;
	}
	pthread_mutex_unlock(&c->mu);
	return ok;
}

static void token_detach(race *r)
{
	ccb_dial_cancel *c = r->o->cancel;

	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	for (race **p = &c->races; *p; p = &(*p)->next_on_token)
		if (*p == r) {
			*p = r->next_on_token;
			break;
		}
	pthread_mutex_unlock(&c->mu);
}

/* ---- progress --------------------------------------------------------- */

static void emit_v(race *r, attempt *a, const char *step, ccb_err code, const ccb_sec_info *sec,
		   const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));
static void emit(race *r, attempt *a, const char *step, ccb_err code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void emit_sec(race *r, attempt *a, const ccb_sec_info *sec, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void emit(race *r, attempt *a, const char *step, ccb_err code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit_v(r, a, step, code, NULL, fmt, ap);
	va_end(ap);
}

/* The "authenticated" step carries the handshake's outcome. */
static void emit_sec(race *r, attempt *a, const ccb_sec_info *sec, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit_v(r, a, "authenticated", CCB_OK, sec, fmt, ap);
	va_end(ap);
}

static void emit_v(race *r, attempt *a, const char *step, ccb_err code, const ccb_sec_info *sec,
		   const char *fmt, va_list ap)
{
	char detail[512];
	ccb_dial_event ev;

	vsnprintf(detail, sizeof detail, fmt, ap);
	CCB_LOG(CCB_LOG_DEBUG, "ccb dial: attempt %d %s: %s: %s", a ? a->idx : 0,
		a ? a->broker : "", step, detail);
	if (!r->o->progress)
		return;
	ev.attempt = a ? a->idx : 0;
	ev.broker = a ? a->broker : "";
	ev.step = step;
	ev.elapsed_ms = ccb_now_ms() - r->t0;
	ev.code = code;
	ev.detail = detail;
	ev.sec = sec;
	pthread_mutex_lock(&r->progress_mu);
	r->o->progress(&ev, r->o->progress_user);
	pthread_mutex_unlock(&r->progress_mu);
}

/* ---- helpers for attempts --------------------------------------------- */

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

static void shutdown_registered(race *r, attempt *a)
{
	for (int i = 0; i < 2; i++)
		if (a->reg[i])
			ccb_stream_shutdown(a->reg[i]);
	if (a->reg_ep)
		ccb_sharedport_endpoint_shutdown(a->reg_ep);
	(void)r;
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

/* Connect to host:port until the deadline, giving up early when the stop
 * pipe becomes readable (a black-holed broker must not hold the join). */
static ccb_err connect_cancellable(race *r, const char *host, int port, int *out, ccb_error *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char portstr[8];
	ccb_err rc = CCB_ERR_NOT_FOUND;
	int gai;

	*out = -1;
	snprintf(portstr, sizeof portstr, "%d", port);
	hints.ai_flags = AI_ADDRCONFIG;
	gai = getaddrinfo(host, portstr, &hints, &res);
	if (gai != 0)
		return ccb_error_set(err, CCB_ERR_NOT_FOUND, "resolve %s: %s", host, gai_strerror(gai));
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
				ai->ai_protocol);
		int soerr = 0, one = 1, prc;
		socklen_t len = sizeof soerr;

		if (fd < 0) {
			rc = ccb_error_set(err, CCB_ERR_IO, "socket: %s", ccb__strerror(errno));
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			struct pollfd p[2] = {{.fd = fd, .events = POLLOUT},
					      {.fd = r->stop_pipe[0], .events = POLLIN}};

			if (errno != EINPROGRESS && errno != EINTR) {
				soerr = errno;
			} else {
				while ((prc = poll(p, 2, ccb_deadline_left(r->deadline))) < 0 &&
				       errno == EINTR)
					;
				if (prc > 0 && (p[1].revents & POLLIN)) {
					close(fd);
					rc = ccb_error_set(err, CCB_ERR_CANCELLED, "cancelled");
					break;
				}
				if (prc == 0) {
					close(fd);
					rc = ccb_error_set(err, CCB_ERR_TIMEOUT, "timed out");
					break;
				}
				if (prc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
					soerr = errno;
			}
		}
		if (soerr) {
			close(fd);
			rc = ccb_error_set(err, CCB_ERR_IO, "%s", ccb__strerror(soerr));
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		*out = fd;
		rc = CCB_OK;
		break;
	}
	freeaddrinfo(res);
	return rc;
}

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
	txt = ccb_sinful_format(s);
	ccb_sinful_free(s);
	return txt;
}

/* Open the reverse-connect listen socket of a standard request (§6.7) and
 * work out the MyAddress to send. `local_ip` is our end of the broker
 * connection. */
static ccb_err open_listener(attempt *a, const char *local_ip, int *lfd, char **my_address)
{
	const ccb_dial_opts *o = a->r->o;
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
	const ccb_dial_opts *o = a->r->o;
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
	    !(*my_address = ccb_sinful_format(s))) {
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

static ccb_err handle_reply(attempt *a, ccb_stream *bs, bool streaming, bool *ok)
{
	ccb_classad *reply = NULL;
	ccb_error e;
	const char *text;
	ccb_err rc;

	*ok = false;
	if (ccb_control_ad_read(bs, &reply, &e)) {
		if (e.code == CCB_ERR_CLOSED)
			return fail(a, CCB_ERR_NO_CALLBACK,
				    "broker closed the request without a reply (target gone?)");
		if (e.code == CCB_ERR_TIMEOUT)
			return fail(a, CCB_ERR_NO_CALLBACK,
				    "no reply: the target did not call back in time");
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
	emit(a->r, a, "broker reply", CCB_OK, "Result=true%s", streaming ? ", ProxyMode=true" : "");
	*ok = true;
	return CCB_OK;
}

/* Standard mode: wait for the hello on the listener (or endpoint) while
 * watching the broker socket (§6.5, §6.7). */
static ccb_err wait_callback(attempt *a, ccb_stream *bs, int lfd, ccb_sharedport_endpoint *ep,
			     const char *connect_id)
{
	race *r = a->r;
	bool watch_broker = true;

	for (;;) {
		struct pollfd p[3] = {{.fd = ep ? ccb_sharedport_endpoint_fd(ep) : lfd, .events = POLLIN},
				      {.fd = r->stop_pipe[0], .events = POLLIN},
				      {.fd = watch_broker ? ccb_stream_fd(bs) : -1, .events = POLLIN}};
		int left = ccb_deadline_left(r->deadline), prc;

		if (left == 0)
			return fail(a, CCB_ERR_NO_CALLBACK, "the target did not call back in time");
		prc = poll(p, 3, left);
		if (prc < 0 && errno != EINTR)
			return fail(a, CCB_ERR_IO, "poll: %s", ccb__strerror(errno));
		if (prc <= 0)
			continue;
		if (p[1].revents)
			return fail(a, CCB_ERR_CANCELLED, "cancelled");
		if (p[0].revents) {
			ccb_stream *hs = NULL;
			ccb_classad *hello = NULL;
			ccb_error e;
			int64_t hd = ccb_deadline_in(HELLO_TIMEOUT_MS);

			if (hd > r->deadline)
				hd = r->deadline;
			if (ep) {
				int64_t ad = ccb_deadline_in(HANDOFF_WAIT_MS);
				if (ccb_sharedport_endpoint_accept(ep, ad < hd ? ad : hd, &hs, &e)) {
					if (e.code == CCB_ERR_CANCELLED)
						return fail(a, e.code, "cancelled");
					continue;
				}
			} else {
				int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
				if (fd < 0) {
					if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
						continue;
					return fail(a, CCB_ERR_IO, "accept: %s", ccb__strerror(errno));
				}
				if (ccb_stream_new(fd, &hs, &e))
					return fail(a, e.code, "reverse connection: %s", e.detail);
			}
			ccb_stream_set_deadline(hs, hd);
			reg_stream(a, 1, hs);
			emit(r, a, "reverse connect", CCB_OK, "from %s", ccb_stream_peer_name(hs));
			if (ccb_hello_read(hs, connect_id, &hello, &e) == CCB_OK) {
				ccb_classad_free(hello);
				reg_stream(a, 1, NULL);
				a->result = hs;
				emit(r, a, "hello", CCB_OK, "valid hello from %s", ccb_stream_peer_name(hs));
				return CCB_OK;
			}
			reg_stream(a, 1, NULL);
			/* An impostor or a broken peer: close it and keep waiting
			 * (ccb-protocol.md §6.7). Connect ids stay out of reports. */
			emit(r, a, "impostor", e.code, "rejected reverse connection from %s: %s",
			     ccb_stream_peer_name(hs),
			     strstr(e.detail, "connect id") ? "hello carries another connect id"
							    : e.detail);
			ccb_stream_free(hs);
			if (stopping(r))
				return fail(a, CCB_ERR_CANCELLED, "cancelled");
			continue;
		}
		if (p[2].revents) {
			bool ok;
			if (handle_reply(a, bs, false, &ok))
				return a->code;
			/* The success reply is not completion; the broker closes
			 * the socket next, so stop watching it. */
			watch_broker = false;
		}
	}
}

/* Streaming mode (§7.6): reply, replayed hello under the broker session,
 * then a fresh plaintext stream over the same socket. */
static ccb_err finish_streaming(attempt *a, ccb_stream **bsp, const char *connect_id)
{
	ccb_stream *bs = *bsp;
	ccb_classad *hello = NULL;
	ccb_error e;
	bool ok;
	int fd;

	if (handle_reply(a, bs, true, &ok))
		return a->code;
	if (ccb_hello_read(bs, connect_id, &hello, &e))
		return fail(a, e.code == CCB_ERR_CANCELLED ? e.code : CCB_ERR_PROTOCOL,
			    "replayed hello: %s", e.detail);
	ccb_classad_free(hello);
	reg_stream(a, 0, NULL);
	if (ccb_stream_detach_fd(bs, &fd))
		return fail(a, CCB_ERR_PROTOCOL, "relay: %s", ccb_stream_error(bs)->detail);
	ccb_stream_free(bs);
	*bsp = NULL;
	if (ccb_stream_new(fd, &a->result, &e))
		return fail(a, e.code, "relay: %s", e.detail);
	a->proxied = true;
	emit(a->r, a, "hello", CCB_OK, "proxied connection ready");
	return CCB_OK;
}

static ccb_err map_sec_error(const ccb_error *e)
{
	switch (e->code) {
	case CCB_ERR_AUTH:
	case CCB_ERR_NOT_AUTHORIZED: return CCB_ERR_AUTH;
	case CCB_ERR_TIMEOUT:
	case CCB_ERR_CANCELLED:
	case CCB_ERR_NOMEM: return e->code;
	default: return CCB_ERR_NO_BROKER;
	}
}

static ccb_err run_attempt(attempt *a)
{
	race *r = a->r;
	const ccb_dial_opts *o = r->o;
	ccb_contact c = {0};
	ccb_sinful *baddr = NULL;
	ccb_stream *bs = NULL;
	ccb_sharedport_endpoint *ep = NULL;
	ccb_classad *req = NULL;
	ccb_sec_info info;
	ccb_sec_client_config sec;
	ccb_error e;
	char connect_id[CCB_CONNECT_ID_SIZE], local_ip[CCB_ADDR_IP_SIZE] = "";
	char *my_address = NULL, *route = NULL, *broker_text = NULL;
	const char *sock;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	unsigned peer_num = 0;
	bool streaming, nested;
	int fd = -1, lfd = -1, port;
	ccb_err rc;

	snprintf(a->broker, sizeof a->broker, "%s", a->contact);
	if (ccb_contact_split(a->contact, &c, &e)) {
		rc = fail(a, CCB_ERR_INVALID_ARG, "bad contact: %s", e.detail);
		goto out;
	}
	if (ccb_sinful_parse_address(c.broker, &baddr, &e)) {
		rc = fail(a, CCB_ERR_INVALID_ARG, "bad broker address: %s", e.detail);
		goto out;
	}
	port = ccb_sinful_port(baddr) > 0 ? ccb_sinful_port(baddr) : BROKER_DEFAULT_PORT;
	snprintf(a->broker, sizeof a->broker, "%s%s%s:%d", strchr(ccb_sinful_host(baddr), ':') ? "[" : "",
		 ccb_sinful_host(baddr), strchr(ccb_sinful_host(baddr), ':') ? "]" : "", port);
	nested = c.n_ids > 1;
	streaming = o->streaming || o->proxy_return_addr || o->require_streaming || nested;

	/* Twice at most: a cached broker session that is refused is forgotten,
	 * and the second connection negotiates anew (security.h). */
	for (int tries = 0;; tries++) {
		emit(r, a, "connect", CCB_OK, "connecting");
		if ((rc = connect_cancellable(r, ccb_sinful_host(baddr), port, &fd, &e))) {
			rc = fail(a, rc == CCB_ERR_TIMEOUT || rc == CCB_ERR_CANCELLED ? rc : CCB_ERR_NO_BROKER,
				  "connect: %s", e.detail);
			goto out;
		}
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
		    !sockaddr_ip(&ss, local_ip, sizeof local_ip, NULL))
			snprintf(local_ip, sizeof local_ip, "127.0.0.1");
		if (ccb_stream_new(fd, &bs, &e)) {
			rc = fail(a, e.code, "%s", e.detail);
			goto out;
		}
		a->phase = PH_CONNECTED;
		ccb_stream_set_deadline(bs, r->deadline);
		ccb_stream_set_timeout(bs, -1);
		{
			char peer[300];
			snprintf(peer, sizeof peer, "broker %s", a->broker);
			ccb_stream_set_peer_name(bs, peer);
		}
		reg_stream(a, 0, bs);
		/* A broker behind condor_shared_port (its contact carries sock=). */
		if ((sock = ccb_sinful_shared_port_id(baddr)) &&
		    ccb_sharedport_send_connect(bs, sock, o->shared_port_client_name, r->deadline, &e)) {
			rc = fail(a, CCB_ERR_NO_BROKER, "shared port: %s", e.detail);
			goto out;
		}
		emit(r, a, "authenticate", CCB_OK, "connected; security handshake for CCB_REQUEST");
		broker_text = ccb_sinful_format(baddr);
		memset(&info, 0, sizeof info);
		sec = *o->broker_sec;
		/* SSL names the broker by its alias, else its host (security-handshake.md §7.5). */
		if (!sec.ssl_server_host)
			sec.ssl_server_host = ccb_sinful_alias(baddr) ? ccb_sinful_alias(baddr)
								      : ccb_sinful_host(baddr);
		rc = ccb_sec_client_start(bs, &sec, CCB_CMD_CCB_REQUEST, 0, broker_text, &info, &e);
		if (rc == CCB_ERR_SESSION_REFUSED && tries == 0) {
			emit(r, a, "authenticate", CCB_OK, "cached session refused; reconnecting");
			reg_stream(a, 0, NULL);
			ccb_stream_free(bs);
			bs = NULL;
			free(broker_text);
			broker_text = NULL;
			continue;
		}
		if (rc) {
			rc = fail(a, map_sec_error(&e), "authenticate: %s", e.detail);
			goto out;
		}
		break;
	}
	a->phase = PH_AUTHENTICATED;
	emit_sec(r, a, &info, "%s as %s, encryption %s", info.authenticated ? info.method : "no authentication",
		 info.user[0] ? info.user : CCB_UNAUTHENTICATED_USER, ccb_sec_info_encryption(&info));
	if (ccb__sec_version_parse(info.peer_version, NULL, NULL, NULL, &peer_num, NULL))
		peer_num = 0;
	/* Streaming capability gate (§7.3): before any request is sent. */
	if (streaming && !o->broker_advertises_streaming) {
		unsigned need = o->streaming_min_version ? o->streaming_min_version
							 : CCB_DIAL_DEFAULT_STREAMING_VERSION;
		if (peer_num < need) {
			if (o->require_streaming || nested) {
				rc = fail(a, CCB_ERR_STREAMING_UNSUPPORTED,
					  "broker version %s cannot stream (need %u.%u.%u)%s",
					  info.peer_version[0] ? info.peer_version : "unknown",
					  need / 10000, need / 100 % 100, need % 100,
					  nested ? " to reach a nested contact" : "");
				goto out;
			}
			emit(r, a, "proxy", CCB_ERR_STREAMING_UNSUPPORTED,
			     "broker too old to stream; falling back to a standard request");
			streaming = false;
		}
	}
	if (ccb_connect_id_new(connect_id, &e)) {
		rc = fail(a, e.code, "%s", e.detail);
		goto out;
	}
	if (streaming) {
		my_address = ccb_strdup(o->proxy_return_addr ? o->proxy_return_addr
							     : CCB_DIAL_PROXY_PLACEHOLDER);
		route = ccb_contact_route(&c);
		if (!my_address || !route) {
			rc = fail(a, CCB_ERR_NOMEM, "out of memory");
			goto out;
		}
	} else if (o->sharedport_endpoint) {
		if ((rc = open_endpoint(a, &ep, &my_address)))
			goto out;
		reg_endpoint(a, ep);
	} else if ((rc = open_listener(a, local_ip, &lfd, &my_address))) {
		goto out;
	}
	if (!streaming)
		emit(r, a, "listen", CCB_OK, "waiting for the reverse connection at %s", my_address);
	{
		/* ccb-protocol.md §6.1 / §7.4. */
		ccb_ad_field f[] = {
			CCB_AD_STRING(CCB_ATTR_CCBID, c.ids[0]),
			CCB_AD_STRING(CCB_ATTR_CLAIM_ID, connect_id),
			CCB_AD_STRING(CCB_ATTR_NAME, o->name ? o->name : "TOOL"),
			CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, my_address),
			CCB_AD_BOOL(CCB_ATTR_CCB_STREAMING_REQUIRED, true),
			CCB_AD_STRING(CCB_ATTR_CCB_ROUTE, route && *route ? route : NULL),
		};
		if (ccb_ad_new(f, streaming ? CCB_AD_NFIELDS(f) : 4, &req, &e)) {
			rc = fail(a, e.code, "request: %s", e.detail);
			goto out;
		}
	}
	if (ccb_control_ad_write(bs, req, peer_num, &e)) {
		rc = fail(a, e.code == CCB_ERR_CANCELLED || e.code == CCB_ERR_TIMEOUT ? e.code
										: CCB_ERR_NO_BROKER,
			  "send request: %s", e.detail);
		goto out;
	}
	a->phase = PH_REQUESTED;
	emit(r, a, "request", CCB_OK, "CCB_REQUEST sent for ccbid %s%s", c.ids[0],
	     streaming ? " (streaming)" : "");
	if (streaming)
		rc = finish_streaming(a, &bs, connect_id);
	else
		rc = wait_callback(a, bs, lfd, ep, connect_id);
out:
	reg_stream(a, 0, NULL);
	reg_endpoint(a, NULL);
	ccb_stream_free(bs);
	ccb_sharedport_endpoint_free(ep);
	if (lfd >= 0)
		close(lfd);
	ccb_classad_free(req);
	free(my_address);
	free(route);
	free(broker_text);
	ccb_sinful_free(baddr);
	ccb_contact_clear(&c);
	OPENSSL_cleanse(connect_id, sizeof connect_id);
	return rc;
}

static void *attempt_main(void *arg)
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
	emit(r, a, won ? "won" : a->code == CCB_ERR_CANCELLED ? "cancelled" : "failed", a->code,
	     "%s", won ? "first valid hello" : a->detail);
	pthread_mutex_lock(&r->mu);
	if (!won)
		r->failed_pending++;
	r->running--;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* ---- the race ------------------------------------------------------------ */

static int rank(ccb_err c)
{
	switch (c) {
	case CCB_ERR_UNKNOWN_CCBID: return 9;
	case CCB_ERR_STREAMING_UNSUPPORTED: return 8;
	case CCB_ERR_NO_CALLBACK: return 7;
	case CCB_ERR_AUTH: return 6;
	case CCB_ERR_LIMIT: return 5;
	case CCB_ERR_PROTOCOL: return 4;
	case CCB_ERR_TIMEOUT: return 3;
	case CCB_ERR_NO_BROKER: return 2;
	case CCB_ERR_CANCELLED: return 0;
	default: return 1;
	}
}

/* Append "; " (unless first) and `piece`, cut to `budget` bytes. */
static void append_piece(char *buf, size_t size, size_t *len, const char *piece, size_t budget)
{
	char tmp[CCB_ERROR_DETAIL_SIZE];
	size_t pl = (size_t)snprintf(tmp, sizeof tmp, "%s%s", *len ? "; " : "", piece);

	if (pl >= sizeof tmp)
		pl = sizeof tmp - 1;
	if (pl > budget && budget > 5) {
		memcpy(tmp + budget - 3, "...", 4);
		pl = budget;
	}
	if (*len + pl >= size)
		return;
	memcpy(buf + *len, tmp, pl + 1);
	*len += pl;
}

static void cond_wait_until(race *r, int64_t when_ms)
{
	struct timespec ts;
	int64_t ms = when_ms - ccb_now_ms();

	if (ms <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

static void shuffle(const char **v, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		uint32_t x = 0;
		ccb_random_bytes(&x, sizeof x, NULL);
		size_t j = x % i;
		const char *t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* Whether a fixed local port or endpoint id forces one attempt at a time. */
static bool fixed_local_resource(const ccb_dial_opts *o)
{
	if (o->sharedport_endpoint)
		return o->sharedport_endpoint->id != NULL;
	if (o->listen_addr && !o->streaming && !o->proxy_return_addr && !o->require_streaming) {
		ccb_sinful *s = NULL;
		bool fixed = false;
		if (!ccb_sinful_parse_address(o->listen_addr, &s, NULL))
			fixed = ccb_sinful_port(s) > 0;
		ccb_sinful_free(s);
		return fixed;
	}
	return false;
}

ccb_err ccb_dial(const char *const *contacts, size_t n, const ccb_dial_opts *opts,
		 ccb_stream **out, ccb_error *err)
{
	race r;
	attempt *a = NULL;
	const char **order = NULL;
	pthread_condattr_t ca;
	size_t launched = 0;
	int stagger;
	int64_t next_launch, grace_end = 0;
	bool timed_out = false, token_ok;
	ccb_err rc;

	if (out)
		*out = NULL;
	if (!contacts || !n || !opts || !opts->broker_sec || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				     "dial: need contacts, options with broker_sec, and out");
	for (size_t i = 0; i < n; i++)
		if (!contacts[i])
			return ccb_error_set(err, CCB_ERR_INVALID_ARG, "dial: contact %zu is NULL", i);
	memset(&r, 0, sizeof r);
	r.o = opts;
	r.t0 = ccb_now_ms();
	r.deadline = r.t0 + (opts->timeout_ms > 0 ? opts->timeout_ms : CCB_DIAL_DEFAULT_TIMEOUT_MS);
	stagger = opts->stagger_ms ? opts->stagger_ms : CCB_DIAL_DEFAULT_STAGGER_MS;
	if (fixed_local_resource(opts))
		stagger = -1;
	a = calloc(n, sizeof *a);
	order = calloc(n, sizeof *order);
	if (!a || !order || pipe2(r.stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		free(a);
		free(order);
		return ccb_error_set(err, CCB_ERR_NOMEM, "dial: out of memory or fds");
	}
	pthread_mutex_init(&r.mu, NULL);
	pthread_mutex_init(&r.progress_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r.cv, &ca);
	pthread_condattr_destroy(&ca);
	memcpy(order, contacts, n * sizeof *order);
	shuffle(order, n);
	for (size_t i = 0; i < n; i++) {
		a[i].r = &r;
		a[i].idx = (int)i + 1;
		a[i].contact = order[i];
		a[i].code = CCB_ERR_TIMEOUT;
		snprintf(a[i].broker, sizeof a[i].broker, "%s", order[i]);
		snprintf(a[i].detail, sizeof a[i].detail, "broker %s: not tried before the deadline",
			 order[i]);
	}
	token_ok = token_attach(&r);

	pthread_mutex_lock(&r.mu);
	if (!token_ok)
		r.cancelled = true;
	next_launch = ccb_now_ms();
	for (;;) {
		int64_t now = ccb_now_ms(), wake;

		if (r.winner || r.cancelled)
			break;
		if (launched == n && r.running == 0)
			break;
		if (now >= r.deadline) {
			/* Attempts carry the deadline themselves; give them a moment
			 * to report their own reason before stopping them. */
			timed_out = true;
			if (r.running == 0)
				break;
			if (!grace_end)
				grace_end = r.deadline + DEADLINE_GRACE_MS;
			if (now >= grace_end)
				break;
			cond_wait_until(&r, grace_end);
			continue;
		}
		if (launched < n &&
		    (r.running == 0 || (stagger >= 0 && (r.failed_pending > 0 || now >= next_launch)))) {
			attempt *x = &a[launched++];
			if (r.failed_pending > 0)
				r.failed_pending--;
			r.running++;
			if (pthread_create(&x->th, NULL, attempt_main, x) != 0) {
				r.running--;
				x->code = CCB_ERR_NOMEM;
				snprintf(x->detail, sizeof x->detail, "broker %s: cannot start thread",
					 x->contact);
				continue;
			}
			x->started = true;
			next_launch = now + (stagger > 0 ? stagger : 0);
			continue;
		}
		wake = r.deadline;
		if (launched < n && stagger >= 0 && next_launch < wake)
			wake = next_launch;
		cond_wait_until(&r, wake);
	}
	/* Stop everything still running (losers, or all on cancel/deadline). */
	r.stop = true;
	if (write(r.stop_pipe[1], "x", 1) < 0) {
		/* the pipe is non-blocking and empty: cannot fail */
	}
	for (size_t i = 0; i < launched; i++)
		if (&a[i] != r.winner)
			shutdown_registered(&r, &a[i]);
	pthread_mutex_unlock(&r.mu);
	for (size_t i = 0; i < launched; i++)
		if (a[i].started)
			pthread_join(a[i].th, NULL);
	token_detach(&r);

	if (r.winner) {
		attempt *w = r.winner;
		ccb_stream *s = w->result;
		ccb_error e;

		w->result = NULL;
		if (opts->target_shared_port_id) {
			/* The registrant is condor_shared_port: ask it for the
			 * daemon before the command (§6.7). */
			ccb_stream_set_deadline(s, r.deadline);
			if (ccb_sharedport_send_connect(s, opts->target_shared_port_id,
							opts->shared_port_client_name, r.deadline, &e)) {
				ccb_stream_free(s);
				rc = ccb_error_set(err, CCB_ERR_NO_CALLBACK,
						   "dial: broker %s: shared port connect: %s", w->broker,
						   e.detail);
				goto done;
			}
			emit(&r, w, "shared port", CCB_OK, "SHARED_PORT_CONNECT %s sent",
			     opts->target_shared_port_id);
		}
		ccb_stream_set_deadline(s, INT64_MAX);
		ccb_stream_set_timeout(s, CCB_STREAM_DEFAULT_TIMEOUT_MS);
		if (opts->info) {
			snprintf(opts->info->broker, sizeof opts->info->broker, "%s", w->broker);
			opts->info->proxied = w->proxied;
			opts->info->via_shared_port = opts->target_shared_port_id != NULL;
			opts->info->attempts = (int)launched;
			opts->info->elapsed_ms = ccb_now_ms() - r.t0;
		}
		*out = s;
		ccb_error_clear(err);
		rc = CCB_OK;
	} else if (r.cancelled) {
		rc = ccb_error_set(err, CCB_ERR_CANCELLED, "dial cancelled");
		emit(&r, NULL, "cancelled", rc, "dial cancelled");
	} else {
		char detail[CCB_ERROR_DETAIL_SIZE * 4], shortd[CCB_ERROR_DETAIL_SIZE];
		size_t len = 0, slen = 0, budget;
		attempt *best = &a[0];

		for (size_t i = 0; i < n; i++) {
			/* An attempt stopped at the deadline timed out. */
			if (timed_out && a[i].code == CCB_ERR_CANCELLED) {
				a[i].code = a[i].phase >= PH_REQUESTED ? CCB_ERR_NO_CALLBACK : CCB_ERR_TIMEOUT;
				snprintf(a[i].detail, sizeof a[i].detail, "broker %s: %s", a[i].broker,
					 a[i].phase >= PH_REQUESTED ? "the target did not call back in time"
								    : "timed out");
			}
			if (rank(a[i].code) > rank(best->code) ||
			    (rank(a[i].code) == rank(best->code) && a[i].phase > best->phase))
				best = &a[i];
			len += (size_t)snprintf(detail + len, sizeof detail - len, "%s%s", i ? "; " : "",
						a[i].detail);
			if (len >= sizeof detail)
				len = sizeof detail - 1;
		}
		/* The short form names every broker: the most telling failure
		 * first, each cut to its share of the detail buffer. */
		budget = (sizeof shortd - 8) / n;
		shortd[0] = '\0';
		append_piece(shortd, sizeof shortd, &slen, best->detail, budget);
		for (size_t i = 0; i < n; i++)
			if (&a[i] != best)
				append_piece(shortd, sizeof shortd, &slen, a[i].detail, budget);
		if (n == 1)
			snprintf(shortd, sizeof shortd, "%s", best->detail);
		emit(&r, NULL, "failed", best->code, "%s", detail);
		rc = ccb_error_set(err, best->code, "dial: %s", shortd);
	}
done:
	for (size_t i = 0; i < n; i++)
		ccb_stream_free(a[i].result);
	close(r.stop_pipe[0]);
	close(r.stop_pipe[1]);
	pthread_cond_destroy(&r.cv);
	pthread_mutex_destroy(&r.mu);
	pthread_mutex_destroy(&r.progress_mu);
	free(a);
	free(order);
	return rc;
}

/* ---- conveniences ------------------------------------------------------ */

static void direct_event(const ccb_dial_opts *o, int64_t t0, const char *step, ccb_err code,
			 const char *detail)
{
	ccb_dial_event ev = {.attempt = 0, .broker = "", .step = step,
			     .elapsed_ms = ccb_now_ms() - t0, .code = code, .detail = detail};
	if (o && o->progress)
		o->progress(&ev, o->progress_user);
}

/* PrivNet rule (Daemon::Set_addr, H:src/condor_daemon_client/daemon.cpp
 * 2180-2214; sinful.md §4.1): a target on our own private network is dialed
 * at its PrivAddr (alias kept) or, without one, at its public host:port with
 * the CCBID dropped. Like HTCondor, no fall-back to CCB afterwards. */
static ccb_err apply_privnet(const ccb_dial_opts *o, int64_t t0, ccb_sinful **sp, ccb_error *err)
{
	ccb_sinful *s = *sp, *p = NULL;
	const char *net = ccb_sinful_private_network(s), *pa = ccb_sinful_private_addr(s);
	char detail[CCB_ERROR_DETAIL_SIZE];
	ccb_err rc;

	if (!o->private_network_name || !*o->private_network_name || !net ||
	    strcmp(net, o->private_network_name))
		return CCB_OK;
	if (!pa) {
		snprintf(detail, sizeof detail, "PrivNet %s is ours: dialing the public address directly",
			 net);
		direct_event(o, t0, "private network", CCB_OK, detail);
		return ccb_sinful_set_param(s, CCB_SINFUL_CCBID, NULL, err);
	}
	if ((rc = ccb_sinful_parse_address(pa, &p, err))) {
		ccb_error_prefix(err, "PrivAddr of the target: ");
		return rc;
	}
	if (!ccb_sinful_alias(p) && ccb_sinful_alias(s) &&
	    (rc = ccb_sinful_set_param(p, CCB_SINFUL_ALIAS, ccb_sinful_alias(s), err))) {
		ccb_sinful_free(p);
		return rc;
	}
	snprintf(detail, sizeof detail, "PrivNet %s is ours: dialing PrivAddr %s", net, pa);
	direct_event(o, t0, "private network", CCB_OK, detail);
	ccb_sinful_free(s);
	*sp = p;
	return CCB_OK;
}

ccb_err ccb_dial_sinful(const char *address, const ccb_dial_opts *opts, ccb_stream **out,
			ccb_error *err)
{
	static const ccb_dial_opts none;
	const ccb_dial_opts *o = opts ? opts : &none;
	ccb_sinful *s = NULL;
	char **contacts = NULL;
	size_t n = 0;
	int64_t t0 = ccb_now_ms(), deadline;
	ccb_err rc;

	if (out)
		*out = NULL;
	if (!address || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "dial: need an address and out");
	if (ccb_dial_cancel_fired(o->cancel))
		return ccb_error_set(err, CCB_ERR_CANCELLED, "dial cancelled");
	deadline = t0 + (o->timeout_ms > 0 ? o->timeout_ms : CCB_DIAL_DEFAULT_TIMEOUT_MS);
	if ((rc = ccb_sinful_parse_address(address, &s, err)))
		return rc;
	if (ccb__dial_outbound_wanted(o, address)) {
		rc = ccb__dial_outbound(address, o, t0, deadline, out, err);
		goto out;
	}
	if ((rc = apply_privnet(o, t0, &s, err)))
		goto out;
	if (ccb_sinful_ccbid(s)) {
		ccb_dial_opts copy = *o;

		if ((rc = ccb_sinful_ccb_contacts(s, &contacts, &n, err)))
			goto out;
		if (n == 0) {
			rc = ccb_error_set(err, CCB_ERR_INVALID_ARG, "dial %s: empty CCBID", address);
			goto out;
		}
		if (!copy.target_shared_port_id)
			copy.target_shared_port_id = ccb_sinful_shared_port_id(s);
		rc = ccb_dial((const char *const *)contacts, n, &copy, out, err);
	} else if (ccb_sinful_port(s) <= 0) {
		rc = ccb_error_set(err, CCB_ERR_INVALID_ARG, "dial %s: no port", address);
	} else if (ccb_sinful_shared_port_id(s)) {
		direct_event(o, t0, "connect", CCB_OK, "through shared port");
		rc = ccb_sharedport_dial(ccb_sinful_host(s), (uint16_t)ccb_sinful_port(s),
					 ccb_sinful_shared_port_id(s), o->shared_port_client_name,
					 deadline, out, err);
		if (rc == CCB_OK) {
			direct_event(o, t0, "shared port", CCB_OK, "SHARED_PORT_CONNECT sent");
			ccb_stream_set_deadline(*out, INT64_MAX);
			if (o->info) {
				memset(o->info, 0, sizeof *o->info);
				o->info->via_shared_port = true;
			}
		}
	} else {
		int fd;
		direct_event(o, t0, "connect", CCB_OK, "direct");
		rc = ccb_tcp_connect(ccb_sinful_host(s), ccb_sinful_port(s), deadline, "target", &fd,
				     err);
		if (rc == CCB_OK)
			rc = ccb_stream_new(fd, out, err);
		if (rc == CCB_OK && o->info)
			memset(o->info, 0, sizeof *o->info);
	}
	if (rc == CCB_OK && o->info && !ccb_sinful_ccbid(s))
		o->info->elapsed_ms = ccb_now_ms() - t0;
	if (rc && !ccb_sinful_ccbid(s))
		direct_event(o, t0, "failed", rc, err ? err->detail : "");
out:
	ccb_addr_strv_free(contacts);
	ccb_sinful_free(s);
	return rc;
}

ccb_err ccb_dial_command(const char *address, const ccb_dial_opts *opts,
			 const ccb_sec_client_config *target_sec, int command, int auth_command,
			 ccb_stream **out, ccb_sec_info *info, ccb_error *err)
{
	int64_t t0 = ccb_now_ms();
	int timeout = opts && opts->timeout_ms > 0 ? opts->timeout_ms : CCB_DIAL_DEFAULT_TIMEOUT_MS;
	ccb_sec_client_config sc;
	ccb_sec_info tmp;
	ccb_sinful *s = NULL;
	ccb_stream *st = NULL;
	ccb_err rc;

	if (out)
		*out = NULL;
	if (!target_sec || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "dial command: need target_sec and out");
	sc = *target_sec;
	/* SSL names the server by the alias, else the host dialed
	 * (security-handshake.md §7.5). */
	if (!sc.ssl_server_host && ccb_sinful_parse_address(address, &s, NULL) == CCB_OK)
		sc.ssl_server_host = ccb_sinful_alias(s) ? ccb_sinful_alias(s) : ccb_sinful_host(s);
	/* Twice at most: a refused cached session is forgotten, so the second
	 * connection negotiates a new one. */
	for (int tries = 0; tries < 2; tries++) {
		if ((rc = ccb_dial_sinful(address, opts, &st, err)))
			break;
		ccb_stream_set_deadline(st, t0 + timeout);
		rc = ccb_sec_client_start(st, &sc, command, auth_command, address,
					  info ? info : &tmp, err);
		if (rc != CCB_ERR_SESSION_REFUSED)
			break;
		ccb_stream_free(st);
		st = NULL;
	}
	ccb_sinful_free(s);
	if (rc && !st)
		return rc;
	if (rc) {
		ccb_error_prefix(err, "dial command %d to %s: ", command, address);
		ccb_stream_free(st);
		return rc;
	}
	ccb_stream_set_deadline(st, INT64_MAX);
	*out = st;
	return CCB_OK;
}

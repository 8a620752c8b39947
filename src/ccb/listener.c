/*
 * CCB listener: registration with every configured broker, heartbeats, dead
 * broker detection, reconnects, and reverse connects for forwarded requests
 * (ccb-protocol.md §4, §5, §6.3-§6.4, §7.5, §8; ccb-behaviour-notes.md §1.2).
 *
 * Threads: one worker per broker (reg_main, here); in listener_rc.c, one
 * reverse-connect loop per listener (listener-wide epoll) that runs every
 * pending reverse connect as a non-blocking socket with its own deadlines,
 * so thousands can be in flight without a thread each, and one thread per
 * established connection while the embedder's handler runs (bounded by
 * max_reverse_connects). All shared state sits behind l->mu. Only the worker
 * touches its registration stream (other threads only shut it down to
 * cancel it); the loop queues result ads and wakes the worker through its
 * wake-up (util/wakeup.h). A listener-wide stop signal, raised once by
 * stop() and never drained, wakes every poll() for good.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "ccb/addr.h"
#include "ccb/listener.h"
#include "ccb/sharedport.h"
#include "ccb/wire.h"
#include "cedar/connect.h"
#include "listener_internal.h"
#include "listener_test.h"
#include "listener_sock.h"
#include "security/policy.h"
#include "addr/addr_internal.h"
#include "ccb/sec_copy.h"
#include "util/util.h"

#define DEFAULT_NAME "LISTENER" /* followed by our address, as C++ "<SUBSYS> <sinful>" */
#define DEFAULT_HEARTBEAT_S 300 /* param table, H:src/condor_utils/param_info.in:4390-4396 */
#define MIN_HEARTBEAT_S 30      /* lst:57-77 */
#define DEFAULT_RECONNECT_S 60  /* CCB_RECONNECT_TIME code default, §4.5 */
#define DEFAULT_TIMEOUT_S 300   /* CCB_TIMEOUT, §13 */
#define DEFAULT_DIAL_S 30       /* Go DialTimeout, §13 */
#define DEFAULT_MAX_JOBS 64     /* handlers running at once */
#define DEFAULT_CONNECT_MS 5000 /* reverse connect: TCP connect deadline */
#define DEFAULT_HELLO_MS 3000   /* then: a free handler and the hello written */
#define DEFAULT_MAX_PENDING 4096
#define DEFAULT_MAX_PENDING_PER_REQUESTER 16
#define COLLECTOR_PORT 9618     /* a CCB_ADDRESS entry without port, §3.3 */

static const char *const state_names[] = {"idle", "connecting", "authenticating", "registering",
					  "registered", "reconnect_wait", "stopped"};

/* ---- small helpers ---------------------------------------------------------- */

static bool is_stopping(ccb_listener *l)
{
	bool b;
	pthread_mutex_lock(&l->mu);
	b = l->stopping;
	pthread_mutex_unlock(&l->mu);
	return b;
}

static void set_state(reg *r, reg_state st)
{
	pthread_mutex_lock(&r->l->mu);
	r->state = st;
	pthread_mutex_unlock(&r->l->mu);
}

/* Poll `fd` (may be -1) and `wakefd` (may be -1) plus the stop fd. Returns a
 * mask: 1 fd readable/writable, 2 wakefd readable, 4 stop, 0 timeout. */
int ccb__lst_wait_any(ccb_listener *l, int fd, short events, int wakefd, int timeout_ms)
{
	struct pollfd p[3];
	int n = 0, ifd = -1, iwake = -1, rc, mask = 0;

	p[n].fd = ccb__wakeup_fd(&l->stop_signal);
	p[n].events = POLLIN;
	n++;
	if (fd >= 0) {
		ifd = n;
		p[n].fd = fd;
		p[n].events = events;
		n++;
	}
	if (wakefd >= 0) {
		iwake = n;
		p[n].fd = wakefd;
		p[n].events = POLLIN;
		n++;
	}
	do
		rc = poll(p, (nfds_t)n, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc <= 0)
		return 0;
	if (p[0].revents)
		mask |= 4;
	if (ifd >= 0 && p[ifd].revents)
		mask |= 1;
	if (iwake >= 0 && p[iwake].revents)
		mask |= 2;
	return mask;
}

/* Open a stream to `host`:`port` (through shared port when `spid` is set),
 * published in *slot under l->mu so that stop() can shut it down. */
static ccb_err open_stream(ccb_listener *l, const char *host, int port, const char *spid,
			   int64_t deadline, int timeout_ms, const char *what, ccb_stream **slot,
			   ccb_stream **out, ccb_error *err)
{
	ccb_stream *s = NULL;
	char peer[128];
	int fd;
	ccb_err rc;

	*out = NULL;
	/* The stop fd cuts the connect short (cedar/connect.h). */
	rc = ccb__tcp_connect(host, port, deadline, what, ccb__wakeup_fd(&l->stop_signal), &fd,
			      err);
	if (rc)
		return rc;
	rc = ccb_stream_new(fd, &s, err);
	if (rc)
		return rc;
	snprintf(peer, sizeof peer, "%s %s:%d", what, host, port);
	ccb_stream_set_peer_name(s, peer);
	ccb_stream_set_timeout(s, timeout_ms);
	pthread_mutex_lock(&l->mu);
	if (l->stopping) {
		pthread_mutex_unlock(&l->mu);
		ccb_stream_free(s);
		return ccb_error_set(err, CCB_ERR_CANCELLED, "%s: stopped", peer);
	}
	*slot = s;
	pthread_mutex_unlock(&l->mu);
	if (spid) {
		/* <host:port?sock=id>: SHARED_PORT_CONNECT first (shared-port.md). */
		rc = ccb_sharedport_send_connect(s, spid, NULL, deadline, err);
		if (rc) {
			pthread_mutex_lock(&l->mu);
			*slot = NULL;
			pthread_mutex_unlock(&l->mu);
			ccb_stream_free(s);
			return rc;
		}
	}
	*out = s;
	return CCB_OK;
}

static void close_stream(ccb_listener *l, ccb_stream **slot)
{
	ccb_stream *s;

	pthread_mutex_lock(&l->mu);
	s = *slot;
	*slot = NULL;
	pthread_mutex_unlock(&l->mu);
	ccb_stream_free(s);
}

/* Host, port and shared-port id of an address text (CCB_ADDRESS entry or a
 * MyAddress sinful). */
ccb_err ccb__lst_split_address(const char *text, int dflt_port, char **host, int *port, char **spid,
			     char **alias, char **printed, ccb_error *err)
{
	ccb_sinful *s = NULL;
	ccb_err rc = ccb_sinful_parse_address(text, &s, err);

	*host = *spid = NULL;
	if (alias)
		*alias = NULL;
	if (printed)
		*printed = NULL;
	if (rc)
		return rc;
	*port = ccb_sinful_port(s) >= 0 ? ccb_sinful_port(s) : dflt_port;
	if (*port <= 0) {
		ccb_sinful_free(s);
		return ccb_error_set(err, CCB_ERR_PARSE, "address %s has no port", text);
	}
	*host = ccb_strdup(ccb_sinful_host(s));
	if (ccb_sinful_shared_port_id(s))
		*spid = ccb_strdup(ccb_sinful_shared_port_id(s));
	if (alias && ccb_sinful_alias(s))
		*alias = ccb_strdup(ccb_sinful_alias(s));
	if (printed)
		*printed = ccb__sinful_format(s);
	if (!*host || (ccb_sinful_shared_port_id(s) && !*spid) ||
	    (alias && ccb_sinful_alias(s) && !*alias) || (printed && !*printed)) {
		/* No half-parsed address: a lost shared-port id or alias would
		 * send us to the wrong endpoint or check the wrong name. */
		ccb_sinful_free(s);
		free(*host);
		free(*spid);
		*host = *spid = NULL;
		if (alias) {
			free(*alias);
			*alias = NULL;
		}
		if (printed) {
			free(*printed);
			*printed = NULL;
		}
		return ccb_error_set(err, CCB_ERR_NOMEM, "address %s: out of memory", text);
	}
	ccb_sinful_free(s);
	return CCB_OK;
}

static void free_queue(reg *r)
{
	while (r->q_head) {
		result_item *it = r->q_head;
		r->q_head = it->next;
		ccb_classad_free(it->ad);
		free(it);
	}
	r->q_tail = NULL;
}

/* ---- one registration session (§4) ------------------------------------------- */

/* Serve the registration until it fails or stop. */
static ccb_err serve(reg *r, ccb_stream *s, unsigned peer_version, ccb_error *err)
{
	ccb_listener *l = r->l;
	/* C++ sends no heartbeats to brokers older than 7.5.0 (§5.2). */
	int64_t hb = peer_version && peer_version < CCB_VERSION_NUM(7, 5, 0) ? 0 : l->heartbeat_ms;
	int64_t last_recv = ccb_now_ms(), last_hb = last_recv;
	int fd = ccb_stream_fd(s);

	for (;;) {
		result_item *q;
		int64_t now, wait_until = INT64_MAX;
		int m;

		/* Send queued result reports (this thread is the only writer). */
		pthread_mutex_lock(&l->mu);
		q = r->q_head;
		r->q_head = r->q_tail = NULL;
		pthread_mutex_unlock(&l->mu);
		while (q) {
			result_item *it = q;
			ccb_err rc = ccb_control_ad_write(s, it->ad, peer_version, err);
			q = it->next;
			ccb_classad_free(it->ad);
			free(it);
			if (rc) {
				while (q) {
					it = q;
					q = it->next;
					ccb_classad_free(it->ad);
					free(it);
				}
				return ccb_error_prefix(err, "send result report: ");
			}
		}
		now = ccb_now_ms();
		if (hb > 0) {
			/* ALIVE after `hb` of silence; dead after 3x that (§5.2). */
			int64_t hb_due = (last_recv > last_hb ? last_recv : last_hb) + hb;
			int64_t dead_at = last_recv + 3 * hb;

			if (now >= dead_at)
				return ccb_error_set(err, CCB_ERR_TIMEOUT,
						     "broker %s silent for %lld ms (3 heartbeat intervals)",
						     r->address, (long long)(now - last_recv));
			if (now >= hb_due) {
				ccb_ad_field f[] = {CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_ALIVE)};
				ccb_classad *ad = NULL;
				ccb_err rc = ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, err);
				if (rc == CCB_OK)
					rc = ccb_control_ad_write(s, ad, peer_version, err);
				ccb_classad_free(ad);
				if (rc)
					return ccb_error_prefix(err, "send heartbeat: ");
				last_hb = now;
				pthread_mutex_lock(&l->mu);
				r->heartbeats_sent++;
				pthread_mutex_unlock(&l->mu);
				continue;
			}
			wait_until = hb_due < dead_at ? hb_due : dead_at;
		}
		m = ccb__lst_wait_any(l, fd, POLLIN, ccb__wakeup_fd(&r->wake),
			     wait_until == INT64_MAX ? -1 : ccb_deadline_left(wait_until));
		if (m & 4)
			return ccb_error_set(err, CCB_ERR_CANCELLED, "stopped");
		if (m & 2)
			ccb__wakeup_drain(&r->wake);
		if (m & 1) {
			ccb_classad *ad = NULL;
			int64_t cmd = -1;
			ccb_err rc = ccb_control_ad_read(s, &ad, err);

			if (rc)
				return ccb_error_prefix(err, "read from broker: ");
			last_recv = ccb_now_ms();
			ccb_classad_get_int(ad, CCB_ATTR_COMMAND, &cmd);
			if (cmd == CCB_CMD_ALIVE) {
				pthread_mutex_lock(&l->mu);
				r->last_heartbeat = ccb_wall_s();
				pthread_mutex_unlock(&l->mu);
			} else if (cmd == CCB_CMD_CCB_REQUEST) {
				if (!ccb__lst_handle_request(r, s, peer_version, ad)) {
					ccb_classad_free(ad);
					return ccb_error_set(err, ccb_stream_error(s)->code,
							     "send failure report: %s",
							     ccb_stream_error(s)->detail);
				}
			} else {
				CCB_LOG(CCB_LOG_DEBUG,
					"ccb listener: ignoring message with Command %lld from broker %s",
					(long long)cmd, r->address);
			}
			ccb_classad_free(ad);
		}
	}
}

static ccb_err reg_session(reg *r, bool *was_registered, ccb_error *err)
{
	ccb_listener *l = r->l;
	ccb_sec_client_config sc = l->sec;
	ccb_sec_info info;
	ccb_classad *ad = NULL, *reply = NULL;
	ccb_stream *s = NULL;
	const char *ccbid = NULL, *cookie = NULL;
	char *old_ccbid = NULL, *old_cookie = NULL;
	char *new_ccbid = NULL, *new_cookie = NULL;
	unsigned peer_version = 0;
	bool streaming = false;
	ccb_err rc;

	set_state(r, ST_CONNECTING);
	rc = open_stream(l, r->host, r->port, r->spid, ccb_deadline_in(l->timeout_ms), l->timeout_ms,
			 "broker", &r->s, &s, err);
	if (rc)
		return rc;
	set_state(r, ST_AUTHENTICATING);
	/* SSL checks the broker's certificate against its alias, else host. */
	if (!sc.ssl_server_host)
		sc.ssl_server_host = r->alias ? r->alias : r->host;
	/* Every registration negotiates a new session, as C++ forces with
	 * USE_TMP_SEC_SESSION (§4.1); our client never resumes anyway. */
	rc = ccb_sec_client_start(s, &sc, CCB_CMD_CCB_REGISTER, 0, r->sinful, &info, err);
	if (rc) {
		ccb_error_prefix(err, "register with %s: ", r->address);
		goto out;
	}
	{
		int a, b, c;
		if (ccb__sec_version_parse(info.peer_version, &a, &b, &c, &peer_version, NULL))
			peer_version = 0;
	}
	set_state(r, ST_REGISTERING);
	pthread_mutex_lock(&l->mu);
	if (r->ccbid && r->cookie) {
		old_ccbid = ccb_strdup(r->ccbid);
		old_cookie = ccb_strdup(r->cookie);
		if (!old_ccbid || !old_cookie)
			rc = ccb_error_set(err, CCB_ERR_NOMEM,
					   "register with %s: out of memory copying the previous CCBID",
					   r->address);
	}
	pthread_mutex_unlock(&l->mu);
	if (rc)
		goto out;
	{
		/* §4.1: Command, Name, and on re-registration the previous CCBID
		 * and cookie verbatim (strings; NULL leaves them out). */
		ccb_ad_field f[] = {
			CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_CCB_REGISTER),
			CCB_AD_STRING(CCB_ATTR_NAME, l->name),
			CCB_AD_STRING(CCB_ATTR_CCBID, old_ccbid),
			CCB_AD_STRING(CCB_ATTR_CLAIM_ID, old_cookie),
		};
		rc = ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, err);
	}
	if (rc == CCB_OK)
		rc = ccb_control_ad_write(s, ad, peer_version, err);
	if (rc == CCB_OK)
		rc = ccb_control_ad_read(s, &reply, err);
	if (rc) {
		ccb_error_prefix(err, "register with %s: ", r->address);
		goto out;
	}
	/* §4.2: CCBID is required (C++ aborts without it, Go errors); the
	 * cookie and CCBStreaming are optional; unknown attributes ignored. */
	rc = ccb_ad_need_string(reply, CCB_ATTR_CCBID, &ccbid, err);
	if (rc == CCB_OK && (!ccbid[0] || strlen(ccbid) > CCB_ADDR_MAX_TEXT))
		rc = ccb_error_set(err, CCB_ERR_PROTOCOL, "empty or oversized CCBID");
	if (rc) {
		ccb_error_prefix(err, "register reply from %s: ", r->address);
		goto out;
	}
	cookie = ccb_ad_string_or(reply, CCB_ATTR_CLAIM_ID, NULL);
	streaming = ccb_ad_bool_or(reply, CCB_ATTR_CCB_STREAMING, false);
	/* Copy before touching r: a copy that fails is a failed registration,
	 * never one marked registered with a NULL CCBID. */
	new_ccbid = ccb_strdup(ccbid);
	new_cookie = cookie ? ccb_strdup(cookie) : NULL;
	if (!new_ccbid || (cookie && !new_cookie)) {
		rc = ccb_error_set(err, CCB_ERR_NOMEM,
				   "register reply from %s: out of memory copying the CCBID/cookie",
				   r->address);
		goto out;
	}
	pthread_mutex_lock(&l->mu);
	free(r->ccbid);
	r->ccbid = new_ccbid;
	new_ccbid = NULL;
	ccb__free_secret(r->cookie);
	r->cookie = new_cookie;
	new_cookie = NULL;
	r->streaming = streaming;
	r->registered = true;
	r->registered_at = ccb_wall_s();
	/* Registered again: the failure that led here is history (issue 13). */
	if (r->last_error[0]) {
		memcpy(r->previous_error, r->last_error, sizeof r->previous_error);
		r->previous_error_at = r->last_error_at;
		r->last_error[0] = '\0';
		r->last_error_at = 0;
	}
	r->session++;
	r->registrations++;
	r->state = ST_REGISTERED;
	l->gen++;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	*was_registered = true;
	CCB_LOG(CCB_LOG_INFO, "ccb listener: registered with %s as %s%s", r->address, ccbid,
		old_ccbid && strcmp(old_ccbid, ccbid) ? " (new CCBID)" : "");
	rc = serve(r, s, peer_version, err);
out:
	ccb__free_secret(old_cookie);
	free(old_ccbid);
	ccb__free_secret(new_cookie);
	free(new_ccbid);
	ccb_classad_free(ad);
	ccb_classad_free(reply);
	close_stream(l, &r->s);
	return rc;
}

static int64_t jittered(int64_t ms)
{
	uint32_t rnd = 0;

	ccb_random_bytes(&rnd, sizeof rnd, NULL);
	/* Uniform in [75%, 125%] of the interval. */
	return ms * 3 / 4 + (int64_t)(rnd % (uint64_t)(ms / 2 + 1));
}

static void *reg_main(void *arg)
{
	reg *r = arg;
	ccb_listener *l = r->l;

	while (!is_stopping(l)) {
		ccb_error err = {0};
		bool was_registered = false;
		ccb_err rc = reg_session(r, &was_registered, &err);
		int64_t until;

		pthread_mutex_lock(&l->mu);
		if (r->registered) {
			r->registered = false;
			l->gen++;
			pthread_cond_broadcast(&l->cv);
		}
		free_queue(r);
		if (!l->stopping && rc) {
			snprintf(r->last_error, sizeof r->last_error, "%s", err.detail);
			r->last_error_at = ccb_wall_s();
			r->state = ST_RECONNECT_WAIT;
		}
		pthread_mutex_unlock(&l->mu);
		if (rc == CCB_ERR_CANCELLED || is_stopping(l))
			break;
		CCB_LOG(CCB_LOG_WARNING, "ccb listener: broker %s: %s; retrying", r->address,
			err.detail);
		until = ccb_now_ms() + jittered(l->reconnect_ms);
		while (ccb_now_ms() < until)
			if (ccb__lst_wait_any(l, -1, 0, -1, ccb_deadline_left(until)) & 4)
				break;
		pthread_mutex_lock(&l->mu);
		if (!l->stopping)
			r->reconnects++;
		pthread_mutex_unlock(&l->mu);
	}
	set_state(r, ST_STOPPED);
	return NULL;
}

/* ---- public API ---------------------------------------------------------------- */

ccb_err ccb_listener_new(const ccb_listener_config *cfg, ccb_listener **out, ccb_error *err)
{
	ccb_listener *l;
	size_t n, i;

	if (out)
		*out = NULL;
	if (!cfg || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener: NULL config or out");
	if (!cfg->handler)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener: a connection handler is required");
	n = cfg->n_brokers + (cfg->broker ? 1 : 0);
	if (n == 0 || (cfg->n_brokers && !cfg->brokers))
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener: no broker address");
	l = calloc(1, sizeof *l);
	if (!l)
		return ccb_error_set(err, CCB_ERR_NOMEM, "listener");
	pthread_mutex_init(&l->mu, NULL);
	pthread_mutex_init(&l->stop_mu, NULL);
	{
		/* Timed waits run on the monotonic clock, as the dial's do. */
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&l->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	l->stop_signal = (ccb__wakeup)CCB__WAKEUP_NONE;
	l->epfd = -1;
	l->rc_wake = (ccb__wakeup)CCB__WAKEUP_NONE;
	l->cmd_fd = -1;
	l->handler = cfg->handler;
	l->user = cfg->user;
	/* HTCondor raises a heartbeat of 1-29 s to 30 s; in ms, 1..29999. */
	if (cfg->heartbeat_interval_ms < 0)
		l->heartbeat_ms = 0;
	else if (cfg->heartbeat_interval_ms == 0)
		l->heartbeat_ms = DEFAULT_HEARTBEAT_S * 1000;
	else
		l->heartbeat_ms = cfg->heartbeat_interval_ms < MIN_HEARTBEAT_S * 1000
					  ? MIN_HEARTBEAT_S * 1000
					  : cfg->heartbeat_interval_ms;
	l->reconnect_ms = cfg->reconnect_interval_ms > 0 ? cfg->reconnect_interval_ms
							 : DEFAULT_RECONNECT_S * 1000;
	l->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_S * 1000;
	l->dial_ms = cfg->dial_timeout_ms > 0 ? cfg->dial_timeout_ms : DEFAULT_DIAL_S * 1000;
	l->max_jobs = cfg->max_reverse_connects > 0 ? cfg->max_reverse_connects : DEFAULT_MAX_JOBS;
	l->connect_ms = cfg->reverse_connect_timeout_ms > 0 ? cfg->reverse_connect_timeout_ms
							     : DEFAULT_CONNECT_MS;
	l->hello_ms = cfg->reverse_hello_timeout_ms > 0 ? cfg->reverse_hello_timeout_ms
							 : DEFAULT_HELLO_MS;
	l->max_pending = cfg->max_pending_reverse_connects > 0 ? cfg->max_pending_reverse_connects
							       : DEFAULT_MAX_PENDING;
	l->max_pending_per_requester = cfg->max_pending_per_requester > 0
					       ? cfg->max_pending_per_requester
					       : DEFAULT_MAX_PENDING_PER_REQUESTER;
	l->regs = calloc(n, sizeof *l->regs);
	if (cfg->private_network_name && *cfg->private_network_name)
		l->privnet = ccb_strdup(cfg->private_network_name);
	if (!l->regs || !ccb__sec_client_copy(&l->sec, &cfg->security) ||
	    (cfg->private_network_name && *cfg->private_network_name && !l->privnet)) {
		ccb_listener_free(l);
		return ccb_error_set(err, CCB_ERR_NOMEM, "listener");
	}
	if (ccb__wakeup_init(&l->stop_signal, err) || ccb__wakeup_init(&l->rc_wake, err)) {
		ccb_error_prefix(err, "listener: ");
		ccb_listener_free(l);
		return CCB_ERR_IO;
	}
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		ccb_error_set(err, CCB_ERR_IO, "listener: epoll: %s", ccb__strerror(errno));
		ccb_listener_free(l);
		return CCB_ERR_IO;
	}
	{
		struct epoll_event e1 = {.events = EPOLLIN, .data.ptr = &l->stop_signal};
		struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = &l->rc_wake};
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, ccb__wakeup_fd(&l->stop_signal), &e1) < 0 ||
		    epoll_ctl(l->epfd, EPOLL_CTL_ADD, ccb__wakeup_fd(&l->rc_wake), &e2) < 0) {
			ccb_error_set(err, CCB_ERR_IO, "listener: epoll: %s", ccb__strerror(errno));
			ccb_listener_free(l);
			return CCB_ERR_IO;
		}
	}
	for (i = 0; i < n; i++) {
		reg *r = &l->regs[i];
		const char *a = i < cfg->n_brokers ? cfg->brokers[i] : cfg->broker;
		ccb_err rc;

		l->nregs = i + 1;
		r->l = l;
		r->index = i;
		r->wake = (ccb__wakeup)CCB__WAKEUP_NONE;
		if (!a || !(r->address = ccb_strdup(a))) {
			ccb_listener_free(l);
			return ccb_error_set(err, a ? CCB_ERR_NOMEM : CCB_ERR_INVALID_ARG,
					     "listener: broker %zu", i);
		}
		rc = ccb__lst_split_address(a, COLLECTOR_PORT, &r->host, &r->port, &r->spid, &r->alias,
				   &r->sinful, err);
		if (rc) {
			if (rc != CCB_ERR_NOMEM) {
				rc = CCB_ERR_INVALID_ARG;
				if (err)
					err->code = rc;
			}
			ccb_error_prefix(err, "listener: broker address \"%s\": ", a);
			ccb_listener_free(l);
			return rc;
		}
		if (ccb__wakeup_init(&r->wake, err)) {
			ccb_error_prefix(err, "listener: ");
			ccb_listener_free(l);
			return CCB_ERR_IO;
		}
	}
	{
		/* The command socket, or the embedder's own address. */
		ccb_err rc = cfg->own_command_address
				     ? ccb__listener_own_address(cfg->own_command_address, &l->base, err)
				     : ccb__listener_open_command(cfg->command_address, l->regs[0].host,
								  cfg->alias, &l->cmd_fd, &l->base, err);
		if (rc) {
			ccb_error_prefix(err, "listener: ");
			ccb_listener_free(l);
			return rc;
		}
		/* CCBID and PrivNet are ours to set in ccb_listener_sinful(). */
		ccb_sinful_set_param(l->base, CCB_SINFUL_CCBID, NULL, NULL);
		ccb_sinful_set_param(l->base, CCB_SINFUL_PRIVNET, NULL, NULL);
		l->base_text = ccb__sinful_format(l->base);
		if (cfg->name)
			l->name = ccb_strdup(cfg->name);
		else if (l->base_text && asprintf(&l->name, "%s %s", DEFAULT_NAME, l->base_text) < 0)
			l->name = NULL;
		if (!l->base_text || !l->name) {
			ccb_listener_free(l);
			return ccb_error_set(err, CCB_ERR_NOMEM, "listener");
		}
	}
	*out = l;
	return CCB_OK;
}

ccb_err ccb_listener_start(ccb_listener *l, ccb_error *err)
{
	size_t i;

	if (!l)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener: NULL");
	pthread_mutex_lock(&l->mu);
	if (l->started || l->stopping) {
		pthread_mutex_unlock(&l->mu);
		return ccb_error_set(err, CCB_ERR_STATE, "listener already started or stopped");
	}
	l->started = true;
	pthread_mutex_unlock(&l->mu);
	/* The thread handles are written under stop_mu, so a stop from
	 * another thread sees every thread started or none of a failed one. */
	pthread_mutex_lock(&l->stop_mu);
	{
		int e = pthread_create(&l->rc_thread, NULL, ccb__lst_rc_main, l);
		if (e) {
			pthread_mutex_unlock(&l->stop_mu);
			ccb_listener_stop(l);
			return ccb_error_set(err, CCB_ERR_IO, "listener: reverse-connect thread: %s",
					     ccb__strerror(e));
		}
		l->rc_thread_started = true;
	}
	if (l->cmd_fd >= 0) {
		int e = pthread_create(&l->cmd_thread, NULL, ccb__lst_cmd_main, l);
		if (e) {
			pthread_mutex_unlock(&l->stop_mu);
			ccb_listener_stop(l);
			return ccb_error_set(err, CCB_ERR_IO, "listener: command socket thread: %s",
					     ccb__strerror(e));
		}
		l->cmd_thread_started = true;
	}
	for (i = 0; i < l->nregs; i++) {
		int e = pthread_create(&l->regs[i].thread, NULL, reg_main, &l->regs[i]);
		if (e) {
			pthread_mutex_unlock(&l->stop_mu);
			ccb_listener_stop(l);
			return ccb_error_set(err, CCB_ERR_IO, "listener: thread for broker %s: %s",
					     l->regs[i].address, ccb__strerror(e));
		}
		l->regs[i].thread_started = true;
	}
	pthread_mutex_unlock(&l->stop_mu);
	return CCB_OK;
}

void ccb_listener_stop(ccb_listener *l)
{
	size_t i;

	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	ccb__wakeup_signal(&l->stop_signal);
	for (i = 0; i < l->nregs; i++)
		if (l->regs[i].s)
			ccb_stream_shutdown(l->regs[i].s);
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	/* From one of our own handler threads the stop is only asked for: that
	 * thread cannot join itself. ccb_listener_free(), or a stop from any
	 * other thread, joins it after the handler has returned. */
	if (ccb__lst_in_handler(l))
		return;
	/* One stop at a time joins and frees; a second waits, then finds
	 * nothing left to do. */
	pthread_mutex_lock(&l->stop_mu);
	if (l->cmd_thread_started) {
		pthread_join(l->cmd_thread, NULL);
		l->cmd_thread_started = false;
	}
	for (i = 0; i < l->nregs; i++) {
		if (l->regs[i].thread_started) {
			pthread_join(l->regs[i].thread, NULL);
			l->regs[i].thread_started = false;
		}
		pthread_mutex_lock(&l->mu);
		l->regs[i].state = ST_STOPPED;
		pthread_mutex_unlock(&l->mu);
	}
	if (l->rc_thread_started) {
		pthread_join(l->rc_thread, NULL);
		l->rc_thread_started = false;
	}
	/* No worker or loop is left to queue or start anything. */
	pthread_mutex_lock(&l->mu);
	ccb__lst_pend_free_all(l);
	pthread_mutex_unlock(&l->mu);
	ccb__lst_reap_jobs(l, true);
	pthread_mutex_unlock(&l->stop_mu);
}

void ccb__listener_set_test_heartbeat(ccb_listener *l, int heartbeat_ms)
{
	l->heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms : 0;
}

bool ccb_listener_stopping(ccb_listener *l)
{
	return l ? is_stopping(l) : true;
}

void ccb_listener_free(ccb_listener *l)
{
	size_t i;

	if (!l)
		return;
	ccb_listener_stop(l);
	for (i = 0; i < l->nregs; i++) {
		reg *r = &l->regs[i];
		free(r->address);
		free(r->sinful);
		free(r->host);
		free(r->spid);
		free(r->alias);
		free(r->ccbid);
		ccb__free_secret(r->cookie);
		free_queue(r);
		ccb__wakeup_close(&r->wake);
	}
	free(l->regs);
	free(l->name);
	if (l->cmd_fd >= 0)
		close(l->cmd_fd);
	ccb_sinful_free(l->base);
	free(l->base_text);
	free(l->privnet);
	ccb__sec_client_clear(&l->sec);
	ccb__wakeup_close(&l->stop_signal);
	if (l->epfd >= 0)
		close(l->epfd);
	ccb__wakeup_close(&l->rc_wake);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->stop_mu);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

size_t ccb_listener_num_registered(ccb_listener *l)
{
	size_t n = 0, i;

	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->nregs; i++)
		n += l->regs[i].registered;
	pthread_mutex_unlock(&l->mu);
	return n;
}

static void deadline_ts(int64_t ms, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Wait on l->cv (held) until `until` (INT64_MAX: forever); false on timeout. */
static bool cv_wait_until(ccb_listener *l, int64_t until)
{
	struct timespec ts;
	int64_t left;

	if (until == INT64_MAX) {
		pthread_cond_wait(&l->cv, &l->mu);
		return true;
	}
	left = until - ccb_now_ms();
	if (left <= 0)
		return false;
	deadline_ts(left, &ts);
	pthread_cond_timedwait(&l->cv, &l->mu, &ts);
	return true;
}

ccb_err ccb_listener_wait_registered(ccb_listener *l, size_t n, int timeout_ms, ccb_error *err)
{
	int64_t until = timeout_ms < 0 ? INT64_MAX : ccb_now_ms() + timeout_ms;
	ccb_err rc = CCB_ERR_TIMEOUT;
	size_t k = 0;

	if (!l)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "wait for registration: NULL listener");
	pthread_mutex_lock(&l->mu);
	for (;;) {
		size_t i;
		k = 0;
		for (i = 0; i < l->nregs; i++)
			k += l->regs[i].registered;
		if (k >= n) {
			rc = CCB_OK;
			break;
		}
		if (l->stopping) {
			rc = CCB_ERR_CANCELLED;
			break;
		}
		if (!cv_wait_until(l, until))
			break;
	}
	pthread_mutex_unlock(&l->mu);
	if (rc == CCB_ERR_TIMEOUT)
		return ccb_error_set(err, rc, "timed out after %d ms waiting for %zu broker registrations (%zu registered)",
				     timeout_ms, n, k);
	if (rc == CCB_ERR_CANCELLED)
		return ccb_error_set(err, rc, "listener stopped while waiting for %zu broker registrations (%zu registered)",
				     n, k);
	return CCB_OK;
}

ccb_err ccb_listener_wait_change(ccb_listener *l, uint64_t *gen, int timeout_ms, ccb_error *err)
{
	int64_t until = timeout_ms < 0 ? INT64_MAX : ccb_now_ms() + timeout_ms;
	bool changed, stopping;

	if (!l || !gen)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "wait for a contact change: NULL argument");
	pthread_mutex_lock(&l->mu);
	while (l->gen == *gen && timeout_ms != 0 && !l->stopping && cv_wait_until(l, until))
		;
	changed = l->gen != *gen;
	stopping = l->stopping;
	*gen = l->gen;
	pthread_mutex_unlock(&l->mu);
	if (changed)
		return CCB_OK;
	if (stopping)
		return ccb_error_set(err, CCB_ERR_CANCELLED, "listener stopped while waiting for a contact change");
	return ccb_error_set(err, CCB_ERR_TIMEOUT, "contacts unchanged after %d ms", timeout_ms);
}

ccb_err ccb_listener_contacts(ccb_listener *l, char ***out, size_t *n, ccb_error *err)
{
	ccb_buf b;
	ccb_err rc;
	size_t i;

	if (!l || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener contacts: NULL argument");
	ccb_buf_init(&b);
	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->nregs; i++)
		if (l->regs[i].registered && l->regs[i].ccbid) {
			ccb_buf_append_str(&b, l->regs[i].ccbid);
			ccb_buf_append_str(&b, " ");
		}
	pthread_mutex_unlock(&l->mu);
	if (!ccb_buf_terminate(&b)) {
		ccb_buf_free(&b);
		return ccb_error_set(err, CCB_ERR_NOMEM, "listener contacts: out of memory");
	}
	rc = ccb_contact_list_split((const char *)b.data, out, n, err);
	ccb_buf_free(&b);
	if (rc)
		ccb_error_prefix(err, "listener contacts: ");
	return rc;
}

ccb_err ccb_listener_contact_list(ccb_listener *l, char **out, ccb_error *err)
{
	char **v = NULL;
	size_t n = 0;
	ccb_err rc;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener contact list: NULL out");
	*out = NULL;
	if ((rc = ccb_listener_contacts(l, &v, &n, err)))
		return rc;
	if (n == 0 && !(*out = ccb_strdup("")))
		rc = ccb_error_set(err, CCB_ERR_NOMEM, "listener contact list: out of memory");
	else if (n > 0)
		rc = ccb_contact_list_join((const char *const *)v, n, out, err);
	ccb_strv_free(v);
	return rc;
}

bool ccb_listener_broker_supports_streaming(ccb_listener *l, size_t index)
{
	bool b = false;

	pthread_mutex_lock(&l->mu);
	if (index < l->nregs)
		b = l->regs[index].registered && l->regs[index].streaming;
	pthread_mutex_unlock(&l->mu);
	return b;
}

ccb_err ccb_listener_status_json(ccb_listener *l, char **out, ccb_error *err)
{
	json_t *root, *arr;
	char *contacts = NULL;
	size_t i, nreg = 0;
	ccb_err rc;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener status: NULL out");
	*out = NULL;
	if (!l)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener status: NULL listener");
	if ((rc = ccb_listener_contact_list(l, &contacts, err)))
		return ccb_error_prefix(err, "listener status: ");
	root = json_object();
	arr = json_array();

	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->nregs; i++) {
		reg *r = &l->regs[i];
		nreg += r->registered;
		json_array_append_new(
			arr, json_pack("{s:s,s:s,s:s?,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:s}", "address",
				       r->address, "state", state_names[r->state], "ccbid",
				       r->registered ? r->ccbid : NULL, "registered_at",
				       (json_int_t)r->registered_at, "last_heartbeat",
				       (json_int_t)r->last_heartbeat, "heartbeats_sent",
				       (json_int_t)r->heartbeats_sent, "registrations",
				       (json_int_t)r->registrations, "reconnects",
				       (json_int_t)r->reconnects, "requests_served", (json_int_t)r->served,
				       "requests_failed", (json_int_t)r->failed, "streaming",
				       r->registered && r->streaming, "last_error", r->last_error));
		{
			json_t *b = json_array_get(arr, json_array_size(arr) - 1);
			json_object_set_new(b, "last_error_at", json_integer(r->last_error_at));
			json_object_set_new(b, "previous_error", json_string(r->previous_error));
			json_object_set_new(b, "previous_error_at",
					    json_integer(r->previous_error_at));
		}
	}
	pthread_mutex_unlock(&l->mu);
	json_object_set_new(root, "registered", json_integer((json_int_t)nreg));
	json_object_set_new(root, "command_address", json_string(l->base_text));
	json_object_set_new(root, "contacts", json_string(contacts ? contacts : ""));
	json_object_set_new(root, "brokers", arr);
	pthread_mutex_lock(&l->mu);
	json_object_set_new(root, "reverse_connects_pending", json_integer(l->npending));
	json_object_set_new(root, "reverse_connects_pending_peak",
			    json_integer((json_int_t)l->pending_peak));
	json_object_set_new(root, "reverse_connects_refused", json_integer((json_int_t)l->refused_busy));
	json_object_set_new(root, "handlers_running", json_integer(l->active_jobs));
	pthread_mutex_unlock(&l->mu);
	*out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	free(contacts);
	if (!*out)
		return ccb_error_set(err, CCB_ERR_NOMEM, "listener status: out of memory");
	return CCB_OK;
}

const char *ccb_listener_address(const ccb_listener *l)
{
	return l ? l->base_text : NULL;
}

ccb_err ccb_listener_sinful(ccb_listener *l, char **out, ccb_error *err)
{
	ccb_sinful *s = NULL;
	char **v = NULL;
	size_t n = 0;
	ccb_err rc;

	if (out)
		*out = NULL;
	if (!l || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener sinful: NULL argument");
	if ((rc = ccb_listener_contacts(l, &v, &n, err)))
		return ccb_error_prefix(err, "listener sinful: ");
	if (n == 0) {
		ccb_strv_free(v);
		return ccb_error_set(err, CCB_ERR_STATE,
				     "listener sinful: not registered with any CCB broker yet, so "
				     "there is no CCBID to advertise");
	}
	/* HTCondor's full daemon sinful: the command address plus CCBID and,
	 * with a CCBID, PrivNet (daemon_core.cpp 1262-1305); the parameters
	 * come out in std::map order (CCBID, PrivNet, addrs, alias, noUDP). */
	rc = ccb_sinful_dup(l->base, &s, err);
	if (rc == CCB_OK)
		rc = ccb_sinful_set_ccb_contacts(s, (const char *const *)v, n, err);
	if (rc == CCB_OK && l->privnet)
		rc = ccb_sinful_set_param(s, CCB_SINFUL_PRIVNET, l->privnet, err);
	if (rc == CCB_OK && !(*out = ccb__sinful_format(s)))
		rc = ccb_error_set(err, CCB_ERR_NOMEM, "listener sinful");
	if (rc)
		ccb_error_prefix(err, "listener sinful: ");
	ccb_sinful_free(s);
	ccb_strv_free(v);
	return rc;
}

/* ---- configuration (§13) -------------------------------------------------------- */

ccb_err ccb_listener_config_load(const ccb_config *c, ccb_listener_config *out, ccb_error *err)
{
	const char *addr;
	long long hb, rec, to, cto, hto, mp, mpr;
	char **v = NULL;
	size_t n = 0;
	ccb_err rc;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener config: NULL out");
	memset(out, 0, sizeof *out);
	addr = ccb_config_get(c, "CCB_ADDRESS");
	if ((rc = ccb_config_int(c, "CCB_LISTENER_CONNECT_TIMEOUT_MS", DEFAULT_CONNECT_MS, &cto, err)) ||
	    (rc = ccb_config_int(c, "CCB_LISTENER_HELLO_TIMEOUT_MS", DEFAULT_HELLO_MS, &hto, err)) ||
	    (rc = ccb_config_int(c, "CCB_LISTENER_MAX_PENDING", DEFAULT_MAX_PENDING, &mp, err)) ||
	    (rc = ccb_config_int(c, "CCB_LISTENER_MAX_PENDING_PER_REQUESTER",
				 DEFAULT_MAX_PENDING_PER_REQUESTER, &mpr, err)))
		return rc;
	if (cto < 1 || cto > 3600000 || hto < 1 || hto > 3600000)
		return ccb_error_set(err, CCB_ERR_CONFIG,
				     "CCB_LISTENER_CONNECT_TIMEOUT_MS and CCB_LISTENER_HELLO_TIMEOUT_MS "
				     "must be between 1 and 3600000 (one hour)");
	if (mp < 1 || mp > 1000000 || mpr < 1 || mpr > 1000000)
		return ccb_error_set(err, CCB_ERR_CONFIG,
				     "CCB_LISTENER_MAX_PENDING and CCB_LISTENER_MAX_PENDING_PER_REQUESTER "
				     "must be between 1 and 1000000");
	if ((rc = ccb_config_int(c, "CCB_HEARTBEAT_INTERVAL", DEFAULT_HEARTBEAT_S, &hb, err)) ||
	    (rc = ccb_config_int(c, "CCB_RECONNECT_TIME", DEFAULT_RECONNECT_S, &rec, err)) ||
	    (rc = ccb_config_int(c, "CCB_TIMEOUT", DEFAULT_TIMEOUT_S, &to, err)) ||
	    (rc = ccb_config_client_security(c, &out->security, err)))
		return rc;
	if (hb < 0 || hb > 86400 * 24 || rec < 0 || rec > 86400 * 24 || to < 0 || to > 86400 * 24)
		return ccb_error_set(err, CCB_ERR_CONFIG,
				     "CCB_HEARTBEAT_INTERVAL, CCB_RECONNECT_TIME and CCB_TIMEOUT must be "
				     "between 0 and 24 days (2073600 s)");
	if (!addr || !*addr)
		return ccb_error_set(err, CCB_ERR_CONFIG, "CCB_ADDRESS is not set");
	rc = ccb_broker_list_split(addr, &v, &n, err);
	if (rc == CCB_OK && n == 0)
		rc = ccb_error_set(err, CCB_ERR_CONFIG, "CCB_ADDRESS names no broker");
	if (rc) {
		ccb_strv_free(v);
		memset(out, 0, sizeof *out);
		return rc == CCB_ERR_NOMEM ? rc : CCB_ERR_CONFIG;
	}
	out->brokers = (const char *const *)v;
	out->n_brokers = n;
	/* The knobs are in seconds (HTCondor's); the struct in milliseconds. */
	out->heartbeat_interval_ms = hb == 0 ? CCB_LISTENER_HEARTBEAT_OFF : (int)hb * 1000;
	out->reconnect_interval_ms = (int)rec * 1000;
	out->timeout_ms = (int)to * 1000;
	out->reverse_connect_timeout_ms = (int)cto;
	out->reverse_hello_timeout_ms = (int)hto;
	out->max_pending_reverse_connects = (int)mp;
	out->max_pending_per_requester = (int)mpr;
	out->name = ccb_config_get(c, "CCB_LISTENER_NAME");
	out->command_address = ccb_config_get(c, "CCB_LISTENER_COMMAND_ADDRESS");
	out->private_network_name = ccb_config_get(c, "PRIVATE_NETWORK_NAME");
	return CCB_OK;
}

void ccb_listener_config_clear(ccb_listener_config *cfg)
{
	if (!cfg)
		return;
	ccb_strv_free((char **)cfg->brokers);
	memset(cfg, 0, sizeof *cfg);
}

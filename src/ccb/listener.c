/*
 * CCB listener: registration with every configured broker, heartbeats, dead
 * broker detection, reconnects, and reverse connects for forwarded requests
 * (ccb-protocol.md §4, §5, §6.3-§6.4, §7.5, §8; ccb-behaviour-notes.md §1.2).
 *
 * Threads: one worker per broker (listener_reg.c); in listener_rc.c, one
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
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccb/addr.h"
#include "ccb/listener.h"
#include "listener_internal.h"
#include "listener_test.h"
#include "sec_copy.h"
#include "listener_sock.h"
#include "util/util.h"

/* ---- small helpers ---------------------------------------------------------- */

static bool is_stopping(ccb_listener *l)
{
	bool b;
	pthread_mutex_lock(&l->mu);
	b = l->stopping;
	pthread_mutex_unlock(&l->mu);
	return b;
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
		ccb_sinful_format(s, printed, NULL);
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

/* ---- public API ---------------------------------------------------------------- */

/* An empty listener that ccb_listener_free() can take at any point of
 * ccb_listener_new(). */
static ccb_listener *listener_alloc(const ccb_listener_config *cfg)
{
	ccb_listener *l = calloc(1, sizeof *l);

	if (!l)
		return NULL;
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
	return l;
}

/* Intervals, timeouts and limits: the configuration's, or the defaults. */
static void init_settings(ccb_listener *l, const ccb_listener_config *cfg)
{
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
}

/* The stop signal, the reverse-connect loop's epoll set and its wake-up. */
static ccb_err init_loop(ccb_listener *l, ccb_error *err)
{
	struct epoll_event e1 = {.events = EPOLLIN, .data.ptr = &l->stop_signal};
	struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = &l->rc_wake};

	if (ccb__wakeup_init(&l->stop_signal, err) || ccb__wakeup_init(&l->rc_wake, err)) {
		ccb_error_prefix(err, "listener: ");
		return CCB_ERR_IO;
	}
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		ccb_error_set(err, CCB_ERR_IO, "listener: epoll: %s", ccb__strerror(errno));
		return CCB_ERR_IO;
	}
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, ccb__wakeup_fd(&l->stop_signal), &e1) < 0 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, ccb__wakeup_fd(&l->rc_wake), &e2) < 0) {
		ccb_error_set(err, CCB_ERR_IO, "listener: epoll: %s", ccb__strerror(errno));
		return CCB_ERR_IO;
	}
	return CCB_OK;
}

/* Registration i: the broker address `a` split, its wake-up signal. */
static ccb_err init_reg(ccb_listener *l, size_t i, const char *a, ccb_error *err)
{
	reg *r = &l->regs[i];
	ccb_err rc;

	l->nregs = i + 1;
	r->l = l;
	r->index = i;
	r->wake = (ccb__wakeup)CCB__WAKEUP_NONE;
	if (!a || !(r->address = ccb_strdup(a)))
		return ccb_error_set(err, a ? CCB_ERR_NOMEM : CCB_ERR_INVALID_ARG, "listener: broker %zu",
				     i);
	rc = ccb__lst_split_address(a, COLLECTOR_PORT, &r->host, &r->port, &r->spid, &r->alias,
				    &r->sinful, err);
	if (rc) {
		if (rc != CCB_ERR_NOMEM) {
			rc = CCB_ERR_INVALID_ARG;
			if (err)
				err->code = rc;
		}
		ccb_error_prefix(err, "listener: broker address \"%s\": ", a);
		return rc;
	}
	if (ccb__wakeup_init(&r->wake, err)) {
		ccb_error_prefix(err, "listener: ");
		return CCB_ERR_IO;
	}
	return CCB_OK;
}

/* The command socket, or the embedder's own address; the advertised
 * address and the name registered with. */
static ccb_err init_address(ccb_listener *l, const ccb_listener_config *cfg, ccb_error *err)
{
	ccb_err rc = cfg->own_command_address
			     ? ccb__listener_own_address(cfg->own_command_address, &l->base, err)
			     : ccb__listener_open_command(cfg->command_address, l->regs[0].host,
							  cfg->alias, &l->cmd_fd, &l->base, err);
	if (rc) {
		ccb_error_prefix(err, "listener: ");
		return rc;
	}
	/* CCBID and PrivNet are ours to set in ccb_listener_sinful(). */
	ccb_sinful_set_param(l->base, CCB_SINFUL_CCBID, NULL, NULL);
	ccb_sinful_set_param(l->base, CCB_SINFUL_PRIVNET, NULL, NULL);
	ccb_sinful_format(l->base, &l->base_text, NULL);
	if (cfg->name)
		l->name = ccb_strdup(cfg->name);
	else if (l->base_text && asprintf(&l->name, "%s %s", DEFAULT_NAME, l->base_text) < 0)
		l->name = NULL;
	if (!l->base_text || !l->name)
		return ccb_error_set(err, CCB_ERR_NOMEM, "listener");
	return CCB_OK;
}

ccb_err ccb_listener_new(const ccb_listener_config *cfg, ccb_listener **out, ccb_error *err)
{
	ccb_listener *l;
	size_t n, i;
	ccb_err rc;

	if (out)
		*out = NULL;
	if (!cfg || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener: NULL config or out");
	if (!cfg->handler)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener: a connection handler is required");
	n = cfg->n_brokers + (cfg->broker ? 1 : 0);
	if (n == 0 || (cfg->n_brokers && !cfg->brokers))
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "listener: no broker address");
	l = listener_alloc(cfg);
	if (!l)
		return ccb_error_set(err, CCB_ERR_NOMEM, "listener");
	init_settings(l, cfg);
	l->regs = calloc(n, sizeof *l->regs);
	if (cfg->private_network_name && *cfg->private_network_name)
		l->privnet = ccb_strdup(cfg->private_network_name);
	if (!l->regs || !ccb__sec_client_copy(&l->sec, &cfg->security) ||
	    (cfg->private_network_name && *cfg->private_network_name && !l->privnet)) {
		ccb_listener_free(l);
		return ccb_error_set(err, CCB_ERR_NOMEM, "listener");
	}
	rc = init_loop(l, err);
	for (i = 0; rc == CCB_OK && i < n; i++)
		rc = init_reg(l, i, i < cfg->n_brokers ? cfg->brokers[i] : cfg->broker, err);
	if (rc == CCB_OK)
		rc = init_address(l, cfg, err);
	if (rc) {
		ccb_listener_free(l);
		return rc;
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
		int e = pthread_create(&l->regs[i].thread, NULL, ccb__lst_reg_main, &l->regs[i]);
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
		ccb__lst_free_queue(r);
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

/*
 * CCB listener: reverse connects for forwarded requests (ccb-protocol.md
 * §6.3-§6.4, §7.5) and direct connections to the command socket, made cheap
 * against hostile peers (issue 15): every pending one is a non-blocking
 * socket in one epoll loop per listener (rc_main) with a connect deadline
 * and then a deadline to get a free handler and write the hello; capacity is
 * shared per requester IP; only an established connection gets a thread,
 * the embedder's handler's (listener_jobs.c), at most max_reverse_connects
 * at once and half of them per IP. Only the loop removes or frees pending
 * entries; workers and the accept thread append under l->mu and wake it.
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

#include "ccb/sharedport.h"
#include "ccb/wire.h"
#include "cedar/connect.h"
#include "listener_internal.h"
#include "util/util.h"

/* ---- reverse connects (§6.4) ------------------------------------------------- */

static void enqueue_result(reg *r, uint64_t session, ccb_classad *ad, bool ok)
{
	ccb_listener *l = r->l;
	result_item *it = calloc(1, sizeof *it);
	bool it_alloc = it != NULL;

	pthread_mutex_lock(&l->mu);
	if (ok)
		r->served++;
	else
		r->failed++;
	/* A result for an earlier registration has nowhere to go: that socket
	 * and the broker's request table entry are gone (§5.3). */
	if (it && session == r->session && r->registered) {
		it->ad = ad;
		if (r->q_tail)
			r->q_tail->next = it;
		else
			r->q_head = it;
		r->q_tail = it;
		ad = NULL;
		it = NULL;
		ccb__wakeup_signal(&r->wake);
	}
	pthread_mutex_unlock(&l->mu);
	if (!it_alloc)
		CCB_LOG(CCB_LOG_WARNING,
			"ccb listener: out of memory queueing a reverse-connect result for %s; "
			"the broker will not hear of it", r->address);
	free(it);
	ccb_classad_free(ad);
}

/* ---- direct connections to the command socket ---------------------------------- */

static void peer_text(const struct sockaddr_storage *ss, char *buf, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
		port = ntohs(a->sin_port);
		snprintf(buf, n, "<%s:%d>", ip, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
		port = ntohs(a->sin6_port);
		snprintf(buf, n, "<[%s]:%d>", ip, port);
	} else {
		snprintf(buf, n, "<unknown>");
	}
}

/* A client on our private network connected to the command socket: it
 * waits in the reverse-connect loop (a socket, no thread) until it sends
 * its first bytes, then for a free handler, under the same caps as
 * reverse connects (max_pending_*, half the handlers per IP). */
static void accept_one(ccb_listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char why[160] = "", peer[96], ip[INET6_ADDRSTRLEN] = "?";
	int one = 1, fd, same = 0;
	pend *p, *o;

	fd = accept4(l->cmd_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			CCB_LOG(CCB_LOG_WARNING, "ccb listener: command socket accept: %s",
				ccb__strerror(errno));
			ccb__lst_wait_any(l, -1, 0, -1, 100); /* let descriptors free up */
		}
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	peer_text(&ss, peer, sizeof peer);
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
	p = calloc(1, sizeof *p);
	pthread_mutex_lock(&l->mu);
	if (!p) {
		snprintf(why, sizeof why, "out of memory");
	} else if (l->stopping) {
		snprintf(why, sizeof why, "stopping");
	} else if (l->npending >= l->max_pending) {
		snprintf(why, sizeof why, "too many connections in progress (%d)", l->npending);
	} else {
		for (o = l->pend_head; o; o = o->next)
			if (!strcmp(o->key, ip))
				same++;
		if (same >= l->max_pending_per_requester)
			snprintf(why, sizeof why,
				 "too many connections from this address in progress (%d)", same);
	}
	if (!why[0]) {
		p->fd = fd;
		p->phase = PD_DIRECT_NEW;
		p->started = ccb_now_ms();
		p->connect_deadline = p->started + l->connect_ms;
		snprintf(p->peer, sizeof p->peer, "%s", peer);
		snprintf(p->key, sizeof p->key, "%s", ip);
		p->prev = l->pend_tail;
		if (l->pend_tail)
			l->pend_tail->next = p;
		else
			l->pend_head = p;
		l->pend_tail = p;
		l->npending++;
		if ((uint64_t)l->npending > l->pending_peak)
			l->pending_peak = (uint64_t)l->npending;
		ccb__wakeup_signal(&l->rc_wake);
		pthread_mutex_unlock(&l->mu);
		return;
	}
	l->refused_busy += p != NULL && !l->stopping;
	pthread_mutex_unlock(&l->mu);
	CCB_LOG(CCB_LOG_WARNING, "ccb listener: refusing direct connection from %s: %s", peer, why);
	free(p);
	close(fd);
}

/* The command socket's accept loop; stop() ends it through the stop fd. */
void *ccb__lst_cmd_main(void *arg)
{
	ccb_listener *l = arg;

	for (;;) {
		int m = ccb__lst_wait_any(l, l->cmd_fd, POLLIN, -1, -1);
		if (m & 4)
			break;
		if (m & 1)
			accept_one(l);
	}
	return NULL;
}

/* ---- pending reverse connects: one event loop per listener ---------------------- */

/* Who a forwarded request is for, to share the pending capacity fairly: the
 * requester's IP as the broker stamped it on the Name ("<ip:port>" or
 * "<name> on <ip:port>", H:src/ccb/ccb_server.cpp 894-898 and 1204), which a
 * requester cannot choose; else the host of MyAddress. */
static void requester_key(const char *name, const char *host, char *key, size_t n)
{
	const char *on = NULL, *p, *e;

	for (p = name; (p = strstr(p, " on ")); p++)
		on = p;
	p = on ? on + 4 : name;
	if (p[0] == '<') {
		p++;
		if (p[0] == '[') {
			p++;
			e = strchr(p, ']');
		} else {
			e = p + strcspn(p, ":>?");
		}
		if (e && e > p && (size_t)(e - p) < n) {
			snprintf(key, n, "%.*s", (int)(e - p), p);
			return;
		}
	}
	snprintf(key, n, "%s", host);
}

static void pend_free(pend *p)
{
	if (p->fd >= 0)
		close(p->fd);
	if (p->res)
		freeaddrinfo(p->res);
	ccb_classad_free(p->hello);
	free(p->requester);
	free(p->host);
	free(p->spid);
	free(p);
}

/* Unlink `p` (l->mu held). */
static void pend_unlink(ccb_listener *l, pend *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		l->pend_head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		l->pend_tail = p->prev;
	p->prev = p->next = NULL;
	l->npending--;
}

/* Report the outcome of `p` to its broker and release it (loop thread). */
static void pend_finish(ccb_listener *l, pend *p, const char *errtext)
{
	ccb_classad *result = NULL;
	const char *my_address = ccb_ad_string_or(p->hello, CCB_ATTR_MY_ADDRESS, "");
	const char *request_id = ccb_ad_string_or(p->hello, CCB_ATTR_REQUEST_ID, "");

	pthread_mutex_lock(&l->mu);
	pend_unlink(l, p);
	pthread_mutex_unlock(&l->mu);
	if (p->fd >= 0) {
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, p->fd, NULL);
		close(p->fd);
		p->fd = -1;
	}
	if (!p->r) {
		CCB_LOG(CCB_LOG_WARNING, "ccb listener: closing direct connection from %s: %s",
			p->peer, errtext);
		pend_free(p);
		return;
	}
	CCB_LOG(CCB_LOG_WARNING, "ccb listener: reverse connect to %s for request %s via %s: %s",
		my_address, request_id, p->r->address, errtext);
	/* HTCondor's listener reports {hello, Result = false, ErrorString}
	 * (H:src/ccb/ccb_listener.cpp 607-636). */
	if (ccb_result_ad_new(p->hello, false, errtext, &result, NULL) == CCB_OK)
		enqueue_result(p->r, p->session, result, false);
	pend_free(p);
}

/* A direct client sent its first bytes: it may have a handler. */
static void pend_readable(ccb_listener *l, pend *p)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, p->fd, NULL);
	p->phase = PD_READY;
	p->hello_deadline = ccb_now_ms() + l->hello_ms;
}

/* Start the handler thread of a direct connection (slot reserved). */
static void pend_dispatch_direct(ccb_listener *l, pend *p)
{
	ccb_stream *s = NULL;
	char name[128];
	job *j = calloc(1, sizeof *j);
	int e = -1;

	pthread_mutex_lock(&l->mu);
	pend_unlink(l, p);
	pthread_mutex_unlock(&l->mu);
	if (j && ccb_stream_new(p->fd, &s, NULL) == CCB_OK) {
		snprintf(name, sizeof name, "command client %s", p->peer);
		ccb_stream_set_peer_name(s, name);
		j->l = l;
		j->conn = s;
		snprintf(j->peer, sizeof j->peer, "%s", p->peer);
		snprintf(j->key, sizeof j->key, "%s", p->key);
		pthread_mutex_lock(&l->mu);
		e = pthread_create(&j->thread, NULL, ccb__lst_direct_main, j);
		if (e == 0) {
			j->next = l->jobs;
			l->jobs = j;
		}
		pthread_mutex_unlock(&l->mu);
	} else if (!j) {
		close(p->fd);
	}
	p->fd = -1; /* the stream's, or closed */
	if (e) {
		CCB_LOG(CCB_LOG_WARNING, "ccb listener: refusing direct connection from %s: %s",
			p->peer, j ? "cannot start a thread" : "out of memory");
		pthread_mutex_lock(&l->mu);
		l->active_jobs--;
		pthread_mutex_unlock(&l->mu);
		ccb_stream_free(s);
		free(j);
	}
	pend_free(p);
}

/* Start a non-blocking connect to the current address; on an immediate
 * failure move on to the next one. False when none is left (last_err says
 * why). Loop thread. */
static bool pend_connect(ccb_listener *l, pend *p)
{
	for (; p->ai; p->ai = p->ai->ai_next) {
		struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = p};
		int fd, e = ccb__tcp_connect_start(p->ai, &fd);

		if (e) {
			snprintf(p->last_err, sizeof p->last_err, "%s:%d: %s", p->host, p->port,
				 ccb__strerror(e));
			continue;
		}
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			snprintf(p->last_err, sizeof p->last_err, "epoll: %s", ccb__strerror(errno));
			close(fd);
			continue;
		}
		p->fd = fd;
		p->phase = PD_CONNECTING;
		return true;
	}
	return false;
}

/* The connect finished (EPOLLOUT or an error): connected, or try the next
 * address. Loop thread. */
static void pend_connected(ccb_listener *l, pend *p)
{
	int soerr = ccb__tcp_connect_finish(p->fd);

	epoll_ctl(l->epfd, EPOLL_CTL_DEL, p->fd, NULL);
	if (soerr) {
		snprintf(p->last_err, sizeof p->last_err, "%s:%d: %s", p->host, p->port,
			 ccb__strerror(soerr));
		close(p->fd);
		p->fd = -1;
		p->ai = p->ai->ai_next;
		if (!pend_connect(l, p)) {
			char text[sizeof p->last_err + 32];
			snprintf(text, sizeof text, "failed to connect: %s", p->last_err);
			pend_finish(l, p, text);
		}
		return;
	}
	p->phase = PD_READY;
	p->hello_deadline = ccb_now_ms() + l->hello_ms;
	if (p->hello_deadline > p->started + l->dial_ms)
		p->hello_deadline = p->started + l->dial_ms;
}

/* A handler slot is reserved for the connected `p`: write the hello (and
 * SHARED_PORT_CONNECT first when MyAddress has sock=), report, and start the
 * handler thread. Loop thread; the writes are a few hundred bytes on a
 * fresh connection, bounded by the hello deadline. */
static void pend_dispatch(ccb_listener *l, pend *p)
{
	const char *my_address = ccb_ad_string_or(p->hello, CCB_ATTR_MY_ADDRESS, "");
	const char *request_id = ccb_ad_string_or(p->hello, CCB_ATTR_REQUEST_ID, "");
	char peer[160], errtext[CCB_ERROR_DETAIL_SIZE + 64];
	ccb_classad *result = NULL;
	ccb_stream *s = NULL;
	ccb_error err = {0};
	job *j = calloc(1, sizeof *j);
	int e;

	pthread_mutex_lock(&l->mu);
	pend_unlink(l, p);
	pthread_mutex_unlock(&l->mu);
	if (!j || ccb_stream_new(p->fd, &s, &err)) {
		if (!j)
			close(p->fd);
		p->fd = -1;
		free(j);
		snprintf(errtext, sizeof errtext, "failed to initiate connection: out of memory");
		goto fail;
	}
	p->fd = -1; /* the stream's now */
	snprintf(peer, sizeof peer, "requester %s:%d", p->host, p->port);
	ccb_stream_set_peer_name(s, peer);
	ccb_stream_set_timeout(s, l->hello_ms);
	ccb_stream_set_deadline(s, p->hello_deadline);
	if (p->spid && ccb_sharedport_send_connect(s, p->spid, NULL, p->hello_deadline, &err)) {
		snprintf(errtext, sizeof errtext, "failed to connect: %s", err.detail);
		goto fail;
	}
	if (ccb_hello_write(s, p->hello, 0, &err)) {
		snprintf(errtext, sizeof errtext, "failure writing reverse connect command: %s",
			 err.detail);
		goto fail;
	}
	ccb_stream_set_deadline(s, INT64_MAX);
	ccb_stream_set_timeout(s, CCB_STREAM_DEFAULT_TIMEOUT_MS);
	CCB_LOG(CCB_LOG_INFO, "ccb listener: reverse connect to %s for request %s via %s done",
		my_address, request_id, p->r->address);
	if (ccb_result_ad_new(p->hello, true, NULL, &result, NULL) == CCB_OK)
		enqueue_result(p->r, p->session, result, true);
	j->l = l;
	j->r = p->r;
	j->hello = p->hello;
	j->requester = p->requester;
	j->conn = s;
	snprintf(j->key, sizeof j->key, "%s", p->key);
	p->hello = NULL;
	p->requester = NULL;
	pthread_mutex_lock(&l->mu);
	e = pthread_create(&j->thread, NULL, ccb__lst_job_main, j);
	if (e == 0) {
		j->next = l->jobs;
		l->jobs = j;
	} else {
		l->active_jobs--;
	}
	pthread_mutex_unlock(&l->mu);
	if (e) {
		CCB_LOG(CCB_LOG_WARNING, "ccb listener: request %s: cannot start a handler thread: %s",
			request_id, ccb__strerror(e));
		ccb_stream_free(s);
		free(j->requester);
		ccb_classad_free(j->hello);
		free(j);
	}
	pend_free(p);
	return;
fail:
	pthread_mutex_lock(&l->mu);
	l->active_jobs--; /* the slot reserved for it */
	pthread_mutex_unlock(&l->mu);
	free(j);
	ccb_stream_free(s);
	CCB_LOG(CCB_LOG_WARNING, "ccb listener: reverse connect to %s for request %s via %s: %s",
		my_address, request_id, p->r->address, errtext);
	if (ccb_result_ad_new(p->hello, false, errtext, &result, NULL) == CCB_OK)
		enqueue_result(p->r, p->session, result, false);
	pend_free(p);
}

/* One pass over the pending list: start new connects, expire deadlines,
 * hand connected ones to free handler slots in arrival order. Returns the
 * next deadline. Loop thread (the only one that removes or frees). */
static int64_t pend_sweep(ccb_listener *l)
{
	int64_t now = ccb_now_ms(), next = INT64_MAX;
	pend *p, *nx;

	pthread_mutex_lock(&l->mu);
	p = l->pend_head;
	pthread_mutex_unlock(&l->mu);
	for (; p; p = nx) {
		char text[sizeof p->last_err + 96];
		bool slot = false;

		pthread_mutex_lock(&l->mu);
		nx = p->next;
		if (p->phase == PD_READY && !l->stopping && l->active_jobs < l->max_jobs &&
		    ccb__lst_handlers_for(l, p->key) < ccb__lst_per_ip_handler_cap(l)) {
			l->active_jobs++;
			slot = true;
		}
		pthread_mutex_unlock(&l->mu);
		if (p->phase == PD_DIRECT_NEW) {
			struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = p};
			if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, p->fd, &ev) < 0) {
				snprintf(text, sizeof text, "epoll: %s", ccb__strerror(errno));
				pend_finish(l, p, text);
				continue;
			}
			p->phase = PD_DIRECT_WAIT;
		}
		if (p->phase == PD_DIRECT_WAIT && now >= p->connect_deadline) {
			snprintf(text, sizeof text, "nothing received within %d ms",
				 (int)(p->connect_deadline - p->started));
			pend_finish(l, p, text);
			continue;
		}
		if (p->phase == PD_NEW) {
			if (!pend_connect(l, p)) {
				snprintf(text, sizeof text, "failed to connect: %s", p->last_err);
				pend_finish(l, p, text);
				continue;
			}
		}
		if (p->phase == PD_CONNECTING && now >= p->connect_deadline) {
			snprintf(text, sizeof text, "failed to connect: %s:%d: timed out after %d ms",
				 p->host, p->port, (int)(p->connect_deadline - p->started));
			pend_finish(l, p, text);
			continue;
		}
		if (slot) {
			if (p->r)
				pend_dispatch(l, p);
			else
				pend_dispatch_direct(l, p);
			continue;
		}
		if (p->phase == PD_READY && now >= p->hello_deadline) {
			snprintf(text, sizeof text,
				 "failed to connect: no free connection handler within %d ms (%d at "
				 "most, %d for one requester)",
				 l->hello_ms, l->max_jobs, ccb__lst_per_ip_handler_cap(l));
			pend_finish(l, p, text);
			continue;
		}
		if ((p->phase == PD_CONNECTING || p->phase == PD_DIRECT_WAIT) &&
		    p->connect_deadline < next)
			next = p->connect_deadline;
		if (p->phase == PD_READY && p->hello_deadline < next)
			next = p->hello_deadline;
	}
	return next;
}

void *ccb__lst_rc_main(void *arg)
{
	ccb_listener *l = arg;
	struct epoll_event ev[64];

	for (;;) {
		int64_t next;
		int n, i, ms;

		ccb__lst_reap_jobs(l, false); /* join finished handler threads promptly */
		next = pend_sweep(l);
		ms = next == INT64_MAX ? -1 : ccb_deadline_left(next);

		n = epoll_wait(l->epfd, ev, 64, ms);
		if (n < 0 && errno != EINTR)
			break;
		for (i = 0; i < n; i++) {
			if (ev[i].data.ptr == &l->stop_signal)
				return NULL;
			if (ev[i].data.ptr == &l->rc_wake)
				ccb__wakeup_drain(&l->rc_wake);
			else if (((pend *)ev[i].data.ptr)->phase == PD_DIRECT_WAIT)
				pend_readable(l, ev[i].data.ptr);
			else
				pend_connected(l, ev[i].data.ptr);
		}
	}
	return NULL;
}

/* Release every pending reverse connect (stop, after every thread is
 * joined): nothing is reported, the registrations are gone. */
void ccb__lst_pend_free_all(ccb_listener *l)
{
	while (l->pend_head) {
		pend *p = l->pend_head;
		pend_unlink(l, p);
		pend_free(p);
	}
}

/* A reverse connect for a forwarded request to `my_address`: where to
 * connect (resolved here, on the worker), the requester and the deadline.
 * False with errtext set when it cannot be made (*pp, if set, is then the
 * caller's to free). */
static bool pend_prepare(reg *r, const ccb_classad *req, const char *my_address, pend **pp,
			 char *errtext, size_t errsize)
{
	ccb_listener *l = r->l;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	char portstr[16];
	ccb_error err = {0};
	pend *p;
	int gai;

	if (!(p = *pp = calloc(1, sizeof *p))) {
		snprintf(errtext, errsize, "failed to initiate connection: out of memory");
		return false;
	}
	p->fd = -1;
	/* MyAddress: the requester, or the broker itself when streaming
	 * (§7.5); through shared port when it carries sock= (§6.4 step 2). */
	if (ccb__lst_split_address(my_address, -1, &p->host, &p->port, &p->spid, NULL, NULL, &err)) {
		snprintf(errtext, errsize, "failed to connect: %s", err.detail);
		return false;
	}
	snprintf(portstr, sizeof portstr, "%d", p->port);
	hints.ai_flags |= AI_NUMERICHOST;
	gai = getaddrinfo(p->host, portstr, &hints, &p->res);
	if (gai == EAI_NONAME) {
		/* A host name: resolved here, on the worker (rare: HTCondor
		 * requesters send IP literals). */
		hints.ai_flags &= ~AI_NUMERICHOST;
		gai = getaddrinfo(p->host, portstr, &hints, &p->res);
	}
	if (gai) {
		p->res = NULL;
		snprintf(errtext, errsize, "failed to connect: resolve requester %s: %s", p->host,
			 gai_strerror(gai));
		return false;
	}
	p->ai = p->res;
	requester_key(ccb_ad_string_or(req, CCB_ATTR_NAME, ""), p->host, p->key, sizeof p->key);
	p->requester = ccb_strdup(ccb_ad_string_or(req, CCB_ATTR_NAME, ""));
	p->r = r;
	p->phase = PD_NEW;
	p->started = ccb_now_ms();
	p->connect_deadline = p->started + (l->connect_ms < l->dial_ms ? l->connect_ms : l->dial_ms);
	return true;
}

/* Queue `p` (taking *hello) for the loop unless the listener is stopping or
 * at its limits; false with errtext set otherwise. */
static bool pend_enqueue(ccb_listener *l, reg *r, pend *p, ccb_classad **hello, char *errtext,
			 size_t errsize)
{
	int same = 0;

	pthread_mutex_lock(&l->mu);
	p->session = r->session;
	if (l->stopping) {
		snprintf(errtext, errsize, "failed to initiate connection: stopping");
	} else if (l->npending >= l->max_pending) {
		snprintf(errtext, errsize,
			 "failed to initiate connection: too many reverse connects in progress (%d)",
			 l->npending);
	} else {
		for (pend *o = l->pend_head; o; o = o->next)
			if (!strcmp(o->key, p->key))
				same++;
		if (same >= l->max_pending_per_requester)
			snprintf(errtext, errsize,
				 "failed to initiate connection: too many reverse connects in progress "
				 "for requester %s (%d)",
				 p->key, same);
	}
	if (errtext[0]) {
		l->refused_busy++;
		pthread_mutex_unlock(&l->mu);
		return false;
	}
	p->hello = *hello;
	*hello = NULL;
	p->prev = l->pend_tail;
	if (l->pend_tail)
		l->pend_tail->next = p;
	else
		l->pend_head = p;
	l->pend_tail = p;
	l->npending++;
	if ((uint64_t)l->npending > l->pending_peak)
		l->pending_peak = (uint64_t)l->npending;
	ccb__wakeup_signal(&l->rc_wake);
	pthread_mutex_unlock(&l->mu);
	return true;
}

/* Refuse a forwarded request at once (takes `hello`); false only when the
 * failure report could not be written. */
static bool refuse_request(reg *r, ccb_stream *s, unsigned peer_version, ccb_classad *hello,
			   const char *errtext)
{
	ccb_listener *l = r->l;
	ccb_classad *result = NULL;
	ccb_error err = {0};

	pthread_mutex_lock(&l->mu);
	r->failed++;
	pthread_mutex_unlock(&l->mu);
	CCB_LOG(CCB_LOG_WARNING, "ccb listener: refusing request %s via %s: %s",
		ccb_ad_string_or(hello, CCB_ATTR_REQUEST_ID, ""), r->address, errtext);
	/* The failure report (hello + Result = false + ErrorString) goes out
	 * now, as HTCondor's listener does when it cannot even start the
	 * connect (H:src/ccb/ccb_listener.cpp 501-505, 607-636). */
	if (ccb_result_ad_new(hello, false, errtext, &result, &err) == CCB_OK) {
		ccb_err rc = ccb_control_ad_write(s, result, peer_version, &err);
		ccb_classad_free(result);
		ccb_classad_free(hello);
		return rc == CCB_OK;
	}
	ccb_classad_free(hello);
	return true;
}

/* A forwarded request (§6.3): queue a reverse connect for the loop, or
 * refuse it at once. Returns false only on a write failure of an immediate
 * failure report (the registration is then dropped). */
bool ccb__lst_handle_request(reg *r, ccb_stream *s, unsigned peer_version, const ccb_classad *req)
{
	ccb_listener *l = r->l;
	ccb_classad *hello = NULL;
	char errtext[CCB_ERROR_DETAIL_SIZE + 96] = "";
	const char *my_address;
	ccb_error err = {0};
	pend *p = NULL;

	/* C++ aborts on a request without MyAddress/ClaimId/RequestID
	 * (lst:446-455); we cannot echo what is missing, so just log it. */
	if (ccb_hello_ad_from_request(req, &hello, &err)) {
		CCB_LOG(CCB_LOG_WARNING, "ccb listener: unusable request from broker %s: %s",
			r->address, err.detail);
		pthread_mutex_lock(&l->mu);
		r->failed++;
		pthread_mutex_unlock(&l->mu);
		return true;
	}
	ccb__lst_reap_jobs(l, false);
	my_address = ccb_ad_string_or(hello, CCB_ATTR_MY_ADDRESS, "");
	if (pend_prepare(r, req, my_address, &p, errtext, sizeof errtext) &&
	    pend_enqueue(l, r, p, &hello, errtext, sizeof errtext))
		return true;
	if (p)
		pend_free(p);
	return refuse_request(r, s, peer_version, hello, errtext);
}


/*
 * A minimal condor_shared_port: accept TCP, read SHARED_PORT_CONNECT, pass
 * the socket to the named endpoint (sp §3, §5).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cedar/stream_internal.h"
#include "sharedport/sharedport_internal.h"

#define DEFAULT_BIND_HOST "127.0.0.1"
#define DEFAULT_REQUEST_MS 20000
#define DEFAULT_HANDOFF_MS 10000
#define DEFAULT_MAX_WORKERS 64
#define DEFAULT_BACKLOG 128
#define PEEK_PAUSE_MS 10       /* between peeks while a header trickles in */
#define ACCEPT_BACKOFF_MS 100  /* after EMFILE and friends */

typedef struct sharedport__conn {
	struct sharedport__conn *next;  /* srv->conns: being served */
	struct sharedport__conn *wnext; /* srv->workers: threads not yet joined */
	int fd;          /* published for stop() while the request is read; -1 after */
	bool done;       /* worker finished; run() joins and frees it */
	pthread_t thread;
	char peer[64];
	struct ccb_sharedport_server *srv;
	int own_fd;      /* the connection, owned by whoever serves it */
} sharedport__conn;

struct ccb_sharedport_server {
	int lfd;
	uint16_t port;
	ccb__wakeup wake; /* raised by stop */
	atomic_bool stopping;
	char *socket_dir, *cookie, *default_id;
	int request_timeout_ms, handoff_timeout_ms, max_workers;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	sharedport__conn *conns;   /* being served */
	sharedport__conn *workers; /* worker threads not yet joined */
	int nworkers;              /* length of `workers` */

	atomic_uint_fast64_t passed, failed;
	atomic_int active;
};

/* ---- connection registry (so stop() can interrupt reads) ---------------- */

static void conn_publish(ccb_sharedport_server *srv, sharedport__conn *c)
{
	pthread_mutex_lock(&srv->mu);
	c->fd = c->own_fd;
	c->next = srv->conns;
	srv->conns = c;
	if (atomic_load(&srv->stopping))
		shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&srv->mu);
	atomic_fetch_add(&srv->active, 1);
}

/* After this, stop() no longer touches the socket: it is about to be
 * handed over, and a shutdown would break it for the endpoint. */
static void conn_unpublish_fd(ccb_sharedport_server *srv, sharedport__conn *c)
{
	pthread_mutex_lock(&srv->mu);
	c->fd = -1;
	pthread_mutex_unlock(&srv->mu);
}

static void conn_unlink(ccb_sharedport_server *srv, sharedport__conn *c)
{
	for (sharedport__conn **p = &srv->conns; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			return;
		}
	}
}

/* ---- request ------------------------------------------------------------ */

/*
 * DaemonCore peeks at the header and the command int without consuming
 * them (sp §3.2; strace: recvfrom(..., 13, MSG_PEEK)). HTCondor rejects a
 * peek shorter than 13 bytes at once; we give a header that trickles in
 * until the request deadline.
 */
static ccb_err peek_command(ccb_sharedport_server *srv, int fd, int64_t deadline, int64_t *cmd,
			    ccb_error *err)
{
	uint8_t b[SHAREDPORT_PEEK_LEN];
	ssize_t n;
	ccb_err rc;

	for (;;) {
		if ((rc = sharedport__wait(fd, POLLIN, ccb__wakeup_fd(&srv->wake), deadline,
					   "wait for the request", err)))
			return rc;
		n = recv(fd, b, sizeof b, MSG_PEEK | MSG_DONTWAIT);
		if (n == (ssize_t)sizeof b)
			break;
		if (n == 0)
			return ccb_error_set(err, CCB_ERR_CLOSED, "closed before sending a command");
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			continue;
		if (n < 0)
			return ccb_error_set(err, errno == ECONNRESET ? CCB_ERR_CLOSED : CCB_ERR_IO,
					     "peek at the request: %s", ccb__strerror(errno));
		if (ccb_now_ms() >= deadline)
			return ccb_error_set(err, CCB_ERR_TIMEOUT,
					     "only %zd of %d command bytes before the deadline", n,
					     SHAREDPORT_PEEK_LEN);
		rc = sharedport__wait(ccb__wakeup_fd(&srv->wake), POLLIN, -1,
				      ccb_deadline_in(PEEK_PAUSE_MS), "pause", NULL);
		if (rc == CCB_OK)
			return ccb_error_set(err, CCB_ERR_CANCELLED, "server stopped");
	}
	/* Packet header checks of the CEDAR reader (cedar-stream.md §2). */
	if ((int8_t)b[0] < 0 || (int8_t)b[0] > 10 || ccb_be32_get(b + 1) == 0 ||
	    ccb_be32_get(b + 1) > CCB_MAX_PACKET_BODY)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "not a CEDAR packet header");
	*cmd = 0;
	for (int i = 5; i < SHAREDPORT_PEEK_LEN; i++)
		*cmd = (int64_t)((uint64_t)*cmd << 8 | b[i]);
	return CCB_OK;
}

/* Read and check SHARED_PORT_CONNECT; the id is copied out. */
static ccb_err read_request(ccb_sharedport_server *srv, int fd, int64_t deadline, const char *peer,
			    char id[SHAREDPORT_NAME_BUF], int32_t *client_deadline, ccb_error *err)
{
	int sfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	sharedport__request req;
	ccb_stream *s;
	ccb_cursor *c;
	ccb_err rc;

	if (sfd < 0)
		return ccb_error_set(err, CCB_ERR_IO, "dup: %s", ccb__strerror(errno));
	if ((rc = ccb_stream_new(sfd, &s, err)))
		return rc;
	ccb_stream_set_peer_name(s, peer);
	ccb_stream_set_timeout(s, srv->request_timeout_ms);
	ccb_stream_set_deadline(s, deadline);
	/* A bigger message cannot pass the C++ reader's buffers: refuse it
	 * before reading its body. */
	ccb_stream_set_max_message(s, SHAREDPORT_MAX_REQUEST);
	if (!(c = ccb__stream_in(s))) {
		rc = ccb_error_set(err, ccb_stream_error(s)->code, "read SHARED_PORT_CONNECT: %s",
				   ccb_stream_error(s)->detail);
		goto out;
	}
	if ((rc = sharedport__parse_connect(c->data + c->pos, c->len - c->pos, &req, err))) {
		ccb_error_prefix(err, "SHARED_PORT_CONNECT: ");
		goto out;
	}
	c->pos = c->len;
	ccb_stream_end_of_message(s);
	memcpy(id, req.id, req.id_len + 1);
	*client_deadline = req.deadline;
	CCB_LOG(CCB_LOG_DEBUG, "shared-port server: request from %.*s on %s to connect to %s",
		(int)(req.client_name_len > 200 ? 200 : req.client_name_len), req.client_name,
		peer, id);
out:
	ccb_stream_free(s);
	return rc;
}

/* The hand-off deadline: the server's own, shortened by the client's.
 * HTCondor applies a deadline >= 0 with whole-second resolution and
 * expires it only once time(NULL) has passed it (sp §3.1 step 2;
 * Stream::set_deadline_timeout, deadline_expired). */
static int64_t handoff_deadline(const ccb_sharedport_server *srv, int32_t client_deadline)
{
	int64_t d = ccb_deadline_in(srv->handoff_timeout_ms);
	int64_t c;

	if (client_deadline < 0)
		return d;
	c = ccb_deadline_in((int64_t)client_deadline * 1000 + 1000);
	return c < d ? c : d;
}

/* Which endpoint gets the connection, and until when. */
static ccb_err route(ccb_sharedport_server *srv, sharedport__conn *c, char id[SHAREDPORT_NAME_BUF],
		     int64_t *deadline, ccb_error *err)
{
	int64_t req_deadline = ccb_deadline_in(srv->request_timeout_ms);
	int64_t cmd = 0;
	int32_t client_deadline = -1;
	ccb_err rc;

	if ((rc = peek_command(srv, c->own_fd, req_deadline, &cmd, err)))
		return rc;
	if (cmd != SHAREDPORT_CONNECT) {
		/* Not for us: the whole unread connection goes to the default
		 * id, or is dropped without one (sp §3.2; sps HandleDefaultRequest). */
		if (!srv->default_id)
			return ccb_error_set(err, CCB_ERR_PROTOCOL,
					     "command %lld is not SHARED_PORT_CONNECT and there "
					     "is no default id",
					     (long long)cmd);
		snprintf(id, SHAREDPORT_NAME_BUF, "%s", srv->default_id);
		*deadline = ccb_deadline_in(srv->handoff_timeout_ms);
		CCB_LOG(CCB_LOG_DEBUG, "shared-port server: passing command %lld from %s to %s",
			(long long)cmd, c->peer, id);
		return CCB_OK;
	}
	if ((rc = read_request(srv, c->own_fd, req_deadline, c->peer, id, &client_deadline, err)))
		return rc;
	if (!ccb_sharedport_id_valid(id))
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "illegal shared-port id \"%.64s\"", id);
	/* "self" is served by condor_shared_port itself as a command socket
	 * (sp §3.1 step 3); this server has no commands of its own. */
	if (strcmp(id, "self") == 0)
		return ccb_error_set(err, CCB_ERR_UNSUPPORTED, "shared-port id \"self\" is not served");
	*deadline = handoff_deadline(srv, client_deadline);
	return CCB_OK;
}

/* The endpoint gets the socket as accept() returned it: blocking. */
static void set_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

static ccb_err serve_conn(ccb_sharedport_server *srv, sharedport__conn *c, ccb_error *err)
{
	char id[SHAREDPORT_NAME_BUF];
	int64_t deadline = INT64_MAX;
	ccb_err rc;

	conn_publish(srv, c);
	rc = route(srv, c, id, &deadline, err);
	conn_unpublish_fd(srv, c);
	if (rc == CCB_OK) {
		set_blocking(c->own_fd);
		rc = sharedport__pass_fd(srv->socket_dir, srv->cookie, id, c->own_fd, deadline,
					 ccb__wakeup_fd(&srv->wake), err);
		if (rc)
			ccb_error_prefix(err, "pass to %s: ", id);
	}
	if (rc) {
		ccb_error_prefix(err, "shared-port server: client %s: ", c->peer);
		atomic_fetch_add(&srv->failed, 1);
	} else {
		atomic_fetch_add(&srv->passed, 1);
		CCB_LOG(CCB_LOG_DEBUG, "shared-port server: passed socket to %s as requested by %s",
			id, c->peer);
	}
	/* Our copy goes in every case: after a hand-off the endpoint holds the
	 * connection; after a failure the client sees it closed (sp §2). */
	close(c->own_fd);
	c->own_fd = -1;
	pthread_mutex_lock(&srv->mu);
	conn_unlink(srv, c);
	pthread_mutex_unlock(&srv->mu);
	atomic_fetch_sub(&srv->active, 1);
	return rc;
}

/* ---- accepting ------------------------------------------------------------- */

static ccb_err accept_tcp(ccb_sharedport_server *srv, int64_t deadline, sharedport__conn *c,
			  ccb_error *err)
{
	ccb_err rc;

	for (;;) {
		if (atomic_load(&srv->stopping))
			return ccb_error_set(err, CCB_ERR_CANCELLED, "shared-port server stopped");
		if ((rc = sharedport__wait(srv->lfd, POLLIN, ccb__wakeup_fd(&srv->wake), deadline,
					   "shared-port server: wait for a client", err)))
			return rc;
		c->own_fd = accept4(srv->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c->own_fd >= 0) {
			sharedport__peer_name(c->own_fd, c->peer, sizeof c->peer);
			return CCB_OK;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
		    errno == ECONNABORTED || errno == EPROTO)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			return ccb_error_set(err, CCB_ERR_LIMIT, "shared-port server: accept: %s",
					     ccb__strerror(errno));
		return ccb_error_set(err, CCB_ERR_IO, "shared-port server: accept: %s",
				     ccb__strerror(errno));
	}
}

ccb_err ccb_sharedport_server_serve_one(ccb_sharedport_server *srv, int64_t deadline_ms,
					ccb_error *err)
{
	sharedport__conn c = {.srv = srv, .fd = -1, .own_fd = -1};
	ccb_err rc;

	if (!srv)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "shared-port server: none");
	if ((rc = accept_tcp(srv, deadline_ms, &c, err)))
		return rc;
	return serve_conn(srv, &c, err);
}

static void *worker_main(void *arg)
{
	sharedport__conn *c = arg;
	ccb_sharedport_server *srv = c->srv;
	ccb_error e;

	if (serve_conn(srv, c, &e))
		CCB_LOG(e.code == CCB_ERR_CANCELLED ? CCB_LOG_DEBUG : CCB_LOG_WARNING, "%s",
			e.detail);
	pthread_mutex_lock(&srv->mu);
	c->done = true;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	return NULL;
}

/* Join and free finished workers; with `all`, wait for every one first. */
static void reap_workers(ccb_sharedport_server *srv, bool all)
{
	sharedport__conn *done = NULL;

	pthread_mutex_lock(&srv->mu);
	while (all && srv->nworkers > 0) {
		bool pending = false;
		for (sharedport__conn *w = srv->workers; w; w = w->wnext)
			pending |= !w->done;
		if (!pending)
			break;
		pthread_cond_wait(&srv->cv, &srv->mu);
	}
	for (sharedport__conn **p = &srv->workers; *p;) {
		sharedport__conn *w = *p;
		if (!w->done) {
			p = &w->wnext;
			continue;
		}
		*p = w->wnext;
		srv->nworkers--;
		w->wnext = done;
		done = w;
	}
	pthread_mutex_unlock(&srv->mu);
	while (done) {
		sharedport__conn *w = done;
		done = w->wnext;
		pthread_join(w->thread, NULL);
		free(w);
	}
}

/* Wait for a free worker slot; false once stopping. */
static bool wait_for_slot(ccb_sharedport_server *srv)
{
	bool ok;

	pthread_mutex_lock(&srv->mu);
	for (;;) {
		int busy = 0;
		for (sharedport__conn *w = srv->workers; w; w = w->wnext)
			busy += !w->done;
		if (atomic_load(&srv->stopping) || busy < srv->max_workers)
			break;
		pthread_cond_wait(&srv->cv, &srv->mu);
	}
	ok = !atomic_load(&srv->stopping);
	pthread_mutex_unlock(&srv->mu);
	return ok;
}

static ccb_err start_worker(ccb_sharedport_server *srv, sharedport__conn *c, ccb_error *err)
{
	int rc;

	/* Listed before the thread starts, so it is always found and joined. */
	pthread_mutex_lock(&srv->mu);
	c->wnext = srv->workers;
	srv->workers = c;
	srv->nworkers++;
	rc = pthread_create(&c->thread, NULL, worker_main, c);
	if (rc != 0) {
		srv->workers = c->wnext;
		srv->nworkers--;
	}
	pthread_mutex_unlock(&srv->mu);
	if (rc == 0)
		return CCB_OK;
	return ccb_error_set(err, CCB_ERR_LIMIT, "shared-port server: start worker: %s",
			     ccb__strerror(rc));
}

/* Accept the next client into a new connection record. */
static ccb_err next_client(ccb_sharedport_server *srv, sharedport__conn **out, ccb_error *err)
{
	sharedport__conn *c = calloc(1, sizeof *c);
	ccb_err rc;

	*out = NULL;
	if (!c)
		return ccb_error_set(err, CCB_ERR_NOMEM, "shared-port server: connection");
	c->srv = srv;
	c->fd = c->own_fd = -1;
	if ((rc = accept_tcp(srv, INT64_MAX, c, err))) {
		free(c);
		return rc;
	}
	*out = c;
	return CCB_OK;
}

ccb_err ccb_sharedport_server_run(ccb_sharedport_server *srv, ccb_error *err)
{
	ccb_err rc = CCB_OK;

	if (!srv)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "shared-port server: none");
	while (wait_for_slot(srv)) {
		sharedport__conn *c;
		ccb_error e;

		reap_workers(srv, false);
		rc = next_client(srv, &c, &e);
		if (rc == CCB_ERR_CANCELLED) {
			rc = CCB_OK;
			break;
		}
		if (rc == CCB_ERR_LIMIT || rc == CCB_ERR_NOMEM) {
			/* Out of fds or memory: let workers finish, then retry. */
			CCB_LOG(CCB_LOG_WARNING, "%s", e.detail);
			sharedport__wait(ccb__wakeup_fd(&srv->wake), POLLIN, -1,
					 ccb_deadline_in(ACCEPT_BACKOFF_MS), "backoff", NULL);
			rc = CCB_OK;
			continue;
		}
		if (rc) {
			ccb_error_set(err, rc, "%s", e.detail);
			break;
		}
		if ((rc = start_worker(srv, c, &e))) {
			CCB_LOG(CCB_LOG_WARNING, "%s; closing %s", e.detail, c->peer);
			close(c->own_fd);
			free(c);
			atomic_fetch_add(&srv->failed, 1);
			rc = CCB_OK;
		}
	}
	/* Every worker was interrupted by stop(); wait for them to finish. */
	reap_workers(srv, true);
	return rc;
}

void ccb_sharedport_server_stop(ccb_sharedport_server *srv)
{
	if (!srv)
		return;
	atomic_store(&srv->stopping, true);
	ccb__wakeup_signal(&srv->wake);
	pthread_mutex_lock(&srv->mu);
	/* Connections still reading their request: make the reads return. */
	for (sharedport__conn *c = srv->conns; c; c = c->next)
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
}

void ccb_sharedport_server_get_stats(const ccb_sharedport_server *srv,
				     ccb_sharedport_server_stats *st)
{
	int active = atomic_load(&srv->active);

	st->passed = atomic_load(&srv->passed);
	st->failed = atomic_load(&srv->failed);
	st->active = active > 0 ? (uint64_t)active : 0;
}

uint16_t ccb_sharedport_server_port(const ccb_sharedport_server *srv)
{
	return srv->port;
}

/* ---- setup ----------------------------------------------------------------- */

static ccb_err listen_tcp(ccb_sharedport_server *srv, const ccb_sharedport_server_config *cfg,
			  ccb_error *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
	const char *host = cfg->bind_host ? cfg->bind_host : DEFAULT_BIND_HOST;
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char port[8];
	int one = 1, gai;

	snprintf(port, sizeof port, "%u", cfg->port);
	if ((gai = getaddrinfo(host, port, &hints, &res)) != 0)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				     "shared-port server: bind address %s: %s", host,
				     gai_strerror(gai));
	srv->lfd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (srv->lfd < 0)
		goto fail;
	setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(srv->lfd, res->ai_addr, res->ai_addrlen) != 0 ||
	    listen(srv->lfd, cfg->backlog > 0 ? cfg->backlog : DEFAULT_BACKLOG) != 0 ||
	    getsockname(srv->lfd, (struct sockaddr *)&ss, &len) != 0)
		goto fail;
	srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						   : ((struct sockaddr_in *)&ss)->sin_port);
	freeaddrinfo(res);
	return CCB_OK;
fail:
	freeaddrinfo(res);
	return ccb_error_set(err, CCB_ERR_IO, "shared-port server: listen on %s:%u: %s", host,
			     cfg->port, ccb__strerror(errno));
}

static ccb_err check_cfg(const ccb_sharedport_server_config *cfg, ccb_error *err)
{
	if (!cfg->socket_dir && !cfg->cookie)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				     "shared-port server: need a socket directory or a cookie");
#ifndef __linux__
	if (cfg->cookie)
		return ccb_error_set(err, CCB_ERR_UNSUPPORTED,
				     "shared-port server: abstract sockets exist only on Linux");
#endif
	if (cfg->default_id && !ccb_sharedport_id_valid(cfg->default_id))
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				     "shared-port server: invalid default id");
	return CCB_OK;
}

static bool copy_opt(char **dst, const char *src)
{
	*dst = NULL;
	return !src || (*dst = ccb_strdup(src)) != NULL;
}

ccb_err ccb_sharedport_server_new(const ccb_sharedport_server_config *cfg,
				  ccb_sharedport_server **out, ccb_error *err)
{
	ccb_sharedport_server *srv;
	ccb_err rc;

	if (out)
		*out = NULL;
	if (!cfg || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "shared-port server: no config");
	if ((rc = check_cfg(cfg, err)))
		return rc;
	if (!(srv = calloc(1, sizeof *srv)))
		return ccb_error_set(err, CCB_ERR_NOMEM, "shared-port server");
	srv->lfd = -1;
	srv->wake = (ccb__wakeup)CCB__WAKEUP_NONE;
	srv->request_timeout_ms = cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms
							      : DEFAULT_REQUEST_MS;
	srv->handoff_timeout_ms = cfg->handoff_timeout_ms > 0 ? cfg->handoff_timeout_ms
							      : DEFAULT_HANDOFF_MS;
	srv->max_workers = cfg->max_workers > 0 ? cfg->max_workers : DEFAULT_MAX_WORKERS;
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->cv, NULL);
	if (!copy_opt(&srv->socket_dir, cfg->socket_dir) || !copy_opt(&srv->cookie, cfg->cookie) ||
	    !copy_opt(&srv->default_id, cfg->default_id)) {
		rc = ccb_error_set(err, CCB_ERR_NOMEM, "shared-port server");
		goto fail;
	}
	if ((rc = ccb__wakeup_init(&srv->wake, err)) || (rc = listen_tcp(srv, cfg, err)))
		goto fail;
	CCB_LOG(CCB_LOG_INFO, "shared-port server: listening on port %u", srv->port);
	*out = srv;
	return CCB_OK;
fail:
	ccb_sharedport_server_free(srv);
	return rc;
}

void ccb_sharedport_server_free(ccb_sharedport_server *srv)
{
	if (!srv)
		return;
	reap_workers(srv, true);
	if (srv->lfd >= 0)
		close(srv->lfd);
	ccb__wakeup_close(&srv->wake);
	pthread_cond_destroy(&srv->cv);
	pthread_mutex_destroy(&srv->mu);
	free(srv->socket_dir);
	free(srv->cookie);
	free(srv->default_id);
	free(srv);
}

/*
 * Shared-port endpoint: a Unix socket named after a shared-port id that
 * receives forwarded TCP connections as file descriptors (sp §4-§6).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sharedport/sharedport_internal.h"

#define DEFAULT_BACKLOG 4096         /* SOCKET_LISTEN_BACKLOG (sp §8) */
#define DEFAULT_HANDOFF_MS 10000     /* Go listener's per-hand-off deadline (sp §6.1) */
#define DEFAULT_NAME "ccb"
#define GENERATE_TRIES 8

struct ccb_sharedport_endpoint {
	int lfd;
	ccb__wakeup wake; /* raised by shutdown */
	char *id;
	char *path; /* socket file, NULL for an abstract name */
	dev_t dev;  /* identity of the file we bound, so close removes only ours */
	ino_t ino;
	int handoff_timeout_ms;

	pthread_mutex_t mu;
	int cur_fd; /* Unix connection being read, so shutdown can interrupt it */

	atomic_uint_fast64_t accepted, rejected;
	char last_reject[CCB_ERROR_DETAIL_SIZE]; /* accepting thread only */
};

/* "<name>_<pid>_<4 hex>" (sp §4.2; spe:54-84). The random tag keeps a
 * recycled pid from receiving a dead process's connections. */
static ccb_err generate_id(const char *name, char **out, ccb_error *err)
{
	uint8_t rnd[2];
	char hex[5], buf[CCB_SHAREDPORT_ID_MAX + 1];
	ccb_err rc;

	if ((rc = ccb_random_bytes(rnd, sizeof rnd, err)))
		return rc;
	ccb_hex_encode(rnd, sizeof rnd, hex);
	snprintf(buf, sizeof buf, "%s_%ld_%s", name, (long)getpid(), hex);
	*out = ccb_strdup(buf);
	return *out ? CCB_OK : ccb_error_set(err, CCB_ERR_NOMEM, "endpoint id");
}

/* A missing socket directory is created, one level, mode 0755 (sp §6.1). */
static ccb_err ensure_dir(const char *dir, ccb_error *err)
{
	struct stat st;

	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return ccb_error_set(err, CCB_ERR_INVALID_ARG,
					     "socket directory %s is not a directory", dir);
		return CCB_OK;
	}
	if (errno != ENOENT)
		return ccb_error_set(err, CCB_ERR_IO, "socket directory %s: %s", dir,
				     ccb__strerror(errno));
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return ccb_error_set(err, CCB_ERR_IO, "create socket directory %s: %s", dir,
				     ccb__strerror(errno));
	return CCB_OK;
}

/* True if something accepts connections at `a`. */
static bool endpoint_alive(const sharedport__unaddr *a)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	bool alive;

	if (fd < 0)
		return true; /* cannot tell: do not remove anything */
	alive = connect(fd, (const struct sockaddr *)&a->sa, a->len) == 0 || errno == EAGAIN;
	close(fd);
	return alive;
}

/*
 * HTCondor removes a leftover file of the same name and binds again (sp
 * §6.1). We first make sure no live endpoint owns it, and only ever remove
 * a socket, never another kind of file.
 */
static ccb_err remove_stale(const sharedport__unaddr *a, ccb_error *err)
{
	struct stat st;

	if (lstat(a->sa.sun_path, &st) != 0)
		return CCB_OK;
	if (!S_ISSOCK(st.st_mode))
		return ccb_error_set(err, CCB_ERR_STATE, "%s exists and is not a socket", a->text);
	if (endpoint_alive(a))
		return ccb_error_set(err, CCB_ERR_STATE,
				     "another endpoint is listening at %s", a->text);
	if (unlink(a->sa.sun_path) != 0 && errno != ENOENT)
		return ccb_error_set(err, CCB_ERR_IO, "remove stale socket %s: %s", a->text,
				     ccb__strerror(errno));
	CCB_LOG(CCB_LOG_INFO, "shared-port endpoint: removed stale socket %s", a->text);
	return CCB_OK;
}

static ccb_err make_addr(const ccb_sharedport_endpoint_config *cfg, const char *id,
			 sharedport__unaddr *a, ccb_error *err)
{
	if (cfg->cookie)
		return sharedport__abstract_addr(cfg->cookie, id, a, err);
	return sharedport__file_addr(cfg->socket_dir, id, a, err);
}

/* Bind `lfd` as `id`. CCB_ERR_STATE with *in_use set when the name is
 * taken, so a generated id can be drawn again. */
static ccb_err bind_as(int lfd, const ccb_sharedport_endpoint_config *cfg, const char *id,
		       bool replace_stale, bool *in_use, sharedport__unaddr *a, ccb_error *err)
{
	ccb_err rc;

	*in_use = false;
	if ((rc = make_addr(cfg, id, a, err)))
		return rc;
	if (bind(lfd, (const struct sockaddr *)&a->sa, a->len) == 0)
		return CCB_OK;
	if (errno != EADDRINUSE)
		return ccb_error_set(err, CCB_ERR_IO, "bind %s: %s", a->text, ccb__strerror(errno));
	*in_use = true;
	if (!replace_stale || cfg->cookie)
		return ccb_error_set(err, CCB_ERR_STATE, "%s is already in use", a->text);
	if ((rc = remove_stale(a, err)))
		return rc;
	if (bind(lfd, (const struct sockaddr *)&a->sa, a->len) != 0)
		return ccb_error_set(err, CCB_ERR_IO, "bind %s: %s", a->text, ccb__strerror(errno));
	*in_use = false;
	return CCB_OK;
}

static ccb_err bind_endpoint(ccb_sharedport_endpoint *ep, const ccb_sharedport_endpoint_config *cfg,
			     sharedport__unaddr *a, ccb_error *err)
{
	const char *name = cfg->name ? cfg->name : DEFAULT_NAME;
	bool in_use = false;
	ccb_err rc;

	if (cfg->id) {
		if (!(ep->id = ccb_strdup(cfg->id)))
			return ccb_error_set(err, CCB_ERR_NOMEM, "endpoint id");
		return bind_as(ep->lfd, cfg, ep->id, true, &in_use, a, err);
	}
	if (!ccb_sharedport_id_valid(name))
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "invalid endpoint name prefix");
	for (int i = 0; i < GENERATE_TRIES; i++) {
		free(ep->id);
		ep->id = NULL;
		if ((rc = generate_id(name, &ep->id, err)))
			return rc;
		/* A collision with a live endpoint: draw another tag. */
		rc = bind_as(ep->lfd, cfg, ep->id, false, &in_use, a, err);
		if (!in_use)
			return rc;
	}
	return rc;
}

static ccb_err check_cfg(const ccb_sharedport_endpoint_config *cfg, ccb_error *err)
{
	if (!cfg->socket_dir && !cfg->cookie)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				     "shared-port endpoint: need a socket directory or a cookie");
	if (cfg->id && !ccb_sharedport_id_valid(cfg->id))
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				     "shared-port endpoint: invalid id \"%.64s\"", cfg->id);
	return CCB_OK;
}

static ccb_err open_listener(ccb_sharedport_endpoint *ep, const ccb_sharedport_endpoint_config *cfg,
			     ccb_error *err)
{
	sharedport__unaddr a;
	struct stat st;
	ccb_err rc;

	if (!cfg->cookie && (rc = ensure_dir(cfg->socket_dir, err)))
		return rc;
	ep->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (ep->lfd < 0)
		return ccb_error_set(err, CCB_ERR_IO, "endpoint socket: %s", ccb__strerror(errno));
	if ((rc = bind_endpoint(ep, cfg, &a, err)))
		return rc;
	if (!cfg->cookie) {
		if (!(ep->path = ccb_strdup(a.sa.sun_path)))
			return ccb_error_set(err, CCB_ERR_NOMEM, "endpoint path");
		if (lstat(ep->path, &st) == 0) {
			ep->dev = st.st_dev;
			ep->ino = st.st_ino;
		}
	}
	if (listen(ep->lfd, cfg->backlog > 0 ? cfg->backlog : DEFAULT_BACKLOG) != 0)
		return ccb_error_set(err, CCB_ERR_IO, "listen on %s: %s", a.text, ccb__strerror(errno));
	CCB_LOG(CCB_LOG_INFO, "shared-port endpoint: waiting for connections to named socket %s",
		a.text);
	return CCB_OK;
}

ccb_err ccb_sharedport_endpoint_new(const ccb_sharedport_endpoint_config *cfg,
				    ccb_sharedport_endpoint **out, ccb_error *err)
{
	ccb_sharedport_endpoint *ep;
	ccb_err rc;

	if (out)
		*out = NULL;
	if (!cfg || !out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "shared-port endpoint: no config");
	if ((rc = check_cfg(cfg, err)))
		return rc;
	if (!(ep = calloc(1, sizeof *ep)))
		return ccb_error_set(err, CCB_ERR_NOMEM, "shared-port endpoint");
	ep->lfd = ep->cur_fd = -1;
	ep->wake = (ccb__wakeup)CCB__WAKEUP_NONE;
	ep->handoff_timeout_ms = cfg->handoff_timeout_ms > 0 ? cfg->handoff_timeout_ms
							     : DEFAULT_HANDOFF_MS;
	pthread_mutex_init(&ep->mu, NULL);
	if ((rc = ccb__wakeup_init(&ep->wake, err)) || (rc = open_listener(ep, cfg, err))) {
		ccb_sharedport_endpoint_free(ep);
		return rc;
	}
	*out = ep;
	return CCB_OK;
}

const char *ccb_sharedport_endpoint_id(const ccb_sharedport_endpoint *ep)
{
	return ep->id;
}

const char *ccb_sharedport_endpoint_path(const ccb_sharedport_endpoint *ep)
{
	return ep->path;
}

int ccb_sharedport_endpoint_fd(const ccb_sharedport_endpoint *ep)
{
	return ep->lfd;
}

/* One hand-off on accepted Unix connection `ufd`, interruptible by shutdown. */
static ccb_err receive_one(ccb_sharedport_endpoint *ep, int ufd, int64_t deadline, int *fd,
			   ccb_error *err)
{
	int64_t d = ccb_deadline_in(ep->handoff_timeout_ms);
	ccb_err rc;

	if (deadline < d)
		d = deadline;
	pthread_mutex_lock(&ep->mu);
	ep->cur_fd = ufd;
	pthread_mutex_unlock(&ep->mu);
	rc = sharedport__recv_handoff(ufd, d, ccb__wakeup_fd(&ep->wake), fd, err);
	/* Unpublish before closing, so shutdown never touches a reused number. */
	pthread_mutex_lock(&ep->mu);
	ep->cur_fd = -1;
	pthread_mutex_unlock(&ep->mu);
	close(ufd);
	return rc;
}

static ccb_err accept_unix(ccb_sharedport_endpoint *ep, int64_t deadline, int *ufd,
			   ccb_error *err)
{
	ccb_err rc;

	for (;;) {
		if ((rc = sharedport__wait(ep->lfd, POLLIN, ccb__wakeup_fd(&ep->wake), deadline,
					   "wait for a forwarded connection", err)))
			return rc;
		*ufd = accept4(ep->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (*ufd >= 0)
			return CCB_OK;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
		    errno == ECONNABORTED)
			continue;
		return ccb_error_set(err, CCB_ERR_IO, "accept on %s: %s", ep->id, ccb__strerror(errno));
	}
}

static ccb_err finish_error(ccb_sharedport_endpoint *ep, ccb_err rc, ccb_error *err)
{
	if (atomic_load(&ep->rejected) && ep->last_reject[0] && rc == CCB_ERR_TIMEOUT)
		ccb_error_set(err, rc, "endpoint %s: no connection before the deadline "
				       "(last rejected hand-off: %s)",
			      ep->id, ep->last_reject);
	else
		ccb_error_prefix(err, "endpoint %s: ", ep->id);
	return rc;
}

ccb_err ccb_sharedport_endpoint_accept_fd(ccb_sharedport_endpoint *ep, int64_t deadline_ms,
					  int *fd, ccb_error *err)
{
	ccb_error e;
	int ufd;
	ccb_err rc;

	if (!ep || !fd)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "shared-port accept: no endpoint");
	*fd = -1;
	ep->last_reject[0] = '\0';
	for (;;) {
		if ((rc = accept_unix(ep, deadline_ms, &ufd, err)))
			return finish_error(ep, rc, err);
		rc = receive_one(ep, ufd, deadline_ms, fd, &e);
		if (rc == CCB_OK) {
			atomic_fetch_add(&ep->accepted, 1);
			CCB_LOG(CCB_LOG_DEBUG, "shared-port endpoint %s: received forwarded connection",
				ep->id);
			return CCB_OK;
		}
		if (rc == CCB_ERR_CANCELLED) {
			ccb_error_set(err, rc, "%s", e.detail);
			return finish_error(ep, rc, err);
		}
		/* A bad hand-off costs only that Unix connection (sp §5 receiver
		 * step 2); keep waiting for a good one. */
		atomic_fetch_add(&ep->rejected, 1);
		snprintf(ep->last_reject, sizeof ep->last_reject, "%s", e.detail);
		CCB_LOG(CCB_LOG_WARNING, "shared-port endpoint %s: dropped a hand-off: %s", ep->id,
			e.detail);
	}
}

ccb_err ccb_sharedport_endpoint_accept(ccb_sharedport_endpoint *ep, int64_t deadline_ms,
				       ccb_stream **out, ccb_error *err)
{
	int fd;
	ccb_err rc;

	if (!out)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "shared-port accept: no out pointer");
	*out = NULL;
	if ((rc = ccb_sharedport_endpoint_accept_fd(ep, deadline_ms, &fd, err)))
		return rc;
	/* A new stream has no digests: what the client sent before (the
	 * SHARED_PORT_CONNECT) was consumed by the server (sp §6.3). */
	return ccb_stream_new(fd, out, err);
}

void ccb_sharedport_endpoint_shutdown(ccb_sharedport_endpoint *ep)
{
	if (!ep)
		return;
	ccb__wakeup_signal(&ep->wake);
	pthread_mutex_lock(&ep->mu);
	if (ep->cur_fd >= 0)
		shutdown(ep->cur_fd, SHUT_RDWR);
	pthread_mutex_unlock(&ep->mu);
}

void ccb_sharedport_endpoint_get_stats(const ccb_sharedport_endpoint *ep,
				       ccb_sharedport_endpoint_stats *st)
{
	st->accepted = atomic_load(&ep->accepted);
	st->rejected = atomic_load(&ep->rejected);
}

/* Remove the socket file only while it is still the one we bound: another
 * process may have replaced a file it thought stale (sp §6.1). */
static void remove_socket_file(const ccb_sharedport_endpoint *ep)
{
	struct stat st;

	if (!ep->path)
		return;
	if (lstat(ep->path, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_dev != ep->dev ||
	    st.st_ino != ep->ino)
		return;
	if (unlink(ep->path) != 0)
		CCB_LOG(CCB_LOG_WARNING, "shared-port endpoint: remove %s: %s", ep->path,
			ccb__strerror(errno));
}

void ccb_sharedport_endpoint_free(ccb_sharedport_endpoint *ep)
{
	if (!ep)
		return;
	if (ep->lfd >= 0) {
		remove_socket_file(ep);
		close(ep->lfd);
	}
	ccb__wakeup_close(&ep->wake);
	pthread_mutex_destroy(&ep->mu);
	free(ep->path);
	free(ep->id);
	free(ep);
}

/*
 * The library's one outbound TCP connect (cedar/connect.h): non-blocking
 * start + poll for writability until a deadline (or a stop fd), one resolved
 * address after another.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccb/stream.h"
#include "cedar/connect.h"
#include "util/util.h"

int ccb__tcp_connect_start(const struct addrinfo *ai, int *fd)
{
	int e;

	*fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (*fd < 0)
		return errno;
	/* EINTR on a non-blocking connect: it goes on in the background, as
	 * with EINPROGRESS; writability tells the outcome. */
	if (connect(*fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS ||
	    errno == EINTR)
		return 0;
	e = errno;
	close(*fd);
	*fd = -1;
	return e;
}

int ccb__tcp_connect_finish(int fd)
{
	int soerr = 0, one = 1;
	socklen_t len = sizeof soerr;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
		return errno;
	if (soerr)
		return soerr;
	/* CEDAR messages are small request/response units. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return 0;
}

const char *ccb__tcp_peer_name(char *buf, size_t n, const char *what, const char *host, int port)
{
	bool v6 = host && strchr(host, ':');

	snprintf(buf, n, "%s%s%s%s%s:%d", what ? what : "", what ? " " : "", v6 ? "[" : "",
		 host ? host : "(null)", v6 ? "]" : "", port);
	return buf;
}

ccb_err ccb__tcp_connect_error(ccb_error *err, const char *where, int e)
{
	if (e == ECONNREFUSED)
		return ccb_error_set(err, CCB_ERR_IO, "connection refused by %s", where);
	return ccb_error_set(err, CCB_ERR_IO, "connect to %s: %s", where, ccb__strerror(e));
}

/* Wait for the connect on `fd` until the deadline or the stop fd. */
static ccb_err connect_wait(int fd, int64_t t0, int64_t deadline, int stop_fd, const char *where,
			    ccb_error *err)
{
	struct pollfd p[2] = {{.fd = fd, .events = POLLOUT}, {.fd = stop_fd, .events = POLLIN}};
	int rc, e;

	do
		rc = poll(p, stop_fd >= 0 ? 2 : 1, ccb_deadline_left(deadline));
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return ccb_error_set(err, CCB_ERR_IO, "connect to %s: poll: %s", where,
				     ccb__strerror(errno));
	if (rc > 0 && stop_fd >= 0 && (p[1].revents & POLLIN))
		return ccb_error_set(err, CCB_ERR_CANCELLED, "connect to %s: cancelled", where);
	if (rc == 0)
		return ccb_error_set(err, CCB_ERR_TIMEOUT, "connect to %s timed out after %lld ms",
				     where, (long long)(ccb_now_ms() - t0));
	if ((e = ccb__tcp_connect_finish(fd)))
		return ccb__tcp_connect_error(err, where, e);
	return CCB_OK;
}

ccb_err ccb__tcp_connect(const char *host, int port, int64_t deadline_ms, const char *what,
			 int stop_fd, int *fd, ccb_error *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char portstr[8], where[320];
	int64_t t0 = ccb_now_ms();
	ccb_err rc = CCB_ERR_NOT_FOUND;
	int gai;

	*fd = -1;
	if (!host || !*host || port <= 0 || port > 65535)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "connect: bad address %s:%d",
				     host ? host : "(null)", port);
	snprintf(portstr, sizeof portstr, "%d", port);
	ccb__tcp_peer_name(where, sizeof where, what, host, port);
	gai = getaddrinfo(host, portstr, &hints, &res);
	if (gai != 0)
		return ccb_error_set(err, CCB_ERR_NOT_FOUND, "resolve %s: %s", where, gai_strerror(gai));
	/* Each address in turn; a timeout or a stop ends the whole connect,
	 * since the deadline is shared. */
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int e = ccb__tcp_connect_start(ai, fd);

		if (e) {
			rc = ccb__tcp_connect_error(err, where, e);
			continue;
		}
		rc = connect_wait(*fd, t0, deadline_ms, stop_fd, where, err);
		if (rc == CCB_OK)
			break;
		close(*fd);
		*fd = -1;
		if (rc == CCB_ERR_TIMEOUT || rc == CCB_ERR_CANCELLED)
			break;
	}
	freeaddrinfo(res);
	if (rc == CCB_OK)
		ccb_error_clear(err);
	return rc;
}

ccb_err ccb_tcp_connect(const char *host, int port, int64_t deadline_ms, const char *what,
			int *fd, ccb_error *err)
{
	return ccb__tcp_connect(host, port, deadline_ms, what, -1, fd, err);
}

ccb_err ccb_stream_connect(const char *host, int port, int timeout_ms, ccb_stream **out,
			   ccb_error *err)
{
	int fd;
	char name[300];
	ccb_err rc;

	*out = NULL;
	rc = ccb_tcp_connect(host, port, ccb_deadline_in(timeout_ms), NULL, &fd, err);
	if (rc || (rc = ccb_stream_new(fd, out, err)))
		return rc;
	ccb_stream_set_peer_name(*out, ccb__tcp_peer_name(name, sizeof name, NULL, host, port));
	if (timeout_ms >= 0)
		ccb_stream_set_timeout(*out, timeout_ms);
	return CCB_OK;
}

/* Outbound TCP connections with a deadline. */
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
#include "util/util.h"

static ccb_err connect_one(const struct addrinfo *ai, int64_t deadline, const char *where,
			   int *out, ccb_error *err)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			ai->ai_protocol);
	int one = 1, soerr = 0;
	socklen_t len = sizeof soerr;

	if (fd < 0)
		return ccb_error_set(err, CCB_ERR_IO, "connect to %s: socket: %s", where,
				     ccb__strerror(errno));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int rc;

		if (errno != EINPROGRESS && errno != EINTR) {
			soerr = errno;
			goto fail;
		}
		while ((rc = poll(&p, 1, ccb_deadline_left(deadline))) < 0 && errno == EINTR)
			;
		if (rc == 0) {
			close(fd);
			return ccb_error_set(err, CCB_ERR_TIMEOUT, "connect to %s: timed out", where);
		}
		if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
			soerr = errno;
		if (soerr)
			goto fail;
	}
	/* CEDAR messages are small request/response units. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	*out = fd;
	return CCB_OK;
fail:
	close(fd);
	return ccb_error_set(err, CCB_ERR_IO, "connect to %s: %s", where, ccb__strerror(soerr));
}

ccb_err ccb_tcp_connect(const char *host, int port, int64_t deadline_ms, const char *what,
			int *fd, ccb_error *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char portstr[8], where[320];
	ccb_err rc = CCB_ERR_NOT_FOUND;
	int gai;

	*fd = -1;
	if (!host || !*host || port <= 0 || port > 65535)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG, "connect: bad address %s:%d",
				     host ? host : "(null)", port);
	snprintf(portstr, sizeof portstr, "%d", port);
	snprintf(where, sizeof where, "%s%s%s:%d", what ? what : "", what ? " " : "", host, port);
	hints.ai_flags = AI_ADDRCONFIG;
	gai = getaddrinfo(host, portstr, &hints, &res);
	if (gai != 0)
		return ccb_error_set(err, CCB_ERR_NOT_FOUND, "resolve %s: %s", where, gai_strerror(gai));
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		rc = connect_one(ai, deadline_ms, where, fd, err);
		if (rc == CCB_OK || rc == CCB_ERR_TIMEOUT)
			break;
	}
	freeaddrinfo(res);
	return rc;
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
	snprintf(name, sizeof name, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
	ccb_stream_set_peer_name(*out, name);
	if (timeout_ms >= 0)
		ccb_stream_set_timeout(*out, timeout_ms);
	return CCB_OK;
}

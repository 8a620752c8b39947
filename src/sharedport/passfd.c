/*
 * The hand-off between a shared-port server and an endpoint over a Unix
 * stream socket (sp §5), plus endpoint addressing (sp §4.1) and the
 * cancellable waits both sides use.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sharedport/sharedport_internal.h"

/* Room for a few descriptors: a sender that passes more than one gets the
 * extras closed instead of leaked (as Go's listener does, sp §6.1). */
#define RECV_MAX_FDS 8

/* ---- addresses ----------------------------------------------------------- */

ccb_err sharedport__file_addr(const char *dir, const char *id, sharedport__unaddr *a,
			      ccb_error *err)
{
	int n;

	memset(a, 0, sizeof *a);
	a->sa.sun_family = AF_UNIX;
	n = snprintf(a->sa.sun_path, sizeof a->sa.sun_path, "%s/%s", dir, id);
	/* HTCondor refuses a name that does not fit rather than truncating it
	 * (spc HandleUnbound "full socket name ... is too long"). */
	if (n < 0 || (size_t)n >= sizeof a->sa.sun_path)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				     "socket path %s/%s is longer than the %zu bytes of sun_path",
				     dir, id, sizeof a->sa.sun_path - 1);
	a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
	snprintf(a->text, sizeof a->text, "%s", a->sa.sun_path);
	return CCB_OK;
}

ccb_err sharedport__abstract_addr(const char *cookie, const char *id, sharedport__unaddr *a,
				  ccb_error *err)
{
#ifdef __linux__
	int n;

	memset(a, 0, sizeof *a);
	a->sa.sun_family = AF_UNIX;
	/* "\0" + cookie + "/" + id, length without a trailing NUL
	 * (sp §4.1; capture: 85 = 2 + 1 + 64 + 1 + 17). */
	n = snprintf(a->sa.sun_path + 1, sizeof a->sa.sun_path - 1, "%s/%s", cookie, id);
	if (n < 0 || (size_t)n >= sizeof a->sa.sun_path - 1)
		return ccb_error_set(err, CCB_ERR_INVALID_ARG,
				     "abstract socket name %s/%s is too long", cookie, id);
	a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	snprintf(a->text, sizeof a->text, "@%s", a->sa.sun_path + 1);
	return CCB_OK;
#else
	(void)cookie;
	(void)id;
	memset(a, 0, sizeof *a);
	return ccb_error_set(err, CCB_ERR_UNSUPPORTED,
			     "abstract Unix sockets exist only on Linux");
#endif
}

/* ---- waits ---------------------------------------------------------------- */

ccb_err sharedport__wait(int fd, short events, int wake_fd, int64_t deadline, const char *what,
			 ccb_error *err)
{
	struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = wake_fd, .events = POLLIN}};
	nfds_t n = wake_fd >= 0 ? 2 : 1;
	int64_t t0 = ccb_now_ms();

	for (;;) {
		int rc = poll(p, n, ccb_deadline_left(deadline));
		if (rc > 0 && n == 2 && p[1].revents)
			return ccb_error_set(err, CCB_ERR_CANCELLED, "%s: cancelled", what);
		if (rc > 0)
			return CCB_OK;
		if (rc == 0)
			return ccb_error_set(err, CCB_ERR_TIMEOUT, "%s timed out after %lld ms", what,
					     (long long)(ccb_now_ms() - t0));
		if (errno != EINTR)
			return ccb_error_set(err, CCB_ERR_IO, "%s: poll: %s", what,
					     ccb__strerror(errno));
	}
}

/* ---- sender ---------------------------------------------------------------- */

static ccb_err connect_unix(const sharedport__unaddr *a, int *out, int *sys_errno,
			    ccb_error *err)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	*out = -1;
	*sys_errno = 0;
	if (fd < 0)
		return ccb_error_set(err, CCB_ERR_IO, "socket(AF_UNIX): %s", ccb__strerror(errno));
	/* Non-blocking, so a full listen queue fails at once with EAGAIN
	 * instead of stalling the server (sp §5 step 2). */
	while (connect(fd, (const struct sockaddr *)&a->sa, a->len) != 0) {
		int e = errno;
		if (e == EINTR)
			continue;
		close(fd);
		*sys_errno = e;
		if (e == ENOENT || e == ECONNREFUSED)
			return ccb_error_set(err, CCB_ERR_NOT_FOUND, "no endpoint listening at %s (%s)",
					     a->text, ccb__strerror(e));
		if (e == EAGAIN || e == EWOULDBLOCK || e == ETIMEDOUT)
			return ccb_error_set(err, CCB_ERR_LIMIT, "endpoint %s is busy (%s)", a->text,
					     ccb__strerror(e));
		return ccb_error_set(err, CCB_ERR_IO, "connect to %s: %s", a->text, ccb__strerror(e));
	}
	*out = fd;
	return CCB_OK;
}

/* Primary name first, then the file in the socket directory when the
 * primary is missing or refuses (sp §5 step 2). */
static ccb_err connect_endpoint(const char *dir, const char *cookie, const char *id, int *out,
				char *where, size_t where_size, ccb_error *err)
{
	sharedport__unaddr a;
	int e = 0;
	ccb_err rc = CCB_ERR_NOT_FOUND;

	if (cookie) {
		if ((rc = sharedport__abstract_addr(cookie, id, &a, err)))
			return rc;
		snprintf(where, where_size, "%s", a.text);
		rc = connect_unix(&a, out, &e, err);
		if (rc == CCB_OK || !dir || (e != ENOENT && e != ECONNREFUSED))
			return rc;
	}
	if (!dir)
		return rc;
	if ((rc = sharedport__file_addr(dir, id, &a, err)))
		return rc;
	snprintf(where, where_size, "%s", a.text);
	return connect_unix(&a, out, &e, err);
}

/* One data byte (the first byte of an int 0) with `fd` in a single
 * SCM_RIGHTS message of CMSG_LEN(sizeof(int)) bytes, as spc HandleFD sends
 * it (sp §5 step 4; strace: msg_controllen=20, return value 1). */
static ccb_err send_fd(int ufd, int fd, int64_t deadline, int wake_fd, const char *where,
		       ccb_error *err)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	char byte = 0;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;

	memset(&ctl, 0, sizeof ctl);
	msg.msg_control = ctl.buf;
	msg.msg_controllen = CMSG_LEN(sizeof(int));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	for (;;) {
		ssize_t w = sendmsg(ufd, &msg, MSG_NOSIGNAL);
		ccb_err rc;
		if (w == 1)
			return CCB_OK;
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			rc = sharedport__wait(ufd, POLLOUT, wake_fd, deadline, "pass socket", err);
			if (rc) {
				ccb_error_prefix(err, "%s: ", where);
				return rc;
			}
			continue;
		}
		return ccb_error_set(err, w < 0 && errno == EPIPE ? CCB_ERR_CLOSED : CCB_ERR_IO,
				     "%s: sendmsg(SCM_RIGHTS): %s", where,
				     w < 0 ? ccb__strerror(errno) : "nothing sent");
	}
}

ccb_err sharedport__pass_fd(const char *dir, const char *cookie, const char *id, int fd,
			    int64_t deadline, int wake_fd, ccb_error *err)
{
	char where[sizeof(((sharedport__unaddr *)0)->text) + 32];
	ccb_stream *s = NULL;
	int ufd, sfd;
	ccb_err rc;

	if (!ccb_sharedport_id_valid(id))
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "illegal shared-port id");
	if ((rc = connect_endpoint(dir, cookie, id, &ufd, where, sizeof where, err)))
		return rc;
	/* The stream gets its own descriptor so `ufd` stays ours for sendmsg. */
	sfd = fcntl(ufd, F_DUPFD_CLOEXEC, 0);
	if (sfd < 0) {
		rc = ccb_error_set(err, CCB_ERR_IO, "%s: dup: %s", where, ccb__strerror(errno));
		goto out;
	}
	if ((rc = ccb_stream_new(sfd, &s, err)))
		goto out;
	ccb_stream_set_peer_name(s, where);
	ccb_stream_set_deadline(s, deadline);
	/* int 76, EOM: 01 00 00 00 08 00 .. 00 4c (sp §5 step 3). */
	if ((rc = ccb_stream_put_int(s, SHAREDPORT_PASS_SOCK)) ||
	    (rc = ccb_stream_end_message(s))) {
		ccb_error_set(err, rc, "send SHARED_PORT_PASS_SOCK: %s",
			      ccb_stream_error(s)->detail);
		goto out;
	}
	rc = send_fd(ufd, fd, deadline, wake_fd, where, err);
	/* No acknowledgement comes back (sp §5 step 5). */
out:
	ccb_stream_free(s);
	close(ufd);
	return rc;
}

/* ---- receiver ---------------------------------------------------------------- */

static ccb_err read_pass_sock(int ufd, int64_t deadline, ccb_error *err)
{
	ccb_stream *s;
	int32_t cmd = 0;
	int sfd = fcntl(ufd, F_DUPFD_CLOEXEC, 0);
	ccb_err rc;

	if (sfd < 0)
		return ccb_error_set(err, CCB_ERR_IO, "dup: %s", ccb__strerror(errno));
	if ((rc = ccb_stream_new(sfd, &s, err)))
		return rc;
	ccb_stream_set_peer_name(s, "shared-port server");
	ccb_stream_set_deadline(s, deadline);
	/* The message is one int; refuse anything bigger unread. */
	ccb_stream_set_max_message(s, 64);
	/* The first int must be 76 and EOM must follow (sp §5 receiver step 2;
	 * spe DoListenerAccept). */
	if ((rc = ccb_stream_get_int32(s, &cmd)))
		ccb_error_set(err, rc, "read SHARED_PORT_PASS_SOCK: %s",
			      ccb_stream_error(s)->detail);
	else if (cmd != SHAREDPORT_PASS_SOCK)
		rc = ccb_error_set(err, CCB_ERR_PROTOCOL,
				   "unexpected command %d on the endpoint (want %d)", cmd,
				   SHAREDPORT_PASS_SOCK);
	else if ((rc = ccb_stream_end_of_message(s)))
		ccb_error_set(err, rc, "read SHARED_PORT_PASS_SOCK: %s",
			      ccb_stream_error(s)->detail);
	/* The stream read exactly the message, never the byte that carries
	 * the descriptor: unread ancillary data would be lost. */
	ccb_stream_free(s);
	return rc;
}

/* Keep the first SCM_RIGHTS descriptor, close every other one. */
static int take_fds(struct msghdr *msg)
{
	int keep = -1;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
		size_t n;
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
			if (fd < 0)
				continue;
			if (keep < 0)
				keep = fd;
			else
				close(fd);
		}
	}
	return keep;
}

static ccb_err recv_fd(int ufd, int64_t deadline, int wake_fd, int *out, ccb_error *err)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(RECV_MAX_FDS * sizeof(int))];
	} ctl;
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg;
	ssize_t r;
	ccb_err rc;

	*out = -1;
	for (;;) {
		memset(&msg, 0, sizeof msg);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof ctl.buf;
		r = recvmsg(ufd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (r >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return ccb_error_set(err, CCB_ERR_IO, "recvmsg: %s", ccb__strerror(errno));
		if ((rc = sharedport__wait(ufd, POLLIN, wake_fd, deadline,
					   "wait for the passed socket", err)))
			return rc;
	}
	*out = take_fds(&msg);
	/* Exactly one byte with one descriptor (sp §5 receiver step 3). */
	if (r == 0 && *out < 0)
		return ccb_error_set(err, CCB_ERR_CLOSED,
				     "server closed without passing a socket");
	if (*out < 0)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "no SCM_RIGHTS descriptor with the byte");
	if (msg.msg_flags & MSG_CTRUNC) {
		close(*out);
		*out = -1;
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "truncated control data");
	}
	return CCB_OK;
}

/* HTCondor wraps whatever arrives as a socket, of any family (spe
 * ReceiveSocket, assignCCBSocket); a non-socket is refused here because the
 * caller is promised a connection. */
static ccb_err check_socket(int fd, ccb_error *err)
{
	struct stat st;
	int fl;

	if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "passed descriptor is not a socket");
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return CCB_OK;
}

ccb_err sharedport__recv_handoff(int ufd, int64_t deadline, int wake_fd, int *fd,
				 ccb_error *err)
{
	ccb_err rc;

	*fd = -1;
	if ((rc = read_pass_sock(ufd, deadline, err)))
		return rc;
	if ((rc = recv_fd(ufd, deadline, wake_fd, fd, err)))
		return rc;
	if ((rc = check_socket(*fd, err))) {
		close(*fd);
		*fd = -1;
	}
	return rc;
}

/*
 * SHARED_PORT_CONNECT on the wire: the request parser shared by the server
 * and the fuzzer, id rules and the client's deadline field.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cedar/codec.h"
#include "sharedport/sharedport_internal.h"

bool ccb_sharedport_id_valid(const char *id)
{
	size_t n = 0;

	if (!id || !*id)
		return false;
	/* Only characters that cannot leave the socket directory
	 * (sp §1; H:src/condor_io/shared_port_client.cpp SharedPortIdIsValid). */
	for (const char *p = id; *p; p++, n++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
		if (!ok || n >= CCB_SHAREDPORT_ID_MAX)
			return false;
	}
	return true;
}

int64_t sharedport__deadline_field(int64_t deadline_ms, int64_t now_ms)
{
	int64_t left;

	/* No deadline: -1 (sp §2 field 4; spc sendSharedPortID). */
	if (deadline_ms == INT64_MAX)
		return -1;
	if (deadline_ms <= now_ms)
		return 0;
	left = deadline_ms - now_ms;
	/* Whole seconds, rounded up: 0 would tell a C++ server the deadline
	 * is now (Stream::set_deadline_timeout(0)). */
	left = left / 1000 + (left % 1000 ? 1 : 0);
	return left > INT32_MAX ? INT32_MAX : left;
}

/* A C++ `int` field: Stream::get(int &) fails unless the upper four bytes
 * are the sign extension of the lower four (H:src/condor_io/stream.cpp). */
static ccb_err get_int32(ccb_cursor *c, const char *what, int32_t *v, ccb_error *err)
{
	int64_t w;
	ccb_err rc = ccb_dec_int(c, &w, err);

	if (rc) {
		ccb_error_prefix(err, "%s: ", what);
		return rc;
	}
	if (w < INT32_MIN || w > INT32_MAX)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "%s: %lld does not fit a 32-bit int",
				     what, (long long)w);
	*v = (int32_t)w;
	return CCB_OK;
}

/* A string read into a C++ char[bufsize]: longer ones fail, a NULL marker
 * reads as "" (H:src/condor_io/stream.cpp Stream::get(char *, int)). */
static ccb_err get_bounded_string(ccb_cursor *c, const char *what, size_t bufsize,
				  const char **s, size_t *n, ccb_error *err)
{
	bool is_null;
	ccb_err rc = ccb_dec_string_view(c, s, n, &is_null, err);

	if (rc) {
		ccb_error_prefix(err, "%s: ", what);
		return rc;
	}
	if (is_null) {
		*s = "";
		*n = 0;
	}
	if (*n + 1 > bufsize)
		return ccb_error_set(err, CCB_ERR_TOO_LARGE,
				     "%s: %zu bytes, longer than the %zu allowed", what, *n,
				     bufsize - 1);
	return CCB_OK;
}

ccb_err sharedport__parse_connect(const uint8_t *body, size_t len, sharedport__request *req,
				  ccb_error *err)
{
	ccb_cursor c = {.data = body, .len = len, .pos = 0, .crypto = false};
	int32_t cmd;
	ccb_err rc;

	memset(req, 0, sizeof *req);
	/* Field order: sp §2 table; sps HandleConnectRequest. */
	if ((rc = get_int32(&c, "command", &cmd, err)))
		return rc;
	if (cmd != SHAREDPORT_CONNECT)
		return ccb_error_set(err, CCB_ERR_PROTOCOL,
				     "command %d is not SHARED_PORT_CONNECT (%d)", cmd,
				     SHAREDPORT_CONNECT);
	if ((rc = get_bounded_string(&c, "shared-port id", SHAREDPORT_NAME_BUF, &req->id,
				     &req->id_len, err)) ||
	    (rc = get_bounded_string(&c, "client name", SHAREDPORT_NAME_BUF,
				     &req->client_name, &req->client_name_len, err)) ||
	    (rc = get_int32(&c, "deadline", &req->deadline, err)) ||
	    (rc = get_int32(&c, "more_args", &req->more_args, err)))
		return rc;
	/* sp §3.1 step 1: more_args outside 0..100 drops the request. */
	if (req->more_args < 0 || req->more_args > SHAREDPORT_MAX_MORE_ARGS)
		return ccb_error_set(err, CCB_ERR_PROTOCOL, "more_args %d outside 0..%d",
				     req->more_args, SHAREDPORT_MAX_MORE_ARGS);
	for (int32_t i = 0; i < req->more_args; i++) {
		const char *junk;
		size_t n;
		if ((rc = get_bounded_string(&c, "extra argument", SHAREDPORT_EXTRA_BUF, &junk,
					     &n, err)))
			return rc;
	}
	/* The reader's end_of_message() fails on unread bytes (cedar-stream.md §1). */
	if (ccb_cursor_left(&c))
		return ccb_error_set(err, CCB_ERR_PROTOCOL,
				     "%zu bytes after the last field of SHARED_PORT_CONNECT",
				     ccb_cursor_left(&c));
	return CCB_OK;
}

void sharedport__peer_name(int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char host[INET6_ADDRSTRLEN] = "?";

	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
		snprintf(buf, size, "fd %d", fd);
	} else if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		snprintf(buf, size, "%s:%u", host, ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		snprintf(buf, size, "[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		snprintf(buf, size, "local socket");
	}
}

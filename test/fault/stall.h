/* Stalled security handshakes against a broker (fault tests and the
 * hostile bench): the first message of a genuine client handshake
 * (DC_AUTHENTICATE + the security request ad, captured from
 * ccb_sec_client_start() talking to a throw-away socket), replayed on
 * connections that then say nothing more; and legitimate calls made from a
 * chosen loopback source address with a bounded deadline. Loopback only. */
#ifndef FAULT_STALL_H
#define FAULT_STALL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ccb/classad.h"
#include "ccb/commands.h"
#include "ccb/security.h"
#include "ccb/stream.h"
#include "ccb/wire.h"
#include "util/util.h"

typedef struct st_capture {
	int port;
	pthread_t t;
} st_capture;

static void *st_capture_client(void *arg)
{
	st_capture *c = arg;
	ccb_sec_client_config sc = {0};
	ccb_sec_info info;
	ccb_stream *s = NULL;

	sc.auth_methods = "CLAIMTOBE";
	sc.claimtobe_user = "condor";
	sc.uid_domain = "vm";
	if (ccb_stream_connect("127.0.0.1", c->port, 5000, &s, NULL) == CCB_OK) {
		ccb_stream_set_timeout(s, 5000);
		/* Fails once the capturing side closes: only its first message counts. */
		ccb_sec_client_start(s, &sc, CCB_CMD_CCB_REGISTER, 0, NULL, &info, NULL);
	}
	ccb_stream_free(s);
	return NULL;
}

static bool st_read_full(int fd, uint8_t *p, size_t n)
{
	while (n) {
		struct pollfd pf = {fd, POLLIN, 0};
		ssize_t r;
		if (poll(&pf, 1, 5000) <= 0)
			return false;
		r = recv(fd, p, n, 0);
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

/* The client's first handshake message, whole CEDAR packets (malloc'd). */
static inline uint8_t *st_capture_first_message(size_t *len)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	st_capture c = {0};
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), fd = -1;
	uint8_t *msg = NULL;
	size_t n = 0;
	bool ok = false;

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&a, &al))
		goto out;
	c.port = ntohs(a.sin_port);
	pthread_create(&c.t, NULL, st_capture_client, &c);
	fd = accept(lfd, NULL, NULL);
	for (bool end = false; fd >= 0 && !end;) {
		uint8_t hdr[5];
		uint32_t blen;
		uint8_t *m;
		if (!st_read_full(fd, hdr, 5))
			break;
		end = hdr[0] == 1;
		blen = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
		if (blen > 1 << 20 || !(m = realloc(msg, n + 5 + blen)))
			break;
		msg = m;
		memcpy(msg + n, hdr, 5);
		if (!st_read_full(fd, msg + n + 5, blen))
			break;
		n += 5 + blen;
		ok = end;
	}
	if (fd >= 0)
		close(fd);
	pthread_join(c.t, NULL);
out:
	if (lfd >= 0)
		close(lfd);
	if (!ok) {
		free(msg);
		return NULL;
	}
	*len = n;
	return msg;
}

/* A blocking TCP connection from src_ip (port chosen by the kernel) to
 * 127.0.0.1:port, or -1. */
static inline int st_connect_from(const char *src_ip, int port)
{
	struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, src_ip, &src.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
	dst.sin_port = htons((uint16_t)port);
	if (bind(fd, (struct sockaddr *)&src, sizeof src) ||
	    connect(fd, (struct sockaddr *)&dst, sizeof dst)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A stalled handshake: connect from src_ip, send the captured first
 * message, then nothing. The fd, or -1. */
static inline int st_stall(const char *src_ip, int port, const uint8_t *msg, size_t len)
{
	int fd = st_connect_from(src_ip, port);

	if (fd >= 0 && send(fd, msg, len, MSG_NOSIGNAL) != (ssize_t)len) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* A legitimate call from src_ip within timeout_ms: CCB_REGISTER as condor
 * (register, read the reply with a CCBID) or CCB_CMD_LIBCCB_STATUS as tool
 * (read the JSON). *ms: elapsed. */
static inline ccb_err st_legit(int command, const char *src_ip, int port, int timeout_ms,
			       int64_t *ms, ccb_error *err)
{
	ccb_sec_client_config sc = {0};
	ccb_sec_info info;
	ccb_stream *s = NULL;
	int64_t t0 = ccb_now_ms();
	int fd = st_connect_from(src_ip, port);
	ccb_err rc;

	sc.auth_methods = "CLAIMTOBE";
	sc.claimtobe_user = command == CCB_CMD_CCB_REGISTER ? "condor" : "tool";
	sc.uid_domain = "vm";
	if (fd < 0) {
		rc = ccb_error_set(err, CCB_ERR_IO, "connect from %s: %s", src_ip, strerror(errno));
		goto out;
	}
	if ((rc = ccb_stream_new(fd, &s, err))) {
		close(fd);
		goto out;
	}
	ccb_stream_set_deadline(s, ccb_deadline_in(timeout_ms));
	ccb_stream_set_max_message(s, 64 * 1024 * 1024);
	if ((rc = ccb_sec_client_start(s, &sc, command, 0, NULL, &info, err)))
		goto out;
	if (command == CCB_CMD_CCB_REGISTER) {
		ccb_ad_field f[] = {CCB_AD_INT(CCB_ATTR_COMMAND, CCB_CMD_CCB_REGISTER),
				    CCB_AD_STRING(CCB_ATTR_NAME, "STALLTEST <127.0.0.1:1234>")};
		ccb_classad *ad = NULL, *reply = NULL;
		const char *id = NULL;
		rc = ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, err);
		if (!rc)
			rc = ccb_control_ad_write(s, ad, CCB_VERSION_NUM(25, 14, 0), err);
		if (!rc)
			rc = ccb_control_ad_read(s, &reply, err);
		if (!rc && ccb_classad_get_string(reply, CCB_ATTR_CCBID, &id) != CCB_OK)
			rc = ccb_error_set(err, CCB_ERR_PROTOCOL, "register reply without a CCBID");
		ccb_classad_free(ad);
		ccb_classad_free(reply);
	} else {
		char *json = NULL;
		if ((rc = ccb_stream_get_string(s, &json)) || (rc = ccb_stream_end_of_message(s)))
			ccb_error_set(err, rc, "status reply: %s", ccb_stream_error(s)->detail);
		else if (!strstr(json, "HandshakesInProgress"))
			rc = ccb_error_set(err, CCB_ERR_PROTOCOL, "status reply without the handshake counts");
		ccb_free(json);
	}
out:
	ccb_stream_free(s);
	if (ms)
		*ms = ccb_now_ms() - t0;
	return rc;
}

/* Resident set size of this process in KiB (/proc/self/status VmRSS). */
static inline long st_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6))
			kib = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kib;
}

#endif

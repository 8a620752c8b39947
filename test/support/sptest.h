/*
 * Helpers shared by the shared-port test programs: temp socket dirs, raw
 * socket I/O with timeouts, and servers/accepts running on threads.
 */
#ifndef SPTEST_H
#define SPTEST_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ccb/sharedport.h"
#include "ccbt.h"
#include "util/util.h"

/* A fresh socket directory under /tmp (short: sun_path is 108 bytes). */
static inline void sp_mkdir(char dir[64])
{
	snprintf(dir, 64, "/tmp/ccbsp.XXXXXX");
	if (!mkdtemp(dir))
		abort();
}

/* Remove the directory; returns how many entries were still in it. */
static inline int sp_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];
	int left = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		left++;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
	return left;
}

/* Connect a raw TCP socket to 127.0.0.1:port. */
static inline int sp_tcp_connect(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		abort();
	return fd;
}

/* Connect a raw Unix socket to `path`. */
static inline int sp_unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		abort();
	return fd;
}

static inline void sp_send_hex(int fd, const char *hex)
{
	size_t n;
	uint8_t *b = ccbt_unhex(hex, &n);

	if (send(fd, b, n, MSG_NOSIGNAL) != (ssize_t)n)
		abort();
	free(b);
}

/* Read up to n bytes within timeout_ms; returns the count (stops at EOF). */
static inline size_t sp_read(int fd, uint8_t *buf, size_t n, int timeout_ms)
{
	int64_t deadline = ccb_deadline_in(timeout_ms);
	size_t got = 0;

	while (got < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;
		if (poll(&p, 1, ccb_deadline_left(deadline)) <= 0)
			break;
		r = recv(fd, buf + got, n - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* True if the peer closed `fd` (EOF or reset) within timeout_ms. */
static inline bool sp_sees_eof(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint8_t b;

	if (poll(&p, 1, timeout_ms) <= 0)
		return false;
	return recv(fd, &b, 1, 0) <= 0;
}

/* ---- background work ---------------------------------------------------- */

typedef struct sp_bg {
	pthread_t th;
	ccb_sharedport_server *srv;
	ccb_sharedport_endpoint *ep;
	int64_t deadline;
	ccb_err rc;
	ccb_error err;
	int fd;
	int64_t took_ms;
} sp_bg;

static inline void *sp_run_main(void *arg)
{
	sp_bg *b = arg;
	int64_t t0 = ccb_now_ms();

	b->rc = ccb_sharedport_server_run(b->srv, &b->err);
	b->took_ms = ccb_now_ms() - t0;
	return NULL;
}

static inline void *sp_serve_one_main(void *arg)
{
	sp_bg *b = arg;

	b->rc = ccb_sharedport_server_serve_one(b->srv, b->deadline, &b->err);
	return NULL;
}

static inline void *sp_accept_main(void *arg)
{
	sp_bg *b = arg;
	int64_t t0 = ccb_now_ms();

	b->rc = ccb_sharedport_endpoint_accept_fd(b->ep, b->deadline, &b->fd, &b->err);
	b->took_ms = ccb_now_ms() - t0;
	return NULL;
}

static inline void sp_start(sp_bg *b, void *(*fn)(void *))
{
	b->fd = -1;
	b->rc = CCB_ERR_STATE;
	memset(&b->err, 0, sizeof b->err);
	if (pthread_create(&b->th, NULL, fn, b) != 0)
		abort();
}

static inline void sp_join(sp_bg *b)
{
	pthread_join(b->th, NULL);
}

static inline void sp_sleep_ms(int ms)
{
	poll(NULL, 0, ms);
}

#endif

/*
 * The bidirectional blast of the relay benchmarks (ccb_proxy_bench's loop):
 * each end sends and receives at once on one socket for `seconds`, from a
 * common start time. Shared by bench_relay, bench_outbound and bench_tunnel.
 */
#ifndef CCB_BENCH_BLAST_H
#define CCB_BENCH_BLAST_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct blaster {
	int fd;
	size_t bufsz;   /* bytes per send and receive */
	double seconds; /* how long to blast */
	double start;   /* common start time (now_s()) */
	uint64_t received;
	double elapsed;
	bool error;
};

/* Thread body: blast on b->fd until b->seconds have passed or the socket fails. */
static inline void *blast(void *arg)
{
	struct blaster *b = arg;
	uint8_t *out = calloc(1, b->bufsz), *in = malloc(b->bufsz);
	size_t off = 0;
	double t0, end;

	if (!out || !in) {
		b->error = true;
		free(out);
		free(in);
		return NULL;
	}
	memset(out, 'x', b->bufsz);
	while (now_s() < b->start)
		usleep(1000); /* deliberate: wait for the common start time */
	t0 = now_s();
	end = t0 + b->seconds;
	for (;;) {
		double now = now_s();
		struct pollfd pf = {.fd = b->fd, .events = POLLIN | POLLOUT};
		if (now >= end)
			break;
		if (poll(&pf, 1, (int)((end - now) * 1000) + 1) <= 0)
			continue;
		if (pf.revents & (POLLERR | POLLHUP)) {
			b->error = true;
			break;
		}
		if (pf.revents & POLLIN) {
			ssize_t r = recv(b->fd, in, b->bufsz, MSG_DONTWAIT);
			if (r > 0)
				b->received += (uint64_t)r;
			else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				b->error = true;
				break;
			}
		}
		if (pf.revents & POLLOUT) {
			ssize_t w = send(b->fd, out + off, b->bufsz - off, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w > 0)
				off = (off + (size_t)w) % b->bufsz;
			else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				b->error = true;
				break;
			}
		}
	}
	b->elapsed = now_s() - t0;
	free(out);
	free(in);
	return NULL;
}

#endif

/*
 * Relay engine (src/ccb/relay.c, ccb-protocol.md §7.7): bulk data both ways at
 * once, half-close in both orders, resets, the cap, many concurrent relays,
 * engine free with live relays, and the same data tests through the
 * user-space copy path (CCB_RELAY_FORCE_COPY, and pipe2 failing with EMFILE).
 *
 * Topology of every test: end_a <-> fd_a  [engine]  fd_b <-> end_b, two
 * loopback TCP pairs whose inner sides are handed to the engine.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "relay.h"
#include "ccbt.h"
#include "util/util.h"

#define MIB (1024u * 1024u)

/* ---- deterministic byte streams ---------------------------------------- */

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Bytes [off, off+n) of the stream `seed` into out. */
static void gen(uint64_t seed, uint64_t off, uint8_t *out, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint64_t pos = off + i;
		uint64_t w = splitmix(seed * 0x100000001b3ull + pos / 8);
		size_t k = pos % 8;
		for (; k < 8 && i < n; k++, i++)
			out[i] = (uint8_t)(w >> (8 * k));
	}
}

/* ---- a peer: sends its stream while checking what it receives ----------- */

struct peer {
	int fd;
	uint64_t send_seed, send_len;  /* what to send */
	uint64_t recv_seed;            /* what to expect */
	bool shut_after_send;          /* shutdown(SHUT_WR) after the last byte */
	/* results */
	uint64_t sent, received;
	bool eof, mismatch, timeout, error;
	uint64_t mismatch_at;
};

static void *peer_run(void *arg)
{
	struct peer *p = arg;
	size_t bufsz = 256 * 1024;
	uint8_t *out = malloc(bufsz), *in = malloc(bufsz), *want = malloc(bufsz);
	size_t out_len = 0, out_off = 0;
	bool send_done = p->send_len == 0;

	if (send_done && p->shut_after_send)
		shutdown(p->fd, SHUT_WR);
	while (!p->eof || !send_done) {
		struct pollfd pf = {.fd = p->fd, .events = 0};
		if (!p->eof)
			pf.events |= POLLIN;
		if (!send_done)
			pf.events |= POLLOUT;
		int n = poll(&pf, 1, 20000);
		if (n == 0) {
			p->timeout = true;
			break;
		}
		if (n < 0)
			continue;
		if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
			if (!p->eof) {
				ssize_t r = recv(p->fd, in, bufsz, MSG_DONTWAIT);
				if (r == 0) {
					p->eof = true;
				} else if (r > 0) {
					gen(p->recv_seed, p->received, want, (size_t)r);
					if (!p->mismatch && memcmp(in, want, (size_t)r) != 0) {
						p->mismatch = true;
						p->mismatch_at = p->received;
					}
					p->received += (uint64_t)r;
				} else if (errno != EAGAIN && errno != EINTR) {
					p->error = true;
					break;
				}
			} else if (send_done) {
				break;
			}
		}
		if (!send_done && (pf.revents & (POLLOUT | POLLERR))) {
			if (out_off == out_len) {
				uint64_t left = p->send_len - p->sent;
				out_len = left < bufsz ? (size_t)left : bufsz;
				gen(p->send_seed, p->sent, out, out_len);
				out_off = 0;
			}
			ssize_t w = send(p->fd, out + out_off, out_len - out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w > 0) {
				out_off += (size_t)w;
				p->sent += (uint64_t)w;
				if (p->sent == p->send_len) {
					send_done = true;
					if (p->shut_after_send)
						shutdown(p->fd, SHUT_WR);
				}
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				p->error = true;
				break;
			}
		}
	}
	free(out);
	free(in);
	free(want);
	return NULL;
}

/* ---- done-callback bookkeeping ----------------------------------------- */

struct donectx {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int count, failed;
	uint64_t a2b, b2a;
};

static void donectx_init(struct donectx *d)
{
	memset(d, 0, sizeof *d);
	pthread_mutex_init(&d->mu, NULL);
	ccbt_cond_init_monotonic(&d->cv);
}

static void donectx_destroy(struct donectx *d)
{
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
}

static void on_done(void *user, uint64_t a2b, uint64_t b2a, bool failed)
{
	struct donectx *d = user;
	pthread_mutex_lock(&d->mu);
	d->count++;
	if (failed)
		d->failed++;
	d->a2b += a2b;
	d->b2a += b2a;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

/* Wait until `n` relays reported done (ms at most); returns the count. */
static int wait_done_ms(struct donectx *d, int n, int ms)
{
	int64_t deadline = ccb_now_ms() + ms;
	pthread_mutex_lock(&d->mu);
	while (d->count < n && ccb_now_ms() < deadline) {
		struct timespec ts;
		ccbt_monotonic_deadline(&ts, 50);
		pthread_cond_timedwait(&d->cv, &d->mu, &ts);
	}
	int c = d->count;
	pthread_mutex_unlock(&d->mu);
	return c;
}

static int wait_done(struct donectx *d, int n)
{
	return wait_done_ms(d, n, 10000);
}

/* ---- topology ---------------------------------------------------------- */

struct link {
	int end_a, end_b; /* the test's ends */
	int fd_a, fd_b;   /* handed to the engine */
};

static void link_make(struct link *l)
{
	int p1[2], p2[2];
	ccbt_tcp_pair(p1);
	ccbt_tcp_pair(p2);
	l->end_a = p1[0];
	l->fd_a = p1[1];
	l->fd_b = p2[0];
	l->end_b = p2[1];
}

static void start_ok(ccb__relay_engine *e, struct link *l, struct donectx *d)
{
	ccb_error err = {0};
	ccb_err rc = ccb__relay_start(e, l->fd_a, l->fd_b, on_done, d, &err);
	CU_ASSERT_EQUAL_FATAL(rc, CCB_OK);
}

/* Is fd's peer gone (EOF or reset) within 5 s? */
static bool sees_eof(int fd)
{
	uint8_t b[4096];
	int64_t deadline = ccb_now_ms() + 5000;
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int left = (int)(deadline - ccb_now_ms());
		if (left <= 0 || poll(&pf, 1, left) <= 0)
			return false;
		ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0 && errno != EAGAIN)
			return false;
	}
}

static bool force_copy;

static ccb__relay_engine *engine(unsigned threads, size_t cap)
{
	if (force_copy)
		setenv("CCB_RELAY_FORCE_COPY", "1", 1);
	ccb_error err = {0};
	ccb__relay_engine *e = ccb__relay_engine_new(threads, cap, &err);
	unsetenv("CCB_RELAY_FORCE_COPY");
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	return e;
}

/* ---- tests ------------------------------------------------------------- */

/* 64 MiB each way at the same time, checked byte for byte. */
static void bulk(uint64_t len)
{
	int fds0 = ccbt_count_fds();
	struct donectx d;
	donectx_init(&d);
	ccb__relay_engine *e = engine(2, 0);
	struct link l;
	link_make(&l);
	start_ok(e, &l, &d);

	struct peer pa = {.fd = l.end_a, .send_seed = 11, .send_len = len, .recv_seed = 22,
			  .shut_after_send = true};
	struct peer pb = {.fd = l.end_b, .send_seed = 22, .send_len = len, .recv_seed = 11,
			  .shut_after_send = true};
	pthread_t ta, tb;
	pthread_create(&ta, NULL, peer_run, &pa);
	pthread_create(&tb, NULL, peer_run, &pb);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);

	CU_ASSERT_FALSE(pa.timeout || pb.timeout || pa.error || pb.error);
	CU_ASSERT_EQUAL(pa.sent, len);
	CU_ASSERT_EQUAL(pb.sent, len);
	CU_ASSERT_EQUAL(pa.received, len);
	CU_ASSERT_EQUAL(pb.received, len);
	CU_ASSERT_FALSE(pa.mismatch);
	CU_ASSERT_FALSE(pb.mismatch);
	CU_ASSERT_TRUE(pa.eof && pb.eof);

	CU_ASSERT_EQUAL(wait_done(&d, 1), 1);
	CU_ASSERT_EQUAL(d.failed, 0);
	CU_ASSERT_EQUAL(d.a2b, len);
	CU_ASSERT_EQUAL(d.b2a, len);
	ccb__relay_stats st;
	ccb__relay_engine_stats(e, &st);
	CU_ASSERT_EQUAL(st.sessions, 1);
	CU_ASSERT_EQUAL(st.active, 0);
	CU_ASSERT_EQUAL(st.bytes, 2 * len);
	CU_ASSERT_EQUAL(st.failed, 0);

	close(l.end_a);
	close(l.end_b);
	ccb__relay_engine_free(e);
	donectx_destroy(&d);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds0);
}

static void test_bulk_64m(void)
{
	bulk(64 * MIB);
}

static void send_all(int fd, uint64_t seed, uint64_t off, size_t n)
{
	uint8_t *b = malloc(n);
	gen(seed, off, b, n);
	size_t done = 0;
	while (done < n) {
		ssize_t w = send(fd, b + done, n - done, MSG_NOSIGNAL);
		CU_ASSERT_FATAL(w > 0);
		done += (size_t)w;
	}
	free(b);
}

static void recv_exact(int fd, uint64_t seed, uint64_t off, size_t n)
{
	uint8_t *b = malloc(n), *want = malloc(n);
	ccbt_read_raw(fd, b, n);
	gen(seed, off, want, n);
	CU_ASSERT_EQUAL(memcmp(b, want, n), 0);
	free(b);
	free(want);
}

/* One side sends and shuts down its write side; the other side reads it all
 * plus EOF, then keeps sending (its direction still open) and shuts down
 * later. first_is_b = the S5 capture's order: the target's FIN reaches the
 * requester first, the requester's FIN reaches the target later. */
static void half_close(bool first_is_b)
{
	int fds0 = ccbt_count_fds();
	struct donectx d;
	donectx_init(&d);
	ccb__relay_engine *e = engine(1, 0);
	struct link l;
	link_make(&l);
	start_ok(e, &l, &d);

	int first = first_is_b ? l.end_b : l.end_a;
	int second = first_is_b ? l.end_a : l.end_b;
	size_t n1 = 300000, n2a = 200000, n2b = 500000;

	send_all(first, 1, 0, n1);
	CU_ASSERT_EQUAL(shutdown(first, SHUT_WR), 0);
	recv_exact(second, 1, 0, n1);
	CU_ASSERT_TRUE(sees_eof(second)); /* FIN propagated, nothing extra */

	/* the other direction still flows, in two pieces */
	send_all(second, 2, 0, n2a);
	recv_exact(first, 2, 0, n2a);
	CU_ASSERT_EQUAL(wait_done_ms(&d, 1, 200), 0); /* the relay is still alive */
	send_all(second, 2, n2a, n2b);
	CU_ASSERT_EQUAL(shutdown(second, SHUT_WR), 0);
	recv_exact(first, 2, n2a, n2b);
	CU_ASSERT_TRUE(sees_eof(first));

	CU_ASSERT_EQUAL(wait_done(&d, 1), 1);
	CU_ASSERT_EQUAL(d.failed, 0);
	CU_ASSERT_EQUAL(first_is_b ? d.b2a : d.a2b, n1);
	CU_ASSERT_EQUAL(first_is_b ? d.a2b : d.b2a, n2a + n2b);
	ccb__relay_stats st;
	ccb__relay_engine_stats(e, &st);
	CU_ASSERT_EQUAL(st.active, 0);
	CU_ASSERT_EQUAL(st.failed, 0);
	CU_ASSERT_EQUAL(st.bytes, n1 + n2a + n2b);
	close(l.end_a);
	close(l.end_b);
	ccb__relay_engine_free(e);
	donectx_destroy(&d);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds0);
}

static void test_half_close_target_first(void)
{
	half_close(true);
}

static void test_half_close_requester_first(void)
{
	half_close(false);
}

static void abort_fd(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

/* A reset on one side while idle: counted as failed, the other side closed. */
static void test_reset_idle(void)
{
	int fds0 = ccbt_count_fds();
	struct donectx d;
	donectx_init(&d);
	ccb__relay_engine *e = engine(1, 0);
	struct link l;
	link_make(&l);
	start_ok(e, &l, &d);
	send_all(l.end_a, 5, 0, 1000);
	recv_exact(l.end_b, 5, 0, 1000);

	abort_fd(l.end_a);
	CU_ASSERT_TRUE(sees_eof(l.end_b));
	CU_ASSERT_EQUAL(wait_done(&d, 1), 1);
	CU_ASSERT_EQUAL(d.failed, 1);
	ccb__relay_stats st;
	ccb__relay_engine_stats(e, &st);
	CU_ASSERT_EQUAL(st.failed, 1);
	CU_ASSERT_EQUAL(st.active, 0);
	CU_ASSERT_EQUAL(st.bytes, 1000);
	close(l.end_b);
	ccb__relay_engine_free(e);
	donectx_destroy(&d);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds0);
}

/* The destination resets while the source is sending a lot. */
static void test_reset_while_sending(void)
{
	int fds0 = ccbt_count_fds();
	struct donectx d;
	donectx_init(&d);
	ccb__relay_engine *e = engine(1, 0);
	struct link l;
	link_make(&l);
	start_ok(e, &l, &d);
	send_all(l.end_a, 6, 0, 100000);
	recv_exact(l.end_b, 6, 0, 100000);

	/* end_a blasts (in a thread) while end_b resets */
	struct peer pa = {.fd = l.end_a, .send_seed = 6, .send_len = 256 * MIB, .recv_seed = 7};
	pthread_t ta;
	pthread_create(&ta, NULL, peer_run, &pa);
	abort_fd(l.end_b);
	pthread_join(ta, NULL);
	/* the engine closed fd_a: end_a's blast ends with an error or EOF */
	CU_ASSERT_TRUE(pa.error || pa.eof);
	CU_ASSERT_FALSE(pa.timeout);
	CU_ASSERT(pa.sent < 256 * MIB);
	CU_ASSERT_EQUAL(wait_done(&d, 1), 1);
	CU_ASSERT_EQUAL(d.failed, 1);
	ccb__relay_stats st;
	ccb__relay_engine_stats(e, &st);
	CU_ASSERT_EQUAL(st.failed, 1);
	CU_ASSERT_EQUAL(st.active, 0);
	close(l.end_a);
	ccb__relay_engine_free(e);
	donectx_destroy(&d);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds0);
}

static void test_cap(void)
{
	int fds0 = ccbt_count_fds();
	struct donectx d;
	donectx_init(&d);
	ccb__relay_engine *e = engine(2, 2);
	struct link l[3];
	for (int i = 0; i < 3; i++)
		link_make(&l[i]);
	start_ok(e, &l[0], &d);
	start_ok(e, &l[1], &d);
	ccb_error err = {0};
	CU_ASSERT_EQUAL(ccb__relay_start(e, l[2].fd_a, l[2].fd_b, on_done, &d, &err), CCB_ERR_LIMIT);
	CU_ASSERT_EQUAL(err.code, CCB_ERR_LIMIT);
	ccb__relay_stats st;
	ccb__relay_engine_stats(e, &st);
	CU_ASSERT_EQUAL(st.refused, 1);
	CU_ASSERT_EQUAL(st.active, 2);
	CU_ASSERT_EQUAL(st.sessions, 2);
	/* the refused fds are still ours: they still work */
	CU_ASSERT_EQUAL(send(l[2].fd_a, "x", 1, 0), 1);
	uint8_t c;
	ccbt_read_raw(l[2].end_a, &c, 1);
	CU_ASSERT_EQUAL(c, 'x');

	/* end relay 0 (both sides close) -> a slot frees up */
	close(l[0].end_a);
	close(l[0].end_b);
	CU_ASSERT_EQUAL(wait_done(&d, 1), 1);
	CU_ASSERT_EQUAL(d.failed, 0);
	start_ok(e, &l[2], &d);
	send_all(l[2].end_b, 8, 0, 5000);
	recv_exact(l[2].end_a, 8, 0, 5000);
	ccb__relay_engine_stats(e, &st);
	CU_ASSERT_EQUAL(st.sessions, 3);
	CU_ASSERT_EQUAL(st.active, 2);
	CU_ASSERT_EQUAL(st.refused, 1);

	ccb__relay_engine_free(e);
	CU_ASSERT_EQUAL(d.count, 3);
	for (int i = 1; i < 3; i++) {
		close(l[i].end_a);
		close(l[i].end_b);
	}
	donectx_destroy(&d);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds0);
}

#define MANY 200
#define MANY_LEN 3000

/* 200 relays at once over 2 threads, each carrying its own bytes both ways. */
static void test_many(void)
{
	int fds0 = ccbt_count_fds();
	struct donectx d;
	donectx_init(&d);
	ccb__relay_engine *e = engine(2, 0);
	struct link *l = calloc(MANY, sizeof *l);
	for (int i = 0; i < MANY; i++) {
		link_make(&l[i]);
		start_ok(e, &l[i], &d);
	}
	for (int i = 0; i < MANY; i++) {
		send_all(l[i].end_a, 1000 + (uint64_t)i, 0, MANY_LEN);
		send_all(l[i].end_b, 5000 + (uint64_t)i, 0, MANY_LEN);
		shutdown(l[i].end_a, SHUT_WR);
		shutdown(l[i].end_b, SHUT_WR);
	}
	for (int i = 0; i < MANY; i++) {
		recv_exact(l[i].end_b, 1000 + (uint64_t)i, 0, MANY_LEN);
		recv_exact(l[i].end_a, 5000 + (uint64_t)i, 0, MANY_LEN);
		CU_ASSERT_TRUE(sees_eof(l[i].end_a));
		CU_ASSERT_TRUE(sees_eof(l[i].end_b));
	}
	CU_ASSERT_EQUAL(wait_done(&d, MANY), MANY);
	CU_ASSERT_EQUAL(d.failed, 0);
	CU_ASSERT_EQUAL(d.a2b, (uint64_t)MANY * MANY_LEN);
	CU_ASSERT_EQUAL(d.b2a, (uint64_t)MANY * MANY_LEN);
	ccb__relay_stats st;
	ccb__relay_engine_stats(e, &st);
	CU_ASSERT_EQUAL(st.sessions, MANY);
	CU_ASSERT_EQUAL(st.active, 0);
	CU_ASSERT_EQUAL(st.bytes, 2ull * MANY * MANY_LEN);
	for (int i = 0; i < MANY; i++) {
		close(l[i].end_a);
		close(l[i].end_b);
	}
	free(l);
	ccb__relay_engine_free(e);
	donectx_destroy(&d);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds0);
}

static bool relay_moved_64k(void *arg)
{
	ccb__relay_stats st;

	ccb__relay_engine_stats(arg, &st);
	return st.bytes > 9 + 64 * 1024;
}

/* Free with live relays (some idle, one mid-transfer): every fd closed, the
 * ends see EOF, done called for each, and it is prompt. */
static void test_free_live(void)
{
	int fds0 = ccbt_count_fds();
	struct donectx d;
	donectx_init(&d);
	ccb__relay_engine *e = engine(3, 0);
	struct link l[10];
	for (int i = 0; i < 10; i++) {
		link_make(&l[i]);
		start_ok(e, &l[i], &d);
	}
	send_all(l[3].end_a, 9, 0, 1000);
	recv_exact(l[3].end_b, 9, 0, 1000);
	/* relay 0 is left with unsent bytes: end_b does not read */
	struct peer pa = {.fd = l[0].end_a, .send_seed = 6, .send_len = 64 * MIB, .recv_seed = 7};
	pthread_t ta;
	pthread_create(&ta, NULL, peer_run, &pa);
	/* Wait until relay 0 is mid-transfer (it has moved bytes beyond link
	 * 3's nine) rather than sleeping for it. */
	CU_ASSERT(ccbt_wait_until(30000, relay_moved_64k, e));

	int64_t t0 = ccb_now_ms();
	ccb__relay_engine_free(e);
	int64_t took = ccb_now_ms() - t0;
	CU_ASSERT(took < 2000);
	pthread_join(ta, NULL);
	CU_ASSERT_FALSE(pa.timeout);
	CU_ASSERT_EQUAL(d.count, 10);
	CU_ASSERT_EQUAL(d.failed, 0);
	for (int i = 0; i < 10; i++) {
		if (i != 0)
			CU_ASSERT_TRUE(sees_eof(l[i].end_a));
		close(l[i].end_a);
		close(l[i].end_b);
	}
	donectx_destroy(&d);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds0);
}

static void test_bad_args(void)
{
	ccb__relay_engine *e = engine(1, 0);
	ccb_error err = {0};
	CU_ASSERT_EQUAL(ccb__relay_start(e, -1, 3, NULL, NULL, &err), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb__relay_start(e, 3, 3, NULL, NULL, &err), CCB_ERR_INVALID_ARG);
	ccb__relay_stats st;
	ccb__relay_engine_stats(e, &st);
	CU_ASSERT_EQUAL(st.sessions, 0);
	CU_ASSERT_EQUAL(st.active, 0);
	ccb__relay_engine_free(e);
	ccb__relay_engine_free(NULL);
}

/* ---- user-space copy path ---------------------------------------------- */

static void test_copy_bulk(void)
{
	force_copy = true;
	bulk(64 * MIB);
	force_copy = false;
}

static void test_copy_half_close(void)
{
	force_copy = true;
	half_close(true);
	half_close(false);
	force_copy = false;
}

static void test_copy_reset(void)
{
	force_copy = true;
	test_reset_while_sending();
	force_copy = false;
}

/* pipe2() failing with EMFILE must not refuse the relay: it copies instead. */
static void test_emfile_fallback(void)
{
	int fds0 = ccbt_count_fds();
	struct donectx d;
	donectx_init(&d);
	ccb__relay_engine *e = engine(1, 0);
	struct link l;
	link_make(&l);

	struct rlimit old;
	CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &old), 0);
	int top = l.end_b > l.fd_b ? l.end_b : l.fd_b;
	struct rlimit low = old;
	low.rlim_cur = (rlim_t)top + 1;
	CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_NOFILE, &low), 0);
	/* fill the gaps below the limit */
	int fill[256], nfill = 0;
	while (nfill < 256) {
		int f = dup(l.end_a);
		if (f < 0)
			break;
		fill[nfill++] = f;
	}
	int p[2];
	CU_ASSERT_EQUAL(pipe(p), -1);
	CU_ASSERT_EQUAL(errno, EMFILE);
	start_ok(e, &l, &d);
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	setrlimit(RLIMIT_NOFILE, &old);

	size_t len = 8 * MIB;
	struct peer pa = {.fd = l.end_a, .send_seed = 31, .send_len = len, .recv_seed = 32,
			  .shut_after_send = true};
	struct peer pb = {.fd = l.end_b, .send_seed = 32, .send_len = len, .recv_seed = 31,
			  .shut_after_send = true};
	pthread_t ta, tb;
	pthread_create(&ta, NULL, peer_run, &pa);
	pthread_create(&tb, NULL, peer_run, &pb);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CU_ASSERT_EQUAL(pa.received, len);
	CU_ASSERT_EQUAL(pb.received, len);
	CU_ASSERT_FALSE(pa.mismatch || pb.mismatch);
	CU_ASSERT_TRUE(pa.eof && pb.eof);
	CU_ASSERT_EQUAL(wait_done(&d, 1), 1);
	CU_ASSERT_EQUAL(d.failed, 0);
	close(l.end_a);
	close(l.end_b);
	ccb__relay_engine_free(e);
	donectx_destroy(&d);
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds0);
}

static const ccbt_test splice_tests[] = {
	{"64 MiB each way at once", test_bulk_64m},
	{"half-close, target first (S5 order)", test_half_close_target_first},
	{"half-close, requester first", test_half_close_requester_first},
	{"reset while idle", test_reset_idle},
	{"reset while sending", test_reset_while_sending},
	{"cap refuses, slot frees", test_cap},
	{"200 concurrent relays", test_many},
	{"free with live relays", test_free_live},
	{"bad arguments", test_bad_args},
	{NULL, NULL},
};

static const ccbt_test copy_tests[] = {
	{"64 MiB each way at once (copy)", test_copy_bulk},
	{"half-close both orders (copy)", test_copy_half_close},
	{"reset while sending (copy)", test_copy_reset},
	{"pipe2 EMFILE falls back to copy", test_emfile_fallback},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {
	{"relay splice", splice_tests},
	{"relay user-space copy", copy_tests},
	{NULL, NULL},
};

int main(void)
{
	/* 200 relays use 1600 fds */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096 && rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	return ccbt_run(suites);
}

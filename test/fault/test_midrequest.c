/* Peers vanishing in the middle of a request, against a real in-process broker:
 * - the target (`ccbctl listen` process) is SIGKILLed while a dial to it is
 *   pending: the dial fails promptly (the broker reports the target gone,
 *   ccb-protocol.md §6.5), the broker keeps no pending request;
 * - the requester disappears while the broker waits for the target: the
 *   request is dropped (no pending left), a late result is ignored and the
 *   registration keeps working;
 * - a streaming relay (§7) where one side half-closes (the other direction
 *   keeps flowing, EOF is propagated) or resets (the other side sees the end
 *   promptly and the broker releases the session). */
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "fault.h"

/* ---- target killed while a dial is pending --------------------------------- */

typedef struct pending_dial {
	const char *contact;
	ccb_err rc;
	int64_t ms;
	ccb_error err;
	pthread_t t;
} pending_dial;

static void *pending_main(void *arg)
{
	pending_dial *d = arg;
	const char *ct[1] = {d->contact};

	d->rc = ft_dial_echo(ct, 1, 20000, false, &d->ms, &d->err);
	return NULL;
}

static void test_target_killed_while_pending(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	char path[128], line[512], contact[128];
	const char *p;
	ccbt_proc *lp;
	pending_dial d = {0};
	FILE *f;
	char *argv[] = {CCBCTL_PATH, "listen", "-c", path, NULL};

	bkt_config(&cfg, &k.sec);
	bkt_start(&k, &cfg);
	snprintf(path, sizeof path, "/tmp/ccbt-fault-listen-%d.json", (int)getpid());
	f = fopen(path, "w");
	fprintf(f,
		"{\"CCB_ADDRESS\": \"127.0.0.1:%d\", \"SEC_DEFAULT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\","
		" \"SEC_CLAIMTOBE_USER\": \"condor\", \"UID_DOMAIN\": \"vm\"}",
		k.port);
	fclose(f);
	lp = ccbt_proc_start(argv, NULL);
	CU_ASSERT_FATAL(ccbt_proc_wait_line(lp, "CCBID=", 15000, line, sizeof line));
	/* The contact is URL-encoded inside the sinful (the broker's own
	 * address carries ?addrs=): decode it by parsing. */
	{
		ccb_sinful *sf = NULL;
		p = strchr(line, '<');
		CU_ASSERT_FATAL(p && ccb_sinful_parse(p, &sf, NULL) == CCB_OK);
		snprintf(contact, sizeof contact, "%s", ccb_sinful_ccbid(sf));
		ccb_sinful_free(sf);
	}
	CU_ASSERT(bkt_wait_stat(k.b, "CCBEndpointsConnected", 1));
	/* Freeze the target so the request stays pending, then kill it. */
	kill(ccbt_proc_pid(lp), SIGSTOP);
	d.contact = contact;
	pthread_create(&d.t, NULL, pending_main, &d);
	CU_ASSERT(bkt_wait_stat(k.b, "PendingRequests", 1));
	CU_ASSERT_EQUAL(ccbt_proc_stop(lp, SIGKILL, 10000), 128 + SIGKILL);
	pthread_join(d.t, NULL);
	printf("\n    dial to a target killed mid-request: %s after %" PRId64 " ms (%s)\n",
	       ccb_strerror(d.rc), d.ms, d.err.detail);
	CU_ASSERT_EQUAL(d.rc, CCB_ERR_NO_CALLBACK);
	CU_ASSERT(d.ms < 10000); /* not the 20 s deadline */
	CU_ASSERT(bkt_wait_stat(k.b, "PendingRequests", 0));
	CU_ASSERT(bkt_wait_stat(k.b, "CCBEndpointsConnected", 0));
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBRequestsFailed"), 1);
	bkt_stop(&k);
	unlink(path);
}

/* ---- requester gone while the broker waits ------------------------------------ */

static void test_requester_gone(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener l;
	ccb_stream *rq = NULL;
	ccb_classad *fwd = NULL;
	char cid[CCB_CONNECT_ID_SIZE], text[256];
	bool ok = false;
	int fds0 = ccbt_count_fds();

	bkt_config(&cfg, &k.sec);
	bkt_start(&k, &cfg);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &l), CCB_OK);
	for (int round = 0; round < 3; round++) {
		ccb_connect_id_new(cid, NULL);
		CU_ASSERT_EQUAL_FATAL(bkt_request(k.port, "1", "<127.0.0.1:9>", cid, false, &rq), CCB_OK);
		CU_ASSERT_EQUAL_FATAL(ccb_control_ad_read(l.s, &fwd, NULL), CCB_OK);
		CU_ASSERT(bkt_wait_stat(k.b, "PendingRequests", 1));
		/* The requester vanishes (reset on the last round). */
		if (round == 2) {
			struct linger lg = {1, 0};
			setsockopt(ccb_stream_fd(rq), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		}
		ccb_stream_free(rq);
		CU_ASSERT(bkt_wait_stat(k.b, "PendingRequests", 0));
		/* The target's late result is ignored; the registration lives. */
		CU_ASSERT_EQUAL(bkt_result(&l, fwd, true, NULL), CCB_OK);
		CU_ASSERT(bkt_heartbeat(&l));
		ccb_classad_free(fwd);
		fwd = NULL;
	}
	CU_ASSERT(bkt_wait_stat(k.b, "Connections", 1));
	/* A normal request still works end to end. */
	ccb_connect_id_new(cid, NULL);
	CU_ASSERT_EQUAL_FATAL(bkt_request(k.port, "1", "<127.0.0.1:9>", cid, false, &rq), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(ccb_control_ad_read(l.s, &fwd, NULL), CCB_OK);
	CU_ASSERT_EQUAL(bkt_result(&l, fwd, false, "no"), CCB_OK);
	CU_ASSERT_EQUAL(bkt_reply(rq, &ok, text, sizeof text), CCB_OK);
	CU_ASSERT(!ok);
	CU_ASSERT_STRING_EQUAL(text, "no");
	ccb_stream_free(rq);
	ccb_classad_free(fwd);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBEndpointsConnected"), 1);
	bkt_listener_close(&l);
	bkt_stop(&k);
	CU_ASSERT(ft_settle(fds0, -1, 5000));
}

/* ---- relay half-close and reset ------------------------------------------------ */

enum relay_mode { RM_ECHO_TO_EOF, RM_READ_TO_END, RM_RESET };

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum relay_mode mode;
	int done;
	size_t got;
	int64_t end_ms;   /* when the handler saw the end */
	bool error;       /* ended by an error (reset) rather than EOF */
} R = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, RM_ECHO_TO_EOF, 0, 0, 0, false};

/* Events the test waits for instead of sleeping: bytes the handler has
 * read so far, and the requester having seen the target's bytes. */
static atomic_size_t handler_progress;
static atomic_bool requester_saw_bytes;

static bool progress_reached_1000(void *arg)
{
	(void)arg;
	return atomic_load(&handler_progress) >= 1000;
}

static bool requester_has_bytes(void *arg)
{
	(void)arg;
	return atomic_load(&requester_saw_bytes);
}

static int raw_fd(ccb_stream *s)
{
	int fd = -1;

	if (ccb_stream_detach_fd(s, &fd) != CCB_OK)
		fd = -1;
	ccb_stream_free(s);
	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

/* Read to EOF or error, bounded at 10 s; returns bytes, -1 on error. */
static ssize_t read_all(int fd, char *buf, size_t cap, bool *error, atomic_size_t *progress)
{
	size_t got = 0;

	*error = false;
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t r;
		if (poll(&p, 1, 10000) <= 0) {
			*error = true;
			return -1;
		}
		r = recv(fd, buf + got, cap - got, 0);
		if (r == 0)
			return (ssize_t)got;
		if (r < 0) {
			*error = true;
			return (ssize_t)got;
		}
		got += (size_t)r;
		if (progress)
			atomic_store(progress, got);
		if (got == cap)
			return (ssize_t)got;
	}
}

static void relay_handler(ccb_stream *conn, const ccb_listener_conn_info *info, void *user)
{
	static char buf[1 << 20];
	int fd = raw_fd(conn);
	enum relay_mode mode;
	bool error = false;
	ssize_t n = -1;

	(void)info;
	(void)user;
	pthread_mutex_lock(&R.mu);
	mode = R.mode;
	pthread_mutex_unlock(&R.mu);
	if (fd >= 0 && mode == RM_RESET) {
		/* Send a little, then reset. */
		struct linger lg = {1, 0};
		(void)!send(fd, "abc", 3, MSG_NOSIGNAL);
		/* Reset only once the requester has the bytes: a reset that
		 * reaches the relay first may discard them unread. */
		ccbt_wait_until(10000, requester_has_bytes, NULL);
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		n = 3;
	} else if (fd >= 0) {
		n = read_all(fd, buf, sizeof buf, &error, &handler_progress);
		/* After the peer's half-close our direction still works. */
		if (mode == RM_ECHO_TO_EOF && n > 0 && !error)
			(void)!send(fd, buf, (size_t)n, MSG_NOSIGNAL);
	}
	if (fd >= 0)
		close(fd);
	pthread_mutex_lock(&R.mu);
	R.got = n < 0 ? 0 : (size_t)n;
	R.error = error;
	R.end_ms = ccb_now_ms();
	R.done++;
	pthread_cond_broadcast(&R.cv);
	pthread_mutex_unlock(&R.mu);
}

static bool wait_handler(int want, int timeout_ms)
{
	int64_t until = ccb_now_ms() + timeout_ms;
	bool ok;

	pthread_mutex_lock(&R.mu);
	while (R.done < want && ccb_now_ms() < until) {
		struct timespec ts;
		ccbt_monotonic_deadline(&ts, 20);
		pthread_cond_timedwait(&R.cv, &R.mu, &ts);
	}
	ok = R.done >= want;
	pthread_mutex_unlock(&R.mu);
	return ok;
}

static int streaming_dial(const char *contact)
{
	ccb_dial_config o = {0};
	ccb_stream *s = NULL;
	const char *ct[1] = {contact};
	ccb_error err = {0};
	ccb_dial_info info = {0};

	o.broker_sec = &ft_tool_sec;
	o.timeout_ms = 10000;
	o.streaming = true;
	o.require_streaming = true;
	o.info = &info;
	if (ccb_dial(ct, 1, &o, &s, &err) != CCB_OK) {
		fprintf(stderr, "streaming dial: %s\n", err.detail);
		return -1;
	}
	CU_ASSERT(info.proxied);
	return raw_fd(s);
}

static void test_relay_half_close_and_reset(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	ccb_listener_config c = ft_listener_config();
	ccb_listener *l;
	char addr[64], *contact;
	static char out[200000], in[200001];
	int fd, fds0 = ccbt_count_fds(), thr0 = ft_count_threads();
	bool error;
	ssize_t n;

	for (size_t i = 0; i < sizeof out; i++)
		out[i] = (char)(i * 31 + 7);
	bkt_config(&cfg, &k.sec);
	bkt_start(&k, &cfg);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", k.port);
	c.broker = addr;
	c.handler = relay_handler;
	l = ft_listener_start(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_EQUAL_FATAL(ccb_listener_wait_registered(l, 1, 10000, NULL), CCB_OK);
	ccb_listener_contact_list(l, &contact, NULL);

	/* 1. Requester half-closes after sending: the target reads to EOF and
	 * its answer still comes back through the relay, then EOF. */
	R.mode = RM_ECHO_TO_EOF;
	fd = streaming_dial(contact);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(bkt_wait_stat(k.b, "CCBStreamingActive", 1));
	CU_ASSERT_EQUAL(send(fd, out, sizeof out, MSG_NOSIGNAL), (ssize_t)sizeof out);
	CU_ASSERT_EQUAL(shutdown(fd, SHUT_WR), 0);
	n = read_all(fd, in, sizeof in, &error, NULL);
	CU_ASSERT_FALSE(error);
	CU_ASSERT_EQUAL(n, (ssize_t)sizeof out);
	CU_ASSERT(n == (ssize_t)sizeof out && memcmp(in, out, sizeof out) == 0);
	close(fd);
	CU_ASSERT(wait_handler(1, 10000));
	CU_ASSERT_EQUAL(R.got, sizeof out);
	CU_ASSERT(bkt_wait_stat(k.b, "CCBStreamingActive", 0));

	/* 2. Requester resets mid-stream: the target sees the end promptly. */
	R.mode = RM_READ_TO_END;
	fd = streaming_dial(contact);
	CU_ASSERT_FATAL(fd >= 0);
	atomic_store(&handler_progress, 0);
	CU_ASSERT_EQUAL(send(fd, out, 1000, MSG_NOSIGNAL), 1000);
	/* The target has all 1000 bytes before the requester resets. */
	CU_ASSERT(ccbt_wait_until(10000, progress_reached_1000, NULL));
	{
		struct linger lg = {1, 0};
		int64_t t0 = ccb_now_ms();
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		close(fd);
		CU_ASSERT(wait_handler(2, 10000));
		CU_ASSERT(R.end_ms - t0 < 5000);
		CU_ASSERT_EQUAL(R.got, 1000);
	}
	CU_ASSERT(bkt_wait_stat(k.b, "CCBStreamingActive", 0));

	/* 3. The target resets: the requester gets the bytes sent before and
	 * then the end (EOF or reset), promptly. */
	R.mode = RM_RESET;
	atomic_store(&requester_saw_bytes, false);
	fd = streaming_dial(contact);
	CU_ASSERT_FATAL(fd >= 0);
	n = read_all(fd, in, 3, &error, NULL);
	CU_ASSERT(n == 3 && memcmp(in, "abc", 3) == 0);
	atomic_store(&requester_saw_bytes, true);
	/* Then the end (EOF or reset), and nothing more. */
	n = read_all(fd, in, sizeof in, &error, NULL);
	CU_ASSERT_EQUAL(n, 0);
	close(fd);
	CU_ASSERT(wait_handler(3, 10000));
	CU_ASSERT(bkt_wait_stat(k.b, "CCBStreamingActive", 0));

	/* The broker still serves: a plain dial works. */
	{
		const char *ct[1] = {contact};
		c.handler = ft_echo_handler; /* (unused: the handler is fixed) */
		R.mode = RM_ECHO_TO_EOF;
		fd = streaming_dial(contact);
		CU_ASSERT_FATAL(fd >= 0);
		CU_ASSERT_EQUAL(send(fd, "xyz", 3, MSG_NOSIGNAL), 3);
		shutdown(fd, SHUT_WR);
		n = read_all(fd, in, sizeof in, &error, NULL);
		CU_ASSERT(n == 3 && memcmp(in, "xyz", 3) == 0);
		close(fd);
		(void)ct;
	}
	CU_ASSERT(wait_handler(4, 10000));
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBStreamingSessions"), 4);
	ccb_free(contact);
	ccb_listener_free(l);
	bkt_stop(&k);
	CU_ASSERT(ft_settle(fds0, thr0, 10000));
}

static const ccbt_test tests[] = {
	{"target killed while a dial is pending", test_target_killed_while_pending},
	{"requester gone while the broker waits", test_requester_gone},
	{"relay half-close and reset", test_relay_half_close_and_reset},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"fault mid-request", tests}, {NULL, NULL}};

int main(void)
{
	/* R.cv is waited on with CLOCK_MONOTONIC deadlines. */
	pthread_cond_destroy(&R.cv);
	ccbt_cond_init_monotonic(&R.cv);
	signal(SIGPIPE, SIG_IGN);
	return ccbt_run(suites);
}

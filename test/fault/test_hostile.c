/* Hostile peers against a real in-process broker while a legitimate
 * ccb_listener and a requester keep being served throughout (a background
 * thread dials it every ~50 ms; every dial must succeed):
 * - hellos with a wrong ClaimId and replayed hellos sent to a dialing
 *   requester are closed, the genuine one still wins (ccb-protocol.md §6.4);
 * - a result report with a wrong ClaimId: the broker drops that registration
 *   only (§6.4, H:src/ccb/ccb_server.cpp HandleRequestResultsMsg);
 * - oversized CEDAR length fields, slow-loris sends, 500 half-open
 *   connections, an unauthenticated raw CCB_REGISTER, a READ-level peer
 *   asking for DAEMON commands: each closed cleanly. */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "fault.h"

#define HS_TIMEOUT_MS 1500

/* ---- the legitimate traffic -------------------------------------------------- */

static struct legit {
	bkt_broker k;
	ccb_listener *l;
	char *contact;
	pthread_t t;
	volatile int stop;
	int ok, failed;
	int64_t worst_ms;
	char last_err[CCB_ERROR_DETAIL_SIZE];
} G;

static void *legit_main(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&G.stop, __ATOMIC_ACQUIRE)) {
		const char *ct[1] = {G.contact};
		ccb_error err = {0};
		int64_t ms;
		ccb_err rc = ft_dial_echo(ct, 1, 10000, false, &ms, &err);
		if (rc == CCB_OK) {
			__atomic_add_fetch(&G.ok, 1, __ATOMIC_RELAXED);
		} else {
			__atomic_add_fetch(&G.failed, 1, __ATOMIC_RELAXED);
			snprintf(G.last_err, sizeof G.last_err, "%s", err.detail);
		}
		if (ms > G.worst_ms)
			G.worst_ms = ms;
		usleep(50000); /* deliberate: a legitimate client's pace, not a wait */
	}
	return NULL;
}

static int fds0, thr0;

static void test_setup(void)
{
	ccb_broker_config cfg;
	ccb_listener_config c = ft_listener_config();
	static char addr[64];
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	fds0 = ccbt_count_fds();
	thr0 = ft_count_threads();
	bkt_config(&cfg, &G.k.sec);
	cfg.handshake_timeout_ms = HS_TIMEOUT_MS;
	bkt_start(&G.k, &cfg);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", G.k.port);
	c.broker = addr;
	G.l = ft_listener_start_hb(&c, 300);
	CU_ASSERT_PTR_NOT_NULL_FATAL(G.l);
	CU_ASSERT_EQUAL_FATAL(ccb_listener_wait_registered(G.l, 1, 10000, NULL), CCB_OK);
	ccb_listener_contact_list(G.l, &G.contact, NULL);
	pthread_create(&G.t, NULL, legit_main, NULL);
}

static void test_teardown(void)
{
	__atomic_store_n(&G.stop, 1, __ATOMIC_RELEASE);
	pthread_join(G.t, NULL);
	printf("\n    legitimate dials during the attacks: %d ok, %d failed, worst %" PRId64 " ms%s%s\n",
	       G.ok, G.failed, G.worst_ms, G.failed ? "; last error: " : "", G.last_err);
	/* The legitimate registration survived everything. */
	{
		char *now = NULL;
		ccb_listener_contact_list(G.l, &now, NULL);
		CU_ASSERT_STRING_EQUAL(now ? now : "", G.contact);
		ccb_free(now);
	}
	CU_ASSERT_EQUAL(G.failed, 0);
	CU_ASSERT(G.ok >= 5);
	ccb_listener_free(G.l);
	ccb_free(G.contact);
	bkt_stop(&G.k);
	CU_ASSERT(ft_settle(fds0, thr0, 10000));
}

/* The legitimate peers are still served right now. */
static void assert_legit(void)
{
	const char *ct[1] = {G.contact};
	CU_ASSERT_EQUAL(ft_dial_echo(ct, 1, 10000, false, NULL, NULL), CCB_OK);
	CU_ASSERT_EQUAL(ccb_listener_num_registered(G.l), 1);
	CU_ASSERT_EQUAL(__atomic_load_n(&G.failed, __ATOMIC_RELAXED), 0);
}

/* ---- raw socket helpers -------------------------------------------------------- */

static int raw_connect(int port)
{
	int fd = -1;
	CU_ASSERT_EQUAL_FATAL(ccb_tcp_connect("127.0.0.1", port, ccb_deadline_in(5000), "broker", &fd,
					      NULL),
			      CCB_OK);
	return fd;
}

/* True when the peer closes (EOF or reset) within timeout_ms; any data it
 * sends first is drained. */
static bool wait_closed(int fd, int timeout_ms)
{
	int64_t until = ccb_now_ms() + timeout_ms;
	char buf[4096];

	for (;;) {
		int left = (int)(until - ccb_now_ms());
		struct pollfd p = {fd, POLLIN, 0};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return false;
		ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return true;
	}
}

static bool send_hex(int fd, const char *hex)
{
	size_t n;
	uint8_t *b = ccbt_unhex(hex, &n);
	bool ok = send(fd, b, n, MSG_NOSIGNAL) == (ssize_t)n;
	free(b);
	return ok;
}

/* ---- hostile hellos to a dialing requester ------------------------------------- */

typedef struct dialer {
	char contact[256];
	ccb_err rc;
	int impostors;
	pthread_t t;
	pthread_mutex_t mu;
} dialer;

static void dialer_progress(const ccb_dial_event *ev, void *user)
{
	dialer *d = user;
	if (!strcmp(ev->step, "impostor")) {
		pthread_mutex_lock(&d->mu);
		d->impostors++;
		pthread_mutex_unlock(&d->mu);
	}
}

static void *dialer_main(void *arg)
{
	dialer *d = arg;
	const char *ct[1] = {d->contact};
	ccb_dial_config o = {0};
	ccb_stream *s = NULL;

	o.broker_sec = &ft_tool_sec;
	o.timeout_ms = 15000;
	o.progress = dialer_progress;
	o.progress_user = d;
	d->rc = ccb_dial(ct, 1, &o, &s, NULL);
	ccb_stream_free(s);
	return NULL;
}

/* Connect to the requester named in `fwd` and send a hello whose ClaimId is
 * `claim` (NULL: the right one). Returns the stream. */
static ccb_stream *send_hello(const ccb_classad *fwd, const char *claim)
{
	ccb_classad *hello = NULL;
	ccb_stream *s = NULL;
	const char *my;
	char host[64];
	int port;

	CU_ASSERT_FATAL(ccb_classad_get_string(fwd, CCB_ATTR_MY_ADDRESS, &my) == CCB_OK);
	CU_ASSERT_FATAL(sscanf(my, "<%63[0-9.]:%d", host, &port) == 2);
	CU_ASSERT_EQUAL_FATAL(ccb_stream_connect(host, port, 5000, &s, NULL), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(ccb_hello_ad_from_request(fwd, &hello, NULL), CCB_OK);
	if (claim)
		ccb_classad_set_string(hello, CCB_ATTR_CLAIM_ID, claim);
	CU_ASSERT_EQUAL(ccb_hello_write(s, hello, 0, NULL), CCB_OK);
	ccb_classad_free(hello);
	return s;
}

static void test_wrong_and_replayed_hellos(void)
{
	bkt_listener t;
	ccb_classad *fwd1 = NULL, *fwd2 = NULL;
	ccb_stream *h;
	dialer d = {.mu = PTHREAD_MUTEX_INITIALIZER};
	const char *old_claim;

	/* A scripted target the attacker controls. */
	CU_ASSERT_EQUAL_FATAL(bkt_register(G.k.port, "condor", NULL, NULL, &t), CCB_OK);
	snprintf(d.contact, sizeof d.contact, "%s", t.contact);

	/* First dial: answered genuinely; its hello is recorded for replay. */
	pthread_create(&d.t, NULL, dialer_main, &d);
	CU_ASSERT_EQUAL_FATAL(ccb_control_ad_read(t.s, &fwd1, NULL), CCB_OK);
	h = send_hello(fwd1, NULL);
	pthread_join(d.t, NULL);
	CU_ASSERT_EQUAL(d.rc, CCB_OK);
	ccb_stream_free(h);
	CU_ASSERT_EQUAL(bkt_result(&t, fwd1, true, NULL), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(ccb_classad_get_string(fwd1, CCB_ATTR_CLAIM_ID, &old_claim), CCB_OK);

	/* Second dial: a wrong ClaimId, then the first dial's hello replayed,
	 * then the genuine one. */
	pthread_create(&d.t, NULL, dialer_main, &d);
	CU_ASSERT_EQUAL_FATAL(ccb_control_ad_read(t.s, &fwd2, NULL), CCB_OK);
	h = send_hello(fwd2, "0000000000000000000000000000000000000000");
	CU_ASSERT(wait_closed(ccb_stream_fd(h), 5000));
	ccb_stream_free(h);
	h = send_hello(fwd2, old_claim);
	CU_ASSERT(wait_closed(ccb_stream_fd(h), 5000));
	ccb_stream_free(h);
	h = send_hello(fwd2, NULL);
	pthread_join(d.t, NULL);
	CU_ASSERT_EQUAL(d.rc, CCB_OK);
	CU_ASSERT_EQUAL(d.impostors, 2);
	ccb_stream_free(h);
	CU_ASSERT_EQUAL(bkt_result(&t, fwd2, true, NULL), CCB_OK);
	CU_ASSERT(bkt_heartbeat(&t));
	ccb_classad_free(fwd1);
	ccb_classad_free(fwd2);
	bkt_listener_close(&t);
	assert_legit();
}

/* A result with a wrong ClaimId: that registration is dropped, the request
 * fails, nobody else is affected. */
static void test_result_wrong_claim(void)
{
	bkt_listener t;
	ccb_classad *fwd = NULL, *ad = NULL;
	ccb_stream *rq = NULL;
	char cid[CCB_CONNECT_ID_SIZE], text[256];
	bool ok = true;
	long long bad0 = bkt_stat(G.k.b, "BadInputClosed");

	CU_ASSERT_EQUAL_FATAL(bkt_register(G.k.port, "condor", NULL, NULL, &t), CCB_OK);
	ccb_connect_id_new(cid, NULL);
	{
		char id[32];
		snprintf(id, sizeof id, "%" PRIu64, t.id);
		CU_ASSERT_EQUAL_FATAL(bkt_request(G.k.port, id, "<127.0.0.1:9>", cid, false, &rq), CCB_OK);
	}
	CU_ASSERT_EQUAL_FATAL(ccb_control_ad_read(t.s, &fwd, NULL), CCB_OK);
	{
		ccb_ad_field f[] = {CCB_AD_STRING(CCB_ATTR_REQUEST_ID,
						  ccb_ad_string_or(fwd, CCB_ATTR_REQUEST_ID, "")),
				    CCB_AD_STRING(CCB_ATTR_CLAIM_ID, "1111111111111111111111111111111111111111"),
				    CCB_AD_BOOL(CCB_ATTR_RESULT, true)};
		CU_ASSERT_EQUAL(ccb_ad_new(f, 3, &ad, NULL), CCB_OK);
		CU_ASSERT_EQUAL(ccb_control_ad_write(t.s, ad, 0, NULL), CCB_OK);
	}
	/* The broker closes that registration ... */
	CU_ASSERT(wait_closed(ccb_stream_fd(t.s), 5000));
	/* ... and the pending request fails instead of succeeding. */
	CU_ASSERT_EQUAL(bkt_reply(rq, &ok, text, sizeof text), CCB_OK);
	CU_ASSERT(!ok);
	CU_ASSERT(bkt_wait_stat(G.k.b, "PendingRequests", 0));
	CU_ASSERT(bkt_stat(G.k.b, "BadInputClosed") > bad0);
	ccb_stream_free(rq);
	ccb_classad_free(fwd);
	ccb_classad_free(ad);
	bkt_listener_close(&t);
	assert_legit();
}

/* ---- malformed and abusive connections ------------------------------------------ */

static void test_oversized_lengths(void)
{
	/* CEDAR header (cedar-stream.md §2): end flag + 4-byte big-endian length. */
	static const char *const bad[] = {
		"01 7f ff ff ff",                   /* 2 GiB message */
		"00 00 10 00 01",                   /* 1 MiB, not the end: over the 64 KiB cap */
		"01 ff ff ff ff 00 00 00 00",       /* negative length */
		"05 00 00 00 08 00 00 00 00 00 00 ea 6a", /* bad end flag */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int fd = raw_connect(G.k.port);
		int64_t t0 = ccb_now_ms();
		CU_ASSERT(send_hex(fd, bad[i]));
		CU_ASSERT(wait_closed(fd, HS_TIMEOUT_MS + 3000));
		/* Refused at the header, not after the handshake timeout. */
		if (i < 3)
			CU_ASSERT(ccb_now_ms() - t0 < HS_TIMEOUT_MS);
		close(fd);
	}
	assert_legit();
}

static void test_slow_loris(void)
{
	enum { N = 8 };
	int fds[N];
	/* A DC_AUTHENTICATE command message, sent one byte every 100 ms. */
	size_t len;
	uint8_t *msg = ccbt_unhex("01 00 00 00 08 00 00 00 00 00 00 ea 6a", &len);
	int64_t t0 = ccb_now_ms();
	bool closed[N] = {false};
	int nclosed = 0;

	for (int i = 0; i < N; i++)
		fds[i] = raw_connect(G.k.port);
	for (size_t b = 0; b < len && nclosed < N; b++) {
		for (int i = 0; i < N; i++)
			if (!closed[i] && send(fds[i], msg + b, 1, MSG_NOSIGNAL) != 1)
				closed[i] = true, nclosed++;
		usleep(200000); /* deliberate: a byte every 200 ms is the attack */
	}
	for (int i = 0; i < N; i++) {
		if (!closed[i])
			CU_ASSERT(wait_closed(fds[i], HS_TIMEOUT_MS + 3000));
		close(fds[i]);
	}
	/* Cut off by the handshake timeout, not served to the end. */
	CU_ASSERT(ccb_now_ms() - t0 < (int64_t)len * 200 + HS_TIMEOUT_MS + 3000);
	printf("\n    %d slow-loris connections closed after %" PRId64 " ms\n", N,
	       ccb_now_ms() - t0);
	free(msg);
	assert_legit();
}

static void test_half_open_flood(void)
{
	int n = 500;
	int *fds = calloc((size_t)n, sizeof *fds);
	int closed = 0;
	int64_t t0;

	for (int i = 0; i < n; i++)
		fds[i] = raw_connect(G.k.port);
	t0 = ccb_now_ms();
	/* Legitimate dials go through while 500 connections sit silent. */
	assert_legit();
	for (int i = 0; i < n; i++) {
		if (wait_closed(fds[i], HS_TIMEOUT_MS + 5000))
			closed++;
		close(fds[i]);
	}
	printf("\n    %d/%d half-open connections closed by the broker within %" PRId64 " ms\n", closed,
	       n, ccb_now_ms() - t0);
	CU_ASSERT_EQUAL(closed, n);
	free(fds);
	assert_legit();
}

static void test_unauthenticated_register(void)
{
	long long before = bkt_stat(G.k.b, "CCBEndpointsConnected");
	int fd = raw_connect(G.k.port);

	/* Raw command 67 (no DC_AUTHENTICATE), then a register ad. */
	CU_ASSERT(send_hex(fd, "01 00 00 00 08 00 00 00 00 00 00 00 43"));
	{
		ccb_stream *s = NULL;
		ccb_classad *ad = NULL;
		ccb_ad_field f[] = {CCB_AD_INT(CCB_ATTR_COMMAND, 67), CCB_AD_STRING(CCB_ATTR_NAME, "X")};
		int dupfd = dup(fd);
		ccb_stream_new(dupfd, &s, NULL);
		ccb_ad_new(f, 2, &ad, NULL);
		ccb_control_ad_write(s, ad, 0, NULL); /* may fail: the broker may have closed */
		ccb_classad_free(ad);
		ccb_stream_free(s);
	}
	CU_ASSERT(wait_closed(fd, HS_TIMEOUT_MS + 3000));
	close(fd);
	CU_ASSERT_EQUAL(bkt_stat(G.k.b, "CCBEndpointsConnected"), before);
	assert_legit();
}

static void test_read_peer_daemon_commands(void)
{
	bkt_listener t;
	long long before = bkt_stat(G.k.b, "CCBEndpointsConnected");

	/* "tool" may READ (CCB_REQUEST) but not DAEMON (CCB_REGISTER). */
	CU_ASSERT_EQUAL(bkt_register(G.k.port, "tool", NULL, NULL, &t), CCB_ERR_NOT_AUTHORIZED);
	/* Nor reclaim the legitimate listener's CCBID. */
	CU_ASSERT_EQUAL(bkt_register(G.k.port, "tool", G.contact, "1", &t), CCB_ERR_NOT_AUTHORIZED);
	/* Nor reverse-connect / status is fine, but a DAEMON-level command on a
	 * READ session is refused: try CCB_REGISTER after authenticating for
	 * CCB_REQUEST. */
	{
		ccb_stream *s = NULL;
		ccb_sec_client_config sc = bkt_client("tool");
		ccb_sec_info info;
		CU_ASSERT_EQUAL_FATAL(ccb_stream_connect("127.0.0.1", G.k.port, 5000, &s, NULL), CCB_OK);
		CU_ASSERT_NOT_EQUAL(ccb_sec_client_start(s, &sc, CCB_CMD_CCB_REGISTER, CCB_CMD_CCB_REQUEST,
							 NULL, &info, NULL),
				    CCB_OK);
		ccb_stream_free(s);
	}
	CU_ASSERT_EQUAL(bkt_stat(G.k.b, "CCBEndpointsConnected"), before);
	assert_legit();
}

static const ccbt_test tests[] = {
	{"setup: broker, legitimate listener and requester", test_setup},
	{"wrong and replayed hellos", test_wrong_and_replayed_hellos},
	{"result with a wrong ClaimId", test_result_wrong_claim},
	{"oversized length fields", test_oversized_lengths},
	{"slow loris", test_slow_loris},
	{"500 half-open connections", test_half_open_flood},
	{"unauthenticated CCB_REGISTER", test_unauthenticated_register},
	{"READ peer asking for DAEMON", test_read_peer_daemon_commands},
	{"teardown: the legitimate peers were served throughout", test_teardown},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"fault hostile", tests}, {NULL, NULL}};

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return ccbt_run(suites);
}

/* Stalled security handshakes (issue 15 item 1): peers that send a genuine
 * first handshake message and then go quiet must not hold the broker's
 * handshake workers. With N of them open (64; 1,000 with CCB_FAULT_FULL=1)
 * a legitimate client still registers, dials a listener through the broker
 * and asks the status, each within a deadline below the broker's per-step
 * handshake timeout (5 s). The latencies are printed next to the unloaded
 * ones, not asserted. With the 8 blocking workers of old, every one of
 * these calls waited behind the stalls and timed out.
 *
 * The per-source cap: the (cap+1)-th handshake in progress from one source
 * address is closed with a log line; a client from another source
 * (127.0.0.2) is served meanwhile. */
#include "fault.h"
#include "stall.h"

#define CALL_TIMEOUT_MS 4000 /* below the broker's 5 s per-step timeout */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int cap_lines;
static char cap_line[512];

static void log_fn(ccb_log_level level, const char *msg, void *user)
{
	(void)user;
	(void)level;
	if (strstr(msg, "CCB_SERVER_MAX_HANDSHAKES_PER_SOURCE")) {
		pthread_mutex_lock(&log_mu);
		cap_lines++;
		snprintf(cap_line, sizeof cap_line, "%s", msg);
		pthread_mutex_unlock(&log_mu);
	}
}

static uint8_t *first_msg;
static size_t first_len;

typedef struct calls {
	int64_t reg, dial, status;
} calls;

/* Register, dial the echo listener through the broker, ask the status:
 * each must succeed within CALL_TIMEOUT_MS. */
static void legit_calls(bkt_broker *k, const char *contact, calls *out)
{
	ccb_error err = {0};
	const char *ct[1] = {contact};
	ccb_err rc;

	rc = st_legit(CCB_CMD_CCB_REGISTER, "127.0.0.1", k->port, CALL_TIMEOUT_MS, &out->reg, &err);
	if (rc)
		fprintf(stderr, "register: %s\n", err.detail);
	CU_ASSERT_EQUAL(rc, CCB_OK);
	rc = ft_dial_echo(ct, 1, CALL_TIMEOUT_MS, false, &out->dial, &err);
	if (rc)
		fprintf(stderr, "dial: %s\n", err.detail);
	CU_ASSERT_EQUAL(rc, CCB_OK);
	rc = st_legit(CCB_CMD_LIBCCB_STATUS, "127.0.0.1", k->port, CALL_TIMEOUT_MS, &out->status,
		      &err);
	if (rc)
		fprintf(stderr, "status: %s\n", err.detail);
	CU_ASSERT_EQUAL(rc, CCB_OK);
	CU_ASSERT(out->reg < 5000 && out->dial < 5000 && out->status < 5000);
}

static void test_stalled_handshakes(void)
{
	int n = ft_full() ? 1000 : 64;
	int *fds = calloc((size_t)n, sizeof *fds);
	ccb_broker_config cfg;
	ccb_listener_config lc = ft_listener_config();
	bkt_broker k = {0};
	ccb_listener *l;
	char addr[64], *contact;
	calls idle = {0}, loaded = {0};
	long rss0, rss1;
	int fds0, fds1, opened = 0;
	long long waiting;

	CU_ASSERT_PTR_NOT_NULL_FATAL(fds);
	bkt_config(&cfg, &k.sec);
	cfg.handshake_workers = 8; /* the default */
	cfg.handshake_timeout_ms = 30000;
	cfg.max_handshakes_per_source = (unsigned)n + 64; /* not the cap's test */
	bkt_start(&k, &cfg);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", k.port);
	lc.broker = addr;
	l = ft_listener_start(&lc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_EQUAL_FATAL(ccb_listener_wait_registered(l, 1, 10000, NULL), CCB_OK);
	ccb_listener_contact_list(l, &contact, NULL);

	legit_calls(&k, contact, &idle);
	/* Twice: the first call of each kind warms up. */
	legit_calls(&k, contact, &idle);

	rss0 = st_rss_kib();
	fds0 = ccbt_count_fds();
	for (int i = 0; i < n; i++)
		if ((fds[i] = st_stall("127.0.0.1", k.port, first_msg, first_len)) >= 0)
			opened++;
	CU_ASSERT_EQUAL(opened, n);
	/* Every stalled peer got its security response and is now awaited:
	 * only then is the broker loaded as the measurement below assumes. */
	CU_ASSERT(bkt_wait_stat(k.b, "HandshakesWaitingForPeer", opened));
	rss1 = st_rss_kib();
	fds1 = ccbt_count_fds();

	legit_calls(&k, contact, &loaded);
	waiting = bkt_stat(k.b, "HandshakesWaitingForPeer");
	printf("\n    %d stalled handshakes (%lld still waiting after the calls): "
	       "register %" PRId64 " ms (unloaded %" PRId64 "), dial %" PRId64 " ms (%" PRId64
	       "), status %" PRId64 " ms (%" PRId64 ")\n",
	       opened, waiting, loaded.reg, idle.reg, loaded.dial, idle.dial, loaded.status,
	       idle.status);
	printf("    cost per stalled handshake: %.1f KiB RSS, %.2f fds on the broker side\n",
	       opened ? (double)(rss1 - rss0) / opened : 0.0,
	       opened ? (double)(fds1 - fds0) / opened - 1.0 : 0.0);
	CU_ASSERT(bkt_stat(k.b, "HandshakesInProgress") >= 1);

	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	/* The broker notices the closes and lets them go. */
	CU_ASSERT(bkt_wait_stat(k.b, "HandshakesInProgress", 0));
	CU_ASSERT(bkt_wait_stat(k.b, "HandshakesWaitingForPeer", 0));
	free(fds);
	ccb_free(contact);
	ccb_listener_free(l);
	bkt_stop(&k);
}

static void test_per_source_cap(void)
{
	enum { CAP = 8 };
	int fds[CAP], extra;
	ccb_broker_config cfg;
	bkt_broker k = {0};
	ccb_error err = {0};
	int64_t ms;
	bool closed = false;

	bkt_config(&cfg, &k.sec);
	cfg.handshake_timeout_ms = 30000;
	cfg.max_handshakes_per_source = CAP;
	bkt_start(&k, &cfg);
	ccb_set_log_handler(log_fn, CCB_LOG_WARNING, NULL);
	for (int i = 0; i < CAP; i++) {
		fds[i] = st_stall("127.0.0.1", k.port, first_msg, first_len);
		CU_ASSERT(fds[i] >= 0);
	}
	CU_ASSERT(bkt_wait_stat(k.b, "HandshakesWaitingForPeer", CAP));
	/* One more from the same source: closed at once, logged. */
	extra = st_stall("127.0.0.1", k.port, first_msg, first_len);
	CU_ASSERT_FATAL(extra >= 0);
	{
		char buf[256];
		int64_t until = ccb_now_ms() + 10000;
		while (!closed && ccb_now_ms() < until) {
			struct pollfd p = {extra, POLLIN, 0};
			if (poll(&p, 1, 100) > 0) {
				ssize_t r = recv(extra, buf, sizeof buf, 0);
				closed = r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR);
			}
		}
	}
	CU_ASSERT(closed);
	close(extra);
	CU_ASSERT(bkt_wait_stat(k.b, "HandshakesRefusedPerSource", 1));
	CU_ASSERT_EQUAL(bkt_stat(k.b, "HandshakesInProgress"), CAP);
	pthread_mutex_lock(&log_mu);
	CU_ASSERT_EQUAL(cap_lines, 1);
	printf("\n    log: %s\n", cap_line);
	pthread_mutex_unlock(&log_mu);
	/* Another source is served meanwhile. */
	CU_ASSERT_EQUAL(st_legit(CCB_CMD_LIBCCB_STATUS, "127.0.0.2", k.port, CALL_TIMEOUT_MS, &ms,
				 &err),
			CCB_OK);
	CU_ASSERT_EQUAL(st_legit(CCB_CMD_CCB_REGISTER, "127.0.0.2", k.port, CALL_TIMEOUT_MS, &ms,
				 &err),
			CCB_OK);
	/* The capped source is served again once its stalls are gone. */
	for (int i = 0; i < CAP; i++)
		close(fds[i]);
	CU_ASSERT(bkt_wait_stat(k.b, "HandshakesInProgress", 0));
	CU_ASSERT_EQUAL(st_legit(CCB_CMD_LIBCCB_STATUS, "127.0.0.1", k.port, CALL_TIMEOUT_MS, &ms,
				 &err),
			CCB_OK);
	ccb_set_log_handler(NULL, CCB_LOG_WARNING, NULL);
	bkt_stop(&k);
}

static void test_setup(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	first_msg = st_capture_first_message(&first_len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(first_msg);
	/* DC_AUTHENTICATE, then the request ad. */
	CU_ASSERT_FATAL(first_len > 13 && first_msg[11] == 0xea && first_msg[12] == 0x6a);
}

static void test_teardown(void)
{
	free(first_msg);
}

static const ccbt_test tests[] = {
	{"setup: a genuine first handshake message", test_setup},
	{"stalled handshakes do not delay legitimate calls", test_stalled_handshakes},
	{"per-source cap on handshakes in progress", test_per_source_cap},
	{"teardown", test_teardown},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"fault stalled", tests}, {NULL, NULL}};

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return ccbt_run(suites);
}

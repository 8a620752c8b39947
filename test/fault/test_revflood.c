/* A listener's reverse-connect capacity under attack (issue 15 item 2),
 * against a real in-process broker on loopback:
 * - 64 (CCB_FAULT_FULL=1: 1,000) CCB_REQUESTs whose MyAddress is a black
 *   hole (a listening socket whose backlog 0 queue is full: the kernel drops
 *   further SYNs, so the connect neither succeeds nor fails), sent from 8
 *   (100) different loopback source addresses;
 * - 200 requests whose MyAddress accepts (kernel backlog) and never reads,
 *   from one more address;
 * while a legitimate requester on 127.0.0.1 keeps dialing the listener:
 * every legitimate dial must succeed. The black holes are all in flight at
 * once without a thread each (the listener's thread count stays within its
 * handler cap), fds stay bounded, and everything is released afterwards.
 * On the old code (one thread per reverse connect, 64 at most, each
 * holding for the 30 s dial timeout) the legitimate dials are refused with
 * "too many reverse connects in progress".
 * The broker's own per-requester-per-target cap is lifted here so that the
 * listener's defences are what is tested. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "fault.h"

#define HANDLERS 64

static struct {
	bkt_broker k;
	ccb_listener *l;
	char *contact;
	char ccbid[32];
	int fds0, thr0;
} G;

/* Echo, but give up on a silent requester after 1 s. */
static void short_echo(ccb_stream *conn, const ccb_listener_conn_info *info, void *user)
{
	int64_t v = 0;

	(void)info;
	(void)user;
	ccb_stream_set_timeout(conn, 1000);
	if (ccb_stream_get_int(conn, &v) == CCB_OK && ccb_stream_end_of_message(conn) == CCB_OK) {
		ccb_stream_put_int(conn, v + 1);
		ccb_stream_end_message(conn);
	}
	ccb_stream_free(conn);
}

static json_t *status(void)
{
	char *s = NULL;
	ccb_listener_status_json(G.l, &s, NULL);
	json_t *j = s ? json_loads(s, 0, NULL) : NULL;
	ccb_free(s);
	return j;
}

static long long status_int(const char *name)
{
	json_t *j = status();
	long long v = j ? (long long)json_integer_value(json_object_get(j, name)) : -1;
	json_decref(j);
	return v;
}

static int listen_on(const char *ip, int backlog, int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, ip, &a.sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, backlog) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/* A loopback black hole: listen(0) on 127.0.0.2 and fill the accept queue
 * until a connect stays pending. Fillers go to fill[] (closed by the
 * caller). Returns the listening fd. */
static int black_hole(int *port, int *fill, int *nfill, int maxfill)
{
	int lfd = listen_on("127.0.0.2", 0, port);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};

	inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
	*nfill = 0;
	while (lfd >= 0 && *nfill < maxfill) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		struct pollfd p = {.fd = fd, .events = POLLOUT};

		connect(fd, (struct sockaddr *)&a, sizeof a);
		fill[(*nfill)++] = fd;
		if (poll(&p, 1, 300) == 0)
			return lfd; /* this one hangs: the queue is full */
	}
	return -1;
}

/* A CCB_REQUEST sent to the broker from `src` (a loopback address), left
 * open for the broker's reply. */
static ccb_stream *attack(const char *src, const char *my_address, int n)
{
	struct sockaddr_in a = {.sin_family = AF_INET}, d = {.sin_family = AF_INET};
	ccb_sec_client_config sc = bkt_client("tool");
	ccb_sec_info info;
	ccb_classad *ad = NULL;
	ccb_stream *s = NULL;
	char cid[32];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(cid, sizeof cid, "attack-%d", n);
	inet_pton(AF_INET, src, &a.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &d.sin_addr);
	d.sin_port = htons((uint16_t)G.k.port);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
	    connect(fd, (struct sockaddr *)&d, sizeof d) || ccb_stream_new(fd, &s, NULL)) {
		if (fd >= 0 && !s)
			close(fd);
		return NULL;
	}
	ccb_stream_set_timeout(s, 30000);
	{
		ccb_ad_field f[] = {CCB_AD_STRING(CCB_ATTR_CCBID, G.ccbid),
				    CCB_AD_STRING(CCB_ATTR_CLAIM_ID, cid),
				    CCB_AD_STRING(CCB_ATTR_MY_ADDRESS, my_address),
				    CCB_AD_STRING(CCB_ATTR_NAME, "ATTACK")};
		if (ccb_sec_client_start(s, &sc, CCB_CMD_CCB_REQUEST, 0, NULL, &info, NULL) ||
		    ccb_ad_new(f, CCB_AD_NFIELDS(f), &ad, NULL) ||
		    ccb_control_ad_write(s, ad, CCB_VERSION_NUM(25, 14, 0), NULL)) {
			ccb_classad_free(ad);
			ccb_stream_free(s);
			return NULL;
		}
	}
	ccb_classad_free(ad);
	return s;
}

static void test_setup(void)
{
	ccb_broker_config cfg;
	ccb_listener_config c = ft_listener_config();
	static char addr[64];
	struct rlimit rl;
	const char *h;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	G.fds0 = ccbt_count_fds();
	G.thr0 = ft_count_threads();
	bkt_config(&cfg, &G.k.sec);
	cfg.max_requests_per_requester_target = 1000000;
	cfg.request_timeout_ms = 30000;
	bkt_start(&G.k, &cfg);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", G.k.port);
	c.broker = addr;
	c.handler = short_echo;
	c.dial_timeout_ms = 0; /* the default 30 s */
	c.max_reverse_connects = HANDLERS;
	/* Longer than the default 5 s so that every black hole is still in
	 * flight while the legitimate dials run, however slowly the attack
	 * requests go out. */
	c.reverse_connect_timeout_ms = 10000;
	G.l = ft_listener_start(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(G.l);
	CU_ASSERT_EQUAL_FATAL(ccb_listener_wait_registered(G.l, 1, 10000, NULL), CCB_OK);
	ccb_listener_contact_list(G.l, &G.contact, NULL);
	h = G.contact ? strrchr(G.contact, '#') : NULL;
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	snprintf(G.ccbid, sizeof G.ccbid, "%s", h + 1);
}

static void test_flood(void)
{
	bool full = ft_full();
	int nbh = full ? 1000 : 64, nsrc = full ? 100 : 8, nnr = 200;
	int bh_port = 0, nr_port = 0, nfill = 0, fill[16], bh_fd, nr_fd, fds1, thr1;
	int sent = 0, ok = 0, failed = 0, max_thr = 0, max_fds = 0, answered = 0;
	ccb_stream **att = calloc((size_t)(nbh + nnr), sizeof *att);
	char bh_addr[64], nr_addr[64], last_err[CCB_ERROR_DETAIL_SIZE] = "";
	const char *ct[1] = {G.contact};
	int64_t until;

	CU_ASSERT_PTR_NOT_NULL_FATAL(att);
	fds1 = ccbt_count_fds();
	thr1 = ft_count_threads();
	bh_fd = black_hole(&bh_port, fill, &nfill, 16);
	nr_fd = listen_on("127.0.0.3", 1024, &nr_port);
	CU_ASSERT_FATAL(bh_fd >= 0 && nr_fd >= 0);
	snprintf(bh_addr, sizeof bh_addr, "<127.0.0.2:%d>", bh_port);
	snprintf(nr_addr, sizeof nr_addr, "<127.0.0.3:%d>", nr_port);

	/* A legitimate dial works before. */
	CU_ASSERT_EQUAL(ft_dial_echo(ct, 1, 10000, false, NULL, NULL), CCB_OK);

	for (int i = 0; i < nbh; i++) {
		char src[32];
		snprintf(src, sizeof src, "127.0.0.%d", 10 + i % nsrc);
		if ((att[i] = attack(src, bh_addr, i)))
			sent++;
	}
	for (int i = 0; i < nnr; i++)
		if ((att[nbh + i] = attack("127.0.0.4", nr_addr, nbh + i)))
			sent++;
	CU_ASSERT_EQUAL(sent, nbh + nnr);

	/* The black holes are within their connect deadline: legitimate
	 * dials go through meanwhile. */
	until = ccb_now_ms() + (full ? 4000 : 3000);
	while (ccb_now_ms() < until) {
		ccb_error err = {0};
		int t = ft_count_threads(), f = ccbt_count_fds();

		if (ft_dial_echo(ct, 1, 10000, false, NULL, &err) == CCB_OK) {
			ok++;
		} else {
			failed++;
			snprintf(last_err, sizeof last_err, "%s", err.detail);
		}
		if (t > max_thr)
			max_thr = t;
		if (f > max_fds)
			max_fds = f;
		usleep(50000); /* deliberate: a legitimate client's pace while the window lasts */
	}
	fprintf(stderr,
		"legitimate dials: %d ok, %d failed%s%s; pending peak %lld, refused %lld; threads "
		"max %d (base %d), fds max %d (base %d)\n",
		ok, failed, failed ? ", last: " : "", last_err,
		status_int("reverse_connects_pending_peak"), status_int("reverse_connects_refused"),
		max_thr, thr1, max_fds, fds1);
	CU_ASSERT(ok > 0);
	CU_ASSERT_EQUAL(failed, 0);
	/* Every black hole was in flight at once, none on a thread of its own:
	 * threads stay within the handler cap. */
	CU_ASSERT(status_int("reverse_connects_pending_peak") >= nbh);
	CU_ASSERT(max_thr <= thr1 + HANDLERS + 2);
	/* fds: per attack request one here and one in the broker, one
	 * reverse connect socket, plus handlers and the legitimate dial. */
	CU_ASSERT(max_fds <= fds1 + 3 * (nbh + nnr) + HANDLERS + 64);

	/* Every attack request is answered by the broker (the black holes
	 * after the listener's connect deadline, with a failure). */
	for (int i = 0; i < nbh + nnr; i++) {
		bool r = true;
		char text[256];
		if (att[i] && bkt_reply(att[i], &r, text, sizeof text) == CCB_OK) {
			answered++;
			if (i < nbh)
				CU_ASSERT_FALSE(r);
		}
		ccb_stream_free(att[i]);
	}
	free(att);
	CU_ASSERT(answered >= nbh);
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	close(bh_fd);
	close(nr_fd);
	/* And still served afterwards. */
	CU_ASSERT_EQUAL(ft_dial_echo(ct, 1, 10000, false, NULL, NULL), CCB_OK);
	/* Everything released: fds and threads back where they were. */
	CU_ASSERT(ft_settle(fds1, thr1, 20000));
	CU_ASSERT_EQUAL(status_int("reverse_connects_pending"), 0);
	CU_ASSERT_EQUAL(status_int("handlers_running"), 0);
}

/* A requester over its per-requester cap is refused at once with a failure
 * report; others are not affected. */
static void test_per_requester_cap(void)
{
	int bh_port = 0, nfill = 0, fill[16], bh_fd, n = 40, refused = 0;
	ccb_stream *att[40];
	char bh_addr[64];
	const char *ct[1] = {G.contact};

	bh_fd = black_hole(&bh_port, fill, &nfill, 16);
	CU_ASSERT_FATAL(bh_fd >= 0);
	snprintf(bh_addr, sizeof bh_addr, "<127.0.0.2:%d>", bh_port);
	for (int i = 0; i < n; i++)
		att[i] = attack("127.0.0.5", bh_addr, 100000 + i);
	CU_ASSERT_EQUAL(ft_dial_echo(ct, 1, 10000, false, NULL, NULL), CCB_OK);
	/* The first 16 wait for their connect deadline; the rest are refused
	 * by the listener right away. */
	for (int i = 0; i < n; i++) {
		bool r = true;
		char text[256] = "";
		if (att[i] && bkt_reply(att[i], &r, text, sizeof text) == CCB_OK && !r &&
		    strstr(text, "too many reverse connects in progress for requester 127.0.0.5"))
			refused++;
	}
	for (int i = 0; i < n; i++)
		ccb_stream_free(att[i]);
	CU_ASSERT_EQUAL(refused, n - 16);
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	close(bh_fd);
}

static void test_teardown(void)
{
	ccb_listener_free(G.l);
	ccb_free(G.contact);
	bkt_stop(&G.k);
	CU_ASSERT(ft_settle(G.fds0, G.thr0, 10000));
}

static const ccbt_test tests[] = {
	{"setup: broker and listener", test_setup},
	{"black holes and silent requesters vs legitimate dials", test_flood},
	{"per-requester cap on pending reverse connects", test_per_requester_cap},
	{"teardown: everything released", test_teardown},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"fault reverse-connect flood", tests}, {NULL, NULL}};

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return ccbt_run(suites);
}

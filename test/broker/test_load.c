/* The broker under load and abuse: 1,000 registrations + 1,000 requests all
 * accounted for; the connection limit refuses cleanly and keeps every
 * registration; silent, slow-loris, garbage and oversized peers are closed
 * while a legitimate listener keeps being served. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <errno.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "bktest.h"

#define NREG 1000
#define NTHREADS 4

typedef struct part {
	int port;
	int first, n;
	bkt_listener *ls;
	int ok;
} part;

static void *reg_part(void *arg)
{
	part *p = arg;
	for (int i = p->first; i < p->first + p->n; i++)
		if (bkt_register(p->port, "condor", NULL, NULL, &p->ls[i]) == CCB_OK)
			p->ok++;
	return NULL;
}

static void *req_part(void *arg)
{
	part *p = arg;
	for (int i = p->first; i < p->first + p->n; i++) {
		ccb_stream *rq = NULL;
		ccb_classad *fwd = NULL;
		char ccbid[24], cid[CCB_CONNECT_ID_SIZE], text[256];
		const char *v;
		bool ok = false;

		snprintf(ccbid, sizeof ccbid, "%" PRIu64, p->ls[i].id);
		ccb_connect_id_new(cid, NULL);
		if (bkt_request(p->port, ccbid, "<127.0.0.1:9>", cid, false, &rq))
			continue;
		if (ccb_control_ad_read(p->ls[i].s, &fwd, NULL) == CCB_OK &&
		    ccb_classad_get_string(fwd, CCB_ATTR_CLAIM_ID, &v) == CCB_OK && !strcmp(v, cid) &&
		    bkt_result(&p->ls[i], fwd, true, NULL) == CCB_OK &&
		    bkt_reply(rq, &ok, text, sizeof text) == CCB_OK && ok)
			p->ok++;
		ccb_classad_free(fwd);
		ccb_stream_free(rq);
	}
	return NULL;
}

static void test_thousand(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	static bkt_listener ls[NREG];
	part parts[NTHREADS];
	pthread_t t[NTHREADS];
	int fds0, regs = 0, reqs = 0;
	char *s;

	bkt_config(&cfg, &k.sec);
	cfg.handshake_workers = 2;
	cfg.status_detail_max = 100;
	bkt_start(&k, &cfg); /* raises RLIMIT_NOFILE for the whole process */
	fds0 = ccbt_count_fds();
	for (int i = 0; i < NTHREADS; i++) {
		parts[i] = (part){.port = k.port, .first = i * (NREG / NTHREADS), .n = NREG / NTHREADS, .ls = ls};
		pthread_create(&t[i], NULL, reg_part, &parts[i]);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		regs += parts[i].ok;
	}
	CU_ASSERT_EQUAL(regs, NREG);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBEndpointsConnected"), NREG);
	/* Every CCBID distinct. */
	{
		static char seen[NREG + 1];
		int dup = 0;
		for (int i = 0; i < NREG; i++) {
			if (ls[i].id < 1 || ls[i].id > NREG || seen[ls[i].id]++)
				dup++;
		}
		CU_ASSERT_EQUAL(dup, 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		parts[i].ok = 0;
		pthread_create(&t[i], NULL, req_part, &parts[i]);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		reqs += parts[i].ok;
	}
	CU_ASSERT_EQUAL(reqs, NREG);
	CU_ASSERT(bkt_wait_stat(k.b, "CCBRequestsSucceeded", NREG));
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBRequests"), NREG);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBRequestsFailed"), 0);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "PendingRequests"), 0);
	/* Big tables are summarised. */
	s = ccb_broker_status_json(k.b, false);
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"registrations_truncated\":true"));
	free(s);
	for (int i = 0; i < NREG; i++)
		bkt_listener_close(&ls[i]);
	CU_ASSERT(bkt_wait_stat(k.b, "CCBEndpointsConnected", 0));
	CU_ASSERT(bkt_wait_stat(k.b, "Connections", 0));
	CU_ASSERT_EQUAL(ccbt_count_fds(), fds0);
	bkt_stop(&k);
}

static int raw_connect(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Whether the broker closes `fd` within `ms` (poll, so that it works on the
 * non-blocking sockets of a ccb_stream too). */
static bool closed_within(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;

	for (;;) {
		if (poll(&p, 1, ms) <= 0)
			return false;
		ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return true;
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			return false;
	}
}

static void test_connection_limit(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener l[3];
	int idle[2], extra;

	bkt_config(&cfg, &k.sec);
	cfg.max_connections = 5;
	bkt_start(&k, &cfg);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &l[i]), CCB_OK);
	/* Two more fill the table (they wait for their first bytes). */
	idle[0] = raw_connect(k.port);
	idle[1] = raw_connect(k.port);
	CU_ASSERT(bkt_wait_stat(k.b, "Connections", 5));
	/* The next one is accepted and closed at once. */
	extra = raw_connect(k.port);
	CU_ASSERT(closed_within(extra, 3000));
	close(extra);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "ConnectionsRefused"), 1);
	for (int i = 0; i < 3; i++)
		CU_ASSERT(bkt_heartbeat(&l[i]));
	/* Room again once one goes. */
	close(idle[0]);
	close(idle[1]);
	CU_ASSERT(bkt_wait_stat(k.b, "Connections", 3));
	{
		bkt_listener l4;
		CU_ASSERT_EQUAL(bkt_register(k.port, "condor", NULL, NULL, &l4), CCB_OK);
		bkt_listener_close(&l4);
	}
	for (int i = 0; i < 3; i++)
		bkt_listener_close(&l[i]);
	bkt_stop(&k);
}

/* Out of file descriptors (a low RLIMIT_NOFILE in a child process):
 * refused cleanly, every registration kept. */
static void test_fd_exhaustion(void)
{
	pid_t pid;
	int st = -1;

	/* valgrind keeps descriptors of its own near the limit this lowers. */
	if (getenv("CCBT_UNDER_VALGRIND")) {
		fprintf(stderr, "skipped under valgrind ");
		return;
	}
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = {.rlim_cur = 40, .rlim_max = 40};
		ccb_broker_config cfg;
		ccb_sec_server_config sec;
		ccb_broker *b = NULL;
		bkt_broker k = {0};
		bkt_listener l[6];
		int held[64], nheld = 0, bad = 0;

		setrlimit(RLIMIT_NOFILE, &rl);
		bkt_config(&cfg, &sec);
		if (ccb_broker_new(&cfg, &b, NULL))
			_exit(10);
		k.b = b;
		k.port = ccb_broker_port(b, 0);
		pthread_create(&k.t, NULL, bkt_run, &k);
		for (int i = 0; i < 6; i++)
			if (bkt_register(k.port, "condor", NULL, NULL, &l[i]))
				_exit(11);
		/* Each registration costs 2 fds here (both ends in this
		 * process); open raw connections until connects fail or the
		 * broker starts refusing. */
		while (nheld < 64) {
			int fd = raw_connect(k.port);
			if (fd < 0)
				break;
			held[nheld++] = fd;
		}
		usleep(300 * 1000);
		for (int i = 0; i < 6; i++)
			if (!bkt_heartbeat(&l[i]))
				bad++;
		if (bkt_stat(b, "ConnectionsRefused") < 1)
			bad += 100;
		for (int i = 0; i < nheld; i++)
			close(held[i]);
		for (int i = 0; i < 6; i++)
			bkt_listener_close(&l[i]);
		ccb_broker_stop(b);
		pthread_join(k.t, NULL);
		ccb_broker_free(b);
		_exit(bad >= 100 ? 13 : bad ? 12 : 0);
	}
	waitpid(pid, &st, 0);
	CU_ASSERT(WIFEXITED(st));
	CU_ASSERT_EQUAL(WEXITSTATUS(st), 0);
}

/* Peers that trickle their first message do not hold the handshake
 * workers: with one worker and four slow-loris peers still connected (their
 * deadline far away), a listener registers at once. */
static void test_slow_first_message_holds_no_worker(void)
{
	static const uint8_t first_part[] = {1, 0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0xea, 0x6a};
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener good;
	int loris[4];

	bkt_config(&cfg, &k.sec);
	cfg.handshake_workers = 1;
	cfg.handshake_timeout_ms = 30000;
	bkt_start(&k, &cfg);
	for (int i = 0; i < 4; i++) {
		loris[i] = raw_connect(k.port);
		CU_ASSERT(send(loris[i], first_part, sizeof first_part, 0) == sizeof first_part);
	}
	usleep(100 * 1000);
	CU_ASSERT_EQUAL(bkt_register(k.port, "condor", NULL, NULL, &good), CCB_OK);
	CU_ASSERT(bkt_heartbeat(&good));
	/* The slow peers are still there: the registration did not wait them out. */
	for (int i = 0; i < 4; i++)
		CU_ASSERT_FALSE(closed_within(loris[i], 0));
	bkt_listener_close(&good);
	for (int i = 0; i < 4; i++)
		close(loris[i]);
	bkt_stop(&k);
}

/* Abusive peers are closed; a legitimate listener keeps being served. */
static void test_bad_peers(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener good, loris, big;
	int silent, garbage;

	bkt_config(&cfg, &k.sec);
	cfg.handshake_timeout_ms = 400;
	bkt_start(&k, &cfg);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &good), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &loris), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &big), CCB_OK);
	silent = raw_connect(k.port);
	garbage = raw_connect(k.port);
	CU_ASSERT(send(garbage, "GET / HTTP/1.0\r\n\r\n", 18, 0) == 18);
	/* Half a frame on a registration socket, then nothing. */
	{
		static const uint8_t part_hdr[] = {1, 0, 0, 0, 50, 'x', 'y'};
		CU_ASSERT(send(ccb_stream_fd(loris.s), part_hdr, sizeof part_hdr, 0) == sizeof part_hdr);
	}
	/* A frame header announcing more than the message cap. */
	{
		static const uint8_t huge[] = {1, 0, 0x0f, 0, 0};
		CU_ASSERT(send(ccb_stream_fd(big.s), huge, sizeof huge, 0) == sizeof huge);
	}
	CU_ASSERT(closed_within(garbage, 3000));
	CU_ASSERT(closed_within(ccb_stream_fd(big.s), 3000));
	for (int i = 0; i < 3; i++) {
		CU_ASSERT(bkt_heartbeat(&good));
		usleep(100 * 1000);
	}
	CU_ASSERT(closed_within(silent, 3000));
	CU_ASSERT(closed_within(ccb_stream_fd(loris.s), 3000));
	CU_ASSERT(bkt_heartbeat(&good));
	CU_ASSERT(bkt_wait_stat(k.b, "CCBEndpointsConnected", 1));
	CU_ASSERT(bkt_stat(k.b, "BadInputClosed") >= 3);
	close(silent);
	close(garbage);
	bkt_listener_close(&loris);
	bkt_listener_close(&big);
	bkt_listener_close(&good);
	bkt_stop(&k);
}

/* Registrations silent past the window are dropped. */
static void test_idle_target(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener a, b2;

	bkt_config(&cfg, &k.sec);
	cfg.target_idle_timeout_ms = 500;
	bkt_start(&k, &cfg);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &a), CCB_OK);
	CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &b2), CCB_OK);
	for (int i = 0; i < 8; i++) {
		CU_ASSERT(bkt_heartbeat(&a));
		usleep(100 * 1000);
	}
	CU_ASSERT(closed_within(ccb_stream_fd(b2.s), 3000));
	CU_ASSERT(bkt_heartbeat(&a));
	CU_ASSERT_EQUAL(bkt_stat(k.b, "TargetsIdleDropped"), 1);
	bkt_listener_close(&a);
	bkt_listener_close(&b2);
	bkt_stop(&k);
}

static const ccbt_test tests[] = {
	{"1,000 registrations and 1,000 requests", test_thousand},
	{"connection limit", test_connection_limit},
	{"out of file descriptors", test_fd_exhaustion},
	{"silent, slow-loris, garbage and oversized peers", test_bad_peers},
	{"slow first messages hold no handshake worker", test_slow_first_message_holds_no_worker},
	{"idle registrations dropped", test_idle_target},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"broker load", tests}, {NULL, NULL}};

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return ccbt_run(suites);
}

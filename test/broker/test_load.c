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
#include <fcntl.h>
#include <stdatomic.h>

#include "bktest.h"
#include "ccb/log.h"
#include "broker_internal.h"

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
	ccb_broker_status_json(k.b, false, &s, NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"registrations_truncated\":true"));
	ccb_free(s);
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

/* At the connection limit the broker keeps a small reserve for status and
 * admin commands: a status query still works, a registration is refused
 * (closed before the handshake answers), every held registration stays,
 * and once the reserve is full too a connection is closed at once. */
static void test_connection_limit(void)
{
	ccb_broker_config cfg;
	bkt_broker k = {0};
	bkt_listener l[3], extra_reg;
	ccb_sec_client_config sc = bkt_client("tool");
	int idle[2], reserve[16], nres = 0, extra;
	char addr[64], *json = NULL;
	ccb_error err = {0};
	long long admin;

	bkt_config(&cfg, &k.sec);
	cfg.max_connections = 5;
	bkt_start(&k, &cfg);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL_FATAL(bkt_register(k.port, "condor", NULL, NULL, &l[i]), CCB_OK);
	/* Two more fill the table (they wait for their first bytes). */
	idle[0] = raw_connect(k.port);
	idle[1] = raw_connect(k.port);
	CU_ASSERT(bkt_wait_stat(k.b, "Connections", 5));

	/* Full: status still answers, and says so. */
	snprintf(addr, sizeof addr, "127.0.0.1:%d", k.port);
	CU_ASSERT_EQUAL(ccb_broker_query_status(addr, &sc, 5000, &json, &err), CCB_OK);
	{
		json_t *o = json_loads(json ? json : "", 0, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(o);
		CU_ASSERT(json_is_true(json_object_get(json_object_get(o, "limits"), "at_connection_limit")));
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(o, "stats"),
								   "CCBEndpointsConnected")), 3);
		json_decref(o);
	}
	ccb_free(json);
	admin = bkt_stat(k.b, "AdminConnectionsOverLimit");
	CU_ASSERT_EQUAL(admin, 1);
	/* A registration is refused cleanly and counted. */
	CU_ASSERT_NOT_EQUAL(bkt_register(k.port, "condor", NULL, NULL, &extra_reg), CCB_OK);
	CU_ASSERT(bkt_wait_stat(k.b, "ConnectionsRefusedAtLimit", 1));
	CU_ASSERT_EQUAL(bkt_stat(k.b, "ConnectionsRefused"), 1);
	CU_ASSERT_EQUAL(bkt_stat(k.b, "CCBEndpointsConnected"), 3);

	/* Fill the reserve with silent peers: the next one is closed at once. */
	CU_ASSERT(bkt_wait_stat(k.b, "Connections", 5));
	while (nres < 8) {
		reserve[nres] = raw_connect(k.port);
		nres++;
		if (!bkt_wait_stat(k.b, "Connections", 5 + nres))
			break;
	}
	CU_ASSERT_EQUAL(bkt_stat(k.b, "Connections"), 5 + 8);
	/* Reserve in use too: the status query fails, and says why it may. */
	json = NULL;
	CU_ASSERT_NOT_EQUAL(ccb_broker_query_status(addr, &sc, 5000, &json, &err), CCB_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "connection limit"));
	ccb_free(json);
	CU_ASSERT(bkt_wait_stat(k.b, "ConnectionsRefusedAtLimit", 2));
	extra = raw_connect(k.port);
	CU_ASSERT(closed_within(extra, 3000));
	close(extra);
	CU_ASSERT(bkt_wait_stat(k.b, "ConnectionsRefusedAtLimit", 3));
	for (int i = 0; i < 3; i++)
		CU_ASSERT(bkt_heartbeat(&l[i]));
	/* Room again once the idle ones go. */
	for (int i = 0; i < nres; i++)
		close(reserve[i]);
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

/* ---- out of descriptors: refusals at full speed, counted once, logged
 * at most once per 10 s ------------------------------------------------------ */

static atomic_int emfile_warnings;

static void count_log(ccb_log_level level, const char *msg, void *user)
{
	(void)user;
	if (level == CCB_LOG_WARNING && strstr(msg, "out of file descriptors"))
		atomic_fetch_add(&emfile_warnings, 1);
}

/* The highest descriptor open in this process. */
static int max_open_fd(void)
{
	int mx = 2;
	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			mx = fd;
	return mx;
}

#define EMFILE_PEERS 60

/* The broker runs in a child whose descriptor limit is lowered after the
 * broker sized its connection limit from a higher one, so accept() meets
 * EMFILE for real; the peers are in the parent (its own descriptor table).
 * Each connection, made one after the other, must be closed promptly (the
 * old path paused accepting until the next 1 s loop tick after each), be
 * counted once, and the warning must not repeat per refusal. */
static void test_emfile_fast_refusal(void)
{
	int up[2], down[2], port = 0, st = -1, closed = 0;
	bkt_listener l[2];
	pid_t pid;
	char c = 0;
	long long res[2] = {-1, -1};

	if (getenv("CCBT_UNDER_VALGRIND")) {
		fprintf(stderr, "skipped under valgrind ");
		return;
	}
	CU_ASSERT_FATAL(pipe(up) == 0 && pipe(down) == 0);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		ccb_broker_config cfg;
		bkt_broker k = {0};
		struct rlimit rl;

		close(up[0]);
		close(down[1]);
		ccb_set_log_handler(count_log, CCB_LOG_WARNING, NULL);
		bkt_config(&cfg, &k.sec);
		cfg.handshake_workers = 1;
		if (ccb_broker_new(&cfg, &k.b, NULL))
			_exit(10);
		k.port = ccb_broker_port(k.b, 0);
		pthread_create(&k.t, NULL, bkt_run, &k);
		if (write(up[1], &k.port, sizeof k.port) != sizeof k.port)
			_exit(11);
		/* The parent registers two listeners, then: no more fds. */
		if (read(down[0], &c, 1) != 1)
			_exit(12);
		rl.rlim_cur = rl.rlim_max = (rlim_t)max_open_fd() + 1;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			_exit(13);
		/* Fill the holes below the limit too. */
		while (open("/dev/null", O_RDONLY | O_CLOEXEC) >= 0)
			;
		if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1)
			_exit(14);
		res[0] = bkt_stat(k.b, "ConnectionsRefusedNoFd");
		res[1] = atomic_load(&emfile_warnings);
		if (write(up[1], res, sizeof res) != sizeof res)
			_exit(15);
		ccb_broker_stop(k.b);
		pthread_join(k.t, NULL);
		ccb_broker_free(k.b);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	CU_ASSERT_FATAL(read(up[0], &port, sizeof port) == sizeof port);
	for (int i = 0; i < 2; i++)
		CU_ASSERT_EQUAL_FATAL(bkt_register(port, "condor", NULL, NULL, &l[i]), CCB_OK);
	CU_ASSERT_FATAL(write(down[1], &c, 1) == 1 && read(up[0], &c, 1) == 1);
	{
		int64_t t0 = ccb_now_ms();
		for (int i = 0; i < EMFILE_PEERS; i++) {
			int fd = raw_connect(port);
			if (fd >= 0 && closed_within(fd, 3000))
				closed++;
			if (fd >= 0)
				close(fd);
			/* A paused accept costs ~1 s per peer: stop early rather
			 * than run a minute. */
			if (ccb_now_ms() - t0 > 20000)
				break;
		}
	}
	CU_ASSERT_EQUAL(closed, EMFILE_PEERS);
	for (int i = 0; i < 2; i++)
		CU_ASSERT(bkt_heartbeat(&l[i]));
	CU_ASSERT_FATAL(write(down[1], &c, 1) == 1);
	CU_ASSERT(read(up[0], res, sizeof res) == sizeof res);
	/* Each refusal counted once; the warning at most once per 10 s. */
	CU_ASSERT_EQUAL(res[0], closed);
	CU_ASSERT(res[1] >= 1 && res[1] <= 3);
	for (int i = 0; i < 2; i++)
		bkt_listener_close(&l[i]);
	waitpid(pid, &st, 0);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(up[0]);
	close(down[1]);
}

/* Out of file descriptors (a low RLIMIT_NOFILE in a child process):
 * every registration kept, and new ones served again once descriptors are
 * free. */
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
		/* deliberate: time passes with the broker at its fd limit
		 * (accepts paused and resumed every 100 ms); its registrations
		 * must still be served afterwards. */
		usleep(300 * 1000);
		for (int i = 0; i < 6; i++)
			if (!bkt_heartbeat(&l[i]))
				bad++;
		/* Broker and peers share this process's descriptors, so which
		 * side runs out first varies: refusals are counted by
		 * test_emfile_fast_refusal, where they do not. Here: every
		 * registration kept, and service again once descriptors free up. */
		for (int i = 0; i < nheld; i++)
			close(held[i]);
		{
			bkt_listener again;
			bool ok = false;
			for (int t = 0; t < 50 && !ok; t++) {
				ok = bkt_register(k.port, "condor", NULL, NULL, &again) == CCB_OK;
				if (ok)
					bkt_listener_close(&again);
				else
					usleep(100 * 1000);
			}
			if (!ok)
				bad += 100;
		}
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
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		fprintf(stderr, "child status %d ", st);
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
	/* The broker holds the slow peers (accepted, their first message
	 * half-sent) before a good one registers: they must not block it. */
	CU_ASSERT(bkt_wait_stat(k.b, "ConnectionsAccepted", 4));
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
		usleep(100 * 1000); /* deliberate: time passes for the timeouts under test */
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
		usleep(100 * 1000); /* deliberate: time passes for the idle timeout under test */
	}
	CU_ASSERT(closed_within(ccb_stream_fd(b2.s), 3000));
	CU_ASSERT(bkt_heartbeat(&a));
	CU_ASSERT_EQUAL(bkt_stat(k.b, "TargetsIdleDropped"), 1);
	bkt_listener_close(&a);
	bkt_listener_close(&b2);
	bkt_stop(&k);
}

/* The broker's id map (open addressing, backward-shift deletion) against a
 * plain array, with keys that collide and wrap around the table. */
static void test_id_map(void)
{
	enum { K = 5000, OPS = 200000 };
	static void *shadow[K];
	bk_map m = {0};
	size_t n = 0, bucket = 0, seen = 0;
	bk_mnode *node = NULL;
	unsigned x = 12345;

	memset(shadow, 0, sizeof shadow);
	for (int op = 0; op < OPS; op++) {
		uint64_t key;
		x = x * 1103515245u + 12345u;
		key = (x >> 8) % K;
		/* Multiples of 1<<20 apart: same low bits, long probe runs. */
		if (key % 3 == 0)
			key = (key << 20) % ((uint64_t)K << 20) / K * K;
		key %= K;
		if ((x >> 4) & 1) {
			void *v = (void *)(uintptr_t)(op + 1);
			if (!shadow[key])
				n++;
			shadow[key] = v;
			CU_ASSERT_FATAL(bk_map_put(&m, key, v));
		} else {
			void *got = bk_map_del(&m, key);
			CU_ASSERT_PTR_EQUAL_FATAL(got, shadow[key]);
			if (shadow[key])
				n--;
			shadow[key] = NULL;
		}
		if (op % 1000 == 0)
			for (uint64_t k = 0; k < K; k++)
				CU_ASSERT_PTR_EQUAL_FATAL(bk_map_get(&m, k), shadow[k]);
	}
	CU_ASSERT_EQUAL(m.n, n);
	while (bk_map_next(&m, &bucket, &node))
		seen++;
	CU_ASSERT_EQUAL(seen, n);
	bk_map_free(&m);
}

static const ccbt_test tests[] = {
	{"id map against an array", test_id_map},
	{"1,000 registrations and 1,000 requests", test_thousand},
	{"connection limit", test_connection_limit},
	{"out of file descriptors", test_fd_exhaustion},
	{"out of file descriptors: fast refusals, counted once, rate-limited warning",
	 test_emfile_fast_refusal},
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

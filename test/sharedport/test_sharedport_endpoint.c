/*
 * Shared port: the endpoint's receiving rules, timeouts and shutdown; the
 * server's default id, abstract names, stop and concurrency. Real sockets
 * on 127.0.0.1 and in a temp directory only.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "cedar/codec.h"
#include "sharedport/sharedport_internal.h"
#include "sptest.h"

/* int 76, EOM: what condor_shared_port writes first (sp §5 step 3). */
#define PASS_SOCK_HEX "01 00000008 000000000000004c"

static ccb_sharedport_endpoint *endpoint_in(const char *dir, const char *id)
{
	ccb_sharedport_endpoint_config cfg = {0};
	ccb_sharedport_endpoint *ep = NULL;
	ccb_error e;

	cfg.socket_dir = dir;
	cfg.id = id;
	cfg.handoff_timeout_ms = 500;
	CU_ASSERT_FATAL(ccb_sharedport_endpoint_new(&cfg, &ep, &e) == CCB_OK);
	return ep;
}

/* Pass `fd` to the endpoint as condor_shared_port would. */
static ccb_err pass(const char *dir, const char *id, int fd)
{
	ccb_error e;

	return sharedport__pass_fd(dir, NULL, id, fd, ccb_deadline_in(2000), -1, &e);
}

static void test_accept_timeout(void)
{
	int before = ccbt_count_fds();
	char dir[64];
	ccb_sharedport_endpoint *ep;
	int64_t t0;
	int fd;
	ccb_error e;

	sp_mkdir(dir);
	ep = endpoint_in(dir, NULL);
	t0 = ccb_now_ms();
	CU_ASSERT_EQUAL(ccb_sharedport_endpoint_accept_fd(ep, ccb_deadline_in(200), &fd, &e),
			CCB_ERR_TIMEOUT);
	CU_ASSERT(ccb_now_ms() - t0 >= 150 && ccb_now_ms() - t0 < 2000);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, ccb_sharedport_endpoint_id(ep)));
	ccb_sharedport_endpoint_free(ep);
	CU_ASSERT_EQUAL(sp_rmdir(dir), 0);
	CU_ASSERT_EQUAL(ccbt_count_fds(), before);
}

static void test_shutdown_unblocks(void)
{
	int before = ccbt_count_fds();
	char dir[64];
	sp_bg acc = {0};
	int ufd;

	sp_mkdir(dir);
	acc.ep = endpoint_in(dir, "waiter");
	/* Waiting for a connection. */
	acc.deadline = ccb_deadline_in(10000);
	sp_start(&acc, sp_accept_main);
	sp_sleep_ms(100);
	ccb_sharedport_endpoint_shutdown(acc.ep);
	sp_join(&acc);
	CU_ASSERT_EQUAL(acc.rc, CCB_ERR_CANCELLED);
	CU_ASSERT(acc.took_ms < 2000);
	ccb_sharedport_endpoint_free(acc.ep);

	/* Stuck in the middle of a hand-off whose sender went silent; only
	 * shutdown can end it before the 30 s hand-off timeout. */
	{
		ccb_sharedport_endpoint_config cfg = {0};
		ccb_error e;
		cfg.socket_dir = dir;
		cfg.id = "waiter2";
		cfg.handoff_timeout_ms = 30000;
		CU_ASSERT_FATAL(ccb_sharedport_endpoint_new(&cfg, &acc.ep, &e) == CCB_OK);
	}
	ufd = sp_unix_connect(ccb_sharedport_endpoint_path(acc.ep));
	sp_send_hex(ufd, "01 00000008 0000"); /* part of int 76 */
	acc.deadline = ccb_deadline_in(30000);
	sp_start(&acc, sp_accept_main);
	sp_sleep_ms(200);
	ccb_sharedport_endpoint_shutdown(acc.ep);
	sp_join(&acc);
	CU_ASSERT_EQUAL(acc.rc, CCB_ERR_CANCELLED);
	CU_ASSERT(acc.took_ms < 2000);
	close(ufd);
	ccb_sharedport_endpoint_free(acc.ep);
	CU_ASSERT_EQUAL(sp_rmdir(dir), 0);
	CU_ASSERT_EQUAL(ccbt_count_fds(), before);
}

/* Send one data byte carrying `fd` (or none when fd < 0). */
static void send_byte_with(int ufd, int fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	char byte = 0;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

	if (fd >= 0) {
		struct cmsghdr *cm;
		memset(&ctl, 0, sizeof ctl);
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_LEN(sizeof(int));
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	}
	CU_ASSERT_EQUAL(sendmsg(ufd, &msg, MSG_NOSIGNAL), 1);
}

static void test_bad_handoffs_rejected(void)
{
	int before = ccbt_count_fds();
	ccb_sharedport_endpoint_stats st;
	ccb_sharedport_endpoint *ep;
	char dir[64];
	int ufd, pfd[2], tcp[2], got = -1;
	uint8_t buf[8];
	ccb_error e;

	sp_mkdir(dir);
	ep = endpoint_in(dir, "picky");
	/* 1: wrong command (77). */
	ufd = sp_unix_connect(ccb_sharedport_endpoint_path(ep));
	sp_send_hex(ufd, "01 00000008 000000000000004d");
	close(ufd);
	/* 2: int 76 with extra bytes in the message. */
	ufd = sp_unix_connect(ccb_sharedport_endpoint_path(ep));
	sp_send_hex(ufd, "01 00000009 000000000000004c 00");
	close(ufd);
	/* 3: right message, byte without a descriptor. */
	ufd = sp_unix_connect(ccb_sharedport_endpoint_path(ep));
	sp_send_hex(ufd, PASS_SOCK_HEX);
	send_byte_with(ufd, -1);
	close(ufd);
	/* 4: a descriptor that is not a socket. */
	CU_ASSERT_FATAL(pipe(pfd) == 0);
	ufd = sp_unix_connect(ccb_sharedport_endpoint_path(ep));
	sp_send_hex(ufd, PASS_SOCK_HEX);
	send_byte_with(ufd, pfd[0]);
	close(ufd);
	close(pfd[0]);
	close(pfd[1]);
	/* 5: a sender that connects and says nothing (hand-off timeout 500 ms). */
	ufd = sp_unix_connect(ccb_sharedport_endpoint_path(ep));
	/* 6: finally a good one, through the sender code the server uses. */
	ccbt_tcp_pair(tcp);
	CU_ASSERT_EQUAL(pass(dir, "picky", tcp[1]), CCB_OK);
	close(tcp[1]);

	CU_ASSERT_EQUAL(ccb_sharedport_endpoint_accept_fd(ep, ccb_deadline_in(5000), &got, &e),
			CCB_OK);
	ccb_sharedport_endpoint_get_stats(ep, &st);
	CU_ASSERT_EQUAL(st.rejected, 5);
	CU_ASSERT_EQUAL(st.accepted, 1);
	/* The descriptor works, is blocking and close-on-exec. */
	CU_ASSERT(got >= 0 && !(fcntl(got, F_GETFL) & O_NONBLOCK));
	CU_ASSERT(fcntl(got, F_GETFD) & FD_CLOEXEC);
	CU_ASSERT_EQUAL(send(tcp[0], "ping", 4, 0), 4);
	CU_ASSERT_EQUAL(sp_read(got, buf, 4, 2000), 4u);
	CU_ASSERT(memcmp(buf, "ping", 4) == 0);
	CU_ASSERT_EQUAL(send(got, "pong", 4, 0), 4);
	CU_ASSERT_EQUAL(sp_read(tcp[0], buf, 4, 2000), 4u);
	CU_ASSERT(memcmp(buf, "pong", 4) == 0);
	close(got);
	close(tcp[0]);
	close(ufd);
	ccb_sharedport_endpoint_free(ep);
	CU_ASSERT_EQUAL(sp_rmdir(dir), 0);
	CU_ASSERT_EQUAL(ccbt_count_fds(), before);
}

static void test_exact_handoff_bytes(void)
{
	int before = ccbt_count_fds();
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[64];
	int lfd, ufd, tcp[2], got = -1;
	uint8_t buf[32];
	size_t glen;
	uint8_t *golden = ccbt_unhex(PASS_SOCK_HEX, &glen);
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	char byte = 1;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
			     .msg_controllen = sizeof ctl.b};

	/* A fake endpoint records what our sender writes (strace: 13 bytes,
	 * then sendmsg of one 00 byte with one SCM_RIGHTS fd, sp §5). */
	sp_mkdir(dir);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/fake", dir);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(lfd, 4) == 0);
	ccbt_tcp_pair(tcp);
	CU_ASSERT_EQUAL(pass(dir, "fake", tcp[1]), CCB_OK);
	ufd = accept(lfd, NULL, NULL);
	CU_ASSERT_EQUAL(sp_read(ufd, buf, 13, 2000), 13u);
	CU_ASSERT(memcmp(buf, golden, glen) == 0);
	CU_ASSERT_EQUAL(recvmsg(ufd, &msg, MSG_CMSG_CLOEXEC), 1);
	CU_ASSERT_EQUAL(byte, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(CMSG_FIRSTHDR(&msg));
	CU_ASSERT_EQUAL(CMSG_FIRSTHDR(&msg)->cmsg_type, SCM_RIGHTS);
	CU_ASSERT_EQUAL(CMSG_FIRSTHDR(&msg)->cmsg_len, CMSG_LEN(sizeof(int)));
	memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof got);
	/* Nothing else: no acknowledgement protocol, sender closed. */
	CU_ASSERT_EQUAL(sp_read(ufd, buf, sizeof buf, 200), 0u);
	close(got);
	close(ufd);
	close(lfd);
	close(tcp[0]);
	close(tcp[1]);
	free(golden);
	/* No listener: not found, with the path in the detail. */
	{
		ccb_error e;
		ccbt_tcp_pair(tcp);
		CU_ASSERT_EQUAL(sharedport__pass_fd(dir, NULL, "fake", tcp[1], ccb_deadline_in(1000),
						    -1, &e),
				CCB_ERR_NOT_FOUND);
		CU_ASSERT_PTR_NOT_NULL(strstr(e.detail, "/fake"));
		close(tcp[0]);
		close(tcp[1]);
	}
	sp_rmdir(dir);
	CU_ASSERT_EQUAL(ccbt_count_fds(), before);
}

static void test_stale_socket_replaced(void)
{
	int before = ccbt_count_fds();
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	ccb_sharedport_endpoint_config cfg = {0};
	ccb_sharedport_endpoint *ep;
	char dir[64];
	int fd;
	ccb_error e;

	sp_mkdir(dir);
	/* A socket file left behind by a dead process. */
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/collector", dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
	close(fd);
	ep = endpoint_in(dir, "collector");
	CU_ASSERT_STRING_EQUAL(ccb_sharedport_endpoint_id(ep), "collector");
	ccb_sharedport_endpoint_free(ep);
	/* A regular file of that name is never removed. */
	fd = open(sa.sun_path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	close(fd);
	cfg.socket_dir = dir;
	cfg.id = "collector";
	CU_ASSERT_EQUAL(ccb_sharedport_endpoint_new(&cfg, &ep, &e), CCB_ERR_STATE);
	CU_ASSERT_EQUAL(access(sa.sun_path, F_OK), 0);
	/* Bad configurations. */
	cfg.id = "no/slash";
	CU_ASSERT_EQUAL(ccb_sharedport_endpoint_new(&cfg, &ep, &e), CCB_ERR_INVALID_ARG);
	cfg.id = NULL;
	cfg.socket_dir = NULL;
	CU_ASSERT_EQUAL(ccb_sharedport_endpoint_new(&cfg, &ep, &e), CCB_ERR_INVALID_ARG);
	cfg.socket_dir = "/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	CU_ASSERT_EQUAL(ccb_sharedport_endpoint_new(&cfg, &ep, &e), CCB_ERR_INVALID_ARG);
	rmdir(cfg.socket_dir);
	CU_ASSERT_EQUAL(sp_rmdir(dir), 1);
	CU_ASSERT_EQUAL(ccbt_count_fds(), before);
}

static ccb_sharedport_server *server_for(const char *dir, const char *cookie,
					 const char *default_id, int request_ms)
{
	ccb_sharedport_server_config cfg = {0};
	ccb_sharedport_server *srv = NULL;
	ccb_error e;

	cfg.socket_dir = dir;
	cfg.cookie = cookie;
	cfg.default_id = default_id;
	cfg.request_timeout_ms = request_ms;
	CU_ASSERT_FATAL(ccb_sharedport_server_new(&cfg, &srv, &e) == CCB_OK);
	return srv;
}

static void test_default_id(void)
{
	int before = ccbt_count_fds();
	char dir[64];
	ccb_sharedport_endpoint *ep;
	ccb_sharedport_server *srv;
	sp_bg one = {0};
	uint8_t buf[16], *want;
	size_t wlen;
	int fd, got = -1;
	ccb_error e;

	/* A plain connection (here DC_NOP, 60011) reaches the default id with
	 * its first bytes unread (sp §3.2). */
	sp_mkdir(dir);
	ep = endpoint_in(dir, "collector");
	srv = server_for(dir, NULL, "collector", 2000);
	one.srv = srv;
	one.deadline = ccb_deadline_in(5000);
	sp_start(&one, sp_serve_one_main);
	fd = sp_tcp_connect(ccb_sharedport_server_port(srv));
	sp_send_hex(fd, "01 00000008 000000000000ea6b");
	CU_ASSERT_EQUAL(ccb_sharedport_endpoint_accept_fd(ep, ccb_deadline_in(5000), &got, &e),
			CCB_OK);
	sp_join(&one);
	CU_ASSERT_EQUAL(one.rc, CCB_OK);
	want = ccbt_unhex("01 00000008 000000000000ea6b", &wlen);
	CU_ASSERT_EQUAL(sp_read(got, buf, wlen, 2000), wlen);
	CU_ASSERT(memcmp(buf, want, wlen) == 0);
	free(want);
	close(got);
	close(fd);
	ccb_sharedport_server_free(srv);
	ccb_sharedport_endpoint_free(ep);
	CU_ASSERT_EQUAL(sp_rmdir(dir), 0);
	CU_ASSERT_EQUAL(ccbt_count_fds(), before);
}

#ifdef __linux__
static void test_abstract_names(void)
{
	int before = ccbt_count_fds();
	ccb_sharedport_endpoint_config cfg = {0};
	ccb_sharedport_endpoint *ep, *file_ep;
	ccb_sharedport_server *srv;
	char dir[64], cookie[65];
	uint8_t rnd[32];
	sp_bg run = {0};
	ccb_stream *client, *daemon;
	int64_t v = 0;
	ccb_error e;

	sp_mkdir(dir);
	ccb_random_bytes(rnd, sizeof rnd, NULL);
	ccb_hex_encode(rnd, sizeof rnd, cookie); /* 64 hex, like the master's */
	cfg.cookie = cookie;
	cfg.id = "master_1_abcd";
	CU_ASSERT_FATAL(ccb_sharedport_endpoint_new(&cfg, &ep, &e) == CCB_OK);
	CU_ASSERT_PTR_NULL(ccb_sharedport_endpoint_path(ep));
	file_ep = endpoint_in(dir, "filed");
	srv = server_for(dir, cookie, NULL, 2000);
	run.srv = srv;
	sp_start(&run, sp_run_main);
	/* Abstract endpoint, and a file endpoint reached by the fallback. */
	for (int i = 0; i < 2; i++) {
		ccb_sharedport_endpoint *target = i ? file_ep : ep;
		CU_ASSERT_FATAL(ccb_sharedport_dial("127.0.0.1", ccb_sharedport_server_port(srv),
						    ccb_sharedport_endpoint_id(target), NULL,
						    ccb_deadline_in(5000), &client, &e) == CCB_OK);
		CU_ASSERT_FATAL(ccb_sharedport_endpoint_accept(target, ccb_deadline_in(5000),
							       &daemon, &e) == CCB_OK);
		ccb_stream_put_int(client, 7 + i);
		ccb_stream_end_message(client);
		CU_ASSERT(ccb_stream_get_int(daemon, &v) == CCB_OK && v == 7 + i);
		ccb_stream_free(client);
		ccb_stream_free(daemon);
	}
	ccb_sharedport_server_stop(srv);
	sp_join(&run);
	ccb_sharedport_server_free(srv);
	ccb_sharedport_endpoint_free(ep);
	ccb_sharedport_endpoint_free(file_ep);
	CU_ASSERT_EQUAL(sp_rmdir(dir), 0);
	CU_ASSERT_EQUAL(ccbt_count_fds(), before);
}
#endif

static void test_stop_interrupts_and_concurrency(void)
{
	int before = ccbt_count_fds();
	char dir[64];
	ccb_sharedport_endpoint *ep;
	ccb_sharedport_server *srv;
	ccb_sharedport_server_stats st;
	sp_bg run = {0};
	ccb_stream *client, *daemon;
	int stalled[3];
	int64_t t0;
	ccb_error e;

	sp_mkdir(dir);
	ep = endpoint_in(dir, "busy");
	srv = server_for(dir, NULL, NULL, 30000);
	run.srv = srv;
	sp_start(&run, sp_run_main);
	/* Stalled clients do not hold up a good one. */
	for (int i = 0; i < 3; i++) {
		stalled[i] = sp_tcp_connect(ccb_sharedport_server_port(srv));
		sp_send_hex(stalled[i], "01 0000002f 00");
	}
	t0 = ccb_now_ms();
	CU_ASSERT_FATAL(ccb_sharedport_dial("127.0.0.1", ccb_sharedport_server_port(srv), "busy",
					    NULL, ccb_deadline_in(5000), &client, &e) == CCB_OK);
	CU_ASSERT_FATAL(ccb_sharedport_endpoint_accept(ep, ccb_deadline_in(5000), &daemon, &e) ==
			CCB_OK);
	CU_ASSERT(ccb_now_ms() - t0 < 2000);
	ccb_stream_free(client);
	ccb_stream_free(daemon);
	sp_sleep_ms(50);
	ccb_sharedport_server_get_stats(srv, &st);
	CU_ASSERT_EQUAL(st.active, 3);
	/* stop() ends the run and the stalled connections at once, although
	 * their request timeout is 30 s. */
	t0 = ccb_now_ms();
	ccb_sharedport_server_stop(srv);
	sp_join(&run);
	CU_ASSERT_EQUAL(run.rc, CCB_OK);
	CU_ASSERT(ccb_now_ms() - t0 < 2000);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT(sp_sees_eof(stalled[i], 2000));
		close(stalled[i]);
	}
	ccb_sharedport_server_get_stats(srv, &st);
	CU_ASSERT_EQUAL(st.passed, 1);
	CU_ASSERT_EQUAL(st.failed, 3);
	CU_ASSERT_EQUAL(st.active, 0);
	/* After stop, serve_one and run return at once. */
	CU_ASSERT_EQUAL(ccb_sharedport_server_serve_one(srv, ccb_deadline_in(5000), &e),
			CCB_ERR_CANCELLED);
	CU_ASSERT_EQUAL(ccb_sharedport_server_run(srv, &e), CCB_OK);
	ccb_sharedport_server_free(srv);
	ccb_sharedport_endpoint_free(ep);
	CU_ASSERT_EQUAL(sp_rmdir(dir), 0);
	CU_ASSERT_EQUAL(ccbt_count_fds(), before);
}

static void test_dial_errors(void)
{
	int before = ccbt_count_fds();
	ccb_sharedport_server_config cfg = {0};
	ccb_sharedport_server *srv;
	ccb_stream *s;
	uint16_t port;
	int lfd;
	ccb_error e;

	/* Nothing listening: refused, no fd left behind. */
	lfd = ccbt_listen(&port);
	close(lfd);
	CU_ASSERT_EQUAL(ccb_sharedport_dial("127.0.0.1", port, "x", NULL, ccb_deadline_in(2000),
					    &s, &e),
			CCB_ERR_IO);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_EQUAL(ccb_sharedport_dial("127.0.0.1", port, "bad id", NULL, INT64_MAX, &s, &e),
			CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccb_sharedport_dial(NULL, port, "x", NULL, INT64_MAX, &s, &e),
			CCB_ERR_INVALID_ARG);
	/* Server configuration errors. */
	CU_ASSERT_EQUAL(ccb_sharedport_server_new(&cfg, &srv, &e), CCB_ERR_INVALID_ARG);
	cfg.socket_dir = "/tmp";
	cfg.default_id = "../x";
	CU_ASSERT_EQUAL(ccb_sharedport_server_new(&cfg, &srv, &e), CCB_ERR_INVALID_ARG);
	cfg.default_id = NULL;
	cfg.bind_host = "localhost"; /* must be numeric */
	CU_ASSERT_EQUAL(ccb_sharedport_server_new(&cfg, &srv, &e), CCB_ERR_INVALID_ARG);
	CU_ASSERT_EQUAL(ccbt_count_fds(), before);
}

static const ccbt_test tests[] = {
	{"accept times out", test_accept_timeout},
	{"shutdown unblocks accept", test_shutdown_unblocks},
	{"bad hand-offs rejected", test_bad_handoffs_rejected},
	{"hand-off bytes match condor_shared_port", test_exact_handoff_bytes},
	{"stale socket replaced, others kept", test_stale_socket_replaced},
	{"default id gets unread connection", test_default_id},
#ifdef __linux__
	{"abstract names and file fallback", test_abstract_names},
#endif
	{"stop interrupts; stalls do not block", test_stop_interrupts_and_concurrency},
	{"dial and config errors", test_dial_errors},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"sharedport-endpoint", tests}, {NULL, NULL}};

int main(void)
{
	return ccbt_run(suites);
}

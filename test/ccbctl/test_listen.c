/* ccbctl listen, run as a real process against a fake broker: the printed
 * sinful, a condor_ping-style DC_SEC_QUERY through the reverse connection,
 * and a clean exit on SIGTERM. */
#include <signal.h>
#include <sys/wait.h>

#include <jansson.h>

#include "../listener/fakebroker.h"
#include "ccb/addr.h"
#include "ccb/dial.h"
#include "classad/classad_internal.h"

#define CLAIM "0123456789abcdef0123456789abcdef01234567"

typedef struct pinger {
	int lfd;
	uint16_t port;
	pthread_t t;
	ccb_err rc;
	bool authorized;
	ccb_sec_info info;
	char err[CCB_ERROR_DETAIL_SIZE];
} pinger;

/* The requester's side of condor_ping through CCB: accept the reverse
 * connection, check the hello, then DC_SEC_QUERY for DC_NOP_READ. */
static void *pinger_main(void *arg)
{
	pinger *p = arg;
	struct pollfd pf = {.fd = p->lfd, .events = POLLIN};
	ccb_classad *hello = NULL;
	ccb_stream *s = NULL;
	ccb_error err = {0};
	int fd;

	p->rc = CCB_ERR_TIMEOUT;
	if (poll(&pf, 1, 20000) <= 0)
		return NULL;
	fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0 || ccb_stream_new(fd, &s, NULL))
		return NULL;
	ccb_stream_set_timeout(s, 10000);
	p->rc = ccb_hello_read(s, CLAIM, &hello, &err);
	if (p->rc == CCB_OK)
		p->rc = ccb_sec_client_start(s, NULL, CCB_CMD_DC_SEC_QUERY, 60020, NULL, &p->info, &err);
	if (p->rc == CCB_OK)
		p->rc = ccb_sec_client_query_reply(s, &p->authorized, &err);
	snprintf(p->err, sizeof p->err, "%s", err.detail);
	ccb_classad_free(hello);
	ccb_stream_free(s);
	return NULL;
}

/* Read one line from fd (up to 10 s). */
static bool read_line(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got + 1 < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 10000) <= 0 || read(fd, buf + got, 1) != 1)
			return false;
		if (buf[got] == '\n') {
			buf[got] = '\0';
			return true;
		}
		got++;
	}
	return false;
}

static void test_listen_ping_sigterm(void)
{
	fakebroker fb;
	pinger pg = {0};
	char path[] = "/tmp/ccbt-listen-XXXXXX", json[512], line[1024], want[256], addr[64];
	int cfd, out[2], st;
	pid_t pid;
	ccb_buf rest;
	ssize_t n;
	json_t *j, *b;

	fb_init(&fb, FB_SERVE);
	snprintf(json, sizeof json,
		 "{\"CCB_ADDRESS\": \"127.0.0.1:%u\", \"SEC_DEFAULT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\","
		 " \"SEC_CLAIMTOBE_USER\": \"condor\", \"UID_DOMAIN\": \"vm\","
		 " \"PRIVATE_NETWORK_NAME\": \"poolB.private\", \"CCB_LISTENER_NAME\": \"LISTEN test\"}",
		 fb.port);
	cfd = mkstemp(path);
	CU_ASSERT(write(cfd, json, strlen(json)) == (ssize_t)strlen(json));
	close(cfd);
	CU_ASSERT_FATAL(pipe(out) == 0);
	pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		execl(CCBCTL_PATH, "ccbctl", "listen", "-c", path, "--json", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	/* The sinful to advertise, as an HTCondor daemon writes it (sinful.md
	 * §3-§4: parameters in std::map order, '#' and ':' raw): the real
	 * command port, never 0 (issue 13). */
	CU_ASSERT_FATAL(read_line(out[0], line, sizeof line));
	{
		ccb_sinful *sf = NULL;
		int cport;
		CU_ASSERT_EQUAL_FATAL(ccb_sinful_parse(line, &sf, NULL), CCB_OK);
		cport = ccb_sinful_port(sf);
		CU_ASSERT(cport > 0);
		snprintf(want, sizeof want,
			 "<127.0.0.1:%d?CCBID=127.0.0.1:%u#1&PrivNet=poolB.private&addrs=127.0.0.1-%d&noUDP>",
			 cport, fb.port, cport);
		CU_ASSERT_STRING_EQUAL(line, want);
		ccb_sinful_free(sf);
		/* A client on network poolB.private connects straight to it. */
		{
			ccb_sec_client_config csc = {.auth_methods = "CLAIMTOBE", .claimtobe_user = "condor",
						     .uid_domain = "vm"};
			ccb_dial_config o = {.private_network_name = "poolB.private", .timeout_ms = 10000};
			ccb_sec_info info;
			ccb_stream *ds = NULL;
			bool authz = false;
			CU_ASSERT_EQUAL(ccb_dial_command(line, &o, &csc, CCB_CMD_DC_SEC_QUERY, 60020, &ds,
							 &info, NULL), CCB_OK);
			CU_ASSERT(ds && ccb_sec_client_query_reply(ds, &authz, NULL) == CCB_OK && authz);
			ccb_stream_free(ds);
			/* No CCB request reached the broker for it. */
			pthread_mutex_lock(&fb.mu);
			CU_ASSERT_EQUAL(fb.nresults, 0);
			pthread_mutex_unlock(&fb.mu);
		}
	}
	pthread_mutex_lock(&fb.mu);
	{
		const char *name = NULL;
		ccb_classad_get_string(fb.last_register, "Name", &name);
		CU_ASSERT(name && !strcmp(name, "LISTEN test"));
	}
	pthread_mutex_unlock(&fb.mu);

	/* condor_ping through CCB: the broker forwards, ccbctl dials back. */
	pg.lfd = ccbt_listen(&pg.port);
	pthread_create(&pg.t, NULL, pinger_main, &pg);
	{
		ccb_classad *req = ccb__classad_new();
		snprintf(addr, sizeof addr, "<127.0.0.1:%u>", pg.port);
		ccb_classad_set_string(req, "Name", "TOOL on <127.0.0.1:1>");
		ccb_classad_set_string(req, "ClaimId", CLAIM);
		ccb_classad_set_int(req, "Command", 68);
		ccb_classad_set_string(req, "MyAddress", addr);
		ccb_classad_set_string(req, "RequestID", "1");
		fb_push(&fb, req);
	}
	pthread_join(pg.t, NULL);
	close(pg.lfd);
	CU_ASSERT_EQUAL(pg.rc, CCB_OK);
	if (pg.rc)
		fprintf(stderr, "ping: %s\n", pg.err);
	CU_ASSERT(pg.authorized);
	CU_ASSERT(pg.info.encrypted);
	CU_ASSERT(fb_wait_count(&fb, &fb.nresults, 1, 10000));
	pthread_mutex_lock(&fb.mu);
	{
		bool ok = false;
		CU_ASSERT(fb.nresults >= 1 && ccb_classad_get_bool(fb.results[0], "Result", &ok) == CCB_OK && ok);
	}
	pthread_mutex_unlock(&fb.mu);

	/* SIGTERM: clean stop, exit 0, the JSON status on stdout. */
	kill(pid, SIGTERM);
	ccb_buf_init(&rest);
	while ((n = read(out[0], line, sizeof line)) > 0)
		ccb_buf_append(&rest, line, (size_t)n);
	close(out[0]);
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ccb_buf_terminate(&rest);
	j = json_loads(rest.data ? (const char *)rest.data : "", 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	b = json_array_get(json_object_get(j, "brokers"), 0);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(b, "requests_served")), 1);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(b, "state")), "stopped");
	json_decref(j);
	ccb_buf_free(&rest);
	unlink(path);
	fb_destroy(&fb);
}

static void test_listen_usage(void)
{
	int st = system(CCBCTL_PATH " listen >/dev/null 2>&1");
	CU_ASSERT_EQUAL(WEXITSTATUS(st), 2);
	st = system(CCBCTL_PATH " listen -c /nonexistent/ccbctl.json >/dev/null 2>&1");
	CU_ASSERT_EQUAL(WEXITSTATUS(st), 1);
}

static const ccbt_test tests[] = {
	{"listen: sinful, ping through CCB, SIGTERM", test_listen_ping_sigterm},
	{"listen: usage and config errors", test_listen_usage},
	{NULL, NULL},
};

int main(void)
{
	static const ccbt_suite suites[] = {{"ccbctl listen", tests}, {NULL, NULL}};
	return ccbt_run(suites);
}

/* Tunnels through private networks (root only): two and three levels of
 * brokers, each inner one on its own private network, where the target's
 * only way in is through the tunnel (ccb-protocol.md §9.2-9.3).
 *
 * ADDRESSES: like test_netns.c, this test makes its own network namespaces
 * n0..nK joined in a chain by veth pairs; link i has 10.204.i.1/30 in n_i
 * and 10.204.i.2/30 in n_(i+1). Those addresses exist only inside the
 * namespaces, which are deleted at the end (also by an atexit handler).
 * No namespace forwards packets, so n0 has no route to any link but its
 * own. Broker B_i (`ccbctl broker`) runs in n_i on 10.204.i.1:9618; B_i for
 * i >= 1 has CCB_OUTBOUND_NEXT_HOP = B_(i-1). The target (a listener with an
 * echo handler, this program re-executed) runs in n_K, registered with
 * B_(K-1); the requester runs in n0. The test checks that the requester
 * cannot connect to the target's own address, then dials its nested
 * contact through B_0 and checks the echo.
 *
 * Without root or without `ip netns` the test prints "skipped: <reason>"
 * and passes. */
#include <stdarg.h>

#include "fault.h"

#define IP "/usr/sbin/ip"
#define MAXK 3

static char ns[MAXK + 1][32];
static int nns;


static void ns_cleanup(void)
{
	for (int i = 0; i < nns; i++)
		ccbt_sh(IP " netns del %s >/dev/null 2>&1", ns[i]);
	nns = 0;
}

/* n0..nK and the K links; NULL on success, else why not. */
static const char *ns_setup(int k)
{
	static bool registered;
	int id = (int)getpid() % 100000;

	if (geteuid() != 0)
		return "not root";
	if (access(IP, X_OK) != 0)
		return "no ip";
	if (!registered) {
		atexit(ns_cleanup);
		registered = true;
	}
	for (int i = 0; i <= k; i++) {
		snprintf(ns[i], sizeof ns[i], "ccbtun%d_%d", id, i);
		if (ccbt_sh(IP " netns add %s >/dev/null 2>&1", ns[i]) != 0)
			return i ? "cannot create more network namespaces" : "cannot create a network namespace";
		nns = i + 1;
		if (ccbt_sh(IP " -n %s link set lo up", ns[i]))
			return "cannot bring lo up";
	}
	for (int i = 0; i < k; i++)
		if (ccbt_sh(IP " link add ctu%d_%da netns %s type veth peer name ctu%d_%db netns %s", id, i,
		       ns[i], id, i, ns[i + 1]) ||
		    ccbt_sh(IP " -n %s addr add 10.204.%d.1/30 dev ctu%d_%da", ns[i], i, id, i) ||
		    ccbt_sh(IP " -n %s addr add 10.204.%d.2/30 dev ctu%d_%db", ns[i + 1], i, id, i) ||
		    ccbt_sh(IP " -n %s link set ctu%d_%da up", ns[i], id, i) ||
		    ccbt_sh(IP " -n %s link set ctu%d_%db up", ns[i + 1], id, i))
			return "cannot make the veth links";
	return NULL;
}

/* In n_K: a listener; prints "registered <contact>" and "address <sinful>". */
static int listener_main(const char *broker)
{
	ccb_listener_config c = ft_listener_config();
	ccb_listener *l;

	c.broker = broker;
	c.name = "NETNS tunnel target";
	c.reconnect_interval_ms = 300;
	l = ft_listener_start(&c);
	if (!l || ccb_listener_wait_registered(l, 1, 20000, NULL) != CCB_OK)
		return 1;
	{
		char *cl = NULL;
		ccb_listener_contact_list(l, &cl, NULL);
		printf("address %s\nregistered %s\n", ccb_listener_address(l), cl ? cl : "");
		fflush(stdout);
		ccb_free(cl);
	}
	for (;;)
		pause();
}

/* In n0: the target's own address must be unreachable, then the nested
 * contact must echo. Prints "direct unreachable" and "dial ok". */
static int dial_main(const char *direct, const char *contact)
{
	ccb_sinful *sf = NULL;
	ccb_stream *s = NULL;
	ccb_error err = {0};
	int64_t ms = 0;

	if (ccb_sinful_parse_address(direct, &sf, &err))
		return 2;
	if (ccb_stream_connect(ccb_sinful_host(sf), ccb_sinful_port(sf), 2000, &s, &err) == CCB_OK) {
		printf("direct REACHABLE\n");
		ccb_stream_free(s);
		ccb_sinful_free(sf);
		return 1;
	}
	ccb_sinful_free(sf);
	printf("direct unreachable (%s)\n", err.detail);
	for (int i = 0; i < 3; i++) {
		if (ft_dial_echo(&contact, 1, 15000, true, &ms, &err) != CCB_OK) {
			printf("dial failed: %s\n", err.detail);
			return 1;
		}
		printf("dial ok in %" PRId64 " ms\n", ms);
	}
	fflush(stdout);
	return 0;
}

static void run_levels(int k)
{
	const char *why = ns_setup(k);
	char cfg[MAXK][128], self[512], line[512], addr[256], contact[512], bk[64];
	ccbt_proc *bp[MAXK] = {0}, *lp = NULL;
	ssize_t n;
	int hashes = 0;

	if (why) {
		printf("\n    skipped: %s\n", why);
		ns_cleanup();
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	CU_ASSERT_FATAL(n > 0);
	self[n] = '\0';
	for (int i = 0; i < k; i++) {
		FILE *f;
		snprintf(cfg[i], sizeof cfg[i], "/tmp/ccbt-netns-tunnel-%d-%d.json", (int)getpid(), i);
		f = fopen(cfg[i], "w");
		fprintf(f,
			"{\"CCB_SERVER_LISTEN\": \"10.204.%d.1:9618\","
			" \"SEC_DEFAULT_AUTHENTICATION_METHODS\": \"CLAIMTOBE\", \"UID_DOMAIN\": \"vm\","
			" \"SEC_CLAIMTOBE_USER\": \"condor\", \"ALLOW_DAEMON\": \"condor@vm\","
			" \"CCB_RECONNECT_TIME\": 1",
			i);
		if (i)
			fprintf(f, ", \"CCB_OUTBOUND_NEXT_HOP\": \"10.204.%d.1:9618\"", i - 1);
		fprintf(f, "}\n");
		fclose(f);
	}
	for (int i = 0; i < k; i++) {
		char *argv[] = {IP, "netns", "exec", ns[i], CCBCTL_PATH, "broker", "-c", cfg[i], NULL};
		bp[i] = ccbt_proc_start(argv, NULL);
		if (!ccbt_proc_wait_line(bp[i], "listening ", 15000, NULL, 0)) {
			fprintf(stderr, "broker %d: %s\n", i, ccbt_proc_output(bp[i]));
			CU_FAIL("broker did not start in its namespace");
			goto out;
		}
	}
	snprintf(bk, sizeof bk, "10.204.%d.1:9618", k - 1);
	{
		char *argv[] = {IP, "netns", "exec", ns[k], self, "--netns-listener", bk, NULL};
		lp = ccbt_proc_start(argv, NULL);
	}
	if (!ccbt_proc_wait_line(lp, "address ", 20000, line, sizeof line) ||
	    (snprintf(addr, sizeof addr, "%s", line + 8),
	     !ccbt_proc_wait_line(lp, "registered ", 20000, line, sizeof line))) {
		fprintf(stderr, "listener: %s\n", ccbt_proc_output(lp));
		CU_FAIL("the target did not register through the tunnel");
		goto out;
	}
	snprintf(contact, sizeof contact, "%s", line + strlen("registered "));
	printf("\n    %d levels: target %s, contact %s", k, addr, contact);
	CU_ASSERT_EQUAL(strncmp(contact, "10.204.0.1:9618", 15), 0);
	for (const char *p = contact; *p; p++)
		hashes += *p == '#';
	CU_ASSERT_EQUAL(hashes, k);
	{
		char *argv[] = {IP, "netns", "exec", ns[0], self, "--netns-dial", addr, contact, NULL};
		char *out = NULL;
		int oks = 0, rc = ccbt_proc_run(argv, NULL, 120000, &out);
		for (const char *p = out; p && (p = strstr(p, "dial ok")); p++)
			oks++;
		printf("\n    requester in n0 (exit %d):\n%s", rc, out ? out : "");
		CU_ASSERT_EQUAL(rc, 0);
		CU_ASSERT(out && strstr(out, "direct unreachable"));
		CU_ASSERT_EQUAL(oks, 3);
		free(out);
	}
out:
	if (lp)
		ccbt_proc_stop(lp, SIGKILL, 5000);
	for (int i = k - 1; i >= 0; i--) {
		if (bp[i])
			ccbt_proc_stop(bp[i], SIGTERM, 5000);
		unlink(cfg[i]);
	}
	ns_cleanup();
}

static void test_two_levels(void)
{
	run_levels(2);
}

static void test_three_levels(void)
{
	run_levels(3);
}

static const ccbt_test tests[] = {
	{"two levels: the target only reachable through the tunnel", test_two_levels},
	{"three levels", test_three_levels},
	{NULL, NULL},
};

static const ccbt_suite suites[] = {{"fault netns tunnel", tests}, {NULL, NULL}};

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && !strcmp(argv[1], "--netns-listener"))
		return listener_main(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "--netns-dial"))
		return dial_main(argv[2], argv[3]);
	return ccbt_run(suites);
}
